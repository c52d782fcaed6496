/* The server module's private state. Never installed. Its files:
 *   server.c           lifecycle (new, start, wait, stop, free), counters,
 *                      stats, broadcasts
 *   server_opts.c      checking options, defaults
 *   server_listen.c    binding and closing the listeners
 *   server_worker.c    a worker thread's life (both models): setup, start
 *                      gate, running its loop, giving up on a failing one
 *   server_accept.c    accepting under limits, accepted sockets' options
 *   server_proxy.c     PROXY headers: reading them, the loop model's
 *                      handshakes
 *   server_peer.c      the sm_peer_* calls (through sm__peer_ops), close
 *                      kinds, the peer log lines
 *   server_loop.c      the loop model (sm__lmodel): hand-offs, inbox,
 *                      broadcasts, stopping
 *   server_lpeer.c     the loop model's peers (stream + tag, stream_owner.h)
 *   server_thread.c    the thread model (sm__tmodel): the acceptor, stopping
 *   server_front.c     the thread model's front: new connections read on the
 *                      acceptor's loop until worth a thread
 *   server_tconn.c     the thread model's peers and connection threads
 *   server_handlers.c  the built-in handlers
 *   server_fds.c       fds and credentials on peers (unix.h, opts.max_fds)
 * What differs by model sits behind two tables: sm__model (chosen once per
 * server) and sm__peer_ops (chosen by a peer's tag). */
#ifndef SM_SERVER_INTERNAL_H
#define SM_SERVER_INTERNAL_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>

#include "sockmsg/buf.h"
#include "sockmsg/conn.h"
#include "sockmsg/proxy.h"
#include "sockmsg/server.h"
#include "sockmsg/stream.h"
#include "sockmsg/unix.h"

#define SM__ACCEPT_BATCH     64  /* connections accepted per readiness event */
#define SM__EMFILE_PAUSE_MS  100 /* accepting pauses this long without a spare fd */
#define SM__PROXY_DEFAULT_MS 10000
#define SM__MAX_LOOPS        64
/* A worker whose sm_loop_run fails this many times in a row gives up (see
 * sm__worker_run); a run that lasted SM__RUN_FAIL_RESET_MS before failing
 * starts the count again. */
#define SM__RUN_FAILS_MAX     8
#define SM__RUN_FAIL_RESET_MS 1000

typedef struct sm__worker sm__worker;

/* Counters. Written with relaxed atomic adds (uncontended in the loop model:
 * each worker has its own), read by sm_server_stats from any thread.
 * msgs_echoed and bytes_echoed count the loop model's built-in echo (a
 * message in and its reply queued, one update for both): sm_server_stats
 * adds them to the in and the out counters. */
typedef struct sm__ctrs {
    _Atomic uint64_t accepted, opened, msgs_in, msgs_out, bytes_in, bytes_out, accept_errors;
    _Atomic uint64_t msgs_echoed, bytes_echoed;
    _Atomic uint64_t closes[SM_CLOSE_KINDS];
} sm__ctrs;

