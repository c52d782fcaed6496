/* Unit tests for pack: formats (every code, byte orders, counts, alignment),
 * bounds, ranges, half floats, varints, zigzag, prefixed bytes, cursors.
 * Expected bytes come from CPython's struct module (3.11, x86_64 Linux);
 * test_pack_python.c checks random cases against it live. */
#include "smtest.h"

#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sockmsg/pack.h>

#define I64(x) ((int64_t)(x))
#define U64(x) ((uint64_t)(x))

/* Decode a hex string (no separators) into out; returns the byte count. */
static size_t
unhex(const char *hex, uint8_t *out, size_t cap)
{
    size_t n = strlen(hex) / 2;
    assert_true(n <= cap);
    for (size_t k = 0; k < n; k++) {
        unsigned v;
        assert_int_equal(sscanf(hex + 2 * k, "%2x", &v), 1);
        out[k] = (uint8_t)v;
    }
    return n;
}

/* Assert buf[0..n) is the hex string `want`, printing both on mismatch. */
static void
check_hex_at(const uint8_t *buf, size_t n, const char *want, const char *file, int line)
{
    char got[1024];
    size_t k;
    for (k = 0; k < n && 2 * k + 2 < sizeof got; k++)
        snprintf(got + 2 * k, 3, "%02x", buf[k]);
    got[2 * k] = '\0';
    if (strcmp(got, want) != 0) {
        print_error("bytes %s\n want %s\n", got, want);
        _fail(file, line);
    }
}
#define CHECK_HEX(buf, n, want) check_hex_at((buf), (n), (want), __FILE__, __LINE__)

static uint64_t
dbits(double x)
{
    uint64_t b;
    memcpy(&b, &x, sizeof b);
    return b;
}

/* ------------------------------------------------------------------------- */

static void
test_calcsize(void **state)
{
    (void)state;
    static const struct {
        const char *fmt;
        ssize_t size;
    } cases[] = {
        {"", 0},
        {"@", 0},
        {"<", 0},
        {"b", 1},
        {"@bq", 16},
        {"<bq", 9},
        {"llh0l", 24},
        {"@c0i", 4},
        {"=l", 4},
        {"@l", 8},
        {"@L", 8},
        {"<L", 4},
        {"@?e", 4},
        {"@bhilq", 24},
        {"<bhilq", 19},
        {"3s", 3},
        {"0s", 0},
        {"@b3sI", 8},
        {"4x", 4},
        {"i i\ti", 12},
        {"@be", 4},
        {"@bf", 8},
        {"@bd", 16},
        {"10p", 10},
        {"@bh0q", 8},
        {"@x0h", 2},
        {"@s0h", 2},
        {"@0h", 0},
        {"=bq", 9},
        {"@b2e", 6},
        {"@c?xhHiIlLqQefd5s3p", 72},
        {">bBhHiIlLqQ", 38},
        {"!e f d", 14},
        {"i\v\fi\r\n", 8},
        {"9223372036854775807x", (ssize_t)9223372036854775807},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        ssize_t got = sm_pack_calcsize(cases[k].fmt);
        if (got != cases[k].size) {
            print_error("calcsize(\"%s\") = %zd, want %zd\n", cases[k].fmt, got, cases[k].size);
            fail();
        }
    }
}

static void
test_count(void **state)
{
    (void)state;
    assert_int_equal(sm_pack_count(""), 0);
    assert_int_equal(sm_pack_count("4x"), 0);
    assert_int_equal(sm_pack_count("3h"), 3);
    assert_int_equal(sm_pack_count("0i"), 0);
    assert_int_equal(sm_pack_count("10s0s3p"), 3);
    assert_int_equal(sm_pack_count("<c?xhHiIlLqQefd5s3p"), 15);
    SM_ASSERT_ERR(sm_pack_count("z"), SM_ERR_FORMAT);
    SM_ASSERT_ERR(sm_pack_count(NULL), -EINVAL);
}

static void
test_bad_formats(void **state)
{
    (void)state;
    static const char *bad[] = {
        "z",
        "3",
        "<<i",
        " <i",
        "i<",
        "i@",
        "2 i",
        "i 3",
        "n",
        "N",
        "P",
        "!@",
        "h\x1c",
        "-1i",
        "i3",
        "3\t",
        "99999999999999999999999x",
        "9223372036854775807xb",
        "4611686018427387904h",
        "@b9223372036854775807x",
        "9223372036854775808x",
    };
    uint8_t buf[16];
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        ssize_t got = sm_pack_calcsize(bad[k]);
        if (got != SM_ERR_FORMAT) {
            print_error("calcsize(\"%s\") = %zd, want SM_ERR_FORMAT\n", bad[k], got);
            fail();
        }
        SM_ASSERT_ERR(sm_pack(buf, sizeof buf, bad[k], I64(1), I64(1)), SM_ERR_FORMAT);
        SM_ASSERT_ERR(sm_unpack(buf, sizeof buf, bad[k], NULL, NULL), SM_ERR_FORMAT);
        char why[160] = "";
        SM_ASSERT_ERR(sm_pack_check(bad[k], why, sizeof why), SM_ERR_FORMAT);
        assert_true(strncmp(why, "pack format '", 13) == 0);
    }
    SM_ASSERT_ERR(sm_pack_check(NULL, NULL, 0), -EINVAL);
    SM_ASSERT_ERR(sm_pack_calcsize(NULL), -EINVAL);
    SM_ASSERT_ERR(sm_pack(buf, sizeof buf, NULL), -EINVAL);
    SM_ASSERT_ERR(sm_unpack(buf, sizeof buf, NULL), -EINVAL);
    /* A format error wins over a short buffer: the format is checked first. */
    SM_ASSERT_ERR(sm_pack(NULL, 0, "iz", I64(1)), SM_ERR_FORMAT);
}

static void
check_why(const char *fmt, const char *want)
{
    char why[200] = "x";
    int rc = sm_pack_check(fmt, why, sizeof why);
    if (want) {
        SM_ASSERT_ERR(rc, SM_ERR_FORMAT);
        assert_string_equal(why, want);
    } else {
        assert_int_equal(rc, 0);
        assert_string_equal(why, "");
    }
}

/* Every way a format is wrong, and every value error, names the byte or the
 * value (issue 14: "malformed pack format" for '!Hz' said nothing). */
