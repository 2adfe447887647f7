/*
 * request.c - building one attempt's request (body, headers, signatures) and
 * classifying its result, for the scheduler (see engine-internal.h).
 *
 * URL mode sends the event body exactly as stored; template mode renders the sink's
 * parsed Go template against the event and refuses output that is not valid JSON. Both
 * carry Content-Type (unless configured), User-Agent, webhook-id (stable per delivery),
 * the configured headers and, with secrets, the Flipt and/or Standard Webhooks
 * signatures of the exact body bytes. "Expect:" is sent empty so that libcurl never
 * waits for 100-continue. Secrets never reach an error text. What is the same for every
 * request of a sink (its header lines, keyed signers) is prepared once; an attempt builds
 * its header list in place, allocating nothing in the common case.
 */
#include "config.h"
#include "engine-internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "delivery/backoff.h"
#include "delivery/error.h"
#include "delivery/secret.h"
#include "delivery/sign.h"
#include "delivery/sink.h"
#include "outbox/version.h"
#include "gotmpl/gotmpl.h"

#define STR_(x) #x
#define STR(x)  STR_(x)

static int header_configured(const dlv_sink_config *c, const char *name)
{
    for (size_t i = 0; i < c->n_headers; i++)
        if (c->headers[i].name && strcasecmp(c->headers[i].name, name) == 0)
            return 1;
    return 0;
}

/* A malloc'd "name: value" line; NULL without memory. */
static char *header_line(const char *name, const char *value)
{
    size_t n = strlen(name) + strlen(value) + 3;
    char *line = malloc(n);
    if (line)
        snprintf(line, n, "%s: %s", name, value);
    return line;
}

/* The lines every request of the sink starts with: the configured headers, then
 * Content-Type and User-Agent unless configured. */
static int prepare_lines(dlv__prepared *p, const dlv_sink_config *c)
{
    if (!(p->lines = calloc(c->n_headers + 2, sizeof *p->lines)))
        return DLV_ERR_NOMEM;
    for (size_t i = 0; i < c->n_headers; i++) {
        const char *v = c->headers[i].value ? c->headers[i].value : "";
        if (!(p->lines[p->n_lines++] = header_line(c->headers[i].name, v)))
            return DLV_ERR_NOMEM;
    }
    if (!header_configured(c, "Content-Type") &&
        !(p->lines[p->n_lines++] = header_line("Content-Type", "application/json")))
        return DLV_ERR_NOMEM;
    if (!header_configured(c, "User-Agent") &&
        !(p->lines[p->n_lines++] = header_line("User-Agent", "outbox/" OBX_VERSION_STRING)))
        return DLV_ERR_NOMEM;
    return DLV_OK;
}

/* A keyed signer per secret and scheme the sink signs with. */
static int prepare_signers(dlv__prepared *p, const dlv_sink_config *c)
{
    if (!c->n_secrets)
        return DLV_OK;
    if (c->signature & DLV_SIG_FLIPT) {
        int rc = dlv_signer_new(c->secrets[0], 0, &p->flipt);
        if (rc != DLV_OK)
            return rc;
    }
    if (c->signature & DLV_SIG_STANDARD) {
        if (!(p->standard = calloc(c->n_secrets, sizeof *p->standard)))
            return DLV_ERR_NOMEM;
        for (; p->n_standard < c->n_secrets; p->n_standard++) {
            int rc = dlv_signer_new(c->secrets[p->n_standard], 1, &p->standard[p->n_standard]);
            if (rc != DLV_OK)
                return rc;
        }
    }
    return DLV_OK;
}

