/*
 * tree.h - the parse tree of a Go template (the subset of text/template/parse that the
 * engine supports), shared by parse.c (builds it) and exec.c (walks it). Nodes live in
 * the template's own arena and are immutable after parsing.
 */
#ifndef GOTMPL_TREE_H
#define GOTMPL_TREE_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    N_LIST,
    N_TEXT,
    N_ACTION,
    N_IF,
    N_RANGE,
    N_WITH,
    N_BREAK,
    N_CONTINUE,
    N_PIPE,
    N_CMD,
    N_FIELD,
    N_VAR,
    N_DOT,
    N_NIL,
    N_BOOL,
    N_NUMBER,
    N_STRING,
    N_IDENT,
    N_CHAIN,
    N_END, /* parser only */
    N_ELSE /* parser only */
} ntype;

typedef enum {
    F_AND,
    F_OR,
    F_NOT,
    F_LEN,
    F_INDEX,
    F_SLICE,
    F_PRINT,
    F_PRINTF,
    F_PRINTLN,
    F_HTML,
    F_URLQUERY,
    F_JS,
    F_EQ,
    F_NE,
    F_LT,
    F_LE,
    F_GT,
    F_GE,
    F_TOJSON,
} fn_id;

typedef struct node node;
struct node {
    ntype type;
    size_t pos; /* byte offset in the source */
    int line;
    union {
        struct { /* N_LIST */
            node **items;
            size_t n;
        } list;
        struct { /* N_TEXT, N_STRING (s = value, q = quoted source), N_NUMBER (q = text) */
            const char *s;
            size_t n;
            const char *q;
            size_t qn;
        } text;
        struct { /* N_NUMBER */
            const char *q;
            size_t qn;
            int is_float; /* a float64 constant (text has . e E), else an int */
            int64_t i;
            double f;
        } num;
        int b;   /* N_BOOL */
        struct { /* N_FIELD (names without dots), N_VAR (ident[0] = "$x"), N_CHAIN fields */
            const char **ident;
            size_t *len;
            size_t n;
            node *inner; /* N_CHAIN */
        } field;
        struct { /* N_IDENT */
            const char *name;
            fn_id fn;
        } ident;
        struct {         /* N_PIPE */
            node **decl; /* N_VAR nodes */
            size_t ndecl;
            int is_assign;
            node **cmds;
            size_t ncmds;
        } pipe;
        struct { /* N_CMD */
            node **args;
            size_t n;
        } cmd;
        struct { /* N_ACTION */
            node *pipe;
        } action;
        struct { /* N_IF, N_RANGE, N_WITH */
            node *pipe;
            node *list;
            node *elselist; /* may be NULL */
        } ctl;
    } u;
};

struct gotmpl {
    char *src; /* copy of the source (positions point into it) */
    size_t srclen;
    node *root;
    struct parena *arena;
};

/* Go's Node.String() of n appended to b (used for error contexts). */
struct gobuf;
void tree_node_string(struct gobuf *b, const node *n);

#endif
