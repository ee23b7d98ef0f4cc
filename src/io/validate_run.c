/*
 * validate_run: esbuild as a child process per TS/TSX/JS check, and the SQL check
 * (dm_validate_sql) on libuv's threadpool (see include/dream/io/validate_run.h).
 *
 * Owns the runner (a FIFO of queued checks, the running ones, the finished ones waiting for
 * their callback, and one zero-delay timer that starts queued checks and delivers completions
 * from the loop) and, per running check, a uv_process_t, three pipes and a deadline timer, all
 * embedded in the check and freed after their last close callback; per SQL check, a uv_work_t
 * whose work reads only the check's own copy of the content. Loop thread only (the SQL work
 * itself on a threadpool thread).
 */
#include "dream/io/validate_run.h"
#include "dream/core/buf.h"
#include "dream/core/log.h"
#include "dream/domain/esbuild_report.h"
#include "dream/domain/validate.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CONTENT_MAX ((size_t)64 << 20)
#define GRACE_MS 500 /* after the child exits, how long its pipes may stay open */
#define ESBUILD_REL ".tools/node_modules/.bin/esbuild"

enum req_state { REQ_QUEUED, REQ_RUNNING, REQ_DONE };

struct req_list {
    struct dm_validate_req *head;
    struct dm_validate_req *tail;
};

struct dm_validate_req {
    struct dm_validate_runner *r;
    struct dm_validate_req *prev;
    struct dm_validate_req *next;
    enum req_state state;
    char *path;
    const char *loader;
    char *content;
    size_t len;
    dm_validate_run_cb cb;
    void *arg;

    uv_process_t proc;
    uv_pipe_t in;
    uv_pipe_t out;
    uv_pipe_t errp;
    uv_timer_t timer;
    uv_write_t wr;
    int open_handles; /* initialised handles whose close callback has not run */
    int spawned;
    int spawn_err; /* libuv error of uv_spawn */
    int exited;
    int64_t exit_status;
    int term_signal;
    int out_eof;
    int err_eof;
    int timed_out;
    int cancelled;
    int finishing;
    struct dm_buf outb;
    struct dm_buf errb;
    char rbuf[16384];

    int status;
    char *msg;

    /* A SQL check (dm_validate_sql) runs on the threadpool, not as a child: the work touches
     * only content, len and the two fields below; the loop reads them after it. */
    int sql;
    uv_work_t work;
    int sql_rc;
    struct dm_error sql_err;
};

struct dm_validate_runner {
    uv_loop_t *loop;
    uv_timer_t kick;
    char *esbuild;
    char *path_env; /* "PATH=...": the child's whole environment (no secrets passed on) */
    unsigned max_children;
    unsigned timeout_ms;
    size_t output_cap;
    struct req_list queue;
    struct req_list running;
    struct req_list done;
    size_t n_pending;
    size_t n_running;
    /* A SQL check is on the threadpool. One at a time: SQLite's heap limit is process-wide, so
     * checks running together would share it, and one file built to fill it would fail the
     * others (valid files reported "out of memory"); it also keeps the pool's threads free. */
    int sql_running;
    int closing;
    dm_validate_closed_cb closed_cb;
    void *closed_arg;
};

static void list_push(struct req_list *l, struct dm_validate_req *q)
{
    q->next = NULL;
    q->prev = l->tail;
    if (l->tail) {
        l->tail->next = q;
    } else {
        l->head = q;
    }
    l->tail = q;
}

static void list_remove(struct req_list *l, struct dm_validate_req *q)
{
    if (q->prev) {
        q->prev->next = q->next;
    } else {
        l->head = q->next;
    }
    if (q->next) {
        q->next->prev = q->prev;
    } else {
        l->tail = q->prev;
    }
    q->prev = NULL;
    q->next = NULL;
}

/* ---- finding esbuild ---------------------------------------------------------------------- */

