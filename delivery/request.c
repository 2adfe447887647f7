/*
 * request.c - building one attempt's request (body, headers, signatures) and
 * classifying its result, for the scheduler (see engine-internal.h).
 *
 * URL mode sends the event body exactly as stored; template mode renders the sink's
 * parsed Go template against the event and refuses output that is not valid JSON. Both
 * carry Content-Type (unless configured), User-Agent, webhook-id (stable per delivery),
 * the configured headers and, with secrets, the Flipt and/or Standard Webhooks
 * signatures of the exact body bytes. "Expect:" is sent empty so that libcurl never
 * waits for 100-continue. Secrets never reach an error text.
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
    memset(p, 0, sizeof *p);
}

void dlv__request_clear(dlv__request *rq)
{
    curl_slist_free_all(rq->headers);
    free(rq->rendered);
    memset(rq, 0, sizeof *rq);
}

/* Append "name: value" (value may be NULL: "name:" removes a libcurl default). */
static int add_header(struct curl_slist **list, const char *name, const char *value)
{
    size_t n = strlen(name) + (value ? strlen(value) : 0) + 3;
    char stack[512];
    char *buf = n <= sizeof stack ? stack : malloc(n);
    if (!buf)
        return -1;
    if (value)
        snprintf(buf, n, "%s: %s", name, value);
    else
        snprintf(buf, n, "%s:", name);
    struct curl_slist *l = curl_slist_append(*list, buf);
    if (buf != stack)
        free(buf);
    if (!l)
        return -1;
    *list = l;
    return 0;
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

int dlv__request_build(const dlv__prepared *p, const obx_job *job, int64_t now_ms, dlv__request *rq,
                       char *err, size_t errlen)
{
    const dlv_sink_config *c = p->cfg;
    curl_slist_free_all(rq->headers);
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

    const char *id = job->webhook_id; /* obx_delivery_id(), filled by the claim */
    struct curl_slist **h = &rq->headers;
    int rc = 0;
    for (size_t i = 0; i < c->n_headers && !rc; i++)
        rc = add_header(h, c->headers[i].name, c->headers[i].value ? c->headers[i].value : "");
    if (!rc && !header_configured(c, "Content-Type"))
        rc = add_header(h, "Content-Type", "application/json");
    if (!rc && !header_configured(c, "User-Agent"))
        rc = add_header(h, "User-Agent", "outbox/" OBX_VERSION_STRING);
    if (!rc)
        rc = add_header(h, "webhook-id", id);
    if (!rc)
        rc = add_header(h, "Expect", NULL);
    int sign_rc = DLV_OK;
    if (!rc && c->n_secrets && (c->signature & DLV_SIG_FLIPT)) {
        char hex[DLV_FLIPT_SIG_HEX_LEN + 1];
        sign_rc = dlv_sign_flipt(c->secrets[0], strlen(c->secrets[0]), rq->body, rq->body_len, hex);
        rc = sign_rc == DLV_OK ? add_header(h, "X-Flipt-Webhook-Signature", hex) : -1;
    }
    if (!rc && c->n_secrets && (c->signature & DLV_SIG_STANDARD)) {
        char ts[24];
        int64_t secs = now_ms / 1000;
        snprintf(ts, sizeof ts, "%" PRId64, secs);
        char *sig = NULL;
        sign_rc = dlv_sign_standard_header((const char *const *)c->secrets, c->n_secrets, id, secs,
                                           rq->body, rq->body_len, &sig);
        rc = sign_rc == DLV_OK ? add_header(h, "webhook-timestamp", ts) : -1;
        if (!rc)
            rc = add_header(h, "webhook-signature", sig);
        free(sig);
    }
    if (rc) {
        curl_slist_free_all(rq->headers);
        rq->headers = NULL;
        if (sign_rc != DLV_OK) {
            snprintf(err, errlen, "signing the request failed: %s", dlv_strerror(sign_rc));
            return sign_rc;
        }
        snprintf(err, errlen, "building the request failed: out of memory");
        return DLV_ERR_NOMEM;
    }
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
