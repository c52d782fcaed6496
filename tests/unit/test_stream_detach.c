/* sm_stream_detach, on every loop backend: a STARTTLS-style switch handing
 * an accepted TCP stream to sm_stream_new_tls (the client pipelines a line
 * after its switch line: the rest), a splice of both sides of a proxy, a
 * detach waiting for a queue the peer drains late, the partial message
 * kept as the rest (from on_message and from outside callbacks), a peer
 * reset, a write timeout and sm_stream_close during the flush, and the
 * calls refused while detaching. Every test counts /proc/self/fd. */
#include "test_stream.h"
#include "tls_test.h"
#include "transport.h"

#include <dirent.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>

#include <sockmsg/conn.h>

#define T 10000

static const sm_frame_spec line = {.kind = SM_FRAME_DELIM, .delim = "\n", .delim_len = 1};

/* What one detach reported, in order with on_close. */
typedef struct got {
    int calls, fd, status, closes, reason;
    bool cb_first; /* the detach callback ran before on_close */
    uint8_t *rest;
    size_t rest_len;
    size_t queued_at_cb;
} got;

static void
on_detached(sm_stream *s, int fd, uint8_t *rest, size_t rest_len, int status, void *arg)
{
    got *g = arg;
    g->calls++;
    g->fd = fd;
    g->status = status;
    g->rest = rest;
    g->rest_len = rest_len;
    g->queued_at_cb = sm_stream_queued(s);
    g->cb_first = g->closes == 0;
}

static void
on_close_got(sm_stream *s, int reason)
{
    got *g = sm_stream_get_data(s);
    g->closes++;
    g->reason = reason;
}

static bool
closed(void *ctx)
{
    return ((got *)ctx)->closes > 0;
}

static bool
nothing_to_read(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, 0) == 0;
}

/* ---- STARTTLS: lines, then TLS on the same socket ------------------------ */

typedef struct tls_run {
    sm_loop *loop;
    sm_tls_config *scfg, *ccfg;
    sm_conn *client;
    sm_stream *tls; /* the server's TLS stream after the hand-off */
    got g;
    int refused[4]; /* what the calls during the detach returned */
    char pipelined[32];
    size_t pipelined_len;
    got tls_g;
    atomic_int client_rc; /* 1 while running, then 0 or an error */
    char why[256];
} tls_run;

static tls_run *R;

static void
tls_echo(sm_stream *s, const sm_frame_msg *m)
{
    SM_ASSERT_OK(sm_stream_send_frame(s, m));
}

static const sm_stream_opts tls_opts = {
    .spec = &ts_len32, .on_message = tls_echo, .on_close = on_close_got};

static void
starttls_detached(sm_stream *s, int fd, uint8_t *rest, size_t rest_len, int status, void *arg)
{
    on_detached(s, fd, rest, rest_len, status, arg);
    if (status != 0) return;
    /* What the client pipelined after STARTTLS: read ahead into the rest,
     * or still in the socket (had it come in a later segment). The fd is
     * non-blocking; sm_test_read_exact polls. */
    size_t want = strlen("NOOP\n");
    if (rest_len) memcpy(R->pipelined, rest, rest_len < want ? rest_len : want);
    if (rest_len < want)
        sm_test_read_exact(fd, (uint8_t *)R->pipelined + rest_len, want - rest_len, T);
    R->pipelined_len = want;
    free(rest);
    R->g.rest = NULL;
    SM_ASSERT_OK(sm_stream_new_tls(&R->tls, R->loop, fd, &tls_opts, &R->tls_g, R->scfg, NULL,
                                   R->why, sizeof R->why));
}

static void
starttls_msg(sm_stream *s, const sm_frame_msg *m)
{
    if (m->len == 8 && memcmp(m->data, "STARTTLS", 8) == 0) {
        SM_ASSERT_OK(sm_stream_send(s, "220 go ahead", 12));
        SM_ASSERT_OK(sm_stream_detach(s, starttls_detached, &R->g));
        R->refused[0] = sm_stream_detach(s, starttls_detached, &R->g);
        R->refused[1] = sm_stream_send(s, "late", 4);
        R->refused[2] = sm_stream_read_start(s);
        R->refused[3] = sm_stream_shutdown(s);
        return;
    }
    SM_ASSERT_OK(sm_stream_send(s, "250 ok", 6));
}

