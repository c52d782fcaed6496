/* Servers passing file descriptors and reporting credentials (unix.h,
 * opts.max_fds), in both models and on every loop backend: a pipe and a
 * socket sent by one client, taken by on_message and forwarded to another
 * client, which uses them to reach the first; fds over several messages,
 * one sendmsg's fds with two messages; the cap; untaken fds closed when
 * on_message returns; MSG_CTRUNC closing only that peer; SO_PEERCRED; the
 * options refused. Every case counts /proc/self/fd (the server is in this
 * process) before and after. */
#include "server_util.h"

#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <sockmsg/error.h>
#include <sockmsg/unix.h>

#define T      10000
#define MAXFDS 3

static const srv_variant loop1 = {SM_SERVER_LOOP, SM_ACCEPT_DEFAULT, 1};
static const srv_variant threads = {SM_SERVER_THREAD, SM_ACCEPT_DEFAULT, 0};

/* What the handlers saw; written on server threads, read by the test. */
static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    sm_peer *b;    /* the peer that registered with "B" */
    bool b_gone;   /* its on_close ran */
    bool c_closed; /* the peer marked "C" was closed */
    int c_reason;  /* and why */
    char c_detail[256];
    int err; /* a handler's failure */
} st = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER};

static void
handler_fail(int rc)
{
    pthread_mutex_lock(&st.lock);
    if (!st.err) st.err = rc;
    pthread_mutex_unlock(&st.lock);
}

static void
reply(sm_peer *p, const char *s)
{
    int rc = sm_peer_send(p, s, strlen(s));
    if (rc < 0) handler_fail(rc);
}

static void
close_all(const int *fds, int n)
{
    for (int i = 0; i < n; i++)
        close(fds[i]);
}

/* sm_peer_take_fds and sm_peer_msg_cred from a thread that is not the
 * peer's (thread model: legal, and they find no message there). */
typedef struct elsewhere {
    sm_peer *p;
    int take, cred;
} elsewhere;

static void *
elsewhere_main(void *arg)
{
    elsewhere *e = arg;
    int fds[SM_FDS_MAX];
    sm_cred c;
    e->take = sm_peer_take_fds(e->p, fds, SM_FDS_MAX);
    if (e->take > 0) close_all(fds, e->take);
    e->cred = sm_peer_msg_cred(e->p, &c);
    return NULL;
}

/* Commands, by the message's first bytes:
 *   B          this peer receives forwards; replies "ok"
 *   C          this peer's close is recorded; replies "ok"
 *   FWD        its fds go to B with a "FWD" message; replies "sent:N"
 *   TAKE1      takes one fd (the others are closed after the return)
 *   NOTAKE     takes none
 *   CRED       replies "pid uid gid" (SO_PEERCRED)
 *   MCRED      replies the message's sender, "pid uid gid", or "unknown"
 *   GIVE       sends "fd" with an fd of /dev/null, then "rc:<result>"
 *   ELSEWHERE  (thread model) take_fds and msg_cred from another thread:
 *              replies "take:N cred:N", then takes the fds itself
 *   anything else: replies "<msg>:N" with the N fds taken (then closed) */
