/* The examples, run as the programs they are: the HOWTO's client against the
 * HOWTO's thread-per-client server, and the demo. */
#include "smtest.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sockmsg/conn.h>
#include <sockmsg/socket.h>

static void
test_howto_client_against_server(void **state)
{
    (void)state;
    int srv_out;
    char *srv_argv[] = {HOWTO_SERVER, "tcp://127.0.0.1:0", "--clients", "2", NULL};
    int srv = sm_test_spawn(srv_argv, &srv_out, false);

    char line[256];
    assert_true(sm_test_read_line(srv_out, line, sizeof line, 10000) > 0);
    const char *addr = strstr(line, "tcp://");
    if (!addr) fail_msg("server said '%s'", line);

    static const char *const paths[] = {"/", "/some/page?q=1"};
    for (int i = 0; i < 2; i++) {
        int cli_out;
        char *cli_argv[] = {HOWTO_CLIENT, (char *)addr, (char *)paths[i], NULL};
        int cli = sm_test_spawn(cli_argv, &cli_out, true);
        char reply[4096];
        sm_test_read_all(cli_out, reply, sizeof reply, 10000);
        close(cli_out);
        assert_int_equal(sm_test_wait(cli, 10000), 0);
        if (!strstr(reply, "HTTP/1.0 200 OK") || !strstr(reply, paths[i]))
            fail_msg("client %d got: %s", i, reply);
    }
    /* The server served its two clients and exits by itself. */
    assert_int_equal(sm_test_wait(srv, 10000), 0);
    close(srv_out);
}

static void
test_howto_client_errors(void **state)
{
    (void)state;
    int out;
    char *bad_argv[] = {HOWTO_CLIENT, "tcp://127.0.0.1", NULL};
    int pid = sm_test_spawn(bad_argv, &out, true);
    char msg[512];
    sm_test_read_all(out, msg, sizeof msg, 10000);
    close(out);
    assert_int_equal(sm_test_wait(pid, 10000), 1);
    if (!strstr(msg, "missing port")) fail_msg("error message was: %s", msg);
}

static void
test_demo_runs(void **state)
{
    (void)state;
    int out;
    char *argv[] = {HOWTO_DEMO, NULL};
    int pid = sm_test_spawn(argv, &out, true);
    static char text[16384];
    sm_test_read_all(out, text, sizeof text, 30000);
    close(out);
    int st = sm_test_wait(pid, 30000);
    if (st != 0 || !strstr(text, "demo OK")) fail_msg("demo exited %d:\n%s", st, text);
}

/* MySocket rewritten: a server and a client process, for several framings. */
static void
test_mysocket(void **state)
{
    (void)state;
    static const char *const specs[] = {"ascii:5", "len32be", "line", "netstring"};
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        int srv_out;
        char *srv_argv[] = {MYSOCKET, "serve", "tcp://127.0.0.1:0", (char *)specs[i], NULL};
        int srv = sm_test_spawn(srv_argv, &srv_out, false);
        char line[256];
        assert_true(sm_test_read_line(srv_out, line, sizeof line, 10000) > 0);
        char *addr = strstr(line, "tcp://");
        assert_non_null(addr);

        int out;
        char *argv[] = {MYSOCKET, "send", addr, (char *)specs[i], "hello", "", "world", NULL};
        int cli = sm_test_spawn(argv, &out, true);
        char text[1024];
        sm_test_read_all(out, text, sizeof text, 10000);
        close(out);
        assert_int_equal(sm_test_wait(cli, 10000), 0);
        assert_string_equal(text, "echo 1: hello\necho 2: \necho 3: world\n");
        assert_int_equal(sm_test_wait(srv, 10000), 0);
        close(srv_out);
    }
}

/* Binary data: the bytes are those Python's struct.pack('!HId', 7, 1234, 2.5)
 * gives (checked against python3 by test_pack_python as well). */
