/*
 * ctl_stats: `dreamctl stats`, from what the scripts and the replicas already keep (no SCAN, no
 * read of any job): the per-status index sets (jobs by status, ZCARD; changes in the window,
 * ZCOUNT), the hour hashes <p>:stats:<hour> of the window (completed and failed per hour,
 * duration buckets of runs and stages, tokens and dollars by model and by repository), the
 * consumer group (XINFO GROUPS: lag, pending; XPENDING: the oldest pending entry), the replicas
 * (XINFO CONSUMERS, then each one's heartbeat hash: jobs and model requests in flight) and the
 * parked set with ages. One round trip per part; the hour hashes in one pipeline. --json prints
 * one document; --watch repeats every 2 s until interrupted. Main thread only.
 */
#include "ctl_int.h"

#include "dream/core/log.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_HOURS (24 * 31)
#define MAX_BUCKET 160 /* 4 per doubling: 2^40 ms is far beyond any job */

/* A histogram of log buckets (bucket b: durations in [2^(b/4), 2^((b+1)/4)) ms). */
struct hist {
    long long n[MAX_BUCKET];
    long long total;
};

static void hist_add(struct hist *h, long long b, long long count)
{
    if (b < 0) {
        b = 0;
    }
    if (b >= MAX_BUCKET) {
        b = MAX_BUCKET - 1;
    }
    h->n[b] += count;
    h->total += count;
}

/* The upper bound (ms) of the bucket holding quantile q; -1 when empty. */
static double hist_quantile(const struct hist *h, double q)
{
    long long want, seen = 0;

    if (h->total == 0) {
        return -1;
    }
    want = (long long)ceil(q * (double)h->total);
    if (want < 1) {
        want = 1;
    }
    for (int b = 0; b < MAX_BUCKET; b++) {
        seen += h->n[b];
        if (seen >= want) {
            return floor(pow(2.0, (b + 1) / 4.0));
        }
    }
    return -1;
}

struct stage_hist {
    char name[16];
    struct hist h;
};

struct stats {
    long long since_ms, now_ms;
    cJSON *doc;
};

static cJSON *hist_json(const struct hist *h)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "count", (double)h->total);
    if (h->total) {
        cJSON_AddNumberToObject(o, "p50Ms", hist_quantile(h, 0.50));
        cJSON_AddNumberToObject(o, "p95Ms", hist_quantile(h, 0.95));
    } else {
        cJSON_AddNullToObject(o, "p50Ms");
        cJSON_AddNullToObject(o, "p95Ms");
    }
    return o;
}

static void add_num(cJSON *o, const char *name, double v)
{
    cJSON *it = cJSON_GetObjectItem(o, name);
    if (it) {
        cJSON_SetNumberValue(it, cJSON_GetNumberValue(it) + v);
    } else {
        cJSON_AddNumberToObject(o, name, v);
    }
}

/* Jobs by status: now (ZCARD) and changes into the status within the window (ZCOUNT). */
static int part_statuses(struct ctl *ctl, struct stats *s)
{
    size_t n;
    const char *const *st = ctl_statuses(&n);
    cJSON *now = cJSON_AddObjectToObject(s->doc, "jobsByStatus");
    cJSON *win = cJSON_AddObjectToObject(s->doc, "changedInWindow");
    char since[24];

    snprintf(since, sizeof(since), "%lld", s->since_ms);
    for (size_t i = 0; i < n; i++) {
        char key[DM_KEYS_MAX];
        dm_keys_idx(key, sizeof(key), ctl->prefix, DM_IDX_STATUS, st[i]);
        redisAppendCommand(ctl->c, "ZCARD %s", key);
        redisAppendCommand(ctl->c, "ZCOUNT %s %s +inf", key, since);
    }
    for (size_t i = 0; i < 2 * n; i++) {
        redisReply *r = NULL;
        if (redisGetReply(ctl->c, (void **)&r) != REDIS_OK || !r) {
            ctl->broken = 1;
            return ctl_fail(ctl, DM_CTL_EXIT_UNREACHABLE, "Redis connection failed: %s",
                            ctl->c->errstr);
        }
        cJSON_AddNumberToObject(i % 2 ? win : now, st[i / 2],
                                r->type == REDIS_REPLY_INTEGER ? (double)r->integer : 0);
        freeReplyObject(r);
    }
    return 0;
}

