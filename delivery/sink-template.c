/*
 * delivery/sink-template.c - the seam between the sink model and the Go-template engine:
 * parse and free a sink's template. Kept in its own file so that the sink model builds
 * before the engine exists; until delivery/include/delivery/template.h is in the tree,
 * templates are kept as source only (tmpl stays NULL) and parsed by whoever renders them.
 */
#include "sink-internal.h"

#include <stddef.h>

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
