/* The HOWTO's MySocket class, rewritten with sm_conn.
 *
 *   mysocket serve ENDPOINT SPEC        echo every message back, one client, then exit
 *   mysocket send ENDPOINT SPEC MSG...  send each MSG as one message, print the echoes
 *
 * The HOWTO's version loops on send() and recv() for fixed-length messages and
 * gets the corner cases wrong when a peer closes early. sm_conn does the loops,
 * for any framing, with a deadline, and tells a clean close from a broken one. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <sockmsg/conn.h>
#include <sockmsg/sockmsg.h>
#include <sockmsg/socket.h>

static int
serve(const char *where, const char *spec_str)
{
    sm_frame_spec spec;
    sm_endpoint ep, bound;
    char why[256] = "", addr[200];
    int lfd = sm_frame_spec_parse(&spec, spec_str, why, sizeof why);
    if (lfd >= 0) lfd = sm_endpoint_parse(&ep, where, why, sizeof why);
    if (lfd >= 0) lfd = sm_listen_endpoint(&ep, NULL, 0, &bound, why, sizeof why);
    if (lfd < 0) {
        fprintf(stderr, "mysocket: %s\n", why[0] ? why : sm_strerror(lfd));
        return 1;
    }
    sm_endpoint_format(&bound, addr, sizeof addr);
    printf("listening on %s\n", addr);
    fflush(stdout);

    int fd = sm_accept(lfd, 30000, NULL);
    close(lfd);
    sm_conn *c;
    if (fd < 0 || sm_conn_new_take(&c, fd, &spec) < 0) return 1;
    sm_conn_set_timeout(c, 30000);
    sm_frame_msg m;
    int rc;
    while ((rc = sm_conn_recv(c, &m, SM_CONN_DEFAULT)) == 1)
        if (sm_conn_send(c, m.data, m.len, SM_CONN_DEFAULT) < 0) break;
    if (rc < 0) fprintf(stderr, "mysocket: %s %s\n", sm_strerror(rc), sm_conn_error_detail(c));
    sm_conn_shutdown(c);
    sm_conn_free(c);
    return rc < 0 ? 1 : 0;
}

static int
send_all(const char *where, const char *spec, char **msgs, int count)
{
    /* guide: mysocket */
    sm_conn *c;
    char why[256] = "";
    int rc = sm_conn_dial(&c, where, spec, 5000, why, sizeof why);
    if (rc < 0) {
        fprintf(stderr, "mysocket: %s\n", why[0] ? why : sm_strerror(rc));
        return 1;
    }
    sm_conn_set_timeout(c, 5000);
    for (int i = 0; i < count && rc >= 0; i++)
        rc = (int)sm_conn_send(c, msgs[i], strlen(msgs[i]), SM_CONN_DEFAULT);
    if (rc >= 0) rc = sm_conn_shutdown(c); /* no more messages: the server may finish */
    for (int i = 0; i < count && rc >= 0; i++) {
        sm_frame_msg m;
        rc = sm_conn_recv(c, &m, SM_CONN_DEFAULT);
        if (rc == 1)
            printf("echo %d: %.*s\n", i + 1, (int)m.len, (const char *)m.data);
        else
            rc = rc == 0 ? SM_ERR_TRUNCATED : rc;
    }
    /* guide: end */
    if (rc < 0) fprintf(stderr, "mysocket: %s %s\n", sm_strerror(rc), sm_conn_error_detail(c));
    sm_conn_free(c);
    return rc < 0 ? 1 : 0;
}

int
main(int argc, char **argv)
{
    if (argc == 4 && !strcmp(argv[1], "serve")) return serve(argv[2], argv[3]);
    if (argc >= 4 && !strcmp(argv[1], "send"))
        return send_all(argv[2], argv[3], argv + 4, argc - 4);
    fprintf(stderr, "usage: mysocket serve ENDPOINT SPEC | mysocket send ENDPOINT SPEC MSG...\n");
    return 2;
}
