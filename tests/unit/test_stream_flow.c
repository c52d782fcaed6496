/* stream module, part 2: backpressure (slow consumers, pausing and resuming
 * reading), read / write / idle timeouts and heartbeats. Runs once per
 * backend. Bounds on timing are generous: only "not before" and "not
 * absurdly late" are checked. */
#include "test_stream.h"
#include "transport.h" /* SM__TP_SOCK */

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/ioctl.h>

typedef struct flow {
    int msgs, closes, drains, dropped;
    int reason;
    int64_t closed_at;
    char detail[256];
    size_t max_queued;
    bool bad;
} flow;

static void
f_close(sm_stream *s, int reason)
{
    flow *f = sm_stream_get_data(s);
    f->closes++;
    f->reason = reason;
    f->closed_at = sm_loop_now(sm_stream_loop(s));
    snprintf(f->detail, sizeof f->detail, "%s", sm_stream_error_detail(s));
}

static void
f_count(sm_stream *s, const sm_frame_msg *m)
{
    flow *f = sm_stream_get_data(s);
    (void)m;
    f->msgs++;
}

static void
f_echo(sm_stream *s, const sm_frame_msg *m)
{
    flow *f = sm_stream_get_data(s);
    f->msgs++;
    if (sm_stream_send(s, m->data, m->len) < 0) f->bad = true;
    size_t q = sm_stream_queued(s);
    if (q > f->max_queued) f->max_queued = q;
}

static void
f_drain(sm_stream *s)
{
    flow *f = sm_stream_get_data(s);
    f->drains++;
}

static void
f_dropped(sm_stream *s, const sm_frame_msg *m)
{
    flow *f = sm_stream_get_data(s);
    (void)m;
    f->dropped++;
}

static bool
f_closed(void *ctx)
{
    return ((flow *)ctx)->closes > 0;
}

static sm_stream *
wrap(sm_loop *l, int fd, const sm_stream_opts *o, void *data)
{
    sm_stream *s = NULL;
    SM_ASSERT_OK(sm_stream_new_take(&s, l, fd, o, data));
    return s;
}

static void
small_buffers(int sv[2])
{
    int small = 4096;
    SM_ASSERT_OK(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small));
    SM_ASSERT_OK(setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof small));
}

/* Read everything the fd holds now (non-blocking) and count whole frames. */
static int
drain_count(int fd)
{
    size_t cap = 1 << 20, len = 0;
    uint8_t *buf = malloc(cap);
    for (;;) {
        if (len == cap) buf = realloc(buf, cap *= 2);
        ssize_t n = read(fd, buf + len, cap - len);
        if (n <= 0) break;
        len += (size_t)n;
    }
    int frames = ts_count_frames(&ts_len32, buf, len);
    free(buf);
    return frames;
}

/* ---- backpressure --------------------------------------------------------------- */

static void
test_slow_consumer(void **state)
{
    (void)state;
    static const sm_stream_opts o = {
        .spec = &ts_len32,
        .on_message = f_count,
        .on_close = f_close,
        .on_dropped = f_dropped,
        .high_water = 16 * 1024,
        .low_water = 4 * 1024,
        .max_queued = 64 * 1024,
    };
    sm_loop *l = ts_loop();
    int sv[2];
    ts_pair(sv);
    small_buffers(sv);
    flow f = {0};
    sm_stream *s = wrap(l, sv[0], &o, &f);
    /* A message that could never fit is refused; the stream stays. */
    static uint8_t huge[70 * 1024];
    SM_ASSERT_ERR(sm_stream_send(s, huge, sizeof huge), -EMSGSIZE);
    /* The peer never reads. We keep producing until the cap says stop. */
    uint8_t msg[1000];
    memset(msg, 'm', sizeof msg);
    int sent = 0, rc = 0;
    for (int i = 0; i < 10000; i++) {
        rc = sm_stream_send(s, msg, sizeof msg);
        if (rc < 0) break;
        sent++;
        assert_true(sm_stream_queued(s) <= o.max_queued);
        if (i % 8 == 0) SM_ASSERT_OK(sm_loop_run(l, SM_RUN_NOWAIT));
    }
    SM_ASSERT_ERR(rc, SM_ERR_SLOW_CONSUMER);
    SM_ASSERT_ERR(sm_stream_send(s, msg, sizeof msg), SM_ERR_CLOSED);
    assert_int_equal(f.closes, 0); /* reported later, not inside the send */
    assert_true(ts_run_until(l, f_closed, &f, 5000));
    SM_ASSERT_ERR(f.reason, SM_ERR_SLOW_CONSUMER);
    print_message("sent %d, detail: %s\n", sent, f.detail);
    assert_non_null(strstr(f.detail, "slow consumer"));
    /* Every accepted message either reached the peer whole or was reported. */
    int got = drain_count(sv[1]);
    assert_int_equal(got + f.dropped, sent);
    close(sv[1]);
    ts_loop_free(l);
}

