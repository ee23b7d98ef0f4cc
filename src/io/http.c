/*
 * http: libcurl's multi socket interface driven by libuv (see include/dream/io/http.h).
 *
 * Owns one CURLM, one uv_timer for curl's timeouts, one uv_timer ("defer") that delivers
 * completions and cancellations outside of any curl callback, and one uv_poll per curl socket
 * (struct sock_ctx, freed only in its close callback because curl may hand out the same fd
 * number again while the old poll handle is still closing). Completions are queued while curl
 * reports them (curl_multi_info_read is drained after every curl_multi_socket_action, timeouts
 * included) and delivered once curl has returned, so user callbacks never run inside libcurl
 * and may start, cancel or close freely. Shutdown order: remove easy handles, deliver their
 * cancellations, curl_multi_cleanup, close the polls and timers, free in the last close callback.
 *
 * Loop thread only.
 */
#include "dream/io/http.h"
#include "dream/core/log.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define HEADER_CAP (64 * 1024)

struct sock_ctx {
    uv_poll_t poll;
    curl_socket_t fd;
    struct dm_http *h;
    int closing;
    struct sock_ctx *prev, *next;
};

enum call_state {
    CALL_ACTIVE = 0, /* easy handle in the multi */
    CALL_QUEUED = 1, /* finished, completion waiting for delivery */
};

struct dm_http_call {
    struct dm_http *h;
    CURL *easy;
    struct curl_slist *headers;
    struct curl_slist *connect_to;
    dm_http_data_cb on_data;
    dm_http_done_cb on_done;
    void *arg;
    enum call_state state;
    int cancel_requested;
    int abort_rc; /* set when our write/header callback aborted the transfer */
    int rc;
    size_t max_bytes;
    uint64_t started;
    struct dm_http_response resp;
    struct dm_error err;
    char what[320]; /* "POST http://host/path" (no query) for messages */
    char errbuf[CURL_ERROR_SIZE];
    struct dm_http_call *prev, *next; /* active list or completion queue */
};

