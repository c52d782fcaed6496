/* Python struct-compatible format packing: the scalar conversions (integers, binary16/32/64 floats)
 * and sm_pack / sm_unpack over varargs or sm_pack_value arrays. Layout rules follow CPython's
 * Modules/_struct.c so that the same format and values give the same bytes;
 * tests/unit/test_pack_python.c checks that against the real struct module. */
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <sockmsg/error.h>
#include <sockmsg/pack.h>

#include "internal.h"
#include "pack_internal.h"

_Static_assert(sizeof(float) == 4 && sizeof(double) == 8, "IEEE 754 binary32/binary64 assumed");

const uint8_t sm__pack_empty[1];

/* ------------------------------------------------------------------------- */
/* Scalars                                                                   */

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
    size_t nth;      /* values taken so far, both forms: for explanations */
    const char *fmt; /* for explanations */
    char *why;       /* NULL: no explanation wanted */
    size_t why_len;
} args;

/* Explain a bad value: "pack format '!Hb': value 1 (code 'b' at offset 2):
 * 300 out of range -128..127". Returns err. */
static int
value_why(const args *a, const sm__fmt_item *it, int err, const char *what)
{
    if (!a->why || !a->why_len) return err;
    char q[80];
    sm__fmt_quote(a->fmt, q, sizeof q);
    return sm__why(a->why, a->why_len, err,
                   "pack format '%s': value %zu (code '%c' at offset %zu): %s", q, a->nth, it->code,
                   it->at, what);
}

/* Range errors name the value and the range of its code. */
static int
int_range_why(const args *a, const sm__fmt_item *it, bool is_signed, int64_t i, uint64_t u,
              size_t n)
{
    char what[128];
    if (it->code == 'c')
        snprintf(what, sizeof what, "%" PRId64 " out of range 0..255", i);
    else if (is_signed)
        snprintf(what, sizeof what, "%" PRId64 " out of range %" PRId64 "..%" PRId64, i,
                 -((int64_t)1 << (8 * n - 1)), ((int64_t)1 << (8 * n - 1)) - 1);
    else
        snprintf(what, sizeof what, "%" PRIu64 " out of range 0..%" PRIu64, u,
                 ((uint64_t)1 << (8 * n)) - 1);
    return value_why(a, it, -ERANGE, what);
}

static int
float_range_why(const args *a, const sm__fmt_item *it, double v)
{
    char what[128];
    snprintf(what, sizeof what, "%g does not fit binary%d", v, it->code == 'e' ? 16 : 32);
    return value_why(a, it, -ERANGE, what);
}

static int
pack_elem(uint8_t *dst, const sm__fmt_item *it, bool little, args *a)
{
    char c = it->code;
    size_t n = it->size;
    assert(n >= 1 && n <= 8); /* code_info: every code is 1 to 8 bytes */
    if (sm__fmt_signed(c)) {
        int64_t v = a->ap ? va_arg(*a->ap, int64_t) : a->in[a->i++].i;
        if (n < 8) {
            int64_t lim = (int64_t)1 << (8 * n - 1);
            if (v < -lim || v >= lim) return int_range_why(a, it, true, v, 0, n);
        }
        sm__pack_put_uint(dst, (uint64_t)v, n, little);
    } else if (sm__fmt_unsigned(c)) {
        uint64_t v = a->ap ? va_arg(*a->ap, uint64_t) : a->in[a->i++].u;
        if (n < 8 && v >> (8 * n)) return int_range_why(a, it, false, 0, v, n);
        sm__pack_put_uint(dst, v, n, little);
    } else if (c == 'c' || c == '?') {
        int64_t v = a->ap ? va_arg(*a->ap, int) : a->in[a->i++].i;
        if (c == 'c' && (v < 0 || v > 255)) return int_range_why(a, it, true, v, 0, 1);
        dst[0] = c == 'c' ? (uint8_t)v : v != 0;
    } else {
        double v = a->ap ? va_arg(*a->ap, double) : a->in[a->i++].d;
        if (c == 'e') {
            uint16_t h;
            if (half_from_double(v, &h) < 0) return float_range_why(a, it, v);
            sm__pack_put_uint(dst, h, 2, little);
        } else if (c == 'f') {
            if (float_check(v) < 0) return float_range_why(a, it, v);
            float f = (float)v;
            uint32_t u;
            memcpy(&u, &f, sizeof u);
            sm__pack_put_uint(dst, u, 4, little);
        } else {
            sm__pack_put_uint(dst, double_bits(v), 8, little);
        }
    }
    return 0;
}

static int
pack_string(uint8_t *dst, const sm__fmt_item *it, args *a)
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
    if (!src && len) {
        char what[96];
        snprintf(what, sizeof what, "NULL data with length %zu", len);
        return value_why(a, it, -EINVAL, what);
    }
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

/* The errors every pack and unpack checks before it touches a byte, with
 * their explanations. Returns the packed size or the error. */
static ssize_t
run_check(const char *fmt, args *a, size_t nvals, bool packing, const void *buf, size_t len)
{
    size_t want;
    sm__fmt st;
    ssize_t size = sm__fmt_scan(&st, fmt, &want);
    char q[80];
    if (size == -EINVAL) return sm__why(a->why, a->why_len, -EINVAL, "pack format is NULL");
    if (size < 0) return sm__fmt_why(&st, a->why, a->why_len);
    sm__fmt_quote(fmt, q, sizeof q);
    if (!a->ap && (packing ? want != nvals : want > nvals))
        return sm__why(a->why, a->why_len, -EINVAL, "pack format '%s' takes %zu values, %s %zu", q,
                       want, packing ? "got" : "room for", nvals);
    if (!buf && len)
        return sm__why(a->why, a->why_len, -EINVAL, "NULL buffer with a size of %zu", len);
    if ((size_t)size > len)
        return sm__why(a->why, a->why_len, packing ? -ENOSPC : -EPROTO,
                       "pack format '%s' needs %zd bytes, %s %zu", q, size,
                       packing ? "room for" : "input has", len);
    return size;
}

