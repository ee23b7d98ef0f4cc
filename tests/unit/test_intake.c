/*
 * Unit tests of intake.c: how one entry of the jobs stream is classified (BUILD, INVALID with a
 * `failed` event, RESUME, DEAD for the dead-letter stream), with and without signing secrets,
 * and which trust level a built job ends up with. Tokens are signed with dm_auth_sign_hs256
 * (test_auth checks the verifier against independently built tokens).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dream/core/error.h"
#include "dream/domain/auth.h"
#include "dream/domain/intake.h"
#include "dream/domain/jobreq.h"
#include "dream/domain/price.h"

#define NOW 1900000000LL
#define SECRET "intake-secret"

static struct dm_intake in;
static struct dm_intake_policy policy;
static char *token;

static void teardown(void)
{
    memset(&policy, 0, sizeof(policy));
    dm_intake_clear(&in);
    free(token);
    token = NULL;
}

TestSuite(intake, .fini = teardown);

/* A job entry's JSON; trust NULL leaves trustLevel out. */
static const char *job_json(const char *id, const char *trust)
{
    static char buf[1024];
    char t[64] = "";
    if (trust) {
        snprintf(t, sizeof(t), ",\"trustLevel\":\"%s\"", trust);
    }
    snprintf(buf, sizeof(buf),
             "{\"jobId\":\"%s\",\"specId\":\"spec-1\",\"userId\":\"user-1\",\"repoOwner\":"
             "\"acme\",\"repoName\":\"app\",\"specMarkdown\":\"# Todo API\\n\",\"budget\":"
             "{\"maxTokens\":1000,\"maxDollars\":1}%s}",
             id, t);
    return buf;
}

/* The dreamJobSha256 of a job JSON (as a producer computes it: over the parsed job). */
static void job_sha(char *out, const char *json)
{
    struct dm_jobreq_opts o = DM_JOBREQ_OPTS_INIT;
    struct dm_jobreq *req = NULL;
    struct dm_error err;

    o.trust_optional = 1;
    o.ignore_trust = 1;
    cr_assert_eq(dm_jobreq_parse(&req, json, strlen(json), &o, &err), 0, "%s", err.msg);
    cr_assert_eq(dm_jobreq_binding_sha256(out, DM_AUTH_SHA256_HEX_LEN + 1, req), 0);
    dm_jobreq_free(req);
}

/* A token for job-1 / user-1, signed with secret; extra is appended to the claims (may be "").
 * bound_to: the job JSON whose dreamJobSha256 it carries (NULL: no such claim). */
static const char *sign_for(const char *secret, long long exp, const char *extra,
                            const char *bound_to)
{
    char payload[1024], bind[128] = "";
    struct dm_error err;
    if (bound_to) {
        char sha[DM_AUTH_SHA256_HEX_LEN + 1];
        job_sha(sha, bound_to);
        snprintf(bind, sizeof(bind), ",\"dreamJobSha256\":\"%s\"", sha);
    }
    snprintf(payload, sizeof(payload),
             "{\"iss\":\"storia\",\"sub\":\"user-1\",\"jti\":\"job-1\",\"iat\":%lld,"
             "\"exp\":%lld%s%s}",
             exp - 600, exp, bind, extra);
    free(token);
    token = NULL;
    cr_assert_eq(dm_auth_sign_hs256(&token, payload, secret, &err), 0, "%s", err.msg);
    return token;
}

/* A token bound to job_json("job-1", "builder") (the trust level is not bound). */
static const char *sign(const char *secret, long long exp, const char *extra)
{
    char job[1024];
    snprintf(job, sizeof(job), "%s", job_json("job-1", "builder"));
    return sign_for(secret, exp, extra, job);
}

static const char *const secrets[] = {SECRET};

