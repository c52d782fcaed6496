/* Deadlines that must hold while bytes keep coming.
 *
 * Part 1, a consumer that falls behind: the call's thread is held in a signal
 * handler (standing in for a descheduled thread or a slow consumer) until its
 * deadline has passed and more bytes are queued. Resumed, the call must end
 * with -ETIMEDOUT rather than take the bytes, which it did by asking the
 * kernel once more with "0 ms left" = "try once".
 *
 * Part 2, a peer that never stops sending: an endless line that an
 * oversize=skip spec discards, so no message ever completes and sm_conn_recv
 * must end on its deadline (or, with timeout 0, after one buffer's worth).
 * The peer thread gives up on its own after a far safety bound (SAFETY_MS),
 * so a regression shows as a wrong result, never as a hang. (Whether the
 * reader ever has to wait here depends on who is faster; part 1 is the
 * deterministic check.) A flood against sm_recv_exact or sm_send_all is not
 * tested: one non-blocking syscall may move all of it, and one syscall is
 * as fine-grained as a deadline can be checked. */
#include "smtest.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sockmsg/conn.h>
#include <sockmsg/socket.h>

#define TIMEOUT_MS 200
#define SAFETY_MS  (20 * TIMEOUT_MS)

/* ---- part 1: the call's thread held past its deadline ------------------ */

static atomic_bool held, resume;

static void
nap(void)
{
    struct timespec ts = {.tv_nsec = 1000000};
    nanosleep(&ts, NULL);
}

/* SIGUSR1 in the call's thread: stay here until the controller says so (or
 * the safety bound passes). Only async-signal-safe calls. */
static void
hold_handler(int sig)
{
    (void)sig;
    atomic_store(&held, true);
    for (int i = 0; i < SAFETY_MS && !atomic_load(&resume); i++)
        nap();
}

enum call { CALL_RECV_EXACT, CALL_RECV_SOME, CALL_CONN_RECV };

typedef struct held_call {
    enum call what;
    int fd;
    sm_conn *c;
    char buf[16];
    size_t done;
    long long rc;
    atomic_int tid;
    atomic_llong start_ms;
    pthread_t t;
} held_call;

static void *
held_main(void *arg)
{
    held_call *h = arg;
    atomic_store(&h->tid, (int)syscall(SYS_gettid));
    atomic_store(&h->start_ms, (long long)sm_test_now_ms());
    sm_frame_msg m;
    switch (h->what) {
    case CALL_RECV_EXACT:
        h->rc = sm_recv_exact(h->fd, h->buf, 4, TIMEOUT_MS, &h->done);
        break;
    case CALL_RECV_SOME:
        h->rc = sm_recv_some(h->fd, h->buf, sizeof h->buf, TIMEOUT_MS);
        break;
    case CALL_CONN_RECV:
        h->rc = sm_conn_recv(h->c, &m, TIMEOUT_MS);
        break;
    }
    return NULL;
}

/* 1 when thread tid sleeps in the kernel (here: in poll) with nothing left
 * to read on fd, so the signal lands inside the wait. */
static bool
waiting_on_empty(int tid, int fd)
{
    char path[64], stat[512];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", tid);
    FILE *f = fopen(path, "r");
    if (!f) return false;
    size_t n = fread(stat, 1, sizeof stat - 1, f);
    fclose(f);
    stat[n] = '\0';
    const char *st = strrchr(stat, ')');
    int queued = -1;
    if (ioctl(fd, FIONREAD, &queued) < 0) return false;
    return st && st[1] == ' ' && st[2] == 'S' && queued == 0;
}

/* Run `what` on fd (first bytes `first`, if any, arrive before the hold; `rest`
 * arrives while the thread is held past its deadline). Returns the result. */