static const sm_stream_opts line_opts = {
    .spec = &line, .on_message = starttls_msg, .on_close = on_close_got, .write_timeout_ms = T};

static void *
client_main(void *arg)
{
    tls_run *r = arg;
    sm_conn *c = r->client;
    sm_frame_msg m;
    int rc = sm_conn_recv(c, &m, T);
    if (rc == 1) rc = m.len == 6 && memcmp(m.data, "250 ok", 6) == 0 ? 1 : -EPROTO;
    if (rc == 1) rc = sm_conn_recv(c, &m, T);
    if (rc == 1) rc = m.len == 12 && memcmp(m.data, "220 go ahead", 12) == 0 ? 1 : -EPROTO;
    int fd = -1;
    uint8_t *rest = NULL;
    size_t rest_len = 0;
    if (rc == 1)
        rc = sm_conn_detach(c, &fd, &rest, &rest_len);
    else
        sm_conn_free(c);
    free(rest);
    if (rc == 0 && rest_len) rc = -EPROTO; /* the server said nothing after 220 */
    char why[256];
    if (rc == 0) rc = sm_conn_new_tls(&c, fd, &ts_len32, r->ccfg, "localhost", T, why, sizeof why);
    if (rc == 0) {
        rc = (int)sm_conn_send(c, "secret", 6, T);
        if (rc == 6) rc = sm_conn_recv(c, &m, T);
        rc = rc == 1 && m.len == 6 && memcmp(m.data, "secret", 6) == 0 ? 0 : rc < 0 ? rc : -EPROTO;
        /* The result before the close: the close is the server loop's last
         * event (EOF on its TLS stream), so a result stored after it could
         * land while that loop already waits, with nothing left to wake it
         * but its guard timer (the test then took T longer). */
        atomic_store(&r->client_rc, rc);
        sm_conn_free(c);
        return NULL;
    }
    atomic_store(&r->client_rc, rc);
    return NULL;
}

static bool
starttls_done(void *ctx)
{
    tls_run *r = ctx;
    return atomic_load(&r->client_rc) != 1 && r->tls_g.closes > 0;
}

static void
test_starttls(void **state)
{
    (void)state;
    int fds0 = sm_test_count_fds();
    tls_run r = {.loop = ts_loop()};
    R = &r;
    atomic_store(&r.client_rc, 1);
    r.scfg = sm_test_tls_server("chain.pem", "leaf.key");
    r.ccfg = sm_test_tls_client(true);
    ts_acceptor a = {.data = &r.g};
    ts_acceptor_start(r.loop, &a, "tcp://127.0.0.1:0", &line_opts);
    char where[64], why[256];
    snprintf(where, sizeof where, "tcp://127.0.0.1:%u", (unsigned)a.port);
    /* Connected through the backlog and written before the loop accepts:
     * the server reads the three lines in one read, so NOOP is read ahead
     * (the rest) on every backend. */
    SM_ASSERT_OK(sm_conn_dial(&r.client, where, "line", T, why, sizeof why));
    assert_int_equal(sm_conn_send_raw(r.client, "EHLO me\nSTARTTLS\nNOOP\n", 22, T), 22);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, client_main, &r), 0);
    bool done = ts_run_until(r.loop, starttls_done, &r, T);
    pthread_join(th, NULL);
    assert_true(done);
    assert_int_equal(atomic_load(&r.client_rc), 0);
    /* The detach: once, before on_close(SM_ERR_DETACHED), the queue empty. */
    assert_int_equal(r.g.calls, 1);
    assert_int_equal(r.g.status, 0);
    assert_true(r.g.cb_first);
    assert_int_equal(r.g.closes, 1);
    assert_int_equal(r.g.reason, SM_ERR_DETACHED);
    assert_int_equal(r.g.queued_at_cb, 0);
    assert_int_equal(r.g.rest_len, 5);
    assert_int_equal(r.pipelined_len, 5);
    assert_memory_equal(r.pipelined, "NOOP\n", 5);
    SM_ASSERT_ERR(r.refused[0], -EALREADY);
    SM_ASSERT_ERR(r.refused[1], -EPIPE);
    SM_ASSERT_ERR(r.refused[2], -EBUSY);
    SM_ASSERT_ERR(r.refused[3], -EBUSY);
    ts_acceptor_stop(&a);
    ts_loop_free(r.loop);
    sm_tls_config_free(r.scfg);
    sm_tls_config_free(r.ccfg);
    assert_int_equal(sm_test_count_fds(), fds0);
}

