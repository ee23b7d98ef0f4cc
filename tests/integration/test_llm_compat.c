/*
 * Any model, any OpenAI-compatible server (issue 16), at system level: the real dreamd against a
 * real redis-server, the fake OpenRouter in its three API modes (tests/fakes/fake_openrouter.py:
 * openrouter, openai, llamacpp), the fake GitHub and a bare repository. Prices come from the
 * fake's GET /models (a model only that list knows), the list's disk cache, or nowhere (a job
 * with a dollar budget is then refused at intake with the remedy); an `openai` server refuses
 * every OpenRouter-only request field; a llama.cpp server ends streams without [DONE] and needs
 * no key. Test process only; one world per test.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "dme2e.h"

#define ENDED "complete,failed,cancelled,dead_lettered,rejected,paused_approval"
#define LISTED "acme/listed-coder-1" /* in the fake's /models only: 2 / 8 USD per M tokens */
#define LISTED_PROMPT 2.0
#define LISTED_COMPLETION 8.0

static struct dmt_world world;
static struct dmt_replica rep;

static void teardown(void)
{
    dmt_world_stop(&world);
}

TestSuite(compat, .fini = teardown, .timeout = 240);

/* ---- helpers ---- */

static void start_world(const char *const *llm_args)
{
    dmt_world_start(&world, llm_args);
}

static void replica(const char *name, const char *const *extra)
{
    dmt_world_replica(&world, &rep, name, extra);
}

/* Submits a job; max_dollars <= 0 leaves budget.maxDollars out (no dollar limit). */
static void submit(const char *id, long long max_tokens, double max_dollars)
{
    char *job = dmt_world_job(id, NULL, NULL, max_tokens, max_dollars > 0 ? max_dollars : 1);
    if (max_dollars <= 0) {
        cJSON *o = cJSON_Parse(job);
        cJSON_DeleteItemFromObject(cJSON_GetObjectItem(o, "budget"), "maxDollars");
        free(job);
        job = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
    }
    free(dmt_submit(world.rc, job));
    free(job);
}

static void expect_status(const char *id, const char *want, int timeout_ms)
{
    char *st;
    cr_assert(dmt_world_wait_status(&world, id, ENDED, timeout_ms),
              "job %s did not end within %d ms (replica log %s)", id, timeout_ms, rep.log);
    st = dmt_world_hget(&world, id, "status");
    cr_assert_str_eq(st, want, "job %s ended %s, wanted %s (error: %s; log %s)", id, st, want,
                     dmt_world_hget(&world, id, "error"), rep.log);
    free(st);
}

/* Every chat request the fake recorded (caller cJSON_Deletes). */
static cJSON *chat_requests(void)
{
    char *b = dmt_fakeor_http(&world.llm, "GET", "/_fake/requests", NULL);
    cJSON *arr = cJSON_Parse(b);
    free(b);
    cr_assert(cJSON_IsArray(arr));
    return arr;
}

/* What the fake's recorded usage costs at the listed model's prices, and its tokens. */
static double listed_cost(const cJSON *reqs, long long *tokens)
{
    const cJSON *r;
    double usd = 0;
    *tokens = 0;
    cJSON_ArrayForEach(r, reqs)
    {
        const cJSON *u = cJSON_GetObjectItem(r, "usage");
        double pt = cJSON_GetNumberValue(cJSON_GetObjectItem(u, "prompt_tokens"));
        double ct = cJSON_GetNumberValue(cJSON_GetObjectItem(u, "completion_tokens"));
        cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(r, "model")), LISTED);
        cr_assert(u && !isnan(pt) && !isnan(ct), "every request was answered with usage");
        usd += (pt * LISTED_PROMPT + ct * LISTED_COMPLETION) / 1e6;
        *tokens += (long long)(pt + ct);
    }
    return usd;
}

/* Asserts the job's recorded spend (hash and `complete` event) is what the fake's usage costs
 * at the listed prices. */
static void expect_listed_cost(const char *id)
{
    cJSON *reqs = chat_requests();
    long long tokens;
    double want = listed_cost(reqs, &tokens);
    char *cost = dmt_world_hget(&world, id, "cost");
    char *tok = dmt_world_hget(&world, id, "tokens");
    cJSON *done = dmt_world_event(&world, id, "complete");

    cr_assert_gt(cJSON_GetArraySize(reqs), 0);
    cr_assert_gt(want, 0);
    cr_assert_not_null(cost);
    cr_assert_float_eq(strtod(cost, NULL), want, 2e-6, "job cost %s, the list's prices give %.6f",
                       cost, want);
    cr_assert_eq(strtoll(tok, NULL, 10), tokens, "tokens %s, the fake reported %lld", tok, tokens);
    cr_assert_not_null(done);
    cr_assert_float_eq(cJSON_GetNumberValue(cJSON_GetObjectItem(done, "costUsd")), want, 2e-6);
    /* Not the built-in default's price (sonnet's 3/15 would be about 1.7 times more). */
    cJSON_Delete(done);
    cJSON_Delete(reqs);
    free(cost);
    free(tok);
}

