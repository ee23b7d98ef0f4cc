/*
 * scripts: the Lua scripts that make each multi-key write of a job one atomic step (job hash +
 * events + ack + parked set), fenced on the job's epoch. Shared by dreamd and dreamctl. Pure
 * (just text); the argument layouts are documented at each script in src/domain/scripts.c. The
 * key names passed as KEYS come from include/dream/core/keys.h.
 */
#ifndef DREAM_SCRIPTS_H
#define DREAM_SCRIPTS_H

/* Takes ownership of a delivered entry: duplicate checks, epoch/attempts bump, dead letter past
 * max attempts, `failed` for invalid jobs, `started`/`retrying`/`resumed` events. */
extern const char dm_script_start[];
/* A fenced, idempotent stage transition: hash fields + optional file checkpoint + optional
 * event + optional ack / park / unpark / TTL. */
extern const char dm_script_transition[];
/* Entry with no usable job: to the dead-letter stream and acknowledged. */
extern const char dm_script_dead[];
/* An entry deleted from the stream while pending for a dead consumer: the job that named it ends
 * dead_lettered, its dead letter carrying the job from the hash. */
extern const char dm_script_orphan[];
/* Idle reset of this consumer's own pending entries; returns the ones it no longer owns. */
extern const char dm_script_heartbeat[];
/* Approver actions on a parked job (dreamctl): approve, reject; and cancel of any job. */
extern const char dm_script_approve[];
extern const char dm_script_reject[];
extern const char dm_script_cancel[];
/* Moves a dead letter back onto the jobs stream (dreamctl dead requeue). */
extern const char dm_script_requeue[];
/* Queues a `type=retry` entry for a job that ended (dreamctl retry, the dashboard). */
extern const char dm_script_retry[];

#endif
