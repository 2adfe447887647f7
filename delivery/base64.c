/*
 * delivery/base64.c - the one base64 decoder (see base64.h).
 */
#include "delivery/base64.h"
#include "delivery/error.h"

#include <stdint.h>
#include <stdlib.h>

static int b64val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

int dlv_base64_decode(const char *in, size_t len, unsigned char *out, size_t *out_len)
{
    if (!in && len)
        return DLV_ERR_INVALID;
    size_t n = len, pad = 0;
    while (n > 0 && in[n - 1] == '=' && pad < 2) {
        n--;
        pad++;
    }
    /* with padding the whole must be groups of 4; without it, 1 leftover char is never valid */
    if (n % 4 == 1 || (pad && len % 4 != 0))
        return DLV_ERR_INVALID;
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64val((unsigned char)in[i]);
        if (v < 0)
            return DLV_ERR_INVALID;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (out)
                out[o] = (unsigned char)(acc >> bits);
            o++;
            acc &= (1u << bits) - 1;
        }
    }
    if (out_len)
        *out_len = o;
    return DLV_OK;
}

int dlv_base64_decode_alloc(const char *in, size_t len, unsigned char **out, size_t *out_len)
{
    int rc = dlv_base64_decode(in, len, NULL, NULL);
    if (rc != DLV_OK)
        return rc;
    unsigned char *buf = malloc(DLV_BASE64_DECODED_MAX(len) + 1);
    if (!buf)
        return DLV_ERR_NOMEM;
    size_t n = 0;
    (void)dlv_base64_decode(in, len, buf, &n);
    buf[n] = '\0';
    *out = buf;
    if (out_len)
        *out_len = n;
    return DLV_OK;
}
