/* stream module, part 1: sizes and idle cost, echo at scale (1,000 streams
 * x 100 pipelined messages), reassembly, closing from callbacks, stopping
 * from another thread, sendv_take ownership, framing errors, eof framing,
 * half-close, argument errors. Runs once per backend. Flow control and
 * timeouts are in test_stream_flow.c, dialing in test_stream_dial.c. */
#include "test_stream.h"

#include <pthread.h>
#include <stdatomic.h>

/* What the callbacks saw, per stream or per group (the stream's data). */
typedef struct tally {
    int msgs, closes, eofs, drains, dropped;
    int reason;
    int bad;
    size_t bytes;
    char detail[256];
    sm_stream *close_on_msg;   /* a stream to close from on_message */
    sm_stream *close_on_close; /* a stream to close from on_close */
    bool close_in_msg, close_in_eof, close_in_drain;
    bool eof_before_msg;
} tally;

static void
t_close(sm_stream *s, int reason)
{
    tally *t = sm_stream_get_data(s);
    t->closes++;
    t->reason = reason;
    snprintf(t->detail, sizeof t->detail, "%s", sm_stream_error_detail(s));
    if (t->close_on_close) sm_stream_close(t->close_on_close);
}

static void
t_eof(sm_stream *s)
{
    tally *t = sm_stream_get_data(s);
    t->eofs++;
    if (t->close_in_eof) SM_ASSERT_OK(sm_stream_close(s));
}

static void
t_drain(sm_stream *s)
{
    tally *t = sm_stream_get_data(s);
    t->drains++;
    if (t->close_in_drain) SM_ASSERT_OK(sm_stream_close(s));
}

static void
t_dropped(sm_stream *s, const sm_frame_msg *m)
{
    tally *t = sm_stream_get_data(s);
    (void)m;
    t->dropped++;
}

static void
echo_msg(sm_stream *s, const sm_frame_msg *m)
{
    tally *t = sm_stream_get_data(s);
    t->msgs++;
    t->bytes += m->len;
    int rc = sm_stream_send(s, m->data, m->len);
    if (rc < 0) t->bad++;
}

static void
count_msg(sm_stream *s, const sm_frame_msg *m)
{
    tally *t = sm_stream_get_data(s);
    t->msgs++;
    t->bytes += m->len;
    if (t->close_in_msg) sm_stream_close(s);
    if (t->close_on_msg) {
        sm_stream_close(t->close_on_msg);
        t->close_on_msg = NULL;
    }
}

static const sm_stream_opts echo_opts = {
    .spec = &ts_len32,
    .on_message = echo_msg,
    .on_close = t_close,
    .on_eof = t_eof,
    /* Never fire here, but put every server stream in the timing wheel. */
    .idle_timeout_ms = 60000,
    .heartbeat_ms = 30000,
    .write_timeout_ms = 20000,
};

static const sm_stream_opts count_opts = {
    .spec = &ts_len32,
    .on_message = count_msg,
    .on_close = t_close,
    .on_eof = t_eof,
    .on_drain = t_drain,
    .on_dropped = t_dropped,
};

static bool
closed1(void *ctx)
{
    return ((tally *)ctx)->closes >= 1;
}

static sm_stream *
wrap(sm_loop *l, int fd, const sm_stream_opts *o, void *data)
{
    sm_stream *s = NULL;
    SM_ASSERT_OK(sm_stream_new_take(&s, l, fd, o, data));
    assert_non_null(s);
    return s;
}

/* ---- sizes and the idle cost ------------------------------------------------ */

static void
test_sizes(void **state)
{
    (void)state;
    print_message("sizeof(struct sm_stream) = %zu (queue %zu, leftover %zu, loop state %zu)\n",
                  sizeof(struct sm_stream), sizeof(sm__wq), sizeof(sm__rd),
                  sizeof(sm__stream_loop));
    /* With an owner's 8 bytes behind it (a server's peer), 120 bytes + 8 of
     * malloc header: one 128-byte chunk per idle connection. */
    assert_int_equal(sizeof(struct sm_stream), SM__STREAM_SIZE);
    assert_true(sizeof(struct sm_stream) + sizeof(uint64_t) <= 120);
    assert_true(offsetof(struct sm_stream, io) == 0);
}

static void
keep_first(ts_acceptor *a, sm_stream *s)
{
    if (!a->ctx) a->ctx = s;
}

static bool
got1(void *ctx)
{
    return ((tally *)ctx)->msgs >= 1;
}

static void
test_idle_holds_nothing(void **state)
{
    (void)state;
    sm_loop *l = ts_loop();
    tally st = {0}, ct = {0};
    ts_acceptor a = {.data = &st, .on_stream = keep_first};
    ts_acceptor_start(l, &a, "tcp://127.0.0.1:0", &echo_opts);
    char ep[64];
    snprintf(ep, sizeof ep, "tcp://127.0.0.1:%u", a.port);
    sm_stream *c = NULL;
    SM_ASSERT_OK(sm_stream_dial(&c, l, ep, &count_opts, &ct, NULL, 0));
    SM_ASSERT_ERR(sm_stream_send(c, "hello", 5), 0); /* queued until connected */
    assert_true(ts_run_until(l, got1, &ct, 5000));
    sm_stream *srv = a.ctx;
    assert_non_null(srv);
    assert_int_equal(st.msgs, 1);
    /* After one exchange, both ends hold no read buffer and no queue. */
    assert_null(srv->rd);
    assert_null(srv->wq);
    assert_non_null(srv->t_pprev); /* its timeouts: a slot in the loop's wheel, no timer */
    assert_null(c->rd);
    assert_null(c->wq);
    assert_int_equal(sm_stream_queued(srv), 0);
    assert_true(sm_stream_is_connected(srv));
    assert_true(sm_stream_fd(c) >= 0);
    SM_ASSERT_OK(sm_stream_close(c));
    SM_ASSERT_OK(sm_stream_close(srv));
    SM_ASSERT_ERR(sm_stream_close(srv), SM_ERR_CLOSED);
    ts_acceptor_stop(&a);
    ts_loop_free(l);
    assert_int_equal(st.closes, 1);
    assert_int_equal(ct.closes, 1);
    assert_int_equal(ct.reason, SM_ERR_CLOSED);
}

