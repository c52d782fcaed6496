/* stream module, part 4: sm_stream_send_frame, the received frame sent back
 * as it came. From on_message it is queued by reference into the read
 * buffer: these tests check that the bytes survive partial writes, reads
 * that reuse the buffer, frames that span reads, sends mixed with copied
 * ones, closing inside callbacks (the unsent frames are reported), and that
 * a frame sent to another stream is copied. Runs once per backend. */
#include "test_stream.h"

typedef struct fctx {
    int msgs, bad, closes, reason, dropped, dropped_bad;
    unsigned next_drop;  /* the seq the next dropped message must carry */
    unsigned first_drop; /* the seq of the first dropped message */
    int copy_every;      /* every n-th reply by sm_stream_send (0: never) */
    int close_at;        /* close from on_message at this message (0: never) */
    sm_stream *forward;  /* send to this stream instead */
    const sm_frame_spec *spec;
} fctx;

/* Messages carry their sequence number in the first 4 bytes (big-endian). */
static unsigned
seq_of(const sm_frame_msg *m)
{
    if (m->len < 4) return ~0u;
    return (unsigned)m->data[0] << 24 | (unsigned)m->data[1] << 16 | (unsigned)m->data[2] << 8 |
           m->data[3];
}

static void
f_msg(sm_stream *s, const sm_frame_msg *m)
{
    fctx *c = sm_stream_get_data(s);
    c->msgs++;
    sm_stream *to = c->forward ? c->forward : s;
    int rc = c->copy_every && c->msgs % c->copy_every == 0 ? sm_stream_send(to, m->data, m->len)
                                                           : sm_stream_send_frame(to, m);
    if (rc < 0) c->bad++;
    if (c->close_at && c->msgs == c->close_at) SM_ASSERT_OK(sm_stream_close(s));
}

static void
f_close(sm_stream *s, int reason)
{
    fctx *c = sm_stream_get_data(s);
    c->closes++;
    c->reason = reason;
}

static void
f_dropped(sm_stream *s, const sm_frame_msg *m)
{
    fctx *c = sm_stream_get_data(s);
    if (c->dropped == 0) c->first_drop = c->next_drop = seq_of(m);
    if (seq_of(m) != c->next_drop) c->dropped_bad++;
    c->next_drop++;
    c->dropped++;
}

/* An echo server's: reading pauses while the replies back up. */
static const sm_stream_opts frame_opts = {
    .spec = &ts_len32,
    .on_message = f_msg,
    .on_close = f_close,
    .on_dropped = f_dropped,
    .high_water = 256 * 1024,
    .read_backpressure = SM_READ_BP_PAUSE,
};

static bool
closed(void *ctx)
{
    return ((fctx *)ctx)->closes >= 1;
}

/* n frames of sizes from tiny to past the read buffer, seq in front. */
static uint8_t *
make_wire(unsigned n, size_t *len, size_t big_every)
{
    size_t cap = 0;
    for (unsigned i = 0; i < n; i++)
        cap += 4 + 4 + ts_msg_len(5, i) + (big_every && i % big_every == 1 ? 200000 : 0);
    uint8_t *wire = malloc(cap), *p = malloc(4 + 300 + 200000);
    assert_non_null(wire);
    assert_non_null(p);
    size_t off = 0;
    for (unsigned i = 0; i < n; i++) {
        size_t pl = 4 + ts_msg_len(5, i) + (big_every && i % big_every == 1 ? 200000 : 0);
        ts_msg_fill(p, 5, i, pl);
        p[0] = (uint8_t)(i >> 24);
        p[1] = (uint8_t)(i >> 16);
        p[2] = (uint8_t)(i >> 8);
        p[3] = (uint8_t)i;
        off += ts_frame(&ts_len32, p, pl, wire + off);
    }
    free(p);
    *len = off;
    return wire;
}

typedef struct pump {
    int fd;
    const uint8_t *wire;
    size_t len, off;
} pump;

/* Write what the socket takes, run the loop, until the raw peer has `want`
 * bytes. The raw peer starts reading only once the writer has been refused
 * (and 20 iterations passed): the echo backs up first, into partial writes
 * and a paused reader. */
static void
pump_all(sm_loop *l, pump *p, ts_raw *r, size_t want)
{
    int64_t end = sm_test_now_ms() + 30000;
    bool refused = false;
    for (int i = 0; (p->off < p->len || r->len < want) && sm_test_now_ms() < end; i++) {
        if (p->off < p->len) {
            ssize_t k = write(p->fd, p->wire + p->off, p->len - p->off);
            if (k > 0) p->off += (size_t)k;
            if (k < 0 && errno == EAGAIN) refused = true;
        }
        if ((refused || p->off == p->len) && i >= 20 && !(sm_io_get_events(&r->io) & SM_READ))
            SM_ASSERT_OK(sm_io_set_events(&r->io, SM_READ));
        ts_run_once(l, 1);
    }
}

