/*
 * parse.c - the parser of Go templates, after text/template/parse/parse.go: the grammar
 * (actions, pipelines, commands, operands, control structures, variables and their scopes)
 * over the lexer's items, with Go's messages ("template: :LINE: ..."), the parse arena, and
 * gotmpl_parse / gotmpl_free. Constructs outside the supported subset are refused with
 * "unsupported: ...". Errors unwind with longjmp; everything allocated during a parse lives
 * in one arena that is freed on failure.
 */
#include "parser.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ arena */

static void parena_free(struct parena *a)
{
    while (a) {
        struct parena *n = a->next;
        free(a);
        a = n;
    }
}

void *gotmpl__palloc(parser *p, size_t size)
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

void gotmpl__fail(parser *p, int line, const char *fmt, ...)
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

/* ------------------------------------------------------------------ parser plumbing */

static item next(parser *p)
{
    if (p->peekcount > 0)
        p->peekcount--;
    else
        p->token[0] = *gotmpl__lex_next(p);
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
    p->token[0] = *gotmpl__lex_next(p);
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
                gotmpl__fail(p, t.line, "%s started at :%d", t.msg, p->action_line);
            gotmpl__fail(p, t.line, "%s in action started at :%d", t.msg, p->action_line);
        }
        gotmpl__fail(p, t.line, "%s", t.msg);
    }
    item_string(&t, s, sizeof s);
    gotmpl__fail(p, t.line, "unexpected %s in %s", s, context);
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
        node **nv = gotmpl__palloc(p, nc * sizeof *nv);
        if (v->n)
            memcpy(nv, v->v, v->n * sizeof *nv);
        v->v = nv;
        v->c = nc;
    }
    v->v[v->n++] = x;
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
    nd->u.field.ident = gotmpl__palloc(p, count * sizeof(char *));
    nd->u.field.len = gotmpl__palloc(p, count * sizeof(size_t));
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
    node *v = gotmpl__new_node(p, N_VAR, t.pos, t.line);
    split_chain(p, v, t.val, t.len, 1);
    for (size_t i = 0; i < p->nvars; i++)
        if (strlen(p->vars[i]) == v->u.field.len[0] &&
            memcmp(p->vars[i], t.val, v->u.field.len[0]) == 0)
            return v;
    gotmpl__fail(p, t.line, "undefined variable \"%.*s\"", (int)v->u.field.len[0], t.val);
    return NULL;
}

