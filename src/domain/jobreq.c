/*
 * jobreq: parsing and validation of build jobs (see include/dream/domain/jobreq.h).
 *
 * Owns the struct dm_jobreq it returns. One function per rule family; the first broken rule wins
 * and is reported as "<field>: <rule>". Pure (cJSON); any thread.
 */
#include "dream/domain/jobreq.h"
#include "dream/domain/forge_proto.h"
#include "dream/domain/netaddr.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "dream/core/refname.h"
#include "dream/core/text.h"

static const char *const priority_names[] = {"critical", "high", "medium", "low"};
static const char *const repo_type_names[] = {"storia-digital", "petranto-com", "byok-cloud",
                                              "custom"};
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

const char *dm_jobreq_priority_name(enum dm_priority p)
{
    return (int)p >= 0 && (size_t)p < COUNT(priority_names) ? priority_names[p] : "unknown";
}

int dm_jobreq_priority_parse(enum dm_priority *out, const char *s)
{
    for (size_t i = 0; s && i < COUNT(priority_names); i++) {
        if (strcmp(s, priority_names[i]) == 0) {
            *out = (enum dm_priority)i;
            return 0;
        }
    }
    return DM_ERR_INVALID;
}

const char *dm_jobreq_repo_type_name(enum dm_repo_type t)
{
    return (int)t >= 0 && (size_t)t < COUNT(repo_type_names) ? repo_type_names[t] : "unknown";
}

int dm_jobreq_repo_type_parse(enum dm_repo_type *out, const char *s)
{
    for (size_t i = 0; s && i < COUNT(repo_type_names); i++) {
        if (strcmp(s, repo_type_names[i]) == 0) {
            *out = (enum dm_repo_type)i;
            return 0;
        }
    }
    return DM_ERR_INVALID;
}

/* ---- character rules ------------------------------------------------------------------- */

static int is_alnum(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static int all_in(const char *s, const char *extra)
{
    for (; *s; s++) {
        if (!is_alnum((unsigned char)*s) && !strchr(extra, *s)) {
            return 0;
        }
    }
    return 1;
}

int dm_jobreq_id_valid(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    return n >= 1 && n <= DM_JOBREQ_ID_MAX && is_alnum((unsigned char)s[0]) && all_in(s, "._-");
}

/* ---- field access ---------------------------------------------------------------------- */

struct ctx {
    const cJSON *root;
    struct dm_error *err;
};

static int fail(struct dm_error *err, const char *field, const char *rule)
{
    return dm_error_set(err, DM_ERR_INVALID, "%s: %s", field, rule);
}

/* Borrows the string value of field (NULL when absent or JSON null). Returns 0, or
 * DM_ERR_INVALID with "<field>: required" / "must be a string" / "must be at most N bytes" /
 * "must be valid UTF-8". */
static int get_str(const char **out, const cJSON *obj, const char *field, const char *label,
                   int required, size_t max, struct dm_error *err)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, field);
    size_t n;

    *out = NULL;
    if (!it || cJSON_IsNull(it)) {
        return required ? fail(err, label, "required") : 0;
    }
    if (!cJSON_IsString(it) || !it->valuestring) {
        return fail(err, label, "must be a string");
    }
    n = strlen(it->valuestring);
    if (n > max) {
        return dm_error_set(err, DM_ERR_INVALID, "%s: must be at most %zu bytes", label, max);
    }
    if (dm_text_utf8_count(it->valuestring, n) < 0) {
        return fail(err, label, "must be valid UTF-8");
    }
    *out = it->valuestring;
    return 0;
}

static int dup_into(char **dst, const char *src)
{
    *dst = strdup(src);
    return *dst ? 0 : DM_ERR_NOMEM;
}

static int take_id(char **dst, const cJSON *root, const char *field, int strict,
                   struct dm_error *err)
{
    const char *s;
    int rc = get_str(&s, root, field, field, 1, DM_JOBREQ_ID_MAX, err);

    if (rc) {
        return rc;
    }
    if (strict ? !dm_jobreq_id_valid(s) : (!s[0] || !all_in(s, "._:@|+-"))) {
        return fail(err, field,
                    strict ? "must be 1-128 characters of [A-Za-z0-9._-] starting with a letter "
                             "or digit"
                           : "must be 1-128 characters of [A-Za-z0-9._:@|+-]");
    }
    return dup_into(dst, s);
}