/* A TLS stream cannot be detached (its session would be lost). */
static bool
tls_up(void *ctx)
{
    (void)ctx;
    return R->tls != NULL;
}

static void
test_tls_refused(void **state)
{
    (void)state;
    int fds0 = sm_test_count_fds();
    tls_run r = {.loop = ts_loop()};
    R = &r;
    r.scfg = sm_test_tls_server("chain.pem", "leaf.key");
    int sv[2];
    ts_pair(sv);
    SM_ASSERT_OK(sm_stream_new_tls(&r.tls, r.loop, sv[0], &tls_opts, &r.tls_g, r.scfg, NULL, r.why,
                                   sizeof r.why));
    assert_true(tls_up(NULL));
    SM_ASSERT_ERR(sm_stream_detach(r.tls, on_detached, &r.g), -EINVAL);
    SM_ASSERT_ERR(sm_stream_detach(NULL, on_detached, &r.g), -EINVAL);
    SM_ASSERT_ERR(sm_stream_detach(r.tls, NULL, &r.g), -EINVAL);
    SM_ASSERT_OK(sm_stream_close(r.tls));
    SM_ASSERT_ERR(sm_stream_detach(r.tls, on_detached, &r.g), SM_ERR_CLOSED);
    assert_true(ts_run_until(r.loop, closed, &r.tls_g, T));
    assert_int_equal(r.g.calls, 0);
    close(sv[1]);
    ts_loop_free(r.loop);
    sm_tls_config_free(r.scfg);
    assert_int_equal(sm_test_count_fds(), fds0);
}

/* ---- one stream over a socketpair, detached on "SWITCH" ------------------ */

typedef struct one {
    sm_loop *loop;
    sm_stream *s;
    got g;
    int peer;
    size_t flood; /* bytes to queue before the reply (0: none) */
    int msgs;
} one;

static one *O;

static void
one_msg(sm_stream *s, const sm_frame_msg *m)
{
    O->msgs++;
    if (m->len != 6 || memcmp(m->data, "SWITCH", 6) != 0) return;
    static uint8_t chunk[65536];
    memset(chunk, 'x', sizeof chunk);
    for (size_t sent = 0; sent < O->flood; sent += sizeof chunk)
        assert_true(sm_stream_send(s, chunk, sizeof chunk) >= 0);
    SM_ASSERT_OK(sm_stream_send(s, "OK", 2));
    SM_ASSERT_OK(sm_stream_detach(s, on_detached, &O->g));
}

static const sm_stream_opts one_opts = {.spec = &ts_len32,
                                        .on_message = one_msg,
                                        .on_close = on_close_got,
                                        .write_timeout_ms = T,
                                        .max_queued = 64u << 20,
                                        .high_water = 32u << 20};

static void
one_start(one *o, const sm_stream_opts *opts)
{
    int sv[2];
    ts_pair(sv);
    o->loop = ts_loop();
    o->peer = sv[1];
    o->g.fd = -1;
    O = o;
    SM_ASSERT_OK(sm_stream_new_take(&o->s, o->loop, sv[0], opts, &o->g));
    /* On io_uring the stream is on the completion transport (what the
     * quiesce must wait for), not on readiness. */
    const char *b = getenv("SOCKMSG_BACKEND");
    if (b && strcmp(b, "io_uring") == 0) assert_int_equal(o->s->tp, SM__TP_URING);
}

static void
one_end(one *o, int fds0)
{
    if (o->g.fd >= 0) close(o->g.fd);
    free(o->g.rest);
    close(o->peer);
    ts_loop_free(o->loop);
    assert_int_equal(sm_test_count_fds(), fds0);
}

/* A length-prefixed message into buf; returns its size. */
static size_t
frame(uint8_t *buf, const char *payload)
{
    return ts_frame(&ts_len32, payload, strlen(payload), buf);
}

/* The switch message, then a whole message and the start of another:
 * neither is delivered, both come back as the rest. */