static void push_var(parser *p, const char *name, size_t len)
{
    if (p->nvars == p->cvars) {
        size_t nc = p->cvars ? p->cvars * 2 : 16;
        const char **nv = gotmpl__palloc(p, nc * sizeof *nv);
        if (p->nvars)
            memcpy(nv, p->vars, p->nvars * sizeof *nv);
        p->vars = nv;
        p->cvars = nc;
    }
    char *s = gotmpl__palloc(p, len + 1);
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
                node *n = gotmpl__new_node(p, N_IDENT, t.pos, t.line);
                n->u.ident.name = functions[i].name;
                n->u.ident.fn = functions[i].fn;
                return n;
            }
        if (t.len == 4 && memcmp(t.val, "call", 4) == 0)
            gotmpl__fail(p, t.line, "unsupported: function \"call\"");
        gotmpl__fail(p, t.line, "function \"%.*s\" not defined", (int)t.len, t.val);
        return NULL;
    }
    case I_DOT:
        return gotmpl__new_node(p, N_DOT, t.pos, t.line);
    case I_NIL:
        return gotmpl__new_node(p, N_NIL, t.pos, t.line);
    case I_VARIABLE:
        return use_var(p, t);
    case I_FIELD:
        return split_chain(p, gotmpl__new_node(p, N_FIELD, t.pos, t.line), t.val, t.len, 0);
    case I_BOOL: {
        node *n = gotmpl__new_node(p, N_BOOL, t.pos, t.line);
        n->u.b = t.len == 4;
        return n;
    }
    case I_CHARCONST:
    case I_COMPLEX:
    case I_NUMBER:
        return gotmpl__number_node(p, t);
    case I_LPAREN:
        return pipeline(p, "parenthesized pipeline", I_RPAREN);
    case I_STRING:
    case I_RAWSTRING:
        return gotmpl__string_node(p, t);
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
                gotmpl__fail(p, f.line, "unsupported: field chain longer than 256");
            fields[nf] = f.val + 1;
            lens[nf++] = f.len - 1;
        }
        switch (nd->type) {
        case N_FIELD:
        case N_VAR: {
            size_t n0 = nd->u.field.n;
            node *c = gotmpl__new_node(p, nd->type, pos, line);
            c->u.field.ident = gotmpl__palloc(p, (n0 + nf) * sizeof(char *));
            c->u.field.len = gotmpl__palloc(p, (n0 + nf) * sizeof(size_t));
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
            gotmpl__fail(p, line, "unexpected . after term %s%s", q, type_word(nd->type));
            return NULL;
        }
        default: {
            node *c = gotmpl__new_node(p, N_CHAIN, pos, line);
            c->u.field.inner = nd;
            c->u.field.ident = gotmpl__palloc(p, nf * sizeof(char *));
            c->u.field.len = gotmpl__palloc(p, nf * sizeof(size_t));
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
    node *cmd = gotmpl__new_node(p, N_CMD, first.pos, first.line);
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
        gotmpl__fail(p, cur_line(p), "empty command");
    cmd->u.cmd.args = args.v;
    cmd->u.cmd.n = args.n;
    return cmd;
}

#define MAX_DEPTH 200

static node *pipeline(parser *p, const char *context, itype end)
{
    item t0 = peek_non_space(p);
    if (++p->depth > MAX_DEPTH)
        gotmpl__fail(p, t0.line, "unsupported: nesting deeper than %d", MAX_DEPTH);
    node *pipe = gotmpl__new_node(p, N_PIPE, t0.pos, t0.line);
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
            node *vn = gotmpl__new_node(p, N_VAR, v.pos, v.line);
            split_chain(p, vn, v.val, v.len, 1);
            nvec_push(p, &decl, vn);
            push_var(p, v.val, v.len);
        } else if (nx.typ == I_CHAR && nx.len == 1 && nx.val[0] == ',') {
            next_non_space(p);
            node *vn = gotmpl__new_node(p, N_VAR, v.pos, v.line);
            split_chain(p, vn, v.val, v.len, 1);
            nvec_push(p, &decl, vn);
            push_var(p, v.val, v.len);
            if (is_range && decl.n < 2) {
                itype pt = peek_non_space(p).typ;
                if (pt == I_VARIABLE || pt == I_RDELIM || pt == I_RPAREN)
                    goto decls;
                gotmpl__fail(p, cur_line(p), "range can only initialize variables");
            }
            gotmpl__fail(p, cur_line(p), "too many declarations in %s", context);
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
                gotmpl__fail(p, t.line, "missing value for %s", context);
            for (size_t i = 1; i < cmds.n; i++) {
                ntype at = cmds.v[i]->u.cmd.args[0]->type;
                if (at == N_BOOL || at == N_DOT || at == N_NIL || at == N_NUMBER || at == N_STRING)
                    gotmpl__fail(p, t.line, "non executable command in pipeline stage %zu", i + 1);
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
        gotmpl__fail(p, cur_line(p), "unsupported: nesting deeper than %d", MAX_DEPTH);
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
            elselist = gotmpl__new_node(p, N_LIST, nextn->pos, nextn->line);
            node **items = gotmpl__palloc(p, sizeof(node *));
            items[0] = if_control(p);
            elselist->u.list.items = items;
            elselist->u.list.n = 1;
        } else if (type == N_WITH && pk == I_WITH) {
            next(p);
            elselist = gotmpl__new_node(p, N_LIST, nextn->pos, nextn->line);
            node **items = gotmpl__palloc(p, sizeof(node *));
            items[0] = with_control(p);
            elselist->u.list.items = items;
            elselist->u.list.n = 1;
        } else {
            elselist = item_list(p, &nextn);
            if (nextn->type != N_END) {
                char s[32];
                snprintf(s, sizeof s, "%s", nextn->type == N_ELSE ? "{{else}}" : "{{end}}");
                gotmpl__fail(p, nextn->line, "expected end; found %s", s);
            }
        }
    }
    p->nvars = saved_vars;
    p->depth--;
    node *n = gotmpl__new_node(p, type, pipe->pos, pipe->line);
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
        gotmpl__fail(p, t.line, "unsupported: {{%.*s}} (named templates are not supported)",
                     (int)t.len, t.val);
        break;
    case I_BREAK:
    case I_CONTINUE: {
        item r = next_non_space(p);
        int brk = t.typ == I_BREAK;
        if (r.typ != I_RDELIM)
            unexpected(p, r, brk ? "{{break}}" : "{{continue}}");
        if (p->range_depth == 0)
            gotmpl__fail(p, t.line, "{{%s}} outside {{range}}", brk ? "break" : "continue");
        return gotmpl__new_node(p, brk ? N_BREAK : N_CONTINUE, t.pos, t.line);
    }
    case I_ELSE: {
        item pk = peek_non_space(p);
        if (pk.typ == I_IF || pk.typ == I_WITH)
            return gotmpl__new_node(p, N_ELSE, pk.pos, pk.line);
        item r = expect(p, I_RDELIM, "else");
        return gotmpl__new_node(p, N_ELSE, r.pos, r.line);
    }
    case I_END: {
        item r = expect(p, I_RDELIM, "end");
        return gotmpl__new_node(p, N_END, r.pos, r.line);
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
    node *a = gotmpl__new_node(p, N_ACTION, tok.pos, tok.line);
    a->u.action.pipe = pipeline(p, "command", I_RDELIM);
    return a;
}

/* textOrAction; returns NULL for a comment (never produced: comments are dropped). */
static node *text_or_action(parser *p)
{
    item t = next_non_space(p);
    switch (t.typ) {
    case I_TEXT: {
        node *n = gotmpl__new_node(p, N_TEXT, t.pos, t.line);
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
    node *list = gotmpl__new_node(p, N_LIST, pk.pos, pk.line);
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
    gotmpl__fail(p, cur_line(p), "unexpected EOF");
    return NULL;
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
    node *root = gotmpl__new_node(p, N_LIST, 0, 1);
    nvec items = {0};
    while (peek(p).typ != I_EOF) {
        node *n = text_or_action(p);
        if (n->type == N_END || n->type == N_ELSE)
            gotmpl__fail(p, n->line, "unexpected %s", n->type == N_END ? "{{end}}" : "{{else}}");
        nvec_push(p, &items, n);
    }
    root->u.list.items = items.v;
    root->u.list.n = items.n;
    const node *bad = gotmpl__check_printing(root, 1);
    if (bad) {
        gobuf b;
        gobuf_init(&b, 0);
        tree_node_string(&b, bad);
        char what[128];
        snprintf(what, sizeof what, "%s", b.p ? b.p : "");
        gobuf_free(&b);
        gotmpl__fail(
            p, bad->line,
            "unsupported: printing %s (Go would print a memory address; use toJson or fields)",
            what);
    }
    if (gotmpl__check_printf(p, root)) {
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
