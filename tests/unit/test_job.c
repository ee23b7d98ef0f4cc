/*
 * Unit tests of job.c's state machine, through a fake engine (struct dm_job_io) and fake stages
 * (struct dm_stage_ops): stage order and checkpoints, resuming at a checkpoint, transient retries
 * and their cap, cancel, shutdown, park and resume, fencing, deadlines, and failed writes.
 *
 * The fake never completes anything inside the call that started it: writes, stage results and
 * timers are queued and fired one at a time by step(), in the order an engine would (writes of a
 * job in order, then the running stage's result, then a timer), so each test can act between two
 * steps, as a heartbeat, a cancel broadcast or a shutdown would.
 */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dream/core/buf.h"
#include "dream/core/error.h"
#include "dream/domain/job.h"

/* The flags of a write, short names for the tests. */
enum {
    TF_ACK = DM_JOB_WRITE_ACK,
    TF_PARK = DM_JOB_WRITE_PARK,
    TF_UNPARK = DM_JOB_WRITE_UNPARK,
    TF_TERMINAL = DM_JOB_WRITE_TERMINAL,
};

/* ---- the fake engine ---- */

#define MAXW 64
#define MAXF 8

/* A write as the engine received it (copied: the job's strings are borrowed for the call). */
struct rec {
    int has_status;
    char status[32];
    char message[DM_ERROR_MSG_MAX + 64];
    char step[32];
    char error[DM_ERROR_MSG_MAX + 64];
    unsigned flags;
    size_t n_fields;
    char fields[MAXF][DM_ERROR_MSG_MAX + 64];
    dm_job_write_cb done;
    int fired; /* its completion has been delivered */
};

static struct {
    struct rec w[MAXW];
    int nw;
    int next_done;       /* next write whose completion fires */
    int rc_of[MAXW];     /* completion rc of write i */
    int cancel_of[MAXW]; /* cancel flag reported with write i */
    int refuse_at;       /* index of the write that write() refuses at once (-1: none) */

    void (*after_fn)(struct dm_job *);
    long after_ms[16];
    int nafter;

    void (*deadline_fn)(struct dm_job *);
    long deadline_ms; /* armed deadline, 0 when none */
    long armed[16];
    int narmed;

    int over;
    int cancels;
    int releases;

    /* stages */
    enum dm_stage order[64];
    int norder;
    int results[DM_STAGE_COUNT][8]; /* result of the n-th call of a stage (0 by default) */
    int calls[DM_STAGE_COUNT];
    int start_rc[DM_STAGE_COUNT]; /* returned by run itself (the stage cannot start) */
    int stage_pending;            /* a stage result is waiting to be delivered */
    int stage_rc;
    int stage_hangs; /* the running stage ignores cancel and never reports by itself */
    struct dm_error stage_err;
} W;

static int fake_write(struct dm_job *job, const struct dm_job_write *w, dm_job_write_cb done)
{
    struct rec *r;
    cr_assert(!job->over, "no write after the job is over");
    cr_assert_lt(W.nw, MAXW);
    if (W.refuse_at == W.nw) {
        W.refuse_at = -1;
        return DM_ERR_IO;
    }
    r = &W.w[W.nw++];
    memset(r, 0, sizeof(*r));
    r->has_status = w->status != NULL;
    snprintf(r->status, sizeof(r->status), "%s", w->status ? w->status : "");
    snprintf(r->message, sizeof(r->message), "%s", w->message ? w->message : "");
    if (w->extra) {
        snprintf(r->step, sizeof(r->step), "%s", w->extra->step ? w->extra->step : "");
        snprintf(r->error, sizeof(r->error), "%s", w->extra->error ? w->extra->error : "");
    }
    r->flags = w->flags;
    cr_assert_eq(w->n_fields % 2, 0, "fields come in pairs");
    cr_assert_leq(w->n_fields, MAXF);
    r->n_fields = w->n_fields;
    for (size_t i = 0; i < w->n_fields; i++) {
        snprintf(r->fields[i], sizeof(r->fields[i]), "%s", w->fields[i]);
    }
    r->done = done;
    return 0;
}

