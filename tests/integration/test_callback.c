/* Integration tests for callback: events POSTed through the real HTTP client (curl multi on
 * libuv) to a receiver running on libmicrohttpd inside the test, which checks that no header
 * carries the secret and verifies X-Dream-Signature (t=<unix>,v1=<HMAC-SHA256 of "<t>.<body>">,
 * computed here with OpenSSL's EVP_Q_mac, independently of the module, with a 5-minute
 * tolerance) and records every attempt. Receivers that fail, fail then succeed, hang, refuse,
 * redirect, never answer or rate-limit show the retry, ordering, destination, backlog and
 * never-blocking rules. */
#include <criterion/criterion.h>
#include <microhttpd.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dmtest.h"
#include "dream/core/buf.h"
#include "dream/io/callback.h"
#include "dream/io/http.h"
#include "dream/core/log.h"
#include "dream/domain/metrics_registry.h"
#include "dream/io/loop.h"

#define SECRET "s3cr3t-callback-key"
#define MAX_RECS 512

struct rec {
    char path[32];
    char job[64];
    long long seq;   /* from X-Dream-Event-Seq */
    int attempt;     /* from X-Dream-Attempt */
    int secret_seen; /* some header holds the secret */
    int sig_ok;      /* X-Dream-Signature matches the body and its t is recent */
    int has_auth;    /* any Authorization header */
    int json_type;   /* Content-Type: application/json */
    long long at_ms; /* when it arrived */
    char body[512];
};

static struct {
    struct MHD_Daemon *d;
    int port;
    pthread_mutex_t mu;
    struct rec recs[MAX_RECS];
    int n;
    int inflight[8]; /* per job index (job names "job<k>") */
    int peak_per_job;
} rx;

struct conn {
    struct dm_buf body;
};

static int job_index(const char *job)
{
    if (!strncmp(job, "job", 3)) {
        int k = atoi(job + 3);
        if (k >= 0 && k < 8) {
            return k;
        }
    }
    return 0;
}

/* Attempts this receiver has already seen for (job, seq). */
static int seen(const char *job, long long seq)
{
    int n = 0;
    for (int i = 0; i < rx.n; i++) {
        if (!strcmp(rx.recs[i].job, job) && rx.recs[i].seq == seq) {
            n++;
        }
    }
    return n;
}

static enum MHD_Result respond(struct MHD_Connection *c, unsigned status, const char *retry_after)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(3, "ok\n", MHD_RESPMEM_PERSISTENT);
    enum MHD_Result ret;
    if (retry_after) {
        MHD_add_response_header(r, "Retry-After", retry_after);
    }
    ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result find_secret(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    int *seen = cls;
    (void)kind;
    if ((key && strstr(key, SECRET)) || (value && strstr(value, SECRET))) {
        *seen = 1;
    }
    return MHD_YES;
}

