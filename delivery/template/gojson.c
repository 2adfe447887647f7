/*
 * gojson.c - Go-compatible JSON: the capped buffer and arena used by the whole engine,
 * UTF-8 helpers, Go's float64 formatting (strconv.AppendFloat with shortest round-trip
 * digits), the encoding/json encoder of generic JSON values and of the Event struct, and
 * json.Valid.
 *
 * Shortest digits: for each precision 1..17 the correctly rounded "%.*e" (glibc) is parsed
 * back with strtod; the first that round-trips wins. When the closest n-digit decimal does
 * not round-trip, its neighbours one unit in the last place are tried too, which covers the
 * asymmetric rounding interval at powers of two (what Go's Ryu-style algorithm finds).
 */
#include "gotmpl-internal.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
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

/* ------------------------------------------------------------------ UTF-8 */

int32_t goutf8_decode(const unsigned char *s, size_t n, int *size)
{
    *size = 1;
    if (n == 0)
        return 0xFFFD;
    unsigned c = s[0];
    if (c < 0x80)
        return (int32_t)c;
    int need;
    int32_t r, min;
    if (c >= 0xC2 && c <= 0xDF) {
        need = 1;
        r = c & 0x1F;
        min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 2;
        r = c & 0x0F;
        min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 3;
        r = c & 0x07;
        min = 0x10000;
    } else {
        return 0xFFFD;
    }
    if (n < (size_t)need + 1)
        return 0xFFFD;
    for (int i = 1; i <= need; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0xFFFD;
        r = (r << 6) | (s[i] & 0x3F);
    }
    if (r < min || r > 0x10FFFF || (r >= 0xD800 && r <= 0xDFFF))
        return 0xFFFD;
    *size = need + 1;
    return r;
}

