/* Servers with TLS listeners, in both execution models and on every loop
 * backend: echo over tls://, mutual TLS, and the handshake's limits: a
 * silent client closed at the handshake deadline, a plain-TCP client
 * refused as not TLS, both counted and logged with OpenSSL's reason (at
 * most 10 lines a second under a flood). openssl s_client as the client
 * (TLS 1.3 and 1.2; its renegotiation request refused), and a TLS client
 * that stops reading (backpressure through the cipher). */
#include "server_util.h"
#include "tls_test.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>

#include <sockmsg/loop.h>
#include <sockmsg/stream.h>

static void
serve_tls(void **state)
{
    const srv_variant *v = srv_variant_of(state);
    char why[256];
    sm_tls_config *sc, *cc;
    sc = sm_test_tls_server("leaf.pem", "leaf.key");
    cc = sm_test_tls_client(true);

    srv_log lg = {.lock = PTHREAD_MUTEX_INITIALIZER};
    sm_server_opts o = {
        .listen = (const char *[]){"tls://127.0.0.1:0", NULL},
        .on_message = sm_server_handler_echo,
        .threads = 2,
        .tls = sc,
        .log = srv_log_cb,
        .log_data = &lg,
    };
    srv_apply(&o, v);
    char ep[128];
    sm_server *srv = srv_start(&o, ep, sizeof ep);
    assert_memory_equal(ep, "tls://", 6);

    /* Echo over TLS from several clients, one after the other. */
    for (int i = 0; i < 4; i++) {
        sm_conn *c;
        int rc = sm_conn_dial_tls(&c, ep, "len32be", cc, 5000, why, sizeof why);
        if (rc < 0) fail_msg("dial %s: %s: %s", ep, sm_err_name(rc), why);
        for (int k = 0; k < 50; k++)
            cli_echo(c, "over tls");
        SM_ASSERT_OK(sm_conn_shutdown(c));
        sm_frame_msg m;
        assert_int_equal(sm_conn_recv(c, &m, 5000), 0); /* the server's close_notify */
        sm_conn_free(c);
    }
    SM_WAIT_FOR(srv_stats(srv).closes[SM_CLOSE_CLEAN] == 4, 10000);

    /* Plain TCP at the TLS port. */
    sm_endpoint e;
    SM_ASSERT_OK(sm_server_endpoint(srv, 0, &e));
    e.tls = 0;
    int fd = SM_ASSERT_OK(sm_dial_endpoint(&e, NULL, 5000, NULL, 0));
    SM_ASSERT_OK(sm_send_all(fd, "GET / HTTP/1.0\r\n\r\n", 18, 5000, NULL));
    char buf[256];
    while (sm_recv_some(fd, buf, sizeof buf, 5000) > 0) {
    }
    close(fd);
    int64_t until = sm_test_now_ms() + 10000;
    while (srv_stats(srv).closes[SM_CLOSE_TLS] == 0 && sm_test_now_ms() < until)
        nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
    sm_server_stats st = srv_stats(srv);
    if (st.closes[SM_CLOSE_TLS] != 1) {
        for (int k = 0; k < SM_CLOSE_KINDS; k++)
            fprintf(stderr, "%s=%llu ", sm_server_close_kind_name(k),
                    (unsigned long long)st.closes[k]);
        fprintf(stderr, "\nmodel %d accept %d log:\n%s\n", v->model, v->accept, lg.text);
        fail();
    }
    SM_WAIT_FOR(srv_log_has(&lg, "TLS handshake failed (SM_ERR_TLS_NOT_TLS): "), 5000);
    assert_true(srv_log_has(&lg, "not TLS (plain HTTP on a TLS port?)"));

    /* A client that connects and says nothing is closed at the deadline
     * (short from here on: before, a loaded machine could reach it). */
    SM_ASSERT_OK(sm_tls_config_set_handshake_timeout(sc, 200));
    fd = SM_ASSERT_OK(sm_dial_endpoint(&e, NULL, 5000, NULL, 0));
    ssize_t n = sm_recv_some(fd, buf, sizeof buf, 10000);
    assert_true(n == 0 || n == -ECONNRESET);
    close(fd);
    SM_WAIT_FOR(srv_stats(srv).closes[SM_CLOSE_TIMEOUT] == 1, 10000);
    SM_WAIT_FOR(srv_log_has(&lg, "TLS handshake"), 5000);

    sm_server_free(srv);
    sm_tls_config_free(cc);
    sm_tls_config_free(sc);
}

