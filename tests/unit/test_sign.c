/* Unit tests for sign: the X-Dream-Signature of callback bodies, "t=<unix>,v1=<hex>" with the
 * HMAC-SHA256 of "<t>.<body>" (checked against OpenSSL's one-shot HMAC over the concatenation,
 * independently of the module's streaming code), and its verification with a tolerance. */
#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#include "dream/domain/sign.h"

static void expected(char *out, size_t outlen, const char *key, long long t, const char *body,
                     size_t len)
{
    char msg[512];
    unsigned char mac[32];
    size_t maclen = 0;
    int n = snprintf(msg, sizeof(msg), "%lld.", t);
    int w;
    memcpy(msg + n, body, len);
    cr_assert_not_null(EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key, strlen(key),
                                 (unsigned char *)msg, (size_t)n + len, mac, sizeof(mac), &maclen));
    w = snprintf(out, outlen, "t=%lld,v1=", t);
    for (size_t i = 0; i < maclen; i++) {
        w += snprintf(out + w, outlen - (size_t)w, "%02x", mac[i]);
    }
}

Test(sign, timestamp_dot_body_is_signed)
{
    char out[DM_CALLBACK_SIG_LEN], want[DM_CALLBACK_SIG_LEN];
    const char *body = "{\"jobId\":\"j\",\"seq\":1}";
    cr_assert_eq(dm_callback_sign(out, sizeof(out), "key", 3, 1700000000, body, strlen(body)), out);
    expected(want, sizeof(want), "key", 1700000000, body, strlen(body));
    cr_assert_str_eq(out, want);
    cr_assert_eq(strncmp(out, "t=1700000000,v1=", 16), 0, "%s", out);
    cr_assert_eq(strlen(out), 16 + 64);
    /* RFC 4231 test case 2's key and text, with a timestamp in front: a known vector. */
    cr_assert_not_null(dm_callback_sign(out, sizeof(out), "Jefe", 4, 0, "what", 4));
    expected(want, sizeof(want), "Jefe", 0, "what", 4);
    cr_assert_str_eq(out, want);
}

Test(sign, the_whole_body_the_time_and_the_key_count)
{
    char a[DM_CALLBACK_SIG_LEN], b[DM_CALLBACK_SIG_LEN];
    const char body[] = "{\"jobId\":\"j\",\"seq\":1}\0tail";
    cr_assert_not_null(dm_callback_sign(a, sizeof(a), "k", 1, 5, body, sizeof(body) - 1));
    cr_assert_not_null(dm_callback_sign(b, sizeof(b), "k", 1, 5, body, strlen(body)));
    cr_assert_str_neq(a + 4, b + 4, "bytes after a NUL are signed too");
    cr_assert_not_null(dm_callback_sign(b, sizeof(b), "K", 1, 5, body, sizeof(body) - 1));
    cr_assert_str_neq(a, b, "the key matters");
    cr_assert_not_null(dm_callback_sign(b, sizeof(b), "k", 1, 6, body, sizeof(body) - 1));
    cr_assert_str_neq(a + 4, b + 4, "the timestamp is signed");
}

Test(sign, refuses_a_short_buffer_and_a_negative_time)
{
    char out[DM_CALLBACK_SIG_LEN];
    cr_assert_null(dm_callback_sign(out, 20, "key", 3, 1, "x", 1));
    cr_assert_null(dm_callback_sign(out, strlen("t=1,v1=") + 64, "key", 3, 1, "x", 1));
    cr_assert_not_null(dm_callback_sign(out, strlen("t=1,v1=") + 65, "key", 3, 1, "x", 1));
    cr_assert_null(dm_callback_sign(out, sizeof(out), "key", 3, -1, "x", 1));
    cr_assert_not_null(dm_callback_sign(out, sizeof(out), "key", 3, 9223372036854775807LL, "x", 1));
    cr_assert_lt(strlen(out), DM_CALLBACK_SIG_LEN);
}

Test(sign, verify_checks_signature_and_tolerance)
{
    char sig[DM_CALLBACK_SIG_LEN], two[2 * DM_CALLBACK_SIG_LEN];
    const char *body = "{\"seq\":3}";
    size_t len = strlen(body);
    cr_assert_not_null(dm_callback_sign(sig, sizeof(sig), "k", 1, 1000, body, len));
    cr_assert_eq(dm_callback_verify(sig, "k", 1, body, len, 1000, 300), 0);
    cr_assert_eq(dm_callback_verify(sig, "k", 1, body, len, 1300, 300), 0);
    cr_assert_eq(dm_callback_verify(sig, "k", 1, body, len, 1301, 300), -2, "too old");
    cr_assert_eq(dm_callback_verify(sig, "k", 1, body, len, 699, 300), -2, "from the future");
    cr_assert_eq(dm_callback_verify(sig, "x", 1, body, len, 1000, 300), -1, "wrong key");
    cr_assert_eq(dm_callback_verify(sig, "k", 1, "{\"seq\":4}", len, 1000, 300), -1, "body");
    /* A replay with a fresh timestamp but the old MAC fails. */
    memcpy(sig, "t=1001", 6);
    cr_assert_eq(dm_callback_verify(sig, "k", 1, body, len, 1000, 300), -1);
    cr_assert_eq(dm_callback_verify("garbage", "k", 1, body, len, 1000, 300), -1);
    cr_assert_eq(dm_callback_verify("t=1000", "k", 1, body, len, 1000, 300), -1);
    cr_assert_eq(dm_callback_verify("v1=00", "k", 1, body, len, 1000, 300), -1);
    /* Several v1 values (a key rotation): one match is enough. */
    cr_assert_not_null(dm_callback_sign(sig, sizeof(sig), "k", 1, 1000, body, len));
    snprintf(two, sizeof(two), "t=1000,v1=%064d,%s", 0, sig + strlen("t=1000,"));
    cr_assert_eq(dm_callback_verify(two, "k", 1, body, len, 1000, 300), 0, "%s", two);
}
