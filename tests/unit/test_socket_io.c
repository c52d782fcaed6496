/* socket module, part 1: accept, options and I/O with deadlines, on real
 * loopback sockets. Dialing and listening are in test_socket_dial.c. */
#include "smtest.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <sockmsg/socket.h>

#define BIG (4u << 20)

/* ---- fixtures ---------------------------------------------------------- */

/* A listener on 127.0.0.1 port 0; *bound receives its address. */
static int
listen_opts(const sm_sock_opts *o, sm_endpoint *bound)
{
    sm_endpoint ep;
    char why[256];
    assert_int_equal(sm_endpoint_parse(&ep, "tcp://127.0.0.1:0", NULL, 0), 0);
    int l = (int)SM_ASSERT_OK(sm_listen_endpoint(&ep, o, 0, bound, why, sizeof why));
    assert_int_not_equal(bound->port, 0);
    return l;
}

/* The same; *dial_to receives the endpoint string to dial. */
static int
listen_local(char *dial_to, size_t len)
{
    sm_endpoint bound;
    int l = listen_opts(NULL, &bound);
    SM_ASSERT_OK(sm_endpoint_format(&bound, dial_to, len));
    return l;
}

/* A connected TCP pair over loopback; options (NULL: defaults) go on both
 * sides before the handshake, as buffer sizes must. */
static void
tcp_pair_opts(const sm_sock_opts *o, int *client, int *server)
{
    sm_endpoint bound;
    char why[256];
    int l = listen_opts(o, &bound);
    *client = (int)SM_ASSERT_OK(sm_dial_endpoint(&bound, o, 5000, why, sizeof why));
    *server = (int)SM_ASSERT_OK(sm_accept(l, 5000, NULL));
    close(l);
}

static void
tcp_pair(int *client, int *server)
{
    tcp_pair_opts(NULL, client, server);
}

static uint8_t
pattern(size_t pos)
{
    return (uint8_t)((pos * 2654435761u) >> 13);
}

static int64_t
elapsed_since(int64_t t0)
{
    return sm_test_now_ms() - t0;
}

/* ---- a reader thread that checks every byte ---------------------------- */

struct reader {
    int fd;
    size_t want;
    uint64_t seed;
    size_t got;
    int err; /* first error or mismatch */
};

static void *
reader_main(void *arg)
{
    struct reader *r = arg;
    uint8_t buf[8192];
    int64_t t0 = sm_test_now_ms();
    /* Small, varied reads keep the tiny receive buffer full most of the time,
     * so the sender sees many partial sends and EAGAINs. */
    while (r->got < r->want && elapsed_since(t0) < 30000) {
        size_t chunk = 1 + (size_t)(sm_test_rand(&r->seed) % sizeof buf);
        ssize_t n = sm_recv_some(r->fd, buf, chunk, 10000);
        if (n <= 0) {
            r->err = n == 0 ? SM_ERR_TRUNCATED : (int)n;
            break;
        }
        for (ssize_t i = 0; i < n; i++) {
            if (buf[i] != pattern(r->got + (size_t)i)) {
                r->err = -EBADMSG;
                return NULL;
            }
        }
        r->got += (size_t)n;
    }
    return NULL;
}

static const sm_sock_opts tiny = {.sndbuf = 4096, .rcvbuf = 4096};

static void
small_buffers(int client, int server)
{
    SM_ASSERT_OK(sm_sock_set_opts(client, &tiny));
    SM_ASSERT_OK(sm_sock_set_opts(server, &tiny));
}

/* ---- tests --------------------------------------------------------------- */

static void
test_send_all_partial_writes(void **state)
{
    (void)state;
    int c, s;
    tcp_pair_opts(&tiny, &c, &s);
    uint8_t *data = malloc(BIG);
    assert_non_null(data);
    for (size_t i = 0; i < BIG; i++)
        data[i] = pattern(i);

    /* Nobody reads yet: a try-once send fills the buffers and stops short. */
    size_t done = 12345;
    SM_ASSERT_ERR(sm_send_all(c, data, BIG, 0, &done), -ETIMEDOUT);
    assert_true(done > 0 && done < BIG);

    struct reader r = {.fd = s, .want = BIG, .seed = 42};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, reader_main, &r), 0);
    size_t more = 0;
    assert_int_equal(SM_ASSERT_OK(sm_send_all(c, data + done, BIG - done, 20000, &more)),
                     BIG - done);
    assert_int_equal(more, BIG - done);
    pthread_join(t, NULL);
    SM_ASSERT_OK(r.err);
    assert_int_equal(r.got, BIG);
    free(data);
    close(c);
    close(s);
}

