/*
 * dashboard: the live web dashboard served by the admin server (dream/io/metrics.h) when
 * DREAM_DASHBOARD=1: a page compiled into the binary (src/io/dashboard/), JSON views of the
 * Redis keys of the README's key table, the operator actions through the same Lua scripts as
 * dreamctl (dream/domain/scripts.h), and Server-Sent Events from the <p>:events stream.
 *
 * Threading: the admin server runs one libmicrohttpd thread per connection when the dashboard
 * is on. Every connection opens its own synchronous hiredis connection (lazily, closed with the
 * HTTP connection): the replica's loop and its Redis connections are never touched, and a slow
 * Redis or a slow browser only holds that connection's thread. An SSE client reads the events
 * stream itself (XREAD BLOCK after the last id it sent), holding at most one capped batch; a
 * client that stops reading is dropped by the server's connection timeout.
 *
 * Routes (all but the admin server's own /metrics, /healthz, /readyz need the token: the
 * session cookie set by POST /login, or `Authorization: Bearer <DREAM_ADMIN_TOKEN>`; a POST
 * with the cookie also needs the session's CSRF token in X-CSRF-Token):
 *   GET  /  /app.js  /app.css          the page (no token needed: it holds no data)
 *   POST /login (form: token)          sets the session cookie, 303 to /
 *   POST /logout                       clears it
 *   GET  /api/session                  {"csrf":…} (401 when not logged in)
 *   GET  /api/jobs?status&repo&user&since   newest first; {"jobs":[…],"eventsId":…,"source":…}
 *   GET  /api/jobs/<id>                hash, job, plan, events, files, the gate's findings
 *   GET  /api/parked  /api/workers  /api/dead
 *   GET  /api/events?after=<id>        SSE (Last-Event-ID wins over after)
 *   POST /api/jobs/<id>/approve|reject|cancel|retry   (reject: JSON body {"reason":…})
 *   POST /api/dead/<deadId>/requeue
 */
#ifndef DREAM_DASHBOARD_H
#define DREAM_DASHBOARD_H

#include "dream/core/config.h"
#include "dream/core/error.h"

#include <stddef.h>

struct dm_dashboard; /* opaque */
struct MHD_Connection;

/* Most SSE clients at once (more get 503), so that /metrics always finds a connection. */
#define DM_DASHBOARD_MAX_SSE 32
/* Bytes of events an SSE client holds at most (one XREAD batch, rendered). */
#define DM_DASHBOARD_SSE_BUF (256u * 1024u)

/* Builds the dashboard from the settings (Redis address, prefix, token, TTLs). Returns 0,
 * DM_ERR_INVALID (no DREAM_ADMIN_TOKEN, or one shorter than 16 bytes: err says so) or
 * DM_ERR_NOMEM. */
int dm_dashboard_new(struct dm_dashboard **out, const struct dm_config *cfg, struct dm_error *err);

/* Frees it; call after the admin server stopped (its threads are joined). d may be NULL. */
void dm_dashboard_free(struct dm_dashboard *d);

/* Tells SSE clients to end (they return within a second); the admin server's stop then joins
 * their threads. Any thread. */
void dm_dashboard_stopping(struct dm_dashboard *d);

/* ---- called by the admin server (src/io/metrics.c), on its connection threads ---- */

/* Answers one request (libmicrohttpd's access handler contract: state is the request's
 * *con_cls, conn the connection's socket context). */
int dm_dashboard_handle(struct dm_dashboard *d, struct MHD_Connection *c, void *conn,
                        const char *url, const char *method, const char *upload_data,
                        size_t *upload_data_size, void **state);

/* The request ended: frees its state. */
void dm_dashboard_request_done(void *state);

/* A connection opened / closed: its Redis connection (opened on first use). */
void *dm_dashboard_conn_open(void);
void dm_dashboard_conn_close(void *conn);

#endif
