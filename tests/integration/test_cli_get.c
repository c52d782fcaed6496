/* `sockmsg get` run as a process against real servers on loopback:
 *   - python3 -m http.server (HTTP/1.0, Content-Length, a 301 for directories);
 *   - nginx with a generated config (static files, chunked output through
 *     sub_filter and SSI, return 302, a 404), skipped if nginx is missing;
 *   - a scripted server thread here, for what real servers rarely send:
 *     chunk extensions and trailers, interim responses, malformed and
 *     truncated responses, silence (timeouts), redirect loops;
 *   - usage errors and a refused connection.
 * Ports are found at run time; every wait is bounded; every process started
 * here is killed by its pid and reaped. */
#include "smtest.h"
#ifdef SM_TLS_CERTS
#include "tls_test.h"
#endif

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sockmsg/socket.h>

#ifndef SOCKMSG_BIN
#error "SOCKMSG_BIN must name the sockmsg executable"
#endif
#ifndef SM_PYTHON3
#define SM_PYTHON3 "/usr/bin/python3"
#endif
#ifndef SM_NGINX
#define SM_NGINX ""
#endif

#define RUN_TIMEOUT_MS 60000
#define BIG_SIZE       (20u << 20)

/* A finished run of the tool. */
typedef struct run {
    int code;
    char *out; /* stdout, NUL-terminated (may hold NULs) */
    size_t out_len;
    char err[8192];
    int64_t ms;
} run;

static void
run_free(run *r)
{
    free(r->out);
    r->out = NULL;
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    (void)remove(path);
    return 0;
}

static void
rm_tree(const char *dir)
{
    if (dir[0]) nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void
write_file(const char *dir, const char *name, const void *data, size_t len)
{
    char path[8448];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    const char *p = data;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        assert_true(w > 0);
        p += w;
        len -= (size_t)w;
    }
    close(fd);
}

static void
write_text(const char *dir, const char *name, const char *text)
{
    write_file(dir, name, text, strlen(text));
}

static void
make_dir(const char *dir, const char *name)
{
    char path[8448];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    assert_int_equal(mkdir(path, 0755), 0);
}

/* Read a whole file (NUL-terminated); *len gets its size. */
static char *
read_file(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        *len = 0;
        return calloc(1, 1);
    }
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    char *buf = malloc((size_t)st.st_size + 1);
    assert_non_null(buf);
    size_t n = 0;
    while (n < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + n, (size_t)st.st_size - n);
        if (r <= 0) break;
        n += (size_t)r;
    }
    close(fd);
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* Start a program with stdin from /dev/null and stdout, stderr to files
 * (NULL: /dev/null). Returns its pid. Only async-signal-safe calls after fork:
 * the scripted server's thread may be running. */
static pid_t
spawn(char *const argv[], const char *out_path, const char *err_path)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int in = open("/dev/null", O_RDONLY);
        int out = open(out_path ? out_path : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int err = open(err_path ? err_path : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (in < 0 || out < 0 || err < 0) _exit(126);
        dup2(in, 0);
        dup2(out, 1);
        dup2(err, 2);
        execv(argv[0], argv);
        _exit(127);
    }
    return pid;
}

/* Where each run's output files go. */
static char run_dir[4096];

/* Run `sockmsg ARGS...` (NULL-terminated) and collect what it did. */
static void
run_tool(run *r, const char *const args[])
{
    char *argv[32];
    size_t n = 0;
    argv[n++] = (char *)SOCKMSG_BIN;
    for (size_t i = 0; args[i]; i++) {
        assert_true(n + 1 < sizeof argv / sizeof argv[0]);
        argv[n++] = (char *)args[i];
    }
    argv[n] = NULL;
    char out_path[4200], err_path[4200];
    snprintf(out_path, sizeof out_path, "%s/run.out", run_dir);
    snprintf(err_path, sizeof err_path, "%s/run.err", run_dir);
    int64_t t0 = sm_test_now_ms();
    pid_t pid = spawn(argv, out_path, err_path);
    r->code = sm_test_wait(pid, RUN_TIMEOUT_MS);
    r->ms = sm_test_now_ms() - t0;
    r->out = read_file(out_path, &r->out_len);
    size_t elen;
    char *err = read_file(err_path, &elen);
    snprintf(r->err, sizeof r->err, "%s", err);
    free(err);
    unlink(out_path);
    unlink(err_path);
}

#define RUN(r, ...) run_tool((r), (const char *const[]){__VA_ARGS__, NULL})

static void
expect(const run *r, int code, const char *out, const char *err_has)
{
    bool ok = r->code == code;
    if (out) ok = ok && r->out_len == strlen(out) && !memcmp(r->out, out, r->out_len);
    if (err_has) ok = ok && strstr(r->err, err_has) != NULL;
    if (!ok) {
        print_error("exit %d (want %d)\nstdout (%zu bytes): %.500s\nstderr: %s\nwant stdout: "
                    "%s\nwant in stderr: %s\n",
                    r->code, code, r->out_len, r->out, r->err, out ? out : "(any)",
                    err_has ? err_has : "(any)");
        fail();
    }
}

static void
expect_same_file(const char *path, const char *want, size_t want_len)
{
    size_t n;
    char *got = read_file(path, &n);
    if (n != want_len) {
        print_error("%s: %zu bytes, want %zu\n", path, n, want_len);
        fail();
    }
    for (size_t i = 0; i < n; i++) {
        if (got[i] != want[i]) {
            print_error("%s: first difference at byte %zu\n", path, i);
            fail();
        }
    }
    free(got);
}

/* A port nobody listens on right now: bound, read back, closed. */
static int
free_port(const char *host)
{
    char ep[128];
    snprintf(ep, sizeof ep, strchr(host, ':') ? "tcp://[%s]:0" : "tcp://%s:0", host);
    int fd = sm_listen(ep, 1);
    if (fd < 0) return fd;
    sm_endpoint bound;
    SM_ASSERT_OK(sm_sock_local(fd, &bound));
    close(fd);
    return bound.port;
}

/* Wait until a server we started accepts on host:port, or until it exits
 * (then false: e.g. someone took the port first). Bounded polling. */
