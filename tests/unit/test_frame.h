/* Helpers shared by the frame tests and the frame fuzz targets.
 *
 * - tf_spec_equal: field-wise spec comparison (only the fields a codec uses).
 * - tf_payload_range: the payload lengths a spec can express.
 * - tf_stream: build a stream by encoding messages, remembering where each
 *   frame and payload sits, so a decoder's output can be compared exactly.
 * - tf_decode: a model of a caller's receive buffer. It feeds a decoder in
 *   chosen chunks (all at once, byte by byte, random, one split point), decodes
 *   until -EAGAIN after every chunk, drops what was consumed, and checks the
 *   decoder's invariants on every call.
 *
 * No cmocka here: the fuzz targets (plain C, no test framework) include it too.
 * Every function is static inline so a program that uses a few of them does not
 * trip -Wunused-function.
 */
#ifndef TEST_FRAME_H
#define TEST_FRAME_H

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sockmsg/error.h>
#include <sockmsg/frame.h>

/* splitmix64: deterministic, any seed (including 0) is fine. */
static inline uint64_t
tf_rand(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform-ish in [lo, hi] (hi >= lo). */
static inline uint64_t
tf_range(uint64_t *s, uint64_t lo, uint64_t hi)
{
    uint64_t span = hi - lo;
    if (span == UINT64_MAX) return tf_rand(s);
    return lo + tf_rand(s) % (span + 1);
}

/* ---- specs ---------------------------------------------------------------------------- */

static inline bool
tf_basic_equal(const sm_frame_basic *a, const sm_frame_basic *b)
{
    if (a->kind != b->kind) return false;
    if (a->len_offset != b->len_offset) return false;
    switch (a->kind) {
    case SM_FRAME_FIXED:
        return a->fixed_len == b->fixed_len;
    case SM_FRAME_DELIM:
        return a->delim_len == b->delim_len && a->delim_len <= SM_FRAME_DELIM_MAX &&
               memcmp(a->delim, b->delim, a->delim_len) == 0;
    case SM_FRAME_LENGTH:
        /* A one-byte field has no byte order. */
        return a->len_width == b->len_width &&
               (a->len_width == 1 || a->len_little == b->len_little) &&
               a->len_offset == b->len_offset && a->len_adjust == b->len_adjust;
    case SM_FRAME_ASCII:
        return a->ascii_digits == b->ascii_digits;
    case SM_FRAME_RESP:
        return a->resp_depth == b->resp_depth;
    default:
        return true;
    }
}

/* Field-wise equality of two specs; on a difference, says which in why. */
static inline bool
tf_spec_equal(const sm_frame_spec *a, const sm_frame_spec *b, char *why, size_t why_len)
{
    if (a->kind != b->kind) {
        snprintf(why, why_len, "kind %d != %d", (int)a->kind, (int)b->kind);
        return false;
    }
    if (sm_frame_max(a) != sm_frame_max(b)) {
        snprintf(why, why_len, "max %llu != %llu", (unsigned long long)sm_frame_max(a),
                 (unsigned long long)sm_frame_max(b));
        return false;
    }
    if (a->oversize != b->oversize) {
        snprintf(why, why_len, "oversize %d != %d", (int)a->oversize, (int)b->oversize);
        return false;
    }
    if (a->kind != SM_FRAME_TYPE) {
        if (!tf_basic_equal(&a->basic, &b->basic)) {
            snprintf(why, why_len, "codec fields differ");
            return false;
        }
        return true;
    }
    for (int t = 0; t < 256; t++) {
        unsigned ia = a->type_map[t], ib = b->type_map[t];
        if ((ia == 0) != (ib == 0)) {
            snprintf(why, why_len, "type 0x%02x mapped in one spec only", t);
            return false;
        }
        if (ia == 0) continue;
        if (ia > a->type_count || ib > b->type_count || ia > SM_FRAME_TYPES_MAX ||
            ib > SM_FRAME_TYPES_MAX) {
            snprintf(why, why_len, "type 0x%02x maps past type_count", t);
            return false;
        }
        if (!tf_basic_equal(&a->types[ia - 1], &b->types[ib - 1])) {
            snprintf(why, why_len, "type 0x%02x: nested codecs differ", t);
            return false;
        }
    }
    return true;
}

/* Whether spec prints back (sm_frame_spec_format, asked for its size first)
 * to a string that parses to an equal spec; on failure, says why. Every spec
 * the tests parse goes through this. */
static inline bool
tf_format_roundtrips(const sm_frame_spec *spec, char *why, size_t why_len)
{
    int n = sm_frame_spec_format(spec, NULL, 0);
    if (n <= 0) {
        snprintf(why, why_len, "format gave %d", n);
        return false;
    }
    char *out = (char *)malloc((size_t)n + 1);
    if (!out) abort();
    bool ok = false;
    sm_frame_spec back;
    char sub[256] = "";
    if (sm_frame_spec_format(spec, out, (size_t)n + 1) != n || strlen(out) != (size_t)n)
        snprintf(why, why_len, "format with %d bytes of room differs", n + 1);
    else if (sm_frame_spec_parse(&back, out, sub, sizeof sub) != 0)
        snprintf(why, why_len, "\"%s\" does not parse: %s", out, sub);
    else if (!tf_spec_equal(spec, &back, sub, sizeof sub))
        snprintf(why, why_len, "\"%s\" parses differently: %s", out, sub);
    else
        ok = true;
    free(out);
    return ok;
}

/* The codec that frames messages of type `type` (the spec itself when it has no
 * type dispatch), or NULL for an unmapped type. */
static inline const sm_frame_basic *
tf_codec_for(const sm_frame_spec *spec, int type)
{
    if (spec->kind != SM_FRAME_TYPE) return &spec->basic;
    if (type < 0 || type > 255 || spec->type_map[type] == 0) return NULL;
    return &spec->types[spec->type_map[type] - 1];
}

/* The lowest mapped type byte of a type: spec, else -1. */
static inline int
tf_first_type(const sm_frame_spec *spec)
{
    if (spec->kind != SM_FRAME_TYPE) return -1;
    for (int t = 0; t < 256; t++)
        if (spec->type_map[t]) return t;
    return -1;
}

/* Payload lengths [*lo, *hi] that codec b can express with the given max.
 * *lo > *hi when there are none. */
static inline void
tf_payload_range(const sm_frame_basic *b, uint64_t max, uint64_t *lo, uint64_t *hi)
{
    *lo = 0;
    *hi = max;
    switch (b->kind) {
    case SM_FRAME_FIXED:
        *lo = b->fixed_len;
        *hi = b->fixed_len < max ? b->fixed_len : max;
        break;
    case SM_FRAME_LENGTH: {
        /* field = payload + adjust must fit in [0, 2^(8w) - 1]. */
        uint64_t w = b->len_width >= 8 ? UINT64_MAX : (UINT64_C(1) << (8 * b->len_width)) - 1;
        if (b->len_adjust < 0) {
            uint64_t neg = (uint64_t)0 - (uint64_t)b->len_adjust;
            uint64_t top = w > UINT64_MAX - neg ? UINT64_MAX : w + neg;
            *lo = neg;
            if (top < *hi) *hi = top;
        } else if ((uint64_t)b->len_adjust > w) {
            *lo = 1;
            *hi = 0;
        } else if (w - (uint64_t)b->len_adjust < *hi) {
            *hi = w - (uint64_t)b->len_adjust;
        }
        break;
    }
    case SM_FRAME_ASCII: {
        uint64_t top = 0;
        for (int i = 0; i < b->ascii_digits && top <= UINT64_MAX / 10; i++)
            top = top * 10 + 9;
        if (b->ascii_digits >= 20) top = UINT64_MAX;
        if (top < *hi) *hi = top;
        break;
    }
    default:
        break;
    }
}

/* Whether payload p[0..n) framed with delimiter d[0..dl) is ambiguous: the first
 * occurrence of d in p ++ d starts before n. An encoder must refuse exactly these. */
static inline bool
tf_delim_ambiguous(const uint8_t *p, size_t n, const uint8_t *d, size_t dl)
{
    for (size_t i = 0; i < n; i++) {
        size_t k = 0;
        while (k < dl) {
            size_t at = i + k;
            uint8_t c = at < n ? p[at] : d[at - n];
            if (c != d[k]) break;
            k++;
        }
        if (k == dl) return true;
    }
    return false;
}

/* A byte that is not in codec b's delimiter (any byte for other codecs). */
static inline uint8_t
tf_filler(const sm_frame_basic *b)
{
    for (unsigned c = 'x';; c = (c + 1) & 0xff) {
        if (b->kind != SM_FRAME_DELIM || !memchr(b->delim, (int)c, b->delim_len)) return (uint8_t)c;
    }
}

/* Payload bytes in one of a few styles: random binary; bytes that matter to
 * some framing (delimiter bytes, '\n', '\r', NUL, ',', ':', digits, 0x80, 0xff);
 * a constant byte; printable text. */
static inline void
tf_fill(uint64_t *rng, uint8_t *p, size_t n, const sm_frame_basic *b, unsigned style)
{
    uint8_t alpha[SM_FRAME_DELIM_MAX + 12] = {'\n', '\r', 0, ',', ':', '0', '9', 0x80, 0xff, 'x'};
    size_t na = 10;
    if (b->kind == SM_FRAME_DELIM) {
        memcpy(alpha + na, b->delim, b->delim_len);
        na += b->delim_len;
    }
    for (size_t i = 0; i < n; i++) {
        switch (style % 4) {
        case 0:
            p[i] = (uint8_t)tf_rand(rng);
            break;
        case 1:
            p[i] = alpha[tf_rand(rng) % na];
            break;
        case 2:
            p[i] = 'x';
            break;
        default:
            p[i] = (uint8_t)(' ' + tf_rand(rng) % 95);
            break;
        }
    }
}

/* Make a payload framable by a delimited codec with as few changes as possible:
 * break every occurrence of the delimiter, including one that would run into
 * the delimiter appended after it. Other codecs: nothing to do. */
static inline void
tf_make_safe(uint8_t *p, size_t n, const sm_frame_basic *b)
{
    if (b->kind != SM_FRAME_DELIM) return;
    size_t dl = b->delim_len;
    uint8_t f = tf_filler(b);
    for (size_t i = 0; i + dl <= n; i++)
        if (memcmp(p + i, b->delim, dl) == 0) p[i + dl - 1] = f;
    /* An occurrence that starts in the payload and ends in the delimiter starts
     * in the last dl - 1 bytes. */
    for (size_t k = 1; k < dl && k <= n; k++)
        if (tf_delim_ambiguous(p, n, b->delim, dl)) p[n - k] = f;
}

/* ---- decoded messages ------------------------------------------------------------------- */

/* One message, by stream offsets: comparable across chunkings and with what was encoded. */
typedef struct tf_event {
    uint64_t frame_off; /* where the frame starts in the stream */
    uint64_t frame_len;
    uint64_t off; /* where the payload starts */
    uint64_t len;
    int type;
} tf_event;

typedef struct tf_events {
    tf_event *v;
    size_t n, cap;
} tf_events;

static inline void
tf_events_push(tf_events *e, const tf_event *ev)
{
    if (e->n == e->cap) {
        size_t cap = e->cap ? 2 * e->cap : 16;
        tf_event *v = realloc(e->v, cap * sizeof *v);
        if (!v) abort();
        e->v = v;
        e->cap = cap;
    }
    e->v[e->n++] = *ev;
}

static inline void
tf_events_free(tf_events *e)
{
    free(e->v);
    memset(e, 0, sizeof *e);
}

/* Compare two event lists; on a difference describe the first one in why. */
static inline bool
tf_events_equal(const tf_events *got, const tf_events *want, char *why, size_t why_len)
{
    size_t n = got->n < want->n ? got->n : want->n;
    for (size_t i = 0; i < n; i++) {
        const tf_event *g = &got->v[i], *w = &want->v[i];
        if (g->frame_off != w->frame_off || g->frame_len != w->frame_len || g->off != w->off ||
            g->len != w->len || g->type != w->type) {
            snprintf(why, why_len,
                     "message %zu: got frame@%llu+%llu payload@%llu+%llu type %d, "
                     "want frame@%llu+%llu payload@%llu+%llu type %d",
                     i, (unsigned long long)g->frame_off, (unsigned long long)g->frame_len,
                     (unsigned long long)g->off, (unsigned long long)g->len, g->type,
                     (unsigned long long)w->frame_off, (unsigned long long)w->frame_len,
                     (unsigned long long)w->off, (unsigned long long)w->len, w->type);
            return false;
        }
    }
    if (got->n != want->n) {
        snprintf(why, why_len, "got %zu messages, want %zu", got->n, want->n);
        return false;
    }
    return true;
}

/* ---- building streams ------------------------------------------------------------------- */

typedef struct tf_stream {
    uint8_t *p;
    size_t len, cap;
    tf_events ev;
} tf_stream;

static inline void
tf_stream_put(tf_stream *s, const void *src, size_t n)
{
    /* Always allocated, even when empty: s->p + 0 must be a valid pointer. */
    if (s->cap - s->len < n || !s->p) {
        size_t cap = s->cap ? s->cap : 256;
        while (cap - s->len < n)
            cap *= 2;
        uint8_t *p = realloc(s->p, cap);
        if (!p) abort();
        s->p = p;
        s->cap = cap;
    }
    if (n) memcpy(s->p + s->len, src, n);
    s->len += n;
}

/* Encode one message and append its frame; returns sm_frame_encode's result
 * (the stream is unchanged on error). rng, if not NULL, fills the offset bytes
 * of a length prefix with random values (the encoder writes zeros there, and a
 * decoder must ignore them). */
static inline int
tf_stream_add(tf_stream *s, const sm_frame_spec *spec, const void *payload, size_t len, int type,
              uint64_t *rng)
{
    sm_frame_hdr h;
    memset(&h, 0xee, sizeof h);
    int rc = sm_frame_encode(spec, payload, len, type, &h);
    if (rc != 0) return rc;
    if (h.head_len > SM_FRAME_HEAD_MAX || h.tail_len > SM_FRAME_DELIM_MAX + 1) abort();
    const sm_frame_basic *b = tf_codec_for(spec, type);
    if (rng && b && b->len_offset) {
        size_t at = spec->kind == SM_FRAME_TYPE ? 1 : 0;
        for (size_t i = 0; i < b->len_offset && at + i < h.head_len; i++)
            h.head[at + i] = (uint8_t)tf_rand(rng);
    }
    tf_event ev = {
        .frame_off = s->len,
        .frame_len = (uint64_t)h.head_len + len + h.tail_len,
        .off = s->len + h.head_len,
        .len = len,
        .type = spec->kind == SM_FRAME_TYPE ? type : -1,
    };
    /* resp: a message's type is its first byte when that is a RESP type. */
    if (spec->kind == SM_FRAME_RESP && len && ((const uint8_t *)payload)[0] &&
        strchr("+-:$*_#,(!=%~|>", ((const uint8_t *)payload)[0]))
        ev.type = ((const uint8_t *)payload)[0];
    tf_stream_put(s, h.head, h.head_len);
    tf_stream_put(s, payload, len);
    tf_stream_put(s, h.tail, h.tail_len);
    tf_events_push(&s->ev, &ev);
    return 0;
}

static inline void
tf_stream_free(tf_stream *s)
{
    free(s->p);
    tf_events_free(&s->ev);
    memset(s, 0, sizeof *s);
}

/* ---- feeding a decoder ------------------------------------------------------------------ */

enum tf_mode {
    TF_ALL,    /* the whole stream in one chunk */
    TF_BYTES,  /* one byte at a time */
    TF_RANDOM, /* random chunks of 1..max_chunk bytes */
    TF_SPLIT,  /* [0, split) then [split, n) */
};

typedef struct tf_feed {
    int mode;
    uint64_t seed;    /* TF_RANDOM */
    size_t max_chunk; /* TF_RANDOM; 0 means up to the whole rest */
    size_t split;     /* TF_SPLIT */
    bool exact;       /* move the buffer to an exact-size allocation on every change,
                         so ASan catches reads past the end or of a stale buffer */
    bool eof;         /* finish with sm_frame_decode_eof on what is left */
} tf_feed;

static inline const char *
tf_mode_name(int mode)
{
    switch (mode) {
    case TF_ALL:
        return "all-at-once";
    case TF_BYTES:
        return "byte-by-byte";
    case TF_RANDOM:
        return "random-chunks";
    case TF_SPLIT:
        return "split";
    default:
        return "?";
    }
}

typedef struct tf_run {
    tf_events ev;        /* whole messages, in order */
    uint64_t consumed;   /* bytes consumed by sm_frame_decode/_eof */
    uint64_t skip_bytes; /* of those, consumed without a message */
    uint64_t skip_calls; /* calls that returned > 0 with msg.data == NULL */
    uint64_t skipped;    /* the decoder's skipped counter at the end */
    int err;             /* the first error sm_frame_decode returned, else 0 */
    uint64_t err_pos;    /* the decoder's err_pos then */
    size_t err_fed;      /* stream bytes fed when the error came */
    char detail[512];    /* sm_frame_decoder_detail then */
    int eof_ret;         /* sm_frame_decode_eof's result (1 if not called) */
    size_t max_buffered; /* the largest the receive buffer got */
    size_t left;         /* bytes left in the receive buffer at the end */
    size_t calls;        /* decoder calls */
    char fail[1024];     /* the first broken invariant, empty if none */
} tf_run;

static inline void
tf_run_free(tf_run *r)
{
    tf_events_free(&r->ev);
}

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static inline void
tf_fail(tf_run *r, const char *fmt, ...)
{
    if (r->fail[0]) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->fail, sizeof r->fail, fmt, ap);
    va_end(ap);
}

