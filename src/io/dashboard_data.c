/*
 * dashboard_data: the dashboard's Redis side (see src/io/dashboard_private.h): one synchronous
 * hiredis connection per HTTP connection thread, the JSON views of the README's keys (job hash,
 * its events and files, the parked set, the worker hashes, the dead letters) and the operator
 * actions, which run the Lua scripts of src/domain/scripts.c with dreamctl's argument layout.
 */
#include "dashboard_private.h"

#include "dream/core/log.h"
#include "dream/core/text.h"
#include "dream/domain/jobreq.h"
#include "dream/domain/scripts.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FILE_CONTENT_MAX (64 * 1024)
#define LIST_MAX 500

/* ---- the connection ------------------------------------------------------------------------ */

redisContext *dash_redis(struct dm_dashboard *d, struct dconn *dc)
{
    struct timeval tv;
    redisReply *r;

    if (dc->rc && !dc->rc->err) {
        return dc->rc;
    }
    if (dc->rc) {
        redisFree(dc->rc);
        dc->rc = NULL;
    }
    tv.tv_sec = d->timeout_ms / 1000;
    tv.tv_usec = (d->timeout_ms % 1000) * 1000;
    dc->rc = d->unix_path ? redisConnectUnixWithTimeout(d->unix_path, tv)
                          : redisConnectWithTimeout(d->host, d->port, tv);
    if (!dc->rc || dc->rc->err) {
        dm_warn("dashboard", NULL, "cannot reach Redis: %s",
                dc->rc ? dc->rc->errstr : "out of memory");
        goto fail;
    }
    /* Longer than the SSE's XREAD BLOCK (1 s). */
    tv.tv_sec = 5;
    tv.tv_usec = 0;
    redisSetTimeout(dc->rc, tv);
    if (d->password) {
        r = d->username ? redisCommand(dc->rc, "AUTH %s %s", d->username, d->password)
                        : redisCommand(dc->rc, "AUTH %s", d->password);
        if (!r || r->type == REDIS_REPLY_ERROR) {
            dm_warn("dashboard", NULL, "Redis refused AUTH");
            freeReplyObject(r);
            goto fail;
        }
        freeReplyObject(r);
    }
    if (d->db) {
        r = redisCommand(dc->rc, "SELECT %d", d->db);
        if (!r || r->type == REDIS_REPLY_ERROR) {
            freeReplyObject(r);
            goto fail;
        }
        freeReplyObject(r);
    }
    return dc->rc;
fail:
    if (dc->rc) {
        redisFree(dc->rc);
        dc->rc = NULL;
    }
    return NULL;
}

static redisReply *checked(struct dconn *dc, redisReply *r)
{
    if (!r && dc->rc) {
        redisFree(dc->rc); /* a failed connection is not reused */
        dc->rc = NULL;
    }
    return r;
}

redisReply *dash_cmd(struct dm_dashboard *d, struct dconn *dc, const char *fmt, ...)
{
    va_list ap;
    redisReply *r;

    if (!dash_redis(d, dc)) {
        return NULL;
    }
    va_start(ap, fmt);
    r = redisvCommand(dc->rc, fmt, ap);
    va_end(ap);
    return checked(dc, r);
}

redisReply *dash_cmdv(struct dm_dashboard *d, struct dconn *dc, int argc, const char **argv,
                      const size_t *lens)
{
    if (!dash_redis(d, dc)) {
        return NULL;
    }
    return checked(dc, redisCommandArgv(dc->rc, argc, argv, lens));
}

static int fail(cJSON **out, int status, const char *msg)
{
    *out = cJSON_CreateObject();
    cJSON_AddStringToObject(*out, "error", msg);
    return status;
}

static int unreachable(cJSON **out)
{
    return fail(out, 503, "Redis is unreachable");
}

/* The value of field name in a flat [name, value, ...] reply, or NULL. */
static const char *field_of(const redisReply *r, const char *name)
{
    for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements; i += 2) {
        if (r->element[i]->type == REDIS_REPLY_STRING && strcmp(r->element[i]->str, name) == 0) {
            return r->element[i + 1]->type == REDIS_REPLY_STRING ? r->element[i + 1]->str : NULL;
        }
    }
    return NULL;
}

