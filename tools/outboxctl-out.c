/*
 * outboxctl-out.c - tables, JSON lines and body encoding for outboxctl
 * (see outboxctl-out.h).
 */
#include "outboxctl-out.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "delivery/base64.h"
#include "delivery/error.h"

#include "outboxctl-time.h"
#include "outboxctl.h"

#define FLUSH_ROWS 1000

struct ctl_table {
    FILE *f;
    size_t ncols;
    char **headers;
    size_t *width;
    char **cells; /* rows x ncols */
    size_t nrows, cap, total;
    int header_done;
    size_t fit_col;   /* the column shortened to fit fit_width */
    size_t fit_width; /* 0 = lines as long as they come */
};

/* Display width: UTF-8 code points (good enough for names and ages). */
static size_t text_width(const char *s)
{
    size_t w = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            w++;
    return w;
}

ctl_table *ctl_table_new(FILE *f, size_t ncols, const char *const *headers)
{
    ctl_table *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->f = f;
    t->ncols = ncols;
    t->headers = calloc(ncols, sizeof *t->headers);
    t->width = calloc(ncols, sizeof *t->width);
    if (!t->headers || !t->width) {
        ctl_table_free(t);
        return NULL;
    }
    for (size_t i = 0; i < ncols; i++) {
        t->headers[i] = strdup(headers[i]);
        if (!t->headers[i]) {
            ctl_table_free(t);
            return NULL;
        }
        t->width[i] = text_width(headers[i]);
    }
    return t;
}

int ctl_table_add(ctl_table *t, const char *const *cells)
{
    if (t->nrows == t->cap) {
        size_t nc = t->cap ? t->cap * 2 : 64;
        char **n = realloc(t->cells, nc * t->ncols * sizeof *n);
        if (!n)
            return -1;
        t->cells = n;
        t->cap = nc;
    }
    char **row = t->cells + t->nrows * t->ncols;
    for (size_t i = 0; i < t->ncols; i++) {
        row[i] = strdup(cells[i] ? cells[i] : "-");
        if (!row[i]) {
            for (size_t j = 0; j < i; j++)
                free(row[j]);
            return -1;
        }
        size_t w = text_width(row[i]);
        if (w > t->width[i])
            t->width[i] = w;
    }
    t->nrows++;
    t->total++;
    if (t->nrows >= FLUSH_ROWS)
        ctl_table_flush(t);
    return 0;
}

/* Byte offset of code point number `cp` in s (or its end). */
static size_t cp_offset(const char *s, size_t cp)
{
    size_t i = 0;
    for (; s[i]; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80 && cp-- == 0)
            break;
    return i;
}

char *ctl_shorten_middle(const char *s, size_t width)
{
    size_t w = text_width(s);
    if (w <= width || width < 5)
        return strdup(s);
    size_t head = (width - 3 + 1) / 2, tail = width - 3 - head;
    size_t hb = cp_offset(s, head), tb = cp_offset(s, w - tail);
    size_t tl = strlen(s + tb);
    char *out = malloc(hb + 3 + tl + 1);
    if (!out)
        return NULL;
    memcpy(out, s, hb);
    memcpy(out + hb, "...", 3);
    memcpy(out + hb + 3, s + tb, tl + 1);
    return out;
}

