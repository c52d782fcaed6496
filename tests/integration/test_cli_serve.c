/* `sockmsg serve` and `sockmsg demo` run as processes:
 *   - usage errors (exit 2 with the library's explanation and the hint) and
 *     an address in use (exit 1 with the cause);
 *   - echo through `sockmsg cat` with framing, on TCP and a Unix socket at
 *     once, in both execution models; discard; chat between two cats;
 *   - the options that change behaviour: --max-conns, --idle-timeout,
 *     --proxy-protocol, -v (connections logged with their close reasons);
 *   - SIGUSR1 prints statistics, SIGTERM drains the connections and exits 0
 *     with statistics (also right after start), a second signal forces it;
 *   - `sockmsg bench` against `sockmsg serve --echo` finds no errors;
 *   - `sockmsg demo` verifies every row of its table.
 * Servers listen on port 0 and say where; Unix sockets go in a fresh
 * directory. Every wait is bounded and every process reaped (killed by its
 * pid past the bound). */
#include "smtest.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sockmsg/conn.h>
#include <sockmsg/socket.h>

#ifndef SOCKMSG_BIN
#error "SOCKMSG_BIN must name the sockmsg executable"
#endif

#define WAIT_MS  30000
#define DEMO_MS  170000
#define MAX_EPS  4
#define LINE_MAX 1024
#define LOG_MAX  65536

/* ---- a server process ------------------------------------------------------------- */

typedef struct server {
    int pid;
    int out, err;               /* its stdout and stderr */
    char ep[MAX_EPS][LINE_MAX]; /* the bound endpoints it printed */
    int nep;
    char log[LOG_MAX]; /* stderr read so far */
    size_t log_len;
} server;

static void
argv_of(char **argv, size_t cap, const char *const args[])
{
    size_t n = 0;
    argv[n++] = (char *)SOCKMSG_BIN;
    for (size_t i = 0; args[i]; i++) {
        assert_true(n + 1 < cap);
        argv[n++] = (char *)args[i];
    }
    argv[n] = NULL;
}

/* Start `sockmsg serve ARGS` and read its `nep` "listening on" lines. */
static void
server_start(server *s, int nep, const char *const args[])
{
    char *argv[32];
    argv_of(argv, 32, args);
    memset(s, 0, sizeof *s);
    s->pid = sm_test_spawn2(argv, NULL, &s->out, &s->err);
    for (int i = 0; i < nep; i++) {
        char line[LINE_MAX];
        int n = sm_test_read_line(s->out, line, sizeof line, WAIT_MS);
        if (n < 0 || strncmp(line, "listening on ", 13) != 0) {
            print_error("server line %d: %s\n", i + 1, n < 0 ? "(none)" : line);
            fail();
        }
        snprintf(s->ep[i], sizeof s->ep[i], "%s", line + 13);
    }
    s->nep = nep;
}

#define SERVER(s, nep, ...)                                                                        \
    server_start((s), (nep), (const char *const[]){"serve", __VA_ARGS__, NULL})

/* Read the server's stderr until a line holds `needle`; true if one did. */
static bool
server_expect(server *s, const char *needle)
{
    if (strstr(s->log, needle)) return true;
    int64_t end = sm_test_now_ms() + WAIT_MS;
    while (sm_test_now_ms() < end) {
        char line[LINE_MAX];
        int left = (int)(end - sm_test_now_ms());
        if (sm_test_read_line(s->err, line, sizeof line, left > 0 ? left : 1) < 0) break;
        s->log_len +=
            (size_t)snprintf(s->log + s->log_len, sizeof s->log - s->log_len, "%s\n", line);
        if (s->log_len >= sizeof s->log) s->log_len = sizeof s->log - 1;
        if (strstr(line, needle)) return true;
    }
    return false;
}

static void
expect_log(server *s, const char *needle)
{
    if (!server_expect(s, needle)) {
        print_error("no '%s' on the server's stderr:\n%s\n", needle, s->log);
        fail();
    }
}

/* Send sig, read the rest of stderr, reap. Returns the exit status. */
static int
server_stop(server *s, int sig)
{
    if (sig) kill(s->pid, sig);
    size_t n = sm_test_read_all(s->err, s->log + s->log_len, sizeof s->log - s->log_len, WAIT_MS);
    s->log_len += n;
    int code = sm_test_wait(s->pid, WAIT_MS);
    close(s->out);
    close(s->err);
    return code;
}

