/* The thread model's front: every new connection is read on the acceptor's
 * loop, non-blocking, until it is worth a thread. A thread (and its stack,
 * and a slot of opts.threads) is committed only once the connection's PROXY
 * header (with proxy_protocol) and, under SM_COMMIT_FIRST_MESSAGE, a whole
 * first message have arrived; the bytes read so far go to the connection
 * thread's sm_conn, so nothing is read twice or lost. A connection that
 * stalls here holds a file descriptor and its buffered bytes, never a
 * thread: hundreds of trickling clients cannot starve a healthy one.
 *
 * Each front connection is in one of two phases, each a list in deadline
 * order (every entry of a phase has the same timeout, so appending keeps
 * the order): reading the PROXY header (its deadline: the PROXY timeout),
 * then reading the first message (first_message_timeout_ms; none when 0).
 * One timer serves both lists and, once the server stops, the drain. Loop
 * thread only, except where said. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "frame_internal.h"
#include "internal.h"
#include "server_internal.h"

/* Bytes read from one connection per readiness event: a client sending a
 * large first message does not hold the acceptor loop for long. */
#define FRONT_READ_BUDGET ((size_t)256 << 10)
#define FRONT_READ_CHUNK  ((size_t)64 << 10)
#define FRONT_READ_MIN    ((size_t)4 << 10)
/* Past the frame, what a conn's buffer may hold too (as conn.c). */
#define FRONT_SLACK ((size_t)64 + ((size_t)64 << 10))

typedef struct sm__front {
    sm_io io;
    sm__worker *w;
    sm__node link;   /* w->front_hdr or w->front_msg, oldest first */
    int64_t due;     /* this phase's deadline; INT64_MAX: none */
    int64_t last_rx; /* loop time of the accept or the last bytes: the drain's quiet rule */
    sm__proxied *px;
    sm__proxy_rd *rd; /* while the header is read */
    sm_frame_decoder dec;
    sm_buf in;
    bool tls; /* a tls:// listener's: handed over after the PROXY header */
} sm__front;

static int
proxy_ms(const sm_server *srv)
{
    int ms = srv->o.first_message_timeout_ms;
    return ms ? ms : SM__PROXY_DEFAULT_MS;
}

static bool
commit_at_accept(const sm_server *srv)
{
    return srv->o.commit == SM_COMMIT_ACCEPT;
}

/* ---- the deadline timer ------------------------------------------------------------ */

/* The analyzer loses track of the list head that sm__list_remove moves
 * (as in server_proxy.c): in the timer's loops it takes the next head for
 * the entry just freed (forget unlinks f before freeing it). */
static int64_t
head_due(const sm__node *h)
{
    // NOLINTNEXTLINE(clang-analyzer-unix.Malloc)
    return sm__list_empty(h) ? INT64_MAX : SM__CONTAINER(h->next, sm__front, link)->due;
}

static void
arm(sm__worker *w)
{
    int64_t due = SM__MIN(head_due(&w->front_hdr), head_due(&w->front_msg));
    int64_t now = sm_loop_now(w->loop);
    /* Stopping: look again for quiet connections every drain_quiet_ms. */
    if (w->stopping && w->nfront) due = SM__MIN(due, now + w->srv->o.drain_quiet_ms);
    if (due == INT64_MAX) {
        sm_timer_stop(&w->front_timer);
        return;
    }
    sm_timer_start(&w->front_timer, due > now ? (uint64_t)(due - now) : 0, 0);
}

/* ---- ending a front connection ----------------------------------------------------- */

static void
forget(sm__front *f)
{
    sm__worker *w = f->w;
    sm_io_stop(&f->io);
    sm__list_remove(&f->link);
    w->nfront--;
    if (f->rd) {
        sm__proxy_rd_free(f->rd);
        free(f->rd);
    }
    sm_buf_free(&f->in);
    free(f);
}

/* Close a connection that never became a peer: counted by kind, logged at
 * debug (a flood of them must not flood the log; the counters tell). */
static void
fail(sm__front *f, int reason, const char *why)
{
    // NOLINTNEXTLINE(clang-analyzer-unix.Malloc): see head_due
    sm__worker *w = f->w;
    sm_server *srv = w->srv;
    if (f->rd) {
        sm__log_proxy_fail(srv, f->io.fd, reason, why);
    } else if (srv->o.log_level >= SM_LOG_DEBUG) {
        char where[160];
        sm__sock_peer_name(f->io.fd, where, sizeof where);
        sm__log(srv, SM_LOG_DEBUG, "connection from %s closed before its first message: %s (%s)",
                where, why && why[0] ? why : sm_strerror(reason), sm_err_name(reason));
    }
    close(f->io.fd);
    free(f->px);
    forget(f);
    sm__count_close(srv, &w->ctrs, sm_server_close_kind(reason));
}

/* Worth a thread now: the connection goes to sm__tconn_spawn with what was
 * read of it. */
