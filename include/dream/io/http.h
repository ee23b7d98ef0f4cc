/*
 * http: an asynchronous HTTP client on the libuv loop, built on libcurl's multi socket
 * interface. One struct dm_http (one curl multi handle, one uv_timer, one uv_poll per curl
 * socket) is shared by every HTTP user of a replica: the LLM client, the forge client and the
 * event callbacks, so connections are reused (and HTTP/2 streams multiplexed where a server
 * offers it) across all of them.
 *
 * A request goes in, one completion comes out: the completion callback fires exactly once per
 * started call, always from the loop (never inside dm_http_start, dm_http_cancel or
 * dm_http_close). Every request has a total deadline, an optional low-speed deadline and a cap
 * on the response size.
 *
 * Threading: everything here runs on the loop thread that owns the uv_loop_t.
 */
#ifndef DREAM_HTTP_H
#define DREAM_HTTP_H

#include "dream/core/buf.h"
#include "dream/core/error.h"

#include <stddef.h>
#include <uv.h>

struct dm_http;      /* opaque client */
struct dm_http_call; /* opaque handle of one request in flight */

/* Client options. Initialise with DM_HTTP_OPTS_INIT, then change what you need. */
struct dm_http_opts {
    long connect_timeout_ms;    /* TCP + TLS connect deadline per connection (default 10000) */
    long max_total_connections; /* open connections across all hosts, 0 = unlimited */
    long max_host_connections;  /* open connections per host, 0 = unlimited */
    const char *user_agent;     /* copied; NULL = "dreamd/<version>" */
};

#define DM_HTTP_OPTS_INIT                                                                          \
    {                                                                                              \
        10000, 0, 0, NULL                                                                          \
    }

/* Defaults applied to a request field left at 0. */
#define DM_HTTP_DEFAULT_TIMEOUT_MS 60000L
#define DM_HTTP_DEFAULT_MAX_RESPONSE ((size_t)8 << 20)

/* Streaming data callback: called, for 2xx responses only, with each piece of the response body
 * as it arrives and the HTTP status. Non-2xx bodies are collected in resp->body instead (so error
 * JSON can be read in the completion callback). Return 0 to go on, or a negative enum dm_err to
 * abort the transfer: the call then completes with that code as rc (a positive value counts as
 * DM_ERR_CANCELLED). data is only valid during the call. It runs inside libcurl: do not call
 * dm_http_start or dm_http_close from it (dm_http_cancel is fine: it is deferred). */
typedef int (*dm_http_data_cb)(void *arg, long status, const char *data, size_t len);

struct dm_http_response;

/* Completion callback, fired exactly once per started call, from the loop.
 * rc == 0: a complete HTTP response arrived (any status; look at resp->status).
 * rc < 0: the transfer failed; err says why (never contains header values):
 *   DM_ERR_TIMEOUT   total or low-speed deadline passed (or connect deadline)
 *   DM_ERR_LIMIT     the response exceeded max_response_bytes
 *   DM_ERR_CANCELLED dm_http_cancel, dm_http_close, or a data callback returning > 0
 *   DM_ERR_IO        could not resolve/connect/send/receive, or the connection broke mid-body
 *   DM_ERR_INVALID   the URL or request could not be used
 *   any code a data callback returned
 * resp and err are never NULL; on failure resp holds whatever arrived (status may be 0). resp,
 * its body and its headers are borrowed: valid only during the callback, but the callback may
 * take the body with dm_buf_detach(&resp->body). dm_http_in_flight() no longer counts this call
 * while its callback runs. The callback may start new calls, cancel other calls, or close the
 * client. */
typedef void (*dm_http_done_cb)(void *arg, int rc, struct dm_http_response *resp,
                                const struct dm_error *err);