/* Set a socket buffer size; root may go past rmem_max / wmem_max. */
static void
set_buf(int fd, int name, int force, int size)
{
    if (setsockopt(fd, SOL_SOCKET, force, &size, sizeof size) < 0)
        SM_ASSERT_OK(setsockopt(fd, SOL_SOCKET, name, &size, sizeof size));
}

/* A connected loopback TCP pair (sv[0] accepted, sv[1] dialed), both
 * non-blocking, every buffer of both directions set to `size` bytes (before
 * connecting, so that the window scales to it). */
static void
tcp_pair(int sv[2], int size)
{
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int cfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(lfd >= 0 && cfd >= 0);
    set_buf(lfd, SO_RCVBUF, SO_RCVBUFFORCE, size);
    set_buf(lfd, SO_SNDBUF, SO_SNDBUFFORCE, size);
    set_buf(cfd, SO_RCVBUF, SO_RCVBUFFORCE, size);
    set_buf(cfd, SO_SNDBUF, SO_SNDBUFFORCE, size);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    SM_ASSERT_OK(bind(lfd, (struct sockaddr *)&a, sizeof a));
    SM_ASSERT_OK(getsockname(lfd, (struct sockaddr *)&a, &alen));
    SM_ASSERT_OK(listen(lfd, 1));
    SM_ASSERT_OK(connect(cfd, (struct sockaddr *)&a, sizeof a));
    sv[0] = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    assert_true(sv[0] >= 0);
    close(lfd);
    SM_ASSERT_OK(fcntl(cfd, F_SETFL, O_NONBLOCK));
    sv[1] = cfd;
}

typedef struct pauser {
    sm_stream *s;
    int fd;
    uint8_t *out;
    size_t out_len, out_off;
    bool was_paused;
    size_t queued_when_paused;
} pauser;

/* An echo server's stream (its reads produce writes): SM_READ_BP_PAUSE. */
static void
check_pause_resume(int sv[2])
{
    static const sm_stream_opts o = {
        .spec = &ts_len32,
        .on_message = f_echo,
        .on_close = f_close,
        .on_drain = f_drain,
        .high_water = 32 * 1024,
        .low_water = 8 * 1024,
        .max_queued = 4 * 1024 * 1024,
        .read_backpressure = SM_READ_BP_PAUSE,
    };
    sm_loop *l = ts_loop();
    flow f = {0};
    sm_stream *s = wrap(l, sv[0], &o, &f);
    /* The peer writes 2000 requests but does not read the replies at first. */
    enum { N = 2000, LEN = 1000 };
    pauser p = {.s = s, .fd = sv[1]};
    p.out = malloc(N * (LEN + 4));
    for (unsigned i = 0; i < N; i++) {
        uint8_t m[LEN];
        ts_msg_fill(m, 4, i, LEN);
        p.out_len += ts_frame(&ts_len32, m, LEN, p.out + p.out_len);
    }
    int stuck = 0;
    int64_t end = sm_test_now_ms() + 10000;
    while (stuck < 20 && sm_test_now_ms() < end) {
        ssize_t k = write(sv[1], p.out + p.out_off, p.out_len - p.out_off);
        if (k > 0) {
            p.out_off += (size_t)k;
            stuck = 0;
        } else {
            stuck++;
        }
        SM_ASSERT_OK(sm_loop_run(l, SM_RUN_NOWAIT));
        if (s->flags & SM__S_PAUSED) {
            p.was_paused = true;
            p.queued_when_paused = sm_stream_queued(s);
        }
    }
    /* Our writes are stuck because the stream stopped reading: its queue is
     * not growing without bound. */
    assert_true(p.was_paused);
    assert_true(s->flags & SM__S_PAUSED);
    assert_false(sm_io_get_events(&s->io) & SM_READ);
    assert_true(p.out_off < p.out_len);
    print_message("paused with %zu queued (high %zu), %zu of %zu request bytes written\n",
                  sm_stream_queued(s), o.high_water, p.out_off, p.out_len);
    /* Paused above high_water; stays paused until at low_water or below. */
    assert_true(sm_stream_queued(s) > o.low_water);
    assert_true(f.max_queued < o.high_water + 256 * 1024);
    /* Now read the replies: the stream drains, resumes, and answers all. */
    ts_raw r;
    ts_raw_start(l, &r, sv[1], true);
    end = sm_test_now_ms() + 20000;
    while (r.len < p.out_len && sm_test_now_ms() < end) {
        if (p.out_off < p.out_len) {
            ssize_t k = write(sv[1], p.out + p.out_off, p.out_len - p.out_off);
            if (k > 0) p.out_off += (size_t)k;
        }
        ts_run_once(l, 100);
    }
    assert_int_equal(r.len, p.out_len);
    assert_memory_equal(r.buf, p.out, p.out_len);
    assert_int_equal(f.msgs, N);
    assert_true(f.drains >= 1);
    assert_false(s->flags & SM__S_PAUSED);
    assert_false(f.bad);
    sm_stream_close(s);
    ts_raw_close(&r);
    free(p.out);
    ts_loop_free(l);
}

