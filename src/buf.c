/* Byte buffer: growth, compaction and release. The accessors are inline in
 * buf.h because they sit on every read path. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sockmsg/buf.h>

void
sm_buf_init(sm_buf *b, size_t limit)
{
    memset(b, 0, sizeof *b);
    b->limit = limit ? limit : SIZE_MAX;
}

void
sm_buf_free(sm_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->cap = b->rpos = b->wpos = 0;
}

void
sm_buf_compact(sm_buf *b)
{
    size_t n = sm_buf_len(b);
    if (b->rpos && n) memmove(b->data, b->data + b->rpos, n);
    b->rpos = 0;
    b->wpos = n;
}

int
sm_buf_reserve(sm_buf *b, size_t n)
{
    if (b->cap - b->wpos >= n) return 0;
    size_t used = sm_buf_len(b);
    if (n > b->limit - used) return -ENOBUFS;
    /* Compacting is enough when the unread part is small next to the space it
     * frees; moving at most half the buffer per refill keeps the cost linear. */
    if (b->cap - used >= n && used <= b->cap / 2) {
        sm_buf_compact(b);
        return 0;
    }
    size_t want = used + n;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < want)
        cap = cap > SIZE_MAX / 2 ? SIZE_MAX : cap * 2;
    if (cap > b->limit) cap = b->limit;
    uint8_t *p = malloc(cap);
    if (!p) return -ENOMEM;
    if (used) memcpy(p, b->data + b->rpos, used);
    free(b->data);
    b->data = p;
    b->cap = cap;
    b->rpos = 0;
    b->wpos = used;
    return 0;
}

int
sm_buf_append(sm_buf *b, const void *p, size_t n)
{
    if (n == 0) return 0;
    int rc = sm_buf_reserve(b, n);
    if (rc < 0) return rc;
    memcpy(b->data + b->wpos, p, n);
    b->wpos += n;
    return 0;
}

bool
sm_buf_release(sm_buf *b)
{
    if (!b->data || sm_buf_len(b)) return false;
    sm_buf_free(b);
    return true;
}
