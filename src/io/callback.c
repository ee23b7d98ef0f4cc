/*
 * callback: signed, retried, per-job ordered POSTs of job events to callback URLs, checked
 * against SSRF and capped replica-wide (see include/dream/io/callback.h).
 *
 * Owns the list of jobs with events to deliver; per job a FIFO of events, the one event being
 * delivered, its struct dm_http_call while a request is in flight, its uv_getaddrinfo_t while
 * its host is being resolved, and a backoff timer embedded in the job (the job is freed in that
 * timer's close callback). Jobs waiting for a delivery slot are chained in a FIFO. The HTTP
 * client is borrowed. This file holds the queues, the backlog, delivery and retries; the
 * destination check and resolution are in callback_dest.c (shared through callback_private.h).
 * Loop thread only.
 */
#include "dream/io/callback.h"
#include "dream/core/log.h"
#include "callback_private.h"
#include "dream/domain/metrics_registry.h"
#include "dream/domain/netaddr.h"
#include "dream/domain/sse.h"

#include <cjson/cJSON.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

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

    if (j->released || j->cur || j->head || j->call || j->resolving) {
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

static void count_dropped(struct dm_callbacks *cb)
{
    cb->dropped++;
    dm_metrics_callback_dropped(cb->metrics, 1);
}

void callback_unwait(struct job *j)
{
    struct dm_callbacks *cb = j->cb;
    struct job *prev = NULL;

    if (!j->waiting_slot) {
        return;
    }
    for (struct job *w = cb->wait_head; w; prev = w, w = w->wait_next) {
        if (w == j) {
            if (prev) {
                prev->wait_next = w->wait_next;
            } else {
                cb->wait_head = w->wait_next;
            }
            if (cb->wait_tail == w) {
                cb->wait_tail = prev;
            }
            break;
        }
    }
    j->wait_next = NULL;
    j->waiting_slot = 0;
}

void callback_release_slot(struct job *j)
{
    if (j->has_slot) {
        j->has_slot = 0;
        j->cb->active--;
    }
}

/* Forgets the current event (delivered, given up, or dropped) and gives back its slot. */
void callback_drop_current(struct job *j)
{
    event_free(j->cur);
    j->cur = NULL;
    j->attempt = 0;
    j->cb->pending--;
    callback_release_slot(j);
}

static void on_http_done(void *arg, int rc, struct dm_http_response *resp,
                         const struct dm_error *err);

/* Starts one attempt for j->cur, to the checked address pin (NULL: as the URL says, for
 * allow-listed hosts and literal public addresses). Returns 0 or the error of dm_http_start
 * (err filled). */
static int send_attempt(struct job *j, const struct dm_netaddr *pin, struct dm_error *err)
{
    struct dm_callbacks *cb = j->cb;
    struct dm_http_request req;
    const char *headers[8];
    char sig[DM_CALLBACK_SIG_LEN + 32];
    char seq[48];
    char jobh[JOB_ID_MAX + 32];
    char attempt[48];
    char pinline[2 * HOST_MAX];
    char lit[INET6_ADDRSTRLEN];
    const char *pins[2] = {NULL, NULL};
    int n = 0;
    int rc;

    j->attempt++;
    headers[n++] = "Content-Type: application/json";
    if (cb->secret) {
        int k = snprintf(sig, sizeof(sig), "X-Dream-Signature: ");
        if (!dm_callback_sign(sig + k, sizeof(sig) - (size_t)k, cb->secret, cb->secret_len,
                              (long long)time(NULL), j->cur->body, j->cur->len)) {
            return dm_error_set(err, DM_ERR_NOMEM, "callback: HMAC failed");
        }
        headers[n++] = sig;
    }
    snprintf(seq, sizeof(seq), "X-Dream-Event-Seq: %lld", j->cur->seq);
    headers[n++] = seq;
    snprintf(jobh, sizeof(jobh), "X-Dream-Job-Id: %s", j->id);
    headers[n++] = jobh;
    snprintf(attempt, sizeof(attempt), "X-Dream-Attempt: %u", j->attempt);
    headers[n++] = attempt;

    memset(&req, 0, sizeof(req));
    req.url = j->cur->url;
    if (pin) {
        char host[HOST_MAX];
        long port = 0;
        if (callback_url_parts(j->cur->url, host, sizeof(host), &port)) {
            return dm_error_set(err, DM_ERR_INVALID, "callback URL is not usable");
        }
        /* Connect to the checked address; TLS is still verified against the URL's host. */
        snprintf(pinline, sizeof(pinline), pin->family == 6 ? "%s:%ld:[%s]:%ld" : "%s:%ld:%s:%ld",
                 host, port, dm_netaddr_format(pin, lit, sizeof(lit)), port);
        pins[0] = pinline;
        req.connect_to = pins;
    }
    headers[n] = NULL;

    req.method = "POST";
    req.headers = headers;
    req.body = j->cur->body;
    req.body_len = j->cur->len;
    req.timeout_ms = cb->timeout_ms;
    req.max_response_bytes = cb->max_resp;
    req.follow_redirects = 0; /* a 3xx is a failed delivery, never a new destination */
    req.on_done = on_http_done;
    req.arg = j;
    rc = dm_http_start(cb->http, &req, &j->call, err);
    OPENSSL_cleanse(sig, sizeof(sig));
    return rc;
}

static void on_backoff(uv_timer_t *t);

/* Gives up on cur: logs why and forgets it. The caller goes on with the next event. */
void callback_give_up(struct job *j, const char *why)
{
    char where[512];

    callback_url_for_log(j->cur->url, where, sizeof(where));
    dm_warn("callback", j->id,
            "callback seq %lld to %s: attempt %u/%u failed (%s); giving up on this event",
            j->cur->seq, where, j->attempt, j->cb->attempts, why);
    callback_drop_current(j);
}

/* The attempt failed: schedules another (returns 0) or gives up (returns 1: cur is gone). */
int callback_attempt_failed(struct job *j, int retryable, long retry_after_ms, const char *why)
{
    struct dm_callbacks *cb = j->cb;
    char where[512];

    callback_release_slot(j);
    if (retryable && j->attempt < cb->attempts && !cb->closing) {
        long delay = (long)cb->backoff_ms << (j->attempt - 1 < 16 ? j->attempt - 1 : 16);
        if (retry_after_ms > delay) {
            delay = retry_after_ms;
        }
        callback_url_for_log(j->cur->url, where, sizeof(where));
        dm_warn("callback", j->id,
                "callback seq %lld to %s: attempt %u/%u failed (%s); retrying in %ld ms",
                j->cur->seq, where, j->attempt, cb->attempts, why, delay);
        uv_timer_start(&j->timer, on_backoff, (uint64_t)delay, 0);
        return 0;
    }
    callback_give_up(j, why);
    return 1;
}

/* Sends cur to pin; on a failure to start, handles it like a failed attempt. Returns 1 when
 * cur is gone (the caller goes on), else 0. */
int callback_send_or_fail(struct job *j, const struct dm_netaddr *pin)
{
    struct dm_error err;

    dm_error_clear(&err);
    if (send_attempt(j, pin, &err) == 0) {
        return 0;
    }
    /* Could not even start: INVALID/CANCELLED will not get better, anything else might. */
    return callback_attempt_failed(j, err.code != DM_ERR_INVALID && err.code != DM_ERR_CANCELLED, 0,
                                   err.msg);
}

/* Starts jobs waiting for a slot while slots are free. */
void callback_kick_waiting(struct dm_callbacks *cb)
{
    while (cb->wait_head && cb->active < cb->max_conns && !cb->closing) {
        struct job *j = cb->wait_head;
        if (callback_begin(j)) { /* takes the slot and leaves the queue */
            callback_pump(j);
        }
    }
}

/* Delivers the job's events one by one until one goes on asynchronously; frees the job when
 * all is done. */
void callback_pump(struct job *j)
{
    while (!j->cur && j->head && !j->cb->closing) {
        j->cur = j->head;
        j->head = j->cur->next;
        if (!j->head) {
            j->tail = NULL;
        }
        j->cur->next = NULL;
        j->queued--;
        j->attempt = 0;
        if (!callback_begin(j)) {
            return;
        }
    }
    job_release_if_idle(j);
}

static void on_backoff(uv_timer_t *t)
{
    struct job *j = t->data;
    if (j->cur && callback_begin(j)) {
        callback_pump(j);
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
    int done;

    j->call = NULL;
    if (cb->closing || rc == DM_ERR_CANCELLED) {
        callback_drop_current(j);
        callback_pump(j);
        callback_kick_waiting(cb);
        return;
    }
    if (rc == 0 && resp->status >= 200 && resp->status < 300) {
        dm_debug("callback", j->id, "callback seq %lld delivered (HTTP %ld, attempt %u)",
                 j->cur->seq, resp->status, j->attempt);
        callback_drop_current(j);
        done = 1;
    } else if (rc != 0) {
        snprintf(why, sizeof(why), "%s", err->msg[0] ? err->msg : dm_err_name(rc));
        done = callback_attempt_failed(j, 1, 0, why);
    } else if (resp->status >= 300 && resp->status < 400) {
        snprintf(why, sizeof(why), "HTTP %ld: redirects are not followed", resp->status);
        done = callback_attempt_failed(j, 0, 0, why);
    } else {
        snprintf(why, sizeof(why), "HTTP %ld", resp->status);
        done = callback_attempt_failed(
            j,
            resp->status == 408 || resp->status == 429 || resp->status >= 500 || resp->status < 200,
            resp->status == 429 || resp->status == 503 ? retry_after(resp) : 0, why);
    }
    if (done) {
        callback_pump(j);
    }
    callback_kick_waiting(cb);
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
    cb->max_conns = opts->max_connections ? opts->max_connections : 64;
    cb->max_events = opts->max_events ? opts->max_events : 10000;
    if (cb->max_events <= cb->max_conns) {
        cb->max_events = cb->max_conns + 1; /* so something not in flight can always be dropped */
    }
    if (opts->secret && *opts->secret) {
        cb->secret = strdup(opts->secret);
        if (!cb->secret) {
            rc = dm_error_set(err, DM_ERR_NOMEM, "out of memory");
            goto out;
        }
        cb->secret_len = strlen(cb->secret);
    } else {
        dm_warn("callback", NULL,
                "no callback secret configured: callbacks are sent without a signature");
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

/* Drops the replica's oldest event that is not in flight (waiting in a queue, for a slot or out
 * a backoff). Returns 1, or 0 when every event is in flight. */
static int drop_oldest(struct dm_callbacks *cb)
{
    struct job *victim = NULL;
    int is_cur = 0;
    unsigned long long best = 0;
    struct event *e;

    for (struct job *j = cb->jobs; j; j = j->next) {
        if (j->cur && !j->call && !j->resolving && (!victim || j->cur->order < best)) {
            victim = j;
            is_cur = 1;
            best = j->cur->order;
        }
        if (j->head && (!victim || j->head->order < best)) {
            victim = j;
            is_cur = 0;
            best = j->head->order;
        }
    }
    if (!victim) {
        return 0;
    }
    e = is_cur ? victim->cur : victim->head;
    count_dropped(cb);
    dm_warn("callback", victim->id,
            "callback backlog full (%zu events on this replica): dropping the oldest undelivered "
            "event, seq %lld",
            cb->max_events, e->seq);
    if (is_cur) {
        uv_timer_stop(&victim->timer);
        callback_unwait(victim);
        callback_drop_current(victim);
        callback_pump(victim);
        callback_kick_waiting(cb);
    } else {
        victim->head = e->next;
        if (!victim->head) {
            victim->tail = NULL;
        }
        victim->queued--;
        cb->pending--;
        event_free(e);
    }
    return 1;
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
    if (!url || (strncasecmp(url, "https://", 8) && strncasecmp(url, "http://", 7))) {
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
    e->order = ++cb->order;
    /* The replica's backlog first: dropping may finish (and free) a job, the poster's too. */
    while (cb->pending >= cb->max_events && drop_oldest(cb)) {
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
        count_dropped(cb);
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
    callback_pump(j);
    return 0;
}

int dm_callbacks_allow_hosts(struct dm_callbacks *cb, const char *hosts, struct dm_error *err)
{
    char *copy = NULL;

    if (hosts && *hosts && !(copy = strdup(hosts))) {
        return dm_error_set(err, DM_ERR_NOMEM, "out of memory");
    }
    free(cb->allow);
    cb->allow = copy;
    return 0;
}

void dm_callbacks_set_metrics(struct dm_callbacks *cb, struct dm_metrics *m)
{
    cb->metrics = m;
}

unsigned long long dm_callbacks_dropped(const struct dm_callbacks *cb)
{
    return cb->dropped;
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
    free(cb->allow);
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
        callback_unwait(j);
        if (j->resolving) {
            /* Its completion (cancelled, or done anyway) drops cur and releases the job. */
            uv_cancel((uv_req_t *)&j->gai);
            continue;
        }
        if (j->call) {
            dm_http_cancel(j->call); /* its completion drops cur and releases the job */
            continue;
        }
        uv_timer_stop(&j->timer);
        if (j->cur) {
            callback_drop_current(j);
        }
        job_release_if_idle(j);
    }
    if (cb->live == 0) {
        finish_close(cb);
    }
}
