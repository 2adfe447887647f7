/*
 * exec.h - what the executor (exec.c) and the builtin functions (funcs.c) share: the
 * execution state, the small value constructors, and the error exits (which unwind with
 * longjmp to gotmpl_execute). Not a public header.
 */
#ifndef GOTMPL_EXEC_H
#define GOTMPL_EXEC_H

#include <setjmp.h>
#include <stdint.h>
#include <string.h>

#include "gotmpl-internal.h"
#include "tree.h"

typedef struct var {
    const char *name;
    size_t len;
    gv v;
} var;

typedef struct state {
    const gotmpl *t;
    const gotmpl_event *ev;
    gobuf out;
    goarena arena;
    size_t max_out;
    var *vars;
    size_t nvars, cvars;
    gv *args;
    size_t nargs, cargs;
    const node *at;
    int brk;                      /* 0, 1 = break, 2 = continue */
    uint64_t steps, max_steps;    /* nodes walked and range iterations, and the budget */
    uint64_t max_ns, deadline_ns; /* time budget (0 = none) and when it runs out */
    jmp_buf jb;
    int rc;
    char *err;
    size_t errlen;
} state;

typedef enum { T_VALUE, T_ANY, T_STRING } ptype;

/* ---- values ---- */

static inline gv mk(gv_kind k)
{
    gv v;
    memset(&v, 0, sizeof v);
    v.kind = (uint8_t)k;
    return v;
}

static inline gv mkbool(int b)
{
    gv v = mk(GV_BOOL);
    v.u.b = b != 0;
    return v;
}

static inline gv mkint(int64_t i)
{
    gv v = mk(GV_INT);
    v.u.i = i;
    return v;
}

static inline gv mkstr(const char *p, size_t n)
{
    gv v = mk(GV_STRING);
    v.u.s.p = p;
    v.u.s.n = n;
    return v;
}
/* dig down one level: reflect.ValueOf(v.Interface()) */
static inline gv dig(gv v)
{
    if (v.iface) {
        v.iface = 0;
        if (v.kind == GV_NIL)
            v.kind = GV_INVALID;
    }
    return v;
}

static inline gv indirect_iface(gv v)
{
    return dig(v);
}

/* dynamic type name (ignores the static interface type) */
static inline const char *dyn_type(const gv *v)
{
    gv t = *v;
    t.iface = 0;
    return gv_type_name(&t);
}

/* ---- exits and helpers (exec.c) ---- */

/* Out of memory / a cap exceeded ("output" or "intermediate"): set s->rc and unwind. */
__attribute__((noreturn)) void gotmpl__oom(state *s);
__attribute__((noreturn)) void gotmpl__too_big(state *s, const char *what);
/* Take the bytes of b (freed) as a new string value owned by the arena; unwinds on error. */
gv gotmpl__take_string(state *s, gobuf *b);
/* %v of a value into a short, arena-owned C string (for error messages). */
const char *gotmpl__vstr(state *s, const gv *v);

/* A builtin's signature: fixed argument types, then variadic ones of vtype. */
typedef struct fsig {
    int nfixed;
    ptype fixed[2];
    int variadic;
    ptype vtype;
} fsig;
extern const fsig gotmpl__sigs[]; /* indexed by fn_id */

/* ---- builtins (funcs.c) ----
 * Each returns its result; a Go error comes back as *msg (arena-owned) for the caller to
 * report at the call's position, resource exhaustion unwinds. */
int gotmpl__fn_eq(state *s, gv a1, const gv *rest, size_t n, const char **msg);
int gotmpl__fn_lt(state *s, gv a1, gv a2, const char **msg);
gv gotmpl__fn_index(state *s, gv item, const gv *idx, size_t n, const char **msg);
gv gotmpl__fn_slice(state *s, gv item, const gv *idx, size_t n, const char **msg);
void gotmpl__eval_args_string(state *s, const gv *a, size_t n, gobuf *out, const char **msg);
void gotmpl__html_escape(gobuf *o, const char *p, size_t n);
void gotmpl__url_escape(gobuf *o, const char *p, size_t n);
void gotmpl__js_escape(gobuf *o, const char *p, size_t n);
/* a + b as one arena-owned string */
const char *gotmpl__msg2(state *s, const char *a, const char *b);
/* Go's indirect(): through interfaces and pointers; *isnil when a nil one is met. */
gv gotmpl__go_indirect(gv v, int *isnil);

#endif
