/*
 * tools/config-value.c - one YAML node -> one typed value (see config-value.h).
 */
#include "config-value.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "delivery/duration.h"
#include "delivery/secret.h"

static void oom(cy_ctx *x, const cy_node *n, const char *path)
{
    cy_errf(x, n, path, "out of memory");
}

int cv_string(cy_ctx *x, const cy_node *n, const char *path, char **dst)
{
    if (cy_want_scalar(x, n, path, "a string") < 0)
        return -1;
    char *s = strdup(n->str);
    if (!s) {
        oom(x, n, path);
        return -1;
    }
    free(*dst);
    *dst = s;
    return 0;
}

int cv_opt_string(cy_ctx *x, const cy_node *n, const char *path, char **dst)
{
    if (cy_is_null(n)) {
        free(*dst);
        *dst = NULL;
        return 0;
    }
    if (cv_string(x, n, path, dst) < 0)
        return -1;
    if (!**dst) {
        free(*dst);
        *dst = NULL;
    }
    return 0;
}

int cv_bool(cy_ctx *x, const cy_node *n, const char *path, int *dst)
{
    static const char *const yes[] = {"true", "True", "TRUE", "yes", "Yes",
                                      "YES",  "on",   "On",   "ON",  "1"};
    static const char *const no[] = {"false", "False", "FALSE", "no",  "No",
                                     "NO",    "off",   "Off",   "OFF", "0"};
    if (cy_want_scalar(x, n, path, "true or false") < 0)
        return -1;
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        if (strcmp(n->str, yes[i]) == 0) {
            *dst = 1;
            return 0;
        }
        if (strcmp(n->str, no[i]) == 0) {
            *dst = 0;
            return 0;
        }
    }
    cy_errf(x, n, path, "expected true or false, found \"%.80s\"", n->str);
    return -1;
}

int cv_int(cy_ctx *x, const cy_node *n, const char *path, long long lo, long long hi,
           long long *dst)
{
    if (cy_want_scalar(x, n, path, "an integer") < 0)
        return -1;
    const char *s = n->str;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || errno) {
        cy_errf(x, n, path, "expected an integer, found \"%.80s\"", s);
        return -1;
    }
    if (v < lo || v > hi) {
        cy_errf(x, n, path, "%lld is out of range (%lld..%lld)", v, lo, hi);
        return -1;
    }
    *dst = v;
    return 0;
}

int cv_double(cy_ctx *x, const cy_node *n, const char *path, double lo, double hi, double *dst)
{
    if (cy_want_scalar(x, n, path, "a number") < 0)
        return -1;
    const char *s = n->str;
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno || !isfinite(v)) {
        cy_errf(x, n, path, "expected a number, found \"%.80s\"", s);
        return -1;
    }
    if (v < lo || v > hi) {
        cy_errf(x, n, path, "%g is out of range (%g..%g)", v, lo, hi);
        return -1;
    }
    *dst = v;
    return 0;
}

int cv_duration_ns(cy_ctx *x, const cy_node *n, const char *path, int64_t *dst)
{
    char e[256];
    if (cy_want_scalar(x, n, path, "a duration") < 0)
        return -1;
    const char *s = n->str;
    if (n->plain && *s) {
        const char *p = s + (*s == '-' || *s == '+');
        if (*p && strspn(p, "0123456789") == strlen(p)) {
            char *end = NULL;
            errno = 0;
            long long v = strtoll(s, &end, 10);
            if (errno || *end) {
                cy_errf(x, n, path, "integer duration out of range");
                return -1;
            }
            *dst = v;
            return 0;
        }
    }
    if (dlv_duration_parse(s, dst, e, sizeof e) < 0) {
        cy_errf(x, n, path, "%s", e);
        return -1;
    }
    return 0;
}

int cv_duration_ms(cy_ctx *x, const cy_node *n, const char *path, int64_t *dst)
{
    int64_t ns;
    if (cv_duration_ns(x, n, path, &ns) < 0)
        return -1;
    *dst = dlv_ns_to_ms(ns);
    return 0;
}

int cv_size(cy_ctx *x, const cy_node *n, const char *path, uint64_t *dst)
{
    char e[256];
    if (cy_want_scalar(x, n, path, "a size") < 0)
        return -1;
    if (dlv_size_parse(n->str, dst, e, sizeof e) < 0) {
        cy_errf(x, n, path, "%s", e);
        return -1;
    }
    return 0;
}

void cv_free_strings(char **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        free(v[i]);
    free(v);
}

int cv_strings(cy_ctx *x, const cy_node *n, const char *path, char ***dst, size_t *count)
{
    if (cy_is_null(n)) {
        *count = 0;
        return 0;
    }
    if (cy_want_list(x, n, path) < 0)
        return -1;
    char **v = calloc(n->n_items ? n->n_items : 1, sizeof *v);
    if (!v) {
        oom(x, n, path);
        return -1;
    }
    for (size_t i = 0; i < n->n_items; i++) {
        char ip[CY_PATH_MAX];
        cy_indexpath(ip, path, i);
        if (cv_string(x, n->items[i], ip, &v[i]) < 0) {
            cv_free_strings(v, i);
            return -1;
        }
    }
    *dst = v;
    *count = n->n_items;
    return 0;
}