static void
test_read_pause_resume(void **state)
{
    (void)state;
    int sv[2];
    ts_pair(sv);
    check_pause_resume(sv);
}

/* On TCP the stream's socket is edge-triggered: data that came while reading
 * was paused must still be read once it resumes. */
static void
test_read_pause_resume_tcp(void **state)
{
    (void)state;
    int sv[2];
    tcp_pair(sv, 16 * 1024);
    check_pause_resume(sv);
}

/* The default (SM_READ_BP_NONE): a stream above high_water keeps reading
 * (sends say 1, on_drain is owed, reading is not paused), and a peer that
 * keeps writing without reading our replies is closed at max_queued, which
 * the queue never exceeds. */
static void
test_no_read_pause_by_default(void **state)
{
    (void)state;
    static const sm_stream_opts o = {
        .spec = &ts_len32,
        .on_message = f_echo,
        .on_close = f_close,
        .on_drain = f_drain,
        .high_water = 16 * 1024,
        .max_queued = 256 * 1024,
    };
    sm_loop *l = ts_loop();
    int sv[2];
    tcp_pair(sv, 16 * 1024);
    flow f = {0};
    sm_stream *s = wrap(l, sv[0], &o, &f);
    /* 2 MB of requests, more than max_queued of replies; none is read. */
    enum { N = 2000, LEN = 1000 };
    size_t out_len = 0, out_off = 0;
    uint8_t *out = malloc(N * (LEN + 4));
    for (unsigned i = 0; i < N; i++) {
        uint8_t m[LEN];
        ts_msg_fill(m, 4, i, LEN);
        out_len += ts_frame(&ts_len32, m, LEN, out + out_len);
    }
    bool read_above = false;
    int64_t end = sm_test_now_ms() + 20000;
    while (f.closes == 0 && out_off < out_len && sm_test_now_ms() < end) {
        ssize_t k = write(sv[1], out + out_off, out_len - out_off);
        if (k > 0) out_off += (size_t)k;
        int before = f.msgs;
        ts_run_once(l, 10);
        if (f.closes) break;
        assert_false(s->flags & SM__S_PAUSED);
        /* Still reading (on a readiness transport: the socket watched). */
        assert_true(sm__stream_reading(s));
        if (s->tp == SM__TP_SOCK) assert_true(sm_io_get_events(&s->io) & SM_READ);
        /* Messages were read while the queue was above high_water. */
        if (before > 0 && (s->flags & SM__S_ABOVE) && f.msgs > before) read_above = true;
    }
    assert_true(ts_run_until(l, f_closed, &f, 5000));
    print_message("%d requests read, %zu of %zu bytes written, most queued %zu: %s\n", f.msgs,
                  out_off, out_len, f.max_queued, f.detail);
    SM_ASSERT_ERR(f.reason, SM_ERR_SLOW_CONSUMER);
    assert_true(read_above);
    assert_true(f.max_queued <= o.max_queued);
    close(sv[1]);
    free(out);
    ts_loop_free(l);
}

/* ---- stopping early on an edge-triggered socket ---------------------------------- */

static void
f_echo_frame(sm_stream *s, const sm_frame_msg *m)
{
    flow *f = sm_stream_get_data(s);
    f->msgs++;
    if (sm_stream_send_frame(s, m) < 0) f->bad = true;
}

/* Stream B's message makes it send stream A more than A's high water (A
 * is a server's stream, SM_READ_BP_PAUSE): A pauses reading inside B's
 * callback, so A's own readiness, reported in the same batch behind B's,
 * is dropped; A's queue is written and A resumes before the iteration
 * ends. An edge-triggered A must be re-armed then (its kernel interest
 * never changed), or its pending messages are never read. */
typedef struct cross {
    sm_stream *a;
    flow fa, fb;
} cross;

static void
cross_a(sm_stream *s, const sm_frame_msg *m)
{
    cross *c = sm_stream_get_data(s);
    (void)m;
    c->fa.msgs++;
}

static void
cross_b(sm_stream *s, const sm_frame_msg *m)
{
    cross *c = sm_stream_get_data(s);
    (void)m;
    static uint8_t big[4096];
    c->fb.msgs++;
    if (sm_stream_send(c->a, big, sizeof big) < 0) c->fb.bad = true;
    if (!(c->a->flags & SM__S_PAUSED)) c->fb.bad = true; /* the premise */
}

