/*
 * dme2e: a whole world for end-to-end tests — a redis-server, the fake OpenRouter, the fake
 * GitHub, a bare git repository `acme/app` (branch main with README.md) reached over file://,
 * and dreamd replicas running the real pipeline against all of them. Test processes only.
 */
#ifndef DME2E_H
#define DME2E_H

#include <hiredis/hiredis.h>
#include <sys/types.h>

#include "dmproc.h"
#include "dmtest.h"
#include "fakeor.h"

#define DMT_GH_TOKEN "ghp_e2etesttoken0000000000000000000000"
#define DMT_OR_KEY "sk-or-v1-e2etestkey000000000000000000000000"

struct dmt_world {
    struct dmt_redis redis;
    struct dmt_fakeor llm;
    pid_t gh_pid;
    int gh_port;
    char gh_url[64];
    char *dir;     /* temporary root: remotes/, data/, logs */
    char *remotes; /* <dir>/remotes: bare repositories <owner>/<repo>.git */
    char *bare;    /* <remotes>/acme/app.git */
    redisContext *rc;
    const char *replica_env; /* one more NAME=value for the replicas started next, or NULL */
};

/* Starts everything. llm_args: extra fake OpenRouter arguments (NULL-terminated, may be NULL). */
void dmt_world_start(struct dmt_world *w, const char *const *llm_args);

/* Stops every process and removes the temporary directory (kept when DMT_KEEP is set, for
 * reading the replicas' logs after a failure). */
void dmt_world_stop(struct dmt_world *w);

/* Starts a dreamd replica wired to the world (real stages), with extra flags (may be NULL).
 * Log: <dir>/<name>.log. */
void dmt_world_replica(struct dmt_world *w, struct dmt_replica *rep, const char *name,
                       const char *const *extra);

/* A blocking request to the fake GitHub (e.g. GET /_fake/pulls). Caller frees. */
char *dmt_world_gh(const struct dmt_world *w, const char *method, const char *path,
                   const char *body);

/* Number of pull requests the fake GitHub holds. */
int dmt_world_pr_count(const struct dmt_world *w);

/* A job JSON for the world's repository (caller frees); spec NULL = a default spec with one API
 * route, one UI component and one migration. */
char *dmt_world_job(const char *id, const char *spec, const char *trust, long long max_tokens,
                    double max_dollars);

/* The job hash field (caller frees; NULL when absent). */
char *dmt_world_hget(const struct dmt_world *w, const char *id, const char *field);

/* Waits until the job's status is one of the given (comma-separated) values; returns 1 if so. */
int dmt_world_wait_status(const struct dmt_world *w, const char *id, const char *statuses,
                          int timeout_ms);

/* The statuses of a job's events in order, comma-separated (caller frees). */
char *dmt_world_statuses(const struct dmt_world *w, const char *id);

/* `git ls-tree -r --name-only <branch>` of the bare repository (caller frees; NULL if the
 * branch does not exist). */
char *dmt_world_branch_files(const struct dmt_world *w, const char *branch);

/* ---- added for tests/integration/test_generation.c ---- */

struct cJSON;

/* Every event of a job (dream:job:<id>:events), parsed, in order: a cJSON array the caller
 * frees with cJSON_Delete (an empty array when there are none). */
struct cJSON *dmt_world_events(const struct dmt_world *w, const char *id);

/* The content of path on branch in the bare repository (`git show branch:path`; caller frees;
 * NULL when the branch or the file does not exist; trailing newlines trimmed). */
char *dmt_world_branch_file(const struct dmt_world *w, const char *branch, const char *path);

/* The bare repository's branches, one `refs/heads/...` per line, sorted (caller frees). */
char *dmt_world_refs(const struct dmt_world *w);

/* RFC 3339 UTC time with milliseconds ("2026-11-24T02:04:58.123Z") in ms since the epoch;
 * -1 when it does not parse. */
long long dmt_world_ts_ms(const char *ts);

#endif

/* ---- added for tests/integration/test_gate.c and test_push.c ---- */

struct dmt_githttp;

/* Starts a dreamd replica like dmt_world_replica, but pushing to git_url (a remote template,
 * e.g. a dmt_githttp's url_template; NULL = the world's file:// remotes) with GITHUB_TOKEN =
 * token (NULL = DMT_GH_TOKEN, which the fake GitHub accepts). */
void dmt_world_replica_git(struct dmt_world *w, struct dmt_replica *rep, const char *name,
                           const char *git_url, const char *token, const char *const *extra);

/* Starts the smart-HTTP git server (lighttpd + git http-backend, Basic auth user
 * `x-access-token`, password DMT_GH_TOKEN) serving the world's remotes, so a push over HTTP
 * lands in w->bare and the fake GitHub sees it. Stop it with dmt_githttp_stop before
 * dmt_world_stop. */
void dmt_world_serve_http(struct dmt_world *w, struct dmt_githttp *g);

/* Every Redis key (of any type: string, hash, list, set, sorted set, stream) whose name, field
 * or value contains needle, one "key (type)" per line; "" when none (caller frees). */
char *dmt_world_redis_grep(const struct dmt_world *w, const char *needle);

/* The last event of a job with the given status, parsed (caller cJSON_Deletes; NULL if none). */
struct cJSON *dmt_world_event(const struct dmt_world *w, const char *id, const char *status);

/* Requests the fake GitHub recorded with this method whose path contains path_part. */
int dmt_world_gh_requests(const struct dmt_world *w, const char *method, const char *path_part);

/* Pull requests on the fake GitHub whose head branch is branch. */
int dmt_world_prs_for(const struct dmt_world *w, const char *branch);

/* `git rev-parse <rev>` in the bare repository (caller frees; NULL if it does not resolve). */
char *dmt_world_rev(const struct dmt_world *w, const char *rev);

/* ---- added for issue 13 (repository-aware changes) ---- */

/* Replaces the world's repository acme/app (w->bare) with the fixture tests/data/repos/<name>
 * ("hono" or "express"): one commit on main, the same commit id on every run (see fixture.h).
 * Call before starting replicas. */
void dmt_world_use_fixture(struct dmt_world *w, const char *name);

/* The body of the newest pull request the fake GitHub holds for head branch (caller frees; NULL
 * when there is none). */
char *dmt_world_pr_body(const struct dmt_world *w, const char *branch);
