/* Faults a loopback test cannot make: a link that goes dead under a live
 * connection. The test builds its own network (a namespace joined to this
 * one by a veth pair, a /30 between them), puts the client's socket in the
 * namespace and the server here, then takes the link down: packets vanish
 * with no FIN and no RST, as when a cable is cut or a NAT forgets the flow.
 *
 *   - a link down for half a second loses no byte (TCP retransmits; sockmsg
 *     adds no timeout of its own);
 *   - a server with heartbeats closes the vanished client as "heartbeat";
 *   - a stream with heartbeats finds its vanished server (SM_ERR_HEARTBEAT);
 *   - TCP_USER_TIMEOUT (sm_sock_opts.user_timeout_ms) fails a blocked send.
 *
 * Needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN for setns) and iproute2; skipped
 * otherwise, saying why. Everything it creates is named after its pid and
 * removed at the end, also when an assertion fails; what a killed run left
 * behind (its pid gone) is removed by the next run. */
#include "smtest.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <sockmsg/sockmsg.h>

#include "netns_util.h"

typedef struct net {
    bool up;
    char ns[32], host_if[16], peer_if[16];
    char host_ip[32], peer_ip[32];
} net;

static net N;
static const sm_frame_spec len32be = {.kind = SM_FRAME_LENGTH, .len_width = 4};

/* An ip(8) command, quietly; 0 when it succeeded. */
#define ip(...) sm_test_sh("ip " __VA_ARGS__)

static void
net_down(void)
{
    if (!N.up) return;
    N.up = false;
    ip("link del %s", N.host_if); /* takes its peer with it */
    ip("netns del %s", N.ns);
}

static int
net_setup(void **state)
{
    (void)state;
    if (geteuid() != 0) return 0;
    /* Those of killed runs (a ctest timeout, a crash): deleting one takes its
     * end of the veth pair, and so the pair, with it. */
    sm_test_netns_sweep("smtest");
    unsigned p = (unsigned)getpid();
    snprintf(N.ns, sizeof N.ns, "smtest%u", p);
    snprintf(N.host_if, sizeof N.host_if, "smh%u", p % 100000000u);
    snprintf(N.peer_if, sizeof N.peer_if, "smp%u", p % 100000000u);
    /* 10.213.x.y/30 from the pid: runs in parallel pick different nets. */
    unsigned a = (p >> 6) & 255, b = (p & 63) * 4;
    snprintf(N.host_ip, sizeof N.host_ip, "10.213.%u.%u", a, b + 1);
    snprintf(N.peer_ip, sizeof N.peer_ip, "10.213.%u.%u", a, b + 2);
    if (ip("netns add %s", N.ns)) return 0;
    N.up = true;
    atexit(net_down);
    if (ip("link add %s type veth peer name %s netns %s", N.host_if, N.peer_if, N.ns) ||
        ip("addr add %s/30 dev %s", N.host_ip, N.host_if) || ip("link set %s up", N.host_if) ||
        ip("-n %s addr add %s/30 dev %s", N.ns, N.peer_ip, N.peer_if) ||
        ip("-n %s link set %s up", N.ns, N.peer_if) || ip("-n %s link set lo up", N.ns)) {
        net_down();
        return 0;
    }
    return 0;
}

static int
net_teardown(void **state)
{
    (void)state;
    net_down();
    return 0;
}

static void
link_set(bool up)
{
    assert_int_equal(ip("link set %s %s", N.host_if, up ? "up" : "down"), 0);
}

/* A TCP socket created inside the namespace (setns for this thread only,
 * then back), connected to ip:port across the veth. */
static int
dial_from_ns(const char *host, uint16_t port, const sm_sock_opts *opts)
{
    SM_ASSERT_OK(sm_test_netns_enter(N.ns));
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int err = errno;
    SM_ASSERT_OK(sm_test_netns_enter(NULL));
    if (fd < 0) fail_msg("socket in %s: %s", N.ns, strerror(err));
    SM_ASSERT_OK(sm_sock_set_opts(fd, opts));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    assert_int_equal(inet_pton(AF_INET, host, &a.sin_addr), 1);
    SM_ASSERT_OK(connect(fd, (struct sockaddr *)&a, sizeof a));
    return fd;
}

static void
sleep_ms(int ms)
{
    nanosleep(&(struct timespec){.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L}, NULL);
}

/* ---- a server here, listening on the veth address ---------------------------- */

typedef struct closes {
    atomic_int n, heartbeat;
} closes;

