/*
 * Tests of src/io/loop.c, and so of the helper every loop-running test ends with:
 * dm_loop_drain_close() must report a handle its owner forgot to close (a test that leaks one on
 * purpose sees a non-zero result), and must report nothing when every owner closed its handles.
 * Also the signal watchers: SIGTERM calls the shutdown callback, a second one forces it.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "dream/io/loop.h"

TestSuite(loop, .timeout = 30);

static int fired;

static void on_timer_fired(uv_timer_t *t)
{
    (void)t;
    fired++;
}

Test(loop, a_clean_loop_drains_to_zero)
{
    uv_loop_t loop;
    uv_timer_t t;

    cr_assert_eq(uv_loop_init(&loop), 0);
    cr_assert_eq(uv_timer_init(&loop, &t), 0);
    uv_close((uv_handle_t *)&t, NULL);
    /* Closed by its owner; its close callback has not run yet: that is not a leak. */
    cr_assert_eq(dm_loop_drain_close(&loop), 0);
}

Test(loop, a_leaked_handle_is_reported)
{
    uv_loop_t loop;
    uv_timer_t t;

    cr_assert_eq(uv_loop_init(&loop), 0);
    cr_assert_eq(uv_timer_init(&loop, &t), 0);
    /* Left open on purpose: the helper closes it, but must say so. */
    cr_assert_eq(dm_loop_drain_close(&loop), 1, "one handle left open, one reported");
}

Test(loop, every_leaked_handle_is_counted_active_or_not)
{
    uv_loop_t loop;
    uv_timer_t active, idle;
    uv_check_t check;

    cr_assert_eq(uv_loop_init(&loop), 0);
    cr_assert_eq(uv_timer_init(&loop, &active), 0);
    cr_assert_eq(uv_timer_init(&loop, &idle), 0);
    cr_assert_eq(uv_check_init(&loop, &check), 0);
    /* One started and unref'd (it does not keep the loop alive, like the signal watchers), one
     * never started, one of another type. */
    cr_assert_eq(uv_timer_start(&active, on_timer_fired, 60000, 0), 0);
    uv_unref((uv_handle_t *)&active);
    cr_assert_eq(dm_loop_drain_close(&loop), 3);
}

static int shutdowns[4];
static int nshutdowns;

static void on_shutdown(void *arg, int force)
{
    struct dm_loop *l = arg;
    shutdowns[nshutdowns++] = force;
    if (force) {
        dm_loop_close(l);
    }
}

Test(loop, sigterm_asks_for_shutdown_and_a_second_one_forces_it)
{
    uv_loop_t loop;
    struct dm_loop l;
    uv_timer_t guard;

    cr_assert_eq(uv_loop_init(&loop), 0);
    cr_assert_eq(dm_loop_init(&l, &loop, on_shutdown, &l), 0);
    /* The watchers are unref'd: a ref'd timer keeps the loop running until both signals came. */
    cr_assert_eq(uv_timer_init(&loop, &guard), 0);
    cr_assert_eq(uv_timer_start(&guard, on_timer_fired, 10000, 0), 0);
    cr_assert_eq(kill(getpid(), SIGTERM), 0);
    while (nshutdowns < 1 && !fired) {
        uv_run(&loop, UV_RUN_ONCE);
    }
    cr_assert_eq(kill(getpid(), SIGINT), 0);
    while (nshutdowns < 2 && !fired) {
        uv_run(&loop, UV_RUN_ONCE);
    }
    cr_assert_eq(nshutdowns, 2);
    cr_assert_eq(shutdowns[0], 0, "the first signal asks");
    cr_assert_eq(shutdowns[1], 1, "the second one forces");
    cr_assert_eq(l.signals, 2);
    cr_assert_eq(fired, 0, "the guard timer did not fire: the signals arrived");
    uv_close((uv_handle_t *)&guard, NULL);
    /* The signal handles were closed by dm_loop_close in the callback: nothing leaked. */
    cr_assert_eq(dm_loop_drain_close(&loop), 0);
}

Test(loop, signal_watchers_left_open_are_leaks)
{
    uv_loop_t loop;
    struct dm_loop l;

    cr_assert_eq(uv_loop_init(&loop), 0);
    cr_assert_eq(dm_loop_init(&l, &loop, NULL, NULL), 0);
    /* dreamd closes them when the engine stops; forgetting to is what the helper must catch. */
    cr_assert_eq(dm_loop_drain_close(&loop), 2);
}
