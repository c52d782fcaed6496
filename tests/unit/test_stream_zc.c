/* Echo replies without a copy (sm_stream_send_frame of a received frame),
 * run on every backend. On io_uring a reply to a frame in a provided
 * buffer is queued by reference and pins that buffer until its write
 * completed; elsewhere replies reference the read buffer within a batch.
 * Either way the peer must get exactly the bytes it sent:
 *   - an echo of frames of many sizes (frames straddling buffers, several
 *     frames per receive), the peer reading in odd pieces: the bytes come
 *     back exact, pins were taken on io_uring and none is left at the end;
 *   - a peer that stops reading while it keeps sending: its replies pin
 *     buffers up to the bound (half the ring), never more, and a second
 *     connection keeps getting its echoes meanwhile; once the first peer
 *     reads again, every byte of it comes back exact;
 *   - sm_stream_close from on_message with pinned writes in flight, and
 *     the peer going away with them: on_close once, every reply either
 *     written whole or reported to on_dropped (exactly once: what the
 *     peer got plus what was dropped is what was echoed), every pin gone
 *     (ASan sees a write of a buffer given back, or a pin put twice);
 *   - the same with frames up to 300 KB, whose replies take the frame's
 *     block along instead of a copy: exact bytes, each block reported or
 *     written once and freed once; and each such frame sent back twice
 *     (the second send must not point into the block the first took). */
#include <arpa/inet.h>

#include "test_stream.h"

#include "internal.h"
#include "transport.h"
#ifdef SM_HAVE_URING
#include "loop_uring.h"
#endif

#define MAX_LEN 6000

typedef struct zctx {
    int msgs, closes, reason, dropped;
    int close_at; /* on_message closes the stream at this count (0: never) */
    bool twice;   /* on_message sends every frame back twice */
    unsigned max_pinned;
    bool bad;
} zctx;

static unsigned
pinned(sm_loop *l)
{
#ifdef SM_HAVE_URING
    sm__uring *u = sm__loop_uring(l);
    return u ? sm__uring_bufs_pinned(u) : 0;
#else
    (void)l;
    return 0;
#endif
}

/* The most buffers the ring lets replies pin: half of them. */
static unsigned
pin_max(sm_loop *l)
{
#ifdef SM_HAVE_URING
    sm__uring *u = sm__loop_uring(l);
    return u ? sm__uring_buf_count(u) / 2 : 0;
#else
    (void)l;
    return 0;
#endif
}

static bool
on_uring(const sm_stream *s)
{
    return !strcmp(sm__tp_of(s)->name, "io_uring");
}

static void
z_msg(sm_stream *s, const sm_frame_msg *m)
{
    zctx *c = sm_stream_get_data(s);
    c->msgs++;
    int rc = sm_stream_send_frame(s, m);
    if (rc < 0) c->bad = true;
    /* Again: after the first took the frame's block along, the second
     * must not point into it. */
    if (c->twice && sm_stream_send_frame(s, m) < 0) c->bad = true;
    unsigned p = pinned(s->io.loop);
    if (p > c->max_pinned) c->max_pinned = p;
    if (c->close_at && c->msgs == c->close_at) SM_ASSERT_OK(sm_stream_close(s));
}

static void
z_dropped(sm_stream *s, const sm_frame_msg *m)
{
    (void)m;
    zctx *c = sm_stream_get_data(s);
    c->dropped++;
}

static void
z_close(sm_stream *s, int reason)
{
    zctx *c = sm_stream_get_data(s);
    c->closes++;
    c->reason = reason;
}

/* Big enough that a peer that does not read makes the queue pin every
 * buffer it may (16 MiB is 1024 buffers' worth). */
static const sm_stream_opts z_opts = {.spec = &ts_len32,
                                      .on_message = z_msg,
                                      .on_dropped = z_dropped,
                                      .on_close = z_close,
                                      .high_water = (size_t)16 << 20,
                                      .max_queued = (size_t)64 << 20};

/* The longest payload of the test running: MAX_LEN, or long frames that
 * get a block of their own (handed to the queue by their replies). */
static size_t zmax = MAX_LEN;

/* Frame i's payload length and bytes: 1 .. zmax, all over the place. */
static size_t
zlen(unsigned i)
{
    return 1 + (size_t)((i * 2654435761u) >> 7) % zmax;
}

