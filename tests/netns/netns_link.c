/* The namespaces and link of netns_link.h. */
#include "netns_link.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

/* Where netns_link_up ran: netns_enter(-1) goes back there. */
static int home_ns = -1;

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Run a command quietly; its exit status. */
static int
sh(const char *fmt, ...)
{
    char args[384], cmd[448];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "%s >/dev/null 2>&1", args);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static int
enter_named(const char *name)
{
    if (!name) return setns(home_ns, CLONE_NEWNET);
    char path[96];
    snprintf(path, sizeof path, "/run/netns/%s", name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = setns(fd, CLONE_NEWNET);
    close(fd);
    return rc;
}

int
netns_enter(const netns_link *l, int side)
{
    return enter_named(side < 0 ? NULL : l->ns[side]);
}

void
netns_link_down(netns_link *l)
{
    if (!l->up) return;
    l->up = false;
    if (l->fwd) impair_stop(l->fwd);
    l->fwd = NULL;
    for (int i = 0; i < 2; i++) /* devices go with their namespace */
        sh("ip netns del %s", l->ns[i]);
}

/* Namespaces of killed runs (a ctest timeout, a crash): their pid is gone. */
static void
sweep_stale(void)
{
    DIR *d = opendir("/run/netns");
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        unsigned pid;
        char side;
        if (sscanf(e->d_name, "smloss%c%u", &side, &pid) != 2) continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;
        sh("ip netns del %s", e->d_name);
    }
    closedir(d);
}

/* A TUN device named `name`, created in namespace `ns` (a TUN device lives
 * in the namespace of the thread that opened /dev/net/tun). */
static int
tun_in_ns(const char *ns, const char *name)
{
    if (enter_named(ns) != 0) return -1;
    int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    struct ifreq ifr = {.ifr_flags = IFF_TUN | IFF_NO_PI};
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", name);
    if (fd >= 0 && ioctl(fd, TUNSETIFF, &ifr) != 0) {
        close(fd);
        fd = -1;
    }
    if (enter_named(NULL) != 0) abort(); /* cannot go home: nothing else is safe */
    return fd;
}

/* netem on a veth pair between the namespaces, both ends; false (and the
 * pair removed) when the kernel has no netem. */
static bool
try_netem(netns_link *l)
{
    if (sh("ip link add %s netns %s type veth peer name %s netns %s", l->ifname[0], l->ns[0],
           l->ifname[1], l->ns[1]))
        return false;
    for (int i = 0; i < 2; i++)
        if (sh("tc -n %s qdisc add dev %s root netem %s", l->ns[i], l->ifname[i], l->netem_args)) {
            sh("ip -n %s link del %s", l->ns[0], l->ifname[0]);
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
    if (home_ns < 0) home_ns = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (home_ns < 0) return -1;
    sweep_stale();
    unsigned p = (unsigned)getpid();
    unsigned a = (p >> 6) & 255, b = (p & 63) * 4;
    for (int i = 0; i < 2; i++) {
        snprintf(l->ns[i], sizeof l->ns[i], "smloss%c%u", 'a' + i, p);
        snprintf(l->ifname[i], sizeof l->ifname[i], "sml%c%u", 'a' + i, p % 10000000u);
        snprintf(l->ip[i], sizeof l->ip[i], "10.214.%u.%u", a, b + 1 + (unsigned)i);
        if (sh("ip netns add %s", l->ns[i])) {
            if (i) sh("ip netns del %s", l->ns[0]);
            return -1;
        }
    }
    l->up = true;
    l->netem = try_netem(l);
    bool ok = l->netem || try_tun(l);
    for (int i = 0; ok && i < 2; i++)
        ok = !sh("ip -n %s addr add %s/30 dev %s", l->ns[i], l->ip[i], l->ifname[i]) &&
             !sh("ip -n %s link set %s up", l->ns[i], l->ifname[i]) &&
             !sh("ip -n %s link set lo up", l->ns[i]);
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
        if (sh("tc -n %s qdisc change dev %s root netem %s", l->ns[i], l->ifname[i],
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
