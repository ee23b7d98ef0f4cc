/*
 * models: the model price list read and cached (see include/dream/io/models.h). Owns a timer
 * (the next read), at most one HTTP read, at most one parse of a list read and at most one
 * cache write on the threadpool. Loop thread only, except parse_list and write_cache (pool),
 * which only touch their own struct list_parse and struct cache_write.
 */
#include "dream/io/models.h"
#include "dream/core/log.h"
#include "dream/core/secret.h"
#include "dream/io/fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CACHE_MAX ((size_t)16 << 20)
#define RETRY_MAX_MS 300000LL

struct cache_write {
    uv_work_t work;
    struct dm_models *m;
    char *path;
    char *data;
    int rc;
    int errnum;
};

struct dm_models {
    struct dm_http *http;
    uv_loop_t *loop;
    struct dm_price_table *prices;
    char *url;
    char *shown;       /* url for logs: no userinfo, query or fragment (they may hold a key) */
    char *auth_header; /* secret */
    char *cache_path;
    char *override_json;
    size_t override_len;
    long long refresh_ms;
    long timeout_ms;
    uv_timer_t timer;
    struct dm_http_call *call;
    struct cache_write *writing;
    int settled;
    size_t count;
    int closing;
    int pending; /* the timer's close, a list parse, a cache write */
    void (*done)(void *arg);
    void *done_arg;
};

static void maybe_closed(struct dm_models *m)
{
    if (!m->closing || m->pending > 0 || m->call) {
        return;
    }
    if (m->done) {
        m->done(m->done_arg);
    }
    free(m->url);
    free(m->shown);
    dm_secret_free(m->auth_header);
    free(m->cache_path);
    free(m->override_json);
    free(m);
}

/* url for a log line: scheme://host[:port]/path, without the userinfo (user:password@), query
 * and fragment, where proxies take keys (as the HTTP client's own messages do). */
static char *shown_url(const char *url)
{
    const char *h = strstr(url, "://");
    const char *auth = h ? h + 3 : url;
    const char *end = auth + strcspn(auth, "/?#");
    const char *at = memchr(auth, '@', (size_t)(end - auth));
    const char *rest = end + strcspn(end, "?#");
    char *out;
    if (at) {
        auth = at + 1;
    }
    if (asprintf(&out, "%.*s%.*s%.*s", (int)(h ? h + 3 - url : 0), url, (int)(end - auth), auth,
                 (int)(rest - end), end) < 0) {
        return NULL;
    }
    return out;
}

/* The price file over the list: it always wins. */
static void reapply_override(struct dm_models *m)
{
    struct dm_error err;
    if (m->override_json &&
        dm_price_table_load_json(m->prices, m->override_json, m->override_len, &err) != 0) {
        dm_warn("prices", NULL, "price file not re-applied: %s", err.msg);
    }
}

/* ---- the cache ---- */

static void write_cache(uv_work_t *w)
{
    struct cache_write *cw = w->data;
    size_t plen = strlen(cw->path);
    char *tmp = malloc(plen + 32);
    size_t len = strlen(cw->data), off = 0;
    int fd;
    cw->rc = -1;
    if (!tmp) {
        cw->errnum = ENOMEM;
        return;
    }
    /* A fresh, unpredictable name created here (O_EXCL): never a file or link already there,
     * nor one another replica sharing the data dir is writing. */
    snprintf(tmp, plen + 32, "%s.tmp.XXXXXX", cw->path);
    if (dm_fs_mkdir_parent(cw->path) != 0) {
        cw->errnum = errno;
        free(tmp);
        return;
    }
    fd = mkostemp(tmp, O_CLOEXEC);
    if (fd >= 0 && fchmod(fd, 0644) != 0) {
        cw->errnum = errno;
        close(fd);
        unlink(tmp);
        free(tmp);
        return;
    }
    if (fd < 0) {
        cw->errnum = errno;
        free(tmp);
        return;
    }
    while (off < len) {
        ssize_t n = write(fd, cw->data + off, len - off);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        off += (size_t)n;
    }
    if (off == len && fsync(fd) == 0 && close(fd) == 0) {
        fd = -1;
        if (rename(tmp, cw->path) == 0) {
            cw->rc = 0;
        }
    }
    cw->errnum = errno;
    if (fd >= 0) {
        close(fd);
    }
    if (cw->rc != 0) {
        unlink(tmp);
    }
    free(tmp);
}

static void cache_written(uv_work_t *w, int status)
{
    struct cache_write *cw = w->data;
    struct dm_models *m = cw->m;
    if (status != 0 || cw->rc != 0) {
        dm_warn("prices", NULL, "price list cache %s not written: %s", cw->path,
                status != 0 ? "cancelled" : strerror(cw->errnum));
    }
    m->writing = NULL;
    m->pending--;
    free(cw->path);
    free(cw->data);
    free(cw);
    maybe_closed(m);
}

