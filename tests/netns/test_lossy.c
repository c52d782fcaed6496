/* A lossy, reordering network at the packet level: two network namespaces
 * joined by a link that loses 5 % of packets, delays them 20 ms, sends 10 %
 * ahead of the rest and duplicates 1 %, both ways. TCP must recover by
 * itself; sockmsg must deliver every message exactly once, in order, intact.
 *
 * The link is tc netem on a veth pair where the kernel has netem; where it
 * has not (CONFIG_NET_SCH_NETEM unset, as on the machine this was written
 * on), a TUN device in each namespace and impair.c forwarding IP packets
 * between them with the same impairments from a seeded PRNG. Each test
 * prints which mode ran, with the counts. Namespaces and link: netns_link.c.
 *
 *   1, 2. sm_server in the loop model, then the thread model, in namespace A;
 *      a client in B sends N checksummed messages (a window in flight) and
 *      checks every echo; the server checks every message as it arrives.
 *   3. sm_stream with reconnect and heartbeats against a server with
 *      heartbeats, through a 5 s cut of the link half way: both sides find
 *      the dead connection by heartbeat, the client reconnects and resumes.
 *      "Told was sent" is an application-level ack: a message counts as sent
 *      once the server's echo of it has arrived. Until then the client keeps
 *      it, and after a reconnect sends again everything not acked (the
 *      stream's own unsent queue is dropped, SM_UNSENT_DROP: the kernel's
 *      buffers of the dead connection are lost anyway). The server delivers
 *      by sequence number, so a message it had delivered but whose ack was
 *      lost is recognised and not delivered twice. Checked: the server
 *      application saw 0..N-1 once each, in order, intact.
 *
 * N is SM_NETNS_MESSAGES (default 20,000; the build sets less under
 * sanitizers). Needs root (namespaces, TUN or netem) and iproute2; skipped
 * otherwise, saying why. The namespaces are named after the pid and removed
 * at the end, also when an assertion fails; those of killed runs are swept
 * by the next. */
#include "smtest.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sockmsg/sockmsg.h>

#include "netns_link.h"
#include "netns_util.h"

#ifndef SM_NETNS_MESSAGES
#define SM_NETNS_MESSAGES 20000
#endif

#define LOSS      0.05
#define DELAY_MS  20
#define REORDER   0.10
#define DUP       0.01
#define CUT_MS    5000
#define WINDOW    256
#define RUN_MAX_S 240 /* a client run gives up after this long */

static const char PING[] = "\0PING";
#define PING_LEN 5

static netns_link N;
static const sm_frame_spec len32be = {.kind = SM_FRAME_LENGTH, .len_width = 4};
static uint32_t n_msgs = SM_NETNS_MESSAGES;

static void
net_down(void)
{
    netns_link_down(&N);
}

static int
net_setup(void **state)
{
    (void)state;
    if (geteuid() != 0) return 0;
    const char *env = getenv("SM_NETNS_MESSAGES");
    if (env && atoi(env) > 0) n_msgs = (uint32_t)atoi(env);
    impair_cfg cfg = {.loss = LOSS,
                      .dup = DUP,
                      .reorder = REORDER,
                      .delay_ms = DELAY_MS,
                      .seed = getpid() * 0x9e3779b97f4a7c15ull + 1};
    if (netns_link_up(&N, &cfg) == 0) atexit(net_down);
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
link_cut(bool cut)
{
    if (netns_link_cut(&N, cut) != 0) fail_msg("tc qdisc change failed");
}

/* ---- messages ------------------------------------------------------------------ */

/* Message seq: seq (4 bytes BE), a checksum of the payload (4 bytes), and a
 * payload of 0..119 bytes, all derived from seq. */
#define MSG_MAX (8 + 120)

static uint32_t
fnv1a(const uint8_t *p, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 16777619u;
    return h;
}

static void
put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8),
    p[3] = (uint8_t)v;
}

static uint32_t
get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static size_t
msg_make(uint32_t seq, uint8_t *out)
{
    size_t len = (seq * 7919u) % 120u;
    uint64_t x = seq * 0x9e3779b97f4a7c15ull + 7;
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        out[8 + i] = (uint8_t)x;
    }
    put32(out, seq);
    put32(out + 4, fnv1a(out + 8, len));
    return 8 + len;
}

/* The message's seq, or -1 when it is not exactly what msg_make makes. */
static int64_t
msg_check(const uint8_t *p, size_t len)
{
    if (len < 8) return -1;
    uint8_t want[MSG_MAX];
    uint32_t seq = get32(p);
    size_t n = msg_make(seq, want);
    return n == len && memcmp(want, p, n) == 0 ? (int64_t)seq : -1;
}

