/* sockmsg — byte buffer with read and write cursors.
 *
 * Bytes live in data[rpos..wpos): the reader consumes from rpos, the writer
 * appends at wpos. Consuming is O(1); compaction moves only the unread bytes,
 * and only when the free space at the end is not enough, so any number of small
 * messages passing through costs O(bytes), never O(n^2). Memory grows by
 * doubling up to a hard limit and can be released when the buffer is empty
 * (idle connections keep no buffer).
 *
 * The struct is caller-owned (embed it anywhere); the memory it points at is
 * owned by the buffer and freed by sm_buf_free or sm_buf_release. A buffer
 * belongs to one thread.
 */
#ifndef SOCKMSG_BUF_H
#define SOCKMSG_BUF_H

#include "api.h"
#include "error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sm_buf {
    uint8_t *data;
    size_t cap;   /* bytes allocated */
    size_t rpos;  /* first unread byte */
    size_t wpos;  /* end of the written bytes */
    size_t limit; /* hard cap on cap; 0 means SIZE_MAX */
} sm_buf;

/* sm_buf_init - an empty buffer that will never hold more than `limit` bytes
 * (0: no limit). Allocates nothing. */
SM_API void sm_buf_init(sm_buf *b, size_t limit);

/* sm_buf_free - release the memory; the buffer is empty and reusable. */
SM_API void sm_buf_free(sm_buf *b);

/* sm_buf_reserve - make room for at least n more bytes after wpos, compacting
 * and/or growing (doubling). Returns 0, -ENOBUFS when unread + n would exceed
 * the limit, -ENOMEM. Pointers into the buffer are invalidated. */
SM_API int sm_buf_reserve(sm_buf *b, size_t n);

/* sm_buf_append - copy n bytes in at the end. Returns 0 or sm_buf_reserve's
 * error (nothing appended then). */
SM_API int sm_buf_append(sm_buf *b, const void *p, size_t n);

/* sm_buf_compact - move the unread bytes to the front. O(unread). */
SM_API void sm_buf_compact(sm_buf *b);

/* sm_buf_release - free the memory if the buffer is empty (an idle connection
 * then costs nothing); a no-op otherwise. Returns true if memory was freed. */
SM_API bool sm_buf_release(sm_buf *b);

/* The unread bytes: a zero-copy view, valid until the next reserve/append/
 * compact/free. */
static inline const uint8_t *
sm_buf_peek(const sm_buf *b)
{
    /* NULL + 0 is undefined behaviour in C: an unallocated buffer gives NULL. */
    return b->data ? b->data + b->rpos : NULL;
}

/* Number of unread bytes. */
static inline size_t
sm_buf_len(const sm_buf *b)
{
    return b->wpos - b->rpos;
}

/* Where the next bytes go (after sm_buf_reserve), and how many fit. */
static inline uint8_t *
sm_buf_wptr(sm_buf *b)
{
    return b->data ? b->data + b->wpos : NULL;
}

static inline size_t
sm_buf_writable(const sm_buf *b)
{
    return b->cap - b->wpos;
}

/* sm_buf_commit - n bytes were written at sm_buf_wptr (n <= sm_buf_writable). */
static inline void
sm_buf_commit(sm_buf *b, size_t n)
{
    b->wpos += n;
}

/* sm_buf_consume - drop n unread bytes from the front (n <= sm_buf_len). When
 * the buffer becomes empty the cursors rewind to 0, so a steady stream of
 * whole messages never needs a compaction at all. */
static inline void
sm_buf_consume(sm_buf *b, size_t n)
{
    b->rpos += n;
    if (b->rpos == b->wpos) b->rpos = b->wpos = 0;
}

/* sm_buf_clear - drop every unread byte; keeps the memory. */
static inline void
sm_buf_clear(sm_buf *b)
{
    b->rpos = b->wpos = 0;
}

#ifdef __cplusplus
}
#endif

#endif
