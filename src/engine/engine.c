/*
 * engine: intake, leases, fenced writes and shutdown of one replica (see
 * include/dream/engine/engine.h).
 *
 * Ownership: the engine owns its three Redis connections, its timers and the in-flight jobs
 * (struct ejob, which embeds the pure struct dm_job). A job is freed only when it is over, has
 * no write or start command in flight and its two timers have closed. The engine frees itself
 * in the last close callback after dm_engine_stop. Loop thread only.
 */
#include "dream/engine/engine.h"
#include "dream/io/callback.h"
#include "dream/core/error.h"
#include "dream/domain/intake.h"
#include "dream/domain/jobreq.h"
#include "dream/core/log.h"
#include "dream/io/metrics.h"
#include "dream/io/redis.h"
#include "dream/domain/scripts.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GROUP "workers"
#define BLOCK_MS 2000
#define JOB_EVENTS_MAXLEN "10000"
#define MAX_SECRETS 16

struct wreq {
    struct wreq *next;
    int argc;
    char **argv;
    size_t *lens;
    dm_job_write_cb done;
};

struct ejob {
    struct dm_job job; /* first: a struct dm_job * is a struct ejob * */
    struct dm_engine *eng;
    struct ejob *prev, *next;
    uv_timer_t after_timer;
    uv_timer_t write_timer;
    uv_timer_t deadline_timer;
    void (*deadline_fn)(struct dm_job *job);
    void (*after_fn)(struct dm_job *job);
    struct wreq *wq_head, *wq_tail;
    int writing;  /* a transition script is in flight */
    int starting; /* the start script is in flight */
    int reads;    /* file reads in flight */
    int closing;
    int handles;
    unsigned long opseq;
    char mode[8];
    char k_hash[256], k_events[256], k_files[256];
};

struct dm_engine {
    uv_loop_t *loop;
    const struct dm_config *cfg;
    const struct dm_stage_ops *stages;
    dm_engine_stopped_cb stopped;
    void *arg;
    struct dm_job_io io;

    struct dm_redis_conn *reader, *cmd, *sub;
    struct dm_metrics *metrics;
    struct dm_callbacks *callbacks;
    struct dm_redis_script s_start, s_transition, s_dead, s_heartbeat;

    char k_jobs[100], k_dead[100], k_events[100], k_parked[100], k_control[100], k_worker[200];
    char gmax[24], ttl[24];
    char sweep_cursor[64]; /* XAUTOCLAIM's cursor: the sweep walks the whole PEL over time */

    struct ejob *jobs;
    int inflight;
    int reading;
    int group_ready;
    int group_creating;
    int stopping;
    int forcing;      /* grace is over: stages were asked to stop */
    int conns_closed; /* Redis connections closed: writes can no longer land */
    int finished;     /* engine handles closing */
    int handles;
    int cmds; /* engine-level commands in flight (callbacks refer to the engine) */
    long long started_ms;

    char *secrets_buf;
    const char *secrets[MAX_SECRETS];
    size_t n_secrets;
    char *hosts_buf;
    const char *hosts[32];
    size_t n_hosts;

    uv_timer_t hb_timer, sweep_timer, worker_timer, grace_timer, retry_timer;
};

void dm_engine_observe(struct dm_engine *e, struct dm_metrics *metrics,
                       struct dm_callbacks *callbacks)
{
    e->metrics = metrics;
    e->callbacks = callbacks;
}

/* POSTs an event to the job's callbackUrl; never blocks or fails the job. */
static void post_callback(struct dm_engine *e, const struct dm_job *job, const char *ev, size_t len)
{
    struct dm_error err;
    if (!e->callbacks || !job->req || !job->req->callback_url || !ev || !len) {
        return;
    }
    if (dm_callback_post(e->callbacks, job->req->callback_url, ev, len, &err)) {
        dm_warn("engine", job->id, "callback not queued: %s", err.msg);
    }
}

static void update_readiness(struct dm_engine *e)
{
    dm_metrics_set_ready(e->metrics, dm_engine_ready(e));
}

static void read_more(struct dm_engine *e);
static void pump(struct ejob *ej);
static void ejob_maybe_release(struct ejob *ej);
static void maybe_finish_stop(struct dm_engine *e);

/* ---- small helpers ---- */

static long long now_ms(void)
{
    return dm_time_now_ms();
}

static void format_ms(char *buf, size_t n, long long v)
{
    snprintf(buf, n, "%lld", v);
}

static int split_list(char *buf, const char **out, size_t max)
{
    size_t n = 0;
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t && n < max; t = strtok_r(NULL, ",", &save)) {
        while (*t == ' ') {
            t++;
        }
        if (*t) {
            out[n++] = t;
        }
    }
    return (int)n;
}

uv_loop_t *dm_engine_loop(const struct dm_engine *e)
{
    return e->loop;
}

struct dm_engine *dm_job_engine(const struct dm_job *job)
{
    return job->engine;
}

const struct dm_config *dm_engine_config(const struct dm_engine *e)
{
    return e->cfg;
}

int dm_engine_inflight(const struct dm_engine *e)
{
    return e->inflight;
}

int dm_engine_ready(const struct dm_engine *e)
{
    return !e->stopping && dm_redis_is_up(e->reader) && dm_redis_is_up(e->cmd) &&
           dm_redis_is_up(e->sub);
}

unsigned long dm_engine_reconnects(const struct dm_engine *e)
{
    return dm_redis_reconnects(e->reader) + dm_redis_reconnects(e->cmd) +
           dm_redis_reconnects(e->sub);
}

/* ---- jobs: allocation and release ---- */

static void on_ejob_handle_closed(uv_handle_t *h)
{
    struct ejob *ej = h->data;
    struct dm_engine *e = ej->eng;

    if (--ej->handles > 0) {
        return;
    }
    if (ej->prev) {
        ej->prev->next = ej->next;
    } else {
        e->jobs = ej->next;
    }
    if (ej->next) {
        ej->next->prev = ej->prev;
    }
    if (ej->job.final_status) {
        static const struct {
            const char *status;
            enum dm_metric_job metric;
        } map[] = {{"complete", DM_METRIC_JOB_COMPLETE},
                   {"failed", DM_METRIC_JOB_FAILED},
                   {"cancelled", DM_METRIC_JOB_CANCELLED},
                   {"paused_approval", DM_METRIC_JOB_PARKED}};
        for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
            if (strcmp(ej->job.final_status, map[i].status) == 0) {
                dm_metrics_job_finished(e->metrics, map[i].metric);
            }
        }
    }
    dm_job_clear(&ej->job);
    free(ej);
    e->inflight--;
    dm_metrics_set_jobs_in_flight(e->metrics, e->inflight);
    if (e->stopping) {
        maybe_finish_stop(e);
    } else {
        read_more(e);
    }
}

