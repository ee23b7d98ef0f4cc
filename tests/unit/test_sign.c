/* Unit tests for sign: the X-Dream-Signature of callback bodies (HMAC-SHA256, hex). */
#include <criterion/criterion.h>
#include <string.h>

#include "dream/domain/sign.h"

Test(sign, matches_known_vectors)
{
    char out[DM_CALLBACK_SIG_LEN];
    const char *body = "The quick brown fox jumps over the lazy dog";
    cr_assert_eq(dm_callback_sign(out, sizeof(out), "key", 3, body, strlen(body)), out);
    cr_assert_str_eq(out,
                     "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8");
    /* RFC 4231 test case 2. */
    cr_assert_not_null(
        dm_callback_sign(out, sizeof(out), "Jefe", 4, "what do ya want for nothing?", 28));
    cr_assert_str_eq(out,
                     "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

Test(sign, the_whole_body_and_key_count)
{
    char a[DM_CALLBACK_SIG_LEN], b[DM_CALLBACK_SIG_LEN];
    const char body[] = "{\"jobId\":\"j\",\"seq\":1}\0tail";
    cr_assert_not_null(dm_callback_sign(a, sizeof(a), "k", 1, body, sizeof(body) - 1));
    cr_assert_not_null(dm_callback_sign(b, sizeof(b), "k", 1, body, strlen(body)));
    cr_assert_str_neq(a, b, "bytes after a NUL are signed too");
    cr_assert_not_null(dm_callback_sign(b, sizeof(b), "K", 1, body, sizeof(body) - 1));
    cr_assert_str_neq(a, b, "the key matters");
}

Test(sign, refuses_a_short_buffer)
{
    char out[DM_CALLBACK_SIG_LEN];
    cr_assert_null(dm_callback_sign(out, 20, "key", 3, "x", 1));
    cr_assert_null(dm_callback_sign(out, DM_CALLBACK_SIG_LEN - 1, "key", 3, "x", 1));
    cr_assert_not_null(dm_callback_sign(out, DM_CALLBACK_SIG_LEN, "key", 3, "x", 1));
    cr_assert_eq(strlen(out), DM_CALLBACK_SIG_LEN - 1);
}