/* ---- openssl s_client as the peer ----------------------------------------- */

/* Read s_client's stdout until a line equal to want (it prints the
 * certificates and the session first); false at EOF or after 10 s. */
static bool
sclient_saw(int out, const char *want)
{
    char line[1024];
    int64_t end = sm_test_now_ms() + 10000;
    for (int i = 0; i < 400 && sm_test_now_ms() < end; i++) {
        int n = sm_test_read_line(out, line, sizeof line, (int)(end - sm_test_now_ms()));
        if (n < 0) return false;
        if (!strcmp(line, want)) return true;
    }
    return false;
}

typedef struct sclient {
    int pid, in, out, err;
} sclient;

/* Start `openssl s_client` against port, verifying with the test CA, with
 * the interactive commands on (neither -quiet nor -ign_eof: EOF on its
 * stdin ends the session with close_notify; 'R' renegotiates). */
static sclient
sclient_start(uint16_t port, const char *version)
{
    char hp[32];
    snprintf(hp, sizeof hp, "127.0.0.1:%u", (unsigned)port);
    char *argv[] = {SM_OPENSSL,
                    "s_client",
                    "-connect",
                    hp,
                    "-CAfile",
                    (char *)sm_test_cert("ca.pem"),
                    "-servername",
                    "localhost",
                    "-verify_return_error",
                    (char *)version,
                    NULL};
    sclient c;
    c.pid = sm_test_spawn2(argv, &c.in, &c.out, &c.err);
    return c;
}

static void
sclient_send(const sclient *c, const char *text)
{
    assert_int_equal(write(c->in, text, strlen(text)), (ssize_t)strlen(text));
}

static void
sclient_end(sclient *c, int want_status, char *err, size_t cap)
{
    sm_test_read_all(c->err, err, cap, 10000);
    int st = sm_test_wait(c->pid, 10000);
    if (st != want_status)
        fail_msg("s_client exited %d, want %d; stderr:\n%s", st, want_status, err);
    close(c->in);
    close(c->out);
    close(c->err);
}

/* A sockmsg TLS server (line framing) driven by openssl s_client: lines
 * echoed over TLS 1.3 and 1.2 and ended by close_notify; over TLS 1.2 the
 * client's renegotiation request ('R') is refused (OpenSSL's
 * no_renegotiation alert; s_client gives up the session), that connection
 * alone is closed as a TLS error, and a connection open meanwhile goes on. */
static void
serve_s_client(void **state)
{
    const srv_variant *v = srv_variant_of(state);
    sm_tls_config *sc = sm_test_tls_server("leaf.pem", "leaf.key");
    sm_tls_config *cc = sm_test_tls_client(true);
    srv_log lg = {.lock = PTHREAD_MUTEX_INITIALIZER};
    sm_server_opts o = {
        .listen = (const char *[]){"tls://127.0.0.1:0", NULL},
        .frame = "line",
        .on_message = sm_server_handler_echo,
        .threads = 2,
        .tls = sc,
        .log = srv_log_cb,
        .log_data = &lg,
    };
    srv_apply(&o, v);
    char ep[128], why[256];
    sm_server *srv = srv_start(&o, ep, sizeof ep);
    sm_endpoint e;
    SM_ASSERT_OK(sm_server_endpoint(srv, 0, &e));

    /* A bystander, open throughout. */
    sm_conn *by;
    int rc = sm_conn_dial_tls(&by, ep, "line", cc, 5000, why, sizeof why);
    if (rc < 0) fail_msg("dial %s: %s: %s", ep, sm_err_name(rc), why);
    cli_echo(by, "before");

    char err[8192];
    static const char *versions[] = {"-tls1_3", "-tls1_2"};
    for (int k = 0; k < 2; k++) {
        sclient c = sclient_start(e.port, versions[k]);
        sclient_send(&c, "hello from s_client\n");
        if (!sclient_saw(c.out, "hello from s_client")) fail_msg("%s: no echo", versions[k]);
        sclient_send(&c, "two\nthree\n");
        assert_true(sclient_saw(c.out, "two"));
        assert_true(sclient_saw(c.out, "three"));
        close(c.in); /* EOF: s_client sends close_notify and exits */
        c.in = -1;
        sclient_end(&c, 0, err, sizeof err);
        SM_WAIT_FOR(srv_stats(srv).closes[SM_CLOSE_CLEAN] == (uint64_t)k + 1, 10000);
    }

    /* Renegotiation over TLS 1.2: refused, and only that session ends. */
    sclient c = sclient_start(e.port, "-tls1_2");
    sclient_send(&c, "first\n");
    assert_true(sclient_saw(c.out, "first"));
    sclient_send(&c, "R\n");
    sclient_end(&c, 1, err, sizeof err); /* stdin still open: it gave up by itself */
    if (!strstr(err, "RENEGOTIATING") || !strstr(err, "no renegotiation"))
        fail_msg("s_client said:\n%s", err);
    SM_WAIT_FOR(srv_stats(srv).closes[SM_CLOSE_TLS] == 1, 10000);
    SM_WAIT_FOR(srv_log_has(&lg, "TLS failed"), 5000);
    cli_echo(by, "after");
    assert_int_equal(srv_stats(srv).closes[SM_CLOSE_CLEAN], 2);

    sm_conn_free(by);
    sm_server_free(srv);
    sm_tls_config_free(cc);
    sm_tls_config_free(sc);
}