static inline void
sm__ctr_add(_Atomic uint64_t *c, uint64_t n)
{
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

/* For a counter only its worker's loop thread writes (per message in the
 * loop model): a plain load and store instead of a locked add; readers on
 * other threads still see whole values. */
static inline void
sm__ctr_add_own(_Atomic uint64_t *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

/* One listening socket watched by one worker. */
typedef struct sm__listener {
    sm_io io;
    sm__worker *w;
    int *slot;     /* its entry in sm_server.fds, set to -1 when closed */
    int ep;        /* index into sm_server.eps */
    bool dispatch; /* hand accepted fds to the workers in turn */
} sm__listener;

/* A message for sm_server_broadcast, shared by the loops it is handed to. */
typedef struct sm__bmsg {
    atomic_int refs;
    int type;
    uint64_t from; /* the sender's peer id: never sent back to it */
    size_t len;
    uint8_t data[];
} sm__bmsg;

/* An fd handed to another worker, with the endpoint it came from. */
typedef struct sm__handoff {
    int fd;
    int ep;
} sm__handoff;

/* A growable array of fds or message pointers (a worker's inbox). */
typedef struct sm__vec {
    void *items;
    size_t n, cap;
} sm__vec;
int sm__vec_push(sm__vec *v, const void *item, size_t size);

/* An intrusive list of peers (or handshakes): a head whose next/prev point
 * at itself when empty. */
typedef struct sm__node {
    struct sm__node *next, *prev;
} sm__node;

static inline void
sm__list_init(sm__node *h)
{
    h->next = h->prev = h;
}

static inline bool
sm__list_empty(const sm__node *h)
{
    return h->next == h;
}

static inline void
sm__list_append(sm__node *h, sm__node *n)
{
    n->prev = h->prev;
    n->next = h;
    h->prev->next = n;
    h->prev = n;
}

static inline void
sm__list_remove(sm__node *n)
{
    if (!n->next) return;
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->next = n->prev = NULL;
}

#define SM__CONTAINER(ptr, type, field) ((type *)(void *)((char *)(ptr)-offsetof(type, field)))

/* Reading a PROXY header without reading past it. */
typedef struct sm__proxy_rd {
    uint8_t *buf; /* small, or a heap buffer of SM_PROXY_V2_MAX */
    size_t have, cap;
    uint8_t small[128];
} sm__proxy_rd;

/* The addresses a PROXY header named. */
typedef struct sm__proxied {
    sm_addr src, dst;
} sm__proxied;

/* A peer's tag: its id above 8 bits of flags, the first 8 bytes of every
 * peer of both models (read with sm__peer_tag). */
enum {
    SM__P_LOOP = 0x1,      /* a loop-model peer (below); else a struct sm_peer */
    SM__P_PX = 0x2,        /* loop: a PROXY address pointer follows the tag */
    SM__P_FRESH = 0x4,     /* loop: no whole message yet (first-message timeout) */
    SM__P_SHUT = 0x8,      /* loop: the server half-closed it (drain or sm_peer_shutdown) */
    SM__P_CLOSING = 0x10,  /* loop: sm_peer_close or a server close: no more handlers */
    SM__P_TIMEDOUT = 0x20, /* loop: closed by the first-message timeout */
    SM__P_FORCED = 0x40,   /* loop: closed by the stop's deadline or a forced stop */
    SM__P_MID = 0x80,      /* loop: mid-message at the last message-deadline sweep */
};
#define SM__P_ID_SHIFT 8 /* ids have 56 bits: no server lives to wrap them */

/* A peer of the thread model (first in its record, sm__tpeer).
 *
 * A peer of the loop model is no struct sm_peer: it is the 8-byte tag
 * (with SM__P_LOOP set), followed by a pointer to its PROXY addresses when
 * SM__P_PX is set, in the extra area behind its sm_stream, in the stream's
 * own allocation (sm__stream_new_take_extra); the stream's data slot holds
 * the handlers' sm_peer_get_data, the worker is the owner of the stream's
 * options (sm__stream_owner: the worker's sopts) and the server the
 * worker's. So an idle connection is one 128-byte malloc chunk. */
struct sm_peer {
    uint64_t tag; /* first: see above */
    sm_server *srv;
    void *data;
    sm__node link; /* the server's registry */
    sm__proxied *px;
    int fd;       /* the socket (the connection's) */
    int override; /* a reason that replaces SM_ERR_CLOSED */
    const char *override_detail;
};

static inline uint64_t
sm__peer_tag(const sm_peer *p)
{
    return *(const uint64_t *)(const void *)p;
}

static inline uint64_t
sm__peer_id(const sm_peer *p)
{
    return sm__peer_tag(p) >> SM__P_ID_SHIFT;
}

/* ---- the two execution models ----------------------------------------------- */

/* What an execution model does its own way (server_loop.c: sm__lmodel,
 * server_thread.c: sm__tmodel), chosen once by sm_server_new from
 * opts.model, as loop_poller.h chooses a backend. */
typedef struct sm__model {
    /* The model's defaults and limits in srv->o and srv->limit; its
     * workers (srv->nw) and listening sets (srv->nfd_sets). Before the
     * listeners are bound. */
    int (*configure)(sm_server *srv, char *why, size_t why_len);
    /* The model's state and watchers, once the workers' loops exist. */
    int (*init)(sm_server *srv, char *why, size_t why_len);
    void *(*main)(void *worker); /* a worker thread's body */
    sm_wakeup_cb wakeup;         /* every worker loop's on_wakeup */
    /* sm_server_broadcast, its arguments checked (type -1 without a type: spec). */
    int (*broadcast)(sm_server *srv, const sm_peer *except, int type, const void *msg, size_t len);
    /* sm_server_stop_now, srv->forced set: what closes connections beyond
     * waking the workers. */
    void (*force)(sm_server *srv);
    /* The calling thread is one of the model's own besides the workers
     * (a connection thread): sm_server_wait would deadlock there. */
    bool (*is_own_thread)(sm_server *srv);
    /* On w's thread, after its loop failed for good (the server is
     * stopping): end w's part without running its loop: close its
     * listeners, close its connections at once, set w->done. */
    void (*abandon)(sm__worker *w);
} sm__model;

extern const sm__model sm__lmodel;
extern const sm__model sm__tmodel;

/* The sm_peer_* calls, per representation, arguments checked. */
typedef struct sm__peer_ops {
    int (*send)(sm_peer *p, int type, const struct iovec *iov, int iovcnt);
    int (*send_frame)(sm_peer *p, const sm_frame_msg *msg);
    int (*send_hdr)(sm_peer *p, const void *hdr, size_t hdr_len, const void *msg, size_t len);
    int (*set_spec)(sm_peer *p, const sm_frame_spec *rx, const sm_frame_spec *tx);
    int (*shutdown)(sm_peer *p);
    int (*close)(sm_peer *p);
    int (*addr)(const sm_peer *p, sm_addr *out, bool peer); /* peer: its own, else ours */
    void *(*get_data)(const sm_peer *p);
    void (*set_data)(sm_peer *p, void *data);
    sm_server *(*server)(const sm_peer *p);
    const char *(*detail)(const sm_peer *p);
    /* server_fds.c: fds and credentials (unix.h), arguments checked. */
    int (*send_fds)(sm_peer *p, const void *msg, size_t len, const int *fds, int nfds);
    int (*take_fds)(sm_peer *p, int *fds, int cap);
    int (*cred)(const sm_peer *p, sm_cred *out);
    int (*msg_cred)(sm_peer *p, sm_cred *out);
    /* A raw hand-off (server_detach.c); NULL: not in this model. */
    int (*detach)(sm_peer *p, sm_peer_detach_cb cb, void *arg);
} sm__peer_ops;

extern const sm__peer_ops sm__lpeer_ops;
extern const sm__peer_ops sm__tpeer_ops;
/* Indexed by a tag's SM__P_LOOP bit: {&sm__tpeer_ops, &sm__lpeer_ops}. */
extern const sm__peer_ops *const sm__peer_ops_by_tag[2];

static inline const sm__peer_ops *
sm__peer_ops_of(const sm_peer *p)
{
    return sm__peer_ops_by_tag[sm__peer_tag(p) & SM__P_LOOP];
}

/* Connections waiting for their first message (loop model), oldest first:
 * a queue of (due, id, fd) rather than a list through the peers, so a peer
 * carries nothing for it. Entries are removed early only from the head
 * (a first message drops the head entries no longer waiting, see
 * fresh_trim): when one comes due, the stream now on that fd is closed only
 * if it is still the same peer (same id) and still has not sent a whole
 * message. */
typedef struct sm__fresh {
    int64_t due;
    uint64_t id;
    int fd;
} sm__fresh;

typedef struct sm__fresh_q {
    sm__fresh *items; /* a ring of cap entries (a power of 2), freed when empty */
    size_t head, n, cap;
} sm__fresh_q;

/* A connection whose PROXY header is being read (loop model). */
typedef struct sm__pending {
    sm_io io;
    sm__worker *w;
    sm__node link; /* the worker's pending list, oldest first */
    int64_t due;
    sm__proxy_rd rd;
    bool tls; /* a tls:// listener's: TLS starts after the header */
} sm__pending;

struct sm__worker {
    sm_server *srv;
    int index;
    sm_loop *loop;
    pthread_t thread;
    bool started;

    sm__listener *lst;
    int nlst;
    int spare_fd;       /* reserve for EMFILE, or -1 */
    sm_timer pause;     /* EMFILE without a spare: accepting resumes */
    sm_timer keepalive; /* keeps the loop running while it has nothing else */
    sm_timer fresh_timer;
    sm_timer pend_timer;
    sm_timer drain_tick;
    sm_timer deadline;
    sm_timer front_timer; /* thread model: the front's deadlines */
    sm_timer msg_sweep;   /* loop model: message deadlines (message_timeout_ms) */
    sm_signal sig[2];
    int signals_seen;

    bool failed; /* its loop failed for good (sm__worker_run gave up) */
    /* Loop model: the options of every stream the worker creates, which
     * also make them its own (stream_owner.h): a stream's opts pointer
     * leads back to its worker, and its loop's other streams are not
     * peers. */
    sm_stream_opts sopts;
    sm__fresh_q fresh; /* loop model; the peers themselves are the loop's streams */
    sm__node pending;
    atomic_size_t npeers;
    size_t npending;
    unsigned rr;        /* dispatch: the next worker */
    uint64_t wake_mask; /* dispatch: workers handed fds in this batch */
    bool done;          /* the loop may end */

    /* The inbox: fds handed over by worker 0 and broadcast messages. */
    pthread_mutex_t lock;
    pthread_cond_t done_cond;    /* thread model: a connection thread is on done */
    sm__vec in_fds, in_msgs;     /* under lock */
    sm__vec work_fds, work_msgs; /* the loop thread's, swapped with the above */
    sm__node joinable;           /* thread model, under lock: finished threads' peers to join */
    /* Thread model: the front's connections (server_front.c), reading the
     * PROXY header, then the first message; each oldest first. */
    sm__node front_hdr, front_msg;
    size_t nfront;
    bool exited; /* under lock: post nothing more */

    bool stopping, forced;

    /* Warnings at most once a second, with a count of those not logged. */
    int64_t refuse_logged_ms;
    uint64_t refuse_unlogged;
    int64_t emfile_logged_ms;
    uint64_t emfile_unlogged;
    int64_t sockopt_logged_ms;
    uint64_t sockopt_unlogged;

    sm__ctrs ctrs;
};

typedef struct sm__ep {
    sm_endpoint ep;    /* as configured */
    sm_endpoint bound; /* port 0 resolved */
    bool is_unix;
    dev_t dev; /* a Unix path: the socket file we made, removed at free */
    ino_t ino;
} sm__ep;

struct sm_server {
    sm_server_opts o; /* effective values */
    /* Copies of what opts pointed at: nothing the caller passed must outlive
     * sm_server_new. */
    sm_frame_spec spec;
    sm_frame_spec send_spec; /* when the opts have one */
    sm_sock_opts sock;
    void *ping_copy;
    char **listen_copy;

    sm__ep *eps;
    int neps;
    int *fds; /* listening fds: neps x nfd_sets (one set per worker with REUSEPORT) */
    int nfd_sets;

    const sm__model *model; /* from o.model */
    sm__worker *ws;
    int nw;

    atomic_bool stopping, forced, started, waited;
    atomic_int failure; /* the error of a worker that gave up (the first), else 0 */
    /* sm_loop_run, for the workers' main runs; tests replace it
     * (sm__server_set_run) to make a loop fail. */
    int (*run)(sm_loop *loop, sm_run_mode mode);
    atomic_int listening; /* workers that still have listeners open */
    atomic_int alive;     /* workers whose loops still run */
    _Atomic int64_t stop_ms;
    atomic_int nconns;
    int limit; /* effective max connections, 0: none */
    _Atomic uint64_t next_id;
    /* sm__log_tls_fail's budget: the current one-second window's start,
     * the lines logged in it, the failures left unlogged since the last
     * line. */
    _Atomic int64_t tls_log_window;
    atomic_uint tls_log_lines;
    _Atomic uint64_t tls_log_dropped;

    /* Workers set up (signalfd, listeners) before any accepts: otherwise a
     * worker that accepts up to the fd limit starves another's setup. */
    pthread_mutex_t gate_lock;
    pthread_mutex_t wait_lock; /* sm_server_wait: one joins, the others wait for it */
    pthread_cond_t gate_cond;
    int gate_ready;
    bool gate_abort;

    bool mask_set;
    pthread_t mask_thread;
    sigset_t old_mask;

    /* Thread model. */
    pthread_mutex_t reg_lock;
    sm__node registry; /* every live connection thread's peer */
    int stop_fd;       /* an eventfd, readable once stopping */
    /* Connection threads serving (their connection not yet counted as
     * closed): the thread limit's count, freed before the join that
     * w->npeers waits for. */
    atomic_int tbusy;
    sm__ctrs tctrs; /* the connection threads' counters */

    char fresh_detail[96];
    char msg_detail[96];
};

/* ---- server.c --------------------------------------------------------------- */

void sm__log(const sm_server *srv, sm_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Reserve a connection slot; false at the limit. */
bool sm__admit(sm_server *srv);
void sm__release(sm_server *srv);
/* A connection ended: count it by the kind of reason, free its slot. */
void sm__count_close(sm_server *srv, sm__ctrs *c, sm_close_kind kind);
uint64_t sm__next_id(sm_server *srv);
/* Exit conditions need everyone's listeners closed: wake all workers. */
void sm__wake_all(sm_server *srv);
int64_t sm__drain_deadline(const sm_server *srv);
/* Tests: the workers' main runs call run instead of sm_loop_run. Before
 * sm_server_start. */
void sm__server_set_run(sm_server *srv, int (*run)(sm_loop *loop, sm_run_mode mode));

/* ---- server_opts.c ------------------------------------------------------------ */

/* Check *in and store it in srv->o with the defaults filled in (the
 * model's by srv->model->configure, which it sets), srv->limit, and copies
 * of the endpoint strings. 0, or an error with `why` filled in. */
int sm__opts_check(sm_server *srv, const sm_server_opts *in, char *why, size_t why_len);

/* ---- server_listen.c ---------------------------------------------------------- */

/* Bind and listen on every endpoint (srv->eps, srv->fds: srv->nfd_sets
 * sockets per TCP endpoint, one per Unix endpoint); logs each. 0, or an
 * error with `why` filled in (what was opened is closed by
 * sm__listen_close_all). */
int sm__listen_all(sm_server *srv, char *why, size_t why_len);
/* Close every listening socket still open; remove our Unix socket files. */
void sm__listen_close_all(sm_server *srv);

/* ---- server_peer.c ------------------------------------------------------------ */

/* Both models' log lines: a peer opened (its address, PROXY or not) and
 * closed (kind, reason, detail), at SM_LOG_DEBUG. */
void sm__log_open(const sm_server *srv, const sm_peer *p);
void sm__log_close(const sm_server *srv, const sm_peer *p, sm_close_kind kind, int reason);
/* The client's address of socket fd (getpeername), formatted, or "?". */
void sm__sock_peer_name(int fd, char *out, size_t out_len);
/* sm_peer_addr (peer) or sm_peer_local_addr for either model. */
int sm__peer_addr(const sm__proxied *px, int fd, sm_addr *out, bool peer);

/* ---- server_accept.c ---------------------------------------------------- */

/* Accept up to SM__ACCEPT_BATCH connections (or, with drain_all, everything
 * in the backlog) on l, under the server's limits; admitted fds go to
 * take(w, l, fd) with a slot reserved. Returns false when accepting paused
 * (EMFILE without a spare fd). */
typedef void (*sm__take_fn)(sm__worker *w, sm__listener *l, int fd);
bool sm__accept_batch(sm__worker *w, sm__listener *l, bool drain_all, sm__take_fn take);
/* Set an accepted socket's options (opts.sock, or TCP_NODELAY on TCP) on the
 * worker that serves it. On failure the connection is closed, counted (in
 * accept_errors and as a close of the error's kind, its slot released) and
 * logged, at most once a second per worker: returns false. */
bool sm__accepted_setup(sm__worker *w, int ep, int fd);
int sm__spare_open(void);
/* Log a warning at most once a second (*last), counting those left out
 * (*unlogged) and naming their number in the next. */
void sm__warn_limited(sm__worker *w, int64_t *last, uint64_t *unlogged, const char *what);
void sm__pause_cb(sm_timer *t);

/* ---- server_proxy.c ------------------------------------------------------------ */

/* Read more of a PROXY header from non-blocking fd; see server_proxy.c. */
void sm__proxy_rd_init(sm__proxy_rd *r);
void sm__proxy_rd_free(sm__proxy_rd *r);
ssize_t sm__proxy_read(int fd, sm__proxy_rd *r, sm_proxy_info *info, char *why, size_t why_len);
/* The header's addresses, or NULL (none named); *err set on ENOMEM. */
sm__proxied *sm__proxied_new(const sm_proxy_info *info, int *err);
/* A PROXY header could not be read from fd: log it with the client's
 * socket address and why (else err's name); a warning, unless err is
 * -ECANCELED (a forced stop's). */
void sm__log_proxy_fail(const sm_server *srv, int fd, int err, const char *why);
/* Loop model: read fd's header on w's loop (w->pending, w->pend_timer),
 * then make it a peer (sm__lpeer_open); a failure or the deadline
 * (first_message_timeout_ms, else SM__PROXY_DEFAULT_MS) closes it, counted
 * and logged. Takes fd and its slot. */
void sm__lproxy_start(sm__worker *w, int fd, bool tls);
void sm__lproxy_timer_cb(sm_timer *t); /* w->pend_timer */
/* Close every handshake of w now (-ECANCELED). */
void sm__lproxy_cancel_all(sm__worker *w);

/* ---- server_loop.c, server_lpeer.c: the loop model's own ------------------------- */

/* w may be done (stopping, nothing left): stop its loop. After anything
 * that ends a connection or a handshake. */
void sm__lmodel_maybe_exit(sm__worker *w);
/* w's stream options (w->sopts: its streams' callbacks, from srv->o). */
void sm__lpeer_init(sm__worker *w);
/* A connection is ready to serve (its PROXY header read, if any): make it
 * a peer of w and call on_open. Takes fd and px; the connection's slot is
 * released if this fails. */
void sm__lpeer_open(sm__worker *w, int fd, sm__proxied *px, bool tls);
/* A TLS handshake (handshake) or an established TLS session failed: the
 * warning line, with the client's address while fd is open (else -1) and
 * OpenSSL's reason. At most SM__TLS_LOG_BURST lines a second per server:
 * a flood of bad handshakes is counted (closes[SM_CLOSE_TLS]), and the
 * next line logged says how many were not. */
#define SM__TLS_LOG_BURST 10
void sm__log_tls_fail(sm_server *srv, uint64_t id, int fd, int reason, const char *detail,
                      bool handshake);
void sm__lpeer_fresh_cb(sm_timer *t); /* w->fresh_timer: first-message deadlines */
/* w->msg_sweep, every message_timeout_ms: close the peers found in the
 * same unfinished message at two sweeps in a row (-ETIMEDOUT). */
void sm__lpeer_sweep_cb(sm_timer *t);
/* The worker a loop-model peer belongs to. */
sm__worker *sm__lpeer_worker(const sm_peer *p);
int sm__lpeer_detach(sm_peer *p, sm_peer_detach_cb cb, void *arg); /* server_detach.c */
/* Send to every peer of w but the one with id `from` and those shut down
 * or closing (a broadcast's share on w's loop). */
void sm__lpeer_deliver(sm__worker *w, uint64_t from, int type, const void *msg, size_t len);
/* Half-close every peer of w quiet for drain_quiet_ms (sm__stream_quiet). */
void sm__lpeer_drain(sm__worker *w);
/* Close every peer of w now (-ECANCELED). */
void sm__lpeer_force_all(sm__worker *w);

/* ---- server_tconn.c, server_thread.c: the thread model's own ------------------- */

/* A peer of the thread model and its connection, shared by its connection
 * thread, the threads sending to it and the acceptor. */
typedef struct sm__tpeer {
    sm_peer p;            /* first: an sm_peer * is an sm__tpeer * */
    pthread_mutex_t lock; /* sends, and the fields below it */
    sm_conn *c;
    bool ready; /* c is set: sends may go out */
    bool shut;  /* FIN sent */
    bool gone;  /* the connection is being torn down: no more sends */
    atomic_bool closing;
    atomic_int refs; /* the thread's own, plus broadcasts in progress */
    _Atomic int64_t last_out;
    pthread_t self; /* under srv->reg_lock: set by the connection thread itself */
    bool has_self;
    bool tls;       /* accepted on a tls:// listener */
    bool got_first; /* the front handed it over with a whole first message */
    sm_buf pre;     /* the bytes the front read, until the conn takes them */
    char detail[192];
    /* sm_peer_detach (server_detach.c): set and read by the connection
     * thread only. */
    sm_peer_detach_cb detach_cb;
    void *detach_arg;
} sm__tpeer;

/* server_detach.c: sm_peer_detach on the connection thread (the op), and
 * the thread's end when one was asked: after the last on_message returned
 * (every reply written: sends block), hand the socket and the conn's read
 * ahead bytes to the callback (or its failure), before on_close. Returns
 * the reason the peer ends with. */
int sm__tpeer_detach(sm_peer *p, sm_peer_detach_cb cb, void *arg);
int sm__tpeer_detach_end(sm__tpeer *t, int reason);

/* The body of t's connection thread (t registered, one reference its,
 * dropped by the acceptor once it has joined the thread). */
void *sm__tconn_main(void *t);
/* A connection leaves the front: start its thread with what was read of it
 * (*in, taken; got_first: a whole message is in it), or refuse it at the
 * thread limit. Takes fd, px and the connection's slot. Acceptor only. */
void sm__tconn_spawn(sm__worker *w, int fd, sm__proxied *px, sm_buf *in, bool got_first, bool tls);
/* The acceptor may be done (stopping, no thread, no front connection):
 * stop its loop. */
void sm__tmodel_maybe_exit(sm__worker *w);

/* ---- server_front.c ----------------------------------------------------------------- */

void sm__front_init(sm__worker *w);
/* Read a new connection (options set, slot reserved) on the acceptor's
 * loop until it is worth a thread (see server_front.c), then hand it to
 * sm__tconn_spawn; a connection that fails or misses its deadline here is
 * closed, counted and logged, and never reaches the handlers. Takes fd. */
/* tls: a tls:// listener's connection. The front cannot read its first
 * message (it is encrypted): it reads only a PROXY header, and the thread
 * makes the handshake under its own deadline. */
void sm__front_start(sm__worker *w, int fd, bool tls);
void sm__front_timer_cb(sm_timer *t); /* w->front_timer */
/* The server stops (w->stopping set): close the connections that have
 * nothing buffered and stay quiet for drain_quiet_ms; the others go on
 * until they are handed over or closed. */
void sm__front_stop(sm__worker *w);
/* Close every front connection now (-ECANCELED). */
void sm__front_close_all(sm__worker *w);
/* Drop a reference; the last frees t. */
void sm__tpeer_unref(sm__tpeer *t);
/* Take t out of the server's registry. */
void sm__tpeer_unregister(sm__tpeer *t);
/* sm_peer_send and friends on a thread-model peer (any thread). */
int sm__tpeer_send(sm_peer *p, int type, const struct iovec *iov, int iovcnt);

/* ---- server_fds.c: fds and credentials on peers (opts.max_fds) ------------------- */

/* sm__opts_check, before the defaults: max_fds in range, every listener a
 * Unix one, no proxy_protocol; in the thread model commit becomes
 * SM_COMMIT_ACCEPT (an explicit SM_COMMIT_FIRST_MESSAGE is refused). */
int sm__fds_opts_check(sm_server *srv, char *why, size_t why_len);
/* The peer ops, per model (server_lpeer.c and server_tconn.c list them). */
int sm__lpeer_send_fds(sm_peer *p, const void *msg, size_t len, const int *fds, int nfds);
int sm__lpeer_take_fds(sm_peer *p, int *fds, int cap);
int sm__lpeer_cred(const sm_peer *p, sm_cred *out);
int sm__lpeer_msg_cred(sm_peer *p, sm_cred *out);
int sm__tpeer_send_fds(sm_peer *p, const void *msg, size_t len, const int *fds, int nfds);
int sm__tpeer_take_fds(sm_peer *p, int *fds, int cap);
int sm__tpeer_cred(const sm_peer *p, sm_cred *out);
int sm__tpeer_msg_cred(sm_peer *p, sm_cred *out);
/* Thread model, on the connection thread: turn fd passing (and with
 * msg_cred, SCM_CREDENTIALS) on for t->c before its first receive when
 * the server has max_fds; 0 or -errno. */
int sm__tpeer_fds_open(sm__tpeer *t);
/* Thread model: on_message returned: close the fds it did not take, and
 * forget the message's sender. */
void sm__tpeer_fds_done(sm__tpeer *t);
/* server_tconn.c: a plain message with fds, under the send lock as
 * sm_peer_send. */
int sm__tpeer_send_with_fds(sm_peer *p, const void *msg, size_t len, const int *fds, int nfds);

/* ---- server_worker.c: shared by both models' workers ---------------------------- */

/* A worker is set up: wait until every worker is. */
void sm__gate_pass(sm_server *srv);
void sm__signal_cb(sm_signal *w, int signum);
/* Set up w's watchers: the keepalive timer, the model's own timers (each
 * with data = w) and the SIGINT/SIGTERM watchers. */
void sm__worker_init(sm__worker *w, sm_timer *const *timers, const sm_timer_cb *cbs, size_t n);
/* The body of a worker thread: start the keepalive timer, w's listeners
 * (on_listener, data = the listener) and, with `signals`, the signal
 * watchers; stop the server if any of that fails (logged as `who`); pass
 * the start gate; run the loop until w->done; then stop the signal watchers
 * and the listeners still open. The model finishes the rest. A loop that
 * fails SM__RUN_FAILS_MAX times in a row (each logged, with a short
 * growing pause between) is given up: logged, srv->failure set, the server
 * stopped and the model's abandon(w) called. */
void sm__worker_run(sm__worker *w, sm_io_cb on_listener, bool signals, const char *who);

#endif
