/*
 * delivery/secret.h - wiping secrets from memory, the one way the project does it.
 *
 * OPENSSL_cleanse, which the compiler cannot optimise away. Every buffer that held a
 * signing secret, an ingest token or key material is wiped before it is freed or goes out
 * of scope. Thread-safe.
 */
#ifndef OUTBOX_DELIVERY_SECRET_H
#define OUTBOX_DELIVERY_SECRET_H

#include <stddef.h>

/* Overwrite n bytes at p with zeros (p may be NULL when n is 0). */
void dlv_secret_wipe(void *p, size_t n);

/* Wipe a NUL-terminated malloc'd string (its strlen bytes) and free it. NULL is fine. */
void dlv_secret_free(char *s);

#endif
