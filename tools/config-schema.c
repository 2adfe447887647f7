/*
 * tools/config-schema.c - walking a YAML mapping with a schema table (see config-schema.h).
 */
#include "config-schema.h"

#include <stdio.h>
#include <string.h>

#include "config-value.h"
#include "delivery/duration.h"

typedef struct walk {
    const cs_table *t;
    void *obj, *state;
    uint64_t *seen;
} walk;

void cs_key_list(const cs_table *t, char *out, size_t cap)
{
    size_t len = 0;
    if (!cap)
        return;
    out[0] = '\0';
    for (size_t i = 0; i < t->n_keys; i++) {
        int n = snprintf(out + len, cap - len, "%s%s", i ? ", " : "", t->keys[i].name);
        if (n < 0 || (size_t)n >= cap - len)
            return;
        len += (size_t)n;
    }
}

uint64_t cs_bit(const cs_table *t, const char *name)
{
    for (size_t i = 0; i < t->n_keys && i < 64; i++)
        if (strcmp(t->keys[i].name, name) == 0)
            return UINT64_C(1) << i;
    return 0;
}

/* "a, b or c" from a NULL-terminated word list. */
static void words_text(const char *const *w, char *out, size_t cap)
{
    size_t len = 0, n = 0;
    while (w[n])
        n++;
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        int k = snprintf(out + len, cap - len, "%s%s",
                         i == 0       ? ""
                         : i + 1 == n ? " or "
                                      : ", ",
                         w[i]);
        if (k < 0 || (size_t)k >= cap - len)
            return;
        len += (size_t)k;
    }
}

/* "1MiB" for whole KiB..TiB multiples, else bytes. */
static void size_text(uint64_t v, char *out, size_t cap)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    size_t u = 0;
    while (u + 1 < sizeof units / sizeof units[0] && v >= 1024 && v % 1024 == 0) {
        v /= 1024;
        u++;
    }
    (void)snprintf(out, cap, "%llu%s", (unsigned long long)v, units[u]);
}

static int apply(cy_ctx *x, const cs_key *k, const cy_node *v, const char *path, void *base,
                 const walk *w)
{
    void *f = k->off == CS_NO_FIELD ? NULL : (char *)base + k->off;
    char e[512];
    switch (k->type) {
    case CS_STRING:
        if (cv_string(x, v, path, (char **)f) < 0)
            return -1;
        if (k->rule && k->rule(*(char **)f, e, sizeof e) != 0) {
            cy_errf(x, v, path, "%s", e);
            return -1;
        }
        return 0;
    case CS_OPT_STRING:
        if (cv_opt_string(x, v, path, (char **)f) < 0)
            return -1;
        if (k->rule && *(char **)f && k->rule(*(char **)f, e, sizeof e) != 0) {
            cy_errf(x, v, path, "%s", e);
            return -1;
        }
        return 0;
    case CS_BOOL:
        return cv_bool(x, v, path, (int *)f);
    case CS_UINT: {
        long long n;
        if (cv_int(x, v, path, (long long)k->lo, (long long)k->hi, &n) < 0)
            return -1;
        *(unsigned *)f = (unsigned)n;
        return 0;
    }
    case CS_DOUBLE:
        return cv_double(x, v, path, k->lo, k->hi, (double *)f);
    case CS_SIZE: {
        uint64_t n;
        if (cv_size(x, v, path, &n) < 0)
            return -1;
        if (n < (uint64_t)k->lo) {
            char t[32];
            size_text((uint64_t)k->lo, t, sizeof t);
            if (k->lo <= 1)
                cy_errf(x, v, path, "must be positive");
            else
                cy_errf(x, v, path, "must be at least %s", t);
            return -1;
        }
        *(uint64_t *)f = n;
        return 0;
    }
    case CS_DURATION_MS:
    case CS_POSITIVE_MS: {
        int64_t ms;
        if (cv_duration_ms(x, v, path, &ms) < 0)
            return -1;
        if (k->type == CS_POSITIVE_MS && ms <= 0) {
            cy_errf(x, v, path, "must be a positive duration, found \"%.80s\"", v->str);
            return -1;
        }
        if (ms < 0) {
            cy_errf(x, v, path, "must not be negative");
            return -1;
        }
        if (k->hi > 0 && (ms < (int64_t)k->lo || ms > (int64_t)k->hi)) {
            char lo[32], hi[32];
            (void)dlv_duration_format((int64_t)k->lo * 1000000, lo, sizeof lo);
            (void)dlv_duration_format((int64_t)k->hi * 1000000, hi, sizeof hi);
            cy_errf(x, v, path, "must be between %s and %s", lo, hi);
            return -1;
        }
        *(int64_t *)f = ms;
        return 0;
    }
    case CS_DURATION_NS:
        return cv_duration_ns(x, v, path, (int64_t *)f);
    case CS_ENUM: {
        char t[128];
        words_text(k->words, t, sizeof t);
        if (cy_want_scalar(x, v, path, t) < 0)
            return -1;
        for (size_t i = 0; k->words[i]; i++)
            if (strcmp(v->str, k->words[i]) == 0) {
                *(int *)f = k->values[i];
                return 0;
            }
        cy_errf(x, v, path, "expected %s, found \"%.40s\"", t, v->str);
        return -1;
    }
    case CS_NODE:
        *(const cy_node **)f = v;
        return 0;
    case CS_NODE_SCALAR:
        *(const cy_node **)f = v;
        return cy_is_null(v) ? 0 : cy_want_scalar(x, v, path, "a string");
    case CS_NODE_LIST:
        *(const cy_node **)f = v;
        return cy_is_null(v) ? 0 : cy_want_list(x, v, path);
    case CS_SECTION:
        if (f)
            *(const cy_node **)f = v;
        return cy_is_null(v) ? 0 : cs_walk(x, v, path, k->sub, w->obj, w->state, NULL);
    case CS_CUSTOM:
        return k->custom(x, v, path, f);
    }
    return -1;
}

