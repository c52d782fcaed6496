/* Binary packing: Python struct-compatible formats, varints, length-prefixed
 * bytes and cursors. Layout rules follow CPython's Modules/_struct.c so that
 * the same format and values give the same bytes; tests/unit/test_pack_python.c
 * checks that against the real struct module. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <string.h>

#include <sockmsg/error.h>
#include <sockmsg/pack.h>

_Static_assert(sizeof(float) == 4 && sizeof(double) == 8, "IEEE 754 binary32/binary64 assumed");

/* A pointer to hand to memcpy-free paths when the caller's buffer is NULL with
 * size 0: arithmetic on a NULL pointer is undefined even with offset 0. */
static const uint8_t empty_bytes[1];

/* ------------------------------------------------------------------------- */
/* Format parsing                                                            */

typedef struct fmt_state {
    const char *s;
    bool little;
    bool native; /* '@': native sizes and alignment */
} fmt_state;

typedef struct fmt_item {
    char code;
    size_t count;
    size_t size;  /* bytes per element (s, p, x: 1) */
    size_t align; /* 1: none */
} fmt_item;

static bool
host_little(void)
{
    const uint16_t one = 1;
    uint8_t first;
    memcpy(&first, &one, 1);
    return first == 1;
}

static bool
code_info(char c, bool native, size_t *size, size_t *align)
{
    size_t sz, al;
    switch (c) {
    case 'x':
    case 'c':
    case 'b':
    case 'B':
    case 's':
    case 'p':
        sz = 1, al = 1;
        break;
    case '?':
        sz = native ? sizeof(_Bool) : 1, al = _Alignof(_Bool);
        break;
    case 'h':
    case 'H':
    case 'e': /* CPython's native table aligns e like short */
        sz = native ? sizeof(short) : 2, al = _Alignof(short);
        break;
    case 'i':
    case 'I':
        sz = native ? sizeof(int) : 4, al = _Alignof(int);
        break;
    case 'l':
    case 'L':
        sz = native ? sizeof(long) : 4, al = _Alignof(long);
        break;
    case 'q':
    case 'Q':
        sz = native ? sizeof(long long) : 8, al = _Alignof(long long);
        break;
    case 'f':
        sz = 4, al = _Alignof(float);
        break;
    case 'd':
        sz = 8, al = _Alignof(double);
        break;
    default:
        return false;
    }
    *size = sz;
    *align = native ? al : 1;
    return true;
}

static bool
code_signed(char c)
{
    return c == 'b' || c == 'h' || c == 'i' || c == 'l' || c == 'q';
}

static bool
code_unsigned(char c)
{
    return c == 'B' || c == 'H' || c == 'I' || c == 'L' || c == 'Q';
}

static int
fmt_init(fmt_state *st, const char *fmt)
{
    if (!fmt) return -EINVAL;
    st->little = host_little();
    st->native = false;
    switch (*fmt) {
    case '@':
        st->native = true;
        fmt++;
        break;
    case '=':
        fmt++;
        break;
    case '<':
        st->little = true;
        fmt++;
        break;
    case '>':
    case '!':
        st->little = false;
        fmt++;
        break;
    default:
        st->native = true;
        break;
    }
    st->s = fmt;
    return 0;
}

