/* Fuzz target: pack format strings, sm_pack / sm_unpack, varints,
 * length-prefixed bytes and the cursors, on arbitrary bytes.
 *
 * Input: byte 0 picks what to do, then a format string up to the first NUL
 * (at most FMT_MAX bytes), then data.
 *   - Format: calcsize and count agree about whether it is well formed; the
 *     error is SM_ERR_FORMAT.
 *   - Unpack the data with it (-EPROTO exactly when the data is shorter than
 *     calcsize), pack the values back (exactly calcsize bytes; one byte less
 *     room is -ENOSPC with the buffer untouched), and the bytes packed are a
 *     fixed point: unpacking and packing them again gives them again.
 *   - Pack values made from the data (any integer, any double, any string
 *     length): either an error the header names, or calcsize bytes that
 *     unpack to values that pack to the same bytes.
 *   - The cursor: a program of gets read from the data drives an sm_unpacker
 *     (position never past the end, errors sticky, nothing read after one);
 *     every value read is put into an sm_packer, and reading that back with
 *     the same program gives the same values.
 *   - sm_unpack_varint and sm_unpack_bytes with every prefix agree with
 *     their encoders.
 */
#include <errno.h>
#include <string.h>

#include <sockmsg/pack.h>

#include "fuzz.h"

#define FMT_MAX         96
#define VALS_MAX        64
#define SIZE_MAX_PACKED (1u << 16)

static bool
pack_err_ok(ssize_t rc)
{
    return rc == SM_ERR_FORMAT || rc == -ENOSPC || rc == -ERANGE || rc == -EINVAL;
}

/* pack(vals) into exactly sz bytes, and into sz - 1 bytes (-ENOSPC, untouched).
 * Returns the packed bytes (malloc'd) or NULL when packing fails. */
static uint8_t *
pack_checked(const char *fmt, ssize_t sz, const sm_pack_value *vals, size_t n, ssize_t *rc_out)
{
    uint8_t *out = malloc((size_t)sz + 1);
    FUZZ_CHECK(out != NULL, "out of memory");
    ssize_t rc = sm_pack_values(out, (size_t)sz, fmt, vals, n);
    *rc_out = rc;
    if (rc < 0) {
        FUZZ_CHECK(pack_err_ok(rc) && rc != -ENOSPC && rc != SM_ERR_FORMAT,
                   "'%s': pack gives %zd (%s)", fmt, rc, sm_err_name((int)rc));
        free(out);
        return NULL;
    }
    FUZZ_CHECK(rc == sz, "'%s': packed %zd bytes, calcsize %zd", fmt, rc, sz);
    if (sz > 0) {
        uint8_t *tight = malloc((size_t)sz);
        FUZZ_CHECK(tight != NULL, "out of memory");
        memset(tight, 0xa5, (size_t)sz);
        ssize_t t = sm_pack_values(tight, (size_t)sz - 1, fmt, vals, n);
        FUZZ_CHECK(t == -ENOSPC, "'%s': %zd bytes into %zd: %zd", fmt, sz, sz - 1, t);
        for (ssize_t i = 0; i < sz; i++)
            FUZZ_CHECK(tight[i] == 0xa5, "'%s': -ENOSPC wrote byte %zd", fmt, i);
        free(tight);
    }
    return out;
}

/* bytes (packed by fmt) unpack to values that pack to the same bytes. */
static void
check_fixed_point(const char *fmt, ssize_t sz, size_t n, const uint8_t *bytes)
{
    sm_pack_value vals[VALS_MAX];
    ssize_t u = sm_unpack_values(bytes, (size_t)sz, fmt, vals, n);
    FUZZ_CHECK(u == sz, "'%s': packed bytes unpack to %zd (%s)", fmt, u, sm_err_name((int)u));
    ssize_t rc;
    uint8_t *again = pack_checked(fmt, sz, vals, n, &rc);
    FUZZ_CHECK(again != NULL, "'%s': unpacked values do not pack: %s", fmt, sm_err_name((int)rc));
    FUZZ_CHECK(memcmp(again, bytes, (size_t)sz) == 0, "'%s': not a fixed point", fmt);
    free(again);
}