struct dm_http {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;
    uv_timer_t defer;
    struct sock_ctx *socks;
    struct dm_http_call *active;
    struct dm_http_call *q_head, *q_tail;
    size_t in_flight;
    int handles;    /* uv handles not yet closed */
    int closing;    /* dm_http_close was called */
    int cleaned;    /* the multi handle is gone and handles are closing */
    int delivering; /* inside deliver() */
    dm_http_closed_cb closed_cb;
    void *closed_arg;
    char *user_agent;
    long connect_timeout_ms;
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_OK;

static void global_init(void)
{
    global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void handle_closed(struct dm_http *h)
{
    h->handles--;
    if (h->handles == 0 && h->cleaned) {
        dm_http_closed_cb cb = h->closed_cb;
        void *arg = h->closed_arg;
        free(h->user_agent);
        free(h);
        if (cb) {
            cb(arg);
        }
    }
}

static void on_timer_close(uv_handle_t *handle)
{
    handle_closed(handle->data);
}

static void on_sock_close(uv_handle_t *handle)
{
    struct sock_ctx *s = handle->data;
    struct dm_http *h = s->h;
    if (s->prev) {
        s->prev->next = s->next;
    } else {
        h->socks = s->next;
    }
    if (s->next) {
        s->next->prev = s->prev;
    }
    free(s);
    handle_closed(h);
}

static void sock_close(struct sock_ctx *s)
{
    if (!s->closing) {
        s->closing = 1;
        uv_close((uv_handle_t *)&s->poll, on_sock_close);
    }
}

static void list_remove(struct dm_http_call **head, struct dm_http_call *c)
{
    if (c->prev) {
        c->prev->next = c->next;
    } else {
        *head = c->next;
    }
    if (c->next) {
        c->next->prev = c->prev;
    }
    c->prev = c->next = NULL;
}

static void call_free(struct dm_http_call *c)
{
    if (c->easy) {
        curl_easy_cleanup(c->easy);
    }
    curl_slist_free_all(c->headers);
    curl_slist_free_all(c->connect_to);
    dm_buf_free(&c->resp.body);
    dm_buf_free(&c->resp.headers);
    free(c);
}

static int map_curl(struct dm_http_call *c, CURLcode res)
{
    const char *detail = c->errbuf[0] ? c->errbuf : curl_easy_strerror(res);
    if (c->abort_rc) {
        if (c->abort_rc == DM_ERR_LIMIT) {
            return dm_error_set(&c->err, DM_ERR_LIMIT, "%s: response exceeds %zu bytes", c->what,
                                c->max_bytes);
        }
        return dm_error_set(&c->err, c->abort_rc, "%s: aborted by the data callback (%s)", c->what,
                            dm_err_name(c->abort_rc));
    }
    switch (res) {
    case CURLE_OK:
        return 0;
    case CURLE_OPERATION_TIMEDOUT:
        return dm_error_set(&c->err, DM_ERR_TIMEOUT, "%s: %s", c->what, detail);
    case CURLE_FILESIZE_EXCEEDED:
        return dm_error_set(&c->err, DM_ERR_LIMIT, "%s: response exceeds %zu bytes", c->what,
                            c->max_bytes);
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
        return dm_error_set(&c->err, DM_ERR_INVALID, "%s: %s", c->what, detail);
    case CURLE_OUT_OF_MEMORY:
        return dm_error_set(&c->err, DM_ERR_NOMEM, "%s: out of memory", c->what);
    default:
        return dm_error_set(&c->err, DM_ERR_IO, "%s: %s", c->what, detail);
    }
}

static void enqueue(struct dm_http *h, struct dm_http_call *c)
{
    c->state = CALL_QUEUED;
    c->prev = h->q_tail;
    c->next = NULL;
    if (h->q_tail) {
        h->q_tail->next = c;
    } else {
        h->q_head = c;
    }
    h->q_tail = c;
}

/* Takes an active call out of the multi and queues its completion with rc (0: map res). */
static void finish(struct dm_http *h, struct dm_http_call *c, CURLcode res, int forced_rc)
{
    long status = 0;
    curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &status);
    c->resp.status = status;
    curl_multi_remove_handle(h->multi, c->easy);
    list_remove(&h->active, c);
    if (forced_rc) {
        c->rc = forced_rc;
        if (forced_rc == DM_ERR_CANCELLED) {
            dm_error_set(&c->err, DM_ERR_CANCELLED, "%s: cancelled%s", c->what,
                         h->closing ? " (client closing)" : "");
        }
    } else if (c->cancel_requested) {
        c->rc = dm_error_set(&c->err, DM_ERR_CANCELLED, "%s: cancelled", c->what);
    } else {
        c->rc = map_curl(c, res);
    }
    c->resp.elapsed_ms = (long long)(uv_now(h->loop) - c->started);
    enqueue(h, c);
}

static void finish_close(struct dm_http *h);

/* Fires queued completions. Never called from inside a curl callback. */
static void deliver(struct dm_http *h)
{
    struct dm_http_call *c;
    if (h->delivering || h->cleaned) {
        return;
    }
    h->delivering = 1;
    while ((c = h->q_head) != NULL) {
        h->q_head = c->next;
        if (h->q_head) {
            h->q_head->prev = NULL;
        } else {
            h->q_tail = NULL;
        }
        c->next = c->prev = NULL;
        h->in_flight--;
        c->on_done(c->arg, c->rc, &c->resp, &c->err);
        call_free(c);
    }
    h->delivering = 0;
    if (h->closing && h->active == NULL) {
        finish_close(h);
    }
}

static void check_done(struct dm_http *h)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(h->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE) {
            continue;
        }
        /* msg is invalid after curl_multi_remove_handle: copy first. */
        CURL *easy = msg->easy_handle;
        CURLcode res = msg->data.result;
        struct dm_http_call *c = NULL;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&c);
        if (c) {
            finish(h, c, res, 0);
        }
    }
}

static void on_poll(uv_poll_t *p, int status, int events)
{
    struct sock_ctx *s = p->data;
    struct dm_http *h = s->h;
    int flags = 0;
    int running = 0;
    if (h->cleaned) {
        return;
    }
    if (status < 0) {
        flags = CURL_CSELECT_ERR;
    } else {
        if (events & UV_READABLE) {
            flags |= CURL_CSELECT_IN;
        }
        if (events & UV_WRITABLE) {
            flags |= CURL_CSELECT_OUT;
        }
    }
    curl_multi_socket_action(h->multi, s->fd, flags, &running);
    check_done(h);
    deliver(h);
}

static void on_timeout(uv_timer_t *t)
{
    struct dm_http *h = t->data;
    int running = 0;
    if (h->cleaned) {
        return;
    }
    curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(h);
    deliver(h);
}

