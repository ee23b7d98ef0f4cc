/*
 * writes: the io table the engine gives to the job state machine and the stages (struct
 * dm_job_io). Owns each job's write queue: every write becomes one TRANSITION script call
 * (hash fields, file checkpoint, event, ack/park/unpark/TTL), fenced on the job's epoch and
 * idempotent by its op id, applied in order and retried across reconnects and busy replies.
 * Also the job's `after` timer, its checkpointed-file reads and the `over` notice. This is the
 * boundary where the state machine's write flags become the script's letters. Loop thread only.
 */
#include "engine_int.h"

#include "dream/core/error.h"
#include "dream/core/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void pump(struct ejob *ej);

/* The TRANSITION script's flags argument: one letter per enum dm_job_write_flag bit. */
static void flag_letters(char out[8], unsigned flags)
{
    static const struct {
        unsigned bit;
        char letter;
    } map[] = {{DM_JOB_WRITE_ACK, 'A'},
               {DM_JOB_WRITE_PARK, 'P'},
               {DM_JOB_WRITE_UNPARK, 'U'},
               {DM_JOB_WRITE_TERMINAL, 'T'}};
    size_t n = 0;

    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        if (flags & map[i].bit) {
            out[n++] = map[i].letter;
        }
    }
    out[n] = '\0';
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
void eng_drop_writes(struct ejob *ej, int rc)
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

int eng_io_write(struct dm_job *job, const struct dm_job_write *w, dm_job_write_cb done)
{
    struct ejob *ej = (struct ejob *)job;
    struct dm_engine *e = ej->eng;
    struct wreq *r;
    struct dm_buf extra;
    char epoch[24], opid[48], now[24], ts[32], letters[8];
    const char *fixed[24];
    size_t fixed_len[24];
    int nfixed = 0;
    int argc;

    if (job->fenced) {
        return DM_ERR_FENCED;
    }
    flag_letters(letters, w->flags);
    dm_buf_init(&extra, 1 << 20);
    if (dm_event_extra_append(&extra, w->extra)) {
        dm_buf_free(&extra);
        return DM_ERR_NOMEM;
    }
    snprintf(epoch, sizeof(epoch), "%lld", job->epoch);
    snprintf(opid, sizeof(opid), "%lld:%lu", job->epoch, ++ej->opseq);
    snprintf(now, sizeof(now), "%lld", dm_time_now_ms());
    dm_time_rfc3339(-1, ts, sizeof(ts));

#define ARG(s) (fixed[nfixed] = (s), fixed_len[nfixed] = strlen(fixed[nfixed]), nfixed++)
    ARG(ej->k_hash);
    ARG(ej->k_events);
    ARG(e->keys.events);
    ARG(e->keys.jobs);
    ARG(e->keys.parked);
    ARG(ej->k_files);
    ARG(epoch);
    ARG(opid);
    ARG(w->status ? w->status : "");
    ARG(w->message ? w->message : "");
    ARG(extra.data ? extra.data : "");
    ARG(ts);
    ARG(e->cfg->consumer);
    ARG(letters);
    ARG(job->entry);
    ARG(DM_KEYS_GROUP);
    ARG(e->gmax);
    ARG(e->keys.events);
    ARG(e->ttl);
    ARG(DM_KEYS_JOB_EVENTS_MAXLEN);
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
            eng_drop_writes(ej, DM_ERR_UNAVAILABLE);
            eng_job_release(ej);
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
            eng_post_callback(e, &ej->job, reply->element[2]->str, reply->element[2]->len);
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
        eng_drop_writes(ej, DM_ERR_FENCED);
    }
    pump(ej);
    eng_job_release(ej);
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
        eng_drop_writes(ej, DM_ERR_UNAVAILABLE);
        eng_job_release(ej);
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

int eng_io_after(struct dm_job *job, long ms, void (*fn)(struct dm_job *job))
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
    eng_job_release(ej);
}

int eng_io_read_files(struct dm_job *job,
                      void (*done)(struct dm_job *job, int rc, size_t n, const char *const *paths,
                                   const char *const *contents, const size_t *lens))
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

void eng_io_over(struct dm_job *job)
{
    struct ejob *ej = (struct ejob *)job;
    uv_timer_stop(&ej->after_timer);
    ej->after_fn = NULL;
    eng_job_release(ej);
}
