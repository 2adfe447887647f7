/*
 * lex.c - the lexer of Go templates, after text/template/parse/lex.go: text, actions with
 * trim markers, comments, delimiters, identifiers, fields, variables, numbers, strings and
 * char constants, keywords; same items and same error messages. Items are queued in the
 * parser state (parser.h) and handed out by gotmpl__lex_next.
 */
#include "parser.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
item *gotmpl__lex_next(parser *p)
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