static void
test_why(void **state)
{
    (void)state;
    check_why("!Hz", "pack format '!Hz': unknown code 'z' at offset 2");
    check_why("<i!h", "pack format '<i!h': byte-order mark '!' at offset 2 (only the first "
                      "character may give the byte order)");
    check_why("!H3", "pack format '!H3': the count at offset 2 has no code after it");
    check_why("3 h", "pack format '3 h': the count at offset 0 has no code after it");
    check_why("h\x1c", "pack format 'h\\x1c': unknown code \\x1c at offset 1");
    check_why("i\\", "pack format 'i\\x5c': unknown code '\\' at offset 1");
    check_why("=n", "pack format '=n': code 'n' at offset 1 is native-only in Python's struct and "
                    "not supported");
    check_why("99999999999999999999999x",
              "pack format '99999999999999999999999x': the count at offset 0 is too large");
    check_why("!4611686018427387904h",
              "pack format '!4611686018427387904h': code 'h' at offset 20 takes the size over "
              "9223372036854775807 bytes");
    check_why("!HI 4s", NULL);
    /* A long format is cut in the message. */
    char longfmt[200];
    memset(longfmt, 'B', sizeof longfmt);
    longfmt[198] = 'z';
    longfmt[199] = '\0';
    char why[200];
    SM_ASSERT_ERR(sm_pack_check(longfmt, why, sizeof why), SM_ERR_FORMAT);
    assert_non_null(strstr(why, "BBB...': unknown code 'z' at offset 198"));
    /* A short buffer still gets a whole-format message, cut to fit. */
    char tiny[8];
    SM_ASSERT_ERR(sm_pack_check("!Hz", tiny, sizeof tiny), SM_ERR_FORMAT);
    assert_string_equal(tiny, "pack fo");

    uint8_t buf[16];
    sm_pack_value v[3] = {{.u = 1}, {.i = 300}, {.u = 0}};
    SM_ASSERT_ERR(sm_pack_values_why(buf, sizeof buf, "!Hb", v, 2, why, sizeof why), -ERANGE);
    assert_string_equal(why, "pack format '!Hb': value 1 (code 'b' at offset 2): 300 out of range "
                             "-128..127");
    v[0].u = 70000;
    SM_ASSERT_ERR(sm_pack_values_why(buf, sizeof buf, "!2H", v, 2, why, sizeof why), -ERANGE);
    assert_string_equal(why, "pack format '!2H': value 0 (code 'H' at offset 2): 70000 out of "
                             "range 0..65535");
    v[0].u = 1, v[1].i = 256;
    SM_ASSERT_ERR(sm_pack_values_why(buf, sizeof buf, "Bc", v, 2, why, sizeof why), -ERANGE);
    assert_string_equal(why, "pack format 'Bc': value 1 (code 'c' at offset 1): 256 out of range "
                             "0..255");
    v[1].d = 1e39;
    SM_ASSERT_ERR(sm_pack_values_why(buf, sizeof buf, "<Hf", v, 2, why, sizeof why), -ERANGE);
    assert_string_equal(why, "pack format '<Hf': value 1 (code 'f' at offset 2): 1e+39 does not "
                             "fit binary32");
    v[1].d = 70000;
    SM_ASSERT_ERR(sm_pack_values_why(buf, sizeof buf, "<He", v, 2, why, sizeof why), -ERANGE);
    assert_string_equal(why, "pack format '<He': value 1 (code 'e' at offset 2): 70000 does not "
                             "fit binary16");
    v[1] = (sm_pack_value){.ptr = NULL, .len = 3};
    SM_ASSERT_ERR(sm_pack_values_why(buf, sizeof buf, "!H4s", v, 2, why, sizeof why), -EINVAL);
    assert_string_equal(why, "pack format '!H4s': value 1 (code 's' at offset 3): NULL data with "
                             "length 3");
    SM_ASSERT_ERR(sm_pack_values_why(buf, sizeof buf, "!HH", v, 1, why, sizeof why), -EINVAL);
    assert_string_equal(why, "pack format '!HH' takes 2 values, got 1");
    SM_ASSERT_ERR(sm_pack_values_why(buf, 3, "!HH", v, 2, why, sizeof why), -ENOSPC);
    assert_string_equal(why, "pack format '!HH' needs 4 bytes, room for 3");
    SM_ASSERT_ERR(sm_pack_values_why(buf, sizeof buf, "!Hz", v, 2, why, sizeof why), SM_ERR_FORMAT);
    assert_string_equal(why, "pack format '!Hz': unknown code 'z' at offset 2");
    v[0].u = 1, v[1].u = 2;
    assert_int_equal(sm_pack_values_why(buf, sizeof buf, "!HH", v, 2, why, sizeof why), 4);
    assert_string_equal(why, "");

    sm_pack_value out[2];
    SM_ASSERT_ERR(sm_unpack_values_why(buf, 3, "!HI", out, 2, why, sizeof why), -EPROTO);
    assert_string_equal(why, "pack format '!HI' needs 6 bytes, input has 3");
    SM_ASSERT_ERR(sm_unpack_values_why(buf, 4, "!HH", out, 1, why, sizeof why), -EINVAL);
    assert_string_equal(why, "pack format '!HH' takes 2 values, room for 1");
    assert_int_equal(sm_unpack_values_why(buf, 4, "!HH", out, 2, NULL, 0), 4);
    assert_int_equal(out[1].u, 2);
}

static void
test_integers_big_little(void **state)
{
    (void)state;
    uint8_t buf[64];
    SM_ASSERT_ERR(sm_pack(buf, sizeof buf, ">bBhHiIlLqQ", I64(-2), U64(254), I64(-3), U64(65533),
                          I64(-4), U64(4294967292), I64(-5), U64(4294967291), I64(-6),
                          UINT64_MAX - 5),
                  38);
    CHECK_HEX(buf, 38,
              "fefefffdfffdfffffffcfffffffcfffffffbfffffffbfffffffffffffffaffffffffffffff"
              "fa");
    SM_ASSERT_ERR(sm_pack(buf, sizeof buf, "<bBhHiIlLqQ", I64(-2), U64(254), I64(-3), U64(65533),
                          I64(-4), U64(4294967292), I64(-5), U64(4294967291), I64(-6),
                          UINT64_MAX - 5),
                  38);
    CHECK_HEX(buf, 38,
              "fefefdfffdfffcfffffffcfffffffbfffffffbfffffffafffffffffffffffaffffffffffff"
              "ff");
    SM_ASSERT_ERR(sm_pack(buf, sizeof buf, "!hq", I64(0x0102), I64(0x0304050607080910)), 10);
    CHECK_HEX(buf, 10, "01020304050607080910");
    /* = is native order (little here) with standard sizes. */
    SM_ASSERT_ERR(sm_pack(buf, sizeof buf, "=lh", I64(1), I64(2)), 6);
    CHECK_HEX(buf, 6, "010000000200");

    int64_t b, h, i, l, q;
    uint64_t B, H, I, L, Q;
    SM_ASSERT_ERR(sm_unpack(buf, 0, "", NULL), 0);
    uint8_t in[38];
    unhex("fefefffdfffdfffffffcfffffffcfffffffbfffffffbfffffffffffffffafffffffffffffffa", in,
          sizeof in);
    SM_ASSERT_ERR(sm_unpack(in, sizeof in, ">bBhHiIlLqQ", &b, &B, &h, &H, &i, &I, &l, &L, &q, &Q),
                  38);
    assert_int_equal(b, -2);
    assert_int_equal(B, 254);
    assert_int_equal(h, -3);
    assert_int_equal(H, 65533);
    assert_int_equal(i, -4);
    assert_int_equal(I, 4294967292u);
    assert_int_equal(l, -5);
    assert_int_equal(L, 4294967291u);
    assert_int_equal(q, -6);
    assert_true(Q == UINT64_MAX - 5);
}