int dlv__prepare(dlv__prepared *p, const dlv_sink_config *c, char *err, size_t errlen)
{
    memset(p, 0, sizeof *p);
    const char *name = c->name ? c->name : "";
    char why[DLV_ERRMSG_MAX];
    if (dlv_sink_name_check(c->name, why, sizeof why) != DLV_OK) {
        snprintf(err, errlen, "%s", why);
        return DLV_ERR_INVALID;
    }
    if (dlv_url_check(c->url, why, sizeof why) != DLV_OK) {
        snprintf(err, errlen, "sink '%s': %s", name, why);
        return DLV_ERR_INVALID;
    }
    for (size_t i = 0; i < c->n_headers; i++) {
        const dlv_header *h = &c->headers[i];
        if (dlv_header_check(h->name, h->value, why, sizeof why) != DLV_OK) {
            snprintf(err, errlen, "sink '%s': headers[%zu]: %s", name, i, why);
            return DLV_ERR_INVALID;
        }
    }
    if (c->body && !c->tmpl) {
        snprintf(err, errlen,
                 "sink '%s': the body template was not parsed (dlv_sink_config_set_body)", name);
        return DLV_ERR_INVALID;
    }
    if (dlv_capture_check(c, why, sizeof why) != DLV_OK) {
        snprintf(err, errlen, "sink '%s': %s", name, why);
        return DLV_ERR_INVALID;
    }
    for (size_t i = 0; i < c->n_secrets; i++)
        if (dlv_signing_secret_check(c->secrets[i], c->signature & DLV_SIG_STANDARD, why,
                                     sizeof why) != DLV_OK) {
            snprintf(err, errlen, "sink '%s': signing secret %zu is not usable: %s", name, i + 1,
                     why);
            return DLV_ERR_INVALID;
        }
    if (c->breaker.failures < 1 || c->breaker.failures > DLV_BREAKER_FAILURES_MAX) {
        snprintf(err, errlen, "sink '%s': breaker.failures is %u, allowed: 1..%d", name,
                 c->breaker.failures, DLV_BREAKER_FAILURES_MAX);
        return DLV_ERR_INVALID;
    }
    if (c->breaker.give_up_after_ms < 0) {
        snprintf(err, errlen, "sink '%s': breaker.give_up_after is negative", name);
        return DLV_ERR_INVALID;
    }
    int rc = prepare_lines(p, c);
    if (rc == DLV_OK)
        rc = prepare_signers(p, c);
    if (rc != DLV_OK) {
        dlv__prepared_clear(p);
        snprintf(err, errlen, "sink '%s': %s", name,
                 rc == DLV_ERR_NOMEM ? "out of memory" : "cannot set up the signing keys");
        return rc;
    }
    p->cfg = c;
    p->tmpl = c->tmpl;
    p->ordered = c->ordered ? 1 : 0;
    p->limit = p->ordered ? 1 : (c->max_in_flight ? c->max_in_flight : DLV_SINK_MAX_IN_FLIGHT);
    p->transport.url = c->url;
    p->transport.timeout_ms = c->timeout_ms > 0 ? (long)c->timeout_ms : DLV_SINK_TIMEOUT_MS;
    p->transport.connect_timeout_ms =
        c->connect_timeout_ms > 0 ? (long)c->connect_timeout_ms : DLV_SINK_CONNECT_MS;
    p->transport.ca_file = c->ca_file;
    p->transport.client_cert = c->client_cert;
    p->transport.client_key = c->client_key;
    p->transport.insecure = c->insecure ? 1 : 0;
    p->transport.capture_body = c->capture_body;
    p->transport.capture_headers = (const char *const *)c->capture_headers;
    p->transport.n_capture_headers = c->n_capture_headers;
    return DLV_OK;
}

void dlv__prepared_clear(dlv__prepared *p)
{
    for (size_t i = 0; i < p->n_lines; i++)
        free(p->lines[i]);
    free(p->lines);
    dlv_signer_free(p->flipt);
    for (size_t i = 0; i < p->n_standard; i++)
        dlv_signer_free(p->standard[i]);
    free(p->standard);
    memset(p, 0, sizeof *p);
}

void dlv__request_clear(dlv__request *rq)
{
    free(rq->heap_nodes);
    free(rq->sig_heap);
    free(rq->rendered);
    memset(rq, 0, sizeof *rq);
}

int dlv__request_render(const dlv__prepared *p, const obx_job *job, dlv__request *rq, char *err,
                        size_t errlen)
{
    gotmpl_limits lim = gotmpl_limits_default(p->cfg->max_body_out);
    free(rq->rendered);
    rq->rendered = NULL;
    rq->body = NULL;
    rq->body_len = 0;
    int rc = gotmpl_render(p->tmpl, job->body, job->body_len, &lim, &rq->rendered, &rq->body_len,
                           err, errlen);
    if (rc == GOTMPL_ENOMEM) {
        snprintf(err, errlen, "out of memory rendering the template");
        return DLV_ERR_NOMEM;
    }
    if (rc != GOTMPL_OK) {
        free(rq->rendered);
        rq->rendered = NULL;
        rq->body_len = 0;
        return DLV_ERR_TEMPLATE;
    }
    rq->body = (const unsigned char *)rq->rendered;
    return DLV_OK;
}

/* The standard signature line for every secret of the sink: "webhook-signature: v1,... v1,..."
 * into rq (inline, or one allocation for more than two secrets). */
static int standard_line(const dlv__prepared *p, dlv__request *rq, const char *id, int64_t secs,
                         const char **line)
{
    static const char name[] = "webhook-signature: ";
    size_t need = sizeof name + p->n_standard * (DLV_STANDARD_TOKEN_LEN + 1);
    char *out = rq->sig_inline;
    if (need > sizeof rq->sig_inline) {
        free(rq->sig_heap);
        if (!(rq->sig_heap = malloc(need)))
            return DLV_ERR_NOMEM;
        out = rq->sig_heap;
    }
    memcpy(out, name, sizeof name - 1);
    size_t off = sizeof name - 1;
    for (size_t i = 0; i < p->n_standard; i++) {
        if (i)
            out[off++] = ' ';
        int rc = dlv_signer_standard(p->standard[i], id, secs, rq->body, rq->body_len, out + off,
                                     DLV_STANDARD_TOKEN_LEN + 1);
        if (rc != DLV_OK)
            return rc;
        off += DLV_STANDARD_TOKEN_LEN;
    }
    out[off] = '\0';
    *line = out;
    return DLV_OK;
}