static void
test_resume_same_iteration_tcp(void **state)
{
    (void)state;
    static const sm_stream_opts oa = {.spec = &ts_len32,
                                      .on_message = cross_a,
                                      .high_water = 1024,
                                      .low_water = 256,
                                      .read_backpressure = SM_READ_BP_PAUSE};
    static const sm_stream_opts ob = {.spec = &ts_len32, .on_message = cross_b};
    sm_loop *l = ts_loop();
    int a[2], b[2];
    tcp_pair(a, 256 * 1024);
    tcp_pair(b, 256 * 1024);
    uint8_t fr[16];
    size_t n = ts_frame(&ts_len32, "x", 1, fr);
    assert_int_equal(write(b[1], fr, n), (ssize_t)n);
    for (int i = 0; i < 3; i++)
        assert_int_equal(write(a[1], fr, n), (ssize_t)n);
    assert_true(sm_test_wait_queued(a[0], (int)(3 * n), 5000) >= (int)(3 * n));
    assert_true(sm_test_wait_queued(b[0], (int)n, 5000) >= (int)n);
    /* B first: epoll reports ready sockets in the order they were added. */
    cross c = {0};
    sm_stream *sb = wrap(l, b[0], &ob, &c);
    c.a = wrap(l, a[0], &oa, &c);
    int64_t end = sm_test_now_ms() + 5000;
    while (c.fa.msgs < 3 && sm_test_now_ms() < end)
        ts_run_once(l, 50);
    assert_int_equal(c.fb.msgs, 1);
    assert_false(c.fb.bad);
    assert_int_equal(c.fa.msgs, 3);
    sm_stream_close(c.a);
    sm_stream_close(sb);
    close(a[1]);
    close(b[1]);
    ts_loop_free(l);
}

/* Write buf to sv[1] and wait (bounded) until sv[0]'s receive queue holds
 * all of it, so nothing is in flight when the test starts its loop. False
 * (said why) when the socket buffers cannot take it all at once. */
static bool
queue_at_receiver(int sv[2], const uint8_t *buf, size_t len)
{
    size_t off = 0;
    for (int i = 0; i < 1000 && off < len; i++) {
        ssize_t k = write(sv[1], buf + off, len - off);
        if (k <= 0) break;
        off += (size_t)k;
    }
    int queued = sm_test_wait_queued(sv[0], (int)len, 1000);
    if ((size_t)queued == len) return true;
    print_message("only %d of %zu bytes queued at once: skipped\n", queued, len);
    return false;
}

/* sm_stream_read_stop / read_start, over TCP (edge-triggered). */
typedef struct rs {
    int msgs, stop_at;
    sm_stream *s;
    sm_timer restart; /* 0 ms: read_start later in the same loop iteration */
    bool use_timer;
} rs;

static void
rs_restart(sm_timer *t)
{
    rs *r = t->data;
    SM_ASSERT_OK(sm_stream_read_start(r->s));
}

static void
rs_msg(sm_stream *s, const sm_frame_msg *m)
{
    rs *r = sm_stream_get_data(s);
    (void)m;
    if (++r->msgs != r->stop_at) return;
    SM_ASSERT_OK(sm_stream_read_stop(s));
    SM_ASSERT_OK(sm_stream_read_stop(s)); /* idempotent */
    if (r->use_timer) SM_ASSERT_OK(sm_timer_start(&r->restart, 0, 0));
}

static size_t
rs_frames(uint8_t *out, int n)
{
    size_t len = 0;
    for (int i = 0; i < n; i++)
        len += ts_frame(&ts_len32, "0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmn",
                        60, out + len);
    return len;
}

static void
test_read_stop_start(void **state)
{
    (void)state;
    static const sm_stream_opts o = {.spec = &ts_len32, .on_message = rs_msg, .on_close = f_close};
    sm_loop *l = ts_loop();
    int sv[2];
    tcp_pair(sv, 1 << 20);
    rs r = {.stop_at = 1};
    r.s = wrap(l, sv[0], &o, &r);
    uint8_t buf[10 * 64];
    size_t len = rs_frames(buf, 10);
    assert_int_equal(write(sv[1], buf, len), (ssize_t)len);
    int64_t end = sm_test_now_ms() + 5000;
    while (r.msgs < 1 && sm_test_now_ms() < end)
        ts_run_once(l, 50);
    /* The batch that was read is delivered whole; then nothing more. */
    int first = r.msgs;
    assert_true(first >= 1 && first <= 10);
    assert_false(sm_io_get_events(&r.s->io) & SM_READ);
    assert_int_equal(write(sv[1], buf, len), (ssize_t)len);
    for (int i = 0; i < 10; i++)
        ts_run_once(l, 10);
    assert_int_equal(r.msgs, first);
    int waiting = 0;
    SM_ASSERT_OK(ioctl(sv[0], FIONREAD, &waiting));
    assert_true(waiting > 0); /* in the kernel, not in our memory */
    SM_ASSERT_OK(sm_stream_read_start(r.s));
    while (r.msgs < 20 && sm_test_now_ms() < end)
        ts_run_once(l, 50);
    assert_int_equal(r.msgs, 20);
    sm_stream_close(r.s);
    SM_ASSERT_ERR(sm_stream_read_stop(r.s), SM_ERR_CLOSED);
    SM_ASSERT_ERR(sm_stream_read_start(r.s), SM_ERR_CLOSED);
    close(sv[1]);
    ts_loop_free(l);
}

