/* Cross-check pack against CPython's struct module, both ways.
 *
 * 1. C generates random (format, values) cases from a fixed seed, packs and
 *    unpacks them with sm_pack_values / sm_unpack_values, and writes one line
 *    per case: format, input values, the packed bytes in hex (or ERR:kind when
 *    C refused the case on purpose: a value out of range, a bad format), and
 *    the values C unpacked from those bytes. Then unpack-only cases: random
 *    bytes (input values "-") and what C unpacked from them.
 * 2. tests/unit/pack_crosscheck.py packs the same values with struct.pack and
 *    compares the bytes, unpacks C's bytes with struct.unpack and compares the
 *    values, checks that Python refuses what C refused, and then writes cases
 *    of its own (its own generator, seeded from ours) in the same format.
 * 3. C packs Python's values and unpacks Python's bytes and compares.
 *
 * Float values include ones that e and f must round (exact ties among them),
 * so rounding is checked too: both sides pack the same double.
 *
 * Value tokens (space-separated): i:<decimal> for integer codes, c:<2 hex> for
 * c, ?:<int> for ? (unpacked: 0 or 1), d:<16 hex> for e f d (the binary64 bits,
 * so floats compare exactly; d:nan / d:-nan for NaNs, whose payloads are not
 * compared), b:<hex> for s and p. Set SM_PACK_SEED to replay a run.
 */
#include "smtest.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sockmsg/pack.h>

#ifndef SM_PYTHON3
#define SM_PYTHON3 "/usr/bin/python3"
#endif
#ifndef SM_PACK_CROSSCHECK
#error "SM_PACK_CROSSCHECK must name tests/unit/pack_crosscheck.py"
#endif

#define NCASES   300 /* pack cases, each way */
#define NUNPACK  100 /* unpack-only cases (random bytes), each way */
#define MAXVALS  64
#define MAXBYTES 4096

typedef struct pcase {
    char fmt[128];
    sm_pack_value vals[MAXVALS];
    size_t nvals;
    uint8_t arena[MAXBYTES]; /* s and p input data */
    size_t arena_used;
    const char *want_err; /* NULL, "range" or "format" */
} pcase;

static uint64_t
rnd(uint64_t *rng, uint64_t n)
{
    return sm_test_rand(rng) % n;
}

/* The value codes a format takes, one per value, in order. Written apart from
 * the library on purpose: it only has to read well-formed formats. */
static size_t
value_codes(const char *fmt, char *codes, size_t cap)
{
    size_t n = 0;
    if (*fmt && strchr("@=<>!", *fmt)) fmt++;
    while (*fmt) {
        if (*fmt == ' ') {
            fmt++;
            continue;
        }
        size_t count = 1;
        if (*fmt >= '0' && *fmt <= '9') {
            char *end;
            count = strtoul(fmt, &end, 10);
            fmt = end;
        }
        char c = *fmt++;
        if (c == 's' || c == 'p')
            count = 1;
        else if (c == 'x')
            count = 0;
        for (size_t k = 0; k < count && n < cap; k++)
            codes[n++] = c;
    }
    return n;
}

static bool
is_native(const char *fmt)
{
    return !(*fmt && strchr("=<>!", *fmt)); /* strchr finds the '\0' too */
}

static unsigned
int_bytes(char code, bool native)
{
    switch (code) {
    case 'b':
    case 'B':
        return 1;
    case 'h':
    case 'H':
        return 2;
    case 'i':
    case 'I':
        return 4;
    case 'l':
    case 'L':
        return native ? 8 : 4;
    default:
        return 8;
    }
}

static int64_t
u2i(uint64_t u)
{
    int64_t i;
    memcpy(&i, &u, sizeof i);
    return i;
}

