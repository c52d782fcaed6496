/* The README's first program: one message to an echo server and its reply.
 *
 *   hello [ENDPOINT]       (default tcp://localhost:7000)
 *
 * Start the server with `sockmsg serve --echo --listen tcp://localhost:7000`. */
#include <stdio.h>

#include <sockmsg/conn.h>
#include <sockmsg/sockmsg.h>

/* guide: hello */
int
main(int argc, char **argv)
{
    const char *where = argc > 1 ? argv[1] : "tcp://localhost:7000";
    sm_conn *c;
    char why[256];
    /* Connect within 5 s; messages are a 4-byte big-endian length + payload. */
    if (sm_conn_dial(&c, where, "len32be,max=1M", 5000, why, sizeof why) < 0) {
        fprintf(stderr, "hello: %s\n", why); /* "cannot resolve ...", "Connection refused" */
        return 1;
    }
    sm_conn_set_timeout(c, 2000);                 /* the deadline of every call below */
    sm_conn_send(c, "hello", 5, SM_CONN_DEFAULT); /* the whole message, or an error */
    sm_frame_msg m;
    int rc = sm_conn_recv(c, &m, SM_CONN_DEFAULT); /* exactly one whole message */
    if (rc == 1)
        printf("got %zu bytes: %.*s\n", m.len, (int)m.len, (const char *)m.data);
    else
        fprintf(stderr, "hello: %s %s\n", rc == 0 ? "closed" : sm_strerror(rc),
                sm_conn_error_detail(c));
    sm_conn_free(c);
    return rc == 1 ? 0 : 1;
}
/* guide: end */
