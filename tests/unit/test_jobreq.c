/* Unit tests for jobreq: every field rule, defaults, round trips and the jobId peek. Each table
 * row takes a valid job, changes one field and checks the exact error. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "dream/domain/jobreq.h"

static const char *VALID =
    "{\"jobId\":\"job-1\",\"specId\":\"spec-1\",\"userId\":\"user-1\","
    "\"repoOwner\":\"acme\",\"repoName\":\"todo-app\",\"specMarkdown\":\"# Todo API\\n\\n- list\","
    "\"budget\":{\"maxTokens\":100000,\"maxDollars\":2.5},\"trustLevel\":\"builder\"}";

/* VALID with field (a top-level key, or "budget.<key>") set to raw JSON, or removed when raw is
 * NULL. Returns a malloc'd string. */
static char *with(const char *field, const char *raw)
{
    cJSON *root = cJSON_Parse(VALID);
    cJSON *obj = root;
    const char *key = field;
    char *s;

    if (strncmp(field, "budget.", 7) == 0) {
        obj = cJSON_GetObjectItem(root, "budget");
        key = field + 7;
    }
    cJSON_DeleteItemFromObjectCaseSensitive(obj, key);
    if (raw) {
        /* Add raw text so values cJSON would normalise (NaN, 1e999, -0) stay as written. */
        cJSON_AddRawToObject(obj, key, raw);
    }
    s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return s;
}

struct row {
    const char *field;
    const char *raw; /* NULL: remove the field */
    int rc;
    const char *msg; /* exact message, or NULL when rc == 0 */
};

static void check_rows(const struct row *rows, size_t n, const struct dm_jobreq_opts *opts)
{
    for (size_t i = 0; i < n; i++) {
        char *json = with(rows[i].field, rows[i].raw);
        struct dm_jobreq *job = (struct dm_jobreq *)0x1;
        struct dm_error err;
        int rc;

        dm_error_clear(&err);
        rc = dm_jobreq_parse(&job, json, strlen(json), opts, &err);
        cr_expect_eq(rc, rows[i].rc, "%s=%s: rc %d (%s), expected %d", rows[i].field,
                     rows[i].raw ? rows[i].raw : "<removed>", rc, err.msg, rows[i].rc);
        if (rows[i].rc == 0) {
            cr_expect_not_null(job, "%s", rows[i].field);
        } else {
            cr_expect_null(job, "%s: out not cleared on error", rows[i].field);
            cr_expect_str_eq(err.msg, rows[i].msg, "%s=%s", rows[i].field,
                             rows[i].raw ? rows[i].raw : "<removed>");
        }
        dm_jobreq_free(rc == 0 ? job : NULL);
        free(json);
    }
}

#define INV DM_ERR_INVALID
#define ID_RULE "must be 1-128 characters of [A-Za-z0-9._-] starting with a letter or digit"
#define ID2_RULE "must be 1-128 characters of [A-Za-z0-9._:@|+-]"

Test(jobreq, valid_job_with_defaults)
{
    struct dm_jobreq *job = NULL;
    struct dm_error err;

    cr_assert_eq(dm_jobreq_parse(&job, VALID, strlen(VALID), NULL, &err), 0, "%s", err.msg);
    cr_assert_str_eq(job->job_id, "job-1");
    cr_assert_str_eq(job->spec_id, "spec-1");
    cr_assert_str_eq(job->user_id, "user-1");
    cr_assert_str_eq(job->repo_owner, "acme");
    cr_assert_str_eq(job->repo_name, "todo-app");
    cr_assert_str_eq(job->spec_markdown, "# Todo API\n\n- list");
    cr_assert_eq(job->spec_len, strlen("# Todo API\n\n- list"));
    cr_assert_eq(job->budget_tokens, 100000);
    cr_assert_float_eq(job->budget_dollars, 2.5, 1e-12);
    cr_assert(job->trust_set);
    cr_assert_eq(job->trust, DM_TRUST_BUILDER);
    /* Defaults (DESIGN.md "Job defaults"). */
    cr_assert_eq(job->priority, DM_PRIORITY_MEDIUM);
    cr_assert_eq(job->repo_type, DM_REPO_TYPE_CUSTOM);
    cr_assert_str_eq(job->base_branch, "main");
    cr_assert_str_eq(job->branch_prefix, "dream/");
    cr_assert_null(job->callback_url);
    cr_assert_null(job->estimated_effort);
    dm_jobreq_free(job);
}

Test(jobreq, required_fields)
{
    const struct row rows[] = {
        {"jobId", NULL, INV, "jobId: required"},
        {"jobId", "null", INV, "jobId: required"},
        {"specId", NULL, INV, "specId: required"},
        {"userId", NULL, INV, "userId: required"},
        {"repoOwner", NULL, INV, "repoOwner: required"},
        {"repoName", NULL, INV, "repoName: required"},
        {"specMarkdown", NULL, INV, "specMarkdown: required"},
        {"budget", NULL, INV, "budget: required"},
        {"budget.maxTokens", NULL, INV, "budget.maxTokens: required"},
        {"trustLevel", NULL, INV,
         "trustLevel: required (or a signed token carrying "
         "dreamTrustLevel)"},
        /* Optional ones really are optional. */
        {"callbackUrl", NULL, 0, NULL},
        {"estimatedEffort", NULL, 0, NULL},
        {"priority", "null", 0, NULL},
    };
    check_rows(rows, sizeof(rows) / sizeof(rows[0]), NULL);
}

Test(jobreq, wrong_types)
{
    const struct row rows[] = {
        {"jobId", "42", INV, "jobId: must be a string"},
        {"specId", "true", INV, "specId: must be a string"},
        {"userId", "{}", INV, "userId: must be a string"},
        {"repoOwner", "[\"acme\"]", INV, "repoOwner: must be a string"},
        {"repoName", "1", INV, "repoName: must be a string"},
        {"specMarkdown", "[]", INV, "specMarkdown: must be a string"},
        {"budget", "5", INV, "budget: must be an object"},
        {"budget", "[]", INV, "budget: must be an object"},
        {"callbackUrl", "1", INV, "callbackUrl: must be a string"},
        {"targetRepoType", "3", INV, "targetRepoType: must be a string"},
        {"priority", "1", INV, "priority: must be a string"},
        {"baseBranch", "false", INV, "baseBranch: must be a string"},
        {"branchPrefix", "{}", INV, "branchPrefix: must be a string"},
        {"estimatedEffort", "3", INV, "estimatedEffort: must be a string"},
        {"trustLevel", "2", INV, "trustLevel: must be a string"},
    };
    check_rows(rows, sizeof(rows) / sizeof(rows[0]), NULL);
}

