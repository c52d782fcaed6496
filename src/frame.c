/* Framing codecs: the incremental decoders (the encoders are in
 * frame_encode.c).
 *
 * Every decoder looks at the caller's buffer and nothing else: the only state
 * carried between calls is in sm_frame_decoder (how far a delimiter search got,
 * how much of an oversized message is left to discard, the sticky error). A
 * frame is described by its basic codec plus `pre`, the bytes in front of the
 * codec's own header (the type byte of type: specs), so one set of decoders
 * serves both top-level and nested specs. */
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sockmsg/error.h>
#include <sockmsg/frame.h>
#include "frame_internal.h"

#define LIKELY(x)   __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)

/* d->flags */
enum {
    F_SKIP_LEN = 1,   /* discarding d->skip more bytes of an oversized message */
    F_SKIP_COMMA = 2, /* ... the last of which must be a netstring's ',' */
    F_SKIP_DELIM = 4, /* discarding through the next delimiter */
    F_SKIP_EOF = 8,   /* discarding everything until EOF */
    F_EOF_DONE = 16,  /* eof framing: the final message has been delivered */
};
#define F_SKIPPING (F_SKIP_LEN | F_SKIP_DELIM | F_SKIP_EOF)

/* d->err_why. After an error, d->scan holds the value involved (a length, the
 * bytes pending at EOF) and d->skip the type byte + 1 when the failing frame
 * was a type: entry, so detail can name the nested codec. */
enum {
    W_NONE,
    W_LEN_MAX,
    W_DELIM_MAX,
    W_EOF_MAX,
    W_NOT_DIGIT,
    W_NS_ZERO,
    W_NS_OVERFLOW,
    W_NS_COMMA,
    W_VARINT_LONG,
    W_VARINT_OVERFLOW,
    W_ADJUST,
    W_TYPE,
    W_TRUNCATED,
    W_TRUNCATED_SKIP,
};

static const uint8_t empty_payload[1];

static ssize_t
fail(sm_frame_decoder *d, int err, uint8_t why, uint64_t pos, uint8_t byte, uint64_t value,
     const uint8_t *buf, size_t pre)
{
    d->err = err;
    d->err_why = why;
    d->err_pos = pos;
    d->err_byte = byte;
    d->scan = value;
    d->skip = pre ? (uint64_t)buf[0] + 1 : 0;
    d->flags &= (uint8_t) ~(F_SKIPPING | F_SKIP_COMMA);
    return err;
}

static inline ssize_t
deliver(const uint8_t *buf, size_t frame_len, size_t head, uint64_t len, sm_frame_msg *msg)
{
    msg->data = buf + head;
    msg->len = (size_t)len;
    msg->frame = buf;
    msg->frame_len = frame_len;
    msg->type = -1;
    return (ssize_t)frame_len;
}

static ssize_t
discarded(size_t n, const uint8_t *buf, sm_frame_msg *msg)
{
    msg->data = NULL;
    msg->len = 0;
    msg->frame = buf;
    msg->frame_len = n;
    msg->type = -1;
    return (ssize_t)n;
}

/* An oversized length-prefixed message under oversize=skip: consume its header
 * and whatever of the body (plus a netstring's ',') is already here. */
static ssize_t
skip_start(sm_frame_decoder *d, const uint8_t *buf, size_t len, size_t head, uint64_t body,
           bool comma, sm_frame_msg *msg)
{
    uint64_t total = body + comma; /* a netstring body is < UINT64_MAX */
    uint64_t avail = len - head;
    d->skipped++;
    if (avail >= total) {
        if (comma && buf[head + body] != ',')
            return fail(d, -EPROTO, W_NS_COMMA, d->pos + head + body, buf[head + body], 0, buf, 0);
        return discarded(head + (size_t)total, buf, msg);
    }
    d->skip = total - avail;
    d->flags |= F_SKIP_LEN | (comma ? F_SKIP_COMMA : 0);
    return discarded(len, buf, msg);
}