static enum MHD_Result on_rx(void *cls, struct MHD_Connection *c, const char *url,
                             const char *method, const char *version, const char *data,
                             size_t *size, void **state)
{
    struct conn *cs = *state;
    struct rec r;
    const char *h;
    char want[128];
    unsigned char mac[64];
    size_t maclen = 0;
    int k;
    int before;
    unsigned status = 200;
    const char *retry = NULL;
    (void)cls;
    (void)version;

    if (!cs) {
        cs = calloc(1, sizeof(*cs));
        dm_buf_init(&cs->body, 1 << 20);
        *state = cs;
        return MHD_YES;
    }
    if (*size) {
        dm_buf_append(&cs->body, data, *size);
        *size = 0;
        return MHD_YES;
    }
    memset(&r, 0, sizeof(r));
    snprintf(r.path, sizeof(r.path), "%s", url);
    h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Dream-Job-Id");
    snprintf(r.job, sizeof(r.job), "%s", h ? h : "");
    h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Dream-Event-Seq");
    r.seq = h ? atoll(h) : -1;
    h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Dream-Attempt");
    r.attempt = h ? atoi(h) : -1;
    h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    r.has_auth = h != NULL;
    MHD_get_connection_values(c, MHD_HEADER_KIND, find_secret, &r.secret_seen);
    h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
    r.json_type = h && !strcmp(h, "application/json");
    h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Dream-Signature");
    if (h && !strncmp(h, "t=", 2)) {
        long long t = atoll(h + 2);
        char msg[1 << 12];
        int m = snprintf(msg, sizeof(msg), "%lld.", t);
        size_t blen = cs->body.len < sizeof(msg) - (size_t)m ? cs->body.len : 0;
        memcpy(msg + m, cs->body.data ? cs->body.data : "", blen);
        if (EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, SECRET, strlen(SECRET),
                      (const unsigned char *)msg, (size_t)m + blen, mac, sizeof(mac), &maclen)) {
            int n = snprintf(want, sizeof(want), "t=%lld,v1=", t);
            for (size_t i = 0; i < maclen; i++) {
                n += snprintf(want + n, sizeof(want) - (size_t)n, "%02x", mac[i]);
            }
            r.sig_ok = !strcmp(h, want) && llabs((long long)time(NULL) - t) <= 300;
        }
    }
    snprintf(r.body, sizeof(r.body), "%s", cs->body.data ? cs->body.data : "");
    r.at_ms = dmt_now_ms();
    (void)method;

    pthread_mutex_lock(&rx.mu);
    before = seen(r.job, r.seq);
    if (rx.n < MAX_RECS) {
        rx.recs[rx.n++] = r;
    }
    k = job_index(r.job);
    if (++rx.inflight[k] > rx.peak_per_job) {
        rx.peak_per_job = rx.inflight[k];
    }
    pthread_mutex_unlock(&rx.mu);

    if (!strcmp(url, "/flaky")) {
        status = before < 2 ? 500 : 200; /* fails twice, then succeeds */
    } else if (!strcmp(url, "/down")) {
        status = 503;
    } else if (!strcmp(url, "/bad")) {
        status = 400;
    } else if (!strcmp(url, "/slow")) {
        dmt_sleep_ms(1500);
    } else if (!strcmp(url, "/slowish")) {
        dmt_sleep_ms(150);
    } else if (!strcmp(url, "/redirect")) {
        char loc[128];
        struct MHD_Response *resp = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
        enum MHD_Result ret;
        snprintf(loc, sizeof(loc), "http://127.0.0.1:%d/ok", rx.port);
        MHD_add_response_header(resp, "Location", loc);
        pthread_mutex_lock(&rx.mu);
        rx.inflight[k]--;
        pthread_mutex_unlock(&rx.mu);
        ret = MHD_queue_response(c, 307, resp);
        MHD_destroy_response(resp);
        return ret;
    } else if (!strcmp(url, "/limited")) {
        status = before < 1 ? 429 : 200;
        retry = "1";
    }
    pthread_mutex_lock(&rx.mu);
    rx.inflight[k]--;
    pthread_mutex_unlock(&rx.mu);
    return respond(c, status, retry);
}

static void on_rx_done(void *cls, struct MHD_Connection *c, void **state,
                       enum MHD_RequestTerminationCode code)
{
    struct conn *cs = *state;
    (void)cls;
    (void)c;
    (void)code;
    if (cs) {
        dm_buf_free(&cs->body);
        free(cs);
        *state = NULL;
    }
}

static uv_loop_t loop;
static struct dm_http *http;
static struct dm_callbacks *cbs;

static void rx_start(void)
{
    const union MHD_DaemonInfo *info;
    memset(&rx, 0, sizeof(rx));
    pthread_mutex_init(&rx.mu, NULL);
    rx.d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_AUTO, 0, NULL,
        NULL, on_rx, NULL, MHD_OPTION_NOTIFY_COMPLETED, on_rx_done, NULL, MHD_OPTION_END);
    cr_assert_not_null(rx.d);
    info = MHD_get_daemon_info(rx.d, MHD_DAEMON_INFO_BIND_PORT);
    rx.port = info->port;
}