static void
test_rest_from_on_message(void **state)
{
    (void)state;
    int fds0 = sm_test_count_fds();
    one o = {0};
    one_start(&o, &one_opts);
    uint8_t buf[256];
    size_t n = frame(buf, "SWITCH");
    size_t r0 = n;
    n += frame(buf + n, "after");
    n += frame(buf + n, "partial") - 3; /* cut short */
    ts_write(o.peer, buf, n);
    assert_true(ts_run_until(o.loop, closed, &o.g, T));
    assert_int_equal(o.msgs, 1);
    assert_int_equal(o.g.status, 0);
    assert_int_equal(o.g.reason, SM_ERR_DETACHED);
    assert_true(o.g.cb_first);
    assert_int_equal(o.g.rest_len, n - r0);
    assert_memory_equal(o.g.rest, buf + r0, n - r0);
    /* The reply went first; the fd is ours and still works. */
    uint8_t got_buf[64];
    size_t ok = frame(got_buf + 32, "OK");
    sm_test_read_exact(o.peer, got_buf, ok, T);
    assert_memory_equal(got_buf, got_buf + 32, ok);
    ts_write(o.g.fd, "raw", 3);
    sm_test_read_exact(o.peer, got_buf, 3, T);
    assert_memory_equal(got_buf, "raw", 3);
    one_end(&o, fds0);
}

static bool
rd_has(void *ctx)
{
    one *o = ctx;
    return o->s->rd && o->s->rd->len == 6;
}

/* Outside callbacks: the unfinished message read so far is the rest. */
static void
test_rest_outside_callbacks(void **state)
{
    (void)state;
    int fds0 = sm_test_count_fds();
    one o = {0};
    one_start(&o, &one_opts);
    ts_write(o.peer,
             "\0\0\0\x09"
             "ab",
             6); /* half of a 9-byte message... */
    assert_true(ts_run_until(o.loop, rd_has, &o, T));
    SM_ASSERT_OK(sm_stream_detach(o.s, on_detached, &o.g));
    assert_int_equal(o.g.calls, 0); /* never inside the call */
    assert_true(ts_run_until(o.loop, closed, &o.g, T));
    assert_int_equal(o.msgs, 0);
    assert_int_equal(o.g.status, 0);
    assert_int_equal(o.g.rest_len, 6);
    assert_memory_equal(o.g.rest,
                        "\0\0\0\x09"
                        "ab",
                        6);
    assert_true(nothing_to_read(o.peer));
    one_end(&o, fds0);
}

/* Nothing read ahead: no rest at all (NULL, 0). */
static void
test_no_rest(void **state)
{
    (void)state;
    int fds0 = sm_test_count_fds();
    one o = {0};
    one_start(&o, &one_opts);
    uint8_t buf[64];
    ts_write(o.peer, buf, frame(buf, "SWITCH"));
    assert_true(ts_run_until(o.loop, closed, &o.g, T));
    assert_int_equal(o.g.status, 0);
    assert_null(o.g.rest);
    assert_int_equal(o.g.rest_len, 0);
    assert_true(o.g.fd >= 0);
    one_end(&o, fds0);
}

/* Bytes the peer sends while the queue goes out: whether a receive took
 * them before the transport stopped (held, on io_uring) or they wait in
 * the socket, the rest and the socket have them once, in order. */
static void
late_msg(sm_stream *s, const sm_frame_msg *m)
{
    one_msg(s, m);
    ts_write(O->peer, "late-bytes", 10);
}

static const sm_stream_opts late_opts = {.spec = &ts_len32,
                                         .on_message = late_msg,
                                         .on_close = on_close_got,
                                         .max_queued = 64u << 20,
                                         .high_water = 32u << 20};

static void
test_late_bytes(void **state)
{
    (void)state;
    int fds0 = sm_test_count_fds();
    one o = {.flood = 1u << 20};
    one_start(&o, &late_opts);
    ts_raw raw;
    uint8_t buf[64];
    ts_write(o.peer, buf, frame(buf, "SWITCH"));
    int peer = o.peer;
    o.peer = dup(peer); /* the raw reader closes its own */
    ts_raw_start(o.loop, &raw, peer, true);
    assert_true(ts_run_until(o.loop, closed, &o.g, T));
    assert_int_equal(o.g.status, 0);
    assert_true(o.g.rest_len <= 10);
    char late[10];
    if (o.g.rest_len) memcpy(late, o.g.rest, o.g.rest_len);
    if (o.g.rest_len < 10)
        sm_test_read_exact(o.g.fd, (uint8_t *)late + o.g.rest_len, 10 - o.g.rest_len, T);
    assert_memory_equal(late, "late-bytes", 10);
    assert_true(nothing_to_read(o.g.fd));
    ts_raw_close(&raw);
    one_end(&o, fds0);
}