static void classify(const char *type, const char *job, const char *tok, int signed_jobs)
{
    struct dm_entry_fields f = {0};
    struct dm_intake_policy p = policy;

    f.type = type;
    f.job = job;
    f.job_len = job ? strlen(job) : 0;
    f.token = tok;
    f.token_len = tok ? strlen(tok) : 0;
    p.secrets = signed_jobs ? secrets : NULL;
    p.n_secrets = signed_jobs ? 1 : 0;
    if (!p.now_s) {
        p.now_s = NOW;
    }
    dm_intake_clear(&in);
    cr_assert_eq(dm_intake_classify(&in, &f, &p), 0);
}

static void assert_kind(enum dm_intake_kind kind, const char *reason_part)
{
    cr_assert_eq(in.kind, kind, "kind %d, want %d (reason: %s)", in.kind, kind, in.reason);
    if (reason_part) {
        cr_assert_not_null(strstr(in.reason, reason_part), "reason \"%s\" lacks \"%s\"", in.reason,
                           reason_part);
    }
    if (kind != DM_INTAKE_BUILD) {
        cr_assert_null(in.job_json, "only a build owns a job");
        cr_assert_null(in.req);
    }
}

/* ---- build ---- */

Test(intake, a_valid_build_entry_is_built)
{
    classify("build", job_json("job-1", "builder"), NULL, 0);
    assert_kind(DM_INTAKE_BUILD, NULL);
    cr_assert_str_eq(in.job_id, "job-1");
    cr_assert_not_null(in.req);
    cr_assert_eq(in.req->trust, DM_TRUST_BUILDER);
    cr_assert_not_null(in.job_json);
    cr_assert_not_null(strstr(in.job_json, "\"jobId\":\"job-1\""), "%s", in.job_json);
    cr_assert_not_null(strstr(in.job_json, "\"trustLevel\":\"builder\""), "%s", in.job_json);
}

Test(intake, an_entry_without_a_type_is_a_build)
{
    classify(NULL, job_json("job-1", "planner"), NULL, 0);
    assert_kind(DM_INTAKE_BUILD, NULL);
    cr_assert_eq(in.req->trust, DM_TRUST_PLANNER);
}

/* ---- dead letters: nothing to answer to ---- */

Test(intake, an_unknown_type_is_a_dead_letter)
{
    classify("frobnicate", job_json("job-1", "builder"), NULL, 0);
    assert_kind(DM_INTAKE_DEAD, "unknown entry type 'frobnicate'");
    cr_assert_str_eq(in.job_id, "");
}

Test(intake, a_build_without_a_job_is_a_dead_letter)
{
    classify("build", NULL, NULL, 0);
    assert_kind(DM_INTAKE_DEAD, "entry has no job field");
}

Test(intake, a_job_without_a_usable_id_is_a_dead_letter)
{
    classify("build", "{not json", NULL, 0);
    assert_kind(DM_INTAKE_DEAD, "jobId:");
    classify("build", "[1,2]", NULL, 0);
    assert_kind(DM_INTAKE_DEAD, "jobId:");
    classify("build", "{\"specId\":\"s\"}", NULL, 0);
    assert_kind(DM_INTAKE_DEAD, "jobId: not found");
    classify("build", job_json("../etc", "builder"), NULL, 0);
    assert_kind(DM_INTAKE_DEAD, "jobId: not a usable id");
    cr_assert_str_eq(in.job_id, "", "no id to write events under");
}

/* ---- invalid: answered with a failed event under the job's id ---- */

Test(intake, a_bad_field_is_invalid_and_named)
{
    classify("build", "{\"jobId\":\"job-2\",\"specId\":1}", NULL, 0);
    assert_kind(DM_INTAKE_INVALID, "specId");
    cr_assert_str_eq(in.job_id, "job-2", "the failure is reported under the job's id");
}

Test(intake, observers_may_not_build)
{
    classify("build", job_json("job-1", "observer"), NULL, 0);
    assert_kind(DM_INTAKE_INVALID, "trustLevel: observer may not build");
    cr_assert_str_eq(in.job_id, "job-1");
}

