/* Framed streams: connecting from the loop (RFC 8305 address racing, as
 * sm_dial does it, with io watchers and a timer instead of poll), and
 * reconnecting with a jittered exponential backoff.
 *
 * One timer per dialed stream drives everything, by phase: START (resolve
 * and race), RACE (the next staggered attempt or the deadline), REPORT (tell
 * the user about a lost connection: dropped messages, on_reconnect; always
 * from the timer, never inside the call that lost it), BACKOFF (dial again). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"
#include "stream_internal.h"
#include "transport.h"

#define DEFAULT_CONNECT_MS  30000
#define DEFAULT_BACKOFF_MIN 100
#define DEFAULT_BACKOFF_MAX 30000

enum { P_IDLE, P_START, P_RACE, P_REPORT, P_BACKOFF };

typedef struct race {
    sm_addr addrs[SM__DIAL_MAX_ADDRS];
    sm_io att[SM__DIAL_MAX_ADDRS]; /* att[i] tries addrs[i]; fd -1 when idle */
    size_t n, next, npend;
    int64_t deadline; /* -1: none */
    int64_t next_at;
    int best, best_i;
} race;

struct sm__dial {
    sm_timer timer; /* data: the stream */
    int phase;
    int attempts;  /* consecutive failures */
    sm__wq *dropq; /* a lost connection's unsent messages, to report */
    int drop_reason;
    race *race;
    sm_addr *fixed; /* tests: addresses instead of an endpoint */
    size_t nfixed;
    sm_endpoint ep;
};

_Static_assert(_Alignof(sm__dial) <= 8, "sm__dial fits a stream's extra area");

/* ---- racing --------------------------------------------------------------- */

static void
note(race *r, int err, size_t i)
{
    if (sm__dial_err_rank(err) > sm__dial_err_rank(r->best)) {
        r->best = err;
        r->best_i = (int)i;
    }
}

static void attempt_cb(sm_io *a, unsigned events);

static void
attempt_close(sm_io *a)
{
    if (a->fd < 0) return;
    int fd = a->fd;
    sm_io_stop(a);
    close(fd);
    sm_io_init(a->loop, a, -1, attempt_cb);
}

static void
race_end(sm_stream *s)
{
    race *r = sm__dial_of(s)->race;
    if (!r) return;
    for (size_t i = 0; i < r->n; i++)
        attempt_close(&r->att[i]);
    free(r);
    sm__dial_of(s)->race = NULL;
}

static void race_step(sm_stream *s);

static void
race_fail(sm_stream *s)
{
    race *r = sm__dial_of(s)->race;
    int err = r->best ? r->best : -ETIMEDOUT;
    char where[128] = "?";
    if (r->best_i >= 0) {
        const sm_addr *a = &r->addrs[r->best_i];
        sm_addr_format((const struct sockaddr *)&a->ss, a->len, where, sizeof where);
    }
    race_end(s);
    sm__dial_of(s)->phase = P_IDLE;
    sm__stream_fail(s, err, "connect to %s: %s", where, sm_strerror(err));
}

static void
race_win(sm_stream *s, size_t i)
{
    sm__dial *d = sm__dial_of(s);
    sm_io *a = &d->race->att[i];
    int fd = a->fd;
    sm_io_stop(a);
    sm_io_init(a->loop, a, -1, attempt_cb); /* race_end must not close the winner */
    race_end(s);
    sm_timer_stop(&d->timer);
    d->phase = P_IDLE;
    int rc = sm__stream_connected(s, fd);
    if (rc < 0) {
        close(fd);
        sm__stream_fail(s, rc, "watching the socket: %s", sm_strerror(rc));
        return;
    }
    d->attempts = 0;
    if (s->opts->on_connect) s->opts->on_connect(s);
    if (sm__stream_live(s)) sm__stream_flush(s);
}

