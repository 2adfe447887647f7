/*
 * tests/delivery/test-backoff.c - the retry policy with a fake clock and a seeded RNG:
 * delays within the jitter bounds, the deadline never exceeded, dead-letter reasons,
 * Retry-After parsing and decisions, outcome classification.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "delivery/backoff.h"

static double fixed_u;
static double fixed_rand(void *ud)
{
    (void)ud;
    return fixed_u;
}

static void test_intervals(void **state)
{
    (void)state;
    dlv_backoff_config c;
    dlv_backoff_config_init(&c);
    assert_int_equal(c.initial_interval_ms, 500);
    assert_int_equal(c.max_interval_ms, 60000);
    assert_int_equal(c.max_elapsed_ms, 15000);
    assert_true(c.multiplier == 1.5 && c.randomization_factor == 0.5);
    assert_int_equal(dlv_backoff_interval(&c, 1), 500);
    assert_int_equal(dlv_backoff_interval(&c, 2), 750);
    assert_int_equal(dlv_backoff_interval(&c, 3), 1125);
    assert_int_equal(dlv_backoff_interval(&c, 0), 500);
    assert_int_equal(dlv_backoff_interval(&c, 12), 43248); /* 500 * 1.5^11 = 43248.78 */
    assert_int_equal(dlv_backoff_interval(&c, 13), 60000); /* capped */
    assert_int_equal(dlv_backoff_interval(&c, 4000000000u), 60000);
    /* jitter extremes with a fixed random source */
    fixed_u = 0.0;
    assert_int_equal(dlv_backoff_delay(&c, 1, fixed_rand, NULL), 250);
    fixed_u = 0.5;
    assert_int_equal(dlv_backoff_delay(&c, 1, fixed_rand, NULL), 500);
    fixed_u = 0.999999999;
    assert_int_equal(dlv_backoff_delay(&c, 1, fixed_rand, NULL), 750);
    fixed_u = 7.0; /* a broken source is clamped */
    assert_int_equal(dlv_backoff_delay(&c, 1, fixed_rand, NULL), 250);
    c.randomization_factor = 0;
    assert_int_equal(dlv_backoff_delay(&c, 2, NULL, NULL), 750);
}

static void test_jitter_bounds_seeded(void **state)
{
    (void)state;
    dlv_backoff_config c;
    dlv_backoff_config_init(&c);
    dlv_rng r;
    dlv_rng_seed(&r, 42);
    int64_t lo_seen = INT64_MAX, hi_seen = 0;
    for (uint32_t k = 1; k <= 20; k++) {
        int64_t i = dlv_backoff_interval(&c, k);
        for (int n = 0; n < 2000; n++) {
            int64_t d = dlv_backoff_delay(&c, k, dlv_rng_unit, &r);
            assert_true(d >= i / 2 && d <= i + i / 2 + 1);
            if (k == 1) {
                lo_seen = d < lo_seen ? d : lo_seen;
                hi_seen = d > hi_seen ? d : hi_seen;
            }
        }
    }
    /* the whole range is used, not just its middle */
    assert_true(lo_seen < 260);
    assert_true(hi_seen > 740);
    /* determinism: the same seed gives the same sequence */
    dlv_rng a, b;
    dlv_rng_seed(&a, 7);
    dlv_rng_seed(&b, 7);
    for (int n = 0; n < 100; n++)
        assert_int_equal(dlv_rng_next_u64(&a), dlv_rng_next_u64(&b));
    double u = dlv_rng_default(NULL);
    assert_true(u >= 0 && u < 1);
}

/* Simulate a delivery that always fails with `status`, on a fake clock where every
 * request takes req_ms; return the number of attempts and check the invariants. */
static uint32_t simulate(const dlv_backoff_config *c, uint64_t seed, int64_t req_ms, int status,
                         dlv_backoff_decision *last)
{
    dlv_rng r;
    dlv_rng_seed(&r, seed);
    const int64_t t0 = 1700000000000;
    int64_t now = t0;
    uint32_t attempts = 0;
    for (;;) {
        attempts++;
        now += req_ms; /* the attempt */
        dlv_attempt_result res = {attempts, t0, status, status ? NULL : "connection refused", -1};
        dlv_backoff_decide(c, &res, now, dlv_rng_unit, &r, last);
        assert_int_equal(last->deadline_ms, t0 + c->max_elapsed_ms);
        if (last->dead)
            return attempts;
        assert_true(last->retry_at_ms <= t0 + c->max_elapsed_ms);
        assert_int_equal(last->retry_at_ms, now + last->delay_ms);
        assert_true(last->delay_ms >= 0);
        assert_string_equal(last->reason, "");
        now = last->retry_at_ms;
        assert_true(attempts < 1000);
    }
}