static const char *str_of(const redisReply *r)
{
    return r && r->type == REDIS_REPLY_STRING ? r->str : NULL;
}

/* A job's title: the spec's first line without its heading marks (what the producer wrote),
 * else the plan's title. */
static void add_title(cJSON *o, const char *plan_json, const cJSON *job)
{
    const cJSON *spec = cJSON_GetObjectItem(job, "specMarkdown");
    const char *s = cJSON_IsString(spec) ? spec->valuestring : "";
    char title[201];
    size_t n;

    while (*s == '\n' || *s == '\r' || *s == ' ') {
        s++;
    }
    while (*s == '#') {
        s++;
    }
    while (*s == ' ') {
        s++;
    }
    n = dm_text_cut(s, strcspn(s, "\r\n"), sizeof(title) - 1);
    memcpy(title, s, n);
    title[n] = '\0';
    if (!title[0] && plan_json) {
        cJSON *plan = cJSON_Parse(plan_json);
        const cJSON *t = cJSON_GetObjectItem(plan, "title");
        if (cJSON_IsString(t)) {
            snprintf(title, sizeof(title), "%s", t->valuestring);
        }
        cJSON_Delete(plan);
    }
    cJSON_AddStringToObject(o, "title", title);
}

/* ---- the job list ---------------------------------------------------------------------------- */

static int has_word(const char *list, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = list; p && *p;) {
        const char *e = strchr(p, ',');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == n && strncmp(p, word, n) == 0) {
            return 1;
        }
        p = e ? e + 1 : NULL;
    }
    return 0;
}

struct idlist {
    char **v;
    size_t n, cap;
};

static int idlist_add(struct idlist *l, const char *id)
{
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 64;
        char **nv = realloc(l->v, nc * sizeof(*nv));
        if (!nv) {
            return -1;
        }
        l->v = nv;
        l->cap = nc;
    }
    if (!(l->v[l->n] = strdup(id))) {
        return -1;
    }
    l->n++;
    return 0;
}

static void idlist_free(struct idlist *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i]);
    }
    free(l->v);
}

/* The members of one index set scored since f->since_ms or later, newest first, up to
 * LIST_MAX, appended to ids. */
static int index_read(struct dm_dashboard *d, struct dconn *dc, const char *key,
                      const struct dash_filter *f, struct idlist *ids)
{
    char since[32];
    redisReply *r;
    int rc = 0;

    snprintf(since, sizeof(since), "%lld", f->since_ms > 0 ? f->since_ms : 0);
    r = dash_cmd(d, dc, "ZREVRANGEBYSCORE %s +inf %s LIMIT 0 %d", key, since, LIST_MAX);
    if (!r) {
        return -1;
    }
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements && !rc; i++) {
        if (str_of(r->element[i])) {
            rc = idlist_add(ids, r->element[i]->str);
        }
    }
    freeReplyObject(r);
    return rc;
}

/* The number of members of key, or -1. */
static long long index_card(struct dm_dashboard *d, struct dconn *dc, const char *key)
{
    redisReply *r = dash_cmd(d, dc, "ZCARD %s", key);
    long long n = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    freeReplyObject(r);
    return n;
}

/*
 * The candidate job ids, newest first when they come from the index. The one place that decides
 * where the list comes from: the job index (<p>:idx:created, <p>:idx:status:<s>,
 * <p>:idx:repo:<owner/name>, <p>:idx:user:<id>: sorted sets scored in ms, kept by the Lua
 * scripts, as `dreamctl jobs` reads them) when it exists, else a SCAN of the job hashes (sorted
 * afterwards). Of the sets a filter names (the status sets together, the repository's, the
 * user's) the smallest is read, so a filter never looks only among the newest LIST_MAX jobs of
 * all; the other filters are applied to the hashes. *source says which one answered.
 */
static int list_ids(struct dm_dashboard *d, struct dconn *dc, const struct dash_filter *f,
                    struct idlist *ids, const char **source)
{
    char key[DM_KEYS_MAX], pattern[DM_KEYS_MAX], st[64];
    char cursor[64] = "0";
    redisReply *r;