/* ---- the flush: a large queue, a late reader, failures ------------------- */

static bool
switched(void *ctx)
{
    one *o = ctx;
    return o->msgs > 0;
}

/* 8 MiB queued before "OK": the callback waits until the last byte is with
 * the kernel, while the peer drains late. */
static void
test_flush_first(void **state)
{
    (void)state;
    int fds0 = sm_test_count_fds();
    one o = {.flood = 8u << 20};
    one_start(&o, &one_opts);
    uint8_t buf[64];
    ts_write(o.peer, buf, frame(buf, "SWITCH"));
    /* The peer does not read: the queue cannot go out, no callback. */
    for (int i = 0; i < 20; i++)
        ts_run_once(o.loop, 5);
    assert_int_equal(o.g.calls, 0);
    assert_true(sm_stream_queued(o.s) > 0);
    /* Now it reads (a raw watcher on the same loop), and only after the
     * last byte the callback runs. */
    ts_raw raw;
    ts_raw_start(o.loop, &raw, o.peer, true);
    assert_true(ts_run_until(o.loop, closed, &o.g, T));
    assert_int_equal(o.g.status, 0);
    assert_int_equal(o.g.queued_at_cb, 0);
    size_t total = (8u << 20) / 65536 * (65536 + 4) + 6;
    /* Whatever the raw reader has not seen is in the socket already. */
    sm_io_stop(&raw.io);
    size_t have = raw.len;
    uint8_t *all = malloc(total);
    assert_non_null(all);
    memcpy(all, raw.buf, have);
    if (have < total) sm_test_read_exact(o.peer, all + have, total - have, T);
    assert_true(nothing_to_read(o.peer));
    assert_memory_equal(all + total - 2, "OK", 2);
    assert_int_equal(ts_count_frames(&ts_len32, all, total), 8u * 16 + 1);
    free(all);
    free(raw.buf);
    one_end(&o, fds0);
}

static const sm_stream_opts timeout_opts = {.spec = &ts_len32,
                                            .on_message = one_msg,
                                            .on_close = on_close_got,
                                            .write_timeout_ms = 100,
                                            .max_queued = 64u << 20,
                                            .high_water = 32u << 20};

/* The peer never reads: the write timeout ends the detach. */
static void
test_flush_timeout(void **state)
{
    (void)state;
    int fds0 = sm_test_count_fds();
    one o = {.flood = 4u << 20};
    one_start(&o, &timeout_opts);
    uint8_t buf[64];
    ts_write(o.peer, buf, frame(buf, "SWITCH"));
    assert_true(ts_run_until(o.loop, closed, &o.g, T));
    assert_int_equal(o.g.calls, 1);
    assert_true(o.g.cb_first);
    SM_ASSERT_ERR(o.g.status, -ETIMEDOUT);
    SM_ASSERT_ERR(o.g.reason, -ETIMEDOUT);
    assert_int_equal(o.g.fd, -1);
    assert_null(o.g.rest);
    one_end(&o, fds0);
}

/* sm_stream_close during the flush aborts it: SM_ERR_CLOSED, fd closed. */
static void
test_close_during(void **state)
{
    (void)state;
    int fds0 = sm_test_count_fds();
    one o = {.flood = 4u << 20};
    one_start(&o, &one_opts);
    uint8_t buf[64];
    ts_write(o.peer, buf, frame(buf, "SWITCH"));
    assert_true(ts_run_until(o.loop, switched, &o, T));
    assert_true(o.s->flags & SM__S_DETACH);
    assert_true(sm_stream_queued(o.s) > 0);
    SM_ASSERT_OK(sm_stream_close(o.s));
    assert_true(ts_run_until(o.loop, closed, &o.g, T));
    assert_int_equal(o.g.calls, 1);
    SM_ASSERT_ERR(o.g.status, SM_ERR_CLOSED);
    SM_ASSERT_ERR(o.g.reason, SM_ERR_CLOSED);
    assert_int_equal(o.g.fd, -1);
    one_end(&o, fds0);
}

