/*
 * test-outage.c - the store's unavailable stretches (delivery/outage.c): what a delivery
 * waiting since a given time overlaps of them (closed and open stretches, partial
 * overlaps, repeated notes), and the ring dropping the oldest stretch when full.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "outage.h"

static void overlap_of_stretches(void **state)
{
    (void)state;
    dlv__outage o;
    memset(&o, 0, sizeof o);
    assert_int_equal(dlv__outage_overlap(&o, 0, 10000), 0);
    dlv__outage_note(&o, 0, 500); /* available: nothing */
    dlv__outage_note(&o, 1, 1000);
    dlv__outage_note(&o, 1, 1500); /* still down: the stretch starts at 1000 */
    assert_int_equal(dlv__outage_overlap(&o, 0, 3000), 2000);   /* open, up to now */
    assert_int_equal(dlv__outage_overlap(&o, 2500, 3000), 500); /* fell due while down */
    dlv__outage_note(&o, 0, 4000);
    assert_int_equal(dlv__outage_overlap(&o, 0, 9000), 3000);
    assert_int_equal(dlv__outage_overlap(&o, 3500, 9000), 500);
    assert_int_equal(dlv__outage_overlap(&o, 4000, 9000), 0); /* due after it: nothing */
    dlv__outage_note(&o, 1, 6000);
    dlv__outage_note(&o, 0, 7000);
    assert_int_equal(dlv__outage_overlap(&o, 2000, 9000), 3000);
}

static void ring_drops_oldest(void **state)
{
    (void)state;
    dlv__outage o;
    memset(&o, 0, sizeof o);
    for (int64_t i = 0; i < DLV__OUTAGE_MAX + 2; i++) {
        dlv__outage_note(&o, 1, 1000 * (i + 1));
        dlv__outage_note(&o, 0, 1000 * (i + 1) + 100);
    }
    /* the first two stretches (1000.., 2000..) are gone, the rest count 100 each */
    assert_int_equal(dlv__outage_overlap(&o, 0, INT64_MAX / 2), 100 * DLV__OUTAGE_MAX);
    assert_int_equal(dlv__outage_overlap(&o, 3000, 3100), 100);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(overlap_of_stretches),
        cmocka_unit_test(ring_drops_oldest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
