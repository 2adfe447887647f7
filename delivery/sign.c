/*
 * delivery/sign.c - Flipt and Standard Webhooks HMAC-SHA256 signatures and their
 * constant-time verification (see sign.h), on OpenSSL 3 EVP_MAC.
 */
#include "delivery/sign.h"
#include "delivery/base64.h"
#include "delivery/secret.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#define MAC_LEN 32

static EVP_MAC *hmac_alg;
static pthread_once_t hmac_once = PTHREAD_ONCE_INIT;

static void hmac_fetch(void)
{
    hmac_alg = EVP_MAC_fetch(NULL, "HMAC", NULL);
}

struct part {
    const void *p;
    size_t n;
};

/* A keyed HMAC-SHA256 context: the key is set once (EVP_MAC_init with it), each MAC after
 * that re-initializes with the same key (EVP_MAC_init without one), allocating nothing. */
struct dlv_signer {
    EVP_MAC_CTX *ctx;
};

void dlv_signer_free(dlv_signer *s)
{
    if (!s)
        return;
    EVP_MAC_CTX_free(s->ctx); /* OpenSSL clears the key material it holds */
    free(s);
}

/* A signer keyed with key[0..klen). DLV_OK, DLV_ERR_NOMEM or DLV_ERR_CRYPTO. */
static int signer_new(const void *key, size_t klen, dlv_signer **out)
{
    static const unsigned char empty_key[1] = {0};
    char digest[] = "SHA256";
    OSSL_PARAM params[2];
    *out = NULL;
    (void)pthread_once(&hmac_once, hmac_fetch);
    if (!hmac_alg)
        return DLV_ERR_CRYPTO;
    dlv_signer *s = calloc(1, sizeof *s);
    if (!s)
        return DLV_ERR_NOMEM;
    int rc = DLV_ERR_CRYPTO;
    if (!(s->ctx = EVP_MAC_CTX_new(hmac_alg)))
        goto out;
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0);
    params[1] = OSSL_PARAM_construct_end();
    /* OpenSSL refuses a NULL key; an empty key is the same HMAC as a zero-length one. */
    if (!EVP_MAC_init(s->ctx, klen ? key : empty_key, klen, params))
        goto out;
    *out = s;
    s = NULL;
    rc = DLV_OK;
out:
    dlv_signer_free(s);
    return rc;
}

/* HMAC-SHA256 under s's key over the concatenation of parts. DLV_OK or DLV_ERR_CRYPTO. */
static int signer_mac(dlv_signer *s, const struct part *parts, size_t nparts,
                      unsigned char mac[MAC_LEN])
{
    size_t outl = 0;
    if (!EVP_MAC_init(s->ctx, NULL, 0, NULL))
        return DLV_ERR_CRYPTO;
    for (size_t i = 0; i < nparts; i++)
        if (parts[i].n && !EVP_MAC_update(s->ctx, parts[i].p, parts[i].n))
            return DLV_ERR_CRYPTO;
    if (!EVP_MAC_final(s->ctx, mac, &outl, MAC_LEN) || outl != MAC_LEN)
        return DLV_ERR_CRYPTO;
    return DLV_OK;
}

/* HMAC-SHA256 over the concatenation of parts, with a key used once. 0 or DLV_ERR_*. */
static int hmac_parts(const void *key, size_t klen, const struct part *parts, size_t nparts,
                      unsigned char mac[MAC_LEN])
{
    dlv_signer *s;
    int rc = signer_new(key, klen, &s);
    if (rc == DLV_OK)
        rc = signer_mac(s, parts, nparts, mac);
    dlv_signer_free(s);
    return rc == DLV_ERR_NOMEM ? DLV_ERR_CRYPTO : rc;
}

static void to_hex(const unsigned char *in, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[in[i] >> 4];
        out[2 * i + 1] = hex[in[i] & 15];
    }
    out[2 * n] = '\0';
}

