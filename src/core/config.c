/*
 * config: the settings table, loading (defaults < env < flags), validation and printing.
 * See include/dream/core/config.h. Pure; called once at start-up on the main thread.
 */
#include "dream/core/config.h"
#include "dream/core/secret.h"
#include "dream/core/error.h"
#include "dream/core/log.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

enum kind { K_STR, K_INT, K_BOOL };

struct setting {
    const char *flag; /* without the leading -- */
    const char *env;
    enum kind kind;
    size_t off;
    const char *def; /* NULL: unset */
    long long min, max;
    int secret; /* also read from <env>_FILE; never printed */
    int (*check)(const char *value, char *why, size_t whylen);
    const char *help;
};

static int check_prefix(const char *v, char *why, size_t n);
static int check_level(const char *v, char *why, size_t n);
static int check_http_url(const char *v, char *why, size_t n);
static int check_git_url(const char *v, char *why, size_t n);
static int check_stages(const char *v, char *why, size_t n);
static int check_nonempty(const char *v, char *why, size_t n);
static int check_admin(const char *v, char *why, size_t n);
static int check_planner(const char *v, char *why, size_t n);
static int check_llm_api(const char *v, char *why, size_t n);
static int check_max_tokens_field(const char *v, char *why, size_t n);

#define S(field) offsetof(struct dm_config, field)

