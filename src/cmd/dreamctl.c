/*
 * dreamctl: the command-line producer and operator tool of dreamd. Wiring only: it submits build
 * jobs onto `<prefix>:jobs`, replays and follows job events, shows job hashes and workers, and
 * runs the approver and operator Lua scripts of src/domain/scripts.c (approve, reject, cancel, dead
 * letter requeue). Redis keys and formats are those of DESIGN.md.
 *
 * One thread, one synchronous hiredis connection, no event loop: every command is a short
 * sequence of requests, and following events is a loop of blocking XREADs. The exit codes are
 * the contract of include/dream/cmd/ctl.h. Errors go to stderr; with --json they are also written
 * to stdout as {"error","exitCode"} so scripts that parse stdout see them.
 */
#include "dream/domain/auth.h"
#include "dream/core/buf.h"
#include "dream/core/config.h"
#include "dream/cmd/ctl.h"
#include "dream/core/error.h"
#include "dream/domain/job.h"
#include "dream/domain/jobreq.h"
#include "dream/core/log.h"
#include "dream/domain/scripts.h"

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

static int fail(struct ctl *ctl, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

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
        /* The spec document (docs/dream-specs/, the plan's first item) is copied, not
         * generated: it never gets a `generated` event, so it is not counted. */
        if (s && i < n && strncmp(s, "docs/dream-specs/", 17) != 0) {
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

/* Handles one event (json, NUL-terminated). Returns an exit code when the follow is over, else
 * -1. live: the event arrived while following, so a terminal or parking event ends it; in a
 * replay only the last deciding event counts (a requeued or approved job goes on after it). */
static int on_event(struct follow *f, const char *json, int live)
{
    cJSON *ev = cJSON_Parse(json);
    const char *status, *msg;
    int code = -1;

    if (!ev) {
        return -1; /* not an event of ours: skip it */
    }
    status = jstr(ev, "status");
    msg = jstr(ev, "message");
    if (f->job_id) {
        const char *id = jstr(ev, "jobId");
        if (!id || strcmp(id, f->job_id) != 0) {
            cJSON_Delete(ev);
            return -1;
        }
    }
    f->nevents++;
    progress_event(&f->prog, ev);
    if (f->print && f->json) {
        printf("%s\n", json);
        fflush(stdout);
    } else if (f->print && !(status && strcmp(status, "progress") == 0 && f->tty)) {
        print_event(f, ev);
        if (status && (strcmp(status, "planned") == 0 || strcmp(status, "generated") == 0 ||
                       (f->tty && strcmp(status, "progress") == 0))) {
            draw_progress(f, 0);
        }
    } else if (f->print && f->tty) {
        draw_progress(f, 0); /* streaming progress only moves the progress line */
    }
    if (status && strcmp(status, "duplicate") == 0) {
        char needle[128];
        snprintf(needle, sizeof(needle), "entry %s ", f->entry ? f->entry : "");
        if (f->entry && msg && strstr(msg, needle)) {
            /* Our entry was refused: the job will not run for it. */
            snprintf(f->status, sizeof(f->status), "duplicate");
            cJSON_Delete(f->last);
            f->last = ev;
            return DM_CTL_EXIT_FAILED;
        }
        cJSON_Delete(ev);
        return -1;
    }
    if (status && strcmp(status, "progress") != 0) {
        snprintf(f->status, sizeof(f->status), "%s", status);
        cJSON_Delete(f->last);
        f->last = ev;
        ev = NULL;
        if (live && f->job_id) {
            code = status_exit(status);
        }
    }
    cJSON_Delete(ev);
    return code;
}

/* Handles the entries of an XRANGE / XREAD stream reply; updates last. */
static int on_entries(struct follow *f, const redisReply *entries, char *last, size_t lastn,
                      int live)
{
    int code = -1;
    for (size_t i = 0; entries->type == REDIS_REPLY_ARRAY && i < entries->elements; i++) {
        const redisReply *e = entries->element[i];
        const char *json;
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 2 ||
            e->element[0]->type != REDIS_REPLY_STRING) {
            continue;
        }
        snprintf(last, lastn, "%s", e->element[0]->str);
        json = field_of(e->element[1], "event");
        if (json && code < 0) {
            code = on_event(f, json, live);
        }
    }
    return code;
}

/* Replays (for one job) and follows the stream key after entry id `after` until the job ends or
 * parks, the deadline passes or the connection fails. Returns the exit code. */
static int follow_stream(struct ctl *ctl, struct follow *f, const char *key, const char *after)
{
    char last[64], from[72];
    int code = -1;
    redisReply *r;

    snprintf(last, sizeof(last), "%s", after);
    if (f->job_id) {
        for (;;) {
            size_t got;
            snprintf(from, sizeof(from), "(%s", last);
            r = rcmd(ctl, "XRANGE %s %s + COUNT %d", key, from, PAGE);
            if (!r) {
                return DM_CTL_EXIT_UNREACHABLE;
            }
            if (r->type == REDIS_REPLY_ERROR) {
                code = fail(ctl, DM_CTL_EXIT_FAILED, "XRANGE %s: %s", key, r->str);
                freeReplyObject(r);
                return code;
            }
            got = r->elements;
            code = on_entries(f, r, last, sizeof(last), 0);
            freeReplyObject(r);
            if (code >= 0 || got < PAGE) {
                break;
            }
        }
        if (code < 0) {
            code = status_exit(f->status[0] ? f->status : NULL);
        }
    }
    while (code < 0) {
        long long block = BLOCK_MS;
        if (f->deadline_ms) {
            long long left = f->deadline_ms - dm_time_now_ms();
            if (left <= 0) {
                code = f->job_id ? DM_CTL_EXIT_TIMEOUT : DM_CTL_EXIT_OK;
                break;
            }
            block = left < block ? left : block;
        }
        r = rcmd(ctl, "XREAD COUNT %d BLOCK %lld STREAMS %s %s", PAGE, block, key, last);
        if (!r) {
            return DM_CTL_EXIT_UNREACHABLE;
        }
        if (r->type == REDIS_REPLY_ERROR) {
            code = fail(ctl, DM_CTL_EXIT_FAILED, "XREAD %s: %s", key, r->str);
        } else if (r->type == REDIS_REPLY_ARRAY) {
            for (size_t s = 0; s < r->elements && code < 0; s++) {
                const redisReply *st = r->element[s];
                if (st->type == REDIS_REPLY_ARRAY && st->elements >= 2) {
                    code = on_entries(f, st->element[1], last, sizeof(last), 1);
                }
            }
        }
        freeReplyObject(r);
    }
    if (f->drawn ||
        (f->print && !f->json && f->job_id && f->nevents && code != DM_CTL_EXIT_UNREACHABLE)) {
        draw_progress(f, 1);
    }
    return code;
}

static void follow_free(struct follow *f)
{
    progress_clear(&f->prog);
    cJSON_Delete(f->last);
    f->last = NULL;
}

static int timeout_option(struct ctl *ctl, long long *deadline)
{
    const char *t = opt(ctl, "timeout");
    double secs;

    *deadline = 0;
    if (!t) {
        return 0;
    }
    if (parse_pos_double(t, &secs) || secs > 31536000) {
        return fail(ctl, DM_CTL_EXIT_USAGE, "--timeout: must be a number of seconds > 0, got '%s'",
                    t);
    }
    *deadline = dm_time_now_ms() + (long long)(secs * 1000);
    return 0;
}

/* Follows one job: events after `after` (an entry id of its event stream; "0-0" replays all). */
static int follow_job(struct ctl *ctl, const char *job_id, const char *entry, const char *after,
                      int print, long long deadline, struct follow *f)
{
    char key[300];
    int code;

    memset(f, 0, sizeof(*f));
    f->job_id = job_id;
    f->entry = entry;
    f->print = print;
    f->json = ctl->json;
    f->tty = isatty(STDOUT_FILENO);
    f->deadline_ms = deadline;
    snprintf(key, sizeof(key), "%s:job:%s:events", ctl->prefix, job_id);
    if (strcmp(after, "0-0") == 0) {
        /* A job whose events expired but whose hash is still there has ended long ago. */
        redisReply *r = rcmd(ctl, "EXISTS %s", key);
        long long exists;
        if (!r) {
            return DM_CTL_EXIT_UNREACHABLE;
        }
        exists = r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
        freeReplyObject(r);
        if (!exists) {
            r = rcmd(ctl, "HGET %s:job:%s status", ctl->prefix, job_id);
            if (!r) {
                return DM_CTL_EXIT_UNREACHABLE;
            }
            if (r->type == REDIS_REPLY_STRING && status_exit(r->str) >= 0) {
                snprintf(f->status, sizeof(f->status), "%s", r->str);
                code = status_exit(r->str);
                freeReplyObject(r);
                if (print && ctl->json) {
                    cJSON *o = cJSON_CreateObject();
                    cJSON_AddStringToObject(o, "jobId", job_id);
                    cJSON_AddStringToObject(o, "status", f->status);
                    print_json(o);
                } else if (print) {
                    printf("job %s is %s (no events kept)\n", job_id, f->status);
                }
                return code;
            }
            freeReplyObject(r);
            if (print && !ctl->json && !entry) {
                fprintf(stderr, "dreamctl: job %s has no events yet; waiting for it\n", job_id);
            }
        }
    }
    return follow_stream(ctl, f, key, after);
}

/* ---- submit ---- */

static int read_spec(struct ctl *ctl, const char *file, struct dm_buf *spec)
{
    FILE *in = strcmp(file, "-") == 0 ? stdin : fopen(file, "rb");
    char chunk[8192];
    size_t n;
    int rc = 0;

    if (!in) {
        return fail(ctl, DM_CTL_EXIT_USAGE, "cannot read spec %s: %s", file, strerror(errno));
    }
    while ((n = fread(chunk, 1, sizeof(chunk), in)) > 0) {
        int a = dm_buf_append(spec, chunk, n);
        if (a == DM_ERR_LIMIT) {
            rc = fail(ctl, DM_CTL_EXIT_USAGE, "spec %s: must be at most %u bytes", file,
                      DM_JOBREQ_SPEC_MAX);
            goto out;
        }
        if (a) {
            rc = fail(ctl, DM_CTL_EXIT_FAILED, "out of memory reading %s", file);
            goto out;
        }
    }
    if (ferror(in)) {
        rc = fail(ctl, DM_CTL_EXIT_USAGE, "cannot read spec %s: %s", file, strerror(errno));
        goto out;
    }
    if (spec->len == 0 || memchr(spec->data, 0, spec->len)) {
        rc = fail(ctl, DM_CTL_EXIT_USAGE, "spec %s: %s", file,
                  spec->len ? "contains a NUL byte" : "is empty");
    }
out:
    if (in != stdin) {
        fclose(in);
    }
    return rc;
}

static void generate_job_id(char *out, size_t n)
{
    unsigned char rnd[4] = {0};
    time_t now = time(NULL);
    struct tm tm;
    char when[32];

    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
        unsigned v = (unsigned)getpid() ^ (unsigned)dm_time_now_ms();
        memcpy(rnd, &v, sizeof(rnd));
    }
    gmtime_r(&now, &tm);
    strftime(when, sizeof(when), "%Y%m%d-%H%M%S", &tm);
    snprintf(out, n, "job-%s-%02x%02x%02x%02x", when, rnd[0], rnd[1], rnd[2], rnd[3]);
}