/* Stopped in the middle of a full read and started again in the same loop
 * iteration (a 0 ms timer): no readiness will come for the bytes still
 * queued, so read_start must re-arm the socket itself. */
static void
test_read_restart_same_iteration(void **state)
{
    (void)state;
    enum { N = 20000 };
    static const sm_stream_opts o = {.spec = &ts_len32, .on_message = rs_msg, .on_close = f_close};
    sm_loop *l = ts_loop();
    int sv[2];
    tcp_pair(sv, 8 << 20);
    uint8_t *buf = malloc((size_t)N * 64);
    assert_non_null(buf);
    size_t len = rs_frames(buf, N);
    if (!queue_at_receiver(sv, buf, len)) {
        close(sv[0]);
        close(sv[1]);
        free(buf);
        ts_loop_free(l);
        skip();
    }
    rs r = {.stop_at = 1, .use_timer = true};
    sm_timer_init(l, &r.restart, rs_restart);
    r.restart.data = &r;
    r.s = wrap(l, sv[0], &o, &r);
    int64_t end = sm_test_now_ms() + 10000;
    while (r.msgs < N && sm_test_now_ms() < end)
        ts_run_once(l, 100);
    assert_int_equal(r.msgs, N);
    sm_stream_close(r.s);
    close(sv[1]);
    free(buf);
    ts_loop_free(l);
}

/* All the input is queued at the receiver before the loop runs and no more
 * comes, so an edge-triggered socket signals readiness once. A stream that
 * stops before reading it all (a tiny read budget; echoes queued by
 * reference, which end a batch) must still get every message: it re-arms
 * the readiness (epoll is edge-triggered for TCP streams). */
static void
check_early_stop(sm_stream_message_cb cb, size_t budget)
{
    enum { N = 20000, LEN = 60 };
    sm_stream_opts o = {
        .spec = &ts_len32, .on_message = cb, .on_close = f_close, .read_budget = budget};
    sm_loop *l = ts_loop();
    int sv[2];
    tcp_pair(sv, 8 << 20);
    size_t len = 0;
    uint8_t *out = malloc((size_t)N * (LEN + 4));
    assert_non_null(out);
    for (unsigned i = 0; i < N; i++) {
        uint8_t m[LEN];
        ts_msg_fill(m, 7, i, LEN);
        len += ts_frame(&ts_len32, m, LEN, out + len);
    }
    if (!queue_at_receiver(sv, out, len)) {
        close(sv[0]);
        close(sv[1]);
        free(out);
        ts_loop_free(l);
        skip();
    }
    flow f = {0};
    sm_stream *s = wrap(l, sv[0], &o, &f);
    int64_t end = sm_test_now_ms() + 10000;
    while (f.msgs < N && !f.closes && sm_test_now_ms() < end)
        ts_run_once(l, 100);
    assert_int_equal(f.msgs, N);
    assert_int_equal(f.closes, 0);
    assert_false(f.bad);
    if (cb == f_echo_frame) {
        /* The echoes are all there, in order. */
        uint8_t *back = malloc(len + 1);
        size_t got = 0;
        while (got < len && sm_test_now_ms() < end) {
            ts_run_once(l, 10);
            ssize_t k = read(sv[1], back + got, len + 1 - got);
            if (k > 0) got += (size_t)k;
        }
        assert_int_equal(got, len);
        assert_memory_equal(back, out, len);
        free(back);
    }
    sm_stream_close(s);
    close(sv[1]);
    free(out);
    ts_loop_free(l);
}

static void
test_early_stop_budget(void **state)
{
    (void)state;
    check_early_stop(f_count, 1);
}

static void
test_early_stop_zero_copy(void **state)
{
    (void)state;
    /* A budget that never runs out: only the zero-copy replies end batches. */
    check_early_stop(f_echo_frame, (size_t)1 << 40);
}