static const struct setting settings[] = {
    {"redis-url", "DREAM_REDIS_URL", K_STR, S(redis_url), "redis://127.0.0.1:6379/0", 0, 0, 0, NULL,
     "Redis: redis://[user:password@]host[:port][/db] or unix:///path"},
    {"redis-timeout-ms", "DREAM_REDIS_TIMEOUT_MS", K_INT, S(redis_timeout_ms), "2000", 100, 60000,
     0, NULL, "connect timeout per Redis connection attempt"},
    {"prefix", "DREAM_PREFIX", K_STR, S(prefix), "dream", 0, 0, 0, check_prefix,
     "key prefix of every Redis key"},
    {"consumer", "DREAM_CONSUMER", K_STR, S(consumer), NULL, 0, 0, 0, check_prefix,
     "consumer name in group `workers` (default <hostname>-<pid>)"},
    {"max-jobs", "DREAM_MAX_JOBS", K_INT, S(max_jobs), "64", 1, 10000, 0, NULL,
     "jobs in flight per replica"},
    {"max-requests", "DREAM_MAX_REQUESTS", K_INT, S(max_requests), "256", 1, 100000, 0, NULL,
     "LLM requests in flight per replica, all jobs together"},
    {"file-parallelism", "DREAM_FILE_PARALLELISM", K_INT, S(file_parallelism), "4", 1, 256, 0, NULL,
     "files generated at once per job"},
    {"lease-ms", "DREAM_LEASE_MS", K_INT, S(lease_ms), "30000", 500, 86400000, 0, NULL,
     "lease before another replica reclaims a job (heartbeat every lease/3, sweep every lease/2)"},
    {"max-attempts", "DREAM_MAX_ATTEMPTS", K_INT, S(max_attempts), "3", 1, 1000, 0, NULL,
     "deliveries of a job before it is dead-lettered"},
    {"shutdown-grace-ms", "DREAM_SHUTDOWN_GRACE_MS", K_INT, S(shutdown_grace_ms), "25000", 0,
     3600000, 0, NULL, "time in-flight jobs get to reach a checkpoint on SIGTERM"},
    {"stage-timeout-ms", "DREAM_STAGE_TIMEOUT_MS", K_INT, S(stage_timeout_ms), "1800000", 0,
     86400000, 0, NULL, "longest a stage may run before it is stopped and retried (0: no limit)"},
    {"job-ttl-s", "DREAM_JOB_TTL_S", K_INT, S(job_ttl_s), "604800", 60, 31536000, 0, NULL,
     "seconds a finished job's keys are kept"},
    {"events-maxlen", "DREAM_EVENTS_MAXLEN", K_INT, S(events_maxlen), "100000", 100, 100000000, 0,
     NULL, "approximate cap of the global event stream (MAXLEN ~)"},
    {"openrouter-api-key", "OPENROUTER_API_KEY", K_STR, S(openrouter_api_key), NULL, 0, 0, 1, NULL,
     "OpenRouter API key; without it jobs fail clearly at generation"},
    {"llm-url", "DREAM_LLM_URL", K_STR, S(llm_url), "https://openrouter.ai/api/v1", 0, 0, 0,
     check_http_url,
     "base URL of the chat-completions server (OpenRouter, or any OpenAI-compatible one with "
     "llm-api openai); prices are read from its /models"},
    {"model", "DREAM_MODEL", K_STR, S(model), "anthropic/claude-sonnet-4.5", 0, 0, 0,
     check_nonempty, "model that writes the files"},
    {"review-model", "DREAM_REVIEW_MODEL", K_STR, S(review_model), "anthropic/claude-haiku-4.5", 0,
     0, 0, NULL, "model that reviews them (empty: rules only)"},
    {"review-revise", "DREAM_REVIEW_REVISE", K_BOOL, S(review_revise), "false", 0, 1, 0, NULL,
     "one revise round: files the reviewer model commented on are regenerated with its comments"},
    {"prices-file", "DREAM_PRICES_FILE", K_STR, S(prices_file), NULL, 0, 0, 0, NULL,
     "JSON price table overriding the built-in one"},
    {"prompts-dir", "DREAM_PROMPTS_DIR", K_STR, S(prompts_dir), NULL, 0, 0, 0, NULL,
     "folder whose files replace the built-in prompt texts and target stack"},
    {"planner", "DREAM_PLANNER", K_STR, S(planner), "rules", 0, 0, 0, check_planner,
     "rules (the spec's lists decide the files) or model (the model proposes them from the spec "
     "and the base branch's tree; the rules are the fallback)"},
    {"context-file-bytes", "DREAM_CONTEXT_FILE_BYTES", K_INT, S(context_file_bytes), "32768", 1024,
     16777216, 0, NULL,
     "bytes read of one file of the base (the manifest, the entry, files of the folders the change "
     "touches); a longer file is cut"},
    {"context-total-bytes", "DREAM_CONTEXT_TOTAL_BYTES", K_INT, S(context_total_bytes), "262144",
     1024, 268435456, 0, NULL, "bytes read of the base's files together, per base commit"},
    {"context-files", "DREAM_CONTEXT_FILES", K_INT, S(context_files), "64", 1, 10000, 0, NULL,
     "files of the base read per base commit (the tree itself is always listed)"},
    {"max-tokens", "DREAM_MAX_TOKENS", K_INT, S(max_tokens), "4096", 16, 200000, 0, NULL,
     "max_tokens of each file generation"},
    {"max-repairs", "DREAM_MAX_REPAIRS", K_INT, S(max_repairs), "2", 0, 10, 0, NULL,
     "repairs of an invalid file before the job fails"},
    {"llm-timeout-ms", "DREAM_LLM_TIMEOUT_MS", K_INT, S(llm_timeout_ms), "180000", 1000, 3600000, 0,
     NULL, "total time one LLM request may take"},
    {"llm-api", "DREAM_LLM_API", K_STR, S(llm_api), "openrouter", 0, 0, 0, check_llm_api,
     "openrouter, or openai for any OpenAI-compatible server (OpenAI, vLLM, Ollama /v1, "
     "llama.cpp, LiteLLM): only OpenAI's request fields are sent"},
    {"llm-api-key", "DREAM_LLM_API_KEY", K_STR, S(llm_api_key), NULL, 0, 0, 1, NULL,
     "API key of the LLM server (takes precedence over OPENROUTER_API_KEY, which only llm-api "
     "openrouter sends)"},
    {"llm-keyless-hosts", "DREAM_LLM_KEYLESS_HOSTS", K_STR, S(llm_keyless_hosts), NULL, 0, 0, 0,
     NULL,
     "openai mode: comma-separated hosts of DREAM_LLM_URL that need no API key (a loopback host "
     "never needs one)"},
    {"llm-max-tokens-field", "DREAM_LLM_MAX_TOKENS_FIELD", K_STR, S(llm_max_tokens_field),
     "max_completion_tokens", 0, 0, 0, check_max_tokens_field,
     "openai mode: max_completion_tokens, or max_tokens for servers that want the older name"},
    {"llm-json-schema", "DREAM_LLM_JSON_SCHEMA", K_BOOL, S(llm_json_schema), "false", 0, 1, 0, NULL,
     "openai mode: send response_format json_schema for the planner and reviewer (else the "
     "prompt asks for JSON)"},
    {"llm-referer", "DREAM_LLM_REFERER", K_STR, S(llm_referer), NULL, 0, 0, 0, NULL,
     "HTTP-Referer attribution header (default https://github.com/dreamd/dreamd with OpenRouter, "
     "none in openai mode; empty: not sent)"},
    {"llm-title", "DREAM_LLM_TITLE", K_STR, S(llm_title), NULL, 0, 0, 0, NULL,
     "X-Title attribution header (default dreamd with OpenRouter, none in openai mode; empty: "
     "not sent)"},
    {"prices-refresh-s", "DREAM_PRICES_REFRESH_S", K_INT, S(prices_refresh_s), "21600", 0, 604800,
     0, NULL,
     "seconds between reads of GET {llm-url}/models for model prices (cached in the data dir); "
     "0: never read"},
    {"github-token", "GITHUB_TOKEN", K_STR, S(github_token), NULL, 0, 0, 1, NULL,
     "GitHub token for push and pull requests"},
    {"github-api-url", "DREAM_GITHUB_API_URL", K_STR, S(github_api_url), "https://api.github.com",
     0, 0, 0, check_http_url, "GitHub REST base URL (GitHub Enterprise: https://host/api/v3)"},
    {"github-app-id", "DREAM_GITHUB_APP_ID", K_STR, S(github_app_id), NULL, 0, 0, 0, NULL,
     "GitHub App id (or client id): with the App's private key, push and pull requests use "
     "installation tokens instead of GITHUB_TOKEN"},
    {"github-app-private-key", "DREAM_GITHUB_APP_PRIVATE_KEY", K_STR, S(github_app_private_key),
     NULL, 0, 0, 1, NULL, "the GitHub App's private key (PEM)"},
    {"github-app-installation-id", "DREAM_GITHUB_APP_INSTALLATION_ID", K_INT,
     S(github_app_installation_id), "0", 0, 9000000000000000LL, 0, NULL,
     "the App's installation; 0 = looked up per repository (GET /repos/{o}/{r}/installation)"},
    {"pr-draft", "DREAM_PR_DRAFT", K_BOOL, S(pr_draft), "false", 0, 1, 0, NULL,
     "open pull requests as drafts (a job's `draft` wins)"},
    {"pr-labels", "DREAM_PR_LABELS", K_STR, S(pr_labels), NULL, 0, 0, 0, NULL,
     "comma-separated labels added to each pull request (a job's `labels` wins)"},
    {"pr-reviewers", "DREAM_PR_REVIEWERS", K_STR, S(pr_reviewers), NULL, 0, 0, 0, NULL,
     "comma-separated GitHub logins asked to review (a job's `reviewers` wins)"},
    {"pr-team-reviewers", "DREAM_PR_TEAM_REVIEWERS", K_STR, S(pr_team_reviewers), NULL, 0, 0, 0,
     NULL, "comma-separated team slugs asked to review (a job's `teamReviewers` wins)"},
    {"forge-write-interval-ms", "DREAM_FORGE_WRITE_INTERVAL_MS", K_INT, S(forge_write_interval_ms),
     "1000", 0, 600000, 0, NULL, "least time between two mutating GitHub requests per token"},
    {"git-url", "DREAM_GIT_URL", K_STR, S(git_url), "https://github.com/{owner}/{repo}.git", 0, 0,
     0, check_git_url, "remote URL template ({owner}, {repo}); https://, http://, file://, ssh://"},
    {"git-author-name", "DREAM_GIT_AUTHOR_NAME", K_STR, S(git_author_name), "dreamd", 0, 0, 0,
     check_nonempty, "author and committer name of dreamd's commits"},
    {"git-author-email", "DREAM_GIT_AUTHOR_EMAIL", K_STR, S(git_author_email),
     "dreamd@users.noreply.github.com", 0, 0, 0, check_nonempty, "author and committer email"},
    {"data-dir", "DREAM_DATA_DIR", K_STR, S(data_dir), "/var/lib/dreamd", 0, 0, 0, check_nonempty,
     "mirrors and scratch space"},
    {"signing-secrets", "DREAM_SIGNING_SECRETS", K_STR, S(signing_secrets), NULL, 0, 0, 1, NULL,
     "comma-separated HS256 secrets; when set, unsigned jobs are refused"},
    {"jwt-issuer", "DREAM_JWT_ISSUER", K_STR, S(jwt_issuer), "storia", 0, 0, 0, check_nonempty,
     "required `iss` of job tokens"},
    {"signing-audience", "DREAM_SIGNING_AUDIENCE", K_STR, S(signing_audience), NULL, 0, 0, 0, NULL,
     "required `aud` of job tokens (a string, or one element of an array); unset: not checked"},
    {"signing-max-ttl-s", "DREAM_SIGNING_MAX_TTL_S", K_INT, S(signing_max_ttl_s), "86400", 0,
     31536000, 0, NULL,
     "longest job token lifetime accepted (exp - iat, seconds; tokens must then carry iat); 0 = "
     "no limit"},
    {"protected-branches", "DREAM_PROTECTED_BRANCHES", K_STR, S(protected_branches),
     "main,master,production,staging,release/*", 0, 0, 0, NULL,
     "branches (and glob patterns) dreamd never pushes to"},
    {"allow-workflows", "DREAM_ALLOW_WORKFLOWS", K_BOOL, S(allow_workflows), "false", 0, 1, 0, NULL,
     "let shipper jobs write .github/workflows/"},
    {"callback-secret", "DREAM_CALLBACK_SECRET", K_STR, S(callback_secret), NULL, 0, 0, 1, NULL,
     "HMAC key of the callbacks' X-Dream-Signature (never sent)"},
    {"callback-hosts", "DREAM_CALLBACK_HOSTS", K_STR, S(callback_hosts), NULL, 0, 0, 0, NULL,
     "comma-separated hosts a callbackUrl may name although they are or resolve to internal "
     "addresses (your own receivers)"},
    {"callback-allow-http", "DREAM_CALLBACK_ALLOW_HTTP", K_STR, S(callback_allow_http), NULL, 0, 0,
     0, NULL, "comma-separated hosts whose callbackUrl may be plain http (tests)"},
    {"admin-addr", "DREAM_ADMIN_ADDR", K_STR, S(admin_addr), "127.0.0.1:9464", 0, 0, 0, check_admin,
     "host:port of /metrics, /healthz, /readyz; empty disables"},
    {"dashboard", "DREAM_DASHBOARD", K_BOOL, S(dashboard), "false", 0, 1, 0, NULL,
     "serve the web dashboard on the admin address (needs DREAM_ADMIN_TOKEN)"},
    {"admin-token", "DREAM_ADMIN_TOKEN", K_STR, S(admin_token), NULL, 0, 0, 1, NULL,
     "the dashboard's login token (at least 16 characters)"},
    {"esbuild", "DREAM_ESBUILD", K_STR, S(esbuild), NULL, 0, 0, 0, NULL,
     "esbuild binary (default: on PATH or in the project's .tools folder)"},
    {"log-level", "DREAM_LOG_LEVEL", K_STR, S(log_level), "info", 0, 0, 0, check_level,
     "debug, info, warn, error or off"},
    {"stages", "DREAM_STAGES", K_STR, S(stages), "real", 0, 0, 0, check_stages,
     "real, or test: every stage only waits --test-stage-ms (engine tests and benchmarks)"},
    {"test-stage-ms", "DREAM_TEST_STAGE_MS", K_INT, S(test_stage_ms), "0", 0, 600000, 0, NULL,
     "duration of each stage with --stages=test"},
};