/* The host of an http:// URL, lower case, for local validation only (dreamd decides). */
static void http_host(const char *url, char *out, size_t n)
{
    const char *p = url + strlen("http://");
    size_t i = 0;

    while (p[i] && p[i] != '/' && p[i] != ':' && p[i] != '?' && p[i] != '#' && i + 1 < n) {
        out[i] = (char)tolower((unsigned char)p[i]);
        i++;
    }
    out[i] = '\0';
}

static int cmd_submit(struct ctl *ctl)
{
    const char *file = ctl->npos ? ctl->pos[0] : "-";
    const char *repo = opt(ctl, "repo"), *token = opt(ctl, "token");
    const char *secret = opt(ctl, "sign-secret"), *trust = opt(ctl, "trust");
    const char *callback = opt(ctl, "callback-url"), *slash;
    const char *user = opt(ctl, "user-id");
    int watch = opt(ctl, "watch") != NULL, wait = opt(ctl, "wait") != NULL;
    char job_id[DM_JOBREQ_ID_MAX + 1], owner[DM_JOBREQ_REPO_PART_MAX + 2], who[128];
    char host[256], evkey[300], after[64], entry[64];
    const char *hosts[1];
    struct dm_buf spec;
    struct dm_jobreq_opts jo = DM_JOBREQ_OPTS_INIT;
    struct dm_jobreq *req = NULL;
    struct dm_error err;
    struct follow f;
    cJSON *job = NULL, *budget, *claims = NULL;
    char *json = NULL, *claims_json = NULL, *signed_token = NULL;
    long long max_tokens = DEFAULT_MAX_TOKENS, deadline;
    double max_dollars = DEFAULT_MAX_DOLLARS;
    redisReply *r = NULL;
    int rc = 0;

    memset(&f, 0, sizeof(f));
    dm_buf_init(&spec, DM_JOBREQ_SPEC_MAX);
    if (!secret && !token && getenv("DREAM_SIGN_SECRET") && *getenv("DREAM_SIGN_SECRET")) {
        secret = getenv("DREAM_SIGN_SECRET");
    }
    if (!repo) {
        rc = fail(ctl, DM_CTL_EXIT_USAGE, "submit: --repo OWNER/NAME is required");
        goto out;
    }
    slash = strchr(repo, '/');
    if (!slash || slash == repo || !slash[1] || strchr(slash + 1, '/') ||
        (size_t)(slash - repo) >= sizeof(owner)) {
        rc = fail(ctl, DM_CTL_EXIT_USAGE, "--repo: must be OWNER/NAME, got '%s'", repo);
        goto out;
    }
    memcpy(owner, repo, (size_t)(slash - repo));
    owner[slash - repo] = '\0';
    if (token && opt(ctl, "sign-secret")) {
        rc = fail(ctl, DM_CTL_EXIT_USAGE, "give --token or --sign-secret, not both");
        goto out;
    }
    if (opt(ctl, "max-tokens") &&
        parse_ll(opt(ctl, "max-tokens"), 1, DM_JOBREQ_MAX_TOKENS_MAX, &max_tokens)) {
        rc = fail(ctl, DM_CTL_EXIT_USAGE, "--max-tokens: must be an integer in 1..%lld, got '%s'",
                  DM_JOBREQ_MAX_TOKENS_MAX, opt(ctl, "max-tokens"));
        goto out;
    }
    if (opt(ctl, "max-dollars") && (parse_pos_double(opt(ctl, "max-dollars"), &max_dollars) ||
                                    max_dollars > DM_JOBREQ_MAX_DOLLARS_MAX)) {
        rc = fail(ctl, DM_CTL_EXIT_USAGE, "--max-dollars: must be a number > 0, got '%s'",
                  opt(ctl, "max-dollars"));
        goto out;
    }
    if ((rc = timeout_option(ctl, &deadline))) {
        goto out;
    }
    if ((rc = read_spec(ctl, file, &spec))) {
        goto out;
    }
    if (opt(ctl, "job-id")) {
        snprintf(job_id, sizeof(job_id), "%s", opt(ctl, "job-id"));
        if (!dm_jobreq_id_valid(opt(ctl, "job-id"))) {
            rc = fail(ctl, DM_CTL_EXIT_USAGE,
                      "--job-id: must be 1..128 characters of [A-Za-z0-9._-], starting with a "
                      "letter or digit");
            goto out;
        }
    } else {
        generate_job_id(job_id, sizeof(job_id));
    }
    if (!trust && !token) {
        trust = "builder";
    }
    default_who(who, sizeof(who));

    job = cJSON_CreateObject();
    budget = cJSON_CreateObject();
    if (!job || !budget) {
        cJSON_Delete(budget);
        rc = fail(ctl, DM_CTL_EXIT_FAILED, "out of memory");
        goto out;
    }
    cJSON_AddStringToObject(job, "jobId", job_id);
    cJSON_AddStringToObject(job, "specId", opt(ctl, "spec-id") ? opt(ctl, "spec-id") : job_id);
    cJSON_AddStringToObject(job, "userId", user ? user : who);
    cJSON_AddStringToObject(job, "targetRepoType",
                            opt(ctl, "repo-type") ? opt(ctl, "repo-type") : "custom");
    cJSON_AddStringToObject(job, "repoOwner", owner);
    cJSON_AddStringToObject(job, "repoName", slash + 1);
    cJSON_AddStringToObject(job, "baseBranch", opt(ctl, "base") ? opt(ctl, "base") : "main");
    cJSON_AddStringToObject(job, "branchPrefix",
                            opt(ctl, "branch-prefix") ? opt(ctl, "branch-prefix") : "dream/");
    cJSON_AddStringToObject(job, "specMarkdown", spec.data);
    if (opt(ctl, "effort")) {
        cJSON_AddStringToObject(job, "estimatedEffort", opt(ctl, "effort"));
    }
    cJSON_AddStringToObject(job, "priority",
                            opt(ctl, "priority") ? opt(ctl, "priority") : "medium");
    if (callback) {
        cJSON_AddStringToObject(job, "callbackUrl", callback);
    }
    cJSON_AddNumberToObject(budget, "maxTokens", (double)max_tokens);
    cJSON_AddNumberToObject(budget, "maxDollars", max_dollars);
    cJSON_AddItemToObject(job, "budget", budget);
    if (trust) {
        cJSON_AddStringToObject(job, "trustLevel", trust);
    }
    json = cJSON_PrintUnformatted(job);
    if (!json) {
        rc = fail(ctl, DM_CTL_EXIT_FAILED, "out of memory");
        goto out;
    }
    /* The worker validates again; this only catches mistakes before anything is queued. */
    jo.trust_optional = token != NULL;
    if (callback && strncmp(callback, "http://", 7) == 0) {
        http_host(callback, host, sizeof(host));
        hosts[0] = host;
        jo.http_hosts = hosts;
        jo.n_http_hosts = 1;
    }
    if (dm_jobreq_parse(&req, json, strlen(json), &jo, &err)) {
        rc = fail(ctl, DM_CTL_EXIT_USAGE, "invalid job: %s", err.msg);
        goto out;
    }
    if (secret) {
        long long now = dm_time_now_ms() / 1000;
        claims = cJSON_CreateObject();
        cJSON_AddStringToObject(claims, "iss",
                                opt(ctl, "issuer") ? opt(ctl, "issuer") : DM_AUTH_DEFAULT_ISSUER);
        cJSON_AddStringToObject(claims, "sub", user ? user : who);
        cJSON_AddStringToObject(claims, "jti", job_id);
        cJSON_AddStringToObject(claims, "dreamTrustLevel", trust);
        cJSON_AddNumberToObject(claims, "iat", (double)now);
        cJSON_AddNumberToObject(claims, "exp", (double)(now + TOKEN_LIFETIME_S));
        claims_json = cJSON_PrintUnformatted(claims);
        if (!claims_json || dm_auth_sign_hs256(&signed_token, claims_json, secret, &err)) {
            rc = fail(ctl, DM_CTL_EXIT_USAGE, "cannot sign the job: %s",
                      claims_json ? err.msg : "out of memory");
            goto out;
        }
        token = signed_token;
    }

    if ((rc = redis_connect(ctl))) {
        goto out;
    }
    snprintf(evkey, sizeof(evkey), "%s:job:%s:events", ctl->prefix, job_id);
    /* Only events after our entry decide --wait: a reused id's old end does not count. */
    if ((watch || wait) && (rc = stream_last_id(ctl, evkey, after, sizeof(after)))) {
        goto out;
    }
    {
        const char *argv[9] = {"XADD", ctl->k_jobs, "*",     "type", "build",
                               "job",  json,        "token", token};
        r = rcmdv(ctl, token ? 9 : 7, argv, NULL);
    }
    if (!r) {
        rc = DM_CTL_EXIT_UNREACHABLE;
        goto out;
    }
    if (r->type != REDIS_REPLY_STRING) {
        rc = fail(ctl, DM_CTL_EXIT_FAILED, "XADD %s failed: %s", ctl->k_jobs,
                  r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        goto out;
    }
    snprintf(entry, sizeof(entry), "%s", r->str);
    if (ctl->json && !wait) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "jobId", job_id);
        cJSON_AddStringToObject(o, "entry", entry);
        print_json(o);
    } else if (!ctl->json && watch) {
        printf("job %s submitted as entry %s\n", job_id, entry);
    } else if (!ctl->json) {
        printf("%s\n", job_id);
    }
    fflush(stdout);
    if (!watch && !wait) {
        goto out;
    }
    rc = follow_job(ctl, job_id, entry, after, watch, deadline, &f);
    if (rc == DM_CTL_EXIT_UNREACHABLE) {
        goto out;
    }
    if (wait && !watch) {
        const char *status = rc == DM_CTL_EXIT_TIMEOUT ? "timeout" : f.status;
        if (ctl->json) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "jobId", job_id);
            cJSON_AddStringToObject(o, "entry", entry);
            cJSON_AddStringToObject(o, "status", status);
            cJSON_AddNumberToObject(o, "exitCode", rc);
            if (f.last) {
                cJSON_AddItemToObject(o, "event", f.last);
                f.last = NULL;
            }
            print_json(o);
        } else {
            const char *msg = f.last ? jstr(f.last, "message") : NULL;
            const char *pr = f.last ? jstr(f.last, "prUrl") : NULL;
            printf("job %s %s", job_id, status);
            if (msg) {
                printf(": ");
                put_text(stdout, msg);
            }
            if (pr) {
                printf(" -> %s", pr);
            }
            printf("\n");
        }
    }
    if (rc == DM_CTL_EXIT_TIMEOUT) {
        fprintf(stderr, "dreamctl: --timeout passed; job %s is still %s\n", job_id,
                f.status[0] ? f.status : "queued");
    }