/* ---- 1,000 streams, 100 pipelined messages each ------------------------------ */

#define MANY 1000
#define PIPE 100

typedef struct mclient {
    struct many *m;
    unsigned id, next;
    int reason, closes;
} mclient;

typedef struct many {
    mclient c[MANY];
    int n;
    int closed, verified, bad;
    tally srv;
} many;

static void
many_connect(sm_stream *s)
{
    mclient *c = sm_stream_get_data(s);
    uint8_t buf[512];
    for (unsigned seq = 0; seq < PIPE; seq++) {
        size_t len = ts_msg_len(c->id, seq);
        ts_msg_fill(buf, c->id, seq, len);
        if (sm_stream_send(s, buf, len) < 0) c->m->bad++;
    }
}

static void
many_msg(sm_stream *s, const sm_frame_msg *msg)
{
    mclient *c = sm_stream_get_data(s);
    if (c->next >= PIPE ||
        !ts_msg_ok(msg->data, msg->len, c->id, c->next, ts_msg_len(c->id, c->next)))
        c->m->bad++;
    if (++c->next == PIPE) {
        c->m->verified++;
        SM_ASSERT_OK(sm_stream_shutdown(s)); /* the server then closes cleanly too */
    }
}

static void
many_close(sm_stream *s, int reason)
{
    mclient *c = sm_stream_get_data(s);
    c->reason = reason;
    c->closes++;
    c->m->closed++;
}

static const sm_stream_opts many_opts = {
    .spec = &ts_len32,
    .on_message = many_msg,
    .on_close = many_close,
    .on_connect = many_connect,
};

static bool
many_done(void *ctx)
{
    many *m = ctx;
    return m->closed == m->n && m->srv.closes == m->n;
}

static void
test_many_streams(void **state)
{
    (void)state;
    many *m = calloc(1, sizeof *m);
    assert_non_null(m);
    m->n = MANY;
    rlim_t lim = ts_raise_nofile();
    if (lim < 2 * MANY + 64) {
        m->n = (int)(lim - 64) / 2;
        print_message("RLIMIT_NOFILE %llu: %d streams instead of %d\n", (unsigned long long)lim,
                      m->n, MANY);
    }
    sm_loop *l = ts_loop();
    ts_acceptor a = {.data = &m->srv};
    ts_acceptor_start(l, &a, "tcp://127.0.0.1:0", &echo_opts);
    char ep[64];
    snprintf(ep, sizeof ep, "tcp://127.0.0.1:%u", a.port);
    int64_t t0 = sm_test_now_ms();
    for (int i = 0; i < m->n; i++) {
        m->c[i] = (mclient){.m = m, .id = (unsigned)i};
        sm_stream *s = NULL;
        SM_ASSERT_OK(sm_stream_dial(&s, l, ep, &many_opts, &m->c[i], NULL, 0));
    }
    assert_true(ts_run_until(l, many_done, m, 60000));
    print_message("%d streams x %d messages: %lld ms (%s)\n", m->n, PIPE,
                  (long long)(sm_test_now_ms() - t0), sm_loop_backend_name(l));
    assert_int_equal(m->bad, 0);
    assert_int_equal(m->verified, m->n);
    assert_int_equal(m->srv.msgs, m->n * PIPE);
    assert_int_equal(m->srv.bad, 0);
    for (int i = 0; i < m->n; i++) {
        assert_int_equal(m->c[i].closes, 1);
        SM_ASSERT_ERR(m->c[i].reason, 0); /* clean EOF both ways */
    }
    SM_ASSERT_ERR(m->srv.reason, 0);
    ts_acceptor_stop(&a);
    ts_loop_free(l);
    free(m);
}

/* ---- reassembly: split frames, big frames, delimiters ------------------------ */

typedef struct collect {
    uint8_t *buf;
    size_t len;
    int msgs;
    int closes, reason;
    int bad;
    unsigned next;
} collect;

static void
collect_msg(sm_stream *s, const sm_frame_msg *m)
{
    collect *c = sm_stream_get_data(s);
    if (!ts_msg_ok(m->data, m->len, 9, c->next, ts_msg_len(9, c->next))) c->bad++;
    c->next++;
    c->msgs++;
}

static void
collect_close(sm_stream *s, int reason)
{
    collect *c = sm_stream_get_data(s);
    c->closes++;
    c->reason = reason;
}

static void
test_split_frames(void **state)
{
    (void)state;
    static const sm_stream_opts o = {
        .spec = &ts_len32, .on_message = collect_msg, .on_close = collect_close};
    sm_loop *l = ts_loop();
    int sv[2];
    ts_pair(sv);
    collect c = {0};
    sm_stream *s = wrap(l, sv[0], &o, &c);
    /* 60 frames, written in pieces of 1 to 7 bytes with an iteration between
     * each: every frame boundary and split point goes through the leftover. */
    uint8_t *wire = malloc(60 * 400);
    size_t n = 0;
    for (unsigned seq = 0; seq < 60; seq++) {
        uint8_t p[400];
        size_t len = ts_msg_len(9, seq);
        ts_msg_fill(p, 9, seq, len);
        n += ts_frame(&ts_len32, p, len, wire + n);
    }
    uint64_t rnd = 42;
    for (size_t off = 0; off < n;) {
        size_t k = 1 + sm_test_rand(&rnd) % 7;
        if (k > n - off) k = n - off;
        ts_write(sv[1], wire + off, k);
        off += k;
        SM_ASSERT_OK(sm_loop_run(l, SM_RUN_NOWAIT));
        SM_ASSERT_OK(sm_loop_run(l, SM_RUN_NOWAIT));
    }
    int64_t end = sm_test_now_ms() + 5000;
    while (c.msgs < 60 && sm_test_now_ms() < end)
        SM_ASSERT_OK(sm_loop_run(l, SM_RUN_NOWAIT));
    assert_int_equal(c.msgs, 60);
    assert_int_equal(c.bad, 0);
    assert_null(s->rd); /* at a boundary again: the leftover is gone */
    free(wire);
    sm_stream_close(s);
    close(sv[1]);
    ts_loop_free(l);
    assert_int_equal(c.closes, 1);
}