static void test_deadline_never_exceeded(void **state)
{
    (void)state;
    dlv_backoff_config c;
    dlv_backoff_config_init(&c);
    dlv_backoff_decision d;
    for (uint64_t seed = 1; seed <= 500; seed++) {
        uint32_t n = simulate(&c, seed, (int64_t)(seed % 7) * 100, 503, &d);
        /* 15 s with waits 250..750, 375..1125, ...: between 4 and 12 attempts */
        assert_true(n >= 4 && n <= 12);
        assert_true(d.dead);
        assert_non_null(strstr(d.reason, "attempt(s)"));
        assert_non_null(strstr(d.reason, "max_backoff_duration 15s"));
        assert_non_null(strstr(d.reason, "last status 503"));
    }
    /* a transport error shows up in the reason */
    (void)simulate(&c, 9, 0, 0, &d);
    assert_non_null(strstr(d.reason, "no response, last error: connection refused"));

    /* a long bound with the interval cap: the attempt count follows the cap */
    c.max_elapsed_ms = 3600 * 1000;
    c.randomization_factor = 0;
    uint32_t n = simulate(&c, 1, 0, 500, &d);
    /* sum of 500*1.5^k up to 60 s is ~179 s over 12 waits, then 60 s each:
     * 12 + floor((3600 - 179.7) / 60) = 12 + 57 waits -> 70 attempts */
    assert_int_equal(n, 70);

    /* unbounded (max_elapsed <= 0) never gives up on its own */
    c.max_elapsed_ms = 0;
    dlv_attempt_result res = {500, 0, 500, NULL, -1};
    dlv_backoff_decide(&c, &res, INT64_C(1) << 50, NULL, NULL, &d);
    assert_false(d.dead);
    assert_int_equal(d.delay_ms, 60000);
}

static void test_dead_reason_exact(void **state)
{
    (void)state;
    dlv_backoff_config c;
    dlv_backoff_config_init(&c);
    c.randomization_factor = 0;
    dlv_backoff_decision d;
    /* 14.6 s elapsed, 4 attempts made: next interval 500*1.5^3 = 1687 ms > 400 ms left */
    dlv_attempt_result res = {4, 1000, 502, "Bad Gateway", -1};
    dlv_backoff_decide(&c, &res, 15600, NULL, NULL, &d);
    assert_true(d.dead);
    assert_string_equal(d.reason, "gave up after 4 attempt(s) in 14.6s: the next attempt would "
                                  "fall past max_backoff_duration 15s; last status 502, last "
                                  "error: Bad Gateway");
    /* exactly on the deadline is still allowed */
    dlv_backoff_decide(&c, &res, 16000 - 1687, NULL, NULL, &d);
    assert_false(d.dead);
    assert_int_equal(d.retry_at_ms, 16000);
}

static void test_retry_after_decision(void **state)
{
    (void)state;
    dlv_backoff_config c;
    dlv_backoff_config_init(&c);
    dlv_backoff_decision d;
    /* 429 with RA 3 s, 10 s left: obeyed exactly (no jitter) */
    dlv_attempt_result res = {1, 0, 429, NULL, 3000};
    dlv_backoff_decide(&c, &res, 5000, NULL, NULL, &d);
    assert_false(d.dead);
    assert_int_equal(d.retry_at_ms, 8000);
    /* RA 0 retries at once */
    res.retry_after_ms = 0;
    dlv_backoff_decide(&c, &res, 5000, NULL, NULL, &d);
    assert_false(d.dead);
    assert_int_equal(d.retry_at_ms, 5000);
    /* 503 with RA 120 s: exceeds the budget */
    res.http_status = 503;
    res.retry_after_ms = 120000;
    dlv_backoff_decide(&c, &res, 5000, NULL, NULL, &d);
    assert_true(d.dead);
    assert_string_equal(d.reason, "Retry-After 120 s exceeds the remaining backoff budget (10000 "
                                  "ms left of max_backoff_duration 15s) after 1 attempt(s); last "
                                  "status 503");
    /* RA is ignored on other statuses: normal backoff */
    res.http_status = 500;
    fixed_u = 0.5;
    dlv_backoff_decide(&c, &res, 5000, fixed_rand, NULL, &d);
    assert_false(d.dead);
    assert_int_equal(d.delay_ms, 500);
}

