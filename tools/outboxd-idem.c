/*
 * outboxd-idem.c - the ingest's idempotency keys (see outboxd-idem.h).
 */
#include "outboxd-idem.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int oid_check(const char *header, char *err, size_t cap)
{
    obx_error e = {0};
    if (obx_idem_key_check(header, &e) == OBX_OK)
        return 0;
    snprintf(err, cap, "%s header: %s", OID_HEADER, e.msg);
    return -1;
}

int oid_prepare(oid_key *k, const char *header, oev_ctype ct, const char *body, size_t len,
                const int *routed, size_t n, int64_t window_ms)
{
    memset(k, 0, sizeof *k);
    size_t note_len = 4 + (n + 7) / 8;
    k->key = strdup(header);
    k->note = calloc(1, note_len);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char tag = (unsigned char)ct;
    unsigned hl = 0;
    int ok = k->key && k->note && md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) &&
             EVP_DigestUpdate(md, &tag, 1) && EVP_DigestUpdate(md, body, len) &&
             EVP_DigestFinal_ex(md, k->idem.hash, &hl) && hl == OBX_IDEM_HASH_LEN;
    EVP_MD_CTX_free(md);
    if (!ok) {
        oid_clear(k);
        return -1;
    }
    k->note[0] = (unsigned char)(n >> 24);
    k->note[1] = (unsigned char)(n >> 16);
    k->note[2] = (unsigned char)(n >> 8);
    k->note[3] = (unsigned char)n;
    for (size_t i = 0; i < n; i++)
        if (routed[i])
            k->note[4 + i / 8] |= (unsigned char)(1u << (i % 8));
    k->idem.key = k->key;
    k->idem.expires_ms = obx_now_ms() + window_ms;
    k->idem.note = k->note;
    k->idem.note_len = note_len;
    return 0;
}

int oid_routed(const obx_idem_result *res, size_t n, int *routed)
{
    const unsigned char *p = res->note;
    if (res->note_len != 4 + (n + 7) / 8 ||
        (((size_t)p[0] << 24) | ((size_t)p[1] << 16) | ((size_t)p[2] << 8) | p[3]) != n)
        return -1;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        routed[i] = (p[4 + i / 8] >> (i % 8)) & 1;
        k += (size_t)routed[i];
    }
    return k == res->n_ids ? 0 : -1;
}

void oid_clear(oid_key *k)
{
    free(k->key);
    free(k->note);
    memset(k, 0, sizeof *k);
}