static struct ejob *ejob_new(struct dm_engine *e, const char *entry, const char *job_id)
{
    struct ejob *ej = calloc(1, sizeof(*ej));
    const char *p = e->cfg->prefix;

    if (!ej) {
        return NULL;
    }
    dm_job_init(&ej->job, e->stages, &e->io, e);
    snprintf(ej->job.id, sizeof(ej->job.id), "%s", job_id);
    snprintf(ej->job.entry, sizeof(ej->job.entry), "%s", entry);
    snprintf(ej->k_hash, sizeof(ej->k_hash), "%s:job:%s", p, job_id);
    snprintf(ej->k_events, sizeof(ej->k_events), "%s:job:%s:events", p, job_id);
    snprintf(ej->k_files, sizeof(ej->k_files), "%s:job:%s:files", p, job_id);
    ej->eng = e;
    uv_timer_init(e->loop, &ej->after_timer);
    uv_timer_init(e->loop, &ej->write_timer);
    uv_timer_init(e->loop, &ej->deadline_timer);
    ej->after_timer.data = ej;
    ej->write_timer.data = ej;
    ej->deadline_timer.data = ej;
    ej->handles = 3;
    ej->job.stage_timeout_ms = (long)e->cfg->stage_timeout_ms;
    ej->job.stopping = e->stopping;
    ej->next = e->jobs;
    if (e->jobs) {
        e->jobs->prev = ej;
    }
    e->jobs = ej;
    e->inflight++;
    dm_metrics_set_jobs_in_flight(e->metrics, e->inflight);
    return ej;
}

static void wreq_free(struct wreq *w)
{
    for (int i = 0; i < w->argc; i++) {
        free(w->argv[i]);
    }
    free(w->argv);
    free(w->lens);
    free(w);
}

/* Drops queued writes (their callbacks see rc); used when fenced or shutting down hard. */
static void drop_writes(struct ejob *ej, int rc)
{
    while (ej->wq_head && !ej->writing) {
        struct wreq *w = ej->wq_head;
        ej->wq_head = w->next;
        if (!ej->wq_head) {
            ej->wq_tail = NULL;
        }
        if (w->done) {
            w->done(&ej->job, rc, 0);
        }
        wreq_free(w);
    }
}

static void ejob_maybe_release(struct ejob *ej)
{
    if (ej->closing || !ej->job.over || ej->writing || ej->starting || ej->reads || ej->wq_head) {
        return;
    }
    ej->closing = 1;
    uv_timer_stop(&ej->after_timer);
    uv_timer_stop(&ej->write_timer);
    uv_timer_stop(&ej->deadline_timer);
    uv_close((uv_handle_t *)&ej->after_timer, on_ejob_handle_closed);
    uv_close((uv_handle_t *)&ej->write_timer, on_ejob_handle_closed);
    uv_close((uv_handle_t *)&ej->deadline_timer, on_ejob_handle_closed);
}

/* ---- the io table given to the state machine ---- */

static int io_write(struct dm_job *job, const struct dm_job_write *w, dm_job_write_cb done)
{
    struct ejob *ej = (struct ejob *)job;
    struct dm_engine *e = ej->eng;
    struct wreq *r;
    struct dm_buf extra;
    char epoch[24], opid[48], now[24], ts[32];
    const char *fixed[24];
    size_t fixed_len[24];
    int nfixed = 0;
    int argc;

    if (job->fenced) {
        return DM_ERR_FENCED;
    }
    dm_buf_init(&extra, 1 << 20);
    if (dm_event_extra_append(&extra, w->extra)) {
        dm_buf_free(&extra);
        return DM_ERR_NOMEM;
    }
    format_ms(epoch, sizeof(epoch), job->epoch);
    snprintf(opid, sizeof(opid), "%lld:%lu", job->epoch, ++ej->opseq);
    format_ms(now, sizeof(now), now_ms());
    dm_time_rfc3339(-1, ts, sizeof(ts));

#define ARG(s) (fixed[nfixed] = (s), fixed_len[nfixed] = strlen(fixed[nfixed]), nfixed++)
    ARG(ej->k_hash);
    ARG(ej->k_events);
    ARG(e->k_events);
    ARG(e->k_jobs);
    ARG(e->k_parked);
    ARG(ej->k_files);
    ARG(epoch);
    ARG(opid);
    ARG(w->status ? w->status : "");
    ARG(w->message ? w->message : "");
    ARG(extra.data ? extra.data : "");
    ARG(ts);
    ARG(e->cfg->consumer);
    ARG(w->flags ? w->flags : "");
    ARG(job->entry);
    ARG(GROUP);
    ARG(e->gmax);
    ARG(e->k_events);
    ARG(e->ttl);
    ARG(JOB_EVENTS_MAXLEN);
    ARG(now);
    ARG(job->id);
    ARG(w->file_path ? w->file_path : "");
#undef ARG
    fixed[nfixed] = w->file_content ? w->file_content : "";
    fixed_len[nfixed] = w->file_content ? w->file_len : 0;
    nfixed++;

    argc = nfixed + (int)w->n_fields;
    r = calloc(1, sizeof(*r));
    if (!r || !(r->argv = calloc((size_t)argc, sizeof(char *))) ||
        !(r->lens = calloc((size_t)argc, sizeof(size_t)))) {
        if (r) {
            free(r->argv);
            free(r);
        }
        dm_buf_free(&extra);
        return DM_ERR_NOMEM;
    }
    r->argc = argc;
    r->done = done;
    for (int i = 0; i < argc; i++) {
        const char *s = i < nfixed ? fixed[i] : w->fields[i - nfixed];
        size_t n = i < nfixed ? fixed_len[i] : strlen(s);
        r->argv[i] = malloc(n + 1);
        if (!r->argv[i]) {
            r->argc = i;
            wreq_free(r);
            dm_buf_free(&extra);
            return DM_ERR_NOMEM;
        }
        memcpy(r->argv[i], s, n);
        r->argv[i][n] = '\0';
        r->lens[i] = n;
    }
    dm_buf_free(&extra);
    if (ej->wq_tail) {
        ej->wq_tail->next = r;
    } else {
        ej->wq_head = r;
    }
    ej->wq_tail = r;
    pump(ej);
    return 0;
}

static void on_write_timer(uv_timer_t *t)
{
    pump(t->data);
}

