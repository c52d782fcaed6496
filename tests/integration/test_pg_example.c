/* examples/pg_query against a real PostgreSQL: one throwaway cluster per
 * run (initdb into a private directory, trust authentication, fsync off),
 * listening only on a Unix socket in that directory (the 5432 is the
 * socket's name, no TCP port). Root runs the server as user postgres
 * (initdb refuses root). Waits on events: inotify for postmaster.pid
 * saying "ready", the example's exit. */
#include "smtest.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define READY_MS 30000

static char dir[256];
static char data[300];
static int pg_pid = -1;

/* Run argv as user postgres when we are root (as ourselves otherwise),
 * stdout and stderr to `log`. Returns the pid. */
static int
spawn_as_postgres(char *const argv[], const char *log)
{
    struct passwd *pw = geteuid() == 0 ? getpwnam("postgres") : NULL;
    if (geteuid() == 0 && !pw) fail_msg("no user postgres (scripts/deps.sh test installs it)");
    int pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0) _exit(126);
        if (pw && (setgroups(0, NULL) < 0 || setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0))
            _exit(126);
        execv(argv[0], argv);
        _exit(127);
    }
    return pid;
}

/* postmaster.pid's status line says "ready" (PostgreSQL writes it when it
 * accepts connections). */
static bool
pg_ready(void)
{
    char path[320], buf[1024];
    snprintf(path, sizeof path, "%s/postmaster.pid", data);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    buf[n > 0 ? n : 0] = '\0';
    return strstr(buf, "\nready") != NULL;
}

static int
setup(void **state)
{
    (void)state;
    int64_t t0 = sm_test_now_ms();
    if (access(SM_PG_BIN "/initdb", X_OK) != 0)
        fail_msg("PostgreSQL is not installed (no '%s/initdb'): run scripts/deps.sh test",
                 SM_PG_BIN);
    sm_test_mkdtemp(dir, sizeof dir);
    snprintf(data, sizeof data, "%s/data", dir);
    struct passwd *pw = geteuid() == 0 ? getpwnam("postgres") : NULL;
    if (pw) SM_ASSERT_OK(chown(dir, pw->pw_uid, pw->pw_gid));
    char log[320];
    snprintf(log, sizeof log, "%s/log", dir);
    char *initdb[] = {SM_PG_BIN "/initdb", "-D", data,   "-A",        "trust", "-U",
                      "postgres",          "-E", "UTF8", "--no-sync", NULL};
    int rc = sm_test_wait(spawn_as_postgres(initdb, log), 60000);
    if (rc != 0) fail_msg("initdb exited %d (see %s)", rc, log);

    /* Watch the data directory before the server starts: no event lost. */
    int in = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    assert_true(in >= 0);
    assert_true(inotify_add_watch(in, data, IN_CLOSE_WRITE | IN_MODIFY | IN_CREATE) >= 0);
    char sockdir[300];
    snprintf(sockdir, sizeof sockdir, "unix_socket_directories=%s", dir);
    char *pg[] = {SM_PG_BIN "/postgres", "-D", data, "-c", "listen_addresses=", "-c", sockdir, "-c",
                  "fsync=off",           NULL};
    pg_pid = spawn_as_postgres(pg, log);
    int64_t end = sm_test_now_ms() + READY_MS;
    while (!pg_ready()) {
        int left = (int)(end - sm_test_now_ms());
        if (left <= 0) fail_msg("PostgreSQL not ready within %d ms (see %s)", READY_MS, log);
        if (waitpid(pg_pid, &rc, WNOHANG) == pg_pid) {
            pg_pid = -1;
            fail_msg("postgres exited (status %d, see %s)", rc, log);
        }
        struct pollfd p = {.fd = in, .events = POLLIN};
        /* A bounded wait on the directory's events (and a recheck of the
         * server's life at least every second). */
        if (poll(&p, 1, left < 1000 ? left : 1000) > 0) {
            char ev[4096];
            while (read(in, ev, sizeof ev) > 0)
                ;
        }
    }
    close(in);
    print_message("PostgreSQL cluster ready in %lld ms\n", (long long)(sm_test_now_ms() - t0));
    return 0;
}

static int
rm_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    return remove(path) < 0 ? -1 : 0;
}

static int
teardown(void **state)
{
    (void)state;
    if (pg_pid > 0) {
        /* SIGINT: PostgreSQL's fast shutdown. */
        kill(pg_pid, SIGINT);
        int rc = sm_test_wait(pg_pid, 30000);
        if (rc != 0) print_message("postgres exited %d\n", rc);
        pg_pid = -1;
    }
    /* The cluster is a tree: depth first, without following links. */
    if (nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS) < 0) print_message("cannot remove %s\n", dir);
    return 0;
}

/* Run pg_query with sql; its stdout in out, its exit status returned. */
static int
run_query(const char *sql, char *out, size_t cap)
{
    char ep[320];
    snprintf(ep, sizeof ep, "unix:%s/.s.PGSQL.5432", dir);
    char *argv[] = {PG_QUERY, ep, "postgres", "postgres", (char *)sql, NULL};
    int fd;
    int pid = sm_test_spawn(argv, &fd, false);
    sm_test_read_all(fd, out, cap, 20000);
    close(fd);
    return sm_test_wait(pid, 20000);
}

static void
test_rows(void **state)
{
    (void)state;
    char out[4096];
    int rc = run_query("select 1 as n, 'one' as name, null as x "
                       "union all select 2, 'two', 'zz' order by n",
                       out, sizeof out);
    assert_int_equal(rc, 0);
    assert_string_equal(out, "n|name|x\n1|one|\n2|two|zz\n-- SELECT 2\n");
}

/* A bigger result: many DataRows arrive per read, decoded in place. */
static void
test_many_rows(void **state)
{
    (void)state;
    static char out[1 << 20];
    int rc =
        run_query("select g, repeat('x', 100) from generate_series(1, 5000) g", out, sizeof out);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "\n5000|"));
    assert_non_null(strstr(out, "-- SELECT 5000\n"));
}

static void
test_server_error(void **state)
{
    (void)state;
    char out[4096];
    assert_int_equal(run_query("select nosuch", out, sizeof out), 1);
    /* A statement without rows: its command tag alone. */
    assert_int_equal(run_query("create temp table t(a int)", out, sizeof out), 0);
    assert_string_equal(out, "-- CREATE TABLE\n");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rows),
        cmocka_unit_test(test_many_rows),
        cmocka_unit_test(test_server_error),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