Test(jobreq, budget_rules)
{
    const struct row rows[] = {
        {"budget.maxTokens", "1", 0, NULL},
        {"budget.maxTokens", "1000000000", 0, NULL},
        {"budget.maxTokens", "1e3", 0, NULL},
        {"budget.maxTokens", "0", INV, "budget.maxTokens: must be an integer > 0"},
        {"budget.maxTokens", "-5", INV, "budget.maxTokens: must be an integer > 0"},
        {"budget.maxTokens", "1.5", INV, "budget.maxTokens: must be an integer > 0"},
        {"budget.maxTokens", "\"1000\"", INV, "budget.maxTokens: must be an integer > 0"},
        {"budget.maxTokens", "true", INV, "budget.maxTokens: must be an integer > 0"},
        {"budget.maxTokens", "1e999", INV, "budget.maxTokens: must be an integer > 0"},
        {"budget.maxTokens", "-1e999", INV, "budget.maxTokens: must be an integer > 0"},
        {"budget.maxTokens", "1000000001", INV, "budget.maxTokens: must be at most 1000000000"},
        {"budget.maxTokens", "1e300", INV, "budget.maxTokens: must be at most 1000000000"},
        {"budget.maxDollars", NULL, 0, NULL}, /* optional: no dollar limit */
        {"budget.maxDollars", "null", 0, NULL},
        {"budget.maxDollars", "0.01", 0, NULL},
        {"budget.maxDollars", "3", 0, NULL},
        {"budget.maxDollars", "0", INV, "budget.maxDollars: must be a finite number > 0"},
        {"budget.maxDollars", "-0", INV, "budget.maxDollars: must be a finite number > 0"},
        {"budget.maxDollars", "-1.5", INV, "budget.maxDollars: must be a finite number > 0"},
        {"budget.maxDollars", "1e999", INV, "budget.maxDollars: must be a finite number > 0"},
        {"budget.maxDollars", "\"NaN\"", INV, "budget.maxDollars: must be a finite number > 0"},
        {"budget.maxDollars", "\"Infinity\"", INV,
         "budget.maxDollars: must be a finite number > 0"},
        {"budget.maxDollars", "\"2.5\"", INV, "budget.maxDollars: must be a finite number > 0"},
        {"budget.maxDollars", "1000001", INV, "budget.maxDollars: must be at most 1000000"},
        /* Bare NaN / Infinity literals are not JSON at all. */
        {"budget.maxDollars", "NaN", INV, "job: not valid JSON"},
        {"budget.maxDollars", "Infinity", INV, "job: not valid JSON"},
        {"budget.maxTokens", "-Infinity", INV, "job: not valid JSON"},
    };
    check_rows(rows, sizeof(rows) / sizeof(rows[0]), NULL);
}

Test(jobreq, id_rules)
{
    char long_id[200];
    char ok_id[200];
    char long_row[210];
    char ok_row[210];

    memset(long_id, 'a', 129);
    long_id[129] = '\0';
    memset(ok_id, 'a', 128);
    ok_id[128] = '\0';
    snprintf(long_row, sizeof(long_row), "\"%s\"", long_id);
    snprintf(ok_row, sizeof(ok_row), "\"%s\"", ok_id);
    const struct row rows[] = {
        {"jobId", "\"9f0c2b1e-7a4d-4c1e-9a53-0e1f2d3c4b5a\"", 0, NULL},
        {"jobId", "\"job_1.v2\"", 0, NULL},
        {"jobId", ok_row, 0, NULL},
        {"jobId", long_row, INV, "jobId: must be at most 128 bytes"},
        {"jobId", "\"\"", INV, "jobId: " ID_RULE},
        {"jobId", "\"a:files\"", INV, "jobId: " ID_RULE},
        {"jobId", "\"a b\"", INV, "jobId: " ID_RULE},
        {"jobId", "\"a/b\"", INV, "jobId: " ID_RULE},
        {"jobId", "\"-x\"", INV, "jobId: " ID_RULE},
        {"jobId", "\".x\"", INV, "jobId: " ID_RULE},
        {"jobId", "\"..\"", INV, "jobId: " ID_RULE},
        {"jobId", "\"j\\u00e9\"", INV, "jobId: " ID_RULE},
        {"jobId", "\"a*\"", INV, "jobId: " ID_RULE},
        {"specId", "\"spec:42\"", 0, NULL},
        {"userId", "\"auth0|5f1c@example.com\"", 0, NULL},
        {"userId", "\"\"", INV, "userId: " ID2_RULE},
        {"userId", "\"a b\"", INV, "userId: " ID2_RULE},
        {"specId", "\"a\\nb\"", INV, "specId: " ID2_RULE},
        {"specId", long_row, INV, "specId: must be at most 128 bytes"},
    };
    check_rows(rows, sizeof(rows) / sizeof(rows[0]), NULL);
}

Test(jobreq, repo_rules)
{
    char long_name[120];
    char ok_name[120];
    char long_row[130];
    char ok_row[130];

    memset(long_name, 'r', 101);
    long_name[101] = '\0';
    memset(ok_name, 'r', 100);
    ok_name[100] = '\0';
    snprintf(long_row, sizeof(long_row), "\"%s\"", long_name);
    snprintf(ok_row, sizeof(ok_row), "\"%s\"", ok_name);
    const struct row rows[] = {
        {"repoOwner", "\"Acme-Corp_2.io\"", 0, NULL},
        {"repoName", "\".github\"", 0, NULL},
        {"repoName", "\"...\"", 0, NULL},
        {"repoName", ok_row, 0, NULL},
        {"repoName", long_row, INV, "repoName: must be at most 100 characters"},
        {"repoOwner", "\"\"", INV, "repoOwner: must match ^[a-zA-Z0-9._-]+$"},
        {"repoOwner", "\"ac me\"", INV, "repoOwner: must match ^[a-zA-Z0-9._-]+$"},
        {"repoOwner", "\"acme/evil\"", INV, "repoOwner: must match ^[a-zA-Z0-9._-]+$"},
        {"repoName", "\"a\\u0000b\"", INV, "job: must not contain NUL characters (\\u0000)"},
        {"repoName", "\"caf\\u00e9\"", INV, "repoName: must match ^[a-zA-Z0-9._-]+$"},
        {"repoName", "\".\"", INV, "repoName: must not be \".\" or \"..\""},
        {"repoName", "\"..\"", INV, "repoName: must not be \".\" or \"..\""},
        {"repoOwner", "\"..\"", INV, "repoOwner: must not be \".\" or \"..\""},
    };
    check_rows(rows, sizeof(rows) / sizeof(rows[0]), NULL);
}