static void
test_sendv_all_many_iovecs(void **state)
{
    (void)state;
    int c, s;
    tcp_pair_opts(&tiny, &c, &s);
    uint8_t *data = malloc(BIG);
    assert_non_null(data);
    for (size_t i = 0; i < BIG; i++)
        data[i] = pattern(i);

    /* Varied sizes, empty entries among them, far more entries than IOV_MAX. */
    int cap = 20000, n = 0;
    struct iovec *iov = calloc((size_t)cap, sizeof *iov);
    assert_non_null(iov);
    uint64_t seed = 7;
    for (size_t pos = 0; pos < BIG; n++) {
        assert_true(n < cap);
        uint64_t r = sm_test_rand(&seed);
        size_t len = r % 7 == 0 ? 0 : 1 + (size_t)(r >> 8) % 700;
        if (len > BIG - pos) len = BIG - pos;
        iov[n] = (struct iovec){.iov_base = data + pos, .iov_len = len};
        pos += len;
    }
    assert_true(n > 4 * 1024);
    struct iovec *copy = malloc((size_t)n * sizeof *iov);
    assert_non_null(copy);
    memcpy(copy, iov, (size_t)n * sizeof *iov);

    struct reader r = {.fd = s, .want = BIG, .seed = 99};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, reader_main, &r), 0);
    size_t done = 0;
    assert_int_equal(SM_ASSERT_OK(sm_sendv_all(c, iov, n, 20000, &done)), BIG);
    assert_int_equal(done, BIG);
    pthread_join(t, NULL);
    SM_ASSERT_OK(r.err);
    assert_int_equal(r.got, BIG);
    assert_memory_equal(iov, copy, (size_t)n * sizeof *iov);

    /* Nothing to send, and bad arguments. */
    assert_int_equal(sm_sendv_all(c, iov, 0, 0, &done), 0);
    assert_int_equal(done, 0);
    struct iovec empty[3] = {{data, 0}, {NULL, 0}, {data, 0}};
    assert_int_equal(sm_sendv_all(c, empty, 3, 0, NULL), 0);
    SM_ASSERT_ERR(sm_sendv_all(c, iov, -1, 0, NULL), -EINVAL);
    done = 77;
    SM_ASSERT_ERR(sm_sendv_all(c, NULL, 2, 0, &done), -EINVAL);
    assert_int_equal(done, 0);
    struct iovec huge[2] = {{data, SIZE_MAX / 2}, {data, SIZE_MAX / 2}};
    SM_ASSERT_ERR(sm_sendv_all(c, huge, 2, 0, NULL), -EINVAL);
    SM_ASSERT_ERR(sm_send_all(c, NULL, 1, 0, NULL), -EINVAL);
    free(copy);
    free(iov);
    free(data);
    close(c);
    close(s);
}

static void
test_sendv_timeout_reports_done(void **state)
{
    (void)state;
    int c, s;
    tcp_pair_opts(&tiny, &c, &s);
    static uint8_t block[64 * 1024];
    struct iovec iov[64];
    for (int i = 0; i < 64; i++)
        iov[i] = (struct iovec){.iov_base = block, .iov_len = sizeof block};
    size_t done = 0;
    int64_t t0 = sm_test_now_ms();
    SM_ASSERT_ERR(sm_sendv_all(c, iov, 64, 100, &done), -ETIMEDOUT);
    int64_t ms = elapsed_since(t0);
    assert_true(ms >= 90); /* never early; how late is load's */
    assert_true(done > 0 && done < 64 * sizeof block);
    close(c);
    close(s);
}

