/* The namespace helpers of netns_util.h. */
#include "netns_util.h"

#include "smtest.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static int
write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    size_t n = strlen(text);
    ssize_t w = write(fd, text, n);
    int saved = errno;
    close(fd);
    errno = saved;
    return w == (ssize_t)n ? 0 : -1;
}

int
sm_test_private_net(char *why, size_t why_len)
{
    uid_t uid = geteuid();
    gid_t gid = getegid();
    int flags = CLONE_NEWNET | (uid == 0 ? 0 : CLONE_NEWUSER);
    if (unshare(flags) != 0) {
        snprintf(why, why_len, "unshare(%s): %s", uid == 0 ? "NEWNET" : "NEWUSER|NEWNET",
                 strerror(errno));
        return -1;
    }
    if (uid != 0) {
        char map[64];
        /* setgroups must be denied before an unprivileged gid_map. */
        if (write_file("/proc/self/setgroups", "deny") != 0) goto map_failed;
        snprintf(map, sizeof map, "0 %u 1", (unsigned)uid);
        if (write_file("/proc/self/uid_map", map) != 0) goto map_failed;
        snprintf(map, sizeof map, "0 %u 1", (unsigned)gid);
        if (write_file("/proc/self/gid_map", map) != 0) goto map_failed;
    }
    /* A new namespace's lo is down: no 127.0.0.1 until it is up. */
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct ifreq ifr = {0};
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "lo");
    int rc = s < 0 ? -1 : ioctl(s, SIOCGIFFLAGS, &ifr);
    if (rc == 0) {
        ifr.ifr_flags |= IFF_UP;
        rc = ioctl(s, SIOCSIFFLAGS, &ifr);
    }
    if (rc != 0) snprintf(why, why_len, "bringing lo up: %s", strerror(errno));
    if (s >= 0) close(s);
    return rc;
map_failed:
    snprintf(why, why_len, "mapping uid %u in the user namespace: %s", (unsigned)uid,
             strerror(errno));
    return -1;
}

int
sm_test_sh(const char *fmt, ...)
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

void
sm_test_netns_sweep(const char *prefix)
{
    DIR *d = opendir("/run/netns");
    if (!d) return;
    size_t plen = strlen(prefix);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, prefix, plen) != 0) continue;
        const char *p = e->d_name + plen;
        if (islower((unsigned char)*p)) p++;
        char *end;
        unsigned long pid = strtoul(p, &end, 10);
        if (!isdigit((unsigned char)*p) || *end != '\0' || pid == 0) continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;
        sm_test_sh("ip netns del %s", e->d_name);
    }
    closedir(d);
}

int
sm_test_netns_enter(const char *name)
{
    /* Home is where the calling thread was at the first call, which opens it
     * before it moves anywhere. */
    static int home = -1;
    if (home < 0) home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (home < 0) return -1;
    if (!name) return setns(home, CLONE_NEWNET);
    char path[96];
    snprintf(path, sizeof path, "/run/netns/%s", name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = setns(fd, CLONE_NEWNET);
    close(fd);
    return rc;
}

void
sm_test_netns_need(bool up, const char *what)
{
    if (geteuid() != 0) {
        print_message("not root: no network namespaces (skipped)\n");
        skip();
    }
    if (!up) {
        print_message("could not build %s (skipped)\n", what);
        skip();
    }
}
