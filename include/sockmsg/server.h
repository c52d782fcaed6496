/**
 * @file
 * @brief Servers: listeners, an execution model, limits, graceful stop.
 *
 * An sm_server listens on one or more endpoints, accepts connections, frames
 * them with one frame spec and hands whole messages to three callbacks. The
 * handlers see each client as an sm_peer, whichever execution model runs it:
 *
 * @code
 *     static void on_msg(sm_peer *p, const sm_frame_msg *m) {
 *         sm_peer_send(p, m->data, m->len);                 // echo
 *     }
 *     sm_server_opts o = {
 *         .listen = (const char *[]){"tcp://[::1]:7000", "unix:@echo", NULL},
 *         .on_message = on_msg,            // or sm_server_handler_echo
 *         .idle_timeout_ms = 60000,
 *         .handle_signals = true,          // SIGINT/SIGTERM stop it gracefully
 *     };
 *     sm_server *srv;
 *     char why[256];
 *     if (sm_server_new(&srv, &o, why, sizeof why) < 0) ...   // binds every listener
 *     sm_server_run(srv);                                      // until stopped and drained
 *     sm_server_free(srv);
 * @endcode
 *
 * Execution models (opts.model):
 *
 *   SM_SERVER_LOOP (default): opts.threads event loops (default: one per
 *     core), each on its own thread, each connection an sm_stream (stream.h)
 *     on one loop for its whole life: connections never migrate, so a
 *     handler needs no locks for per-connection state. How connections reach
 *     the loops (opts.accept):
 *       SM_ACCEPT_REUSEPORT: every loop has its own listening socket on each
 *         TCP endpoint (SO_REUSEPORT); the kernel spreads connections over
 *         them by a hash of the address pair, and each loop accepts only its
 *         own: no hand-off, no cross-thread traffic.
 *       SM_ACCEPT_DISPATCH: loop 0 accepts everything and hands each fd to
 *         the loops in turn (a mutex-protected inbox plus sm_loop_wakeup).
 *     The default is REUSEPORT for TCP endpoints: it accepts faster, and
 *     balance is what DISPATCH buys. Measured with bench/server_accept (2
 *     loops on a 2-core VM, clients on the same cores, median of 5 runs of
 *     2 s): connect, one echo, close: 24,700 connections/s with REUSEPORT
 *     against 22,100/s with DISPATCH (4 client threads; 28,600 against
 *     21,300 with 2), the hand-off's wake-up being the difference; echo
 *     throughput over 32 or 64 long-lived pipelining connections: no
 *     consistent winner (1.3-2.0 M messages/s either way, +-30% from run to
 *     run). The hash does not know how busy a loop is and spreads unevenly
 *     (64 connections landed 37/27, 28/36, ...), where DISPATCH deals them
 *     out exactly in turn: prefer DISPATCH for few, long-lived, busy
 *     connections. The group is the server's own: its first listener on
 *     an endpoint binds and listens without SO_REUSEPORT, so a port
 *     anything already listens on (another process or another server, with
 *     SO_REUSEPORT or not) is -EADDRINUSE in every model and with any
 *     number of loops; only then do the other loops' listeners join it. A
 *     socket of the same user that sets SO_REUSEPORT itself can still join
 *     the group once the server listens and take a share of the
 *     connections (Linux lets any such socket join; other users cannot).
 *     Unix endpoints (which have no SO_REUSEPORT spreading) are always
 *     dispatched from loop 0.
 *     Accepting is batched (up to 64 connections per readiness event).
 *
 *   SM_SERVER_THREAD: one acceptor thread (an sm_loop watching the
 *     listeners) and a thread per connection running a blocking loop over an
 *     sm_conn (conn.h): receive a message, call on_message, which replies
 *     with blocking sends, repeat. Simple to reason about, and handlers may
 *     block; each connection costs a thread, so a thread is committed only
 *     when it is safe (opts.commit):
 *       SM_COMMIT_FIRST_MESSAGE (default): the acceptor's loop reads each
 *         new connection, non-blocking (the front): its PROXY header, then
 *         its first message; once that message is whole the connection
 *         gets its thread, which decodes the bytes read so far first. Until
 *         then it is no peer: on_open runs on its thread just before that
 *         first on_message, and a connection that ends or misses a
 *         deadline before it (EOF, reset, a bad or oversized frame,
 *         first_message_timeout_ms) is counted and logged (at debug) but
 *         never seen by the handlers. Hundreds of clients that connect and
 *         trickle bytes hold a file descriptor and what they sent, never a
 *         thread.
 *       SM_COMMIT_ACCEPT: the thread starts at once (after the PROXY
 *         header, still read on the front), and on_open with it: for
 *         protocols where the server speaks first or clients may only
 *         listen (a chat, a greeting, heartbeats to silent clients). Such a
 *         server relies on first_message_timeout_ms, idle_timeout_ms and
 *         the thread limit against clients that hold a thread and say
 *         nothing.
 *     At most opts.threads connection threads (default 256); a connection
 *     due for a thread past that is closed at once (SM_CLOSE_REFUSED,
 *     logged), never left to wait. Each thread's stack is
 *     opts.thread_stack_size (default 128 KiB). glibc gives threads malloc
 *     arenas of their own (up to 8 per core, each reserving 64 MiB of
 *     address space): a program with many connection threads should bound
 *     them with mallopt(M_ARENA_MAX, n), as `sockmsg serve --model thread`
 *     does (n = 2); the library never changes process-wide settings. An
 *     idle connection that has its thread measured 197 KiB of virtual size
 *     and 24 KiB of RSS (200 connections, debug build, 2 arenas:
 *     tests/integration/test_server_front.c): the stack, its guard page and
 *     the connection's 64 KiB read buffer.
 *
 * Memory (loop model). A connection is its sm_stream, and the peer (an
 * 8-byte id and flags) lives in the stream's own allocation: an idle
 * connection is one 128-byte malloc chunk plus the loop's per-fd slots.
 * bench/idle_rss measures 153 B of server RSS per idle connection (10,000
 * connections, each having echoed one message; one loop, Release, epoll;
 * 148 B with a bare sm_stream, the difference being the loop thread's malloc
 * arena). Only a connection still waiting for its first message costs a
 * 24-byte entry in a per-loop queue more (with first_message_timeout_ms);
 * one whose PROXY header named addresses, a 144-byte chunk and an
 * allocation for them.
 *
 * Limits. The zero value of every option is a default a careful operator
 * would pick for a server open to untrusted clients; each can be changed,
 * and the timeouts turned off with SM_FOREVER. All enforced in both models
 * unless said, counted in sm_server_get_stats (SECURITY.md has the same
 * table, with what a hostile client can and cannot do within it):
 *
 * @code{.unparsed}
 *   option                    default (zero value)       past it
 *   max_conns                 RLIMIT_NOFILE's soft limit  a new connection is accepted
 *                             at sm_server_new, minus     and closed at once
 *                             64 + 4 per loop + the       (SM_CLOSE_REFUSED), warned
 *                             listeners; -1: none         at most once a second
 *   threads (thread model)    256 connection threads      a connection due for a
 *                                                         thread is refused (same)
 *   thread_stack_size         128 KiB per thread          (the stack's size)
 *   first_message_timeout_ms  10 s after the accept (or   -ETIMEDOUT (first-message
 *                             the PROXY header)           timeout)
 *   PROXY header              first_message_timeout_ms,   -ETIMEDOUT, never a peer
 *                             10 s when that is off
 *   message_timeout_ms        60 s from a later           -ETIMEDOUT (message timeout;
 *                             message's first byte        loop model: checked each
 *                                                         period: up to 2x)
 *   idle_timeout_ms           5 min with nothing sent     -ETIMEDOUT
 *                             or received
 *   write_timeout_ms          30 s without progress       -ETIMEDOUT (loop), or
 *                                                         SM_ERR_SLOW_CONSUMER (thread)
 *   max_queued (loop model)   16 MiB + 64 KiB queued      SM_ERR_SLOW_CONSUMER
 *   high_water (loop model)   1 MiB queued                reading pauses (TCP slows the
 *                                                         client), resumes at 1/4
 *   frame size                the spec's max (16 MiB)     -EMSGSIZE; nothing of that
 *                                                         size is allocated first
 *   drain_timeout_ms          5 s after a stop            -ECANCELED
 *   backlog                   SOMAXCONN                   the kernel's
 *   heartbeats                off                         SM_ERR_HEARTBEAT
 *
 *   file descriptors: EMFILE/ENFILE on accept never spins: each thread that
 *     accepts keeps one spare fd; on EMFILE it closes the spare, accepts the
 *     connection, closes it (SM_CLOSE_REFUSED) and reopens the spare; when
 *     that is not possible it stops accepting for 100 ms.
 *   output: the thread model queues nothing: a send blocks, at most
 *     write_timeout_ms, then the connection is closed as a slow consumer.
 *   memory: a connection holds at most one frame being read (the spec's
 *     max plus 64 KiB) and, in the loop model, max_queued bytes of output:
 *     max_conns x (max + max_queued) bounds what clients can make a server
 *     hold; lower max (max= in the spec) or max_conns to lower it.
 * @endcode
 *
 * Stopping. sm_server_stop (from any thread, a handler included), or SIGINT
 * or SIGTERM with opts.handle_signals, starts a graceful stop:
 *   1. every listener accepts what is already in its backlog (those clients
 *      are served like the others), then closes: new connections are refused
 *      by the kernel;
 *   2. every connection is drained: reading and replying go on until the
 *      connection has been quiet for drain_quiet_ms (no bytes in, at a
 *      message boundary, nothing left to write), then the server half-closes
 *      (FIN after the last reply) and waits for the client's EOF;
 *   3. at drain_timeout_ms after the stop, or at a second SIGINT/SIGTERM, or
 *      at sm_server_stop_now, whatever is left is closed (reason -ECANCELED,
 *      SM_CLOSE_DRAIN).
 * So no message received before the stop is lost, and every reply to it is
 * written, as long as the clients read and close within the deadline.
 * sm_server_wait returns when every connection is gone.
 *
 * Closing reasons (on_close's `reason`, and sm_server_close_kind):
 * @code{.unparsed}
 *   0                      clean: the client shut down at a message boundary
 *                          and every reply was written
 *   -ECONNRESET, -EPIPE    the client reset the connection
 *   -ETIMEDOUT             first-message, idle or write timeout
 *   SM_ERR_HEARTBEAT       nothing received within heartbeat_timeout_ms
 *   -EMSGSIZE, -EPROTO     an oversized or malformed frame
 *   SM_ERR_TRUNCATED       the client's EOF came in the middle of a message
 *   SM_ERR_SLOW_CONSUMER   the output queue exceeded max_queued
 *   SM_ERR_CLOSED          a handler called sm_peer_close
 *   -ECANCELED             closed by the drain deadline or a forced stop
 *   SM_ERR_TLS_*           a TLS listener's handshake failed (not TLS, a
 *                          client certificate refused, no ALPN in common),
 *                          the session failed later (a refused
 *                          renegotiation), or the client ended without
 *                          close_notify; each is logged as a warning with
 *                          OpenSSL's reason, at most 10 lines a second
 *                          (the next line logged counts those left out)
 *   other -errno           what the kernel or the allocator reported
 * @endcode
 * Connections that never become peers (refused at a limit, a bad or
 * missing PROXY header, or an accepted socket whose options, opts.sock or
 * TCP_NODELAY, cannot be set) are counted in the stats and logged, but
 * the handlers never see them.
 *
 * PROXY protocol (opts.proxy_protocol): every connection must start with a
 * PROXY v1 or v2 header (proxy.h), which must arrive within
 * first_message_timeout_ms (10 s when that is 0). The server reads exactly
 * the header, never a byte of what follows; sm_peer_addr then gives the real
 * client's address. A malformed header closes the connection (-EPROTO,
 * SM_CLOSE_MALFORMED, logged with the decoder's reason). A LOCAL (health
 * check) or UNKNOWN header keeps the socket's own addresses.
 *
 * @threads Handlers and threads. In the loop model every callback of a peer runs on
 * its loop's thread, and the sm_peer_* calls may only be made there (from
 * any callback of that loop). In the thread model a peer's callbacks run on
 * its connection thread; sm_peer_send and friends take a per-peer lock, so
 * any thread may send to a peer while it is alive (between on_open and the
 * return of on_close). sm_server_broadcast is thread-safe in both models.
 *
 * Logging: opts.log receives one line per event, without a newline (listening,
 * refusals, fd exhaustion, bad PROXY headers, stopping; per-connection opens
 * and closes at SM_LOG_DEBUG). Default: silent.
 */
