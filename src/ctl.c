/*
 * dreamctl: the command-line producer and operator tool of dreamd. Wiring only: it submits build
 * jobs onto `<prefix>:jobs`, replays and follows job events, shows job hashes and workers, and
 * runs the approver and operator Lua scripts of src/scripts.c (approve, reject, cancel, dead
 * letter requeue). Redis keys and formats are those of DESIGN.md.
 *
 * One thread, one synchronous hiredis connection, no event loop: every command is a short
 * sequence of requests, and following events is a loop of blocking XREADs. The exit codes are
 * the contract of include/dream/ctl.h. Errors go to stderr; with --json they are also written to
 * stdout as {"error","exitCode"} so scripts that parse stdout see them.
 */
#include "dream/auth.h"
#include "dream/buf.h"
#include "dream/config.h"
#include "dream/ctl.h"
#include "dream/error.h"
#include "dream/job.h"
#include "dream/jobreq.h"
#include "dream/log.h"
#include "dream/scripts.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <hiredis/hiredis.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define GROUP "workers"
#define JOB_EVENTS_MAXLEN "1000"
#define CONNECT_TIMEOUT_MS 2000
#define COMMAND_TIMEOUT_MS 10000
#define BLOCK_MS 2000
#define PAGE 500
#define MAX_OPTS 40
#define MAX_POS 4
#define DEFAULT_MAX_TOKENS 200000
#define DEFAULT_MAX_DOLLARS 5.0
#define TOKEN_LIFETIME_S 3600

/* ---- options and commands ---- */

struct optdef {
    const char *name; /* without the leading -- */
    const char *arg;  /* metavariable; NULL for a flag */
    const char *help;
};

struct ctl;

struct command {
    const char *name;
    const char *synopsis;
    const char *summary;
    const char *details; /* more help, may be NULL */
    const struct optdef *opts;
    int min_pos, max_pos;
    int (*run)(struct ctl *ctl);
};

struct ctl {
    const struct command *cmd;
    const char *val[MAX_OPTS]; /* the command's options, then the global ones */
    int ncmd_opts;
    const char *pos[MAX_POS];
    int npos;
    const char *redis_url;
    const char *prefix;
    int json;
    int broken; /* the connection failed: exit 4 */
    redisContext *c;
    char k_jobs[256], k_dead[256], k_events[256], k_parked[256], k_control[256];
    char gmax[24], ttl[24];
    char who[128];
};

static const struct optdef global_opts[] = {
    {"redis-url", "URL", "Redis (env DREAM_REDIS_URL; default redis://127.0.0.1:6379/0)"},
    {"prefix", "PREFIX", "key prefix (env DREAM_PREFIX; default dream)"},
    {"json", NULL, "machine-readable output (JSON; one document per line when following)"},
    {"help", NULL, "show help"},
    {NULL, NULL, NULL},
};

static const char exit_codes_help[] =
    "Exit codes:\n"
    "  0  ok; a watched or awaited job ended complete\n"
    "  1  the command failed, or the job ended failed, cancelled, dead_lettered or rejected\n"
    "     (or was not run: duplicate)\n"
    "  2  usage error or invalid input\n"
    "  3  the watched or awaited job is parked (paused_approval): approve or reject it\n"
    "  4  Redis unreachable\n"
    "  5  --timeout passed first\n";

/* ---- small helpers ---- */