static bool
wait_accepting(pid_t pid, const char *host, int port, int timeout_ms)
{
    char ep[128];
    snprintf(ep, sizeof ep, strchr(host, ':') ? "tcp://[%s]:%d" : "tcp://%s:%d", host, port);
    int64_t end = sm_test_now_ms() + timeout_ms;
    while (sm_test_now_ms() < end) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) return false;
        int fd = sm_dial(ep, 200);
        if (fd >= 0) {
            close(fd);
            return true;
        }
        poll(NULL, 0, 20);
    }
    return false;
}

static void
stop_server(pid_t *pid)
{
    if (*pid <= 0) return;
    kill(*pid, SIGTERM);
    if (sm_test_wait(*pid, 10000) < 0) print_message("server %d had to be killed\n", (int)*pid);
    *pid = 0;
}

/* --- python3 -m http.server ------------------------------------------------ */

typedef struct py_server {
    pid_t pid;
    int port;
    char url[128]; /* http://127.0.0.1:PORT */
} py_server;

static struct {
    char dir[4096];
    char www[4200];
    char *big;
    py_server v4, v6;
    bool have_v6;
} py;

static bool
py_start(py_server *s, const char *host)
{
    for (int attempt = 0; attempt < 5; attempt++) {
        s->port = free_port(host);
        if (s->port < 0) return false;
        char port[16];
        snprintf(port, sizeof port, "%d", s->port);
        char *argv[] = {(char *)SM_PYTHON3, "-m",   "http.server", "--bind", (char *)host, port,
                        "--directory",      py.www, NULL};
        s->pid = spawn(argv, NULL, NULL);
        if (wait_accepting(s->pid, host, s->port, 20000)) {
            snprintf(s->url, sizeof s->url, strchr(host, ':') ? "http://[%s]:%d" : "http://%s:%d",
                     host, s->port);
            return true;
        }
        stop_server(&s->pid);
    }
    return false;
}

static int
py_setup(void **state)
{
    (void)state;
    sm_test_mkdtemp(py.dir, sizeof py.dir);
    snprintf(run_dir, sizeof run_dir, "%s", py.dir);
    snprintf(py.www, sizeof py.www, "%s/www", py.dir);
    make_dir(py.dir, "www");
    write_text(py.www, "small.txt", "hello from python\n");
    make_dir(py.www, "dir");
    write_text(py.www, "dir/index.html", "directory index\n");
    py.big = malloc(BIG_SIZE);
    assert_non_null(py.big);
    uint64_t seed = 0xb16f11e;
    for (size_t i = 0; i < BIG_SIZE; i += 8) {
        uint64_t v = sm_test_rand(&seed);
        memcpy(py.big + i, &v, 8);
    }
    write_file(py.www, "big.bin", py.big, BIG_SIZE);
    if (!py_start(&py.v4, "127.0.0.1")) {
        print_error("python3 http.server (%s) did not start\n", SM_PYTHON3);
        return -1;
    }
    int fd = sm_listen("tcp://[::1]:0", 1);
    if (fd >= 0) {
        close(fd);
        py.have_v6 = py_start(&py.v6, "::1");
    }
    return 0;
}

static int
py_teardown(void **state)
{
    (void)state;
    stop_server(&py.v4.pid);
    stop_server(&py.v6.pid);
    free(py.big);
    rm_tree(py.dir);
    return 0;
}

static void
test_py_small(void **state)
{
    (void)state;
    char url[256];
    run r;
    snprintf(url, sizeof url, "%s/small.txt", py.v4.url);
    RUN(&r, "get", url);
    expect(&r, 0, "hello from python\n", NULL);
    assert_string_equal(r.err, "");
    run_free(&r);
    /* The query goes along; the server ignores it for a file. */
    snprintf(url, sizeof url, "%s/small.txt?x=1&y=2", py.v4.url);
    RUN(&r, "get", url);
    expect(&r, 0, "hello from python\n", NULL);
    run_free(&r);
}

static void
test_py_include(void **state)
{
    (void)state;
    char url[256];
    run r;
    snprintf(url, sizeof url, "%s/small.txt", py.v4.url);
    RUN(&r, "get", "-i", url);
    expect(&r, 0, NULL, NULL);
    assert_true(!strncmp(r.out, "HTTP/1.0 200 OK\r\n", 17));
    assert_non_null(strstr(r.out, "\r\nContent-Length: 18\r\n"));
    const char *tail = "\r\n\r\nhello from python\n";
    assert_true(r.out_len > strlen(tail));
    assert_string_equal(r.out + r.out_len - strlen(tail), tail);
    run_free(&r);
}

static void
test_py_big(void **state)
{
    (void)state;
    char url[256], out[4200];
    run r;
    snprintf(url, sizeof url, "%s/big.bin", py.v4.url);
    snprintf(out, sizeof out, "%s/big.out", py.dir);
    RUN(&r, "get", "-o", out, url);
    expect(&r, 0, "", NULL);
    run_free(&r);
    expect_same_file(out, py.big, BIG_SIZE);
    unlink(out);
    /* And through stdout. */
    RUN(&r, "get", url, "--timeout", "60s");
    expect(&r, 0, NULL, NULL);
    assert_int_equal(r.out_len, BIG_SIZE);
    assert_memory_equal(r.out, py.big, BIG_SIZE);
    run_free(&r);
}

static void
test_py_404(void **state)
{
    (void)state;
    char url[256];
    run r;
    snprintf(url, sizeof url, "%s/missing.txt", py.v4.url);
    RUN(&r, "get", url);
    expect(&r, 1, NULL, "sockmsg: 404 File not found\n");
    run_free(&r);
}

static void
test_py_dir_redirect(void **state)
{
    (void)state;
    char url[256];
    run r;
    snprintf(url, sizeof url, "%s/dir", py.v4.url);
    /* Without -L the 301 is the answer: exit 0. */
    RUN(&r, "get", "-i", url);
    expect(&r, 0, NULL, NULL);
    assert_true(!strncmp(r.out, "HTTP/1.0 301 ", 13));
    assert_non_null(strstr(r.out, "\r\nLocation: /dir/\r\n"));
    run_free(&r);
    RUN(&r, "get", "-L", url);
    expect(&r, 0, "directory index\n", NULL);
    run_free(&r);
    /* -i -L shows both heads. */
    RUN(&r, "get", "-iL", url);
    expect(&r, 0, NULL, NULL);
    char *second = strstr(r.out, "\r\n\r\nHTTP/1.0 200 OK\r\n");
    assert_non_null(second);
    assert_true(!strncmp(r.out, "HTTP/1.0 301 ", 13));
    run_free(&r);
}