typedef struct bigctx {
    size_t want;
    int msgs, bad, closes, reason;
} bigctx;

static void
big_msg(sm_stream *s, const sm_frame_msg *m)
{
    bigctx *b = sm_stream_get_data(s);
    b->msgs++;
    if (!ts_msg_ok(m->data, m->len, 3, (unsigned)b->msgs, b->want)) b->bad++;
    /* Send it back: a big frame takes a node of its own in the queue. */
    if (sm_stream_send(s, m->data, m->len) < 0) b->bad++;
}

static void
big_close(sm_stream *s, int reason)
{
    bigctx *b = sm_stream_get_data(s);
    b->closes++;
    b->reason = reason;
}

typedef struct bigwait {
    ts_raw *r;
    size_t want;
} bigwait;

static bool
raw_has(void *ctx)
{
    bigwait *w = ctx;
    return w->r->len >= w->want;
}

static bool
leftover5(void *ctx)
{
    sm_stream *s = ctx;
    return s->rd && s->rd->len == 5;
}

static void
test_big_frames(void **state)
{
    (void)state;
    static const sm_stream_opts o = {
        .spec = &ts_len32, .on_message = big_msg, .on_close = big_close};
    sm_loop *l = ts_loop();
    int sv[2];
    ts_pair(sv);
    bigctx b = {.want = 3 * 1024 * 1024 + 17};
    sm_stream *s = wrap(l, sv[0], &o, &b);
    ts_raw r;
    ts_raw_start(l, &r, sv[1], true);
    /* Two 3 MiB messages, written as the socket takes them. */
    size_t fl = 4 + b.want;
    uint8_t *wire = malloc(2 * fl);
    for (unsigned seq = 1; seq <= 2; seq++) {
        uint8_t *p = malloc(b.want);
        ts_msg_fill(p, 3, seq, b.want);
        ts_frame(&ts_len32, p, b.want, wire + (seq - 1) * fl);
        free(p);
    }
    size_t off = 0;
    int64_t end = sm_test_now_ms() + 20000;
    while ((off < 2 * fl || r.len < 2 * fl) && sm_test_now_ms() < end) {
        if (off < 2 * fl) {
            ssize_t k = write(sv[1], wire + off, 2 * fl - off);
            if (k > 0) off += (size_t)k;
        }
        SM_ASSERT_OK(sm_loop_run(l, SM_RUN_NOWAIT));
    }
    bigwait w = {&r, 2 * fl};
    assert_true(ts_run_until(l, raw_has, &w, 5000));
    assert_int_equal(b.msgs, 2);
    assert_int_equal(b.bad, 0);
    assert_true(r.len == 2 * fl && memcmp(r.buf, wire, 2 * fl) == 0);
    assert_null(s->rd); /* released once the big message was consumed */
    /* Grow the leftover block with most of a big message, finish it, and
     * leave a small unfinished one behind: the block shrinks to fit. */
    uint8_t *p3 = malloc(b.want);
    ts_msg_fill(p3, 3, 3, b.want);
    ts_frame(&ts_len32, p3, b.want, wire); /* message 3 */
    free(p3);
    ts_write(sv[1], wire, 200000);
    for (int i = 0; i < 10; i++)
        SM_ASSERT_OK(sm_loop_run(l, SM_RUN_NOWAIT));
    assert_non_null(s->rd);
    assert_true(s->rd->cap >= 200000 - 65536);
    size_t rest = fl - 200000;
    uint8_t tail[8] = {0, 0, 0, 3, 'a'};
    off = 0;
    end = sm_test_now_ms() + 20000;
    while (off < rest && sm_test_now_ms() < end) {
        ssize_t k = write(sv[1], wire + 200000 + off, rest - off);
        if (k > 0) off += (size_t)k;
        SM_ASSERT_OK(sm_loop_run(l, SM_RUN_NOWAIT));
    }
    ts_write(sv[1], tail, 5);
    /* Its echo pauses reading until the raw peer has taken it all. */
    w.want = 3 * fl;
    assert_true(ts_run_until(l, raw_has, &w, 10000));
    assert_true(ts_run_until(l, leftover5, s, 5000));
    assert_int_equal(b.msgs, 3);
    assert_non_null(s->rd);
    assert_int_equal(s->rd->len, 5);
    print_message("leftover block after a 3 MiB message: %zu bytes\n", s->rd->cap);
    assert_true(s->rd->cap <= 65536);
    free(wire);
    sm_stream_close(s);
    ts_raw_close(&r);
    ts_loop_free(l);
    assert_int_equal(b.closes, 1);
}

static void
line_msg(sm_stream *s, const sm_frame_msg *m)
{
    tally *t = sm_stream_get_data(s);
    static const char *want[] = {"alpha", "", "beta gamma", "delta"};
    if (t->msgs >= 4 || m->len != strlen(want[t->msgs]) ||
        memcmp(m->data, want[t->msgs], m->len) != 0)
        t->bad++;
    t->msgs++;
}

static void
test_line_frames(void **state)
{
    (void)state;
    static sm_frame_spec crlf;
    SM_ASSERT_OK(sm_frame_spec_parse(&crlf, "crlf,max=64", NULL, 0));
    static sm_stream_opts o = {.on_message = line_msg, .on_close = t_close};
    o.spec = &crlf;
    sm_loop *l = ts_loop();
    int sv[2];
    ts_pair(sv);
    tally t = {0};
    sm_stream *s = wrap(l, sv[0], &o, &t);
    const char *parts[] = {"alp", "ha\r", "\n\r\nbeta", " gamma\r\nde", "lta\r", "\n"};
    for (int i = 0; i < 6; i++) {
        ts_write(sv[1], parts[i], strlen(parts[i]));
        SM_ASSERT_OK(sm_loop_run(l, SM_RUN_NOWAIT));
    }
    int64_t end = sm_test_now_ms() + 2000;
    while (t.msgs < 4 && sm_test_now_ms() < end)
        SM_ASSERT_OK(sm_loop_run(l, SM_RUN_NOWAIT));
    assert_int_equal(t.msgs, 4);
    assert_int_equal(t.bad, 0);
    /* A payload with the delimiter cannot be framed; nor across pieces. */
    SM_ASSERT_ERR(sm_stream_send(s, "a\r\nb", 4), -EINVAL);
    struct iovec v[2] = {{(void *)"ab\r", 3}, {(void *)"\nc", 2}};
    SM_ASSERT_ERR(sm_stream_sendv(s, v, 2), -EINVAL);
    v[1].iov_base = (void *)"xc";
    SM_ASSERT_ERR(sm_stream_sendv(s, v, 2), 0);
    sm_stream_close(s);
    close(sv[1]);
    ts_loop_free(l);
}