Test(jobreq, spec_rules)
{
    const struct row rows[] = {
        {"specMarkdown", "\"\"", INV, "specMarkdown: must not be blank"},
        {"specMarkdown", "\"  \\n\\t\\r\\n \"", INV, "specMarkdown: must not be blank"},
        {"specMarkdown", "\"# \\u65e5\\u672c\\u8a9e \\ud83d\\ude80\"", 0, NULL},
        {"specMarkdown", "\"x\\\\u0000\"", 0, NULL}, /* an escaped backslash, then text */
    };
    check_rows(rows, sizeof(rows) / sizeof(rows[0]), NULL);
}

/* Builds VALID with specMarkdown of n bytes of 'a'. */
static char *with_spec_of(size_t n)
{
    char *raw = malloc(n + 3);
    char *json;
    raw[0] = '"';
    memset(raw + 1, 'a', n);
    raw[n + 1] = '"';
    raw[n + 2] = '\0';
    json = with("specMarkdown", raw);
    free(raw);
    return json;
}

Test(jobreq, spec_size_limits)
{
    struct dm_jobreq *job = NULL;
    struct dm_error err;
    char *json = with_spec_of(DM_JOBREQ_SPEC_MAX);

    cr_assert_eq(dm_jobreq_parse(&job, json, strlen(json), NULL, &err), 0, "%s", err.msg);
    cr_assert_eq(job->spec_len, DM_JOBREQ_SPEC_MAX);
    dm_jobreq_free(job);
    free(json);

    json = with_spec_of(DM_JOBREQ_SPEC_MAX + 1);
    cr_assert_eq(dm_jobreq_parse(&job, json, strlen(json), NULL, &err), DM_ERR_INVALID);
    cr_assert_str_eq(err.msg, "specMarkdown: must be at most 262144 bytes");
    cr_assert_null(job);
    free(json);

    /* 10 MiB: refused before any parsing, still answerable (the jobId is peekable). */
    json = with_spec_of(10u * 1024 * 1024);
    cr_assert_eq(dm_jobreq_parse(&job, json, strlen(json), NULL, &err), DM_ERR_LIMIT);
    cr_assert_str_eq(err.msg, "job: must be at most 4194304 bytes");
    {
        char id[DM_JOBREQ_ID_MAX + 1];
        cr_assert_eq(dm_jobreq_peek_id(id, sizeof(id), json, strlen(json)), 0);
        cr_assert_str_eq(id, "job-1");
    }
    free(json);
}

Test(jobreq, utf8_rules)
{
    struct dm_jobreq *job = NULL;
    struct dm_error err;
    /* Raw invalid UTF-8 bytes inside a string (cJSON passes them through). */
    const char *bad[] = {
        "\xff",         /* never valid */
        "\xc0\xaf",     /* overlong '/' */
        "\xed\xa0\x80", /* UTF-16 surrogate */
        "\xe2\x82",     /* truncated */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char raw[32];
        char *json;
        snprintf(raw, sizeof(raw), "\"# T %s\"", bad[i]);
        json = with("specMarkdown", raw);
        cr_expect_eq(dm_jobreq_parse(&job, json, strlen(json), NULL, &err), DM_ERR_INVALID,
                     "case %zu", i);
        cr_expect_str_eq(err.msg, "specMarkdown: must be valid UTF-8", "case %zu", i);
        free(json);
    }
    /* Valid multi-byte text, raw and escaped, survives byte for byte. */
    {
        char *json = with("specMarkdown", "\"# Caf\xc3\xa9 \xe6\x97\xa5 \xf0\x9f\x9a\x80\"");
        cr_assert_eq(dm_jobreq_parse(&job, json, strlen(json), NULL, &err), 0, "%s", err.msg);
        cr_assert_str_eq(job->spec_markdown, "# Caf\xc3\xa9 \xe6\x97\xa5 \xf0\x9f\x9a\x80");
        dm_jobreq_free(job);
        free(json);
    }
}

Test(jobreq, callback_url_rules)
{
    static const char *const hosts[] = {"localhost", "127.0.0.1", "::1"};
    struct dm_jobreq_opts opts = DM_JOBREQ_OPTS_INIT;
    opts.http_hosts = hosts;
    opts.n_http_hosts = 3;
    const struct row rows[] = {
        {"callbackUrl", "\"https://hooks.example.com/dream?x=1\"", 0, NULL},
        {"callbackUrl", "\"HTTPS://hooks.example.com:8443/cb\"", 0, NULL},
        {"callbackUrl", "\"https://[2001:db8::1]/cb\"", 0, NULL},
        {"callbackUrl", "\"http://localhost:8080/cb\"", 0, NULL},
        {"callbackUrl", "\"http://LOCALHOST/cb\"", 0, NULL},
        {"callbackUrl", "\"http://127.0.0.1:9/\"", 0, NULL},
        {"callbackUrl", "\"http://[::1]:9/\"", 0, NULL},
        {"callbackUrl", "\"http://example.com/cb\"", INV,
         "callbackUrl: must be an https URL (plain http only for allow-listed hosts)"},
        {"callbackUrl", "\"http://localhost.evil.com/cb\"", INV,
         "callbackUrl: must be an https URL (plain http only for allow-listed hosts)"},
        {"callbackUrl", "\"ftp://example.com/\"", INV, "callbackUrl: must be an https URL"},
        {"callbackUrl", "\"javascript:alert(1)\"", INV, "callbackUrl: must be an https URL"},
        {"callbackUrl", "\"//example.com/cb\"", INV, "callbackUrl: must be an https URL"},
        {"callbackUrl", "\"\"", INV, "callbackUrl: must be an https URL"},
        {"callbackUrl", "\"https://user:pw@example.com/\"", INV,
         "callbackUrl: must not contain credentials"},
        {"callbackUrl", "\"https://localhost@evil.com/\"", INV,
         "callbackUrl: must not contain credentials"},
        {"callbackUrl", "\"https:///path\"", INV, "callbackUrl: must have a valid host"},
        {"callbackUrl", "\"https://exa_mple.com/\"", INV, "callbackUrl: must have a valid host"},
        {"callbackUrl", "\"https://example.com:0/\"", INV, "callbackUrl: must have a valid port"},
        {"callbackUrl", "\"https://example.com:65536/\"", INV,
         "callbackUrl: must have a valid port"},
        {"callbackUrl", "\"https://example.com:/\"", INV, "callbackUrl: must have a valid port"},
        {"callbackUrl", "\"https://example.com/a b\"", INV,
         "callbackUrl: must not contain spaces, control, non-ASCII or '\\' characters"},
        {"callbackUrl", "\"https://example.com\\\\@evil/\"", INV,
         "callbackUrl: must not contain spaces, control, non-ASCII or '\\' characters"},
    };
    check_rows(rows, sizeof(rows) / sizeof(rows[0]), &opts);

    /* Without an allow-list, even localhost must use https. */
    const struct row strict[] = {
        {"callbackUrl", "\"http://localhost:8080/cb\"", INV,
         "callbackUrl: must be an https URL (plain http only for allow-listed hosts)"},
    };
    check_rows(strict, 1, NULL);

    /* The operator's own receivers (DREAM_CALLBACK_HOSTS) may be internal, over https only. */
    static const char *const internal[] = {"hooks.corp.internal", "10.1.2.3"};
    struct dm_jobreq_opts own = DM_JOBREQ_OPTS_INIT;
    own.internal_hosts = internal;
    own.n_internal_hosts = 2;
    const struct row owned[] = {
        {"callbackUrl", "\"https://hooks.corp.internal/cb\"", 0, NULL},
        {"callbackUrl", "\"https://10.1.2.3:8443/cb\"", 0, NULL},
        {"callbackUrl", "\"https://10.1.2.4/cb\"", INV,
         "callbackUrl: must not point to a private address"},
        {"callbackUrl", "\"http://10.1.2.3/cb\"", INV,
         "callbackUrl: must be an https URL (plain http only for allow-listed hosts)"},
    };
    check_rows(owned, sizeof(owned) / sizeof(owned[0]), &own);
    const struct row not_owned[] = {
        {"callbackUrl", "\"https://hooks.corp.internal/cb\"", INV,
         "callbackUrl: must not name a cloud metadata or internal host"},
    };
    check_rows(not_owned, 1, NULL);
}

