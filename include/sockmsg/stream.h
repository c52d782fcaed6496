/**
 * @file
 * @brief Framed streams: a non-blocking message connection on an sm_loop.
 *
 * An sm_stream is a connected stream socket (TCP or Unix) plus a frame spec,
 * driven by a loop: whole messages arrive in on_message, sm_stream_send
 * queues whole messages, and the stream writes them out as the socket
 * allows. It is the non-blocking sibling of sm_conn (conn.h).
 *
 * @code
 *     static const sm_frame_spec spec = {.kind = SM_FRAME_LENGTH, .len_width = 4};
 *     static void on_msg(sm_stream *s, const sm_frame_msg *m) {
 *         sm_stream_send_frame(s, m);      // echo, without a copy; safe from here
 *     }
 *     static void on_close(sm_stream *s, int reason) { ... }   // once, last
 *     static const sm_stream_opts opts = {
 *         .spec = &spec, .on_message = on_msg, .on_close = on_close,
 *         .idle_timeout_ms = 60000,
 *     };
 *     sm_stream *s;
 *     sm_stream_new_take(&s, loop, accepted_fd, &opts, NULL);
 *     sm_loop_run(loop, SM_RUN_DEFAULT);
 * @endcode
 *
 * Options are shared. All configuration and callbacks live in one
 * sm_stream_opts that the caller keeps alive (and unchanged) while any
 * stream uses it; each stream keeps a pointer to it, as it does to the spec.
 * Make one per kind of connection, not one per connection. To build one from
 * a spec string, or to keep nothing of your own alive, let the library own
 * it: sm_stream_opts_new copies it (parsing opts.frame), sm_stream_opts_free
 * frees it.
 *
 * Reading. The stream reads into a buffer shared by all streams of its loop
 * (256 KiB), decodes every whole message in it in place and calls on_message
 * once per message; only the bytes of an unfinished message are copied into
 * a buffer of the stream's own, which is freed as soon as the stream is at a
 * message boundary again (when a length prefix tells the message's size,
 * that buffer has exactly its size, and the rest of the message and what
 * follows it are read with one readv into it and the shared buffer).
 * Per readiness event the stream keeps reading while reads come back full,
 * until opts.read_budget bytes are read (checked between reads: one read may
 * take up to the shared buffer, or a message's rest and the shared buffer),
 * then lets other streams run (it asks the loop to report the socket again:
 * on epoll a TCP stream's socket is edge-triggered).
 *
 * Memory. An idle stream holds no read buffer, no queue and no timer: it
 * costs its 112-byte struct (one 128-byte malloc chunk, which has room for
 * an sm_server's 8-byte peer record too) plus the loop's per-fd slots;
 * bench/idle_rss measures about 148 bytes of server RSS per idle connection
 * (10,000 connections, each having echoed one message; Release, epoll).
 *
 * Writing. sm_stream_send copies header, payload and trailer into the
 * stream's queue, where small messages share buffer chunks (no allocation
 * per message); sm_stream_sendv_take queues the caller's buffers without a
 * copy, and sm_stream_send_frame a received frame as it came (an echo:
 * without a copy from on_message). The queue goes out with gather writes
 * (sendmsg, up to IOV_MAX pieces each). Replies sent from on_message are
 * written together after the whole read batch (one syscall for many
 * replies); sends from elsewhere are written at the end of the current loop
 * iteration, coalesced likewise (opts.write_now writes at once instead). An
 * empty queue costs nothing.
 *
 * Backpressure. When the queue grows past opts.high_water bytes,
 * sm_stream_send returns 1 (stop producing); once the queue is back at
 * opts.low_water, on_drain runs (produce again). A send that would take the
 * queue past opts.max_queued closes the stream with SM_ERR_SLOW_CONSUMER:
 * the queue's memory stays within that cap plus chunk slack (under a third
 * more, plus at most 32 KiB) and small node headers. Whether reading waits
 * for the queue too is opts.read_backpressure:
 * - SM_READ_BP_NONE (default): reading never depends on the stream's own
 *   queue: a client that pipelines requests keeps reading the replies while
 *   it waits for on_drain. (Were both peers to stop reading while their own
 *   queue is full, each would wait for the other: two such peers deadlock.)
 * - SM_READ_BP_PAUSE: reading pauses while the queue is above high_water and
 *   resumes at low_water (before on_drain): for a server, whose reads
 *   produce its writes, so a peer that does not read our replies cannot feed
 *   us more work; TCP flow control slows it down instead. sm_server's
 *   connections work so.
 *
 * Either way a peer that never reads cannot make the queue exceed
 * max_queued. sm_stream_read_stop is separate from both (a relay, whose
 * reads on one stream become writes on another, stops reading the one
 * while the other's send says 1, and starts again in the other's on_drain).
 *
 * Timeouts and heartbeats (all optional, milliseconds, 0 = off): read
 * (nothing received), write (queued bytes make no progress), idle (nothing
 * sent or received), heartbeat (send a ping after heartbeat_ms with nothing
 * sent; close with SM_ERR_HEARTBEAT after heartbeat_timeout_ms with nothing
 * received). They cost no timer per stream: the loop keeps one timing wheel
 * for all its streams, with a resolution of SM_STREAM_TIMER_RES_MS, and a
 * stream's activity only stores a timestamp. Any bytes count as activity,
 * pings included. A ping goes out only while the queue is empty (queued
 * bytes are what the peer will hear first). Reading paused by backpressure
 * (SM_READ_BP_PAUSE) does not stop the read and heartbeat timeouts: a peer
 * we cannot keep up with looks silent. Timeouts may be up to
 * SM_STREAM_TIMEOUT_MAX_MS.
 *
 * Closing. on_close(stream, reason) runs exactly once per stream, on the
 * loop thread, never inside the call that caused it (at the end of the loop
 * iteration), as the last callback of the stream; the stream's memory is
 * freed when it returns. I/O stops at once when a stream closes: no
 * on_message is delivered after the call that closed it, not even the rest
 * of a read batch. The reasons:
 * @code{.unparsed}
 *   0                      clean EOF: both directions are shut down (the peer's
 *                          EOF arrived at a message boundary, our queue was
 *                          written out, then our FIN)
 *   SM_ERR_CLOSED          sm_stream_close (a local, abortive close)
 *   -ECONNRESET, -EPIPE    the peer reset the connection
 *   -ETIMEDOUT             read, write, idle or connect timeout
 *   SM_ERR_HEARTBEAT       nothing received within heartbeat_timeout_ms
 *   -EMSGSIZE              a frame over the spec's max (oversize=close)
 *   -EPROTO                a malformed frame
 *   SM_ERR_TRUNCATED       the peer's EOF came in the middle of a message
 *   SM_ERR_SLOW_CONSUMER   the queue would exceed max_queued
 *   SM_ERR_DETACHED        sm_stream_detach handed the socket off (not a
 *                          failure: the detach callback ran just before)
 *   connect errors         -ECONNREFUSED, SM_ERR_RESOLVE, -ENOENT, ... (dial,
 *                          when reconnecting is off or gives up)
 *   other -errno           -ENOMEM, or what the kernel reported
 * @endcode
 * sm_stream_error_detail says more ("length 20971520 exceeds max 16777216
 * (len32be header at stream offset 120)", "read timeout: nothing received
 * for 5000 ms").
 *
 * Unsent messages. When a stream closes, the messages still queued are
 * reported: on_dropped runs for each copied message not (completely)
 * written, and the free callback of each sendv_take message runs with the
 * reason. Bytes the kernel accepted are not tracked further: a connection
 * that fails loses what was in flight.
 *
 * Reconnecting (dialed streams, opts.reconnect): when the connection is
 * lost (for any reason but sm_stream_close or sm_stream_shutdown), the
 * stream stays open, tells on_reconnect, waits a jittered
 * exponential backoff and dials again; on_connect runs for each new
 * connection. Unsent messages are kept and sent on the next connection from
 * the start of the first unfinished message (SM_UNSENT_KEEP), or reported as
 * on close (SM_UNSENT_DROP); messages sent while disconnected are queued
 * either way. A heartbeat ping still queued is discarded silently.
 *
 * @callbacks From any callback (of this stream or another, or a timer
 * or io callback of the same loop) you may send on, shut down or close any
 * stream of the loop, and create new ones. sm_loop_run and sm_loop_free may
 * not be called from callbacks.
 *
 * @threads A stream belongs to its loop's thread; no function here is
 * thread-safe. Use sm_loop_wakeup() to hand work to the loop thread.
 */
