/*
 * redis: a self-healing hiredis connection on libuv (see include/dream/io/redis.h).
 *
 * The adapter: one uv_poll per hiredis context (struct adapter), driven by hiredis's ev hooks.
 * A poll error drops the context at once (the packaged adapter ignores it and hangs). The
 * context's cleanup hook is the single place where a dying context is noticed: it schedules the
 * reconnection and reports `down`. Memory: the connection is freed when it is closed, its
 * context is gone and every uv handle it owns has run its close callback. Loop thread only.
 */
#include "dream/io/redis.h"
#include "dream/core/error.h"
#include "dream/core/log.h"
#include "dream/domain/retry.h"

#include <hiredis/async.h>
#include <openssl/sha.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netdb.h>
#include <unistd.h>

enum state { ST_WAIT, ST_CONNECTING, ST_HANDSHAKE, ST_UP };

struct adapter {
    uv_poll_t poll;
    redisAsyncContext *ac; /* NULL once hiredis cleaned up */
    struct dm_redis_conn *conn;
    int events;
};

struct pending {
    struct dm_redis_conn *conn;
    dm_redis_reply_cb cb;
    void *arg;
    long long deadline;
    struct pending *prev, *next;
    /* For EVALSHA retries after NOSCRIPT. */
    const struct dm_redis_script *script;
    int argc;
    char **argv;
    size_t *lens;
    int retried;
};

struct sub {
    char *channel;
    dm_redis_message_cb cb;
    void *arg;
};

struct dm_redis_conn {
    uv_loop_t *loop;
    struct dm_redis_addr addr;
    struct dm_redis_opts opts;
    char name[32];
    char why[256];   /* why the last context died */
    char where[160]; /* host:port or socket path, for messages */

    redisAsyncContext *ac;
    enum state state;
    int handshake; /* replies still expected before UP */
    int handshake_failed;
    int attempt;
    int ever_up;
    int closed;
    int handles; /* open uv handles (timers, adapter polls) */
    unsigned long reconnects;

    uv_timer_t timer;     /* connect timeout, or wait before reconnecting */
    uv_getaddrinfo_t gai; /* name resolution, off the loop thread */
    int resolving;
    char resolved[64];   /* numeric address of host for this attempt */
    uv_timer_t watchdog; /* overdue replies */

    struct pending *head, *tail;
    const struct dm_redis_script **scripts;
    int nscripts;
    struct sub *subs;
    int nsubs;
};

static void connect_now(struct dm_redis_conn *c);
static void on_sub_message(redisAsyncContext *ac, void *r, void *privdata);

void dm_redis_script_init(struct dm_redis_script *s)
{
    unsigned char md[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char *)s->src, strlen(s->src), md);
    for (int i = 0; i < SHA_DIGEST_LENGTH; i++) {
        snprintf(s->sha + 2 * i, 3, "%02x", md[i]);
    }
}

static long long now_ms(const struct dm_redis_conn *c)
{
    return (long long)uv_now(c->loop);
}

static void maybe_free(struct dm_redis_conn *c)
{
    if (!c->closed || c->handles > 0 || c->ac || c->resolving) {
        return;
    }
    for (int i = 0; i < c->nsubs; i++) {
        free(c->subs[i].channel);
    }
    free(c->subs);
    free(c->scripts);
    dm_redis_addr_clear(&c->addr);
    free(c);
}

static void on_handle_closed(uv_handle_t *h)
{
    struct dm_redis_conn *c = h->data;
    c->handles--;
    maybe_free(c);
}

static void on_adapter_closed(uv_handle_t *h)
{
    struct adapter *ad = (struct adapter *)h;
    struct dm_redis_conn *c = ad->conn;
    free(ad);
    c->handles--;
    maybe_free(c);
}

/* ---- pending commands ---- */

static void pending_link(struct dm_redis_conn *c, struct pending *p)
{
    p->prev = c->tail;
    p->next = NULL;
    if (c->tail) {
        c->tail->next = p;
    } else {
        c->head = p;
    }
    c->tail = p;
}

static void pending_unlink(struct dm_redis_conn *c, struct pending *p)
{
    if (p->prev) {
        p->prev->next = p->next;
    } else if (c->head == p) {
        c->head = p->next;
    }
    if (p->next) {
        p->next->prev = p->prev;
    } else if (c->tail == p) {
        c->tail = p->prev;
    }
    p->prev = p->next = NULL;
}