out:
    follow_free(&f);
    freeReplyObject(r);
    dm_jobreq_free(req);
    cJSON_Delete(job);
    cJSON_Delete(claims);
    free(json);
    free(claims_json);
    free(signed_token);
    dm_buf_free(&spec);
    return rc;
}

/* ---- watch ---- */

static int cmd_watch(struct ctl *ctl)
{
    const char *id = ctl->npos ? ctl->pos[0] : NULL;
    struct follow f;
    long long deadline;
    char last[64];
    int rc;

    memset(&f, 0, sizeof(f));
    if ((rc = timeout_option(ctl, &deadline))) {
        return rc;
    }
    if (id && !dm_jobreq_id_valid(id)) {
        return fail(ctl, DM_CTL_EXIT_USAGE, "not a job id: '%s'", id);
    }
    if ((rc = redis_connect(ctl))) {
        return rc;
    }
    if (id) {
        rc = follow_job(ctl, id, NULL, "0-0", 1, deadline, &f);
        if (rc == DM_CTL_EXIT_TIMEOUT) {
            fprintf(stderr, "dreamctl: --timeout passed; job %s is still %s\n", id,
                    f.status[0] ? f.status : "queued");
        }
        follow_free(&f);
        return rc;
    }
    /* Every job, from now on. */
    if ((rc = stream_last_id(ctl, ctl->k_events, last, sizeof(last)))) {
        return rc;
    }
    f.print = 1;
    f.json = ctl->json;
    f.tty = isatty(STDOUT_FILENO);
    f.deadline_ms = deadline;
    rc = follow_stream(ctl, &f, ctl->k_events, last);
    follow_free(&f);
    return rc;
}

/* ---- status ---- */

static void print_plan(const char *plan_json)
{
    cJSON *plan = cJSON_Parse(plan_json);
    const cJSON *items, *it;

    if (!plan) {
        return;
    }
    items = cJSON_GetObjectItem(plan, "items");
    printf("  %-12s %s (%d items, branch %s)\n", "plan",
           jstr(plan, "title") ? jstr(plan, "title") : "?", cJSON_GetArraySize(items),
           jstr(plan, "branch") ? jstr(plan, "branch") : "?");
    cJSON_ArrayForEach(it, items)
    {
        printf("  %-12s   %-10s %s\n", "", jstr(it, "kind") ? jstr(it, "kind") : "?",
               jstr(it, "path") ? jstr(it, "path") : "?");
    }
    cJSON_Delete(plan);
}

static void print_job_summary(const char *job_json)
{
    cJSON *job = cJSON_Parse(job_json);
    const cJSON *budget;

    if (!job) {
        return;
    }
    budget = cJSON_GetObjectItem(job, "budget");
    printf("  %-12s %s/%s (base %s, prefix %s)\n", "repo",
           jstr(job, "repoOwner") ? jstr(job, "repoOwner") : "?",
           jstr(job, "repoName") ? jstr(job, "repoName") : "?",
           jstr(job, "baseBranch") ? jstr(job, "baseBranch") : "main",
           jstr(job, "branchPrefix") ? jstr(job, "branchPrefix") : "dream/");
    printf("  %-12s %s\n", "user", jstr(job, "userId") ? jstr(job, "userId") : "?");
    printf("  %-12s %s\n", "trust", jstr(job, "trustLevel") ? jstr(job, "trustLevel") : "(token)");
    printf("  %-12s %s\n", "priority", jstr(job, "priority") ? jstr(job, "priority") : "medium");
    printf("  %-12s %.0f tokens, $%.2f\n", "budget", jnum(budget, "maxTokens"),
           jnum(budget, "maxDollars"));
    cJSON_Delete(job);
}

/* The job's latest paused_approval event (the gate's findings), or NULL. Caller frees. */
static cJSON *parked_event(struct ctl *ctl, const char *id)
{
    redisReply *r = rcmd(ctl, "XREVRANGE %s:job:%s:events + - COUNT 100", ctl->prefix, id);
    cJSON *found = NULL;

    for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i < r->elements && !found; i++) {
        const redisReply *e = r->element[i];
        const char *json = e->type == REDIS_REPLY_ARRAY && e->elements >= 2
                               ? field_of(e->element[1], "event")
                               : NULL;
        cJSON *ev = json ? cJSON_Parse(json) : NULL;
        const char *st = jstr(ev, "status");
        if (st && strcmp(st, "paused_approval") == 0) {
            found = ev;
        } else {
            cJSON_Delete(ev);
        }
    }
    freeReplyObject(r);
    return found;
}

