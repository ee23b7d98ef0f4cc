/*
 * Unit tests for prbody: the whole PR body from structured parts, byte for byte (every section,
 * its heading, its order and its escaping), each optional part left out on its own, the
 * validation list, the caps (a huge job still makes a body GitHub accepts, valid UTF-8, with
 * its footer) and the cuts of the overview and the requirements. Findings come from the real
 * scanner over real contents.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dream/core/buf.h"
#include "dream/domain/prbody.h"
#include "dream/domain/safety.h"

static void setup(void)
{
    struct dm_error err;
    cr_assert_eq(dm_safety_init(&err), 0, "%s", err.msg);
}

static void teardown(void)
{
    dm_safety_shutdown();
}

TestSuite(prbody, .init = setup, .fini = teardown);

#define SPEC_MD                                                                                    \
    "# Todo API\n\nTodos for teams.\n\n## Requirements\n\n- Create\n- List\n\n## API\n\n"          \
    "- GET /todos\n"

static struct dm_spec *parse(const char *md)
{
    struct dm_spec *s = NULL;
    struct dm_error err;
    cr_assert_eq(dm_spec_parse(&s, md, strlen(md), NULL, &err), 0, "%s", err.msg);
    return s;
}

static struct dm_plan *build(const struct dm_spec *s)
{
    struct dm_plan *p = NULL;
    struct dm_error err;
    cr_assert_eq(dm_plan_build(&p, s, NULL, NULL, &err), 0, "%s", err.msg);
    return p;
}

static void warn(struct dm_validate_warnings *w, const char *path, const char *text)
{
    cr_assert_geq(dm_validate_warn(w, path, text, strlen(text)), 0);
}

static void scan(struct dm_findings *f, const char *path, const char *text)
{
    struct dm_error err;
    cr_assert_eq(dm_safety_scan(f, path, text, strlen(text), DM_SAFETY_RULES_ALL, &err), 0, "%s",
                 err.msg);
}

/* A combined verdict: the model said proceed, the rules pause; one comment. Text that needs
 * escaping everywhere. */
static void verdict(struct dm_review_verdict *v)
{
    dm_review_verdict_init(v);
    v->decision = DM_REVIEW_PAUSE;
    v->risk = DM_SEVERITY_HIGH;
    v->summary = strdup("Looks <odd> | fine & small");
    v->comments = calloc(1, sizeof(*v->comments));
    cr_assert_not_null(v->comments);
    v->comments[0].path = strdup("src/routes/get`todos.ts");
    v->comments[0].comment = strdup("use a|b <here>");
    v->n_comments = 1;
    v->model_decision = DM_REVIEW_PROCEED;
    v->rules_decision = DM_REVIEW_PAUSE;
    v->sources = DM_REVIEW_BY_MODEL | DM_REVIEW_BY_RULES;
}

/* The review section of verdict() over the findings of FINDINGS_SQL. */
#define REVIEW_MD                                                                                  \
    "**Decision**: pause \xc2\xb7 **Risk**: high \xc2\xb7 **Reviewed by**: model and rules\n"      \
    "\n"                                                                                           \
    "The rule scan's decision (pause) is stricter than the model's (proceed).\n"                   \
    "\n"                                                                                           \
    "Looks &lt;odd&gt; \\| fine &amp; small\n"                                                     \
    "\n"                                                                                           \
    "#### Comments\n"                                                                              \
    "\n"                                                                                           \
    "- `src/routes/get'todos.ts`: use a\\|b &lt;here&gt;\n"                                        \
    "\n"                                                                                           \
    "#### Findings\n"                                                                              \
    "\n"                                                                                           \
    "| Location | Rule | Kind | Severity |\n"                                                      \
    "| --- | --- | --- | --- |\n"                                                                  \
    "| `migrations/a\\|b.sql:2` | drop-table | destructive | critical |\n"

#define FINDINGS_PATH "migrations/a|b.sql"
#define FINDINGS_SQL "-- drop\nDROP TABLE users;\n"