static int is_executable(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

static char *search_path(const char *name)
{
    const char *path = getenv("PATH");
    const char *p;

    if (!path || !*path) {
        path = "/usr/local/bin:/usr/bin:/bin";
    }
    p = path;
    for (;;) {
        const char *colon = strchr(p, ':');
        size_t n = colon ? (size_t)(colon - p) : strlen(p);
        char *cand = NULL;
        if (asprintf(&cand, "%.*s/%s", (int)(n ? n : 1), n ? p : ".", name) < 0) {
            return NULL;
        }
        if (is_executable(cand)) {
            return cand;
        }
        free(cand);
        if (!colon) {
            return NULL;
        }
        p = colon + 1;
    }
}

static char *try_under(const char *dir, const char *rel)
{
    char *cand = NULL;
    if (asprintf(&cand, "%s/%s", dir, rel) < 0) {
        return NULL;
    }
    if (is_executable(cand)) {
        return cand;
    }
    free(cand);
    return NULL;
}

static char *find_esbuild(const char *configured)
{
    char exe[PATH_MAX];
    size_t size = sizeof(exe);
    const char *src;
    char *found;

    if (configured && *configured) {
        if (strchr(configured, '/')) {
            return is_executable(configured) ? strdup(configured) : NULL;
        }
        return search_path(configured);
    }
    found = search_path("esbuild");
    if (found) {
        return found;
    }
    if (uv_exepath(exe, &size) == 0) {
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            found = try_under(exe, "../" ESBUILD_REL);
            if (!found) {
                found = try_under(exe, "../../" ESBUILD_REL);
            }
            if (found) {
                return found;
            }
        }
    }
    src = getenv("DREAM_SOURCE_DIR");
    if (src && *src) {
        return try_under(src, ESBUILD_REL);
    }
    return NULL;
}

/* ---- completion --------------------------------------------------------------------------- */

static void on_kick(uv_timer_t *t);

static void kick(struct dm_validate_runner *r)
{
    uv_timer_start(&r->kick, on_kick, 0, 0);
}

static void req_free(struct dm_validate_req *q)
{
    dm_buf_free(&q->outb);
    dm_buf_free(&q->errb);
    free(q->path);
    free(q->content);
    free(q->msg);
    free(q);
}

/* Moves a check whose handles are all closed (or that never had any) to the done list. */
static void req_done(struct dm_validate_req *q)
{
    struct dm_validate_runner *r = q->r;

    if (q->state == REQ_QUEUED) {
        list_remove(&r->queue, q);
    } else if (q->state == REQ_RUNNING) {
        list_remove(&r->running, q);
        r->n_running--;
    }
    q->state = REQ_DONE;
    list_push(&r->done, q);
    kick(r);
}