static int fail(struct ctl *ctl, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(struct ctl *ctl, int code, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fflush(stdout);
    fprintf(stderr, "dreamctl: %s\n", msg);
    if (code == DM_CTL_EXIT_USAGE) {
        fprintf(stderr, "(see dreamctl %s%s--help)\n", ctl->cmd ? ctl->cmd->name : "",
                ctl->cmd ? " " : "");
    }
    if (ctl->json) {
        cJSON *o = cJSON_CreateObject();
        char *s;
        cJSON_AddStringToObject(o, "error", msg);
        cJSON_AddNumberToObject(o, "exitCode", code);
        s = cJSON_PrintUnformatted(o);
        if (s) {
            printf("%s\n", s);
        }
        free(s);
        cJSON_Delete(o);
        fflush(stdout);
    }
    return code;
}

/* Prints o as one JSON line and frees it. */
static void print_json(cJSON *o)
{
    char *s = cJSON_PrintUnformatted(o);
    if (s) {
        printf("%s\n", s);
    }
    free(s);
    cJSON_Delete(o);
    fflush(stdout);
}

static const char *opt(const struct ctl *ctl, const char *name)
{
    int i = 0;
    for (const struct optdef *d = ctl->cmd->opts; d && d->name; d++, i++) {
        if (strcmp(d->name, name) == 0) {
            return ctl->val[i];
        }
    }
    for (const struct optdef *d = global_opts; d->name; d++, i++) {
        if (strcmp(d->name, name) == 0) {
            return ctl->val[i];
        }
    }
    return NULL;
}

static int parse_ll(const char *s, long long min, long long max, long long *out)
{
    char *end;
    long long v;

    if (!s || !*s) {
        return -1;
    }
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || *end || v < min || v > max) {
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_pos_double(const char *s, double *out)
{
    char *end;
    double v;

    if (!s || !*s) {
        return -1;
    }
    errno = 0;
    v = strtod(s, &end);
    if (errno || *end || !isfinite(v) || v <= 0) {
        return -1;
    }
    *out = v;
    return 0;
}

static int is_digits(const char *s)
{
    if (!s || !*s) {
        return 0;
    }
    for (; *s; s++) {
        if (!isdigit((unsigned char)*s)) {
            return 0;
        }
    }
    return 1;
}

/* A stream entry id: digits, optionally "-digits". */
static int is_entry_id(const char *s)
{
    const char *dash = strchr(s, '-');
    char head[32];
    size_t n = dash ? (size_t)(dash - s) : strlen(s);

    if (n == 0 || n >= sizeof(head)) {
        return 0;
    }
    memcpy(head, s, n);
    head[n] = '\0';
    return is_digits(head) && (!dash || is_digits(dash + 1));
}

/* Epoch milliseconds as RFC 3339, or the text itself when it is not a number. */
static const char *ms_text(const char *v, char *buf, size_t n)
{
    if (!is_digits(v)) {
        return v ? v : "";
    }
    return dm_time_rfc3339(atoll(v), buf, n);
}

/* Parses an event timestamp ("2026-11-24T02:04:58.123Z") to epoch ms; -1 when unreadable. */
static long long ts_ms(const char *ts)
{
    struct tm tm;
    int ms = 0;

    if (!ts) {
        return -1;
    }
    memset(&tm, 0, sizeof(tm));
    if (sscanf(ts, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
               &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms) < 6) {
        return -1;
    }
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (long long)timegm(&tm) * 1000 + ms;
}

/* Human text on one terminal line: newlines indent, other control characters become spaces. */
static void put_text(FILE *f, const char *s)
{
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '\n') {
            fputs("\n      ", f);
        } else if (c < 0x20 || c == 0x7f) {
            fputc(' ', f);
        } else {
            fputc(c, f);
        }
    }
}

static const char *jstr(const cJSON *o, const char *name)
{
    const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, name));
    return s;
}