static void
test_recv_exact_eof_and_truncation(void **state)
{
    (void)state;
    int c, s;
    char buf[16];
    size_t done = 99;

    /* Clean EOF at a message boundary. */
    tcp_pair(&c, &s);
    assert_int_equal(sm_send_all(c, "abcd", 4, 1000, NULL), 4);
    SM_ASSERT_OK(sm_shutdown_write(c));
    assert_int_equal(sm_recv_exact(s, buf, 4, 1000, &done), 4);
    assert_int_equal(done, 4);
    assert_memory_equal(buf, "abcd", 4);
    assert_int_equal(sm_recv_exact(s, buf, 4, 1000, &done), 0);
    assert_int_equal(done, 0);
    close(c);
    close(s);

    /* EOF in the middle of a message. */
    tcp_pair(&c, &s);
    assert_int_equal(sm_send_all(c, "xyz", 3, 1000, NULL), 3);
    close(c);
    SM_ASSERT_ERR(sm_recv_exact(s, buf, 10, 1000, &done), SM_ERR_TRUNCATED);
    assert_int_equal(done, 3);
    assert_memory_equal(buf, "xyz", 3);
    assert_int_equal(sm_recv_some(s, buf, sizeof buf, 1000), 0);
    close(s);
}

static void
test_recv_deadlines(void **state)
{
    (void)state;
    int c, s;
    char buf[16];
    size_t done = 99;
    tcp_pair(&c, &s);

    int64_t t0 = sm_test_now_ms();
    SM_ASSERT_ERR(sm_recv_exact(s, buf, 4, 100, &done), -ETIMEDOUT);
    int64_t ms = elapsed_since(t0);
    assert_true(ms >= 90); /* never early; how late is load's */
    assert_int_equal(done, 0);

    /* Part of the message, then silence: the timeout covers the whole call. */
    assert_int_equal(sm_send_all(c, "ab", 2, 1000, NULL), 2);
    t0 = sm_test_now_ms();
    SM_ASSERT_ERR(sm_recv_exact(s, buf, 4, 100, &done), -ETIMEDOUT);
    ms = elapsed_since(t0);
    assert_true(ms >= 90); /* never early; how late is load's */
    assert_int_equal(done, 2);

    t0 = sm_test_now_ms();
    SM_ASSERT_ERR(sm_recv_some(s, buf, sizeof buf, 100), -ETIMEDOUT);
    ms = elapsed_since(t0);
    assert_true(ms >= 90); /* never early; how late is load's */

    /* Timeout 0 tries once: nothing there is a timeout, data there is taken. */
    SM_ASSERT_ERR(sm_recv_exact(s, buf, 1, 0, &done), -ETIMEDOUT);
    SM_ASSERT_ERR(sm_recv_some(s, buf, sizeof buf, 0), -ETIMEDOUT);
    assert_int_equal(sm_send_all(c, "cdef", 4, 1000, NULL), 4);
    /* Wait for the bytes themselves before trying once. */
    SM_ASSERT_OK(sm_recv_exact(s, buf, 1, 2000, &done));
    assert_int_equal(buf[0], 'c');
    assert_int_equal(sm_recv_exact(s, buf, 3, 0, &done), 3);
    assert_memory_equal(buf, "def", 3);
    SM_ASSERT_ERR(sm_recv_some(s, buf, 0, 0), -EINVAL);
    assert_int_equal(sm_recv_exact(s, buf, 0, 0, &done), 0);
    close(c);
    close(s);
}

static void
test_accept_deadlines_and_peer(void **state)
{
    (void)state;
    char to[300];
    int l = listen_local(to, sizeof to);

    int64_t t0 = sm_test_now_ms();
    SM_ASSERT_ERR(sm_accept(l, 100, NULL), -ETIMEDOUT);
    int64_t ms = elapsed_since(t0);
    assert_true(ms >= 90); /* never early; how late is load's */
    SM_ASSERT_ERR(sm_accept(l, 0, NULL), -ETIMEDOUT);

    /* A non-blocking listener too; the accepted fd is blocking anyway. */
    SM_ASSERT_OK(sm_sock_set_nonblock(l, true));
    int c = (int)SM_ASSERT_OK(sm_dial(to, 5000));
    sm_addr peer;
    memset(&peer, 0, sizeof peer);
    int s = (int)SM_ASSERT_OK(sm_accept(l, 5000, &peer));
    assert_int_equal(fcntl(s, F_GETFL) & O_NONBLOCK, 0);
    assert_true(fcntl(s, F_GETFD) & FD_CLOEXEC);
    int on = 0;
    socklen_t len = sizeof on;
    assert_int_equal(getsockopt(s, IPPROTO_TCP, TCP_NODELAY, &on, &len), 0);
    assert_int_equal(on, 1);

    sm_endpoint from, local;
    SM_ASSERT_OK(sm_addr_to_endpoint((struct sockaddr *)&peer.ss, peer.len, &from));
    SM_ASSERT_OK(sm_sock_local(c, &local));
    assert_string_equal(from.host, "127.0.0.1");
    assert_int_equal(from.port, local.port);
    close(c);
    close(s);
    close(l);
}