static const char *const listed_model_flags[] = {"--model=" LISTED, "--review-model=" LISTED, NULL};

/* ---- prices ---- */

Test(compat, a_model_only_in_the_models_list_completes_priced_from_the_list)
{
    /* --no-cost: replies carry no usage.cost, so dreamd must price them from its table. */
    const char *const fake_args[] = {"--no-cost", NULL};
    char cache[1200];
    start_world(fake_args);
    replica("list", listed_model_flags);
    cr_assert(dmt_wait_in_file(rep.log, "read from GET", 1, 20000),
              "the replica read the price list (log %s)", rep.log);
    submit("listed-1", 400000, 2.0);
    expect_status("listed-1", "complete", 120000);
    expect_listed_cost("listed-1");

    /* The list was cached on disk: a restart that cannot read it still knows the price. */
    snprintf(cache, sizeof(cache), "%s/data/list/prices/models.json", world.dir);
    cr_assert(dmt_wait_in_file(cache, LISTED, 1, 10000), "the cache %s holds the list", cache);
    cr_assert_neq(dmt_replica_stop(&rep, 20000), -1, "the replica stopped");
    free(dmt_fakeor_http(&world.llm, "POST", "/_fake/config", "{\"models_status\": 503}"));
    free(dmt_fakeor_http(&world.llm, "POST", "/_fake/reset", "{}"));
    replica("list", listed_model_flags);
    cr_assert(dmt_wait_in_file(rep.log, "loaded from the cache", 1, 20000), "log %s", rep.log);
    cr_assert(dmt_wait_in_file(rep.log, "price list GET", 1, 20000), "the read failed: %s",
              rep.log);
    submit("listed-2", 400000, 2.0);
    expect_status("listed-2", "complete", 120000);
    expect_listed_cost("listed-2");
}

Test(compat, an_unknown_model_with_a_dollar_budget_fails_at_intake_when_the_list_is_unreachable)
{
    const char *const fake_args[] = {"--models-status", "503", NULL};
    start_world(fake_args);
    replica("nolist", listed_model_flags);
    cr_assert(dmt_wait_in_file(rep.log, "price list GET", 1, 20000),
              "the replica tried the list (log %s)", rep.log);
    submit("unpriced-1", 400000, 2.0);
    expect_status("unpriced-1", "failed", 60000);
    char *error = dmt_world_hget(&world, "unpriced-1", "error");
    cr_assert(error && strstr(error, "no known price for model " LISTED) &&
                  strstr(error, "DREAM_PRICES_FILE") && strstr(error, "\"default\"") &&
                  strstr(error, "/models"),
              "the model and the remedy: %s", error);
    free(error);
    char *statuses = dmt_world_statuses(&world, "unpriced-1");
    cr_assert_str_eq(statuses, "failed", "refused at intake: nothing ran (%s)", statuses);
    free(statuses);
    cr_assert_eq(dmt_fakeor_stat(&world.llm, "chat"), 0, "no model was asked");

    /* Without a dollar budget the same model runs; its tokens count against maxTokens. */
    submit("unpriced-2", 400000, 0);
    expect_status("unpriced-2", "complete", 120000);
    char *tokens = dmt_world_hget(&world, "unpriced-2", "tokens");
    cr_assert_gt(strtoll(tokens, NULL, 10), 0, "tokens counted: %s", tokens);
    free(tokens);
    /* The reviewer was asked too (a missing price is no reason to let the rules decide). */
    cr_assert_eq(dmt_count_in_file(rep.log, "the rules decide"), 0, "log %s", rep.log);
    cJSON *reqs = chat_requests();
    const cJSON *r;
    int plain = 0;
    cJSON_ArrayForEach(r, reqs)
    {
        plain += !cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "body"), "stream"));
    }
    cr_assert_eq(plain, 1, "one (non-streamed) review request");
    cJSON_Delete(reqs);
}

/* ---- OpenAI-compatible servers ---- */

static const char *const openai_body_fields[] = {
    "model",  "messages",       "max_completion_tokens", "max_tokens", "temperature",
    "stream", "stream_options", "response_format",       NULL};

