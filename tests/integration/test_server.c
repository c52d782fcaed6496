/* Servers, in both execution models (and both ways the loop model accepts):
 * endpoints, limits, timeouts, PROXY headers, broadcasts, handler calls,
 * stopping. Run once per loop backend. */
#include "server_util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <sockmsg/proxy.h>

static const srv_variant loop_reuseport = {SM_SERVER_LOOP, SM_ACCEPT_REUSEPORT, 2};
static const srv_variant loop_dispatch = {SM_SERVER_LOOP, SM_ACCEPT_DISPATCH, 3};
static const srv_variant threads = {SM_SERVER_THREAD, SM_ACCEPT_DEFAULT, 0};

/* What the handlers saw, for assertions. */
typedef struct seen {
    atomic_int opens, closes;
    atomic_int reasons[SM_CLOSE_KINDS];
} seen;

static void
count_open(sm_peer *p)
{
    seen *s = sm_server_get_data(sm_peer_server(p));
    if (s) atomic_fetch_add(&s->opens, 1);
}

static void
count_close(sm_peer *p, int reason)
{
    seen *s = sm_server_get_data(sm_peer_server(p));
    if (!s) return;
    atomic_fetch_add(&s->reasons[sm_server_close_kind(reason)], 1);
    atomic_fetch_add(&s->closes, 1);
}

/* ---- endpoints ----------------------------------------------------------------- */

static void
test_endpoints(void **state)
{
    const srv_variant *v = srv_variant_of(state);
    char dir[256], path_ep[400], abstract_ep[128];
    sm_test_mkdtemp(dir, sizeof dir);
    snprintf(path_ep, sizeof path_ep, "unix:%s/srv.sock", dir);
    static atomic_int counter;
    snprintf(abstract_ep, sizeof abstract_ep, "unix:@sm-srv-test-%d-%d", (int)getpid(),
             atomic_fetch_add(&counter, 1));
    const char *eps[] = {"tcp://127.0.0.1:0", path_ep, abstract_ep, "tcp://localhost:0"};
    sm_server_opts o = {.listen = eps, .listen_count = 4, .on_message = sm_server_handler_echo};
    srv_apply(&o, v);
    char first[128];
    sm_server *srv = srv_start(&o, first, sizeof first);
    assert_int_equal(sm_server_endpoint_count(srv), 4);
    for (int i = 0; i < 4; i++) {
        sm_endpoint e;
        char ep[400];
        SM_ASSERT_OK(sm_server_endpoint(srv, i, &e));
        SM_ASSERT_OK(sm_endpoint_format(&e, ep, sizeof ep));
        if (e.kind == SM_ENDPOINT_TCP) assert_int_not_equal(e.port, 0);
        /* Several clients, so that each loop gets some. */
        for (int k = 0; k < 4; k++) {
            sm_conn *c = cli_dial(ep);
            char msg[500];
            snprintf(msg, sizeof msg, "hello %d/%d via %s", i, k, ep);
            cli_echo(c, msg);
            sm_conn_free(c);
        }
    }
    SM_ASSERT_ERR(sm_server_endpoint(srv, 4, &(sm_endpoint){0}), -EINVAL);
    sm_server_stop(srv);
    SM_ASSERT_OK(sm_server_wait(srv));
    sm_server_stats st = srv_stats(srv);
    assert_int_equal(st.opened, 16);
    assert_int_equal(st.msgs_in, 16);
    assert_int_equal(st.msgs_out, 16);
    assert_int_equal(st.current, 0);
    sm_server_free(srv);
    struct stat sb;
    char file[300];
    snprintf(file, sizeof file, "%s/srv.sock", dir);
    if (stat(file, &sb) == 0) fail_msg("%s was left behind", file);
    sm_test_rmdir(dir);
}

static void
test_bad_options(void **state)
{
    (void)state;
    sm_server *srv = NULL;
    char why[256];
    const char *one[] = {"tcp://127.0.0.1:0", NULL};
    sm_server_opts o = {.listen = one};
    SM_ASSERT_ERR(sm_server_new(&srv, &o, why, sizeof why), -EINVAL);
    assert_non_null(strstr(why, "on_message"));
    o.on_message = sm_server_handler_echo;
    o.listen = NULL;
    SM_ASSERT_ERR(sm_server_new(&srv, &o, why, sizeof why), -EINVAL);
    const char *bad[] = {"tcp://127.0.0.1:99999", NULL};
    o.listen = bad;
    SM_ASSERT_ERR(sm_server_new(&srv, &o, why, sizeof why), SM_ERR_ENDPOINT);
    assert_non_null(strstr(why, "99999"));
    o.listen = one;
    o.idle_timeout_ms = -5;
    SM_ASSERT_ERR(sm_server_new(&srv, &o, why, sizeof why), -EINVAL);
    o.idle_timeout_ms = 0;
    sm_frame_spec spec = {.kind = SM_FRAME_FIXED, .fixed_len = 0};
    o.spec = &spec;
    SM_ASSERT_ERR(sm_server_new(&srv, &o, why, sizeof why), SM_ERR_SPEC);
    o.spec = NULL;
    o.heartbeat_timeout_ms = -1;
    SM_ASSERT_ERR(sm_server_new(&srv, &o, why, sizeof why), -EINVAL);
    o.heartbeat_timeout_ms = 0;
    /* A 2-byte ping cannot be framed as fixed:4. */
    sm_frame_spec four = {.kind = SM_FRAME_FIXED, .fixed_len = 4};
    o.spec = &four;
    o.heartbeat_ms = 100;
    o.ping = "hb";
    o.ping_len = 2;
    SM_ASSERT_ERR(sm_server_new(&srv, &o, why, sizeof why), SM_ERR_SPEC);
    assert_non_null(strstr(why, "ping"));
    o.ping = NULL;
    SM_ASSERT_ERR(sm_server_new(&srv, &o, why, sizeof why), -EINVAL);
    /* eof framing has no room for a ping among the replies. */
    sm_frame_spec eof = {.kind = SM_FRAME_EOF};
    o.spec = &eof;
    o.ping_len = 0;
    SM_ASSERT_ERR(sm_server_new(&srv, &o, why, sizeof why), SM_ERR_SPEC);
    assert_non_null(strstr(why, "eof"));
    o = (sm_server_opts){.listen = one, .on_message = sm_server_handler_echo};

    /* A port someone else holds (without SO_REUSEPORT) is refused, also
     * when the server would use SO_REUSEPORT itself. */
    int lfd = SM_ASSERT_OK(sm_listen("tcp://127.0.0.1:0", 0));
    sm_endpoint e;
    SM_ASSERT_OK(sm_sock_local(lfd, &e));
    char taken[64];
    snprintf(taken, sizeof taken, "tcp://127.0.0.1:%u", e.port);
    const char *busy[] = {taken, NULL};
    o.listen = busy;
    o.threads = 2;
    SM_ASSERT_ERR(sm_server_new(&srv, &o, why, sizeof why), -EADDRINUSE);
    assert_non_null(strstr(why, taken + 6));
    close(lfd);
    assert_null(srv);

    /* Never started: free without start; stop before start forbids it. */
    o.listen = one;
    SM_ASSERT_OK(sm_server_new(&srv, &o, why, sizeof why));
    SM_ASSERT_ERR(sm_server_wait(srv), -EINVAL);
    sm_server_stop(srv);
    SM_ASSERT_ERR(sm_server_start(srv), SM_ERR_CLOSED);
    sm_server_free(srv);
    SM_ASSERT_OK(sm_server_new(&srv, &o, why, sizeof why));
    sm_server_free(srv);

    assert_ptr_equal(sm_server_handler_by_name("echo"), sm_server_handler_echo);
    assert_ptr_equal(sm_server_handler_by_name("chat"), sm_server_handler_chat);
    assert_null(sm_server_handler_by_name("nope"));
    assert_string_equal(sm_server_handler_name(1), "discard");
    assert_null(sm_server_handler_name(3));
    assert_int_equal(sm_server_close_kind(-ECONNRESET), SM_CLOSE_RESET);
    assert_int_equal(sm_server_close_kind(-ECANCELED), SM_CLOSE_DRAIN);
    assert_string_equal(sm_server_close_kind_name(SM_CLOSE_SLOW_CONSUMER), "slow_consumer");
    assert_string_equal(sm_server_close_kind_name(99), "?");
}

