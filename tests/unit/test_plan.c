/*
 * Unit tests for plan: slugs, git ref names, plan building (paths, kinds, de-duplication,
 * fallbacks), the alternative branch, plan JSON both ways and the PR body (layout and caps).
 * The corpus' exact plans are checked in test_spec.c; here every corpus plan also makes the
 * JSON round trip.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dream/core/buf.h"
#include "dream/core/refname.h"
#include "dream/domain/plan.h"
#include "dream/domain/prbody.h"
#include "dream/domain/spec.h"

static struct dm_spec *parse(const char *md)
{
    struct dm_spec *s = NULL;
    struct dm_error err;
    int rc = dm_spec_parse(&s, md, strlen(md), NULL, &err);
    cr_assert_eq(rc, 0, "%s", err.msg);
    return s;
}

static struct dm_plan *build(const struct dm_spec *s, const char *prefix)
{
    struct dm_plan *p = NULL;
    struct dm_error err;
    int rc = dm_plan_build(&p, s, prefix, NULL, &err);
    cr_assert_eq(rc, 0, "%s", err.msg);
    return p;
}

Test(plan_slug, cases)
{
    static const struct {
        const char *in;
        const char *out;
    } cases[] = {
        {"Todo API", "todo-api"},
        {"  --Hello__World--  ", "hello-world"},
        {"GET /todos/:id", "get-todos-id"},
        {"ABC123", "abc123"},
        {"", ""},
        {"!!!", ""},
        {"\xe6\x97\xa5\xe6\x9c\xac", ""}, /* 日本 */
        {"Caf\xc3\xa9 Menu", "caf-menu"}, /* é is outside [a-z0-9] */
        {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}, /* cut to 50 */
        {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa b", /* 49 a: the cut ends in '-' */
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"},
        {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa bc", /* 48 a + '-' + b = 50 */
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-b"},
    };
    char out[DM_SLUG_MAX + 1];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int n = dm_slugify(out, sizeof(out), cases[i].in);
        cr_assert_str_eq(out, cases[i].out, "case %zu", i);
        cr_assert_eq(n, (int)strlen(cases[i].out));
    }
    cr_assert_eq(dm_slugify(out, DM_SLUG_MAX, "x"), DM_ERR_INVALID);
}

Test(plan_ref, valid_and_invalid_names)
{
    static const char *const good[] = {"dream/todo-api",
                                       "main",
                                       "feature/a.b",
                                       "a@b",
                                       "x/y/z",
                                       "\xc3\xbc"
                                       "ber",
                                       "a-",
                                       "release/1.2.3"};
    static const char *const bad[] = {"",     "@",    "HEAD", "-x",     "/x",     "x/",
                                      "x//y", "a..b", "x.",   "x.lock", "a/.hid", ".a",
                                      "a b",  "a~b",  "a^b",  "a:b",    "a?b",    "a*b",
                                      "a[b",  "a\\b", "a@{b", "a\x01",  "a\x7f",  "a/b.lock/c"};
    char name[300];

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        cr_assert(dm_refname_valid(good[i]), "%s should be valid", good[i]);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_assert_not(dm_refname_valid(bad[i]), "\"%s\" should be invalid", bad[i]);
    }
    cr_assert_not(dm_refname_valid(NULL));
    memset(name, 'a', 255);
    name[255] = '\0';
    cr_assert(dm_refname_valid(name));
    name[255] = 'a';
    name[256] = '\0';
    cr_assert_not(dm_refname_valid(name));
}

Test(plan_build, prefixes)
{
    struct dm_spec *s = parse("# Todo API\n");
    struct dm_plan *p;
    struct dm_error err;

    p = build(s, "");
    cr_assert_str_eq(p->branch, "todo-api");
    dm_plan_free(p);
    p = build(s, "feature/x-");
    cr_assert_str_eq(p->branch, "feature/x-todo-api");
    dm_plan_free(p);
    p = build(s, NULL);
    cr_assert_str_eq(p->branch, "dream/todo-api");
    cr_assert_str_eq(p->pr_title, "[Dream] Todo API");
    cr_assert_eq(p->count, 1);
    cr_assert_eq(p->items[0].kind, DM_PLAN_KIND_SPEC);
    dm_plan_free(p);
    static const char *const bad[] = {"bad..prefix/", "-x/", "a b/", "x.lock/", "/"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        p = (struct dm_plan *)1;
        dm_error_clear(&err);
        cr_assert_eq(dm_plan_build(&p, s, bad[i], NULL, &err), DM_ERR_INVALID, "%s", bad[i]);
        cr_assert_null(p);
        cr_assert(strstr(err.msg, "not a valid git branch name"), "%s", err.msg);
    }
    dm_spec_free(s);
}

