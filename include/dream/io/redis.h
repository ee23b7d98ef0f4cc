/*
 * redis: one self-healing hiredis connection on the libuv loop.
 *
 * Our own adapter over hiredis's event hooks (the packaged libuv adapter ignores poll errors and
 * so hangs on a dead socket): a poll error or hang-up drops the connection at once. A connect
 * timeout, AUTH/SELECT on every connect, TCP keepalive, a reply watchdog (a reply overdue by
 * more than the command timeout drops the connection), and reconnection with capped exponential
 * backoff and full jitter. The `up` callback fires every time the connection is (re)established
 * and ready; subscriptions and scripts are restored before it fires.
 *
 * A worker runs three of these: the blocking reader, the commands connection and the subscriber.
 * Loop thread only.
 */
#ifndef DREAM_REDIS_H
#define DREAM_REDIS_H

#include <hiredis/hiredis.h>
#include <stddef.h>
#include <uv.h>

#include "dream/core/config.h"

struct dm_redis_conn;

/* Fires when the connection is ready (first time and after every reconnect). */
typedef void (*dm_redis_up_cb)(struct dm_redis_conn *c, void *arg);
/* Fires when a ready connection is lost (not for failed attempts). */
typedef void (*dm_redis_down_cb)(struct dm_redis_conn *c, void *arg, const char *why);
/* A reply: reply is NULL when the connection was lost or closed before it arrived (why says
 * what happened); a Redis error reply arrives as reply->type == REDIS_REPLY_ERROR. The reply is
 * borrowed: copy what you need before returning. Fires exactly once per accepted command. */
typedef void (*dm_redis_reply_cb)(void *arg, redisReply *reply, const char *why);
/* A pub/sub message on a subscribed channel. */
typedef void (*dm_redis_message_cb)(void *arg, const char *channel, const char *msg, size_t len);

struct dm_redis_opts {
    const char *name; /* for logs: "reader", "commands", "subscriber" */
    long connect_timeout_ms;
    long command_timeout_ms; /* reply watchdog; 0 = 10000 */
    long backoff_min_ms;     /* 0 = 100 */
    long backoff_max_ms;     /* 0 = 5000 */
    dm_redis_up_cb up;
    dm_redis_down_cb down;
    /* Channels to SUBSCRIBE to on every connect (NULL-terminated; NULL for none); messages go to
     * `message`. A connection with channels is a subscriber and takes no other commands. */
    const char *const *channels;
    dm_redis_message_cb message;
    void *arg; /* for up, down and message */
};

/* A Lua script: source text and its SHA1 (computed by dm_redis_script_init). */
struct dm_redis_script {
    const char *name;
    const char *src;
    char sha[41];
};

/* Computes s->sha from s->src. */
void dm_redis_script_init(struct dm_redis_script *s);

/* Creates the connection and starts connecting. addr is copied. Returns 0 or a negative
 * enum dm_err; *out is owned by the caller and freed by dm_redis_close. */
int dm_redis_open(struct dm_redis_conn **out, uv_loop_t *loop, const struct dm_redis_addr *addr,
                  const struct dm_redis_opts *opts);

/* Closes the connection: pending commands get their callback with reply NULL, no callback of
 * the connection fires afterwards, and memory is released once libuv has closed the handles.
 * Safe inside a reply callback. NULL is ignored. */
void dm_redis_close(struct dm_redis_conn *c);

/* 1 when connected and ready. */
int dm_redis_is_up(const struct dm_redis_conn *c);

/* Number of reconnections so far (for metrics). */
unsigned long dm_redis_reconnects(const struct dm_redis_conn *c);

/* Sends a command (binary-safe argv). Returns 0 (cb fires exactly once, never inside this call)
 * or DM_ERR_UNAVAILABLE when not connected / closing (cb never fires). extra_ms extends the reply
 * watchdog for blocking commands (XREADGROUP BLOCK n → n). */
int dm_redis_cmdv(struct dm_redis_conn *c, long extra_ms, dm_redis_reply_cb cb, void *arg, int argc,
                  const char **argv, const size_t *lens);

/* printf-style variant (hiredis format: %s, %b, %d...). */
int dm_redis_cmdf(struct dm_redis_conn *c, dm_redis_reply_cb cb, void *arg, const char *fmt, ...);

/* Runs a script with EVALSHA; on NOSCRIPT (a restarted Redis forgot it) loads it with SCRIPT LOAD
 * and runs it again. args holds nargs strings: nkeys keys, then the other arguments. Registered
 * scripts are also loaded on every connect (dm_redis_add_script). Same return contract as
 * dm_redis_cmdv. */
int dm_redis_eval(struct dm_redis_conn *c, const struct dm_redis_script *s, dm_redis_reply_cb cb,
                  void *arg, int nkeys, int nargs, const char **args, const size_t *lens);

/* Registers a script to SCRIPT LOAD on every connect (before `up` fires). s must outlive c. */
int dm_redis_add_script(struct dm_redis_conn *c, const struct dm_redis_script *s);

/* Drops the current connection as if the socket had died (tests; also used on fatal protocol
 * errors). The usual reconnection follows. */
void dm_redis_drop(struct dm_redis_conn *c, const char *why);

#endif
