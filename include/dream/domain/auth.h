/*
 * auth: trust levels and HS256 JWT verification for signed build jobs.
 *
 * A producer may put an HS256 JWT in a stream entry's `token` field. dm_auth_verify() checks it
 * (OpenSSL HMAC-SHA256, constant-time compare) against one or more accepted secrets (rotation),
 * the expected issuer and the time claims; dm_auth_verify_job() also binds it to the job
 * (`jti` == jobId, `sub` == userId). The token's `dreamTrustLevel` wins over the job body's.
 * dm_trust_decide() maps a trust level to what the worker may do.
 *
 * Pure (libcrypto and cJSON only), no global state; every function is safe on any thread.
 * Error messages never contain a secret, the token or any part of it.
 */
#ifndef DREAM_AUTH_H
#define DREAM_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "dream/core/error.h"

/* ---- trust levels ---------------------------------------------------------------------- */

enum dm_trust {
    DM_TRUST_OBSERVER = 0,
    DM_TRUST_PLANNER = 1,
    DM_TRUST_BUILDER = 2,
    DM_TRUST_SHIPPER = 3,
};

/* Parses "observer", "planner", "builder", "shipper" (exact, lower case).
 * Returns 0 or DM_ERR_INVALID (out untouched). s may be NULL (invalid). */
int dm_trust_parse(enum dm_trust *out, const char *s);

/* "observer", "planner", "builder", "shipper"; "unknown" for anything else. Static. */
const char *dm_trust_name(enum dm_trust t);

/* What a job of a trust level may do. */
enum dm_trust_action {
    DM_TRUST_ACTION_REFUSE = 0,          /* observer: the job fails, nothing runs */
    DM_TRUST_ACTION_DRY_RUN = 1,         /* planner: plan, generate, validate, review; no push/PR */
    DM_TRUST_ACTION_BUILD = 2,           /* builder (or shipper without workflows): push + PR */
    DM_TRUST_ACTION_BUILD_WORKFLOWS = 3, /* shipper when config allows: PR may touch
                                            .github/workflows/ */
};

/* observer → REFUSE, planner → DRY_RUN, builder → BUILD, shipper → BUILD_WORKFLOWS when
 * workflows_allowed (config) is nonzero, else BUILD. Unknown values → REFUSE. */
enum dm_trust_action dm_trust_decide(enum dm_trust t, int workflows_allowed);

/* "refuse", "dry-run", "build", "build+workflows". Static. */
const char *dm_trust_action_name(enum dm_trust_action a);

/* ---- JWT ------------------------------------------------------------------------------- */

#define DM_AUTH_DEFAULT_ISSUER "storia"
#define DM_AUTH_DEFAULT_LEEWAY_S 60
/* Longest token accepted (bytes); longer ones are refused before decoding. */
#define DM_AUTH_TOKEN_MAX 8192
/* Longest `sub` / `jti` / `iss` claim kept (bytes, without NUL); longer claims are refused. */
#define DM_AUTH_CLAIM_MAX 255

/* Verification settings. Everything is borrowed for the duration of the call.
 * Initialise with DM_AUTH_CONFIG_INIT, then set secrets. */
struct dm_auth_config {
    const char *const *secrets; /* accepted HS256 secrets (non-empty strings), any one may sign */
    size_t n_secrets;
    const char *issuer; /* expected `iss`; NULL → DM_AUTH_DEFAULT_ISSUER */
    int64_t leeway_s;   /* clock skew allowed for exp/nbf/iat, seconds (>= 0) */
};
#define DM_AUTH_CONFIG_INIT                                                                        \
    {                                                                                              \
        NULL, 0, DM_AUTH_DEFAULT_ISSUER, DM_AUTH_DEFAULT_LEEWAY_S                                  \
    }

/* The claims of a verified token (plain values, nothing to free). */
struct dm_auth_claims {
    char iss[DM_AUTH_CLAIM_MAX + 1];
    char sub[DM_AUTH_CLAIM_MAX + 1];
    char jti[DM_AUTH_CLAIM_MAX + 1];
    enum dm_trust trust; /* valid only when trust_set */
    int trust_set;       /* the token carried `dreamTrustLevel` */
    int64_t exp;         /* seconds since the epoch (fractions dropped) */
    int64_t nbf, iat;    /* valid only when has_nbf / has_iat */
    int has_nbf, has_iat;
};

/* Verifies token (len bytes, need not be NUL-terminated) at time now_s (seconds since the
 * epoch; the caller passes the clock so tests can pin it). Order of checks: size and shape
 * (three base64url segments), header (`alg` exactly "HS256", `typ` "JWT" if present, no
 * `crit`), then the signature against every secret (constant time), and only then the payload:
 * `iss` required and equal to cfg->issuer, `exp` required (now > exp + leeway → expired), `nbf`
 * (now + leeway < nbf → not yet valid), `iat` (iat > now + leeway → refused), `sub` and `jti`
 * required non-empty strings, `dreamTrustLevel` optional (if present, a valid trust level).
 * Numeric dates must be finite JSON numbers.
 *
 * out (may be NULL) is filled only on success. Returns 0, DM_ERR_AUTH (token refused; err->msg
 * starts "token: " and names the rule, e.g. "token: expired", "token: signature does not
 * match", "token: alg must be HS256"), DM_ERR_INVALID (cfg unusable: no secrets) or
 * DM_ERR_NOMEM. */
int dm_auth_verify(struct dm_auth_claims *out, const char *token, size_t len,
                   const struct dm_auth_config *cfg, int64_t now_s, struct dm_error *err);

/* dm_auth_verify(), then binds the token to the job: `jti` must equal job_id ("token: jti does
 * not match jobId") and `sub` must equal user_id ("token: sub does not match userId"); both
 * DM_ERR_AUTH. The caller then applies claims.trust (when trust_set) over the body's level. */
int dm_auth_verify_job(struct dm_auth_claims *out, const char *token, size_t len,
                       const struct dm_auth_config *cfg, const char *job_id, const char *user_id,
                       int64_t now_s, struct dm_error *err);

/* Signs payload_json (must be a JSON object; copied verbatim) with header
 * {"alg":"HS256","typ":"JWT"} and secret. *out is a NUL-terminated token the caller frees with
 * free(). For dreamctl and tests. Returns 0, DM_ERR_INVALID (empty secret, payload not a JSON
 * object) or DM_ERR_NOMEM. Any thread. */
int dm_auth_sign_hs256(char **out, const char *payload_json, const char *secret,
                       struct dm_error *err);

#endif