static void
echo_case(unsigned n, size_t big_every, int copy_every)
{
    sm_loop *l = ts_loop();
    int sv[2];
    ts_pair(sv);
    fctx c = {.copy_every = copy_every};
    sm_stream *s = NULL;
    SM_ASSERT_OK(sm_stream_new_take(&s, l, sv[0], &frame_opts, &c));
    SM_ASSERT_OK(sm_sock_set_nonblock(sv[1], true));
    ts_raw r;
    ts_raw_start(l, &r, sv[1], false);
    size_t len;
    uint8_t *wire = make_wire(n, &len, big_every);
    pump p = {.fd = sv[1], .wire = wire, .len = len};
    pump_all(l, &p, &r, len);
    assert_int_equal(c.bad, 0);
    assert_int_equal(c.msgs, (int)n);
    assert_int_equal(r.len, len);
    assert_true(memcmp(r.buf, wire, len) == 0);
    assert_null(s->rd);
    assert_int_equal(sm__sl(s)->refs_used, 0);
    free(wire);
    SM_ASSERT_OK(sm_stream_close(s));
    ts_raw_close(&r);
    ts_loop_free(l);
    assert_int_equal(c.closes, 1);
}

/* Small frames only: many per read, coalesced, partial writes. */
static void
test_echo_small(void **state)
{
    (void)state;
    echo_case(3000, 0, 0);
}

/* 200 KB frames among small ones: frames that span reads and are delivered
 * from the stream's own leftover block, which is then reused. */
static void
test_echo_big(void **state)
{
    (void)state;
    echo_case(600, 50, 0);
}

/* Every third reply copied by sm_stream_send: order is kept between
 * references and copies. */
static void
test_echo_mixed(void **state)
{
    (void)state;
    echo_case(2000, 97, 3);
}

static bool
c2_all(void *ctx)
{
    return ((fctx *)ctx)->msgs >= 100;
}

/* Closing from on_message with replies queued by reference: those not
 * written are reported to on_dropped intact (after the read buffer was
 * reused), in order, following those that were written. */
static void
test_close_in_message(void **state)
{
    (void)state;
    sm_loop *l = ts_loop();
    int sv[2];
    ts_pair(sv);
    fctx c = {.close_at = 40};
    sm_stream *s = NULL;
    SM_ASSERT_OK(sm_stream_new_take(&s, l, sv[0], &frame_opts, &c));
    size_t len;
    uint8_t *wire = make_wire(100, &len, 0);
    ts_write(sv[1], wire, len);
    /* Another stream's read batch reuses the shared buffer meanwhile. */
    int sv2[2];
    ts_pair(sv2);
    fctx c2 = {0};
    sm_stream *s2 = NULL;
    SM_ASSERT_OK(sm_stream_new_take(&s2, l, sv2[0], &frame_opts, &c2));
    ts_write(sv2[1], wire, len);
    assert_true(ts_run_until(l, closed, &c, 5000));
    assert_int_equal(c.msgs, 40);
    SM_ASSERT_ERR(c.reason, SM_ERR_CLOSED);
    assert_true(c.dropped >= 1);
    assert_int_equal(c.dropped_bad, 0);
    uint8_t *got = malloc(len);
    ssize_t k = recv(sv[1], got, len, MSG_DONTWAIT);
    size_t have = k > 0 ? (size_t)k : 0;
    assert_int_equal(ts_count_frames(&ts_len32, got, have), (int)c.first_drop);
    assert_true(memcmp(got, wire, have) == 0);
    assert_int_equal(c.first_drop + (unsigned)c.dropped, 40);
    free(got);
    assert_true(ts_run_until(l, c2_all, &c2, 5000));
    assert_int_equal(c2.msgs, 100);
    assert_int_equal(c2.bad, 0);
    free(wire);
    SM_ASSERT_OK(sm_stream_close(s2));
    close(sv[1]);
    close(sv2[1]);
    ts_loop_free(l);
    assert_int_equal(c2.closes, 1);
}

/* To another stream: copied (that stream is not in its read batch), bytes
 * exactly the frames received. */