static void on_write_reply(void *arg, redisReply *reply, const char *why)
{
    struct ejob *ej = arg;
    struct dm_engine *e = ej->eng;
    struct wreq *w = ej->wq_head;
    int rc = 0;
    int cancel = 0;

    ej->writing = 0;
    if (!reply) {
        if (e->conns_closed) {
            /* Shutting down without Redis: the write is lost, the entry stays pending and the
             * job is taken over after the lease. */
            drop_writes(ej, DM_ERR_UNAVAILABLE);
            ejob_maybe_release(ej);
            return;
        }
        dm_warn("engine", ej->job.id, "write interrupted (%s); retrying when Redis is back", why);
        uv_timer_start(&ej->write_timer, on_write_timer, 250, 0);
        return;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        if (strncmp(reply->str, "FENCED", 6) == 0) {
            dm_warn("engine", ej->job.id, "write refused: %s", reply->str);
            rc = DM_ERR_FENCED;
        } else if (strncmp(reply->str, "OOM", 3) == 0 || strncmp(reply->str, "BUSY", 4) == 0 ||
                   strncmp(reply->str, "LOADING", 7) == 0 ||
                   strncmp(reply->str, "READONLY", 8) == 0 ||
                   strncmp(reply->str, "MASTERDOWN", 10) == 0 ||
                   strncmp(reply->str, "TRYAGAIN", 8) == 0 ||
                   strncmp(reply->str, "MISCONF", 7) == 0) {
            /* Redis is busy or failing over: the same op (idempotent) again shortly. */
            dm_warn("engine", ej->job.id, "write deferred: %s", reply->str);
            uv_timer_start(&ej->write_timer, on_write_timer, 500, 0);
            return;
        } else {
            dm_errorf("engine", ej->job.id, "write failed: %s", reply->str);
            rc = DM_ERR_IO;
        }
    } else if (reply->type == REDIS_REPLY_ARRAY && reply->elements >= 2 &&
               reply->element[1]->type == REDIS_REPLY_STRING) {
        cancel = strcmp(reply->element[1]->str, "1") == 0;
        if (reply->elements >= 3 && reply->element[2]->type == REDIS_REPLY_STRING) {
            post_callback(e, &ej->job, reply->element[2]->str, reply->element[2]->len);
        }
    }
    ej->wq_head = w->next;
    if (!ej->wq_head) {
        ej->wq_tail = NULL;
    }
    if (rc == DM_ERR_FENCED) {
        ej->job.fenced = 1;
    }
    if (w->done) {
        w->done(&ej->job, rc, cancel);
    }
    wreq_free(w);
    if (ej->job.fenced) {
        drop_writes(ej, DM_ERR_FENCED);
    }
    pump(ej);
    ejob_maybe_release(ej);
}

static void pump(struct ejob *ej)
{
    struct dm_engine *e = ej->eng;
    struct wreq *w = ej->wq_head;
    int rc;

    if (ej->writing || !w) {
        return;
    }
    if (e->conns_closed) {
        drop_writes(ej, DM_ERR_UNAVAILABLE);
        ejob_maybe_release(ej);
        return;
    }
    rc = dm_redis_eval(e->cmd, &e->s_transition, on_write_reply, ej, 6, w->argc,
                       (const char **)w->argv, w->lens);
    if (rc) {
        /* Not connected: try again shortly (the op id makes the retry idempotent). */
        uv_timer_start(&ej->write_timer, on_write_timer, 250, 0);
        return;
    }
    ej->writing = 1;
}

static void on_after_timer(uv_timer_t *t)
{
    struct ejob *ej = t->data;
    void (*fn)(struct dm_job *) = ej->after_fn;
    ej->after_fn = NULL;
    if (fn) {
        fn(&ej->job);
    }
}

static int io_after(struct dm_job *job, long ms, void (*fn)(struct dm_job *job))
{
    struct ejob *ej = (struct ejob *)job;
    if (ej->closing) {
        return DM_ERR_UNAVAILABLE;
    }
    ej->after_fn = fn;
    return uv_timer_start(&ej->after_timer, on_after_timer, (uint64_t)(ms < 0 ? 0 : ms), 0)
               ? DM_ERR_IO
               : 0;
}

struct files_read {
    struct ejob *ej;
    void (*done)(struct dm_job *job, int rc, size_t n, const char *const *paths,
                 const char *const *contents, const size_t *lens);
};

static void on_files_reply(void *arg, redisReply *reply, const char *why)
{
    struct files_read *fr = arg;
    struct ejob *ej = fr->ej;
    size_t n = 0;
    const char **paths = NULL, **contents = NULL;
    size_t *lens = NULL;
    int rc = 0;

    (void)why;
    ej->reads--;
    if (!reply || reply->type != REDIS_REPLY_ARRAY) {
        rc = reply ? DM_ERR_IO : DM_ERR_UNAVAILABLE;
    } else {
        n = reply->elements / 2;
        paths = calloc(n + 1, sizeof(char *));
        contents = calloc(n + 1, sizeof(char *));
        lens = calloc(n + 1, sizeof(size_t));
        if (!paths || !contents || !lens) {
            rc = DM_ERR_NOMEM;
            n = 0;
        }
        for (size_t i = 0; !rc && i < n; i++) {
            paths[i] = reply->element[2 * i]->str;
            contents[i] = reply->element[2 * i + 1]->str;
            lens[i] = reply->element[2 * i + 1]->len;
        }
    }
    /* Always reported: the stages count their work down even for a job that is over. */
    fr->done(&ej->job, rc, n, paths, contents, lens);
    free(paths);
    free(contents);
    free(lens);
    free(fr);
    ejob_maybe_release(ej);
}

static int io_read_files(struct dm_job *job,
                         void (*done)(struct dm_job *job, int rc, size_t n,
                                      const char *const *paths, const char *const *contents,
                                      const size_t *lens))
{
    struct ejob *ej = (struct ejob *)job;
    struct files_read *fr = calloc(1, sizeof(*fr));
    const char *argv[2] = {"HGETALL", ej->k_files};

    if (!fr) {
        return DM_ERR_NOMEM;
    }
    fr->ej = ej;
    fr->done = done;
    if (ej->eng->conns_closed ||
        dm_redis_cmdv(ej->eng->cmd, 0, on_files_reply, fr, 2, argv, NULL)) {
        free(fr);
        return DM_ERR_UNAVAILABLE;
    }
    /* The job is not freed while the read is in flight. */
    ej->reads++;
    return 0;
}

static void on_deadline_timer(uv_timer_t *t)
{
    struct ejob *ej = t->data;
    void (*fn)(struct dm_job *) = ej->deadline_fn;
    ej->deadline_fn = NULL;
    if (fn) {
        fn(&ej->job);
    }
}

