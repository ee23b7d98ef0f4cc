/*
 * ctl_int: dreamctl's private contract between its files. dreamctl is one program in five files:
 *   dreamctl.c     main: the command table, argument parsing, --help texts, global settings
 *   ctl_util.c     shared helpers: errors (exit codes, --json error lines), option values,
 *                  numbers and text, the Redis connection and its calls
 *   ctl_submit.c   `submit`: the spec, the job (built and checked by jobreq), signing, XADD
 *   ctl_follow.c   following events (`watch`, `submit --watch/--wait`, the progress line) and
 *                  `status`
 *   ctl_ops.c      operator commands: approve, reject, cancel, dead, workers
 *   ctl_jobs.c     `jobs`: the job index, filters, pages (also the query of `retry --status`)
 *   ctl_retry.c    `retry`: the RETRY script, one job or in bulk, with a fresh token
 *   ctl_stats.c    `stats`: counts, throughput, durations, lag, workers, spend, parked
 * Every Redis key comes from dream/core/keys.h. One thread, one synchronous hiredis connection.
 */
#ifndef DREAM_CTL_INT_H
#define DREAM_CTL_INT_H

#include "dream/cmd/ctl.h"
#include "dream/core/keys.h"

#include <cjson/cJSON.h>
#include <hiredis/hiredis.h>
#include <stdio.h>

#define BLOCK_MS 2000
#define PAGE 500
#define MAX_OPTS 40
#define MAX_POS 4

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
    struct dm_keys keys;
    char gmax[24], ttl[24];
    char who[128];
    char statuses[256]; /* repeated --status options, joined with commas */
    char *token;        /* --token-file's content (the --token option then points at it) */
};

/* The options every command takes (dreamctl.c). */
extern const struct optdef ctl_global_opts[];

/* ---- ctl_util.c ---- */

