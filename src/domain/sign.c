/*
 * sign: HMAC-SHA256 signatures of callback bodies (see include/dream/domain/sign.h). Pure; any
 * thread.
 */
#include "dream/domain/sign.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <string.h>

char *dm_callback_sign(char *out, size_t outlen, const char *key, size_t keylen, const void *body,
                       size_t len)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;

    if (outlen < DM_CALLBACK_SIG_LEN) {
        return NULL;
    }
    if (!HMAC(EVP_sha256(), key, (int)keylen, body, len, mac, &maclen) || maclen != 32) {
        return NULL;
    }
    memcpy(out, "sha256=", 7);
    for (unsigned i = 0; i < maclen; i++) {
        out[7 + 2 * i] = hex[mac[i] >> 4];
        out[7 + 2 * i + 1] = hex[mac[i] & 15];
    }
    out[7 + 2 * maclen] = '\0';
    return out;
}