static void
test_binary_data(void **state)
{
    (void)state;
    int out;
    char *argv[] = {BINARY_DATA, NULL};
    int pid = sm_test_spawn(argv, &out, true);
    char text[2048];
    sm_test_read_all(out, text, sizeof text, 10000);
    close(out);
    assert_int_equal(sm_test_wait(pid, 10000), 0);
    if (!strstr(text, "0007000004d24004000000000000  (14 bytes)") ||
        !strstr(text, "type=7 id=1234 x=2.5") || !strstr(text, "a=100 b=300 bytes=hi") ||
        !strstr(text, "pack format '!Hz': unknown code 'z' at offset 2\n") ||
        !strstr(text, "pack format '!Hb': value 1 (code 'b' at offset 2): 300 out of range "
                      "-128..127\n"))
        fail_msg("output was:\n%s", text);
}

/* The guide's first chapters on plain fds: every step says what the guide
 * says it does (a deadline, a truncated message, a clean end). */
static void
test_sockets(void **state)
{
    (void)state;
    static const char *const where[] = {"tcp://127.0.0.1:0", "tcp://[::1]:0", NULL};
    for (int i = 0; where[i]; i++) {
        int out;
        char *argv[] = {SOCKETS, (char *)where[i], NULL};
        int pid = sm_test_spawn(argv, &out, true);
        char text[2048];
        sm_test_read_all(out, text, sizeof text, 10000);
        close(out);
        int st = sm_test_wait(pid, 10000);
        if (i == 1 && st != 0 && strstr(text, "listen")) continue; /* no IPv6 here */
        if (st != 0 || !strstr(text, "received 'hello, world'\n") ||
            !strstr(text, "nothing to read: ETIMEDOUT") ||
            !strstr(text, "peer stopped mid-message: SM_ERR_TRUNCATED after 2 bytes\n") ||
            !strstr(text, "peer done: 0\n"))
            fail_msg("sockets %s exited %d, output was:\n%s", where[i], st, text);
    }
}

/* The README's first program against `sockmsg serve --echo`, as the README
 * says to run it; and what it says when nothing listens. */
