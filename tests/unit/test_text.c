/*
 * Unit tests for text: the one UTF-8 validator (strict encoding, text without controls, code
 * point counts), cutting by characters and by bytes, line cleaning, the language-of-path
 * table and fences.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "dream/core/buf.h"
#include "dream/core/error.h"
#include "dream/core/text.h"

Test(text, utf8_strict)
{
    static const struct {
        const char *s;
        size_t len;
        long count; /* -1: invalid */
        size_t bad;
    } cases[] = {
        {"", 0, 0, 0},
        {"abc", 3, 3, 0},
        {"\xc3\xa9t\xc3\xa9", 5, 3, 0}, /* été */
        {"\xe2\x80\xa6", 3, 1, 0},      /* … */
        {"\xf0\x9f\x98\x80", 4, 1, 0},  /* U+1F600 */
        {"\xf4\x8f\xbf\xbf", 4, 1, 0},  /* U+10FFFF */
        {"a\xc0\xaf", 3, -1, 1},        /* overlong '/' */
        {"ab\xe0\x80\xaf", 5, -1, 2},   /* overlong, three bytes */
        {"\xf0\x80\x80\xaf", 4, -1, 0}, /* overlong, four bytes */
        {"x\xed\xa0\x80", 4, -1, 1},    /* surrogate U+D800 */
        {"\xf4\x90\x80\x80", 4, -1, 0}, /* above U+10FFFF */
        {"\xf5\x80\x80\x80", 4, -1, 0}, /* lead byte never valid */
        {"ok\x80", 3, -1, 2},           /* lone continuation */
        {"ok\xe2\x82", 4, -1, 2},       /* cut at the end */
        {"\xc3(", 2, -1, 0},            /* bad continuation */
        {"a\0b", 3, 3, 0},              /* NUL is valid encoding */
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t bad = 999;
        int rc = dm_text_utf8_check(cases[i].s, cases[i].len, &bad);
        cr_expect_eq(dm_text_utf8_count(cases[i].s, cases[i].len), cases[i].count, "case %zu", i);
        cr_expect_eq(rc, cases[i].count < 0 ? DM_ERR_INVALID : 0, "case %zu", i);
        if (cases[i].count < 0) {
            cr_expect_eq(bad, cases[i].bad, "case %zu: offset %zu", i, bad);
        }
    }
    cr_expect_eq(dm_text_utf8_check("\xff", 1, NULL), DM_ERR_INVALID);
}

Test(text, text_check_refuses_controls)
{
    size_t bad = 0;

    cr_expect_eq(dm_text_check("a\tb\nc\fd\r\n", 9, NULL), 0);
    cr_expect_eq(dm_text_check("ab\0", 3, &bad), DM_ERR_INVALID);
    cr_expect_eq(bad, 2);
    cr_expect_eq(dm_text_check("a\x1b[0m", 5, &bad), DM_ERR_INVALID);
    cr_expect_eq(bad, 1);
    cr_expect_eq(dm_text_check("\xc3\xa9\x7f", 3, &bad), DM_ERR_INVALID);
    cr_expect_eq(bad, 2);
    cr_expect_eq(dm_text_check("\xc3\xa9\xc0\x80", 4, &bad), DM_ERR_INVALID);
    cr_expect_eq(bad, 2);
}

Test(text, cut_by_chars_and_bytes)
{
    const char s[] = "a\xc3\xa9\xe2\x80\xa6\xf0\x9f\x98\x80"; /* a é … 😀: 1+2+3+4 bytes */
    size_t len = strlen(s);
    struct dm_buf b;

    cr_expect_eq(dm_text_prefix_chars(s, len, 0), 0);
    cr_expect_eq(dm_text_prefix_chars(s, len, 2), 3);
    cr_expect_eq(dm_text_prefix_chars(s, len, 3), 6);
    cr_expect_eq(dm_text_prefix_chars(s, len, 99), len);
    /* Invalid bytes count one each, so a cut always makes progress. */
    cr_expect_eq(dm_text_prefix_chars("\x80\x80\x80", 3, 2), 2);

    cr_expect_eq(dm_text_cut(s, len, len), len);
    cr_expect_eq(dm_text_cut(s, len, 2), 1); /* never half of é */
    cr_expect_eq(dm_text_cut(s, len, 5), 3);
    cr_expect_eq(dm_text_cut(s, len, 9), 6);
    cr_expect_eq(dm_text_cut("\x80\x80\x80\x80\x80", 5, 4), 1); /* backs off at most three */

    dm_buf_init(&b, 0);
    cr_assert_eq(dm_text_put_chars(&b, s, len, 2), 0);
    cr_expect_str_eq(b.data, "a\xc3\xa9" DM_TEXT_ELLIPSIS);
    dm_buf_reset(&b);
    cr_assert_eq(dm_text_put_chars(&b, s, len, 4), 0);
    cr_expect_str_eq(b.data, s);
    dm_buf_reset(&b);
    /* put_cut keeps the ellipsis inside the byte cap. */
    cr_assert_eq(dm_text_put_cut(&b, s, len, 7), 0);
    cr_expect_str_eq(b.data, "a\xc3\xa9" DM_TEXT_ELLIPSIS);
    cr_expect_leq(b.len, 7);
    dm_buf_reset(&b);
    cr_assert_eq(dm_text_put_cut(&b, s, len, len), 0);
    cr_expect_str_eq(b.data, s);
    dm_buf_free(&b);
}