/* ---- running a client to its end --------------------------------------------------- */

typedef struct result {
    int code;
    char out[16384];
} result;

/* Run `sockmsg ARGS` with `input` on stdin (NULL: none); its stdout, then
 * its stderr, end up in r->out. For commands that print little: stderr is
 * read after stdout's end. */
static void
tool_run(result *r, const char *input, int timeout_ms, const char *const args[])
{
    char *argv[32];
    argv_of(argv, 32, args);
    int in = -1, out, err;
    int pid = sm_test_spawn2(argv, input ? &in : NULL, &out, &err);
    if (input) {
        /* Small inputs: they fit the pipe, so writing cannot block. */
        assert_int_equal(write(in, input, strlen(input)), (ssize_t)strlen(input));
        close(in);
    }
    size_t n = sm_test_read_all(out, r->out, sizeof r->out, timeout_ms);
    sm_test_read_all(err, r->out + n, sizeof r->out - n, timeout_ms);
    close(out);
    close(err);
    r->code = sm_test_wait(pid, timeout_ms);
}

#define TOOL(r, input, ...)                                                                        \
    tool_run((r), (input), WAIT_MS, (const char *const[]){__VA_ARGS__, NULL})

/* Run sockmsg with stdout and stderr together, no stdin. */
static void
tool_merged(result *r, int timeout_ms, const char *const args[])
{
    char *argv[32];
    argv_of(argv, 32, args);
    int fd;
    int pid = sm_test_spawn(argv, &fd, true);
    sm_test_read_all(fd, r->out, sizeof r->out, timeout_ms);
    close(fd);
    r->code = sm_test_wait(pid, timeout_ms);
}

#define MERGED(r, ms, ...) tool_merged((r), (ms), (const char *const[]){__VA_ARGS__, NULL})

static void
expect_result(const result *r, int code, const char *has)
{
    if (r->code != code || (has && !strstr(r->out, has))) {
        print_error("exit %d (want %d), output:\n%s\nwant: %s\n", r->code, code, r->out,
                    has ? has : "(anything)");
        fail();
    }
}

/* `sockmsg cat --frame SPEC ENDPOINT` with input; its stdout must be want. */
static void
cat_echo(const char *ep, const char *frame, const char *input, const char *want)
{
    result r;
    TOOL(&r, input, "cat", "--frame", frame, ep);
    if (r.code != 0 || strcmp(r.out, want) != 0) {
        print_error("cat %s --frame %s: exit %d, output:\n%s\nwant:\n%s\n", ep, frame, r.code,
                    r.out, want);
        fail();
    }
}

/* A connection of our own, framed len32be. */
static sm_conn *
dial(const char *ep)
{
    sm_conn *c;
    char why[256] = "";
    if (sm_conn_dial(&c, ep, "len32be", WAIT_MS, why, sizeof why) < 0) {
        print_error("dial %s: %s\n", ep, why);
        fail();
    }
    sm_conn_set_timeout(c, WAIT_MS);
    return c;
}

static void
conn_echo(sm_conn *c, const char *text)
{
    SM_ASSERT_OK(sm_conn_send(c, text, strlen(text), SM_CONN_DEFAULT));
    sm_frame_msg m;
    assert_int_equal(SM_ASSERT_OK(sm_conn_recv(c, &m, SM_CONN_DEFAULT)), 1);
    assert_int_equal(m.len, strlen(text));
    assert_memory_equal(m.data, text, m.len);
}

/* The server closes c: EOF or a reset, within the bound. */
static void
conn_expect_closed(sm_conn *c)
{
    sm_frame_msg m;
    int rc = sm_conn_recv(c, &m, WAIT_MS);
    if (rc != 0 && rc != -ECONNRESET) {
        print_error("recv: %d (%s), want EOF or a reset\n", rc, sm_err_name(rc));
        fail();
    }
}

/* ---- tests ------------------------------------------------------------------------- */

