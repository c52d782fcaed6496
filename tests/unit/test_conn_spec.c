/* sm_conn: caller-given header bytes (sm_conn_send_hdr), forwarding a frame
 * as it came, separate and changing receive/send specs, and the raw
 * hand-off of the socket with its read-ahead bytes (sm_conn_detach). Over
 * Unix socket pairs: one side is a connection, the other raw bytes. */
#include "smtest.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sockmsg/conn.h>
#include <sockmsg/socket.h>

#define T 5000

static sm_frame_spec
spec_of(const char *str)
{
    sm_frame_spec s;
    char why[128];
    int rc = sm_frame_spec_parse(&s, str, why, sizeof why);
    if (rc < 0) fail_msg("%s: %s", str, why);
    return s;
}

/* A connection on one end of a socket pair; *raw is the other end. */
static sm_conn *
conn_pair(const char *spec, int *raw)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    sm_frame_spec s = spec_of(spec);
    sm_conn *c;
    SM_ASSERT_OK(sm_conn_new_take(&c, sv[0], &s));
    sm_conn_set_timeout(c, T);
    *raw = sv[1];
    return c;
}

static void
write_all(int fd, const void *buf, size_t len)
{
    struct iovec v = {.iov_base = (void *)buf, .iov_len = len};
    assert_int_equal(sm_sendv_all(fd, &v, 1, T, NULL), (ssize_t)len);
}

/* The encoder alone: what sm_frame_encode_hdr writes decodes back to the
 * same payload, with the caller's bytes at the front of the frame. */
static void
test_encode_hdr_roundtrip(void **state)
{
    (void)state;
    static const struct {
        const char *spec, *hdr;
        size_t hdr_len;
    } cases[] = {
        {"len16be,offset=3", "abc", 3},
        {"len32le,offset=1,adjust=4", "Q", 1},
        {"len8,offset=16", "0123456789abcdef", 16},
        {"type:A=(len16be,offset=2);B=(len8);C=3", "A\x01\x02", 3},
        {"type:A=(len16be,offset=2);B=(len8);C=3", "B", 1},
        {"type:A=(len16be,offset=2);B=(len8);C=3", "C", 1},
        {"line", "", 0},
        {"varint,offset=1", "\x30", 1}, /* MQTT's fixed-header byte */
        {"ascii:4,offset=2", "hi", 2},
        {"netstring,offset=1", "N", 1},
        {"type:A=(varint,offset=1);B=(len8)", "A\x7f", 2},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sm_frame_spec sp = spec_of(cases[i].spec);
        assert_int_equal(sm_frame_hdr_len(&sp, cases[i].hdr[0]), (int)cases[i].hdr_len);
        sm_frame_hdr h;
        SM_ASSERT_OK(sm_frame_encode_hdr(&sp, cases[i].hdr, cases[i].hdr_len, "xyz", 3, &h));
        uint8_t wire[128];
        size_t n = 0;
        memcpy(wire, h.head, h.head_len);
        n += h.head_len;
        memcpy(wire + n, "xyz", 3);
        n += 3;
        memcpy(wire + n, h.tail, h.tail_len);
        n += h.tail_len;
        sm_frame_decoder d;
        sm_frame_decoder_init(&d, &sp);
        sm_frame_msg m;
        assert_int_equal(sm_frame_decode(&d, wire, n, &m), (ssize_t)n);
        assert_int_equal(m.len, 3);
        assert_memory_equal(m.data, "xyz", 3);
        assert_memory_equal(m.frame, cases[i].hdr, cases[i].hdr_len);
        /* One byte too few or too many: refused, nothing written. */
        SM_ASSERT_ERR(
            sm_frame_encode_hdr(&sp, "0123456789abcdefg", cases[i].hdr_len + 1, "xyz", 3, &h),
            sp.kind == SM_FRAME_TYPE ? -EPROTO : -EINVAL);
        assert_int_equal(h.head_len, 0);
    }
}

