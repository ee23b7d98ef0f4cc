/*
 * metrics: the admin HTTP endpoint of a replica, which serves the metrics registry
 * (dream/domain/metrics_registry.h: the families, their updates and their rendering) together
 * with liveness and readiness.
 *
 * Threading: dm_admin_start and dm_admin_stop on the loop thread; the server answers on
 * libmicrohttpd's own thread, which only renders the registry and reads the readiness flag.
 * With the dashboard (dm_admin_start_dashboard) it runs a thread per connection, and the
 * dashboard's requests do their Redis work on those threads (dream/io/dashboard.h).
 */
#ifndef DREAM_METRICS_H
#define DREAM_METRICS_H

#include <uv.h>

#include "dream/core/error.h"
#include "dream/domain/metrics_registry.h" /* struct dm_metrics and its updates, kept for callers */

/* ---- admin HTTP endpoint (libmicrohttpd, its own thread) ------------------------------------
 *   GET/HEAD /metrics  200, text/plain; version=0.0.4 — dm_metrics_render
 *   GET/HEAD /healthz  200 "ok" while the loop turns (dm_admin_watch_loop); 503 "loop stalled:
 *                      no turn for N ms" once it has not turned for the stall time
 *   GET/HEAD /readyz   200 "ready" when dm_metrics_ready, else 503 "not ready"
 *   other paths 404; other methods 405.
 */
struct dm_admin; /* opaque */

/* Starts the endpoint on addr, "host:port" ("127.0.0.1:9464", "[::1]:9464", "0.0.0.0:0";
 * port 0 picks a free port, see dm_admin_port). addr NULL or "" disables it: returns 0 with
 * *out = NULL. m is borrowed and must outlive the server. Call from the loop thread at start-up
 * (the host is resolved with getaddrinfo, which may block). Returns 0, DM_ERR_INVALID (bad
 * address), DM_ERR_IO (cannot bind or start: err says why) or DM_ERR_NOMEM. */
int dm_admin_start(struct dm_admin **out, struct dm_metrics *m, const char *addr,
                   struct dm_error *err);

/* Like dm_admin_start, and every other path is answered by the dashboard (dash, borrowed; must
 * outlive the server; NULL = none, as dm_admin_start): the server then runs one thread per
 * connection. */
struct dm_dashboard;
int dm_admin_start_dashboard(struct dm_admin **out, struct dm_metrics *m, const char *addr,
                             struct dm_dashboard *dash, struct dm_error *err);

/* Default stall time of /healthz: a loop that has not turned for this long is unhealthy. */
#define DM_ADMIN_STALL_MS 10000u

/* Makes /healthz answer from the loop's own heartbeat: a timer on loop (unref'd) stamps the
 * time every stall_ms / 4 ms, and /healthz fails once the stamp is older than stall_ms (0 =
 * DM_ADMIN_STALL_MS). Loop thread. Returns 0 (also when a is NULL) or DM_ERR_IO. */
int dm_admin_watch_loop(struct dm_admin *a, uv_loop_t *loop, unsigned stall_ms);

/* Stops the heartbeat and closes its timer (its close completes on the next loop turn): call it
 * on the loop thread before the loop is drained. a may be NULL. */
void dm_admin_unwatch_loop(struct dm_admin *a);

/* The port actually bound (useful with port 0). */
int dm_admin_port(const struct dm_admin *a);

/* Stops the server (MHD_stop_daemon: closes the listening socket and joins its thread, which
 * takes at most the time of the requests being answered) and frees it. a may be NULL. */
void dm_admin_stop(struct dm_admin *a);

#endif
