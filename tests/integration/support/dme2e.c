/*
 * dme2e: end-to-end test world (see dme2e.h). Test processes only.
 */
#include "dme2e.h"

#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "githttp.h"
#include "dream/core/buf.h"

static void start_fake_github(struct dmt_world *w)
{
    char log[1024], script[1024];
    long long deadline;

    snprintf(log, sizeof(log), "%s/fake_github.log", w->dir);
    snprintf(script, sizeof(script), "%s/tests/fakes/fake_github.py", dmt_source_dir());
    {
        char *argv[] = {"python3",    script,       "--port",   "0",       "--token",
                        DMT_GH_TOKEN, "--git-root", w->remotes, "--quiet", NULL};
        w->gh_pid = dmt_spawn(argv, NULL, log);
    }
    deadline = dmt_now_ms() + 15000;
    while (dmt_now_ms() < deadline) {
        char *out = dmt_read_file(log);
        char *p = out ? strstr(out, "PORT=") : NULL;
        if (p) {
            w->gh_port = atoi(p + 5);
            snprintf(w->gh_url, sizeof(w->gh_url), "http://127.0.0.1:%d", w->gh_port);
            free(out);
            return;
        }
        free(out);
        dmt_sleep_ms(20);
    }
    cr_assert_fail("fake_github did not start (log %s)", log);
}

void dmt_world_start(struct dmt_world *w, const char *const *llm_args)
{
    char path[1024];

    memset(w, 0, sizeof(*w));
    w->dir = dmt_tempdir("world");
    snprintf(path, sizeof(path), "%s/remotes", w->dir);
    w->remotes = strdup(path);
    snprintf(path, sizeof(path), "mkdir -p '%s/remotes' '%s/data'", w->dir, w->dir);
    cr_assert_eq(system(path), 0);
    w->bare = dmt_git_make_repo(w->remotes, "acme", "app", "main");
    dmt_redis_start(&w->redis);
    w->rc = dmt_redis_connect(&w->redis);
    dmt_fakeor_start(&w->llm, llm_args);
    start_fake_github(w);
}

void dmt_world_stop(struct dmt_world *w)
{
    dmt_kill_all();
    if (w->rc) {
        redisFree(w->rc);
        w->rc = NULL;
    }
    dmt_fakeor_stop(&w->llm);
    if (w->gh_pid > 0) {
        dmt_stop(w->gh_pid, SIGTERM, 3000);
        w->gh_pid = 0;
    }
    dmt_redis_stop(&w->redis);
    if (!getenv("DMT_KEEP")) {
        dmt_rmtree(w->dir); /* DMT_KEEP=1 keeps the logs and repositories for a post-mortem */
    }
    free(w->dir);
    free(w->remotes);
    free(w->bare);
    w->dir = w->remotes = w->bare = NULL;
}

void dmt_world_replica(struct dmt_world *w, struct dmt_replica *rep, const char *name,
                       const char *const *extra)
{
    /* The world's file:// remotes and the fake GitHub's token. */
    dmt_world_replica_git(w, rep, name, NULL, NULL, extra);
}

static size_t collect(char *data, size_t size, size_t n, void *arg)
{
    dm_buf_append(arg, data, size * n);
    return size * n;
}

char *dmt_world_gh(const struct dmt_world *w, const char *method, const char *path,
                   const char *body)
{
    CURL *c = curl_easy_init();
    struct dm_buf b;
    char url[512];

    dm_buf_init(&b, 0);
    snprintf(url, sizeof(url), "%s%s", w->gh_url, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    }
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    cr_assert_eq(curl_easy_perform(c), CURLE_OK, "fake GitHub %s %s", method, path);
    curl_easy_cleanup(c);
    return dm_buf_detach(&b);
}

int dmt_world_pr_count(const struct dmt_world *w)
{
    char *out = dmt_world_gh(w, "GET", "/_fake/pulls", NULL);
    cJSON *a = cJSON_Parse(out);
    int n;
    cr_assert(cJSON_IsArray(a), "pulls: %s", out);
    n = cJSON_GetArraySize(a);
    cJSON_Delete(a);
    free(out);
    return n;
}