static void
test_integer_ranges(void **state)
{
    (void)state;
    static const struct {
        const char *fmt;
        int64_t lo, hi;
    } sgn[] = {
        {"<b", INT8_MIN, INT8_MAX},   {"<h", INT16_MIN, INT16_MAX}, {">i", INT32_MIN, INT32_MAX},
        {"<l", INT32_MIN, INT32_MAX}, {"=l", INT32_MIN, INT32_MAX}, {"@i", INT32_MIN, INT32_MAX},
        {"@h", INT16_MIN, INT16_MAX}, {"@b", INT8_MIN, INT8_MAX},
    };
    uint8_t buf[8];
    int64_t back;
    for (size_t k = 0; k < sizeof sgn / sizeof sgn[0]; k++) {
        const char *f = sgn[k].fmt;
        SM_ASSERT_OK(sm_pack(buf, sizeof buf, f, sgn[k].lo));
        SM_ASSERT_OK(sm_unpack(buf, sizeof buf, f, &back));
        assert_int_equal(back, sgn[k].lo);
        SM_ASSERT_OK(sm_pack(buf, sizeof buf, f, sgn[k].hi));
        SM_ASSERT_OK(sm_unpack(buf, sizeof buf, f, &back));
        assert_int_equal(back, sgn[k].hi);
        SM_ASSERT_ERR(sm_pack(buf, sizeof buf, f, sgn[k].lo - 1), -ERANGE);
        SM_ASSERT_ERR(sm_pack(buf, sizeof buf, f, sgn[k].hi + 1), -ERANGE);
        SM_ASSERT_ERR(sm_pack(buf, sizeof buf, f, INT64_MIN), -ERANGE);
        SM_ASSERT_ERR(sm_pack(buf, sizeof buf, f, INT64_MAX), -ERANGE);
    }
    static const struct {
        const char *fmt;
        uint64_t hi;
    } uns[] = {
        {"<B", UINT8_MAX},  {">H", UINT16_MAX}, {"<I", UINT32_MAX},
        {"!L", UINT32_MAX}, {"@H", UINT16_MAX}, {"@I", UINT32_MAX},
    };
    uint64_t ub;
    for (size_t k = 0; k < sizeof uns / sizeof uns[0]; k++) {
        const char *f = uns[k].fmt;
        SM_ASSERT_OK(sm_pack(buf, sizeof buf, f, U64(0)));
        SM_ASSERT_OK(sm_pack(buf, sizeof buf, f, uns[k].hi));
        SM_ASSERT_OK(sm_unpack(buf, sizeof buf, f, &ub));
        assert_true(ub == uns[k].hi);
        SM_ASSERT_ERR(sm_pack(buf, sizeof buf, f, uns[k].hi + 1), -ERANGE);
        SM_ASSERT_ERR(sm_pack(buf, sizeof buf, f, UINT64_MAX), -ERANGE);
    }
    /* 64-bit codes (native l/L are 8 bytes here) take the whole range. */
    static const char *s64[] = {"<q", ">q", "@q", "@l"};
    for (size_t k = 0; k < 4; k++) {
        SM_ASSERT_ERR(sm_pack(buf, sizeof buf, s64[k], INT64_MIN), 8);
        SM_ASSERT_OK(sm_unpack(buf, sizeof buf, s64[k], &back));
        assert_true(back == INT64_MIN);
        SM_ASSERT_ERR(sm_pack(buf, sizeof buf, s64[k], INT64_MAX), 8);
        SM_ASSERT_OK(sm_unpack(buf, sizeof buf, s64[k], &back));
        assert_true(back == INT64_MAX);
    }
    static const char *u64[] = {"<Q", ">Q", "@Q", "@L"};
    for (size_t k = 0; k < 4; k++) {
        SM_ASSERT_ERR(sm_pack(buf, sizeof buf, u64[k], UINT64_MAX), 8);
        SM_ASSERT_OK(sm_unpack(buf, sizeof buf, u64[k], &ub));
        assert_true(ub == UINT64_MAX);
    }
}

static void
test_char_bool(void **state)
{
    (void)state;
    uint8_t buf[8];
    SM_ASSERT_ERR(sm_pack(buf, sizeof buf, "<?c?", 5, 'A', 0), 3);
    CHECK_HEX(buf, 3, "014100");
    SM_ASSERT_ERR(sm_pack(buf, sizeof buf, "c", 255), 1);
    SM_ASSERT_ERR(sm_pack(buf, sizeof buf, "c", 256), -ERANGE);
    SM_ASSERT_ERR(sm_pack(buf, sizeof buf, "c", -1), -ERANGE);
    SM_ASSERT_ERR(sm_pack(buf, sizeof buf, "?", -7), 1);
    assert_int_equal(buf[0], 1);

    uint8_t in[] = {0x05, 0xff, 0x00};
    int b1 = -1, c = -1, b2 = -1;
    SM_ASSERT_ERR(sm_unpack(in, sizeof in, "?c?", &b1, &c, &b2), 3);
    assert_int_equal(b1, 1);
    assert_int_equal(c, 255);
    assert_int_equal(b2, 0);
}

static void
test_floats(void **state)
{
    (void)state;
    uint8_t buf[32];
    SM_ASSERT_ERR(sm_pack(buf, sizeof buf, "<dfe", 1.5, -2.25, 0.5), 14);
    CHECK_HEX(buf, 14, "000000000000f83f000010c00038");
    SM_ASSERT_ERR(sm_pack(buf, sizeof buf, ">dfe", 1.5, -2.25, 0.5), 14);
    CHECK_HEX(buf, 14, "3ff8000000000000c01000003800");
    double d, f, e;
    SM_ASSERT_ERR(sm_unpack(buf, 14, ">dfe", &d, &f, &e), 14);
    assert_true(d == 1.5 && f == -2.25 && e == 0.5);

    /* f rounds to nearest even; ties go to even. */
    SM_ASSERT_OK(sm_pack(buf, sizeof buf, "<f", 1 + 0x1p-24));
    CHECK_HEX(buf, 4, "0000803f");
    SM_ASSERT_OK(sm_pack(buf, sizeof buf, "<f", 1 + 3 * 0x1p-24));
    CHECK_HEX(buf, 4, "0200803f");
    /* The overflow edge: FLT_MAX + just under half an ulp rounds down; the
     * half-ulp tie rounds up to infinity, which is an overflow. */
    SM_ASSERT_OK(sm_pack(buf, sizeof buf, "<f", 0x1.fffffefffffffp127));
    CHECK_HEX(buf, 4, "ffff7f7f");
    static const char *ffmts[] = {"<f", ">f", "@f", "=f"};
    for (size_t k = 0; k < 4; k++) {
        SM_ASSERT_ERR(sm_pack(buf, sizeof buf, ffmts[k], 0x1.ffffffp127), -ERANGE);
        SM_ASSERT_ERR(sm_pack(buf, sizeof buf, ffmts[k], -0x1.ffffffp127), -ERANGE);
        SM_ASSERT_ERR(sm_pack(buf, sizeof buf, ffmts[k], 1e300), -ERANGE);
        SM_ASSERT_ERR(sm_pack(buf, sizeof buf, ffmts[k], -DBL_MAX), -ERANGE);
    }
    SM_ASSERT_OK(sm_pack(buf, sizeof buf, "<ff", INFINITY, -INFINITY));
    CHECK_HEX(buf, 8, "0000807f000080ff");
    SM_ASSERT_OK(sm_pack(buf, sizeof buf, "<f", (double)NAN));
    CHECK_HEX(buf, 4, "0000c07f");
    SM_ASSERT_OK(sm_pack(buf, sizeof buf, "<f", 1e-50));
    CHECK_HEX(buf, 4, "00000000");
    SM_ASSERT_OK(sm_pack(buf, sizeof buf, "<f", -0.0));
    CHECK_HEX(buf, 4, "00000080");
    SM_ASSERT_OK(sm_unpack(buf, 4, "<f", &f));
    assert_true(dbits(f) == dbits(-0.0));

    /* d is bit-exact both ways, NaN payloads included. */
    uint8_t nanbits[8] = {0x01, 0, 0, 0, 0, 0, 0xf8, 0x7f};
    SM_ASSERT_OK(sm_unpack(nanbits, 8, "<d", &d));
    assert_true(isnan(d));
    SM_ASSERT_OK(sm_pack(buf, sizeof buf, "<d", d));
    assert_memory_equal(buf, nanbits, 8);
    SM_ASSERT_OK(sm_pack(buf, sizeof buf, ">d", DBL_MIN / 4));
    SM_ASSERT_OK(sm_unpack(buf, 8, ">d", &d));
    assert_true(d == DBL_MIN / 4);
}

