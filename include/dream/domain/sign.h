/*
 * sign: the X-Dream-Signature of a job callback, the way webhook senders sign:
 *   X-Dream-Signature: t=<unix seconds>,v1=<lower-case hex HMAC-SHA256>
 * where the HMAC is keyed by the callback secret (DREAM_CALLBACK_SECRET) over the string
 * "<t>.<body>" (the decimal timestamp, a dot, then the exact body bytes). The secret itself is
 * never sent. A receiver recomputes the HMAC, compares in constant time and refuses a timestamp
 * outside its tolerance, so a captured delivery cannot be replayed later.
 *
 * Pure (libcrypto); no state; any thread.
 */
#ifndef DREAM_SIGN_H
#define DREAM_SIGN_H

#include <stddef.h>

/* Bytes dm_callback_sign needs at most: "t=" + 20 digits + ",v1=" + 64 hex digits + NUL. */
#define DM_CALLBACK_SIG_LEN (2 + 20 + 4 + 64 + 1)

/* Writes "t=<t>,v1=<64 hex digits>" of HMAC-SHA256(key, "<t>.<body>") into out (at least
 * DM_CALLBACK_SIG_LEN bytes, or exactly enough for this t), as sent in X-Dream-Signature.
 * t must be >= 0. Returns out, or NULL when out is too small, t < 0 or OpenSSL fails. */
char *dm_callback_sign(char *out, size_t outlen, const char *key, size_t keylen, long long t,
                       const void *body, size_t len);

/* Checks a X-Dream-Signature value (header, NUL-terminated) against body: its t must be within
 * tolerance_s seconds of now (either side) and one of its v1 values (several may be present,
 * comma-separated, e.g. during a key rotation) must match, compared in constant time. Returns
 * 0 when valid, -1 when malformed or no v1 matches, -2 when the timestamp is outside the
 * tolerance. For receivers and tests. */
int dm_callback_verify(const char *header, const char *key, size_t keylen, const void *body,
                       size_t len, long long now, long long tolerance_s);

#endif
