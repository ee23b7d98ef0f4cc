/*
 * intake: what to do with one entry of the jobs stream, decided from its fields alone.
 *
 * A `build` entry is validated (jobreq), its token verified when signing secrets are configured
 * (auth), and its trust level applied (observer is refused). The outcome is BUILD (run it),
 * INVALID (answer with a `failed` event naming the rule: the job has a usable jobId), RESUME
 * (continue a parked job) or DEAD (to the dead-letter stream: nothing is written under the
 * jobId).
 *
 * Signed mode (n_secrets > 0): only an entry whose token is valid, names the job (jti, sub) and
 * binds its content (dreamJobSha256) may write under its jobId. Anything else — no token, a bad
 * token, or a job that does not validate (it cannot be bound) — is DEAD with the reason, so a
 * producer who can XADD but holds no secret can neither pre-fail a future job nor add events to
 * one. The trust level comes only from the token's dreamTrustLevel (the body's trustLevel is
 * ignored). An authentic job may still be INVALID (an observer's). Pure; any thread.
 */
#ifndef DREAM_INTAKE_H
#define DREAM_INTAKE_H

#include <stddef.h>
#include <stdint.h>

#include "dream/domain/jobreq.h"

enum dm_intake_kind {
    DM_INTAKE_BUILD = 0,
    DM_INTAKE_INVALID = 1,
    DM_INTAKE_RESUME = 2,
    DM_INTAKE_DEAD = 3,
};

/* Fields of a stream entry (NULL when absent). Borrowed. */
struct dm_entry_fields {
    const char *type;
    const char *job;
    size_t job_len;
    const char *token;
    size_t token_len;
    const char *id; /* resume entries */
};

struct dm_intake_policy {
    const char *const *secrets; /* HS256 secrets; n_secrets == 0: tokens are not required */
    size_t n_secrets;
    const char *issuer;
    const char *audience; /* required `aud` (NULL or "": not checked); DREAM_SIGNING_AUDIENCE */
    int64_t max_ttl_s;    /* longest exp - iat (0: no limit); DREAM_SIGNING_MAX_TTL_S */
    const char *const *http_hosts; /* callbackUrl hosts allowed over plain http */
    size_t n_http_hosts;
    const char *const *internal_hosts; /* callbackUrl hosts exempt from the address checks */
    size_t n_internal_hosts;
    int64_t now_s; /* clock for token times: now, or when a reclaimed job first started */
};

struct dm_intake {
    enum dm_intake_kind kind;
    char job_id[DM_JOBREQ_ID_MAX + 1]; /* BUILD, INVALID, RESUME; DEAD: the id the entry names
                                          when it has a usable one, for logs only */
    char *job_json;                    /* BUILD: normalised job, trust applied (owned) */
    struct dm_jobreq *req;             /* BUILD: the parsed job (owned) */
    char reason[512];                  /* INVALID and DEAD: field and rule */
};

/* Classifies an entry. Always fills out (kind DEAD with a reason on anything unexpected).
 * Returns 0 or DM_ERR_NOMEM. Free with dm_intake_clear. */
int dm_intake_classify(struct dm_intake *out, const struct dm_entry_fields *f,
                       const struct dm_intake_policy *p);

void dm_intake_clear(struct dm_intake *in);

/* Turns a BUILD into INVALID with reason (the job then fails with it; nothing else changes).
 * No-op for other kinds. */
void dm_intake_refuse(struct dm_intake *in, const char *reason);

struct dm_price_table;

/* With a dollar budget (budget.maxDollars), every model the job will call (models[0..n), NULL
 * and "" skipped) must have a price (dm_price_lookup: the table, the price file, the model list,
 * or a "default" entry), else the budget could not be kept. Without one, tokens count against
 * maxTokens and any model runs. Returns 0, or DM_ERR_INVALID with reason ("budget.maxDollars:
 * no known price for model X: ...") naming the model and the remedy. */
int dm_intake_check_prices(const struct dm_jobreq *req, const struct dm_price_table *prices,
                           const char *const *models, size_t n, char *reason, size_t cap);

#endif
