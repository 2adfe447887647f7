/*
 * outboxd-admin-api.h - inside the admin listener (outboxd-admin.h): the JSON endpoints
 * (outboxd-admin-api.c), called by the listener's router once the caller is authenticated
 * and allowed, and the answer helpers they use (outboxd-admin.c). Not for other modules.
 */
#ifndef OUTBOXD_ADMIN_API_H
#define OUTBOXD_ADMIN_API_H

#include <jansson.h>
#include <microhttpd.h>
#include <stddef.h>
#include <stdint.h>

#include "outbox/outbox.h"

/* What an endpoint needs; everything borrowed for the call. */
typedef struct oadm_ctx {
    obx_store *store;
    char *const *sink_names; /* the configured sinks */
    size_t n_sink_names;
    const char *who; /* the caller, for the write log: "token rw[0]", ... */
} oadm_ctx;

/* GET /api/v1/stats */
enum MHD_Result oadm_get_stats(const oadm_ctx *s, struct MHD_Connection *c);
/* GET /api/v1/deliveries?... */
enum MHD_Result oadm_get_deliveries(const oadm_ctx *s, struct MHD_Connection *c);
/* GET /api/v1/events/{id} */
enum MHD_Result oadm_get_event(const oadm_ctx *s, struct MHD_Connection *c, uint64_t id);
/*
 * POST /api/v1/replay and /purge (event == 0), or /api/v1/events/{event}/replay and
 * /purge; `body` is the request's JSON text (len 0 = {}). replay: 1 replay, 0 purge.
 */
enum MHD_Result oadm_post_write(const oadm_ctx *s, struct MHD_Connection *c, const char *body,
                                size_t len, int replay, uint64_t event);

/* ---- answers (with the console's security headers) ---- */

/* Send len bytes of data; mode says who owns them (MUST_FREE: freed here, also on failure).
 * allow: an Allow header or NULL. */
enum MHD_Result oadm_send_buf(struct MHD_Connection *c, unsigned status, const char *ctype,
                              void *data, size_t len, enum MHD_ResponseMemoryMode mode,
                              const char *allow);
/* Send o (its reference taken) as JSON; NULL answers 500 "out of memory". */
enum MHD_Result oadm_send_json(struct MHD_Connection *c, unsigned status, json_t *o);
/* {"error": "<printf>"} with status (and an Allow header when allow is not NULL). */
enum MHD_Result oadm_send_err(struct MHD_Connection *c, unsigned status, const char *allow,
                              const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* The answer for a failed store call: 404, 409, 503 or 500 with its message. */
enum MHD_Result oadm_send_store_err(struct MHD_Connection *c, int rc, const obx_error *e);

#endif
