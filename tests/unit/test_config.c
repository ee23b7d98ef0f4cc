/*
 * Unit tests of config.c: where a setting comes from (flag, environment, a secret's *_FILE,
 * default), bad values refused with the setting's flag and variable, the actions (--help,
 * --version, --print-config), secrets redacted in the printout, and Redis URLs.
 * Every test passes its own environment, never the process's.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dream/core/config.h"
#include "dream/core/error.h"

static struct dm_config *cfg;
static struct dm_error err;
static char tmpdir[64];

static void teardown(void)
{
    dm_config_free(cfg);
    cfg = NULL;
    if (tmpdir[0]) {
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
        cr_assert_eq(system(cmd), 0);
        tmpdir[0] = '\0';
    }
}

TestSuite(config, .fini = teardown);

/* Loads argv (NULL-terminated, without the program name) with env (NULL-terminated). */
static int load(const char *const *args, const char *const *env, enum dm_config_action *action)
{
    char *argv[32];
    char *noenv[] = {NULL};
    enum dm_config_action ignored;
    int argc = 0;

    argv[argc++] = "dreamd";
    for (int i = 0; args && args[i]; i++) {
        argv[argc++] = (char *)args[i];
    }
    argv[argc] = NULL;
    dm_config_free(cfg);
    cfg = NULL;
    return dm_config_load(&cfg, action ? action : &ignored, argc, argv, env ? (char **)env : noenv,
                          &err);
}

/* Writes content to a new file in a test directory; returns "NAME=<path>" for the environment
 * in a static buffer. */
static const char *secret_file(const char *env_name, const char *content)
{
    static char entry[256];
    char path[128];
    FILE *f;

    if (!tmpdir[0]) {
        snprintf(tmpdir, sizeof(tmpdir), "/tmp/dmt-config-XXXXXX");
        cr_assert_not_null(mkdtemp(tmpdir));
    }
    snprintf(path, sizeof(path), "%s/%s", tmpdir, env_name);
    f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(content, f);
    fclose(f);
    snprintf(entry, sizeof(entry), "%s=%s", env_name, path);
    return entry;
}

/* dm_config_print's output (caller frees). */
static char *printed(void)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    cr_assert_not_null(f);
    dm_config_print(f, cfg);
    fclose(f);
    return text;
}

/* ---- precedence ---- */

Test(config, defaults)
{
    char consumer[64];
    enum dm_config_action action;

    cr_assert_eq(load(NULL, NULL, &action), 0, "%s", err.msg);
    cr_assert_eq(action, DM_CONFIG_RUN);
    cr_assert_str_eq(cfg->redis_url, "redis://127.0.0.1:6379/0");
    cr_assert_str_eq(cfg->redis.host, "127.0.0.1");
    cr_assert_eq(cfg->redis.port, 6379);
    cr_assert_eq(cfg->redis.db, 0);
    cr_assert_str_eq(cfg->prefix, "dream");
    cr_assert_eq(cfg->max_jobs, 64);
    cr_assert_eq(cfg->lease_ms, 30000);
    cr_assert_eq(cfg->max_attempts, 3);
    cr_assert_str_eq(cfg->planner, "rules");
    cr_assert_eq(cfg->review_revise, 0);
    cr_assert_eq(cfg->allow_workflows, 0);
    cr_assert_str_eq(cfg->protected_branches, "main,master,production,staging,release/*");
    cr_assert_null(cfg->openrouter_api_key);
    cr_assert_null(cfg->github_token);
    cr_assert_eq(cfg->stage_mode, DM_STAGES_REAL);
    cr_assert_str_eq(cfg->llm_api, "openrouter");
    cr_assert_str_eq(cfg->llm_max_tokens_field, "max_completion_tokens");
    cr_assert_eq(cfg->llm_json_schema, 0);
    cr_assert_null(cfg->llm_referer, "the mode's default");
    cr_assert_null(cfg->llm_api_key);
    cr_assert_eq(cfg->prices_refresh_s, 21600);
    /* The consumer name defaults to <hostname>-<pid>. */
    snprintf(consumer, sizeof(consumer), "-%ld", (long)getpid());
    cr_assert_not_null(cfg->consumer);
    cr_assert_gt(strlen(cfg->consumer), strlen(consumer));
    cr_assert_str_eq(cfg->consumer + strlen(cfg->consumer) - strlen(consumer), consumer);
}