#define NSETTINGS (sizeof(settings) / sizeof(settings[0]))

static char **str_at(struct dm_config *c, const struct setting *s)
{
    return (char **)((char *)c + s->off);
}

static long long *int_at(struct dm_config *c, const struct setting *s)
{
    return (long long *)((char *)c + s->off);
}

static int *bool_at(struct dm_config *c, const struct setting *s)
{
    return (int *)((char *)c + s->off);
}

static int check_prefix(const char *v, char *why, size_t n)
{
    if (!*v || strlen(v) > 64) {
        snprintf(why, n, "must be 1..64 characters");
        return -1;
    }
    for (const char *p = v; *p; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '-' || *p == '.' || *p == ':')) {
            snprintf(why, n, "may only hold letters, digits, '_', '-', '.', ':'");
            return -1;
        }
    }
    return 0;
}

static int check_level(const char *v, char *why, size_t n)
{
    enum dm_log_level l;
    if (dm_log_parse_level(v, &l)) {
        snprintf(why, n, "must be debug, info, warn, error or off");
        return -1;
    }
    return 0;
}

static int check_http_url(const char *v, char *why, size_t n)
{
    if (strncmp(v, "https://", 8) != 0 && strncmp(v, "http://", 7) != 0) {
        snprintf(why, n, "must be an http:// or https:// URL");
        return -1;
    }
    return 0;
}

