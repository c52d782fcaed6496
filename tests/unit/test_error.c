#include "smtest.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static void
test_library_codes_named(void **state)
{
    (void)state;
    static const int codes[] = {
#define X(name, value, msg) name,
        SM_ERR_TABLE(X)
#undef X
    };
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        assert_true(codes[i] < -4095);
        assert_true(codes[i] > SM_ERR_BASE - 4096); /* below is the applications' */
        assert_string_not_equal(sm_strerror(codes[i]), "unknown error");
        assert_memory_equal(sm_err_name(codes[i]), "SM_ERR_", 7);
    }
    assert_string_equal(sm_err_name(SM_ERR_TRUNCATED), "SM_ERR_TRUNCATED");
}

static void
test_errno_codes_named(void **state)
{
    (void)state;
    assert_string_equal(sm_err_name(-ETIMEDOUT), "ETIMEDOUT");
    assert_string_equal(sm_err_name(-EMSGSIZE), "EMSGSIZE");
    assert_string_equal(sm_strerror(-ECONNRESET), "Connection reset by peer");
    assert_string_equal(sm_strerror(0), "success");
    assert_string_equal(sm_err_name(5), "OK");
    assert_string_equal(sm_strerror(-4000), "unknown error");
    assert_string_equal(sm_err_name(-99999), "E?");
}

static void
test_version(void **state)
{
    (void)state;
    assert_string_equal(sm_version(), SM_VERSION_STRING);
    assert_int_equal(sm_version_number(), SM_VERSION_NUMBER);
    /* The macros agree with each other... */
    char want[32];
    snprintf(want, sizeof want, "%d.%d.%d", SM_VERSION_MAJOR, SM_VERSION_MINOR, SM_VERSION_PATCH);
    assert_string_equal(SM_VERSION_STRING, want);
    assert_int_equal(SM_VERSION_NUMBER,
                     SM_VERSION_MAJOR * 10000 + SM_VERSION_MINOR * 100 + SM_VERSION_PATCH);
    /* ...and with project(VERSION), which CMake passes here. */
    assert_string_equal(SM_VERSION_STRING, SM_TEST_PROJECT_VERSION);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_library_codes_named),
        cmocka_unit_test(test_errno_codes_named),
        cmocka_unit_test(test_version),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
