/*
 * delivery/error.h - the delivery library's one error convention.
 *
 * Every function of the delivery library that can fail returns a dlv_err: DLV_OK (0) on
 * success, a negative code otherwise, and (where it takes `char *err, size_t errlen`) a
 * message naming what was wrong and where. dlv_strerror() describes a code in a few words.
 * A store failure passed on by the engine is DLV_ERR_STORE, and the store's own code
 * (obx_err) travels with it in dlv_error.store (see engine.h).
 *
 * The numeric values are stable: the old per-module codes (-1 invalid, -2 out of memory)
 * keep their meaning, so `rc < 0` tests stay correct.
 */
#ifndef OUTBOX_DELIVERY_ERROR_H
#define OUTBOX_DELIVERY_ERROR_H

#include <stddef.h>

typedef enum dlv_err {
    DLV_OK = 0,
    DLV_ERR_INVALID = -1,   /* bad argument, syntax or value (the message says which) */
    DLV_ERR_NOMEM = -2,     /* allocation failed */
    DLV_ERR_CRYPTO = -3,    /* OpenSSL failed */
    DLV_ERR_MISMATCH = -4,  /* signature verification: no signature matched */
    DLV_ERR_TIMESTAMP = -5, /* signature verification: timestamp malformed or too old/new */
    DLV_ERR_FORMAT = -6,    /* signature verification: header missing or has no usable token */
    DLV_ERR_TEMPLATE = -7,  /* a template could not be parsed or rendered */
    DLV_ERR_STORE = -8,     /* the store failed (its obx_err is passed along) */
    DLV_ERR_SYSTEM = -9,    /* the system refused (thread creation, libcurl setup) */
} dlv_err;

/* The message buffer size the library's own callers use; any size works. */
#define DLV_ERRMSG_MAX 256

/*
 * An error with its cause, for calls that may fail in the store: code is a dlv_err; when
 * code is DLV_ERR_STORE, store holds the store's obx_err (0 otherwise); msg names what
 * failed (sink, key, file) and never contains a secret.
 */
typedef struct dlv_error {
    int code;  /* dlv_err */
    int store; /* obx_err when code == DLV_ERR_STORE, else 0 */
    char msg[DLV_ERRMSG_MAX];
} dlv_error;

/* A short English description of a dlv_err (static string; "unknown error" otherwise). */
const char *dlv_strerror(int code);

#endif