size_t ctl_term_width(FILE *f)
{
    const char *env = getenv("COLUMNS");
    if (env && *env) {
        char *end;
        errno = 0;
        unsigned long v = strtoul(env, &end, 10);
        if (!*end && !errno && v > 0 && v < 100000)
            return v;
    }
    struct winsize ws;
    if (isatty(fileno(f)) && ioctl(fileno(f), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        return ws.ws_col;
    return 0;
}

void ctl_table_fit(ctl_table *t, size_t col, size_t line_width)
{
    t->fit_col = col;
    t->fit_width = col < t->ncols ? line_width : 0;
}

/* Shorten the fit column's cells (in the middle) so that lines fit fit_width, keeping at
 * least CTL_FIT_MIN columns of them. */
static void fit_rows(ctl_table *t)
{
    if (!t->fit_width)
        return;
    size_t others = 2 * (t->ncols - 1);
    for (size_t i = 0; i < t->ncols; i++)
        if (i != t->fit_col)
            others += t->width[i];
    size_t budget = t->fit_width > others + CTL_FIT_MIN ? t->fit_width - others : CTL_FIT_MIN;
    if (t->width[t->fit_col] <= budget)
        return;
    t->width[t->fit_col] = budget;
    if (text_width(t->headers[t->fit_col]) > budget)
        t->width[t->fit_col] = text_width(t->headers[t->fit_col]);
    for (size_t r = 0; r < t->nrows; r++) {
        char **cell = &t->cells[r * t->ncols + t->fit_col];
        if (text_width(*cell) <= budget)
            continue;
        char *sh = ctl_shorten_middle(*cell, budget);
        if (sh) {
            free(*cell);
            *cell = sh;
        }
    }
}

static void print_row(ctl_table *t, char *const *row)
{
    for (size_t i = 0; i < t->ncols; i++) {
        fputs(row[i], t->f);
        if (i + 1 < t->ncols) {
            size_t pad = t->width[i] - text_width(row[i]) + 2;
            for (size_t k = 0; k < pad; k++)
                fputc(' ', t->f);
        }
    }
    fputc('\n', t->f);
}

void ctl_table_flush(ctl_table *t)
{
    fit_rows(t);
    if (!t->header_done) {
        print_row(t, t->headers);
        t->header_done = 1;
    }
    for (size_t r = 0; r < t->nrows; r++) {
        char **row = t->cells + r * t->ncols;
        print_row(t, row);
        for (size_t i = 0; i < t->ncols; i++)
            free(row[i]);
    }
    t->nrows = 0;
    fflush(t->f);
}

size_t ctl_table_rows(const ctl_table *t)
{
    return t->total;
}

void ctl_table_free(ctl_table *t)
{
    if (!t)
        return;
    if (t->nrows > 0)
        ctl_table_flush(t);
    for (size_t i = 0; t->headers && i < t->ncols; i++)
        free(t->headers[i]);
    free(t->headers);
    free(t->width);
    free(t->cells);
    free(t);
}

/* ---- JSON ---- */

void ctl_json_print(json_t *v, FILE *f)
{
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (s) {
        fputs(s, f);
        fputc('\n', f);
        free(s);
    }
    json_decref(v);
}

/* ---- reading a member's raw text back ---- */

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

/* End of the string starting at p (on the opening quote), or NULL. */
static const char *skip_string(const char *p, const char *end)
{
    for (p++; p < end; p++) {
        if (*p == '\\')
            p++;
        else if (*p == '"')
            return p + 1;
    }
    return NULL;
}

/* End of the JSON value starting at p, or NULL (the line was validated before). */
static const char *skip_value(const char *p, const char *end)
{
    if (p >= end)
        return NULL;
    if (*p == '"')
        return skip_string(p, end);
    if (*p == '{' || *p == '[') {
        int depth = 0;
        while (p < end) {
            if (*p == '"') {
                p = skip_string(p, end);
                if (!p)
                    return NULL;
                continue;
            }
            if (*p == '{' || *p == '[')
                depth++;
            else if (*p == '}' || *p == ']') {
                if (--depth == 0)
                    return p + 1;
            }
            p++;
        }
        return NULL;
    }
    while (p < end && !strchr(",}] \t\r\n", *p))
        p++;
    return p;
}

static int raw_member(const char *line, size_t len, const char *key, const char **val, size_t *vlen)
{
    const char *p = line, *end = line + len;
    size_t kl = strlen(key);
    p = skip_ws(p, end);
    if (p >= end || *p != '{')
        return -1;
    p++;
    for (;;) {
        p = skip_ws(p, end);
        if (p >= end || *p != '"')
            return -1;
        const char *ks = p + 1, *ke = skip_string(p, end);
        if (!ke)
            return -1;
        p = skip_ws(ke, end);
        if (p >= end || *p != ':')
            return -1;
        p = skip_ws(p + 1, end);
        const char *ve = skip_value(p, end);
        if (!ve)
            return -1;
        if ((size_t)(ke - 1 - ks) == kl && memcmp(ks, key, kl) == 0) {
            *val = p;
            *vlen = (size_t)(ve - p);
            return 0;
        }
        p = skip_ws(ve, end);
        if (p < end && *p == ',') {
            p++;
            continue;
        }
        return -1;
    }
}

int ctl_body_from_line(const char *line, size_t len, unsigned char **out, size_t *out_len,
                       char *err, size_t errlen)
{
    json_error_t je;
    json_t *root = json_loadb(line, len, 0, &je);
    if (!root) {
        snprintf(err, errlen, "not a JSON object: %s (column %d)", je.text, je.column);
        return -1;
    }
    int rc = -1;
    json_t *b64 = json_object_get(root, "body_base64");
    if (b64) {
        if (!json_is_string(b64)) {
            snprintf(err, errlen, "\"body_base64\" is not a string");
            goto out;
        }
        unsigned char *dec = NULL;
        int brc =
            dlv_base64_decode_alloc(json_string_value(b64), json_string_length(b64), &dec, out_len);
        if (brc != DLV_OK) {
            snprintf(err, errlen, "\"body_base64\" %s",
                     brc == DLV_ERR_NOMEM ? "does not fit in memory" : "is not valid base64");
            goto out;
        }
        *out = dec;
        rc = 0;
        goto out;
    }
    if (!json_object_get(root, "body")) {
        snprintf(err, errlen, "no \"body\" or \"body_base64\"");
        goto out;
    }
    const char *v;
    size_t vl;
    if (raw_member(line, len, "body", &v, &vl)) {
        snprintf(err, errlen, "cannot locate the \"body\" text");
        goto out;
    }
    *out = malloc(vl ? vl : 1);
    if (!*out) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    memcpy(*out, v, vl);
    *out_len = vl;
    rc = 0;
out:
    json_decref(root);
    return rc;
}

/* ---- bodies for people ---- */

static int printable_utf8(const unsigned char *s, size_t len)
{
    for (size_t i = 0; i < len;) {
        unsigned char ch = s[i];
        if (ch < 0x80) {
            if (ch < 0x20 && ch != '\n' && ch != '\t' && ch != '\r')
                return 0;
            if (ch == 0x7f)
                return 0;
            i++;
            continue;
        }
        size_t n = (ch & 0xE0) == 0xC0 ? 2 : (ch & 0xF0) == 0xE0 ? 3 : (ch & 0xF8) == 0xF0 ? 4 : 0;
        if (!n || i + n > len)
            return 0;
        for (size_t k = 1; k < n; k++)
            if ((s[i + k] & 0xC0) != 0x80)
                return 0;
        i += n;
    }
    return 1;
}

void ctl_body_print(const unsigned char *body, size_t len, FILE *f)
{
    if (printable_utf8(body, len)) {
        fwrite(body, 1, len, f);
        if (len == 0 || body[len - 1] != '\n')
            fputc('\n', f);
        return;
    }
    char *b = ctl_base64_encode(body, len);
    fprintf(f, "(%zu bytes, not printable text; base64:)\n%s\n", len, b ? b : "(out of memory)");
    free(b);
}

void ctl_bytes_fmt(uint64_t n, char *buf, size_t bufn)
{
    static const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)n;
    size_t i = 0;
    while (v >= 1024 && i < 4) {
        v /= 1024;
        i++;
    }
    if (i == 0)
        snprintf(buf, bufn, "%llu B", (unsigned long long)n);
    else
        snprintf(buf, bufn, "%.1f %s", v, u[i]);
}

/* ---- files ---- */

char *ctl_read_file(const char *path, size_t *len)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f) {
        ctl_err("%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0)
            break;
        if (n + 1 == cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    int bad = ferror(f);
    if (f != stdin)
        fclose(f);
    if (!buf || bad) {
        ctl_err("%s: cannot read%s", path, buf ? "" : " (out of memory)");
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}
