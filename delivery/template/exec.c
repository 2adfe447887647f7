/*
 * exec.c - executing a parsed template against an event, following text/template's
 * exec.go: field chains on the Event struct and on generic JSON maps, variables and
 * scopes, pipelines (the previous value is the last argument), calls of the builtins
 * (funcs.c) with Go's argument checks, if/with/range with else, break and continue, Go's
 * truthiness, the caps (output, intermediate strings, steps, time) and Go's error messages
 * with "template: :LINE:COL: executing ..." locations. Errors unwind with longjmp to
 * gotmpl_execute, which frees everything the execution allocated (output buffer, arena of
 * computed strings, variable and argument stacks).
 */
#include "exec.h"

#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ------------------------------------------------------------------ errors */

void gotmpl__oom(state *s)
{
    s->rc = GOTMPL_ENOMEM;
    if (s->errlen)
        snprintf(s->err, s->errlen, "template: out of memory");
    longjmp(s->jb, 1);
}

void gotmpl__too_big(state *s, const char *what)
{
    s->rc = GOTMPL_ETOOBIG;
    if (s->errlen) {
        if (strcmp(what, "output") == 0)
            snprintf(s->err, s->errlen, "template: output exceeds %zu bytes", s->max_out);
        else
            snprintf(s->err, s->errlen, "template: intermediate values exceed %zu bytes",
                     s->arena.limit);
    }
    longjmp(s->jb, 1);
}

static void location(state *s, const node *n, int *line, size_t *col)
{
    const char *src = s->t->src;
    size_t pos = n->pos;
    *line = 1;
    size_t last_nl = (size_t)-1;
    for (size_t i = 0; i < pos && i < s->t->srclen; i++)
        if (src[i] == '\n') {
            (*line)++;
            last_nl = i;
        }
    *col = last_nl == (size_t)-1 ? pos : pos - (last_nl + 1);
}

