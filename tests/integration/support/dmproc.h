/*
 * dmproc: starting dreamd replicas against a test redis-server, submitting jobs, and reading
 * back the events they wrote, for integration tests. Test processes only.
 */
#ifndef DMPROC_H
#define DMPROC_H

#include <hiredis/hiredis.h>
#include <sys/types.h>

#include "dmtest.h"

struct dmt_replica {
    pid_t pid;
    char name[64];
    char log[512];
};

/* Starts build/dreamd with --redis-url of r, --consumer=name, --admin-addr= and the extra
 * arguments (NULL-terminated, may be NULL); its log goes to <dir>/<name>.log. */
void dmt_replica_start(struct dmt_replica *rep, const struct dmt_redis *r, const char *dir,
                       const char *name, const char *const *extra);

/* Waits until the replica's worker heartbeat hash exists (it is connected); aborts the test
 * after timeout_ms. */
void dmt_replica_wait_ready(const struct dmt_replica *rep, redisContext *c, int timeout_ms);

/* SIGTERM and wait; returns the exit status (waitpid form) or -1 when it did not exit within
 * timeout_ms (it is then killed). */
int dmt_replica_stop(struct dmt_replica *rep, int timeout_ms);

/* A valid job JSON for id (caller frees). trust may be NULL ("builder"). */
char *dmt_job_json(const char *id, const char *spec, const char *trust);

/* XADD <prefix>:jobs * type build job <json>; returns the entry id (caller frees). */
char *dmt_submit(redisContext *c, const char *json);

/* Per-job view of the event stream. */
struct dmt_jobevents {
    char id[130];
    int n;           /* events */
    int terminal;    /* terminal events */
    char last[32];   /* last status */
    int seq_ok;      /* seq runs 1..n without gaps or repeats */
    char worker[64]; /* worker of the terminal event */
};

/* Reads every event of dream:events and groups them by job. Returns the number of jobs;
 * *out is an array the caller frees. */
int dmt_collect(redisContext *c, struct dmt_jobevents **out);

/* Finds a job in a collection (NULL if absent). */
const struct dmt_jobevents *dmt_find(const struct dmt_jobevents *v, int n, const char *id);

/* Waits until `want` jobs have a terminal event (or timeout_ms passes); returns how many do. */
int dmt_wait_terminal(redisContext *c, int want, int timeout_ms);

/* Counts occurrences of needle in a file (0 when the file is missing). */
int dmt_count_in_file(const char *path, const char *needle);

/* ---- waiting on a condition, with a deadline (instead of sleeping and hoping) ----
 * Each polls every 20 ms at most and returns as soon as the condition holds, or when timeout_ms
 * has passed; it returns the last value it saw, for the test to assert on. */

/* Waits until needle occurs at least want times in the file; returns the count. */
int dmt_wait_in_file(const char *path, const char *needle, int want, int timeout_ms);

/* Entries of dream:jobs pending in group `workers`: all of them (consumer NULL) or those of one
 * consumer. -1 when XPENDING fails. */
long long dmt_pending(redisContext *c, const char *consumer);

/* Waits until dmt_pending(c, consumer) == want; returns the count. */
long long dmt_wait_pending(redisContext *c, const char *consumer, long long want, int timeout_ms);

/* Waits until at least want jobs have an event in dream:events (they started); returns how many
 * do. */
int dmt_wait_started(redisContext *c, int want, int timeout_ms);

/* Waits until job id has an event with this status in dream:events; returns 1 if it does. */
int dmt_wait_event(redisContext *c, const char *id, const char *status, int timeout_ms);

/* Waits until a client of the server is blocked in the command cmd (lower case, e.g. "xread":
 * a reader is waiting for entries, so an entry added now reaches it); returns 1 if one is.
 * XREADGROUP is another command: replicas waiting for jobs do not count as "xread". */
int dmt_wait_blocked(redisContext *c, const char *cmd, int timeout_ms);

#endif
