/*
 * ctl_submit: `dreamctl submit`. Reads the spec, turns the options into a job through jobreq
 * (which owns the defaults, the jobId rule and the validation a worker applies), signs it when
 * a secret is given (--sign-secret-file or DREAM_SIGN_SECRET; ctl_sign_job: iss, sub, jti,
 * dreamTrustLevel, dreamJobSha256 of the job's binding text, iat, exp, aud), adds it to the jobs
 * stream and, with --watch or --wait, follows it to its end. Main thread only.
 */
#include "ctl_int.h"

#include "dream/core/buf.h"
#include "dream/core/error.h"
#include "dream/core/log.h"
#include "dream/domain/auth.h"
#include "dream/domain/jobreq.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

static int read_spec(struct ctl *ctl, const char *file, struct dm_buf *spec)
{
    FILE *in = strcmp(file, "-") == 0 ? stdin : fopen(file, "rb");
    char chunk[8192];
    size_t n;
    int rc = 0;

    if (!in) {
        return ctl_fail(ctl, DM_CTL_EXIT_USAGE, "cannot read spec %s: %s", file, strerror(errno));
    }
    while ((n = fread(chunk, 1, sizeof(chunk), in)) > 0) {
        int a = dm_buf_append(spec, chunk, n);
        if (a == DM_ERR_LIMIT) {
            rc = ctl_fail(ctl, DM_CTL_EXIT_USAGE, "spec %s: must be at most %u bytes", file,
                          DM_JOBREQ_SPEC_MAX);
            goto out;
        }
        if (a) {
            rc = ctl_fail(ctl, DM_CTL_EXIT_FAILED, "out of memory reading %s", file);
            goto out;
        }
    }
    if (ferror(in)) {
        rc = ctl_fail(ctl, DM_CTL_EXIT_USAGE, "cannot read spec %s: %s", file, strerror(errno));
        goto out;
    }
    if (spec->len == 0 || memchr(spec->data, 0, spec->len)) {
        rc = ctl_fail(ctl, DM_CTL_EXIT_USAGE, "spec %s: %s", file,
                      spec->len ? "contains a NUL byte" : "is empty");
    }
out:
    if (in != stdin) {
        fclose(in);
    }
    return rc;
}

/* A fresh jobId (jobreq owns its form); randomness from the kernel, the pid and clock when
 * that fails. */
static void generate_job_id(char *out, size_t n)
{
    unsigned char rnd[4] = {0};

    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
        unsigned v = (unsigned)getpid() ^ (unsigned)dm_time_now_ms();
        memcpy(rnd, &v, sizeof(rnd));
    }
    dm_jobreq_id_make(out, n, (long long)time(NULL), rnd);
}

/* The host of an http:// or https:// URL, lower case, for local validation only (dreamd
 * decides: its DREAM_CALLBACK_ALLOW_HTTP and DREAM_CALLBACK_HOSTS are not dreamctl's). */
static void url_host(const char *url, char *out, size_t n)
{
    const char *p = strstr(url, "://") ? strstr(url, "://") + 3 : url;
    size_t i = 0;

    while (p[i] && p[i] != '/' && p[i] != ':' && p[i] != '?' && p[i] != '#' && i + 1 < n) {
        out[i] = (char)tolower((unsigned char)p[i]);
        i++;
    }
    out[i] = '\0';
}