static int fake_after(struct dm_job *job, long ms, void (*fn)(struct dm_job *job))
{
    (void)job;
    cr_assert_null(W.after_fn, "one pending call per job");
    cr_assert_lt(W.nafter, 16);
    W.after_fn = fn;
    W.after_ms[W.nafter++] = ms;
    return 0;
}

static int fake_deadline(struct dm_job *job, long ms, void (*fn)(struct dm_job *job))
{
    (void)job;
    W.deadline_ms = ms;
    W.deadline_fn = ms > 0 ? fn : NULL;
    if (ms > 0 && W.narmed < 16) {
        W.armed[W.narmed++] = ms;
    }
    return 0;
}

static void fake_over(struct dm_job *job)
{
    (void)job;
    W.over++;
}

static const struct dm_job_io io = {
    .write = fake_write,
    .after = fake_after,
    .deadline = fake_deadline,
    .read_files = NULL,
    .over = fake_over,
};

/* ---- the fake stages ---- */

static int fake_run(struct dm_job *job)
{
    enum dm_stage s = job->stage;
    int call = W.calls[s]++;
    cr_assert(!W.stage_pending, "one stage at a time");
    cr_assert_lt(W.norder, 64);
    W.order[W.norder++] = s;
    /* A stage starts only once its checkpoint is recorded. */
    cr_assert_gt(W.nw, 0);
    cr_assert(W.w[W.nw - 1].fired, "the checkpoint was recorded before the stage started");
    cr_assert_eq(W.w[W.nw - 1].n_fields, 2);
    cr_assert_str_eq(W.w[W.nw - 1].fields[0], "stage");
    cr_assert_str_eq(W.w[W.nw - 1].fields[1], dm_stage_name(s));
    if (W.start_rc[s]) {
        return W.start_rc[s];
    }
    W.stage_pending = 1;
    W.stage_rc = call < 8 ? W.results[s][call] : 0;
    dm_error_clear(&W.stage_err);
    if (W.stage_rc && W.stage_rc != DM_JOB_PARKED) {
        dm_error_set(&W.stage_err, W.stage_rc, "stage %s broke (call %d)", dm_stage_name(s),
                     call + 1);
    }
    if (W.stage_rc == DM_JOB_PARKED) {
        /* The gate parks the job itself: status, event and ack in one write. */
        static const char *const f[] = {"status", "paused_approval"};
        struct dm_job_write w = {0};
        w.status = "paused_approval";
        w.message = "waiting for approval";
        w.fields = f;
        w.n_fields = 2;
        w.flags = TF_ACK | TF_PARK;
        cr_assert_eq(job->io->write(job, &w, NULL), 0);
    } else if (s == DM_STAGE_GATE && job->approved) {
        /* Resumed after approval: the gate takes the job out of the parked set. */
        static const char *const f[] = {"status", "running"};
        struct dm_job_write w = {0};
        w.fields = f;
        w.n_fields = 2;
        w.flags = TF_UNPARK;
        cr_assert_eq(job->io->write(job, &w, NULL), 0);
    }
    return 0;
}

static void fake_cancel(struct dm_job *job)
{
    (void)job;
    W.cancels++;
    if (W.stage_pending && !W.stage_hangs) {
        W.stage_rc = DM_ERR_CANCELLED;
        dm_error_set(&W.stage_err, DM_ERR_CANCELLED, "stopped");
    }
}

static void fake_release(struct dm_job *job)
{
    (void)job;
    W.releases++;
}

static struct dm_stage_ops ops;

static struct dm_job job;

static void setup(void)
{
    memset(&W, 0, sizeof(W));
    W.refuse_at = -1;
    memset(&ops, 0, sizeof(ops));
    for (int s = 0; s < DM_STAGE_COUNT; s++) {
        ops.run[s] = fake_run;
    }
    ops.run[DM_STAGE_DONE] = NULL; /* never run: done is the end */
    ops.cancel = fake_cancel;
    ops.release = fake_release;
    dm_job_init(&job, &ops, &io, NULL);
    snprintf(job.id, sizeof(job.id), "job-1");
    snprintf(job.entry, sizeof(job.entry), "1-0");
}