Test(config, the_environment_overrides_defaults)
{
    const char *env[] = {"DREAM_MAX_JOBS=5",
                         "DREAM_PREFIX=other",
                         "DREAM_REVIEW_REVISE=true",
                         "OPENROUTER_API_KEY=sk-env",
                         "DREAM_REDIS_URL=redis://db.local:7000/3",
                         NULL};
    cr_assert_eq(load(NULL, env, NULL), 0, "%s", err.msg);
    cr_assert_eq(cfg->max_jobs, 5);
    cr_assert_str_eq(cfg->prefix, "other");
    cr_assert_eq(cfg->review_revise, 1);
    cr_assert_str_eq(cfg->openrouter_api_key, "sk-env");
    cr_assert_str_eq(cfg->redis.host, "db.local");
    cr_assert_eq(cfg->redis.port, 7000);
    cr_assert_eq(cfg->redis.db, 3);
}

Test(config, flags_override_the_environment_in_both_spellings)
{
    const char *env[] = {"DREAM_MAX_JOBS=5", "DREAM_CONSUMER=from-env", NULL};
    const char *args[] = {"--max-jobs=7", "--consumer", "from-flag", NULL};
    cr_assert_eq(load(args, env, NULL), 0, "%s", err.msg);
    cr_assert_eq(cfg->max_jobs, 7);
    cr_assert_str_eq(cfg->consumer, "from-flag");
}

Test(config, the_last_flag_wins)
{
    const char *args[] = {"--max-jobs=7", "--max-jobs=9", NULL};
    cr_assert_eq(load(args, NULL, NULL), 0, "%s", err.msg);
    cr_assert_eq(cfg->max_jobs, 9);
}

Test(config, a_secret_file_gives_the_value_without_its_trailing_newline)
{
    const char *env[] = {secret_file("GITHUB_TOKEN_FILE", "ghp_fromfile\r\n"), NULL};
    cr_assert_eq(load(NULL, env, NULL), 0, "%s", err.msg);
    cr_assert_str_eq(cfg->github_token, "ghp_fromfile");
}

Test(config, a_secret_file_is_used_over_the_plain_variable)
{
    /* What config.c does today when both are set: the *_FILE is read and the plain variable is
     * ignored. */
    const char *env[] = {"OPENROUTER_API_KEY=sk-plain",
                         secret_file("OPENROUTER_API_KEY_FILE", "sk-file\n"), NULL};
    cr_assert_eq(load(NULL, env, NULL), 0, "%s", err.msg);
    cr_assert_str_eq(cfg->openrouter_api_key, "sk-file");
}

Test(config, a_secret_given_as_a_flag_is_refused_naming_the_file_form)
{
    const char *env[] = {secret_file("DREAM_CALLBACK_SECRET_FILE", "from-file\n"), NULL};
    const char *args[] = {"--callback-secret=from-flag", NULL};
    const char *args2[] = {"--github-token", "ghp_in_argv", "--max-jobs=3", NULL};

    cr_assert_eq(load(args, env, NULL), DM_ERR_INVALID);
    cr_assert_not_null(strstr(err.msg, "--callback-secret (DREAM_CALLBACK_SECRET): a secret is "
                                       "not taken from a flag"),
                       "%s", err.msg);
    cr_assert_not_null(strstr(err.msg, "set DREAM_CALLBACK_SECRET_FILE"), "%s", err.msg);
    cr_assert_null(strstr(err.msg, "from-flag"), "the value is never repeated: %s", err.msg);
    /* The value after a flag is skipped, not taken for an argument; the message keeps it out. */
    cr_assert_eq(load(args2, NULL, NULL), DM_ERR_INVALID);
    cr_assert_null(strstr(err.msg, "ghp_in_argv"), "%s", err.msg);
    cr_assert_null(strstr(err.msg, "unexpected argument"), "%s", err.msg);
}