Test(intake, an_unsigned_job_needs_a_trust_level)
{
    classify("build", job_json("job-1", NULL), NULL, 0);
    assert_kind(DM_INTAKE_INVALID, "trustLevel");
}

/* ---- signed jobs ---- */

/* A dead letter writes nothing under the jobId: intake hands over no job and no failure. */
static void assert_refused(const char *reason_part)
{
    assert_kind(DM_INTAKE_DEAD, reason_part);
}

Test(intake, with_secrets_an_unsigned_job_is_a_dead_letter)
{
    classify("build", job_json("job-1", "builder"), NULL, 1);
    assert_refused("token: required (jobs must be signed)");
    cr_assert_str_eq(in.job_id, "job-1", "named for the log only");
}

Test(intake, a_token_without_secrets_cannot_be_verified)
{
    classify("build", job_json("job-1", "builder"), sign(SECRET, NOW + 600, ""), 0);
    assert_kind(DM_INTAKE_INVALID, "token: cannot be verified (no signing secrets configured)");
}

Test(intake, a_bound_token_builds_with_its_trust_level)
{
    classify("build", job_json("job-1", "builder"),
             sign(SECRET, NOW + 600, ",\"dreamTrustLevel\":\"planner\""), 1);
    assert_kind(DM_INTAKE_BUILD, NULL);
    cr_assert_eq(in.req->trust, DM_TRUST_PLANNER);
    cr_assert_not_null(strstr(in.job_json, "\"trustLevel\":\"planner\""), "%s", in.job_json);
}

Test(intake, in_signed_mode_the_bodys_trust_level_is_ignored)
{
    char job[1024];

    /* Absent, another level, or not a level at all: the token's claim decides. */
    classify("build", job_json("job-1", NULL),
             sign(SECRET, NOW + 600, ",\"dreamTrustLevel\":\"shipper\""), 1);
    assert_kind(DM_INTAKE_BUILD, NULL);
    cr_assert_eq(in.req->trust, DM_TRUST_SHIPPER);
    classify("build", job_json("job-1", "shipper"),
             sign(SECRET, NOW + 600, ",\"dreamTrustLevel\":\"planner\""), 1);
    assert_kind(DM_INTAKE_BUILD, NULL);
    cr_assert_eq(in.req->trust, DM_TRUST_PLANNER);
    snprintf(job, sizeof(job), "%s", job_json("job-1", "root"));
    classify("build", job, sign(SECRET, NOW + 600, ",\"dreamTrustLevel\":\"builder\""), 1);
    assert_kind(DM_INTAKE_BUILD, NULL);
    cr_assert_eq(in.req->trust, DM_TRUST_BUILDER);
}

Test(intake, a_signed_job_takes_its_trust_level_only_from_the_token)
{
    classify("build", job_json("job-1", "builder"), sign(SECRET, NOW + 600, ""), 1);
    assert_refused("token: dreamTrustLevel missing");
}

Test(intake, a_token_that_makes_the_job_an_observer_fails_it)
{
    /* Authentic, so it is answered under the job's id. */
    classify("build", job_json("job-1", "builder"),
             sign(SECRET, NOW + 600, ",\"dreamTrustLevel\":\"observer\""), 1);
    assert_kind(DM_INTAKE_INVALID, "trustLevel: observer may not build");
}

Test(intake, bad_tokens_are_dead_letters_with_the_rule)
{
    const char *trust = ",\"dreamTrustLevel\":\"builder\"";

    classify("build", job_json("job-1", "builder"), sign("another-secret", NOW + 600, trust), 1);
    assert_refused("token: signature does not match");
    classify("build", job_json("job-1", "builder"), sign(SECRET, NOW - 3600, trust), 1);
    assert_refused("token: expired");
    /* Signed for job-1, presented with job-9. */
    classify("build", job_json("job-9", "builder"), sign(SECRET, NOW + 600, trust), 1);
    assert_refused("token: jti does not match jobId");
    cr_assert_str_eq(in.job_id, "job-9");
    classify("build", job_json("job-1", "builder"), "not.a.token", 1);
    assert_refused("token: malformed");
}