static int take_repo_part(char **dst, const cJSON *root, const char *field, struct dm_error *err)
{
    const char *s;
    const char *why;
    int rc;

    /* Check the length in characters after the charset, so a long name gets the clearer
     * message; get_str's byte cap is a loose bound here. */
    rc = get_str(&s, root, field, field, 1, SIZE_MAX, err);
    if (rc) {
        return rc;
    }
    why = dm_forge_name_problem(s); /* GitHub's rule for owner and repository names */
    if (why) {
        return fail(err, field, why);
    }
    return dup_into(dst, s);
}

static int is_blank(const char *s)
{
    for (; *s; s++) {
        if (!strchr(" \t\r\n\f\v", *s)) {
            return 0;
        }
    }
    return 1;
}

/* host is in list (compared without IPv6 brackets, so "::1" can be listed). */
static int host_listed(const char *host, size_t n, const char *const *list, size_t count)
{
    if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
        host++;
        n -= 2;
    }
    for (size_t i = 0; list && i < count; i++) {
        const char *h = list[i];
        if (h && strlen(h) == n && strncasecmp(h, host, n) == 0) {
            return 1;
        }
    }
    return 0;
}

/* Hosts the operator named for plain http (test receivers). */
static int host_allowed(const char *host, size_t n, const struct dm_jobreq_opts *opts)
{
    return opts && host_listed(host, n, opts->http_hosts, opts->n_http_hosts);
}

/* Hosts the operator named as its own: exempt from the address checks. */
static int host_internal_ok(const char *host, size_t n, const struct dm_jobreq_opts *opts)
{
    return host_allowed(host, n, opts) ||
           (opts && host_listed(host, n, opts->internal_hosts, opts->n_internal_hosts));
}

/* A small, strict absolute-URL check (the pure core cannot use curl_url): scheme, no
 * credentials, a DNS name / IPv4 / bracketed IPv6 host, an optional port 1-65535. */
static int check_url(const char *url, const struct dm_jobreq_opts *opts, struct dm_error *err)
{
    const char *f = "callbackUrl";
    const char *p;
    const char *auth_end;
    const char *host;
    size_t host_len;
    int https;

    for (p = url; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c <= 0x20 || c >= 0x7f || c == '\\') {
            return fail(err, f, "must not contain spaces, control, non-ASCII or '\\' characters");
        }
    }
    if (strncasecmp(url, "https://", 8) == 0) {
        https = 1;
        p = url + 8;
    } else if (strncasecmp(url, "http://", 7) == 0) {
        https = 0;
        p = url + 7;
    } else {
        return fail(err, f, "must be an https URL");
    }
    auth_end = p + strcspn(p, "/?#");
    if (memchr(p, '@', (size_t)(auth_end - p))) {
        return fail(err, f, "must not contain credentials");
    }
    host = p;
    if (*p == '[') {
        const char *close = memchr(p, ']', (size_t)(auth_end - p));
        if (!close || close == p + 1) {
            return fail(err, f, "must have a valid host");
        }
        for (const char *q = p + 1; q < close; q++) {
            if (!strchr("0123456789abcdefABCDEF:.", *q)) {
                return fail(err, f, "must have a valid host");
            }
        }
        host_len = (size_t)(close + 1 - p);
        p = close + 1;
    } else {
        while (p < auth_end && *p != ':') {
            if (!is_alnum((unsigned char)*p) && *p != '.' && *p != '-') {
                return fail(err, f, "must have a valid host");
            }
            p++;
        }
        host_len = (size_t)(p - host);
        if (host_len == 0 || host[0] == '.' || host[0] == '-' || host[host_len - 1] == '-') {
            return fail(err, f, "must have a valid host");
        }
    }
    if (p < auth_end) {
        long port = 0;
        if (*p != ':' || p + 1 == auth_end || auth_end - p > 6) {
            return fail(err, f, "must have a valid port");
        }
        for (p++; p < auth_end; p++) {
            if (*p < '0' || *p > '9') {
                return fail(err, f, "must have a valid port");
            }
            port = port * 10 + (*p - '0');
        }
        if (port < 1 || port > 65535) {
            return fail(err, f, "must have a valid port");
        }
    }
    if (!https && !host_allowed(host, host_len, opts)) {
        return fail(err, f, "must be an https URL (plain http only for allow-listed hosts)");
    }
    /* SSRF: a job must not aim the replica at itself, its network or the cloud metadata
     * service. Literal addresses (in any spelling a resolver accepts) and known internal names
     * are refused here; other names are checked again after resolution, at delivery. */
    if (!host_internal_ok(host, host_len, opts)) {
        enum dm_netaddr_class c = dm_netaddr_classify_host(host, host_len);
        if (c == DM_NETADDR_METADATA) {
            return fail(err, f, "must not name a cloud metadata or internal host");
        }
        if (dm_netaddr_refused(c)) {
            char why[96];
            const char *name = dm_netaddr_class_name(c);
            snprintf(why, sizeof(why), "must not point to %s %s address",
                     strchr("aeiou", name[0]) ? "an" : "a", name);
            return fail(err, f, why);
        }
    }
    return 0;
}

