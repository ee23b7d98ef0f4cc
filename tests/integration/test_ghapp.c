/*
 * Integration tests of GitHub App authentication and the pull request options, against
 * tests/fakes/fake_github.py in App mode (it checks each JWT's RS256 signature with the App's
 * public key, issues installation tokens with a short expires_at and refuses them afterwards,
 * and hands the valid ones to the smart-HTTP git server).
 *
 *   ghapp:     io/ghapp + io/forge in this process, on a real loop and the real HTTP client.
 *   ghapp_e2e: dreamd replicas running whole jobs against the e2e world (dme2e), pushing over
 *              smart HTTP.
 * Keys are made here with the openssl command line; nothing waits on a sleep: every wait is on a
 * condition with a deadline.
 */
#include "dream/core/buf.h"
#include "dream/io/forge.h"
#include "dream/io/ghapp.h"
#include "dream/io/http.h"
#include "dream/io/loop.h"

#include "dme2e.h"
#include "dmtest.h"
#include "githttp.h"

#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define APP_ID "31337"
#define STATIC_TOKEN "ghp_StaticFakeToken0123456789"

/* ---- keys and the fake ---------------------------------------------------------------------- */

static char *key_dir;
static char key_path[1024], pub_path[1024], other_key_path[1024];

static void make_keys(void)
{
    key_dir = dmt_tempdir("ghapp-keys");
    snprintf(key_path, sizeof(key_path), "%s/app.pem", key_dir);
    snprintf(pub_path, sizeof(pub_path), "%s/app.pub.pem", key_dir);
    snprintf(other_key_path, sizeof(other_key_path), "%s/other.pem", key_dir);
    /* PKCS#1 ("BEGIN RSA PRIVATE KEY"), the form GitHub hands out. */
    free(dmt_sh("openssl genrsa -traditional -out '%s' 2048 2>/dev/null && openssl rsa -in '%s' "
                "-pubout -out '%s' 2>/dev/null && openssl genrsa -out '%s' 2048 2>/dev/null",
                key_path, key_path, pub_path, other_key_path));
}

/* A line from the middle of the private key: if it shows up anywhere, the key leaked. */
static char *key_line(void)
{
    return dmt_sh("sed -n 5p '%s'", key_path);
}

static pid_t fake_pid;
static char fake_url[64];
static char *fake_dir;

/* Starts fake_github.py with args (NULL-terminated) and waits for its port. */
static void fake_start(const char *log_dir, const char *const *args, pid_t *pid, char *url,
                       size_t urlsize)
{
    char log[1024], script[1024];
    const char *argv[32];
    int n = 0;
    long long deadline;

    snprintf(log, sizeof(log), "%s/fake_github_app.log", log_dir);
    snprintf(script, sizeof(script), "%s/tests/fakes/fake_github.py", dmt_source_dir());
    argv[n++] = "python3";
    argv[n++] = script;
    argv[n++] = "--port";
    argv[n++] = "0";
    argv[n++] = "--quiet";
    for (int i = 0; args && args[i] && n < 30; i++) {
        argv[n++] = args[i];
    }
    argv[n] = NULL;
    *pid = dmt_spawn((char *const *)argv, NULL, log);
    deadline = dmt_now_ms() + 15000;
    while (dmt_now_ms() < deadline) {
        char *out = dmt_read_file(log);
        char *p = out ? strstr(out, "PORT=") : NULL;
        if (p) {
            snprintf(url, urlsize, "http://127.0.0.1:%d", atoi(p + 5));
            free(out);
            return;
        }
        free(out);
        dmt_sleep_ms(20);
    }
    cr_assert_fail("fake_github did not start (log %s)", log);
}

static size_t collect(char *data, size_t size, size_t n, void *arg)
{
    dm_buf_append(arg, data, size * n);
    return size * n;
}

static char *http_call(const char *base, const char *method, const char *path, const char *body)
{
    CURL *c = curl_easy_init();
    struct dm_buf b;
    char url[512];

    dm_buf_init(&b, 0);
    snprintf(url, sizeof(url), "%s%s", base, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    }
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    cr_assert_eq(curl_easy_perform(c), CURLE_OK, "fake %s %s", method, path);
    curl_easy_cleanup(c);
    return dm_buf_detach(&b);
}

static cJSON *get_json(const char *base, const char *path)
{
    char *s = http_call(base, "GET", path, NULL);
    cJSON *j = cJSON_Parse(s);
    cr_assert_not_null(j, "%s: %s", path, s);
    free(s);
    return j;
}