typedef struct tf_rx {
    uint8_t *p;
    size_t len, cap;
    bool exact;
} tf_rx;

static inline void
tf_rx_set(tf_rx *rx, uint8_t *p, size_t len, size_t cap)
{
    free(rx->p);
    rx->p = p;
    rx->len = len;
    rx->cap = cap;
}

static inline void
tf_rx_append(tf_rx *rx, const uint8_t *src, size_t n)
{
    if (rx->exact) {
        size_t len = rx->len + n;
        uint8_t *p = malloc(len ? len : 1);
        if (!p) abort();
        if (rx->len) memcpy(p, rx->p, rx->len);
        if (n) memcpy(p + rx->len, src, n);
        tf_rx_set(rx, p, len, len);
        return;
    }
    if (rx->cap - rx->len < n) {
        size_t cap = rx->cap ? rx->cap : 64;
        while (cap - rx->len < n)
            cap *= 2;
        uint8_t *p = realloc(rx->p, cap);
        if (!p) abort();
        rx->p = p;
        rx->cap = cap;
    }
    if (n) memcpy(rx->p + rx->len, src, n);
    rx->len += n;
}

static inline void
tf_rx_drop(tf_rx *rx, size_t n)
{
    if (rx->exact) {
        size_t len = rx->len - n;
        uint8_t *p = malloc(len ? len : 1);
        if (!p) abort();
        if (len) memcpy(p, rx->p + n, len);
        tf_rx_set(rx, p, len, len);
        return;
    }
    memmove(rx->p, rx->p + n, rx->len - n);
    rx->len -= n;
}

