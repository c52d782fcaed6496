/**
 * @file
 * @brief Event loop: io watchers, timers, signals, cross-thread wake-up,
 * deferred callbacks.
 *
 * One sm_loop runs on one thread. Watchers are small structs the caller
 * allocates (embed them in your own objects: an sm_io is 40 bytes, an
 * sm_timer 72); the loop never allocates per watcher. Timers carry their
 * own links in the loop's timer heap, so a timer costs nothing beyond its
 * struct and starting one never allocates or fails. For io watchers the
 * loop keeps an fd-indexed table of watcher pointers (8 bytes per fd
 * number) and room to record one interest change per active watcher (4
 * bytes), both grown by doubling when an sm_io_start needs room (the only
 * place an io start can fail with -ENOMEM). They live in anonymous
 * mappings grown with mremap: growing leaves no outgrown copy behind, and
 * only the pages of slots in use are resident. The poll backend adds 12
 * bytes per watched fd, io_uring 8 per fd number; epoll keeps its state
 * in the kernel.
 *
 * @code
 *     sm_loop *loop;
 *     if (sm_loop_new(&loop, NULL) < 0) ...
 *     sm_io io;
 *     sm_io_init(loop, &io, fd, on_io);          // fd non-blocking, yours
 *     sm_io_start(&io, SM_READ);
 *     sm_timer t;
 *     sm_timer_init(loop, &t, on_tick);
 *     sm_timer_start(&t, 1000, 1000);            // after 1 s, then every 1 s
 *     sm_loop_run(loop, SM_RUN_DEFAULT);         // until stopped or idle
 *     ...stop the watchers...
 *     sm_loop_free(loop);
 * @endcode
 *
 * An iteration: apply pending interest changes, wait for I/O (until the
 * nearest timer; not at all when deferred work is queued), refresh the
 * cached time, run io callbacks, run due timers, run deferred callbacks, run
 * the on_close callbacks of closed io watchers.
 *
 * I/O readiness is level-triggered on every backend: a callback that leaves
 * bytes unread (or stops before EAGAIN to be fair to other fds) is called
 * again in the next iteration. One io watcher per fd carries both read and
 * write interest. Interest changes are cheap: adding an event costs one
 * syscall at most, removing one is carried out (one syscall) just before the
 * next wait, and a change undone within the same iteration costs nothing.
 * Stop an io watcher before you close its fd (or let sm_io_close do both).
 *
 * @callbacks From any callback you may stop, close or restart any
 * watcher (its own or another's, even one whose event is already pending in
 * this iteration: it is then not called), free a stopped watcher's memory
 * (io: after sm_io_stop, or in on_close after sm_io_close), stop the loop,
 * and start new watchers. A callback never runs inside the call that
 * registers it. You may not call sm_loop_run or sm_loop_free from a callback.
 *
 * @threads The loop and its watchers belong to the thread that runs the loop.
 * Only sm_loop_stop and sm_loop_wakeup may be called from other threads.
 *
 * Fields of the watcher structs are the loop's, except `data`, which is
 * yours. Read them if you like (fd, for instance); never write them.
 */
#ifndef SOCKMSG_LOOP_H
#define SOCKMSG_LOOP_H

#include "api.h"

