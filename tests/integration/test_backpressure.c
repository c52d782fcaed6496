/* Backpressure between two sockmsg peers (issue 14): a client sm_stream that
 * pipelines as a new user writes it (send until sm_stream_send returns 1,
 * resume in on_drain) against an in-process sm_server echo, loop and thread
 * model, moving a large volume in 64 B, 4 KiB and 64 KiB messages, with the
 * default watermarks and with tiny ones, every echo checked (order, length,
 * every byte). Both sides once paused reading while their own queue was
 * above high water, so each waited for the other: the client stalled after a
 * few MB with no reply read. Plus: a peer that never reads bounds the
 * sender's memory (a polite sender waits at high water, a greedy one is
 * closed as a slow consumer at max_queued). Run once per loop backend.
 *
 * A stall is not waited out: a watchdog closes the client when neither a
 * send nor an echo happened for STALL_MS, and the test fails saying where
 * it stood. No assertion depends on timing. */
#include "server_util.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>

#include <sockmsg/loop.h>
#include <sockmsg/stream.h>

/* Payload bytes each way per case: 100 MiB (all 12 cases take about 20 s
 * per backend in a Debug build on 2 cores, most of it the thread model's
 * 64 B cases: a write per echo). Under ASan or TSan the same cases move
 * 32 MiB each (about 10-20 s per backend). */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SM_BP_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SM_BP_SANITIZED 1
#endif
#endif
#ifdef SM_BP_SANITIZED
#define VOLUME ((size_t)32 << 20)
#else
#define VOLUME ((size_t)100 << 20)
#endif

/* More than can be in flight without the client reading a reply: its queue
 * (high_water and a message), the kernel's buffers both ways (by default at
 * most 4 MiB send + 6 MiB receive each way) and the server's queue (its
 * high_water and a read batch, or one blocked message). */
#define MUST_READ_WHILE_SENDING ((size_t)64 << 20)

#define STALL_MS   10000 /* no send and no echo this long: stalled */
#define WATCH_MS   1000
#define PATTERN    251 /* a prime: message k's filler starts at k % PATTERN */
#define TINY_WATER 4096

static const sm_frame_spec spec = {.kind = SM_FRAME_LENGTH, .len_width = 4};

/* Message k: its number (8 bytes), then filler from a fixed pattern, so an
 * echo is checked with one memcmp. */
static uint8_t pattern[PATTERN + (64 << 10)];

static void
fill_pattern(void)
{
    for (size_t i = 0; i < sizeof pattern; i++)
        pattern[i] = (uint8_t)(i * 131 + 7);
}

typedef struct pipe_client {
    sm_loop *loop;
    sm_stream *s;
    sm_timer watch;
    size_t len;          /* payload bytes per message */
    uint64_t n;          /* messages to send */
    uint64_t sent, recv; /* messages sent, echoes checked */
    uint64_t recv_bytes;
    uint64_t recv_at_last_send; /* echoes read before the last message went out */
    uint64_t seen;              /* sent + recv at the last watchdog tick */
    int quiet_ticks;
    size_t max_queued, cap; /* the most queued after a send, and its bound */
    int sends_above, drains;
    int closes, reason;
    bool stalled, bad;
    char why[256];
    uint8_t *msg;
} pipe_client;

static void
pump(pipe_client *c)
{
    while (c->sent < c->n) {
        uint64_t k = c->sent;
        memcpy(c->msg, &k, 8);
        memcpy(c->msg + 8, pattern + k % PATTERN, c->len - 8);
        int rc = sm_stream_send(c->s, c->msg, c->len);
        if (rc < 0) {
            snprintf(c->why, sizeof c->why, "send %llu: %s", (unsigned long long)k,
                     sm_err_name(rc));
            c->bad = true;
            return;
        }
        c->sent++;
        size_t q = sm_stream_queued(c->s);
        if (q > c->max_queued) c->max_queued = q;
        if (c->sent == c->n) c->recv_at_last_send = c->recv;
        if (rc == 1) { /* above high water: wait for on_drain */
            c->sends_above++;
            return;
        }
    }
}

static void
on_connect(sm_stream *s)
{
    pump(sm_stream_get_data(s));
}

