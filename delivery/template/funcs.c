/*
 * funcs.c - the builtin functions of text/template (funcs.go) that templates may call:
 * eq ne lt le gt ge with Go's comparison rules and messages, index and slice on strings,
 * maps and slices, the argument stringer of print/html/js/urlquery, and the html, js and
 * urlquery escapers. Called by exec.c's evalCall.
 */
#include "exec.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ builtins */

enum { K_INVALID, K_BOOL, K_INT, K_UINT, K_FLOAT, K_STRING };

static int basic_kind(const gv *v)
{
    switch (v->kind) {
    case GV_BOOL:
        return K_BOOL;
    case GV_INT:
        return K_INT;
    case GV_UINT8:
        return K_UINT;
    case GV_FLOAT:
        return K_FLOAT;
    case GV_STRING:
        return K_STRING;
    default:
        return K_INVALID;
    }
}

static int strcmp_n(const gostr *a, const gostr *b)
{
    size_t m = a->n < b->n ? a->n : b->n;
    int c = memcmp(a->p, b->p, m);
    if (c)
        return c;
    return a->n < b->n ? -1 : a->n > b->n;
}

static int comparable(const gv *v)
{
    return v->kind != GV_MAP && v->kind != GV_SLICE;
}

/* reflect.Kind of a value, as far as eq's "can compare" rule needs it */
static int reflect_kind(const gv *v)
{
    switch (v->kind) {
    case GV_EVENT:
    case GV_META:
        return GV_EVENT; /* both structs */
    default:
        return v->kind;
    }
}

static const char *fmt_msg(state *s, const char *a, const char *b, const char *c, const char *d,
                           const char *e)
{
    gobuf g;
    gobuf_init(&g, 600);
    gobuf_puts(&g, a);
    gobuf_puts(&g, b);
    gobuf_puts(&g, c);
    gobuf_puts(&g, d ? d : "");
    gobuf_puts(&g, e ? e : "");
    return gotmpl__take_string(s, &g).u.s.p;
}

/* text/template's eq with the rules and messages of current Go (1.19 lacked the type
 * names): 0/1, or -1 with *msg. */
int gotmpl__fn_eq(state *s, gv a1, const gv *rest, size_t n, const char **msg)
{
    a1 = indirect_iface(a1);
    if (n == 0) {
        *msg = "missing argument for comparison";
        return -1;
    }
    int k1 = basic_kind(&a1);
    for (size_t i = 0; i < n; i++) {
        gv a = indirect_iface(rest[i]);
        int k2 = basic_kind(&a);
        int t = 0;
        if (k1 != k2) {
            if (k1 == K_INT && k2 == K_UINT)
                t = a1.u.i >= 0 && a1.u.i == a.u.i;
            else if (k1 == K_UINT && k2 == K_INT)
                t = a.u.i >= 0 && a1.u.i == a.u.i;
            else if (a1.kind != GV_INVALID && a.kind != GV_INVALID) {
                *msg = fmt_msg(s, "incompatible types for comparison: ", dyn_type(&a1), " and ",
                               dyn_type(&a), NULL);
                return -1;
            }
        } else {
            switch (k1) {
            case K_BOOL:
                t = a1.u.b == a.u.b;
                break;
            case K_FLOAT:
                t = a1.u.f == a.u.f;
                break;
            case K_INT:
            case K_UINT:
                t = a1.u.i == a.u.i;
                break;
            case K_STRING:
                t = strcmp_n(&a1.u.s, &a.u.s) == 0;
                break;
            default: {
                int r1 = reflect_kind(&a1), r2 = reflect_kind(&a);
                if (r1 != r2 && r1 != GV_INVALID && r2 != GV_INVALID) {
                    gobuf g;
                    gobuf_init(&g, 900);
                    gobuf_puts(&g, "non-comparable types ");
                    gobuf_puts(&g, gotmpl__vstr(s, &a1));
                    gobuf_puts(&g, ": ");
                    gobuf_puts(&g, dyn_type(&a1));
                    gobuf_puts(&g, ", ");
                    gobuf_puts(&g, dyn_type(&a));
                    gobuf_puts(&g, ": ");
                    gobuf_puts(&g, gotmpl__vstr(s, &a));
                    *msg = gotmpl__take_string(s, &g).u.s.p;
                    return -1;
                }
                /* values from JSON are never nil maps/slices: only the zero Value is nil */
                int n1 = a1.kind == GV_INVALID, n2 = a.kind == GV_INVALID;
                if (n1 || n2) {
                    t = n1 == n2;
                } else if (!comparable(&a)) {
                    *msg = fmt_msg(s, "non-comparable type ", gotmpl__vstr(s, &a), ": ",
                                   dyn_type(&a), NULL);
                    return -1;
                } else if (a.kind != a1.kind) {
                    t = 0; /* audit.Event vs audit.Metadata */
                } else if (a.kind == GV_EVENT && a.u.ev->payload &&
                           (json_is_object(a.u.ev->payload) || json_is_array(a.u.ev->payload))) {
                    *msg = json_is_object(a.u.ev->payload)
                               ? "runtime error: comparing uncomparable type "
                                 "map[string]interface {}"
                               : "runtime error: comparing uncomparable type []interface {}";
                    return -1;
                } else {
                    t = a.u.ev == a1.u.ev;
                }
            }
            }
        }
        if (t)
            return 1;
    }
    return 0;
}

