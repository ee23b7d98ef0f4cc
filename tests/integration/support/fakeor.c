/*
 * fakeor: helpers around the fake OpenRouter server (see fakeor.h). Uses a blocking curl easy
 * handle for control requests. Test processes only.
 */
#include "fakeor.h"
#include "dmtest.h"

#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sink {
    char *data;
    size_t len;
};

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    struct sink *s = arg;
    size_t k = size * n;
    char *d = realloc(s->data, s->len + k + 1);
    if (!d) {
        return 0;
    }
    memcpy(d + s->len, p, k);
    s->len += k;
    d[s->len] = 0;
    s->data = d;
    return k;
}

/* Returns the status (0 on transport failure); *body gets the body (caller frees). */
static long fetch(const struct dmt_fakeor *f, const char *method, const char *path,
                  const char *body, char **out)
{
    CURL *e = curl_easy_init();
    struct sink s = {NULL, 0};
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    char url[256];
    long status = 0;
    snprintf(url, sizeof(url), "%s%s", f->root, path);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body ? body : "");
    }
    if (curl_easy_perform(e) == CURLE_OK) {
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    }
    curl_slist_free_all(h);
    curl_easy_cleanup(e);
    *out = s.data ? s.data : strdup("");
    return status;
}

void dmt_fakeor_start(struct dmt_fakeor *f, const char *const *extra_args)
{
    char script[1024], port[16];
    char *argv[32];
    int n = 0;
    memset(f, 0, sizeof(*f));
    f->port = dmt_free_port();
    snprintf(script, sizeof(script), "%s/tests/fakes/fake_openrouter.py", dmt_source_dir());
    snprintf(port, sizeof(port), "%d", f->port);
    argv[n++] = "python3";
    argv[n++] = script;
    argv[n++] = "--port";
    argv[n++] = port;
    argv[n++] = "--quiet";
    for (int i = 0; extra_args && extra_args[i] && n < 30; i++) {
        argv[n++] = (char *)extra_args[i];
    }
    argv[n] = NULL;
    snprintf(f->root, sizeof(f->root), "http://127.0.0.1:%d", f->port);
    snprintf(f->base, sizeof(f->base), "http://127.0.0.1:%d/api/v1", f->port);
    f->pid = dmt_spawn(argv, NULL, "/dev/null");
    for (int i = 0; i < 1000; i++) {
        char *b = NULL;
        long st = fetch(f, "GET", "/_fake/stats", NULL, &b);
        free(b);
        if (st == 200) {
            return;
        }
        dmt_sleep_ms(10);
    }
    cr_assert_fail("fake_openrouter did not start on port %d", f->port);
}

void dmt_fakeor_stop(struct dmt_fakeor *f)
{
    if (f->pid > 0) {
        dmt_stop(f->pid, SIGTERM, 5000);
        f->pid = 0;
    }
}

char *dmt_fakeor_http(const struct dmt_fakeor *f, const char *method, const char *path,
                      const char *body)
{
    char *out = NULL;
    long st = fetch(f, method, path, body, &out);
    cr_assert(st >= 200 && st < 300, "fake %s %s: HTTP %ld %s", method, path, st, out);
    return out;
}

static long long stats_lookup(const struct dmt_fakeor *f, const char *obj, const char *key)
{
    char *b = dmt_fakeor_http(f, "GET", "/_fake/stats", NULL);
    cJSON *root = cJSON_Parse(b);
    const cJSON *holder = obj ? cJSON_GetObjectItemCaseSensitive(root, obj) : root;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(holder, key);
    long long r = cJSON_IsNumber(v) ? (long long)v->valuedouble : 0;
    cr_assert(root, "stats are not JSON: %s", b);
    cJSON_Delete(root);
    free(b);
    return r;
}

long long dmt_fakeor_stat(const struct dmt_fakeor *f, const char *key)
{
    return stats_lookup(f, NULL, key);
}

long long dmt_fakeor_path_count(const struct dmt_fakeor *f, const char *path)
{
    return stats_lookup(f, "per_path", path);
}

long long dmt_fakeor_behaviour_count(const struct dmt_fakeor *f, const char *behaviour)
{
    return stats_lookup(f, "per_behaviour", behaviour);
}

void dmt_fakeor_script(const struct dmt_fakeor *f, const char *rules_json)
{
    free(dmt_fakeor_http(f, "POST", "/_fake/script", rules_json));
}

/* ---- added for issue 13 (tests of the fake's repository-aware abilities) ---- */

char *dmt_fakeor_chat(const struct dmt_fakeor *f, const char *system, const char *user,
                      long *status)
{
    CURL *e = curl_easy_init();
    struct sink s = {NULL, 0};
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    cJSON *req = cJSON_CreateObject();
    cJSON *msgs = cJSON_AddArrayToObject(req, "messages");
    cJSON *m;
    char url[256], *body, *content = NULL;
    long st = 0;

    h = curl_slist_append(h, "Authorization: Bearer sk-or-v1-fake-test-key");
    cJSON_AddStringToObject(req, "model", "anthropic/claude-sonnet-4.5");
    cJSON_AddNumberToObject(req, "max_tokens", 8192);
    m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "role", "system");
    cJSON_AddStringToObject(m, "content", system ? system : "");
    cJSON_AddItemToArray(msgs, m);
    m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "role", "user");
    cJSON_AddStringToObject(m, "content", user ? user : "");
    cJSON_AddItemToArray(msgs, m);
    body = cJSON_PrintUnformatted(req);
    cJSON_Delete(req);
    snprintf(url, sizeof(url), "%s/chat/completions", f->base);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 30000L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    if (curl_easy_perform(e) == CURLE_OK) {
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &st);
    }
    curl_slist_free_all(h);
    curl_easy_cleanup(e);
    free(body);
    if (status) {
        *status = st;
    }
    if (st == 200 && s.data) {
        cJSON *root = cJSON_Parse(s.data);
        const cJSON *choice = cJSON_GetArrayItem(cJSON_GetObjectItem(root, "choices"), 0);
        const char *c = cJSON_GetStringValue(
            cJSON_GetObjectItem(cJSON_GetObjectItem(choice, "message"), "content"));
        cr_assert_not_null(c, "chat reply without content: %.300s", s.data);
        content = strdup(c);
        cJSON_Delete(root);
    }
    free(s.data);
    return content;
}

cJSON *dmt_fakeor_last_request(const struct dmt_fakeor *f)
{
    char *b = dmt_fakeor_http(f, "GET", "/_fake/requests", NULL);
    cJSON *arr = cJSON_Parse(b);
    int n = cJSON_GetArraySize(arr);
    cJSON *last;

    cr_assert(cJSON_IsArray(arr) && n > 0, "no request recorded: %.200s", b);
    last = cJSON_DetachItemFromArray(arr, n - 1);
    cJSON_Delete(arr);
    free(b);
    return last;
}
