/* The benchmark peers (bench/peers) answer correctly: each len32be peer that
 * was built echoes 100 messages of random sizes (0..70000 bytes) byte for
 * byte over TCP and over a Unix socket, several in flight at once; the
 * ZeroMQ and nng peers (their own protocol) pass their own client's checks,
 * ping-pong and pipelined. Every peer must exit 0 on SIGTERM. The peers'
 * libraries are optional for a build (bench/CMakeLists.txt) and installed by
 * `scripts/deps.sh test` (make test): a peer that was not built has no case
 * here (rather than a skipped one), and test_peers_listed says which ran.
 * Under ThreadSanitizer the ZeroMQ and nng checks are not built: libzmq and
 * libnng are not instrumented (see HAVE_OWN_PEER). */
#include "smtest.h"

#include <sockmsg/conn.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(PEER_THREADS) || defined(PEER_LIBUV) || defined(PEER_LIBEVENT) ||                      \
    (defined(PEER_ASYNCIO) && defined(PEER_PYTHON3))
#define HAVE_LEN32BE_PEER 1
#endif
/* Under ThreadSanitizer the own-protocol peers are skipped: libzmq and libnng
 * are not built with it, and their lock-free queues look like races to it. */
#if ((defined(PEER_ZMQ_ECHO) && defined(PEER_ZMQ_CLIENT)) ||                                       \
     (defined(PEER_NNG_ECHO) && defined(PEER_NNG_CLIENT))) &&                                      \
    !defined(PEER_TSAN)
#define HAVE_OWN_PEER 1
#endif

#define NMSG      100
#define MAX_SIZE  70000
#define MAX_AHEAD (64 * 1024) /* bytes in flight: well inside socket buffers */

/* What a test has open, so that teardown cleans up after a failed check. */
static struct {
    int pid, out;
    char endpoint[256];
    char dir[256];
    sm_conn *conn;
} the;

static int
setup(void **state)
{
    (void)state;
    the.pid = 0;
    the.out = -1;
    the.dir[0] = '\0';
    the.conn = NULL;
    return 0;
}

static void
peer_kill(void)
{
    if (the.pid > 0) {
        kill(the.pid, SIGKILL);
        sm_test_wait(the.pid, 10000);
        the.pid = 0;
    }
    if (the.out >= 0) close(the.out);
    the.out = -1;
}

static int
teardown(void **state)
{
    (void)state;
    sm_conn_free(the.conn);
    the.conn = NULL;
    peer_kill();
    if (the.dir[0]) sm_test_rmdir(the.dir);
    the.dir[0] = '\0';
    return 0;
}

#if defined(HAVE_LEN32BE_PEER) || defined(HAVE_OWN_PEER)
/* Start a peer and read where it listens. */
static void
peer_start(char *const argv[], const char *where)
{
    the.pid = sm_test_spawn(argv, &the.out, false);
    char line[300];
    int n = sm_test_read_line(the.out, line, sizeof line, 20000);
    if (n < 0 || strncmp(line, "listening on ", 13))
        fail_msg("%s said '%s', not 'listening on ...'", argv[0], n < 0 ? "(nothing)" : line);
    snprintf(the.endpoint, sizeof the.endpoint, "%s", line + 13);
    /* Port 0 asked for a port: the line says which. */
    if (!strncmp(where, "tcp://", 6)) assert_int_not_equal(atoi(strrchr(the.endpoint, ':') + 1), 0);
}

/* SIGTERM must end a peer with status 0. */
static void
peer_stop(void)
{
    kill(the.pid, SIGTERM);
    int st = sm_test_wait(the.pid, 20000);
    the.pid = 0;
    close(the.out);
    the.out = -1;
    if (st != 0) fail_msg("peer at %s exited %d on SIGTERM (want 0)", the.endpoint, st);
}

/* The endpoints every peer is tried on: TCP port 0, a Unix socket. */
static void
make_wheres(char *unix_where, size_t cap)
{
    sm_test_mkdtemp(the.dir, sizeof the.dir);
    snprintf(unix_where, cap, "unix:%s/peer.sock", the.dir);
}
#endif

