/* A server's port is its own: a listen on an endpoint someone else already
 * listens on fails with -EADDRINUSE (and a message naming the endpoint),
 * whatever the model and however many loops share the port by SO_REUSEPORT:
 *   - two servers in one process, every pair of models;
 *   - a socket of another process (python3), with SO_REUSEPORT and without;
 *   - Unix endpoints (a path and an abstract name);
 *   - `sockmsg serve` twice on one port;
 * and the first server keeps serving. Still allowed: a restart on a port
 * with connections in TIME_WAIT (SO_REUSEADDR). A server's own REUSEPORT
 * listeners still form one group: connections reach both loops. Every port
 * is picked by the kernel (port 0) and read back. Run once per backend. */
#include "server_util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>

#define WAIT_MS 30000

static const srv_variant loop_one = {SM_SERVER_LOOP, SM_ACCEPT_DEFAULT, 1};
static const srv_variant loop_two = {SM_SERVER_LOOP, SM_ACCEPT_REUSEPORT, 2};
static const srv_variant loop_three = {SM_SERVER_LOOP, SM_ACCEPT_DEFAULT, 3};
static const srv_variant loop_dispatch = {SM_SERVER_LOOP, SM_ACCEPT_DISPATCH, 2};
static const srv_variant threads = {SM_SERVER_THREAD, SM_ACCEPT_DEFAULT, 0};
static const srv_variant *const variants[] = {&loop_one, &loop_two, &loop_three, &loop_dispatch,
                                              &threads};
#define NVARIANTS (sizeof variants / sizeof variants[0])

static sm_server *
start_on(const srv_variant *v, const char *where, char *ep, size_t cap)
{
    const char *listen[] = {where, NULL};
    sm_server_opts o = {.listen = listen, .on_message = sm_server_handler_echo};
    srv_apply(&o, v);
    return srv_start(&o, ep, cap);
}

/* sm_server_new on `where` must fail with -EADDRINUSE, saying where. */
static void
expect_in_use(const srv_variant *v, const char *where)
{
    const char *listen[] = {where, NULL};
    sm_server_opts o = {.listen = listen, .on_message = sm_server_handler_echo};
    srv_apply(&o, v);
    sm_server *srv = NULL;
    char why[256] = "";
    int rc = sm_server_new(&srv, &o, why, sizeof why);
    if (rc != -EADDRINUSE || !strstr(why, where) || !strstr(why, "Address already in use"))
        fail_msg("model %d, %d threads, on %s: %s (%s), want -EADDRINUSE naming it", v->model,
                 v->threads, where, sm_err_name(rc), why);
    assert_null(srv);
}

static void
echo_once(const char *ep, const char *text)
{
    sm_conn *c = cli_dial(ep);
    cli_echo(c, text);
    sm_conn_free(c);
}

static void
stop_free(sm_server *srv)
{
    sm_server_stop(srv);
    SM_ASSERT_OK(sm_server_wait(srv));
    sm_server_free(srv);
}

/* ---- two servers in one process ---------------------------------------------------- */

static void
test_two_servers(void **state)
{
    (void)state;
    for (size_t i = 0; i < NVARIANTS; i++) {
        char ep[128];
        sm_server *first = start_on(variants[i], "tcp://127.0.0.1:0", ep, sizeof ep);
        for (size_t j = 0; j < NVARIANTS; j++)
            expect_in_use(variants[j], ep);
        /* The first still has the port to itself: every connection, on
         * whichever of its listeners, is served. */
        for (int k = 0; k < 8; k++)
            echo_once(ep, "still mine");
        stop_free(first);
    }
}

/* "*" (every address, both families) overlaps 127.0.0.1 both ways. */
static void
test_any_overlaps(void **state)
{
    (void)state;
    char ep[128], other[128];
    sm_server *first = start_on(&loop_two, "tcp://127.0.0.1:0", ep, sizeof ep);
    sm_endpoint e;
    SM_ASSERT_OK(sm_endpoint_parse(&e, ep, NULL, 0));
    snprintf(other, sizeof other, "tcp://*:%u", e.port);
    expect_in_use(&loop_two, other);
    expect_in_use(&loop_one, other);
    stop_free(first);

    first = start_on(&loop_two, "tcp://*:0", ep, sizeof ep);
    SM_ASSERT_OK(sm_server_endpoint(first, 0, &e));
    snprintf(other, sizeof other, "tcp://127.0.0.1:%u", e.port);
    expect_in_use(&loop_two, other);
    expect_in_use(&threads, other);
    echo_once(other, "through *");
    stop_free(first);
}

/* ---- a socket of another process ---------------------------------------------------- */

#ifdef SM_PYTHON3
/* python3 listens on 127.0.0.1 port 0 (SO_REUSEADDR, and SO_REUSEPORT if
 * asked), prints the port and holds it until its stdin ends. */