static void print_parked(const cJSON *ev, const char *id)
{
    const cJSON *it;

    printf("  %-12s ", "parked");
    put_text(stdout, jstr(ev, "message"));
    printf("\n");
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(ev, "flagged"))
    {
        printf("  %-12s   %s:%d %s (%s, %s)\n", "", jstr(it, "path") ? jstr(it, "path") : "?",
               (int)jnum(it, "line"), jstr(it, "rule") ? jstr(it, "rule") : "?",
               jstr(it, "severity") ? jstr(it, "severity") : "?",
               jstr(it, "kind") ? jstr(it, "kind") : "?");
    }
    printf("  %-12s decide: dreamctl approve %s | dreamctl reject %s --reason TEXT\n", "", id, id);
}

static int cmd_status(struct ctl *ctl)
{
    static const char *const order[] = {
        "status",   "stage",        "attempts",    "epoch",       "owner",
        "entry",    "created",      "updated",     "tokens",      "cost",
        "reserved", "branch",       "commit",      "pr_url",      "error",
        "approved", "approved_by",  "approved_at", "rejected_by", "rejected_at",
        "cancel",   "cancelled_by", "requeued_by", "requeued_at", "seq"};
    const char *id = ctl->pos[0];
    redisReply *r = NULL;
    cJSON *parked = NULL;
    const char *st;
    int rc;

    if (!dm_jobreq_id_valid(id)) {
        return fail(ctl, DM_CTL_EXIT_USAGE, "not a job id: '%s'", id);
    }
    if ((rc = redis_connect(ctl))) {
        return rc;
    }
    r = rcmd(ctl, "HGETALL %s:job:%s", ctl->prefix, id);
    if (!r) {
        return DM_CTL_EXIT_UNREACHABLE;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements == 0) {
        rc = fail(ctl, DM_CTL_EXIT_FAILED, "no such job: %s (never started, or expired)", id);
        goto out;
    }
    st = field_of(r, "status");
    if (st && strcmp(st, "paused_approval") == 0) {
        parked = parked_event(ctl, id);
        if (ctl->broken) {
            rc = DM_CTL_EXIT_UNREACHABLE;
            goto out;
        }
    }
    if (ctl->json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "jobId", id);
        for (size_t i = 0; i + 1 < r->elements; i += 2) {
            const char *k = r->element[i]->str, *v = r->element[i + 1]->str;
            cJSON *parsed = NULL;
            if (strcmp(k, "job") == 0 || strcmp(k, "plan") == 0) {
                parsed = cJSON_Parse(v);
            }
            if (parsed) {
                cJSON_AddItemToObject(o, k, parsed);
            } else {
                cJSON_AddStringToObject(o, k, v);
            }
        }
        if (parked) {
            cJSON_AddItemToObject(o, "parkedEvent", parked);
            parked = NULL;
        }
        print_json(o);
        goto out;
    }
    printf("job %s\n", id);
    for (size_t k = 0; k < sizeof(order) / sizeof(order[0]); k++) {
        const char *v = field_of(r, order[k]);
        char buf[40];
        if (!v) {
            continue;
        }
        if (strcmp(order[k], "created") == 0 || strcmp(order[k], "updated") == 0) {
            v = ms_text(v, buf, sizeof(buf));
        }
        printf("  %-12s ", order[k]);
        put_text(stdout, v);
        printf("\n");
    }
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const char *k = r->element[i]->str;
        int known = strcmp(k, "job") == 0 || strcmp(k, "plan") == 0 || strcmp(k, "last_op") == 0;
        for (size_t j = 0; !known && j < sizeof(order) / sizeof(order[0]); j++) {
            known = strcmp(k, order[j]) == 0;
        }
        if (!known) {
            printf("  %-12s ", k);
            put_text(stdout, r->element[i + 1]->str);
            printf("\n");
        }
    }
    if (field_of(r, "job")) {
        print_job_summary(field_of(r, "job"));
    }
    if (parked) {
        print_parked(parked, id);
    }
    if (field_of(r, "plan")) {
        print_plan(field_of(r, "plan"));
    }
out:
    cJSON_Delete(parked);
    freeReplyObject(r);
    return rc;
}

/* ---- jobs ---- */

struct row {
    char *id;
    char *status, *stage, *error, *owner;
    long long updated, created;
};

static int row_cmp(const void *a, const void *b)
{
    const struct row *x = a, *y = b;
    if (x->updated != y->updated) {
        return x->updated < y->updated ? 1 : -1;
    }
    return strcmp(x->id, y->id);
}

static char *dup_reply(const redisReply *r)
{
    return strdup(r && r->type == REDIS_REPLY_STRING ? r->str : "");
}

static int cmd_jobs(struct ctl *ctl)
{
    const char *want = opt(ctl, "status");
    long long limit = 50;
    struct row *rows = NULL;
    size_t nrows = 0, cap = 0;
    char cursor[64] = "0", pattern[300], prefix_len_key[300];
    size_t plen;
    int rc = 0;

    if (opt(ctl, "limit") && parse_ll(opt(ctl, "limit"), 0, 1000000000, &limit)) {
        return fail(ctl, DM_CTL_EXIT_USAGE, "--limit: must be an integer >= 0 (0: all), got '%s'",
                    opt(ctl, "limit"));
    }
    if ((rc = redis_connect(ctl))) {
        return rc;
    }
    snprintf(pattern, sizeof(pattern), "%s:job:*", ctl->prefix);
    snprintf(prefix_len_key, sizeof(prefix_len_key), "%s:job:", ctl->prefix);
    plen = strlen(prefix_len_key);
    do {
        redisReply *r = rcmd(ctl, "SCAN %s MATCH %s COUNT 1000", cursor, pattern);
        const redisReply *keys;
        if (!r) {
            rc = DM_CTL_EXIT_UNREACHABLE;
            goto out;
        }
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
            freeReplyObject(r);
            rc = fail(ctl, DM_CTL_EXIT_FAILED, "SCAN failed");
            goto out;
        }
        snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
        keys = r->element[1];
        /* One round trip per SCAN page. */
        for (size_t i = 0; i < keys->elements; i++) {
            const char *key = keys->element[i]->str;
            if (strchr(key + plen, ':')) {
                continue; /* :events, :files */
            }
            redisAppendCommand(ctl->c, "HMGET %s status stage updated created error owner", key);
        }
        for (size_t i = 0; i < keys->elements; i++) {
            const char *key = keys->element[i]->str;
            redisReply *h = NULL;
            struct row *row;
            if (strchr(key + plen, ':')) {
                continue;
            }
            if (redisGetReply(ctl->c, (void **)&h) != REDIS_OK || !h) {
                freeReplyObject(r);
                ctl->broken = 1;
                rc = fail(ctl, DM_CTL_EXIT_UNREACHABLE, "Redis connection failed: %s",
                          ctl->c->errstr);
                goto out;
            }
            if (h->type != REDIS_REPLY_ARRAY || h->elements != 6 ||
                h->element[0]->type != REDIS_REPLY_STRING ||
                (want && strcmp(h->element[0]->str, want) != 0)) {
                freeReplyObject(h);
                continue;
            }
            if (nrows == cap) {
                size_t ncap = cap ? cap * 2 : 64;
                struct row *n = realloc(rows, ncap * sizeof(*rows));
                if (!n) {
                    freeReplyObject(h);
                    freeReplyObject(r);
                    rc = fail(ctl, DM_CTL_EXIT_FAILED, "out of memory");
                    goto out;
                }
                rows = n;
                cap = ncap;
            }
            row = &rows[nrows++];
            row->id = strdup(key + plen);
            row->status = dup_reply(h->element[0]);
            row->stage = dup_reply(h->element[1]);
            row->updated =
                h->element[2]->type == REDIS_REPLY_STRING ? atoll(h->element[2]->str) : 0;
            row->created =
                h->element[3]->type == REDIS_REPLY_STRING ? atoll(h->element[3]->str) : 0;
            row->error = dup_reply(h->element[4]);
            row->owner = dup_reply(h->element[5]);
            freeReplyObject(h);
        }
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);

    if (nrows > 1) {
        qsort(rows, nrows, sizeof(*rows), row_cmp);
    }
    if (limit > 0 && nrows > (size_t)limit) {
        for (size_t i = (size_t)limit; i < nrows; i++) {
            free(rows[i].id);
            free(rows[i].status);
            free(rows[i].stage);
            free(rows[i].error);
            free(rows[i].owner);
        }
        nrows = (size_t)limit;
    }
    if (ctl->json) {
        cJSON *a = cJSON_CreateArray();
        for (size_t i = 0; i < nrows; i++) {
            cJSON *o = cJSON_CreateObject();
            char t[40];
            cJSON_AddStringToObject(o, "jobId", rows[i].id);
            cJSON_AddStringToObject(o, "status", rows[i].status);
            cJSON_AddStringToObject(o, "stage", rows[i].stage);
            cJSON_AddStringToObject(o, "owner", rows[i].owner);
            if (rows[i].created) {
                cJSON_AddStringToObject(o, "created",
                                        dm_time_rfc3339(rows[i].created, t, sizeof(t)));
            }
            if (rows[i].updated) {
                cJSON_AddStringToObject(o, "updated",
                                        dm_time_rfc3339(rows[i].updated, t, sizeof(t)));
            }
            if (rows[i].error[0]) {
                cJSON_AddStringToObject(o, "error", rows[i].error);
            }
            cJSON_AddItemToArray(a, o);
        }
        print_json(a);
    } else if (nrows == 0) {
        printf("no jobs%s%s\n", want ? " with status " : "", want ? want : "");
    } else {
        int w = 6;
        for (size_t i = 0; i < nrows; i++) {
            int l = (int)strlen(rows[i].id);
            w = l > w ? (l > 48 ? 48 : l) : w;
        }
        printf("%-*s  %-16s %-9s %s\n", w, "JOB", "STATUS", "STAGE", "UPDATED");
        for (size_t i = 0; i < nrows; i++) {
            char t[40];
            printf("%-*s  %-16s %-9s %s\n", w, rows[i].id, rows[i].status,
                   rows[i].stage[0] ? rows[i].stage : "-",
                   rows[i].updated ? dm_time_rfc3339(rows[i].updated, t, sizeof(t)) : "-");
        }
    }
