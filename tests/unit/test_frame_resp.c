/* The resp codec: RESP2 and RESP3 values and inline commands, at every split
 * point and byte by byte; malformed input, max and depth bounds; encoding. */
#include "smtest.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_frame.h"

/* Whole messages, each one value; type is the first byte (-1: inline). */
static const char *const good[] = {
    "+OK\r\n",
    "-ERR unknown command 'x'\r\n",
    ":0\r\n",
    ":-9223372036854775808\r\n",
    ":+12\r\n",
    "$5\r\nhello\r\n",
    "$0\r\n\r\n",
    "$-1\r\n",
    "$4\r\na\r\nb\r\n", /* CRLF inside a bulk body is data */
    "*-1\r\n",
    "*0\r\n",
    "*2\r\n$3\r\nfoo\r\n$3\r\nbar\r\n",
    "*3\r\n:1\r\n*2\r\n+a\r\n*0\r\n$-1\r\n",
    "*1\r\n*1\r\n*1\r\n:7\r\n",
    "_\r\n",
    "#t\r\n",
    "#f\r\n",
    ",3.14\r\n",
    ",-inf\r\n",
    "(3492890328409238509324850943850943825024385\r\n",
    "!21\r\nSYNTAX invalid syntax\r\n",
    "=15\r\ntxt:Some string\r\n",
    "%2\r\n+first\r\n:1\r\n+second\r\n:2\r\n",
    "~3\r\n+a\r\n+b\r\n+c\r\n",
    ">3\r\n+message\r\n+chan\r\n$5\r\nhello\r\n",
    /* An attribute precedes the value it annotates: one message. */
    "|1\r\n+key-popularity\r\n%2\r\n$1\r\na\r\n,0.1923\r\n$1\r\nb\r\n,0.0012\r\n*2\r\n:2039123\r\n:"
    "9543892\r\n",
    "*2\r\n|1\r\n+ttl\r\n:3600\r\n$1\r\nv\r\n:5\r\n",
    "|0\r\n:1\r\n",
    "%0\r\n",
    /* HELLO 3's reply shape. */
    "%3\r\n$6\r\nserver\r\n$5\r\nredis\r\n$5\r\nproto\r\n:3\r\n$7\r\nmodules\r\n*0\r\n",
    /* Inline commands, as redis-server accepts them. */
    "PING\r\n",
    "SET k v\n",
    "\r\n",
};
#define NGOOD (sizeof good / sizeof good[0])

static void
parse_or_fail(sm_frame_spec *s, const char *str)
{
    char why[256] = "";
    int rc = sm_frame_spec_parse(s, str, why, sizeof why);
    if (rc != 0) fail_msg("sm_frame_spec_parse(\"%s\") = %s: %s", str, sm_err_name(rc), why);
}

/* Decode stream[0..n) revealed in steps: first `split` bytes, then `step` more
 * at a time (0: all the rest), like a receive buffer that drops what was
 * consumed. Records each message's length; returns the final error (or 0). */
static int
run(const sm_frame_spec *spec, const uint8_t *stream, size_t n, size_t split, size_t step,
    size_t *lens, int *types, size_t *count)
{
    sm_frame_decoder d;
    sm_frame_decoder_init(&d, spec);
    size_t start = 0, avail = split < n ? split : n;
    *count = 0;
    for (size_t guard = 0; guard < 4 * n + 16; guard++) {
        sm_frame_msg m;
        ssize_t r = sm_frame_decode(&d, stream + start, avail - start, &m);
        if (r > 0) {
            if (m.data != stream + start || m.frame != m.data || m.len != (size_t)r ||
                m.frame_len != (size_t)r)
                fail_msg("message %zu does not describe the consumed bytes", *count);
            lens[*count] = (size_t)r;
            types[(*count)++] = m.type;
            start += (size_t)r;
            continue;
        }
        if (r != -EAGAIN) return (int)r;
        if (avail == n) {
            sm_frame_msg e;
            ssize_t f = sm_frame_decode_eof(&d, stream + start, n - start, &e);
            return f < 0 ? (int)f : 0;
        }
        avail = step && n - avail > step ? avail + step : n;
    }
    fail_msg("decoder made no progress");
    return 0;
}

static void
test_good_every_split(void **state)
{
    (void)state;
    sm_frame_spec spec;
    parse_or_fail(&spec, "resp");
    size_t total = 0;
    for (size_t i = 0; i < NGOOD; i++)
        total += strlen(good[i]);
    uint8_t *stream = malloc(total);
    assert_non_null(stream);
    size_t want[NGOOD], at = 0;
    for (size_t i = 0; i < NGOOD; i++) {
        want[i] = strlen(good[i]);
        memcpy(stream + at, good[i], want[i]);
        at += want[i];
    }
    size_t lens[NGOOD + 1], count;
    int types[NGOOD + 1];
    for (size_t split = 0; split <= total; split++) {
        for (size_t step = 0; step <= 1; step++) {
            int rc = run(&spec, stream, total, split, step, lens, types, &count);
            if (rc != 0) fail_msg("split %zu step %zu: %s", split, step, sm_err_name(rc));
            assert_int_equal(count, NGOOD);
            for (size_t i = 0; i < NGOOD; i++) {
                if (lens[i] != want[i])
                    fail_msg("split %zu: message %zu (%s) is %zu bytes", split, i, good[i],
                             lens[i]);
                int t = strchr("+-:$*_#,(!=%~|>", good[i][0]) ? good[i][0] : -1;
                assert_int_equal(types[i], t);
            }
        }
    }
    free(stream);
}