/* The peer resets (TCP, closed with unread data) while the queue goes out. */
static void
test_peer_reset(void **state)
{
    (void)state;
    int fds0 = sm_test_count_fds();
    one o = {.flood = 8u << 20, .g = {.fd = -1}};
    O = &o;
    o.loop = ts_loop();
    ts_acceptor a = {.data = &o.g};
    ts_acceptor_start(o.loop, &a, "tcp://127.0.0.1:0", &one_opts);
    char where[64];
    snprintf(where, sizeof where, "tcp://127.0.0.1:%u", (unsigned)a.port);
    sm_conn *c;
    char why[256];
    SM_ASSERT_OK(sm_conn_dial(&c, where, "len32be", T, why, sizeof why));
    assert_int_equal(sm_conn_send(c, "SWITCH", 6, T), 6);
    /* The server queued 8 MiB; once its detach waits, reset. */
    assert_true(ts_run_until(o.loop, switched, &o, T));
    int fd = sm_conn_fd(c);
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    SM_ASSERT_OK(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg));
    sm_conn_free(c);
    assert_true(ts_run_until(o.loop, closed, &o.g, T));
    assert_int_equal(o.g.calls, 1);
    assert_true(o.g.status == -ECONNRESET || o.g.status == -EPIPE);
    assert_int_equal(o.g.reason, o.g.status);
    assert_int_equal(o.g.fd, -1);
    ts_acceptor_stop(&a);
    ts_loop_free(o.loop);
    assert_int_equal(sm_test_count_fds(), fds0);
}

/* ---- a dialed stream --------------------------------------------------- */

static void
dialed_connect(sm_stream *s)
{
    got *g = sm_stream_get_data(s);
    SM_ASSERT_OK(sm_stream_detach(s, on_detached, g));
}

static void
dialed_msg(sm_stream *s, const sm_frame_msg *m)
{
    (void)s;
    (void)m;
}

static const sm_stream_opts dialed_opts = {.spec = &ts_len32,
                                           .on_message = dialed_msg,
                                           .on_close = on_close_got,
                                           .on_connect = dialed_connect,
                                           .reconnect = true};

static const sm_stream_opts accepted_opts = {.spec = &ts_len32, .on_message = dialed_msg};

static void
close_accepted(ts_acceptor *a, sm_stream *s)
{
    (void)a;
    SM_ASSERT_OK(sm_stream_close(s));
}

static bool
fd_readable(void *ctx)
{
    struct pollfd pf = {.fd = *(int *)ctx, .events = POLLIN};
    return poll(&pf, 1, 0) == 1;
}

static bool
accepted_one(void *ctx)
{
    return ((ts_acceptor *)ctx)->accepted > 0;
}

/* Detached once connected, a reconnecting stream reconnects no more; while
 * still connecting there is nothing to detach. */
static void
test_dialed(void **state)
{
    (void)state;
    int fds0 = sm_test_count_fds();
    sm_loop *l = ts_loop();
    ts_acceptor a = {.on_stream = close_accepted};
    ts_acceptor_start(l, &a, "tcp://127.0.0.1:0", &accepted_opts);
    char where[64];
    snprintf(where, sizeof where, "tcp://127.0.0.1:%u", (unsigned)a.port);
    got g = {.fd = -1};
    sm_stream *s;
    SM_ASSERT_OK(sm_stream_dial(&s, l, where, &dialed_opts, &g, NULL, 0));
    SM_ASSERT_ERR(sm_stream_detach(s, on_detached, &g), -ENOTCONN);
    assert_true(ts_run_until(l, closed, &g, T));
    assert_true(ts_run_until(l, accepted_one, &a, T)); /* and closed at once */
    assert_int_equal(g.calls, 1);
    assert_int_equal(g.status, 0);
    SM_ASSERT_ERR(g.reason, SM_ERR_DETACHED);
    assert_true(g.fd >= 0);
    /* The server side closed at accept: the handed-off socket sees it. */
    uint8_t b;
    assert_true(ts_run_until(l, fd_readable, &g.fd, T)); /* the close completes on the loop */
    assert_true(read(g.fd, &b, 1) <= 0);
    close(g.fd);
    ts_acceptor_stop(&a);
    ts_loop_free(l);
    assert_int_equal(sm_test_count_fds(), fds0);
}

/* ---- a splice: both sides of a proxy handed off, raw bytes copied -------- */

typedef struct splice_run {
    one side[2]; /* [0]: the client's side, [1]: the upstream's */
} splice_run;

