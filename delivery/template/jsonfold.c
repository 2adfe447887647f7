/*
 * delivery/template/jsonfold.c - which JSON object member Go's encoding/json decodes into
 * a struct field (see gotmpl_json_field in delivery/template.h). The event decoder and
 * outboxd's ingest validation both call it, so both accept the same events.
 */
#include "gotmpl/gotmpl.h"

#include <jansson.h>
#include <strings.h>

json_t *gotmpl_json_field(const json_t *obj, const char *name)
{
    /* Go walks the members in document order; each one whose key equals the field's name,
     * exactly or folded, is stored into the field, so the last such member wins. jansson
     * keeps insertion order and merges exact duplicates (keeping the last value). */
    const char *k;
    json_t *it, *found = NULL;
    json_object_foreach((json_t *)obj, k, it)
    {
        if (strcasecmp(k, name) == 0)
            found = it;
    }
    return found;
}