/* ---- limits --------------------------------------------------------------------- */

static void
test_max_conns(void **state)
{
    const srv_variant *v = srv_variant_of(state);
    srv_log log = {.lock = PTHREAD_MUTEX_INITIALIZER};
    const char *one[] = {"tcp://127.0.0.1:0", NULL};
    sm_server_opts o = {
        .listen = one, .on_message = sm_server_handler_echo, .log = srv_log_cb, .log_data = &log};
    srv_apply(&o, v);
    /* The thread model's limit is its thread count. */
    if (v->model == SM_SERVER_THREAD)
        o.threads = 5;
    else
        o.max_conns = 5;
    char ep[128];
    sm_server *srv = srv_start(&o, ep, sizeof ep);
    sm_conn *c[5];
    for (int i = 0; i < 5; i++) {
        c[i] = cli_dial(ep);
        cli_echo(c[i], "in");
    }
    sm_conn *extra = cli_dial(ep);
    /* The thread model commits a thread on the first message: the refusal
     * comes then (the loop model refuses at accept: the send may fail). */
    (void)sm_conn_send(extra, "in", 2, SM_CONN_DEFAULT);
    cli_expect_end(extra, 5000);
    sm_conn_free(extra);
    sm_server_stats st = srv_stats(srv);
    assert_int_equal(st.closes[SM_CLOSE_REFUSED], 1);
    assert_int_equal(st.current, 5);
    assert_true(srv_log_has(&log, "connection refused"));

    sm_conn_free(c[0]);
    SM_WAIT_FOR(srv_stats(srv).current == 4, 5000);
    c[0] = cli_dial(ep);
    cli_echo(c[0], "in again");
    for (int i = 0; i < 5; i++)
        sm_conn_free(c[i]);
    sm_server_free(srv);
}

static void
test_oversize(void **state)
{
    const srv_variant *v = srv_variant_of(state);
    seen s = {0};
    sm_frame_spec spec;
    SM_ASSERT_OK(sm_frame_spec_parse(&spec, "len32be,max=1K", NULL, 0));
    const char *one[] = {"tcp://127.0.0.1:0", NULL};
    sm_server_opts o = {.listen = one,
                        .spec = &spec,
                        .on_message = sm_server_handler_echo,
                        .on_close = count_close,
                        .data = &s};
    srv_apply(&o, v);
    char ep[128];
    sm_server *srv = srv_start(&o, ep, sizeof ep);
    sm_conn *c = cli_dial(ep);
    cli_echo(c, "small is fine");
    static const uint8_t big_header[4] = {0, 0, 8, 0}; /* 2048 bytes announced */
    SM_ASSERT_OK(sm_send_all(sm_conn_fd(c), big_header, 4, 5000, NULL));
    cli_expect_end(c, 5000);
    sm_conn_free(c);
    SM_WAIT_FOR(atomic_load(&s.closes) == 1, 5000);
    assert_int_equal(atomic_load(&s.reasons[SM_CLOSE_OVERSIZE]), 1);
    assert_int_equal(srv_stats(srv).closes[SM_CLOSE_OVERSIZE], 1);
    sm_server_free(srv);
}

/* Every request asks for 64 KiB: a client that never reads its replies. */
static void
big_reply(sm_peer *p, const sm_frame_msg *m)
{
    (void)m;
    static uint8_t block[64 * 1024];
    sm_peer_send(p, block, sizeof block);
}

static void
test_slow_consumer(void **state)
{
    const srv_variant *v = srv_variant_of(state);
    seen s = {0};
    const char *one[] = {"tcp://127.0.0.1:0", NULL};
    static const sm_sock_opts small_buffers = {.sndbuf = 4096};
    sm_server_opts o = {.listen = one,
                        .on_message = big_reply,
                        .on_close = count_close,
                        .data = &s,
                        .sock = &small_buffers,
                        .high_water = 128 * 1024,
                        .max_queued = 256 * 1024,
                        .write_timeout_ms = 300};
    srv_apply(&o, v);
    char ep[128];
    sm_server *srv = srv_start(&o, ep, sizeof ep);
    sm_endpoint e;
    SM_ASSERT_OK(sm_endpoint_parse(&e, ep, NULL, 0));
    int fd = SM_ASSERT_OK(sm_dial_endpoint(&e, &(sm_sock_opts){.rcvbuf = 4096}, 5000, NULL, 0));
    /* 100 requests in one write; the replies (6.4 MB) are never read. */
    uint8_t reqs[100 * 5];
    for (int i = 0; i < 100; i++)
        memcpy(reqs + i * 5, "\0\0\0\1x", 5);
    SM_ASSERT_OK(sm_send_all(fd, reqs, sizeof reqs, 5000, NULL));
    SM_WAIT_FOR(atomic_load(&s.closes) == 1, 10000);
    assert_int_equal(atomic_load(&s.reasons[SM_CLOSE_SLOW_CONSUMER]), 1);
    assert_int_equal(srv_stats(srv).closes[SM_CLOSE_SLOW_CONSUMER], 1);
    close(fd);
    sm_server_free(srv);
}