static ssize_t
skip_more(sm_frame_decoder *d, const uint8_t *buf, size_t len, sm_frame_msg *msg)
{
    if (len == 0) return -EAGAIN;
    size_t n = d->skip < len ? (size_t)d->skip : len;
    if (n == d->skip) {
        if ((d->flags & F_SKIP_COMMA) && buf[n - 1] != ',')
            return fail(d, -EPROTO, W_NS_COMMA, d->pos + n - 1, buf[n - 1], 0, buf, 0);
        d->flags &= (uint8_t) ~(F_SKIP_LEN | F_SKIP_COMMA);
    }
    d->skip -= n;
    return discarded(n, buf, msg);
}

/* The first start in [s, last] of the delimiter in p, or -1. The caller
 * guarantees last + dl bytes are readable. Multi-byte delimiters are found by
 * memchr on their first byte, which runs at memory speed when that byte is
 * rare (crlf in text); if it keeps matching without the rest following, the
 * data is adversarial for that strategy and memmem (linear worst case) takes
 * over. */
static inline ssize_t
find_delim(const uint8_t *p, size_t s, size_t last, const uint8_t *delim, size_t dl)
{
    const uint8_t *hit;
    if (dl == 1) {
        hit = memchr(p + s, delim[0], last + 1 - s);
        return hit ? hit - p : -1;
    }
    for (int misses = 0; misses < 8 && s <= last; misses++) {
        hit = memchr(p + s, delim[0], last + 1 - s);
        if (!hit) return -1;
        if (memcmp(hit + 1, delim + 1, dl - 1) == 0) return hit - p;
        s = (size_t)(hit - p) + 1;
    }
    if (s > last) return -1;
    hit = memmem(p + s, last + dl - s, delim, dl);
    return hit ? hit - p : -1;
}

/* oversize=skip for a delimiter: discard through the next delimiter. d->scan
 * says how much of buf[pre..) was already searched. */
static ssize_t
skip_delim(sm_frame_decoder *d, const sm_frame_basic *b, const uint8_t *buf, size_t len, size_t pre,
           sm_frame_msg *msg)
{
    const uint8_t *p = buf + pre;
    size_t n = len - pre, dl = b->delim_len, keep = dl - 1;
    size_t s = d->scan > keep ? (size_t)d->scan - keep : 0;
    if (n >= dl && s <= n - dl) {
        ssize_t i = find_delim(p, s, n - dl, b->delim, dl);
        if (i >= 0) {
            d->flags &= (uint8_t)~F_SKIP_DELIM;
            d->scan = 0;
            return discarded(pre + (size_t)i + dl, buf, msg);
        }
    }
    if (n <= keep) {
        d->scan = n;
        return pre ? discarded(pre, buf, msg) : -EAGAIN;
    }
    /* Keep the last dl-1 bytes: they may begin the delimiter. */
    d->scan = keep;
    return discarded(len - keep, buf, msg);
}

static ssize_t
oversize(sm_frame_decoder *d, uint8_t why, uint64_t value, const uint8_t *buf, size_t pre)
{
    return fail(d, -EMSGSIZE, why, d->pos + pre, 0, value, buf, pre);
}

static inline ssize_t
dec_fixed(const sm_frame_basic *b, const uint8_t *buf, size_t len, size_t pre, sm_frame_msg *msg)
{
    if (len - pre < b->fixed_len) return -EAGAIN;
    return deliver(buf, pre + (size_t)b->fixed_len, pre, b->fixed_len, msg);
}

