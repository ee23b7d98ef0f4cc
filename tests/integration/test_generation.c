/*
 * Code generation at system level (issue 5): the real dreamd binary against a real
 * redis-server, the fake OpenRouter (tests/fakes/fake_openrouter.py), the fake GitHub and a bare
 * git repository. Each test drives the fake into one misbehaviour (a `[[fake:...]]` marker in
 * the spec, which reaches every file's prompt, or a script rule) and checks the documented
 * outcome at job level: events, the job hash, the fake's request counts and peak in flight, and
 * what reached the repository and the forge. Test process only; one world per test.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>

#include <cjson/cJSON.h>

#include "dme2e.h"
#include "githttp.h"

#include "dream/core/buf.h"

#define ENDED "complete,failed,cancelled,dead_lettered,rejected,paused_approval"
#define MAX_PATHS 32

static struct dmt_world world;
static struct dmt_replica rep;

static void setup(void)
{
    dmt_world_start(&world, NULL);
}

static void teardown(void)
{
    const char *keep = getenv("DMT_KEEP_LOGS");
    if (keep && *keep && world.dir) {
        /* Debugging aid: keep the replicas' and fakes' logs before the world is removed. */
        free(dmt_sh_try("mkdir -p '%s' && cp '%s'/*.log '%s'/ 2>/dev/null; true", keep, world.dir,
                        keep));
    }
    dmt_world_stop(&world);
}

TestSuite(generation, .init = setup, .fini = teardown, .timeout = 240);

/* ---- helpers ---- */

static void replica(const char *const *extra)
{
    dmt_world_replica(&world, &rep, "gen", extra);
}

static void submit(const char *id, const char *spec, long long max_tokens, double max_dollars)
{
    char *job = dmt_world_job(id, spec, NULL, max_tokens, max_dollars);
    free(dmt_submit(world.rc, job));
    free(job);
}

/* Waits for the job to end; returns its status (caller frees). */
static char *wait_end(const char *id, int timeout_ms)
{
    char *st;
    cr_assert(dmt_world_wait_status(&world, id, ENDED, timeout_ms),
              "job %s did not end within %d ms (status %s; replica log %s)", id, timeout_ms,
              dmt_world_hget(&world, id, "status"), rep.log);
    st = dmt_world_hget(&world, id, "status");
    cr_assert_not_null(st);
    return st;
}

static void expect_status(const char *id, const char *want, int timeout_ms)
{
    char *st = wait_end(id, timeout_ms);
    cr_assert_str_eq(st, want, "job %s ended %s, wanted %s (error: %s; log %s)", id, st, want,
                     dmt_world_hget(&world, id, "error"), rep.log);
    free(st);
}

/* The generated files of the job's plan (the spec document left out), and its branch. */
static int plan_paths(const char *id, char paths[][256], char *branch, size_t branch_len)
{
    char *json = dmt_world_hget(&world, id, "plan");
    cJSON *plan, *items, *it;
    int n = 0;

    cr_assert_not_null(json, "job %s has a plan", id);
    plan = cJSON_Parse(json);
    cr_assert_not_null(plan, "plan is JSON: %s", json);
    if (branch) {
        snprintf(branch, branch_len, "%s",
                 cJSON_GetStringValue(cJSON_GetObjectItem(plan, "branch")));
    }
    items = cJSON_GetObjectItem(plan, "items");
    cJSON_ArrayForEach(it, items)
    {
        const char *kind = cJSON_GetStringValue(cJSON_GetObjectItem(it, "kind"));
        if (kind && strcmp(kind, "spec") != 0 && n < MAX_PATHS) {
            snprintf(paths[n++], 256, "%s", cJSON_GetStringValue(cJSON_GetObjectItem(it, "path")));
        }
    }
    cJSON_Delete(plan);
    free(json);
    return n;
}

static int count_status(const cJSON *events, const char *status)
{
    const cJSON *ev;
    int n = 0;
    cJSON_ArrayForEach(ev, events)
    {
        const char *s = cJSON_GetStringValue(cJSON_GetObjectItem(ev, "status"));
        n += s && strcmp(s, status) == 0;
    }
    return n;
}

/* The first event with that status (borrowed; NULL if none). */
static const cJSON *find_event(const cJSON *events, const char *status)
{
    const cJSON *ev;
    cJSON_ArrayForEach(ev, events)
    {
        const char *s = cJSON_GetStringValue(cJSON_GetObjectItem(ev, "status"));
        if (s && strcmp(s, status) == 0) {
            return ev;
        }
    }
    return NULL;
}

static const cJSON *last_event(const cJSON *events)
{
    int n = cJSON_GetArraySize(events);
    cr_assert(n > 0, "the job has events");
    return cJSON_GetArrayItem(events, n - 1);
}

static double num(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItem(o, key);
    cr_assert(cJSON_IsNumber(v), "event has a number %s", key);
    return v->valuedouble;
}

static const char *str(const cJSON *o, const char *key)
{
    const char *s = cJSON_GetStringValue(cJSON_GetObjectItem(o, key));
    return s ? s : "";
}