Test(plan_build, dedupe_item_n_and_empty_title)
{
    struct dm_spec *s = parse("# \xe6\x97\xa5\xe6\x9c\xac\n"
                              "## API\n- !!!\n- GET /todos\n- get todos!\n- ???\n- GET /todos\n"
                              "## UI\n- ...\n## DB\n- ...\n- todos\n## Routes\n- GET /todos\n");
    struct dm_plan *p = build(s, NULL);
    static const char *const paths[] = {
        "docs/dream-specs/spec.md", "src/routes/item-1.ts",      "src/routes/get-todos.ts",
        "src/routes/item-4.ts",     "src/components/item-1.tsx", "migrations/item-1.sql",
        "migrations/todos.sql",
    };
    static const enum dm_plan_kind kinds[] = {
        DM_PLAN_KIND_SPEC,      DM_PLAN_KIND_ROUTE,     DM_PLAN_KIND_ROUTE,    DM_PLAN_KIND_ROUTE,
        DM_PLAN_KIND_COMPONENT, DM_PLAN_KIND_MIGRATION, DM_PLAN_KIND_MIGRATION};

    cr_assert_str_eq(p->branch, "dream/spec");
    cr_assert_str_eq(p->title, "\xe6\x97\xa5\xe6\x9c\xac");
    cr_assert_eq(p->count, 7);
    for (size_t i = 0; i < p->count; i++) {
        cr_assert_str_eq(p->items[i].path, paths[i], "item %zu", i);
        cr_assert_eq(p->items[i].kind, kinds[i], "item %zu", i);
    }
    cr_assert_str_eq(p->items[0].description, "Spec: \xe6\x97\xa5\xe6\x9c\xac");
    cr_assert_str_eq(p->items[2].description, "GET /todos"); /* the first one wins */
    cr_assert_str_eq(p->items[3].description, "???");
    dm_plan_free(p);
    dm_spec_free(s);
}

Test(plan_build, long_title_slug_is_cut)
{
    struct dm_spec *s = parse("# A Very Large Specification Document For Stress Testing The "
                              "Parser\n");
    struct dm_plan *p = build(s, NULL);

    /* a-very-large-specification-document-for-stress-tes (50) */
    cr_assert_str_eq(p->branch, "dream/a-very-large-specification-document-for-stress-tes");
    cr_assert_str_eq(p->items[0].path,
                     "docs/dream-specs/a-very-large-specification-document-for-stress-tes.md");
    dm_plan_free(p);
    dm_spec_free(s);
}

Test(plan_branch, alternative)
{
    struct dm_spec *s = parse("# Todo API\n");
    struct dm_plan *p = build(s, NULL);
    struct dm_error err;
    char *b = NULL;

    cr_assert_eq(dm_plan_branch_alt(&b, p, "3F2A-9C1B-77", &err), 0);
    cr_assert_str_eq(b, "dream/todo-api-3f2a-9c1");
    free(b);
    cr_assert_eq(dm_plan_branch_alt(&b, p, "abcdefg-hij", &err), 0);
    cr_assert_str_eq(b, "dream/todo-api-abcdefg");
    free(b);
    cr_assert_eq(dm_plan_branch_alt(&b, p, "job_42", &err), 0);
    cr_assert_str_eq(b, "dream/todo-api-job-42");
    free(b);
    cr_assert_eq(dm_plan_branch_alt(&b, p, "!!!", &err), 0);
    cr_assert_str_eq(b, "dream/todo-api-job");
    free(b);
    cr_assert_eq(dm_plan_branch_alt(&b, p, NULL, &err), 0);
    cr_assert_str_eq(b, "dream/todo-api-job");
    free(b);
    dm_plan_free(p);
    dm_spec_free(s);
}

