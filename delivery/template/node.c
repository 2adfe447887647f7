/*
 * node.c - the nodes of the parse tree, after text/template/parse/node.go: allocation in
 * the parse arena, string and number constants (strconv.Unquote / UnquoteChar and Go's
 * number rules, the unsupported forms refused) and String() of a node, used for error
 * contexts ("executing \"\" at <.Payload.key>").
 */
#include "parser.h"

#include <errno.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

node *gotmpl__new_node(parser *p, ntype t, size_t pos, int line)
{
    node *n = gotmpl__palloc(p, sizeof *n);
    n->type = t;
    n->pos = pos;
    n->line = line;
    return n;
}

/* ------------------------------------------------------------------ literals */

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* strconv.UnquoteChar: decode one (possibly escaped) char at s[*i]; appends to out.
 * Returns 0 or -1 (invalid syntax). */
static int unquote_char(const char *s, size_t n, size_t *i, char quote, gobuf *out,
                        int32_t *rune_out)
{
    unsigned char c = (unsigned char)s[*i];
    char enc[4];
    if (c == quote && (quote == '\'' || quote == '"'))
        return -1;
    if (c >= 0x80) {
        int sz;
        int32_t r = goutf8_decode((const unsigned char *)s + *i, n - *i, &sz);
        int k = goutf8_encode(enc, r);
        gobuf_put(out, enc, (size_t)k);
        *i += (size_t)sz;
        *rune_out = r;
        return 0;
    }
    if (c != '\\') {
        gobuf_putc(out, (char)c);
        (*i)++;
        *rune_out = c;
        return 0;
    }
    if (*i + 1 >= n)
        return -1;
    c = (unsigned char)s[*i + 1];
    *i += 2;
    int32_t v = 0;
    switch (c) {
    case 'a':
        v = '\a';
        break;
    case 'b':
        v = '\b';
        break;
    case 'f':
        v = '\f';
        break;
    case 'n':
        v = '\n';
        break;
    case 'r':
        v = '\r';
        break;
    case 't':
        v = '\t';
        break;
    case 'v':
        v = '\v';
        break;
    case 'x':
    case 'u':
    case 'U': {
        int k = c == 'x' ? 2 : c == 'u' ? 4 : 8;
        if (*i + (size_t)k > n)
            return -1;
        for (int j = 0; j < k; j++) {
            int h = hexval((unsigned char)s[*i + (size_t)j]);
            if (h < 0)
                return -1;
            v = (v << 4) | h;
        }
        *i += (size_t)k;
        if (c == 'x') {
            gobuf_putc(out, (char)v);
            *rune_out = v;
            return 0;
        }
        if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
            return -1;
        int m = goutf8_encode(enc, v);
        gobuf_put(out, enc, (size_t)m);
        *rune_out = v;
        return 0;
    }
    case '0':
    case '1':
    case '2':
    case '3':
    case '4':
    case '5':
    case '6':
    case '7': {
        v = c - '0';
        if (*i + 2 > n)
            return -1;
        for (int j = 0; j < 2; j++) {
            int d = (unsigned char)s[*i + (size_t)j] - '0';
            if (d < 0 || d > 7)
                return -1;
            v = (v << 3) | d;
        }
        *i += 2;
        if (v > 255)
            return -1;
        gobuf_putc(out, (char)v);
        *rune_out = v;
        return 0;
    }
    case '\\':
        v = '\\';
        break;
    case '\'':
    case '"':
        if (c != quote)
            return -1;
        v = c;
        break;
    default:
        return -1;
    }
    gobuf_putc(out, (char)v);
    *rune_out = v;
    return 0;
}

node *gotmpl__string_node(parser *p, item t)
{
    gobuf b;
    gobuf_init(&b, 0);
    int bad = 0;
    if (t.typ == I_RAWSTRING) {
        for (size_t i = 1; i + 1 < t.len; i++)
            if (t.val[i] != '\r')
                gobuf_putc(&b, t.val[i]);
    } else {
        size_t i = 1, n = t.len - 1;
        while (i < n && !bad) {
            int32_t r;
            if (t.val[i] == '\n' || unquote_char(t.val, n, &i, '"', &b, &r))
                bad = 1;
        }
    }
    if (b.err) {
        gobuf_free(&b);
        p->oom = 1;
        longjmp(p->jb, 1);
    }
    node *nd = gotmpl__new_node(p, N_STRING, t.pos, t.line);
    char *s = gotmpl__palloc(p, b.len + 1);
    if (b.len)
        memcpy(s, b.p, b.len);
    nd->u.text.s = s;
    nd->u.text.n = b.len;
    nd->u.text.q = t.val;
    nd->u.text.qn = t.len;
    gobuf_free(&b);
    if (bad)
        gotmpl__fail(p, t.line, "invalid syntax");
    return nd;
}