Test(config, only_secrets_are_read_from_files)
{
    const char *env[] = {secret_file("DREAM_PREFIX_FILE", "fromfile\n"), NULL};
    cr_assert_eq(load(NULL, env, NULL), 0, "%s", err.msg);
    cr_assert_str_eq(cfg->prefix, "dream");
}

Test(config, a_bool_flag_alone_means_true)
{
    const char *args[] = {"--allow-workflows", "--review-revise", "--max-jobs=2", NULL};
    cr_assert_eq(load(args, NULL, NULL), 0, "%s", err.msg);
    cr_assert_eq(cfg->allow_workflows, 1);
    cr_assert_eq(cfg->review_revise, 1);
    cr_assert_eq(cfg->max_jobs, 2);
}

Test(config, test_stages_are_recognised)
{
    const char *args[] = {"--stages=test", "--test-stage-ms=25", NULL};
    cr_assert_eq(load(args, NULL, NULL), 0, "%s", err.msg);
    cr_assert_eq(cfg->stage_mode, DM_STAGES_TEST);
    cr_assert_eq(cfg->test_stage_ms, 25);
}

/* ---- bad values ---- */

Test(config, a_bad_integer_is_refused_naming_flag_variable_range_and_value)
{
    const char *args[] = {"--max-jobs=lots", NULL};
    cr_assert_eq(load(args, NULL, NULL), DM_ERR_INVALID);
    cr_assert_null(cfg, "nothing is returned with a bad value");
    cr_assert_eq(err.code, DM_ERR_INVALID);
    cr_assert_str_eq(err.msg,
                     "--max-jobs (DREAM_MAX_JOBS): must be an integer in 1..10000, got 'lots'");
}

Test(config, out_of_range_and_trailing_garbage_are_refused)
{
    static const char *const bad[] = {"--max-jobs=0", "--max-jobs=10001", "--max-jobs=5x",
                                      "--max-jobs=", "--lease-ms=499"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *args[] = {bad[i], NULL};
        cr_assert_eq(load(args, NULL, NULL), DM_ERR_INVALID, "%s accepted", bad[i]);
    }
}

Test(config, every_problem_is_reported_one_per_line)
{
    /* Few enough to fit err.msg (512 bytes; problems past it are counted but not listed). */
    const char *env[] = {"DREAM_LOG_LEVEL=loud", NULL};
    const char *args[] = {
        "--redis-url=http://x", "--prefix=a b", "--no-such-flag", "stray", "--max-jobs", NULL};
    static const char *const want[] = {
        "--log-level (DREAM_LOG_LEVEL): must be debug, info, warn, error or off, got 'loud'",
        "--prefix (DREAM_PREFIX): may only hold letters, digits",
        "unknown option '--no-such-flag' (see --help)",
        "unexpected argument 'stray'",
        "--max-jobs (DREAM_MAX_JOBS): needs a value",
        "--redis-url (DREAM_REDIS_URL): must start with redis:// or unix://",
    };
    int lines = 1;

    cr_assert_eq(load(args, env, NULL), DM_ERR_INVALID);
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        cr_assert_not_null(strstr(err.msg, want[i]), "missing \"%s\" in:\n%s", want[i], err.msg);
    }
    for (const char *p = err.msg; *p; p++) {
        lines += *p == '\n';
    }
    cr_assert_eq(lines, 6, "one line per problem:\n%s", err.msg);
}

