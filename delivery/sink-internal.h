/*
 * delivery/sink-internal.h - private hooks of the sink model (template parsing seam).
 */
#ifndef OUTBOX_DELIVERY_SINK_INTERNAL_H
#define OUTBOX_DELIVERY_SINK_INTERNAL_H

#include <stddef.h>

struct gotmpl;

/* Parse src into *out (NULL when no engine is built in). 0, -1 syntax error (err), -2 OOM. */
int dlv_sink__parse_template(const char *src, size_t len, struct gotmpl **out, char *err,
                             size_t errlen);
/* Free a parsed template; NULL is fine. */
void dlv_sink__free_template(struct gotmpl *t);

#endif