#ifndef SOCKMSG_STREAM_H
#define SOCKMSG_STREAM_H

#include <sys/uio.h>

#include "api.h"
#include "endpoint.h"
#include "error.h"
#include "frame.h"
#include "tls.h"
#include "loop.h"
#include "socket.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A framed stream (opaque). */
typedef struct sm_stream sm_stream;

/** Resolution of timeouts and heartbeats: they fire up to this much late. */
#define SM_STREAM_TIMER_RES_MS 8
/** Largest timeout or heartbeat interval accepted (10 days). */
#define SM_STREAM_TIMEOUT_MAX_MS 864000000

/** What a lost connection does with unsent messages (see above). */
typedef enum sm_stream_unsent {
    SM_UNSENT_KEEP = 0, /**< send them on the next connection */
    SM_UNSENT_DROP = 1, /**< report them (on_dropped, free callbacks) and forget */
} sm_stream_unsent;

/** Whether reading waits for the stream's own queue (see Backpressure). */
typedef enum sm_stream_read_bp {
    SM_READ_BP_NONE = 0,  /**< reading never waits for the queue (clients) */
    SM_READ_BP_PAUSE = 1, /**< reading pauses above high_water (servers) */
} sm_stream_read_bp;

/** One whole message.
 * @param s    the stream
 * @param msg  the message; it and the bytes it points at are borrowed: valid
 *             until the callback returns */
