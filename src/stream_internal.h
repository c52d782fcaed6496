/* The stream module's private state, shared by stream.c (lifecycle, the
 * flag word's transitions), stream_read.c (receive batches), stream_write.c
 * (queue, sending), stream_timeout.c (timing wheel), stream_dial.c
 * (connecting, reconnecting) and the transports under streams
 * (transport.h). Never installed. */
#ifndef SM_STREAM_INTERNAL_H
#define SM_STREAM_INTERNAL_H

#include "loop_internal.h"
#include "sockmsg/stream.h"
#include "stream_owner.h" /* what owners see: the size, extra areas, iteration */

/* ---- per-stream ------------------------------------------------------------ */

/* sm_stream.flags */
enum {
    SM__S_CONNECTED = 0x1, /* a socket is installed in io */
    SM__S_IN_READ = 0x2,   /* dispatching a read batch: sends wait for its end */
    SM__S_PAUSED = 0x4,    /* reading paused: ABOVE, with SM_READ_BP_PAUSE */
    SM__S_EOF = 0x8,       /* the peer's EOF was seen */
    SM__S_SHUT_REQ = 0x10, /* FIN once the queue is empty */
    SM__S_WR_DONE = 0x20,  /* FIN sent */
    SM__S_CLOSING = 0x40,  /* closed: on_close pending */
    SM__S_USER_END = 0x80, /* sm_stream_close/shutdown: never reconnect */
    SM__S_BLOCKED = 0x100, /* the kernel refused bytes: waiting for SM_WRITE */
    SM__S_DIALED = 0x200,  /* dialed: its sm__dial sits in the extra area */
    SM__S_STOPPED = 0x400, /* reading stopped by sm_stream_read_stop */
    SM__S_ABOVE = 0x800,   /* the queue passed high_water: on_drain owed at low_water */
    SM__S_RESPEC = 0x1000, /* sm_stream_set_spec: the decoder switches at the next boundary */
    SM__S_DETACH = 0x2000, /* sm_stream_detach: its sm__detach is s->sx->det */
};

/* What few streams need, allocated on first use (s->sx): why it failed,
 * and specs of its own (sm_stream_set_spec), own[rx_at] (0 or 2) to receive
 * and own[1]
 * to send with, each used when its flag says so. */
typedef struct sm__sx {
    char *detail;       /* why it failed, or NULL */
    sm_frame_spec *own; /* NULL, or two specs */
    bool own_rx, own_tx;
    /* The receiving spec's slot. A new one goes to the other slot: a
     * decoder still discarding an oversized message keeps reading the old
     * one until its switch is due. */
    uint8_t rx_at;
    struct sm__sfds *fds;   /* fd passing (stream_fds.c), on SM__TP_FDS only */
    struct sm__detach *det; /* a raw hand-off under way (stream_detach.c) */
} sm__sx;

/* The stream. Kept small on purpose: an idle connection is this struct and
 * nothing else (no read buffer, no queue, no timer). 112 bytes, so that 8
 * bytes of an owner's extra area (a server's peer) still fit the same
 * 128-byte malloc chunk (glibc: request + 8, rounded up to 16). State only
 * some streams have lives behind the struct, in the same allocation
 * (sm__stream_extra): a dialed stream's sm__dial, a server's peer. */
struct sm_stream {
    sm_io io; /* first: the io callback finds the stream; io.data is the user's */
    const sm_stream_opts *opts;
    struct sm__wq *wq; /* NULL while nothing is queued */
    struct sm__rd *rd; /* NULL at a message boundary */
    sm__sx *sx;        /* NULL while nothing of it was needed */
    /* The loop's timing wheel: a slot list (pprev points at whatever points
     * at us, so unlinking needs no slot index). */
    sm_stream *t_next;
    sm_stream **t_pprev;
    uint64_t rx_pos;       /* stream offset of the decoder at a boundary */
    uint32_t rx_ts, tx_ts; /* loop time (ms, wrapping) of the last read / write */
    int32_t reason;        /* why it closed or was lost */
    uint16_t flags;        /* written only by the transitions in stream.c */
    uint8_t tp;            /* the transport under it: an index into sm__transports */
    uint8_t tp_state;      /* the transport's own bits, written only by it */
};