Test(intake, a_token_for_another_body_is_refused)
{
    const char *trust = ",\"dreamTrustLevel\":\"builder\"";
    static const struct {
        const char *from, *to;
    } edits[] = {
        {"\"specMarkdown\":\"# Todo API\\n\"", "\"specMarkdown\":\"# Todo API\\nrm -rf /\\n\""},
        {"\"repoName\":\"app\"", "\"repoName\":\"infra\""},
        {"\"repoOwner\":\"acme\"", "\"repoOwner\":\"evil\""},
        {"\"specId\":\"spec-1\"",
         "\"specId\":\"spec-1\",\"callbackUrl\":\"https://evil.example/hook\""},
        {"\"specId\":\"spec-1\"", "\"specId\":\"spec-1\",\"baseBranch\":\"production\""},
        {"\"specId\":\"spec-1\"", "\"specId\":\"spec-1\",\"branchPrefix\":\"release/\""},
    };
    char signed_job[1024];

    snprintf(signed_job, sizeof(signed_job), "%s", job_json("job-1", "builder"));
    for (size_t i = 0; i < sizeof(edits) / sizeof(edits[0]); i++) {
        char job[1024];
        const char *at = strstr(signed_job, edits[i].from);
        cr_assert_not_null(at, "%s", edits[i].from);
        snprintf(job, sizeof(job), "%.*s%s%s", (int)(at - signed_job), signed_job, edits[i].to,
                 at + strlen(edits[i].from));
        classify("build", job, sign_for(SECRET, NOW + 600, trust, signed_job), 1);
        assert_refused("token: dreamJobSha256 does not match the job");
    }
    /* The unedited body passes with the same token, and so does one whose unbound fields
     * (budget, priority) differ. */
    classify("build", signed_job, sign_for(SECRET, NOW + 600, trust, signed_job), 1);
    assert_kind(DM_INTAKE_BUILD, NULL);
    {
        char job[1024];
        const char *at = strstr(signed_job, "\"maxTokens\":1000");
        cr_assert_not_null(at);
        const char *rest = at + strlen("\"maxTokens\":1000");
        /* The rest without its closing brace, then one more field. */
        snprintf(job, sizeof(job), "%.*s\"maxTokens\":2000%.*s,\"priority\":\"high\"}",
                 (int)(at - signed_job), signed_job, (int)strlen(rest) - 1, rest);
        classify("build", job, sign_for(SECRET, NOW + 600, trust, signed_job), 1);
        assert_kind(DM_INTAKE_BUILD, NULL);
        cr_assert_eq(in.req->budget_tokens, 2000);
    }
}

Test(intake, a_token_must_bind_the_job)
{
    classify("build", job_json("job-1", "builder"),
             sign_for(SECRET, NOW + 600, ",\"dreamTrustLevel\":\"builder\"", NULL), 1);
    assert_refused("token: dreamJobSha256 missing");
}

Test(intake, the_normalised_job_of_a_requeue_still_matches_its_token)
{
    char normalised[2048];
    const char *tok = sign(SECRET, NOW + 600, ",\"dreamTrustLevel\":\"planner\"");
    char *tok_copy = strdup(tok);

    /* `dreamctl dead requeue` adds the stored (normalised) job back with the original token:
     * defaults written out, the token's trust level in trustLevel. */
    classify("build", job_json("job-1", "builder"), tok_copy, 1);
    assert_kind(DM_INTAKE_BUILD, NULL);
    snprintf(normalised, sizeof(normalised), "%s", in.job_json);
    cr_assert_not_null(strstr(normalised, "\"baseBranch\":\"main\""), "%s", normalised);
    classify("build", normalised, tok_copy, 1);
    assert_kind(DM_INTAKE_BUILD, NULL);
    cr_assert_eq(in.req->trust, DM_TRUST_PLANNER);
    free(tok_copy);
}