static void setup_with(const struct dm_callback_opts *o)
{
    struct dm_error err;
    rx_start();
    cr_assert_eq(uv_loop_init(&loop), 0);
    cr_assert_eq(dm_http_new(&http, &loop, NULL, &err), 0, "%s", err.msg);
    cr_assert_eq(dm_callbacks_new(&cbs, &loop, http, o, &err), 0, "%s", err.msg);
    /* The receiver is on loopback: the operator's allow-list names it (as in a test setup). */
    cr_assert_eq(dm_callbacks_allow_hosts(cbs, "example.org, 127.0.0.1", &err), 0);
}

/* Fast retries for tests: 3 attempts, 100 ms then 200 ms. */
static void setup_fast(void)
{
    struct dm_callback_opts o = DM_CALLBACK_OPTS_INIT;
    o.secret = SECRET;
    o.backoff_ms = 100;
    o.timeout_ms = 500;
    setup_with(&o);
}

static int closed;

static void on_http_closed(void *arg)
{
    (void)arg;
    closed++;
}

static void on_cbs_closed(void *arg)
{
    (void)arg;
    closed++;
    dm_http_close(http, on_http_closed, NULL);
    http = NULL;
}

static void teardown(void)
{
    if (cbs) {
        closed = 0;
        dm_callbacks_close(cbs, on_cbs_closed, NULL);
        cbs = NULL;
        uv_run(&loop, UV_RUN_DEFAULT);
        cr_assert_eq(closed, 2, "callbacks then http closed");
        cr_assert_eq(dm_loop_drain_close(&loop), 0);
    }
    if (rx.d) {
        MHD_stop_daemon(rx.d);
        rx.d = NULL;
    }
    pthread_mutex_destroy(&rx.mu);
}

struct until {
    uv_timer_t t;
    long long deadline;
    int timed_out;
};

static void on_until(uv_timer_t *t)
{
    struct until *u = t->data;
    if (dm_callbacks_pending(cbs) == 0 || dmt_now_ms() > u->deadline) {
        u->timed_out = dm_callbacks_pending(cbs) != 0;
        uv_stop(t->loop);
    }
}

/* Runs the loop until every event is delivered or given up (or timeout_ms passed). */
static void run_until_idle(long long timeout_ms)
{
    struct until u;
    memset(&u, 0, sizeof(u));
    u.deadline = dmt_now_ms() + timeout_ms;
    uv_timer_init(&loop, &u.t);
    u.t.data = &u;
    uv_timer_start(&u.t, on_until, 5, 5);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&u.t, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    cr_assert_not(u.timed_out, "callbacks still pending after %lld ms", timeout_ms);
}

static const char *event(int job, int seq, const char *status)
{
    static char buf[512];
    snprintf(buf, sizeof(buf),
             "{\"v\":1,\"jobId\":\"job%d\",\"seq\":%d,\"status\":\"%s\",\"message\":\"event %d\","
             "\"ts\":\"2026-11-24T02:04:58.123Z\",\"worker\":\"w1\",\"step\":\"src/a.ts\","
             "\"tokensUsed\":0,\"costUsd\":0}",
             job, seq, status, seq);
    return buf;
}

static void post(const char *path, int job, int seq, const char *status)
{
    char url[128];
    struct dm_error err;
    const char *e = event(job, seq, status);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", rx.port, path);
    cr_assert_eq(dm_callback_post(cbs, url, e, strlen(e), &err), 0, "%s", err.msg);
}

static int count_path(const char *path)
{
    int n = 0;
    for (int i = 0; i < rx.n; i++) {
        n += !strcmp(rx.recs[i].path, path);
    }
    return n;
}

