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
#include "dream/core/text.h"
#include "dream/domain/plan.h"
#include "dream/domain/prbody.h"
#include "dream/domain/repo.h"
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
    /* Routes group by resource (three GET /todos items make one module); an item with no
     * METHOD /path gets a name from its first words, or item-N. */
    static const char *const paths[] = {
        "docs/dream-specs/spec.md",   "src/routes/item-1.ts",
        "src/routes/todos.ts",        "src/routes/get-todos.ts",
        "src/routes/item-4.ts",       "src/components/Item1.tsx",
        "migrations/0001_item_1.sql", "migrations/0002_create_todos.sql",
    };
    static const enum dm_plan_kind kinds[] = {
        DM_PLAN_KIND_SPEC,  DM_PLAN_KIND_ROUTE,     DM_PLAN_KIND_ROUTE,     DM_PLAN_KIND_ROUTE,
        DM_PLAN_KIND_ROUTE, DM_PLAN_KIND_COMPONENT, DM_PLAN_KIND_MIGRATION, DM_PLAN_KIND_MIGRATION};

    cr_assert_str_eq(p->branch, "dream/spec");
    cr_assert_str_eq(p->title, "\xe6\x97\xa5\xe6\x9c\xac");
    cr_assert_eq(p->count, 8, "%zu", p->count);
    for (size_t i = 0; i < p->count; i++) {
        cr_assert_str_eq(p->items[i].path, paths[i], "item %zu: %s", i, p->items[i].path);
        cr_assert_eq(p->items[i].kind, kinds[i], "item %zu", i);
    }
    cr_assert_str_eq(p->items[0].description, "Spec: \xe6\x97\xa5\xe6\x9c\xac");
    cr_assert_str_eq(p->items[2].description,
                     "The /todos routes: GET /todos; GET /todos; GET /todos");
    cr_assert_eq(p->items[2].n_covers, 1); /* the same text, covered once */
    cr_assert_str_eq(p->items[4].description, "The /item-4 routes: ???");
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
                        "{\"path\":\"src/routes/a.ts\",\"kind\":\"route\","
                        "\"description\":\"The /a routes: GET /a\","
                        "\"exports\":\"default: a Hono app with GET /a\","
                        "\"usage\":\"mounted at /a by the app's entry\",\"covers\":[\"GET /a\"]},"
                        "{\"path\":\"migrations/0001_create_t.sql\",\"kind\":\"migration\","
                        "\"description\":\"Migration create_t: t\","
                        "\"usage\":\"applied in order after the existing migrations\","
                        "\"covers\":[\"t\"]}]}");
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
    static const char *const names[] = {"spec", "route", "component", "migration",
                                        "file", "test",  "edit"};

    for (int i = 0; i < 7; i++) {
        cr_assert_str_eq(dm_plan_kind_name((enum dm_plan_kind)i), names[i]);
        cr_assert_eq(dm_plan_kind_parse(&k, names[i]), 0);
        cr_assert_eq((int)k, i);
    }
    cr_assert_eq(dm_plan_kind_parse(&k, "Spec"), DM_ERR_INVALID);
    cr_assert_eq(dm_plan_kind_parse(&k, NULL), DM_ERR_INVALID);
}

/* ---- plans in the repository's conventions ---------------------------------------------- */

#define TODO_SPEC                                                                                  \
    "# Todo API\n\nA small service.\n\n"                                                           \
    "## Requirements\n- Users can create a todo with a title\n"                                    \
    "- Users can list their todos, newest first\n- Users can mark a todo as done\n"                \
    "- Everything is fast\n"                                                                       \
    "## API\n- GET /todos lists the user's todos\n- POST /todos creates a todo\n"                  \
    "- PATCH /todos/:id marks a todo as done\n"                                                    \
    "## Database\n- todos table with id, user_id, title, done, created_at\n"                       \
    "## UI\n- TodoList shows the todos with a checkbox each\n"

/* A repository with the given tree (NULL-terminated) and an empty stack. */
static struct dm_repo *repo_of(const char *const *tree)
{
    struct dm_repo *r = calloc(1, sizeof(*r));
    size_t n = 0;

