/* Network namespaces for tests: a private one for the whole test process
 * (a server that cannot bind port 0 gets the real port in a namespace
 * nobody else uses), and the named ones of ip-netns(8) that tests/netns/ and
 * tests/integration/test_netns.c build links between. */
#ifndef SM_TEST_NETNS_UTIL_H
#define SM_TEST_NETNS_UTIL_H

#include <stdbool.h>
#include <stddef.h>

/* sm_test_private_net - move the calling process into a network namespace
 * of its own with only lo, up. As root a new network namespace; otherwise a
 * user namespace too, with the caller mapped to root there (so a server in
 * it may bind port 53). Call it before starting any thread. The namespace
 * has no name and nothing to clean up: it ends with the last process in it.
 * Returns 0, or -1 with why set ("unshare: Operation not permitted"). */
int sm_test_private_net(char *why, size_t why_len);

/* sm_test_sh - run a shell command with its output discarded. Returns its
 * exit status, or -1 when it did not exit normally. */
int sm_test_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* sm_test_netns_sweep - delete the named namespaces an earlier run left (a
 * ctest timeout, a crash): those named prefix, an optional lowercase letter,
 * then the pid of a process that is gone. */
void sm_test_netns_sweep(const char *prefix);

/* sm_test_netns_enter - move the calling thread into the named namespace,
 * or back (NULL) to the one it was in at the first call. Returns 0 or -1. */
int sm_test_netns_enter(const char *name);

/* sm_test_netns_need - skip the calling test, saying why, when not root or
 * when the setup could not build its namespaces (up false): `what` names
 * them ("the namespace and veth pair"). */
void sm_test_netns_need(bool up, const char *what);

#endif
