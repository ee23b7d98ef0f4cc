/*
 * job: the stages of a build job and the pure parts of its state machine.
 *
 * A job runs through the stages below in order; the engine (engine.c) owns the I/O and calls
 * the stage functions of an ops table, each of which starts asynchronous work and reports back
 * once. Every stage boundary is a checkpoint recorded in the job hash (`stage`), so a reclaimed
 * job resumes at the stage it had reached. This module holds the names, the order and the event
 * fragments; it does no I/O. Pure; any thread.
 */
#ifndef DREAM_JOB_H
#define DREAM_JOB_H

#include <stddef.h>

#include "dream/core/buf.h"
#include "dream/core/error.h"

struct dm_jobreq;

enum dm_stage {
    DM_STAGE_PLAN = 0, /* spec → plan (planning / planned events) */
    DM_STAGE_GENERATE, /* every file through the LLM (writing / progress / generated) */
    DM_STAGE_REVIEW,   /* validation and review (testing) */
    DM_STAGE_GATE,     /* safety gate: may park the job (paused_approval) */
    DM_STAGE_PUSH,     /* commit and push (pushing) */
    DM_STAGE_PR,       /* open or find the pull request (pr_open) */
    DM_STAGE_DONE,     /* complete */
    DM_STAGE_COUNT,
};

/* "plan", "generate", "review", "gate", "push", "pr", "done". */
const char *dm_stage_name(enum dm_stage s);

/* Parses a stage name; an empty or NULL name is DM_STAGE_PLAN (a job that never reached a
 * checkpoint starts from the beginning). Returns 0 or DM_ERR_INVALID. */
int dm_stage_parse(enum dm_stage *out, const char *name);

/* The event status announced when a stage starts ("planning", "writing" is per file so NULL for
 * generate, "testing", NULL for gate, "pushing", NULL for pr, "complete" for done). */
const char *dm_stage_start_status(enum dm_stage s);

/* 1 for statuses that end a job: complete, failed, cancelled, dead_lettered, rejected. */
int dm_status_is_terminal(const char *status);

/* Optional fields of an event, beyond those every event has. NULL/0 members are left out. */
struct dm_event_extra {
    const char *step;
    const char *path;
    const char *const *files; /* n_files paths */
    size_t n_files;
    const char *pr_url;
    const char *branch;
    const char *error;
    const char *flagged_json; /* a JSON value, inserted as is */
    const char *plan_json;    /* a JSON value, inserted as is */
    long long bytes;          /* progress: bytes received so far (when > 0) */
    long long file_tokens;    /* generated: this file's tokens (when > 0) */
    double file_cost;         /* generated: this file's cost (when > 0) */
    const char *generation_id;
};

/* Appends `,"step":"…","path":"…",…` (a fragment that goes after the fixed fields of an event
 * JSON object; empty when nothing is set) to b. Returns 0 or a negative enum dm_err. */
int dm_event_extra_append(struct dm_buf *b, const struct dm_event_extra *x);

/* ---- the state machine ---- */

struct dm_job;

/* What a job write does besides setting fields and emitting its event (a bitmask). */
enum dm_job_write_flag {
    DM_JOB_WRITE_ACK = 1,      /* acknowledge the job's stream entry: the job is not redelivered */
    DM_JOB_WRITE_PARK = 2,     /* add the job to the parked set (paused_approval) */
    DM_JOB_WRITE_UNPARK = 4,   /* remove the job from the parked set */
    DM_JOB_WRITE_TERMINAL = 8, /* the job is over: its keys get the job TTL */
};

/* One fenced write of a job (hash fields, optional file checkpoint, optional event, flags).
 * Everything is borrowed for the duration of the call that takes it (the engine copies). */
struct dm_job_write {
    const char *status;  /* event status, NULL = no event */
    const char *message; /* event message */
    const struct dm_event_extra *extra;
    unsigned flags; /* enum dm_job_write_flag, or-ed; 0 = none */
    const char *file_path;
    const char *file_content;
    size_t file_len;
    const char *const *fields; /* field, value, field, value ... */
    size_t n_fields;           /* number of strings in fields (even) */
};

/* Completion of a write: rc is 0, DM_ERR_FENCED (the job belongs to someone else now) or another
 * error; cancel is 1 when the job's durable cancel flag is set. */
typedef void (*dm_job_write_cb)(struct dm_job *job, int rc, int cancel);

/* What the engine provides to the state machine and the stages. */
struct dm_job_io {
    /* Queues a fenced write; writes of one job are applied in order. done may be NULL. Returns
     * 0 (done fires exactly once, later) or a negative enum dm_err. */
    int (*write)(struct dm_job *job, const struct dm_job_write *w, dm_job_write_cb done);
    /* Calls fn(job) after ms milliseconds (backoff, test stages). One pending call per job. */
    int (*after)(struct dm_job *job, long ms, void (*fn)(struct dm_job *job));
    /* Arms (ms > 0) or disarms (ms == 0) the running stage's deadline; fn(job) fires when it
     * passes. May be NULL (no deadlines). */
    int (*deadline)(struct dm_job *job, long ms, void (*fn)(struct dm_job *job));
    /* Reads the job's checkpointed files (<prefix>:job:<id>:files). done fires exactly once,
     * later, with rc 0 and n files (borrowed for the call) or an error. */
    int (*read_files)(struct dm_job *job,
                      void (*done)(struct dm_job *job, int rc, size_t n, const char *const *paths,
                                   const char *const *contents, const size_t *lens));
    /* The job is over on this replica (finished, parked, fenced or left for another replica);
     * the engine frees it after its pending writes. */
    void (*over)(struct dm_job *job);
};

