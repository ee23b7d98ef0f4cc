/*
 * stages_test: timed no-op stages for engine tests and benchmarks (see
 * include/dream/stages/stages_test.h). Pure; loop thread.
 */
#include "dream/stages/stages_test.h"
#include "dream/core/error.h"

#include <string.h>

static long stage_ms;

static void stage_elapsed(struct dm_job *job)
{
    dm_job_stage_done(job, 0, NULL);
}

static void stage_cancelled(struct dm_job *job)
{
    struct dm_error err;
    dm_error_set(&err, DM_ERR_CANCELLED, "stage %s interrupted", dm_stage_name(job->stage));
    dm_job_stage_done(job, DM_ERR_CANCELLED, &err);
}

static int run(struct dm_job *job)
{
    return job->io->after(job, stage_ms, stage_elapsed);
}

static void cancel(struct dm_job *job)
{
    /* Replaces the pending timer: the stage ends now, reported asynchronously. */
    job->io->after(job, 0, stage_cancelled);
}

void dm_stages_test_init(struct dm_stage_ops *ops, long ms)
{
    memset(ops, 0, sizeof(*ops));
    stage_ms = ms;
    for (int i = 0; i < DM_STAGE_DONE; i++) {
        ops->run[i] = run;
    }
    ops->cancel = cancel;
}
