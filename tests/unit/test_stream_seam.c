/* The I/O seam under streams (src/transport.h) and the invariants around
 * it: bytes handed over from a buffer of the transport's own (the
 * completion shape) decode like bytes read into the stream's buffers, at
 * every split point; sm_stream_send_frame's zero-copy fast path ends
 * whenever the queue's tail or the stream's state changes. */
#include "test_stream.h"

#include <pthread.h>

#include "internal.h"
#include "transport.h"

typedef struct seam {
    sm_loop *l;
    sm_stream *s;
    ts_raw peer;
    int msgs;
    size_t bytes;
    uint8_t got[1 << 20];
    int mode;    /* what on_message does: see the tests */
    size_t want; /* bytes the peer is to receive */
    bool closed; /* on_close ran (with reason) */
    int reason;
    int rc_after[8];
} seam;

/* ---- the completion shape: sm__rx_input ------------------------------- */

static void
collect_cb(sm_stream *s, const sm_frame_msg *m)
{
    seam *t = sm_stream_get_data(s);
    assert_true(t->bytes + m->len <= sizeof t->got);
    memcpy(t->got + t->bytes, m->data, m->len);
    t->bytes += m->len;
    t->msgs++;
    /* Echoed by reference into the transport's buffer: the stream must
     * copy what it has not written before the buffer goes back. */
    SM_ASSERT_OK(sm_stream_send_frame(s, m));
}

static void
seam_open(seam *t, const sm_stream_opts *o)
{
    int sv[2];
    ts_pair(sv);
    t->l = ts_loop();
    SM_ASSERT_OK(sm_stream_new_take(&t->s, t->l, sv[0], o, t));
    ts_raw_start(t->l, &t->peer, sv[1], true);
}

static void
seam_close(seam *t)
{
    SM_ASSERT_OK(sm_stream_close(t->s));
    ts_raw_close(&t->peer);
    ts_loop_free(t->l);
}

/* Feed wire[0..len) through sm__rx_input in pieces cut at `cut`, each in
 * a fresh heap buffer that is freed right after the call (as a completion
 * backend returns its buffer to the kernel). */
static void
feed(seam *t, const uint8_t *wire, size_t len, size_t cut)
{
    size_t at = 0;
    while (at < len) {
        size_t n = SM__MIN(cut, len - at);
        uint8_t *p = malloc(n);
        assert_non_null(p);
        memcpy(p, wire + at, n);
        sm__rx rx;
        SM_ASSERT_OK(sm__rx_begin(t->s, &rx));
        sm__rx_input(t->s, &rx, p, n, true);
        assert_true(sm__rx_end(t->s, &rx));
        memset(p, 0xEE, n); /* anything still pointing here would echo this */
        free(p);
        at += n;
    }
}

static bool
peer_has(void *ctx)
{
    seam *t = ctx;
    return t->peer.len >= t->want || t->peer.eof || t->peer.err;
}

/* Payload bytes without a newline (for line framing), varying with i. */
static void
fill(uint8_t *p, unsigned i, size_t len)
{
    for (size_t k = 0; k < len; k++)
        p[k] = (uint8_t)('a' + (i * 7 + k) % 26);
}

static void
check_input_split(const sm_frame_spec *spec, const size_t *lens, int n)
{
    uint8_t *wire = malloc(1 << 20), *payload = malloc(1 << 19);
    assert_non_null(wire);
    assert_non_null(payload);
    size_t wlen = 0, plen = 0;
    for (int i = 0; i < n; i++) {
        fill(payload + plen, (unsigned)i, lens[i]);
        wlen += ts_frame(spec, payload + plen, lens[i], wire + wlen);
        plen += lens[i];
    }
    static const size_t cuts[] = {1, 2, 3, 5, 7, 64, 1000, 4096, 70000, 1 << 20};
    for (size_t c = 0; c < sizeof cuts / sizeof cuts[0]; c++) {
        seam *t = calloc(1, sizeof *t);
        assert_non_null(t);
        sm_stream_opts o = {.spec = spec, .on_message = collect_cb};
        seam_open(t, &o);
        t->want = wlen;
        feed(t, wire, wlen, cuts[c]);
        if (t->msgs != n || t->bytes != plen || memcmp(t->got, payload, plen) != 0)
            fail_msg("cut %zu: %d of %d messages, %zu of %zu bytes", cuts[c], t->msgs, n, t->bytes,
                     plen);
        /* Every echo arrives intact, though each piece's buffer was freed. */
        assert_true(ts_run_until(t->l, peer_has, t, 10000));
        assert_int_equal(t->peer.len, wlen);
        assert_memory_equal(t->peer.buf, wire, wlen);
        seam_close(t);
        free(t);
    }
    free(wire);
    free(payload);
}

