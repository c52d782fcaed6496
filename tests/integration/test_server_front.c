/* The thread model's front (server_front.c): a connection gets a thread
 * only once its PROXY header and a whole first message have arrived, with
 * the bytes read so far handed to the thread; stalled clients hold no
 * thread; connection threads have small stacks. Run once per loop backend
 * (the front runs on the acceptor's loop). */
#include "server_util.h"

#include <arpa/inet.h>
#include <malloc.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdlib.h>

#include <sockmsg/proxy.h>

enum { THREADS = 4, STALLED = 60 };

static int
dial_fd(const char *ep)
{
    sm_endpoint e;
    SM_ASSERT_OK(sm_endpoint_parse(&e, ep, NULL, 0));
    return (int)SM_ASSERT_OK(sm_dial_endpoint(&e, NULL, 5000, NULL, 0));
}

static void
send_bytes(int fd, const void *b, size_t n)
{
    SM_ASSERT_OK(sm_send_all(fd, b, n, 5000, NULL));
}

/* Read exactly n bytes (the echoes) within 10 s. */
static void
recv_bytes(int fd, uint8_t *b, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t k = sm_recv_some(fd, b + got, n - got, 10000);
        if (k <= 0) fail_msg("after %zu of %zu bytes: %zd", got, n, k);
        got += (size_t)k;
    }
}

static void
be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Clients that stall before their first message is whole (silent, half a
 * length prefix, a prefix and part of the payload) take no thread: with 4
 * threads and 60 of them connected, healthy clients, more of them at once
 * than there are threads over time, get every echo. */
static void
test_stalled_hold_no_thread(void **state)
{
    (void)state;
    const char *one[] = {"tcp://127.0.0.1:0", NULL};
    sm_server_opts o = {.listen = one,
                        .model = SM_SERVER_THREAD,
                        .threads = THREADS,
                        .on_message = sm_server_handler_echo,
                        .first_message_timeout_ms = 600000};
    char ep[128];
    sm_server *srv = srv_start(&o, ep, sizeof ep);
    int stalled[STALLED];
    for (int i = 0; i < STALLED; i++) {
        stalled[i] = dial_fd(ep);
        uint8_t part[6] = {0, 0, 0, 9, 'a', 'b'};
        if (i % 3 == 1) send_bytes(stalled[i], part, 2);
        if (i % 3 == 2) send_bytes(stalled[i], part, sizeof part);
    }
    SM_WAIT_FOR(srv_stats(srv).current == STALLED, 10000);
    for (int round = 0; round < 3 * THREADS; round++) {
        sm_conn *c = cli_dial(ep);
        for (int i = 0; i < 20; i++)
            cli_echo(c, "healthy");
        sm_conn_free(c);
        /* Its thread is free once the server has seen it go. */
        SM_WAIT_FOR(srv_stats(srv).current == STALLED, 10000);
    }
    sm_server_stats st = srv_stats(srv);
    assert_int_equal(st.opened, 3 * THREADS);
    assert_int_equal(st.closes[SM_CLOSE_REFUSED], 0);
    for (int i = 0; i < STALLED; i++)
        close(stalled[i]);
    sm_server_free(srv);
}

/* Replies with the client's address as the server sees it. */
static void
addr_reply(sm_peer *p, const sm_frame_msg *m)
{
    (void)m;
    sm_addr a;
    char text[128] = "?";
    if (sm_peer_addr(p, &a) >= 0)
        sm_addr_format((const struct sockaddr *)&a.ss, a.len, text, sizeof text);
    sm_peer_send(p, text, strlen(text));
}

/* PROXY headers are read on the front: clients with half a header, and
 * clients with a whole header and then nothing, hold no thread; a healthy
 * proxied client is served and sees its real address; the first-message
 * deadline closes those that sent a header and nothing more, the header
 * deadline those with half a header, none of them reaching the handlers. */
