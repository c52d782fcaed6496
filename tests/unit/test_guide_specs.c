/* The specs of the guide's "Real protocols" chapter, each parsed and run
 * over a real message of its protocol, byte by byte: the frame ends where the
 * protocol says, the payload is where the table says. The chapter's table and
 * the samples here must name the same specs, so neither can drift. */
#include "smtest.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sockmsg/frame.h>

#define BYTES(s) (const uint8_t *)(s), sizeof(s) - 1

typedef struct sample {
    const char *spec;
    /* Needs a codec or option not on main yet (issue 13 item 1: varint
     * offset=, resp): checked to fail to parse until it lands. When it has,
     * this test fails on purpose: clear the flag and the decode check runs. */
    bool pending;
    const char *what;
    const uint8_t *frame;
    size_t frame_len;
    size_t payload_off, payload_len; /* payload_len SIZE_MAX: not checked */
} sample;

static const sample samples[] = {
    {"len32be,offset=1,adjust=4", false, "PostgreSQL CommandComplete",
     BYTES("C\0\0\0\x0dSELECT 1\0"), 5, 9},
    {"len32be,offset=1,adjust=4", false, "PostgreSQL ReadyForQuery", BYTES("Z\0\0\0\x05I"), 5, 1},
    {"len32be,adjust=4", false, "PostgreSQL StartupMessage (protocol 3.0, user pg)",
     BYTES("\0\0\0\x11\0\x03\0\0user\0pg\0\0"), 4, 13},
    {"len32be,adjust=4", false, "PostgreSQL SSLRequest", BYTES("\0\0\0\x08\x04\xd2\x16\x2f"), 4, 4},
    {"varint,offset=1,max=1M", false, "MQTT PUBLISH a/b \"hi\"",
     BYTES("\x30\x07\0\x03"
           "a/bhi"),
     2, 7},
    {"resp", false, "Redis GET k", BYTES("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"), 0, 20},
    {"len16be", false, "DNS query www.Test AAAA",
     BYTES("\0\x1a\x12\x34\x01\0\0\x01\0\0\0\0\0\0\x03www\x04Test\0\0\x1c\0\x01"), 2, 26},
    {"len32be,offset=8,adjust=-12", false, "memcached GET response (flags, \"hello\")",
     BYTES("\x81\0\0\0\x04\0\0\0\0\0\0\x09\xde\xad\xbe\xef\0\0\0\0\0\0\0\x01"
           "\0\0\0\0hello"),
     12, 21},
    {"len32be,offset=8,adjust=-12", false, "memcached GET request (key k)",
     BYTES("\x80\0\0\x01\0\0\0\0\0\0\0\x01\0\0\0\x07\0\0\0\0\0\0\0\0k"), 12, 13},
    {"len16be,offset=3,max=18432", false, "TLS alert record", BYTES("\x15\x03\x03\0\x02\x02\x28"),
     5, 2},
    {"len32be", false, "Kafka ApiVersions request",
     BYTES("\0\0\0\x0a\0\x12\0\x03\0\0\0\x01\xff\xff"), 4, 10},
    {"len16be,offset=14", false, "PROXY v2 TCP4 127.0.0.1:1000 -> 127.0.0.1:2000",
     BYTES("\r\n\r\n\0\r\nQUIT\n\x21\x11\0\x0c\x7f\0\0\x01\x7f\0\0\x01\x03\xe8\x07\xd0"), 16, 12},
};
enum { NSAMPLES = sizeof samples / sizeof samples[0] };