static void
test_forward(void **state)
{
    (void)state;
    sm_loop *l = ts_loop();
    int a[2], b[2];
    ts_pair(a);
    ts_pair(b);
    fctx cb = {0};
    sm_stream *sb = NULL;
    SM_ASSERT_OK(sm_stream_new_take(&sb, l, b[0], &frame_opts, &cb));
    fctx ca = {.forward = sb};
    sm_stream *sa = NULL;
    SM_ASSERT_OK(sm_stream_new_take(&sa, l, a[0], &frame_opts, &ca));
    SM_ASSERT_OK(sm_sock_set_nonblock(a[1], true));
    ts_raw r;
    ts_raw_start(l, &r, b[1], false);
    size_t len;
    uint8_t *wire = make_wire(1500, &len, 100);
    pump p = {.fd = a[1], .wire = wire, .len = len};
    pump_all(l, &p, &r, len);
    assert_int_equal(ca.bad, 0);
    assert_int_equal(r.len, len);
    assert_true(memcmp(r.buf, wire, len) == 0);
    assert_int_equal(sm__sl(sa)->refs_used, 0);
    free(wire);
    SM_ASSERT_OK(sm_stream_close(sa));
    SM_ASSERT_OK(sm_stream_close(sb));
    close(a[1]);
    ts_raw_close(&r);
    ts_loop_free(l);
}

/* A frame that is not in the read buffer (here: on the stack of on_message,
 * overwritten before it returns) is copied, never queued by reference, even
 * from inside the read batch. */
static void
f_stack_frame(sm_stream *s, const sm_frame_msg *m)
{
    fctx *c = sm_stream_get_data(s);
    uint8_t tmp[64];
    if (m->frame_len > sizeof tmp) {
        c->bad++;
        return;
    }
    memcpy(tmp, m->frame, m->frame_len);
    sm_frame_msg copy = *m;
    copy.frame = tmp;
    copy.data = tmp + (m->data - m->frame);
    if (sm_stream_send_frame(s, &copy) < 0) c->bad++;
    memset(tmp, 0xee, sizeof tmp);
    c->msgs++;
}

static bool
got_msgs(void *ctx)
{
    fctx *c = ctx;
    return c->msgs >= 3;
}

static void
test_frame_outside_read_buffer_copied(void **state)
{
    (void)state;
    static const sm_stream_opts o = {
        .spec = &ts_len32, .on_message = f_stack_frame, .on_close = f_close};
    sm_loop *l = ts_loop();
    int sv[2];
    ts_pair(sv);
    fctx c = {0};
    sm_stream *s = NULL;
    SM_ASSERT_OK(sm_stream_new_take(&s, l, sv[0], &o, &c));
    static const uint8_t wire[] = {0, 0, 0, 3, 'a', 'b', 'c', 0, 0, 0, 0, 0, 0, 0, 2, 'x', 'y'};
    SM_ASSERT_OK(sm_send_all(sv[1], wire, sizeof wire, 5000, NULL));
    assert_true(ts_run_until(l, got_msgs, &c, 5000));
    assert_int_equal(c.bad, 0);
    uint8_t back[sizeof wire];
    SM_ASSERT_ERR(sm_recv_exact(sv[1], back, sizeof back, 5000, NULL), (long long)sizeof back);
    assert_memory_equal(back, wire, sizeof wire);
    SM_ASSERT_OK(sm_stream_close(s));
    close(sv[1]);
    ts_loop_free(l);
}

static bool
has_some_rd(void *ctx)
{
    sm_stream *s = ctx;
    return s->rd && s->rd->len >= 1004;
}

/* A header announcing 8 MB (under max) with 1 KB behind it: the block grows
 * with the bytes that arrive, not to what the header announces. */
static void
test_announced_size_not_preallocated(void **state)
{
    (void)state;
    sm_loop *l = ts_loop();
    int sv[2];
    ts_pair(sv);
    fctx c = {0};
    sm_stream *s = NULL;
    SM_ASSERT_OK(sm_stream_new_take(&s, l, sv[0], &frame_opts, &c));
    static uint8_t part[1004] = {0x00, 0x7a, 0x12, 0x00}; /* 8,000,000 */
    SM_ASSERT_OK(sm_send_all(sv[1], part, sizeof part, 5000, NULL));
    assert_true(ts_run_until(l, has_some_rd, s, 5000));
    assert_int_equal(s->rd->want, 4 + 8000000);
    if (s->rd->cap > sizeof part + SM__RBUF_SIZE)
        fail_msg("a 1004-byte start of an 8 MB frame holds a %zu-byte block", s->rd->cap);
    SM_ASSERT_OK(sm_stream_close(s));
    close(sv[1]);
    ts_loop_free(l);
}