/* Something a decoder never points msg.data at: catches a decoder that returns
 * bytes consumed without setting msg. */
static const uint8_t tf_sentinel[1];

static inline bool
tf_known_error(long long v)
{
    return v == -EMSGSIZE || v == -EPROTO;
}

/* After a decoder error: check the detail and that the error is sticky. */
static inline void
tf_check_error(sm_frame_decoder *d, tf_rx *rx, tf_run *r, ssize_t n, size_t fed)
{
    r->err = (int)n;
    r->err_pos = d->err_pos;
    r->err_fed = fed;
    if (!tf_known_error(n)) {
        tf_fail(r, "sm_frame_decode returned %zd (%s)", n, sm_err_name((int)n));
        return;
    }
    if (d->err != (int)n) tf_fail(r, "decoder err field %d, returned %zd", d->err, n);
    int dl = sm_frame_decoder_detail(d, r->detail, sizeof r->detail);
    if (dl <= 0 || r->detail[0] == '\0' || strlen(r->detail) != (size_t)dl)
        tf_fail(r, "empty or inconsistent detail for %s (returned %d)", sm_err_name((int)n), dl);
    char tiny[4];
    memset(tiny, 'x', sizeof tiny);
    sm_frame_decoder_detail(d, tiny, sizeof tiny);
    if (memchr(tiny, '\0', sizeof tiny) == NULL)
        tf_fail(r, "detail not NUL-terminated when truncated");
    /* Sticky: the same bytes, no bytes. */
    sm_frame_msg m;
    ssize_t again = sm_frame_decode(d, rx->p, rx->len, &m);
    if (again != n)
        tf_fail(r, "error not sticky: %s then %s", sm_err_name((int)n), sm_err_name((int)again));
    again = sm_frame_decode(d, rx->p, 0, &m);
    if (again != n)
        tf_fail(r, "error not sticky on an empty buffer: %s then %s", sm_err_name((int)n),
                sm_err_name((int)again));
}