typedef void (*sm_stream_message_cb)(sm_stream *s, const sm_frame_msg *msg);
/** The stream is closed: the last callback; its memory is freed when this
 * returns.
 * @param s       the stream
 * @param reason  why (see "Closing" above) */
typedef void (*sm_stream_close_cb)(sm_stream *s, int reason);
/** on_connect, on_eof, on_drain. @param s the stream */
typedef void (*sm_stream_cb)(sm_stream *s);
/** The connection was lost or could not be made; the stream dials again.
 * @param s         the stream
 * @param reason    why (with sm_stream_error_detail())
 * @param attempt   the number of consecutive failures so far (1, 2, ...)
 * @param delay_ms  the next attempt starts in this many ms */
typedef void (*sm_stream_reconnect_cb)(sm_stream *s, int reason, int attempt, int delay_ms);
/** A copied message that will never be sent.
 * @param s    the stream
 * @param msg  its payload in msg->data, the whole frame in msg->frame;
 *             borrowed until the callback returns */
typedef void (*sm_stream_dropped_cb)(sm_stream *s, const sm_frame_msg *msg);
/** A sendv_take message is done with: free your buffers.
 * @param ctx     the ctx given to sm_stream_sendv_take()
 * @param status  0 once its last byte was written to the socket, else the
 *                reason it was dropped unsent */
typedef void (*sm_stream_free_cb)(void *ctx, int status);

/** Stream configuration, shared by pointer (see above); all-zero fields mean
 * the defaults. Callbacks may be NULL except on_message. */
typedef struct sm_stream_opts {
    /** Required; checked, shared, must outlive the streams (or see frame and
     * sm_stream_opts_new()). */
    const sm_frame_spec *spec;

    sm_stream_message_cb on_message; /**< required: one whole message */
    sm_stream_close_cb on_close;     /**< the stream is closed (the last callback) */
    sm_stream_cb on_connect;         /**< dialed streams: each time a connection is up */
    sm_stream_cb on_eof;             /**< the peer shut down its side (after its last message) */
    sm_stream_cb on_drain;           /**< the queue fell to low_water after passing high_water */
    sm_stream_reconnect_cb on_reconnect; /**< a connection was lost or failed (opts.reconnect) */
    sm_stream_dropped_cb on_dropped;     /**< a copied message will never be sent */

    size_t high_water;  /**< sends return 1 above this; default 1 MiB */
    size_t low_water;   /**< on_drain at or below; default high_water / 4 */
    size_t max_queued;  /**< hard cap; default 16 MiB + 64 KiB, and at least high_water */
    size_t read_budget; /**< bytes per readiness event, checked between reads; 256 KiB */
    /** SM_READ_BP_PAUSE: reading also pauses above high_water, resuming at
     * low_water (servers); default SM_READ_BP_NONE (see above). */
    sm_stream_read_bp read_backpressure;

    /** Per connection (resolving + racing); 0: 30 s; SM_FOREVER: none. */
    int connect_timeout_ms;
    int read_timeout_ms;      /**< close -ETIMEDOUT: nothing received this long */
    int write_timeout_ms;     /**< close -ETIMEDOUT: queued bytes stuck this long */
    int idle_timeout_ms;      /**< close -ETIMEDOUT: nothing sent or received */
    int heartbeat_ms;         /**< send a ping after this long with nothing sent */
    int heartbeat_timeout_ms; /**< close SM_ERR_HEARTBEAT: nothing received */
    /** The ping's payload (default: empty). The peer's on_message sees pings
     * like any message unless it sets swallow_pings, which drops every
     * incoming message equal to its own ping payload (so an application
     * message equal to it would be swallowed too: pick a distinct one). */
    const void *ping;
    size_t ping_len;    /**< the ping's length */
    int ping_type;      /**< type byte of the ping for type: specs */
    bool swallow_pings; /**< drop incoming messages equal to the ping (see ping) */

    bool reconnect;             /**< dialed streams: reconnect when lost */
    int reconnect_min_ms;       /**< first backoff; default 100 */
    int reconnect_max_ms;       /**< backoff ceiling; default 30000 */
    int reconnect_max_attempts; /**< consecutive failures before giving up; 0: never */
    sm_stream_unsent unsent;    /**< what a lost connection does with unsent messages */

    /** After the peer's EOF: false (default) writes out the queue (and what
     * on_eof sends), then shuts down our side and closes with 0; true keeps
     * the stream half-open until sm_stream_shutdown or sm_stream_close. */
    bool half_open;
    /** Write at once when a send finds the queue empty, instead of at the end
     * of the iteration: lower latency for a lone send, a syscall per send
     * for bursts. Replies from on_message are batched either way. */
    bool write_now;
    /** Socket options for dialed streams (NULL: sm_sock_opts defaults,
     * TCP_NODELAY on). Wrapped fds are left as they are. */
    const sm_sock_opts *sock;
    /** A spec string ("line,max=4096"), read only by sm_stream_opts_new(),
     * which parses it into the copy it makes; the stream functions take the
     * parsed spec only (a frame without a spec there is -EINVAL). */
    const char *frame;
    /** tls:// dials: the client TLS configuration (tls.h; referenced, not
     * copied). NULL: one with the system's trust store per connection
     * (no session resumption). */
    sm_tls_config *tls;
    /** The spec messages are sent with, when it differs from the one they
     * are received with (PostgreSQL's client sends its startup without a
     * type byte; requests and replies framed apart). NULL: spec, for both.
     * Checked, shared and kept alive like spec. sm_stream_set_spec()
     * changes either on one stream. */
    const sm_frame_spec *send_spec;
    /** send_spec as a spec string, read only by sm_stream_opts_new(), as
     * frame is. */
    const char *send_frame;
    /** Unix sockets: receive file descriptors with messages, at most this
     * many per message (1 to ::SM_FDS_MAX), and allow
     * sm_stream_send_fds() (unix.h). 0: off (plain reads and writes). */
    int max_fds;
    /** Unix sockets, with max_fds: learn each message's sender
     * (SCM_CREDENTIALS, SO_PASSCRED set at connect) for
     * sm_stream_msg_cred() (unix.h). -EINVAL without max_fds. */
    bool pass_cred;
} sm_stream_opts;

