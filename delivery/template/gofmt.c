/*
 * gofmt.c - Go's fmt package for the values templates can hold: Sprint, Sprintln and
 * Sprintf with the verbs v s d q t f e g x X %%, flags '-', '+', '#', ' ', '0', width and
 * precision, and Go's inline diagnostics (%!d(bool=true), %!s(<nil>), %!d(MISSING),
 * %!(EXTRA ...), %!(NOVERB), %!(BADWIDTH)). Maps print sorted as map[k:v], slices as
 * [a b], the actor struct as {a b c d e} (&{...} through fmt, as Go prints a pointer).
 * Printing the event or its metadata would show a Go pointer address: refused.
 */
#include "gotmpl-internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct pp {
    gobuf *b;
    int plus, minus, sharp, space, zero, plusV, sharpV;
    int wid, prec, widPresent, precPresent;
    int unsupported;
    char *err;
    size_t errlen;
} pp;

static const char lowerhex[] = "0123456789abcdefx";
static const char upperhex[] = "0123456789ABCDEFX";

static void clearflags(pp *p)
{
    p->plus = p->minus = p->sharp = p->space = p->zero = p->plusV = p->sharpV = 0;
    p->wid = p->prec = p->widPresent = p->precPresent = 0;
}

static size_t rune_count(const char *s, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n;) {
        int sz;
        goutf8_decode((const unsigned char *)s + i, n - i, &sz);
        i += (size_t)sz;
        c++;
    }
    return c;
}

static void write_padding(pp *p, int n)
{
    if (n > 0)
        gobuf_pad(p->b, p->zero ? '0' : ' ', (size_t)n);
}

static void pad(pp *p, const char *s, size_t n)
{
    if (!p->widPresent || p->wid == 0) {
        gobuf_put(p->b, s, n);
        return;
    }
    int width = p->wid - (int)rune_count(s, n);
    if (!p->minus) {
        write_padding(p, width);
        gobuf_put(p->b, s, n);
    } else {
        gobuf_put(p->b, s, n);
        write_padding(p, width);
    }
}

static void pads(pp *p, const char *s)
{
    pad(p, s, strlen(s));
}

/* ---- strconv.Quote ---- */

static void escaped_rune(gobuf *b, int32_t r, char quote, int ascii)
{
    char tmp[12];
    if (r == quote || r == '\\') {
        gobuf_putc(b, '\\');
        gobuf_putc(b, (char)r);
        return;
    }
    if (ascii) {
        if (r < 0x80 && gounicode_isprint(r)) {
            gobuf_putc(b, (char)r);
            return;
        }
    } else if (gounicode_isprint(r)) {
        int n = goutf8_encode(tmp, r);
        gobuf_put(b, tmp, (size_t)n);
        return;
    }
    switch (r) {
    case '\a':
        gobuf_puts(b, "\\a");
        return;
    case '\b':
        gobuf_puts(b, "\\b");
        return;
    case '\f':
        gobuf_puts(b, "\\f");
        return;
    case '\n':
        gobuf_puts(b, "\\n");
        return;
    case '\r':
        gobuf_puts(b, "\\r");
        return;
    case '\t':
        gobuf_puts(b, "\\t");
        return;
    case '\v':
        gobuf_puts(b, "\\v");
        return;
    }
    if (r < ' ' || r == 0x7f) {
        snprintf(tmp, sizeof tmp, "\\x%02x", (unsigned)r);
    } else {
        if (r > 0x10FFFF || (r >= 0xD800 && r <= 0xDFFF))
            r = 0xFFFD;
        if (r < 0x10000)
            snprintf(tmp, sizeof tmp, "\\u%04x", (unsigned)r);
        else
            snprintf(tmp, sizeof tmp, "\\U%08x", (unsigned)r);
    }
    gobuf_puts(b, tmp);
}

static void quote_with(gobuf *b, const char *s, size_t n, char quote, int ascii)
{
    const unsigned char *u = (const unsigned char *)s;
    gobuf_putc(b, quote);
    for (size_t i = 0; i < n;) {
        int w = 1;
        int32_t r = u[i];
        if (r >= 0x80)
            r = goutf8_decode(u + i, n - i, &w);
        if (w == 1 && r == 0xFFFD) {
            char tmp[8];
            snprintf(tmp, sizeof tmp, "\\x%02x", u[i]);
            gobuf_puts(b, tmp);
            i++;
            continue;
        }
        escaped_rune(b, r, quote, ascii);
        i += (size_t)w;
    }
    gobuf_putc(b, quote);
}