static struct stage_hist *stage_of(struct stage_hist *sh, size_t *nsh, const char *name, size_t len)
{
    for (size_t i = 0; i < *nsh; i++) {
        if (strlen(sh[i].name) == len && strncmp(sh[i].name, name, len) == 0) {
            return &sh[i];
        }
    }
    if (*nsh >= 8 || len >= sizeof(sh[0].name)) {
        return NULL;
    }
    memcpy(sh[*nsh].name, name, len);
    sh[*nsh].name[len] = '\0';
    return &sh[(*nsh)++];
}

/* One hour hash's fields into the aggregates. */
static void take_hour(const redisReply *h, struct hist *dur, struct stage_hist *sh, size_t *nsh,
                      cJSON *spend, cJSON *hour)
{
    cJSON *tm = cJSON_GetObjectItem(spend, "byModel");
    cJSON *tr = cJSON_GetObjectItem(spend, "byRepo");

    for (size_t i = 0; h->type == REDIS_REPLY_ARRAY && i + 1 < h->elements; i += 2) {
        const char *f = h->element[i]->str, *v = h->element[i + 1]->str;
        double x = atof(v);
        if (strncmp(f, "status:", 7) == 0) {
            if (strcmp(f + 7, "complete") == 0) {
                add_num(hour, "completed", x);
            } else if (strcmp(f + 7, "failed") == 0) {
                add_num(hour, "failed", x);
            }
        } else if (strncmp(f, "dur:", 4) == 0) {
            hist_add(dur, atoll(f + 4), atoll(v));
        } else if (strncmp(f, "sdur:", 5) == 0) {
            const char *colon = strrchr(f + 5, ':');
            struct stage_hist *s = colon ? stage_of(sh, nsh, f + 5, (size_t)(colon - f - 5)) : NULL;
            if (s) {
                hist_add(&s->h, atoll(colon + 1), atoll(v));
            }
        } else if (strcmp(f, "tokens") == 0) {
            add_num(spend, "tokens", x);
        } else if (strcmp(f, "cost") == 0) {
            add_num(spend, "costUsd", x);
        } else {
            int tok = strncmp(f, "tokens:", 7) == 0;
            const char *rest = tok ? f + 7 : (strncmp(f, "cost:", 5) == 0 ? f + 5 : NULL);
            cJSON *group = NULL, *one;
            if (!rest) {
                continue;
            }
            if (strncmp(rest, "model:", 6) == 0) {
                group = tm;
                rest += 6;
            } else if (strncmp(rest, "repo:", 5) == 0) {
                group = tr;
                rest += 5;
            } else {
                continue;
            }
            one = cJSON_GetObjectItemCaseSensitive(group, rest); /* (model ids, repositories) */
            if (!one) {
                one = cJSON_AddObjectToObject(group, rest);
                cJSON_AddNumberToObject(one, "tokens", 0);
                cJSON_AddNumberToObject(one, "costUsd", 0);
            }
            add_num(one, tok ? "tokens" : "costUsd", x);
        }
    }
}

static int part_hours(struct ctl *ctl, struct stats *s)
{
    long long first = s->since_ms / 3600000, last = s->now_ms / 3600000;
    struct hist dur;
    struct stage_hist sh[8];
    size_t nsh = 0;
    cJSON *hours = cJSON_AddArrayToObject(s->doc, "perHour");
    cJSON *spend = cJSON_AddObjectToObject(s->doc, "spend");
    cJSON *durs = cJSON_AddObjectToObject(s->doc, "durations");
    cJSON *stages;

    memset(&dur, 0, sizeof(dur));
    memset(sh, 0, sizeof(sh));
    cJSON_AddNumberToObject(spend, "tokens", 0);
    cJSON_AddNumberToObject(spend, "costUsd", 0);
    cJSON_AddObjectToObject(spend, "byModel");
    cJSON_AddObjectToObject(spend, "byRepo");
    if (last - first >= MAX_HOURS) {
        first = last - MAX_HOURS + 1;
    }
    for (long long h = first; h <= last; h++) {
        char key[DM_KEYS_MAX];
        dm_keys_stats_hour(key, sizeof(key), ctl->prefix, h);
        redisAppendCommand(ctl->c, "HGETALL %s", key);
    }
    for (long long h = first; h <= last; h++) {
        redisReply *r = NULL;
        cJSON *hour = cJSON_CreateObject();
        char t[40];
        if (redisGetReply(ctl->c, (void **)&r) != REDIS_OK || !r) {
            cJSON_Delete(hour);
            ctl->broken = 1;
            return ctl_fail(ctl, DM_CTL_EXIT_UNREACHABLE, "Redis connection failed: %s",
                            ctl->c->errstr);
        }
        cJSON_AddStringToObject(hour, "hour", dm_time_rfc3339(h * 3600000, t, sizeof(t)));
        cJSON_AddNumberToObject(hour, "completed", 0);
        cJSON_AddNumberToObject(hour, "failed", 0);
        take_hour(r, &dur, sh, &nsh, spend, hour);
        cJSON_AddItemToArray(hours, hour);
        freeReplyObject(r);
    }
    cJSON_AddItemToObject(durs, "total", hist_json(&dur));
    stages = cJSON_AddObjectToObject(durs, "byStage");
    for (size_t i = 0; i < nsh; i++) {
        cJSON_AddItemToObject(stages, sh[i].name, hist_json(&sh[i].h));
    }
    return 0;
}