static void pending_free(struct pending *p)
{
    for (int i = 0; i < p->argc && p->argv; i++) {
        free(p->argv[i]);
    }
    free(p->argv);
    free(p->lens);
    free(p);
}

/* ---- the adapter: hiredis ev hooks ---- */

static void on_poll(uv_poll_t *h, int status, int events)
{
    struct adapter *ad = (struct adapter *)h;
    struct dm_redis_conn *c = ad->conn;

    if (!ad->ac) {
        return;
    }
    if (status < 0) {
        /* libuv reports POLLERR/POLLHUP as an error status. Let hiredis look at the socket first
         * so the error it finds ("Connection refused", "Connection reset") is the one reported;
         * whatever it does, the context must not survive a poll error. */
        if (c->state == ST_CONNECTING) {
            redisAsyncHandleWrite(ad->ac);
        } else {
            redisAsyncHandleRead(ad->ac);
        }
        if (ad->ac) {
            if (!c->why[0]) {
                snprintf(c->why, sizeof(c->why), "socket error: %s", uv_strerror(status));
            }
            redisAsyncFree(ad->ac);
        }
        return;
    }
    if (events & (UV_READABLE | UV_DISCONNECT)) {
        redisAsyncHandleRead(ad->ac);
    }
    if (ad->ac && (events & UV_WRITABLE)) {
        redisAsyncHandleWrite(ad->ac);
    }
}

static void update_poll(struct adapter *ad)
{
    if (ad->events) {
        uv_poll_start(&ad->poll, ad->events, on_poll);
    } else {
        uv_poll_stop(&ad->poll);
    }
}

/* hiredis asks for each event with its own hook; all four only switch one flag. */
static void set_event(void *privdata, int event, int on)
{
    struct adapter *ad = privdata;
    ad->events = on ? (ad->events | event) : (ad->events & ~event);
    update_poll(ad);
}

static void ev_add_read(void *privdata)
{
    set_event(privdata, UV_READABLE, 1);
}

static void ev_del_read(void *privdata)
{
    set_event(privdata, UV_READABLE, 0);
}

static void ev_add_write(void *privdata)
{
    set_event(privdata, UV_WRITABLE, 1);
}

static void ev_del_write(void *privdata)
{
    set_event(privdata, UV_WRITABLE, 0);
}

static void on_timer(uv_timer_t *t);

static void schedule_reconnect(struct dm_redis_conn *c)
{
    long min = c->opts.backoff_min_ms > 0 ? c->opts.backoff_min_ms : 100;
    long max = c->opts.backoff_max_ms > 0 ? c->opts.backoff_max_ms : 5000;
    long jittered;

    /* Jitter in [delay/2, delay]: replicas that lost Redis together do not return in step. */
    jittered = (long)dm_retry_backoff_ms(min, max, c->attempt + 1, (uint64_t)rand());
    c->attempt++;
    c->state = ST_WAIT;
    dm_warn("redis", NULL, "%s: %s; reconnecting in %ld ms (attempt %d)", c->name,
            c->why[0] ? c->why : "not connected", jittered, c->attempt);
    uv_timer_start(&c->timer, on_timer, (uint64_t)jittered, 0);
}

/* The one place a dying context is noticed (every path through hiredis ends here). */
static void ev_cleanup(void *privdata)
{
    struct adapter *ad = privdata;
    struct dm_redis_conn *c = ad->conn;
    int was_up = c->state == ST_UP;

    ad->ac = NULL;
    uv_poll_stop(&ad->poll);
    uv_close((uv_handle_t *)&ad->poll, on_adapter_closed);
    c->ac = NULL;
    uv_timer_stop(&c->watchdog);
    if (c->closed) {
        return;
    }
    if (!c->why[0]) {
        snprintf(c->why, sizeof(c->why), "connection lost");
    }
    schedule_reconnect(c);
    if (was_up && c->opts.down) {
        c->opts.down(c, c->opts.arg, c->why);
    }
}

/* ---- handshake ---- */

