/*
 * callback: signed, retried, per-job ordered POSTs of job events to callback URLs (see
 * include/dream/io/callback.h).
 *
 * Owns the list of jobs with events to deliver; per job a FIFO of events, the one event being
 * delivered, its struct dm_http_call while a request is in flight, and a backoff timer embedded
 * in the job (the job is freed in that timer's close callback). The HTTP client is borrowed.
 * Loop thread only.
 */
#include "dream/io/callback.h"
#include "dream/core/log.h"
#include "dream/domain/sse.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JOB_ID_MAX 512
#define RETRY_AFTER_MAX_MS 60000L

struct event {
    struct event *next;
    char *url;
    char *body;
    size_t len;
    long long seq;
    char sig[80]; /* "sha256=<hex>", empty when unsigned */
};

struct job {
    struct job *prev;
    struct job *next;
    struct dm_callbacks *cb;
    char *id;
    struct event *head; /* waiting, oldest first */
    struct event *tail;
    size_t queued;
    struct event *cur; /* being delivered (in flight or waiting out a backoff) */
    unsigned attempt;  /* attempts made for cur */
    struct dm_http_call *call;
    uv_timer_t timer;
    int released;
};

struct dm_callbacks {
    uv_loop_t *loop;
    struct dm_http *http;
    char *secret;
    size_t secret_len;
    unsigned attempts;
    unsigned backoff_ms;
    long timeout_ms;
    size_t max_queue;
    size_t max_resp;
    struct job *jobs;
    size_t n_jobs;  /* jobs in the list */
    size_t live;    /* jobs not yet freed (in the list or closing) */
    size_t pending; /* events queued or current */
    uv_timer_t anchor;
    int closing;
    dm_callbacks_closed_cb done;
    void *done_arg;
};

/* "scheme://host[:port]/path" of url, for logs (no user info, no query). */
static void url_for_log(const char *url, char *out, size_t outlen)
{
    CURLU *u = curl_url();
    char *scheme = NULL;
    char *host = NULL;
    char *port = NULL;
    char *path = NULL;

    if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK) {
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
        curl_url_get(u, CURLUPART_HOST, &host, 0);
        curl_url_get(u, CURLUPART_PORT, &port, 0);
        curl_url_get(u, CURLUPART_PATH, &path, 0);
        snprintf(out, outlen, "%s://%s%s%s%s", scheme ? scheme : "?", host ? host : "?",
                 port ? ":" : "", port ? port : "", path ? path : "/");
    } else {
        snprintf(out, outlen, "<invalid url>");
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_free(path);
    curl_url_cleanup(u);
}

static void event_free(struct event *e)
{
    if (e) {
        free(e->url);
        free(e->body);
        free(e);
    }
}

static struct job *job_find(struct dm_callbacks *cb, const char *id)
{
    for (struct job *j = cb->jobs; j; j = j->next) {
        if (!strcmp(j->id, id)) {
            return j;
        }
    }
    return NULL;
}

static void finish_close(struct dm_callbacks *cb);

static void on_job_closed(uv_handle_t *h)
{
    struct job *j = h->data;
    struct dm_callbacks *cb = j->cb;

    free(j->id);
    free(j);
    cb->live--;
    if (cb->closing && cb->live == 0) {
        finish_close(cb);
    }
}

/* Frees the job once nothing of it is left to deliver. */
static void job_release_if_idle(struct job *j)
{
    struct dm_callbacks *cb = j->cb;

    if (j->released || j->cur || j->head || j->call) {
        return;
    }
    j->released = 1;
    if (j->prev) {
        j->prev->next = j->next;
    } else {
        cb->jobs = j->next;
    }
    if (j->next) {
        j->next->prev = j->prev;
    }
    cb->n_jobs--;
    uv_close((uv_handle_t *)&j->timer, on_job_closed);
}

/* Forgets the current event (delivered, given up, or dropped). */
static void drop_current(struct job *j)
{
    event_free(j->cur);
    j->cur = NULL;
    j->attempt = 0;
    j->cb->pending--;
}

static void on_http_done(void *arg, int rc, struct dm_http_response *resp,
                         const struct dm_error *err);
static void pump(struct job *j);

