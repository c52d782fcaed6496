/* sm_stream fd passing over Unix sockets (unix.h), on every loop backend:
 * fds tied to their message however the sender's queue joins writes and
 * the receiver's reads join messages, the cap, untaken fds closed,
 * MSG_CTRUNC closing only that stream, no leak (counted in /proc/self/fd),
 * and the peer's credentials. */
#include "test_stream.h"

#include <sockmsg/error.h>
#include <sockmsg/unix.h>

#define T    5000
#define NMSG 16
#define NFD  8
#define SLEN 64

/* What a receiving stream saw. */
typedef struct rec {
    bool take; /* take the fds in on_message */
    int n;
    char msg[NMSG][SLEN];
    int nfds[NMSG];
    int fds[NMSG][NFD];
    bool cloexec_ok;
    bool closed;
    int reason;
    char detail[256];
} rec;

static void
on_msg(sm_stream *s, const sm_frame_msg *m)
{
    rec *r = sm_stream_get_data(s);
    assert_true(r->n < NMSG);
    size_t len = m->len < SLEN - 1 ? m->len : SLEN - 1;
    memcpy(r->msg[r->n], m->data, len);
    r->msg[r->n][len] = 0;
    r->nfds[r->n] = r->take ? sm_stream_take_fds(s, r->fds[r->n], NFD) : 0;
    for (int i = 0; i < r->nfds[r->n]; i++)
        if (!(fcntl(r->fds[r->n][i], F_GETFD) & FD_CLOEXEC)) r->cloexec_ok = false;
    r->n++;
}

static void
on_close(sm_stream *s, int reason)
{
    rec *r = sm_stream_get_data(s);
    if (!r) return;
    r->closed = true;
    r->reason = reason;
    snprintf(r->detail, sizeof r->detail, "%s", sm_stream_error_detail(s));
}

static sm_stream_opts
fds_opts(int max_fds)
{
    return (sm_stream_opts){
        .spec = &ts_len32, .on_message = on_msg, .on_close = on_close, .max_fds = max_fds};
}

typedef struct want_n {
    rec *r;
    int n;
} want_n;

static bool
got_n(void *ctx)
{
    want_n *w = ctx;
    return w->r->n >= w->n || w->r->closed;
}

static bool
got_closed(void *ctx)
{
    return ((rec *)ctx)->closed;
}

static void
close_taken(rec *r)
{
    for (int i = 0; i < r->n; i++)
        for (int j = 0; j < r->nfds[i]; j++)
            close(r->fds[i][j]);
}

static void
run_until_n(sm_loop *l, rec *r, int n)
{
    want_n w = {r, n};
    assert_true(ts_run_until(l, got_n, &w, T));
    assert_int_equal(r->n, n);
}

/* A pipe handed from one stream to the other, written through by the
 * receiver and read back; both ends see each other's credentials. */
static void
test_pipe_and_cred(void **state)
{
    (void)state;
    int before = sm_test_count_fds();
    sm_loop *l = ts_loop();
    int sv[2];
    ts_pair(sv);
    static sm_stream_opts o;
    o = fds_opts(4);
    rec ra = {.take = true, .cloexec_ok = true}, rb = {.take = true, .cloexec_ok = true};
    sm_stream *a = NULL, *b = NULL;
    SM_ASSERT_OK(sm_stream_new_take(&a, l, sv[0], &o, &ra));
    SM_ASSERT_OK(sm_stream_new_take(&b, l, sv[1], &o, &rb));
    sm_cred c;
    SM_ASSERT_OK(sm_stream_peer_cred(a, &c));
    assert_int_equal(c.pid, getpid());
    assert_int_equal(c.uid, getuid());
    assert_int_equal(c.gid, getgid());
    SM_ASSERT_OK(sm_stream_peer_cred(b, &c));
    assert_int_equal(c.pid, getpid());
    SM_ASSERT_ERR(sm_stream_peer_cred(b, NULL), -EINVAL);

    int p[2];
    SM_ASSERT_OK(pipe(p));
    SM_ASSERT_OK(sm_stream_send_fds(a, "log", 3, &p[1], 1));
    close(p[1]); /* the queue holds its own copy */
    run_until_n(l, &rb, 1);
    assert_string_equal(rb.msg[0], "log");
    assert_int_equal(rb.nfds[0], 1);
    assert_true(rb.cloexec_ok);
    assert_int_equal(sm_stream_take_fds(b, &rb.fds[1][0], 1), 0); /* outside on_message */
    assert_int_equal(write(rb.fds[0][0], "hello", 5), 5);
    close(rb.fds[0][0]);
    char buf[8];
    assert_int_equal(read(p[0], buf, sizeof buf), 5);
    assert_memory_equal(buf, "hello", 5);
    assert_int_equal(read(p[0], buf, sizeof buf), 0); /* every write end closed */
    close(p[0]);

    /* The other way, and errors. */
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    SM_ASSERT_OK(sm_stream_send_fds(b, "x", 1, &fd, 1));
    SM_ASSERT_ERR(sm_stream_send_fds(b, "x", 1, NULL, 1), -EINVAL);
    SM_ASSERT_ERR(sm_stream_send_fds(b, "x", 1, &fd, SM_FDS_MAX + 1), -EINVAL);
    SM_ASSERT_ERR(sm_stream_take_fds(b, NULL, 1), -EINVAL);
    int bad = 100000;
    SM_ASSERT_ERR(sm_stream_send_fds(b, "x", 1, &bad, 1), -EBADF);
    run_until_n(l, &ra, 1);
    assert_int_equal(ra.nfds[0], 1);
    assert_true(sm_test_same_file(ra.fds[0][0], fd));
    close(fd);
    close_taken(&ra);

    sm_stream_close(a);
    sm_stream_close(b);
    ts_loop_free(l);
    assert_int_equal(sm_test_count_fds(), before);
}