static void become_up(struct dm_redis_conn *c)
{
    c->state = ST_UP;
    c->attempt = 0;
    c->why[0] = '\0';
    uv_timer_stop(&c->timer);
    if (c->ever_up) {
        c->reconnects++;
    }
    c->ever_up = 1;
    dm_info("redis", NULL, "%s: connected", c->name);
    uv_timer_start(&c->watchdog, on_timer, 250, 250);
    if (c->opts.up) {
        c->opts.up(c, c->opts.arg);
    }
}

static void handshake_step(struct dm_redis_conn *c)
{
    if (--c->handshake == 0 && c->state == ST_HANDSHAKE && !c->handshake_failed) {
        become_up(c);
    }
}

static void on_handshake_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    struct dm_redis_conn *c = ac->data;
    redisReply *reply = r;
    const char *what = privdata;

    if (!reply || c->closed) {
        return;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        /* AUTH/SELECT/SCRIPT LOAD refused: a configuration problem worth a loud message. */
        snprintf(c->why, sizeof(c->why), "%s failed: %.200s", what, reply->str);
        dm_errorf("redis", NULL, "%s: %s", c->name, c->why);
        c->handshake_failed = 1;
        redisAsyncDisconnect(ac);
        return;
    }
    handshake_step(c);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    struct dm_redis_conn *c = ac->data;

    if (status != REDIS_OK) {
        snprintf(c->why, sizeof(c->why), "connect to %s failed: %s", c->where, ac->errstr);
        return; /* hiredis frees the context next; ev_cleanup reschedules */
    }
    redisEnableKeepAlive((redisContext *)&ac->c);
    c->state = ST_HANDSHAKE;
    if (c->handshake == 0 && !c->handshake_failed) {
        become_up(c);
    }
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    struct dm_redis_conn *c = ac->data;
    if (status != REDIS_OK && !c->why[0]) {
        snprintf(c->why, sizeof(c->why), "connection lost: %s", ac->errstr);
    }
}

static void queue_handshake(struct dm_redis_conn *c, redisAsyncContext *ac)
{
    c->handshake = 0;
    c->handshake_failed = 0;
    if (c->addr.password) {
        if (c->addr.username) {
            redisAsyncCommand(ac, on_handshake_reply, "AUTH", "AUTH %s %s", c->addr.username,
                              c->addr.password);
        } else {
            redisAsyncCommand(ac, on_handshake_reply, "AUTH", "AUTH %s", c->addr.password);
        }
        c->handshake++;
    }
    if (c->addr.db) {
        redisAsyncCommand(ac, on_handshake_reply, "SELECT", "SELECT %d", c->addr.db);
        c->handshake++;
    }
    for (int i = 0; i < c->nscripts; i++) {
        redisAsyncCommand(ac, on_handshake_reply, "SCRIPT LOAD", "SCRIPT LOAD %s",
                          c->scripts[i]->src);
        c->handshake++;
    }
    for (int i = 0; i < c->nsubs; i++) {
        redisAsyncCommand(ac, on_sub_message, &c->subs[i], "SUBSCRIBE %s", c->subs[i].channel);
        c->handshake++;
    }
}

static void connect_resolved(struct dm_redis_conn *c);

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct dm_redis_conn *c = req->data;

    c->resolving = 0;
    if (c->closed) {
        uv_freeaddrinfo(res);
        maybe_free(c);
        return;
    }
    if (status < 0 || !res) {
        snprintf(c->why, sizeof(c->why), "cannot resolve %s: %s", c->addr.host,
                 uv_strerror(status));
        uv_freeaddrinfo(res);
        schedule_reconnect(c);
        return;
    }
    if (res->ai_family == AF_INET6) {
        uv_ip6_name((const struct sockaddr_in6 *)res->ai_addr, c->resolved, sizeof(c->resolved));
    } else {
        uv_ip4_name((const struct sockaddr_in *)res->ai_addr, c->resolved, sizeof(c->resolved));
    }
    uv_freeaddrinfo(res);
    connect_resolved(c);
}

static void connect_now(struct dm_redis_conn *c)
{
    struct sockaddr_in6 a6;
    struct sockaddr_in a4;
    struct addrinfo hints;

    c->why[0] = '\0';
    if (c->addr.unix_path || uv_ip4_addr(c->addr.host, 0, &a4) == 0 ||
        uv_ip6_addr(c->addr.host, 0, &a6) == 0) {
        snprintf(c->resolved, sizeof(c->resolved), "%s", c->addr.host ? c->addr.host : "");
        connect_resolved(c);
        return;
    }
    /* hiredis would resolve a name with a blocking getaddrinfo on the loop thread; libuv does
     * it on its threadpool. */
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    c->gai.data = c;
    if (uv_getaddrinfo(c->loop, &c->gai, on_resolved, c->addr.host, NULL, &hints) == 0) {
        c->resolving = 1;
        return;
    }
    snprintf(c->why, sizeof(c->why), "cannot resolve %s", c->addr.host);
    schedule_reconnect(c);
}