Test(compat, openai_mode_job_completes_with_only_openai_fields_and_usage_from_include_usage)
{
    const char *const fake_args[] = {"--api", "openai", NULL};
    const char *const flags[] = {"--llm-api=openai", NULL};
    start_world(fake_args);
    world.replica_env = "DREAM_LLM_API_KEY=" DMT_OR_KEY; /* the fake's openai mode wants a key */
    replica("oai", flags);
    submit("oai-1", 400000, 2.0);
    expect_status("oai-1", "complete", 120000);

    cJSON *reqs = chat_requests();
    const cJSON *r;
    long long tokens = 0;
    int streamed = 0, plain = 0;
    cr_assert_gt(cJSON_GetArraySize(reqs), 1);
    cJSON_ArrayForEach(r, reqs)
    {
        const cJSON *body = cJSON_GetObjectItem(r, "body");
        const cJSON *u = cJSON_GetObjectItem(r, "usage");
        const cJSON *f;
        cJSON_ArrayForEach(f, body)
        {
            int ok = 0;
            for (int i = 0; openai_body_fields[i]; i++) {
                ok |= strcmp(f->string, openai_body_fields[i]) == 0;
            }
            cr_assert(ok, "request %d carries %s",
                      (int)cJSON_GetNumberValue(cJSON_GetObjectItem(r, "n")), f->string);
        }
        cr_assert_null(cJSON_GetObjectItem(body, "usage"));
        cr_assert_null(cJSON_GetObjectItem(body, "provider"));
        cr_assert_null(cJSON_GetObjectItem(body, "response_format"), "not configured");
        cr_assert_str_neq(cJSON_GetStringValue(cJSON_GetObjectItem(r, "behaviour")),
                          "unknown-field");
        if (cJSON_IsTrue(cJSON_GetObjectItem(body, "stream"))) {
            streamed++;
            cr_assert(cJSON_IsTrue(
                cJSON_GetObjectItem(cJSON_GetObjectItem(body, "stream_options"), "include_usage")));
        } else {
            plain++;
        }
        tokens += (long long)(cJSON_GetNumberValue(cJSON_GetObjectItem(u, "prompt_tokens")) +
                              cJSON_GetNumberValue(cJSON_GetObjectItem(u, "completion_tokens")));
    }
    cr_assert_gt(streamed, 0, "files were generated streamed");
    cr_assert_gt(plain, 0, "the reviewer was asked (and answered JSON asked for in words)");
    cr_assert_eq(dmt_fakeor_behaviour_count(&world.llm, "unknown-field"), 0);
    /* The job's tokens are the server's own counts (usage chunks from include_usage), not the
     * estimates a stream without usage would leave. */
    char *tok = dmt_world_hget(&world, "oai-1", "tokens");
    cr_assert_eq(strtoll(tok, NULL, 10), tokens, "tokens %s, the server reported %lld", tok,
                 tokens);
    free(tok);
    cJSON_Delete(reqs);
    cr_assert_eq(dmt_count_in_file(rep.log, "reviewer model answered something unusable"), 0,
                 "the reviewer's JSON was read (log %s)", rep.log);
}

/* (That a loopback llama.cpp server needs no key is llm::llamacpp_stream_without_done_...: the
 * world always gives its replicas a key.) */
Test(compat, llamacpp_mode_replies_without_done_complete)
{
    const char *const fake_args[] = {"--api", "llamacpp", NULL};
    const char *const flags[] = {"--llm-api=openai", NULL};
    start_world(fake_args);
    replica("llama", flags);
    submit("llama-1", 400000, 2.0);
    expect_status("llama-1", "complete", 120000);
    cr_assert_gt(dmt_fakeor_stat(&world.llm, "chat"), 1);
    cr_assert_eq(dmt_count_in_file(rep.log, "before [DONE]"), 0, "log %s", rep.log);
    cr_assert_eq(dmt_fakeor_behaviour_count(&world.llm, "ok"), dmt_fakeor_stat(&world.llm, "chat"),
                 "every reply was a normal one (ended without [DONE])");
}

/* OPENROUTER_API_KEY is OpenRouter's key: a replica in openai mode (a self-hosted server, here
 * llama.cpp on loopback) never sends it, to the chat requests or anywhere else. */
Test(compat, openai_mode_never_sends_the_openrouter_key)
{
    const char *const fake_args[] = {"--api", "llamacpp", NULL};
    const char *const flags[] = {"--llm-api=openai", NULL};
    cJSON *reqs;
    const cJSON *r;

    start_world(fake_args);
    replica("nokey", flags); /* the world gives it OPENROUTER_API_KEY only */
    submit("nokey-1", 400000, 0);
    expect_status("nokey-1", "complete", 120000);
    reqs = chat_requests();
    cr_assert_gt(cJSON_GetArraySize(reqs), 1);
    cJSON_ArrayForEach(r, reqs)
    {
        char *h = cJSON_PrintUnformatted(cJSON_GetObjectItem(r, "headers"));
        cr_assert_null(strstr(h, DMT_OR_KEY), "a request carried the OpenRouter key: %s", h);
        free(h);
    }
    cJSON_Delete(reqs);
    cr_assert_eq(dmt_count_in_file(rep.log, DMT_OR_KEY), 0, "log %s", rep.log);
}
