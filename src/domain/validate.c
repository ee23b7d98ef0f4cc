/*
 * validate: syntax checks of generated SQL and JSON, the choice of the external TS/JS check, and
 * the advisory warnings for the PR body (see include/dream/domain/validate.h).
 *
 * Owns nothing beyond one call: each SQL check opens and closes its own in-memory SQLite
 * database; patterns are compiled per call. Pure; any thread.
 */
#include "dream/domain/validate.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#define WARN_MAX_PER_FILE 20
/* Progress-handler calls (of 1000 VM steps each) allowed for the schema statements of a file. */
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

enum dm_validate_kind dm_validate_kind_of(const char *path)
{
    static const struct {
        const char *ext;
        enum dm_validate_kind kind;
    } exts[] = {
        {".sql", DM_VALIDATE_SQL}, {".json", DM_VALIDATE_JSON}, {".ts", DM_VALIDATE_TS},
        {".mts", DM_VALIDATE_TS},  {".cts", DM_VALIDATE_TS},    {".tsx", DM_VALIDATE_TSX},
        {".js", DM_VALIDATE_JS},   {".mjs", DM_VALIDATE_JS},    {".cjs", DM_VALIDATE_JS},
        {".jsx", DM_VALIDATE_JSX},
    };
    const char *slash;
    const char *dot;

    if (!path) {
        return DM_VALIDATE_NONE;
    }
    slash = strrchr(path, '/');
    dot = strrchr(slash ? slash : path, '.');
    if (!dot) {
        return DM_VALIDATE_NONE;
    }
    for (size_t i = 0; i < sizeof(exts) / sizeof(exts[0]); i++) {
        if (!strcasecmp(dot, exts[i].ext)) {
            return exts[i].kind;
        }
    }
    return DM_VALIDATE_NONE;
}

const char *dm_validate_esbuild_loader(const char *path)
{
    switch (dm_validate_kind_of(path)) {
    case DM_VALIDATE_TS:
        return "ts";
    case DM_VALIDATE_TSX:
        return "tsx";
    case DM_VALIDATE_JS:
        return "js";
    case DM_VALIDATE_JSX:
        return "jsx";
    default:
        return NULL;
    }
}

/* 1-based line and column (in bytes) of offset off in text. */
static void line_col(const char *text, size_t off, unsigned *line, unsigned *col)
{
    unsigned l = 1;
    size_t last_nl = 0;
    int seen = 0;

    for (size_t i = 0; i < off; i++) {
        if (text[i] == '\n') {
            l++;
            last_nl = i;
            seen = 1;
        }
    }
    *line = l;
    *col = (unsigned)(seen ? off - last_nl : off + 1);
}

/* ---- SQL ---------------------------------------------------------------------------------- */

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

