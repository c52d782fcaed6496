/* sockmsg cat over TLS: the poll loop of cmd_cat.c stays byte-oriented on
 * one end of a socketpair, and two threads relay between the other end and
 * the TLS connection (sm_conn allows one sender and one receiver thread).
 * The end of stdin reaches the peer as close_notify (sm_conn_shutdown); the
 * peer's close_notify reaches the loop as EOF; an EOF without close_notify
 * is reported and makes the exit status 1 (the data may be cut short). */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sockmsg/sockmsg.h>

#include "cat.h"

#define RELAY_BUF ((size_t)16 << 10)

typedef struct relay {
    sm_conn *conn;
    int fd; /* our end of the socketpair */
    pthread_t up, down;
    atomic_int err; /* the first relay error, or 0 */
    char detail[256];
} relay;

static relay *the_relay;

/* TLS -> the loop. */
static void *
down_main(void *arg)
{
    relay *r = arg;
    char *buf = malloc(RELAY_BUF);
    ssize_t n = buf ? 0 : -ENOMEM;
    while (buf && (n = sm_conn_recv_raw(r->conn, buf, RELAY_BUF, SM_FOREVER)) > 0)
        if (cli_write_all(r->fd, buf, (size_t)n) < 0) break;
    if (n < 0) {
        int zero = 0;
        if (atomic_compare_exchange_strong(&r->err, &zero, (int)n))
            snprintf(r->detail, sizeof r->detail, "%s", sm_conn_error_detail(r->conn));
    }
    shutdown(r->fd, SHUT_WR); /* EOF for the loop */
    free(buf);
    return NULL;
}

/* The loop -> TLS. */
static void *
up_main(void *arg)
{
    relay *r = arg;
    char *buf = malloc(RELAY_BUF);
    ssize_t n = buf ? 0 : -ENOMEM;
    while (buf && (n = read(r->fd, buf, RELAY_BUF)) != 0) {
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) break;
        if ((n = sm_conn_send_raw(r->conn, buf, (size_t)n, SM_FOREVER)) < 0) break;
    }
    if (n == 0) sm_conn_shutdown(r->conn); /* close_notify, then FIN */
    free(buf);
    return NULL;
}

int
cat_tls_start(cat *c, int fd, const char *host, sm_tls_config *cfg, int timeout_ms, char *why,
              size_t why_len)
{
    static const sm_frame_spec raw = {.kind = SM_FRAME_EOF};
    relay *r = calloc(1, sizeof *r);
    if (!r) {
        close(fd);
        snprintf(why, why_len, "out of memory");
        return -ENOMEM;
    }
    int rc = sm_conn_new_tls(&r->conn, fd, &raw, cfg, host, timeout_ms, why, why_len);
    int sp[2] = {-1, -1};
    if (rc == 0 && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0) {
        rc = -errno;
        snprintf(why, why_len, "socketpair: %s", sm_strerror(rc));
    }
    if (rc == 0) {
        r->fd = sp[1];
        atomic_init(&r->err, 0);
        rc = -pthread_create(&r->down, NULL, down_main, r);
        if (rc == 0 && (rc = -pthread_create(&r->up, NULL, up_main, r)) < 0) {
            shutdown(sm_conn_fd(r->conn), SHUT_RDWR);
            pthread_join(r->down, NULL);
        }
        if (rc < 0) snprintf(why, why_len, "cannot start a thread: %s", sm_strerror(rc));
    }
    if (rc < 0) {
        if (sp[0] >= 0) close(sp[0]);
        if (sp[1] >= 0) close(sp[1]);
        sm_conn_free(r->conn);
        free(r);
        return rc;
    }
    the_relay = r;
    c->fd = sp[0];
    return 0;
}

int
cat_tls_finish(void)
{
    relay *r = the_relay;
    if (!r) return 0;
    /* The loop is done: wake a relay blocked on the peer, or on us. */
    shutdown(sm_conn_fd(r->conn), SHUT_RDWR);
    shutdown(r->fd, SHUT_RDWR);
    pthread_join(r->up, NULL);
    pthread_join(r->down, NULL);
    int err = atomic_load(&r->err);
    if (err < 0 && err != -ENOTCONN && err != -EBADF)
        fprintf(stderr, "sockmsg cat: TLS: %s\n", r->detail[0] ? r->detail : sm_strerror(err));
    close(r->fd);
    sm_conn_free(r->conn);
    free(r);
    the_relay = NULL;
    return err < 0 ? err : 0;
}
