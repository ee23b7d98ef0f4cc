/*
 * auth: trust levels and HS256 JWT verification for signed build jobs.
 *
 * A producer may put an HS256 JWT in a stream entry's `token` field. dm_auth_verify() checks it
 * (OpenSSL HMAC-SHA256, constant-time compare) against one or more accepted secrets (rotation),
 * the expected issuer, audience (when configured), the time claims and the longest lifetime;
 * dm_auth_verify_job() also binds it to the job (`jti` == jobId, `sub` == userId), and
 * dm_auth_verify_bound_job() — what a worker in signed mode uses — to the job's content too
 * (`dreamJobSha256`, see dm_jobreq_binding_sha256()) and takes the trust level from the token
 * only (`dreamTrustLevel` required). dm_trust_decide() maps a trust level to what the worker may
 * do.
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
/* The worker's defaults for DREAM_SIGNING_AUDIENCE (NULL: `aud` is not checked) and
 * DREAM_SIGNING_MAX_TTL_S (the longest exp - iat accepted; 0: no limit). dm_auth_config's own
 * defaults (DM_AUTH_CONFIG_INIT) check neither: the worker passes these. */
#define DM_AUTH_DEFAULT_AUDIENCE NULL
#define DM_AUTH_DEFAULT_MAX_TTL_S 86400
/* The claim that binds a token to a job's content: 64 lowercase hex digits. */
#define DM_AUTH_JOB_SHA256_CLAIM "dreamJobSha256"
#define DM_AUTH_SHA256_HEX_LEN 64
/* Longest token accepted (bytes); longer ones are refused before decoding. */
#define DM_AUTH_TOKEN_MAX 8192
/* Longest `sub` / `jti` / `iss` claim kept (bytes, without NUL); longer claims are refused. */
#define DM_AUTH_CLAIM_MAX 255

/* Verification settings. Everything is borrowed for the duration of the call.
 * Initialise with DM_AUTH_CONFIG_INIT, then set secrets. */
struct dm_auth_config {
    const char *const *secrets; /* accepted HS256 secrets (non-empty strings), any one may sign */
    size_t n_secrets;
    const char *issuer;   /* expected `iss`; NULL → DM_AUTH_DEFAULT_ISSUER */
    int64_t leeway_s;     /* clock skew allowed for exp/nbf/iat, seconds (>= 0) */
    const char *audience; /* required `aud` (a string equal to it, or an array holding it);
                             NULL or "": `aud` is not checked */
    int64_t max_ttl_s;    /* > 0: `iat` is required and exp - iat must be <= max_ttl_s */
};
#define DM_AUTH_CONFIG_INIT                                                                        \
    {                                                                                              \
        NULL, 0, DM_AUTH_DEFAULT_ISSUER, DM_AUTH_DEFAULT_LEEWAY_S, NULL, 0                         \
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
    char job_sha256[DM_AUTH_SHA256_HEX_LEN + 1]; /* `dreamJobSha256`; "" when absent */
};

/* Verifies token (len bytes, need not be NUL-terminated) at time now_s (seconds since the
 * epoch; the caller passes the clock so tests can pin it). Order of checks: size and shape
 * (three base64url segments), header (`alg` exactly "HS256", `typ` "JWT" if present, no
 * `crit`), then the signature against every secret (constant time), and only then the payload:
 * `iss` required and equal to cfg->issuer, `exp` required (now > exp + leeway → expired), `nbf`
 * (now + leeway < nbf → not yet valid), `iat` (iat > now + leeway → refused), `sub` and `jti`
 * required non-empty strings, `dreamTrustLevel` optional (if present, a valid trust level),
 * `dreamJobSha256` optional (if present, 64 lowercase hex digits). When cfg->max_ttl_s > 0:
 * `iat` required ("token: iat required (token lifetime is capped)") and exp - iat <= max_ttl_s
 * ("token: lifetime (exp - iat) longer than N s"). When cfg->audience is set: `aud` required
 * ("token: aud missing"), a string equal to it or an array of strings holding it ("token: aud
 * does not name this worker"). Numeric dates must be finite JSON numbers.
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

/* What a signed job's token must name (borrowed strings). */
struct dm_auth_binding {
    const char *job_id;     /* `jti` */
    const char *user_id;    /* `sub` */
    const char *job_sha256; /* `dreamJobSha256`: dm_jobreq_binding_sha256() of the job */
};

/* What a worker in signed mode checks: dm_auth_verify_job() (jti, sub), then
 * `dreamJobSha256` must be present ("token: dreamJobSha256 missing (the token must bind the
 * job)") and equal b->job_sha256 ("token: dreamJobSha256 does not match the job"), and
 * `dreamTrustLevel` must be present ("token: dreamTrustLevel missing (a signed job takes its
 * trust level from its token)"); all DM_ERR_AUTH. out as dm_auth_verify(). */
int dm_auth_verify_bound_job(struct dm_auth_claims *out, const char *token, size_t len,
                             const struct dm_auth_config *cfg, const struct dm_auth_binding *b,
                             int64_t now_s, struct dm_error *err);

/* Signs payload_json (must be a JSON object; copied verbatim) with header
 * {"alg":"HS256","typ":"JWT"} and secret. *out is a NUL-terminated token the caller frees with
 * free(). For dreamctl and tests. Returns 0, DM_ERR_INVALID (empty secret, payload not a JSON
 * object) or DM_ERR_NOMEM. Any thread. */
int dm_auth_sign_hs256(char **out, const char *payload_json, const char *secret,
                       struct dm_error *err);

#endif
