/* Connecting: sm_dial and its Happy Eyeballs (RFC 8305) race. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "internal.h"
#include "sockmsg/error.h"
#include "sockmsg/socket.h"

/* How meaningful an error is when every attempt failed: a peer that refused
 * says more than a route that is missing, which says more than silence. */
int
sm__dial_err_rank(int err)
{
    switch (err) {
    case 0:
        return 0;
    case -ETIMEDOUT:
        return 1;
    case -ECONNREFUSED:
        return 4;
    case -ENETUNREACH:
    case -EHOSTUNREACH:
        return 3;
    default:
        return 2;
    }
}

static void
note_error(int *best, int *best_i, int err, int i)
{
    if (sm__dial_err_rank(err) > sm__dial_err_rank(*best)) {
        *best = err;
        *best_i = i;
    }
}

/* AF_UNIX connect never returns EINPROGRESS: a non-blocking connect to a full
 * backlog fails with EAGAIN and there is nothing to poll for. A blocking
 * connect bounded by SO_SNDTIMEO makes the kernel wait for room instead. */
static int
connect_unix(int fd, const sm_addr *a, int64_t deadline)
{
    for (int tries = 0;; tries++) {
        int left = sm__remaining_ms(deadline);
        int rc = sm_sock_set_nonblock(fd, left == 0);
        if (rc < 0) return rc;
        struct timeval tv = {0};
        if (left > 0) {
            tv.tv_sec = left / 1000;
            tv.tv_usec = (suseconds_t)(left % 1000) * 1000;
        }
        if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) < 0) return -errno;
        if (connect(fd, (const struct sockaddr *)&a->ss, a->len) == 0) break;
        int err = errno;
        /* EAGAIN with time left means SO_SNDTIMEO expired a hair early (its
         * resolution is a jiffy); the next round sees left == 0 and stops. */
        if (err == EINTR || (err == EAGAIN && left != 0 && tries < 1000)) continue;
        return err == EAGAIN ? -ETIMEDOUT : -err;
    }
    struct timeval none = {0};
    if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &none, sizeof none) < 0) return -errno;
    return 0;
}

/* Start one attempt: 0 with *fdp connected, 1 with *fdp in progress, or an
 * error with nothing left open. Options go on before connect() so that the
 * buffer sizes shape the window scale the handshake announces. */
static int
attempt_start(const sm_addr *a, const sm_sock_opts *opts, int64_t deadline, int *fdp)
{
    int family = a->ss.ss_family;
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return -errno;
    int rc = sm_sock_set_opts(fd, opts);
    if (rc == 0 && family == AF_UNIX) rc = connect_unix(fd, a, deadline);
    if (rc == 0 && family != AF_UNIX) {
        if (connect(fd, (const struct sockaddr *)&a->ss, a->len) < 0)
            rc = errno == EINPROGRESS || errno == EINTR ? 1 : -errno;
    }
    if (rc < 0) {
        close(fd);
        return rc;
    }
    *fdp = fd;
    return rc;
}

/* The verdict on an attempt poll(2) reported: 0 if connected, else -errno. */
static int
attempt_result(int fd, short revents)
{
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) return -errno;
    if (err) return -err;
    if (!(revents & POLLOUT)) return -ECONNABORTED;
    struct sockaddr_storage ss;
    len = sizeof ss;
    if (getpeername(fd, (struct sockaddr *)&ss, &len) < 0) return -errno;
    return 0;
}

static void
explain(char *why, size_t why_len, int err, const sm_addr *a)
{
    if (!why || !why_len) return;
    char where[128] = "?";
    if (a && sm_addr_format((const struct sockaddr *)&a->ss, a->len, where, sizeof where) < 0)
        snprintf(where, sizeof where, "address family %d", a->ss.ss_family);
    snprintf(why, why_len, "connect to %s: %s", where, sm_strerror(err));
}

