/* sockmsg bench ENDPOINT: load an echo server and check every byte it sends
 * back. Options, framing and the report live here; the load generator is
 * bench_run.c, the payloads bench_payload.c, the histogram bench_hist.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sockmsg/endpoint.h>
#include <sockmsg/error.h>
#include <sockmsg/frame.h>

#include "bench.h"
#include "bench_tls.h"
#include "cli.h"

cli_command_fn cmd_bench;

#define DEFAULT_SIZE     64
#define DEFAULT_DURATION 5.0
#define DEFAULT_TIMEOUT  5000
#define MAX_CONNS        1000000
#define MAX_DEPTH        65536
#define MAX_THREADS      256
#define MAX_SIZE         (1u << 30)
#define MAX_SECONDS      1e6
#define MAX_RATE         1e9

enum {
    OPT_WARMUP = 256,
    OPT_THREADS,
    OPT_TIMEOUT,
    OPT_JSON,
    OPT_RATE,
    OPT_CA,
    OPT_INSECURE,
    OPT_CIPHERSUITES
};

static void
help(void)
{
    printf("usage: sockmsg bench [options] ENDPOINT\n"
           "\n"
           "Load the echo server at ENDPOINT: C connections each keep D messages of S\n"
           "bytes in flight for SEC seconds, and every byte that comes back is checked\n"
           "(a reply lost, duplicated, reordered or altered is an error). Reports\n"
           "messages per second, MB/s (payload bytes echoed per second, one way,\n"
           "10^6 bytes a MB), latency percentiles and a histogram, errors and the CPU\n"
           "time the client used. ^C ends the measurement early and reports it.\n"
           "\n"
           "options:\n"
           "  -c, --conns C        connections (default 1)\n"
           "  -d, --depth D        messages in flight per connection (default 1: ping-pong)\n"
           "  -s, --size S         payload bytes per message: 64, 4k, 1M (default %d; the\n"
           "                       length of fixed:N framing)\n"
           "  -r, --rate N         open loop: N messages per second in all, spread evenly\n"
           "                       over the connections and sent on schedule (1 ms slices),\n"
           "                       at most D in flight per connection; latency counts from\n"
           "                       each message's scheduled time. 300000, 300k, 1.5M.\n"
           "                       Reports the shortfall: messages due in the window but\n"
           "                       unsent at its end because D were in flight (default:\n"
           "                       closed loop, each reply makes room for the next)\n"
           "  -t, --duration SEC   measure for SEC seconds: 5, 0.5, 500ms, 1m (default 5)\n"
           "      --warmup SEC     load this long before measuring (default 0)\n"
           "  -f, --frame SPEC     framing of the messages (default len32be; not eof)\n"
           "      --threads N      event loop threads, connections spread over them\n"
           "                       (default 1)\n"
           "      --timeout MS     bound connecting, and the wait for any reply (default\n"
           "                       %d ms)\n"
           "      --ca FILE        tls://: trust the CAs in FILE instead of the system's\n"
           "      --insecure       tls://: accept any certificate (no verification)\n"
           "      --tls-ciphersuites LIST\n"
           "                       tls://: the TLS 1.3 suites to offer, e.g.\n"
           "                       TLS_AES_128_GCM_SHA256 (default: OpenSSL's)\n"
           "      --json           print one JSON object instead of the report\n"
           "  -v, --verbose        show the connections, the phases and each error\n"
           "  -h, --help           show this help\n"
           "\n"
           "exit status: 0 if every reply was right, 1 for errors or failures, 2 for\n"
           "usage errors.\n",
           DEFAULT_SIZE, DEFAULT_TIMEOUT);
}

/* Seconds, fractional: "5", "0.5", "2s", "500ms", "1m". */
static int
parse_seconds(const cli *c, const char *opt, const char *arg, bool zero_ok, int64_t *ns)
{
    double v = -1;
    errno = 0;
    if ((arg[0] >= '0' && arg[0] <= '9') || arg[0] == '.') { /* no sign, no "inf" */
        char *end;
        v = strtod(arg, &end);
        if (errno == 0) {
            if (strcmp(end, "ms") == 0)
                v /= 1000;
            else if (strcmp(end, "m") == 0)
                v *= 60;
            else if (*end && strcmp(end, "s") != 0)
                v = -1;
        }
    }
    if (v < 0 || errno != 0 || !(v <= MAX_SECONDS))
        return cli_usage_error(c, "bad value '%s' for %s: expected seconds (e.g. 5, 0.5, 500ms)",
                               arg, opt);
    if (v * 1e9 < 1 && !zero_ok)
        return cli_usage_error(c, "bad value '%s' for %s: must be more than 0", arg, opt);
    *ns = (int64_t)(v * 1e9 + 0.5);
    return 0;
}