/* The Flipt signature from a MAC computed with result rc: its hex into out; the MAC wiped. */
static int flipt_hex(int rc, unsigned char mac[MAC_LEN], char out[DLV_FLIPT_SIG_HEX_LEN + 1])
{
    if (rc == DLV_OK)
        to_hex(mac, MAC_LEN, out);
    dlv_secret_wipe(mac, MAC_LEN);
    return rc;
}

int dlv_sign_flipt(const void *secret, size_t secret_len, const void *body, size_t body_len,
                   char out[DLV_FLIPT_SIG_HEX_LEN + 1])
{
    if ((!secret && secret_len) || (!body && body_len) || !out)
        return DLV_ERR_INVALID;
    unsigned char mac[MAC_LEN];
    struct part p = {body, body_len};
    return flipt_hex(hmac_parts(secret, secret_len, &p, 1, mac), mac, out);
}

int dlv_signer_flipt(dlv_signer *s, const void *body, size_t body_len,
                     char out[DLV_FLIPT_SIG_HEX_LEN + 1])
{
    if (!s || (!body && body_len) || !out)
        return DLV_ERR_INVALID;
    unsigned char mac[MAC_LEN];
    struct part p = {body, body_len};
    return flipt_hex(signer_mac(s, &p, 1, mac), mac, out);
}

int dlv_standard_key(const char *secret, unsigned char *key, size_t *key_len)
{
    if (!secret || !key || !key_len)
        return DLV_ERR_INVALID;
    size_t n = strlen(secret);
    if (strncmp(secret, "whsec_", 6) == 0)
        return dlv_base64_decode(secret + 6, n - 6, key, key_len) == DLV_OK ? DLV_OK
                                                                            : DLV_ERR_INVALID;
    memcpy(key, secret, n);
    *key_len = n;
    return DLV_OK;
}

/* A signer keyed with the Standard Webhooks key of `secret` (dlv_standard_key). */
static int standard_signer(const char *secret, dlv_signer **out)
{
    size_t n = strlen(secret);
    unsigned char stackkey[128];
    unsigned char *key = n <= sizeof stackkey ? stackkey : malloc(n);
    size_t klen = 0;
    *out = NULL;
    if (!key)
        return DLV_ERR_NOMEM;
    int rc = dlv_standard_key(secret, key, &klen);
    if (rc == DLV_OK)
        rc = signer_new(key, klen, out);
    dlv_secret_wipe(key, n);
    if (key != stackkey)
        free(key);
    return rc;
}

/* The raw MAC of id.timestamp.body. */
static int standard_mac(dlv_signer *s, const char *msg_id, const char *ts, const void *body,
                        size_t body_len, unsigned char mac[MAC_LEN])
{
    struct part parts[5] = {
        {msg_id, strlen(msg_id)}, {".", 1}, {ts, strlen(ts)}, {".", 1}, {body, body_len}};
    return signer_mac(s, parts, 5, mac);
}

/* The token "v1,<base64 MAC>" into out (DLV_STANDARD_TOKEN_LEN + 1 bytes). */
static int standard_token(dlv_signer *s, const char *msg_id, int64_t timestamp, const void *body,
                          size_t body_len, char *out)
{
    unsigned char mac[MAC_LEN];
    char ts[24];
    (void)snprintf(ts, sizeof ts, "%" PRId64, timestamp);
    int rc = standard_mac(s, msg_id, ts, body, body_len, mac);
    if (rc == DLV_OK) {
        memcpy(out, "v1,", 3);
        (void)EVP_EncodeBlock((unsigned char *)out + 3, mac, MAC_LEN);
    }
    dlv_secret_wipe(mac, sizeof mac);
    return rc;
}

int dlv_signer_new(const char *secret, int standard, dlv_signer **out)
{
    if (!out)
        return DLV_ERR_INVALID;
    *out = NULL;
    if (!secret)
        return DLV_ERR_INVALID;
    return standard ? standard_signer(secret, out) : signer_new(secret, strlen(secret), out);
}

