/* The io_uring backend's fallback, in a process of its own (a forked
 * child's SIGCHLD must not interrupt other tests' waits): with io_uring
 * made unavailable the way a container does it (a seccomp filter refusing
 * io_uring_setup with EPERM), a loop asked for io_uring runs on epoll, says
 * why, and works. */
#include "smtest.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sockmsg/loop.h>

static int reads;

static void
read_cb(sm_io *w, unsigned events)
{
    char b[8];
    (void)events;
    if (read(w->fd, b, sizeof b) > 0) reads++;
}

static int
uring_refused_child(void)
{
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {.len = sizeof f / sizeof f[0], .filter = f};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) return 10;
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0) return 11;
    sm_loop *l = NULL;
    if (sm_loop_new(&l, &(sm_loop_opts){.backend = SM_BACKEND_IO_URING}) < 0) return 12;
    int rc = 0;
    const char *why = sm_loop_backend_why(l);
    fprintf(stderr, "child: backend %s, why: %s\n", sm_loop_backend_name(l), why ? why : "-");
    if (strcmp(sm_loop_backend_name(l), "epoll") != 0) rc = 13;
#ifdef SM_HAVE_URING
    else if (!why || !strstr(why, "Operation not permitted"))
        rc = 14;
#else
    else if (!why || !strstr(why, "built without liburing"))
        rc = 14;
#endif
    /* and it runs: a readable pipe is reported */
    int p[2];
    if (rc == 0 && pipe2(p, O_NONBLOCK) == 0) {
        sm_io w;
        sm_io_init(l, &w, p[0], read_cb);
        if (write(p[1], "x", 1) != 1 || sm_io_start(&w, SM_READ) < 0 ||
            sm_loop_run(l, SM_RUN_ONCE) < 0 || reads != 1)
            rc = 15;
        sm_io_stop(&w);
        close(p[0]);
        close(p[1]);
    }
    sm_loop_free(l);
    return rc;
}

static void
test_uring_fallback(void **state)
{
    (void)state;
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) _exit(uring_refused_child());
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uring_fallback),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