int ctl_run_submit(struct ctl *ctl)
{
    const char *file = ctl->npos ? ctl->pos[0] : "-";
    const char *repo = ctl_opt(ctl, "repo"), *token = ctl_opt(ctl, "token");
    const char *trust = ctl_opt(ctl, "trust");
    char *secret = NULL;
    const char *callback = ctl_opt(ctl, "callback-url"), *slash;
    const char *user = ctl_opt(ctl, "user-id");
    int watch = ctl_opt(ctl, "watch") != NULL, wait = ctl_opt(ctl, "wait") != NULL;
    char job_id[DM_JOBREQ_ID_MAX + 1], owner[DM_JOBREQ_REPO_PART_MAX + 2], who[128];
    char host[256], evkey[DM_KEYS_MAX], after[64], entry[64];
    const char *hosts[1];
    struct dm_buf spec;
    struct dm_jobreq_opts jo = DM_JOBREQ_OPTS_INIT;
    struct dm_jobreq_draft draft;
    struct dm_error err;
    struct follow f;
    struct dm_jobreq *req = NULL;
    char *json = NULL, *signed_token = NULL;
    long long max_tokens = DM_JOBREQ_DRAFT_MAX_TOKENS, deadline;
    double max_dollars = DM_JOBREQ_DRAFT_MAX_DOLLARS;
    redisReply *r = NULL;
    int rc = 0;

    memset(&f, 0, sizeof(f));
    memset(&draft, 0, sizeof(draft));
    dm_buf_init(&spec, DM_JOBREQ_SPEC_MAX);
    if (token && ctl_opt(ctl, "sign-secret-file")) {
        rc = ctl_fail(ctl, DM_CTL_EXIT_USAGE, "give --token or --sign-secret-file, not both");
        goto out;
    }
    /* A given token wins over DREAM_SIGN_SECRET. */
    if (!token && (rc = ctl_sign_secret(ctl, &secret))) {
        goto out;
    }
    if (!repo) {
        rc = ctl_fail(ctl, DM_CTL_EXIT_USAGE, "submit: --repo OWNER/NAME is required");
        goto out;
    }
    slash = strchr(repo, '/');
    if (!slash || slash == repo || !slash[1] || strchr(slash + 1, '/') ||
        (size_t)(slash - repo) >= sizeof(owner)) {
        rc = ctl_fail(ctl, DM_CTL_EXIT_USAGE, "--repo: must be OWNER/NAME, got '%s'", repo);
        goto out;
    }
    memcpy(owner, repo, (size_t)(slash - repo));
    owner[slash - repo] = '\0';
    if (ctl_opt(ctl, "max-tokens") &&
        ctl_parse_ll(ctl_opt(ctl, "max-tokens"), 1, DM_JOBREQ_MAX_TOKENS_MAX, &max_tokens)) {
        rc = ctl_fail(ctl, DM_CTL_EXIT_USAGE,
                      "--max-tokens: must be an integer in 1..%lld, got '%s'",
                      DM_JOBREQ_MAX_TOKENS_MAX, ctl_opt(ctl, "max-tokens"));
        goto out;
    }
    if (ctl_opt(ctl, "max-dollars") && strcmp(ctl_opt(ctl, "max-dollars"), "none") == 0) {
        max_dollars = -1; /* no dollar limit */
    } else if (ctl_opt(ctl, "max-dollars") &&
               (ctl_parse_pos_double(ctl_opt(ctl, "max-dollars"), &max_dollars) ||
                max_dollars > DM_JOBREQ_MAX_DOLLARS_MAX)) {
        rc = ctl_fail(ctl, DM_CTL_EXIT_USAGE,
                      "--max-dollars: must be a number > 0 or none, got '%s'",
                      ctl_opt(ctl, "max-dollars"));
        goto out;
    }
    if ((rc = ctl_timeout_option(ctl, &deadline))) {
        goto out;
    }
    if ((rc = read_spec(ctl, file, &spec))) {
        goto out;
    }
    if (ctl_opt(ctl, "job-id")) {
        snprintf(job_id, sizeof(job_id), "%s", ctl_opt(ctl, "job-id"));
        if (!dm_jobreq_id_valid(ctl_opt(ctl, "job-id"))) {
            rc = ctl_fail(ctl, DM_CTL_EXIT_USAGE,
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
    ctl_default_who(who, sizeof(who));

    draft.job_id = job_id;
    draft.spec_id = ctl_opt(ctl, "spec-id") ? ctl_opt(ctl, "spec-id") : job_id;
    draft.user_id = user ? user : who;
    draft.repo_type = ctl_opt(ctl, "repo-type");
    draft.repo_owner = owner;
    draft.repo_name = slash + 1;
    draft.base_branch = ctl_opt(ctl, "base");
    draft.branch_prefix = ctl_opt(ctl, "branch-prefix");
    draft.spec_markdown = spec.data;
    draft.effort = ctl_opt(ctl, "effort");
    draft.priority = ctl_opt(ctl, "priority");
    draft.callback_url = callback;
    draft.max_tokens = max_tokens;
    draft.max_dollars = max_dollars;
    if (ctl_opt(ctl, "draft") && ctl_opt(ctl, "no-draft")) {
        rc = ctl_fail(ctl, DM_CTL_EXIT_USAGE, "give --draft or --no-draft, not both");
        goto out;
    }
    draft.pr_draft = ctl_opt(ctl, "draft") ? 1 : ctl_opt(ctl, "no-draft") ? -1 : 0;
    draft.labels = ctl_opt(ctl, "labels");
    draft.reviewers = ctl_opt(ctl, "reviewers");
    draft.team_reviewers = ctl_opt(ctl, "team-reviewers");
    draft.spec_url = ctl_opt(ctl, "spec-url");
    draft.trust = trust;
    /* The worker validates again; this only catches mistakes before anything is queued. */
    jo.trust_optional = token != NULL;
    if (callback) {
        url_host(callback, host, sizeof(host));
        hosts[0] = host;
        if (strncmp(callback, "http://", 7) == 0) {
            jo.http_hosts = hosts;
            jo.n_http_hosts = 1;
        }
        jo.internal_hosts = hosts;
        jo.n_internal_hosts = 1;
    }
    if (dm_jobreq_build(&json, &req, &draft, &jo, &err)) {
        rc = err.code == DM_ERR_NOMEM
                 ? ctl_fail(ctl, DM_CTL_EXIT_FAILED, "out of memory")
                 : ctl_fail(ctl, DM_CTL_EXIT_USAGE, "invalid job: %s", err.msg);
        goto out;
    }
    if (secret) {
        if ((rc = ctl_sign_job(ctl, req, secret, user ? user : who, trust, &signed_token))) {
            goto out;
        }
        token = signed_token;
    }

    if ((rc = ctl_connect(ctl))) {
        goto out;
    }
    ctl_job_key(evkey, ctl, job_id, DM_JOB_KEY_EVENTS);
    /* Only events after our entry decide --wait: a reused id's old end does not count. */
    if ((watch || wait) && (rc = ctl_stream_last_id(ctl, evkey, after, sizeof(after)))) {
        goto out;
    }
    {
        const char *argv[9] = {"XADD", ctl->keys.jobs, "*",     "type", "build",
                               "job",  json,           "token", token};
        r = ctl_cmdv(ctl, token ? 9 : 7, argv, NULL);
    }
    if (!r) {
        rc = DM_CTL_EXIT_UNREACHABLE;
        goto out;
    }
    if (r->type != REDIS_REPLY_STRING) {
        rc = ctl_fail(ctl, DM_CTL_EXIT_FAILED, "XADD %s failed: %s", ctl->keys.jobs,
                      r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        goto out;
    }
    snprintf(entry, sizeof(entry), "%s", r->str);
    if (ctl->json && !wait) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "jobId", job_id);
        cJSON_AddStringToObject(o, "entry", entry);
        ctl_print_json(o);
    } else if (!ctl->json && watch) {
        printf("job %s submitted as entry %s\n", job_id, entry);
    } else if (!ctl->json) {
        printf("%s\n", job_id);
    }
    fflush(stdout);
    if (!watch && !wait) {
        goto out;
    }
    rc = ctl_follow_job(ctl, job_id, entry, after, watch, deadline, &f);
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
            ctl_print_json(o);
        } else {
            const char *msg = f.last ? ctl_jstr(f.last, "message") : NULL;
            const char *pr = f.last ? ctl_jstr(f.last, "prUrl") : NULL;
            printf("job %s %s", job_id, status);
            if (msg) {
                printf(": ");
                ctl_put_text(stdout, msg);
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
    ctl_follow_free(&f);
    freeReplyObject(r);
    dm_jobreq_free(req);
    free(json);
    ctl_secret_free(signed_token);
    ctl_secret_free(secret);
    dm_buf_free(&spec);
    return rc;
}
