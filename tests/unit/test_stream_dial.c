/* stream module, part 3: connecting from the loop (refused, timeout, address
 * racing, Unix sockets, sending before the connection is up) and
 * reconnecting (unsent messages kept or reported, giving up, closing while
 * waiting). Runs once per backend. */
#include "test_stream.h"

#include "internal.h" /* SM__DIAL_STAGGER_MS */

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>

typedef struct dctx {
    int connects, closes, reconnects, msgs, dropped;
    int reason;
    int attempts[16], reasons[16], delays[16];
    char detail[256];
    bool close_in_reconnect;
    int64_t connected_at, closed_at;
} dctx;

static void
d_connect(sm_stream *s)
{
    dctx *d = sm_stream_get_data(s);
    d->connects++;
    d->connected_at = sm_test_now_ms();
    assert_true(sm_stream_fd(s) >= 0);
}

static void
d_close(sm_stream *s, int reason)
{
    dctx *d = sm_stream_get_data(s);
    d->closes++;
    d->reason = reason;
    d->closed_at = sm_test_now_ms();
    snprintf(d->detail, sizeof d->detail, "%s", sm_stream_error_detail(s));
}

static void
d_msg(sm_stream *s, const sm_frame_msg *m)
{
    dctx *d = sm_stream_get_data(s);
    (void)m;
    d->msgs++;
}

static void
d_dropped(sm_stream *s, const sm_frame_msg *m)
{
    dctx *d = sm_stream_get_data(s);
    if (d->closes) d->msgs = -1000; /* reported before on_close, never after */
    (void)m;
    d->dropped++;
}

static void
d_reconnect(sm_stream *s, int reason, int attempt, int delay_ms)
{
    dctx *d = sm_stream_get_data(s);
    if (d->reconnects < 16) {
        d->attempts[d->reconnects] = attempt;
        d->reasons[d->reconnects] = reason;
        d->delays[d->reconnects] = delay_ms;
    }
    d->reconnects++;
    if (d->close_in_reconnect) SM_ASSERT_OK(sm_stream_close(s));
}

static bool
d_closed(void *ctx)
{
    return ((dctx *)ctx)->closes > 0;
}

static void
echo(sm_stream *s, const sm_frame_msg *m)
{
    sm_stream_send(s, m->data, m->len);
}

static const sm_stream_opts echo_opts = {.spec = &ts_len32, .on_message = echo};

static const sm_stream_opts plain_opts = {
    .spec = &ts_len32,
    .on_message = d_msg,
    .on_close = d_close,
    .on_connect = d_connect,
    .on_dropped = d_dropped,
    .connect_timeout_ms = 5000,
};

/* A port nobody listens on (bound, then released). */
static uint16_t
free_port(void)
{
    int fd = (int)SM_ASSERT_OK(sm_listen("tcp://127.0.0.1:0", 0));
    sm_endpoint ep;
    SM_ASSERT_OK(sm_sock_local(fd, &ep));
    close(fd);
    return ep.port;
}

static sm_addr
addr_of(const char *ip, uint16_t port)
{
    sm_addr a = {0};
    struct sockaddr_in *in = (struct sockaddr_in *)&a.ss;
    in->sin_family = AF_INET;
    in->sin_port = htons(port);
    assert_int_equal(inet_pton(AF_INET, ip, &in->sin_addr), 1);
    a.len = sizeof *in;
    return a;
}

/* ---- connecting --------------------------------------------------------------- */

static void
test_dial_refused(void **state)
{
    (void)state;
    sm_loop *l = ts_loop();
    char ep[64];
    snprintf(ep, sizeof ep, "tcp://127.0.0.1:%u", free_port());
    dctx d = {0};
    sm_stream *s = NULL;
    SM_ASSERT_OK(sm_stream_dial(&s, l, ep, &plain_opts, &d, NULL, 0));
    assert_int_equal(sm_stream_fd(s), -1);
    assert_false(sm_stream_is_connected(s));
    SM_ASSERT_ERR(sm_stream_send(s, "one", 3), 0);
    SM_ASSERT_ERR(sm_stream_send(s, "two", 3), 0);
    assert_int_equal(d.closes, 0); /* never inside the call */
    assert_true(ts_run_until(l, d_closed, &d, 5000));
    SM_ASSERT_ERR(d.reason, -ECONNREFUSED);
    assert_int_equal(d.connects, 0);
    assert_int_equal(d.dropped, 2); /* queued, never sent: reported */
    assert_int_equal(d.msgs, 0);
    print_message("%s\n", d.detail);
    assert_non_null(strstr(d.detail, ep));
    ts_loop_free(l);
}