/* ---- slow clients ----------------------------------------------------------------- */

enum { SLOW = 40 };

/* SLOW clients that hold a slot without finishing a message: half send
 * nothing, half one header byte. */
static void
dial_slow(const char *ep, int slow[SLOW])
{
    sm_endpoint e;
    SM_ASSERT_OK(sm_endpoint_parse(&e, ep, NULL, 0));
    for (int i = 0; i < SLOW; i++) {
        slow[i] = SM_ASSERT_OK(sm_dial_endpoint(&e, NULL, 5000, NULL, 0));
        if (i % 2) SM_ASSERT_OK(sm_send_all(slow[i], "\0", 1, 1000, NULL));
    }
}

/* While slow clients hold their slots, a healthy client is served: every
 * echo comes back. Their deadlines are out of reach here, so a server that
 * waited on a slow client (a blocking read of a header) would hold the echo
 * until cli_echo's 10 s limit and fail; no latency is measured. */
static void
test_slowloris_served(void **state)
{
    const srv_variant *v = srv_variant_of(state);
    seen s = {0};
    const char *one[] = {"tcp://127.0.0.1:0", NULL};
    sm_server_opts o = {.listen = one,
                        .on_message = sm_server_handler_echo,
                        .on_close = count_close,
                        .data = &s,
                        .first_message_timeout_ms = 600000};
    srv_apply(&o, v);
    char ep[128];
    sm_server *srv = srv_start(&o, ep, sizeof ep);
    int slow[SLOW];
    dial_slow(ep, slow);
    /* Connected (in the thread model they never become peers: no thread is
     * committed before a whole first message). */
    SM_WAIT_FOR(srv_stats(srv).current == SLOW, 10000);
    sm_conn *good = cli_dial(ep);
    for (int i = 0; i < 200; i++)
        cli_echo(good, "ping");
    /* The slow ones are all still there: nothing closed them meanwhile. */
    assert_int_equal(atomic_load(&s.closes), 0);
    assert_int_equal(srv_stats(srv).current, SLOW + 1);
    for (int i = 0; i < SLOW; i++) {
        char b;
        SM_ASSERT_ERR(sm_recv_some(slow[i], &b, 1, 0), -ETIMEDOUT);
        close(slow[i]);
    }
    sm_conn_free(good);
    sm_server_free(srv);
}

/* The deadlines close every slow client (first-message timeout) and a client
 * that went quiet after one message (idle timeout), each as a timeout; a
 * client that keeps talking outlives both. */
static void
test_slowloris_closed(void **state)
{
    const srv_variant *v = srv_variant_of(state);
    seen s = {0};
    enum { FIRST_MS = 300, IDLE_MS = 600 };
    const char *one[] = {"tcp://127.0.0.1:0", NULL};
    sm_server_opts o = {.listen = one,
                        .on_message = sm_server_handler_echo,
                        .on_close = count_close,
                        .data = &s,
                        .first_message_timeout_ms = FIRST_MS,
                        .idle_timeout_ms = IDLE_MS};
    srv_apply(&o, v);
    char ep[128];
    sm_server *srv = srv_start(&o, ep, sizeof ep);
    int slow[SLOW];
    dial_slow(ep, slow);
    sm_conn *quiet = cli_dial(ep);
    cli_echo(quiet, "then silence");

    /* The healthy client talks every 4 ms (150 times within its idle
     * timeout) until every other client was closed and it has itself been
     * connected for twice the idle timeout. The time here is the scenario's
     * length, not a measurement; the deadline only bounds a failing run. */
    sm_conn *good = cli_dial(ep);
    int64_t start = sm_test_now_ms(), deadline = start + 30000;
    /* Counted from the stats: in the thread model the slow clients never
     * become peers (no first message), so on_close sees only the quiet one. */
    while (srv_stats(srv).closes[SM_CLOSE_TIMEOUT] < SLOW + 1 ||
           sm_test_now_ms() - start < 2 * IDLE_MS) {
        if (sm_test_now_ms() > deadline)
            fail_msg("after 30 s, %d of %d slow clients closed",
                     (int)srv_stats(srv).closes[SM_CLOSE_TIMEOUT], SLOW + 1);
        cli_echo(good, "ping");
        nanosleep(&(struct timespec){.tv_nsec = 4 * 1000000}, NULL);
    }

    /* Every slow client saw its end, the quiet one too. */
    for (int i = 0; i < SLOW; i++) {
        char b;
        ssize_t n = sm_recv_some(slow[i], &b, 1, 10000);
        if (n > 0 || n == -ETIMEDOUT) fail_msg("slow client %d: %zd", i, n);
        close(slow[i]);
    }
    cli_expect_end(quiet, 10000);
    /* The healthy one was never idle long enough to be closed. */
    cli_echo(good, "still here");
    int peers = v->model == SM_SERVER_THREAD ? 1 : SLOW + 1; /* those on_close saw */
    if (atomic_load(&s.closes) != peers)
        for (int k = 0; k < 8; k++)
            print_message("close kind %d: %d\n", k, atomic_load(&s.reasons[k]));
    assert_int_equal(atomic_load(&s.closes), peers);
    assert_int_equal(srv_stats(srv).closes[SM_CLOSE_TIMEOUT], SLOW + 1);
    sm_conn_free(good);
    sm_conn_free(quiet);
    sm_server_free(srv);
    assert_int_equal(atomic_load(&s.reasons[SM_CLOSE_TIMEOUT]), peers);
}

/* ---- first-message deadlines and close details --------------------------------------- */

static atomic_int first_details, stop_details;

/* count_close, and whether sm_peer_error_detail explains the close. */
static void
detail_close(sm_peer *p, int reason)
{
    const char *d = sm_peer_error_detail(p);
    if (reason == -ETIMEDOUT && strstr(d, "first-message timeout"))
        atomic_fetch_add(&first_details, 1);
    if (reason == -ECANCELED && strstr(d, "server's stop")) atomic_fetch_add(&stop_details, 1);
    count_close(p, reason);
}

/* A timed pause: this test is about deadlines, not waiting for an event. */
static void
sleep_until(int64_t at_ms)
{
    int64_t left = at_ms - sm_test_now_ms();
    if (left > 0)
        nanosleep(&(struct timespec){.tv_sec = left / 1000, .tv_nsec = left % 1000 * 1000000},
                  NULL);
}

