/*
 * dmproc: dreamd replicas, job submission and event collection for integration tests (see
 * dmproc.h). Test processes only.
 */
#include "dmproc.h"

#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void dmt_replica_start(struct dmt_replica *rep, const struct dmt_redis *r, const char *dir,
                       const char *name, const char *const *extra)
{
    char bin[512], url[128], consumer[128];
    const char *argv[40];
    int n = 0;

    snprintf(bin, sizeof(bin), "%s/dreamd", dmt_binary_dir());
    snprintf(url, sizeof(url), "--redis-url=%s", dmt_redis_url(r));
    snprintf(consumer, sizeof(consumer), "--consumer=%s", name);
    snprintf(rep->name, sizeof(rep->name), "%s", name);
    snprintf(rep->log, sizeof(rep->log), "%s/%s.log", dir, name);
    argv[n++] = bin;
    argv[n++] = url;
    argv[n++] = consumer;
    argv[n++] = "--admin-addr=";
    argv[n++] = "--log-level=info";
    for (int i = 0; extra && extra[i] && n < 38; i++) {
        argv[n++] = extra[i];
    }
    argv[n] = NULL;
    rep->pid = dmt_spawn((char *const *)argv, NULL, rep->log);
}

void dmt_replica_wait_ready(const struct dmt_replica *rep, redisContext *c, int timeout_ms)
{
    long long deadline = dmt_now_ms() + timeout_ms;
    while (dmt_now_ms() < deadline) {
        redisReply *r = redisCommand(c, "EXISTS dream:worker:%s", rep->name);
        long long v = r && r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
        freeReplyObject(r);
        if (v) {
            return;
        }
        dmt_sleep_ms(20);
    }
    cr_assert_fail("replica %s not ready after %d ms (log %s)", rep->name, timeout_ms, rep->log);
}

int dmt_replica_stop(struct dmt_replica *rep, int timeout_ms)
{
    int st = dmt_stop(rep->pid, SIGTERM, timeout_ms);
    rep->pid = 0;
    return st;
}

char *dmt_job_json(const char *id, const char *spec, const char *trust)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *b = cJSON_CreateObject();
    char *s;
    cJSON_AddStringToObject(o, "jobId", id);
    cJSON_AddStringToObject(o, "specId", "spec-1");
    cJSON_AddStringToObject(o, "userId", "user-1");
    cJSON_AddStringToObject(o, "repoOwner", "acme");
    cJSON_AddStringToObject(o, "repoName", "app");
    cJSON_AddStringToObject(o, "specMarkdown",
                            spec ? spec : "# Todo API\n\n## API\n- GET /todos lists todos\n");
    cJSON_AddNumberToObject(b, "maxTokens", 100000);
    cJSON_AddNumberToObject(b, "maxDollars", 5);
    cJSON_AddItemToObject(o, "budget", b);
    cJSON_AddStringToObject(o, "trustLevel", trust ? trust : "builder");
    s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

char *dmt_submit(redisContext *c, const char *json)
{
    redisReply *r = redisCommand(c, "XADD dream:jobs * type build job %s", json);
    char *id;
    cr_assert(r && r->type == REDIS_REPLY_STRING, "XADD failed");
    id = strdup(r->str);
    freeReplyObject(r);
    return id;
}

const struct dmt_jobevents *dmt_find(const struct dmt_jobevents *v, int n, const char *id)
{
    for (int i = 0; i < n; i++) {
        if (strcmp(v[i].id, id) == 0) {
            return &v[i];
        }
    }
    return NULL;
}

static int is_terminal(const char *s)
{
    return !strcmp(s, "complete") || !strcmp(s, "failed") || !strcmp(s, "cancelled") ||
           !strcmp(s, "dead_lettered") || !strcmp(s, "rejected");
}

int dmt_collect(redisContext *c, struct dmt_jobevents **out)
{
    struct dmt_jobevents *v = NULL;
    int n = 0, cap = 0;
    char start[64] = "-";

    for (;;) {
        redisReply *r = redisCommand(c, "XRANGE dream:events %s + COUNT 1000", start);
        size_t got;
        cr_assert(r && r->type == REDIS_REPLY_ARRAY);
        got = r->elements;
        for (size_t i = 0; i < r->elements; i++) {
            redisReply *e = r->element[i];
            cJSON *ev = cJSON_Parse(e->element[1]->element[1]->str);
            const char *id, *status;
            int seq;
            struct dmt_jobevents *j = NULL;
            cr_assert_not_null(ev, "event is not JSON: %s", e->element[1]->element[1]->str);
            id = cJSON_GetStringValue(cJSON_GetObjectItem(ev, "jobId"));
            status = cJSON_GetStringValue(cJSON_GetObjectItem(ev, "status"));
            seq = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(ev, "seq"));
            cr_assert(id && status);
            for (int k = 0; k < n; k++) {
                if (strcmp(v[k].id, id) == 0) {
                    j = &v[k];
                    break;
                }
            }
            if (!j) {
                if (n == cap) {
                    cap = cap ? cap * 2 : 64;
                    v = realloc(v, sizeof(*v) * (size_t)cap);
                }
                j = &v[n++];
                memset(j, 0, sizeof(*j));
                snprintf(j->id, sizeof(j->id), "%s", id);
                j->seq_ok = 1;
            }
            j->n++;
            if (seq != j->n) {
                j->seq_ok = 0;
            }
            snprintf(j->last, sizeof(j->last), "%s", status);
            if (is_terminal(status)) {
                const char *w = cJSON_GetStringValue(cJSON_GetObjectItem(ev, "worker"));
                j->terminal++;
                snprintf(j->worker, sizeof(j->worker), "%s", w ? w : "");
            }
            cJSON_Delete(ev);
            if (i == r->elements - 1) {
                snprintf(start, sizeof(start), "(%s", e->element[0]->str);
            }
        }
        freeReplyObject(r);
        if (got < 1000) {
            break;
        }
    }
    *out = v;
    return n;
}

