/* What an idle connection costs, on a bare sm_stream and on an sm_server
 * (loop model). Two measures, one per kind of build:
 * - plain builds: a generous bound on server RSS per idle connection,
 *   measured the way bench/idle_rss reports it (the benchmark runs 10,000
 *   connections and reports the figure; this only guards against a
 *   regression that makes idle connections expensive);
 * - ASan/TSan builds (SM_SANITIZED): RSS says nothing there (redzones,
 *   shadow memory, quarantine), so those cases are not built at all, not
 *   skipped. What does hold is the heap: the sanitizer's allocator hooks
 *   (__sanitizer_install_malloc_and_free_hooks) see every allocation and
 *   free of the process, so a stream and a server run in this process and
 *   the bytes and allocations per idle connection they add are bounded by
 *   the contract in sockmsg/server.h ("one 128-byte malloc chunk", plus a
 *   24-byte first-message entry on a server). The fd tables (mmap'd) are
 *   the RSS cases' to guard. */
#include "smtest.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef SM_SANITIZED

static void
test_idle_memory(void **state)
{
    const char *peer = *state;
    int srv_out;
    char *srv_argv[] = {(char *)peer, "tcp://127.0.0.1:0", NULL};
    int srv = sm_test_spawn(srv_argv, &srv_out, false);
    char line[256];
    assert_true(sm_test_read_line(srv_out, line, sizeof line, 10000) > 0);
    char *addr = strstr(line, "tcp://");
    assert_non_null(addr);

    char pid[16];
    snprintf(pid, sizeof pid, "%d", srv);
    int out;
    char *argv[] = {IDLE_RSS, addr, pid, "2000", "--json", NULL};
    int cli = sm_test_spawn(argv, &out, true);
    char text[1024];
    sm_test_read_all(out, text, sizeof text, 60000);
    close(out);
    int st = sm_test_wait(cli, 60000);
    kill(srv, SIGTERM);
    sm_test_wait(srv, 10000);
    close(srv_out);
    if (st != 0) fail_msg("idle_rss exited %d: %s", st, text);

    const char *conns = strstr(text, "\"connections\": ");
    const char *per = strstr(text, "\"bytes_per_conn\": ");
    assert_non_null(conns);
    assert_non_null(per);
    long n = strtol(conns + strlen("\"connections\": "), NULL, 10);
    double bytes = strtod(per + strlen("\"bytes_per_conn\": "), NULL);
    print_message("%ld idle connections (%s): %.1f B of server RSS each\n", n,
                  strrchr(peer, '/') ? strrchr(peer, '/') + 1 : peer, bytes);
    assert_int_equal(n, 2000);
    /* The design target is 160 B (bench/idle_rss with 10,000 connections,
     * Release). This debug build at 2,000 connections measured 158-191 B
     * (per-loop pages, such as io_uring's buffer pool, weigh more over
     * fewer connections; page granularity is 2 B here), so 240 B leaves
     * room for noise yet fails on a second allocation per idle connection
     * (a 48-byte chunk) or tables that keep their outgrown copies. */
    if (bytes > 240) fail_msg("an idle connection costs %.1f B of server RSS (bound: 240)", bytes);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate(test_idle_memory, PEER_STREAM),
        cmocka_unit_test_prestate(test_idle_memory, PEER_SERVER),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

#else /* SM_SANITIZED: the heap, counted through the allocator's hooks */

#include "server_util.h"

#include <netinet/in.h>
#include <stdatomic.h>
#include <sys/socket.h>

#include <sockmsg/loop.h>
#include <sockmsg/stream.h>

/* The sanitizers' allocator interface (sanitizer/allocator_interface.h),
 * exported by libasan and libtsan; GCC's packages on Debian ship no such
 * header, so declare what is used when it is missing. */
#if defined(__has_include)
#if __has_include(<sanitizer/allocator_interface.h>)
#include <sanitizer/allocator_interface.h>
#define SM_HAVE_ALLOCATOR_INTERFACE 1
#endif
#endif
#ifndef SM_HAVE_ALLOCATOR_INTERFACE
int __sanitizer_install_malloc_and_free_hooks(void (*malloc_hook)(const volatile void *, size_t),
                                              void (*free_hook)(const volatile void *));
size_t __sanitizer_get_allocated_size(const volatile void *p);
int __sanitizer_get_ownership(const volatile void *p);
#endif

#define WARM         64   /* connections before the baseline: per-loop state made */
#define IDLE         1000 /* connections measured */
#define T            10000

/* The contract's one chunk: 128 bytes of malloc (a request of at most
 * 120). */
#define STREAM_BOUND 128
/* A server's idle connection also waits for its first message: a 24-byte
 * entry in a per-loop queue that grows by doubling, so up to twice that
 * per connection right after a growth. */
#define SERVER_BOUND (STREAM_BOUND + 2 * 24)
/* Allocations beyond one per connection: per-loop arrays regrown. */
#define SLACK_ALLOCS 16

/* Live heap of the whole process (every thread), in requested bytes and
 * in allocations, kept by the allocator's hooks. Not
 * __sanitizer_get_current_allocated_bytes: TSan's counts the chunks its
 * thread caches take from the central allocator, batches at a time (1000
 * mallocs of 112 bytes read as 144.8 B each; ASan's reads 112.0). The
 * hooks run inside malloc and free: atomics only, nothing allocated. */
static _Atomic long long heap_bytes;
static _Atomic long long heap_allocs;

static void
on_malloc(const volatile void *p, size_t n)
{
    (void)p;
    atomic_fetch_add_explicit(&heap_bytes, (long long)n, memory_order_relaxed);
    atomic_fetch_add_explicit(&heap_allocs, 1, memory_order_relaxed);
}

static void
on_free(const volatile void *p)
{
    if (!p || !__sanitizer_get_ownership(p)) return;
    long long n = (long long)__sanitizer_get_allocated_size(p);
    atomic_fetch_sub_explicit(&heap_bytes, n, memory_order_relaxed);
    atomic_fetch_sub_explicit(&heap_allocs, 1, memory_order_relaxed);
}

typedef struct heap_mark {
    long long bytes, allocs;
} heap_mark;

static heap_mark
heap_now(void)
{
    return (heap_mark){atomic_load(&heap_bytes), atomic_load(&heap_allocs)};
}

/* A blocking client connection to 127.0.0.1:port. */
static int
dial_raw(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0)
        fail_msg("connect to port %u: %s", port, strerror(errno));
    return fd;
}

