/* What an idle connection costs, on a bare sm_stream and on an sm_server
 * (loop model): a generous bound on server RSS per idle connection,
 * measured the way bench/idle_rss reports it (the benchmark runs 10,000
 * connections and reports the figure; this only guards against a
 * regression that makes idle connections expensive). */
#include "smtest.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void
test_idle_memory(void **state)
{
    const char *peer = *state;
#ifdef SM_SANITIZED
    /* Sanitizer allocators add redzones and shadow memory: RSS says nothing. */
    skip();
#endif
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
