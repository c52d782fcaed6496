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
 *   - the peer's EOF while reading is stopped comes after the held bytes;
 *   - long frames (received straight into their block on io_uring) mixed
 *     with short ones, sent in odd pieces, reading stopped and started in
 *     the middle of long ones, or stopped and started inside on_message:
 *     every byte arrives once, in order;
 *   - close while a long frame's rest is being received into its block. */
#include <arpa/inet.h>

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

/* Long frames: message i is lens[i % N_LENS] bytes, each byte a function
 * of i and its offset, so a byte out of place or twice shows. */
#define N_LONG 60
static const size_t lens[] = {70000, 5, (size_t)1 << 20, 16380, 200001, 33, 65536, 16385};
#define N_LENS (sizeof lens / sizeof lens[0])

typedef struct lctx {
    int msgs, closes;
    bool bad, stopped;
    int stop_every; /* stop reading after every this many messages */
    bool restart;   /* on_message stops and starts reading again at once */
} lctx;

static uint8_t
lbyte(unsigned i, size_t off)
{
    return (uint8_t)(i * 131u + off * 7u + (off >> 9));
}

static void
l_msg(sm_stream *s, const sm_frame_msg *m)
{
    lctx *c = sm_stream_get_data(s);
    unsigned i = (unsigned)c->msgs;
    if (m->len != lens[i % N_LENS]) c->bad = true;
    for (size_t k = 0; !c->bad && k < m->len; k++)
        if (m->data[k] != lbyte(i, k)) c->bad = true;
    c->msgs++;
    if (c->restart) {
        /* The receive re-armed inside the batch, which still owns the
         * block (ASan sees a receive into a block the batch moved). */
        SM_ASSERT_OK(sm_stream_read_stop(s));
        SM_ASSERT_OK(sm_stream_read_start(s));
    }
    if (c->stop_every && c->msgs % c->stop_every == 0) {
        SM_ASSERT_OK(sm_stream_read_stop(s));
        c->stopped = true;
    }
}

static void
l_close(sm_stream *s, int reason)
{
    (void)reason;
    lctx *c = sm_stream_get_data(s);
    c->closes++;
}

static const sm_stream_opts l_opts = {
    .spec = &ts_len32, .on_message = l_msg, .on_close = l_close, .max_queued = (size_t)64 << 20};

static bool
lclosed(void *ctx)
{
    return ((lctx *)ctx)->closes > 0;
}

/* All N_LONG messages framed into one buffer (freed by the caller). */
static uint8_t *
long_wire(size_t *len)
{
    size_t cap = 0;
    for (unsigned i = 0; i < N_LONG; i++)
        cap += lens[i % N_LENS] + 4;
    uint8_t *w = malloc(cap), *p = w;
    assert_non_null(w);
    for (unsigned i = 0; i < N_LONG; i++) {
        size_t n = lens[i % N_LENS];
        uint32_t be = htonl((uint32_t)n);
        memcpy(p, &be, 4);
        for (size_t k = 0; k < n; k++)
            p[4 + k] = lbyte(i, k);
        p += 4 + n;
    }
    *len = cap;
    return w;
}

static void
long_frames(int stop_every, bool restart)
{
    sm_loop *l = ts_loop();
    int sv[2];
    ts_pair(sv);
    SM_ASSERT_OK(sm_sock_set_nonblock(sv[1], true));
    lctx c = {.stop_every = stop_every, .restart = restart};
    sm_stream *s = NULL;
    SM_ASSERT_OK(sm_stream_new_take(&s, l, sv[0], &l_opts, &c));
    size_t len = 0, off = 0;
    uint8_t *w = long_wire(&len);
    /* Pieces of odd sizes, the loop run between them: frames start and end
     * anywhere in a receive. */
    static const size_t piece[] = {7, 40000, 131072, 3, 65539, 999, 300000};
    int64_t end = sm_test_now_ms() + 30000;
    for (unsigned k = 0; (off < len || c.msgs < N_LONG) && !c.bad && sm_test_now_ms() < end; k++) {
        if (off < len) {
            size_t n = piece[k % 7] < len - off ? piece[k % 7] : len - off;
            ssize_t r = send(sv[1], w + off, n, MSG_NOSIGNAL);
            if (r > 0) off += (size_t)r;
        }
        ts_run_once(l, off < len ? 0 : 10);
        if (stop_every && k % 5 == 4 && !c.stopped) {
            /* Stopped from outside too, a long frame's rest maybe on its
             * way into the block. */
            SM_ASSERT_OK(sm_stream_read_stop(s));
            c.stopped = true;
        }
        if (c.stopped) {
            c.stopped = false;
            ts_run_once(l, 0);
            SM_ASSERT_OK(sm_stream_read_start(s));
        }
    }
    assert_false(c.bad);
    assert_int_equal(c.msgs, N_LONG);
    SM_ASSERT_OK(sm_stream_close(s));
    assert_true(ts_run_until(l, lclosed, &c, 5000));
    free(w);
    close(sv[1]);
    ts_loop_free(l);
}

static void
test_long_frames_every_byte(void **state)
{
    (void)state;
    long_frames(0, false);
}

static void
test_long_frames_restart_in_message(void **state)
{
    (void)state;
    long_frames(0, true);
}

static void
test_long_frames_with_stops(void **state)
{
    (void)state;
    long_frames(3, false);
}

static void
test_close_while_receiving_into_block(void **state)
{
    (void)state;
    sm_loop *l = ts_loop();
    int sv[2];
    ts_pair(sv);
    lctx c = {0};
    sm_stream *s = NULL;
    SM_ASSERT_OK(sm_stream_new_take(&s, l, sv[0], &l_opts, &c));
    size_t len = 0;
    uint8_t *w = long_wire(&len);
    /* Message 0 whole, then a third of message 2 (1 MiB): its rest is
     * awaited in the block when the stream closes. */
    size_t part = 4 + lens[0] + 4 + lens[1] + (lens[2] / 3);
    SM_ASSERT_OK(sm_sock_set_nonblock(sv[1], true));
    size_t off = 0;
    int64_t end = sm_test_now_ms() + 10000;
    while ((off < part || c.msgs < 2) && sm_test_now_ms() < end) {
        ssize_t r = off < part ? send(sv[1], w + off, part - off, MSG_NOSIGNAL) : 0;
        if (r > 0) off += (size_t)r;
        ts_run_once(l, 10);
    }
    assert_int_equal(off, part);
    assert_int_equal(c.msgs, 2);
    for (int i = 0; i < 3; i++)
        ts_run_once(l, 10);
    SM_ASSERT_OK(sm_stream_close(s));
    assert_true(ts_run_until(l, lclosed, &c, 5000));
    assert_int_equal(c.closes, 1);
    assert_false(c.bad);
    free(w);
    close(sv[1]);
    ts_loop_free(l); /* fails if the receive still held the loop */
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_transport_and_echo),
        cmocka_unit_test(test_close_with_requests_in_flight),
        cmocka_unit_test(test_stop_holds_then_delivers_in_order),
        cmocka_unit_test(test_long_frames_every_byte),
        cmocka_unit_test(test_long_frames_with_stops),
        cmocka_unit_test(test_long_frames_restart_in_message),
        cmocka_unit_test(test_close_while_receiving_into_block),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