static inline ssize_t
dec_length(sm_frame_decoder *d, const sm_frame_basic *b, uint64_t max, const uint8_t *buf,
           size_t len, size_t pre, sm_frame_msg *msg)
{
    size_t head = pre + b->len_offset + b->len_width;
    if (len < head) return -EAGAIN;
    uint64_t field = sm__load_len(buf + pre + b->len_offset, b->len_width, b->len_little);
    uint64_t n = field;
    if (UNLIKELY(b->len_adjust != 0)) {
        if (b->len_adjust > 0) {
            if (field < (uint64_t)b->len_adjust)
                return fail(d, -EPROTO, W_ADJUST, d->pos + pre, 0, field, buf, pre);
            n = field - (uint64_t)b->len_adjust;
        } else {
            uint64_t a = (uint64_t)(-(b->len_adjust + 1)) + 1;
            n = field + a;
            if (n < field) n = UINT64_MAX; /* wrapped: certainly over max */
        }
    }
    if (UNLIKELY(n > max)) {
        if (d->spec->oversize == SM_OVERSIZE_SKIP) return skip_start(d, buf, len, head, n, 0, msg);
        return oversize(d, W_LEN_MAX, field, buf, pre);
    }
    if (len - head < n) return -EAGAIN;
    return deliver(buf, head + (size_t)n, head, n, msg);
}

/* Eight ASCII decimal digits at p as a number, if they all are digits. */
static inline bool
digits8(const uint8_t *p, uint64_t *out)
{
    const uint64_t hi = 0xf0f0f0f0f0f0f0f0u, zeros = 0x3030303030303030u;
    uint64_t x;
    memcpy(&x, p, 8);
    x = le64toh(x);
    /* Every byte 0x30..0x39: high nibble 3, and adding 6 keeps it 3. */
    if ((x & hi) != zeros || ((x + 0x0606060606060606u) & hi) != zeros) return false;
    x -= zeros;
    x = (x * 10 + (x >> 8)) & 0x00ff00ff00ff00ffu;
    x = (x * 100 + (x >> 16)) & 0x0000ffff0000ffffu;
    x = (x * 10000 + (x >> 32)) & 0xffffffffu;
    *out = x;
    return true;
}

static ssize_t
dec_ascii(sm_frame_decoder *d, const sm_frame_basic *b, uint64_t max, const uint8_t *buf,
          size_t len, size_t pre, sm_frame_msg *msg)
{
    size_t digits = b->ascii_digits, off = pre + b->len_offset;
    if (len < off) return -EAGAIN;
    size_t avail = len - off;
    if (avail > digits) avail = digits;
    uint64_t v = 0, eight;
    size_t i = 0;
    /* Eight digits at a time while no overflow is possible (19 digits fit);
     * on a non-digit the byte loop below finds and reports it. */
    while (i + 8 <= avail && i + 8 <= 19 && digits8(buf + off + i, &eight)) {
        v = v * 100000000 + eight;
        i += 8;
    }
    for (; i < avail; i++) {
        unsigned dig = (unsigned)buf[off + i] - '0';
        if (dig > 9)
            return fail(d, -EPROTO, W_NOT_DIGIT, d->pos + off + i, buf[off + i], 0, buf, pre);
        /* Only a 20th digit can overflow 64 bits. */
        if (UNLIKELY(i == 19) && v > (UINT64_MAX - dig) / 10)
            v = UINT64_MAX;
        else
            v = v * 10 + dig;
    }
    if (avail < digits) return -EAGAIN;
    size_t head = off + digits;
    if (v > max) {
        if (d->spec->oversize == SM_OVERSIZE_SKIP) return skip_start(d, buf, len, head, v, 0, msg);
        return oversize(d, W_LEN_MAX, v, buf, pre);
    }
    if (len - head < v) return -EAGAIN;
    return deliver(buf, head + (size_t)v, head, v, msg);
}

