/*
 * outboxd-sweeper.h - the retention sweeper thread: deletes delivered deliveries (and
 * events left without deliveries) older than `outbox.retention`, and idempotency keys
 * past their window, in small transactions.
 */
#ifndef OUTBOXD_SWEEPER_H
#define OUTBOXD_SWEEPER_H

#include <stddef.h>
#include <stdint.h>

#include "outbox/outbox.h"

typedef struct osw_sweeper osw_sweeper;

/*
 * Start sweeping `store` (borrowed; must outlive osw_stop) every `interval_ms`, deleting
 * deliveries delivered more than `retention_ms` ago, `batch` per transaction and at most
 * `max_per_tick` per interval (so a huge backlog is trimmed gradually without starving
 * the writer). NULL with err on failure.
 */
osw_sweeper *osw_start(obx_store *store, int64_t retention_ms, int64_t interval_ms, size_t batch,
                       size_t max_per_tick, char *err, size_t cap);

/* Total deliveries removed so far. */
uint64_t osw_removed(const osw_sweeper *w);

/* Stop and join the thread (a sweep in progress finishes its transaction). NULL ok. */
void osw_stop(osw_sweeper *w);

#endif
