/*
 * validate_sql: the SQL check of generated migrations (dm_validate_sql in
 * include/dream/domain/validate.h): each statement prepared in a private in-memory SQLite
 * database, schema statements applied, nothing that copies rows run, every cost capped. Pure
 * (SQLite in memory); any thread.
 */
#include "dream/core/text.h"
#include "dream/domain/validate.h"

#include <ctype.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define SQL_PROGRESS_MAX 2000
/* What validation may cost, whatever the model wrote: a value (string, blob, row) at most
 * SQL_VALUE_MAX bytes, an expression at most SQL_EXPR_DEPTH deep, a statement at most
 * SQL_VDBE_OPS instructions, all of SQLite's heap at most SQL_HEAP_MAX (process-wide: dreamd
 * uses SQLite only to check generated SQL), and SQL_DEADLINE_MS of wall time per file. */
#define SQL_VALUE_MAX (1 << 20)
#define SQL_EXPR_DEPTH 100
#define SQL_VDBE_OPS 50000
#define SQL_HEAP_MAX ((sqlite3_int64)64 << 20)
#define SQL_DEADLINE_MS 2000
/* Tables stubbed to re-check a statement that referenced an unknown one. */
#define SQL_STUBS_MAX 64

/* Skips whitespace and SQL comments. */
static const char *sql_skip_space(const char *p, const char *end)
{
    while (p < end) {
        if (isspace((unsigned char)*p)) {
            p++;
        } else if (p + 1 < end && p[0] == '-' && p[1] == '-') {
            while (p < end && *p != '\n') {
                p++;
            }
        } else if (p + 1 < end && p[0] == '/' && p[1] == '*') {
            const char *q = p + 2;
            while (q + 1 < end && !(q[0] == '*' && q[1] == '/')) {
                q++;
            }
            p = q + 1 < end ? q + 2 : end;
        } else {
            break;
        }
    }
    return p;
}

static int sql_is_schema(const char *sql)
{
    const char *p;
    size_t n;

    if (!sql) {
        return 0;
    }
    p = sql_skip_space(sql, sql + strlen(sql));
    for (n = 0; isalpha((unsigned char)p[n]); n++) {
    }
    return (n == 6 && !strncasecmp(p, "create", 6)) || (n == 5 && !strncasecmp(p, "alter", 5)) ||
           (n == 4 && !strncasecmp(p, "drop", 4));
}

/* Errors about schema objects the file does not create: they may exist in the target. */
static int sql_is_unresolved(const char *msg)
{
    static const char *const prefixes[] = {"no such table:", "no such column:",  "no such index:",
                                           "no such view:",  "no such trigger:", "no such module:"};
    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
        if (!strncmp(msg, prefixes[i], strlen(prefixes[i]))) {
            return 1;
        }
    }
    return !strncmp(msg, "table ", 6) && strstr(msg, " has no column named ") != NULL;
}

/* The end of the statement starting at p (just past its ';', or end), by asking SQLite when a
 * prefix is a complete statement; used when a prepare error left the tail mid-statement. The
 * buffer is NUL-terminated at end and writable. */
static const char *sql_statement_end(char *p, char *end)
{
    for (char *q = p; q < end; q++) {
        if (*q == ';') {
            char saved = q[1];
            int complete;
            q[1] = '\0';
            complete = sqlite3_complete(p);
            q[1] = saved;
            if (complete) {
                return q + 1;
            }
        }
    }
    return end;
}

static long long sql_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct sql_budget {
    int calls;
    long long deadline_ms;
};

static int on_sql_progress(void *arg)
{
    struct sql_budget *b = arg;
    return ++b->calls > SQL_PROGRESS_MAX || sql_now_ms() > b->deadline_ms;
}

/* The next token of a statement: a word, a quoted name ("x", `x`, [x], 'x') or one other byte.
 * Comments and white space are skipped. Returns the token's start (its length in *n), or NULL
 * at the end. */
static const char *sql_token(const char **pp, size_t *n)
{
    const char *p = *pp;
    const char *start;

    p = sql_skip_space(p, p + strlen(p));
    if (!*p) {
        *pp = p;
        return NULL;
    }
    start = p;
    if (*p == '"' || *p == '`' || *p == '[' || *p == '\'') {
        char close = *p == '[' ? ']' : *p;
        for (p++; *p; p++) {
            if (*p == close) {
                if (close != ']' && p[1] == close) {
                    p++; /* a doubled quote inside the name */
                    continue;
                }
                p++;
                break;
            }
        }
    } else if (isalnum((unsigned char)*p) || *p == '_') {
        while (isalnum((unsigned char)*p) || *p == '_' || *p == '$') {
            p++;
        }
    } else {
        p++;
    }
    *n = (size_t)(p - start);
    *pp = p;
    return start;
}