static ssize_t
dec_netstring(sm_frame_decoder *d, const sm_frame_basic *b, uint64_t max, const uint8_t *buf,
              size_t len, size_t pre, sm_frame_msg *msg)
{
    size_t off = pre + b->len_offset;
    if (len < off) return -EAGAIN;
    const uint8_t *p = buf + off;
    size_t avail = len - off, i;
    uint64_t v = 0;
    for (i = 0; i < avail; i++) {
        uint8_t c = p[i];
        if (c == ':' && i > 0) break;
        if (c < '0' || c > '9')
            return fail(d, -EPROTO, W_NOT_DIGIT, d->pos + off + i, c, 0, buf, pre);
        if (i == 1 && p[0] == '0')
            return fail(d, -EPROTO, W_NS_ZERO, d->pos + off, '0', 0, buf, pre);
        unsigned dig = (unsigned)(c - '0');
        /* UINT64_MAX itself is refused too: the ',' after it would be unaddressable. */
        if (v > (UINT64_MAX - 1 - dig) / 10)
            return fail(d, -EPROTO, W_NS_OVERFLOW, d->pos + off, 0, 0, buf, pre);
        v = v * 10 + dig;
    }
    if (i == avail) return -EAGAIN;
    size_t head = off + i + 1;
    if (v > max) {
        if (d->spec->oversize == SM_OVERSIZE_SKIP) return skip_start(d, buf, len, head, v, 1, msg);
        return oversize(d, W_LEN_MAX, v, buf, pre);
    }
    if (len - head <= v) return -EAGAIN;
    uint8_t c = buf[head + v];
    if (c != ',') return fail(d, -EPROTO, W_NS_COMMA, d->pos + head + v, c, 0, buf, pre);
    return deliver(buf, head + (size_t)v + 1, head, v, msg);
}

static ssize_t
dec_varint(sm_frame_decoder *d, const sm_frame_basic *b, uint64_t max, const uint8_t *buf,
           size_t len, size_t pre, sm_frame_msg *msg)
{
    size_t off = pre + b->len_offset;
    if (len < off) return -EAGAIN;
    const uint8_t *p = buf + off;
    size_t avail = len - off, i;
    uint64_t v = 0;
    if (avail > 10) avail = 10;
    for (i = 0; i < avail; i++) {
        uint8_t c = p[i];
        if (i == 9) {
            if (c & 0x80) return fail(d, -EPROTO, W_VARINT_LONG, d->pos + off, c, 0, buf, pre);
            if (c > 1) return fail(d, -EPROTO, W_VARINT_OVERFLOW, d->pos + off, c, 0, buf, pre);
        }
        v |= (uint64_t)(c & 0x7f) << (7 * i);
        if (!(c & 0x80)) break;
    }
    if (i == avail) return -EAGAIN;
    size_t head = off + i + 1;
    if (v > max) {
        if (d->spec->oversize == SM_OVERSIZE_SKIP) return skip_start(d, buf, len, head, v, 0, msg);
        return oversize(d, W_LEN_MAX, v, buf, pre);
    }
    if (len - head < v) return -EAGAIN;
    return deliver(buf, head + (size_t)v, head, v, msg);
}

static inline ssize_t
dec_delim(sm_frame_decoder *d, const sm_frame_basic *b, uint64_t max, const uint8_t *buf,
          size_t len, size_t pre, sm_frame_msg *msg)
{
    const uint8_t *p = buf + pre;
    size_t n = len - pre, dl = b->delim_len;
    if (n >= dl) {
        size_t s = d->scan > dl - 1 ? (size_t)d->scan - (dl - 1) : 0;
        size_t last = n - dl;
        if (last > max) last = (size_t)max;
        if (s <= last) {
            ssize_t i = find_delim(p, s, last, b->delim, dl);
            if (i >= 0) {
                d->scan = 0;
                return deliver(buf, pre + (size_t)i + dl, pre, (size_t)i, msg);
            }
        }
        if (n - dl >= max) {
            if (d->spec->oversize == SM_OVERSIZE_SKIP) {
                d->skipped++;
                d->flags |= F_SKIP_DELIM;
                d->err_byte = pre ? buf[0] : 0;
                /* Every start up to max was tried: resume the search after it. */
                d->scan = max + dl;
                return skip_delim(d, b, buf, len, pre, msg);
            }
            return oversize(d, W_DELIM_MAX, 0, buf, pre);
        }
    }
    d->scan = n;
    return -EAGAIN;
}