static void teardown(void)
{
    dm_job_clear(&job);
}

TestSuite(job, .init = setup, .fini = teardown);

/* Delivers one pending thing; returns 0 when nothing is pending. */
static int step(void)
{
    if (W.next_done < W.nw) {
        struct rec *r = &W.w[W.next_done];
        int i = W.next_done++;
        r->fired = 1;
        if (r->done) {
            r->done(&job, W.rc_of[i], W.cancel_of[i]);
        }
        return 1;
    }
    if (W.stage_pending && !W.stage_hangs) {
        W.stage_pending = 0;
        dm_job_stage_done(&job, W.stage_rc, W.stage_rc ? &W.stage_err : NULL);
        return 1;
    }
    if (W.after_fn) {
        void (*fn)(struct dm_job *) = W.after_fn;
        W.after_fn = NULL;
        fn(&job);
        return 1;
    }
    return 0;
}

static void run_to_end(void)
{
    for (int i = 0; i < 1000 && step(); i++) {
    }
    cr_assert_eq(W.over, 1, "the job is over exactly once (over called %d times)", W.over);
}

/* Steps until stage s is running (its result not yet delivered). */
static void run_until_running(enum dm_stage s)
{
    for (int i = 0; i < 1000; i++) {
        if (W.stage_pending && job.stage == s && W.next_done == W.nw) {
            cr_assert(job.running);
            return;
        }
        cr_assert(step(), "stage %s never ran", dm_stage_name(s));
    }
    cr_assert_fail("stage %s never ran", dm_stage_name(s));
}

static const struct rec *last_write(void)
{
    cr_assert_gt(W.nw, 0);
    return &W.w[W.nw - 1];
}

static const char *field(const struct rec *r, const char *name)
{
    for (size_t i = 0; i + 1 < r->n_fields; i += 2) {
        if (strcmp(r->fields[i], name) == 0) {
            return r->fields[i + 1];
        }
    }
    return NULL;
}

static int count_status(const char *status)
{
    int n = 0;
    for (int i = 0; i < W.nw; i++) {
        n += W.w[i].has_status && strcmp(W.w[i].status, status) == 0;
    }
    return n;
}

/* The job ended with one terminal write: status, fields, ack and TTL together. */
static void assert_ended(const char *status)
{
    const struct rec *r = last_write();
    cr_assert_str_eq(r->status, status);
    cr_assert_str_eq(field(r, "status"), status);
    cr_assert_eq(r->flags, TF_ACK | TF_TERMINAL, "flags %u", r->flags);
    cr_assert_str_eq(job.final_status, status);
    for (int i = 0; i < W.nw - 1; i++) {
        cr_assert_eq(W.w[i].flags & TF_TERMINAL, 0, "only the last write ends the job");
    }
}

/* ---- order and checkpoints ---- */

Test(job, stages_run_in_order_each_after_its_checkpoint)
{
    static const char *const announce[] = {"planning", NULL, "testing", NULL, "pushing", NULL};

    dm_job_dispatch(&job);
    cr_assert_eq(W.norder, 0, "nothing runs inside dispatch: the checkpoint comes first");
    run_to_end();
    cr_assert_eq(W.norder, 6);
    for (int s = DM_STAGE_PLAN; s < DM_STAGE_DONE; s++) {
        const struct rec *r = &W.w[s];
        cr_assert_eq(W.order[s], (enum dm_stage)s);
        cr_assert_str_eq(field(r, "stage"), dm_stage_name(s));
        cr_assert_str_eq(r->step, dm_stage_name(s));
        cr_assert_eq(r->flags, 0u, "a checkpoint neither acks nor ends");
        if (announce[s]) {
            cr_assert_str_eq(r->status, announce[s]);
        } else {
            cr_assert_not(r->has_status, "stage %s has no start event", dm_stage_name(s));
        }
    }
    cr_assert_eq(W.nw, 7);
    assert_ended("complete");
    cr_assert_str_eq(last_write()->message, "build complete");
    cr_assert_null(field(last_write(), "error"), "a complete job records no error");
    cr_assert_eq(job.stage, DM_STAGE_DONE);
    cr_assert_eq(W.narmed, 0, "no stage deadline unless configured");
}