out:
    for (size_t i = 0; i < nrows; i++) {
        free(rows[i].id);
        free(rows[i].status);
        free(rows[i].stage);
        free(rows[i].error);
        free(rows[i].owner);
    }
    free(rows);
    return rc;
}

/* ---- approve, reject, cancel ---- */

/* The job id of the command, checked. */
static int job_arg(struct ctl *ctl, const char **id)
{
    *id = ctl->pos[0];
    if (!dm_jobreq_id_valid(*id)) {
        return fail(ctl, DM_CTL_EXIT_USAGE, "not a job id: '%s'", *id);
    }
    if (opt(ctl, "by")) {
        snprintf(ctl->who, sizeof(ctl->who), "%s", opt(ctl, "by"));
    }
    if (!ctl->who[0]) {
        return fail(ctl, DM_CTL_EXIT_USAGE, "--by: must not be empty");
    }
    return redis_connect(ctl);
}

/* Turns a script's refusal ("NOTPARKED job is running") into a clear message. */
static int script_refused(struct ctl *ctl, const char *verb, const char *done, const char *id,
                          const char *err)
{
    const char *sp = strchr(err, ' ');
    const char *what = sp ? sp + 1 : err;

    if (strncmp(err, "NOTPARKED", 9) == 0) {
        if (strcmp(what, "job is unknown") == 0) {
            return fail(ctl, DM_CTL_EXIT_FAILED, "cannot %s %s: no such job", verb, id);
        }
        return fail(ctl, DM_CTL_EXIT_FAILED,
                    "cannot %s %s: it is not parked (%s); only a job in paused_approval can be %s",
                    verb, id, what, done);
    }
    if (strncmp(err, "NOTFOUND", 8) == 0) {
        return fail(ctl, DM_CTL_EXIT_FAILED,
                    "cannot %s %s: no such job (never started, or expired)", verb, id);
    }
    if (strncmp(err, "FINISHED", 8) == 0) {
        return fail(ctl, DM_CTL_EXIT_FAILED, "cannot %s %s: it already ended (%s)", verb, id, what);
    }
    return fail(ctl, DM_CTL_EXIT_FAILED, "cannot %s %s: %s", verb, id, err);
}

static int cmd_approve(struct ctl *ctl)
{
    char k_hash[300], k_ev[300], ts[32], now[24];
    const char *id;
    redisReply *r;
    int rc;

    if ((rc = job_arg(ctl, &id))) {
        return rc;
    }
    snprintf(k_hash, sizeof(k_hash), "%s:job:%s", ctl->prefix, id);
    snprintf(k_ev, sizeof(k_ev), "%s:job:%s:events", ctl->prefix, id);
    dm_time_rfc3339(-1, ts, sizeof(ts));
    snprintf(now, sizeof(now), "%lld", dm_time_now_ms());
    {
        const char *keys[] = {k_hash, k_ev, ctl->k_events, ctl->k_jobs, ctl->k_parked};
        const char *args[] = {id, ctl->who, ts, now, ctl->k_events, ctl->gmax, JOB_EVENTS_MAXLEN};
        r = eval(ctl, dm_script_approve, 5, keys, 7, args);
    }
    if (!r) {
        return DM_CTL_EXIT_UNREACHABLE;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        rc = script_refused(ctl, "approve", "approved", id, r->str);
    } else if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
               r->element[1]->type == REDIS_REPLY_STRING) {
        if (ctl->json) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "jobId", id);
            cJSON_AddStringToObject(o, "action", "approved");
            cJSON_AddStringToObject(o, "by", ctl->who);
            cJSON_AddNumberToObject(o, "seq", (double)r->element[0]->integer);
            cJSON_AddStringToObject(o, "resumeEntry", r->element[1]->str);
            print_json(o);
        } else {
            printf("approved job %s; resume entry %s queued on %s\n", id, r->element[1]->str,
                   ctl->k_jobs);
        }
    } else {
        rc = fail(ctl, DM_CTL_EXIT_FAILED, "approve %s: unexpected reply", id);
    }
    freeReplyObject(r);
    return rc;
}

static int cmd_reject(struct ctl *ctl)
{
    char k_hash[300], k_ev[300], k_files[300], ts[32], now[24];
    const char *reason = opt(ctl, "reason");
    const char *id;
    redisReply *r;
    int rc;

    if ((rc = job_arg(ctl, &id))) {
        return rc;
    }
    snprintf(k_hash, sizeof(k_hash), "%s:job:%s", ctl->prefix, id);
    snprintf(k_ev, sizeof(k_ev), "%s:job:%s:events", ctl->prefix, id);
    snprintf(k_files, sizeof(k_files), "%s:job:%s:files", ctl->prefix, id);
    dm_time_rfc3339(-1, ts, sizeof(ts));
    snprintf(now, sizeof(now), "%lld", dm_time_now_ms());
    {
        const char *keys[] = {k_hash, k_ev, ctl->k_events, ctl->k_parked, k_files};
        const char *args[] = {id,
                              ctl->who,
                              ts,
                              now,
                              ctl->k_events,
                              ctl->gmax,
                              JOB_EVENTS_MAXLEN,
                              reason ? reason : "",
                              ctl->ttl};
        r = eval(ctl, dm_script_reject, 5, keys, 9, args);
    }
    if (!r) {
        return DM_CTL_EXIT_UNREACHABLE;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        rc = script_refused(ctl, "reject", "rejected", id, r->str);
    } else if (ctl->json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "jobId", id);
        cJSON_AddStringToObject(o, "action", "rejected");
        cJSON_AddStringToObject(o, "by", ctl->who);
        if (reason) {
            cJSON_AddStringToObject(o, "reason", reason);
        }
        if (r->type == REDIS_REPLY_ARRAY && r->elements >= 1) {
            cJSON_AddNumberToObject(o, "seq", (double)r->element[0]->integer);
        }
        print_json(o);
    } else {
        printf("rejected job %s%s%s\n", id, reason ? ": " : "", reason ? reason : "");
    }
    freeReplyObject(r);
    return rc;
}

static int cmd_cancel(struct ctl *ctl)
{
    char k_hash[300], k_ev[300], k_files[300], ts[32], now[24];
    const char *id;
    redisReply *r;
    int rc;

    if ((rc = job_arg(ctl, &id))) {
        return rc;
    }
    snprintf(k_hash, sizeof(k_hash), "%s:job:%s", ctl->prefix, id);
    snprintf(k_ev, sizeof(k_ev), "%s:job:%s:events", ctl->prefix, id);
    snprintf(k_files, sizeof(k_files), "%s:job:%s:files", ctl->prefix, id);
    dm_time_rfc3339(-1, ts, sizeof(ts));
    snprintf(now, sizeof(now), "%lld", dm_time_now_ms());
    {
        const char *keys[] = {k_hash, k_ev, ctl->k_events, ctl->k_parked, k_files};
        const char *args[] = {id,        ctl->who,          ts,       now,           ctl->k_events,
                              ctl->gmax, JOB_EVENTS_MAXLEN, ctl->ttl, ctl->k_control};
        r = eval(ctl, dm_script_cancel, 5, keys, 9, args);
    }
    if (!r) {
        return DM_CTL_EXIT_UNREACHABLE;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        rc = script_refused(ctl, "cancel", "cancelled", id, r->str);
    } else if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) {
        int now_done = strcmp(r->str, "cancelled") == 0;
        if (ctl->json) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "jobId", id);
            cJSON_AddStringToObject(o, "action", "cancel");
            cJSON_AddStringToObject(o, "result", now_done ? "cancelled" : "requested");
            cJSON_AddStringToObject(o, "by", ctl->who);
            print_json(o);
        } else if (now_done) {
            printf("cancelled job %s\n", id);
        } else {
            printf("cancel requested for job %s; its worker stops it at the next stage boundary\n",
                   id);
        }
    } else {
        rc = fail(ctl, DM_CTL_EXIT_FAILED, "cancel %s: unexpected reply", id);
    }
    freeReplyObject(r);
    return rc;
}

