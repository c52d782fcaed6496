/* Frame decoders on hostile input: oversized and malformed frames, the errors
 * and details they give, stickiness, and the oversize=skip policy. */
#include "smtest.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_frame.h"

#define S(x)  x, sizeof(x) - 1
#define X80x9 "\x80\x80\x80\x80\x80\x80\x80\x80\x80"
#define FFx8  "\xff\xff\xff\xff\xff\xff\xff\xff"

/* One hostile input. `start` is where the offending frame starts (whole
 * messages before it are decoded; under oversize=close nothing from `start` on
 * is consumed). The decoder's err_pos must lie in [pos_lo, pos_hi]: the
 * offending byte, or for a header the start of that header; for
 * SM_ERR_TRUNCATED (which only sm_frame_decode_eof reports) it is not checked. */
struct bad {
    const char *spec;
    const char *in;
    size_t len;
    int want;
    int also; /* another acceptable error, else 0 */
    uint64_t start;
    uint64_t pos_lo, pos_hi;
};

static const struct bad table[] = {
    /* A length over max, found from the header alone: no payload is fed. */
    {"len8,max=10", S("\x0b"), -EMSGSIZE, 0, 0, 0, 0},
    {"len16be,max=100", S("\x00\x65"), -EMSGSIZE, 0, 0, 0, 1},
    {"len16le,max=100", S("\x65\x00"), -EMSGSIZE, 0, 0, 0, 1},
    {"len32be", S("\x01\x00\x00\x01"), -EMSGSIZE, 0, 0, 0, 3},
    {"len32le", S("\x01\x00\x00\x01"), -EMSGSIZE, 0, 0, 0, 3},
    {"len32be,max=1K,offset=3", S("abc\x00\x00\x04\x01"), -EMSGSIZE, 0, 0, 0, 6},
    {"len16be,adjust=2,max=10", S("\x00\x0d"), -EMSGSIZE, 0, 0, 0, 1},
    {"len8,adjust=-100,max=200", S("\x65"), -EMSGSIZE, 0, 0, 0, 0},
    /* len64 near 2^64, and lengths that only wrap around with adjust. */
    {"len64be", S(FFx8), -EMSGSIZE, 0, 0, 0, 7},
    {"len64le", S("\x00\x00\x00\x00\x00\x00\x00\x80"), -EMSGSIZE, 0, 0, 0, 7},
    {"len64be,adjust=-1", S(FFx8), -EMSGSIZE, 0, 0, 0, 7},
    /* 2^64 - 50 - (-100) wraps to 50, and 50 payload bytes follow. */
    {"len64le,adjust=-100",
     S("\xce\xff\xff\xff\xff\xff\xff\xff"
       "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"),
     -EMSGSIZE, 0, 0, 0, 7},
    /* adjust making a length negative. */
    {"len16be,adjust=2", S("\x00\x01"), -EPROTO, 0, 0, 0, 1},
    {"len8,adjust=5", S("\x00"), -EPROTO, 0, 0, 0, 0},
    {"len32le,adjust=4,offset=2", S("zz\x03\x00\x00\x00"), -EPROTO, 0, 0, 0, 5},
    {"len64be,adjust=1000000", S("\x00\x00\x00\x00\x00\x0f\x42\x3f"), -EPROTO, 0, 0, 0, 7},
    /* ascii:N */
    {"ascii:5", S("00a12"), -EPROTO, 0, 0, 2, 2},
    {"ascii:3", S(" 12"), -EPROTO, 0, 0, 0, 0},
    {"ascii:3", S("-12"), -EPROTO, 0, 0, 0, 0},
    {"ascii:2", S("1\xff"), -EPROTO, 0, 0, 1, 1},
    {"ascii:3", S("12\x00"), -EPROTO, 0, 0, 2, 2},
    {"ascii:3", S("0:1"), -EPROTO, 0, 0, 1, 1}, /* ':' and '/' border the digits */
    {"ascii:12", S("00000000/001"), -EPROTO, 0, 0, 8, 8},
    {"ascii:10", S("000000:001"), -EPROTO, 0, 0, 6, 6},
    {"ascii:4,max=100", S("0101"), -EMSGSIZE, 0, 0, 0, 3},
    {"ascii:3,max=4", S("005"), -EMSGSIZE, 0, 0, 0, 2},
    {"ascii:20", S("99999999999999999999"), -EMSGSIZE, -EPROTO, 0, 0, 19},
    /* 2^64 + 1: wraps to 1, and one payload byte follows. A length that does
     * not fit 64 bits is over max, or malformed: either error will do. */
    {"ascii:20", S("18446744073709551617Z"), -EMSGSIZE, -EPROTO, 0, 0, 19},
    {"ascii:3", S("00"), SM_ERR_TRUNCATED, 0, 0, 0, 0},
    /* netstring */
    {"netstring", S("5:hello!"), -EPROTO, 0, 0, 7, 7},
    {"netstring", S("5:hello,3:abc;"), -EPROTO, 0, 8, 13, 13},
    {"netstring", S("3:abc5:hello,"), -EPROTO, 0, 0, 5, 5},
    {"netstring", S("x:"), -EPROTO, 0, 0, 0, 0},
    {"netstring", S(":,"), -EPROTO, 0, 0, 0, 0},
    {"netstring", S("12x"), -EPROTO, 0, 0, 2, 2},
    {"netstring", S("-1:"), -EPROTO, 0, 0, 0, 0},
    {"netstring", S("5:hello"), SM_ERR_TRUNCATED, 0, 0, 0, 0},
    /* An oversized netstring being skipped still needs its ','. */
    {"netstring,max=3,oversize=skip", S("5:hello!"), -EPROTO, 0, 0, 7, 7},
    {"netstring,max=100", S("101:"), -EMSGSIZE, 0, 0, 0, 3},
    {"netstring", S("20000000:"), -EMSGSIZE, 0, 0, 0, 8},
    {"netstring", S("99999999999999999999999:"), -EMSGSIZE, -EPROTO, 0, 0, 23},
    {"netstring", S("18446744073709551617:"), -EMSGSIZE, -EPROTO, 0, 0, 20},
    /* varint */
    {"varint", S(X80x9 "\x80\x00"), -EPROTO, 0, 0, 0, 10},
    {"varint", S(X80x9 "\x02"), -EPROTO, 0, 0, 0, 9},
    {"varint", S("\x81\x80\x80\x80\x80\x80\x80\x80\x80\x7f"), -EPROTO, 0, 0, 0, 9},
    {"varint", S(FFx8 "\xff\x01"), -EMSGSIZE, 0, 0, 0, 9},
    {"varint,max=127", S("\x80\x01"), -EMSGSIZE, 0, 0, 0, 1},
    {"varint",
     S("\x05"
       "ab"),
     SM_ERR_TRUNCATED, 0, 0, 0, 0},
    /* type: */
    {"type:A=4;B=(len16be)", S("C"), -EPROTO, 0, 0, 0, 0},
    {"type:A=4;B=(len16be)", S("A1234\x00"), -EPROTO, 0, 5, 5, 5},
    {"type:A=4;B=(len16be),max=100", S("B\x00\x65"), -EMSGSIZE, 0, 0, 0, 2},
    {"type:A=(netstring)", S("A5:hello?"), -EPROTO, 0, 0, 8, 8},
    {"type:A=(ascii:3)", S("A0x1"), -EPROTO, 0, 0, 2, 2},
    {"type:A=(len8,adjust=3)", S("A\x02"), -EPROTO, 0, 0, 0, 1},
    {"type:A=(varint)", S("A" X80x9 "\x80\x00"), -EPROTO, 0, 0, 0, 11},
    {"type:0x03=(line),max=4",
     S("\x03"
       "abcde"),
     -EMSGSIZE, 0, 0, 0, 5},
    {"type:A=4", S("A12"), SM_ERR_TRUNCATED, 0, 0, 0, 0},
    /* Delimiters not found within max: reported by the time max payload
     * bytes and a full delimiter's worth more have arrived. */
    {"line,max=8", S("123456789"), -EMSGSIZE, 0, 0, 0, 8},
    {"line,max=3", S("ok\nabcd"), -EMSGSIZE, 0, 3, 3, 6},
    {"crlf,max=4", S("abcd\rX"), -EMSGSIZE, 0, 0, 0, 5},
    {"delim:\\r\\n\\r\\n,max=3", S("abc\r\n\rX"), -EMSGSIZE, 0, 0, 0, 6},
    {"nul,max=2", S("ab\x01"), -EMSGSIZE, 0, 0, 0, 2},
    {"delim:aba,max=2", S("xyabb"), -EMSGSIZE, 0, 0, 0, 4},
    {"crlf,max=4", S("abcd\r"), SM_ERR_TRUNCATED, 0, 0, 0, 0},
    {"line", S("abc"), SM_ERR_TRUNCATED, 0, 0, 0, 0},
    /* Truncated at EOF. */
    {"fixed:4", S("abcdef"), SM_ERR_TRUNCATED, 0, 4, 0, 0},
    {"len32be",
     S("\x00\x00\x00\x05"
       "abc"),
     SM_ERR_TRUNCATED, 0, 0, 0, 0},
    {"len32be", S("\x00\x00"), SM_ERR_TRUNCATED, 0, 0, 0, 0},
    {"len16le,offset=2", S("ab\x01"), SM_ERR_TRUNCATED, 0, 0, 0, 0},
    /* eof framing over max. */
    {"eof,max=10", S("01234567890"), -EMSGSIZE, 0, 0, 0, 10},
};