/* Messages per second: "300000", "300k", "1.5M" (10^3, 10^6). */
static int
parse_rate(const cli *c, const char *arg, double *out)
{
    double v = -1;
    errno = 0;
    if ((arg[0] >= '0' && arg[0] <= '9') || arg[0] == '.') { /* no sign, no "inf" */
        char *end;
        v = strtod(arg, &end);
        if (errno == 0) {
            if (strcmp(end, "k") == 0 || strcmp(end, "K") == 0)
                v *= 1e3;
            else if (strcmp(end, "M") == 0)
                v *= 1e6;
            else if (*end)
                v = -1;
        }
    }
    if (v < 0 || errno != 0 || !(v <= MAX_RATE))
        return cli_usage_error(
            c, "bad value '%s' for --rate: expected messages per second (e.g. 300000, 300k, 1.5M)",
            arg);
    if (v < 0.001) return cli_usage_error(c, "bad value '%s' for --rate: must be more than 0", arg);
    *out = v;
    return 0;
}

/* Parse and check the framing; find the header for `size` (and, for type:
 * specs, a type byte whose framing carries it). */
static int
setup_frame(bench_cfg *cfg, sm_frame_spec *spec, const char *text, bool size_given)
{
    int code = cli_parse_frame(cfg->cli, "--frame", text, spec);
    if (code != 0) return code;
    if (spec->kind == SM_FRAME_EOF)
        return cli_usage_error(cfg->cli,
                               "frame spec '%s': eof framing carries one message per "
                               "connection; bench needs one that carries many",
                               text);
    if (spec->kind == SM_FRAME_FIXED && !size_given) cfg->size = spec->fixed_len;
    cfg->spec = spec;
    cfg->type = -1;
    int rc = -EMSGSIZE;
    if (spec->kind == SM_FRAME_TYPE) {
        for (int t = 0; t < 256 && rc < 0; t++) {
            if (!spec->type_map[t]) continue;
            rc = sm_frame_encode(spec, NULL, cfg->size, t, &cfg->hdr);
            if (rc == 0) cfg->type = t;
        }
    } else {
        rc = sm_frame_encode(spec, NULL, cfg->size, -1, &cfg->hdr);
    }
    if (rc < 0)
        return cli_usage_error(cfg->cli, "frame spec '%s' cannot carry %zu-byte payloads%s", text,
                               cfg->size,
                               spec->kind == SM_FRAME_FIXED ? " (it says how long they are)" : "");
    int flen = sm_frame_spec_format(spec, cfg->frame, sizeof cfg->frame);
    if (flen < 0 || (size_t)flen >= sizeof cfg->frame)
        snprintf(cfg->frame, sizeof cfg->frame, "%s", text);
    cfg->frame_len = cfg->hdr.head_len + cfg->size + cfg->hdr.tail_len;
    return 0;
}

/* A JSON string: quotes, backslashes and control bytes escaped. */
static void
json_string(FILE *out, const char *s)
{
    fputc('"', out);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(out, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(out, "\\u%04x", ch);
        else
            fputc(ch, out);
    }
    fputc('"', out);
}

static double
us(uint64_t ns)
{
    return (double)ns / 1e3;
}