/* ---- reading the rest of a big frame and what follows it ----------------------- */

enum { NBLK = 8 };
static const size_t blk_len[NBLK] = {100000, 10, 20, 70000, 5, 300000, 7, 40000};

typedef struct blk {
    flow f;
    unsigned seq;
} blk;

static void
blk_echo(sm_stream *s, const sm_frame_msg *m)
{
    blk *b = sm_stream_get_data(s);
    if (b->seq >= NBLK || !ts_msg_ok(m->data, m->len, 9, b->seq, blk_len[b->seq])) b->f.bad = true;
    b->seq++;
    b->f.msgs++;
    if (sm_stream_send_frame(s, m) < 0) b->f.bad = true;
}

/* A big frame's rest is read into its own block together with the frames
 * behind it (readv into the block and the shared buffer). The input arrives
 * in pieces that end inside big frames; every message must come out whole,
 * in order, and be echoed byte for byte (by reference). */
static void
test_frame_block_then_more(void **state)
{
    (void)state;
    static const sm_stream_opts o = {
        .spec = &ts_len32, .on_message = blk_echo, .on_close = f_close};
    sm_loop *l = ts_loop();
    int sv[2];
    ts_pair(sv);
    size_t total = 0;
    for (int i = 0; i < NBLK; i++)
        total += 4 + blk_len[i];
    uint8_t *out = malloc(total);
    assert_non_null(out);
    size_t len = 0, starts[NBLK];
    for (unsigned i = 0; i < NBLK; i++) {
        uint8_t *m = malloc(blk_len[i]);
        ts_msg_fill(m, 9, i, blk_len[i]);
        starts[i] = len;
        len += ts_frame(&ts_len32, m, blk_len[i], out + len);
        free(m);
    }
    /* Cut inside frame 0 (a 50,000-byte leftover: its own block), inside
     * frame 3, inside frame 5 (bigger than the shared buffer), then the end. */
    const size_t cuts[] = {starts[0] + 50000, starts[3] + 30000, starts[5] + 200000, len};
    blk b = {0};
    sm_stream *s = wrap(l, sv[0], &o, &b);
    ts_raw r;
    ts_raw_start(l, &r, sv[1], true);
    size_t off = 0;
    int64_t end = sm_test_now_ms() + 10000;
    for (size_t c = 0; c < sizeof cuts / sizeof cuts[0]; c++) {
        while (off < cuts[c] && sm_test_now_ms() < end) {
            ssize_t k = write(sv[1], out + off, cuts[c] - off);
            if (k > 0) off += (size_t)k;
            ts_run_once(l, 10);
        }
        /* Let the stream take all of this piece before the next one comes. */
        for (int i = 0; i < 20; i++)
            ts_run_once(l, 5);
    }
    while (r.len < len && sm_test_now_ms() < end)
        ts_run_once(l, 10);
    assert_int_equal(off, len);
    assert_false(b.f.bad);
    assert_int_equal(b.f.msgs, NBLK);
    assert_int_equal(b.f.closes, 0);
    assert_int_equal(r.len, len);
    assert_memory_equal(r.buf, out, len);
    sm_stream_close(s);
    ts_raw_close(&r);
    free(out);
    ts_loop_free(l);
}

/* ---- timeouts ------------------------------------------------------------------------ */

/* The stream closed with `want` (its detail says `detail`), and not early:
 * by the loop's own clock (the one its deadlines are computed on) at least
 * at_least ms after t0, a reading of that clock taken before whatever starts
 * the timeout. Load can only make it later, so this is exact; how much later
 * is not asserted (the caller's bounded wait is the only upper limit). */
static void
check_closed_after(flow *f, int64_t t0, int at_least, int want, const char *detail)
{
    int64_t ms = f->closed_at - t0;
    print_message("closed after %lld ms: %s\n", (long long)ms, f->detail);
    SM_ASSERT_ERR(f->reason, want);
    assert_non_null(strstr(f->detail, detail));
    assert_true(ms >= at_least);
}

static void
test_idle_timeout(void **state)
{
    (void)state;
    enum { IDLE_MS = 300 };
    static const sm_stream_opts o = {
        .spec = &ts_len32, .on_message = f_count, .on_close = f_close, .idle_timeout_ms = IDLE_MS};
    sm_loop *l = ts_loop();
    int sv[2];
    ts_pair(sv);
    flow f = {0};
    int64_t t0 = sm_loop_now(l); /* the clock of the stream's deadlines */
    wrap(l, sv[0], &o, &f);
    /* Traffic keeps it open past two timeouts: a message every 15 ms, 20
     * times a timeout (only a stall of most of a timeout could matter). */
    uint8_t wire[16];
    size_t n = ts_frame(&ts_len32, "hi", 2, wire);
    int64_t until = sm_test_now_ms() + 2 * IDLE_MS, last = t0;
    while (sm_test_now_ms() < until) {
        last = sm_loop_now(l); /* the stream reads it after this */
        ts_write(sv[1], wire, n);
        bool never = false;
        ts_run_until(l, ts_flag, &never, 15);
        assert_int_equal(f.closes, 0);
    }
    assert_true(ts_run_until(l, f_closed, &f, 5000));
    check_closed_after(&f, last, IDLE_MS, -ETIMEDOUT, "idle timeout");
    close(sv[1]);
    ts_loop_free(l);
}

