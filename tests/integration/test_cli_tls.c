/* The sockmsg tool over TLS: `serve --listen tls://` with --tls-cert and
 * --tls-key, `cat tls://` verified with --ca, refused without it, and
 * --insecure; the usage errors of TLS options. */
#include "tls_test.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Run sockmsg with argv, stdin = in; returns the exit status, output in out. */
static int
tool(char *const argv[], const char *in, char *out, size_t cap)
{
    int ifd, ofd;
    int pid = sm_test_spawn2(argv, &ifd, &ofd, NULL);
    if (in) assert_true(write(ifd, in, strlen(in)) == (ssize_t)strlen(in));
    close(ifd);
    sm_test_read_all(ofd, out, cap, 20000);
    close(ofd);
    return sm_test_wait(pid, 20000);
}

static void
test_serve_and_cat(void **state)
{
    (void)state;
    char *srv[] = {SOCKMSG_BIN,  "serve",
                   "--listen",   "tls://127.0.0.1:0",
                   "--tls-cert", (char *)sm_test_cert("leaf.pem"),
                   "--tls-key",  (char *)sm_test_cert("leaf.key"),
                   NULL};
    int sout;
    int spid = sm_test_spawn2(srv, NULL, &sout, NULL);
    char line[256];
    assert_true(sm_test_read_line(sout, line, sizeof line, 20000) > 0);
    const char *pre = "listening on tls://127.0.0.1:";
    assert_memory_equal(line, pre, strlen(pre));
    char ep[64];
    snprintf(ep, sizeof ep, "tls://localhost:%.8s", line + strlen(pre)); /* a port */

    char out[4096];
    char *ok[] = {SOCKMSG_BIN, "cat",     "--ca", (char *)sm_test_cert("ca.pem"),
                  "-f",        "len32be", ep,     NULL};
    assert_int_equal(tool(ok, "hello\nover tls\n", out, sizeof out), 0);
    assert_string_equal(out, "hello\nover tls\n");
    char *merged[] = {
        "/bin/sh", "-c", "exec \"$0\" \"$@\" 2>&1", SOCKMSG_BIN, "cat", "-f", "len32be", ep, NULL};
    assert_int_equal(tool(merged, "x\n", out, sizeof out), 1);
    assert_non_null(strstr(out, "unknown CA"));
    char *insecure[] = {SOCKMSG_BIN, "cat", "--insecure", "-f", "len32be", ep, NULL};
    assert_int_equal(tool(insecure, "y\n", out, sizeof out), 0);
    assert_string_equal(out, "y\n");

    /* The load generator over TLS: every reply checked, verified with
     * --ca, AES-128-GCM asked for; refused without the CA. */
    char *bench[] = {SOCKMSG_BIN,
                     "bench",
                     "--ca",
                     (char *)sm_test_cert("ca.pem"),
                     "--tls-ciphersuites",
                     "TLS_AES_128_GCM_SHA256",
                     "-c",
                     "2",
                     "-d",
                     "8",
                     "-t",
                     "300ms",
                     "--json",
                     ep,
                     NULL};
    assert_int_equal(tool(bench, NULL, out, sizeof out), 0);
    assert_non_null(strstr(out, "\"errors\":0,"));
    assert_null(strstr(out, "\"messages\":0,"));
    char *big[] = {SOCKMSG_BIN, "bench", "--insecure", "-s", "100k", "-d",
                   "2",         "-t",    "300ms",      ep,   NULL};
    assert_int_equal(tool(big, NULL, out, sizeof out), 0);
    char *unverified[] = {
        "/bin/sh", "-c", "exec \"$0\" \"$@\" 2>&1", SOCKMSG_BIN, "bench", "-t", "100ms", ep, NULL};
    assert_int_equal(tool(unverified, NULL, out, sizeof out), 1);
    assert_non_null(strstr(out, "unknown CA"));

    kill(spid, SIGTERM);
    assert_int_equal(sm_test_wait(spid, 20000), 0);
    close(sout);

    /* Usage errors. */
    char *notls[] = {"/bin/sh", "-c",         "exec \"$0\" \"$@\" 2>&1", SOCKMSG_BIN,
                     "bench",   "--insecure", "tcp://127.0.0.1:1",       NULL};
    assert_int_equal(tool(notls, NULL, out, sizeof out), 2);
    assert_non_null(strstr(out, "need a tls:// endpoint"));
    char *noc[] = {"/bin/sh", "-c",       "exec \"$0\" \"$@\" 2>&1", SOCKMSG_BIN,
                   "serve",   "--listen", "tls://127.0.0.1:0",       NULL};
    assert_int_equal(tool(noc, NULL, out, sizeof out), 2);
    assert_non_null(strstr(out, "needs --tls-cert FILE and --tls-key FILE"));
    char *nol[] = {"/bin/sh", "-c",       "exec \"$0\" \"$@\" 2>&1", SOCKMSG_BIN,
                   "serve",   "--listen", "tcp://127.0.0.1:0",       "--tls-cert",
                   "x",       NULL};
    assert_int_equal(tool(nol, NULL, out, sizeof out), 2);
    assert_non_null(strstr(out, "need a tls:// listener"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_serve_and_cat),
    };
    return cmocka_run_group_tests(tests, sm_test_tls_setup, sm_test_tls_teardown);
}
