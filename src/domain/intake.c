/*
 * intake: classification and validation of jobs-stream entries (see include/dream/domain/intake.h).
 * Pure; any thread.
 */
#include "dream/domain/intake.h"
#include "dream/domain/auth.h"
#include "dream/domain/price.h"
#include "dream/core/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void set_reason(struct dm_intake *out, enum dm_intake_kind kind, const char *msg)
{
    out->kind = kind;
    snprintf(out->reason, sizeof(out->reason), "%s", msg);
}

/* Signed mode: verifies the token and binds it to the parsed job. Returns 0 (trust applied to
 * req), DM_ERR_AUTH (reason in err) or DM_ERR_NOMEM. */
static int verify_signed(struct dm_jobreq *req, const struct dm_entry_fields *f,
                         const struct dm_intake_policy *p, struct dm_error *err)
{
    struct dm_auth_config ac = DM_AUTH_CONFIG_INIT;
    struct dm_auth_binding b;
    struct dm_auth_claims claims;
    char sha[DM_AUTH_SHA256_HEX_LEN + 1];
    int rc;

    ac.secrets = p->secrets;
    ac.n_secrets = p->n_secrets;
    if (p->issuer) {
        ac.issuer = p->issuer;
    }
    ac.audience = p->audience;
    ac.max_ttl_s = p->max_ttl_s;
    rc = dm_jobreq_binding_sha256(sha, sizeof(sha), req);
    if (rc) {
        return rc;
    }
    b.job_id = req->job_id;
    b.user_id = req->user_id;
    b.job_sha256 = sha;
    rc = dm_auth_verify_bound_job(&claims, f->token, f->token_len, &ac, &b, p->now_s, err);
    if (rc) {
        /* DM_ERR_INVALID (no usable secret) is a refusal too: nothing is verified. */
        return rc == DM_ERR_NOMEM ? rc : DM_ERR_AUTH;
    }
    req->trust = claims.trust;
    req->trust_set = 1;
    return 0;
}

int dm_intake_classify(struct dm_intake *out, const struct dm_entry_fields *f,
                       const struct dm_intake_policy *p)
{
    struct dm_jobreq_opts opts = DM_JOBREQ_OPTS_INIT;
    struct dm_jobreq *req = NULL;
    struct dm_error err;
    int signed_mode = p->n_secrets > 0;
    int rc;

    memset(out, 0, sizeof(*out));
    if (f->type && strcmp(f->type, "resume") == 0) {
        if (!f->id || !dm_jobreq_id_valid(f->id)) {
            set_reason(out, DM_INTAKE_DEAD, "resume entry without a usable id");
            return 0;
        }
        snprintf(out->job_id, sizeof(out->job_id), "%s", f->id);
        out->kind = DM_INTAKE_RESUME;
        return 0;
    }
    if (f->type && strcmp(f->type, "build") != 0) {
        char msg[160];
        snprintf(msg, sizeof(msg), "unknown entry type '%.64s'", f->type);
        set_reason(out, DM_INTAKE_DEAD, msg);
        return 0;
    }
    if (!f->job) {
        set_reason(out, DM_INTAKE_DEAD, "entry has no job field");
        return 0;
    }
    rc = dm_jobreq_peek_id(out->job_id, sizeof(out->job_id), f->job, f->job_len);
    if (rc) {
        set_reason(out, DM_INTAKE_DEAD,
                   rc == DM_ERR_NOTFOUND ? "jobId: not found (entry is not a job object)"
                                         : "jobId: not a usable id");
        out->job_id[0] = '\0';
        return 0;
    }
    if (signed_mode && !f->token) {
        /* Checked before the body: an unsigned entry never costs a parse. */
        set_reason(out, DM_INTAKE_DEAD, "token: required (jobs must be signed)");
        return 0;
    }
    opts.http_hosts = p->http_hosts;
    opts.n_http_hosts = p->n_http_hosts;
    opts.internal_hosts = p->internal_hosts;
    opts.n_internal_hosts = p->n_internal_hosts;
    opts.trust_optional = f->token != NULL;
    opts.ignore_trust = signed_mode;
    rc = dm_jobreq_parse(&req, f->job, f->job_len, &opts, &err);
    if (rc == DM_ERR_NOMEM) {
        return rc;
    }
    if (rc) {
        /* In signed mode a job that does not validate cannot be bound to a token, so nothing
         * proves who sent it: it may not write under its jobId. */
        set_reason(out, signed_mode ? DM_INTAKE_DEAD : DM_INTAKE_INVALID, err.msg);
        return 0;
    }
    if (strcmp(req->job_id, out->job_id) != 0) {
        /* peek and parse must agree; they do by construction, but never run a job whose
         * events would go under another id. */
        set_reason(out, signed_mode ? DM_INTAKE_DEAD : DM_INTAKE_INVALID, "jobId: ambiguous");
        dm_jobreq_free(req);
        return 0;
    }
    if (signed_mode) {
        rc = verify_signed(req, f, p, &err);
        if (rc == DM_ERR_NOMEM) {
            dm_jobreq_free(req);
            return rc;
        }
        if (rc) {
            set_reason(out, DM_INTAKE_DEAD, err.msg);
            dm_jobreq_free(req);
            return 0;
        }
    } else if (f->token) {
        set_reason(out, DM_INTAKE_INVALID,
                   "token: cannot be verified (no signing secrets configured)");
        dm_jobreq_free(req);
        return 0;
    }
    if (!req->trust_set) {
        set_reason(out, DM_INTAKE_INVALID, "trustLevel: required (in the job or its token)");
        dm_jobreq_free(req);
        return 0;
    }
    if (dm_trust_decide(req->trust, 0) == DM_TRUST_ACTION_REFUSE) {
        set_reason(out, DM_INTAKE_INVALID, "trustLevel: observer may not build");
        dm_jobreq_free(req);
        return 0;
    }
    out->job_json = dm_jobreq_to_json(req);
    if (!out->job_json) {
        dm_jobreq_free(req);
        return DM_ERR_NOMEM;
    }
    out->req = req;
    out->kind = DM_INTAKE_BUILD;
    return 0;
}

void dm_intake_clear(struct dm_intake *in)
{
    free(in->job_json);
    dm_jobreq_free(in->req);
    in->job_json = NULL;
    in->req = NULL;
}

void dm_intake_refuse(struct dm_intake *in, const char *reason)
{
    if (in->kind != DM_INTAKE_BUILD) {
        return;
    }
    dm_intake_clear(in);
    set_reason(in, DM_INTAKE_INVALID, reason);
}

int dm_intake_check_prices(const struct dm_jobreq *req, const struct dm_price_table *prices,
                           const char *const *models, size_t n, char *reason, size_t cap)
{
    struct dm_price p;
    if (!req || req->budget_dollars <= 0 || !prices) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (!models[i] || !*models[i] || dm_price_lookup(prices, models[i], &p, NULL) == 0) {
            continue;
        }
        snprintf(reason, cap,
                 "budget.maxDollars: no known price for model %.200s, so a dollar budget cannot "
                 "be kept; set DREAM_PRICES_FILE with the model or a \"default\" entry, or let "
                 "GET {DREAM_LLM_URL}/models load its price (or send the job without "
                 "budget.maxDollars: tokens then count against maxTokens)",
                 models[i]);
        return DM_ERR_INVALID;
    }
    return 0;
}