    r = dash_cmd(d, dc, "EXISTS %s", d->keys.idx_created);
    if (!r) {
        return -1;
    }
    if (r->type == REDIS_REPLY_INTEGER && r->integer == 1) {
        enum { ALL, STATUS, REPO, USER } pick = ALL;
        struct idlist skeys = {0}; /* the status sets */
        long long best = -1, n = 0;
        int rc = 0;
        freeReplyObject(r);
        *source = "index";
        for (const char *p = f->status && *f->status ? f->status : NULL; p && !rc;) {
            const char *e = strchr(p, ',');
            size_t l = e ? (size_t)(e - p) : strlen(p);
            snprintf(st, sizeof(st), "%.*s", (int)(l < sizeof(st) ? l : sizeof(st) - 1), p);
            if (*st && dm_keys_idx(key, sizeof(key), d->prefix, DM_IDX_STATUS, st) == 0) {
                rc = idlist_add(&skeys, key);
            }
            p = e ? e + 1 : NULL;
        }
        for (size_t i = 0; i < skeys.n && !rc; i++) {
            long long c = index_card(d, dc, skeys.v[i]);
            rc = c < 0 ? -1 : 0;
            n += c;
        }
        if (f->status && *f->status) {
            pick = STATUS;
            best = n;
        }
        for (int w = REPO; w <= USER && !rc; w++) { /* the repository's set, the user's */
            const char *name = w == REPO ? f->repo : f->user;
            if (name && *name &&
                dm_keys_idx(key, sizeof(key), d->prefix, w == REPO ? DM_IDX_REPO : DM_IDX_USER,
                            name) == 0) {
                rc = (n = index_card(d, dc, key)) < 0 ? -1 : 0;
                if (!rc && (best < 0 || n < best)) {
                    pick = w;
                    best = n;
                }
            }
        }
        if (!rc && pick == STATUS) {
            for (size_t i = 0; i < skeys.n && !rc; i++) {
                rc = index_read(d, dc, skeys.v[i], f, ids);
            }
        } else if (!rc) {
            if (pick != ALL) {
                dm_keys_idx(key, sizeof(key), d->prefix, pick == REPO ? DM_IDX_REPO : DM_IDX_USER,
                            pick == REPO ? f->repo : f->user);
            }
            rc = index_read(d, dc, pick == ALL ? d->keys.idx_created : key, f, ids);
        }
        idlist_free(&skeys);
        return rc;
    }
    freeReplyObject(r);
    *source = "scan";
    dm_keys_pattern(pattern, sizeof(pattern), d->prefix, DM_KEY_FAMILY_JOB);
    do {
        r = dash_cmd(d, dc, "SCAN %s MATCH %s COUNT 1000", cursor, pattern);
        if (!r) {
            return -1;
        }
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
            freeReplyObject(r);
            return -1;
        }
        snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
        for (size_t i = 0; i < r->element[1]->elements; i++) {
            const char *id =
                dm_keys_name_of(r->element[1]->element[i]->str, d->prefix, DM_KEY_FAMILY_JOB);
            if (id && idlist_add(ids, id)) {
                freeReplyObject(r);
                return -1;
            }
        }
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    return 0;
}

static int created_cmp(const void *a, const void *b)
{
    const cJSON *x = *(const cJSON *const *)a, *y = *(const cJSON *const *)b;
    double cx = cJSON_GetNumberValue(cJSON_GetObjectItem(x, "created"));
    double cy = cJSON_GetNumberValue(cJSON_GetObjectItem(y, "created"));
    if (cx != cy) {
        return cx < cy ? 1 : -1;
    }
    return strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(x, "jobId")),
                  cJSON_GetStringValue(cJSON_GetObjectItem(y, "jobId")));
}

int dash_events_last_id(struct dm_dashboard *d, struct dconn *dc, char *out, size_t n)
{
    redisReply *r = dash_cmd(d, dc, "XREVRANGE %s + - COUNT 1", d->keys.events);
    if (!r) {
        return -1;
    }
    snprintf(out, n, "0-0");
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
        r->element[0]->type == REDIS_REPLY_ARRAY && r->element[0]->elements >= 1 &&
        str_of(r->element[0]->element[0])) {
        snprintf(out, n, "%s", r->element[0]->element[0]->str);
    }
    freeReplyObject(r);
    return 0;
}