static void
test_half_rounding(void **state)
{
    (void)state;
    static const struct {
        double x;
        int bits; /* -1: -ERANGE */
    } cases[] = {
        {0.0, 0x0000},
        {-0.0, 0x8000},
        {1.0, 0x3c00},
        {-1.0, 0xbc00},
        {65504.0, 0x7bff},
        {-65504.0, 0xfbff},
        {65519.99, 0x7bff},
        {65519.999999999, 0x7bff},
        {65520.0, -1}, /* tie between 65504 (odd) and 65536: up, which overflows */
        {-65520.0, -1},
        {1e300, -1},
        {0x1p-24, 0x0001}, /* smallest subnormal */
        {0x1p-25, 0x0000}, /* half of it: tie to even (0) */
        {0x1.000001ad7f29bp-25, 0x0001},
        {0x1.8p-24, 0x0002},   /* 1.5 units: tie to even (2) */
        {0x1p-14, 0x0400},     /* smallest normal */
        {0x1.ffcp-15, 0x0400}, /* 1023.5 units: tie to even, into the normals */
        {0x1.ffep-15, 0x0400},
        {0x1.ff8p-15, 0x03ff},
        {0x1.ff4p-15, 0x03fe},       /* 1022.5 units: tie to even (1022) */
        {0x1.002p+0, 0x3c00},        /* 1 + 2^-11: tie to even (down) */
        {0x1.006p+0, 0x3c02},        /* 1 + 3 * 2^-11: tie to even (up) */
        {0x1.0020000001p+0, 0x3c01}, /* just over the tie */
        {2049.0, 0x6800},
        {2051.0, 0x6802},
        {4102.0, 0x6c02},
        {0.1, 0x2e66},
        {1.0 / 3, 0x3555},
        {1e-8, 0x0000},
        {6e-8, 0x0001},
        {1e-300, 0x0000},
        {0x0.0000000000001p-1022, 0x0000}, /* binary64 subnormal */
        {INFINITY, 0x7c00},
        {-INFINITY, 0xfc00},
        {NAN, 0x7e00},
        {-(double)NAN, 0xfe00},
    };
    uint8_t buf[2];
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        ssize_t rc = sm_pack(buf, sizeof buf, ">e", cases[k].x);
        int got = rc < 0 ? -1 : (buf[0] << 8 | buf[1]);
        if ((cases[k].bits < 0 && rc != -ERANGE) || got != cases[k].bits) {
            print_error("pack e %a: rc %zd bits %#06x, want %#06x\n", cases[k].x, rc, (unsigned)got,
                        (unsigned)cases[k].bits);
            fail();
        }
    }
}

/* Every half bit pattern unpacks to a double that packs back to it; NaNs stay
 * NaNs with their sign. */
static void
test_half_all_patterns(void **state)
{
    (void)state;
    for (unsigned h = 0; h < 0x10000; h++) {
        uint8_t in[2] = {(uint8_t)h, (uint8_t)(h >> 8)}, out[2];
        double x;
        SM_ASSERT_ERR(sm_unpack(in, 2, "<e", &x), 2);
        bool nan = (h & 0x7c00) == 0x7c00 && (h & 0x3ff);
        if (nan) {
            assert_true(isnan(x));
            assert_int_equal(!!signbit(x), !!(h & 0x8000));
            continue;
        }
        SM_ASSERT_ERR(sm_pack(out, 2, "<e", x), 2);
        if (memcmp(in, out, 2) != 0) {
            print_error("half %#06x -> %a -> %02x%02x\n", h, x, out[1], out[0]);
            fail();
        }
    }
    /* Spot values with exact doubles. */
    double x;
    uint8_t one[2] = {0x3c, 0x00}, tiny[2] = {0x00, 0x01}, big[2] = {0x7b, 0xff};
    sm_unpack(one, 2, ">e", &x);
    assert_true(x == 1.0);
    sm_unpack(tiny, 2, ">e", &x);
    assert_true(x == 0x1p-24);
    sm_unpack(big, 2, ">e", &x);
    assert_true(x == 65504.0);
}

static void
test_strings(void **state)
{
    (void)state;
    uint8_t buf[400];
    SM_ASSERT_ERR(sm_pack(buf, sizeof buf, "4s", "ab", (size_t)2), 4);
    CHECK_HEX(buf, 4, "61620000");
    SM_ASSERT_ERR(sm_pack(buf, sizeof buf, "2s", "abcd", (size_t)4), 2);
    CHECK_HEX(buf, 2, "6162");
    /* 0s still takes its pair; the next argument is b's. */
    SM_ASSERT_ERR(sm_pack(buf, sizeof buf, "<0sb", "zz", (size_t)2, I64(7)), 1);
    CHECK_HEX(buf, 1, "07");
    SM_ASSERT_ERR(sm_pack(buf, sizeof buf, "5p", "ab", (size_t)2), 5);
    CHECK_HEX(buf, 5, "0261620000");
    SM_ASSERT_ERR(sm_pack(buf, sizeof buf, "3p", "abcd", (size_t)4), 3);
    CHECK_HEX(buf, 3, "026162");
    SM_ASSERT_ERR(sm_pack(buf, sizeof buf, "1p", "abcd", (size_t)4), 1);
    CHECK_HEX(buf, 1, "00");
    SM_ASSERT_ERR(sm_pack(buf, sizeof buf, "<0pb", "", (size_t)0, I64(7)), 1);
    CHECK_HEX(buf, 1, "07");
    /* NULL data is fine with length 0, an error otherwise. */
    SM_ASSERT_ERR(sm_pack(buf, sizeof buf, "3s", NULL, (size_t)0), 3);
    CHECK_HEX(buf, 3, "000000");
    SM_ASSERT_ERR(sm_pack(buf, sizeof buf, "3s", NULL, (size_t)1), -EINVAL);
    SM_ASSERT_ERR(sm_pack(buf, sizeof buf, "3p", NULL, (size_t)1), -EINVAL);

    /* Over 255 bytes: p copies N - 1 bytes, the length byte saturates. */
    uint8_t data[280];
    memset(data, 'a', sizeof data);
    SM_ASSERT_ERR(sm_pack(buf, sizeof buf, "300p", data, sizeof data), 300);
    CHECK_HEX(buf, 3, "ff6161");
    assert_int_equal(buf[280], 'a');
    assert_int_equal(buf[281], 0);
    assert_int_equal(buf[299], 0);

    const uint8_t *v = NULL;
    size_t n = 99;
    uint8_t in[] = {0x09, 'a', 'b', 'c'};
    SM_ASSERT_ERR(sm_unpack(in, sizeof in, "4p", &v, &n), 4);
    assert_int_equal(n, 3); /* clamped to N - 1 */
    assert_ptr_equal(v, in + 1);
    in[0] = 2;
    SM_ASSERT_ERR(sm_unpack(in, sizeof in, "4p", &v, &n), 4);
    assert_int_equal(n, 2);
    SM_ASSERT_ERR(sm_unpack(in, sizeof in, "4s", &v, &n), 4);
    assert_int_equal(n, 4);
    assert_ptr_equal(v, in);
    SM_ASSERT_ERR(sm_unpack(in, sizeof in, "0p0s", &v, &n, NULL, NULL), 0);
    assert_int_equal(n, 0);
    SM_ASSERT_ERR(sm_unpack(NULL, 0, "0s", &v, &n), 0);
    assert_non_null(v);
    assert_int_equal(n, 0);
    SM_ASSERT_ERR(sm_pack(NULL, 0, "0s0p", "x", (size_t)1, "y", (size_t)1), 0);
}

