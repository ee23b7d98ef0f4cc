/*
 * loop: the libuv loop of a replica, its signals, and the shutdown order.
 *
 * SIGINT and SIGTERM call the shutdown callback once (a second signal calls it again with
 * force = 1, for operators who mean it). SIGPIPE is ignored. Loop thread only.
 */
#ifndef DREAM_LOOP_H
#define DREAM_LOOP_H

#include <uv.h>

typedef void (*dm_shutdown_cb)(void *arg, int force);

struct dm_loop {
    uv_loop_t *uv;
    uv_signal_t sigint;
    uv_signal_t sigterm;
    dm_shutdown_cb on_shutdown;
    void *arg;
    int signals; /* signals received so far */
};

/* Watches SIGINT/SIGTERM on uv. Returns 0 or a negative enum dm_err. */
int dm_loop_init(struct dm_loop *l, uv_loop_t *uv, dm_shutdown_cb cb, void *arg);

/* Closes the signal handles (their close callbacks run on the next loop iteration). */
void dm_loop_close(struct dm_loop *l);

/* Ends the life of uv: runs the close callbacks already requested, closes every handle still
 * open (each one logged as a warning), runs the loop until they are gone and closes it.
 * Returns 0 when every handle had been closed by its owner and the loop closed; the number of
 * handles it had to close (> 0: each is a leaked handle, a bug of its owner, even though the loop
 * is now closed); or uv_loop_close()'s negative UV_E* error when the loop could not be closed.
 * So `== 0` means "every handle was closed by its owner", which is what the end of main and of
 * every test that runs a loop asserts. Loop thread, outside any callback of uv. */
int dm_loop_drain_close(uv_loop_t *uv);

#endif