typedef struct ticker {
    sm_timer t;
    sm_stream *s;
} ticker;

static void
tick_send(sm_timer *t)
{
    ticker *k = (ticker *)t;
    sm_stream_send(k->s, "tick", 4);
}

static void
test_read_timeout(void **state)
{
    (void)state;
    static const sm_stream_opts o = {
        .spec = &ts_len32, .on_message = f_count, .on_close = f_close, .read_timeout_ms = 150};
    sm_loop *l = ts_loop();
    int sv[2];
    ts_pair(sv);
    flow f = {0};
    int64_t t0 = sm_loop_now(l);
    sm_stream *s = wrap(l, sv[0], &o, &f);
    /* We keep sending; the peer reads but says nothing: sending does not
     * count against a read timeout. */
    ts_raw r;
    ts_raw_start(l, &r, sv[1], true);
    ticker k = {.s = s};
    sm_timer_init(l, &k.t, tick_send);
    SM_ASSERT_OK(sm_timer_start(&k.t, 20, 20));
    assert_true(ts_run_until(l, f_closed, &f, 5000));
    sm_timer_stop(&k.t);
    check_closed_after(&f, t0, 150, -ETIMEDOUT, "read timeout");
    assert_true(r.len > 0);
    ts_raw_close(&r);
    ts_loop_free(l);
}

static void
test_write_timeout(void **state)
{
    (void)state;
    static const sm_stream_opts o = {
        .spec = &ts_len32, .on_message = f_count, .on_close = f_close, .write_timeout_ms = 150};
    sm_loop *l = ts_loop();
    int sv[2];
    ts_pair(sv);
    small_buffers(sv);
    flow f = {0};
    int64_t t0 = sm_loop_now(l); /* before any write progress */
    sm_stream *s = wrap(l, sv[0], &o, &f);
    /* The peer never reads: the queue is stuck. */
    uint8_t msg[4096] = {0};
    for (int i = 0; i < 64; i++)
        assert_true(sm_stream_send(s, msg, sizeof msg) >= 0);
    for (int i = 0; i < 3; i++)
        SM_ASSERT_OK(sm_loop_run(l, SM_RUN_NOWAIT));
    assert_true(s->flags & SM__S_BLOCKED);
    assert_true(ts_run_until(l, f_closed, &f, 5000));
    check_closed_after(&f, t0, 150, -ETIMEDOUT, "write timeout");
    close(sv[1]);
    ts_loop_free(l);
}

/* ---- heartbeats ------------------------------------------------------------------------- */

static void
test_heartbeat_lost(void **state)
{
    (void)state;
    static const sm_stream_opts o = {
        .spec = &ts_len32,
        .on_message = f_count,
        .on_close = f_close,
        .heartbeat_ms = 20,
        .heartbeat_timeout_ms = 400,
        .ping = "PING",
        .ping_len = 4,
    };
    sm_loop *l = ts_loop();
    int sv[2];
    ts_pair(sv);
    flow f = {0};
    int64_t t0 = sm_loop_now(l);
    wrap(l, sv[0], &o, &f);
    ts_raw r; /* reads the pings, never answers */
    ts_raw_start(l, &r, sv[1], true);
    assert_true(ts_run_until(l, f_closed, &f, 5000));
    check_closed_after(&f, t0, 400, SM_ERR_HEARTBEAT, "heartbeat lost");
    /* Pings went out meanwhile, framed like any message. How many depends on
     * how often a loaded machine (TSan, parallel tests) let the loop run: at
     * least one, every 20 ms in a 400 ms wait. */
    int pings = ts_count_frames(&ts_len32, r.buf, r.len);
    print_message("%d pings sent\n", pings);
    assert_true(pings >= 1);
    assert_int_equal(r.len, (size_t)pings * 8);
    assert_memory_equal(r.buf, "\0\0\0\4PING", 8);
    ts_raw_close(&r);
    ts_loop_free(l);
}

enum { HB_TIMEOUT_MS = 500 };

typedef struct keepalive {
    flow *fa, *fb;
    int64_t until;
} keepalive;