#ifndef SOCKMSG_SERVER_H
#define SOCKMSG_SERVER_H

#include "api.h"
#include "endpoint.h"
#include "error.h"
#include "frame.h"
#include "loop.h"
#include "socket.h"
#include "tls.h"

#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

/** A server (opaque). */
typedef struct sm_server sm_server;
/** One client connection of a server, as its handlers see it (opaque). */
typedef struct sm_peer sm_peer;

/** The thread model's default connection thread stack: 128 KiB. */
#define SM_SERVER_STACK_DEFAULT ((size_t)128 << 10)

/** How connections are run (see "Execution models" above). */
typedef enum sm_server_model {
    SM_SERVER_LOOP = 0,   /**< N event loops, non-blocking streams */
    SM_SERVER_THREAD = 1, /**< a blocking thread per connection */
} sm_server_model;

/** How connections reach the loops (loop model; see above). */
typedef enum sm_server_accept {
    SM_ACCEPT_DEFAULT = 0,   /**< REUSEPORT (see above) */
    SM_ACCEPT_REUSEPORT = 1, /**< a listener per loop (TCP); Unix endpoints dispatch */
    SM_ACCEPT_DISPATCH = 2,  /**< loop 0 accepts and hands fds out round-robin */
} sm_server_accept;

/** Thread model: when a connection gets its thread (see "Execution models"). */
typedef enum sm_server_commit {
    SM_COMMIT_DEFAULT = 0,       /**< SM_COMMIT_FIRST_MESSAGE */
    SM_COMMIT_FIRST_MESSAGE = 1, /**< once a whole first message has arrived */
    SM_COMMIT_ACCEPT = 2,        /**< at once (after the PROXY header): the server speaks first */
} sm_server_commit;

