/*
 * ctl_util: dreamctl's shared helpers (see src/cmd/ctl_int.h): error reporting with the exit
 * codes of include/dream/cmd/ctl.h, option values, numbers, times and terminal text, and the
 * synchronous Redis connection with its calls. Main thread only (dreamctl has one).
 */
#include "ctl_int.h"

#include "dream/core/config.h"
#include "dream/core/error.h"
#include "dream/core/log.h"
#include "dream/domain/auth.h"
#include "dream/domain/job.h"
#include "dream/domain/jobreq.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CONNECT_TIMEOUT_MS 2000
#define COMMAND_TIMEOUT_MS 10000

int ctl_fail(struct ctl *ctl, int code, const char *fmt, ...)
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
void ctl_print_json(cJSON *o)
{
    char *s = cJSON_PrintUnformatted(o);
    if (s) {
        printf("%s\n", s);
    }
    free(s);
    cJSON_Delete(o);
    fflush(stdout);
}

const char *ctl_opt(const struct ctl *ctl, const char *name)
{
    int i = 0;
    for (const struct optdef *d = ctl->cmd->opts; d && d->name; d++, i++) {
        if (strcmp(d->name, name) == 0) {
            return ctl->val[i];
        }
    }
    for (const struct optdef *d = ctl_global_opts; d->name; d++, i++) {
        if (strcmp(d->name, name) == 0) {
            return ctl->val[i];
        }
    }
    return NULL;
}

int ctl_parse_ll(const char *s, long long min, long long max, long long *out)
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

int ctl_parse_pos_double(const char *s, double *out)
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

int ctl_is_digits(const char *s)
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
int ctl_is_entry_id(const char *s)
{
    const char *dash = strchr(s, '-');
    char head[32];
    size_t n = dash ? (size_t)(dash - s) : strlen(s);

    if (n == 0 || n >= sizeof(head)) {
        return 0;
    }
    memcpy(head, s, n);
    head[n] = '\0';
    return ctl_is_digits(head) && (!dash || ctl_is_digits(dash + 1));
}

/* Epoch milliseconds as RFC 3339, or the text itself when it is not a number. */
const char *ctl_ms_text(const char *v, char *buf, size_t n)
{
    if (!ctl_is_digits(v)) {
        return v ? v : "";
    }
    return dm_time_rfc3339(atoll(v), buf, n);
}

/* Parses an event timestamp ("2026-11-24T02:04:58.123Z") to epoch ms; -1 when unreadable. */
/* Human text on one terminal line: newlines indent, other control characters become spaces. */
void ctl_put_text(FILE *f, const char *s)
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

const char *ctl_jstr(const cJSON *o, const char *name)
{
    const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, name));
    return s;
}

