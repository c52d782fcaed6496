/* Built without OpenSSL: TLS fails, and says why. */
#include "smtest.h"

#include <string.h>

static void
test_tls_unavailable(void **state)
{
    (void)state;
    assert_false(sm_tls_available());
    sm_tls_config *cfg = NULL;
    char why[128];
    SM_ASSERT_ERR(sm_tls_config_new(&cfg, SM_TLS_CLIENT, why, sizeof why), SM_ERR_TLS_UNAVAILABLE);
    assert_null(cfg);
    assert_string_equal(why, "built without TLS (OpenSSL 3 not found at build time)");
    assert_string_equal(sm_strerror(SM_ERR_TLS_UNAVAILABLE),
                        "built without TLS (OpenSSL 3 not found at build time)");
    sm_conn *c;
    SM_ASSERT_ERR(sm_conn_dial(&c, "tls://127.0.0.1:1", "len32be", 1000, why, sizeof why),
                  SM_ERR_TLS_UNAVAILABLE);
    assert_non_null(strstr(why, "built without TLS"));
    sm_tls_config_free(NULL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tls_unavailable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