static void
test_first_message_deadline(void **state)
{
    const srv_variant *v = srv_variant_of(state);
    seen s = {0};
    atomic_store(&first_details, 0);
    atomic_store(&stop_details, 0);
    enum { FIRST_MS = 1600 };
    const char *one[] = {"tcp://127.0.0.1:0", NULL};
    sm_server_opts o = {.listen = one,
                        .on_message = sm_server_handler_echo,
                        .on_close = detail_close,
                        .data = &s,
                        .first_message_timeout_ms = FIRST_MS};
    srv_apply(&o, v);
    char ep[128];
    sm_server *srv = srv_start(&o, ep, sizeof ep);

    /* A client served at once that leaves: its socket number is likely the
     * next client's. The loop model queues deadlines by socket and checks
     * the peer when one comes due, so a's deadline must not close b. */
    int64_t t0 = sm_test_now_ms();
    sm_conn *a = cli_dial(ep);
    cli_echo(a, "first");
    sm_conn_free(a);
    SM_WAIT_FOR(atomic_load(&s.closes) == 1, 5000);
    /* b arrives at 3/4 of a's deadline and speaks at 9/8 of it: past a's
     * deadline (a was accepted after t0), and at least 5/8 of the timeout
     * (1 s) before b's own. A late test thread can only make b arrive later
     * (its deadline moves with it) or speak later; only a stall of 1 s right
     * before the echo could fail it. */
    sleep_until(t0 + FIRST_MS * 3 / 4);
    sm_conn *b = cli_dial(ep);
    int silent = SM_ASSERT_OK(sm_dial(ep, 5000));
    sleep_until(t0 + FIRST_MS * 9 / 8);
    cli_echo(b, "late but in time");

    /* The silent one is closed by its own deadline, and told why. */
    char byte;
    ssize_t n = sm_recv_some(silent, &byte, 1, 10000);
    if (n != 0 && n != -ECONNRESET) fail_msg("the silent client read %zd", n);
    close(silent);
    /* In the thread model the silent client never became a peer (no thread
     * before a whole first message): only the stats and the log see it. */
    int peer = v->model == SM_SERVER_THREAD ? 0 : 1;
    SM_WAIT_FOR(srv_stats(srv).closes[SM_CLOSE_TIMEOUT] == 1, 5000);
    SM_WAIT_FOR(atomic_load(&s.closes) == 1 + peer, 5000);
    assert_int_equal(atomic_load(&s.reasons[SM_CLOSE_TIMEOUT]), peer);
    assert_int_equal(atomic_load(&first_details), peer);

    /* A forced stop closes b and says so. */
    cli_echo(b, "still here");
    sm_server_stop_now(srv);
    cli_expect_end(b, 5000);
    sm_conn_free(b);
    SM_ASSERT_OK(sm_server_wait(srv));
    assert_int_equal(atomic_load(&s.reasons[SM_CLOSE_DRAIN]), 1);
    assert_int_equal(atomic_load(&stop_details), 1);
    assert_int_equal(atomic_load(&s.closes), 2 + peer);
    sm_server_free(srv);
}

/* ---- PROXY protocol ----------------------------------------------------------------- */

/* Replies with the client's address as the server sees it, and where it came from. */
static void
addr_reply(sm_peer *p, const sm_frame_msg *m)
{
    (void)m;
    sm_addr a;
    char out[200];
    int src = sm_peer_addr(p, &a);
    int n = src < 0 ? snprintf(out, sizeof out, "error %d", src) : 0;
    if (src >= 0) {
        n = sm_addr_format((const struct sockaddr *)&a.ss, a.len, out, sizeof out);
        sm_addr d;
        int dst = sm_peer_local_addr(p, &d);
        n += snprintf(out + n, sizeof out - (size_t)n, " %s", src == 1 ? "proxy" : "socket");
        if (dst == 1) {
            n += snprintf(out + n, sizeof out - (size_t)n, " to ");
            n += sm_addr_format((const struct sockaddr *)&d.ss, d.len, out + n,
                                sizeof out - (size_t)n);
        }
    }
    sm_peer_send(p, out, (size_t)n);
}

/* Send a header and a request (together, or the header in two parts), and
 * return the server's reply in out. */
static void
proxy_ask(const char *ep, const uint8_t *hdr, size_t hlen, bool split, char *out, size_t cap)
{
    sm_conn *c = cli_dial(ep);
    uint8_t buf[600];
    memcpy(buf, hdr, hlen);
    memcpy(buf + hlen, "\0\0\0\2hi", 6);
    int fd = sm_conn_fd(c);
    if (split) {
        size_t half = hlen / 2;
        SM_ASSERT_OK(sm_send_all(fd, buf, half, 5000, NULL));
        /* Not waiting for anything: this only makes the parts arrive apart. */
        nanosleep(&(struct timespec){.tv_nsec = 20 * 1000000}, NULL);
        SM_ASSERT_OK(sm_send_all(fd, buf + half, hlen + 6 - half, 5000, NULL));
    } else {
        SM_ASSERT_OK(sm_send_all(fd, buf, hlen + 6, 5000, NULL));
    }
    sm_frame_msg m;
    int rc = sm_conn_recv(c, &m, SM_CONN_DEFAULT);
    if (rc != 1) fail_msg("no reply: %s", sm_err_name(rc));
    snprintf(out, cap, "%.*s", (int)m.len, (const char *)m.data);
    sm_conn_free(c);
}