/* Nothing of the job reached the repository or the forge: only main exists, no pull request. */
static void assert_nothing_pushed(const char *id)
{
    char *refs = dmt_world_refs(&world);
    cr_assert_str_eq(refs, "refs/heads/main", "job %s pushed a branch: %s", id, refs);
    cr_assert_eq(dmt_world_pr_count(&world), 0, "job %s opened a pull request", id);
    cr_assert_null(dmt_world_hget(&world, id, "pr_url"));
    free(refs);
}

/* 1 when the job's checkpoint (<prefix>:job:<id>:files) holds path. */
static int checkpointed(const char *id, const char *path)
{
    redisReply *r = redisCommand(world.rc, "HEXISTS dream:job:%s:files %s", id, path);
    int yes = r && r->type == REDIS_REPLY_INTEGER && r->integer == 1;
    freeReplyObject(r);
    return yes;
}

/* A spec with one API route whose item text carries a marker (which reaches its prompt). */
static char *one_route_spec(const char *title, const char *marker)
{
    char *s = NULL;
    cr_assert(asprintf(&s, "# %s\n\nA small test service.\n\n## API\n- GET /ping answers pong %s\n",
                       title, marker) > 0);
    return s;
}

/* A spec with n API routes, each of its own resource, so one file each (paths unique to the
 * title). */
static char *routes_spec(const char *title, int n)
{
    struct dm_buf b;
    char res[64];
    size_t k = 0;

    for (const char *t = title; *t && k + 1 < sizeof(res); t++) {
        res[k++] = (*t >= 'A' && *t <= 'Z') ? (char)(*t - 'A' + 'a') : (*t == ' ' ? '-' : *t);
    }
    res[k] = '\0';
    dm_buf_init(&b, 0);
    dm_buf_printf(&b, "# %s\n\nA service with many routes.\n\n## API\n", title);
    for (int i = 0; i < n; i++) {
        /* The title is in the resource so that two jobs never share a path. */
        dm_buf_printf(&b, "- GET /%s-%d returns item number %d\n", res, i + 1, i + 1);
    }
    return dm_buf_detach(&b);
}

/* The fake's recorded requests for a path whose user message contains needle. */
static int requests_with(const char *path, const char *needle)
{
    char *body = dmt_fakeor_http(&world.llm, "GET", "/_fake/requests", NULL);
    cJSON *a = cJSON_Parse(body), *r;
    int n = 0;
    cr_assert(cJSON_IsArray(a));
    cJSON_ArrayForEach(r, a)
    {
        const char *p = cJSON_GetStringValue(cJSON_GetObjectItem(r, "path"));
        char *msgs;
        if (!p || strcmp(p, path) != 0) {
            continue;
        }
        msgs =
            cJSON_PrintUnformatted(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "body"), "messages"));
        n += msgs && strstr(msgs, needle) != NULL;
        free(msgs);
    }
    cJSON_Delete(a);
    free(body);
    return n;
}

/* Sums the usage of every reply the replica logged for the job (llm's "reply model=... tokens=
 * P+C cost=X" line, written for every 200 reply, accepted or not). Returns the replies seen. */
static int logged_usage(const char *log, const char *id, long long *tokens, double *cost)
{
    char *text = dmt_read_file(log);
    char needle[200];
    int n = 0;

    *tokens = 0;
    *cost = 0;
    snprintf(needle, sizeof(needle), "\"job\":\"%s\"", id);
    for (char *line = text; line && *line;) {
        char *nl = strchr(line, '\n');
        char *t;
        if (nl) {
            *nl = '\0';
        }
        if (strstr(line, needle) && strstr(line, "reply model=") &&
            (t = strstr(line, " tokens="))) {
            long long p = 0, c = 0;
            double x = 0;
            cr_assert_eq(sscanf(t, " tokens=%lld+%lld cost=%lf", &p, &c, &x), 3, "%s", line);
            *tokens += p + c;
            *cost += x;
            n++;
        }
        line = nl ? nl + 1 : NULL;
    }
    free(text);
    return n;
}

/* The fake's requests for the job's files (the reviewer's requests name no path). */
static long long path_requests(const char *id)
{
    char paths[MAX_PATHS][256];
    int n = plan_paths(id, paths, NULL, 0);
    long long total = 0;
    for (int i = 0; i < n; i++) {
        total += dmt_fakeor_path_count(&world.llm, paths[i]);
    }
    return total;
}

static void fake_config(const char *json)
{
    free(dmt_fakeor_http(&world.llm, "POST", "/_fake/config", json));
}

/* A single-route job that must fail without a retry: one request for its file, the error names
 * the file and contains want, no `retrying`, nothing pushed. */