/* ---- dead letters ---- */

static int dead_list(struct ctl *ctl)
{
    long long limit = 100;
    redisReply *r;
    cJSON *a = NULL;

    if (opt(ctl, "limit") && parse_ll(opt(ctl, "limit"), 1, 1000000, &limit)) {
        return fail(ctl, DM_CTL_EXIT_USAGE, "--limit: must be an integer in 1..1000000, got '%s'",
                    opt(ctl, "limit"));
    }
    r = rcmd(ctl, "XRANGE %s - + COUNT %lld", ctl->k_dead, limit);
    if (!r) {
        return DM_CTL_EXIT_UNREACHABLE;
    }
    if (r->type != REDIS_REPLY_ARRAY) {
        int rc = fail(ctl, DM_CTL_EXIT_FAILED, "XRANGE %s: %s", ctl->k_dead,
                      r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        freeReplyObject(r);
        return rc;
    }
    if (ctl->json) {
        a = cJSON_CreateArray();
    } else if (r->elements == 0) {
        printf("no dead letters in %s\n", ctl->k_dead);
    }
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *e = r->element[i];
        const char *job, *entry, *reason, *attempts, *ts;
        char jid[DM_JOBREQ_ID_MAX + 1] = "";
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 2) {
            continue;
        }
        job = field_of(e->element[1], "job");
        entry = field_of(e->element[1], "entry");
        reason = field_of(e->element[1], "reason");
        attempts = field_of(e->element[1], "attempts");
        ts = field_of(e->element[1], "ts");
        if (job && dm_jobreq_peek_id(jid, sizeof(jid), job, strlen(job))) {
            jid[0] = '\0';
        }
        if (a) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "id", e->element[0]->str);
            cJSON_AddStringToObject(o, "entry", entry ? entry : "");
            if (jid[0]) {
                cJSON_AddStringToObject(o, "jobId", jid);
            } else {
                cJSON_AddNullToObject(o, "jobId");
            }
            cJSON_AddStringToObject(o, "reason", reason ? reason : "");
            cJSON_AddNumberToObject(o, "attempts", attempts ? atof(attempts) : 0);
            cJSON_AddStringToObject(o, "ts", ts ? ts : "");
            cJSON_AddBoolToObject(o, "requeueable", job && *job);
            cJSON_AddItemToArray(a, o);
        } else {
            printf("%s  %s  job %s  entry %s  attempts %s  ", e->element[0]->str, ts ? ts : "-",
                   jid[0] ? jid : "(none)", entry ? entry : "-", attempts ? attempts : "?");
            put_text(stdout, reason ? reason : "");
            printf("\n");
        }
    }
    if (a) {
        print_json(a);
    }
    freeReplyObject(r);
    return 0;
}

static int dead_requeue(struct ctl *ctl, const char *dead_id)
{
    char ts[32], now[24];
    redisReply *r;
    int rc = 0;

    dm_time_rfc3339(-1, ts, sizeof(ts));
    snprintf(now, sizeof(now), "%lld", dm_time_now_ms());
    {
        const char *keys[] = {ctl->k_dead, ctl->k_jobs};
        const char *args[] = {dead_id,   ctl->prefix,      now, ts, ctl->who,
                              ctl->gmax, JOB_EVENTS_MAXLEN};
        r = eval(ctl, dm_script_requeue, 2, keys, 7, args);
    }
    if (!r) {
        return DM_CTL_EXIT_UNREACHABLE;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        const char *sp = strchr(r->str, ' ');
        rc = fail(ctl, DM_CTL_EXIT_FAILED, "cannot requeue dead letter %s: %s", dead_id,
                  sp ? sp + 1 : r->str);
    } else if (r->type == REDIS_REPLY_ARRAY && r->elements == 2) {
        const char *entry = r->element[0]->str, *jid = r->element[1]->str;
        if (ctl->json) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "id", dead_id);
            cJSON_AddStringToObject(o, "entry", entry);
            if (jid && *jid) {
                cJSON_AddStringToObject(o, "jobId", jid);
            } else {
                cJSON_AddNullToObject(o, "jobId");
            }
            print_json(o);
        } else {
            printf("requeued dead letter %s as entry %s%s%s\n", dead_id, entry,
                   jid && *jid ? " of job " : "", jid && *jid ? jid : "");
        }
    } else {
        rc = fail(ctl, DM_CTL_EXIT_FAILED, "requeue %s: unexpected reply", dead_id);
    }
    freeReplyObject(r);
    return rc;
}

static int dead_purge(struct ctl *ctl, const char *dead_id)
{
    redisReply *r;
    long long n = 0;
    int rc = 0;

    if (dead_id) {
        r = rcmd(ctl, "XDEL %s %s", ctl->k_dead, dead_id);
    } else {
        /* XLEN then DEL in one transaction, so the count is what was deleted. */
        freeReplyObject(rcmd(ctl, "MULTI"));
        if (!ctl->broken) {
            freeReplyObject(rcmd(ctl, "XLEN %s", ctl->k_dead));
        }
        if (!ctl->broken) {
            freeReplyObject(rcmd(ctl, "DEL %s", ctl->k_dead));
        }
        r = ctl->broken ? NULL : rcmd(ctl, "EXEC");
    }
    if (!r) {
        return DM_CTL_EXIT_UNREACHABLE;
    }
    if (r->type == REDIS_REPLY_INTEGER) {
        n = r->integer;
    } else if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
               r->element[0]->type == REDIS_REPLY_INTEGER) {
        n = r->element[0]->integer;
    } else {
        rc = fail(ctl, DM_CTL_EXIT_FAILED, "purge failed: %s",
                  r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        freeReplyObject(r);
        return rc;
    }
    freeReplyObject(r);
    if (dead_id && n == 0) {
        return fail(ctl, DM_CTL_EXIT_FAILED, "no such dead letter: %s", dead_id);
    }
    if (ctl->json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "purged", (double)n);
        print_json(o);
    } else {
        printf("purged %lld dead letter%s\n", n, n == 1 ? "" : "s");
    }
    return 0;
}

static int cmd_dead(struct ctl *ctl)
{
    const char *action = ctl->npos ? ctl->pos[0] : "list";
    const char *arg = ctl->npos > 1 ? ctl->pos[1] : NULL;
    int rc;

    if (strcmp(action, "list") != 0 && strcmp(action, "requeue") != 0 &&
        strcmp(action, "purge") != 0) {
        return fail(ctl, DM_CTL_EXIT_USAGE, "dead: unknown action '%s' (list, requeue, purge)",
                    action);
    }
    if (strcmp(action, "requeue") == 0 && !arg) {
        return fail(ctl, DM_CTL_EXIT_USAGE, "dead requeue: which dead letter? (see dead list)");
    }
    if (strcmp(action, "list") == 0 && arg) {
        return fail(ctl, DM_CTL_EXIT_USAGE, "dead list takes no argument");
    }
    if (arg && !is_entry_id(arg)) {
        return fail(ctl, DM_CTL_EXIT_USAGE, "not a dead letter id: '%s' (like 1700000000000-0)",
                    arg);
    }
    if (opt(ctl, "by")) {
        snprintf(ctl->who, sizeof(ctl->who), "%s", opt(ctl, "by"));
    }
    if ((rc = redis_connect(ctl))) {
        return rc;
    }
    if (strcmp(action, "list") == 0) {
        return dead_list(ctl);
    }
    if (strcmp(action, "requeue") == 0) {
        return dead_requeue(ctl, arg);
    }
    return dead_purge(ctl, arg);
}

/* ---- workers ---- */

static void print_worker(const char *name, const redisReply *h, int first)
{
    const char *jobs = field_of(h, "jobs"), *max = field_of(h, "max_jobs");
    const char *stopping = field_of(h, "stopping");
    char jm[40];

    if (first) {
        printf("%-24s %-9s %-9s %-8s %-24s %s\n", "WORKER", "JOBS", "STATE", "VERSION", "STARTED",
               "HEARTBEAT");
    }
    snprintf(jm, sizeof(jm), "%s/%s", jobs ? jobs : "?", max ? max : "?");
    printf("%-24s %-9s %-9s %-8s %-24s %s\n", name, jm,
           stopping && strcmp(stopping, "1") == 0 ? "stopping" : "running",
           field_of(h, "version") ? field_of(h, "version") : "?",
           field_of(h, "started") ? field_of(h, "started") : "?",
           field_of(h, "ts") ? field_of(h, "ts") : "?");
}