static void set_result(struct dm_validate_req *q, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_result(struct dm_validate_req *q, int status, const char *fmt, ...)
{
    va_list ap;

    q->status = status;
    free(q->msg);
    q->msg = NULL;
    if (fmt) {
        va_start(ap, fmt);
        if (vasprintf(&q->msg, fmt, ap) < 0) {
            q->msg = NULL;
        }
        va_end(ap);
    }
}

static void compute_result(struct dm_validate_req *q)
{
    struct dm_validate_runner *r = q->r;
    char text[1200];

    if (q->cancelled) {
        set_result(q, DM_ERR_CANCELLED, "validation of %s cancelled", q->path);
    } else if (q->sql) {
        set_result(q, q->sql_rc, q->sql_rc ? "%s: %s" : NULL, q->path, q->sql_err.msg);
    } else if (!r->esbuild) {
        set_result(q, DM_ERR_UNAVAILABLE,
                   "no esbuild binary found (set DREAM_ESBUILD or run scripts/bootstrap.sh)");
    } else if (!q->spawned) {
        int unavailable =
            q->spawn_err == UV_ENOENT || q->spawn_err == UV_EACCES || q->spawn_err == UV_ENOTDIR;
        set_result(q, unavailable ? DM_ERR_UNAVAILABLE : DM_ERR_IO, "esbuild could not run: %s",
                   uv_strerror(q->spawn_err));
    } else if (q->timed_out) {
        set_result(q, DM_ERR_TIMEOUT, "esbuild did not finish %s within %u ms", q->path,
                   r->timeout_ms);
    } else if (q->exited && q->exit_status == 0 && q->term_signal == 0) {
        set_result(q, 0, NULL);
    } else if (dm_esbuild_first_error(&q->errb, text, sizeof(text)) ||
               dm_esbuild_first_error(&q->outb, text, sizeof(text))) {
        set_result(q, DM_ERR_INVALID, "%s", text);
    } else if (q->term_signal) {
        set_result(q, DM_ERR_IO, "esbuild was killed by signal %d", q->term_signal);
    } else {
        dm_esbuild_last_line(&q->errb, text, sizeof(text));
        set_result(q, DM_ERR_IO, "esbuild exited with status %lld%s%s", (long long)q->exit_status,
                   text[0] ? ": " : "", text);
    }
}

static void on_handle_closed(uv_handle_t *h)
{
    struct dm_validate_req *q = h->data;
    if (--q->open_handles == 0) {
        req_done(q);
    }
}

static void close_handle(struct dm_validate_req *q, uv_handle_t *h)
{
    if (h->data == q && !uv_is_closing(h)) {
        uv_close(h, on_handle_closed);
    }
}

/* Ends a running check: result now, handles closed, completion queued after the last close. */
static void finish(struct dm_validate_req *q)
{
    if (q->finishing) {
        return;
    }
    q->finishing = 1;
    compute_result(q);
    close_handle(q, (uv_handle_t *)&q->timer);
    close_handle(q, (uv_handle_t *)&q->in);
    close_handle(q, (uv_handle_t *)&q->out);
    close_handle(q, (uv_handle_t *)&q->errp);
    close_handle(q, (uv_handle_t *)&q->proc);
}

static void maybe_finish(struct dm_validate_req *q)
{
    if (q->exited && q->out_eof && q->err_eof) {
        finish(q);
    }
}

static void kill_group(struct dm_validate_req *q)
{
    if (q->spawned && !q->exited) {
        /* The child leads its own process group (UV_PROCESS_DETACHED): kill helpers too, so no
         * grandchild keeps the pipes open. The pid is not reaped yet, so it cannot be reused. */
        if (uv_kill(-q->proc.pid, SIGKILL) != 0) {
            uv_process_kill(&q->proc, SIGKILL);
        }
    }
}

/* ---- child process ------------------------------------------------------------------------ */

static void on_timer(uv_timer_t *t)
{
    struct dm_validate_req *q = t->data;

    if (!q->exited) {
        q->timed_out = 1;
        dm_warn("validate", NULL, "esbuild on %s timed out after %u ms: killing it", q->path,
                q->r->timeout_ms);
        kill_group(q);
        return;
    }
    /* Exited, but something still holds its pipes: stop waiting. */
    finish(q);
}

static void on_child_exit(uv_process_t *p, int64_t exit_status, int term_signal)
{
    struct dm_validate_req *q = p->data;

    q->exited = 1;
    q->exit_status = exit_status;
    q->term_signal = term_signal;
    if (q->out_eof && q->err_eof) {
        finish(q);
        return;
    }
    uv_timer_start(&q->timer, on_timer, GRACE_MS, 0);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct dm_validate_req *q = h->data;
    (void)suggested;
    /* One read at a time per loop, and on_read copies the data out: one buffer serves both. */
    *buf = uv_buf_init(q->rbuf, sizeof(q->rbuf));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct dm_validate_req *q = s->data;
    int is_out = s == (uv_stream_t *)&q->out;
    struct dm_buf *b = is_out ? &q->outb : &q->errb;

    if (nread > 0) {
        size_t room = b->limit > b->len ? b->limit - b->len : 0;
        size_t n = (size_t)nread < room ? (size_t)nread : room;
        if (n) {
            dm_buf_append(b, buf->base, n);
        }
        return;
    }
    if (nread == 0) {
        return;
    }
    uv_read_stop(s);
    if (is_out) {
        q->out_eof = 1;
    } else {
        q->err_eof = 1;
    }
    close_handle(q, (uv_handle_t *)s);
    maybe_finish(q);
}

static void on_write(uv_write_t *w, int status)
{
    struct dm_validate_req *q = w->data;
    (void)status; /* EPIPE when the child stopped reading early: its exit says why */
    close_handle(q, (uv_handle_t *)&q->in);
}

static int init_handle(struct dm_validate_req *q, uv_handle_t *h, int rc)
{
    if (rc == 0) {
        h->data = q;
        q->open_handles++;
    }
    return rc;
}

/* Starts a queued check. On failure the check is finished with the spawn error. */
/* ---- SQL checks on the threadpool ---------------------------------------------------------- */

/* Threadpool: dm_validate_sql is capped (time, heap, values) but takes up to its 2 s deadline:
 * never on the loop. Touches only the request's own copy and result fields. */
static void on_sql_work(uv_work_t *w)
{
    struct dm_validate_req *q = w->data;
    q->sql_err.msg[0] = '\0';
    q->sql_rc = dm_validate_sql(q->content, q->len, &q->sql_err);
}

/* Loop: the result (or a cancel that came meanwhile) goes out with the next kick. */
static void on_sql_done(uv_work_t *w, int status)
{
    struct dm_validate_req *q = w->data;
    q->r->sql_running = 0;
    if (status != 0 && !q->sql_rc) {
        q->sql_rc = dm_error_set(&q->sql_err, DM_ERR_IO, "the SQL check did not run");
    }
    q->finishing = 1;
    compute_result(q);
    req_done(q);
}

static void start(struct dm_validate_req *q)
{
    struct dm_validate_runner *r = q->r;
    uv_process_options_t o;
    uv_stdio_container_t stdio[3];
    char loader_arg[32];
    char *source_arg = NULL;
    char *args[8];
    char *env[2];
    int rc;

    list_remove(&r->queue, q);
    q->state = REQ_RUNNING;
    list_push(&r->running, q);
    r->n_running++;
    dm_buf_init(&q->outb, r->output_cap);
    dm_buf_init(&q->errb, r->output_cap);

    if (q->sql) {
        q->work.data = q;
        r->sql_running = 1;
        if (uv_queue_work(r->loop, &q->work, on_sql_work, on_sql_done) != 0) {
            r->sql_running = 0;
            q->sql_rc = dm_error_set(&q->sql_err, DM_ERR_IO, "cannot queue the SQL check");
            q->finishing = 1;
            compute_result(q);
            req_done(q);
        }
        return;
    }

    if (!r->esbuild) {
        q->spawn_err = UV_ENOENT;
        req_done(q);
        return;
    }
    rc = init_handle(q, (uv_handle_t *)&q->timer, uv_timer_init(r->loop, &q->timer));
    rc = rc ? rc : init_handle(q, (uv_handle_t *)&q->in, uv_pipe_init(r->loop, &q->in, 0));
    rc = rc ? rc : init_handle(q, (uv_handle_t *)&q->out, uv_pipe_init(r->loop, &q->out, 0));
    rc = rc ? rc : init_handle(q, (uv_handle_t *)&q->errp, uv_pipe_init(r->loop, &q->errp, 0));
    if (rc == 0 && asprintf(&source_arg, "--sourcefile=%s", q->path) < 0) {
        source_arg = NULL;
        rc = UV_ENOMEM;
    }
    if (rc) {
        q->spawn_err = rc;
        goto out;
    }
    snprintf(loader_arg, sizeof(loader_arg), "--loader=%s", q->loader);
    args[0] = r->esbuild;
    args[1] = loader_arg;
    args[2] = "--log-level=error";
    args[3] = "--color=false";
    args[4] = "--log-limit=1";
    args[5] = source_arg;
    args[6] = NULL;

    memset(&o, 0, sizeof(o));
    memset(stdio, 0, sizeof(stdio));
    stdio[0].flags = UV_CREATE_PIPE | UV_READABLE_PIPE;
    stdio[0].data.stream = (uv_stream_t *)&q->in;
    stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[1].data.stream = (uv_stream_t *)&q->out;
    stdio[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[2].data.stream = (uv_stream_t *)&q->errp;
    env[0] = r->path_env;
    env[1] = NULL;
    o.file = r->esbuild;
    o.args = args;
    o.env = env;
    o.exit_cb = on_child_exit;
    o.stdio = stdio;
    o.stdio_count = 3;
    o.flags = UV_PROCESS_DETACHED;

    rc = uv_spawn(r->loop, &q->proc, &o);
    /* The process handle is initialised (and must be closed) even when uv_spawn fails. */
    init_handle(q, (uv_handle_t *)&q->proc, 0);
    if (rc) {
        q->spawn_err = rc;
        goto out;
    }
    q->spawned = 1;
    uv_timer_start(&q->timer, on_timer, r->timeout_ms, 0);
    uv_read_start((uv_stream_t *)&q->out, on_alloc, on_read);
    uv_read_start((uv_stream_t *)&q->errp, on_alloc, on_read);
    if (q->len) {
        uv_buf_t b = uv_buf_init(q->content, (unsigned)q->len);
        q->wr.data = q;
        if (uv_write(&q->wr, (uv_stream_t *)&q->in, &b, 1, on_write) != 0) {
            close_handle(q, (uv_handle_t *)&q->in);
        }
    } else {
        close_handle(q, (uv_handle_t *)&q->in);
    }
out:
    free(source_arg);
    if (rc) {
        if (q->open_handles == 0) {
            req_done(q);
        } else {
            finish(q);
        }
    }
}

/* ---- runner ------------------------------------------------------------------------------- */

static void on_runner_closed(uv_handle_t *h)
{
    struct dm_validate_runner *r = h->data;
    dm_validate_closed_cb cb = r->closed_cb;
    void *arg = r->closed_arg;

    free(r->esbuild);
    free(r->path_env);
    free(r);
    if (cb) {
        cb(arg);
    }
}

static void on_kick(uv_timer_t *t)
{
    struct dm_validate_runner *r = t->data;
    struct dm_validate_req *q, *next_q;

    /* In order, except that a SQL check waits while another one runs (sql_running). */
    for (q = r->queue.head; q && !r->closing && r->n_running < r->max_children; q = next_q) {
        next_q = q->next;
        if (!(q->sql && r->sql_running)) {
            start(q);
        }
    }
    /* Deliver only what is done now: callbacks may add more, which a new kick delivers. */
    q = r->done.head;
    r->done.head = NULL;
    r->done.tail = NULL;
    while (q) {
        struct dm_validate_req *next = q->next;
        if (!q->finishing) {
            compute_result(q); /* checks that never had a child */
        }
        r->n_pending--;
        q->cb(q->arg, q->status, q->status ? (q->msg ? q->msg : dm_err_name(q->status)) : NULL);
        req_free(q);
        q = next;
    }
    if (r->closing && r->n_pending == 0 && !uv_is_closing((uv_handle_t *)&r->kick)) {
        uv_close((uv_handle_t *)&r->kick, on_runner_closed);
    }
}

int dm_validate_runner_new(struct dm_validate_runner **out, uv_loop_t *loop,
                           const struct dm_validate_runner_opts *opts, struct dm_error *err)
{
    struct dm_validate_runner_opts def = DM_VALIDATE_RUNNER_OPTS_INIT;
    struct dm_validate_runner *r = NULL;
    int rc = 0;

    *out = NULL;
    if (!opts) {
        opts = &def;
    }
    r = calloc(1, sizeof(*r));
    if (!r) {
        rc = dm_error_set(err, DM_ERR_NOMEM, "out of memory");
        goto out;
    }
    r->loop = loop;
    r->max_children = opts->max_children ? opts->max_children : 4;
    r->timeout_ms = opts->timeout_ms ? opts->timeout_ms : 20000;
    r->output_cap = opts->output_cap ? opts->output_cap : 65536;
    r->esbuild = find_esbuild(opts->esbuild);
    if (asprintf(&r->path_env, "PATH=%s",
                 getenv("PATH") ? getenv("PATH") : "/usr/local/bin:/usr/bin:/bin") < 0) {
        r->path_env = NULL;
        rc = dm_error_set(err, DM_ERR_NOMEM, "out of memory");
        goto out;
    }
    if (uv_timer_init(loop, &r->kick) != 0) {
        rc = dm_error_set(err, DM_ERR_IO, "validate: cannot make a timer");
        goto out;
    }
    r->kick.data = r;
    signal(SIGPIPE, SIG_IGN);
    if (r->esbuild) {
        dm_info("validate", NULL, "TS/JS validator: %s", r->esbuild);
    } else {
        dm_warn("validate", NULL, "no esbuild found%s%s: TS/JS files cannot be validated",
                opts->esbuild && *opts->esbuild ? " at " : "",
                opts->esbuild && *opts->esbuild ? opts->esbuild : "");
    }
    *out = r;
    r = NULL;
out:
    if (r) {
        free(r->esbuild);
        free(r->path_env);
        free(r);
    }
    return rc;
}

const char *dm_validate_runner_esbuild(const struct dm_validate_runner *r)
{
    return r->esbuild;
}

int dm_validate_run(struct dm_validate_runner *r, const char *path, const char *content, size_t len,
                    dm_validate_run_cb cb, void *arg, struct dm_validate_req **out)
{
    const char *loader = dm_validate_esbuild_loader(path);
    int sql = dm_validate_kind_of(path) == DM_VALIDATE_SQL;
    struct dm_validate_req *q;

    if (out) {
        *out = NULL;
    }
    if (r->closing) {
        return DM_ERR_CANCELLED;
    }
    if ((!loader && !sql) || !cb) {
        return DM_ERR_INVALID;
    }
    if (len > CONTENT_MAX || len > UINT_MAX) {
        return DM_ERR_LIMIT;
    }
    q = calloc(1, sizeof(*q));
    if (!q) {
        return DM_ERR_NOMEM;
    }
    q->r = r;
    q->loader = loader;
    q->sql = sql;
    q->cb = cb;
    q->arg = arg;
    q->path = strdup(path);
    q->content = malloc(len ? len : 1);
    if (!q->path || !q->content) {
        free(q->path);
        free(q->content);
        free(q);
        return DM_ERR_NOMEM;
    }
    memcpy(q->content, content, len);
    q->len = len;
    q->state = REQ_QUEUED;
    list_push(&r->queue, q);
    r->n_pending++;
    kick(r);
    if (out) {
        *out = q;
    }
    return 0;
}

void dm_validate_cancel(struct dm_validate_req *q)
{
    if (!q || q->state == REQ_DONE || q->cancelled || q->finishing) {
        return;
    }
    q->cancelled = 1;
    if (q->state == REQ_QUEUED) {
        req_done(q);
        return;
    }
    kill_group(q);
}

size_t dm_validate_runner_pending(const struct dm_validate_runner *r)
{
    return r->n_pending;
}

size_t dm_validate_runner_running(const struct dm_validate_runner *r)
{
    return r->n_running;
}

void dm_validate_runner_close(struct dm_validate_runner *r, dm_validate_closed_cb done, void *arg)
{
    struct dm_validate_req *q;

    if (!r) {
        return;
    }
    r->closing = 1;
    r->closed_cb = done;
    r->closed_arg = arg;
    while ((q = r->queue.head) != NULL) {
        dm_validate_cancel(q);
    }
    for (q = r->running.head; q; q = q->next) {
        dm_validate_cancel(q);
    }
    kick(r);
}
