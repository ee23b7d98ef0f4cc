/*
 * ctl_jobs: `dreamctl jobs`, answered from the job index the Lua scripts keep (never a SCAN):
 * <p>:idx:status:<s> (score: when the job entered the status) when --status is given, else
 * <p>:idx:repo:<r>, <p>:idx:user:<u> or <p>:idx:created (score: created). The sets are read
 * newest first with ZREVRANGEBYSCORE in the --since/--until window, merged, and each page of
 * candidates is checked against its job hash in one pipelined round trip (the status still
 * matches, repo, user, --min-cost; a member whose hash expired is skipped). A cursor
 * "<score>:<jobId>" continues after the last job shown. Also the query behind `retry --status`.
 * Main thread only.
 */
#include "ctl_int.h"

#include "dream/core/log.h"
#include "dream/domain/jobreq.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#define BATCH 256

static const char *const known_statuses[] = {
    "running",  "paused_approval", "approved",  "requeued", "retry_requested",
    "complete", "failed",          "cancelled", "rejected", "dead_lettered",
};

int ctl_known_status(const char *s)
{
    for (size_t i = 0; i < sizeof(known_statuses) / sizeof(known_statuses[0]); i++) {
        if (strcmp(s, known_statuses[i]) == 0) {
            return 1;
        }
    }
    return 0;
}

const char *const *ctl_statuses(size_t *n)
{
    *n = sizeof(known_statuses) / sizeof(known_statuses[0]);
    return known_statuses;
}