Test(callback, every_event_once_in_order_signed, .init = setup_fast, .fini = teardown)
{
    static const char *statuses[] = {"started", "planning", "writing",
                                     "testing", "pr_open",  "complete"};
    for (int i = 0; i < 6; i++) {
        post("/ok", 1, i + 1, statuses[i]);
    }
    cr_assert_eq(dm_callbacks_pending(cbs), 6);
    cr_assert_eq(dm_callbacks_jobs(cbs), 1);
    run_until_idle(10000);
    pthread_mutex_lock(&rx.mu);
    cr_assert_eq(rx.n, 6);
    for (int i = 0; i < 6; i++) {
        struct rec *r = &rx.recs[i];
        cr_assert_eq(r->seq, i + 1, "in order");
        cr_assert_eq(r->attempt, 1);
        cr_assert_not(r->has_auth, "no Authorization header");
        cr_assert_not(r->secret_seen, "the secret is in no header");
        cr_assert(r->sig_ok, "X-Dream-Signature: t=<now>,v1=<HMAC of t.body>");
        cr_assert(r->json_type);
        cr_assert_str_eq(r->job, "job1");
        cr_assert_str_eq(r->body, event(1, i + 1, statuses[i]), "the body is the event, unchanged");
    }
    pthread_mutex_unlock(&rx.mu);
    cr_assert_eq(dm_callbacks_jobs(cbs), 0, "an idle job is forgotten");
}

Test(callback, receiver_failing_twice_then_succeeding, .init = setup_fast, .fini = teardown)
{
    long long t0 = dmt_now_ms();
    post("/flaky", 1, 1, "started");
    post("/flaky", 1, 2, "planning");
    run_until_idle(10000);
    pthread_mutex_lock(&rx.mu);
    cr_assert_eq(rx.n, 6, "each event seen once per attempt, 3 attempts each");
    for (int i = 0; i < 6; i++) {
        cr_assert_eq(rx.recs[i].seq, i / 3 + 1, "the second event waits for the first");
        cr_assert_eq(rx.recs[i].attempt, i % 3 + 1);
        cr_assert(!rx.recs[i].secret_seen && rx.recs[i].sig_ok);
    }
    /* Backoff: 100 ms then 200 ms between the attempts of one event. */
    cr_assert_geq(rx.recs[1].at_ms - rx.recs[0].at_ms, 90);
    cr_assert_geq(rx.recs[2].at_ms - rx.recs[1].at_ms, 190);
    pthread_mutex_unlock(&rx.mu);
    cr_assert_geq(dmt_now_ms() - t0, 2 * 290);
}

Test(callback, gives_up_after_three_attempts_and_goes_on, .init = setup_fast, .fini = teardown)
{
    post("/down", 1, 1, "started");
    post("/down", 1, 2, "failed");
    run_until_idle(10000);
    pthread_mutex_lock(&rx.mu);
    cr_assert_eq(rx.n, 6);
    cr_assert_eq(rx.recs[2].attempt, 3);
    cr_assert_eq(rx.recs[3].seq, 2, "the next event still goes out");
    cr_assert_eq(rx.recs[5].attempt, 3);
    pthread_mutex_unlock(&rx.mu);
}

Test(callback, client_errors_are_not_retried, .init = setup_fast, .fini = teardown)
{
    post("/bad", 1, 1, "started");
    post("/ok", 1, 2, "planning");
    run_until_idle(10000);
    cr_assert_eq(count_path("/bad"), 1);
    cr_assert_eq(count_path("/ok"), 1);
}

Test(callback, timeout_counts_as_a_failed_attempt, .init = setup_fast, .fini = teardown)
{
    long long t0 = dmt_now_ms();
    post("/slow", 1, 1, "started");
    run_until_idle(20000);
    /* 3 attempts of 500 ms each (the receiver takes 1.5 s) with 100 + 200 ms between. */
    cr_assert_eq(count_path("/slow"), 3);
    cr_assert_geq(dmt_now_ms() - t0, 3 * 480 + 290);
}