static void
on_msg(sm_peer *p, const sm_frame_msg *m)
{
    char name[64];
    size_t len = m->len < sizeof name - 1 ? m->len : sizeof name - 1;
    memcpy(name, m->data, len);
    name[len] = 0;
    char out[128];
    int fds[SM_FDS_MAX];
    if (!strcmp(name, "B")) {
        pthread_mutex_lock(&st.lock);
        st.b = p;
        pthread_mutex_unlock(&st.lock);
        reply(p, "ok");
    } else if (!strcmp(name, "C")) {
        sm_peer_set_data(p, &st);
        reply(p, "ok");
    } else if (!strcmp(name, "FWD")) {
        int n = sm_peer_take_fds(p, fds, SM_FDS_MAX);
        pthread_mutex_lock(&st.lock);
        sm_peer *b = st.b;
        pthread_mutex_unlock(&st.lock);
        int rc = b && n > 0 ? sm_peer_send_fds(b, "FWD", 3, fds, n) : -ENOENT;
        if (rc < 0) handler_fail(rc);
        close_all(fds, n > 0 ? n : 0);
        snprintf(out, sizeof out, "sent:%d", n);
        reply(p, out);
    } else if (!strcmp(name, "TAKE1")) {
        int n = sm_peer_take_fds(p, fds, 1);
        close_all(fds, n > 0 ? n : 0);
        snprintf(out, sizeof out, "took:%d", n);
        reply(p, out);
    } else if (!strcmp(name, "NOTAKE")) {
        reply(p, "none");
    } else if (!strcmp(name, "ELSEWHERE")) {
        pthread_t th;
        elsewhere e = {.p = p};
        if (pthread_create(&th, NULL, elsewhere_main, &e) != 0) {
            handler_fail(-EAGAIN);
            return;
        }
        pthread_join(th, NULL);
        int n = sm_peer_take_fds(p, fds, SM_FDS_MAX);
        close_all(fds, n > 0 ? n : 0);
        snprintf(out, sizeof out, "take:%d cred:%d mine:%d", e.take, e.cred, n);
        reply(p, out);
    } else if (!strcmp(name, "GIVE")) {
        int nul = open("/dev/null", O_RDONLY | O_CLOEXEC);
        int rc = nul < 0 ? -errno : sm_peer_send_fds(p, "fd", 2, &nul, 1);
        if (nul >= 0) close(nul); /* the peer has its own copy */
        snprintf(out, sizeof out, "rc:%d", rc);
        reply(p, out);
    } else if (!strcmp(name, "MCRED")) {
        sm_cred c;
        int rc = sm_peer_msg_cred(p, &c);
        if (rc == 1)
            snprintf(out, sizeof out, "%d %d %d", (int)c.pid, (int)c.uid, (int)c.gid);
        else
            snprintf(out, sizeof out, rc == 0 ? "unknown" : "err %d", rc);
        reply(p, out);
    } else if (!strcmp(name, "CRED")) {
        sm_cred c;
        int rc = sm_peer_cred(p, &c);
        if (rc < 0)
            snprintf(out, sizeof out, "err %d", rc);
        else
            snprintf(out, sizeof out, "%d %d %d", (int)c.pid, (int)c.uid, (int)c.gid);
        reply(p, out);
    } else {
        int n = sm_peer_take_fds(p, fds, SM_FDS_MAX);
        bool cloexec = true;
        for (int i = 0; i < n; i++)
            if (!(fcntl(fds[i], F_GETFD) & FD_CLOEXEC)) cloexec = false;
        if (!cloexec) handler_fail(-EBADFD);
        close_all(fds, n > 0 ? n : 0);
        snprintf(out, sizeof out, "%s:%d", name, n);
        reply(p, out);
    }
}

static void
on_close(sm_peer *p, int reason)
{
    pthread_mutex_lock(&st.lock);
    if (p == st.b) {
        st.b = NULL;
        st.b_gone = true;
    }
    if (sm_peer_get_data(p) == &st) {
        st.c_closed = true;
        st.c_reason = reason;
        snprintf(st.c_detail, sizeof st.c_detail, "%s", sm_peer_error_detail(p));
    }
    pthread_cond_broadcast(&st.cond);
    pthread_mutex_unlock(&st.lock);
}

/* Wait (bounded) until *flag is set by on_close. */
static void
wait_flag(bool *flag)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += T / 1000;
    pthread_mutex_lock(&st.lock);
    int rc = 0;
    while (!*flag && rc == 0)
        rc = pthread_cond_timedwait(&st.cond, &st.lock, &until);
    bool got = *flag;
    pthread_mutex_unlock(&st.lock);
    if (!got) fail_msg("on_close did not run within %d ms", T);
}

/* A server on a fresh unix: path; ep receives its address. */
typedef struct fx {
    char dir[256];
    char path[400];
    char ep[400];
    sm_server *srv;
    int fds_before;
} fx;

static void
fx_start_cred(fx *f, const srv_variant *v, int max_fds, bool msg_cred)
{
    pthread_mutex_lock(&st.lock);
    st.b = NULL;
    st.b_gone = st.c_closed = false;
    st.c_reason = 0;
    st.c_detail[0] = 0;
    st.err = 0;
    pthread_mutex_unlock(&st.lock);
    f->fds_before = sm_test_count_fds();
    sm_test_mkdtemp(f->dir, sizeof f->dir);
    snprintf(f->path, sizeof f->path, "unix:%s/s.sock", f->dir);
    const char *eps[] = {f->path, NULL};
    sm_server_opts o = {
        .listen = eps, .on_message = on_msg, .on_close = on_close, .max_fds = max_fds};
    o.msg_cred = msg_cred;
    srv_apply(&o, v);
    f->srv = srv_start(&o, f->ep, sizeof f->ep);
}