/**
 * A library-owned copy of *opts that points at nothing of the caller's.
 *
 * The spec is parsed from opts->frame (a spec string) or copied from
 * *opts->spec (set exactly one of the two), and the ping payload and
 * *opts->sock are copied too. Nothing of *opts needs to outlive the call;
 * the copy is what the streams share, so it must outlive them (as any
 * opts): free it with sm_stream_opts_free() after the last stream using it
 * is freed. Streams keep a pointer to their opts instead of a copy each so
 * that an idle stream stays 128 bytes; this is the one allocation for all of
 * them. The other options are checked when a stream is made with it.
 *
 * @param out      receives the copy
 * @param opts     the options to copy
 * @param why      NULL, or a buffer for a one-line explanation of an error
 * @param why_len  the size of @p why
 * @retval 0            *out is set
 * @retval -EINVAL      a NULL argument, both or neither of frame and spec,
 *                      ping_len without ping
 * @retval SM_ERR_SPEC  frame does not parse, or spec fails
 *                      sm_frame_spec_check()
 * @retval -ENOMEM      out of memory
 */
SM_API int sm_stream_opts_new(sm_stream_opts **out, const sm_stream_opts *opts, char *why,
                              size_t why_len);

/**
 * Free a copy made by sm_stream_opts_new() (only that: never an
 * sm_stream_opts of the caller's).
 *
 * @param opts  the copy, or NULL (a no-op)
 */
SM_API void sm_stream_opts_free(sm_stream_opts *opts);

/* ---- creating ------------------------------------------------------------- */

/**
 * Wrap a connected stream socket (an accepted or dialed TCP or Unix socket)
 * in a stream on `loop`.
 *
 * Takes ownership of fd: the stream closes it, and so does a failure here.
 * The fd is put in non-blocking mode; its other options are left alone.
 * Reading starts at once (on_connect is not called: the stream is connected
 * already). Allocates the stream (about 128 bytes) and, for the first
 * stream of a loop, the loop's shared stream state (freed with the loop).
 *
 * @param out   receives the stream
 * @param loop  the loop it runs on
 * @param fd    the connected socket, now the stream's
 * @param opts  the configuration; not copied (nor opts->spec): they must stay
 *              valid and unchanged while the stream exists
 * @param data  the initial sm_stream_get_data()
 * @retval 0            *out is set
 * @retval -EINVAL      a NULL argument, fd < 0, no on_message, bad option
 *                      values
 * @retval SM_ERR_SPEC  opts->spec fails sm_frame_spec_check(), or the ping
 *                      cannot be framed
 * @retval -ENOMEM      out of memory
 * @retval -errno       the loop's error for the fd (e.g. -EEXIST if another
 *                      watcher holds it)
 * @callbacks Callable from callbacks; no callback runs inside it.
 */
