/*
 * delivery/secret.c - wiping secrets (see secret.h).
 */
#include "delivery/secret.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

void dlv_secret_wipe(void *p, size_t n)
{
    if (p && n)
        OPENSSL_cleanse(p, n);
}

void dlv_secret_free(char *s)
{
    if (!s)
        return;
    dlv_secret_wipe(s, strlen(s));
    free(s);
}
