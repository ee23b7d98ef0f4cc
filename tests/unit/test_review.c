/*
 * Unit tests for review: every verdict path (model proceed / pause / reject, each combined with
 * no, high and critical rule findings, and no model at all), a reviewer that answers garbage,
 * truncated JSON, a wrong enum, extra prose or fenced JSON, comments on unknown paths, the
 * reviewer prompt and its size cap, the revise round, and the PR body sections (exact text, and
 * no secret even when a finding was a secret). Findings come from the real scanner
 * (dm_safety_scan) over real file contents; secret-shaped values are assembled at run time.
 */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dream/core/buf.h"
#include "dream/domain/review.h"
#include "dream/domain/safety.h"
#include "dream/domain/spec.h"

static void setup(void)
{
    struct dm_error err;
    cr_assert_eq(dm_safety_init(&err), 0, "%s", err.msg);
}

static void teardown(void)
{
    dm_safety_shutdown();
}

TestSuite(review, .init = setup, .fini = teardown);

/* ---- fixtures ---------------------------------------------------------------------------- */

#define ROUTE "src/routes/todos.ts"
#define MIGR "migrations/todos.sql"
#define COMP "src/components/todo-list.tsx"

static const char route_ok[] = "import { Hono } from 'hono';\nexport const app = new Hono();\n";
static const char migr_ok[] = "CREATE TABLE IF NOT EXISTS todos (id INTEGER PRIMARY KEY);\n";
static const char comp_ok[] = "export function TodoList() {\n  return null;\n}\n";

static struct dm_review_file files3[] = {
    {ROUTE, route_ok, sizeof(route_ok) - 1},
    {MIGR, migr_ok, sizeof(migr_ok) - 1},
    {COMP, comp_ok, sizeof(comp_ok) - 1},
};
#define N3 (sizeof(files3) / sizeof(files3[0]))

/* Scans every file with all rule sets into *f. */
static void scan_all(struct dm_findings *f, const struct dm_review_file *files, size_t n)
{
    struct dm_error err;
    dm_findings_init(f);
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(dm_safety_scan(f, files[i].path, files[i].content, files[i].len,
                                    DM_SAFETY_RULES_ALL, &err),
                     0, "%s", err.msg);
    }
}

/* The rule verdict of one file's content (path decides the language). */
static void rules_of(struct dm_review_verdict *v, struct dm_findings *f, const char *path,
                     const char *content)
{
    struct dm_review_file one = {path, content, strlen(content)};
    struct dm_error err;
    scan_all(f, &one, content[0] ? 1 : 0);
    dm_review_verdict_init(v);
    cr_assert_eq(dm_review_from_findings(v, f, &err), 0, "%s", err.msg);
}

static int parse(struct dm_review_verdict *v, const char *reply, struct dm_error *err)
{
    dm_review_verdict_init(v);
    return dm_review_parse(v, reply, strlen(reply), files3, N3, err);
}

/* prefix + n characters cycling through an alphabet (never a literal secret in the source). */
static char *fake(const char *prefix, size_t n)
{
    static const char alphabet[] = "aB3dE5gH7jK9mN1pQ2sT4vW6yZ8cF0";
    size_t p = strlen(prefix);
    char *s = malloc(p + n + 1);
    cr_assert_not_null(s);
    memcpy(s, prefix, p);
    for (size_t i = 0; i < n; i++) {
        s[p + i] = alphabet[(i * 7 + 3) % (sizeof(alphabet) - 1)];
    }
    s[p + n] = '\0';
    return s;
}

/* ---- verdict paths ----------------------------------------------------------------------- */

Test(review, rule_verdicts_follow_original)
{
    static const struct {
        const char *path;
        const char *content;
        enum dm_review_decision decision;
        enum dm_severity risk;
    } rows[] = {
        {ROUTE, "", DM_REVIEW_PROCEED, DM_SEVERITY_LOW},
        {ROUTE, "export const ok = 1;\n", DM_REVIEW_PROCEED, DM_SEVERITY_LOW},
        {ROUTE, "process.exit(1);\n", DM_REVIEW_PROCEED, DM_SEVERITY_MEDIUM},
        {MIGR, "ALTER TABLE todos DROP COLUMN done;\n", DM_REVIEW_PROCEED, DM_SEVERITY_MEDIUM},
        {ROUTE, "eval(input);\n", DM_REVIEW_PAUSE, DM_SEVERITY_HIGH},
        {MIGR, "DELETE FROM todos;\n", DM_REVIEW_PAUSE, DM_SEVERITY_HIGH},
        {MIGR, "DROP TABLE todos;\n", DM_REVIEW_REJECT, DM_SEVERITY_CRITICAL},
        {"scripts/x.sh", "rm -rf /tmp/x\n", DM_REVIEW_REJECT, DM_SEVERITY_CRITICAL},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct dm_findings f;
        struct dm_review_verdict v;
        rules_of(&v, &f, rows[i].path, rows[i].content);
        cr_expect_eq(v.decision, rows[i].decision, "row %zu: %s", i, v.summary);
        cr_expect_eq(v.risk, rows[i].risk, "row %zu", i);
        cr_expect_eq(v.sources, DM_REVIEW_BY_RULES);
        cr_expect_eq(v.rules_decision, (int)rows[i].decision);
        cr_expect_eq(v.model_decision, -1);
        cr_expect_eq(v.n_comments, 0);
        cr_assert_not_null(v.summary);
        cr_expect(strncmp(v.summary, "Rule scan: ", 11) == 0, "%s", v.summary);
        dm_review_verdict_free(&v);
        dm_findings_free(&f);
    }
}