static void expect_final_failure(const char *id, const char *marker, const char *want)
{
    char paths[MAX_PATHS][256];
    char *spec = one_route_spec("Final Failure", marker);
    char *err;
    cJSON *events;

    replica(NULL);
    submit(id, spec, 200000, 5.0);
    expect_status(id, "failed", 60000);
    cr_assert_eq(plan_paths(id, paths, NULL, 0), 1);
    err = dmt_world_hget(&world, id, "error");
    cr_assert_not_null(err);
    cr_assert_not_null(strstr(err, paths[0]), "the error names the file: %s", err);
    cr_assert_not_null(strstr(err, want), "the error says %s: %s", want, err);
    cr_assert_null(strstr(err, DMT_OR_KEY), "the error never holds the API key");
    cr_assert_eq(dmt_fakeor_path_count(&world.llm, paths[0]), 1,
                 "%s is final: exactly one request for %s, saw %lld", marker, paths[0],
                 dmt_fakeor_path_count(&world.llm, paths[0]));
    events = dmt_world_events(&world, id);
    cr_assert_eq(count_status(events, "retrying"), 0, "a final error is not retried");
    cr_assert_str_eq(str(last_event(events), "status"), "failed");
    cr_assert_not_null(strstr(str(last_event(events), "error"), paths[0]));
    assert_nothing_pushed(id);
    cr_assert_not(checkpointed(id, paths[0]), "a refused reply is never checkpointed");
    cr_assert_eq(dmt_count_in_file(rep.log, DMT_OR_KEY), 0, "the log never holds the API key");
    cJSON_Delete(events);
    free(err);
    free(spec);
}

/* A single-route job that must complete after retries at the LLM level: `requests` requests for
 * its file, a valid file on the branch. Returns the ms from `writing` to `generated`. */
static long long expect_retried_ok(const char *id, const char *marker, int requests)
{
    char paths[MAX_PATHS][256], branch[256];
    char *spec = one_route_spec("Retried Route", marker);
    char *file;
    cJSON *events;
    long long ms;

    replica(NULL);
    submit(id, spec, 200000, 5.0);
    expect_status(id, "complete", 90000);
    cr_assert_eq(plan_paths(id, paths, branch, sizeof(branch)), 1);
    cr_assert_eq(dmt_fakeor_path_count(&world.llm, paths[0]), requests,
                 "%s: %d requests for %s, saw %lld", marker, requests, paths[0],
                 dmt_fakeor_path_count(&world.llm, paths[0]));
    file = dmt_world_branch_file(&world, branch, paths[0]);
    cr_assert_not_null(file, "%s is on %s", paths[0], branch);
    cr_assert_not_null(strstr(file, "export default ping;"), "the valid route: %s", file);
    cr_assert_eq(dmt_world_pr_count(&world), 1);
    events = dmt_world_events(&world, id);
    ms = dmt_world_ts_ms(str(find_event(events, "generated"), "ts")) -
         dmt_world_ts_ms(str(find_event(events, "writing"), "ts"));
    cJSON_Delete(events);
    free(file);
    free(spec);
    return ms;
}

/* ---- 1. each misbehaviour → the documented outcome ---- */

Test(generation, rate_limit_429_waits_retry_after_and_completes)
{
    long long ms = expect_retried_ok("g-429", "[[fake:429:2*1]]", 2);
    cr_assert_eq(dmt_fakeor_behaviour_count(&world.llm, "429"), 1);
    /* Retry-After: 2 was honoured (the backoff without it would be at most 1 s): the second
     * request came at least two seconds after the first. */
    cr_assert(ms >= 1950, "writing→generated took %lld ms, Retry-After is 2 s", ms);
}

Test(generation, server_errors_502_and_503_are_retried_and_complete)
{
    /* Both markers are in the prompt: the first request gets 502, the second 503. */
    /* The `*` are escaped: two of them in one item would be CommonMark emphasis. */
    expect_retried_ok("g-5xx", "[[fake:502\\*1]] [[fake:503\\*1]]", 3);
    cr_assert_eq(dmt_fakeor_behaviour_count(&world.llm, "502"), 1);
    cr_assert_eq(dmt_fakeor_behaviour_count(&world.llm, "503"), 1);
}

Test(generation, in_flight_budget_402_is_retried_and_completes)
{
    expect_retried_ok("g-402if", "[[fake:402-inflight:1*1]]", 2);
    cr_assert_eq(dmt_fakeor_behaviour_count(&world.llm, "402-inflight"), 1);
}

Test(generation, bad_request_400_is_final)
{
    expect_final_failure("g-400", "[[fake:400]]", "HTTP 400");
}

Test(generation, unauthorized_401_is_final)
{
    expect_final_failure("g-401", "[[fake:401]]", "HTTP 401");
}

Test(generation, forbidden_403_is_final)
{
    expect_final_failure("g-403", "[[fake:403]]", "HTTP 403");
}

Test(generation, credits_402_is_final)
{
    expect_final_failure("g-402c", "[[fake:402-credits]]", "openrouter_credits");
}

Test(generation, key_limit_402_is_final)
{
    expect_final_failure("g-402k", "[[fake:402-key]]", "openrouter_key_limit");
}

Test(generation, weight_exceeds_budget_402_is_final)
{
    expect_final_failure("g-402w", "[[fake:402-weight]]", "weight_exceeds_budget");
}

/* llm.h: an error inside a 200 (an error chunk, finish_reason "error") is a failure and is
 * never retried (DM_ERR_REMOTE), so the job fails; *1 proves no second request was made even
 * though it would have succeeded. */
/* OpenRouter: a provider error after the stream started arrives inside the 200 (an error
 * chunk, or finish_reason "error"). A code the same HTTP status would be retried for is retried
 * (its sibling files are not cancelled); a permanent code stays final. */