static const char *jstr(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static double jnum(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

/* The installation token number (1, 2, ...) the last request with this method and path part
 * carried; 0 when none did; -1 when there is no such request. */
static int token_of_last(const char *base, const char *method, const char *path_part)
{
    cJSON *reqs = get_json(base, "/_fake/requests");
    const cJSON *r;
    int found = -1;
    cJSON_ArrayForEach(r, reqs)
    {
        if (strcmp(jstr(r, "method"), method) == 0 && strstr(jstr(r, "path"), path_part)) {
            double t = jnum(r, "inst_token");
            found = t > 0 ? (int)t : 0;
        }
    }
    cJSON_Delete(reqs);
    return found;
}

/* Every accepted JWT's iss equals APP_ID, and there was at least one. */
static void expect_iss(const char *base)
{
    cJSON *app = get_json(base, "/_fake/app");
    const cJSON *iss = cJSON_GetObjectItemCaseSensitive(app, "jwt_iss");
    const cJSON *i;
    cr_assert(cJSON_GetArraySize(iss) > 0, "the fake saw no JWT");
    cJSON_ArrayForEach(i, iss)
    {
        cr_assert(cJSON_IsString(i) && strcmp(i->valuestring, APP_ID) == 0, "iss %s",
                  cJSON_PrintUnformatted(i));
    }
    cJSON_Delete(app);
}

static int app_count(const char *base, const char *key)
{
    cJSON *app = get_json(base, "/_fake/app");
    int n = (int)jnum(app, key);
    cJSON_Delete(app);
    return n;
}

/* ---- in-process: ghapp + forge on a loop ---------------------------------------------------- */

static uv_loop_t loop;
static struct dm_http *http;
static struct dm_ghapp *gh;
static struct dm_forge *forge;

static void start_fake(const char *ttl, const char *token)
{
    const char *args[] = {"--app-id",    APP_ID, "--app-public-key",       pub_path,
                          "--token-ttl", ttl,    token ? "--token" : NULL, token,
                          NULL};
    fake_start(fake_dir, args, &fake_pid, fake_url, sizeof(fake_url));
}

static void setup(void)
{
    struct dm_error err = {0};
    make_keys();
    fake_dir = dmt_tempdir("ghapp-fake");
    cr_assert_eq(uv_loop_init(&loop), 0);
    cr_assert_eq(dm_http_new(&http, &loop, NULL, &err), 0, "%s", err.msg);
    gh = NULL;
    forge = NULL;
}

static int closed;

static void on_closed(void *arg)
{
    (void)arg;
    closed++;
}

static void teardown(void)
{
    int want = 1;
    closed = 0;
    if (forge) {
        dm_forge_close(forge, on_closed, NULL);
        want++;
    }
    /* The credentials after the forge that borrows them: the forge's calls are all done once
     * its close callback fired. */
    for (int i = 0; i < 1000 && closed < want - 1; i++) {
        uv_run(&loop, UV_RUN_ONCE);
    }
    if (gh) {
        dm_ghapp_close(gh, on_closed, NULL);
        want++;
    }
    dm_http_close(http, on_closed, NULL);
    for (int i = 0; i < 1000 && closed < want; i++) {
        uv_run(&loop, UV_RUN_ONCE);
    }
    cr_expect_eq(closed, want);
    cr_expect_eq(dm_loop_drain_close(&loop), 0);
    if (fake_pid > 0) {
        dmt_stop(fake_pid, SIGTERM, 5000);
        fake_pid = 0;
    }
    dmt_rmtree(fake_dir);
    free(fake_dir);
    dmt_rmtree(key_dir);
    free(key_dir);
}

TestSuite(ghapp, .init = setup, .fini = teardown, .timeout = 60);

static void make_clients(const char *key_file, const char *token_file, const char *token)
{
    struct dm_ghapp_opts go = {0};
    struct dm_forge_opts fo = DM_FORGE_OPTS_INIT;
    struct dm_error err = {0};
    char *pem = key_file ? dmt_read_file(key_file) : NULL;

    go.api_url = fake_url;
    go.app_id = key_file ? APP_ID : NULL;
    go.private_key = pem;
    go.token_file = token_file;
    go.token = token;
    cr_assert_eq(dm_ghapp_new(&gh, http, &loop, &go, &err), 0, "%s", err.msg);
    free(pem);
    fo.api_url = fake_url;
    fo.auth = gh;
    fo.write_interval_ms = 0;
    fo.backoff_base_ms = 50;
    fo.backoff_max_ms = 200;
    cr_assert_eq(dm_forge_new(&forge, http, &loop, &fo, &err), 0, "%s", err.msg);
}

struct outcome {
    int fired, rc;
    long number;
    char msg[DM_ERROR_MSG_MAX];
};

static void on_pr(void *arg, int rc, const struct dm_forge_pr *pr, const struct dm_error *err)
{
    struct outcome *o = arg;
    o->fired++;
    o->rc = rc;
    o->number = pr->number;
    snprintf(o->msg, sizeof(o->msg), "%s", err ? err->msg : "");
}

static void on_post(void *arg, int rc, long status, const struct dm_error *err)
{
    struct outcome *o = arg;
    (void)status;
    o->fired++;
    o->rc = rc;
    snprintf(o->msg, sizeof(o->msg), "%s", err ? err->msg : "");
}

static void run_until_fired(struct outcome *o, int timeout_ms)
{
    long long deadline = dmt_now_ms() + timeout_ms;
    while (!o->fired && dmt_now_ms() < deadline) {
        uv_run(&loop, UV_RUN_NOWAIT);
        dmt_sleep_ms(2);
    }
    cr_assert_eq(o->fired, 1, "completion fired %d times", o->fired);
}

static void open_pr(const char *head, struct outcome *o)
{
    struct dm_forge_pr_request r = {0};
    struct dm_error err = {0};
    memset(o, 0, sizeof(*o));
    r.owner = "acme";
    r.repo = "widgets";
    r.head = head;
    r.base = "main";
    r.title = "Todo API";
    r.body = "body";
    r.on_done = on_pr;
    r.arg = o;
    cr_assert_eq(dm_forge_open_pr(forge, &r, NULL, &err), 0, "%s", err.msg);
    run_until_fired(o, 20000);
}

static void post(enum dm_forge_post_kind kind, long number, const char *sha, const char *body,
                 struct outcome *o)
{
    struct dm_forge_post_request r = {0};
    struct dm_error err = {0};
    memset(o, 0, sizeof(*o));
    r.kind = kind;
    r.owner = "acme";
    r.repo = "widgets";
    r.number = number;
    r.sha = sha;
    r.body = body;
    r.on_done = on_post;
    r.arg = o;
    cr_assert_eq(dm_forge_post(forge, &r, NULL, &err), 0, "%s", err.msg);
    run_until_fired(o, 20000);
}

Test(ghapp, installation_token_from_a_verified_jwt_is_refreshed_once_it_nears_expiry)
{
    struct outcome o;
    const char *labels[] = {"dreamd", "needs-review"};
    const char *users[] = {"octocat"};
    const char *teams[] = {"platform"};
    char *body;
    cJSON *pulls, *statuses;
    const cJSON *p;
    long long deadline;

    /* 4-second tokens: the fake truncates its clock to whole seconds and dreamd counts a token's
     * life from when it arrived, so a token that crossed a second boundary on the way is worth
     * one second less; with 4 s it stays fresh for at least a second after it arrives (with 2 s
     * it could go stale before the pull request's POST), and stale within 3 s. */
    start_fake("4", NULL);
    make_clients(key_path, NULL, NULL);
    cr_assert(dm_ghapp_is_app(gh));
    cr_assert_null(dm_ghapp_peek(gh, "acme", "widgets"), "nothing cached before the first use");

    open_pr("dream/a", &o);
    cr_assert_eq(o.rc, 0, "%s", o.msg);
    /* The installation was looked up with the JWT, then a token fetched with it. */
    cr_assert_eq(token_of_last(fake_url, "GET", "/repos/acme/widgets/installation"), 0);
    cr_assert_eq(token_of_last(fake_url, "POST", "/app/installations/4242/access_tokens"), 0);
    cr_assert_eq(token_of_last(fake_url, "POST", "/repos/acme/widgets/pulls"), 1);
    cr_assert_eq(app_count(fake_url, "tokens_issued"), 1);
    expect_iss(fake_url);

    /* A 4-second token is stale after half its life: wait for that, on the condition. */
    deadline = dmt_now_ms() + 10000;
    while (dm_ghapp_peek(gh, "acme", "widgets") && dmt_now_ms() < deadline) {
        uv_run(&loop, UV_RUN_NOWAIT);
        dmt_sleep_ms(20);
    }
    cr_assert_null(dm_ghapp_peek(gh, "acme", "widgets"), "the token went stale");

    body = dm_forge_labels_json(labels, 2);
    post(DM_FORGE_LABELS, o.number, NULL, body, &o);
    free(body);
    cr_assert_eq(o.rc, 0, "%s", o.msg);
    cr_assert_eq(app_count(fake_url, "tokens_issued"), 2, "a new token for the next request");
    cr_assert_eq(token_of_last(fake_url, "POST", "/labels"), 2);
    cr_assert_eq(app_count(fake_url, "tokens_refused"), 0, "the stale token was never sent");

    body = dm_forge_reviewers_json(users, 1, teams, 1);
    post(DM_FORGE_REVIEWERS, 1, NULL, body, &o);
    free(body);
    cr_assert_eq(o.rc, 0, "%s", o.msg);
    body = dm_forge_status_json("success", "dreamd/verify", "Type-check: passed", NULL);
    post(DM_FORGE_STATUS, 0, "0123456789abcdef0123456789abcdef01234567", body, &o);
    free(body);
    cr_assert_eq(o.rc, 0, "%s", o.msg);

    pulls = get_json(fake_url, "/_fake/pulls");
    p = cJSON_GetArrayItem(pulls, 0);
    cr_assert_str_eq(jstr(cJSON_GetArrayItem(cJSON_GetObjectItem(p, "labels"), 1), "name"),
                     "needs-review");
    cr_assert_str_eq(
        jstr(cJSON_GetArrayItem(cJSON_GetObjectItem(p, "requested_reviewers"), 0), "login"),
        "octocat");
    cr_assert_str_eq(jstr(cJSON_GetArrayItem(cJSON_GetObjectItem(p, "requested_teams"), 0), "slug"),
                     "platform");
    statuses = get_json(fake_url, "/_fake/statuses");
    p = cJSON_GetArrayItem(statuses, 0);
    cr_assert_str_eq(jstr(p, "sha"), "0123456789abcdef0123456789abcdef01234567");
    cr_assert_str_eq(jstr(p, "context"), "dreamd/verify");
    cr_assert_str_eq(jstr(p, "state"), "success");
    cJSON_Delete(pulls);
    cJSON_Delete(statuses);
    expect_iss(fake_url);
}

Test(ghapp, a_401_is_answered_once_with_a_new_installation_token)
{
    struct outcome o;

    start_fake("3600", NULL);
    free(
        http_call(fake_url, "POST", "/_fake/script",
                  "[{\"method\":\"GET\",\"path\":\"/pulls\",\"status\":401,\"body\":{\"message\":"
                  "\"Bad credentials\",\"documentation_url\":\"https://docs.github.com/rest\"}}]"));
    make_clients(key_path, NULL, NULL);
    open_pr("dream/b", &o);
    cr_assert_eq(o.rc, 0, "%s", o.msg);
    cr_assert_eq(app_count(fake_url, "tokens_issued"), 2, "the refused token was replaced");
    cr_assert_eq(token_of_last(fake_url, "GET", "/repos/acme/widgets/pulls"), 2);

    /* Twice in a row is GitHub meaning it: the call fails as an auth error. */
    free(http_call(fake_url, "POST", "/_fake/script",
                   "[{\"method\":\"GET\",\"path\":\"/pulls\",\"status\":401,\"times\":2,\"body\":"
                   "{\"message\":\"Bad credentials\"}}]"));
    open_pr("dream/c", &o);
    cr_assert_eq(o.rc, DM_ERR_AUTH, "%d %s", o.rc, o.msg);
    cr_assert_null(strstr(o.msg, "ghs_"), "no token in the error: %s", o.msg);
}

/* A token that has expired when it arrives (this machine's clock ahead of GitHub's) is never
 * fresh: the call fails saying so, instead of fetching tokens at once, forever. */
Test(ghapp, an_installation_token_expired_on_arrival_fails_the_call_instead_of_refetching)
{
    struct outcome o;

    start_fake("-60", NULL);
    make_clients(key_path, NULL, NULL);
    open_pr("dream/x", &o);
    cr_assert_eq(o.rc, DM_ERR_AUTH, "%d %s", o.rc, o.msg);
    cr_assert(strstr(o.msg, "already expired"), "%s", o.msg);
    cr_assert_leq(app_count(fake_url, "tokens_issued"), 3, "fetched %d tokens",
                  app_count(fake_url, "tokens_issued"));
    cr_assert_null(dm_ghapp_peek(gh, "acme", "widgets"));
}

Test(ghapp, a_jwt_signed_with_another_key_is_refused_and_the_key_is_not_quoted)
{
    struct outcome o;
    char *line;

    start_fake("3600", NULL);
    make_clients(other_key_path, NULL, NULL);
    open_pr("dream/d", &o);
    cr_assert_eq(o.rc, DM_ERR_AUTH, "%d %s", o.rc, o.msg);
    cr_assert(strstr(o.msg, "GitHub refused the App"), "%s", o.msg);
    cr_assert_gt(app_count(fake_url, "jwt_rejected"), 0);
    cr_assert_eq(app_count(fake_url, "tokens_issued"), 0);
    line = dmt_sh("sed -n 5p '%s'", other_key_path);
    cr_assert_null(strstr(o.msg, line));
    cr_assert_null(strstr(o.msg, "PRIVATE"));
    free(line);
}

Test(ghapp, a_rotated_token_file_is_read_again)
{
    struct outcome o;
    char path[1024];

    start_fake("3600", STATIC_TOKEN);
    snprintf(path, sizeof(path), "%s/token", fake_dir);
    free(dmt_sh("printf 'ghp_OldRevokedToken\\n' > '%s'", path));
    make_clients(NULL, path, NULL);
    cr_assert(!dm_ghapp_is_app(gh));
    open_pr("dream/e", &o);
    cr_assert_eq(o.rc, DM_ERR_AUTH, "the old token is refused: %d %s", o.rc, o.msg);
    cr_assert_null(strstr(o.msg, "OldRevoked"), "%s", o.msg);

    /* Rotated as a secret manager does it: a new file renamed over the old one. */
    free(dmt_sh("printf '%s\\n' > '%s.new' && mv '%s.new' '%s'", STATIC_TOKEN, path, path, path));
    open_pr("dream/e", &o);
    cr_assert_eq(o.rc, 0, "the new token is used without a restart: %s", o.msg);
    cr_assert_str_eq(dm_ghapp_peek(gh, "acme", "widgets"), STATIC_TOKEN);
}

/* ---- whole jobs ------------------------------------------------------------------------------ */

static struct dmt_world world;
static struct dmt_githttp ghttp;

static void e2e_setup(void)
{
    make_keys();
    dmt_world_start(&world, NULL);
    memset(&ghttp, 0, sizeof(ghttp));
}

static void e2e_teardown(void)
{
    dmt_githttp_stop(&ghttp);
    dmt_world_stop(&world);
    dmt_rmtree(key_dir);
    free(key_dir);
}

TestSuite(ghapp_e2e, .init = e2e_setup, .fini = e2e_teardown, .timeout = 300);

#define BRANCH "dream/todo-api"

/* Replaces the world's fake GitHub by one in App mode whose installation tokens live ttl
 * seconds and are the only passwords the git server takes. */
static void world_app_fake(const char *ttl)
{
    char users[1024];
    const char *args[] = {
        "--app-id",   APP_ID,        "--app-public-key", pub_path, "--token-ttl", ttl,
        "--git-root", world.remotes, "--git-users",      users,    NULL};
    snprintf(users, sizeof(users), "%s/users", ghttp.dir);
    dmt_stop(world.gh_pid, SIGTERM, 5000);
    fake_start(world.dir, args, &world.gh_pid, world.gh_url, sizeof(world.gh_url));
    world.gh_port = atoi(strrchr(world.gh_url, ':') + 1);
}

/* A replica authenticating as the App: the key only in a file named by the environment. */
static pid_t app_replica(struct dmt_replica *rep, const char *name)
{
    char bin[512], url[128], consumer[128], llm[160], ghurl[160], git[1200], data[1200], esb[1200];
    char keyenv[1200];
    const char *argv[24];
    char *env[] = {"OPENROUTER_API_KEY=" DMT_OR_KEY, "DREAM_GITHUB_APP_ID=" APP_ID, keyenv, NULL};
    int n = 0;

    snprintf(keyenv, sizeof(keyenv), "DREAM_GITHUB_APP_PRIVATE_KEY_FILE=%s", key_path);
    snprintf(bin, sizeof(bin), "%s/dreamd", dmt_binary_dir());
    snprintf(url, sizeof(url), "--redis-url=%s", dmt_redis_url(&world.redis));
    snprintf(consumer, sizeof(consumer), "--consumer=%s", name);
    snprintf(llm, sizeof(llm), "--llm-url=%s", world.llm.base);
    snprintf(ghurl, sizeof(ghurl), "--github-api-url=%s", world.gh_url);
    snprintf(git, sizeof(git), "--git-url=%s", ghttp.url_template);
    snprintf(data, sizeof(data), "--data-dir=%s/data/%s", world.dir, name);
    snprintf(esb, sizeof(esb), "--esbuild=%s/.tools/node_modules/.bin/esbuild", dmt_source_dir());
    snprintf(rep->name, sizeof(rep->name), "%s", name);
    snprintf(rep->log, sizeof(rep->log), "%s/%s.log", world.dir, name);
    argv[n++] = bin;
    argv[n++] = url;
    argv[n++] = consumer;
    argv[n++] = llm;
    argv[n++] = ghurl;
    argv[n++] = git;
    argv[n++] = data;
    argv[n++] = esb;
    argv[n++] = "--admin-addr=";
    argv[n++] = "--forge-write-interval-ms=0";
    argv[n++] = "--log-level=info";
    argv[n] = NULL;
    rep->pid = dmt_spawn((char *const *)argv, env, rep->log);
    return rep->pid;
}

static void expect_status(const char *id, const char *want, const char *log)
{
    char *st = dmt_world_hget(&world, id, "status");
    char *err = dmt_world_hget(&world, id, "error");
    cr_assert(st && strcmp(st, want) == 0, "job %s is %s, not %s (error: %s; log %s)", id,
              st ? st : "(none)", want, err ? err : "", log);
    free(st);
    free(err);
}

/* When the bare repository's branch was last updated (its reflog), Unix seconds. */
static long long pushed_at(const char *branch)
{
    char *out = dmt_sh("git --git-dir='%s' reflog show --date=unix -n 1 'refs/heads/%s'",
                       world.bare, branch);
    char *at = strstr(out, "@{");
    long long t = at ? atoll(at + 2) : -1;
    free(out);
    return t;
}

static void expect_absent(const char *what, const char *where, const char *text, const char *needle)
{
    cr_assert(!text || !strstr(text, needle), "%s found in %s", what, where);
}

Test(ghapp_e2e, an_app_job_outlives_its_installation_token_then_pushes_and_opens_the_pr)
{
    struct dmt_replica rep;
    cJSON *job, *a, *pulls, *statuses, *app;
    const cJSON *pr, *st;
    char *json, *line, *log, *keys, *cmdline, *data_grep, *sha, *body;
    long long first_expiry, push_t;

    dmt_world_serve_http(&world, &ghttp);
    world_app_fake("10");
    /* Every generation call answers after 11 s: longer than the first token lives (10 s; a
     * token is used while at least half its life is left, so git always has 5 s). */
    dmt_fakeor_script(&world.llm,
                      "[{\"match\":\"\",\"behaviour\":\"wait\",\"param\":\"11000\",\"times\":3}]");
    app_replica(&rep, "app-1");

    json = dmt_world_job("app-1", NULL, "builder", 200000, 5.0);
    job = cJSON_Parse(json);
    free(json);
    cJSON_AddTrueToObject(job, "draft");
    a = cJSON_AddArrayToObject(job, "labels");
    cJSON_AddItemToArray(a, cJSON_CreateString("dreamd"));
    cJSON_AddItemToArray(a, cJSON_CreateString("needs-review"));
    a = cJSON_AddArrayToObject(job, "reviewers");
    cJSON_AddItemToArray(a, cJSON_CreateString("octocat"));
    a = cJSON_AddArrayToObject(job, "teamReviewers");
    cJSON_AddItemToArray(a, cJSON_CreateString("platform"));
    cJSON_AddStringToObject(job, "specUrl", "https://specs.example.com/todo-api");
    json = cJSON_PrintUnformatted(job);
    cJSON_Delete(job);
    free(dmt_submit(world.rc, json));
    free(json);

    cr_assert(dmt_world_wait_status(&world, "app-1", "complete,failed", 180000), "ended");
    expect_status("app-1", "complete", rep.log);

    /* The first installation token expired before the push, which a later token carried (the
     * git server only ever takes tokens that are still valid), and so did the PR's request. */
    app = get_json(world.gh_url, "/_fake/app");
    cr_assert_geq(jnum(app, "tokens_issued"), 2, "refreshed");
    first_expiry =
        (long long)cJSON_GetArrayItem(cJSON_GetObjectItem(app, "token_expiries"), 0)->valuedouble;
    cr_assert_eq(jnum(app, "tokens_refused"), 0, "no expired token was ever sent");
    cJSON_Delete(app);
    push_t = pushed_at(BRANCH);
    cr_assert_geq(push_t, first_expiry, "pushed at %lld, after the first token expired at %lld",
                  push_t, first_expiry);
    cr_assert_geq(token_of_last(world.gh_url, "POST", "/repos/acme/app/pulls"), 2);
    expect_iss(world.gh_url);

    /* Draft, labels, reviewers and the spec link reached GitHub. */
    pulls = get_json(world.gh_url, "/_fake/pulls");
    cr_assert_eq(cJSON_GetArraySize(pulls), 1);
    pr = cJSON_GetArrayItem(pulls, 0);
    cr_assert(cJSON_IsTrue(cJSON_GetObjectItem(pr, "draft")), "a draft");
    cr_assert_str_eq(jstr(cJSON_GetArrayItem(cJSON_GetObjectItem(pr, "labels"), 0), "name"),
                     "dreamd");
    cr_assert_str_eq(jstr(cJSON_GetArrayItem(cJSON_GetObjectItem(pr, "labels"), 1), "name"),
                     "needs-review");
    cr_assert_str_eq(
        jstr(cJSON_GetArrayItem(cJSON_GetObjectItem(pr, "requested_reviewers"), 0), "login"),
        "octocat");
    cr_assert_str_eq(
        jstr(cJSON_GetArrayItem(cJSON_GetObjectItem(pr, "requested_teams"), 0), "slug"),
        "platform");
    cr_assert(strstr(jstr(pr, "body"), "<https://specs.example.com/todo-api>"), "%s",
              jstr(pr, "body"));

    /* dreamd/verify on the pushed commit. */
    sha = dmt_world_rev(&world, "refs/heads/" BRANCH);
    statuses = get_json(world.gh_url, "/_fake/statuses");
    cr_assert_eq(cJSON_GetArraySize(statuses), 1);
    st = cJSON_GetArrayItem(statuses, 0);
    cr_assert_str_eq(jstr(st, "sha"), sha);
    cr_assert_str_eq(jstr(st, "context"), "dreamd/verify");
    cr_assert_str_eq(jstr(st, "state"), "success");
    cr_assert(strstr(jstr(st, "description"), "validation warning"), "%s", jstr(st, "description"));
    cr_assert_str_eq(jstr(st, "target_url"), jstr(pr, "html_url"));

    /* The private key is nowhere: not in argv, the log, Redis (events, job hash), the data
     * folder (mirror config included); installation tokens neither. */
    line = key_line();
    /* argv is NUL-separated: read it as one line. */
    cmdline = dmt_sh("tr '\\0' ' ' < /proc/%d/cmdline", (int)rep.pid);
    cr_assert(strstr(cmdline, "--git-url="), "the whole argv was read: %s", cmdline);
    expect_absent("the key", "argv", cmdline, "PRIVATE");
    expect_absent("the key", "argv", cmdline, line);
    dmt_replica_stop(&rep, 30000);
    log = dmt_read_file(rep.log);
    expect_absent("the key", "the log", log, line);
    expect_absent("the key", "the log", log, "PRIVATE KEY");
    expect_absent("a token", "the log", log, "ghs_");
    keys = dmt_world_redis_grep(&world, line);
    cr_assert_str_eq(keys, "", "the key in Redis: %s", keys);
    free(keys);
    keys = dmt_world_redis_grep(&world, "ghs_");
    cr_assert_str_eq(keys, "", "a token in Redis: %s", keys);
    data_grep =
        dmt_sh("grep -rlaF -e '%s' -e 'ghs_' -e 'PRIVATE KEY' '%s/data' || true", line, world.dir);
    cr_assert_str_eq(data_grep, "", "in the data folder: %s", data_grep);
    body = dmt_sh("git --git-dir='%s/data/app-1/mirrors/acme/app.git' config --list", world.dir);
    cr_assert(strstr(body, "core.bare=true"), "the mirror's config was read: %s", body);
    expect_absent("the key", "the mirror's git config", body, line);
    expect_absent("a token", "the mirror's git config", body, "ghs_");
    expect_absent("a token", "the mirror's git config", body, "x-access-token");

    free(body);
    free(data_grep);
    free(keys);
    free(log);
    free(cmdline);
    free(line);
    free(sha);
    cJSON_Delete(statuses);
    cJSON_Delete(pulls);
}

Test(ghapp_e2e, pr_options_from_settings_and_a_refused_reviewer_request_is_only_a_warning)
{
    struct dmt_replica rep;
    const char *extra[] = {"--pr-draft", "--pr-labels=from-settings, dreamd",
                           "--pr-reviewers=alice", NULL};
    char *json, *statuses, *sha;
    cJSON *pulls, *ev, *sts;
    const cJSON *pr;

    free(dmt_world_gh(&world, "POST", "/_fake/script",
                      "[{\"method\":\"POST\",\"path\":\"requested_reviewers\",\"status\":422,"
                      "\"body\":{\"message\":\"Reviews may only be requested from collaborators. "
                      "One or more of the users or teams you specified is not a collaborator of "
                      "the acme/app repository.\",\"documentation_url\":\"https://docs.github.com/"
                      "rest/pulls/review-requests#request-reviewers-for-a-pull-request\","
                      "\"status\":\"422\"}}]"));
    dmt_world_replica(&world, &rep, "opts-1", extra);
    json = dmt_world_job("opts-1", NULL, "builder", 200000, 5.0);
    free(dmt_submit(world.rc, json));
    free(json);
    cr_assert(dmt_world_wait_status(&world, "opts-1", "complete,failed", 120000), "ended");
    expect_status("opts-1", "complete", rep.log);

    statuses = dmt_world_statuses(&world, "opts-1");
    cr_assert(strstr(statuses, "warning"), "%s", statuses);
    cr_assert(strstr(statuses, "pr_open,complete"), "%s", statuses);
    ev = dmt_world_event(&world, "opts-1", "warning");
    cr_assert(strstr(jstr(ev, "message"), "Reviews may only be requested from collaborators"), "%s",
              jstr(ev, "message"));
    cr_assert(strstr(jstr(ev, "message"), "requesting reviewers"), "%s", jstr(ev, "message"));

    pulls = get_json(world.gh_url, "/_fake/pulls");
    pr = cJSON_GetArrayItem(pulls, 0);
    cr_assert(cJSON_IsTrue(cJSON_GetObjectItem(pr, "draft")), "DREAM_PR_DRAFT");
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(pr, "labels")), 2);
    cr_assert_str_eq(jstr(cJSON_GetArrayItem(cJSON_GetObjectItem(pr, "labels"), 0), "name"),
                     "from-settings");
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(pr, "requested_reviewers")), 0);
    cr_assert_eq(dmt_world_gh_requests(&world, "POST", "requested_reviewers"), 1,
                 "a refused request is not repeated");

    /* The commit status still went out after the warning. */
    sha = dmt_world_rev(&world, "refs/heads/" BRANCH);
    sts = get_json(world.gh_url, "/_fake/statuses");
    cr_assert_eq(cJSON_GetArraySize(sts), 1);
    cr_assert_str_eq(jstr(cJSON_GetArrayItem(sts, 0), "sha"), sha);
    cr_assert_str_eq(jstr(cJSON_GetArrayItem(sts, 0), "context"), "dreamd/verify");

    dmt_replica_stop(&rep, 30000);
    cJSON_Delete(sts);
    cJSON_Delete(pulls);
    cJSON_Delete(ev);
    free(sha);
    free(statuses);
}