int
sm__dial_addrs(const sm_addr *addrs, size_t n, const sm_sock_opts *opts, int64_t deadline,
               char *why, size_t why_len)
{
    if (why && why_len) why[0] = '\0';
    if (!addrs || n == 0) return -EINVAL;
    if (n > SM__DIAL_MAX_ADDRS) n = SM__DIAL_MAX_ADDRS;

    struct pollfd pend[SM__DIAL_MAX_ADDRS];
    int pend_i[SM__DIAL_MAX_ADDRS];
    size_t npend = 0, next = 0;
    int64_t next_at = 0;
    int best = 0, best_i = -1, winner = -1;

    while (winner < 0) {
        int64_t now = sm__now_ms();
        bool expired = deadline >= 0 && now >= deadline;
        /* A new attempt starts when nothing is pending, or when the stagger
         * delay has passed (it is reset to "now" whenever an attempt fails). */
        if (next < n && (npend == 0 || (now >= next_at && !expired))) {
            int fd = -1;
            int rc = attempt_start(&addrs[next], opts, deadline, &fd);
            if (rc == 0) {
                winner = fd;
            } else if (rc == 1) {
                pend[npend] = (struct pollfd){.fd = fd, .events = POLLOUT};
                pend_i[npend++] = (int)next;
                next_at = now + SM__DIAL_STAGGER_MS;
            } else {
                note_error(&best, &best_i, rc, (int)next);
                next_at = now;
            }
            next++;
            continue;
        }
        if (npend == 0) break;

        int wait = sm__remaining_ms(deadline);
        if (next < n) {
            int64_t d = next_at > now ? next_at - now : 0;
            if (wait < 0 || d < wait) wait = (int)d;
        }
        int k = poll(pend, (nfds_t)npend, wait);
        if (k < 0 && errno != EINTR) {
            note_error(&best, &best_i, -errno, -1);
            break;
        }
        for (size_t j = 0; k > 0 && j < npend && winner < 0;) {
            if (!pend[j].revents) {
                j++;
                continue;
            }
            int rc = attempt_result(pend[j].fd, pend[j].revents);
            if (rc == 0) {
                winner = pend[j].fd;
            } else {
                close(pend[j].fd);
                note_error(&best, &best_i, rc, pend_i[j]);
                next_at = sm__now_ms();
            }
            pend[j] = pend[npend - 1];
            pend_i[j] = pend_i[npend - 1];
            npend--;
        }
        /* Past the deadline the pending attempts had their last look above. */
        if (winner < 0 && expired && npend > 0) {
            note_error(&best, &best_i, -ETIMEDOUT, pend_i[0]);
            break;
        }
    }

    for (size_t j = 0; j < npend; j++)
        close(pend[j].fd);
    if (winner >= 0) {
        int rc = sm_sock_set_nonblock(winner, false);
        if (rc < 0) {
            close(winner);
            explain(why, why_len, rc, NULL);
            return rc;
        }
        return winner;
    }
    if (best == 0) best = -ETIMEDOUT;
    explain(why, why_len, best, best_i >= 0 ? &addrs[best_i] : NULL);
    return best;
}

int
sm_dial_endpoint(const sm_endpoint *ep, const sm_sock_opts *opts, int timeout_ms, char *why,
                 size_t why_len)
{
    /* The deadline starts before resolution: the timeout covers the whole call. */
    int64_t deadline = sm__deadline(timeout_ms);
    if (why && why_len) why[0] = '\0';
    if (!ep) return -EINVAL;
    sm_addr addrs[SM__DIAL_MAX_ADDRS];
    int n = sm_endpoint_resolve(ep, false, addrs, SM__DIAL_MAX_ADDRS, why, why_len);
    if (n < 0) return n;
    return sm__dial_addrs(addrs, (size_t)n, opts, deadline, why, why_len);
}

int
sm_dial(const char *endpoint, int timeout_ms)
{
    sm_endpoint ep;
    int rc = sm_endpoint_parse(&ep, endpoint, NULL, 0);
    if (rc < 0) return rc;
    return sm_dial_endpoint(&ep, NULL, timeout_ms, NULL, 0);
}