Test(generation, error_502_inside_200_with_finish_reason_error_is_retried_and_completes)
{
    expect_retried_ok("g-e200", "[[fake:error200*1]]", 2);
    cr_assert_eq(dmt_fakeor_behaviour_count(&world.llm, "error200"), 1);
}

Test(generation, error_429_chunk_inside_200_is_retried_and_completes)
{
    expect_retried_ok("g-echunk", "[[fake:error-chunk*1]]", 2);
    cr_assert_eq(dmt_fakeor_behaviour_count(&world.llm, "error-chunk"), 1);
}

Test(generation, a_permanent_error_inside_200_fails_without_retry)
{
    expect_final_failure("g-e400", "[[fake:error200:400*1]]", "error inside the stream");
}

/* finish_reason "length" is never accepted: llm.h makes it DM_ERR_LIMIT (not retried) and
 * pipeline.c fails the job; the truncated file never reaches a branch. */
Test(generation, finish_reason_length_is_never_accepted)
{
    expect_final_failure("g-length", "[[fake:length*1]]", "finish_reason length");
}

/* A stream cut in the middle of a 200 is DM_ERR_IO, which pipeline.c turns into a transient
 * stage failure: `retrying`, the generate stage again, a second request, and the job
 * completes with the whole file. */
Test(generation, stream_cut_midway_retries_the_stage_and_completes)
{
    char paths[MAX_PATHS][256], branch[256];
    char *spec = one_route_spec("Cut Stream", "[[fake:cut:2*1]]");
    char *file;
    cJSON *events;

    replica(NULL);
    submit("g-cut", spec, 200000, 5.0);
    free(wait_end("g-cut", 60000));
    events = dmt_world_events(&world, "g-cut");
    cr_assert_eq(plan_paths("g-cut", paths, branch, sizeof(branch)), 1);
    cr_assert(count_status(events, "retrying") >= 1, "the cut stream makes the stage retry");
    cr_assert_not_null(strstr(str(find_event(events, "retrying"), "error"), "stream cut"),
                       "retrying says why: %s", str(find_event(events, "retrying"), "error"));
    cr_assert_str_eq(str(last_event(events), "status"), "complete",
                     "after the retry the job completes (ended %s: %s; log %s)",
                     str(last_event(events), "status"), str(last_event(events), "error"), rep.log);
    cr_assert_eq(dmt_fakeor_path_count(&world.llm, paths[0]), 2,
                 "the retried stage asked again for %s: saw %lld requests", paths[0],
                 dmt_fakeor_path_count(&world.llm, paths[0]));
    file = dmt_world_branch_file(&world, branch, paths[0]);
    cr_assert_not_null(file);
    cr_assert_not_null(strstr(file, "export default ping;"), "the whole file: %s", file);
    cJSON_Delete(events);
    free(file);
    free(spec);
}

/* Invalid code once for every file kind (esbuild for .ts/.tsx, SQLite for .sql): each file is
 * sent back with the validator's error (a repair request), and the branch holds valid files. */
Test(generation, invalid_code_once_is_repaired)
{
    char paths[MAX_PATHS][256], branch[256];
    const char *spec = "# Repair Me\n\nEvery file comes back broken once. [[fake:invalid]]\n\n"
                       "## API\n- GET /notes lists notes\n\n## Database\n- notes table\n\n"
                       "## UI\n- NoteList component\n";
    int n;

    replica(NULL);
    submit("g-inv1", spec, 200000, 5.0);
    expect_status("g-inv1", "complete", 90000);
    n = plan_paths("g-inv1", paths, branch, sizeof(branch));
    cr_assert_eq(n, 3);
    for (int i = 0; i < n; i++) {
        char *file = dmt_world_branch_file(&world, branch, paths[i]);
        cr_assert_eq(dmt_fakeor_path_count(&world.llm, paths[i]), 2,
                     "one generation and one repair for %s, saw %lld", paths[i],
                     dmt_fakeor_path_count(&world.llm, paths[i]));
        cr_assert_eq(requests_with(paths[i], "Validator error"), 1,
                     "the second request for %s is a repair carrying the validator's error",
                     paths[i]);
        cr_assert_not_null(file, "%s on the branch", paths[i]);
        cr_assert_null(strcasestr(file, "broken"), "the invalid version never lands: %s", file);
        if (strstr(paths[i], ".sql")) {
            cr_assert_not_null(strstr(file, "CREATE TABLE IF NOT EXISTS"), "%s", file);
        } else {
            cr_assert_not_null(strstr(file, "export default"), "%s", file);
        }
        free(file);
    }
}

/* Invalid code every time: 1 + --max-repairs requests, then the job fails naming the file and
 * the validator's error, and nothing is pushed. */
