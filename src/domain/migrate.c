/*
 * migrate: the SQL migration replay in an in-memory SQLite database (contract in
 * include/dream/domain/migrate.h). An authorizer classifies each statement while it is
 * prepared (schema, data, refused); schema statements are stepped, data statements only
 * prepared. Pure; any thread.
 */
#include "dream/domain/migrate.h"

#include <sqlite3.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define HEAP_DEFAULT ((size_t)64 << 20)
#define SQL_LENGTH_DEFAULT (1 << 20)
#define VALUE_LENGTH_DEFAULT (1 << 20)
#define TIMEOUT_DEFAULT_MS 5000u

/* What the authorizer saw while one statement was prepared. */
struct seen {
    int schema; /* creates, alters or drops a schema object */
    int view_or_trigger;
    int create_table;
    int insert;
    int select;
    int recursive;
    int attach; /* ATTACH or DETACH */
    int pragma;
};

struct replay {
    struct seen seen;
    int strict_refs;
    struct dm_migrate_report *report;
    long long deadline_ms;
    int timed_out;
};

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int on_progress(void *arg)
{
    struct replay *r = arg;
    if (now_ms() > r->deadline_ms) {
        r->timed_out = 1;
        return 1;
    }
    return 0;
}

static int on_authorize(void *arg, int action, const char *a, const char *b, const char *c,
                        const char *d)
{
    struct seen *s = &((struct replay *)arg)->seen;
    (void)a;
    (void)b;
    (void)c;
    (void)d;
    switch (action) {
    case SQLITE_CREATE_TABLE:
    case SQLITE_CREATE_TEMP_TABLE:
        s->create_table = 1;
        s->schema = 1;
        break;
    case SQLITE_CREATE_VIEW:
    case SQLITE_CREATE_TEMP_VIEW:
    case SQLITE_CREATE_TRIGGER:
    case SQLITE_CREATE_TEMP_TRIGGER:
        s->view_or_trigger = 1;
        s->schema = 1;
        break;
    case SQLITE_CREATE_INDEX:
    case SQLITE_CREATE_TEMP_INDEX:
    case SQLITE_CREATE_VTABLE:
    case SQLITE_ALTER_TABLE:
    case SQLITE_DROP_INDEX:
    case SQLITE_DROP_TABLE:
    case SQLITE_DROP_TEMP_INDEX:
    case SQLITE_DROP_TEMP_TABLE:
    case SQLITE_DROP_TEMP_TRIGGER:
    case SQLITE_DROP_TEMP_VIEW:
    case SQLITE_DROP_TRIGGER:
    case SQLITE_DROP_VIEW:
    case SQLITE_DROP_VTABLE:
        s->schema = 1;
        break;
    case SQLITE_INSERT:
        s->insert = 1;
        break;
    case SQLITE_SELECT:
        s->select = 1;
        break;
    case SQLITE_RECURSIVE:
        s->recursive = 1;
        break;
    case SQLITE_ATTACH:
    case SQLITE_DETACH:
        s->attach = 1;
        return SQLITE_DENY;
    case SQLITE_PRAGMA:
        s->pragma = 1;
        return SQLITE_IGNORE;
    default:
        break;
    }
    return SQLITE_OK;
}

/* 1-based line of offset off in text. */
static unsigned line_of(const char *text, size_t off)
{
    unsigned line = 1;
    for (size_t i = 0; i < off && text[i]; i++) {
        line += text[i] == '\n';
    }
    return line;
}

/* The first byte of the statement at p that is not blank space or a comment. */
static const char *skip_blank(const char *p)
{
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n' || *p == '\f') {
            p++;
        }
        if (p[0] == '-' && p[1] == '-') {
            while (*p && *p != '\n') {
                p++;
            }
        } else if (p[0] == '/' && p[1] == '*') {
            const char *e = strstr(p + 2, "*/");
            p = e ? e + 2 : p + strlen(p);
        } else {
            return p;
        }
    }
}

static int starts_word(const char *p, const char *word)
{
    size_t n = strlen(word);
    return strncasecmp(p, word, n) == 0 &&
           !((p[n] >= 'A' && p[n] <= 'Z') || (p[n] >= 'a' && p[n] <= 'z') || p[n] == '_');
}