/* Decode until -EAGAIN or an error; returns false when the run must stop. */
static inline bool
tf_drain(sm_frame_decoder *d, tf_rx *rx, tf_run *r, size_t fed, size_t budget)
{
    const sm_frame_spec *spec = d->spec;
    uint64_t max = sm_frame_max(spec);
    for (;;) {
        if (++r->calls > budget) {
            tf_fail(r, "more than %zu decoder calls: no progress?", budget);
            return false;
        }
        sm_frame_msg m;
        memset(&m, 0, sizeof m);
        m.data = tf_sentinel;
        uint64_t before = d->pos;
        ssize_t n = sm_frame_decode(d, rx->p, rx->len, &m);
        if (n == -EAGAIN) {
            if (d->err != 0) tf_fail(r, "-EAGAIN with err field %d", d->err);
            if (spec->kind == SM_FRAME_DELIM && d->scan > rx->len)
                tf_fail(r, "scan %llu > buffered %zu", (unsigned long long)d->scan, rx->len);
            if (d->pos != before) tf_fail(r, "-EAGAIN moved pos");
            return true;
        }
        if (n < 0) {
            tf_check_error(d, rx, r, n, fed);
            return false;
        }
        if (n == 0 || (size_t)n > rx->len) {
            tf_fail(r, "sm_frame_decode returned %zd with %zu bytes buffered", n, rx->len);
            return false;
        }
        if (d->pos != before + (uint64_t)n)
            tf_fail(r, "pos %llu after consuming %zd from %llu", (unsigned long long)d->pos, n,
                    (unsigned long long)before);
        if (m.data == tf_sentinel) {
            tf_fail(r, "returned %zd without setting msg.data", n);
            return false;
        }
        if (m.data == NULL) {
            if (spec->oversize != SM_OVERSIZE_SKIP)
                tf_fail(r, "returned %zd with no message under oversize=close", n);
            r->skip_bytes += (uint64_t)n;
            r->skip_calls++;
        } else {
            const uint8_t *end = rx->p + n;
            if (m.data < rx->p || m.data > end || m.len > (size_t)(end - m.data))
                tf_fail(r, "msg.data+len outside the consumed bytes");
            else if (m.frame != rx->p || m.frame_len != (size_t)n)
                tf_fail(r, "msg.frame is not the %zd consumed bytes (frame_len %zu)", n,
                        m.frame_len);
            else if (m.len > max)
                tf_fail(r, "message of %zu bytes over max %llu", m.len, (unsigned long long)max);
            if (spec->kind == SM_FRAME_TYPE) {
                if (m.type < 0 || m.type > 255 || spec->type_map[m.type] == 0 ||
                    rx->p[0] != (uint8_t)m.type)
                    tf_fail(r, "bad msg.type %d (first byte 0x%02x)", m.type, rx->p[0]);
            } else if (spec->kind == SM_FRAME_RESP) {
                /* resp: the first byte when it is a RESP type, -1 (inline) else. */
                int t = rx->p[0] && strchr("+-:$*_#,(!=%~|>", rx->p[0]) ? rx->p[0] : -1;
                if (m.type != t) tf_fail(r, "resp msg.type %d, want %d", m.type, t);
            } else if (m.type != -1) {
                tf_fail(r, "msg.type %d, want -1", m.type);
            }
            if (!r->fail[0]) {
                tf_event ev = {
                    .frame_off = r->consumed,
                    .frame_len = (uint64_t)n,
                    .off = r->consumed + (uint64_t)(m.data - rx->p),
                    .len = m.len,
                    .type = m.type,
                };
                tf_events_push(&r->ev, &ev);
            }
        }
        if (r->fail[0]) return false;
        r->consumed += (uint64_t)n;
        tf_rx_drop(rx, (size_t)n);
    }
}