/* ---- closing from callbacks ------------------------------------------------------ */

static void
test_close_self_in_message(void **state)
{
    (void)state;
    sm_loop *l = ts_loop();
    int sv[2];
    ts_pair(sv);
    tally t = {.close_in_msg = true};
    wrap(l, sv[0], &count_opts, &t);
    uint8_t wire[256];
    size_t n = 0;
    for (int i = 0; i < 5; i++)
        n += ts_frame(&ts_len32, "abc", 3, wire + n);
    ts_write(sv[1], wire, n); /* five messages, one read */
    assert_true(ts_run_until(l, closed1, &t, 5000));
    assert_int_equal(t.msgs, 1); /* the other four are not delivered */
    assert_int_equal(t.closes, 1);
    SM_ASSERT_ERR(t.reason, SM_ERR_CLOSED);
    close(sv[1]);
    ts_loop_free(l);
    assert_int_equal(t.closes, 1);
}

static bool
both_closed(void *ctx)
{
    tally *t = ctx;
    return t[0].closes && t[1].closes;
}

static void
test_close_other_pending(void **state)
{
    (void)state;
    sm_loop *l = ts_loop();
    int p[2], q[2];
    ts_pair(p);
    ts_pair(q);
    tally t[2] = {{0}};
    sm_stream *a = wrap(l, p[0], &count_opts, &t[0]);
    sm_stream *b = wrap(l, q[0], &count_opts, &t[1]);
    t[0].close_on_msg = b; /* whoever runs first closes the other */
    t[1].close_on_msg = a;
    uint8_t wire[16];
    size_t n = ts_frame(&ts_len32, "x", 1, wire);
    ts_write(p[1], wire, n);
    ts_write(q[1], wire, n);
    SM_ASSERT_OK(sm_loop_run(l, SM_RUN_ONCE)); /* both ready in one wait */
    assert_int_equal(t[0].msgs + t[1].msgs, 1);
    sm_stream *survivor = t[0].msgs ? a : b;
    SM_ASSERT_OK(sm_stream_close(survivor));
    assert_true(ts_run_until(l, both_closed, t, 5000));
    assert_int_equal(t[0].msgs + t[1].msgs, 1);
    assert_int_equal(t[0].closes, 1);
    assert_int_equal(t[1].closes, 1);
    close(p[1]);
    close(q[1]);
    ts_loop_free(l);
}

static void
test_close_in_eof_and_in_on_close(void **state)
{
    (void)state;
    sm_loop *l = ts_loop();
    int p[2], q[2];
    ts_pair(p);
    ts_pair(q);
    tally ta = {.close_in_eof = true}, tb = {0};
    sm_stream *a = wrap(l, p[0], &count_opts, &ta);
    sm_stream *b = wrap(l, q[0], &count_opts, &tb);
    ta.close_on_close = b;
    uint8_t wire[16];
    size_t n = ts_frame(&ts_len32, "bye", 3, wire);
    ts_write(p[1], wire, n);
    SM_ASSERT_OK(shutdown(p[1], SHUT_WR));
    (void)a;
    int64_t end = sm_test_now_ms() + 5000;
    while (!(ta.closes && tb.closes) && sm_test_now_ms() < end)
        ts_run_once(l, 100);
    assert_int_equal(ta.msgs, 1);
    assert_int_equal(ta.eofs, 1);
    assert_int_equal(ta.closes, 1);
    SM_ASSERT_ERR(ta.reason, SM_ERR_CLOSED);
    assert_int_equal(tb.closes, 1);
    SM_ASSERT_ERR(tb.reason, SM_ERR_CLOSED);
    close(p[1]);
    close(q[1]);
    ts_loop_free(l);
}

static void
test_close_in_drain(void **state)
{
    (void)state;
    static const sm_stream_opts o = {
        .spec = &ts_len32,
        .on_message = count_msg,
        .on_close = t_close,
        .on_drain = t_drain,
        .on_dropped = t_dropped,
        .high_water = 8192,
        .low_water = 2048,
    };
    sm_loop *l = ts_loop();
    int sv[2];
    ts_pair(sv);
    int small = 4096;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    tally t = {.close_in_drain = true};
    sm_stream *s = wrap(l, sv[0], &o, &t);
    uint8_t msg[1000];
    memset(msg, 'q', sizeof msg);
    int above = 0, sent = 200;
    for (int i = 0; i < sent; i++) {
        int rc = sm_stream_send(s, msg, sizeof msg);
        assert_true(rc == 0 || rc == 1);
        above += rc;
    }
    assert_true(above > 0); /* send says when the queue is above high_water */
    assert_true(s->flags & SM__S_ABOVE);
    assert_false(s->flags & SM__S_PAUSED); /* the default: reading goes on */
    /* Let the stream write what the socket takes, then start reading. */
    for (int i = 0; i < 5; i++)
        SM_ASSERT_OK(sm_loop_run(l, SM_RUN_NOWAIT));
    assert_int_equal(t.drains, 0);
    ts_raw r;
    ts_raw_start(l, &r, sv[1], true);
    assert_true(ts_run_until(l, closed1, &t, 10000));
    assert_int_equal(t.drains, 1);
    SM_ASSERT_ERR(t.reason, SM_ERR_CLOSED);
    /* Nothing lost track of: each message arrived whole or was reported. */
    for (int i = 0; i < 20 && !r.eof; i++)
        SM_ASSERT_OK(sm_loop_run(l, SM_RUN_NOWAIT));
    int got = ts_count_frames(&ts_len32, r.buf, r.len);
    print_message("received %d, dropped %d of %d\n", got, t.dropped, sent);
    assert_int_equal(got + t.dropped, sent);
    ts_raw_close(&r);
    ts_loop_free(l);
}