/* ---- a flood of bad handshakes -------------------------------------------- */

static int
count_lines(srv_log *l, const char *what)
{
    pthread_mutex_lock(&l->lock);
    int n = 0;
    for (const char *p = l->text; (p = strstr(p, what)); p++)
        n++;
    pthread_mutex_unlock(&l->lock);
    return n;
}

static void
garbage_client(const sm_endpoint *e)
{
    int fd = SM_ASSERT_OK(sm_dial_endpoint(e, NULL, 5000, NULL, 0));
    SM_ASSERT_OK(sm_send_all(fd, "GET / HTTP/1.0\r\n\r\n", 18, 5000, NULL));
    char buf[256];
    while (sm_recv_some(fd, buf, sizeof buf, 5000) > 0) {
    }
    close(fd);
}

/* Every failed handshake is counted, but the log takes at most 10 lines a
 * second; the next line logged says how many it left out. */
static void
flood_log_limited(void **state)
{
    (void)state;
    sm_tls_config *sc = sm_test_tls_server("leaf.pem", "leaf.key");
    srv_log lg = {.lock = PTHREAD_MUTEX_INITIALIZER};
    sm_server_opts o = {
        .listen = (const char *[]){"tls://127.0.0.1:0", NULL},
        .on_message = sm_server_handler_echo,
        .threads = 1,
        .tls = sc,
        .log = srv_log_cb,
        .log_data = &lg,
    };
    char ep[128];
    sm_server *srv = srv_start(&o, ep, sizeof ep);
    sm_endpoint e;
    SM_ASSERT_OK(sm_server_endpoint(srv, 0, &e));
    e.tls = 0;
    enum { FLOOD = 60 };
    int64_t t0 = sm_test_now_ms();
    for (int i = 0; i < FLOOD; i++)
        garbage_client(&e);
    SM_WAIT_FOR(srv_stats(srv).closes[SM_CLOSE_TLS] == FLOOD, 10000);
    int64_t secs = (sm_test_now_ms() - t0) / 1000 + 1;
    int lines = count_lines(&lg, "TLS handshake failed");
    if (lines > 10 * (secs + 1)) fail_msg("%d lines in %lld s", lines, (long long)secs);
    if (lines < FLOOD) {
        /* Some were left out: a line in a later second says so (one bad
         * client every 20 ms until then: the budget is per second). */
        int64_t end = sm_test_now_ms() + 5000;
        int extra = 0;
        while (!srv_log_has(&lg, "more TLS failures not logged") && sm_test_now_ms() < end &&
               extra < 250) {
            garbage_client(&e);
            extra++;
            nanosleep(&(struct timespec){.tv_nsec = 20000000}, NULL);
        }
        if (!srv_log_has(&lg, "more TLS failures not logged"))
            fail_msg("%d lines, %d more clients; log:\n%s", lines, extra, lg.text);
    }
    sm_server_free(srv);
    sm_tls_config_free(sc);
}