/* ---- EINTR ----------------------------------------------------------------- */

static atomic_int signals_seen;

static void
on_sigusr1(int sig)
{
    (void)sig;
    atomic_fetch_add(&signals_seen, 1);
}

struct blocked {
    int fd;
    int timeout_ms;
    bool accept;    /* sm_accept instead of sm_recv_exact */
    atomic_int tid; /* set when the thread starts */
    atomic_int finished;
    ssize_t result;
    size_t done;
    char buf[8];
};

static void *
blocked_main(void *arg)
{
    struct blocked *b = arg;
    atomic_store(&b->tid, (int)gettid());
    if (b->accept)
        b->result = sm_accept(b->fd, b->timeout_ms, NULL);
    else
        b->result = sm_recv_exact(b->fd, b->buf, sizeof b->buf, b->timeout_ms, &b->done);
    atomic_store(&b->finished, 1);
    return NULL;
}

/* Whether thread `tid` is asleep in the kernel (state S in its stat file):
 * then a signal interrupts a wait instead of arriving before it. */
static bool
sleeping(int tid)
{
    char path[64], line[512];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", tid);
    FILE *f = fopen(path, "r");
    if (!f) return false;
    size_t n = fread(line, 1, sizeof line - 1, f);
    fclose(f);
    line[n] = '\0';
    const char *end = strrchr(line, ')');
    return end && end[1] == ' ' && end[2] == 'S';
}

/* Interrupt the thread `count` times while it waits: each time wait until it
 * sleeps, signal it, and wait for the handler to have run. Returns how many
 * signals were handled while it slept, before it finished. */
static int
interrupt(pthread_t t, struct blocked *b, int count)
{
    int64_t t0 = sm_test_now_ms();
    while (!atomic_load(&b->tid) && elapsed_since(t0) < 5000)
        sched_yield();
    int handled = 0;
    for (int i = 0; i < count && !atomic_load(&b->finished); i++) {
        while (!sleeping(atomic_load(&b->tid)) && !atomic_load(&b->finished) &&
               elapsed_since(t0) < 5000)
            sched_yield();
        if (atomic_load(&b->finished)) break;
        int before = atomic_load(&signals_seen);
        assert_int_equal(pthread_kill(t, SIGUSR1), 0);
        while (atomic_load(&signals_seen) == before && elapsed_since(t0) < 5000)
            sched_yield();
        handled += atomic_load(&signals_seen) != before;
    }
    return handled;
}

static void
install_sigusr1(struct sigaction *old)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigusr1;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: waits really see EINTR */
    assert_int_equal(sigaction(SIGUSR1, &sa, old), 0);
}

static void
test_eintr_recv_exact(void **state)
{
    (void)state;
    struct sigaction old;
    install_sigusr1(&old);
    int c, s;
    tcp_pair(&c, &s);

    /* Data arrives after the signals: the call still succeeds. */
    struct blocked b = {.fd = s, .timeout_ms = 10000};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, blocked_main, &b), 0);
    int handled = interrupt(t, &b, 5);
    assert_int_equal(sm_send_all(c, "12345678", 8, 1000, NULL), 8);
    pthread_join(t, NULL);
    assert_true(handled >= 1);
    assert_int_equal(SM_ASSERT_OK(b.result), 8);
    assert_memory_equal(b.buf, "12345678", 8);

    /* No data: signals neither fail the call nor extend its deadline. */
    struct blocked b2 = {.fd = s, .timeout_ms = 300};
    int64_t t0 = sm_test_now_ms();
    assert_int_equal(pthread_create(&t, NULL, blocked_main, &b2), 0);
    interrupt(t, &b2, 20);
    pthread_join(t, NULL);
    int64_t ms = elapsed_since(t0);
    SM_ASSERT_ERR(b2.result, -ETIMEDOUT);
    assert_true(ms >= 290); /* never early; how late is load's */

    close(c);
    close(s);
    assert_int_equal(sigaction(SIGUSR1, &old, NULL), 0);
}