static void
test_native_alignment(void **state)
{
    (void)state;
    uint8_t buf[128];
    memset(buf, 0xaa, sizeof buf);
    SM_ASSERT_ERR(sm_pack(buf, sizeof buf, "@bhbibqbl", I64(1), I64(0x0203), I64(4),
                          I64(0x05060708), I64(9), I64(0x0a0b0c0d0e0f1011), I64(0x12), I64(-2)),
                  40);
    CHECK_HEX(buf, 40,
              "0100030204000000080706050900000011100f0e0d0c0b0a1200000000000000feffffffffff"
              "ffff");
    memset(buf, 0xaa, sizeof buf);
    SM_ASSERT_ERR(sm_pack(buf, sizeof buf, "@bxh", I64(1), I64(2)), 4);
    CHECK_HEX(buf, 4, "01000200");
    /* Default order is @. */
    memset(buf, 0xaa, sizeof buf);
    SM_ASSERT_ERR(sm_pack(buf, sizeof buf, "c?xhHiIlLqQefd5s3p", 'A', 1, I64(-1), U64(2), I64(-3),
                          U64(4), I64(-5), U64(6), I64(-7), U64(8), 1.5, 2.5, 3.5, "hello",
                          (size_t)5, "xy", (size_t)2),
                  72);
    CHECK_HEX(buf, 72,
              "41010000ffff0200fdffffff04000000fbffffffffffffff0600000000000000f9ffffffffff"
              "ffff0800000000000000003e0000000020400000000000000c4068656c6c6f027879");
    /* A trailing 0 count pads to that alignment. */
    memset(buf, 0xaa, sizeof buf);
    SM_ASSERT_ERR(sm_pack(buf, sizeof buf, "llh0l", I64(1), I64(2), I64(3)), 24);
    CHECK_HEX(buf, 24, "010000000000000002000000000000000300000000000000");

    int c, t;
    int64_t h, i, l, q, bq;
    uint64_t H, I, L, Q;
    double e, f, d;
    const uint8_t *s, *p;
    size_t sl, pl;
    SM_ASSERT_ERR(sm_unpack(buf, 0, "@b", NULL), -EPROTO);
    uint8_t in[72];
    unhex("41010000ffff0200fdffffff04000000fbffffffffffffff0600000000000000f9ffffffffffffff08"
          "00000000000000003e0000000020400000000000000c4068656c6c6f027879",
          in, sizeof in);
    SM_ASSERT_ERR(sm_unpack(in, sizeof in, "c?xhHiIlLqQefd5s3p", &c, &t, &h, &H, &i, &I, &l, &L, &q,
                            &Q, &e, &f, &d, &s, &sl, &p, &pl),
                  72);
    assert_int_equal(c, 'A');
    assert_int_equal(t, 1);
    assert_int_equal(h, -1);
    assert_int_equal(H, 2);
    assert_int_equal(i, -3);
    assert_int_equal(I, 4);
    assert_int_equal(l, -5);
    assert_int_equal(L, 6);
    assert_int_equal(q, -7);
    assert_int_equal(Q, 8);
    assert_true(e == 1.5 && f == 2.5 && d == 3.5);
    assert_int_equal(sl, 5);
    assert_memory_equal(s, "hello", 5);
    assert_int_equal(pl, 2);
    assert_memory_equal(p, "xy", 2);
    /* Skipping with NULL pointers: h at 4, i aligned to 8. */
    SM_ASSERT_ERR(sm_unpack(in, sizeof in, "@4xhxi", NULL, &bq), 12);
    assert_int_equal(bq, -3);
}

static void
test_repeat_counts(void **state)
{
    (void)state;
    uint8_t buf[32];
    SM_ASSERT_ERR(sm_pack(buf, sizeof buf, ">3h2x2B", I64(1), I64(-1), I64(3), U64(4), U64(5)), 10);
    CHECK_HEX(buf, 10, "0001ffff000300000405");
    int64_t a, b, c;
    uint64_t d, e;
    SM_ASSERT_ERR(sm_unpack(buf, 10, ">3h2x2B", &a, &b, &c, &d, &e), 10);
    assert_true(a == 1 && b == -1 && c == 3 && d == 4 && e == 5);
    /* 0i takes no argument. */
    SM_ASSERT_ERR(sm_pack(buf, sizeof buf, "<0ib0q", I64(5)), 1);
    CHECK_HEX(buf, 1, "05");
    SM_ASSERT_ERR(sm_pack(buf, sizeof buf, "<2e", 1.0, -2.0), 4);
    CHECK_HEX(buf, 4, "003c00c0");
    SM_ASSERT_ERR(sm_pack(buf, sizeof buf, "<12x"), 12);
    CHECK_HEX(buf, 12, "000000000000000000000000");
    /* Whitespace between items; digits must touch their code. */
    SM_ASSERT_ERR(sm_pack(buf, sizeof buf, "< 2h\tb\n", I64(1), I64(2), I64(3)), 5);
    CHECK_HEX(buf, 5, "0100020003");
}

/* Pack into exactly-sized heap buffers so ASan reports any overflow, and
 * check that a short buffer is refused before a byte is written. */
static void
test_pack_bounds(void **state)
{
    (void)state;
    const char *fmt = "@bq3sHe";
    ssize_t size = sm_pack_calcsize(fmt);
    assert_int_equal(size, 24);
    for (ssize_t cap = 0; cap <= size; cap++) {
        uint8_t *buf = malloc((size_t)cap + 1);
        assert_non_null(buf);
        memset(buf, 0xaa, (size_t)cap + 1);
        ssize_t rc = sm_pack(buf, (size_t)cap, fmt, I64(1), I64(2), "abc", (size_t)3, U64(4), 1.0);
        if (cap < size) {
            SM_ASSERT_ERR(rc, -ENOSPC);
            for (ssize_t k = 0; k <= cap; k++)
                assert_int_equal(buf[k], 0xaa);
        } else {
            assert_int_equal(rc, size);
            assert_int_equal(buf[size], 0xaa);
        }
        free(buf);
    }
    SM_ASSERT_ERR(sm_pack(NULL, 0, "b", I64(1)), -ENOSPC);
    SM_ASSERT_ERR(sm_pack(NULL, 4, "b", I64(1)), -EINVAL);
    SM_ASSERT_ERR(sm_pack(NULL, 0, ""), 0);
}

static void
test_unpack_bounds(void **state)
{
    (void)state;
    const char *fmts[] = {"<q", ">I", "@bq", "@bq3sHe", "10p", "5s", "<d", "!e", "3x"};
    for (size_t f = 0; f < sizeof fmts / sizeof fmts[0]; f++) {
        ssize_t size = sm_pack_calcsize(fmts[f]);
        assert_true(size > 0);
        for (ssize_t len = 0; len <= size + 1; len++) {
            uint8_t *in = malloc((size_t)len + 1); /* + 1: malloc(0) may be NULL */
            assert_non_null(in);
            memset(in, 0x5a, (size_t)len);
            sm_pack_value vals[8];
            memset(vals, 0xcc, sizeof vals);
            ssize_t rc = sm_unpack_values(in, (size_t)len, fmts[f], vals, 8);
            if (len < size) {
                SM_ASSERT_ERR(rc, -EPROTO);
                /* Nothing written on error. */
                for (size_t k = 0; k < 8; k++)
                    assert_true(vals[k].u == 0xccccccccccccccccu);
            } else {
                assert_int_equal(rc, size); /* trailing bytes are left */
            }
            free(in);
        }
    }
    int64_t v = 42;
    SM_ASSERT_ERR(sm_unpack(NULL, 0, "b", &v), -EPROTO);
    assert_int_equal(v, 42);
    SM_ASSERT_ERR(sm_unpack(NULL, 3, "b", &v), -EINVAL);
}