static bool
has_rd(void *ctx)
{
    sm_stream *s = ctx;
    return s->rd && s->rd->len >= 100000;
}

/* A big frame that spans reads waits in a block of exactly its size, read
 * into directly; once whole it is echoed from there and the block freed. */
static void
test_big_frame_exact(void **state)
{
    (void)state;
    sm_loop *l = ts_loop();
    int sv[2];
    ts_pair(sv);
    fctx c = {0};
    sm_stream *s = NULL;
    SM_ASSERT_OK(sm_stream_new_take(&s, l, sv[0], &frame_opts, &c));
    SM_ASSERT_OK(sm_sock_set_nonblock(sv[1], true));
    ts_raw r;
    ts_raw_start(l, &r, sv[1], true);
    size_t len;
    uint8_t *wire = make_wire(2, &len, 2); /* a small frame, then a 200 KB one */
    size_t first = 4 + 4 + ts_msg_len(5, 0);
    pump p = {.fd = sv[1], .wire = wire, .len = first + 100000};
    pump_all(l, &p, &r, first);
    assert_true(ts_run_until(l, has_rd, s, 5000));
    assert_int_equal(s->rd->cap, len - first);
    assert_int_equal(s->rd->want, len - first);
    p.len = len;
    pump_all(l, &p, &r, len);
    assert_int_equal(r.len, len);
    assert_true(memcmp(r.buf, wire, len) == 0);
    assert_null(s->rd);
    free(wire);
    SM_ASSERT_OK(sm_stream_close(s));
    ts_raw_close(&r);
    ts_loop_free(l);
}

static void
test_arguments(void **state)
{
    (void)state;
    static const sm_frame_spec small = {.kind = SM_FRAME_LENGTH, .len_width = 4, .max = 8};
    static const sm_stream_opts o = {.spec = &small, .on_message = f_msg, .on_close = f_close};
    sm_loop *l = ts_loop();
    int sv[2];
    ts_pair(sv);
    fctx c = {0};
    sm_stream *s = NULL;
    SM_ASSERT_OK(sm_stream_new_take(&s, l, sv[0], &o, &c));
    uint8_t f[16] = {0, 0, 0, 3, 'a', 'b', 'c'};
    sm_frame_msg m = {.data = f + 4, .len = 3, .frame = f, .frame_len = 7, .type = -1};
    SM_ASSERT_ERR(sm_stream_send_frame(NULL, &m), -EINVAL);
    SM_ASSERT_ERR(sm_stream_send_frame(s, NULL), -EINVAL);
    sm_frame_msg bad = {.frame = NULL, .frame_len = 3, .type = -1};
    SM_ASSERT_ERR(sm_stream_send_frame(s, &bad), -EINVAL);
    sm_frame_msg empty = {.data = f, .frame = f, .frame_len = 0, .type = -1};
    SM_ASSERT_ERR(sm_stream_send_frame(s, &empty), 0);
    assert_int_equal(sm_stream_queued(s), 0);
    sm_frame_msg big = {.data = f + 4, .len = 12, .frame = f, .frame_len = 16, .type = -1};
    SM_ASSERT_ERR(sm_stream_send_frame(s, &big), -EMSGSIZE);
    /* Outside on_message: copied, sent at the end of the iteration. */
    SM_ASSERT_ERR(sm_stream_send_frame(s, &m), 0);
    assert_int_equal(sm_stream_queued(s), 7);
    f[4] = 'x'; /* the stream's copy is not the caller's buffer */
    uint8_t got[7];
    ts_run_once(l, 0);
    SM_ASSERT_ERR(sm_recv_exact(sv[1], got, 7, 5000, NULL), 7);
    assert_memory_equal(got, "\0\0\0\3abc", 7);
    SM_ASSERT_OK(sm_stream_shutdown(s));
    SM_ASSERT_ERR(sm_stream_send_frame(s, &m), -EPIPE);
    SM_ASSERT_OK(sm_stream_close(s));
    SM_ASSERT_ERR(sm_stream_send_frame(s, &m), SM_ERR_CLOSED);
    close(sv[1]);
    ts_loop_free(l);
    assert_int_equal(c.closes, 1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_echo_small),
        cmocka_unit_test(test_echo_big),
        cmocka_unit_test(test_echo_mixed),
        cmocka_unit_test(test_close_in_message),
        cmocka_unit_test(test_forward),
        cmocka_unit_test(test_big_frame_exact),
        cmocka_unit_test(test_announced_size_not_preallocated),
        cmocka_unit_test(test_frame_outside_read_buffer_copied),
        cmocka_unit_test(test_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
