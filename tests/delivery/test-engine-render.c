/*
 * test-engine-render.c - rendering a template body never holds up other sinks (issue 18):
 * a sink whose template runs to the engine's step cap (a slow render that ends in a dead
 * letter) next to a URL-mode sink. The URL sink must deliver all its events while the
 * slow sink is still rendering; asserted by counts (how many renders had finished when
 * the last URL delivery was counted), never by elapsed time.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <inttypes.h>
#include <stdint.h>

#include <cmocka.h>

#include "engine-fixture.h"

#define N_SLOW 6
#define N_URL  30

/* A comparison per iteration, no output: the step cap ends it (~0.4 s here). */
static const char SLOW_TMPL[] = "{{ range 100000000 }}{{ if eq . -1 }}x{{ end }}{{ end }}";

static int metrics_of(dlv_engine *e, dlv_sink_metrics out[2])
{
    dlv_metrics m;
    if (dlv_engine_metrics(e, &m) != DLV_OK)
        return -1;
    out[0] = m.sinks[0];
    out[1] = m.sinks[1];
    dlv_metrics_free(&m);
    return 0;
}

static void test_slow_template_does_not_stall_url_sink(void **state)
{
    (void)state;
    fx_base b;
    assert_int_equal(fx_base_open(&b, "render"), 0);
    dlv_sink_config sc[2];
    uint32_t id[2];
    obx_error oe;
    char err[512] = "";
    /* the slow sink first: claimed and taken in first */
    fx_sink(&sc[0], "slow", trx_url(b.rx, "/slow"));
    sc[0].max_body_out = 64; /* the step cap is then ~10^7 */
    assert_int_equal(
        dlv_sink_config_set_body(&sc[0], SLOW_TMPL, strlen(SLOW_TMPL), err, sizeof err), DLV_OK);
    fx_sink(&sc[1], "url", trx_url(b.rx, "/url"));
    for (int k = 0; k < 2; k++)
        assert_int_equal(obx_sink_id(b.st, sc[k].name, &id[k], &oe), OBX_OK);
    for (int i = 0; i < N_SLOW; i++)
        assert_true(fx_enqueue(b.st, id[0], FX_BODY) != 0);
    for (int i = 0; i < N_URL; i++)
        assert_true(fx_enqueue(b.st, id[1], FX_BODY) != 0);

    dlv_engine *e = NULL;
    dlv_error de;
    assert_int_equal(dlv_engine_new(b.st, sc, 2, NULL, &e, &de), DLV_OK);
    assert_int_equal(dlv_engine_start(e, &de), DLV_OK);

    /* wait (bounded) for the URL sink's last delivery, then look at the slow sink */
    dlv_sink_metrics m[2];
    int64_t end = trx_mono_ms() + 60000;
    for (;;) {
        assert_int_equal(metrics_of(e, m), 0);
        if (m[1].delivered == N_URL || trx_mono_ms() >= end)
            break;
        fx_sleep_ms(5);
    }
    assert_int_equal(m[1].delivered, N_URL);
    /* the slow sink was still at work: not every render had finished */
    printf("when the URL sink had delivered %d: %" PRIu64 " of %d slow renders done\n", N_URL,
           m[0].render_errors, N_SLOW);
    if (m[0].render_errors >= N_SLOW)
        fail_msg("the URL sink finished only after all %d slow renders", N_SLOW);

    /* and the slow sink ends with every delivery dead, naming the cap */
    end = trx_mono_ms() + 120000;
    for (;;) {
        assert_int_equal(metrics_of(e, m), 0);
        if (m[0].render_errors == N_SLOW || trx_mono_ms() >= end)
            break;
        fx_sleep_ms(20);
    }
    assert_int_equal(m[0].render_errors, N_SLOW);
    assert_int_equal(m[0].dead, N_SLOW);
    dlv_engine_free(e);
    obx_delivery d;
    assert_true(fx_wait_state(b.st, 1, id[0], OBX_STATE_DEAD, 10000, &d));
    /* the render stops at a cap: the step cap or, on a slow machine, the time budget */
    assert_true(strstr(d.reason, "steps") || strstr(d.reason, "budget"));
    obx_delivery_clear(&d);
    for (size_t i = 0; i < trx_count(b.rx); i++)
        assert_string_equal(trx_get(b.rx, i)->path, "/url"); /* nothing slow was sent */
    dlv_sink_config_clear(&sc[0]);
    dlv_sink_config_clear(&sc[1]);
    fx_base_close(&b);
}

/* Stopping while bodies are being rendered: every delivery ends released (pending again) or
 * dead from a finished render; none is left in flight. */
static void test_stop_while_rendering(void **state)
{
    (void)state;
    fx_base b;
    assert_int_equal(fx_base_open(&b, "render-stop"), 0);
    dlv_sink_config sc;
    uint32_t id;
    obx_error oe;
    char err[512] = "";
    fx_sink(&sc, "slow", trx_url(b.rx, "/slow"));
    sc.max_body_out = 64;
    assert_int_equal(dlv_sink_config_set_body(&sc, SLOW_TMPL, strlen(SLOW_TMPL), err, sizeof err),
                     DLV_OK);
    assert_int_equal(obx_sink_id(b.st, "slow", &id, &oe), OBX_OK);
    for (int i = 0; i < N_SLOW; i++)
        assert_true(fx_enqueue(b.st, id, FX_BODY) != 0);
    dlv_engine *e = NULL;
    dlv_error de;
    assert_int_equal(dlv_engine_new(b.st, &sc, 1, NULL, &e, &de), DLV_OK);
    assert_int_equal(dlv_engine_start(e, &de), DLV_OK);
    dlv_metrics m;
    int64_t end = trx_mono_ms() + 30000;
    for (;;) { /* until the jobs are taken (handed to the render worker) */
        assert_int_equal(dlv_engine_metrics(e, &m), DLV_OK);
        uint64_t in_flight = m.sinks[0].in_flight;
        dlv_metrics_free(&m);
        if (in_flight > 0 || trx_mono_ms() >= end)
            break;
        fx_sleep_ms(2);
    }
    dlv_engine_stop(e, 0);
    obx_stats *st = NULL;
    assert_int_equal(obx_stats_get(b.st, &st, &oe), OBX_OK);
    obx_sink_stats ss = st->sinks[0];
    obx_stats_free(st);
    printf("stopped: %" PRIu64 " pending, %" PRIu64 " dead\n", ss.pending, ss.dead);
    assert_int_equal(ss.inflight, 0);
    assert_int_equal(ss.pending + ss.dead, N_SLOW);
    assert_true(ss.pending > 0); /* the stop did not wait for every render */
    dlv_engine_free(e);
    assert_int_equal(trx_count(b.rx), 0);
    dlv_sink_config_clear(&sc);
    fx_base_close(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slow_template_does_not_stall_url_sink),
        cmocka_unit_test(test_stop_while_rendering),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