__attribute__((format(printf, 2, 3), noreturn)) static void errorf(state *s, const char *fmt, ...);
static void errorf(state *s, const char *fmt, ...)
{
    s->rc = GOTMPL_EEXEC;
    if (s->errlen) {
        char msg[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        if (!s->at) {
            snprintf(s->err, s->errlen, "template: : %s", msg);
        } else {
            int line;
            size_t col;
            location(s, s->at, &line, &col);
            gobuf ctx;
            gobuf_init(&ctx, 4096);
            tree_node_string(&ctx, s->at);
            /* %.20s: at most 20 runes */
            const char *c = ctx.p ? ctx.p : "";
            size_t n = ctx.len, i = 0;
            int k = 0;
            for (; i < n && k < 20; k++) {
                int sz;
                goutf8_decode((const unsigned char *)c + i, n - i, &sz);
                i += (size_t)sz;
            }
            snprintf(s->err, s->errlen, "template: :%d:%zu: executing \"\" at <%.*s%s>: %s", line,
                     col, (int)i, c, i < n ? "..." : "", msg);
            gobuf_free(&ctx);
        }
    }
    longjmp(s->jb, 1);
}

/* %v of a value into a short, arena-owned C string (for error messages). */
const char *gotmpl__vstr(state *s, const gv *v)
{
    gobuf b;
    gobuf_init(&b, 300);
    char e[8];
    gv t = *v;
    if (t.kind == GV_INVALID || t.kind == GV_NIL)
        gobuf_puts(&b, "<nil>");
    else
        gofmt_sprint(&b, &t, 1, e, sizeof e);
    const char *r = goarena_dup(&s->arena, b.p ? b.p : "", b.p ? b.len : 0);
    gobuf_free(&b);
    return r ? r : "?";
}

/* ------------------------------------------------------------------ values */

/* Take the bytes of b as a new string value owned by the arena. */
gv gotmpl__take_string(state *s, gobuf *b)
{
    if (b->err == GOTMPL_ENOMEM) {
        gobuf_free(b);
        gotmpl__oom(s);
    }
    if (b->err == GOTMPL_ETOOBIG) {
        gobuf_free(b);
        gotmpl__too_big(s, "intermediate");
    }
    char *p = goarena_dup(&s->arena, b->p ? b->p : "", b->len);
    size_t n = b->len;
    gobuf_free(b);
    if (!p) {
        if (s->arena.limit && s->arena.used > s->arena.limit)
            gotmpl__too_big(s, "intermediate");
        gotmpl__oom(s);
    }
    return mkstr(p, n);
}

static void scratch(state *s, gobuf *b)
{
    size_t lim = 0;
    if (s->arena.limit)
        lim = s->arena.used < s->arena.limit ? s->arena.limit - s->arena.used : 1;
    gobuf_init(b, lim);
}

static int truth(const gv *v0)
{
    gv v = indirect_iface(*v0);
    switch (v.kind) {
    case GV_INVALID:
    case GV_NIL:
        return 0;
    case GV_BOOL:
        return v.u.b;
    case GV_INT:
    case GV_UINT8:
        return v.u.i != 0;
    case GV_FLOAT:
        return v.u.f != 0;
    case GV_STRING:
    case GV_MAP:
    case GV_SLICE:
        return gv_len(&v) > 0;
    default:
        return 1; /* structs, non-nil pointer */
    }
}

/* ------------------------------------------------------------------ variables */

/* Make room for one more element in a stack of elem-sized items (doubling). */
static void *grow(state *s, void *p, size_t n, size_t *cap, size_t elem)
{
    if (n < *cap)
        return p;
    size_t nc = *cap ? *cap * 2 : 16;
    void *np = realloc(p, nc * elem);
    if (!np)
        gotmpl__oom(s);
    *cap = nc;
    return np;
}

static void push_var(state *s, const char *name, size_t len, gv v)
{
    s->vars = grow(s, s->vars, s->nvars, &s->cvars, sizeof *s->vars);
    s->vars[s->nvars].name = name;
    s->vars[s->nvars].len = len;
    s->vars[s->nvars].v = v;
    s->nvars++;
}

static void set_var(state *s, const char *name, size_t len, gv v)
{
    for (size_t i = s->nvars; i-- > 0;)
        if (s->vars[i].len == len && memcmp(s->vars[i].name, name, len) == 0) {
            s->vars[i].v = v;
            return;
        }
    errorf(s, "undefined variable: %.*s", (int)len, name);
}

static gv var_value(state *s, const char *name, size_t len)
{
    for (size_t i = s->nvars; i-- > 0;)
        if (s->vars[i].len == len && memcmp(s->vars[i].name, name, len) == 0)
            return s->vars[i].v;
    errorf(s, "undefined variable: %.*s", (int)len, name);
    return mk(GV_INVALID);
}

/* ------------------------------------------------------------------ evaluation */

static gv eval_pipeline(state *s, gv dot, const node *pipe);
static gv eval_arg(state *s, gv dot, ptype typ, const node *n);
static gv eval_call(state *s, gv dot, fn_id fn, const char *name, const node *at,
                    const node *const *args, size_t nargs, const gv *final);

/* Go's String() of a node, cut to fit buf (for error messages). */
static void node_text(const node *n, char *buf, size_t size)
{
    gobuf b;
    gobuf_init(&b, 4096);
    tree_node_string(&b, n);
    snprintf(buf, size, "%s", b.p ? b.p : "");
    gobuf_free(&b);
}

static void not_a_function(state *s, const node *const *args, size_t nargs, const gv *final)
{
    if (nargs > 1 || final) {
        char tmp[200];
        node_text(args[0], tmp, sizeof tmp);
        errorf(s, "can't give argument to non-function %s", tmp);
    }
}

static int name_is(const char *a, size_t n, const char *lit)
{
    return strlen(lit) == n && memcmp(a, lit, n) == 0;
}

static gv eval_field(state *s, const char *name, size_t nlen, const node *const *args, size_t nargs,
                     const gv *final, gv recv)
{
    (void)args;
    if (recv.kind == GV_INVALID)
        return mk(GV_INVALID);
    const char *typ = gv_type_name(&recv);
    if (recv.kind == GV_NIL)
        errorf(s, "nil pointer evaluating %s.%.*s", typ, (int)nlen, name);
    int has_args = nargs > 1 || final;
    switch (recv.kind) {
    case GV_EVENT: {
        const gotmpl_event *ev = recv.u.ev;
        gv r = mk(GV_STRING);
        const gostr *f = NULL;
        if (name_is(name, nlen, "Version"))
            f = &ev->version;
        else if (name_is(name, nlen, "Type"))
            f = &ev->type;
        else if (name_is(name, nlen, "Action"))
            f = &ev->action;
        else if (name_is(name, nlen, "Timestamp"))
            f = &ev->timestamp;
        else if (name_is(name, nlen, "Status"))
            f = &ev->status;
        else if (name_is(name, nlen, "Metadata")) {
            r = mk(GV_META);
            r.u.ev = ev;
        } else if (name_is(name, nlen, "Payload")) {
            r = gv_from_json(ev->payload);
        } else {
            break;
        }
        if (has_args)
            errorf(s, "%.*s has arguments but cannot be invoked as function", (int)nlen, name);
        if (f)
            r = mkstr(f->p, f->n);
        return r;
    }
    case GV_META:
        if (name_is(name, nlen, "Actor")) {
            if (has_args)
                errorf(s, "%.*s has arguments but cannot be invoked as function", (int)nlen, name);
            gv r = mk(GV_ACTOR);
            r.u.ev = recv.u.ev;
            return r;
        }
        break;
    case GV_ACTOR:
        for (int i = 0; i < ACT_N; i++)
            if (name_is(name, nlen, gotmpl_actor_fields[i])) {
                if (has_args)
                    errorf(s, "%.*s has arguments but cannot be invoked as function", (int)nlen,
                           name);
                return mkstr(recv.u.ev->actor[i].p, recv.u.ev->actor[i].n);
            }
        break;
    case GV_MAP: {
        if (has_args)
            errorf(s, "%.*s is not a method but has arguments", (int)nlen, name);
        json_t *v = json_object_getn(recv.u.c.j, name, nlen);
        if (!v)
            return mk(GV_INVALID);
        return gv_from_json(v);
    }
    default:
        break;
    }
    errorf(s, "can't evaluate field %.*s in type %s", (int)nlen, name, typ);
    return mk(GV_INVALID);
}

static gv eval_field_chain(state *s, gv recv, const node *n, size_t first, const node *const *args,
                           size_t nargs, const gv *final)
{
    size_t cnt = n->u.field.n;
    for (size_t i = first; i + 1 < cnt; i++)
        recv = eval_field(s, n->u.field.ident[i], n->u.field.len[i], NULL, 0, NULL, recv);
    return eval_field(s, n->u.field.ident[cnt - 1], n->u.field.len[cnt - 1], args, nargs, final,
                      recv);
}

static gv eval_field_node(state *s, gv dot, const node *n, const node *const *args, size_t nargs,
                          const gv *final)
{
    s->at = n;
    return eval_field_chain(s, dot, n, 0, args, nargs, final);
}

static gv eval_chain_node(state *s, gv dot, const node *n, const node *const *args, size_t nargs,
                          const gv *final)
{
    s->at = n;
    if (n->u.field.inner->type == N_NIL) {
        char tmp[200];
        node_text(n, tmp, sizeof tmp);
        errorf(s, "indirection through explicit nil in %s", tmp);
    }
    gv pipe = eval_arg(s, dot, T_ANY, n->u.field.inner);
    return eval_field_chain(s, pipe, n, 0, args, nargs, final);
}

static gv eval_variable_node(state *s, gv dot, const node *n, const node *const *args, size_t nargs,
                             const gv *final)
{
    (void)dot;
    s->at = n;
    gv v = var_value(s, n->u.field.ident[0], n->u.field.len[0]);
    if (n->u.field.n == 1) {
        not_a_function(s, args, nargs, final);
        return v;
    }
    return eval_field_chain(s, v, n, 1, args, nargs, final);
}

static gv ideal_constant(state *s, const node *n)
{
    s->at = n;
    if (n->u.num.is_float) {
        gv v = mk(GV_FLOAT);
        v.u.f = n->u.num.f;
        return v;
    }
    return mkint(n->u.num.i);
}

static gv validate_type(state *s, gv v, ptype typ)
{
    if (v.kind == GV_INVALID) {
        if (typ == T_STRING)
            errorf(s, "invalid value; expected string");
        return v;
    }
    if (typ == T_STRING && v.kind != GV_STRING) {
        const char *tn = (v.iface && v.kind != GV_NIL) ? dyn_type(&v) : gv_type_name(&v);
        errorf(s, "wrong type for value; expected string; got %s", tn);
    }
    if (typ == T_STRING)
        v.iface = 0;
    return v;
}

static gv eval_function(state *s, gv dot, const node *ident, const node *at,
                        const node *const *args, size_t nargs, const gv *final)
{
    s->at = ident;
    return eval_call(s, dot, ident->u.ident.fn, ident->u.ident.name, at, nargs ? args + 1 : NULL,
                     nargs ? nargs - 1 : 0, final);
}

static gv eval_arg(state *s, gv dot, ptype typ, const node *n)
{
    s->at = n;
    const node *self[1] = {n};
    switch (n->type) {
    case N_DOT:
        return validate_type(s, dot, typ);
    case N_NIL:
        if (typ == T_STRING)
            errorf(s, "cannot assign nil to string");
        return mk(GV_INVALID);
    case N_FIELD:
        return validate_type(s, eval_field_node(s, dot, n, self, 1, NULL), typ);
    case N_VAR:
        return validate_type(s, eval_variable_node(s, dot, n, self, 1, NULL), typ);
    case N_PIPE:
        return validate_type(s, eval_pipeline(s, dot, n), typ);
    case N_IDENT:
        return validate_type(s, eval_function(s, dot, n, n, NULL, 0, NULL), typ);
    case N_CHAIN:
        return validate_type(s, eval_chain_node(s, dot, n, self, 1, NULL), typ);
    default:
        break;
    }
    if (typ == T_STRING) {
        if (n->type == N_STRING)
            return mkstr(n->u.text.s, n->u.text.n);
        char tmp[200];
        node_text(n, tmp, sizeof tmp);
        errorf(s, "expected string; found %s", tmp);
    }
    switch (n->type) {
    case N_BOOL:
        return mkbool(n->u.b);
    case N_NUMBER:
        return ideal_constant(s, n);
    case N_STRING:
        return mkstr(n->u.text.s, n->u.text.n);
    default:
        errorf(s, "can't handle argument");
    }
    return mk(GV_INVALID);
}

static size_t push_arg(state *s, gv v)
{
    s->args = grow(s, s->args, s->nargs, &s->cargs, sizeof *s->args);
    s->args[s->nargs] = v;
    return s->nargs++;
}

static gv eval_call(state *s, gv dot, fn_id fn, const char *name, const node *at,
                    const node *const *args, size_t nargs, const gv *final)
{
    const fsig *sg = &gotmpl__sigs[fn];
    size_t num_in = nargs + (final ? 1 : 0);
    if (sg->variadic) {
        if (num_in < (size_t)sg->nfixed)
            errorf(s, "wrong number of args for %s: want at least %d got %zu", name, sg->nfixed,
                   nargs);
    } else if (num_in != (size_t)sg->nfixed) {
        errorf(s, "wrong number of args for %s: want %d got %zu", name, sg->nfixed, num_in);
    }
    if (fn == F_AND || fn == F_OR) {
        gv v = mk(GV_INVALID);
        for (size_t i = 0; i < nargs; i++) {
            v = eval_arg(s, dot, T_VALUE, args[i]);
            if (truth(&v) == (fn == F_OR))
                return v;
        }
        if (final)
            v = *final;
        return v;
    }
    size_t base = s->nargs;
    for (size_t i = 0; i < nargs; i++) {
        ptype t = (int)i < sg->nfixed ? sg->fixed[i] : sg->vtype;
        gv v = eval_arg(s, dot, t, args[i]);
        push_arg(s, v);
    }
    if (final) {
        ptype t = (int)nargs < sg->nfixed ? sg->fixed[nargs] : sg->vtype;
        push_arg(s, validate_type(s, *final, t));
    }
    gv *a = s->args ? s->args + base : NULL;
    size_t n = s->nargs - base;
    const char *msg = NULL;
    gv r = mk(GV_INVALID);
    gobuf b;
    switch (fn) {
    case F_NOT:
        r = mkbool(!truth(&a[0]));
        break;
    case F_LEN: {
        int isnil;
        gv v = gotmpl__go_indirect(a[0], &isnil);
        if (isnil)
            msg = "len of nil pointer";
        else if (v.kind == GV_INVALID)
            msg = "reflect: call of reflect.Value.Type on zero Value";
        else if (v.kind == GV_STRING || v.kind == GV_MAP || v.kind == GV_SLICE)
            r = mkint((int64_t)gv_len(&v));
        else
            msg =
                gotmpl__msg2(s, "len of type ", v.kind == GV_ACTOR ? "audit.Actor" : dyn_type(&v));
        break;
    }
    case F_INDEX:
        r = gotmpl__fn_index(s, a[0], a + 1, n - 1, &msg);
        break;
    case F_SLICE:
        r = gotmpl__fn_slice(s, a[0], a + 1, n - 1, &msg);
        break;
    case F_PRINT:
    case F_PRINTLN:
    case F_PRINTF: {
        char e[200];
        int rc;
        scratch(s, &b);
        if (fn == F_PRINT)
            rc = gofmt_sprint(&b, a, n, e, sizeof e);
        else if (fn == F_PRINTLN)
            rc = gofmt_sprintln(&b, a, n, e, sizeof e);
        else
            rc = gofmt_sprintf(&b, a[0].u.s.p, a[0].u.s.n, a + 1, n - 1, e, sizeof e);
        if (rc == -1) {
            gobuf_free(&b);
            s->nargs = base;
            s->at = at;
            errorf(s, "%s", e);
        }
        r = gotmpl__take_string(s, &b);
        break;
    }
    case F_HTML:
    case F_URLQUERY:
    case F_JS: {
        gobuf tmp;
        scratch(s, &tmp);
        gotmpl__eval_args_string(s, a, n, &tmp, &msg);
        if (msg) {
            gobuf_free(&tmp);
            s->nargs = base;
            s->at = at;
            errorf(s, "%s", msg);
        }
        scratch(s, &b);
        if (fn == F_HTML)
            gotmpl__html_escape(&b, tmp.p ? tmp.p : "", tmp.len);
        else if (fn == F_URLQUERY)
            gotmpl__url_escape(&b, tmp.p ? tmp.p : "", tmp.len);
        else
            gotmpl__js_escape(&b, tmp.p ? tmp.p : "", tmp.len);
        gobuf_free(&tmp);
        r = gotmpl__take_string(s, &b);
        break;
    }
    case F_EQ: {
        int t = gotmpl__fn_eq(s, a[0], a + 1, n - 1, &msg);
        r = mkbool(t == 1);
        break;
    }
    case F_NE: {
        int t = gotmpl__fn_eq(s, a[0], a + 1, 1, &msg);
        r = mkbool(t == 0);
        break;
    }
    case F_LT:
    case F_GE: {
        int t = gotmpl__fn_lt(s, a[0], a[1], &msg);
        r = mkbool(fn == F_LT ? t == 1 : t == 0);
        break;
    }
    case F_LE:
    case F_GT: {
        int t = gotmpl__fn_lt(s, a[0], a[1], &msg);
        if (t == 0)
            t = gotmpl__fn_eq(s, a[0], a + 1, 1, &msg);
        r = mkbool(fn == F_LE ? t == 1 : t == 0);
        break;
    }
    case F_TOJSON: {
        char e[200];
        scratch(s, &b);
        if (gojson__gv(&b, &a[0], e, sizeof e) == -1) {
            gobuf_free(&b);
            msg = gotmpl__msg2(s, e, "");
            break;
        }
        r = gotmpl__take_string(s, &b);
        break;
    }
    default:
        break;
    }
    s->nargs = base;
    if (msg) {
        s->at = at;
        errorf(s, "error calling %s: %s", name, msg);
    }
    return r;
}

static gv eval_command(state *s, gv dot, const node *cmd, const gv *final)
{
    const node *const *args = (const node *const *)cmd->u.cmd.args;
    size_t nargs = cmd->u.cmd.n;
    const node *first = args[0];
    switch (first->type) {
    case N_FIELD:
        return eval_field_node(s, dot, first, args, nargs, final);
    case N_CHAIN:
        return eval_chain_node(s, dot, first, args, nargs, final);
    case N_IDENT:
        return eval_function(s, dot, first, cmd, args, nargs, final);
    case N_PIPE:
        not_a_function(s, args, nargs, final);
        return eval_pipeline(s, dot, first);
    case N_VAR:
        return eval_variable_node(s, dot, first, args, nargs, final);
    default:
        break;
    }
    s->at = first;
    not_a_function(s, args, nargs, final);
    switch (first->type) {
    case N_BOOL:
        return mkbool(first->u.b);
    case N_DOT:
        return dot;
    case N_NIL:
        errorf(s, "nil is not a command");
        break;
    case N_NUMBER:
        return ideal_constant(s, first);
    case N_STRING:
        return mkstr(first->u.text.s, first->u.text.n);
    default:
        break;
    }
    errorf(s, "can't evaluate command");
    return mk(GV_INVALID);
}

static gv eval_pipeline(state *s, gv dot, const node *pipe)
{
    s->at = pipe;
    gv value = mk(GV_INVALID);
    int have = 0;
    for (size_t i = 0; i < pipe->u.pipe.ncmds; i++) {
        value = eval_command(s, dot, pipe->u.pipe.cmds[i], have ? &value : NULL);
        have = 1;
        value = dig(value);
    }
    for (size_t i = 0; i < pipe->u.pipe.ndecl; i++) {
        const node *v = pipe->u.pipe.decl[i];
        if (pipe->u.pipe.is_assign)
            set_var(s, v->u.field.ident[0], v->u.field.len[0], value);
        else
            push_var(s, v->u.field.ident[0], v->u.field.len[0], value);
    }
    return value;
}

/* ------------------------------------------------------------------ walk */

/* Monotonic clock in nanoseconds. */
static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* "50ms", "1.5s", "250us": a duration for the time budget's message. */
static void format_ns(uint64_t ns, char *buf, size_t size)
{
    if (ns % 1000000000u == 0)
        snprintf(buf, size, "%llus", (unsigned long long)(ns / 1000000000u));
    else if (ns % 1000000u == 0)
        snprintf(buf, size, "%llums", (unsigned long long)(ns / 1000000u));
    else if (ns % 1000u == 0)
        snprintf(buf, size, "%lluus", (unsigned long long)(ns / 1000u));
    else
        snprintf(buf, size, "%lluns", (unsigned long long)ns);
}

/* Every node walked and range iteration: the step cap, and every 256 steps the clock. */
static void step(state *s)
{
    ++s->steps;
    if (s->max_ns && (s->steps & 255) == 0 && now_ns() > s->deadline_ns) {
        s->rc = GOTMPL_ETIME;
        if (s->errlen) {
            char d[32];
            format_ns(s->max_ns, d, sizeof d);
            snprintf(s->err, s->errlen, "template: render exceeded %s budget", d);
        }
        longjmp(s->jb, 1);
    }
    if (s->max_steps && s->steps > s->max_steps) {
        s->rc = GOTMPL_ETOOBIG;
        if (s->errlen)
            snprintf(s->err, s->errlen,
                     "template: execution exceeds %llu steps (nodes and range iterations)",
                     (unsigned long long)s->max_steps);
        longjmp(s->jb, 1);
    }
}

static void walk(state *s, gv dot, const node *n);

static void check_out(state *s)
{
    if (s->out.err == GOTMPL_ETOOBIG)
        gotmpl__too_big(s, "output");
    if (s->out.err)
        gotmpl__oom(s);
}

static void walk_range(state *s, gv dot, const node *r)
{
    s->at = r;
    size_t mark0 = s->nvars;
    gv val = eval_pipeline(s, dot, r->u.ctl.pipe);
    int isnil;
    val = gotmpl__go_indirect(val, &isnil);
    size_t mark = s->nvars;
    const node *pipe = r->u.ctl.pipe;
    size_t nd = pipe->u.pipe.ndecl;
    int ran = 0;
    size_t count = 0;
    switch (val.kind) {
    case GV_SLICE:
    case GV_MAP:
        count = gv_len(&val);
        break;
    case GV_INT:
    case GV_UINT8:
        if (nd > 1) {
            errorf(s, "can't use %s to iterate over more than one variable", gotmpl__vstr(s, &val));
        }
        count = val.u.i > 0 ? (size_t)val.u.i : 0;
        break;
    case GV_INVALID:
        break;
    default:
        errorf(s, "range can't iterate over %s", gotmpl__vstr(s, &val));
    }
    gokv *keys = NULL;
    if (val.kind == GV_MAP && count) {
        keys = (gokv *)(void *)goarena_dup(&s->arena, NULL, count * sizeof *keys);
        if (!keys) {
            if (s->arena.limit && s->arena.used > s->arena.limit)
                gotmpl__too_big(s, "intermediate");
            gotmpl__oom(s);
        }
        count = gokv_sorted(val.u.c.j, keys, count);
    }
    for (size_t i = 0; i < count; i++) {
        step(s);
        ran = 1;
        gv index, elem;
        if (val.kind == GV_SLICE) {
            index = mkint((int64_t)i);
            elem = gv_slice_at(&val, i);
        } else if (val.kind == GV_MAP) {
            index = mkstr(keys[i].k, keys[i].n);
            elem = gv_from_json(keys[i].v);
        } else {
            index = mk(GV_INVALID);
            elem = mkint((int64_t)i);
            if (val.kind == GV_UINT8) {
                elem.kind = GV_UINT8;
            }
        }
        if (nd > 0) {
            if (pipe->u.pipe.is_assign) {
                const node *v0 = pipe->u.pipe.decl[0];
                set_var(s, v0->u.field.ident[0], v0->u.field.len[0], nd > 1 ? index : elem);
            } else {
                s->vars[mark - 1].v = elem;
            }
        }
        if (nd > 1) {
            if (pipe->u.pipe.is_assign) {
                const node *v1 = pipe->u.pipe.decl[1];
                set_var(s, v1->u.field.ident[0], v1->u.field.len[0], elem);
            } else {
                s->vars[mark - 2].v = index;
            }
        }
        walk(s, elem, r->u.ctl.list);
        s->nvars = mark;
        if (s->brk == 2) {
            s->brk = 0;
        } else if (s->brk == 1) {
            s->brk = 0;
            break;
        }
    }
    if (!ran && r->u.ctl.elselist)
        walk(s, dot, r->u.ctl.elselist);
    s->nvars = mark0;
}

static void walk(state *s, gv dot, const node *n)
{
    s->at = n;
    step(s);
    switch (n->type) {
    case N_LIST:
        for (size_t i = 0; i < n->u.list.n && !s->brk; i++)
            walk(s, dot, n->u.list.items[i]);
        return;
    case N_TEXT:
        gobuf_put(&s->out, n->u.text.s, n->u.text.n);
        check_out(s);
        return;
    case N_ACTION: {
        gv v = eval_pipeline(s, dot, n->u.action.pipe);
        if (n->u.action.pipe->u.pipe.ndecl == 0) {
            s->at = n;
            char e[200];
            if (gofmt_print_action(&s->out, &v, e, sizeof e) == -1)
                errorf(s, "%s", e);
            check_out(s);
        }
        return;
    }
    case N_IF:
    case N_WITH: {
        size_t mark = s->nvars;
        gv v = eval_pipeline(s, dot, n->u.ctl.pipe);
        if (truth(&v))
            walk(s, n->type == N_WITH ? v : dot, n->u.ctl.list);
        else if (n->u.ctl.elselist)
            walk(s, dot, n->u.ctl.elselist);
        s->nvars = mark;
        return;
    }
    case N_RANGE:
        walk_range(s, dot, n);
        return;
    case N_BREAK:
        s->brk = 1;
        return;
    case N_CONTINUE:
        s->brk = 2;
        return;
    default:
        errorf(s, "unknown node");
    }
}

gotmpl_limits gotmpl_limits_default(size_t max_out)
{
    gotmpl_limits l;
    size_t extra = (size_t)1 << 20;
    l.max_out = max_out ? max_out : GOTMPL_DEFAULT_MAX_OUT;
    l.max_scratch = l.max_out > (SIZE_MAX - extra) / 8 ? SIZE_MAX : l.max_out * 8 + extra;
    l.max_steps = GOTMPL_MAX_STEPS_BASE + 16 * (uint64_t)l.max_out;
    l.max_ns = GOTMPL_DEFAULT_MAX_NS;
    return l;
}

int gotmpl_execute(const gotmpl *t, const gotmpl_event *ev, const gotmpl_limits *lim, char **out,
                   size_t *out_len, char *err, size_t errlen)
{
    gotmpl_limits def;
    if (!lim) {
        def = gotmpl_limits_default(0);
        lim = &def;
    }
    state *s = calloc(1, sizeof *s);
    if (!s) {
        if (errlen)
            snprintf(err, errlen, "template: out of memory");
        return GOTMPL_ENOMEM;
    }
    s->t = t;
    s->ev = ev;
    s->err = err;
    s->errlen = errlen;
    s->max_out = lim->max_out;
    if (errlen)
        err[0] = '\0';
    gobuf_init(&s->out, lim->max_out);
    goarena_init(&s->arena, lim->max_scratch);
    s->max_steps = lim->max_steps;
    s->max_ns = lim->max_ns;
    if (s->max_ns)
        s->deadline_ns = now_ns() + s->max_ns;
    int rc;
    if (setjmp(s->jb)) {
        rc = s->rc ? s->rc : GOTMPL_EEXEC;
        gobuf_free(&s->out);
        goto done;
    }
    gv dot = mk(GV_EVENT);
    dot.u.ev = ev;
    push_var(s, "$", 1, dot);
    walk(s, dot, t->root);
    if (!s->out.p) {
        gobuf_put(&s->out, "", 0);
        s->out.p = malloc(1);
        if (!s->out.p)
            gotmpl__oom(s);
        s->out.p[0] = '\0';
    }
    *out = s->out.p;
    *out_len = s->out.len;
    rc = GOTMPL_OK;
done:
    goarena_free(&s->arena);
    free(s->vars);
    free(s->args);
    free(s);
    return rc;
}

int gotmpl_render(const gotmpl *t, const void *event, size_t event_len, const gotmpl_limits *lim,
                  char **out, size_t *out_len, char *err, size_t errlen)
{
    gotmpl_event *ev = NULL;
    int rc = gotmpl_event_parse(event, event_len, &ev, err, errlen);
    if (rc != GOTMPL_OK)
        return rc;
    char *body = NULL;
    size_t len = 0;
    rc = gotmpl_execute(t, ev, lim, &body, &len, err, errlen);
    gotmpl_event_free(ev);
    if (rc != GOTMPL_OK)
        return rc;
    if (!gojson_valid(body, len)) {
        if (errlen)
            snprintf(err, errlen, "invalid JSON: %.160s%s", body, len > 160 ? "..." : "");
        free(body);
        return GOTMPL_EJSON;
    }
    *out = body;
    *out_len = len;
    return GOTMPL_OK;
}
