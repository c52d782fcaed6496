/* Two network namespaces joined by an impaired link, for tests: tc netem on
 * a veth pair where the kernel has netem, else a TUN device in each
 * namespace and the userspace forwarder of impair.h between them. Needs
 * root. */
#ifndef SM_TEST_NETNS_LINK_H
#define SM_TEST_NETNS_LINK_H

#include <stdbool.h>

#include "impair.h"

typedef struct netns_link {
    bool up, netem;
    char ns[2][32];     /* smlossa<pid>, smlossb<pid> */
    char ifname[2][16]; /* the link's device in each */
    char ip[2][32];     /* a /30 from the pid: 10.214.x.y */
    impair_cfg cfg;
    impair *fwd;          /* TUN mode */
    impair_stats mark[2]; /* the forwarder's counters at netns_link_mark */
    char netem_args[128]; /* netem mode: the qdisc's parameters */
} netns_link;

/* netns_link_up - make both namespaces (removing those of earlier runs whose
 * pid is gone) and the link, with cfg's impairments both ways, addressed
 * and up. Returns 0, or -1 with nothing left behind. Registers nothing:
 * call netns_link_down, also on failure paths (atexit is fine). */
int netns_link_up(netns_link *l, const impair_cfg *cfg);

/* netns_link_down - stop the forwarder, delete both namespaces. Idempotent. */
void netns_link_down(netns_link *l);

/* netns_enter - move the calling thread into namespace side (0 or 1), or
 * back to where netns_link_up was called (-1). Returns 0 or -1. */
int netns_enter(const netns_link *l, int side);

/* netns_link_cut - drop every packet both ways (cut) or restore the
 * impairments. Returns 0 or -1 (a tc command failed). */
int netns_link_cut(netns_link *l, bool cut);

/* netns_link_mark - remember the forwarder's counters; netns_link_print
 * prints what happened since (TUN mode) or the netem parameters. */
void netns_link_mark(netns_link *l);
void netns_link_print(const netns_link *l);

#endif
