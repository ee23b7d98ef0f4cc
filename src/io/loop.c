/*
 * loop: signals and orderly shutdown of the libuv loop (see include/dream/io/loop.h).
 * Loop thread only.
 */
#include "dream/io/loop.h"
#include "dream/core/error.h"
#include "dream/core/log.h"

#include <signal.h>
#include <string.h>

static void on_signal(uv_signal_t *h, int signum)
{
    struct dm_loop *l = h->data;
    l->signals++;
    dm_info("loop", NULL, "received %s%s", signum == SIGINT ? "SIGINT" : "SIGTERM",
            l->signals > 1 ? " again: forcing shutdown" : ": shutting down");
    if (l->on_shutdown) {
        l->on_shutdown(l->arg, l->signals > 1);
    }
}

int dm_loop_init(struct dm_loop *l, uv_loop_t *uv, dm_shutdown_cb cb, void *arg)
{
    memset(l, 0, sizeof(*l));
    l->uv = uv;
    l->on_shutdown = cb;
    l->arg = arg;
    signal(SIGPIPE, SIG_IGN);
    if (uv_signal_init(uv, &l->sigint) || uv_signal_init(uv, &l->sigterm)) {
        return DM_ERR_IO;
    }
    l->sigint.data = l;
    l->sigterm.data = l;
    if (uv_signal_start(&l->sigint, on_signal, SIGINT) ||
        uv_signal_start(&l->sigterm, on_signal, SIGTERM)) {
        return DM_ERR_IO;
    }
    /* Signal watchers must not keep an otherwise finished loop alive. */
    uv_unref((uv_handle_t *)&l->sigint);
    uv_unref((uv_handle_t *)&l->sigterm);
    return 0;
}

void dm_loop_close(struct dm_loop *l)
{
    if (!uv_is_closing((uv_handle_t *)&l->sigint)) {
        uv_close((uv_handle_t *)&l->sigint, NULL);
    }
    if (!uv_is_closing((uv_handle_t *)&l->sigterm)) {
        uv_close((uv_handle_t *)&l->sigterm, NULL);
    }
}

/* A handle still open here is a leak of its owner (every owner closes what it embeds): close
 * it so the loop can be released, and count it so the caller sees the leak. */
static void close_walk(uv_handle_t *h, void *arg)
{
    int *left_open = arg;
    if (!uv_is_closing(h)) {
        dm_warn("loop", NULL, "closing a handle left open (type %s)", uv_handle_type_name(h->type));
        uv_close(h, NULL);
        (*left_open)++;
    }
}

int dm_loop_drain_close(uv_loop_t *uv)
{
    int left_open = 0;
    int rc;
    /* Close callbacks already requested run first, so their handles do not count. */
    uv_run(uv, UV_RUN_NOWAIT);
    uv_walk(uv, close_walk, &left_open);
    uv_run(uv, UV_RUN_DEFAULT);
    rc = uv_loop_close(uv);
    if (rc != 0) {
        dm_warn("loop", NULL, "the loop did not close: %s", uv_strerror(rc));
        return rc;
    }
    return left_open;
}
