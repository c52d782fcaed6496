#include "smtest.h"

#include <sockmsg/socket.h>

#include <dirent.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <fcntl.h>
#include <unistd.h>

long long
sm_test_check_ok(long long v, const char *expr, const char *file, int line)
{
    if (v < 0) {
        print_error("%s = %lld (%s: %s)\n", expr, v, sm_err_name((int)v), sm_strerror((int)v));
        _fail(file, line);
    }
    return v;
}

void
sm_test_check_err(long long v, int want, const char *expr, const char *file, int line)
{
    if (v != want) {
        print_error("%s = %lld (%s), want %d (%s)\n", expr, v, sm_err_name((int)v), want,
                    sm_err_name(want));
        _fail(file, line);
    }
}

void
sm_test_mkdtemp(char *out, size_t out_len)
{
    const char *base = getenv("TMPDIR");
    if (!base || !*base) base = "/tmp";
    int n = snprintf(out, out_len, "%s/smtest.XXXXXX", base);
    assert_true(n > 0 && (size_t)n < out_len);
    assert_non_null(mkdtemp(out));
}

void
sm_test_rmdir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char path[4096];
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

int64_t
sm_test_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
sm_test_count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    int n = 0;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

uint64_t
sm_test_rand(uint64_t *state)
{
    uint64_t x = *state ? *state : 0x9e3779b97f4a7c15ull;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545f4914f6cdd1dull;
}

/* A child spawned by a test must not outlive it: a failed assertion jumps
 * past the test's own kill(), and the program ends after its last test. */
static void
die_with_parent(void)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
}

int
sm_test_spawn(char *const argv[], int *out_fd, bool merge_stderr)
{
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        die_with_parent();
        dup2(p[1], 1);
        if (merge_stderr) dup2(p[1], 2);
        execv(argv[0], argv);
        _exit(127);
    }
    close(p[1]);
    *out_fd = p[0];
    return pid;
}

int
sm_test_spawn2(char *const argv[], int *in_fd, int *out_fd, int *err_fd)
{
    int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
    if (in_fd) assert_int_equal(pipe2(in, O_CLOEXEC), 0);
    if (out_fd) assert_int_equal(pipe2(out, O_CLOEXEC), 0);
    if (err_fd) assert_int_equal(pipe2(err, O_CLOEXEC), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        die_with_parent();
        /* Only async-signal-safe calls: the test may have threads. */
        int null_in = in_fd ? in[0] : open("/dev/null", O_RDONLY | O_CLOEXEC);
        int null_out = out_fd ? out[1] : open("/dev/null", O_WRONLY | O_CLOEXEC);
        if (null_in < 0 || null_out < 0) _exit(126);
        dup2(null_in, 0);
        dup2(null_out, 1);
        if (err_fd) dup2(err[1], 2);
        execv(argv[0], argv);
        _exit(127);
    }
    if (in_fd) {
        close(in[0]);
        *in_fd = in[1];
    }
    if (out_fd) {
        close(out[1]);
        *out_fd = out[0];
    }
    if (err_fd) {
        close(err[1]);
        *err_fd = err[0];
    }
    return pid;
}

int
sm_test_wait(int pid, int timeout_ms)
{
    int64_t end = sm_test_now_ms() + timeout_ms;
    for (;;) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        if (r < 0 && errno != EINTR) return -1;
        if (sm_test_now_ms() >= end) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return -1;
        }
        /* No child-exit fd to wait on portably: poll in short steps. */
        poll(NULL, 0, 5);
    }
}

size_t
sm_test_read_all(int fd, char *out, size_t cap, int timeout_ms)
{
    int64_t end = sm_test_now_ms() + timeout_ms;
    size_t n = 0;
    while (n + 1 < cap) {
        int left = (int)(end - sm_test_now_ms());
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (left <= 0 || poll(&pfd, 1, left) <= 0) break;
        ssize_t r = read(fd, out + n, cap - 1 - n);
        if (r <= 0) break;
        n += (size_t)r;
    }
    out[n] = '\0';
    return n;
}

int
sm_test_read_line(int fd, char *out, size_t cap, int timeout_ms)
{
    int64_t end = sm_test_now_ms() + timeout_ms;
    size_t n = 0;
    while (n + 1 < cap) {
        int left = (int)(end - sm_test_now_ms());
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (left <= 0 || poll(&pfd, 1, left) <= 0) return -1;
        char ch;
        if (read(fd, &ch, 1) != 1) return -1;
        if (ch == '\n') break;
        out[n++] = ch;
    }
    out[n] = '\0';
    return (int)n;
}

int
sm_test_listen_loopback(int backlog, uint16_t *port)
{
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(l >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(l, backlog), 0);
    assert_int_equal(getsockname(l, (struct sockaddr *)&a, &alen), 0);
    *port = ntohs(a.sin_port);
    return l;
}

