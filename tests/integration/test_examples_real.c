/* The real-protocol examples against the real servers, which each test starts
 * itself on a Unix socket in a private directory (no port to collide on) and
 * stops by its PID: redis_client against redis-server, mqtt_client against
 * mosquitto. scripts/deps.sh test installs both (Debian: redis-server,
 * mosquitto). */
#include "smtest.h"

#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Wait (bounded) for the server's log line that says it is ready; fail with
 * what it said otherwise. */
static void
await_ready(int out, const char *what, const char *ready)
{
    char line[1024], seen[4096] = "";
    int64_t end = sm_test_now_ms() + 10000;
    while (sm_test_now_ms() < end) {
        int n = sm_test_read_line(out, line, sizeof line, (int)(end - sm_test_now_ms()));
        if (n < 0) break;
        if (strstr(line, ready)) return;
        strncat(seen, line, sizeof seen - strlen(seen) - 2);
        strcat(seen, "\n");
    }
    fail_msg("%s did not say '%s' within 10 s (installed? scripts/deps.sh test). It said:\n%s",
             what, ready, seen);
}

static void
stop(int pid, int out)
{
    kill(pid, SIGTERM);
    int st = sm_test_wait(pid, 10000);
    close(out);
    assert_true(st >= 0);
}

static void
run_example(char *const argv[], char *out, size_t cap)
{
    int fd;
    int pid = sm_test_spawn(argv, &fd, true);
    sm_test_read_all(fd, out, cap, 20000);
    close(fd);
    int st = sm_test_wait(pid, 10000);
    if (st != 0) fail_msg("%s exited %d:\n%s", argv[0], st, out);
}

static void
test_redis(void **state)
{
    (void)state;
    char dir[256], sock[320], ep[340];
    sm_test_mkdtemp(dir, sizeof dir);
    snprintf(sock, sizeof sock, "%s/redis.sock", dir);
    snprintf(ep, sizeof ep, "unix:%s", sock);
    char *srv_argv[] = {REDIS_SERVER, "--port",       "0",  "--unixsocket", sock, "--save",
                        "",           "--appendonly", "no", "--dir",        dir,  NULL};
    int srv_out;
    int srv = sm_test_spawn(srv_argv, &srv_out, true);
    await_ready(srv_out, REDIS_SERVER,
                "eady to accept connections" /* Redis 7.0 and 7.2 spell it differently */);

    static char out[65536];
    char *argv[] = {REDIS_CLIENT, ep, "200", NULL};
    run_example(argv, out, sizeof out);
    static const char *const want[] = {
        "(a map of",
        "> SET greeting hello\nOK\n",
        "> GET greeting\n\"hello\"\n",
        "(integer) 2\n",
        "> GET missing\n(nil)\n",
        "200 replies, the last (integer) 200",
        "1) \"0\"\n2) \"1\"",
        "1) \"a\"\n   \"1\"\n2) \"b\"\n   \"2\"",
        "(error) ERR unknown command",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (!strstr(out, want[i])) fail_msg("redis_client output lacks '%s':\n%s", want[i], out);
    stop(srv, srv_out);
    sm_test_rmdir(dir);
}

static void
test_mqtt(void **state)
{
    (void)state;
    char dir[256], conf[320], sock[320], ep[340];
    sm_test_mkdtemp(dir, sizeof dir);
    snprintf(conf, sizeof conf, "%s/mosquitto.conf", dir);
    snprintf(sock, sizeof sock, "%s/mqtt.sock", dir);
    snprintf(ep, sizeof ep, "unix:%s", sock);
    FILE *f = fopen(conf, "w");
    assert_non_null(f);
    /* As root, mosquitto would switch to the user "mosquitto", who cannot
     * create the socket in our private directory: stay who we are. */
    struct passwd *pw = getpwuid(getuid());
    assert_non_null(pw);
    fprintf(f,
            "user %s\nlistener 0 %s\nallow_anonymous true\npersistence false\n"
            "log_dest stderr\n" /* unbuffered, unlike stdout on a pipe */,
            pw->pw_name, sock);
    assert_int_equal(fclose(f), 0);
    char *srv_argv[] = {MOSQUITTO, "-c", conf, NULL};
    int srv_out;
    int srv = sm_test_spawn(srv_argv, &srv_out, true);
    await_ready(srv_out, MOSQUITTO, " running");

    char out[4096];
    char *argv[] = {MQTT_CLIENT, ep, "sockmsg/test", "a message over MQTT", NULL};
    run_example(argv, out, sizeof out);
    static const char *const want[] = {
        "CONNACK: accepted\n",
        "SUBACK: sockmsg/test at QoS 0\n",
        "PUBLISH: a message over MQTT\n",
        "received on sockmsg/test: a message over MQTT\n",
        "DISCONNECT\n",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (!strstr(out, want[i])) fail_msg("mqtt_client output lacks '%s':\n%s", want[i], out);
    stop(srv, srv_out);
    sm_test_rmdir(dir);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_redis),
        cmocka_unit_test(test_mqtt),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