static long long entry_ms(const char *id)
{
    return id ? atoll(id) : 0;
}

static long long field_int(const redisReply *r, const char *name)
{
    for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements; i += 2) {
        if (r->element[i]->type == REDIS_REPLY_STRING && strcmp(r->element[i]->str, name) == 0) {
            const redisReply *v = r->element[i + 1];
            return v->type == REDIS_REPLY_INTEGER  ? v->integer
                   : v->type == REDIS_REPLY_STRING ? atoll(v->str)
                                                   : -1;
        }
    }
    return -1;
}

/* The consumer group: lag and pending (XINFO GROUPS), the oldest pending entry (XPENDING). */
static int part_stream(struct ctl *ctl, struct stats *s)
{
    cJSON *o = cJSON_AddObjectToObject(s->doc, "stream");
    redisReply *r = ctl_cmd(ctl, "XLEN %s", ctl->keys.jobs);

    if (!r) {
        return DM_CTL_EXIT_UNREACHABLE;
    }
    cJSON_AddNumberToObject(o, "length", r->type == REDIS_REPLY_INTEGER ? (double)r->integer : 0);
    freeReplyObject(r);
    r = ctl_cmd(ctl, "XINFO GROUPS %s", ctl->keys.jobs);
    if (!r) {
        return DM_CTL_EXIT_UNREACHABLE;
    }
    cJSON_AddNullToObject(o, "lag");
    cJSON_AddNumberToObject(o, "pending", 0);
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        const redisReply *g = r->element[i];
        for (size_t k = 0; g->type == REDIS_REPLY_ARRAY && k + 1 < g->elements; k += 2) {
            if (g->element[k]->type == REDIS_REPLY_STRING &&
                strcmp(g->element[k]->str, "name") == 0 &&
                g->element[k + 1]->type == REDIS_REPLY_STRING &&
                strcmp(g->element[k + 1]->str, DM_KEYS_GROUP) == 0) {
                long long lag = field_int(g, "lag"), pending = field_int(g, "pending");
                if (lag >= 0) {
                    cJSON_ReplaceItemInObject(o, "lag", cJSON_CreateNumber((double)lag));
                }
                cJSON_ReplaceItemInObject(o, "pending",
                                          cJSON_CreateNumber(pending > 0 ? (double)pending : 0));
            }
        }
    }
    freeReplyObject(r);
    r = ctl_cmd(ctl, "XPENDING %s %s", ctl->keys.jobs, DM_KEYS_GROUP);
    if (!r) {
        return DM_CTL_EXIT_UNREACHABLE;
    }
    if (r->type == REDIS_REPLY_ARRAY && r->elements >= 2 &&
        r->element[1]->type == REDIS_REPLY_STRING) {
        cJSON_AddNumberToObject(o, "oldestPendingAgeMs",
                                (double)(s->now_ms - entry_ms(r->element[1]->str)));
    } else {
        cJSON_AddNullToObject(o, "oldestPendingAgeMs");
    }
    freeReplyObject(r);
    return 0;
}

