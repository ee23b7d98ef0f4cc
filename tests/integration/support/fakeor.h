/*
 * fakeor: start, drive and inspect tests/fakes/fake_openrouter.py from integration tests.
 * Test processes only (blocking calls; never from inside a running uv loop callback that must
 * not block for long).
 */
#ifndef DMT_FAKEOR_H
#define DMT_FAKEOR_H

#include <sys/types.h>

struct dmt_fakeor {
    pid_t pid;
    int port;
    char base[64]; /* "http://127.0.0.1:<port>/api/v1" (DREAM_LLM_URL) */
    char root[64]; /* "http://127.0.0.1:<port>" */
};

/* Starts the fake on a free port with extra command-line arguments (NULL-terminated, may be
 * NULL) and waits until it answers (aborts the test on failure). */
void dmt_fakeor_start(struct dmt_fakeor *f, const char *const *extra_args);

/* Stops it (SIGTERM, then SIGKILL). */
void dmt_fakeor_stop(struct dmt_fakeor *f);

/* A blocking request to the fake (method "GET" or "POST", path like "/_fake/stats", body may be
 * NULL). Returns the body (caller frees); aborts the test unless the status is 2xx. */
char *dmt_fakeor_http(const struct dmt_fakeor *f, const char *method, const char *path,
                      const char *body);

/* A top-level number of /_fake/stats ("total", "chat", "peak_in_flight", "in_flight"...). */
long long dmt_fakeor_stat(const struct dmt_fakeor *f, const char *key);

/* Requests seen for a target path (per_path of /_fake/stats; "-" = requests without a path). */
long long dmt_fakeor_path_count(const struct dmt_fakeor *f, const char *path);

/* Requests that got a behaviour (per_behaviour of /_fake/stats). */
long long dmt_fakeor_behaviour_count(const struct dmt_fakeor *f, const char *behaviour);

/* Replaces the fake's script (a JSON list of rules). */
void dmt_fakeor_script(const struct dmt_fakeor *f, const char *rules_json);

#endif

/* ---- added for issue 13 (tests of the fake's repository-aware abilities) ---- */

struct cJSON;

/* One non-streamed chat completion with a system and a user message (model
 * anthropic/claude-sonnet-4.5, max_tokens 8192, a bearer key). Returns the reply's content
 * (caller frees), or NULL when the status is not 200; *status (may be NULL) gets the HTTP
 * status (0: no answer). */
char *dmt_fakeor_chat(const struct dmt_fakeor *f, const char *system, const char *user,
                      long *status);

/* The newest request /_fake/requests holds, parsed (caller cJSON_Deletes; aborts when none). */
struct cJSON *dmt_fakeor_last_request(const struct dmt_fakeor *f);
