/*
 * test-engine-faults.c - the delivery engine when its own bookkeeping fails (needs a build
 * with -Dtest_hooks=true): the queue of results for the committer cannot grow (as when
 * realloc fails), yet no result is dropped: every delivery ends delivered, nothing stays
 * in flight, and the store's invariants hold.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <inttypes.h>
#include <stdint.h>

#include <cmocka.h>

#include "engine-fixture.h"
#include "test-hooks.h"

#define N_EVENTS 60

static void problem(void *ud, const char *p)
{
    (void)ud;
    fprintf(stderr, "obx_check: %s\n", p);
}

/* Wait (bounded) until sink `id` has `want` delivered and nothing pending or in flight. */
static int wait_drained(obx_store *st, uint32_t id, uint64_t want, unsigned timeout_ms,
                        obx_sink_stats *last)
{
    int64_t end = trx_mono_ms() + timeout_ms;
    for (;;) {
        obx_stats *s = NULL;
        obx_error err;
        if (obx_stats_get(st, &s, &err) == OBX_OK) {
            for (size_t i = 0; i < s->n_sinks; i++)
                if (s->sinks[i].id == id)
                    *last = s->sinks[i];
            obx_stats_free(s);
            if (last->delivered == want && last->pending == 0 && last->inflight == 0)
                return 1;
        }
        if (trx_mono_ms() >= end)
            return 0;
        fx_sleep_ms(20);
    }
}

static void test_result_queue_cannot_grow(void **state)
{
    (void)state;
    fx_base b;
    assert_int_equal(fx_base_open(&b, "faults"), 0);
    dlv_sink_config c;
    fx_sink(&c, "hook", trx_url(b.rx, "/hook"));
    c.max_in_flight = 8;
    uint32_t id;
    obx_error oe;
    assert_int_equal(obx_sink_id(b.st, "hook", &id, &oe), OBX_OK);
    for (int i = 0; i < N_EVENTS; i++)
        assert_true(fx_enqueue(b.st, id, FX_BODY) != 0);

    dlv__test_result_queue_max = 2; /* far fewer than the results in flight at once */
    dlv_engine *e = NULL;
    dlv_error de;
    assert_int_equal(dlv_engine_new(b.st, &c, 1, NULL, &e, &de), DLV_OK);
    assert_int_equal(dlv_engine_start(e, &de), DLV_OK);
    obx_sink_stats last = {0};
    int drained = wait_drained(b.st, id, N_EVENTS, 30000, &last);
    dlv_engine_free(e);
    dlv__test_result_queue_max = 0;
    if (!drained)
        fail_msg("not drained: delivered %" PRIu64 ", pending %" PRIu64 ", in flight %" PRIu64,
                 last.delivered, last.pending, last.inflight);
    assert_true(trx_count(b.rx) >= N_EVENTS);
    size_t problems = 99;
    assert_int_equal(obx_check(b.st, problem, NULL, &problems, &oe), OBX_OK);
    assert_int_equal(problems, 0);
    dlv_sink_config_clear(&c);
    fx_base_close(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_result_queue_cannot_grow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