Test(callback, retry_after_is_honoured, .init = setup_fast, .fini = teardown)
{
    post("/limited", 1, 1, "started");
    run_until_idle(10000);
    pthread_mutex_lock(&rx.mu);
    cr_assert_eq(rx.n, 2);
    cr_assert_geq(rx.recs[1].at_ms - rx.recs[0].at_ms, 950, "Retry-After: 1 beats the 100 ms");
    pthread_mutex_unlock(&rx.mu);
}

Test(callback, one_in_flight_per_job_jobs_in_parallel, .init = setup_fast, .fini = teardown)
{
    long long t0 = dmt_now_ms();
    long long took;
    /* 4 jobs x 4 events, 150 ms each at the receiver: in series per job, parallel across. */
    for (int s = 1; s <= 4; s++) {
        for (int j = 0; j < 4; j++) {
            post("/slowish", j, s, "writing");
        }
    }
    cr_assert_eq(dm_callbacks_jobs(cbs), 4);
    run_until_idle(20000);
    took = dmt_now_ms() - t0;
    pthread_mutex_lock(&rx.mu);
    cr_assert_eq(rx.n, 16);
    cr_assert_eq(rx.peak_per_job, 1, "never two events of one job at once");
    for (int j = 0; j < 4; j++) {
        char name[16];
        long long last = 0;
        snprintf(name, sizeof(name), "job%d", j);
        for (int i = 0; i < rx.n; i++) {
            if (!strcmp(rx.recs[i].job, name)) {
                cr_assert_eq(rx.recs[i].seq, last + 1, "job %d out of order", j);
                last = rx.recs[i].seq;
            }
        }
        cr_assert_eq(last, 4);
    }
    pthread_mutex_unlock(&rx.mu);
    cr_assert_geq(took, 4 * 140, "per job in series");
    cr_assert_lt(took, 16 * 150, "jobs in parallel (took %lld ms)", took);
}

Test(callback, full_queue_drops_the_oldest_waiting, .fini = teardown)
{
    struct dm_callback_opts o = DM_CALLBACK_OPTS_INIT;
    o.secret = SECRET;
    o.max_queue_per_job = 3;
    setup_with(&o);
    for (int s = 1; s <= 10; s++) {
        post("/slowish", 1, s, s == 10 ? "complete" : "writing");
    }
    cr_assert_eq(dm_callbacks_pending(cbs), 4, "one in flight + 3 waiting");
    run_until_idle(10000);
    pthread_mutex_lock(&rx.mu);
    cr_assert_eq(rx.n, 4);
    cr_assert_eq(rx.recs[0].seq, 1, "the one in flight is kept");
    cr_assert_eq(rx.recs[1].seq, 8);
    cr_assert_eq(rx.recs[2].seq, 9);
    cr_assert_eq(rx.recs[3].seq, 10, "the terminal event gets through");
    pthread_mutex_unlock(&rx.mu);
}

Test(callback, unsigned_without_a_secret, .fini = teardown)
{
    struct dm_callback_opts o = DM_CALLBACK_OPTS_INIT;
    setup_with(&o);
    post("/ok", 1, 1, "started");
    run_until_idle(10000);
    pthread_mutex_lock(&rx.mu);
    cr_assert_eq(rx.n, 1);
    cr_assert_not(rx.recs[0].has_auth);
    cr_assert_not(rx.recs[0].sig_ok);
    pthread_mutex_unlock(&rx.mu);
}

