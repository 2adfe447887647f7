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

/* One "health   NAME: ..." line per sink whose state ever changed. */
void ctl_health_lines(FILE *f, obx_store *s, const obx_stats *st, int64_t now_ms);

#endif