#define NBAD (sizeof table / sizeof table[0])

static void
parse_or_fail(sm_frame_spec *s, const char *str)
{
    char why[256] = "";
    int rc = sm_frame_spec_parse(s, str, why, sizeof why);
    if (rc != 0) fail_msg("sm_frame_spec_parse(\"%s\") = %s: %s", str, sm_err_name(rc), why);
    if (!tf_format_roundtrips(s, why, sizeof why)) fail_msg("spec \"%s\": %s", str, why);
}

/* Whether s contains the decimal number v as a whole number. */
static bool
has_number(const char *s, uint64_t v)
{
    char num[32];
    snprintf(num, sizeof num, "%" PRIu64, v);
    size_t k = strlen(num);
    for (const char *p = strstr(s, num); p; p = strstr(p + 1, num)) {
        bool left = p == s || p[-1] < '0' || p[-1] > '9';
        bool right = p[k] < '0' || p[k] > '9';
        if (left && right) return true;
    }
    return false;
}

/* A valid frame to put in front of a row's input: shifts every stream offset. */
static void
valid_prefix(const sm_frame_spec *spec, tf_stream *s)
{
    int type = tf_first_type(spec);
    const sm_frame_basic *b = tf_codec_for(spec, type);
    assert_non_null(b);
    uint64_t lo, hi;
    tf_payload_range(b, sm_frame_max(spec), &lo, &hi);
    assert_true(lo <= hi);
    size_t n = (size_t)(lo > 5 ? lo : (hi < 5 ? hi : 5));
    uint8_t p[256];
    assert_true(n <= sizeof p);
    memset(p, 'p', n);
    SM_ASSERT_OK(tf_stream_add(s, spec, p, n, type, NULL));
}

