/* A chat server on sm_stream: each line from one client goes to all others.
 *
 *   chat_server [ENDPOINT] [--clients N]
 *
 * Framing is `line`: the stream hands over whole lines however TCP cut them.
 * A client that does not read its messages is not allowed to grow our memory
 * without bound: past max_queued it is closed as a slow consumer, and the
 * others go on. The first line printed is the bound address. With --clients N
 * the server stops after N clients have come and gone. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sockmsg/loop.h>
#include <sockmsg/socket.h>
#include <sockmsg/stream.h>

#define MAX_CLIENTS 1024

struct chat {
    sm_stream *clients[MAX_CLIENTS];
    int count;
    long clients_left; /* < 0: forever */
    sm_io listener;
};

static struct chat *
chat_of(sm_stream *s)
{
    return sm_loop_get_data(sm_stream_loop(s));
}

/* guide: chat */
static void
on_message(sm_stream *s, const sm_frame_msg *m)
{
    struct chat *c = chat_of(s);
    char line[600];
    int n = snprintf(line, sizeof line, "%d: %.*s", sm_stream_fd(s),
                     (int)(m->len > 512 ? 512 : m->len), (const char *)m->data);
    for (int i = 0; i < c->count; i++)
        if (c->clients[i] != s)
            sm_stream_send(c->clients[i], line, (size_t)n); /* queued, never blocks */
}
/* guide: end */

static void
on_close(sm_stream *s, int reason)
{
    struct chat *c = chat_of(s);
    for (int i = 0; i < c->count; i++)
        if (c->clients[i] == s) {
            c->clients[i] = c->clients[--c->count];
            break;
        }
    if (reason != 0)
        fprintf(stderr, "chat_server: client closed: %s %s\n", sm_strerror(reason),
                sm_stream_error_detail(s));
    if (c->clients_left == 0 && c->count == 0) sm_loop_stop(sm_stream_loop(s));
}

/* guide: chat_opts */
static const sm_frame_spec spec = {
    .kind = SM_FRAME_DELIM, .delim = "\n", .delim_len = 1, .max = 4096};
static const sm_stream_opts opts = {
    .spec = &spec,
    .on_message = on_message,
    .on_close = on_close,
    .max_queued = 1 << 20, /* a client that stops reading is dropped past 1 MiB */
};
/* guide: end */

static void
on_accept(sm_io *w, unsigned events)
{
    (void)events;
    struct chat *c = w->data;
    int fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    sm_stream *s;
    if (c->count == MAX_CLIENTS || sm_stream_new_take(&s, w->loop, fd, &opts, NULL) < 0) {
        if (c->count == MAX_CLIENTS) close(fd);
        return;
    }
    c->clients[c->count++] = s;
    if (c->clients_left > 0 && --c->clients_left == 0) sm_io_stop(w);
}

int
main(int argc, char **argv)
{
    const char *where = "tcp://127.0.0.1:0";
    static struct chat chat = {.clients_left = -1};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--clients") && i + 1 < argc)
            chat.clients_left = strtol(argv[++i], NULL, 10);
        else if (argv[i][0] != '-')
            where = argv[i];
        else {
            fprintf(stderr, "usage: chat_server [ENDPOINT] [--clients N]\n");
            return 2;
        }
    }
    sm_endpoint ep, bound;
    char why[256] = "", addr[256];
    int lfd = sm_endpoint_parse(&ep, where, why, sizeof why);
    if (lfd >= 0) lfd = sm_listen_endpoint(&ep, NULL, 0, &bound, why, sizeof why);
    sm_loop *loop;
    if (lfd < 0 || sm_sock_set_nonblock(lfd, true) < 0 || sm_loop_new(&loop, NULL) < 0) {
        fprintf(stderr, "chat_server: %s\n", why[0] ? why : sm_strerror(lfd));
        return 1;
    }
    sm_loop_set_data(loop, &chat);
    sm_endpoint_format(&bound, addr, sizeof addr);
    printf("listening on %s\n", addr);
    fflush(stdout);

    sm_io_init(loop, &chat.listener, lfd, on_accept);
    chat.listener.data = &chat;
    sm_io_start(&chat.listener, SM_READ);
    sm_loop_run(loop, SM_RUN_DEFAULT);
    sm_io_stop(&chat.listener);
    close(lfd);
    for (int i = 0; i < chat.count; i++)
        sm_stream_close(chat.clients[i]);
    while (sm_loop_run(loop, SM_RUN_NOWAIT) > 0 && chat.count > 0)
        ;
    return sm_loop_free(loop) < 0 ? 1 : 0;
}
