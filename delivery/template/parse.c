/*
 * parse.c - lexer and parser for Go templates, following text/template/parse (lex.go,
 * parse.go) closely so that the same sources are accepted, trimmed and rejected with the
 * same messages ("template: :LINE: ..."). Constructs outside the supported subset are
 * refused with "unsupported: ...". Errors unwind with longjmp; everything allocated
 * during a parse lives in one arena that is freed on failure.
 */
#include "gotmpl-internal.h"
#include "tree.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ arena */

struct parena {
    struct parena *next;
    size_t used, size;
    max_align_t data[];
};

static void parena_free(struct parena *a)
{
    while (a) {
        struct parena *n = a->next;
        free(a);
        a = n;
    }
}

/* ------------------------------------------------------------------ lexer */

typedef enum {
    I_ERROR,
    I_BOOL,
    I_CHAR,
    I_CHARCONST,
    I_COMPLEX,
    I_ASSIGN,
    I_DECLARE,
    I_EOF,
    I_FIELD,
    I_IDENT,
    I_LDELIM,
    I_LPAREN,
    I_NUMBER,
    I_PIPE,
    I_RAWSTRING,
    I_RDELIM,
    I_RPAREN,
    I_SPACE,
    I_STRING,
    I_TEXT,
    I_VARIABLE,
    I_KEYWORD, /* keywords after this */
    I_BLOCK,
    I_BREAK,
    I_CONTINUE,
    I_DOT,
    I_DEFINE,
    I_ELSE,
    I_END,
    I_IF,
    I_NIL,
    I_RANGE,
    I_TEMPLATE,
    I_WITH,
} itype;

typedef struct item {
    itype typ;
    size_t pos;
    int line;
    const char *val;
    size_t len;
    char msg[160]; /* I_ERROR */
} item;

typedef struct parser {
    const char *in;
    size_t n;
    /* lexer */
    size_t pos, start;
    int line, start_line;
    int paren_depth;
    int in_action;
    int lex_done;
    /* item queue produced by the lexer */
    item *items;
    size_t nitems, citems, next_item;
    /* parser */
    item token[3];
    int peekcount;
    int action_line;
    int range_depth;
    int depth;
    const char **vars;
    size_t nvars, cvars;
    struct parena *arena;
    jmp_buf jb;
    char *err;
    size_t errlen;
    int oom;
} parser;