Test(generation, invalid_code_always_fails_naming_file_and_error_and_pushes_nothing)
{
    char paths[MAX_PATHS][256];
    /* A script rule, not a marker: a repair request carries only the path, the validator's
     * error and the previous content, but the same system prompt naming the target path. */
    const char *spec = "# Always Broken\n\nSQL that never parses.\n\n## Database\n- users table\n";
    char *err;
    cJSON *events;

    dmt_fakeor_script(&world.llm, "[{\"match\": \"Target path: `migrations/\", "
                                  "\"behaviour\": \"invalid-always\"}]");
    replica(NULL);
    submit("g-invA", spec, 200000, 5.0);
    expect_status("g-invA", "failed", 90000);
    cr_assert_eq(plan_paths("g-invA", paths, NULL, 0), 1);
    cr_assert_eq(dmt_fakeor_path_count(&world.llm, paths[0]), 3,
                 "one generation and two repairs (default --max-repairs) for %s, saw %lld",
                 paths[0], dmt_fakeor_path_count(&world.llm, paths[0]));
    err = dmt_world_hget(&world, "g-invA", "error");
    cr_assert_not_null(strstr(err, paths[0]), "names the file: %s", err);
    cr_assert_not_null(strstr(err, "syntax error"), "carries SQLite's error: %s", err);
    cr_assert_not_null(strstr(err, "2 repairs"), "says it was repaired twice: %s", err);
    events = dmt_world_events(&world, "g-invA");
    cr_assert_eq(count_status(events, "generated"), 0);
    cr_assert_eq(count_status(events, "pushing"), 0);
    assert_nothing_pushed("g-invA");
    cr_assert_not(checkpointed("g-invA", paths[0]), "a refused file is never checkpointed");
    cJSON_Delete(events);
    free(err);
}

/* Replies that were billed count even when the file is refused: a job that paid for three
 * invalid replies and failed reports those tokens and that cost in its final event and hash
 * (DESIGN.md: actual usage replaces the reservation; a resumed job must not get the money back). */
Test(generation, spend_on_refused_replies_is_recorded)
{
    const char *spec =
        "# Paid For Nothing\n\nSQL that never parses.\n\n## Database\n- users table\n";
    long long billed_tokens;
    double billed_cost;
    const cJSON *fin;
    cJSON *events;
    char *h;

    dmt_fakeor_script(&world.llm, "[{\"match\": \"Target path: `migrations/\", "
                                  "\"behaviour\": \"invalid-always\"}]");
    replica(NULL);
    submit("g-paid", spec, 200000, 5.0);
    expect_status("g-paid", "failed", 90000);
    cr_assert_eq(logged_usage(rep.log, "g-paid", &billed_tokens, &billed_cost), 3,
                 "three replies were received and billed");
    cr_assert(billed_tokens > 0 && billed_cost > 0);
    events = dmt_world_events(&world, "g-paid");
    fin = last_event(events);
    cr_assert_str_eq(str(fin, "status"), "failed");
    cr_assert_eq((long long)num(fin, "tokensUsed"), billed_tokens,
                 "the failed event reports %.0f tokens; the replies billed %lld",
                 num(fin, "tokensUsed"), billed_tokens);
    cr_assert(fabs(num(fin, "costUsd") - billed_cost) < 1e-5,
              "the failed event reports $%.6f; the replies cost $%.6f", num(fin, "costUsd"),
              billed_cost);
    h = dmt_world_hget(&world, "g-paid", "tokens");
    cr_assert_eq(h ? atoll(h) : 0, billed_tokens, "hash tokens %s, billed %lld", h, billed_tokens);
    free(h);
    cJSON_Delete(events);
}

/* A reply larger than the response cap (4 MiB) fails with a size error. The budget is large
 * enough that the stream cut for the budget cannot come first. */
Test(generation, huge_reply_fails_with_a_size_error)
{
    char paths[MAX_PATHS][256];
    char *spec = one_route_spec("Huge Reply", "[[fake:huge:6291456]]");
    char *err;

    replica(NULL);
    submit("g-huge", spec, 100000000, 1000.0);
    expect_status("g-huge", "failed", 90000);
    cr_assert_eq(plan_paths("g-huge", paths, NULL, 0), 1);
    err = dmt_world_hget(&world, "g-huge", "error");
    cr_assert_not_null(strstr(err, paths[0]), "names the file: %s", err);
    cr_assert_not_null(strstr(err, "exceeds"), "a size error: %s", err);
    cr_assert_not_null(strstr(err, "bytes"), "a size error: %s", err);
    cr_assert_eq(dmt_fakeor_path_count(&world.llm, paths[0]), 1, "a size error is final");
    assert_nothing_pushed("g-huge");
    cr_assert_not(checkpointed("g-huge", paths[0]), "a refused file is never checkpointed");
    free(err);
    free(spec);
}

/* A reply that drips forever is ended by --llm-timeout-ms: each attempt of the stage times
 * out (no hang), and the job ends failed within bounded time, nothing pushed. */
Test(generation, slow_drip_times_out_instead_of_hanging)
{
    const char *extra[] = {"--llm-timeout-ms=1000", NULL};
    char paths[MAX_PATHS][256];
    char *spec = one_route_spec("Dripping", "[[fake:drip:200]]");
    const cJSON *retry;
    cJSON *events;
    long long t0 = dmt_now_ms(), first;

    replica(extra);
    submit("g-drip", spec, 200000, 5.0);
    /* 4 attempts of 1 s plus 1+2+4 s of stage backoff: well under 40 s. */
    expect_status("g-drip", "failed", 40000);
    cr_assert(dmt_now_ms() - t0 < 40000);
    cr_assert_eq(plan_paths("g-drip", paths, NULL, 0), 1);
    events = dmt_world_events(&world, "g-drip");
    retry = find_event(events, "retrying");
    cr_assert_not_null(retry, "a timeout is transient: the stage is retried");
    cr_assert_not_null(strcasestr(str(retry, "error"), "timed out"), "a timeout: %s",
                       str(retry, "error"));
    cr_assert_not_null(strstr(str(retry, "error"), paths[0]), "names the file: %s",
                       str(retry, "error"));
    /* The first attempt ended about --llm-timeout-ms after it began, not after the 120 s the
     * fake would drip. */
    first = dmt_world_ts_ms(str(retry, "ts")) -
            dmt_world_ts_ms(str(find_event(events, "writing"), "ts"));
    cr_assert(first >= 900 && first < 5000, "the first attempt ended after %lld ms", first);
    cr_assert_not_null(strstr(str(last_event(events), "error"), paths[0]));
    assert_nothing_pushed("g-drip");
    cJSON_Delete(events);
    free(spec);
}