/* Why a prepared statement is refused, or NULL when it may be replayed. */
static const char *refusal(const struct seen *s, const char *stmt)
{
    if (s->attach || starts_word(stmt, "ATTACH") || starts_word(stmt, "DETACH")) {
        return "ATTACH and DETACH are not replayed (a migration must not open other databases)";
    }
    if (starts_word(stmt, "VACUUM")) {
        return "VACUUM is not replayed (it copies the database)";
    }
    if (s->recursive) {
        return "recursive CTEs are not replayed (they produce data)";
    }
    if (s->create_table && s->select) {
        return "CREATE TABLE ... AS SELECT is not replayed (it copies data)";
    }
    if (s->insert && s->select && !s->view_or_trigger) {
        return "INSERT ... SELECT is not replayed (it copies data)";
    }
    return NULL;
}

/* SQLite's messages for a reference to a schema object that does not exist. */
static int is_unresolved(const char *msg)
{
    static const char *const prefixes[] = {
        "no such table:", "no such column:", "no such index:", "no such view:", "no such trigger:"};
    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
        if (strncmp(msg, prefixes[i], strlen(prefixes[i])) == 0) {
            return 1;
        }
    }
    return strstr(msg, " has no column named ") != NULL;
}

/* The end of the statement that starts at p (past its ';'), or the end of the text. */
static char *statement_end(char *p)
{
    for (char *q = strchr(p, ';'); q; q = strchr(q + 1, ';')) {
        char keep = q[1];
        int complete;
        q[1] = '\0';
        complete = sqlite3_complete(p);
        q[1] = keep;
        if (complete) {
            return q + 1;
        }
    }
    return p + strlen(p);
}

static int by_name(const void *a, const void *b)
{
    const struct dm_migration *x = *(const struct dm_migration *const *)a;
    const struct dm_migration *y = *(const struct dm_migration *const *)b;
    const char *xs = strrchr(x->path, '/');
    const char *ys = strrchr(y->path, '/');
    int c;
    if (x->is_new != y->is_new) {
        return x->is_new - y->is_new;
    }
    c = strcmp(xs ? xs + 1 : x->path, ys ? ys + 1 : y->path);
    return c ? c : strcmp(x->path, y->path);
}

void dm_migrate_order(const struct dm_migration *m, size_t n, size_t *idx)
{
    const struct dm_migration **order = calloc(n + 1, sizeof(*order));
    if (!order) {
        for (size_t i = 0; i < n; i++) {
            idx[i] = i;
        }
        return;
    }
    for (size_t i = 0; i < n; i++) {
        order[i] = &m[i];
    }
    qsort(order, n, sizeof(*order), by_name);
    for (size_t i = 0; i < n; i++) {
        idx[i] = (size_t)(order[i] - m);
    }
    free(order);
}

int dm_migrate_is_sql(const char *path)
{
    size_t n = path ? strlen(path) : 0;
    return n > 4 && strcasecmp(path + n - 4, ".sql") == 0;
}

/* Replays one file. Returns 0, or an error with err set ("<path>:<line>: ..."). */
static int replay_file(sqlite3 *db, struct replay *r, const struct dm_migration *m,
                       struct dm_error *err)
{
    char *text = malloc(m->len + 1);
    const char *p;
    int rc = 0;

    if (!text) {
        return dm_error_set(err, DM_ERR_NOMEM, "out of memory");
    }
    memcpy(text, m->sql, m->len);
    text[m->len] = '\0';
    if (strlen(text) != m->len) {
        rc = dm_error_set(err, DM_ERR_INVALID, "%s:%u: NUL byte in SQL", m->path,
                          line_of(text, strlen(text)));
        goto out;
    }
    p = text;
    while (*p) {
        sqlite3_stmt *stmt = NULL;
        const char *tail = NULL;
        const char *start = skip_blank(p);
        const char *why;
        int prc;

        if (!*start) {
            break;
        }
        memset(&r->seen, 0, sizeof(r->seen));
        prc = sqlite3_prepare_v2(db, start, -1, &stmt, &tail);
        if (r->timed_out) {
            sqlite3_finalize(stmt);
            rc = dm_error_set(err, DM_ERR_TIMEOUT, "%s:%u: the migration replay took too long",
                              m->path, line_of(text, (size_t)(start - text)));
            goto out;
        }
        if (prc != SQLITE_OK) {
            int off = sqlite3_error_offset(db);
            const char *msg = sqlite3_errmsg(db);
            size_t at = (size_t)(start - text) + (off >= 0 ? (size_t)off : 0);
            if (r->seen.attach) {
                msg = refusal(&r->seen, start);
            } else if (!r->strict_refs && is_unresolved(msg)) {
                if (r->report->unresolved++ == 0) {
                    snprintf(r->report->first_unresolved, sizeof(r->report->first_unresolved),
                             "%s:%u: %s", m->path, line_of(text, at), msg);
                }
                p = statement_end((char *)start);
                continue;
            }
            rc = dm_error_set(err, prc == SQLITE_TOOBIG ? DM_ERR_LIMIT : DM_ERR_INVALID,
                              "%s:%u: %s", m->path, line_of(text, at), msg);
            goto out;
        }
        if (!stmt) {
            p = tail && tail > start ? tail : start + strlen(start);
            continue;
        }
        why = refusal(&r->seen, start);
        if (why) {
            rc = dm_error_set(err, DM_ERR_INVALID, "%s:%u: %s", m->path,
                              line_of(text, (size_t)(start - text)), why);
            sqlite3_finalize(stmt);
            goto out;
        }
        if (r->seen.schema && !r->seen.pragma) {
            int src;
            while ((src = sqlite3_step(stmt)) == SQLITE_ROW) {
            }
            if (src != SQLITE_DONE) {
                const char *msg =
                    r->timed_out ? "the migration replay took too long" : sqlite3_errmsg(db);
                rc = dm_error_set(err,
                                  r->timed_out                                  ? DM_ERR_TIMEOUT
                                  : src == SQLITE_NOMEM || src == SQLITE_TOOBIG ? DM_ERR_LIMIT
                                                                                : DM_ERR_INVALID,
                                  "%s:%u: %s", m->path, line_of(text, (size_t)(start - text)), msg);
                sqlite3_finalize(stmt);
                goto out;
            }
        }
        sqlite3_finalize(stmt);
        p = tail;
    }
out:
    free(text);
    return rc;
}

