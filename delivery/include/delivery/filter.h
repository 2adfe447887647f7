/*
 * delivery/filter.h - Flipt's audit event filter (`audit.events`, `events:` of a sink).
 *
 * Syntax and errors follow Flipt's internal/server/audit/checker.go exactly: each entry is
 * "<noun>:<verb>" (parts beyond the second are ignored); nouns are constraint distribution
 * flag namespace rollout rule segment token variant or `*`; verbs are created deleted updated
 * or `*`; `*` expands to all; a pair produced twice is an error. Errors:
 *   "invalid event pair: X", "invalid noun: X", "invalid verb: X",
 *   "repeated event pair: flag:created", "no event pairs exist".
 * A filter is a 27-bit set over noun x verb: matching is a couple of string compares and a
 * bit test. A filter is immutable after parsing, so it can be shared between threads.
 */
#ifndef OUTBOX_DELIVERY_FILTER_H
#define OUTBOX_DELIVERY_FILTER_H

#include <stdbool.h>
#include <stddef.h>

#include "delivery/error.h"

typedef struct dlv_filter dlv_filter;

/*
 * Parse a list of entries.
 * @param[in]  entries, n  borrowed NUL-terminated strings.
 * @param[out] ret         a new filter, freed with dlv_filter_free(); untouched on failure.
 * @param[out] err         on failure, Flipt's message (see above); may be NULL.
 * @return DLV_OK, DLV_ERR_INVALID on a syntax error (err set), DLV_ERR_NOMEM.
 */
int dlv_filter_parse(const char *const *entries, size_t n, dlv_filter **ret, char *err,
                     size_t errlen);

/* A filter matching every pair ("*:*"). NULL when out of memory. Free with dlv_filter_free. */
dlv_filter *dlv_filter_new_all(void);

/* A copy of f (NULL when out of memory or f is NULL). */
dlv_filter *dlv_filter_dup(const dlv_filter *f);

/* Free; NULL is fine. */
void dlv_filter_free(dlv_filter *f);

/* true when "<type>:<action>" is in the set. A NULL filter matches every known pair.
 * Unknown nouns and verbs (e.g. "read") never match. */
bool dlv_filter_match(const dlv_filter *f, const char *type, const char *action);

/* Same, with lengths (strings need not be NUL-terminated, e.g. read from a record). */
bool dlv_filter_match_n(const dlv_filter *f, const char *type, size_t type_len, const char *action,
                        size_t action_len);

/* The set as text, "*:*" for every pair, else "noun:verb" pairs in Flipt's order separated
 * by ", " (cut to fit cap; 1024 bytes always suffice). A NULL filter is every pair. */
void dlv_filter_format(const dlv_filter *f, char *out, size_t cap);

/* Number of pairs in the set (0..27). */
size_t dlv_filter_count(const dlv_filter *f);

#endif
