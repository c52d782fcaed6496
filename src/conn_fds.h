/* The hooks between conn.c and its fd passing (conn_fds.c). */
#ifndef SOCKMSG_CONN_FDS_H
#define SOCKMSG_CONN_FDS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/uio.h>

#include "fd_queue.h"

struct sm_conn;
/* conn.c: the connection's fd queue slot (NULL until enabled), whether it
 * runs TLS, and how many received bytes it holds unframed. */
sm__fdq **sm__conn_fdq(struct sm_conn *c);
bool sm__conn_is_tls(const struct sm_conn *c);
size_t sm__conn_buffered(const struct sm_conn *c);
/* conn.c: conn_sendv with fds attached. */
ssize_t sm__conn_sendv_fds(struct sm_conn *c, int type, const struct iovec *iov, int iovcnt,
                           const int *fds, int nfds, int timeout_ms);

#endif