int gotmpl__fn_lt(state *s, gv a1, gv a2, const char **msg)
{
    a1 = indirect_iface(a1);
    a2 = indirect_iface(a2);
    int k1 = basic_kind(&a1), k2 = basic_kind(&a2);
    if (k1 == K_INVALID || k2 == K_INVALID) {
        *msg = "invalid type for comparison";
        return -1;
    }
    if (k1 != k2) {
        if (k1 == K_INT && k2 == K_UINT)
            return a1.u.i < 0 || a1.u.i < a2.u.i;
        if (k1 == K_UINT && k2 == K_INT)
            return a2.u.i >= 0 && a1.u.i < a2.u.i;
        *msg = fmt_msg(s, "incompatible types for comparison: ", dyn_type(&a1), " and ",
                       dyn_type(&a2), NULL);
        return -1;
    }
    switch (k1) {
    case K_BOOL:
        *msg = "invalid type for comparison";
        return -1;
    case K_FLOAT:
        return a1.u.f < a2.u.f;
    case K_INT:
    case K_UINT:
        return a1.u.i < a2.u.i;
    default:
        return strcmp_n(&a1.u.s, &a2.u.s) < 0;
    }
}

static int index_arg(const gv *idx0, size_t cap, int64_t *x, state *s, const char **msg)
{
    gv idx = indirect_iface(*idx0);
    if (idx.kind == GV_INT || idx.kind == GV_UINT8) {
        *x = idx.u.i;
    } else if (idx.kind == GV_INVALID) {
        *msg = "cannot index slice/array with nil";
        return -1;
    } else {
        gobuf b;
        gobuf_init(&b, 200);
        gobuf_puts(&b, "cannot index slice/array with type ");
        gobuf_puts(&b, dyn_type(&idx));
        *msg = gotmpl__take_string(s, &b).u.s.p;
        return -1;
    }
    if (*x < 0 || (uint64_t)*x > cap) {
        gobuf b;
        gobuf_init(&b, 200);
        char num[64];
        snprintf(num, sizeof num, "index out of range: %lld", (long long)*x);
        gobuf_puts(&b, num);
        *msg = gotmpl__take_string(s, &b).u.s.p;
        return -1;
    }
    return 0;
}

const char *gotmpl__msg2(state *s, const char *a, const char *b)
{
    gobuf g;
    gobuf_init(&g, 400);
    gobuf_puts(&g, a);
    gobuf_puts(&g, b);
    return gotmpl__take_string(s, &g).u.s.p;
}

/* Go's indirect(): through interfaces and pointers; *isnil when a nil one is met. */
gv gotmpl__go_indirect(gv v, int *isnil)
{
    *isnil = 0;
    if (v.iface) {
        if (v.kind == GV_NIL) {
            *isnil = 1;
            return v;
        }
        v.iface = 0;
    }
    return v;
}