Test(jobreq, enum_rules)
{
    const struct row rows[] = {
        {"targetRepoType", "\"storia-digital\"", 0, NULL},
        {"targetRepoType", "\"petranto-com\"", 0, NULL},
        {"targetRepoType", "\"byok-cloud\"", 0, NULL},
        {"targetRepoType", "\"custom\"", 0, NULL},
        {"targetRepoType", "\"Custom\"", INV,
         "targetRepoType: must be one of storia-digital, petranto-com, byok-cloud, custom"},
        {"targetRepoType", "\"\"", INV,
         "targetRepoType: must be one of storia-digital, petranto-com, byok-cloud, custom"},
        {"priority", "\"critical\"", 0, NULL},
        {"priority", "\"low\"", 0, NULL},
        {"priority", "\"urgent\"", INV, "priority: must be one of critical, high, medium, low"},
        {"trustLevel", "\"observer\"", 0, NULL},
        {"trustLevel", "\"shipper\"", 0, NULL},
        {"trustLevel", "\"admin\"", INV,
         "trustLevel: must be one of observer, planner, builder, shipper"},
        {"trustLevel", "\"BUILDER\"", INV,
         "trustLevel: must be one of observer, planner, builder, shipper"},
    };
    check_rows(rows, sizeof(rows) / sizeof(rows[0]), NULL);
}

Test(jobreq, trust_may_come_from_token)
{
    struct dm_jobreq_opts opts = DM_JOBREQ_OPTS_INIT;
    struct dm_jobreq *job = NULL;
    struct dm_error err;
    char *json = with("trustLevel", NULL);

    opts.trust_optional = 1;
    cr_assert_eq(dm_jobreq_parse(&job, json, strlen(json), &opts, &err), 0, "%s", err.msg);
    cr_assert(!job->trust_set);
    dm_jobreq_free(job);
    free(json);
    /* A present but invalid level is still an error. */
    const struct row rows[] = {
        {"trustLevel", "\"root\"", INV,
         "trustLevel: must be one of observer, planner, builder, shipper"},
    };
    check_rows(rows, 1, &opts);
}

Test(jobreq, signed_mode_ignores_the_body_trust_level)
{
    struct dm_jobreq_opts opts = DM_JOBREQ_OPTS_INIT;
    struct dm_jobreq *job = NULL;
    struct dm_error err;
    const char *raws[] = {"\"shipper\"", "\"root\"", "42", NULL};

    opts.trust_optional = 1;
    opts.ignore_trust = 1;
    for (size_t i = 0; i < sizeof(raws) / sizeof(raws[0]); i++) {
        char *json = with("trustLevel", raws[i]);
        cr_assert_eq(dm_jobreq_parse(&job, json, strlen(json), &opts, &err), 0, "%s", err.msg);
        cr_assert(!job->trust_set, "the body's trustLevel %s was read", raws[i]);
        dm_jobreq_free(job);
        free(json);
    }
}

/* ---- the binding of a signed token (jobreq_bind.c) ---- */

static struct dm_jobreq *parse_ok(const char *json)
{
    struct dm_jobreq *job = NULL;
    struct dm_error err;
    cr_assert_eq(dm_jobreq_parse(&job, json, strlen(json), NULL, &err), 0, "%s", err.msg);
    return job;
}

static void sha_of(char *out, const char *json)
{
    struct dm_jobreq *job = parse_ok(json);
    cr_assert_eq(dm_jobreq_binding_sha256(out, DM_AUTH_SHA256_HEX_LEN + 1, job), 0);
    dm_jobreq_free(job);
}

Test(jobreq_bind, the_text_is_the_documented_one)
{
    static const char want[] = "dream-job-v1\n"
                               "jobId 5\njob-1\n"
                               "userId 6\nuser-1\n"
                               "repoOwner 4\nacme\n"
                               "repoName 3\napp\n"
                               "baseBranch 4\nmain\n"
                               "branchPrefix 6\ndream/\n"
                               "specMarkdown 11\n# Todo API\n\n"
                               "callbackUrl 0\n\n";
    struct dm_jobreq *job =
        parse_ok("{\"jobId\":\"job-1\",\"specId\":\"s\",\"userId\":\"user-1\",\"repoOwner\":"
                 "\"acme\",\"repoName\":\"app\",\"specMarkdown\":\"# Todo API\\n\",\"budget\":"
                 "{\"maxTokens\":1,\"maxDollars\":1},\"trustLevel\":\"builder\"}");
    size_t len = 0;
    char *text = dm_jobreq_binding_text(job, &len);
    char sha[DM_AUTH_SHA256_HEX_LEN + 1];

    cr_assert_eq(len, sizeof(want) - 1);
    cr_assert(memcmp(text, want, len) == 0, "%s", text);
    /* Computed independently (Python hashlib over the text above). */
    cr_assert_eq(dm_jobreq_binding_sha256(sha, sizeof(sha), job), 0);
    cr_assert_str_eq(sha, "7a1cfc31ddc2ad1a6daa6be570e5e9199b127149cb6120c1f21141e5c95b9376");
    cr_assert_eq(dm_jobreq_binding_sha256(sha, DM_AUTH_SHA256_HEX_LEN, job), DM_ERR_LIMIT);
    free(text);
    dm_jobreq_free(job);
}