/* The replicas: the group's consumers, each with its heartbeat hash (gone: not alive). */
static int part_workers(struct ctl *ctl, struct stats *s)
{
    cJSON *a = cJSON_AddArrayToObject(s->doc, "workers");
    redisReply *r = ctl_cmd(ctl, "XINFO CONSUMERS %s %s", ctl->keys.jobs, DM_KEYS_GROUP);

    if (!r) {
        return DM_CTL_EXIT_UNREACHABLE;
    }
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        const redisReply *c = r->element[i];
        const char *name = NULL;
        char key[DM_KEYS_MAX];
        redisReply *h;
        for (size_t k = 0; c->type == REDIS_REPLY_ARRAY && k + 1 < c->elements; k += 2) {
            if (c->element[k]->type == REDIS_REPLY_STRING &&
                strcmp(c->element[k]->str, "name") == 0 &&
                c->element[k + 1]->type == REDIS_REPLY_STRING) {
                name = c->element[k + 1]->str;
            }
        }
        if (!name || dm_keys_worker(key, sizeof(key), ctl->prefix, name)) {
            continue;
        }
        h = ctl_cmd(ctl, "HMGET %s jobs requests max_jobs ts stopping", key);
        if (!h) {
            freeReplyObject(r);
            return DM_CTL_EXIT_UNREACHABLE;
        }
        if (h->type == REDIS_REPLY_ARRAY && h->elements == 5 &&
            h->element[3]->type == REDIS_REPLY_STRING) {
            cJSON *w = cJSON_CreateObject();
            cJSON_AddStringToObject(w, "name", name);
            cJSON_AddNumberToObject(w, "jobs", atof(h->element[0]->str ? h->element[0]->str : "0"));
            cJSON_AddNumberToObject(
                w, "requests",
                h->element[1]->type == REDIS_REPLY_STRING ? atof(h->element[1]->str) : 0);
            cJSON_AddNumberToObject(
                w, "maxJobs",
                h->element[2]->type == REDIS_REPLY_STRING ? atof(h->element[2]->str) : 0);
            cJSON_AddNumberToObject(w, "pending", (double)field_int(c, "pending"));
            cJSON_AddStringToObject(w, "heartbeat", h->element[3]->str);
            cJSON_AddBoolToObject(w, "stopping",
                                  h->element[4]->type == REDIS_REPLY_STRING &&
                                      strcmp(h->element[4]->str, "1") == 0);
            cJSON_AddItemToArray(a, w);
        }
        freeReplyObject(h);
    }
    freeReplyObject(r);
    return 0;
}

/* The parked queue, oldest first, with ages (at most 100 listed). */
static int part_parked(struct ctl *ctl, struct stats *s)
{
    cJSON *o = cJSON_AddObjectToObject(s->doc, "parked");
    cJSON *a;
    redisReply *r = ctl_cmd(ctl, "ZCARD %s", ctl->keys.parked);

    if (!r) {
        return DM_CTL_EXIT_UNREACHABLE;
    }
    cJSON_AddNumberToObject(o, "count", r->type == REDIS_REPLY_INTEGER ? (double)r->integer : 0);
    freeReplyObject(r);
    a = cJSON_AddArrayToObject(o, "jobs");
    r = ctl_cmd(ctl, "ZRANGE %s 0 99 WITHSCORES", ctl->keys.parked);
    if (!r) {
        return DM_CTL_EXIT_UNREACHABLE;
    }
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements; i += 2) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "jobId", r->element[i]->str);
        cJSON_AddNumberToObject(j, "ageMs", (double)(s->now_ms - atoll(r->element[i + 1]->str)));
        cJSON_AddItemToArray(a, j);
    }
    freeReplyObject(r);
    return 0;
}

static const char *ms_text(double ms, char *out, size_t n)
{
    if (ms < 1000) {
        snprintf(out, n, "%.0f ms", ms);
    } else if (ms < 120000) {
        snprintf(out, n, "%.1f s", ms / 1000.0);
    } else {
        snprintf(out, n, "%.1f min", ms / 60000.0);
    }
    return out;
}

static void print_hist(const char *name, const cJSON *h)
{
    double n = ctl_jnum(h, "count");
    char a[32], b[32];

    if (n <= 0) {
        printf("  %-10s -\n", name);
        return;
    }
    printf("  %-10s p50 %-9s p95 %-9s (%g)\n", name, ms_text(ctl_jnum(h, "p50Ms"), a, sizeof(a)),
           ms_text(ctl_jnum(h, "p95Ms"), b, sizeof(b)), n);
}

