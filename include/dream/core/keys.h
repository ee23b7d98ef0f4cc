/*
 * keys: the Redis key schema of dreamd, in one place. Every key name the engine, the Lua scripts'
 * callers and dreamctl use is built here from the configured prefix ("dream" by default):
 *
 *   <p>:jobs                stream of job entries; consumer group DM_KEYS_GROUP
 *   <p>:dead                stream of dead letters
 *   <p>:events              stream of every job's events, and the pub/sub channel they go to
 *   <p>:parked              sorted set of jobs waiting in paused_approval (score: parked at, ms)
 *   <p>:control             pub/sub channel of control messages ({"cancel":"<jobId>"})
 *   <p>:job:<jobId>         hash of one job's state
 *   <p>:job:<jobId>:events  stream of one job's events
 *   <p>:job:<jobId>:files   hash of one job's checkpointed files (path -> content)
 *   <p>:worker:<consumer>   hash of one replica's heartbeat (expires when it stops beating)
 *   <p>:idx:created         sorted set of jobs by creation (score: created, ms; member: jobId)
 *   <p>:idx:status:<status> sorted set of the jobs now in status (score: last change, ms)
 *   <p>:idx:repo:<own/name> sorted set of a repository's jobs (score: created, ms)
 *   <p>:idx:user:<userId>   sorted set of a user's jobs (score: created, ms)
 *   <p>:idx:trim            hash: where trimming those three kinds of sets goes on (Lua only)
 *   <p>:stats:<hour>        hash of one hour's counters (hour: ms since the epoch / 3600000):
 *                           status:<s>, dur:<b>, sdur:<stage>:<b>, tokens, cost,
 *                           tokens|cost:model:<m>, tokens|cost:repo:<r> (README, Job index)
 *
 * The REQUEUE script (src/domain/scripts.c) derives the three job keys itself, because it learns
 * the jobId only inside Redis; it spells them as above. The scripts keep the index and the hour
 * counters (LUA_INDEX) under keys they derive from the prefix, spelt as above.
 *
 * Pure: no I/O, no state; safe on any thread. Every function writes a NUL-terminated name into
 * the caller's buffer and refuses, rather than truncates, a name that does not fit.
 */
#ifndef DREAM_KEYS_H
#define DREAM_KEYS_H

#include <stddef.h>

/* The consumer group of every replica on <p>:jobs. */
#define DM_KEYS_GROUP "workers"

/* Approximate cap (MAXLEN ~) of one job's event stream, for every writer of it. */
#define DM_KEYS_JOB_EVENTS_MAXLEN "10000"

/* Longest prefix accepted (the rule of the `prefix` setting and of dreamctl --prefix). */
#define DM_KEYS_PREFIX_MAX 64

/* Room for any key built from a prefix of at most DM_KEYS_PREFIX_MAX bytes and a jobId or
 * consumer name of at most 128 bytes, NUL included. */
#define DM_KEYS_MAX 256

/* The replica-wide keys of one prefix. */
struct dm_keys {
    char jobs[DM_KEYS_MAX];
    char dead[DM_KEYS_MAX];
    char events[DM_KEYS_MAX]; /* stream and channel */
    char parked[DM_KEYS_MAX];
    char control[DM_KEYS_MAX];
    char idx_created[DM_KEYS_MAX];
};

/* The per-job keys. */
enum dm_job_key {
    DM_JOB_KEY_HASH = 0, /* <p>:job:<jobId> */
    DM_JOB_KEY_EVENTS,   /* <p>:job:<jobId>:events */
    DM_JOB_KEY_FILES,    /* <p>:job:<jobId>:files */
};

/* Families of keys that are listed with SCAN. */
enum dm_key_family {
    DM_KEY_FAMILY_JOB = 0, /* <p>:job:<jobId> (and its :events, :files) */
    DM_KEY_FAMILY_WORKER,  /* <p>:worker:<consumer> */
};

/* Fills k with the replica-wide keys of prefix. Returns 0, DM_ERR_INVALID (prefix NULL or
 * empty) or DM_ERR_LIMIT (prefix longer than DM_KEYS_PREFIX_MAX); on error k holds empty
 * strings. */
int dm_keys_init(struct dm_keys *k, const char *prefix);

/* Writes the key `which` of job job_id into out (n bytes). Returns 0, DM_ERR_INVALID (a NULL or
 * empty part) or DM_ERR_LIMIT (does not fit; out is then ""). */
int dm_keys_job(char *out, size_t n, const char *prefix, const char *job_id, enum dm_job_key which);

/* Writes <p>:worker:<consumer> into out. Returns as dm_keys_job(). */
int dm_keys_worker(char *out, size_t n, const char *prefix, const char *consumer);

/* The index sets (see the schema above). Each writes "<p>:idx:status:<name>",
 * "<p>:idx:repo:<name>" or "<p>:idx:user:<name>" into out. Returns as dm_keys_job(). */
enum dm_idx_key {
    DM_IDX_STATUS = 0,
    DM_IDX_REPO,
    DM_IDX_USER,
};
int dm_keys_idx(char *out, size_t n, const char *prefix, enum dm_idx_key which, const char *name);

/* Writes "<p>:stats:<hour>" (hour: ms since the epoch / 3600000). Returns as dm_keys_job(). */
int dm_keys_stats_hour(char *out, size_t n, const char *prefix, long long hour);

/* Writes the SCAN pattern of a family ("<p>:job:*", "<p>:worker:*") into out. Returns as
 * dm_keys_job(). */
int dm_keys_pattern(char *out, size_t n, const char *prefix, enum dm_key_family family);

/* The name part of a key of the family: the jobId of "<p>:job:<jobId>", the consumer of
 * "<p>:worker:<consumer>". NULL when key is not of the family, or (jobs) is one of a job's
 * sub-keys (":events", ":files"). The result points into key (borrowed). */
const char *dm_keys_name_of(const char *key, const char *prefix, enum dm_key_family family);

#endif