static void
test_hello(void **state)
{
    (void)state;
    int out, err;
    char *srv_argv[] = {SOCKMSG_BIN, "serve", "--echo", "--listen", "tcp://127.0.0.1:0", NULL};
    int srv = sm_test_spawn2(srv_argv, NULL, &out, &err);
    char line[256];
    assert_true(sm_test_read_line(out, line, sizeof line, 10000) > 0);
    const char *addr = strstr(line, "tcp://");
    if (!addr) fail_msg("sockmsg serve said '%s'", line);
    char *argv[] = {HELLO, (char *)addr, NULL};
    int cli_out;
    int cli = sm_test_spawn(argv, &cli_out, true);
    char text[1024];
    sm_test_read_all(cli_out, text, sizeof text, 10000);
    close(cli_out);
    int st = sm_test_wait(cli, 10000);
    if (st != 0 || strcmp(text, "got 5 bytes: hello\n") != 0)
        fail_msg("hello exited %d:\n%s", st, text);
    SM_ASSERT_OK(kill(srv, SIGTERM));
    assert_int_equal(sm_test_wait(srv, 10000), 0);
    char log[4096];
    sm_test_read_all(err, log, sizeof log, 1000);
    close(out);
    close(err);

    /* A port held bound but not listening: refused, in words. */
    int hold = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(hold >= 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    SM_ASSERT_OK(bind(hold, (struct sockaddr *)&sin, sizeof sin));
    socklen_t slen = sizeof sin;
    SM_ASSERT_OK(getsockname(hold, (struct sockaddr *)&sin, &slen));
    char refused[64];
    snprintf(refused, sizeof refused, "tcp://127.0.0.1:%u", ntohs(sin.sin_port));
    argv[1] = refused;
    cli = sm_test_spawn(argv, &cli_out, true);
    sm_test_read_all(cli_out, text, sizeof text, 10000);
    close(cli_out);
    assert_int_equal(sm_test_wait(cli, 10000), 1);
    close(hold);
    if (!strstr(text, "hello: ") || !strstr(text, "refused"))
        fail_msg("hello without a server said:\n%s", text);
}

/* The guide's measuring client against `sockmsg serve --echo`: it reports
 * percentiles, and every echo was checked. Only the shape of the report is
 * asserted, never a number. */
static void
test_rtt(void **state)
{
    (void)state;
    int out, err;
    char *srv_argv[] = {SOCKMSG_BIN,         "serve", "--echo", "--frame", "line", "--listen",
                        "tcp://127.0.0.1:0", NULL};
    int srv = sm_test_spawn2(srv_argv, NULL, &out, &err);
    char line[256];
    assert_true(sm_test_read_line(out, line, sizeof line, 10000) > 0);
    const char *addr = strstr(line, "tcp://");
    if (!addr) fail_msg("sockmsg serve said '%s'", line);
    int cli_out;
    char *cli_argv[] = {RTT, (char *)addr, "500", "100", "line", NULL};
    int cli = sm_test_spawn(cli_argv, &cli_out, true);
    char text[1024];
    sm_test_read_all(cli_out, text, sizeof text, 60000);
    close(cli_out);
    int st = sm_test_wait(cli, 60000);
    if (st != 0 || !strstr(text, "500 round trips of 100 bytes: p50 ") ||
        !strstr(text, " us, p99 ") || !strstr(text, "/s\n"))
        fail_msg("rtt exited %d:\n%s", st, text);
    SM_ASSERT_OK(kill(srv, SIGTERM));
    assert_int_equal(sm_test_wait(srv, 10000), 0);
    char log[4096];
    sm_test_read_all(err, log, sizeof log, 1000);
    close(out);
    close(err);
}

/* Start an example server that prints "listening on ADDR" first; returns its
 * pid and writes ADDR. */
static int
start_server(char *const argv[], int *out_fd, char *addr, size_t addr_len)
{
    int pid = sm_test_spawn(argv, out_fd, false);
    char line[256];
    assert_true(sm_test_read_line(*out_fd, line, sizeof line, 10000) > 0);
    const char *a = strstr(line, "listening on ");
    if (!a) fail_msg("%s said '%s'", argv[0], line);
    snprintf(addr, addr_len, "%s", a + strlen("listening on "));
    return pid;
}

/* The select() program on sm_loop: echoes what it gets, partial writes and
 * all, to two clients, then exits by itself. */
static void
test_select_loop(void **state)
{
    (void)state;
    int out;
    char addr[256];
    char *argv[] = {SELECT_LOOP, "tcp://127.0.0.1:0", "--clients", "2", NULL};
    int pid = start_server(argv, &out, addr, sizeof addr);
    static char big[65536], back[65536];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (char)(i * 7);
    for (int k = 0; k < 2; k++) {
        int fd = SM_ASSERT_OK(sm_dial(addr, 5000));
        size_t n = k == 0 ? 12 : sizeof big;
        SM_ASSERT_OK(sm_send_all(fd, k == 0 ? "hello select" : big, n, 5000, NULL));
        assert_int_equal(SM_ASSERT_OK(sm_recv_exact(fd, back, n, 5000, NULL)), n);
        assert_memory_equal(back, k == 0 ? "hello select" : big, n);
        close(fd);
    }
    assert_int_equal(sm_test_wait(pid, 10000), 0);
    close(out);
}

static void
expect_line(sm_conn *c, const char *text)
{
    sm_frame_msg m;
    SM_ASSERT_ERR(sm_conn_recv(c, &m, 5000), 1);
    const char *colon = memchr(m.data, ':', m.len);
    if (!colon || (size_t)(m.len - (size_t)(colon + 2 - (const char *)m.data)) != strlen(text) ||
        memcmp(colon + 2, text, strlen(text)))
        fail_msg("got '%.*s', want '<id>: %s'", (int)m.len, (const char *)m.data, text);
}

/* The chat server: a line from one client reaches every other one. */
static void
test_chat_server(void **state)
{
    (void)state;
    int out;
    char addr[256];
    char *argv[] = {CHAT_SERVER, "tcp://127.0.0.1:0", "--clients", "3", NULL};
    int pid = start_server(argv, &out, addr, sizeof addr);
    sm_conn *a, *b, *c;
    SM_ASSERT_OK(sm_conn_dial(&a, addr, "line", 5000, NULL, 0));
    SM_ASSERT_OK(sm_conn_dial(&b, addr, "line", 5000, NULL, 0));
    /* A hears B: both are in the room (the server accepted them in order). */
    SM_ASSERT_OK(sm_conn_send(b, "b joined", 8, 5000));
    expect_line(a, "b joined");
    SM_ASSERT_OK(sm_conn_dial(&c, addr, "line", 5000, NULL, 0));
    SM_ASSERT_OK(sm_conn_send(c, "c joined", 8, 5000));
    expect_line(a, "c joined");
    expect_line(b, "c joined");
    SM_ASSERT_OK(sm_conn_send(a, "hello all", 9, 5000));
    expect_line(b, "hello all");
    expect_line(c, "hello all");
    sm_conn_free(a);
    sm_conn_free(b);
    sm_conn_free(c);
    assert_int_equal(sm_test_wait(pid, 10000), 0);
    close(out);
}

/* The guide's pipelining client against `sockmsg serve --echo`, both
 * models: what a new user ran (4 KiB messages until sm_stream_send says 1,
 * resuming in on_drain) once stalled after ~3,800 messages with no reply
 * read, both sides having stopped reading. */
static void
test_pipeline_client(void **state)
{
    (void)state;
    static const char *const models[] = {"loop", "thread"};
    for (int i = 0; i < 2; i++) {
        int out, err;
        char *srv_argv[] = {
            SOCKMSG_BIN,         "serve", "--echo", "--model", (char *)models[i], "--listen",
            "tcp://127.0.0.1:0", NULL};
        int srv = sm_test_spawn2(srv_argv, NULL, &out, &err);
        char line[256];
        assert_true(sm_test_read_line(out, line, sizeof line, 10000) > 0);
        const char *addr = strstr(line, "tcp://");
        if (!addr) fail_msg("sockmsg serve said '%s'", line);

        int cli_out;
        char *cli_argv[] = {PIPELINE_CLIENT, (char *)addr, "10000", "4096", NULL};
        int cli = sm_test_spawn(cli_argv, &cli_out, true);
        char text[1024];
        sm_test_read_all(cli_out, text, sizeof text, 60000);
        close(cli_out);
        int st = sm_test_wait(cli, 60000);
        print_message("%s model: %s", models[i], text);
        if (st != 0 || !strstr(text, "sent 10000, echoed 10000"))
            fail_msg("pipeline_client exited %d:\n%s", st, text);

        SM_ASSERT_OK(kill(srv, SIGTERM));
        assert_int_equal(sm_test_wait(srv, 10000), 0);
        char log[4096];
        sm_test_read_all(err, log, sizeof log, 1000);
        close(out);
        close(err);
    }
}

int
main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_howto_client_against_server),
        cmocka_unit_test(test_howto_client_errors),
        cmocka_unit_test(test_demo_runs),
        cmocka_unit_test(test_mysocket),
        cmocka_unit_test(test_binary_data),
        cmocka_unit_test(test_select_loop),
        cmocka_unit_test(test_chat_server),
        cmocka_unit_test(test_pipeline_client),
        cmocka_unit_test(test_sockets),
        cmocka_unit_test(test_rtt),
        cmocka_unit_test(test_hello),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