#ifdef HAVE_LEN32BE_PEER
/* 100 messages, up to MAX_AHEAD bytes (and at least one message) in flight. */
static void
check_echo(const char *endpoint, uint64_t seed)
{
    sm_conn *c;
    char why[256] = "";
    int rc = sm_conn_dial(&the.conn, endpoint, "len32be,max=128k", 10000, why, sizeof why);
    if (rc < 0) fail_msg("dial %s: %s (%s)", endpoint, sm_strerror(rc), why);
    c = the.conn;
    sm_conn_set_timeout(c, 20000);
    static uint8_t msgs[NMSG][MAX_SIZE];
    size_t lens[NMSG];
    uint64_t rng = seed;
    for (int i = 0; i < NMSG; i++) {
        /* A third tiny, so that many frames share one read. */
        uint64_t r = sm_test_rand(&rng);
        lens[i] = r % 3 == 0 ? (size_t)(r >> 8) % 17 : (size_t)((r >> 8) % (MAX_SIZE + 1));
        for (size_t k = 0; k < lens[i]; k++)
            msgs[i][k] = (uint8_t)sm_test_rand(&rng);
    }
    int sent = 0, got = 0;
    size_t ahead = 0;
    while (got < NMSG) {
        while (sent < NMSG && (sent == got || ahead + lens[sent] <= MAX_AHEAD)) {
            SM_ASSERT_OK(sm_conn_send(c, msgs[sent], lens[sent], SM_CONN_DEFAULT));
            ahead += lens[sent++];
        }
        sm_frame_msg m;
        rc = sm_conn_recv(c, &m, SM_CONN_DEFAULT);
        if (rc != 1) fail_msg("reply %d from %s: %s", got, endpoint, sm_strerror(rc));
        if (m.len != lens[got] || memcmp(m.data, msgs[got], m.len))
            fail_msg("reply %d from %s: %zu bytes, want %zu (seed %llu)", got, endpoint, m.len,
                     lens[got], (unsigned long long)seed);
        ahead -= lens[got++];
    }
    sm_conn_free(c);
    the.conn = NULL;
}

static void
check_len32be_peer(const char *python, const char *path)
{
    char where[300];
    make_wheres(where, sizeof where);
    const char *const wheres[] = {"tcp://127.0.0.1:0", where};
    for (int i = 0; i < 2; i++) {
        char *argv[4];
        int k = 0;
        if (python) argv[k++] = (char *)python;
        argv[k++] = (char *)path;
        argv[k++] = (char *)wheres[i];
        argv[k] = NULL;
        peer_start(argv, wheres[i]);
        check_echo(the.endpoint, 0x9e3779b97f4a7c15ull + (uint64_t)i);
        /* A second connection after the first is gone. */
        check_echo(the.endpoint, 77 + (uint64_t)i);
        peer_stop();
    }
}

#endif

#ifdef HAVE_OWN_PEER
/* An own-protocol server and its client: ping-pong, then pipelined. */
static void
check_own_peer(const char *server, const char *client)
{
    char where[300];
    make_wheres(where, sizeof where);
    const char *const wheres[] = {"tcp://127.0.0.1:0", where};
    for (int i = 0; i < 2; i++) {
        char *sargv[] = {(char *)server, (char *)wheres[i], NULL};
        peer_start(sargv, wheres[i]);
        static const char *const loads[][2] = {{"1", "1"}, {"4", "8"}};
        for (int j = 0; j < 2; j++) {
            char *cargv[] = {(char *)client,      the.endpoint, "--conns",
                             (char *)loads[j][0], "--depth",    (char *)loads[j][1],
                             "--duration",        "0.3",        NULL};
            int out;
            int pid = sm_test_spawn(cargv, &out, true);
            char text[2048];
            sm_test_read_all(out, text, sizeof text, 30000);
            close(out);
            int st = sm_test_wait(pid, 30000);
            if (st != 0) fail_msg("%s exited %d: %s", client, st, text);
            assert_non_null(strstr(text, "\"own_protocol\":true"));
            assert_non_null(strstr(text, "\"errors\":0,"));
            assert_null(strstr(text, "\"messages\":0,"));
        }
        peer_stop();
    }
}
#endif