static double jnum(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

/* The exit code a job status means, or -1 when the job is still going. */
static int status_exit(const char *status)
{
    if (!status) {
        return -1;
    }
    if (strcmp(status, "complete") == 0) {
        return DM_CTL_EXIT_OK;
    }
    if (strcmp(status, "paused_approval") == 0) {
        return DM_CTL_EXIT_PARKED;
    }
    if (dm_status_is_terminal(status)) {
        return DM_CTL_EXIT_FAILED;
    }
    return -1;
}

static void default_who(char *out, size_t n)
{
    const char *u = getenv("USER");
    snprintf(out, n, "%s", u && *u ? u : "dreamctl");
}

/* ---- Redis ---- */

static int redis_connect(struct ctl *ctl)
{
    struct dm_redis_addr a;
    struct dm_error err;
    struct timeval tv;
    char red[512];
    redisReply *r = NULL;
    int rc = 0;

    memset(&a, 0, sizeof(a));
    if (dm_redis_addr_parse(&a, ctl->redis_url, &err)) {
        rc = fail(ctl, DM_CTL_EXIT_USAGE, "--redis-url (DREAM_REDIS_URL): %s", err.msg);
        goto out;
    }
    dm_redis_url_redacted(ctl->redis_url, red, sizeof(red));
    tv.tv_sec = CONNECT_TIMEOUT_MS / 1000;
    tv.tv_usec = (CONNECT_TIMEOUT_MS % 1000) * 1000;
    if (a.unix_path) {
        ctl->c = redisConnectUnixWithTimeout(a.unix_path, tv);
    } else {
        ctl->c = redisConnectWithTimeout(a.host, a.port, tv);
    }
    if (!ctl->c || ctl->c->err) {
        rc = fail(ctl, DM_CTL_EXIT_UNREACHABLE, "cannot reach Redis at %s: %s", red,
                  ctl->c ? ctl->c->errstr : "out of memory");
        goto out;
    }
    tv.tv_sec = COMMAND_TIMEOUT_MS / 1000;
    tv.tv_usec = 0;
    redisSetTimeout(ctl->c, tv);
    if (a.password) {
        r = a.username ? redisCommand(ctl->c, "AUTH %s %s", a.username, a.password)
                       : redisCommand(ctl->c, "AUTH %s", a.password);
        if (!r || r->type == REDIS_REPLY_ERROR) {
            rc = fail(ctl, DM_CTL_EXIT_UNREACHABLE, "Redis at %s refused AUTH: %s", red,
                      r ? r->str : ctl->c->errstr);
            goto out;
        }
        freeReplyObject(r);
        r = NULL;
    }
    if (a.db) {
        r = redisCommand(ctl->c, "SELECT %d", a.db);
        if (!r || r->type == REDIS_REPLY_ERROR) {
            rc = fail(ctl, DM_CTL_EXIT_UNREACHABLE, "Redis at %s refused SELECT %d: %s", red, a.db,
                      r ? r->str : ctl->c->errstr);
            goto out;
        }
    }
out:
    freeReplyObject(r);
    dm_redis_addr_clear(&a);
    return rc;
}

/* One command. NULL when the connection failed (reported; the command then exits 4). */
static redisReply *rcmdv(struct ctl *ctl, int argc, const char **argv, const size_t *lens)
{
    redisReply *r = redisCommandArgv(ctl->c, argc, argv, lens);
    if (!r) {
        ctl->broken = 1;
        fail(ctl, DM_CTL_EXIT_UNREACHABLE, "Redis connection failed: %s",
             ctl->c->errstr[0] ? ctl->c->errstr : "no reply");
    }
    return r;
}

static redisReply *rcmd(struct ctl *ctl, const char *fmt, ...)
{
    va_list ap;
    redisReply *r;

    va_start(ap, fmt);
    r = redisvCommand(ctl->c, fmt, ap);
    va_end(ap);
    if (!r) {
        ctl->broken = 1;
        fail(ctl, DM_CTL_EXIT_UNREACHABLE, "Redis connection failed: %s",
             ctl->c->errstr[0] ? ctl->c->errstr : "no reply");
    }
    return r;
}

/* EVAL script with keys and args. */
static redisReply *eval(struct ctl *ctl, const char *script, int nkeys, const char *const *keys,
                        int nargs, const char *const *args)
{
    const char *argv[40];
    char nk[16];
    int n = 0;

    snprintf(nk, sizeof(nk), "%d", nkeys);
    argv[n++] = "EVAL";
    argv[n++] = script;
    argv[n++] = nk;
    for (int i = 0; i < nkeys && n < 40; i++) {
        argv[n++] = keys[i];
    }
    for (int i = 0; i < nargs && n < 40; i++) {
        argv[n++] = args[i];
    }
    return rcmdv(ctl, n, argv, NULL);
}

/* The last id of a stream, or "0-0" (into out). Returns 0 or an exit code. */
static int stream_last_id(struct ctl *ctl, const char *key, char *out, size_t n)
{
    redisReply *r = rcmd(ctl, "XREVRANGE %s + - COUNT 1", key);
    if (!r) {
        return DM_CTL_EXIT_UNREACHABLE;
    }
    snprintf(out, n, "0-0");
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
        r->element[0]->type == REDIS_REPLY_ARRAY && r->element[0]->elements >= 1) {
        snprintf(out, n, "%s", r->element[0]->element[0]->str);
    }
    freeReplyObject(r);
    return 0;
}

/* The value of field name in a [field, value, ...] reply array (borrowed), or NULL. */
static const char *field_of(const redisReply *fields, const char *name)
{
    for (size_t i = 0; fields && fields->type == REDIS_REPLY_ARRAY && i + 1 < fields->elements;
         i += 2) {
        const redisReply *k = fields->element[i], *v = fields->element[i + 1];
        if (k->type == REDIS_REPLY_STRING && strcmp(k->str, name) == 0 &&
            v->type == REDIS_REPLY_STRING) {
            return v->str;
        }
    }
    return NULL;
}

/* ---- following events ---- */

struct progress {
    char **paths; /* the `planned` event's files */
    unsigned char *done;
    size_t npaths;
    size_t generated; /* distinct generated files (or all generated events without a plan) */
    long long first_ms, last_ms;
    double tokens, cost;
};

struct follow {
    const char *job_id; /* NULL: every job */
    const char *entry;  /* the entry we added (submit): a `duplicate` naming it ends the wait */
    int print;          /* print events (else quiet until the end) */
    int json;           /* print them as JSON lines */
    int tty;
    int drawn; /* a progress line is on the terminal */
    long long deadline_ms;
    int nevents;
    struct progress prog;
    char status[32]; /* the last deciding status (duplicates do not decide) */
    cJSON *last;     /* that event */
};