static void
test_proxy_protocol(void **state)
{
    const srv_variant *v = srv_variant_of(state);
    seen s = {0};
    srv_log log = {.lock = PTHREAD_MUTEX_INITIALIZER};
    const char *one[] = {"tcp://127.0.0.1:0", NULL};
    sm_server_opts o = {.listen = one,
                        .on_message = addr_reply,
                        .on_open = count_open,
                        .data = &s,
                        .proxy_protocol = true,
                        .first_message_timeout_ms = 500,
                        .log = srv_log_cb,
                        .log_data = &log};
    srv_apply(&o, v);
    char ep[128];
    sm_server *srv = srv_start(&o, ep, sizeof ep);
    uint8_t hdr[512];
    char reply[256];

    sm_addr src4 = sm_test_inet4("203.0.113.7", 4242), dst4 = sm_test_inet4("192.0.2.1", 443);
    ssize_t n = SM_ASSERT_OK(sm_proxy_encode_v1(&src4, &dst4, hdr, sizeof hdr));
    for (int split = 0; split < 2; split++) {
        proxy_ask(ep, hdr, (size_t)n, split, reply, sizeof reply);
        assert_string_equal(reply, "tcp://203.0.113.7:4242 proxy to tcp://192.0.2.1:443");
    }

    sm_addr src6 = sm_test_inet6("2001:db8::7", 5353), dst6 = sm_test_inet6("2001:db8::1", 8443);
    uint8_t id[300];
    memset(id, 'u', sizeof id); /* a long TLV: the header outgrows the small buffer */
    sm_proxy_tlv tlv = {.type = SM_PROXY_TLV_UNIQUE_ID, .len = sizeof id, .value = id};
    n = SM_ASSERT_OK(sm_proxy_encode_v2(&src6, &dst6, SOCK_STREAM, &tlv, 1, hdr, sizeof hdr));
    for (int split = 0; split < 2; split++) {
        proxy_ask(ep, hdr, (size_t)n, split, reply, sizeof reply);
        assert_string_equal(reply, "tcp://[2001:db8::7]:5353 proxy to tcp://[2001:db8::1]:8443");
    }

    /* LOCAL (a health check) and UNKNOWN keep the socket's addresses. */
    n = SM_ASSERT_OK(sm_proxy_encode_v2(NULL, NULL, 0, NULL, 0, hdr, sizeof hdr));
    proxy_ask(ep, hdr, (size_t)n, false, reply, sizeof reply);
    assert_non_null(strstr(reply, "tcp://127.0.0.1:"));
    assert_non_null(strstr(reply, " socket"));
    n = SM_ASSERT_OK(sm_proxy_encode_v1(NULL, NULL, hdr, sizeof hdr));
    proxy_ask(ep, hdr, (size_t)n, false, reply, sizeof reply);
    assert_non_null(strstr(reply, " socket"));
    assert_int_equal(atomic_load(&s.opens), 6);

    /* Malformed headers, garbage, silence and an early EOF never reach the
     * handlers. */
    static const char *const bad[] = {"PROXY TCP4 1.2.3.4.5 5.6.7.8 1 2\r\n",
                                      "GET / HTTP/1.0\r\n\r\n",
                                      "PROXY TCP4 1.2.3.4 5.6.7.8 70000 2\r\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sm_conn *c = cli_dial(ep);
        SM_ASSERT_OK(sm_send_all(sm_conn_fd(c), bad[i], strlen(bad[i]), 5000, NULL));
        cli_expect_end(c, 5000);
        sm_conn_free(c);
    }
    sm_conn *silent = cli_dial(ep);
    cli_expect_end(silent, 5000);
    sm_conn_free(silent);
    sm_conn *early = cli_dial(ep);
    SM_ASSERT_OK(sm_send_all(sm_conn_fd(early), "PROXY TCP4 1.2", 14, 5000, NULL));
    SM_ASSERT_OK(sm_conn_shutdown(early));
    cli_expect_end(early, 5000);
    sm_conn_free(early);

    SM_WAIT_FOR(srv_stats(srv).current == 0, 5000);
    sm_server_stats st = srv_stats(srv);
    assert_int_equal(st.closes[SM_CLOSE_MALFORMED], 3);
    assert_int_equal(st.closes[SM_CLOSE_TIMEOUT], 1);
    assert_int_equal(st.closes[SM_CLOSE_TRUNCATED], 1);
    assert_int_equal(st.opened, 6);
    assert_int_equal(atomic_load(&s.opens), 6);
    assert_true(srv_log_has(&log, "PROXY header from tcp://127.0.0.1:"));
    assert_true(srv_log_has(&log, "70000"));
    sm_server_free(srv);
}

/* ---- broadcasts ------------------------------------------------------------------- */

static void
test_chat(void **state)
{
    const srv_variant *v = srv_variant_of(state);
    const char *one[] = {"tcp://127.0.0.1:0", NULL};
    /* Listeners that never send: a thread model server commits their
     * threads at accept. */
    sm_server_opts o = {
        .listen = one, .on_message = sm_server_handler_chat, .commit = SM_COMMIT_ACCEPT};
    srv_apply(&o, v);
    char ep[128];
    sm_server *srv = srv_start(&o, ep, sizeof ep);
    enum { N = 6 };
    sm_conn *c[N];
    for (int i = 0; i < N; i++)
        c[i] = cli_dial(ep);
    SM_WAIT_FOR(srv_stats(srv).opened == N, 5000);
    for (int i = 0; i < N; i++) {
        char msg[32];
        snprintf(msg, sizeof msg, "from %d", i);
        SM_ASSERT_OK(sm_conn_send(c[i], msg, strlen(msg), SM_CONN_DEFAULT));
    }
    for (int i = 0; i < N; i++) {
        bool got[N] = {false};
        for (int k = 0; k < N - 1; k++) {
            sm_frame_msg m;
            int rc = sm_conn_recv(c[i], &m, SM_CONN_DEFAULT);
            if (rc != 1) fail_msg("client %d, message %d: %s", i, k, sm_err_name(rc));
            char text[32];
            snprintf(text, sizeof text, "%.*s", (int)m.len, (const char *)m.data);
            int from = -1;
            if (sscanf(text, "from %d", &from) != 1 || from < 0 || from >= N)
                fail_msg("client %d got '%.*s'", i, (int)m.len, (const char *)m.data);
            if (from == i) fail_msg("client %d got its own message", i);
            if (got[from]) fail_msg("client %d got %d's message twice", i, from);
            got[from] = true;
        }
    }
    /* And a broadcast from outside any handler reaches everyone. */
    SM_ASSERT_OK(sm_server_broadcast(srv, NULL, -1, "all", 3));
    for (int i = 0; i < N; i++) {
        sm_frame_msg m;
        assert_int_equal(sm_conn_recv(c[i], &m, SM_CONN_DEFAULT), 1);
        assert_memory_equal(m.data, "all", 3);
        sm_conn_free(c[i]);
    }
    sm_server_free(srv);
}

/* ---- handler calls and stopping ------------------------------------------------------ */

/* Handlers run on server threads, where a cmocka assertion cannot fail the
 * test: they count what went wrong instead. */
static atomic_int handler_errors;
#define H_CHECK(cond) ((cond) ? (void)0 : (void)atomic_fetch_add(&handler_errors, 1))