Test(review, rule_summary_exact)
{
    struct dm_review_file fs[] = {
        {ROUTE, "eval(a);\nprocess.exit(1);\neval(b);\n", 0},
        {MIGR, "DROP TABLE todos;\n", 0},
    };
    struct dm_findings f;
    struct dm_review_verdict v = DM_REVIEW_VERDICT_INIT;
    struct dm_error err;

    fs[0].len = strlen(fs[0].content);
    fs[1].len = strlen(fs[1].content);
    scan_all(&f, fs, 2);
    cr_assert_eq(dm_review_from_findings(&v, &f, &err), 0);
    cr_expect_str_eq(v.summary, "Rule scan: 4 findings, highest critical: drop-table (critical) "
                                "x1, eval (high) x2, process-exit (medium) x1.");
    dm_review_verdict_free(&v);
    cr_assert_eq(dm_review_from_findings(&v, NULL, &err), 0);
    cr_expect_str_eq(v.summary, "Rule scan: no findings.");
    cr_expect_eq(v.decision, DM_REVIEW_PROCEED);
    dm_review_verdict_free(&v);
    dm_findings_free(&f);
}

/* Model proceed / pause / reject, each with no findings, a high (pause) and a critical
 * (reject) finding: the final decision is the stricter, the risk the higher. */
Test(review, combine_table)
{
    static const char *const replies[] = {
        "{\"decision\":\"proceed\",\"risk\":\"low\",\"summary\":\"Fine.\",\"comments\":[]}",
        "{\"decision\":\"pause\",\"risk\":\"medium\",\"summary\":\"Check it.\",\"comments\":[]}",
        "{\"decision\":\"reject\",\"risk\":\"high\",\"summary\":\"Broken.\",\"comments\":[]}",
    };
    static const struct {
        const char *path;
        const char *content;
    } rules[] = {
        {ROUTE, "export const ok = 1;\n"}, /* proceed, low */
        {ROUTE, "eval(input);\n"},         /* pause, high */
        {MIGR, "DROP TABLE todos;\n"},     /* reject, critical */
    };
    static const enum dm_review_decision want[3][3] = {
        /* rules:  proceed             pause               reject */
        {DM_REVIEW_PROCEED, DM_REVIEW_PAUSE, DM_REVIEW_REJECT}, /* model proceed */
        {DM_REVIEW_PAUSE, DM_REVIEW_PAUSE, DM_REVIEW_REJECT},   /* model pause */
        {DM_REVIEW_REJECT, DM_REVIEW_REJECT, DM_REVIEW_REJECT}, /* model reject */
    };
    static const enum dm_severity want_risk[3][3] = {
        {DM_SEVERITY_LOW, DM_SEVERITY_HIGH, DM_SEVERITY_CRITICAL},
        {DM_SEVERITY_MEDIUM, DM_SEVERITY_HIGH, DM_SEVERITY_CRITICAL},
        {DM_SEVERITY_HIGH, DM_SEVERITY_HIGH, DM_SEVERITY_CRITICAL},
    };

    for (size_t m = 0; m < 3; m++) {
        for (size_t r = 0; r < 3; r++) {
            struct dm_review_verdict model;
            struct dm_review_verdict rv;
            struct dm_review_verdict fin = DM_REVIEW_VERDICT_INIT;
            struct dm_findings f;
            struct dm_error err;

            cr_assert_eq(parse(&model, replies[m], &err), 0, "%s", err.msg);
            cr_expect_eq(model.decision, (enum dm_review_decision)m);
            rules_of(&rv, &f, rules[r].path, rules[r].content);
            cr_assert_eq(dm_review_combine(&fin, &model, &rv, &err), 0);
            cr_expect_eq(fin.decision, want[m][r], "model %zu rules %zu: %s", m, r,
                         dm_review_decision_name(fin.decision));
            cr_expect_eq(fin.risk, want_risk[m][r], "model %zu rules %zu", m, r);
            cr_expect_eq(fin.model_decision, (int)m);
            cr_expect_eq(fin.rules_decision, (int)r);
            cr_expect_eq(fin.sources, DM_REVIEW_BY_MODEL | DM_REVIEW_BY_RULES);
            cr_expect_str_eq(fin.summary, model.summary);
            cr_expect_str_eq(fin.rules_summary, rv.summary);
            /* The inputs are unchanged. */
            cr_expect_eq(model.decision, (enum dm_review_decision)m);
            cr_expect_eq(rv.decision, (enum dm_review_decision)r);
            dm_review_verdict_free(&fin);

            /* No model (none configured, the call failed, garbage): the rules decide. */
            cr_assert_eq(dm_review_combine(&fin, NULL, &rv, &err), 0);
            cr_expect_eq(fin.decision, (enum dm_review_decision)r);
            cr_expect_eq(fin.risk, rv.risk);
            cr_expect_eq(fin.sources, DM_REVIEW_BY_RULES);
            cr_expect_str_eq(fin.summary, rv.summary);
            cr_expect_null(fin.rules_summary);
            dm_review_verdict_free(&fin);

            dm_review_verdict_free(&model);
            dm_review_verdict_free(&rv);
            dm_findings_free(&f);
        }
    }
}