static void
test_dial_timeout(void **state)
{
    (void)state;
    int filler;
    uint16_t port;
    int hole = sm_test_black_hole(&filler, &port);
    if (hole < 0) {
        print_message("this kernel answers a full backlog: skipped\n");
        skip();
        return;
    }
    static const sm_stream_opts o = {
        .spec = &ts_len32, .on_message = d_msg, .on_close = d_close, .connect_timeout_ms = 150};
    sm_loop *l = ts_loop();
    char ep[64];
    snprintf(ep, sizeof ep, "tcp://127.0.0.1:%u", port);
    dctx d = {0};
    sm_stream *s = NULL;
    int64_t t0 = sm_test_now_ms();
    SM_ASSERT_OK(sm_stream_dial(&s, l, ep, &o, &d, NULL, 0));
    assert_true(ts_run_until(l, d_closed, &d, 5000));
    int64_t ms = d.closed_at - t0;
    print_message("timed out after %lld ms: %s\n", (long long)ms, d.detail);
    SM_ASSERT_ERR(d.reason, -ETIMEDOUT);
    assert_true(ms >= 145); /* never early; how late is load's */
    ts_loop_free(l);
    close(filler);
    close(hole);
}

static bool
echoed(void *ctx)
{
    return ((dctx *)ctx)->msgs >= 3;
}

static void
test_dial_race(void **state)
{
    (void)state;
    sm_loop *l = ts_loop();
    ts_acceptor a = {0};
    ts_acceptor_start(l, &a, "tcp://127.0.0.1:0", &echo_opts);

    /* Refusing addresses first: each refusal starts the next attempt at
     * once. Waiting out the stagger delay instead would take REFUSALS *
     * 250 ms (3.75 s) to reach the listener; the connect timeout is half
     * that, so such a dial fails, while a working one needs a few ms. */
    enum { REFUSALS = SM__DIAL_MAX_ADDRS - 1 };
    sm_addr list[SM__DIAL_MAX_ADDRS];
    uint16_t refusing = free_port();
    for (int i = 0; i < REFUSALS; i++)
        list[i] = addr_of("127.0.0.1", refusing);
    list[REFUSALS] = addr_of("127.0.0.1", a.port);
    sm_stream_opts race_opts = plain_opts;
    race_opts.connect_timeout_ms = REFUSALS * SM__DIAL_STAGGER_MS / 2;
    dctx d = {0}, d2 = {0}; /* on_close runs after the close calls below */
    sm_stream *s = NULL;
    int64_t t0 = sm_test_now_ms();
    SM_ASSERT_OK(sm__stream_dial_addrs(&s, l, list, REFUSALS + 1, &race_opts, &d));
    for (int i = 0; i < 3; i++)
        SM_ASSERT_ERR(sm_stream_send(s, "abc", 3), 0);
    assert_true(ts_run_until(l, echoed, &d, 10000));
    assert_int_equal(d.connects, 1);
    assert_int_equal(d.closes, 0);
    print_message("last address after %d refusals: %lld ms\n", REFUSALS,
                  (long long)(d.connected_at - t0));
    sm_stream_close(s);

    /* A silent address first: the next one starts after the stagger delay and
     * wins; the pending attempt is closed. */
    int filler;
    uint16_t hole_port;
    int hole = sm_test_black_hole(&filler, &hole_port);
    if (hole >= 0) {
        list[0] = addr_of("127.0.0.1", hole_port);
        list[1] = addr_of("127.0.0.1", a.port);
        t0 = sm_test_now_ms();
        SM_ASSERT_OK(sm__stream_dial_addrs(&s, l, list, 2, &plain_opts, &d2));
        for (int i = 0; i < 3; i++)
            SM_ASSERT_ERR(sm_stream_send(s, "abc", 3), 0);
        assert_true(ts_run_until(l, echoed, &d2, 5000));
        int64_t ms = d2.connected_at - t0;
        print_message("second address won after %lld ms\n", (long long)ms);
        assert_true(ms >= SM__DIAL_STAGGER_MS - 10); /* never early; how late is load's */
        sm_stream_close(s);
        close(filler);
        close(hole);
    }
    ts_acceptor_stop(&a);
    ts_loop_free(l);
}

