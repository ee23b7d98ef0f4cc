/*
 * metrics: the admin HTTP server (see include/dream/io/metrics.h); the registry it serves is
 * src/domain/metrics_registry.c.
 *
 * Owns the libmicrohttpd daemon with its internal polling thread, which only renders the
 * registry and reads atomics (the readiness flag, the loop's heartbeat), and the heartbeat's
 * timer on the loop. Started and stopped from the loop thread. With the dashboard
 * (dream/io/dashboard.h) the daemon runs one thread per connection instead, so that a dashboard
 * request waiting on Redis, or a live SSE client, never holds up /metrics or /healthz; every
 * other path goes to the dashboard.
 */
#include "dream/io/metrics.h"
#include "dream/core/log.h"
#include "dream/io/dashboard.h"

#include <microhttpd.h>
#include <stdatomic.h>
#include <uv.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* ---- admin server ------------------------------------------------------------------------- */

struct dm_admin {
    struct MHD_Daemon *daemon;
    struct dm_metrics *m;
    struct dm_dashboard *dash; /* NULL: no dashboard */
    int port;
    /* The loop's heartbeat: a timer on the loop stamps beat_ms; /healthz (on MHD's thread)
     * fails when the stamp is older than stall_ms, i.e. the loop stopped turning. */
    uv_timer_t beat;
    int watching;
    unsigned stall_ms;
    atomic_llong beat_ms;
};

static long long mono_ms(void)
{
    return (long long)(uv_hrtime() / 1000000u);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    size_t n;
    (void)cls;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r')) {
        msg[--n] = '\0';
    }
    dm_warn("admin", NULL, "%s", msg);
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *type,
                             char *body, size_t len, int must_free)
{
    struct MHD_Response *r;
    enum MHD_Result ret;

    r = must_free ? MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE)
                  : MHD_create_response_from_buffer(len, body, MHD_RESPMEM_PERSISTENT);
    if (!r) {
        if (must_free) {
            free(body);
        }
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED) {
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    }
    ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **state)
{
    static const char text[] = "text/plain; charset=utf-8";
    struct dm_admin *a = cls;
    (void)version;
    (void)upload_data;
    (void)state;

    if (a->dash && strcmp(url, "/metrics") && strcmp(url, "/healthz") && strcmp(url, "/readyz")) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        return dm_dashboard_handle(a->dash, c, ci ? ci->socket_context : NULL, url, method,
                                   upload_data, upload_data_size, state)
                   ? MHD_YES
                   : MHD_NO;
    }
    if (*upload_data_size) {
        *upload_data_size = 0; /* a body we do not want: drop it */
        return MHD_YES;
    }
    if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD)) {
        return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, text, "method not allowed\n", 19, 0);
    }
    if (!strcmp(url, "/metrics")) {
        struct dm_buf b;
        size_t len;
        char *body;
        dm_buf_init(&b, (size_t)4 << 20);
        if (dm_metrics_render(a->m, &b)) {
            dm_buf_free(&b);
            return reply(c, MHD_HTTP_INTERNAL_SERVER_ERROR, text, "render failed\n", 14, 0);
        }
        len = b.len;
        body = dm_buf_detach(&b);
        if (!body) {
            return MHD_NO;
        }
        return reply(c, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", body, len, 1);
    }
    if (!strcmp(url, "/healthz")) {
        if (a->watching) {
            long long age = mono_ms() - atomic_load(&a->beat_ms);
            if (age > (long long)a->stall_ms) {
                char *body = malloc(96);
                if (!body) {
                    return MHD_NO;
                }
                snprintf(body, 96, "loop stalled: no turn for %lld ms\n", age);
                dm_warn("admin", NULL, "healthz: the loop has not turned for %lld ms", age);
                return reply(c, MHD_HTTP_SERVICE_UNAVAILABLE, text, body, strlen(body), 1);
            }
        }
        return reply(c, MHD_HTTP_OK, text, "ok\n", 3, 0);
    }
    if (!strcmp(url, "/readyz")) {
        if (dm_metrics_ready(a->m)) {
            return reply(c, MHD_HTTP_OK, text, "ready\n", 6, 0);
        }
        return reply(c, MHD_HTTP_SERVICE_UNAVAILABLE, text, "not ready\n", 10, 0);
    }
    return reply(c, MHD_HTTP_NOT_FOUND, text, "not found\n", 10, 0);
}

/* Splits "host:port" / "[v6]:port" into host (may become "") and port. */
static int split_addr(const char *addr, char *host, size_t hostlen, char *port, size_t portlen)
{
    const char *colon;
    const char *h = addr;
    size_t hl;

    if (addr[0] == '[') {
        const char *close = strchr(addr, ']');
        if (!close || close[1] != ':') {
            return -1;
        }
        h = addr + 1;
        hl = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(addr, ':');
        if (!colon) {
            return -1;
        }
        hl = (size_t)(colon - addr);
    }
    if (hl >= hostlen || strlen(colon + 1) >= portlen || !colon[1]) {
        return -1;
    }
    memcpy(host, h, hl);
    host[hl] = '\0';
    strcpy(port, colon + 1);
    for (const char *p = port; *p; p++) {
        if (*p < '0' || *p > '9') {
            return -1;
        }
    }
    return atoi(port) <= 65535 ? 0 : -1;
}