static void
test_input_len32(void **state)
{
    (void)state;
    /* Small frames, an empty one, and one above the stream's "small
     * leftover" size, so an unfinished frame is kept in and delivered from
     * the stream's own block. */
    static const size_t lens[] = {10, 0, 300, 1, 40000, 7, 5000};
    check_input_split(&ts_len32, lens, 7);
}

static void
test_input_line(void **state)
{
    (void)state;
    sm_frame_spec line;
    SM_ASSERT_OK(sm_frame_spec_parse(&line, "line", NULL, 0));
    static const size_t lens[] = {3, 0, 100, 20000, 9};
    check_input_split(&line, lens, 5);
}

/* A buffer far bigger than max that continues an unfinished frame: only
 * the frame counts against max, not the buffer (3,000 frames of 200 B,
 * max 64 KiB, the first 3 bytes alone, the other 612 KB in one piece). */
static void
test_input_big_buffer_small_max(void **state)
{
    (void)state;
    sm_frame_spec spec;
    SM_ASSERT_OK(sm_frame_spec_parse(&spec, "len32be,max=64K", NULL, 0));
    enum { N = 3000, LEN = 200 };
    size_t wlen = 0;
    uint8_t *wire = malloc(N * (LEN + 4)), payload[LEN];
    assert_non_null(wire);
    for (int i = 0; i < N; i++) {
        fill(payload, (unsigned)i, LEN);
        wlen += ts_frame(&spec, payload, LEN, wire + wlen);
    }
    seam *t = calloc(1, sizeof *t);
    assert_non_null(t);
    sm_stream_opts o = {.spec = &spec, .on_message = collect_cb};
    seam_open(t, &o);
    t->want = wlen;
    feed(t, wire, 3, 3);
    feed(t, wire + 3, wlen - 3, wlen);
    assert_int_equal(t->msgs, N);
    assert_int_equal(t->bytes, (size_t)N * LEN);
    assert_true(ts_run_until(t->l, peer_has, t, 10000));
    assert_int_equal(t->peer.len, wlen);
    assert_memory_equal(t->peer.buf, wire, wlen);
    seam_close(t);
    free(t);
    free(wire);
}

struct big_send {
    int fd;
    const uint8_t *buf;
    size_t len;
};

static void *
big_send_main(void *arg)
{
    struct big_send *b = arg;
    sm_send_all(b->fd, b->buf, b->len, 20000, NULL);
    return NULL;
}

static bool
got_one(void *ctx)
{
    seam *t = ctx;
    return t->msgs > 0 || t->closed;
}

static void
note_close(sm_stream *s, int reason)
{
    seam *t = sm_stream_get_data(s);
    t->closed = true;
    t->reason = reason;
}

/* max= at its largest must not wrap the limit of an unfinished message's
 * block (a delimited message over 16 KiB, read through the socket). */
static void
test_max_near_2_64(void **state)
{
    (void)state;
    sm_frame_spec spec;
    SM_ASSERT_OK(sm_frame_spec_parse(&spec, "line,max=18446744073709551615", NULL, 0));
    size_t n = 600000;
    uint8_t *line = malloc(n + 1);
    assert_non_null(line);
    fill(line, 1, n);
    line[n] = '\n';
    seam *t = calloc(1, sizeof *t);
    assert_non_null(t);
    sm_stream_opts o = {.spec = &spec, .on_message = collect_cb, .on_close = note_close};
    seam_open(t, &o);
    sm_io_stop(&t->peer.io); /* the thread writes it; replies wait in its buffer */
    struct big_send b = {t->peer.io.fd, line, n + 1};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, big_send_main, &b), 0);
    assert_true(ts_run_until(t->l, got_one, t, 20000));
    if (t->msgs != 1) fail_msg("closed: %s", sm_strerror(t->reason));
    assert_int_equal(t->bytes, n);
    assert_memory_equal(t->got, line, n);
    assert_int_equal(pthread_join(th, NULL), 0);
    seam_close(t);
    free(t);
    free(line);
}