/* Without opts.max_fds a stream sends no fds (-EINVAL), and bad max_fds
 * is refused. */
static void
test_not_enabled(void **state)
{
    (void)state;
    sm_loop *l = ts_loop();
    int sv[2];
    ts_pair(sv);
    static sm_stream_opts o, bad;
    o = fds_opts(0);
    bad = fds_opts(SM_FDS_MAX + 1);
    rec r = {0};
    sm_stream *a = NULL, *b = NULL;
    SM_ASSERT_ERR(sm_stream_new_take(&a, l, sv[0], &bad, &r), -EINVAL); /* closes sv[0] */
    SM_ASSERT_OK(sm_stream_new_take(&b, l, sv[1], &o, &r));
    int fd = 0;
    SM_ASSERT_ERR(sm_stream_send_fds(b, "x", 1, &fd, 1), -EINVAL);
    SM_ASSERT_OK(sm_stream_send_fds(b, "x", 1, NULL, 0)); /* a plain send */
    sm_cred c;
    SM_ASSERT_OK(sm_stream_peer_cred(b, &c));
    sm_stream_close(b);
    ts_loop_free(l);
}

/* Messages with and without fds, all queued in one iteration (one gather
 * write from the sender's queue, cut at each message with fds) and read in
 * as few reads as the kernel allows: each message gets exactly its own. */