static int io_deadline(struct dm_job *job, long ms, void (*fn)(struct dm_job *job))
{
    struct ejob *ej = (struct ejob *)job;
    if (ej->closing) {
        return DM_ERR_UNAVAILABLE;
    }
    if (ms <= 0) {
        ej->deadline_fn = NULL;
        uv_timer_stop(&ej->deadline_timer);
        return 0;
    }
    ej->deadline_fn = fn;
    return uv_timer_start(&ej->deadline_timer, on_deadline_timer, (uint64_t)ms, 0) ? DM_ERR_IO : 0;
}

static void io_over(struct dm_job *job)
{
    struct ejob *ej = (struct ejob *)job;
    uv_timer_stop(&ej->after_timer);
    ej->after_fn = NULL;
    ejob_maybe_release(ej);
}

/* ---- starting a delivered entry ---- */

static const char *reply_str(const redisReply *r, size_t i)
{
    if (r->type != REDIS_REPLY_ARRAY || i >= r->elements) {
        return "";
    }
    r = r->element[i];
    return r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS ? r->str : "";
}

static char *dup_or_null(const char *s)
{
    return s && *s ? strdup(s) : NULL;
}

static void on_start_reply(void *arg, redisReply *reply, const char *why)
{
    struct ejob *ej = arg;
    struct dm_job *job = &ej->job;
    const char *verdict;

    ej->starting = 0;
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements < 2) {
        if (reply && reply->type == REDIS_REPLY_ERROR) {
            dm_errorf("engine", job->id, "start of entry %s failed: %s", job->entry, reply->str);
        } else {
            dm_warn("engine", job->id, "start of entry %s interrupted (%s); it stays pending",
                    job->entry, why ? why : "bad reply");
        }
        job->over = 1;
        ejob_maybe_release(ej);
        return;
    }
    verdict = reply_str(reply, 0);
    if (strcmp(verdict, "dead") == 0) {
        dm_metrics_dead_lettered(ej->eng->metrics);
        dm_metrics_job_finished(ej->eng->metrics, DM_METRIC_JOB_DEAD_LETTERED);
    } else if (strcmp(verdict, "failed") == 0) {
        dm_metrics_job_finished(ej->eng->metrics, DM_METRIC_JOB_FAILED);
    }
    if (strcmp(verdict, "run") != 0) {
        dm_info("engine", job->id, "entry %s: %s (%s)", job->entry, verdict, reply_str(reply, 1));
        job->over = 1;
        ejob_maybe_release(ej);
        return;
    }
    job->epoch = atoll(reply_str(reply, 1));
    if (dm_stage_parse(&job->stage, reply_str(reply, 2))) {
        job->stage = DM_STAGE_PLAN;
    }
    job->attempts = atoi(reply_str(reply, 3));
    if (!job->job_json || !*job->job_json) {
        free(job->job_json);
        job->job_json = dup_or_null(reply_str(reply, 4));
    }
    job->plan_json = dup_or_null(reply_str(reply, 5));
    job->approved = strcmp(reply_str(reply, 6), "1") == 0;
    job->branch = dup_or_null(reply_str(reply, 7));
    job->pr_url = dup_or_null(reply_str(reply, 8));
    job->commit = dup_or_null(reply_str(reply, 9));
    job->cancel_requested = strcmp(reply_str(reply, 10), "1") == 0;
    job->created_ms = atoll(reply_str(reply, 11));
    job->tokens = atoll(reply_str(reply, 12));
    job->cost = atof(reply_str(reply, 13));
    if (!job->req && job->job_json) {
        struct dm_error err;
        struct dm_jobreq_opts opts = DM_JOBREQ_OPTS_INIT;
        /* The stored job passed intake: parse it under the same rules. */
        opts.http_hosts = ej->eng->hosts;
        opts.n_http_hosts = ej->eng->n_hosts;
        opts.trust_optional = 1;
        if (dm_jobreq_parse(&job->req, job->job_json, strlen(job->job_json), &opts, &err)) {
            char msg[DM_ERROR_MSG_MAX + 40];
            struct dm_event_extra x = {0};
            snprintf(msg, sizeof(msg), "stored job is unreadable: %s", err.msg);
            x.error = msg;
            dm_job_finish(job, "failed", msg, &x);
            return;
        }
    }
    if (!job->req) {
        struct dm_event_extra x = {0};
        x.error = "no job stored for this id";
        dm_job_finish(job, "failed", x.error, &x);
        return;
    }
    job->dry_run = job->req->trust_set && job->req->trust == DM_TRUST_PLANNER;
    snprintf(job->review, sizeof(job->review), "%s", reply_str(reply, 15));
    if (reply->elements >= 15 && reply->element[14]->type == REDIS_REPLY_STRING) {
        post_callback(ej->eng, job, reply->element[14]->str, reply->element[14]->len);
    }
    dm_info("engine", job->id, "running entry %s at stage %s (attempt %d, epoch %lld)", job->entry,
            dm_stage_name(job->stage), job->attempts, job->epoch);
    dm_job_dispatch(job);
}

static void on_dead_reply(void *arg, redisReply *reply, const char *why)
{
    struct dm_engine *e = arg;
    e->cmds--;
    if (!reply || reply->type == REDIS_REPLY_ERROR) {
        dm_warn("engine", NULL, "dead letter not written (%s); the entry stays pending",
                reply ? reply->str : why);
    }
    maybe_finish_stop(e);
}

static void dead_letter(struct dm_engine *e, const char *entry, const char *raw, size_t raw_len,
                        const char *reason)
{
    char ts[32];
    const char *args[9];
    size_t lens[9];
    /* A dead letter keeps the entry's job so it can be requeued, up to a cap. */
    size_t cap = raw_len > (1u << 20) ? (1u << 20) : raw_len;

    dm_warn("engine", NULL, "entry %s dead-lettered: %s", entry, reason);
    dm_metrics_dead_lettered(e->metrics);
    dm_time_rfc3339(-1, ts, sizeof(ts));
    args[0] = e->k_dead;
    args[1] = e->k_jobs;
    args[2] = entry;
    args[3] = GROUP;
    args[4] = raw ? raw : "";
    args[5] = reason;
    args[6] = "1";
    args[7] = ts;
    args[8] = e->gmax; /* the same cap as the START script's dead letters */
    for (int i = 0; i < 9; i++) {
        lens[i] = strlen(args[i]);
    }
    lens[4] = raw ? cap : 0;
    if (dm_redis_eval(e->cmd, &e->s_dead, on_dead_reply, e, 2, 9, args, lens) == 0) {
        e->cmds++;
    }
}