node *gotmpl__number_node(parser *p, item t)
{
    node *nd = gotmpl__new_node(p, N_NUMBER, t.pos, t.line);
    nd->u.num.q = t.val;
    nd->u.num.qn = t.len;
    char text[128];
    if (t.typ == I_COMPLEX)
        gotmpl__fail(p, t.line, "unsupported: complex number constant %.*s", (int)t.len, t.val);
    if (t.typ == I_CHARCONST) {
        gobuf b;
        gobuf_init(&b, 0);
        size_t i = 1;
        int32_t r = 0;
        int bad = t.len < 3 || unquote_char(t.val, t.len - 1, &i, '\'', &b, &r) != 0;
        gobuf_free(&b);
        if (bad)
            gotmpl__fail(p, t.line, "invalid syntax");
        if (i != t.len - 1)
            gotmpl__fail(p, t.line, "malformed character constant: %.*s", (int)t.len, t.val);
        nd->u.num.i = r;
        return nd;
    }
    if (t.len >= sizeof text || memchr(t.val, '_', t.len) || memchr(t.val, 'i', t.len) ||
        memchr(t.val, 'p', t.len) || memchr(t.val, 'P', t.len))
        gotmpl__fail(p, t.line, "unsupported: number constant %.*s", (int)(t.len > 40 ? 40 : t.len),
                     t.val);
    memcpy(text, t.val, t.len);
    text[t.len] = '\0';
    const char *body = text + (text[0] == '+' || text[0] == '-');
    int is_hex = body[0] == '0' && (body[1] == 'x' || body[1] == 'X');
    if (body[0] == '0' && (body[1] == 'o' || body[1] == 'O' || body[1] == 'b' || body[1] == 'B'))
        gotmpl__fail(p, t.line, "unsupported: number constant %s", text);
    int floaty = !is_hex && strpbrk(text, ".eE") != NULL;
    if (!floaty) {
        errno = 0;
        char *end;
        long long v = strtoll(text, &end, 0);
        if (*end != '\0' || end == text)
            gotmpl__fail(p, t.line, "illegal number syntax: \"%s\"", text);
        if (errno == ERANGE)
            gotmpl__fail(p, t.line, "unsupported: number constant %s out of int range", text);
        nd->u.num.i = v;
        return nd;
    }
    errno = 0;
    char *end;
    double f = strtod(text, &end);
    if (*end != '\0' || end == text || (text[0] == '+' && 0))
        gotmpl__fail(p, t.line, "illegal number syntax: \"%s\"", text);
    if (errno == ERANGE && (f > 1 || f < -1))
        gotmpl__fail(p, t.line, "illegal number syntax: \"%s\"", text);
    nd->u.num.is_float = 1;
    nd->u.num.f = f;
    return nd;
}

/* ------------------------------------------------------------------ String() */

static void pipe_string(gobuf *b, const node *n);

static void arg_string(gobuf *b, const node *a)
{
    if (a->type == N_PIPE) {
        gobuf_putc(b, '(');
        pipe_string(b, a);
        gobuf_putc(b, ')');
    } else {
        tree_node_string(b, a);
    }
}

static void pipe_string(gobuf *b, const node *n)
{
    if (n->u.pipe.ndecl) {
        for (size_t i = 0; i < n->u.pipe.ndecl; i++) {
            if (i)
                gobuf_puts(b, ", ");
            tree_node_string(b, n->u.pipe.decl[i]);
        }
        gobuf_puts(b, n->u.pipe.is_assign ? " = " : " := ");
    }
    for (size_t i = 0; i < n->u.pipe.ncmds; i++) {
        if (i)
            gobuf_puts(b, " | ");
        tree_node_string(b, n->u.pipe.cmds[i]);
    }
}

void tree_node_string(gobuf *b, const node *n)
{
    switch (n->type) {
    case N_LIST:
        for (size_t i = 0; i < n->u.list.n; i++)
            tree_node_string(b, n->u.list.items[i]);
        break;
    case N_TEXT:
        gobuf_put(b, n->u.text.s, n->u.text.n);
        break;
    case N_ACTION:
        gobuf_puts(b, "{{");
        pipe_string(b, n->u.action.pipe);
        gobuf_puts(b, "}}");
        break;
    case N_IF:
    case N_RANGE:
    case N_WITH:
        gobuf_puts(b, n->type == N_IF ? "{{if " : n->type == N_RANGE ? "{{range " : "{{with ");
        pipe_string(b, n->u.ctl.pipe);
        gobuf_puts(b, "}}");
        tree_node_string(b, n->u.ctl.list);
        if (n->u.ctl.elselist) {
            gobuf_puts(b, "{{else}}");
            tree_node_string(b, n->u.ctl.elselist);
        }
        gobuf_puts(b, "{{end}}");
        break;
    case N_BREAK:
        gobuf_puts(b, "{{break}}");
        break;
    case N_CONTINUE:
        gobuf_puts(b, "{{continue}}");
        break;
    case N_PIPE:
        pipe_string(b, n);
        break;
    case N_CMD:
        for (size_t i = 0; i < n->u.cmd.n; i++) {
            if (i)
                gobuf_putc(b, ' ');
            arg_string(b, n->u.cmd.args[i]);
        }
        break;
    case N_FIELD:
        for (size_t i = 0; i < n->u.field.n; i++) {
            gobuf_putc(b, '.');
            gobuf_put(b, n->u.field.ident[i], n->u.field.len[i]);
        }
        break;
    case N_VAR:
        for (size_t i = 0; i < n->u.field.n; i++) {
            if (i)
                gobuf_putc(b, '.');
            gobuf_put(b, n->u.field.ident[i], n->u.field.len[i]);
        }
        break;
    case N_CHAIN:
        arg_string(b, n->u.field.inner);
        for (size_t i = 0; i < n->u.field.n; i++) {
            gobuf_putc(b, '.');
            gobuf_put(b, n->u.field.ident[i], n->u.field.len[i]);
        }
        break;
    case N_DOT:
        gobuf_putc(b, '.');
        break;
    case N_NIL:
        gobuf_puts(b, "nil");
        break;
    case N_BOOL:
        gobuf_puts(b, n->u.b ? "true" : "false");
        break;
    case N_NUMBER:
        gobuf_put(b, n->u.num.q, n->u.num.qn);
        break;
    case N_STRING:
        gobuf_put(b, n->u.text.q, n->u.text.qn);
        break;
    case N_IDENT:
        gobuf_puts(b, n->u.ident.name);
        break;
    case N_END:
        gobuf_puts(b, "{{end}}");
        break;
    case N_ELSE:
        gobuf_puts(b, "{{else}}");
        break;
    }
}
