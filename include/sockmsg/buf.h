/**
 * @file
 * @brief Byte buffer with read and write cursors.
 *
 * Bytes live in data[rpos..wpos): the reader consumes from rpos, the writer
 * appends at wpos. Consuming is O(1); compaction moves only the unread bytes,
 * and only when the free space at the end is not enough, so any number of small
 * messages passing through costs O(bytes), never O(n^2). Memory grows by
 * doubling up to a hard limit and can be released when the buffer is empty
 * (idle connections keep no buffer).
 *
 * The struct is caller-owned (embed it anywhere); the memory it points at is
 * owned by the buffer and freed by sm_buf_free or sm_buf_release.
 *
 * @threads A buffer belongs to one thread at a time; distinct buffers are
 * independent.
 */
#ifndef SOCKMSG_BUF_H
#define SOCKMSG_BUF_H

#include "api.h"
#include "error.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * A byte buffer. Read the fields if you like; change them only through the
 * functions below.
 */
typedef struct sm_buf {
    uint8_t *data; /**< the allocation (NULL while none) */
    size_t cap;    /**< bytes allocated */
    size_t rpos;   /**< first unread byte */
    size_t wpos;   /**< end of the written bytes */
    size_t limit;  /**< hard cap on cap (sm_buf_init() stores SIZE_MAX for 0) */
} sm_buf;

/**
 * Initialise an empty buffer that will never hold more than `limit` bytes.
 * Allocates nothing.
 *
 * @param b      the buffer (caller-owned memory, e.g. embedded in a struct)
 * @param limit  the most bytes it may ever allocate; 0 for no limit
 */
SM_API void sm_buf_init(sm_buf *b, size_t limit);

/**
 * Release the memory; the buffer is empty and reusable (its limit is kept).
 *
 * @param b  the buffer
 */
SM_API void sm_buf_free(sm_buf *b);

/**
 * Make room for at least n more bytes after wpos, compacting and/or growing
 * (doubling, from 256 bytes). Pointers into the buffer are invalidated.
 *
 * @param b  the buffer
 * @param n  the bytes wanted at sm_buf_wptr()
 * @retval 0         sm_buf_writable() is now at least n
 * @retval -ENOBUFS  unread + n would exceed the limit (nothing changed)
 * @retval -ENOMEM   out of memory (nothing changed)
 */
SM_API int sm_buf_reserve(sm_buf *b, size_t n);

/**
 * Copy n bytes in at the end.
 *
 * @param b  the buffer
 * @param p  the bytes (may be NULL when n is 0)
 * @param n  how many
 * @return 0, or sm_buf_reserve()'s error (nothing appended then)
 */
SM_API int sm_buf_append(sm_buf *b, const void *p, size_t n);

/**
 * Move the unread bytes to the front. O(unread).
 *
 * @param b  the buffer
 */
SM_API void sm_buf_compact(sm_buf *b);

/**
 * Free the memory if the buffer is empty (an idle connection then costs
 * nothing); a no-op otherwise.
 *
 * @param b  the buffer
 * @return true if memory was freed
 */
SM_API bool sm_buf_release(sm_buf *b);

/**
 * The unread bytes: a zero-copy view, valid until the next reserve/append/
 * compact/free.
 *
 * @param b  the buffer
 * @return a pointer to sm_buf_len() bytes, or NULL when nothing is allocated
 */
static inline const uint8_t *
sm_buf_peek(const sm_buf *b)
{
    /* NULL + 0 is undefined behaviour in C: an unallocated buffer gives NULL. */
    return b->data ? b->data + b->rpos : NULL;
}

/**
 * The number of unread bytes.
 *
 * @param b  the buffer
 * @return wpos - rpos
 */
static inline size_t
sm_buf_len(const sm_buf *b)
{
    return b->wpos - b->rpos;
}

/**
 * Where the next bytes go (after sm_buf_reserve()); write there, then
 * sm_buf_commit().
 *
 * @param b  the buffer
 * @return a pointer to sm_buf_writable() bytes, or NULL when nothing is
 *         allocated
 */
static inline uint8_t *
sm_buf_wptr(sm_buf *b)
{
    return b->data ? b->data + b->wpos : NULL;
}

/**
 * How many bytes fit at sm_buf_wptr() without another sm_buf_reserve().
 *
 * @param b  the buffer
 * @return cap - wpos
 */
static inline size_t
sm_buf_writable(const sm_buf *b)
{
    return b->cap - b->wpos;
}

/**
 * Record that n bytes were written at sm_buf_wptr().
 *
 * @param b  the buffer
 * @param n  the bytes written; at most sm_buf_writable() (not checked)
 */
static inline void
sm_buf_commit(sm_buf *b, size_t n)
{
    b->wpos += n;
}

/**
 * Drop n unread bytes from the front. When the buffer becomes empty the
 * cursors rewind to 0, so a steady stream of whole messages never needs a
 * compaction at all.
 *
 * @param b  the buffer
 * @param n  the bytes to drop; at most sm_buf_len() (not checked)
 */
static inline void
sm_buf_consume(sm_buf *b, size_t n)
{
    b->rpos += n;
    if (b->rpos == b->wpos) b->rpos = b->wpos = 0;
}

/**
 * Drop every unread byte; keeps the memory.
 *
 * @param b  the buffer
 */
static inline void
sm_buf_clear(sm_buf *b)
{
    b->rpos = b->wpos = 0;
}

#ifdef __cplusplus
}
#endif

#endif