static void
test_usage_errors(void **state)
{
    (void)state;
    result r;
    TOOL(&r, NULL, "serve", "--listen", "tcp://127.0.0.1:0", "--frame", "len24be");
    expect_result(&r, 2, "sockmsg serve: bad value 'len24be' for --frame: unknown codec 'len24be'");
    expect_result(&r, 2, "try 'sockmsg serve --help'");
    /* A name that cannot resolve is a runtime failure naming the listen
     * endpoint (.invalid never resolves: RFC 6761). */
    TOOL(&r, NULL, "serve", "--listen", "tcp://nosuchhost.invalid:80");
    expect_result(&r, 1,
                  "sockmsg: listen on tcp://nosuchhost.invalid:80: cannot resolve "
                  "'nosuchhost.invalid'");
    TOOL(&r, NULL, "serve", "--listen", "tcp://127.0.0.1:0", "--bogus");
    expect_result(&r, 2, "unknown option '--bogus'");
    expect_result(&r, 2, "try 'sockmsg serve --help'");
    TOOL(&r, NULL, "serve", "--echo");
    expect_result(&r, 2, "missing --listen");
    TOOL(&r, NULL, "serve", "--listen", "tcp://127.0.0.1:99999");
    expect_result(&r, 2, "port 99999 out of range");
    TOOL(&r, NULL, "serve", "--listen", "udp://127.0.0.1:1");
    expect_result(&r, 2, "try 'sockmsg serve --help'");
    TOOL(&r, NULL, "serve", "--listen", "tcp://127.0.0.1:0", "--model", "fork");
    expect_result(&r, 2, "--model");
    TOOL(&r, NULL, "serve", "--listen", "tcp://127.0.0.1:0", "--echo", "--chat");
    expect_result(&r, 2, "pick one");
    TOOL(&r, NULL, "serve", "--listen", "tcp://127.0.0.1:0", "--threads", "0");
    expect_result(&r, 2, "--threads");
    TOOL(&r, NULL, "serve", "--listen", "tcp://127.0.0.1:0", "--idle-timeout", "soon");
    expect_result(&r, 2, "--idle-timeout");
    TOOL(&r, NULL, "serve", "tcp://127.0.0.1:0");
    expect_result(&r, 2, "unexpected argument");
    TOOL(&r, NULL, "serve", "--help");
    expect_result(&r, 0, "usage: sockmsg serve");
    TOOL(&r, NULL, "demo", "extra");
    expect_result(&r, 2, "try 'sockmsg demo --help'");
    TOOL(&r, NULL, "demo", "--help");
    expect_result(&r, 0, "usage: sockmsg demo");
}

static void
test_address_in_use(void **state)
{
    (void)state;
    sm_endpoint bound;
    char ep[LINE_MAX], why[256];
    sm_endpoint want;
    SM_ASSERT_OK(sm_endpoint_parse(&want, "tcp://127.0.0.1:0", NULL, 0));
    int fd = SM_ASSERT_OK(sm_listen_endpoint(&want, NULL, 0, &bound, why, sizeof why));
    SM_ASSERT_OK(sm_endpoint_format(&bound, ep, sizeof ep));
    result r;
    TOOL(&r, NULL, "serve", "--listen", ep);
    expect_result(&r, 1, "sockmsg: ");
    expect_result(&r, 1, "in use");
    assert_null(strstr(r.out, "try 'sockmsg"));
    close(fd);
}

static void
echo_both_endpoints(const char *model)
{
    char dir[512], unix_ep[600];
    sm_test_mkdtemp(dir, sizeof dir);
    snprintf(unix_ep, sizeof unix_ep, "unix:%s/echo.sock", dir);
    server s;
    SERVER(&s, 2, "--echo", "--frame", "len32be", "--model", model, "--listen", "tcp://127.0.0.1:0",
           "--listen", unix_ep);
    sm_endpoint tcp;
    SM_ASSERT_OK(sm_endpoint_parse(&tcp, s.ep[0], NULL, 0));
    assert_string_equal(tcp.host, "127.0.0.1");
    assert_int_not_equal(tcp.port, 0); /* port 0 resolved */
    assert_string_equal(s.ep[1], unix_ep);
    cat_echo(s.ep[0], "len32be", "hello\nworld\n\nlast line\n", "hello\nworld\n\nlast line\n");
    cat_echo(s.ep[1], "len32be", "over a unix socket\n", "over a unix socket\n");
    assert_int_equal(server_stop(&s, SIGTERM), 0);
    if (!strstr(s.log, "messages 5 in, 5 out") || !strstr(s.log, "clean 2")) {
        print_error("stats:\n%s\n", s.log);
        fail();
    }
    struct stat st;
    assert_int_equal(stat(unix_ep + 5, &st), -1); /* the socket file is gone */
    sm_test_rmdir(dir);
}