Test(config, each_rule_names_its_setting)
{
    static const char *const cases[][3] = {
        {"--allow-workflows=perhaps", NULL,
         "--allow-workflows (DREAM_ALLOW_WORKFLOWS): must be true or false, got 'perhaps'"},
        {"--git-url=https://h/{owner}", NULL, "--git-url (DREAM_GIT_URL): must contain {repo}"},
        {"--git-url=ftp://h/{repo}", NULL,
         "--git-url (DREAM_GIT_URL): must start with https://, http://, file:// or ssh://"},
        {"--planner=magic", NULL, "--planner (DREAM_PLANNER): must be rules or model, got 'magic'"},
        {"--llm-url=ftp://x", NULL,
         "--llm-url (DREAM_LLM_URL): must be an http:// or https:// URL"},
        {"--model=", NULL, "--model (DREAM_MODEL): must not be empty"},
        {"--stages=fast", NULL, "--stages (DREAM_STAGES): must be real or test"},
        {"--llm-api=anthropic", NULL,
         "--llm-api (DREAM_LLM_API): must be openrouter or openai, got 'anthropic'"},
        {NULL, "DREAM_LLM_MAX_TOKENS_FIELD=max_output_tokens",
         "--llm-max-tokens-field (DREAM_LLM_MAX_TOKENS_FIELD): must be max_completion_tokens or "
         "max_tokens"},
        {NULL, "DREAM_LEASE_MS=10",
         "--lease-ms (DREAM_LEASE_MS): must be an integer in "
         "500..86400000, got '10'"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *args[] = {cases[i][0], NULL};
        const char *env[] = {cases[i][1], NULL};
        cr_assert_eq(load(args, env, NULL), DM_ERR_INVALID, "case %zu accepted", i);
        cr_assert_not_null(strstr(err.msg, cases[i][2]), "want \"%s\", got \"%s\"", cases[i][2],
                           err.msg);
    }
}

Test(config, an_unreadable_secret_file_is_a_bad_setting)
{
    const char *env[] = {"GITHUB_TOKEN_FILE=/nonexistent/dreamd/token", NULL};
    cr_assert_eq(load(NULL, env, NULL), DM_ERR_INVALID);
    cr_assert_not_null(strstr(err.msg, "--github-token (GITHUB_TOKEN): cannot read file "
                                       "'/nonexistent/dreamd/token'"),
                       "%s", err.msg);
}

/* ---- actions ---- */

Test(config, help_version_and_print_config_are_actions)
{
    enum dm_config_action action;
    const char *help[] = {"--help", NULL};
    const char *h[] = {"-h", NULL};
    const char *version[] = {"--version", NULL};
    const char *print[] = {"--print-config", NULL};

    cr_assert_eq(load(help, NULL, &action), 0);
    cr_assert_eq(action, DM_CONFIG_HELP);
    cr_assert_eq(load(h, NULL, &action), 0);
    cr_assert_eq(action, DM_CONFIG_HELP);
    cr_assert_eq(load(version, NULL, &action), 0);
    cr_assert_eq(action, DM_CONFIG_VERSION);
    cr_assert_eq(load(print, NULL, &action), 0);
    cr_assert_eq(action, DM_CONFIG_PRINT);
}

Test(config, usage_names_every_variable_and_default)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);

    cr_assert_not_null(f);
    dm_config_usage(f, "dreamd");
    fclose(f);
    cr_assert_not_null(strstr(text, "Usage: dreamd"));
    cr_assert_not_null(strstr(text, "--max-jobs=<n>\n      env DREAM_MAX_JOBS; default 64"), "%s",
                       text);
    cr_assert_not_null(strstr(text, "env GITHUB_TOKEN or GITHUB_TOKEN_FILE; default (unset); "
                                    "secret, never printed"),
                       "%s", text);
    cr_assert_not_null(strstr(text, "default <hostname>-<pid>"), "%s", text);
    free(text);
}

/* ---- secrets ---- */

