/*
 * delivery/filter.c - Flipt's audit event filter as a bit set over noun x verb
 * (see filter.h; semantics of Flipt's internal/server/audit/checker.go).
 */
#include "delivery/filter.h"
#include "delivery/error.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Flipt's nouns and verbs, in its order. */
static const char *const nouns[] = {"constraint", "distribution", "flag",  "namespace", "rollout",
                                    "rule",       "segment",      "token", "variant"};
static const char *const verbs[] = {"created", "deleted", "updated"};
#define N_NOUNS (sizeof nouns / sizeof nouns[0])
#define N_VERBS (sizeof verbs / sizeof verbs[0])

struct dlv_filter {
    uint32_t bits; /* bit noun*N_VERBS + verb */
};

static int lookup(const char *const *tab, size_t n, const char *s, size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(tab[i]) == len && memcmp(tab[i], s, len) == 0)
            return (int)i;
    return -1;
}

int dlv_filter_parse(const char *const *entries, size_t n, dlv_filter **ret, char *err,
                     size_t errlen)
{
    uint32_t bits = 0;
    char dummy[1];
    if (!err || errlen == 0) {
        err = dummy;
        errlen = sizeof dummy;
    }
    for (size_t e = 0; e < n; e++) {
        const char *ent = entries[e] ? entries[e] : "";
        const char *c1 = strchr(ent, ':');
        if (!c1) {
            (void)snprintf(err, errlen, "invalid event pair: %s", ent);
            return DLV_ERR_INVALID;
        }
        const char *verb = c1 + 1;
        const char *c2 = strchr(verb, ':');
        size_t nlen = (size_t)(c1 - ent);
        size_t vlen = c2 ? (size_t)(c2 - verb) : strlen(verb);

        uint32_t nmask = 0, vmask = 0;
        if (nlen == 1 && ent[0] == '*') {
            nmask = (1u << N_NOUNS) - 1;
        } else {
            int i = lookup(nouns, N_NOUNS, ent, nlen);
            if (i < 0) {
                (void)snprintf(err, errlen, "invalid noun: %.*s", (int)nlen, ent);
                return DLV_ERR_INVALID;
            }
            nmask = 1u << i;
        }
        if (vlen == 1 && verb[0] == '*') {
            vmask = (1u << N_VERBS) - 1;
        } else {
            int i = lookup(verbs, N_VERBS, verb, vlen);
            if (i < 0) {
                (void)snprintf(err, errlen, "invalid verb: %.*s", (int)vlen, verb);
                return DLV_ERR_INVALID;
            }
            vmask = 1u << i;
        }
        /* Flipt expands in noun order, then verb order, and fails on the first repeat. */
        for (size_t ni = 0; ni < N_NOUNS; ni++) {
            if (!(nmask & (1u << ni)))
                continue;
            for (size_t vi = 0; vi < N_VERBS; vi++) {
                if (!(vmask & (1u << vi)))
                    continue;
                uint32_t bit = 1u << (ni * N_VERBS + vi);
                if (bits & bit) {
                    (void)snprintf(err, errlen, "repeated event pair: %s:%s", nouns[ni], verbs[vi]);
                    return DLV_ERR_INVALID;
                }
                bits |= bit;
            }
        }
    }
    if (bits == 0) {
        (void)snprintf(err, errlen, "no event pairs exist");
        return DLV_ERR_INVALID;
    }
    dlv_filter *f = malloc(sizeof *f);
    if (!f) {
        (void)snprintf(err, errlen, "out of memory");
        return DLV_ERR_NOMEM;
    }
    f->bits = bits;
    *ret = f;
    return DLV_OK;
}

void dlv_filter_format(const dlv_filter *f, char *out, size_t cap)
{
    const uint32_t all = (1u << (N_NOUNS * N_VERBS)) - 1;
    size_t len = 0;
    if (!cap)
        return;
    out[0] = '\0';
    if (!f || f->bits == all) {
        (void)snprintf(out, cap, "*:*");
        return;
    }
    for (size_t i = 0; i < N_NOUNS * N_VERBS; i++) {
        if (!(f->bits & (1u << i)))
            continue;
        int n = snprintf(out + len, cap - len, "%s%s:%s", len ? ", " : "", nouns[i / N_VERBS],
                         verbs[i % N_VERBS]);
        if (n < 0 || (size_t)n >= cap - len)
            return;
        len += (size_t)n;
    }
}

dlv_filter *dlv_filter_new_all(void)
{
    dlv_filter *f = malloc(sizeof *f);
    if (f)
        f->bits = (1u << (N_NOUNS * N_VERBS)) - 1;
    return f;
}

dlv_filter *dlv_filter_dup(const dlv_filter *f)
{
    if (!f)
        return NULL;
    dlv_filter *d = malloc(sizeof *d);
    if (d)
        *d = *f;
    return d;
}

void dlv_filter_free(dlv_filter *f)
{
    free(f);
}

bool dlv_filter_match_n(const dlv_filter *f, const char *type, size_t type_len, const char *action,
                        size_t action_len)
{
    if (!type || !action)
        return false;
    int ni = lookup(nouns, N_NOUNS, type, type_len);
    int vi = lookup(verbs, N_VERBS, action, action_len);
    if (ni < 0 || vi < 0)
        return false;
    if (!f)
        return true;
    return (f->bits >> (ni * (int)N_VERBS + vi)) & 1u;
}

bool dlv_filter_match(const dlv_filter *f, const char *type, const char *action)
{
    if (!type || !action)
        return false;
    return dlv_filter_match_n(f, type, strlen(type), action, strlen(action));
}

size_t dlv_filter_count(const dlv_filter *f)
{
    if (!f)
        return N_NOUNS * N_VERBS;
    return (size_t)__builtin_popcount(f->bits);
}