/* Writes the compact list to the cache on the pool (at most one write at a time: a newer list
 * while one is being written is simply not cached until the next read). */
static void save_cache(struct dm_models *m, char *compact)
{
    struct cache_write *cw;
    if (!m->cache_path || m->writing || m->closing) {
        free(compact);
        return;
    }
    cw = calloc(1, sizeof(*cw));
    if (!cw || !(cw->path = strdup(m->cache_path))) {
        free(cw);
        free(compact);
        return;
    }
    cw->m = m;
    cw->data = compact;
    cw->work.data = cw;
    if (uv_queue_work(m->loop, &cw->work, write_cache, cache_written) != 0) {
        free(cw->path);
        free(cw->data);
        free(cw);
        return;
    }
    m->writing = cw;
    m->pending++;
}

static void load_cache(struct dm_models *m)
{
    struct dm_error err = {0};
    size_t len = 0, n = 0;
    char *data;
    if (!m->cache_path) {
        return;
    }
    data = dm_fs_read(m->cache_path, CACHE_MAX, &len);
    if (!data) {
        if (errno != ENOENT) {
            dm_warn("prices", NULL, "price list cache %s not read: %s", m->cache_path,
                    strerror(errno));
        }
        return;
    }
    if (dm_price_table_load_models(m->prices, data, len, &n, &err) != 0) {
        dm_warn("prices", NULL, "price list cache %s not used: %s", m->cache_path, err.msg);
    } else {
        m->count = n;
        dm_info("prices", NULL, "prices of %zu models loaded from the cache %s", n, m->cache_path);
    }
    free(data);
}

/* ---- reading the list ---- */

static void on_timer(uv_timer_t *t);

static void schedule(struct dm_models *m, long long ms)
{
    if (!m->closing && ms > 0) {
        uv_timer_start(&m->timer, on_timer, (uint64_t)ms, 0);
    }
}

/* The list as read: parsed and compacted on the pool (a list may be megabytes of JSON). */
struct list_parse {
    uv_work_t work;
    struct dm_models *m;
    char *body;
    size_t len;
    char *compact; /* out */
    size_t n;
    int rc;
    struct dm_error err;
};

static void parse_list(uv_work_t *w)
{
    struct list_parse *lp = w->data;
    lp->rc =
        dm_price_models_compact(lp->body ? lp->body : "", lp->len, &lp->compact, &lp->n, &lp->err);
    free(lp->body);
    lp->body = NULL;
}

/* Settles a read: ok = the list was used (or there is none to use); schedules the next. */
static void read_settled(struct dm_models *m, int ok)
{
    m->settled = 1;
    schedule(m, ok ? m->refresh_ms : (m->refresh_ms < RETRY_MAX_MS ? m->refresh_ms : RETRY_MAX_MS));
}

static void list_parsed(uv_work_t *w, int status)
{
    struct list_parse *lp = w->data;
    struct dm_models *m = lp->m;
    struct dm_error err = {0};
    char *compact = lp->compact;
    size_t n = 0;
    int ok = 0;

    m->pending--;
    if (m->closing || status != 0) {
        free(compact);
    } else if (lp->rc != 0 ||
               dm_price_table_load_models(m->prices, compact, strlen(compact), &n, &err) != 0) {
        dm_warn("prices", NULL, "price list GET %s not used: %s", m->shown,
                lp->rc != 0 ? lp->err.msg : err.msg);
        free(compact);
    } else if (n == 0) {
        /* A server whose list carries no prices (OpenAI, vLLM...): nothing to learn or cache. */
        ok = 1;
        free(compact);
        dm_info("prices", NULL, "GET %s lists no prices; the price table and file apply", m->shown);
    } else {
        ok = 1;
        m->count = n;
        reapply_override(m);
        dm_info("prices", NULL, "prices of %zu models read from GET %s", n, m->shown);
        save_cache(m, compact);
    }
    free(lp->body);
    free(lp);
    if (m->closing) {
        maybe_closed(m);
        return;
    }
    read_settled(m, ok);
}

static void on_read(void *arg, int rc, struct dm_http_response *resp, const struct dm_error *herr)
{
    struct dm_models *m = arg;
    struct list_parse *lp;
    int ok = 0;
    m->call = NULL;
    if (m->closing) {
        maybe_closed(m);
        return;
    }
    if (rc != 0) {
        dm_warn("prices", NULL, "price list GET %s failed: %s", m->shown, herr->msg);
    } else if (resp->status == 404) {
        ok = 1; /* a server without a model list: asking sooner would not help */
        dm_info("prices", NULL, "GET %s: no model list (HTTP 404); the price table and file apply",
                m->shown);
    } else if (resp->status != 200) {
        dm_warn("prices", NULL, "price list GET %s failed: HTTP %ld", m->shown, resp->status);
    } else if ((lp = calloc(1, sizeof(*lp))) == NULL) {
        dm_warn("prices", NULL, "price list GET %s not used: out of memory", m->shown);
    } else {
        lp->m = m;
        lp->len = resp->body.len;
        lp->body = dm_buf_detach(&resp->body);
        lp->len = lp->body ? lp->len : 0;
        lp->work.data = lp;
        if (uv_queue_work(m->loop, &lp->work, parse_list, list_parsed) == 0) {
            m->pending++;
            return; /* settled by list_parsed */
        }
        dm_warn("prices", NULL, "price list GET %s not used: the threadpool refused it", m->shown);
        free(lp->body);
        free(lp);
    }
    read_settled(m, ok);
}