/** The severity of a log line. */
typedef enum sm_log_level {
    SM_LOG_DEFAULT = 0, /**< as an option: SM_LOG_INFO */
    SM_LOG_ERROR = 1,   /**< a failure: a loop, a thread, setting up a connection */
    SM_LOG_WARN = 2,    /**< refusals, fd exhaustion, bad PROXY headers */
    SM_LOG_INFO = 3,    /**< listening, stopping */
    SM_LOG_DEBUG = 4,   /**< per-connection opens and closes */
} sm_log_level;

/** Why a connection ended, in classes (sm_server_close_kind()). */
typedef enum sm_close_kind {
    SM_CLOSE_CLEAN = 0,     /**< reason 0 */
    SM_CLOSE_RESET,         /**< -ECONNRESET, -EPIPE */
    SM_CLOSE_TIMEOUT,       /**< -ETIMEDOUT */
    SM_CLOSE_HEARTBEAT,     /**< SM_ERR_HEARTBEAT */
    SM_CLOSE_OVERSIZE,      /**< -EMSGSIZE */
    SM_CLOSE_MALFORMED,     /**< -EPROTO (a bad frame or PROXY header) */
    SM_CLOSE_TRUNCATED,     /**< SM_ERR_TRUNCATED */
    SM_CLOSE_SLOW_CONSUMER, /**< SM_ERR_SLOW_CONSUMER */
    SM_CLOSE_LOCAL,         /**< SM_ERR_CLOSED: sm_peer_close */
    SM_CLOSE_DRAIN,         /**< -ECANCELED: the stop's deadline or a forced stop */
    SM_CLOSE_REFUSED,       /**< at max_conns, the thread limit, or out of fds */
    SM_CLOSE_OTHER,         /**< anything else */
    SM_CLOSE_TLS,           /**< SM_ERR_TLS_*: a failed handshake, no close_notify, ... */
    SM_CLOSE_DETACHED,      /**< SM_ERR_DETACHED: handed off with sm_peer_detach() */
    SM_CLOSE_KINDS          /**< the number of kinds (the size of sm_server_stats::closes) */
} sm_close_kind;

/** The peer's connection is set up (and its PROXY header read): the first
 * callback of a peer. @param p the peer */