static void
fuzz_format(const char *fmt, const uint8_t *data, size_t len)
{
    ssize_t sz = sm_pack_calcsize(fmt), cnt = sm_pack_count(fmt);
    FUZZ_CHECK((sz >= 0) == (cnt >= 0), "'%s': calcsize %zd, count %zd", fmt, sz, cnt);
    if (sz < 0) {
        FUZZ_CHECK(sz == SM_ERR_FORMAT && cnt == SM_ERR_FORMAT, "'%s': %zd %zd", fmt, sz, cnt);
        sm_pack_value v[1];
        FUZZ_CHECK(sm_unpack_values(data, len, fmt, v, 1) == SM_ERR_FORMAT, "'%s' unpacks", fmt);
        return;
    }
    if (cnt > VALS_MAX || sz > SIZE_MAX_PACKED) return;
    size_t n = (size_t)cnt;

    /* Unpack the data as it came. */
    sm_pack_value vals[VALS_MAX];
    if (n > 0)
        FUZZ_CHECK(sm_unpack_values(data, len, fmt, vals, n - 1) == -EINVAL,
                   "'%s': too few values accepted", fmt);
    ssize_t u = sm_unpack_values(data, len, fmt, vals, n);
    if (len < (size_t)sz) {
        FUZZ_CHECK(u == -EPROTO, "'%s': %zu bytes of %zd unpack to %zd", fmt, len, sz, u);
    } else {
        FUZZ_CHECK(u == sz, "'%s': unpack gives %zd (%s), calcsize %zd", fmt, u,
                   sm_err_name((int)u), sz);
        ssize_t rc;
        uint8_t *packed = pack_checked(fmt, sz, vals, n, &rc);
        FUZZ_CHECK(packed != NULL, "'%s': unpacked values do not pack: %s", fmt,
                   sm_err_name((int)rc));
        check_fixed_point(fmt, sz, n, packed);
        free(packed);
    }

    /* Values made of the data's bytes: integers and doubles of any bits, a
     * string of any length within the data. */
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t bits = 0;
        size_t take = len - at < 8 ? len - at : 8;
        memcpy(&bits, data + at, take);
        at += take;
        memcpy(&vals[i].u, &bits, sizeof bits);
        vals[i].len = len ? (size_t)(bits % (len + 1)) : 0;
        vals[i].ptr = data;
    }
    ssize_t rc;
    uint8_t *packed = pack_checked(fmt, sz, vals, n, &rc);
    if (packed) {
        check_fixed_point(fmt, sz, n, packed);
        free(packed);
    }
    if (n > 0)
        FUZZ_CHECK(sm_pack_values(NULL, 0, fmt, vals, n - 1) == -EINVAL,
                   "'%s': wrong value count accepted", fmt);
}

/* One get of the cursor program; the value read (or the view's length). */
static uint64_t
cursor_get(sm_unpacker *u, uint8_t op, uint8_t arg, const uint8_t **view)
{
    *view = NULL;
    switch (op % 10) {
    case 0:
        return sm_unpacker_get_u8(u);
    case 1:
        return sm_unpacker_get_u16be(u);
    case 2:
        return sm_unpacker_get_u16le(u);
    case 3:
        return sm_unpacker_get_u32be(u);
    case 4:
        return sm_unpacker_get_u32le(u);
    case 5:
        return sm_unpacker_get_u64be(u);
    case 6:
        return sm_unpacker_get_u64le(u);
    case 7:
        return sm_unpacker_get_varint(u);
    case 8:
        *view = sm_unpacker_get_raw(u, arg);
        return arg;
    default: {
        size_t n = 0;
        *view = sm_unpacker_get_bytes(u, (sm_pack_prefix)(arg % 9), &n);
        return n;
    }
    }
}

static void
cursor_put(sm_packer *p, uint8_t op, uint8_t arg, uint64_t v, const uint8_t *view)
{
    switch (op % 10) {
    case 0:
        sm_packer_put_u8(p, (uint8_t)v);
        break;
    case 1:
        sm_packer_put_u16be(p, (uint16_t)v);
        break;
    case 2:
        sm_packer_put_u16le(p, (uint16_t)v);
        break;
    case 3:
        sm_packer_put_u32be(p, (uint32_t)v);
        break;
    case 4:
        sm_packer_put_u32le(p, (uint32_t)v);
        break;
    case 5:
        sm_packer_put_u64be(p, v);
        break;
    case 6:
        sm_packer_put_u64le(p, v);
        break;
    case 7:
        sm_packer_put_varint(p, v);
        break;
    case 8:
        sm_packer_put_raw(p, view, (size_t)v);
        break;
    default:
        sm_packer_put_bytes(p, (sm_pack_prefix)(arg % 9), view, (size_t)v);
        break;
    }
}

#define OPS_MAX 32

/* The program is the first bytes of the data (op, arg pairs), up to OPS_MAX
 * ops; the rest is what it reads. */
