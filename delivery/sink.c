/*
 * delivery/sink.c - the sink configuration model: defaults, validation helpers, cleanup
 * (see sink.h).
 */
#include "delivery/sink.h"
#include "delivery/error.h"
#include "delivery/secret.h"
#include "gotmpl/gotmpl.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void dlv_sink_config_init(dlv_sink_config *c)
{
    memset(c, 0, sizeof *c);
    c->signature = DLV_SIG_BOTH;
    dlv_backoff_config_init(&c->backoff);
    c->timeout_ms = DLV_SINK_TIMEOUT_MS;
    c->connect_timeout_ms = DLV_SINK_CONNECT_MS;
    c->max_in_flight = DLV_SINK_MAX_IN_FLIGHT;
    c->max_body_out = DLV_SINK_MAX_BODY_OUT;
    c->capture_body = DLV_SINK_CAPTURE_BODY;
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
    gotmpl_free(c->tmpl);
    for (size_t i = 0; i < c->n_secrets; i++)
        dlv_secret_free(c->secrets[i]);
    free(c->secrets);
    free(c->dead_letter_on);
    dlv_filter_free(c->filter);
    free(c->ca_file);
    free(c->client_cert);
    free(c->client_key);
    for (size_t i = 0; i < c->n_capture_headers; i++)
        free(c->capture_headers[i]);
    free(c->capture_headers);
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

__attribute__((format(printf, 3, 4))) static int fail(char *err, size_t errlen, const char *fmt,
                                                      ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        (void)vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return DLV_ERR_INVALID;
}

static int name_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '.' || ch == '_' || ch == '-';
}

int dlv_sink_name_check(const char *name, char *err, size_t errlen)
{
    if (!name || !*name)
        return fail(err, errlen, "sink name is empty");
    size_t n = strlen(name);
    if (n > DLV_SINK_NAME_MAX)
        return fail(err, errlen, "sink name is %zu bytes, at most %d are allowed", n,
                    DLV_SINK_NAME_MAX);
    for (size_t i = 0; i < n; i++)
        if (!name_char(name[i])) {
            unsigned char ch = (unsigned char)name[i];
            if (ch >= 0x20 && ch < 0x7f)
                return fail(err, errlen,
                            "sink name \"%s\" has '%c' at byte %zu (allowed: A-Z a-z 0-9 . _ -)",
                            name, ch, i + 1);
            return fail(err, errlen,
                        "sink name has byte 0x%02x at byte %zu (allowed: A-Z a-z 0-9 . _ -)", ch,
                        i + 1);
        }
    return DLV_OK;
}

int dlv_sink_name_valid(const char *name)
{
    return dlv_sink_name_check(name, NULL, 0) == DLV_OK;
}

int dlv_url_check(const char *url, char *err, size_t errlen)
{
    if (!url || !*url)
        return fail(err, errlen, "url is empty");
    for (size_t i = 0; url[i]; i++) {
        unsigned char ch = (unsigned char)url[i];
        if (ch < 0x20 || ch == 0x7f)
            return fail(err, errlen, "url has a control character (0x%02x) at byte %zu", ch, i + 1);
        if (ch == ' ')
            return fail(err, errlen, "url has a space at byte %zu", i + 1);
    }
    size_t skip;
    if (strncasecmp(url, "http://", 7) == 0)
        skip = 7;
    else if (strncasecmp(url, "https://", 8) == 0)
        skip = 8;
    else
        return fail(err, errlen, "url must start with http:// or https://");
    const char *auth = url + skip;
    size_t alen = strcspn(auth, "/?#");
    /* userinfo ends at the last '@' of the authority */
    const char *host = auth;
    for (size_t i = 0; i < alen; i++)
        if (auth[i] == '@')
            host = auth + i + 1;
    const char *end = auth + alen;
    const char *port = NULL;
    size_t hlen = (size_t)(end - host); /* host <= end: the last '@' is inside the authority */
    if (hlen && *host == '[') {
        const char *close = memchr(host, ']', hlen);
        if (!close || close == host + 1)
            return fail(err, errlen, "url has an unterminated or empty IPv6 host");
        if (close + 1 < end) {
            if (close[1] != ':')
                return fail(err, errlen, "url has text after the IPv6 host's ']'");
            port = close + 2;
        }
    } else {
        const char *colon = memchr(host, ':', hlen);
        if (colon) {
            port = colon + 1;
            end = colon;
        }
        if (end == host)
            return fail(err, errlen, "url has no host");
    }
    for (const char *p = port; p && p < auth + alen; p++)
        if (*p < '0' || *p > '9')
            return fail(err, errlen, "url has an invalid port (digits only)");
    return DLV_OK;
}

int dlv_header_check(const char *name, const char *value, char *err, size_t errlen)
{
    if (!name || !*name)
        return fail(err, errlen, "header name is empty");
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        if (*p <= 32 || *p >= 127 || strchr("()<>@,;:\\\"/[]?={}", *p))
            return fail(err, errlen, "header name \"%.64s\" is not a token (byte %zu)",
                        *p >= 32 && *p < 127 ? name : "(not printable)",
                        (size_t)(p - (const unsigned char *)name) + 1);
    for (size_t i = 0; value && value[i]; i++) {
        unsigned char ch = (unsigned char)value[i];
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
            return fail(err, errlen, "header %s: the value has a control character at byte %zu",
                        name, i + 1);
    }
    return DLV_OK;
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
            return DLV_OK;
        }
    return DLV_ERR_INVALID;
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
    gotmpl *t = NULL;
    char *copy = malloc(len + 1);
    if (!copy) {
        (void)fail(err, errlen, "out of memory");
        return DLV_ERR_NOMEM;
    }
    memcpy(copy, body, len);
    copy[len] = '\0';
    if (err && errlen)
        err[0] = '\0';
    int rc = gotmpl_parse(copy, len, &t, err, errlen);
    if (rc != GOTMPL_OK) {
        free(copy);
        if (rc == GOTMPL_ENOMEM)
            return DLV_ERR_NOMEM;
        if (err && errlen && !err[0])
            (void)snprintf(err, errlen, "template parse failed");
        return DLV_ERR_TEMPLATE;
    }
    free(c->body);
    gotmpl_free(c->tmpl);
    c->body = copy;
    c->tmpl = t;
    return DLV_OK;
}

int dlv_capture_check(const dlv_sink_config *c, char *err, size_t errlen)
{
    if (c->n_capture_headers > DLV_SINK_CAPTURE_HEADERS_MAX)
        return fail(err, errlen, "capture_headers lists %zu headers, at most %d are allowed",
                    c->n_capture_headers, DLV_SINK_CAPTURE_HEADERS_MAX);
    for (size_t i = 0; i < c->n_capture_headers; i++) {
        char why[DLV_ERRMSG_MAX];
        const char *n = c->capture_headers[i];
        if (!n || strlen(n) > OBX_CAPTURE_NAME_MAX)
            return fail(err, errlen,
                        "capture_headers[%zu]: a header name of 1 to %d bytes is "
                        "needed",
                        i, OBX_CAPTURE_NAME_MAX);
        if (dlv_header_check(n, "", why, sizeof why) != DLV_OK)
            return fail(err, errlen, "capture_headers[%zu]: %s", i, why);
    }
    if (c->capture_body > DLV_SINK_CAPTURE_BODY_MAX)
        return fail(err, errlen, "capture_body is %zu bytes, at most %u are allowed",
                    c->capture_body, (unsigned)DLV_SINK_CAPTURE_BODY_MAX);
    return DLV_OK;
}