static void
test_echo_loop(void **state)
{
    (void)state;
    echo_both_endpoints("loop");
}

static void
test_echo_thread(void **state)
{
    (void)state;
    echo_both_endpoints("thread");
}

static void
test_echo_framings(void **state)
{
    (void)state;
    static const char *const frames[] = {"line", "netstring", "varint", "ascii:4", "crlf"};
    for (size_t i = 0; i < sizeof frames / sizeof frames[0]; i++) {
        server s;
        SERVER(&s, 1, "--listen", "tcp://127.0.0.1:0", "--frame", frames[i]);
        cat_echo(s.ep[0], frames[i], "one\ntwo\nthree\n", "one\ntwo\nthree\n");
        assert_int_equal(server_stop(&s, SIGINT), 0);
    }
}

static void
test_discard(void **state)
{
    (void)state;
    server s;
    SERVER(&s, 1, "--discard", "--frame", "line", "--listen", "tcp://127.0.0.1:0");
    cat_echo(s.ep[0], "line", "nothing\ncomes\nback\n", "");
    assert_int_equal(server_stop(&s, SIGTERM), 0);
    if (!strstr(s.log, "messages 3 in, 0 out")) {
        print_error("stats:\n%s\n", s.log);
        fail();
    }
}

/* A cat that stays connected while the test feeds it. */
typedef struct live_cat {
    int pid, in, out;
} live_cat;

static void
live_cat_start(live_cat *c, const char *ep)
{
    char *argv[] = {(char *)SOCKMSG_BIN, "cat", "--frame", "line", (char *)ep, NULL};
    c->pid = sm_test_spawn2(argv, &c->in, &c->out, NULL);
}

static void
live_cat_say(live_cat *c, const char *line)
{
    assert_int_equal(write(c->in, line, strlen(line)), (ssize_t)strlen(line));
}

static void
live_cat_hear(live_cat *c, const char *want)
{
    char line[LINE_MAX];
    int n = sm_test_read_line(c->out, line, sizeof line, WAIT_MS);
    if (n < 0 || strcmp(line, want) != 0) {
        print_error("heard '%s', want '%s'\n", n < 0 ? "(nothing)" : line, want);
        fail();
    }
}

static void
live_cat_end(live_cat *c)
{
    close(c->in);
    char rest[LINE_MAX];
    sm_test_read_all(c->out, rest, sizeof rest, WAIT_MS);
    assert_string_equal(rest, "");
    close(c->out);
    assert_int_equal(sm_test_wait(c->pid, WAIT_MS), 0);
}

static void
chat(const char *model)
{
    server s;
    SERVER(&s, 1, "--chat", "--frame", "line", "--model", model, "-v", "--listen",
           "tcp://127.0.0.1:0");
    live_cat a, b;
    live_cat_start(&a, s.ep[0]);
    expect_log(&s, "peer 1 from");
    live_cat_start(&b, s.ep[0]);
    expect_log(&s, "peer 2 from");
    live_cat_say(&a, "hello from a\n");
    live_cat_hear(&b, "hello from a");
    live_cat_say(&b, "hello from b\n");
    live_cat_hear(&a, "hello from b");
    live_cat_end(&a);
    live_cat_end(&b);
    expect_log(&s, "peer 2 closed: clean");
    assert_int_equal(server_stop(&s, SIGTERM), 0);
}

static void
test_chat(void **state)
{
    (void)state;
    chat("loop");
    chat("thread");
}

static void
test_verbose_and_stats(void **state)
{
    (void)state;
    server s;
    SERVER(&s, 1, "-v", "--frame", "line", "--listen", "tcp://127.0.0.1:0");
    cat_echo(s.ep[0], "line", "a\nbc\n", "a\nbc\n");
    expect_log(&s, "peer 1 from tcp://127.0.0.1:");
    expect_log(&s, "peer 1 closed: clean");
    kill(s.pid, SIGUSR1);
    expect_log(&s, "sockmsg: stats: ");
    if (!strstr(s.log, "messages 2 in, 2 out; bytes 3 in, 3 out")) {
        print_error("stats:\n%s\n", s.log);
        fail();
    }
    /* Twice: the first one did not use up anything. */
    s.log[0] = '\0';
    s.log_len = 0;
    kill(s.pid, SIGUSR1);
    expect_log(&s, "sockmsg: stats: ");
    assert_int_equal(server_stop(&s, SIGINT), 0);
    if (!strstr(s.log, "stopping gracefully") ||
        !strstr(s.log, "sockmsg: stopped: connections 0 open, 1 total; messages 2 in, 2 out") ||
        !strstr(s.log, "closed 1 (clean 1)")) {
        print_error("stderr:\n%s\n", s.log);
        fail();
    }
}