static int cmd_workers(struct ctl *ctl)
{
    char cursor[64] = "0", pattern[300], kp[300];
    redisReply *r = NULL, *h = NULL, *t = NULL;
    cJSON *a = NULL;
    size_t plen, n = 0;
    int rc;

    if ((rc = redis_connect(ctl))) {
        return rc;
    }
    snprintf(pattern, sizeof(pattern), "%s:worker:*", ctl->prefix);
    snprintf(kp, sizeof(kp), "%s:worker:", ctl->prefix);
    plen = strlen(kp);
    if (ctl->json) {
        a = cJSON_CreateArray();
    }
    do {
        r = rcmd(ctl, "SCAN %s MATCH %s COUNT 1000", cursor, pattern);
        if (!r) {
            rc = DM_CTL_EXIT_UNREACHABLE;
            goto out;
        }
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
            rc = fail(ctl, DM_CTL_EXIT_FAILED, "SCAN failed");
            goto out;
        }
        snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
        for (size_t i = 0; i < r->element[1]->elements; i++) {
            const char *key = r->element[1]->element[i]->str;
            h = rcmd(ctl, "HGETALL %s", key);
            t = h ? rcmd(ctl, "PTTL %s", key) : NULL;
            if (!h || !t) {
                rc = DM_CTL_EXIT_UNREACHABLE;
                goto out;
            }
            /* Skip one that expired meanwhile (or is not a hash). */
            if (h->type == REDIS_REPLY_ARRAY && h->elements > 0) {
                n++;
                if (a) {
                    cJSON *o = cJSON_CreateObject();
                    cJSON_AddStringToObject(o, "name", key + plen);
                    for (size_t j = 0; j + 1 < h->elements; j += 2) {
                        cJSON_AddStringToObject(o, h->element[j]->str, h->element[j + 1]->str);
                    }
                    cJSON_AddNumberToObject(
                        o, "ttlMs", t->type == REDIS_REPLY_INTEGER ? (double)t->integer : -2);
                    cJSON_AddItemToArray(a, o);
                } else {
                    print_worker(key + plen, h, n == 1);
                }
            }
            freeReplyObject(h);
            freeReplyObject(t);
            h = t = NULL;
        }
        freeReplyObject(r);
        r = NULL;
    } while (strcmp(cursor, "0") != 0);
    if (a) {
        print_json(a);
        a = NULL;
    } else if (n == 0) {
        printf("no live workers\n");
    }
out:
    freeReplyObject(h);
    freeReplyObject(t);
    freeReplyObject(r);
    cJSON_Delete(a);
    return rc;
}

/* ---- the command table, help and argument parsing ---- */

static int cmd_help(struct ctl *ctl);

static const struct optdef submit_opts[] = {
    {"repo", "OWNER/NAME", "target repository (required)"},
    {"base", "BRANCH", "base branch (default main)"},
    {"branch-prefix", "PREFIX", "prefix of the new branch (default dream/)"},
    {"max-tokens", "N", "budget.maxTokens (default 200000)"},
    {"max-dollars", "X", "budget.maxDollars (default 5)"},
    {"priority", "P", "critical, high, medium (default) or low"},
    {"repo-type", "T", "storia-digital, petranto-com, byok-cloud or custom (default)"},
    {"effort", "TEXT", "estimatedEffort (free text, up to 64 characters)"},
    {"trust", "LEVEL", "observer, planner, builder (default) or shipper"},
    {"token", "JWT", "a signed token for the entry (its dreamTrustLevel wins)"},
    {"sign-secret", "S",
     "sign an HS256 token (iss, sub=userId, jti=jobId, dreamTrustLevel, exp=now+1h) with S "
     "(env DREAM_SIGN_SECRET)"},
    {"issuer", "ISS", "the token's iss (default storia)"},
    {"job-id", "ID", "job id (default: generated, job-<utc time>-<random>)"},
    {"spec-id", "ID", "specId (default: the job id)"},
    {"user-id", "ID", "userId (default: $USER)"},
    {"callback-url", "URL", "callbackUrl for HTTP status callbacks (https)"},
    {"watch", NULL, "then follow the job's events to its end (exit code as below)"},
    {"wait", NULL, "then wait quietly until the job ends or parks (exit code as below)"},
    {"timeout", "SECONDS", "with --watch/--wait: give up after this long (exit 5)"},
    {NULL, NULL, NULL},
};

static const struct optdef watch_opts[] = {
    {"timeout", "SECONDS", "give up after this long (exit 5; without ID: exit 0)"},
    {NULL, NULL, NULL},
};

static const struct optdef jobs_opts[] = {
    {"status", "S", "only jobs with this status (running, paused_approval, complete, ...)"},
    {"limit", "N", "at most N jobs, most recently updated first (default 50; 0: all)"},
    {NULL, NULL, NULL},
};

static const struct optdef approve_opts[] = {
    {"by", "NAME", "who approves (default $USER)"},
    {NULL, NULL, NULL},
};

static const struct optdef reject_opts[] = {
    {"reason", "TEXT", "why (goes into the rejected event and the job's error)"},
    {"by", "NAME", "who rejects (default $USER)"},
    {NULL, NULL, NULL},
};

static const struct optdef cancel_opts[] = {
    {"by", "NAME", "who cancels (default $USER)"},
    {NULL, NULL, NULL},
};

static const struct optdef dead_opts[] = {
    {"limit", "N", "list: at most N dead letters, oldest first (default 100)"},
    {"by", "NAME", "requeue: who requeues (default $USER)"},
    {NULL, NULL, NULL},
};

static const struct optdef no_opts[] = {
    {NULL, NULL, NULL},
};

static const struct command commands[] = {
    {"submit", "submit [FILE|-] --repo OWNER/NAME [options]",
     "put a build job for a spec (Markdown file, or stdin) on the jobs stream",
     "Builds the job JSON (DESIGN.md field names), checks it as a worker would, and adds\n"
     "`type build job <json> [token <jwt>]` to <prefix>:jobs. Prints the job id (--json:\n"
     "{\"jobId\",\"entry\"}). With --watch it then prints the job's events and a progress line;\n"
     "with --wait it waits quietly and prints the outcome (--json: "
     "{\"jobId\",\"entry\",\"status\",\n"
     "\"exitCode\",\"event\"}). Either exits with the job's outcome (0 complete, 1 failed,\n"
     "cancelled, rejected, dead_lettered or not run, 3 parked, 5 timeout).\n",
     submit_opts, 0, 1, cmd_submit},
    {"watch", "watch [ID] [--timeout SECONDS]",
     "replay a job's events, then follow them live to its end; without ID follow every job",
     "With ID: replays <prefix>:job:<ID>:events, then follows it until the job ends or parks; a\n"
     "progress line shows files done/total, tokens, dollars and elapsed time. Exit code: 0\n"
     "complete, 1 failed/cancelled/rejected/dead_lettered, 3 parked, 5 timeout. Without ID:\n"
     "follows <prefix>:events from now on until interrupted (or --timeout, exit 0). --json\n"
     "prints each event's JSON on its own line.\n",
     watch_opts, 0, 1, cmd_watch},
    {"status", "status ID", "show a job's hash: status, stage, attempts, costs, branch, PR, plan",
     NULL, no_opts, 1, 1, cmd_status},
    {"jobs", "jobs [--status S] [--limit N]", "list jobs, most recently updated first", NULL,
     jobs_opts, 0, 0, cmd_jobs},
    {"approve", "approve ID [--by NAME]",
     "approve a parked job: emits `approved` and queues a resume entry",
     "Only a job in paused_approval can be approved; anything else is refused (exit 1).\n",
     approve_opts, 1, 1, cmd_approve},
    {"reject", "reject ID [--reason TEXT] [--by NAME]",
     "reject a parked job: it ends `rejected` and its keys expire",
     "Only a job in paused_approval can be rejected; anything else is refused (exit 1).\n",
     reject_opts, 1, 1, cmd_reject},
    {"cancel", "cancel ID [--by NAME]",
     "cancel a job: a parked one ends at once, a running one at its next stage boundary", NULL,
     cancel_opts, 1, 1, cmd_cancel},
    {"dead", "dead [list | requeue DEAD-ID | purge [DEAD-ID]]",
     "list, requeue or purge dead letters (<prefix>:dead)",
     "requeue puts the dead letter's job back on the jobs stream and resets a finished job so it\n"
     "runs again from its checkpoint; purge deletes one dead letter, or all of them.\n",
     dead_opts, 0, 2, cmd_dead},
    {"workers", "workers", "list live workers (replicas) with their heartbeat fields", NULL,
     no_opts, 0, 0, cmd_workers},
    {"help", "help [COMMAND]", "show help", NULL, no_opts, 0, 1, cmd_help},
    {NULL, NULL, NULL, NULL, NULL, 0, 0, NULL},
};

static const struct command *find_command(const char *name)
{
    for (const struct command *c = commands; c->name; c++) {
        if (strcmp(c->name, name) == 0) {
            return c;
        }
    }
    return NULL;
}

static void print_opts(FILE *f, const struct optdef *defs)
{
    for (const struct optdef *d = defs; d && d->name; d++) {
        char left[64];
        snprintf(left, sizeof(left), "--%s%s%s", d->name, d->arg ? " " : "", d->arg ? d->arg : "");
        fprintf(f, "  %-26s %s\n", left, d->help);
    }
}

