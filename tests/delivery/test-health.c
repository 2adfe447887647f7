/*
 * test-health.c - the breaker's rules (delivery/health.c) on their own: failures of
 * different deliveries in a row open it, retries of one do not, a success resets the
 * run, a dead_letter_on status counts neither way, an ordered sink counts each attempt;
 * probes are spaced by the sink's backoff; give_up_after's reason; and the budget
 * arithmetic that keeps time held (down or paused) from spending a delivery's budget.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "health.h"

static int attempt(dlv__health *h, uint64_t ev, int outcome, int status, int probe, int64_t now)
{
    dlv__decision d = {.outcome = outcome};
    dlv__outcome o = {.status = status, .transport_error = status == 0};
    if (!status)
        strcpy(o.error, "connection refused");
    char why[OBX_SINK_WHY_MAX] = "";
    int t = dlv__health_attempt(h, ev, probe, &d, &o, now, why, sizeof why);
    if (t != DLV__HEALTH_SAME)
        assert_true(why[0]);
    return t;
}

/* What the engine does with a transition: take the state it stored. */
static void store_turn(dlv__health *h, int down, int64_t now)
{
    obx_sink_state st = h->st;
    if (down) {
        st.down = 1;
        st.down_since_ms = now;
        st.held_since_ms = now;
    } else {
        st.held_ms += now - st.held_since_ms;
        st.down = 0;
        st.down_since_ms = st.held_since_ms = 0;
    }
    dlv__health_take(h, &st, now);
}

static void test_counting(void **state)
{
    (void)state;
    dlv_sink_config c;
    dlv_sink_config_init(&c);
    c.breaker.failures = 3;
    int dl[] = {410};
    c.dead_letter_on = dl;
    c.n_dead_letter_on = 1;
    dlv__health h;
    assert_int_equal(dlv__health_init(&h, &c), DLV_OK);
    /* one event retried many times is not an outage */
    for (int i = 0; i < 10; i++)
        assert_int_equal(attempt(&h, 1, OBX_OUTCOME_RETRY, 503, 0, 1000), DLV__HEALTH_SAME);
    assert_int_equal(attempt(&h, 2, OBX_OUTCOME_RETRY, 0, 0, 1000), DLV__HEALTH_SAME);
    /* a success between resets the run */
    assert_int_equal(attempt(&h, 3, OBX_OUTCOME_DELIVERED, 200, 0, 1000), DLV__HEALTH_SAME);
    assert_int_equal(attempt(&h, 4, OBX_OUTCOME_RETRY, 500, 0, 1000), DLV__HEALTH_SAME);
    assert_int_equal(attempt(&h, 5, OBX_OUTCOME_RETRY, 429, 0, 1000), DLV__HEALTH_SAME);
    /* a dead_letter_on status: the receiver answered; neither a failure nor a success */
    assert_int_equal(attempt(&h, 6, OBX_OUTCOME_DEAD, 410, 0, 1000), DLV__HEALTH_SAME);
    /* the third different delivery, dead of its budget, is a failure too */
    assert_int_equal(attempt(&h, 7, OBX_OUTCOME_DEAD, 502, 0, 1000), DLV__HEALTH_DOWN);
    assert_string_equal(h.last_error, "status 502");
    store_turn(&h, 1, 1000);
    assert_true(dlv__health_held(&h));
    /* probes: the first after initial_interval, then spaced by the backoff */
    assert_false(dlv__health_probe_due(&h, 1000 + c.backoff.initial_interval_ms - 1));
    assert_true(dlv__health_probe_due(&h, 1000 + c.backoff.initial_interval_ms));
    h.probing = 1;
    assert_false(dlv__health_probe_due(&h, 99999)); /* one at a time */
    assert_int_equal(attempt(&h, 4, OBX_OUTCOME_RETRY, 0, 1, 2000), DLV__HEALTH_SAME);
    assert_int_equal(h.probing, 0);
    assert_int_equal(h.last_probe, 4);
    assert_int_equal(h.probe_at, 2000 + dlv_backoff_interval(&c.backoff, 1));
    assert_int_equal(attempt(&h, 5, OBX_OUTCOME_RETRY, 0, 1, 3000), DLV__HEALTH_SAME);
    assert_int_equal(h.probe_at, 3000 + dlv_backoff_interval(&c.backoff, 2));
    /* never past give_up_after when it is 0 */
    char reason[DLV_REASON_MAX];
    assert_false(dlv__health_give_up(&h, INT64_MAX / 4, reason, sizeof reason));
    c.breaker.give_up_after_ms = 60000;
    assert_false(dlv__health_give_up(&h, 60999, reason, sizeof reason));
    assert_true(dlv__health_give_up(&h, 61000, reason, sizeof reason));
    assert_string_equal(reason, "sink down for 1m0s, longer than breaker.give_up_after (1m0s); "
                                "last error: connection refused");
    /* a delivered probe brings it up */
    assert_int_equal(attempt(&h, 6, OBX_OUTCOME_DELIVERED, 204, 1, 5000), DLV__HEALTH_UP);
    store_turn(&h, 0, 5000);
    assert_false(dlv__health_held(&h));
    assert_int_equal(h.st.held_ms, 4000);
    /* disabled: never opens */
    c.breaker.enabled = 0;
    for (uint64_t ev = 10; ev < 20; ev++)
        assert_int_equal(attempt(&h, ev, OBX_OUTCOME_RETRY, 503, 0, 6000), DLV__HEALTH_SAME);
    dlv__health_clear(&h);

    /* an ordered sink attempts its head alone: each failed attempt counts */
    c.breaker.enabled = 1;
    c.ordered = 1;
    assert_int_equal(dlv__health_init(&h, &c), DLV_OK);
    assert_int_equal(attempt(&h, 1, OBX_OUTCOME_RETRY, 503, 0, 1000), DLV__HEALTH_SAME);
    assert_int_equal(attempt(&h, 1, OBX_OUTCOME_RETRY, 503, 0, 1000), DLV__HEALTH_SAME);
    assert_int_equal(attempt(&h, 1, OBX_OUTCOME_RETRY, 503, 0, 1000), DLV__HEALTH_DOWN);
    dlv__health_clear(&h);
}