static ssize_t
pack_run(void *out, size_t cap, const char *fmt, args *a, size_t nvals)
{
    a->fmt = fmt;
    ssize_t size = run_check(fmt, a, nvals, true, out, cap);
    if (size < 0) return size;

    uint8_t *base = out ? out : (uint8_t *)sm__pack_empty; /* never written: size is 0 */
    sm__fmt st;
    sm__fmt_item it;
    sm__fmt_init(&st, fmt);
    size_t off = 0;
    while (sm__fmt_next(&st, &it) > 0) {
        size_t start = sm__fmt_align_up(off, it.align);
        if (start > off) memset(base + off, 0, start - off);
        off = start;
        if (it.code == 'x') {
            if (it.count) memset(base + off, 0, it.count);
        } else if (sm__fmt_is_string(&it)) {
            int rc = pack_string(base + off, &it, a);
            if (rc < 0) return rc;
            a->nth++;
        } else {
            for (size_t k = 0; k < it.count; k++, a->nth++) {
                int rc = pack_elem(base + off + k * it.size, &it, st.little, a);
                if (rc < 0) return rc;
            }
        }
        off += sm__fmt_item_bytes(&it);
    }
    return size;
}

static void
unpack_elem(const uint8_t *src, const sm__fmt_item *it, bool little, args *a)
{
    char c = it->code;
    size_t n = it->size;
    assert(n >= 1 && n <= 8); /* code_info: every code is 1 to 8 bytes */
    sm_pack_value v = {.u = 0};
    if (sm__fmt_signed(c)) {
        v.i = to_signed(sm__pack_get_uint(src, n, little), n);
        if (a->ap) {
            int64_t *p = va_arg(*a->ap, int64_t *);
            if (p) *p = v.i;
        }
    } else if (sm__fmt_unsigned(c)) {
        v.u = sm__pack_get_uint(src, n, little);
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
            v.d = half_to_double((uint16_t)sm__pack_get_uint(src, 2, little));
        } else if (c == 'f') {
            uint32_t u = (uint32_t)sm__pack_get_uint(src, 4, little);
            float f;
            memcpy(&f, &u, sizeof f);
            v.d = f;
        } else {
            v.d = bits_double(sm__pack_get_uint(src, 8, little));
        }
        if (a->ap) {
            double *p = va_arg(*a->ap, double *);
            if (p) *p = v.d;
        }
    }
    if (!a->ap) a->out[a->i++] = v;
}

static void
unpack_string(const uint8_t *src, const sm__fmt_item *it, args *a)
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
    a->fmt = fmt;
    ssize_t size = run_check(fmt, a, nvals, false, in, len);
    if (size < 0) return size;

    const uint8_t *base = in ? in : sm__pack_empty; /* size is 0: only empty views */
    sm__fmt st;
    sm__fmt_item it;
    sm__fmt_init(&st, fmt);
    size_t off = 0;
    while (sm__fmt_next(&st, &it) > 0) {
        off = sm__fmt_align_up(off, it.align);
        if (sm__fmt_is_string(&it)) {
            unpack_string(base + off, &it, a);
        } else if (it.code != 'x') {
            for (size_t k = 0; k < it.count; k++)
                unpack_elem(base + off + k * it.size, &it, st.little, a);
        }
        off += sm__fmt_item_bytes(&it);
    }
    return size;
}

/* ------------------------------------------------------------------------- */
/* Format packing API                                                        */

ssize_t
sm_pack_calcsize(const char *fmt)
{
    sm__fmt st;
    return sm__fmt_scan(&st, fmt, NULL);
}

ssize_t
sm_pack_count(const char *fmt)
{
    size_t n;
    sm__fmt st;
    ssize_t rc = sm__fmt_scan(&st, fmt, &n);
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
    return sm_pack_values_why(out, cap, fmt, vals, nvals, NULL, 0);
}

ssize_t
sm_unpack_values(const void *in, size_t len, const char *fmt, sm_pack_value *vals, size_t nvals)
{
    return sm_unpack_values_why(in, len, fmt, vals, nvals, NULL, 0);
}

ssize_t
sm_pack_values_why(void *out, size_t cap, const char *fmt, const sm_pack_value *vals, size_t nvals,
                   char *why, size_t why_len)
{
    if (why && why_len) why[0] = '\0';
    if (!vals && nvals)
        return sm__why(why, why_len, -EINVAL, "NULL values with a count of %zu", nvals);
    args a = {.in = vals, .why = why, .why_len = why_len};
    return pack_run(out, cap, fmt, &a, nvals);
}

ssize_t
sm_unpack_values_why(const void *in, size_t len, const char *fmt, sm_pack_value *vals, size_t nvals,
                     char *why, size_t why_len)
{
    if (why && why_len) why[0] = '\0';
    if (!vals && nvals)
        return sm__why(why, why_len, -EINVAL, "NULL values with a count of %zu", nvals);
    args a = {.out = vals, .why = why, .why_len = why_len};
    return unpack_run(in, len, fmt, &a, nvals);
}
