/*
 * engine_int: the engine's private state and the calls its files make to each other. Not for
 * stages or programs (they use include/dream/engine/engine.h).
 *
 * The engine is one module in six files, each owning one duty:
 *   engine.c   lifecycle: start, stop and its grace, the three connections, the control channel
 *              (cancel), a job's allocation and release
 *   writes.c   the io table given to the state machine: fenced writes through the TRANSITION
 *              script (queued per job, retried), file reads, the `after` timer
 *   start.c    a delivered entry becomes a job through the START script; dead letters (DEAD)
 *   reading.c  the consumer group, XREADGROUP, and the classification of each entry
 *   retry.c    `type=retry` entries: the stored job read back and started from its checkpoint
 *   leases.c   keeping jobs owned (HEARTBEAT script), reclaiming idle entries (XAUTOCLAIM with
 *              its cursor), stage deadlines
 *   worker.c   the worker heartbeat hash and the group's lag/pending for metrics
 * All of it runs on the loop thread.
 */
#ifndef DREAM_ENGINE_INT_H
#define DREAM_ENGINE_INT_H

#include "dream/core/keys.h"
#include "dream/engine/engine.h"
#include "dream/io/redis.h"

#include <stddef.h>
#include <stdint.h>

#define BLOCK_MS 2000
#define MAX_SECRETS 16
#define MAX_HOSTS 32

/* One queued job write: the TRANSITION script's arguments, owned. */
struct wreq {
    struct wreq *next;
    int argc;
    char **argv;
    size_t *lens;
    dm_job_write_cb done;
};

/* A job in flight on this replica. Freed only when it is over, has no write, start or file read
 * in flight and its three timers have closed (eng_job_release). */
struct ejob {
    struct dm_job job; /* first: a struct dm_job * is a struct ejob * */
    struct dm_engine *eng;
    struct ejob *prev, *next;
    uv_timer_t after_timer;
    uv_timer_t write_timer;
    uv_timer_t deadline_timer;
    void (*deadline_fn)(struct dm_job *job);
    void (*after_fn)(struct dm_job *job);
    struct wreq *wq_head, *wq_tail;
    int writing;  /* a transition script is in flight */
    int starting; /* the start script is in flight */
    int reads;    /* file reads in flight */
    int closing;
    int handles;
    unsigned long opseq;
    char mode[8];
    char k_hash[DM_KEYS_MAX], k_events[DM_KEYS_MAX], k_files[DM_KEYS_MAX];
};

struct dm_engine {
    uv_loop_t *loop;
    const struct dm_config *cfg;
    const struct dm_stage_ops *stages;
    dm_engine_stopped_cb stopped;
    void *arg;
    struct dm_job_io io;

    struct dm_redis_conn *reader, *cmd, *sub;
    struct dm_metrics *metrics;
    struct dm_callbacks *callbacks;
    struct dm_redis_script s_start, s_transition, s_dead, s_orphan, s_heartbeat;

    struct dm_keys keys;
    char k_worker[DM_KEYS_MAX];
    char gmax[24], ttl[24];
    char sweep_cursor[64]; /* XAUTOCLAIM's cursor: the sweep walks the whole PEL over time */

    struct ejob *jobs;
    int inflight;
    int reading;
    /* max_jobs is a hard bound: an outstanding XREADGROUP and XAUTOCLAIM each hold the slots
     * their COUNT may fill (free = max_jobs - inflight - read_slots - sweep_slots), released
     * when their reply arrives. A sweep that finds no free slot (running jobs, or the slots
     * the blocking read holds) is wanted (sweep_wanted): it runs before the next read. */
    int read_slots;
    int sweep_slots;
    int sweeping;
    int sweep_wanted;
    int group_ready;
    int group_creating;
    int stopping;
    int forcing;      /* grace is over: stages were asked to stop */
    int conns_closed; /* Redis connections closed: writes can no longer land */
    int finished;     /* engine handles closing */
    int handles;
    int cmds; /* engine-level commands in flight (callbacks refer to the engine) */
    long long started_ms;

    char *secrets_buf;
    const char *secrets[MAX_SECRETS];
    size_t n_secrets;
    char *hosts_buf;  /* DREAM_CALLBACK_ALLOW_HTTP, split into hosts */
    char *ihosts_buf; /* DREAM_CALLBACK_HOSTS, split into ihosts */
    const char *ihosts[MAX_HOSTS];
    size_t n_ihosts;
    const char *hosts[MAX_HOSTS];
    size_t n_hosts;