static int sql_word(const char *tok, size_t n, const char *word)
{
    return tok && n == strlen(word) && !strncasecmp(tok, word, n);
}

/* 1 for CREATE [TEMP|TEMPORARY] TABLE [IF NOT EXISTS] name AS ...: a schema statement that
 * runs a query and copies its rows, which validation never does. */
static int sql_is_create_as(const char *sql)
{
    const char *p = sql;
    const char *t;
    size_t n = 0;

    t = sql_token(&p, &n);
    if (!sql_word(t, n, "create")) {
        return 0;
    }
    t = sql_token(&p, &n);
    if (sql_word(t, n, "temp") || sql_word(t, n, "temporary")) {
        t = sql_token(&p, &n);
    }
    if (!sql_word(t, n, "table")) {
        return 0;
    }
    t = sql_token(&p, &n);
    if (sql_word(t, n, "if")) {
        sql_token(&p, &n); /* not */
        sql_token(&p, &n); /* exists */
        t = sql_token(&p, &n);
    }
    t = sql_token(&p, &n); /* after the name: "(", ".", or AS */
    if (t && n == 1 && *t == '.') {
        sql_token(&p, &n); /* the name after its schema */
        t = sql_token(&p, &n);
    }
    return sql_word(t, n, "as");
}

static int sql_fail(struct dm_error *err, const char *text, const char *stmt, const char *end,
                    int offset, const char *msg);

/* Applies a schema statement. Returns SQLITE_INTERRUPT when the check's budget (time or work)
 * stopped it, else 0: runtime errors (a duplicate table, a constraint) are not syntax. */
static int sql_run_schema(sqlite3_stmt *stmt)
{
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    }
    return rc == SQLITE_INTERRUPT ? rc : 0;
}

/* The check passed one of its budgets (the progress handler stopped SQLite, or the deadline
 * passed between statements): the file fails with the limit named, never passes unchecked. */
static int sql_fail_budget(struct dm_error *err, const char *text, const char *stmt,
                           const char *end, const struct sql_budget *b)
{
    struct dm_error at;
    char msg[200];

    if (b->calls > SQL_PROGRESS_MAX) {
        snprintf(msg, sizeof(msg),
                 "the SQL check passed its work limit (%d million SQLite steps); a migration "
                 "should only declare schema",
                 SQL_PROGRESS_MAX / 1000);
    } else {
        snprintf(msg, sizeof(msg),
                 "the SQL check passed its time limit (%d s); a migration should only declare "
                 "schema",
                 SQL_DEADLINE_MS / 1000);
    }
    sql_fail(&at, text, stmt, end, -1, msg);
    return dm_error_set(err, DM_ERR_LIMIT, "%s", at.msg);
}

/* For "no such table: [main.]NAME": creates a one-column stand-in so the statement can be
 * prepared again and the rest of it checked. Returns 1 when the stub was made. */
static int sql_stub_table(sqlite3 *db, const char *msg, int *stubs)
{
    const char *name = msg + strlen("no such table: ");
    char *sql;
    int rc;

    if (strncmp(msg, "no such table: ", 15) || *stubs >= SQL_STUBS_MAX) {
        return 0;
    }
    if (!strncmp(name, "main.", 5)) {
        name += 5;
    }
    if (!*name) {
        return 0;
    }
    sql = sqlite3_mprintf("CREATE TABLE \"%w\"(dm_stub)", name);
    if (!sql) {
        return 0;
    }
    rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    sqlite3_free(sql);
    if (rc == SQLITE_OK) {
        ++*stubs;
        return 1;
    }
    return 0;
}

static void sql_drop_stub(sqlite3 *db, const char *name)
{
    char *sql = sqlite3_mprintf("DROP TABLE IF EXISTS \"%w\"", name);
    if (sql) {
        sqlite3_exec(db, sql, NULL, NULL, NULL);
        sqlite3_free(sql);
    }
}

static int sql_fail(struct dm_error *err, const char *text, const char *stmt, const char *end,
                    int offset, const char *msg)
{
    const char *at;
    unsigned line;
    unsigned col;

    if (offset >= 0 && stmt + offset <= end) {
        at = stmt + offset;
        dm_text_line_col(text, (size_t)(at - text), &line, &col);
        return dm_error_set(err, DM_ERR_INVALID, "line %u, column %u: %s", line, col, msg);
    }
    at = sql_skip_space(stmt, end);
    dm_text_line_col(text, (size_t)(at - text), &line, &col);
    return dm_error_set(err, DM_ERR_INVALID, "line %u: %s", line, msg);
}