int gofmt_quote(gobuf *b, const char *s, size_t n, int ascii)
{
    quote_with(b, s, n, '"', ascii);
    return b->err;
}

/* ---- scalars ---- */

static void bad_verb(pp *p, char verb, const gv *arg);
static int print_arg(pp *p, const gv *arg, char verb, int depth);

static void fmt_bool(pp *p, const gv *v, char verb)
{
    if (verb == 't' || verb == 'v')
        pads(p, v->u.b ? "true" : "false");
    else
        bad_verb(p, verb, v);
}

static void fmt_integer(pp *p, uint64_t u, int base, int is_signed, char verb, const char *digits)
{
    int negative = is_signed && (int64_t)u < 0;
    if (negative)
        u = -u;
    size_t cap = 68 + (p->widPresent ? (size_t)p->wid : 0) + (p->precPresent ? (size_t)p->prec : 0);
    char stack[128];
    char *buf = cap <= sizeof stack ? stack : malloc(cap);
    if (!buf) {
        p->b->err = GOTMPL_ENOMEM;
        return;
    }
    int prec = 0;
    if (p->precPresent) {
        prec = p->prec;
        if (prec == 0 && u == 0) {
            int oz = p->zero;
            p->zero = 0;
            write_padding(p, p->wid);
            p->zero = oz;
            goto out;
        }
    } else if (p->zero && p->widPresent) {
        prec = p->wid;
        if (negative || p->plus || p->space)
            prec--;
    }
    size_t i = cap;
    if (base == 10) {
        while (u >= 10) {
            buf[--i] = (char)('0' + u % 10);
            u /= 10;
        }
    } else {
        while (u >= 16) {
            buf[--i] = digits[u & 0xF];
            u >>= 4;
        }
    }
    buf[--i] = digits[u];
    while (i > 0 && prec > (int)(cap - i))
        buf[--i] = '0';
    if (p->sharp && base == 16) {
        buf[--i] = digits[16];
        buf[--i] = '0';
    }
    if (negative)
        buf[--i] = '-';
    else if (p->plus)
        buf[--i] = '+';
    else if (p->space)
        buf[--i] = ' ';
    int oz = p->zero;
    p->zero = 0;
    pad(p, buf + i, cap - i);
    p->zero = oz;
out:
    if (buf != stack)
        free(buf);
}

static void fmt_qc(pp *p, uint64_t c)
{
    int32_t r = c > 0x10FFFF ? 0xFFFD : (int32_t)c;
    gobuf tmp;
    gobuf_init(&tmp, 0);
    gobuf_putc(&tmp, '\'');
    escaped_rune(&tmp, r, '\'', p->plus);
    gobuf_putc(&tmp, '\'');
    if (tmp.err)
        p->b->err = tmp.err;
    else
        pad(p, tmp.p, tmp.len);
    gobuf_free(&tmp);
}

static void fmt_int(pp *p, const gv *v, char verb)
{
    int is_signed = v->kind == GV_INT;
    uint64_t u = (uint64_t)v->u.i;
    switch (verb) {
    case 'v':
    case 'd':
        fmt_integer(p, u, 10, is_signed, verb, lowerhex);
        break;
    case 'x':
        fmt_integer(p, u, 16, is_signed, verb, lowerhex);
        break;
    case 'X':
        fmt_integer(p, u, 16, is_signed, verb, upperhex);
        break;
    case 'q':
        fmt_qc(p, u);
        break;
    default:
        bad_verb(p, verb, v);
    }
}