static int take_budget(struct dm_jobreq *job, const cJSON *root, struct dm_error *err)
{
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(root, "budget");
    const cJSON *t;
    const cJSON *d;
    double v;

    if (!b || cJSON_IsNull(b)) {
        return fail(err, "budget", "required");
    }
    if (!cJSON_IsObject(b)) {
        return fail(err, "budget", "must be an object");
    }
    t = cJSON_GetObjectItemCaseSensitive(b, "maxTokens");
    if (!t || cJSON_IsNull(t)) {
        return fail(err, "budget.maxTokens", "required");
    }
    /* cJSON turns huge exponents into inf; reject anything not a finite whole number. */
    v = cJSON_IsNumber(t) ? t->valuedouble : NAN;
    if (!isfinite(v) || v <= 0 || floor(v) != v) {
        return fail(err, "budget.maxTokens", "must be an integer > 0");
    }
    if (v > (double)DM_JOBREQ_MAX_TOKENS_MAX) {
        return fail(err, "budget.maxTokens", "must be at most 1000000000");
    }
    job->budget_tokens = (long long)v;
    d = cJSON_GetObjectItemCaseSensitive(b, "maxDollars");
    if (!d || cJSON_IsNull(d)) {
        /* No dollar limit: tokens count against maxTokens only (models without a known price
         * may then run). */
        job->budget_dollars = 0;
        return 0;
    }
    v = cJSON_IsNumber(d) ? d->valuedouble : NAN;
    if (!isfinite(v) || v <= 0) {
        return fail(err, "budget.maxDollars", "must be a finite number > 0");
    }
    if (v > DM_JOBREQ_MAX_DOLLARS_MAX) {
        return fail(err, "budget.maxDollars", "must be at most 1000000");
    }
    job->budget_dollars = v;
    return 0;
}

/* An escaped NUL (\u0000) would silently cut a cJSON string short; refuse it. */
static int has_escaped_nul(const char *s, size_t n)
{
    for (size_t i = 0; i + 6 <= n; i++) {
        if (s[i] == '\\') {
            if (s[i + 1] == 'u' && memcmp(s + i + 2, "0000", 4) == 0) {
                return 1;
            }
            i++; /* skip the escaped character, so "\\u0000" is not an escape */
        }
    }
    return 0;
}

static int hex4(const char *s, size_t n, size_t at, unsigned *out)
{
    unsigned v = 0;
    if (at + 4 > n) {
        return -1;
    }
    for (size_t k = 0; k < 4; k++) {
        char c = s[at + k];
        v <<= 4;
        if (c >= '0' && c <= '9') {
            v |= (unsigned)(c - '0');
        } else if (c >= 'a' && c <= 'f') {
            v |= (unsigned)(c - 'a' + 10);
        } else if (c >= 'A' && c <= 'F') {
            v |= (unsigned)(c - 'A' + 10);
        } else {
            return -1;
        }
    }
    *out = v;
    return 0;
}

/* cJSON 1.7 accepts some broken escapes ("\user", a lone surrogate) by silently cutting the
 * string there, which would turn "j-1\user" into the jobId "j-1". Refuse them up front. */