static void start_job(struct dm_engine *e, const char *entry, const char *mode,
                      struct dm_intake *in)
{
    struct ejob *ej = ejob_new(e, entry, in->job_id);
    char ts[32], now[24], maxatt[16];
    const char *args[21];
    size_t lens[21];
    const char *invalid = in->kind == DM_INTAKE_INVALID ? in->reason : "";
    const char *json = in->job_json ? in->job_json : "";

    if (!ej) {
        dm_errorf("engine", in->job_id, "out of memory; entry %s stays pending", entry);
        return;
    }
    snprintf(ej->mode, sizeof(ej->mode), "%s", mode);
    /* The parsed job moves into the job. */
    ej->job.req = in->req;
    in->req = NULL;
    ej->job.job_json = in->job_json;
    in->job_json = NULL;
    dm_time_rfc3339(-1, ts, sizeof(ts));
    format_ms(now, sizeof(now), now_ms());
    snprintf(maxatt, sizeof(maxatt), "%lld", e->cfg->max_attempts);
    args[0] = ej->k_hash;
    args[1] = ej->k_events;
    args[2] = e->k_events;
    args[3] = e->k_jobs;
    args[4] = e->k_parked;
    args[5] = e->k_dead;
    args[6] = ej->k_files;
    args[7] = entry;
    args[8] = e->cfg->consumer;
    args[9] = GROUP;
    args[10] = ts;
    args[11] = now;
    args[12] = ej->job.job_json ? ej->job.job_json : json;
    args[13] = invalid;
    args[14] = e->gmax;
    args[15] = e->k_events;
    args[16] = e->ttl;
    args[17] = maxatt;
    args[18] = mode;
    args[19] = in->job_id;
    args[20] = JOB_EVENTS_MAXLEN;
    for (int i = 0; i < 21; i++) {
        lens[i] = strlen(args[i]);
    }
    if (dm_redis_eval(e->cmd, &e->s_start, on_start_reply, ej, 7, 21, args, lens)) {
        dm_warn("engine", in->job_id, "Redis unavailable; entry %s stays pending", entry);
        ej->job.over = 1;
        ejob_maybe_release(ej);
        return;
    }
    ej->starting = 1;
}

static const redisReply *field(const redisReply *fields, const char *name)
{
    for (size_t i = 0; fields && i + 1 < fields->elements; i += 2) {
        const redisReply *k = fields->element[i];
        if (k->type == REDIS_REPLY_STRING && strcmp(k->str, name) == 0 &&
            fields->element[i + 1]->type == REDIS_REPLY_STRING) {
            return fields->element[i + 1];
        }
    }
    return NULL;
}

/* One entry: [id, [field, value, ...]] (fields nil when the entry was deleted). */
static void handle_entry(struct dm_engine *e, const redisReply *entry, int claimed)
{
    const redisReply *fields;
    const redisReply *f;
    struct dm_entry_fields ef;
    struct dm_intake in;
    struct dm_intake_policy pol;
    const char *id;

    if (entry->type != REDIS_REPLY_ARRAY || entry->elements < 2 ||
        entry->element[0]->type != REDIS_REPLY_STRING) {
        return;
    }
    id = entry->element[0]->str;
    fields = entry->element[1];
    if (fields->type != REDIS_REPLY_ARRAY) {
        dead_letter(e, id, NULL, 0, "entry was deleted from the stream");
        return;
    }
    memset(&ef, 0, sizeof(ef));
    if ((f = field(fields, "type"))) {
        ef.type = f->str;
    }
    if ((f = field(fields, "job"))) {
        ef.job = f->str;
        ef.job_len = f->len;
    }
    if ((f = field(fields, "token"))) {
        ef.token = f->str;
        ef.token_len = f->len;
    }
    if ((f = field(fields, "id"))) {
        ef.id = f->str;
    }
    memset(&pol, 0, sizeof(pol));
    pol.secrets = e->secrets;
    pol.n_secrets = e->n_secrets;
    pol.issuer = e->cfg->jwt_issuer;
    pol.http_hosts = e->hosts;
    pol.n_http_hosts = e->n_hosts;
    /* A first delivery is checked against the clock; a reclaimed one against the time it was
     * enqueued (its id), so a job taken over from a dead replica is not failed for a token
     * that expired while it was being built. */
    pol.now_s = claimed ? atoll(id) / 1000 : now_ms() / 1000;
    if (dm_intake_classify(&in, &ef, &pol)) {
        dm_errorf("engine", NULL, "out of memory classifying entry %s; it stays pending", id);
        return;
    }
    switch (in.kind) {
    case DM_INTAKE_DEAD:
        dead_letter(e, id, ef.job, ef.job_len, in.reason);
        break;
    case DM_INTAKE_RESUME:
        start_job(e, id, "resume", &in);
        break;
    case DM_INTAKE_INVALID:
    case DM_INTAKE_BUILD:
        start_job(e, id, claimed ? "claim" : "new", &in);
        break;
    }
    dm_intake_clear(&in);
}

/* ---- reading ---- */

static void ensure_group(struct dm_engine *e);

static void on_retry_timer(uv_timer_t *t)
{
    struct dm_engine *e = t->data;
    if (!e->group_ready) {
        ensure_group(e);
    }
    read_more(e);
}

static void on_group_created(void *arg, redisReply *reply, const char *why)
{
    struct dm_engine *e = arg;
    e->cmds--;
    e->group_creating = 0;
    if (reply && (reply->type != REDIS_REPLY_ERROR || strncmp(reply->str, "BUSYGROUP", 9) == 0)) {
        e->group_ready = 1;
        read_more(e);
    } else {
        dm_warn("engine", NULL, "cannot create consumer group: %s; trying again in 1 s",
                reply ? reply->str : (why ? why : "?"));
        if (reply && !e->finished) {
            uv_timer_start(&e->retry_timer, on_retry_timer, 1000, 0);
        }
    }
    maybe_finish_stop(e);
}

static void ensure_group(struct dm_engine *e)
{
    if (e->group_creating || e->stopping) {
        return;
    }
    /* From "0": entries added before any worker existed are still served. */
    if (dm_redis_cmdf(e->cmd, on_group_created, e, "XGROUP CREATE %s %s 0 MKSTREAM", e->k_jobs,
                      GROUP) == 0) {
        e->group_creating = 1;
        e->cmds++;
    }
}

