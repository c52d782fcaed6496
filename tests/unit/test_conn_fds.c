/* sm_conn fd passing over Unix sockets (unix.h): fds tied to their message
 * however bytes split or join, the cap, MSG_CTRUNC, close-on-exec, no leak
 * (counted in /proc/self/fd), and the peer's credentials. */
#include "smtest.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sockmsg/unix.h>

/* Two conns over a socketpair; the receiver takes fds with the given cap. */
static void
conn_pair(sm_conn **a, sm_conn **b, const char *spec, int cap)
{
    int sv[2];
    SM_ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
    sm_frame_spec s;
    SM_ASSERT_OK(sm_frame_spec_parse(&s, spec, NULL, 0));
    SM_ASSERT_OK(sm_conn_new_take(a, sv[0], &s));
    SM_ASSERT_OK(sm_conn_new_take(b, sv[1], &s));
    sm_conn_set_timeout(*a, 5000);
    sm_conn_set_timeout(*b, 5000);
    SM_ASSERT_OK(sm_conn_enable_fds(*b, cap));
}

static void
expect_msg(sm_conn *c, const char *want, int nfds, int *fds)
{
    sm_frame_msg m;
    SM_ASSERT_OK(sm_conn_recv(c, &m, SM_CONN_DEFAULT));
    assert_int_equal(m.len, strlen(want));
    assert_memory_equal(m.data, want, m.len);
    int got[SM_FDS_MAX];
    int n = SM_ASSERT_OK(sm_conn_take_fds(c, got, SM_FDS_MAX));
    assert_int_equal(n, nfds);
    for (int i = 0; i < n; i++) {
        int fl = fcntl(got[i], F_GETFD);
        assert_true(fl >= 0 && (fl & FD_CLOEXEC));
        if (fds)
            fds[i] = got[i];
        else
            close(got[i]);
    }
}

/* ---- a pipe and a socket through a server ------------------------------ */

struct server {
    int lfd;
    int result;
    pthread_t th;
};

/* Serve one client: a "pipe" message's fd gets "hello" written into it, a
 * "sock" message's fd is talked to (read "ping", answer "pong"). */
static void *
server_main(void *arg)
{
    struct server *s = arg;
    sm_conn *c = NULL;
    int fd = sm_accept(s->lfd, 5000, NULL);
    s->result = fd < 0 ? fd : 0;
    sm_frame_spec spec;
    if (!s->result) s->result = sm_frame_spec_parse(&spec, "len32be", NULL, 0);
    if (!s->result) s->result = sm_conn_new_take(&c, fd, &spec);
    if (!s->result) s->result = sm_conn_enable_fds(c, 0);
    for (int i = 0; !s->result && i < 2; i++) {
        sm_frame_msg m;
        int rc = sm_conn_recv(c, &m, 5000);
        int got = -1;
        if (rc == 1 && sm_conn_take_fds(c, &got, 1) != 1) rc = -ENOENT;
        if (rc != 1) {
            s->result = rc < 0 ? rc : -EPIPE;
            break;
        }
        if (m.len == 4 && !memcmp(m.data, "pipe", 4)) {
            if (write(got, "hello", 5) != 5) s->result = -errno;
        } else {
            char b[4];
            if (sm_recv_exact(got, b, 4, 5000, NULL) != 4 || memcmp(b, "ping", 4) ||
                sm_send_all(got, "pong", 4, 5000, NULL) != 4)
                s->result = -EIO;
        }
        close(got);
        if (!s->result && sm_conn_send(c, "done", 4, 5000) != 4) s->result = -EIO;
    }
    sm_conn_free(c);
    return NULL;
}

