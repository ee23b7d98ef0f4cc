/*
 * repo: what dreamd knows of the repository a change lands in, at the job's base commit — the
 * tree (paths and sizes), a bounded set of its files' contents, and the stack detected from
 * them (framework, UI, database, test runner, language, and where this repository keeps its
 * routes, components, migrations and tests). The planner plans in the repository's conventions
 * from it, the prompts carry what the model must see of it, the checks run against it.
 *
 * Built off the loop thread (io/git reads the mirror; this module decides what is worth reading
 * and what the stack is), cached per base commit, then read-only: any number of jobs may share
 * one. Pure: no I/O, no globals; any thread.
 */
#ifndef DREAM_REPO_H
#define DREAM_REPO_H

#include <stddef.h>

#include "dream/core/error.h"

/* One file of the base tree (blobs only; symlinks and submodules are not listed). */
struct dm_repo_entry {
    char *path; /* repository-relative, '/'-separated */
    size_t size;
};

/* One file whose content was read (never binary, vendored or generated: dm_repo_path_skipped). */
struct dm_repo_text {
    char *path;
    char *content; /* NUL-terminated, valid UTF-8, at most limits.file_bytes */
    size_t len;
    int cut; /* 1: the file is longer than what was kept */
};

enum dm_repo_http {
    DM_REPO_HTTP_NONE = 0,
    DM_REPO_HTTP_HONO,
    DM_REPO_HTTP_EXPRESS,
    DM_REPO_HTTP_FASTIFY,
    DM_REPO_HTTP_NEXT, /* Next.js route handlers (app/api/.../route.ts) */
};

enum dm_repo_ui {
    DM_REPO_UI_NONE = 0,
    DM_REPO_UI_REACT,
    DM_REPO_UI_PREACT,
    DM_REPO_UI_VUE,
    DM_REPO_UI_SVELTE,
};

enum dm_repo_db {
    DM_REPO_DB_NONE = 0,
    DM_REPO_DB_SQL, /* plain SQL migration files (D1/SQLite) */
    DM_REPO_DB_KNEX,
    DM_REPO_DB_PRISMA,
    DM_REPO_DB_DRIZZLE,
};

enum dm_repo_test {
    DM_REPO_TEST_NONE = 0,
    DM_REPO_TEST_VITEST,
    DM_REPO_TEST_JEST,
    DM_REPO_TEST_NODE, /* node:test */
};

/* How the repository spells a component's file name. */
enum dm_repo_case {
    DM_REPO_CASE_PASCAL = 0, /* TodoList.tsx */
    DM_REPO_CASE_KEBAB,      /* todo-list.tsx */
};

/* How the repository names its migrations. */
enum dm_repo_migrations {
    DM_REPO_MIG_NUMBERED = 0, /* 0001_init.sql: the next is max + 1, same width */
    DM_REPO_MIG_TIMESTAMP,    /* 20240101120000_init.sql (Knex: .js/.ts) */
};

/* The stack and the conventions of a repository. Strings are owned by the struct; every
 * directory ends in '/'. */
struct dm_stack {
    enum dm_repo_http http;
    enum dm_repo_ui ui;
    enum dm_repo_db db;
    enum dm_repo_test test;
    int typescript;       /* 1: .ts/.tsx, 0: .js/.jsx */
    char *entry;          /* the app's entry file (package.json main/exports, wrangler.toml main,
                             else src/index.ts, src/app.ts, src/server.ts), or NULL */
    char *barrel;         /* the components' index that re-exports them, or NULL */
    char *routes_dir;     /* "src/routes/" by default */
    char *components_dir; /* "src/components/" by default */
    char *migrations_dir; /* "migrations/" by default */
    char *tests_dir;      /* NULL: a test goes next to its module */
    enum dm_repo_case component_case;
    enum dm_repo_migrations migration_scheme;
    unsigned migration_width;          /* digits of a numbered scheme (4 for 0001_) */
    unsigned long long last_migration; /* highest existing number or timestamp; 0 when none */
};

struct dm_repo {
    char commit[41]; /* the base commit, hex */
    struct dm_repo_entry *tree;
    size_t n_tree;
    int tree_truncated; /* the tree had more files than were listed */
    struct dm_repo_text *files;
    size_t n_files;
    struct dm_stack stack;
};

/* Named limits of what is read (settings DREAM_CONTEXT_*; 0 = the default). */
struct dm_repo_limits {
    size_t file_bytes;  /* bytes kept of one file (default 32 KiB) */
    size_t total_bytes; /* bytes of all files together (default 256 KiB) */
    size_t files;       /* files read (default 64) */
};

/* The file of path in r->files, or NULL when it was not read. */
const struct dm_repo_text *dm_repo_find(const struct dm_repo *r, const char *path);

/* 1 when path exists in the tree. */
int dm_repo_has(const struct dm_repo *r, const char *path);

/* Names for the PR body and the plan: "Hono", "React", "SQL migrations", "Vitest", ... ("" for
 * NONE). */
const char *dm_repo_http_name(enum dm_repo_http v);
const char *dm_repo_ui_name(enum dm_repo_ui v);
const char *dm_repo_db_name(enum dm_repo_db v);
const char *dm_repo_test_name(enum dm_repo_test v);

/* The stack in one line: the parts found joined by " + ", then the language and test runner in
 * parentheses, e.g. "Hono + React + SQL migrations (TypeScript, Vitest)"; "JavaScript" alone
 * when nothing was recognised. malloc'd (free()); NULL on NOMEM. */
char *dm_stack_describe(const struct dm_stack *s);

/* Frees the strings of s and zeroes it; NULL is fine. */
void dm_stack_clear(struct dm_stack *s);

/* Frees r and everything it owns; NULL is fine. */
void dm_repo_free(struct dm_repo *r);

#endif