static long long
run_held(held_call *h, int peer, const char *first, const char *rest)
{
    struct sigaction sa = {.sa_handler = hold_handler}, old;
    sigemptyset(&sa.sa_mask);
    assert_int_equal(sigaction(SIGUSR1, &sa, &old), 0);
    atomic_store(&held, false);
    atomic_store(&resume, false);
    atomic_init(&h->tid, 0);
    atomic_init(&h->start_ms, 0);
    assert_int_equal(pthread_create(&h->t, NULL, held_main, h), 0);
    int i = 0;
    for (; i < SAFETY_MS && atomic_load(&h->tid) == 0; i++)
        nap();
    if (first) assert_int_equal(send(peer, first, strlen(first), MSG_NOSIGNAL), strlen(first));
    /* Bounded: the thread is in its wait long before its deadline. */
    for (i = 0; i < SAFETY_MS && !waiting_on_empty(atomic_load(&h->tid), h->fd); i++)
        nap();
    assert_true(i < SAFETY_MS);
    assert_int_equal(pthread_kill(h->t, SIGUSR1), 0);
    for (i = 0; i < SAFETY_MS && !atomic_load(&held); i++)
        nap();
    assert_true(atomic_load(&held));
    assert_int_equal(send(peer, rest, strlen(rest), MSG_NOSIGNAL), strlen(rest));
    /* The deadline must have passed before the thread looks again. */
    long long due = atomic_load(&h->start_ms) + TIMEOUT_MS + 2;
    for (i = 0; i < SAFETY_MS && sm_test_now_ms() <= due; i++)
        nap();
    atomic_store(&resume, true);
    pthread_join(h->t, NULL);
    assert_int_equal(sigaction(SIGUSR1, &old, NULL), 0);
    return h->rc;
}

static void
test_recv_exact_held_past_deadline(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    static held_call h; /* outlives a failed assertion while the thread runs */
    h = (held_call){.what = CALL_RECV_EXACT, .fd = sv[0]};
    SM_ASSERT_ERR(run_held(&h, sv[1], "a", "bcd"), -ETIMEDOUT);
    assert_int_equal(h.done, 1); /* what was received is reported */
    close(sv[0]);
    close(sv[1]);
}

static void
test_recv_some_held_past_deadline(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    static held_call h;
    h = (held_call){.what = CALL_RECV_SOME, .fd = sv[0]};
    SM_ASSERT_ERR(run_held(&h, sv[1], NULL, "late"), -ETIMEDOUT);
    /* Nothing was taken: the next call gets it. */
    char b[8];
    assert_int_equal(sm_recv_some(sv[0], b, sizeof b, 0), 4);
    close(sv[0]);
    close(sv[1]);
}

static void
test_conn_recv_held_past_deadline(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    sm_frame_spec spec;
    assert_int_equal(sm_frame_spec_parse(&spec, "line", NULL, 0), 0);
    static held_call h;
    h = (held_call){.what = CALL_CONN_RECV, .fd = sv[0]};
    assert_int_equal(sm_conn_new_take(&h.c, sv[0], &spec), 0);
    SM_ASSERT_ERR(run_held(&h, sv[1], "ab", "cd\n"), -ETIMEDOUT);
    /* Nothing lost: the message comes whole with the next call. */
    sm_frame_msg m;
    assert_int_equal(sm_conn_recv(h.c, &m, 1000), 1);
    assert_int_equal(m.len, 4);
    assert_memory_equal(m.data, "abcd", 4);
    sm_conn_free(h.c);
    close(sv[1]);
}

/* ---- part 2: a peer that never lets the call wait ---------------------- */

typedef struct peer {
    int fd;
    atomic_bool stop;
    pthread_t t;
} peer;

/* Send filler until told to stop or the safety bound passes; then close,
 * which ends any call still running on the other side. */
static void *
peer_main(void *arg)
{
    peer *p = arg;
    static char buf[64 << 10];
    memset(buf, 'x', sizeof buf); /* no delimiter ('\n') anywhere */
    int64_t until = sm_test_now_ms() + SAFETY_MS;
    while (!atomic_load(&p->stop) && sm_test_now_ms() < until) {
        ssize_t n = send(p->fd, buf, sizeof buf, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0 && errno != EAGAIN && errno != EINTR) break;
        if (n < 0) {
            struct pollfd pf = {.fd = p->fd, .events = POLLOUT};
            (void)poll(&pf, 1, 10); /* bounded: re-check stop */
        }
    }
    shutdown(p->fd, SHUT_RDWR);
    return NULL;
}