/* ---- the server, in namespace A -------------------------------------------------- */

typedef struct srv_ctx {
    pthread_mutex_t mu;
    uint32_t next;        /* the seq the application expects */
    uint64_t delivered;   /* delivered to the application: seq == next */
    uint64_t resent;      /* seq < next: already delivered, a resend after a reconnect */
    uint64_t gaps;        /* seq > next: messages lost */
    uint64_t corrupt;     /* not a message msg_make makes */
    uint64_t hb_closes;   /* connections closed as heartbeat-lost */
    uint64_t other_close; /* connections closed otherwise */
} srv_ctx;

static void
srv_message(sm_peer *p, const sm_frame_msg *m)
{
    srv_ctx *c = sm_server_get_data(sm_peer_server(p));
    int64_t seq = msg_check(m->data, m->len);
    pthread_mutex_lock(&c->mu);
    if (seq < 0)
        c->corrupt++;
    else if ((uint32_t)seq == c->next)
        c->next++, c->delivered++;
    else if ((uint32_t)seq < c->next)
        c->resent++;
    else
        c->gaps++;
    pthread_mutex_unlock(&c->mu);
    /* The echo is the ack (and checks the way back). */
    if (seq >= 0 && sm_peer_send(p, m->data, m->len) < 0) sm_peer_close(p);
}

static void
srv_close(sm_peer *p, int reason)
{
    srv_ctx *c = sm_server_get_data(sm_peer_server(p));
    pthread_mutex_lock(&c->mu);
    if (reason == SM_ERR_HEARTBEAT)
        c->hb_closes++;
    else
        c->other_close++;
    pthread_mutex_unlock(&c->mu);
}

static sm_server *
server_in_a(sm_server_opts *o, srv_ctx *c, uint16_t *port)
{
    char ep[64], why[256];
    snprintf(ep, sizeof ep, "tcp://%s:0", N.ip[0]);
    const char *listen[] = {ep, NULL};
    o->listen = listen;
    o->threads = o->model == SM_SERVER_THREAD ? 4 : 1;
    o->on_message = srv_message;
    o->on_close = srv_close;
    o->data = c;
    o->ping = PING;
    o->ping_len = PING_LEN;
    o->swallow_pings = true;
    sm_server *srv;
    /* The listening socket is made in A; accepted ones follow it. */
    SM_ASSERT_OK(netns_enter(&N, 0));
    int rc = sm_server_new(&srv, o, why, sizeof why);
    SM_ASSERT_OK(netns_enter(&N, -1));
    if (rc < 0) fail_msg("server: %s", why);
    SM_ASSERT_OK(sm_server_start(srv));
    sm_endpoint e;
    SM_ASSERT_OK(sm_server_endpoint(srv, 0, &e));
    *port = e.port;
    o->listen = NULL;
    return srv;
}

/* ---- the client, in namespace B --------------------------------------------------- */

typedef struct client {
    sm_loop *loop;
    sm_stream *s;
    sm_timer tick;
    uint32_t next_send, acked;
    bool connected, done, closed, cut_done;
    int64_t cut_at; /* when the link was cut; 0: not (yet) */
    int close_reason, first_reconnect_reason, reconnects, dial_failures;
    uint64_t dup_echo, gap_echo, bad_echo, sent;
    int64_t t0, deadline;
    char detail[160];
} client;

static void
pump(client *c)
{
    uint8_t buf[MSG_MAX];
    while (c->connected && c->next_send < n_msgs && c->next_send - c->acked < WINDOW) {
        size_t n = msg_make(c->next_send, buf);
        int rc = sm_stream_send(c->s, buf, n);
        if (rc < 0) {
            snprintf(c->detail, sizeof c->detail, "send %u: %s", c->next_send, sm_err_name(rc));
            return;
        }
        c->next_send++;
        c->sent++;
        if (rc == 1) return; /* above high water: on_drain resumes */
    }
}

static void
cl_connect(sm_stream *s)
{
    client *c = sm_stream_get_data(s);
    c->connected = true;
    c->next_send = c->acked; /* everything not acked goes again */
    pump(c);
}

static void
cl_drain(sm_stream *s)
{
    pump(sm_stream_get_data(s));
}

static void
cl_message(sm_stream *s, const sm_frame_msg *m)
{
    client *c = sm_stream_get_data(s);
    int64_t seq = msg_check(m->data, m->len);
    if (seq < 0) {
        c->bad_echo++;
        return;
    }
    if ((uint32_t)seq < c->acked) {
        c->dup_echo++;
        return;
    }
    if ((uint32_t)seq > c->acked) {
        c->gap_echo++;
        return;
    }
    c->acked++;
    if (c->acked == n_msgs) {
        c->done = true;
        sm_stream_close(s);
        return;
    }
    pump(c);
}

