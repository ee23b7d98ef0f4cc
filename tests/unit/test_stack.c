/* Unit tests for stack: the stack and conventions of a repository from real manifests and
 * trees (Hono + React + SQL, Express + React + Knex, a Next.js app, an empty repository), entry
 * detection, and hostile manifests (cut, invalid, exports as an object). */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "dream/domain/repo.h"

/* A repo of the given tree (NULL-terminated paths, size 100 each) and files (path, content
 * pairs, NULL-terminated). */
static struct dm_repo *repo_of(const char *const *tree, const char *const *files)
{
    struct dm_repo *r = calloc(1, sizeof(*r));
    cr_assert(r);
    for (size_t i = 0; tree && tree[i]; i++) {
        cr_assert_eq(dm_repo_add_entry(r, tree[i], 100), 0);
    }
    for (size_t i = 0; files && files[i]; i += 2) {
        cr_assert_eq(dm_repo_add_file(r, files[i], files[i + 1], strlen(files[i + 1]), 0), 0);
    }
    return r;
}

static const char *const hono_tree[] = {"README.md",
                                        "migrations/0001_init.sql",
                                        "migrations/0002_add_posts.sql",
                                        "package.json",
                                        "src/components/UserCard.tsx",
                                        "src/components/UserList.tsx",
                                        "src/components/index.ts",
                                        "src/index.ts",
                                        "src/routes/users.test.ts",
                                        "src/routes/users.ts",
                                        "tsconfig.json",
                                        "wrangler.toml",
                                        NULL};

static const char hono_manifest[] =
    "{\n  \"name\": \"app\",\n  \"private\": true,\n  \"type\": \"module\",\n"
    "  \"scripts\": {\"dev\": \"wrangler dev\", \"test\": \"vitest run\"},\n"
    "  \"dependencies\": {\"hono\": \"^4.6.0\", \"react\": \"^18.3.1\", \"react-dom\": "
    "\"^18.3.1\"},\n"
    "  \"devDependencies\": {\"@cloudflare/workers-types\": \"^4.0.0\", \"typescript\": \"^5.6.0\","
    " \"vitest\": \"^2.1.0\", \"wrangler\": \"^3.80.0\"}\n}\n";

Test(stack, hono_react_sql)
{
    const char *const files[] = {"package.json", hono_manifest, "wrangler.toml",
                                 "name = \"app\"\nmain = \"src/index.ts\"\n[[d1_databases]]\n"
                                 "binding = \"DB\"\n",
                                 NULL};
    struct dm_repo *r = repo_of(hono_tree, files);
    struct dm_stack s;
    char *d;

    cr_assert_eq(dm_stack_detect(&s, r), 0);
    cr_assert_eq(s.http, DM_REPO_HTTP_HONO);
    cr_assert_eq(s.ui, DM_REPO_UI_REACT);
    cr_assert_eq(s.db, DM_REPO_DB_SQL);
    cr_assert_eq(s.test, DM_REPO_TEST_VITEST);
    cr_assert_eq(s.typescript, 1);
    cr_assert_str_eq(s.entry, "src/index.ts");
    cr_assert_str_eq(s.barrel, "src/components/index.ts");
    cr_assert_str_eq(s.routes_dir, "src/routes/");
    cr_assert_str_eq(s.components_dir, "src/components/");
    cr_assert_str_eq(s.migrations_dir, "migrations/");
    cr_assert_null(s.tests_dir); /* tests sit next to their modules */
    cr_assert_eq(s.component_case, DM_REPO_CASE_PASCAL);
    cr_assert_eq(s.migration_scheme, DM_REPO_MIG_NUMBERED);
    cr_assert_eq(s.migration_width, 4);
    cr_assert_eq(s.last_migration, 2);
    d = dm_stack_describe(&s);
    cr_assert_str_eq(d, "Hono + React + SQL migrations (TypeScript, Vitest)");
    free(d);
    dm_stack_clear(&s);
    dm_repo_free(r);
}

