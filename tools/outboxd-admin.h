/*
 * outboxd-admin.h - outboxd's admin listener: the JSON API under /api/v1/ (stats,
 * deliveries, events, replay, purge) and the web console at / (one page, its script and
 * style embedded in the binary). A libmicrohttpd daemon of its own, apart from ingest
 * (control plane and data plane on different ports).
 *
 * It reads and changes the store only through liboutbox's public calls (obx_stats_get,
 * obx_list, obx_event_get, obx_replay(_many), obx_purge(_many)), so it works the same on
 * every store backend, and answers with outboxctl --json's shapes (outbox-json.h).
 *
 * Access: bearer tokens, compared in constant time. A read-write token may do anything,
 * a read-only token only GET (403 on a write); a wrong or missing token gets 401. With
 * no tokens at all the listener must be on a loopback address (listen_addr_is_loopback;
 * the config loader checks it too) and then also refuses requests whose Host header is not
 * a loopback name (DNS rebinding).
 * Every write is logged: token index (never the token), what, how many.
 */
#ifndef OUTBOXD_ADMIN_H
#define OUTBOXD_ADMIN_H

#include <stddef.h>
#include <stdint.h>

#include "outbox/outbox.h"

/* Largest page of GET /api/v1/deliveries (a larger limit is a 400). */
#define OADM_MAX_LIMIT 1000
/* Default page size. */
#define OADM_DEFAULT_LIMIT 50
/* Most deliveries one POST /api/v1/replay or /purge changes ("more": true beyond). */
#define OADM_MAX_BULK 10000
/* Largest request body (413 above). */
#define OADM_MAX_BODY 65536

typedef struct oadm_config {
    const char *listen;        /* HOST:PORT ([v6]:PORT); port 0 picks one. Copied. */
    const char *const *tokens; /* read-write bearer tokens; borrowed until stop */
    size_t n_tokens;
    const char *const *ro_tokens; /* read-only bearer tokens; borrowed until stop */
    size_t n_ro_tokens;
    const char *const *sink_names; /* configured sinks (for "configured" in stats); copied */
    size_t n_sink_names;
    obx_store *store; /* borrowed; must outlive oadm_stop() */
} oadm_config;

typedef struct oadm_server oadm_server;

/* Start the listener. NULL with err filled (the listen address, why). */
oadm_server *oadm_start(const oadm_config *cfg, char *err, size_t cap);

/* The bound port (useful with port 0). */
uint16_t oadm_port(const oadm_server *s);

/* Stop: close the listener, finish requests running, free. NULL is a no-op. */
void oadm_stop(oadm_server *s);

/* The console's embedded files (console-assets.c, generated from tools/console/). */
typedef struct oadm_asset {
    const char *path; /* "/", "/console.js", ... */
    const char *content_type;
    const unsigned char *data;
    size_t len;
} oadm_asset;
extern const oadm_asset oadm_assets[];
extern const size_t oadm_n_assets;

#endif
