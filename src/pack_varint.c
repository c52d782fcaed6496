/* Varints (unsigned LEB128), zigzag and length-prefixed bytes: the
 * self-describing encodings of sm_pack.h that need no format string. */
#include <errno.h>
#include <limits.h>
#include <string.h>

#include <sockmsg/pack.h>

#include "pack_internal.h"

int
sm_pack_varint_size(uint64_t v)
{
    int n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

int
sm_pack_varint(void *out, size_t cap, uint64_t v)
{
    int n = sm_pack_varint_size(v);
    if ((size_t)n > cap) return -ENOSPC;
    if (!out) return -EINVAL;
    uint8_t *p = out;
    for (int k = 0; k < n - 1; k++) {
        p[k] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n - 1] = (uint8_t)v;
    return n;
}

int
sm_unpack_varint(const void *in, size_t len, uint64_t *v)
{
    const uint8_t *p = in;
    uint64_t r = 0;
    for (size_t k = 0; k < SM_VARINT_MAX && k < len; k++) {
        uint8_t b = p[k];
        /* The tenth byte holds bit 63 alone; more is over 64 bits or over
         * 10 bytes. */
        if (k == SM_VARINT_MAX - 1 && b > 1) return -EPROTO;
        r |= (uint64_t)(b & 0x7f) << (7 * k);
        if (!(b & 0x80)) {
            if (v) *v = r;
            return (int)k + 1;
        }
    }
    return -EPROTO;
}

uint64_t
sm_pack_zigzag(int64_t v)
{
    return ((uint64_t)v << 1) ^ (v < 0 ? UINT64_MAX : 0);
}

int64_t
sm_unpack_zigzag(uint64_t v)
{
    /* v >> 1 <= INT64_MAX, so both branches stay in range. */
    int64_t half = (int64_t)(v >> 1);
    return (v & 1) ? -half - 1 : half;
}

/* Width of a fixed prefix (0 for varint, -1 unknown) and its byte order. */
static int
prefix_width(sm_pack_prefix prefix, bool *little)
{
    *little = false;
    switch (prefix) {
    case SM_PREFIX_VARINT:
        return 0;
    case SM_PREFIX_U8:
        return 1;
    case SM_PREFIX_U16LE:
        *little = true;
        /* fall through */
    case SM_PREFIX_U16BE:
        return 2;
    case SM_PREFIX_U32LE:
        *little = true;
        /* fall through */
    case SM_PREFIX_U32BE:
        return 4;
    case SM_PREFIX_U64LE:
        *little = true;
        /* fall through */
    case SM_PREFIX_U64BE:
        return 8;
    }
    return -1;
}

ssize_t
sm_pack_bytes(void *out, size_t cap, sm_pack_prefix prefix, const void *data, size_t len)
{
    bool little;
    int w = prefix_width(prefix, &little);
    if (w < 0 || (!data && len)) return -EINVAL;
    if (w > 0 && w < 8 && (uint64_t)len >> (8 * w)) return -EMSGSIZE;
    size_t plen = w ? (size_t)w : (size_t)sm_pack_varint_size(len);
    if (len > (size_t)SSIZE_MAX - plen) return -EMSGSIZE;
    if (plen + len > cap) return -ENOSPC;
    if (!out) return -EINVAL;
    uint8_t *p = out;
    if (w)
        sm__pack_put_uint(p, len, (size_t)w, little);
    else
        sm_pack_varint(p, plen, len);
    if (len) memcpy(p + plen, data, len);
    return (ssize_t)(plen + len);
}

ssize_t
sm_unpack_bytes(const void *in, size_t len, sm_pack_prefix prefix, const uint8_t **data,
                size_t *data_len)
{
    bool little;
    int w = prefix_width(prefix, &little);
    if (w < 0 || (!in && len)) return -EINVAL;
    const uint8_t *p = in ? in : sm__pack_empty;
    uint64_t n;
    size_t plen;
    if (w == 0) {
        int rc = sm_unpack_varint(p, len, &n);
        if (rc < 0) return rc;
        plen = (size_t)rc;
    } else {
        if (len < (size_t)w) return -EPROTO;
        n = sm__pack_get_uint(p, (size_t)w, little);
        plen = (size_t)w;
    }
    if (n > len - plen) return -EPROTO;
    if (data) *data = p + plen;
    if (data_len) *data_len = (size_t)n;
    return (ssize_t)(plen + n);
}