/* "close" closes, "bye" half-closes after the reply, "stop" stops the server. */
static void
commands(sm_peer *p, const sm_frame_msg *m)
{
    if (m->len == 5 && !memcmp(m->data, "close", 5)) {
        H_CHECK(sm_peer_close(p) == 0);
        H_CHECK(sm_peer_close(p) == SM_ERR_CLOSED);
    } else if (m->len == 3 && !memcmp(m->data, "bye", 3)) {
        sm_peer_send(p, "bye", 3);
        H_CHECK(sm_peer_shutdown(p) == 0);
        H_CHECK(sm_peer_send(p, "late", 4) == -EPIPE);
    } else if (m->len == 4 && !memcmp(m->data, "more", 4)) {
        H_CHECK(sm_peer_send(p, "refused", 7) == -EPIPE);
    } else if (m->len == 4 && !memcmp(m->data, "stop", 4)) {
        sm_peer_send(p, "stopping", 8);
        sm_server_stop(sm_peer_server(p));
        H_CHECK(sm_server_is_stopping(sm_peer_server(p)));
        H_CHECK(sm_server_wait(sm_peer_server(p)) == -EDEADLK);
    } else {
        intptr_t n = (intptr_t)sm_peer_get_data(p);
        H_CHECK(n == 0);
        sm_peer_set_data(p, (void *)(n + 1));
        H_CHECK(sm_peer_id(p) > 0);
        sm_server_handler_echo(p, m);
    }
}

static void
test_handler_calls(void **state)
{
    const srv_variant *v = srv_variant_of(state);
    seen s = {0};
    atomic_store(&handler_errors, 0);
    const char *one[] = {"tcp://127.0.0.1:0", NULL};
    sm_server_opts o = {.listen = one, .on_message = commands, .on_close = count_close, .data = &s};
    srv_apply(&o, v);
    char ep[128];
    sm_server *srv = srv_start(&o, ep, sizeof ep);

    sm_conn *a = cli_dial(ep);
    cli_echo(a, "one");
    SM_ASSERT_OK(sm_conn_send(a, "close", 5, SM_CONN_DEFAULT));
    cli_expect_end(a, 5000);
    sm_conn_free(a);
    SM_WAIT_FOR(atomic_load(&s.reasons[SM_CLOSE_LOCAL]) == 1, 5000);

    /* After the server's FIN, messages still arrive; replies are refused. */
    sm_conn *b = cli_dial(ep);
    SM_ASSERT_OK(sm_conn_send(b, "bye", 3, SM_CONN_DEFAULT));
    sm_frame_msg m;
    assert_int_equal(sm_conn_recv(b, &m, SM_CONN_DEFAULT), 1);
    assert_int_equal(sm_conn_recv(b, &m, SM_CONN_DEFAULT), 0);
    SM_ASSERT_OK(sm_conn_send(b, "more", 4, SM_CONN_DEFAULT));
    SM_ASSERT_OK(sm_conn_shutdown(b));
    SM_WAIT_FOR(atomic_load(&s.closes) == 2, 5000);
    assert_int_equal(atomic_load(&s.reasons[SM_CLOSE_CLEAN]), 1);
    sm_conn_free(b);

    sm_conn *c = cli_dial(ep);
    SM_ASSERT_OK(sm_conn_send(c, "stop", 4, SM_CONN_DEFAULT));
    assert_int_equal(sm_conn_recv(c, &m, SM_CONN_DEFAULT), 1);
    assert_int_equal(sm_conn_recv(c, &m, SM_CONN_DEFAULT), 0); /* drained: FIN */
    sm_conn_free(c);
    SM_ASSERT_OK(sm_server_wait(srv));
    assert_int_equal(atomic_load(&s.closes), 3);
    assert_int_equal(atomic_load(&handler_errors), 0);
    sm_server_free(srv);
}

static void
test_drain_deadline(void **state)
{
    const srv_variant *v = srv_variant_of(state);
    seen s = {0};
    const char *one[] = {"tcp://127.0.0.1:0", NULL};
    sm_server_opts o = {.listen = one,
                        .on_message = sm_server_handler_echo,
                        .on_close = count_close,
                        .data = &s,
                        .drain_timeout_ms = 300};
    srv_apply(&o, v);
    char ep[128];
    sm_server *srv = srv_start(&o, ep, sizeof ep);
    /* A client that reads the FIN but never closes its side. */
    sm_conn *c = cli_dial(ep);
    cli_echo(c, "hi");
    int64_t t0 = sm_test_now_ms();
    sm_server_stop(srv);
    sm_frame_msg m;
    assert_int_equal(sm_conn_recv(c, &m, SM_CONN_DEFAULT), 0);
    SM_ASSERT_OK(sm_server_wait(srv));
    int64_t took = sm_test_now_ms() - t0;
    /* The drain waited for the client rather than cutting it off at once:
     * t0 precedes the stop, so load can only lengthen this; the bound is
     * half the deadline, clear of how the server reads its clock. The upper
     * bound (33x) is only a safety limit. */
    if (took < 150 || took > 10000) fail_msg("the drain took %lld ms", (long long)took);
    assert_int_equal(atomic_load(&s.reasons[SM_CLOSE_DRAIN]), 1);
    sm_conn_free(c);
    sm_server_free(srv);

    /* sm_server_stop_now closes everything at once. */
    o.drain_timeout_ms = SM_FOREVER;
    srv = srv_start(&o, ep, sizeof ep);
    sm_conn *d[3];
    for (int i = 0; i < 3; i++) {
        d[i] = cli_dial(ep);
        cli_echo(d[i], "x");
    }
    sm_server_stop_now(srv);
    for (int i = 0; i < 3; i++) {
        cli_expect_end(d[i], 5000);
        sm_conn_free(d[i]);
    }
    SM_ASSERT_OK(sm_server_wait(srv));
    assert_int_equal(atomic_load(&s.reasons[SM_CLOSE_DRAIN]), 4);
    assert_int_equal(srv_stats(srv).closes[SM_CLOSE_DRAIN], 3);
    sm_server_free(srv);
}

/* A busy connection thread still pings: the handler takes 5 ms a message
 * and 2000 messages wait in the socket, so the thread never finds it empty
 * (for 10 s, unless the test opens the gate sooner). The test counts pings
 * as they come and checks the handler was still busy with the queue when the
 * fourth arrived; the gate then lets the rest through at once. (The loop
 * model cannot ping while a handler blocks its loop; handlers there must not
 * block.) */
enum { BUSY_MSGS = 2000 };
static atomic_int busy_handled;
static atomic_bool busy_gate_open;

static void
slow_sink(sm_peer *p, const sm_frame_msg *m)
{
    (void)p;
    (void)m;
    atomic_fetch_add(&busy_handled, 1);
    if (!atomic_load(&busy_gate_open)) nanosleep(&(struct timespec){.tv_nsec = 5 * 1000000}, NULL);
}