/* ---- stopping the loop from another thread ------------------------------------------- */

typedef struct pingpong {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_int msgs;
    sm_loop *loop;
    tally ct, st;
} pingpong;

static void
pp_msg(sm_stream *s, const sm_frame_msg *m)
{
    tally *t = sm_stream_get_data(s);
    t->msgs++;
    sm_stream_send(s, m->data, m->len); /* forever, until the loop stops */
}

static pingpong *g_pp;

static void
pp_client_msg(sm_stream *s, const sm_frame_msg *m)
{
    pp_msg(s, m);
    if (atomic_fetch_add(&g_pp->msgs, 1) + 1 == 200) {
        pthread_mutex_lock(&g_pp->mu);
        pthread_cond_signal(&g_pp->cv);
        pthread_mutex_unlock(&g_pp->mu);
    }
}

static void *
stopper(void *arg)
{
    pingpong *pp = arg;
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 20;
    pthread_mutex_lock(&pp->mu);
    while (atomic_load(&pp->msgs) < 200)
        if (pthread_cond_timedwait(&pp->cv, &pp->mu, &dl) != 0) break;
    pthread_mutex_unlock(&pp->mu);
    sm_loop_stop(pp->loop);
    return NULL;
}

static void
test_stop_from_thread(void **state)
{
    (void)state;
    static const sm_stream_opts co = {
        .spec = &ts_len32, .on_message = pp_client_msg, .on_close = t_close};
    static const sm_stream_opts so = {.spec = &ts_len32, .on_message = pp_msg, .on_close = t_close};
    pingpong pp = {.msgs = 0};
    pthread_mutex_init(&pp.mu, NULL);
    pthread_cond_init(&pp.cv, NULL);
    g_pp = &pp;
    pp.loop = ts_loop();
    int sv[2];
    ts_pair(sv);
    sm_stream *c = wrap(pp.loop, sv[0], &co, &pp.ct);
    sm_stream *s = wrap(pp.loop, sv[1], &so, &pp.st);
    SM_ASSERT_OK(sm_stream_send(c, "ping", 4));
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, stopper, &pp), 0);
    int rc = sm_loop_run(pp.loop, SM_RUN_DEFAULT); /* returns once stopped */
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(rc, 1);
    assert_true(atomic_load(&pp.msgs) >= 200);
    sm_stream_close(c);
    sm_stream_close(s);
    ts_loop_free(pp.loop);
    assert_int_equal(pp.ct.closes, 1);
    assert_int_equal(pp.st.closes, 1);
    pthread_cond_destroy(&pp.cv);
    pthread_mutex_destroy(&pp.mu);
    g_pp = NULL;
}

/* ---- sendv_take: the free callback runs exactly once --------------------------------- */

typedef struct freerec {
    int calls;
    int status;
    void *buf;
} freerec;

static void
free_rec(void *ctx, int status)
{
    freerec *f = ctx;
    f->calls++;
    f->status = status;
    free(f->buf);
    f->buf = NULL;
}

static bool
freed1(void *ctx)
{
    return ((freerec *)ctx)->calls >= 1;
}

static void
test_sendv_take(void **state)
{
    (void)state;
    sm_loop *l = ts_loop();
    int sv[2];
    ts_pair(sv);
    tally t = {0};
    sm_stream *s = wrap(l, sv[0], &count_opts, &t);
    ts_raw r;
    ts_raw_start(l, &r, sv[1], true);

    /* Written: status 0, once, after the call returned. */
    freerec f1 = {.buf = strdup("world")};
    struct iovec v[3] = {{(void *)"hello", 5}, {(void *)", ", 2}, {f1.buf, 5}};
    SM_ASSERT_ERR(sm_stream_sendv_take(s, v, 3, free_rec, &f1), 0);
    assert_int_equal(f1.calls, 0);
    assert_true(ts_run_until(l, freed1, &f1, 5000));
    assert_int_equal(f1.status, 0);
    for (int i = 0; i < 5 && r.len < 16; i++)
        SM_ASSERT_OK(sm_loop_run(l, SM_RUN_NOWAIT));
    assert_int_equal(r.len, 16);
    assert_memory_equal(r.buf + 4, "hello, world", 12);

    /* Failures: the callback never runs and the buffers stay ours. */
    freerec f0 = {0};
    SM_ASSERT_ERR(sm_stream_sendv_take(s, v, 3, NULL, &f0), -EINVAL);
    SM_ASSERT_ERR(sm_stream_sendv_take(s, v, -1, free_rec, &f0), -EINVAL);
    SM_ASSERT_ERR(sm_stream_sendv_take(s, v, 100000, free_rec, &f0), -EINVAL);

    /* Dropped by a close: status SM_ERR_CLOSED, once. */
    freerec f2 = {.buf = malloc(100)}, f3 = {.buf = malloc(10)};
    memset(f2.buf, 'z', 100);
    struct iovec w = {f2.buf, 100};
    SM_ASSERT_ERR(sm_stream_sendv_take(s, &w, 1, free_rec, &f2), 0);
    SM_ASSERT_ERR(sm_stream_send(s, "copied", 6), 0);
    struct iovec w3 = {f3.buf, 0};
    SM_ASSERT_ERR(sm_stream_sendv_take(s, &w3, 1, free_rec, &f3), 0); /* empty payload */
    SM_ASSERT_OK(sm_stream_close(s));
    SM_ASSERT_ERR(sm_stream_sendv_take(s, &w, 1, free_rec, &f0), SM_ERR_CLOSED);
    assert_int_equal(f2.calls, 0);
    ts_raw_close(&r);
    ts_loop_free(l);
    assert_int_equal(f0.calls, 0);
    assert_int_equal(f2.calls, 1);
    SM_ASSERT_ERR(f2.status, SM_ERR_CLOSED);
    assert_int_equal(f3.calls, 1);
    assert_int_equal(t.dropped, 1); /* "copied" */
    assert_int_equal(t.closes, 1);
}