static void on_read_reply(void *arg, redisReply *reply, const char *why)
{
    struct dm_engine *e = arg;

    (void)why;
    e->reading = 0;
    if (!reply) {
        maybe_finish_stop(e);
        return; /* the reader's `up` callback reads again */
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        if (strncmp(reply->str, "NOGROUP", 7) == 0) {
            /* A Redis that lost its data lost the group too. */
            e->group_ready = 0;
            ensure_group(e);
        } else {
            /* READONLY after a failover, MISCONF...: read again after a pause, never stop. */
            dm_errorf("engine", NULL, "XREADGROUP failed: %s; reading again in 1 s", reply->str);
            if (!e->finished) {
                uv_timer_start(&e->retry_timer, on_retry_timer, 1000, 0);
            }
        }
        return;
    }
    if (reply->type == REDIS_REPLY_ARRAY) {
        for (size_t s = 0; s < reply->elements; s++) {
            const redisReply *stream = reply->element[s];
            if (stream->type != REDIS_REPLY_ARRAY || stream->elements < 2) {
                continue;
            }
            for (size_t i = 0; i < stream->element[1]->elements; i++) {
                handle_entry(e, stream->element[1]->element[i], 0);
            }
        }
    }
    read_more(e);
}

static void read_more(struct dm_engine *e)
{
    char count[16], block[16];
    const char *argv[10];
    int free_slots;

    if (e->reading || e->stopping || !e->group_ready || !dm_redis_is_up(e->reader) ||
        !dm_redis_is_up(e->cmd)) {
        return;
    }
    free_slots = (int)e->cfg->max_jobs - e->inflight;
    if (free_slots <= 0) {
        return; /* resumed when a job ends */
    }
    snprintf(count, sizeof(count), "%d", free_slots);
    snprintf(block, sizeof(block), "%d", BLOCK_MS);
    argv[0] = "XREADGROUP";
    argv[1] = "GROUP";
    argv[2] = GROUP;
    argv[3] = e->cfg->consumer;
    argv[4] = "COUNT";
    argv[5] = count;
    argv[6] = "BLOCK";
    argv[7] = block;
    argv[8] = "STREAMS";
    argv[9] = e->k_jobs;
    {
        const char *full[11];
        memcpy(full, argv, sizeof(argv));
        full[10] = ">";
        if (dm_redis_cmdv(e->reader, BLOCK_MS, on_read_reply, e, 11, full, NULL) == 0) {
            e->reading = 1;
        }
    }
}

/* ---- leases ---- */

static void on_heartbeat_reply(void *arg, redisReply *reply, const char *why)
{
    struct dm_engine *e = arg;

    (void)why;
    e->cmds--;
    if (reply && reply->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < reply->elements; i++) {
            const char *lost = reply->element[i]->str;
            for (struct ejob *ej = e->jobs; ej; ej = ej->next) {
                if (!ej->job.over && !ej->starting && strcmp(ej->job.entry, lost) == 0) {
                    dm_warn("engine", ej->job.id,
                            "entry %s was taken over by another replica; dropping the job", lost);
                    ej->job.fenced = 1;
                    if (ej->job.running && e->stages->cancel) {
                        e->stages->cancel(&ej->job);
                    }
                }
            }
        }
    } else if (reply && reply->type == REDIS_REPLY_ERROR) {
        dm_warn("engine", NULL, "heartbeat failed: %s", reply->str);
    }
    maybe_finish_stop(e);
}

static void on_hb_timer(uv_timer_t *t)
{
    struct dm_engine *e = t->data;
    const char **args;
    int n = 0;

    if (!e->jobs || !dm_redis_is_up(e->cmd)) {
        return;
    }
    args = calloc((size_t)e->inflight + 3, sizeof(char *));
    if (!args) {
        return;
    }
    args[n++] = e->k_jobs;
    args[n++] = GROUP;
    args[n++] = e->cfg->consumer;
    for (struct ejob *ej = e->jobs; ej && n < e->inflight + 3; ej = ej->next) {
        if (!ej->job.over && !ej->starting && !ej->job.fenced) {
            args[n++] = ej->job.entry;
        }
    }
    if (n > 3 &&
        dm_redis_eval(e->cmd, &e->s_heartbeat, on_heartbeat_reply, e, 1, n, args, NULL) == 0) {
        e->cmds++;
    }
    free(args);
}

static void on_sweep_reply(void *arg, redisReply *reply, const char *why)
{
    struct dm_engine *e = arg;

    (void)why;
    e->cmds--;
    if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements >= 2 &&
        reply->element[0]->type == REDIS_REPLY_STRING) {
        snprintf(e->sweep_cursor, sizeof(e->sweep_cursor), "%s", reply->element[0]->str);
    }
    if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements >= 2 &&
        reply->element[1]->type == REDIS_REPLY_ARRAY && !e->stopping) {
        const redisReply *entries = reply->element[1];
        if (entries->elements) {
            dm_info("engine", NULL, "reclaimed %zu entries idle past the lease", entries->elements);
        }
        for (size_t i = 0; i < entries->elements; i++) {
            handle_entry(e, entries->element[i], 1);
        }
        /* Redis 7 lists entries deleted while pending: acknowledge them. */
        if (reply->elements >= 3 && reply->element[2]->type == REDIS_REPLY_ARRAY) {
            for (size_t i = 0; i < reply->element[2]->elements; i++) {
                dead_letter(e, reply->element[2]->element[i]->str, NULL, 0,
                            "entry was deleted from the stream while pending");
            }
        }
    } else if (reply && reply->type == REDIS_REPLY_ERROR &&
               strncmp(reply->str, "NOGROUP", 7) == 0) {
        e->group_ready = 0;
        ensure_group(e);
    }
    maybe_finish_stop(e);
}

static void on_sweep_timer(uv_timer_t *t)
{
    struct dm_engine *e = t->data;
    int free_slots = (int)e->cfg->max_jobs - e->inflight;
    char count[16], idle[24];

    if (e->stopping || free_slots <= 0 || !e->group_ready || !dm_redis_is_up(e->cmd)) {
        return;
    }
    snprintf(count, sizeof(count), "%d", free_slots);
    snprintf(idle, sizeof(idle), "%lld", e->cfg->lease_ms);
    if (dm_redis_cmdf(e->cmd, on_sweep_reply, e, "XAUTOCLAIM %s %s %s %s %s COUNT %s", e->k_jobs,
                      GROUP, e->cfg->consumer, idle, e->sweep_cursor[0] ? e->sweep_cursor : "0-0",
                      count) == 0) {
        e->cmds++;
    }
}

/* ---- worker heartbeat ---- */

static void on_simple_reply(void *arg, redisReply *reply, const char *why)
{
    struct dm_engine *e = arg;
    (void)reply;
    (void)why;
    e->cmds--;
    maybe_finish_stop(e);
}