Test(job, a_resumed_job_starts_at_its_checkpoint)
{
    job.stage = DM_STAGE_PUSH;
    dm_job_dispatch(&job);
    run_to_end();
    cr_assert_eq(W.norder, 2);
    cr_assert_eq(W.order[0], DM_STAGE_PUSH);
    cr_assert_eq(W.order[1], DM_STAGE_PR);
    cr_assert_str_eq(field(&W.w[0], "stage"), "push");
    assert_ended("complete");
}

Test(job, a_job_resumed_at_done_only_completes_with_its_results)
{
    job.stage = DM_STAGE_DONE;
    job.pr_url = strdup("https://github.com/acme/app/pull/7");
    job.branch = strdup("dream/todo-api");
    dm_job_dispatch(&job);
    run_to_end();
    cr_assert_eq(W.norder, 0);
    cr_assert_eq(W.nw, 1);
    assert_ended("complete");
}

Test(job, a_dry_run_says_so_when_it_completes)
{
    job.dry_run = 1;
    dm_job_dispatch(&job);
    run_to_end();
    assert_ended("complete");
    cr_assert_not_null(strstr(last_write()->message, "dry run complete"), "%s",
                       last_write()->message);
}

/* ---- retries ---- */

Test(job, transient_errors_are_retried_with_backoff_then_the_job_goes_on)
{
    W.results[DM_STAGE_PLAN][0] = DM_ERR_TRANSIENT;
    W.results[DM_STAGE_PLAN][1] = DM_ERR_TRANSIENT;
    W.results[DM_STAGE_GENERATE][0] = DM_ERR_TRANSIENT;
    dm_job_dispatch(&job);
    run_to_end();
    cr_assert_eq(W.calls[DM_STAGE_PLAN], 3);
    cr_assert_eq(W.calls[DM_STAGE_GENERATE], 2);
    cr_assert_eq(count_status("retrying"), 3);
    cr_assert_eq(W.nafter, 3);
    cr_assert_eq(W.after_ms[0], 1000);
    cr_assert_eq(W.after_ms[1], 2000);
    cr_assert_eq(W.after_ms[2], 1000, "the count starts again at the next stage");
    cr_assert_str_eq(W.w[1].status, "retrying");
    cr_assert_not_null(strstr(W.w[1].message, "stage plan will be retried (1 of 3)"), "%s",
                       W.w[1].message);
    cr_assert_not_null(strstr(W.w[1].message, "stage plan broke (call 1)"), "%s", W.w[1].message);
    cr_assert_str_eq(W.w[1].step, "plan");
    cr_assert_eq(W.w[1].flags, 0u);
    cr_assert_eq(W.w[1].n_fields, 0u);
    /* Each retry records its checkpoint again before running. */
    cr_assert_str_eq(field(&W.w[2], "stage"), "plan");
    assert_ended("complete");
}

Test(job, a_stage_still_failing_after_three_retries_fails_the_job)
{
    for (int i = 0; i < 4; i++) {
        W.results[DM_STAGE_REVIEW][i] = DM_ERR_TRANSIENT;
    }
    dm_job_dispatch(&job);
    run_to_end();
    cr_assert_eq(W.calls[DM_STAGE_REVIEW], 4, "one try and 3 retries");
    cr_assert_eq(W.calls[DM_STAGE_GATE], 0);
    cr_assert_eq(count_status("retrying"), 3);
    cr_assert_eq(W.nafter, 3);
    cr_assert_eq(W.after_ms[0], 1000);
    cr_assert_eq(W.after_ms[1], 2000);
    cr_assert_eq(W.after_ms[2], 4000);
    assert_ended("failed");
    cr_assert_str_eq(field(last_write(), "error"), "stage review broke (call 4)");
    cr_assert_str_eq(last_write()->step, "review");
}