Test(plan_json, round_trip_every_corpus_plan)
{
    static const char *const names[] = {
        "01-basic",
        "02-crlf",
        "03-out-of-scope",
        "04-prose-lines",
        "05-code-fences",
        "06-nested-lists",
        "07-duplicate-headings",
        "08-no-headings",
        "09-unicode",
        "10-setext",
        "11-huge",
        "13-deeply-nested",
        "16-non-goals",
        "17-title-rules",
    };
    const char *src = getenv("DREAM_SOURCE_DIR");

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        struct dm_buf path;
        struct dm_buf md;
        struct dm_spec *s = NULL;
        struct dm_plan *p = NULL;
        struct dm_plan *q = NULL;
        struct dm_error err;
        char chunk[4096];
        size_t n;
        FILE *f;

        dm_buf_init(&path, 0);
        dm_buf_init(&md, 0);
        if (src && *src) {
            dm_buf_printf(&path, "%s/tests/data/specs/%s.md", src, names[i]);
        } else {
            const char *slash = strrchr(__FILE__, '/');
            dm_buf_printf(&path, "%.*s/../data/specs/%s.md", (int)(slash - __FILE__), __FILE__,
                          names[i]);
        }
        f = fopen(path.data, "rb");
        cr_assert_not_null(f, "%s", path.data);
        while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
            dm_buf_append(&md, chunk, n);
        }
        fclose(f);
        cr_assert_eq(dm_spec_parse(&s, md.data, md.len, NULL, &err), 0, "%s", err.msg);
        p = build(s, NULL);
        char *j1 = dm_plan_to_json(p);
        cr_assert_eq(dm_plan_from_json(&q, j1, &err), 0, "%s: %s", names[i], err.msg);
        char *j2 = dm_plan_to_json(q);
        cr_assert_str_eq(j1, j2);
        cr_assert_eq(q->count, p->count);
        for (size_t k = 0; k < p->count; k++) {
            cr_assert_str_eq(q->items[k].path, p->items[k].path);
            cr_assert_str_eq(q->items[k].description, p->items[k].description);
            cr_assert_eq(q->items[k].kind, p->items[k].kind);
        }
        char *body = dm_prbody_render(&(struct dm_prbody){.plan = p, .spec = s});
        cr_assert_lt(strlen(body), DM_PR_BODY_MAX);
        free(body);
        free(j1);
        free(j2);
        dm_plan_free(p);
        dm_plan_free(q);
        dm_spec_free(s);
        dm_buf_free(&path);
        dm_buf_free(&md);
    }
}

Test(plan_json, exact_shape)
{
    struct dm_spec *s = parse("# Todo \"API\"\n## API\n- GET /a\n## DB\n- t\n");
    struct dm_plan *p = build(s, NULL);
    char *j = dm_plan_to_json(p);

    cr_assert_str_eq(j, "{\"title\":\"Todo \\\"API\\\"\",\"branch\":\"dream/todo-api\","
                        "\"prTitle\":\"[Dream] Todo \\\"API\\\"\",\"items\":["
                        "{\"path\":\"docs/dream-specs/todo-api.md\",\"kind\":\"spec\","
                        "\"description\":\"Spec: Todo \\\"API\\\"\"},"
                        "{\"path\":\"src/routes/get-a.ts\",\"kind\":\"route\","
                        "\"description\":\"GET /a\"},"
                        "{\"path\":\"migrations/t.sql\",\"kind\":\"migration\","
                        "\"description\":\"t\"}]}");
    free(j);
    dm_plan_free(p);
    dm_spec_free(s);
}

Test(plan_json, accepts_file_kind_and_ignores_unknown_members)
{
    struct dm_plan *p = NULL;
    struct dm_error err;

    cr_assert_eq(dm_plan_from_json(&p,
                                   "{\"title\":\"T\",\"branch\":\"dream/t\",\"prTitle\":\"[Dream] "
                                   "T\",\"extra\":1,\"items\":[{\"path\":\"a/b.c\",\"kind\":"
                                   "\"file\",\"description\":\"d\",\"x\":null}]}",
                                   &err),
                 0, "%s", err.msg);
    cr_assert_eq(p->count, 1);
    cr_assert_eq(p->items[0].kind, DM_PLAN_KIND_FILE);
    cr_assert_str_eq(p->items[0].path, "a/b.c");
    dm_plan_free(p);
}