/* A lost connection (it was up), or a dial that failed: with 5 % loss a
 * SYN or SYN-ACK is lost now and then, and the kernel resends it after 1 s. */
static void
cl_reconnect(sm_stream *s, int reason, int attempt, int delay_ms)
{
    (void)attempt, (void)delay_ms;
    client *c = sm_stream_get_data(s);
    if (!c->connected) {
        c->dial_failures++;
        return;
    }
    c->connected = false;
    if (!c->reconnects++) c->first_reconnect_reason = reason;
    print_message("  connection lost at %u acked, %lld ms after the cut: %s (%s)\n", c->acked,
                  c->cut_at ? (long long)(sm_test_now_ms() - c->cut_at) : -1LL, sm_err_name(reason),
                  sm_stream_error_detail(s));
}

static void
cl_close(sm_stream *s, int reason)
{
    client *c = sm_stream_get_data(s);
    c->closed = true;
    c->connected = false;
    c->close_reason = reason;
    if (reason && !c->done && !c->detail[0])
        snprintf(c->detail, sizeof c->detail, "%s", sm_stream_error_detail(s));
    c->s = NULL;
    sm_timer_stop(&c->tick);
}

/* Every 100 ms: end a cut after CUT_MS, give up at the deadline. */
static void
cl_tick(sm_timer *t)
{
    client *c = t->data;
    int64_t now = sm_test_now_ms();
    if (c->cut_at && !c->cut_done && now - c->cut_at >= CUT_MS) {
        link_cut(false);
        c->cut_done = true;
    }
    if (now > c->deadline && c->s) {
        snprintf(c->detail, sizeof c->detail, "gave up after %d s at %u acked", RUN_MAX_S,
                 c->acked);
        sm_stream_close(c->s);
    }
}

/* Cut the link once half the messages are acked (checked as acks arrive). */
static void
cl_message_cut(sm_stream *s, const sm_frame_msg *m)
{
    client *c = sm_stream_get_data(s);
    cl_message(s, m);
    if (!c->cut_at && c->acked >= n_msgs / 2) {
        link_cut(true);
        c->cut_at = sm_test_now_ms();
    }
}

typedef struct run_result {
    client c;
    int64_t ms;
} run_result;

/* Dial the server from namespace B and run until every message is acked or
 * the stream closes. */
static void
client_run(uint16_t port, bool with_cut, client *c)
{
    memset(c, 0, sizeof *c);
    sm_stream_opts so = {.spec = &len32be,
                         .on_message = with_cut ? cl_message_cut : cl_message,
                         .on_close = cl_close,
                         .on_connect = cl_connect,
                         .on_drain = cl_drain,
                         .ping = PING,
                         .ping_len = PING_LEN,
                         .swallow_pings = true};
    if (with_cut) {
        so.reconnect = true;
        so.unsent = SM_UNSENT_DROP;
        so.on_reconnect = cl_reconnect;
        so.heartbeat_ms = 500;
        so.heartbeat_timeout_ms = 3000;
        so.connect_timeout_ms = 2500; /* a lost SYN is resent after 1 s */
        so.reconnect_min_ms = 100;
        so.reconnect_max_ms = 1000;
    }
    SM_ASSERT_OK(netns_enter(&N, 1));
    SM_ASSERT_OK(sm_loop_new(&c->loop, NULL));
    sm_timer_init(c->loop, &c->tick, cl_tick);
    c->tick.data = c;
    c->t0 = sm_test_now_ms();
    c->deadline = c->t0 + RUN_MAX_S * 1000;
    SM_ASSERT_OK(sm_timer_start(&c->tick, 100, 100));
    char ep[64], why[256];
    snprintf(ep, sizeof ep, "tcp://%s:%u", N.ip[0], (unsigned)port);
    int rc = sm_stream_dial(&c->s, c->loop, ep, &so, c, why, sizeof why);
    if (rc < 0) {
        netns_enter(&N, -1);
        fail_msg("dial %s: %s", ep, why);
    }
    /* Bounded: the tick closes the stream at the deadline, and the loop
     * ends when nothing is active. */
    rc = sm_loop_run(c->loop, SM_RUN_DEFAULT);
    SM_ASSERT_OK(netns_enter(&N, -1));
    SM_ASSERT_OK(rc);
    if (c->cut_at && !c->cut_done) link_cut(false);
    SM_ASSERT_OK(sm_loop_free(c->loop));
}