static void
hand_over(sm__front *f, bool got_first)
{
    sm__worker *w = f->w;
    int fd = f->io.fd;
    sm__proxied *px = f->px;
    sm_buf in = f->in;
    sm_buf_init(&f->in, 0);
    bool tls = f->tls;
    forget(f);
    sm__tconn_spawn(w, fd, px, &in, got_first, tls);
}

/* ---- reading ----------------------------------------------------------------------- */

/* The decoder's verdict on what is buffered: 1 a whole message in *m
 * (hand it over), 0 more is needed, < 0 an error (the connection is done).
 * Frames an oversize=skip spec discards are dropped here, as the conn
 * would. */
static int
decode(sm__front *f, sm_frame_msg *m)
{
    for (;;) {
        ssize_t n = sm_frame_decode(&f->dec, sm_buf_peek(&f->in), sm_buf_len(&f->in), m);
        if (n == -EAGAIN) return 0;
        if (n < 0) return (int)n;
        if (m->data) return 1;
        sm_buf_consume(&f->in, (size_t)n);
    }
}

/* A swallowed ping is no first message (first_message_timeout_ms still
 * runs on the connection thread), but it is a client that speaks the
 * protocol: it gets its thread. */
static bool
is_ping(const sm_server *srv, const sm_frame_msg *m)
{
    const sm_server_opts *o = &srv->o;
    return o->swallow_pings && sm__ping_matches(o->spec, o->ping, o->ping_len, o->ping_type, m);
}

/* The client shut down before a whole first message: eof framing's
 * message is the whole rest (hand it over; the conn sees the EOF again),
 * anything else ends here. */
static void
at_eof(sm__front *f)
{
    sm_frame_msg m;
    ssize_t n = sm_frame_decode_eof(&f->dec, sm_buf_peek(&f->in), sm_buf_len(&f->in), &m);
    if (n >= 0 && m.data) {
        hand_over(f, true);
        return;
    }
    char why[160] = "";
    if (n < 0) sm_frame_decoder_detail(&f->dec, why, sizeof why);
    fail(f, n < 0 ? (int)n : 0, n < 0 ? why : "the client closed without a message");
}

static void
start_message_phase(sm__front *f)
{
    sm__worker *w = f->w;
    int ms = w->srv->o.first_message_timeout_ms;
    f->due = ms ? sm_loop_now(w->loop) + ms : INT64_MAX;
    sm__list_append(&w->front_msg, &f->link);
}

/* The PROXY header: 1 done (phase moved), 0 wait, -1 f is gone. */
static int
read_header(sm__front *f)
{
    sm__worker *w = f->w;
    sm_proxy_info info = {0};
    char why[160] = "";
    ssize_t h = sm__proxy_read(f->io.fd, f->rd, &info, why, sizeof why);
    if (h == -EAGAIN) return 0;
    int err = (int)h;
    if (h > 0) f->px = sm__proxied_new(&info, &err);
    if (err < 0) {
        fail(f, err, why);
        return -1;
    }
    sm__proxy_rd_free(f->rd);
    free(f->rd);
    f->rd = NULL;
    f->last_rx = sm_loop_now(w->loop);
    sm__list_remove(&f->link);
    if (commit_at_accept(w->srv) || f->tls) {
        hand_over(f, false);
        return -1;
    }
    start_message_phase(f);
    return 1;
}

static void
read_message(sm__front *f)
{
    size_t budget = FRONT_READ_BUDGET;
    while (budget > 0) {
        size_t room = f->in.limit - sm_buf_len(&f->in);
        /* The decoder refuses a frame that would not fit before this. */
        if (room == 0) {
            fail(f, -EMSGSIZE, "the first message does not fit the buffer");
            return;
        }
        /* Room for as much again as has come (4 KiB at first): a client
         * that trickles bytes holds a buffer the size of what it sent. */
        size_t ask = SM__MIN(FRONT_READ_CHUNK, SM__MAX(FRONT_READ_MIN, sm_buf_len(&f->in)));
        int rc = sm_buf_reserve(&f->in, SM__MIN(room, ask));
        if (rc < 0) {
            fail(f, rc, "no memory for the first message");
            return;
        }
        size_t want = SM__MIN(sm_buf_writable(&f->in), budget);
        ssize_t got = recv(f->io.fd, sm_buf_wptr(&f->in), want, MSG_DONTWAIT);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        if (got < 0) {
            fail(f, -errno, NULL);
            return;
        }
        if (got == 0) {
            at_eof(f);
            return;
        }
        sm_buf_commit(&f->in, (size_t)got);
        budget -= (size_t)got;
        f->last_rx = sm_loop_now(f->w->loop);
        sm_frame_msg m;
        rc = decode(f, &m);
        if (rc == 1) {
            hand_over(f, !is_ping(f->w->srv, &m));
            return;
        }
        if (rc < 0) {
            char why[160];
            sm_frame_decoder_detail(&f->dec, why, sizeof why);
            fail(f, rc, why);
            return;
        }
    }
}

