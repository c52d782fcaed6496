/* The HOWTO's first chapters on plain file descriptors: create a listening
 * and a client socket, move bytes with deadlines, tell the ways a
 * connection ends apart, and a peer that never answers.
 *
 *   sockets [ENDPOINT]
 *
 * Listens on ENDPOINT (default tcp://127.0.0.1:0, a free port), connects to
 * itself, and prints one line per step; exits 0 when every step did what
 * the guide says it does. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <sockmsg/sockmsg.h>
#include <sockmsg/socket.h>

static int
fail(const char *step, int rc, const char *why)
{
    fprintf(stderr, "sockets: %s: %s\n", step, why && why[0] ? why : sm_strerror(rc));
    return 1;
}

int
main(int argc, char **argv)
{
    const char *where = argc > 1 ? argv[1] : "tcp://127.0.0.1:0";
    char why[256] = "", addr[256];

    /* guide: create */
    sm_endpoint ep, bound;
    int lfd = sm_endpoint_parse(&ep, where, why, sizeof why); /* what is wrong, in why */
    if (lfd >= 0) lfd = sm_listen_endpoint(&ep, NULL, 0, &bound, why, sizeof why);
    if (lfd < 0) return fail("listen", lfd, why);
    sm_endpoint_format(&bound, addr, sizeof addr); /* port 0: the port the kernel chose */
    printf("listening on %s\n", addr);

    /* Connecting: resolution and every attempt within 5 s in all. */
    sm_sock_opts so = {.keepalive = true, .keepalive_idle_s = 60, .user_timeout_ms = 30000};
    int fd = sm_dial_endpoint(&bound, &so, 5000, why, sizeof why);
    if (fd < 0) return fail("dial", fd, why);
    int cfd = sm_accept(lfd, 1000, NULL); /* -ETIMEDOUT after 1 s */
    if (cfd < 0) return fail("accept", cfd, NULL);
    /* guide: end */

    /* guide: send_recv */
    size_t done;
    ssize_t rc = sm_send_all(fd, "hello, world", 12, 1000, &done); /* all 12, or an error */
    if (rc < 0) return fail("send", (int)rc, NULL);
    char buf[64];
    rc = sm_recv_exact(cfd, buf, 5, 1000, &done); /* exactly 5 bytes: "hello" */
    if (rc != 5) return fail("recv", (int)rc, NULL);
    rc = sm_recv_some(cfd, buf + 5, sizeof buf - 5, 1000); /* what is there: ", world" */
    if (rc <= 0) return fail("recv", (int)rc, NULL);
    printf("received '%.*s'\n", (int)(5 + rc), buf);
    /* guide: end */

    /* guide: deadline */
    /* The peer sends nothing now: the call gives up when its time is up,
     * and a later call can still read what comes after. */
    rc = sm_recv_exact(cfd, buf, 1, 200, &done);
    printf("nothing to read: %s (%s)\n", sm_err_name((int)rc), sm_strerror((int)rc));
    if (rc != -ETIMEDOUT) return 1;
    /* guide: end */

    /* guide: ends */
    /* "I will send no more", in the middle of a 4-byte message... */
    sm_send_all(fd, "ab", 2, 1000, NULL);
    sm_shutdown_write(fd);
    rc = sm_recv_exact(cfd, buf, 4, 1000, &done);
    printf("peer stopped mid-message: %s after %zu bytes\n", sm_err_name((int)rc), done);
    if (rc != SM_ERR_TRUNCATED) return 1;
    /* Asked again, with no byte of a new message before the end: 0, clean. */
    rc = sm_recv_exact(cfd, buf, 4, 1000, &done);
    printf("peer done: %zd\n", rc);
    if (rc != 0) return 1;
    close(cfd);
    close(fd);
    close(lfd);
    /* guide: end */
    return 0;
}