static void fmt_float_impl(pp *p, double v, char verb, int prec)
{
    if (p->precPresent)
        prec = p->prec;
    gobuf nb;
    gobuf_init(&nb, 0);
    gobuf_putc(&nb, '+');
    gofloat_format(&nb, v, verb, prec);
    if (nb.err) {
        p->b->err = nb.err;
        gobuf_free(&nb);
        return;
    }
    char *num = nb.p;
    size_t len = nb.len;
    if (num[1] == '-' || num[1] == '+') {
        num++;
        len--;
    } else {
        num[0] = '+';
    }
    if (p->space && num[0] == '+' && !p->plus)
        num[0] = ' ';
    if (num[1] == 'I' || num[1] == 'N') {
        int oz = p->zero;
        p->zero = 0;
        if (num[1] == 'N' && !p->space && !p->plus) {
            num++;
            len--;
        }
        pad(p, num, len);
        p->zero = oz;
        gobuf_free(&nb);
        return;
    }
    gobuf sb;
    gobuf_init(&sb, 0);
    if (p->sharp) {
        int digits = 0;
        if (verb == 'v' || verb == 'g' || verb == 'G' || verb == 'x') {
            digits = prec;
            if (digits == -1)
                digits = 6;
        }
        char tail[16];
        size_t tl = 0;
        int has_dot = 0, nonzero = 0;
        for (size_t i = 1; i < len; i++) {
            char c = num[i];
            if (c == '.') {
                has_dot = 1;
            } else if (c == 'p' || c == 'P' ||
                       ((c == 'e' || c == 'E') && verb != 'x' && verb != 'X')) {
                tl = len - i < sizeof tail ? len - i : sizeof tail;
                memcpy(tail, num + i, tl);
                len = i;
                break;
            } else {
                if (c != '0')
                    nonzero = 1;
                if (nonzero)
                    digits--;
            }
        }
        gobuf_put(&sb, num, len);
        if (!has_dot) {
            if (len == 2 && num[1] == '0')
                digits--;
            gobuf_putc(&sb, '.');
        }
        if (digits > 0)
            gobuf_pad(&sb, '0', (size_t)digits);
        gobuf_put(&sb, tail, tl);
        if (sb.err) {
            p->b->err = sb.err;
            goto out;
        }
        num = sb.p;
        len = sb.len;
    }
    if (p->plus || num[0] != '+') {
        if (p->zero && p->widPresent && p->wid > (int)len) {
            gobuf_putc(p->b, num[0]);
            write_padding(p, p->wid - (int)len);
            gobuf_put(p->b, num + 1, len - 1);
            goto out;
        }
        pad(p, num, len);
        goto out;
    }
    pad(p, num + 1, len - 1);
out:
    gobuf_free(&sb);
    gobuf_free(&nb);
}

static void fmt_float(pp *p, const gv *v, char verb)
{
    switch (verb) {
    case 'v':
        fmt_float_impl(p, v->u.f, 'g', -1);
        break;
    case 'g':
    case 'G':
    case 'x':
    case 'X':
        fmt_float_impl(p, v->u.f, verb, -1);
        break;
    case 'f':
    case 'e':
    case 'E':
    case 'F':
        fmt_float_impl(p, v->u.f, verb, 6);
        break;
    default:
        bad_verb(p, verb, v);
    }
}

static size_t truncate_runes(pp *p, const char *s, size_t n)
{
    if (!p->precPresent)
        return n;
    size_t i = 0;
    for (int k = 0; i < n; k++) {
        if (k >= p->prec)
            return i;
        int sz;
        goutf8_decode((const unsigned char *)s + i, n - i, &sz);
        i += (size_t)sz;
    }
    return n;
}

static void fmt_sx(pp *p, const char *s, size_t n, const char *digits)
{
    size_t length = n;
    if (p->precPresent && (size_t)p->prec < length)
        length = (size_t)p->prec;
    size_t width = 2 * length;
    if (width > 0) {
        if (p->space) {
            if (p->sharp)
                width *= 2;
            width += length - 1;
        } else if (p->sharp) {
            width += 2;
        }
    } else {
        if (p->widPresent)
            write_padding(p, p->wid);
        return;
    }
    if (p->widPresent && (size_t)p->wid > width && !p->minus)
        write_padding(p, p->wid - (int)width);
    if (p->sharp) {
        gobuf_putc(p->b, '0');
        gobuf_putc(p->b, digits[16]);
    }
    for (size_t i = 0; i < length; i++) {
        if (p->space && i > 0) {
            gobuf_putc(p->b, ' ');
            if (p->sharp) {
                gobuf_putc(p->b, '0');
                gobuf_putc(p->b, digits[16]);
            }
        }
        unsigned char c = (unsigned char)s[i];
        gobuf_putc(p->b, digits[c >> 4]);
        gobuf_putc(p->b, digits[c & 0xF]);
    }
    if (p->widPresent && (size_t)p->wid > width && p->minus)
        write_padding(p, p->wid - (int)width);
}

static int can_backquote(const char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        int w;
        int32_t r = goutf8_decode((const unsigned char *)s + i, n - i, &w);
        if (w == 1 && r == 0xFFFD)
            return 0;
        if (w > 1) {
            if (r == 0xFEFF)
                return 0;
            i += (size_t)w;
            continue;
        }
        if (r == '`' || ((r < ' ' && r != '\t') || r == 0x7f))
            return 0;
        i++;
    }
    return 1;
}