/* Starts one attempt for j->cur. Returns 0 or the error of dm_http_start (err filled). */
static int send_attempt(struct job *j, struct dm_error *err)
{
    struct dm_callbacks *cb = j->cb;
    struct dm_http_request req;
    const char *headers[8];
    char *auth = NULL;
    char sig[128];
    char seq[48];
    char jobh[JOB_ID_MAX + 32];
    char attempt[48];
    int n = 0;
    int rc;

    j->attempt++;
    headers[n++] = "Content-Type: application/json";
    if (cb->secret) {
        if (asprintf(&auth, "Authorization: Bearer %s", cb->secret) < 0) {
            return dm_error_set(err, DM_ERR_NOMEM, "out of memory");
        }
        headers[n++] = auth;
        snprintf(sig, sizeof(sig), "X-Dream-Signature: %s", j->cur->sig);
        headers[n++] = sig;
    }
    snprintf(seq, sizeof(seq), "X-Dream-Event-Seq: %lld", j->cur->seq);
    headers[n++] = seq;
    snprintf(jobh, sizeof(jobh), "X-Dream-Job-Id: %s", j->id);
    headers[n++] = jobh;
    snprintf(attempt, sizeof(attempt), "X-Dream-Attempt: %u", j->attempt);
    headers[n++] = attempt;
    headers[n] = NULL;

    memset(&req, 0, sizeof(req));
    req.method = "POST";
    req.url = j->cur->url;
    req.headers = headers;
    req.body = j->cur->body;
    req.body_len = j->cur->len;
    req.timeout_ms = cb->timeout_ms;
    req.max_response_bytes = cb->max_resp;
    req.on_done = on_http_done;
    req.arg = j;
    rc = dm_http_start(cb->http, &req, &j->call, err);
    if (auth) {
        OPENSSL_cleanse(auth, strlen(auth));
        free(auth);
    }
    return rc;
}

static void on_backoff(uv_timer_t *t);

/* The attempt failed: waits and tries again, or gives up and goes on with the next event. */
static void attempt_failed(struct job *j, int retryable, long retry_after_ms, const char *why)
{
    struct dm_callbacks *cb = j->cb;
    char where[512];

    url_for_log(j->cur->url, where, sizeof(where));
    if (retryable && j->attempt < cb->attempts && !cb->closing) {
        long delay = (long)cb->backoff_ms << (j->attempt - 1 < 16 ? j->attempt - 1 : 16);
        if (retry_after_ms > delay) {
            delay = retry_after_ms;
        }
        dm_warn("callback", j->id,
                "callback seq %lld to %s: attempt %u/%u failed (%s); retrying in %ld ms",
                j->cur->seq, where, j->attempt, cb->attempts, why, delay);
        uv_timer_start(&j->timer, on_backoff, (uint64_t)delay, 0);
        return;
    }
    dm_warn("callback", j->id,
            "callback seq %lld to %s: attempt %u/%u failed (%s); giving up on this event",
            j->cur->seq, where, j->attempt, cb->attempts, why);
    drop_current(j);
    pump(j);
}

static void try_send(struct job *j)
{
    struct dm_error err;

    dm_error_clear(&err);
    if (send_attempt(j, &err) == 0) {
        return;
    }
    /* Could not even start: INVALID/CANCELLED will not get better, anything else might. */
    attempt_failed(j, err.code != DM_ERR_INVALID && err.code != DM_ERR_CANCELLED, 0, err.msg);
}

/* Starts the next event of j when none is being delivered; frees j when all is done. */
static void pump(struct job *j)
{
    if (!j->cur && j->head && !j->cb->closing) {
        j->cur = j->head;
        j->head = j->cur->next;
        if (!j->head) {
            j->tail = NULL;
        }
        j->cur->next = NULL;
        j->queued--;
        j->attempt = 0;
        try_send(j);
        return;
    }
    job_release_if_idle(j);
}

static void on_backoff(uv_timer_t *t)
{
    struct job *j = t->data;
    if (j->cur) {
        try_send(j);
    }
}

/* The Retry-After of a 429/503 in ms (seconds or an HTTP date), capped; 0 when absent or
 * unusable. */
static long retry_after(struct dm_http_response *resp)
{
    char v[64];
    long long ms;

    if (!dm_http_response_header(resp, "retry-after", v, sizeof(v)) ||
        dm_sse_retry_after_ms(v, dm_time_now_ms(), &ms) != 0 || ms <= 0) {
        return 0;
    }
    return ms > RETRY_AFTER_MAX_MS ? RETRY_AFTER_MAX_MS : (long)ms;
}

