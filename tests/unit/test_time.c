/*
 * Unit tests of the shared time parsers (core/log.c): RFC 3339 as the events write it, and the
 * operators' "when" (dreamctl --since/--until, the dashboard's since=).
 */
#include <criterion/criterion.h>

#include "dream/core/log.h"

Test(time, rfc3339_round_trips_what_the_events_write)
{
    char buf[32];
    long long ms = 1796529600123LL;

    cr_assert_eq(dm_time_parse_rfc3339(dm_time_rfc3339(ms, buf, sizeof(buf))), ms, "%s", buf);
    cr_assert_eq(dm_time_parse_rfc3339("2026-12-06T04:00:00Z"), 1796529600000LL);
    cr_assert_eq(dm_time_parse_rfc3339("yesterday"), -1);
    cr_assert_eq(dm_time_parse_rfc3339(NULL), -1);
}

Test(time, when_is_a_duration_back_epoch_ms_or_a_time)
{
    const long long now = 1796529600000LL;
    long long v = 42;

    cr_assert_eq(dm_time_parse_when("90s", now, &v), 0);
    cr_assert_eq(v, now - 90000);
    cr_assert_eq(dm_time_parse_when("15m", now, &v), 0);
    cr_assert_eq(v, now - 900000);
    cr_assert_eq(dm_time_parse_when("1h", now, &v), 0);
    cr_assert_eq(v, now - 3600000);
    cr_assert_eq(dm_time_parse_when("7d", now, &v), 0);
    cr_assert_eq(v, now - 7 * 86400000LL);
    cr_assert_eq(dm_time_parse_when("1796529600000", now, &v), 0);
    cr_assert_eq(v, 1796529600000LL);
    cr_assert_eq(dm_time_parse_when("2026-12-06T03:00:00.000Z", now, &v), 0);
    cr_assert_eq(v, now - 3600000);
}

Test(time, when_refuses_garbage_and_overflow_without_touching_out)
{
    static const char *const bad[] = {"",           "-1h",  "1w",         "1hh",
                                      "h",          "1.5h", "100000001d", "99999999999999999999999",
                                      "2026-13-99T"};
    long long v = 42;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_expect_eq(dm_time_parse_when(bad[i], 1796529600000LL, &v), -1, "%s", bad[i]);
        cr_expect_eq(v, 42, "%s", bad[i]);
    }
    cr_assert_eq(dm_time_parse_when(NULL, 0, &v), -1);
}