static void
test_joined_writes_and_reads(void **state)
{
    (void)state;
    int before = sm_test_count_fds();
    sm_loop *l = ts_loop();
    int sv[2];
    ts_pair(sv);
    static sm_stream_opts o;
    o = fds_opts(NFD);
    rec ra = {0}, rb = {.take = true, .cloexec_ok = true};
    sm_stream *a = NULL, *b = NULL;
    SM_ASSERT_OK(sm_stream_new_take(&a, l, sv[0], &o, &ra));
    SM_ASSERT_OK(sm_stream_new_take(&b, l, sv[1], &o, &rb));
    int f[3];
    for (int i = 0; i < 3; i++)
        assert_true((f[i] = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0);
    SM_ASSERT_OK(sm_stream_send(a, "a", 1));
    SM_ASSERT_OK(sm_stream_send_fds(a, "b", 1, &f[0], 1));
    SM_ASSERT_OK(sm_stream_send(a, "c", 1));
    SM_ASSERT_OK(sm_stream_send(a, "d", 1));
    SM_ASSERT_OK(sm_stream_send_fds(a, "e", 1, &f[1], 2));
    SM_ASSERT_OK(sm_stream_send_fds(a, "f", 1, &f[0], 3));
    SM_ASSERT_OK(sm_stream_send(a, "g", 1));
    run_until_n(l, &rb, 7);
    const char *want = "abcdefg";
    int nwant[7] = {0, 1, 0, 0, 2, 3, 0};
    for (int i = 0; i < 7; i++) {
        assert_int_equal(rb.msg[i][0], want[i]);
        assert_int_equal(rb.nfds[i], nwant[i]);
    }
    assert_true(sm_test_same_file(rb.fds[1][0], f[0]));
    assert_true(sm_test_same_file(rb.fds[4][0], f[1]) && sm_test_same_file(rb.fds[4][1], f[2]));
    for (int j = 0; j < 3; j++)
        assert_true(sm_test_same_file(rb.fds[5][j], f[j]));
    assert_true(rb.cloexec_ok);
    close_taken(&rb);
    for (int i = 0; i < 3; i++)
        close(f[i]);
    sm_stream_close(a);
    sm_stream_close(b);
    ts_loop_free(l);
    assert_int_equal(sm_test_count_fds(), before);
}

/* A message with fds queued behind a big one the kernel takes in pieces
 * (the writer blocks and resumes): its fds still go with its first byte. */
static void
test_behind_a_blocked_queue(void **state)
{
    (void)state;
    int before = sm_test_count_fds();
    sm_loop *l = ts_loop();
    int sv[2];
    ts_pair(sv);
    int small = 4096;
    SM_ASSERT_OK(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small));
    static sm_stream_opts o;
    o = fds_opts(NFD);
    rec ra = {0}, rb = {.take = true, .cloexec_ok = true};
    sm_stream *a = NULL, *b = NULL;
    SM_ASSERT_OK(sm_stream_new_take(&a, l, sv[0], &o, &ra));
    SM_ASSERT_OK(sm_stream_new_take(&b, l, sv[1], &o, &rb));
    size_t big = 300000;
    char *p = malloc(big);
    assert_non_null(p);
    memset(p, 'B', big);
    p[0] = '1';
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    SM_ASSERT_OK(sm_stream_send(a, p, big));
    SM_ASSERT_OK(sm_stream_send_fds(a, "2", 1, &fd, 1));
    p[0] = '3';
    SM_ASSERT_OK(sm_stream_send(a, p, big));
    SM_ASSERT_OK(sm_stream_send_fds(a, "4", 1, &fd, 1));
    SM_ASSERT_OK(sm_stream_send_fds(a, "5", 1, &fd, 1));
    free(p);
    close(fd); /* the copies in the queue keep the file open */
    run_until_n(l, &rb, 5);
    int nwant[5] = {0, 1, 0, 1, 1};
    for (int i = 0; i < 5; i++) {
        assert_int_equal(rb.msg[i][0], '1' + i);
        assert_int_equal(rb.nfds[i], nwant[i]);
    }
    close_taken(&rb);
    sm_stream_close(a);
    sm_stream_close(b);
    ts_loop_free(l);
    assert_int_equal(sm_test_count_fds(), before);
}

/* A peer that splits one message over sendmsgs, each with fds: the
 * receiver keeps max_fds of them and closes the rest; a receiver that
 * takes nothing has them all closed after on_message. */
