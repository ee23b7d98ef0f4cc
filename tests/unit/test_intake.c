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

#define NOW 1900000000LL
#define SECRET "intake-secret"

static struct dm_intake in;
static char *token;

static void teardown(void)
{
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

/* A token for job-1 / user-1, signed with secret; extra is appended to the claims (may be ""). */
static const char *sign(const char *secret, long long exp, const char *extra)
{
    char payload[512];
    struct dm_error err;
    snprintf(payload, sizeof(payload),
             "{\"iss\":\"storia\",\"sub\":\"user-1\",\"jti\":\"job-1\",\"exp\":%lld%s}", exp,
             extra);
    free(token);
    token = NULL;
    cr_assert_eq(dm_auth_sign_hs256(&token, payload, secret, &err), 0, "%s", err.msg);
    return token;
}

static const char *const secrets[] = {SECRET};

static void classify(const char *type, const char *job, const char *tok, int signed_jobs)
{
    struct dm_entry_fields f = {0};
    struct dm_intake_policy p = {0};

    f.type = type;
    f.job = job;
    f.job_len = job ? strlen(job) : 0;
    f.token = tok;
    f.token_len = tok ? strlen(tok) : 0;
    p.secrets = signed_jobs ? secrets : NULL;
    p.n_secrets = signed_jobs ? 1 : 0;
    p.now_s = NOW;
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

Test(intake, with_secrets_an_unsigned_job_is_refused)
{
    classify("build", job_json("job-1", "builder"), NULL, 1);
    assert_kind(DM_INTAKE_INVALID, "token: required (jobs must be signed)");
}

Test(intake, a_token_without_secrets_cannot_be_verified)
{
    classify("build", job_json("job-1", "builder"), sign(SECRET, NOW + 600, ""), 0);
    assert_kind(DM_INTAKE_INVALID, "token: cannot be verified (no signing secrets configured)");
}

Test(intake, a_valid_token_builds_and_its_trust_level_wins)
{
    classify("build", job_json("job-1", "builder"),
             sign(SECRET, NOW + 600, ",\"dreamTrustLevel\":\"planner\""), 1);
    assert_kind(DM_INTAKE_BUILD, NULL);
    cr_assert_eq(in.req->trust, DM_TRUST_PLANNER);
    cr_assert_not_null(strstr(in.job_json, "\"trustLevel\":\"planner\""), "%s", in.job_json);
}

Test(intake, a_token_may_carry_the_only_trust_level)
{
    classify("build", job_json("job-1", NULL),
             sign(SECRET, NOW + 600, ",\"dreamTrustLevel\":\"shipper\""), 1);
    assert_kind(DM_INTAKE_BUILD, NULL);
    cr_assert_eq(in.req->trust, DM_TRUST_SHIPPER);
}

Test(intake, a_signed_job_still_needs_a_trust_level_somewhere)
{
    classify("build", job_json("job-1", NULL), sign(SECRET, NOW + 600, ""), 1);
    assert_kind(DM_INTAKE_INVALID, "trustLevel: required (in the job or its token)");
}

Test(intake, a_token_that_makes_the_job_an_observer_is_refused)
{
    classify("build", job_json("job-1", "builder"),
             sign(SECRET, NOW + 600, ",\"dreamTrustLevel\":\"observer\""), 1);
    assert_kind(DM_INTAKE_INVALID, "trustLevel: observer may not build");
}

Test(intake, bad_tokens_are_invalid_with_the_rule)
{
    classify("build", job_json("job-1", "builder"), sign("another-secret", NOW + 600, ""), 1);
    assert_kind(DM_INTAKE_INVALID, "token: signature does not match");
    classify("build", job_json("job-1", "builder"), sign(SECRET, NOW - 3600, ""), 1);
    assert_kind(DM_INTAKE_INVALID, "token: expired");
    /* Signed for job-1, presented with job-9. */
    classify("build", job_json("job-9", "builder"), sign(SECRET, NOW + 600, ""), 1);
    assert_kind(DM_INTAKE_INVALID, "token: jti does not match jobId");
    cr_assert_str_eq(in.job_id, "job-9");
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