/* Check one run of a row against the row's expectations, `shift` bytes of
 * valid frames in front of the row's input. */
static void
check_row(size_t i, const char *spec_str, const sm_frame_spec *spec, const tf_run *r,
          uint64_t shift, const char *how)
{
    const struct bad *b = &table[i];
    if (r->fail[0]) fail_msg("row %zu \"%s\" (%s): %s", i, spec_str, how, r->fail);
    if (b->want == SM_ERR_TRUNCATED) {
        if (r->err)
            fail_msg("row %zu \"%s\" (%s): error %s (%s), want SM_ERR_TRUNCATED at EOF", i,
                     spec_str, how, sm_err_name(r->err), r->detail);
        if (r->eof_ret != SM_ERR_TRUNCATED)
            fail_msg("row %zu \"%s\" (%s): decode_eof gave %s, want SM_ERR_TRUNCATED", i, spec_str,
                     how, sm_err_name(r->eof_ret));
    } else {
        if (r->err != b->want && (b->also == 0 || r->err != b->also))
            fail_msg("row %zu \"%s\" (%s): got %s, want %s (%llu messages before)", i, spec_str,
                     how, r->err ? sm_err_name(r->err) : "no error", sm_err_name(b->want),
                     (unsigned long long)r->ev.n);
        if (r->err_pos < b->pos_lo + shift || r->err_pos > b->pos_hi + shift)
            fail_msg("row %zu \"%s\" (%s): err_pos %llu, want %llu..%llu (detail: %s)", i, spec_str,
                     how, (unsigned long long)r->err_pos, (unsigned long long)(b->pos_lo + shift),
                     (unsigned long long)(b->pos_hi + shift), r->detail);
        /* The detail names the offending offset (malformed input) or the limit
         * (oversized input). */
        if (r->err == -EPROTO && !has_number(r->detail, r->err_pos))
            fail_msg("row %zu \"%s\" (%s): detail does not give offset %llu: %s", i, spec_str, how,
                     (unsigned long long)r->err_pos, r->detail);
        if (r->err == -EMSGSIZE && !has_number(r->detail, sm_frame_max(spec)))
            fail_msg("row %zu \"%s\" (%s): detail does not give max %llu: %s", i, spec_str, how,
                     (unsigned long long)sm_frame_max(spec), r->detail);
    }
    /* Nothing of the offending frame is consumed, unless it was oversized and
     * being skipped when the error showed. */
    bool skipping = r->skipped > 0 && spec->oversize == SM_OVERSIZE_SKIP;
    if (!skipping && r->consumed != b->start + shift)
        fail_msg("row %zu \"%s\" (%s): consumed %llu, want %llu", i, spec_str, how,
                 (unsigned long long)r->consumed, (unsigned long long)(b->start + shift));
    if (r->skipped != 0 && !strstr(b->spec, "oversize=skip"))
        fail_msg("row %zu \"%s\" (%s): skipped %llu", i, spec_str, how,
                 (unsigned long long)r->skipped);
}