static void
test_send_hdr_offset_bytes(void **state)
{
    (void)state;
    int raw;
    sm_conn *c = conn_pair("len32be,offset=1,adjust=4", &raw);
    assert_int_equal(sm_conn_send_hdr(c, "Q", 1, "hi", 2, SM_CONN_DEFAULT), 2);
    uint8_t got[7];
    sm_test_read_exact(raw, got, sizeof got, T);
    assert_memory_equal(got, "Q\0\0\0\6hi", 7);
    /* The received side passes the type byte through in frame[0]. */
    write_all(raw, got, sizeof got);
    sm_frame_msg m;
    assert_int_equal(sm_conn_recv(c, &m, SM_CONN_DEFAULT), 1);
    assert_int_equal(m.len, 2);
    assert_int_equal(m.frame[0], 'Q');
    /* Wrong sizes say so and send nothing. */
    SM_ASSERT_ERR(sm_conn_send_hdr(c, "QQ", 2, "hi", 2, SM_CONN_DEFAULT), -EINVAL);
    SM_ASSERT_ERR(sm_conn_send_hdr(c, NULL, 0, "hi", 2, SM_CONN_DEFAULT), -EINVAL);
    SM_ASSERT_ERR(sm_conn_send_hdr(c, NULL, 1, "hi", 2, SM_CONN_DEFAULT), -EINVAL);
    /* Several offset bytes (memcached-like: 2 before a little-endian len16). */
    sm_frame_spec two = spec_of("len16le,offset=2");
    SM_ASSERT_OK(sm_conn_set_spec(c, NULL, &two));
    assert_int_equal(sm_conn_send_hdr(c, "\x80\x01", 2, "abc", 3, SM_CONN_DEFAULT), 3);
    uint8_t got2[7];
    sm_test_read_exact(raw, got2, sizeof got2, T);
    assert_memory_equal(got2,
                        "\x80\x01\x03\x00"
                        "abc",
                        7);
    /* A spec without offset takes no header bytes: the same as send. */
    sm_frame_spec plain = spec_of("len8");
    SM_ASSERT_OK(sm_conn_set_spec(c, NULL, &plain));
    assert_int_equal(sm_conn_send_hdr(c, NULL, 0, "z", 1, SM_CONN_DEFAULT), 1);
    uint8_t got3[2];
    sm_test_read_exact(raw, got3, sizeof got3, T);
    assert_memory_equal(got3, "\1z", 2);
    sm_conn_free(c);
    close(raw);
}

static void
test_send_hdr_type_spec(void **state)
{
    (void)state;
    int raw;
    sm_conn *c = conn_pair("type:A=(len16be,offset=2);B=(len8)", &raw);
    sm_frame_spec s = spec_of("type:A=(len16be,offset=2);B=(len8)");
    assert_int_equal(sm_frame_hdr_len(&s, 'A'), 3);
    assert_int_equal(sm_frame_hdr_len(&s, 'B'), 1);
    SM_ASSERT_ERR(sm_frame_hdr_len(&s, 'C'), -EPROTO);
    assert_int_equal(sm_conn_send_hdr(c, "Axy", 3, "pq", 2, SM_CONN_DEFAULT), 2);
    assert_int_equal(sm_conn_send_hdr(c, "B", 1, "r", 1, SM_CONN_DEFAULT), 1);
    uint8_t got[7 + 3];
    sm_test_read_exact(raw, got, sizeof got, T);
    assert_memory_equal(got, "Axy\0\2pqB\1r", sizeof got);
    SM_ASSERT_ERR(sm_conn_send_hdr(c, "C", 1, "r", 1, SM_CONN_DEFAULT), -EPROTO);
    SM_ASSERT_ERR(sm_conn_send_hdr(c, "A", 1, "r", 1, SM_CONN_DEFAULT), -EINVAL);
    SM_ASSERT_ERR(sm_conn_send_hdr(c, "", 0, "r", 1, SM_CONN_DEFAULT), -EINVAL);
    sm_conn_free(c);
    close(raw);
}