static void on_defer(uv_timer_t *t)
{
    struct dm_http *h = t->data;
    struct dm_http_call *c, *next;
    if (h->cleaned) {
        return;
    }
    for (c = h->active; c; c = next) {
        next = c->next;
        if (c->cancel_requested) {
            finish(h, c, CURLE_OK, DM_ERR_CANCELLED);
        }
    }
    deliver(h);
}

/* CURLMOPT_TIMERFUNCTION: only arms our timer (a 0 timeout runs on the next loop turn, never
 * re-entering curl from here). */
static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    struct dm_http *h = userp;
    (void)multi;
    if (h->cleaned) {
        return 0;
    }
    if (timeout_ms < 0) {
        uv_timer_stop(&h->timer);
    } else {
        uv_timer_start(&h->timer, on_timeout, (uint64_t)timeout_ms, 0);
    }
    return 0;
}

/* CURLMOPT_SOCKETFUNCTION */
static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    struct dm_http *h = userp;
    struct sock_ctx *s = socketp;
    int events = 0;
    (void)easy;
    if (what == CURL_POLL_REMOVE) {
        /* curl forgets its assignment itself; the context lives until its close callback. */
        if (s) {
            sock_close(s);
        }
        return 0;
    }
    if (h->cleaned) {
        return -1;
    }
    if (!s) {
        s = calloc(1, sizeof(*s));
        if (!s) {
            return -1;
        }
        s->fd = fd;
        s->h = h;
        if (uv_poll_init_socket(h->loop, &s->poll, fd) != 0) {
            free(s);
            return -1;
        }
        s->poll.data = s;
        h->handles++;
        s->next = h->socks;
        if (h->socks) {
            h->socks->prev = s;
        }
        h->socks = s;
        curl_multi_assign(h->multi, fd, s);
    }
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT) {
        events |= UV_READABLE;
    }
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT) {
        events |= UV_WRITABLE;
    }
    if (uv_poll_start(&s->poll, events, on_poll) != 0) {
        return -1;
    }
    return 0;
}

static int is_2xx(long status)
{
    return status >= 200 && status < 300;
}

static size_t on_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct dm_http_call *c = userdata;
    size_t n = size * nmemb;
    if (c->resp.status == 0) {
        curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &c->resp.status);
    }
    c->resp.body_bytes += n;
    if (c->resp.body_bytes > c->max_bytes) {
        c->abort_rc = DM_ERR_LIMIT;
        return 0;
    }
    if (c->cancel_requested) {
        return 0;
    }
    if (c->on_data && is_2xx(c->resp.status)) {
        int rc = c->on_data(c->arg, c->resp.status, ptr, n);
        if (rc != 0) {
            c->abort_rc = rc < 0 ? rc : DM_ERR_CANCELLED;
            return 0;
        }
        return n;
    }
    if (dm_buf_append(&c->resp.body, ptr, n) != 0) {
        c->abort_rc = DM_ERR_LIMIT;
        return 0;
    }
    return n;
}

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct dm_http_call *c = userdata;
    size_t n = size * nmemb;
    /* A new status line starts a new header block (after 100 Continue or a redirect). */
    if (n >= 5 && strncmp(ptr, "HTTP/", 5) == 0) {
        dm_buf_reset(&c->resp.headers);
        c->resp.status = 0;
    }
    if (dm_buf_append(&c->resp.headers, ptr, n) != 0) {
        c->abort_rc = DM_ERR_LIMIT;
        return 0;
    }
    return n;
}

const char *dm_http_response_header(const struct dm_http_response *resp, const char *name,
                                    char *out, size_t outlen)
{
    const char *p, *end;
    size_t nlen = strlen(name);
    if (!resp || !resp->headers.data || outlen == 0) {
        return NULL;
    }
    p = resp->headers.data;
    end = p + resp->headers.len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *line_end = eol ? eol : end;
        if ((size_t)(line_end - p) > nlen && strncasecmp(p, name, nlen) == 0 && p[nlen] == ':') {
            const char *v = p + nlen + 1;
            const char *ve = line_end;
            size_t vlen;
            while (v < ve && (*v == ' ' || *v == '\t')) {
                v++;
            }
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t')) {
                ve--;
            }
            vlen = (size_t)(ve - v);
            if (vlen >= outlen) {
                vlen = outlen - 1;
            }
            memcpy(out, v, vlen);
            out[vlen] = 0;
            return out;
        }
        p = line_end + 1;
    }
    return NULL;
}