#ifdef __cplusplus
extern "C" {
#endif

/** An event loop (opaque). */
typedef struct sm_loop sm_loop;
/** An io watcher; see struct sm_io. */
typedef struct sm_io sm_io;
/** A timer; see struct sm_timer. */
typedef struct sm_timer sm_timer;
/** A signal watcher; see struct sm_signal. */
typedef struct sm_signal sm_signal;
/** A deferred callback; see struct sm_defer. */
typedef struct sm_defer sm_defer;

/** @name I/O events
 * Interest and readiness. An error or hang-up on the fd is reported as every
 * event the watcher is interested in, so the next read or write returns it.
 * @{ */
#define SM_READ  0x1u /**< the fd is readable (or at EOF, or in error) */
#define SM_WRITE 0x2u /**< the fd is writable (or in error) */
/** @} */

/**
 * Which kernel interface waits for I/O. More backends may be added;
 * SM_BACKEND_DEFAULT picks one by name from $SOCKMSG_BACKEND, and
 * sm_loop_backend_name() says which a loop runs.
 */
typedef enum sm_loop_backend {
    SM_BACKEND_DEFAULT = 0, /**< $SOCKMSG_BACKEND ("epoll", "poll", "io_uring"), else epoll */
    SM_BACKEND_EPOLL = 1,   /**< epoll(7): O(ready fds) per wait */
    SM_BACKEND_POLL = 2,    /**< poll(2): portable, O(watched fds) per wait */
    /** io_uring(7): streams receive and send by completions (multishot
     * receive into buffers shared per loop, every reply of an iteration
     * submitted with its wait, one syscall); plain watchers get poll
     * requests. Needs Linux >= 6.0 and a build with liburing; where it is
     * missing, disabled or refused, the loop runs on epoll and
     * sm_loop_backend_why() says why. */
    SM_BACKEND_IO_URING = 3,
} sm_loop_backend;

/** How long sm_loop_run() runs. */
typedef enum sm_run_mode {
    SM_RUN_DEFAULT = 0, /**< iterate until sm_loop_stop() or nothing is active */
    SM_RUN_ONCE = 1,    /**< one iteration; wait for I/O or a timer if nothing is queued */
    SM_RUN_NOWAIT = 2,  /**< one iteration; never wait */
} sm_run_mode;

/** Runs on the loop thread after sm_loop_wakeup(). @param loop the loop */
typedef void (*sm_wakeup_cb)(sm_loop *loop);
/** An io watcher's fd is ready.
 * @param w       the watcher
 * @param events  the ready events (SM_READ | SM_WRITE), limited to its
 *                interest */
typedef void (*sm_io_cb)(sm_io *w, unsigned events);
/** An io watcher's close is complete: the loop no longer references it.
 * @param w  the watcher (free it here if you like) */
typedef void (*sm_io_close_cb)(sm_io *w);
/** A timer fired. @param t the timer */
typedef void (*sm_timer_cb)(sm_timer *t);
/** A watched signal arrived.
 * @param w       the watcher
 * @param signum  the signal */
typedef void (*sm_signal_cb)(sm_signal *w, int signum);
/** A deferred callback runs. @param d the deferred callback (inactive now) */
typedef void (*sm_defer_cb)(sm_defer *d);

/** Loop configuration; all-zero means defaults. */
typedef struct sm_loop_opts {
    /** SM_BACKEND_DEFAULT consults $SOCKMSG_BACKEND; any other value wins
     * over the environment. */
    sm_loop_backend backend;
    /** Runs on the loop thread after sm_loop_wakeup() (see there); may be NULL. */
    sm_wakeup_cb on_wakeup;
    /** Initial value of sm_loop_get_data(). */
    void *data;
} sm_loop_opts;

/** An io watcher: interest in one fd. 40 bytes on LP64. Every field but
 * data is the loop's: read them if you like, never write them. */
struct sm_io {
    void *data;    /**< yours */
    sm_loop *loop; /**< the loop it belongs to */
    /** The callback: cb while open, on_close once closing. */
    union {
        sm_io_cb cb;             /**< the readiness callback */
        sm_io_close_cb on_close; /**< once closing */
    } u;
    sm_io *next_closing; /**< the loop's list of closing watchers */
    int fd;              /**< the watched fd; -1 after sm_io_close() */
    uint8_t events;      /**< interest, as set by the caller */
    uint8_t kernel;      /**< interest the backend currently holds */
    uint8_t flags;       /**< internal state */
    uint8_t reserved;    /**< padding */
};

/** A timer. 72 bytes on LP64. Every field but data is the loop's. */
struct sm_timer {
    void *data;      /**< yours */
    sm_loop *loop;   /**< the loop it belongs to */
    sm_timer_cb cb;  /**< the callback */
    int64_t due;     /**< sm_loop_now() value it fires at, while active */
    uint64_t repeat; /**< ms; 0 for a one-shot */
    /** @{ */
    /** Its place in the loop's timer heap (a pairing heap): the links live
     * here so that starting a timer needs no memory from the loop. */
    sm_timer *child, *next, *prev;
    /** @} */
    uint32_t seq; /**< start order: the tie-break among equal `due` */
};

/** A signal watcher. Every field but data is the loop's. */
struct sm_signal {
    void *data;      /**< yours */
    sm_loop *loop;   /**< the loop it belongs to */
    sm_signal_cb cb; /**< the callback */
    sm_signal *next; /**< the loop's list of signal watchers */
    int signum;      /**< 0 while inactive */
    int reserved;    /**< padding */
};

/** A deferred callback. Every field but data is the loop's. */
struct sm_defer {
    void *data;     /**< yours */
    sm_loop *loop;  /**< the loop it belongs to */
    sm_defer_cb cb; /**< the callback */
    /** @{ */
    sm_defer *next, *prev; /**< the loop's queue */
    /** @} */
};

/* ---- loop ---------------------------------------------------------------- */

/**
 * Create a loop.
 *
 * Allocates the loop, a backend instance (an epoll fd for epoll) and an
 * eventfd for sm_loop_wakeup(); all fds are close-on-exec. io_uring asked
 * for but unavailable is not an error: the loop runs on epoll (see
 * sm_loop_backend_why()). Free with sm_loop_free().
 *
 * @param out   receives the loop
 * @param opts  the configuration; NULL for the defaults
 * @retval 0               *out is set
 * @retval -EINVAL         an unknown backend in opts
 * @retval SM_ERR_BACKEND  an unknown backend in $SOCKMSG_BACKEND (with
 *                         SM_BACKEND_DEFAULT)
 * @retval -errno          -ENOMEM, -EMFILE, ... (creating the backend or
 *                         eventfd)
 * @threads Thread-safe (distinct loops are independent).
 */
SM_API int sm_loop_new(sm_loop **out, const sm_loop_opts *opts);

/**
 * Free a loop and everything it allocated.
 *
 * The loop must be idle: no active watcher, no pending deferred callback or
 * on_close (stop your watchers, then run the loop once with SM_RUN_NOWAIT to
 * deliver the pending on_close calls).
 *
 * @param loop  the loop; NULL gives 0
 * @retval 0       freed
 * @retval -EBUSY  something is still active or the loop is running (nothing
 *                 freed)
 * @callbacks Not from a callback.
 */
SM_API int sm_loop_free(sm_loop *loop);

/**
 * Run the loop in the calling thread, which becomes the loop's thread.
 *
 * SM_RUN_DEFAULT iterates until sm_loop_stop() or until nothing is active (no
 * started watcher, no queued deferred callback or on_close). SM_RUN_ONCE runs
 * one iteration, waiting for I/O or the nearest timer when nothing else is
 * queued (a signal interrupting the wait ends it early). SM_RUN_NOWAIT runs
 * one iteration without waiting. With nothing active, every mode returns at
 * once.
 *
 * @param loop  the loop
 * @param mode  how long to run
 * @retval 1        something is still active
 * @retval 0        nothing is active
 * @retval -EBUSY   the loop is already running (called from a callback)
 * @retval -EINVAL  a bad mode
 * @retval -errno   the backend's wait failed (the loop is still usable)
 * @callbacks Not from a callback (-EBUSY).
 */
SM_API int sm_loop_run(sm_loop *loop, sm_run_mode mode);

/**
 * Make sm_loop_run() return.
 *
 * The current iteration completes (its remaining callbacks run), then
 * sm_loop_run() returns. If the loop is not running, the next sm_loop_run()
 * returns at once, running nothing. Several stops before the loop notices
 * count as one.
 *
 * @param loop  the loop
 * @threads Thread-safe: callable from any thread (it then wakes the loop).
 * @callbacks Callable from callbacks.
 */
SM_API void sm_loop_stop(sm_loop *loop);

/**
 * Wake the loop from another thread.
 *
 * After this call, the loop wakes from its wait (or does not wait in its next
 * iteration) and runs opts.on_wakeup at least once, starting after this call
 * began: so a thread pushes work onto its own queue, then calls
 * sm_loop_wakeup(), and on_wakeup drains the queue. Wake-ups coalesce: many
 * calls before the loop reacts cost one syscall and one on_wakeup. Never
 * fails, never blocks.
 *
 * @param loop  the loop; it must stay alive until the call returns (free it
 *              only after every waking thread is done with it)
 * @threads Thread-safe.
 * @callbacks Callable from callbacks.
 */
SM_API void sm_loop_wakeup(sm_loop *loop);

/**
 * The loop's cached monotonic time in milliseconds.
 *
 * Refreshed when sm_loop_run() starts and after each wait for I/O, so every
 * callback of one iteration sees the same value; outside sm_loop_run(),
 * sm_timer_start() also refreshes it. Same clock as CLOCK_MONOTONIC.
 *
 * @param loop  the loop
 * @return the time in ms
 */
SM_API int64_t sm_loop_now(const sm_loop *loop);

/**
 * The name of the backend running: "epoll", "poll" or "io_uring".
 *
 * @param loop  the loop
 * @return a static string
 */
SM_API const char *sm_loop_backend_name(const sm_loop *loop);

/**
 * Why the backend asked for is not the one running (io_uring asked for,
 * epoll running: "io_uring unavailable: io_uring_setup: Operation not
 * permitted ..."). A program says it once, as `sockmsg serve` does.
 *
 * @param loop  the loop
 * @return a string owned by the loop, valid until sm_loop_free(); or NULL
 *         when the backend running is the one asked for
 */
SM_API const char *sm_loop_backend_why(const sm_loop *loop);

/**
 * A pointer for the caller, initially opts.data. The loop never touches it.
 *
 * @param loop  the loop
 * @return the pointer
 */
SM_API void *sm_loop_get_data(const sm_loop *loop);
/**
 * Set the pointer sm_loop_get_data() returns.
 *
 * @param loop  the loop
 * @param data  any pointer
 */
SM_API void sm_loop_set_data(sm_loop *loop, void *data);

/* ---- io watchers --------------------------------------------------------- */

/**
 * Prepare an io watcher for fd on loop, inactive.
 *
 * The fd stays the caller's (put it in non-blocking mode yourself) until
 * sm_io_close(), which closes it. Leaves w->data alone. Allocates nothing,
 * cannot fail. Call it again only on an inactive watcher whose close (if any)
 * has completed.
 *
 * @param loop  the loop
 * @param w     the watcher (caller-owned memory)
 * @param fd    the fd to watch
 * @param cb    runs on readiness with the ready events, limited to the
 *              current interest
 */
SM_API void sm_io_init(sm_loop *loop, sm_io *w, int fd, sm_io_cb cb);

/**
 * Start watching w's fd for events.
 *
 * On an active watcher it is sm_io_set_events(). One fd takes at most one
 * active watcher.
 *
 * @param w       the watcher
 * @param events  SM_READ | SM_WRITE; 0 keeps the watcher active, keeping the
 *                loop alive, with no interest
 * @retval 0              watching
 * @retval -EBADF         fd < 0
 * @retval -EEXIST        another watcher holds the fd
 * @retval -EINVAL        unknown event bits
 * @retval SM_ERR_CLOSED  after sm_io_close()
 * @retval -ENOMEM        the fd table could not grow
 * @retval -errno         the backend's error (epoll: -EPERM for a regular
 *                        file)
 * On error the watcher is inactive.
 * @callbacks Callable from callbacks.
 */
SM_API int sm_io_start(sm_io *w, unsigned events);

/**
 * Change the interest of w.
 *
 * On an active watcher, adding an event makes at most one syscall (also
 * carrying out any pending removal); removing one is only recorded, carried
 * out before the next wait if still wanted, so toggling an event within one
 * iteration costs no syscall. Callbacks are limited to the new interest at
 * once. On an inactive watcher it only records events (sm_io_start() sets
 * its own).
 *
 * @param w       the watcher
 * @param events  SM_READ | SM_WRITE, or 0
 * @retval 0        done
 * @retval -EINVAL  unknown event bits
 * @retval -errno   the backend's error when adding (the interest is then
 *                  unchanged)
 * @callbacks Callable from callbacks.
 */
SM_API int sm_io_set_events(sm_io *w, unsigned events);

/**
 * The current interest.
 *
 * @param w  the watcher
 * @return SM_READ | SM_WRITE, or 0
 */
SM_API unsigned sm_io_get_events(const sm_io *w);

/**
 * Stop watching; a no-op if inactive.
 *
 * Takes effect at once: the callback is not called again, not even for an
 * event already pending in this iteration. Leaves the fd open. Afterwards
 * the loop keeps no reference to w: you may free it at once, even from a
 * callback, and close the fd.
 *
 * @param w  the watcher
 * @callbacks Callable from callbacks.
 */
SM_API void sm_io_stop(sm_io *w);

/**
 * Stop watching, close the fd, then run on_close.
 *
 * I/O stops at once (as sm_io_stop()) and the fd is closed at once (close(2)
 * errors are ignored: on Linux the fd is gone either way); w->fd becomes -1.
 * The loop references w until on_close has run: free it in on_close, not
 * before (with a NULL on_close, keep it until the loop has run an
 * iteration).
 *
 * @param w         the watcher
 * @param on_close  may be NULL; runs exactly once, on the loop thread at the
 *                  end of the current iteration (or in the first iteration of
 *                  the next sm_loop_run() if the loop is not running), never
 *                  inside this call
 * @retval 0              closing
 * @retval SM_ERR_CLOSED  w is already closing (this on_close then never runs)
 * @callbacks Callable from callbacks.
 */
SM_API int sm_io_close(sm_io *w, sm_io_close_cb on_close);

/**
 * Whether the watcher is active.
 *
 * @param w  the watcher
 * @return true between a successful start and stop/close
 */
SM_API bool sm_io_is_active(const sm_io *w);

/* ---- timers -------------------------------------------------------------- */

/**
 * Prepare a timer on loop, inactive (not on an active one). Leaves t->data
 * alone. Allocates nothing, cannot fail.
 *
 * @param loop  the loop
 * @param t     the timer (caller-owned memory)
 * @param cb    runs when it fires
 */
SM_API void sm_timer_init(sm_loop *loop, sm_timer *t, sm_timer_cb cb);

/**
 * Fire the timer once timeout_ms after sm_loop_now(), then (if repeat_ms > 0)
 * every repeat_ms after each firing.
 *
 * Restarts an active timer with the new values. Timers due at the same time
 * fire in the order they were started. A repeating timer is rescheduled
 * before its callback runs (repeat_ms after the loop's time of that run, so
 * a late loop does not fire a burst); a one-shot is inactive during its
 * callback. Timers fire after the iteration's io callbacks, never before
 * their time, never inside this call (a timeout of 0 fires in the current or
 * next iteration). Allocates nothing: O(1) for an inactive timer, O(log n)
 * amortized for an active one (n: active timers).
 *
 * @param t           the timer
 * @param timeout_ms  the first firing, in ms from sm_loop_now()
 * @param repeat_ms   the interval after that; 0 for a one-shot
 * @retval 0        for any timer that went through sm_timer_init()
 * @retval -EINVAL  (nothing done) only for a NULL t or a timer with no loop
 *                  (zeroed, never initialized)
 * @callbacks Callable from callbacks.
 */
SM_API int sm_timer_start(sm_timer *t, uint64_t timeout_ms, uint64_t repeat_ms);

/**
 * Stop the timer; a no-op if inactive (or zeroed, never initialized).
 * O(log n) amortized. The loop keeps no reference to t afterwards: free it
 * at will, even from a callback (its own included).
 *
 * @param t  the timer
 * @callbacks Callable from callbacks.
 */
SM_API void sm_timer_stop(sm_timer *t);

/**
 * Restart with the repeat interval as the timeout (the "reset an idle
 * timeout" idiom).
 *
 * @param t  the timer
 * @retval 0        restarted
 * @retval -EINVAL  the repeat interval is 0 (nothing done)
 * @callbacks Callable from callbacks.
 */
SM_API int sm_timer_again(sm_timer *t);

/**
 * Set the repeat interval; a new value takes effect at the next firing or
 * sm_timer_again().
 *
 * @param t          the timer
 * @param repeat_ms  the interval in ms; 0 makes it a one-shot
 */
SM_API void sm_timer_set_repeat(sm_timer *t, uint64_t repeat_ms);
/**
 * The repeat interval.
 *
 * @param t  the timer
 * @return the interval in ms (0: a one-shot)
 */
SM_API uint64_t sm_timer_get_repeat(const sm_timer *t);

/**
 * Whether the timer is scheduled.
 *
 * @param t  the timer
 * @return true while scheduled
 */
SM_API bool sm_timer_is_active(const sm_timer *t);

/* ---- signal watchers ----------------------------------------------------- */

/**
 * Prepare a signal watcher on loop, inactive (not on an active one). Leaves
 * w->data alone. Allocates nothing, cannot fail.
 *
 * @param loop  the loop
 * @param w     the watcher (caller-owned memory)
 * @param cb    runs on the loop thread when the signal arrives
 */
SM_API void sm_signal_init(sm_loop *loop, sm_signal *w, sm_signal_cb cb);

/**
 * Call the watcher's callback on the loop thread whenever signum arrives.
 *
 * Signals are read from a signalfd (created on first use, close-on-exec); no
 * handler runs in signal context. While a loop watches a signal, the signal
 * is blocked in the calling thread's mask (call this from the loop thread);
 * when its last watcher stops, the loop unblocks it again if it was not
 * blocked before, discarding an instance still pending. A process-directed
 * signal (kill(1)) reaches the loop only if every other thread blocks it too:
 * block it before creating threads. Several watchers may watch one signal;
 * each sees it. Signals of one kind that arrive together coalesce (standard
 * signals). Restarting with another signum moves the watcher.
 *
 * @param w       the watcher
 * @param signum  the signal
 * @retval 0        watching
 * @retval -EINVAL  a bad signum, SIGKILL, SIGSTOP
 * @retval -ENOMEM  out of memory
 * @retval -errno   the error of signalfd(2) or of registering it with the
 *                  loop
 * @threads From the loop thread (the signal mask is the calling thread's).
 * @callbacks Callable from callbacks.
 */
SM_API int sm_signal_start(sm_signal *w, int signum);

/**
 * Stop watching; a no-op if inactive. The loop keeps no reference to w
 * afterwards.
 *
 * @param w  the watcher
 * @threads From the thread that started it.
 * @callbacks Callable from callbacks.
 */
SM_API void sm_signal_stop(sm_signal *w);

/**
 * Whether the watcher is started.
 *
 * @param w  the watcher
 * @return true while started
 */
SM_API bool sm_signal_is_active(const sm_signal *w);

/* ---- deferred callbacks -------------------------------------------------- */

/**
 * Prepare a deferred callback on loop, inactive (not on a queued one).
 * Leaves d->data alone. Allocates nothing, cannot fail.
 *
 * @param loop  the loop
 * @param d     the deferred callback (caller-owned memory)
 * @param cb    runs once per sm_defer_start()
 */
SM_API void sm_defer_init(sm_loop *loop, sm_defer *d, sm_defer_cb cb);

/**
 * Queue d: its callback runs once, at the end of the current iteration,
 * after io callbacks and timers, in the order of sm_defer_start() calls.
 * Started from a deferred callback, it runs in the next iteration (which
 * then does not wait for I/O), so a callback that re-queues itself does not
 * starve I/O. Outside sm_loop_run(), it runs in the next run's first
 * iteration. A no-op if already queued (it keeps its place). d is inactive
 * while its callback runs (re-queue it from there if you like).
 * Never fails.
 *
 * @param d  the deferred callback
 * @callbacks Callable from callbacks.
 */
SM_API void sm_defer_start(sm_defer *d);

/**
 * Unqueue d; a no-op if not queued. The loop keeps no reference to d
 * afterwards.
 *
 * @param d  the deferred callback
 * @callbacks Callable from callbacks.
 */
SM_API void sm_defer_stop(sm_defer *d);

/**
 * Whether d is queued.
 *
 * @param d  the deferred callback
 * @return true while queued
 */
SM_API bool sm_defer_is_active(const sm_defer *d);

#ifdef __cplusplus
}
#endif

#endif