/* n frames from frame `first` on (freed by the caller). */
static uint8_t *
zwire(unsigned first, unsigned n, size_t *len)
{
    size_t cap = 0;
    for (unsigned i = first; i < first + n; i++)
        cap += 4 + zlen(i);
    uint8_t *w = malloc(cap), *p = w;
    assert_non_null(w);
    for (unsigned i = first; i < first + n; i++) {
        size_t k = zlen(i);
        uint32_t be = htonl((uint32_t)k);
        memcpy(p, &be, 4);
        for (size_t j = 0; j < k; j++)
            p[4 + j] = (uint8_t)(i * 31u + j * 7u + (j >> 8));
        p += 4 + k;
    }
    *len = cap;
    return w;
}

/* A raw peer on the other end of a socket pair: sends its wire as the
 * socket takes it, reads (when told to) into got. */
typedef struct zpeer {
    int fd;
    uint8_t *wire, *got;
    size_t len, sent, have;
    bool reading;
} zpeer;

static void
zpeer_init(zpeer *p, int fd, unsigned first, unsigned n)
{
    memset(p, 0, sizeof *p);
    p->fd = fd;
    p->wire = zwire(first, n, &p->len);
    p->got = malloc(p->len);
    assert_non_null(p->got);
    p->reading = true;
}