static ssize_t
dec_eof(sm_frame_decoder *d, uint64_t max, const uint8_t *buf, size_t len, size_t pre,
        sm_frame_msg *msg)
{
    if (len - pre <= max) return -EAGAIN;
    if (d->spec->oversize == SM_OVERSIZE_SKIP) {
        d->skipped++;
        d->flags |= F_SKIP_EOF;
        return discarded(len, buf, msg);
    }
    return oversize(d, W_EOF_MAX, 0, buf, pre);
}

static ssize_t
dec_basic(sm_frame_decoder *d, const sm_frame_basic *b, uint64_t max, const uint8_t *buf,
          size_t len, size_t pre, sm_frame_msg *msg)
{
    switch (b->kind) {
    case SM_FRAME_FIXED:
        return dec_fixed(b, buf, len, pre, msg);
    case SM_FRAME_DELIM:
        return dec_delim(d, b, max, buf, len, pre, msg);
    case SM_FRAME_LENGTH:
        return dec_length(d, b, max, buf, len, pre, msg);
    case SM_FRAME_ASCII:
        return dec_ascii(d, b, max, buf, len, pre, msg);
    case SM_FRAME_NETSTRING:
        return dec_netstring(d, b, max, buf, len, pre, msg);
    case SM_FRAME_VARINT:
        return dec_varint(d, b, max, buf, len, pre, msg);
    case SM_FRAME_EOF:
        return dec_eof(d, max, buf, len, pre, msg);
    case SM_FRAME_RESP:
        return sm__frame_dec_resp(d, b, max, buf, len, msg);
    default:
        return -EINVAL;
    }
}

static ssize_t
dec_type(sm_frame_decoder *d, uint64_t max, const uint8_t *buf, size_t len, sm_frame_msg *msg)
{
    if (len == 0) return -EAGAIN;
    const sm_frame_basic *b = sm__frame_type_entry(d->spec, buf[0]);
    if (!b) return fail(d, -EPROTO, W_TYPE, d->pos, buf[0], 0, buf, 0);
    ssize_t r = dec_basic(d, b, max, buf, len, 1, msg);
    if (r > 0 && msg->data) msg->type = buf[0];
    return r;
}

/* Errors and skipping: everything off the common path. */
static ssize_t
decode_special(sm_frame_decoder *d, const uint8_t *buf, size_t len, sm_frame_msg *msg)
{
    if (d->err) return d->err;
    if (d->flags & F_SKIP_LEN) return skip_more(d, buf, len, msg);
    if (d->flags & F_SKIP_EOF) return len ? discarded(len, buf, msg) : -EAGAIN;
    if (d->flags & F_SKIP_DELIM) {
        const sm_frame_spec *spec = d->spec;
        const sm_frame_basic *b =
            spec->kind == SM_FRAME_TYPE ? sm__frame_type_entry(spec, d->err_byte) : &spec->basic;
        return skip_delim(d, b, buf, len, 0, msg);
    }
    return -EAGAIN;
}

void
sm_frame_decoder_init(sm_frame_decoder *d, const sm_frame_spec *spec)
{
    memset(d, 0, sizeof(*d));
    d->spec = spec;
}

ssize_t
sm_frame_decode(sm_frame_decoder *d, const uint8_t *buf, size_t len, sm_frame_msg *msg)
{
    ssize_t r;
    /* An empty caller buffer may be NULL (an unallocated sm_buf): decoders do
     * pointer arithmetic on buf, and NULL + 0 is undefined behaviour. */
    if (UNLIKELY(!buf)) {
        if (len) return -EINVAL;
        buf = (const uint8_t *)"";
    }
    if (UNLIKELY(d->err | (d->flags & F_SKIPPING))) {
        r = decode_special(d, buf, len, msg);
    } else {
        const sm_frame_spec *spec = d->spec;
        uint64_t max = spec->max ? spec->max : SM_FRAME_DEFAULT_MAX;
        switch (spec->kind) {
        case SM_FRAME_LENGTH:
            r = dec_length(d, &spec->basic, max, buf, len, 0, msg);
            break;
        case SM_FRAME_DELIM:
            r = dec_delim(d, &spec->basic, max, buf, len, 0, msg);
            break;
        case SM_FRAME_FIXED:
            r = dec_fixed(&spec->basic, buf, len, 0, msg);
            break;
        case SM_FRAME_TYPE:
            r = dec_type(d, max, buf, len, msg);
            break;
        default:
            r = dec_basic(d, &spec->basic, max, buf, len, 0, msg);
            break;
        }
    }
    if (r > 0) d->pos += (uint64_t)r;
    return r;
}