static void
run_row(size_t i, const char *spec_str, bool with_prefix, bool every_split)
{
    const struct bad *b = &table[i];
    sm_frame_spec spec;
    parse_or_fail(&spec, spec_str);
    if (with_prefix && spec.kind == SM_FRAME_EOF)
        return; /* the stream is one message: nothing can come before */
    tf_stream s = {0};
    if (with_prefix) valid_prefix(&spec, &s);
    uint64_t shift = s.len;
    tf_stream_put(&s, b->in, b->len);

    char how[96], why[512];
    tf_run all;
    tf_feed fa = {.mode = TF_ALL, .exact = true, .eof = true};
    tf_decode(&spec, s.p, s.len, &fa, &all);
    snprintf(how, sizeof how, "all at once%s", with_prefix ? ", after a valid frame" : "");
    check_row(i, spec_str, &spec, &all, shift, how);
    if (with_prefix && (all.ev.n < 1 || all.ev.v[0].frame_len != shift))
        fail_msg("row %zu \"%s\": the valid frame in front was not decoded", i, spec_str);

    tf_run one;
    tf_feed fb = {.mode = TF_BYTES, .exact = true, .eof = true};
    tf_decode(&spec, s.p, s.len, &fb, &one);
    snprintf(how, sizeof how, "byte by byte%s", with_prefix ? ", after a valid frame" : "");
    check_row(i, spec_str, &spec, &one, shift, how);
    if (!tf_runs_agree(&all, &one, why, sizeof why))
        fail_msg("row %zu \"%s\": all at once and byte by byte differ: %s", i, spec_str, why);
    tf_run_free(&one);

    for (size_t at = 0; every_split && at <= s.len; at++) {
        tf_run r;
        tf_feed f = {.mode = TF_SPLIT, .split = at, .exact = true, .eof = true};
        tf_decode(&spec, s.p, s.len, &f, &r);
        snprintf(how, sizeof how, "split at %zu", at);
        check_row(i, spec_str, &spec, &r, shift, how);
        if (!tf_runs_agree(&all, &r, why, sizeof why))
            fail_msg("row %zu \"%s\": split at %zu differs from all at once: %s", i, spec_str, at,
                     why);
        tf_run_free(&r);
    }
    tf_run_free(&all);
    tf_stream_free(&s);
}