SM_API int sm_stream_new_take(sm_stream **out, sm_loop *loop, int fd, const sm_stream_opts *opts,
                              void *data);

/**
 * sm_stream_new_take() with TLS on the socket.
 *
 * As a server when cfg is SM_TLS_SERVER (an accepted socket), else as a
 * client verifying `host` (NULL: the config's server name). The handshake runs
 * from the loop, within the config's handshake timeout (10 s by default;
 * the stream closes with -ETIMEDOUT past it); messages sent meanwhile are
 * queued and written once it is done. A failed handshake closes the
 * stream with an SM_ERR_TLS_* reason, sm_stream_error_detail saying
 * OpenSSL's. Over TLS, sm_stream_shutdown sends close_notify before the
 * FIN and reading goes on; sm_stream_close sends close_notify if the
 * kernel takes it at once; the peer's EOF without close_notify closes the
 * stream with SM_ERR_TRUNCATED in the middle of a message (or with eof
 * framing) and with SM_ERR_TLS_EOF at a message boundary, instead of
 * on_eof. Dialed tls:// endpoints (sm_stream_dial) get the same, with
 * opts->tls. Takes fd, also on failure.
 *
 * @param out      receives the stream
 * @param loop     its loop
 * @param fd       a connected socket; taken, also on failure
 * @param opts     the options, as for sm_stream_new_take
 * @param data     the initial sm_stream_get_data()
 * @param cfg      the TLS configuration (referenced, not copied)
 * @param host     the name to verify (client side), or NULL
 * @param why      NULL, or a buffer for a one-line reason on failure
 * @param why_len  the size of @p why
 * @return 0, or an error as sm_stream_new_take() and sm_tls_config's (why:
 *         TLS setup)
 */
SM_API int sm_stream_new_tls(sm_stream **out, sm_loop *loop, int fd, const sm_stream_opts *opts,
                             void *data, sm_tls_config *cfg, const char *host, char *why,
                             size_t why_len);

/**
 * Connect to an endpoint string asynchronously.
 *
 * Returns at once with the stream in *out; the connection is made from the
 * loop: resolving the name (synchronously, with getaddrinfo, so a DNS name
 * may block the loop for as long as the resolver takes; numeric addresses
 * and Unix paths do not), then non-blocking connects raced as RFC 8305
 * describes, like sm_dial: IPv6 first, the next address 250 ms later while
 * earlier attempts are pending or at once when one fails, the first success
 * wins. opts->connect_timeout_ms bounds each connection (resolution
 * included). on_connect runs when connected; on failure the stream closes
 * with the most meaningful error (on_close: -ECONNREFUSED, -ETIMEDOUT,
 * SM_ERR_RESOLVE, ...), or, with opts->reconnect, retries (on_reconnect).
 * Messages sent before the connection is up are queued (bounded by
 * max_queued) and written once it is.
 *
 * @param out       receives the stream
 * @param loop      the loop it runs on
 * @param endpoint  an endpoint string (endpoint.h); copied
 * @param opts      the configuration; not copied, as for sm_stream_new_take()
 * @param data      the initial sm_stream_get_data()
 * @param why       NULL, or a buffer for a one-line explanation of an
 *                  endpoint error
 * @param why_len   the size of @p why
 * @retval 0                *out is set
 * @retval -EINVAL          a NULL argument, bad option values
 * @retval SM_ERR_ENDPOINT  a malformed endpoint (or another error of
 *                          sm_endpoint_parse())
 * @retval SM_ERR_SPEC      as for sm_stream_new_take()
 * @retval -ENOMEM          out of memory
 * @callbacks Callable from callbacks; no callback runs inside it.
 */
SM_API int sm_stream_dial(sm_stream **out, sm_loop *loop, const char *endpoint,
                          const sm_stream_opts *opts, void *data, char *why, size_t why_len);

/**
 * sm_stream_dial() with a parsed endpoint.
 *
 * @param out   receives the stream
 * @param loop  the loop it runs on
 * @param ep    the endpoint; copied
 * @param opts  the configuration; not copied, as for sm_stream_new_take()
 * @param data  the initial sm_stream_get_data()
 * @return 0, or an error as sm_stream_dial()
 * @callbacks Callable from callbacks; no callback runs inside it.
 */
SM_API int sm_stream_dial_endpoint(sm_stream **out, sm_loop *loop, const sm_endpoint *ep,
                                   const sm_stream_opts *opts, void *data);

/* ---- sending -------------------------------------------------------------- */