Test(prbody, exact_body_with_every_part)
{
    struct dm_spec *s = parse(SPEC_MD);
    struct dm_plan *p = build(s);
    struct dm_validate_warnings w;
    struct dm_findings f = DM_FINDINGS_INIT;
    struct dm_review_verdict v;
    struct dm_prbody_cost cost = {1200, 0.0123, 100000, 2.5};
    struct dm_prbody parts = {p,   s, &w, &v, &f, &cost, "job-1", "- Type-check (tsc): passed\n",
                              NULL};
    char *body;

    p->stack = strdup("Hono + React <19> (TypeScript)");
    dm_validate_warnings_init(&w);
    warn(&w, "a`b.ts", "");
    warn(&w, "m.sql", "DROP TABLE x;");
    scan(&f, FINDINGS_PATH, FINDINGS_SQL);
    verdict(&v);
    body = dm_prbody_render(&parts);
    cr_assert_not_null(body);
    cr_assert_str_eq(body, "## Dream Machine Build\n"
                           "\n"
                           "**Spec**: Todo API\n"
                           "**Stack**: Hono + React &lt;19&gt; (TypeScript)\n"
                           "\n"
                           "### Overview\n"
                           "\n"
                           "Todos for teams.\n"
                           "\n"
                           "### Checklist\n"
                           "\n"
                           "**Requirements**\n"
                           "\n"
                           "- [ ] Create \xe2\x86\x92 `src/routes/todos.ts`\n"
                           "- [ ] List \xe2\x86\x92 `src/routes/todos.ts`\n"
                           "\n"
                           "**API routes**\n"
                           "\n"
                           "- [ ] GET /todos \xe2\x86\x92 `src/routes/todos.ts`\n"
                           "\n"
                           "### Files changed\n"
                           "\n"
                           "- `docs/dream-specs/todo-api.md` (created, spec): Spec: Todo API\n"
                           "- `src/routes/todos.ts` (created, route): The /todos routes: GET "
                           "/todos. Exports: default: a Hono app with GET /todos\n"
                           "\n"
                           "### Verification\n"
                           "\n"
                           "- Type-check (tsc): passed\n"
                           "\n"
                           "### Validation\n"
                           "\n"
                           "- `a'b.ts`: empty file\n"
                           "- `m.sql` (line 1): DROP TABLE without IF EXISTS\n"
                           "\n"
                           "### Review\n"
                           "\n" REVIEW_MD "\n"
                           "### Cost\n"
                           "\n"
                           "1200 tokens, $0.0123 (budget 100000 tokens, $2.50)\n"
                           "\n"
                           "---\n"
                           "\n"
                           "_Built by dreamd (Dream Machine) from the spec above, job `job-1`. "
                           "Review every change before merging._\n");
    free(body);
    dm_review_verdict_free(&v);
    dm_findings_free(&f);
    dm_validate_warnings_free(&w);
    dm_plan_free(p);
    dm_spec_free(s);
}

