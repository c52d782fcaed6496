/* sockmsg_server: the len32be echo server on sm_server (loop model, one
 * loop, the built-in echo handler), as a benchmark peer: the same work as
 * sockmsg_stream, through the server layer (peers, stats, limits, drain).
 *
 *   peer_sockmsg_server [ENDPOINT]
 *
 * Prints "listening on ENDPOINT" first; runs until killed (SIGINT or
 * SIGTERM stop it gracefully). */
#include <stdio.h>
#include <sys/resource.h>

#include <sockmsg/server.h>

int
main(int argc, char **argv)
{
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);

    const char *where = argc > 1 ? argv[1] : "tcp://127.0.0.1:0";
    sm_server_opts o = {
        .listen = (const char *[]){where, NULL},
        .model = SM_SERVER_LOOP,
        .threads = 1,
        .on_message = sm_server_handler_echo,
        .handle_signals = true,
    };
    sm_server *srv;
    char why[256] = "";
    int rc = sm_server_new(&srv, &o, why, sizeof why);
    if (rc < 0) {
        fprintf(stderr, "peer_sockmsg_server: %s\n", why[0] ? why : sm_strerror(rc));
        return 1;
    }
    sm_endpoint bound;
    char addr[256];
    sm_server_endpoint(srv, 0, &bound);
    sm_endpoint_format(&bound, addr, sizeof addr);
    printf("listening on %s\n", addr);
    fflush(stdout);
    rc = sm_server_run(srv);
    sm_server_free(srv);
    if (rc < 0) {
        fprintf(stderr, "peer_sockmsg_server: %s\n", sm_strerror(rc));
        return 1;
    }
    return 0;
}