static void
test_eintr_accept(void **state)
{
    (void)state;
    struct sigaction old;
    install_sigusr1(&old);
    char to[300];
    int l = listen_local(to, sizeof to);

    struct blocked b = {.fd = l, .timeout_ms = 10000, .accept = true};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, blocked_main, &b), 0);
    int handled = interrupt(t, &b, 5);
    int c = (int)SM_ASSERT_OK(sm_dial(to, 5000));
    pthread_join(t, NULL);
    assert_true(handled >= 1);
    int s = (int)SM_ASSERT_OK(b.result);
    close(s);
    close(c);
    close(l);
    assert_int_equal(sigaction(SIGUSR1, &old, NULL), 0);
}

/* ---- closing, half-closing ---------------------------------------------- */

static void
test_half_close(void **state)
{
    (void)state;
    int c, s;
    tcp_pair(&c, &s);
    char buf[16];
    size_t done;

    /* The client sends its request and says "no more"; the server reads to
     * EOF, answers, and the client still receives the answer. */
    assert_int_equal(sm_send_all(c, "request", 7, 1000, NULL), 7);
    SM_ASSERT_OK(sm_shutdown_write(c));
    assert_int_equal(sm_recv_exact(s, buf, 7, 1000, &done), 7);
    assert_int_equal(sm_recv_exact(s, buf, 1, 1000, &done), 0);
    assert_int_equal(sm_send_all(s, "reply", 5, 1000, NULL), 5);
    SM_ASSERT_OK(sm_shutdown_write(s));
    assert_int_equal(sm_recv_exact(c, buf, 5, 1000, &done), 5);
    assert_memory_equal(buf, "reply", 5);
    assert_int_equal(sm_recv_some(c, buf, sizeof buf, 1000), 0);
    SM_ASSERT_ERR(sm_send_all(c, "x", 1, 1000, NULL), -EPIPE);
    close(c);
    close(s);
}

