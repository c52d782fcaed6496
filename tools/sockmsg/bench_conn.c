/* sockmsg bench — one connection's I/O: sending a window of messages,
 * reading and checking the replies. The hot path: no allocation, no
 * syscall per message, time read once per send and once per read. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sockmsg/error.h>

#include "bench_tls.h"
#include "bench_worker.h"

/* ---- errors ------------------------------------------------------------- */

void
bench_detail(worker *w, const conn *c, const char *fmt, ...)
{
    if (w->ndetails >= BENCH_DETAILS) return;
    char *out = w->details[w->ndetails++];
    int n = snprintf(out, BENCH_DETAIL_LEN, "connection %u: ", c->id + 1);
    if (n < 0 || n >= BENCH_DETAIL_LEN) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out + n, BENCH_DETAIL_LEN - (size_t)n, fmt, ap);
    va_end(ap);
    cli_log(w->cfg->cli, 1, "%s", out);
}

void
bench_count_error(worker *w, int kind)
{
    w->err[kind]++;
    if (w->pub_hist) {
        uint64_t total = 0;
        for (int k = 0; k < BENCH_ERR_KINDS; k++)
            total += w->err[k];
        atomic_store_explicit(&w->pub_errors, total, memory_order_relaxed);
    }
}

void
bench_worker_done(worker *w)
{
    w->t_done = now_ns();
    sm_timer_stop(&w->tick);
    sm_timer_stop(&w->end);
    sm_timer_stop(&w->start);
    sm_io_stop(&w->pace);
    sm_signal_stop(&w->sigint);
}

void
bench_conn_close(worker *w, conn *c)
{
    if (!c->open) return;
    sm_io_stop(&c->io);
    bench_tls_close(c->ssl);
    c->ssl = NULL;
    close(c->io.fd);
    c->open = false;
    if (--w->nopen == 0) bench_worker_done(w);
}

/* ---- sending ------------------------------------------------------------ */

/* The time latency is measured from: when the message starts out, or with
 * --rate when it was meant to (no coordinated omission). */
static inline int64_t
stamp(const worker *w, const conn *c, uint64_t s, int64_t now)
{
    return w->b->ns_per > 0 ? bench_intended(w->b, c, s) : now;
}

/* Small frames: copy the batch's frames from the prototypes (a run of
 * entries, wrapping around), put in the sequence numbers, one send. Messages
 * not yet started get their send time. *end is one past the last message. */
static ssize_t
send_copy(worker *w, conn *c, uint64_t lim, int64_t now, uint64_t *end)
{
    const bench_cfg *cfg = w->cfg;
    size_t f = cfg->frame_len, head = cfg->hdr.head_len;
    size_t n = SCRATCH / f;
    if (lim - c->sseq < n) n = (size_t)(lim - c->sseq);
    size_t t = bench_proto(c->sseq, c->id);
    for (size_t done = 0; done < n;) {
        size_t k = BENCH_PATTERN_SPAN - t < n - done ? BENCH_PATTERN_SPAN - t : n - done;
        memcpy(w->scratch + done * f, cfg->protos + t * f, k * f);
        done += k;
        t = 0;
    }
    uint64_t s = c->sseq;
    for (size_t i = 0; i < n; i++, s++) {
        if (i > 0 || c->soff == 0) c->ts[s & w->mask] = stamp(w, c, s, now);
        bench_seq_write(cfg, s, w->scratch + i * f + head);
    }
    *end = s;
    if (c->ssl) return bench_tls_send(c->ssl, w->scratch + c->soff, n * f - c->soff);
    return send(c->io.fd, w->scratch + c->soff, n * f - c->soff, MSG_NOSIGNAL);
}

static void
iov_add(struct iovec *iov, int *n, const void *p, size_t len)
{
    if (!len) return;
    iov[*n].iov_base = (void *)p;
    iov[*n].iov_len = len;
    (*n)++;
}

/* Large frames: gather them from the header, a sequence field and the
 * template, without copying the payloads. */
