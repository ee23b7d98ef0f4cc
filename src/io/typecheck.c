/*
 * typecheck: tsc on the whole change, off the loop (contract in include/dream/io/typecheck.h).
 *
 * A struct dm_typecheck goes through three steps: prepare (threadpool: the work directory, the
 * untyped declarations, the generated tsconfig), run (loop: tsc as a child with a deadline and
 * capped pipes) and finish (threadpool: parse, remove the work directory), then the completion
 * on the loop. It owns copies of every input, the child's handles (embedded, closed before the
 * completion) and the result. This file finds tsc and runs the loop side; the threadpool steps
 * are in typecheck_work.c (shared through typecheck_private.h). Loop thread, except the two work
 * callbacks, which touch only the check's own copies and its atomic cancel flag.
 */
#include "dream/io/typecheck.h"
#include "dream/core/buf.h"
#include "dream/core/log.h"
#include "dream/core/text.h"
#include "typecheck_private.h"

#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TS_DIR ".tools/typescript/node_modules"

/* ---- finding tsc ------------------------------------------------------------------------- */

static int is_executable(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

char *typecheck_search_path(const char *name)
{
    const char *path = getenv("PATH");
    const char *p;

    if (!path || !*path) {
        path = "/usr/local/bin:/usr/bin:/bin";
    }
    for (p = path;;) {
        const char *colon = strchr(p, ':');
        size_t n = colon ? (size_t)(colon - p) : strlen(p);
        char *cand = NULL;
        if (n && asprintf(&cand, "%.*s/%s", (int)n, p, name) >= 0) {
            if (is_executable(cand)) {
                return cand;
            }
            free(cand);
        }
        if (!colon) {
            return NULL;
        }
        p = colon + 1;
    }
}

static const char *platform_package(void)
{
#if defined(__linux__) && defined(__x86_64__)
    return "@typescript/typescript-linux-x64";
#elif defined(__linux__) && defined(__aarch64__)
    return "@typescript/typescript-linux-arm64";
#elif defined(__APPLE__) && defined(__aarch64__)
    return "@typescript/typescript-darwin-arm64";
#elif defined(__APPLE__)
    return "@typescript/typescript-darwin-x64";
#else
    return NULL;
#endif
}

/* The compiler under root's .tools/typescript: the native binary, else the node launcher. */
static char *try_root(const char *root)
{
    const char *pkg = platform_package();
    char *cand = NULL;

    if (pkg && asprintf(&cand, "%s/" TS_DIR "/%s/lib/tsc", root, pkg) >= 0) {
        if (is_executable(cand)) {
            return cand;
        }
        free(cand);
    }
    if (asprintf(&cand, "%s/" TS_DIR "/.bin/tsc", root) >= 0) {
        if (is_executable(cand)) {
            return cand;
        }
        free(cand);
    }
    return NULL;
}

char *dm_typecheck_find_tsc(const char *configured)
{
    char exe[PATH_MAX];
    size_t size = sizeof(exe);
    const char *src;
    char *found = NULL;

    if (configured && *configured) {
        if (strchr(configured, '/')) {
            return is_executable(configured) ? strdup(configured) : NULL;
        }
        return typecheck_search_path(configured);
    }
    if (uv_exepath(exe, &size) == 0) {
        char *slash = strrchr(exe, '/');
        if (slash) {
            char root[PATH_MAX + 8];
            *slash = '\0';
            snprintf(root, sizeof(root), "%s/..", exe);
            found = try_root(root);
            if (!found) {
                snprintf(root, sizeof(root), "%s/../..", exe);
                found = try_root(root);
            }
        }
    }
    src = getenv("DREAM_SOURCE_DIR");
    if (!found && src && *src) {
        found = try_root(src);
    }
    return found ? found : typecheck_search_path("tsc");
}

/* The version in the package.json next to the binary's folder ("7.0.2"), or "". */
void typecheck_read_version(const char *tsc, char *out, size_t n)
{
    char path[PATH_MAX];
    char buf[4096];
    const char *slash = strrchr(tsc, '/');
    const char *v;
    FILE *f;
    size_t got;

    out[0] = '\0';
    if (!slash) {
        return;
    }
    /* .../@typescript/typescript-<os>-<arch>/lib/tsc or .../typescript/bin/tsc */
    snprintf(path, sizeof(path), "%.*s/../package.json", (int)(slash - tsc), tsc);
    f = fopen(path, "r");
    if (!f) {
        return;
    }
    got = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[got] = '\0';
    v = strstr(buf, "\"version\"");
    if (v && (v = strchr(v + 9, '"')) != NULL) {
        size_t k = 0;
        for (v++; *v && *v != '"' && k + 1 < n; v++) {
            out[k++] = *v;
        }
        out[k] = '\0';
    }
}

/* ---- the loop side ---------------------------------------------------------------------- */

static void typecheck_free(struct dm_typecheck *tc)
{
    free(tc->tsc);
    free(tc->prlimit);
    free(tc->base_dir);
    free(tc->work_dir);
    free(tc->baseline);
    free(tc->baseline_text);
    for (size_t i = 0; i < tc->nfiles; i++) {
        free((char *)tc->files[i].path);
        free((char *)tc->files[i].content);
    }
    free(tc->files);
    for (size_t i = 0; i < tc->n_untyped; i++) {
        free(tc->untyped[i]);
    }
    free(tc->untyped);
    for (size_t i = 0; i < tc->ndirs; i++) {
        free(tc->dirs[i]);
    }
    free(tc->dirs);
    dm_buf_free(&tc->outb);
    dm_buf_free(&tc->errb);
    dm_tsc_diags_free(&tc->res.diags);
    free(tc);
}

static void complete(struct dm_typecheck *tc)
{
    tc->res.from_baseline = tc->from_baseline;
    tc->on_done(tc->arg, tc->rc, tc->rc ? NULL : &tc->res, &tc->err);
    typecheck_free(tc);
}

static void on_work_done(uv_work_t *req, int status);

static void queue_step(struct dm_typecheck *tc, enum step step)
{
    tc->step = step;
    if (uv_queue_work(tc->loop, &tc->work, typecheck_on_work, on_work_done) != 0) {
        if (!tc->rc) {
            tc->rc = dm_error_set(&tc->err, DM_ERR_IO, "cannot queue the type-check's work");
        }
        complete(tc); /* from a loop callback: never inside dm_typecheck_start */
    }
}

/* The outcome of the child, before its output is parsed. */
static void child_outcome(struct dm_typecheck *tc)
{
    if (typecheck_cancelled(tc)) {
        tc->rc = dm_error_set(&tc->err, DM_ERR_CANCELLED, "type-check cancelled");
    } else if (!tc->spawned) {
        int unavailable = tc->spawn_err == UV_ENOENT || tc->spawn_err == UV_EACCES;
        tc->rc = dm_error_set(&tc->err, unavailable ? DM_ERR_UNAVAILABLE : DM_ERR_IO,
                              "tsc could not run: %s", uv_strerror(tc->spawn_err));
    } else if (tc->timed_out) {
        tc->rc = dm_error_set(&tc->err, DM_ERR_TIMEOUT,
                              "the type-check did not finish within %u ms (tsc was stopped)",
                              tc->timeout_ms);
    } else if (tc->term_signal) {
        tc->rc = dm_error_set(&tc->err, DM_ERR_IO,
                              "tsc was killed by signal %d (over its memory limit of %zu MiB?)",
                              tc->term_signal, tc->mem_mb);
    } else if (tc->exit_status != 0 && tc->exit_status != 1 && tc->exit_status != 2) {
        char last[300] = "";
        if (tc->errb.len) {
            char *line = dm_text_clean_line(tc->errb.data, 280);
            if (line) {
                snprintf(last, sizeof(last), ": %s", line);
                free(line);
            }
        }
        tc->rc = dm_error_set(&tc->err, DM_ERR_IO, "tsc exited with status %lld%s",
                              (long long)tc->exit_status, last);
    }
    tc->res.output_cut = tc->outb.len >= tc->output_cap || tc->errb.len >= tc->output_cap;
}

static void on_handle_closed(uv_handle_t *h)
{
    struct dm_typecheck *tc = h->data;
    if (--tc->open_handles == 0) {
        child_outcome(tc);
        queue_step(tc, STEP_FINISH);
    }
}

static void close_handle(struct dm_typecheck *tc, uv_handle_t *h)
{
    if (h->data == tc && !uv_is_closing(h)) {
        uv_close(h, on_handle_closed);
    }
}

static void finish_child(struct dm_typecheck *tc)
{
    if (tc->finishing) {
        return;
    }
    tc->finishing = 1;
    close_handle(tc, (uv_handle_t *)&tc->timer);
    close_handle(tc, (uv_handle_t *)&tc->out);
    close_handle(tc, (uv_handle_t *)&tc->errp);
    close_handle(tc, (uv_handle_t *)&tc->proc);
}

static void kill_group(struct dm_typecheck *tc)
{
    if (tc->spawned && !tc->exited) {
        if (uv_kill(-tc->proc.pid, SIGKILL) != 0) {
            uv_process_kill(&tc->proc, SIGKILL);
        }
    }
}

static void on_timer(uv_timer_t *t)
{
    struct dm_typecheck *tc = t->data;
    if (!tc->exited) {
        tc->timed_out = 1;
        dm_warn("typecheck", NULL, "tsc timed out after %u ms: killing it", tc->timeout_ms);
        kill_group(tc);
        return;
    }
    finish_child(tc);
}

static void on_exit_cb(uv_process_t *p, int64_t exit_status, int term_signal)
{
    struct dm_typecheck *tc = p->data;
    tc->exited = 1;
    tc->exit_status = exit_status;
    tc->term_signal = term_signal;
    if (tc->out_eof && tc->err_eof) {
        finish_child(tc);
        return;
    }
    uv_timer_start(&tc->timer, on_timer, GRACE_MS, 0);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct dm_typecheck *tc = h->data;
    (void)suggested;
    *buf = uv_buf_init(tc->rbuf, sizeof(tc->rbuf));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct dm_typecheck *tc = s->data;
    int is_out = s == (uv_stream_t *)&tc->out;
    struct dm_buf *b = is_out ? &tc->outb : &tc->errb;

    if (nread > 0) {
        size_t room = tc->output_cap > b->len ? tc->output_cap - b->len : 0;
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
        tc->out_eof = 1;
    } else {
        tc->err_eof = 1;
    }
    close_handle(tc, (uv_handle_t *)s);
    if (tc->exited && tc->out_eof && tc->err_eof) {
        finish_child(tc);
    }
}

static int init_handle(struct dm_typecheck *tc, uv_handle_t *h, int rc)
{
    if (rc == 0) {
        h->data = tc;
        tc->open_handles++;
    }
    return rc;
}

static void run_tsc(struct dm_typecheck *tc)
{
    uv_process_options_t o;
    uv_stdio_container_t stdio[3];
    char as_arg[64], gomem[64];
    char *args[12];
    char *env[3];
    char *path_env = NULL;
    int n = 0;
    int rc;

    tc->step = STEP_RUN;
    dm_buf_init(&tc->outb, tc->output_cap + 1);
    dm_buf_init(&tc->errb, tc->output_cap + 1);
    rc = init_handle(tc, (uv_handle_t *)&tc->timer, uv_timer_init(tc->loop, &tc->timer));
    rc = rc ? rc : init_handle(tc, (uv_handle_t *)&tc->out, uv_pipe_init(tc->loop, &tc->out, 0));
    rc = rc ? rc : init_handle(tc, (uv_handle_t *)&tc->errp, uv_pipe_init(tc->loop, &tc->errp, 0));
    if (rc == 0 && asprintf(&path_env, "PATH=%s",
                            getenv("PATH") ? getenv("PATH") : "/usr/local/bin:/usr/bin:/bin") < 0) {
        path_env = NULL;
        rc = UV_ENOMEM;
    }
    if (rc || !tc->tsc) {
        tc->spawn_err = rc ? rc : UV_ENOENT;
        if (tc->open_handles) {
            finish_child(tc);
        } else {
            child_outcome(tc);
            queue_step(tc, STEP_FINISH);
        }
        free(path_env);
        return;
    }
    snprintf(as_arg, sizeof(as_arg), "--as=%zu", tc->mem_mb << 20);
    snprintf(gomem, sizeof(gomem), "GOMEMLIMIT=%zuMiB", tc->mem_mb / 2 ? tc->mem_mb / 2 : 1);
    if (tc->prlimit) {
        args[n++] = tc->prlimit;
        args[n++] = as_arg;
        args[n++] = "--";
    }
    args[n++] = tc->tsc;
    args[n++] = "-p";
    args[n++] = CONFIG_NAME;
    args[n++] = "--pretty";
    args[n++] = "false";
    args[n] = NULL;
    env[0] = path_env;
    env[1] = gomem;
    env[2] = NULL;

    memset(&o, 0, sizeof(o));
    memset(stdio, 0, sizeof(stdio));
    stdio[0].flags = UV_IGNORE;
    stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[1].data.stream = (uv_stream_t *)&tc->out;
    stdio[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[2].data.stream = (uv_stream_t *)&tc->errp;
    o.file = args[0];
    o.args = args;
    o.env = env;
    o.cwd = tc->work_dir;
    o.exit_cb = on_exit_cb;
    o.stdio = stdio;
    o.stdio_count = 3;
    o.flags = UV_PROCESS_DETACHED;
    rc = uv_spawn(tc->loop, &tc->proc, &o);
    init_handle(tc, (uv_handle_t *)&tc->proc, 0);
    free(path_env);
    if (rc) {
        tc->spawn_err = rc;
        finish_child(tc);
        return;
    }
    tc->spawned = 1;
    uv_timer_start(&tc->timer, on_timer, tc->timeout_ms, 0);
    uv_read_start((uv_stream_t *)&tc->out, on_alloc, on_read);
    uv_read_start((uv_stream_t *)&tc->errp, on_alloc, on_read);
}

static void on_work_done(uv_work_t *req, int status)
{
    struct dm_typecheck *tc = req->data;

    if (status == UV_ECANCELED && !tc->rc) {
        tc->rc = dm_error_set(&tc->err, DM_ERR_CANCELLED, "type-check cancelled");
    }
    if (tc->step == STEP_PREPARE && tc->rc == 0 && !tc->from_baseline) {
        run_tsc(tc);
        return;
    }
    complete(tc);
}

static char *dup_or_null(const char *s, int *failed)
{
    char *c;
    if (!s) {
        return NULL;
    }
    c = strdup(s);
    *failed |= !c;
    return c;
}

int dm_typecheck_start(struct dm_typecheck **out, uv_loop_t *loop,
                       const struct dm_typecheck_opts *opts, const struct dm_typecheck_req *req,
                       struct dm_error *err)
{
    struct dm_typecheck_opts def = DM_TYPECHECK_OPTS_INIT;
    struct dm_typecheck *tc;
    int failed = 0;

    if (out) {
        *out = NULL;
    }
    if (!opts) {
        opts = &def;
    }
    tc = calloc(1, sizeof(*tc));
    if (!tc) {
        return dm_error_set(err, DM_ERR_NOMEM, "out of memory");
    }
    tc->loop = loop;
    tc->work.data = tc;
    atomic_init(&tc->cancel, 0);
    tc->timeout_ms = opts->timeout_ms ? opts->timeout_ms : TIMEOUT_DEFAULT_MS;
    tc->output_cap = opts->output_cap ? opts->output_cap : OUTPUT_CAP_DEFAULT;
    tc->max_file_bytes = opts->max_file_bytes ? opts->max_file_bytes : FILE_BYTES_DEFAULT;
    tc->max_base_files = opts->max_base_files ? opts->max_base_files : BASE_FILES_DEFAULT;
    tc->max_diags = opts->max_diags;
    tc->mem_mb = opts->mem_limit_mb ? opts->mem_limit_mb : MEM_DEFAULT_MB;
    /* Found on the threadpool (prepare): the search stats files. */
    tc->tsc = dup_or_null(opts->tsc && *opts->tsc ? opts->tsc : NULL, &failed);
    tc->base_dir = dup_or_null(req->base_dir, &failed);
    tc->work_dir = dup_or_null(req->work_dir, &failed);
    tc->baseline = dup_or_null(req->baseline, &failed);
    tc->files = calloc(req->nfiles + 1, sizeof(*tc->files));
    failed |= !tc->files || !tc->work_dir;
    for (size_t i = 0; !failed && i < req->nfiles; i++) {
        char *content = malloc(req->files[i].len + 1);
        char *path = strdup(req->files[i].path);
        if (!content || !path) {
            free(content);
            free(path);
            failed = 1;
            break;
        }
        memcpy(content, req->files[i].content, req->files[i].len);
        content[req->files[i].len] = '\0';
        tc->files[i].path = path;
        tc->files[i].content = content;
        tc->files[i].len = req->files[i].len;
        tc->nfiles++;
    }
    tc->on_done = req->on_done;
    tc->arg = req->arg;
    if (failed) {
        typecheck_free(tc);
        return dm_error_set(err, DM_ERR_NOMEM, "out of memory");
    }
    tc->step = STEP_PREPARE;
    if (uv_queue_work(loop, &tc->work, typecheck_on_work, on_work_done) != 0) {
        typecheck_free(tc);
        return dm_error_set(err, DM_ERR_IO, "cannot queue the type-check's work");
    }
    if (out) {
        *out = tc;
    }
    return 0;
}

void dm_typecheck_cancel(struct dm_typecheck *tc)
{
    if (!tc) {
        return;
    }
    atomic_store(&tc->cancel, 1);
    if (tc->step == STEP_RUN) {
        kill_group(tc);
    }
}