static void
on_drain(sm_stream *s)
{
    pipe_client *c = sm_stream_get_data(s);
    c->drains++;
    pump(c);
}

static void
on_echo(sm_stream *s, const sm_frame_msg *m)
{
    pipe_client *c = sm_stream_get_data(s);
    uint64_t k;
    if (c->bad) return;
    if (m->len != c->len) {
        snprintf(c->why, sizeof c->why, "echo %llu: %zu bytes, want %zu",
                 (unsigned long long)c->recv, m->len, c->len);
    } else if (memcpy(&k, m->data, 8), k != c->recv) {
        snprintf(c->why, sizeof c->why, "echo %llu: is message %llu", (unsigned long long)c->recv,
                 (unsigned long long)k);
    } else if (memcmp(m->data + 8, pattern + k % PATTERN, c->len - 8) != 0) {
        snprintf(c->why, sizeof c->why, "echo %llu: payload differs", (unsigned long long)k);
    } else if (c->recv >= c->sent) {
        snprintf(c->why, sizeof c->why, "echo %llu before it was sent", (unsigned long long)k);
    } else {
        c->recv++;
        c->recv_bytes += m->len;
        if (c->recv == c->n) sm_stream_shutdown(s); /* FIN; the server's FIN closes us */
        return;
    }
    c->bad = true;
    sm_stream_close(s);
}

static void
on_close(sm_stream *s, int reason)
{
    pipe_client *c = sm_stream_get_data(s);
    c->closes++;
    c->reason = reason;
    if (!c->why[0] && reason != 0)
        snprintf(c->why, sizeof c->why, "%s: %s", sm_err_name(reason), sm_stream_error_detail(s));
    c->s = NULL;
    sm_timer_stop(&c->watch);
}

/* Progress or not: a stall is reported, never waited out. */
static void
on_watch(sm_timer *t)
{
    pipe_client *c = t->data;
    uint64_t now = c->sent + c->recv;
    c->quiet_ticks = now == c->seen ? c->quiet_ticks + 1 : 0;
    c->seen = now;
    if (c->quiet_ticks * WATCH_MS < STALL_MS || !c->s) return;
    c->stalled = true;
    snprintf(c->why, sizeof c->why,
             "stalled: %llu of %llu sent, %llu echoes read, %zu queued, no progress for %d ms",
             (unsigned long long)c->sent, (unsigned long long)c->n, (unsigned long long)c->recv,
             sm_stream_queued(c->s), STALL_MS);
    sm_stream_close(c->s);
}

typedef struct bp_case {
    sm_server_model model;
    size_t len;
    bool tiny; /* high_water TINY_WATER on both sides */
    size_t volume;
} bp_case;

