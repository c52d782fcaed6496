/* sm_stream: caller-given header bytes (sm_stream_send_hdr), separate send
 * spec in the opts, and framing changes at a message boundary
 * (sm_stream_set_spec), from on_message with the next messages already in
 * the same read and from outside with part of a message buffered. Run on
 * every backend: on io_uring the stream decodes straight out of the
 * kernel's provided buffers (sm__rx_input), checked to be the transport. */
#include "test_stream.h"

#include <sys/uio.h>

#include "transport.h"

#define T 5000

typedef struct rec {
    int n;
    char msg[8][16];
    size_t len[8];
    int switch_at;                /* switch after this message (1-based), 0: never */
    const sm_frame_spec *rx, *tx; /* what to switch to */
    int set_rc;
} rec;

static sm_frame_spec
spec_of(const char *str)
{
    sm_frame_spec s;
    char why[128];
    if (sm_frame_spec_parse(&s, str, why, sizeof why) < 0) fail_msg("%s: %s", str, why);
    return s;
}

static void
on_msg(sm_stream *s, const sm_frame_msg *m)
{
    rec *r = sm_stream_get_data(s);
    assert_true(r->n < 8 && m->len < 16);
    memcpy(r->msg[r->n], m->data, m->len);
    r->len[r->n] = m->len;
    r->n++;
    if (r->n == r->switch_at) r->set_rc = sm_stream_set_spec(s, r->rx, r->tx);
}

static bool
got(void *ctx)
{
    rec *r = ctx;
    return r->n >= r->switch_at + 2 || r->n >= 8;
}

static void
expect(const rec *r, int i, const char *want)
{
    assert_true(i < r->n);
    assert_int_equal(r->len[i], strlen(want));
    assert_memory_equal(r->msg[i], want, strlen(want));
}

static void
write_all(int fd, const void *p, size_t n)
{
    struct iovec v = {.iov_base = (void *)p, .iov_len = n};
    assert_int_equal(sm_sendv_all(fd, &v, 1, T, NULL), (ssize_t)n);
}

static bool
queue_empty(void *ctx)
{
    return sm_stream_queued(ctx) == 0;
}

/* Sends from outside a callback go out in the loop's next iteration. */
static void
drain(sm_loop *l, sm_stream *s)
{
    assert_true(ts_run_until(l, queue_empty, s, T));
}

/* The stream under test on sv[0] of a pair; *raw is the other end. */
static sm_stream *
stream_pair(sm_loop *l, const sm_stream_opts *o, rec *r, int *raw)
{
    int sv[2];
    ts_pair(sv);
    sm_stream *s;
    SM_ASSERT_OK(sm_stream_new_take(&s, l, sv[0], o, r));
    const char *be = getenv("SOCKMSG_BACKEND");
    if (be && strcmp(be, "io_uring") == 0) assert_int_equal(s->tp, SM__TP_URING);
    *raw = sv[1];
    return s;
}

static void
close_and_free(sm_loop *l, sm_stream *s, int raw)
{
    sm_stream_close(s);
    close(raw);
    ts_loop_free(l);
}

static void
test_switch_from_on_message(void **state)
{
    (void)state;
    sm_loop *l = ts_loop();
    sm_frame_spec line = spec_of("line"), len16 = spec_of("len16be"), len8 = spec_of("len8");
    sm_stream_opts o = {.spec = &line, .on_message = on_msg};
    rec r = {.switch_at = 1, .rx = &len16, .tx = &len8, .set_rc = 1};
    int raw;
    sm_stream *s = stream_pair(l, &o, &r, &raw);
    /* One write: the line, then two binary messages behind it. */
    write_all(raw, "BIN\n\0\3abc\0\2de", 13);
    assert_true(ts_run_until(l, got, &r, T));
    assert_int_equal(r.set_rc, 0);
    expect(&r, 0, "BIN");
    expect(&r, 1, "abc");
    expect(&r, 2, "de");
    SM_ASSERT_OK(sm_stream_send(s, "ok", 2));
    drain(l, s);
    char out[3];
    sm_test_read_exact(raw, out, 3, T);
    assert_memory_equal(out, "\2ok", 3);
    close_and_free(l, s, raw);
}

