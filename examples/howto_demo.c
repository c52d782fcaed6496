/* The HOWTO, end to end on loopback, in one program: what `make demo` runs
 * until the sockmsg tool's own demo exists.
 *
 * 1. The HOWTO's client and thread-per-client server: an HTTP/1.0 GET, the
 *    client's half-close, the reply read until EOF; over IPv4, IPv6 and an
 *    abstract Unix socket.
 * 2. MySocket done right: an echo server and a client exchanging pipelined
 *    messages under several framings; every byte checked.
 * Prints what was exchanged; exits 0 when everything matched. */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <sockmsg/conn.h>
#include <sockmsg/sockmsg.h>
#include <sockmsg/socket.h>

#include "http_tiny.h"

struct server {
    int lfd;
    const char *spec; /* NULL: HTTP; else a frame spec to echo */
    int clients;
    pthread_t th;
};

static void *
server_main(void *arg)
{
    struct server *s = arg;
    for (int i = 0; i < s->clients; i++) {
        int fd = sm_accept(s->lfd, 10000, NULL);
        if (fd < 0) return NULL;
        if (!s->spec) {
            http_tiny_serve(fd);
            continue;
        }
        sm_frame_spec spec;
        sm_conn *c;
        if (sm_frame_spec_parse(&spec, s->spec, NULL, 0) < 0 || sm_conn_new_take(&c, fd, &spec))
            return NULL;
        sm_frame_msg m;
        while (sm_conn_recv(c, &m, 10000) == 1)
            sm_conn_send(c, m.data, m.len, 10000);
        sm_conn_shutdown(c);
        sm_conn_free(c);
    }
    return NULL;
}

/* Listen on `where`, start the server thread, return the address to dial. */
static int
server_start(struct server *s, const char *where, char *addr, size_t addr_len)
{
    s->lfd = sm_listen(where, 16);
    sm_endpoint ep;
    if (s->lfd < 0 || sm_sock_local(s->lfd, &ep) < 0 || sm_endpoint_format(&ep, addr, addr_len) < 0)
        return -1;
    return pthread_create(&s->th, NULL, server_main, s) == 0 ? 0 : -1;
}

static void
server_join(struct server *s)
{
    pthread_join(s->th, NULL);
    close(s->lfd);
}

static int
http_round(const char *where, const char *path)
{
    struct server s = {.clients = 1};
    char addr[160], why[200] = "";
    if (server_start(&s, where, addr, sizeof addr) < 0) {
        printf("  %-28s skipped: cannot listen here\n", where);
        return 0;
    }
    sm_conn *c = NULL;
    int rc = sm_conn_dial(&c, addr, "eof,max=64K", 5000, why, sizeof why);
    char req[256];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\n\r\n", path);
    sm_frame_msg reply = {0};
    bool got = false; /* a reply: rc is first the dial's, then the receive's */
    if (rc == 0) {
        rc = (int)sm_conn_send(c, req, (size_t)n, 5000);
        if (rc >= 0) rc = sm_conn_shutdown(c); /* half-close: "I will send no more" */
        if (rc >= 0) rc = sm_conn_recv(c, &reply, 5000);
        got = rc == 1;
    }
    int ok = got && reply.len > 0 && memmem(reply.data, reply.len, path, strlen(path));
    printf("  %-28s -> GET %s, shutdown(SHUT_WR)\n", addr, path);
    if (got) {
        const char *body = memmem(reply.data, reply.len, "\r\n\r\n", 4);
        printf("  %-28s <- %.*s | %.*s", "", 15, (const char *)reply.data,
               body ? (int)(reply.len - (size_t)(body + 4 - (const char *)reply.data)) : 0,
               body ? body + 4 : "");
    } else {
        printf("  failed: %s %s\n", sm_strerror(rc), why);
    }
    sm_conn_free(c);
    server_join(&s);
    return ok ? 0 : -1;
}

static int
echo_round(const char *spec)
{
    static const char *const msgs[] = {"hello", "", "a message\twith\ttabs", "the end"};
    const int count = (int)(sizeof msgs / sizeof msgs[0]);
    struct server s = {.clients = 1, .spec = spec};
    char addr[160], why[200] = "";
    if (server_start(&s, "tcp://127.0.0.1:0", addr, sizeof addr) < 0) return -1;
    sm_conn *c;
    int rc = sm_conn_dial(&c, addr, spec, 5000, why, sizeof why);
    if (rc < 0) {
        printf("  %s: %s\n", spec, why);
        server_join(&s);
        return -1;
    }
    /* Pipelined: every message goes out before any reply is read. */
    for (int i = 0; i < count && rc >= 0; i++)
        rc = (int)sm_conn_send(c, msgs[i], strlen(msgs[i]), 5000);
    sm_conn_shutdown(c);
    int ok = rc >= 0;
    printf("  %-10s", spec);
    for (int i = 0; i < count && ok; i++) {
        sm_frame_msg m;
        ok = sm_conn_recv(c, &m, 5000) == 1 && m.len == strlen(msgs[i]) &&
             !memcmp(m.data, msgs[i], m.len);
        printf(" \"%.*s\"", (int)m.len, (const char *)m.data);
    }
    sm_frame_msg m;
    ok = ok && sm_conn_recv(c, &m, 5000) == 0;
    printf("  %s\n", ok ? "[all echoed, clean EOF]" : "[MISMATCH]");
    sm_conn_free(c);
    server_join(&s);
    return ok ? 0 : -1;
}

int
main(void)
{
    int bad = 0;
    char abstract[64];
    snprintf(abstract, sizeof abstract, "unix:@sockmsg-demo-%d", (int)getpid());

    printf("sockmsg %s demo\n\n", sm_version());
    printf(
        "1. The HOWTO's client and thread-per-client server (HTTP/1.0, half-close, read to EOF)\n");
    bad += http_round("tcp://127.0.0.1:0", "/index.html") < 0;
    bad += http_round("tcp://[::1]:0", "/over/ipv6") < 0;
    bad += http_round(abstract, "/over/unix") < 0;

    printf("\n2. MySocket done right: pipelined messages, echoed, every byte checked\n");
    static const char *const specs[] = {"line", "len32be", "ascii:5", "netstring", "varint"};
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++)
        bad += echo_round(specs[i]) < 0;

    printf("\n%s\n", bad ? "demo FAILED" : "demo OK: every exchange verified");
    return bad ? 1 : 0;
}