/* ---- a TLS client that stops reading ---------------------------------------- */

#define BP_MSG   (16 << 10)
#define BP_COUNT 2048 /* 32 MiB each way */
#define BP_HIGH  (256 << 10)

typedef struct bp_client {
    sm_stream *s;
    size_t msgs, bytes;
    int closed, reason;
    char detail[256];
} bp_client;

typedef struct bp_world {
    bp_client deaf, by;
    size_t last_queued;
    int64_t last_change;
} bp_world;

static void
bp_msg(sm_stream *s, const sm_frame_msg *m)
{
    bp_client *c = sm_stream_get_data(s);
    c->msgs++;
    c->bytes += m->len;
}

static void
bp_close(sm_stream *s, int reason)
{
    bp_client *c = sm_stream_get_data(s);
    c->closed++;
    c->reason = reason;
    snprintf(c->detail, sizeof c->detail, "%s", sm_stream_error_detail(s));
    c->s = NULL;
}

static void
bp_guard(sm_timer *t)
{
    (void)t;
}

/* Run l until p(w) or ms pass. */
static bool
bp_run(sm_loop *l, bp_world *w, bool (*p)(bp_world *), int ms)
{
    int64_t end = sm_test_now_ms() + ms;
    sm_timer guard;
    sm_timer_init(l, &guard, bp_guard);
    SM_ASSERT_OK(sm_timer_start(&guard, 20, 20));
    while (!p(w) && sm_test_now_ms() < end)
        SM_ASSERT_OK(sm_loop_run(l, SM_RUN_ONCE));
    sm_timer_stop(&guard);
    return p(w);
}

/* The deaf client's queue has not moved for 300 ms (a bound to look
 * after, not an assertion: nothing drains it while both sides wait). */
static bool
bp_stuck(bp_world *w)
{
    if (!w->deaf.s || w->deaf.closed) return true;
    size_t q = sm_stream_queued(w->deaf.s);
    int64_t now = sm_test_now_ms();
    if (q != w->last_queued) {
        w->last_queued = q;
        w->last_change = now;
    }
    return now - w->last_change >= 300;
}

static bool
bp_by_done(bp_world *w)
{
    return w->by.msgs >= 100 || w->by.closed;
}

static bool
bp_deaf_done(bp_world *w)
{
    return w->deaf.msgs >= BP_COUNT || w->deaf.closed;
}

/* A TLS client sends 32 MiB of echo requests and reads nothing: the
 * server's queue for it reaches high_water, the server stops reading it
 * (the kernel buffers fill, the client's sends wait in its own queue), so
 * what the server holds stays bounded and it is not closed; another TLS
 * client is served meanwhile; once the first reads again, every echo
 * arrives. Loop model (the thread model has no queue: its writes block). */
