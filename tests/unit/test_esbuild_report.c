/* Unit tests for esbuild_report: the one-line reason read from esbuild's output. */
#include <criterion/criterion.h>
#include <string.h>

#include "dream/core/buf.h"
#include "dream/domain/esbuild_report.h"

static void fill(struct dm_buf *b, const char *text)
{
    dm_buf_init(b, 0);
    cr_assert_eq(dm_buf_puts(b, text), 0);
}

Test(esbuild_report, first_error_with_its_location)
{
    struct dm_buf b;
    char out[256];
    fill(&b, "\xe2\x9c\x98 [ERROR] Expected \";\" but found \"b\"\n"
             "\n"
             "    src/a.ts:3:6:\n"
             "      3 \xe2\x94\x82 let a b\n"
             "        \xe2\x95\xb5       ^\n"
             "\n"
             "\xe2\x9c\x98 [ERROR] a second error\n"
             "\n"
             "1 error\n");
    cr_assert_eq(dm_esbuild_first_error(&b, out, sizeof(out)), 1);
    cr_assert_str_eq(out, "src/a.ts:3:6: Expected \";\" but found \"b\"");
    dm_buf_free(&b);
}

Test(esbuild_report, message_alone_without_a_location)
{
    struct dm_buf b;
    char out[256];
    fill(&b, "[ERROR] Could not resolve \"x\"  \r\nnot a location line\n");
    cr_assert_eq(dm_esbuild_first_error(&b, out, sizeof(out)), 1);
    cr_assert_str_eq(out, "Could not resolve \"x\"", "trimmed");
    dm_buf_free(&b);
    fill(&b, "[ERROR] last line");
    cr_assert_eq(dm_esbuild_first_error(&b, out, sizeof(out)), 1);
    cr_assert_str_eq(out, "last line");
    dm_buf_free(&b);
    fill(&b, "[ERROR] m\n  a:b:c:\n");
    cr_assert_eq(dm_esbuild_first_error(&b, out, sizeof(out)), 1);
    cr_assert_str_eq(out, "m", "line and column must be numbers");
    dm_buf_free(&b);
}

Test(esbuild_report, no_error_leaves_out_alone)
{
    struct dm_buf b;
    char out[16] = "untouched";
    fill(&b, "warning: something\n");
    cr_assert_eq(dm_esbuild_first_error(&b, out, sizeof(out)), 0);
    cr_assert_str_eq(out, "untouched");
    dm_buf_free(&b);
    dm_buf_init(&b, 0);
    cr_assert_eq(dm_esbuild_first_error(&b, out, sizeof(out)), 0);
    dm_buf_free(&b);
}

Test(esbuild_report, last_line)
{
    struct dm_buf b;
    char out[8];
    fill(&b, "first\n  second one  \n\n \n");
    dm_esbuild_last_line(&b, out, sizeof(out));
    cr_assert_str_eq(out, "second ", "trimmed and cut to the buffer");
    dm_buf_free(&b);
    dm_buf_init(&b, 0);
    dm_esbuild_last_line(&b, out, sizeof(out));
    cr_assert_str_eq(out, "");
    dm_buf_free(&b);
}
