/*
 * validate: in-process syntax checks of generated files, and the advisory warnings that go into
 * the PR body.
 *
 * The check is chosen by the file's extension:
 *   .sql                       SQLite parses every statement (dm_validate_sql)
 *   .json                      cJSON parses the document (dm_validate_json)
 *   .ts .mts .cts .tsx .js .mjs .cjs .jsx
 *                              checked by the external esbuild binary (validate_run.h);
 *                              dm_validate_esbuild_loader() says which loader to use
 *   anything else (.md, ...)   no syntax check
 *
 * Warnings (the old system's "validation warnings") never fail a file; they are listed in the
 * PR body: empty file, stub-only file (no code outside comments), TODO/FIXME/"not implemented"
 * placeholders, `any` types (TypeScript), `eval(` (JS/TS), SQL without a statement, and
 * `DROP TABLE` without `IF EXISTS`. Comments and string literals are masked first, so a word in a
 * comment or a string does not count (placeholders are looked for in comments and strings only).
 * The old "unbalanced brackets" warning is gone: esbuild rejects such files outright.
 *
 * Pure (SQLite, cJSON, PCRE2 only); no shared state, safe on any thread.
 */
#ifndef DREAM_VALIDATE_H
#define DREAM_VALIDATE_H

#include "dream/core/buf.h"
#include "dream/core/error.h"

#include <stddef.h>

enum dm_validate_kind {
    DM_VALIDATE_NONE = 0, /* no syntax check (Markdown, text, unknown extensions) */
    DM_VALIDATE_SQL = 1,
    DM_VALIDATE_JSON = 2,
    DM_VALIDATE_TS = 3,  /* .ts .mts .cts */
    DM_VALIDATE_TSX = 4, /* .tsx */
    DM_VALIDATE_JS = 5,  /* .js .mjs .cjs */
    DM_VALIDATE_JSX = 6, /* .jsx */
};

/* The kind of check for path, from its extension (case-insensitive). path may be NULL (NONE). */
enum dm_validate_kind dm_validate_kind_of(const char *path);

/* The esbuild loader name ("ts", "tsx", "js", "jsx") when path must be checked by the external
 * validator (validate_run.h), else NULL. Returns a static string. */
const char *dm_validate_esbuild_loader(const char *path);

/* Checks SQL text (len bytes, need not be NUL-terminated) by preparing each statement in turn in
 * a private in-memory SQLite database.
 *
 * Schema statements (CREATE, ALTER, DROP) that prepare cleanly are also executed in that
 * database, so later statements of the same file that use the tables, columns and indexes they
 * create resolve as they would in a real migration. Nothing else is executed (no INSERT,
 * ATTACH, PRAGMA), and no statement that copies the rows of a query (CREATE TABLE ... AS
 * SELECT fails the file). Execution is capped in values (1 MiB), expression depth, program
 * size, SQLite's heap (64 MiB, process-wide) and time (2 s per file, and a progress-step
 * limit); runtime errors of those statements are ignored (they are not syntax). A statement whose
 * only problem is a reference to a schema object the file does not create ("no such table", "no
 * such column", "no such index", "no such view", "no such trigger", "no such module", "table ...
 * has no column named") passes: it may exist in the target database. Every other prepare error
 * fails.
 *
 * Returns 0 when every statement is valid (an empty or comment-only file is valid here; see the
 * warnings). On the first failure returns DM_ERR_INVALID with err->msg
 * "line L, column C: <SQLite's message>" ("line L: ..." when SQLite gives no position, e.g.
 * "incomplete input" for an unterminated statement). DM_ERR_LIMIT when the check passed its time
 * or work limit ("line L: the SQL check passed its time limit (2 s); ..." or "... work limit
 * ..."): such a file fails, it never passes unchecked. DM_ERR_NOMEM / DM_ERR_IO when SQLite
 * could not open its database. Takes up to its 2 s: callers on an event loop run it on a
 * worker thread (io/validate_run does). */
int dm_validate_sql(const char *text, size_t len, struct dm_error *err);

/* Checks that text (len bytes) is exactly one JSON value, optionally surrounded by whitespace.
 * Returns 0, or DM_ERR_INVALID with err->msg "line L, column C: invalid JSON near '<snippet>'"
 * (or "trailing characters after the JSON value", "empty document"). */
int dm_validate_json(const char *text, size_t len, struct dm_error *err);

/* The in-process check for path's kind: SQL and JSON as above; every other kind returns 0
 * (use dm_validate_esbuild_loader to see whether the external check is still needed). On
 * failure err->msg is prefixed with "<path>: ". */
int dm_validate_file(const char *path, const char *text, size_t len, struct dm_error *err);

/* One advisory warning. */
struct dm_validate_warning {
    char *path;    /* owned */
    unsigned line; /* 1-based; 0 when about the whole file */
    char *message; /* owned, e.g. "`any` type used 3 times" */
};

/* A growing list of warnings over the files of one job. Embed it, init it, free it. */
struct dm_validate_warnings {
    struct dm_validate_warning *items;
    size_t count;
    size_t cap;
};

void dm_validate_warnings_init(struct dm_validate_warnings *w);

/* Frees every warning; the list is empty and usable again. w may be NULL. */
void dm_validate_warnings_free(struct dm_validate_warnings *w);

/* Appends the warnings of one file (path, len bytes of text) to w, in line order per rule.
 * At most 20 warnings per file (a last one says how many were left out). Returns the number
 * of warnings added (>= 0) or DM_ERR_NOMEM / DM_ERR_IO (PCRE2 refused a pattern). */
int dm_validate_warn(struct dm_validate_warnings *w, const char *path, const char *text,
                     size_t len);

#endif