int dm_http_new(struct dm_http **out, uv_loop_t *loop, const struct dm_http_opts *opts,
                struct dm_error *err)
{
    struct dm_http_opts defaults = DM_HTTP_OPTS_INIT;
    struct dm_http *h = NULL;
    int rc = 0;
    *out = NULL;
    if (!opts) {
        opts = &defaults;
    }
    pthread_once(&global_once, global_init);
    if (global_rc != CURLE_OK) {
        return dm_error_set(err, DM_ERR_IO, "curl_global_init: %s", curl_easy_strerror(global_rc));
    }
    h = calloc(1, sizeof(*h));
    if (!h) {
        return dm_error_set(err, DM_ERR_NOMEM, "out of memory");
    }
    h->loop = loop;
    h->connect_timeout_ms = opts->connect_timeout_ms > 0 ? opts->connect_timeout_ms : 10000;
    h->user_agent = strdup(opts->user_agent ? opts->user_agent : "dreamd/" DREAM_VERSION);
    h->multi = curl_multi_init();
    if (!h->user_agent || !h->multi) {
        rc = dm_error_set(err, DM_ERR_NOMEM, "curl_multi_init failed");
        goto out;
    }
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
    curl_multi_setopt(h->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    if (opts->max_total_connections > 0) {
        curl_multi_setopt(h->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, opts->max_total_connections);
    }
    if (opts->max_host_connections > 0) {
        curl_multi_setopt(h->multi, CURLMOPT_MAX_HOST_CONNECTIONS, opts->max_host_connections);
    }
    if (uv_timer_init(loop, &h->timer) != 0 || uv_timer_init(loop, &h->defer) != 0) {
        rc = dm_error_set(err, DM_ERR_IO, "uv_timer_init failed");
        goto out;
    }
    h->timer.data = h;
    h->defer.data = h;
    h->handles = 2;
out:
    if (rc != 0) {
        /* Timers are only initialised in the last step; nothing to close on failure paths. */
        if (h->multi) {
            curl_multi_cleanup(h->multi);
        }
        free(h->user_agent);
        free(h);
        return rc;
    }
    *out = h;
    return 0;
}

/* "METHOD scheme://host/path" without userinfo or query (they may carry secrets). */
static void describe(char *out, size_t outlen, const char *method, const char *url)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL;
    if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK) {
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
        curl_url_get(u, CURLUPART_HOST, &host, 0);
        curl_url_get(u, CURLUPART_PORT, &port, 0);
        curl_url_get(u, CURLUPART_PATH, &path, 0);
        snprintf(out, outlen, "%s %s://%s%s%s%s", method, scheme ? scheme : "?", host ? host : "?",
                 port ? ":" : "", port ? port : "", path ? path : "/");
    } else {
        snprintf(out, outlen, "%s <invalid url>", method);
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_free(path);
    curl_url_cleanup(u);
}