static int
holder_start(bool reuseport, int *in, uint16_t *port)
{
    char script[512];
    snprintf(script, sizeof script,
             "import socket, sys\n"
             "s = socket.socket()\n"
             "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
             "if %d: s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)\n"
             "s.bind(('127.0.0.1', 0))\n"
             "s.listen()\n"
             "print(s.getsockname()[1], flush=True)\n"
             "sys.stdin.read()\n",
             reuseport ? 1 : 0);
    char *argv[] = {(char *)SM_PYTHON3, "-c", script, NULL};
    int out;
    int pid = sm_test_spawn2(argv, in, &out, NULL);
    char line[32];
    int n = sm_test_read_line(out, line, sizeof line, WAIT_MS);
    close(out);
    if (n <= 0) fail_msg("python3 did not say its port");
    *port = (uint16_t)atoi(line);
    assert_int_not_equal(*port, 0);
    return pid;
}

static void
test_other_process(void **state)
{
    (void)state;
    for (int reuseport = 0; reuseport < 2; reuseport++) {
        int in;
        uint16_t port;
        int pid = holder_start(reuseport, &in, &port);
        char where[64];
        snprintf(where, sizeof where, "tcp://127.0.0.1:%u", port);
        for (size_t j = 0; j < NVARIANTS; j++)
            expect_in_use(variants[j], where);
        close(in);
        assert_int_equal(sm_test_wait(pid, WAIT_MS), 0);
        /* Gone (it accepted nothing, so nothing lingers): the port is free. */
        char ep[128];
        sm_server *srv = start_on(&loop_two, where, ep, sizeof ep);
        echo_once(ep, "after python");
        stop_free(srv);
    }
}
#endif

/* ---- Unix endpoints --------------------------------------------------------------------- */

static void
test_unix(void **state)
{
    (void)state;
    char dir[256], path_ep[400], abstract_ep[128];
    sm_test_mkdtemp(dir, sizeof dir);
    snprintf(path_ep, sizeof path_ep, "unix:%s/port.sock", dir);
    snprintf(abstract_ep, sizeof abstract_ep, "unix:@sm-port-test-%d", (int)getpid());
    const char *const eps[] = {path_ep, abstract_ep};
    for (size_t k = 0; k < 2; k++) {
        for (size_t i = 0; i < NVARIANTS; i++) {
            char ep[512];
            sm_server *first = start_on(variants[i], eps[k], ep, sizeof ep);
            for (size_t j = 0; j < NVARIANTS; j++)
                expect_in_use(variants[j], eps[k]);
            /* The live socket file was left alone. */
            echo_once(ep, "unix, still mine");
            stop_free(first);
        }
    }
    struct stat st;
    assert_int_equal(stat(path_ep + 5, &st), -1);
    sm_test_rmdir(dir);
}

/* ---- a restart over TIME_WAIT ------------------------------------------------------------ */

/* A bind without SO_REUSEADDR fails there: a connection lingers. */
static bool
port_lingers(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool in_use = bind(fd, (struct sockaddr *)&a, sizeof a) < 0 && errno == EADDRINUSE;
    close(fd);
    return in_use;
}

static void
test_restart_over_time_wait(void **state)
{
    (void)state;
    for (size_t i = 0; i < NVARIANTS; i++) {
        char ep[128];
        sm_server *srv = start_on(variants[i], "tcp://127.0.0.1:0", ep, sizeof ep);
        sm_conn *c = cli_dial(ep);
        cli_echo(c, "before the restart");
        /* The stop half-closes first and waits for our EOF: the server's
         * end of the connection goes to TIME_WAIT. */
        sm_server_stop(srv);
        assert_int_equal(cli_expect_end(c, WAIT_MS), 0);
        sm_conn_free(c);
        SM_ASSERT_OK(sm_server_wait(srv));
        sm_server_free(srv);
        sm_endpoint e;
        SM_ASSERT_OK(sm_endpoint_parse(&e, ep, NULL, 0));
        if (!port_lingers(e.port)) fail_msg("no TIME_WAIT left on %s", ep);
        for (size_t j = 0; j < NVARIANTS; j++) {
            char again[128];
            srv = start_on(variants[j], ep, again, sizeof again);
            assert_string_equal(again, ep);
            echo_once(ep, "after the restart");
            stop_free(srv);
        }
    }
}

/* ---- the server's own group ---------------------------------------------------------------- */

typedef struct loops_seen {
    pthread_mutex_t lock;
    pthread_t ids[8];
    int n;
} loops_seen;