int dm_validate_sql(const char *text, size_t len, struct dm_error *err)
{
    sqlite3 *db = NULL;
    char *copy = NULL;
    char *p;
    char *end;
    struct sql_budget progress = {0, 0};
    int stubs = 0;
    int rc = 0;

    if (len >= INT_MAX) {
        rc = dm_error_set(err, DM_ERR_LIMIT, "SQL file too large");
        goto out;
    }
    if (len && memchr(text, '\0', len)) {
        unsigned line;
        unsigned col;
        dm_text_line_col(text, (size_t)((const char *)memchr(text, '\0', len) - text), &line, &col);
        rc = dm_error_set(err, DM_ERR_INVALID, "line %u, column %u: NUL byte in SQL", line, col);
        goto out;
    }
    copy = malloc(len + 1);
    if (!copy) {
        rc = dm_error_set(err, DM_ERR_NOMEM, "out of memory");
        goto out;
    }
    memcpy(copy, text, len);
    copy[len] = '\0';
    /* Process-wide and idempotent: however many checks run at once, SQLite's heap stays capped. */
    if (sqlite3_hard_heap_limit64(-1) == 0 || sqlite3_hard_heap_limit64(-1) > SQL_HEAP_MAX) {
        sqlite3_hard_heap_limit64(SQL_HEAP_MAX);
    }
    if (sqlite3_open_v2(":memory:", &db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        rc = dm_error_set(err, db ? DM_ERR_IO : DM_ERR_NOMEM, "sqlite: cannot open a database: %s",
                          db ? sqlite3_errmsg(db) : "out of memory");
        goto out;
    }
    sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
    sqlite3_db_config(db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
    sqlite3_limit(db, SQLITE_LIMIT_LENGTH, SQL_VALUE_MAX);
    sqlite3_limit(db, SQLITE_LIMIT_EXPR_DEPTH, SQL_EXPR_DEPTH);
    sqlite3_limit(db, SQLITE_LIMIT_VDBE_OP, SQL_VDBE_OPS);
    sqlite3_limit(db, SQLITE_LIMIT_ATTACHED, 0);
    progress.deadline_ms = sql_now_ms() + SQL_DEADLINE_MS;
    sqlite3_progress_handler(db, 1000, on_sql_progress, &progress);

    p = copy;
    end = copy + len;
    while (p < end) {
        sqlite3_stmt *stmt = NULL;
        const char *tail = NULL;
        const char *msg;
        int prc;

        /* Preparing is outside the progress handler's reach: the deadline holds between
         * statements too. */
        if (sql_now_ms() > progress.deadline_ms) {
            rc = sql_fail_budget(err, copy, p, end, &progress);
            goto out;
        }
        prc = sqlite3_prepare_v2(db, p, (int)(end - p) + 1, &stmt, &tail);

        if (prc == SQLITE_OK) {
            if (stmt && sql_is_create_as(sqlite3_sql(stmt))) {
                sqlite3_finalize(stmt);
                rc = sql_fail(err, copy, p, end, -1,
                              "CREATE TABLE ... AS copies the rows of a query: a migration is "
                              "checked by applying its schema only; create the table with its "
                              "columns, then fill it");
                goto out;
            }
            if (stmt && sql_is_schema(sqlite3_sql(stmt)) && sql_run_schema(stmt)) {
                sqlite3_finalize(stmt);
                rc = sql_fail_budget(err, copy, p, end, &progress);
                goto out;
            }
            sqlite3_finalize(stmt);
            if (!tail || tail <= p) {
                break;
            }
            p = (char *)tail;
            continue;
        }
        msg = sqlite3_errmsg(db);
        if (!sql_is_unresolved(msg)) {
            rc = sql_fail(err, copy, p, end, sqlite3_error_offset(db), msg);
            goto out;
        }
        /* An unknown table can stop SQLite before the rest of the statement was parsed (ALTER
         * TABLE): check the statement again against a stand-in table, then forget it. */
        if (!strncmp(msg, "no such table: ", 15)) {
            char name[256];
            snprintf(name, sizeof(name), "%s", msg + 15);
            if (sql_stub_table(db, msg, &stubs)) {
                int again = sqlite3_prepare_v2(db, p, (int)(end - p) + 1, &stmt, &tail);
                sqlite3_finalize(stmt);
                if (again != SQLITE_OK && !sql_is_unresolved(sqlite3_errmsg(db))) {
                    rc = sql_fail(err, copy, p, end, sqlite3_error_offset(db), sqlite3_errmsg(db));
                    goto out;
                }
                sql_drop_stub(db, !strncmp(name, "main.", 5) ? name + 5 : name);
            }
        }
        tail = sql_statement_end(p, end);
        if (tail <= p) {
            break;
        }
        p = (char *)tail;
    }
out:
    sqlite3_close(db);
    free(copy);
    return rc;
}