/* Move what the socket takes and gives now, in odd pieces. */
static void
zpeer_pump(zpeer *p, unsigned k)
{
    static const size_t piece[] = {5000, 7, 65536, 4100, 300001, 13};
    if (p->sent < p->len) {
        size_t n = SM__MIN(piece[k % 6], p->len - p->sent);
        ssize_t r = send(p->fd, p->wire + p->sent, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (r > 0) p->sent += (size_t)r;
    }
    while (p->reading && p->have < p->len) {
        size_t n = SM__MIN(piece[(k + 3) % 6], p->len - p->have);
        ssize_t r = recv(p->fd, p->got + p->have, n, MSG_DONTWAIT);
        if (r <= 0) break;
        p->have += (size_t)r;
    }
}

static bool
zpeer_done(const zpeer *p)
{
    return p->sent == p->len && p->have == p->len;
}

static void
zpeer_free(zpeer *p)
{
    free(p->wire);
    free(p->got);
    if (p->fd >= 0) close(p->fd);
    p->fd = -1;
}

static bool
zclosed(void *ctx)
{
    return ((zctx *)ctx)->closes > 0;
}

static bool
unpinned(void *ctx)
{
    return pinned(ctx) == 0;
}

static void
echo_exact(unsigned n)
{
    sm_loop *l = ts_loop();
    int sv[2];
    ts_pair(sv);
    zctx c = {0};
    sm_stream *s = NULL;
    SM_ASSERT_OK(sm_stream_new_take(&s, l, sv[0], &z_opts, &c));
    zpeer p;
    zpeer_init(&p, sv[1], 0, n);
    int64_t end = sm_test_now_ms() + 20000;
    for (unsigned k = 0; !zpeer_done(&p) && !c.bad && sm_test_now_ms() < end; k++) {
        zpeer_pump(&p, k);
        ts_run_once(l, p.sent < p.len ? 0 : 5);
    }
    assert_false(c.bad);
    assert_int_equal(c.msgs, (int)n);
    assert_true(zpeer_done(&p));
    assert_memory_equal(p.got, p.wire, p.len);
    if (on_uring(s)) assert_true(c.max_pinned > 0); /* replies were pinned, not copied */
    assert_true(ts_run_until(l, unpinned, l, 5000));
    SM_ASSERT_OK(sm_stream_close(s));
    assert_true(ts_run_until(l, zclosed, &c, 5000));
    assert_int_equal(c.closes, 1);
    assert_int_equal(pinned(l), 0);
    zpeer_free(&p);
    ts_loop_free(l);
}

static void
test_echo_exact(void **state)
{
    (void)state;
    zmax = MAX_LEN;
    echo_exact(3000);
}

/* Frames up to 300 KB: their blocks go out with their replies. */
static void
test_echo_exact_long(void **state)
{
    (void)state;
    zmax = 300000;
    echo_exact(60);
}

/* Every long frame echoed twice: the bytes are each frame, then again. */
static void
test_echo_twice_long(void **state)
{
    (void)state;
    zmax = 300000;
    enum { N = 30 };
    sm_loop *l = ts_loop();
    int sv[2];
    ts_pair(sv);
    zctx c = {.twice = true};
    sm_stream *s = NULL;
    SM_ASSERT_OK(sm_stream_new_take(&s, l, sv[0], &z_opts, &c));
    zpeer p;
    zpeer_init(&p, sv[1], 0, N);
    uint8_t *want = malloc(2 * p.len), *got = malloc(2 * p.len);
    assert_non_null(want);
    assert_non_null(got);
    size_t at = 0, have = 0;
    for (unsigned i = 0, from = 0; i < N; i++) {
        size_t f = 4 + zlen(i);
        memcpy(want + at, p.wire + from, f);
        memcpy(want + at + f, p.wire + from, f);
        at += 2 * f;
        from += (unsigned)f;
    }
    p.reading = false; /* read here, into got */
    int64_t end = sm_test_now_ms() + 20000;
    for (unsigned k = 0; have < at && !c.bad && sm_test_now_ms() < end; k++) {
        zpeer_pump(&p, k);
        ssize_t r = recv(p.fd, got + have, at - have, MSG_DONTWAIT);
        if (r > 0) have += (size_t)r;
        ts_run_once(l, p.sent < p.len ? 0 : 5);
    }
    assert_false(c.bad);
    assert_int_equal(have, at);
    assert_memory_equal(got, want, at);
    SM_ASSERT_OK(sm_stream_close(s));
    assert_true(ts_run_until(l, zclosed, &c, 5000));
    free(want);
    free(got);
    zpeer_free(&p);
    ts_loop_free(l);
}

static void
test_stalled_peer_pins_bounded(void **state)
{
    (void)state;
    zmax = MAX_LEN;
    sm_loop *l = ts_loop();
    int a[2], b[2];
    ts_pair(a);
    ts_pair(b);
    /* Little socket buffer toward the stalled peer: its replies queue. */
    int small = 4096;
    SM_ASSERT_OK(setsockopt(a[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small));
    zctx ca = {0}, cb = {0};
    sm_stream *sa = NULL, *sb = NULL;
    SM_ASSERT_OK(sm_stream_new_take(&sa, l, a[0], &z_opts, &ca));
    SM_ASSERT_OK(sm_stream_new_take(&sb, l, b[0], &z_opts, &cb));
    zpeer pa, pb;
    zpeer_init(&pa, a[1], 0, 2400); /* about 7 MiB: more than the ring */
    zpeer_init(&pb, b[1], 5000, 600);
    pa.reading = false;
    int64_t end = sm_test_now_ms() + 20000;
    for (unsigned k = 0; pa.sent < pa.len && !ca.bad && sm_test_now_ms() < end; k++) {
        zpeer_pump(&pa, k);
        ts_run_once(l, 0);
    }
    /* Everything arrived and was echoed into the queue. */
    for (int i = 0; i < 1000 && ca.msgs < 2400; i++)
        ts_run_once(l, 5);
    assert_int_equal(ca.msgs, 2400);
    if (on_uring(sa)) {
        assert_int_equal(ca.max_pinned, pin_max(l));
        assert_int_equal(pinned(l), pin_max(l));
    }
    /* The other connection goes on meanwhile: the ring is not starved. */
    for (unsigned k = 0; !zpeer_done(&pb) && !cb.bad && sm_test_now_ms() < end; k++) {
        zpeer_pump(&pb, k);
        ts_run_once(l, pb.sent < pb.len ? 0 : 5);
    }
    assert_false(cb.bad);
    assert_true(zpeer_done(&pb));
    assert_memory_equal(pb.got, pb.wire, pb.len);
    if (on_uring(sa)) assert_true(cb.max_pinned <= pin_max(l));
    /* The stalled peer reads again: every byte, in order. */
    pa.reading = true;
    for (unsigned k = 0; !zpeer_done(&pa) && sm_test_now_ms() < end; k++) {
        zpeer_pump(&pa, k);
        ts_run_once(l, 1);
    }
    assert_false(ca.bad);
    assert_true(zpeer_done(&pa));
    assert_memory_equal(pa.got, pa.wire, pa.len);
    assert_true(ts_run_until(l, unpinned, l, 5000));
    SM_ASSERT_OK(sm_stream_close(sa));
    SM_ASSERT_OK(sm_stream_close(sb));
    assert_true(ts_run_until(l, zclosed, &ca, 5000));
    assert_true(ts_run_until(l, zclosed, &cb, 5000));
    zpeer_free(&pa);
    zpeer_free(&pb);
    ts_loop_free(l);
}

/* The frames whole in got[0..have), and whether those bytes are exactly
 * the start of the wire. */
static int
whole_frames(const zpeer *p)
{
    assert_memory_equal(p->got, p->wire, p->have);
    return ts_count_frames(&ts_len32, p->got, p->have);
}

/* Replies pinned and stuck behind a stalled peer, then the stream ends:
 * by sm_stream_close from on_message (close_at), or by the peer closing
 * its end (peer_goes). */
static void
end_with_pins(int close_at, bool peer_goes, unsigned n)
{
    sm_loop *l = ts_loop();
    int sv[2];
    ts_pair(sv);
    int small = 4096;
    SM_ASSERT_OK(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small));
    zctx c = {.close_at = close_at};
    sm_stream *s = NULL;
    SM_ASSERT_OK(sm_stream_new_take(&s, l, sv[0], &z_opts, &c));
    zpeer p;
    zpeer_init(&p, sv[1], 0, n);
    p.reading = false;
    int64_t end = sm_test_now_ms() + 20000;
    for (unsigned k = 0; p.sent < p.len && !c.closes && sm_test_now_ms() < end; k++) {
        zpeer_pump(&p, k);
        ts_run_once(l, 0);
    }
    if (peer_goes) {
        for (int i = 0; i < 1000 && c.msgs < (int)n; i++)
            ts_run_once(l, 5);
        assert_int_equal(c.msgs, (int)n);
        if (on_uring(s) && zmax == MAX_LEN) assert_true(pinned(l) > 0); /* waiting for the peer */
        /* Read a little, then go: the write in flight fails (EPIPE). */
        p.reading = true;
        zpeer_pump(&p, 0);
        p.reading = false;
        close(p.fd);
        p.fd = -1;
    }
    assert_true(ts_run_until(l, zclosed, &c, 10000));
    assert_int_equal(c.closes, 1);
    if (!peer_goes) assert_int_equal(c.reason, SM_ERR_CLOSED);
    if (peer_goes) assert_true(c.reason < 0);
    assert_false(c.bad);
    assert_true(ts_run_until(l, unpinned, l, 5000));
    if (p.fd >= 0) {
        /* Whatever was written, then EOF: each echo arrived whole or was
         * reported dropped, never both, never neither. */
        p.reading = true;
        for (unsigned k = 0; sm_test_now_ms() < end; k++) {
            size_t was = p.have;
            zpeer_pump(&p, k);
            char x;
            if (p.have == was && recv(p.fd, &x, 1, MSG_DONTWAIT | MSG_PEEK) == 0) break;
            if (p.have == was) ts_run_once(l, 1);
        }
    }
    /* A peer that went lost what the kernel had taken for it. */
    if (peer_goes)
        assert_true(whole_frames(&p) + c.dropped <= c.msgs);
    else
        assert_int_equal(whole_frames(&p) + c.dropped, c.msgs);
    zpeer_free(&p);
    ts_loop_free(l);
}

static void
test_close_in_message_with_pins(void **state)
{
    (void)state;
    zmax = MAX_LEN;
    end_with_pins(500, false, 600);
}

static void
test_peer_gone_with_pins(void **state)
{
    (void)state;
    zmax = MAX_LEN;
    end_with_pins(0, true, 600);
}

/* The same with long frames: replies that took their blocks along are
 * in flight, reported from those blocks, freed once. */
static void
test_close_in_message_with_blocks(void **state)
{
    (void)state;
    zmax = 300000;
    end_with_pins(30, false, 40);
}

static void
test_peer_gone_with_blocks(void **state)
{
    (void)state;
    zmax = 300000;
    end_with_pins(0, true, 40);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_echo_exact),
        cmocka_unit_test(test_stalled_peer_pins_bounded),
        cmocka_unit_test(test_close_in_message_with_pins),
        cmocka_unit_test(test_peer_gone_with_pins),
        cmocka_unit_test(test_echo_exact_long),
        cmocka_unit_test(test_echo_twice_long),
        cmocka_unit_test(test_close_in_message_with_blocks),
        cmocka_unit_test(test_peer_gone_with_blocks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