static void
test_dial_unix_and_early_shutdown(void **state)
{
    (void)state;
    char dir[256], ep[320];
    sm_test_mkdtemp(dir, sizeof dir);
    snprintf(ep, sizeof ep, "unix:%s/s", dir);
    sm_loop *l = ts_loop();
    ts_acceptor a = {0};
    ts_acceptor_start(l, &a, ep, &echo_opts);
    dctx d = {0};
    sm_stream *s = NULL;
    SM_ASSERT_OK(sm_stream_dial(&s, l, ep, &plain_opts, &d, NULL, 0));
    /* Queued before the connection exists, then FIN once written: the echo
     * server answers everything and closes too; a clean close both ways. */
    for (int i = 0; i < 3; i++)
        SM_ASSERT_ERR(sm_stream_send(s, "unix", 4), 0);
    SM_ASSERT_OK(sm_stream_shutdown(s));
    assert_true(ts_run_until(l, d_closed, &d, 5000));
    assert_int_equal(d.connects, 1);
    assert_int_equal(d.msgs, 3);
    SM_ASSERT_ERR(d.reason, 0);
    ts_acceptor_stop(&a);
    ts_loop_free(l);
    sm_test_rmdir(dir);
}

/* ---- reconnecting ------------------------------------------------------------- */

enum { RN = 2000, RLEN = 1024, REXTRA = 10 };

typedef struct rtest {
    sm_loop *l;
    uint16_t port;
    sm_io old_listen; /* the first server: accepts, never reads */
    int old_conn;
    ts_acceptor next; /* the second server */
    bool relistened, skipped;
    sm_stream *client;
    dctx c;
    int first_seq, next_seq, got, bad;
    int drop_first, drop_next, drop_bad;
} rtest;

static rtest *g_rt;

static void
rmsg_make(uint8_t *p, unsigned seq)
{
    ts_msg_fill(p, 7, seq, RLEN);
    p[0] = (uint8_t)(seq >> 8);
    p[1] = (uint8_t)seq;
}

static unsigned
rmsg_seq(const sm_frame_msg *m)
{
    return m->len >= 2 ? (unsigned)m->data[0] << 8 | m->data[1] : 0xffff;
}

static bool
rmsg_ok(const sm_frame_msg *m)
{
    uint8_t p[RLEN];
    rmsg_make(p, rmsg_seq(m));
    return m->len == RLEN && memcmp(p, m->data, RLEN) == 0;
}

static void
old_accept(sm_io *w, unsigned events)
{
    (void)events;
    int fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) g_rt->old_conn = fd;
}

static void
r_connect(sm_stream *s)
{
    rtest *rt = g_rt;
    d_connect(s);
    if (rt->c.connects != 1) return;
    uint8_t p[RLEN];
    for (unsigned i = 0; i < RN; i++) {
        rmsg_make(p, i);
        assert_true(sm_stream_send(s, p, RLEN) >= 0);
    }
}

static void
r_reconnect(sm_stream *s, int reason, int attempt, int delay_ms)
{
    rtest *rt = g_rt;
    d_reconnect(s, reason, attempt, delay_ms);
    if (attempt == 1) {
        /* Sent while disconnected: kept for the next connection either way. */
        uint8_t p[RLEN];
        for (unsigned i = RN; i < RN + REXTRA; i++) {
            rmsg_make(p, i);
            assert_true(sm_stream_send(s, p, RLEN) >= 0);
        }
    }
    if (attempt == 2 && !rt->relistened) {
        /* The server comes back on the same port. */
        sm_endpoint ep = {.kind = SM_ENDPOINT_TCP, .port = rt->port};
        strcpy(ep.host, "127.0.0.1");
        int fd = sm_listen_endpoint(&ep, NULL, 0, NULL, NULL, 0);
        if (fd < 0) {
            print_message("port %u taken meanwhile (%s): skipped\n", rt->port, sm_err_name(fd));
            rt->skipped = true;
            sm_stream_close(s);
            return;
        }
        SM_ASSERT_OK(sm_sock_set_nonblock(fd, true));
        rt->relistened = true;
        sm_io_init(rt->l, &rt->next.io, fd, ts_acceptor_cb);
        SM_ASSERT_OK(sm_io_start(&rt->next.io, SM_READ));
    }
}

