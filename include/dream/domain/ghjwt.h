/*
 * ghjwt: the JSON Web Token a GitHub App signs to call GitHub as the app (RS256, RFC 7519),
 * and the app's private key. GitHub's rules ("Generating a JSON Web Token (JWT) for a GitHub
 * App"): header {"alg":"RS256","typ":"JWT"}; claims iat = now - 60 (clock drift), exp at most
 * ten minutes later than now, iss = the app's id (or client id). The token is exchanged for an
 * installation token (io/ghapp.c); it is a secret too, and so is the key.
 *
 * Pure (OpenSSL EVP for RSA and SHA-256); any thread. A key has one owner.
 */
#ifndef DREAM_GHJWT_H
#define DREAM_GHJWT_H

#include "dream/core/error.h"

#include <stddef.h>

struct dm_ghjwt_key; /* an RSA private key, wiped when freed */

/* Seconds before now of iat, and after now of exp (GitHub allows at most 600). */
#define DM_GHJWT_IAT_SKEW_S 60
#define DM_GHJWT_TTL_S 540

/* Loads a PEM private key (PKCS#1 "BEGIN RSA PRIVATE KEY", as GitHub hands it out, or PKCS#8),
 * len bytes at pem (need not be NUL-terminated). Returns 0, DM_ERR_INVALID (not a PEM RSA
 * private key; the message never quotes the key) or DM_ERR_NOMEM. */
int dm_ghjwt_key_load(struct dm_ghjwt_key **out, const char *pem, size_t len, struct dm_error *err);

void dm_ghjwt_key_free(struct dm_ghjwt_key *key);

/* Signs the app JWT for app_id ([A-Za-z0-9.]{1,64}: a numeric app id or an Iv... client id)
 * at time now_s (Unix seconds): iat = now_s - DM_GHJWT_IAT_SKEW_S, exp = now_s +
 * DM_GHJWT_TTL_S, iss = app_id (a JSON string). *out is "<header>.<claims>.<signature>",
 * base64url without padding; free it with dm_secret_free. Returns 0, DM_ERR_INVALID (bad app id)
 * or DM_ERR_NOMEM (or DM_ERR_INVALID when OpenSSL fails to sign). */
int dm_ghjwt_sign(char **out, const struct dm_ghjwt_key *key, const char *app_id, long long now_s,
                  struct dm_error *err);

/* Whether app_id is usable as an iss: 1..64 of [A-Za-z0-9.]. */
int dm_ghjwt_app_id_valid(const char *app_id);

#endif