char *dmt_world_job(const char *id, const char *spec, const char *trust, long long max_tokens,
                    double max_dollars)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *b = cJSON_CreateObject();
    char *s;
    cJSON_AddStringToObject(o, "jobId", id);
    cJSON_AddStringToObject(o, "specId", "spec-e2e");
    cJSON_AddStringToObject(o, "userId", "user-1");
    cJSON_AddStringToObject(o, "repoOwner", "acme");
    cJSON_AddStringToObject(o, "repoName", "app");
    cJSON_AddStringToObject(o, "specMarkdown",
                            spec ? spec
                                 : "# Todo API\n\nA small todo service.\n\n## API\n"
                                   "- GET /todos lists todos\n\n## Database\n"
                                   "- todos table\n\n## UI\n- TodoList component\n");
    cJSON_AddNumberToObject(b, "maxTokens", (double)max_tokens);
    cJSON_AddNumberToObject(b, "maxDollars", max_dollars);
    cJSON_AddItemToObject(o, "budget", b);
    cJSON_AddStringToObject(o, "trustLevel", trust ? trust : "builder");
    s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

char *dmt_world_hget(const struct dmt_world *w, const char *id, const char *field)
{
    redisReply *r = redisCommand(w->rc, "HGET dream:job:%s %s", id, field);
    char *v = r && r->type == REDIS_REPLY_STRING ? strdup(r->str) : NULL;
    freeReplyObject(r);
    return v;
}

int dmt_world_wait_status(const struct dmt_world *w, const char *id, const char *statuses,
                          int timeout_ms)
{
    long long deadline = dmt_now_ms() + timeout_ms;
    while (dmt_now_ms() < deadline) {
        char *s = dmt_world_hget(w, id, "status");
        if (s) {
            char want[512];
            snprintf(want, sizeof(want), ",%s,", statuses);
            char probe[128];
            snprintf(probe, sizeof(probe), ",%s,", s);
            free(s);
            if (strstr(want, probe)) {
                return 1;
            }
        }
        dmt_sleep_ms(50);
    }
    return 0;
}

char *dmt_world_statuses(const struct dmt_world *w, const char *id)
{
    redisReply *r = redisCommand(w->rc, "XRANGE dream:job:%s:events - +", id);
    struct dm_buf b;
    dm_buf_init(&b, 0);
    for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        cJSON *ev = cJSON_Parse(r->element[i]->element[1]->element[1]->str);
        const char *st = cJSON_GetStringValue(cJSON_GetObjectItem(ev, "status"));
        dm_buf_printf(&b, "%s%s", i ? "," : "", st ? st : "?");
        cJSON_Delete(ev);
    }
    freeReplyObject(r);
    return dm_buf_detach(&b);
}

char *dmt_world_branch_files(const struct dmt_world *w, const char *branch)
{
    return dmt_sh_try("git --git-dir='%s' ls-tree -r --name-only '%s' 2>/dev/null", w->bare,
                      branch);
}

/* ---- added for tests/integration/test_generation.c ---- */

#include <time.h>

struct cJSON *dmt_world_events(const struct dmt_world *w, const char *id)
{
    redisReply *r = redisCommand(w->rc, "XRANGE dream:job:%s:events - +", id);
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        redisReply *fields = r->element[i]->element[1];
        for (size_t k = 0; k + 1 < fields->elements; k += 2) {
            if (strcmp(fields->element[k]->str, "event") == 0) {
                cJSON *ev = cJSON_Parse(fields->element[k + 1]->str);
                cr_assert_not_null(ev, "event is JSON: %s", fields->element[k + 1]->str);
                cJSON_AddItemToArray(a, ev);
            }
        }
    }
    freeReplyObject(r);
    return a;
}

char *dmt_world_branch_file(const struct dmt_world *w, const char *branch, const char *path)
{
    return dmt_sh_try("git --git-dir='%s' show '%s:%s' 2>/dev/null", w->bare, branch, path);
}

char *dmt_world_refs(const struct dmt_world *w)
{
    return dmt_sh("git --git-dir='%s' for-each-ref --format='%%(refname)' refs/heads | sort",
                  w->bare);
}

long long dmt_world_ts_ms(const char *ts)
{
    struct tm tm;
    int ms = 0;
    char *end;

    memset(&tm, 0, sizeof(tm));
    if (!ts || !(end = strptime(ts, "%Y-%m-%dT%H:%M:%S", &tm))) {
        return -1;
    }
    if (*end == '.') {
        ms = atoi(end + 1);
    }
    return (long long)timegm(&tm) * 1000 + ms;
}

/* ---- added for tests/integration/test_gate.c and test_push.c ---- */