#if defined(PEER_THREADS)
static void
test_threads(void **state)
{
    (void)state;
    check_len32be_peer(NULL, PEER_THREADS);
}
#endif

#if defined(PEER_LIBUV)
static void
test_libuv(void **state)
{
    (void)state;
    check_len32be_peer(NULL, PEER_LIBUV);
}
#endif

#if defined(PEER_LIBEVENT)
static void
test_libevent(void **state)
{
    (void)state;
    check_len32be_peer(NULL, PEER_LIBEVENT);
}
#endif

#if defined(PEER_ASYNCIO) && defined(PEER_PYTHON3)
static void
test_asyncio(void **state)
{
    (void)state;
    check_len32be_peer(PEER_PYTHON3, PEER_ASYNCIO);
}
#endif

#if defined(PEER_ZMQ_ECHO) && defined(PEER_ZMQ_CLIENT) && !defined(PEER_TSAN)
static void
test_zmq(void **state)
{
    (void)state;
    check_own_peer(PEER_ZMQ_ECHO, PEER_ZMQ_CLIENT);
}
#endif

#if defined(PEER_NNG_ECHO) && defined(PEER_NNG_CLIENT) && !defined(PEER_TSAN)
static void
test_nng(void **state)
{
    (void)state;
    check_own_peer(PEER_NNG_ECHO, PEER_NNG_CLIENT);
}
#endif

/* Which peers this build checks: a missing library shows here and in
 * CMake's "bench peers" line, not as a skipped case. The thread-per-
 * connection peer needs only pthreads, so at least it is always built. */
static void
test_peers_listed(void **state)
{
    (void)state;
    static const char *const built[] = {
#ifdef PEER_THREADS
        "threads",
#endif
#ifdef PEER_LIBUV
        "libuv",
#endif
#ifdef PEER_LIBEVENT
        "libevent",
#endif
#if defined(PEER_ASYNCIO) && defined(PEER_PYTHON3)
        "asyncio",
#endif
#if defined(PEER_ZMQ_ECHO) && defined(PEER_ZMQ_CLIENT) && !defined(PEER_TSAN)
        "zmq",
#endif
#if defined(PEER_NNG_ECHO) && defined(PEER_NNG_CLIENT) && !defined(PEER_TSAN)
        "nng",
#endif
        NULL,
    };
    size_t n = 0;
    for (; built[n]; n++)
        print_message("[ PEER     ] %s\n", built[n]);
#ifndef PEER_THREADS
    fail_msg("the thread-per-connection peer (pthreads only) was not built");
#endif
    assert_true(n >= 1);
}

int
main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
#if defined(PEER_THREADS)
        cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
#endif
#if defined(PEER_LIBUV)
        cmocka_unit_test_setup_teardown(test_libuv, setup, teardown),
#endif
#if defined(PEER_LIBEVENT)
        cmocka_unit_test_setup_teardown(test_libevent, setup, teardown),
#endif
#if defined(PEER_ASYNCIO) && defined(PEER_PYTHON3)
        cmocka_unit_test_setup_teardown(test_asyncio, setup, teardown),
#endif
#if defined(PEER_ZMQ_ECHO) && defined(PEER_ZMQ_CLIENT) && !defined(PEER_TSAN)
        cmocka_unit_test_setup_teardown(test_zmq, setup, teardown),
#endif
#if defined(PEER_NNG_ECHO) && defined(PEER_NNG_CLIENT) && !defined(PEER_TSAN)
        cmocka_unit_test_setup_teardown(test_nng, setup, teardown),
#endif
        cmocka_unit_test(test_peers_listed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