static void
close_fds(const int *fds, int n)
{
    for (int i = 0; i < n; i++)
        close(fds[i]);
}

static void
echo(sm_stream *s, const sm_frame_msg *m)
{
    sm_stream_send_frame(s, m);
}

static const sm_frame_spec len32 = {.kind = SM_FRAME_LENGTH, .len_width = 4};
/* bench/peers/sockmsg_stream.c's streams. */
static const sm_stream_opts stream_opts = {
    .spec = &len32, .on_message = echo, .read_backpressure = SM_READ_BP_PAUSE};

/* What IDLE connections added between two marks: at most bound bytes
 * each, and about one allocation each. */
static void
report(const char *what, heap_mark base, heap_mark now, int bound)
{
    double per = (double)(now.bytes - base.bytes) / IDLE;
    long long allocs = now.allocs - base.allocs;
    print_message("%d idle connections (%s): %.1f B of heap each, %lld allocations\n", IDLE, what,
                  per, allocs);
    if (per > bound)
        fail_msg("an idle %s connection holds %.1f B of heap (bound: %d)", what, per, bound);
    if (allocs > IDLE + SLACK_ALLOCS)
        fail_msg("%d idle %s connections hold %lld allocations (bound: %d)", IDLE, what, allocs,
                 IDLE + SLACK_ALLOCS);
}