static void
test_send_to_closed_peer_no_sigpipe(void **state)
{
    (void)state;
    /* The default action of SIGPIPE kills the process: make sure it is the
     * default, so a single stray SIGPIPE fails this test. */
    struct sigaction dfl, old;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    assert_int_equal(sigaction(SIGPIPE, &dfl, &old), 0);

    for (int vec = 0; vec < 2; vec++) {
        int c, s;
        tcp_pair(&c, &s);
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        assert_int_equal(setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
        close(s); /* a reset */
        static char chunk[64 * 1024];
        struct iovec iov[2] = {{chunk, 1000}, {chunk, sizeof chunk - 1000}};
        ssize_t rc = 0;
        int64_t t0 = sm_test_now_ms();
        for (int i = 0; i < 1000 && rc >= 0 && elapsed_since(t0) < 10000; i++)
            rc = vec ? sm_sendv_all(c, iov, 2, 1000, NULL)
                     : sm_send_all(c, chunk, sizeof chunk, 1000, NULL);
        assert_true(rc == -EPIPE || rc == -ECONNRESET);
        rc = vec ? sm_sendv_all(c, iov, 2, 1000, NULL) : sm_send_all(c, chunk, 10, 1000, NULL);
        assert_true(rc == -EPIPE || rc == -ECONNRESET);
        close(c);
    }
    assert_int_equal(sigaction(SIGPIPE, &old, NULL), 0);
}

/* ---- options ------------------------------------------------------------- */

static int
get_int(int fd, int level, int name)
{
    int v = -1;
    socklen_t len = sizeof v;
    assert_int_equal(getsockopt(fd, level, name, &v, &len), 0);
    return v;
}

static void
test_options(void **state)
{
    (void)state;
    int c, s;
    tcp_pair(&c, &s);
    /* sm_dial applied the defaults. */
    assert_int_equal(get_int(c, IPPROTO_TCP, TCP_NODELAY), 1);

    sm_sock_opts o = {
        .nodelay = -1,
        .keepalive = true,
        .keepalive_idle_s = 30,
        .keepalive_intvl_s = 5,
        .keepalive_cnt = 4,
        .user_timeout_ms = 7000,
        .sndbuf = 65536,
        .rcvbuf = 32768,
    };
    SM_ASSERT_OK(sm_sock_set_opts(c, &o));
    assert_int_equal(get_int(c, IPPROTO_TCP, TCP_NODELAY), 0);
    assert_int_equal(get_int(c, SOL_SOCKET, SO_KEEPALIVE), 1);
    assert_int_equal(get_int(c, IPPROTO_TCP, TCP_KEEPIDLE), 30);
    assert_int_equal(get_int(c, IPPROTO_TCP, TCP_KEEPINTVL), 5);
    assert_int_equal(get_int(c, IPPROTO_TCP, TCP_KEEPCNT), 4);
    assert_int_equal(get_int(c, IPPROTO_TCP, TCP_USER_TIMEOUT), 7000);
    /* Linux doubles the value for its bookkeeping. */
    assert_true(get_int(c, SOL_SOCKET, SO_SNDBUF) >= 65536);
    assert_true(get_int(c, SOL_SOCKET, SO_RCVBUF) >= 32768);

    SM_ASSERT_OK(sm_sock_set_opts(c, NULL));
    assert_int_equal(get_int(c, IPPROTO_TCP, TCP_NODELAY), 1);
    o = (sm_sock_opts){.nodelay = 1};
    SM_ASSERT_OK(sm_sock_set_opts(c, &o));
    assert_int_equal(get_int(c, IPPROTO_TCP, TCP_NODELAY), 1);

    /* A bad value is reported, not ignored. */
    o = (sm_sock_opts){.keepalive = true, .keepalive_idle_s = 1 << 30};
    SM_ASSERT_ERR(sm_sock_set_opts(c, &o), -EINVAL);
    SM_ASSERT_ERR(sm_sock_set_opts(-1, NULL), -EBADF);

    SM_ASSERT_OK(sm_sock_set_nonblock(s, true));
    assert_true(fcntl(s, F_GETFL) & O_NONBLOCK);
    SM_ASSERT_OK(sm_sock_set_nonblock(s, false));
    assert_false(fcntl(s, F_GETFL) & O_NONBLOCK);
    SM_ASSERT_ERR(sm_sock_set_nonblock(-1, true), -EBADF);
    close(c);
    close(s);

    /* TCP options do not apply to a Unix socket and are skipped. */
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    o = (sm_sock_opts){.nodelay = 1, .keepalive = true, .user_timeout_ms = 5, .sndbuf = 8192};
    SM_ASSERT_OK(sm_sock_set_opts(sv[0], &o));
    assert_true(get_int(sv[0], SOL_SOCKET, SO_SNDBUF) >= 8192);
    close(sv[0]);
    close(sv[1]);
}

/* The I/O helpers also work on a non-blocking fd and on Unix sockets. */
static void
test_nonblocking_fd_and_unix(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    SM_ASSERT_OK(sm_sock_set_nonblock(sv[0], true));
    SM_ASSERT_OK(sm_sock_set_nonblock(sv[1], true));
    small_buffers(sv[0], sv[1]);
    uint8_t *data = malloc(BIG / 4);
    assert_non_null(data);
    for (size_t i = 0; i < BIG / 4; i++)
        data[i] = pattern(i);
    struct reader r = {.fd = sv[1], .want = BIG / 4, .seed = 5};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, reader_main, &r), 0);
    assert_int_equal(SM_ASSERT_OK(sm_send_all(sv[0], data, BIG / 4, 20000, NULL)), BIG / 4);
    pthread_join(t, NULL);
    SM_ASSERT_OK(r.err);
    assert_int_equal(r.got, BIG / 4);
    free(data);
    close(sv[0]);
    close(sv[1]);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_send_all_partial_writes),
        cmocka_unit_test(test_sendv_all_many_iovecs),
        cmocka_unit_test(test_sendv_timeout_reports_done),
        cmocka_unit_test(test_recv_exact_eof_and_truncation),
        cmocka_unit_test(test_recv_deadlines),
        cmocka_unit_test(test_accept_deadlines_and_peer),
        cmocka_unit_test(test_eintr_recv_exact),
        cmocka_unit_test(test_eintr_accept),
        cmocka_unit_test(test_half_close),
        cmocka_unit_test(test_send_to_closed_peer_no_sigpipe),
        cmocka_unit_test(test_options),
        cmocka_unit_test(test_nonblocking_fd_and_unix),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