Test(job, a_permanent_error_fails_at_once_with_its_message)
{
    W.results[DM_STAGE_GENERATE][0] = DM_ERR_INVALID;
    dm_job_dispatch(&job);
    run_to_end();
    cr_assert_eq(W.calls[DM_STAGE_GENERATE], 1);
    cr_assert_eq(W.calls[DM_STAGE_REVIEW], 0);
    cr_assert_eq(count_status("retrying"), 0);
    assert_ended("failed");
    cr_assert_str_eq(field(last_write(), "error"), "stage generate broke (call 1)");
    cr_assert_str_eq(last_write()->message, "stage generate broke (call 1)");
    cr_assert_str_eq(last_write()->error, "stage generate broke (call 1)");
}

Test(job, an_error_without_a_message_is_named)
{
    dm_job_dispatch(&job);
    run_until_running(DM_STAGE_PLAN);
    W.stage_pending = 0;
    dm_job_stage_done(&job, DM_ERR_BUDGET, NULL);
    run_to_end();
    assert_ended("failed");
    cr_assert_str_eq(field(last_write(), "error"), dm_err_name(DM_ERR_BUDGET));
}

Test(job, a_missing_stage_fails_the_job_naming_it)
{
    ops.run[DM_STAGE_REVIEW] = NULL;
    dm_job_dispatch(&job);
    run_to_end();
    cr_assert_eq(W.norder, 2);
    assert_ended("failed");
    cr_assert_str_eq(field(last_write(), "error"), "stage review is not available in this build");
    cr_assert_str_eq(last_write()->step, "review");
}

Test(job, a_stage_that_cannot_start_fails_like_a_failed_stage)
{
    W.start_rc[DM_STAGE_PUSH] = DM_ERR_IO;
    dm_job_dispatch(&job);
    run_to_end();
    cr_assert_eq(W.calls[DM_STAGE_PR], 0);
    assert_ended("failed");
    cr_assert_not_null(strstr(field(last_write(), "error"), "stage push could not start: io"), "%s",
                       field(last_write(), "error"));
    cr_assert_not(job.running);
}

/* ---- cancel ---- */

Test(job, a_cancel_stops_the_running_stage_and_ends_the_job_cancelled)
{
    dm_job_dispatch(&job);
    run_until_running(DM_STAGE_GENERATE);
    dm_job_request_cancel(&job);
    cr_assert_eq(W.cancels, 1, "the running stage is asked to stop");
    run_to_end();
    cr_assert_eq(W.calls[DM_STAGE_REVIEW], 0);
    assert_ended("cancelled");
    cr_assert_str_eq(last_write()->message, "cancelled at stage generate");
    cr_assert_str_eq(field(last_write(), "error"), "cancelled at stage generate");
    cr_assert_str_eq(last_write()->step, "generate");
}

Test(job, a_cancel_flag_seen_at_a_checkpoint_ends_the_job_before_the_stage)
{
    /* Writes 0 plan, 1 generate, 2 review: the review checkpoint reports the durable flag. */
    W.cancel_of[2] = 1;
    dm_job_dispatch(&job);
    run_to_end();
    cr_assert_eq(W.calls[DM_STAGE_REVIEW], 0, "the stage never started");
    cr_assert_eq(W.cancels, 0, "nothing was running to stop");
    assert_ended("cancelled");
    cr_assert_str_eq(last_write()->message, "cancelled at stage review");
}

Test(job, a_cancel_while_waiting_to_retry_is_honoured_when_the_retry_comes)
{
    W.results[DM_STAGE_PLAN][0] = DM_ERR_TRANSIENT;
    W.cancel_of[1] = 1; /* the `retrying` write learns of the cancel */
    dm_job_dispatch(&job);
    run_to_end();
    cr_assert_eq(W.nafter, 1, "the backoff still runs");
    cr_assert_eq(W.calls[DM_STAGE_PLAN], 1, "not retried");
    cr_assert_eq(W.nw, 3, "checkpoint, retrying, cancelled: no second checkpoint");
    assert_ended("cancelled");
}