/* SIGTERM: the connection is drained (the server says goodbye with a FIN
 * once it is quiet), then the server exits 0 with its statistics. */
static void
test_sigterm_drains(void **state)
{
    (void)state;
    server s;
    SERVER(&s, 1, "--listen", "tcp://127.0.0.1:0");
    sm_conn *c = dial(s.ep[0]);
    conn_echo(c, "before the stop");
    kill(s.pid, SIGTERM);
    expect_log(&s, "stopping gracefully");
    sm_frame_msg m;
    assert_int_equal(SM_ASSERT_OK(sm_conn_recv(c, &m, WAIT_MS)), 0); /* the server's FIN */
    sm_conn_free(c);
    assert_int_equal(server_stop(&s, 0), 0);
    if (!strstr(s.log, "stopped: connections 0 open, 1 total; messages 1 in, 1 out") ||
        !strstr(s.log, "(clean 1)")) {
        print_error("stderr:\n%s\n", s.log);
        fail();
    }
}

/* A signal right after the "listening on" lines is a graceful stop too. */
static void
test_sigterm_at_once(void **state)
{
    (void)state;
    for (int i = 0; i < 5; i++) {
        server s;
        SERVER(&s, 1, "--listen", "tcp://127.0.0.1:0", "--model", i % 2 ? "thread" : "loop");
        assert_int_equal(server_stop(&s, SIGTERM), 0);
        assert_non_null(strstr(s.log, "sockmsg: stopped: connections 0 open, 0 total"));
    }
}

/* A client that never closes holds the drain; a second signal ends it. */
static void
test_second_signal_forces(void **state)
{
    (void)state;
    server s;
    SERVER(&s, 1, "--listen", "tcp://127.0.0.1:0");
    sm_conn *c = dial(s.ep[0]);
    conn_echo(c, "still here");
    kill(s.pid, SIGINT);
    expect_log(&s, "stopping gracefully");
    sm_frame_msg m;
    assert_int_equal(SM_ASSERT_OK(sm_conn_recv(c, &m, WAIT_MS)), 0); /* drained: the FIN */
    kill(s.pid, SIGINT);                                             /* we never close */
    assert_int_equal(server_stop(&s, 0), 0);
    sm_conn_free(c);
    if (!strstr(s.log, "closing every connection now") || !strstr(s.log, "(drain 1)")) {
        print_error("stderr:\n%s\n", s.log);
        fail();
    }
}

static void
test_limits(void **state)
{
    (void)state;
    server s;
    SERVER(&s, 1, "--max-conns", "1", "--idle-timeout", "300ms", "-v", "--listen",
           "tcp://127.0.0.1:0");
    sm_conn *first = dial(s.ep[0]);
    conn_echo(first, "I am in");
    sm_conn *second = dial(s.ep[0]); /* accepted by the kernel, refused by the server */
    conn_expect_closed(second);
    sm_conn_free(second);
    conn_expect_closed(first); /* idle for 300 ms */
    sm_conn_free(first);
    expect_log(&s, "peer 1 closed: timeout");
    assert_int_equal(server_stop(&s, SIGTERM), 0);
    if (!strstr(s.log, "refused 1") || !strstr(s.log, "timeout 1")) {
        print_error("stderr:\n%s\n", s.log);
        fail();
    }
}

/* --heartbeat: an empty ping after 100 ms of silence from the server, and a
 * client that sends nothing for 400 ms is closed as "heartbeat". */
static void
test_heartbeat(void **state)
{
    (void)state;
    result r;
    TOOL(&r, NULL, "serve", "--listen", "tcp://127.0.0.1:0", "--heartbeat", "0");
    expect_result(&r, 2, "--heartbeat");
    server s;
    SERVER(&s, 1, "--heartbeat", "100ms,400ms", "-v", "--listen", "tcp://127.0.0.1:0");
    sm_conn *c = dial(s.ep[0]);
    conn_echo(c, "then silence");
    sm_frame_msg m;
    int rc, pings = 0;
    while ((rc = sm_conn_recv(c, &m, WAIT_MS)) == 1 && pings < 100) {
        assert_int_equal(m.len, 0);
        pings++;
    }
    if (rc != 0 && rc != -ECONNRESET) {
        print_error("recv: %d (%s), want EOF or a reset\n", rc, sm_err_name(rc));
        fail();
    }
    assert_true(pings >= 1);
    sm_conn_free(c);
    expect_log(&s, "peer 1 closed: heartbeat");
    assert_int_equal(server_stop(&s, SIGTERM), 0);
}