static ssize_t
send_iov(worker *w, conn *c, uint64_t lim, int64_t now, uint64_t *end)
{
    const bench_cfg *cfg = w->cfg;
    int n = 0;
    uint64_t s = c->sseq;
    for (unsigned k = 0; s < lim && k < IOV_MSGS; s++, k++) {
        if (s != c->sseq || c->soff == 0) c->ts[s & w->mask] = stamp(w, c, s, now);
        bench_seq_write(cfg, s, w->seqs[k]);
        iov_add(w->iov, &n, cfg->hdr.head, cfg->hdr.head_len);
        iov_add(w->iov, &n, w->seqs[k], cfg->seq_w);
        iov_add(w->iov, &n, bench_body(cfg, s, c->id), cfg->size - cfg->seq_w);
        iov_add(w->iov, &n, cfg->hdr.tail, cfg->hdr.tail_len);
    }
    *end = s;
    struct iovec *iov = w->iov;
    size_t skip = c->soff;
    while (skip && n > 0) {
        if (iov->iov_len > skip) {
            iov->iov_base = (uint8_t *)iov->iov_base + skip;
            iov->iov_len -= skip;
            break;
        }
        skip -= iov->iov_len;
        iov++;
        n--;
    }
    if (c->ssl) {
        /* OpenSSL takes one buffer: the first SCRATCH bytes, copied (a
         * retry after EAGAIN starts with the same bytes, as it must). */
        size_t len = 0;
        for (int i = 0; i < n && len < SCRATCH; i++) {
            size_t k = iov[i].iov_len < SCRATCH - len ? iov[i].iov_len : SCRATCH - len;
            memcpy(w->scratch + len, iov[i].iov_base, k);
            len += k;
        }
        return bench_tls_send(c->ssl, w->scratch, len);
    }
    struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)n};
    return sendmsg(c->io.fd, &mh, MSG_NOSIGNAL);
}

static void
want_write(conn *c, bool on)
{
    if (c->want_write == on) return;
    c->want_write = on;
    (void)sm_io_set_events(&c->io, on ? SM_READ | SM_WRITE : SM_READ);
}

/* Keep the connection's window full: depth messages in flight until m1,
 * then only finish a message already started. False if it closed. */
bool
bench_conn_send(worker *w, conn *c, int64_t now)
{
    const bench_cfg *cfg = w->cfg;
    bench *b = w->b;
    int64_t m1 = bench_m1(b);
    uint64_t started = c->sseq + (c->soff > 0), lim = c->rseq + (uint64_t)cfg->depth;
    if (b->ns_per > 0) {
        /* Open loop: what the schedule owes by now, and nothing meant for
         * m1 or later. A message late because the window was full goes as
         * soon as there is room; its latency still counts from its time. */
        uint64_t due = bench_due(b, c, now < m1 ? now : m1 - 1);
        if (due < lim) lim = due;
        if (w->draining) lim = started;
    } else if (w->draining || now >= m1) {
        lim = started;
    }
    if (lim < started) lim = started;
    bool idle = outstanding(c) == 0;
    while (c->sseq < lim) {
        uint64_t end;
        ssize_t n = cfg->protos ? send_copy(w, c, lim, now, &end) : send_iov(w, c, lim, now, &end);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) break;
            bench_count_error(w, BENCH_ERR_CLOSED);
            bench_detail(w, c, "sending: %s (%" PRIu64 " messages unanswered)", sm_strerror(-errno),
                         outstanding(c));
            bench_conn_close(w, c);
            return false;
        }
        size_t total = c->soff + (size_t)n;
        c->sseq += total / cfg->frame_len;
        c->soff = total % cfg->frame_len;
        if (c->sseq != end) break; /* the socket buffer is full */
    }
    uint64_t now_started = c->sseq + (c->soff > 0);
    /* --rate counts the window's messages by their times when it ends. */
    if (b->ns_per == 0 && now >= b->m0 && now < m1) w->sent += now_started - started;
    if (idle && now_started > started) c->since = now;
    want_write(c, c->sseq < lim);
    return true;
}

/* ---- receiving ---------------------------------------------------------- */

