/* Test support shared by every test program: cmocka, plus assertions that print
 * the error name, temporary directories, and bounded waits. */
#ifndef SM_TEST_H
#define SM_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <cmocka.h>

#include <sockmsg/sockmsg.h>

/* Assert that an sm_ call succeeded (>= 0); on failure print the expression,
 * the value and its error name and message. Evaluates to the value. */
#define SM_ASSERT_OK(expr) sm_test_check_ok((long long)(expr), #expr, __FILE__, __LINE__)

/* Assert that an sm_ call returned exactly the error `want`; prints both names. */
#define SM_ASSERT_ERR(expr, want)                                                                  \
    sm_test_check_err((long long)(expr), (want), #expr, __FILE__, __LINE__)

long long sm_test_check_ok(long long v, const char *expr, const char *file, int line);
void sm_test_check_err(long long v, int want, const char *expr, const char *file, int line);

/* A fresh private directory under $TMPDIR (or /tmp), for Unix socket paths.
 * Writes the path into `out`. sm_test_rmdir removes it and what is in it. */
void sm_test_mkdtemp(char *out, size_t out_len);
void sm_test_rmdir(const char *dir);

/* A black hole on loopback: a 127.0.0.1 listener with backlog 0 whose one
 * queue slot is taken by a connection nobody accepts; Linux then drops further
 * SYNs, so a connect to it stays pending. Returns the listener and sets the
 * filler connection and the port, or returns -1 (everything closed) if this
 * kernel answers after all: the caller then says so and checks less. */
int sm_test_black_hole(int *filler, uint16_t *port);

/* A TCP listener on 127.0.0.1, port 0 (the kernel's pick, set in *port),
 * with the given backlog. Returns its fd. */
int sm_test_listen_loopback(int backlog, uint16_t *port);

/* Monotonic milliseconds, for bounding loops in tests. */
int64_t sm_test_now_ms(void);
/* Open fds of this process (/proc/self/fd, its own directory fd included):
 * the leak check around a case. */
int sm_test_count_fds(void);

/* A deterministic PRNG (xorshift64*) for property tests; print the seed on
 * failure so a run can be replayed. */
uint64_t sm_test_rand(uint64_t *state);

/* Start a program (argv[0] is a path) with stdout (and stderr, if
 * merge_stderr) on a pipe whose read end goes to *out_fd (close it).
 * Returns the pid. */
int sm_test_spawn(char *const argv[], int *out_fd, bool merge_stderr);

/* Start a program (argv[0] is a path) with its stdin, stdout and stderr on
 * pipes: *in_fd receives the write end of its stdin, *out_fd and *err_fd the
 * read ends of its stdout and stderr (close them; closing *in_fd is the
 * program's end of input). A NULL pointer leaves that stream unpiped: stdin
 * and stdout then go to /dev/null, stderr to the test's own stderr. The
 * test's ends are close-on-exec and blocking. Returns the pid. */
int sm_test_spawn2(char *const argv[], int *in_fd, int *out_fd, int *err_fd);

/* Wait for pid to exit, at most timeout_ms; kill it (SIGKILL) past that.
 * Returns the exit status (0-255), 128+signal if killed by a signal, or -1 on
 * timeout. */
int sm_test_wait(int pid, int timeout_ms);

/* Read from fd until EOF or timeout_ms, into out (NUL-terminated, truncated to
 * cap-1). Returns the bytes read. */
size_t sm_test_read_all(int fd, char *out, size_t cap, int timeout_ms);

/* Read one line (without '\n') from fd, byte by byte, within timeout_ms.
 * Returns its length, or -1 on EOF/timeout before a newline. */
int sm_test_read_line(int fd, char *out, size_t cap, int timeout_ms);

/* Wait until fd's receive queue holds at least want bytes (the wait ends
 * when they arrive, not on a sleep), at most timeout_ms. Returns how many
 * are queued. */
int sm_test_wait_queued(int fd, int want, int timeout_ms);

/* The most fds sm_test_send_fds attaches to one sendmsg. */
#define SM_TEST_SEND_FDS_MAX 16

/* One sendmsg(2) of len bytes from p on Unix socket fd with n fds (0 to
 * SM_TEST_SEND_FDS_MAX; 0: no control message) attached as SCM_RIGHTS,
 * MSG_NOSIGNAL. A raw peer for the receivers' fd handling: the message
 * boundaries and which bytes carry fds are exactly the caller's. Fails the
 * test unless the whole of len went out in that one call (a blocking fd
 * waits for room; a full non-blocking one fails). */
void sm_test_send_fds(int fd, const void *p, size_t len, const int *fds, int n);

/* Read exactly len bytes from fd into buf within timeout_ms in all, polling
 * before each read, so a blocking and a non-blocking fd are both bounded.
 * Fails the test, naming the fd and what was missing, on EOF, an error or
 * the timeout. */
void sm_test_read_exact(int fd, void *buf, size_t len, int timeout_ms);

/* Whether fds x and y are open on the same file (device and inode): a
 * received fd checked against the one sent. */
bool sm_test_same_file(int x, int y);

/* Receive one message on c (timeout_ms as sm_conn_recv takes it, so
 * SM_CONN_DEFAULT is the conn's own) and fail the test unless it is exactly
 * want, printing the error or what came instead. */
void sm_test_expect_msg(sm_conn *c, const char *want, int timeout_ms);

/* An sm_addr for a numeric IPv4 or IPv6 address and a port (a PROXY header's
 * addresses, an address to compare with). */
sm_addr sm_test_inet4(const char *ip, uint16_t port);
sm_addr sm_test_inet6(const char *ip, uint16_t port);

#endif
