/* A STARTTLS server on sm_server: clients talk in lines ("250 ok" to each)
 * until STARTTLS; the server says "220 go ahead", hands the socket off with
 * sm_peer_detach, and a thread of its own speaks TLS on it (len32be
 * messages, echoed) until the client closes. Stops on SIGINT or SIGTERM.
 *
 *   starttls_server ENDPOINT CHAIN.pem KEY.pem
 *
 * The first line printed is "listening on ENDPOINT" (port 0 resolved). Run
 * by tests/integration/test_starttls_example.c. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sockmsg/conn.h>
#include <sockmsg/server.h>
#include <sockmsg/tls.h>

static sm_tls_config *tls_cfg;
/* TLS sessions still running: the stop waits for them before the
 * configuration they use goes. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t idle = PTHREAD_COND_INITIALIZER;
static int sessions;

static void
session_done(void)
{
    pthread_mutex_lock(&lock);
    if (--sessions == 0) pthread_cond_signal(&idle);
    pthread_mutex_unlock(&lock);
}

/* guide: starttls */
/* The socket after the switch: TLS, then echo until the client is done. */
static void *
tls_session(void *arg)
{
    int fd = *(int *)arg;
    free(arg);
    sm_frame_spec len32;
    (void)sm_frame_spec_parse(&len32, "len32be,max=1M", NULL, 0);
    sm_conn *c;
    char why[256];
    if (sm_conn_new_tls(&c, fd, &len32, tls_cfg, NULL, 10000, why, sizeof why) < 0) {
        fprintf(stderr, "starttls_server: handshake: %s\n", why); /* fd closed */
        session_done();
        return NULL;
    }
    sm_frame_msg m;
    while (sm_conn_recv(c, &m, 30000) == 1 && sm_conn_send_frame(c, &m, 10000) >= 0)
        ;
    sm_conn_free(c);
    session_done();
    return NULL;
}

/* The hand-off's outcome, right before on_close(p, SM_ERR_DETACHED). */
static void
on_detached(sm_peer *p, int fd, uint8_t *rest, size_t rest_len, int status, void *arg)
{
    (void)p;
    (void)arg;
    if (status != 0) return; /* the connection failed first: fd is -1 */
    /* Plaintext pipelined behind STARTTLS is refused, as RFC 3207 asks
     * (it could be an injection, and TLS must start from a clean slate). */
    free(rest);
    int *box = rest_len ? NULL : malloc(sizeof *box);
    if (!box) {
        close(fd);
        return;
    }
    *box = fd;
    pthread_mutex_lock(&lock);
    sessions++;
    pthread_mutex_unlock(&lock);
    pthread_t th;
    if (pthread_create(&th, NULL, tls_session, box) != 0) {
        free(box);
        close(fd);
        session_done();
        return;
    }
    pthread_detach(th);
}

static void
on_message(sm_peer *p, const sm_frame_msg *m)
{
    if (m->len == 8 && memcmp(m->data, "STARTTLS", 8) == 0) {
        sm_peer_send(p, "220 go ahead", 12); /* written before the hand-off */
        if (sm_peer_detach(p, on_detached, NULL) < 0) sm_peer_close(p);
        return;
    }
    sm_peer_send(p, "250 ok", 6);
}
/* guide: end */

int
main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: starttls_server ENDPOINT CHAIN.pem KEY.pem\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    char why[256];
    if (sm_tls_config_new(&tls_cfg, SM_TLS_SERVER, why, sizeof why) < 0 ||
        sm_tls_config_set_cert(tls_cfg, argv[2], argv[3], why, sizeof why) < 0) {
        fprintf(stderr, "starttls_server: %s\n", why);
        return 1;
    }
    const char *eps[] = {argv[1]};
    sm_server_opts o = {.listen = eps,
                        .listen_count = 1,
                        .frame = "line,max=4096",
                        .on_message = on_message,
                        .handle_signals = true};
    sm_server *srv;
    if (sm_server_new(&srv, &o, why, sizeof why) < 0) {
        fprintf(stderr, "starttls_server: %s\n", why);
        return 1;
    }
    sm_endpoint e;
    char text[300];
    sm_server_endpoint(srv, 0, &e);
    sm_endpoint_format(&e, text, sizeof text);
    printf("listening on %s\n", text);
    fflush(stdout);
    int rc = sm_server_run(srv);
    sm_server_free(srv);
    pthread_mutex_lock(&lock);
    while (sessions > 0)
        pthread_cond_wait(&idle, &lock);
    pthread_mutex_unlock(&lock);
    sm_tls_config_free(tls_cfg);
    return rc < 0 ? 1 : 0;
}