Test(config, secrets_are_redacted_in_the_printout)
{
    const char *env[] = {"OPENROUTER_API_KEY=sk-or-v1-supersecretvalue",
                         secret_file("DREAM_SIGNING_SECRETS_FILE", "sign-one,sign-two\n"), NULL};
    const char *args[] = {"--redis-url=redis://worker:hunter2-pass@db:6380/2", NULL};
    char *out;

    cr_assert_eq(load(args, env, NULL), 0, "%s", err.msg);
    cr_assert_str_eq(cfg->redis.username, "worker");
    cr_assert_str_eq(cfg->redis.password, "hunter2-pass");
    out = printed();
    cr_assert_null(strstr(out, "supersecret"), "%s", out);
    cr_assert_null(strstr(out, "sign-one"), "%s", out);
    cr_assert_null(strstr(out, "hunter2"), "%s", out);
    cr_assert_not_null(strstr(out, "openrouter-api-key=<set>\n"), "%s", out);
    cr_assert_not_null(strstr(out, "signing-secrets=<set>\n"), "%s", out);
    cr_assert_not_null(strstr(out, "github-token=<unset>\n"), "%s", out);
    cr_assert_not_null(strstr(out, "redis-url=redis://worker:***@db:6380/2\n"), "%s", out);
    cr_assert_not_null(strstr(out, "max-jobs=64\n"), "%s", out);
    cr_assert_not_null(strstr(out, "allow-workflows=false\n"), "%s", out);
    free(out);
}

/* An LLM proxy's password in DREAM_LLM_URL's userinfo is redacted like Redis's. */
Test(config, the_llm_url_password_is_redacted_in_the_printout)
{
    const char *env[] = {"DREAM_LLM_URL=https://team:proxy-pw-42@llm.example/v1", NULL};
    char *out;

    cr_assert_eq(load(NULL, env, NULL), 0, "%s", err.msg);
    out = printed();
    cr_assert_null(strstr(out, "proxy-pw-42"), "%s", out);
    cr_assert_not_null(strstr(out, "llm-url=https://team:***@llm.example/v1\n"), "%s", out);
    free(out);
}

Test(config, an_empty_secret_prints_as_unset)
{
    const char *env[] = {"GITHUB_TOKEN=", NULL};
    char *out;
    cr_assert_eq(load(NULL, env, NULL), 0, "%s", err.msg);
    out = printed();
    cr_assert_not_null(strstr(out, "github-token=<unset>\n"), "%s", out);
    free(out);
}

/* ---- Redis URLs ---- */

Test(config, redis_urls)
{
    struct dm_redis_addr a;
    struct dm_error e;

    cr_assert_eq(dm_redis_addr_parse(&a, "redis://:pw@h:1234/5", &e), 0, "%s", e.msg);
    cr_assert_null(a.username);
    cr_assert_str_eq(a.password, "pw");
    cr_assert_str_eq(a.host, "h");
    cr_assert_eq(a.port, 1234);
    cr_assert_eq(a.db, 5);
    dm_redis_addr_clear(&a);

    cr_assert_eq(dm_redis_addr_parse(&a, "unix:///run/redis.sock?db=2", &e), 0, "%s", e.msg);
    cr_assert_str_eq(a.unix_path, "/run/redis.sock");
    cr_assert_null(a.host);
    cr_assert_eq(a.db, 2);
    dm_redis_addr_clear(&a);

    cr_assert_eq(dm_redis_addr_parse(&a, "rediss://h:6379/0", &e), DM_ERR_INVALID);
    cr_assert_not_null(strstr(e.msg, "TLS is not supported"), "%s", e.msg);
    cr_assert_eq(dm_redis_addr_parse(&a, "redis://h:0/0", &e), DM_ERR_INVALID);
    cr_assert_eq(dm_redis_addr_parse(&a, "redis://h:65536", &e), DM_ERR_INVALID);
    cr_assert_eq(dm_redis_addr_parse(&a, "redis://:pw@/0", &e), DM_ERR_INVALID);
    cr_assert_eq(dm_redis_addr_parse(&a, "redis://h/x", &e), DM_ERR_INVALID);
    cr_assert_eq(dm_redis_addr_parse(&a, "unix://run/redis.sock", &e), DM_ERR_INVALID);
    cr_assert_eq(dm_redis_addr_parse(&a, "unix:///s?dbx=1", &e), DM_ERR_INVALID);
}

