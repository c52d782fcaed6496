/* The HOWTO's client: connect, send an HTTP/1.0 request, shut down the sending
 * side ("I will send no more"), and read the reply until the server closes.
 *
 *   howto_client ENDPOINT [PATH]
 *
 * The reply is framed by the server closing the connection: `eof` framing. */
#include <stdio.h>
#include <string.h>

#include <sockmsg/conn.h>
#include <sockmsg/sockmsg.h>

int
main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: howto_client ENDPOINT [PATH]\n");
        return 2;
    }
    const char *path = argc == 3 ? argv[2] : "/";

    /* guide: dial */
    sm_conn *c;
    char why[256] = "";
    /* eof framing: the reply is everything until the server closes. */
    int rc = sm_conn_dial(&c, argv[1], "eof,max=1M", 5000, why, sizeof why);
    if (rc < 0) {
        fprintf(stderr, "howto_client: %s: %s\n", argv[1], why[0] ? why : sm_strerror(rc));
        return 1;
    }
    sm_conn_set_timeout(c, 5000);
    /* guide: end */

    /* guide: request */
    char req[512];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: sockmsg\r\n\r\n", path);
    /* With eof framing a message is just bytes; the shutdown ends it. */
    rc = (int)sm_conn_send(c, req, (size_t)n, SM_CONN_DEFAULT);
    if (rc >= 0) rc = sm_conn_shutdown(c);

    sm_frame_msg reply;
    if (rc >= 0) rc = sm_conn_recv(c, &reply, SM_CONN_DEFAULT);
    if (rc != 1) {
        fprintf(stderr, "howto_client: %s\n", rc == 0 ? "no reply" : sm_strerror(rc));
        sm_conn_free(c);
        return 1;
    }
    fwrite(reply.data, 1, reply.len, stdout);
    /* guide: end */
    sm_conn_free(c);
    return 0;
}
