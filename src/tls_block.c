/* Blocking TLS with deadlines, for sm_conn: the non-blocking session of
 * tls_session.c driven by poll(2). The session lock is held only around
 * OpenSSL calls and socket writes, never while waiting, so a receiving
 * thread and a sending thread do not wait on each other. */
#include <limits.h>
#include <poll.h>

#include "internal.h"
#include "tls_ossl.h"

/* Plaintext encrypted per round of a large send: bounds the out buffer. */
#define SEND_ROUND ((size_t)256 << 10)

/* Write the out buffer, waiting for room until the deadline. Locked on
 * entry and exit. */
static int
flush_wait(sm__tls *t, int64_t deadline)
{
    for (;;) {
        int rc = sm__tls_flush(t);
        if (rc != -EAGAIN) return rc;
        pthread_mutex_unlock(&t->mu);
        rc = sm__wait_fd(t->fd, POLLOUT, deadline);
        pthread_mutex_lock(&t->mu);
        if (rc < 0) return rc;
    }
}

int
sm__tls_handshake_wait(sm__tls *t, int64_t deadline)
{
    pthread_mutex_lock(&t->mu);
    int rc;
    for (;;) {
        rc = sm__tls_handshake(t);
        /* Whatever the step produced goes out first (also a last alert). */
        int f = flush_wait(t, deadline);
        if (rc != -EAGAIN) break;
        if (f < 0) {
            rc = f;
            break;
        }
        pthread_mutex_unlock(&t->mu);
        int w = sm__wait_fd(t->fd, POLLIN, deadline);
        pthread_mutex_lock(&t->mu);
        if (w < 0) {
            rc = w;
            if (w == -ETIMEDOUT) sm__tls_fail(t, w, "TLS handshake timed out");
            break;
        }
    }
    pthread_mutex_unlock(&t->mu);
    return rc;
}

ssize_t
sm__tls_sendv_all(sm__tls *t, const struct iovec *iov, int iovcnt, int timeout_ms)
{
    int64_t deadline = sm__deadline(timeout_ms);
    size_t total = 0;
    for (int i = 0; i < iovcnt; i++)
        total += iov[i].iov_len;
    /* A window of iov from (i, off): the caller's array stays as it is. */
    struct iovec v[IOV_MAX];
    int i = 0;
    size_t off = 0, sent = 0;
    ssize_t rc = 0;
    pthread_mutex_lock(&t->mu);
    for (bool first = true; rc >= 0 && (sent < total || first); first = false) {
        if (!first && timeout_ms > 0 && sm__expired(deadline)) {
            rc = -ETIMEDOUT;
            break;
        }
        int nv = 0;
        for (int k = i; k < iovcnt && nv < IOV_MAX; k++) {
            size_t skip = k == i ? off : 0;
            if (iov[k].iov_len == skip) continue;
            v[nv].iov_base = (char *)iov[k].iov_base + skip;
            v[nv].iov_len = iov[k].iov_len - skip;
            nv++;
        }
        rc = nv ? sm__tls_write(t, v, nv, SEND_ROUND) : 0;
        if (rc < 0) break;
        size_t n = (size_t)rc;
        sent += n;
        while (i < iovcnt && n >= iov[i].iov_len - off) {
            n -= iov[i].iov_len - off;
            i++;
            off = 0;
        }
        off += n;
        rc = flush_wait(t, deadline);
    }
    pthread_mutex_unlock(&t->mu);
    return rc < 0 ? rc : (ssize_t)total;
}

ssize_t
sm__tls_recv_some(sm__tls *t, void *buf, size_t len, int timeout_ms)
{
    if (!buf || len == 0) return -EINVAL;
    int64_t deadline = sm__deadline(timeout_ms);
    for (bool first = true;; first = false) {
        if (timeout_ms > 0 && !first && sm__expired(deadline)) return -ETIMEDOUT;
        pthread_mutex_lock(&t->mu);
        ssize_t n = sm__tls_read(t, buf, len);
        /* Reading may produce bytes to send (a KeyUpdate's answer). */
        if (sm__tls_unsent(t)) {
            int f = sm__tls_flush(t);
            if (f < 0 && f != -EAGAIN && n == -EAGAIN) n = f;
        }
        pthread_mutex_unlock(&t->mu);
        if (n != -EAGAIN) return n;
        int w = sm__wait_fd(t->fd, POLLIN, deadline);
        if (w < 0) return w;
    }
}

int
sm__tls_shutdown_wait(sm__tls *t, int timeout_ms)
{
    int64_t deadline = sm__deadline(timeout_ms);
    pthread_mutex_lock(&t->mu);
    int rc = sm__tls_close_notify(t);
    if (rc == 0) rc = flush_wait(t, deadline);
    pthread_mutex_unlock(&t->mu);
    return rc;
}

void
sm__tls_goodbye(sm__tls *t)
{
    pthread_mutex_lock(&t->mu);
    if (sm__tls_close_notify(t) == 0) (void)sm__tls_flush(t);
    pthread_mutex_unlock(&t->mu);
}

bool
sm__tls_read_pending_locked(sm__tls *t)
{
    pthread_mutex_lock(&t->mu);
    bool p = sm__tls_read_pending(t);
    pthread_mutex_unlock(&t->mu);
    return p;
}
