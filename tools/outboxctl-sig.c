/*
 * outboxctl-sig.c - Flipt and Standard Webhooks signatures for outboxctl's sign and
 * listen commands (see outboxctl-sig.h), on OpenSSL's HMAC.
 */
#include "outboxctl-sig.h"

#include <ctype.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>

#include "outboxctl-out.h"

/* HMAC-SHA256 over the concatenation of up to three parts. */
static int hmac3(const void *key, size_t klen, const void *p1, size_t l1, const void *p2, size_t l2,
                 const void *p3, size_t l3, unsigned char mac[32])
{
    int ok = 0;
    EVP_MAC *m = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = m ? EVP_MAC_CTX_new(m) : NULL;
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", (char *)"SHA256", 0),
                           OSSL_PARAM_construct_end()};
    size_t outl = 0;
    static const unsigned char empty[1] = {0};
    if (ctx && EVP_MAC_init(ctx, klen ? key : empty, klen, params) && EVP_MAC_update(ctx, p1, l1) &&
        (!l2 || EVP_MAC_update(ctx, p2, l2)) && (!l3 || EVP_MAC_update(ctx, p3, l3)) &&
        EVP_MAC_final(ctx, mac, &outl, 32) && outl == 32)
        ok = 1;
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(m);
    return ok ? 0 : -1;
}

int ctl_sig_flipt(const char *secret, const void *body, size_t len, char out[65])
{
    unsigned char mac[32];
    if (hmac3(secret, strlen(secret), body, len, NULL, 0, NULL, 0, mac))
        return -1;
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        out[2 * i] = hex[mac[i] >> 4];
        out[2 * i + 1] = hex[mac[i] & 15];
    }
    out[64] = '\0';
    return 0;
}

int ctl_sig_standard(const char *secret, const char *id, const char *timestamp, const void *body,
                     size_t len, char *out, size_t n)
{
    unsigned char *key = NULL;
    size_t klen = strlen(secret);
    const void *k = secret;
    if (strncmp(secret, "whsec_", 6) == 0) {
        key = ctl_base64_decode(secret + 6, klen - 6, &klen);
        if (!key)
            return -1;
        k = key;
    }
    /* message: id "." timestamp "." body */
    size_t il = strlen(id), tl = strlen(timestamp);
    char *prefix = malloc(il + tl + 3);
    unsigned char mac[32];
    int rc = -1;
    if (!prefix)
        goto out;
    memcpy(prefix, id, il);
    prefix[il] = '.';
    memcpy(prefix + il + 1, timestamp, tl);
    prefix[il + 1 + tl] = '.';
    if (hmac3(k, klen, prefix, il + tl + 2, body, len, NULL, 0, mac))
        goto out;
    char *b64 = ctl_base64_encode(mac, 32);
    if (!b64)
        goto out;
    if ((size_t)snprintf(out, n, "v1,%s", b64) < n)
        rc = 0;
    free(b64);
out:
    free(prefix);
    free(key);
    return rc;
}

int ctl_sig_flipt_verify(const char *secret, const void *body, size_t len, const char *header)
{
    char want[65], got[65];
    if (!header || ctl_sig_flipt(secret, body, len, want))
        return 0;
    while (*header == ' ')
        header++;
    size_t i = 0;
    for (; header[i] && header[i] != ' ' && i < 64; i++)
        got[i] = (char)tolower((unsigned char)header[i]);
    got[i] = '\0';
    return i == 64 && (header[i] == '\0' || header[i] == ' ') && CRYPTO_memcmp(want, got, 64) == 0;
}

int ctl_sig_standard_verify(const char *secret, const char *id, const char *timestamp,
                            const void *body, size_t len, const char *header)
{
    char want[128];
    if (!header || !id || !timestamp ||
        ctl_sig_standard(secret, id, timestamp, body, len, want, sizeof want))
        return 0;
    size_t wl = strlen(want);
    const char *p = header;
    int match = 0;
    while (*p) {
        while (*p == ' ')
            p++;
        size_t tl = strcspn(p, " ");
        if (tl == wl && CRYPTO_memcmp(p, want, wl) == 0)
            match = 1;
        p += tl;
    }
    return match;
}