Test(review, combine_requires_rules_and_copies_comments)
{
    struct dm_review_verdict model;
    struct dm_review_verdict rv = DM_REVIEW_VERDICT_INIT;
    struct dm_review_verdict fin = DM_REVIEW_VERDICT_INIT;
    struct dm_error err;

    cr_assert_eq(parse(&model,
                       "{\"decision\":\"proceed\",\"risk\":\"low\",\"summary\":\"ok\","
                       "\"comments\":[{\"path\":\"" ROUTE "\",\"comment\":\"Validate ids.\"}]}",
                       &err),
                 0, "%s", err.msg);
    cr_expect_eq(dm_review_combine(&fin, &model, NULL, &err), DM_ERR_INVALID);
    cr_assert_eq(dm_review_from_findings(&rv, NULL, &err), 0);
    cr_assert_eq(dm_review_combine(&fin, &model, &rv, &err), 0);
    cr_assert_eq(fin.n_comments, 1);
    cr_expect_str_eq(fin.comments[0].path, ROUTE);
    cr_expect_str_eq(fin.comments[0].comment, "Validate ids.");
    cr_expect_neq(fin.comments[0].comment, model.comments[0].comment); /* a deep copy */
    dm_review_verdict_free(&model);
    dm_review_verdict_free(&rv);
    dm_review_verdict_free(&fin);
}

/* ---- parsing replies ---------------------------------------------------------------------- */

Test(review, parse_good_reply)
{
    struct dm_review_verdict v;
    struct dm_error err;
    const char *reply =
        "{\"decision\":\"pause\",\"risk\":\"high\",\"summary\":\"Deletes\\nrows   without a "
        "filter.\",\"comments\":[{\"path\":\"" MIGR "\",\"comment\":\"Add a WHERE clause.\"},"
        "{\"path\":\"./" ROUTE "\",\"comment\":\"Check the id.\"}],\"extra\":1}";

    cr_assert_eq(parse(&v, reply, &err), 0, "%s", err.msg);
    cr_expect_eq(v.decision, DM_REVIEW_PAUSE);
    cr_expect_eq(v.risk, DM_SEVERITY_HIGH);
    cr_expect_str_eq(v.summary, "Deletes rows without a filter.");
    cr_assert_eq(v.n_comments, 2);
    cr_expect_str_eq(v.comments[0].path, MIGR);
    cr_expect_str_eq(v.comments[0].comment, "Add a WHERE clause.");
    cr_expect_str_eq(v.comments[1].path, ROUTE); /* "./" dropped */
    cr_expect_eq(v.dropped_comments, 0);
    cr_expect_eq(v.sources, DM_REVIEW_BY_MODEL);
    cr_expect_eq(v.model_decision, DM_REVIEW_PAUSE);
    cr_expect_eq(v.rules_decision, -1);
    dm_review_verdict_free(&v);
}

Test(review, parse_accepts_old_style_case_and_fences)
{
    static const struct {
        const char *reply;
        enum dm_review_decision d;
        enum dm_severity r;
    } rows[] = {
        {"{\"decision\":\"PROCEED\",\"risk\":\"LOW\",\"summary\":\"s\",\"comments\":[]}",
         DM_REVIEW_PROCEED, DM_SEVERITY_LOW},
        {"{\"decision\":\"Pause\",\"risk\":\"Medium\",\"summary\":\"s\"}", DM_REVIEW_PAUSE,
         DM_SEVERITY_MEDIUM},
        {"  \n{\"decision\":\"REJECT\",\"risk\":\"critical\",\"summary\":\"s\"}\n\n",
         DM_REVIEW_REJECT, DM_SEVERITY_CRITICAL},
        {"```json\n{\"decision\":\"proceed\",\"risk\":\"low\",\"summary\":\"s\"}\n```",
         DM_REVIEW_PROCEED, DM_SEVERITY_LOW},
        {"\n```\n{\"decision\":\"pause\",\"risk\":\"high\",\"summary\":\"s\"}\n```\n",
         DM_REVIEW_PAUSE, DM_SEVERITY_HIGH},
        {"~~~~\n{\"decision\":\"reject\",\"risk\":\"high\",\"summary\":\"s\"}\n~~~~~",
         DM_REVIEW_REJECT, DM_SEVERITY_HIGH},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct dm_review_verdict v;
        struct dm_error err;
        cr_assert_eq(parse(&v, rows[i].reply, &err), 0, "row %zu: %s", i, err.msg);
        cr_expect_eq(v.decision, rows[i].d, "row %zu", i);
        cr_expect_eq(v.risk, rows[i].r, "row %zu", i);
        cr_expect_str_eq(v.summary, "s");
        dm_review_verdict_free(&v);
    }
}

