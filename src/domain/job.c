/*
 * job: stage names and order, terminal statuses, event fragments (see include/dream/domain/job.h).
 * Pure; any thread.
 */
#include "dream/domain/job.h"
#include "dream/core/error.h"
#include "dream/core/log.h"

#include <math.h>
#include <string.h>

static const char *const stage_names[DM_STAGE_COUNT] = {"plan", "generate", "review", "gate",
                                                        "push", "pr",       "done"};

const char *dm_stage_name(enum dm_stage s)
{
    if ((int)s < 0 || s >= DM_STAGE_COUNT) {
        return "unknown";
    }
    return stage_names[s];
}

int dm_stage_parse(enum dm_stage *out, const char *name)
{
    if (!name || !*name) {
        *out = DM_STAGE_PLAN;
        return 0;
    }
    for (int i = 0; i < DM_STAGE_COUNT; i++) {
        if (strcmp(name, stage_names[i]) == 0) {
            *out = (enum dm_stage)i;
            return 0;
        }
    }
    return DM_ERR_INVALID;
}

const char *dm_stage_start_status(enum dm_stage s)
{
    switch (s) {
    case DM_STAGE_PLAN:
        return "planning";
    case DM_STAGE_REVIEW:
        return "testing";
    case DM_STAGE_PUSH:
        return "pushing";
    case DM_STAGE_DONE:
        return "complete";
    default:
        return NULL;
    }
}

int dm_status_is_terminal(const char *status)
{
    static const char *const terminal[] = {"complete", "failed", "cancelled", "dead_lettered",
                                           "rejected"};
    for (size_t i = 0; status && i < sizeof(terminal) / sizeof(terminal[0]); i++) {
        if (strcmp(status, terminal[i]) == 0) {
            return 1;
        }
    }
    return 0;
}

static int add_str(struct dm_buf *b, const char *key, const char *value)
{
    /* JSON-escape through a bounded scratch buffer; values here are short (paths, urls, errors)
     * and longer ones are cut at a character boundary. */
    char tmp[4096];
    unsigned long pos = 0;
    int rc;

    if (!value) {
        return 0;
    }
    dm_json_escape_into(tmp, sizeof(tmp), &pos, value);
    rc = dm_buf_printf(b, ",\"%s\":\"", key);
    if (!rc) {
        rc = dm_buf_append(b, tmp, pos);
    }
    if (!rc) {
        rc = dm_buf_puts(b, "\"");
    }
    return rc;
}

int dm_event_extra_append(struct dm_buf *b, const struct dm_event_extra *x)
{
    int rc = 0;

    if (!x) {
        return 0;
    }
    rc = rc ? rc : add_str(b, "step", x->step);
    rc = rc ? rc : add_str(b, "path", x->path);
    if (!rc && x->files) {
        rc = dm_buf_puts(b, ",\"files\":[");
        for (size_t i = 0; !rc && i < x->n_files; i++) {
            char tmp[2048];
            unsigned long pos = 0;
            dm_json_escape_into(tmp, sizeof(tmp), &pos, x->files[i]);
            rc = dm_buf_printf(b, "%s\"%s\"", i ? "," : "", tmp);
        }
        rc = rc ? rc : dm_buf_puts(b, "]");
    }
    rc = rc ? rc : add_str(b, "prUrl", x->pr_url);
    rc = rc ? rc : add_str(b, "branch", x->branch);
    rc = rc ? rc : add_str(b, "error", x->error);
    rc = rc ? rc : add_str(b, "generationId", x->generation_id);
    if (!rc && x->flagged_json) {
        rc = dm_buf_printf(b, ",\"flagged\":%s", x->flagged_json);
    }
    if (!rc && x->plan_json) {
        rc = dm_buf_printf(b, ",\"plan\":%s", x->plan_json);
    }
    if (!rc && x->bytes > 0) {
        rc = dm_buf_printf(b, ",\"bytes\":%lld", x->bytes);
    }
    if (!rc && x->file_tokens > 0) {
        rc = dm_buf_printf(b, ",\"fileTokens\":%lld", x->file_tokens);
    }
    if (!rc && x->file_cost > 0 && isfinite(x->file_cost)) {
        rc = dm_buf_printf(b, ",\"fileCostUsd\":%.6f", x->file_cost);
    }
    return rc;
}

/* ---- the state machine ---- */

#include "dream/domain/jobreq.h"

#include <stdio.h>
#include <stdlib.h>

void dm_job_init(struct dm_job *job, const struct dm_stage_ops *stages, const struct dm_job_io *io,
                 void *engine)
{
    memset(job, 0, sizeof(*job));
    job->stages = stages;
    job->io = io;
    job->engine = engine;
}