    uv_timer_t hb_timer, sweep_timer, worker_timer, grace_timer, retry_timer;
};

/* ---- engine.c ---- */

/* POSTs an event to the job's callbackUrl; never blocks or fails the job. */
void eng_post_callback(struct dm_engine *e, const struct dm_job *job, const char *ev, size_t len);
/* Tells metrics whether the engine is ready. */
void eng_update_readiness(struct dm_engine *e);
/* A new job for a delivered entry, linked into e->jobs; NULL when out of memory. */
struct ejob *eng_job_new(struct dm_engine *e, const char *entry, const char *job_id);
/* Frees the job (through its timers' close callbacks) once nothing refers to it any more. */
void eng_job_release(struct ejob *ej);
/* Finishes a stop once no job and no read is left; called after every engine-level reply. */
void eng_maybe_finish_stop(struct dm_engine *e);

/* ---- writes.c: the io table ---- */

int eng_io_write(struct dm_job *job, const struct dm_job_write *w, dm_job_write_cb done);
int eng_io_after(struct dm_job *job, long ms, void (*fn)(struct dm_job *job));
int eng_io_read_files(struct dm_job *job,
                      void (*done)(struct dm_job *job, int rc, size_t n, const char *const *paths,
                                   const char *const *contents, const size_t *lens));
void eng_io_over(struct dm_job *job);
/* Drops queued writes (their callbacks see rc); used when fenced or shutting down hard. */
void eng_drop_writes(struct ejob *ej, int rc);

/* ---- start.c ---- */

struct dm_intake;
/* Runs the START script for a classified entry; mode is "new", "claim" or "resume". Takes the
 * parsed job out of in. */
void eng_start_job(struct dm_engine *e, const char *entry, const char *mode, struct dm_intake *in);
/* The same for a job already allocated (eng_job_new) for its entry and jobId, which must be
 * in->job_id; it is released when the START script does not run it. */
void eng_start_on(struct ejob *ej, const char *mode, struct dm_intake *in);
/* Moves an entry to the dead-letter stream (raw: the entry's job, kept up to 1 MiB). */
void eng_dead_letter(struct dm_engine *e, const char *entry, const char *raw, size_t raw_len,
                     const char *reason);
/* An entry the sweep found deleted from the stream while pending for a dead consumer: the job
 * that named it ends dead_lettered and its dead letter carries the job (the ORPHAN script). */
void eng_orphan(struct dm_engine *e, const char *entry);

/* ---- reading.c ---- */

/* Creates the consumer group (idempotent; retried every second until it exists). */
void eng_ensure_group(struct dm_engine *e);
/* Issues the next blocking read when there is room for jobs. */
void eng_read_more(struct dm_engine *e);
/* One entry [id, [field, value, ...]]: classified, then started or dead-lettered. claimed: it
 * was reclaimed from another consumer. */
void eng_handle_entry(struct dm_engine *e, const redisReply *entry, int claimed);

/* The intake policy of this replica (secrets, issuer, audience, callback hosts) at token time
 * now_s. */
struct dm_intake_policy;
void eng_intake_policy(const struct dm_engine *e, struct dm_intake_policy *pol, int64_t now_s);

/* ---- retry.c ---- */

struct dm_entry_fields;
/* A `type=retry id=<jobId> [token]` entry (dreamctl retry): the stored job is read, classified
 * as a build with the entry's token (signed mode), and started in mode retry; a refused one is
 * dead-lettered. */
void eng_retry_entry(struct dm_engine *e, const char *id, const struct dm_entry_fields *ef);

/* ---- leases.c ---- */

/* Starts the job heartbeat and the reclaim sweep. */
void eng_leases_start(struct dm_engine *e);
/* Runs the reclaim sweep now when there are free slots; else marks it wanted: it then runs
 * before the next read (eng_read_more). */
void eng_sweep(struct dm_engine *e);
/* Job slots neither running nor held by an outstanding read or sweep. */
int eng_free_slots(const struct dm_engine *e);
int eng_io_deadline(struct dm_job *job, long ms, void (*fn)(struct dm_job *job));

/* ---- worker.c ---- */

/* Starts the worker heartbeat timer. */
void eng_worker_start(struct dm_engine *e);
/* Writes the worker hash now (also on every reconnect of the command connection). */
void eng_worker_beat(struct dm_engine *e);

#endif
