/*
 * Integration tests of the Redis connection module (issue 2) against a real redis-server:
 * loss of the server is noticed at once, reconnection backs off, all connections come back
 * without restarting, scripts survive a restart (NOSCRIPT), and the loop closes cleanly.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "dmtest.h"
#include "dream/core/config.h"
#include "dream/core/log.h"
#include "dream/io/loop.h"
#include "dream/io/redis.h"

struct watch {
    int ups[3];
    int downs[3];
    long long down_at[3];
    struct dm_redis_conn *conns[3];
    int replies;
    char last[64];
    int messages;
};

static struct watch w;

static int idx(struct dm_redis_conn *c)
{
    for (int i = 0; i < 3; i++) {
        if (w.conns[i] == c) {
            return i;
        }
    }
    return 0;
}

static void on_up(struct dm_redis_conn *c, void *arg)
{
    (void)arg;
    w.ups[idx(c)]++;
}

static void on_down(struct dm_redis_conn *c, void *arg, const char *why)
{
    (void)arg;
    (void)why;
    w.downs[idx(c)]++;
    w.down_at[idx(c)] = dmt_now_ms();
}

static void on_message(void *arg, const char *channel, const char *msg, size_t len)
{
    (void)arg;
    (void)channel;
    (void)len;
    snprintf(w.last, sizeof(w.last), "%s", msg);
    w.messages++;
}

static void on_reply(void *arg, redisReply *r, const char *why)
{
    (void)arg;
    (void)why;
    w.replies++;
    if (r && r->type == REDIS_REPLY_STRING) {
        snprintf(w.last, sizeof(w.last), "%s", r->str);
    } else if (r && r->type == REDIS_REPLY_INTEGER) {
        snprintf(w.last, sizeof(w.last), "%lld", r->integer);
    } else if (r && r->type == REDIS_REPLY_ERROR) {
        snprintf(w.last, sizeof(w.last), "ERR");
    } else if (!r) {
        snprintf(w.last, sizeof(w.last), "NULL");
    }
}

/* Runs the loop until cond() or timeout; returns 1 when cond held. */
static int run_until(uv_loop_t *loop, int (*cond)(void), int timeout_ms)
{
    long long deadline = dmt_now_ms() + timeout_ms;
    while (!cond() && dmt_now_ms() < deadline) {
        uv_run(loop, UV_RUN_ONCE);
    }
    return cond();
}

static uv_timer_t tick;
static void on_tick(uv_timer_t *t)
{
    (void)t;
}

static int all_up(void)
{
    return dm_redis_is_up(w.conns[0]) && dm_redis_is_up(w.conns[1]) && dm_redis_is_up(w.conns[2]);
}

static int all_down(void)
{
    return w.downs[0] > 0 && w.downs[1] > 0 && w.downs[2] > 0;
}

static int got_reply(void)
{
    return w.replies > 0;
}

static int got_message(void)
{
    return w.messages > 0;
}

static void open_three(uv_loop_t *loop, const struct dmt_redis *r)
{
    struct dm_redis_addr addr;
    struct dm_redis_opts o;
    static const char *const channels[] = {"test:chan", NULL};
    const char *names[] = {"reader", "commands", "subscriber"};

    memset(&w, 0, sizeof(w));
    cr_assert_eq(dm_redis_addr_parse(&addr, dmt_redis_url(r), NULL), 0);
    for (int i = 0; i < 3; i++) {
        memset(&o, 0, sizeof(o));
        o.name = names[i];
        o.connect_timeout_ms = 1000;
        o.backoff_min_ms = 100;
        o.backoff_max_ms = 800;
        o.up = on_up;
        o.down = on_down;
        if (i == 2) {
            o.channels = channels;
            o.message = on_message;
        }
        cr_assert_eq(dm_redis_open(&w.conns[i], loop, &addr, &o), 0);
    }
    dm_redis_addr_clear(&addr);
    /* A ticking timer so UV_RUN_ONCE returns regularly. */
    uv_timer_init(loop, &tick);
    uv_timer_start(&tick, on_tick, 20, 20);
}

static void close_three(uv_loop_t *loop)
{
    for (int i = 0; i < 3; i++) {
        dm_redis_close(w.conns[i]);
    }
    uv_close((uv_handle_t *)&tick, NULL);
    cr_assert_eq(dm_loop_drain_close(loop), 0, "every handle closed");
}