int dash_list_jobs(struct dm_dashboard *d, struct dconn *dc, const struct dash_filter *f,
                   cJSON **out)
{
    struct idlist ids = {0};
    const char *source = "scan";
    char last[64], hkey[DM_KEYS_MAX];
    cJSON *rows, **sorted = NULL;
    size_t nrows = 0;
    long long limit = f->limit > 0 && f->limit <= LIST_MAX ? f->limit : 200;

    /* The events id first: the page follows the stream from here, so nothing that changes
     * after the listing is missed. */
    if (dash_events_last_id(d, dc, last, sizeof(last)) || list_ids(d, dc, f, &ids, &source)) {
        idlist_free(&ids);
        return unreachable(out);
    }
    rows = cJSON_CreateArray();
    for (size_t i = 0; i < ids.n; i++) {
        if (dm_keys_job(hkey, sizeof(hkey), d->prefix, ids.v[i], DM_JOB_KEY_HASH) == 0) {
            redisAppendCommand(dc->rc,
                               "HMGET %s status stage created updated error job plan "
                               "pr_url cost branch seq",
                               hkey);
        }
    }
    for (size_t i = 0; i < ids.n; i++) {
        redisReply *h = NULL;
        cJSON *job, *o;
        const cJSON *owner, *name, *user;
        const char *st;
        long long created;
        char repo[300];

        if (dm_keys_job(hkey, sizeof(hkey), d->prefix, ids.v[i], DM_JOB_KEY_HASH) != 0) {
            continue;
        }
        if (redisGetReply(dc->rc, (void **)&h) != REDIS_OK || !h) {
            checked(dc, NULL);
            cJSON_Delete(rows);
            idlist_free(&ids);
            return unreachable(out);
        }
        st = h->type == REDIS_REPLY_ARRAY && h->elements == 11 ? str_of(h->element[0]) : NULL;
        if (!st || (f->status && *f->status && !has_word(f->status, st))) {
            freeReplyObject(h);
            continue;
        }
        created = str_of(h->element[2]) ? atoll(h->element[2]->str) : 0;
        job = str_of(h->element[5]) ? cJSON_Parse(h->element[5]->str) : NULL;
        owner = cJSON_GetObjectItem(job, "repoOwner");
        name = cJSON_GetObjectItem(job, "repoName");
        user = cJSON_GetObjectItem(job, "userId");
        snprintf(repo, sizeof(repo), "%s/%s", cJSON_IsString(owner) ? owner->valuestring : "?",
                 cJSON_IsString(name) ? name->valuestring : "?");
        if ((f->since_ms > 0 && created < f->since_ms) ||
            (f->repo && *f->repo && strcmp(f->repo, repo) != 0) ||
            (f->user && *f->user &&
             !(cJSON_IsString(user) && strcmp(f->user, user->valuestring) == 0))) {
            cJSON_Delete(job);
            freeReplyObject(h);
            continue;
        }
        o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "jobId", ids.v[i]);
        cJSON_AddStringToObject(o, "status", st);
        cJSON_AddStringToObject(o, "stage", str_of(h->element[1]) ? h->element[1]->str : "");
        cJSON_AddNumberToObject(o, "created", (double)created);
        cJSON_AddNumberToObject(o, "updated", str_of(h->element[3]) ? atof(h->element[3]->str) : 0);
        cJSON_AddStringToObject(o, "error", str_of(h->element[4]) ? h->element[4]->str : "");
        cJSON_AddStringToObject(o, "repo", repo);
        cJSON_AddStringToObject(o, "user", cJSON_IsString(user) ? user->valuestring : "");
        cJSON_AddStringToObject(o, "prUrl", str_of(h->element[7]) ? h->element[7]->str : "");
        cJSON_AddNumberToObject(o, "cost", str_of(h->element[8]) ? atof(h->element[8]->str) : 0);
        cJSON_AddStringToObject(o, "branch", str_of(h->element[9]) ? h->element[9]->str : "");
        cJSON_AddNumberToObject(o, "seq", str_of(h->element[10]) ? atof(h->element[10]->str) : 0);
        add_title(o, str_of(h->element[6]), job);
        cJSON_AddItemToArray(rows, o);
        nrows++;
        cJSON_Delete(job);
        freeReplyObject(h);
    }
    idlist_free(&ids);
    /* Newest first, at most limit. */
    if (nrows && (sorted = malloc(nrows * sizeof(*sorted))) != NULL) {
        cJSON *it, *keep = cJSON_CreateArray();
        size_t k = 0;
        cJSON_ArrayForEach(it, rows)
        {
            sorted[k++] = it;
        }
        qsort(sorted, nrows, sizeof(*sorted), created_cmp);
        for (size_t i = 0; i < nrows && i < (size_t)limit; i++) {
            cJSON_AddItemReferenceToArray(keep, sorted[i]);
        }
        /* References into rows: copy them out before rows goes. */
        it = cJSON_Duplicate(keep, 1);
        cJSON_Delete(keep);
        cJSON_Delete(rows);
        rows = it;
        free(sorted);
    }
    *out = cJSON_CreateObject();
    cJSON_AddItemToObject(*out, "jobs", rows);
    cJSON_AddStringToObject(*out, "eventsId", last);
    cJSON_AddStringToObject(*out, "source", source);
    return 200;
}