static void
print_json(const bench_cfg *cfg, const bench_result *r)
{
    double rate = r->window_s > 0 ? (double)r->messages / r->window_s : 0;
    const bench_hist *h = &r->hist;
    printf("{\"endpoint\":");
    json_string(stdout, cfg->endpoint);
    printf(",\"frame\":");
    json_string(stdout, cfg->frame);
    printf(
        ",\"conns\":%d,\"depth\":%d,\"size\":%zu,\"threads\":%d,\"duration_s\":%.6f,"
        "\"warmup_s\":%.6f,\"messages\":%llu,\"msgs_per_s\":%.1f,\"mb_per_s\":%.3f,"
        "\"latency_us\":{\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,\"p999\":%.3f,\"max\":%.3f},"
        "\"errors\":%llu,\"error_kinds\":{\"mismatch\":%llu,\"closed\":%llu,\"timeout\":%llu,"
        "\"framing\":%llu},\"client_cpu_s\":%.6f,\"target_rate\":%.1f,\"achieved_rate\":%.1f,"
        "\"scheduled\":%llu,\"sent\":%llu,\"shortfall\":%llu}\n",
        cfg->conns, cfg->depth, cfg->size, cfg->threads, r->window_s, (double)cfg->warmup_ns / 1e9,
        (unsigned long long)r->messages, rate, rate * (double)cfg->size / 1e6,
        us(hist_percentile(h, 0.50)), us(hist_percentile(h, 0.90)), us(hist_percentile(h, 0.99)),
        us(hist_percentile(h, 0.999)), us(h->max), (unsigned long long)r->errors,
        (unsigned long long)r->err[BENCH_ERR_MISMATCH],
        (unsigned long long)r->err[BENCH_ERR_CLOSED], (unsigned long long)r->err[BENCH_ERR_TIMEOUT],
        (unsigned long long)r->err[BENCH_ERR_FRAMING], r->cpu_s, cfg->rate, rate,
        (unsigned long long)r->scheduled, (unsigned long long)r->sent,
        (unsigned long long)r->shortfall);
}

static void
print_report(const bench_cfg *cfg, const bench_result *r)
{
    double rate = r->window_s > 0 ? (double)r->messages / r->window_s : 0;
    double mbps = rate * (double)cfg->size / 1e6;
    const bench_hist *h = &r->hist;
    char p[5][32];
    printf("bench %s, %s: %d connection%s x %s%d in flight, %zu-byte payloads, %d thread%s",
           cfg->endpoint, cfg->frame, cfg->conns, cfg->conns == 1 ? "" : "s",
           cfg->rate > 0 ? "up to " : "", cfg->depth, cfg->size, cfg->threads,
           cfg->threads == 1 ? "" : "s");
    if (cfg->rate > 0) printf(", %.0f msgs/s offered", cfg->rate);
    printf("\n");
    printf("  messages    %llu in %.3f s", (unsigned long long)r->messages, r->window_s);
    if (cfg->warmup_ns) printf(" (after %.3f s of warmup)", (double)cfg->warmup_ns / 1e9);
    if (r->interrupted) printf(" (interrupted)");
    printf("\n  rate        %.0f msgs/s, %.2f MB/s of payload echoed (one way)\n", rate, mbps);
    if (cfg->rate > 0)
        printf("  schedule    %.0f msgs/s asked: %llu messages due in the window, %llu sent, "
               "shortfall %llu\n",
               cfg->rate, (unsigned long long)r->scheduled, (unsigned long long)r->sent,
               (unsigned long long)r->shortfall);
    printf("  latency     p50 %s, p90 %s, p99 %s, p99.9 %s, max %s\n",
           hist_format_ns(hist_percentile(h, 0.50), p[0], sizeof p[0]),
           hist_format_ns(hist_percentile(h, 0.90), p[1], sizeof p[1]),
           hist_format_ns(hist_percentile(h, 0.99), p[2], sizeof p[2]),
           hist_format_ns(hist_percentile(h, 0.999), p[3], sizeof p[3]),
           hist_format_ns(h->max, p[4], sizeof p[4]));
    printf("  errors      %llu", (unsigned long long)r->errors);
    if (r->errors)
        printf(" (%llu wrong replies, %llu closed, %llu timed out, %llu bad framing)",
               (unsigned long long)r->err[BENCH_ERR_MISMATCH],
               (unsigned long long)r->err[BENCH_ERR_CLOSED],
               (unsigned long long)r->err[BENCH_ERR_TIMEOUT],
               (unsigned long long)r->err[BENCH_ERR_FRAMING]);
    printf("\n  client cpu  %.3f s (%.1f%% of one core)\n", r->cpu_s,
           r->window_s > 0 ? 100.0 * r->cpu_s / r->window_s : 0.0);
    if (h->count) {
        printf("\n");
        hist_print(h, stdout);
    }
    printf("\nresult conns=%d depth=%d size=%zu msgs/s=%.0f MB/s=%.2f p50_us=%.1f p99_us=%.1f "
           "errors=%llu cpu_s=%.3f",
           cfg->conns, cfg->depth, cfg->size, rate, mbps, us(hist_percentile(h, 0.50)),
           us(hist_percentile(h, 0.99)), (unsigned long long)r->errors, r->cpu_s);
    if (cfg->rate > 0)
        printf(" target=%.0f shortfall=%llu", cfg->rate, (unsigned long long)r->shortfall);
    printf("\n");
}

