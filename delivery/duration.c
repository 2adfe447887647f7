/*
 * delivery/duration.c - Go's time.ParseDuration (same grammar, overflow rules and error
 * texts), Go's Duration.String, and a byte-size parser for config values.
 */
#include "delivery/duration.h"
#include "delivery/error.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define U63 (UINT64_C(1) << 63)

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Go's time.quote: '"' and '\\' escaped, bytes < 0x20 or >= 0x80 as \xHH. */
static void go_quote(const char *s, size_t len, char *out, size_t outlen)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
#define PUT(ch)                                                                                    \
    do {                                                                                           \
        if (o + 1 < outlen)                                                                        \
            out[o++] = (ch);                                                                       \
    } while (0)
    if (outlen == 0)
        return;
    PUT('"');
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x80 || c < 0x20) {
            PUT('\\');
            PUT('x');
            PUT(hex[c >> 4]);
            PUT(hex[c & 15]);
        } else {
            if (c == '"' || c == '\\')
                PUT('\\');
            PUT((char)c);
        }
    }
    PUT('"');
#undef PUT
    out[o] = '\0';
}

static int invalid(const char *orig, size_t len, char *err, size_t errlen)
{
    char q[256];
    go_quote(orig, len, q, sizeof q);
    set_err(err, errlen, "time: invalid duration %s", q);
    return DLV_ERR_INVALID;
}

static const struct {
    const char *name;
    uint64_t ns;
} units[] = {
    {"ns", 1},
    {"us", 1000},
    {"\xc2\xb5s", 1000}, /* U+00B5 MICRO SIGN */
    {"\xce\xbcs", 1000}, /* U+03BC GREEK SMALL LETTER MU */
    {"ms", 1000000},
    {"s", 1000000000},
    {"m", UINT64_C(60) * 1000000000},
    {"h", UINT64_C(3600) * 1000000000},
    /* only with DLV_DURATION_DAYS (outboxctl's "7d ago"); Go has no such units */
    {"d", UINT64_C(86400) * 1000000000},
    {"w", UINT64_C(7) * 86400 * 1000000000},
};
#define GO_UNITS 8 /* the first 8 entries are Go's */

int dlv_duration_parse_units(const char *orig, size_t len, unsigned flags, int64_t *ret_ns,
                             char *err, size_t errlen)
{
    size_t n_units = flags & DLV_DURATION_DAYS ? sizeof units / sizeof units[0] : GO_UNITS;
    const char *s = orig, *end = orig + len;
    uint64_t d = 0;
    bool neg = false;

    if (!orig)
        return invalid("", 0, err, errlen);
    if (s < end && (*s == '-' || *s == '+')) {
        neg = *s == '-';
        s++;
    }
    if (end - s == 1 && *s == '0') {
        *ret_ns = 0;
        return DLV_OK;
    }
    if (s == end)
        return invalid(orig, len, err, errlen);
    while (s < end) {
        uint64_t v = 0, f = 0;
        double scale = 1;
        if (!(*s == '.' || (*s >= '0' && *s <= '9')))
            return invalid(orig, len, err, errlen);
        /* leadingInt */
        const char *p = s;
        while (s < end && *s >= '0' && *s <= '9') {
            if (v > U63 / 10)
                return invalid(orig, len, err, errlen);
            v = v * 10 + (uint64_t)(*s - '0');
            if (v > U63)
                return invalid(orig, len, err, errlen);
            s++;
        }
        bool pre = s != p, post = false;
        if (s < end && *s == '.') {
            s++;
            p = s;
            bool overflow = false;
            while (s < end && *s >= '0' && *s <= '9') {
                if (!overflow) {
                    if (f > (U63 - 1) / 10) {
                        overflow = true;
                    } else {
                        uint64_t y = f * 10 + (uint64_t)(*s - '0');
                        if (y > U63) {
                            overflow = true;
                        } else {
                            f = y;
                            scale *= 10;
                        }
                    }
                }
                s++;
            }
            post = s != p;
        }
        if (!pre && !post)
            return invalid(orig, len, err, errlen);
        p = s;
        while (s < end && *s != '.' && !(*s >= '0' && *s <= '9'))
            s++;
        if (s == p) {
            char q[256];
            go_quote(orig, len, q, sizeof q);
            set_err(err, errlen, "time: missing unit in duration %s", q);
            return DLV_ERR_INVALID;
        }
        size_t ulen = (size_t)(s - p);
        uint64_t unit = 0;
        for (size_t i = 0; i < n_units; i++)
            if (strlen(units[i].name) == ulen && memcmp(units[i].name, p, ulen) == 0)
                unit = units[i].ns;
        if (!unit) {
            char qu[128], q[256];
            go_quote(p, ulen, qu, sizeof qu);
            go_quote(orig, len, q, sizeof q);
            set_err(err, errlen, "time: unknown unit %s in duration %s", qu, q);
            return DLV_ERR_INVALID;
        }
        if (v > U63 / unit)
            return invalid(orig, len, err, errlen);
        v *= unit;
        if (f > 0) {
            v += (uint64_t)((double)f * ((double)unit / scale));
            if (v > U63)
                return invalid(orig, len, err, errlen);
        }
        d += v;
        if (d > U63)
            return invalid(orig, len, err, errlen);
    }
    if (neg) {
        *ret_ns = d == U63 ? INT64_MIN : -(int64_t)d;
        return DLV_OK;
    }
    if (d > U63 - 1)
        return invalid(orig, len, err, errlen);
    *ret_ns = (int64_t)d;
    return DLV_OK;
}

int dlv_duration_parse_n(const char *s, size_t len, int64_t *ret_ns, char *err, size_t errlen)
{
    return dlv_duration_parse_units(s, len, 0, ret_ns, err, errlen);
}