static void
test_pipe_and_socket_through_server(void **state)
{
    (void)state;
    int before = sm_test_count_fds();
    char where[80];
    snprintf(where, sizeof where, "unix:@smtest-fds-%d", (int)getpid());
    struct server s = {.lfd = SM_ASSERT_OK(sm_listen(where, 4))};
    assert_int_equal(pthread_create(&s.th, NULL, server_main, &s), 0);
    sm_conn *c;
    char why[200];
    int rc = sm_conn_dial(&c, where, "len32be", 5000, why, sizeof why);
    if (rc < 0) fail_msg("dial: %s", why);
    sm_conn_set_timeout(c, 5000);

    int p[2], sv[2];
    SM_ASSERT_OK(pipe2(p, O_CLOEXEC));
    SM_ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
    assert_int_equal(SM_ASSERT_OK(sm_conn_send_fds(c, "pipe", 4, &p[1], 1, SM_CONN_DEFAULT)), 4);
    close(p[1]); /* the server's copy is now the only writer */
    char b[8] = {0};
    if (sm_test_read_all(p[0], b, sizeof b, 5000) != 5) {
        pthread_join(s.th, NULL);
        fail_msg("the server wrote nothing: %s", sm_err_name(s.result));
    }
    assert_string_equal(b, "hello");
    expect_msg(c, "done", 0, NULL);

    assert_int_equal(SM_ASSERT_OK(sm_conn_send_fds(c, "sock", 4, &sv[1], 1, SM_CONN_DEFAULT)), 4);
    close(sv[1]);
    SM_ASSERT_OK(sm_send_all(sv[0], "ping", 4, 5000, NULL));
    assert_int_equal(SM_ASSERT_OK(sm_recv_exact(sv[0], b, 4, 5000, NULL)), 4);
    assert_memory_equal(b, "pong", 4);
    expect_msg(c, "done", 0, NULL);

    pthread_join(s.th, NULL);
    SM_ASSERT_OK(s.result);
    close(s.lfd);
    close(p[0]);
    close(sv[0]);
    sm_conn_free(c);
    assert_int_equal(sm_test_count_fds(), before);
}

/* ---- attribution ------------------------------------------------------- */

/* Messages without fds before one with them come in the same read: the fds
 * go to the message whose bytes they came with, not the read's first. */
static void
test_fds_follow_their_message(void **state)
{
    (void)state;
    int before = sm_test_count_fds();
    sm_conn *a, *b;
    conn_pair(&a, &b, "len32be", 0);
    int p1[2], p2[2];
    SM_ASSERT_OK(pipe2(p1, O_CLOEXEC));
    SM_ASSERT_OK(pipe2(p2, O_CLOEXEC));
    int three[3] = {p1[0], p1[1], p2[0]};
    SM_ASSERT_OK(sm_conn_send(a, "one", 3, SM_CONN_DEFAULT));
    SM_ASSERT_OK(sm_conn_send(a, "two", 3, SM_CONN_DEFAULT));
    SM_ASSERT_OK(sm_conn_send_fds(a, "three", 5, three, 3, SM_CONN_DEFAULT));
    SM_ASSERT_OK(sm_conn_send(a, "four", 4, SM_CONN_DEFAULT));
    SM_ASSERT_OK(sm_conn_send_fds(a, "five", 4, &p2[1], 1, SM_CONN_DEFAULT));
    SM_ASSERT_OK(sm_conn_send_fds(a, "six", 3, three, 2, SM_CONN_DEFAULT));

    int got[3];
    expect_msg(b, "one", 0, NULL);
    expect_msg(b, "two", 0, NULL);
    expect_msg(b, "three", 3, got);
    for (int i = 0; i < 3; i++) {
        assert_true(sm_test_same_file(got[i], three[i]));
        close(got[i]);
    }
    expect_msg(b, "four", 0, NULL);
    expect_msg(b, "five", 1, got);
    assert_true(sm_test_same_file(got[0], p2[1]));
    close(got[0]);
    expect_msg(b, "six", 2, NULL);
    sm_conn_free(a);
    sm_conn_free(b);
    for (int i = 0; i < 2; i++) {
        close(p1[i]);
        close(p2[i]);
    }
    assert_int_equal(sm_test_count_fds(), before);
}

/* A message split over reads, its fds on its first and on a middle piece;
 * and the cap: fds beyond it (arriving in several sends) are closed. */
static void
test_split_message_and_cap(void **state)
{
    (void)state;
    int before = sm_test_count_fds();
    sm_conn *b;
    int sv[2];
    SM_ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
    sm_frame_spec s;
    SM_ASSERT_OK(sm_frame_spec_parse(&s, "len8", NULL, 0));
    SM_ASSERT_OK(sm_conn_new_take(&b, sv[1], &s));
    SM_ASSERT_OK(sm_conn_enable_fds(b, 3));
    int p[2];
    SM_ASSERT_OK(pipe2(p, O_CLOEXEC));
    int two[2] = {p[0], p[1]};
    sm_frame_msg m;
    sm_test_send_fds(sv[0],
                     "\x06"
                     "ab",
                     3, two, 2);
    SM_ASSERT_ERR(sm_conn_recv(b, &m, 0), -ETIMEDOUT);
    sm_test_send_fds(sv[0], "cd", 2, two, 2); /* 4 fds for a cap of 3 */
    SM_ASSERT_ERR(sm_conn_recv(b, &m, 0), -ETIMEDOUT);
    sm_test_send_fds(sv[0],
                     "ef"
                     "\x01"
                     "g",
                     4, NULL, 0);
    SM_ASSERT_OK(sm_conn_recv(b, &m, 5000));
    assert_int_equal(m.len, 6);
    assert_memory_equal(m.data, "abcdef", 6);
    int got[4];
    /* Taken in two calls: the order they were sent in. */
    assert_int_equal(sm_conn_take_fds(b, got, 1), 1);
    assert_int_equal(sm_conn_take_fds(b, got + 1, 4), 2);
    assert_true(sm_test_same_file(got[0], p[0]) && sm_test_same_file(got[1], p[1]) &&
                sm_test_same_file(got[2], p[0]));
    for (int i = 0; i < 3; i++)
        close(got[i]);
    SM_ASSERT_OK(sm_conn_recv(b, &m, 5000));
    assert_int_equal(sm_conn_take_fds(b, got, 4), 0);
    close(p[0]);
    close(p[1]);
    close(sv[0]);
    sm_conn_free(b);
    assert_int_equal(sm_test_count_fds(), before);
}