static void on_timer(uv_timer_t *t)
{
    struct dm_models *m = t->data;
    struct dm_http_request q;
    struct dm_error err;
    const char *headers[3];
    int n = 0;
    if (m->closing || m->call) {
        return;
    }
    if (m->auth_header) {
        headers[n++] = m->auth_header;
    }
    headers[n++] = "Accept: application/json";
    headers[n] = NULL;
    memset(&q, 0, sizeof(q));
    q.method = "GET";
    q.url = m->url;
    q.headers = headers;
    q.timeout_ms = m->timeout_ms;
    q.max_response_bytes = CACHE_MAX;
    q.on_done = on_read;
    q.arg = m;
    if (dm_http_start(m->http, &q, &m->call, &err) != 0) {
        dm_warn("prices", NULL, "price list GET %s not started: %s", m->shown, err.msg);
        m->call = NULL;
        m->settled = 1;
        schedule(m, m->refresh_ms < RETRY_MAX_MS ? m->refresh_ms : RETRY_MAX_MS);
    }
}

int dm_models_new(struct dm_models **out, struct dm_http *http, uv_loop_t *loop,
                  struct dm_price_table *prices, const struct dm_models_opts *o,
                  struct dm_error *err)
{
    struct dm_models *m;
    size_t blen;
    *out = NULL;
    if (!o || !o->base_url || !*o->base_url) {
        return dm_error_set(err, DM_ERR_INVALID, "price list: no base URL");
    }
    m = calloc(1, sizeof(*m));
    if (!m) {
        return dm_error_set(err, DM_ERR_NOMEM, "out of memory");
    }
    m->http = http;
    m->loop = loop;
    m->prices = prices;
    m->refresh_ms = o->refresh_s > 0 ? (long long)o->refresh_s * 1000 : 0;
    m->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 30000;
    blen = strlen(o->base_url);
    while (blen > 0 && o->base_url[blen - 1] == '/') {
        blen--;
    }
    m->url = malloc(blen + sizeof("/models"));
    if (m->url) {
        memcpy(m->url, o->base_url, blen);
        memcpy(m->url + blen, "/models", sizeof("/models"));
        m->shown = shown_url(m->url);
    }
    if (o->api_key && *o->api_key) {
        size_t n = strlen(o->api_key) + sizeof("Authorization: Bearer ");
        m->auth_header = malloc(n);
        if (m->auth_header) {
            snprintf(m->auth_header, n, "Authorization: Bearer %s", o->api_key);
        }
    }
    m->cache_path = o->cache_path ? strdup(o->cache_path) : NULL;
    if (o->override_json) {
        m->override_json = malloc(o->override_len + 1);
        if (m->override_json) {
            memcpy(m->override_json, o->override_json, o->override_len);
            m->override_json[o->override_len] = 0;
            m->override_len = o->override_len;
        }
    }
    if (!m->url || !m->shown || (o->api_key && *o->api_key && !m->auth_header) ||
        (o->cache_path && !m->cache_path) || (o->override_json && !m->override_json) ||
        uv_timer_init(loop, &m->timer) != 0) {
        free(m->url);
        free(m->shown);
        dm_secret_free(m->auth_header);
        free(m->cache_path);
        free(m->override_json);
        free(m);
        return dm_error_set(err, DM_ERR_NOMEM, "out of memory");
    }
    m->timer.data = m;
    m->pending = 1; /* the timer */
    load_cache(m);
    reapply_override(m);
    if (m->refresh_ms > 0) {
        uv_timer_start(&m->timer, on_timer, 0, 0);
    } else {
        m->settled = 1;
    }
    *out = m;
    return 0;
}

int dm_models_settled(const struct dm_models *m)
{
    return m->settled;
}

size_t dm_models_count(const struct dm_models *m)
{
    return m->count;
}

static void on_timer_closed(uv_handle_t *h)
{
    struct dm_models *m = h->data;
    m->pending--;
    maybe_closed(m);
}

void dm_models_close(struct dm_models *m, void (*done)(void *arg), void *arg)
{
    if (!m) {
        if (done) {
            done(arg);
        }
        return;
    }
    m->closing = 1;
    m->done = done;
    m->done_arg = arg;
    if (m->call) {
        dm_http_cancel(m->call);
    }
    uv_timer_stop(&m->timer);
    uv_close((uv_handle_t *)&m->timer, on_timer_closed);
}