static void print_text(const cJSON *d, const char *since)
{
    const cJSON *it;
    const cJSON *stream = cJSON_GetObjectItem(d, "stream");
    const cJSON *spend = cJSON_GetObjectItem(d, "spend");
    const cJSON *durs = cJSON_GetObjectItem(d, "durations");
    const cJSON *parked = cJSON_GetObjectItem(d, "parked");

    printf("jobs by status (now; changed in the last %s):\n", since);
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(d, "jobsByStatus"))
    {
        printf("  %-16s %8g  %8g\n", it->string, it->valuedouble,
               ctl_jnum(cJSON_GetObjectItem(d, "changedInWindow"), it->string));
    }
    printf("per hour (completed / failed):\n");
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(d, "perHour"))
    {
        if (ctl_jnum(it, "completed") > 0 || ctl_jnum(it, "failed") > 0) {
            printf("  %s  %6g  %6g\n", ctl_jstr(it, "hour"), ctl_jnum(it, "completed"),
                   ctl_jnum(it, "failed"));
        }
    }
    printf("durations:\n");
    print_hist("total", cJSON_GetObjectItem(durs, "total"));
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(durs, "byStage"))
    {
        print_hist(it->string, it);
    }
    printf("stream: length %g, pending %g, lag ", ctl_jnum(stream, "length"),
           ctl_jnum(stream, "pending"));
    if (cJSON_IsNumber(cJSON_GetObjectItem(stream, "lag"))) {
        printf("%g", ctl_jnum(stream, "lag"));
    } else {
        printf("unknown");
    }
    if (cJSON_IsNumber(cJSON_GetObjectItem(stream, "oldestPendingAgeMs"))) {
        printf(", oldest pending %.1f s", ctl_jnum(stream, "oldestPendingAgeMs") / 1000.0);
    }
    printf("\nworkers:\n");
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(d, "workers"))
    {
        printf("  %-24s jobs %g/%g, requests %g, pending %g%s\n", ctl_jstr(it, "name"),
               ctl_jnum(it, "jobs"), ctl_jnum(it, "maxJobs"), ctl_jnum(it, "requests"),
               ctl_jnum(it, "pending"),
               cJSON_IsTrue(cJSON_GetObjectItem(it, "stopping")) ? " (stopping)" : "");
    }
    printf("spend: %g tokens, $%.4f\n", ctl_jnum(spend, "tokens"), ctl_jnum(spend, "costUsd"));
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(spend, "byModel"))
    {
        printf("  model %-32s %10g tokens  $%.4f\n", it->string, ctl_jnum(it, "tokens"),
               ctl_jnum(it, "costUsd"));
    }
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(spend, "byRepo"))
    {
        printf("  repo  %-32s %10g tokens  $%.4f\n", it->string, ctl_jnum(it, "tokens"),
               ctl_jnum(it, "costUsd"));
    }
    printf("parked: %g\n", ctl_jnum(parked, "count"));
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(parked, "jobs"))
    {
        printf("  %-40s parked %.0f s ago\n", ctl_jstr(it, "jobId"),
               ctl_jnum(it, "ageMs") / 1000.0);
    }
}

static int stats_once(struct ctl *ctl, long long window_ms, const char *since)
{
    struct stats s;
    char t[40];
    int rc;

    s.now_ms = dm_time_now_ms();
    s.since_ms = s.now_ms - window_ms;
    s.doc = cJSON_CreateObject();
    cJSON_AddStringToObject(s.doc, "since", dm_time_rfc3339(s.since_ms, t, sizeof(t)));
    cJSON_AddStringToObject(s.doc, "at", dm_time_rfc3339(s.now_ms, t, sizeof(t)));
    if ((rc = part_statuses(ctl, &s)) || (rc = part_hours(ctl, &s)) ||
        (rc = part_stream(ctl, &s)) || (rc = part_workers(ctl, &s)) ||
        (rc = part_parked(ctl, &s))) {
        cJSON_Delete(s.doc);
        return rc;
    }
    if (ctl->json) {
        ctl_print_json(s.doc);
    } else {
        print_text(s.doc, since);
        cJSON_Delete(s.doc);
    }
    fflush(stdout);
    return 0;
}

int ctl_run_stats(struct ctl *ctl)
{
    const char *since = ctl_opt(ctl, "since") ? ctl_opt(ctl, "since") : "24h";
    long long now = dm_time_now_ms(), from;
    int rc;

    if (dm_time_parse_when(since, now, &from) || from > now || !strpbrk(since, "smhd") ||
        now - from > (long long)MAX_HOURS * 3600000) {
        return ctl_fail(ctl, DM_CTL_EXIT_USAGE,
                        "--since: a duration up to 31d (90s, 15m, 1h, 7d), got '%s'", since);
    }
    if ((rc = ctl_connect(ctl))) {
        return rc;
    }
    for (;;) {
        if (ctl_opt(ctl, "watch") && !ctl->json) {
            printf("\033[H\033[2J");
        }
        if ((rc = stats_once(ctl, now - from, since)) || !ctl_opt(ctl, "watch")) {
            return rc;
        }
        sleep(2);
    }
}