static void
test_py_ipv6(void **state)
{
    (void)state;
    if (!py.have_v6) {
        print_message("no IPv6 loopback (::1): skipping the bracketed-host test\n");
        skip();
    }
    char url[256];
    run r;
    snprintf(url, sizeof url, "%s/small.txt", py.v6.url);
    RUN(&r, "get", url);
    expect(&r, 0, "hello from python\n", NULL);
    run_free(&r);
}

/* --- nginx --------------------------------------------------------------- */

static struct {
    char nginx[4096]; /* the binary, "" if none */
    char dir[4096];
    pid_t pid;
    int port, sport;          /* http, https */
    char url[128], surl[128]; /* http://127.0.0.1:PORT, https://127.0.0.1:SPORT */
    char *big;
    size_t big_len;
} ngx;

static bool
find_nginx(char *out, size_t cap)
{
    const char *cands[] = {getenv("SM_NGINX"),      SM_NGINX,         "/usr/sbin/nginx",
                           "/usr/local/sbin/nginx", "/usr/bin/nginx", "/sbin/nginx"};
    for (size_t i = 0; i < sizeof cands / sizeof cands[0]; i++) {
        if (cands[i] && cands[i][0] == '/' && access(cands[i], X_OK) == 0) {
            snprintf(out, cap, "%s", cands[i]);
            return true;
        }
    }
    return false;
}

static void
ngx_config(int port, int sport)
{
    const char *d = ngx.dir;
    char conf[8192 + 16384], https[16384] = "";
#ifdef SM_TLS_CERTS
    /* HTTPS with the test's certificates (localhost, 127.0.0.1). */
    snprintf(https, sizeof https,
             "  server {\n"
             "    listen 127.0.0.1:%d ssl;\n"
             "    ssl_certificate %s;\n"
             "    ssl_certificate_key %s;\n"
             "    root %s/www;\n"
             "    location = /to-http { return 302 http://127.0.0.1:%d/target.txt; }\n"
             "    location /sub/ { sub_filter 'foo' 'bar'; sub_filter_once off; "
             "sub_filter_types *; }\n"
             "  }\n",
             sport, sm_test_cert("leaf.pem"), sm_test_cert("leaf.key"), d, port);
#endif
    int n = snprintf(
        conf, sizeof conf,
        "master_process off;\n"
        "worker_processes 1;\n"
        "pid %s/nginx.pid;\n"
        "error_log %s/error.log warn;\n"
        "events { worker_connections 64; }\n"
        "http {\n"
        "  access_log off;\n"
        "  client_body_temp_path %s/tmp/body;\n"
        "  proxy_temp_path %s/tmp/proxy;\n"
        "  fastcgi_temp_path %s/tmp/fastcgi;\n"
        "  uwsgi_temp_path %s/tmp/uwsgi;\n"
        "  scgi_temp_path %s/tmp/scgi;\n"
        "  default_type application/octet-stream;\n"
        "  types { text/plain txt; text/html shtml html; }\n"
        "  server {\n"
        "    listen 127.0.0.1:%d;\n"
        "    root %s/www;\n"
        /* nginx forms an absolute Location from the Host we send... */
        "    location = /redirect { return 302 /target.txt; }\n"
        /* ...or leaves it relative. */
        "    location = /redirect-rel { absolute_redirect off; return 301 /target.txt; }\n"
        "    location = /redirect-307 { absolute_redirect off; return 307 redirect-rel; }\n"
        "    location = /loop { return 302 /loop; }\n"
        /* sub_filter rewrites the body, so its length is unknown up front:
         * nginx drops Content-Length and sends HTTP/1.1 clients chunks. */
        "    location /sub/ { sub_filter 'foo' 'bar'; sub_filter_once off; sub_filter_types *; }\n"
        /* SSI streams the page and the include as separate chunks. */
        "    location ~ \\.shtml$ { ssi on; }\n"
        "    location = /to-https { return 302 https://127.0.0.1:%d/static.txt; }\n"
        "  }\n"
        "%s"
        "}\n",
        d, d, d, d, d, d, d, port, d, sport, https);
    assert_true(n > 0 && (size_t)n < sizeof conf);
    write_file(d, "nginx.conf", conf, (size_t)n);
}

static bool
ngx_start(void)
{
    char conf[4200], prefix[4200], errlog[4200];
    snprintf(conf, sizeof conf, "%s/nginx.conf", ngx.dir);
    snprintf(prefix, sizeof prefix, "%s/", ngx.dir);
    snprintf(errlog, sizeof errlog, "%s/error.log", ngx.dir);
    for (int attempt = 0; attempt < 5; attempt++) {
        ngx.port = free_port("127.0.0.1");
        ngx.sport = free_port("127.0.0.1");
        ngx_config(ngx.port, ngx.sport);
        /* -e: the compiled-in error log may not be writable by us. */
        char *argv[] = {ngx.nginx, "-c",   conf, "-p",          prefix,
                        "-e",      errlog, "-g", "daemon off;", NULL};
        char out[4200];
        snprintf(out, sizeof out, "%s/nginx.out", ngx.dir);
        ngx.pid = spawn(argv, out, out);
        bool https = true;
#ifdef SM_TLS_CERTS
        https = wait_accepting(ngx.pid, "127.0.0.1", ngx.sport, 20000);
#endif
        if (wait_accepting(ngx.pid, "127.0.0.1", ngx.port, 20000) && https) {
            snprintf(ngx.url, sizeof ngx.url, "http://127.0.0.1:%d", ngx.port);
            snprintf(ngx.surl, sizeof ngx.surl, "https://127.0.0.1:%d", ngx.sport);
            return true;
        }
        stop_server(&ngx.pid);
    }
    size_t n;
    char *log = read_file(errlog, &n);
    print_error("nginx did not start; error.log:\n%s\n", log);
    free(log);
    return false;
}