int ctl_jobq_options(struct ctl *ctl, struct jobq *q)
{
    const char *st = ctl_opt(ctl, "status"), *cur = ctl_opt(ctl, "cursor");
    long long now = dm_time_now_ms();

    memset(q, 0, sizeof(*q));
    q->limit = 50;
    if (st) {
        char *save = NULL, *tok;
        snprintf(q->status_buf, sizeof(q->status_buf), "%s", st);
        for (tok = strtok_r(q->status_buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            if (!ctl_known_status(tok)) {
                return ctl_fail(ctl, DM_CTL_EXIT_USAGE,
                                "--status: unknown status '%s' (running, paused_approval, "
                                "approved, requeued, retry_requested, complete, failed, "
                                "cancelled, rejected, dead_lettered)",
                                tok);
            }
            if (q->nstatus == JOBQ_MAX_STATUS) {
                return ctl_fail(ctl, DM_CTL_EXIT_USAGE, "--status: at most %d statuses",
                                JOBQ_MAX_STATUS);
            }
            q->statuses[q->nstatus++] = tok;
        }
        if (!q->nstatus) {
            return ctl_fail(ctl, DM_CTL_EXIT_USAGE, "--status: must name a status");
        }
    }
    q->repo = ctl_opt(ctl, "repo");
    if (q->repo && (!strchr(q->repo, '/') || strlen(q->repo) > 160)) {
        return ctl_fail(ctl, DM_CTL_EXIT_USAGE, "--repo: must be OWNER/NAME, got '%s'", q->repo);
    }
    q->user = ctl_opt(ctl, "user");
    if (q->user && !dm_jobreq_id_valid(q->user)) {
        return ctl_fail(ctl, DM_CTL_EXIT_USAGE, "--user: not a user id: '%s'", q->user);
    }
    if (ctl_opt(ctl, "since") && dm_time_parse_when(ctl_opt(ctl, "since"), now, &q->since_ms)) {
        return ctl_fail(ctl, DM_CTL_EXIT_USAGE,
                        "--since: a duration (90s, 15m, 1h, 7d), epoch ms or RFC 3339 time, "
                        "got '%s'",
                        ctl_opt(ctl, "since"));
    }
    if (ctl_opt(ctl, "until") && dm_time_parse_when(ctl_opt(ctl, "until"), now, &q->until_ms)) {
        return ctl_fail(ctl, DM_CTL_EXIT_USAGE,
                        "--until: a duration (90s, 15m, 1h, 7d), epoch ms or RFC 3339 time, "
                        "got '%s'",
                        ctl_opt(ctl, "until"));
    }
    if (ctl_opt(ctl, "min-cost")) {
        if (ctl_parse_pos_double(ctl_opt(ctl, "min-cost"), &q->min_cost) &&
            strcmp(ctl_opt(ctl, "min-cost"), "0") != 0) {
            return ctl_fail(ctl, DM_CTL_EXIT_USAGE, "--min-cost: must be a number >= 0, got '%s'",
                            ctl_opt(ctl, "min-cost"));
        }
        q->has_min_cost = 1;
    }
    if (ctl_opt(ctl, "limit") && ctl_parse_ll(ctl_opt(ctl, "limit"), 0, 1000000000, &q->limit)) {
        return ctl_fail(ctl, DM_CTL_EXIT_USAGE,
                        "--limit: must be an integer >= 0 (0: all), got '%s'",
                        ctl_opt(ctl, "limit"));
    }
    if (cur) {
        const char *colon = strchr(cur, ':');
        char num[32];
        if (!colon || colon == cur || (size_t)(colon - cur) >= sizeof(num) ||
            !dm_jobreq_id_valid(colon + 1)) {
            return ctl_fail(ctl, DM_CTL_EXIT_USAGE,
                            "--cursor: must be a cursor printed by an earlier page, got '%s'", cur);
        }
        memcpy(num, cur, (size_t)(colon - cur));
        num[colon - cur] = '\0';
        if (ctl_parse_ll(num, 0, 9000000000000000LL, &q->cursor_score)) {
            return ctl_fail(ctl, DM_CTL_EXIT_USAGE,
                            "--cursor: must be a cursor printed by an earlier page, got '%s'", cur);
        }
        snprintf(q->cursor_id, sizeof(q->cursor_id), "%s", colon + 1);
        q->has_cursor = 1;
    }
    return 0;
}

/* ---- merging the index sets, newest first ---- */

struct src {
    char key[DM_KEYS_MAX];
    const char *status; /* the status this set stands for, or NULL */
    redisReply *batch;  /* ZREVRANGEBYSCORE ... WITHSCORES */
    size_t pos;         /* next member (index of the member, scores follow) */
    long long offset;   /* members read so far (LIMIT offset of the next batch) */
    int last;           /* the batch read was the set's last */
    int done;
};

static int src_fill(struct ctl *ctl, struct src *s, const struct jobq *q)
{
    char max[32], min[32], off[24], cnt[16];
    const char *argv[9];

    if (s->done || (s->batch && s->pos < s->batch->elements)) {
        return 0;
    }
    if (s->batch) {
        freeReplyObject(s->batch);
        s->batch = NULL;
    }
    if (s->last) {
        s->done = 1;
        return 0;
    }
    if (q->has_cursor) {
        long long m = q->until_ms && q->until_ms < q->cursor_score ? q->until_ms : q->cursor_score;
        snprintf(max, sizeof(max), "%lld", m);
    } else if (q->until_ms) {
        snprintf(max, sizeof(max), "%lld", q->until_ms);
    } else {
        snprintf(max, sizeof(max), "+inf");
    }
    if (q->since_ms) {
        snprintf(min, sizeof(min), "%lld", q->since_ms);
    } else {
        snprintf(min, sizeof(min), "-inf");
    }
    snprintf(off, sizeof(off), "%lld", s->offset);
    snprintf(cnt, sizeof(cnt), "%d", BATCH);
    argv[0] = "ZREVRANGEBYSCORE";
    argv[1] = s->key;
    argv[2] = max;
    argv[3] = min;
    argv[4] = "WITHSCORES";
    argv[5] = "LIMIT";
    argv[6] = off;
    argv[7] = cnt;
    s->batch = ctl_cmdv(ctl, 8, argv, NULL);
    if (!s->batch) {
        return DM_CTL_EXIT_UNREACHABLE;
    }
    if (s->batch->type != REDIS_REPLY_ARRAY) {
        return ctl_fail(ctl, DM_CTL_EXIT_FAILED, "reading %s failed: %s", s->key,
                        s->batch->type == REDIS_REPLY_ERROR ? s->batch->str : "bad reply");
    }
    s->pos = 0;
    s->offset += (long long)s->batch->elements / 2;
    s->last = s->batch->elements / 2 < BATCH;
    return 0;
}

static int src_has(const struct src *s)
{
    return s->batch && s->pos + 1 < s->batch->elements;
}

static long long src_score(const struct src *s)
{
    return atoll(s->batch->element[s->pos + 1]->str);
}

static const char *src_member(const struct src *s)
{
    return s->batch->element[s->pos]->str;
}

/* 1 when (score, id) comes after (a, b) in newest-first order: lower score, or the same score
 * and a lower id (ZREVRANGEBYSCORE orders equal scores by member, descending). */
static int after(long long score, const char *id, long long a, const char *b)
{
    return score < a || (score == a && strcmp(id, b) < 0);
}

static void row_free(struct jobrow *r)
{
    free(r->id);
    free(r->status);
    free(r->stage);
    free(r->error);
    free(r->owner);
    free(r->repo);
    free(r->user);
}

void ctl_jobrows_free(struct jobrow *rows, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        row_free(&rows[i]);
    }
    free(rows);
}

