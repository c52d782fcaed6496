/* The completion transport (src/transport_uring.c), run on every backend:
 * on io_uring the stream must be on it, elsewhere on the socket transport,
 * and the behaviour is the same.
 *   - an echo round trip, many messages per receive;
 *   - close from inside on_message while a receive and a large write are
 *     in flight: on_close runs once, after the kernel is done with them,
 *     and the loop frees (ASan sees any completion touching freed memory);
 *   - reading stopped from inside on_message with more bytes on the way:
 *     what arrives meanwhile is held, nothing is delivered until reading
 *     starts again, and then every message arrives once, in order;
 *   - the peer's EOF while reading is stopped comes after the held bytes. */
#include "test_stream.h"

#include "transport.h"

#define N_MSGS 400
#define BIG    ((size_t)8 << 20)

typedef struct uctx {
    int msgs, closes, reason, eofs;
    unsigned next_seq; /* the next sequence number expected */
    bool bad;
    int stop_at; /* on_message stops reading at this count (0: never) */
    bool close_in_msg;
    uint8_t *big; /* sent from on_message before a close */
} uctx;

static const char *
want_tp(void)
{
    const char *env = getenv("SOCKMSG_BACKEND");
#ifdef SM_HAVE_URING
    if (env && !strcmp(env, "io_uring")) return "io_uring";
#endif
    (void)env;
    return "socket";
}

static void
u_msg(sm_stream *s, const sm_frame_msg *m)
{
    uctx *c = sm_stream_get_data(s);
    unsigned seq = 0;
    if (m->len >= 4) memcpy(&seq, m->data, 4);
    if (m->len != 32 || seq != c->next_seq) c->bad = true;
    c->next_seq++;
    c->msgs++;
    if (c->stop_at && c->msgs == c->stop_at) SM_ASSERT_OK(sm_stream_read_stop(s));
    if (c->close_in_msg && c->msgs == 1) {
        /* A write the peer will not take soon: it stays in flight. */
        SM_ASSERT_OK(sm_stream_send(s, c->big, BIG) >= 0 ? 0 : -1);
        SM_ASSERT_OK(sm_stream_close(s));
    }
}

static void
u_eof(sm_stream *s)
{
    uctx *c = sm_stream_get_data(s);
    c->eofs++;
}

static void
u_close(sm_stream *s, int reason)
{
    uctx *c = sm_stream_get_data(s);
    c->closes++;
    c->reason = reason;
}

static const sm_stream_opts u_opts = {.spec = &ts_len32,
                                      .on_message = u_msg,
                                      .on_eof = u_eof,
                                      .on_close = u_close,
                                      .half_open = true,
                                      .max_queued = (size_t)64 << 20};

/* n messages of 32 bytes, sequence numbers from first, framed. */
static size_t
frames(uint8_t *out, unsigned first, unsigned n)
{
    size_t len = 0;
    for (unsigned i = 0; i < n; i++) {
        uint8_t m[32] = {0};
        unsigned seq = first + i;
        memcpy(m, &seq, 4);
        memset(m + 4, (int)(seq & 0xff), 28);
        len += ts_frame(&ts_len32, m, sizeof m, out + len);
    }
    return len;
}

static bool
got_all(void *ctx)
{
    uctx *c = ctx;
    return c->msgs >= N_MSGS || c->bad;
}

static bool
closed(void *ctx)
{
    return ((uctx *)ctx)->closes > 0;
}

static void
test_transport_and_echo(void **state)
{
    (void)state;
    sm_loop *l = ts_loop();
    int sv[2];
    ts_pair(sv);
    uctx c = {0};
    sm_stream *s = NULL;
    SM_ASSERT_OK(sm_stream_new_take(&s, l, sv[0], &u_opts, &c));
    assert_string_equal(sm__tp_of(s)->name, want_tp());
    static uint8_t wire[N_MSGS * 40];
    size_t len = frames(wire, 0, N_MSGS);
    SM_ASSERT_OK(sm_send_all(sv[1], wire, len, 5000, NULL) == (ssize_t)len ? 0 : -1);
    assert_true(ts_run_until(l, got_all, &c, 10000));
    assert_false(c.bad);
    assert_int_equal(c.msgs, N_MSGS);
    SM_ASSERT_OK(sm_stream_close(s));
    assert_true(ts_run_until(l, closed, &c, 5000));
    close(sv[1]);
    ts_loop_free(l);
}

static void
test_close_with_requests_in_flight(void **state)
{
    (void)state;
    sm_loop *l = ts_loop();
    int sv[2];
    ts_pair(sv);
    uctx c = {.close_in_msg = true};
    c.big = calloc(1, BIG);
    assert_non_null(c.big);
    sm_stream *s = NULL;
    SM_ASSERT_OK(sm_stream_new_take(&s, l, sv[0], &u_opts, &c));
    static uint8_t wire[8 * 40];
    size_t len = frames(wire, 0, 8);
    SM_ASSERT_OK(sm_send_all(sv[1], wire, len, 5000, NULL) == (ssize_t)len ? 0 : -1);
    assert_true(ts_run_until(l, closed, &c, 10000));
    assert_int_equal(c.closes, 1);
    assert_int_equal(c.reason, SM_ERR_CLOSED);
    free(c.big);
    close(sv[1]);
    ts_loop_free(l); /* fails if a request still held the loop */
}

static void
test_stop_holds_then_delivers_in_order(void **state)
{
    (void)state;
    sm_loop *l = ts_loop();
    int sv[2];
    ts_pair(sv);
    uctx c = {.stop_at = 10};
    sm_stream *s = NULL;
    SM_ASSERT_OK(sm_stream_new_take(&s, l, sv[0], &u_opts, &c));
    static uint8_t wire[N_MSGS * 40];
    /* Ten messages first: reading stops at the tenth. */
    size_t len = frames(wire, 0, 10);
    SM_ASSERT_OK(sm_send_all(sv[1], wire, len, 5000, NULL) == (ssize_t)len ? 0 : -1);
    int64_t end = sm_test_now_ms() + 10000;
    while (c.msgs < 10 && sm_test_now_ms() < end)
        ts_run_once(l, 50);
    assert_int_equal(c.msgs, 10);
    /* The rest, in pieces, while the stream does not read; then the EOF. */
    size_t rest = frames(wire, 10, N_MSGS - 10);
    for (size_t off = 0; off < rest;) {
        size_t k = rest - off < 997 ? rest - off : 997;
        SM_ASSERT_OK(sm_send_all(sv[1], wire + off, k, 5000, NULL) == (ssize_t)k ? 0 : -1);
        off += k;
        ts_run_once(l, 0);
    }
    SM_ASSERT_OK(shutdown(sv[1], SHUT_WR));
    for (int i = 0; i < 5; i++)
        ts_run_once(l, 10);
    assert_int_equal(c.msgs, 10);
    assert_int_equal(c.eofs, 0);
    SM_ASSERT_OK(sm_stream_read_start(s));
    assert_true(ts_run_until(l, got_all, &c, 10000));
    assert_false(c.bad);
    assert_int_equal(c.msgs, N_MSGS);
    end = sm_test_now_ms() + 10000;
    while (c.eofs == 0 && sm_test_now_ms() < end)
        ts_run_once(l, 50);
    assert_int_equal(c.eofs, 1);
    SM_ASSERT_OK(sm_stream_close(s));
    assert_true(ts_run_until(l, closed, &c, 5000));
    close(sv[1]);
    ts_loop_free(l);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_transport_and_echo),
        cmocka_unit_test(test_close_with_requests_in_flight),
        cmocka_unit_test(test_stop_holds_then_delivers_in_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