/* The verdict on an attempt the loop reported: 0 if connected, else -errno. */
static int
attempt_result(int fd, unsigned events)
{
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) return -errno;
    if (err) return -err;
    if (!(events & SM_WRITE)) return -ECONNABORTED;
    struct sockaddr_storage ss;
    len = sizeof ss;
    if (getpeername(fd, (struct sockaddr *)&ss, &len) < 0) return -errno;
    return 0;
}

static void
attempt_cb(sm_io *a, unsigned events)
{
    sm_stream *s = a->data;
    race *r = sm__dial_of(s)->race;
    size_t i = (size_t)(a - r->att);
    int rc = attempt_result(a->fd, events);
    if (rc == 0) {
        race_win(s, i);
        return;
    }
    attempt_close(a);
    r->npend--;
    note(r, rc, i);
    r->next_at = sm__now_ms(); /* a failure starts the next attempt at once */
    race_step(s);
}

/* 1: pending, 0: connected at once (a Unix socket), < 0: failed. */
static int
attempt_start(sm_stream *s, size_t i)
{
    race *r = sm__dial_of(s)->race;
    const sm_addr *a = &r->addrs[i];
    int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return -errno;
    /* Options before connect(): buffer sizes shape the handshake's window. */
    int rc = sm_sock_set_opts(fd, s->opts->sock);
    if (rc == 0 && connect(fd, (const struct sockaddr *)&a->ss, a->len) < 0)
        rc = errno == EINPROGRESS || errno == EINTR ? 1 : -errno;
    if (rc < 0) {
        close(fd);
        return rc;
    }
    sm_io *w = &r->att[i];
    sm_io_init(s->io.loop, w, fd, attempt_cb);
    w->data = s;
    if (rc == 1 && (rc = sm_io_start(w, SM_WRITE)) == 0) return 1;
    if (rc < 0) {
        sm_io_init(s->io.loop, w, -1, attempt_cb);
        close(fd);
    }
    return rc;
}

static void
race_step(sm_stream *s)
{
    sm__dial *d = sm__dial_of(s);
    race *r = d->race;
    int64_t now = sm__now_ms();
    bool expired = r->deadline >= 0 && now >= r->deadline;
    while (r->next < r->n && !expired && (r->npend == 0 || now >= r->next_at)) {
        size_t i = r->next++;
        int rc = attempt_start(s, i);
        if (rc == 0) {
            race_win(s, i);
            return;
        }
        if (rc == 1) {
            r->npend++;
            r->next_at = now + SM__DIAL_STAGGER_MS;
        } else {
            note(r, rc, i);
            r->next_at = now;
        }
    }
    if (expired && r->npend) note(r, -ETIMEDOUT, r->next ? r->next - 1 : 0);
    if (expired || (r->npend == 0 && r->next >= r->n)) {
        race_fail(s);
        return;
    }
    int64_t at = r->next < r->n ? r->next_at : INT64_MAX;
    if (r->deadline >= 0 && r->deadline < at) at = r->deadline;
    if (at == INT64_MAX) return; /* only pending attempts, no deadline */
    d->phase = P_RACE;
    /* The timer counts from the loop's cached time, which may be stale after a
     * slow resolution: firing early just means another look. */
    sm_timer_start(&d->timer, at > now ? (uint64_t)(at - now) : 0, 0);
}

static void
dial_begin(sm_stream *s)
{
    sm__dial *d = sm__dial_of(s);
    int to = s->opts->connect_timeout_ms;
    int64_t deadline = sm__deadline(to == 0 ? DEFAULT_CONNECT_MS : to);
    race *r = calloc(1, sizeof *r);
    if (!r) {
        sm__stream_fail(s, -ENOMEM, "connect: %s", sm_strerror(-ENOMEM));
        return;
    }
    for (size_t i = 0; i < SM__DIAL_MAX_ADDRS; i++)
        sm_io_init(s->io.loop, &r->att[i], -1, attempt_cb);
    r->deadline = deadline;
    r->best_i = -1;
    d->race = r;
    if (d->fixed) {
        r->n = SM__MIN(d->nfixed, (size_t)SM__DIAL_MAX_ADDRS);
        memcpy(r->addrs, d->fixed, r->n * sizeof *r->addrs);
    } else {
        char why[200] = "";
        int n = sm_endpoint_resolve(&d->ep, false, r->addrs, SM__DIAL_MAX_ADDRS, why, sizeof why);
        if (n < 0) {
            race_end(s);
            sm__stream_fail(s, n, "resolve %s: %s", d->ep.host, why[0] ? why : sm_strerror(n));
            return;
        }
        r->n = (size_t)n;
    }
    race_step(s);
}