static void
test_table(void **state)
{
    (void)state;
    assert_true(NBAD >= 40);
    for (size_t i = 0; i < NBAD; i++) {
        run_row(i, table[i].spec, false, true);
        run_row(i, table[i].spec, true, false);
    }
}

/* Malformed input is never skipped: the same error under oversize=skip. */
static void
test_malformed_not_skipped(void **state)
{
    (void)state;
    for (size_t i = 0; i < NBAD; i++) {
        /* (A row that may also be EMSGSIZE may be skipped.) */
        if (table[i].want != -EPROTO || strstr(table[i].spec, "oversize=")) continue;
        char spec_str[256];
        snprintf(spec_str, sizeof spec_str, "%s,oversize=skip", table[i].spec);
        run_row(i, spec_str, false, true);
        run_row(i, spec_str, true, false);
    }
}

/* The detail is empty while healthy and says which byte, in words, after. */
static void
test_detail(void **state)
{
    (void)state;
    sm_frame_spec spec;
    sm_frame_decoder d;
    sm_frame_msg m;
    char out[256];
    parse_or_fail(&spec, "ascii:5");
    sm_frame_decoder_init(&d, &spec);
    memset(out, 'x', sizeof out);
    assert_int_equal(sm_frame_decoder_detail(&d, out, sizeof out), 0);
    assert_string_equal(out, "");
    const uint8_t in[] = "00002ok0000A";
    assert_int_equal(sm_frame_decode(&d, in, 7, &m), 7);
    SM_ASSERT_ERR(sm_frame_decode(&d, in + 7, 5, &m), -EPROTO);
    assert_int_equal(d.err_pos, 11);
    assert_int_equal(d.err_byte, 'A');
    int n = sm_frame_decoder_detail(&d, out, sizeof out);
    assert_true(n > 0);
    assert_int_equal((size_t)n, strlen(out));
    if (!has_number(out, 11) || !(strstr(out, "0x41") || strstr(out, "'A'")))
        fail_msg("detail does not name byte 'A' at offset 11: %s", out);
    /* Truncated to fit, still terminated. */
    char small[8];
    n = sm_frame_decoder_detail(&d, small, sizeof small);
    assert_true(n >= 0 && n < (int)sizeof small);
    assert_int_equal(strlen(small), (size_t)n);
    /* Re-initialising clears the error. */
    sm_frame_decoder_init(&d, &spec);
    assert_int_equal(d.err, 0);
    assert_int_equal(sm_frame_decoder_detail(&d, out, sizeof out), 0);
    assert_int_equal(sm_frame_decode(&d, in, 7, &m), 7);
}

/* ---- oversize=skip --------------------------------------------------------------------- */

struct skip_case {
    const char *spec;     /* what decodes: a small max, oversize=skip */
    const char *big_spec; /* the same codec with room to encode oversized messages */
    int types[8];         /* per message: the type byte (type: specs), else ignored */
    size_t lens[8];       /* per message: the payload length */
    size_t n;
};

