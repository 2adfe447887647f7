/*
 * parser.h - what the lexer (lex.c), the parser (parse.c), the node constructors (node.c) and
 * the subset checks (check.c) share: the lexer's items, the parser state (which includes the
 * lexer's), the parse arena and the entry points between those files. Errors unwind with
 * longjmp to gotmpl_parse. Not a public header.
 */
#ifndef GOTMPL_PARSER_H
#define GOTMPL_PARSER_H

#include <setjmp.h>
#include <stddef.h>

#include "gotmpl-internal.h"
#include "tree.h"

/* the parse arena: blocks that hold every node and string of a template */
struct parena {
    struct parena *next;
    size_t used, size;
    max_align_t data[];
};

/* ---- lexer items ---- */

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

/* Allocate size zeroed bytes in the parse arena; unwinds (oom) when memory is short. */
void *gotmpl__palloc(parser *p, size_t size);
/* Fail the parse with Go's "template: :LINE: ..." message; does not return. */
__attribute__((format(printf, 3, 4), noreturn)) void gotmpl__fail(parser *p, int line,
                                                                  const char *fmt, ...);

/* ---- lex.c ---- */
/* The next item (lexing more of the input as needed); I_EOF or I_ERROR at the end. */
item *gotmpl__lex_next(parser *p);

/* ---- node.c ---- */
node *gotmpl__new_node(parser *p, ntype t, size_t pos, int line);
/* Nodes of string / raw string and number / char constant items (Go's NewString, NewNumber). */
node *gotmpl__string_node(parser *p, item t);
node *gotmpl__number_node(parser *p, item t);

/* ---- check.c ---- */
/* The first node that prints the event or its metadata (Go would print a pointer), or NULL. */
const node *gotmpl__check_printing(const node *n, int dot_is_event);
/* Check every printf with a literal format: 0, or -1 with the message in p->err. */
int gotmpl__check_printf(parser *p, const node *n);

#endif
