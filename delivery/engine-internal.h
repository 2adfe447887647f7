/*
 * engine-internal.h - private: what the scheduler (scheduler.c) needs from request
 * building and attempt classification (request.c): a prepared per-sink runtime, a built
 * request, and the decision taken after an attempt.
 */
#ifndef DELIVERY_ENGINE_INTERNAL_H
#define DELIVERY_ENGINE_INTERNAL_H

#include <curl/curl.h>
#include <stddef.h>
#include <stdint.h>

#include "delivery/engine.h"
#include "outbox/outbox.h"
#include "sender.h"

/* Per-sink things prepared once at dlv_engine_new (request.c owns their contents). */
typedef struct dlv__prepared {
    const dlv_sink_config *cfg; /* borrowed from the caller */
    const struct gotmpl *tmpl;  /* the config's parsed template (template mode) or NULL */
    dlv__transport transport;
    size_t limit; /* max_in_flight, 1 when ordered */
    int ordered;
    /* the header lines every request of the sink starts with ("name: value": configured
     * headers, Content-Type, User-Agent), owned */
    char **lines;
    size_t n_lines;
    /* keyed signers (engine thread only), owned: Flipt's with secrets[0], Standard
     * Webhooks' one per secret; NULL / 0 when the sink does not sign that way */
    struct dlv_signer *flipt;
    struct dlv_signer **standard;
    size_t n_standard;
} dlv__prepared;

/* Header lines a request carries inline (beyond: one allocation for the list). */
#define DLV__REQUEST_NODES 16

/* A request ready to hand to the sender. Its header list is built in place (list nodes
 * and the per-attempt lines live here; the sink's fixed lines are borrowed from
 * dlv__prepared): never pass it to curl_slist_free_all. */
typedef struct dlv__request {
    const unsigned char *body; /* the event's body or `rendered` */
    size_t body_len;
    char *rendered;             /* owned; template output */
    struct curl_slist *headers; /* the list's head: nodes or heap_nodes */
    struct curl_slist nodes[DLV__REQUEST_NODES];
    struct curl_slist *heap_nodes; /* owned, when the sink has more lines */
    char id_line[sizeof "webhook-id: " + OBX_DELIVERY_ID_MAX];
    char flipt_line[sizeof "X-Flipt-Webhook-Signature: " + 64];
    char ts_line[sizeof "webhook-timestamp: " + 24];
    char sig_inline[sizeof "webhook-signature: " + 2 * 48]; /* up to two tokens */
    char *sig_heap;                                         /* owned, for more */
} dlv__request;

/* What to record after an attempt. */
typedef struct dlv__decision {
    int outcome;              /* OBX_OUTCOME_DELIVERED / RETRY / DEAD */
    int64_t next_attempt_ms;  /* RETRY */
    int64_t first_attempt_ms; /* start of the budget */
    int64_t deadline_ms;      /* end of the budget */
    char reason[256];         /* DEAD */
} dlv__decision;

/* Validate cfg with the library's rules and prepare *p (transport settings, fixed header
 * lines, signers). DLV_OK, or DLV_ERR_INVALID / DLV_ERR_NOMEM / DLV_ERR_CRYPTO with err;
 * *p is cleared on failure. */
int dlv__prepare(dlv__prepared *p, const dlv_sink_config *cfg, char *err, size_t errlen);
void dlv__prepared_clear(dlv__prepared *p);

/*
 * Template mode: render the sink's template for `job` into rq->rendered / rq->body (any
 * previous rendering is freed). Thread-safe (the render worker threads call it); it touches
 * only rq.
 * @return DLV_OK; DLV_ERR_TEMPLATE when the body cannot be rendered (execution error, caps,
 *         invalid JSON: the delivery is dead, err holds why); DLV_ERR_NOMEM.
 */
int dlv__request_render(const dlv__prepared *p, const obx_job *job, dlv__request *rq, char *err,
                        size_t errlen);

/*
 * Build the headers and signatures of one attempt of `job` at now_ms (timestamp for
 * signatures). URL mode sets the body to the event's; template mode needs rq rendered by
 * dlv__request_render first.
 * @return DLV_OK, DLV_ERR_NOMEM, or a signing error (DLV_ERR_INVALID/DLV_ERR_CRYPTO).
 */
int dlv__request_build(const dlv__prepared *p, const obx_job *job, int64_t now_ms, dlv__request *rq,
                       char *err, size_t errlen);
void dlv__request_clear(dlv__request *rq);

/*
 * Classify an attempt started at started_ms that ended at now_ms, and schedule the next
 * one with the sink's backoff (rnd in [0,1) for jitter) within the elapsed bound.
 */
void dlv__decide(const dlv__prepared *p, const obx_job *job, const dlv__outcome *o,
                 int64_t started_ms, int64_t now_ms, double rnd, dlv__decision *d);

#endif