Test(text, clean_line)
{
    static const struct {
        const char *in;
        size_t max;
        const char *out;
    } cases[] = {
        {"  one\n\ttwo  three \r\n", 100, "one two three"},
        {"\x01\x02 \x7f", 100, ""},
        {"", 100, ""},
        {"abcdefghij", 10, "abcdefghij"},
        {"abcdefghijk", 10, "abcdefg" DM_TEXT_ELLIPSIS},
        {"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", 7, "\xc3\xa9\xc3\xa9" DM_TEXT_ELLIPSIS},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *line = dm_text_clean_line(cases[i].in, cases[i].max);
        cr_assert_not_null(line);
        cr_expect_str_eq(line, cases[i].out, "case %zu", i);
        free(line);
    }
}

Test(text, lang_of_one_table)
{
    static const struct {
        const char *path;
        const char *fence;
        enum dm_text_comments comments;
    } cases[] = {
        {"src/routes/a.ts", "ts", DM_TEXT_COMMENTS_CLIKE},
        {"src/components/A.tsx", "tsx", DM_TEXT_COMMENTS_CLIKE},
        {"src/x.d.ts", "ts", DM_TEXT_COMMENTS_CLIKE},
        {"SRC/A.TS", "ts", DM_TEXT_COMMENTS_CLIKE},
        {"lib/a.js", "js", DM_TEXT_COMMENTS_CLIKE},
        {"lib/a.mjs", "", DM_TEXT_COMMENTS_CLIKE},
        {"migrations/0001.sql", "sql", DM_TEXT_COMMENTS_SQL},
        {"package.json", "json", DM_TEXT_COMMENTS_NONE},
        {"docs/README.md", "markdown", DM_TEXT_COMMENTS_NONE},
        {"public/index.html", "html", DM_TEXT_COMMENTS_NONE},
        {"public/site.css", "css", DM_TEXT_COMMENTS_CLIKE},
        {".github/workflows/ci.yml", "", DM_TEXT_COMMENTS_HASH},
        {"scripts/x.py", "", DM_TEXT_COMMENTS_HASH},
        {"Dockerfile", "", DM_TEXT_COMMENTS_HASH},
        {"build/Makefile", "", DM_TEXT_COMMENTS_HASH},
        {".env", "", DM_TEXT_COMMENTS_HASH},
        {"app/.env.local", "", DM_TEXT_COMMENTS_HASH},
        {"app/.env.ts", "ts", DM_TEXT_COMMENTS_HASH}, /* .env* names win the syntax */
        {"LICENSE", "", DM_TEXT_COMMENTS_NONE},
        {".bashrc", "", DM_TEXT_COMMENTS_NONE},
        {"src/.ts", "", DM_TEXT_COMMENTS_NONE},
        {"a.ts/b", "", DM_TEXT_COMMENTS_NONE},
        {"", "", DM_TEXT_COMMENTS_NONE},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct dm_text_lang l = dm_text_lang_of(cases[i].path);
        cr_expect_str_eq(l.fence_info, cases[i].fence, "%s", cases[i].path);
        cr_expect_eq(l.comments, cases[i].comments, "%s", cases[i].path);
    }
    cr_expect_str_eq(dm_text_lang_of(NULL).fence_info, "");
}

Test(text, fences_nothing_inside_can_close)
{
    struct dm_buf b;
    const char ticks[] = "a ```` b";

    cr_expect_eq(dm_text_fence_len("", 0), 3);
    cr_expect_eq(dm_text_fence_len("``", 2), 3);
    cr_expect_eq(dm_text_fence_len("```", 3), 4);
    cr_expect_eq(dm_text_fence_len(ticks, strlen(ticks)), 5);

    dm_buf_init(&b, 0);
    cr_assert_eq(dm_text_put_fenced(&b, 0, "ts", "x\n", 2), 0);
    cr_expect_str_eq(b.data, "```ts\nx\n```");
    dm_buf_reset(&b);
    cr_assert_eq(dm_text_put_fenced(&b, 0, "", ticks, strlen(ticks)), 0);
    cr_expect_str_eq(b.data, "`````\na ```` b\n`````");
    dm_buf_reset(&b);
    /* A part of a text keeps the fence computed over the whole. */
    cr_assert_eq(dm_text_put_fenced(&b, 5, NULL, "a", 1), 0);
    cr_expect_str_eq(b.data, "`````\na\n`````");
    dm_buf_reset(&b);
    cr_assert_eq(dm_text_put_fenced(&b, 0, "sql", "", 0), 0);
    cr_expect_str_eq(b.data, "```sql\n\n```");
    dm_buf_free(&b);
}

Test(text, split_list_trims_skips_empties_and_caps)
{
    char buf[] = " a ,\tb-two\t,, ,c,d";
    const char *out[3];

    cr_assert_eq(dm_text_split_list(buf, out, 3), 3);
    cr_assert_str_eq(out[0], "a");
    cr_assert_str_eq(out[1], "b-two");
    cr_assert_str_eq(out[2], "c");
    char none[] = " , ,";
    cr_assert_eq(dm_text_split_list(none, out, 3), 0);
    char empty[] = "";
    cr_assert_eq(dm_text_split_list(empty, out, 3), 0);
}