/**
 * Queue one message (a copy of msg[0..len)). Never blocks. On an error
 * nothing is queued.
 *
 * @param s    the stream
 * @param msg  the payload; may be NULL when len is 0
 * @param len  its length
 * @retval 0  queued
 * @retval 1  queued, and the queue is now above high_water: stop producing
 *            until on_drain
 * @retval -EMSGSIZE, -EINVAL  the spec cannot frame it (over max, or a
 *                       delimiter inside a delimited payload), or the frame
 *                       alone is larger than max_queued (the stream stays
 *                       open)
 * @retval -EPROTO       a type: spec: use sm_stream_send_type()
 * @retval -EPIPE        after sm_stream_shutdown() or the automatic shutdown
 *                       after the peer's EOF
 * @retval SM_ERR_CLOSED closing
 * @retval SM_ERR_SLOW_CONSUMER  the queue would exceed max_queued: the stream
 *                       is closing now, or reconnecting
 * @retval -ENOMEM       out of memory
 * @callbacks Safe from every callback, on_message included; a closing caused
 * here is reported later.
 */
SM_API int sm_stream_send(sm_stream *s, const void *msg, size_t len);

/**
 * sm_stream_send() for type: specs.
 *
 * @param s     the stream
 * @param type  the type byte (it must be mapped: -EPROTO otherwise)
 * @param msg   the payload after the type byte; may be NULL when len is 0
 * @param len   its length
 * @return as sm_stream_send()
 * @callbacks Safe from every callback.
 */
SM_API int sm_stream_send_type(sm_stream *s, int type, const void *msg, size_t len);

/**
 * Queue one message made of iovcnt pieces (copied).
 *
 * @param s       the stream
 * @param iov     the pieces of the payload
 * @param iovcnt  how many (-EINVAL if negative, or for a piece with a NULL
 *                base and a nonzero length)
 * @return as sm_stream_send()
 * @callbacks Safe from every callback.
 */
SM_API int sm_stream_sendv(sm_stream *s, const struct iovec *iov, int iovcnt);

/**
 * Queue one message made of the caller's buffers, without copying them.
 *
 * On success the stream owns the buffers until it calls free_cb(ctx,
 * status) exactly once: with 0 when the message was written to the socket,
 * with the reason when it was dropped unsent (closing, or a lost connection
 * under SM_UNSENT_DROP); never inside this call. On failure free_cb never
 * runs and the buffers stay the caller's. Not for type: specs (-EPROTO).
 *
 * @param s        the stream
 * @param iov      the pieces of the payload; the array itself is copied (up
 *                 to IOV_MAX - 2 pieces), the bytes are not
 * @param iovcnt   how many
 * @param free_cb  required; may call any stream function
 * @param ctx      passed to free_cb
 * @return as sm_stream_send(), plus -EINVAL for a NULL free_cb or too many
 *         pieces
 * @callbacks Safe from every callback.
 */
SM_API int sm_stream_sendv_take(sm_stream *s, const struct iovec *iov, int iovcnt,
                                sm_stream_free_cb free_cb, void *ctx);

/**
 * Queue one message with the header bytes the sending spec does not
 * compute given by the caller: the offset= bytes before a length field (a
 * type byte, as sm_conn_send_hdr() in conn.h, whose contract this shares:
 * hdr_len must be sm_frame_hdr_len() of the sending spec, -EINVAL
 * otherwise; a type: spec takes the type byte first).
 *
 * @param s        the stream
 * @param hdr      the header bytes (may be NULL when hdr_len is 0)
 * @param hdr_len  how many
 * @param msg      the payload (may be NULL when len is 0)
 * @param len      its length
 * @return as sm_stream_send(), plus -EINVAL for a hdr_len the spec does not
 *         take and -EPROTO for an unmapped type byte (nothing queued)
 * @callbacks Safe from every callback.
 */
SM_API int sm_stream_send_hdr(sm_stream *s, const void *hdr, size_t hdr_len, const void *msg,
                              size_t len);

/**
 * Change the framing at a message boundary: rx for what is received from
 * now on, tx for what is sent from the next send on. A stream starts with
 * its opts' spec and send_spec (the same spec for both when send_spec is
 * NULL); this gives it its own (copied: nothing of the caller's is kept).
 *
 * From on_message, the boundary is the end of the message being handled:
 * the messages read in the same batch behind it, already in the buffer, are
 * decoded with the new rx spec (the read loop resets its decoder there).
 * Elsewhere, the bytes read beyond the last message delivered are decoded
 * with it. While an oversized message is being discarded (oversize=skip),
 * the switch happens at its end. Messages already queued keep the framing
 * they were queued with; on_dropped and SM_UNSENT_KEEP find the queued
 * frames with the current send spec, so change tx with an empty queue
 * (sm_stream_queued()) where those matter. When a dialed stream loses its
 * connection, the next one starts with the opts' specs again.
 *
 * @param s   the stream
 * @param rx  the receiving spec, or NULL to keep it
 * @param tx  the sending spec, or NULL to keep it
 * @retval 0              done
 * @retval -EINVAL        a NULL s
 * @retval SM_ERR_SPEC    rx or tx fails sm_frame_spec_check(), or cannot
 *                        carry the opts' heartbeat ping: nothing changed
 * @retval -EBUSY         outside a read, an oversized message is being
 *                        discarded: nothing changed
 * @retval SM_ERR_CLOSED  the stream is closing
 * @retval -ENOMEM        out of memory (the first call allocates the
 *                        stream's specs, about 4 KiB)
 * @callbacks Safe from every callback; made for on_message.
 */