typedef struct sm__dial sm__dial; /* stream_dial.c */

/* The bytes of an unfinished message, with the decoder that has seen them. */
typedef struct sm__rd {
    sm_frame_decoder dec;
    size_t len, cap;
    size_t want; /* the unfinished frame's whole size when known, else 0 */
    uint8_t data[];
} sm__rd;

/* ---- the write queue ------------------------------------------------------ */

enum { SM__WN_CHUNK = 1, SM__WN_TAKE = 2, SM__WN_REF = 3, SM__WN_PIN = 4, SM__WN_BLOCK = 5 };

typedef struct sm__wnode {
    struct sm__wnode *next;
    size_t len; /* bytes this node puts on the wire */
    uint8_t kind;
} sm__wnode;

/* Copied messages, whole frames back to back (a message never spans two). */
typedef struct sm__wchunk {
    sm__wnode n;
    size_t cap;
    uint8_t data[];
} sm__wchunk;

/* One message of the caller's buffers: iov = head, pieces, tail. */
typedef struct sm__wtake {
    sm__wnode n;
    sm_stream_free_cb free_cb;
    void *ctx;
    int iovcnt;
    uint8_t head[SM_FRAME_HEAD_MAX];
    uint8_t tail[SM_FRAME_DELIM_MAX + 1];
    struct iovec iov[];
} sm__wtake;

/* Received frames sent back as they are (sm_stream_send_frame): bytes of the
 * read batch's buffer, consecutive frames in one node. SM__WN_REF: written,
 * or copied into a chunk (sm__wq_unref), before that buffer is reused; the
 * nodes come from a small per-loop pool, since only the stream in its read
 * batch has any. SM__WN_PIN (a completion transport): bytes of a provided
 * buffer that stays pinned out of the kernel's ring until the node is
 * written or dropped (sm__wq_pin_put); the nodes are kept per loop too, at
 * most SM__PIN_NODES of them. */
typedef struct sm__wref {
    sm__wnode n;
    const uint8_t *p;
    unsigned bid; /* SM__WN_PIN: the buffer pinned */
} sm__wref;

/* A received frame's block (s->rd) handed to the queue whole: the reply to
 * the one frame it holds (sm__rx_block_give). The node overlays the
 * block's header (sm__rd's decoder state, no longer needed), so it is the
 * allocation; written, it becomes one of the loop's spare blocks. Starts
 * like sm__wref (the bytes are at p). */
typedef struct sm__wblock {
    sm__wnode n;
    const uint8_t *p;
    size_t cap; /* the block's capacity behind the header */
} sm__wblock;

typedef struct sm__link {
    struct sm__link *next, *prev;
} sm__link;

/* sm__wq.flags */
enum {
    SM__WQ_LISTED = 0x1,    /* on the loop's flush list */
    SM__WQ_ABOVE = 0x2,     /* passed high_water: on_drain owed */
    SM__WQ_PING_HEAD = 0x4, /* the head chunk starts with a heartbeat ping */
};

/* Allocated with the first queued message, freed when the queue empties. */
typedef struct sm__wq {
    sm__link link; /* first: the flush list links queues */
    sm_stream *s;
    sm__wnode *head, *tail;
    size_t bytes;      /* unsent bytes */
    size_t off;        /* bytes of head already written */
    size_t ping_end;   /* SM__WQ_PING_HEAD: the ping is head chunk's data[0..ping_end) */
    size_t chunk_next; /* capacity for the next chunk (grows geometrically) */
    uint32_t progress; /* loop time of the last write progress while blocked */
    uint8_t flags;
} sm__wq;

/* ---- per-loop --------------------------------------------------------------- */

#define SM__RBUF_SIZE   ((size_t)256 << 10)
#define SM__REFS        16  /* the pool of sm__wref nodes */
#define SM__PIN_NODES   512 /* pinned references a loop may have at once */
#define SM__WHEEL_SLOTS 512 /* x SM_STREAM_TIMER_RES_MS = a 4 s horizon */
#define SM__WHEEL_WORDS (SM__WHEEL_SLOTS / 64)

/* State shared by the streams of one loop, hung on the loop (see
 * loop_internal.h), created by the first stream and freed with the loop. */