gv gotmpl__fn_index(state *s, gv item, const gv *idx, size_t n, const char **msg)
{
    item = indirect_iface(item);
    if (item.kind == GV_INVALID) {
        *msg = "index of untyped nil";
        return mk(GV_INVALID);
    }
    for (size_t i = 0; i < n; i++) {
        int isnil;
        item = gotmpl__go_indirect(item, &isnil);
        if (isnil) {
            *msg = "index of nil pointer";
            return mk(GV_INVALID);
        }
        int64_t x;
        switch (item.kind) {
        case GV_SLICE:
        case GV_STRING: {
            size_t len = gv_len(&item);
            if (index_arg(&idx[i], len, &x, s, msg))
                return mk(GV_INVALID);
            if ((size_t)x == len) {
                *msg = item.kind == GV_SLICE ? "reflect: slice index out of range"
                                             : "reflect: string index out of range";
                return mk(GV_INVALID);
            }
            if (item.kind == GV_SLICE) {
                item = gv_slice_at(&item, (size_t)x);
            } else {
                gv b = mk(GV_UINT8);
                b.u.i = (unsigned char)item.u.s.p[x];
                item = b;
            }
            break;
        }
        case GV_MAP: {
            gv k = indirect_iface(idx[i]);
            if (k.kind == GV_INVALID) {
                *msg = "value is nil; should be of type string";
                return mk(GV_INVALID);
            }
            if (k.kind != GV_STRING) {
                gobuf b;
                gobuf_init(&b, 200);
                gobuf_puts(&b, "value has type ");
                gobuf_puts(&b, dyn_type(&k));
                gobuf_puts(&b, "; should be string");
                *msg = gotmpl__take_string(s, &b).u.s.p;
                return mk(GV_INVALID);
            }
            json_t *e = json_object_getn(item.u.c.j, k.u.s.p, k.u.s.n);
            item = gv_from_json(e); /* missing: nil interface{} */
            break;
        }
        default: {
            const char *tn = item.kind == GV_ACTOR ? "audit.Actor" : dyn_type(&item);
            *msg = gotmpl__msg2(s, "can't index item of type ", tn);
            return mk(GV_INVALID);
        }
        }
    }
    return item;
}

gv gotmpl__fn_slice(state *s, gv item, const gv *idx, size_t n, const char **msg)
{
    item = indirect_iface(item);
    if (item.kind == GV_INVALID) {
        *msg = "slice of untyped nil";
        return item;
    }
    if (n > 3) {
        char tmp[64];
        snprintf(tmp, sizeof tmp, "too many slice indexes: %zu", n);
        *msg = gotmpl__msg2(s, tmp, "");
        return mk(GV_INVALID);
    }
    size_t cap;
    if (item.kind == GV_STRING) {
        if (n == 3) {
            *msg = "cannot 3-index slice a string";
            return mk(GV_INVALID);
        }
        cap = item.u.s.n;
    } else if (item.kind == GV_SLICE) {
        cap = item.u.c.len;
    } else {
        *msg = gotmpl__msg2(s, "can't slice item of type ", dyn_type(&item));
        return mk(GV_INVALID);
    }
    int64_t ix[3] = {0, (int64_t)gv_len(&item), 0};
    for (size_t i = 0; i < n; i++)
        if (index_arg(&idx[i], cap, &ix[i], s, msg))
            return mk(GV_INVALID);
    if (ix[0] > ix[1]) {
        char tmp[96];
        snprintf(tmp, sizeof tmp, "invalid slice index: %lld > %lld", (long long)ix[0],
                 (long long)ix[1]);
        *msg = gotmpl__msg2(s, tmp, "");
        return mk(GV_INVALID);
    }
    if (n == 3 && ix[1] > ix[2]) {
        char tmp[96];
        snprintf(tmp, sizeof tmp, "invalid slice index: %lld > %lld", (long long)ix[1],
                 (long long)ix[2]);
        *msg = gotmpl__msg2(s, tmp, "");
        return mk(GV_INVALID);
    }
    if (item.kind == GV_STRING)
        return mkstr(item.u.s.p + ix[0], (size_t)(ix[1] - ix[0]));
    item.u.c.off += (size_t)ix[0];
    item.u.c.len = (size_t)(ix[1] - ix[0]);
    return item;
}