static void connect_resolved(struct dm_redis_conn *c)
{
    redisAsyncContext *ac;
    struct adapter *ad;

    if (c->addr.unix_path) {
        ac = redisAsyncConnectUnix(c->addr.unix_path);
    } else {
        ac = redisAsyncConnect(c->resolved, c->addr.port);
    }
    if (!ac || ac->err) {
        snprintf(c->why, sizeof(c->why), "connect to %s failed: %s", c->where,
                 ac ? ac->errstr : "out of memory");
        if (ac) {
            redisAsyncFree(ac);
        }
        schedule_reconnect(c);
        return;
    }
    ad = calloc(1, sizeof(*ad));
    if (!ad || uv_poll_init_socket(c->loop, &ad->poll, ac->c.fd) != 0) {
        free(ad);
        redisAsyncFree(ac);
        snprintf(c->why, sizeof(c->why), "cannot watch the socket");
        schedule_reconnect(c);
        return;
    }
    c->handles++;
    ad->ac = ac;
    ad->conn = c;
    ad->poll.data = ad;
    ac->data = c;
    ac->ev.data = ad;
    ac->ev.addRead = ev_add_read;
    ac->ev.delRead = ev_del_read;
    ac->ev.addWrite = ev_add_write;
    ac->ev.delWrite = ev_del_write;
    ac->ev.cleanup = ev_cleanup;
    c->ac = ac;
    c->state = ST_CONNECTING;
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    queue_handshake(c, ac);
    uv_timer_start(&c->timer, on_timer,
                   (uint64_t)(c->opts.connect_timeout_ms > 0 ? c->opts.connect_timeout_ms : 2000),
                   0);
}

static void on_timer(uv_timer_t *t)
{
    struct dm_redis_conn *c = t->data;

    if (c->closed) {
        return;
    }
    if (t == &c->watchdog) {
        if (c->head && now_ms(c) > c->head->deadline) {
            dm_redis_drop(c, "reply overdue");
        }
        return;
    }
    if (c->state == ST_WAIT) {
        connect_now(c);
    } else if ((c->state == ST_CONNECTING || c->state == ST_HANDSHAKE) && c->ac) {
        snprintf(c->why, sizeof(c->why), "connect timed out after %ld ms",
                 c->opts.connect_timeout_ms > 0 ? c->opts.connect_timeout_ms : 2000);
        redisAsyncFree(c->ac);
    }
}

/* ---- public API ---- */

int dm_redis_open(struct dm_redis_conn **out, uv_loop_t *loop, const struct dm_redis_addr *addr,
                  const struct dm_redis_opts *opts)
{
    struct dm_redis_conn *c = calloc(1, sizeof(*c));

    *out = NULL;
    if (!c) {
        return DM_ERR_NOMEM;
    }
    c->loop = loop;
    c->opts = *opts;
    snprintf(c->name, sizeof(c->name), "%s", opts->name ? opts->name : "redis");
    c->opts.name = c->name;
    c->addr.host = addr->host ? strdup(addr->host) : NULL;
    c->addr.unix_path = addr->unix_path ? strdup(addr->unix_path) : NULL;
    c->addr.password = addr->password ? strdup(addr->password) : NULL;
    c->addr.username = addr->username ? strdup(addr->username) : NULL;
    c->addr.port = addr->port;
    c->addr.db = addr->db;
    if (addr->unix_path) {
        snprintf(c->where, sizeof(c->where), "%s", addr->unix_path);
    } else {
        snprintf(c->where, sizeof(c->where), "%s:%d", addr->host ? addr->host : "?", addr->port);
    }
    {
        static int seeded;
        if (!seeded) {
            /* Jitter must differ between replicas started together. */
            srand((unsigned)getpid() ^ (unsigned)uv_hrtime());
            seeded = 1;
        }
    }
    uv_timer_init(loop, &c->timer);
    uv_timer_init(loop, &c->watchdog);
    c->timer.data = c;
    c->watchdog.data = c;
    c->handles = 2;
    for (int i = 0; opts->channels && opts->channels[i]; i++) {
        c->nsubs++;
    }
    if (c->nsubs) {
        c->subs = calloc((size_t)c->nsubs, sizeof(*c->subs));
        for (int i = 0; c->subs && i < c->nsubs; i++) {
            c->subs[i].channel = strdup(opts->channels[i]);
            c->subs[i].cb = opts->message;
            c->subs[i].arg = opts->arg;
        }
    }
    connect_now(c);
    *out = c;
    return 0;
}