    while (tree[n]) {
        n++;
    }
    r->tree = calloc(n + 1, sizeof(*r->tree));
    for (size_t i = 0; i < n; i++) {
        r->tree[i].path = strdup(tree[i]);
        r->tree[i].size = 10;
    }
    r->n_tree = n;
    return r;
}

/* The Hono + React + SQL fixture: src/index.ts, a barrel, 0001_init.sql, Vitest. */
static struct dm_repo *hono_repo(void)
{
    static const char *const tree[] = {"package.json",
                                       "tsconfig.json",
                                       "src/index.ts",
                                       "src/routes/users.ts",
                                       "src/components/index.ts",
                                       "src/components/UserCard.tsx",
                                       "migrations/0001_init.sql",
                                       NULL};
    struct dm_repo *r = repo_of(tree);

    r->stack.http = DM_REPO_HTTP_HONO;
    r->stack.ui = DM_REPO_UI_REACT;
    r->stack.db = DM_REPO_DB_SQL;
    r->stack.test = DM_REPO_TEST_VITEST;
    r->stack.typescript = 1;
    r->stack.entry = strdup("src/index.ts");
    r->stack.barrel = strdup("src/components/index.ts");
    r->stack.routes_dir = strdup("src/routes/");
    r->stack.components_dir = strdup("src/components/");
    r->stack.migrations_dir = strdup("migrations/");
    r->stack.migration_width = 4;
    r->stack.last_migration = 1;
    return r;
}

static struct dm_plan *build_repo(const struct dm_spec *s, const struct dm_repo *r)
{
    struct dm_plan *p = NULL;
    struct dm_error err;
    int rc = dm_plan_build(&p, s, NULL, r, &err);
    cr_assert_eq(rc, 0, "%s", err.msg);
    return p;
}

static const struct dm_plan_item *item_at(const struct dm_plan *p, const char *path)
{
    for (size_t i = 0; i < p->count; i++) {
        if (strcmp(p->items[i].path, path) == 0) {
            return &p->items[i];
        }
    }
    cr_assert_fail("no item %s in the plan", path);
    return NULL;
}

static int covers(const struct dm_plan_item *it, const char *text)
{
    for (size_t i = 0; i < it->n_covers; i++) {
        if (strcmp(it->covers[i], text) == 0) {
            return 1;
        }
    }
    return 0;
}

