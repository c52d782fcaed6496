/* The namespaces and link of netns_link.h. */
#include "netns_link.h"

#include "netns_util.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

int
netns_enter(const netns_link *l, int side)
{
    return sm_test_netns_enter(side < 0 ? NULL : l->ns[side]);
}

void
netns_link_down(netns_link *l)
{
    if (!l->up) return;
    l->up = false;
    if (l->fwd) impair_stop(l->fwd);
    l->fwd = NULL;
    for (int i = 0; i < 2; i++) /* devices go with their namespace */
        sm_test_sh("ip netns del %s", l->ns[i]);
}

/* A TUN device named `name`, created in namespace `ns` (a TUN device lives
 * in the namespace of the thread that opened /dev/net/tun). */
static int
tun_in_ns(const char *ns, const char *name)
{
    if (sm_test_netns_enter(ns) != 0) return -1;
    int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    struct ifreq ifr = {.ifr_flags = IFF_TUN | IFF_NO_PI};
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", name);
    if (fd >= 0 && ioctl(fd, TUNSETIFF, &ifr) != 0) {
        close(fd);
        fd = -1;
    }
    if (sm_test_netns_enter(NULL) != 0) abort(); /* cannot go home: nothing else is safe */
    return fd;
}

/* netem on a veth pair between the namespaces, both ends; false (and the
 * pair removed) when the kernel has no netem. */
static bool
try_netem(netns_link *l)
{
    if (sm_test_sh("ip link add %s netns %s type veth peer name %s netns %s", l->ifname[0],
                   l->ns[0], l->ifname[1], l->ns[1]))
        return false;
    for (int i = 0; i < 2; i++)
        if (sm_test_sh("tc -n %s qdisc add dev %s root netem %s", l->ns[i], l->ifname[i],
                       l->netem_args)) {
            sm_test_sh("ip -n %s link del %s", l->ns[0], l->ifname[0]);
            return false;
        }
    return true;
}

static bool
try_tun(netns_link *l)
{
    int fd[2];
    for (int i = 0; i < 2; i++)
        if ((fd[i] = tun_in_ns(l->ns[i], l->ifname[i])) < 0) {
            if (i) close(fd[0]);
            return false;
        }
    return impair_start(&l->fwd, fd[0], fd[1], &l->cfg) == 0;
}

int
netns_link_up(netns_link *l, const impair_cfg *cfg)
{
    memset(l, 0, sizeof *l);
    l->cfg = *cfg;
    snprintf(l->netem_args, sizeof l->netem_args,
             "delay %dms reorder %g%% duplicate %g%% loss %g%%", cfg->delay_ms, cfg->reorder * 100,
             cfg->dup * 100, cfg->loss * 100);
    /* Where this thread is now is where netns_enter(-1) goes back to. */
    if (sm_test_netns_enter(NULL) != 0) return -1;
    sm_test_netns_sweep("smloss"); /* smlossa<pid>, smlossb<pid> of killed runs */
    unsigned p = (unsigned)getpid();
    unsigned a = (p >> 6) & 255, b = (p & 63) * 4;
    for (int i = 0; i < 2; i++) {
        snprintf(l->ns[i], sizeof l->ns[i], "smloss%c%u", 'a' + i, p);
        snprintf(l->ifname[i], sizeof l->ifname[i], "sml%c%u", 'a' + i, p % 10000000u);
        snprintf(l->ip[i], sizeof l->ip[i], "10.214.%u.%u", a, b + 1 + (unsigned)i);
        if (sm_test_sh("ip netns add %s", l->ns[i])) {
            if (i) sm_test_sh("ip netns del %s", l->ns[0]);
            return -1;
        }
    }
    l->up = true;
    l->netem = try_netem(l);
    bool ok = l->netem || try_tun(l);
    for (int i = 0; ok && i < 2; i++)
        ok = !sm_test_sh("ip -n %s addr add %s/30 dev %s", l->ns[i], l->ip[i], l->ifname[i]) &&
             !sm_test_sh("ip -n %s link set %s up", l->ns[i], l->ifname[i]) &&
             !sm_test_sh("ip -n %s link set lo up", l->ns[i]);
    if (!ok) {
        netns_link_down(l);
        return -1;
    }
    return 0;
}

int
netns_link_cut(netns_link *l, bool cut)
{
    if (!l->netem) {
        impair_cut(l->fwd, cut);
        return 0;
    }
    for (int i = 0; i < 2; i++)
        if (sm_test_sh("tc -n %s qdisc change dev %s root netem %s", l->ns[i], l->ifname[i],
                       cut ? "loss 100%" : l->netem_args))
            return -1;
    return 0;
}

void
netns_link_mark(netns_link *l)
{
    if (l->fwd)
        for (int d = 0; d < 2; d++)
            impair_get_stats(l->fwd, d, &l->mark[d]);
}

void
netns_link_print(const netns_link *l)
{
    if (l->netem) {
        printf("  link: tc netem %s, both ways\n", l->netem_args);
        return;
    }
    for (int d = 0; d < 2; d++) {
        impair_stats s;
        const impair_stats *b = &l->mark[d];
        impair_get_stats(l->fwd, d, &s);
        printf(
            "  packets %s: in %llu out %llu lost %llu dup %llu reordered %llu cut %llu "
            "overflow/failed %llu\n",
            d ? "B->A" : "A->B", (unsigned long long)(s.in - b->in),
            (unsigned long long)(s.out - b->out), (unsigned long long)(s.lost - b->lost),
            (unsigned long long)(s.dup - b->dup), (unsigned long long)(s.reordered - b->reordered),
            (unsigned long long)(s.cut - b->cut), (unsigned long long)(s.overflow - b->overflow));
    }
}