static void
r_dropped(sm_stream *s, const sm_frame_msg *m)
{
    rtest *rt = g_rt;
    (void)s;
    int seq = (int)rmsg_seq(m);
    if (!rmsg_ok(m)) rt->drop_bad++;
    if (rt->c.dropped++ == 0)
        rt->drop_first = seq;
    else if (seq != rt->drop_next)
        rt->drop_bad++;
    rt->drop_next = seq + 1;
}

static void
server_msg(sm_stream *s, const sm_frame_msg *m)
{
    rtest *rt = g_rt;
    (void)s;
    int seq = (int)rmsg_seq(m);
    if (!rmsg_ok(m)) rt->bad++;
    if (rt->got++ == 0)
        rt->first_seq = seq;
    else if (seq != rt->next_seq)
        rt->bad++;
    rt->next_seq = seq + 1;
}

static const sm_stream_opts server_opts = {.spec = &ts_len32, .on_message = server_msg};

static bool
r_done(void *ctx)
{
    rtest *rt = ctx;
    return rt->skipped || rt->c.closes || rt->next_seq == RN + REXTRA;
}

static bool
r_blocked(void *ctx)
{
    rtest *rt = ctx;
    return rt->old_conn >= 0 && rt->client && (rt->client->flags & SM__S_BLOCKED);
}

static void
reconnect_case(sm_stream_unsent policy)
{
    sm_sock_opts sock = {.sndbuf = 16384};
    sm_stream_opts o = {
        .spec = &ts_len32,
        .on_message = d_msg,
        .on_close = d_close,
        .on_connect = r_connect,
        .on_reconnect = r_reconnect,
        .on_dropped = r_dropped,
        .reconnect = true,
        .reconnect_min_ms = 10,
        .reconnect_max_ms = 40,
        .unsent = policy,
        .sock = &sock,
        .max_queued = 8 << 20,
    };
    rtest *rt = calloc(1, sizeof *rt);
    g_rt = rt;
    rt->old_conn = -1;
    rt->l = ts_loop();
    rt->next.opts = &server_opts;
    int lfd = (int)SM_ASSERT_OK(sm_listen("tcp://127.0.0.1:0", 0));
    sm_endpoint bound;
    SM_ASSERT_OK(sm_sock_local(lfd, &bound));
    SM_ASSERT_OK(sm_sock_set_nonblock(lfd, true));
    rt->port = bound.port;
    sm_io_init(rt->l, &rt->old_listen, lfd, old_accept);
    SM_ASSERT_OK(sm_io_start(&rt->old_listen, SM_READ));
    char ep[64];
    snprintf(ep, sizeof ep, "tcp://127.0.0.1:%u", rt->port);
    SM_ASSERT_OK(sm_stream_dial(&rt->client, rt->l, ep, &o, &rt->c, NULL, 0));

    /* The first server takes the connection but reads nothing: our queue
     * backs up. Then it goes away with the bytes unread (a reset). */
    assert_true(ts_run_until(rt->l, r_blocked, rt, 5000));
    size_t queued = sm_stream_queued(rt->client);
    assert_true(queued > 0);
    sm_io_close(&rt->old_listen, NULL);
    close(rt->old_conn);

    assert_true(ts_run_until(rt->l, r_done, rt, 20000));
    if (rt->skipped) {
        ts_loop_free(rt->l);
        free(rt);
        skip();
        return;
    }
    print_message("queued at loss %zu; reconnects %d (reasons %s, %s); new server got %d..%d; "
                  "dropped %d from %d\n",
                  queued, rt->c.reconnects, sm_err_name(rt->c.reasons[0]),
                  sm_err_name(rt->c.reasons[1]), rt->first_seq, rt->next_seq - 1, rt->c.dropped,
                  rt->drop_first);
    assert_int_equal(rt->c.closes, 0);
    assert_int_equal(rt->c.connects, 2);
    assert_true(rt->c.reconnects >= 2);
    assert_int_equal(rt->c.attempts[0], 1);
    assert_int_equal(rt->c.attempts[1], 2);
    assert_true(rt->c.reasons[0] == -ECONNRESET || rt->c.reasons[0] == -EPIPE);
    SM_ASSERT_ERR(rt->c.reasons[1], -ECONNREFUSED);
    for (int i = 0; i < rt->c.reconnects && i < 16; i++)
        assert_true(rt->c.delays[i] >= 5 && rt->c.delays[i] <= 40);
    assert_int_equal(rt->bad, 0);
    assert_int_equal(rt->drop_bad, 0);
    assert_int_equal(rt->next_seq, RN + REXTRA);
    if (policy == SM_UNSENT_KEEP) {
        /* The new connection starts with the first message the old one did
         * not finish, from its first byte; nothing after it is lost. */
        assert_int_equal(rt->c.dropped, 0);
        assert_true(rt->first_seq > 0 && rt->first_seq < RN);
        assert_int_equal(rt->got, RN + REXTRA - rt->first_seq);
    } else {
        /* Unsent messages are reported, in order, up to the loss; what was
         * sent after the loss arrives. */
        assert_true(rt->c.dropped > 0);
        assert_int_equal(rt->drop_first + rt->c.dropped, RN);
        assert_int_equal(rt->first_seq, RN);
        assert_int_equal(rt->got, REXTRA);
    }
    sm_stream_close(rt->client);
    ts_acceptor_stop(&rt->next);
    /* The second server's stream closes when the client does. */
    for (int i = 0; i < 50 && sm_loop_run(rt->l, SM_RUN_NOWAIT) > 0; i++)
        ;
    ts_loop_free(rt->l);
    free(rt);
    g_rt = NULL;
}