void dm_job_clear(struct dm_job *job)
{
    if (job->stages && job->stages->release) {
        job->stages->release(job);
    }
    free(job->job_json);
    dm_jobreq_free(job->req);
    free(job->plan_json);
    free(job->branch);
    free(job->pr_url);
    free(job->commit);
    free(job->verification);
    job->job_json = job->plan_json = job->branch = job->pr_url = job->commit = NULL;
    job->verification = NULL;
    job->req = NULL;
}

static void go_over(struct dm_job *job)
{
    if (!job->over) {
        job->over = 1;
        job->io->over(job);
    }
}

static void on_finish_written(struct dm_job *job, int rc, int cancel)
{
    (void)cancel;
    if (rc && rc != DM_ERR_FENCED) {
        dm_errorf("job", job->id,
                  "could not record the end of the job (%s); another replica "
                  "will take it over after the lease",
                  dm_err_name(rc));
    }
    go_over(job);
}

void dm_job_finish(struct dm_job *job, const char *status, const char *message,
                   const struct dm_event_extra *extra)
{
    const char *fields[8];
    size_t n = 0;
    struct dm_job_write w;
    int failed = strcmp(status, "complete") != 0;

    if (job->over || job->fenced) {
        go_over(job);
        return;
    }
    fields[n++] = "status";
    fields[n++] = status;
    if (failed) {
        fields[n++] = "error";
        fields[n++] = message;
    }
    memset(&w, 0, sizeof(w));
    w.status = status;
    w.message = message;
    w.extra = extra;
    w.flags = DM_JOB_WRITE_ACK | DM_JOB_WRITE_TERMINAL;
    w.fields = fields;
    w.n_fields = n;
    if (strcmp(status, "failed") == 0) {
        dm_warn("job", job->id, "failed: %s", message);
    } else {
        dm_info("job", job->id, "%s: %s", status, message);
    }
    job->final_status = status;
    if (job->io->write(job, &w, on_finish_written)) {
        go_over(job);
    }
}

static void finish_cancelled(struct dm_job *job)
{
    char msg[128];
    struct dm_event_extra x = {0};
    if (job->end_status[0]) {
        x.error = job->end_reason;
        x.step = dm_stage_name(job->stage);
        dm_job_finish(job, job->end_status, job->end_reason, &x);
        return;
    }
    snprintf(msg, sizeof(msg), "cancelled at stage %s", dm_stage_name(job->stage));
    x.error = msg;
    x.step = dm_stage_name(job->stage);
    dm_job_finish(job, "cancelled", msg, &x);
}

/* A stage ran past its deadline (a silent server, a hung library call): ask it to stop; it
 * reports DM_ERR_CANCELLED, which dm_job_stage_done turns into a transient failure. A stage that
 * cannot even be interrupted (a blocked libgit2 call) no longer holds the lease: the job is
 * dropped here so another replica takes it over, and its late result is fenced off. */
static void on_stage_deadline(struct dm_job *job)
{
    if (!job->running || job->over) {
        return;
    }
    if (!job->timed_out) {
        job->timed_out = 1;
        dm_warn("job", job->id, "stage %s passed its deadline of %ld ms; stopping it",
                dm_stage_name(job->stage), job->stage_timeout_ms);
        if (job->stages->cancel) {
            job->stages->cancel(job);
        }
        /* A second, short deadline for the stage to report back. */
        if (job->running && job->io->deadline) {
            job->io->deadline(job, 5000, on_stage_deadline);
        }
        return;
    }
    dm_errorf("job", job->id, "stage %s does not stop; leaving the job to another replica",
              dm_stage_name(job->stage));
    job->fenced = 1;
}

static void on_checkpoint(struct dm_job *job, int rc, int cancel)
{
    int src;

    if (rc == DM_ERR_FENCED) {
        job->fenced = 1;
        dm_warn("job", job->id, "lost the job to another replica (fenced); dropping it");
        go_over(job);
        return;
    }
    if (rc) {
        dm_errorf("job", job->id,
                  "could not record stage %s (%s); leaving the job for another "
                  "replica",
                  dm_stage_name(job->stage), dm_err_name(rc));
        go_over(job);
        return;
    }
    if (job->fenced) {
        /* The heartbeat learnt meanwhile that another replica owns the job. */
        go_over(job);
        return;
    }
    if (cancel) {
        job->cancel_requested = 1;
    }
    if (job->cancel_requested) {
        finish_cancelled(job);
        return;
    }
    if (job->stopping) {
        go_over(job);
        return;
    }
    job->running = 1;
    job->timed_out = 0;
    if (job->stage_timeout_ms > 0 && job->io->deadline) {
        job->io->deadline(job, job->stage_timeout_ms, on_stage_deadline);
    }
    dm_error_clear(&job->error);
    src = job->stages->run[job->stage](job);
    if (src) {
        /* The stage could not even start: same outcome as a stage that failed. */
        job->running = 0;
        if (!job->error.code) {
            dm_error_set(&job->error, src, "stage %s could not start: %s",
                         dm_stage_name(job->stage), dm_err_name(src));
        }
        dm_job_stage_done(job, src, &job->error);
    }
}

