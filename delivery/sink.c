/*
 * delivery/sink.c - the sink configuration model: defaults, validation helpers, cleanup
 * (see sink.h).
 */
#include "delivery/sink.h"
#include "sink-internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void dlv_sink_config_init(dlv_sink_config *c)
{
    memset(c, 0, sizeof *c);
    c->signature = DLV_SIG_BOTH;
    dlv_backoff_config_init(&c->backoff);
    c->timeout_ms = DLV_SINK_TIMEOUT_MS;
    c->connect_timeout_ms = DLV_SINK_CONNECT_MS;
    c->max_in_flight = DLV_SINK_MAX_IN_FLIGHT;
    c->max_body_out = DLV_SINK_MAX_BODY_OUT;
}

static void free_secret(char *s)
{
    if (!s)
        return;
    /* volatile store loop so the wipe is not optimised away */
    for (volatile char *p = s; *p; p++)
        *p = 0;
    free(s);
}

void dlv_sink_config_clear(dlv_sink_config *c)
{
    if (!c)
        return;
    free(c->name);
    free(c->url);
    for (size_t i = 0; i < c->n_headers; i++) {
        free(c->headers[i].name);
        free(c->headers[i].value);
    }
    free(c->headers);
    free(c->body);
    dlv_sink__free_template(c->tmpl);
    for (size_t i = 0; i < c->n_secrets; i++)
        free_secret(c->secrets[i]);
    free(c->secrets);
    free(c->dead_letter_on);
    dlv_filter_free(c->filter);
    free(c->ca_file);
    free(c->client_cert);
    free(c->client_key);
    dlv_sink_config_init(c);
}

void dlv_sink_configs_free(dlv_sink_config *v, size_t n)
{
    if (!v)
        return;
    for (size_t i = 0; i < n; i++)
        dlv_sink_config_clear(&v[i]);
    free(v);
}

int dlv_sink_name_valid(const char *name)
{
    if (!name)
        return 0;
    size_t n = strlen(name);
    if (n < 1 || n > DLV_SINK_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = name[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '_' || ch == '-'))
            return 0;
    }
    return 1;
}

static const struct {
    const char *name;
    int sig;
} sigs[] = {
    {"both", DLV_SIG_BOTH},
    {"flipt", DLV_SIG_FLIPT},
    {"standard", DLV_SIG_STANDARD},
    {"none", DLV_SIG_NONE},
};

int dlv_signature_parse(const char *s, int *ret)
{
    for (size_t i = 0; s && i < sizeof sigs / sizeof sigs[0]; i++)
        if (strcmp(s, sigs[i].name) == 0) {
            *ret = sigs[i].sig;
            return 0;
        }
    return -1;
}

const char *dlv_signature_name(int sig)
{
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        if (sigs[i].sig == sig)
            return sigs[i].name;
    return "unknown";
}

int dlv_sink_config_set_body(dlv_sink_config *c, const char *body, size_t len, char *err,
                             size_t errlen)
{
    struct gotmpl *t = NULL;
    char *copy = malloc(len + 1);
    if (!copy) {
        if (err && errlen)
            (void)snprintf(err, errlen, "out of memory");
        return -2;
    }
    memcpy(copy, body, len);
    copy[len] = '\0';
    int rc = dlv_sink__parse_template(copy, len, &t, err, errlen);
    if (rc < 0) {
        free(copy);
        return rc;
    }
    free(c->body);
    dlv_sink__free_template(c->tmpl);
    c->body = copy;
    c->tmpl = t;
    return 0;
}
