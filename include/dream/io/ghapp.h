/*
 * ghapp: where dreamd's GitHub credentials come from, for REST (forge) and git alike. One of:
 *   - a fixed token (GITHUB_TOKEN);
 *   - a token file (GITHUB_TOKEN_FILE), read again when it changed (its inode, size, mtime or
 *     ctime differ from the last read: one stat() per use), so a rotated token is picked up;
 *   - a GitHub App (DREAM_GITHUB_APP_ID + private key): the App's JWT (domain/ghjwt) is
 *     exchanged for an installation token (POST {api}/app/installations/{id}/access_tokens),
 *     cached per installation until shortly before its expires_at, then fetched again. The
 *     installation is the configured one, else GET {api}/repos/{o}/{r}/installation, cached
 *     per repository.
 * Tokens, the key and the JWT are never logged, put in an error or a URL; each copy is wiped
 * when freed. Requests run on the shared curl-multi client (io/http): nothing blocks the loop
 * (a token file is one stat(), and a read of at most 64 KiB when it changed).
 *
 * A token is "fresh" when more than the refresh margin is left before it expires: the margin is
 * refresh_margin_s, or half the token's lifetime when that is shorter (so a short-lived token is
 * still used for a while). Threading: loop thread only.
 */
#ifndef DREAM_GHAPP_H
#define DREAM_GHAPP_H

#include "dream/core/error.h"
#include "dream/io/http.h"

#include <uv.h>

struct dm_ghapp;
struct dm_ghapp_wait; /* one dm_ghapp_fetch in progress */

struct dm_ghapp_opts {
    const char *api_url;       /* NULL = https://api.github.com */
    const char *token;         /* secret, copied; used when there is no App and no file */
    const char *token_file;    /* GITHUB_TOKEN_FILE; wins over token */
    const char *app_id;        /* with private_key: App mode (wins over both) */
    const char *private_key;   /* secret PEM, copied into OpenSSL only */
    long long installation_id; /* 0 = look it up per repository */
    long refresh_margin_s;     /* 0 = 300 */
    long timeout_ms;           /* per request; 0 = 30000 */
};

/* Creates the credentials on loop using http (borrowed; close this first). Returns 0,
 * DM_ERR_INVALID (a bad key or App id, an unreadable token file; the message never quotes a
 * secret) or DM_ERR_NOMEM. */
int dm_ghapp_new(struct dm_ghapp **out, struct dm_http *http, uv_loop_t *loop,
                 const struct dm_ghapp_opts *opts, struct dm_error *err);

/* 1 in App mode. */
int dm_ghapp_is_app(const struct dm_ghapp *a);

/* A usable token for owner/repo right now, or NULL (App mode: none cached, or not fresh; other
 * modes: none configured). Borrowed: valid until the next call into this module; copy it at
 * once. */
const char *dm_ghapp_peek(struct dm_ghapp *a, const char *owner, const char *repo);

/* Completion of dm_ghapp_fetch, from the loop, never inside a call into this module. rc == 0:
 * dm_ghapp_peek now answers (for a while). rc < 0: err says why (DM_ERR_AUTH: GitHub refused the
 * App; DM_ERR_NOTFOUND: the App is not installed on the repository; DM_ERR_TRANSIENT: network
 * or 5xx; DM_ERR_CANCELLED: dm_ghapp_cancel or dm_ghapp_close). */
typedef void (*dm_ghapp_cb)(void *arg, int rc, const struct dm_error *err);

/* Makes sure a fresh token for owner/repo exists: one request at a time per installation, shared
 * by every waiter. cb fires exactly once, later. *out (may be NULL) is a handle for
 * dm_ghapp_cancel, valid until cb fires. Returns 0, or DM_ERR_NOMEM / DM_ERR_CANCELLED (closing)
 * and then cb never fires. In other modes cb fires with 0 on the next loop turn. */
int dm_ghapp_fetch(struct dm_ghapp *a, const char *owner, const char *repo, dm_ghapp_cb cb,
                   void *arg, struct dm_ghapp_wait **out);

/* Ends a wait: its cb fires later with DM_ERR_CANCELLED. */
void dm_ghapp_cancel(struct dm_ghapp_wait *w);

/* GitHub answered 401 to token: forget it (App mode), so the next fetch gets a new one. */
void dm_ghapp_invalidate(struct dm_ghapp *a, const char *token);

/* Installation tokens fetched so far (tests, metrics). */
unsigned long dm_ghapp_tokens_fetched(const struct dm_ghapp *a);

/* Cancels every wait (their cb fire with DM_ERR_CANCELLED), aborts the requests and frees
 * everything once they are done; then done(arg) (may be NULL). */
void dm_ghapp_close(struct dm_ghapp *a, void (*done)(void *arg), void *arg);

#endif