/* ---- 2. budget ---- */

/* With the fake's usage.cost switched off, dreamd prices usage with its table, overridden by
 * --prices-file ($10 per million tokens both ways, unlike the built-in $3/$15): every
 * `generated` event carries fileTokens/fileCostUsd with cost = tokens × 1e-5 exactly; the final
 * totals equal the usage of every reply received (the files' and the reviewer's), stay within
 * the limits, and the job hash agrees with the final event. */
Test(generation, known_prices_account_every_file_and_stay_within_budget)
{
    char prices[1200], flag[1300];
    const char *extra[] = {flag, NULL};
    const char *spec = "# Priced Build\n\nCosts are known.\n\n## API\n- GET /a answers a\n"
                       "- GET /b answers b\n\n## Database\n- things table\n\n## UI\n"
                       "- ThingList component\n";
    const long long max_tokens = 200000;
    const double max_usd = 2.0;
    long long sum_tokens = 0;
    double sum_cost = 0;
    long long billed_tokens;
    double billed_cost;
    int replies;
    const cJSON *ev, *fin;
    cJSON *events;
    char *h;
    FILE *f;

    snprintf(prices, sizeof(prices), "%s/prices.json", world.dir);
    f = fopen(prices, "w");
    cr_assert_not_null(f);
    fputs("{\"anthropic/claude-sonnet-4.5\": {\"prompt\": 10, \"completion\": 10}}\n", f);
    fclose(f);
    snprintf(flag, sizeof(flag), "--prices-file=%s", prices);
    fake_config("{\"cost\": false}");
    replica(extra);
    submit("g-priced", spec, max_tokens, max_usd);
    expect_status("g-priced", "complete", 90000);
    events = dmt_world_events(&world, "g-priced");
    cr_assert_eq(count_status(events, "generated"), 4);
    cJSON_ArrayForEach(ev, events)
    {
        if (strcmp(str(ev, "status"), "generated") == 0) {
            double ft = num(ev, "fileTokens"), fc = num(ev, "fileCostUsd");
            cr_assert(ft > 0 && fc > 0, "generated %s carries fileTokens/fileCostUsd",
                      str(ev, "path"));
            cr_assert(fabs(fc - ft * 1e-5) < 1e-9, "%s: $%.9f for %.0f tokens at $10/M",
                      str(ev, "path"), fc, ft);
            sum_tokens += (long long)ft;
            sum_cost += fc;
        }
    }
    fin = last_event(events);
    cr_assert_str_eq(str(fin, "status"), "complete");
    /* Every reply the replica received (4 files, and the reviewer model's when it was asked)
     * is in the totals, and nothing else. */
    replies = logged_usage(rep.log, "g-priced", &billed_tokens, &billed_cost);
    cr_assert(replies >= 4, "%d replies logged (log %s)", replies, rep.log);
    cr_assert_eq((long long)num(fin, "tokensUsed"), billed_tokens,
                 "final tokensUsed %.0f vs the replies' usage %lld", num(fin, "tokensUsed"),
                 billed_tokens);
    cr_assert(fabs(num(fin, "costUsd") - billed_cost) < 1e-5, "final $%.6f vs the replies $%.6f",
              num(fin, "costUsd"), billed_cost);
    cr_assert(sum_tokens <= billed_tokens && (replies > 4 || sum_tokens == billed_tokens),
              "the files' tokens %lld within the total %lld", sum_tokens, billed_tokens);
    cr_assert(num(fin, "tokensUsed") > 0 && num(fin, "tokensUsed") <= (double)max_tokens);
    cr_assert(num(fin, "costUsd") > 0 && num(fin, "costUsd") <= max_usd);
    h = dmt_world_hget(&world, "g-priced", "tokens");
    cr_assert_eq(atoll(h), billed_tokens, "hash tokens %s", h);
    free(h);
    h = dmt_world_hget(&world, "g-priced", "cost");
    cr_assert(fabs(atof(h) - billed_cost) < 1e-5, "hash cost %s", h);
    free(h);
    cJSON_Delete(events);
}

/* Checks a job that ran out of budget: failed with a budget error stating what was spent (no
 * more than the final event and the hash record: spend only grows), spend within the limits,
 * some files generated but not all, the refused files never sent, and nothing pushed. */
