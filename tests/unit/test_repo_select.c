/* Unit tests for repo_select: the skip rules, the text check, and the two steps of choosing
 * what of the base is read, within the limits. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dream/domain/repo.h"

struct ent {
    const char *path;
    size_t size;
};

static struct dm_repo *repo_of(const struct ent *tree)
{
    struct dm_repo *r = calloc(1, sizeof(*r));
    cr_assert(r);
    for (size_t i = 0; tree[i].path; i++) {
        cr_assert_eq(dm_repo_add_entry(r, tree[i].path, tree[i].size), 0);
    }
    return r;
}

static int has(char **paths, size_t n, const char *p)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(paths[i], p) == 0) {
            return 1;
        }
    }
    return 0;
}

Test(repo_select, skip_rules)
{
    static const char *const skipped[] = {
        "node_modules/hono/dist/index.js",
        "vendor/lib.js",
        "dist/index.js",
        "build/app.js",
        "packages/a/dist/types.d.ts",
        ".git/config",
        "package-lock.json",
        "yarn.lock",
        "pnpm-lock.yaml",
        "public/app.min.js",
        "src/app.js.map",
        "public/logo.png",
        "assets/font.woff2",
        "docs/guide.PDF",
        "data/app.sqlite",
        "",
    };
    static const char *const kept[] = {
        "package.json",
        "src/index.ts",
        "src/types.d.ts",
        "README.md",
        "migrations/0001_init.sql",
        "src/builder.ts",
        "src/distance.ts",
        "docs/build.md",
    };
    for (size_t i = 0; i < sizeof(skipped) / sizeof(skipped[0]); i++) {
        cr_assert(dm_repo_path_skipped(skipped[i]), "%s should be skipped", skipped[i]);
    }
    for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++) {
        cr_assert_not(dm_repo_path_skipped(kept[i]), "%s should be read", kept[i]);
    }
    cr_assert(dm_repo_path_skipped(NULL));
}

Test(repo_select, text_check)
{
    size_t keep;
    const char png[] = "\x89PNG\r\n\x1a\n\0\0\0\rIHDR";

    cr_assert(dm_repo_text_check("export const a = 1;\n", 20, 0, &keep));
    cr_assert_eq(keep, 20);
    cr_assert(dm_repo_text_check("caf\xc3\xa9 \xe2\x9c\x93", 9, 0, &keep));
    cr_assert_not(dm_repo_text_check(png, sizeof(png) - 1, 0, &keep));
    cr_assert_not(dm_repo_text_check("a\0b", 3, 0, &keep));
    cr_assert_not(dm_repo_text_check("\xff\xfe", 2, 0, &keep));
    cr_assert_not(dm_repo_text_check("\xc0\xaf", 2, 0, &keep));         /* overlong */
    cr_assert_not(dm_repo_text_check("\xed\xa0\x80", 3, 0, &keep));     /* surrogate */
    cr_assert_not(dm_repo_text_check("\xf4\x90\x80\x80", 4, 0, &keep)); /* > U+10FFFF */
    /* A cut that falls inside a character: allowed when cut, the tail dropped. */
    cr_assert_not(dm_repo_text_check("ab\xe2\x9c", 4, 0, &keep));
    cr_assert(dm_repo_text_check("ab\xe2\x9c", 4, 1, &keep));
    cr_assert_eq(keep, 2);
}