static void
test_reconnect_keep(void **state)
{
    (void)state;
    reconnect_case(SM_UNSENT_KEEP);
}

static void
test_reconnect_drop(void **state)
{
    (void)state;
    reconnect_case(SM_UNSENT_DROP);
}

static void
test_reconnect_gives_up(void **state)
{
    (void)state;
    static const sm_stream_opts o = {
        .spec = &ts_len32,
        .on_message = d_msg,
        .on_close = d_close,
        .on_connect = d_connect,
        .on_reconnect = d_reconnect,
        .reconnect = true,
        .reconnect_min_ms = 4,
        .reconnect_max_ms = 16,
        .reconnect_max_attempts = 3,
    };
    sm_loop *l = ts_loop();
    char ep[64];
    snprintf(ep, sizeof ep, "tcp://127.0.0.1:%u", free_port());
    dctx d = {0};
    sm_stream *s = NULL;
    SM_ASSERT_OK(sm_stream_dial(&s, l, ep, &o, &d, NULL, 0));
    assert_true(ts_run_until(l, d_closed, &d, 5000));
    assert_int_equal(d.reconnects, 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(d.attempts[i], i + 1);
        SM_ASSERT_ERR(d.reasons[i], -ECONNREFUSED);
        /* Jittered exponential: 4, 8, 16 ms, each between half and all. */
        int full = 4 << i;
        assert_true(d.delays[i] >= full / 2 && d.delays[i] <= full);
    }
    SM_ASSERT_ERR(d.reason, -ECONNREFUSED);
    assert_int_equal(d.connects, 0);
    ts_loop_free(l);

    /* Closing from on_reconnect ends it: one report, a local close. */
    static const sm_stream_opts o2 = {
        .spec = &ts_len32,
        .on_message = d_msg,
        .on_close = d_close,
        .on_reconnect = d_reconnect,
        .reconnect = true,
    };
    l = ts_loop();
    dctx d2 = {.close_in_reconnect = true};
    SM_ASSERT_OK(sm_stream_dial(&s, l, ep, &o2, &d2, NULL, 0));
    SM_ASSERT_ERR(sm_stream_send(s, "queued", 6), 0);
    assert_true(ts_run_until(l, d_closed, &d2, 5000));
    assert_int_equal(d2.reconnects, 1);
    SM_ASSERT_ERR(d2.reason, SM_ERR_CLOSED);
    ts_loop_free(l);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dial_refused),
        cmocka_unit_test(test_dial_timeout),
        cmocka_unit_test(test_dial_race),
        cmocka_unit_test(test_dial_unix_and_early_shutdown),
        cmocka_unit_test(test_reconnect_keep),
        cmocka_unit_test(test_reconnect_drop),
        cmocka_unit_test(test_reconnect_gives_up),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
