/* Unit tests for ghjwt: a GitHub App's RS256 JWT, checked independently of the module: the
 * signature is verified with OpenSSL against the public half of a key made here, the parts are
 * decoded by this file's own base64url decoder and the claims read with cJSON. */
#include <criterion/criterion.h>
#include <cjson/cJSON.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <stdlib.h>
#include <string.h>

#include "dream/core/secret.h"
#include "dream/domain/ghjwt.h"

static EVP_PKEY *make_key(int bits, char **pem_out)
{
    EVP_PKEY *k = EVP_RSA_gen((unsigned)bits);
    BIO *b = BIO_new(BIO_s_mem());
    char *data;
    long n;
    cr_assert_not_null(k);
    cr_assert_eq(PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL), 1);
    n = BIO_get_mem_data(b, &data);
    *pem_out = strndup(data, (size_t)n);
    BIO_free(b);
    return k;
}

static int dec(char c)
{
    const char *tab = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const char *p = c ? strchr(tab, c) : NULL;
    return p ? (int)(p - tab) : -1;
}

/* base64url without padding → bytes; returns the length, -1 on a bad character. */
static long b64url_decode(const char *s, size_t n, unsigned char *out)
{
    unsigned v = 0;
    int bits = 0;
    long o = 0;
    for (size_t i = 0; i < n; i++) {
        int d = dec(s[i]);
        if (d < 0) {
            return -1;
        }
        v = v << 6 | (unsigned)d;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(v >> bits & 0xff);
        }
    }
    return o;
}

static EVP_PKEY *shared_key;
static char *shared_pem;

static void setup(void)
{
    shared_key = make_key(2048, &shared_pem);
}

static void teardown(void)
{
    EVP_PKEY_free(shared_key);
    free(shared_pem);
}

TestSuite(ghjwt, .init = setup, .fini = teardown);

Test(ghjwt, signs_rs256_with_iat_exp_and_iss_that_the_public_key_verifies)
{
    struct dm_ghjwt_key *k;
    struct dm_error err = {0};
    char *tok;
    unsigned char part[1024];
    long n;
    const char *d1, *d2;
    cJSON *h, *c;
    EVP_MD_CTX *md = EVP_MD_CTX_new();

    cr_assert_eq(dm_ghjwt_key_load(&k, shared_pem, strlen(shared_pem), &err), 0, "%s", err.msg);
    cr_assert_eq(dm_ghjwt_sign(&tok, k, "123456", 1700000000, &err), 0, "%s", err.msg);
    d1 = strchr(tok, '.');
    d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    cr_assert(d1 && d2 && !strchr(d2 + 1, '.'), "three parts: %s", tok);
    cr_assert_null(strchr(tok, '='), "no padding");

    n = b64url_decode(tok, (size_t)(d1 - tok), part);
    part[n] = 0;
    h = cJSON_Parse((char *)part);
    cr_assert_str_eq(cJSON_GetObjectItem(h, "alg")->valuestring, "RS256");
    cr_assert_str_eq(cJSON_GetObjectItem(h, "typ")->valuestring, "JWT");
    cJSON_Delete(h);

    n = b64url_decode(d1 + 1, (size_t)(d2 - d1 - 1), part);
    part[n] = 0;
    c = cJSON_Parse((char *)part);
    cr_assert_eq((long long)cJSON_GetObjectItem(c, "iat")->valuedouble, 1700000000 - 60);
    cr_assert_eq((long long)cJSON_GetObjectItem(c, "exp")->valuedouble, 1700000000 + 540);
    cr_assert_leq(cJSON_GetObjectItem(c, "exp")->valuedouble, 1700000000 + 600,
                  "GitHub refuses exp more than ten minutes ahead");
    cr_assert_str_eq(cJSON_GetObjectItem(c, "iss")->valuestring, "123456");
    cJSON_Delete(c);

    n = b64url_decode(d2 + 1, strlen(d2 + 1), part);
    cr_assert_eq(n, 256, "a 2048-bit signature");
    cr_assert_eq(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, shared_key), 1);
    cr_assert_eq(EVP_DigestVerify(md, part, (size_t)n, (unsigned char *)tok, (size_t)(d2 - tok)), 1,
                 "the signature covers header.claims");
    /* One changed byte of the signed text fails the check. */
    tok[5] ^= 1;
    cr_assert_eq(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, shared_key), 1);
    cr_assert_neq(EVP_DigestVerify(md, part, (size_t)n, (unsigned char *)tok, (size_t)(d2 - tok)),
                  1);
    EVP_MD_CTX_free(md);
    dm_secret_free(tok);
    dm_ghjwt_key_free(k);
}

Test(ghjwt, a_client_id_is_an_iss_too_and_bad_ids_are_refused)
{
    struct dm_ghjwt_key *k;
    struct dm_error err = {0};
    char *tok = NULL;
    cr_assert_eq(dm_ghjwt_key_load(&k, shared_pem, strlen(shared_pem), &err), 0);
    cr_assert_eq(dm_ghjwt_sign(&tok, k, "Iv1.abc123", 10, &err), 0);
    dm_secret_free(tok);
    cr_assert_eq(dm_ghjwt_sign(&tok, k, "12\"},\"iss\":\"x", 10, &err), DM_ERR_INVALID);
    cr_assert_null(tok);
    cr_assert_eq(dm_ghjwt_sign(&tok, k, "", 10, &err), DM_ERR_INVALID);
    cr_assert_eq(dm_ghjwt_sign(&tok, NULL, "1", 10, &err), DM_ERR_INVALID);
    dm_ghjwt_key_free(k);
}

Test(ghjwt, a_bad_key_is_refused_without_quoting_it)
{
    struct dm_ghjwt_key *k = (void *)1;
    struct dm_error err = {0};
    const char *junk = "-----BEGIN RSA PRIVATE KEY-----\nSECRETSECRETSECRET\n-----END RSA "
                       "PRIVATE KEY-----\n";
    char *small;
    EVP_PKEY *sk;

    cr_assert_eq(dm_ghjwt_key_load(&k, junk, strlen(junk), &err), DM_ERR_INVALID);
    cr_assert_null(k);
    cr_assert_null(strstr(err.msg, "SECRET"), "%s", err.msg);
    cr_assert_eq(dm_ghjwt_key_load(&k, "", 0, &err), DM_ERR_INVALID);
    sk = make_key(1024, &small);
    cr_assert_eq(dm_ghjwt_key_load(&k, small, strlen(small), &err), DM_ERR_INVALID);
    cr_assert(strstr(err.msg, "2048"), "%s", err.msg);
    EVP_PKEY_free(sk);
    free(small);
    /* PKCS#1, as GitHub hands keys out, loads as well as PKCS#8. */
    {
        BIO *b = BIO_new(BIO_s_mem());
        char *data;
        long n;
        cr_assert_eq(PEM_write_bio_PrivateKey_traditional(b, shared_key, NULL, NULL, 0, NULL, NULL),
                     1);
        n = BIO_get_mem_data(b, &data);
        cr_assert(strstr(data, "BEGIN RSA PRIVATE KEY"));
        cr_assert_eq(dm_ghjwt_key_load(&k, data, (size_t)n, &err), 0, "%s", err.msg);
        dm_ghjwt_key_free(k);
        BIO_free(b);
    }
}