static long long reply_field_int(const redisReply *flat, const char *name)
{
    for (size_t i = 0; flat && flat->type == REDIS_REPLY_ARRAY && i + 1 < flat->elements; i += 2) {
        const redisReply *k = flat->element[i];
        const redisReply *v = flat->element[i + 1];
        if (k->type == REDIS_REPLY_STRING && strcmp(k->str, name) == 0) {
            return v->type == REDIS_REPLY_INTEGER ? v->integer : -1;
        }
    }
    return -1;
}

static void on_groups_reply(void *arg, redisReply *reply, const char *why)
{
    struct dm_engine *e = arg;
    (void)why;
    e->cmds--;
    for (size_t i = 0; reply && reply->type == REDIS_REPLY_ARRAY && i < reply->elements; i++) {
        const redisReply *g = reply->element[i];
        for (size_t k = 0; g->type == REDIS_REPLY_ARRAY && k + 1 < g->elements; k += 2) {
            if (g->element[k]->type == REDIS_REPLY_STRING &&
                strcmp(g->element[k]->str, "name") == 0 &&
                g->element[k + 1]->type == REDIS_REPLY_STRING &&
                strcmp(g->element[k + 1]->str, GROUP) == 0) {
                dm_metrics_set_group(e->metrics, reply_field_int(g, "lag"),
                                     reply_field_int(g, "pending"));
            }
        }
    }
    maybe_finish_stop(e);
}

static long worker_interval(const struct dm_engine *e)
{
    long v = (long)(e->cfg->lease_ms / 3);
    return v > 5000 ? 5000 : v;
}

static void on_worker_timer(uv_timer_t *t)
{
    struct dm_engine *e = t->data;
    char ts[32], inflight[16], ttl[24], started[32];

    if (!dm_redis_is_up(e->cmd)) {
        return;
    }
    dm_time_rfc3339(-1, ts, sizeof(ts));
    snprintf(inflight, sizeof(inflight), "%d", e->inflight);
    snprintf(ttl, sizeof(ttl), "%ld", worker_interval(e) * 3);
    dm_time_rfc3339(e->started_ms, started, sizeof(started));
    if (dm_redis_cmdf(e->cmd, on_simple_reply, e,
                      "HSET %s ts %s version %s started %s jobs %s max_jobs %lld stopping %d",
                      e->k_worker, ts, DREAM_VERSION, started, inflight, e->cfg->max_jobs,
                      e->stopping) == 0) {
        e->cmds++;
    }
    if (dm_redis_cmdf(e->cmd, on_simple_reply, e, "PEXPIRE %s %s", e->k_worker, ttl) == 0) {
        e->cmds++;
    }
    if (e->metrics &&
        dm_redis_cmdf(e->cmd, on_groups_reply, e, "XINFO GROUPS %s", e->k_jobs) == 0) {
        e->cmds++;
    }
    update_readiness(e);
}

/* ---- connections ---- */

static void on_conn_down(struct dm_redis_conn *c, void *arg, const char *why)
{
    struct dm_engine *e = arg;
    (void)c;
    (void)why;
    dm_metrics_redis_reconnected(e->metrics);
    update_readiness(e);
}

static void on_conn_up(struct dm_redis_conn *c, void *arg)
{
    struct dm_engine *e = arg;
    update_readiness(e);
    if (c == e->cmd) {
        ensure_group(e);
        on_worker_timer(&e->worker_timer);
    }
    read_more(e);
}

static void on_control(void *arg, const char *channel, const char *msg, size_t len)
{
    struct dm_engine *e = arg;
    const char *key = "\"cancel\":\"";
    const char *p;
    char id[DM_JOBREQ_ID_MAX + 1];
    size_t n = 0;

    (void)channel;
    (void)len;
    p = strstr(msg, key);
    if (!p) {
        return;
    }
    p += strlen(key);
    while (p[n] && p[n] != '"' && n < sizeof(id) - 1) {
        id[n] = p[n];
        n++;
    }
    id[n] = '\0';
    for (struct ejob *ej = e->jobs; ej; ej = ej->next) {
        if (!ej->job.over && strcmp(ej->job.id, id) == 0) {
            dm_info("engine", id, "cancel requested");
            dm_job_request_cancel(&ej->job);
        }
    }
}

/* ---- start and stop ---- */

static void on_engine_handle_closed(uv_handle_t *h)
{
    struct dm_engine *e = h->data;
    if (--e->handles > 0) {
        return;
    }
    free(e->secrets_buf);
    free(e->hosts_buf);
    if (e->stopped) {
        e->stopped(e, e->arg);
    }
    free(e);
}

static void close_conns(struct dm_engine *e)
{
    struct dm_redis_conn *r = e->reader, *c = e->cmd, *s = e->sub;

    if (e->conns_closed) {
        return;
    }
    e->conns_closed = 1;
    e->reader = e->cmd = e->sub = NULL;
    e->reading = 0;
    /* In-flight commands get their callbacks (reply NULL) inside these closes, or right after
     * the hiredis callback we may be in returns. */
    dm_redis_close(r);
    dm_redis_close(c);
    dm_redis_close(s);
}

static void maybe_finish_stop(struct dm_engine *e)
{
    if (!e->stopping || e->finished || e->jobs || e->reading) {
        return;
    }
    e->finished = 1;
    dm_info("engine", NULL, "stopped: no job in flight");
    uv_timer_stop(&e->hb_timer);
    uv_timer_stop(&e->sweep_timer);
    uv_timer_stop(&e->worker_timer);
    uv_timer_stop(&e->grace_timer);
    uv_timer_stop(&e->retry_timer);
    close_conns(e);
    uv_close((uv_handle_t *)&e->retry_timer, on_engine_handle_closed);
    uv_close((uv_handle_t *)&e->hb_timer, on_engine_handle_closed);
    uv_close((uv_handle_t *)&e->sweep_timer, on_engine_handle_closed);
    uv_close((uv_handle_t *)&e->worker_timer, on_engine_handle_closed);
    uv_close((uv_handle_t *)&e->grace_timer, on_engine_handle_closed);
}

static void on_grace_timer(uv_timer_t *t)
{
    struct dm_engine *e = t->data;
    int n = 0;

    if (!e->forcing) {
        /* Ask running stages to stop; they report back and the jobs stay pending. */
        e->forcing = 1;
        for (struct ejob *ej = e->jobs; ej; ej = ej->next) {
            n++;
            if (ej->job.running && e->stages->cancel) {
                e->stages->cancel(&ej->job);
            }
        }
        if (n) {
            dm_warn("engine", NULL,
                    "shutdown grace over: interrupting %d jobs; they stay pending for another "
                    "replica",
                    n);
            uv_timer_start(&e->grace_timer, on_grace_timer, 1000, 0);
            return;
        }
    }
    /* Whatever still waits on Redis gives up now. */
    for (struct ejob *ej = e->jobs; ej; ej = ej->next) {
        ej->job.over = 1;
    }
    close_conns(e);
    for (struct ejob *ej = e->jobs; ej; ej = ej->next) {
        drop_writes(ej, DM_ERR_UNAVAILABLE);
        ejob_maybe_release(ej);
    }
    maybe_finish_stop(e);
}