static void
test_proxy_on_front(void **state)
{
    (void)state;
    enum { FIRST_MS = 3000, N = 30 };
    const char *one[] = {"tcp://127.0.0.1:0", NULL};
    sm_server_opts o = {.listen = one,
                        .model = SM_SERVER_THREAD,
                        .threads = THREADS,
                        .on_message = addr_reply,
                        .proxy_protocol = true,
                        .first_message_timeout_ms = FIRST_MS};
    char ep[128];
    sm_server *srv = srv_start(&o, ep, sizeof ep);
    sm_addr src = sm_test_inet4("203.0.113.7", 4242), dst = sm_test_inet4("192.0.2.1", 443);
    uint8_t hdr[256];
    size_t hlen = (size_t)SM_ASSERT_OK(sm_proxy_encode_v1(&src, &dst, hdr, sizeof hdr));
    int fds[2 * N];
    for (int i = 0; i < 2 * N; i++) {
        fds[i] = dial_fd(ep);
        send_bytes(fds[i], hdr, i < N ? hlen / 2 : hlen);
    }
    SM_WAIT_FOR(srv_stats(srv).current == 2 * N, 10000);
    for (int round = 0; round < 2 * THREADS; round++) {
        int fd = dial_fd(ep);
        uint8_t msg[4 + 2];
        be32(msg, 2);
        memcpy(msg + 4, "hi", 2);
        send_bytes(fd, hdr, hlen);
        send_bytes(fd, msg, sizeof msg);
        const char want[] = "tcp://203.0.113.7:4242";
        uint8_t got[4 + sizeof want - 1];
        recv_bytes(fd, got, sizeof got);
        assert_memory_equal(got + 4, want, sizeof want - 1);
        close(fd);
        SM_WAIT_FOR(srv_stats(srv).current <= 2 * N, 10000);
    }
    /* Every stalled one is closed by a deadline, as a timeout. */
    SM_WAIT_FOR(srv_stats(srv).closes[SM_CLOSE_TIMEOUT] == 2 * N, 4 * FIRST_MS);
    for (int i = 0; i < 2 * N; i++) {
        char b;
        ssize_t n = sm_recv_some(fds[i], &b, 1, 10000);
        if (n > 0 || n == -ETIMEDOUT) fail_msg("stalled client %d: %zd", i, n);
        close(fds[i]);
    }
    assert_int_equal(srv_stats(srv).opened, 2 * THREADS);
    sm_server_free(srv);
}

/* What the front read goes to the thread: a first write holding one whole
 * message and part of the next, the rest later, and then a message in
 * 1-byte writes: every echo exact and in order. */
static void
test_bytes_handed_over(void **state)
{
    (void)state;
    const char *one[] = {"tcp://127.0.0.1:0", NULL};
    sm_server_opts o = {.listen = one,
                        .model = SM_SERVER_THREAD,
                        .threads = THREADS,
                        .on_message = sm_server_handler_echo};
    char ep[128];
    sm_server *srv = srv_start(&o, ep, sizeof ep);
    int fd = dial_fd(ep);
    uint8_t wire[3 * (4 + 5)];
    for (int i = 0; i < 3; i++) {
        be32(wire + i * 9, 5);
        memcpy(wire + i * 9 + 4, i == 0 ? "first" : i == 1 ? "secnd" : "third", 5);
    }
    send_bytes(fd, wire, 9 + 6); /* all of the first, 6 bytes of the second */
    uint8_t back[sizeof wire];
    recv_bytes(fd, back, 9);
    send_bytes(fd, wire + 15, 3); /* the rest of the second */
    for (size_t i = 18; i < sizeof wire; i++)
        send_bytes(fd, wire + i, 1);
    recv_bytes(fd, back + 9, sizeof wire - 9);
    assert_memory_equal(back, wire, sizeof wire);
    close(fd);
    sm_server_free(srv);
}

/* The stack size is an option; below PTHREAD_STACK_MIN it is refused, and
 * a handler that needs more than the default runs on what was asked. */
static void
big_frame(sm_peer *p, const sm_frame_msg *m)
{
    volatile uint8_t local[512 << 10];
    local[0] = (uint8_t)m->len;
    for (size_t i = 1; i < sizeof local; i += 4096)
        local[i] = local[i - 1];
    sm_peer_send(p, m->data, m->len);
}

static void
test_stack_size(void **state)
{
    (void)state;
    const char *one[] = {"tcp://127.0.0.1:0", NULL};
    sm_server_opts o = {.listen = one,
                        .model = SM_SERVER_THREAD,
                        .on_message = big_frame,
                        .thread_stack_size = 1024};
    sm_server *srv = NULL;
    char why[256];
    SM_ASSERT_ERR(sm_server_new(&srv, &o, why, sizeof why), -EINVAL);
    assert_non_null(strstr(why, "thread_stack_size"));
    o.thread_stack_size = (size_t)2 << 20;
    char ep[128];
    srv = srv_start(&o, ep, sizeof ep);
    sm_conn *c = cli_dial(ep);
    cli_echo(c, "deep");
    sm_conn_free(c);
    sm_server_free(srv);
}