typedef void (*sm_server_open_cb)(sm_peer *p);
/** One whole message.
 * @param p    the peer
 * @param msg  the message; it and its bytes are borrowed until the return */
typedef void (*sm_server_message_cb)(sm_peer *p, const sm_frame_msg *msg);
/** The peer is gone: the last callback; the peer's memory is freed after it
 * returns. Free what you hung on sm_peer_get_data() here.
 * @param p       the peer
 * @param reason  why (see "Closing reasons" above) */
typedef void (*sm_server_close_cb)(sm_peer *p, int reason);
/** A log line. May run on any server thread, concurrently.
 * @param log_data  opts.log_data
 * @param level     the line's severity
 * @param line      the line, without a newline; valid until the return */
typedef void (*sm_server_log_cb)(void *log_data, sm_log_level level, const char *line);

/** Server configuration; all-zero fields mean the defaults. sm_server_new()
 * copies it and everything it points at (endpoints, spec, sock, ping): none
 * of it needs to outlive the call. */
typedef struct sm_server_opts {
    /** Endpoints to listen on (endpoint.h): "tcp://127.0.0.1:0",
     * "tcp://[::1]:7000", "tcp://HOST:7000" with HOST "*" (all interfaces,
     * dual-stack), "unix:/path", "unix:@name". listen_count of them, or, when
     * listen_count is 0, up to a NULL entry. At least one. Copied. */
    const char *const *listen;
    int listen_count; /**< the number of listen entries; 0: up to a NULL entry */
    int backlog;      /**< listen(2) backlog; 0: SOMAXCONN */

    /** The framing: a spec string ("line,max=4096", frame.h), parsed by
     * sm_server_new(), or a parsed spec (see spec). At most one of the two
     * (-EINVAL when both are set); neither: len32be. Both copied. */
    const char *frame;
    const sm_frame_spec *spec; /**< a parsed spec (checked), instead of frame */

    sm_server_model model; /**< the execution model */
    /** Loop model: event loops (0: one per online CPU, at most 64).
     * Thread model: the most connection threads at once (0: 256). */
    int threads;
    sm_server_accept accept; /**< loop model only */
    sm_server_commit commit; /**< thread model only */
    /** Thread model: each connection thread's stack, in bytes; 0: 128 KiB
     * (SM_SERVER_STACK_DEFAULT); at least PTHREAD_STACK_MIN. Handlers run
     * on it: one that needs more (deep recursion, big local arrays) says so
     * here. */
    size_t thread_stack_size;
    sm_loop_backend backend;  /**< for every loop the server creates */
    const sm_sock_opts *sock; /**< applied to accepted sockets; NULL: TCP_NODELAY */

    sm_server_open_cb on_open;       /**< may be NULL */
    sm_server_message_cb on_message; /**< required */
    sm_server_close_cb on_close;     /**< may be NULL */
    void *data;                      /**< sm_server_get_data() */

    /** Connections at once, all threads together, those on the thread
     * model's front and reading PROXY headers included; 0: derived from
     * RLIMIT_NOFILE (see Limits); -1: no limit. */
    int max_conns;
    size_t max_queued; /**< output bytes queued per connection (loop model); 0: the
                          stream default (16 MiB + 64 KiB) */
    size_t high_water; /**< loop model: queued bytes that pause reading; 0: 1 MiB */
    /** The first whole message must arrive this soon after the accept (after
     * the PROXY header, with proxy_protocol); 0: 10 s; SM_FOREVER: off. It
     * also bounds the wait for a PROXY header (10 s when off). */
    int first_message_timeout_ms;
    int idle_timeout_ms; /**< nothing sent or received; 0: 5 min; SM_FOREVER: off */
    /** A message after the first, once its first byte has arrived, must be
     * complete this soon (a client that trickles a message, slowloris);
     * 0: 60 s; SM_FOREVER: off. The loop model checks every
     * message_timeout_ms, so a message is closed between one and two
     * periods after it began. */
    int message_timeout_ms;
    int write_timeout_ms; /**< a send makes no progress; 0: 30 s; SM_FOREVER: none */
    int drain_timeout_ms; /**< after a stop; 0: 5 s; SM_FOREVER: none */
    int drain_quiet_ms;   /**< quiet time that ends a drain; 0: 50 ms */

    /** Heartbeats, both models (0: off). After heartbeat_ms with nothing sent
     * to a peer, the server sends it the ping message; a peer from which
     * nothing arrived for heartbeat_timeout_ms is closed with
     * SM_ERR_HEARTBEAT (close kind "heartbeat"): a dead peer is found even
     * when the kernel cannot tell (no FIN, no RST, an idle connection). The
     * ping is ping[0..ping_len) (default: an empty message; ping_type with a
     * type: spec). With swallow_pings, an incoming message equal to the ping
     * refreshes the peer's liveness but is not passed to on_message (and
     * does not count as its first message). Pings are traffic: with
     * heartbeats on, idle_timeout_ms never sees a silent peer as idle; close
     * silent peers with heartbeat_timeout_ms. A ping is skipped while another
     * send to the peer is under way or its socket is full (that is traffic
     * enough). eof framing cannot carry pings (SM_ERR_SPEC). Bounds:
     * SM_STREAM_TIMEOUT_MAX_MS; timers fire up to SM_STREAM_TIMER_RES_MS late
     * in the loop model. */
    int heartbeat_ms;
    int heartbeat_timeout_ms; /**< close a peer silent this long (see heartbeat_ms) */
    const void *ping;         /**< the ping's payload (see heartbeat_ms) */
    size_t ping_len;          /**< its length */
    int ping_type;            /**< the ping's type byte, for type: specs */
    bool swallow_pings;       /**< do not pass pings to on_message (see heartbeat_ms) */

    /** SIGINT and SIGTERM start a graceful stop; a second one forces it.
     * sm_server_start then blocks both signals in the calling thread (and so
     * in every thread created after it, the server's included) and one
     * server thread receives them with a signalfd; sm_server_free restores
     * the mask when called from the thread that started the server. Threads
     * created before sm_server_start must block them themselves. */
    bool handle_signals;
    /** Every connection starts with a PROXY v1/v2 header (see above). */
    bool proxy_protocol;

    sm_server_log_cb log;   /**< NULL: silent */
    void *log_data;         /**< passed to log */
    sm_log_level log_level; /**< the most verbose level passed to log; default INFO */
    /** TLS for the tls:// listeners (tls.h): an SM_TLS_SERVER configuration
     * with its certificate (and a CA for mutual TLS); required when a
     * listener is tls://, referenced, must outlive the server. Both models
     * bound the handshake by the configuration's handshake timeout (10 s):
     * a silent client does not hold a slot longer. A failed handshake is
     * closed with its SM_ERR_TLS_* reason (kind SM_CLOSE_TLS; a timeout,
     * SM_CLOSE_TIMEOUT), counted and logged at SM_LOG_WARN with OpenSSL's
     * reason. on_open runs at the accept, before the handshake. */
    sm_tls_config *tls;
    /** The framing of what the server sends, when it differs from what it
     * receives (frame/spec): a spec string, parsed by sm_server_new(), or
     * a parsed spec in send_spec. At most one of the two (-EINVAL when both
     * are set); neither: the receiving spec. Copied. sm_peer_set_spec()
     * changes either on one connection. */
    const char *send_frame;
    const sm_frame_spec *send_spec; /**< a parsed spec (checked), instead of send_frame */
    /** File descriptors with messages (unix.h): at most this many received
     * per message (1 to SM_FDS_MAX; 0: fd passing off, the fds a client
     * sends are closed by the kernel). Every listener must then be a
     * unix: one, and proxy_protocol is refused (its header is read
     * without room for fds); in the thread model connections get their
     * thread at the accept (commit SM_COMMIT_ACCEPT; an explicit
     * SM_COMMIT_FIRST_MESSAGE is refused), so no byte is read before the
     * connection can take the fds that come with it. All three are
     * refused by sm_server_new() (-EINVAL, the reason in why). */
    int max_fds;
    /** With max_fds: learn each message's sender (SCM_CREDENTIALS) for
     * sm_peer_msg_cred() (unix.h); -EINVAL without max_fds. */
    bool msg_cred;
} sm_server_opts;