/* Back from binary to lines inside one read, then a switch with part of a
 * message buffered and no read running. */
static void
test_switch_back_and_outside(void **state)
{
    (void)state;
    sm_loop *l = ts_loop();
    sm_frame_spec line = spec_of("line"), len8 = spec_of("len8");
    sm_stream_opts o = {.spec = &len8, .on_message = on_msg};
    rec r = {.switch_at = 1, .rx = &line, .set_rc = 1};
    int raw;
    sm_stream *s = stream_pair(l, &o, &r, &raw);
    write_all(raw, "\2hiab\ncd\n\5xy", 12);
    assert_true(ts_run_until(l, got, &r, T));
    SM_ASSERT_OK(r.set_rc);
    expect(&r, 0, "hi");
    expect(&r, 1, "ab");
    expect(&r, 2, "cd");
    /* "\5xy" waits as an unfinished line; switched outside a read, it is
     * the start of a len8 message. */
    for (int i = 0; i < 10 && !s->rd; i++)
        ts_run_once(l, 50);
    assert_non_null(s->rd);
    SM_ASSERT_OK(sm_stream_set_spec(s, &len8, NULL));
    r.switch_at = 3; /* got() now waits for 5 messages */
    write_all(raw, "zzz\1q", 5);
    assert_true(ts_run_until(l, got, &r, T));
    expect(&r, 3, "xyzzz");
    expect(&r, 4, "q");
    close_and_free(l, s, raw);
}

static void
test_send_hdr_and_send_spec(void **state)
{
    (void)state;
    sm_loop *l = ts_loop();
    sm_stream_opts in = {.frame = "len32be,offset=1,adjust=4",
                         .send_frame = "len32be,adjust=4",
                         .on_message = on_msg};
    sm_stream_opts *o;
    char why[200];
    SM_ASSERT_OK(sm_stream_opts_new(&o, &in, why, sizeof why));
    rec r = {.switch_at = -2};
    int raw;
    sm_stream *s = stream_pair(l, o, &r, &raw);
    /* The startup: no type byte. */
    SM_ASSERT_OK(sm_stream_send(s, "st", 2));
    SM_ASSERT_ERR(sm_stream_send_hdr(s, "Q", 1, "x", 1), -EINVAL);
    /* Then typed messages. */
    sm_frame_spec typed = spec_of("len32be,offset=1,adjust=4");
    SM_ASSERT_OK(sm_stream_set_spec(s, NULL, &typed));
    SM_ASSERT_OK(sm_stream_send_hdr(s, "Q", 1, "hi", 2));
    SM_ASSERT_ERR(sm_stream_send_hdr(s, NULL, 1, "hi", 2), -EINVAL);
    drain(l, s);
    uint8_t out[6 + 7];
    sm_test_read_exact(raw, out, sizeof out, T);
    assert_memory_equal(out, "\0\0\0\6stQ\0\0\0\6hi", sizeof out);
    /* Receiving is the opts' spec. */
    write_all(raw, "Z\0\0\0\5I", 6);
    r.switch_at = -1; /* got(): one message */
    assert_true(ts_run_until(l, got, &r, T));
    expect(&r, 0, "I");
    SM_ASSERT_ERR(sm_stream_set_spec(NULL, NULL, NULL), -EINVAL);
    sm_frame_spec bad = {.kind = SM_FRAME_FIXED};
    SM_ASSERT_ERR(sm_stream_set_spec(s, &bad, NULL), SM_ERR_SPEC);
    close_and_free(l, s, raw);
    sm_stream_opts_free(o);
    in.send_spec = &typed;
    SM_ASSERT_ERR(sm_stream_opts_new(&o, &in, why, sizeof why), -EINVAL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_switch_from_on_message),
        cmocka_unit_test(test_switch_back_and_outside),
        cmocka_unit_test(test_send_hdr_and_send_spec),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