/* text/template evalArgs: one string argument as is, else fmt.Sprint of printable values */
void gotmpl__eval_args_string(state *s, const gv *a, size_t n, gobuf *out, const char **msg)
{
    if (n == 1 && a[0].kind == GV_STRING) {
        gobuf_put(out, a[0].u.s.p, a[0].u.s.n);
        return;
    }
    gv *c = n ? (gv *)(void *)goarena_dup(&s->arena, NULL, n * sizeof(gv)) : NULL;
    if (n && !c) {
        gobuf_free(out);
        if (s->arena.limit && s->arena.used > s->arena.limit)
            gotmpl__too_big(s, "intermediate");
        gotmpl__oom(s);
    }
    for (size_t i = 0; i < n; i++) {
        c[i] = a[i];
        if (c[i].kind == GV_INVALID || c[i].kind == GV_NIL)
            c[i] = mkstr("<no value>", 10);
        else if (c[i].kind == GV_ACTOR)
            c[i].kind = GV_ACTOR + 100;
    }
    char e[200];
    if (gofmt_sprint(out, c, n, e, sizeof e) == -1)
        *msg = gotmpl__msg2(s, e, "");
}

void gotmpl__html_escape(gobuf *o, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        switch (p[i]) {
        case '\0':
            gobuf_puts(o, "\xEF\xBF\xBD");
            break;
        case '"':
            gobuf_puts(o, "&#34;");
            break;
        case '\'':
            gobuf_puts(o, "&#39;");
            break;
        case '&':
            gobuf_puts(o, "&amp;");
            break;
        case '<':
            gobuf_puts(o, "&lt;");
            break;
        case '>':
            gobuf_puts(o, "&gt;");
            break;
        default:
            gobuf_putc(o, p[i]);
        }
    }
}

void gotmpl__url_escape(gobuf *o, const char *p, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~') {
            gobuf_putc(o, (char)c);
        } else if (c == ' ') {
            gobuf_putc(o, '+');
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            gobuf_put(o, e, 3);
        }
    }
}

void gotmpl__js_escape(gobuf *o, const char *p, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c < 0x80) {
            switch (c) {
            case '\\':
                gobuf_puts(o, "\\\\");
                continue;
            case '\'':
                gobuf_puts(o, "\\'");
                continue;
            case '"':
                gobuf_puts(o, "\\\"");
                continue;
            case '<':
                gobuf_puts(o, "\\u003C");
                continue;
            case '>':
                gobuf_puts(o, "\\u003E");
                continue;
            case '&':
                gobuf_puts(o, "\\u0026");
                continue;
            case '=':
                gobuf_puts(o, "\\u003D");
                continue;
            }
            if (c < ' ') {
                char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
                gobuf_put(o, e, 6);
            } else {
                gobuf_putc(o, (char)c);
            }
            continue;
        }
        int sz;
        int32_t r = goutf8_decode((const unsigned char *)p + i, n - i, &sz);
        if (gounicode_isprint(r)) {
            gobuf_put(o, p + i, (size_t)sz);
        } else {
            char e[16];
            snprintf(e, sizeof e, "\\u%04X", (unsigned)r);
            gobuf_puts(o, e);
        }
        i += (size_t)sz - 1;
    }
}

/* The signatures of the builtins, indexed by fn_id (Go's builtinFuncs). */
const fsig gotmpl__sigs[] = {
    [F_AND] = {1, {T_VALUE}, 1, T_VALUE},         [F_OR] = {1, {T_VALUE}, 1, T_VALUE},
    [F_NOT] = {1, {T_VALUE}, 0, T_VALUE},         [F_LEN] = {1, {T_VALUE}, 0, T_VALUE},
    [F_INDEX] = {1, {T_VALUE}, 1, T_VALUE},       [F_SLICE] = {1, {T_VALUE}, 1, T_VALUE},
    [F_PRINT] = {0, {T_ANY}, 1, T_ANY},           [F_PRINTF] = {1, {T_STRING}, 1, T_ANY},
    [F_PRINTLN] = {0, {T_ANY}, 1, T_ANY},         [F_HTML] = {0, {T_ANY}, 1, T_ANY},
    [F_URLQUERY] = {0, {T_ANY}, 1, T_ANY},        [F_JS] = {0, {T_ANY}, 1, T_ANY},
    [F_EQ] = {1, {T_VALUE}, 1, T_VALUE},          [F_NE] = {2, {T_VALUE, T_VALUE}, 0, T_VALUE},
    [F_LT] = {2, {T_VALUE, T_VALUE}, 0, T_VALUE}, [F_LE] = {2, {T_VALUE, T_VALUE}, 0, T_VALUE},
    [F_GT] = {2, {T_VALUE, T_VALUE}, 0, T_VALUE}, [F_GE] = {2, {T_VALUE, T_VALUE}, 0, T_VALUE},
    [F_TOJSON] = {1, {T_ANY}, 0, T_ANY},
};