int
sm_test_black_hole(int *filler, uint16_t *port)
{
    int l = sm_test_listen_loopback(0, port);
    struct sockaddr_in a = {
        .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK), .sin_port = htons(*port)};
    char to[64];
    snprintf(to, sizeof to, "tcp://127.0.0.1:%u", *port);
    *filler = (int)sm_test_check_ok(sm_dial(to, 5000), "sm_dial(black hole)", __FILE__, __LINE__);

    /* Check that a further connect really hangs. */
    int probe = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int rc = connect(probe, (struct sockaddr *)&a, sizeof a);
    struct pollfd p = {.fd = probe, .events = POLLOUT};
    bool hangs = rc < 0 && errno == EINPROGRESS && poll(&p, 1, 100) == 0;
    close(probe);
    if (!hangs) {
        close(*filler);
        close(l);
        return -1;
    }
    return l;
}

int
sm_test_wait_queued(int fd, int want, int timeout_ms)
{
    int queued = 0;
    int64_t end = sm_test_now_ms() + timeout_ms;
    /* SO_RCVLOWAT makes a TCP socket poll readable only once `want` bytes
     * are queued: the wait ends on the arrival itself. Elsewhere (AF_UNIX
     * queues a write at the receiver before write returns) the first look
     * already sees everything. Bounded in rounds and in time. */
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &want, sizeof want);
    for (int round = 0; round < 1000; round++) {
        if (ioctl(fd, FIONREAD, &queued) != 0 || queued >= want) break;
        int left = (int)(end - sm_test_now_ms());
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (left <= 0 || poll(&p, 1, left) <= 0) break;
    }
    int one = 1;
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &one, sizeof one);
    return queued;
}

void
sm_test_send_fds(int fd, const void *p, size_t len, const int *fds, int n)
{
    if (n < 0 || n > SM_TEST_SEND_FDS_MAX) fail_msg("sm_test_send_fds: %d fds", n);
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int) * SM_TEST_SEND_FDS_MAX)];
    } cb;
    memset(&cb, 0, sizeof cb);
    struct iovec v = {.iov_base = (void *)p, .iov_len = len};
    struct msghdr m = {.msg_iov = &v, .msg_iovlen = 1};
    if (n > 0) {
        size_t bytes = sizeof(int) * (size_t)n;
        m.msg_control = cb.buf;
        m.msg_controllen = CMSG_SPACE(bytes);
        struct cmsghdr *h = CMSG_FIRSTHDR(&m);
        h->cmsg_level = SOL_SOCKET;
        h->cmsg_type = SCM_RIGHTS;
        h->cmsg_len = CMSG_LEN(bytes);
        memcpy(CMSG_DATA(h), fds, bytes);
    }
    ssize_t sent = sendmsg(fd, &m, MSG_NOSIGNAL);
    if (sent != (ssize_t)len)
        fail_msg("fd %d: sendmsg of %zu bytes with %d fds gave %zd (%s)", fd, len, n, sent,
                 sent < 0 ? strerror(errno) : "short");
}

void
sm_test_read_exact(int fd, void *buf, size_t len, int timeout_ms)
{
    size_t have = 0;
    int64_t end = sm_test_now_ms() + timeout_ms;
    /* Each pass reads something or waits on poll (bounded by the time
     * left), so the pass count is bounded by the bytes plus the wakeups. */
    while (have < len) {
        int left = (int)(end - sm_test_now_ms());
        if (left <= 0) fail_msg("fd %d: %zu of %zu bytes within %d ms", fd, have, len, timeout_ms);
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        int pr = poll(&pf, 1, left);
        if (pr < 0 && errno != EINTR) fail_msg("fd %d: poll: %s", fd, strerror(errno));
        if (pr <= 0) continue;
        ssize_t r = read(fd, (char *)buf + have, len - have);
        if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        if (r <= 0)
            fail_msg("fd %d: %zu of %zu bytes, then %s", fd, have, len,
                     r == 0 ? "EOF" : strerror(errno));
        have += (size_t)r;
    }
}

bool
sm_test_same_file(int x, int y)
{
    struct stat a, b;
    if (fstat(x, &a) < 0 || fstat(y, &b) < 0) return false;
    return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

void
sm_test_expect_msg(sm_conn *c, const char *want, int timeout_ms)
{
    sm_frame_msg m;
    int rc = sm_conn_recv(c, &m, timeout_ms);
    if (rc != 1) fail_msg("waiting for '%s': recv gave %d (%s)", want, rc, sm_err_name(rc));
    if (m.len != strlen(want) || memcmp(m.data, want, m.len) != 0)
        fail_msg("wanted '%s', got '%.*s'", want, (int)m.len, (const char *)m.data);
}

sm_addr
sm_test_inet4(const char *ip, uint16_t port)
{
    sm_addr a;
    memset(&a, 0, sizeof a);
    struct sockaddr_in *s = (struct sockaddr_in *)&a.ss;
    s->sin_family = AF_INET;
    s->sin_port = htons(port);
    if (inet_pton(AF_INET, ip, &s->sin_addr) != 1) fail_msg("not an IPv4 address: %s", ip);
    a.len = sizeof *s;
    return a;
}

sm_addr
sm_test_inet6(const char *ip, uint16_t port)
{
    sm_addr a;
    memset(&a, 0, sizeof a);
    struct sockaddr_in6 *s = (struct sockaddr_in6 *)&a.ss;
    s->sin6_family = AF_INET6;
    s->sin6_port = htons(port);
    if (inet_pton(AF_INET6, ip, &s->sin6_addr) != 1) fail_msg("not an IPv6 address: %s", ip);
    a.len = sizeof *s;
    return a;
}
