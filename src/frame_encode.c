/* Framing codecs: the header and trailer encoders. They write what goes
 * around a payload into an sm_frame_hdr, so the payload itself goes out by
 * writev without a copy. */
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sockmsg/error.h>
#include <sockmsg/frame.h>
#include "frame_internal.h"

/* Does the delimiter occur in payload+delim anywhere before the final copy? */
static bool
delim_inside(const uint8_t *p, size_t len, const uint8_t *delim, size_t dl)
{
    if (len >= dl && memmem(p, len, delim, dl)) return true;
    /* Occurrences straddling the payload's end and the appended delimiter. */
    size_t from = len >= dl ? len - dl + 1 : 0;
    for (size_t i = from; i < len; i++) {
        size_t in = len - i; /* bytes of the candidate inside the payload */
        if (memcmp(p + i, delim, in) == 0 && memcmp(delim, delim + in, dl - in) == 0) return true;
    }
    return false;
}

/* The offset=N header bytes, as zeros for the caller to overwrite; returns
 * where the codec's own header starts. */
static uint8_t *
offset_zeros(sm_frame_hdr *h, const sm_frame_basic *b)
{
    uint8_t *o = h->head + h->head_len;
    memset(o, 0, b->len_offset);
    h->head_len = (uint8_t)(h->head_len + b->len_offset);
    return o + b->len_offset;
}

static int
enc_basic(const sm_frame_basic *b, uint64_t max, const uint8_t *payload, size_t len,
          sm_frame_hdr *h)
{
    if (b->kind != SM_FRAME_FIXED && len > max) return -EMSGSIZE;
    switch (b->kind) {
    case SM_FRAME_FIXED:
        return len == b->fixed_len ? 0 : -EMSGSIZE;
    case SM_FRAME_DELIM:
        if (payload && delim_inside(payload, len, b->delim, b->delim_len)) return -EINVAL;
        memcpy(h->tail, b->delim, b->delim_len);
        h->tail_len = b->delim_len;
        return 0;
    case SM_FRAME_LENGTH: {
        uint64_t field;
        if (b->len_adjust >= 0) {
            field = (uint64_t)len + (uint64_t)b->len_adjust;
            if (field < len) return -EMSGSIZE;
        } else {
            uint64_t a = (uint64_t)(-(b->len_adjust + 1)) + 1;
            if (len < a) return -EMSGSIZE;
            field = len - a;
        }
        if (b->len_width < 8 && field >> (8 * b->len_width)) return -EMSGSIZE;
        uint8_t *o = offset_zeros(h, b);
        for (unsigned i = 0; i < b->len_width; i++) {
            unsigned shift = 8 * (b->len_little ? i : b->len_width - 1 - i);
            o[i] = (uint8_t)(field >> shift);
        }
        h->head_len = (uint8_t)(h->head_len + b->len_width);
        return 0;
    }
    case SM_FRAME_ASCII: {
        uint64_t v = len;
        uint8_t *o = offset_zeros(h, b);
        for (unsigned i = b->ascii_digits; i-- > 0;) {
            o[i] = (uint8_t)('0' + v % 10);
            v /= 10;
        }
        if (v) return -EMSGSIZE;
        h->head_len = (uint8_t)(h->head_len + b->ascii_digits);
        return 0;
    }
    case SM_FRAME_NETSTRING: {
        uint8_t *o = offset_zeros(h, b);
        int n = snprintf((char *)o, 22, "%zu:", len);
        h->head_len = (uint8_t)(h->head_len + n);
        h->tail[0] = ',';
        h->tail_len = 1;
        return 0;
    }
    case SM_FRAME_VARINT: {
        uint64_t v = len;
        uint8_t *o = offset_zeros(h, b);
        unsigned n = 0;
        do {
            uint8_t c = v & 0x7f;
            v >>= 7;
            o[n++] = (uint8_t)(c | (v ? 0x80 : 0));
        } while (v);
        h->head_len = (uint8_t)(h->head_len + n);
        return 0;
    }
    case SM_FRAME_EOF:
        return 0;
    default:
        return -EINVAL;
    }
}

int
sm_frame_encode(const sm_frame_spec *spec, const void *payload, size_t len, int type,
                sm_frame_hdr *hdr)
{
    const sm_frame_basic *b = &spec->basic;
    hdr->head_len = 0;
    hdr->tail_len = 0;
    if (spec->kind == SM_FRAME_RESP) return sm__frame_resp_check(spec, payload, len);
    if (spec->kind == SM_FRAME_TYPE) {
        if (type < 0 || type > 255 || !(b = sm__frame_type_entry(spec, (uint8_t)type)))
            return -EPROTO;
        hdr->head[0] = (uint8_t)type;
        hdr->head_len = 1;
    }
    int rc = enc_basic(b, sm_frame_max(spec), payload, len, hdr);
    if (rc) hdr->head_len = hdr->tail_len = 0;
    return rc;
}

/* The header bytes a caller supplies for codec b: those before the length
 * field, which the encoder writes as zeros and the decoder passes through.
 * Every codec that takes offset= puts them at the start of its header. */
static size_t
caller_bytes(const sm_frame_basic *b)
{
    return b->len_offset; /* 0 for codecs that take no offset= */
}

int
sm_frame_encode_hdr(const sm_frame_spec *spec, const void *head, size_t head_len,
                    const void *payload, size_t len, sm_frame_hdr *hdr)
{
    hdr->head_len = 0;
    hdr->tail_len = 0;
    if (head_len && !head) return -EINVAL;
    const uint8_t *h = head;
    const sm_frame_basic *b = &spec->basic;
    int type = -1;
    size_t want = 0;
    if (spec->kind == SM_FRAME_TYPE) {
        /* The type byte is the first header byte the caller gives. */
        if (head_len == 0) return -EINVAL;
        type = h[0];
        if (!(b = sm__frame_type_entry(spec, h[0]))) return -EPROTO;
        want = 1;
    }
    want += caller_bytes(b);
    if (head_len != want) return -EINVAL;
    int rc = sm_frame_encode(spec, payload, len, type, hdr);
    if (rc < 0) return rc;
    if (head_len) memcpy(hdr->head, h, head_len);
    return 0;
}

int
sm_frame_hdr_len(const sm_frame_spec *spec, int type)
{
    if (spec->kind != SM_FRAME_TYPE) return (int)caller_bytes(&spec->basic);
    const sm_frame_basic *b =
        type >= 0 && type <= 255 ? sm__frame_type_entry(spec, (uint8_t)type) : NULL;
    return b ? 1 + (int)caller_bytes(b) : -EPROTO;
}
