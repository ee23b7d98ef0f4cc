/*
 * callback: delivery of job events to a job's `callbackUrl` by HTTP POST, as the system dreamd
 * replaces did, signed, retried, ordered per job, and never in a job's way.
 *
 * Each event is POSTed as it was built by the engine (the version-1 event JSON, a superset of
 * the old payload {jobId, status, step?, message?, prUrl?, error?}) with these headers:
 *   Content-Type: application/json
 *   X-Dream-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">  (dream/domain/sign.h)
 *   X-Dream-Event-Seq: <the event's seq>
 *   X-Dream-Job-Id: <the event's jobId>
 *   X-Dream-Attempt: <1, 2, 3...>
 * The callback URL comes from the job, so it is untrusted: no secret is ever sent to it (the
 * signature is computed afresh, with a fresh t, for each attempt; receivers refuse an old t).
 * Without a configured secret the X-Dream-Signature header is left out.
 *
 * Destinations (SSRF): a host the operator allow-listed (dm_callbacks_allow_hosts) is used as
 * is. Any other host must be public: an address literal is classified at once, a name is
 * resolved off the loop (uv_getaddrinfo) and every address it resolves to is classified
 * (dream/domain/netaddr.h); a loopback, private, CGNAT, link-local, multicast, unspecified,
 * broadcast or reserved address, "localhost" or a cloud metadata name refuses the event (logged,
 * not retried). The request then connects to the address that was checked (dm_http's
 * connect_to; TLS is still verified against the URL's host), so DNS rebinding cannot switch it.
 * Redirects are never followed: a 3xx answer is a failed delivery and is not retried.
 *
 * Delivery: any 2xx answer delivers the event. A transport error, a timeout (10 s by default),
 * a failed resolution, 408, 429 or 5xx is retried after a backoff (1 s, then 2 s: doubling) up to
 * `attempts` attempts in all (3 by default); a 429 or 503 with Retry-After (seconds or an HTTP
 * date) waits that long instead when it is longer, at most 60 s; any other answer is final at
 * once. After the last attempt the event is dropped with a warning and the job's next event goes
 * on. Per job, exactly one event is in flight and events go out in the order they were posted;
 * different jobs deliver in parallel.
 *
 * Backlog caps: each job's queue is capped (when full, its oldest waiting event is dropped); the
 * whole replica holds at most max_events events (queued, waiting or in flight) and runs at most
 * max_connections deliveries (resolutions and requests) at once; jobs over that wait their turn.
 * When the replica's backlog is full, the oldest event not in flight (of any job) is dropped.
 * Every drop is logged and counted (dreamd_callback_events_dropped_total). Nothing here blocks,
 * and nothing here fails or slows a job: dm_callback_post only refuses unusable input.
 *
 * Logs name the job, the seq and the callback's scheme://host/path, never the secret, the query
 * string or user info.
 *
 * Threading: loop thread only (the one running the struct dm_http it is given).
 */
#ifndef DREAM_CALLBACK_H
#define DREAM_CALLBACK_H

#include "dream/core/error.h"
#include "dream/domain/sign.h" /* dm_callback_sign */
#include "dream/io/http.h"

#include <stddef.h>
#include <uv.h>

struct dm_callbacks; /* opaque */

struct dm_metrics;

struct dm_callback_opts {
    const char *secret;        /* HMAC key (DREAM_CALLBACK_SECRET), never sent; copied and
                                * wiped on close; NULL or "" = unsigned callbacks */
    unsigned attempts;         /* attempts per event, first included (0 = 3) */
    unsigned backoff_ms;       /* wait before the 2nd attempt, doubling after (0 = 1000) */
    long timeout_ms;           /* per attempt, whole request (0 = 10000) */
    size_t max_queue_per_job;  /* events waiting per job besides the one in flight (0 = 256) */
    size_t max_response_bytes; /* cap on a receiver's reply body, which is ignored (0 = 64 KiB) */
    size_t max_events;         /* replica-wide backlog: events queued or in flight (0 = 10000;
                                * at least max_connections + 1) */
    size_t max_connections;    /* replica-wide deliveries at once (0 = 64) */
};

#define DM_CALLBACK_OPTS_INIT                                                                      \
    {                                                                                              \
        NULL, 3, 1000, 10000, 256, 65536, 10000, 64                                                \
    }

/* Makes the callback sender on loop, using http (borrowed: it must stay open until the closed
 * callback of dm_callbacks_close has fired). opts may be NULL (defaults, unsigned). Returns 0,
 * DM_ERR_NOMEM. *out must be closed with dm_callbacks_close. */
int dm_callbacks_new(struct dm_callbacks **out, uv_loop_t *loop, struct dm_http *http,
                     const struct dm_callback_opts *opts, struct dm_error *err);

/* Queues one event for url (http:// or https://, copied; the job request's validation refuses
 * literal internal addresses early, delivery checks the resolved ones). event_json (len bytes,
 * copied) must be a JSON object with a string "jobId" and a numeric "seq"; it is sent byte for
 * byte. The events of a job (by jobId) go out in the order of these calls. Returns 0 (queued;
 * delivery happens later, from the loop), DM_ERR_INVALID (no URL, bad scheme, not such an object;
 * err says which), DM_ERR_NOMEM, or DM_ERR_CANCELLED (closing). The caller ignores errors other
 * than logging them: a callback never fails a job. */
int dm_callback_post(struct dm_callbacks *cb, const char *url, const char *event_json, size_t len,
                     struct dm_error *err);

/* Hosts exempt from the destination checks: a comma-separated list of host names or address
 * literals (DREAM_CALLBACK_HOSTS, and the DREAM_CALLBACK_ALLOW_HTTP test hosts), compared
 * case-insensitively with the URL's host as written (brackets of IPv6 and a trailing dot aside;
 * "localhost" does not exempt "127.0.0.1" or the reverse). Copied; replaces the previous list;
 * NULL or "" = none. Returns 0 or DM_ERR_NOMEM. */
int dm_callbacks_allow_hosts(struct dm_callbacks *cb, const char *hosts, struct dm_error *err);

/* Counts dropped events in m (borrowed; must outlive cb; NULL = none). */
void dm_callbacks_set_metrics(struct dm_callbacks *cb, struct dm_metrics *m);

/* Events dropped unsent because a job's queue or the replica's backlog was full. */
unsigned long long dm_callbacks_dropped(const struct dm_callbacks *cb);

/* Events queued or in flight, over all jobs. */
size_t dm_callbacks_pending(const struct dm_callbacks *cb);

/* Jobs with events queued or in flight. */
size_t dm_callbacks_jobs(const struct dm_callbacks *cb);

typedef void (*dm_callbacks_closed_cb)(void *arg);

/* Stops: refuses new events, drops every queued one (logging how many per job), cancels the
 * requests in flight (dm_http_cancel) and the name resolutions (uv_cancel; one already running
 * on the threadpool is waited for), stops backoff timers, then frees everything after the
 * last close callback and calls done (may be NULL) from the loop. cb may be NULL. For a graceful
 * shutdown, wait for dm_callbacks_pending() == 0 (with a deadline) before calling this. */
void dm_callbacks_close(struct dm_callbacks *cb, dm_callbacks_closed_cb done, void *arg);

#endif
