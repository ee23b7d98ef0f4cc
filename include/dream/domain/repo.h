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

/* ---- reading the base (repo_select.c): what is worth reading, in two steps ---- */

#define DM_REPO_FILE_BYTES_DEFAULT ((size_t)32 * 1024)
#define DM_REPO_TOTAL_BYTES_DEFAULT ((size_t)256 * 1024)
#define DM_REPO_FILES_DEFAULT ((size_t)64)
#define DM_REPO_TREE_MAX ((size_t)100000) /* paths listed of one tree */

/* lim with every 0 replaced by its default (lim may be NULL: all defaults). */
struct dm_repo_limits dm_repo_limits_resolve(const struct dm_repo_limits *lim);

/* 1 when path is never read nor sent: vendored (node_modules/, vendor/, dist/, build/, .git/
 * anywhere in the path), generated (lockfiles, *.min.js, *.min.css, *.map, *.d.ts under dist/)
 * or binary by its extension (images, fonts, archives, media, executables, databases, ...). */
int dm_repo_path_skipped(const char *path);

/* 1 when the len bytes of buf are text: no NUL and valid UTF-8. cut != 0: buf is the start of a
 * longer file, so an incomplete sequence at its very end is allowed. *keep (may be NULL) gets
 * the bytes to keep (len without that incomplete tail). */
int dm_repo_text_check(const char *buf, size_t len, int cut, size_t *keep);

/* The two steps of a read: the fixed files (manifest, tsconfig.json, wrangler.toml, README),
 * then, once the stack is detected from them (dm_stack_detect), the entry, the barrel and the
 * existing files of the folders a change touches (routes, components, migrations, tests: one of
 * each folder in turn, in tree order). */
enum dm_repo_phase { DM_REPO_PHASE_FIXED = 0, DM_REPO_PHASE_CONTEXT };

/*
 * The paths of r->tree to read in phase: never one already in r->files, never a skipped one
 * (dm_repo_path_skipped), within lim (resolved) counting what r->files already holds: files in
 * all, and bytes in all reckoned as min(size, file_bytes) per file (a file that would pass
 * total_bytes is left out, smaller ones after it may still fit). *out is a malloc'd array of
 * *n malloc'd strings (dm_repo_paths_free), NULL when *n is 0. Returns 0 or DM_ERR_NOMEM.
 */
int dm_repo_select(char ***out, size_t *n, const struct dm_repo *r, enum dm_repo_phase phase,
                   const struct dm_repo_limits *lim);

void dm_repo_paths_free(char **paths, size_t n);

/* Appends a tree entry / a file read (path and content copied; content gets a NUL). Returns 0
 * or DM_ERR_NOMEM. */
int dm_repo_add_entry(struct dm_repo *r, const char *path, size_t size);
int dm_repo_add_file(struct dm_repo *r, const char *path, const char *content, size_t len, int cut);

/* Bytes of content held in r->files. */
size_t dm_repo_bytes(const struct dm_repo *r);

/* ---- the stack (stack.c) ---- */

/*
 * Detects the stack and conventions of r from its manifest (r->files' package.json, when it
 * was read whole and parses), wrangler.toml and its tree, into *out (cleared first; every
 * directory set, defaults when the tree shows none). A cut or invalid manifest counts as none.
 * Returns 0 or DM_ERR_NOMEM (out then cleared).
 */
int dm_stack_detect(struct dm_stack *out, const struct dm_repo *r);

/* The app's entry file: package.json main, exports (a string, or exports["."] as a string or
 * its import/default), wrangler.toml's main, else src/index.ts, src/app.ts, src/server.ts, the
 * same in .js, then index.js, app.js, server.js; a declared entry under dist/ or build/ (or
 * missing) is mapped to its source under src/ when that exists. Only a path of the tree is
 * returned. malloc'd, or NULL (none, or NOMEM). */
char *dm_repo_detect_entry(const struct dm_repo *r);

#endif