int dm_http_start(struct dm_http *h, const struct dm_http_request *req, struct dm_http_call **out,
                  struct dm_error *err)
{
    struct dm_http_call *c = NULL;
    const char *method = req->method ? req->method : "GET";
    int has_expect = 0;
    int rc = 0;
    CURLMcode mrc;
    if (out) {
        *out = NULL;
    }
    if (h->closing) {
        return dm_error_set(err, DM_ERR_CANCELLED, "http client is closing");
    }
    if (!req->url || !req->on_done) {
        return dm_error_set(err, DM_ERR_INVALID, "http request needs a url and on_done");
    }
    if (strncmp(req->url, "http://", 7) != 0 && strncmp(req->url, "https://", 8) != 0) {
        return dm_error_set(err, DM_ERR_INVALID, "http request url must be http:// or https://");
    }
    c = calloc(1, sizeof(*c));
    if (!c) {
        return dm_error_set(err, DM_ERR_NOMEM, "out of memory");
    }
    c->h = h;
    c->on_data = req->on_data;
    c->on_done = req->on_done;
    c->arg = req->arg;
    c->max_bytes = req->max_response_bytes ? req->max_response_bytes : DM_HTTP_DEFAULT_MAX_RESPONSE;
    dm_buf_init(&c->resp.body, c->max_bytes);
    dm_buf_init(&c->resp.headers, HEADER_CAP);
    describe(c->what, sizeof(c->what), method, req->url);
    c->easy = curl_easy_init();
    if (!c->easy) {
        rc = dm_error_set(err, DM_ERR_NOMEM, "curl_easy_init failed");
        goto out;
    }
    for (const char *const *hp = req->headers; hp && *hp; hp++) {
        struct curl_slist *n;
        if (!strchr(*hp, ':') || strpbrk(*hp, "\r\n")) {
            rc = dm_error_set(err, DM_ERR_INVALID, "%s: malformed request header", c->what);
            goto out;
        }
        if (strncasecmp(*hp, "Expect:", 7) == 0) {
            has_expect = 1;
        }
        n = curl_slist_append(c->headers, *hp);
        if (!n) {
            rc = dm_error_set(err, DM_ERR_NOMEM, "out of memory");
            goto out;
        }
        c->headers = n;
    }
    if (!has_expect) {
        /* No 100-continue round trip for large bodies. */
        struct curl_slist *n = curl_slist_append(c->headers, "Expect:");
        if (!n) {
            rc = dm_error_set(err, DM_ERR_NOMEM, "out of memory");
            goto out;
        }
        c->headers = n;
    }
    for (const char *const *t = req->connect_to; t && *t; t++) {
        struct curl_slist *n = curl_slist_append(c->connect_to, *t);
        if (!n) {
            rc = dm_error_set(err, DM_ERR_NOMEM, "out of memory");
            goto out;
        }
        c->connect_to = n;
    }
    CURL *e = c->easy;
    curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)c);
    if (c->connect_to) {
        curl_easy_setopt(e, CURLOPT_CONNECT_TO, c->connect_to);
    }
    curl_easy_setopt(e, CURLOPT_URL, req->url);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, c->errbuf);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, c);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, c->headers);
    curl_easy_setopt(e, CURLOPT_USERAGENT, h->user_agent);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS,
                     req->timeout_ms > 0 ? req->timeout_ms : DM_HTTP_DEFAULT_TIMEOUT_MS);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, h->connect_timeout_ms);
    if (req->low_speed_limit > 0 && req->low_speed_time_s > 0) {
        curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, req->low_speed_limit);
        curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, req->low_speed_time_s);
    }
    curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)c->max_bytes);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    if (strncmp(req->url, "https://", 8) == 0) {
        /* Prefer waiting for a multiplexed HTTP/2 stream over opening another connection. */
        curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
    }
    if (req->follow_redirects) {
        curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(e, CURLOPT_MAXREDIRS, 5L);
    }
    if (strcmp(method, "GET") == 0 && !req->body) {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    } else if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else {
        if (req->body || strcmp(method, "POST") == 0) {
            curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
            curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, req->body ? (const char *)req->body : "");
        }
        if (strcmp(method, "POST") != 0) {
            curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
        }
    }
    c->started = uv_now(h->loop);
    mrc = curl_multi_add_handle(h->multi, e);
    if (mrc != CURLM_OK) {
        rc = dm_error_set(err, DM_ERR_IO, "%s: curl_multi_add_handle: %s", c->what,
                          curl_multi_strerror(mrc));
        goto out;
    }
    c->next = h->active;
    if (h->active) {
        h->active->prev = c;
    }
    h->active = c;
    h->in_flight++;
    if (out) {
        *out = c;
    }
out:
    if (rc != 0) {
        call_free(c);
    }
    return rc;
}

void dm_http_cancel(struct dm_http_call *call)
{
    if (!call || call->state != CALL_ACTIVE || call->cancel_requested) {
        return;
    }
    /* Deferred: this may be called from inside a curl callback (a data callback). */
    call->cancel_requested = 1;
    uv_timer_start(&call->h->defer, on_defer, 0, 0);
}

size_t dm_http_in_flight(const struct dm_http *h)
{
    return h->in_flight;
}

static void finish_close(struct dm_http *h)
{
    struct sock_ctx *s;
    if (h->cleaned) {
        return;
    }
    /* Connections in curl's cache are closed here; their sockets come back as CURL_POLL_REMOVE. */
    curl_multi_cleanup(h->multi);
    h->multi = NULL;
    h->cleaned = 1;
    for (s = h->socks; s; s = s->next) {
        sock_close(s);
    }
    uv_close((uv_handle_t *)&h->timer, on_timer_close);
    uv_close((uv_handle_t *)&h->defer, on_timer_close);
}

void dm_http_close(struct dm_http *h, dm_http_closed_cb done, void *arg)
{
    struct dm_http_call *c, *next;
    h->closing = 1;
    h->closed_cb = done;
    h->closed_arg = arg;
    for (c = h->active; c; c = next) {
        next = c->next;
        finish(h, c, CURLE_OK, DM_ERR_CANCELLED);
    }
    /* Completions and the rest of the shutdown run from the loop, never inside this call. */
    uv_timer_start(&h->defer, on_defer, 0, 0);
}
