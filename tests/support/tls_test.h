/* Certificates for the TLS tests, made by tests/support/tls_certs.sh (see it
 * for the files: ca.pem, leaf.pem, expired.pem, client.pem, ...), and the
 * TLS configurations most tests start from. Under CTest the set is made once
 * per test run, by the tls_certs fixture (tests/CMakeLists.txt), into the
 * build tree, and every TLS test reads it from the directory named by
 * SM_TEST_TLS_CERTS; a program run by hand (no such variable) makes its own
 * throwaway set in a private directory as before. Tests only read the set:
 * anything a test writes goes into a directory of its own. Header-only
 * (static inline, like server_util.h) because the script's and openssl's
 * paths are compile definitions of the TLS tests (SM_TLS_DEFS in
 * tests/CMakeLists.txt), not of sm_testsupport. */
#ifndef SM_TLS_TEST_H
#define SM_TLS_TEST_H

#include "smtest.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sockmsg/tls.h>

/* The directory of this program's certificates ("" before the setup), and
 * whether this program made it (and so removes it). */
static char sm_test_certs[256];
static bool sm_test_certs_own;

/* The path of certificate file `name` in that directory. Four results stay
 * valid at once (thread-local), enough for one call's arguments. */
static inline const char *
sm_test_cert(const char *name)
{
    static __thread char path[4][320];
    static __thread int k;
    k = (k + 1) % 4;
    snprintf(path[k], sizeof path[k], "%s/%s", sm_test_certs, name);
    return path[k];
}

/* Find or make the certificates: the shared set named by SM_TEST_TLS_CERTS,
 * which must be complete (chain.pem is the script's last file; a missing
 * one fails here, naming the fixture, rather than each case on its own),
 * or else a set of this program's own. 0 on success. */
static inline int
sm_test_tls_certs_find(void)
{
    const char *shared = getenv("SM_TEST_TLS_CERTS");
    if (shared && *shared) {
        if ((size_t)snprintf(sm_test_certs, sizeof sm_test_certs, "%s", shared) >=
            sizeof sm_test_certs) {
            print_error("SM_TEST_TLS_CERTS is too long: %s\n", shared);
            return -1;
        }
        sm_test_certs_own = false;
        if (access(sm_test_cert("chain.pem"), R_OK) != 0) {
            print_error("no certificates in %s (the tls_certs fixture, tests/CMakeLists.txt, "
                        "makes them): %s\n",
                        sm_test_certs, strerror(errno));
            return -1;
        }
        return 0;
    }
    sm_test_certs_own = true;
    sm_test_mkdtemp(sm_test_certs, sizeof sm_test_certs);
    char *argv[] = {"/bin/sh", SM_TLS_CERTS, SM_OPENSSL, sm_test_certs, NULL};
    return sm_test_wait(sm_test_spawn2(argv, NULL, NULL, NULL), 30000) == 0 ? 0 : -1;
}

/* sm_test_tls_certs_find, and SIGPIPE ignored (a TLS peer that goes away
 * mid-write must be an error return, not a dead test). A cmocka group
 * setup; 0 on success. */
static inline int
sm_test_tls_setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    return sm_test_tls_certs_find();
}

/* Remove them if this program made them: the matching cmocka group
 * teardown. */
static inline int
sm_test_tls_teardown(void **state)
{
    (void)state;
    if (sm_test_certs_own) sm_test_rmdir(sm_test_certs);
    return 0;
}

/* A server configuration with certificate chain `chain` and key `key`
 * (names in the certificate directory). */
static inline sm_tls_config *
sm_test_tls_server(const char *chain, const char *key)
{
    sm_tls_config *c;
    char why[256];
    SM_ASSERT_OK(sm_tls_config_new(&c, SM_TLS_SERVER, why, sizeof why));
    SM_ASSERT_OK(
        sm_tls_config_set_cert(c, sm_test_cert(chain), sm_test_cert(key), why, sizeof why));
    return c;
}

/* A client configuration that verifies, trusting the test CA (trust_ca) or
 * only the system's store. */
static inline sm_tls_config *
sm_test_tls_client(bool trust_ca)
{
    sm_tls_config *c;
    char why[256];
    SM_ASSERT_OK(sm_tls_config_new(&c, SM_TLS_CLIENT, why, sizeof why));
    if (trust_ca)
        SM_ASSERT_OK(sm_tls_config_set_ca(c, sm_test_cert("ca.pem"), NULL, why, sizeof why));
    return c;
}

#endif
