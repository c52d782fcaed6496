/* The HOWTO's server: bind, listen, and hand each accepted client to a thread.
 *
 *   howto_server [ENDPOINT] [--clients N]
 *
 * ENDPOINT defaults to tcp://127.0.0.1:0 (a free port). The first line printed
 * is the bound address. With --clients N the server exits after N clients,
 * once their threads are done; otherwise it runs until killed. Threads are
 * bounded: past MAX_THREADS busy threads a client is refused (closed at once)
 * rather than queued forever. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sockmsg/sockmsg.h>
#include <sockmsg/socket.h>

#include "http_tiny.h"

#define MAX_THREADS 64

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t idle = PTHREAD_COND_INITIALIZER;
static int busy;

static void *
client_thread(void *arg)
{
    int fd = (int)(intptr_t)arg;
    int rc = http_tiny_serve(fd);
    if (rc < 0) fprintf(stderr, "howto_server: client: %s\n", sm_strerror(rc));
    pthread_mutex_lock(&lock);
    busy--;
    pthread_cond_signal(&idle);
    pthread_mutex_unlock(&lock);
    return NULL;
}

int
main(int argc, char **argv)
{
    const char *where = "tcp://127.0.0.1:0";
    long clients = -1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--clients") && i + 1 < argc)
            clients = strtol(argv[++i], NULL, 10);
        else if (argv[i][0] != '-')
            where = argv[i];
        else {
            fprintf(stderr, "usage: howto_server [ENDPOINT] [--clients N]\n");
            return 2;
        }
    }

    sm_endpoint ep, bound;
    char why[256], addr[256];
    int lfd = sm_endpoint_parse(&ep, where, why, sizeof why);
    if (lfd >= 0) lfd = sm_listen_endpoint(&ep, NULL, 0, &bound, why, sizeof why);
    if (lfd < 0) {
        fprintf(stderr, "howto_server: %s: %s\n", where, why[0] ? why : sm_strerror(lfd));
        return 1;
    }
    sm_endpoint_format(&bound, addr, sizeof addr);
    printf("listening on %s\n", addr);
    fflush(stdout);

    /* guide: accept_loop */
    for (long served = 0; clients < 0 || served < clients; served++) {
        sm_addr peer;
        int fd = sm_accept(lfd, SM_FOREVER, &peer);
        if (fd < 0) {
            fprintf(stderr, "howto_server: accept: %s\n", sm_strerror(fd));
            continue;
        }
        sm_addr_format((struct sockaddr *)&peer.ss, peer.len, addr, sizeof addr);
        printf("client %ld from %s\n", served + 1, addr);
        fflush(stdout);

        pthread_mutex_lock(&lock);
        bool full = busy >= MAX_THREADS;
        if (!full) busy++;
        pthread_mutex_unlock(&lock);
        pthread_t th;
        /* The fd rides in the thread's void * argument and is never
         * dereferenced: no pointer provenance for the optimiser to lose. */
        // NOLINTNEXTLINE(performance-no-int-to-ptr)
        if (full || pthread_create(&th, NULL, client_thread, (void *)(intptr_t)fd) != 0) {
            fprintf(stderr, "howto_server: refusing %s: too many clients\n", addr);
            close(fd);
            if (!full) {
                pthread_mutex_lock(&lock);
                busy--;
                pthread_mutex_unlock(&lock);
            }
            continue;
        }
        pthread_detach(th);
    }
    /* guide: end */

    /* Let every client thread finish before exiting. */
    pthread_mutex_lock(&lock);
    while (busy > 0)
        pthread_cond_wait(&idle, &lock);
    pthread_mutex_unlock(&lock);
    close(lfd);
    return 0;
}