static void on_http_done(void *arg, int rc, struct dm_http_response *resp,
                         const struct dm_error *err)
{
    struct job *j = arg;
    struct dm_callbacks *cb = j->cb;
    char why[DM_ERROR_MSG_MAX + 32];

    j->call = NULL;
    if (cb->closing || rc == DM_ERR_CANCELLED) {
        drop_current(j);
        pump(j);
        return;
    }
    if (rc == 0 && resp->status >= 200 && resp->status < 300) {
        dm_debug("callback", j->id, "callback seq %lld delivered (HTTP %ld, attempt %u)",
                 j->cur->seq, resp->status, j->attempt);
        drop_current(j);
        pump(j);
        return;
    }
    if (rc != 0) {
        snprintf(why, sizeof(why), "%s", err->msg[0] ? err->msg : dm_err_name(rc));
        attempt_failed(j, 1, 0, why);
        return;
    }
    snprintf(why, sizeof(why), "HTTP %ld", resp->status);
    attempt_failed(
        j, resp->status == 408 || resp->status == 429 || resp->status >= 500 || resp->status < 200,
        resp->status == 429 || resp->status == 503 ? retry_after(resp) : 0, why);
}

int dm_callbacks_new(struct dm_callbacks **out, uv_loop_t *loop, struct dm_http *http,
                     const struct dm_callback_opts *opts, struct dm_error *err)
{
    struct dm_callback_opts def = DM_CALLBACK_OPTS_INIT;
    struct dm_callbacks *cb = NULL;
    int rc = 0;

    *out = NULL;
    if (!opts) {
        opts = &def;
    }
    cb = calloc(1, sizeof(*cb));
    if (!cb) {
        rc = dm_error_set(err, DM_ERR_NOMEM, "out of memory");
        goto out;
    }
    cb->loop = loop;
    cb->http = http;
    cb->attempts = opts->attempts ? opts->attempts : 3;
    cb->backoff_ms = opts->backoff_ms ? opts->backoff_ms : 1000;
    cb->timeout_ms = opts->timeout_ms > 0 ? opts->timeout_ms : 10000;
    cb->max_queue = opts->max_queue_per_job ? opts->max_queue_per_job : 256;
    cb->max_resp = opts->max_response_bytes ? opts->max_response_bytes : 65536;
    if (opts->secret && *opts->secret) {
        cb->secret = strdup(opts->secret);
        if (!cb->secret) {
            rc = dm_error_set(err, DM_ERR_NOMEM, "out of memory");
            goto out;
        }
        cb->secret_len = strlen(cb->secret);
    } else {
        dm_warn("callback", NULL,
                "no callback secret configured: callbacks are sent without Authorization and "
                "signature");
    }
    if (uv_timer_init(loop, &cb->anchor) != 0) {
        rc = dm_error_set(err, DM_ERR_IO, "callback: cannot make a timer");
        goto out;
    }
    cb->anchor.data = cb;
    *out = cb;
    cb = NULL;
out:
    if (cb) {
        free(cb->secret);
        free(cb);
    }
    return rc;
}

/* Reads jobId and seq from the event. */
static int parse_event(const char *json, size_t len, char *id, size_t idlen, long long *seq,
                       struct dm_error *err)
{
    cJSON *root = cJSON_ParseWithLength(json, len);
    const cJSON *jid;
    const cJSON *jseq;
    int rc = 0;

    if (!cJSON_IsObject(root)) {
        rc = dm_error_set(err, DM_ERR_INVALID, "callback event is not a JSON object");
        goto out;
    }
    jid = cJSON_GetObjectItemCaseSensitive(root, "jobId");
    jseq = cJSON_GetObjectItemCaseSensitive(root, "seq");
    if (!cJSON_IsString(jid) || !jid->valuestring[0] || strlen(jid->valuestring) >= idlen) {
        rc = dm_error_set(err, DM_ERR_INVALID, "callback event has no usable jobId");
        goto out;
    }
    if (!cJSON_IsNumber(jseq) || jseq->valuedouble < 0 || jseq->valuedouble > 9e15) {
        rc = dm_error_set(err, DM_ERR_INVALID, "callback event has no usable seq");
        goto out;
    }
    if (strpbrk(jid->valuestring, "\r\n")) {
        rc = dm_error_set(err, DM_ERR_INVALID, "callback event jobId has a line break");
        goto out;
    }
    strcpy(id, jid->valuestring);
    *seq = (long long)jseq->valuedouble;
out:
    cJSON_Delete(root);
    return rc;
}