/* Each optional part shows its section exactly when given, and the sections keep their order. */
Test(prbody, each_part_alone_decides_its_section)
{
    static const char *const headings[] = {"\n### Overview\n\n",     "\n### Checklist\n\n",
                                           "\n### Verification\n\n", "\n### Validation\n\n",
                                           "\n### Review\n\n",       "\n### Cost\n\n"};
    struct dm_spec *s = parse(SPEC_MD);
    struct dm_plan *p = build(s);
    struct dm_validate_warnings w;
    struct dm_findings f = DM_FINDINGS_INIT;
    struct dm_review_verdict v;
    struct dm_prbody_cost cost = {1, 0.5, 2, 3};

    dm_validate_warnings_init(&w);
    warn(&w, "m.sql", "DROP TABLE x;");
    scan(&f, FINDINGS_PATH, FINDINGS_SQL);
    verdict(&v);
    for (unsigned mask = 0; mask < 32; mask++) {
        struct dm_prbody parts = {p, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
        int want[6];
        const char *prev;
        char *body;

        parts.spec = (mask & 1) ? s : NULL;
        parts.validation = (mask & 2) ? &w : NULL;
        parts.review = (mask & 4) ? &v : NULL;
        parts.findings = &f;
        parts.cost = (mask & 8) ? &cost : NULL;
        parts.verification = (mask & 16) ? "Type-check: passed.\n" : NULL;
        want[0] = want[1] = (mask & 1) != 0;
        want[2] = (mask & 16) != 0;
        want[3] = (mask & 2) != 0;
        want[4] = (mask & 4) != 0;
        want[5] = (mask & 8) != 0;
        body = dm_prbody_render(&parts);
        cr_assert_not_null(body);
        cr_assert(strncmp(body, "## Dream Machine Build\n\n**Spec**: Todo API\n", 42) == 0, "%s",
                  body);
        prev = strstr(body, "\n### Files changed\n\n- `docs/dream-specs/todo-api.md` (created, "
                            "spec): Spec: Todo API\n- `src/routes/todos.ts` (created, route): ");
        cr_assert_not_null(prev, "mask %u: %s", mask, body);
        for (size_t i = 0; i < 6; i++) {
            const char *at = strstr(body, headings[i]);
            cr_expect_eq(at != NULL, want[i], "mask %u, %s", mask, headings[i] + 5);
            if (at && i >= 2) {
                /* Results come after the files, in the order verification, validation, review,
                 * cost. */
                cr_expect_gt(at, prev, "mask %u: %s out of order", mask, headings[i] + 5);
                prev = at;
            }
        }
        cr_expect_eq(strstr(body, "drop-table") != NULL, want[4], "findings only with the review");
        cr_expect(strstr(body, "\n---\n\n_Built by dreamd (Dream Machine) from the spec above. "
                               "Review every change before merging._\n") != NULL,
                  "mask %u: footer: %s", mask, body);
        free(body);
    }
    dm_review_verdict_free(&v);
    dm_findings_free(&f);
    dm_validate_warnings_free(&w);
    dm_plan_free(p);
    dm_spec_free(s);
}

Test(prbody, plan_only)
{
    struct dm_spec *s = parse(SPEC_MD);
    struct dm_plan *p = build(s);
    struct dm_prbody parts = {p, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
    char *body = dm_prbody_render(&parts);

    cr_assert_str_eq(body, "## Dream Machine Build\n\n**Spec**: Todo API\n\n### Files changed\n\n"
                           "- `docs/dream-specs/todo-api.md` (created, spec): Spec: Todo API\n"
                           "- `src/routes/todos.ts` (created, route): The /todos routes: GET "
                           "/todos. Exports: default: a Hono app with GET /todos\n\n---\n\n"
                           "_Built by dreamd (Dream Machine) from the spec above. Review every "
                           "change before merging._\n");
    free(body);
    dm_plan_free(p);
    dm_spec_free(s);
}

Test(prbody, validation_list)
{
    struct dm_validate_warnings w;
    struct dm_buf b;

    dm_validate_warnings_init(&w);
    dm_buf_init(&b, 0);
    cr_assert_eq(dm_prbody_validation(&w, &b), 0);
    cr_assert_str_eq(b.data, "None.\n");
    dm_buf_reset(&b);
    warn(&w, "a`b.ts", "");
    warn(&w, "m.sql", "DROP TABLE x;");
    cr_assert_eq(dm_prbody_validation(&w, &b), 0);
    cr_assert_str_eq(b.data, "- `a'b.ts`: empty file\n"
                             "- `m.sql` (line 1): DROP TABLE without IF EXISTS\n");
    dm_buf_free(&b);
    dm_validate_warnings_free(&w);
}

Test(prbody, validation_none)
{
    struct dm_spec *s = parse(SPEC_MD);
    struct dm_plan *p = build(s);
    struct dm_validate_warnings w;
    struct dm_prbody parts = {p, NULL, &w, NULL, NULL, NULL, NULL, NULL, NULL};
    char *body;

    dm_validate_warnings_init(&w);
    body = dm_prbody_render(&parts);
    cr_assert(strstr(body, "\n### Validation\n\nNone.\n\n---\n") != NULL, "%s", body);
    free(body);
    dm_plan_free(p);
    dm_spec_free(s);
}

Test(prbody, overview_and_requirements_are_cut)
{
    struct dm_buf md;
    struct dm_spec *s;
    struct dm_plan *p;
    struct dm_prbody parts = {NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
    char *body;

    dm_buf_init(&md, 0);
    dm_buf_puts(&md, "# T\n\n");
    for (int i = 0; i < 600; i++) {
        dm_buf_puts(&md, "\xc3\xa9"); /* é: 600 characters, 1200 bytes */
    }
    dm_buf_puts(&md, "\n\n## Requirements\n\n");
    for (int i = 1; i <= 12; i++) {
        dm_buf_printf(&md, "- req %d\n", i);
    }
    s = parse(md.data);
    p = build(s);
    /* A plan made before the contract: no covers, so the requirements are listed. */
    for (size_t i = 0; i < p->count; i++) {
        for (size_t k = 0; k < p->items[i].n_covers; k++) {
            free(p->items[i].covers[k]);
        }
        free(p->items[i].covers);
        p->items[i].covers = NULL;
        p->items[i].n_covers = 0;
    }
    parts.plan = p;
    parts.spec = s;
    body = dm_prbody_render(&parts);
    {
        const char *ov = strstr(body, "### Overview\n\n") + strlen("### Overview\n\n");
        const char *end = strstr(ov, "\xe2\x80\xa6\n");
        cr_assert_not_null(end);
        cr_assert_eq(end - ov, 1000); /* 500 characters of 2 bytes, then … */
    }
    cr_assert(strstr(body, "- req 10\n- \xe2\x80\xa6 and 2 more\n"), "%s", body);
    cr_assert_null(strstr(body, "req 11"));
    free(body);
    dm_plan_free(p);
    dm_spec_free(s);
    dm_buf_free(&md);
}

/* The largest job: 601 files, thousands of warnings, every comment and finding the review
 * shows, multi-byte text everywhere. The body still fits GitHub, is valid UTF-8, says where it
 * was cut and keeps its footer. */
Test(prbody, body_is_capped)
{
    static const char *const heads[] = {"API", "UI", "DB"};
    struct dm_buf md;
    struct dm_buf sql;
    struct dm_spec *s;
    struct dm_plan *p;
    struct dm_validate_warnings w;
    struct dm_findings f = DM_FINDINGS_INIT;
    struct dm_review_verdict v;
    struct dm_prbody_cost cost = {123456789, 1234.5678, 999999999, 99999.99};
    struct dm_prbody parts;
    char *body;

    dm_buf_init(&md, 0);
    dm_buf_puts(&md, "# Big\n\n## Requirements\n\n");
    for (int i = 0; i < 10; i++) {
        dm_buf_puts(&md, "- ");
        for (int k = 0; k < 400; k++) {
            dm_buf_puts(&md, "\xf0\x9f\x8d\xb0"); /* 4-byte characters */
        }
        dm_buf_puts(&md, "\n");
    }
    for (int h = 0; h < 3; h++) {
        /* One file per item: a resource, a component, a table each. */
        static const char *const fmt[] = {"- GET /r%d/items lists item number %d of a long list\n",
                                          "- Widget%dView shows item number %d of a long list\n",
                                          "- t%d table with item number %d of a long list\n"};
        dm_buf_printf(&md, "## %s\n\n", heads[h]);
        for (int i = 0; i < 200; i++) {
            dm_buf_printf(&md, fmt[h], i, i);
        }
    }
    s = parse(md.data);
    p = build(s);
    cr_assert_eq(p->count, 601);
    dm_validate_warnings_init(&w);
    dm_buf_init(&sql, 0);
    for (int i = 0; i < 30; i++) {
        dm_buf_puts(&sql, "DROP TABLE t;\n");
    }
    for (size_t i = 0; i < p->count; i++) {
        warn(&w, p->items[i].path, sql.data);
    }
    scan(&f, FINDINGS_PATH, sql.data);
    verdict(&v);
    memset(&parts, 0, sizeof(parts));
    parts.plan = p;
    parts.spec = s;
    parts.validation = &w;
    parts.review = &v;
    parts.findings = &f;
    parts.cost = &cost;
    parts.job_id = "j";
    body = dm_prbody_render(&parts);
    cr_assert_not_null(body);
    cr_assert_lt(strlen(body), DM_PR_BODY_MAX);
    cr_assert_eq(dm_spec_utf8_check(body, strlen(body), NULL), 0);
    cr_assert(strstr(body, "\n### Validation\n\n- `"), "%s", body);
    cr_assert(strstr(body, "\n### Review\n\n**Decision**: pause"));
    cr_assert(strstr(body, "\n### Cost\n\n123456789 tokens, $1234.5678 (budget 999999999 "
                           "tokens, $99999.99)\n"));
    cr_assert(strstr(body, "_(truncated)_"));
    cr_assert(strstr(body, "job `j`. Review every change before merging._\n"));
    free(body);
    dm_review_verdict_free(&v);
    dm_findings_free(&f);
    dm_validate_warnings_free(&w);
    dm_buf_free(&sql);
    dm_plan_free(p);
    dm_spec_free(s);
    dm_buf_free(&md);
}

/* The checklist maps every item of the spec to its files, escapes the spec's text, names at
 * most five files per item and lists at most 50 items per category. */
Test(prbody, checklist_maps_every_item)
{
    struct dm_buf md;
    struct dm_spec *s;
    struct dm_plan *p;
    struct dm_prbody parts = {NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
    char *body;

    dm_buf_init(&md, 0);
    dm_buf_puts(&md, "# T\n\n## Requirements\n\n- Todos are <b>bold</b> | fast\n");
    for (int i = 0; i < 55; i++) {
        dm_buf_printf(&md, "- req %d\n", i);
    }
    dm_buf_puts(&md, "## API\n\n- GET /todos lists todos\n- GET /tags lists tags\n"
                     "## UI\n\n- TodoList shows todos\n## DB\n\n- todos table\n");
    s = parse(md.data);
    p = build(s);
    parts.plan = p;
    parts.spec = s;
    body = dm_prbody_render(&parts);
    cr_assert(strstr(body,
                     "\n### Checklist\n\n**Requirements**\n\n"
                     "- [ ] Todos are bold \\| fast \xe2\x86\x92 `src/routes/todos.ts`, "
                     "`src/components/TodoList.tsx`, `migrations/0001_create_todos.sql`\n"
                     "- [ ] req 0 \xe2\x86\x92 `src/routes/todos.ts`, `src/routes/tags.ts`\n"),
              "%s", body);
    cr_assert(strstr(body,
                     "- [ ] req 48 \xe2\x86\x92 `src/routes/todos.ts`, `src/routes/tags.ts`\n"
                     "- \xe2\x80\xa6 and 6 more\n\n**API routes**\n\n"
                     "- [ ] GET /todos lists todos \xe2\x86\x92 `src/routes/todos.ts`\n"
                     "- [ ] GET /tags lists tags \xe2\x86\x92 `src/routes/tags.ts`\n\n"
                     "**UI components**\n\n"
                     "- [ ] TodoList shows todos \xe2\x86\x92 `src/components/TodoList.tsx`\n\n"
                     "**Database**\n\n"
                     "- [ ] todos table \xe2\x86\x92 `migrations/0001_create_todos.sql`\n\n"
                     "### Files changed\n\n"),
              "%s", body);
    cr_assert_null(strstr(body, "_no file_"));
    free(body);
    /* An item no file covers says so; a file list is cut after five. */
    for (size_t i = 0; i < p->count; i++) {
        for (size_t k = 0; k < p->items[i].n_covers; k++) {
            if (strcmp(p->items[i].covers[k], "GET /tags lists tags") == 0) {
                p->items[i].covers[k][0] = 'X';
            }
        }
    }
    body = dm_prbody_render(&parts);
    cr_assert(strstr(body, "- [ ] GET /tags lists tags \xe2\x86\x92 _no file_\n"), "%s", body);
    free(body);
    dm_plan_free(p);
    dm_spec_free(s);
    dm_buf_free(&md);
}

/* An edit says so, and the verification part is capped like every other. */
Test(prbody, edits_and_verification_cap)
{
    struct dm_spec *s = parse(SPEC_MD);
    struct dm_plan *p = build(s);
    struct dm_prbody parts = {p, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
    struct dm_buf v;
    char *body;

    p->items[1].kind = DM_PLAN_KIND_EDIT;
    free(p->items[1].description);
    p->items[1].description = strdup("Mount `todos` & keep every line");
    dm_buf_init(&v, 0);
    for (int i = 0; i < 2000; i++) {
        dm_buf_printf(&v, "- `src/x%d.ts:%d`: error TS2305\n", i, i);
    }
    parts.verification = v.data;
    body = dm_prbody_render(&parts);
    cr_assert(strstr(body, "- `src/routes/todos.ts` (edited): Mount `todos` &amp; keep every "
                           "line. Exports: default: a Hono app with GET /todos\n"),
              "%s", body);
    cr_assert(strstr(body, "\n### Verification\n\n- `src/x0.ts:0`: error TS2305\n"), "%s", body);
    cr_assert(strstr(body, "_(truncated)_"));
    cr_assert_lt(strlen(body), 8 * 1024 + 2048);
    free(body);
    dm_buf_free(&v);
    dm_plan_free(p);
    dm_spec_free(s);
}

Test(prbody, spec_link_only_when_it_is_a_safe_url)
{
    struct dm_spec *s = parse(SPEC_MD);
    struct dm_plan *p = build(s);
    struct dm_prbody parts = {p, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
    char *body;

    parts.spec_url = "https://specs.example.com/todo-api?v=2";
    body = dm_prbody_render(&parts);
    cr_assert(strstr(body, "**Spec**: Todo API\n**Spec link**: <https://specs.example.com/"
                           "todo-api?v=2>\n"),
              "%s", body);
    free(body);
    /* Anything that could end the autolink or inject Markdown is left out. */
    parts.spec_url = "https://x/a>[click](javascript:alert(1))";
    body = dm_prbody_render(&parts);
    cr_assert_null(strstr(body, "Spec link"), "%s", body);
    free(body);
    parts.spec_url = "javascript:alert(1)";
    body = dm_prbody_render(&parts);
    cr_assert_null(strstr(body, "Spec link"), "%s", body);
    free(body);
    dm_plan_free(p);
    dm_spec_free(s);
}

Test(prbody, status_description_is_one_short_line)
{
    char *d = dm_prbody_status("- **Type-check** (`tsc`): passed\n- Migrations: 1 replayed\n", 2);
    cr_assert_str_eq(d, "Type-check (tsc): passed; Migrations: 1 replayed; 2 validation warnings");
    free(d);
    d = dm_prbody_status(NULL, 1);
    cr_assert_str_eq(d, "checks passed; 1 validation warning");
    free(d);
    /* Each line up to its first "; ": the gist, not the details. */
    d = dm_prbody_status("- Type-check (tsc 7.0.2): passed, 2 files; 4 package(s) checked as "
                         "untyped\n- Migrations: 0001_create_todos.sql replayed\n",
                         0);
    cr_assert_str_eq(d, "Type-check (tsc 7.0.2): passed, 2 files; Migrations: "
                        "0001_create_todos.sql replayed; 0 validation warnings");
    free(d);
    {
        char longv[600];
        memset(longv, 'x', sizeof(longv) - 1);
        longv[sizeof(longv) - 1] = '\0';
        d = dm_prbody_status(longv, 12);
        cr_assert_leq(strlen(d), 140, "GitHub's cap: %zu", strlen(d));
        cr_assert(strstr(d, "; 12 validation warnings"), "the count always shows: %s", d);
        free(d);
    }
}

Test(prbody, a_job_without_a_dollar_limit_says_so_instead_of_a_zero_budget)
{
    struct dm_spec *s = parse(SPEC_MD);
    struct dm_plan *p = build(s);
    struct dm_prbody_cost cost = {1200, 0.0123, 100000, 0};
    struct dm_prbody parts = {p, s, NULL, NULL, NULL, &cost, "job-1", NULL, NULL};
    char *body;

    body = dm_prbody_render(&parts);
    cr_assert_not_null(body);
    cr_assert_not_null(strstr(body, "1200 tokens, $0.0123 (budget 100000 tokens, no dollar limit)"),
                       "%s", body);
    cr_assert_null(strstr(body, "$0.00)"), "%s", body);
    free(body);
    dm_plan_free(p);
    dm_spec_free(s);
}