/* Each good message encodes as itself; a partial or doubled one does not. */
static void
test_encode(void **state)
{
    (void)state;
    sm_frame_spec spec;
    parse_or_fail(&spec, "resp,max=1K");
    for (size_t i = 0; i < NGOOD; i++) {
        sm_frame_hdr h;
        size_t n = strlen(good[i]);
        SM_ASSERT_OK(sm_frame_encode(&spec, good[i], n, -1, &h));
        assert_int_equal(h.head_len, 0);
        assert_int_equal(h.tail_len, 0);
        if (n > 1) SM_ASSERT_ERR(sm_frame_encode(&spec, good[i], n - 1, -1, &h), -EINVAL);
        char two[512];
        snprintf(two, sizeof two, "%s%s", good[i], good[i]);
        SM_ASSERT_ERR(sm_frame_encode(&spec, two, 2 * n, -1, &h), -EINVAL);
    }
    sm_frame_hdr h;
    SM_ASSERT_OK(sm_frame_encode(&spec, NULL, 1024, -1, &h));
    SM_ASSERT_ERR(sm_frame_encode(&spec, NULL, 1025, -1, &h), -EMSGSIZE);
}

struct bad {
    const char *spec;
    const char *in;
    int err;
    const char *names; /* in the detail */
};

static const struct bad bad[] = {
    {"resp", "+OK\rX", -EPROTO, "LF"},
    {"resp", "$3\r\nabcd\r\n", -EPROTO, "CRLF"},
    {"resp", "$3\r\nabc\n\r", -EPROTO, "CRLF"},
    {"resp", "$-2\r\n", -EPROTO, "'$'"},
    {"resp", "$x\r\n", -EPROTO, "'$'"},
    {"resp", "$\r\n", -EPROTO, "'$'"},
    {"resp", "*-2\r\n", -EPROTO, "'*'"},
    {"resp", "%-1\r\n", -EPROTO, "'%'"},
    {"resp", "!-1\r\n", -EPROTO, "'!'"},
    {"resp", "=3\r\nabc\r\n", -EPROTO, "'='"},
    {"resp", ":12a\r\n", -EPROTO, "':'"},
    {"resp", ":9223372036854775808\r\n", -EPROTO, "':'"},
    {"resp", "#x\r\n", -EPROTO, "'#'"},
    {"resp", "_x\r\n", -EPROTO, "'_'"},
    {"resp", "(1.5\r\n", -EPROTO, "'('"},
    {"resp", "*2\r\n:1\r\nX\r\n", -EPROTO, "not a RESP type"},
    {"resp", "$99999999999999999999\r\n", -EPROTO, "'$'"},
    /* Too big, found from the header alone. */
    {"resp,max=100", "$200\r\n", -EMSGSIZE, "cannot fit"},
    {"resp,max=100", "*2\r\n$90\r\n", -EMSGSIZE, "cannot fit"},
    {"resp,max=100", "*40\r\n", -EMSGSIZE, "cannot fit"},
    {"resp,max=100", "%20\r\n", -EMSGSIZE, "cannot fit"},
    {"resp", "*9223372036854775807\r\n", -EMSGSIZE, "cannot fit"},
    {"resp,max=10", "+0123456789", -EMSGSIZE, "exceeds max"},
    {"resp,max=10", "PING 12345678", -EMSGSIZE, "exceeds max"},
    /* Depth. */
    {"resp,depth=2", "*1\r\n*1\r\n*1\r\n:1\r\n", -EPROTO, "depth=2"},
    {"resp,depth=1", "|1\r\n*1\r\n", -EPROTO, "depth=1"},
};

static void
test_bad(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sm_frame_spec spec;
        parse_or_fail(&spec, bad[i].spec);
        const uint8_t *in = (const uint8_t *)bad[i].in;
        size_t n = strlen(bad[i].in);
        /* All at once, and byte by byte: the same error. */
        for (int bytewise = 0; bytewise < 2; bytewise++) {
            sm_frame_decoder d;
            sm_frame_decoder_init(&d, &spec);
            sm_frame_msg m;
            ssize_t r = -EAGAIN;
            for (size_t k = bytewise ? 1 : n; k <= n && r == -EAGAIN; k++)
                r = sm_frame_decode(&d, in, k, &m);
            if (r != bad[i].err)
                fail_msg("%s \"%s\" (bytewise %d): %s, want %s", bad[i].spec, bad[i].in, bytewise,
                         sm_err_name((int)r), sm_err_name(bad[i].err));
            char why[256];
            sm_frame_decoder_detail(&d, why, sizeof why);
            if (!strstr(why, bad[i].names))
                fail_msg("%s \"%s\": detail does not name '%s': %s", bad[i].spec, bad[i].in,
                         bad[i].names, why);
            /* Sticky. */
            SM_ASSERT_ERR(sm_frame_decode(&d, (const uint8_t *)"+OK\r\n", 5, &m), bad[i].err);
        }
    }
}