/* ---- framing errors ---------------------------------------------------------------- */

static bool
closed_and_echoed(void *ctx)
{
    tally *t = ctx;
    return t[0].closes && t[1].msgs >= 1;
}

static void
frame_error_case(const char *specstr, const void *bad, size_t badlen, bool fin, int want,
                 const char *want_detail)
{
    static sm_frame_spec spec;
    SM_ASSERT_OK(sm_frame_spec_parse(&spec, specstr, NULL, 0));
    static sm_stream_opts o = {.on_message = echo_msg, .on_close = t_close};
    o.spec = &spec;
    sm_loop *l = ts_loop();
    int p[2], q[2];
    ts_pair(p);
    ts_pair(q);
    tally t[2] = {{0}};
    wrap(l, p[0], &o, &t[0]);
    sm_stream *good = wrap(l, q[0], &o, &t[1]);
    ts_raw r;
    ts_raw_start(l, &r, q[1], true);
    uint8_t ok[64];
    size_t okn = ts_frame(&spec, "fine", 4, ok);
    ts_write(p[1], ok, okn); /* a good message first, then the bad bytes */
    ts_write(p[1], bad, badlen);
    if (fin) SM_ASSERT_OK(shutdown(p[1], SHUT_WR));
    ts_write(q[1], ok, okn);
    assert_true(ts_run_until(l, closed_and_echoed, t, 5000));
    SM_ASSERT_ERR(t[0].reason, want);
    print_message("%s: %s\n", specstr, t[0].detail);
    assert_non_null(strstr(t[0].detail, want_detail));
    assert_int_equal(t[0].msgs, 1);
    /* The other stream is undisturbed. */
    assert_int_equal(t[1].closes, 0);
    assert_true(sm_stream_is_connected(good));
    ts_write(q[1], ok, okn);
    int64_t end = sm_test_now_ms() + 2000;
    while (r.len < 2 * okn && sm_test_now_ms() < end)
        SM_ASSERT_OK(sm_loop_run(l, SM_RUN_NOWAIT));
    assert_int_equal(r.len, 2 * okn);
    sm_stream_close(good);
    ts_raw_close(&r);
    close(p[1]);
    ts_loop_free(l);
}

static void
test_frame_errors(void **state)
{
    (void)state;
    /* Oversized: refused from the header alone. */
    frame_error_case("len32be,max=1000", "\x00\x00\x13\x88xx", 6, false, -EMSGSIZE,
                     "exceeds max 1000");
    /* Malformed. */
    frame_error_case("ascii:4", "12x4abcd", 8, false, -EPROTO, "not a digit");
    /* The peer's EOF in the middle of a message. */
    frame_error_case("len32be",
                     "\x00\x00\x00\x0a"
                     "abc",
                     7, true, SM_ERR_TRUNCATED, "stream ended inside a message");
    /* A delimiter that never comes within max. */
    char longline[200];
    memset(longline, 'a', sizeof longline);
    frame_error_case("line,max=100", longline, sizeof longline, false, -EMSGSIZE,
                     "no delimiter within max 100");
}

/* ---- eof framing ----------------------------------------------------------------------- */

typedef struct eofctx {
    tally t;
    char got[64];
    size_t got_len;
} eofctx;

static void
eof_msg(sm_stream *s, const sm_frame_msg *m)
{
    eofctx *e = sm_stream_get_data(s);
    if (e->t.eofs) e->t.bad++; /* the final message comes before on_eof */
    e->t.msgs++;
    e->got_len = m->len < sizeof e->got ? m->len : sizeof e->got;
    memcpy(e->got, m->data, e->got_len);
}

static void
test_eof_framing(void **state)
{
    (void)state;
    static sm_frame_spec eofspec;
    SM_ASSERT_OK(sm_frame_spec_parse(&eofspec, "eof,max=1K", NULL, 0));
    static sm_stream_opts o = {.on_message = eof_msg, .on_close = t_close, .on_eof = t_eof};
    o.spec = &eofspec;
    for (int empty = 0; empty < 2; empty++) {
        sm_loop *l = ts_loop();
        int sv[2];
        ts_pair(sv);
        eofctx e = {{0}};
        wrap(l, sv[0], &o, &e);
        ts_raw r;
        ts_raw_start(l, &r, sv[1], true);
        if (!empty) {
            ts_write(sv[1], "hello ", 6);
            SM_ASSERT_OK(sm_loop_run(l, SM_RUN_NOWAIT));
            ts_write(sv[1], "world", 5);
        }
        SM_ASSERT_OK(shutdown(sv[1], SHUT_WR));
        assert_true(ts_run_until(l, closed1, &e.t, 5000));
        assert_int_equal(e.t.msgs, 1);
        assert_int_equal(e.t.bad, 0);
        assert_int_equal(e.t.eofs, 1);
        SM_ASSERT_ERR(e.t.reason, 0); /* both sides done: clean */
        if (empty)
            assert_int_equal(e.got_len, 0);
        else
            assert_true(e.got_len == 11 && memcmp(e.got, "hello world", 11) == 0);
        for (int i = 0; i < 5 && !r.eof; i++)
            SM_ASSERT_OK(sm_loop_run(l, SM_RUN_NOWAIT));
        assert_true(r.eof); /* we shut down our side too */
        ts_raw_close(&r);
        ts_loop_free(l);
    }
}

/* ---- half-close ---------------------------------------------------------------------- */

static bool
raw_eof(void *ctx)
{
    return ((ts_raw *)ctx)->eof;
}