static void
test_values_api(void **state)
{
    (void)state;
    uint8_t buf[64];
    sm_pack_value in[5] = {
        {.i = -3}, {.u = 70000}, {.d = 0.25}, {.ptr = "hey", .len = 3}, {.i = 'z'},
    };
    SM_ASSERT_ERR(sm_pack_values(buf, sizeof buf, ">hIe4sc", in, 5), 13);
    CHECK_HEX(buf, 13, "fffd000111703400686579007a");
    SM_ASSERT_ERR(sm_pack_values(buf, sizeof buf, ">hIe4sc", in, 4), -EINVAL);
    SM_ASSERT_ERR(sm_pack_values(buf, sizeof buf, ">hIe4sc", in, 6), -EINVAL);
    SM_ASSERT_ERR(sm_pack_values(buf, sizeof buf, ">hIe4sc", NULL, 5), -EINVAL);
    SM_ASSERT_ERR(sm_pack_values(buf, sizeof buf, "4x", NULL, 0), 4);
    in[0].i = 40000;
    SM_ASSERT_ERR(sm_pack_values(buf, sizeof buf, ">hIe4sc", in, 5), -ERANGE);
    in[0].i = -3;
    SM_ASSERT_ERR(sm_pack_values(buf, sizeof buf, ">hIe4sc", in, 5), 13);

    sm_pack_value out[6];
    SM_ASSERT_ERR(sm_unpack_values(buf, 13, ">hIe4sc", out, 4), -EINVAL);
    SM_ASSERT_ERR(sm_unpack_values(buf, 13, ">hIe4sc", out, 6), 13);
    assert_int_equal(out[0].i, -3);
    assert_int_equal(out[1].u, 70000);
    assert_true(out[2].d == 0.25);
    assert_int_equal(out[3].len, 4);
    assert_memory_equal(out[3].ptr, "hey\0", 4);
    assert_int_equal(out[4].i, 'z');
}

static ssize_t
pack_twice(uint8_t *a, uint8_t *b, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    /* sm_vpack copies ap, so the same list can be used again. */
    ssize_t r1 = sm_vpack(a, cap, fmt, ap);
    ssize_t r2 = sm_vpack(b, cap, fmt, ap);
    va_end(ap);
    assert_int_equal(r1, r2);
    return r1;
}

static ssize_t
unpack_v(const uint8_t *in, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ssize_t rc = sm_vunpack(in, len, fmt, ap);
    va_end(ap);
    return rc;
}

static void
test_va_list(void **state)
{
    (void)state;
    uint8_t a[16], b[16];
    SM_ASSERT_ERR(pack_twice(a, b, sizeof a, "<iHd", I64(-9), U64(9), 9.5), 14);
    assert_memory_equal(a, b, 14);
    int64_t i;
    uint64_t h;
    double d;
    SM_ASSERT_ERR(unpack_v(a, sizeof a, "<iHd", &i, &h, &d), 14);
    assert_true(i == -9 && h == 9 && d == 9.5);
}

/* Round-trip random values through every code in every byte order. */
static void
test_random_roundtrip(void **state)
{
    (void)state;
    uint64_t seed = 0x5eed0001, rng = seed;
    static const char codes[] = "cbB?hHiIlLqQefd";
    static const char orders[] = "@=<>!";
    for (int iter = 0; iter < 2000; iter++) {
        char fmt[16];
        char code = codes[sm_test_rand(&rng) % (sizeof codes - 1)];
        snprintf(fmt, sizeof fmt, "%c%c", orders[sm_test_rand(&rng) % 5], code);
        size_t size = (size_t)sm_pack_calcsize(fmt);
        sm_pack_value v = {.u = sm_test_rand(&rng)};
        uint64_t bits = size * 8;
        switch (code) {
        case 'c':
        case '?':
            v.i = (int64_t)(v.u & 0xff);
            break;
        case 'b':
        case 'h':
        case 'i':
        case 'l':
        case 'q':
            v.i = bits == 64 ? (int64_t)(v.u >> 1) * ((v.u & 1) ? -1 : 1)
                             : (int64_t)(v.u % ((uint64_t)1 << bits)) - ((int64_t)1 << (bits - 1));
            break;
        case 'e': {
            uint8_t h[2] = {(uint8_t)v.u, (uint8_t)((v.u >> 8) & 0x7b)}; /* finite */
            sm_unpack_values(h, 2, "<e", &v, 1);
            break;
        }
        case 'f': {
            uint8_t h[4] = {(uint8_t)v.u, (uint8_t)(v.u >> 8), (uint8_t)(v.u >> 16), 0x3f};
            sm_unpack_values(h, 4, "<f", &v, 1);
            break;
        }
        case 'd':
            v.d = (double)(int64_t)(v.u >> 11) * 0x1p-20;
            break;
        default:
            if (bits < 64) v.u &= ((uint64_t)1 << bits) - 1;
            break;
        }
        uint8_t buf[8];
        sm_pack_value back;
        if (sm_pack_values(buf, size, fmt, &v, 1) != (ssize_t)size ||
            sm_unpack_values(buf, size, fmt, &back, 1) != (ssize_t)size ||
            (code == '?' ? back.i != (v.i != 0) : back.u != v.u)) {
            print_error("seed %#" PRIx64 " iter %d fmt %s value %#" PRIx64 " back %#" PRIx64 "\n",
                        seed, iter, fmt, v.u, back.u);
            fail();
        }
    }
}

/* ------------------------------------------------------------------------- */

static void
test_varint(void **state)
{
    (void)state;
    static const struct {
        uint64_t v;
        const char *hex;
    } cases[] = {
        {0, "00"},
        {1, "01"},
        {127, "7f"},
        {128, "8001"},
        {300, "ac02"},
        {16383, "ff7f"},
        {16384, "808001"},
        {UINT32_MAX, "ffffffff0f"},
        {(uint64_t)1 << 63, "80808080808080808001"},
        {UINT64_MAX, "ffffffffffffffffff01"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        uint8_t buf[SM_VARINT_MAX], want[SM_VARINT_MAX];
        size_t n = unhex(cases[k].hex, want, sizeof want);
        assert_int_equal(sm_pack_varint_size(cases[k].v), n);
        SM_ASSERT_ERR(sm_pack_varint(buf, sizeof buf, cases[k].v), (int)n);
        CHECK_HEX(buf, n, cases[k].hex);
        SM_ASSERT_ERR(sm_pack_varint(buf, n - 1, cases[k].v), -ENOSPC);
        /* Decode from an exact heap copy so ASan sees any overread; every
         * strict prefix is truncated. */
        for (size_t len = 0; len <= n; len++) {
            uint8_t *in = malloc(len + 1);
            assert_non_null(in);
            memcpy(in, want, len);
            uint64_t v = 12345;
            int rc = sm_unpack_varint(in, len, &v);
            if (len < n) {
                SM_ASSERT_ERR(rc, -EPROTO);
                assert_int_equal(v, 12345);
            } else {
                SM_ASSERT_ERR(rc, (int)n);
                assert_true(v == cases[k].v);
            }
            free(in);
        }
    }
    uint64_t v = 7;
    /* 11 bytes: the tenth still says "more". */
    uint8_t eleven[11] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x81, 0x00};
    SM_ASSERT_ERR(sm_unpack_varint(eleven, sizeof eleven, &v), -EPROTO);
    /* Ten bytes but a value over 64 bits. */
    uint8_t over[10] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02};
    SM_ASSERT_ERR(sm_unpack_varint(over, sizeof over, &v), -EPROTO);
    uint8_t zeros[10] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80};
    SM_ASSERT_ERR(sm_unpack_varint(zeros, sizeof zeros, &v), -EPROTO);
    assert_int_equal(v, 7);
    /* Non-shortest forms are accepted. */
    uint8_t longzero[2] = {0x80, 0x00};
    SM_ASSERT_ERR(sm_unpack_varint(longzero, 2, &v), 2);
    assert_int_equal(v, 0);
    SM_ASSERT_ERR(sm_unpack_varint(longzero, 2, NULL), 2);
    SM_ASSERT_ERR(sm_unpack_varint(NULL, 0, &v), -EPROTO);
    SM_ASSERT_ERR(sm_pack_varint(NULL, 0, 0), -ENOSPC);
    SM_ASSERT_ERR(sm_pack_varint(NULL, 10, 0), -EINVAL);

    /* Random round trips across all sizes. */
    uint64_t seed = 0x7a71, rng = seed;
    for (int k = 0; k < 5000; k++) {
        uint64_t x = sm_test_rand(&rng) >> (sm_test_rand(&rng) % 64);
        uint8_t buf[SM_VARINT_MAX];
        int n = sm_pack_varint(buf, sizeof buf, x);
        uint64_t y = ~x;
        if (n != sm_pack_varint_size(x) || sm_unpack_varint(buf, (size_t)n, &y) != n || y != x) {
            print_error("seed %#" PRIx64 " k %d x %#" PRIx64 "\n", seed, k, x);
            fail();
        }
    }
}