static void
test_proxy_protocol(void **state)
{
    (void)state;
    server s;
    SERVER(&s, 1, "--proxy-protocol", "-v", "--listen", "tcp://127.0.0.1:0");
    sm_conn *c = dial(s.ep[0]);
    const char hdr[] = "PROXY TCP4 192.0.2.7 198.51.100.1 4711 80\r\n";
    SM_ASSERT_OK(sm_send_all(sm_conn_fd(c), hdr, sizeof hdr - 1, WAIT_MS, NULL));
    conn_echo(c, "through a proxy");
    expect_log(&s, "peer 1 from tcp://192.0.2.7:4711 (PROXY)");
    sm_conn_free(c);
    assert_int_equal(server_stop(&s, SIGTERM), 0);
}

static void
test_bench_against_serve(void **state)
{
    (void)state;
    result r;
    TOOL(&r, NULL, "bench", "--help");
    if (r.code != 0) skip(); /* no bench in this build */
    static const char *const models[] = {"loop", "thread"};
    for (int i = 0; i < 2; i++) {
        server s;
        SERVER(&s, 1, "--echo", "--model", models[i], "--listen", "tcp://127.0.0.1:0");
        MERGED(&r, WAIT_MS, "bench", "--json", "--duration", "0.5", "--conns", "4", "--depth", "8",
               s.ep[0]);
        expect_result(&r, 0, "\"errors\":0,");
        assert_int_equal(server_stop(&s, SIGTERM), 0);
    }
}

static void
test_demo(void **state)
{
    (void)state;
    result r;
    MERGED(&r, DEMO_MS, "demo");
    /* 14 plaintext rows and 6 over TLS (none in a build without TLS,
     * which says so). */
    bool tls = !strstr(r.out, "tls rows: not run: built without TLS");
    expect_result(&r, 0, tls ? "All 20 runs verified" : "All 14 runs verified");
    static const char *const frames[] = {"fixed:100", "line", "len32be",     "ascii:5",  "varint",
                                         "netstring", "eof",  "tls len32be", "tls line", "tls eof"};
    static const char *const models[] = {"loop", "thread"};
    int rows = 0;
    char *save = NULL, copy[sizeof r.out];
    memcpy(copy, r.out, sizeof copy);
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        for (size_t f = 0; f < sizeof frames / sizeof frames[0]; f++) {
            for (int m = 0; m < 2; m++) {
                char want[64];
                int n = snprintf(want, sizeof want, "%-12s %-7s ", frames[f], models[m]);
                if (strncmp(line, want, (size_t)n) != 0) continue;
                if (!strstr(line, " yes ")) {
                    print_error("row not verified: %s\n", line);
                    fail();
                }
                rows++;
            }
        }
    }
    if (rows != (tls ? 20 : 14)) {
        print_error("%d rows, want %d:\n%s\n", rows, tls ? 20 : 14, r.out);
        fail();
    }
}

int
main(void)
{
    /* Writing to a child that has exited must be an error, not death. */
    signal(SIGPIPE, SIG_IGN);
    /* clang-format off */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_usage_errors),
        cmocka_unit_test(test_address_in_use),
        cmocka_unit_test(test_echo_loop),
        cmocka_unit_test(test_echo_thread),
        cmocka_unit_test(test_echo_framings),
        cmocka_unit_test(test_discard),
        cmocka_unit_test(test_chat),
        cmocka_unit_test(test_verbose_and_stats),
        cmocka_unit_test(test_sigterm_drains),
        cmocka_unit_test(test_sigterm_at_once),
        cmocka_unit_test(test_second_signal_forces),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_heartbeat),
        cmocka_unit_test(test_proxy_protocol),
        cmocka_unit_test(test_bench_against_serve),
        cmocka_unit_test(test_demo),
    };
    /* clang-format on */
    return cmocka_run_group_tests(tests, NULL, NULL);
}