static void
test_send_frame_forwards(void **state)
{
    (void)state;
    int ra, rb;
    sm_conn *a = conn_pair("len32be,offset=1,adjust=4", &ra);
    sm_conn *b = conn_pair("len32be,offset=1,adjust=4", &rb);
    write_all(ra, "Z\0\0\0\5I", 6);
    sm_frame_msg m;
    assert_int_equal(sm_conn_recv(a, &m, SM_CONN_DEFAULT), 1);
    assert_int_equal(sm_conn_send_frame(b, &m, SM_CONN_DEFAULT), 6);
    uint8_t got[6];
    sm_test_read_exact(rb, got, sizeof got, T);
    assert_memory_equal(got, "Z\0\0\0\5I", 6);
    SM_ASSERT_ERR(sm_conn_send_frame(b, NULL, SM_CONN_DEFAULT), -EINVAL);
    sm_frame_spec small = spec_of("len32be,offset=1,adjust=4,max=1K");
    SM_ASSERT_OK(sm_conn_set_spec(b, NULL, &small));
    sm_frame_msg big = m;
    big.len = 2000;
    SM_ASSERT_ERR(sm_conn_send_frame(b, &big, SM_CONN_DEFAULT), -EMSGSIZE);
    sm_conn_free(a);
    sm_conn_free(b);
    close(ra);
    close(rb);
}

/* Two messages in one write; the switch after the first decodes the second,
 * already buffered, with the new spec. */
static void
test_switch_rx_mid_buffer(void **state)
{
    (void)state;
    int raw;
    sm_conn *c = conn_pair("line", &raw);
    const char wire[] = "STARTBIN\n\0\3abc\0\2de";
    write_all(raw, wire, sizeof wire - 1);
    sm_frame_msg m;
    assert_int_equal(sm_conn_recv(c, &m, SM_CONN_DEFAULT), 1);
    assert_int_equal(m.len, 8);
    assert_memory_equal(m.data, "STARTBIN", 8);
    sm_frame_spec bin = spec_of("len16be");
    SM_ASSERT_OK(sm_conn_set_spec(c, &bin, NULL));
    /* The message returned last stays valid across the switch. */
    assert_memory_equal(m.data, "STARTBIN", 8);
    assert_int_equal(sm_conn_recv(c, &m, SM_CONN_DEFAULT), 1);
    assert_int_equal(m.len, 3);
    assert_memory_equal(m.data, "abc", 3);
    assert_int_equal(sm_conn_recv(c, &m, SM_CONN_DEFAULT), 1);
    assert_memory_equal(m.data, "de", 2);
    /* tx is still line. */
    assert_int_equal(sm_conn_send(c, "ok", 2, SM_CONN_DEFAULT), 2);
    char got[3];
    sm_test_read_exact(raw, got, 3, T);
    assert_memory_equal(got, "ok\n", 3);
    /* Back to lines with a partial line already buffered: it is finished
     * under the new spec. */
    write_all(raw,
              "\0\1x"
              "tail",
              7);
    assert_int_equal(sm_conn_recv(c, &m, SM_CONN_DEFAULT), 1);
    assert_memory_equal(m.data, "x", 1);
    sm_frame_spec line = spec_of("line");
    SM_ASSERT_OK(sm_conn_set_spec(c, &line, NULL));
    SM_ASSERT_ERR(sm_conn_recv(c, &m, 0), -ETIMEDOUT);
    write_all(raw, "!\n", 2);
    assert_int_equal(sm_conn_recv(c, &m, SM_CONN_DEFAULT), 1);
    assert_int_equal(m.len, 5);
    assert_memory_equal(m.data, "tail!", 5);
    /* A bad spec changes nothing. */
    sm_frame_spec bad = {.kind = SM_FRAME_FIXED};
    SM_ASSERT_ERR(sm_conn_set_spec(c, &bad, NULL), SM_ERR_SPEC);
    SM_ASSERT_ERR(sm_conn_set_spec(c, NULL, &bad), SM_ERR_SPEC);
    sm_conn_free(c);
    close(raw);
}