static void
print_errors(const bench_cfg *cfg, const bench_result *r)
{
    if (!r->errors) return;
    cli_fail(cfg->cli, "%llu error%s", (unsigned long long)r->errors, r->errors == 1 ? "" : "s");
    for (int i = 0; i < r->ndetails; i++)
        fprintf(stderr, "  %s\n", r->details[i]);
    /* Each error has one explanation at most; the first few are kept. */
    if (r->errors > (uint64_t)r->ndetails)
        fprintf(stderr, "  ... and %llu more\n",
                (unsigned long long)(r->errors - (uint64_t)r->ndetails));
}

int
cmd_bench(int argc, char **argv)
{
    static const struct option longopts[] = {
        CLI_COMMON_LONGOPTS,
        {"conns", required_argument, NULL, 'c'},
        {"depth", required_argument, NULL, 'd'},
        {"size", required_argument, NULL, 's'},
        {"duration", required_argument, NULL, 't'},
        {"frame", required_argument, NULL, 'f'},
        {"warmup", required_argument, NULL, OPT_WARMUP},
        {"threads", required_argument, NULL, OPT_THREADS},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"json", no_argument, NULL, OPT_JSON},
        {"rate", required_argument, NULL, 'r'},
        {"ca", required_argument, NULL, OPT_CA},
        {"insecure", no_argument, NULL, OPT_INSECURE},
        {"tls-ciphersuites", required_argument, NULL, OPT_CIPHERSUITES},
        {NULL, 0, NULL, 0},
    };
    cli c;
    cli_init(&c, "bench");
    bench_cfg cfg = {.cli = &c,
                     .size = DEFAULT_SIZE,
                     .conns = 1,
                     .depth = 1,
                     .threads = 1,
                     .duration_ns = (int64_t)(DEFAULT_DURATION * 1e9),
                     .timeout_ms = DEFAULT_TIMEOUT};
    const char *frame = "len32be";
    bool json = false, size_given = false;
    long long v;
    uint64_t size;
    int ch;
    while ((ch = cli_getopt(&c, argc, argv, CLI_COMMON_SHORTOPTS "c:d:s:t:f:r:", longopts)) != -1) {
        switch (ch) {
        case 'h':
            help();
            return CLI_EXIT_OK;
        case 'c':
            if (cli_parse_int(&c, "--conns", optarg, 1, MAX_CONNS, &v)) return CLI_EXIT_USAGE;
            cfg.conns = (int)v;
            break;
        case 'd':
            if (cli_parse_int(&c, "--depth", optarg, 1, MAX_DEPTH, &v)) return CLI_EXIT_USAGE;
            cfg.depth = (int)v;
            break;
        case 's':
            if (cli_parse_size(&c, "--size", optarg, &size)) return CLI_EXIT_USAGE;
            if (size > MAX_SIZE)
                return cli_usage_error(&c, "bad value '%s' for --size: at most 1G", optarg);
            cfg.size = (size_t)size;
            size_given = true;
            break;
        case 't':
            if (parse_seconds(&c, "--duration", optarg, false, &cfg.duration_ns))
                return CLI_EXIT_USAGE;
            break;
        case 'f':
            frame = optarg;
            break;
        case 'r':
            if (parse_rate(&c, optarg, &cfg.rate)) return CLI_EXIT_USAGE;
            break;
        case OPT_WARMUP:
            if (parse_seconds(&c, "--warmup", optarg, true, &cfg.warmup_ns)) return CLI_EXIT_USAGE;
            break;
        case OPT_THREADS:
            if (cli_parse_int(&c, "--threads", optarg, 1, MAX_THREADS, &v)) return CLI_EXIT_USAGE;
            cfg.threads = (int)v;
            break;
        case OPT_TIMEOUT:
            if (cli_parse_ms(&c, "--timeout", optarg, &cfg.timeout_ms)) return CLI_EXIT_USAGE;
            if (cfg.timeout_ms == 0)
                return cli_usage_error(&c, "bad value '%s' for --timeout: must be more than 0",
                                       optarg);
            break;
        case OPT_JSON:
            json = true;
            break;
        case OPT_CA:
            cfg.tls_ca = optarg;
            break;
        case OPT_INSECURE:
            cfg.tls_insecure = true;
            break;
        case OPT_CIPHERSUITES:
            cfg.tls_ciphersuites = optarg;
            break;
        default:
            return CLI_EXIT_USAGE;
        }
    }
    if (optind >= argc) return cli_usage_error(&c, "missing ENDPOINT (e.g. tcp://127.0.0.1:7000)");
    if (optind + 1 < argc) return cli_usage_error(&c, "unexpected argument '%s'", argv[optind + 1]);
    cfg.endpoint = argv[optind];
    char why[512];
    if (sm_endpoint_parse(&cfg.ep, cfg.endpoint, why, sizeof why) < 0)
        return cli_usage_error(&c, "bad endpoint '%s': %s", cfg.endpoint, why);
    if (!cfg.ep.tls && (cfg.tls_ca || cfg.tls_insecure || cfg.tls_ciphersuites))
        return cli_usage_error(&c,
                               "--ca, --insecure and --tls-ciphersuites need a tls:// endpoint");
    sm_frame_spec spec;
    int rc = setup_frame(&cfg, &spec, frame, size_given);
    if (rc) return rc;
    if (cfg.ep.tls && bench_tls_init(&cfg, why, sizeof why) < 0)
        return cli_fail(&c, "%s: %s", cfg.endpoint, why);
    if (cfg.threads > cfg.conns) cfg.threads = cfg.conns;
    cfg.progress = !json && isatty(STDOUT_FILENO);
    if (bench_payload_init(&cfg) < 0) {
        bench_tls_free(&cfg);
        return cli_fail(&c, "%s", sm_strerror(-ENOMEM));
    }

    bench_result *res = calloc(1, sizeof *res);
    if (!res) {
        bench_payload_free(&cfg);
        bench_tls_free(&cfg);
        return cli_fail(&c, "%s", sm_strerror(-ENOMEM));
    }
    int code = bench_run(&cfg, res);
    if (code == 0) {
        if (json)
            print_json(&cfg, res);
        else
            print_report(&cfg, res);
        fflush(stdout);
        print_errors(&cfg, res);
        code = res->errors ? CLI_EXIT_FAIL : CLI_EXIT_OK;
    }
    free(res);
    bench_payload_free(&cfg);
    bench_tls_free(&cfg);
    return code;
}
