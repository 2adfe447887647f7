/*
 * delivery/sink-template.c - the seam between the sink model and the Go-template engine:
 * parse and free a sink's template. Built against the engine (delivery/template.h) when
 * template_dep defines DLV_HAVE_TEMPLATE; without it, templates are kept as source only
 * (tmpl stays NULL) and the sender refuses such sinks with a clear message.
 */
#include "sink-internal.h"

#include <stddef.h>

#ifdef DLV_HAVE_TEMPLATE
#include <stdio.h>

#include "delivery/template.h"

int dlv_sink__parse_template(const char *src, size_t len, struct gotmpl **out, char *err,
                             size_t errlen)
{
    gotmpl *t = NULL;
    if (err && errlen)
        err[0] = '\0';
    int rc = gotmpl_parse(src, len, &t, err, errlen);
    if (rc != 0 || !t) {
        if (t)
            gotmpl_free(t);
        if (rc == GOTMPL_ENOMEM)
            return -2;
        if (err && errlen && !err[0])
            (void)snprintf(err, errlen, "template parse failed");
        return -1;
    }
    *out = t;
    return 0;
}

void dlv_sink__free_template(struct gotmpl *t)
{
    if (t)
        gotmpl_free(t);
}

#else

int dlv_sink__parse_template(const char *src, size_t len, struct gotmpl **out, char *err,
                             size_t errlen)
{
    (void)src;
    (void)len;
    (void)err;
    (void)errlen;
    *out = NULL;
    return 0;
}

void dlv_sink__free_template(struct gotmpl *t)
{
    (void)t;
}

#endif