static int has_bad_escape(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned u, lo;
        if (s[i] != '\\') {
            continue;
        }
        if (i + 1 >= n) {
            return 1;
        }
        if (!strchr("\"\\/bfnrtu", s[i + 1])) {
            return 1;
        }
        if (s[i + 1] != 'u') {
            i++;
            continue;
        }
        if (hex4(s, n, i + 2, &u)) {
            return 1;
        }
        if (u >= 0xDC00 && u <= 0xDFFF) {
            return 1;
        }
        if (u >= 0xD800 && u <= 0xDBFF) {
            if (i + 12 > n || s[i + 6] != '\\' || s[i + 7] != 'u' || hex4(s, n, i + 8, &lo) ||
                lo < 0xDC00 || lo > 0xDFFF) {
                return 1;
            }
            i += 6;
        }
        i += 5;
    }
    return 0;
}

/* ---- pull request options ---- */

static int login_ok(const char *s)
{
    size_t n = strlen(s);
    return n >= 1 && n <= 39 && s[0] != '-' &&
           strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-") == n;
}

static int team_ok(const char *s)
{
    size_t n = strlen(s);
    return n >= 1 && n <= 100 &&
           strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n;
}

static int label_ok(const char *s)
{
    long chars = dm_text_utf8_count(s, strlen(s));
    if (chars < 1 || chars > DM_JOBREQ_LABEL_MAX) {
        return 0;
    }
    for (const char *q = s; *q; q++) {
        if ((unsigned char)*q < 0x20 || *q == 0x7f) {
            return 0;
        }
    }
    return 1;
}

static void free_list(char **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++) {
        free(v[i]);
    }
    free(v);
}

/* An optional array of strings, each passing ok(); duplicates dropped. */
static int take_list(char ***dst, size_t *n_out, int *set, const cJSON *root, const char *field,
                     size_t max, int (*ok)(const char *), const char *rule, struct dm_error *err)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(root, field);
    const cJSON *it;
    size_t n = 0;

    *dst = NULL;
    *n_out = 0;
    *set = 0;
    if (!a || cJSON_IsNull(a)) {
        return 0;
    }
    if (!cJSON_IsArray(a)) {
        return fail(err, field, "must be an array of strings");
    }
    if ((size_t)cJSON_GetArraySize(a) > max) {
        return dm_error_set(err, DM_ERR_INVALID, "%s: must have at most %zu entries", field, max);
    }
    *set = 1;
    *dst = calloc(max ? max : 1, sizeof(char *));
    if (!*dst) {
        return DM_ERR_NOMEM;
    }
    cJSON_ArrayForEach(it, a)
    {
        int dup = 0;
        if (!cJSON_IsString(it) || !it->valuestring ||
            dm_text_utf8_count(it->valuestring, strlen(it->valuestring)) < 0 ||
            !ok(it->valuestring)) {
            free_list(*dst, n);
            *dst = NULL;
            *set = 0;
            return fail(err, field, rule);
        }
        for (size_t i = 0; i < n; i++) {
            dup |= strcmp((*dst)[i], it->valuestring) == 0;
        }
        if (!dup && !((*dst)[n++] = strdup(it->valuestring))) {
            free_list(*dst, n);
            *dst = NULL;
            return DM_ERR_NOMEM;
        }
    }
    *n_out = n;
    return 0;
}

static int take_pr_options(struct dm_jobreq *job, const cJSON *root, struct dm_error *err)
{
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(root, "draft");
    const char *s;
    int rc;

    job->draft = -1;
    if (d && !cJSON_IsNull(d)) {
        if (!cJSON_IsBool(d)) {
            return fail(err, "draft", "must be true or false");
        }
        job->draft = cJSON_IsTrue(d) ? 1 : 0;
    }
    if ((rc = take_list(&job->labels, &job->n_labels, &job->labels_set, root, "labels",
                        DM_JOBREQ_LABELS_MAX, label_ok,
                        "each must be a string of 1..50 characters without control characters",
                        err)) ||
        (rc = take_list(&job->reviewers, &job->n_reviewers, &job->reviewers_set, root, "reviewers",
                        DM_JOBREQ_REVIEWERS_MAX, login_ok,
                        "each must be a GitHub login (^[A-Za-z0-9][A-Za-z0-9-]{0,38}$)", err)) ||
        (rc = take_list(&job->team_reviewers, &job->n_team_reviewers, &job->team_reviewers_set,
                        root, "teamReviewers", DM_JOBREQ_REVIEWERS_MAX, team_ok,
                        "each must be a team slug (^[A-Za-z0-9._-]{1,100}$)", err))) {
        return rc;
    }
    if ((rc = get_str(&s, root, "specUrl", "specUrl", 0, DM_JOBREQ_URL_MAX, err))) {
        return rc;
    }
    if (s) {
        size_t n = strlen(s);
        size_t head = strncmp(s, "https://", 8) == 0 ? 8 : strncmp(s, "http://", 7) == 0 ? 7 : 0;
        if (!head || n == head) {
            return fail(err, "specUrl", "must be an http:// or https:// URL");
        }
        for (const char *q = s; *q; q++) {
            if ((unsigned char)*q <= 0x20 || *q == 0x7f || *q == '<' || *q == '>' || *q == '"' ||
                *q == '\\' || *q == '`') {
                return fail(err, "specUrl",
                            "must not contain spaces, control characters, quotes, "
                            "backslashes, backticks or angle brackets");
            }
        }
        if ((rc = dup_into(&job->spec_url, s))) {
            return rc;
        }
    }
    return 0;
}