/* Fds not taken are closed by the next receive; fds of skipped bytes and of
 * an incomplete message at EOF are closed too. */
static void
test_untaken_and_orphans_closed(void **state)
{
    (void)state;
    int before = sm_test_count_fds();
    sm_conn *b;
    int sv[2];
    SM_ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
    sm_frame_spec s;
    SM_ASSERT_OK(sm_frame_spec_parse(&s, "len8,max=4,oversize=skip", NULL, 0));
    SM_ASSERT_OK(sm_conn_new_take(&b, sv[1], &s));
    SM_ASSERT_OK(sm_conn_enable_fds(b, 0));
    int p[2];
    SM_ASSERT_OK(pipe2(p, O_CLOEXEC));
    sm_test_send_fds(sv[0],
                     "\x02"
                     "ok",
                     3, p, 2);
    sm_test_send_fds(sv[0],
                     "\x08"
                     "too-long",
                     9, p, 2); /* skipped, with its fds */
    sm_test_send_fds(sv[0],
                     "\x01"
                     "x",
                     2, p, 1);
    sm_test_send_fds(sv[0],
                     "\x03"
                     "y",
                     2, p, 2); /* never completed */
    int base = sm_test_count_fds();
    sm_frame_msg m;
    SM_ASSERT_OK(sm_conn_recv(b, &m, 5000));
    assert_memory_equal(m.data, "ok", 2);
    assert_int_equal(sm_test_count_fds(), base + 2);
    SM_ASSERT_OK(sm_conn_recv(b, &m, 5000)); /* "ok"'s two closed, "x"'s one held */
    assert_memory_equal(m.data, "x", 1);
    assert_int_equal(sm_conn_skipped(b), 1);
    assert_true(sm_test_count_fds() <= base + 1 + 2); /* "y"'s may have been read */
    close(sv[0]);
    SM_ASSERT_ERR(sm_conn_recv(b, &m, 5000), SM_ERR_TRUNCATED);
    sm_conn_free(b);
    close(p[0]);
    close(p[1]);
    assert_int_equal(sm_test_count_fds(), before);
}

/* More fds in one sendmsg than the receiver's cap: the kernel truncates the
 * control data; the receive says so and nothing leaks. */
static void
test_ctrunc_reported(void **state)
{
    (void)state;
    int before = sm_test_count_fds();
    sm_conn *a, *b;
    conn_pair(&a, &b, "len32be", 2);
    int p[2];
    SM_ASSERT_OK(pipe2(p, O_CLOEXEC));
    int four[4] = {p[0], p[1], p[0], p[1]};
    SM_ASSERT_OK(sm_conn_send(a, "before", 6, SM_CONN_DEFAULT));
    SM_ASSERT_OK(sm_conn_send_fds(a, "four", 4, four, 4, SM_CONN_DEFAULT));
    sm_frame_msg m;
    SM_ASSERT_OK(sm_conn_recv(b, &m, 5000));
    assert_memory_equal(m.data, "before", 6);
    SM_ASSERT_ERR(sm_conn_recv(b, &m, 5000), SM_ERR_FDS_TRUNCATED);
    assert_non_null(strstr(sm_conn_error_detail(b), "MSG_CTRUNC"));
    SM_ASSERT_ERR(sm_conn_recv(b, &m, 5000), SM_ERR_FDS_TRUNCATED); /* sticky */
    sm_conn_free(a);
    sm_conn_free(b);
    close(p[0]);
    close(p[1]);
    assert_int_equal(sm_test_count_fds(), before);
}