static int check_git_url(const char *v, char *why, size_t n)
{
    static const char *const schemes[] = {"https://", "http://", "file://", "ssh://"};
    int ok = 0;
    for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
        ok |= strncmp(v, schemes[i], strlen(schemes[i])) == 0;
    }
    if (!ok) {
        snprintf(why, n, "must start with https://, http://, file:// or ssh://");
        return -1;
    }
    if (!strstr(v, "{repo}")) {
        snprintf(why, n, "must contain {repo}");
        return -1;
    }
    return 0;
}

static int check_planner(const char *v, char *why, size_t n)
{
    if (strcmp(v, "rules") != 0 && strcmp(v, "model") != 0) {
        snprintf(why, n, "must be rules or model");
        return -1;
    }
    return 0;
}

static int check_llm_api(const char *v, char *why, size_t n)
{
    if (strcmp(v, "openrouter") != 0 && strcmp(v, "openai") != 0) {
        snprintf(why, n, "must be openrouter or openai");
        return -1;
    }
    return 0;
}

static int check_max_tokens_field(const char *v, char *why, size_t n)
{
    if (strcmp(v, "max_completion_tokens") != 0 && strcmp(v, "max_tokens") != 0) {
        snprintf(why, n, "must be max_completion_tokens or max_tokens");
        return -1;
    }
    return 0;
}