static int validate(struct dm_jobreq *job, const cJSON *root, const struct dm_jobreq_opts *opts,
                    struct dm_error *err)
{
    const char *s;
    int rc;

    if ((rc = take_id(&job->job_id, root, "jobId", 1, err)) ||
        (rc = take_id(&job->spec_id, root, "specId", 0, err)) ||
        (rc = take_id(&job->user_id, root, "userId", 0, err)) ||
        (rc = take_repo_part(&job->repo_owner, root, "repoOwner", err)) ||
        (rc = take_repo_part(&job->repo_name, root, "repoName", err))) {
        return rc;
    }

    if ((rc = get_str(&s, root, "specMarkdown", "specMarkdown", 1, DM_JOBREQ_SPEC_MAX, err))) {
        return rc;
    }
    if (is_blank(s)) {
        return fail(err, "specMarkdown", "must not be blank");
    }
    if ((rc = dup_into(&job->spec_markdown, s))) {
        return rc;
    }
    job->spec_len = strlen(s);

    if ((rc = take_budget(job, root, err))) {
        return rc;
    }

    if ((rc = get_str(&s, root, "callbackUrl", "callbackUrl", 0, DM_JOBREQ_URL_MAX, err))) {
        return rc;
    }
    if (s) {
        if ((rc = check_url(s, opts, err)) || (rc = dup_into(&job->callback_url, s))) {
            return rc;
        }
    }

    if ((rc = get_str(&s, root, "targetRepoType", "targetRepoType", 0, 64, err))) {
        return rc;
    }
    job->repo_type = DM_REPO_TYPE_CUSTOM;
    if (s && dm_jobreq_repo_type_parse(&job->repo_type, s) != 0) {
        return fail(err, "targetRepoType",
                    "must be one of storia-digital, petranto-com, byok-cloud, custom");
    }

    if ((rc = get_str(&s, root, "priority", "priority", 0, 64, err))) {
        return rc;
    }
    job->priority = DM_PRIORITY_MEDIUM;
    if (s && dm_jobreq_priority_parse(&job->priority, s) != 0) {
        return fail(err, "priority", "must be one of critical, high, medium, low");
    }

    if ((rc = get_str(&s, root, "baseBranch", "baseBranch", 0, DM_REFNAME_MAX, err))) {
        return rc;
    }
    s = s ? s : DM_JOBREQ_BASE_BRANCH_DEFAULT;
    {
        const char *why = dm_refname_problem(s);
        if (why) {
            return dm_error_set(err, DM_ERR_INVALID,
                                "baseBranch: must be a valid git ref name (%s)", why);
        }
    }
    if ((rc = dup_into(&job->base_branch, s))) {
        return rc;
    }

    if ((rc = get_str(&s, root, "branchPrefix", "branchPrefix", 0, DM_JOBREQ_PREFIX_MAX, err))) {
        return rc;
    }
    s = s ? s : DM_JOBREQ_BRANCH_PREFIX_DEFAULT;
    if (!s[0]) {
        return fail(err, "branchPrefix", "must not be empty");
    }
    {
        /* The prefix itself usually ends in '/', so check what it makes: prefix + a slug. */
        char probe[DM_JOBREQ_PREFIX_MAX + 2];
        const char *why;
        snprintf(probe, sizeof(probe), "%sx", s);
        why = dm_refname_problem(probe);
        if (why) {
            return dm_error_set(err, DM_ERR_INVALID,
                                "branchPrefix: must make valid git ref names (%s)", why);
        }
    }
    if ((rc = dup_into(&job->branch_prefix, s))) {
        return rc;
    }