static void usage_global(FILE *f)
{
    fprintf(f,
            "dreamctl %s: submit build jobs to dreamd, follow them, approve and operate.\n\n"
            "Usage: dreamctl [global options] COMMAND [options] [arguments]\n\n"
            "Commands:\n",
            DREAM_VERSION);
    for (const struct command *c = commands; c->name; c++) {
        fprintf(f, "  %-9s %s\n", c->name, c->summary);
    }
    fprintf(f, "\nGlobal options (also accepted after the command):\n");
    print_opts(f, global_opts);
    fprintf(f, "  %-26s %s\n", "--version", "print the version");
    fprintf(f, "\nEnvironment: DREAM_REDIS_URL, DREAM_PREFIX, DREAM_SIGN_SECRET, DREAM_JOB_TTL_S\n"
               "(TTL of rejected/cancelled jobs, default 604800), DREAM_EVENTS_MAXLEN.\n\n");
    fprintf(f, "%s\nRun `dreamctl COMMAND --help` for a command's options.\n", exit_codes_help);
}

static void usage_command(FILE *f, const struct command *c)
{
    fprintf(f, "Usage: dreamctl %s\n\n%s.\n", c->synopsis, c->summary);
    if (c->details) {
        fprintf(f, "\n%s", c->details);
    }
    if (c->opts && c->opts->name) {
        fprintf(f, "\nOptions:\n");
        print_opts(f, c->opts);
    }
    fprintf(f, "\nGlobal options:\n");
    print_opts(f, global_opts);
    fprintf(f, "\n%s", exit_codes_help);
}

static int cmd_help(struct ctl *ctl)
{
    const struct command *c = ctl->npos ? find_command(ctl->pos[0]) : NULL;
    if (ctl->npos && !c) {
        return fail(ctl, DM_CTL_EXIT_USAGE, "unknown command '%s'", ctl->pos[0]);
    }
    if (c) {
        usage_command(stdout, c);
    } else {
        usage_global(stdout);
    }
    return 0;
}

/* Finds an option definition: index into ctl->val, or -1. */
static int find_opt(const struct command *cmd, const char *name, size_t len,
                    const struct optdef **def)
{
    int i = 0;
    for (const struct optdef *d = cmd ? cmd->opts : NULL; d && d->name; d++, i++) {
        if (strlen(d->name) == len && strncmp(d->name, name, len) == 0) {
            *def = d;
            return i;
        }
    }
    for (const struct optdef *d = global_opts; d->name; d++, i++) {
        if (strlen(d->name) == len && strncmp(d->name, name, len) == 0) {
            *def = d;
            return i;
        }
    }
    return -1;
}

/* Parses argv (except the command word at skip) against the command's and the global options.
 * Returns 0 or DM_CTL_EXIT_USAGE (reported). */
static int parse_args(struct ctl *ctl, int argc, char **argv, int skip)
{
    int only_pos = 0;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (i == skip) {
            continue;
        }
        if (!only_pos && strcmp(a, "--") == 0) {
            only_pos = 1;
            continue;
        }
        if (!only_pos && (strcmp(a, "-h") == 0)) {
            a = "--help";
        }
        if (!only_pos && strncmp(a, "--", 2) == 0) {
            const char *name = a + 2, *eq = strchr(name, '=');
            size_t len = eq ? (size_t)(eq - name) : strlen(name);
            const struct optdef *def = NULL;
            int k = find_opt(ctl->cmd, name, len, &def);
            if (k < 0 || k >= MAX_OPTS) {
                return fail(ctl, DM_CTL_EXIT_USAGE, "unknown option %.*s%s%s", (int)len + 2, a,
                            ctl->cmd ? " for " : "", ctl->cmd ? ctl->cmd->name : "");
            }
            if (def->arg) {
                if (eq) {
                    ctl->val[k] = eq + 1;
                } else if (i + 1 < argc && i + 1 != skip) {
                    ctl->val[k] = argv[++i];
                } else {
                    return fail(ctl, DM_CTL_EXIT_USAGE, "option --%s needs a value (%s)", def->name,
                                def->arg);
                }
            } else {
                if (eq) {
                    return fail(ctl, DM_CTL_EXIT_USAGE, "option --%s takes no value", def->name);
                }
                ctl->val[k] = "1";
            }
            continue;
        }
        if (!only_pos && a[0] == '-' && a[1] != '\0') {
            return fail(ctl, DM_CTL_EXIT_USAGE, "unknown option %s", a);
        }
        if (ctl->npos >= ctl->cmd->max_pos || ctl->npos >= MAX_POS) {
            return fail(ctl, DM_CTL_EXIT_USAGE, "unexpected argument '%s'", a);
        }
        ctl->pos[ctl->npos++] = a;
    }
    return 0;
}

/* Settings from the environment with a numeric default. */
static void env_number(char *out, size_t n, const char *name, const char *def)
{
    const char *v = getenv(name);
    snprintf(out, n, "%s", v && is_digits(v) && strlen(v) < 16 ? v : def);
}

int main(int argc, char **argv)
{
    struct ctl ctl;
    int cmd_index = 0, rc = 0, version = 0, help = 0;

    memset(&ctl, 0, sizeof(ctl));
    /* Find the command word: global options may come before it. */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const struct optdef *def = NULL;
        if (strcmp(a, "--") == 0) {
            break;
        }
        if (a[0] != '-' || strcmp(a, "-") == 0) {
            cmd_index = i;
            break;
        }
        if (strcmp(a, "--version") == 0) {
            version = 1;
            continue;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            help = 1;
            continue;
        }
        if (strncmp(a, "--", 2) == 0 &&
            find_opt(NULL, a + 2, strchr(a, '=') ? (size_t)(strchr(a, '=') - a - 2) : strlen(a + 2),
                     &def) >= 0) {
            if (def->arg && !strchr(a, '=')) {
                i++;
            }
            if (strcmp(def->name, "json") == 0) {
                ctl.json = 1;
            }
            continue;
        }
        return fail(&ctl, DM_CTL_EXIT_USAGE, "unknown option %s", a);
    }
    if (!cmd_index) {
        if (version) {
            printf("dreamctl %s\n", DREAM_VERSION);
            return 0;
        }
        if (help) {
            usage_global(stdout);
            return 0;
        }
        usage_global(stderr);
        return fail(&ctl, DM_CTL_EXIT_USAGE, "missing command");
    }
    ctl.cmd = find_command(argv[cmd_index]);
    if (!ctl.cmd) {
        return fail(&ctl, DM_CTL_EXIT_USAGE, "unknown command '%s'", argv[cmd_index]);
    }
    if ((rc = parse_args(&ctl, argc, argv, cmd_index))) {
        return rc;
    }
    ctl.json = opt(&ctl, "json") != NULL;
    if (opt(&ctl, "help")) {
        usage_command(stdout, ctl.cmd);
        return 0;
    }
    if (ctl.npos < ctl.cmd->min_pos) {
        return fail(&ctl, DM_CTL_EXIT_USAGE, "%s: missing argument (usage: dreamctl %s)",
                    ctl.cmd->name, ctl.cmd->synopsis);
    }
    ctl.redis_url = opt(&ctl, "redis-url");
    if (!ctl.redis_url) {
        ctl.redis_url = getenv("DREAM_REDIS_URL");
    }
    if (!ctl.redis_url || !*ctl.redis_url) {
        ctl.redis_url = "redis://127.0.0.1:6379/0";
    }
    ctl.prefix = opt(&ctl, "prefix");
    if (!ctl.prefix) {
        ctl.prefix = getenv("DREAM_PREFIX");
    }
    if (!ctl.prefix || !*ctl.prefix) {
        ctl.prefix = "dream";
    }
    if (strlen(ctl.prefix) > 64 || strpbrk(ctl.prefix, " \t\r\n*?[]")) {
        return fail(&ctl, DM_CTL_EXIT_USAGE,
                    "--prefix (DREAM_PREFIX): at most 64 characters, no spaces or glob characters");
    }
    snprintf(ctl.k_jobs, sizeof(ctl.k_jobs), "%s:jobs", ctl.prefix);
    snprintf(ctl.k_dead, sizeof(ctl.k_dead), "%s:dead", ctl.prefix);
    snprintf(ctl.k_events, sizeof(ctl.k_events), "%s:events", ctl.prefix);
    snprintf(ctl.k_parked, sizeof(ctl.k_parked), "%s:parked", ctl.prefix);
    snprintf(ctl.k_control, sizeof(ctl.k_control), "%s:control", ctl.prefix);
    env_number(ctl.gmax, sizeof(ctl.gmax), "DREAM_EVENTS_MAXLEN", "100000");
    env_number(ctl.ttl, sizeof(ctl.ttl), "DREAM_JOB_TTL_S", "604800");
    default_who(ctl.who, sizeof(ctl.who));

    rc = ctl.cmd->run(&ctl);
    if (ctl.broken && rc != DM_CTL_EXIT_USAGE) {
        rc = DM_CTL_EXIT_UNREACHABLE;
    }
    if (ctl.c) {
        redisFree(ctl.c);
    }
    fflush(stdout);
    return rc;
}