static void progress_clear(struct progress *p)
{
    for (size_t i = 0; i < p->npaths; i++) {
        free(p->paths[i]);
    }
    free(p->paths);
    free(p->done);
    memset(p, 0, sizeof(*p));
}

static void progress_plan(struct progress *p, const cJSON *files)
{
    size_t n = (size_t)cJSON_GetArraySize(files);
    const cJSON *it;
    size_t i = 0;

    progress_clear(p);
    p->paths = calloc(n ? n : 1, sizeof(char *));
    p->done = calloc(n ? n : 1, 1);
    if (!p->paths || !p->done) {
        free(p->paths);
        free(p->done);
        p->paths = NULL;
        p->done = NULL;
        return;
    }
    cJSON_ArrayForEach(it, files)
    {
        const char *s = cJSON_GetStringValue(it);
        if (s && i < n) {
            p->paths[i] = strdup(s);
            if (p->paths[i]) {
                i++;
            }
        }
    }
    p->npaths = i;
}

static void progress_event(struct progress *p, const cJSON *ev)
{
    const char *status = jstr(ev, "status");
    long long t = ts_ms(jstr(ev, "ts"));

    if (t >= 0) {
        if (p->first_ms == 0) {
            p->first_ms = t;
        }
        p->last_ms = t;
    }
    p->tokens = jnum(ev, "tokensUsed");
    p->cost = jnum(ev, "costUsd");
    if (!status) {
        return;
    }
    if (strcmp(status, "planned") == 0 && cJSON_IsArray(cJSON_GetObjectItem(ev, "files"))) {
        long long first = p->first_ms, last = p->last_ms;
        double tokens = p->tokens, cost = p->cost;
        progress_plan(p, cJSON_GetObjectItem(ev, "files"));
        p->first_ms = first;
        p->last_ms = last;
        p->tokens = tokens;
        p->cost = cost;
    } else if (strcmp(status, "generated") == 0) {
        const char *path = jstr(ev, "path");
        if (!p->npaths) {
            p->generated++;
            return;
        }
        for (size_t i = 0; path && i < p->npaths; i++) {
            if (!p->done[i] && strcmp(p->paths[i], path) == 0) {
                p->done[i] = 1;
                p->generated++;
                break;
            }
        }
    }
}

static void progress_line(const struct progress *p, char *buf, size_t n)
{
    double secs = p->last_ms > p->first_ms ? (double)(p->last_ms - p->first_ms) / 1000.0 : 0;
    char total[24], elapsed[32];

    if (p->npaths) {
        snprintf(total, sizeof(total), "%zu", p->npaths);
    } else {
        snprintf(total, sizeof(total), "?");
    }
    if (secs >= 60) {
        snprintf(elapsed, sizeof(elapsed), "%dm%02ds", (int)(secs / 60), (int)fmod(secs, 60));
    } else {
        snprintf(elapsed, sizeof(elapsed), "%.1fs", secs);
    }
    snprintf(buf, n, "  progress: files %zu/%s, tokens %.0f, $%.4f, elapsed %s", p->generated,
             total, p->tokens, p->cost, elapsed);
}

static void draw_progress(struct follow *f, int final)
{
    char line[256];

    if (!f->print || !f->job_id) {
        return;
    }
    progress_line(&f->prog, line, sizeof(line));
    if (f->tty) {
        printf("\r\033[K%s%s", line, final ? "\n" : "");
        f->drawn = !final;
    } else {
        printf("%s\n", line);
    }
    fflush(stdout);
}

static void print_event(struct follow *f, const cJSON *ev)
{
    const char *ts = jstr(ev, "ts"), *status = jstr(ev, "status"), *msg = jstr(ev, "message");
    const char *path = jstr(ev, "path"), *pr = jstr(ev, "prUrl"), *error = jstr(ev, "error");
    const char *id = jstr(ev, "jobId");

    if (f->tty && f->drawn) {
        printf("\r\033[K");
        f->drawn = 0;
    }
    /* The time of day is enough on a terminal; the date is in --json. */
    printf("%s ", ts && strlen(ts) >= 23 ? ts + 11 : (ts ? ts : "-"));
    if (!f->job_id) {
        printf("%s ", id ? id : "?");
    }
    printf("#%-3d %-15s ", (int)jnum(ev, "seq"), status ? status : "?");
    put_text(stdout, msg);
    if (path && (!msg || !strstr(msg, path))) {
        printf(" [%s]", path);
    }
    if (pr) {
        printf(" -> %s", pr);
    }
    if (error && (!msg || !strstr(msg, error))) {
        printf(" (error: ");
        put_text(stdout, error);
        printf(")");
    }
    printf("\n");
    fflush(stdout);
}