Test(plan_repo, hono_fixture_by_resource_with_edits)
{
    struct dm_spec *s = parse(TODO_SPEC);
    struct dm_repo *r = hono_repo();
    struct dm_plan *p = build_repo(s, r);
    static const char *const paths[] = {
        "docs/dream-specs/todo-api.md", "src/routes/todos.ts",
        "src/components/TodoList.tsx",  "migrations/0002_create_todos.sql",
        "src/routes/todos.test.ts",     "src/index.ts",
        "src/components/index.ts"};
    static const enum dm_plan_kind kinds[] = {
        DM_PLAN_KIND_SPEC, DM_PLAN_KIND_ROUTE, DM_PLAN_KIND_COMPONENT, DM_PLAN_KIND_MIGRATION,
        DM_PLAN_KIND_TEST, DM_PLAN_KIND_EDIT,  DM_PLAN_KIND_EDIT};
    const struct dm_plan_item *it;

    cr_assert_eq(p->count, 7);
    for (size_t i = 0; i < p->count; i++) {
        cr_assert_str_eq(p->items[i].path, paths[i], "item %zu", i);
        cr_assert_eq(p->items[i].kind, kinds[i], "item %zu", i);
    }
    cr_assert_str_eq(p->stack, "Hono + React + SQL migrations (TypeScript, Vitest)");
    it = &p->items[1];
    cr_assert_str_eq(it->description,
                     "The /todos routes: GET /todos lists the user's todos; POST /todos creates a "
                     "todo; PATCH /todos/:id marks a todo as done");
    cr_assert_str_eq(it->exports, "default: a Hono app with GET /todos, POST /todos, "
                                  "PATCH /todos/:id");
    cr_assert_str_eq(it->usage, "mounted at /todos by src/index.ts");
    cr_assert(covers(it, "GET /todos lists the user's todos"));
    cr_assert(covers(it, "POST /todos creates a todo"));
    cr_assert(covers(it, "PATCH /todos/:id marks a todo as done"));
    it = &p->items[2];
    cr_assert_str_eq(it->description,
                     "The TodoList component: TodoList shows the todos with a checkbox each");
    cr_assert_str_eq(it->exports, "named export TodoList (React component)");
    cr_assert_str_eq(it->usage, "re-exported by src/components/index.ts");
    it = &p->items[3];
    cr_assert_str_eq(it->description, "Migration create_todos: todos table with id, user_id, "
                                      "title, done, created_at");
    cr_assert_null(it->exports);
    cr_assert_str_eq(it->usage, "applied in order after the existing migrations");
    it = &p->items[4];
    cr_assert_str_eq(it->description,
                     "Tests of src/routes/todos.ts with Vitest: each endpoint's success and error "
                     "cases (GET /todos, POST /todos, PATCH /todos/:id)");
    cr_assert_str_eq(it->usage, "run by Vitest");
    cr_assert_eq(it->n_covers, 0);
    it = &p->items[5];
    cr_assert_str_eq(it->description,
                     "Mount the new route modules and keep every existing line: import todosRoutes "
                     "from './routes/todos' and app.route('/todos', todosRoutes)");
    it = &p->items[6];
    cr_assert_str_eq(it->description,
                     "Re-export the new components and keep every existing export: export { "
                     "TodoList } from './TodoList'");
    /* Requirements go to the files whose items share their words; one sharing none goes to
     * every route module. */
    cr_assert(covers(&p->items[1], "Users can create a todo with a title"));
    cr_assert(covers(&p->items[3], "Users can create a todo with a title"));
    cr_assert(covers(&p->items[1], "Everything is fast"));
    cr_assert_not(covers(&p->items[2], "Everything is fast"));
    cr_assert_not(covers(&p->items[3], "Everything is fast"));
    dm_plan_free(p);
    dm_repo_free(r);
    dm_spec_free(s);
}

Test(plan_repo, every_spec_item_is_covered)
{
    struct dm_spec *s =
        parse(TODO_SPEC "- FilterBar filters them\n## Routes\n- DELETE /api/tags/:id "
                        "removes a tag\n- health check endpoint\n");
    struct dm_repo *r = hono_repo();
    struct dm_plan *p = build_repo(s, r);
    const struct dm_spec_list *lists[] = {&s->requirements, &s->api_routes, &s->ui_components,
                                          &s->db_changes};

    for (size_t l = 0; l < 4; l++) {
        for (size_t i = 0; i < lists[l]->count; i++) {
            int found = 0;
            for (size_t k = 0; k < p->count && !found; k++) {
                found = covers(&p->items[k], lists[l]->items[i].text);
            }
            cr_assert(found, "%s is covered by no file", lists[l]->items[i].text);
        }
    }
    /* /api/tags → tags.ts mounted at /api/tags; a sentence without a route gets a short name. */
    cr_assert_str_eq(item_at(p, "src/routes/tags.ts")->usage,
                     "mounted at /api/tags by src/index.ts");
    cr_assert_eq(item_at(p, "src/routes/health-check-endpoint.ts")->kind, DM_PLAN_KIND_ROUTE);
    cr_assert_eq(item_at(p, "src/components/FilterBar.tsx")->kind, DM_PLAN_KIND_COMPONENT);
    cr_assert(strstr(item_at(p, "src/index.ts")->description,
                     "import tagsRoutes from './routes/tags' and app.route('/api/tags', "
                     "tagsRoutes)"));
    dm_plan_free(p);
    dm_repo_free(r);
    dm_spec_free(s);
}