static void fmt_q(pp *p, const char *s, size_t n)
{
    n = truncate_runes(p, s, n);
    gobuf tmp;
    gobuf_init(&tmp, 0);
    if (p->sharp && can_backquote(s, n)) {
        gobuf_putc(&tmp, '`');
        gobuf_put(&tmp, s, n);
        gobuf_putc(&tmp, '`');
    } else {
        quote_with(&tmp, s, n, '"', p->plus);
    }
    if (tmp.err)
        p->b->err = tmp.err;
    else
        pad(p, tmp.p ? tmp.p : "", tmp.len);
    gobuf_free(&tmp);
}

static void fmt_string(pp *p, const gv *v, char verb)
{
    const char *s = v->u.s.p;
    size_t n = v->u.s.n;
    switch (verb) {
    case 'v':
    case 's':
        pad(p, s, truncate_runes(p, s, n));
        break;
    case 'x':
        fmt_sx(p, s, n, lowerhex);
        break;
    case 'X':
        fmt_sx(p, s, n, upperhex);
        break;
    case 'q':
        fmt_q(p, s, n);
        break;
    default:
        bad_verb(p, verb, v);
    }
}

/* ---- composite ---- */

static int unsupported(pp *p, const char *what)
{
    if (!p->unsupported && p->errlen)
        snprintf(p->err, p->errlen, "unsupported: printing %s (Go would print a memory address)",
                 what);
    p->unsupported = 1;
    return -1;
}

static int print_elem(pp *p, const gv *e, char verb, int depth)
{
    if (e->kind == GV_NIL || e->kind == GV_INVALID) {
        pads(p, "<nil>");
        return 0;
    }
    return print_arg(p, e, verb, depth);
}

static int print_map(pp *p, const gv *v, char verb, int depth)
{
    json_t *o = v->u.c.j;
    size_t n = json_object_size(o);
    gokv *a = n ? malloc(n * sizeof *a) : NULL;
    if (n && !a) {
        p->b->err = GOTMPL_ENOMEM;
        return -1;
    }
    n = gokv_sorted(o, a, n);
    size_t i;
    gobuf_puts(p->b, "map[");
    int rc = 0;
    for (i = 0; i < n && !rc && !p->b->err; i++) {
        if (i)
            gobuf_putc(p->b, ' ');
        gv k;
        memset(&k, 0, sizeof k);
        k.kind = GV_STRING;
        k.u.s.p = a[i].k;
        k.u.s.n = a[i].n;
        rc = print_arg(p, &k, verb, depth + 1);
        gobuf_putc(p->b, ':');
        gv e = gv_from_json(a[i].v);
        if (!rc)
            rc = print_elem(p, &e, verb, depth + 1);
    }
    free(a);
    gobuf_putc(p->b, ']');
    return rc;
}

static int print_arg(pp *p, const gv *arg, char verb, int depth)
{
    if (p->b->err)
        return -1;
    switch (arg->kind) {
    case GV_INVALID:
    case GV_NIL:
        if (verb == 'v')
            pads(p, "<nil>");
        else
            bad_verb(p, verb, arg);
        return 0;
    case GV_BOOL:
        fmt_bool(p, arg, verb);
        return 0;
    case GV_INT:
    case GV_UINT8:
        fmt_int(p, arg, verb);
        return 0;
    case GV_FLOAT:
        fmt_float(p, arg, verb);
        return 0;
    case GV_STRING:
        fmt_string(p, arg, verb);
        return 0;
    case GV_MAP:
        return print_map(p, arg, verb, depth);
    case GV_SLICE: {
        gobuf_putc(p->b, '[');
        for (size_t i = 0; i < arg->u.c.len && !p->b->err; i++) {
            if (i)
                gobuf_putc(p->b, ' ');
            gv e = gv_slice_at(arg, i);
            if (print_elem(p, &e, verb, depth + 1))
                return -1;
        }
        gobuf_putc(p->b, ']');
        return 0;
    }
    case GV_ACTOR:
        if (depth > 0)
            return unsupported(p, "a pointer nested in a value");
        if (depth == 0)
            gobuf_putc(p->b, '&');
        /* fallthrough */
    case GV_ACTOR + 100: /* the struct itself (template printing dereferences) */ {
        gobuf_putc(p->b, '{');
        for (int i = 0; i < ACT_N; i++) {
            if (i)
                gobuf_putc(p->b, ' ');
            if (p->plusV) {
                gobuf_puts(p->b, gotmpl_actor_fields[i]);
                gobuf_putc(p->b, ':');
            }
            gv s;
            memset(&s, 0, sizeof s);
            s.kind = GV_STRING;
            s.u.s = arg->u.ev->actor[i];
            fmt_string(p, &s, verb);
        }
        gobuf_putc(p->b, '}');
        return 0;
    }
    case GV_EVENT:
        return unsupported(p, "the event (.)");
    case GV_META:
        return unsupported(p, ".Metadata");
    }
    return 0;
}