static void test_budget_moves_by_the_time_held(void **state)
{
    (void)state;
    dlv_sink_config c;
    dlv_sink_config_init(&c);
    dlv__health h;
    assert_int_equal(dlv__health_init(&h, &c), DLV_OK);
    /* a first attempt at 10s, budget 4s, while the sink had been held 2s before */
    obx_sink_state st = {.held_ms = 2000};
    dlv__health_take(&h, &st, 10000);
    dlv__decision d = {.first_attempt_ms = 10000, .deadline_ms = 14000};
    dlv__health_decision_to_stored(&h, 10000, &d);
    assert_int_equal(d.first_attempt_ms, 8000); /* on the sink's working clock */
    obx_job j = {.first_attempt_ms = d.first_attempt_ms, .deadline_ms = d.deadline_ms};
    /* 3s later, not held since: 3s of the budget used, the deadline unchanged */
    obx_job w;
    dlv__health_job_to_wall(&h, &j, 13000, &w);
    assert_int_equal(w.first_attempt_ms, 10000);
    assert_int_equal(w.deadline_ms, 14000);
    /* then down from 13s to 100s: afterwards 1s is left, however long the outage was */
    st.held_since_ms = 13000;
    st.down = 1;
    dlv__health_take(&h, &st, 13000);
    dlv__health_job_to_wall(&h, &j, 50000, &w); /* while down, the deadline keeps moving */
    assert_int_equal(w.deadline_ms, 51000);
    st.down = 0;
    st.held_ms = 2000 + 87000;
    st.held_since_ms = 0;
    dlv__health_take(&h, &st, 100000);
    dlv__health_job_to_wall(&h, &j, 100000, &w);
    assert_int_equal(w.deadline_ms, 101000);
    assert_int_equal(w.first_attempt_ms, 97000);
    /* a delivery not attempted yet starts its budget at its first attempt */
    obx_job fresh = {0};
    dlv__health_job_to_wall(&h, &fresh, 100000, &w);
    assert_int_equal(w.first_attempt_ms, 0);
    assert_int_equal(w.deadline_ms, 0);
    dlv__health_clear(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counting),
        cmocka_unit_test(test_budget_moves_by_the_time_held),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
