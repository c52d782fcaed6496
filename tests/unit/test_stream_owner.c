/* The owner's interface to streams (stream_owner.h): extra areas, finding
 * exactly an owner's streams on a loop shared with other streams and
 * watchers, and the quiet test a graceful drain uses. Run once per loop
 * backend. */
#include "test_stream.h"

#include "stream_owner.h"

typedef struct counts {
    int msgs, closes;
} counts;

static void
count_msg(sm_stream *s, const sm_frame_msg *m)
{
    (void)m;
    counts *c = sm_stream_get_data(s);
    if (c) c->msgs++;
}

static void
count_close(sm_stream *s, int reason)
{
    (void)reason;
    counts *c = sm_stream_get_data(s);
    if (c) c->closes++;
}

static const sm_stream_opts owner_opts = {
    .spec = &ts_len32, .on_message = count_msg, .on_close = count_close};

static void
noop_io(sm_io *w, unsigned events)
{
    (void)w;
    (void)events;
}

#define NSTREAMS 6

/* The streams found for owner, in the order found: their fds ascending. */
static int
collect(sm_loop *l, const sm_stream_opts *owner, sm_stream **out, int cap)
{
    int n = 0, last = -1;
    sm_stream *s;
    for (int fd = 0; (s = sm__stream_owned_next(l, owner, &fd)) != NULL; fd++) {
        assert_true(fd > last);
        assert_int_equal(fd, sm_stream_fd(s));
        assert_ptr_equal(sm__stream_owned_at(l, fd, owner), s);
        last = fd;
        assert_true(n < cap);
        out[n++] = s;
    }
    return n;
}

static void
test_owned_iteration(void **state)
{
    (void)state;
    sm_loop *l = ts_loop();
    /* Same contents, another struct: another owner (a user's streams). */
    sm_stream_opts user_opts = owner_opts;
    sm_stream *mine[NSTREAMS], *theirs[NSTREAMS];
    int nmine = 0, ntheirs = 0, peers[NSTREAMS];
    for (int i = 0; i < NSTREAMS; i++) {
        int sv[2];
        ts_pair(sv);
        peers[i] = sv[1];
        sm_stream *s = NULL;
        if (i % 2 == 0) {
            SM_ASSERT_OK(sm__stream_new_take_extra(&s, l, sv[0], &owner_opts, NULL, 8));
            uint64_t *tag = sm__stream_extra(s);
            assert_int_equal((uintptr_t)tag % 8, 0);
            assert_int_equal(*tag, 0); /* zeroed */
            *tag = 1000 + (uint64_t)i;
            assert_ptr_equal(sm__stream_of_extra(tag), s);
            mine[nmine++] = s;
        } else {
            SM_ASSERT_OK(sm_stream_new_take(&s, l, sv[0], &user_opts, NULL));
            theirs[ntheirs++] = s;
        }
    }
    /* A watcher on the loop that is no stream at all. */
    int pipefd[2];
    SM_ASSERT_OK(pipe(pipefd));
    sm_io raw;
    sm_io_init(l, &raw, pipefd[0], noop_io);
    SM_ASSERT_OK(sm_io_start(&raw, SM_READ));

    sm_stream *found[NSTREAMS];
    assert_int_equal(collect(l, &owner_opts, found, NSTREAMS), nmine);
    for (int i = 0; i < nmine; i++) {
        assert_ptr_equal(found[i], mine[i]);
        assert_int_equal(*(uint64_t *)sm__stream_extra(found[i]), 1000 + 2 * i);
        assert_ptr_equal(sm__stream_owner(found[i]), &owner_opts);
        assert_null(sm__stream_owned_at(l, sm_stream_fd(mine[i]), &user_opts));
    }
    assert_int_equal(collect(l, &user_opts, found, NSTREAMS), ntheirs);
    for (int i = 0; i < ntheirs; i++) {
        assert_ptr_equal(found[i], theirs[i]);
        assert_ptr_equal(sm__stream_owner(found[i]), &user_opts);
        assert_null(sm__stream_owned_at(l, sm_stream_fd(theirs[i]), &owner_opts));
    }
    assert_null(sm__stream_owned_at(l, pipefd[0], &owner_opts));
    assert_null(sm__stream_owned_at(l, -1, &owner_opts));
    assert_null(sm__stream_owned_at(l, 1 << 20, &owner_opts));
    int past = 1 << 20;
    assert_null(sm__stream_owned_next(l, &owner_opts, &past));

    /* Closing during a pass: the closed stream is not found again, the
     * others still are. */
    int closed_fd = -1, seen = 0;
    sm_stream *s;
    for (int fd = 0; (s = sm__stream_owned_next(l, &owner_opts, &fd)) != NULL; fd++) {
        seen++;
        if (s == mine[0]) {
            closed_fd = fd;
            SM_ASSERT_OK(sm_stream_close(s));
            assert_null(sm__stream_owned_at(l, fd, &owner_opts));
        }
    }
    assert_int_equal(seen, nmine);
    assert_int_not_equal(closed_fd, -1);
    assert_int_equal(collect(l, &owner_opts, found, NSTREAMS), nmine - 1);
    assert_ptr_equal(found[0], mine[1]);

    for (int i = 1; i < nmine; i++)
        SM_ASSERT_OK(sm_stream_close(mine[i]));
    for (int i = 0; i < ntheirs; i++)
        SM_ASSERT_OK(sm_stream_close(theirs[i]));
    assert_int_equal(collect(l, &owner_opts, found, NSTREAMS), 0);
    sm_io_stop(&raw);
    close(pipefd[0]);
    close(pipefd[1]);
    for (int i = 0; i < NSTREAMS; i++)
        close(peers[i]);
    ts_loop_free(l);
}

