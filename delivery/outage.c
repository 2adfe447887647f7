/*
 * outage.c - the store's unavailable stretches and their overlap with a delivery's wait
 * (see outage.h for the rule).
 */
#include "outage.h"

void dlv__outage_note(dlv__outage *o, int down, int64_t now_ms)
{
    if (down) {
        if (!o->down_since)
            o->down_since = now_ms > 0 ? now_ms : 1;
        return;
    }
    if (!o->down_since)
        return;
    unsigned k;
    if (o->n == DLV__OUTAGE_MAX) { /* drop the oldest */
        k = o->head;
        o->head = (o->head + 1) % DLV__OUTAGE_MAX;
    } else {
        k = (o->head + o->n++) % DLV__OUTAGE_MAX;
    }
    o->from[k] = o->down_since;
    o->to[k] = now_ms;
    o->down_since = 0;
}

static int64_t overlap(int64_t a0, int64_t a1, int64_t b0, int64_t b1)
{
    int64_t lo = a0 > b0 ? a0 : b0, hi = a1 < b1 ? a1 : b1;
    return hi > lo ? hi - lo : 0;
}

int64_t dlv__outage_overlap(const dlv__outage *o, int64_t since_ms, int64_t now_ms)
{
    int64_t sum = 0;
    for (unsigned i = 0; i < o->n; i++) {
        unsigned k = (o->head + i) % DLV__OUTAGE_MAX;
        sum += overlap(o->from[k], o->to[k], since_ms, now_ms);
    }
    if (o->down_since)
        sum += overlap(o->down_since, now_ms, since_ms, now_ms);
    return sum;
}