Test(stack, express_react_knex)
{
    static const char *const tree[] = {"db/migrations/20240105093000_create_users.js",
                                       "db/migrations/20240312101500_add_email.js",
                                       "knexfile.js",
                                       "package.json",
                                       "routes/index.js",
                                       "routes/users.js",
                                       "server.js",
                                       "client/components/user-card.jsx",
                                       "client/components/user-list.jsx",
                                       "test/users.test.js",
                                       NULL};
    static const char manifest[] =
        "{\"name\":\"api\",\"main\":\"server.js\",\"scripts\":{\"start\":\"node server.js\","
        "\"test\":\"jest\"},\"dependencies\":{\"express\":\"^4.19.2\",\"knex\":\"^3.1.0\","
        "\"pg\":\"^8.11.0\",\"react\":\"^18.3.1\"},\"devDependencies\":{\"jest\":\"^29.7.0\"}}";
    const char *const files[] = {"package.json", manifest, NULL};
    struct dm_repo *r = repo_of(tree, files);
    struct dm_stack s;
    char *d;

    cr_assert_eq(dm_stack_detect(&s, r), 0);
    cr_assert_eq(s.http, DM_REPO_HTTP_EXPRESS);
    cr_assert_eq(s.ui, DM_REPO_UI_REACT);
    cr_assert_eq(s.db, DM_REPO_DB_KNEX);
    cr_assert_eq(s.test, DM_REPO_TEST_JEST);
    cr_assert_eq(s.typescript, 0);
    cr_assert_str_eq(s.entry, "server.js");
    cr_assert_null(s.barrel);
    cr_assert_str_eq(s.routes_dir, "routes/");
    cr_assert_str_eq(s.components_dir, "client/components/");
    cr_assert_str_eq(s.migrations_dir, "db/migrations/");
    cr_assert_str_eq(s.tests_dir, "test/");
    cr_assert_eq(s.component_case, DM_REPO_CASE_KEBAB);
    cr_assert_eq(s.migration_scheme, DM_REPO_MIG_TIMESTAMP);
    cr_assert_eq(s.last_migration, 20240312101500ULL);
    d = dm_stack_describe(&s);
    cr_assert_str_eq(d, "Express + React + Knex (JavaScript, Jest)");
    free(d);
    dm_stack_clear(&s);
    dm_repo_free(r);
}

Test(stack, nextjs_app)
{
    static const char *const tree[] = {"app/api/hello/route.ts",
                                       "app/layout.tsx",
                                       "app/page.tsx",
                                       "components/Header.tsx",
                                       "next.config.mjs",
                                       "package.json",
                                       "prisma/migrations/20240101120000_init/migration.sql",
                                       "prisma/schema.prisma",
                                       "tsconfig.json",
                                       NULL};
    static const char manifest[] =
        "{\"name\":\"web\",\"scripts\":{\"dev\":\"next dev\",\"test\":\"node --test\"},"
        "\"dependencies\":{\"next\":\"14.2.3\",\"react\":\"18.3.1\",\"@prisma/"
        "client\":\"5.14.0\"}}";
    const char *const files[] = {"package.json", manifest, NULL};
    struct dm_repo *r = repo_of(tree, files);
    struct dm_stack s;

    cr_assert_eq(dm_stack_detect(&s, r), 0);
    cr_assert_eq(s.http, DM_REPO_HTTP_NEXT);
    cr_assert_eq(s.ui, DM_REPO_UI_REACT);
    cr_assert_eq(s.db, DM_REPO_DB_PRISMA);
    cr_assert_eq(s.test, DM_REPO_TEST_NODE);
    cr_assert_eq(s.typescript, 1);
    cr_assert_null(s.entry); /* a Next.js app has no entry file */
    cr_assert_str_eq(s.routes_dir, "app/api/");
    cr_assert_str_eq(s.components_dir, "components/");
    cr_assert_str_eq(s.migrations_dir, "prisma/migrations/");
    cr_assert_eq(s.migration_scheme, DM_REPO_MIG_TIMESTAMP);
    cr_assert_eq(s.last_migration, 20240101120000ULL);
    dm_stack_clear(&s);
    dm_repo_free(r);
}