/** Counters, summed over the server's threads at the time of the call. */
typedef struct sm_server_stats {
    uint64_t accepted;      /**< connections accepted (refused ones included) */
    uint64_t opened;        /**< connections that became peers (on_open) */
    uint64_t current;       /**< open connections, those still reading a PROXY header included */
    uint64_t msgs_in;       /**< whole messages received */
    uint64_t msgs_out;      /**< messages sent (queued, in the loop model) */
    uint64_t bytes_in;      /**< payload bytes of the messages received */
    uint64_t bytes_out;     /**< payload bytes of the messages sent */
    uint64_t accept_errors; /**< accept(2) failures (EMFILE, ENFILE, ENOBUFS, ...), and
                               accepted sockets whose options could not be set */
    uint64_t closes[SM_CLOSE_KINDS]; /**< closed connections by kind, refused included */
} sm_server_stats;

/* ---- the server ----------------------------------------------------------- */

/**
 * Check opts, create the server and bind every listener.
 *
 * Listeners are bound and listening when this returns (port 0 can be read
 * back at once with sm_server_endpoint()), but nothing is accepted before
 * sm_server_start(). Allocates the server, its listening sockets and (loop
 * model) its loops; no thread is started. Free with sm_server_free().
 *
 * @param out      receives the server
 * @param opts     the configuration; copied with everything it points at
 * @param why      NULL, or a buffer that receives a one-line explanation of
 *                 an error naming the option or endpoint
 * @param why_len  the size of @p why
 * @retval 0                *out is set
 * @retval -EINVAL          a NULL or bad option: no endpoint, no on_message,
 *                          negative values, both frame and spec
 * @retval SM_ERR_SPEC      opts.frame does not parse, or opts.spec fails
 *                          sm_frame_spec_check()
 * @retval SM_ERR_ENDPOINT, SM_ERR_RESOLVE  a bad endpoint
 * @retval -EADDRINUSE      something already listens on an endpoint (see
 *                          SM_ACCEPT_REUSEPORT)
 * @retval SM_ERR_BACKEND   $SOCKMSG_BACKEND names no backend and
 *                          opts.backend is SM_BACKEND_DEFAULT
 * @retval -errno           -EACCES, -EMFILE, -ENOMEM, ...
 * @threads Thread-safe (distinct servers are independent).
 */
SM_API int sm_server_new(sm_server **out, const sm_server_opts *opts, char *why, size_t why_len);

/**
 * Start the server's threads and return.
 *
 * @param srv  the server
 * @retval 0              running
 * @retval -EALREADY      started before
 * @retval SM_ERR_CLOSED  stopped before it started
 * @retval -EINVAL        NULL
 * @retval -errno         the error of creating a thread or installing the
 *                        signal mask (nothing is left running then)
 * @callbacks Not from a handler.
 */
SM_API int sm_server_start(sm_server *srv);