Test(config, redacted_urls)
{
    char buf[128];
    cr_assert_str_eq(dm_redis_url_redacted("redis://u:p@h:1/0", buf, sizeof(buf)),
                     "redis://u:***@h:1/0");
    cr_assert_str_eq(dm_redis_url_redacted("redis://h:1/0", buf, sizeof(buf)), "redis://h:1/0");
    /* An @ in the path is not a password. */
    cr_assert_str_eq(dm_redis_url_redacted("unix:///tmp/a@b.sock", buf, sizeof(buf)),
                     "unix:///tmp/a@b.sock");
}

/* A password-only URL ("redis://secret@h/0") is read as password "secret": none of it may reach
 * --print-config or dreamd's start-up log (it once did, as "redis://secret***@h/0"). */
Test(config, password_only_urls_are_redacted)
{
    char buf[128];
    cr_assert_str_eq(dm_redis_url_redacted("redis://secret@h/0", buf, sizeof(buf)),
                     "redis://***@h/0");
}

/* ---- GitHub App and pull request defaults ---- */

Test(config, github_app_settings_and_pull_request_defaults)
{
    const char *pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIEabc\n-----END RSA PRIVATE KEY-----\n";
    const char *env[] = {"DREAM_GITHUB_APP_ID=123456", NULL, "DREAM_GITHUB_APP_INSTALLATION_ID=42",
                         "DREAM_PR_LABELS=dreamd,needs-review", NULL};
    const char *args[] = {"--pr-draft", "--pr-reviewers=octocat", NULL};
    char *text;

    env[1] = strdup(secret_file("DREAM_GITHUB_APP_PRIVATE_KEY_FILE", pem));
    cr_assert_eq(load(args, env, NULL), 0, "%s", err.msg);
    cr_assert_str_eq(cfg->github_app_id, "123456");
    cr_assert_str_eq(cfg->github_app_private_key,
                     "-----BEGIN RSA PRIVATE KEY-----\nMIIEabc\n-----END RSA PRIVATE KEY-----");
    cr_assert_eq(cfg->github_app_installation_id, 42);
    cr_assert_eq(cfg->pr_draft, 1);
    cr_assert_str_eq(cfg->pr_labels, "dreamd,needs-review");
    cr_assert_str_eq(cfg->pr_reviewers, "octocat");
    cr_assert_null(cfg->pr_team_reviewers);
    text = printed();
    cr_assert_null(strstr(text, "MIIEabc"), "the key is never printed");
    free(text);
    free((char *)env[1]);
}

Test(config, an_app_id_without_its_key_is_refused_and_the_key_is_no_flag)
{
    const char *env[] = {"DREAM_GITHUB_APP_ID=123456", NULL};
    const char *args[] = {"--github-app-private-key=MIIEsecret", NULL};
    cr_assert_eq(load(NULL, env, NULL), DM_ERR_INVALID);
    cr_assert_not_null(strstr(err.msg, "DREAM_GITHUB_APP_ID and DREAM_GITHUB_APP_PRIVATE_KEY"),
                       "%s", err.msg);
    cr_assert_eq(load(args, NULL, NULL), DM_ERR_INVALID);
    cr_assert_not_null(strstr(err.msg, "DREAM_GITHUB_APP_PRIVATE_KEY_FILE"), "%s", err.msg);
    cr_assert_null(strstr(err.msg, "MIIEsecret"), "%s", err.msg);
}

Test(config, a_token_file_is_remembered_to_be_read_again)
{
    const char *env[] = {secret_file("GITHUB_TOKEN_FILE", "ghp_one\n"), NULL};
    cr_assert_eq(load(NULL, env, NULL), 0, "%s", err.msg);
    cr_assert_str_eq(cfg->github_token, "ghp_one");
    cr_assert_not_null(cfg->github_token_file);
    cr_assert_str_eq(strchr(env[0], '=') + 1, cfg->github_token_file);
    cr_assert_eq(load(NULL, (const char *[]){"GITHUB_TOKEN=ghp_two", NULL}, NULL), 0);
    cr_assert_null(cfg->github_token_file, "a plain variable is not a file");
}
