/*
 * buffer.c - the two allocators every execution uses: gobuf, a growable byte buffer with
 * a cap and a sticky error (output, scratch strings), and goarena, a bump arena for the
 * strings computed during one execution, freed at once at the end (with a byte cap).
 */
#include "gotmpl-internal.h"

#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ buffer */

void gobuf_init(gobuf *b, size_t max)
{
    memset(b, 0, sizeof *b);
    b->max = max;
}

void gobuf_free(gobuf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

int gobuf_put(gobuf *b, const void *s, size_t n)
{
    if (b->err)
        return b->err;
    if (n == 0)
        return 0;
    if (b->max && (n > b->max || b->len > b->max - n)) {
        b->err = GOTMPL_ETOOBIG;
        return b->err;
    }
    if (b->len + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 64;
        while (nc < b->len + n + 1) {
            if (nc > SIZE_MAX / 2) {
                b->err = GOTMPL_ENOMEM;
                return b->err;
            }
            nc *= 2;
        }
        char *np = realloc(b->p, nc);
        if (!np) {
            b->err = GOTMPL_ENOMEM;
            return b->err;
        }
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

int gobuf_putc(gobuf *b, char c)
{
    return gobuf_put(b, &c, 1);
}

int gobuf_puts(gobuf *b, const char *s)
{
    return gobuf_put(b, s, strlen(s));
}

int gobuf_pad(gobuf *b, char c, size_t n)
{
    char chunk[64];
    memset(chunk, c, sizeof chunk);
    while (n > 0) {
        size_t k = n < sizeof chunk ? n : sizeof chunk;
        if (gobuf_put(b, chunk, k))
            return b->err;
        n -= k;
    }
    return 0;
}

/* ------------------------------------------------------------------ arena */

struct goarena_blk {
    struct goarena_blk *next;
    size_t used, size;
    max_align_t data[];
};

void goarena_init(goarena *a, size_t limit)
{
    memset(a, 0, sizeof *a);
    a->limit = limit;
}

void goarena_free(goarena *a)
{
    struct goarena_blk *b = a->head;
    while (b) {
        struct goarena_blk *n = b->next;
        free(b);
        b = n;
    }
    a->head = NULL;
    a->used = 0;
}

char *goarena_dup(goarena *a, const char *s, size_t n)
{
    if (a->limit && (n > a->limit || a->used > a->limit - n)) {
        a->used = a->limit + 1;
        return NULL;
    }
    struct goarena_blk *b = a->head;
    if (!b || b->size - b->used < n + 1) {
        size_t sz = n + 16 > 16384 ? n + 16 : 16384;
        b = malloc(sizeof *b + sz);
        if (!b)
            return NULL;
        b->used = 0;
        b->size = sz;
        b->next = a->head;
        a->head = b;
    }
    char *p = (char *)b->data + b->used;
    if (s && n)
        memcpy(p, s, n);
    p[n] = '\0';
    b->used += (n + 1 + 15) & ~(size_t)15;
    if (b->used > b->size)
        b->used = b->size;
    a->used += n;
    return p;
}
