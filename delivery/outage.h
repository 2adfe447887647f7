/*
 * outage.h - private: the stretches of time the store was unavailable (PostgreSQL down or
 * failing over), as the engine thread saw them through its claims, so that a delivery's
 * budget is not spent while the store could not hand it out.
 *
 * Rule (dlv__outage_overlap): the time the store was unavailable after a delivery fell
 * due (its due time up to now) is added to its deadline before its attempt is
 * classified; the extended deadline is what gets recorded. Counting from the due time
 * counts each stretch once per delivery (the next due time lies after this attempt).
 * Kept in memory: a node started after the outage does not know of it.
 *
 * Engine thread only; no allocation (a fixed ring; the oldest stretch is dropped).
 */
#ifndef DELIVERY_OUTAGE_H
#define DELIVERY_OUTAGE_H

#include <stdint.h>

#define DLV__OUTAGE_MAX 16

typedef struct dlv__outage {
    int64_t from[DLV__OUTAGE_MAX], to[DLV__OUTAGE_MAX]; /* closed stretches, ring */
    unsigned n, head;                                   /* count, oldest index */
    int64_t down_since;                                 /* open stretch, 0: available */
} dlv__outage;

/* A store call at now_ms found the store unavailable (down = 1) or available (0). */
void dlv__outage_note(dlv__outage *o, int down, int64_t now_ms);

/* Milliseconds of unavailability between since_ms and now_ms. */
int64_t dlv__outage_overlap(const dlv__outage *o, int64_t since_ms, int64_t now_ms);

#endif