/* ---- losing and reconnecting ---------------------------------------------- */

static int
backoff_ms(sm_stream *s, int attempt)
{
    const sm_stream_opts *o = s->opts;
    int64_t lo = o->reconnect_min_ms ? o->reconnect_min_ms : DEFAULT_BACKOFF_MIN;
    int64_t hi = o->reconnect_max_ms ? o->reconnect_max_ms : DEFAULT_BACKOFF_MAX;
    if (hi < lo) hi = lo;
    int64_t d = lo;
    for (int i = 1; i < attempt && d < hi; i++)
        d *= 2;
    if (d > hi) d = hi;
    /* "Equal jitter": half fixed, half random, so clients that lost the same
     * server spread out but none retries at once. */
    uint64_t *x = &sm__sl(s)->rng;
    *x ^= *x >> 12;
    *x ^= *x << 25;
    *x ^= *x >> 27;
    uint64_t rnd = *x * 0x2545f4914f6cdd1dULL;
    return (int)(d / 2 + (int64_t)(rnd % (uint64_t)(d / 2 + 1)));
}

bool
sm__dial_wants_retry(const sm_stream *s)
{
    return (s->flags & SM__S_DIALED) && s->opts->reconnect && !(s->flags & SM__S_USER_END);
}

void
sm__dial_lost(sm_stream *s)
{
    sm__dial *d = sm__dial_of(s);
    bool was_connected = s->flags & SM__S_CONNECTED;
    race_end(s);
    sm__stream_disconnect(s);
    if (was_connected && s->wq) {
        if (s->opts->unsent == SM_UNSENT_DROP && !d->dropq) {
            d->dropq = s->wq;
            d->drop_reason = s->reason;
            s->wq = NULL;
        } else {
            sm__wq_requeue(s);
        }
    }
    d->phase = P_REPORT;
    sm_timer_start(&d->timer, 0, 0);
}

void
sm__dial_report(sm_stream *s)
{
    sm__dial *d = sm__dial_of(s);
    if (!d || !d->dropq) return;
    sm__wq *q = d->dropq;
    d->dropq = NULL;
    sm__wq_report(s, q, d->drop_reason);
}

static void
report_phase(sm_stream *s)
{
    sm__dial *d = sm__dial_of(s);
    const sm_stream_opts *o = s->opts;
    /* No read batch can be looking at the old connection's buffer now. */
    free(s->rd);
    s->rd = NULL;
    if (d->dropq) {
        sm__dial_report(s);
        if (s->flags & SM__S_CLOSING) return;
        if ((s->flags & SM__S_ABOVE) && sm_stream_queued(s) <= sm__low(o)) {
            sm__stream_set_above(s, false);
            if (o->on_drain) o->on_drain(s);
            if (s->flags & SM__S_CLOSING) return;
        }
    }
    if (!sm__dial_wants_retry(s)) { /* shut down meanwhile: it ends here */
        sm__stream_close_final(s, s->reason);
        return;
    }
    d->attempts++;
    if (o->reconnect_max_attempts && d->attempts > o->reconnect_max_attempts) {
        sm__stream_close_final(s, s->reason);
        return;
    }
    int delay = backoff_ms(s, d->attempts);
    if (o->on_reconnect) {
        o->on_reconnect(s, s->reason, d->attempts, delay);
        if (s->flags & SM__S_CLOSING) return;
    }
    d->phase = P_BACKOFF;
    sm_timer_start(&d->timer, (uint64_t)delay, 0);
}