static char *str_of(const redisReply *r)
{
    return strdup(r && r->type == REDIS_REPLY_STRING ? r->str : "");
}

struct cand {
    char id[DM_JOBREQ_ID_MAX + 1];
    const char *status;
    long long score;
};

/* Checks candidates against their hashes (one pipelined round trip) and appends the rows that
 * pass. Returns 0 or an exit code. */
static int check_cands(struct ctl *ctl, const struct jobq *q, const struct cand *c, size_t nc,
                       struct jobrow **rows, size_t *nrows, size_t *cap)
{
    for (size_t i = 0; i < nc; i++) {
        char key[DM_KEYS_MAX];
        ctl_job_key(key, ctl, c[i].id, DM_JOB_KEY_HASH);
        redisAppendCommand(ctl->c,
                           "HMGET %s status stage updated created error owner repo user cost "
                           "tokens",
                           key);
    }
    for (size_t i = 0; i < nc; i++) {
        redisReply *h = NULL;
        struct jobrow *row;
        if (redisGetReply(ctl->c, (void **)&h) != REDIS_OK || !h) {
            ctl->broken = 1;
            return ctl_fail(ctl, DM_CTL_EXIT_UNREACHABLE, "Redis connection failed: %s",
                            ctl->c->errstr);
        }
        if (h->type != REDIS_REPLY_ARRAY || h->elements != 10 ||
            h->element[0]->type != REDIS_REPLY_STRING ||
            (c[i].status && strcmp(h->element[0]->str, c[i].status) != 0) ||
            (q->repo && (h->element[6]->type != REDIS_REPLY_STRING ||
                         strcmp(h->element[6]->str, q->repo) != 0)) ||
            (q->user && (h->element[7]->type != REDIS_REPLY_STRING ||
                         strcmp(h->element[7]->str, q->user) != 0)) ||
            (q->has_min_cost && (h->element[8]->type != REDIS_REPLY_STRING ||
                                 atof(h->element[8]->str) < q->min_cost))) {
            freeReplyObject(h); /* expired, moved on, or filtered out */
            continue;
        }
        if (q->limit > 0 && *nrows >= (size_t)q->limit) {
            freeReplyObject(h);
            continue;
        }
        if (*nrows == *cap) {
            size_t ncap = *cap ? *cap * 2 : 64;
            struct jobrow *n = realloc(*rows, ncap * sizeof(**rows));
            if (!n) {
                freeReplyObject(h);
                return ctl_fail(ctl, DM_CTL_EXIT_FAILED, "out of memory");
            }
            *rows = n;
            *cap = ncap;
        }
        row = &(*rows)[(*nrows)++];
        memset(row, 0, sizeof(*row));
        row->id = strdup(c[i].id);
        row->score = c[i].score;
        row->status = str_of(h->element[0]);
        row->stage = str_of(h->element[1]);
        row->updated = h->element[2]->type == REDIS_REPLY_STRING ? atoll(h->element[2]->str) : 0;
        row->created = h->element[3]->type == REDIS_REPLY_STRING ? atoll(h->element[3]->str) : 0;
        row->error = str_of(h->element[4]);
        row->owner = str_of(h->element[5]);
        row->repo = str_of(h->element[6]);
        row->user = str_of(h->element[7]);
        row->cost = h->element[8]->type == REDIS_REPLY_STRING ? atof(h->element[8]->str) : 0;
        row->tokens = h->element[9]->type == REDIS_REPLY_STRING ? atoll(h->element[9]->str) : 0;
        freeReplyObject(h);
        if (!row->id || !row->status || !row->stage || !row->error || !row->owner || !row->repo ||
            !row->user) {
            return ctl_fail(ctl, DM_CTL_EXIT_FAILED, "out of memory");
        }
    }
    return 0;
}

