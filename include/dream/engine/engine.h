/*
 * engine: one replica's job engine on Redis Streams.
 *
 * Owns the three Redis connections (blocking reader, commands, subscriber), the consumer group
 * on <prefix>:jobs, intake and validation of entries, the in-flight jobs (at most max_jobs),
 * their fenced writes (one Lua script per write, applied in order per job, retried across
 * reconnects, idempotent), lease heartbeats, the reclaim sweep, dead letters, the control
 * channel (cancel), the worker heartbeat hash and the orderly shutdown. The stages themselves
 * come from a struct dm_stage_ops. Loop thread only.
 */
#ifndef DREAM_ENGINE_H
#define DREAM_ENGINE_H

#include <uv.h>

#include "dream/core/config.h"
#include "dream/domain/job.h"

struct dm_engine;

/* Called once when the engine has stopped (every handle closed, every job gone). */
typedef void (*dm_engine_stopped_cb)(struct dm_engine *e, void *arg);

/* Creates the engine and starts it (connects, creates the group, starts reading). cfg and
 * stages must outlive the engine. Returns 0 or a negative enum dm_err. */
int dm_engine_start(struct dm_engine **out, uv_loop_t *loop, const struct dm_config *cfg,
                    const struct dm_stage_ops *stages, dm_engine_stopped_cb stopped, void *arg);

/* Orderly shutdown: stop reading, give in-flight jobs cfg->shutdown_grace_ms to reach a
 * checkpoint (the rest stay pending for other replicas), then close everything; `stopped` fires
 * and the engine frees itself. force = 1 skips the grace period. Idempotent. */
void dm_engine_stop(struct dm_engine *e, int force);

struct dm_metrics;
struct dm_callbacks;

/* Lets the engine report to metrics (may be NULL) and POST every event of jobs with a
 * callbackUrl through callbacks (may be NULL). Both must outlive the engine. Call right after
 * dm_engine_start. */
void dm_engine_observe(struct dm_engine *e, struct dm_metrics *metrics,
                       struct dm_callbacks *callbacks);

/* Jobs in flight on this replica. */
int dm_engine_inflight(const struct dm_engine *e);

/* 1 when all three connections are up and the engine is not stopping. */
int dm_engine_ready(const struct dm_engine *e);

/* The engine's loop (for stages). */
uv_loop_t *dm_engine_loop(const struct dm_engine *e);

/* The engine a job belongs to. */
struct dm_engine *dm_job_engine(const struct dm_job *job);

/* The configuration. */
const struct dm_config *dm_engine_config(const struct dm_engine *e);

/* Redis reconnections so far, all connections together. */
unsigned long dm_engine_reconnects(const struct dm_engine *e);

#endif