static void
dial_timer_cb(sm_timer *t)
{
    sm_stream *s = t->data;
    sm__dial *d = sm__dial_of(s);
    switch (d->phase) {
    case P_START:
    case P_BACKOFF:
        d->phase = P_IDLE;
        dial_begin(s);
        break;
    case P_RACE:
        race_step(s);
        break;
    case P_REPORT:
        d->phase = P_IDLE;
        report_phase(s);
        break;
    default:
        break;
    }
}

void
sm__dial_stop(sm_stream *s)
{
    sm__dial *d = sm__dial_of(s);
    race_end(s);
    sm_timer_stop(&d->timer);
    d->phase = P_IDLE;
}

void
sm__dial_free(sm_stream *s)
{
    sm__dial *d = sm__dial_of(s);
    if (!d) return;
    sm__dial_stop(s);
    /* d->dropq is NULL here: stream_closed reported it. d itself goes with
     * the stream's allocation. */
    free(d->fixed);
    d->fixed = NULL;
    sm__stream_set_dialed(s, false);
}

/* ---- public ------------------------------------------------------------------ */

static int
dial_new(sm_stream **out, sm_loop *loop, const sm_endpoint *ep, const sm_addr *addrs, size_t n,
         const sm_stream_opts *opts, void *data)
{
    if (!out || (!ep && !n)) return -EINVAL;
    int rc;
    /* The dialing state lives behind the stream, in the same allocation:
     * accepted streams pay nothing for it. */
    sm_stream *s = sm__stream_alloc(loop, opts, data, sizeof(sm__dial), &rc);
    if (!s) return rc;
    sm__dial *d = sm__stream_extra(s);
    sm_timer_init(loop, &d->timer, dial_timer_cb);
    d->timer.data = s;
    sm__stream_set_dialed(s, true);
    if (ep && ep->tls) sm__tp_set(s, SM__TP_TLS); /* transport_tls.c */
    if (ep) {
        d->ep = *ep;
    } else if (!(d->fixed = malloc(n * sizeof *addrs))) {
        sm__stream_free(s);
        return -ENOMEM;
    } else {
        memcpy(d->fixed, addrs, n * sizeof *addrs);
        d->nfixed = n;
    }
    /* Everything else happens from the loop: no callback inside this call. */
    d->phase = P_START;
    sm_timer_start(&d->timer, 0, 0); /* cannot fail: timers never allocate */
    *out = s;
    return 0;
}

int
sm_stream_dial_endpoint(sm_stream **out, sm_loop *loop, const sm_endpoint *ep,
                        const sm_stream_opts *opts, void *data)
{
    if (!ep) return -EINVAL;
    return dial_new(out, loop, ep, NULL, 0, opts, data);
}

int
sm_stream_dial(sm_stream **out, sm_loop *loop, const char *endpoint, const sm_stream_opts *opts,
               void *data, char *why, size_t why_len)
{
    if (why && why_len) why[0] = '\0';
    if (!endpoint) return -EINVAL;
    sm_endpoint ep;
    int rc = sm_endpoint_parse(&ep, endpoint, why, why_len);
    if (rc < 0) return rc;
    return dial_new(out, loop, &ep, NULL, 0, opts, data);
}

const sm_endpoint *
sm__dial_endpoint(const sm_stream *s)
{
    const sm__dial *d = sm__dial_of(s);
    return d && !d->fixed ? &d->ep : NULL;
}

int
sm__stream_dial_addrs(sm_stream **out, sm_loop *loop, const sm_addr *addrs, size_t n,
                      const sm_stream_opts *opts, void *data)
{
    if (!addrs || !n) return -EINVAL;
    return dial_new(out, loop, NULL, addrs, n, opts, data);
}