static int check_stages(const char *v, char *why, size_t n)
{
    if (strcmp(v, "real") != 0 && strcmp(v, "test") != 0) {
        snprintf(why, n, "must be real or test");
        return -1;
    }
    return 0;
}

static int check_nonempty(const char *v, char *why, size_t n)
{
    if (!*v) {
        snprintf(why, n, "must not be empty");
        return -1;
    }
    return 0;
}

static int check_admin(const char *v, char *why, size_t n)
{
    const char *colon;
    char *end;
    long port;

    if (!*v) {
        return 0;
    }
    colon = strrchr(v, ':');
    if (!colon || colon == v) {
        snprintf(why, n, "must be host:port (or empty to disable)");
        return -1;
    }
    errno = 0;
    port = strtol(colon + 1, &end, 10);
    if (errno || *end || end == colon + 1 || port < 0 || port > 65535) {
        snprintf(why, n, "port must be 0..65535");
        return -1;
    }
    return 0;
}

static int parse_bool(const char *v, int *out)
{
    if (!strcasecmp(v, "1") || !strcasecmp(v, "true") || !strcasecmp(v, "yes") ||
        !strcasecmp(v, "on")) {
        *out = 1;
        return 0;
    }
    if (!strcasecmp(v, "0") || !strcasecmp(v, "false") || !strcasecmp(v, "no") ||
        !strcasecmp(v, "off")) {
        *out = 0;
        return 0;
    }
    return -1;
}

static const char *lookup_env(char **env, const char *name)
{
    size_t n = strlen(name);
    for (char **e = env; e && *e; e++) {
        if (strncmp(*e, name, n) == 0 && (*e)[n] == '=') {
            return *e + n + 1;
        }
    }
    return NULL;
}

/* Reads a secret file: whole content, one trailing newline (and CR) removed, capped at 64 KiB. */
static char *read_secret_file(const char *path, char *why, size_t whylen)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    size_t n;

    if (!f) {
        snprintf(why, whylen, "cannot read file '%s': %s", path, strerror(errno));
        return NULL;
    }
    buf = malloc(65537);
    if (!buf) {
        fclose(f);
        snprintf(why, whylen, "out of memory");
        return NULL;
    }
    n = fread(buf, 1, 65536, f);
    if (n == 65536 && fgetc(f) != EOF) {
        fclose(f);
        dm_secret_wipe(buf, n);
        free(buf);
        snprintf(why, whylen, "file '%s' is larger than 64 KiB", path);
        return NULL;
    }
    fclose(f);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) {
        n--;
    }
    buf[n] = '\0';
    return buf;
}

struct problems {
    struct dm_error *err;
    int count;
    size_t len;
};

static void problem(struct problems *p, const struct setting *s, const char *fmt, const char *why,
                    const char *value, int show_value)
{
    char line[600];
    int n;

    if (show_value) {
        n = snprintf(line, sizeof(line), "--%s (%s): %s, got '%.80s'", s->flag, s->env, why,
                     value ? value : "");
    } else {
        n = snprintf(line, sizeof(line), "--%s (%s): %s", s->flag, s->env, why);
    }
    (void)fmt;
    p->count++;
    if (!p->err || n < 0) {
        return;
    }
    if (p->len + (size_t)n + 2 < sizeof(p->err->msg)) {
        if (p->len) {
            p->err->msg[p->len++] = '\n';
        }
        memcpy(p->err->msg + p->len, line, (size_t)n + 1);
        p->len += (size_t)n;
    }
}

/* Applies one value; records a problem and returns -1 when it is bad. */
static int apply(struct dm_config *c, const struct setting *s, const char *value,
                 struct problems *p)
{
    char why[200] = "";

    switch (s->kind) {
    case K_STR: {
        char *copy;
        if (s->check && value && s->check(value, why, sizeof(why))) {
            problem(p, s, NULL, why, value, !s->secret);
            return -1;
        }
        copy = value ? strdup(value) : NULL;
        if (value && !copy) {
            problem(p, s, NULL, "out of memory", NULL, 0);
            return -1;
        }
        free(*str_at(c, s));
        *str_at(c, s) = copy;
        return 0;
    }
    case K_INT: {
        char *end;
        long long v;
        errno = 0;
        v = strtoll(value, &end, 10);
        if (errno || end == value || *end || v < s->min || v > s->max) {
            snprintf(why, sizeof(why), "must be an integer in %lld..%lld", s->min, s->max);
            problem(p, s, NULL, why, value, 1);
            return -1;
        }
        *int_at(c, s) = v;
        return 0;
    }
    case K_BOOL: {
        int b;
        if (parse_bool(value, &b)) {
            problem(p, s, NULL, "must be true or false", value, 1);
            return -1;
        }
        *bool_at(c, s) = b;
        return 0;
    }
    }
    return -1;
}