Test(plan_repo, express_knex_kebab_js_tests_apart)
{
    static const char *const tree[] = {"package.json",
                                       "app.js",
                                       "routes/users.js",
                                       "client/components/user-card.jsx",
                                       "db/migrations/20240101120000_init.js",
                                       "test/users.test.js",
                                       NULL};
    struct dm_spec *s = parse(TODO_SPEC);
    struct dm_repo *r = repo_of(tree);
    struct dm_plan *p;
    const struct dm_plan_item *it;

    r->stack.http = DM_REPO_HTTP_EXPRESS;
    r->stack.ui = DM_REPO_UI_REACT;
    r->stack.db = DM_REPO_DB_KNEX;
    r->stack.test = DM_REPO_TEST_JEST;
    r->stack.entry = strdup("app.js");
    r->stack.routes_dir = strdup("routes/");
    r->stack.components_dir = strdup("client/components/");
    r->stack.migrations_dir = strdup("db/migrations/");
    r->stack.tests_dir = strdup("test/");
    r->stack.component_case = DM_REPO_CASE_KEBAB;
    r->stack.migration_scheme = DM_REPO_MIG_TIMESTAMP;
    r->stack.migration_width = 14;
    r->stack.last_migration = 20240101120000ULL;
    p = build_repo(s, r);
    cr_assert_eq(p->count, 6);
    cr_assert_str_eq(p->items[1].path, "routes/todos.js");
    cr_assert_str_eq(p->items[2].path, "client/components/todo-list.jsx");
    cr_assert_str_eq(p->items[3].path, "db/migrations/20240101120001_create_todos.js");
    cr_assert_str_eq(p->items[4].path, "test/todos.test.js");
    cr_assert_eq(p->items[4].kind, DM_PLAN_KIND_TEST);
    cr_assert_str_eq(p->items[5].path, "app.js");
    cr_assert_eq(p->items[5].kind, DM_PLAN_KIND_EDIT);
    it = &p->items[1];
    cr_assert_str_eq(it->exports, "default: an express.Router() with GET /todos, POST /todos, "
                                  "PATCH /todos/:id");
    cr_assert_str_eq(it->usage, "app.use('/todos', ...) in app.js");
    cr_assert_str_eq(p->items[3].exports, "up(knex) and down(knex), as Knex migrations do");
    cr_assert(strstr(p->items[5].description,
                     "import todosRoutes from './routes/todos' and app.use('/todos', todosRoutes)"),
              "%s", p->items[5].description);
    cr_assert_str_eq(p->stack, "Express + React + Knex (JavaScript, Jest)");
    dm_plan_free(p);
    dm_repo_free(r);
    dm_spec_free(s);
}

Test(plan_repo, no_repo_gives_defaults_and_no_edits)
{
    struct dm_spec *s = parse(TODO_SPEC);
    struct dm_plan *p = build(s, NULL);
    static const char *const paths[] = {"docs/dream-specs/todo-api.md", "src/routes/todos.ts",
                                        "src/components/TodoList.tsx",
                                        "migrations/0001_create_todos.sql"};

    cr_assert_eq(p->count, 4);
    for (size_t i = 0; i < p->count; i++) {
        cr_assert_str_eq(p->items[i].path, paths[i], "item %zu", i);
    }
    cr_assert_null(p->stack);
    cr_assert_str_eq(p->items[1].usage, "mounted at /todos by the app's entry");
    cr_assert_str_eq(p->items[2].usage, "imported by the pages that show it");
    dm_plan_free(p);
    dm_spec_free(s);
}

Test(plan_repo, never_an_edit_of_a_missing_file_and_existing_files_are_edits)
{
    static const char *const tree[] = {"src/routes/todos.ts", "README.md", NULL};
    struct dm_spec *s = parse(TODO_SPEC);
    struct dm_repo *r = repo_of(tree);
    struct dm_plan *p;

    /* The stack names an entry and a barrel that the tree does not have. */
    r->stack.http = DM_REPO_HTTP_HONO;
    r->stack.typescript = 1;
    r->stack.entry = strdup("src/index.ts");
    r->stack.barrel = strdup("src/components/index.ts");
    p = build_repo(s, r);
    for (size_t i = 0; i < p->count; i++) {
        if (p->items[i].kind == DM_PLAN_KIND_EDIT) {
            cr_assert(dm_repo_has(r, p->items[i].path), "edit of %s", p->items[i].path);
        }
    }
    /* The route module exists: it is edited, not overwritten, and needs no mounting. */
    cr_assert_eq(item_at(p, "src/routes/todos.ts")->kind, DM_PLAN_KIND_EDIT);
    cr_assert(dm_text_starts_with(item_at(p, "src/routes/todos.ts")->description,
                                  "Add the routes of /todos to this existing module: "));
    cr_assert_eq(p->count, 4);
    dm_plan_free(p);
    dm_repo_free(r);
    dm_spec_free(s);
}