static bool
msgs_ge1(void *ctx)
{
    return ((counts *)ctx)->msgs >= 1;
}

static bool
msgs_ge2(void *ctx)
{
    return ((counts *)ctx)->msgs >= 2;
}

static bool
nothing_queued(void *ctx)
{
    return sm_stream_queued(ctx) == 0;
}

static void
test_quiet(void **state)
{
    (void)state;
    sm_loop *l = ts_loop();
    counts c = {0};
    int sv[2];
    ts_pair(sv);
    sm_stream *s = NULL;
    SM_ASSERT_OK(sm__stream_new_take_extra(&s, l, sv[0], &owner_opts, &c, 8));
    /* At a boundary with nothing queued; but it connected just now, so it
     * has not been quiet for long. */
    assert_true(sm__stream_quiet(s, 0));
    assert_false(sm__stream_quiet(s, 1u << 30));

    /* Something queued: not quiet until it is written. */
    SM_ASSERT_OK(sm_stream_send(s, "out", 3));
    assert_true(sm_stream_queued(s) > 0);
    assert_false(sm__stream_quiet(s, 0));
    assert_true(ts_run_until(l, nothing_queued, s, 5000));
    assert_true(sm__stream_quiet(s, 0));

    /* A whole message and half of the next, in one write: one read. */
    uint8_t buf[64];
    size_t n1 = ts_frame(&ts_len32, "first", 5, buf);
    size_t n2 = ts_frame(&ts_len32, "second", 6, buf + n1);
    size_t half = n1 + n2 / 2;
    ts_write(sv[1], buf, half);
    assert_true(ts_run_until(l, msgs_ge1, &c, 5000));
    assert_false(sm__stream_quiet(s, 0)); /* an unfinished message */
    ts_write(sv[1], buf + half, n1 + n2 - half);
    assert_true(ts_run_until(l, msgs_ge2, &c, 5000));
    assert_true(sm__stream_quiet(s, 0));
    assert_false(sm__stream_quiet(s, 1u << 30)); /* it just received bytes */

    SM_ASSERT_OK(sm_stream_close(s));
    close(sv[1]);
    ts_loop_free(l);
    assert_int_equal(c.closes, 1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_owned_iteration),
        cmocka_unit_test(test_quiet),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
