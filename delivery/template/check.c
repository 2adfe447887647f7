/*
 * check.c - the checks run on a parsed tree that keep the engine to what it renders exactly
 * as Go does: printing `.` or `.Metadata` (Go prints a pointer address there) and printf
 * formats with verbs outside the supported set are refused at load with "unsupported: ...".
 */
#include "parser.h"

#include <stdio.h>
#include <string.h>

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

const node *gotmpl__check_printing(const node *n, int dot_is_event)
{
    if (!n)
        return NULL;
    const node *bad = NULL;
    switch (n->type) {
    case N_LIST:
        for (size_t i = 0; i < n->u.list.n && !bad; i++)
            bad = gotmpl__check_printing(n->u.list.items[i], dot_is_event);
        return bad;
    case N_ACTION:
        return check_pipe(n->u.action.pipe, dot_is_event, n->u.action.pipe->u.pipe.ndecl == 0);
    case N_IF:
    case N_WITH:
    case N_RANGE:
        bad = check_pipe(n->u.ctl.pipe, dot_is_event, 0);
        if (!bad)
            bad = gotmpl__check_printing(n->u.ctl.list, n->type == N_IF ? dot_is_event : 0);
        if (!bad)
            bad = gotmpl__check_printing(n->u.ctl.elselist, dot_is_event);
        return bad;
    default:
        return NULL;
    }
}

/* Check every printf with a literal format. */
int gotmpl__check_printf(parser *p, const node *n)
{
    if (!n)
        return 0;
    switch (n->type) {
    case N_LIST:
        for (size_t i = 0; i < n->u.list.n; i++)
            if (gotmpl__check_printf(p, n->u.list.items[i]))
                return -1;
        return 0;
    case N_ACTION:
        return gotmpl__check_printf(p, n->u.action.pipe);
    case N_IF:
    case N_WITH:
    case N_RANGE:
        return gotmpl__check_printf(p, n->u.ctl.pipe) || gotmpl__check_printf(p, n->u.ctl.list) ||
               gotmpl__check_printf(p, n->u.ctl.elselist);
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
                if (cmd->u.cmd.args[i]->type == N_PIPE &&
                    gotmpl__check_printf(p, cmd->u.cmd.args[i]))
                    return -1;
            if (a0->type == N_CHAIN && a0->u.field.inner->type == N_PIPE &&
                gotmpl__check_printf(p, a0->u.field.inner))
                return -1;
        }
        return 0;
    default:
        return 0;
    }
}