static inline void
tf_finish_eof(sm_frame_decoder *d, tf_rx *rx, tf_run *r)
{
    const sm_frame_spec *spec = d->spec;
    sm_frame_msg m;
    memset(&m, 0, sizeof m);
    m.data = tf_sentinel;
    ssize_t n = sm_frame_decode_eof(d, rx->p, rx->len, &m);
    r->eof_ret = (int)n;
    if (n < 0 && sm_frame_decoder_detail(d, r->detail, sizeof r->detail) <= 0)
        tf_fail(r, "decode_eof gave %s with no detail", sm_err_name((int)n));
    /* A type: spec whose pending type byte maps to eof framing ends like eof. */
    if (spec->kind == SM_FRAME_TYPE && rx->len > 0 && n >= 0) {
        const sm_frame_basic *b = tf_codec_for(spec, rx->p[0]);
        if (!b || b->kind != SM_FRAME_EOF || (size_t)n != rx->len || m.data == tf_sentinel ||
            m.data != rx->p + 1 || m.len != rx->len - 1 || m.frame != rx->p ||
            m.frame_len != rx->len || m.type != rx->p[0]) {
            tf_fail(r, "type: decode_eof returned %zd for %zu bytes (type 0x%02x)", n, rx->len,
                    rx->p[0]);
            return;
        }
        tf_event ev = {.frame_off = r->consumed,
                       .frame_len = m.frame_len,
                       .off = r->consumed + 1,
                       .len = m.len,
                       .type = m.type};
        tf_events_push(&r->ev, &ev);
        r->consumed += m.frame_len;
        tf_rx_drop(rx, rx->len);
        return;
    }
    if (spec->kind == SM_FRAME_EOF && n >= 0) {
        if ((size_t)n != rx->len) {
            tf_fail(r, "eof framing: decode_eof returned %zd for %zu bytes", n, rx->len);
            return;
        }
        if (m.data == tf_sentinel) {
            tf_fail(r, "eof framing: decode_eof left msg unset");
            return;
        }
        if (m.data == NULL) {
            /* Only after the whole message was skipped as oversized. */
            if (!(spec->oversize == SM_OVERSIZE_SKIP && d->skipped > 0 && n == 0))
                tf_fail(r, "eof framing: no message at EOF");
            return;
        }
        /* An empty rest is an empty message; its pointers need not be into buf. */
        bool whole = rx->len == 0 ? m.len == 0 && m.frame_len == 0
                                  : m.data == rx->p && m.len == rx->len && m.frame == rx->p &&
                                        m.frame_len == rx->len;
        if (!whole || m.type != -1) {
            tf_fail(r, "eof framing: msg is not the whole rest");
            return;
        }
        if (m.len > sm_frame_max(spec)) tf_fail(r, "eof framing: message over max");
        tf_event ev = {.frame_off = r->consumed,
                       .frame_len = m.len,
                       .off = r->consumed,
                       .len = m.len,
                       .type = -1};
        tf_events_push(&r->ev, &ev);
        r->consumed += m.len;
        tf_rx_drop(rx, rx->len);
        return;
    }
    if (spec->kind == SM_FRAME_EOF) {
        if (n != -EMSGSIZE)
            tf_fail(r, "eof framing: decode_eof returned %zd (%s)", n, sm_err_name((int)n));
        return;
    }
    if (n == 0) {
        if (rx->len != 0) tf_fail(r, "decode_eof returned 0 with %zu bytes left", rx->len);
    } else if (n != SM_ERR_TRUNCATED) {
        tf_fail(r, "decode_eof returned %zd (%s)", n, sm_err_name((int)n));
    } else if (rx->len == 0 && spec->oversize == SM_OVERSIZE_CLOSE) {
        /* Under close nothing is consumed before a whole message is there, so
         * with nothing left no message can be in progress. */
        tf_fail(r, "SM_ERR_TRUNCATED with nothing left and nothing in progress");
    }
}