/* The second column of each table row in the chapter, without backticks. */
static int
guide_specs(char specs[][64], int cap)
{
    FILE *f = fopen(SM_GUIDE, "r");
    assert_non_null(f);
    char line[1024];
    bool in = false;
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "## ", 3) == 0) in = strstr(line, "Real protocols") != NULL;
        if (!in || line[0] != '|') continue;
        char *col = strchr(line + 1, '|');
        if (!col || strncmp(col, "| `", 3) != 0) continue; /* the header and --- rows */
        char *end = strchr(col + 3, '`');
        assert_non_null(end);
        assert_true(n < cap && end - (col + 3) < 64);
        snprintf(specs[n++], 64, "%.*s", (int)(end - (col + 3)), col + 3);
    }
    fclose(f);
    return n;
}

static void
test_guide_and_samples_agree(void **state)
{
    (void)state;
    char specs[32][64];
    int n = guide_specs(specs, 32);
    assert_true(n >= 9);
    for (int i = 0; i < n; i++) {
        bool found = false;
        for (int k = 0; k < NSAMPLES; k++)
            found |= strcmp(samples[k].spec, specs[i]) == 0;
        if (!found) fail_msg("the guide's spec '%s' has no sample here", specs[i]);
    }
    for (int k = 0; k < NSAMPLES; k++) {
        bool found = false;
        for (int i = 0; i < n; i++)
            found |= strcmp(samples[k].spec, specs[i]) == 0;
        if (!found) fail_msg("sample spec '%s' is not in the guide", samples[k].spec);
    }
}

static void
check_sample(const sample *s)
{
    sm_frame_spec spec;
    char why[256] = "";
    int rc = sm_frame_spec_parse(&spec, s->spec, why, sizeof why);
    if (s->pending) {
        if (rc == 0) fail_msg("'%s' parses now: clear its pending flag", s->spec);
        return;
    }
    if (rc != 0) fail_msg("'%s': %s", s->spec, why);
    /* The frame and a second copy after it: the first must end exactly. */
    size_t total = 2 * s->frame_len;
    uint8_t *buf = malloc(total);
    assert_non_null(buf);
    memcpy(buf, s->frame, s->frame_len);
    memcpy(buf + s->frame_len, s->frame, s->frame_len);
    sm_frame_decoder d;
    sm_frame_decoder_init(&d, &spec);
    sm_frame_msg m;
    for (size_t cut = 0; cut < s->frame_len; cut++) {
        ssize_t r = sm_frame_decode(&d, buf, cut, &m);
        if (r != -EAGAIN) fail_msg("%s: %zd after %zu of %zu bytes", s->what, r, cut, s->frame_len);
    }
    for (int copy = 0; copy < 2; copy++) {
        const uint8_t *at = buf + (size_t)copy * s->frame_len;
        ssize_t r = sm_frame_decode(&d, at, total - (size_t)copy * s->frame_len, &m);
        if (r != (ssize_t)s->frame_len)
            fail_msg("%s: decoded %zd, not %zu", s->what, r, s->frame_len);
        assert_ptr_equal(m.frame, at);
        assert_int_equal(m.frame_len, s->frame_len);
        if (s->payload_len != SIZE_MAX) {
            assert_ptr_equal(m.data, at + s->payload_off);
            assert_int_equal(m.len, s->payload_len);
        }
    }
    free(buf);
}

static void
test_samples_decode(void **state)
{
    (void)state;
    for (int k = 0; k < NSAMPLES; k++)
        check_sample(&samples[k]);
}

/* A TLS record over 2^14 + 2048 bytes is refused from its header alone. */
static void
test_tls_record_max(void **state)
{
    (void)state;
    sm_frame_spec spec;
    assert_int_equal(sm_frame_spec_parse(&spec, "len16be,offset=3,max=18432", NULL, 0), 0);
    sm_frame_decoder d;
    sm_frame_decoder_init(&d, &spec);
    sm_frame_msg m;
    static const uint8_t big[] = {0x17, 0x03, 0x03, 0x48, 0x01};
    assert_int_equal(sm_frame_decode(&d, big, sizeof big, &m), -EMSGSIZE);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_guide_and_samples_agree),
        cmocka_unit_test(test_samples_decode),
        cmocka_unit_test(test_tls_record_max),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