static void
on_server_close(sm_peer *p, int reason)
{
    closes *c = sm_server_get_data(sm_peer_server(p));
    atomic_fetch_add(&c->n, 1);
    if (reason == SM_ERR_HEARTBEAT) atomic_fetch_add(&c->heartbeat, 1);
}

static sm_server *
server_on_veth(sm_server_opts *o, uint16_t *port)
{
    char ep[64], why[256];
    snprintf(ep, sizeof ep, "tcp://%s:0", N.host_ip);
    const char *listen[] = {ep, NULL};
    o->listen = listen;
    o->threads = 1;
    sm_server *srv;
    int rc = sm_server_new(&srv, o, why, sizeof why);
    if (rc < 0) fail_msg("server: %s", why);
    SM_ASSERT_OK(sm_server_start(srv));
    sm_endpoint e;
    SM_ASSERT_OK(sm_server_endpoint(srv, 0, &e));
    *port = e.port;
    o->listen = NULL;
    return srv;
}

/* 1. The link goes down for 500 ms with 100 messages in flight: every echo
 * still arrives, in order, byte for byte. */
static void
test_link_flap_loses_nothing(void **state)
{
    (void)state;
    sm_test_netns_need(N.up, "the namespace and veth pair");
    sm_server_opts o = {.on_message = sm_server_handler_echo};
    uint16_t port;
    sm_server *srv = server_on_veth(&o, &port);
    sm_conn *c;
    SM_ASSERT_OK(sm_conn_new_take(&c, dial_from_ns(N.host_ip, port, NULL), &len32be));
    enum { ROUND = 100 };
    char msg[64];
    for (int round = 0; round < 2; round++) {
        if (round == 1) link_set(false);
        for (int i = 0; i < ROUND; i++) {
            int n = snprintf(msg, sizeof msg, "message %d of round %d", i, round);
            SM_ASSERT_OK(sm_conn_send(c, msg, (size_t)n, 5000));
        }
        if (round == 1) {
            sleep_ms(500);
            link_set(true);
        }
        for (int i = 0; i < ROUND; i++) {
            sm_frame_msg m;
            assert_int_equal(SM_ASSERT_OK(sm_conn_recv(c, &m, 20000)), 1);
            int n = snprintf(msg, sizeof msg, "message %d of round %d", i, round);
            assert_int_equal(m.len, (size_t)n);
            assert_memory_equal(m.data, msg, m.len);
        }
    }
    sm_conn_free(c);
    sm_server_free(srv);
}

/* 2. The client vanishes: the server's pings go unanswered and it closes
 * the connection as heartbeat-lost (nothing of the kernel's would, for
 * minutes). While the link is up, a client that talks every 50 ms (20 times
 * a timeout) outlives the 1 s timeout three times over. */
static void
test_server_finds_dead_client(void **state)
{
    (void)state;
    sm_test_netns_need(N.up, "the namespace and veth pair");
    closes cl = {0};
    sm_server_opts o = {.on_message = sm_server_handler_echo,
                        .on_close = on_server_close,
                        .data = &cl,
                        .heartbeat_ms = 200,
                        .heartbeat_timeout_ms = 1000};
    static const sm_server_model models[] = {SM_SERVER_LOOP, SM_SERVER_THREAD};
    for (int k = 0; k < 2; k++) {
        o.model = models[k];
        atomic_store(&cl.n, 0);
        atomic_store(&cl.heartbeat, 0);
        uint16_t port;
        sm_server *srv = server_on_veth(&o, &port);
        sm_conn *c;
        SM_ASSERT_OK(sm_conn_new_take(&c, dial_from_ns(N.host_ip, port, NULL), &len32be));
        sm_frame_msg m;
        /* Read before the last send: the server heard from us after it. */
        int64_t t0 = 0;
        for (int64_t start = sm_test_now_ms(); sm_test_now_ms() - start < 3000;) {
            sleep_ms(50);
            t0 = sm_test_now_ms();
            SM_ASSERT_OK(sm_conn_send(c, "hello", 5, 5000));
            do /* skip pings; the echo is "hello" */
                assert_int_equal(SM_ASSERT_OK(sm_conn_recv(c, &m, 5000)), 1);
            while (m.len != 5);
        }
        assert_int_equal(atomic_load(&cl.n), 0);
        link_set(false);
        /* Polls the counter (there is no event to wait on); bounded. */
        for (int i = 0; i < 200 && atomic_load(&cl.n) == 0; i++)
            sleep_ms(50);
        int64_t took = sm_test_now_ms() - t0;
        link_set(true);
        print_message("%s model: closed after %lld ms\n", k ? "thread" : "loop", (long long)took);
        assert_int_equal(atomic_load(&cl.heartbeat), 1);
        /* Not before the timeout: load can only lengthen this (t0 precedes
         * what the server last heard); half the timeout keeps it clear of
         * how the server reads its clock. */
        assert_true(took >= 500);
        sm_conn_free(c);
        sm_server_free(srv);
    }
}