static int
ngx_setup(void **state)
{
    (void)state;
    if (!find_nginx(ngx.nginx, sizeof ngx.nginx)) {
        ngx.nginx[0] = '\0';
        print_message("nginx not found (Debian package nginx, see scripts/deps.sh): "
                      "skipping the nginx tests\n");
        return 0;
    }
    sm_test_mkdtemp(ngx.dir, sizeof ngx.dir);
    snprintf(run_dir, sizeof run_dir, "%s", ngx.dir);
    make_dir(ngx.dir, "tmp");
    make_dir(ngx.dir, "www");
    make_dir(ngx.dir, "www/sub");
#ifdef SM_TLS_CERTS
    /* Certificates for the HTTPS server (tests/support/tls_test.h). */
    if (sm_test_tls_certs_find() != 0) {
        print_error("no certificates for nginx\n");
        return -1;
    }
#endif
    char www[4200];
    snprintf(www, sizeof www, "%s/www", ngx.dir);
    write_text(www, "static.txt", "static file from nginx\n");
    write_text(www, "target.txt", "you have arrived\n");
    write_text(www, "sub/page.txt", "hello foo world\n");
    write_text(www, "page.shtml", "<p>x<!--# include virtual=\"/target.txt\" -->y</p>\n");
    /* A large text that sub_filter leaves alone (no 'f' in it), to stream
     * many chunks. */
    ngx.big_len = 8u << 20;
    ngx.big = malloc(ngx.big_len);
    assert_non_null(ngx.big);
    static const char alphabet[] = "abcdeghijklmnopqrstuvwxyz0123456789\n";
    uint64_t seed = 0xc4u;
    for (size_t i = 0; i < ngx.big_len; i++)
        ngx.big[i] = alphabet[sm_test_rand(&seed) % (sizeof alphabet - 1)];
    write_file(www, "sub/big.txt", ngx.big, ngx.big_len);
    if (!ngx_start()) return -1;
    return 0;
}

static int
ngx_teardown(void **state)
{
    (void)state;
    stop_server(&ngx.pid);
    free(ngx.big);
    if (ngx.dir[0]) rm_tree(ngx.dir);
#ifdef SM_TLS_CERTS
    sm_test_tls_teardown(NULL);
#endif
    return 0;
}

#define NEED_NGINX()                                                                               \
    do {                                                                                           \
        if (!ngx.nginx[0]) skip();                                                                 \
    } while (0)

static void
test_ngx_static(void **state)
{
    (void)state;
    NEED_NGINX();
    char url[256];
    run r;
    snprintf(url, sizeof url, "%s/static.txt", ngx.url);
    RUN(&r, "get", url);
    expect(&r, 0, "static file from nginx\n", NULL);
    run_free(&r);
    RUN(&r, "get", "--include", url);
    expect(&r, 0, NULL, NULL);
    assert_true(!strncmp(r.out, "HTTP/1.1 200 OK\r\n", 17));
    assert_non_null(strstr(r.out, "\r\nContent-Length: 23\r\n"));
    run_free(&r);
}

#ifdef SM_TLS_CERTS
/* HTTPS: verified against the test's CA, refused without it, redirects
 * between http and https both ways, a large chunked body. Built with TLS
 * only (a build without it has no such case, rather than a skipped one). */
static void
test_ngx_https(void **state)
{
    (void)state;
    NEED_NGINX();
    char url[256], ca[4200];
    snprintf(ca, sizeof ca, "%s", sm_test_cert("ca.pem"));
    run r;
    snprintf(url, sizeof url, "%s/static.txt", ngx.surl);
    RUN(&r, "get", "--ca", ca, url);
    expect(&r, 0, "static file from nginx\n", NULL);
    run_free(&r);
    RUN(&r, "get", url);
    expect(&r, 1, NULL, "unknown CA");
    run_free(&r);
    RUN(&r, "get", "--insecure", url);
    expect(&r, 0, "static file from nginx\n", NULL);
    run_free(&r);
    snprintf(url, sizeof url, "https://localhost:%d/static.txt", ngx.sport);
    RUN(&r, "get", "--ca", ca, url);
    expect(&r, 0, "static file from nginx\n", NULL);
    run_free(&r);
    snprintf(url, sizeof url, "%s/to-https", ngx.url);
    RUN(&r, "get", "--ca", ca, "-L", url);
    expect(&r, 0, "static file from nginx\n", NULL);
    run_free(&r);
    snprintf(url, sizeof url, "%s/to-http", ngx.surl);
    RUN(&r, "get", "--ca", ca, "-L", url);
    expect(&r, 0, "you have arrived\n", NULL);
    run_free(&r);
    snprintf(url, sizeof url, "%s/sub/big.txt", ngx.surl);
    RUN(&r, "get", "--ca", ca, url);
    expect(&r, 0, NULL, NULL);
    assert_int_equal(r.out_len, ngx.big_len);
    assert_memory_equal(r.out, ngx.big, ngx.big_len);
    run_free(&r);
}
#endif

/* Ask nginx directly, without the tool: the response really is chunked. */
static void
test_ngx_raw_chunked(void **state)
{
    (void)state;
    NEED_NGINX();
    char ep[64];
    snprintf(ep, sizeof ep, "tcp://127.0.0.1:%d", ngx.port);
    int fd = SM_ASSERT_OK(sm_dial(ep, 5000));
    const char *req = "GET /sub/page.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    SM_ASSERT_OK(sm_send_all(fd, req, strlen(req), 5000, NULL));
    char resp[4096];
    size_t n = 0;
    int64_t end = sm_test_now_ms() + 10000;
    while (n + 1 < sizeof resp && sm_test_now_ms() < end) {
        ssize_t k = sm_recv_some(fd, resp + n, sizeof resp - 1 - n, 5000);
        if (k <= 0) break;
        n += (size_t)k;
    }
    resp[n] = '\0';
    close(fd);
    if (!strstr(resp, "\r\nTransfer-Encoding: chunked\r\n") || strstr(resp, "Content-Length") ||
        !strstr(resp, "\r\n\r\n10\r\nhello bar world\n\r\n") || !strstr(resp, "\r\n0\r\n\r\n")) {
        print_error("nginx did not answer with chunks:\n%s\n", resp);
        fail();
    }
}