/* ---- one job --------------------------------------------------------------------------------- */

int dash_job(struct dm_dashboard *d, struct dconn *dc, const char *id, cJSON **out)
{
    char hkey[DM_KEYS_MAX], ekey[DM_KEYS_MAX], fkey[DM_KEYS_MAX];
    redisReply *h, *ev, *fl;
    cJSON *o, *hash, *events, *files, *job = NULL, *gate = NULL;

    if (!dm_jobreq_id_valid(id)) {
        return fail(out, 400, "not a job id");
    }
    dm_keys_job(hkey, sizeof(hkey), d->prefix, id, DM_JOB_KEY_HASH);
    dm_keys_job(ekey, sizeof(ekey), d->prefix, id, DM_JOB_KEY_EVENTS);
    dm_keys_job(fkey, sizeof(fkey), d->prefix, id, DM_JOB_KEY_FILES);
    h = dash_cmd(d, dc, "HGETALL %s", hkey);
    if (!h) {
        return unreachable(out);
    }
    if (h->type != REDIS_REPLY_ARRAY || h->elements == 0) {
        freeReplyObject(h);
        return fail(out, 404, "no such job (never started, or expired)");
    }
    ev = dash_cmd(d, dc, "XRANGE %s - + COUNT 5000", ekey);
    fl = ev ? dash_cmd(d, dc, "HGETALL %s", fkey) : NULL;
    if (!ev || !fl) {
        freeReplyObject(h);
        freeReplyObject(ev);
        return unreachable(out);
    }
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "jobId", id);
    hash = cJSON_AddObjectToObject(o, "hash");
    for (size_t i = 0; i + 1 < h->elements; i += 2) {
        const char *k = str_of(h->element[i]), *v = str_of(h->element[i + 1]);
        if (!k || !v) {
            continue;
        }
        if (strcmp(k, "job") == 0) {
            job = cJSON_Parse(v);
        } else if (strcmp(k, "plan") == 0) {
            cJSON *p = cJSON_Parse(v);
            if (p) {
                cJSON_AddItemToObject(o, "plan", p);
            }
        } else {
            cJSON_AddStringToObject(hash, k, v);
        }
    }
    add_title(o, field_of(h, "plan"), job);
    if (job) {
        cJSON_AddItemToObject(o, "job", job);
    }
    events = cJSON_AddArrayToObject(o, "events");
    for (size_t i = 0; ev->type == REDIS_REPLY_ARRAY && i < ev->elements; i++) {
        const redisReply *e = ev->element[i];
        const char *json = e->type == REDIS_REPLY_ARRAY && e->elements >= 2
                               ? field_of(e->element[1], "event")
                               : NULL;
        cJSON *x = json ? cJSON_Parse(json) : NULL;
        const cJSON *st;
        if (!x) {
            continue;
        }
        cJSON_AddStringToObject(x, "id", e->element[0]->str);
        st = cJSON_GetObjectItem(x, "status");
        if (cJSON_IsString(st) && strcmp(st->valuestring, "paused_approval") == 0) {
            cJSON_Delete(gate);
            gate = cJSON_Duplicate(x, 1);
        }
        cJSON_AddItemToArray(events, x);
    }
    if (gate) {
        cJSON_AddItemToObject(o, "gate", gate); /* the gate's findings (latest parking) */
    }
    files = cJSON_AddArrayToObject(o, "files");
    for (size_t i = 0; fl->type == REDIS_REPLY_ARRAY && i + 1 < fl->elements; i += 2) {
        const redisReply *k = fl->element[i], *v = fl->element[i + 1];
        cJSON *f;
        if (!str_of(k) || v->type != REDIS_REPLY_STRING) {
            continue;
        }
        f = cJSON_CreateObject();
        cJSON_AddStringToObject(f, "path", k->str);
        cJSON_AddNumberToObject(f, "bytes", (double)v->len);
        if (v->len > FILE_CONTENT_MAX) {
            char *cut = strndup(v->str, dm_text_cut(v->str, v->len, FILE_CONTENT_MAX));
            cJSON_AddStringToObject(f, "content", cut ? cut : "");
            cJSON_AddTrueToObject(f, "truncated");
            free(cut);
        } else {
            cJSON_AddStringToObject(f, "content", v->str);
        }
        cJSON_AddItemToArray(files, f);
    }
    freeReplyObject(h);
    freeReplyObject(ev);
    freeReplyObject(fl);
    *out = o;
    return 200;
}