static const struct skip_case skip_cases[] = {
    {"len32be,max=10,oversize=skip", "len32be,max=1M", {0}, {5, 100, 10, 11, 0, 3000, 7}, 7},
    {"len8,max=3,oversize=skip", "len8", {0}, {1, 200, 3, 4, 0}, 5},
    {"len16le,adjust=2,offset=1,max=20,oversize=skip",
     "len16le,adjust=2,offset=1",
     {0},
     {20, 21, 500, 2},
     4},
    {"len64be,adjust=-3,max=10,oversize=skip", "len64be,adjust=-3", {0}, {3, 11, 400, 10}, 4},
    {"varint,max=100,oversize=skip", "varint", {0}, {100, 101, 20000, 0, 5}, 5},
    {"netstring,max=10,oversize=skip", "netstring", {0}, {10, 11, 1000, 3}, 4},
    {"ascii:4,max=10,oversize=skip", "ascii:4", {0}, {3, 9999, 10, 11}, 4},
    {"type:A=4;B=(len16be);C=(line);D=(netstring),max=10,oversize=skip",
     "type:A=4;B=(len16be);C=(line);D=(netstring),max=1M",
     {'A', 'B', 'C', 'B', 'C', 'D', 'D', 'A'},
     {4, 300, 50, 10, 11, 40, 2, 4},
     8},
    {"line,max=10,oversize=skip", "line", {0}, {10, 11, 500, 0, 3}, 5},
    {"crlf,max=4,oversize=skip", "crlf", {0}, {4, 5, 100, 1, 6}, 5},
    {"delim:aba,max=4,oversize=skip", "delim:aba", {0}, {4, 5, 60, 2, 9}, 5},
    {"nul,max=1,oversize=skip", "nul", {0}, {1, 2, 0, 1}, 4},
    {"delim:0123456789abcdef,max=8,oversize=skip",
     "delim:0123456789abcdef",
     {0},
     {8, 9, 100, 0},
     4},
    {"eof,max=10,oversize=skip", "eof", {0}, {500}, 1},
    {"eof,max=10,oversize=skip", "eof", {0}, {10}, 1},
};

/* Build the case's stream with big_spec; payload bytes from the delimiter's
 * own alphabet, so partial delimiters straddle every chunk boundary. */
static void
build_skip_stream(const struct skip_case *c, const sm_frame_spec *small, const sm_frame_spec *big,
                  uint64_t seed, tf_stream *s, tf_events *want, uint64_t *want_skipped)
{
    uint64_t rng = seed;
    uint64_t max = sm_frame_max(small);
    *want_skipped = 0;
    for (size_t k = 0; k < c->n; k++) {
        int type = big->kind == SM_FRAME_TYPE ? c->types[k] : -1;
        const sm_frame_basic *b = tf_codec_for(big, type);
        assert_non_null(b);
        size_t n = c->lens[k];
        uint8_t *p = malloc(n ? n : 1);
        assert_non_null(p);
        tf_fill(&rng, p, n, b, k % 2 ? 1 : 0);
        tf_make_safe(p, n, b);
        size_t before = s->ev.n;
        int rc = tf_stream_add(s, big, p, n, type, &rng);
        if (rc != 0)
            fail_msg("\"%s\": encoding message %zu (%zu bytes) gave %s", c->big_spec, k, n,
                     sm_err_name(rc));
        free(p);
        assert_int_equal(s->ev.n, before + 1);
        if (n > max)
            ++*want_skipped;
        else
            tf_events_push(want, &s->ev.v[before]);
    }
}

static void
check_skip_run(const struct skip_case *c, const sm_frame_spec *small, const tf_stream *s,
               const tf_events *want, uint64_t want_skipped, const tf_run *r, const char *how)
{
    char why[512];
    if (r->fail[0]) fail_msg("\"%s\" %s: %s", c->spec, how, r->fail);
    if (r->err) fail_msg("\"%s\" %s: %s (%s)", c->spec, how, sm_err_name(r->err), r->detail);
    if (!tf_events_equal(&r->ev, want, why, sizeof why))
        fail_msg("\"%s\" %s: %s", c->spec, how, why);
    if (r->skipped != want_skipped)
        fail_msg("\"%s\" %s: skipped %llu, want %llu", c->spec, how, (unsigned long long)r->skipped,
                 (unsigned long long)want_skipped);
    if (want_skipped && r->skip_calls == 0)
        fail_msg("\"%s\" %s: no call returned skipped bytes", c->spec, how);
    uint64_t delivered = 0;
    for (size_t k = 0; k < want->n; k++)
        delivered += want->v[k].frame_len;
    if (r->consumed != s->len || r->skip_bytes != s->len - delivered)
        fail_msg("\"%s\" %s: consumed %llu (%llu skipped) of %zu, %llu in messages", c->spec, how,
                 (unsigned long long)r->consumed, (unsigned long long)r->skip_bytes, s->len,
                 (unsigned long long)delivered);
    if (r->eof_ret != 0 && !(small->kind == SM_FRAME_EOF && want->n == 1))
        fail_msg("\"%s\" %s: decode_eof gave %s", c->spec, how, sm_err_name(r->eof_ret));
}

