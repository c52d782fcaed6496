#include "smtest.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <sockmsg/buf.h>

static void
test_append_peek_consume(void **state)
{
    (void)state;
    sm_buf b;
    sm_buf_init(&b, 0);
    assert_int_equal(sm_buf_len(&b), 0);
    assert_null(b.data); /* nothing allocated until needed */
    SM_ASSERT_OK(sm_buf_append(&b, "hello ", 6));
    SM_ASSERT_OK(sm_buf_append(&b, "world", 5));
    assert_int_equal(sm_buf_len(&b), 11);
    assert_memory_equal(sm_buf_peek(&b), "hello world", 11);
    sm_buf_consume(&b, 6);
    assert_memory_equal(sm_buf_peek(&b), "world", 5);
    sm_buf_consume(&b, 5);
    assert_int_equal(b.rpos, 0); /* empty: cursors rewound */
    assert_int_equal(b.wpos, 0);
    assert_true(sm_buf_release(&b));
    assert_null(b.data);
    assert_false(sm_buf_release(&b));
    sm_buf_free(&b);
}

static void
test_reserve_commit(void **state)
{
    (void)state;
    sm_buf b;
    sm_buf_init(&b, 0);
    SM_ASSERT_OK(sm_buf_reserve(&b, 1000));
    assert_true(sm_buf_writable(&b) >= 1000);
    memset(sm_buf_wptr(&b), 'x', 700);
    sm_buf_commit(&b, 700);
    assert_int_equal(sm_buf_len(&b), 700);
    SM_ASSERT_OK(sm_buf_append(&b, "y", 1));
    assert_int_equal(sm_buf_peek(&b)[700], 'y');
    sm_buf_free(&b);
}

static void
test_limit(void **state)
{
    (void)state;
    sm_buf b;
    sm_buf_init(&b, 100);
    SM_ASSERT_OK(sm_buf_append(&b, "0123456789", 10));
    char big[200];
    memset(big, 'z', sizeof big);
    SM_ASSERT_ERR(sm_buf_append(&b, big, 91), -ENOBUFS);
    assert_int_equal(sm_buf_len(&b), 10); /* nothing lost */
    SM_ASSERT_OK(sm_buf_append(&b, big, 90));
    assert_true(b.cap <= 100);
    sm_buf_consume(&b, 50);
    SM_ASSERT_OK(sm_buf_append(&b, big, 50)); /* fits again after compaction */
    assert_true(b.cap <= 100);
    assert_memory_equal(sm_buf_peek(&b), "z", 1);
    SM_ASSERT_ERR(sm_buf_reserve(&b, 1), -ENOBUFS);
    sm_buf_free(&b);
}

static void
test_compact_keeps_bytes(void **state)
{
    (void)state;
    sm_buf b;
    sm_buf_init(&b, 0);
    SM_ASSERT_OK(sm_buf_append(&b, "abcdef", 6));
    sm_buf_consume(&b, 2);
    sm_buf_compact(&b);
    assert_int_equal(b.rpos, 0);
    assert_memory_equal(sm_buf_peek(&b), "cdef", 4);
    sm_buf_free(&b);
}

/* Many small messages through a bounded buffer: every byte arrives in order and
 * memory stays within the limit. */
static void
test_stream_of_small_messages(void **state)
{
    (void)state;
    uint64_t seed = 42;
    sm_buf b;
    sm_buf_init(&b, 1 << 16);
    uint8_t chunk[512];
    uint64_t wrote = 0, read = 0;
    for (int i = 0; i < 200000; i++) {
        size_t n = 1 + sm_test_rand(&seed) % sizeof chunk;
        for (size_t j = 0; j < n; j++)
            chunk[j] = (uint8_t)(wrote + j);
        if (sm_buf_append(&b, chunk, n) == 0) wrote += n;
        size_t take = sm_test_rand(&seed) % (sm_buf_len(&b) + 1);
        const uint8_t *p = sm_buf_peek(&b);
        for (size_t j = 0; j < take; j++)
            if (p[j] != (uint8_t)(read + j))
                fail_msg("seed 42: byte %llu wrong", (unsigned long long)(read + j));
        sm_buf_consume(&b, take);
        read += take;
    }
    assert_true(b.cap <= 1 << 16);
    assert_true(wrote > 1000000);
    sm_buf_free(&b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_peek_consume),
        cmocka_unit_test(test_reserve_commit),
        cmocka_unit_test(test_limit),
        cmocka_unit_test(test_compact_keeps_bytes),
        cmocka_unit_test(test_stream_of_small_messages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