typedef struct sm__stream_loop {
    sm_loop *loop;
    uint8_t *rbuf; /* the shared read buffer, allocated on first read */
    sm_defer flush;
    sm__link flush_list; /* queues to write at the end of the iteration */
    uint64_t rng;        /* reconnect jitter */
    /* The read batch being delivered: frames of its stream inside
     * [zc_lo, zc_hi) may be queued by reference (zc_s NULL: none). */
    sm_stream *zc_s;
    uintptr_t zc_lo, zc_hi;
    /* Where a frame must start to join zc_s's tail reference node at once
     * (0: none), and how many bytes may join so (buffer end, high_water). */
    uintptr_t zc_next;
    size_t zc_room;
    /* The copying fast path (frames not queued by reference: outside a
     * batch's buffer, or on a completion transport): cp_s's tail chunk
     * takes up to cp_room more bytes of frames of at most cp_max payload
     * bytes at once (NULL: none). Ends with the zero-copy one. */
    sm_stream *cp_s;
    size_t cp_room;
    uint64_t cp_max;
    sm__wq *spare_wq; /* emptied queues kept for the next ones (linked through link.next) */
    struct sm__wnode *spare_chunks; /* written chunks kept for reuse (stream_write.c) */
    size_t spare_bytes;             /* their capacity in all */
    sm__wnode *spare_blocks;        /* written blocks kept for the next frame (stream_write.c) */
    size_t block_bytes;             /* their capacity in all */
    struct sm__tpu *tpu;            /* the completion transport's state (io_uring), or NULL */
    sm__wref *ref_free;             /* the free nodes of refs (linked through n.next) */
    sm__wref *pin_free;             /* written SM__WN_PIN nodes, kept for reuse */
    /* A completion transport's batch over a provided buffer: frames inside
     * [pin_lo, pin_hi) may be queued by reference with buffer pin_bid
     * pinned (pin_hi 0: none). zc_pin: the batch running is such a one. */
    uintptr_t pin_lo, pin_hi;
    unsigned pin_bid;
    unsigned nspare_wq, nspare, nblocks; /* how many spare queues, chunks, blocks */
    unsigned refs_used;
    unsigned pin_nodes; /* SM__WN_PIN nodes allocated (queued or kept) */
    bool zc_pin;
    bool zc_block; /* the batch's buffer is its stream's block (s->rd) */
    sm__wref refs[SM__REFS];
    /* The timing wheel: slot i holds the streams whose next check falls in a
     * tick (time / SM_STREAM_TIMER_RES_MS) congruent to i. */
    sm_timer timer;
    int64_t tick;       /* the next tick to process */
    int64_t timer_tick; /* the tick the timer is armed for, or INT64_MAX */
    size_t timed;       /* streams in the wheel */
    bool in_cb;         /* the wheel's callback is running: arm once at its end */
    uint64_t used[SM__WHEEL_WORDS];
    sm_stream *slots[SM__WHEEL_SLOTS];
    /* transport_tls.c: the TLS streams' state by socket fd, and the session
     * sm_stream_new_tls hands to the transport's open. */
    void **tls;
    size_t tls_cap;
    struct sm__tls *tls_pending;
    int tls_pending_fd;
} sm__stream_loop;

/* End both fast paths of sm_stream_send_frame: the queue's tail or a
 * stream's state changed. */
static inline void
sm__fast_end(sm__stream_loop *sl)
{
    sl->zc_next = 0;
    sl->cp_s = NULL;
}

/* The loop's stream state, created on first use (NULL: out of memory). */
sm__stream_loop *sm__stream_loop_get(sm_loop *loop);

/* ---- cross-file internals ------------------------------------------------- */

/* A dialed stream's dialing state, or NULL. */
static inline sm__dial *
sm__dial_of(const sm_stream *s)
{
    return (s->flags & SM__S_DIALED) ? (sm__dial *)(void *)((char *)s + sizeof *s) : NULL;
}

/* The loop's stream state; every stream's loop has one. */
static inline sm__stream_loop *
sm__sl(const sm_stream *s)
{
    return (sm__stream_loop *)s->io.loop->streams;
}

/* Connected and not closing: I/O may go on. */
static inline bool
sm__stream_live(const sm_stream *s)
{
    return (s->flags & (SM__S_CONNECTED | SM__S_CLOSING)) == SM__S_CONNECTED;
}

