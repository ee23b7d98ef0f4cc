/*
 * config: every setting of dreamd, from flags, environment and defaults, validated.
 *
 * Precedence: flag > environment (DREAM_* or the documented name; secrets also as NAME_FILE,
 * whose file content, trailing newline removed, is the value) > default. Every setting has a
 * flag `--<name>=<value>` (or `--<name> <value>`). Validation collects one clear message per bad
 * value. Secrets are never printed: dm_config_print() redacts them, and so does the Redis URL's
 * password. Pure; the loaded struct is read-only after start-up and may be read from any thread.
 */
#ifndef DREAM_CONFIG_H
#define DREAM_CONFIG_H

#include <stdio.h>

struct dm_error;

struct dm_redis_addr {
    char *host;      /* NULL for unix sockets */
    int port;        /* 6379 by default */
    char *unix_path; /* NULL for TCP */
    char *password;  /* NULL when none; a secret */
    char *username;  /* NULL when none (Redis 6 ACL user) */
    int db;
};

enum dm_stage_mode {
    DM_STAGES_REAL = 0, /* the real pipeline */
    DM_STAGES_TEST =
        1, /* every stage waits test_stage_ms and succeeds (engine tests, benchmarks) */
};

struct dm_config {
    /* Redis and the engine */
    char *redis_url;
    struct dm_redis_addr redis;
    long long redis_timeout_ms;
    char *prefix;
    char *consumer;
    long long max_jobs;
    long long max_requests;
    long long file_parallelism;
    long long lease_ms;
    long long max_attempts;
    long long shutdown_grace_ms;
    long long stage_timeout_ms;
    long long job_ttl_s;
    long long events_maxlen;
    /* LLM */
    char *openrouter_api_key; /* secret */
    char *llm_url;
    char *model;
    char *review_model;
    char *prices_file;
    char *prompts_dir;
    char *planner; /* rules or model */
    int review_revise;
    long long context_file_bytes;  /* bytes read of one file of the base */
    long long context_total_bytes; /* bytes read of the base's files together */
    long long context_files;       /* files of the base read */
    long long max_tokens;
    long long max_repairs;
    long long llm_timeout_ms;
    char *llm_api;              /* openrouter or openai */
    char *llm_api_key;          /* secret; else openrouter_api_key */
    char *llm_keyless_hosts;    /* openai mode: hosts that need no key */
    char *llm_max_tokens_field; /* openai mode: max_completion_tokens or max_tokens */
    int llm_json_schema;        /* openai mode: send response_format */
    char *llm_referer;          /* NULL: the mode's default; "": not sent */
    char *llm_title;
    long long prices_refresh_s; /* 0: never read the model list */
    /* Git and GitHub */
    char *github_token; /* secret */
    char *github_api_url;
    char *github_token_file;              /* GITHUB_TOKEN_FILE when the token came from it */
    char *github_app_id;                  /* NULL: no GitHub App */
    char *github_app_private_key;         /* secret, PEM */
    long long github_app_installation_id; /* 0: looked up per repository */
    int pr_draft;
    char *pr_labels;         /* comma-separated, or NULL */
    char *pr_reviewers;      /* comma-separated, or NULL */
    char *pr_team_reviewers; /* comma-separated, or NULL */
    long long forge_write_interval_ms;
    char *git_url;
    char *git_author_name;
    char *git_author_email;
    char *data_dir;
    /* Safety and auth */
    char *signing_secrets; /* secret; comma-separated */
    char *signing_audience;
    long long signing_max_ttl_s;
    char *jwt_issuer;
    char *protected_branches;
    int allow_workflows;
    /* Callbacks */
    char *callback_secret; /* secret */
    char *callback_allow_http;
    char *callback_hosts;
    /* Operations */
    char *admin_addr;
    int dashboard;     /* DREAM_DASHBOARD: serve the web dashboard on admin_addr */
    char *admin_token; /* secret: the dashboard's login token */
    char *esbuild;
    char *log_level;
    char *stages;
    long long test_stage_ms;
    enum dm_stage_mode stage_mode;
};

/* Result of dm_config_load besides errors. */
enum dm_config_action {
    DM_CONFIG_RUN = 0,
    DM_CONFIG_HELP = 1,    /* --help was given */
    DM_CONFIG_VERSION = 2, /* --version was given */
    DM_CONFIG_PRINT = 3,   /* --print-config was given */
};

/* Loads defaults, then environ (NULL = the process environment), then argv. On success returns
 * 0, *action says what to do, and *out is owned by the caller (dm_config_free). On a bad value
 * returns DM_ERR_INVALID with every problem, one per line, in err->msg ("--max-jobs
 * (DREAM_MAX_JOBS): must be an integer in 1..10000, got 'abc'"); *out is NULL. */
int dm_config_load(struct dm_config **out, enum dm_config_action *action, int argc, char **argv,
                   char **environ_, struct dm_error *err);

void dm_config_free(struct dm_config *c);

/* Writes the --help text (every setting, its env name and default). */
void dm_config_usage(FILE *f, const char *prog);

/* Writes every setting as `name=value`, secrets shown as `<set>` or `<unset>`. */
void dm_config_print(FILE *f, const struct dm_config *c);

/* Parses a Redis URL: redis://[[user]:password@]host[:port][/db], rediss:// is refused,
 * unix:///path[?db=N]. Returns 0 or DM_ERR_INVALID. out's strings are owned by out
 * (dm_redis_addr_clear). */
int dm_redis_addr_parse(struct dm_redis_addr *out, const char *url, struct dm_error *err);
void dm_redis_addr_clear(struct dm_redis_addr *a);

/* The URL with any password replaced by "***", in buf. Returns buf. */
char *dm_redis_url_redacted(const char *url, char *buf, unsigned long buflen);

#endif