Test(plan_json, rejects_bad_plans)
{
    static const struct {
        const char *json;
        int rc;
        const char *msg;
    } cases[] = {
        {"not json", DM_ERR_INVALID, "not a JSON object"},
        {"[]", DM_ERR_INVALID, "not a JSON object"},
        {"{\"branch\":\"b\",\"prTitle\":\"p\",\"items\":[]}", DM_ERR_INVALID, "title must be"},
        {"{\"title\":1,\"branch\":\"b\",\"prTitle\":\"p\",\"items\":[]}", DM_ERR_INVALID,
         "title must be"},
        {"{\"title\":\"t\",\"branch\":\"a..b\",\"prTitle\":\"p\",\"items\":[]}", DM_ERR_INVALID,
         "branch is not a valid"},
        {"{\"title\":\"t\",\"branch\":\"b\",\"prTitle\":\"p\",\"items\":[]}", DM_ERR_INVALID,
         "non-empty array"},
        {"{\"title\":\"t\",\"branch\":\"b\",\"prTitle\":\"p\",\"items\":{}}", DM_ERR_INVALID,
         "non-empty array"},
        {"{\"title\":\"t\",\"branch\":\"b\",\"prTitle\":\"p\",\"items\":[1]}", DM_ERR_INVALID,
         "items[0] must be an object"},
        {"{\"title\":\"t\",\"branch\":\"b\",\"prTitle\":\"p\",\"items\":[{\"path\":\"a\","
         "\"kind\":\"nope\",\"description\":\"d\"}]}",
         DM_ERR_INVALID, "items[0].kind \"nope\" is unknown"},
        {"{\"title\":\"t\",\"branch\":\"b\",\"prTitle\":\"p\",\"items\":[{\"path\":\"a\","
         "\"kind\":\"file\"}]}",
         DM_ERR_INVALID, "items[0].description must be"},
        {"{\"title\":\"t\",\"branch\":\"b\",\"prTitle\":\"p\",\"items\":[{\"path\":\"../a\","
         "\"kind\":\"file\",\"description\":\"d\"}]}",
         DM_ERR_INVALID, "items[0].path is not a safe"},
        {"{\"title\":\"t\",\"branch\":\"b\",\"prTitle\":\"p\",\"items\":[{\"path\":\"/etc/x\","
         "\"kind\":\"file\",\"description\":\"d\"}]}",
         DM_ERR_INVALID, "items[0].path is not a safe"},
        {"{\"title\":\"t\",\"branch\":\"b\",\"prTitle\":\"p\",\"items\":[{\"path\":\"a//b\","
         "\"kind\":\"file\",\"description\":\"d\"}]}",
         DM_ERR_INVALID, "items[0].path is not a safe"},
        {"{\"title\":\"t\",\"branch\":\"b\",\"prTitle\":\"p\",\"items\":[{\"path\":\"a/./b\","
         "\"kind\":\"file\",\"description\":\"d\"}]}",
         DM_ERR_INVALID, "items[0].path is not a safe"},
        {"{\"title\":\"t\",\"branch\":\"b\",\"prTitle\":\"p\",\"items\":[{\"path\":\"a\\\\b\","
         "\"kind\":\"file\",\"description\":\"d\"}]}",
         DM_ERR_INVALID, "items[0].path is not a safe"},
        {"{\"title\":\"t\",\"branch\":\"b\",\"prTitle\":\"p\",\"items\":[{\"path\":\"\","
         "\"kind\":\"file\",\"description\":\"d\"}]}",
         DM_ERR_INVALID, "items[0].path is not a safe"},
        {"{\"title\":\"t\",\"branch\":\"b\",\"prTitle\":\"p\",\"items\":[{\"path\":\"a\","
         "\"kind\":\"file\",\"description\":\"d\"},{\"path\":\"a\",\"kind\":\"route\","
         "\"description\":\"e\"}]}",
         DM_ERR_INVALID, "items[1].path repeats items[0]"},
    };
    struct dm_error err;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct dm_plan *p = (struct dm_plan *)1;
        dm_error_clear(&err);
        cr_assert_eq(dm_plan_from_json(&p, cases[i].json, &err), cases[i].rc, "case %zu: %s", i,
                     err.msg);
        cr_assert_null(p);
        cr_assert(strstr(err.msg, cases[i].msg), "case %zu: %s", i, err.msg);
    }
}

Test(plan_json, item_count_limit)
{
    struct dm_buf b;
    struct dm_plan *p = NULL;
    struct dm_error err;

    dm_buf_init(&b, 0);
    dm_buf_puts(&b, "{\"title\":\"t\",\"branch\":\"b\",\"prTitle\":\"p\",\"items\":[");
    for (int i = 0; i <= DM_PLAN_MAX_ITEMS; i++) {
        dm_buf_printf(&b, "%s{\"path\":\"f%d\",\"kind\":\"file\",\"description\":\"\"}",
                      i ? "," : "", i);
    }
    dm_buf_puts(&b, "]}");
    cr_assert_eq(dm_plan_from_json(&p, b.data, &err), DM_ERR_LIMIT);
    cr_assert(strstr(err.msg, "1025 items"), "%s", err.msg);
    dm_buf_free(&b);
}

Test(plan_kind, names)
{
    enum dm_plan_kind k;
    static const char *const names[] = {"spec", "route", "component", "migration", "file"};

    for (int i = 0; i < 5; i++) {
        cr_assert_str_eq(dm_plan_kind_name((enum dm_plan_kind)i), names[i]);
        cr_assert_eq(dm_plan_kind_parse(&k, names[i]), 0);
        cr_assert_eq((int)k, i);
    }
    cr_assert_eq(dm_plan_kind_parse(&k, "Spec"), DM_ERR_INVALID);
    cr_assert_eq(dm_plan_kind_parse(&k, NULL), DM_ERR_INVALID);
}