static void
test_half_close(void **state)
{
    (void)state;
    sm_loop *l = ts_loop();
    int sv[2];
    ts_pair(sv);
    tally t = {0};
    sm_stream *s = wrap(l, sv[0], &count_opts, &t);
    ts_raw r;
    ts_raw_start(l, &r, sv[1], true);
    enum { N = 3000 };
    uint8_t msg[1024];
    for (unsigned i = 0; i < N; i++) {
        size_t len = 1 + i % 1000;
        ts_msg_fill(msg, 5, i, len);
        assert_true(sm_stream_send(s, msg, len) >= 0);
    }
    assert_true(sm_stream_queued(s) > 0);
    SM_ASSERT_OK(sm_stream_shutdown(s)); /* FIN after everything queued */
    SM_ASSERT_ERR(sm_stream_send(s, "late", 4), -EPIPE);
    SM_ASSERT_OK(sm_stream_shutdown(s)); /* idempotent */
    assert_true(ts_run_until(l, raw_eof, &r, 10000));
    /* Every message, intact and in order, before the EOF. */
    sm_frame_decoder d;
    sm_frame_decoder_init(&d, &ts_len32);
    size_t off = 0;
    unsigned got = 0;
    for (;;) {
        sm_frame_msg m;
        ssize_t k = sm_frame_decode(&d, r.buf + off, r.len - off, &m);
        if (k <= 0) break;
        assert_true(ts_msg_ok(m.data, m.len, 5, got, 1 + got % 1000));
        off += (size_t)k;
        got++;
    }
    assert_int_equal(got, N);
    assert_int_equal(off, r.len);
    /* The stream still reads: the peer answers, then shuts down too. */
    assert_int_equal(t.closes, 0);
    uint8_t wire[16];
    ts_write(sv[1], wire, ts_frame(&ts_len32, "ack", 3, wire));
    SM_ASSERT_OK(shutdown(sv[1], SHUT_WR));
    assert_true(ts_run_until(l, closed1, &t, 5000));
    assert_int_equal(t.msgs, 1);
    assert_int_equal(t.eofs, 1);
    SM_ASSERT_ERR(t.reason, 0);
    ts_raw_close(&r);
    ts_loop_free(l);
}

/* ---- arguments, type: specs, write_now ---------------------------------------------- */

static void
type_msg(sm_stream *s, const sm_frame_msg *m)
{
    tally *t = sm_stream_get_data(s);
    if (m->type != 'B' || m->len != 2 || memcmp(m->data, "hi", 2) != 0) t->bad++;
    t->msgs++;
}

static void
test_arguments_and_types(void **state)
{
    (void)state;
    sm_loop *l = ts_loop();
    int sv[2];
    ts_pair(sv);
    /* Bad options: -EINVAL / SM_ERR_SPEC, and the fd is closed either way. */
    sm_stream *s = NULL;
    sm_stream_opts bad = {.spec = &ts_len32};
    SM_ASSERT_ERR(sm_stream_new_take(&s, l, sv[0], &bad, NULL), -EINVAL);
    assert_true(fcntl(sv[0], F_GETFD) < 0 && errno == EBADF);
    close(sv[1]);
    sm_frame_spec broken = {.kind = SM_FRAME_LENGTH, .len_width = 3};
    sm_stream_opts bo = {.spec = &broken, .on_message = count_msg};
    ts_pair(sv);
    SM_ASSERT_ERR(sm_stream_new_take(&s, l, sv[0], &bo, NULL), SM_ERR_SPEC);
    bo = (sm_stream_opts){
        .spec = &ts_len32, .on_message = count_msg, .high_water = 10, .low_water = 20};
    SM_ASSERT_ERR(sm_stream_new_take(&s, l, sv[1], &bo, NULL), -EINVAL);
    SM_ASSERT_ERR(sm_stream_new_take(&s, l, -1, &count_opts, NULL), -EINVAL);
    SM_ASSERT_ERR(sm_stream_send(NULL, "x", 1), -EINVAL);
    SM_ASSERT_ERR(sm_stream_dial(&s, l, "tcp://nope", &count_opts, NULL, NULL, 0), SM_ERR_ENDPOINT);

    /* type: specs: the type byte travels with the message. */
    static sm_frame_spec ts;
    SM_ASSERT_OK(sm_frame_spec_parse(&ts, "type:A=4;B=(len8)", NULL, 0));
    static sm_stream_opts to = {.on_message = type_msg, .on_close = t_close};
    to.spec = &ts;
    ts_pair(sv);
    tally ta = {0}, tb = {0};
    sm_stream *a = wrap(l, sv[0], &to, &ta);
    sm_stream *b = wrap(l, sv[1], &to, &tb);
    SM_ASSERT_ERR(sm_stream_send(a, "hi", 2), -EPROTO);
    SM_ASSERT_ERR(sm_stream_send_type(a, 'Z', "hi", 2), -EPROTO);
    struct iovec v = {(void *)"hi", 2};
    SM_ASSERT_ERR(sm_stream_sendv_take(a, &v, 1, free_rec, NULL), -EPROTO);
    SM_ASSERT_ERR(sm_stream_send_type(a, 'B', "hi", 2), 0);
    assert_true(ts_run_until(l, got1, &tb, 5000));
    assert_int_equal(tb.bad, 0);
    sm_stream_set_data(a, &tb);
    assert_ptr_equal(sm_stream_get_data(a), &tb);
    sm_stream_set_data(a, &ta);
    assert_ptr_equal(sm_stream_loop(a), l);
    sm_stream_close(a);
    sm_stream_close(b);
    ts_loop_free(l);
}

static bool
drained1(void *ctx)
{
    return ((tally *)ctx)->drains >= 1;
}

static bool
echoed_all(void *ctx)
{
    return ((tally *)ctx)->msgs >= 500;
}

static void
test_write_now(void **state)
{
    (void)state;
    static const sm_stream_opts wo = {
        .spec = &ts_len32, .on_message = echo_msg, .on_close = t_close, .write_now = true};
    static const sm_stream_opts co = {
        .spec = &ts_len32, .on_message = count_msg, .on_close = t_close, .write_now = true};
    sm_loop *l = ts_loop();
    int sv[2];
    ts_pair(sv);
    tally tc = {0}, ts = {0};
    sm_stream *c = wrap(l, sv[0], &co, &tc);
    sm_stream *s = wrap(l, sv[1], &wo, &ts);
    for (int i = 0; i < 500; i++)
        assert_true(sm_stream_send(c, "0123456789", 10) >= 0);
    assert_true(ts_run_until(l, echoed_all, &tc, 5000));
    assert_int_equal(tc.bytes, 5000);
    /* One message above high_water: on_drain comes later, not inside. */
    static const sm_stream_opts small = {.spec = &ts_len32,
                                         .on_message = count_msg,
                                         .on_close = t_close,
                                         .on_drain = t_drain,
                                         .write_now = true,
                                         .high_water = 100};
    int p[2];
    ts_pair(p);
    tally td = {0};
    sm_stream *d = wrap(l, p[0], &small, &td);
    static uint8_t big[500];
    SM_ASSERT_ERR(sm_stream_send(d, big, sizeof big), 1);
    assert_int_equal(td.drains, 0);
    assert_true(ts_run_until(l, drained1, &td, 5000));
    sm_stream_close(d);
    close(p[1]);
    sm_stream_close(c);
    sm_stream_close(s);
    ts_loop_free(l);
}

