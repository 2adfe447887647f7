/*
 * delivery/sink-template.c - the seam between the sink model and the Go-template engine
 * (gotmpl/gotmpl.h): parse and free a sink's template.
 */
#include "sink-internal.h"

#include <stddef.h>
#include <stdio.h>

#include "gotmpl/gotmpl.h"

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
    gotmpl_free(t);
}