int dlv_signer_standard(dlv_signer *s, const char *msg_id, int64_t timestamp, const void *body,
                        size_t body_len, char *out, size_t outlen)
{
    if (!s || !msg_id || (!body && body_len) || !out || outlen < DLV_STANDARD_TOKEN_LEN + 1)
        return DLV_ERR_INVALID;
    return standard_token(s, msg_id, timestamp, body, body_len, out);
}

int dlv_sign_standard(const char *secret, const char *msg_id, int64_t timestamp, const void *body,
                      size_t body_len, char *out, size_t outlen)
{
    if (!secret || !msg_id || (!body && body_len) || !out || outlen < DLV_STANDARD_TOKEN_LEN + 1)
        return DLV_ERR_INVALID;
    dlv_signer *s;
    int rc = standard_signer(secret, &s);
    if (rc == DLV_OK)
        rc = standard_token(s, msg_id, timestamp, body, body_len, out);
    dlv_signer_free(s);
    return rc;
}

int dlv_sign_standard_header(const char *const *secrets, size_t n_secrets, const char *msg_id,
                             int64_t timestamp, const void *body, size_t body_len,
                             char **ret_header)
{
    if (!secrets || n_secrets == 0 || !ret_header)
        return DLV_ERR_INVALID;
    char *h = malloc(n_secrets * (DLV_STANDARD_TOKEN_LEN + 1));
    if (!h)
        return DLV_ERR_NOMEM;
    size_t off = 0;
    for (size_t i = 0; i < n_secrets; i++) {
        if (i)
            h[off++] = ' ';
        int rc = dlv_sign_standard(secrets[i], msg_id, timestamp, body, body_len, h + off,
                                   DLV_STANDARD_TOKEN_LEN + 1);
        if (rc != DLV_OK) {
            free(h);
            return rc;
        }
        off += DLV_STANDARD_TOKEN_LEN;
    }
    h[off] = '\0';
    *ret_header = h;
    return DLV_OK;
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int dlv_verify_flipt(const char *const *secrets, size_t n_secrets, const void *body,
                     size_t body_len, const char *header)
{
    unsigned char want[MAC_LEN], mac[MAC_LEN];
    if (!header)
        return DLV_ERR_FORMAT;
    while (*header == ' ' || *header == '\t')
        header++;
    size_t n = strlen(header);
    while (n > 0 && (header[n - 1] == ' ' || header[n - 1] == '\t'))
        n--;
    if (n != 2 * MAC_LEN)
        return DLV_ERR_FORMAT;
    for (size_t i = 0; i < MAC_LEN; i++) {
        int hi = hexval((unsigned char)header[2 * i]),
            lo = hexval((unsigned char)header[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return DLV_ERR_FORMAT;
        want[i] = (unsigned char)(hi << 4 | lo);
    }
    if (!secrets || n_secrets == 0)
        return DLV_ERR_INVALID;
    int rc = DLV_ERR_MISMATCH;
    for (size_t i = 0; i < n_secrets; i++) {
        struct part p = {body, body_len};
        if (!secrets[i]) {
            rc = DLV_ERR_INVALID;
            break;
        }
        if (hmac_parts(secrets[i], strlen(secrets[i]), &p, 1, mac) != DLV_OK) {
            rc = DLV_ERR_CRYPTO;
            break;
        }
        if (CRYPTO_memcmp(mac, want, MAC_LEN) == 0) {
            rc = DLV_OK;
            break;
        }
    }
    dlv_secret_wipe(mac, sizeof mac);
    return rc;
}

int dlv_verify_standard(const char *const *secrets, size_t n_secrets, const char *msg_id,
                        const char *timestamp, const void *body, size_t body_len,
                        const char *sig_header, int64_t now_s, int64_t tolerance_s)
{
    unsigned char mac[MAC_LEN];
    char b64[48];
    if (!secrets || n_secrets == 0)
        return DLV_ERR_INVALID;
    if (!msg_id || !*msg_id || !timestamp || !sig_header)
        return DLV_ERR_FORMAT;
    /* timestamp: decimal digits only, no sign, bounded length */
    size_t tl = strlen(timestamp);
    if (tl == 0 || tl > 18)
        return DLV_ERR_TIMESTAMP;
    int64_t ts = 0;
    for (size_t i = 0; i < tl; i++) {
        if (timestamp[i] < '0' || timestamp[i] > '9')
            return DLV_ERR_TIMESTAMP;
        ts = ts * 10 + (timestamp[i] - '0');
    }
    if (tolerance_s >= 0 && (ts < now_s - tolerance_s || ts > now_s + tolerance_s))
        return DLV_ERR_TIMESTAMP;

    int rc = DLV_ERR_FORMAT; /* until a v1 token is seen */
    for (size_t s = 0; s < n_secrets && rc != DLV_OK; s++) {
        if (!secrets[s])
            return DLV_ERR_INVALID;
        dlv_signer *sg;
        int mrc = standard_signer(secrets[s], &sg);
        if (mrc == DLV_OK)
            mrc = standard_mac(sg, msg_id, timestamp, body, body_len, mac);
        dlv_signer_free(sg);
        if (mrc != DLV_OK) {
            rc = mrc;
            break;
        }
        (void)EVP_EncodeBlock((unsigned char *)b64, mac, MAC_LEN);
        const char *p = sig_header;
        while (*p) {
            while (*p == ' ')
                p++;
            const char *tok = p;
            while (*p && *p != ' ')
                p++;
            size_t len = (size_t)(p - tok);
            if (len < 3 || memcmp(tok, "v1,", 3) != 0)
                continue;
            if (rc == DLV_ERR_FORMAT)
                rc = DLV_ERR_MISMATCH;
            if (dlv_ct_equal(tok + 3, len - 3, b64, 44)) {
                rc = DLV_OK;
                break;
            }
        }
    }
    dlv_secret_wipe(mac, sizeof mac);
    dlv_secret_wipe(b64, sizeof b64);
    return rc;
}

int dlv_ct_equal(const void *a, size_t alen, const void *b, size_t blen)
{
    if (alen != blen)
        return 0;
    if (alen == 0)
        return 1;
    if (!a || !b)
        return 0;
    return CRYPTO_memcmp(a, b, alen) == 0;
}

int dlv_ct_streq(const char *a, const char *b)
{
    if (!a || !b)
        return 0;
    /* Compare over the longer length so the time does not reveal a common prefix; the
     * lengths themselves are not secret-dependent for fixed-format tokens. */
    size_t la = strlen(a), lb = strlen(b);
    size_t n = la > lb ? la : lb;
    unsigned char diff = (unsigned char)(la != lb);
    for (size_t i = 0; i < n; i++) {
        unsigned char ca = i < la ? (unsigned char)a[i] : 0;
        unsigned char cb = i < lb ? (unsigned char)b[i] : 0;
        diff |= (unsigned char)(ca ^ cb);
    }
    return diff == 0;
}

int dlv_signing_secret_check(const char *secret, int standard, char *err, size_t errlen)
{
    const char *why = NULL;
    if (!secret || !*secret)
        why = "the secret is empty";
    else if (standard && strncmp(secret, "whsec_", 6) == 0 &&
             dlv_base64_decode(secret + 6, strlen(secret) - 6, NULL, NULL) != DLV_OK)
        why = "the secret starts with whsec_ but the rest is not valid base64";
    if (!why)
        return DLV_OK;
    if (err && errlen)
        (void)snprintf(err, errlen, "%s", why);
    return DLV_ERR_INVALID;
}