Test(ghapp_e2e, a_revoked_installation_token_refused_by_git_is_replaced_and_the_push_retried)
{
    struct dmt_replica rep;
    char *json, *statuses, *revoked;

    dmt_world_serve_http(&world, &ghttp);
    world_app_fake("3600");
    dmt_fakeor_script(&world.llm,
                      "[{\"match\":\"\",\"behaviour\":\"wait\",\"param\":\"3000\",\"times\":3}]");
    app_replica(&rep, "revoke-1");
    json = dmt_world_job("revoke-1", NULL, "builder", 200000, 5.0);
    free(dmt_submit(world.rc, json));
    free(json);

    /* The token dreamd holds is revoked while the files are being written. */
    cr_assert(dmt_wait_event(world.rc, "revoke-1", "writing", 60000), "generating");
    revoked = http_call(world.gh_url, "POST", "/_fake/revoke", NULL);
    cr_assert(strstr(revoked, "\"revoked\": 1"), "%s", revoked);
    free(revoked);

    cr_assert(dmt_world_wait_status(&world, "revoke-1", "complete,failed", 180000), "ended");
    expect_status("revoke-1", "complete", rep.log);
    statuses = dmt_world_statuses(&world, "revoke-1");
    cr_assert(strstr(statuses, "retrying"), "the push was retried: %s", statuses);
    cr_assert_eq(app_count(world.gh_url, "tokens_issued"), 2, "one new token");
    cr_assert_eq(token_of_last(world.gh_url, "POST", "/repos/acme/app/pulls"), 2);
    cr_assert_eq(dmt_world_prs_for(&world, BRANCH), 1);
    dmt_replica_stop(&rep, 30000);
    free(statuses);
}
