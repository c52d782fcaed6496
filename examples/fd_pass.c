/* Passing an open file over a Unix socket (the guide's "Passing file
 * descriptors"): the server holds a file the client may not be able to
 * open itself and hands the client its open fd; the client reads from it.
 *
 *   fd_pass serve unix:PATH FILE [--clients N]   (prints "listening on unix:PATH")
 *   fd_pass get unix:PATH                        (copies the file to stdout)
 *
 * Each request is one "open" message; the reply is "ok" with the fd
 * attached, or an error text without one. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sockmsg/sockmsg.h>

#define SPEC "len32be,max=4096"

/* One client: answer its requests until it hangs up. */
static void
serve_one(int fd, const char *file)
{
    sm_frame_spec spec;
    sm_conn *c;
    if (sm_frame_spec_parse(&spec, SPEC, NULL, 0) < 0 || sm_conn_new_take(&c, fd, &spec) < 0)
        return;
    sm_conn_set_timeout(c, 10000);
    sm_cred who;
    if (sm_conn_peer_cred(c, &who) == 0)
        fprintf(stderr, "fd_pass: client pid %d uid %d\n", (int)who.pid, (int)who.uid);
    sm_frame_msg m;
    while (sm_conn_recv(c, &m, SM_CONN_DEFAULT) == 1) {
        if (m.len != 4 || memcmp(m.data, "open", 4) != 0) {
            sm_conn_send(c, "unknown request", 15, SM_CONN_DEFAULT);
            continue;
        }
        int f = open(file, O_RDONLY | O_CLOEXEC);
        if (f < 0) {
            const char *e = "cannot open the file";
            sm_conn_send(c, e, strlen(e), SM_CONN_DEFAULT);
            continue;
        }
        /* The client gets its own copy of the open file: ours can go. */
        ssize_t rc = sm_conn_send_fds(c, "ok", 2, &f, 1, SM_CONN_DEFAULT);
        close(f);
        if (rc < 0) break;
    }
    sm_conn_free(c);
}

static int
serve(const char *where, const char *file, long clients)
{
    sm_endpoint bound;
    sm_endpoint ep;
    char why[256], addr[300];
    if (sm_endpoint_parse(&ep, where, why, sizeof why) < 0) {
        fprintf(stderr, "fd_pass: %s\n", why);
        return 1;
    }
    int lfd = sm_listen_endpoint(&ep, NULL, 16, &bound, why, sizeof why);
    if (lfd < 0) {
        fprintf(stderr, "fd_pass: %s\n", why);
        return 1;
    }
    sm_endpoint_format(&bound, addr, sizeof addr);
    printf("listening on %s\n", addr);
    fflush(stdout);
    for (long i = 0; clients < 0 || i < clients; i++) {
        int fd = sm_accept(lfd, SM_FOREVER, NULL);
        if (fd < 0) {
            fprintf(stderr, "fd_pass: accept: %s\n", sm_strerror(fd));
            break;
        }
        serve_one(fd, file);
    }
    close(lfd);
    return 0;
}

/* guide: fd_pass */
static int
get(const char *where)
{
    sm_conn *c;
    char why[256];
    if (sm_conn_dial(&c, where, SPEC, 5000, why, sizeof why) < 0) {
        fprintf(stderr, "fd_pass: %s\n", why);
        return 1;
    }
    sm_conn_set_timeout(c, 5000);
    sm_conn_enable_fds(c, 1); /* before the reply can arrive: one fd per message */
    sm_frame_msg m;
    int fd = -1;
    int rc = (int)sm_conn_send(c, "open", 4, SM_CONN_DEFAULT);
    if (rc >= 0) rc = sm_conn_recv(c, &m, SM_CONN_DEFAULT);
    if (rc == 1 && sm_conn_take_fds(c, &fd, 1) != 1)
        fprintf(stderr, "fd_pass: server said: %.*s\n", (int)m.len, (const char *)m.data);
    else if (rc != 1)
        fprintf(stderr, "fd_pass: %s\n", rc == 0 ? "server closed" : sm_strerror(rc));
    sm_conn_free(c);
    if (fd < 0) return 1;
    char buf[4096]; /* the fd is ours: read the file through it */
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0)
        fwrite(buf, 1, (size_t)n, stdout);
    close(fd);
    return n < 0 ? 1 : 0;
}
/* guide: end */

int
main(int argc, char **argv)
{
    if (argc >= 4 && strcmp(argv[1], "serve") == 0) {
        long clients =
            argc >= 6 && strcmp(argv[4], "--clients") == 0 ? strtol(argv[5], NULL, 10) : -1;
        return serve(argv[2], argv[3], clients);
    }
    if (argc == 3 && strcmp(argv[1], "get") == 0) return get(argv[2]);
    fprintf(stderr, "usage: fd_pass serve unix:PATH FILE [--clients N] | get unix:PATH\n");
    return 2;
}