ssize_t
sm_frame_decode_eof(sm_frame_decoder *d, const uint8_t *buf, size_t len, sm_frame_msg *msg)
{
    if (d->err) return d->err;
    if (!buf) { /* as in sm_frame_decode: no arithmetic on NULL */
        if (len) return -EINVAL;
        buf = (const uint8_t *)"";
    }
    const sm_frame_spec *spec = d->spec;
    uint64_t max = sm_frame_max(spec);
    /* A 0 return must not leave a stale message behind: callers tell "clean
     * EOF" from "empty eof message" by msg->data. */
    discarded(0, NULL, msg);
    if (d->flags & F_SKIP_EOF) {
        if (len == 0) return 0;
        d->pos += len;
        return discarded(len, buf, msg);
    }
    size_t pre = 0;
    bool whole_rest = spec->kind == SM_FRAME_EOF;
    if (spec->kind == SM_FRAME_TYPE && len > 0 && !(d->flags & F_SKIPPING)) {
        const sm_frame_basic *b = sm__frame_type_entry(spec, buf[0]);
        if (b && b->kind == SM_FRAME_EOF) {
            whole_rest = true;
            pre = 1;
        }
    }
    if (whole_rest) {
        if (len == 0 && (d->flags & F_EOF_DONE)) return 0;
        if (len - pre > max) {
            ssize_t r = dec_eof(d, max, buf, len, pre, msg);
            if (r > 0) d->pos += (uint64_t)r;
            return r;
        }
        d->flags |= F_EOF_DONE;
        d->pos += len;
        if (len == 0) buf = empty_payload;
        deliver(buf, len, pre, len - pre, msg);
        if (pre) msg->type = buf[0];
        return (ssize_t)len;
    }
    if (len == 0) {
        if (d->flags & F_SKIPPING)
            return fail(d, SM_ERR_TRUNCATED, W_TRUNCATED_SKIP, d->pos, 0, 0, NULL, 0);
        return 0;
    }
    ssize_t r = sm_frame_decode(d, buf, len, msg);
    if (r != -EAGAIN) return r;
    return fail(d, SM_ERR_TRUNCATED, W_TRUNCATED, d->pos, 0, len, NULL, 0);
}

static const char *
printable(uint8_t c, char *tmp)
{
    if (c >= 0x20 && c < 0x7f) {
        tmp[0] = ' ';
        tmp[1] = '\'';
        tmp[2] = (char)c;
        tmp[3] = '\'';
        tmp[4] = '\0';
    } else {
        tmp[0] = '\0';
    }
    return tmp;
}