static void sql_run_schema(sqlite3_stmt *stmt)
{
    /* Runtime errors (a duplicate table, a constraint) are not syntax: ignore them. */
    while (sqlite3_step(stmt) == SQLITE_ROW) {
    }
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
        line_col(text, (size_t)(at - text), &line, &col);
        return dm_error_set(err, DM_ERR_INVALID, "line %u, column %u: %s", line, col, msg);
    }
    at = sql_skip_space(stmt, end);
    line_col(text, (size_t)(at - text), &line, &col);
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
        line_col(text, (size_t)((const char *)memchr(text, '\0', len) - text), &line, &col);
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
        int prc = sqlite3_prepare_v2(db, p, (int)(end - p) + 1, &stmt, &tail);

        if (prc == SQLITE_OK) {
            if (stmt && sql_is_create_as(sqlite3_sql(stmt))) {
                sqlite3_finalize(stmt);
                rc = sql_fail(err, copy, p, end, -1,
                              "CREATE TABLE ... AS copies the rows of a query: a migration is "
                              "checked by applying its schema only; create the table with its "
                              "columns, then fill it");
                goto out;
            }
            if (stmt && sql_is_schema(sqlite3_sql(stmt))) {
                sql_run_schema(stmt);
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

/* ---- JSON --------------------------------------------------------------------------------- */

int dm_validate_json(const char *text, size_t len, struct dm_error *err)
{
    const char *endp = NULL;
    cJSON *item;
    size_t pos;
    unsigned line;
    unsigned col;

    for (pos = 0; pos < len && isspace((unsigned char)text[pos]); pos++) {
    }
    if (pos == len) {
        return dm_error_set(err, DM_ERR_INVALID, "empty document");
    }
    item = cJSON_ParseWithLengthOpts(text, len, &endp, 0);
    if (!item) {
        char snippet[24];
        size_t n = 0;
        pos = endp && endp >= text && endp <= text + len ? (size_t)(endp - text) : 0;
        for (size_t i = pos; i < len && n < 16; i++) {
            unsigned char c = (unsigned char)text[i];
            if (c == '\n') {
                break;
            }
            snippet[n++] = (char)(c >= 0x20 && c < 0x7f ? c : '?');
        }
        snippet[n] = '\0';
        line_col(text, pos, &line, &col);
        return dm_error_set(err, DM_ERR_INVALID, "line %u, column %u: invalid JSON near '%s'", line,
                            col, snippet);
    }
    cJSON_Delete(item);
    pos = endp && endp >= text && endp <= text + len ? (size_t)(endp - text) : len;
    while (pos < len && isspace((unsigned char)text[pos])) {
        pos++;
    }
    if (pos < len) {
        line_col(text, pos, &line, &col);
        return dm_error_set(err, DM_ERR_INVALID,
                            "line %u, column %u: trailing characters after the JSON value", line,
                            col);
    }
    return 0;
}

int dm_validate_file(const char *path, const char *text, size_t len, struct dm_error *err)
{
    int rc;

    switch (dm_validate_kind_of(path)) {
    case DM_VALIDATE_SQL:
        rc = dm_validate_sql(text, len, err);
        break;
    case DM_VALIDATE_JSON:
        rc = dm_validate_json(text, len, err);
        break;
    default:
        return 0;
    }
    if (rc) {
        dm_error_wrap(err, "%s", path);
    }
    return rc;
}

/* ---- warnings ----------------------------------------------------------------------------- */

enum mask_class { MASK_CODE = 0, MASK_STRING = 1, MASK_COMMENT = 2 };

/* Classifies every byte of text as code, string or comment, for JS/TS (js = 1) or SQL. */
static void classify(const char *t, size_t len, int js, unsigned char *cls)
{
    size_t i = 0;

    while (i < len) {
        char c = t[i];
        if (c == '/' && i + 1 < len && t[i + 1] == '/' && js) {
            while (i < len && t[i] != '\n') {
                cls[i++] = MASK_COMMENT;
            }
        } else if (c == '-' && i + 1 < len && t[i + 1] == '-' && !js) {
            while (i < len && t[i] != '\n') {
                cls[i++] = MASK_COMMENT;
            }
        } else if (c == '/' && i + 1 < len && t[i + 1] == '*') {
            cls[i++] = MASK_COMMENT;
            cls[i++] = MASK_COMMENT;
            while (i < len && !(t[i] == '*' && i + 1 < len && t[i + 1] == '/')) {
                cls[i++] = MASK_COMMENT;
            }
            for (int k = 0; k < 2 && i < len; k++) {
                cls[i++] = MASK_COMMENT;
            }
        } else if (c == '\'' || (js && (c == '"' || c == '`'))) {
            char q = c;
            cls[i++] = MASK_STRING;
            while (i < len && t[i] != q) {
                if (js && t[i] == '\\' && i + 1 < len) {
                    cls[i++] = MASK_STRING;
                } else if (js && q != '`' && t[i] == '\n') {
                    break; /* unterminated: do not swallow the rest of the file */
                }
                cls[i++] = MASK_STRING;
            }
            if (i < len && t[i] == q) {
                cls[i++] = MASK_STRING;
            }
        } else {
            cls[i++] = MASK_CODE;
        }
    }
}

/* A copy of text where bytes not of class keep are spaces (newlines kept, so lines stay). */
static char *masked(const char *t, size_t len, const unsigned char *cls, int keep)
{
    char *m = malloc(len + 1);
    if (!m) {
        return NULL;
    }
    for (size_t i = 0; i < len; i++) {
        m[i] = cls[i] == keep || t[i] == '\n' ? t[i] : ' ';
    }
    m[len] = '\0';
    return m;
}

struct warn_ctx {
    struct dm_validate_warnings *w;
    const char *path;
    int added;
    int dropped;
};

static int add_warning(struct warn_ctx *c, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int add_warning(struct warn_ctx *c, unsigned line, const char *fmt, ...)
{
    struct dm_validate_warnings *w = c->w;
    struct dm_validate_warning *it;
    char msg[512];
    va_list ap;

    if (c->added >= WARN_MAX_PER_FILE) {
        c->dropped++;
        return 0;
    }
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (w->count == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 8;
        void *p = realloc(w->items, cap * sizeof(*w->items));
        if (!p) {
            return DM_ERR_NOMEM;
        }
        w->items = p;
        w->cap = cap;
    }
    it = &w->items[w->count];
    it->path = strdup(c->path);
    it->message = strdup(msg);
    it->line = line;
    if (!it->path || !it->message) {
        free(it->path);
        free(it->message);
        return DM_ERR_NOMEM;
    }
    w->count++;
    c->added++;
    return 0;
}

/* Runs pattern over subject; returns the number of matches (or a negative dm_err), stores the
 * offsets of the first max matches in offs. */
static int find_all(const char *pattern, uint32_t flags, const char *subject, size_t len,
                    size_t *offs, int max)
{
    pcre2_code *re = NULL;
    pcre2_match_data *md = NULL;
    PCRE2_SIZE start = 0;
    int errcode;
    PCRE2_SIZE erroff;
    int n = 0;

    re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, flags, &errcode, &erroff, NULL);
    if (!re) {
        n = DM_ERR_IO;
        goto out;
    }
    md = pcre2_match_data_create_from_pattern(re, NULL);
    if (!md) {
        n = DM_ERR_NOMEM;
        goto out;
    }
    while (start <= len) {
        PCRE2_SIZE *ov;
        int m = pcre2_match(re, (PCRE2_SPTR)subject, len, start, 0, md, NULL);
        if (m < 0) {
            break;
        }
        ov = pcre2_get_ovector_pointer(md);
        if (n < max) {
            offs[n] = ov[0];
        }
        n++;
        start = ov[1] > ov[0] ? ov[1] : ov[0] + 1;
    }
out:
    pcre2_match_data_free(md);
    pcre2_code_free(re);
    return n;
}

static int only_space(const char *t, size_t len, const char *also)
{
    for (size_t i = 0; i < len; i++) {
        if (!isspace((unsigned char)t[i]) && !(also && t[i] && strchr(also, t[i]))) {
            return 0;
        }
    }
    return 1;
}

/* One warning for the first of the matches (with their count). */
static int warn_first(struct warn_ctx *c, const char *pattern, uint32_t flags, const char *subject,
                      size_t len, const char *what)
{
    size_t off;
    unsigned line;
    unsigned col;
    int n = find_all(pattern, flags, subject, len, &off, 1);

    if (n <= 0) {
        return n;
    }
    line_col(subject, off, &line, &col);
    if (n == 1) {
        return add_warning(c, line, "%s", what);
    }
    return add_warning(c, line, "%s (%d times, first here)", what, n);
}

int dm_validate_warn(struct dm_validate_warnings *w, const char *path, const char *text, size_t len)
{
    enum dm_validate_kind kind = dm_validate_kind_of(path);
    int js = kind == DM_VALIDATE_TS || kind == DM_VALIDATE_TSX || kind == DM_VALIDATE_JS ||
             kind == DM_VALIDATE_JSX;
    int ts = kind == DM_VALIDATE_TS || kind == DM_VALIDATE_TSX;
    struct warn_ctx c = {w, path ? path : "", 0, 0};
    size_t before = w->count;
    unsigned char *cls = NULL;
    char *code = NULL;
    char *comments = NULL;
    char *strings = NULL;
    int rc = 0;

    if (only_space(text, len, NULL)) {
        rc = add_warning(&c, 0, "empty file");
        goto out;
    }
    if (!js && kind != DM_VALIDATE_SQL) {
        goto out;
    }
    cls = malloc(len ? len : 1);
    if (!cls) {
        rc = DM_ERR_NOMEM;
        goto out;
    }
    classify(text, len, js, cls);
    code = masked(text, len, cls, MASK_CODE);
    comments = masked(text, len, cls, MASK_COMMENT);
    strings = masked(text, len, cls, MASK_STRING);
    if (!code || !comments || !strings) {
        rc = DM_ERR_NOMEM;
        goto out;
    }

    if (kind == DM_VALIDATE_SQL) {
        size_t offs[WARN_MAX_PER_FILE + 1];
        int n;
        if (only_space(code, len, ";")) {
            rc = add_warning(&c, 0, "no SQL statement");
            if (rc) {
                goto out;
            }
        }
        n = find_all("\\bDROP\\s+TABLE\\b(?!\\s+IF\\s+EXISTS\\b)", PCRE2_CASELESS, code, len, offs,
                     WARN_MAX_PER_FILE + 1);
        if (n < 0) {
            rc = n;
            goto out;
        }
        for (int i = 0; i < n; i++) {
            unsigned line;
            unsigned col;
            if (i > WARN_MAX_PER_FILE) {
                c.dropped++;
                continue;
            }
            line_col(code, offs[i], &line, &col);
            rc = add_warning(&c, line, "DROP TABLE without IF EXISTS");
            if (rc) {
                goto out;
            }
        }
    } else {
        if (only_space(code, len, NULL)) {
            rc = add_warning(&c, 0, "stub only: no code outside comments");
            if (rc) {
                goto out;
            }
        }
        if (ts) {
            rc = warn_first(&c, "(?:[:<|&,(\\[]|=>|\\bas\\b|\\bkeyof\\b)\\s*any(?![\\w$])", 0, code,
                            len, "`any` type");
            if (rc < 0) {
                goto out;
            }
        }
        rc = warn_first(&c, "(?<![\\w$])eval\\s*\\(", 0, code, len, "`eval(` call");
        if (rc < 0) {
            goto out;
        }
    }
    rc = warn_first(&c, "\\b(?:TODO|FIXME)\\b", 0, comments, len, "TODO placeholder");
    if (rc < 0) {
        goto out;
    }
    rc = warn_first(&c, "not\\s+implemented", PCRE2_CASELESS, strings, len,
                    "\"not implemented\" placeholder");
    if (rc < 0) {
        goto out;
    }
    rc = 0;
out:
    if (!rc && c.dropped) {
        int dropped = c.dropped;
        c.added = 0; /* the summary always fits */
        rc = add_warning(&c, 0, "%d more warnings left out", dropped);
    }
    free(cls);
    free(code);
    free(comments);
    free(strings);
    return rc ? rc : (int)(w->count - before);
}

void dm_validate_warnings_init(struct dm_validate_warnings *w)
{
    w->items = NULL;
    w->count = 0;
    w->cap = 0;
}

void dm_validate_warnings_free(struct dm_validate_warnings *w)
{
    if (!w) {
        return;
    }
    for (size_t i = 0; i < w->count; i++) {
        free(w->items[i].path);
        free(w->items[i].message);
    }
    free(w->items);
    dm_validate_warnings_init(w);
}