static inline uint32_t
sm__now32(const sm_stream *s)
{
    return (uint32_t)sm_loop_now(s->io.loop);
}

/* Reading wanted: not paused by the queue (SM_READ_BP_PAUSE), not stopped
 * by the user. */
static inline bool
sm__stream_reading(const sm_stream *s)
{
    return !(s->flags & (SM__S_PAUSED | SM__S_STOPPED));
}

/* Bytes arrived (the read and idle timeouts count from here). */
static inline void
sm__stream_note_rx(sm_stream *s)
{
    s->rx_ts = sm__now32(s);
}

/* Effective option values (all-zero means defaults). */
#define SM__DEFAULT_HIGH   ((size_t)1 << 20)
#define SM__DEFAULT_CAP    (((size_t)16 << 20) + ((size_t)64 << 10))
#define SM__DEFAULT_BUDGET ((size_t)256 << 10)

static inline size_t
sm__high(const sm_stream_opts *o)
{
    return o->high_water ? o->high_water : SM__DEFAULT_HIGH;
}

static inline size_t
sm__low(const sm_stream_opts *o)
{
    return o->low_water ? o->low_water : sm__high(o) / 4;
}

static inline size_t
sm__cap(const sm_stream_opts *o)
{
    if (o->max_queued) return o->max_queued;
    return sm__high(o) > SM__DEFAULT_CAP ? sm__high(o) : SM__DEFAULT_CAP;
}

static inline size_t
sm__budget(const sm_stream_opts *o)
{
    return o->read_budget ? o->read_budget : SM__DEFAULT_BUDGET;
}

/* stream.c: the state transitions, the only writers of sm_stream.flags.
 * Each also ends sm_stream_send_frame's zero-copy fast path. */
void sm__stream_set_above(sm_stream *s, bool on);   /* the queue passed high_water */
void sm__stream_set_blocked(sm_stream *s, bool on); /* the kernel refused bytes */
void sm__stream_set_eof(sm_stream *s);              /* the peer's EOF */
void sm__stream_shut_req(sm_stream *s, bool user);  /* FIN once the queue is empty */
void sm__stream_set_wr_done(sm_stream *s);          /* FIN sent */
void sm__stream_set_dialed(sm_stream *s, bool on);  /* sm__dial in the extra area */

/* A read batch runs (sends wait for its end). Per batch, so inline; it
 * leaves the zero-copy fast path alone: deliver_in brackets that. */
/* The spec sending uses when the stream has none of its own. */
static inline const sm_frame_spec *
sm__opts_tx_spec(const sm_stream_opts *o)
{
    return o->send_spec ? o->send_spec : o->spec;
}

/* The specs the stream receives and sends with now. */
static inline const sm_frame_spec *
sm__rx_spec(const sm_stream *s)
{
    return s->sx && s->sx->own_rx ? &s->sx->own[s->sx->rx_at] : s->opts->spec;
}

static inline const sm_frame_spec *
sm__tx_spec(const sm_stream *s)
{
    return s->sx && s->sx->own_tx ? &s->sx->own[1] : sm__opts_tx_spec(s->opts);
}

/* A switch asked by sm_stream_set_spec is due: make d decode with the
 * stream's receive spec from here on, when d is at a boundary (not while
 * it discards an oversized message: then at the end of that). Returns
 * whether it switched. */
bool sm__stream_respec(sm_stream *s, sm_frame_decoder *d);

static inline void
sm__stream_set_in_read(sm_stream *s, bool on)
{
    s->flags = (uint16_t)(on ? s->flags | SM__S_IN_READ : s->flags & ~SM__S_IN_READ);
}