static got G2[2];

static void
proxy_msg(sm_stream *s, const sm_frame_msg *m)
{
    got *g = sm_stream_get_data(s);
    if (m->len == 5 && memcmp(m->data, "HELLO", 5) == 0) {
        SM_ASSERT_OK(sm_stream_send(s, "RAW", 3));
        SM_ASSERT_OK(sm_stream_detach(s, on_detached, g));
    }
}

static const sm_stream_opts proxy_opts = {
    .spec = &line, .on_message = proxy_msg, .on_close = on_close_got};

static bool
both_closed(void *ctx)
{
    (void)ctx;
    return G2[0].closes && G2[1].closes;
}

/* Copy what from has into to until from's EOF (both blocking-polled). */
static size_t
pump(int from, int to)
{
    size_t moved = 0;
    int64_t end = sm_test_now_ms() + T;
    for (;;) {
        assert_true(sm_test_now_ms() < end);
        struct pollfd p = {.fd = from, .events = POLLIN};
        if (poll(&p, 1, 100) <= 0) continue;
        char buf[4096];
        ssize_t n = read(from, buf, sizeof buf);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        assert_true(n >= 0);
        if (n == 0) return moved;
        ts_write(to, buf, (size_t)n);
        moved += (size_t)n;
    }
}

static void
test_splice(void **state)
{
    (void)state;
    int fds0 = sm_test_count_fds();
    memset(G2, 0, sizeof G2);
    sm_loop *l = ts_loop();
    int c[2], u[2]; /* c[1]: the client, u[1]: the upstream server */
    ts_pair(c);
    ts_pair(u);
    sm_stream *sc, *su;
    SM_ASSERT_OK(sm_stream_new_take(&sc, l, c[0], &proxy_opts, &G2[0]));
    SM_ASSERT_OK(sm_stream_new_take(&su, l, u[0], &proxy_opts, &G2[1]));
    ts_write(c[1], "HELLO\nclient-raw-1", 18);
    ts_write(u[1], "HELLO\nupstream-raw-1", 20);
    assert_true(ts_run_until(l, both_closed, NULL, T));
    for (int i = 0; i < 2; i++) {
        assert_int_equal(G2[i].status, 0);
        assert_int_equal(G2[i].reason, SM_ERR_DETACHED);
        assert_true(G2[i].fd >= 0);
    }
    /* Each side's rest goes to the other first, then bytes as they come. */
    ts_write(G2[1].fd, G2[0].rest, G2[0].rest_len);
    ts_write(G2[0].fd, G2[1].rest, G2[1].rest_len);
    ts_write(c[1], "client-raw-2", 12);
    shutdown(c[1], SHUT_WR);
    assert_int_equal(pump(G2[0].fd, G2[1].fd), 12);
    ts_write(u[1], "upstream-raw-2", 14);
    shutdown(u[1], SHUT_WR);
    assert_int_equal(pump(G2[1].fd, G2[0].fd), 14);
    char buf[64];
    sm_test_read_exact(u[1], (uint8_t *)buf, 4 + 12 + 12, T);
    assert_memory_equal(buf, "RAW\nclient-raw-1client-raw-2", 28);
    sm_test_read_exact(c[1], (uint8_t *)buf, 4 + 14 + 14, T);
    assert_memory_equal(buf, "RAW\nupstream-raw-1upstream-raw-2", 32);
    for (int i = 0; i < 2; i++) {
        free(G2[i].rest);
        close(G2[i].fd);
    }
    close(c[1]);
    close(u[1]);
    ts_loop_free(l);
    assert_int_equal(sm_test_count_fds(), fds0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_starttls),
        cmocka_unit_test(test_tls_refused),
        cmocka_unit_test(test_rest_from_on_message),
        cmocka_unit_test(test_rest_outside_callbacks),
        cmocka_unit_test(test_no_rest),
        cmocka_unit_test(test_late_bytes),
        cmocka_unit_test(test_flush_first),
        cmocka_unit_test(test_flush_timeout),
        cmocka_unit_test(test_close_during),
        cmocka_unit_test(test_peer_reset),
        cmocka_unit_test(test_splice),
        cmocka_unit_test(test_dialed),
    };
    return cmocka_run_group_tests(tests, sm_test_tls_setup, sm_test_tls_teardown);
}