/* ---- partial sends ----------------------------------------------------- */

struct big {
    sm_conn *a;
    int fd;
    size_t len;
    ssize_t sent;
    pthread_t th;
};

static void *
big_main(void *arg)
{
    struct big *g = arg;
    char *p = malloc(g->len);
    if (!p) {
        g->sent = -ENOMEM;
        return NULL;
    }
    for (size_t i = 0; i < g->len; i++)
        p[i] = (char)('a' + i % 26);
    g->sent = sm_conn_send_fds(g->a, p, g->len, &g->fd, 1, 10000);
    if (g->sent >= 0) g->sent = sm_conn_send_fds(g->a, "tail", 4, &g->fd, 1, 10000);
    free(p);
    return NULL;
}

/* A message far larger than the socket buffer goes out in many sendmsg
 * calls: its fd travels once, with the first. */
static void
test_large_message_fds_once(void **state)
{
    (void)state;
    int before = sm_test_count_fds();
    sm_conn *a, *b;
    conn_pair(&a, &b, "len32be,max=4194304", 0);
    int p[2];
    SM_ASSERT_OK(pipe2(p, O_CLOEXEC));
    struct big g = {.a = a, .fd = p[1], .len = (size_t)3 << 20};
    assert_int_equal(pthread_create(&g.th, NULL, big_main, &g), 0);
    sm_frame_msg m;
    SM_ASSERT_OK(sm_conn_recv(b, &m, 10000));
    assert_int_equal(m.len, g.len);
    assert_int_equal(m.data[g.len - 1], (char)('a' + (g.len - 1) % 26));
    int got[2];
    assert_int_equal(sm_conn_take_fds(b, got, 2), 1);
    assert_true(sm_test_same_file(got[0], p[1]));
    close(got[0]);
    expect_msg(b, "tail", 1, NULL);
    pthread_join(g.th, NULL);
    SM_ASSERT_OK(g.sent);
    sm_conn_free(a);
    sm_conn_free(b);
    close(p[0]);
    close(p[1]);
    assert_int_equal(sm_test_count_fds(), before);
}

/* ---- credentials and errors -------------------------------------------- */

static void
test_peer_cred(void **state)
{
    (void)state;
    sm_conn *a, *b;
    conn_pair(&a, &b, "line", 0);
    sm_cred cr;
    SM_ASSERT_OK(sm_conn_peer_cred(b, &cr));
    assert_int_equal(cr.pid, getpid());
    assert_int_equal(cr.uid, getuid());
    assert_int_equal(cr.gid, getgid());
    SM_ASSERT_ERR(sm_conn_peer_cred(b, NULL), -EINVAL);
    sm_conn_free(a);
    sm_conn_free(b);
}

static void
test_errors(void **state)
{
    (void)state;
    int before = sm_test_count_fds();
    /* TCP: no fds, no credentials. */
    int lfd = SM_ASSERT_OK(sm_listen("tcp://127.0.0.1:0", 4));
    sm_endpoint ep;
    char addr[64];
    SM_ASSERT_OK(sm_sock_local(lfd, &ep));
    SM_ASSERT_OK(sm_endpoint_format(&ep, addr, sizeof addr));
    sm_conn *t;
    SM_ASSERT_OK(sm_conn_dial(&t, addr, "len32be", 5000, NULL, 0));
    int afd = SM_ASSERT_OK(sm_accept(lfd, 5000, NULL));
    int p[2];
    SM_ASSERT_OK(pipe2(p, O_CLOEXEC));
    SM_ASSERT_ERR(sm_conn_enable_fds(t, 0), -EAFNOSUPPORT);
    SM_ASSERT_ERR(sm_conn_send_fds(t, "x", 1, p, 1, 1000), -EAFNOSUPPORT);
    sm_cred cr;
    SM_ASSERT_ERR(sm_conn_peer_cred(t, &cr), -EAFNOSUPPORT);
    SM_ASSERT_ERR(sm_conn_enable_cred(t), -EAFNOSUPPORT);
    int got;
    assert_int_equal(sm_conn_take_fds(t, &got, 1), 0);
    sm_conn_free(t);
    close(afd);
    close(lfd);

    sm_conn *a, *b;
    conn_pair(&a, &b, "line", 4);
    SM_ASSERT_ERR(sm_conn_enable_fds(b, SM_FDS_MAX + 1), -EINVAL);
    SM_ASSERT_ERR(sm_conn_enable_fds(b, -1), -EINVAL);
    SM_ASSERT_ERR(sm_conn_send_fds(a, "x", 1, p, SM_FDS_MAX + 1, 1000), -EINVAL);
    SM_ASSERT_ERR(sm_conn_send_fds(a, "x", 1, NULL, 1, 1000), -EINVAL);
    SM_ASSERT_ERR(sm_conn_take_fds(b, &got, 0), -EINVAL);
    int bad = p[0];
    close(p[0]);
    SM_ASSERT_ERR(sm_conn_send_fds(a, "x", 1, &bad, 1, 1000), -EBADF);
    SM_ASSERT_ERR(sm_conn_send_fds(a, "a\nb", 3, &p[1], 1, 1000), -EINVAL);
    /* nfds 0 is a plain send. */
    assert_int_equal(SM_ASSERT_OK(sm_conn_send_fds(a, "y", 1, NULL, 0, 1000)), 1);
    expect_msg(b, "y", 0, NULL);
    SM_ASSERT_OK(sm_conn_enable_fds(b, 8)); /* a new cap while none is held */
    SM_ASSERT_OK(sm_conn_send_fds(a, "z", 1, &p[1], 1, 1000));
    expect_msg(b, "z", 1, NULL);
    sm_conn_free(a);
    sm_conn_free(b);
    close(p[1]);
    assert_int_equal(sm_test_count_fds(), before);
}