Test(callback, refuses_unusable_input, .init = setup_fast, .fini = teardown)
{
    struct dm_error err;
    const char *e = event(1, 1, "started");
    cr_assert_eq(dm_callback_post(cbs, "ftp://x/y", e, strlen(e), &err), DM_ERR_INVALID);
    cr_assert_eq(dm_callback_post(cbs, NULL, e, strlen(e), &err), DM_ERR_INVALID);
    cr_assert_eq(dm_callback_post(cbs, "http://127.0.0.1:1/", "[1]", 3, &err), DM_ERR_INVALID);
    cr_assert_eq(dm_callback_post(cbs, "http://127.0.0.1:1/", "{\"jobId\":\"a\"}", 13, &err),
                 DM_ERR_INVALID, "no seq");
    cr_assert_eq(dm_callback_post(cbs, "http://127.0.0.1:1/", "{\"seq\":1}", 9, &err),
                 DM_ERR_INVALID, "no jobId");
    cr_assert_eq(dm_callbacks_pending(cbs), 0);
}

Test(callback, unreachable_receiver_never_blocks_and_secret_never_logged, .init = setup_fast,
     .fini = teardown)
{
    char *dir = dmt_tempdir("cblog");
    char path[512];
    char url[128];
    char *log;
    struct dm_error err;
    const char *e = event(1, 1, "started");
    int fd;
    int port = dmt_free_port(); /* nobody listens there */

    snprintf(path, sizeof(path), "%s/log", dir);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert(fd >= 0);
    dm_log_set_fd(fd);
    dm_log_set_level(DM_LOG_DEBUG);
    snprintf(url, sizeof(url), "http://user:pw-in-url@127.0.0.1:%d/hook?token=qs-secret", port);
    cr_assert_eq(dm_callback_post(cbs, url, e, strlen(e), &err), 0, "%s", err.msg);
    post("/ok", 2, 1, "started"); /* another job is not held up */
    run_until_idle(10000);
    dm_log_set_fd(2);
    dm_log_set_level(DM_LOG_INFO);
    close(fd);
    cr_assert_eq(count_path("/ok"), 1);
    log = dmt_read_file(path);
    cr_assert_not_null(log);
    cr_assert(strstr(log, "giving up"), "%s", log);
    cr_assert(strstr(log, "/hook"), "the log names where: %s", log);
    cr_assert_null(strstr(log, SECRET), "secret in the log: %s", log);
    cr_assert_null(strstr(log, "pw-in-url"), "user info in the log: %s", log);
    cr_assert_null(strstr(log, "qs-secret"), "query in the log: %s", log);
    free(log);
    dmt_rmtree(dir);
    free(dir);
}

Test(callback, close_with_events_in_flight_and_queued, .init = setup_fast, .fini = teardown)
{
    struct dm_error err;
    const char *e = event(3, 9, "x");
    for (int s = 1; s <= 5; s++) {
        post("/slow", 1, s, "writing");
        post("/flaky", 2, s, "writing");
    }
    /* Let the first requests start, then close with everything outstanding. */
    uv_run(&loop, UV_RUN_NOWAIT);
    closed = 0;
    dm_callbacks_close(cbs, on_cbs_closed, NULL);
    cr_assert_eq(dm_callback_post(cbs, "http://127.0.0.1:1/", e, strlen(e), &err),
                 DM_ERR_CANCELLED);
    cbs = NULL;
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(closed, 2);
    cr_assert_eq(dm_loop_drain_close(&loop), 0);
}

/* Captures the module's log lines in a file while fn runs. */
static char *with_log(void (*fn)(void))
{
    char *dir = dmt_tempdir("cblog");
    char path[512];
    char *log;
    int fd;
    snprintf(path, sizeof(path), "%s/log", dir);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert(fd >= 0);
    dm_log_set_fd(fd);
    fn();
    dm_log_set_fd(2);
    close(fd);
    log = dmt_read_file(path);
    cr_assert_not_null(log);
    dmt_rmtree(dir);
    free(dir);
    return log;
}

static void post_url(const char *url, int job, int seq)
{
    struct dm_error err;
    const char *e = event(job, seq, "started");
    cr_assert_eq(dm_callback_post(cbs, url, e, strlen(e), &err), 0, "%s", err.msg);
}