SM_API int sm_stream_set_spec(sm_stream *s, const sm_frame_spec *rx, const sm_frame_spec *tx);

/**
 * Queue a received message as it came: msg->frame, header and trailer
 * included, byte for byte (an echo, or forwarding to a stream with the same
 * framing).
 *
 * msg is a message handed to on_message (or on_dropped); the frame is
 * sent as is, not re-encoded, so s's spec must frame it the same way as
 * the spec that decoded it (the same spec, typically). Sent on the stream
 * that received it, from its on_message, the frame is not copied: it is
 * queued by reference into the read buffer, consecutive frames coalesce,
 * and the whole read batch's replies go out in one write before that
 * buffer is reused; only bytes the kernel does not take then are copied
 * into the queue. Anywhere else the frame is copied like sm_stream_send
 * copies a message (without encoding it again). Either way the bytes are
 * the stream's once this returns.
 *
 * @param s    the stream
 * @param msg  a message handed to on_message or on_dropped
 * @return as sm_stream_send() (-EMSGSIZE when msg->len is over s's spec max,
 *         -EINVAL for a NULL msg or frame); an empty frame (an empty
 *         eof-framed message) queues nothing and returns 0
 * @callbacks Safe from every callback.
 */
SM_API int sm_stream_send_frame(sm_stream *s, const sm_frame_msg *msg);

/**
 * The bytes queued and not yet written (headers included).
 *
 * @param s  the stream
 * @return the count
 */
SM_API size_t sm_stream_queued(const sm_stream *s);

/* ---- flow control ------------------------------------------------------- */

/**
 * Stop reading from the socket until sm_stream_read_start(): what the peer sends then waits in the
 * kernel, and TCP flow control slows the peer down (a proxy pausing one side while the other
 * drains, a consumer with no room). Messages already read in the current batch are still delivered
 * (at most one read's worth, whole messages only), so on_message may run after this call from
 * within on_message. Sending, timeouts and heartbeats go on: a long stop may need read/heartbeat
 * timeouts that allow it. Survives a reconnect. Idempotent.
 *
 * @param s  the stream
 * @retval 0              stopped
 * @retval SM_ERR_CLOSED  closing
 * @retval -EINVAL        NULL
 * @callbacks Safe from every callback.
 */
SM_API int sm_stream_read_stop(sm_stream *s);

/**
 * Resume reading after sm_stream_read_stop(); what arrived meanwhile is
 * delivered from the next loop iteration. With SM_READ_BP_PAUSE, reading may
 * still be paused by backpressure (high_water), which is separate.
 *
 * @param s  the stream
 * @return as sm_stream_read_stop()
 * @callbacks Safe from every callback.
 */
SM_API int sm_stream_read_start(sm_stream *s);

/* ---- ending --------------------------------------------------------------- */

/**
 * Half-close: send FIN once the queue is written out.
 *
 * Later sends fail with -EPIPE; reading goes on. Once the peer's EOF has
 * arrived too, the stream closes with reason 0. Ends reconnecting.
 * Idempotent.
 *
 * @param s  the stream
 * @retval 0              shutting down
 * @retval SM_ERR_CLOSED  closing
 * @retval -EINVAL        NULL
 * @callbacks Callable from callbacks.
 */
SM_API int sm_stream_shutdown(sm_stream *s);

/**
 * Close now (abortive): I/O stops at once, queued messages are dropped
 * (reported as described above), on_close(s, SM_ERR_CLOSED) runs later, then
 * the memory is freed.
 *
 * @param s  the stream
 * @retval 0              closing
 * @retval SM_ERR_CLOSED  already closing (its on_close keeps the first reason)
 * @retval -EINVAL        NULL
 * @callbacks Callable from any callback, this stream's included.
 */
SM_API int sm_stream_close(sm_stream *s);