Test(intake, in_signed_mode_an_invalid_job_is_a_dead_letter)
{
    /* It cannot be bound to a token, so it may not fail the job it names. */
    classify("build", "{\"jobId\":\"job-1\",\"specId\":1}",
             sign(SECRET, NOW + 600, ",\"dreamTrustLevel\":\"builder\""), 1);
    assert_refused("specId");
}

Test(intake, the_audience_is_checked_when_configured)
{
    char job[1024];

    snprintf(job, sizeof(job), "%s", job_json("job-1", "builder"));
    policy.audience = "dreamd-prod";
    classify("build", job, sign(SECRET, NOW + 600, ",\"dreamTrustLevel\":\"builder\""), 1);
    assert_refused("token: aud missing");
    classify("build", job,
             sign(SECRET, NOW + 600, ",\"dreamTrustLevel\":\"builder\",\"aud\":\"dreamd-dev\""), 1);
    assert_refused("token: aud does not name this worker");
    classify("build", job,
             sign(SECRET, NOW + 600,
                  ",\"dreamTrustLevel\":\"builder\",\"aud\":[\"billing\",\"dreamd-prod\"]"),
             1);
    assert_kind(DM_INTAKE_BUILD, NULL);
    policy.audience = NULL;
    classify("build", job,
             sign(SECRET, NOW + 600, ",\"dreamTrustLevel\":\"builder\",\"aud\":\"anything\""), 1);
    assert_kind(DM_INTAKE_BUILD, NULL);
}

Test(intake, the_token_lifetime_is_capped_when_configured)
{
    char job[1024], payload[1024], sha[DM_AUTH_SHA256_HEX_LEN + 1];
    struct dm_error err;

    snprintf(job, sizeof(job), "%s", job_json("job-1", "builder"));
    job_sha(sha, job);
    policy.max_ttl_s = 3600;
    /* exp - iat = 600 (sign() issues 600 s tokens). */
    classify("build", job, sign(SECRET, NOW + 60, ",\"dreamTrustLevel\":\"builder\""), 1);
    assert_kind(DM_INTAKE_BUILD, NULL);
    policy.max_ttl_s = 599;
    classify("build", job, sign(SECRET, NOW + 60, ",\"dreamTrustLevel\":\"builder\""), 1);
    assert_refused("token: lifetime (exp - iat) longer than 599 s");
    /* Without iat the lifetime is unknown. */
    snprintf(payload, sizeof(payload),
             "{\"iss\":\"storia\",\"sub\":\"user-1\",\"jti\":\"job-1\",\"exp\":%lld,"
             "\"dreamTrustLevel\":\"builder\",\"dreamJobSha256\":\"%s\"}",
             NOW + 60, sha);
    free(token);
    token = NULL;
    cr_assert_eq(dm_auth_sign_hs256(&token, payload, SECRET, &err), 0);
    classify("build", job, token, 1);
    assert_refused("token: iat required");
    policy.max_ttl_s = 0;
    classify("build", job, token, 1);
    assert_kind(DM_INTAKE_BUILD, NULL);
}

Test(intake, the_token_is_checked_at_the_time_given)
{
    char job[1024];
    const char *tok;

    /* A reclaimed job's time is when it first started: its token may have expired since. */
    snprintf(job, sizeof(job), "%s", job_json("job-1", "builder"));
    tok = sign(SECRET, NOW + 600, ",\"dreamTrustLevel\":\"builder\"");
    policy.now_s = NOW + 7200;
    classify("build", job, tok, 1);
    assert_refused("token: expired");
    policy.now_s = NOW;
    classify("build", job, tok, 1);
    assert_kind(DM_INTAKE_BUILD, NULL);
}