static void
test_ngx_chunked(void **state)
{
    (void)state;
    NEED_NGINX();
    char url[256];
    run r;
    snprintf(url, sizeof url, "%s/sub/page.txt", ngx.url);
    RUN(&r, "get", url);
    expect(&r, 0, "hello bar world\n", NULL);
    run_free(&r);
    RUN(&r, "get", "-i", url);
    expect(&r, 0, NULL, NULL);
    assert_non_null(strstr(r.out, "\r\nTransfer-Encoding: chunked\r\n"));
    const char *tail = "\r\n\r\nhello bar world\n";
    assert_string_equal(r.out + r.out_len - strlen(tail), tail);
    run_free(&r);
    /* SSI: the page and its include in several chunks. */
    snprintf(url, sizeof url, "%s/page.shtml", ngx.url);
    RUN(&r, "get", url);
    expect(&r, 0, "<p>xyou have arrived\ny</p>\n", NULL);
    run_free(&r);
}

static void
test_ngx_big_chunked(void **state)
{
    (void)state;
    NEED_NGINX();
    char url[256], out[4200];
    snprintf(url, sizeof url, "%s/sub/big.txt", ngx.url);
    snprintf(out, sizeof out, "%s/big.out", ngx.dir);
    run r;
    RUN(&r, "get", "-i", "-o", out, url);
    expect(&r, 0, "", NULL);
    run_free(&r);
    size_t n;
    char *got = read_file(out, &n);
    char *body = strstr(got, "\r\n\r\n");
    assert_non_null(body);
    *body = '\0';
    if (!strstr(got, "\r\nTransfer-Encoding: chunked")) {
        print_error("not chunked:\n%s\n", got);
        fail();
    }
    body += 4;
    assert_int_equal(n - (size_t)(body - got), ngx.big_len);
    assert_memory_equal(body, ngx.big, ngx.big_len);
    free(got);
    unlink(out);
}

static void
test_ngx_redirects(void **state)
{
    (void)state;
    NEED_NGINX();
    char url[256];
    run r;
    /* Not followed: the 302 is the answer (exit 0, nginx's little page). */
    snprintf(url, sizeof url, "%s/redirect", ngx.url);
    RUN(&r, "get", "-i", url);
    expect(&r, 0, NULL, NULL);
    assert_true(!strncmp(r.out, "HTTP/1.1 302 ", 13));
    char want[256];
    snprintf(want, sizeof want, "\r\nLocation: %s/target.txt\r\n", ngx.url);
    assert_non_null(strstr(r.out, want));
    run_free(&r);
    RUN(&r, "get", "-L", url);
    expect(&r, 0, "you have arrived\n", NULL);
    run_free(&r);
    /* Relative Locations: 307 "redirect-rel" then 301 "/target.txt". */
    snprintf(url, sizeof url, "%s/redirect-307", ngx.url);
    RUN(&r, "get", "-i", url);
    expect(&r, 0, NULL, "");
    assert_non_null(strstr(r.out, "\r\nLocation: redirect-rel\r\n"));
    run_free(&r);
    RUN(&r, "get", "-L", "-v", url);
    expect(&r, 0, "you have arrived\n", "301 redirect to");
    assert_non_null(strstr(r.err, "307 redirect to"));
    run_free(&r);
    /* A loop ends after 10 redirects. */
    snprintf(url, sizeof url, "%s/loop", ngx.url);
    RUN(&r, "get", "-L", url);
    expect(&r, 1, NULL, "too many redirects");
    run_free(&r);
}

static void
test_ngx_404(void **state)
{
    (void)state;
    NEED_NGINX();
    char url[256];
    run r;
    snprintf(url, sizeof url, "%s/nothing/here", ngx.url);
    RUN(&r, "get", url);
    expect(&r, 1, NULL, "sockmsg: 404 Not Found\n");
    assert_non_null(strstr(r.out, "404 Not Found")); /* the error page is the body */
    run_free(&r);
}

/* --- a scripted server ----------------------------------------------------- */

typedef struct route {
    const char *path; /* matched as a prefix */
    const char *response;
    bool echo;  /* answer 200 with the request head as the body */
    bool drain; /* after responding, wait for the client to close */
    size_t pad; /* this many bytes of header field first (for a huge head) */
} route;

