/* libFuzzer target for auth: dm_auth_verify() and dm_auth_verify_bound_job() (with an audience
 * and a capped lifetime, as a worker in signed mode runs them) never crash on any token; a token
 * signed with dm_auth_sign_hs256() over a fuzzed payload verifies or is refused by a claim rule,
 * never by the signature, and a bound job it accepts carries exactly the digest asked for and a
 * trust level. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dream/domain/auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const secrets[] = {"fuzz-secret", "older-secret"};
    struct dm_auth_config cfg = DM_AUTH_CONFIG_INIT;
    struct dm_auth_config signed_mode = DM_AUTH_CONFIG_INIT;
    struct dm_auth_binding b = {"j", "u",
                                "7a1cfc31ddc2ad1a6daa6be570e5e9199b127149cb6120c1f21141e5c95b9376"};
    struct dm_auth_claims c;
    struct dm_error err;
    char *payload;
    char *tok = NULL;

    cfg.secrets = secrets;
    cfg.n_secrets = 2;
    (void)dm_auth_verify(&c, (const char *)data, size, &cfg, 1900000000, &err);
    (void)dm_auth_verify_job(&c, (const char *)data, size, &cfg, "j", "u", 1900000000, &err);
    signed_mode.secrets = secrets;
    signed_mode.n_secrets = 2;
    signed_mode.audience = "dreamd";
    signed_mode.max_ttl_s = 86400;
    (void)dm_auth_verify_bound_job(&c, (const char *)data, size, &signed_mode, &b, 1900000000,
                                   &err);

    payload = malloc(size + 1);
    if (!payload) {
        return 0;
    }
    memcpy(payload, data, size);
    payload[size] = '\0';
    if (dm_auth_sign_hs256(&tok, payload, "fuzz-secret", &err) == 0) {
        memset(&c, 0, sizeof(c));
        if (dm_auth_verify_bound_job(&c, tok, strlen(tok), &signed_mode, &b, 1900000000, &err) ==
                0 &&
            (strcmp(c.job_sha256, b.job_sha256) != 0 || !c.trust_set)) {
            abort();
        }
        if (dm_auth_verify(&c, tok, strlen(tok), &cfg, 1900000000, &err) != 0 &&
            (strstr(err.msg, "signature") || strstr(err.msg, "alg") ||
             strstr(err.msg, "malformed (header"))) {
            /* Only tokens over the size cap may fail before the claims. */
            if (strlen(tok) <= DM_AUTH_TOKEN_MAX) {
                abort();
            }
        }
        free(tok);
    }
    free(payload);
    return 0;
}