#include <unistd.h>

void dmt_world_replica_git(struct dmt_world *w, struct dmt_replica *rep, const char *name,
                           const char *git_url, const char *token, const char *const *extra)
{
    char bin[512], url[128], consumer[128], llm[160], gh[160], git[1200], data[1200], esb[1200];
    char tok[512];
    const char *argv[48];
    char more[512];
    char *env[] = {"OPENROUTER_API_KEY=" DMT_OR_KEY, tok, w->replica_env ? more : NULL, NULL};
    int n = 0;

    snprintf(tok, sizeof(tok), "GITHUB_TOKEN=%s", token ? token : DMT_GH_TOKEN);
    snprintf(more, sizeof(more), "%s", w->replica_env ? w->replica_env : "");
    snprintf(bin, sizeof(bin), "%s/dreamd", dmt_binary_dir());
    snprintf(url, sizeof(url), "--redis-url=%s", dmt_redis_url(&w->redis));
    snprintf(consumer, sizeof(consumer), "--consumer=%s", name);
    snprintf(llm, sizeof(llm), "--llm-url=%s", w->llm.base);
    snprintf(gh, sizeof(gh), "--github-api-url=%s", w->gh_url);
    if (git_url) {
        snprintf(git, sizeof(git), "--git-url=%s", git_url);
    } else {
        snprintf(git, sizeof(git), "--git-url=file://%s/{owner}/{repo}.git", w->remotes);
    }
    snprintf(data, sizeof(data), "--data-dir=%s/data/%s", w->dir, name);
    snprintf(esb, sizeof(esb), "--esbuild=%s/.tools/node_modules/.bin/esbuild", dmt_source_dir());
    snprintf(rep->name, sizeof(rep->name), "%s", name);
    snprintf(rep->log, sizeof(rep->log), "%s/%s.log", w->dir, name);
    argv[n++] = bin;
    argv[n++] = url;
    argv[n++] = consumer;
    argv[n++] = llm;
    argv[n++] = gh;
    argv[n++] = git;
    argv[n++] = data;
    argv[n++] = esb;
    argv[n++] = "--admin-addr=";
    argv[n++] = "--forge-write-interval-ms=0";
    argv[n++] = "--log-level=info";
    for (int i = 0; extra && extra[i] && n < 46; i++) {
        argv[n++] = extra[i];
    }
    argv[n] = NULL;
    rep->pid = dmt_spawn((char *const *)argv, env, rep->log);
}

void dmt_world_serve_http(struct dmt_world *w, struct dmt_githttp *g)
{
    dmt_githttp_start(g, "x-access-token", DMT_GH_TOKEN);
    /* The server's repository root becomes the world's remotes, so both transports and the fake
     * GitHub's `git rev-list` checks see the same bare repositories. */
    dmt_rmtree(g->root);
    cr_assert_eq(symlink(w->remotes, g->root), 0, "symlink %s -> %s", g->root, w->remotes);
}

static int holds(const char *s, size_t len, const char *needle)
{
    size_t n = strlen(needle);
    if (!s || len < n) {
        return 0;
    }
    for (size_t i = 0; i + n <= len; i++) {
        if (memcmp(s + i, needle, n) == 0) {
            return 1;
        }
    }
    return 0;
}

/* Whether any string inside a reply (recursively) holds needle. */
static int reply_holds(const redisReply *r, const char *needle)
{
    if (!r) {
        return 0;
    }
    if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) {
        return holds(r->str, r->len, needle);
    }
    if (r->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < r->elements; i++) {
            if (reply_holds(r->element[i], needle)) {
                return 1;
            }
        }
    }
    return 0;
}