/** The outcome of sm_stream_detach(), right before on_close.
 * @param s         the stream (on_close follows; it is freed after that)
 * @param fd        status 0: the socket, now the caller's (out of the loop,
 *                  its flags as they were: non-blocking); else -1 (closed)
 * @param rest      status 0: the bytes read beyond the boundary, in order, a
 *                  malloc'ed copy the caller frees; NULL when there are none
 *                  (and always on failure)
 * @param rest_len  how many
 * @param status    0, or why the hand-off failed (the stream's close reason:
 *                  -ECONNRESET, -EPIPE, -ETIMEDOUT, SM_ERR_CLOSED, ...)
 * @param arg       the arg given to sm_stream_detach() */
typedef void (*sm_stream_detach_cb)(sm_stream *s, int fd, uint8_t *rest, size_t rest_len,
                                    int status, void *arg);

/**
 * Hand the socket off raw (STARTTLS to sm_stream_new_tls(), a splice,
 * another protocol's library): the event-driven sm_conn_detach().
 *
 * Reading stops at the message boundary: from on_message, no message after
 * the one being handled is delivered (the rest of the read batch is not
 * decoded); elsewhere, none after the last one delivered. Every byte
 * received beyond that boundary (in the stream's buffer, or held by the
 * transport: on io_uring the receive is cancelled and every completion
 * still due is awaited) becomes the rest, handed over with the socket.
 * First the queue is written out, as usual: a reply queued before the
 * call (the "220 go ahead"), with backpressure and opts.write_timeout_ms
 * still applying; sends after the call fail with -EPIPE. Then cb(s, fd,
 * rest, rest_len, 0, arg) runs, from the loop (never inside this call),
 * and the stream ends: on_close(s, SM_ERR_DETACHED), then it is freed.
 * The fd is no longer in the loop and never closed by the library; it
 * may go to a new stream on the same loop from cb.
 *
 * When the hand-off fails on the way (the peer resets while the queue is
 * written, a write or read timeout, sm_stream_close() meanwhile), the
 * stream closes as it would have, the socket closed: cb gets fd -1 and the
 * reason as status, then on_close the same reason. Messages still queued
 * are reported as on any close. File descriptors received (opts.max_fds)
 * and not taken are closed with the stream.
 *
 * While detaching, sm_stream_read_start(), sm_stream_shutdown() and
 * sm_stream_set_spec() return -EBUSY; sm_stream_close() aborts it. A
 * heartbeat ping due while the queue is written goes out with it.
 *
 * @param s    the stream
 * @param cb   required: the outcome
 * @param arg  passed to cb
 * @retval 0              detaching: cb runs exactly once, before on_close
 * @retval -EINVAL        a NULL argument, or a TLS stream (its session's
 *                        state cannot be handed over; sm_conn_detach says
 *                        -EOPNOTSUPP for the same)
 * @retval -EALREADY      already detaching
 * @retval -ENOTCONN      no connection up (a dialed stream still
 *                        connecting or reconnecting)
 * @retval -EPIPE         after sm_stream_shutdown() or the automatic
 *                        shutdown after the peer's EOF
 * @retval -EBUSY         outside on_message, an oversized message is being
 *                        discarded (oversize=skip): not at a boundary
 * @retval SM_ERR_CLOSED  closing
 * @retval -ENOMEM        out of memory
 * On an error nothing changed and cb never runs. A dialed stream may be
 * detached while connected: it never reconnects afterwards.
 * @callbacks Safe from every callback; made for on_message.
 */
SM_API int sm_stream_detach(sm_stream *s, sm_stream_detach_cb cb, void *arg);

/**
 * A human-readable explanation of why the stream is closing, or
 * (reconnecting) why it lost its connection.
 *
 * @param s  the stream
 * @return a string owned by the stream; "" while connected and healthy.
 *         Valid until the next connection, the next failure, or the end of
 *         on_close.
 */
SM_API const char *sm_stream_error_detail(const sm_stream *s);

/* ---- accessors ------------------------------------------------------------ */

/**
 * The socket. Still the stream's: do not close it or read from it.
 *
 * @param s  the stream
 * @return the fd, or -1 while not connected
 */
SM_API int sm_stream_fd(const sm_stream *s);

/**
 * The loop the stream runs on.
 *
 * @param s  the stream
 * @return the loop
 */
SM_API sm_loop *sm_stream_loop(const sm_stream *s);

/**
 * A pointer for the caller; the stream never touches it.
 *
 * @param s  the stream
 * @return the pointer (initially the `data` given when it was made)
 */
SM_API void *sm_stream_get_data(const sm_stream *s);
/**
 * Set the pointer sm_stream_get_data() returns.
 *
 * @param s     the stream
 * @param data  any pointer
 */
SM_API void sm_stream_set_data(sm_stream *s, void *data);

/**
 * Whether a connection is up.
 *
 * @param s  the stream
 * @return true while connected
 */
SM_API bool sm_stream_is_connected(const sm_stream *s);

#ifdef __cplusplus
}
#endif

#endif