static void
fx_start(fx *f, const srv_variant *v, int max_fds)
{
    fx_start_cred(f, v, max_fds, false);
}

static void
fx_end(fx *f)
{
    sm_server_stop(f->srv);
    SM_ASSERT_OK(sm_server_wait(f->srv));
    sm_server_free(f->srv);
    sm_test_rmdir(f->dir);
    pthread_mutex_lock(&st.lock);
    int err = st.err;
    pthread_mutex_unlock(&st.lock);
    SM_ASSERT_OK(err);
    assert_int_equal(sm_test_count_fds(), f->fds_before);
}

static sm_conn *
fd_dial(const fx *f)
{
    sm_conn *c = cli_dial(f->ep);
    SM_ASSERT_OK(sm_conn_enable_fds(c, 8));
    return c;
}

static void
send_fds(sm_conn *c, const char *msg, const int *fds, int n)
{
    ssize_t rc = sm_conn_send_fds(c, msg, strlen(msg), fds, n, SM_CONN_DEFAULT);
    assert_int_equal(rc, (ssize_t)strlen(msg));
}

/* The read end reaches EOF within T: every copy of the write end is closed
 * (the server kept none). */
static void
expect_eof(int fd)
{
    struct pollfd pf = {.fd = fd, .events = POLLIN};
    if (poll(&pf, 1, T) != 1) fail_msg("fd %d: no EOF within %d ms (a copy leaked)", fd, T);
    char c;
    assert_int_equal(read(fd, &c, 1), 0);
}

/* A sends a pipe's write end and one end of a socketpair; the server takes
 * them and forwards them to B; B writes into the pipe and talks over the
 * socket, and A reads both: the fds work end to end. */
static void
test_pipe_and_socket_through_server(void **state)
{
    fx f;
    fx_start(&f, srv_variant_of(state), MAXFDS);
    sm_conn *a = fd_dial(&f), *b = fd_dial(&f);
    SM_ASSERT_OK(sm_conn_send(b, "B", 1, SM_CONN_DEFAULT));
    sm_test_expect_msg(b, "ok", SM_CONN_DEFAULT);
    int pp[2], sv[2];
    assert_int_equal(pipe2(pp, O_CLOEXEC), 0);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    int give[2] = {pp[1], sv[1]};
    send_fds(a, "FWD", give, 2);
    sm_test_expect_msg(a, "sent:2", SM_CONN_DEFAULT);

    sm_frame_msg m;
    assert_int_equal(sm_conn_recv(b, &m, SM_CONN_DEFAULT), 1);
    assert_int_equal(m.len, 3);
    assert_memory_equal(m.data, "FWD", 3);
    int got[4];
    assert_int_equal(sm_conn_take_fds(b, got, 4), 2);
    assert_true(sm_test_same_file(got[0], pp[1]));
    assert_true(sm_test_same_file(got[1], sv[1]));
    close(pp[1]);
    close(sv[1]);
    assert_int_equal(write(got[0], "hello", 5), 5);
    assert_int_equal(write(got[1], "ping", 4), 4);
    char buf[8];
    sm_test_read_exact(pp[0], buf, 5, T);
    assert_memory_equal(buf, "hello", 5);
    sm_test_read_exact(sv[0], buf, 4, T);
    assert_memory_equal(buf, "ping", 4);
    assert_int_equal(write(sv[0], "pong", 4), 4);
    sm_test_read_exact(got[1], buf, 4, T);
    assert_memory_equal(buf, "pong", 4);
    close(got[0]);
    close(got[1]);
    /* No copy is left anywhere: the server closed its own. */
    expect_eof(pp[0]);
    expect_eof(sv[0]);
    close(pp[0]);
    close(sv[0]);
    sm_conn_free(a);
    sm_conn_free(b);
    wait_flag(&st.b_gone);
    fx_end(&f);
}