/* Write bytes from a child process (its own pid on them); returns its pid. */
static pid_t
child_writes(int fd, const char *p, size_t n)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) _exit(write(fd, p, n) == (ssize_t)n ? 0 : 1);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    return pid;
}

/* SCM_CREDENTIALS: each message names the process that sent it. */
static void
test_msg_cred(void **state)
{
    (void)state;
    int before = sm_test_count_fds();
    sm_conn *a, *b;
    conn_pair(&a, &b, "len8", 0);
    sm_cred cr;
    assert_int_equal(sm_conn_msg_cred(b, &cr), 0); /* nothing received yet */
    SM_ASSERT_OK(sm_conn_enable_cred(b));
    SM_ASSERT_OK(sm_conn_send(a, "parent", 6, SM_CONN_DEFAULT));
    pid_t kid = child_writes(sm_conn_fd(a),
                             "\x05"
                             "child",
                             6);
    pid_t kid2 = child_writes(sm_conn_fd(a),
                              "\x04"
                              "mi",
                              3); /* half from a child */
    assert_true(kid != kid2);
    SM_ASSERT_OK(sm_conn_send_raw(a, "xd", 2, SM_CONN_DEFAULT)); /* half from us */
    SM_ASSERT_OK(sm_conn_send(a, "last", 4, SM_CONN_DEFAULT));

    expect_msg(b, "parent", 0, NULL);
    assert_int_equal(sm_conn_msg_cred(b, &cr), 1);
    assert_int_equal(cr.pid, getpid());
    assert_int_equal(cr.uid, getuid());
    assert_int_equal(cr.gid, getgid());
    expect_msg(b, "child", 0, NULL);
    assert_int_equal(sm_conn_msg_cred(b, &cr), 1);
    assert_int_equal(cr.pid, kid);
    expect_msg(b, "mixd", 0, NULL);
    assert_int_equal(sm_conn_msg_cred(b, &cr), 0); /* two senders */
    expect_msg(b, "last", 0, NULL);
    assert_int_equal(sm_conn_msg_cred(b, &cr), 1);
    assert_int_equal(cr.pid, getpid());
    /* Credentials and fds together. */
    int p[2];
    SM_ASSERT_OK(pipe2(p, O_CLOEXEC));
    SM_ASSERT_OK(sm_conn_send_fds(a, "both", 4, p, 2, SM_CONN_DEFAULT));
    expect_msg(b, "both", 2, NULL);
    assert_int_equal(sm_conn_msg_cred(b, &cr), 1);
    assert_int_equal(cr.pid, getpid());
    SM_ASSERT_ERR(sm_conn_msg_cred(b, NULL), -EINVAL);
    sm_conn_free(a);
    sm_conn_free(b);
    close(p[0]);
    close(p[1]);
    assert_int_equal(sm_test_count_fds(), before);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pipe_and_socket_through_server),
        cmocka_unit_test(test_fds_follow_their_message),
        cmocka_unit_test(test_split_message_and_cap),
        cmocka_unit_test(test_untaken_and_orphans_closed),
        cmocka_unit_test(test_ctrunc_reported),
        cmocka_unit_test(test_large_message_fds_once),
        cmocka_unit_test(test_peer_cred),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_msg_cred),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