static void
mismatch(worker *w, conn *c, uint64_t s, const sm_frame_msg *m)
{
    const bench_cfg *cfg = w->cfg;
    bench_count_error(w, BENCH_ERR_MISMATCH);
    if (w->ndetails >= BENCH_DETAILS) return;
    if (m->len != cfg->size) {
        bench_detail(w, c, "reply %" PRIu64 " has %zu bytes, want %zu", s + 1, m->len, cfg->size);
        return;
    }
    if (cfg->type >= 0 && m->type != cfg->type) {
        bench_detail(w, c, "reply %" PRIu64 " has type 0x%02x, want 0x%02x", s + 1,
                     (unsigned)m->type, (unsigned)cfg->type);
        return;
    }
    uint8_t want[16];
    bench_seq_write(cfg, s, want);
    if (memcmp(want, m->data, cfg->seq_w) != 0) {
        uint64_t got;
        bool full = cfg->seq_w == (cfg->hex_seq ? 16u : 8u);
        if (full && bench_seq_read(cfg, m->data, &got))
            bench_detail(w, c,
                         "reply %" PRIu64 " is the echo of message %" PRIu64
                         " (lost, duplicated or reordered)",
                         s + 1, got + 1);
        else
            bench_detail(w, c, "reply %" PRIu64 " does not carry its sequence number", s + 1);
        return;
    }
    const uint8_t *body = bench_body(cfg, s, c->id), *data = m->data + cfg->seq_w;
    size_t i = 0, n = cfg->size - cfg->seq_w;
    while (i < n && data[i] == body[i])
        i++;
    if (i < n)
        bench_detail(w, c, "reply %" PRIu64 ": byte %zu is 0x%02x, want 0x%02x", s + 1,
                     cfg->seq_w + i, data[i], body[i]);
}

/* Equality of n bytes. Small payloads are compared inline: a call to memcmp
 * costs more than the comparison. */
static inline bool
same(const uint8_t *a, const uint8_t *b, size_t n)
{
    if (n > 128) return !memcmp(a, b, n);
    uint64_t diff = 0;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t x, y;
        memcpy(&x, a + i, 8);
        memcpy(&y, b + i, 8);
        diff |= x ^ y;
    }
    for (; i < n; i++)
        diff |= (uint64_t)(a[i] ^ b[i]);
    return diff == 0;
}

static bool
reply_ok(const bench_cfg *cfg, const conn *c, uint64_t s, const sm_frame_msg *m)
{
    if (m->len != cfg->size || (cfg->type >= 0 && m->type != cfg->type)) return false;
    if (cfg->hex_seq) {
        uint8_t want[16];
        bench_seq_write(cfg, s, want);
        if (memcmp(want, m->data, cfg->seq_w) != 0) return false;
    } else if (cfg->seq_w == 8) {
        uint64_t got;
        memcpy(&got, m->data, 8);
        if (le64toh(got) != s) return false;
    } else {
        for (size_t i = 0; i < cfg->seq_w; i++)
            if (m->data[i] != (uint8_t)(s >> (8 * i))) return false;
    }
    return same(m->data + cfg->seq_w, bench_body(cfg, s, c->id), cfg->size - cfg->seq_w);
}

static void
framing_error(worker *w, conn *c, const char *why)
{
    bench_count_error(w, BENCH_ERR_FRAMING);
    bench_detail(w, c, "%s (%" PRIu64 " messages unanswered)", why, outstanding(c));
    bench_conn_close(w, c);
}

/* A reply that is not the next one expected, intact. */
static void
bad_reply(worker *w, conn *c, const sm_frame_msg *m)
{
    if (c->rseq >= c->sseq) {
        bench_count_error(w, BENCH_ERR_MISMATCH);
        bench_detail(w, c, "a reply with no message outstanding (%" PRIu64 " sent)", c->sseq);
        return;
    }
    uint64_t s = c->rseq++;
    if (!m->data) { /* discarded as oversized (oversize=skip) */
        bench_count_error(w, BENCH_ERR_MISMATCH);
        bench_detail(w, c, "reply %" PRIu64 " is over the frame's max", s + 1);
        return;
    }
    mismatch(w, c, s, m);
}