void dm_redis_close(struct dm_redis_conn *c)
{
    if (!c || c->closed) {
        return;
    }
    c->closed = 1;
    snprintf(c->why, sizeof(c->why), "connection closed");
    uv_timer_stop(&c->timer);
    uv_timer_stop(&c->watchdog);
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
    uv_close((uv_handle_t *)&c->watchdog, on_handle_closed);
    if (c->resolving) {
        uv_cancel((uv_req_t *)&c->gai); /* on_resolved still runs, with UV_ECANCELED */
    }
    if (c->ac) {
        redisAsyncFree(c->ac); /* deferred by hiredis when inside one of its callbacks */
    }
}

int dm_redis_is_up(const struct dm_redis_conn *c)
{
    return c && !c->closed && c->state == ST_UP && c->ac;
}

unsigned long dm_redis_reconnects(const struct dm_redis_conn *c)
{
    return c ? c->reconnects : 0;
}

void dm_redis_drop(struct dm_redis_conn *c, const char *why)
{
    if (!c || c->closed || !c->ac) {
        return;
    }
    snprintf(c->why, sizeof(c->why), "%s", why);
    redisAsyncFree(c->ac);
}

static void on_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    struct pending *p = privdata;
    struct dm_redis_conn *c = p->conn;
    redisReply *reply = r;

    (void)ac;
    pending_unlink(c, p);
    if (reply && reply->type == REDIS_REPLY_ERROR && p->script && !p->retried &&
        strncmp(reply->str, "NOSCRIPT", 8) == 0 && c->ac && !c->closed) {
        /* A restarted Redis forgot the script: load it and run it again, in order. */
        p->retried = 1;
        dm_info("redis", NULL, "%s: script %s was not loaded (NOSCRIPT); loading it again", c->name,
                p->script->name);
        redisAsyncCommand(c->ac, NULL, NULL, "SCRIPT LOAD %s", p->script->src);
        if (redisAsyncCommandArgv(c->ac, on_reply, p, p->argc, (const char **)p->argv, p->lens) ==
            REDIS_OK) {
            pending_link(c, p);
            return;
        }
    }
    p->cb(p->arg, reply, reply ? NULL : (c->why[0] ? c->why : "connection lost"));
    pending_free(p);
}

/* A command for cb, not yet sent: *rc = DM_ERR_UNAVAILABLE (not connected) or DM_ERR_NOMEM when
 * it returns NULL. */
static struct pending *pending_new(struct dm_redis_conn *c, dm_redis_reply_cb cb, void *arg,
                                   int *rc)
{
    struct pending *p;

    if (!dm_redis_is_up(c)) {
        *rc = DM_ERR_UNAVAILABLE;
        return NULL;
    }
    p = calloc(1, sizeof(*p));
    if (!p) {
        *rc = DM_ERR_NOMEM;
        return NULL;
    }
    p->cb = cb;
    p->arg = arg;
    return p;
}

/* Binds p to c with its deadline (the command timeout plus extra_ms), just before sending. */
static void pending_arm(struct dm_redis_conn *c, struct pending *p, long extra_ms)
{
    p->conn = c;
    p->deadline = now_ms(c) +
                  (c->opts.command_timeout_ms > 0 ? c->opts.command_timeout_ms : 10000) + extra_ms;
}

static int send_pending(struct dm_redis_conn *c, struct pending *p, long extra_ms, int argc,
                        const char **argv, const size_t *lens)
{
    pending_arm(c, p, extra_ms);
    if (redisAsyncCommandArgv(c->ac, on_reply, p, argc, argv, lens) != REDIS_OK) {
        pending_free(p);
        return DM_ERR_UNAVAILABLE;
    }
    pending_link(c, p);
    return 0;
}