Test(stack, empty_repository_gets_the_defaults)
{
    struct dm_repo *r = repo_of(NULL, NULL);
    struct dm_stack s;
    char *d;

    cr_assert_eq(dm_stack_detect(&s, r), 0);
    cr_assert_eq(s.http, DM_REPO_HTTP_NONE);
    cr_assert_eq(s.ui, DM_REPO_UI_NONE);
    cr_assert_eq(s.db, DM_REPO_DB_NONE);
    cr_assert_eq(s.typescript, 0);
    cr_assert_null(s.entry);
    cr_assert_null(s.barrel);
    cr_assert_str_eq(s.routes_dir, "src/routes/");
    cr_assert_str_eq(s.components_dir, "src/components/");
    cr_assert_str_eq(s.migrations_dir, "migrations/");
    cr_assert_null(s.tests_dir);
    cr_assert_eq(s.migration_scheme, DM_REPO_MIG_NUMBERED);
    cr_assert_eq(s.migration_width, 4);
    cr_assert_eq(s.last_migration, 0);
    d = dm_stack_describe(&s);
    cr_assert_str_eq(d, "JavaScript");
    free(d);
    dm_stack_clear(&s);
    dm_repo_free(r);
}

Test(stack, cut_or_invalid_manifest_counts_as_none)
{
    static const char *const tree[] = {"package.json", "src/index.ts", "src/routes/a.ts", NULL};
    struct dm_repo *r = repo_of(tree, NULL);
    struct dm_stack s;

    /* The start of a 10 MB manifest: cut, so never trusted, even though its start parses. */
    cr_assert_eq(dm_repo_add_file(r, "package.json", "{\"dependencies\":{\"hono\":\"4\"}}", 30, 1),
                 0);
    cr_assert_eq(dm_stack_detect(&s, r), 0);
    cr_assert_eq(s.http, DM_REPO_HTTP_NONE);
    cr_assert_eq(s.typescript, 1); /* from the tree */
    cr_assert_str_eq(s.entry, "src/index.ts");
    dm_stack_clear(&s);
    dm_repo_free(r);

    r = repo_of(tree,
                (const char *const[]){"package.json", "{\"dependencies\": {\"hono\": ", NULL});
    cr_assert_eq(dm_stack_detect(&s, r), 0);
    cr_assert_eq(s.http, DM_REPO_HTTP_NONE);
    dm_stack_clear(&s);
    dm_repo_free(r);

    /* Valid JSON of the wrong shapes. */
    r = repo_of(tree, (const char *const[]){"package.json", "[1,2]", NULL});
    cr_assert_eq(dm_stack_detect(&s, r), 0);
    cr_assert_eq(s.http, DM_REPO_HTTP_NONE);
    dm_stack_clear(&s);
    dm_repo_free(r);
    r = repo_of(tree, (const char *const[]){"package.json",
                                            "{\"dependencies\":[\"hono\"],\"main\":7,"
                                            "\"exports\":{\".\":{\".\":{\".\":{\".\":{\".\":1}}}}},"
                                            "\"scripts\":\"vitest\"}",
                                            NULL});
    cr_assert_eq(dm_stack_detect(&s, r), 0);
    cr_assert_eq(s.http, DM_REPO_HTTP_NONE);
    cr_assert_eq(s.test, DM_REPO_TEST_NONE);
    cr_assert_str_eq(s.entry, "src/index.ts"); /* the fallback */
    dm_stack_clear(&s);
    dm_repo_free(r);
}

