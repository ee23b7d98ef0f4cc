/*
 * dmctl: running the built dreamctl as a child process from integration tests, with its stdout
 * and stderr captured separately. Test processes only.
 */
#ifndef DMCTL_H
#define DMCTL_H

/* Runs `dreamctl --redis-url=<url> args...` (args NULL-terminated) with stdin from in_path
 * (NULL: /dev/null) and the environment of the test minus DREAM_REDIS_URL, DREAM_PREFIX and
 * DREAM_SIGN_SECRET, plus env ("NAME=value" strings, NULL-terminated, may be NULL). Waits up to
 * timeout_ms (the test fails past it, or when dreamctl dies of a signal). Returns its exit
 * code; *out and *err (may be NULL) get its output (caller frees). */
int dmt_ctl_run(const char *url, const char *const *args, const char *const *env,
                const char *in_path, int timeout_ms, char **out, char **err);

#endif