/* With the dashboard: each connection's own Redis connection, and each request's state. */
static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    (void)cls;
    (void)c;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        *socket_context = dm_dashboard_conn_open();
    } else {
        dm_dashboard_conn_close(*socket_context);
        *socket_context = NULL;
    }
}

static void on_completed(void *cls, struct MHD_Connection *c, void **state,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    dm_dashboard_request_done(*state);
    *state = NULL;
}

int dm_admin_start(struct dm_admin **out, struct dm_metrics *m, const char *addr,
                   struct dm_error *err)
{
    return dm_admin_start_dashboard(out, m, addr, NULL, err);
}

int dm_admin_start_dashboard(struct dm_admin **out, struct dm_metrics *m, const char *addr,
                             struct dm_dashboard *dash, struct dm_error *err)
{
    struct addrinfo hints;
    struct addrinfo *ai = NULL;
    struct dm_admin *a = NULL;
    const union MHD_DaemonInfo *info;
    char host[256];
    char port[16];
    unsigned flags;
    int gai;
    int rc = 0;

    *out = NULL;
    if (!addr || !*addr) {
        return 0;
    }
    if (split_addr(addr, host, sizeof(host), port, sizeof(port))) {
        rc = dm_error_set(err, DM_ERR_INVALID, "admin address '%s': want host:port", addr);
        goto out;
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV | AI_PASSIVE;
    gai = getaddrinfo(host[0] ? host : NULL, port, &hints, &ai);
    if (gai || !ai) {
        rc = dm_error_set(err, DM_ERR_INVALID, "admin address '%s': %s", addr, gai_strerror(gai));
        goto out;
    }
    a = calloc(1, sizeof(*a));
    if (!a) {
        rc = dm_error_set(err, DM_ERR_NOMEM, "out of memory");
        goto out;
    }
    a->m = m;
    a->dash = dash;
    flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG;
    if (dash) {
        flags |= MHD_USE_THREAD_PER_CONNECTION;
    }
    if (ai->ai_family == AF_INET6) {
        flags |= MHD_USE_IPv6;
    }
    /* The connection timeout (10 s without progress) is also what drops a dashboard that
     * stopped reading its event stream (a live one gets a keep-alive every 5 s). */
    a->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, a, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
        MHD_OPTION_SOCK_ADDR, ai->ai_addr, MHD_OPTION_CONNECTION_LIMIT, (unsigned)64,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10, MHD_OPTION_NOTIFY_CONNECTION,
        dash ? on_connection : NULL, NULL, MHD_OPTION_NOTIFY_COMPLETED, dash ? on_completed : NULL,
        NULL, MHD_OPTION_END);
    if (!a->daemon) {
        rc = dm_error_set(err, DM_ERR_IO, "admin server: cannot listen on %s", addr);
        goto out;
    }
    info = MHD_get_daemon_info(a->daemon, MHD_DAEMON_INFO_BIND_PORT);
    a->port = info ? (int)info->port : atoi(port);
    dm_info("admin", NULL, "admin endpoint on %s (port %d): /metrics /healthz /readyz%s", addr,
            a->port, dash ? ", dashboard /" : "");
    *out = a;
    a = NULL;
out:
    if (ai) {
        freeaddrinfo(ai);
    }
    free(a);
    return rc;
}

int dm_admin_port(const struct dm_admin *a)
{
    return a ? a->port : 0;
}

static void on_beat_timer(uv_timer_t *t)
{
    struct dm_admin *a = t->data;
    atomic_store(&a->beat_ms, mono_ms());
}

int dm_admin_watch_loop(struct dm_admin *a, uv_loop_t *loop, unsigned stall_ms)
{
    unsigned every;

    if (!a || a->watching) {
        return 0;
    }
    a->stall_ms = stall_ms ? stall_ms : DM_ADMIN_STALL_MS;
    every = a->stall_ms / 4 ? a->stall_ms / 4 : 1;
    atomic_store(&a->beat_ms, mono_ms());
    if (uv_timer_init(loop, &a->beat)) {
        return DM_ERR_IO;
    }
    a->beat.data = a;
    uv_timer_start(&a->beat, on_beat_timer, every, every);
    uv_unref((uv_handle_t *)&a->beat); /* the heartbeat alone keeps no loop alive */
    a->watching = 1;
    return 0;
}

void dm_admin_unwatch_loop(struct dm_admin *a)
{
    if (a && a->watching) {
        a->watching = 0; /* /healthz stops looking at the stamp first */
        uv_close((uv_handle_t *)&a->beat, NULL);
    }
}

void dm_admin_stop(struct dm_admin *a)
{
    if (!a) {
        return;
    }
    dm_dashboard_stopping(a->dash); /* live event streams end within a second */
    MHD_stop_daemon(a->daemon);
    free(a);
}