Test(job, a_cancel_before_the_first_checkpoint_ends_the_job_without_running_anything)
{
    dm_job_request_cancel(&job);
    cr_assert_eq(W.cancels, 0, "no stage is running");
    dm_job_dispatch(&job);
    run_to_end();
    cr_assert_eq(W.norder, 0);
    cr_assert_eq(W.nw, 1);
    assert_ended("cancelled");
    cr_assert_str_eq(last_write()->message, "cancelled at stage plan");
}

/* ---- shutdown ---- */

Test(job, shutdown_leaves_the_job_pending_at_the_next_checkpoint)
{
    dm_job_dispatch(&job);
    run_until_running(DM_STAGE_REVIEW);
    job.stopping = 1;
    run_to_end();
    cr_assert_eq(W.calls[DM_STAGE_GATE], 0);
    cr_assert_eq(W.nw, 3, "no write after the stage: the entry stays pending");
    cr_assert_null(job.final_status);
    cr_assert_eq(job.stage, DM_STAGE_GATE, "the next replica resumes at the gate");
}

Test(job, a_stage_stopped_by_shutdown_leaves_the_job_pending)
{
    dm_job_dispatch(&job);
    run_until_running(DM_STAGE_GENERATE);
    /* The engine's shutdown: stop at the next checkpoint, and tell the stage to stop (not a
     * person's cancel). */
    job.stopping = 1;
    job.stages->cancel(&job);
    run_to_end();
    cr_assert_eq(W.nw, 2);
    cr_assert_null(job.final_status);
    cr_assert_eq(job.stage, DM_STAGE_GENERATE, "resumed at the stage that was interrupted");
}

Test(job, a_person_cancel_during_shutdown_still_ends_the_job_cancelled)
{
    dm_job_dispatch(&job);
    run_until_running(DM_STAGE_GENERATE);
    job.stopping = 1;
    dm_job_request_cancel(&job);
    run_to_end();
    assert_ended("cancelled");
}

/* ---- park and resume ---- */

Test(job, a_parked_job_is_over_without_a_terminal_write)
{
    W.results[DM_STAGE_GATE][0] = DM_JOB_PARKED;
    dm_job_dispatch(&job);
    run_to_end();
    cr_assert_eq(W.calls[DM_STAGE_PUSH], 0);
    cr_assert_str_eq(job.final_status, "paused_approval");
    cr_assert_str_eq(last_write()->status, "paused_approval");
    cr_assert_eq(last_write()->flags, TF_ACK | TF_PARK);
    for (int i = 0; i < W.nw; i++) {
        cr_assert_eq(W.w[i].flags & TF_TERMINAL, 0, "parked is not the end");
    }
}

Test(job, an_approved_job_resumes_at_the_gate_and_completes)
{
    job.stage = DM_STAGE_GATE;
    job.approved = 1;
    dm_job_dispatch(&job);
    run_to_end();
    cr_assert_eq(W.norder, 3);
    cr_assert_eq(W.order[0], DM_STAGE_GATE);
    cr_assert_eq(W.order[1], DM_STAGE_PUSH);
    cr_assert_eq(W.w[1].flags, TF_UNPARK);
    assert_ended("complete");
}

/* ---- fencing ---- */

Test(job, a_fenced_checkpoint_drops_the_job_without_another_write)
{
    W.rc_of[1] = DM_ERR_FENCED; /* the generate checkpoint */
    dm_job_dispatch(&job);
    run_to_end();
    cr_assert(job.fenced);
    cr_assert_eq(W.calls[DM_STAGE_GENERATE], 0);
    cr_assert_eq(W.nw, 2);
    cr_assert_null(job.final_status);
}

Test(job, a_stage_that_finds_itself_fenced_ends_the_job_here_without_writes)
{
    W.results[DM_STAGE_PUSH][0] = DM_ERR_FENCED;
    dm_job_dispatch(&job);
    run_to_end();
    cr_assert(job.fenced);
    cr_assert_eq(W.calls[DM_STAGE_PR], 0);
    cr_assert_eq(W.nw, 5, "checkpoints up to push, nothing after");
    cr_assert_null(job.final_status);
}