/* Reports an error on stderr (and as {"error","exitCode"} on stdout with --json); returns code. */
int ctl_fail(struct ctl *ctl, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Prints o as one JSON line and frees it. */
void ctl_print_json(cJSON *o);
/* The value of option name (NULL when not given; "" for a given flag). */
const char *ctl_opt(const struct ctl *ctl, const char *name);
int ctl_parse_ll(const char *s, long long min, long long max, long long *out);
int ctl_parse_pos_double(const char *s, double *out);
int ctl_is_digits(const char *s);
/* A stream entry id: digits, optionally "-digits". */
int ctl_is_entry_id(const char *s);
/* Epoch milliseconds as RFC 3339, or the text itself when it is not a number. */
const char *ctl_ms_text(const char *v, char *buf, size_t n);
/* Human text on one terminal line: newlines indent, other control characters become spaces. */
void ctl_put_text(FILE *f, const char *s);
const char *ctl_jstr(const cJSON *o, const char *name);
double ctl_jnum(const cJSON *o, const char *name);
/* The exit code a job status means, or -1 when the job is still going. */
int ctl_status_exit(const char *status);
void ctl_default_who(char *out, size_t n);
/* Writes the key `which` of job id (already checked by the jobId rule) into out. */
void ctl_job_key(char out[DM_KEYS_MAX], const struct ctl *ctl, const char *id,
                 enum dm_job_key which);
/* Connects to Redis (AUTH, SELECT). Returns 0 or an exit code (reported). */
int ctl_connect(struct ctl *ctl);
/* One command. NULL when the connection failed (reported; the command then exits 4). */
redisReply *ctl_cmdv(struct ctl *ctl, int argc, const char **argv, const size_t *lens);
redisReply *ctl_cmd(struct ctl *ctl, const char *fmt, ...);
/* EVAL script with keys and args. */
redisReply *ctl_eval(struct ctl *ctl, const char *script, int nkeys, const char *const *keys,
                     int nargs, const char *const *args);
/* The last id of a stream, or "0-0" (into out). Returns 0 or an exit code. */
int ctl_stream_last_id(struct ctl *ctl, const char *key, char *out, size_t n);
/* The value of field name in a [field, value, ...] reply array (borrowed), or NULL. */
const char *ctl_field_of(const redisReply *fields, const char *name);

/* ---- signing (ctl_util.c) ---- */

/* The lifetime of a token dreamctl signs (exp = iat + this). */
#define CTL_TOKEN_LIFETIME_S 3600

struct dm_jobreq;

/* The signing secret from --sign-secret-file PATH (its content, one trailing newline cut) or
 * else DREAM_SIGN_SECRET; never from argv. *out: the secret (free with ctl_secret_free) or NULL
 * when none is given. Returns 0 or an exit code (reported). */
int ctl_sign_secret(struct ctl *ctl, char **out);
/* --token-file PATH: reads the token (one trailing newline dropped, at most 16 KiB) and gives it
 * as the value of --token; both at once is a usage error. Returns 0 or an exit code. */
int ctl_token_file(struct ctl *ctl);
/* Wipes and frees a secret or token; NULL is fine. */
void ctl_secret_free(char *s);
/* Signs an HS256 job token for req: iss (--issuer or the default), sub, jti = jobId,
 * dreamTrustLevel = trust, dreamJobSha256 of req's binding text, iat, exp, and aud (--audience
 * or DREAM_SIGNING_AUDIENCE). *token: caller frees with ctl_secret_free. Returns 0 or an exit
 * code (reported). */
int ctl_sign_job(struct ctl *ctl, const struct dm_jobreq *req, const char *secret, const char *sub,
                 const char *trust, char **token);

/* ---- ctl_follow.c ---- */

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

void ctl_follow_free(struct follow *f);
/* --timeout as an absolute deadline in ms (0: none). Returns 0 or an exit code. */
int ctl_timeout_option(struct ctl *ctl, long long *deadline);
/* Follows one job: events after `after` (an entry id of its event stream; "0-0" replays all).
 * Returns the exit code the job's end means. */
int ctl_follow_job(struct ctl *ctl, const char *job_id, const char *entry, const char *after,
                   int print, long long deadline, struct follow *f);

/* ---- ctl_jobs.c: the job index ---- */

#define JOBQ_MAX_STATUS 10

/* A query of the index: the filters of `jobs` and `retry --status`. */
struct jobq {
    const char *statuses[JOBQ_MAX_STATUS]; /* none: every status */
    int nstatus;
    const char *repo, *user;      /* NULL: any */
    long long since_ms, until_ms; /* 0: open */
    double min_cost;
    int has_min_cost;
    long long limit; /* 0: all */
    long long cursor_score;
    char cursor_id[130];
    int has_cursor;
    char status_buf[256];
};

struct jobrow {
    char *id, *status, *stage, *error, *owner, *repo, *user;
    long long created, updated, score, tokens;
    double cost;
};

/* 1 when s is a status the index keeps a set for. */
int ctl_known_status(const char *s);
/* The statuses the index knows, in display order. */
const char *const *ctl_statuses(size_t *n);
/* Reads --status (comma-separated), --repo, --user, --since, --until, --min-cost, --limit and
 * --cursor of the command into q. Returns 0 or DM_CTL_EXIT_USAGE (reported). */
int ctl_jobq_options(struct ctl *ctl, struct jobq *q);
/* Runs q: rows newest first (caller frees with ctl_jobrows_free); *more: the limit was reached.
 * Returns 0 or an exit code (reported). */
int ctl_jobs_query(struct ctl *ctl, const struct jobq *q, struct jobrow **rows, size_t *n,
                   int *more);
void ctl_jobrows_free(struct jobrow *rows, size_t n);
/* The cursor that continues after row r ("<score>:<jobId>"). */
void ctl_jobrow_cursor(const struct jobrow *r, char *out, size_t n);

/* ---- the commands ---- */

int ctl_run_submit(struct ctl *ctl);
int ctl_run_watch(struct ctl *ctl);
int ctl_run_status(struct ctl *ctl);
int ctl_run_jobs(struct ctl *ctl);
int ctl_run_approve(struct ctl *ctl);
int ctl_run_reject(struct ctl *ctl);
int ctl_run_cancel(struct ctl *ctl);
int ctl_run_dead(struct ctl *ctl);
int ctl_run_workers(struct ctl *ctl);
int ctl_run_retry(struct ctl *ctl);
int ctl_run_stats(struct ctl *ctl);

#endif