static void
test_zigzag(void **state)
{
    (void)state;
    assert_true(sm_pack_zigzag(0) == 0);
    assert_true(sm_pack_zigzag(-1) == 1);
    assert_true(sm_pack_zigzag(1) == 2);
    assert_true(sm_pack_zigzag(-2) == 3);
    assert_true(sm_pack_zigzag(2147483647) == 4294967294u);
    assert_true(sm_pack_zigzag(-2147483648LL) == 4294967295u);
    assert_true(sm_pack_zigzag(INT64_MAX) == UINT64_MAX - 1);
    assert_true(sm_pack_zigzag(INT64_MIN) == UINT64_MAX);
    assert_true(sm_unpack_zigzag(0) == 0);
    assert_true(sm_unpack_zigzag(1) == -1);
    assert_true(sm_unpack_zigzag(2) == 1);
    assert_true(sm_unpack_zigzag(UINT64_MAX - 1) == INT64_MAX);
    assert_true(sm_unpack_zigzag(UINT64_MAX) == INT64_MIN);
    uint64_t rng = 0x2192;
    for (int k = 0; k < 5000; k++) {
        uint64_t u = sm_test_rand(&rng);
        assert_true(sm_pack_zigzag(sm_unpack_zigzag(u)) == u);
    }
}