Test(job, fenced_by_the_heartbeat_while_running_the_result_is_dropped)
{
    dm_job_dispatch(&job);
    run_until_running(DM_STAGE_REVIEW);
    job.fenced = 1; /* the heartbeat learnt that another replica took the entry */
    run_to_end();
    cr_assert_eq(W.nw, 3);
    cr_assert_eq(W.calls[DM_STAGE_GATE], 0);
    cr_assert_null(job.final_status);
}

Test(job, fenced_while_waiting_to_retry_the_retry_does_not_run)
{
    W.results[DM_STAGE_PLAN][0] = DM_ERR_TRANSIENT;
    dm_job_dispatch(&job);
    while (!W.after_fn) {
        cr_assert(step());
    }
    job.fenced = 1;
    run_to_end();
    cr_assert_eq(W.calls[DM_STAGE_PLAN], 1);
    cr_assert_eq(W.nw, 2, "checkpoint and retrying, no second checkpoint");
    cr_assert_null(job.final_status);
}

Test(job, a_fenced_job_cannot_be_finished)
{
    job.fenced = 1;
    dm_job_finish(&job, "complete", "build complete", NULL);
    cr_assert_eq(W.nw, 0);
    cr_assert_eq(W.over, 1);
}

/* ---- failed writes ---- */

Test(job, a_checkpoint_that_cannot_be_queued_drops_the_job)
{
    W.refuse_at = 0;
    dm_job_dispatch(&job);
    run_to_end();
    cr_assert_eq(W.nw, 0);
    cr_assert_eq(W.norder, 0);
    cr_assert_null(job.final_status);
}

Test(job, a_checkpoint_that_fails_leaves_the_job_to_another_replica)
{
    W.rc_of[2] = DM_ERR_IO; /* the review checkpoint */
    dm_job_dispatch(&job);
    run_to_end();
    cr_assert_eq(W.calls[DM_STAGE_REVIEW], 0, "no stage without its checkpoint");
    cr_assert_eq(W.nw, 3);
    cr_assert_null(job.final_status);
}

Test(job, a_retrying_write_that_fails_leaves_the_job)
{
    W.results[DM_STAGE_PLAN][0] = DM_ERR_TRANSIENT;
    W.rc_of[1] = DM_ERR_IO;
    dm_job_dispatch(&job);
    run_to_end();
    cr_assert_eq(W.nafter, 0, "no retry is scheduled");
    cr_assert_eq(W.nw, 2);
}

Test(job, a_final_write_that_fails_still_ends_the_job_once)
{
    W.rc_of[6] = DM_ERR_IO; /* the `complete` write */
    dm_job_dispatch(&job);
    run_to_end();
    cr_assert_eq(W.nw, 7);
    cr_assert_str_eq(job.final_status, "complete");
}

Test(job, a_final_write_that_cannot_be_queued_still_ends_the_job_once)
{
    W.refuse_at = 6;
    dm_job_dispatch(&job);
    run_to_end();
    cr_assert_eq(W.nw, 6);
}

/* ---- deadlines ---- */

Test(job, a_stage_past_its_deadline_is_stopped_and_retried)
{
    job.stage_timeout_ms = 400;
    dm_job_dispatch(&job);
    run_until_running(DM_STAGE_PLAN);
    cr_assert_eq(W.deadline_ms, 400, "armed when the stage starts");
    cr_assert_not_null(W.deadline_fn);
    W.deadline_fn(&job);
    cr_assert_eq(W.cancels, 1, "the stage is told to stop");
    cr_assert(job.timed_out);
    cr_assert_eq(W.deadline_ms, 5000, "a short second deadline to report back");
    cr_assert(step()); /* the stage reports DM_ERR_CANCELLED */
    cr_assert_eq(W.deadline_ms, 0, "disarmed when the stage reports");
    cr_assert_str_eq(last_write()->status, "retrying");
    cr_assert_not_null(strstr(last_write()->message, "stage plan passed its deadline of 400 ms"),
                       "%s", last_write()->message);
    run_to_end();
    cr_assert_eq(W.calls[DM_STAGE_PLAN], 2);
    cr_assert_not(job.timed_out, "the retry starts with a fresh deadline");
    assert_ended("complete");
    cr_assert_eq(W.narmed, 8, "one deadline per stage run, one second deadline");
}