Test(jobreq_bind, the_pull_request_options_follow_the_eight_fields_when_present)
{
    static const char want[] = "dream-job-v1\n"
                               "jobId 5\njob-1\n"
                               "userId 6\nuser-1\n"
                               "repoOwner 4\nacme\n"
                               "repoName 3\napp\n"
                               "baseBranch 4\nmain\n"
                               "branchPrefix 6\ndream/\n"
                               "specMarkdown 2\n#\n\n"
                               "callbackUrl 0\n\n"
                               "draft 5\nfalse\n"
                               "labels 8\na\nb-two\n\n"
                               "teamReviewers 0\n\n"
                               "specUrl 17\nhttps://specs.x/1\n";
    struct dm_jobreq *job =
        parse_ok("{\"jobId\":\"job-1\",\"specId\":\"s\",\"userId\":\"user-1\",\"repoOwner\":"
                 "\"acme\",\"repoName\":\"app\",\"specMarkdown\":\"#\\n\",\"budget\":"
                 "{\"maxTokens\":1},\"trustLevel\":\"builder\",\"draft\":false,\"labels\":[\"a\","
                 "\"b-two\"],\"teamReviewers\":[],\"specUrl\":\"https://specs.x/1\"}");
    size_t len = 0;
    char *text = dm_jobreq_binding_text(job, &len);

    cr_assert_not_null(text);
    cr_assert_eq(len, sizeof(want) - 1, "%s", text);
    cr_assert(memcmp(text, want, len) == 0, "%s", text);
    free(text);
    dm_jobreq_free(job);
}

Test(jobreq_bind, every_bound_field_is_in_the_digest_byte_for_byte)
{
    char sha[DM_AUTH_SHA256_HEX_LEN + 1];

    /* UTF-8 counted in bytes, escapes decoded, every optional field present (Python hashlib). */
    sha_of(sha, "{\"jobId\":\"job-1\",\"specId\":\"s\",\"userId\":\"user-1\",\"repoOwner\":"
                "\"acme\",\"repoName\":\"app\",\"specMarkdown\":\"# Caf\\u00e9\\n\\nx\\n\","
                "\"callbackUrl\":\"https://hooks.example/x\",\"baseBranch\":\"develop\","
                "\"branchPrefix\":\"ai/\",\"budget\":{\"maxTokens\":1,\"maxDollars\":1},"
                "\"trustLevel\":\"builder\"}");
    cr_assert_str_eq(sha, "3c8917925104d4add800e966747cbbf745dd708224775252f5601788329d187e");
}

Test(jobreq_bind, bound_fields_change_it_and_others_do_not)
{
    static const struct {
        const char *field, *raw;
        int changes;
    } rows[] = {
        {"jobId", "\"job-2\"", 1},
        {"userId", "\"user-2\"", 1},
        {"repoOwner", "\"acme2\"", 1},
        {"repoName", "\"todo-app2\"", 1},
        {"specMarkdown", "\"# Todo API\\n\\n- list \"", 1},
        {"baseBranch", "\"develop\"", 1},
        {"branchPrefix", "\"ai/\"", 1},
        {"callbackUrl", "\"https://hooks.example/x\"", 1},
        /* The pull request's options, bound when present (even [] or false). */
        {"draft", "false", 1},
        {"draft", "true", 1},
        {"labels", "[]", 1},
        {"labels", "[\"ship-it\"]", 1},
        {"reviewers", "[\"octocat\"]", 1},
        {"teamReviewers", "[\"core\"]", 1},
        {"specUrl", "\"https://specs.example/1\"", 1},
        /* Defaults written out bind like defaults left out. */
        {"baseBranch", "\"main\"", 0},
        {"branchPrefix", "\"dream/\"", 0},
        {"specId", "\"spec-2\"", 0},
        {"priority", "\"critical\"", 0},
        {"budget.maxTokens", "999999", 0},
        {"budget.maxDollars", "999", 0},
        {"trustLevel", "\"shipper\"", 0},
        {"estimatedEffort", "\"huge\"", 0},
    };
    char base[DM_AUTH_SHA256_HEX_LEN + 1];

    sha_of(base, VALID);
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        char sha[DM_AUTH_SHA256_HEX_LEN + 1];
        char *json = with(rows[i].field, rows[i].raw);
        sha_of(sha, json);
        cr_expect_eq(strcmp(sha, base) != 0, rows[i].changes, "%s = %s", rows[i].field,
                     rows[i].raw);
        free(json);
    }
}

Test(jobreq, branch_rules)
{
    const struct row rows[] = {
        {"baseBranch", "\"develop\"", 0, NULL},
        {"baseBranch", "\"release/2.0\"", 0, NULL},
        {"baseBranch", "\"\"", INV, "baseBranch: must be a valid git ref name (must not be empty)"},
        {"baseBranch", "\"a..b\"", INV,
         "baseBranch: must be a valid git ref name (must not contain \"..\")"},
        {"baseBranch", "\"a b\"", INV,
         "baseBranch: must be a valid git ref name (must not contain space, '~', '^', ':', '?', "
         "'*', '[' or '\\')"},
        {"baseBranch", "\"-main\"", INV,
         "baseBranch: must be a valid git ref name (must not start with '-')"},
        {"baseBranch", "\"main.lock\"", INV,
         "baseBranch: must be a valid git ref name (no component may end with \".lock\")"},
        {"branchPrefix", "\"feature/dream-\"", 0, NULL},
        {"branchPrefix", "\"ai-\"", 0, NULL},
        {"branchPrefix", "\"\"", INV, "branchPrefix: must not be empty"},
        {"branchPrefix", "\"dream//\"", INV,
         "branchPrefix: must make valid git ref names (must not contain an empty component "
         "(\"//\" or a leading/trailing '/'))"},
        {"branchPrefix", "\"/dream/\"", INV,
         "branchPrefix: must make valid git ref names (must not contain an empty component "
         "(\"//\" or a leading/trailing '/'))"},
        {"branchPrefix", "\"dream/.\"", INV,
         "branchPrefix: must make valid git ref names (no component may start with '.')"},
        {"branchPrefix", "\"x~\"", INV,
         "branchPrefix: must make valid git ref names (must not contain space, '~', '^', ':', "
         "'?', '*', '[' or '\\')"},
        {"branchPrefix", "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/\"",
         INV, "branchPrefix: must be at most 64 bytes"},
    };
    check_rows(rows, sizeof(rows) / sizeof(rows[0]), NULL);
}

