/*
 * outboxctl-health.h - sink health in outboxctl (outboxctl-health.c): the stats lines and
 * JSON fields; the pause and resume commands are declared in outboxctl.h.
 */
#ifndef OUTBOX_TOOLS_OUTBOXCTL_HEALTH_H
#define OUTBOX_TOOLS_OUTBOXCTL_HEALTH_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

#include "outbox/outbox.h"

/* Add "health": {state, down, paused, since, why, last_error, held_ms, changes} to the
 * JSON object `sink` (borrowed) for sink `id`; nothing when it cannot be read. */
void ctl_health_json_add(json_t *sink, obx_store *s, uint32_t id, int64_t now_ms);

/* A delivery's deadline on the wall clock: the stored one (on its sink's working clock)
 * moved later by the time the sink has been held so far (see delivery/health.h). */
int64_t ctl_health_deadline(obx_store *s, const obx_delivery *d, int64_t now_ms);

/* One "health   NAME: ..." line per sink whose state ever changed. */
void ctl_health_lines(FILE *f, obx_store *s, const obx_stats *st, int64_t now_ms);

#endif