/* ---- oversize=skip, half-open, sending from on_eof ------------------------------- */

static void
test_oversize_skip(void **state)
{
    (void)state;
    static sm_frame_spec spec;
    SM_ASSERT_OK(sm_frame_spec_parse(&spec, "len32be,max=10,oversize=skip", NULL, 0));
    static sm_stream_opts o = {.on_message = count_msg, .on_close = t_close};
    o.spec = &spec;
    sm_loop *l = ts_loop();
    int sv[2];
    ts_pair(sv);
    tally t = {0};
    sm_stream *s = wrap(l, sv[0], &o, &t);
    /* A 100-byte message (over max) arrives in two halves: between them the
     * stream holds no bytes, only the decoder's "skip 50 more". */
    uint8_t big[104] = {0, 0, 0, 100};
    memset(big + 4, 'x', 100);
    ts_write(sv[1], big, 54);
    for (int i = 0; i < 3; i++)
        SM_ASSERT_OK(sm_loop_run(l, SM_RUN_NOWAIT));
    assert_non_null(s->rd);
    assert_int_equal(s->rd->len, 0);
    ts_write(sv[1], big + 54, 50);
    uint8_t ok[16];
    ts_write(sv[1], ok, ts_frame(&spec, "fine", 4, ok));
    assert_true(ts_run_until(l, got1, &t, 5000));
    assert_int_equal(t.msgs, 1);
    assert_int_equal(t.bytes, 4);
    assert_null(s->rd);
    assert_int_equal(t.closes, 0);
    sm_stream_close(s);
    close(sv[1]);
    ts_loop_free(l);
}

static void
bye_on_eof(sm_stream *s)
{
    tally *t = sm_stream_get_data(s);
    t->eofs++;
    SM_ASSERT_OK(sm_stream_send(s, "bye", 3)); /* goes out before our FIN */
}

static void
test_half_open_and_eof_reply(void **state)
{
    (void)state;
    static const sm_stream_opts auto_fin = {
        .spec = &ts_len32, .on_message = count_msg, .on_close = t_close, .on_eof = bye_on_eof};
    static const sm_stream_opts half = {.spec = &ts_len32,
                                        .on_message = count_msg,
                                        .on_close = t_close,
                                        .on_eof = t_eof,
                                        .half_open = true};
    sm_loop *l = ts_loop();
    /* Default: after the peer's EOF, what on_eof sends goes out, then FIN,
     * then a clean close. */
    int sv[2];
    ts_pair(sv);
    tally t = {0};
    wrap(l, sv[0], &auto_fin, &t);
    ts_raw r;
    ts_raw_start(l, &r, sv[1], true);
    SM_ASSERT_OK(shutdown(sv[1], SHUT_WR));
    assert_true(ts_run_until(l, closed1, &t, 5000));
    SM_ASSERT_ERR(t.reason, 0);
    assert_int_equal(t.eofs, 1);
    for (int i = 0; i < 5 && !r.eof; i++)
        SM_ASSERT_OK(sm_loop_run(l, SM_RUN_NOWAIT));
    assert_true(r.eof);
    assert_int_equal(r.len, 7);
    assert_memory_equal(r.buf + 4, "bye", 3);
    ts_raw_close(&r);

    /* half_open: the stream stays open and writable until we shut down. */
    ts_pair(sv);
    tally h = {0};
    sm_stream *s = wrap(l, sv[0], &half, &h);
    ts_raw_start(l, &r, sv[1], true);
    SM_ASSERT_OK(shutdown(sv[1], SHUT_WR));
    int64_t end = sm_test_now_ms() + 5000;
    while (!h.eofs && sm_test_now_ms() < end)
        ts_run_once(l, 100);
    assert_int_equal(h.eofs, 1);
    for (int i = 0; i < 5; i++)
        SM_ASSERT_OK(sm_loop_run(l, SM_RUN_NOWAIT));
    assert_int_equal(h.closes, 0);
    assert_false(r.eof);
    SM_ASSERT_ERR(sm_stream_send(s, "later", 5), 0);
    SM_ASSERT_OK(sm_stream_shutdown(s));
    assert_true(ts_run_until(l, closed1, &h, 5000));
    SM_ASSERT_ERR(h.reason, 0);
    for (int i = 0; i < 5 && !r.eof; i++)
        SM_ASSERT_OK(sm_loop_run(l, SM_RUN_NOWAIT));
    assert_true(r.eof);
    assert_int_equal(r.len, 9);
    ts_raw_close(&r);
    ts_loop_free(l);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_idle_holds_nothing),
        cmocka_unit_test(test_many_streams),
        cmocka_unit_test(test_split_frames),
        cmocka_unit_test(test_big_frames),
        cmocka_unit_test(test_line_frames),
        cmocka_unit_test(test_close_self_in_message),
        cmocka_unit_test(test_close_other_pending),
        cmocka_unit_test(test_close_in_eof_and_in_on_close),
        cmocka_unit_test(test_close_in_drain),
        cmocka_unit_test(test_stop_from_thread),
        cmocka_unit_test(test_sendv_take),
        cmocka_unit_test(test_frame_errors),
        cmocka_unit_test(test_eof_framing),
        cmocka_unit_test(test_half_close),
        cmocka_unit_test(test_arguments_and_types),
        cmocka_unit_test(test_write_now),
        cmocka_unit_test(test_oversize_skip),
        cmocka_unit_test(test_half_open_and_eof_reply),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