int cv_push(char ***v, size_t *n, char *s)
{
    char **nv = realloc(*v, (*n + 1) * sizeof *nv);
    if (!nv)
        return -1;
    nv[(*n)++] = s;
    *v = nv;
    return 0;
}

/* ---- secrets ------------------------------------------------------------------------- */

int cv_secret(cy_ctx *x, const cy_node *n, const char *path, char **dst)
{
    if (cy_is_null(n)) {
        *dst = NULL;
        return 0;
    }
    if (!n || n->kind != CY_SCALAR) {
        cy_errf(x, n, path, "expected a string, found %s", cy_kind_name(n));
        return -1;
    }
    const char *val = n->str;
    /* ${NAME} was expanded by the reader: a variable set but empty must not turn a secret
     * off silently */
    if (!*val && n->env) {
        cy_errf(x, n, path, "environment variable %s is empty", n->env);
        return -1;
    }
    if (!*val) {
        *dst = NULL;
        return 0;
    }
    *dst = strdup(val);
    if (!*dst) {
        oom(x, n, path);
        return -1;
    }
    return 0;
}

/* What a non-regular file is, for the message. */
static const char *file_kind(mode_t m)
{
    return S_ISFIFO(m)   ? "a FIFO"
           : S_ISDIR(m)  ? "a directory"
           : S_ISCHR(m)  ? "a character device"
           : S_ISBLK(m)  ? "a block device"
           : S_ISSOCK(m) ? "a socket"
                         : "not a regular file";
}

int cv_secret_file(cy_ctx *x, const cy_node *n, const char *path, char **dst)
{
    if (cy_want_scalar(x, n, path, "a file path") < 0)
        return -1;
    const char *file = n->str;
    /* O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused just below) */
    int fd = open(file, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        cy_errf(x, n, path, "cannot open %s: %s", file, strerror(errno));
        return -1;
    }
    char *buf = NULL;
    size_t len = 0;
    int rc = -1;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        cy_errf(x, n, path, "cannot stat %s: %s", file, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        cy_errf(x, n, path, "%s is %s; a secret file must be a regular file", file,
                file_kind(st.st_mode));
        goto out;
    }
    if (st.st_size > CV_SECRET_MAX) {
        cy_errf(x, n, path, "%s is larger than %d bytes", file, CV_SECRET_MAX);
        goto out;
    }
    buf = malloc(CV_SECRET_MAX + 1);
    if (!buf) {
        oom(x, n, path);
        goto out;
    }
    for (;;) { /* the size may change while reading: bounded by the buffer */
        ssize_t r = read(fd, buf + len, CV_SECRET_MAX + 1 - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            cy_errf(x, n, path, "cannot read %s: %s", file, strerror(errno));
            goto out;
        }
        if (r == 0)
            break;
        len += (size_t)r;
        if (len > CV_SECRET_MAX) {
            cy_errf(x, n, path, "%s is larger than %d bytes", file, CV_SECRET_MAX);
            goto out;
        }
    }
    if (len > 0 && buf[len - 1] == '\n')
        len--;
    if (len > 0 && buf[len - 1] == '\r')
        len--;
    buf[len] = '\0';
    if (len == 0) {
        cy_errf(x, n, path, "%s is empty", file);
        goto out;
    }
    if (memchr(buf, '\0', len)) {
        cy_errf(x, n, path, "%s contains a NUL byte", file);
        goto out;
    }
    *dst = buf;
    buf = NULL;
    rc = 0;
out:
    if (buf) {
        dlv_secret_wipe(buf, CV_SECRET_MAX + 1);
        free(buf);
    }
    (void)close(fd);
    return rc;
}

int cv_secret_pair(cy_ctx *x, const cy_node *secret, const cy_node *file, const char *parent,
                   const char *key, const char *file_key, char **dst)
{
    char sp[CY_PATH_MAX], fp[CY_PATH_MAX];
    cy_subpath(sp, parent, key);
    cy_subpath(fp, parent, file_key);
    *dst = NULL;
    if (secret && file && !cy_is_null(secret) && !cy_is_null(file) &&
        !(secret->kind == CY_SCALAR && !*secret->str)) {
        cy_errf(x, file, fp, "only one of %s or %s allowed", key, file_key);
        return -1;
    }
    if (file && !cy_is_null(file))
        return cv_secret_file(x, file, fp, dst);
    if (secret)
        return cv_secret(x, secret, sp, dst);
    return 0;
}

int cv_regular_file_rule(const char *file, char *err, size_t errlen)
{
    struct stat st;
    if (!file || stat(file, &st) != 0 || S_ISREG(st.st_mode))
        return 0;
    if (err && errlen)
        (void)snprintf(err, errlen, "%s is %s; it must be a regular file", file,
                       file_kind(st.st_mode));
    return -1;
}