static void
test_heartbeat_busy_thread(void **state)
{
    (void)state;
    atomic_store(&busy_handled, 0);
    atomic_store(&busy_gate_open, false);
    const char *one[] = {"tcp://127.0.0.1:0", NULL};
    sm_server_opts o = {.listen = one,
                        .model = SM_SERVER_THREAD,
                        .on_message = slow_sink,
                        .heartbeat_ms = 100,
                        .ping = "hb",
                        .ping_len = 2};
    char ep[128];
    sm_server *srv = srv_start(&o, ep, sizeof ep);
    sm_conn *c = cli_dial(ep);
    for (int i = 0; i < BUSY_MSGS; i++)
        SM_ASSERT_OK(sm_conn_send(c, "work", 4, SM_CONN_DEFAULT));
    int pings = 0;
    sm_frame_msg m;
    while (pings < 4) {
        int rc = sm_conn_recv(c, &m, 10000); /* a ping is due every 100 ms */
        if (rc != 1) fail_msg("after %d pings: recv gave %s", pings, sm_err_name(rc));
        if (m.len != 2 || memcmp(m.data, "hb", 2)) fail_msg("not a ping: %zu bytes", m.len);
        pings++;
    }
    int handled = atomic_load(&busy_handled);
    atomic_store(&busy_gate_open, true);
    print_message("4 pings while %d of %d messages were handled\n", handled, BUSY_MSGS);
    assert_true(handled < BUSY_MSGS);
    sm_conn_free(c);
    sm_server_free(srv);
}

/* A send blocked on another thread (the client reads nothing) holds the
 * peer's send lock for up to write_timeout_ms; the connection thread's ping
 * must not queue behind it, so the heartbeat timeout still closes the peer
 * as "heartbeat", not 30 s later as a slow consumer. The wait for the close
 * (20x the heartbeat timeout) is far below the write timeout: a ping stuck
 * behind the send fails it by the reason and by the wait, not by a
 * measured time. */
static _Atomic(sm_peer *) hb_peer;
static atomic_int hb_reason, hb_sent_done;

static void
hb_open(sm_peer *p)
{
    atomic_store(&hb_peer, p);
}

static void
hb_close(sm_peer *p, int reason)
{
    (void)p;
    atomic_store(&hb_reason, reason);
    /* The sender thread may be inside sm_peer_send: the peer lives until
     * this returns, so wait for the send to come back (the close shut the
     * socket down; the bound is past the write timeout). */
    for (int64_t end = sm_test_now_ms() + 40000;
         !atomic_load(&hb_sent_done) && sm_test_now_ms() < end;)
        nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
}

static void *
hb_big_send(void *arg)
{
    (void)arg;
    size_t n = 12u << 20;
    char *big = calloc(1, n);
    if (big) sm_peer_send(atomic_load(&hb_peer), big, n);
    free(big);
    atomic_store(&hb_sent_done, 1);
    return NULL;
}

static void
test_heartbeat_during_blocked_send(void **state)
{
    (void)state;
    atomic_store(&hb_peer, NULL);
    atomic_store(&hb_reason, 1);
    atomic_store(&hb_sent_done, 0);
    const char *one[] = {"tcp://127.0.0.1:0", NULL};
    sm_server_opts o = {.listen = one,
                        .model = SM_SERVER_THREAD,
                        .commit = SM_COMMIT_ACCEPT, /* the client never sends */
                        .on_open = hb_open,
                        .on_message = sm_server_handler_discard,
                        .on_close = hb_close,
                        .heartbeat_ms = 100,
                        .heartbeat_timeout_ms = 500,
                        .write_timeout_ms = 30000};
    char ep[128];
    sm_server *srv = srv_start(&o, ep, sizeof ep);
    sm_conn *c = cli_dial(ep);
    SM_WAIT_FOR(atomic_load(&hb_peer) != NULL, 5000);
    pthread_t th;
    int64_t t0 = sm_test_now_ms();
    assert_int_equal(pthread_create(&th, NULL, hb_big_send, NULL), 0);
    SM_WAIT_FOR(atomic_load(&hb_reason) != 1, 10000);
    print_message("closed after %lld ms\n", (long long)(sm_test_now_ms() - t0));
    SM_ASSERT_ERR(atomic_load(&hb_reason), SM_ERR_HEARTBEAT);
    pthread_join(th, NULL);
    sm_conn_free(c);
    sm_server_free(srv);
}

/* ---- frames as they came ----------------------------------------------------------- */

static void
twice(sm_peer *p, const sm_frame_msg *m)
{
    if (sm_peer_send_frame(p, m) < 0 || sm_peer_send_frame(p, m) < 0)
        atomic_fetch_add(&handler_errors, 1);
}

/* sm_peer_send_frame sends the received bytes, delimiter included: each
 * line comes back twice, byte for byte, in order. */
static void
test_send_frame(void **state)
{
    const srv_variant *v = srv_variant_of(state);
    atomic_store(&handler_errors, 0);
    sm_frame_spec crlf;
    SM_ASSERT_OK(sm_frame_spec_parse(&crlf, "crlf", NULL, 0));
    const char *one[] = {"tcp://127.0.0.1:0", NULL};
    sm_server_opts o = {.listen = one, .on_message = twice, .spec = &crlf};
    srv_apply(&o, v);
    char ep[128];
    sm_server *srv = srv_start(&o, ep, sizeof ep);
    sm_endpoint e;
    SM_ASSERT_OK(sm_endpoint_parse(&e, ep, NULL, 0));
    int fd = (int)SM_ASSERT_OK(sm_dial_endpoint(&e, NULL, 5000, NULL, 0));
    const char in[] = "one\r\ntwo\r\n\r\nthree\r\n";
    const char want[] = "one\r\none\r\ntwo\r\ntwo\r\n\r\n\r\nthree\r\nthree\r\n";
    SM_ASSERT_OK(sm_send_all(fd, in, sizeof in - 1, 5000, NULL));
    char got[sizeof want];
    SM_ASSERT_OK(sm_recv_exact(fd, got, sizeof want - 1, 5000, NULL));
    assert_memory_equal(got, want, sizeof want - 1);
    close(fd);
    sm_server_free(srv);
    assert_int_equal(atomic_load(&handler_errors), 0);
    SM_ASSERT_ERR(sm_peer_send_frame(NULL, NULL), -EINVAL);
}

/* The echo through a handler of the user's: sm_server_handler_echo called,
 * not configured (the loop model folds a configured one into its stream
 * callback). */
static void
echo_wrapped(sm_peer *p, const sm_frame_msg *m)
{
    sm_server_handler_echo(p, m);
}

/* The message and byte counters are exact once the server has stopped,
 * whether the echo is the built-in handler or a user's handler calling
 * it; an empty message counts as one. Twenty messages go out before the
 * first reply is read, so that a read batch may hold several. */
