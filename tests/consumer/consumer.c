/* An application outside the tree, built against an installed sockmsg (by
 * run.sh: with pkg-config, and with find_package as sockmsg::static and as
 * sockmsg::sockmsg). It uses the library for real: a frame spec, an encoded
 * and decoded message, endpoints, error strings, and one message each way over
 * loopback TCP. Prints "ok <version>"; exits 1 naming the first failure. */
#include <sockmsg/sockmsg.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "consumer: %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);     \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

static void
check_frames(void)
{
    sm_frame_spec spec;
    char why[128];
    CHECK(sm_frame_spec_parse(&spec, "len32be,max=1M", why, sizeof why) == 0);
    char canon[64];
    CHECK(sm_frame_spec_format(&spec, canon, sizeof canon) > 0);
    CHECK(strcmp(canon, "len32be,max=1M") == 0);

    /* Encode "hello", then decode the wire bytes back into one message. */
    sm_frame_hdr hdr;
    CHECK(sm_frame_encode(&spec, "hello", 5, -1, &hdr) == 0);
    CHECK(hdr.head_len == 4 && hdr.tail_len == 0);
    uint8_t wire[16];
    memcpy(wire, hdr.head, hdr.head_len);
    memcpy(wire + hdr.head_len, "hello", 5);
    sm_frame_decoder d;
    sm_frame_decoder_init(&d, &spec);
    sm_frame_msg m;
    CHECK(sm_frame_decode(&d, wire, hdr.head_len + 5u, &m) == (ssize_t)hdr.head_len + 5);
    CHECK(m.len == 5 && memcmp(m.data, "hello", 5) == 0);

    CHECK(sm_frame_spec_parse(&spec, "len24be", why, sizeof why) == SM_ERR_SPEC);
    CHECK(strstr(why, "len24be") != NULL);
    CHECK(strcmp(sm_strerror(SM_ERR_SPEC), "malformed frame spec") == 0);
}

static void
check_endpoints(void)
{
    sm_endpoint ep;
    char why[128], out[128];
    CHECK(sm_endpoint_parse(&ep, "tcp://[::1]:7000", why, sizeof why) == 0);
    CHECK(ep.kind == SM_ENDPOINT_TCP && strcmp(ep.host, "::1") == 0 && ep.port == 7000);
    CHECK(sm_endpoint_format(&ep, out, sizeof out) > 0);
    CHECK(strcmp(out, "tcp://[::1]:7000") == 0);
    CHECK(sm_endpoint_parse(&ep, "tcp://h:70000", why, sizeof why) == SM_ERR_ENDPOINT);
    CHECK(strcmp(sm_err_name(SM_ERR_ENDPOINT), "SM_ERR_ENDPOINT") == 0);
}

/* One message each way through sm_conn over 127.0.0.1, port chosen by the
 * kernel. Every call has a deadline. */
static void
check_loopback(void)
{
    int lfd = sm_listen("tcp://127.0.0.1:0", 1);
    CHECK(lfd >= 0);
    sm_endpoint bound;
    char ep[128], why[128];
    CHECK(sm_sock_local(lfd, &bound) == 0);
    CHECK(sm_endpoint_format(&bound, ep, sizeof ep) > 0);

    sm_conn *client, *server;
    CHECK(sm_conn_dial(&client, ep, "line", 5000, why, sizeof why) == 0);
    int fd = sm_accept(lfd, 5000, NULL);
    CHECK(fd >= 0);
    sm_frame_spec line;
    CHECK(sm_frame_spec_parse(&line, "line", NULL, 0) == 0);
    CHECK(sm_conn_new_take(&server, fd, &line) == 0);

    sm_frame_msg m;
    CHECK(sm_conn_send(client, "ping", 4, 5000) == 4);
    CHECK(sm_conn_recv(server, &m, 5000) == 1);
    CHECK(m.len == 4 && memcmp(m.data, "ping", 4) == 0);
    CHECK(sm_conn_send(server, "pong", 4, 5000) == 4);
    CHECK(sm_conn_recv(client, &m, 5000) == 1);
    CHECK(m.len == 4 && memcmp(m.data, "pong", 4) == 0);

    sm_conn_free(client);
    sm_conn_free(server);
    CHECK(close(lfd) == 0);
}

int
main(void)
{
    /* The library and the headers it was compiled with must agree. */
    CHECK(strcmp(sm_version(), SM_VERSION_STRING) == 0);
    CHECK(sm_version_number() == SM_VERSION_NUMBER);
    check_frames();
    check_endpoints();
    check_loopback();
    printf("ok %s\n", sm_version());
    return 0;
}
