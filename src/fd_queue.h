/* File descriptors received with the bytes of a stream, waiting for the
 * message whose frame holds the byte they came with (fd_queue.c). */
#ifndef SOCKMSG_FD_QUEUE_H
#define SOCKMSG_FD_QUEUE_H

#include <stdbool.h>
#include <stdint.h>

#include <sockmsg/unix.h>

/* One fd and the stream offset of the byte it arrived with. */
typedef struct sm__fdq_ent {
    uint64_t at;
    int fd;
} sm__fdq_ent;

/* Owns every fd it holds: those not taken are closed, never leaked.
 * Bounded: at most cap fds of the current message plus 2 * cap pending (the
 * cap of the message being assembled and one read's worth). */
typedef struct sm__fdq {
    int cap;           /* fds per message */
    uint64_t rx;       /* bytes received so far: the offset of the next byte */
    sm__fdq_ent *pend; /* ascending by at */
    int npend;
    int *msg; /* the fds of the message last bound, not yet taken */
    int nmsg;
    int err;         /* sticky: what made the stream unusable (fds lost) */
    uint64_t err_at; /* the offset of the byte the lost fds came with */
    char why[160];   /* what err means here */
    /* SCM_CREDENTIALS (SO_PASSCRED): the kernel never joins bytes of two
     * senders in one read, so the reads since run_from all came from run
     * (run_ok false: from no known sender). A message whose first byte is
     * at or after run_from came from run alone. */
    bool cred_on;
    bool run_ok;
    uint64_t run_from;
    sm_cred run;
    bool msg_cred_ok; /* msg_cred is the sender of the message last bound */
    sm_cred msg_cred;
} sm__fdq;

int sm__fdq_init(sm__fdq *q, int cap);
/* Close every fd held and free. */
void sm__fdq_free(sm__fdq *q);
/* Close the current message's fds that were not taken. */
void sm__fdq_release(sm__fdq *q);
/* Before a read, with the offset of the first byte still buffered: every
 * byte from there on belongs to one incomplete message, so fds before it
 * (bytes skipped) are closed and beyond the cap are closed. */
void sm__fdq_trim(sm__fdq *q, uint64_t start);
/* Queue n fds that arrived with byte at (beyond the room: closed). */
void sm__fdq_push(sm__fdq *q, const int *fds, int n, uint64_t at);
/* A message framed [start, end): its fds (up to the cap) become the
 * current message's; earlier ones and those beyond the cap are closed.
 * Returns 0, or q->err for the message that lost fds and any after it. */
int sm__fdq_bind(sm__fdq *q, uint64_t start, uint64_t end);
/* Move up to cap of the current message's fds to out; returns how many. */
int sm__fdq_take(sm__fdq *q, int *out, int cap);
/* The credentials of a read of n bytes that starts at offset at (NULL:
 * the read had none). */
void sm__fdq_read_cred(sm__fdq *q, const sm_cred *cr, uint64_t at);

#endif