/**
 * Wait until the server has stopped and every connection is gone, and join
 * its threads.
 *
 * Callable once per start from one thread; later calls return the same at
 * once.
 *
 * @param srv  the server
 * @retval 0         stopped cleanly
 * @retval -EINVAL   it was never started (or NULL)
 * @retval -EDEADLK  called from one of the server's own threads (a handler)
 * @retval -errno    the error of a server thread's event loop (sm_loop_run())
 *                   that failed 8 times in a row: the server then stopped
 *                   itself (logged at SM_LOG_ERROR), closing that loop's
 *                   connections at once (-ECANCELED; in the thread model,
 *                   where the failing loop is the acceptor's, every
 *                   connection) and draining the others
 * @callbacks Not from a handler (-EDEADLK).
 */
SM_API int sm_server_wait(sm_server *srv);

/**
 * sm_server_start(), then sm_server_wait().
 *
 * @param srv  the server
 * @return 0, or the first error of the two
 * @callbacks Not from a handler.
 */
SM_API int sm_server_run(sm_server *srv);

/**
 * Start a graceful stop (see "Stopping" above) and return at once.
 * Idempotent. Before sm_server_start() it makes the server never start.
 *
 * @param srv  the server
 * @threads Thread-safe.
 * @callbacks Callable from handlers.
 */
SM_API void sm_server_stop(sm_server *srv);

/**
 * Stop and close every connection at once (reason -ECANCELED): what a second
 * signal does. Returns at once; sm_server_wait() waits for the closes.
 *
 * @param srv  the server
 * @threads Thread-safe.
 * @callbacks Callable from handlers.
 */
SM_API void sm_server_stop_now(sm_server *srv);

/**
 * Free the server: stops it first (graceful, then waits) if it is running.
 * Closes the listeners (a Unix socket file is removed).
 *
 * @param srv  the server, or NULL (a no-op)
 * @callbacks Not from a handler.
 */
SM_API void sm_server_free(sm_server *srv);

/**
 * The number of configured endpoints.
 *
 * @param srv  the server
 * @return the count (0 for NULL)
 */
SM_API int sm_server_endpoint_count(const sm_server *srv);

/**
 * The bound address of endpoint i, port 0 resolved.
 *
 * @param srv  the server
 * @param i    the endpoint's index in opts.listen
 * @param out  receives the address
 * @retval 0        done
 * @retval -EINVAL  i out of range, or a NULL argument
 */
SM_API int sm_server_endpoint(const sm_server *srv, int i, sm_endpoint *out);

/**
 * The counters now. Each counter is exact once the server has stopped, and a
 * snapshot taken while it runs may be a few events apart between counters.
 *
 * @param srv  the server
 * @param out  receives the counters
 * @threads Thread-safe, any time between new and free.
 */
SM_API void sm_server_get_stats(const sm_server *srv, sm_server_stats *out);

/**
 * The caller's pointer.
 *
 * @param srv  the server
 * @return opts.data
 */
SM_API void *sm_server_get_data(const sm_server *srv);

/**
 * Whether a stop was requested.
 *
 * @param srv  the server
 * @return true once a stop was requested
 * @threads Thread-safe.
 */
SM_API bool sm_server_is_stopping(const sm_server *srv);

/**
 * Send one message to every peer except `except`, on every thread of the
 * server.
 *
 * The message is copied before this returns. In the loop model peers of other loops get it a
 * moment later (handed over through each loop's inbox), and peers of the
 * caller's own loop (the loop of `except`) at once; in the thread model
 * each peer's send blocks as sm_peer_send does (a peer that takes longer
 * than write_timeout_ms is closed as a slow consumer). Peers whose sending
 * side is shut down are skipped; a failed send to one peer (it is closing,
 * or its queue is full) does not stop the others. Peers that connect while
 * it runs may or may not get it.
 *
 * @param srv     the server
 * @param except  a peer that does not get it, or NULL; in the loop model it
 *                must be a peer of the calling handler's own loop
 * @param type    the type byte for type: specs, else -1
 * @param msg     the payload; may be NULL when len is 0
 * @param len     its length
 * @retval 0        sent (or queued) to every peer that could take it
 * @retval -EMSGSIZE, -EINVAL, -EPROTO  the spec cannot frame it (nothing
 *                  sent); -EINVAL also for NULL srv, or NULL msg with len > 0
 * @retval -ENOMEM  out of memory
 * @threads Thread-safe.
 * @callbacks Callable from handlers.
 */
SM_API int sm_server_broadcast(sm_server *srv, const sm_peer *except, int type, const void *msg,
                               size_t len);

/**
 * The class of a close reason.
 *
 * @param reason  a reason given to on_close
 * @return its class (SM_CLOSE_OTHER for any reason not listed)
 * @threads Thread-safe.
 */
SM_API sm_close_kind sm_server_close_kind(int reason);

/**
 * The name of a close kind: "clean", "reset", "timeout", "heartbeat",
 * "oversize", "malformed", "truncated", "slow_consumer", "local", "drain",
 * "refused", "other".
 *
 * @param kind  an sm_close_kind
 * @return a static string; "?" for a bad value
 * @threads Thread-safe.
 */
SM_API const char *sm_server_close_kind_name(int kind);

/* ---- built-in handlers ---------------------------------------------------- */

/**
 * @name Built-in handlers
 * on_message callbacks for opts.on_message, used by the CLI and benchmarks.
 * @{
 */
/** "echo": send every message back, unchanged: the frame as it came (the
 * benchmark protocol; in the loop model without a copy).
 * @param p    the peer
 * @param msg  the message */
SM_API void sm_server_handler_echo(sm_peer *p, const sm_frame_msg *msg);
/** "discard": drop every message.
 * @param p    the peer
 * @param msg  the message */