/* The stages. run[stage] starts the stage and later calls dm_job_stage_done() exactly once
 * (never inside run). A NULL entry means the stage is not available in this build: a job that
 * reaches it fails saying so. cancel (may be NULL) asks a running stage to stop soon; it then
 * reports DM_ERR_CANCELLED. */
struct dm_stage_ops {
    int (*run[DM_STAGE_COUNT])(struct dm_job *job);
    void (*cancel)(struct dm_job *job);
    /* Frees stage data hanging off job->stage_data when the job goes away (may be NULL). Work
     * still in flight must not call back into the job afterwards. */
    void (*release)(struct dm_job *job);
    void *ctx; /* the stages' shared state (e.g. the pipeline) */
    /* Intake's last word on a job that validated (may be NULL): 0 to run it, or non-zero with
     * the reason in reason (cap bytes) to answer it with a `failed` event instead (e.g. a
     * model without a known price in a job with a dollar budget). */
    int (*admit)(void *ctx, const struct dm_jobreq *req, char *reason, size_t cap);
};

/* Result codes a stage may report besides 0 and errors. */
#define DM_JOB_PARKED 1 /* the stage parked the job (its write acknowledged the entry) */

struct dm_job {
    char id[129];
    char entry[64];
    long long epoch;
    int attempts;
    enum dm_stage stage;
    char *job_json;                 /* normalised job (owned) */
    struct dm_jobreq *req;          /* parsed job (owned) */
    char *plan_json;                /* recorded plan or NULL (owned) */
    char *branch, *pr_url, *commit; /* recorded results or NULL (owned) */
    char review[16];                /* recorded review decision (proceed, pause) or "" */
    char *verification;   /* recorded whole-change check summary (Markdown) or NULL (owned) */
    int approved;         /* an approver said yes */
    int dry_run;          /* planner trust: no push, no PR */
    long long created_ms; /* when the job was first taken (its commits are dated by it) */
    long long tokens;     /* spent so far */
    double cost;
    int cancel_requested; /* durable flag seen or broadcast received */
    /* dm_job_request_end: the terminal status (and its reason) the stopped job ends with, instead
     * of "cancelled". "" = cancelled. */
    char end_status[24];
    char end_reason[200];
    int stopping; /* replica shutting down: stop at the next checkpoint */
    int fenced;   /* lost the job: no more writes */
    int running;  /* a stage is running */
    int over;
    int transient_retries;
    long stage_timeout_ms;    /* 0: stages have no deadline */
    int timed_out;            /* the running stage passed its deadline and was told to stop */
    const char *final_status; /* terminal status written, "paused_approval" when parked */
    const struct dm_stage_ops *stages;
    const struct dm_job_io *io;
    void *engine;     /* the engine's own data */
    void *stage_data; /* the running stages' data */
    struct dm_error error;
};

/* Initialises the pure part of a job (zeroes it, sets ops). */
void dm_job_init(struct dm_job *job, const struct dm_stage_ops *stages, const struct dm_job_io *io,
                 void *engine);

/* Frees what the job owns (not the job itself). */
void dm_job_clear(struct dm_job *job);

/* The single dispatch function: at a stage boundary, decides what happens next (cancel, stop for
 * shutdown, record the checkpoint and start the stage, or finish) and does it through job->io. */
void dm_job_dispatch(struct dm_job *job);

/* Reported by a stage when it ends: 0 → next stage; DM_JOB_PARKED → over; DM_ERR_CANCELLED →
 * `cancelled` (or left pending when stopping); DM_ERR_FENCED → over without writes;
 * DM_ERR_TRANSIENT → `retrying` and the stage again after a backoff (at most 3 times); any other
 * error → `failed` with err's message. err may be NULL when rc is 0. */
void dm_job_stage_done(struct dm_job *job, int rc, const struct dm_error *err);

/* Marks the job cancelled by request; the stage is asked to stop. */
void dm_job_request_cancel(struct dm_job *job);

/* Stops the job like a cancel, but it ends with status (a terminal status such as
 * "dead_lettered") and reason instead of "cancelled". */
void dm_job_request_end(struct dm_job *job, const char *status, const char *reason);

/* Ends the job with a terminal status (failed/cancelled/complete) through one write that also
 * acknowledges the entry. */
void dm_job_finish(struct dm_job *job, const char *status, const char *message,
                   const struct dm_event_extra *extra);

#endif