Test(stack, entry_from_exports_object_and_build_output)
{
    static const char *const tree[] = {"package.json", "src/main.ts", "src/index.ts", NULL};
    struct dm_repo *r;
    char *e;

    r = repo_of(tree, (const char *const[]){"package.json",
                                            "{\"exports\":{\".\":{\"types\":\"./dist/main.d.ts\","
                                            "\"import\":\"./dist/main.js\"}}}",
                                            NULL});
    e = dm_repo_detect_entry(r);
    cr_assert_str_eq(e, "src/main.ts"); /* dist/main.js mapped to its source */
    free(e);
    dm_repo_free(r);

    r = repo_of(tree,
                (const char *const[]){"package.json", "{\"exports\":\"./src/main.ts\"}", NULL});
    e = dm_repo_detect_entry(r);
    cr_assert_str_eq(e, "src/main.ts");
    free(e);
    dm_repo_free(r);

    r = repo_of(tree, (const char *const[]){"package.json",
                                            "{\"exports\":{\"default\":\"./src/main.ts\"}}", NULL});
    e = dm_repo_detect_entry(r);
    cr_assert_str_eq(e, "src/main.ts");
    free(e);
    dm_repo_free(r);

    /* main names a file that is not there: the next candidates are tried. */
    r = repo_of(tree, (const char *const[]){"package.json", "{\"main\":\"lib/nowhere.js\"}", NULL});
    e = dm_repo_detect_entry(r);
    cr_assert_str_eq(e, "src/index.ts");
    free(e);
    dm_repo_free(r);
}

Test(stack, entry_from_wrangler_toml)
{
    static const char *const tree[] = {"src/worker.ts", "src/index.ts", "wrangler.toml", NULL};
    struct dm_repo *r =
        repo_of(tree, (const char *const[]){"wrangler.toml",
                                            "# worker\nname = \"w\"\nmain = './src/worker.ts'\n"
                                            "[env.prod]\nmain = \"src/index.ts\"\n",
                                            NULL});
    char *e = dm_repo_detect_entry(r);
    cr_assert_str_eq(e, "src/worker.ts");
    free(e);
    dm_repo_free(r);

    /* A main inside a table only is not the worker's. */
    r = repo_of(tree, (const char *const[]){"wrangler.toml",
                                            "name = \"w\"\n[env.prod]\nmain = \"src/worker.ts\"\n",
                                            NULL});
    e = dm_repo_detect_entry(r);
    cr_assert_str_eq(e, "src/index.ts");
    free(e);
    dm_repo_free(r);
}

Test(stack, numbered_migrations_keep_their_width)
{
    static const char *const tree[] = {"db/migrations/001_init.sql", "db/migrations/017_x.sql",
                                       "db/migrations/README.md", NULL};
    struct dm_repo *r = repo_of(tree, NULL);
    struct dm_stack s;

    cr_assert_eq(dm_stack_detect(&s, r), 0);
    cr_assert_eq(s.db, DM_REPO_DB_SQL);
    cr_assert_str_eq(s.migrations_dir, "db/migrations/");
    cr_assert_eq(s.migration_scheme, DM_REPO_MIG_NUMBERED);
    cr_assert_eq(s.migration_width, 3);
    cr_assert_eq(s.last_migration, 17);
    dm_stack_clear(&s);
    dm_repo_free(r);
}

Test(stack, vendored_folders_do_not_count)
{
    static const char *const tree[] = {"node_modules/x/routes/a.js",
                                       "node_modules/y/components/B.tsx",
                                       "server/api/routes/items.ts", NULL};
    struct dm_repo *r = repo_of(tree, NULL);
    struct dm_stack s;

    cr_assert_eq(dm_stack_detect(&s, r), 0);
    cr_assert_str_eq(s.routes_dir, "server/api/routes/");
    cr_assert_str_eq(s.components_dir, "src/components/");
    dm_stack_clear(&s);
    dm_repo_free(r);
}