static void
run_case(const bp_case *bc)
{
    if (!pattern[1]) fill_pattern();
    const char *one[] = {"tcp://127.0.0.1:0", NULL};
    sm_server_opts so = {
        .listen = one,
        .on_message = sm_server_handler_echo,
        .model = bc->model,
        .threads = bc->model == SM_SERVER_LOOP ? 1 : 0,
        .high_water = bc->tiny ? TINY_WATER : 0,
    };
    char ep[128];
    sm_server *srv = srv_start(&so, ep, sizeof ep);

    /* The client as a user writes it: defaults, or only the watermarks set. */
    const sm_stream_opts co = {
        .spec = &spec,
        .on_connect = on_connect,
        .on_message = on_echo,
        .on_close = on_close,
        .on_drain = on_drain,
        .high_water = bc->tiny ? TINY_WATER : 0,
    };
    pipe_client c = {.len = bc->len, .n = bc->volume / bc->len};
    c.msg = malloc(bc->len);
    assert_non_null(c.msg);
    /* Sending stops at the first 1: the queue never exceeds high_water by
     * more than that message. */
    c.cap = (bc->tiny ? TINY_WATER : (size_t)1 << 20) + 4 + bc->len;
    SM_ASSERT_OK(sm_loop_new(&c.loop, NULL));
    sm_timer_init(c.loop, &c.watch, on_watch);
    c.watch.data = &c;
    SM_ASSERT_OK(sm_timer_start(&c.watch, WATCH_MS, WATCH_MS));
    char why[256] = "";
    int rc = sm_stream_dial(&c.s, c.loop, ep, &co, &c, why, sizeof why);
    if (rc < 0) fail_msg("dial %s: %s: %s", ep, sm_err_name(rc), why);
    int64_t t0 = sm_test_now_ms();
    /* Returns once the stream has closed (and the watchdog with it). */
    SM_ASSERT_OK(sm_loop_run(c.loop, SM_RUN_DEFAULT));
    int64_t ms = sm_test_now_ms() - t0;
    SM_ASSERT_OK(sm_loop_free(c.loop));
    sm_server_stop(srv);
    SM_ASSERT_OK(sm_server_wait(srv));
    sm_server_free(srv);
    free(c.msg);

    print_message("%s %6zu B x %8llu%s: %llu echoes, %llu read before the last send, "
                  "%d sends above high water, %d drains, max queued %zu, %lld ms\n",
                  bc->model == SM_SERVER_LOOP ? "loop  " : "thread", bc->len,
                  (unsigned long long)c.n, bc->tiny ? " tiny" : "     ", (unsigned long long)c.recv,
                  (unsigned long long)c.recv_at_last_send, c.sends_above, c.drains, c.max_queued,
                  (long long)ms);
    if (c.stalled || c.bad || c.reason != 0) fail_msg("%s", c.why);
    assert_int_equal(c.closes, 1);
    assert_int_equal(c.sent, c.n);
    assert_int_equal(c.recv, c.n);
    assert_int_equal(c.recv_bytes, (uint64_t)c.n * c.len);
    /* Pipelined: the sender hit high water and was told to wait, and (when
     * it could not have finished otherwise) read replies while it still had
     * messages to send. */
    assert_true(c.sends_above > 0);
    assert_true(c.drains > 0);
    if (bc->volume >= MUST_READ_WHILE_SENDING) assert_true(c.recv_at_last_send > 0);
    assert_true(c.max_queued <= c.cap);
}

/* 64 B, 4 KiB and 64 KiB messages, with the default watermarks and with
 * tiny ones. */
static void
run_model(sm_server_model model)
{
    static const size_t lens[] = {64, 4096, 65536};
    for (int tiny = 0; tiny < 2; tiny++)
        for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++)
            run_case(&(bp_case){.model = model, .len = lens[i], .tiny = tiny, .volume = VOLUME});
}

static void
test_pipeline_loop_server(void **state)
{
    (void)state;
    run_model(SM_SERVER_LOOP);
}

static void
test_pipeline_thread_server(void **state)
{
    (void)state;
    run_model(SM_SERVER_THREAD);
}

/* ---- a peer that never reads --------------------------------------------------- */

/* A loopback listener whose connections are never accepted: a connect
 * completes in the backlog, and nothing ever reads what it is sent. */