/* ---- parked, workers, dead letters ------------------------------------------------------- */

int dash_parked(struct dm_dashboard *d, struct dconn *dc, cJSON **out)
{
    redisReply *r = dash_cmd(d, dc, "ZRANGE %s 0 %d WITHSCORES", d->keys.parked, LIST_MAX - 1);
    cJSON *a;
    char hkey[DM_KEYS_MAX];

    if (!r) {
        return unreachable(out);
    }
    a = cJSON_CreateArray();
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements; i += 2) {
        const char *id = str_of(r->element[i]);
        redisReply *h;
        cJSON *o, *job;
        if (!id || dm_keys_job(hkey, sizeof(hkey), d->prefix, id, DM_JOB_KEY_HASH)) {
            continue;
        }
        h = dash_cmd(d, dc, "HMGET %s status job plan", hkey);
        if (!h) {
            freeReplyObject(r);
            cJSON_Delete(a);
            return unreachable(out);
        }
        o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "jobId", id);
        cJSON_AddNumberToObject(o, "parkedAt",
                                str_of(r->element[i + 1]) ? atof(r->element[i + 1]->str) : 0);
        if (h->type == REDIS_REPLY_ARRAY && h->elements == 3) {
            cJSON_AddStringToObject(o, "status", str_of(h->element[0]) ? h->element[0]->str : "");
            job = str_of(h->element[1]) ? cJSON_Parse(h->element[1]->str) : NULL;
            add_title(o, str_of(h->element[2]), job);
            cJSON_Delete(job);
        }
        cJSON_AddItemToArray(a, o);
        freeReplyObject(h);
    }
    freeReplyObject(r);
    *out = cJSON_CreateObject();
    cJSON_AddItemToObject(*out, "parked", a);
    return 200;
}

int dash_workers(struct dm_dashboard *d, struct dconn *dc, cJSON **out)
{
    char cursor[64] = "0", pattern[DM_KEYS_MAX];
    cJSON *a = cJSON_CreateArray();

    dm_keys_pattern(pattern, sizeof(pattern), d->prefix, DM_KEY_FAMILY_WORKER);
    do {
        redisReply *r = dash_cmd(d, dc, "SCAN %s MATCH %s COUNT 1000", cursor, pattern);
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
            freeReplyObject(r);
            cJSON_Delete(a);
            return unreachable(out);
        }
        snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
        for (size_t i = 0; i < r->element[1]->elements; i++) {
            const char *key = r->element[1]->element[i]->str;
            const char *name = dm_keys_name_of(key, d->prefix, DM_KEY_FAMILY_WORKER);
            redisReply *h;
            cJSON *o;
            if (!name || !(h = dash_cmd(d, dc, "HGETALL %s", key))) {
                continue;
            }
            if (h->type == REDIS_REPLY_ARRAY && h->elements > 0) {
                o = cJSON_CreateObject();
                cJSON_AddStringToObject(o, "name", name);
                for (size_t j = 0; j + 1 < h->elements; j += 2) {
                    if (str_of(h->element[j]) && str_of(h->element[j + 1])) {
                        cJSON_AddStringToObject(o, h->element[j]->str, h->element[j + 1]->str);
                    }
                }
                cJSON_AddItemToArray(a, o);
            }
            freeReplyObject(h);
        }
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    *out = cJSON_CreateObject();
    cJSON_AddItemToObject(*out, "workers", a);
    return 200;
}