/* ---- the zero-copy fast path ends when the tail changes ----------------- */

static void
mixed_cb(sm_stream *s, const sm_frame_msg *m)
{
    seam *t = sm_stream_get_data(s);
    int k = t->msgs++;
    if (t->mode == 0) {
        SM_ASSERT_OK(sm_stream_send_frame(s, m));
        /* A copied message behind the reference: the next frame (right
         * behind this one in the read buffer) must not grow the copy. */
        SM_ASSERT_OK(sm_stream_send(s, "x", 1));
        return;
    }
    if (k > 0) return;
    /* The next frame of the batch, right behind this one, would take the
     * fast path; a shutdown or a close in between must end it. */
    SM_ASSERT_OK(sm_stream_send_frame(s, m));
    if (t->mode == 1)
        SM_ASSERT_OK(sm_stream_shutdown(s));
    else
        SM_ASSERT_OK(sm_stream_close(s));
    sm_frame_msg next = *m;
    next.frame = m->frame + m->frame_len;
    next.data = next.frame + 4;
    t->rc_after[0] = sm_stream_send_frame(s, &next);
}

static void
test_fast_path_ends_with_tail(void **state)
{
    (void)state;
    seam *t = calloc(1, sizeof *t);
    assert_non_null(t);
    sm_stream_opts o = {.spec = &ts_len32, .on_message = mixed_cb};
    seam_open(t, &o);
    uint8_t wire[64], want[128];
    size_t wl = 0, ww = 0;
    const char *p[] = {"alpha", "beta", "gamma"};
    for (int i = 0; i < 3; i++) {
        size_t n = ts_frame(&ts_len32, p[i], strlen(p[i]), wire + wl);
        memcpy(want + ww, wire + wl, n);
        ww += n;
        wl += n;
        ww += ts_frame(&ts_len32, "x", 1, want + ww);
    }
    ts_write(t->peer.io.fd, wire, wl); /* one write: adjacent in the read buffer */
    t->want = ww;
    assert_true(ts_run_until(t->l, peer_has, t, 10000));
    assert_int_equal(t->msgs, 3);
    assert_int_equal(t->peer.len, ww);
    assert_memory_equal(t->peer.buf, want, ww);
    seam_close(t);
    free(t);
}

/* After a shutdown or a close inside on_message, the next frame of the
 * batch is refused, not appended by the fast path. */
static void
test_fast_path_ends_with_state(void **state)
{
    (void)state;
    for (int mode = 1; mode <= 2; mode++) {
        seam *t = calloc(1, sizeof *t);
        assert_non_null(t);
        t->mode = mode;
        sm_stream_opts o = {.spec = &ts_len32, .on_message = mixed_cb};
        seam_open(t, &o);
        uint8_t wire[32];
        size_t n = ts_frame(&ts_len32, "one", 3, wire);
        n += ts_frame(&ts_len32, "two", 3, wire + n);
        ts_write(t->peer.io.fd, wire, n);
        t->want = SIZE_MAX; /* until EOF */
        assert_true(ts_run_until(t->l, peer_has, t, 10000));
        assert_true(t->peer.eof);
        SM_ASSERT_ERR(t->rc_after[0], mode == 1 ? -EPIPE : SM_ERR_CLOSED);
        /* "one" was sent (before the shutdown; a close drops it), "two" not. */
        assert_int_equal(t->peer.len, mode == 1 ? 7 : 0);
        if (mode == 1) assert_memory_equal(t->peer.buf, wire, 7);
        if (mode == 1) SM_ASSERT_OK(sm_stream_close(t->s));
        ts_raw_close(&t->peer);
        ts_loop_free(t->l);
        free(t);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_input_len32),
        cmocka_unit_test(test_input_line),
        cmocka_unit_test(test_input_big_buffer_small_max),
        cmocka_unit_test(test_max_near_2_64),
        cmocka_unit_test(test_fast_path_ends_with_tail),
        cmocka_unit_test(test_fast_path_ends_with_state),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