static const struct setting *find_flag(const char *name, size_t len)
{
    for (size_t i = 0; i < NSETTINGS; i++) {
        if (strlen(settings[i].flag) == len && strncmp(settings[i].flag, name, len) == 0) {
            return &settings[i];
        }
    }
    return NULL;
}

static int default_consumer(struct dm_config *c)
{
    char host[256];
    char name[320];

    if (gethostname(host, sizeof(host)) != 0) {
        snprintf(host, sizeof(host), "dreamd");
    }
    host[sizeof(host) - 1] = '\0';
    /* Keep only characters the consumer name allows. */
    for (char *h = host; *h; h++) {
        if (!((*h >= 'a' && *h <= 'z') || (*h >= 'A' && *h <= 'Z') || (*h >= '0' && *h <= '9') ||
              *h == '-' || *h == '.' || *h == '_')) {
            *h = '-';
        }
    }
    snprintf(name, sizeof(name), "%.50s-%ld", host, (long)getpid());
    c->consumer = strdup(name);
    return c->consumer ? 0 : DM_ERR_NOMEM;
}

int dm_config_load(struct dm_config **out, enum dm_config_action *action, int argc, char **argv,
                   char **environ_, struct dm_error *err)
{
    extern char **environ;
    struct dm_config *c = calloc(1, sizeof(*c));
    struct problems p = {err, 0, 0};
    int rc = 0;

    *out = NULL;
    *action = DM_CONFIG_RUN;
    dm_error_clear(err);
    if (!c) {
        return dm_error_set(err, DM_ERR_NOMEM, "out of memory");
    }
    if (!environ_) {
        environ_ = environ;
    }

    for (size_t i = 0; i < NSETTINGS; i++) {
        if (settings[i].def) {
            apply(c, &settings[i], settings[i].def, &p);
        }
    }

    for (size_t i = 0; i < NSETTINGS; i++) {
        const struct setting *s = &settings[i];
        const char *v = lookup_env(environ_, s->env);
        if (s->secret) {
            char fname[128];
            const char *path;
            snprintf(fname, sizeof(fname), "%s_FILE", s->env);
            path = lookup_env(environ_, fname);
            if (path && *path) {
                char why[300];
                char *secret = read_secret_file(path, why, sizeof(why));
                if (!secret) {
                    problem(&p, s, NULL, why, NULL, 0);
                    continue;
                }
                apply(c, s, secret, &p);
                dm_secret_free(secret);
                if (s->off == S(github_token)) {
                    /* Re-read when it changes (rotated tokens): io/ghapp.h. */
                    free(c->github_token_file);
                    c->github_token_file = strdup(path);
                }
                continue;
            }
        }
        if (v) {
            apply(c, s, v, &p);
        }
    }

    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *name;
        const char *eq;
        const char *value;
        const struct setting *s;

        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            *action = DM_CONFIG_HELP;
            continue;
        }
        if (!strcmp(arg, "--version") || !strcmp(arg, "-V")) {
            *action = DM_CONFIG_VERSION;
            continue;
        }
        if (!strcmp(arg, "--print-config")) {
            *action = DM_CONFIG_PRINT;
            continue;
        }
        if (strncmp(arg, "--", 2) != 0) {
            char why[300];
            snprintf(why, sizeof(why), "unexpected argument '%.200s' (settings are --name=value)",
                     arg);
            p.count++;
            if (p.len + strlen(why) + 2 < sizeof(err->msg)) {
                if (p.len) {
                    err->msg[p.len++] = '\n';
                }
                strcpy(err->msg + p.len, why);
                p.len += strlen(why);
            }
            continue;
        }
        name = arg + 2;
        eq = strchr(name, '=');
        s = find_flag(name, eq ? (size_t)(eq - name) : strlen(name));
        if (!s) {
            char why[300];
            snprintf(why, sizeof(why), "unknown option '%.200s' (see --help)", arg);
            p.count++;
            if (p.len + strlen(why) + 2 < sizeof(err->msg)) {
                if (p.len) {
                    err->msg[p.len++] = '\n';
                }
                strcpy(err->msg + p.len, why);
                p.len += strlen(why);
            }
            continue;
        }
        if (s->secret) {
            /* A flag is in /proc/<pid>/cmdline and `ps` for every user of the machine; the
             * value is not even read (and never printed). */
            char why[300];
            snprintf(why, sizeof(why),
                     "a secret is not taken from a flag (flags show in /proc/<pid>/cmdline): set "
                     "%s_FILE to a file holding it, or %s",
                     s->env, s->env);
            problem(&p, s, NULL, why, NULL, 0);
            if (!eq && i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0) {
                i++; /* skip the value too */
            }
            continue;
        }
        if (eq) {
            value = eq + 1;
        } else if (s->kind == K_BOOL && (i + 1 >= argc || strncmp(argv[i + 1], "--", 2) == 0)) {
            value = "true";
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            problem(&p, s, NULL, "needs a value", NULL, 0);
            continue;
        }
        apply(c, s, value, &p);
    }

    if (!c->consumer && default_consumer(c)) {
        p.count++;
    }
    if (c->redis_url) {
        struct dm_error e2;
        if (dm_redis_addr_parse(&c->redis, c->redis_url, &e2)) {
            problem(&p, &settings[0], NULL, e2.msg, NULL, 0);
        }
    }
    if (!c->github_app_id != !c->github_app_private_key) {
        p.count++;
        if (err && p.len + 120 < sizeof(err->msg)) {
            p.len +=
                (size_t)snprintf(err->msg + p.len, sizeof(err->msg) - p.len,
                                 "%sDREAM_GITHUB_APP_ID and DREAM_GITHUB_APP_PRIVATE_KEY(_FILE) "
                                 "go together",
                                 p.len ? "\n" : "");
        }
    }
    c->stage_mode = (c->stages && strcmp(c->stages, "test") == 0) ? DM_STAGES_TEST : DM_STAGES_REAL;

    if (p.count) {
        if (err) {
            err->code = DM_ERR_INVALID;
        }
        rc = DM_ERR_INVALID;
        dm_config_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

void dm_redis_addr_clear(struct dm_redis_addr *a)
{
    free(a->host);
    free(a->unix_path);
    dm_secret_free(a->password);
    free(a->username);
    memset(a, 0, sizeof(*a));
}

static int parse_db(const char *s, int *db)
{
    char *end;
    long v;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 0 || v > 1000000) {
        return -1;
    }
    *db = (int)v;
    return 0;
}

