/*
 * outboxd-attemptlog.h - the daemon's log of failed delivery attempts, rate-limited per
 * sink so that an outage cannot flood the logs.
 *
 * Each failed attempt the engine reports (dlv_engine_options.on_failed_attempt) becomes a
 * warn line `delivery attempt failed` with sink, event, attempt, status or error, outcome
 * and next attempt time - at most one line per sink per interval (1 s in the daemon).
 * Lines held back are counted and the count is carried by the sink's next line
 * (`suppressed=N`), or by a `delivery attempt failures suppressed` line that
 * oal_flush() writes once the interval has passed with nothing else to log.
 *
 * Thread-safe: oal_failed runs on the engine thread, oal_flush on the daemon's main loop.
 */
#ifndef OUTBOXD_ATTEMPTLOG_H
#define OUTBOXD_ATTEMPTLOG_H

#include <stddef.h>
#include <stdint.h>

#include "delivery/engine.h"

typedef struct oal oal;

/* A log for n_sinks sinks (indexes as in dlv_attempt_event.sink); NULL when out of memory. */
oal *oal_new(size_t n_sinks, unsigned interval_ms);
void oal_free(oal *l); /* NULL is fine */

/* A dlv_attempt_fn: log or count one failed attempt (ud is the oal). */
void oal_failed(void *ud, const dlv_attempt_event *ev);

/* Write the suppression counts whose interval has passed. */
void oal_flush(oal *l);

#endif
