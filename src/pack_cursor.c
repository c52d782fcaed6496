/* sm_packer and sm_unpacker: cursors over a caller's buffer with typed
 * put/get calls and a sticky error, built on the format and varint layers. */
#include <errno.h>
#include <stdarg.h>
#include <string.h>

#include <sockmsg/pack.h>

#include "pack_internal.h"

void
sm_packer_init(sm_packer *p, void *buf, size_t cap)
{
    *p = (sm_packer){.buf = buf, .cap = buf ? cap : 0};
}

/* Room for n more bytes? Sets the sticky error when not. */
static uint8_t *
packer_room(sm_packer *p, size_t n)
{
    if (p->err) return NULL;
    if (n > p->cap - p->pos) {
        p->err = -ENOSPC;
        return NULL;
    }
    return p->buf ? p->buf + p->pos : (uint8_t *)sm__pack_empty;
}

static void
packer_put(sm_packer *p, uint64_t v, size_t n, bool little)
{
    uint8_t *dst = packer_room(p, n);
    if (!dst) return;
    sm__pack_put_uint(dst, v, n, little);
    p->pos += n;
}

void
sm_packer_put_u8(sm_packer *p, uint8_t v)
{
    packer_put(p, v, 1, false);
}

void
sm_packer_put_u16be(sm_packer *p, uint16_t v)
{
    packer_put(p, v, 2, false);
}

void
sm_packer_put_u16le(sm_packer *p, uint16_t v)
{
    packer_put(p, v, 2, true);
}

void
sm_packer_put_u32be(sm_packer *p, uint32_t v)
{
    packer_put(p, v, 4, false);
}

void
sm_packer_put_u32le(sm_packer *p, uint32_t v)
{
    packer_put(p, v, 4, true);
}

void
sm_packer_put_u64be(sm_packer *p, uint64_t v)
{
    packer_put(p, v, 8, false);
}

void
sm_packer_put_u64le(sm_packer *p, uint64_t v)
{
    packer_put(p, v, 8, true);
}

void
sm_packer_put_varint(sm_packer *p, uint64_t v)
{
    size_t n = (size_t)sm_pack_varint_size(v);
    uint8_t *dst = packer_room(p, n);
    if (!dst) return;
    sm_pack_varint(dst, n, v);
    p->pos += n;
}

void
sm_packer_put_raw(sm_packer *p, const void *data, size_t len)
{
    if (!p->err && !data && len) p->err = -EINVAL;
    uint8_t *dst = packer_room(p, len);
    if (!dst) return;
    if (len) memcpy(dst, data, len);
    p->pos += len;
}

void
sm_packer_put_bytes(sm_packer *p, sm_pack_prefix prefix, const void *data, size_t len)
{
    if (p->err) return;
    ssize_t rc = sm_pack_bytes(p->buf ? p->buf + p->pos : NULL, p->cap - p->pos, prefix, data, len);
    if (rc < 0)
        p->err = (int)rc;
    else
        p->pos += (size_t)rc;
}

void
sm_packer_pack(sm_packer *p, const char *fmt, ...)
{
    if (p->err) return;
    va_list ap;
    va_start(ap, fmt);
    ssize_t rc = sm_vpack(p->buf ? p->buf + p->pos : NULL, p->cap - p->pos, fmt, ap);
    va_end(ap);
    if (rc < 0)
        p->err = (int)rc;
    else
        p->pos += (size_t)rc;
}

ssize_t
sm_packer_finish(const sm_packer *p)
{
    return p->err ? p->err : (ssize_t)p->pos;
}

void
sm_unpacker_init(sm_unpacker *u, const void *buf, size_t len)
{
    *u = (sm_unpacker){.buf = buf, .len = buf ? len : 0};
}

/* The next n bytes, or NULL with the sticky error set. */
static const uint8_t *
unpacker_take(sm_unpacker *u, size_t n)
{
    if (u->err) return NULL;
    if (n > u->len - u->pos) {
        u->err = -EPROTO;
        return NULL;
    }
    const uint8_t *src = u->buf ? u->buf + u->pos : sm__pack_empty;
    u->pos += n;
    return src;
}

static uint64_t
unpacker_get(sm_unpacker *u, size_t n, bool little)
{
    const uint8_t *src = unpacker_take(u, n);
    return src ? sm__pack_get_uint(src, n, little) : 0;
}

uint8_t
sm_unpacker_get_u8(sm_unpacker *u)
{
    return (uint8_t)unpacker_get(u, 1, false);
}

uint16_t
sm_unpacker_get_u16be(sm_unpacker *u)
{
    return (uint16_t)unpacker_get(u, 2, false);
}

uint16_t
sm_unpacker_get_u16le(sm_unpacker *u)
{
    return (uint16_t)unpacker_get(u, 2, true);
}

uint32_t
sm_unpacker_get_u32be(sm_unpacker *u)
{
    return (uint32_t)unpacker_get(u, 4, false);
}

uint32_t
sm_unpacker_get_u32le(sm_unpacker *u)
{
    return (uint32_t)unpacker_get(u, 4, true);
}

uint64_t
sm_unpacker_get_u64be(sm_unpacker *u)
{
    return unpacker_get(u, 8, false);
}

uint64_t
sm_unpacker_get_u64le(sm_unpacker *u)
{
    return unpacker_get(u, 8, true);
}

uint64_t
sm_unpacker_get_varint(sm_unpacker *u)
{
    if (u->err) return 0;
    uint64_t v;
    int rc = sm_unpack_varint(u->buf ? u->buf + u->pos : NULL, u->len - u->pos, &v);
    if (rc < 0) {
        u->err = rc;
        return 0;
    }
    u->pos += (size_t)rc;
    return v;
}

const uint8_t *
sm_unpacker_get_raw(sm_unpacker *u, size_t n)
{
    return unpacker_take(u, n);
}

const uint8_t *
sm_unpacker_get_bytes(sm_unpacker *u, sm_pack_prefix prefix, size_t *len)
{
    const uint8_t *data = NULL;
    size_t n = 0;
    if (!u->err) {
        ssize_t rc =
            sm_unpack_bytes(u->buf ? u->buf + u->pos : NULL, u->len - u->pos, prefix, &data, &n);
        if (rc < 0) {
            u->err = (int)rc;
            data = NULL;
            n = 0;
        } else {
            u->pos += (size_t)rc;
        }
    }
    if (len) *len = n;
    return data;
}

void
sm_unpacker_unpack(sm_unpacker *u, const char *fmt, ...)
{
    if (u->err) return;
    va_list ap;
    va_start(ap, fmt);
    ssize_t rc = sm_vunpack(u->buf ? u->buf + u->pos : NULL, u->len - u->pos, fmt, ap);
    va_end(ap);
    if (rc < 0)
        u->err = (int)rc;
    else
        u->pos += (size_t)rc;
}

ssize_t
sm_unpacker_finish(const sm_unpacker *u)
{
    return u->err ? u->err : (ssize_t)u->pos;
}