int dash_dead(struct dm_dashboard *d, struct dconn *dc, cJSON **out)
{
    redisReply *r = dash_cmd(d, dc, "XREVRANGE %s + - COUNT %d", d->keys.dead, LIST_MAX);
    cJSON *a;

    if (!r) {
        return unreachable(out);
    }
    a = cJSON_CreateArray();
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        const redisReply *e = r->element[i];
        const char *job, *v;
        char jid[DM_JOBREQ_ID_MAX + 1] = "";
        cJSON *o;
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 2) {
            continue;
        }
        job = field_of(e->element[1], "job");
        if (job && dm_jobreq_peek_id(jid, sizeof(jid), job, strlen(job))) {
            jid[0] = '\0';
        }
        o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "id", e->element[0]->str);
        cJSON_AddStringToObject(o, "jobId", jid);
        cJSON_AddStringToObject(o, "entry", (v = field_of(e->element[1], "entry")) ? v : "");
        cJSON_AddStringToObject(o, "reason", (v = field_of(e->element[1], "reason")) ? v : "");
        cJSON_AddStringToObject(o, "attempts", (v = field_of(e->element[1], "attempts")) ? v : "");
        cJSON_AddStringToObject(o, "ts", (v = field_of(e->element[1], "ts")) ? v : "");
        cJSON_AddBoolToObject(o, "requeueable", job && *job);
        cJSON_AddItemToArray(a, o);
    }
    freeReplyObject(r);
    *out = cJSON_CreateObject();
    cJSON_AddItemToObject(*out, "dead", a);
    return 200;
}

/* ---- actions ------------------------------------------------------------------------------- */

/* A script's refusal ("NOTPARKED job is running") as an HTTP status and a message. */
static int refused(cJSON **out, const char *action, const char *err)
{
    const char *sp = strchr(err, ' ');
    char msg[512];

    if (strncmp(err, "NOTFOUND", 8) == 0 ||
        (strncmp(err, "NOTPARKED", 9) == 0 && sp && strcmp(sp + 1, "job is unknown") == 0)) {
        snprintf(msg, sizeof(msg), "cannot %s: no such job", action);
        return fail(out, 404, msg);
    }
    if (strncmp(err, "NOTPARKED", 9) == 0) {
        snprintf(msg, sizeof(msg), "cannot %s: it is not parked (%s)", action, sp ? sp + 1 : err);
        return fail(out, 409, msg);
    }
    snprintf(msg, sizeof(msg), "cannot %s: %s", action, sp ? sp + 1 : err);
    return fail(out, 409, msg);
}

static int is_entry_id(const char *s)
{
    size_t a = strspn(s, "0123456789");
    return a > 0 && s[a] == '-' && s[a + 1] && strspn(s + a + 1, "0123456789") == strlen(s + a + 1);
}

