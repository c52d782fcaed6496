/* libevent_echo: a len32be echo server on libevent 2.1 bufferevents.
 *
 *   libevent_echo [tcp://HOST:PORT | unix:/path]
 *
 * Prints "listening on ENDPOINT" first (PORT 0 picks one and prints it).
 * Socket bufferevents with the per-callback read and write limits raised from
 * libevent's 16 KiB to 256 KiB (bufferevent_set_max_single_read/_write).
 * Libevent 2.1 (Debian 12 ships 2.1.12) still reads at most 4096 bytes per
 * read(2): evbuffer_read caps every read at EVBUFFER_MAX_READ whatever the
 * bufferevent allows, and only 2.2 lets that be raised (evbuffer_set_max_read,
 * which bufferevent_set_max_single_read then sets). That costs large messages
 * more syscalls; a 64-byte load reads about 1 KiB per callback anyway. The
 * read callback looks at frame headers with evbuffer_copyout_from (nothing is
 * pulled up or copied out), then moves every whole frame from the input to the
 * output buffer with one evbuffer_remove_buffer, which relinks whole chains
 * instead of copying them. A frame bigger than 64 KiB sets the read low
 * watermark to its size, so the callback runs once it is complete. Reading
 * stops while more than 4 MiB wait in the output (write low watermark 2 MiB
 * resumes it). The base uses epoll's changelist (no fd is ever dup'd here, the
 * case libevent warns about), which folds the EV_WRITE add and delete of each
 * echoed batch into fewer epoll_ctl calls. TCP_NODELAY on. SIGTERM and SIGINT
 * break the loop and exit 0. */
#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_FRAME  ((size_t)16 << 20)
#define MAX_SINGLE (256 << 10)
#define BIG_FRAME  ((size_t)64 << 10)
#define WRITE_HIGH ((size_t)4 << 20)

static void on_read(struct bufferevent *bev, void *arg);

static void
on_event(struct bufferevent *bev, short what, void *arg)
{
    (void)arg;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) bufferevent_free(bev);
}

/* The output drained below the write low watermark: read again. */
static void
on_drained(struct bufferevent *bev, void *arg)
{
    bufferevent_setcb(bev, on_read, NULL, on_event, arg);
    bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
    bufferevent_enable(bev, EV_READ);
    on_read(bev, arg); /* frames may be waiting in the input already */
}

static void
on_read(struct bufferevent *bev, void *arg)
{
    struct evbuffer *in = bufferevent_get_input(bev);
    struct evbuffer *out = bufferevent_get_output(bev);
    size_t have = evbuffer_get_length(in), pos = 0, need = 0;
    struct evbuffer_ptr p;
    evbuffer_ptr_set(in, &p, 0, EVBUFFER_PTR_SET);
    while (have - pos >= 4) {
        uint32_t len;
        evbuffer_copyout_from(in, &p, &len, 4);
        len = ntohl(len);
        if (len > MAX_FRAME) {
            bufferevent_free(bev);
            return;
        }
        if (have - pos - 4 < len) {
            need = 4 + (size_t)len;
            break;
        }
        pos += 4 + (size_t)len;
        if (have - pos < 4) break;
        evbuffer_ptr_set(in, &p, 4 + len, EVBUFFER_PTR_ADD);
    }
    if (pos && evbuffer_remove_buffer(in, out, pos) < 0) {
        bufferevent_free(bev);
        return;
    }
    /* Wake up for a big frame only once all of it is in. */
    size_t low = need > BIG_FRAME ? need : 0, was = 0;
    bufferevent_getwatermark(bev, EV_READ, &was, NULL);
    if (low != was) bufferevent_setwatermark(bev, EV_READ, low, 0);
    if (evbuffer_get_length(out) > WRITE_HIGH) {
        bufferevent_disable(bev, EV_READ);
        bufferevent_setwatermark(bev, EV_WRITE, WRITE_HIGH / 2, 0);
        bufferevent_setcb(bev, on_read, on_drained, on_event, arg);
    }
}

static void
on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
    (void)salen;
    (void)arg;
    struct event_base *base = evconnlistener_get_base(l);
    if (sa->sa_family != AF_UNIX) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    struct bufferevent *bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!bev) {
        evutil_closesocket(fd);
        return;
    }
    bufferevent_set_max_single_read(bev, MAX_SINGLE);
    bufferevent_set_max_single_write(bev, MAX_SINGLE);
    bufferevent_setcb(bev, on_read, NULL, on_event, NULL);
    if (bufferevent_enable(bev, EV_READ) < 0) bufferevent_free(bev);
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    event_base_loopbreak(arg);
}

static char unix_path[108];

static struct evconnlistener *
listen_on(struct event_base *base, const char *where)
{
    unsigned flags = LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t len;
    if (!strncmp(where, "unix:", 5)) {
        struct sockaddr_un *un = (struct sockaddr_un *)&ss;
        un->sun_family = AF_UNIX;
        snprintf(unix_path, sizeof unix_path, "%s", where + 5);
        memcpy(un->sun_path, unix_path, sizeof unix_path);
        unlink(unix_path);
        len = sizeof *un;
    } else {
        /* (evutil_parse_sockaddr_port refuses port 0.) */
        const char *host = strncmp(where, "tcp://", 6) ? where : where + 6;
        const char *colon = strrchr(host, ':');
        char ip[64];
        snprintf(ip, sizeof ip, "%.*s", colon ? (int)(colon - host) : 0, host);
        uint16_t port = htons((uint16_t)strtol(colon ? colon + 1 : "0", NULL, 10));
        if (ip[0] == '[') {
            struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
            ip[strlen(ip) - 1] = '\0';
            s6->sin6_family = AF_INET6;
            s6->sin6_port = port;
            if (inet_pton(AF_INET6, ip + 1, &s6->sin6_addr) != 1) return NULL;
            len = sizeof *s6;
        } else {
            struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
            s4->sin_family = AF_INET;
            s4->sin_port = port;
            if (inet_pton(AF_INET, ip[0] ? ip : "127.0.0.1", &s4->sin_addr) != 1) return NULL;
            len = sizeof *s4;
        }
        flags |= LEV_OPT_REUSEABLE;
    }
    struct evconnlistener *l =
        evconnlistener_new_bind(base, on_accept, NULL, flags, -1, (struct sockaddr *)&ss, (int)len);
    if (!l) return NULL;
    if (unix_path[0]) {
        printf("listening on unix:%s\n", unix_path);
    } else {
        len = sizeof ss;
        getsockname(evconnlistener_get_fd(l), (struct sockaddr *)&ss, &len);
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
    return l;
}

int
main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    struct event_config *cfg = event_config_new();
    if (!cfg) return 1;
    event_config_set_flag(cfg, EVENT_BASE_FLAG_NOLOCK | EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    /* Static: whatever is still open at exit stays reachable (LeakSanitizer). */
    static struct event_base *base;
    base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    const char *where = argc > 1 ? argv[1] : "tcp://127.0.0.1:0";
    struct evconnlistener *l = base ? listen_on(base, where) : NULL;
    if (!l) {
        perror(where);
        return 1;
    }
    struct event *sigterm = evsignal_new(base, SIGTERM, on_signal, base);
    struct event *sigint = evsignal_new(base, SIGINT, on_signal, base);
    if (!sigterm || !sigint || event_add(sigterm, NULL) < 0 || event_add(sigint, NULL) < 0)
        return 1;
    event_base_dispatch(base);
    if (unix_path[0]) unlink(unix_path);
    return 0;
}