int dm_callback_post(struct dm_callbacks *cb, const char *url, const char *event_json, size_t len,
                     struct dm_error *err)
{
    char id[JOB_ID_MAX];
    struct event *e = NULL;
    struct job *j;
    long long seq = 0;
    int rc;

    if (cb->closing) {
        return dm_error_set(err, DM_ERR_CANCELLED, "callbacks are closing");
    }
    if (!url || (strncmp(url, "https://", 8) && strncmp(url, "http://", 7))) {
        return dm_error_set(err, DM_ERR_INVALID, "callback URL must be http:// or https://");
    }
    rc = parse_event(event_json, len, id, sizeof(id), &seq, err);
    if (rc) {
        return rc;
    }
    e = calloc(1, sizeof(*e));
    if (!e || !(e->url = strdup(url)) || !(e->body = malloc(len ? len : 1))) {
        event_free(e);
        return dm_error_set(err, DM_ERR_NOMEM, "out of memory");
    }
    memcpy(e->body, event_json, len);
    e->len = len;
    e->seq = seq;
    if (cb->secret &&
        !dm_callback_sign(e->sig, sizeof(e->sig), cb->secret, cb->secret_len, e->body, e->len)) {
        event_free(e);
        return dm_error_set(err, DM_ERR_NOMEM, "callback: HMAC failed");
    }
    j = job_find(cb, id);
    if (!j) {
        j = calloc(1, sizeof(*j));
        if (!j || !(j->id = strdup(id)) || uv_timer_init(cb->loop, &j->timer) != 0) {
            if (j) {
                free(j->id);
            }
            free(j);
            event_free(e);
            return dm_error_set(err, DM_ERR_NOMEM, "out of memory");
        }
        j->cb = cb;
        j->timer.data = j;
        j->next = cb->jobs;
        if (cb->jobs) {
            cb->jobs->prev = j;
        }
        cb->jobs = j;
        cb->n_jobs++;
        cb->live++;
    }
    if (j->queued >= cb->max_queue) {
        struct event *old = j->head;
        j->head = old->next;
        if (!j->head) {
            j->tail = NULL;
        }
        j->queued--;
        cb->pending--;
        dm_warn("callback", j->id, "callback queue full (%zu): dropping event seq %lld",
                cb->max_queue, old->seq);
        event_free(old);
    }
    if (j->tail) {
        j->tail->next = e;
    } else {
        j->head = e;
    }
    j->tail = e;
    j->queued++;
    cb->pending++;
    pump(j);
    return 0;
}

size_t dm_callbacks_pending(const struct dm_callbacks *cb)
{
    return cb->pending;
}

size_t dm_callbacks_jobs(const struct dm_callbacks *cb)
{
    return cb->n_jobs;
}

static void on_anchor_closed(uv_handle_t *h)
{
    struct dm_callbacks *cb = h->data;
    dm_callbacks_closed_cb done = cb->done;
    void *arg = cb->done_arg;

    if (cb->secret) {
        OPENSSL_cleanse(cb->secret, cb->secret_len);
        free(cb->secret);
    }
    free(cb);
    if (done) {
        done(arg);
    }
}

static void finish_close(struct dm_callbacks *cb)
{
    if (!uv_is_closing((uv_handle_t *)&cb->anchor)) {
        uv_close((uv_handle_t *)&cb->anchor, on_anchor_closed);
    }
}

void dm_callbacks_close(struct dm_callbacks *cb, dm_callbacks_closed_cb done, void *arg)
{
    struct job *j;
    struct job *next;

    if (!cb) {
        return;
    }
    cb->closing = 1;
    cb->done = done;
    cb->done_arg = arg;
    for (j = cb->jobs; j; j = next) {
        next = j->next;
        if (j->queued) {
            dm_warn("callback", j->id, "shutting down: %zu callback events not delivered",
                    j->queued + (j->cur ? 1 : 0));
        }
        while (j->head) {
            struct event *e = j->head;
            j->head = e->next;
            event_free(e);
            cb->pending--;
        }
        j->tail = NULL;
        j->queued = 0;
        if (j->call) {
            dm_http_cancel(j->call); /* its completion drops cur and releases the job */
            continue;
        }
        uv_timer_stop(&j->timer);
        if (j->cur) {
            drop_current(j);
        }
        job_release_if_idle(j);
    }
    if (cb->live == 0) {
        finish_close(cb);
    }
}