/* Asymmetric: PostgreSQL's startup (no type byte) then typed messages. */
static void
test_separate_tx_spec(void **state)
{
    (void)state;
    int raw;
    sm_conn *c = conn_pair("len32be,offset=1,adjust=4", &raw);
    sm_frame_spec startup = spec_of("len32be,adjust=4");
    SM_ASSERT_OK(sm_conn_set_spec(c, NULL, &startup));
    assert_int_equal(sm_conn_send(c, "ab", 2, SM_CONN_DEFAULT), 2);
    uint8_t got[6];
    sm_test_read_exact(raw, got, 6, T);
    assert_memory_equal(got, "\0\0\0\6ab", 6);
    /* Receiving is unchanged. */
    write_all(raw, "R\0\0\0\x08\0\0\0\0", 9);
    sm_frame_msg m;
    assert_int_equal(sm_conn_recv(c, &m, SM_CONN_DEFAULT), 1);
    assert_int_equal(m.frame[0], 'R');
    assert_int_equal(m.len, 4);
    sm_conn_free(c);
    close(raw);
}

static void
test_switch_refused_mid_skip(void **state)
{
    (void)state;
    int raw;
    sm_conn *c = conn_pair("len8,max=2,oversize=skip", &raw);
    write_all(raw, "\5abc", 4); /* oversized, 2 bytes still to come */
    sm_frame_msg m;
    SM_ASSERT_ERR(sm_conn_recv(c, &m, 0), -ETIMEDOUT);
    sm_frame_spec line = spec_of("line");
    SM_ASSERT_ERR(sm_conn_set_spec(c, &line, NULL), -EBUSY);
    write_all(raw, "de\1z", 4);
    assert_int_equal(sm_conn_recv(c, &m, SM_CONN_DEFAULT), 1);
    assert_memory_equal(m.data, "z", 1);
    assert_int_equal(sm_conn_skipped(c), 1);
    SM_ASSERT_OK(sm_conn_set_spec(c, &line, NULL));
    sm_conn_free(c);
    close(raw);
}

/* STARTTLS-like: banner lines, a switch line with bytes pipelined after
 * it, then the fd and those bytes go to raw reads. */
static void
test_detach_hands_over_rest(void **state)
{
    (void)state;
    int raw;
    sm_conn *c = conn_pair("crlf", &raw);
    write_all(raw, "EHLO x\r\nSTARTTLS\r\n\x16\x03\x01", 21);
    sm_frame_msg m;
    assert_int_equal(sm_conn_recv(c, &m, SM_CONN_DEFAULT), 1);
    assert_memory_equal(m.data, "EHLO x", 6);
    assert_int_equal(sm_conn_recv(c, &m, SM_CONN_DEFAULT), 1);
    assert_memory_equal(m.data, "STARTTLS", 8);
    int fd;
    uint8_t *rest;
    size_t rest_len;
    SM_ASSERT_OK(sm_conn_detach(c, &fd, &rest, &rest_len));
    assert_int_equal(rest_len, 3);
    assert_memory_equal(rest, "\x16\x03\x01", 3);
    free(rest);
    write_all(raw, "more", 4);
    char got[4];
    sm_test_read_exact(fd, got, 4, T);
    assert_memory_equal(got, "more", 4);
    close(fd);
    close(raw);
    /* Nothing read ahead: rest is NULL. */
    c = conn_pair("line", &raw);
    write_all(raw, "a\n", 2);
    assert_int_equal(sm_conn_recv(c, &m, SM_CONN_DEFAULT), 1);
    SM_ASSERT_OK(sm_conn_detach(c, &fd, &rest, &rest_len));
    assert_null(rest);
    assert_int_equal(rest_len, 0);
    close(fd);
    close(raw);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode_hdr_roundtrip),
        cmocka_unit_test(test_send_hdr_offset_bytes),
        cmocka_unit_test(test_send_hdr_type_spec),
        cmocka_unit_test(test_send_frame_forwards),
        cmocka_unit_test(test_switch_rx_mid_buffer),
        cmocka_unit_test(test_separate_tx_spec),
        cmocka_unit_test(test_switch_refused_mid_skip),
        cmocka_unit_test(test_detach_hands_over_rest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