/* A depth bomb: a million nested one-element arrays stop at the bound, after
 * reading no more than the bound's headers. */
static void
test_depth_bomb(void **state)
{
    (void)state;
    sm_frame_spec spec;
    parse_or_fail(&spec, "resp");
    size_t n = 4 * 100000;
    uint8_t *bomb = malloc(n);
    assert_non_null(bomb);
    for (size_t i = 0; i < n; i += 4)
        memcpy(bomb + i, "*1\r\n", 4);
    sm_frame_decoder d;
    sm_frame_decoder_init(&d, &spec);
    sm_frame_msg m;
    SM_ASSERT_ERR(sm_frame_decode(&d, bomb, n, &m), -EPROTO);
    assert_int_equal(d.err_pos, 4 * SM_FRAME_RESP_DEPTH_MAX);
    free(bomb);
    /* depth=32 itself is allowed. */
    uint8_t deep[4 * SM_FRAME_RESP_DEPTH_MAX + 4];
    for (size_t i = 0; i < SM_FRAME_RESP_DEPTH_MAX; i++)
        memcpy(deep + 4 * i, "*1\r\n", 4);
    memcpy(deep + 4 * SM_FRAME_RESP_DEPTH_MAX, ":1\r\n", 4);
    sm_frame_decoder_init(&d, &spec);
    assert_int_equal(sm_frame_decode(&d, deep, sizeof deep, &m), (ssize_t)sizeof deep);
}

/* The end of the stream inside a message is SM_ERR_TRUNCATED; at a boundary,
 * 0. A long line fed one byte at a time is searched once (nothing consumed
 * until it ends, then the whole message). */
static void
test_eof_and_long_line(void **state)
{
    (void)state;
    sm_frame_spec spec;
    parse_or_fail(&spec, "resp");
    sm_frame_decoder d;
    sm_frame_msg m;
    sm_frame_decoder_init(&d, &spec);
    SM_ASSERT_ERR(sm_frame_decode(&d, (const uint8_t *)"*2\r\n:1\r\n", 8, &m), -EAGAIN);
    SM_ASSERT_ERR(sm_frame_decode_eof(&d, (const uint8_t *)"*2\r\n:1\r\n", 8, &m),
                  SM_ERR_TRUNCATED);
    sm_frame_decoder_init(&d, &spec);
    assert_int_equal(sm_frame_decode_eof(&d, NULL, 0, &m), 0);

    size_t n = 20000;
    uint8_t *line = malloc(n + 3);
    assert_non_null(line);
    line[0] = '+';
    memset(line + 1, 'x', n);
    memcpy(line + 1 + n, "\r\n", 2);
    sm_frame_decoder_init(&d, &spec);
    for (size_t k = 1; k < n + 3; k++) {
        SM_ASSERT_ERR(sm_frame_decode(&d, line, k, &m), -EAGAIN);
        /* The decoder remembers how far it searched: the next call starts there. */
        if (k >= 2 && k < n + 2) assert_int_equal(d.resp.line, k - 1);
    }
    assert_int_equal(sm_frame_decode(&d, line, n + 3, &m), (ssize_t)(n + 3));
    free(line);
}

static void
test_spec(void **state)
{
    (void)state;
    sm_frame_spec s;
    char out[64], why[256];
    parse_or_fail(&s, "resp,depth=8,max=1M");
    assert_int_equal(s.kind, SM_FRAME_RESP);
    assert_int_equal(s.resp_depth, 8);
    assert_int_equal(sm_frame_spec_format(&s, out, sizeof out), 19);
    assert_string_equal(out, "resp,depth=8,max=1M");
    static const char *const no[] = {
        "resp,oversize=skip", "resp,depth=0",  "resp,depth=33", "line,depth=3",
        "type:A=(resp)",      "resp,offset=1", "resp:1"};
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
        SM_ASSERT_ERR(sm_frame_spec_parse(&s, no[i], why, sizeof why), SM_ERR_SPEC);
        assert_true(why[0] != '\0');
    }
    SM_ASSERT_ERR(sm_frame_spec_parse(&s, "resp,oversize=skip", why, sizeof why), SM_ERR_SPEC);
    assert_non_null(strstr(why, "oversize=skip"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_every_split),
        cmocka_unit_test(test_encode),
        cmocka_unit_test(test_bad),
        cmocka_unit_test(test_depth_bomb),
        cmocka_unit_test(test_eof_and_long_line),
        cmocka_unit_test(test_spec),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