Test(plan_repo, names_are_short_and_from_the_resource)
{
    struct dm_spec *s = parse("# T\n## API\n- get /Users/:id returns one user with every field we "
                              "keep about them\n- POST /api/v1/user-profiles creates\n- GET /\n"
                              "## UI\n- a profile card component with the avatar\n"
                              "- shows the list of todos and more and more\n"
                              "## DB\n- Add a done column to todos\n- create the table audit_log\n"
                              "- profiles table keyed by user_id\n- profiles table index\n"
                              "- search_index virtual table (FTS5)\n- a new table named tags\n");
    struct dm_plan *p = build(s, NULL);
    static const char *const paths[] = {"docs/dream-specs/t.md",
                                        "src/routes/users.ts",
                                        "src/routes/user-profiles.ts",
                                        "src/routes/root.ts",
                                        "src/components/ProfileCard.tsx",
                                        "src/components/ShowsList.tsx",
                                        "migrations/0001_alter_todos.sql",
                                        "migrations/0002_create_audit_log.sql",
                                        "migrations/0003_create_profiles.sql",
                                        "migrations/0004_create_search_index.sql",
                                        "migrations/0005_create_tags.sql"};

    cr_assert_eq(p->count, sizeof(paths) / sizeof(paths[0]));
    for (size_t i = 0; i < p->count; i++) {
        cr_assert_str_eq(p->items[i].path, paths[i], "item %zu: %s", i, p->items[i].path);
    }
    cr_assert_str_eq(p->items[2].usage, "mounted at /api/v1/user-profiles by the app's entry");
    /* Two items of one table make one migration. */
    cr_assert_eq(p->items[8].n_covers, 2);
    dm_plan_free(p);
    dm_spec_free(s);
}

Test(plan_json, contract_round_trip_and_old_plans)
{
    struct dm_spec *s = parse(TODO_SPEC);
    struct dm_repo *r = hono_repo();
    struct dm_plan *p = build_repo(s, r);
    struct dm_plan *q = NULL;
    struct dm_error err;
    char *j1 = dm_plan_to_json(p);
    char *j2;

    cr_assert(strstr(j1, "\"stack\":\"Hono + React + SQL migrations (TypeScript, Vitest)\""));
    cr_assert(strstr(j1, "\"kind\":\"test\""));
    cr_assert(strstr(j1, "\"kind\":\"edit\""));
    cr_assert(strstr(j1, "\"usage\":\"mounted at /todos by src/index.ts\""));
    cr_assert_eq(dm_plan_from_json(&q, j1, &err), 0, "%s", err.msg);
    j2 = dm_plan_to_json(q);
    cr_assert_str_eq(j1, j2);
    cr_assert_str_eq(q->stack, p->stack);
    for (size_t i = 0; i < p->count; i++) {
        cr_assert_eq(q->items[i].n_covers, p->items[i].n_covers);
        for (size_t k = 0; k < p->items[i].n_covers; k++) {
            cr_assert_str_eq(q->items[i].covers[k], p->items[i].covers[k]);
        }
    }
    free(j1);
    free(j2);
    dm_plan_free(q);
    /* A plan of an older version: no stack, no contract. */
    cr_assert_eq(dm_plan_from_json(&q,
                                   "{\"title\":\"T\",\"branch\":\"dream/t\",\"prTitle\":\"[Dream] "
                                   "T\",\"items\":[{\"path\":\"a.ts\",\"kind\":\"route\","
                                   "\"description\":\"d\"}]}",
                                   &err),
                 0, "%s", err.msg);
    cr_assert_null(q->stack);
    cr_assert_null(q->items[0].exports);
    cr_assert_null(q->items[0].usage);
    cr_assert_eq(q->items[0].n_covers, 0);
    dm_plan_free(q);
    dm_plan_free(p);
    dm_repo_free(r);
    dm_spec_free(s);
}