static int on_pair(cy_ctx *x, const cy_node *key, const cy_node *v, const char *path, void *ud)
{
    const walk *w = ud;
    const cs_table *t = w->t;
    for (size_t i = 0; i < t->n_keys; i++) {
        const cs_key *k = &t->keys[i];
        if (strcmp(k->name, key->str) != 0)
            continue;
        if (w->seen && i < 64)
            *w->seen |= UINT64_C(1) << i;
        return apply(x, k, v, path, k->base == CS_STATE ? w->state : w->obj, w);
    }
    if (!t->strict)
        return 0;
    char list[1024];
    cs_key_list(t, list, sizeof list);
    cy_errf(x, key, path, "unknown key (expected one of: %s)", list);
    return -1;
}

/* ---- printing ---------------------------------------------------------------------------- */

void cs_print_quoted(FILE *out, const char *value)
{
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(out, "\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f)
            fprintf(out, "\\x%02x", *p);
        else
            fputc(*p, out);
    }
    fputc('"', out);
}

static void print_row(FILE *out, const cs_key *k, const void *obj, int indent)
{
    const void *f = (const char *)obj + k->off;
    char t[64];
    switch (k->type) {
    case CS_STRING:
    case CS_OPT_STRING:
        if (!*(char *const *)f)
            return;
        fprintf(out, "%*s%s: ", indent, "", k->name);
        cs_print_quoted(out, *(char *const *)f);
        fputc('\n', out);
        return;
    case CS_BOOL:
        fprintf(out, "%*s%s: %s\n", indent, "", k->name, *(const int *)f ? "true" : "false");
        return;
    case CS_UINT:
        fprintf(out, "%*s%s: %u\n", indent, "", k->name, *(const unsigned *)f);
        return;
    case CS_DOUBLE:
        fprintf(out, "%*s%s: %g\n", indent, "", k->name, *(const double *)f);
        return;
    case CS_SIZE:
        size_text(*(const uint64_t *)f, t, sizeof t);
        fprintf(out, "%*s%s: %s\n", indent, "", k->name, t);
        return;
    case CS_DURATION_MS:
    case CS_POSITIVE_MS:
    case CS_DURATION_NS: {
        int64_t v = *(const int64_t *)f;
        if (k->type == CS_POSITIVE_MS && v == 0) /* unset: the user's default */
            return;
        if (k->type != CS_DURATION_NS)
            v = v > INT64_MAX / 1000000 ? INT64_MAX : v * 1000000;
        (void)dlv_duration_format(v, t, sizeof t);
        fprintf(out, "%*s%s: %s\n", indent, "", k->name, t);
        return;
    }
    case CS_ENUM:
        for (size_t i = 0; k->words[i]; i++)
            if (k->values[i] == *(const int *)f)
                fprintf(out, "%*s%s: %s\n", indent, "", k->name, k->words[i]);
        return;
    default: /* nodes, sections and custom rows need a print function */
        return;
    }
}

void cs_print(FILE *out, const cs_table *t, const void *obj, int indent)
{
    for (size_t i = 0; i < t->n_keys; i++) {
        const cs_key *k = &t->keys[i];
        if (k->print)
            k->print(out, k->name, obj, indent);
        else if (k->base == CS_OBJ && k->off != CS_NO_FIELD)
            print_row(out, k, obj, indent);
    }
}

int cs_walk(cy_ctx *x, const cy_node *map, const char *path, const cs_table *t, void *obj,
            void *state, uint64_t *seen)
{
    if (!map || cy_is_null(map)) /* absent or null: nothing to walk */
        return 0;
    walk w = {t, obj, state, seen};
    return cy_each_pair(x, map, path, on_pair, &w);
}