/* Read what is there and check every whole reply. False if it closed. */
static bool
conn_read(worker *w, conn *c)
{
    const bench_cfg *cfg = w->cfg;
    if (c->rstart == c->rend) {
        c->rstart = c->rend = 0;
    } else if (w->rcap - c->rend < cfg->frame_len) {
        /* No room to finish the frame in progress: move it to the front. */
        memmove(c->rbuf, c->rbuf + c->rstart, c->rend - c->rstart);
        c->rend -= c->rstart;
        c->rstart = 0;
    }
    ssize_t n = c->ssl ? bench_tls_read(c->ssl, c->rbuf + c->rend, w->rcap - c->rend)
                       : read(c->io.fd, c->rbuf + c->rend, w->rcap - c->rend);
    if (n <= 0) {
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return true;
        bench_count_error(w, BENCH_ERR_CLOSED);
        if (n == 0)
            bench_detail(w, c, "closed by the server (%" PRIu64 " messages unanswered)",
                         outstanding(c));
        else
            bench_detail(w, c, "receiving: %s (%" PRIu64 " messages unanswered)",
                         sm_strerror(-errno), outstanding(c));
        bench_conn_close(w, c);
        return false;
    }
    int64_t now = now_ns();
    c->rend += (size_t)n;
    /* Which replies count: closed loop, all of those that arrive within
     * the window; --rate, those of messages meant for it, whenever they
     * arrive. As a range of send stamps: [lo, hi). */
    bench *b = w->b;
    int64_t lo = b->m0, hi = bench_m1(b);
    if (b->ns_per == 0) {
        bool in = now >= lo && now < hi;
        lo = in ? INT64_MIN : 0;
        hi = in ? INT64_MAX : 0;
    }
    /* The loop works on copies: sm_frame_decode is opaque to the compiler,
     * which would otherwise reload every field after each call. */
    bench_hist *hist = w->hist;
    const uint8_t *buf = c->rbuf;
    const int64_t *ts = c->ts;
    size_t pos = c->rstart, end = c->rend;
    uint64_t rseq = c->rseq, sseq = c->sseq, mask = w->mask, msgs = w->messages;
    ssize_t k;
    sm_frame_msg m;
    while ((k = sm_frame_decode(&c->dec, buf + pos, end - pos, &m)) > 0) {
        pos += (size_t)k;
        if (rseq < sseq && m.data && reply_ok(cfg, c, rseq, &m)) {
            int64_t t = ts[rseq & mask];
            if (t >= lo && t < hi) {
                msgs++;
                hist_record(hist, (uint64_t)(now - t));
            }
            rseq++;
            continue;
        }
        c->rseq = rseq;
        bad_reply(w, c, &m);
        rseq = c->rseq;
    }
    c->rstart = pos;
    if (rseq != c->rseq) c->since = now;
    c->rseq = rseq;
    bool published = msgs != w->messages;
    w->messages = msgs;
    if (k != -EAGAIN) {
        char why[BENCH_DETAIL_LEN];
        sm_frame_decoder_detail(&c->dec, why, sizeof why);
        framing_error(w, c, why);
        return false;
    }
    /* Every echo is frame_len bytes: as many without a whole frame mean the
     * reply is not one of ours (say, a corrupted length). */
    if (c->rend - c->rstart >= cfg->frame_len) {
        framing_error(w, c, "a reply longer than any message sent");
        return false;
    }
    if (w->pub_hist && published)
        atomic_store_explicit(&w->pub_messages, w->messages, memory_order_relaxed);
    return true;
}

void
bench_conn_io(sm_io *io, unsigned events)
{
    conn *c = io->data;
    worker *w = c->w;
    if ((events & SM_READ) && !conn_read(w, c)) return;
    /* TLS: records OpenSSL read ahead announce no event of their own. */
    while (c->ssl && bench_tls_pending(c->ssl))
        if (!conn_read(w, c)) return;
    int64_t now = now_ns();
    if (!bench_conn_send(w, c, now)) return;
    if ((w->draining || now >= bench_m1(w->b)) && outstanding(c) == 0) bench_conn_close(w, c);
}
