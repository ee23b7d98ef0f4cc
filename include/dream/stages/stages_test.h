/*
 * stages_test: stages that only take time (--stages=test). Each stage waits `ms` milliseconds
 * through the job's io table and succeeds; cancel ends it at once with DM_ERR_CANCELLED. They
 * exist to exercise and benchmark the engine (leases, fencing, restarts, shutdown) without
 * external services. Pure; loop thread.
 */
#ifndef DREAM_STAGES_TEST_H
#define DREAM_STAGES_TEST_H

#include "dream/domain/job.h"

/* Fills ops with the test stages, each lasting ms. */
void dm_stages_test_init(struct dm_stage_ops *ops, long ms);

#endif
