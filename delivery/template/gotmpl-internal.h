/*
 * gotmpl-internal.h - shared internals of the template engine: the capped output buffer,
 * the per-execution arena, the value model (what a Go reflect.Value can be here), the
 * event struct, and the entry points between the modules (buffer.c, strconv.c, gojson.c,
 * event.c, gofmt.c; the parser's and the executor's own are in parser.h and exec.h).
 * Not a public header.
 */
#ifndef GOTMPL_INTERNAL_H
#define GOTMPL_INTERNAL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "gotmpl/gojson.h"
#include "gotmpl/gotmpl.h"

/* ---- growable byte buffer with a cap ---- */
typedef struct gobuf {
    char *p;
    size_t len, cap;
    size_t max; /* 0 = unlimited */
    int err;    /* 0, GOTMPL_ENOMEM or GOTMPL_ETOOBIG (sticky) */
} gobuf;

void gobuf_init(gobuf *b, size_t max);
void gobuf_free(gobuf *b);
int gobuf_put(gobuf *b, const void *s, size_t n); /* 0 or the sticky error */
int gobuf_putc(gobuf *b, char c);
int gobuf_puts(gobuf *b, const char *s);
int gobuf_pad(gobuf *b, char c, size_t n);

/* ---- arena for strings computed during one execution ---- */
typedef struct goarena {
    struct goarena_blk *head;
    size_t used, limit; /* bytes handed out, cap (0 = none) */
} goarena;

void goarena_init(goarena *a, size_t limit);
void goarena_free(goarena *a);
/* Copy n bytes into the arena; NULL when out of memory or over the limit (a->used > limit). */
char *goarena_dup(goarena *a, const char *s, size_t n);

/* ---- event ---- */
typedef struct gostr {
    const char *p;
    size_t n;
} gostr;

enum { ACT_AUTH, ACT_IP, ACT_EMAIL, ACT_NAME, ACT_PICTURE, ACT_N };

struct gotmpl_event {
    json_t *root; /* owns every string below */
    gostr version, type, action, timestamp, status;
    gostr actor[ACT_N]; /* "" when absent */
    json_t *payload;    /* borrowed from root; NULL = nil interface */
};

extern const char *const gotmpl_actor_fields[ACT_N]; /* Go names: Authentication, IP... */

/* ---- values (a reflect.Value as far as templates can see) ---- */
typedef enum {
    GV_INVALID = 0, /* the zero reflect.Value: missing key, untyped nil */
    GV_NIL,         /* a nil interface{} (JSON null, nil payload); always iface */
    GV_BOOL,
    GV_INT,    /* Go int (template literals, len, range indexes) */
    GV_UINT8,  /* byte (index of a string) */
    GV_FLOAT,  /* float64 */
    GV_STRING, /* string */
    GV_MAP,    /* map[string]interface {} (a jansson object) */
    GV_SLICE,  /* []interface {} (a jansson array, possibly a sub-slice) */
    GV_EVENT,  /* audit.Event */
    GV_META,   /* audit.Metadata */
    GV_ACTOR,  /* *audit.Actor */
} gv_kind;

typedef struct gv {
    uint8_t kind;
    uint8_t iface; /* static type is interface {} (came out of a map/slice or .Payload) */
    union {
        int b;
        int64_t i;
        double f;
        gostr s;
        struct {
            json_t *j;
            size_t off, len; /* for GV_SLICE */
        } c;
        const gotmpl_event *ev;
    } u;
} gv;

/* Go type name of v ("string", "float64", "map[string]interface {}", "*audit.Actor"...);
 * "interface {}" when v.iface and declared says so. */
const char *gv_type_name(const gv *v);
/* Value of a JSON element as Go holds it in an interface{} (iface set). */
gv gv_from_json(json_t *j);
/* Length of a map/slice/string value. */
size_t gv_len(const gv *v);
/* Element i of a slice value (iface). */
gv gv_slice_at(const gv *v, size_t i);

/* ---- object keys in Go's map order (byte-wise sorted) ---- */
typedef struct gokv {
    const char *k;
    size_t n;
    json_t *v;
} gokv;

/* Fill a[0..cap) with the members of object o, sorted by key; returns the count. */
size_t gokv_sorted(const json_t *o, gokv *a, size_t cap);

/* ---- gojson.c internals ---- */
/* Append the JSON encoding of a JSON value / string / Go value. 0, -1 (unsupported value,
 * message in err), or the buffer's error. */
int gojson__value(gobuf *b, const json_t *v, char *err, size_t errlen);
int gojson__string(gobuf *b, const char *s, size_t n);
int gojson__gv(gobuf *b, const gv *v, char *err, size_t errlen);
int gojson__event(gobuf *b, const gotmpl_event *ev, char *err, size_t errlen);

/* Shortest decimal digits of |v| (finite, non-zero): digits "d1d2...dn", value =
 * 0.d1d2...dn * 10^dp. Returns n. */
int gofloat_shortest(double v, char digs[20], int *dp);
/* strconv.AppendFloat(v, fmt, prec, 64) for fmt in e E f F g G x X; prec -1 = shortest. */
int gofloat_format(gobuf *b, double v, char fmt, int prec);

/* ---- gofmt.c: Go fmt ---- */
/* fmt.Sprint / Sprintln / Sprintf of args. Returns 0, -1 when a value may not be printed
 * (message in err, "unsupported: ..."), or the buffer's error. */
int gofmt_sprint(gobuf *b, const gv *args, size_t n, char *err, size_t errlen);
int gofmt_sprintln(gobuf *b, const gv *args, size_t n, char *err, size_t errlen);
int gofmt_sprintf(gobuf *b, const char *f, size_t flen, const gv *args, size_t n, char *err,
                  size_t errlen);
/* Template action printing (text/template printValue): like Sprint of one value, except a
 * missing/nil value prints "<no value>" and the actor pointer is dereferenced. */
int gofmt_print_action(gobuf *b, const gv *v, char *err, size_t errlen);
/* Check a printf format for verbs outside the supported set. 0 ok, -1 (message in err). */
int gofmt_check_format(const char *f, size_t flen, char *err, size_t errlen);
/* strconv.Quote(s) appended to b (ascii: QuoteToASCII). */
int gofmt_quote(gobuf *b, const char *s, size_t n, int ascii);

/* UTF-8 decode like Go's utf8.DecodeRune: returns rune (0xFFFD on error) and size (>=1). */
int32_t goutf8_decode(const unsigned char *s, size_t n, int *size);
int goutf8_encode(char out[4], int32_t r);
/* An approximation of unicode.IsPrint (exact for ASCII and Latin-1, common ranges beyond). */
int gounicode_isprint(int32_t r);

#endif