static void expect_budget_failure(const char *id, int files, long long max_tokens, double max_usd)
{
    char *err, *h;
    const char *p;
    cJSON *events;
    const cJSON *fin;
    long long spent_tokens;
    double spent_usd;
    int generated;

    expect_status(id, "failed", 90000);
    err = dmt_world_hget(&world, id, "error");
    cr_assert_not_null(strstr(err, "budget"), "a budget error: %s", err);
    p = strstr(err, "spent ");
    cr_assert_not_null(p, "says how much it spent: %s", err);
    spent_tokens = atoll(p + 6);
    p = strstr(p, "$");
    cr_assert_not_null(p, "spent dollars: %s", err);
    spent_usd = atof(p + 1);
    events = dmt_world_events(&world, id);
    fin = last_event(events);
    generated = count_status(events, "generated");
    cr_assert(generated >= 1 && generated < files, "%d of %d files before the budget ran out",
              generated, files);
    cr_assert(spent_tokens > 0, "it spent something first: %s", err);
    /* Spend only grows: calls still in flight at the refusal may add to it, never take away. */
    cr_assert((long long)num(fin, "tokensUsed") >= spent_tokens,
              "final event tokensUsed %.0f (costUsd %.6f) is less than the error says was spent: "
              "%s",
              num(fin, "tokensUsed"), num(fin, "costUsd"), err);
    cr_assert(num(fin, "costUsd") >= spent_usd - 1e-4, "final $%.6f vs error: %s",
              num(fin, "costUsd"), err);
    cr_assert(num(fin, "tokensUsed") <= (double)max_tokens, "tokens %.0f > limit %lld",
              num(fin, "tokensUsed"), max_tokens);
    cr_assert(num(fin, "costUsd") <= max_usd, "cost %.6f > limit %.4f", num(fin, "costUsd"),
              max_usd);
    h = dmt_world_hget(&world, id, "tokens");
    cr_assert_eq(atoll(h), (long long)num(fin, "tokensUsed"), "hash tokens %s", h);
    free(h);
    h = dmt_world_hget(&world, id, "cost");
    cr_assert(atof(h) <= max_usd && fabs(atof(h) - num(fin, "costUsd")) < 1e-5, "hash cost %s", h);
    free(h);
    /* Files the budget refused were never sent. */
    cr_assert(path_requests(id) < files, "%lld requests for %d files", path_requests(id), files);
    cr_assert_eq(count_status(events, "pushing"), 0);
    assert_nothing_pushed(id);
    cJSON_Delete(events);
    free(err);
}

/* maxTokens 8000 holds the worst case of one call (prompt estimate + 4096) but not 8 files. */
Test(generation, token_budget_too_small_fails_before_pushing_saying_what_it_spent)
{
    char *spec = routes_spec("Token Budget", 8);
    replica(NULL);
    submit("g-btok", spec, 8000, 100.0);
    expect_budget_failure("g-btok", 8, 8000, 100.0);
    free(spec);
}

/* maxDollars $0.07 holds one call's worst case at the built-in $3/$15 (about $0.065) but not
 * 8 files; the fake reports usage.cost. */
Test(generation, dollar_budget_too_small_fails_before_pushing_saying_what_it_spent)
{
    char *spec = routes_spec("Dollar Budget", 8);
    replica(NULL);
    submit("g-busd", spec, 1000000, 0.07);
    expect_budget_failure("g-busd", 8, 1000000, 0.07);
    free(spec);
}

/* ---- 3. concurrency caps ---- */

Test(generation, file_parallelism_caps_requests_in_flight)
{
    const char *extra[] = {"--file-parallelism=3", NULL};
    char *spec = routes_spec("Parallel Eight", 8);
    long long peak;

    fake_config("{\"latency_ms\": 400}");
    replica(extra);
    submit("g-par", spec, 1000000, 10.0);
    expect_status("g-par", "complete", 90000);
    peak = dmt_fakeor_stat(&world.llm, "peak_in_flight");
    cr_assert_eq(path_requests("g-par"), 8, "one request per file");
    cr_assert(peak <= 3, "peak in flight %lld exceeds --file-parallelism=3", peak);
    cr_assert(peak >= 2, "peak in flight %lld: files were not generated in parallel", peak);
    free(spec);
}

Test(generation, max_requests_caps_requests_across_jobs)
{
    const char *extra[] = {"--file-parallelism=3", "--max-requests=5", NULL};
    static const char *const titles[] = {"Alpha", "Bravo", "Charlie", "Delta"};
    char id[32];
    long long peak;

    fake_config("{\"latency_ms\": 500}");
    replica(extra);
    for (int j = 0; j < 4; j++) {
        char *spec = routes_spec(titles[j], 4);
        snprintf(id, sizeof(id), "g-cap-%d", j);
        submit(id, spec, 1000000, 10.0);
        free(spec);
    }
    for (int j = 0; j < 4; j++) {
        snprintf(id, sizeof(id), "g-cap-%d", j);
        expect_status(id, "complete", 120000);
    }
    peak = dmt_fakeor_stat(&world.llm, "peak_in_flight");
    for (int j = 0; j < 4; j++) {
        snprintf(id, sizeof(id), "g-cap-%d", j);
        cr_assert_eq(path_requests(id), 4, "one request per file of %s", id);
    }
    cr_assert(peak <= 5, "peak in flight %lld exceeds --max-requests=5", peak);
    /* One job alone reaches at most 3: more means jobs shared the cap. */
    cr_assert(peak >= 4, "peak in flight %lld: the jobs did not run together", peak);
}