static void
test_cap_and_untaken(void **state)
{
    (void)state;
    int before = sm_test_count_fds();
    sm_loop *l = ts_loop();
    int sv[2], sv2[2];
    ts_pair(sv);
    ts_pair(sv2);
    static sm_stream_opts o;
    o = fds_opts(3);
    rec rb = {.take = true, .cloexec_ok = true}, rc = {.take = false};
    sm_stream *b = NULL, *c = NULL;
    SM_ASSERT_OK(sm_stream_new_take(&b, l, sv[1], &o, &rb));
    SM_ASSERT_OK(sm_stream_new_take(&c, l, sv2[1], &o, &rc));
    int f[2];
    for (int i = 0; i < 2; i++)
        assert_true((f[i] = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0);
    int two[2] = {f[0], f[1]};
    for (int k = 0; k < 2; k++) {
        int out = k == 0 ? sv[0] : sv2[0];
        sm_test_send_fds(out, "\0\0\0\3x", 5, two, 2);  /* header and a byte, 2 fds */
        sm_test_send_fds(out, "y", 1, two, 2);          /* 2 more for the same message */
        sm_test_send_fds(out, "z\0\0\0\1w", 6, two, 1); /* its end, and the next */
    }
    run_until_n(l, &rb, 2);
    run_until_n(l, &rc, 2);
    assert_string_equal(rb.msg[0], "xyz");
    assert_int_equal(rb.nfds[0], 3); /* the cap */
    assert_string_equal(rb.msg[1], "w");
    assert_int_equal(rb.nfds[1], 1); /* the last sendmsg's fd: its last byte is "w"'s */
    assert_string_equal(rc.msg[0], "xyz");
    assert_int_equal(rc.nfds[0], 0);
    close_taken(&rb);
    for (int i = 0; i < 2; i++)
        close(f[i]);
    close(sv[0]);
    close(sv2[0]);
    assert_true(ts_run_until(l, got_closed, &rb, T));
    assert_true(ts_run_until(l, got_closed, &rc, T));
    ts_loop_free(l);
    assert_int_equal(sm_test_count_fds(), before);
}

/* More fds in one sendmsg than the receiver's cap: the kernel truncates
 * them (MSG_CTRUNC); the stream delivers the whole messages before and
 * closes with SM_ERR_FDS_TRUNCATED and a reason. Another stream on the
 * loop goes on. */
static void
test_ctrunc_closes_only_that_stream(void **state)
{
    (void)state;
    int before = sm_test_count_fds();
    sm_loop *l = ts_loop();
    int sv[2], sv2[2];
    ts_pair(sv);
    ts_pair(sv2);
    static sm_stream_opts o;
    o = fds_opts(2);
    rec rb = {.take = true, .cloexec_ok = true}, rc = {.take = true, .cloexec_ok = true}, rd = {0};
    sm_stream *b = NULL, *c = NULL, *d = NULL;
    SM_ASSERT_OK(sm_stream_new_take(&b, l, sv[1], &o, &rb));
    SM_ASSERT_OK(sm_stream_new_take(&c, l, sv2[1], &o, &rc));
    SM_ASSERT_OK(sm_stream_new_take(&d, l, sv2[0], &o, &rd));
    int f[5];
    for (int i = 0; i < 5; i++)
        assert_true((f[i] = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0);
    sm_test_send_fds(sv[0], "\0\0\0\1a", 5, f, 1);
    sm_test_send_fds(sv[0], "\0\0\0\1b", 5, f, 5);
    assert_true(ts_run_until(l, got_closed, &rb, T));
    assert_int_equal(rb.reason, SM_ERR_FDS_TRUNCATED);
    assert_non_null(strstr(rb.detail, "MSG_CTRUNC"));
    assert_int_equal(rb.n, 1);
    assert_string_equal(rb.msg[0], "a");
    assert_int_equal(rb.nfds[0], 1);
    close_taken(&rb);
    /* The other connection is untouched. */
    SM_ASSERT_OK(sm_stream_send_fds(d, "ok", 2, f, 2));
    run_until_n(l, &rc, 1);
    assert_false(rc.closed);
    assert_int_equal(rc.nfds[0], 2);
    close_taken(&rc);
    for (int i = 0; i < 5; i++)
        close(f[i]);
    close(sv[0]);
    sm_stream_close(c);
    sm_stream_close(d);
    ts_loop_free(l);
    assert_int_equal(sm_test_count_fds(), before);
}

/* Closing streams with fds still queued to send, and received fds of an
 * unfinished message, leaks nothing. */
static void
test_close_with_fds_held(void **state)
{
    (void)state;
    int before = sm_test_count_fds();
    sm_loop *l = ts_loop();
    int sv[2], sv2[2];
    ts_pair(sv);
    ts_pair(sv2);
    static sm_stream_opts o;
    o = fds_opts(4);
    rec ra = {0}, rb = {.take = true};
    sm_stream *a = NULL, *b = NULL;
    SM_ASSERT_OK(sm_stream_new_take(&a, l, sv[0], &o, &ra));
    SM_ASSERT_OK(sm_stream_new_take(&b, l, sv2[1], &o, &rb));
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    /* Queued, never written: closed with the stream. */
    SM_ASSERT_OK(sm_stream_send_fds(a, "q", 1, &fd, 1));
    /* Half a message with an fd: held by b until it closes. */
    sm_test_send_fds(sv2[0], "\0\0\0\5ab", 6, &fd, 1);
    close(fd);
    ts_run_once(l, 50);
    assert_int_equal(rb.n, 0);
    sm_stream_close(a);
    sm_stream_close(b);
    ts_loop_free(l);
    close(sv[1]);
    close(sv2[0]);
    assert_int_equal(sm_test_count_fds(), before);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pipe_and_cred),
        cmocka_unit_test(test_not_enabled),
        cmocka_unit_test(test_joined_writes_and_reads),
        cmocka_unit_test(test_behind_a_blocked_queue),
        cmocka_unit_test(test_cap_and_untaken),
        cmocka_unit_test(test_ctrunc_closes_only_that_stream),
        cmocka_unit_test(test_close_with_fds_held),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