static int
deaf_listener(char *ep, size_t cap)
{
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(lfd >= 0);
    int small = 4096;
    SM_ASSERT_OK(setsockopt(lfd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    SM_ASSERT_OK(bind(lfd, (struct sockaddr *)&a, sizeof a));
    SM_ASSERT_OK(getsockname(lfd, (struct sockaddr *)&a, &alen));
    SM_ASSERT_OK(listen(lfd, 4));
    snprintf(ep, cap, "tcp://127.0.0.1:%u", ntohs(a.sin_port));
    return lfd;
}

typedef struct deaf_client {
    sm_stream *s;
    sm_timer check;
    bool greedy; /* ignores sm_stream_send's 1 and keeps sending */
    size_t high, cap, max_queued;
    int sent, above, drains, closes, reason;
    bool waiting;          /* the last send said 1 and no on_drain came since */
    size_t queued_at_look; /* when the polite client was looked at again */
    uint8_t msg[1000];
} deaf_client;

static void
deaf_pump(deaf_client *c)
{
    for (int i = 0; i < 100000 && c->s; i++) {
        int rc = sm_stream_send(c->s, c->msg, sizeof c->msg);
        if (rc < 0) {
            SM_ASSERT_ERR(rc, SM_ERR_SLOW_CONSUMER);
            return;
        }
        c->sent++;
        size_t q = sm_stream_queued(c->s);
        if (q > c->max_queued) c->max_queued = q;
        assert_true(q <= c->cap);
        if (rc == 1) {
            c->above++;
            c->waiting = true;
            if (!c->greedy) return;
        }
    }
}

static void
deaf_connect(sm_stream *s)
{
    deaf_pump(sm_stream_get_data(s));
}

static void
deaf_drain(sm_stream *s)
{
    deaf_client *c = sm_stream_get_data(s);
    c->drains++;
    c->waiting = false;
    deaf_pump(c);
}

static void
deaf_message(sm_stream *s, const sm_frame_msg *m)
{
    (void)s;
    (void)m;
}

static void
deaf_close(sm_stream *s, int reason)
{
    deaf_client *c = sm_stream_get_data(s);
    c->closes++;
    c->reason = reason;
    c->s = NULL;
    sm_timer_stop(&c->check);
}

/* The polite client, a while later: still waiting above low water (nothing
 * can drain a queue nobody reads); its queue is what it was. */
static void
deaf_check(sm_timer *t)
{
    deaf_client *c = t->data;
    if (!c->s) return;
    c->queued_at_look = sm_stream_queued(c->s);
    sm_stream_close(c->s);
}

static void
run_deaf(bool greedy)
{
    char ep[64];
    int lfd = deaf_listener(ep, sizeof ep);
    static const sm_sock_opts small = {.sndbuf = 4096};
    const sm_stream_opts o = {
        .spec = &spec,
        .on_connect = deaf_connect,
        .on_message = deaf_message,
        .on_close = deaf_close,
        .on_drain = deaf_drain,
        .high_water = 16 << 10,
        .max_queued = 256 << 10,
        .sock = &small,
    };
    deaf_client c = {.greedy = greedy, .high = 16 << 10, .cap = 256 << 10};
    sm_loop *l;
    SM_ASSERT_OK(sm_loop_new(&l, NULL));
    sm_timer_init(l, &c.check, deaf_check);
    c.check.data = &c;
    /* The polite client: once it waits, look again a while later (a bound,
     * not an assertion on time: nothing can drain a queue nobody reads). */
    if (!greedy) SM_ASSERT_OK(sm_timer_start(&c.check, 300, 0));
    SM_ASSERT_OK(sm_stream_dial(&c.s, l, ep, &o, &c, NULL, 0));
    SM_ASSERT_OK(sm_loop_run(l, SM_RUN_DEFAULT));
    SM_ASSERT_OK(sm_loop_free(l));
    close(lfd);
    print_message("%s: %d sent, %d above high water, max queued %zu (cap %zu), reason %s\n",
                  greedy ? "greedy" : "polite", c.sent, c.above, c.max_queued, c.cap,
                  sm_err_name(c.reason));
    assert_int_equal(c.closes, 1);
    assert_true(c.above > 0);
    assert_true(c.max_queued <= c.cap);
    /* The kernel's buffers (4 KiB asked on both ends) take little: most of
     * the 100,000 messages a pump may send were never sent. */
    assert_true(c.sent < 10000);
    if (greedy) {
        /* Past max_queued: closed as a slow consumer, memory bounded. */
        SM_ASSERT_ERR(c.reason, SM_ERR_SLOW_CONSUMER);
    } else {
        /* Told to wait at high water, it waited: never more than one
         * message past it, and still waiting when looked at again. */
        SM_ASSERT_ERR(c.reason, SM_ERR_CLOSED);
        assert_true(c.max_queued <= c.high + sizeof c.msg + 4);
        assert_true(c.waiting);
        assert_true(c.queued_at_look > c.high / 4); /* the default low_water */
    }
}

static void
test_deaf_peer_polite(void **state)
{
    (void)state;
    run_deaf(false);
}

static void
test_deaf_peer_greedy(void **state)
{
    (void)state;
    run_deaf(true);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pipeline_loop_server),
        cmocka_unit_test(test_pipeline_thread_server),
        cmocka_unit_test(test_deaf_peer_polite),
        cmocka_unit_test(test_deaf_peer_greedy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