/* ---- resume ---- */

Test(intake, a_resume_entry_names_the_job)
{
    struct dm_entry_fields f = {0};
    struct dm_intake_policy p = {0};

    f.type = "resume";
    f.id = "job-7";
    cr_assert_eq(dm_intake_classify(&in, &f, &p), 0);
    assert_kind(DM_INTAKE_RESUME, NULL);
    cr_assert_str_eq(in.job_id, "job-7");

    f.id = NULL;
    cr_assert_eq(dm_intake_classify(&in, &f, &p), 0);
    assert_kind(DM_INTAKE_DEAD, "resume entry without a usable id");
    f.id = "a b";
    cr_assert_eq(dm_intake_classify(&in, &f, &p), 0);
    assert_kind(DM_INTAKE_DEAD, "resume entry without a usable id");
}

Test(intake, clear_releases_the_job_and_may_be_repeated)
{
    classify("build", job_json("job-1", "builder"), NULL, 0);
    assert_kind(DM_INTAKE_BUILD, NULL);
    dm_intake_clear(&in);
    cr_assert_null(in.job_json);
    cr_assert_null(in.req);
    dm_intake_clear(&in);
}

/* ---- prices (issue 16) ---- */

Test(intake, a_model_without_a_price_is_refused_only_with_a_dollar_budget)
{
    const char *no_dollars = "{\"jobId\":\"job-p\",\"specId\":\"s\",\"userId\":\"u\",\"repoOwner\":"
                             "\"acme\",\"repoName\":\"app\",\"specMarkdown\":\"# T\\n\",\"budget\":"
                             "{\"maxTokens\":1000},\"trustLevel\":\"builder\"}";
    const char *models[] = {"acme/unknown-model", NULL, ""};
    struct dm_price_table *t;
    char why[512] = "";

    cr_assert_eq(dm_price_table_new(&t), 0);
    classify("build", job_json("job-1", "builder"), NULL, 0);
    assert_kind(DM_INTAKE_BUILD, NULL);
    cr_assert_eq(dm_intake_check_prices(in.req, t, models, 3, why, sizeof(why)), DM_ERR_INVALID);
    cr_assert(strstr(why, "budget.maxDollars") && strstr(why, "acme/unknown-model") &&
                  strstr(why, "DREAM_PRICES_FILE") && strstr(why, "\"default\"") &&
                  strstr(why, "/models"),
              "names the model and the remedy: %s", why);
    dm_intake_refuse(&in, why);
    assert_kind(DM_INTAKE_INVALID, "no known price for model acme/unknown-model");
    cr_assert_null(in.req);
    cr_assert_null(in.job_json);
    dm_intake_clear(&in);

    /* A known model, or a "default" entry, passes. */
    classify("build", job_json("job-2", "builder"), NULL, 0);
    models[0] = "anthropic/claude-sonnet-4.5";
    cr_assert_eq(dm_intake_check_prices(in.req, t, models, 3, why, sizeof(why)), 0);
    models[0] = "acme/unknown-model";
    cr_assert_eq(dm_price_table_set_default(t, &(struct dm_price){1, 2}), 0);
    cr_assert_eq(dm_intake_check_prices(in.req, t, models, 3, why, sizeof(why)), 0);
    cr_assert_eq(dm_price_table_set_default(t, NULL), 0);
    dm_intake_clear(&in);

    /* Without budget.maxDollars any model runs (tokens count against maxTokens). */
    classify("build", no_dollars, NULL, 0);
    assert_kind(DM_INTAKE_BUILD, NULL);
    cr_assert_eq(in.req->budget_dollars, 0);
    cr_assert_null(strstr(in.job_json, "maxDollars"), "%s", in.job_json);
    cr_assert_eq(dm_intake_check_prices(in.req, t, models, 3, why, sizeof(why)), 0);
    dm_price_table_free(t);
}