static void bad_verb(pp *p, char verb, const gv *arg)
{
    gobuf_puts(p->b, "%!");
    gobuf_putc(p->b, verb);
    gobuf_putc(p->b, '(');
    if (arg->kind == GV_INVALID || arg->kind == GV_NIL) {
        gobuf_puts(p->b, "<nil>");
    } else {
        gv t = *arg;
        t.iface = 0;
        gobuf_puts(p->b, gv_type_name(&t));
        gobuf_putc(p->b, '=');
        print_arg(p, arg, 'v', 0);
    }
    gobuf_putc(p->b, ')');
}

static void pp_init(pp *p, gobuf *b, char *err, size_t errlen)
{
    memset(p, 0, sizeof *p);
    p->b = b;
    p->err = err;
    p->errlen = errlen;
}

static int pp_done(pp *p)
{
    if (p->unsupported)
        return -1;
    return p->b->err;
}

static int is_string(const gv *v)
{
    return v->kind == GV_STRING;
}

int gofmt_sprint(gobuf *b, const gv *args, size_t n, char *err, size_t errlen)
{
    pp p;
    pp_init(&p, b, err, errlen);
    int prev_string = 0;
    for (size_t i = 0; i < n && !p.unsupported && !b->err; i++) {
        int s = is_string(&args[i]);
        if (i > 0 && !s && !prev_string)
            gobuf_putc(b, ' ');
        print_arg(&p, &args[i], 'v', 0);
        prev_string = s;
    }
    return pp_done(&p);
}

int gofmt_sprintln(gobuf *b, const gv *args, size_t n, char *err, size_t errlen)
{
    pp p;
    pp_init(&p, b, err, errlen);
    for (size_t i = 0; i < n && !p.unsupported && !b->err; i++) {
        if (i > 0)
            gobuf_putc(b, ' ');
        print_arg(&p, &args[i], 'v', 0);
    }
    gobuf_putc(b, '\n');
    return pp_done(&p);
}

/* Template action printing (text/template printValue): like Sprint of one value, except
 * a missing/nil value prints "<no value>" and the actor pointer is dereferenced. */
int gofmt_print_action(gobuf *b, const gv *v, char *err, size_t errlen)
{
    if (v->kind == GV_INVALID || v->kind == GV_NIL)
        return gobuf_puts(b, "<no value>");
    pp p;
    pp_init(&p, b, err, errlen);
    if (v->kind == GV_ACTOR) {
        gv s = *v;
        s.kind = GV_ACTOR + 100;
        print_arg(&p, &s, 'v', 0);
    } else {
        print_arg(&p, v, 'v', 0);
    }
    return pp_done(&p);
}

static int parsenum(const char *s, size_t start, size_t end, int *num, size_t *newi)
{
    int isnum = 0;
    *num = 0;
    if (start >= end) {
        *newi = end;
        return 0;
    }
    size_t i;
    for (i = start; i < end && s[i] >= '0' && s[i] <= '9'; i++) {
        if (*num > 1000000 || *num < -1000000) {
            *num = 0;
            *newi = end;
            return 0;
        }
        *num = *num * 10 + (s[i] - '0');
        isnum = 1;
    }
    *newi = i;
    return isnum;
}

static int verb_supported(unsigned char c)
{
    return c && strchr("vsdqtfegxX%", c) != NULL;
}