/* ---- 4. files generated concurrently ---- */

Test(generation, files_are_generated_concurrently)
{
    const char *extra[] = {"--file-parallelism=4", NULL};
    const int latency = 1000, files = 8;
    char *spec = routes_spec("Wall Time", files);
    long long first_writing = -1, last_generated = -1, wall;
    const cJSON *ev;
    cJSON *events;
    char cfg[64];

    snprintf(cfg, sizeof(cfg), "{\"latency_ms\": %d}", latency);
    fake_config(cfg);
    replica(extra);
    submit("g-wall", spec, 1000000, 10.0);
    expect_status("g-wall", "complete", 90000);
    events = dmt_world_events(&world, "g-wall");
    cJSON_ArrayForEach(ev, events)
    {
        long long t = dmt_world_ts_ms(str(ev, "ts"));
        if (strcmp(str(ev, "status"), "writing") == 0 && first_writing < 0) {
            first_writing = t;
        }
        if (strcmp(str(ev, "status"), "generated") == 0) {
            last_generated = t;
        }
    }
    cr_assert_eq(count_status(events, "generated"), files);
    wall = last_generated - first_writing;
    /* Sequential would be files × latency = 8 s; 4 at a time is about 2 s. */
    cr_assert(wall < latency * files * 3 / 4, "generate stage took %lld ms (sequential: %d ms)",
              wall, latency * files);
    cr_assert(wall >= latency * files / 4 - 100,
              "generate stage took %lld ms: faster than "
              "%d files ÷ 4 at %d ms each is impossible",
              wall, files, latency);
    cr_log_info("generate stage wall time %lld ms for %d files × %d ms at parallelism 4", wall,
                files, latency);
    cJSON_Delete(events);
    free(spec);
}

/* ---- 5. checkpoint and resume ---- */

Test(generation, killed_replica_resumes_without_paying_twice_for_checkpointed_files)
{
    const char *extra[] = {"--file-parallelism=2", "--lease-ms=1000", NULL};
    char *spec = routes_spec("Resume Me", 8);
    char paths[MAX_PATHS][256], branch[256];
    long long at_kill[MAX_PATHS];
    int done[MAX_PATHS] = {0};
    int n, ncheck = 0, st;
    struct dmt_replica second;
    redisReply *r;
    char *files;

    fake_config("{\"latency_ms\": 1500}");
    replica(extra);
    submit("g-resume", spec, 1000000, 10.0);
    /* Wait for the first files to be checkpointed, then kill while the next ones are in
     * flight. */
    for (long long deadline = dmt_now_ms() + 60000; dmt_now_ms() < deadline;) {
        r = redisCommand(world.rc, "HLEN dream:job:g-resume:files");
        ncheck = r && r->type == REDIS_REPLY_INTEGER ? (int)r->integer : 0;
        freeReplyObject(r);
        if (ncheck >= 2) {
            break;
        }
        dmt_sleep_ms(20);
    }
    cr_assert(ncheck >= 2, "two files checkpointed before the kill");
    dmt_sleep_ms(400);
    cr_assert(dmt_fakeor_stat(&world.llm, "in_flight") >= 1, "files in flight at the kill");
    st = dmt_stop(rep.pid, SIGKILL, 5000);
    cr_assert(WIFSIGNALED(st), "killed");
    rep.pid = 0;

    /* The state at the kill: what was checkpointed, how often each file was asked for. */
    n = plan_paths("g-resume", paths, branch, sizeof(branch));
    cr_assert_eq(n, 8);
    ncheck = 0;
    for (int i = 0; i < n; i++) {
        done[i] = checkpointed("g-resume", paths[i]);
        ncheck += done[i];
        at_kill[i] = dmt_fakeor_path_count(&world.llm, paths[i]);
    }
    cr_assert(ncheck >= 2 && ncheck < n, "%d of %d files checkpointed at the kill", ncheck, n);

    cr_log_info("killed with %d of %d files checkpointed", ncheck, n);
    dmt_world_replica(&world, &second, "gen2", extra);
    rep = second; /* the log to show on failure */
    expect_status("g-resume", "complete", 120000);
    for (int i = 0; i < n; i++) {
        long long total = dmt_fakeor_path_count(&world.llm, paths[i]);
        if (done[i]) {
            cr_assert_eq(at_kill[i], 1, "%s was asked for once before its checkpoint", paths[i]);
            cr_assert_eq(total, 1, "checkpointed %s was paid for again: %lld requests", paths[i],
                         total);
        } else {
            cr_assert(total >= 1 && total <= at_kill[i] + 1,
                      "%s: %lld requests in all, %lld at the kill", paths[i], total, at_kill[i]);
        }
    }
    files = dmt_world_branch_files(&world, branch);
    cr_assert_not_null(files);
    for (int i = 0; i < n; i++) {
        cr_assert_not_null(strstr(files, paths[i]), "%s on the branch: %s", paths[i], files);
    }
    cr_assert_eq(dmt_world_pr_count(&world), 1);
    free(files);
    free(spec);
}