static bool
keepalive_done(void *ctx)
{
    keepalive *k = ctx;
    if (k->fa->closes || k->fb->closes) return true;
    return k->fb->msgs >= 10 && sm_test_now_ms() >= k->until;
}

static void
test_heartbeat_keeps_alive(void **state)
{
    (void)state;
    /* Both ends ping; one swallows the other's pings, one sees them. */
    static const sm_stream_opts quiet = {
        .spec = &ts_len32,
        .on_message = f_count,
        .on_close = f_close,
        .heartbeat_ms = 25,
        .heartbeat_timeout_ms = HB_TIMEOUT_MS, /* 20 pings: only a long stall trips it */
        .ping = "hb",
        .ping_len = 2,
        .swallow_pings = true,
    };
    static const sm_stream_opts loud = {
        .spec = &ts_len32,
        .on_message = f_count,
        .on_close = f_close,
        .heartbeat_ms = 25,
        .heartbeat_timeout_ms = HB_TIMEOUT_MS, /* 20 pings: only a long stall trips it */
        .ping = "hb",
        .ping_len = 2,
    };
    sm_loop *l = ts_loop();
    int sv[2];
    ts_pair(sv);
    flow fa = {0}, fb = {0};
    sm_stream *a = wrap(l, sv[0], &quiet, &fa);
    sm_stream *b = wrap(l, sv[1], &loud, &fb);
    /* Until both lived through two and a half heartbeat timeouts and b has
     * seen 10 pings (or one of them closed); the bound only ends a failing
     * run. */
    keepalive k = {.fa = &fa, .fb = &fb, .until = sm_test_now_ms() + 5 * HB_TIMEOUT_MS / 2};
    assert_true(ts_run_until(l, keepalive_done, &k, 20000));
    assert_int_equal(fa.closes, 0);
    assert_int_equal(fb.closes, 0);
    assert_int_equal(fa.msgs, 0); /* swallowed */
    assert_true(fb.msgs >= 10);   /* delivered like any message */
    /* Application messages still get through a swallowing end. */
    SM_ASSERT_OK(sm_stream_send(b, "data", 4));
    int want = 1;
    int64_t end = sm_test_now_ms() + 2000;
    while (fa.msgs < want && sm_test_now_ms() < end)
        ts_run_once(l, 100);
    assert_int_equal(fa.msgs, 1);
    sm_stream_close(a);
    sm_stream_close(b);
    ts_loop_free(l);
}

static void
test_bad_timeouts(void **state)
{
    (void)state;
    sm_loop *l = ts_loop();
    int sv[2];
    ts_pair(sv);
    sm_stream *s = NULL;
    sm_stream_opts o = {.spec = &ts_len32, .on_message = f_count, .idle_timeout_ms = -5};
    SM_ASSERT_ERR(sm_stream_new_take(&s, l, sv[0], &o, NULL), -EINVAL);
    o = (sm_stream_opts){
        .spec = &ts_len32, .on_message = f_count, .heartbeat_ms = SM_STREAM_TIMEOUT_MAX_MS + 1};
    SM_ASSERT_ERR(sm_stream_new_take(&s, l, sv[1], &o, NULL), -EINVAL);
    ts_pair(sv);
    o = (sm_stream_opts){
        .spec = &ts_len32, .on_message = f_count, .read_backpressure = (sm_stream_read_bp)2};
    SM_ASSERT_ERR(sm_stream_new_take(&s, l, sv[0], &o, NULL), -EINVAL);
    close(sv[1]);
    /* eof framing cannot carry pings. */
    static const sm_frame_spec eof = {.kind = SM_FRAME_EOF};
    ts_pair(sv);
    o = (sm_stream_opts){.spec = &eof, .on_message = f_count, .heartbeat_ms = 100};
    SM_ASSERT_ERR(sm_stream_new_take(&s, l, sv[0], &o, NULL), SM_ERR_SPEC);
    close(sv[1]);
    ts_loop_free(l);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slow_consumer),
        cmocka_unit_test(test_read_pause_resume),
        cmocka_unit_test(test_read_pause_resume_tcp),
        cmocka_unit_test(test_no_read_pause_by_default),
        cmocka_unit_test(test_resume_same_iteration_tcp),
        cmocka_unit_test(test_read_stop_start),
        cmocka_unit_test(test_read_restart_same_iteration),
        cmocka_unit_test(test_early_stop_budget),
        cmocka_unit_test(test_early_stop_zero_copy),
        cmocka_unit_test(test_frame_block_then_more),
        cmocka_unit_test(test_idle_timeout),
        cmocka_unit_test(test_read_timeout),
        cmocka_unit_test(test_write_timeout),
        cmocka_unit_test(test_heartbeat_lost),
        cmocka_unit_test(test_heartbeat_keeps_alive),
        cmocka_unit_test(test_bad_timeouts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