SM_API void sm_server_handler_discard(sm_peer *p, const sm_frame_msg *msg);
/** "chat": send every message to every other peer (sm_server_broadcast()).
 * @param p    the peer
 * @param msg  the message */
SM_API void sm_server_handler_chat(sm_peer *p, const sm_frame_msg *msg);
/** @} */

/**
 * The built-in handler called `name`.
 *
 * @param name  "echo", "discard" or "chat"
 * @return the handler, or NULL for another name (or NULL)
 */
SM_API sm_server_message_cb sm_server_handler_by_name(const char *name);

/**
 * The name of built-in handler i: for listing them in a usage message.
 *
 * @param i  0, 1, ...
 * @return a static string, or NULL past the last
 */
SM_API const char *sm_server_handler_name(int i);

/* ---- peers ---------------------------------------------------------------- */

/**
 * Send one message (a copy of msg[0..len)).
 *
 * Loop model: queues it (sm_stream_send()): returns 0, or 1 when the queue
 * is now above high_water (reading from this peer pauses until it drains),
 * or an error with nothing queued (-EMSGSIZE / -EINVAL: the spec cannot
 * frame it; -EPROTO: a type: spec, use sm_peer_send_type(); -EPIPE after
 * sm_peer_shutdown(); SM_ERR_CLOSED; SM_ERR_SLOW_CONSUMER: over max_queued,
 * the peer is closing). Never blocks.
 *
 * Thread model: writes it out before returning (blocking at most
 * write_timeout_ms): returns 0, or an error: the framing errors above,
 * -EPIPE (shut down, or the peer is gone), SM_ERR_CLOSED, -ETIMEDOUT (the
 * peer does not read; it is then closed as a slow consumer).
 *
 * @param p    the peer
 * @param msg  the payload; may be NULL when len is 0 (-EINVAL otherwise)
 * @param len  its length
 * @return 0, 1 (loop model), or an error, as above
 * @threads See "Handlers and threads" above.
 */
SM_API int sm_peer_send(sm_peer *p, const void *msg, size_t len);

/**
 * sm_peer_send() with a type byte, for type: specs.
 *
 * @param p     the peer
 * @param type  the type byte (it must be mapped: -EPROTO otherwise)
 * @param msg   the payload after the type byte; may be NULL when len is 0
 * @param len   its length
 * @return as sm_peer_send()
 * @threads See "Handlers and threads" above.
 */
SM_API int sm_peer_send_type(sm_peer *p, int type, const void *msg, size_t len);

/**
 * Send one message made of iovcnt pieces (copied or written before
 * returning).
 *
 * @param p       the peer
 * @param iov     the pieces of the payload
 * @param iovcnt  how many (-EINVAL if negative, or iov NULL with iovcnt > 0)
 * @return as sm_peer_send()
 * @threads See "Handlers and threads" above.
 */
SM_API int sm_peer_sendv(sm_peer *p, const struct iovec *iov, int iovcnt);

/**
 * Send a received message as it came: msg->frame, header and trailer
 * included, byte for byte (an echo, or forwarding to a peer of a server with
 * the same framing). The built-in echo handler is this call.
 *
 * Loop model: as sm_stream_send_frame(): from this peer's own on_message the
 * frame is queued by reference into the read buffer, without a copy, and
 * goes out with the read batch's other replies; anywhere else it is copied.
 * Thread model: written before returning, as sm_peer_send().
 *
 * @param p    the peer
 * @param msg  a message handed to on_message
 * @return as sm_peer_send() (-EINVAL for a NULL msg, or a NULL frame with a
 *         length); an empty frame (an empty eof-framed message) sends
 *         nothing and returns 0
 * @threads See "Handlers and threads" above.
 */
SM_API int sm_peer_send_frame(sm_peer *p, const sm_frame_msg *msg);

/**
 * sm_peer_send() with the header bytes the sending spec does not compute
 * given by the caller: the offset= bytes before a length field (see
 * sm_conn_send_hdr() in conn.h, whose contract this shares: hdr_len must be
 * sm_frame_hdr_len() of the sending spec; a type: spec takes the type byte
 * first).
 *
 * @param p        the peer
 * @param hdr      the header bytes (may be NULL when hdr_len is 0)
 * @param hdr_len  how many
 * @param msg      the payload (may be NULL when len is 0)
 * @param len      its length
 * @return as sm_peer_send(), plus -EINVAL for a hdr_len the spec does not
 *         take and -EPROTO for an unmapped type byte (nothing sent)
 */
SM_API int sm_peer_send_hdr(sm_peer *p, const void *hdr, size_t hdr_len, const void *msg,
                            size_t len);

/**
 * Change one connection's framing at a message boundary: rx for what is
 * received from now on, tx for what is sent (NULL: unchanged). Copied.
 * Loop model: sm_stream_set_spec() (stream.h), whose contract this is;
 * call it on the peer's loop thread, from on_message to switch right after
 * the message being handled (bytes already read behind it are decoded with
 * rx). Thread model: rx only from the peer's own handlers (its connection
 * thread; from elsewhere -EINVAL), where the switch follows the message
 * being handled as in sm_conn_set_spec(); tx from any thread, under the
 * peer's send lock.
 *
 * @param p   the peer
 * @param rx  the receiving spec, or NULL to keep it
 * @param tx  the sending spec, or NULL to keep it
 * @retval 0              done
 * @retval -EINVAL        a NULL p; thread model: rx from another thread
 * @retval SM_ERR_SPEC    a spec fails sm_frame_spec_check(), or cannot
 *                        carry the server's heartbeat ping: nothing changed
 * @retval SM_ERR_CLOSED  the peer is closing
 * @retval -EBUSY, -ENOMEM  see sm_stream_set_spec() and sm_conn_set_spec()
 */