    if ((rc = get_str(&s, root, "estimatedEffort", "estimatedEffort", 0, 4 * DM_JOBREQ_EFFORT_MAX,
                      err))) {
        return rc;
    }
    if (s) {
        if (dm_text_utf8_count(s, strlen(s)) > DM_JOBREQ_EFFORT_MAX) {
            return fail(err, "estimatedEffort", "must be at most 64 characters");
        }
        for (const char *q = s; *q; q++) {
            if ((unsigned char)*q < 0x20 || *q == 0x7f) {
                return fail(err, "estimatedEffort", "must not contain control characters");
            }
        }
        if ((rc = dup_into(&job->estimated_effort, s))) {
            return rc;
        }
    }

    if ((rc = take_pr_options(job, root, err))) {
        return rc;
    }

    if (opts && opts->ignore_trust) {
        /* Signed mode: the token alone says what the job may do. */
        job->trust_set = 0;
        return 0;
    }
    if ((rc = get_str(&s, root, "trustLevel", "trustLevel", 0, 64, err))) {
        return rc;
    }
    if (s) {
        if (dm_trust_parse(&job->trust, s) != 0) {
            return fail(err, "trustLevel", "must be one of observer, planner, builder, shipper");
        }
        job->trust_set = 1;
    } else if (!(opts && opts->trust_optional)) {
        return fail(err, "trustLevel", "required (or a signed token carrying dreamTrustLevel)");
    }
    return 0;
}

int dm_jobreq_parse(struct dm_jobreq **out, const char *json, size_t len,
                    const struct dm_jobreq_opts *opts, struct dm_error *err)
{
    struct dm_jobreq *job = NULL;
    char *copy = NULL;
    cJSON *root = NULL;
    int rc;

    *out = NULL;
    if (len > DM_JOBREQ_JSON_MAX) {
        rc = dm_error_set(err, DM_ERR_LIMIT, "job: must be at most %u bytes",
                          (unsigned)DM_JOBREQ_JSON_MAX);
        goto out;
    }
    if (!json || len == 0 || memchr(json, '\0', len)) {
        rc = fail(err, "job", "not valid JSON");
        goto out;
    }
    if (has_escaped_nul(json, len)) {
        rc = fail(err, "job", "must not contain NUL characters (\\u0000)");
        goto out;
    }
    if (has_bad_escape(json, len)) {
        rc = fail(err, "job", "not valid JSON (a string has an invalid escape)");
        goto out;
    }
    /* cJSON only rejects trailing garbage when it can see the terminating NUL. */
    copy = malloc(len + 1);
    job = calloc(1, sizeof(*job));
    if (!copy || !job) {
        rc = DM_ERR_NOMEM;
        goto out;
    }
    memcpy(copy, json, len);
    copy[len] = '\0';
    root = cJSON_ParseWithLengthOpts(copy, len + 1, NULL, 1);
    if (!root) {
        rc = fail(err, "job", "not valid JSON");
        goto out;
    }
    if (!cJSON_IsObject(root)) {
        rc = fail(err, "job", "must be a JSON object");
        goto out;
    }
    rc = validate(job, root, opts, err);
    if (rc) {
        goto out;
    }
    *out = job;
    job = NULL;
out:
    if (rc == DM_ERR_NOMEM) {
        dm_error_set(err, DM_ERR_NOMEM, "job: out of memory");
    }
    cJSON_Delete(root);
    free(copy);
    dm_jobreq_free(job);
    return rc;
}

void dm_jobreq_free(struct dm_jobreq *job)
{
    if (!job) {
        return;
    }
    free(job->job_id);
    free(job->spec_id);
    free(job->user_id);
    free(job->repo_owner);
    free(job->repo_name);
    free(job->spec_markdown);
    free(job->callback_url);
    free(job->base_branch);
    free(job->branch_prefix);
    free(job->estimated_effort);
    free_list(job->labels, job->n_labels);
    free_list(job->reviewers, job->n_reviewers);
    free_list(job->team_reviewers, job->n_team_reviewers);
    free(job->spec_url);
    free(job);
}