int dmt_wait_terminal(redisContext *c, int want, int timeout_ms)
{
    long long deadline = dmt_now_ms() + timeout_ms;
    int done = 0;
    for (;;) {
        struct dmt_jobevents *v;
        int n = dmt_collect(c, &v);
        done = 0;
        for (int i = 0; i < n; i++) {
            done += v[i].terminal > 0;
        }
        free(v);
        if (done >= want || dmt_now_ms() >= deadline) {
            return done;
        }
        dmt_sleep_ms(100);
    }
}

int dmt_count_in_file(const char *path, const char *needle)
{
    char *data = dmt_read_file(path);
    int count = 0;
    for (char *p = data; p && (p = strstr(p, needle)); p += strlen(needle)) {
        count++;
    }
    free(data);
    return count;
}

int dmt_wait_in_file(const char *path, const char *needle, int want, int timeout_ms)
{
    long long deadline = dmt_now_ms() + timeout_ms;
    int n;
    while ((n = dmt_count_in_file(path, needle)) < want && dmt_now_ms() < deadline) {
        dmt_sleep_ms(20);
    }
    return n;
}

long long dmt_pending(redisContext *c, const char *consumer)
{
    redisReply *r;
    long long n = -1;
    if (consumer) {
        /* The extended form lists entries; more than 10000 is more than any test submits. */
        r = redisCommand(c, "XPENDING dream:jobs workers - + 10000 %s", consumer);
        if (r && r->type == REDIS_REPLY_ARRAY) {
            n = (long long)r->elements;
        }
    } else {
        r = redisCommand(c, "XPENDING dream:jobs workers");
        if (r && r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
            r->element[0]->type == REDIS_REPLY_INTEGER) {
            n = r->element[0]->integer;
        }
    }
    freeReplyObject(r);
    return n;
}

long long dmt_wait_pending(redisContext *c, const char *consumer, long long want, int timeout_ms)
{
    long long deadline = dmt_now_ms() + timeout_ms;
    long long n;
    while ((n = dmt_pending(c, consumer)) != want && dmt_now_ms() < deadline) {
        dmt_sleep_ms(20);
    }
    return n;
}

int dmt_wait_started(redisContext *c, int want, int timeout_ms)
{
    long long deadline = dmt_now_ms() + timeout_ms;
    for (;;) {
        struct dmt_jobevents *v;
        int n = dmt_collect(c, &v);
        free(v);
        if (n >= want || dmt_now_ms() >= deadline) {
            return n;
        }
        dmt_sleep_ms(20);
    }
}

static int has_event(redisContext *c, const char *id, const char *status)
{
    redisReply *r = redisCommand(c, "XRANGE dream:events - +");
    int found = 0;
    for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i < r->elements && !found; i++) {
        cJSON *ev = cJSON_Parse(r->element[i]->element[1]->element[1]->str);
        const char *j = cJSON_GetStringValue(cJSON_GetObjectItem(ev, "jobId"));
        const char *s = cJSON_GetStringValue(cJSON_GetObjectItem(ev, "status"));
        found = j && s && strcmp(j, id) == 0 && strcmp(s, status) == 0;
        cJSON_Delete(ev);
    }
    freeReplyObject(r);
    return found;
}

int dmt_wait_event(redisContext *c, const char *id, const char *status, int timeout_ms)
{
    long long deadline = dmt_now_ms() + timeout_ms;
    int found;
    while (!(found = has_event(c, id, status)) && dmt_now_ms() < deadline) {
        dmt_sleep_ms(20);
    }
    return found;
}

/* CLIENT LIST: one line per client, "... flags=b ... cmd=xread ..." for one blocked in XREAD. */
static int is_blocked_in(redisContext *c, const char *cmd)
{
    redisReply *r = redisCommand(c, "CLIENT LIST");
    char want[64];
    int found = 0;
    snprintf(want, sizeof(want), " cmd=%s ", cmd);
    for (char *line = r && r->type == REDIS_REPLY_STRING ? r->str : NULL;
         line && *line && !found;) {
        char *end = strchr(line, '\n');
        if (end) {
            *end = '\0';
        }
        found = strstr(line, want) && strstr(line, " flags=b ");
        line = end ? end + 1 : NULL;
    }
    freeReplyObject(r);
    return found;
}

int dmt_wait_blocked(redisContext *c, const char *cmd, int timeout_ms)
{
    long long deadline = dmt_now_ms() + timeout_ms;
    int found;
    while (!(found = is_blocked_in(c, cmd)) && dmt_now_ms() < deadline) {
        dmt_sleep_ms(20);
    }
    return found;
}