static double
bits2d(uint64_t u)
{
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

static uint64_t
d2bits(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

/* A double that a binary16 (prec 10, emin -14) or binary32 (23, -126) field
 * must round: exponent from below the subnormals up to emax, and half the
 * time exactly halfway between two neighbours, to exercise ties-to-even. */
static double
round_value(uint64_t *rng, int prec, int emin, int emax)
{
    int elo = emin - prec - 1;
    int e = elo + (int)rnd(rng, (uint64_t)(emax - elo + 1));
    int tie = 52 - prec + (emin > e ? emin - e : 0) - 1; /* the half-ulp bit */
    uint64_t frac = sm_test_rand(rng) & (((uint64_t)1 << 52) - 1);
    if (rnd(rng, 2)) {
        frac &= ~(((uint64_t)1 << (tie + 1)) - 1);
        if (tie < 52) frac |= (uint64_t)1 << tie;
    }
    uint64_t sign = sm_test_rand(rng) & ((uint64_t)1 << 63);
    return bits2d(sign | ((uint64_t)(e + 1023) << 52) | frac);
}

static void
gen_value(uint64_t *rng, char code, bool native, sm_pack_value *v)
{
    uint64_t r = sm_test_rand(rng);
    unsigned bits = 8 * int_bytes(code, native);
    switch (code) {
    case 'b':
    case 'h':
    case 'i':
    case 'l':
    case 'q': {
        int64_t max = bits == 64 ? INT64_MAX : (int64_t)(((uint64_t)1 << (bits - 1)) - 1);
        int64_t min = -max - 1;
        switch (rnd(rng, 8)) {
        case 0:
            v->i = min;
            break;
        case 1:
            v->i = max;
            break;
        case 2:
            v->i = 0;
            break;
        case 3:
            v->i = -1;
            break;
        default:
            v->i = bits == 64 ? u2i(r) : (int64_t)(r % ((uint64_t)1 << bits)) + min;
        }
        break;
    }
    case 'B':
    case 'H':
    case 'I':
    case 'L':
    case 'Q': {
        uint64_t max = bits == 64 ? UINT64_MAX : ((uint64_t)1 << bits) - 1;
        uint64_t pick = rnd(rng, 6);
        v->u = pick == 0 ? max : pick == 1 ? 0 : r & max;
        break;
    }
    case 'c':
        v->i = (int64_t)(r & 0xff);
        break;
    case '?':
        v->i = (int64_t)(r % 7) - 3;
        break;
    case 'e': {
        if (rnd(rng, 3) == 0) { /* needs rounding, often an exact tie */
            v->d = round_value(rng, 10, -14, 14);
            break;
        }
        uint8_t h[2] = {(uint8_t)r, (uint8_t)(r >> 8)};
        if ((h[1] & 0x7c) == 0x7c && ((h[1] & 3) || h[0])) /* NaN: make it infinite */
            h[1] &= 0xfc, h[0] = 0;
        sm_unpack_values(h, 2, "<e", v, 1);
        break;
    }
    case 'f': {
        if (rnd(rng, 3) == 0) {
            v->d = round_value(rng, 23, -126, 126);
            break;
        }
        uint8_t f[4] = {(uint8_t)r, (uint8_t)(r >> 8), (uint8_t)(r >> 16), (uint8_t)(r >> 24)};
        if ((f[3] & 0x7f) == 0x7f && (f[2] & 0x80)) /* infinite or NaN: clear the exponent */
            f[3] &= 0x80;
        sm_unpack_values(f, 4, "<f", v, 1);
        break;
    }
    default: /* d */
        if (((r >> 52) & 0x7ff) == 0x7ff) r &= ~((uint64_t)0x7ff << 52);
        v->d = bits2d(r);
        break;
    }
}

static void
gen_case(uint64_t *rng, pcase *pc)
{
    static const char *orders[] = {"", "@", "=", "<", ">", "!"};
    static const char codes[] = "xcbB?hHiIlLqQefdsp";
    memset(pc, 0, sizeof *pc);
    size_t len = (size_t)snprintf(pc->fmt, sizeof pc->fmt, "%s", orders[rnd(rng, 6)]);
    bool native = is_native(pc->fmt);
    bool spaces = rnd(rng, 4) == 0;
    unsigned items = 1 + (unsigned)rnd(rng, 6);
    for (unsigned it = 0; it < items; it++) {
        char code = codes[rnd(rng, sizeof codes - 1)];
        char countbuf[24] = "";
        if (code == 's' || code == 'p') {
            /* Mostly short fields; sometimes past 255 for p's saturating
             * length byte. No "0p": CPython 3.11 cannot unpack it. */
            size_t count = rnd(rng, 10) == 0 ? 250 + rnd(rng, 51) : rnd(rng, 13);
            if (code == 'p' && count == 0) count = 1;
            snprintf(countbuf, sizeof countbuf, "%zu", count);
            /* Half the time near the field size, where truncation and
             * padding meet. */
            size_t dlen =
                rnd(rng, 2) ? rnd(rng, count + 4) : count + 3 - rnd(rng, count < 8 ? count + 4 : 8);
            sm_pack_value *v = &pc->vals[pc->nvals++];
            v->ptr = pc->arena + pc->arena_used;
            v->len = dlen;
            for (size_t k = 0; k < dlen; k++)
                pc->arena[pc->arena_used++] = (uint8_t)sm_test_rand(rng);
        } else {
            uint64_t pick = rnd(rng, 6);
            size_t count = pick < 2 ? 1 : pick - 2; /* none (1), 0, 1, 2, 3 */
            if (pick >= 2) snprintf(countbuf, sizeof countbuf, "%zu", count);
            for (size_t k = 0; code != 'x' && k < count; k++)
                gen_value(rng, code, native, &pc->vals[pc->nvals++]);
        }
        len += (size_t)snprintf(pc->fmt + len, sizeof pc->fmt - len, "%s%s%c",
                                spaces && it ? " " : "", countbuf, code);
    }

    /* Some cases are wrong on purpose; both sides must refuse them. */
    uint64_t bad = rnd(rng, 100);
    if (bad < 3) {
        snprintf(pc->fmt + len, sizeof pc->fmt - len, "%s", bad == 0 ? "z" : bad == 1 ? "7" : "<");
        pc->want_err = "format";
    } else if (bad < 9 && pc->nvals) {
        char vc[MAXVALS];
        value_codes(pc->fmt, vc, MAXVALS);
        size_t k = (size_t)rnd(rng, pc->nvals);
        sm_pack_value *v = &pc->vals[k];
        unsigned bits = 8 * int_bytes(vc[k], native);
        if (strchr("bhil", vc[k]) && bits < 64) {
            v->i = (bad & 1) ? ((int64_t)1 << (bits - 1)) : -((int64_t)1 << (bits - 1)) - 1;
            pc->want_err = "range";
        } else if (strchr("BHIL", vc[k]) && bits < 64) {
            v->u = (uint64_t)1 << bits;
            pc->want_err = "range";
        } else if (vc[k] == 'e') {
            v->d = (bad & 1) ? 65520.0 : -1e9;
            pc->want_err = "range";
        } else if (vc[k] == 'f' && !native) { /* CPython's native f gives inf */
            v->d = 0x1.ffffffp127;
            pc->want_err = "range";
        }
    }
}

static void
put_hex(FILE *f, const uint8_t *p, size_t n)
{
    for (size_t k = 0; k < n; k++)
        fprintf(f, "%02x", p[k]);
}

/* One value as a token (see the top of the file). */
static void
put_token(FILE *f, char code, const sm_pack_value *v)
{
    if (strchr("bhilq", code))
        fprintf(f, "i:%" PRId64, v->i);
    else if (strchr("BHILQ", code))
        fprintf(f, "i:%" PRIu64, v->u);
    else if (code == 'c')
        fprintf(f, "c:%02x", (unsigned)v->i);
    else if (code == '?')
        fprintf(f, "?:%" PRId64, v->i);
    else if (strchr("efd", code) && isnan(v->d)) /* payloads are not part of the contract */
        fputs(signbit(v->d) ? "d:-nan" : "d:nan", f);
    else if (strchr("efd", code))
        fprintf(f, "d:%016" PRIx64, d2bits(v->d));
    else {
        fputs("b:", f);
        put_hex(f, v->ptr, v->len);
    }
}

static void
put_tokens(FILE *f, const char *fmt, const sm_pack_value *vals, size_t n)
{
    char codes[MAXVALS];
    size_t nc = value_codes(fmt, codes, MAXVALS);
    assert_int_equal(nc, n);
    for (size_t k = 0; k < n; k++) {
        if (k) fputc(' ', f);
        put_token(f, codes[k], &vals[k]);
    }
}

static char *
tokens_string(const char *fmt, const sm_pack_value *vals, size_t n)
{
    char *s = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&s, &len);
    assert_non_null(f);
    put_tokens(f, fmt, vals, n);
    fclose(f);
    return s;
}

static uint8_t
hexval(char c)
{
    return (uint8_t)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
}

static size_t
unhex(const char *s, size_t slen, uint8_t *out, size_t cap)
{
    assert_true(slen % 2 == 0 && slen / 2 <= cap);
    for (size_t k = 0; k < slen / 2; k++)
        out[k] = (uint8_t)(hexval(s[2 * k]) << 4 | hexval(s[2 * k + 1]));
    return slen / 2;
}

/* Parse Python's input tokens into pc->vals (s/p data in pc->arena). */
static void
parse_tokens(char *s, pcase *pc)
{
    pc->nvals = 0;
    pc->arena_used = 0;
    for (char *save = NULL, *tok = strtok_r(s, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
        assert_true(pc->nvals < MAXVALS && strlen(tok) >= 2 && tok[1] == ':');
        sm_pack_value *v = &pc->vals[pc->nvals++];
        memset(v, 0, sizeof *v);
        const char *val = tok + 2;
        switch (tok[0]) {
        case 'i':
        case '?':
            if (val[0] == '-')
                v->i = strtoll(val, NULL, 10);
            else
                v->u = strtoull(val, NULL, 10);
            break;
        case 'c':
            v->i = strtol(val, NULL, 16);
            break;
        case 'd':
            v->d = bits2d(strtoull(val, NULL, 16));
            break;
        case 'b': {
            size_t n =
                unhex(val, strlen(val), pc->arena + pc->arena_used, MAXBYTES - pc->arena_used);
            v->ptr = pc->arena + pc->arena_used;
            v->len = n;
            pc->arena_used += n;
            break;
        }
        default:
            fail_msg("bad token %s", tok);
        }
    }
}

static int
write_c_cases(const char *path, uint64_t seed, int *nerr)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    uint64_t rng = seed;
    static pcase pc;
    static uint8_t buf[MAXBYTES];
    static sm_pack_value back[MAXVALS];
    int failures = 0;
    *nerr = 0;
    for (int n = 0; n < NCASES; n++) {
        gen_case(&rng, &pc);
        ssize_t rc = sm_pack_values(buf, sizeof buf, pc.fmt, pc.vals, pc.nvals);
        int want = !pc.want_err ? 0 : !strcmp(pc.want_err, "format") ? SM_ERR_FORMAT : -ERANGE;
        if ((want == 0 && rc < 0) || (want < 0 && rc != want)) {
            print_error("seed %#" PRIx64
                        " case %d fmt \"%s\": sm_pack_values = %zd (%s), want %s\n",
                        seed, n, pc.fmt, rc, sm_err_name((int)rc), sm_err_name(want));
            failures++;
            continue;
        }
        if (want < 0) {
            /* The input tokens of a bad format cannot be typed by it: write
             * them by the good part (everything before the junk character). */
            char good[sizeof pc.fmt];
            snprintf(good, sizeof good, "%s", pc.fmt);
            if (!strcmp(pc.want_err, "format")) good[strlen(good) - 1] = '\0';
            fprintf(f, "%s\t", pc.fmt);
            put_tokens(f, good, pc.vals, pc.nvals);
            fprintf(f, "\tERR:%s\t\n", pc.want_err);
            (*nerr)++;
            continue;
        }
        ssize_t un = sm_unpack_values(buf, (size_t)rc, pc.fmt, back, MAXVALS);
        if (un != rc || sm_pack_calcsize(pc.fmt) != rc) {
            print_error("seed %#" PRIx64 " case %d fmt \"%s\": unpack %zd, size %zd\n", seed, n,
                        pc.fmt, un, rc);
            failures++;
            continue;
        }
        fprintf(f, "%s\t", pc.fmt);
        put_tokens(f, pc.fmt, pc.vals, pc.nvals);
        fputc('\t', f);
        put_hex(f, buf, (size_t)rc);
        fputc('\t', f);
        put_tokens(f, pc.fmt, back, pc.nvals);
        fputc('\n', f);
    }
    /* Unpack-only cases: random bytes, so ? sees bytes other than 0 and 1, p
     * sees length bytes over its field, e f d see NaNs and subnormals. */
    for (int n = 0; n < NUNPACK; n++) {
        do
            gen_case(&rng, &pc);
        while (pc.want_err);
        ssize_t size = sm_pack_calcsize(pc.fmt);
        assert_true(size >= 0 && size <= MAXBYTES);
        for (ssize_t k = 0; k < size; k++)
            buf[k] = (uint8_t)sm_test_rand(&rng);
        ssize_t un = sm_unpack_values(buf, (size_t)size, pc.fmt, back, MAXVALS);
        assert_int_equal(un, size);
        fprintf(f, "%s\t-\t", pc.fmt);
        put_hex(f, buf, (size_t)size);
        fputc('\t', f);
        put_tokens(f, pc.fmt, back, pc.nvals);
        fputc('\n', f);
    }
    assert_int_equal(fclose(f), 0);
    return failures;
}

/* Check Python's cases; returns the number of mismatches (each printed). */
static int
check_python_cases(const char *path, uint64_t seed, int *ncases)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    static pcase pc;
    static uint8_t want[MAXBYTES], buf[MAXBYTES];
    static sm_pack_value back[MAXVALS];
    int failures = 0, n = 0;
    while ((len = getline(&line, &cap, f)) > 0 && n < 10 * (NCASES + NUNPACK)) {
        n++;
        if (line[len - 1] == '\n') line[--len] = '\0';
        char *fields[4] = {NULL, NULL, NULL, NULL};
        /* strtok_r would merge empty fields; split by hand. */
        char *p = line;
        for (int k = 0; k < 4; k++) {
            fields[k] = p;
            char *tab = p ? strchr(p, '\t') : NULL;
            if (tab) *tab = '\0';
            p = tab ? tab + 1 : NULL;
        }
        assert_non_null(fields[3]);
        const char *fmt = fields[0], *hex = fields[2], *pyout = fields[3];
        char what[256];
        snprintf(what, sizeof what, "seed %#" PRIx64 " python case %d fmt \"%s\"", seed, n, fmt);
        if (!strcmp(fields[1], "-")) { /* unpack only */
            size_t wlen = unhex(hex, strlen(hex), want, sizeof want);
            char codes[MAXVALS];
            size_t nv = value_codes(fmt, codes, MAXVALS);
            ssize_t un = sm_unpack_values(want, wlen, fmt, back, MAXVALS);
            char *got = un == (ssize_t)wlen ? tokens_string(fmt, back, nv) : NULL;
            if (!got || strcmp(got, pyout) != 0) {
                print_error("%s: sm_unpack_values = %zd\n  bytes  %s\n  c      %s\n  python %s\n",
                            what, un, hex, got ? got : "-", pyout);
                failures++;
            }
            free(got);
            continue;
        }
        parse_tokens(fields[1], &pc);
        ssize_t rc = sm_pack_values(buf, sizeof buf, fmt, pc.vals, pc.nvals);
        if (!strncmp(hex, "ERR:", 4)) {
            int expect = !strcmp(hex + 4, "format") ? SM_ERR_FORMAT : -ERANGE;
            if (rc != expect) {
                print_error("%s: Python refused it (%s), sm_pack_values = %zd (%s)\n", what, hex,
                            rc, sm_err_name((int)rc));
                failures++;
            }
            continue;
        }
        size_t wlen = unhex(hex, strlen(hex), want, sizeof want);
        if (rc != (ssize_t)wlen || memcmp(buf, want, wlen) != 0) {
            print_error("%s: sm_pack_values = %zd, bytes differ\n  python %s\n", what, rc, hex);
            failures++;
            continue;
        }
        ssize_t un = sm_unpack_values(want, wlen, fmt, back, MAXVALS);
        char *got = un == (ssize_t)wlen ? tokens_string(fmt, back, pc.nvals) : NULL;
        if (!got || strcmp(got, pyout) != 0) {
            print_error("%s: sm_unpack_values = %zd\n  c      %s\n  python %s\n", what, un,
                        got ? got : "-", pyout);
            failures++;
        }
        free(got);
    }
    free(line);
    fclose(f);
    *ncases = n;
    return failures;
}