Test(repo_select, fixed_then_context)
{
    static const struct ent tree[] = {{"README.md", 900},
                                      {"assets/logo.png", 4000},
                                      {"migrations/0001_init.sql", 200},
                                      {"node_modules/hono/package.json", 800},
                                      {"package-lock.json", 90000},
                                      {"package.json", 600},
                                      {"src/components/UserCard.tsx", 700},
                                      {"src/components/index.ts", 60},
                                      {"src/index.ts", 400},
                                      {"src/routes/users.ts", 900},
                                      {"src/util/strings.ts", 300},
                                      {"tsconfig.json", 300},
                                      {NULL, 0}};
    struct dm_repo *r = repo_of(tree);
    char **paths;
    size_t n;

    cr_assert_eq(dm_repo_select(&paths, &n, r, DM_REPO_PHASE_FIXED, NULL), 0);
    cr_assert_eq(n, 3);
    cr_assert(has(paths, n, "package.json"));
    cr_assert(has(paths, n, "tsconfig.json"));
    cr_assert(has(paths, n, "README.md"));
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(dm_repo_add_file(r, paths[i], "{}", 2, 0), 0);
    }
    dm_repo_paths_free(paths, n);

    cr_assert_eq(dm_stack_detect(&r->stack, r), 0);
    cr_assert_eq(dm_repo_select(&paths, &n, r, DM_REPO_PHASE_CONTEXT, NULL), 0);
    cr_assert_eq(n, 5, "got %zu", n);
    cr_assert_str_eq(paths[0], "src/index.ts"); /* the entry first, then the barrel */
    cr_assert_str_eq(paths[1], "src/components/index.ts");
    cr_assert(has(paths, n, "migrations/0001_init.sql"));
    cr_assert(has(paths, n, "src/routes/users.ts"));
    cr_assert(has(paths, n, "src/components/UserCard.tsx"));
    cr_assert_not(has(paths, n, "src/util/strings.ts")); /* not a folder a change touches */
    cr_assert_not(has(paths, n, "package.json"));        /* already read */
    dm_repo_paths_free(paths, n);
    dm_repo_free(r);
}

Test(repo_select, limits_are_honoured)
{
    static const struct ent tree[] = {{"package.json", 100},
                                      {"src/routes/a.ts", 1000},
                                      {"src/routes/b.ts", 50000},
                                      {"src/routes/c.ts", 1000},
                                      {"src/routes/d.ts", 1000},
                                      {"src/routes/e.ts", 1000},
                                      {"migrations/0001_a.sql", 1000},
                                      {"migrations/0002_b.sql", 1000},
                                      {NULL, 0}};
    struct dm_repo_limits lim = {.file_bytes = 2000, .total_bytes = 5002, .files = 100};
    struct dm_repo *r = repo_of(tree);
    char **paths;
    size_t n;

    cr_assert_eq(dm_repo_add_file(r, "package.json", "{}", 2, 0), 0);
    cr_assert_eq(dm_stack_detect(&r->stack, r), 0);
    /* 2 already held; b.ts counts as file_bytes (2000), not its size. */
    cr_assert_eq(dm_repo_select(&paths, &n, r, DM_REPO_PHASE_CONTEXT, &lim), 0);
    {
        size_t est = 2;
        for (size_t i = 0; i < n; i++) {
            est += strcmp(paths[i], "src/routes/b.ts") == 0 ? 2000 : 1000;
        }
        cr_assert_leq(est, 5002);
    }
    cr_assert_eq(n, 4, "got %zu", n);
    /* Migrations and routes take turns. */
    cr_assert_str_eq(paths[0], "migrations/0001_a.sql");
    cr_assert_str_eq(paths[1], "src/routes/a.ts");
    cr_assert_str_eq(paths[2], "migrations/0002_b.sql");
    cr_assert_str_eq(paths[3], "src/routes/b.ts");
    dm_repo_paths_free(paths, n);

    /* The number of files: what is held counts. */
    lim.total_bytes = 1000000;
    lim.files = 3;
    cr_assert_eq(dm_repo_select(&paths, &n, r, DM_REPO_PHASE_CONTEXT, &lim), 0);
    cr_assert_eq(n, 2, "got %zu", n);
    dm_repo_paths_free(paths, n);
    dm_repo_free(r);
}

Test(repo_select, defaults)
{
    struct dm_repo_limits l = dm_repo_limits_resolve(NULL);
    cr_assert_eq(l.file_bytes, 32 * 1024);
    cr_assert_eq(l.total_bytes, 256 * 1024);
    cr_assert_eq(l.files, 64);
}

Test(repo_select, big_tree)
{
    struct dm_repo *r = calloc(1, sizeof(*r));
    char path[64], **paths;
    size_t n;

    for (int i = 0; i < 10000; i++) {
        snprintf(path, sizeof(path), "src/routes/r%05d.ts", i);
        cr_assert_eq(dm_repo_add_entry(r, path, 10000), 0);
    }
    cr_assert_eq(r->n_tree, 10000);
    cr_assert_eq(dm_stack_detect(&r->stack, r), 0);
    cr_assert_eq(dm_repo_select(&paths, &n, r, DM_REPO_PHASE_CONTEXT, NULL), 0);
    cr_assert_eq(n, 26); /* 256 KiB / 10,000 bytes */
    dm_repo_paths_free(paths, n);
    dm_repo_free(r);
}