int
sm_frame_decoder_detail(const sm_frame_decoder *d, char *out, size_t out_len)
{
    if (out_len == 0) return 0;
    out[0] = '\0';
    if (!d->err) return 0;

    const sm_frame_spec *spec = d->spec;
    const sm_frame_basic *b = &spec->basic;
    char name[96], where[64] = "", ch[8];
    int t = -1;
    if (spec->kind == SM_FRAME_TYPE && d->skip > 0 && d->skip <= 256) {
        t = (int)d->skip - 1;
        b = sm__frame_type_entry(spec, (uint8_t)t);
        if (!b) b = &spec->basic;
    }
    if (b->kind == SM_FRAME_TYPE)
        snprintf(name, sizeof(name), "type:");
    else
        sm__frame_basic_format(b, name, sizeof(name));
    if (t >= 0) snprintf(where, sizeof(where), " of type 0x%02x%s", t, printable((uint8_t)t, ch));

    uint64_t max = sm_frame_max(spec), v = d->scan, pos = d->err_pos;
    uint8_t c = d->err_byte;
    int n;
    switch (d->err_why) {
    case W_LEN_MAX:
        if (b->kind == SM_FRAME_LENGTH && b->len_adjust != 0)
            n = snprintf(out, out_len,
                         "length field %" PRIu64 " (adjust=%" PRId64 ") exceeds max %" PRIu64
                         " (%s header%s at stream offset %" PRIu64 ")",
                         v, b->len_adjust, max, name, where, pos);
        else if (v == UINT64_MAX && b->kind == SM_FRAME_ASCII)
            n = snprintf(out, out_len,
                         "length over 18446744073709551614 exceeds max %" PRIu64
                         " (%s header%s at stream offset %" PRIu64 ")",
                         max, name, where, pos);
        else
            n = snprintf(out, out_len,
                         "length %" PRIu64 " exceeds max %" PRIu64
                         " (%s header%s at stream offset %" PRIu64 ")",
                         v, max, name, where, pos);
        break;
    case W_DELIM_MAX:
        n = snprintf(out, out_len,
                     "no delimiter within max %" PRIu64
                     " bytes (%s frame%s at stream offset %" PRIu64 ")",
                     max, name, where, pos);
        break;
    case W_EOF_MAX:
        n = snprintf(out, out_len,
                     "message exceeds max %" PRIu64
                     " bytes before EOF (%s%s at stream offset %" PRIu64 ")",
                     max, name, where, pos);
        break;
    case W_NOT_DIGIT:
        n = snprintf(out, out_len,
                     "byte 0x%02x%s at stream offset %" PRIu64 " is not a digit (%s header%s)", c,
                     printable(c, ch), pos, name, where);
        break;
    case W_NS_ZERO:
        n = snprintf(out, out_len,
                     "netstring length at stream offset %" PRIu64 " has a leading zero%s", pos,
                     where);
        break;
    case W_NS_OVERFLOW:
        n = snprintf(out, out_len,
                     "netstring length at stream offset %" PRIu64 " overflows 64 bits%s", pos,
                     where);
        break;
    case W_NS_COMMA:
        n = snprintf(out, out_len,
                     "byte 0x%02x%s at stream offset %" PRIu64
                     " should be the ',' that ends a netstring%s",
                     c, printable(c, ch), pos, where);
        break;
    case W_VARINT_LONG:
        n = snprintf(out, out_len,
                     "varint length at stream offset %" PRIu64 " is longer than 10 bytes%s", pos,
                     where);
        break;
    case W_VARINT_OVERFLOW:
        n = snprintf(out, out_len,
                     "varint length at stream offset %" PRIu64
                     " overflows 64 bits (10th byte 0x%02x)%s",
                     pos, c, where);
        break;
    case W_ADJUST:
        n = snprintf(out, out_len,
                     "length field %" PRIu64 " is less than adjust=%" PRId64
                     " (%s header%s at stream offset %" PRIu64 ")",
                     v, b->len_adjust, name, where, pos);
        break;
    case W_TYPE:
        n = snprintf(out, out_len, "byte 0x%02x%s at stream offset %" PRIu64 " is not a known type",
                     c, printable(c, ch), pos);
        break;
    case W_TRUNCATED_SKIP:
        n = snprintf(
            out, out_len,
            "stream ended while discarding an oversized message (stream offset %" PRIu64 ")", pos);
        break;
    case W_TRUNCATED:
        n = snprintf(out, out_len,
                     "stream ended inside a message (%" PRIu64
                     " bytes pending at stream offset %" PRIu64 ")",
                     v, pos);
        break;
    default:
        if (d->err_why >= SM__W_RESP_FIRST)
            n = sm__frame_resp_detail(d, out, out_len);
        else
            n = snprintf(out, out_len, "%s", sm_strerror(d->err));
        break;
    }
    if (n < 0) return 0;
    return (size_t)n >= out_len ? (int)(out_len - 1) : n;
}