static void
serve_deaf_tls_client(void **state)
{
    (void)state;
    sm_tls_config *sc = sm_test_tls_server("leaf.pem", "leaf.key");
    sm_tls_config *cc = sm_test_tls_client(true);
    static const sm_sock_opts small = {.sndbuf = 64 << 10, .rcvbuf = 64 << 10};
    sm_server_opts o = {
        .listen = (const char *[]){"tls://127.0.0.1:0", NULL},
        .on_message = sm_server_handler_echo,
        .threads = 1,
        .tls = sc,
        .high_water = BP_HIGH,
        .sock = &small,
    };
    char ep[128], why[256];
    sm_server *srv = srv_start(&o, ep, sizeof ep);
    static const sm_frame_spec len32 = {.kind = SM_FRAME_LENGTH, .len_width = 4};
    sm_stream_opts co = {
        .spec = &len32,
        .on_message = bp_msg,
        .on_close = bp_close,
        .tls = cc,
        .sock = &small,
        .max_queued = (size_t)64 << 20,
        .high_water = (size_t)64 << 20,
    };
    sm_loop *l;
    SM_ASSERT_OK(sm_loop_new(&l, NULL));
    bp_world w = {.last_change = sm_test_now_ms()};
    SM_ASSERT_OK(sm_stream_dial(&w.deaf.s, l, ep, &co, &w.deaf, why, sizeof why));
    SM_ASSERT_OK(sm_stream_read_stop(w.deaf.s));
    static uint8_t msg[BP_MSG];
    memset(msg, 'q', sizeof msg);
    for (int i = 0; i < BP_COUNT; i++)
        SM_ASSERT_OK(sm_stream_send(w.deaf.s, msg, sizeof msg));
    assert_true(bp_run(l, &w, bp_stuck, 30000));
    assert_int_equal(w.deaf.closed, 0);
    sm_server_stats st = srv_stats(srv);
    /* What the server took: its queue up to high_water and one read past
     * it, the kernel's buffers (64 KiB asked, doubled, on each socket of
     * both directions), TLS's overhead: far from the 32 MiB sent. */
    uint64_t held = st.bytes_in;
    print_message("server read %llu bytes of %d, client queue %zu\n", (unsigned long long)held,
                  BP_COUNT * BP_MSG, sm_stream_queued(w.deaf.s));
    assert_true(held >= BP_HIGH);
    assert_true(held <= (uint64_t)4 << 20);
    assert_true(sm_stream_queued(w.deaf.s) > (size_t)16 << 20);
    assert_int_equal(st.closes[SM_CLOSE_SLOW_CONSUMER], 0);

    /* Another client meanwhile: served as usual. */
    SM_ASSERT_OK(sm_stream_dial(&w.by.s, l, ep, &co, &w.by, why, sizeof why));
    for (int i = 0; i < 100; i++)
        SM_ASSERT_OK(sm_stream_send(w.by.s, "bystander", 9));
    assert_true(bp_run(l, &w, bp_by_done, 20000));
    assert_int_equal(w.by.msgs, 100);
    assert_int_equal(w.by.bytes, 900);

    /* Reading again: everything arrives, nothing was dropped. */
    SM_ASSERT_OK(sm_stream_read_start(w.deaf.s));
    assert_true(bp_run(l, &w, bp_deaf_done, 60000));
    if (w.deaf.closed) fail_msg("closed: %s %s", sm_err_name(w.deaf.reason), w.deaf.detail);
    assert_int_equal(w.deaf.msgs, BP_COUNT);
    assert_int_equal(w.deaf.bytes, (size_t)BP_COUNT * BP_MSG);
    assert_int_equal(srv_stats(srv).closes[SM_CLOSE_SLOW_CONSUMER], 0);

    sm_stream_close(w.deaf.s);
    sm_stream_close(w.by.s);
    for (int i = 0; i < 100 && sm_loop_run(l, SM_RUN_NOWAIT) > 0; i++) {
    }
    SM_ASSERT_OK(sm_loop_free(l));
    sm_server_free(srv);
    sm_tls_config_free(cc);
    sm_tls_config_free(sc);
}

static void
refuses_bad_config(void **state)
{
    (void)state;
    sm_server_opts o = {
        .listen = (const char *[]){"tls://127.0.0.1:0", NULL},
        .on_message = sm_server_handler_echo,
    };
    sm_server *srv;
    char why[256];
    SM_ASSERT_ERR(sm_server_new(&srv, &o, why, sizeof why), -EINVAL);
    assert_non_null(strstr(why, "needs opts.tls"));
}

static const srv_variant loop_rp = {SM_SERVER_LOOP, SM_ACCEPT_REUSEPORT, 2};
static const srv_variant loop_dp = {SM_SERVER_LOOP, SM_ACCEPT_DISPATCH, 2};
static const srv_variant thread_m = {SM_SERVER_THREAD, SM_ACCEPT_DEFAULT, 8};

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate(serve_tls, (void *)&loop_rp),
        cmocka_unit_test_prestate(serve_tls, (void *)&loop_dp),
        cmocka_unit_test_prestate(serve_tls, (void *)&thread_m),
        cmocka_unit_test_prestate(serve_s_client, (void *)&loop_rp),
        cmocka_unit_test_prestate(serve_s_client, (void *)&thread_m),
        cmocka_unit_test(flood_log_limited),
        cmocka_unit_test(serve_deaf_tls_client),
        cmocka_unit_test(refuses_bad_config),
    };
    return cmocka_run_group_tests(tests, sm_test_tls_setup, sm_test_tls_teardown);
}