static void
report(const char *what, const client *c, const srv_ctx *sc, int64_t ms)
{
    print_message(
        "%s [%s, loss %d%% delay %d ms reorder %d%% dup %d%%, seed %llu]: %u "
        "messages, server delivered %llu, resent-and-recognised %llu, duplicates "
        "%llu, losses %llu, corrupt %llu; client acked %u, sent %llu, connections lost %d; "
        "%lld ms\n",
        what, N.netem ? "netem" : "tun+impair", (int)(LOSS * 100), DELAY_MS, (int)(REORDER * 100),
        (int)(DUP * 100), (unsigned long long)N.cfg.seed, n_msgs, (unsigned long long)sc->delivered,
        (unsigned long long)sc->resent, (unsigned long long)c->dup_echo,
        (unsigned long long)(sc->gaps + c->gap_echo),
        (unsigned long long)(sc->corrupt + c->bad_echo), c->acked, (unsigned long long)c->sent,
        c->reconnects, (long long)ms);
    netns_link_print(&N);
}

static void
check_exactly_once(const client *c, const srv_ctx *sc)
{
    if (c->detail[0]) print_message("  client: %s\n", c->detail);
    assert_true(c->done);
    assert_int_equal(c->acked, n_msgs);
    assert_int_equal(sc->delivered, n_msgs);
    assert_int_equal(sc->next, n_msgs);
    assert_int_equal(sc->gaps, 0);
    assert_int_equal(sc->corrupt, 0);
    assert_int_equal(c->gap_echo, 0);
    assert_int_equal(c->bad_echo, 0);
    assert_int_equal(c->dup_echo, 0);
}

static void
run_model(sm_server_model model, const char *name)
{
    sm_test_netns_need(N.up, "the namespaces and an impaired link");
    srv_ctx sc = {.mu = PTHREAD_MUTEX_INITIALIZER};
    sm_server_opts o = {.model = model};
    uint16_t port;
    sm_server *srv = server_in_a(&o, &sc, &port);
    static client c;
    netns_link_mark(&N);
    int64_t t0 = sm_test_now_ms();
    client_run(port, false, &c);
    int64_t ms = sm_test_now_ms() - t0;
    sm_server_free(srv);
    report(name, &c, &sc, ms);
    check_exactly_once(&c, &sc);
    assert_int_equal(sc.resent, 0); /* one connection: nothing is sent twice */
    assert_int_equal(c.reconnects, 0);
}

static void
test_loop_model(void **state)
{
    (void)state;
    run_model(SM_SERVER_LOOP, "loop model");
}

static void
test_thread_model(void **state)
{
    (void)state;
    run_model(SM_SERVER_THREAD, "thread model");
}

static void
test_stream_reconnect_through_cut(void **state)
{
    (void)state;
    sm_test_netns_need(N.up, "the namespaces and an impaired link");
    srv_ctx sc = {.mu = PTHREAD_MUTEX_INITIALIZER};
    sm_server_opts o = {.model = SM_SERVER_LOOP, .heartbeat_ms = 500, .heartbeat_timeout_ms = 3000};
    uint16_t port;
    sm_server *srv = server_in_a(&o, &sc, &port);
    static client c;
    netns_link_mark(&N);
    int64_t t0 = sm_test_now_ms();
    client_run(port, true, &c);
    int64_t ms = sm_test_now_ms() - t0;
    /* The server found the old connection dead by its heartbeat during the
     * cut (3 s timeout in a 5 s cut); it is closed by now. */
    pthread_mutex_lock(&sc.mu);
    srv_ctx snap = sc;
    pthread_mutex_unlock(&sc.mu);
    sm_server_free(srv);
    report("sm_stream, reconnect, 5 s cut", &c, &snap, ms);
    print_message("  first connection lost: %s; dials failed %d; server heartbeat closes %llu\n",
                  sm_err_name(c.first_reconnect_reason), c.dial_failures,
                  (unsigned long long)snap.hb_closes);
    check_exactly_once(&c, &snap);
    assert_true(c.cut_at != 0 && c.cut_done);
    assert_true(c.reconnects >= 1);
    SM_ASSERT_ERR(c.first_reconnect_reason, SM_ERR_HEARTBEAT);
    assert_true(snap.hb_closes >= 1);
}

int
main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loop_model),
        cmocka_unit_test(test_thread_model),
        cmocka_unit_test(test_stream_reconnect_through_cut),
    };
    return cmocka_run_group_tests(tests, net_setup, net_teardown);
}
