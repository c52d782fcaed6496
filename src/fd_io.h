/* sendmsg/recvmsg with SCM_RIGHTS for the byte streams (fd_io.c). */
#ifndef SOCKMSG_FD_IO_H
#define SOCKMSG_FD_IO_H

#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "fd_queue.h"

/* 0 for a Unix socket, -EAFNOSUPPORT for another socket, -errno. */
int sm__fds_check_unix(int fd);
/* Send all of v[0..k) (modified: advanced past what went out), the fds with
 * the first sendmsg only. Returns the total or an error. */
ssize_t sm__fds_sendv_all(int fd, struct iovec *v, int k, const int *fds, int nfds, int timeout_ms);
/* Receive some bytes as sm_recv_some() would, queueing the fds that come
 * with them in q; buffered is how many bytes received earlier are not yet
 * framed. MSG_CTRUNC: closes what came and sets q->err (sticky, explained in
 * q->why and, when it stops a read, in detail) for the message holding
 * those bytes, which sm__fdq_bind() then fails. */
ssize_t sm__fds_recv(sm__fdq *q, int fd, void *buf, size_t len, int timeout_ms, size_t buffered,
                     char *detail, size_t detail_len);

#endif