int goutf8_encode(char out[4], int32_t r)
{
    if (r < 0 || r > 0x10FFFF || (r >= 0xD800 && r <= 0xDFFF))
        r = 0xFFFD;
    if (r < 0x80) {
        out[0] = (char)r;
        return 1;
    }
    if (r < 0x800) {
        out[0] = (char)(0xC0 | (r >> 6));
        out[1] = (char)(0x80 | (r & 0x3F));
        return 2;
    }
    if (r < 0x10000) {
        out[0] = (char)(0xE0 | (r >> 12));
        out[1] = (char)(0x80 | ((r >> 6) & 0x3F));
        out[2] = (char)(0x80 | (r & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (r >> 18));
    out[1] = (char)(0x80 | ((r >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((r >> 6) & 0x3F));
    out[3] = (char)(0x80 | (r & 0x3F));
    return 4;
}

int gounicode_isprint(int32_t r)
{
    if (r < 0x20 || r == 0x7F)
        return 0;
    if (r < 0x7F)
        return 1;
    if (r < 0xA1 || r == 0xAD)
        return 0; /* C1 controls, NBSP (Zs), soft hyphen (Cf) */
    if ((r >= 0x2000 && r <= 0x200F) || (r >= 0x2028 && r <= 0x202F) ||
        (r >= 0x205F && r <= 0x206F) || r == 0x3000 || r == 0x1680 || r == 0x180E || r == 0xFEFF ||
        (r >= 0xFFF0 && r <= 0xFFFB) || r == 0xFFFE || r == 0xFFFF)
        return 0;
    if ((r >= 0xD800 && r <= 0xF8FF) || r >= 0xF0000 || (r >= 0xE0000 && r <= 0xE007F))
        return 0; /* surrogates, private use, tags */
    if (r > 0x10FFFF)
        return 0;
    return 1;
}

/* ------------------------------------------------------------------ floats */

/* Parse "%.*e" output "d.ddde[+-]XX" into digits and decimal exponent (value = d.ddd*10^e). */
static int parse_e(const char *s, char *digs, int *e10)
{
    int n = 0;
    for (; *s && *s != 'e'; s++)
        if (*s >= '0' && *s <= '9')
            digs[n++] = *s;
    *e10 = *s == 'e' ? (int)strtol(s + 1, NULL, 10) : 0;
    return n;
}

/* Does digs (n digits) * 10^(e10 - n + 1) parse back to want? No decimal point is
 * written, so the result does not depend on LC_NUMERIC. */
static int roundtrips(const char *digs, int n, int e10, double want)
{
    char buf[48];
    snprintf(buf, sizeof buf, "%.*se%d", n, digs, e10 - n + 1);
    return strtod(buf, NULL) == want;
}

int gofloat_shortest(double v, char digs[20], int *dp)
{
    v = fabs(v);
    for (int prec = 0; prec <= 16; prec++) {
        char buf[48];
        snprintf(buf, sizeof buf, "%.*e", prec, v);
        char d[20];
        int e10;
        int n = parse_e(buf, d, &e10);
        int ok = roundtrips(d, n, e10, v);
        if (!ok && prec < 16) {
            /* neighbours one unit in the last place */
            for (int dir = 1; dir >= -1 && !ok; dir -= 2) {
                char c[20];
                memcpy(c, d, (size_t)n);
                int ce = e10, cn = n, i = n - 1;
                if (dir > 0) {
                    while (i >= 0 && c[i] == '9')
                        c[i--] = '0';
                    if (i < 0) {
                        c[0] = '1';
                        ce++;
                    } else {
                        c[i]++;
                    }
                } else {
                    while (i >= 0 && c[i] == '0')
                        c[i--] = '9';
                    if (i < 0)
                        continue;
                    c[i]--;
                    if (c[0] == '0') {
                        memmove(c, c + 1, (size_t)n - 1);
                        cn = n - 1;
                        ce--;
                        if (cn == 0)
                            continue;
                    }
                }
                if (roundtrips(c, cn, ce, v)) {
                    memcpy(d, c, (size_t)cn);
                    n = cn;
                    e10 = ce;
                    ok = 1;
                }
            }
        }
        if (ok || prec == 16) {
            while (n > 1 && d[n - 1] == '0')
                n--;
            memcpy(digs, d, (size_t)n);
            digs[n] = '\0';
            *dp = e10 + 1;
            return n;
        }
    }
    return 0; /* not reached */
}

static int fmt_e(gobuf *b, int neg, const char *d, int nd, int dp, int prec, char fmt)
{
    char buf[16];
    if (neg)
        gobuf_putc(b, '-');
    gobuf_putc(b, nd ? d[0] : '0');
    if (prec > 0) {
        gobuf_putc(b, '.');
        int i = 1, m = nd < prec + 1 ? nd : prec + 1;
        if (i < m) {
            gobuf_put(b, d + i, (size_t)(m - i));
            i = m;
        }
        if (i <= prec)
            gobuf_pad(b, '0', (size_t)(prec - i + 1));
    }
    gobuf_putc(b, fmt);
    int exp = nd == 0 ? 0 : dp - 1;
    char sign = exp < 0 ? '-' : '+';
    if (exp < 0)
        exp = -exp;
    snprintf(buf, sizeof buf, "%c%02d", sign, exp);
    return gobuf_puts(b, buf);
}

static int fmt_f(gobuf *b, int neg, const char *d, int nd, int dp, int prec)
{
    if (neg)
        gobuf_putc(b, '-');
    if (dp > 0) {
        int m = nd < dp ? nd : dp;
        gobuf_put(b, d, (size_t)m);
        if (m < dp)
            gobuf_pad(b, '0', (size_t)(dp - m));
    } else {
        gobuf_putc(b, '0');
    }
    if (prec > 0) {
        gobuf_putc(b, '.');
        for (int i = 1; i <= prec; i++) {
            int j = dp + i - 1;
            gobuf_putc(b, (j >= 0 && j < nd) ? d[j] : '0');
        }
    }
    return b->err;
}

static int fmt_x(gobuf *b, double v, int prec, char fmt)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    int neg = (int)(bits >> 63);
    int exp = (int)((bits >> 52) & 0x7FF);
    uint64_t mant = bits & ((UINT64_C(1) << 52) - 1);
    if (exp == 0)
        exp++;
    else
        mant |= UINT64_C(1) << 52;
    exp -= 1023;
    if (mant == 0)
        exp = 0;
    mant <<= 60 - 52;
    while (mant != 0 && (mant & (UINT64_C(1) << 60)) == 0) {
        mant <<= 1;
        exp--;
    }
    if (prec >= 0 && prec < 15) {
        unsigned shift = (unsigned)prec * 4;
        uint64_t extra = (mant << shift) & ((UINT64_C(1) << 60) - 1);
        mant >>= 60 - shift;
        if ((extra | (mant & 1)) > (UINT64_C(1) << 59))
            mant++;
        mant <<= 60 - shift;
        if (mant & (UINT64_C(1) << 61)) {
            mant >>= 1;
            exp++;
        }
    }
    const char *hex = fmt == 'X' ? "0123456789ABCDEF" : "0123456789abcdef";
    if (neg)
        gobuf_putc(b, '-');
    gobuf_putc(b, '0');
    gobuf_putc(b, fmt);
    gobuf_putc(b, (char)('0' + ((mant >> 60) & 1)));
    mant <<= 4;
    if (prec < 0 && mant != 0) {
        gobuf_putc(b, '.');
        while (mant != 0) {
            gobuf_putc(b, hex[(mant >> 60) & 15]);
            mant <<= 4;
        }
    } else if (prec > 0) {
        gobuf_putc(b, '.');
        for (int i = 0; i < prec; i++) {
            gobuf_putc(b, hex[(mant >> 60) & 15]);
            mant <<= 4;
        }
    }
    gobuf_putc(b, fmt == 'X' ? 'P' : 'p');
    char sign = exp < 0 ? '-' : '+';
    if (exp < 0)
        exp = -exp;
    char buf[16];
    snprintf(buf, sizeof buf, "%c%02d", sign, exp);
    return gobuf_puts(b, buf);
}

/* Digits of |v| rounded to n significant digits (n >= 1), trailing zeros trimmed. */
static int digits_sig(double v, int n, char *d, int *dp)
{
    char buf[900]; /* a double has at most 767 significant decimal digits */
    if (n > 800)
        n = 800;
    snprintf(buf, sizeof buf, "%.*e", n - 1, fabs(v));
    int e10;
    int nd = parse_e(buf, d, &e10);
    while (nd > 0 && d[nd - 1] == '0')
        nd--;
    *dp = e10 + 1;
    return nd;
}

/* Digits of |v| rounded to prec decimals, trimmed of leading and trailing zeros. */
static int digits_fixed(double v, int prec, char *d, size_t dsize, int *dp)
{
    size_t need = 330 + (size_t)prec;
    char stack[512];
    char *buf = need <= sizeof stack ? stack : malloc(need);
    if (!buf)
        return -1;
    snprintf(buf, need, "%.*f", prec, fabs(v));
    int nd = 0, intdigits = 0, seen_dot = 0, lead = 1;
    *dp = 0;
    for (char *s = buf; *s; s++) {
        if (*s < '0' || *s > '9') { /* the decimal point, whatever the locale */
            seen_dot = 1;
            continue;
        }
        if (!seen_dot)
            intdigits++;
        if (lead && *s == '0') {
            if (seen_dot)
                (*dp)--;
            else
                intdigits--;
            continue;
        }
        lead = 0;
        if ((size_t)nd < dsize)
            d[nd++] = *s;
    }
    if (!lead && intdigits > 0)
        *dp = intdigits;
    while (nd > 0 && d[nd - 1] == '0')
        nd--;
    if (nd == 0)
        *dp = 0;
    if (buf != stack)
        free(buf);
    return nd;
}

int gofloat_format(gobuf *b, double v, char fmt, int prec)
{
    if (isnan(v))
        return gobuf_puts(b, "NaN");
    if (isinf(v))
        return gobuf_puts(b, v > 0 ? "+Inf" : "-Inf");
    if (fmt == 'x' || fmt == 'X')
        return fmt_x(b, v, prec, fmt);
    int neg = signbit(v) ? 1 : 0;
    char sd[20];
    char *d = sd;
    char *heap = NULL;
    int nd = 0, dp = 0;
    int shortest = prec < 0;
    if (shortest) {
        if (v != 0)
            nd = gofloat_shortest(v, sd, &dp);
        switch (fmt) {
        case 'e':
        case 'E':
            prec = nd ? nd - 1 : 0;
            break;
        case 'f':
        case 'F':
            prec = nd - dp > 0 ? nd - dp : 0;
            break;
        default:
            prec = nd;
            break;
        }
    } else if (v != 0) {
        size_t cap = (size_t)prec + 400;
        heap = malloc(cap);
        if (!heap) {
            b->err = GOTMPL_ENOMEM;
            return b->err;
        }
        d = heap;
        switch (fmt) {
        case 'e':
        case 'E':
            nd = digits_sig(v, prec + 1, d, &dp);
            break;
        case 'f':
        case 'F':
            nd = digits_fixed(v, prec, d, cap, &dp);
            if (nd < 0) {
                free(heap);
                b->err = GOTMPL_ENOMEM;
                return b->err;
            }
            break;
        default:
            if (prec == 0)
                prec = 1;
            nd = digits_sig(v, prec, d, &dp);
            break;
        }
    } else if (fmt == 'g' || fmt == 'G') {
        if (prec == 0)
            prec = 1;
    }
    int rc;
    switch (fmt) {
    case 'e':
    case 'E':
        rc = fmt_e(b, neg, d, nd, dp, prec, fmt);
        break;
    case 'f':
    case 'F':
        rc = fmt_f(b, neg, d, nd, dp, prec);
        break;
    default: {
        int eprec = prec;
        if (eprec > nd && nd >= dp)
            eprec = nd;
        if (shortest)
            eprec = 6;
        int exp = dp - 1;
        if (nd == 0)
            exp = 0; /* Go: zero has dp 0 -> exp -1; keep %f branch */
        if (nd != 0 && (exp < -4 || exp >= eprec)) {
            if (prec > nd)
                prec = nd;
            rc = fmt_e(b, neg, d, nd, dp, prec - 1, (char)(fmt + 'e' - 'g'));
        } else {
            if (prec > dp)
                prec = nd;
            rc = fmt_f(b, neg, d, nd, dp, prec - dp > 0 ? prec - dp : 0);
        }
        break;
    }
    }
    free(heap);
    return rc;
}

int gojson_format_float(double v, char *buf, size_t size)
{
    if (!isfinite(v))
        return -1;
    gobuf b;
    gobuf_init(&b, 0);
    double a = fabs(v);
    int e = a != 0 && (a < 1e-6 || a >= 1e21);
    gofloat_format(&b, v, e ? 'e' : 'f', -1);
    if (b.err) {
        gobuf_free(&b);
        return -1;
    }
    size_t n = b.len;
    if (e && n >= 4 && b.p[n - 4] == 'e' && b.p[n - 3] == '-' && b.p[n - 2] == '0') {
        b.p[n - 2] = b.p[n - 1];
        n--;
    }
    if (n + 1 > size) {
        gobuf_free(&b);
        return -1;
    }
    memcpy(buf, b.p, n);
    buf[n] = '\0';
    gobuf_free(&b);
    return (int)n;
}

/* ------------------------------------------------------------------ encoder */

int gojson__string(gobuf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *u = (const unsigned char *)s;
    gobuf_putc(b, '"');
    size_t start = 0, i = 0;
    while (i < n) {
        unsigned c = u[i];
        if (c < 0x80) {
            if (c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&') {
                i++;
                continue;
            }
            gobuf_put(b, s + start, i - start);
            switch (c) {
            case '"':
            case '\\':
                gobuf_putc(b, '\\');
                gobuf_putc(b, (char)c);
                break;
            case '\b':
                gobuf_puts(b, "\\b");
                break;
            case '\f':
                gobuf_puts(b, "\\f");
                break;
            case '\n':
                gobuf_puts(b, "\\n");
                break;
            case '\r':
                gobuf_puts(b, "\\r");
                break;
            case '\t':
                gobuf_puts(b, "\\t");
                break;
            default: {
                char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
                gobuf_put(b, e, 6);
            }
            }
            i++;
            start = i;
            continue;
        }
        int size;
        int32_t r = goutf8_decode(u + i, n - i, &size);
        if (r == 0xFFFD && size == 1) {
            gobuf_put(b, s + start, i - start);
            gobuf_puts(b, "\\ufffd");
            i += 1;
            start = i;
            continue;
        }
        if (r == 0x2028 || r == 0x2029) {
            gobuf_put(b, s + start, i - start);
            gobuf_puts(b, r == 0x2028 ? "\\u2028" : "\\u2029");
            i += (size_t)size;
            start = i;
            continue;
        }
        i += (size_t)size;
    }
    gobuf_put(b, s + start, n - start);
    return gobuf_putc(b, '"');
}

static int number(gobuf *b, double v, char *err, size_t errlen)
{
    char buf[GOJSON_FLOAT_MAX];
    int n = gojson_format_float(v, buf, sizeof buf);
    if (n < 0) {
        if (errlen)
            snprintf(err, errlen, "json: unsupported value: %s",
                     isnan(v) ? "NaN" : (v > 0 ? "+Inf" : "-Inf"));
        return -1;
    }
    return gobuf_put(b, buf, (size_t)n);
}

static int kv_cmp(const void *a, const void *b)
{
    const gokv *x = a, *y = b;
    size_t m = x->n < y->n ? x->n : y->n;
    int c = memcmp(x->k, y->k, m);
    if (c)
        return c;
    return x->n < y->n ? -1 : x->n > y->n;
}

size_t gokv_sorted(const json_t *o, gokv *a, size_t cap)
{
    size_t i = 0;
    for (void *it = json_object_iter((json_t *)o); it && i < cap;
         it = json_object_iter_next((json_t *)o, it), i++) {
        a[i].k = json_object_iter_key(it);
        a[i].n = json_object_iter_key_len(it);
        a[i].v = json_object_iter_value(it);
    }
    if (i > 1)
        qsort(a, i, sizeof *a, kv_cmp);
    return i;
}

/* Iterative-enough recursion: jansson limits parse depth to 2048, which bounds this too. */
int gojson__value(gobuf *b, const json_t *v, char *err, size_t errlen)
{
    if (!v)
        return gobuf_puts(b, "null");
    switch (json_typeof(v)) {
    case JSON_NULL:
        return gobuf_puts(b, "null");
    case JSON_TRUE:
        return gobuf_puts(b, "true");
    case JSON_FALSE:
        return gobuf_puts(b, "false");
    case JSON_INTEGER:
        return number(b, (double)json_integer_value(v), err, errlen);
    case JSON_REAL:
        return number(b, json_real_value(v), err, errlen);
    case JSON_STRING:
        return gojson__string(b, json_string_value(v), json_string_length(v));
    case JSON_ARRAY: {
        gobuf_putc(b, '[');
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (i)
                gobuf_putc(b, ',');
            int rc = gojson__value(b, json_array_get(v, i), err, errlen);
            if (rc)
                return rc;
        }
        return gobuf_putc(b, ']');
    }
    case JSON_OBJECT: {
        size_t n = json_object_size(v);
        gokv *a = n ? malloc(n * sizeof *a) : NULL;
        if (n && !a) {
            b->err = GOTMPL_ENOMEM;
            return b->err;
        }
        n = gokv_sorted(v, a, n);
        gobuf_putc(b, '{');
        int rc = 0;
        for (size_t i = 0; i < n && !rc; i++) {
            if (i)
                gobuf_putc(b, ',');
            gojson__string(b, a[i].k, a[i].n);
            gobuf_putc(b, ':');
            rc = gojson__value(b, a[i].v, err, errlen);
        }
        free(a);
        return rc ? rc : gobuf_putc(b, '}');
    }
    }
    return gobuf_puts(b, "null");
}

static void actor_json(gobuf *b, const gotmpl_event *ev)
{
    static const char *const keys[ACT_N] = {"authentication", "ip", "email", "name", "picture"};
    gobuf_putc(b, '{');
    int first = 1;
    for (int i = 0; i < ACT_N; i++) {
        if (ev->actor[i].n == 0)
            continue;
        if (!first)
            gobuf_putc(b, ',');
        first = 0;
        gobuf_putc(b, '"');
        gobuf_puts(b, keys[i]);
        gobuf_puts(b, "\":");
        gojson__string(b, ev->actor[i].p, ev->actor[i].n);
    }
    gobuf_putc(b, '}');
}

int gojson__event(gobuf *b, const gotmpl_event *ev, char *err, size_t errlen)
{
    gobuf_puts(b, "{\"version\":");
    gojson__string(b, ev->version.p, ev->version.n);
    gobuf_puts(b, ",\"type\":");
    gojson__string(b, ev->type.p, ev->type.n);
    gobuf_puts(b, ",\"action\":");
    gojson__string(b, ev->action.p, ev->action.n);
    gobuf_puts(b, ",\"metadata\":{\"actor\":");
    actor_json(b, ev);
    gobuf_puts(b, "},\"payload\":");
    int rc = gojson__value(b, ev->payload, err, errlen);
    if (rc)
        return rc;
    gobuf_puts(b, ",\"timestamp\":");
    gojson__string(b, ev->timestamp.p, ev->timestamp.n);
    gobuf_puts(b, ",\"status\":");
    gojson__string(b, ev->status.p, ev->status.n);
    return gobuf_putc(b, '}');
}

int gojson__gv(gobuf *b, const gv *v, char *err, size_t errlen)
{
    switch (v->kind) {
    case GV_INVALID:
    case GV_NIL:
        return gobuf_puts(b, "null");
    case GV_BOOL:
        return gobuf_puts(b, v->u.b ? "true" : "false");
    case GV_INT: {
        char buf[32];
        snprintf(buf, sizeof buf, "%lld", (long long)v->u.i);
        return gobuf_puts(b, buf);
    }
    case GV_UINT8: {
        char buf[32];
        snprintf(buf, sizeof buf, "%lld", (long long)v->u.i);
        return gobuf_puts(b, buf);
    }
    case GV_FLOAT:
        return number(b, v->u.f, err, errlen);
    case GV_STRING:
        return gojson__string(b, v->u.s.p, v->u.s.n);
    case GV_MAP:
        return gojson__value(b, v->u.c.j, err, errlen);
    case GV_SLICE: {
        gobuf_putc(b, '[');
        for (size_t i = 0; i < v->u.c.len; i++) {
            if (i)
                gobuf_putc(b, ',');
            int rc = gojson__value(b, json_array_get(v->u.c.j, v->u.c.off + i), err, errlen);
            if (rc)
                return rc;
        }
        return gobuf_putc(b, ']');
    }
    case GV_EVENT:
        return gojson__event(b, v->u.ev, err, errlen);
    case GV_META:
        gobuf_puts(b, "{\"actor\":");
        actor_json(b, v->u.ev);
        return gobuf_putc(b, '}');
    case GV_ACTOR:
        actor_json(b, v->u.ev);
        return b->err;
    }
    return gobuf_puts(b, "null");
}

static int finish(gobuf *b, int rc, char **out, size_t *out_len)
{
    if (rc == 0 && !b->err && !b->p)
        gobuf_put(b, "", 0);
    if (rc == 0 && !b->err && !b->p) {
        b->p = malloc(1);
        if (!b->p)
            b->err = GOTMPL_ENOMEM;
        else
            b->p[0] = '\0';
    }
    if (rc || b->err) {
        gobuf_free(b);
        return rc == -1 ? -1 : -2;
    }
    *out = b->p;
    *out_len = b->len;
    return 0;
}

int gojson_encode(const json_t *v, char **out, size_t *out_len, char *err, size_t errlen)
{
    gobuf b;
    gobuf_init(&b, 0);
    int rc = gojson__value(&b, v, err, errlen);
    return finish(&b, rc, out, out_len);
}

int gojson_encode_string(const char *s, size_t len, char **out, size_t *out_len)
{
    gobuf b;
    gobuf_init(&b, 0);
    int rc = gojson__string(&b, s, len);
    return finish(&b, rc, out, out_len);
}

int gotmpl_event_to_json(const gotmpl_event *ev, char **out, size_t *out_len)
{
    gobuf b;
    gobuf_init(&b, 0);
    char err[64];
    int rc = gojson__event(&b, ev, err, sizeof err);
    return finish(&b, rc, out, out_len) ? GOTMPL_ENOMEM : GOTMPL_OK;
}

/* ------------------------------------------------------------------ json.Valid */

static size_t skip_ws(const unsigned char *s, size_t n, size_t i)
{
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n'))
        i++;
    return i;
}

static int hexd(unsigned c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Scan a string starting at s[i] == '"'; returns index after it or 0 on error. */
static size_t scan_string(const unsigned char *s, size_t n, size_t i)
{
    i++;
    while (i < n) {
        unsigned c = s[i];
        if (c == '"')
            return i + 1;
        if (c < 0x20)
            return 0;
        if (c == '\\') {
            if (i + 1 >= n)
                return 0;
            unsigned e = s[i + 1];
            if (e == 'u') {
                if (i + 5 >= n || !hexd(s[i + 2]) || !hexd(s[i + 3]) || !hexd(s[i + 4]) ||
                    !hexd(s[i + 5]))
                    return 0;
                i += 6;
                continue;
            }
            if (!strchr("\"\\/bfnrt", (int)e) || e == 0)
                return 0;
            i += 2;
            continue;
        }
        i++;
    }
    return 0;
}

static size_t scan_number(const unsigned char *s, size_t n, size_t i)
{
    if (i < n && s[i] == '-')
        i++;
    if (i >= n)
        return 0;
    if (s[i] == '0')
        i++;
    else if (s[i] >= '1' && s[i] <= '9')
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
    else
        return 0;
    if (i < n && s[i] == '.') {
        i++;
        if (i >= n || s[i] < '0' || s[i] > '9')
            return 0;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        if (i >= n || s[i] < '0' || s[i] > '9')
            return 0;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
    }
    return i;
}

/* Scan `"key" :` at s[i] and the whitespace after it; index of the value, or 0. */
static size_t scan_key(const unsigned char *s, size_t n, size_t i)
{
    if (i >= n || s[i] != '"')
        return 0;
    i = scan_string(s, n, i);
    if (!i)
        return 0;
    i = skip_ws(s, n, i);
    if (i >= n || s[i] != ':')
        return 0;
    return skip_ws(s, n, i + 1);
}

#define GOJSON_MAX_DEPTH 10000

int gojson_valid(const void *buf, size_t len)
{
    const unsigned char *s = buf;
    if (!s)
        return 0;
    /* stack of container kinds: 1 bit per level would do; a byte array keeps it simple */
    unsigned char *stack = malloc(GOJSON_MAX_DEPTH + 1);
    if (!stack)
        return 0;
    size_t depth = 0, i = skip_ws(s, len, 0);
    int ok = 0;
    for (;;) {
        /* expect a value at s[i] */
        if (i >= len)
            goto out;
        unsigned c = s[i];
        if (c == '{' || c == '[') {
            if (depth >= GOJSON_MAX_DEPTH)
                goto out;
            stack[depth++] = (unsigned char)c;
            i = skip_ws(s, len, i + 1);
            if (i < len && s[i] == (c == '{' ? '}' : ']')) {
                depth--;
                i++;
                goto after_value;
            }
            if (c == '{') {
                i = scan_key(s, len, i);
                if (!i)
                    goto out;
            }
            continue;
        } else if (c == '"') {
            i = scan_string(s, len, i);
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            i = scan_number(s, len, i);
        } else if (len - i >= 4 && memcmp(s + i, "true", 4) == 0) {
            i += 4;
        } else if (len - i >= 5 && memcmp(s + i, "false", 5) == 0) {
            i += 5;
        } else if (len - i >= 4 && memcmp(s + i, "null", 4) == 0) {
            i += 4;
        } else {
            goto out;
        }
        if (!i)
            goto out;
    after_value:
        for (;;) {
            i = skip_ws(s, len, i);
            if (depth == 0) {
                ok = i == len;
                goto out;
            }
            if (i >= len)
                goto out;
            unsigned char top = stack[depth - 1];
            if (s[i] == ',') {
                i = skip_ws(s, len, i + 1);
                if (top == '{') {
                    i = scan_key(s, len, i);
                    if (!i)
                        goto out;
                }
                break; /* next value */
            }
            if (s[i] == (top == '{' ? '}' : ']')) {
                depth--;
                i++;
                continue;
            }
            goto out;
        }
    }
out:
    free(stack);
    return ok;
}
