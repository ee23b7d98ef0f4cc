/* Unit tests for repo: look-ups in the base of a change, and the stack's one-line description. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "dream/domain/repo.h"

Test(repo, describe_names_what_was_found)
{
    struct dm_stack s = {0};
    char *d;

    s.http = DM_REPO_HTTP_HONO;
    s.ui = DM_REPO_UI_REACT;
    s.db = DM_REPO_DB_SQL;
    s.test = DM_REPO_TEST_VITEST;
    s.typescript = 1;
    d = dm_stack_describe(&s);
    cr_assert_str_eq(d, "Hono + React + SQL migrations (TypeScript, Vitest)");
    free(d);

    memset(&s, 0, sizeof(s));
    s.http = DM_REPO_HTTP_EXPRESS;
    s.db = DM_REPO_DB_KNEX;
    d = dm_stack_describe(&s);
    cr_assert_str_eq(d, "Express + Knex (JavaScript)");
    free(d);

    memset(&s, 0, sizeof(s));
    s.typescript = 1;
    s.test = DM_REPO_TEST_NODE;
    d = dm_stack_describe(&s);
    cr_assert_str_eq(d, "TypeScript, node:test");
    free(d);
}

Test(repo, find_and_has)
{
    struct dm_repo *r = calloc(1, sizeof(*r));
    r->tree = calloc(2, sizeof(*r->tree));
    r->tree[0].path = strdup("src/index.ts");
    r->tree[1].path = strdup("logo.png");
    r->n_tree = 2;
    r->files = calloc(1, sizeof(*r->files));
    r->files[0].path = strdup("src/index.ts");
    r->files[0].content = strdup("export default app;\n");
    r->files[0].len = strlen(r->files[0].content);
    r->n_files = 1;
    r->stack.entry = strdup("src/index.ts");

    cr_assert(dm_repo_has(r, "logo.png"));
    cr_assert_not(dm_repo_has(r, "src/app.ts"));
    cr_assert_str_eq(dm_repo_find(r, "src/index.ts")->content, "export default app;\n");
    cr_assert_null(dm_repo_find(r, "logo.png"), "a file of the tree that was not read");
    cr_assert_null(dm_repo_find(NULL, "x"));
    dm_repo_free(r);
    dm_repo_free(NULL);
}
