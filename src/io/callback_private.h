/*
 * callback_private: what the files of the callbacks share (contract in
 * include/dream/io/callback.h). Not for use outside src/io/callback*.c.
 *
 *   callback.c       the per-job queues and the replica-wide backlog, delivery slots, signed
 *                    attempts, retries and backoff, the replies; the public functions.
 *   callback_dest.c  the destination of an event: its URL's host, the allow-list, the SSRF check
 *                    of literal and resolved addresses, the address a delivery is pinned to.
 *
 * Loop thread only.
 */
#ifndef DREAM_IO_CALLBACK_PRIVATE_H
#define DREAM_IO_CALLBACK_PRIVATE_H

#include "dream/domain/netaddr.h"
#include "dream/io/callback.h"

#include <stddef.h>
#include <uv.h>

#define JOB_ID_MAX 512
#define RETRY_AFTER_MAX_MS 60000L
#define HOST_MAX 256

struct event {
    struct event *next;
    char *url;
    char *body;
    size_t len;
    long long seq;
    unsigned long long order; /* replica-wide post order: the backlog drops the lowest */
};

struct job {
    struct job *prev;
    struct job *next;
    struct dm_callbacks *cb;
    char *id;
    struct event *head; /* waiting, oldest first */
    struct event *tail;
    size_t queued;
    struct event *cur; /* being delivered (in flight, resolving, waiting for a slot or a backoff) */
    unsigned attempt;  /* attempts made for cur */
    struct dm_http_call *call;
    uv_getaddrinfo_t gai;
    int resolving;    /* gai in flight */
    int has_slot;     /* counted in cb->active */
    int waiting_slot; /* in cb's slot queue */
    struct job *wait_next;
    char host[HOST_MAX]; /* cur's URL host (as curl reports it) while resolving */
    uv_timer_t timer;
    int released;
};

struct dm_callbacks {
    uv_loop_t *loop;
    struct dm_http *http;
    struct dm_metrics *metrics;
    char *secret;
    size_t secret_len;
    char *allow;
    unsigned attempts;
    unsigned backoff_ms;
    long timeout_ms;
    size_t max_queue;
    size_t max_resp;
    size_t max_events;
    size_t max_conns;
    struct job *jobs;
    size_t n_jobs;         /* jobs in the list */
    size_t live;           /* jobs not yet freed (in the list or closing) */
    size_t pending;        /* events queued or current */
    size_t active;         /* deliveries holding a slot (resolving or in flight) */
    struct job *wait_head; /* jobs whose cur waits for a slot, FIFO */
    struct job *wait_tail;
    unsigned long long order;
    unsigned long long dropped;
    uv_timer_t anchor;
    int closing;
    dm_callbacks_closed_cb done;
    void *done_arg;
};

/* ---- callback.c ---- */

/* Takes j out of the queue of jobs waiting for a delivery slot (if it is in it). */
void callback_unwait(struct job *j);

/* Gives up on cur: logs why and forgets it. The caller goes on with the next event. */
void callback_give_up(struct job *j, const char *why);

/* Sends cur to pin; on a failure to start, handles it like a failed attempt. Returns 1 when
 * cur is gone (the caller goes on), else 0. */
int callback_send_or_fail(struct job *j, const struct dm_netaddr *pin);

/* The attempt failed: schedules another (returns 0) or gives up (returns 1: cur is gone). */
int callback_attempt_failed(struct job *j, int retryable, long retry_after_ms, const char *why);

/* Forgets the current event (delivered, given up, or dropped) and gives back its slot. */
void callback_drop_current(struct job *j);

/* Gives back j's delivery slot (if it holds one). */
void callback_release_slot(struct job *j);

/* Delivers the job's events one by one until one goes on asynchronously; frees the job when
 * all is done. */
void callback_pump(struct job *j);

/* Starts jobs waiting for a slot while slots are free. */
void callback_kick_waiting(struct dm_callbacks *cb);

/* ---- callback_dest.c ---- */

/* "scheme://host[:port]/path" of url, for logs (no user info, no query). */
void callback_url_for_log(const char *url, char *out, size_t outlen);

/* The host and port of a callback URL. Returns 0 or -1 (unusable URL). */
int callback_url_parts(const char *url, char *host, size_t hostlen, long *port);

/* Starts (or restarts after a backoff) the delivery of cur: takes a slot or queues for one,
 * then checks the destination. Returns 1 when cur was finished synchronously (refused or
 * unusable: the caller goes on with the next event), 0 when delivery goes on asynchronously. */
int callback_begin(struct job *j);

#endif