Test(redis, kill_is_noticed_fast_backoff_grows_and_all_three_come_back, .timeout = 60)
{
    struct dmt_redis r = {0};
    uv_loop_t loop;
    char *logpath;
    char *dir = dmt_tempdir("rlog");
    char *log;
    long long killed;
    FILE *lf;

    dmt_redis_start(&r);
    uv_loop_init(&loop);
    logpath = malloc(600);
    snprintf(logpath, 600, "%s/log", dir);
    lf = fopen(logpath, "w");
    dm_log_set_fd(fileno(lf));
    open_three(&loop, &r);
    cr_assert(run_until(&loop, all_up, 5000), "all three connected");

    killed = dmt_now_ms();
    dmt_redis_kill(&r);
    cr_assert(run_until(&loop, all_down, 5000), "loss noticed");
    for (int i = 0; i < 3; i++) {
        cr_assert_lt(w.down_at[i] - killed, 1000, "connection %d noticed after %lld ms", i,
                     w.down_at[i] - killed);
    }
    /* Let several attempts fail, then bring the server back. */
    {
        long long until = dmt_now_ms() + 2500;
        while (dmt_now_ms() < until) {
            uv_run(&loop, UV_RUN_ONCE);
        }
    }
    dmt_redis_restart(&r);
    cr_assert(run_until(&loop, all_up, 5000), "all three reconnected without a restart");
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(w.ups[i], 2);
        cr_assert_eq(dm_redis_reconnects(w.conns[i]), 1);
    }
    /* The subscriber resubscribed: a message published now arrives. */
    {
        redisContext *c = dmt_redis_connect(&r);
        redisReply *rep = redisCommand(c, "PUBLISH test:chan hello");
        freeReplyObject(rep);
        redisFree(c);
    }
    cr_assert(run_until(&loop, got_message, 3000));
    cr_assert_str_eq(w.last, "hello");
    close_three(&loop);
    fflush(lf);
    dm_log_set_fd(2);
    fclose(lf);

    /* Back-off: the announced delays grow (with jitter, each within [d/2, d], d doubling to the
     * 800 ms cap), so the last announced delay is larger than the first. */
    log = dmt_read_file(logpath);
    {
        long first = -1, last = -1;
        int attempts = 0;
        for (char *p = log; (p = strstr(p, "commands: ")); p++) {
            char *d = strstr(p, "reconnecting in ");
            char *nl = strchr(p, '\n');
            if (d && (!nl || d < nl)) {
                long v = strtol(d + 16, NULL, 10);
                if (first < 0) {
                    first = v;
                }
                last = v;
                attempts++;
            }
        }
        cr_assert_geq(attempts, 4, "several attempts while the server was down (%d)", attempts);
        cr_assert_leq(first, 100);
        cr_assert_geq(last, 400, "backed off to near the cap: first %ld, last %ld", first, last);
        cr_assert_leq(last, 800);
    }
    free(log);
    dmt_redis_stop(&r);
    dmt_rmtree(dir);
    free(dir);
    free(logpath);
}

static const char script_src[] = "return redis.call('INCR', KEYS[1])";

Test(redis, scripts_are_reloaded_after_noscript, .timeout = 30)
{
    struct dmt_redis r = {0};
    uv_loop_t loop;
    struct dm_redis_script s = {"incr", script_src, ""};
    const char *args[] = {"counter"};

    dmt_redis_start(&r);
    uv_loop_init(&loop);
    dm_redis_script_init(&s);
    open_three(&loop, &r);
    dm_redis_add_script(w.conns[1], &s);
    cr_assert(run_until(&loop, all_up, 5000));
    cr_assert_eq(dm_redis_eval(w.conns[1], &s, on_reply, NULL, 1, 1, args, NULL), 0);
    cr_assert(run_until(&loop, got_reply, 3000));
    cr_assert_str_eq(w.last, "1");
    /* What a restarted Redis does: forget every script. */
    {
        redisContext *c = dmt_redis_connect(&r);
        redisReply *rep = redisCommand(c, "SCRIPT FLUSH");
        freeReplyObject(rep);
        redisFree(c);
    }
    w.replies = 0;
    cr_assert_eq(dm_redis_eval(w.conns[1], &s, on_reply, NULL, 1, 1, args, NULL), 0);
    cr_assert(run_until(&loop, got_reply, 3000));
    cr_assert_str_eq(w.last, "2", "ran again after NOSCRIPT");
    close_three(&loop);
    dmt_redis_stop(&r);
}

Test(redis, commands_refused_while_down_and_pending_ones_fail_on_loss, .timeout = 30)
{
    struct dmt_redis r = {0};
    uv_loop_t loop;
    const char *blpop[] = {"BLPOP", "nothing", "10"};

    dmt_redis_start(&r);
    uv_loop_init(&loop);
    open_three(&loop, &r);
    cr_assert(run_until(&loop, all_up, 5000));
    /* A blocking command in flight when the server dies gets its callback with NULL. */
    cr_assert_eq(dm_redis_cmdv(w.conns[0], 10000, on_reply, NULL, 3, blpop, NULL), 0);
    uv_run(&loop, UV_RUN_NOWAIT);
    dmt_redis_kill(&r);
    cr_assert(run_until(&loop, got_reply, 2000), "pending command failed fast");
    cr_assert_str_eq(w.last, "NULL");
    cr_assert_eq(dm_redis_cmdf(w.conns[1], on_reply, NULL, "PING"), -11 /* unavailable */);
    close_three(&loop);
    dmt_redis_stop(&r);
}