double ctl_jnum(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

/* The exit code a job status means, or -1 when the job is still going. */
int ctl_status_exit(const char *status)
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

void ctl_default_who(char *out, size_t n)
{
    const char *u = getenv("USER");
    snprintf(out, n, "%s", u && *u ? u : "dreamctl");
}

int ctl_connect(struct ctl *ctl)
{
    struct dm_redis_addr a;
    struct dm_error err;
    struct timeval tv;
    char red[512];
    redisReply *r = NULL;
    int rc = 0;

    memset(&a, 0, sizeof(a));
    if (dm_redis_addr_parse(&a, ctl->redis_url, &err)) {
        rc = ctl_fail(ctl, DM_CTL_EXIT_USAGE, "--redis-url (DREAM_REDIS_URL): %s", err.msg);
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
        rc = ctl_fail(ctl, DM_CTL_EXIT_UNREACHABLE, "cannot reach Redis at %s: %s", red,
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
            rc = ctl_fail(ctl, DM_CTL_EXIT_UNREACHABLE, "Redis at %s refused AUTH: %s", red,
                          r ? r->str : ctl->c->errstr);
            goto out;
        }
        freeReplyObject(r);
        r = NULL;
    }
    if (a.db) {
        r = redisCommand(ctl->c, "SELECT %d", a.db);
        if (!r || r->type == REDIS_REPLY_ERROR) {
            rc = ctl_fail(ctl, DM_CTL_EXIT_UNREACHABLE, "Redis at %s refused SELECT %d: %s", red,
                          a.db, r ? r->str : ctl->c->errstr);
            goto out;
        }
    }
out:
    freeReplyObject(r);
    dm_redis_addr_clear(&a);
    return rc;
}

/* One command. NULL when the connection failed (reported; the command then exits 4). */
redisReply *ctl_cmdv(struct ctl *ctl, int argc, const char **argv, const size_t *lens)
{
    redisReply *r = redisCommandArgv(ctl->c, argc, argv, lens);
    if (!r) {
        ctl->broken = 1;
        ctl_fail(ctl, DM_CTL_EXIT_UNREACHABLE, "Redis connection failed: %s",
                 ctl->c->errstr[0] ? ctl->c->errstr : "no reply");
    }
    return r;
}

redisReply *ctl_cmd(struct ctl *ctl, const char *fmt, ...)
{
    va_list ap;
    redisReply *r;

    va_start(ap, fmt);
    r = redisvCommand(ctl->c, fmt, ap);
    va_end(ap);
    if (!r) {
        ctl->broken = 1;
        ctl_fail(ctl, DM_CTL_EXIT_UNREACHABLE, "Redis connection failed: %s",
                 ctl->c->errstr[0] ? ctl->c->errstr : "no reply");
    }
    return r;
}

/* EVAL script with keys and args. */
redisReply *ctl_eval(struct ctl *ctl, const char *script, int nkeys, const char *const *keys,
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
    return ctl_cmdv(ctl, n, argv, NULL);
}

/* The last id of a stream, or "0-0" (into out). Returns 0 or an exit code. */
int ctl_stream_last_id(struct ctl *ctl, const char *key, char *out, size_t n)
{
    redisReply *r = ctl_cmd(ctl, "XREVRANGE %s + - COUNT 1", key);
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
const char *ctl_field_of(const redisReply *fields, const char *name)
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

void ctl_job_key(char out[DM_KEYS_MAX], const struct ctl *ctl, const char *id,
                 enum dm_job_key which)
{
    /* The id passed the jobId rule and the prefix dreamctl's check: it always fits. */
    (void)dm_keys_job(out, DM_KEYS_MAX, ctl->prefix, id, which);
}

/* ---- signing ---- */

/* Reads the secret file given to --flag (path): at most max bytes, one trailing line end
 * dropped (the file's, not the secret's), not empty, no NUL byte. *out: the secret (free with
 * ctl_secret_free). Returns 0 or an exit code; the content is never repeated. */
static int read_secret_file(struct ctl *ctl, const char *flag, const char *path, size_t max,
                            char **out)
{
    char *buf = malloc(max + 1);
    size_t n;
    FILE *f;
    int rc = 0;

    *out = NULL;
    if (!buf) {
        return ctl_fail(ctl, DM_CTL_EXIT_FAILED, "out of memory");
    }
    if (!(f = fopen(path, "rb"))) {
        free(buf);
        return ctl_fail(ctl, DM_CTL_EXIT_USAGE, "--%s %s: %s", flag, path, strerror(errno));
    }
    n = fread(buf, 1, max + 1, f);
    fclose(f);
    if (n > max) {
        rc = ctl_fail(ctl, DM_CTL_EXIT_USAGE, "--%s %s: longer than %zu bytes", flag, path, max);
        goto out;
    }
    if (n && buf[n - 1] == '\n') {
        n--;
    }
    if (n && buf[n - 1] == '\r') {
        n--;
    }
    buf[n] = '\0';
    if (n == 0 || memchr(buf, '\0', n)) {
        rc = ctl_fail(ctl, DM_CTL_EXIT_USAGE, "--%s %s: %s", flag, path,
                      n ? "holds a NUL byte" : "is empty");
        goto out;
    }
    if (!(*out = strdup(buf))) {
        rc = ctl_fail(ctl, DM_CTL_EXIT_FAILED, "out of memory");
    }
out:
    explicit_bzero(buf, max + 1);
    free(buf);
    return rc;
}

int ctl_sign_secret(struct ctl *ctl, char **out)
{
    const char *path = ctl_opt(ctl, "sign-secret-file");
    const char *env = getenv("DREAM_SIGN_SECRET");

    *out = NULL;
    if (path) {
        return read_secret_file(ctl, "sign-secret-file", path, 4096, out);
    }
    if (env && *env && !(*out = strdup(env))) {
        return ctl_fail(ctl, DM_CTL_EXIT_FAILED, "out of memory");
    }
    return 0;
}

int ctl_token_file(struct ctl *ctl)
{
    const char *path = ctl_opt(ctl, "token-file");
    int i = 0, rc;

    if (!path) {
        return 0;
    }
    if (ctl_opt(ctl, "token")) {
        return ctl_fail(ctl, DM_CTL_EXIT_USAGE, "give --token or --token-file, not both");
    }
    if ((rc = read_secret_file(ctl, "token-file", path, 16384, &ctl->token))) {
        return rc;
    }
    for (const struct optdef *d = ctl->cmd->opts; d && d->name; d++, i++) {
        if (strcmp(d->name, "token") == 0) {
            ctl->val[i] = ctl->token;
        }
    }
    return 0;
}

void ctl_secret_free(char *s)
{
    if (s) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

int ctl_sign_job(struct ctl *ctl, const struct dm_jobreq *req, const char *secret, const char *sub,
                 const char *trust, char **token)
{
    long long now = dm_time_now_ms() / 1000;
    const char *aud =
        ctl_opt(ctl, "audience") ? ctl_opt(ctl, "audience") : getenv("DREAM_SIGNING_AUDIENCE");
    char sha[DM_AUTH_SHA256_HEX_LEN + 1];
    struct dm_error err;
    cJSON *claims;
    char *json;
    int rc = 0;

    *token = NULL;
    if (dm_jobreq_binding_sha256(sha, sizeof(sha), req)) {
        return ctl_fail(ctl, DM_CTL_EXIT_FAILED, "out of memory");
    }
    claims = cJSON_CreateObject();
    cJSON_AddStringToObject(
        claims, "iss", ctl_opt(ctl, "issuer") ? ctl_opt(ctl, "issuer") : DM_AUTH_DEFAULT_ISSUER);
    cJSON_AddStringToObject(claims, "sub", sub);
    cJSON_AddStringToObject(claims, "jti", req->job_id);
    cJSON_AddStringToObject(claims, "dreamTrustLevel", trust);
    /* Binds the token to where the code goes and what it says (jobreq.h). */
    cJSON_AddStringToObject(claims, DM_AUTH_JOB_SHA256_CLAIM, sha);
    if (aud && *aud) {
        cJSON_AddStringToObject(claims, "aud", aud);
    }
    cJSON_AddNumberToObject(claims, "iat", (double)now);
    cJSON_AddNumberToObject(claims, "exp", (double)(now + CTL_TOKEN_LIFETIME_S));
    json = cJSON_PrintUnformatted(claims);
    if (!json || dm_auth_sign_hs256(token, json, secret, &err)) {
        rc = ctl_fail(ctl, DM_CTL_EXIT_USAGE, "cannot sign the job: %s",
                      json ? err.msg : "out of memory");
    }
    cJSON_Delete(claims);
    free(json);
    return rc;
}