void dm_engine_stop(struct dm_engine *e, int force)
{
    if (e->stopping) {
        if (force && !e->finished) {
            uv_timer_start(&e->grace_timer, on_grace_timer, 0, 0);
        }
        return;
    }
    e->stopping = 1;
    update_readiness(e);
    dm_info("engine", NULL, "stopping: %d jobs in flight, grace %lld ms", e->inflight,
            force ? 0LL : e->cfg->shutdown_grace_ms);
    for (struct ejob *ej = e->jobs; ej; ej = ej->next) {
        ej->job.stopping = 1;
    }
    /* The blocked read is abandoned with its connection. */
    dm_redis_close(e->reader);
    e->reader = NULL;
    e->reading = 0;
    maybe_finish_stop(e);
    if (e->finished) {
        return;
    }
    uv_timer_start(&e->grace_timer, on_grace_timer, force ? 0 : (uint64_t)e->cfg->shutdown_grace_ms,
                   0);
    maybe_finish_stop(e);
}

int dm_engine_start(struct dm_engine **out, uv_loop_t *loop, const struct dm_config *cfg,
                    const struct dm_stage_ops *stages, dm_engine_stopped_cb stopped, void *arg)
{
    struct dm_engine *e = calloc(1, sizeof(*e));
    static const char *channels[2];
    struct dm_redis_opts o;
    const char *p = cfg->prefix;
    long lease = (long)cfg->lease_ms;

    *out = NULL;
    if (!e) {
        return DM_ERR_NOMEM;
    }
    e->loop = loop;
    e->cfg = cfg;
    e->stages = stages;
    e->stopped = stopped;
    e->arg = arg;
    e->io.write = io_write;
    e->io.after = io_after;
    e->io.over = io_over;
    e->io.read_files = io_read_files;
    e->io.deadline = io_deadline;
    e->started_ms = now_ms();
    snprintf(e->k_jobs, sizeof(e->k_jobs), "%s:jobs", p);
    snprintf(e->k_dead, sizeof(e->k_dead), "%s:dead", p);
    snprintf(e->k_events, sizeof(e->k_events), "%s:events", p);
    snprintf(e->k_parked, sizeof(e->k_parked), "%s:parked", p);
    snprintf(e->k_control, sizeof(e->k_control), "%s:control", p);
    snprintf(e->k_worker, sizeof(e->k_worker), "%s:worker:%s", p, cfg->consumer);
    snprintf(e->gmax, sizeof(e->gmax), "%lld", cfg->events_maxlen);
    snprintf(e->ttl, sizeof(e->ttl), "%lld", cfg->job_ttl_s);
    if (cfg->signing_secrets && *cfg->signing_secrets) {
        e->secrets_buf = strdup(cfg->signing_secrets);
        if (e->secrets_buf) {
            e->n_secrets = (size_t)split_list(e->secrets_buf, e->secrets, MAX_SECRETS);
        }
    }
    if (cfg->callback_allow_http && *cfg->callback_allow_http) {
        e->hosts_buf = strdup(cfg->callback_allow_http);
        if (e->hosts_buf) {
            e->n_hosts = (size_t)split_list(e->hosts_buf, e->hosts, 32);
        }
    }

    e->s_start = (struct dm_redis_script){"start", dm_script_start, ""};
    e->s_transition = (struct dm_redis_script){"transition", dm_script_transition, ""};
    e->s_dead = (struct dm_redis_script){"dead", dm_script_dead, ""};
    e->s_heartbeat = (struct dm_redis_script){"heartbeat", dm_script_heartbeat, ""};
    dm_redis_script_init(&e->s_start);
    dm_redis_script_init(&e->s_transition);
    dm_redis_script_init(&e->s_dead);
    dm_redis_script_init(&e->s_heartbeat);

    uv_timer_init(loop, &e->hb_timer);
    uv_timer_init(loop, &e->sweep_timer);
    uv_timer_init(loop, &e->worker_timer);
    uv_timer_init(loop, &e->grace_timer);
    uv_timer_init(loop, &e->retry_timer);
    e->hb_timer.data = e->sweep_timer.data = e->worker_timer.data = e->grace_timer.data = e;
    e->retry_timer.data = e;
    e->handles = 5;

    memset(&o, 0, sizeof(o));
    o.connect_timeout_ms = (long)cfg->redis_timeout_ms;
    o.up = on_conn_up;
    o.down = on_conn_down;
    o.arg = e;
    o.name = "reader";
    dm_redis_open(&e->reader, loop, &cfg->redis, &o);
    o.name = "commands";
    dm_redis_open(&e->cmd, loop, &cfg->redis, &o);
    dm_redis_add_script(e->cmd, &e->s_start);
    dm_redis_add_script(e->cmd, &e->s_transition);
    dm_redis_add_script(e->cmd, &e->s_dead);
    dm_redis_add_script(e->cmd, &e->s_heartbeat);
    o.name = "subscriber";
    channels[0] = e->k_control;
    channels[1] = NULL;
    o.channels = channels;
    o.message = on_control;
    dm_redis_open(&e->sub, loop, &cfg->redis, &o);
    if (!e->reader || !e->cmd || !e->sub) {
        dm_redis_close(e->reader);
        dm_redis_close(e->cmd);
        dm_redis_close(e->sub);
        e->stopping = 1;
        e->finished = 1;
        uv_close((uv_handle_t *)&e->retry_timer, on_engine_handle_closed);
        uv_close((uv_handle_t *)&e->hb_timer, on_engine_handle_closed);
        uv_close((uv_handle_t *)&e->sweep_timer, on_engine_handle_closed);
        uv_close((uv_handle_t *)&e->worker_timer, on_engine_handle_closed);
        uv_close((uv_handle_t *)&e->grace_timer, on_engine_handle_closed);
        return DM_ERR_NOMEM;
    }
    uv_timer_start(&e->hb_timer, on_hb_timer, (uint64_t)(lease / 3), (uint64_t)(lease / 3));
    uv_timer_start(&e->sweep_timer, on_sweep_timer, (uint64_t)(lease / 2), (uint64_t)(lease / 2));
    uv_timer_start(&e->worker_timer, on_worker_timer, (uint64_t)worker_interval(e),
                   (uint64_t)worker_interval(e));
    *out = e;
    return 0;
}