char *dmt_world_redis_grep(const struct dmt_world *w, const char *needle)
{
    struct dm_buf out;
    char cursor[64] = "0";

    dm_buf_init(&out, 0);
    do {
        redisReply *r = redisCommand(w->rc, "SCAN %s COUNT 1000", cursor);
        cr_assert(r && r->type == REDIS_REPLY_ARRAY && r->elements == 2, "SCAN");
        snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
        for (size_t i = 0; i < r->element[1]->elements; i++) {
            const char *key = r->element[1]->element[i]->str;
            redisReply *t = redisCommand(w->rc, "TYPE %s", key);
            redisReply *v = NULL;
            const char *type = t && t->type == REDIS_REPLY_STATUS ? t->str : "?";
            if (strcmp(type, "string") == 0) {
                v = redisCommand(w->rc, "GET %s", key);
            } else if (strcmp(type, "hash") == 0) {
                v = redisCommand(w->rc, "HGETALL %s", key);
            } else if (strcmp(type, "list") == 0) {
                v = redisCommand(w->rc, "LRANGE %s 0 -1", key);
            } else if (strcmp(type, "set") == 0) {
                v = redisCommand(w->rc, "SMEMBERS %s", key);
            } else if (strcmp(type, "zset") == 0) {
                v = redisCommand(w->rc, "ZRANGE %s 0 -1", key);
            } else if (strcmp(type, "stream") == 0) {
                v = redisCommand(w->rc, "XRANGE %s - +", key);
            }
            if (strstr(key, needle) || reply_holds(v, needle)) {
                dm_buf_printf(&out, "%s (%s)\n", key, type);
            }
            freeReplyObject(v);
            freeReplyObject(t);
        }
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    return dm_buf_detach(&out);
}

cJSON *dmt_world_event(const struct dmt_world *w, const char *id, const char *status)
{
    cJSON *all = dmt_world_events(w, id);
    cJSON *found = NULL;
    cJSON *ev;

    cJSON_ArrayForEach(ev, all)
    {
        const char *st = cJSON_GetStringValue(cJSON_GetObjectItem(ev, "status"));
        if (st && strcmp(st, status) == 0) {
            found = ev;
        }
    }
    found = found ? cJSON_Duplicate(found, 1) : NULL;
    cJSON_Delete(all);
    return found;
}

int dmt_world_gh_requests(const struct dmt_world *w, const char *method, const char *path_part)
{
    char *out = dmt_world_gh(w, "GET", "/_fake/requests", NULL);
    cJSON *a = cJSON_Parse(out);
    cJSON *r;
    int n = 0;

    cr_assert(cJSON_IsArray(a), "requests: %.200s", out);
    cJSON_ArrayForEach(r, a)
    {
        const char *m = cJSON_GetStringValue(cJSON_GetObjectItem(r, "method"));
        const char *p = cJSON_GetStringValue(cJSON_GetObjectItem(r, "path"));
        if (m && p && strcmp(m, method) == 0 && strstr(p, path_part)) {
            n++;
        }
    }
    cJSON_Delete(a);
    free(out);
    return n;
}

int dmt_world_prs_for(const struct dmt_world *w, const char *branch)
{
    char *out = dmt_world_gh(w, "GET", "/_fake/pulls", NULL);
    cJSON *a = cJSON_Parse(out);
    cJSON *p;
    int n = 0;

    cr_assert(cJSON_IsArray(a), "pulls: %.200s", out);
    cJSON_ArrayForEach(p, a)
    {
        const char *ref =
            cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(p, "head"), "ref"));
        if (ref && strcmp(ref, branch) == 0) {
            n++;
        }
    }
    cJSON_Delete(a);
    free(out);
    return n;
}

char *dmt_world_rev(const struct dmt_world *w, const char *rev)
{
    return dmt_sh_try("git --git-dir='%s' rev-parse --verify --quiet '%s^{commit}' 2>/dev/null",
                      w->bare, rev);
}

/* ---- added for issue 13 (repository-aware changes) ---- */

#include "fixture.h"

void dmt_world_use_fixture(struct dmt_world *w, const char *name)
{
    free(dmt_fixture_bare(name, w->bare));
}

char *dmt_world_pr_body(const struct dmt_world *w, const char *branch)
{
    char *out = dmt_world_gh(w, "GET", "/_fake/pulls", NULL);
    cJSON *a = cJSON_Parse(out);
    cJSON *p;
    char *body = NULL;
    int best = -1;

    cr_assert(cJSON_IsArray(a), "pulls: %.200s", out);
    cJSON_ArrayForEach(p, a)
    {
        const char *ref =
            cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(p, "head"), "ref"));
        const cJSON *num = cJSON_GetObjectItem(p, "number");
        const char *b = cJSON_GetStringValue(cJSON_GetObjectItem(p, "body"));
        if (ref && strcmp(ref, branch) == 0 && cJSON_IsNumber(num) && num->valueint > best) {
            best = num->valueint;
            free(body);
            body = strdup(b ? b : "");
        }
    }
    cJSON_Delete(a);
    free(out);
    return body;
}