static void post_internal_literals(void)
{
    static const char *hosts[] = {"127.0.0.1",          "[::1]",  "2130706433",
                                  "[::ffff:127.0.0.1]", "0x7f.1", "127.1"};
    char url[160];
    struct dm_error err;
    cr_assert_eq(dm_callbacks_allow_hosts(cbs, NULL, &err), 0);
    for (int i = 0; i < 6; i++) {
        snprintf(url, sizeof(url), "http://%s:%d/ok", hosts[i], rx.port);
        post_url(url, i, 1);
    }
    /* Nobody listens there, so a connection attempt would time out (500 ms x 3): refused
     * before any connection, these end at once. */
    post_url("http://169.254.169.254/latest/meta-data/", 6, 1);
    post_url("http://10.0.0.1:9/cb", 7, 1);
    run_until_idle(400);
}

Test(callback, internal_addresses_are_refused_in_every_spelling, .init = setup_fast,
     .fini = teardown)
{
    char *log = with_log(post_internal_literals);
    cr_assert_eq(count_path("/ok"), 0, "the receiver on loopback saw nothing");
    cr_assert_not_null(strstr(log, "refused: 127.0.0.1 is a loopback address"), "%s", log);
    cr_assert_not_null(strstr(log, "is a link-local address"), "%s", log);
    cr_assert_not_null(strstr(log, "is a private address"), "%s", log);
    cr_assert_null(strstr(log, "retrying"), "a refusal is not retried: %s", log);
    free(log);
}

static void post_localhost_twice(void)
{
    char url[128];
    struct dm_error err;
    snprintf(url, sizeof(url), "http://localhost:%d/ok", rx.port);
    post_url(url, 1, 1); /* allow-list: example.org, 127.0.0.1, not localhost */
    run_until_idle(5000);
    cr_assert_eq(count_path("/ok"), 0, "a name that resolves to loopback is refused");
    cr_assert_eq(dm_callbacks_allow_hosts(cbs, "localhost", &err), 0);
    post_url(url, 1, 2);
    run_until_idle(5000);
}

Test(callback, a_name_resolving_to_loopback_is_refused_unless_allow_listed, .init = setup_fast,
     .fini = teardown)
{
    char *log = with_log(post_localhost_twice);
    pthread_mutex_lock(&rx.mu);
    cr_assert_eq(rx.n, 1, "only the allow-listed delivery arrived");
    cr_assert_eq(rx.recs[0].seq, 2);
    cr_assert(rx.recs[0].sig_ok);
    pthread_mutex_unlock(&rx.mu);
    cr_assert_not_null(strstr(log, "refused: localhost is a loopback address"), "%s", log);
    free(log);
}

static void post_metadata_name(void)
{
    struct dm_error err;
    cr_assert_eq(dm_callbacks_allow_hosts(cbs, NULL, &err), 0);
    post_url("http://metadata.google.internal/computeMetadata/v1/", 1, 1);
    post_url("http://instance-data/latest/meta-data/", 2, 1);
    run_until_idle(400);
}

Test(callback, metadata_names_are_refused_without_resolving, .init = setup_fast, .fini = teardown)
{
    char *log = with_log(post_metadata_name);
    cr_assert_not_null(strstr(log, "metadata.google.internal is a cloud metadata name"), "%s", log);
    cr_assert_not_null(strstr(log, "instance-data is a cloud metadata name"), "%s", log);
    free(log);
}

Test(callback, redirects_are_not_followed_or_retried, .init = setup_fast, .fini = teardown)
{
    post("/redirect", 1, 1, "started");
    post("/ok", 1, 2, "planning");
    run_until_idle(5000);
    cr_assert_eq(count_path("/redirect"), 1, "a 3xx is final");
    pthread_mutex_lock(&rx.mu);
    cr_assert_eq(rx.n, 2);
    cr_assert_eq(rx.recs[1].seq, 2, "the Location was not visited; the next event went on");
    pthread_mutex_unlock(&rx.mu);
}

/* A receiver that never answers: the kernel completes the connections into the listen
 * backlog, nobody accepts or reads. */
