/*
 * delivery/error.c - descriptions of the delivery library's error codes (see error.h).
 */
#include "delivery/error.h"

const char *dlv_strerror(int code)
{
    switch ((dlv_err)code) {
    case DLV_OK:
        return "ok";
    case DLV_ERR_INVALID:
        return "invalid argument or value";
    case DLV_ERR_NOMEM:
        return "out of memory";
    case DLV_ERR_CRYPTO:
        return "cryptographic library failure";
    case DLV_ERR_MISMATCH:
        return "signature does not match";
    case DLV_ERR_TIMESTAMP:
        return "webhook-timestamp missing, malformed or outside the tolerance";
    case DLV_ERR_FORMAT:
        return "signature header missing or malformed";
    case DLV_ERR_TEMPLATE:
        return "template error";
    case DLV_ERR_STORE:
        return "store error";
    case DLV_ERR_SYSTEM:
        return "system error";
    }
    return "unknown error";
}
