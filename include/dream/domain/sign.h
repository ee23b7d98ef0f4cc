/*
 * sign: the X-Dream-Signature of a job callback: "sha256=" and the lower-case hex HMAC-SHA256 of
 * the exact body, keyed by the callback secret (see dream/io/callback.h for the headers sent).
 *
 * Pure (libcrypto); no state; any thread.
 */
#ifndef DREAM_SIGN_H
#define DREAM_SIGN_H

#include <stddef.h>

/* Bytes dm_callback_sign needs: "sha256=" + 64 hex digits + NUL. */
#define DM_CALLBACK_SIG_LEN (7 + 64 + 1)

/* Writes "sha256=<64 hex digits>" of HMAC-SHA256(key, body) into out (at least
 * DM_CALLBACK_SIG_LEN bytes), as sent in X-Dream-Signature, for receivers and tests. Returns out,
 * or NULL when out is too small or OpenSSL fails. */
char *dm_callback_sign(char *out, size_t outlen, const char *key, size_t keylen, const void *body,
                       size_t len);

#endif