Test(job, a_stage_that_does_not_stop_is_left_to_another_replica)
{
    job.stage_timeout_ms = 400;
    dm_job_dispatch(&job);
    run_until_running(DM_STAGE_GENERATE);
    W.stage_hangs = 1;
    W.deadline_fn(&job);
    cr_assert_eq(W.deadline_ms, 5000);
    W.deadline_fn(&job);
    cr_assert(job.fenced, "no more writes for this job");
    cr_assert_eq(W.over, 0, "the job stays until its stage reports");
    /* Its late result is dropped. */
    W.stage_hangs = 0;
    run_to_end();
    cr_assert_eq(W.nw, 2);
    cr_assert_null(job.final_status);
}

/* ---- names and event fragments ---- */

Test(job, stage_names_parse_back)
{
    enum dm_stage s;
    for (int i = 0; i < DM_STAGE_COUNT; i++) {
        cr_assert_eq(dm_stage_parse(&s, dm_stage_name((enum dm_stage)i)), 0);
        cr_assert_eq(s, (enum dm_stage)i);
    }
    cr_assert_eq(dm_stage_parse(&s, ""), 0);
    cr_assert_eq(s, DM_STAGE_PLAN, "no checkpoint: from the start");
    cr_assert_eq(dm_stage_parse(&s, NULL), 0);
    cr_assert_eq(s, DM_STAGE_PLAN);
    cr_assert_eq(dm_stage_parse(&s, "deploy"), DM_ERR_INVALID);
    cr_assert_str_eq(dm_stage_name(DM_STAGE_COUNT), "unknown");
}

Test(job, terminal_statuses)
{
    static const char *const yes[] = {"complete", "failed", "cancelled", "dead_lettered",
                                      "rejected"};
    static const char *const no[] = {"planning", "paused_approval", "retrying", "duplicate", ""};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        cr_assert(dm_status_is_terminal(yes[i]), "%s", yes[i]);
    }
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
        cr_assert_not(dm_status_is_terminal(no[i]), "%s", no[i]);
    }
    cr_assert_not(dm_status_is_terminal(NULL));
}

Test(job, event_extra_is_a_json_fragment)
{
    static const char *const files[] = {"a.ts", "b \"q\".ts"};
    struct dm_event_extra x = {0};
    struct dm_buf b;
    cJSON *o;
    char *text;

    x.step = "generate";
    x.path = "src/x.ts";
    x.files = files;
    x.n_files = 2;
    x.error = "line\nbreak";
    x.flagged_json = "[{\"rule\":\"r\"}]";
    x.bytes = 42;
    x.file_tokens = 7;
    x.file_cost = 0.5;
    dm_buf_init(&b, 0);
    cr_assert_eq(dm_buf_puts(&b, "{\"jobId\":\"j\""), 0);
    cr_assert_eq(dm_event_extra_append(&b, &x), 0);
    cr_assert_eq(dm_buf_puts(&b, "}"), 0);
    text = dm_buf_detach(&b);
    o = cJSON_Parse(text);
    cr_assert_not_null(o, "%s", text);
    cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(o, "step")), "generate");
    cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(o, "error")), "line\nbreak");
    cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetArrayItem(cJSON_GetObjectItem(o, "files"), 1)),
                     "b \"q\".ts");
    cr_assert_eq(cJSON_GetNumberValue(cJSON_GetObjectItem(o, "bytes")), 42);
    cr_assert_eq(cJSON_GetNumberValue(cJSON_GetObjectItem(o, "fileTokens")), 7);
    cr_assert(cJSON_IsArray(cJSON_GetObjectItem(o, "flagged")));
    cr_assert_null(cJSON_GetObjectItem(o, "prUrl"), "unset members are left out");
    cJSON_Delete(o);
    free(text);
}
