/*
 * test-tls.c - a self-signed certificate for TLS tests (see test-tls.h), built with the
 * OpenSSL 3 API in memory.
 */
#include "test-tls.h"

#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The contents of a memory BIO as a NUL-terminated malloc'd string. */
static char *bio_text(BIO *b)
{
    char *data = NULL;
    long n = BIO_get_mem_data(b, &data);
    char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (s) {
        memcpy(s, data, (size_t)n);
        s[n] = 0;
    }
    return s;
}

int ttls_selfsigned(char **ret_cert_pem, char **ret_key_pem)
{
    int rc = -1;
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    BIO *cb = BIO_new(BIO_s_mem()), *kb = BIO_new(BIO_s_mem());
    X509V3_CTX ctx;
    X509_EXTENSION *ext = NULL;
    char *cert = NULL, *pk = NULL;
    if (!key || !x || !cb || !kb)
        goto out;
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, key);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"127.0.0.1", -1, -1,
                               0);
    X509_set_issuer_name(x, name);
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_alt_name, "IP:127.0.0.1,DNS:localhost");
    if (!ext || !X509_add_ext(x, ext, -1))
        goto out;
    if (!X509_sign(x, key, EVP_sha256()))
        goto out;
    if (!PEM_write_bio_X509(cb, x) || !PEM_write_bio_PrivateKey(kb, key, NULL, NULL, 0, NULL, NULL))
        goto out;
    cert = bio_text(cb);
    pk = bio_text(kb);
    if (!cert || !pk)
        goto out;
    *ret_cert_pem = cert;
    *ret_key_pem = pk;
    cert = pk = NULL;
    rc = 0;
out:
    free(cert);
    free(pk);
    X509_EXTENSION_free(ext);
    BIO_free(cb);
    BIO_free(kb);
    X509_free(x);
    EVP_PKEY_free(key);
    return rc;
}

int ttls_write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return -1;
    size_t len = strlen(text), off = 0;
    while (off < len) {
        ssize_t w = write(fd, text + off, len - off);
        if (w <= 0) {
            close(fd);
            return -1;
        }
        off += (size_t)w;
    }
    return close(fd);
}