static void
test_echo_counts(void **state)
{
    const srv_variant *v = srv_variant_of(state);
    sm_server_message_cb handlers[] = {sm_server_handler_echo, echo_wrapped};
    for (int h = 0; h < 2; h++) {
        const char *one[] = {"tcp://127.0.0.1:0", NULL};
        sm_server_opts o = {.listen = one, .on_message = handlers[h]};
        srv_apply(&o, v);
        char ep[128];
        sm_server *srv = srv_start(&o, ep, sizeof ep);
        uint64_t msgs = 0, bytes = 0;
        for (int k = 0; k < 3; k++) {
            sm_conn *c = cli_dial(ep);
            char text[64];
            for (int i = 0; i < 20; i++) {
                int n = snprintf(text, sizeof text, "%.*s", (i * 7 + k) % 40,
                                 "0123456789012345678901234567890123456789");
                SM_ASSERT_OK(sm_conn_send(c, text, (size_t)n, SM_CONN_DEFAULT));
                msgs++;
                bytes += (uint64_t)n;
            }
            for (int i = 0; i < 20; i++) {
                sm_frame_msg m;
                assert_int_equal(sm_conn_recv(c, &m, SM_CONN_DEFAULT), 1);
                assert_int_equal(m.len, (size_t)((i * 7 + k) % 40));
            }
            sm_conn_free(c);
        }
        sm_server_stop(srv);
        SM_ASSERT_OK(sm_server_wait(srv));
        sm_server_stats st = srv_stats(srv);
        assert_int_equal(st.msgs_in, msgs);
        assert_int_equal(st.msgs_out, msgs);
        assert_int_equal(st.bytes_in, bytes);
        assert_int_equal(st.bytes_out, bytes);
        sm_server_free(srv);
    }
}

/* ---- heartbeats -------------------------------------------------------------------- */

static atomic_int hb_messages;

static void
hb_echo(sm_peer *p, const sm_frame_msg *m)
{
    atomic_fetch_add(&hb_messages, 1);
    sm_server_handler_echo(p, m);
}

/* A silent client gets pings and is then closed as heartbeat-lost; a client
 * that sends pings stays (its pings never reach on_message), and its real
 * message is answered after the timeout has passed several times over. */
static void
test_heartbeat(void **state)
{
    const srv_variant *v = srv_variant_of(state);
    seen s = {0};
    atomic_store(&hb_messages, 0);
    enum { HB_TIMEOUT_MS = 600 };
    const char *one[] = {"tcp://127.0.0.1:0", NULL};
    sm_server_opts o = {.listen = one,
                        .on_message = hb_echo,
                        .on_close = count_close,
                        .data = &s,
                        .heartbeat_ms = 100,
                        .heartbeat_timeout_ms = HB_TIMEOUT_MS,
                        .ping = "hb",
                        .ping_len = 2,
                        .swallow_pings = true,
                        /* Silent clients are peers: thread model, a thread each. */
                        .commit = SM_COMMIT_ACCEPT};
    srv_apply(&o, v);
    char ep[128];
    sm_server *srv = srv_start(&o, ep, sizeof ep);
    sm_conn *silent = cli_dial(ep), *quiet = cli_dial(ep);

    /* The silent client hears pings, then the end. */
    sm_frame_msg m;
    int pings = 0, rc;
    while ((rc = sm_conn_recv(silent, &m, 5000)) == 1 && pings < 100) {
        if (m.len != 2 || memcmp(m.data, "hb", 2)) fail_msg("not a ping: %zu bytes", m.len);
        pings++;
    }
    assert_true(rc <= 0 && rc != -ETIMEDOUT);
    assert_true(pings >= 1);

    /* The other one sent nothing meanwhile: closed too. A fresh client that
     * pings every 30 ms (20 times a timeout: a stall of this thread would
     * have to last most of a timeout to matter) outlives three timeouts. */
    while ((rc = sm_conn_recv(quiet, &m, 5000)) == 1 && pings < 200)
        pings++;
    assert_true(rc <= 0 && rc != -ETIMEDOUT);
    SM_WAIT_FOR(atomic_load(&s.reasons[SM_CLOSE_HEARTBEAT]) == 2, 5000);
    sm_conn *pinger = cli_dial(ep);
    for (int64_t start = sm_test_now_ms(); sm_test_now_ms() - start < 3 * HB_TIMEOUT_MS;) {
        SM_ASSERT_OK(sm_conn_send(pinger, "hb", 2, SM_CONN_DEFAULT));
        nanosleep(&(struct timespec){.tv_nsec = 30 * 1000000}, NULL);
    }
    SM_ASSERT_OK(sm_conn_send(pinger, "data", 4, SM_CONN_DEFAULT));
    for (int i = 0; i < 100; i++) {
        rc = sm_conn_recv(pinger, &m, 5000);
        if (rc != 1) fail_msg("pinging client: recv gave %s", sm_err_name(rc));
        if (m.len == 4 && !memcmp(m.data, "data", 4)) break;
        if (m.len != 2 || memcmp(m.data, "hb", 2)) fail_msg("unexpected %zu bytes", m.len);
    }
    assert_int_equal(atomic_load(&hb_messages), 1); /* "data" only: pings are swallowed */
    assert_int_equal(atomic_load(&s.reasons[SM_CLOSE_HEARTBEAT]), 2);
    sm_conn_free(pinger);
    sm_conn_free(quiet);
    sm_conn_free(silent);
    sm_server_free(srv);
}

#define VARIANTS(fn)                                                                               \
    cmocka_unit_test_prestate(fn, (void *)&loop_reuseport),                                        \
        cmocka_unit_test_prestate(fn, (void *)&loop_dispatch),                                     \
        cmocka_unit_test_prestate(fn, (void *)&threads)

int
main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_options),
        VARIANTS(test_endpoints),
        VARIANTS(test_max_conns),
        VARIANTS(test_oversize),
        VARIANTS(test_slow_consumer),
        VARIANTS(test_slowloris_served),
        VARIANTS(test_slowloris_closed),
        VARIANTS(test_proxy_protocol),
        VARIANTS(test_chat),
        VARIANTS(test_handler_calls),
        VARIANTS(test_drain_deadline),
        VARIANTS(test_first_message_deadline),
        VARIANTS(test_heartbeat),
        cmocka_unit_test(test_heartbeat_busy_thread),
        cmocka_unit_test(test_heartbeat_during_blocked_send),
        VARIANTS(test_send_frame),
        VARIANTS(test_echo_counts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