/* Python's Py_ISSPACE: the ASCII whitespace bytes only. */
static bool
fmt_space(char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

/* The next item: 1, 0 at the end, or SM_ERR_FORMAT. */
static int
fmt_next(fmt_state *st, fmt_item *it)
{
    const char *s = st->s;
    while (fmt_space(*s))
        s++;
    if (!*s) {
        st->s = s;
        return 0;
    }
    size_t count = 1;
    if (*s >= '0' && *s <= '9') {
        count = 0;
        while (*s >= '0' && *s <= '9') {
            size_t d = (size_t)(*s - '0');
            if (count > ((size_t)SSIZE_MAX - d) / 10) return SM_ERR_FORMAT;
            count = count * 10 + d;
            s++;
        }
    }
    /* A count followed by the end, a space or another byte-order mark is an
     * unknown code here, as in Python. */
    if (!code_info(*s, st->native, &it->size, &it->align)) return SM_ERR_FORMAT;
    it->code = *s;
    it->count = count;
    st->s = s + 1;
    return 1;
}

static bool
item_is_string(const fmt_item *it)
{
    return it->code == 's' || it->code == 'p';
}

/* Bytes the item occupies after its alignment padding. */
static size_t
item_bytes(const fmt_item *it)
{
    return item_is_string(it) ? it->count : it->count * it->size;
}

static size_t
align_up(size_t off, size_t align)
{
    return (off + align - 1) / align * align;
}

/* Validate fmt and measure it: the packed size, and in *nvals the values it
 * takes. Both passes of pack and unpack walk the same items, so after this
 * succeeds the second walk cannot meet a format error. */
static ssize_t
fmt_scan(const char *fmt, size_t *nvals)
{
    fmt_state st;
    fmt_item it;
    int rc = fmt_init(&st, fmt);
    if (rc < 0) return rc;
    size_t size = 0, n = 0;
    while ((rc = fmt_next(&st, &it)) > 0) {
        /* size <= SSIZE_MAX and align <= 8, so aligning cannot wrap. */
        size = align_up(size, it.align);
        if (size > (size_t)SSIZE_MAX || it.count > ((size_t)SSIZE_MAX - size) / it.size)
            return SM_ERR_FORMAT;
        size += item_bytes(&it);
        if (item_is_string(&it))
            n++;
        else if (it.code != 'x')
            n += it.count;
    }
    if (rc < 0) return rc;
    if (nvals) *nvals = n;
    return (ssize_t)size;
}

/* ------------------------------------------------------------------------- */
/* Scalars                                                                   */

static void
put_uint(uint8_t *p, uint64_t v, size_t n, bool little)
{
    for (size_t k = 0; k < n; k++)
        p[little ? k : n - 1 - k] = (uint8_t)(v >> (8 * k));
}

static uint64_t
get_uint(const uint8_t *p, size_t n, bool little)
{
    uint64_t v = 0;
    for (size_t k = 0; k < n; k++)
        v |= (uint64_t)p[little ? k : n - 1 - k] << (8 * k);
    return v;
}

/* Sign-extend an n-byte two's complement value without relying on
 * implementation-defined unsigned-to-signed conversion. */
static int64_t
to_signed(uint64_t u, size_t n)
{
    if (n < 8) {
        uint64_t sign = (uint64_t)1 << (8 * n - 1);
        u = (u ^ sign) - sign;
    }
    return u <= (uint64_t)INT64_MAX ? (int64_t)u : -(int64_t)~u - 1;
}

static uint64_t
double_bits(double x)
{
    uint64_t b;
    memcpy(&b, &x, sizeof b);
    return b;
}

static double
bits_double(uint64_t b)
{
    double x;
    memcpy(&x, &b, sizeof x);
    return x;
}

/* binary64 -> binary16 with round-half-even, done on the integer bits so the
 * one rounding is exact. NaN becomes the quiet NaN CPython writes. */
static int
half_from_double(double x, uint16_t *out)
{
    uint64_t b = double_bits(x);
    uint16_t sign = (uint16_t)((b >> 48) & 0x8000);
    unsigned exp = (unsigned)(b >> 52) & 0x7ff;
    uint64_t frac = b & (((uint64_t)1 << 52) - 1);

    if (exp == 0x7ff) {
        *out = (uint16_t)(sign | (frac ? 0x7e00 : 0x7c00));
        return 0;
    }
    if (exp == 0) { /* zero, or a binary64 subnormal: far below half's range */
        *out = sign;
        return 0;
    }
    int e = (int)exp - 1023;
    if (e > 15) return -ERANGE;
    uint64_t m = frac | ((uint64_t)1 << 52);
    uint64_t h;
    unsigned shift;
    if (e >= -14) {
        h = ((uint64_t)(e + 15) << 10) | (frac >> 42);
        shift = 42;
    } else {
        /* Subnormal half: count units of 2^-24. Past a shift of 54 the value
         * is below half the smallest subnormal and rounds to zero. */
        shift = (unsigned)(28 - e);
        if (shift > 60) {
            *out = sign;
            return 0;
        }
        h = m >> shift;
    }
    uint64_t rem = m & (((uint64_t)1 << shift) - 1);
    uint64_t halfway = (uint64_t)1 << (shift - 1);
    /* A carry out of the fraction lands in the exponent field, which is the
     * right answer, including the step from subnormal to normal. */
    if (rem > halfway || (rem == halfway && (h & 1))) h++;
    if (h >= 0x7c00) return -ERANGE;
    *out = (uint16_t)(sign | h);
    return 0;
}

static double
half_to_double(uint16_t h)
{
    uint64_t sign = (uint64_t)(h & 0x8000) << 48;
    unsigned exp = (h >> 10) & 0x1f;
    uint64_t frac = h & 0x3ff;
    if (exp == 0x1f) return bits_double(sign | ((uint64_t)0x7ff << 52) | (frac << 42));
    if (exp == 0) {
        double v = (double)frac * 0x1p-24; /* exact: frac < 2^10 */
        return sign ? -v : v;
    }
    return bits_double(sign | ((uint64_t)(exp - 15 + 1023) << 52) | (frac << 42));
}

/* A finite double that rounds to infinity as a float is an error (Python's
 * OverflowError); checking first also keeps the conversion defined. The limit
 * is FLT_MAX plus half an ulp: that tie rounds to even, i.e. up. */
static int
float_check(double x)
{
    const double lim = 0x1.ffffffp127;
    if ((x >= lim || x <= -lim) && x != INFINITY && x != -INFINITY) return -ERANGE;
    return 0;
}

/* ------------------------------------------------------------------------- */
/* Argument sources and sinks: varargs or an array of sm_pack_value          */

typedef struct args {
    va_list *ap;             /* varargs, or NULL for the array */
    sm_pack_value *out;      /* unpack into an array */
    const sm_pack_value *in; /* pack from an array */
    size_t i;
} args;

static int
pack_elem(uint8_t *dst, const fmt_item *it, bool little, args *a)
{
    char c = it->code;
    size_t n = it->size;
    if (code_signed(c)) {
        int64_t v = a->ap ? va_arg(*a->ap, int64_t) : a->in[a->i++].i;
        if (n < 8) {
            int64_t lim = (int64_t)1 << (8 * n - 1);
            if (v < -lim || v >= lim) return -ERANGE;
        }
        put_uint(dst, (uint64_t)v, n, little);
    } else if (code_unsigned(c)) {
        uint64_t v = a->ap ? va_arg(*a->ap, uint64_t) : a->in[a->i++].u;
        if (n < 8 && v >> (8 * n)) return -ERANGE;
        put_uint(dst, v, n, little);
    } else if (c == 'c' || c == '?') {
        int64_t v = a->ap ? va_arg(*a->ap, int) : a->in[a->i++].i;
        if (c == 'c' && (v < 0 || v > 255)) return -ERANGE;
        dst[0] = c == 'c' ? (uint8_t)v : v != 0;
    } else {
        double v = a->ap ? va_arg(*a->ap, double) : a->in[a->i++].d;
        if (c == 'e') {
            uint16_t h;
            if (half_from_double(v, &h) < 0) return -ERANGE;
            put_uint(dst, h, 2, little);
        } else if (c == 'f') {
            if (float_check(v) < 0) return -ERANGE;
            float f = (float)v;
            uint32_t u;
            memcpy(&u, &f, sizeof u);
            put_uint(dst, u, 4, little);
        } else {
            put_uint(dst, double_bits(v), 8, little);
        }
    }
    return 0;
}

static int
pack_string(uint8_t *dst, const fmt_item *it, args *a)
{
    const void *src;
    size_t len;
    if (a->ap) {
        src = va_arg(*a->ap, const void *);
        len = va_arg(*a->ap, size_t);
    } else {
        src = a->in[a->i].ptr;
        len = a->in[a->i].len;
        a->i++;
    }
    if (!src && len) return -EINVAL;
    size_t field = it->count;
    if (it->code == 'p') {
        if (field == 0) return 0;
        field--;
        size_t n = len < field ? len : field;
        /* Python copies up to N - 1 bytes but the length byte saturates. */
        dst[0] = (uint8_t)(n < 255 ? n : 255);
        dst++;
    }
    size_t n = len < field ? len : field;
    if (n) memcpy(dst, src, n);
    memset(dst + n, 0, field - n);
    return 0;
}

static ssize_t
pack_run(void *out, size_t cap, const char *fmt, args *a, size_t nvals)
{
    size_t want;
    ssize_t size = fmt_scan(fmt, &want);
    if (size < 0) return size;
    if (!a->ap && want != nvals) return -EINVAL;
    if (!out && cap) return -EINVAL;
    if ((size_t)size > cap) return -ENOSPC;

    uint8_t *base = out ? out : (uint8_t *)empty_bytes; /* never written: size is 0 */
    fmt_state st;
    fmt_item it;
    fmt_init(&st, fmt);
    size_t off = 0;
    while (fmt_next(&st, &it) > 0) {
        size_t start = align_up(off, it.align);
        if (start > off) memset(base + off, 0, start - off);
        off = start;
        if (it.code == 'x') {
            if (it.count) memset(base + off, 0, it.count);
        } else if (item_is_string(&it)) {
            int rc = pack_string(base + off, &it, a);
            if (rc < 0) return rc;
        } else {
            for (size_t k = 0; k < it.count; k++) {
                int rc = pack_elem(base + off + k * it.size, &it, st.little, a);
                if (rc < 0) return rc;
            }
        }
        off += item_bytes(&it);
    }
    return size;
}

static void
unpack_elem(const uint8_t *src, const fmt_item *it, bool little, args *a)
{
    char c = it->code;
    size_t n = it->size;
    sm_pack_value v = {.u = 0};
    if (code_signed(c)) {
        v.i = to_signed(get_uint(src, n, little), n);
        if (a->ap) {
            int64_t *p = va_arg(*a->ap, int64_t *);
            if (p) *p = v.i;
        }
    } else if (code_unsigned(c)) {
        v.u = get_uint(src, n, little);
        if (a->ap) {
            uint64_t *p = va_arg(*a->ap, uint64_t *);
            if (p) *p = v.u;
        }
    } else if (c == 'c' || c == '?') {
        v.i = c == 'c' ? src[0] : src[0] != 0;
        if (a->ap) {
            int *p = va_arg(*a->ap, int *);
            if (p) *p = (int)v.i;
        }
    } else {
        if (c == 'e') {
            v.d = half_to_double((uint16_t)get_uint(src, 2, little));
        } else if (c == 'f') {
            uint32_t u = (uint32_t)get_uint(src, 4, little);
            float f;
            memcpy(&f, &u, sizeof f);
            v.d = f;
        } else {
            v.d = bits_double(get_uint(src, 8, little));
        }
        if (a->ap) {
            double *p = va_arg(*a->ap, double *);
            if (p) *p = v.d;
        }
    }
    if (!a->ap) a->out[a->i++] = v;
}

static void
unpack_string(const uint8_t *src, const fmt_item *it, args *a)
{
    size_t n = it->count;
    if (it->code == 'p' && n > 0) {
        n = src[0] < n - 1 ? src[0] : n - 1;
        src++;
    } else if (it->code == 'p') {
        n = 0;
    }
    if (a->ap) {
        const uint8_t **pp = va_arg(*a->ap, const uint8_t **);
        size_t *pl = va_arg(*a->ap, size_t *);
        if (pp) *pp = src;
        if (pl) *pl = n;
    } else {
        a->out[a->i] = (sm_pack_value){.u = 0, .ptr = src, .len = n};
        a->i++;
    }
}

static ssize_t
unpack_run(const void *in, size_t len, const char *fmt, args *a, size_t nvals)
{
    size_t want;
    ssize_t size = fmt_scan(fmt, &want);
    if (size < 0) return size;
    if (!a->ap && want > nvals) return -EINVAL;
    if (!in && len) return -EINVAL;
    if ((size_t)size > len) return -EPROTO;

    const uint8_t *base = in ? in : empty_bytes; /* size is 0: only empty views */
    fmt_state st;
    fmt_item it;
    fmt_init(&st, fmt);
    size_t off = 0;
    while (fmt_next(&st, &it) > 0) {
        off = align_up(off, it.align);
        if (item_is_string(&it)) {
            unpack_string(base + off, &it, a);
        } else if (it.code != 'x') {
            for (size_t k = 0; k < it.count; k++)
                unpack_elem(base + off + k * it.size, &it, st.little, a);
        }
        off += item_bytes(&it);
    }
    return size;
}

/* ------------------------------------------------------------------------- */
/* Format packing API                                                        */

ssize_t
sm_pack_calcsize(const char *fmt)
{
    return fmt_scan(fmt, NULL);
}

ssize_t
sm_pack_count(const char *fmt)
{
    size_t n;
    ssize_t rc = fmt_scan(fmt, &n);
    return rc < 0 ? rc : (ssize_t)n;
}

ssize_t
sm_vpack(void *out, size_t cap, const char *fmt, va_list ap)
{
    /* va_list may be an array type, so a parameter's address is not a
     * va_list *: copy it into a local first. */
    va_list cp;
    va_copy(cp, ap);
    args a = {.ap = &cp};
    ssize_t rc = pack_run(out, cap, fmt, &a, 0);
    va_end(cp);
    return rc;
}

ssize_t
sm_pack(void *out, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ssize_t rc = sm_vpack(out, cap, fmt, ap);
    va_end(ap);
    return rc;
}

ssize_t
sm_vunpack(const void *in, size_t len, const char *fmt, va_list ap)
{
    va_list cp;
    va_copy(cp, ap);
    args a = {.ap = &cp};
    ssize_t rc = unpack_run(in, len, fmt, &a, 0);
    va_end(cp);
    return rc;
}

ssize_t
sm_unpack(const void *in, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ssize_t rc = sm_vunpack(in, len, fmt, ap);
    va_end(ap);
    return rc;
}

ssize_t
sm_pack_values(void *out, size_t cap, const char *fmt, const sm_pack_value *vals, size_t nvals)
{
    if (!vals && nvals) return -EINVAL;
    args a = {.in = vals};
    return pack_run(out, cap, fmt, &a, nvals);
}

ssize_t
sm_unpack_values(const void *in, size_t len, const char *fmt, sm_pack_value *vals, size_t nvals)
{
    if (!vals && nvals) return -EINVAL;
    args a = {.out = vals};
    return unpack_run(in, len, fmt, &a, nvals);
}

/* ------------------------------------------------------------------------- */
/* Varints, zigzag, length-prefixed bytes                                    */

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
        put_uint(p, len, (size_t)w, little);
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
    const uint8_t *p = in ? in : empty_bytes;
    uint64_t n;
    size_t plen;
    if (w == 0) {
        int rc = sm_unpack_varint(p, len, &n);
        if (rc < 0) return rc;
        plen = (size_t)rc;
    } else {
        if (len < (size_t)w) return -EPROTO;
        n = get_uint(p, (size_t)w, little);
        plen = (size_t)w;
    }
    if (n > len - plen) return -EPROTO;
    if (data) *data = p + plen;
    if (data_len) *data_len = (size_t)n;
    return (ssize_t)(plen + n);
}

/* ------------------------------------------------------------------------- */
/* Cursors                                                                   */

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
    return p->buf ? p->buf + p->pos : (uint8_t *)empty_bytes;
}

static void
packer_put(sm_packer *p, uint64_t v, size_t n, bool little)
{
    uint8_t *dst = packer_room(p, n);
    if (!dst) return;
    put_uint(dst, v, n, little);
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
    const uint8_t *src = u->buf ? u->buf + u->pos : empty_bytes;
    u->pos += n;
    return src;
}

static uint64_t
unpacker_get(sm_unpacker *u, size_t n, bool little)
{
    const uint8_t *src = unpacker_take(u, n);
    return src ? get_uint(src, n, little) : 0;
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