static void *palloc(parser *p, size_t size)
{
    size = (size + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
    struct parena *a = p->arena;
    if (!a || a->size - a->used < size) {
        size_t sz = size > 8192 ? size : 8192;
        a = malloc(sizeof *a + sz);
        if (!a) {
            p->oom = 1;
            longjmp(p->jb, 1);
        }
        a->used = 0;
        a->size = sz;
        a->next = p->arena;
        p->arena = a;
    }
    void *r = (char *)a->data + a->used;
    a->used += size;
    memset(r, 0, size);
    return r;
}

__attribute__((format(printf, 3, 4), noreturn)) static void fail(parser *p, int line,
                                                                 const char *fmt, ...);
static void fail(parser *p, int line, const char *fmt, ...)
{
    if (p->errlen) {
        char msg[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        snprintf(p->err, p->errlen, "template: :%d: %s", line, msg);
    }
    longjmp(p->jb, 1);
}

static void emit_item(parser *p, item *it)
{
    if (p->nitems == p->citems) {
        size_t nc = p->citems ? p->citems * 2 : 64;
        item *ni = realloc(p->items, nc * sizeof *ni);
        if (!ni) {
            p->oom = 1;
            longjmp(p->jb, 1);
        }
        p->items = ni;
        p->citems = nc;
    }
    p->items[p->nitems++] = *it;
}

static void emit(parser *p, itype t)
{
    item it;
    it.typ = t;
    it.pos = p->start;
    it.line = p->start_line;
    it.val = p->in + p->start;
    it.len = p->pos - p->start;
    it.msg[0] = '\0';
    emit_item(p, &it);
    for (size_t i = p->start; i < p->pos; i++)
        if (p->in[i] == '\n')
            p->line++;
    p->start = p->pos;
    p->start_line = p->line;
}

static void ignore(parser *p)
{
    for (size_t i = p->start; i < p->pos; i++)
        if (p->in[i] == '\n')
            p->line++;
    p->start = p->pos;
    p->start_line = p->line;
}

__attribute__((format(printf, 2, 3))) static void lex_error(parser *p, const char *fmt, ...);
static void lex_error(parser *p, const char *fmt, ...)
{
    item it;
    it.typ = I_ERROR;
    it.pos = p->start;
    it.line = p->start_line;
    it.val = "";
    it.len = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(it.msg, sizeof it.msg, fmt, ap);
    va_end(ap);
    emit_item(p, &it);
    p->lex_done = 1;
}

static int is_space(int c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int is_alnum(int c)
{
    return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static int peekc(parser *p)
{
    return p->pos < p->n ? (unsigned char)p->in[p->pos] : -1;
}

static int has_left_trim(parser *p, size_t at)
{
    return at + 2 <= p->n && p->in[at] == '-' && is_space((unsigned char)p->in[at + 1]);
}

static int has_right_trim(parser *p, size_t at)
{
    return at + 2 <= p->n && is_space((unsigned char)p->in[at]) && p->in[at + 1] == '-';
}

static int prefix(parser *p, size_t at, const char *s)
{
    size_t k = strlen(s);
    return at + k <= p->n && memcmp(p->in + at, s, k) == 0;
}

/* at right delimiter? sets *trim */
static int at_right_delim(parser *p, int *trim)
{
    if (has_right_trim(p, p->pos) && prefix(p, p->pos + 2, "}}")) {
        *trim = 1;
        return 1;
    }
    *trim = 0;
    return prefix(p, p->pos, "}}");
}

static int at_terminator(parser *p)
{
    int r = peekc(p);
    if (r < 0 || is_space(r))
        return 1;
    switch (r) {
    case '.':
    case ',':
    case '|':
    case ':':
    case ')':
    case '(':
        return 1;
    }
    return prefix(p, p->pos, "}}");
}

static void bad_char(parser *p, int r)
{
    if (r < 0)
        lex_error(p, "bad character U+FFFD");
    else if (r >= 0x80)
        lex_error(p, "unsupported: non-ASCII character in an action");
    else if (r >= 0x20 && r < 0x7f)
        lex_error(p, "bad character U+%04X '%c'", r, r);
    else
        lex_error(p, "bad character U+%04X", r);
}

static int accept(parser *p, const char *set)
{
    int c = peekc(p);
    if (c > 0 && strchr(set, c)) {
        p->pos++;
        return 1;
    }
    return 0;
}

static void accept_run(parser *p, const char *set)
{
    while (accept(p, set))
        ;
}

static int scan_number(parser *p)
{
    accept(p, "+-");
    const char *digits = "0123456789_";
    if (accept(p, "0")) {
        if (accept(p, "xX"))
            digits = "0123456789abcdefABCDEF_";
        else if (accept(p, "oO"))
            digits = "01234567_";
        else if (accept(p, "bB"))
            digits = "01_";
    }
    accept_run(p, digits);
    if (accept(p, "."))
        accept_run(p, digits);
    if (strlen(digits) == 11 && accept(p, "eE")) {
        accept(p, "+-");
        accept_run(p, "0123456789_");
    }
    if (strlen(digits) == 23 && accept(p, "pP")) {
        accept(p, "+-");
        accept_run(p, "0123456789_");
    }
    accept(p, "i");
    int c = peekc(p);
    if (c >= 0 && (is_alnum(c) || c >= 0x80)) {
        p->pos++;
        return 0;
    }
    return 1;
}

static void lex_action_token(parser *p);

static void lex_text(parser *p)
{
    const char *x = NULL;
    for (size_t i = p->pos; i + 1 < p->n; i++)
        if (p->in[i] == '{' && p->in[i + 1] == '{') {
            x = p->in + i;
            break;
        }
    if (x) {
        size_t at = (size_t)(x - p->in);
        if (at > p->pos) {
            p->pos = at;
            size_t trim = 0;
            if (has_left_trim(p, at + 2)) {
                size_t e = at;
                while (e > p->start && is_space((unsigned char)p->in[e - 1]))
                    e--;
                trim = at - e;
            }
            p->pos -= trim;
            if (p->pos > p->start)
                emit(p, I_TEXT);
            p->pos += trim;
            ignore(p);
        }
        /* left delimiter */
        p->pos += 2;
        int trim = has_left_trim(p, p->pos);
        size_t after = trim ? 2 : 0;
        if (prefix(p, p->pos + after, "/*")) {
            p->pos += after;
            ignore(p);
            /* comment */
            p->pos += 2;
            const char *e = NULL;
            for (size_t i = p->pos; i + 1 < p->n; i++)
                if (p->in[i] == '*' && p->in[i + 1] == '/') {
                    e = p->in + i;
                    break;
                }
            if (!e) {
                lex_error(p, "unclosed comment");
                return;
            }
            p->pos = (size_t)(e - p->in) + 2;
            int rtrim;
            if (!at_right_delim(p, &rtrim)) {
                lex_error(p, "comment ends before closing delimiter");
                return;
            }
            if (rtrim)
                p->pos += 2;
            p->pos += 2;
            if (rtrim)
                while (p->pos < p->n && is_space((unsigned char)p->in[p->pos]))
                    p->pos++;
            ignore(p);
            return;
        }
        emit(p, I_LDELIM);
        p->pos += after;
        ignore(p);
        p->paren_depth = 0;
        p->in_action = 1;
        return;
    }
    p->pos = p->n;
    if (p->pos > p->start) {
        emit(p, I_TEXT);
        return;
    }
    emit(p, I_EOF);
    p->lex_done = 1;
}

static void lex_right_delim(parser *p, int trim)
{
    if (trim) {
        p->pos += 2;
        ignore(p);
    }
    p->pos += 2;
    emit(p, I_RDELIM);
    if (trim) {
        while (p->pos < p->n && is_space((unsigned char)p->in[p->pos]))
            p->pos++;
        ignore(p);
    }
    p->in_action = 0;
}

static void lex_field_or_var(parser *p, itype typ)
{
    if (at_terminator(p)) {
        emit(p, typ == I_VARIABLE ? I_VARIABLE : I_DOT);
        return;
    }
    int r;
    for (;;) {
        r = peekc(p);
        if (r < 0 || !is_alnum(r))
            break;
        p->pos++;
    }
    if (!at_terminator(p)) {
        bad_char(p, r);
        return;
    }
    emit(p, typ);
}

static const struct {
    const char *w;
    itype t;
} keywords[] = {
    {"block", I_BLOCK},
    {"break", I_BREAK},
    {"continue", I_CONTINUE},
    {"define", I_DEFINE},
    {"else", I_ELSE},
    {"end", I_END},
    {"if", I_IF},
    {"range", I_RANGE},
    {"nil", I_NIL},
    {"template", I_TEMPLATE},
    {"with", I_WITH},
};

/* Scan a quoted string or char constant after its opening quote; 0 after an error. */
static int lex_quoted(parser *p, int quote, const char *unterminated)
{
    for (;;) {
        int c = peekc(p);
        if (c == '\\') {
            p->pos++;
            c = peekc(p);
            if (c >= 0 && c != '\n') {
                p->pos++;
                continue;
            }
        }
        if (c < 0 || c == '\n') {
            lex_error(p, "%s", unterminated);
            return 0;
        }
        p->pos++;
        if (c == quote)
            return 1;
    }
}

static void lex_action_token(parser *p)
{
    int trim;
    if (at_right_delim(p, &trim)) {
        if (p->paren_depth == 0) {
            lex_right_delim(p, trim);
            return;
        }
        lex_error(p, "unclosed left paren");
        return;
    }
    int r = peekc(p);
    if (r < 0) {
        lex_error(p, "unclosed action");
        return;
    }
    p->pos++;
    if (is_space(r)) {
        p->pos--;
        size_t num = 0;
        while (p->pos < p->n && is_space((unsigned char)p->in[p->pos])) {
            p->pos++;
            num++;
        }
        if (has_right_trim(p, p->pos - 1) && prefix(p, p->pos + 1, "}}")) {
            p->pos--;
            if (num == 1)
                return;
        }
        emit(p, I_SPACE);
        return;
    }
    switch (r) {
    case '=':
        emit(p, I_ASSIGN);
        return;
    case ':':
        if (peekc(p) != '=') {
            lex_error(p, "expected :=");
            return;
        }
        p->pos++;
        emit(p, I_DECLARE);
        return;
    case '|':
        emit(p, I_PIPE);
        return;
    case '"':
        if (lex_quoted(p, '"', "unterminated quoted string"))
            emit(p, I_STRING);
        return;
    case '`':
        for (;;) {
            int c = peekc(p);
            if (c < 0) {
                lex_error(p, "unterminated raw quoted string");
                return;
            }
            p->pos++;
            if (c == '`')
                break;
        }
        emit(p, I_RAWSTRING);
        return;
    case '$':
        lex_field_or_var(p, I_VARIABLE);
        return;
    case '\'':
        if (lex_quoted(p, '\'', "unterminated character constant"))
            emit(p, I_CHARCONST);
        return;
    case '(':
        p->paren_depth++;
        emit(p, I_LPAREN);
        return;
    case ')':
        p->paren_depth--;
        if (p->paren_depth < 0) {
            lex_error(p, "unexpected right paren");
            return;
        }
        emit(p, I_RPAREN);
        return;
    }
    if (r == '.') {
        int c = peekc(p);
        if (c < '0' || c > '9') {
            lex_field_or_var(p, I_FIELD);
            return;
        }
    }
    if (r == '.' || r == '+' || r == '-' || (r >= '0' && r <= '9')) {
        p->pos--;
        if (!scan_number(p)) {
            lex_error(p, "bad number syntax: \"%.*s\"", (int)(p->pos - p->start), p->in + p->start);
            return;
        }
        int sign = peekc(p);
        if (sign == '+' || sign == '-') {
            if (!scan_number(p) || p->in[p->pos - 1] != 'i') {
                lex_error(p, "bad number syntax: \"%.*s\"", (int)(p->pos - p->start),
                          p->in + p->start);
                return;
            }
            emit(p, I_COMPLEX);
        } else {
            emit(p, I_NUMBER);
        }
        return;
    }
    if (is_alnum(r)) {
        for (;;) {
            int c = peekc(p);
            if (c < 0 || !is_alnum(c))
                break;
            p->pos++;
        }
        if (!at_terminator(p)) {
            bad_char(p, peekc(p));
            return;
        }
        size_t len = p->pos - p->start;
        const char *w = p->in + p->start;
        for (size_t i = 0; i < sizeof keywords / sizeof keywords[0]; i++)
            if (strlen(keywords[i].w) == len && memcmp(keywords[i].w, w, len) == 0) {
                emit(p, keywords[i].t);
                return;
            }
        if ((len == 4 && memcmp(w, "true", 4) == 0) || (len == 5 && memcmp(w, "false", 5) == 0))
            emit(p, I_BOOL);
        else
            emit(p, I_IDENT);
        return;
    }
    if (r >= 0x80) {
        lex_error(p, "unsupported: non-ASCII character in an action");
        return;
    }
    if (r >= 0x20 && r < 0x7f) {
        emit(p, I_CHAR);
        return;
    }
    lex_error(p, "unrecognized character in action: U+%04X", r);
}

/* Run the lexer until at least one more item is queued. */
static item *lex_next(parser *p)
{
    while (p->next_item >= p->nitems) {
        if (p->lex_done) {
            /* repeat the last item (EOF or error) */
            return &p->items[p->nitems - 1];
        }
        if (p->in_action)
            lex_action_token(p);
        else
            lex_text(p);
    }
    return &p->items[p->next_item++];
}

/* ------------------------------------------------------------------ parser plumbing */

static item next(parser *p)
{
    if (p->peekcount > 0)
        p->peekcount--;
    else
        p->token[0] = *lex_next(p);
    return p->token[p->peekcount];
}

static void backup(parser *p)
{
    p->peekcount++;
}

static void backup2(parser *p, item t1)
{
    p->token[1] = t1;
    p->peekcount = 2;
}

static void backup3(parser *p, item t2, item t1)
{
    p->token[1] = t1;
    p->token[2] = t2;
    p->peekcount = 3;
}

static item peek(parser *p)
{
    if (p->peekcount > 0)
        return p->token[p->peekcount - 1];
    p->peekcount = 1;
    p->token[0] = *lex_next(p);
    return p->token[0];
}

static item next_non_space(parser *p)
{
    item t;
    for (;;) {
        t = next(p);
        if (t.typ != I_SPACE)
            break;
    }
    return t;
}

static item peek_non_space(parser *p)
{
    item t = next_non_space(p);
    backup(p);
    return t;
}

static int cur_line(parser *p)
{
    return p->token[0].line;
}

static void item_string(const item *t, char *buf, size_t size)
{
    if (t->typ == I_EOF) {
        snprintf(buf, size, "EOF");
        return;
    }
    if (t->typ == I_ERROR) {
        snprintf(buf, size, "%s", t->msg);
        return;
    }
    if (t->typ > I_KEYWORD) {
        snprintf(buf, size, "<%.*s>", (int)t->len, t->val);
        return;
    }
    gobuf b;
    gobuf_init(&b, 0);
    size_t n = t->len;
    int trunc = 0;
    /* %.10q: at most 10 runes */
    size_t i = 0;
    for (int k = 0; i < n; k++) {
        if (k == 10) {
            trunc = 1;
            break;
        }
        int sz;
        goutf8_decode((const unsigned char *)t->val + i, n - i, &sz);
        i += (size_t)sz;
    }
    gofmt_quote(&b, t->val, i, 0);
    snprintf(buf, size, "%s%s", b.p ? b.p : "\"\"", trunc ? "..." : "");
    gobuf_free(&b);
}

static void unexpected(parser *p, item t, const char *context)
{
    char s[160];
    if (t.typ == I_ERROR) {
        if (p->action_line != 0 && p->action_line != t.line) {
            size_t l = strlen(t.msg);
            if (l >= 7 && strcmp(t.msg + l - 7, " action") == 0)
                fail(p, t.line, "%s started at :%d", t.msg, p->action_line);
            fail(p, t.line, "%s in action started at :%d", t.msg, p->action_line);
        }
        fail(p, t.line, "%s", t.msg);
    }
    item_string(&t, s, sizeof s);
    fail(p, t.line, "unexpected %s in %s", s, context);
}

static item expect(parser *p, itype want, const char *context)
{
    item t = next_non_space(p);
    if (t.typ != want)
        unexpected(p, t, context);
    return t;
}

/* growable node vector in the arena */
typedef struct nvec {
    node **v;
    size_t n, c;
} nvec;

static void nvec_push(parser *p, nvec *v, node *x)
{
    if (v->n == v->c) {
        size_t nc = v->c ? v->c * 2 : 4;
        node **nv = palloc(p, nc * sizeof *nv);
        if (v->n)
            memcpy(nv, v->v, v->n * sizeof *nv);
        v->v = nv;
        v->c = nc;
    }
    v->v[v->n++] = x;
}

static node *new_node(parser *p, ntype t, size_t pos, int line)
{
    node *n = palloc(p, sizeof *n);
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

static node *string_node(parser *p, item t)
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
    node *nd = new_node(p, N_STRING, t.pos, t.line);
    char *s = palloc(p, b.len + 1);
    if (b.len)
        memcpy(s, b.p, b.len);
    nd->u.text.s = s;
    nd->u.text.n = b.len;
    nd->u.text.q = t.val;
    nd->u.text.qn = t.len;
    gobuf_free(&b);
    if (bad)
        fail(p, t.line, "invalid syntax");
    return nd;
}

static node *number_node(parser *p, item t)
{
    node *nd = new_node(p, N_NUMBER, t.pos, t.line);
    nd->u.num.q = t.val;
    nd->u.num.qn = t.len;
    char text[128];
    if (t.typ == I_COMPLEX)
        fail(p, t.line, "unsupported: complex number constant %.*s", (int)t.len, t.val);
    if (t.typ == I_CHARCONST) {
        gobuf b;
        gobuf_init(&b, 0);
        size_t i = 1;
        int32_t r = 0;
        int bad = t.len < 3 || unquote_char(t.val, t.len - 1, &i, '\'', &b, &r) != 0;
        gobuf_free(&b);
        if (bad)
            fail(p, t.line, "invalid syntax");
        if (i != t.len - 1)
            fail(p, t.line, "malformed character constant: %.*s", (int)t.len, t.val);
        nd->u.num.i = r;
        return nd;
    }
    if (t.len >= sizeof text || memchr(t.val, '_', t.len) || memchr(t.val, 'i', t.len) ||
        memchr(t.val, 'p', t.len) || memchr(t.val, 'P', t.len))
        fail(p, t.line, "unsupported: number constant %.*s", (int)(t.len > 40 ? 40 : t.len), t.val);
    memcpy(text, t.val, t.len);
    text[t.len] = '\0';
    const char *body = text + (text[0] == '+' || text[0] == '-');
    int is_hex = body[0] == '0' && (body[1] == 'x' || body[1] == 'X');
    if (body[0] == '0' && (body[1] == 'o' || body[1] == 'O' || body[1] == 'b' || body[1] == 'B'))
        fail(p, t.line, "unsupported: number constant %s", text);
    int floaty = !is_hex && strpbrk(text, ".eE") != NULL;
    if (!floaty) {
        errno = 0;
        char *end;
        long long v = strtoll(text, &end, 0);
        if (*end != '\0' || end == text)
            fail(p, t.line, "illegal number syntax: \"%s\"", text);
        if (errno == ERANGE)
            fail(p, t.line, "unsupported: number constant %s out of int range", text);
        nd->u.num.i = v;
        return nd;
    }
    errno = 0;
    char *end;
    double f = strtod(text, &end);
    if (*end != '\0' || end == text || (text[0] == '+' && 0))
        fail(p, t.line, "illegal number syntax: \"%s\"", text);
    if (errno == ERANGE && (f > 1 || f < -1))
        fail(p, t.line, "illegal number syntax: \"%s\"", text);
    nd->u.num.is_float = 1;
    nd->u.num.f = f;
    return nd;
}

/* ------------------------------------------------------------------ grammar */

static node *pipeline(parser *p, const char *context, itype end);
static node *item_list(parser *p, node **next);
static node *if_control(parser *p);
static node *with_control(parser *p);

static const struct {
    const char *name;
    fn_id fn;
} functions[] = {
    {"and", F_AND},
    {"or", F_OR},
    {"not", F_NOT},
    {"len", F_LEN},
    {"index", F_INDEX},
    {"slice", F_SLICE},
    {"print", F_PRINT},
    {"printf", F_PRINTF},
    {"println", F_PRINTLN},
    {"html", F_HTML},
    {"urlquery", F_URLQUERY},
    {"js", F_JS},
    {"eq", F_EQ},
    {"ne", F_NE},
    {"lt", F_LT},
    {"le", F_LE},
    {"gt", F_GT},
    {"ge", F_GE},
    {"toJson", F_TOJSON},
};

static node *split_chain(parser *p, node *nd, const char *s, size_t n, int is_var)
{
    /* s is ".A.B" (field) or "$x.A.B" (variable) */
    size_t count = 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] == '.')
            count++;
    if (is_var)
        count++;
    nd->u.field.ident = palloc(p, count * sizeof(char *));
    nd->u.field.len = palloc(p, count * sizeof(size_t));
    size_t k = 0, i = 0;
    if (is_var) {
        size_t j = 0;
        while (j < n && s[j] != '.')
            j++;
        nd->u.field.ident[k] = s;
        nd->u.field.len[k++] = j;
        i = j;
    }
    while (i < n) {
        size_t j = i + 1;
        while (j < n && s[j] != '.')
            j++;
        nd->u.field.ident[k] = s + i + 1;
        nd->u.field.len[k++] = j - i - 1;
        i = j;
    }
    nd->u.field.n = k;
    return nd;
}

static node *use_var(parser *p, item t)
{
    node *v = new_node(p, N_VAR, t.pos, t.line);
    split_chain(p, v, t.val, t.len, 1);
    for (size_t i = 0; i < p->nvars; i++)
        if (strlen(p->vars[i]) == v->u.field.len[0] &&
            memcmp(p->vars[i], t.val, v->u.field.len[0]) == 0)
            return v;
    fail(p, t.line, "undefined variable \"%.*s\"", (int)v->u.field.len[0], t.val);
    return NULL;
}

static void push_var(parser *p, const char *name, size_t len)
{
    if (p->nvars == p->cvars) {
        size_t nc = p->cvars ? p->cvars * 2 : 16;
        const char **nv = palloc(p, nc * sizeof *nv);
        if (p->nvars)
            memcpy(nv, p->vars, p->nvars * sizeof *nv);
        p->vars = nv;
        p->cvars = nc;
    }
    char *s = palloc(p, len + 1);
    memcpy(s, name, len);
    p->vars[p->nvars++] = s;
}

static node *term(parser *p)
{
    item t = next_non_space(p);
    switch (t.typ) {
    case I_IDENT: {
        for (size_t i = 0; i < sizeof functions / sizeof functions[0]; i++)
            if (strlen(functions[i].name) == t.len &&
                memcmp(functions[i].name, t.val, t.len) == 0) {
                node *n = new_node(p, N_IDENT, t.pos, t.line);
                n->u.ident.name = functions[i].name;
                n->u.ident.fn = functions[i].fn;
                return n;
            }
        if (t.len == 4 && memcmp(t.val, "call", 4) == 0)
            fail(p, t.line, "unsupported: function \"call\"");
        fail(p, t.line, "function \"%.*s\" not defined", (int)t.len, t.val);
        return NULL;
    }
    case I_DOT:
        return new_node(p, N_DOT, t.pos, t.line);
    case I_NIL:
        return new_node(p, N_NIL, t.pos, t.line);
    case I_VARIABLE:
        return use_var(p, t);
    case I_FIELD:
        return split_chain(p, new_node(p, N_FIELD, t.pos, t.line), t.val, t.len, 0);
    case I_BOOL: {
        node *n = new_node(p, N_BOOL, t.pos, t.line);
        n->u.b = t.len == 4;
        return n;
    }
    case I_CHARCONST:
    case I_COMPLEX:
    case I_NUMBER:
        return number_node(p, t);
    case I_LPAREN:
        return pipeline(p, "parenthesized pipeline", I_RPAREN);
    case I_STRING:
    case I_RAWSTRING:
        return string_node(p, t);
    default:
        break;
    }
    backup(p);
    return NULL;
}

static const char *type_word(ntype t)
{
    (void)t;
    return "";
}

static node *operand(parser *p)
{
    node *nd = term(p);
    if (!nd)
        return NULL;
    if (peek(p).typ == I_FIELD) {
        size_t pos = peek(p).pos;
        int line = peek(p).line;
        /* collect the chained fields */
        const char *fields[256];
        size_t lens[256];
        size_t nf = 0;
        while (peek(p).typ == I_FIELD) {
            item f = next(p);
            if (nf == 256)
                fail(p, f.line, "unsupported: field chain longer than 256");
            fields[nf] = f.val + 1;
            lens[nf++] = f.len - 1;
        }
        switch (nd->type) {
        case N_FIELD:
        case N_VAR: {
            size_t n0 = nd->u.field.n;
            node *c = new_node(p, nd->type, pos, line);
            c->u.field.ident = palloc(p, (n0 + nf) * sizeof(char *));
            c->u.field.len = palloc(p, (n0 + nf) * sizeof(size_t));
            memcpy(c->u.field.ident, nd->u.field.ident, n0 * sizeof(char *));
            memcpy(c->u.field.len, nd->u.field.len, n0 * sizeof(size_t));
            memcpy(c->u.field.ident + n0, fields, nf * sizeof(char *));
            memcpy(c->u.field.len + n0, lens, nf * sizeof(size_t));
            c->u.field.n = n0 + nf;
            return c;
        }
        case N_BOOL:
        case N_STRING:
        case N_NUMBER:
        case N_NIL:
        case N_DOT: {
            gobuf b;
            gobuf_init(&b, 0);
            tree_node_string(&b, nd);
            char q[128];
            gobuf qb;
            gobuf_init(&qb, 0);
            gofmt_quote(&qb, b.p ? b.p : "", b.len, 0);
            snprintf(q, sizeof q, "%s", qb.p ? qb.p : "\"\"");
            gobuf_free(&qb);
            gobuf_free(&b);
            fail(p, line, "unexpected . after term %s%s", q, type_word(nd->type));
            return NULL;
        }
        default: {
            node *c = new_node(p, N_CHAIN, pos, line);
            c->u.field.inner = nd;
            c->u.field.ident = palloc(p, nf * sizeof(char *));
            c->u.field.len = palloc(p, nf * sizeof(size_t));
            memcpy(c->u.field.ident, fields, nf * sizeof(char *));
            memcpy(c->u.field.len, lens, nf * sizeof(size_t));
            c->u.field.n = nf;
            return c;
        }
        }
    }
    return nd;
}

static node *command(parser *p)
{
    item first = peek_non_space(p);
    node *cmd = new_node(p, N_CMD, first.pos, first.line);
    nvec args = {0};
    for (;;) {
        peek_non_space(p);
        node *op = operand(p);
        if (op)
            nvec_push(p, &args, op);
        item t = next(p);
        if (t.typ == I_SPACE)
            continue;
        if (t.typ == I_RDELIM || t.typ == I_RPAREN) {
            backup(p);
        } else if (t.typ != I_PIPE) {
            unexpected(p, t, "operand");
        }
        break;
    }
    if (args.n == 0)
        fail(p, cur_line(p), "empty command");
    cmd->u.cmd.args = args.v;
    cmd->u.cmd.n = args.n;
    return cmd;
}

#define MAX_DEPTH 200

static node *pipeline(parser *p, const char *context, itype end)
{
    item t0 = peek_non_space(p);
    if (++p->depth > MAX_DEPTH)
        fail(p, t0.line, "unsupported: nesting deeper than %d", MAX_DEPTH);
    node *pipe = new_node(p, N_PIPE, t0.pos, t0.line);
    nvec decl = {0}, cmds = {0};
    int is_range = strcmp(context, "range") == 0;
decls:;
    item v = peek_non_space(p);
    if (v.typ == I_VARIABLE) {
        next(p);
        item after = peek(p);
        item nx = peek_non_space(p);
        if (nx.typ == I_ASSIGN || nx.typ == I_DECLARE) {
            pipe->u.pipe.is_assign = nx.typ == I_ASSIGN;
            next_non_space(p);
            node *vn = new_node(p, N_VAR, v.pos, v.line);
            split_chain(p, vn, v.val, v.len, 1);
            nvec_push(p, &decl, vn);
            push_var(p, v.val, v.len);
        } else if (nx.typ == I_CHAR && nx.len == 1 && nx.val[0] == ',') {
            next_non_space(p);
            node *vn = new_node(p, N_VAR, v.pos, v.line);
            split_chain(p, vn, v.val, v.len, 1);
            nvec_push(p, &decl, vn);
            push_var(p, v.val, v.len);
            if (is_range && decl.n < 2) {
                itype pt = peek_non_space(p).typ;
                if (pt == I_VARIABLE || pt == I_RDELIM || pt == I_RPAREN)
                    goto decls;
                fail(p, cur_line(p), "range can only initialize variables");
            }
            fail(p, cur_line(p), "too many declarations in %s", context);
        } else if (after.typ == I_SPACE) {
            backup3(p, v, after);
        } else {
            backup2(p, v);
        }
    }
    for (;;) {
        item t = next_non_space(p);
        if (t.typ == end) {
            if (cmds.n == 0)
                fail(p, t.line, "missing value for %s", context);
            for (size_t i = 1; i < cmds.n; i++) {
                ntype at = cmds.v[i]->u.cmd.args[0]->type;
                if (at == N_BOOL || at == N_DOT || at == N_NIL || at == N_NUMBER || at == N_STRING)
                    fail(p, t.line, "non executable command in pipeline stage %zu", i + 1);
            }
            break;
        }
        switch (t.typ) {
        case I_BOOL:
        case I_CHARCONST:
        case I_COMPLEX:
        case I_DOT:
        case I_FIELD:
        case I_IDENT:
        case I_NUMBER:
        case I_NIL:
        case I_RAWSTRING:
        case I_STRING:
        case I_VARIABLE:
        case I_LPAREN:
            backup(p);
            nvec_push(p, &cmds, command(p));
            break;
        default:
            unexpected(p, t, context);
        }
    }
    p->depth--;
    pipe->u.pipe.decl = decl.v;
    pipe->u.pipe.ndecl = decl.n;
    pipe->u.pipe.cmds = cmds.v;
    pipe->u.pipe.ncmds = cmds.n;
    return pipe;
}

/* parseControl */
static node *control(parser *p, ntype type, const char *context)
{
    size_t saved_vars = p->nvars;
    if (++p->depth > MAX_DEPTH)
        fail(p, cur_line(p), "unsupported: nesting deeper than %d", MAX_DEPTH);
    node *pipe = pipeline(p, context, I_RDELIM);
    if (type == N_RANGE)
        p->range_depth++;
    node *nextn;
    node *list = item_list(p, &nextn);
    if (type == N_RANGE)
        p->range_depth--;
    node *elselist = NULL;
    if (nextn->type == N_ELSE) {
        itype pk = peek(p).typ;
        if (type == N_IF && pk == I_IF) {
            next(p);
            elselist = new_node(p, N_LIST, nextn->pos, nextn->line);
            node **items = palloc(p, sizeof(node *));
            items[0] = if_control(p);
            elselist->u.list.items = items;
            elselist->u.list.n = 1;
        } else if (type == N_WITH && pk == I_WITH) {
            next(p);
            elselist = new_node(p, N_LIST, nextn->pos, nextn->line);
            node **items = palloc(p, sizeof(node *));
            items[0] = with_control(p);
            elselist->u.list.items = items;
            elselist->u.list.n = 1;
        } else {
            elselist = item_list(p, &nextn);
            if (nextn->type != N_END) {
                char s[32];
                snprintf(s, sizeof s, "%s", nextn->type == N_ELSE ? "{{else}}" : "{{end}}");
                fail(p, nextn->line, "expected end; found %s", s);
            }
        }
    }
    p->nvars = saved_vars;
    p->depth--;
    node *n = new_node(p, type, pipe->pos, pipe->line);
    n->u.ctl.pipe = pipe;
    n->u.ctl.list = list;
    n->u.ctl.elselist = elselist;
    return n;
}

static node *if_control(parser *p)
{
    return control(p, N_IF, "if");
}

static node *with_control(parser *p)
{
    return control(p, N_WITH, "with");
}

static node *action(parser *p)
{
    item t = next_non_space(p);
    switch (t.typ) {
    case I_BLOCK:
    case I_DEFINE:
    case I_TEMPLATE:
        fail(p, t.line, "unsupported: {{%.*s}} (named templates are not supported)", (int)t.len,
             t.val);
        break;
    case I_BREAK:
    case I_CONTINUE: {
        item r = next_non_space(p);
        int brk = t.typ == I_BREAK;
        if (r.typ != I_RDELIM)
            unexpected(p, r, brk ? "{{break}}" : "{{continue}}");
        if (p->range_depth == 0)
            fail(p, t.line, "{{%s}} outside {{range}}", brk ? "break" : "continue");
        return new_node(p, brk ? N_BREAK : N_CONTINUE, t.pos, t.line);
    }
    case I_ELSE: {
        item pk = peek_non_space(p);
        if (pk.typ == I_IF || pk.typ == I_WITH)
            return new_node(p, N_ELSE, pk.pos, pk.line);
        item r = expect(p, I_RDELIM, "else");
        return new_node(p, N_ELSE, r.pos, r.line);
    }
    case I_END: {
        item r = expect(p, I_RDELIM, "end");
        return new_node(p, N_END, r.pos, r.line);
    }
    case I_IF:
        return if_control(p);
    case I_RANGE:
        return control(p, N_RANGE, "range");
    case I_WITH:
        return with_control(p);
    default:
        break;
    }
    backup(p);
    item tok = peek(p);
    node *a = new_node(p, N_ACTION, tok.pos, tok.line);
    a->u.action.pipe = pipeline(p, "command", I_RDELIM);
    return a;
}

/* textOrAction; returns NULL for a comment (never produced: comments are dropped). */
static node *text_or_action(parser *p)
{
    item t = next_non_space(p);
    switch (t.typ) {
    case I_TEXT: {
        node *n = new_node(p, N_TEXT, t.pos, t.line);
        n->u.text.s = t.val;
        n->u.text.n = t.len;
        return n;
    }
    case I_LDELIM: {
        p->action_line = t.line;
        node *n = action(p);
        p->action_line = 0;
        return n;
    }
    default:
        unexpected(p, t, "input");
    }
    return NULL;
}

static node *item_list(parser *p, node **nextp)
{
    item pk = peek_non_space(p);
    node *list = new_node(p, N_LIST, pk.pos, pk.line);
    nvec items = {0};
    while (peek_non_space(p).typ != I_EOF) {
        node *n = text_or_action(p);
        if (n->type == N_END || n->type == N_ELSE) {
            list->u.list.items = items.v;
            list->u.list.n = items.n;
            *nextp = n;
            return list;
        }
        nvec_push(p, &items, n);
    }
    fail(p, cur_line(p), "unexpected EOF");
    return NULL;
}

/* ------------------------------------------------------------------ static checks */

static int is_event_or_meta(const node *a, int dot_is_event)
{
    if (a->type == N_DOT)
        return dot_is_event;
    if (a->type == N_FIELD && dot_is_event && a->u.field.n == 1 && a->u.field.len[0] == 8 &&
        memcmp(a->u.field.ident[0], "Metadata", 8) == 0)
        return 1;
    if (a->type == N_VAR && a->u.field.len[0] == 1) {
        if (a->u.field.n == 1)
            return 1;
        if (a->u.field.n == 2 && a->u.field.len[1] == 8 &&
            memcmp(a->u.field.ident[1], "Metadata", 8) == 0)
            return 1;
    }
    return 0;
}

static const node *check_pipe(const node *pipe, int dot_is_event, int printed)
{
    for (size_t c = 0; c < pipe->u.pipe.ncmds; c++) {
        const node *cmd = pipe->u.pipe.cmds[c];
        const node *a0 = cmd->u.cmd.args[0];
        if (printed && c + 1 == pipe->u.pipe.ncmds && cmd->u.cmd.n == 1 &&
            is_event_or_meta(a0, dot_is_event))
            return cmd;
        if (a0->type == N_IDENT && (a0->u.ident.fn == F_PRINT || a0->u.ident.fn == F_PRINTF ||
                                    a0->u.ident.fn == F_PRINTLN || a0->u.ident.fn == F_HTML ||
                                    a0->u.ident.fn == F_URLQUERY || a0->u.ident.fn == F_JS))
            for (size_t i = 1; i < cmd->u.cmd.n; i++)
                if (is_event_or_meta(cmd->u.cmd.args[i], dot_is_event))
                    return cmd;
        for (size_t i = 0; i < cmd->u.cmd.n; i++) {
            const node *a = cmd->u.cmd.args[i];
            if (a->type == N_PIPE) {
                const node *bad = check_pipe(a, dot_is_event, 0);
                if (bad)
                    return bad;
            }
        }
    }
    return NULL;
}

static const node *check_tree(const node *n, int dot_is_event)
{
    if (!n)
        return NULL;
    const node *bad = NULL;
    switch (n->type) {
    case N_LIST:
        for (size_t i = 0; i < n->u.list.n && !bad; i++)
            bad = check_tree(n->u.list.items[i], dot_is_event);
        return bad;
    case N_ACTION:
        return check_pipe(n->u.action.pipe, dot_is_event, n->u.action.pipe->u.pipe.ndecl == 0);
    case N_IF:
    case N_WITH:
    case N_RANGE:
        bad = check_pipe(n->u.ctl.pipe, dot_is_event, 0);
        if (!bad)
            bad = check_tree(n->u.ctl.list, n->type == N_IF ? dot_is_event : 0);
        if (!bad)
            bad = check_tree(n->u.ctl.elselist, dot_is_event);
        return bad;
    default:
        return NULL;
    }
}

/* Check every printf with a literal format. */
static int check_printf(parser *p, const node *n)
{
    if (!n)
        return 0;
    switch (n->type) {
    case N_LIST:
        for (size_t i = 0; i < n->u.list.n; i++)
            if (check_printf(p, n->u.list.items[i]))
                return -1;
        return 0;
    case N_ACTION:
        return check_printf(p, n->u.action.pipe);
    case N_IF:
    case N_WITH:
    case N_RANGE:
        return check_printf(p, n->u.ctl.pipe) || check_printf(p, n->u.ctl.list) ||
               check_printf(p, n->u.ctl.elselist);
    case N_PIPE:
        for (size_t c = 0; c < n->u.pipe.ncmds; c++) {
            const node *cmd = n->u.pipe.cmds[c];
            const node *a0 = cmd->u.cmd.args[0];
            if (a0->type == N_IDENT && a0->u.ident.fn == F_PRINTF && cmd->u.cmd.n >= 2 &&
                cmd->u.cmd.args[1]->type == N_STRING) {
                char msg[256];
                const node *f = cmd->u.cmd.args[1];
                if (gofmt_check_format(f->u.text.s, f->u.text.n, msg, sizeof msg)) {
                    if (p->errlen)
                        snprintf(p->err, p->errlen, "template: :%d: %s", cmd->line, msg);
                    return -1;
                }
            }
            for (size_t i = 0; i < cmd->u.cmd.n; i++)
                if (cmd->u.cmd.args[i]->type == N_PIPE && check_printf(p, cmd->u.cmd.args[i]))
                    return -1;
            if (a0->type == N_CHAIN && a0->u.field.inner->type == N_PIPE &&
                check_printf(p, a0->u.field.inner))
                return -1;
        }
        return 0;
    default:
        return 0;
    }
}

/* ------------------------------------------------------------------ entry points */

int gotmpl_parse(const char *src, size_t len, gotmpl **out, char *err, size_t errlen)
{
    parser *p = calloc(1, sizeof *p);
    gotmpl *volatile t = calloc(1, sizeof *t);
    char *volatile copy = malloc(len + 1);
    int rc = GOTMPL_ENOMEM;
    if (!p || !t || !copy)
        goto out;
    if (len)
        memcpy(copy, src, len);
    copy[len] = '\0';
    t->src = copy;
    t->srclen = len;
    p->in = copy;
    p->n = len;
    p->line = p->start_line = 1;
    p->err = err;
    p->errlen = errlen;
    if (errlen)
        err[0] = '\0';
    if (setjmp(p->jb)) {
        rc = p->oom ? GOTMPL_ENOMEM : GOTMPL_ESYNTAX;
        if (p->oom && errlen)
            snprintf(err, errlen, "template: out of memory");
        goto out;
    }
    push_var(p, "$", 1);
    node *root = new_node(p, N_LIST, 0, 1);
    nvec items = {0};
    while (peek(p).typ != I_EOF) {
        node *n = text_or_action(p);
        if (n->type == N_END || n->type == N_ELSE)
            fail(p, n->line, "unexpected %s", n->type == N_END ? "{{end}}" : "{{else}}");
        nvec_push(p, &items, n);
    }
    root->u.list.items = items.v;
    root->u.list.n = items.n;
    const node *bad = check_tree(root, 1);
    if (bad) {
        gobuf b;
        gobuf_init(&b, 0);
        tree_node_string(&b, bad);
        char what[128];
        snprintf(what, sizeof what, "%s", b.p ? b.p : "");
        gobuf_free(&b);
        fail(p, bad->line,
             "unsupported: printing %s (Go would print a memory address; use toJson or fields)",
             what);
    }
    if (check_printf(p, root)) {
        rc = GOTMPL_ESYNTAX;
        goto out;
    }
    t->root = root;
    t->arena = p->arena;
    p->arena = NULL;
    *out = t;
    t = NULL;
    copy = NULL;
    rc = GOTMPL_OK;
out:
    if (p) {
        parena_free(p->arena);
        free(p->items);
        free(p);
    }
    if (t) {
        free(t);
        free(copy);
    }
    return rc;
}

void gotmpl_free(gotmpl *t)
{
    if (!t)
        return;
    parena_free(t->arena);
    free(t->src);
    free(t);
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