int dlv_duration_parse(const char *s, int64_t *ret_ns, char *err, size_t errlen)
{
    return dlv_duration_parse_n(s, s ? strlen(s) : 0, ret_ns, err, errlen);
}

int64_t dlv_ns_to_ms(int64_t ns)
{
    if (ns > 0)
        return ns / 1000000 + (ns % 1000000 != 0);
    return ns / 1000000;
}

int dlv_duration_parse_ms(const char *s, int64_t *ret_ms, char *err, size_t errlen)
{
    int64_t ns;
    int rc = dlv_duration_parse(s, &ns, err, errlen);
    if (rc != DLV_OK)
        return rc;
    *ret_ms = dlv_ns_to_ms(ns);
    return DLV_OK;
}

/* Go's fmtFrac: print the fraction of v/10^prec (trailing zeros dropped) into the buffer
 * that ends at w; returns the new start and v/10^prec. */
static size_t fmt_frac(char *buf, size_t w, uint64_t v, int prec, uint64_t *nv)
{
    bool print = false;
    for (int i = 0; i < prec; i++) {
        unsigned digit = (unsigned)(v % 10);
        print = print || digit != 0;
        if (print)
            buf[--w] = (char)('0' + digit);
        v /= 10;
    }
    if (print)
        buf[--w] = '.';
    *nv = v;
    return w;
}

static size_t fmt_int(char *buf, size_t w, uint64_t v)
{
    if (v == 0) {
        buf[--w] = '0';
        return w;
    }
    while (v > 0) {
        buf[--w] = (char)('0' + v % 10);
        v /= 10;
    }
    return w;
}

size_t dlv_duration_format(int64_t d, char *out, size_t outlen)
{
    char buf[32];
    size_t w = sizeof buf;
    bool neg = d < 0;
    uint64_t u = neg ? (uint64_t)0 - (uint64_t)d : (uint64_t)d;

    if (u < 1000000000) {
        int prec = 0;
        w--;
        buf[w] = 's';
        w--;
        if (u == 0) {
            buf[w] = '0';
            goto done;
        } else if (u < 1000) {
            prec = 0;
            buf[w] = 'n';
        } else if (u < 1000000) {
            prec = 3;
            /* U+00B5 is two bytes: write them backwards */
            buf[w] = (char)0xb5;
            buf[--w] = (char)0xc2;
        } else {
            prec = 6;
            buf[w] = 'm';
        }
        w = fmt_frac(buf, w, u, prec, &u);
        w = fmt_int(buf, w, u);
    } else {
        buf[--w] = 's';
        w = fmt_frac(buf, w, u, 9, &u);
        w = fmt_int(buf, w, u % 60);
        u /= 60;
        if (u > 0) {
            buf[--w] = 'm';
            w = fmt_int(buf, w, u % 60);
            u /= 60;
            if (u > 0) {
                buf[--w] = 'h';
                w = fmt_int(buf, w, u);
            }
        }
    }
    if (neg)
        buf[--w] = '-';
done:;
    size_t n = sizeof buf - w;
    if (outlen == 0)
        return 0;
    if (n >= outlen)
        n = outlen - 1;
    memcpy(out, buf + w, n);
    out[n] = '\0';
    return n;
}

static const struct {
    const char *name;
    uint64_t mult;
} size_units[] = {
    {"B", 1},
    {"KiB", UINT64_C(1) << 10},
    {"MiB", UINT64_C(1) << 20},
    {"GiB", UINT64_C(1) << 30},
    {"TiB", UINT64_C(1) << 40},
    {"KB", UINT64_C(1000)},
    {"MB", UINT64_C(1000000)},
    {"GB", UINT64_C(1000000000)},
    {"TB", UINT64_C(1000000000000)},
};

int dlv_size_parse(const char *s, uint64_t *ret_bytes, char *err, size_t errlen)
{
    char q[160];
    const char *p = s;
    uint64_t v = 0;

    go_quote(s ? s : "", s ? strlen(s) : 0, q, sizeof q);
    if (!s || !*s) {
        set_err(err, errlen, "invalid size %s: empty", q);
        return DLV_ERR_INVALID;
    }
    if (!(*p >= '0' && *p <= '9')) {
        set_err(err, errlen,
                "invalid size %s: expected a non-negative integer, optionally "
                "followed by B, KiB, MiB, GiB, TiB, KB, MB, GB or TB",
                q);
        return DLV_ERR_INVALID;
    }
    while (*p >= '0' && *p <= '9') {
        if (v > (UINT64_MAX - 9) / 10) {
            set_err(err, errlen, "invalid size %s: too large", q);
            return DLV_ERR_INVALID;
        }
        v = v * 10 + (uint64_t)(*p - '0');
        p++;
    }
    if (*p == ' ')
        p++;
    uint64_t mult = 1;
    if (*p) {
        mult = 0;
        for (size_t i = 0; i < sizeof size_units / sizeof size_units[0]; i++)
            if (strcmp(p, size_units[i].name) == 0)
                mult = size_units[i].mult;
        if (!mult) {
            char qu[64];
            go_quote(p, strlen(p), qu, sizeof qu);
            set_err(err, errlen,
                    "invalid size %s: unknown unit %s (use B, KiB, MiB, GiB, TiB, or KB, MB, GB, "
                    "TB for powers of 1000)",
                    q, qu);
            return DLV_ERR_INVALID;
        }
    }
    if (v != 0 && mult > UINT64_MAX / v) {
        set_err(err, errlen, "invalid size %s: too large", q);
        return DLV_ERR_INVALID;
    }
    *ret_bytes = v * mult;
    return DLV_OK;
}