static int silent_fd = -1;
static int silent_port;

static void silent_start(void)
{
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    silent_fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert(silent_fd >= 0);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(silent_fd, (struct sockaddr *)&a, sizeof(a)), 0);
    cr_assert_eq(listen(silent_fd, 64), 0);
    cr_assert_eq(getsockname(silent_fd, (struct sockaddr *)&a, &len), 0);
    silent_port = ntohs(a.sin_port);
}

static struct dm_metrics *metrics;

static void flood_the_silent_receiver(void)
{
    char url[128];
    long long t0 = dmt_now_ms();
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/hook", silent_port);
    /* 3 jobs x 4 events: 2 deliveries at once, 6 events in all on the replica. */
    for (int s = 1; s <= 4; s++) {
        for (int j = 0; j < 3; j++) {
            post_url(url, j, s);
        }
    }
    cr_assert_lt(dmt_now_ms() - t0, 200, "posting never waits for the receiver");
    /* Let the two connections open and their requests go out. */
    for (int i = 0; i < 20; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        dmt_sleep_ms(5);
    }
}

Test(callback, backlog_cap_drops_the_oldest_with_counter_and_log, .fini = teardown)
{
    struct dm_callback_opts o = DM_CALLBACK_OPTS_INIT;
    struct dm_buf text;
    char *log;
    o.secret = SECRET;
    o.timeout_ms = 30000;
    o.max_connections = 2;
    o.max_events = 6;
    setup_with(&o);
    silent_start();
    cr_assert_eq(dm_metrics_new(&metrics), 0);
    dm_callbacks_set_metrics(cbs, metrics);
    log = with_log(flood_the_silent_receiver);
    cr_assert_eq(dm_callbacks_pending(cbs), 6, "the backlog holds at most 6 events");
    cr_assert_eq(dm_callbacks_dropped(cbs), 6, "12 posted, 6 dropped");
    cr_assert_not_null(strstr(log, "callback backlog full (6 events on this replica): dropping "
                                   "the oldest undelivered event, seq 1"),
                       "%s", log);
    cr_assert_not_null(strstr(log, "seq 2"), "%s", log);
    dm_buf_init(&text, 0);
    cr_assert_eq(dm_metrics_render(metrics, &text), 0);
    cr_assert_not_null(strstr(text.data, "dreamd_callback_events_dropped_total 6\n"), "%s",
                       text.data);
    dm_buf_free(&text);
    free(log);
    /* teardown closes with the two requests still hanging: they are cancelled. */
    dm_callbacks_set_metrics(cbs, NULL);
    dm_metrics_free(metrics);
    close(silent_fd);
}

static void post_unresolvable(void)
{
    post_url("http://dream-test.invalid/cb", 1, 1);
    run_until_idle(5000);
}

Test(callback, an_unresolvable_name_is_retried_then_given_up, .init = setup_fast, .fini = teardown)
{
    char *log = with_log(post_unresolvable);
    cr_assert_not_null(strstr(log, "attempt 1/3 failed (cannot resolve dream-test.invalid"), "%s",
                       log);
    cr_assert_not_null(strstr(log, "attempt 3/3 failed (cannot resolve dream-test.invalid"), "%s",
                       log);
    cr_assert_not_null(strstr(log, "giving up"), "%s", log);
    free(log);
}

Test(callback, close_while_resolving_and_waiting_for_a_slot, .fini = teardown)
{
    struct dm_callback_opts o = DM_CALLBACK_OPTS_INIT;
    o.max_connections = 1;
    setup_with(&o);
    post_url("http://dream-test.invalid/cb", 1, 1); /* resolving: holds the only slot */
    post("/ok", 2, 1, "started");                   /* waits for the slot */
    cr_assert_eq(dm_callbacks_pending(cbs), 2);
    /* teardown closes now: the resolution is cancelled or awaited, the waiter dropped, and the
     * loop closes clean. */
}