static void
test_skip(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof skip_cases / sizeof skip_cases[0]; i++) {
        const struct skip_case *c = &skip_cases[i];
        sm_frame_spec small, big;
        parse_or_fail(&small, c->spec);
        parse_or_fail(&big, c->big_spec);
        assert_int_equal(small.oversize, SM_OVERSIZE_SKIP);
        for (uint64_t seed = 1; seed <= 4; seed++) {
            tf_stream s = {0};
            tf_events want = {0};
            uint64_t want_skipped;
            build_skip_stream(c, &small, &big, seed * 7919 + i, &s, &want, &want_skipped);
            char how[96];
            tf_run r;

            tf_feed fa = {.mode = TF_ALL, .exact = true, .eof = true};
            tf_decode(&small, s.p, s.len, &fa, &r);
            check_skip_run(c, &small, &s, &want, want_skipped, &r, "all at once");
            tf_run_free(&r);

            /* Byte by byte: skipped bytes are consumed as they come, so the
             * buffer never holds more than one allowed frame. */
            tf_feed fb = {.mode = TF_BYTES, .exact = true, .eof = true};
            tf_decode(&small, s.p, s.len, &fb, &r);
            check_skip_run(c, &small, &s, &want, want_skipped, &r, "byte by byte");
            size_t bound = (size_t)sm_frame_max(&small) + SM_FRAME_HEAD_MAX + SM_FRAME_DELIM_MAX;
            if (r.max_buffered > bound)
                fail_msg("\"%s\" byte by byte: buffered %zu bytes (bound %zu)", c->spec,
                         r.max_buffered, bound);
            tf_run_free(&r);

            tf_feed fr = {.mode = TF_RANDOM,
                          .seed = seed,
                          .max_chunk = (size_t)(seed * 5),
                          .exact = true,
                          .eof = true};
            snprintf(how, sizeof how, "random chunks of 1..%zu (seed %llu)", fr.max_chunk,
                     (unsigned long long)seed);
            tf_decode(&small, s.p, s.len, &fr, &r);
            check_skip_run(c, &small, &s, &want, want_skipped, &r, how);
            tf_run_free(&r);

            for (size_t at = 0; seed == 1 && s.len <= 700 && at <= s.len; at++) {
                tf_feed f = {.mode = TF_SPLIT, .split = at, .exact = true, .eof = true};
                snprintf(how, sizeof how, "split at %zu", at);
                tf_decode(&small, s.p, s.len, &f, &r);
                check_skip_run(c, &small, &s, &want, want_skipped, &r, how);
                tf_run_free(&r);
            }
            tf_events_free(&want);
            tf_stream_free(&s);
        }
    }
}

/* A skipped message reports consumed > 0 with msg.data == NULL; the next
 * message follows at once. Spelled out for one length prefix and one line. */