static void
note_loop(sm_peer *p)
{
    loops_seen *s = sm_server_get_data(sm_peer_server(p));
    pthread_t me = pthread_self();
    pthread_mutex_lock(&s->lock);
    bool known = false;
    for (int i = 0; i < s->n && !known; i++)
        known = pthread_equal(s->ids[i], me);
    if (!known && s->n < 8) s->ids[s->n++] = me;
    pthread_mutex_unlock(&s->lock);
}

/* The first listener joins the REUSEPORT group after it listens: the kernel
 * must still spread connections over both loops' listeners (64 connections
 * on one loop would be a 2^-63 chance). */
static void
test_group_spreads(void **state)
{
    (void)state;
    loops_seen seen = {.lock = PTHREAD_MUTEX_INITIALIZER};
    const char *listen[] = {"tcp://127.0.0.1:0", NULL};
    sm_server_opts o = {.listen = listen,
                        .on_message = sm_server_handler_echo,
                        .on_open = note_loop,
                        .data = &seen};
    srv_apply(&o, &loop_two);
    char ep[128];
    sm_server *srv = srv_start(&o, ep, sizeof ep);
    for (int i = 0; i < 64; i++)
        echo_once(ep, "which loop");
    stop_free(srv);
    assert_int_equal(seen.n, 2);
}

/* ---- sockmsg serve twice ----------------------------------------------------------------------
 */

#ifdef SOCKMSG_BIN
/* `sockmsg serve --listen tcp://127.0.0.1:0 --model M --threads N`, its
 * endpoint in ep, its stdout and stderr on *out and *err. */
static int
serve_start(const char *model, const char *nthreads, int *out, int *err, char *ep, size_t cap)
{
    char *argv[] = {(char *)SOCKMSG_BIN, "serve",          "--listen",
                    "tcp://127.0.0.1:0", "--model",        (char *)model,
                    "--threads",         (char *)nthreads, NULL};
    int pid = sm_test_spawn2(argv, NULL, out, err);
    char line[256];
    int n = sm_test_read_line(*out, line, sizeof line, WAIT_MS);
    if (n < 0 || strncmp(line, "listening on ", 13) != 0)
        fail_msg("sockmsg serve said '%s'", n < 0 ? "(nothing)" : line);
    snprintf(ep, cap, "%s", line + 13);
    return pid;
}

/* A second `sockmsg serve` on ep exits 1 with the cause. */
static void
serve_expect_in_use(const char *ep, const char *model, const char *nthreads)
{
    char *argv[] = {(char *)SOCKMSG_BIN,
                    "serve",
                    "--listen",
                    (char *)ep,
                    "--model",
                    (char *)model,
                    nthreads ? "--threads" : NULL,
                    (char *)nthreads,
                    NULL};
    int fd;
    int pid = sm_test_spawn(argv, &fd, true);
    char out[4096];
    sm_test_read_all(fd, out, sizeof out, WAIT_MS);
    close(fd);
    int code = sm_test_wait(pid, WAIT_MS);
    char want[300];
    snprintf(want, sizeof want, "sockmsg: listen on %s: Address already in use", ep);
    if (code != 1 || !strstr(out, want))
        fail_msg("second serve (%s, %s threads): exit %d, output:\n%s\nwant: %s", model,
                 nthreads ? nthreads : "default", code, out, want);
}

static void
test_cli_twice(void **state)
{
    (void)state;
    static const char *const firsts[][2] = {{"loop", "2"}, {"loop", "1"}, {"thread", "4"}};
    for (size_t i = 0; i < sizeof firsts / sizeof firsts[0]; i++) {
        int out, err;
        char ep[256];
        int pid = serve_start(firsts[i][0], firsts[i][1], &out, &err, ep, sizeof ep);
        serve_expect_in_use(ep, "loop", NULL); /* one loop per core */
        serve_expect_in_use(ep, "loop", "2");
        serve_expect_in_use(ep, "loop", "1");
        serve_expect_in_use(ep, "thread", NULL);
        for (int k = 0; k < 8; k++)
            echo_once(ep, "the first serve still serves");
        kill(pid, SIGTERM);
        char log[4096];
        sm_test_read_all(err, log, sizeof log, WAIT_MS);
        assert_int_equal(sm_test_wait(pid, WAIT_MS), 0);
        if (!strstr(log, "messages 8 in, 8 out")) fail_msg("first serve's stats:\n%s", log);
        close(out);
        close(err);
    }
}
#endif

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_servers),   cmocka_unit_test(test_any_overlaps),
#ifdef SM_PYTHON3
        cmocka_unit_test(test_other_process),
#endif
        cmocka_unit_test(test_unix),          cmocka_unit_test(test_restart_over_time_wait),
        cmocka_unit_test(test_group_spreads),
#ifdef SOCKMSG_BIN
        cmocka_unit_test(test_cli_twice),
#endif
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
