/* Private to the framing module (frame.c, frame_spec.c), plus the inline
 * fast path of sm_frame_decode that the stream's read loop uses. */
#ifndef SM_FRAME_INTERNAL_H
#define SM_FRAME_INTERNAL_H

#include <endian.h>
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include <sockmsg/frame.h>

/* The length field at p. */
static inline uint64_t
sm__load_len(const uint8_t *p, unsigned width, bool little)
{
    switch (width) {
    case 1:
        return p[0];
    case 2: {
        uint16_t v;
        memcpy(&v, p, 2);
        return little ? le16toh(v) : be16toh(v);
    }
    case 4: {
        uint32_t v;
        memcpy(&v, p, 4);
        return little ? le32toh(v) : be32toh(v);
    }
    default: {
        uint64_t v;
        memcpy(&v, p, 8);
        return little ? le64toh(v) : be64toh(v);
    }
    }
}

/* A spec sm__frame_decode_fast handles itself: a length prefix with no
 * offset and no adjustment (len32be and friends). Checked once per batch. */
static inline bool
sm__frame_plain_len(const sm_frame_spec *spec)
{
    return spec->kind == SM_FRAME_LENGTH && spec->len_offset == 0 && spec->len_adjust == 0;
}

/* sm__frame_decode_fast for a one- or two-byte delimiter (line, crlf) with
 * nothing searched yet (d->scan 0): one memchr finds the frame's end, or
 * says it has not arrived (what dec_delim in frame.c concludes from the
 * same search). A first byte not followed by the second, a frame reaching
 * max and a short buffer go to sm_frame_decode. */
static inline ssize_t
sm__frame_decode_delim(sm_frame_decoder *d, uint64_t max, const uint8_t *buf, size_t len,
                       sm_frame_msg *msg)
{
    const sm_frame_basic *b = &d->spec->basic;
    size_t dl = b->delim_len;
    if ((dl == 1 || dl == 2) && len >= dl) {
        size_t last = len - dl;
        if (last > max) last = (size_t)max;
        const uint8_t *hit = memchr(buf, b->delim[0], last + 1);
        if (!hit && len - dl < max) {
            d->scan = len;
            return -EAGAIN;
        }
        if (hit && (dl == 1 || hit[1] == b->delim[1])) {
            size_t i = (size_t)(hit - buf);
            msg->data = buf;
            msg->len = i;
            msg->frame = buf;
            msg->frame_len = i + dl;
            msg->type = -1;
            d->pos += i + dl;
            return (ssize_t)(i + dl);
        }
    }
    return sm_frame_decode(d, buf, len, msg);
}

/* sm_frame_decode, with the common cases inline for a loop over many small
 * frames: plain is sm__frame_plain_len(d->spec), max sm_frame_max(d->spec).
 * Anything unusual (a decoder with state, an oversized length) goes to
 * sm_frame_decode, so the results are the same. */
static inline ssize_t
sm__frame_decode_fast(sm_frame_decoder *d, bool plain, uint64_t max, const uint8_t *buf, size_t len,
                      sm_frame_msg *msg)
{
    if (!plain && !(d->err | d->flags | d->scan) && d->spec->kind == SM_FRAME_DELIM)
        return sm__frame_decode_delim(d, max, buf, len, msg);
    if (plain && !(d->err | d->flags)) {
        unsigned w = d->spec->len_width;
        if (len < w) return -EAGAIN;
        uint64_t n = sm__load_len(buf, w, d->spec->len_little);
        if (n <= max) {
            if (len - w < n) return -EAGAIN;
            msg->data = buf + w;
            msg->len = (size_t)n;
            msg->frame = buf;
            msg->frame_len = w + (size_t)n;
            msg->type = -1;
            d->pos += w + n;
            return (ssize_t)(w + n);
        }
    }
    return sm_frame_decode(d, buf, len, msg);
}

