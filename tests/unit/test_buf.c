/* Unit tests for buf and error. */
#include <criterion/criterion.h>
#include <string.h>

#include "dream/core/buf.h"
#include "dream/core/error.h"

Test(buf, appends_and_terminates)
{
    struct dm_buf b;
    dm_buf_init(&b, 0);
    cr_assert_eq(dm_buf_puts(&b, "hello"), 0);
    cr_assert_eq(dm_buf_printf(&b, " %d", 42), 0);
    cr_assert_str_eq(b.data, "hello 42");
    cr_assert_eq(b.len, 8);
    dm_buf_consume(&b, 6);
    cr_assert_str_eq(b.data, "42");
    dm_buf_free(&b);
}

Test(buf, refuses_past_limit)
{
    struct dm_buf b;
    dm_buf_init(&b, 8);
    cr_assert_eq(dm_buf_puts(&b, "12345678"), 0);
    cr_assert_eq(dm_buf_puts(&b, "9"), DM_ERR_LIMIT);
    cr_assert_eq(dm_buf_printf(&b, "%s", "x"), DM_ERR_LIMIT);
    cr_assert_eq(b.len, 8);
    cr_assert_str_eq(b.data, "12345678");
    dm_buf_free(&b);
}

Test(buf, detach_empty_is_empty_string)
{
    struct dm_buf b;
    dm_buf_init(&b, 0);
    char *s = dm_buf_detach(&b);
    cr_assert_str_eq(s, "");
    free(s);
}

Test(error, set_and_wrap)
{
    struct dm_error err;
    dm_error_clear(&err);
    cr_assert_eq(dm_error_set(&err, DM_ERR_BUDGET, "spent %d", 3), DM_ERR_BUDGET);
    dm_error_wrap(&err, "job %s", "j1");
    cr_assert_str_eq(err.msg, "job j1: spent 3");
    cr_assert_str_eq(dm_err_name(err.code), "budget");
}