int ctl_jobs_query(struct ctl *ctl, const struct jobq *q, struct jobrow **rows_out, size_t *n_out,
                   int *more)
{
    struct src srcs[JOBQ_MAX_STATUS];
    struct cand *cands = NULL;
    struct jobrow *rows = NULL;
    size_t nsrc = 0, nrows = 0, cap = 0;
    int rc = 0;

    *rows_out = NULL;
    *n_out = 0;
    *more = 0;
    memset(srcs, 0, sizeof(srcs));
    if (q->nstatus) {
        for (int i = 0; i < q->nstatus; i++) {
            dm_keys_idx(srcs[nsrc].key, DM_KEYS_MAX, ctl->prefix, DM_IDX_STATUS, q->statuses[i]);
            srcs[nsrc++].status = q->statuses[i];
        }
    } else if (q->repo) {
        dm_keys_idx(srcs[nsrc++].key, DM_KEYS_MAX, ctl->prefix, DM_IDX_REPO, q->repo);
    } else if (q->user) {
        dm_keys_idx(srcs[nsrc++].key, DM_KEYS_MAX, ctl->prefix, DM_IDX_USER, q->user);
    } else {
        snprintf(srcs[nsrc++].key, DM_KEYS_MAX, "%s", ctl->keys.idx_created);
    }
    for (size_t i = 0; i < nsrc; i++) {
        if (!srcs[i].key[0]) {
            return ctl_fail(ctl, DM_CTL_EXIT_USAGE, "filter value too long for a key");
        }
    }
    cands = calloc(BATCH, sizeof(*cands));
    if (!cands) {
        return ctl_fail(ctl, DM_CTL_EXIT_FAILED, "out of memory");
    }
    for (;;) {
        size_t nc = 0;
        /* Next candidates in newest-first order, merged across the sets. */
        while (nc < BATCH) {
            struct src *best = NULL;
            for (size_t i = 0; i < nsrc; i++) {
                if ((rc = src_fill(ctl, &srcs[i], q))) {
                    goto out;
                }
                if (!src_has(&srcs[i])) {
                    continue;
                }
                if (!best || after(src_score(best), src_member(best), src_score(&srcs[i]),
                                   src_member(&srcs[i]))) {
                    best = &srcs[i];
                }
            }
            if (!best) {
                break;
            }
            if (!q->has_cursor ||
                after(src_score(best), src_member(best), q->cursor_score, q->cursor_id)) {
                snprintf(cands[nc].id, sizeof(cands[nc].id), "%s", src_member(best));
                cands[nc].status = best->status;
                cands[nc].score = src_score(best);
                nc++;
            }
            best->pos += 2;
        }
        if (nc == 0) {
            break;
        }
        if ((rc = check_cands(ctl, q, cands, nc, &rows, &nrows, &cap))) {
            goto out;
        }
        if (q->limit > 0 && nrows >= (size_t)q->limit) {
            *more = 1; /* possibly: the next page may be empty */
            break;
        }
    }
out:
    for (size_t i = 0; i < nsrc; i++) {
        if (srcs[i].batch) {
            freeReplyObject(srcs[i].batch);
        }
    }
    free(cands);
    if (rc) {
        ctl_jobrows_free(rows, nrows);
        return rc;
    }
    *rows_out = rows;
    *n_out = nrows;
    return 0;
}

