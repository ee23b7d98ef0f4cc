/*
 * migrate: replays a repository's SQL migrations in an in-memory SQLite database — the existing
 * ones in order, then the change's new ones — so that a new migration is checked against the
 * schema the old ones built: `ALTER TABLE users ADD COLUMN ...` against a table an old migration
 * created passes, `CREATE TABLE users (...)` without IF NOT EXISTS of an existing table fails
 * with "<file>:<line>: table users already exists".
 *
 * The one place that applies schema (validate.c may call it later). What runs: schema
 * statements (CREATE TABLE/INDEX/VIEW/TRIGGER, ALTER, DROP) are executed; data statements
 * (INSERT/UPDATE/DELETE with VALUES or WHERE) are prepared only, so their tables and columns are
 * checked but no row is ever written; PRAGMA is skipped. Refused outright, with a clear message
 * and never run: statements that produce or copy data (CREATE TABLE ... AS SELECT,
 * INSERT ... SELECT, recursive CTEs), ATTACH, DETACH and VACUUM.
 *
 * Caps: SQLITE_LIMIT_LENGTH and SQLITE_LIMIT_SQL_LENGTH, a progress handler with a wall-time
 * deadline, and SQLite's process-wide hard heap limit (sqlite3_hard_heap_limit64, set once to
 * limits.heap_bytes unless a smaller one is already in force: it applies to every SQLite use of
 * the process).
 *
 * Pure (SQLite only), no shared state but SQLite's heap limit; any thread. Slow for big inputs:
 * callers on the loop thread run it on the threadpool.
 */
#ifndef DREAM_MIGRATE_H
#define DREAM_MIGRATE_H

#include <stddef.h>

#include "dream/core/error.h"

/* One migration file. */
struct dm_migration {
    const char *path; /* repository-relative; only its file name orders the replay */
    const char *sql;  /* len bytes, need not be NUL-terminated */
    size_t len;
    int is_new; /* 1: part of the change; 0: already on the base */
};

struct dm_migrate_limits {
    size_t heap_bytes;   /* SQLite's hard heap limit (0 = 64 MiB) */
    int sql_length;      /* longest statement, bytes (0 = 1 MiB) */
    int value_length;    /* longest string or blob (0 = 1 MiB) */
    unsigned timeout_ms; /* the whole replay (0 = 5000) */
    int strict_refs;     /* 1: a reference to a table, column, index, view or trigger that no
                            migration made is an error; 0: the statement is skipped and counted
                            (report->unresolved): the database may have it from elsewhere */
};

#define DM_MIGRATE_LIMITS_INIT                                                                     \
    {                                                                                              \
        0, 0, 0, 0, 0                                                                              \
    }

/* What a replay did. */
struct dm_migrate_report {
    size_t applied;       /* files replayed without an error */
    size_t base_failures; /* existing migrations that failed (the replay went on past them) */
    char base_error[512]; /* the first of those, "<file>:<line>: <message>" ("" when none) */
    size_t unresolved;    /* statements skipped for a reference no migration made (not strict) */
    char first_unresolved[512]; /* the first of those, "<file>:<line>: <message>" */
};

/*
 * Replays the n migrations: the existing ones (is_new 0) ordered by file name, then the new ones
 * ordered by file name. An error in an existing migration is not the change's: it is counted
 * in report->base_failures (the first one kept in base_error) and the replay goes on with the
 * next file. The first error in a new migration stops the replay.
 *
 * Returns 0 when every new migration applied; DM_ERR_INVALID with err->msg
 * "<file>:<line>: <message>" (SQLite's message, or the reason a statement is refused) and
 * *failed (may be NULL) set to the index in m of the file at fault; DM_ERR_TIMEOUT when the
 * deadline passed (err names the file); DM_ERR_LIMIT (a statement over the caps);
 * DM_ERR_NOMEM / DM_ERR_IO when SQLite could not open its database. report may be NULL.
 */
int dm_migrate_replay(const struct dm_migration *m, size_t n, const struct dm_migrate_limits *lim,
                      struct dm_migrate_report *report, size_t *failed, struct dm_error *err);

/* The replay order of m (existing by file name, then new by file name): idx (n entries) gets
 * the indexes into m. */
void dm_migrate_order(const struct dm_migration *m, size_t n, size_t *idx);

/* 1 when path looks like a SQL migration file (a ".sql" extension, case-insensitive). */
int dm_migrate_is_sql(const char *path);

#endif
