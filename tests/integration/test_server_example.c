/* examples/echo_server, run as the program it is: it listens where it is
 * told, echoes, and stops gracefully on a signal (a second one forces it). */
#include "server_util.h"

#include <signal.h>
#include <stdlib.h>

static int
start(char **argv, int *out, char eps[][128], int n)
{
    int pid = sm_test_spawn(argv, out, false);
    for (int i = 0; i < n; i++) {
        char line[256];
        if (sm_test_read_line(*out, line, sizeof line, 10000) < 0) fail_msg("no endpoint line");
        const char *at = strstr(line, "listening on ");
        if (!at) fail_msg("echo_server said '%s'", line);
        snprintf(eps[i], sizeof eps[i], "%s", at + strlen("listening on "));
    }
    return pid;
}

static void
test_echo_and_sigterm(void **state)
{
    const char *model = *state;
    char abstract[64];
    snprintf(abstract, sizeof abstract, "unix:@sm-echo-example-%d", (int)getpid());
    char *argv[] = {ECHO_SERVER, "tcp://127.0.0.1:0", abstract, (char *)model, NULL};
    int out;
    char eps[2][128];
    int pid = start(argv, &out, eps, 2);
    assert_string_equal(eps[1], abstract);
    for (int i = 0; i < 2; i++) {
        sm_conn *c = cli_dial(eps[i]);
        cli_echo(c, "hello");
        cli_echo(c, "");
        cli_echo(c, "world");
        sm_conn_free(c);
    }
    kill(pid, SIGTERM);
    char text[1024];
    sm_test_read_all(out, text, sizeof text, 10000);
    close(out);
    assert_int_equal(sm_test_wait(pid, 10000), 0);
    if (!strstr(text, "stopped: 2 connections, 6 messages in, 6 out; closed: clean=2"))
        fail_msg("echo_server said: %s", text);
}

/* A client that never closes holds the drain up; a second signal ends it. */
static void
test_second_signal_forces(void **state)
{
    const char *model = *state;
    char *argv[] = {ECHO_SERVER, "tcp://127.0.0.1:0", "--drain", "60000", (char *)model, NULL};
    int out;
    char eps[1][128];
    int pid = start(argv, &out, eps, 1);
    sm_conn *c = cli_dial(eps[0]);
    cli_echo(c, "stay");
    kill(pid, SIGINT);
    sm_frame_msg m;
    /* The server half-closes once the client is quiet ... */
    assert_int_equal(sm_conn_recv(c, &m, 10000), 0);
    /* ... and waits for the client's EOF, until the second signal. */
    kill(pid, SIGINT);
    char text[1024];
    sm_test_read_all(out, text, sizeof text, 10000);
    close(out);
    assert_int_equal(sm_test_wait(pid, 10000), 0);
    if (!strstr(text, "closed: drain=1")) fail_msg("echo_server said: %s", text);
    sm_conn_free(c);
}

static void
test_usage(void **state)
{
    (void)state;
    char *argv[] = {ECHO_SERVER, "--handler", "nope", "tcp://127.0.0.1:0", NULL};
    int out;
    int pid = sm_test_spawn(argv, &out, true);
    char text[512];
    sm_test_read_all(out, text, sizeof text, 10000);
    close(out);
    assert_int_equal(sm_test_wait(pid, 10000), 2);
    if (!strstr(text, "echo discard chat")) fail_msg("echo_server said: %s", text);
}

int
main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate(test_echo_and_sigterm, "-v"),
        cmocka_unit_test_prestate(test_echo_and_sigterm, "--thread"),
        cmocka_unit_test_prestate(test_second_signal_forces, "-v"),
        cmocka_unit_test_prestate(test_second_signal_forces, "--thread"),
        cmocka_unit_test(test_usage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
