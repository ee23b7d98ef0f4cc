/*
 * ghjwt: a GitHub App's RS256 JWT (see include/dream/domain/ghjwt.h). Pure: OpenSSL EVP signs,
 * its BIO reads the PEM. Every buffer that held the key or a token is wiped before it is freed.
 */
#include "dream/domain/ghjwt.h"
#include "dream/core/secret.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct dm_ghjwt_key {
    EVP_PKEY *pkey;
};

int dm_ghjwt_app_id_valid(const char *app_id)
{
    size_t n = app_id ? strlen(app_id) : 0;
    if (n == 0 || n > 64) {
        return 0;
    }
    for (const char *p = app_id; *p; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '.')) {
            return 0;
        }
    }
    return 1;
}

int dm_ghjwt_key_load(struct dm_ghjwt_key **out, const char *pem, size_t len, struct dm_error *err)
{
    BIO *bio;
    EVP_PKEY *pkey;
    struct dm_ghjwt_key *k;

    *out = NULL;
    if (!pem || len == 0 || len > 65536) {
        return dm_error_set(err, DM_ERR_INVALID, "the GitHub App private key is empty or too long");
    }
    bio = BIO_new_mem_buf(pem, (int)len);
    if (!bio) {
        return dm_error_set(err, DM_ERR_NOMEM, "out of memory");
    }
    /* PEM_read_bio_PrivateKey reads PKCS#1 and PKCS#8 alike; a passphrase is never asked for
     * (the empty callback refuses encrypted keys). */
    pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, (void *)"");
    BIO_free(bio);
    if (!pkey || EVP_PKEY_get_base_id(pkey) != EVP_PKEY_RSA) {
        EVP_PKEY_free(pkey);
        return dm_error_set(err, DM_ERR_INVALID,
                            "the GitHub App private key is not an unencrypted PEM RSA private key");
    }
    if (EVP_PKEY_get_bits(pkey) < 2048) {
        EVP_PKEY_free(pkey);
        return dm_error_set(err, DM_ERR_INVALID,
                            "the GitHub App private key is shorter than 2048 bits");
    }
    k = calloc(1, sizeof(*k));
    if (!k) {
        EVP_PKEY_free(pkey);
        return dm_error_set(err, DM_ERR_NOMEM, "out of memory");
    }
    k->pkey = pkey;
    *out = k;
    return 0;
}

void dm_ghjwt_key_free(struct dm_ghjwt_key *key)
{
    if (key) {
        EVP_PKEY_free(key->pkey); /* OpenSSL clears the private numbers it frees */
        free(key);
    }
}

/* Appends the base64url (no padding) of n bytes to out at *pos; out has room. */
static void b64url(char *out, size_t *pos, const unsigned char *in, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t i = 0, o = *pos;

    for (; i + 3 <= n; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
        out[o++] = tab[v >> 18 & 63];
        out[o++] = tab[v >> 12 & 63];
        out[o++] = tab[v >> 6 & 63];
        out[o++] = tab[v & 63];
    }
    if (n - i == 1) {
        unsigned v = (unsigned)in[i] << 16;
        out[o++] = tab[v >> 18 & 63];
        out[o++] = tab[v >> 12 & 63];
    } else if (n - i == 2) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8;
        out[o++] = tab[v >> 18 & 63];
        out[o++] = tab[v >> 12 & 63];
        out[o++] = tab[v >> 6 & 63];
    }
    out[o] = '\0';
    *pos = o;
}

static size_t b64url_len(size_t n)
{
    return (n / 3) * 4 + (n % 3 ? n % 3 + 1 : 0);
}

int dm_ghjwt_sign(char **out, const struct dm_ghjwt_key *key, const char *app_id, long long now_s,
                  struct dm_error *err)
{
    static const char header[] = "{\"alg\":\"RS256\",\"typ\":\"JWT\"}";
    char claims[160];
    unsigned char *sig = NULL;
    size_t siglen = 0, cap, pos = 0;
    EVP_MD_CTX *md = NULL;
    char *tok;
    int n;

    *out = NULL;
    if (!key || !dm_ghjwt_app_id_valid(app_id)) {
        return dm_error_set(err, DM_ERR_INVALID,
                            "the GitHub App id must be 1..64 letters, digits or dots");
    }
    n = snprintf(claims, sizeof(claims), "{\"iat\":%lld,\"exp\":%lld,\"iss\":\"%s\"}",
                 now_s - DM_GHJWT_IAT_SKEW_S, now_s + DM_GHJWT_TTL_S, app_id);
    if (n < 0 || (size_t)n >= sizeof(claims)) {
        return dm_error_set(err, DM_ERR_INVALID, "the GitHub App id is too long");
    }
    cap = b64url_len(sizeof(header) - 1) + 1 + b64url_len((size_t)n) + 1 +
          b64url_len((size_t)EVP_PKEY_get_size(key->pkey)) + 1;
    tok = malloc(cap);
    if (!tok) {
        return dm_error_set(err, DM_ERR_NOMEM, "out of memory");
    }
    b64url(tok, &pos, (const unsigned char *)header, sizeof(header) - 1);
    tok[pos++] = '.';
    b64url(tok, &pos, (const unsigned char *)claims, (size_t)n);
    md = EVP_MD_CTX_new();
    if (!md || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key->pkey) != 1 ||
        EVP_DigestSign(md, NULL, &siglen, (const unsigned char *)tok, pos) != 1 ||
        !(sig = malloc(siglen)) ||
        EVP_DigestSign(md, sig, &siglen, (const unsigned char *)tok, pos) != 1 ||
        b64url_len(siglen) + pos + 2 > cap) {
        EVP_MD_CTX_free(md);
        free(sig);
        dm_secret_free(tok);
        return dm_error_set(err, DM_ERR_INVALID, "signing the GitHub App token failed");
    }
    EVP_MD_CTX_free(md);
    tok[pos++] = '.';
    b64url(tok, &pos, sig, siglen);
    free(sig);
    *out = tok;
    return 0;
}