int dm_migrate_replay(const struct dm_migration *m, size_t n, const struct dm_migrate_limits *lim,
                      struct dm_migrate_report *report, size_t *failed, struct dm_error *err)
{
    struct dm_migrate_limits def = DM_MIGRATE_LIMITS_INIT;
    const struct dm_migration **order = NULL;
    struct dm_migrate_report local;
    struct replay r;
    sqlite3 *db = NULL;
    sqlite3_int64 heap, cur;
    int rc = 0;

    if (!lim) {
        lim = &def;
    }
    if (!report) {
        report = &local;
    }
    memset(report, 0, sizeof(*report));
    if (failed) {
        *failed = (size_t)-1;
    }
    memset(&r, 0, sizeof(r));
    heap = (sqlite3_int64)(lim->heap_bytes ? lim->heap_bytes : HEAP_DEFAULT);
    cur = sqlite3_hard_heap_limit64(-1);
    if (cur == 0 || cur > heap) {
        sqlite3_hard_heap_limit64(heap);
    }
    order = calloc(n + 1, sizeof(*order));
    if (!order) {
        return dm_error_set(err, DM_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        order[i] = &m[i];
    }
    qsort(order, n, sizeof(*order), by_name);
    if (sqlite3_open_v2(":memory:", &db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_PRIVATECACHE,
                        NULL) != SQLITE_OK) {
        rc = dm_error_set(err, db ? DM_ERR_IO : DM_ERR_NOMEM, "cannot open SQLite: %s",
                          db ? sqlite3_errmsg(db) : "out of memory");
        goto out;
    }
    sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
    sqlite3_db_config(db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
    sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, NULL);
    sqlite3_limit(db, SQLITE_LIMIT_LENGTH,
                  lim->value_length ? lim->value_length : VALUE_LENGTH_DEFAULT);
    sqlite3_limit(db, SQLITE_LIMIT_SQL_LENGTH,
                  lim->sql_length ? lim->sql_length : SQL_LENGTH_DEFAULT);
    sqlite3_limit(db, SQLITE_LIMIT_ATTACHED, 0);
    r.deadline_ms = now_ms() + (lim->timeout_ms ? lim->timeout_ms : TIMEOUT_DEFAULT_MS);
    sqlite3_progress_handler(db, 1000, on_progress, &r);
    sqlite3_set_authorizer(db, on_authorize, &r);
    r.strict_refs = lim->strict_refs;
    r.report = report;
    for (size_t i = 0; i < n; i++) {
        const struct dm_migration *f = order[i];
        struct dm_error ferr;
        int frc = replay_file(db, &r, f, &ferr);
        if (frc == 0) {
            report->applied++;
            continue;
        }
        if (frc == DM_ERR_TIMEOUT || frc == DM_ERR_NOMEM || f->is_new) {
            if (failed) {
                *failed = (size_t)(f - m);
            }
            rc = frc;
            if (err) {
                *err = ferr;
            }
            goto out;
        }
        /* An existing migration that does not replay is the base's problem, not the change's. */
        if (report->base_failures++ == 0) {
            snprintf(report->base_error, sizeof(report->base_error), "%s", ferr.msg);
        }
    }
out:
    sqlite3_close(db);
    free(order);
    return rc;
}