Test(review, parse_refuses_garbage)
{
    static const struct {
        const char *reply;
        const char *msg; /* a part of the error message */
    } rows[] = {
        {"", "empty"},
        {" \n\t ", "empty"},
        {"PROCEED", "not a JSON object"},
        {"I think this looks fine.", "not a JSON object"},
        {"Sure! {\"decision\":\"proceed\",\"risk\":\"low\",\"summary\":\"s\"}",
         "not a JSON object"},
        {"{\"decision\":\"proceed\",\"risk\":\"low\",\"summary\":\"s\"} Hope this helps!",
         "text after"},
        {"{\"decision\":\"proceed\",\"risk\":\"low\",\"summary\":\"s\"}{\"decision\":\"reject\"}",
         "text after"},
        {"Here is my review:\n```json\n{\"decision\":\"proceed\",\"risk\":\"low\","
         "\"summary\":\"s\"}\n```",
         "not a JSON object"},
        {"```json\n{\"decision\":\"proceed\",\"risk\":\"low\",\"summary\":\"s\"}\n```\nDone.",
         "fence"},
        {"```json\n{\"decision\":\"proceed\",\"risk\":\"low\",\"summary\":\"s\"}", "fence"},
        {"```json", "fence"},
        {"{\"decision\":\"proceed\",\"risk\":\"lo", "truncated"},
        {"{\"decision\":\"proceed\",\"risk\":\"low\",\"summary\":\"s\",\"comments\":[",
         "truncated"},
        {"{\"decision\":\"proceed\" \"risk\":\"low\",\"summary\":\"s\"}", "malformed"},
        {"[\"proceed\"]", "not a JSON object"},
        {"{\"decision\":\"maybe\",\"risk\":\"low\",\"summary\":\"s\"}", "unknown decision"},
        {"{\"decision\":\"approve\",\"risk\":\"low\",\"summary\":\"s\"}", "unknown decision"},
        {"{\"decision\":\"proceed\",\"risk\":\"extreme\",\"summary\":\"s\"}", "unknown risk"},
        {"{\"decision\":1,\"risk\":\"low\",\"summary\":\"s\"}", "\"decision\" must be"},
        {"{\"risk\":\"low\",\"summary\":\"s\"}", "\"decision\" must be"},
        {"{\"decision\":\"proceed\",\"summary\":\"s\"}", "\"risk\" must be"},
        {"{\"decision\":\"proceed\",\"risk\":\"low\"}", "\"summary\" must be"},
        {"{\"decision\":\"proceed\",\"risk\":\"low\",\"summary\":[\"s\"]}", "\"summary\" must be"},
        {"{\"decision\":\"proceed\",\"risk\":\"low\",\"summary\":\"s\",\"comments\":\"none\"}",
         "\"comments\" must be"},
        {"{\"decision\":\"proceed\",\"risk\":\"low\",\"summary\":\"s\",\"comments\":[\"x\"]}",
         "comments[0]"},
        {"{\"decision\":\"proceed\",\"risk\":\"low\",\"summary\":\"s\",\"comments\":"
         "[{\"path\":\"" ROUTE "\",\"comment\":\"a\"},{\"path\":3,\"comment\":\"b\"}]}",
         "comments[1]"},
        {"{\"decision\":\"proceed\",\"risk\":\"low\",\"summary\":\"\xff\"}", "UTF-8"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct dm_review_verdict v;
        struct dm_error err;
        dm_error_clear(&err);
        cr_expect_eq(parse(&v, rows[i].reply, &err), DM_ERR_INVALID, "row %zu", i);
        cr_expect(strstr(err.msg, rows[i].msg) != NULL, "row %zu: %s", i, err.msg);
        cr_expect(strncmp(err.msg, "reviewer reply", 14) == 0, "row %zu: %s", i, err.msg);
        /* *out untouched */
        cr_expect_null(v.summary);
        cr_expect_null(v.comments);
        cr_expect_eq(v.sources, 0);
    }
}

Test(review, parse_refuses_nul_and_oversize)
{
    static const char with_nul[] = "{\"decision\":\"proceed\",\0\"risk\":\"low\"}";
    struct dm_review_verdict v = DM_REVIEW_VERDICT_INIT;
    struct dm_error err;
    static const char obj[] = "{\"decision\":\"proceed\",\"risk\":\"low\",\"summary\":\"s\"}";
    size_t big = DM_REVIEW_REPLY_MAX + 1;
    char *reply = malloc(big);

    cr_expect_eq(dm_review_parse(&v, with_nul, sizeof(with_nul) - 1, files3, N3, &err),
                 DM_ERR_INVALID);
    cr_assert_not_null(reply);
    /* A valid object padded with spaces past the cap is refused for its size alone. */
    memset(reply, ' ', big);
    memcpy(reply, obj, strlen(obj));
    cr_expect_eq(dm_review_parse(&v, reply, big, files3, N3, &err), DM_ERR_INVALID);
    cr_expect(strstr(err.msg, "limit") != NULL, "%s", err.msg);
    cr_expect_eq(dm_review_parse(&v, reply, big - 1, files3, N3, &err), 0, "%s", err.msg);
    dm_review_verdict_free(&v);
    cr_expect_eq(dm_review_parse(&v, NULL, 0, files3, N3, &err), DM_ERR_INVALID);
    free(reply);
}

Test(review, comments_on_unknown_paths_dropped)
{
    struct dm_review_verdict v;
    struct dm_error err;
    const char *reply =
        "{\"decision\":\"proceed\",\"risk\":\"low\",\"summary\":\"s\",\"comments\":["
        "{\"path\":\"src/routes/other.ts\",\"comment\":\"not generated\"},"
        "{\"path\":\"" ROUTE "\",\"comment\":\"  kept \\n one \"},"
        "{\"path\":\"/" ROUTE "\",\"comment\":\"absolute form\"},"
        "{\"path\":\"../" ROUTE "\",\"comment\":\"escape\"},"
        "{\"path\":\"" COMP "\",\"comment\":\"   \"},"
        "{\"path\":\"SRC/ROUTES/TODOS.TS\",\"comment\":\"wrong case\"},"
        "{\"path\":\"" MIGR "\",\"comment\":\"kept two\"}]}";

    cr_assert_eq(parse(&v, reply, &err), 0, "%s", err.msg);
    cr_assert_eq(v.n_comments, 2);
    cr_expect_str_eq(v.comments[0].path, ROUTE);
    cr_expect_str_eq(v.comments[0].comment, "kept one");
    cr_expect_str_eq(v.comments[1].path, MIGR);
    cr_expect_eq(v.dropped_comments, 5);
    dm_review_verdict_free(&v);
}

Test(review, comments_and_summary_capped)
{
    struct dm_buf b;
    struct dm_review_verdict v;
    struct dm_error err;

    dm_buf_init(&b, 0);
    cr_assert_eq(dm_buf_puts(&b, "{\"decision\":\"pause\",\"risk\":\"low\",\"summary\":\""), 0);
    for (int i = 0; i < 600; i++) {
        cr_assert_eq(dm_buf_puts(&b, "\xc3\xa9 "), 0); /* "é " x 600 = 1800 bytes */
    }
    cr_assert_eq(dm_buf_puts(&b, "\",\"comments\":["), 0);
    for (int i = 0; i < 30; i++) {
        cr_assert_eq(dm_buf_printf(&b, "%s{\"path\":\"%s\",\"comment\":\"c%d %0*d\"}", i ? "," : "",
                                   files3[i % N3].path, i, i == 0 ? 2000 : 1, 0),
                     0);
    }
    cr_assert_eq(dm_buf_puts(&b, "]}"), 0);
    cr_assert_eq(dm_review_parse(&v, b.data, b.len, files3, N3, &err), 0, "%s", err.msg);
    cr_expect_leq(strlen(v.summary), DM_REVIEW_SUMMARY_MAX);
    cr_expect_gt(strlen(v.summary), DM_REVIEW_SUMMARY_MAX - 8);
    cr_expect_eq(dm_spec_utf8_check(v.summary, strlen(v.summary), NULL), 0);
    cr_expect(strcmp(v.summary + strlen(v.summary) - 3, "\xe2\x80\xa6") == 0);
    cr_expect_eq(v.n_comments, DM_REVIEW_COMMENTS_MAX);
    cr_expect_eq(v.dropped_comments, 30 - DM_REVIEW_COMMENTS_MAX);
    cr_expect_leq(strlen(v.comments[0].comment), DM_REVIEW_COMMENT_MAX);
    cr_expect_gt(strlen(v.comments[0].comment), DM_REVIEW_COMMENT_MAX - 8);
    cr_expect_str_eq(v.comments[1].comment, "c1 0");
    dm_review_verdict_free(&v);
    dm_buf_free(&b);
}

Test(review, quoted_secret_withheld)
{
    char *token = fake("ghp_", 36);
    char reply[1024];
    struct dm_review_verdict v;
    struct dm_error err;

    snprintf(reply, sizeof(reply),
             "{\"decision\":\"reject\",\"risk\":\"critical\",\"summary\":\"The token %s is "
             "hard-coded.\",\"comments\":[{\"path\":\"" ROUTE "\",\"comment\":\"Remove %s.\"},"
             "{\"path\":\"" MIGR "\",\"comment\":\"Fine otherwise.\"}]}",
             token, token);
    cr_assert_eq(parse(&v, reply, &err), 0, "%s", err.msg);
    cr_expect_str_eq(v.summary, "(withheld: the reviewer quoted a secret)");
    cr_assert_eq(v.n_comments, 2);
    cr_expect_str_eq(v.comments[0].comment, "(withheld: the reviewer quoted a secret)");
    cr_expect_str_eq(v.comments[1].comment, "Fine otherwise.");
    dm_review_verdict_free(&v);
    free(token);
}

/* ---- the request ------------------------------------------------------------------------- */

Test(review, response_format_shape)
{
    cJSON *rf = cJSON_Parse(dm_review_response_format());
    const cJSON *js;
    const cJSON *schema;
    const cJSON *props;
    const cJSON *req;
    const cJSON *en;

    cr_assert_not_null(rf);
    cr_expect_str_eq(cJSON_GetObjectItem(rf, "type")->valuestring, "json_schema");
    js = cJSON_GetObjectItem(rf, "json_schema");
    cr_assert_not_null(js);
    cr_expect_str_eq(cJSON_GetObjectItem(js, "name")->valuestring, "review");
    cr_expect(cJSON_IsTrue(cJSON_GetObjectItem(js, "strict")));
    schema = cJSON_GetObjectItem(js, "schema");
    cr_assert_not_null(schema);
    cr_expect(cJSON_IsFalse(cJSON_GetObjectItem(schema, "additionalProperties")));
    req = cJSON_GetObjectItem(schema, "required");
    cr_expect_eq(cJSON_GetArraySize(req), 4);
    props = cJSON_GetObjectItem(schema, "properties");
    en = cJSON_GetObjectItem(cJSON_GetObjectItem(props, "decision"), "enum");
    cr_assert_eq(cJSON_GetArraySize(en), 3);
    cr_expect_str_eq(cJSON_GetArrayItem(en, 0)->valuestring, "proceed");
    cr_expect_str_eq(cJSON_GetArrayItem(en, 2)->valuestring, "reject");
    en = cJSON_GetObjectItem(cJSON_GetObjectItem(props, "risk"), "enum");
    cr_expect_eq(cJSON_GetArraySize(en), 4);
    cr_expect_str_eq(
        cJSON_GetObjectItem(cJSON_GetObjectItem(props, "comments"), "type")->valuestring, "array");
    cJSON_Delete(rf);
    cr_expect_str_eq(DM_REVIEW_MODEL, "anthropic/claude-haiku-4.5");
    cr_expect_eq(DM_REVIEW_MAX_TOKENS, 1024);
    cr_expect_float_eq(DM_REVIEW_TEMPERATURE, 0.2, 1e-9);
}

/* A parse of what the prompt's files list claims: every generated file is named. */
Test(review, prompt_contents)
{
    struct dm_review_file fs[] = {
        {ROUTE, "const a = eval(x);\n```\nnot a fence end\n", 0},
        {MIGR, migr_ok, sizeof(migr_ok) - 1},
    };
    struct dm_review_prompt *p = NULL;
    struct dm_findings f;
    struct dm_error err;

    fs[0].len = strlen(fs[0].content);
    scan_all(&f, fs, 2);
    cr_assert_eq(dm_review_prompt_build(&p, "Todo API", fs, 2, &f, &err), 0, "%s", err.msg);
    cr_assert_not_null(p);
    cr_expect(strstr(p->system, "JSON") != NULL);
    cr_expect(strstr(p->system, "proceed") && strstr(p->system, "pause") &&
              strstr(p->system, "reject"));
    cr_expect(strncmp(p->user,
                      "Plan: Todo API\n\nGenerated files (2):\n- `" ROUTE "` (39 bytes)\n- `" MIGR
                      "` (59 bytes)\n\nRule findings (1):\n- " ROUTE
                      ":1 eval (high, review): eval(\n",
                      strlen("Plan: Todo API\n\nGenerated files (2):\n- `" ROUTE
                             "` (39 bytes)\n- `" MIGR "` (59 bytes)\n\nRule findings (1):\n- " ROUTE
                             ":1 eval (high, review): eval(\n")) == 0,
              "%s", p->user);
    /* A content holding ``` is fenced with four backticks. */
    cr_expect(strstr(p->user, "\n### `" ROUTE "`\n````ts\nconst a = eval(x);\n```\nnot a fence "
                              "end\n````\n") != NULL,
              "%s", p->user);
    cr_expect(strstr(p->user, "\n### `" MIGR "`\n```sql\n"
                              "CREATE TABLE") != NULL);
    cr_expect(strstr(p->user, "truncated") == NULL);
    cr_expect_eq(p->files_cut, 0);
    cr_expect_eq(p->files_omitted, 0);
    dm_review_prompt_free(p);

    cr_assert_eq(dm_review_prompt_build(&p, "T", fs, 2, NULL, &err), 0);
    cr_expect(strstr(p->user, "\nRule findings: none.\n") != NULL);
    dm_review_prompt_free(p);
    dm_findings_free(&f);
}

Test(review, prompt_refuses_bad_input)
{
    struct dm_review_prompt *p = (struct dm_review_prompt *)1;
    struct dm_review_file nul = {ROUTE, "a\0b", 3};
    struct dm_review_file nopath = {NULL, "a", 1};
    struct dm_error err;

    cr_expect_eq(dm_review_prompt_build(&p, "T", NULL, 0, NULL, &err), DM_ERR_INVALID);
    cr_expect_null(p);
    cr_expect_eq(dm_review_prompt_build(&p, "T", &nul, 1, NULL, &err), DM_ERR_INVALID);
    cr_expect_eq(dm_review_prompt_build(&p, "T", &nopath, 1, NULL, &err), DM_ERR_INVALID);
}

static char *filled(size_t n, const char *unit)
{
    size_t u = strlen(unit);
    char *s = malloc(n + 1);
    cr_assert_not_null(s);
    for (size_t i = 0; i < n; i++) {
        s[i] = unit[i % u];
    }
    s[n] = '\0';
    return s;
}

/* Small files are shown whole; the big one gets what they leave; the cap always holds. */
Test(review, prompt_cap_shares_room)
{
    char *big = filled(200 * 1024, "x = 1;\n");
    struct dm_review_file fs[] = {
        {"src/a.ts", "const a = 1;\n", 13},
        {"src/big.ts", big, strlen(big)},
        {"src/b.ts", "const b = 2;\n", 13},
    };
    struct dm_review_prompt *p = NULL;
    struct dm_error err;
    const char *marker;
    size_t shown = 0;

    cr_assert_eq(dm_review_prompt_build(&p, "T", fs, 3, NULL, &err), 0, "%s", err.msg);
    cr_expect_leq(strlen(p->user), DM_REVIEW_PROMPT_MAX);
    cr_expect_gt(strlen(p->user), DM_REVIEW_PROMPT_MAX - 1024); /* the room is used */
    cr_expect(strstr(p->user, "```ts\nconst a = 1;\n```\n") != NULL);
    cr_expect(strstr(p->user, "```ts\nconst b = 2;\n```\n") != NULL);
    marker = strstr(p->user, "[truncated: showing ");
    cr_assert_not_null(marker);
    cr_expect_eq(sscanf(marker, "[truncated: showing %zu of", &shown), 1);
    cr_expect_gt(shown, 50 * 1024);
    cr_expect(strstr(marker, " of 204800 bytes]") != NULL);
    cr_expect_eq(p->files_cut, 1);
    cr_expect_eq(p->files_omitted, 0);
    dm_review_prompt_free(p);
    free(big);
}

Test(review, prompt_cap_many_files_and_utf8)
{
    enum { N = 300 };
    struct dm_review_file fs[N];
    char paths[N][64];
    char *body = filled(30 * 1024, "\xc3\xa9\xe2\x82\xac"); /* é€ repeated */
    struct dm_review_prompt *p = NULL;
    struct dm_error err;

    for (size_t i = 0; i < N; i++) {
        snprintf(paths[i], sizeof(paths[i]), "src/generated/deeply/nested/file-%03zu.ts", i);
        fs[i].path = paths[i];
        fs[i].content = body;
        fs[i].len = strlen(body);
    }
    /* Every byte count of cut: never a split sequence. */
    cr_assert_eq(dm_review_prompt_build(&p, "T", fs, 4, NULL, &err), 0);
    cr_expect_leq(strlen(p->user), DM_REVIEW_PROMPT_MAX);
    cr_expect_eq(p->files_cut, 4);
    cr_expect_eq(dm_spec_utf8_check(p->user, strlen(p->user), NULL), 0);
    dm_review_prompt_free(p);

    cr_assert_eq(dm_review_prompt_build(&p, "T", fs, N, NULL, &err), 0);
    cr_expect_leq(strlen(p->user), DM_REVIEW_PROMPT_MAX);
    cr_expect_gt(p->files_omitted, 0);
    cr_expect_lt(p->files_omitted, N);
    cr_expect(strstr(p->user, "left out") != NULL);
    /* Files that are shown get a useful share each, not a few bytes. */
    for (const char *m = p->user; (m = strstr(m, "[truncated: showing ")) != NULL; m++) {
        size_t shown = 0;
        cr_assert_eq(sscanf(m, "[truncated: showing %zu of", &shown), 1);
        cr_expect_geq(shown, 1000, "%zu", shown);
    }
    cr_expect_eq(p->files_cut, N - p->files_omitted);
    cr_expect(strstr(p->user, " more\n") != NULL); /* the file list was capped too */
    cr_expect_eq(dm_spec_utf8_check(p->user, strlen(p->user), NULL), 0);
    dm_review_prompt_free(p);
    free(body);
}

/* ---- the revise round -------------------------------------------------------------------- */

Test(review, files_to_revise_and_prompt)
{
    struct dm_review_verdict v;
    struct dm_error err;
    const char *paths[4] = {NULL, NULL, NULL, NULL};
    char *msg = NULL;
    const char *content = "export const x = eval(y);\n";

    cr_assert_eq(parse(&v,
                       "{\"decision\":\"pause\",\"risk\":\"high\",\"summary\":\"s\",\"comments\":["
                       "{\"path\":\"" ROUTE "\",\"comment\":\"Do not use eval.\"},"
                       "{\"path\":\"" MIGR "\",\"comment\":\"Add an index.\"},"
                       "{\"path\":\"" ROUTE "\",\"comment\":\"Validate y.\"}]}",
                       &err),
                 0, "%s", err.msg);
    cr_expect_eq(dm_review_files_to_revise(&v, NULL, 0), 2);
    cr_expect_eq(dm_review_files_to_revise(&v, paths, 1), 2);
    cr_expect_str_eq(paths[0], ROUTE);
    cr_expect_null(paths[1]);
    cr_expect_eq(dm_review_files_to_revise(&v, paths, 4), 2);
    cr_expect_str_eq(paths[1], MIGR);
    cr_expect_null(paths[2]);

    cr_assert_eq(dm_review_revise_prompt(&msg, &v, ROUTE, content, strlen(content), &err), 0, "%s",
                 err.msg);
    cr_expect_str_eq(msg, "A reviewer commented on the file you wrote for the path below. "
                          "Address every comment, keep what was right, and do not add "
                          "features.\n\nPath: `" ROUTE "`\n\nReviewer comments:\n"
                          "- Do not use eval.\n- Validate y.\n\nCurrent content:\n"
                          "```ts\nexport const x = eval(y);\n```\n\n"
                          "Reply with the complete revised file only.\n");
    free(msg);
    cr_expect_eq(dm_review_revise_prompt(&msg, &v, COMP, "x", 1, &err), DM_ERR_INVALID);
    cr_expect_null(msg);
    cr_expect_eq(dm_review_revise_prompt(&msg, &v, ROUTE, "a\0b", 3, &err), DM_ERR_INVALID);
    cr_expect_eq(dm_review_revise_prompt(&msg, &v, ROUTE, content, DM_REVIEW_REVISE_MAX + 1, &err),
                 DM_ERR_LIMIT);
    dm_review_verdict_free(&v);

    /* A verdict without comments revises nothing. */
    cr_assert_eq(dm_review_from_findings(&v, NULL, &err), 0);
    cr_expect_eq(dm_review_files_to_revise(&v, paths, 4), 0);
    dm_review_verdict_free(&v);
}

/* ---- PR body sections -------------------------------------------------------------------- */

Test(review, markdown_exact_and_secret_free)
{
    char *token = fake("ghp_", 36);
    char route[256];
    struct dm_review_file fs[2];
    struct dm_findings f;
    struct dm_review_verdict model;
    struct dm_review_verdict rv;
    struct dm_review_verdict fin = DM_REVIEW_VERDICT_INIT;
    struct dm_buf md;
    struct dm_error err;

    snprintf(route, sizeof(route), "const t = '%s';\nexport const run = (s) => eval(s);\n", token);
    fs[0] = (struct dm_review_file){ROUTE, route, strlen(route)};
    fs[1] = (struct dm_review_file){MIGR, "DROP TABLE IF EXISTS old;\n", 26};
    scan_all(&f, fs, 2);
    cr_assert_eq(parse(&model,
                       "{\"decision\":\"proceed\",\"risk\":\"medium\",\"summary\":\"Looks <fine> "
                       "& small.\",\"comments\":[{\"path\":\"" ROUTE
                       "\",\"comment\":\"Avoid eval | use a parser.\"}]}",
                       &err),
                 0, "%s", err.msg);
    cr_assert_eq(dm_review_from_findings(&rv, &f, &err), 0);
    cr_assert_eq(dm_review_combine(&fin, &model, &rv, &err), 0);
    dm_buf_init(&md, 0);
    cr_assert_eq(dm_review_markdown(&fin, &f, &md), 0);
    cr_expect_str_eq(md.data,
                     "**Decision**: reject \xc2\xb7 **Risk**: critical \xc2\xb7 **Reviewed by**: "
                     "model and rules\n"
                     "\n"
                     "The rule scan's decision (reject) is stricter than the model's "
                     "(proceed).\n"
                     "\n"
                     "Looks &lt;fine&gt; &amp; small.\n"
                     "\n"
                     "Rule scan: 3 findings, highest critical: github-token (critical) x1, "
                     "drop-table (critical) x1, eval (high) x1.\n"
                     "\n"
                     "#### Comments\n"
                     "\n"
                     "- `" ROUTE "`: Avoid eval \\| use a parser.\n"
                     "\n"
                     "#### Findings\n"
                     "\n"
                     "| Location | Rule | Kind | Severity |\n"
                     "| --- | --- | --- | --- |\n"
                     "| `" ROUTE ":1` | github-token | secret | critical |\n"
                     "| `" MIGR ":1` | drop-table | destructive | critical |\n"
                     "| `" ROUTE ":2` | eval | review | high |\n");
    /* No 6-byte window of the token beyond its prefix appears. */
    for (size_t off = 4; off + 6 <= strlen(token); off++) {
        char w[7];
        memcpy(w, token + off, 6);
        w[6] = '\0';
        cr_expect(strstr(md.data, w) == NULL, "leaks %s", w);
    }
    dm_buf_free(&md);
    dm_review_verdict_free(&fin);
    dm_review_verdict_free(&model);
    dm_review_verdict_free(&rv);
    dm_findings_free(&f);
    free(token);
}

Test(review, markdown_rules_only_and_caps)
{
    struct dm_buf src;
    struct dm_findings f;
    struct dm_review_verdict v;
    struct dm_buf md;

    dm_buf_init(&src, 0);
    for (int i = 0; i < 40; i++) {
        cr_assert_eq(dm_buf_puts(&src, "process.exit(1);\n"), 0);
    }
    rules_of(&v, &f, ROUTE, src.data);
    dm_buf_init(&md, 0);
    cr_assert_eq(dm_review_markdown(&v, &f, &md), 0);
    cr_expect(strncmp(md.data,
                      "**Decision**: proceed \xc2\xb7 **Risk**: medium \xc2\xb7 **Reviewed by**: "
                      "rules\n\nRule scan: 40 findings, highest medium: process-exit (medium) "
                      "x40.\n\n#### Findings\n",
                      strlen("**Decision**: proceed \xc2\xb7 **Risk**: medium \xc2\xb7 **Reviewed "
                             "by**: rules\n\nRule scan: 40 findings, highest medium: process-exit "
                             "(medium) x40.\n\n#### Findings\n")) == 0,
              "%s", md.data);
    cr_expect(strstr(md.data, "| `" ROUTE ":30` | process-exit") != NULL);
    cr_expect(strstr(md.data, "| `" ROUTE ":31` |") == NULL);
    cr_expect(strstr(md.data, "\n_\xe2\x80\xa6 and 10 more findings._\n") != NULL, "%s", md.data);
    cr_expect(strstr(md.data, "stricter") == NULL);
    /* A capped buffer reports the limit instead of overflowing. */
    dm_buf_free(&md);
    dm_buf_init(&md, 64);
    cr_expect_eq(dm_review_markdown(&v, &f, &md), DM_ERR_LIMIT);
    cr_expect_leq(md.len, 64);
    dm_buf_free(&md);
    dm_review_verdict_free(&v);
    dm_findings_free(&f);
    dm_buf_free(&src);
}

Test(review, cost_markdown_exact)
{
    const struct dm_review_cost_row rows[] = {
        {"src/routes/todos.ts", "anthropic/claude-sonnet-4.5", 1000, 200, 0.006},
        {"review", "anthropic/claude-haiku-4.5", 3000, 150, -1},
    };
    struct dm_buf md;

    dm_buf_init(&md, 0);
    cr_assert_eq(dm_review_cost_markdown(&md, 4100, 360, 0.0123, rows, 2), 0);
    cr_expect_str_eq(md.data,
                     "**Total**: 4460 tokens (4100 prompt + 360 completion), $0.0123\n"
                     "\n"
                     "| Step | Model | Prompt | Completion | Cost |\n"
                     "| --- | --- | ---: | ---: | ---: |\n"
                     "| `src/routes/todos.ts` | anthropic/claude-sonnet-4.5 | 1000 | 200 | "
                     "$0.0060 |\n"
                     "| `review` | anthropic/claude-haiku-4.5 | 3000 | 150 | ? |\n");
    dm_buf_reset(&md);
    cr_assert_eq(dm_review_cost_markdown(&md, 0, 0, -1, NULL, 0), 0);
    cr_expect_str_eq(md.data, "**Total**: 0 tokens (0 prompt + 0 completion), ?\n");
    dm_buf_free(&md);
}

Test(review, cost_markdown_caps_rows)
{
    struct dm_review_cost_row rows[40];
    char labels[40][32];
    struct dm_buf md;
    size_t lines = 0;

    for (size_t i = 0; i < 40; i++) {
        snprintf(labels[i], sizeof(labels[i]), "src/f%02zu.ts", i);
        rows[i] = (struct dm_review_cost_row){labels[i], NULL, 10, 2, 0.5};
    }
    dm_buf_init(&md, 0);
    cr_assert_eq(dm_review_cost_markdown(&md, 400, 80, 20, rows, 40), 0);
    for (const char *p = md.data; (p = strstr(p, "\n| `")) != NULL; p++) {
        lines++;
    }
    cr_expect_eq(lines, DM_REVIEW_COST_ROWS - 1);
    cr_expect(strstr(md.data, "| `src/f23.ts` | - | 10 | 2 | $0.5000 |\n") != NULL);
    cr_expect(strstr(md.data, "src/f24.ts") == NULL);
    cr_expect(strstr(md.data, "| \xe2\x80\xa6 16 more | | 160 | 32 | $8.0000 |\n") != NULL, "%s",
              md.data);
    cr_expect_lt(md.len, 4096);
    dm_buf_free(&md);
}