/* 3. The server vanishes: a stream with heartbeats closes with
 * SM_ERR_HEARTBEAT. */
typedef struct sctx {
    int closes, reason;
    int msgs;
} sctx;

static void
st_msg(sm_stream *s, const sm_frame_msg *m)
{
    (void)m;
    ((sctx *)sm_stream_get_data(s))->msgs++;
}

static void
st_close(sm_stream *s, int reason)
{
    sctx *x = sm_stream_get_data(s);
    x->closes++;
    x->reason = reason;
}

static void
test_stream_finds_dead_server(void **state)
{
    (void)state;
    sm_test_netns_need(N.up, "the namespace and veth pair");
    sm_server_opts o = {.on_message = sm_server_handler_echo};
    uint16_t port;
    sm_server *srv = server_on_veth(&o, &port);
    static const sm_stream_opts so = {.spec = &len32be,
                                      .on_message = st_msg,
                                      .on_close = st_close,
                                      .heartbeat_ms = 200,
                                      .heartbeat_timeout_ms = 1000};
    sm_loop *l;
    SM_ASSERT_OK(sm_loop_new(&l, NULL));
    sctx x = {0};
    sm_stream *s;
    SM_ASSERT_OK(sm_stream_new_take(&s, l, dial_from_ns(N.host_ip, port, NULL), &so, &x));
    SM_ASSERT_OK(sm_stream_send(s, "hi", 2));
    int64_t end = sm_test_now_ms() + 5000;
    while (x.msgs < 1 && sm_test_now_ms() < end)
        SM_ASSERT_OK(sm_loop_run(l, SM_RUN_ONCE));
    assert_true(x.msgs >= 1); /* the echo, and perhaps echoed pings */
    link_set(false);
    int64_t t0 = sm_test_now_ms();
    end = t0 + 10000;
    while (!x.closes && sm_test_now_ms() < end)
        SM_ASSERT_OK(sm_loop_run(l, SM_RUN_ONCE));
    int64_t took = sm_test_now_ms() - t0;
    link_set(true);
    print_message("stream closed after %lld ms: %s\n", (long long)took, sm_err_name(x.reason));
    assert_int_equal(x.closes, 1);
    SM_ASSERT_ERR(x.reason, SM_ERR_HEARTBEAT);
    SM_ASSERT_OK(sm_loop_run(l, SM_RUN_DEFAULT));
    SM_ASSERT_OK(sm_loop_free(l));
    sm_server_free(srv);
}

/* 4. TCP_USER_TIMEOUT: data unacknowledged for 500 ms fails the connection
 * (-ETIMEDOUT) instead of retransmitting for minutes. */
static void
test_user_timeout(void **state)
{
    (void)state;
    sm_test_netns_need(N.up, "the namespace and veth pair");
    sm_server_opts o = {.on_message = sm_server_handler_echo};
    uint16_t port;
    sm_server *srv = server_on_veth(&o, &port);
    sm_sock_opts so = {.user_timeout_ms = 500};
    sm_conn *c;
    SM_ASSERT_OK(sm_conn_new_take(&c, dial_from_ns(N.host_ip, port, &so), &len32be));
    link_set(false);
    int64_t t0 = sm_test_now_ms();
    SM_ASSERT_OK(sm_conn_send(c, "into the void", 13, 5000));
    sm_frame_msg m;
    /* No timeout of ours: an -ETIMEDOUT can only be the kernel's (the
     * test's ctest timeout bounds a kernel that never gives up). */
    int rc = sm_conn_recv(c, &m, SM_FOREVER);
    int64_t took = sm_test_now_ms() - t0;
    link_set(true);
    print_message("recv after %lld ms: %s\n", (long long)took, sm_err_name(rc));
    SM_ASSERT_ERR(rc, -ETIMEDOUT);
    /* Not instant: t0 precedes the send, so load only lengthens this; half
     * the timeout is clear of the kernel's timer granularity. */
    assert_true(took >= 250);
    sm_conn_free(c);
    sm_server_free(srv);
}

int
main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_link_flap_loses_nothing),
        cmocka_unit_test(test_server_finds_dead_client),
        cmocka_unit_test(test_stream_finds_dead_server),
        cmocka_unit_test(test_user_timeout),
    };
    return cmocka_run_group_tests(tests, net_setup, net_teardown);
}