static void
test_prefixed_bytes(void **state)
{
    (void)state;
    static const struct {
        sm_pack_prefix prefix;
        const char *hex; /* of "hi" */
    } cases[] = {
        {SM_PREFIX_VARINT, "026869"},
        {SM_PREFIX_U8, "026869"},
        {SM_PREFIX_U16BE, "00026869"},
        {SM_PREFIX_U16LE, "02006869"},
        {SM_PREFIX_U32BE, "000000026869"},
        {SM_PREFIX_U32LE, "020000006869"},
        {SM_PREFIX_U64BE, "00000000000000026869"},
        {SM_PREFIX_U64LE, "02000000000000006869"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        uint8_t buf[16];
        size_t n = strlen(cases[k].hex) / 2;
        SM_ASSERT_ERR(sm_pack_bytes(buf, sizeof buf, cases[k].prefix, "hi", 2), (ssize_t)n);
        CHECK_HEX(buf, n, cases[k].hex);
        SM_ASSERT_ERR(sm_pack_bytes(buf, n - 1, cases[k].prefix, "hi", 2), -ENOSPC);
        for (size_t len = 0; len <= n; len++) {
            uint8_t *in = malloc(len + 1);
            assert_non_null(in);
            memcpy(in, buf, len);
            const uint8_t *data = NULL;
            size_t dlen = 99;
            ssize_t rc = sm_unpack_bytes(in, len, cases[k].prefix, &data, &dlen);
            if (len < n) {
                SM_ASSERT_ERR(rc, -EPROTO);
                assert_null(data);
                assert_int_equal(dlen, 99);
            } else {
                SM_ASSERT_ERR(rc, (ssize_t)n);
                assert_int_equal(dlen, 2);
                assert_ptr_equal(data, in + n - 2);
            }
            free(in);
        }
    }
    uint8_t big[70000] = {0};
    uint8_t out[70010];
    SM_ASSERT_ERR(sm_pack_bytes(out, sizeof out, SM_PREFIX_U8, big, 255), 256);
    SM_ASSERT_ERR(sm_pack_bytes(out, sizeof out, SM_PREFIX_U8, big, 256), -EMSGSIZE);
    SM_ASSERT_ERR(sm_pack_bytes(out, sizeof out, SM_PREFIX_U16LE, big, 65535), 65537);
    SM_ASSERT_ERR(sm_pack_bytes(out, sizeof out, SM_PREFIX_U16BE, big, 65536), -EMSGSIZE);
    SM_ASSERT_ERR(sm_pack_bytes(out, sizeof out, SM_PREFIX_VARINT, big, 70000), 70003);
    SM_ASSERT_ERR(sm_pack_bytes(out, sizeof out, SM_PREFIX_VARINT, NULL, 0), 1);
    SM_ASSERT_ERR(sm_pack_bytes(out, sizeof out, SM_PREFIX_VARINT, NULL, 1), -EINVAL);
    SM_ASSERT_ERR(sm_pack_bytes(out, sizeof out, (sm_pack_prefix)99, big, 1), -EINVAL);
    SM_ASSERT_ERR(sm_unpack_bytes(out, 3, (sm_pack_prefix)99, NULL, NULL), -EINVAL);
    /* A length larger than what follows, and a huge 64-bit one. */
    uint8_t lie[] = {0x05, 'a', 'b'};
    SM_ASSERT_ERR(sm_unpack_bytes(lie, sizeof lie, SM_PREFIX_U8, NULL, NULL), -EPROTO);
    uint8_t huge[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 'a'};
    SM_ASSERT_ERR(sm_unpack_bytes(huge, sizeof huge, SM_PREFIX_U64BE, NULL, NULL), -EPROTO);
    uint8_t badvar[] = {0x80, 0x80};
    SM_ASSERT_ERR(sm_unpack_bytes(badvar, sizeof badvar, SM_PREFIX_VARINT, NULL, NULL), -EPROTO);
}

static void
test_packer(void **state)
{
    (void)state;
    uint8_t buf[64];
    sm_packer p;
    sm_packer_init(&p, buf, sizeof buf);
    sm_packer_put_u8(&p, 0x01);
    sm_packer_put_u16be(&p, 0x0203);
    sm_packer_put_u16le(&p, 0x0405);
    sm_packer_put_u32be(&p, 0x06070809);
    sm_packer_put_u32le(&p, 0x0a0b0c0d);
    sm_packer_put_u64be(&p, 0x0e0f101112131415);
    sm_packer_put_u64le(&p, 0x161718191a1b1c1d);
    sm_packer_put_varint(&p, 300);
    sm_packer_put_raw(&p, "ab", 2);
    sm_packer_put_bytes(&p, SM_PREFIX_U8, "cd", 2);
    /* Alignment under @ restarts at the cursor: b, 1 pad byte, h. */
    sm_packer_pack(&p, "@bh", I64(-1), I64(0x1234));
    SM_ASSERT_ERR(sm_packer_finish(&p), 40);
    CHECK_HEX(buf, 40,
              "0102030504060708090d0c0b0a0e0f101112131415"
              "1d1c1b1a19181716ac026162026364ff003412");

    /* Sticky ENOSPC: the failing write and all later ones write nothing. */
    uint8_t small[5];
    memset(small, 0xee, sizeof small);
    sm_packer_init(&p, small, 4);
    sm_packer_put_u16be(&p, 0xabcd);
    sm_packer_put_u32be(&p, 1);
    assert_int_equal(p.err, -ENOSPC);
    sm_packer_put_u8(&p, 7);
    sm_packer_put_varint(&p, 1);
    sm_packer_put_raw(&p, "x", 1);
    sm_packer_pack(&p, "b", I64(1));
    assert_int_equal(p.pos, 2);
    SM_ASSERT_ERR(sm_packer_finish(&p), -ENOSPC);
    CHECK_HEX(small, 5, "abcdeeeeee");

    /* The first error wins. */
    sm_packer_init(&p, buf, sizeof buf);
    sm_packer_pack(&p, "b", I64(1000));
    sm_packer_put_raw(&p, buf, 100);
    SM_ASSERT_ERR(sm_packer_finish(&p), -ERANGE);
    sm_packer_init(&p, buf, sizeof buf);
    sm_packer_pack(&p, "y");
    SM_ASSERT_ERR(sm_packer_finish(&p), SM_ERR_FORMAT);
    sm_packer_init(&p, buf, sizeof buf);
    sm_packer_put_bytes(&p, SM_PREFIX_U8, buf, 300);
    SM_ASSERT_ERR(sm_packer_finish(&p), -EMSGSIZE);
    sm_packer_init(&p, buf, sizeof buf);
    sm_packer_put_raw(&p, NULL, 1);
    SM_ASSERT_ERR(sm_packer_finish(&p), -EINVAL);

    /* A NULL buffer: empty writes succeed, others fail. */
    sm_packer_init(&p, NULL, 100);
    sm_packer_put_raw(&p, NULL, 0);
    sm_packer_pack(&p, "0s", "", (size_t)0);
    SM_ASSERT_ERR(sm_packer_finish(&p), 0);
    sm_packer_put_u8(&p, 1);
    SM_ASSERT_ERR(sm_packer_finish(&p), -ENOSPC);
}

static void
test_unpacker(void **state)
{
    (void)state;
    uint8_t in[40];
    unhex("0102030504060708090d0c0b0a0e0f1011121314151d1c1b1a19181716ac026162026364ff003412", in,
          sizeof in);
    sm_unpacker u;
    sm_unpacker_init(&u, in, sizeof in);
    assert_int_equal(sm_unpacker_get_u8(&u), 0x01);
    assert_int_equal(sm_unpacker_get_u16be(&u), 0x0203);
    assert_int_equal(sm_unpacker_get_u16le(&u), 0x0405);
    assert_int_equal(sm_unpacker_get_u32be(&u), 0x06070809);
    assert_int_equal(sm_unpacker_get_u32le(&u), 0x0a0b0c0d);
    assert_true(sm_unpacker_get_u64be(&u) == 0x0e0f101112131415);
    assert_true(sm_unpacker_get_u64le(&u) == 0x161718191a1b1c1d);
    assert_int_equal(sm_unpacker_get_varint(&u), 300);
    const uint8_t *raw = sm_unpacker_get_raw(&u, 2);
    assert_ptr_equal(raw, in + 31);
    size_t n;
    const uint8_t *bytes = sm_unpacker_get_bytes(&u, SM_PREFIX_U8, &n);
    assert_int_equal(n, 2);
    assert_memory_equal(bytes, "cd", 2);
    int64_t b = 0, h = 0;
    sm_unpacker_unpack(&u, "@bh", &b, &h);
    assert_true(b == -1 && h == 0x1234);
    SM_ASSERT_ERR(sm_unpacker_finish(&u), 40);
    assert_int_equal(u.pos, u.len);
    assert_non_null(sm_unpacker_get_raw(&u, 0));

    /* Sticky EPROTO, no overread: a heap copy of 3 bytes. */
    uint8_t *three = malloc(3);
    assert_non_null(three);
    memcpy(three, in, 3);
    sm_unpacker_init(&u, three, 3);
    assert_int_equal(sm_unpacker_get_u16be(&u), 0x0102);
    assert_int_equal(sm_unpacker_get_u16be(&u), 0); /* 1 byte left */
    assert_int_equal(u.err, -EPROTO);
    assert_int_equal(sm_unpacker_get_u8(&u), 0); /* would fit, but sticky */
    assert_null(sm_unpacker_get_raw(&u, 0));
    assert_int_equal(sm_unpacker_get_varint(&u), 0);
    n = 5;
    assert_null(sm_unpacker_get_bytes(&u, SM_PREFIX_U8, &n));
    assert_int_equal(n, 0);
    assert_int_equal(u.pos, 2);
    SM_ASSERT_ERR(sm_unpacker_finish(&u), -EPROTO);

    /* Each reader past the end, from a fresh state. */
    sm_unpacker_init(&u, three, 3);
    sm_unpacker_get_u32le(&u);
    SM_ASSERT_ERR(sm_unpacker_finish(&u), -EPROTO);
    sm_unpacker_init(&u, three, 3);
    sm_unpacker_get_u64be(&u);
    SM_ASSERT_ERR(sm_unpacker_finish(&u), -EPROTO);
    sm_unpacker_init(&u, three, 3);
    assert_null(sm_unpacker_get_raw(&u, 4));
    SM_ASSERT_ERR(sm_unpacker_finish(&u), -EPROTO);
    sm_unpacker_init(&u, three, 3);
    assert_non_null(sm_unpacker_get_bytes(&u, SM_PREFIX_U8, &n)); /* 1 byte, 1 left over */
    SM_ASSERT_ERR(sm_unpacker_finish(&u), 2);
    three[0] = 5; /* announces more than follows */
    sm_unpacker_init(&u, three, 3);
    assert_null(sm_unpacker_get_bytes(&u, SM_PREFIX_U8, &n));
    SM_ASSERT_ERR(sm_unpacker_finish(&u), -EPROTO);
    assert_int_equal(u.pos, 0);
    free(three);

    uint8_t cont[2] = {0x80, 0x80};
    sm_unpacker_init(&u, cont, 2);
    sm_unpacker_get_varint(&u);
    SM_ASSERT_ERR(sm_unpacker_finish(&u), -EPROTO);
    int64_t q = 5;
    sm_unpacker_init(&u, cont, 2);
    sm_unpacker_unpack(&u, "<q", &q);
    SM_ASSERT_ERR(sm_unpacker_finish(&u), -EPROTO);
    assert_int_equal(q, 5);
    assert_int_equal(u.pos, 0);
    sm_unpacker_init(&u, cont, 2);
    sm_unpacker_unpack(&u, "<k", &q);
    SM_ASSERT_ERR(sm_unpacker_finish(&u), SM_ERR_FORMAT);

    sm_unpacker_init(&u, NULL, 10);
    assert_int_equal(u.len, 0);
    assert_non_null(sm_unpacker_get_raw(&u, 0));
    sm_unpacker_get_u8(&u);
    SM_ASSERT_ERR(sm_unpacker_finish(&u), -EPROTO);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_calcsize),
        cmocka_unit_test(test_count),
        cmocka_unit_test(test_bad_formats),
        cmocka_unit_test(test_integers_big_little),
        cmocka_unit_test(test_integer_ranges),
        cmocka_unit_test(test_char_bool),
        cmocka_unit_test(test_floats),
        cmocka_unit_test(test_half_rounding),
        cmocka_unit_test(test_half_all_patterns),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_native_alignment),
        cmocka_unit_test(test_repeat_counts),
        cmocka_unit_test(test_pack_bounds),
        cmocka_unit_test(test_unpack_bounds),
        cmocka_unit_test(test_values_api),
        cmocka_unit_test(test_va_list),
        cmocka_unit_test(test_random_roundtrip),
        cmocka_unit_test(test_varint),
        cmocka_unit_test(test_zigzag),
        cmocka_unit_test(test_prefixed_bytes),
        cmocka_unit_test(test_packer),
        cmocka_unit_test(test_unpacker),
        cmocka_unit_test(test_why),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