int gofmt_check_format(const char *f, size_t n, char *err, size_t errlen)
{
    for (size_t i = 0; i < n;) {
        if (f[i] != '%') {
            i++;
            continue;
        }
        i++;
        int sharp = 0, zero = 0, minus = 0;
        while (i < n && strchr("#0+- ", f[i]) && f[i]) {
            if (f[i] == '#')
                sharp = 1;
            else if (f[i] == '0')
                zero = 1;
            else if (f[i] == '-')
                minus = 1;
            i++;
        }
        if (i < n && (f[i] == '[' || f[i] == '*'))
            goto bad;
        int num;
        size_t ni;
        parsenum(f, i, n, &num, &ni);
        i = ni;
        if (i + 1 < n && f[i] == '.') {
            i++;
            if (i < n && (f[i] == '[' || f[i] == '*'))
                goto bad;
            parsenum(f, i, n, &num, &ni);
            i = ni;
        }
        if (i < n && f[i] == '[')
            goto bad;
        if (i >= n)
            return 0; /* %!(NOVERB) */
        if (!verb_supported((unsigned char)f[i]) || (sharp && f[i] == 'v'))
            goto bad;
        if (zero && !minus && (f[i] == 's' || f[i] == 'q')) {
            /* Go 1.19 pads strings with zeros here, later releases with spaces (#56486) */
            if (errlen)
                snprintf(err, errlen,
                         "unsupported: the 0 flag with %%%c (zero padding of strings differs "
                         "between Go releases)",
                         f[i]);
            return -1;
        }
        i++;
        continue;
    bad:
        if (errlen) {
            if (i < n && (unsigned char)f[i] >= 0x20 && (unsigned char)f[i] < 0x7f)
                snprintf(err, errlen,
                         "unsupported: printf verb or form \"%%%c\" (supported: %%v %%s %%d "
                         "%%q %%t %%f %%e %%g %%x %%X %%%% with flags, width, precision)",
                         f[i]);
            else
                snprintf(err, errlen, "unsupported: printf format at byte %zu", i);
        }
        return -1;
    }
    return 0;
}

int gofmt_sprintf(gobuf *b, const char *f, size_t end, const gv *a, size_t na, char *err,
                  size_t errlen)
{
    if (gofmt_check_format(f, end, err, errlen))
        return -1;
    pp p;
    pp_init(&p, b, err, errlen);
    size_t argnum = 0;
    for (size_t i = 0; i < end && !p.unsupported && !b->err;) {
        size_t lasti = i;
        while (i < end && f[i] != '%')
            i++;
        if (i > lasti)
            gobuf_put(b, f + lasti, i - lasti);
        if (i >= end)
            break;
        i++;
        clearflags(&p);
        for (; i < end; i++) {
            char c = f[i];
            if (c == '#')
                p.sharp = 1;
            else if (c == '0')
                p.zero = !p.minus;
            else if (c == '+')
                p.plus = 1;
            else if (c == '-') {
                p.minus = 1;
                p.zero = 0;
            } else if (c == ' ')
                p.space = 1;
            else
                break;
        }
        size_t ni;
        p.widPresent = parsenum(f, i, end, &p.wid, &ni);
        i = ni;
        if (i + 1 < end && f[i] == '.') {
            i++;
            p.precPresent = parsenum(f, i, end, &p.prec, &ni);
            i = ni;
            if (!p.precPresent) {
                p.prec = 0;
                p.precPresent = 1;
            }
        }
        if (i >= end) {
            gobuf_puts(b, "%!(NOVERB)");
            break;
        }
        char verb = f[i++];
        if (verb == '%') {
            gobuf_putc(b, '%');
            continue;
        }
        if (argnum >= na) {
            gobuf_puts(b, "%!");
            gobuf_putc(b, verb);
            gobuf_puts(b, "(MISSING)");
            continue;
        }
        if (verb == 'v') {
            p.sharpV = p.sharp;
            p.sharp = 0;
            p.plusV = p.plus;
            p.plus = 0;
        }
        print_arg(&p, &a[argnum], verb, 0);
        argnum++;
    }
    if (argnum < na && !p.unsupported && !b->err) {
        clearflags(&p);
        gobuf_puts(b, "%!(EXTRA ");
        for (size_t i = argnum; i < na; i++) {
            if (i > argnum)
                gobuf_puts(b, ", ");
            if (a[i].kind == GV_INVALID || a[i].kind == GV_NIL) {
                gobuf_puts(b, "<nil>");
            } else {
                gv t = a[i];
                t.iface = 0;
                gobuf_puts(b, gv_type_name(&t));
                gobuf_putc(b, '=');
                print_arg(&p, &a[i], 'v', 0);
            }
        }
        gobuf_putc(b, ')');
    }
    return pp_done(&p);
}
