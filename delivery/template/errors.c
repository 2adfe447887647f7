/*
 * errors.c - gotmpl_strerror: the text of each gotmpl_err code (gotmpl/gotmpl.h).
 */
#include "gotmpl/gotmpl.h"

const char *gotmpl_strerror(int rc)
{
    switch ((gotmpl_err)rc) {
    case GOTMPL_OK:
        return "ok";
    case GOTMPL_ESYNTAX:
        return "template syntax error or unsupported construct";
    case GOTMPL_ENOMEM:
        return "out of memory";
    case GOTMPL_EEXEC:
        return "template execution error";
    case GOTMPL_ETOOBIG:
        return "template output, intermediate values or steps over their cap";
    case GOTMPL_EEVENT:
        return "event is not a valid audit event";
    case GOTMPL_EJSON:
        return "rendered body is not valid JSON";
    case GOTMPL_ETIME:
        return "template execution over its time budget";
    case GOTMPL_EVALUE:
        return "value cannot be encoded as JSON";
    }
    return "unknown error";
}
