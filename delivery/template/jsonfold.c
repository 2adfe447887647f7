/*
 * delivery/template/jsonfold.c - which JSON object member Go's encoding/json decodes into
 * a struct field (see gotmpl_json_field in delivery/template.h). The event decoder and
 * outboxd's ingest validation both call it, so both accept the same events.
 */
#include "gotmpl/gotmpl.h"

#include <jansson.h>
#include <string.h>

/*
 * 1 when `key` (UTF-8) equals the ASCII `name` under Go's folding (encoding/json folds each
 * rune r to ToUpper(ToLower(r))): ASCII letters in any case, and the two non-ASCII runes
 * that fold onto ASCII letters, U+017F (long s) onto 's' and U+212A (Kelvin sign) onto 'k'.
 */
static int go_fold_equal(const char *key, size_t klen, const char *name)
{
    size_t i = 0;
    for (const char *n = name; *n; n++) {
        unsigned char c = (unsigned char)*n;
        unsigned char lc = c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
        if (i >= klen)
            return 0;
        unsigned char k = (unsigned char)key[i];
        if (k < 0x80) {
            unsigned char lk = k >= 'A' && k <= 'Z' ? (unsigned char)(k + 32) : k;
            if (lk != lc)
                return 0;
            i++;
        } else if (lc == 's' && klen - i >= 2 && memcmp(key + i, "\xc5\xbf", 2) == 0) {
            i += 2;
        } else if (lc == 'k' && klen - i >= 3 && memcmp(key + i, "\xe2\x84\xaa", 3) == 0) {
            i += 3;
        } else {
            return 0;
        }
    }
    return i == klen;
}

json_t *gotmpl_json_field(const json_t *obj, const char *name)
{
    /* Go walks the members in document order; each one whose key equals the field's name,
     * exactly or folded, is stored into the field, so the last such member wins. jansson
     * keeps insertion order and merges exact duplicates (keeping the last value). */
    const char *k;
    size_t klen;
    json_t *it, *found = NULL;
    json_object_keylen_foreach((json_t *)obj, k, klen, it)
    {
        if (go_fold_equal(k, klen, name))
            found = it;
    }
    return found;
}
