/*
 * delivery/base64.h - the one base64 decoder of the project (RFC 4648 standard alphabet).
 *
 * Used for Standard Webhooks secrets ("whsec_<base64>"), for checking them in the config,
 * and for outboxctl's "body_base64" export field. Padding ('=') is optional, as Standard
 * Webhooks secrets are often written without it; whitespace and the URL-safe alphabet are
 * refused; a length that leaves 1 character in the last group is refused. Thread-safe,
 * no state.
 */
#ifndef OUTBOX_DELIVERY_BASE64_H
#define OUTBOX_DELIVERY_BASE64_H

#include <stddef.h>

/* Bytes a buffer needs to hold the decoding of `len` characters (an upper bound). */
#define DLV_BASE64_DECODED_MAX(len) (((len) + 3) / 4 * 3)

/*
 * Decode in[0..len).
 * @param[out] out      at least DLV_BASE64_DECODED_MAX(len) bytes (may be NULL to only
 *                      validate); on failure its contents are unspecified (the caller
 *                      wipes it when it held a secret).
 * @param[out] out_len  bytes decoded (may be NULL); untouched on failure.
 * @return DLV_OK, or DLV_ERR_INVALID (a character outside the alphabet, padding in the
 *         middle, more than two '=', or a truncated last group).
 */
int dlv_base64_decode(const char *in, size_t len, unsigned char *out, size_t *out_len);

/*
 * Decode into a new buffer (malloc'd, caller frees; one spare byte, NUL-terminated).
 * @return DLV_OK, DLV_ERR_INVALID or DLV_ERR_NOMEM; *out set only on success.
 */
int dlv_base64_decode_alloc(const char *in, size_t len, unsigned char **out, size_t *out_len);

#endif