static void
test_skip_explicit(void **state)
{
    (void)state;
    sm_frame_spec spec;
    sm_frame_decoder d;
    sm_frame_msg m;

    parse_or_fail(&spec, "len16be,max=4,oversize=skip");
    sm_frame_decoder_init(&d, &spec);
    const uint8_t lp[] = "\x00\x06"
                         "abcdef"
                         "\x00\x02"
                         "ok";
    size_t off = 0;
    for (int i = 0; i < 4 && off < 8; i++) {
        m.data = tf_sentinel;
        ssize_t r = sm_frame_decode(&d, lp + off, sizeof lp - 1 - off, &m);
        if (r <= 0) fail_msg("skipping: %s", sm_err_name((int)r));
        assert_null(m.data);
        off += (size_t)r;
    }
    assert_int_equal(off, 8);
    assert_int_equal(d.skipped, 1);
    assert_int_equal(sm_frame_decode(&d, lp + off, 4, &m), 4);
    assert_int_equal(m.len, 2);
    assert_memory_equal(m.data, "ok", 2);
    assert_int_equal(d.err, 0);

    parse_or_fail(&spec, "line,max=4,oversize=skip");
    sm_frame_decoder_init(&d, &spec);
    const uint8_t ln[] = "toolong\nok\n";
    off = 0;
    for (int i = 0; i < 8 && off < 8; i++) {
        m.data = tf_sentinel;
        ssize_t r = sm_frame_decode(&d, ln + off, sizeof ln - 1 - off, &m);
        if (r <= 0) fail_msg("skipping: %s", sm_err_name((int)r));
        assert_null(m.data);
        off += (size_t)r;
    }
    assert_int_equal(off, 8);
    assert_int_equal(d.skipped, 1);
    assert_int_equal(sm_frame_decode(&d, ln + off, 3, &m), 3);
    assert_memory_equal(m.data, "ok", 2);
}

/* Under close the error is sticky and nothing of the frame is consumed; the
 * table checks this per row, this spells it out once. */
static void
test_close_sticky(void **state)
{
    (void)state;
    sm_frame_spec spec;
    sm_frame_decoder d;
    sm_frame_msg m;
    parse_or_fail(&spec, "len32be,max=4");
    sm_frame_decoder_init(&d, &spec);
    const uint8_t in[] = "\x00\x00\x00\x05"
                         "\x00\x00\x00\x01x";
    SM_ASSERT_ERR(sm_frame_decode(&d, in, 4, &m), -EMSGSIZE);
    SM_ASSERT_ERR(sm_frame_decode(&d, in, 4, &m), -EMSGSIZE);
    SM_ASSERT_ERR(sm_frame_decode(&d, in + 4, 5, &m), -EMSGSIZE);
    SM_ASSERT_ERR(sm_frame_decode_eof(&d, in, 0, &m), -EMSGSIZE);
    assert_int_equal(d.pos, 0);
    assert_int_equal(d.skipped, 0);
}

/* A 1 MiB oversized line skipped byte by byte: constant buffering. Linear
 * time is not asserted by a clock: quadratic rescanning of 1 MiB byte by
 * byte would run into the test's timeout. */
static void
test_skip_long_line(void **state)
{
    (void)state;
    sm_frame_spec spec;
    parse_or_fail(&spec, "crlf,max=1K,oversize=skip");
    size_t n = 1u << 20;
    uint8_t *s = malloc(n + 8);
    assert_non_null(s);
    for (size_t i = 0; i < n; i++)
        s[i] = i % 3 ? 'y' : '\r'; /* a partial delimiter every third byte */
    memcpy(s + n, "\r\nok\r\n", 6);
    tf_run r;
    tf_feed f = {.mode = TF_BYTES, .eof = true};
    tf_decode(&spec, s, n + 6, &f, &r);
    if (r.fail[0]) fail_msg("%s", r.fail);
    assert_int_equal(r.err, 0);
    assert_int_equal(r.skipped, 1);
    assert_int_equal(r.ev.n, 1);
    assert_int_equal(r.ev.v[0].len, 2);
    assert_int_equal(r.ev.v[0].off, n + 2);
    assert_true(r.max_buffered <= 1024 + SM_FRAME_HEAD_MAX + SM_FRAME_DELIM_MAX);
    tf_run_free(&r);
    free(s);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),          cmocka_unit_test(test_malformed_not_skipped),
        cmocka_unit_test(test_detail),         cmocka_unit_test(test_close_sticky),
        cmocka_unit_test(test_skip_explicit),  cmocka_unit_test(test_skip),
        cmocka_unit_test(test_skip_long_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