Test(jobreq, effort_rules)
{
    char long_ascii[80];
    char ok_unicode[64 * 3 + 3];
    char long_row[90];

    memset(long_ascii, 'x', 65);
    long_ascii[65] = '\0';
    snprintf(long_row, sizeof(long_row), "\"%s\"", long_ascii);
    /* 64 three-byte characters: 192 bytes but 64 characters, accepted. */
    ok_unicode[0] = '"';
    for (int i = 0; i < 64; i++) {
        memcpy(ok_unicode + 1 + 3 * i, "\xe6\x97\xa5", 3);
    }
    memcpy(ok_unicode + 1 + 192, "\"", 2);
    const struct row rows[] = {
        {"estimatedEffort", "\"2-3 days\"", 0, NULL},
        {"estimatedEffort", ok_unicode, 0, NULL},
        {"estimatedEffort", long_row, INV, "estimatedEffort: must be at most 64 characters"},
        {"estimatedEffort", "\"a\\nb\"", INV,
         "estimatedEffort: must not contain control characters"},
    };
    check_rows(rows, sizeof(rows) / sizeof(rows[0]), NULL);
}

Test(jobreq, whole_document_rules)
{
    struct dm_jobreq *job = NULL;
    struct dm_error err;
    const struct {
        const char *json;
        size_t len; /* 0: strlen */
        const char *msg;
    } rows[] = {
        {"", 0, "job: not valid JSON"},
        {"not json", 0, "job: not valid JSON"},
        {"{\"jobId\":\"a\"", 0, "job: not valid JSON"},
        {"[1,2,3]", 0, "job: must be a JSON object"},
        {"\"job\"", 0, "job: must be a JSON object"},
        {"null", 0, "job: must be a JSON object"},
        {"{} trailing", 0, "job: not valid JSON"},
        {"{}\0{}", 5, "job: not valid JSON"},
        {"{}", 0, "jobId: required"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        size_t len = rows[i].len ? rows[i].len : strlen(rows[i].json);
        cr_expect_eq(dm_jobreq_parse(&job, rows[i].json, len, NULL, &err), DM_ERR_INVALID,
                     "row %zu", i);
        cr_expect_str_eq(err.msg, rows[i].msg, "row %zu", i);
        cr_expect_null(job);
    }
    /* Input need not be NUL-terminated: parse a prefix of a longer buffer. */
    {
        size_t n = strlen(VALID);
        char *buf = malloc(n + 5);
        memcpy(buf, VALID, n);
        memcpy(buf + n, "XXXXX", 5);
        cr_assert_eq(dm_jobreq_parse(&job, buf, n, NULL, &err), 0, "%s", err.msg);
        dm_jobreq_free(job);
        free(buf);
    }
}

Test(jobreq, round_trip)
{
    const char *full =
        "{\"jobId\":\"J.1\",\"specId\":\"s:1\",\"userId\":\"u@x\",\"targetRepoType\":"
        "\"byok-cloud\",\"repoOwner\":\"o\",\"repoName\":\"r\",\"baseBranch\":\"develop\","
        "\"branchPrefix\":\"ai/\",\"specMarkdown\":\"# T\\n\\u00e9 \\\"q\\\"\",\"priority\":"
        "\"high\",\"callbackUrl\":\"https://cb.example/x\",\"estimatedEffort\":\"1d\","
        "\"budget\":{\"maxTokens\":12345,\"maxDollars\":0.1},\"trustLevel\":\"planner\"}";
    struct dm_jobreq *a = NULL;
    struct dm_jobreq *b = NULL;
    struct dm_error err;
    char *json;
    char *json2;

    cr_assert_eq(dm_jobreq_parse(&a, full, strlen(full), NULL, &err), 0, "%s", err.msg);
    json = dm_jobreq_to_json(a);
    cr_assert_not_null(json);
    cr_assert_eq(dm_jobreq_parse(&b, json, strlen(json), NULL, &err), 0, "%s", err.msg);
    cr_assert_str_eq(b->job_id, "J.1");
    cr_assert_str_eq(b->spec_id, "s:1");
    cr_assert_str_eq(b->user_id, "u@x");
    cr_assert_eq(b->repo_type, DM_REPO_TYPE_BYOK_CLOUD);
    cr_assert_str_eq(b->base_branch, "develop");
    cr_assert_str_eq(b->branch_prefix, "ai/");
    cr_assert_str_eq(b->spec_markdown, "# T\n\xc3\xa9 \"q\"");
    cr_assert_eq(b->priority, DM_PRIORITY_HIGH);
    cr_assert_str_eq(b->callback_url, "https://cb.example/x");
    cr_assert_str_eq(b->estimated_effort, "1d");
    cr_assert_eq(b->budget_tokens, 12345);
    cr_assert(b->budget_dollars == 0.1);
    cr_assert(b->trust_set);
    cr_assert_eq(b->trust, DM_TRUST_PLANNER);
    /* And the serialisation is stable. */
    json2 = dm_jobreq_to_json(b);
    cr_assert_str_eq(json, json2);
    free(json);
    free(json2);
    dm_jobreq_free(a);
    dm_jobreq_free(b);

    /* Defaults are written out; a missing trust level stays missing. */
    {
        struct dm_jobreq_opts opts = DM_JOBREQ_OPTS_INIT;
        char *min = with("trustLevel", NULL);
        opts.trust_optional = 1;
        cr_assert_eq(dm_jobreq_parse(&a, min, strlen(min), &opts, &err), 0, "%s", err.msg);
        json = dm_jobreq_to_json(a);
        cr_assert(strstr(json, "\"priority\":\"medium\"") != NULL, "%s", json);
        cr_assert(strstr(json, "\"targetRepoType\":\"custom\"") != NULL, "%s", json);
        cr_assert(strstr(json, "\"baseBranch\":\"main\"") != NULL, "%s", json);
        cr_assert(strstr(json, "\"branchPrefix\":\"dream/\"") != NULL, "%s", json);
        cr_assert(strstr(json, "trustLevel") == NULL, "%s", json);
        free(json);
        free(min);
        dm_jobreq_free(a);
    }
}

Test(jobreq, peek_id)
{
    char id[DM_JOBREQ_ID_MAX + 1];
    char small[4];
    const struct {
        const char *json;
        int rc;
        const char *id;
    } rows[] = {
        {"{\"jobId\":\"abc-1\"}", 0, "abc-1"},
        {"  {\n\"x\": {\"jobId\":\"inner\"}, \"jobId\" : \"outer\"", 0, "outer"},
        {"{\"a\":[1,{\"b\":\"}\"},\"]\"],\"jobId\":\"j2\",\"budget\":NaN}", 0, "j2"},
        {"{\"s\":\"quote \\\" and \\\\\",\"jobId\":\"j3\"", 0, "j3"},
        {"{\"job\\u0049d\":\"j4\"}", 0, "j4"},
        {"{\"jobId\":\"j\\u0035\"}", 0, "j5"},
        {"{\"jobId\":\"first\",\"jobId\":\"second\"}", 0, "first"},
        {"{\"jobId\":\"truncated-after\",\"specMarkdown\":\"# never clos", 0, "truncated-after"},
        {"{\"n\":-1.5e3,\"t\":true,\"z\":null,\"jobId\":\"j6\"}", 0, "j6"},
        /* cJSON treats every control byte as whitespace; peek must agree (found by fuzzing). */
        {"\x10{\x01\"jobId\"\x1f:\"j7\"}", 0, "j7"},
        {"{\"jobId\":\"bad id\"}", DM_ERR_INVALID, ""},
        {"{\"jobId\":\"a:files\"}", DM_ERR_INVALID, ""},
        {"{\"jobId\":\"\"}", DM_ERR_INVALID, ""},
        {"{\"jobId\":42}", DM_ERR_INVALID, ""},
        {"{\"jobId\":\"unterminated", DM_ERR_INVALID, ""},
        {"{\"jobId\":\"caf\\u00e9\"}", DM_ERR_INVALID, ""},
        {"{\"other\":1}", DM_ERR_NOTFOUND, ""},
        {"{}", DM_ERR_NOTFOUND, ""},
        {"[{\"jobId\":\"x\"}]", DM_ERR_NOTFOUND, ""},
        {"not json", DM_ERR_NOTFOUND, ""},
        {"", DM_ERR_NOTFOUND, ""},
        {"{\"specMarkdown\":\"# cut before the id", DM_ERR_NOTFOUND, ""},
        {"{\"a\" 1, \"jobId\":\"x\"}", DM_ERR_NOTFOUND, ""},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        int rc = dm_jobreq_peek_id(id, sizeof(id), rows[i].json, strlen(rows[i].json));
        cr_expect_eq(rc, rows[i].rc, "row %zu: rc %d", i, rc);
        cr_expect_str_eq(rc == 0 ? id : "", rows[i].id, "row %zu", i);
    }
    /* A 129-byte id is not usable; 128 is. */
    {
        char json[300];
        char big[130];
        memset(big, 'a', 129);
        big[129] = '\0';
        snprintf(json, sizeof(json), "{\"jobId\":\"%s\"}", big);
        cr_assert_eq(dm_jobreq_peek_id(id, sizeof(id), json, strlen(json)), DM_ERR_INVALID);
        big[128] = '\0';
        snprintf(json, sizeof(json), "{\"jobId\":\"%s\"}", big);
        cr_assert_eq(dm_jobreq_peek_id(id, sizeof(id), json, strlen(json)), 0);
        cr_assert_str_eq(id, big);
    }
    cr_assert_eq(dm_jobreq_peek_id(small, sizeof(small), "{\"jobId\":\"abcd\"}", 16), DM_ERR_LIMIT);
    /* Length-bounded: the id past len is not seen. */
    cr_assert_eq(dm_jobreq_peek_id(id, sizeof(id), "{\"jobId\":\"abcdef\"}", 12), DM_ERR_INVALID);
}

Test(jobreq, enum_names)
{
    enum dm_priority p;
    enum dm_repo_type t;
    cr_assert_str_eq(dm_jobreq_priority_name(DM_PRIORITY_CRITICAL), "critical");
    cr_assert_str_eq(dm_jobreq_repo_type_name(DM_REPO_TYPE_PETRANTO_COM), "petranto-com");
    cr_assert_eq(dm_jobreq_priority_parse(&p, "low"), 0);
    cr_assert_eq(p, DM_PRIORITY_LOW);
    cr_assert_eq(dm_jobreq_repo_type_parse(&t, "storia-digital"), 0);
    cr_assert_eq(t, DM_REPO_TYPE_STORIA_DIGITAL);
    cr_assert_eq(dm_jobreq_repo_type_parse(&t, "other"), DM_ERR_INVALID);
    cr_assert_str_eq(dm_jobreq_priority_name((enum dm_priority)42), "unknown");
}

/* cJSON 1.7 cut a string at a broken escape: "j-5er\user" became the jobId "j-5er" while the
 * peek (rightly) refused it. Found by fuzz_jobreq; broken escapes are now refused outright. */
Test(jobreq, broken_escapes_are_refused_not_cut)
{
    static const char *const bad[] = {
        "{\"jobId\":\"j-5er\\user\"}",
        "{\"jobId\":\"j\\ud800x\"}",
        "{\"jobId\":\"j\\udc00\"}",
        "{\"jobId\":\"j\\q\"}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct dm_jobreq *job = NULL;
        struct dm_error err;
        cr_assert_eq(dm_jobreq_parse(&job, bad[i], strlen(bad[i]), NULL, &err), DM_ERR_INVALID,
                     "%s", bad[i]);
        cr_assert_null(job);
        cr_assert_not_null(strstr(err.msg, "not valid JSON"), "%s", err.msg);
    }
}

/* ---- building a job from a producer's draft (dreamctl submit) ---- */

static struct dm_jobreq_draft minimal_draft(void)
{
    struct dm_jobreq_draft d = {0};
    d.job_id = "job-7";
    d.spec_id = "spec-7";
    d.user_id = "ana";
    d.repo_owner = "acme";
    d.repo_name = "todo-app";
    d.spec_markdown = "# Todo\n\n- list todos\n";
    d.trust = "builder";
    return d;
}

Test(jobreq_build, minimal_draft_gets_the_defaults_and_parses_back)
{
    struct dm_jobreq_draft d = minimal_draft();
    struct dm_jobreq *job = NULL, *again = NULL;
    struct dm_error err = {0};
    char *json = NULL;

    cr_assert_eq(dm_jobreq_build(&json, &job, &d, NULL, &err), 0, "%s", err.msg);
    cr_assert_not_null(json);
    cr_assert_str_eq(job->job_id, "job-7");
    cr_assert_str_eq(job->base_branch, DM_JOBREQ_BASE_BRANCH_DEFAULT);
    cr_assert_str_eq(job->branch_prefix, DM_JOBREQ_BRANCH_PREFIX_DEFAULT);
    cr_assert_eq(job->budget_tokens, DM_JOBREQ_DRAFT_MAX_TOKENS);
    cr_assert_float_eq(job->budget_dollars, DM_JOBREQ_DRAFT_MAX_DOLLARS, 1e-9);
    /* The defaults are written out, so a reader of the stream sees them. */
    cr_assert_not_null(strstr(json, "\"baseBranch\":\"main\""), "%s", json);
    cr_assert_not_null(strstr(json, "\"branchPrefix\":\"dream/\""), "%s", json);
    /* What a worker parses is what was built. */
    cr_assert_eq(dm_jobreq_parse(&again, json, strlen(json), NULL, &err), 0, "%s", err.msg);
    cr_assert_str_eq(again->spec_markdown, d.spec_markdown);
    dm_jobreq_free(again);
    dm_jobreq_free(job);
    free(json);
}

Test(jobreq_build, invalid_draft_gives_the_worker_s_message_and_no_output)
{
    struct dm_jobreq_draft d = minimal_draft();
    struct dm_jobreq *job = (struct dm_jobreq *)1;
    struct dm_error err = {0};
    char *json = (char *)1;

    d.repo_name = "../etc";
    cr_assert_eq(dm_jobreq_build(&json, &job, &d, NULL, &err), DM_ERR_INVALID);
    cr_assert_null(json);
    cr_assert_null(job);
    cr_assert_str_eq(err.msg, "repoName: must match ^[a-zA-Z0-9._-]+$");
}

Test(jobreq_build, generated_ids_follow_the_rule)
{
    const unsigned char rnd[4] = {0xde, 0xad, 0xbe, 0xef};
    char id[64];

    cr_assert_eq(dm_jobreq_id_make(id, sizeof(id), 0, rnd), 0);
    cr_assert_str_eq(id, "job-19700101-000000-deadbeef");
    cr_assert(dm_jobreq_id_valid(id));
    cr_assert_eq(dm_jobreq_id_make(id, sizeof(id), 1733450000, rnd), 0);
    cr_assert_str_eq(id, "job-20241206-015320-deadbeef");
    cr_assert_eq(dm_jobreq_id_make(id, 8, 0, rnd), DM_ERR_LIMIT);
}

/* ---- pull request options ---- */

Test(jobreq, pull_request_options_and_their_rules)
{
    static const struct row rows[] = {
        {"draft", "true", 0, NULL},
        {"draft", "null", 0, NULL},
        {"draft", "\"yes\"", INV, "draft: must be true or false"},
        {"labels", "[]", 0, NULL},
        {"labels", "[\"dreamd\",\"needs review\",\"été\"]", 0, NULL},
        {"labels", "\"dreamd\"", INV, "labels: must be an array of strings"},
        {"labels", "[1]", INV,
         "labels: each must be a string of 1..50 characters without control characters"},
        {"labels", "[\"\"]", INV,
         "labels: each must be a string of 1..50 characters without control characters"},
        {"labels", "[\"a\\nb\"]", INV,
         "labels: each must be a string of 1..50 characters without control characters"},
        {"labels", "[\"123456789012345678901234567890123456789012345678901\"]", INV,
         "labels: each must be a string of 1..50 characters without control characters"},
        {"labels",
         "[\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\",\"9\",\"10\",\"11\",\"12\",\"13\","
         "\"14\",\"15\",\"16\",\"17\",\"18\",\"19\",\"20\",\"21\"]",
         INV, "labels: must have at most 20 entries"},
        {"reviewers", "[\"octocat\",\"a-b\"]", 0, NULL},
        {"reviewers", "[\"-bad\"]", INV,
         "reviewers: each must be a GitHub login (^[A-Za-z0-9][A-Za-z0-9-]{0,38}$)"},
        {"reviewers", "[\"a/b\"]", INV,
         "reviewers: each must be a GitHub login (^[A-Za-z0-9][A-Za-z0-9-]{0,38}$)"},
        {"teamReviewers", "[\"platform\",\"web_team\"]", 0, NULL},
        {"teamReviewers", "[\"acme/platform\"]", INV,
         "teamReviewers: each must be a team slug (^[A-Za-z0-9._-]{1,100}$)"},
        {"specUrl", "\"https://specs.example.com/todo-api#v2\"", 0, NULL},
        {"specUrl", "\"ftp://x\"", INV, "specUrl: must be an http:// or https:// URL"},
        {"specUrl", "\"https://\"", INV, "specUrl: must be an http:// or https:// URL"},
        {"specUrl", "\"https://x/a>b\"", INV,
         "specUrl: must not contain spaces, control characters, quotes, backslashes, backticks "
         "or angle brackets"},
        {"specUrl", "\"https://x/a b\"", INV,
         "specUrl: must not contain spaces, control characters, quotes, backslashes, backticks "
         "or angle brackets"},
    };
    check_rows(rows, sizeof(rows) / sizeof(rows[0]), NULL);
}

Test(jobreq, pull_request_options_absent_present_and_round_tripped)
{
    struct dm_jobreq *job, *again;
    struct dm_error err;
    char *json, *out;
    cJSON *root = cJSON_Parse(VALID);

    cr_assert_eq(dm_jobreq_parse(&job, VALID, strlen(VALID), NULL, &err), 0, "%s", err.msg);
    cr_assert_eq(job->draft, -1, "absent: the settings decide");
    cr_assert(!job->labels_set && !job->reviewers_set && !job->team_reviewers_set);
    cr_assert_null(job->spec_url);
    out = dm_jobreq_to_json(job);
    cr_assert_null(strstr(out, "draft"), "%s", out);
    cr_assert_null(strstr(out, "labels"), "%s", out);
    free(out);
    dm_jobreq_free(job);

    cJSON_AddFalseToObject(root, "draft");
    cJSON_AddItemToObject(root, "labels", cJSON_CreateArray());
    cJSON_AddItemToObject(root, "reviewers",
                          cJSON_CreateStringArray((const char *[]){"octocat", "octocat"}, 2));
    cJSON_AddItemToObject(root, "teamReviewers",
                          cJSON_CreateStringArray((const char *[]){"platform"}, 1));
    cJSON_AddStringToObject(root, "specUrl", "https://specs.example.com/1");
    json = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    cr_assert_eq(dm_jobreq_parse(&job, json, strlen(json), NULL, &err), 0, "%s", err.msg);
    cr_assert_eq(job->draft, 0, "false is not absent");
    cr_assert(job->labels_set, "[] is set: no labels, whatever the settings say");
    cr_assert_eq(job->n_labels, 0);
    cr_assert_eq(job->n_reviewers, 1, "duplicates dropped");
    cr_assert_str_eq(job->reviewers[0], "octocat");
    cr_assert_str_eq(job->team_reviewers[0], "platform");
    cr_assert_str_eq(job->spec_url, "https://specs.example.com/1");
    out = dm_jobreq_to_json(job);
    cr_assert_eq(dm_jobreq_parse(&again, out, strlen(out), NULL, &err), 0, "%s", err.msg);
    cr_assert_eq(again->draft, 0);
    cr_assert(again->labels_set);
    cr_assert_eq(again->n_reviewers, 1);
    cr_assert_eq(again->n_team_reviewers, 1);
    cr_assert_str_eq(again->spec_url, job->spec_url);
    dm_jobreq_free(again);
    dm_jobreq_free(job);
    free(out);
    free(json);
}