static void
test_crosscheck_python(void **state)
{
    (void)state;
    uint64_t seed = 0x70ac6c0ffee5eedULL;
    const char *env = getenv("SM_PACK_SEED");
    if (env && *env) seed = strtoull(env, NULL, 0);
    char dir[256], c2py[300], py2c[300], seedstr[32];
    sm_test_mkdtemp(dir, sizeof dir);
    snprintf(c2py, sizeof c2py, "%s/c2py.txt", dir);
    snprintf(py2c, sizeof py2c, "%s/py2c.txt", dir);
    snprintf(seedstr, sizeof seedstr, "%" PRIu64, seed);
    printf("pack cross-check: seed %#" PRIx64 " (SM_PACK_SEED to replay), %s\n", seed, SM_PYTHON3);

    int nerr = 0;
    int failures = write_c_cases(c2py, seed, &nerr);

    char *argv[] = {(char *)SM_PYTHON3, (char *)SM_PACK_CROSSCHECK, c2py, py2c, seedstr, NULL};
    int fd;
    int pid = sm_test_spawn(argv, &fd, true);
    static char out[1 << 16];
    sm_test_read_all(fd, out, sizeof out, 45000);
    close(fd);
    int status = sm_test_wait(pid, 5000);
    fputs(out, stdout);
    if (status != 0) {
        print_error("seed %#" PRIx64 ": %s exited with %d\n", seed, SM_PACK_CROSSCHECK, status);
        failures++;
    }

    int npy = 0;
    if (status == 0) failures += check_python_cases(py2c, seed, &npy);
    printf("pack cross-check: %d C cases (%d refused on purpose, %d unpack-only) checked by "
           "Python, %d Python cases checked by C, %d failures\n",
           NCASES + NUNPACK, nerr, NUNPACK, npy, failures);
    sm_test_rmdir(dir);
    assert_int_equal(failures, 0);
    assert_int_equal(npy, NCASES + NUNPACK);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crosscheck_python),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
