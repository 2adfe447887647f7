/*
 * strconv.c - the parts of Go's strconv and unicode/utf8 the engine needs: UTF-8 decode
 * and encode, an approximation of unicode.IsPrint, and float64 formatting
 * (strconv.AppendFloat with shortest round-trip digits, fmt e E f F g G x X).
 *
 * Shortest digits: for each precision 1..17 the correctly rounded "%.*e" (glibc) is parsed
 * back with strtod; the first that round-trips wins. When the closest n-digit decimal does
 * not round-trip, its neighbours one unit in the last place are tried too, which covers the
 * asymmetric rounding interval at powers of two (what Go's Ryu-style algorithm finds).
 */
#include "gotmpl-internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