static void test_retry_after_parse(void **state)
{
    (void)state;
    /* 1994-11-06T08:49:37Z = 784111777 */
    const int64_t when = INT64_C(784111777) * 1000;
    int64_t ms = -7;
    assert_int_equal(dlv_retry_after_parse("120", 0, &ms), DLV_OK);
    assert_int_equal(ms, 120000);
    assert_int_equal(dlv_retry_after_parse("  0 ", 0, &ms), DLV_OK);
    assert_int_equal(ms, 0);
    assert_int_equal(dlv_retry_after_parse("Sun, 06 Nov 1994 08:49:37 GMT", when - 5000, &ms),
                     DLV_OK);
    assert_int_equal(ms, 5000);
    assert_int_equal(dlv_retry_after_parse("Sunday, 06-Nov-94 08:49:37 GMT", when - 61000, &ms),
                     DLV_OK);
    assert_int_equal(ms, 61000);
    assert_int_equal(dlv_retry_after_parse("Sun Nov  6 08:49:37 1994", when - 1500, &ms), DLV_OK);
    assert_int_equal(ms, 1500);
    /* a past date is 0 */
    assert_int_equal(dlv_retry_after_parse("Sun, 06 Nov 1994 08:49:37 GMT", when + 99000, &ms),
                     DLV_OK);
    assert_int_equal(ms, 0);
    /* leap day, end of year */
    assert_int_equal(
        dlv_retry_after_parse("Thu, 29 Feb 2024 23:59:59 GMT", INT64_C(1709251199) * 1000, &ms),
        DLV_OK);
    assert_int_equal(ms, 0);
    assert_int_equal(
        dlv_retry_after_parse("Wed, 31 Dec 2025 00:00:10 GMT", INT64_C(1767139200) * 1000, &ms),
        DLV_OK);
    assert_int_equal(ms, 10000);
    ms = -7;
    static const char *const bad[] = {"",
                                      "   ",
                                      "-1",
                                      "1.5",
                                      "12abc",
                                      "soon",
                                      "Sun, 06 Nov 1994 08:49:37 UTC",
                                      "Sun, 06 Foo 1994 08:49:37 GMT",
                                      "Sun, 06 Nov 1994 25:49:37 GMT",
                                      "Xyz, 06 Nov 1994 08:49:37 GMT",
                                      "Sun, 06 Nov 1994 08:49:37 GMT trailing",
                                      NULL};
    for (size_t i = 0; bad[i]; i++) {
        if (dlv_retry_after_parse(bad[i], when, &ms) != DLV_ERR_INVALID)
            fail_msg("accepted %s", bad[i]);
        assert_int_equal(ms, -7);
    }
    assert_int_equal(dlv_retry_after_parse(NULL, when, &ms), DLV_ERR_INVALID);
}

static void test_classify(void **state)
{
    (void)state;
    const int dl[] = {400, 410};
    assert_int_equal(dlv_classify_status(200, dl, 2), DLV_OUTCOME_DELIVERED);
    assert_int_equal(dlv_classify_status(204, dl, 2), DLV_OUTCOME_DELIVERED);
    assert_int_equal(dlv_classify_status(299, NULL, 0), DLV_OUTCOME_DELIVERED);
    assert_int_equal(dlv_classify_status(410, dl, 2), DLV_OUTCOME_DEAD);
    assert_int_equal(dlv_classify_status(400, dl, 2), DLV_OUTCOME_DEAD);
    assert_int_equal(dlv_classify_status(404, dl, 2), DLV_OUTCOME_RETRY);
    assert_int_equal(dlv_classify_status(301, dl, 2), DLV_OUTCOME_RETRY);
    assert_int_equal(dlv_classify_status(501, dl, 2), DLV_OUTCOME_RETRY);
    assert_int_equal(dlv_classify_status(0, dl, 2), DLV_OUTCOME_RETRY);
    assert_int_equal(dlv_classify_status(410, NULL, 0), DLV_OUTCOME_RETRY);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_intervals),
        cmocka_unit_test(test_jitter_bounds_seeded),
        cmocka_unit_test(test_deadline_never_exceeded),
        cmocka_unit_test(test_dead_reason_exact),
        cmocka_unit_test(test_retry_after_decision),
        cmocka_unit_test(test_retry_after_parse),
        cmocka_unit_test(test_classify),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