int dm_redis_addr_parse(struct dm_redis_addr *out, const char *url, struct dm_error *err)
{
    const char *rest;
    const char *at;
    const char *slash;
    const char *host_end;
    char *tmp = NULL;

    memset(out, 0, sizeof(*out));
    out->port = 6379;
    if (strncmp(url, "unix://", 7) == 0) {
        const char *q;
        rest = url + 7;
        if (*rest != '/') {
            return dm_error_set(err, DM_ERR_INVALID, "unix socket URL must be unix:///path");
        }
        q = strchr(rest, '?');
        out->unix_path = q ? strndup(rest, (size_t)(q - rest)) : strdup(rest);
        if (q && (strncmp(q, "?db=", 4) != 0 || parse_db(q + 4, &out->db))) {
            dm_redis_addr_clear(out);
            return dm_error_set(err, DM_ERR_INVALID, "unix socket URL accepts only ?db=N");
        }
        return 0;
    }
    if (strncmp(url, "redis://", 8) != 0) {
        return dm_error_set(err, DM_ERR_INVALID,
                            "must start with redis:// or unix:// (TLS is not supported)");
    }
    rest = url + 8;
    slash = strchr(rest, '/');
    at = memchr(rest, '@', slash ? (size_t)(slash - rest) : strlen(rest));
    if (at) {
        const char *colon = memchr(rest, ':', (size_t)(at - rest));
        if (colon) {
            if (colon > rest) {
                out->username = strndup(rest, (size_t)(colon - rest));
            }
            out->password = strndup(colon + 1, (size_t)(at - colon - 1));
        } else {
            out->password = strndup(rest, (size_t)(at - rest));
        }
        rest = at + 1;
    }
    host_end = slash ? slash : rest + strlen(rest);
    tmp = strndup(rest, (size_t)(host_end - rest));
    if (!tmp) {
        dm_redis_addr_clear(out);
        return dm_error_set(err, DM_ERR_NOMEM, "out of memory");
    }
    {
        char *colon = strrchr(tmp, ':');
        if (colon) {
            char *end;
            long port;
            errno = 0;
            port = strtol(colon + 1, &end, 10);
            if (errno || *end || end == colon + 1 || port < 1 || port > 65535) {
                free(tmp);
                dm_redis_addr_clear(out);
                return dm_error_set(err, DM_ERR_INVALID, "bad port in Redis URL");
            }
            out->port = (int)port;
            *colon = '\0';
        }
    }
    if (!*tmp) {
        free(tmp);
        dm_redis_addr_clear(out);
        return dm_error_set(err, DM_ERR_INVALID, "Redis URL has no host");
    }
    out->host = tmp;
    if (slash && slash[1] && parse_db(slash + 1, &out->db)) {
        dm_redis_addr_clear(out);
        return dm_error_set(err, DM_ERR_INVALID, "bad database number in Redis URL");
    }
    return 0;
}