/* Make d decode with spec from the next byte on: a framing switch at a
 * message boundary (the bytes still buffered are then decoded with spec).
 * The stream position and the skipped count go on. -EBUSY while an
 * oversized message is being discarded (not a boundary), the sticky error
 * after a framing error. */
static inline int
sm__frame_decoder_switch(sm_frame_decoder *d, const sm_frame_spec *spec)
{
    if (d->err) return d->err;
    if (d->flags) return -EBUSY;
    uint64_t pos = d->pos, skipped = d->skipped;
    sm_frame_decoder_init(d, spec);
    d->pos = pos;
    d->skipped = skipped;
    return 0;
}

/* Heartbeat pings, shared by streams and the thread-model server. */

/* m is the ping: the same payload and, for type: specs, type byte. */
static inline bool
sm__ping_matches(const sm_frame_spec *spec, const void *ping, size_t len, int type,
                 const sm_frame_msg *m)
{
    if (m->len != len) return false;
    if (spec->kind == SM_FRAME_TYPE && m->type != type) return false;
    return len == 0 || memcmp(m->data, ping, len) == 0;
}

/* Why spec cannot carry this ping (sent, with `sending`, or only recognised),
 * or NULL when it can. */
static inline const char *
sm__ping_unframable(const sm_frame_spec *spec, const void *ping, size_t len, int type, bool sending)
{
    if (sending && spec->kind == SM_FRAME_EOF) return "eof framing cannot carry heartbeat pings";
    sm_frame_hdr h;
    if (sm_frame_encode(spec, ping ? ping : "", len, type, &h) < 0)
        return "the ping cannot be framed with this spec";
    return NULL;
}

/* Write the spec string of one basic codec ("len16be,adjust=2", "ascii:5",
 * "delim:\r\n" spelled as "crlf") without max= or oversize=. Returns the
 * length it needs (like snprintf); out is NUL-terminated when out_len > 0. */
size_t sm__frame_basic_format(const sm_frame_basic *b, char *out, size_t out_len);

/* The codecs that take offset=N: those with a length header that the offset
 * bytes can precede. (fixed:N counts every byte already; delimiters, eof and
 * resp have no header to put bytes before.) */
static inline bool
sm__frame_has_offset(sm_frame_kind k)
{
    return k == SM_FRAME_LENGTH || k == SM_FRAME_VARINT || k == SM_FRAME_ASCII ||
           k == SM_FRAME_NETSTRING;
}

/* resp (frame_resp.c). Its d->err_why codes start at SM__W_RESP_FIRST. */
enum {
    SM__W_RESP_FIRST = 64,
    SM__W_RESP_MAX = SM__W_RESP_FIRST,
    SM__W_RESP_TYPE,
    SM__W_RESP_LF,
    SM__W_RESP_BODY,
    SM__W_RESP_LINE,
    SM__W_RESP_DEPTH,
    SM__W_RESP_BULK,
    SM__W_RESP_COUNT,
};
ssize_t sm__frame_dec_resp(sm_frame_decoder *d, const sm_frame_basic *b, uint64_t max,
                           const uint8_t *buf, size_t len, sm_frame_msg *msg);
/* The detail line of a resp error (snprintf's return). */
int sm__frame_resp_detail(const sm_frame_decoder *d, char *out, size_t out_len);
/* sm_frame_encode for resp: the payload must be exactly one message (NULL:
 * not checked). 0, -EMSGSIZE or -EINVAL. */
int sm__frame_resp_check(const sm_frame_spec *spec, const void *payload, size_t len);

/* The entry of a type: spec for type byte t, or NULL when t is not in it. */
static inline const sm_frame_basic *
sm__frame_type_entry(const sm_frame_spec *spec, uint8_t t)
{
    uint8_t idx = spec->type_map[t];
    return idx ? &spec->types[idx - 1] : NULL;
}

/* A type byte or delimiter byte that a spec string may carry as itself
 * (anything else is written as a hex or C escape). */
static inline bool
sm__frame_spec_plain(uint8_t c)
{
    return c > 0x20 && c < 0x7f && !strchr(",;=()\\", c);
}

#endif
