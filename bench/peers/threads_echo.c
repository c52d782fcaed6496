/* threads_echo: a len32be echo server with one blocking thread per
 * connection on plain sockets, the classic model at its best.
 *
 *   threads_echo [tcp://HOST:PORT | unix:/path]
 *
 * Prints "listening on ENDPOINT" first (PORT 0 picks one and prints it).
 * The main thread accepts; each connection gets a detached thread with a
 * 64 KiB stack and a 256 KiB read buffer (grown only for a bigger frame).
 * Each read is parsed in place and all its whole frames are echoed with one
 * blocking write loop; an unfinished frame is moved to the front. TCP_NODELAY
 * on. SIGTERM and SIGINT exit 0 at once. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "../bench_arg.h"

#define RBUF      ((size_t)256 << 10)
#define MAX_FRAME (16u * 1024 * 1024)
#define STACK     ((size_t)64 << 10)

static char unix_path[108];

static int
write_all(int fd, const uint8_t *p, size_t len)
{
    while (len) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

static void *
serve(void *arg)
{
    int fd = (int)(intptr_t)arg;
    size_t cap = RBUF, have = 0;
    uint8_t *buf = malloc(cap);
    while (buf) {
        ssize_t n = read(fd, buf + have, cap - have);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        have += (size_t)n;
        size_t pos = 0, need = 0;
        while (have - pos >= 4) {
            uint32_t len;
            memcpy(&len, buf + pos, 4);
            len = ntohl(len);
            if (len > MAX_FRAME) goto out;
            if (have - pos - 4 < len) {
                need = 4 + (size_t)len;
                break;
            }
            pos += 4 + (size_t)len;
        }
        if (pos && write_all(fd, buf, pos) < 0) break;
        memmove(buf, buf + pos, have - pos);
        have -= pos;
        if (need > cap) {
            uint8_t *bigger = realloc(buf, need);
            if (!bigger) break;
            buf = bigger;
            cap = need;
        } else if (!have && cap > RBUF) {
            /* Give back a buffer grown for a big frame. */
            uint8_t *smaller = realloc(buf, RBUF);
            if (smaller) buf = smaller;
            cap = RBUF;
        }
    }
out:
    free(buf);
    close(fd);
    return NULL;
}

static void
on_signal(int sig)
{
    (void)sig;
    if (unix_path[0]) unlink(unix_path);
    _exit(0);
}

static int
listen_on(const char *where)
{
    int fd;
    if (!strncmp(where, "unix:", 5)) {
        struct sockaddr_un un = {.sun_family = AF_UNIX};
        snprintf(un.sun_path, sizeof un.sun_path, "%s", where + 5);
        unlink(un.sun_path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || bind(fd, (struct sockaddr *)&un, sizeof un) < 0 || listen(fd, SOMAXCONN) < 0)
            return -1;
        memcpy(unix_path, un.sun_path, sizeof unix_path);
        printf("listening on unix:%s\n", un.sun_path);
    } else {
        const char *host = strncmp(where, "tcp://", 6) ? where : where + 6;
        const char *colon = strrchr(host, ':');
        char ip[64];
        snprintf(ip, sizeof ip, "%.*s", colon ? (int)(colon - host) : 0, host);
        uint16_t port = htons((uint16_t)bench_arg_long(colon ? colon + 1 : "0", 0, 65535));
        struct sockaddr_storage ss;
        memset(&ss, 0, sizeof ss);
        socklen_t len;
        if (ip[0] == '[') {
            struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
            ip[strlen(ip) - 1] = '\0';
            s6->sin6_family = AF_INET6;
            s6->sin6_port = port;
            if (inet_pton(AF_INET6, ip + 1, &s6->sin6_addr) != 1) return -1;
            len = sizeof *s6;
        } else {
            struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
            s4->sin_family = AF_INET;
            s4->sin_port = port;
            if (inet_pton(AF_INET, ip[0] ? ip : "127.0.0.1", &s4->sin_addr) != 1) return -1;
            len = sizeof *s4;
        }
        fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int one = 1;
        if (fd < 0) return -1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, SOMAXCONN) < 0 ||
            getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
            return -1;
        char name[64];
        if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
            inet_ntop(AF_INET6, &s6->sin6_addr, name, sizeof name);
            printf("listening on tcp://[%s]:%u\n", name, ntohs(s6->sin6_port));
        } else {
            struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
            inet_ntop(AF_INET, &s4->sin_addr, name, sizeof name);
            printf("listening on tcp://%s:%u\n", name, ntohs(s4->sin_port));
        }
    }
    fflush(stdout);
    return fd;
}

int
main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    const char *where = argc > 1 ? argv[1] : "tcp://127.0.0.1:0";
    int lfd = listen_on(where);
    if (lfd < 0) {
        perror(where);
        return 1;
    }
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, STACK);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                usleep(1000); /* out of descriptors or memory: let connections close */
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        pthread_t t;
        /* The fd rides in the thread's void * argument and is never
         * dereferenced: no pointer provenance for the optimiser to lose. */
        // NOLINTNEXTLINE(performance-no-int-to-ptr)
        if (pthread_create(&t, &attr, serve, (void *)(intptr_t)fd) != 0) close(fd);
    }
}
