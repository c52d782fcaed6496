#include "http_tiny.h"

#include <stdio.h>
#include <string.h>

#include <sockmsg/conn.h>
#include <sockmsg/socket.h>

int
http_tiny_serve(int fd)
{
    /* A request head ends with an empty line: that delimiter is its framing.
     * max bounds what a client can make us buffer. */
    sm_frame_spec spec;
    int rc = sm_frame_spec_parse(&spec, "delim:\\r\\n\\r\\n,max=8K", NULL, 0);
    sm_conn *c;
    if (rc < 0 || (rc = sm_conn_new_take(&c, fd, &spec)) < 0) return rc;

    sm_frame_msg req;
    rc = sm_conn_recv(c, &req, 5000);
    if (rc == 1) {
        char path[256] = "/";
        const char *sp = memchr(req.data, ' ', req.len);
        if (sp) {
            size_t n = 0;
            const char *end = (const char *)req.data + req.len;
            for (const char *p = sp + 1; p < end && *p != ' ' && *p != '\r' && n < 255; p++)
                path[n++] = *p;
            path[n] = '\0';
        }
        char body[400], resp[700];
        int blen = snprintf(body, sizeof body, "Hello from sockmsg. You asked for %s\n", path);
        int n = snprintf(resp, sizeof resp,
                         "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
                         "\r\n%s",
                         blen, body);
        /* The reply is not framed by us: the client reads it until we close. */
        ssize_t s = sm_send_all(sm_conn_fd(c), resp, (size_t)n, 5000, NULL);
        rc = s < 0 ? (int)s : 0;
    } else if (rc == 0) {
        rc = SM_ERR_TRUNCATED; /* closed before a whole request head */
    }
    sm_conn_shutdown(c);
    sm_conn_free(c);
    return rc;
}