Test(plan_json, rejects_bad_contract_members)
{
    static const char *const bad[] = {
        "{\"title\":\"T\",\"branch\":\"b\",\"prTitle\":\"p\",\"stack\":1,\"items\":[{\"path\":"
        "\"a\","
        "\"kind\":\"file\",\"description\":\"d\"}]}",
        "{\"title\":\"T\",\"branch\":\"b\",\"prTitle\":\"p\",\"items\":[{\"path\":\"a\","
        "\"kind\":\"file\",\"description\":\"d\",\"exports\":[]}]}",
        "{\"title\":\"T\",\"branch\":\"b\",\"prTitle\":\"p\",\"items\":[{\"path\":\"a\","
        "\"kind\":\"file\",\"description\":\"d\",\"covers\":\"x\"}]}",
        "{\"title\":\"T\",\"branch\":\"b\",\"prTitle\":\"p\",\"items\":[{\"path\":\"a\","
        "\"kind\":\"file\",\"description\":\"d\",\"covers\":[\"x\",2]}]}",
    };
    static const char *const msgs[] = {"stack must be a string", "items[0].exports must be",
                                       "items[0].covers must be", "items[0].covers must be"};
    struct dm_error err;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct dm_plan *p = (struct dm_plan *)1;
        cr_assert_eq(dm_plan_from_json(&p, bad[i], &err), DM_ERR_INVALID, "case %zu", i);
        cr_assert_null(p);
        cr_assert(strstr(err.msg, msgs[i]), "case %zu: %s", i, err.msg);
    }
}

/* The issue's example: examples/specs/todo-api.md on the Hono fixture. */
Test(plan_repo, example_todo_api_on_the_hono_fixture)
{
    const char *src = getenv("DREAM_SOURCE_DIR");
    struct dm_buf path;
    struct dm_buf md;
    struct dm_spec *s = NULL;
    struct dm_repo *r = hono_repo();
    struct dm_plan *p;
    struct dm_error err;
    char chunk[4096];
    size_t n;
    FILE *f;
    static const char *const paths[] = {
        "docs/dream-specs/todo-api.md", "src/routes/todos.ts",
        "src/components/TodoList.tsx",  "migrations/0002_create_todos.sql",
        "src/routes/todos.test.ts",     "src/index.ts",
        "src/components/index.ts"};

    dm_buf_init(&path, 0);
    dm_buf_init(&md, 0);
    if (src && *src) {
        dm_buf_printf(&path, "%s/examples/specs/todo-api.md", src);
    } else {
        const char *slash = strrchr(__FILE__, '/');
        dm_buf_printf(&path, "%.*s/../../examples/specs/todo-api.md", (int)(slash - __FILE__),
                      __FILE__);
    }
    f = fopen(path.data, "rb");
    cr_assert_not_null(f, "%s", path.data);
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        dm_buf_append(&md, chunk, n);
    }
    fclose(f);
    cr_assert_eq(dm_spec_parse(&s, md.data, md.len, NULL, &err), 0, "%s", err.msg);
    p = build_repo(s, r);
    cr_assert_eq(p->count, sizeof(paths) / sizeof(paths[0]));
    for (size_t i = 0; i < p->count; i++) {
        cr_assert_str_eq(p->items[i].path, paths[i], "item %zu", i);
    }
    cr_assert_str_eq(p->items[1].exports,
                     "default: a Hono app with GET /todos, POST /todos, PATCH /todos/:id");
    cr_assert_str_eq(p->items[1].usage, "mounted at /todos by src/index.ts");
    cr_assert_eq(p->items[5].kind, DM_PLAN_KIND_EDIT);
    cr_assert(strstr(p->items[5].description, "app.route('/todos', todosRoutes)"));
    dm_plan_free(p);
    dm_repo_free(r);
    dm_spec_free(s);
    dm_buf_free(&path);
    dm_buf_free(&md);
}