char *dm_jobreq_to_json(const struct dm_jobreq *job)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *b = NULL;
    char *s = NULL;
    int ok;

    if (!o || !job) {
        goto out;
    }
    ok = cJSON_AddStringToObject(o, "jobId", job->job_id) &&
         cJSON_AddStringToObject(o, "specId", job->spec_id) &&
         cJSON_AddStringToObject(o, "userId", job->user_id) &&
         cJSON_AddStringToObject(o, "targetRepoType", dm_jobreq_repo_type_name(job->repo_type)) &&
         cJSON_AddStringToObject(o, "repoOwner", job->repo_owner) &&
         cJSON_AddStringToObject(o, "repoName", job->repo_name) &&
         cJSON_AddStringToObject(o, "baseBranch", job->base_branch) &&
         cJSON_AddStringToObject(o, "branchPrefix", job->branch_prefix) &&
         cJSON_AddStringToObject(o, "specMarkdown", job->spec_markdown) &&
         cJSON_AddStringToObject(o, "priority", dm_jobreq_priority_name(job->priority)) &&
         (b = cJSON_AddObjectToObject(o, "budget")) &&
         cJSON_AddNumberToObject(b, "maxTokens", (double)job->budget_tokens);
    if (ok && job->budget_dollars > 0) { /* absent: no dollar limit */
        ok = cJSON_AddNumberToObject(b, "maxDollars", job->budget_dollars) != NULL;
    }
    if (ok && job->callback_url) {
        ok = cJSON_AddStringToObject(o, "callbackUrl", job->callback_url) != NULL;
    }
    if (ok && job->estimated_effort) {
        ok = cJSON_AddStringToObject(o, "estimatedEffort", job->estimated_effort) != NULL;
    }
    if (ok && job->trust_set) {
        ok = cJSON_AddStringToObject(o, "trustLevel", dm_trust_name(job->trust)) != NULL;
    }
    if (ok && job->draft >= 0) {
        ok = cJSON_AddBoolToObject(o, "draft", job->draft) != NULL;
    }
    if (ok && job->labels_set) {
        ok = cJSON_AddItemToObject(
            o, "labels",
            cJSON_CreateStringArray((const char *const *)job->labels, (int)job->n_labels));
    }
    if (ok && job->reviewers_set) {
        ok = cJSON_AddItemToObject(
            o, "reviewers",
            cJSON_CreateStringArray((const char *const *)job->reviewers, (int)job->n_reviewers));
    }
    if (ok && job->team_reviewers_set) {
        ok = cJSON_AddItemToObject(o, "teamReviewers",
                                   cJSON_CreateStringArray((const char *const *)job->team_reviewers,
                                                           (int)job->n_team_reviewers));
    }
    if (ok && job->spec_url) {
        ok = cJSON_AddStringToObject(o, "specUrl", job->spec_url) != NULL;
    }
    if (ok) {
        s = cJSON_PrintUnformatted(o);
    }
out:
    cJSON_Delete(o);
    return s;
}

/* ---- building a job ---------------------------------------------------------------------- */

int dm_jobreq_id_make(char *out, size_t outlen, long long now_s, const unsigned char rnd[4])
{
    time_t t = (time_t)now_s;
    struct tm tm;
    char when[32];
    int n;

    if (!gmtime_r(&t, &tm) || !strftime(when, sizeof(when), "%Y%m%d-%H%M%S", &tm)) {
        return DM_ERR_INVALID;
    }
    n = snprintf(out, outlen, "job-%s-%02x%02x%02x%02x", when, rnd[0], rnd[1], rnd[2], rnd[3]);
    return n < 0 || (size_t)n >= outlen ? DM_ERR_LIMIT : 0;
}

/* Adds name: the comma-separated csv as an array of its items (dm_text_split_list; NULL csv:
 * nothing added, "" an empty array). The worker's own rules judge the items. Returns 0 only when
 * out of memory. */
static int add_csv(cJSON *o, const char *name, const char *csv)
{
    const char *items[DM_JOBREQ_LABELS_MAX + 1];
    cJSON *arr;
    char *buf;
    size_t n;

    if (!csv) {
        return 1;
    }
    if (!(buf = strdup(csv))) {
        return 0;
    }
    /* One item past the longest list, so the worker's rule names the excess. */
    n = dm_text_split_list(buf, items, DM_JOBREQ_LABELS_MAX + 1);
    arr = cJSON_CreateStringArray(items, (int)n);
    free(buf);
    if (!arr || !cJSON_AddItemToObject(o, name, arr)) {
        cJSON_Delete(arr);
        return 0;
    }
    return 1;
}