/* fds over several messages, each getting its own; one sendmsg holding two
 * messages gives its fds to the second (the one its last byte is in). */
static void
test_several_messages(void **state)
{
    fx f;
    fx_start(&f, srv_variant_of(state), MAXFDS);
    sm_conn *a = fd_dial(&f);
    int nul[3];
    for (int i = 0; i < 3; i++)
        assert_true((nul[i] = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0);
    send_fds(a, "m1", nul, 1);
    send_fds(a, "m2", nul, 2);
    send_fds(a, "m3", nul, 3);
    SM_ASSERT_OK(sm_conn_send(a, "m0", 2, SM_CONN_DEFAULT));
    sm_test_send_fds(sm_conn_fd(a), "\0\0\0\1x\0\0\0\1y", 10, nul, 2);
    sm_test_expect_msg(a, "m1:1", SM_CONN_DEFAULT);
    sm_test_expect_msg(a, "m2:2", SM_CONN_DEFAULT);
    sm_test_expect_msg(a, "m3:3", SM_CONN_DEFAULT);
    sm_test_expect_msg(a, "m0:0", SM_CONN_DEFAULT);
    sm_test_expect_msg(a, "x:0", SM_CONN_DEFAULT);
    sm_test_expect_msg(a, "y:2", SM_CONN_DEFAULT);
    close_all(nul, 3);
    sm_conn_free(a);
    fx_end(&f);
}

/* One message spread over sendmsgs with 4 fds against a cap of 3: the
 * fourth is closed; TAKE1 takes one, the rest closed after on_message;
 * NOTAKE's fd is closed when on_message returns (the pipe sees EOF while
 * the connection stays open and quiet). */
static void
test_cap_and_untaken(void **state)
{
    fx f;
    fx_start(&f, srv_variant_of(state), MAXFDS);
    sm_conn *a = fd_dial(&f);
    int pr[4], pw[4];
    for (int i = 0; i < 4; i++) {
        int pp[2];
        assert_int_equal(pipe2(pp, O_CLOEXEC), 0);
        pr[i] = pp[0];
        pw[i] = pp[1];
    }
    int fd = sm_conn_fd(a);
    sm_test_send_fds(fd, "\0\0\0\3c", 5, pw, 2);
    sm_test_send_fds(fd, "ap", 2, pw + 2, 2);
    sm_test_expect_msg(a, "cap:3", SM_CONN_DEFAULT);
    sm_test_send_fds(fd, "\0\0\0\5TAKE1", 9, pw, 3);
    sm_test_expect_msg(a, "took:1", SM_CONN_DEFAULT);
    for (int i = 0; i < 4; i++)
        close(pw[i]);
    for (int i = 0; i < 4; i++)
        expect_eof(pr[i]);
    close_all(pr, 4);

    int pp[2];
    assert_int_equal(pipe2(pp, O_CLOEXEC), 0);
    send_fds(a, "NOTAKE", &pp[1], 1);
    close(pp[1]);
    sm_test_expect_msg(a, "none", SM_CONN_DEFAULT);
    /* Nothing more is sent: only on_message's return can have closed it. */
    expect_eof(pp[0]);
    close(pp[0]);
    sm_conn_free(a);
    fx_end(&f);
}

/* More fds in one sendmsg than max_fds (a raw sendmsg ignoring the cap):
 * the kernel truncates them; that peer gets the message before, then is
 * closed with SM_ERR_FDS_TRUNCATED and a reason; another peer goes on. */
static void
test_ctrunc_closes_only_that_peer(void **state)
{
    fx f;
    fx_start(&f, srv_variant_of(state), MAXFDS);
    sm_conn *c = fd_dial(&f), *d = fd_dial(&f);
    SM_ASSERT_OK(sm_conn_send(c, "C", 1, SM_CONN_DEFAULT));
    sm_test_expect_msg(c, "ok", SM_CONN_DEFAULT);
    int nul[5];
    for (int i = 0; i < 5; i++)
        assert_true((nul[i] = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0);
    int fd = sm_conn_fd(c);
    sm_test_send_fds(fd, "\0\0\0\1a", 5, nul, 1);
    sm_test_send_fds(fd, "\0\0\0\1b", 5, nul, 5);
    sm_test_expect_msg(c, "a:1", SM_CONN_DEFAULT);
    cli_expect_end(c, T);
    wait_flag(&st.c_closed);
    pthread_mutex_lock(&st.lock);
    int reason = st.c_reason;
    char detail[256];
    snprintf(detail, sizeof detail, "%s", st.c_detail);
    pthread_mutex_unlock(&st.lock);
    SM_ASSERT_ERR(reason, SM_ERR_FDS_TRUNCATED);
    if (!strstr(detail, "MSG_CTRUNC")) fail_msg("detail: '%s'", detail);
    send_fds(d, "still", nul, 2);
    sm_test_expect_msg(d, "still:2", SM_CONN_DEFAULT);
    close_all(nul, 5);
    sm_conn_free(c);
    sm_conn_free(d);
    fx_end(&f);
}

static void
expect_cred(sm_conn *c)
{
    SM_ASSERT_OK(sm_conn_send(c, "CRED", 4, SM_CONN_DEFAULT));
    char want[96];
    snprintf(want, sizeof want, "%d %d %d", (int)getpid(), (int)getuid(), (int)getgid());
    sm_test_expect_msg(c, want, SM_CONN_DEFAULT);
}

/* SO_PEERCRED: with fd passing on and off; a TCP peer has none. */
static void
test_cred(void **state)
{
    const srv_variant *v = srv_variant_of(state);
    fx f;
    fx_start(&f, v, MAXFDS);
    sm_conn *a = fd_dial(&f);
    expect_cred(a);
    sm_conn_free(a);
    fx_end(&f);

    fx_start(&f, v, 0);
    a = cli_dial(f.ep);
    expect_cred(a);
    /* Without max_fds, fds sent are closed by the kernel: none arrive. */
    int pp[2];
    assert_int_equal(pipe2(pp, O_CLOEXEC), 0);
    send_fds(a, "plain", &pp[1], 1);
    close(pp[1]);
    sm_test_expect_msg(a, "plain:0", SM_CONN_DEFAULT);
    expect_eof(pp[0]);
    close(pp[0]);
    sm_conn_free(a);
    fx_end(&f);

    int before = sm_test_count_fds();
    const char *tcp[] = {"tcp://127.0.0.1:0", NULL};
    sm_server_opts o = {.listen = tcp, .on_message = on_msg};
    srv_apply(&o, v);
    char ep[128];
    sm_server *srv = srv_start(&o, ep, sizeof ep);
    a = cli_dial(ep);
    char want[32];
    snprintf(want, sizeof want, "err %d", -EAFNOSUPPORT);
    SM_ASSERT_OK(sm_conn_send(a, "CRED", 4, SM_CONN_DEFAULT));
    sm_test_expect_msg(a, want, SM_CONN_DEFAULT);
    sm_conn_free(a);
    sm_server_free(srv);
    assert_int_equal(sm_test_count_fds(), before);
}

/* The server sends an fd with a reply; without max_fds it refuses to
 * (-EINVAL, nothing sent), in both models alike. */
static void
test_server_sends_fds(void **state)
{
    const srv_variant *v = srv_variant_of(state);
    fx f;
    fx_start(&f, v, MAXFDS);
    sm_conn *a = fd_dial(&f);
    SM_ASSERT_OK(sm_conn_send(a, "GIVE", 4, SM_CONN_DEFAULT));
    sm_frame_msg m;
    assert_int_equal(sm_conn_recv(a, &m, SM_CONN_DEFAULT), 1);
    assert_int_equal(m.len, 2);
    int fd = -1;
    assert_int_equal(sm_conn_take_fds(a, &fd, 1), 1);
    struct stat sb, nb;
    assert_int_equal(fstat(fd, &sb), 0);
    assert_int_equal(stat("/dev/null", &nb), 0);
    assert_true(sb.st_rdev == nb.st_rdev && S_ISCHR(sb.st_mode));
    close(fd);
    sm_test_expect_msg(a, "rc:0", SM_CONN_DEFAULT);
    sm_conn_free(a);
    fx_end(&f);

    fx_start(&f, v, 0);
    a = fd_dial(&f);
    SM_ASSERT_OK(sm_conn_send(a, "GIVE", 4, SM_CONN_DEFAULT));
    char want[32];
    snprintf(want, sizeof want, "rc:%d", -EINVAL);
    sm_test_expect_msg(a, want, SM_CONN_DEFAULT);
    sm_conn_free(a);
    fx_end(&f);
}

/* Thread model: another thread gets nothing of the message being
 * delivered; the connection thread still gets its fds. */
static void
test_take_elsewhere(void **state)
{
    fx f;
    fx_start_cred(&f, srv_variant_of(state), MAXFDS, true);
    sm_conn *a = fd_dial(&f);
    int nul[2];
    for (int i = 0; i < 2; i++)
        assert_true((nul[i] = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0);
    send_fds(a, "ELSEWHERE", nul, 2);
    sm_test_expect_msg(a, "take:0 cred:0 mine:2", SM_CONN_DEFAULT);
    close_all(nul, 2);
    sm_conn_free(a);
    fx_end(&f);
}

static void
expect_sender(sm_conn *c, pid_t pid)
{
    char want[96];
    snprintf(want, sizeof want, "%d %d %d", (int)pid, (int)getuid(), (int)getgid());
    sm_test_expect_msg(c, want, SM_CONN_DEFAULT);
}

/* SCM_CREDENTIALS: each message names its own sender. A forked child
 * writes one message on the client's socket; the server sees the child's
 * pid for it and the parent's for the next. Without msg_cred: unknown. */
static void
test_msg_cred(void **state)
{
    const srv_variant *v = srv_variant_of(state);
    fx f;
    fx_start_cred(&f, v, MAXFDS, true);
    sm_conn *a = fd_dial(&f);
    /* The kernel attaches credentials when either end has SO_PASSCRED at
     * the send: set on ours, this does not race the server's setting its
     * own after the accept. */
    int on = 1;
    assert_int_equal(setsockopt(sm_conn_fd(a), SOL_SOCKET, SO_PASSCRED, &on, sizeof on), 0);
    SM_ASSERT_OK(sm_conn_send(a, "MCRED", 5, SM_CONN_DEFAULT));
    expect_sender(a, getpid());
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        /* Only async-signal-safe calls in the child of a threaded process. */
        static const char frame[] = "\0\0\0\5MCRED";
        _exit(write(sm_conn_fd(a), frame, 9) == 9 ? 0 : 1);
    }
    int status = -1;
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    expect_sender(a, child);
    SM_ASSERT_OK(sm_conn_send(a, "MCRED", 5, SM_CONN_DEFAULT));
    expect_sender(a, getpid());
    sm_conn_free(a);
    fx_end(&f);

    fx_start(&f, v, MAXFDS);
    a = fd_dial(&f);
    SM_ASSERT_OK(sm_conn_send(a, "MCRED", 5, SM_CONN_DEFAULT));
    sm_test_expect_msg(a, "unknown", SM_CONN_DEFAULT);
    sm_conn_free(a);
    fx_end(&f);
}

/* Bytes sent while neither end had SO_PASSCRED carry no credentials (the
 * kernel reports pid 0 and the overflow ids): no known sender, not a
 * sender named "pid 0"; the next message, sent after, is known. */
static void
test_cred_sent_before_passcred(void **state)
{
    (void)state;
    int before = sm_test_count_fds();
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    sm_frame_spec spec = {.kind = SM_FRAME_LENGTH, .len_width = 4};
    sm_conn *rx;
    SM_ASSERT_OK(sm_conn_new_take(&rx, sv[1], &spec));
    assert_int_equal(write(sv[0], "\0\0\0\1a", 5), 5);
    SM_ASSERT_OK(sm_conn_enable_cred(rx));
    sm_frame_msg m;
    sm_cred c = {0};
    assert_int_equal(sm_conn_recv(rx, &m, T), 1);
    assert_int_equal(sm_conn_msg_cred(rx, &c), 0);
    assert_int_equal(write(sv[0], "\0\0\0\1b", 5), 5);
    assert_int_equal(sm_conn_recv(rx, &m, T), 1);
    assert_int_equal(sm_conn_msg_cred(rx, &c), 1);
    assert_int_equal(c.pid, getpid());
    sm_conn_free(rx);
    close(sv[0]);
    assert_int_equal(sm_test_count_fds(), before);
}

static void
refused(const sm_server_opts *o, const char *what)
{
    sm_server *srv;
    char why[256] = "";
    SM_ASSERT_ERR(sm_server_new(&srv, o, why, sizeof why), -EINVAL);
    if (!strstr(why, what)) fail_msg("why '%s' does not say '%s'", why, what);
}

static void
test_opts_refused(void **state)
{
    (void)state;
    int before = sm_test_count_fds();
    char dir[256], path[300];
    sm_test_mkdtemp(dir, sizeof dir);
    snprintf(path, sizeof path, "unix:%s/r.sock", dir);
    const char *mixed[] = {path, "tcp://127.0.0.1:0", NULL};
    const char *one[] = {path, NULL};
    sm_server_opts o = {.listen = mixed, .on_message = on_msg, .max_fds = 2};
    refused(&o, "tcp://127.0.0.1:0");
    o.listen = one;
    o.max_fds = SM_FDS_MAX + 1;
    refused(&o, "max_fds");
    o.max_fds = -1;
    refused(&o, "max_fds");
    o.max_fds = 2;
    o.proxy_protocol = true;
    refused(&o, "proxy_protocol");
    o.proxy_protocol = false;
    o.model = SM_SERVER_THREAD;
    o.commit = SM_COMMIT_FIRST_MESSAGE;
    refused(&o, "SM_COMMIT_FIRST_MESSAGE");
    o.commit = SM_COMMIT_DEFAULT;
    o.max_fds = 0;
    o.msg_cred = true;
    refused(&o, "msg_cred");
    /* Nothing was bound: the path is free. */
    struct stat sb;
    assert_int_equal(stat(path + 5, &sb), -1);
    sm_test_rmdir(dir);
    assert_int_equal(sm_test_count_fds(), before);
}

static void
stream_msg(sm_stream *s, const sm_frame_msg *m)
{
    (void)s;
    (void)m;
}

/* Arguments checked before either model sees them. */
static void
test_bad_args(void **state)
{
    (void)state;
    int fds[1] = {0};
    SM_ASSERT_ERR(sm_peer_send_fds(NULL, "x", 1, fds, 1), -EINVAL);
    SM_ASSERT_ERR(sm_peer_take_fds(NULL, fds, 1), -EINVAL);
    sm_cred c;
    SM_ASSERT_ERR(sm_peer_cred(NULL, &c), -EINVAL);
    SM_ASSERT_ERR(sm_peer_msg_cred(NULL, &c), -EINVAL);
    SM_ASSERT_ERR(sm_stream_msg_cred(NULL, &c), -EINVAL);
    /* A stream's pass_cred needs max_fds (the recvmsg transport). */
    int before = sm_test_count_fds();
    sm_loop *l;
    SM_ASSERT_OK(sm_loop_new(&l, NULL));
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    sm_frame_spec spec = {.kind = SM_FRAME_LENGTH, .len_width = 4};
    sm_stream_opts so = {.spec = &spec, .on_message = stream_msg, .pass_cred = true};
    sm_stream *s = NULL;
    SM_ASSERT_ERR(sm_stream_new_take(&s, l, sv[0], &so, NULL), -EINVAL); /* takes sv[0] */
    so.max_fds = 1;                                                      /* with it: accepted */
    SM_ASSERT_OK(sm_stream_new_take(&s, l, sv[1], &so, NULL));
    sm_stream_close(s);
    SM_ASSERT_OK(sm_loop_run(l, SM_RUN_DEFAULT)); /* the close completes: nothing left */
    SM_ASSERT_OK(sm_loop_free(l));
    assert_int_equal(sm_test_count_fds(), before);
}

#define BOTH(fn)                                                                                   \
    cmocka_unit_test_prestate(fn, (void *)&loop1), cmocka_unit_test_prestate(fn, (void *)&threads)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        BOTH(test_pipe_and_socket_through_server),
        BOTH(test_several_messages),
        BOTH(test_cap_and_untaken),
        BOTH(test_ctrunc_closes_only_that_peer),
        BOTH(test_cred),
        BOTH(test_msg_cred),
        BOTH(test_server_sends_fds),
        cmocka_unit_test_prestate(test_take_elsewhere, (void *)&threads),
        cmocka_unit_test(test_opts_refused),
        cmocka_unit_test(test_cred_sent_before_passcred),
        cmocka_unit_test(test_bad_args),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