/* stream.c */
void sm__stream_fail(sm_stream *s, int reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void sm__stream_close_final(sm_stream *s, int reason);
void sm__stream_update_io(sm_stream *s);
void sm__stream_set_detail(sm_stream *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int sm__stream_opts_check(const sm_stream_opts *o);
/* A stream with `extra` zeroed bytes behind it (sm__stream_extra). */
sm_stream *sm__stream_alloc(sm_loop *loop, const sm_stream_opts *opts, void *data, size_t extra,
                            int *err);
/* Streams without a list of them: the connected stream whose socket is fd
 * on loop, or NULL; and the connected stream with the lowest socket number
 * >= *fd (stored back in *fd), or NULL past the last. Found through the
 * loop's table of io watchers, so iterating costs a look at every fd
 * number below the highest one the loop watches. A stream closed during
 * an iteration is simply not found. */
sm_stream *sm__stream_at(const sm_loop *loop, int fd);
sm_stream *sm__stream_next(const sm_loop *loop, int *fd);
int sm__stream_connected(sm_stream *s, int fd);
void sm__stream_disconnect(sm_stream *s);
void sm__stream_free(sm_stream *s);

/* stream_detach.c: a raw hand-off (sm_stream_detach). The queue went
 * out (kick); the transport holds these bytes, older than none it gives
 * later (keep: 0 or -ENOMEM); it let go of fd (-1: it could not) and
 * nothing of it is in flight, err says whether the connection broke
 * meanwhile (quiet); the stream is closing: report to the caller, before
 * on_close (report); free what is left (free). */
void sm__detach_kick(sm_stream *s);
bool sm__detach_quiescing(const sm_stream *s);
int sm__detach_keep(sm_stream *s, const uint8_t *p, size_t n);
void sm__detach_quiet(sm_stream *s, int fd, int err);
void sm__detach_report(sm_stream *s);
void sm__detach_free(sm_stream *s);
/* stream.c: switch to raw receiving (an eof spec, reading stopped) and mark
 * the stream detaching. 0, -EBUSY (discarding an oversized message) or
 * -ENOMEM. */
int sm__stream_begin_detach(sm_stream *s);

/* stream_write.c, stream_unsent.c */
void sm__stream_flush(sm_stream *s);
void sm__stream_kick(sm_stream *s); /* write at the end of the iteration */
int sm__stream_send_ping(sm_stream *s);
void sm__wq_unlist(sm__wq *q);
/* Copy what s's queue holds by reference into chunks of its own (the read
 * buffer is about to be reused). 0, or -ENOMEM with those frames dropped. */
int sm__wq_unref(sm_stream *s);
/* stream_read.c: s->rd, holding exactly the frame a reply sends, leaves the
 * reader (which takes a new block for the next frame) as a queue node
 * for len bytes. */
sm__wblock *sm__rx_block_give(sm_stream *s, size_t len);
/* stream_write.c: a spare block with room for at least cap bytes behind its
 * header (*got: how many), or NULL; written blocks go back (block_put). */
void *sm__wq_block_take(sm__stream_loop *sl, size_t cap, size_t *got);
/* A pinned reference written or dropped: its pin goes (the buffer may go
 * back to the kernel), the node is kept for reuse. */
void sm__wq_pin_put(sm__stream_loop *sl, sm__wref *r);
/* Where the frame that covers byte `off` of p[0..len) (whole frames back
 * to back, as s's spec frames them) starts. */
size_t sm__frames_start(const sm_stream *s, const uint8_t *p, size_t len, size_t off);
void sm__wq_free_if_empty(sm_stream *s);
void sm__wq_requeue(sm_stream *s);
void sm__wq_report(sm_stream *s, sm__wq *q, int reason);
void sm__stream_flush_all(sm_defer *d);

/* stream_timeout.c */
void sm__timeouts_arm(sm_stream *s);
void sm__timeouts_remove(sm_stream *s);
bool sm__timeouts_used(const sm_stream_opts *o);
void sm__wheel_cb(sm_timer *t);

/* stream_dial.c */
void sm__dial_lost(sm_stream *s);
bool sm__dial_wants_retry(const sm_stream *s);
void sm__dial_stop(sm_stream *s);   /* closing: no more attempts or timers */
void sm__dial_report(sm_stream *s); /* report a lost connection's dropped messages */
void sm__dial_free(sm_stream *s);
/* The endpoint a dialed stream dials (NULL: a fixed address list). */
const sm_endpoint *sm__dial_endpoint(const sm_stream *s);
/* Tests: dial a fixed address list (no resolution), raced as sm_stream_dial
 * races a resolved name. */
int sm__stream_dial_addrs(sm_stream **out, sm_loop *loop, const sm_addr *addrs, size_t n,
                          const sm_stream_opts *opts, void *data);

#endif
