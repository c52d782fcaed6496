/* examples/fd_pass: a server hands its open file to a client over a Unix
 * socket, the client copies the file through the fd it received. */
#include "smtest.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void
test_fd_pass_pair(void **state)
{
    (void)state;
    char dir[256], sock[300], file[300];
    sm_test_mkdtemp(dir, sizeof dir);
    snprintf(sock, sizeof sock, "unix:%s/fd.sock", dir);
    snprintf(file, sizeof file, "%s/secret.txt", dir);
    const char text[] = "the server's file, read by the client\n";
    int f = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(f >= 0);
    assert_int_equal(write(f, text, sizeof text - 1), (ssize_t)(sizeof text - 1));
    close(f);

    int srv_out;
    char *srv_argv[] = {FD_PASS, "serve", sock, file, "--clients", "2", NULL};
    int srv = sm_test_spawn(srv_argv, &srv_out, false);
    char line[400];
    assert_true(sm_test_read_line(srv_out, line, sizeof line, 10000) > 0);
    if (!strstr(line, "listening on unix:")) fail_msg("server said '%s'", line);

    for (int i = 0; i < 2; i++) {
        int out;
        char *cli_argv[] = {FD_PASS, "get", sock, NULL};
        int cli = sm_test_spawn(cli_argv, &out, true);
        char got[256];
        sm_test_read_all(out, got, sizeof got, 10000);
        close(out);
        int st = sm_test_wait(cli, 10000);
        if (st != 0 || strcmp(got, text) != 0) fail_msg("client exited %d:\n%s", st, got);
    }
    assert_int_equal(sm_test_wait(srv, 10000), 0);
    close(srv_out);
    sm_test_rmdir(dir);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fd_pass_pair),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