int dm_jobreq_build(char **json_out, struct dm_jobreq **out, const struct dm_jobreq_draft *d,
                    const struct dm_jobreq_opts *opts, struct dm_error *err)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *b = cJSON_CreateObject();
    struct dm_jobreq *job = NULL;
    char *json = NULL;
    int ok, rc;

    *json_out = NULL;
    if (out) {
        *out = NULL;
    }
    /* The order is the one producers have always written; cJSON skips a NULL value. */
    ok = o && b && cJSON_AddStringToObject(o, "jobId", d->job_id ? d->job_id : "") &&
         cJSON_AddStringToObject(o, "specId", d->spec_id ? d->spec_id : "") &&
         cJSON_AddStringToObject(o, "userId", d->user_id ? d->user_id : "") &&
         cJSON_AddStringToObject(o, "targetRepoType",
                                 d->repo_type ? d->repo_type
                                              : dm_jobreq_repo_type_name(DM_REPO_TYPE_CUSTOM)) &&
         cJSON_AddStringToObject(o, "repoOwner", d->repo_owner ? d->repo_owner : "") &&
         cJSON_AddStringToObject(o, "repoName", d->repo_name ? d->repo_name : "") &&
         cJSON_AddStringToObject(o, "baseBranch",
                                 d->base_branch ? d->base_branch : DM_JOBREQ_BASE_BRANCH_DEFAULT) &&
         cJSON_AddStringToObject(o, "branchPrefix",
                                 d->branch_prefix ? d->branch_prefix
                                                  : DM_JOBREQ_BRANCH_PREFIX_DEFAULT) &&
         cJSON_AddStringToObject(o, "specMarkdown", d->spec_markdown ? d->spec_markdown : "");
    if (ok && d->effort) {
        ok = cJSON_AddStringToObject(o, "estimatedEffort", d->effort) != NULL;
    }
    ok = ok && cJSON_AddStringToObject(o, "priority",
                                       d->priority ? d->priority
                                                   : dm_jobreq_priority_name(DM_PRIORITY_MEDIUM));
    if (ok && d->callback_url) {
        ok = cJSON_AddStringToObject(o, "callbackUrl", d->callback_url) != NULL;
    }
    ok =
        ok &&
        cJSON_AddNumberToObject(
            b, "maxTokens", (double)(d->max_tokens ? d->max_tokens : DM_JOBREQ_DRAFT_MAX_TOKENS)) &&
        (d->max_dollars < 0 ||
         cJSON_AddNumberToObject(
             b, "maxDollars", d->max_dollars != 0 ? d->max_dollars : DM_JOBREQ_DRAFT_MAX_DOLLARS));
    if (ok) {
        cJSON_AddItemToObject(o, "budget", b);
        b = NULL;
    }
    if (ok && d->trust) {
        ok = cJSON_AddStringToObject(o, "trustLevel", d->trust) != NULL;
    }
    if (ok && d->pr_draft) {
        ok = cJSON_AddBoolToObject(o, "draft", d->pr_draft > 0) != NULL;
    }
    ok = ok && add_csv(o, "labels", d->labels) && add_csv(o, "reviewers", d->reviewers) &&
         add_csv(o, "teamReviewers", d->team_reviewers);
    if (ok && d->spec_url) {
        ok = cJSON_AddStringToObject(o, "specUrl", d->spec_url) != NULL;
    }
    if (!ok || !(json = cJSON_PrintUnformatted(o))) {
        rc = dm_error_set(err, DM_ERR_NOMEM, "job: out of memory");
        goto out;
    }
    /* One validation for every producer: the worker's own. */
    if ((rc = dm_jobreq_parse(&job, json, strlen(json), opts, err))) {
        goto out;
    }
    *json_out = json;
    json = NULL;
    if (out) {
        *out = job;
        job = NULL;
    }
out:
    cJSON_Delete(b);
    cJSON_Delete(o);
    free(json);
    dm_jobreq_free(job);
    return rc;
}