/* ---- message_timeout_ms, both models ------------------------------------------------ */

static atomic_int msg_timeouts;

static void
note_close(sm_peer *p, int reason)
{
    if (reason == -ETIMEDOUT && strstr(sm_peer_error_detail(p), "message timeout"))
        atomic_fetch_add(&msg_timeouts, 1);
}

/* A client that answered its first message and then leaves the next one
 * unfinished is closed by the message deadline, told why, in both models;
 * one that is merely quiet at a message boundary is not. */
static void
test_message_timeout(void **state)
{
    (void)state;
    for (int model = 0; model < 2; model++) {
        atomic_store(&msg_timeouts, 0);
        const char *one[] = {"tcp://127.0.0.1:0", NULL};
        sm_server_opts o = {.listen = one,
                            .model = model ? SM_SERVER_THREAD : SM_SERVER_LOOP,
                            .threads = 2,
                            .on_message = sm_server_handler_echo,
                            .on_close = note_close,
                            .message_timeout_ms = 300};
        char ep[128];
        sm_server *srv = srv_start(&o, ep, sizeof ep);
        sm_conn *quiet = cli_dial(ep);
        cli_echo(quiet, "then a boundary");
        sm_conn *c = cli_dial(ep);
        cli_echo(c, "first");
        uint8_t part[4 + 2] = {0, 0, 0, 9, 'a', 'b'};
        send_bytes(sm_conn_fd(c), part, sizeof part);
        cli_expect_end(c, 10000);
        sm_conn_free(c);
        SM_WAIT_FOR(atomic_load(&msg_timeouts) == 1, 5000);
        assert_int_equal(srv_stats(srv).closes[SM_CLOSE_TIMEOUT], 1);
        cli_echo(quiet, "still here");
        sm_conn_free(quiet);
        sm_server_free(srv);
    }
}

#ifndef SM_SANITIZED
/* /proc/self/status fields, in KiB. */
static long
status_kib(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    assert_non_null(f);
    char line[256];
    long v = -1;
    size_t n = strlen(field);
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, field, n) && line[n] == ':') v = strtol(line + n + 1, NULL, 10);
    fclose(f);
    return v;
}

/* What an idle thread-model connection costs: 200 connections, each
 * having echoed one message (so each has its thread), measured as the
 * process's growth in virtual size and RSS (client sockets included, which
 * are small), with malloc arenas bounded as `sockmsg serve` bounds them.
 * The bound is generous: the 128 KiB stack and its guard page are most of
 * it. Not built under sanitizers: they reserve shadow memory and fake
 * stacks per thread, so the process's size says nothing there (and a
 * skipped case would hide that it never runs). */
static void
test_idle_thread_cost(void **state)
{
    (void)state;
    enum { N = 200 };
    mallopt(M_ARENA_MAX, 2);
    const char *one[] = {"tcp://127.0.0.1:0", NULL};
    sm_server_opts o = {.listen = one,
                        .model = SM_SERVER_THREAD,
                        .threads = N + 1,
                        .on_message = sm_server_handler_echo};
    char ep[128];
    sm_server *srv = srv_start(&o, ep, sizeof ep);
    sm_conn *warm = cli_dial(ep);
    cli_echo(warm, "warm");
    long vsz0 = status_kib("VmSize"), rss0 = status_kib("VmRSS");
    sm_conn **c = calloc(N, sizeof *c);
    assert_non_null(c);
    for (int i = 0; i < N; i++) {
        c[i] = cli_dial(ep);
        cli_echo(c[i], "idle");
    }
    long vsz = status_kib("VmSize") - vsz0, rss = status_kib("VmRSS") - rss0;
    print_message("%d idle thread-model connections: %.1f KiB virtual, %.1f KiB RSS each\n", N,
                  (double)vsz / N, (double)rss / N);
    if (vsz / N > 512) fail_msg("an idle connection costs %ld KiB of virtual size", vsz / N);
    if (rss / N > 128) fail_msg("an idle connection costs %ld KiB of RSS", rss / N);
    for (int i = 0; i < N; i++)
        sm_conn_free(c[i]);
    free(c);
    sm_conn_free(warm);
    sm_server_free(srv);
}
#endif

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stalled_hold_no_thread), cmocka_unit_test(test_proxy_on_front),
        cmocka_unit_test(test_bytes_handed_over),      cmocka_unit_test(test_stack_size),
        cmocka_unit_test(test_message_timeout),
#ifndef SM_SANITIZED
        cmocka_unit_test(test_idle_thread_cost),
#endif
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