static void
fuzz_cursor(const uint8_t *data, size_t len)
{
    size_t nops = len / 2 < OPS_MAX ? len / 2 : OPS_MAX;
    nops = nops ? data[0] % (nops + 1) : 0;
    const uint8_t *prog = data, *in = data + 2 * nops;
    size_t in_len = len - 2 * nops;

    sm_unpacker u;
    sm_unpacker_init(&u, in, in_len);
    uint64_t got[OPS_MAX];
    size_t ok = 0;
    uint8_t out[OPS_MAX * 270];
    sm_packer p;
    sm_packer_init(&p, out, sizeof out);
    for (size_t i = 0; i < nops; i++) {
        uint8_t op = prog[2 * i], arg = prog[2 * i + 1];
        size_t pos = u.pos;
        int err = u.err;
        const uint8_t *view;
        uint64_t v = cursor_get(&u, op, arg, &view);
        FUZZ_CHECK(u.pos <= in_len, "cursor at %zu of %zu", u.pos, in_len);
        if (err) {
            FUZZ_CHECK(u.err == err && u.pos == pos, "error not sticky");
            FUZZ_CHECK((v == 0 || op % 10 == 8) && view == NULL, "a value after an error");
            continue;
        }
        if (u.err) {
            FUZZ_CHECK(u.pos == pos, "failed get consumed %zu bytes", u.pos - pos);
            FUZZ_CHECK(u.err == -EPROTO || u.err == -EINVAL, "cursor error %d", u.err);
            continue;
        }
        if (op % 10 >= 8) FUZZ_CHECK(view != NULL, "successful get gave no view");
        if (op % 10 == 9 && v > 0)
            FUZZ_CHECK(view >= in && (size_t)(view - in) + v <= in_len, "view outside input");
        got[ok++] = v;
        cursor_put(&p, op, arg, v, view);
        FUZZ_CHECK(p.err == 0 || (op % 10 == 9 && p.err == -EMSGSIZE), "put after get: %s",
                   sm_err_name(p.err));
        if (p.err) return; /* a length that only a longer prefix can carry */
    }
    ssize_t end = sm_unpacker_finish(&u);
    FUZZ_CHECK(end == (u.err ? u.err : (ssize_t)u.pos), "finish %zd", end);
    if (u.err) return;

    /* What was put reads back with the same program. */
    sm_unpacker r;
    sm_unpacker_init(&r, out, p.pos);
    size_t j = 0;
    for (size_t i = 0; i < nops; i++) {
        const uint8_t *view;
        uint64_t v = cursor_get(&r, prog[2 * i], prog[2 * i + 1], &view);
        FUZZ_CHECK(r.err == 0 && v == got[j], "op %zu reads back %llu, not %llu (%s)", i,
                   (unsigned long long)v, (unsigned long long)got[j], sm_err_name(r.err));
        j++;
    }
    FUZZ_CHECK(r.pos == p.pos, "read back %zu of %zu bytes", r.pos, p.pos);
}

static void
fuzz_varint_bytes(const uint8_t *data, size_t len)
{
    uint64_t v = 0;
    int n = sm_unpack_varint(data, len, &v);
    FUZZ_CHECK(n == -EPROTO || (n >= 1 && n <= SM_VARINT_MAX && (size_t)n <= len), "varint %d", n);
    if (n > 0) {
        uint8_t enc[SM_VARINT_MAX];
        int m = sm_pack_varint(enc, sizeof enc, v);
        FUZZ_CHECK(m == sm_pack_varint_size(v) && m <= n, "varint of %d bytes re-encodes in %d", n,
                   m);
        uint64_t back;
        FUZZ_CHECK(sm_unpack_varint(enc, (size_t)m, &back) == m && back == v, "varint round trip");
        FUZZ_CHECK(sm_unpack_zigzag(sm_pack_zigzag((int64_t)v)) == (int64_t)v, "zigzag");
    }
    for (int prefix = 0; prefix <= 8; prefix++) {
        const uint8_t *d = NULL;
        size_t dl = 0;
        ssize_t rc = sm_unpack_bytes(data, len, (sm_pack_prefix)prefix, &d, &dl);
        if (prefix == 8) {
            FUZZ_CHECK(rc == -EINVAL, "unknown prefix: %zd", rc);
            continue;
        }
        FUZZ_CHECK(rc == -EPROTO || (rc > 0 && (size_t)rc <= len), "bytes: %zd", rc);
        if (rc < 0) continue;
        FUZZ_CHECK(d >= data && (size_t)(d - data) + dl == (size_t)rc, "bytes view");
        uint8_t *enc = malloc(dl + 16);
        FUZZ_CHECK(enc != NULL, "out of memory");
        ssize_t m = sm_pack_bytes(enc, dl + 16, (sm_pack_prefix)prefix, d, dl);
        FUZZ_CHECK(m > 0 && m <= rc && memcmp(enc + (m - (ssize_t)dl), d, dl) == 0,
                   "bytes re-encode: %zd of %zd", m, rc);
        free(enc);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    uint8_t mode = data[0];
    data++, size--;
    switch (mode % 3) {
    case 0: {
        const uint8_t *nul = memchr(data, '\0', size < FMT_MAX ? size : FMT_MAX);
        size_t flen = nul ? (size_t)(nul - data) : (size < FMT_MAX ? size : FMT_MAX);
        char fmt[FMT_MAX + 1];
        memcpy(fmt, data, flen);
        fmt[flen] = '\0';
        size_t skip = nul ? flen + 1 : flen;
        fuzz_format(fmt, data + skip, size - skip);
        break;
    }
    case 1:
        fuzz_cursor(data, size);
        break;
    default:
        fuzz_varint_bytes(data, size);
        break;
    }
    return 0;
}