SM_API int sm_peer_set_spec(sm_peer *p, const sm_frame_spec *rx, const sm_frame_spec *tx);

/**
 * Half-close: FIN once every queued reply is written; messages still
 * arrive. Later sends fail with -EPIPE. When the client's EOF arrives, the
 * peer closes with reason 0. Idempotent.
 *
 * @param p  the peer
 * @retval 0              shutting down
 * @retval SM_ERR_CLOSED  closing
 * @retval -EINVAL        NULL
 * @threads See "Handlers and threads" above.
 */
SM_API int sm_peer_shutdown(sm_peer *p);

/**
 * Close now (abortive): queued replies are dropped, no on_message runs after
 * this call returns (in the thread model: after the current one returns, if
 * called from another thread); on_close(p, SM_ERR_CLOSED) follows.
 *
 * @param p  the peer
 * @retval 0              closing
 * @retval SM_ERR_CLOSED  already closing
 * @retval -EINVAL        NULL
 * @threads See "Handlers and threads" above.
 */
SM_API int sm_peer_close(sm_peer *p);

/** The outcome of sm_peer_detach(), right before on_close.
 * @param p         the peer (on_close(p, SM_ERR_DETACHED) follows)
 * @param fd        status 0: the socket, now the caller's; else -1
 * @param rest      status 0: the bytes read beyond the boundary, a malloc'ed
 *                  copy the caller frees, or NULL
 * @param rest_len  how many
 * @param status    0, or why the hand-off failed (the peer's close reason)
 * @param arg       the arg given to sm_peer_detach() */
typedef void (*sm_peer_detach_cb)(sm_peer *p, int fd, uint8_t *rest, size_t rest_len, int status,
                                  void *arg);

/**
 * Hand the connection's socket off raw, as sm_stream_detach() (stream.h)
 * does for a stream, whose contract this shares: reading stops at the
 * message boundary, queued replies go out first, then cb gets the socket
 * and the bytes read ahead, and the peer ends with on_close(p,
 * SM_ERR_DETACHED): it no longer counts toward max_conns, a drain no
 * longer waits for it, and sm_server_stats counts it as SM_CLOSE_DETACHED.
 * The socket is out of the server's loop: hand it to a stream of your own
 * (on any loop) or a thread.
 *
 * @param p    the peer
 * @param cb   required: the outcome, on the peer's loop thread
 * @param arg  passed to cb
 * @retval 0            detaching: cb runs once, before on_close
 * In the thread model the connection thread hands off once the
 * on_message that asked returns (sends block until written, so every reply
 * is out): it takes the socket and the bytes read ahead from its sm_conn
 * (sm_conn_detach()) and calls cb on that thread; sends from other threads
 * fail with -EPIPE from the call on, and an sm_peer_close() from another
 * thread before that on_message returns wins (cb gets SM_ERR_CLOSED).
 *
 * @retval -EINVAL      NULL, a TLS peer (its session cannot be handed
 *                      over), or (thread model) not called on the peer's
 *                      connection thread
 * @retval SM_ERR_CLOSED, -EALREADY, -EPIPE, -EBUSY, -ENOMEM  as for
 *                      sm_stream_detach()
 * @threads The loop model: the peer's loop thread; the thread model: its
 * connection thread (from its handlers, typically on_message).
 */
SM_API int sm_peer_detach(sm_peer *p, sm_peer_detach_cb cb, void *arg);

/**
 * The client's address: from the PROXY header when the listener expects one
 * and it named addresses, else the socket's peer (getpeername).
 *
 * @param p    the peer
 * @param out  receives the address
 * @retval 1        it came from a PROXY header
 * @retval 0        it came from the socket
 * @retval -EBADF   in the loop model's on_close, where the socket is already
 *                  closed: take the address in on_open if you need it then
 * @retval -EINVAL  a NULL argument
 * @retval -errno   getpeername(2) failed
 */
SM_API int sm_peer_addr(const sm_peer *p, sm_addr *out);

/**
 * The address the client connected to: the PROXY header's destination, or
 * the socket's own (getsockname).
 *
 * @param p    the peer
 * @param out  receives the address
 * @return as sm_peer_addr()
 */
SM_API int sm_peer_local_addr(const sm_peer *p, sm_addr *out);

/**
 * A pointer for the handlers; the server never touches it.
 *
 * @param p  the peer
 * @return the pointer (NULL at on_open)
 */
SM_API void *sm_peer_get_data(const sm_peer *p);
/**
 * Set the pointer sm_peer_get_data() returns.
 *
 * @param p     the peer
 * @param data  any pointer
 */
SM_API void sm_peer_set_data(sm_peer *p, void *data);

/**
 * The server the peer belongs to.
 *
 * @param p  the peer
 * @return the server
 */
SM_API sm_server *sm_peer_server(const sm_peer *p);

/**
 * A number unique among the server's peers.
 *
 * @param p  the peer
 * @return 1, 2, ... (0 for NULL)
 */
SM_API uint64_t sm_peer_id(const sm_peer *p);

/**
 * Why the peer is closing, in words ("idle timeout: nothing sent or received
 * for 5000 ms").
 *
 * @param p  the peer
 * @return a string owned by the peer, or ""; valid during on_close
 */
SM_API const char *sm_peer_error_detail(const sm_peer *p);

#ifdef __cplusplus
}
#endif

#endif