int dash_action(struct dm_dashboard *d, struct dconn *dc, const char *action, const char *id,
                const char *reason, const char *who, cJSON **out)
{
    char k_hash[DM_KEYS_MAX], k_events[DM_KEYS_MAX], k_files[DM_KEYS_MAX];
    char ts[32], now[24];
    const char *argv[3 + 5 + 11];
    const char *keys[5];
    const char *args[11];
    const char *script;
    int nkeys = 5, nargs = 7, argc = 0;
    char nk[8];
    redisReply *r;
    int status = 200;

    dm_time_rfc3339(-1, ts, sizeof(ts));
    snprintf(now, sizeof(now), "%lld", dm_time_now_ms());
    if (strcmp(action, "requeue") == 0) {
        /* dreamctl dead requeue: KEYS dead, jobs; ARGV dead id, prefix, now, ts, who, gmax,
         * job events maxlen. */
        if (!is_entry_id(id)) {
            return fail(out, 400, "not a dead letter id");
        }
        script = dm_script_requeue;
        nkeys = 2;
        keys[0] = d->keys.dead;
        keys[1] = d->keys.jobs;
        args[0] = id;
        args[1] = d->prefix;
        args[2] = now;
        args[3] = ts;
        args[4] = who;
        args[5] = d->gmax;
        args[6] = DM_KEYS_JOB_EVENTS_MAXLEN;
    } else {
        /* The approver scripts (as ctl_ops.c calls them): KEYS 1 job hash, 2 job events,
         * 3 global events; ARGV 1 jobId, 2 who, 3 ts, 4 now ms, 5 events channel, 6 global
         * maxlen, 7 job events maxlen; keys 4-5 and args 8-9 are each script's own. */
        if (!dm_jobreq_id_valid(id)) {
            return fail(out, 400, "not a job id");
        }
        dm_keys_job(k_hash, sizeof(k_hash), d->prefix, id, DM_JOB_KEY_HASH);
        dm_keys_job(k_events, sizeof(k_events), d->prefix, id, DM_JOB_KEY_EVENTS);
        dm_keys_job(k_files, sizeof(k_files), d->prefix, id, DM_JOB_KEY_FILES);
        keys[0] = k_hash;
        keys[1] = k_events;
        keys[2] = d->keys.events;
        args[0] = id;
        args[1] = who;
        args[2] = ts;
        args[3] = now;
        args[4] = d->keys.events;
        args[5] = d->gmax;
        args[6] = DM_KEYS_JOB_EVENTS_MAXLEN;
        if (strcmp(action, "approve") == 0) {
            script = dm_script_approve;
            keys[3] = d->keys.jobs;
            keys[4] = d->keys.parked;
        } else if (strcmp(action, "reject") == 0) {
            script = dm_script_reject;
            keys[3] = d->keys.parked;
            keys[4] = k_files;
            args[7] = reason ? reason : "";
            args[8] = d->ttl;
            nargs = 9;
        } else if (strcmp(action, "retry") == 0) {
            /* RETRY (dreamctl retry ID): KEYS 4 jobs stream, 5 files; ARGV 8 force, 9 from
             * stage, 10 regenerate, 11 token: none of them from the dashboard. */
            script = dm_script_retry;
            keys[3] = d->keys.jobs;
            keys[4] = k_files;
            args[7] = "";
            args[8] = "";
            args[9] = "";
            args[10] = "";
            nargs = 11;
        } else if (strcmp(action, "cancel") == 0) {
            script = dm_script_cancel;
            keys[3] = d->keys.parked;
            keys[4] = k_files;
            args[7] = d->ttl;
            args[8] = d->keys.control;
            nargs = 9;
        } else {
            return fail(out, 404, "no such action");
        }
    }
    snprintf(nk, sizeof(nk), "%d", nkeys);
    argv[argc++] = "EVAL";
    argv[argc++] = script;
    argv[argc++] = nk;
    for (int i = 0; i < nkeys; i++) {
        argv[argc++] = keys[i];
    }
    for (int i = 0; i < nargs; i++) {
        argv[argc++] = args[i];
    }
    r = dash_cmdv(d, dc, argc, argv, NULL);
    if (!r) {
        return unreachable(out);
    }
    if (r->type == REDIS_REPLY_ERROR) {
        status = refused(out, action, r->str);
    } else {
        *out = cJSON_CreateObject();
        cJSON_AddStringToObject(*out, "action", action);
        cJSON_AddStringToObject(*out, "id", id);
        if (strcmp(action, "cancel") == 0 &&
            (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS)) {
            cJSON_AddStringToObject(*out, "result",
                                    strcmp(r->str, "cancelled") == 0 ? "cancelled" : "requested");
        } else if (strcmp(action, "requeue") == 0 && r->type == REDIS_REPLY_ARRAY &&
                   r->elements == 2 && str_of(r->element[0])) {
            cJSON_AddStringToObject(*out, "entry", r->element[0]->str);
        }
        dm_info("dashboard", strcmp(action, "requeue") ? id : NULL, "%s by %s", action, who);
    }
    freeReplyObject(r);
    return status;
}