/* Streams on a loop of this thread, each on an accepted socket, as the
 * stream peer makes them; the loop runs (without waiting) until every
 * stream has armed its reads. */
static void
test_idle_heap_stream(void **state)
{
    (void)state;
    int fds0 = sm_test_count_fds();
    sm_loop *loop;
    SM_ASSERT_OK(sm_loop_new(&loop, NULL));
    uint16_t port;
    int l = sm_test_listen_loopback(64, &port);
    static int cli[WARM + IDLE];
    static sm_stream *st[WARM + IDLE];
    heap_mark base = {0, 0};
    for (int i = 0; i < WARM + IDLE; i++) {
        if (i == WARM) {
            for (int k = 0; k < 4; k++)
                SM_ASSERT_OK(sm_loop_run(loop, SM_RUN_NOWAIT));
            base = heap_now();
        }
        cli[i] = dial_raw(port);
        int fd = accept4(l, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        assert_true(fd >= 0);
        SM_ASSERT_OK(sm_stream_new_take(&st[i], loop, fd, &stream_opts, NULL));
    }
    for (int k = 0; k < 4; k++)
        SM_ASSERT_OK(sm_loop_run(loop, SM_RUN_NOWAIT));
    heap_mark now = heap_now();
    for (int i = 0; i < WARM + IDLE; i++)
        sm_stream_close(st[i]);
    /* Closes finish in the loop (io_uring's cancellations complete later):
     * run it until nothing is left, a bounded number of iterations. */
    for (int i = 0; i < 1000 && SM_ASSERT_OK(sm_loop_run(loop, SM_RUN_ONCE)) > 0; i++)
        ;
    SM_ASSERT_ERR(sm_loop_free(loop), 0);
    close(l);
    close_fds(cli, WARM + IDLE);
    assert_int_equal(sm_test_count_fds(), fds0);
    report("stream", base, now, STREAM_BOUND);
}

/* Connect n more clients, a backlog's worth at a time (the loop accepts
 * them; connects beyond a full queue would wait on SYN retries). */
static void
connect_more(const sm_server *srv, uint16_t port, int *cli, int from, int n)
{
    for (int i = from; i < from + n; i++) {
        cli[i] = dial_raw(port);
        if ((i + 1) % 64 == 0 || i + 1 == from + n)
            SM_WAIT_FOR(srv_stats(srv).current == (uint64_t)(i + 1), T);
    }
}

/* The server of bench/peers/sockmsg_server.c (loop model, one loop, echo). */
static void
test_idle_heap_server(void **state)
{
    (void)state;
    int fds0 = sm_test_count_fds();
    const char *one[] = {"tcp://127.0.0.1:0", NULL};
    sm_server_opts o = {
        .listen = one, .model = SM_SERVER_LOOP, .threads = 1, .on_message = sm_server_handler_echo};
    char ep[128];
    sm_server *srv = srv_start(&o, ep, sizeof ep);
    const char *colon = strrchr(ep, ':');
    assert_non_null(colon);
    uint16_t port = (uint16_t)strtoul(colon + 1, NULL, 10);
    static int cli[WARM + IDLE];
    connect_more(srv, port, cli, 0, WARM);
    heap_mark base = heap_now();
    connect_more(srv, port, cli, WARM, IDLE);
    heap_mark now = heap_now();
    close_fds(cli, WARM + IDLE);
    SM_WAIT_FOR(srv_stats(srv).current == 0, T);
    sm_server_free(srv);
    assert_int_equal(sm_test_count_fds(), fds0);
    report("server", base, now, SERVER_BOUND);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idle_heap_stream),
        cmocka_unit_test(test_idle_heap_server),
    };
    if (!__sanitizer_install_malloc_and_free_hooks(on_malloc, on_free)) {
        fprintf(stderr, "test_idle_memory: the sanitizer took no allocator hooks\n");
        return 1;
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}

#endif
