/*
 * sign: timestamped HMAC-SHA256 signatures of callback bodies (see
 * include/dream/domain/sign.h). Pure; any thread.
 */
#include "dream/domain/sign.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* HMAC-SHA256(key, "<t>.<body>") into mac[32]. Returns 0 or -1. */
static int mac_of(unsigned char mac[32], const char *key, size_t keylen, long long t,
                  const void *body, size_t len)
{
    char ts[32];
    int n = snprintf(ts, sizeof(ts), "%lld.", t);
    EVP_MAC *hmac = NULL;
    EVP_MAC_CTX *ctx = NULL;
    OSSL_PARAM params[2];
    size_t maclen = 0;
    int rc = -1;

    if (n <= 0 || (size_t)n >= sizeof(ts)) {
        return -1;
    }
    params[0] = OSSL_PARAM_construct_utf8_string("digest", (char *)"SHA256", 0);
    params[1] = OSSL_PARAM_construct_end();
    hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    ctx = hmac ? EVP_MAC_CTX_new(hmac) : NULL;
    /* A zero-length key is legal for HMAC; OpenSSL wants a non-NULL pointer for it. */
    if (ctx && EVP_MAC_init(ctx, (const unsigned char *)(keylen ? key : ""), keylen, params) &&
        EVP_MAC_update(ctx, (const unsigned char *)ts, (size_t)n) &&
        EVP_MAC_update(ctx, (const unsigned char *)body, len) &&
        EVP_MAC_final(ctx, mac, &maclen, 32) && maclen == 32) {
        rc = 0;
    }
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(hmac);
    return rc;
}

char *dm_callback_sign(char *out, size_t outlen, const char *key, size_t keylen, long long t,
                       const void *body, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char mac[32];
    int n;

    if (t < 0 || mac_of(mac, key, keylen, t, body, len)) {
        return NULL;
    }
    n = snprintf(out, outlen, "t=%lld,v1=", t);
    if (n < 0 || (size_t)n + 64 + 1 > outlen) {
        OPENSSL_cleanse(mac, sizeof(mac));
        return NULL;
    }
    for (unsigned i = 0; i < 32; i++) {
        out[n + 2 * i] = hex[mac[i] >> 4];
        out[n + 2 * i + 1] = hex[mac[i] & 15];
    }
    out[n + 64] = '\0';
    OPENSSL_cleanse(mac, sizeof(mac));
    return out;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

int dm_callback_verify(const char *header, const char *key, size_t keylen, const void *body,
                       size_t len, long long now, long long tolerance_s)
{
    unsigned char want[32];
    long long t = -1;
    int matched = 0;
    const char *p = header;

    if (!header) {
        return -1;
    }
    /* The timestamp first: every v1 is checked against it. */
    while (*p) {
        size_t n = strcspn(p, ",");
        if (n > 2 && p[0] == 't' && p[1] == '=' && t < 0) {
            long long v = 0;
            size_t i;
            for (i = 2; i < n && p[i] >= '0' && p[i] <= '9' && i < 2 + 18; i++) {
                v = v * 10 + (p[i] - '0');
            }
            if (i != n) {
                return -1;
            }
            t = v;
        }
        p += n + (p[n] == ',');
    }
    if (t < 0 || mac_of(want, key, keylen, t, body, len)) {
        return -1;
    }
    for (p = header; *p;) {
        size_t n = strcspn(p, ",");
        if (n == 3 + 64 && !strncmp(p, "v1=", 3)) {
            unsigned char got[32];
            int ok = 1;
            for (int i = 0; i < 32; i++) {
                int hi = hexval(p[3 + 2 * i]);
                int lo = hexval(p[3 + 2 * i + 1]);
                if (hi < 0 || lo < 0) {
                    ok = 0;
                    break;
                }
                got[i] = (unsigned char)(hi << 4 | lo);
            }
            if (ok && CRYPTO_memcmp(got, want, 32) == 0) {
                matched = 1;
            }
        }
        p += n + (p[n] == ',');
    }
    OPENSSL_cleanse(want, sizeof(want));
    if (!matched) {
        return -1;
    }
    if (t > now + tolerance_s || t < now - tolerance_s) {
        return -2;
    }
    return 0;
}