/* A socketpair; the peer thread gets one end, *mine the other. */
static void
peer_start(peer *p, int *mine)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    p->fd = sv[1];
    atomic_init(&p->stop, false);
    *mine = sv[0];
    assert_int_equal(pthread_create(&p->t, NULL, peer_main, p), 0);
}

static void
peer_stop(peer *p)
{
    atomic_store(&p->stop, true);
    pthread_join(p->t, NULL);
    close(p->fd);
}

/* A line spec that skips oversized lines, fed an endless line: every read
 * succeeds and nothing ever completes. */
static sm_conn *
flooded_conn(peer *p)
{
    int fd;
    peer_start(p, &fd);
    sm_frame_spec spec;
    assert_int_equal(sm_frame_spec_parse(&spec, "line,max=4096,oversize=skip", NULL, 0), 0);
    sm_conn *c;
    assert_int_equal(sm_conn_new_take(&c, fd, &spec), 0);
    return c;
}

static void
test_conn_recv_flood(void **state)
{
    (void)state;
    static peer p; /* outlives a failed assertion while the thread runs */
    sm_conn *c = flooded_conn(&p);
    sm_frame_msg m;
    SM_ASSERT_ERR(sm_conn_recv(c, &m, TIMEOUT_MS), -ETIMEDOUT);
    /* The connection's default timeout is a deadline like any other. */
    sm_conn_set_timeout(c, TIMEOUT_MS);
    SM_ASSERT_ERR(sm_conn_recv(c, &m, SM_CONN_DEFAULT), -ETIMEDOUT);
    assert_true(sm_conn_skipped(c) > 0);
    peer_stop(&p);
    sm_conn_free(c);
}

/* timeout 0 reads without waiting, but not for ever: at most a buffer's
 * worth per call. */
static void
test_conn_recv_flood_timeout_zero(void **state)
{
    (void)state;
    static peer p; /* outlives a failed assertion while the thread runs */
    sm_conn *c = flooded_conn(&p);
    sm_frame_msg m;
    for (int i = 0; i < 3; i++)
        SM_ASSERT_ERR(sm_conn_recv(c, &m, 0), -ETIMEDOUT);
    peer_stop(&p);
    sm_conn_free(c);
}

/* timeout 0 still moves what is there at once (the "try once" contract). */
static void
test_timeout_zero_still_tries(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    assert_int_equal(sm_send_all(sv[1], "abc\nde", 6, 0, NULL), 6);
    char b[3];
    size_t done;
    assert_int_equal(sm_recv_exact(sv[0], b, 2, 0, &done), 2);
    assert_int_equal(sm_recv_some(sv[0], b, 1, 0), 1);
    sm_frame_spec spec;
    assert_int_equal(sm_frame_spec_parse(&spec, "line", NULL, 0), 0);
    sm_conn *c;
    assert_int_equal(sm_conn_new_take(&c, sv[0], &spec), 0);
    sm_frame_msg m;
    assert_int_equal(sm_conn_recv(c, &m, 0), 1);
    assert_int_equal(m.len, 0);                        /* the rest of "abc\n": an empty line */
    SM_ASSERT_ERR(sm_conn_recv(c, &m, 0), -ETIMEDOUT); /* "de" is not a line */
    sm_conn_free(c);
    close(sv[1]);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_recv_exact_held_past_deadline),
        cmocka_unit_test(test_recv_some_held_past_deadline),
        cmocka_unit_test(test_conn_recv_held_past_deadline),
        cmocka_unit_test(test_conn_recv_flood),
        cmocka_unit_test(test_conn_recv_flood_timeout_zero),
        cmocka_unit_test(test_timeout_zero_still_tries),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
