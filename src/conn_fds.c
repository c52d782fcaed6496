/* sm_conn's fd passing and credentials (unix.h). The queue lives beside the
 * connection, allocated only when asked for, so plain connections keep
 * their recv(2) path. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <sockmsg/unix.h>

#include "conn_fds.h"
#include "fd_io.h"

int
sm_conn_enable_fds(sm_conn *c, int max_fds)
{
    if (!c || max_fds < 0 || max_fds > SM_FDS_MAX || sm__conn_is_tls(c)) return -EINVAL;
    int cap = max_fds ? max_fds : SM_FDS_DEFAULT;
    sm__fdq **slot = sm__conn_fdq(c);
    if (*slot && (*slot)->cap == cap) return 0;
    if (*slot && ((*slot)->nmsg || (*slot)->npend)) return -EBUSY;
    int rc = sm__fds_check_unix(sm_conn_fd(c));
    if (rc < 0) return rc;
    sm__fdq *q = malloc(sizeof *q);
    if (!q) return -ENOMEM;
    rc = sm__fdq_init(q, cap);
    if (rc < 0) {
        free(q);
        return rc;
    }
    if (*slot) {
        q->rx = (*slot)->rx;
        q->err = (*slot)->err;
        q->err_at = (*slot)->err_at;
        memcpy(q->why, (*slot)->why, sizeof q->why);
        q->cred_on = (*slot)->cred_on;
        q->run_ok = (*slot)->run_ok;
        q->run_from = (*slot)->run_from;
        q->run = (*slot)->run;
        sm__fdq_free(*slot);
        free(*slot);
    } else {
        /* Bytes read before now count as received: offsets start there. */
        q->rx = sm__conn_buffered(c);
    }
    *slot = q;
    return 0;
}

ssize_t
sm_conn_send_fds(sm_conn *c, const void *msg, size_t len, const int *fds, int nfds, int timeout_ms)
{
    if (!c || nfds < 0 || nfds > SM_FDS_MAX || (nfds && !fds)) return -EINVAL;
    /* The sender needs no queue: only the receiving side's state is
     * touched by enabling, and another thread may be receiving. */
    if (nfds && sm__conn_is_tls(c)) return -EINVAL;
    int rc = nfds ? sm__fds_check_unix(sm_conn_fd(c)) : 0;
    if (rc < 0) return rc;
    struct iovec v = {.iov_base = (void *)msg, .iov_len = len};
    return sm__conn_sendv_fds(c, -1, &v, 1, fds, nfds, timeout_ms);
}

int
sm_conn_take_fds(sm_conn *c, int *fds, int cap)
{
    if (!c || !fds || cap <= 0) return -EINVAL;
    sm__fdq *q = *sm__conn_fdq(c);
    return q ? sm__fdq_take(q, fds, cap) : 0;
}

int
sm_conn_peer_cred(const sm_conn *c, sm_cred *out)
{
    if (!c || !out || sm__conn_is_tls(c)) return -EINVAL;
    int fd = sm_conn_fd(c);
    int rc = sm__fds_check_unix(fd);
    if (rc < 0) return rc;
    struct ucred u;
    socklen_t ul = sizeof u;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &u, &ul) < 0) return -errno;
    *out = (sm_cred){.pid = u.pid, .uid = u.uid, .gid = u.gid};
    return 0;
}

int
sm_conn_enable_cred(sm_conn *c)
{
    if (!c || sm__conn_is_tls(c)) return -EINVAL;
    if (!*sm__conn_fdq(c)) {
        int rc = sm_conn_enable_fds(c, 0);
        if (rc < 0) return rc;
    }
    int on = 1;
    if (setsockopt(sm_conn_fd(c), SOL_SOCKET, SO_PASSCRED, &on, sizeof on) < 0) return -errno;
    sm__fdq *q = *sm__conn_fdq(c);
    if (!q->cred_on) {
        /* Bytes read before now came from no known sender. */
        q->cred_on = true;
        q->run_ok = false;
        q->run_from = q->rx;
    }
    return 0;
}

int
sm_conn_msg_cred(sm_conn *c, sm_cred *out)
{
    if (!c || !out) return -EINVAL;
    sm__fdq *q = *sm__conn_fdq(c);
    if (!q || !q->msg_cred_ok) return 0;
    *out = q->msg_cred;
    return 1;
}