struct dm_http_request {
    const char *method;         /* "GET", "POST", "PUT", "PATCH", "DELETE"...; NULL = GET */
    const char *url;            /* absolute http:// or https:// URL; copied */
    const char *const *headers; /* NULL-terminated "Name: value" lines, may be NULL; copied */
    const void *body;           /* request body, may be NULL; copied */
    size_t body_len;            /* bytes of body */
    long timeout_ms;            /* total deadline, 0 = DM_HTTP_DEFAULT_TIMEOUT_MS */
    long low_speed_limit;       /* bytes/s; with low_speed_time_s, 0 = no low-speed check */
    long low_speed_time_s;      /* abort if slower than low_speed_limit for this many seconds */
    size_t max_response_bytes;  /* body cap, 0 = DM_HTTP_DEFAULT_MAX_RESPONSE */
    int follow_redirects;       /* non-zero: follow up to 5 redirects (same method rules as curl) */
    /* NULL-terminated "host:port:address:port" lines (IPv6 address in brackets), copied: connect
     * to that address instead of resolving host again (TLS is still checked against host). For
     * destinations whose address was checked before (callbacks: no DNS rebinding). May be NULL. */
    const char *const *connect_to;
    dm_http_data_cb on_data; /* optional streaming callback, see above */
    dm_http_done_cb on_done; /* required */
    void *arg;               /* passed to on_data and on_done */
};

/* The response as seen by the completion callback. Fields are read-only for callers. */
struct dm_http_response {
    long status;           /* HTTP status of the final response, 0 if none arrived */
    struct dm_buf body;    /* the body; when on_data is set, only kept for non-2xx responses
                            * (so error bodies can still be read), else always */
    size_t body_bytes;     /* bytes of body received in total (also when not kept) */
    long long elapsed_ms;  /* from start to completion */
    struct dm_buf headers; /* private: raw header block of the final response; use the lookup */
};

/* Case-insensitive header lookup in the final response (e.g. "retry-after",
 * "x-ratelimit-remaining", "link"). Copies the first matching value, trimmed, NUL-terminated
 * (truncated to outlen - 1) into out and returns out; returns NULL when the header is absent.
 * Borrowed resp: call it inside the completion callback. */
const char *dm_http_response_header(const struct dm_http_response *resp, const char *name,
                                    char *out, size_t outlen);

/* Creates a client on loop. opts may be NULL (defaults). On success *out owns the client, which
 * must be closed with dm_http_close (never freed directly). Returns 0, DM_ERR_NOMEM or DM_ERR_IO
 * (curl or libuv refused to initialise; err says which). curl_global_init is done once,
 * internally, on first use. */
int dm_http_new(struct dm_http **out, uv_loop_t *loop, const struct dm_http_opts *opts,
                struct dm_error *err);

/* Starts a request. Everything in req is copied, so req and what it points to may be freed when
 * this returns. On success returns 0 and stores a borrowed handle in *out (out may be NULL),
 * valid until the completion callback fires; req->on_done will then fire exactly once, never
 * inside this call. On failure returns DM_ERR_INVALID (no url/on_done, bad header),
 * DM_ERR_NOMEM, DM_ERR_IO, or DM_ERR_CANCELLED when the client is closing, and no callback
 * fires. */
int dm_http_start(struct dm_http *h, const struct dm_http_request *req, struct dm_http_call **out,
                  struct dm_error *err);

/* Cancels a call that has not completed: its completion fires later, from the loop, with
 * DM_ERR_CANCELLED. Calling it on a call whose completion is already queued does nothing.
 * Never call it with a handle whose completion callback has already returned. */
void dm_http_cancel(struct dm_http_call *call);

/* Requests started and not yet completed (completion callback not yet fired). */
size_t dm_http_in_flight(const struct dm_http *h);

typedef void (*dm_http_closed_cb)(void *arg);

/* Orderly shutdown: refuses new calls, cancels every call in flight (their completions fire with
 * DM_ERR_CANCELLED, from the loop), removes the easy handles, cleans up the multi handle,
 * closes the timer and every poll handle, and frees the client in the last close callback,
 * after which done (may be NULL) fires with arg. Safe to call from a completion callback.
 * Calling it twice is a programmer error. */
void dm_http_close(struct dm_http *h, dm_http_closed_cb done, void *arg);

#endif