char *dm_redis_url_redacted(const char *url, char *buf, unsigned long buflen)
{
    const char *scheme = strstr(url, "://");
    const char *at;
    const char *slash;

    if (!scheme) {
        snprintf(buf, buflen, "%s", url);
        return buf;
    }
    slash = strchr(scheme + 3, '/');
    at = memchr(scheme + 3, '@', slash ? (size_t)(slash - scheme - 3) : strlen(scheme + 3));
    if (!at) {
        snprintf(buf, buflen, "%s", url);
        return buf;
    }
    {
        /* "user:pass@" keeps the user; a lone "pass@" is a password (as the parser reads it),
         * so nothing of it is kept. */
        const char *colon = memchr(scheme + 3, ':', (size_t)(at - scheme - 3));
        const char *keep_end = colon ? colon : scheme + 3;
        snprintf(buf, buflen, "%.*s%s%s", (int)(keep_end - url), url, colon ? ":***" : "***", at);
    }
    return buf;
}

void dm_config_free(struct dm_config *c)
{
    if (!c) {
        return;
    }
    free(c->github_token_file);
    for (size_t i = 0; i < NSETTINGS; i++) {
        if (settings[i].kind == K_STR) {
            char *v = *str_at(c, &settings[i]);
            /* The URL holds Redis's password; secrets are secrets. */
            if (settings[i].secret || settings[i].off == offsetof(struct dm_config, redis_url)) {
                dm_secret_free(v);
            } else {
                free(v);
            }
        }
    }
    dm_redis_addr_clear(&c->redis);
    free(c);
}

void dm_config_usage(FILE *f, const char *prog)
{
    fprintf(f,
            "Usage: %s [--name=value ...]\n"
            "\n"
            "dreamd consumes build jobs from a Redis stream and turns each approved spec into a\n"
            "pull request. Every setting comes from a flag, else the environment, else the\n"
            "default. Secrets come only from the environment or <ENV>_FILE (a file holding the\n"
            "value): their flags are refused, since flags show in /proc/<pid>/cmdline.\n"
            "\n"
            "Options:\n"
            "  -h, --help           this text\n"
            "  -V, --version        print the version\n"
            "  --print-config       print the effective settings (secrets redacted) and exit\n"
            "\n"
            "Settings (flag, environment, default):\n",
            prog);
    for (size_t i = 0; i < NSETTINGS; i++) {
        const struct setting *s = &settings[i];
        const char *def = s->def ? s->def : "(unset)";
        if (s->off == offsetof(struct dm_config, consumer)) {
            def = "<hostname>-<pid>";
        }
        const char *arg = s->kind == K_INT ? "<n>" : s->kind == K_BOOL ? "<bool>" : "<text>";
        if (s->secret) {
            fprintf(f, "  --%s=%s\n      env %s or %s_FILE; default %s; secret, never printed\n",
                    s->flag, arg, s->env, s->env, def);
        } else {
            fprintf(f, "  --%s=%s\n      env %s; default %s\n", s->flag, arg, s->env,
                    def[0] ? def : "\"\" (empty)");
        }
        fprintf(f, "      %s\n", s->help);
    }
    fprintf(f, "\nExit status: 0 after an orderly shutdown, 2 for a bad setting, 1 otherwise.\n");
}

void dm_config_print(FILE *f, const struct dm_config *c)
{
    for (size_t i = 0; i < NSETTINGS; i++) {
        const struct setting *s = &settings[i];
        switch (s->kind) {
        case K_STR: {
            const char *v = *(char *const *)((const char *)c + s->off);
            if (s->secret) {
                fprintf(f, "%s=%s\n", s->flag, v && *v ? "<set>" : "<unset>");
            } else if ((s->off == offsetof(struct dm_config, redis_url) ||
                        s->off == offsetof(struct dm_config, llm_url)) &&
                       v) {
                /* A URL's userinfo may hold a password (Redis, an LLM proxy's basic auth). */
                char red[512];
                fprintf(f, "%s=%s\n", s->flag, dm_redis_url_redacted(v, red, sizeof(red)));
            } else {
                fprintf(f, "%s=%s\n", s->flag, v ? v : "");
            }
            break;
        }
        case K_INT:
            fprintf(f, "%s=%lld\n", s->flag, *(const long long *)((const char *)c + s->off));
            break;
        case K_BOOL:
            fprintf(f, "%s=%s\n", s->flag,
                    *(const int *)((const char *)c + s->off) ? "true" : "false");
            break;
        }
    }
}
