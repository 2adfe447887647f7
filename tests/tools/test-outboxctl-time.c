/*
 * test-outboxctl-time.c - unit tests of outboxctl's time module: durations (units,
 * components, errors), points in time (RFC 3339 with zones and fractions, bare dates,
 * "now", durations ago, errors) and the printed forms (RFC 3339, ages, durations).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "outboxctl-time.h"

static int64_t dur(const char *s)
{
    int64_t ms = -1;
    char err[256];
    assert_int_equal(ctl_duration_parse(s, &ms, err, sizeof err), 0);
    return ms;
}

static void dur_bad(const char *s, const char *needle)
{
    int64_t ms = 42;
    char err[256] = "";
    assert_int_equal(ctl_duration_parse(s, &ms, err, sizeof err), -1);
    assert_non_null(strstr(err, needle));
    assert_int_equal(ms, 42);
}

static void test_durations(void **state)
{
    (void)state;
    assert_int_equal(dur("0"), 0);
    assert_int_equal(dur("500ms"), 500);
    assert_int_equal(dur("90s"), 90000);
    assert_int_equal(dur("30m"), 1800000);
    assert_int_equal(dur("1h"), 3600000);
    assert_int_equal(dur("1h30m"), 5400000);
    assert_int_equal(dur("1.5h"), 5400000);
    assert_int_equal(dur("7d"), 7 * 86400000LL);
    assert_int_equal(dur("2w"), 14 * 86400000LL);
    assert_int_equal(dur("1d2h3m4s5ms"), 86400000LL + 7200000 + 180000 + 4000 + 5);
    dur_bad("15", "missing unit");
    dur_bad("1x", "unknown unit \"x\"");
    dur_bad("", "empty");
    dur_bad("h", "expected a number");
    dur_bad("-5m", "expected a number");
    dur_bad("99999999999999999999d", "invalid duration");
    dur_bad("1y", "unknown unit \"y\"");
}

static void test_times(void **state)
{
    (void)state;
    char err[256];
    int64_t t, now = 1764151200000; /* 2025-11-26T10:00:00Z */
    assert_int_equal(ctl_time_parse("2024-06-09T12:00:00Z", now, &t, err, sizeof err), 0);
    assert_int_equal(t, 1717934400000LL);
    assert_int_equal(ctl_time_parse("2024-06-09T08:00:00-04:00", now, &t, err, sizeof err), 0);
    assert_int_equal(t, 1717934400000LL);
    assert_int_equal(ctl_time_parse("2024-06-09t12:00:00.25z", now, &t, err, sizeof err), 0);
    assert_int_equal(t, 1717934400250LL);
    assert_int_equal(ctl_time_parse("2024-06-09", now, &t, err, sizeof err), 0);
    assert_int_equal(t, 1717891200000LL);
    assert_int_equal(ctl_time_parse("now", now, &t, err, sizeof err), 0);
    assert_int_equal(t, now);
    assert_int_equal(ctl_time_parse("1h", now, &t, err, sizeof err), 0);
    assert_int_equal(t, now - 3600000);
    assert_int_equal(ctl_time_parse("7d", now, &t, err, sizeof err), 0);
    assert_int_equal(t, now - 7 * 86400000LL);
    assert_int_equal(ctl_time_parse("2024-06-09T12:00", now, &t, err, sizeof err), -1);
    assert_non_null(strstr(err, "no time zone"));
    assert_int_equal(ctl_time_parse("2024-02-30T12:00:00Z", now, &t, err, sizeof err), -1);
    assert_non_null(strstr(err, "out of range"));
    assert_int_equal(ctl_time_parse("yesterday", now, &t, err, sizeof err), -1);
    assert_non_null(strstr(err, "RFC 3339"));
    assert_int_equal(ctl_time_parse("5 minutes", now, &t, err, sizeof err), -1);
}

static void test_printing(void **state)
{
    (void)state;
    char b[40];
    ctl_time_rfc3339(1717934400250LL, b, sizeof b);
    assert_string_equal(b, "2024-06-09T12:00:00.250Z");
    int64_t now = 1000000000;
    ctl_age(now - 180000, now, b, sizeof b);
    assert_string_equal(b, "3m ago");
    ctl_age(now + 5000, now, b, sizeof b);
    assert_string_equal(b, "in 5s");
    ctl_age(now + 100, now, b, sizeof b);
    assert_string_equal(b, "now");
    ctl_age(now - (3 * 86400000LL + 4 * 3600000LL + 5000), now, b, sizeof b);
    assert_string_equal(b, "3d4h ago");
    ctl_duration_fmt(120, b, sizeof b);
    assert_string_equal(b, "120ms");
    ctl_duration_fmt(3900000, b, sizeof b);
    assert_string_equal(b, "1h5m");
    ctl_duration_fmt(3600500, b, sizeof b);
    assert_string_equal(b, "1h");
    ctl_duration_fmt(61000, b, sizeof b);
    assert_string_equal(b, "1m1s");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_times),
        cmocka_unit_test(test_printing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