void dm_job_dispatch(struct dm_job *job)
{
    const char *fields[2];
    struct dm_job_write w;
    struct dm_event_extra x = {0};

    if (job->over) {
        return;
    }
    if (job->fenced) {
        go_over(job);
        return;
    }
    if (job->stopping) {
        dm_info("job", job->id, "shutting down: left pending at stage %s for another replica",
                dm_stage_name(job->stage));
        go_over(job);
        return;
    }
    if (job->cancel_requested) {
        finish_cancelled(job);
        return;
    }
    if (job->stage >= DM_STAGE_DONE) {
        x.pr_url = job->pr_url;
        x.branch = job->branch;
        dm_job_finish(job, "complete",
                      job->dry_run ? "dry run complete (planner trust): nothing pushed, no pull "
                                     "request"
                                   : "build complete",
                      &x);
        return;
    }
    if (!job->stages->run[job->stage]) {
        char msg[160];
        snprintf(msg, sizeof(msg), "stage %s is not available in this build",
                 dm_stage_name(job->stage));
        x.error = msg;
        x.step = dm_stage_name(job->stage);
        dm_job_finish(job, "failed", msg, &x);
        return;
    }
    fields[0] = "stage";
    fields[1] = dm_stage_name(job->stage);
    memset(&w, 0, sizeof(w));
    w.status = dm_stage_start_status(job->stage);
    w.message = w.status ? dm_stage_name(job->stage) : NULL;
    x.step = dm_stage_name(job->stage);
    w.extra = &x;
    w.fields = fields;
    w.n_fields = 2;
    if (job->io->write(job, &w, on_checkpoint)) {
        go_over(job);
    }
}

static void retry_stage(struct dm_job *job)
{
    dm_job_dispatch(job);
}

static void on_retrying_written(struct dm_job *job, int rc, int cancel)
{
    long delay = 1000L << (job->transient_retries - 1);
    if (rc) {
        on_checkpoint(job, rc, cancel);
        return;
    }
    if (cancel) {
        job->cancel_requested = 1;
    }
    if (job->io->after(job, delay, retry_stage)) {
        go_over(job);
    }
}

void dm_job_stage_done(struct dm_job *job, int rc, const struct dm_error *err)
{
    const char *msg = err && err->msg[0] ? err->msg : dm_err_name(rc);
    struct dm_event_extra x = {0};

    job->running = 0;
    if (job->io->deadline) {
        job->io->deadline(job, 0, NULL);
    }
    if (job->over) {
        return;
    }
    if (rc == DM_ERR_CANCELLED && job->timed_out && !job->cancel_requested && !job->stopping) {
        rc = DM_ERR_TRANSIENT;
        dm_error_set(&job->error, rc, "stage %s passed its deadline of %ld ms",
                     dm_stage_name(job->stage), job->stage_timeout_ms);
        err = &job->error;
    }
    msg = err && err->msg[0] ? err->msg : dm_err_name(rc);
    if (job->fenced || rc == DM_ERR_FENCED) {
        job->fenced = 1;
        go_over(job);
        return;
    }
    if (rc == DM_JOB_PARKED) {
        if (!job->final_status) {
            job->final_status = "paused_approval";
        }
        go_over(job);
        return;
    }
    if (rc == DM_ERR_CANCELLED) {
        if (job->stopping && !job->cancel_requested) {
            go_over(job);
            return;
        }
        finish_cancelled(job);
        return;
    }
    if (rc == 0) {
        job->transient_retries = 0;
        job->stage++;
        dm_job_dispatch(job);
        return;
    }
    x.error = msg;
    x.step = dm_stage_name(job->stage);
    if (rc == DM_ERR_TRANSIENT && job->transient_retries < 3 && !job->stopping) {
        char text[DM_ERROR_MSG_MAX + 64];
        struct dm_job_write w;
        job->transient_retries++;
        snprintf(text, sizeof(text), "stage %s will be retried (%d of 3): %s",
                 dm_stage_name(job->stage), job->transient_retries, msg);
        memset(&w, 0, sizeof(w));
        w.status = "retrying";
        w.message = text;
        w.extra = &x;
        if (job->io->write(job, &w, on_retrying_written)) {
            go_over(job);
        }
        return;
    }
    dm_job_finish(job, "failed", msg, &x);
}

void dm_job_request_end(struct dm_job *job, const char *status, const char *reason)
{
    snprintf(job->end_status, sizeof(job->end_status), "%s", status);
    snprintf(job->end_reason, sizeof(job->end_reason), "%s", reason);
    dm_job_request_cancel(job);
}

void dm_job_request_cancel(struct dm_job *job)
{
    job->cancel_requested = 1;
    if (job->running && job->stages->cancel) {
        job->stages->cancel(job);
    }
}