int dm_redis_cmdv(struct dm_redis_conn *c, long extra_ms, dm_redis_reply_cb cb, void *arg, int argc,
                  const char **argv, const size_t *lens)
{
    struct pending *p;
    int rc;

    p = pending_new(c, cb, arg, &rc);
    if (!p) {
        return rc;
    }
    return send_pending(c, p, extra_ms, argc, argv, lens);
}

int dm_redis_cmdf(struct dm_redis_conn *c, dm_redis_reply_cb cb, void *arg, const char *fmt, ...)
{
    struct pending *p;
    va_list ap;
    int rc;

    p = pending_new(c, cb, arg, &rc);
    if (!p) {
        return rc;
    }
    pending_arm(c, p, 0);
    va_start(ap, fmt);
    rc = redisvAsyncCommand(c->ac, on_reply, p, fmt, ap);
    va_end(ap);
    if (rc != REDIS_OK) {
        pending_free(p);
        return DM_ERR_UNAVAILABLE;
    }
    pending_link(c, p);
    return 0;
}

int dm_redis_eval(struct dm_redis_conn *c, const struct dm_redis_script *s, dm_redis_reply_cb cb,
                  void *arg, int nkeys, int nargs, const char **args, const size_t *lens)
{
    struct pending *p;
    char nk[16];
    int argc = nargs + 3;
    int rc;

    p = pending_new(c, cb, arg, &rc);
    if (!p) {
        return rc;
    }
    p->script = s;
    p->argv = calloc((size_t)argc, sizeof(char *));
    p->lens = calloc((size_t)argc, sizeof(size_t));
    if (!p->argv || !p->lens) {
        pending_free(p);
        return DM_ERR_NOMEM;
    }
    p->argc = argc;
    snprintf(nk, sizeof(nk), "%d", nkeys);
    p->argv[0] = strdup("EVALSHA");
    p->argv[1] = strdup(s->sha);
    p->argv[2] = strdup(nk);
    p->lens[0] = 7;
    p->lens[1] = strlen(s->sha);
    p->lens[2] = strlen(nk);
    for (int i = 0; i < nargs; i++) {
        size_t n = lens ? lens[i] : strlen(args[i]);
        p->argv[i + 3] = malloc(n + 1);
        if (!p->argv[i + 3]) {
            pending_free(p);
            return DM_ERR_NOMEM;
        }
        memcpy(p->argv[i + 3], args[i], n);
        p->argv[i + 3][n] = '\0';
        p->lens[i + 3] = n;
    }
    for (int i = 0; i < 3; i++) {
        if (!p->argv[i]) {
            pending_free(p);
            return DM_ERR_NOMEM;
        }
    }
    return send_pending(c, p, 0, p->argc, (const char **)p->argv, p->lens);
}

int dm_redis_add_script(struct dm_redis_conn *c, const struct dm_redis_script *s)
{
    const struct dm_redis_script **n = realloc(c->scripts, sizeof(*n) * (size_t)(c->nscripts + 1));
    if (!n) {
        return DM_ERR_NOMEM;
    }
    c->scripts = n;
    c->scripts[c->nscripts++] = s;
    if (c->ac) {
        /* Queued ahead of any command that could use it. */
        redisAsyncCommand(c->ac, NULL, NULL, "SCRIPT LOAD %s", s->src);
    }
    return 0;
}

static void on_sub_message(redisAsyncContext *ac, void *r, void *privdata)
{
    struct dm_redis_conn *c = ac->data;
    struct sub *s = privdata;
    redisReply *reply = r;
    const char *type;

    if (!reply || c->closed || reply->type != REDIS_REPLY_ARRAY || reply->elements < 3 ||
        reply->element[0]->type != REDIS_REPLY_STRING) {
        return;
    }
    type = reply->element[0]->str;
    if (strcmp(type, "subscribe") == 0) {
        if (c->state == ST_HANDSHAKE || c->state == ST_CONNECTING) {
            handshake_step(c);
        }
        return;
    }
    if (strcmp(type, "message") == 0 && reply->element[2]->type == REDIS_REPLY_STRING) {
        s->cb(s->arg, reply->element[1]->str, reply->element[2]->str, reply->element[2]->len);
    }
}