static void
io_cb(sm_io *io, unsigned events)
{
    (void)events;
    sm__front *f = io->data;
    sm__worker *w = f->w;
    if (f->rd && read_header(f) <= 0) {
        arm(w);
        sm__tmodel_maybe_exit(w);
        return;
    }
    read_message(f);
    arm(w);
    sm__tmodel_maybe_exit(w);
}

/* ---- the calls ----------------------------------------------------------------------- */

void
sm__front_init(sm__worker *w)
{
    sm__list_init(&w->front_hdr);
    sm__list_init(&w->front_msg);
    w->nfront = 0;
}

void
sm__front_start(sm__worker *w, int fd, bool tls)
{
    sm_server *srv = w->srv;
    bool px = srv->o.proxy_protocol;
    if (!px && (commit_at_accept(srv) || tls)) {
        sm_buf none;
        sm_buf_init(&none, 0);
        sm__tconn_spawn(w, fd, NULL, &none, false, tls);
        return;
    }
    sm__front *f = calloc(1, sizeof *f);
    sm__proxy_rd *rd = px ? malloc(sizeof *rd) : NULL;
    if (!f || (px && !rd)) {
        free(f);
        free(rd);
        close(fd);
        sm__count_close(srv, &w->ctrs, SM_CLOSE_OTHER);
        return;
    }
    f->w = w;
    f->tls = tls;
    f->last_rx = sm_loop_now(w->loop);
    sm_frame_decoder_init(&f->dec, srv->o.spec);
    uint64_t max = sm_frame_max(srv->o.spec);
    uint64_t limit = max > UINT64_MAX - FRONT_SLACK ? UINT64_MAX : max + FRONT_SLACK;
    sm_buf_init(&f->in, limit > SIZE_MAX ? SIZE_MAX : (size_t)limit);
    sm_io_init(w->loop, &f->io, fd, io_cb);
    f->io.data = f;
    int rc = sm_io_start(&f->io, SM_READ);
    if (rc < 0) {
        free(rd);
        free(f);
        close(fd);
        sm__count_close(srv, &w->ctrs, SM_CLOSE_OTHER);
        return;
    }
    w->nfront++;
    if (px) {
        f->rd = rd;
        sm__proxy_rd_init(rd);
        f->due = f->last_rx + proxy_ms(srv);
        sm__list_append(&w->front_hdr, &f->link);
    } else {
        start_message_phase(f);
    }
    arm(w);
}

/* Close every connection of list h that `pred` picks. */
static void
close_where(sm__node *h, bool (*pred)(sm__front *f, int64_t now), int64_t now, int reason,
            const char *why)
{
    sm__node *k = h->next;
    while (k != h) {
        sm__front *f = SM__CONTAINER(k, sm__front, link);
        k = k->next;
        if (pred(f, now)) fail(f, reason, why);
    }
}

/* Stopping: nothing of a message buffered and nothing received for
 * drain_quiet_ms (its bytes would have been read first: the socket is
 * watched). Such a client has nothing to be answered. */
static bool
is_quiet(sm__front *f, int64_t now)
{
    size_t have = f->rd ? f->rd->have : sm_buf_len(&f->in);
    return have == 0 && now - f->last_rx >= f->w->srv->o.drain_quiet_ms;
}

static bool
always(sm__front *f, int64_t now)
{
    (void)f;
    (void)now;
    return true;
}

void
sm__front_timer_cb(sm_timer *t)
{
    sm__worker *w = t->data;
    int64_t now = sm_loop_now(w->loop);
    /* Each list is in deadline order: stop at the first not yet due. */
    while (head_due(&w->front_hdr) <= now)
        fail(SM__CONTAINER(w->front_hdr.next, sm__front, link), -ETIMEDOUT,
             "no complete header in time");
    while (head_due(&w->front_msg) <= now)
        fail(SM__CONTAINER(w->front_msg.next, sm__front, link), -ETIMEDOUT, w->srv->fresh_detail);
    if (w->stopping) {
        close_where(&w->front_hdr, is_quiet, now, -ECANCELED, "closed by the server's stop");
        close_where(&w->front_msg, is_quiet, now, -ECANCELED, "closed by the server's stop");
    }
    arm(w);
    sm__tmodel_maybe_exit(w);
}

void
sm__front_stop(sm__worker *w)
{
    /* w->stopping is set: the timer's next run closes the quiet ones. */
    sm__front_timer_cb(&w->front_timer);
}

void
sm__front_close_all(sm__worker *w)
{
    close_where(&w->front_hdr, always, 0, -ECANCELED, "closed by the server's stop");
    close_where(&w->front_msg, always, 0, -ECANCELED, "closed by the server's stop");
    sm_timer_stop(&w->front_timer);
}
