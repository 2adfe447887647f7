/*
 * test-tls.h - a throwaway self-signed certificate for TLS tests on 127.0.0.1
 * (OpenSSL): EC P-256 key, CN and subjectAltName IP 127.0.0.1 and DNS localhost, valid
 * for one day. Serve it with trx_options.tls_cert_pem/tls_key_pem and trust it through a
 * CA file holding the same certificate.
 */
#ifndef OUTBOX_TEST_TLS_H
#define OUTBOX_TEST_TLS_H

/*
 * Make a certificate and key as PEM text; both malloc'd, freed by the caller with free().
 * 0 on success, -1 on failure (outputs untouched).
 */
int ttls_selfsigned(char **ret_cert_pem, char **ret_key_pem);

/* Write `text` to path (created 0600). 0 or -1. */
int ttls_write_file(const char *path, const char *text);

#endif