/* Feed stream[0..n) to a fresh decoder for spec as `feed` says. Fills *r; check
 * r->fail first. */
static inline void
tf_decode(const sm_frame_spec *spec, const uint8_t *stream, size_t n, const tf_feed *feed,
          tf_run *r)
{
    memset(r, 0, sizeof *r);
    r->eof_ret = 1;
    sm_frame_decoder d;
    sm_frame_decoder_init(&d, spec);
    if (d.spec != spec || d.err != 0 || d.pos != 0 || d.skipped != 0) {
        tf_fail(r, "sm_frame_decoder_init left a dirty decoder");
        return;
    }
    /* Never a NULL buffer, even when empty: eof framing's empty message points into it. */
    tf_rx rx = {.p = malloc(1), .exact = feed->exact};
    if (!rx.p) abort();
    uint64_t rng = feed->seed;
    size_t fed = 0, chunks = 0;
    bool stopped = false;
    /* Every successful call consumes a byte; every -EAGAIN ends a chunk. */
    size_t budget = 2 * n + 16;
    while (fed < n && !stopped) {
        size_t rest = n - fed, c = rest;
        switch (feed->mode) {
        case TF_BYTES:
            c = 1;
            break;
        case TF_RANDOM: {
            size_t top = feed->max_chunk && feed->max_chunk < rest ? feed->max_chunk : rest;
            c = (size_t)tf_range(&rng, 1, top);
            break;
        }
        case TF_SPLIT:
            if (fed < feed->split && feed->split < n) c = feed->split - fed;
            break;
        default:
            break;
        }
        tf_rx_append(&rx, stream + fed, c);
        fed += c;
        chunks++;
        budget += 2;
        if (rx.len > r->max_buffered) r->max_buffered = rx.len;
        stopped = !tf_drain(&d, &rx, r, fed, budget);
    }
    if (n == 0 && !feed->eof) {
        /* Nothing to feed: one call on an empty buffer must say "need more". */
        sm_frame_msg m;
        uint8_t none[1];
        ssize_t e = sm_frame_decode(&d, none, 0, &m);
        if (e != -EAGAIN) tf_fail(r, "empty buffer gave %zd (%s)", e, sm_err_name((int)e));
    }
    if (r->err) {
        /* Sticky, also with more bytes and at EOF. */
        static const uint8_t more[] = "\n\r\n\0,0123456789:abc";
        tf_rx_append(&rx, more, sizeof more);
        sm_frame_msg m;
        ssize_t e = sm_frame_decode(&d, rx.p, rx.len, &m);
        if (e != r->err)
            tf_fail(r, "error not sticky with more bytes: %s then %s", sm_err_name(r->err),
                    sm_err_name((int)e));
        e = sm_frame_decode_eof(&d, rx.p, rx.len, &m);
        if (e != r->err)
            tf_fail(r, "error not sticky at EOF: %s then %s", sm_err_name(r->err),
                    sm_err_name((int)e));
        r->eof_ret = (int)e;
    } else if (!r->fail[0] && feed->eof) {
        tf_finish_eof(&d, &rx, r);
    }
    r->skipped = d.skipped;
    r->left = rx.len;
    free(rx.p);
    (void)chunks;
}

/* Whether two runs over the same stream agree: the same messages, the same
 * error at the same stream offset, the same number of skipped messages and the
 * same result at EOF. Chunking must not change any of these. */
static inline bool
tf_runs_agree(const tf_run *a, const tf_run *b, char *why, size_t why_len)
{
    if (!tf_events_equal(&a->ev, &b->ev, why, why_len)) return false;
    if (a->err != b->err) {
        snprintf(why, why_len, "error %s vs %s", sm_err_name(a->err), sm_err_name(b->err));
        return false;
    }
    if (a->err && a->err_pos != b->err_pos) {
        snprintf(why, why_len, "err_pos %llu vs %llu", (unsigned long long)a->err_pos,
                 (unsigned long long)b->err_pos);
        return false;
    }
    if (a->skipped != b->skipped) {
        snprintf(why, why_len, "skipped %llu vs %llu", (unsigned long long)a->skipped,
                 (unsigned long long)b->skipped);
        return false;
    }
    if (a->eof_ret != b->eof_ret) {
        snprintf(why, why_len, "decode_eof %s vs %s", sm_err_name(a->eof_ret),
                 sm_err_name(b->eof_ret));
        return false;
    }
    return true;
}

#endif
