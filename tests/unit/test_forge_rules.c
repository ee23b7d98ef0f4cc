/* Unit tests for forge_rules: owner/repo names, the pull request title and the body cap. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "dream/domain/forge_rules.h"

/* Characters as GitHub counts them: a 4-byte character counts twice (UTF-16 units). */
static size_t gh_chars(const char *s)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p & 0xC0) != 0x80) {
            n += *p >= 0xF0 ? 2 : 1;
        }
    }
    return n;
}

Test(forge_rules, names)
{
    const char *good[] = {"acme", "todo-api", "a.b_c-D9", "..a", ".github"};
    const char *bad[] = {"", ".", "..", "a/b", "a b", "ä", "a:b", "x\n"};
    char longest[DM_FORGE_NAME_MAX + 2];
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        cr_assert(dm_forge_name_valid(good[i]), "%s", good[i]);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_assert_not(dm_forge_name_valid(bad[i]), "%s", bad[i]);
    }
    cr_assert_not(dm_forge_name_valid(NULL));
    memset(longest, 'a', DM_FORGE_NAME_MAX);
    longest[DM_FORGE_NAME_MAX] = '\0';
    cr_assert(dm_forge_name_valid(longest));
    longest[DM_FORGE_NAME_MAX] = 'a';
    longest[DM_FORGE_NAME_MAX + 1] = '\0';
    cr_assert_not(dm_forge_name_valid(longest));
}

Test(forge_rules, cap_body_cuts_at_character_boundaries)
{
    /* "é" is 2 bytes, one character; "😀" is 4 bytes, two UTF-16 units. */
    char in[4000] = "";
    char *s = dm_forge_cap_body("abc", 10);
    cr_assert_str_eq(s, "abc");
    free(s);
    s = dm_forge_cap_body("0123456789", 10);
    cr_assert_str_eq(s, "0123456789", "exactly the cap is not cut");
    free(s);
    for (int i = 0; i < 300; i++) {
        strcat(in, i % 2 ? "\xc3\xa9" : "\xf0\x9f\x98\x80");
    }
    s = dm_forge_cap_body(in, 200);
    cr_assert_leq(gh_chars(s), 200);
    cr_assert_geq(gh_chars(s), 199, "it keeps as much as fits");
    const char *note = strstr(s, "\n\n_(truncated by dreamd");
    cr_assert_not_null(note);
    cr_assert_neq(((unsigned char)note[-1] & 0xC0), 0xC0, "no dangling lead byte");
    cr_assert_eq(strncmp(s, in, (size_t)(note - s)), 0, "the kept part is the start of the body");
    free(s);
    s = dm_forge_cap_body(NULL, 10);
    cr_assert_str_eq(s, "");
    free(s);
}

Test(forge_rules, long_ascii_body_fits_github)
{
    size_t n = 70000;
    char *big = malloc(n + 1);
    char *s;
    memset(big, 'x', n);
    big[n] = '\0';
    s = dm_forge_cap_body(big, DM_FORGE_BODY_MAX);
    cr_assert_eq(strlen(s), DM_FORGE_BODY_MAX, "cut to exactly the cap, note included");
    cr_assert(strstr(s, "truncated") != NULL);
    free(s);
    free(big);
}

Test(forge_rules, title_prefix_controls_and_cap)
{
    char *t = dm_forge_title("Add a todo API");
    char long_title[600];
    cr_assert_str_eq(t, "[Dream] Add a todo API");
    free(t);
    t = dm_forge_title("[Dream] Already prefixed");
    cr_assert_str_eq(t, "[Dream] Already prefixed", "the prefix is not doubled");
    free(t);
    t = dm_forge_title("two\nlines\tand\x7f");
    cr_assert_str_eq(t, "[Dream] two lines and ");
    free(t);
    memset(long_title, 'y', sizeof(long_title) - 1);
    long_title[sizeof(long_title) - 1] = '\0';
    t = dm_forge_title(long_title);
    cr_assert_eq(strlen(t), DM_FORGE_TITLE_MAX);
    cr_assert_eq(strncmp(t, "[Dream] yyy", 11), 0);
    cr_assert_null(strstr(t, "truncated"), "titles are cut without a note");
    free(t);
}