static const route routes[] = {
    {"/ext", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
             "5;a=b\r\nhello\r\n1;x;y=\"z\"\r\n \r\n5\r\nworld\r\n0\r\nX-Trailer: t\r\n\r\n"},
    {"/eof", "HTTP/1.1 200 OK\r\nServer: script\r\n\r\nuntil eof"},
    {"/continue", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"},
    {"/garbage", "SSH-2.0-OpenSSH_9.2\r\n", false, true},
    {"/short", "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this"},
    {"/badchunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nzz\r\n"},
    {"/hang", "", false, true},
    {"/rel/a", "HTTP/1.1 302 Found\r\nLocation: ../echo/x?q=1\r\nContent-Length: 0\r\n\r\n"},
    {"/echo", NULL, true},
    {"/loop", "HTTP/1.1 301 Moved\r\nLocation: /loop\r\nContent-Length: 0\r\n\r\n"},
    {"/503", "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy"},
    {"/to-https",
     "HTTP/1.1 302 Found\r\nLocation: https://127.0.0.1/\r\nContent-Length: 0\r\n\r\n"},
    {"/huge-head", "\r\n\r\n", false, true, 70000},
    {"/te-and-cl", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
                   "3\r\nabc\r\n0\r\n\r\n"},
};

static struct {
    int fd;
    int port;
    char url[64];
    pthread_t thread;
    atomic_bool stop;
    atomic_int requests;
    char dir[4096];
} scr;

static void
send_slowly(int fd, const char *p, size_t n)
{
    /* Small writes, so the client sees the response in many pieces. */
    for (size_t i = 0; i < n; i += 7) {
        size_t k = n - i < 7 ? n - i : 7;
        if (sm_send_all(fd, p + i, k, 5000, NULL) < 0) return;
    }
}

static void
serve_one(int fd)
{
    char req[8192];
    size_t n = 0;
    while (n + 1 < sizeof req) {
        ssize_t k = sm_recv_some(fd, req + n, sizeof req - 1 - n, 5000);
        if (k <= 0) return;
        n += (size_t)k;
        req[n] = '\0';
        if (strstr(req, "\r\n\r\n")) break;
    }
    atomic_fetch_add(&scr.requests, 1);
    const char *path = strncmp(req, "GET ", 4) ? "" : req + 4;
    const route *rt = NULL;
    for (size_t i = 0; i < sizeof routes / sizeof routes[0] && !rt; i++)
        if (!strncmp(path, routes[i].path, strlen(routes[i].path))) rt = &routes[i];
    if (!rt) return;
    if (rt->echo) {
        char resp[9000];
        int m =
            snprintf(resp, sizeof resp, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n%s", n, req);
        send_slowly(fd, resp, (size_t)m);
    } else {
        if (rt->pad) {
            const char *start = "HTTP/1.1 200 OK\r\nX-Pad: ";
            sm_send_all(fd, start, strlen(start), 5000, NULL);
            char pad[1024];
            memset(pad, 'p', sizeof pad);
            for (size_t sent = 0; sent < rt->pad; sent += sizeof pad)
                if (sm_send_all(fd, pad, sizeof pad, 5000, NULL) < 0) break;
        }
        send_slowly(fd, rt->response, strlen(rt->response));
    }
    if (rt->drain) {
        char sink[4096];
        int64_t end = sm_test_now_ms() + 15000;
        ssize_t k;
        do
            k = sm_recv_some(fd, sink, sizeof sink, 1000);
        while ((k > 0 || k == -ETIMEDOUT) && sm_test_now_ms() < end);
    }
}

static void *
scr_main(void *arg)
{
    (void)arg;
    while (!atomic_load(&scr.stop)) {
        int fd = sm_accept(scr.fd, 50, NULL);
        if (fd < 0) continue;
        serve_one(fd);
        close(fd);
    }
    return NULL;
}

static int
scr_setup(void **state)
{
    (void)state;
    sm_test_mkdtemp(scr.dir, sizeof scr.dir);
    snprintf(run_dir, sizeof run_dir, "%s", scr.dir);
    scr.fd = SM_ASSERT_OK(sm_listen("tcp://127.0.0.1:0", 16));
    sm_endpoint bound;
    SM_ASSERT_OK(sm_sock_local(scr.fd, &bound));
    scr.port = bound.port;
    snprintf(scr.url, sizeof scr.url, "http://127.0.0.1:%d", scr.port);
    atomic_store(&scr.stop, false);
    assert_int_equal(pthread_create(&scr.thread, NULL, scr_main, NULL), 0);
    return 0;
}

static int
scr_teardown(void **state)
{
    (void)state;
    atomic_store(&scr.stop, true);
    pthread_join(scr.thread, NULL);
    close(scr.fd);
    rm_tree(scr.dir);
    return 0;
}

static const char *
scr_url(const char *path)
{
    static char url[256];
    snprintf(url, sizeof url, "%s%s", scr.url, path);
    return url;
}

static void
test_scr_chunk_extensions_trailers(void **state)
{
    (void)state;
    run r;
    RUN(&r, "get", scr_url("/ext"));
    expect(&r, 0, "hello world", NULL);
    run_free(&r);
}

static void
test_scr_until_eof(void **state)
{
    (void)state;
    run r;
    RUN(&r, "get", scr_url("/eof"));
    expect(&r, 0, "until eof", NULL);
    run_free(&r);
}

static void
test_scr_interim_response(void **state)
{
    (void)state;
    run r;
    RUN(&r, "get", scr_url("/continue"));
    expect(&r, 0, "ok", NULL);
    run_free(&r);
    RUN(&r, "get", "-i", scr_url("/continue"));
    expect(&r, 0, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
           NULL);
    run_free(&r);
}

static void
test_scr_request_head(void **state)
{
    (void)state;
    run r;
    RUN(&r, "get", scr_url("/echo/head?a=b%20c"));
    char want[512];
    snprintf(want, sizeof want,
             "GET /echo/head?a=b%%20c HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUser-Agent: "
             "sockmsg/%s\r\nAccept: */*\r\nConnection: close\r\n\r\n",
             scr.port, SM_VERSION_STRING);
    expect(&r, 0, want, NULL);
    run_free(&r);
}

static void
test_scr_relative_redirect(void **state)
{
    (void)state;
    run r;
    RUN(&r, "get", "-L", scr_url("/rel/a"));
    expect(&r, 0, NULL, NULL);
    assert_true(!strncmp(r.out, "GET /echo/x?q=1 HTTP/1.1\r\n", 26));
    run_free(&r);
}

static void
test_scr_redirect_limits(void **state)
{
    (void)state;
    run r;
    atomic_store(&scr.requests, 0);
    RUN(&r, "get", "-L", scr_url("/loop"));
    expect(&r, 1, NULL, "too many redirects (more than 10)");
    assert_int_equal(atomic_load(&scr.requests), 11);
    run_free(&r);
    /* To https on port 443, where nothing listens. */
    RUN(&r, "get", "-L", scr_url("/to-https"));
    expect(&r, 1, NULL, "127.0.0.1:443");
    run_free(&r);
}

static void
test_scr_errors(void **state)
{
    (void)state;
    run r;
    RUN(&r, "get", scr_url("/503"));
    expect(&r, 1, "busy", "sockmsg: 503 Service Unavailable\n");
    run_free(&r);
    RUN(&r, "get", scr_url("/short"));
    expect(&r, 1, "only this", "connection closed after 9 of 100 body bytes");
    run_free(&r);
    RUN(&r, "get", scr_url("/badchunk"));
    expect(&r, 1, "abc", "malformed chunked body");
    run_free(&r);
    RUN(&r, "get", scr_url("/te-and-cl"));
    expect(&r, 1, "", "malformed response: both Content-Length and Transfer-Encoding");
    run_free(&r);
    RUN(&r, "get", scr_url("/huge-head"));
    expect(&r, 1, "", "response head larger than 65536 bytes");
    run_free(&r);
    /* Not HTTP: refused at once, not after the timeout. */
    RUN(&r, "get", "--timeout", "30s", scr_url("/garbage"));
    /* The error (not "timed out after 30000 ms") is what shows it was at once. */
    expect(&r, 1, "", "malformed response: response does not start with 'HTTP/'");
    run_free(&r);
}

static void
test_scr_timeout(void **state)
{
    (void)state;
    run r;
    RUN(&r, "get", "--timeout", "300", scr_url("/hang"));
    expect(&r, 1, "", "timed out after 300 ms");
    assert_true(r.ms >= 250); /* never early; how late is load's business */
    run_free(&r);
}

static void
test_scr_output(void **state)
{
    (void)state;
    run r;
    char path[4200];
    snprintf(path, sizeof path, "%s/no/such/dir/out", scr.dir);
    RUN(&r, "get", "-o", path, scr_url("/eof"));
    expect(&r, 1, "", "No such file or directory");
    run_free(&r);
    snprintf(path, sizeof path, "%s/out.txt", scr.dir);
    RUN(&r, "get", scr_url("/eof"), "-o", path);
    expect(&r, 0, "", NULL);
    run_free(&r);
    expect_same_file(path, "until eof", 9);
    unlink(path);
    RUN(&r, "get", "-o", "-", scr_url("/eof"));
    expect(&r, 0, "until eof", NULL);
    run_free(&r);
}

static void
test_scr_verbose(void **state)
{
    (void)state;
    run r;
    RUN(&r, "get", "-v", scr_url("/eof"));
    expect(&r, 0, "until eof", "> GET /eof HTTP/1.1\n");
    assert_non_null(strstr(r.err, "< HTTP/1.1 200 OK\n"));
    assert_non_null(strstr(r.err, "* connected to tcp://127.0.0.1:"));
    run_free(&r);
}

/* --- a python server that never stops sending -------------------------------
 *
 * What a deadline must hold against: a server that keeps the socket readable,
 * so no read ever has to wait. /continue answers with endless 100 Continue
 * heads; /chunked with an endless body of 1-byte chunks (the tool writes each
 * chunk out on its own, so it consumes slower than the server sends). The
 * server gives up on a connection after FLOOD_SAFETY_S, a far safety bound:
 * a tool that ignores its deadline then fails on the closed connection, not
 * with a timeout, and the test still ends. */

#define FLOOD_SAFETY_S 20

static const char flood_py[] =
    "import socket, sys, threading, time\n"
    "def serve(c):\n"
    "    try:\n"
    "        req = b''\n"
    "        while b'\\r\\n\\r\\n' not in req:\n"
    "            d = c.recv(4096)\n"
    "            if not d: return\n"
    "            req += d\n"
    "        if b' /continue ' in req:\n"
    "            first, block = b'', b'HTTP/1.1 100 Continue\\r\\n\\r\\n' * 512\n"
    "        else:\n"
    "            first = b'HTTP/1.1 200 OK\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n'\n"
    "            block = b'1\\r\\nx\\r\\n' * 4096\n"
    "        c.sendall(first)\n"
    "        end = time.monotonic() + float(sys.argv[1])\n"
    "        while time.monotonic() < end:\n"
    "            c.sendall(block)\n"
    "    except OSError:\n"
    "        pass\n"
    "    finally:\n"
    "        c.close()\n"
    "s = socket.socket()\n"
    "s.bind(('127.0.0.1', 0))\n"
    "s.listen(8)\n"
    "print(s.getsockname()[1], flush=True)\n"
    "while True:\n"
    "    c, _ = s.accept()\n"
    "    threading.Thread(target=serve, args=(c,), daemon=True).start()\n";

static struct {
    char dir[4096];
    pid_t pid;
    int out_fd;
    char url[64];
} fl;

static int
flood_setup(void **state)
{
    (void)state;
    sm_test_mkdtemp(fl.dir, sizeof fl.dir);
    snprintf(run_dir, sizeof run_dir, "%s", fl.dir);
    char safety[16];
    snprintf(safety, sizeof safety, "%d", FLOOD_SAFETY_S);
    char *argv[] = {(char *)SM_PYTHON3, "-c", (char *)flood_py, safety, NULL};
    fl.pid = sm_test_spawn(argv, &fl.out_fd, false);
    char line[32];
    if (sm_test_read_line(fl.out_fd, line, sizeof line, 20000) <= 0) {
        print_error("the python flood server (%s) did not start\n", SM_PYTHON3);
        return -1;
    }
    snprintf(fl.url, sizeof fl.url, "http://127.0.0.1:%d", atoi(line));
    return 0;
}

static int
flood_teardown(void **state)
{
    (void)state;
    stop_server(&fl.pid);
    close(fl.out_fd);
    rm_tree(fl.dir);
    return 0;
}

static void
test_flood_interim_heads(void **state)
{
    (void)state;
    char url[128];
    snprintf(url, sizeof url, "%s/continue", fl.url);
    run r;
    RUN(&r, "get", "--timeout", "1000", "-o", "/dev/null", url);
    expect(&r, 1, "", "more than 32 interim (1xx) responses"); /* the cap, not the timeout */
    run_free(&r);
    /* With -i the heads skipped are written out, up to the cap. */
    RUN(&r, "get", "--timeout", "1000", "-i", url);
    const char *head = "HTTP/1.1 100 Continue\r\n\r\n";
    expect(&r, 1, NULL, "more than 32 interim (1xx) responses");
    assert_int_equal(r.out_len, 32 * strlen(head));
    assert_memory_equal(r.out, head, strlen(head));
    run_free(&r);
}

static void
test_flood_endless_body(void **state)
{
    (void)state;
    char url[128];
    snprintf(url, sizeof url, "%s/chunked", fl.url);
    run r;
    RUN(&r, "get", "--timeout", "1000", "-o", "/dev/null", url);
    expect(&r, 1, "", "timed out after 1000 ms"); /* its own timeout ended it */
    run_free(&r);
}

/* --- usage errors, refused connections ----------------------------------- */

static struct {
    char dir[4096];
} use;

static int
use_setup(void **state)
{
    (void)state;
    sm_test_mkdtemp(use.dir, sizeof use.dir);
    snprintf(run_dir, sizeof run_dir, "%s", use.dir);
    return 0;
}

static int
use_teardown(void **state)
{
    (void)state;
    rm_tree(use.dir);
    return 0;
}

static void
expect_usage(const run *r, const char *msg, const char *hint)
{
    expect(r, 2, "", msg);
    /* Two lines: the problem, then the hint. */
    size_t n = strlen(r->err), h = strlen(hint);
    if (n < h + 1 || strcmp(r->err + n - h, hint) || r->err[n - h - 1] != '\n' ||
        memchr(r->err, '\n', n - h - 1)) {
        print_error("stderr does not end with the hint '%s':\n%s\n", hint, r->err);
        fail();
    }
}

static void
test_usage_errors(void **state)
{
    (void)state;
    run r;
    RUN(&r, "get");
    expect_usage(&r, "sockmsg get: missing URL\n", "try 'sockmsg get --help'\n");
    run_free(&r);
    RUN(&r, "get", "ftp://127.0.0.1/");
    expect_usage(&r, "sockmsg get: unsupported URL scheme 'ftp' (only http:// and https://)\n",
                 "try 'sockmsg get --help'\n");
    run_free(&r);
    RUN(&r, "get", "http://[::1/");
    expect_usage(&r, "unterminated '['", "try 'sockmsg get --help'\n");
    run_free(&r);
    RUN(&r, "get", "127.0.0.1:80/x");
    expect_usage(&r, "missing 'http://'", "try 'sockmsg get --help'\n");
    run_free(&r);
    RUN(&r, "get", "http://127.0.0.1:99999/");
    expect_usage(&r, "out of range", "try 'sockmsg get --help'\n");
    run_free(&r);
    RUN(&r, "get", "--bogus", "http://127.0.0.1/");
    expect_usage(&r, "unknown option '--bogus'", "try 'sockmsg get --help'\n");
    run_free(&r);
    RUN(&r, "get", "-x", "http://127.0.0.1/");
    expect_usage(&r, "unknown option '-x'", "try 'sockmsg get --help'\n");
    run_free(&r);
    RUN(&r, "get", "http://127.0.0.1/", "--timeout");
    expect_usage(&r, "option '--timeout' needs a value", "try 'sockmsg get --help'\n");
    run_free(&r);
    RUN(&r, "get", "--timeout", "soon", "http://127.0.0.1/");
    expect_usage(&r, "bad value 'soon' for --timeout", "try 'sockmsg get --help'\n");
    run_free(&r);
    RUN(&r, "get", "http://127.0.0.1/a", "http://127.0.0.1/b");
    expect_usage(&r, "one URL only", "try 'sockmsg get --help'\n");
    run_free(&r);
    RUN(&r, "frobnicate");
    expect_usage(&r, "sockmsg: unknown command 'frobnicate'\n", "try 'sockmsg --help'\n");
    run_free(&r);
    RUN(&r, "--frobnicate");
    expect_usage(&r, "sockmsg: unknown option '--frobnicate'\n", "try 'sockmsg --help'\n");
    run_free(&r);
    run_tool(&r, (const char *const[]){NULL});
    expect(&r, 2, "", "usage: sockmsg <command>");
    run_free(&r);
}

static void
test_help_version(void **state)
{
    (void)state;
    run r;
    RUN(&r, "--help");
    expect(&r, 0, NULL, "");
    assert_non_null(strstr(r.out, "usage: sockmsg <command>"));
    assert_non_null(strstr(r.out, "\n  get "));
    run_free(&r);
    RUN(&r, "--version");
    expect(&r, 0, "sockmsg " SM_VERSION_STRING " (library " SM_VERSION_STRING ")\n", "");
    run_free(&r);
    RUN(&r, "get", "--help");
    expect(&r, 0, NULL, "");
    assert_true(!strncmp(r.out, "usage: sockmsg get [options] URL\n", 33));
    run_free(&r);
    RUN(&r, "help", "get");
    expect(&r, 0, NULL, "");
    assert_true(!strncmp(r.out, "usage: sockmsg get [options] URL\n", 33));
    run_free(&r);
}

static void
test_connection_refused(void **state)
{
    (void)state;
    int port = SM_ASSERT_OK(free_port("127.0.0.1"));
    char url[64], want[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", port);
    snprintf(want, sizeof want, "sockmsg: tcp://127.0.0.1:%d: Connection refused\n", port);
    run r;
    RUN(&r, "get", url);
    expect(&r, 1, "", want);
    run_free(&r);
}

int
main(void)
{
    /* The tool's output pipes are files; a dead reader must not kill us. */
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest usage[] = {
        cmocka_unit_test(test_usage_errors),
        cmocka_unit_test(test_help_version),
        cmocka_unit_test(test_connection_refused),
    };
    const struct CMUnitTest scripted[] = {
        cmocka_unit_test(test_scr_chunk_extensions_trailers),
        cmocka_unit_test(test_scr_until_eof),
        cmocka_unit_test(test_scr_interim_response),
        cmocka_unit_test(test_scr_request_head),
        cmocka_unit_test(test_scr_relative_redirect),
        cmocka_unit_test(test_scr_redirect_limits),
        cmocka_unit_test(test_scr_errors),
        cmocka_unit_test(test_scr_timeout),
        cmocka_unit_test(test_scr_output),
        cmocka_unit_test(test_scr_verbose),
    };
    const struct CMUnitTest flood[] = {
        cmocka_unit_test(test_flood_interim_heads),
        cmocka_unit_test(test_flood_endless_body),
    };
    const struct CMUnitTest python[] = {
        cmocka_unit_test(test_py_small),        cmocka_unit_test(test_py_include),
        cmocka_unit_test(test_py_big),          cmocka_unit_test(test_py_404),
        cmocka_unit_test(test_py_dir_redirect), cmocka_unit_test(test_py_ipv6),
    };
    const struct CMUnitTest nginx[] = {
        cmocka_unit_test(test_ngx_static),    cmocka_unit_test(test_ngx_raw_chunked),
        cmocka_unit_test(test_ngx_chunked),   cmocka_unit_test(test_ngx_big_chunked),
        cmocka_unit_test(test_ngx_redirects), cmocka_unit_test(test_ngx_404),
#ifdef SM_TLS_CERTS
        cmocka_unit_test(test_ngx_https),
#endif
    };
    int failed = 0;
    failed += cmocka_run_group_tests_name("usage", usage, use_setup, use_teardown);
    failed += cmocka_run_group_tests_name("scripted", scripted, scr_setup, scr_teardown);
    failed += cmocka_run_group_tests_name("flood", flood, flood_setup, flood_teardown);
    failed += cmocka_run_group_tests_name("python", python, py_setup, py_teardown);
    failed += cmocka_run_group_tests_name("nginx", nginx, ngx_setup, ngx_teardown);
    return failed ? 1 : 0;
}