int dlv__request_build(const dlv__prepared *p, const obx_job *job, int64_t now_ms, dlv__request *rq,
                       char *err, size_t errlen)
{
    rq->headers = NULL;
    if (p->tmpl) {
        if (!rq->rendered) {
            snprintf(err, errlen, "the body was not rendered");
            return DLV_ERR_INVALID;
        }
        rq->body = (const unsigned char *)rq->rendered;
    } else {
        rq->body = job->body;
        rq->body_len = job->body_len;
    }

    /* the sink's lines, then webhook-id (stable per delivery: obx_delivery_id(), filled by
     * the claim), "Expect:" (sent empty: libcurl never waits for 100-continue), signatures */
    const char *lines[DLV__REQUEST_NODES];
    const char **all = lines;
    size_t max = p->n_lines + 5, n = 0;
    struct curl_slist *nodes = rq->nodes;
    if (max > DLV__REQUEST_NODES) {
        free(rq->heap_nodes);
        rq->heap_nodes = malloc(max * (sizeof *rq->heap_nodes + sizeof *all));
        if (!rq->heap_nodes) {
            snprintf(err, errlen, "building the request failed: out of memory");
            return DLV_ERR_NOMEM;
        }
        nodes = rq->heap_nodes;
        all = (const char **)(void *)(rq->heap_nodes + max);
    }
    for (size_t i = 0; i < p->n_lines; i++)
        all[n++] = p->lines[i];
    snprintf(rq->id_line, sizeof rq->id_line, "webhook-id: %s", job->webhook_id);
    all[n++] = rq->id_line;
    all[n++] = "Expect:";
    int rc = DLV_OK;
    if (p->flipt) {
        static const char name[] = "X-Flipt-Webhook-Signature: ";
        memcpy(rq->flipt_line, name, sizeof name - 1);
        rc = dlv_signer_flipt(p->flipt, rq->body, rq->body_len, rq->flipt_line + sizeof name - 1);
        all[n++] = rq->flipt_line;
    }
    if (rc == DLV_OK && p->n_standard) {
        int64_t secs = now_ms / 1000;
        snprintf(rq->ts_line, sizeof rq->ts_line, "webhook-timestamp: %" PRId64, secs);
        all[n++] = rq->ts_line;
        rc = standard_line(p, rq, job->webhook_id, secs, &all[n++]);
    }
    if (rc != DLV_OK) {
        snprintf(err, errlen, "signing the request failed: %s", dlv_strerror(rc));
        return rc;
    }
    for (size_t i = 0; i < n; i++) /* curl only reads the list; its lines are never freed */
        nodes[i] =
            (struct curl_slist){.data = (char *)all[i], .next = i + 1 < n ? &nodes[i + 1] : NULL};
    rq->headers = nodes;
    return DLV_OK;
}

static double fixed_unit(void *ud)
{
    return *(const double *)ud;
}

void dlv__decide(const dlv__prepared *p, const obx_job *job, const dlv__outcome *o,
                 int64_t started_ms, int64_t now_ms, double rnd, dlv__decision *d)
{
    const dlv_sink_config *c = p->cfg;
    memset(d, 0, sizeof *d);
    d->first_attempt_ms = job->first_attempt_ms ? job->first_attempt_ms : started_ms;
    int64_t bound = c->backoff.max_elapsed_ms;
    d->deadline_ms = bound > 0 ? d->first_attempt_ms + bound : 0;
    dlv_outcome cls = o->transport_error
                          ? DLV_OUTCOME_RETRY
                          : dlv_classify_status(o->status, c->dead_letter_on, c->n_dead_letter_on);
    if (cls == DLV_OUTCOME_DELIVERED) {
        d->outcome = OBX_OUTCOME_DELIVERED;
        return;
    }
    if (cls == DLV_OUTCOME_DEAD) {
        d->outcome = OBX_OUTCOME_DEAD;
        snprintf(d->reason, sizeof d->reason,
                 "status %d is listed in dead_letter_on (after %" PRIu32 " attempt%s)", o->status,
                 job->attempts + 1, job->attempts ? "s" : "");
        return;
    }
    dlv_attempt_result ar = {.attempts = job->attempts + 1,
                             .first_attempt_ms = d->first_attempt_ms,
                             .http_status = o->status,
                             .last_error = o->error[0] ? o->error : NULL,
                             .retry_after_ms = -1};
    if (!o->transport_error && (o->status == 429 || o->status == 503) && o->retry_after[0]) {
        int64_t ra;
        if (dlv_retry_after_parse(o->retry_after, now_ms, &ra) == 0)
            ar.retry_after_ms = ra;
    }
    dlv_backoff_decision bd;
    dlv_backoff_decide(&c->backoff, &ar, now_ms, fixed_unit, &rnd, &bd);
    if (bd.dead) {
        d->outcome = OBX_OUTCOME_DEAD;
        snprintf(d->reason, sizeof d->reason, "%s", bd.reason);
    } else {
        d->outcome = OBX_OUTCOME_RETRY;
        d->next_attempt_ms = bd.retry_at_ms;
    }
}
