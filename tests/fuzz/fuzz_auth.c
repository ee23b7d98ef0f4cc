/* libFuzzer target for auth: dm_auth_verify() never crashes on any token; a token signed with
 * dm_auth_sign_hs256() over a fuzzed payload verifies or is refused by a claim rule, never by
 * the signature. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dream/domain/auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const secrets[] = {"fuzz-secret", "older-secret"};
    struct dm_auth_config cfg = DM_AUTH_CONFIG_INIT;
    struct dm_auth_claims c;
    struct dm_error err;
    char *payload;
    char *tok = NULL;

    cfg.secrets = secrets;
    cfg.n_secrets = 2;
    (void)dm_auth_verify(&c, (const char *)data, size, &cfg, 1900000000, &err);
    (void)dm_auth_verify_job(&c, (const char *)data, size, &cfg, "j", "u", 1900000000, &err);

    payload = malloc(size + 1);
    if (!payload) {
        return 0;
    }
    memcpy(payload, data, size);
    payload[size] = '\0';
    if (dm_auth_sign_hs256(&tok, payload, "fuzz-secret", &err) == 0) {
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
