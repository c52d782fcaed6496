/* The fds of a byte stream, kept in stream order until a message claims
 * them. The stream offset is what ties an fd to a message: the decoder only
 * knows bytes, so the queue speaks bytes too. */
#include "fd_queue.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PEND_ROOM(q) (2 * (q)->cap)

int
sm__fdq_init(sm__fdq *q, int cap)
{
    memset(q, 0, sizeof *q);
    q->cap = cap;
    q->pend = calloc((size_t)PEND_ROOM(q), sizeof *q->pend);
    q->msg = calloc((size_t)cap, sizeof *q->msg);
    if (!q->pend || !q->msg) {
        free(q->pend);
        free(q->msg);
        return -ENOMEM;
    }
    return 0;
}

void
sm__fdq_release(sm__fdq *q)
{
    for (int i = 0; i < q->nmsg; i++)
        close(q->msg[i]);
    q->nmsg = 0;
}

void
sm__fdq_free(sm__fdq *q)
{
    sm__fdq_release(q);
    for (int i = 0; i < q->npend; i++)
        close(q->pend[i].fd);
    q->npend = 0;
    free(q->pend);
    free(q->msg);
    q->pend = NULL;
    q->msg = NULL;
}

/* Drop pend[0..k) from the front. */
static void
pend_shift(sm__fdq *q, int k)
{
    memmove(q->pend, q->pend + k, (size_t)(q->npend - k) * sizeof *q->pend);
    q->npend -= k;
}

void
sm__fdq_trim(sm__fdq *q, uint64_t start)
{
    int k = 0;
    while (k < q->npend && q->pend[k].at < start)
        close(q->pend[k++].fd);
    pend_shift(q, k);
    while (q->npend > q->cap)
        close(q->pend[--q->npend].fd);
}

void
sm__fdq_push(sm__fdq *q, const int *fds, int n, uint64_t at)
{
    for (int i = 0; i < n; i++) {
        if (q->npend < PEND_ROOM(q))
            q->pend[q->npend++] = (sm__fdq_ent){.at = at, .fd = fds[i]};
        else
            close(fds[i]);
    }
}

void
sm__fdq_read_cred(sm__fdq *q, const sm_cred *cr, uint64_t at)
{
    bool same =
        cr && q->run_ok && q->run.pid == cr->pid && q->run.uid == cr->uid && q->run.gid == cr->gid;
    if (same) return;
    q->run_ok = cr != NULL;
    if (cr) q->run = *cr;
    q->run_from = at;
}

int
sm__fdq_bind(sm__fdq *q, uint64_t start, uint64_t end)
{
    sm__fdq_release(q);
    q->msg_cred_ok = q->cred_on && q->run_ok && q->run_from <= start;
    q->msg_cred = q->run;
    if (q->err && end > q->err_at) return q->err;
    int k = 0;
    for (; k < q->npend && q->pend[k].at < end; k++) {
        if (q->pend[k].at >= start && q->nmsg < q->cap)
            q->msg[q->nmsg++] = q->pend[k].fd;
        else
            close(q->pend[k].fd);
    }
    pend_shift(q, k);
    return 0;
}

int
sm__fdq_take(sm__fdq *q, int *out, int cap)
{
    int n = q->nmsg < cap ? q->nmsg : cap;
    memcpy(out, q->msg, (size_t)n * sizeof *out);
    memmove(q->msg, q->msg + n, (size_t)(q->nmsg - n) * sizeof *q->msg);
    q->nmsg -= n;
    return n;
}