void ctl_jobrow_cursor(const struct jobrow *r, char *out, size_t n)
{
    snprintf(out, n, "%lld:%s", r->score, r->id);
}

int ctl_run_jobs(struct ctl *ctl)
{
    struct jobq q;
    struct jobrow *rows = NULL;
    size_t nrows = 0;
    int more = 0, rc;

    if ((rc = ctl_jobq_options(ctl, &q))) {
        return rc;
    }
    if ((rc = ctl_connect(ctl))) {
        return rc;
    }
    if ((rc = ctl_jobs_query(ctl, &q, &rows, &nrows, &more))) {
        return rc;
    }
    if (ctl->json) {
        cJSON *a = cJSON_CreateArray();
        for (size_t i = 0; i < nrows; i++) {
            cJSON *o = cJSON_CreateObject();
            char t[40], cur[200];
            cJSON_AddStringToObject(o, "jobId", rows[i].id);
            cJSON_AddStringToObject(o, "status", rows[i].status);
            cJSON_AddStringToObject(o, "stage", rows[i].stage);
            cJSON_AddStringToObject(o, "owner", rows[i].owner);
            cJSON_AddStringToObject(o, "repo", rows[i].repo);
            cJSON_AddStringToObject(o, "userId", rows[i].user);
            cJSON_AddNumberToObject(o, "tokensUsed", (double)rows[i].tokens);
            cJSON_AddNumberToObject(o, "costUsd", rows[i].cost);
            if (rows[i].created) {
                cJSON_AddStringToObject(o, "created",
                                        dm_time_rfc3339(rows[i].created, t, sizeof(t)));
            }
            if (rows[i].updated) {
                cJSON_AddStringToObject(o, "updated",
                                        dm_time_rfc3339(rows[i].updated, t, sizeof(t)));
            }
            if (rows[i].error[0]) {
                cJSON_AddStringToObject(o, "error", rows[i].error);
            }
            ctl_jobrow_cursor(&rows[i], cur, sizeof(cur));
            cJSON_AddStringToObject(o, "cursor", cur);
            cJSON_AddItemToArray(a, o);
        }
        ctl_print_json(a);
    } else if (nrows == 0) {
        printf("no jobs%s%s\n", q.nstatus ? " with status " : "",
               q.nstatus ? ctl_opt(ctl, "status") : "");
    } else {
        int w = 6;
        for (size_t i = 0; i < nrows; i++) {
            int l = (int)strlen(rows[i].id);
            w = l > w ? (l > 48 ? 48 : l) : w;
        }
        printf("%-*s  %-16s %-9s %-24s %9s %s\n", w, "JOB", "STATUS", "STAGE", "REPO", "COST",
               q.nstatus ? "CHANGED" : "CREATED");
        for (size_t i = 0; i < nrows; i++) {
            char t[40];
            printf("%-*s  %-16s %-9s %-24s %9.4f %s\n", w, rows[i].id, rows[i].status,
                   rows[i].stage[0] ? rows[i].stage : "-", rows[i].repo[0] ? rows[i].repo : "-",
                   rows[i].cost, dm_time_rfc3339(rows[i].score, t, sizeof(t)));
        }
        if (more) {
            char cur[200];
            ctl_jobrow_cursor(&rows[nrows - 1], cur, sizeof(cur));
            printf("more: add --cursor %s\n", cur);
        }
    }
    ctl_jobrows_free(rows, nrows);
    return 0;
}
