/* Frame spec strings: parsing, canonical formatting, checking hand-filled specs. */
#include "smtest.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "test_frame.h"

#define KB (UINT64_C(1) << 10)
#define MB (UINT64_C(1) << 20)
#define GB (UINT64_C(1) << 30)

/* One good spec string and the fields it must parse to. For type: specs the
 * nested codecs are compared through type_map, so their order in types[] and
 * any sharing of equal entries is up to the parser. */
struct good {
    const char *in;
    sm_frame_spec want;
};

static const struct good good[] = {
    {"fixed:1", {.kind = SM_FRAME_FIXED, .fixed_len = 1}},
    {"fixed:4096", {.kind = SM_FRAME_FIXED, .fixed_len = 4096}},
    {"line", {.kind = SM_FRAME_DELIM, .delim = "\n", .delim_len = 1}},
    {"crlf", {.kind = SM_FRAME_DELIM, .delim = "\r\n", .delim_len = 2}},
    {"nul", {.kind = SM_FRAME_DELIM, .delim = {0}, .delim_len = 1}},
    {"delim:\\n", {.kind = SM_FRAME_DELIM, .delim = "\n", .delim_len = 1}},
    {"delim:\\r\\n\\r\\n", {.kind = SM_FRAME_DELIM, .delim = "\r\n\r\n", .delim_len = 4}},
    {"delim:--", {.kind = SM_FRAME_DELIM, .delim = "--", .delim_len = 2}},
    {"delim:\\x00\\xff", {.kind = SM_FRAME_DELIM, .delim = {0, 0xff}, .delim_len = 2}},
    {"delim:\\xAb", {.kind = SM_FRAME_DELIM, .delim = {0xab}, .delim_len = 1}},
    {"delim:\\x2c", {.kind = SM_FRAME_DELIM, .delim = ",", .delim_len = 1}},
    {"delim:\\\\", {.kind = SM_FRAME_DELIM, .delim = "\\", .delim_len = 1}},
    {"delim:\\t|", {.kind = SM_FRAME_DELIM, .delim = "\t|", .delim_len = 2}},
    {"delim:\\0", {.kind = SM_FRAME_DELIM, .delim = {0}, .delim_len = 1}},
    {"delim:0123456789abcdef",
     {.kind = SM_FRAME_DELIM, .delim = "0123456789abcdef", .delim_len = 16}},
    {"delim:aba", {.kind = SM_FRAME_DELIM, .delim = "aba", .delim_len = 3}},
    {"len8", {.kind = SM_FRAME_LENGTH, .len_width = 1}},
    {"len16be", {.kind = SM_FRAME_LENGTH, .len_width = 2}},
    {"len16le", {.kind = SM_FRAME_LENGTH, .len_width = 2, .len_little = true}},
    {"len32be", {.kind = SM_FRAME_LENGTH, .len_width = 4}},
    {"len32le", {.kind = SM_FRAME_LENGTH, .len_width = 4, .len_little = true}},
    {"len64be", {.kind = SM_FRAME_LENGTH, .len_width = 8}},
    {"len64le", {.kind = SM_FRAME_LENGTH, .len_width = 8, .len_little = true}},
    {"len16be,adjust=2,offset=1",
     {.kind = SM_FRAME_LENGTH, .len_width = 2, .len_adjust = 2, .len_offset = 1}},
    {"len32le,adjust=-4",
     {.kind = SM_FRAME_LENGTH, .len_width = 4, .len_little = true, .len_adjust = -4}},
    {"len8,offset=16", {.kind = SM_FRAME_LENGTH, .len_width = 1, .len_offset = 16}},
    {"len64be,adjust=-8,offset=3,max=1K",
     {.kind = SM_FRAME_LENGTH, .len_width = 8, .len_adjust = -8, .len_offset = 3, .max = KB}},
    {"len32be,max=1M", {.kind = SM_FRAME_LENGTH, .len_width = 4, .max = MB}},
    {"len32be,max=1G", {.kind = SM_FRAME_LENGTH, .len_width = 4, .max = GB}},
    {"len32be,max=16M", {.kind = SM_FRAME_LENGTH, .len_width = 4}},
    {"len16le,max=100,oversize=skip",
     {.kind = SM_FRAME_LENGTH,
      .len_width = 2,
      .len_little = true,
      .max = 100,
      .oversize = SM_OVERSIZE_SKIP}},
    {"ascii:1", {.kind = SM_FRAME_ASCII, .ascii_digits = 1}},
    {"ascii:20", {.kind = SM_FRAME_ASCII, .ascii_digits = 20}},
    {"ascii:5,max=99999", {.kind = SM_FRAME_ASCII, .ascii_digits = 5, .max = 99999}},
    {"netstring", {.kind = SM_FRAME_NETSTRING}},
    {"netstring,oversize=skip", {.kind = SM_FRAME_NETSTRING, .oversize = SM_OVERSIZE_SKIP}},
    {"varint", {.kind = SM_FRAME_VARINT}},
    {"varint,max=100", {.kind = SM_FRAME_VARINT, .max = 100}},
    {"varint,offset=1", {.kind = SM_FRAME_VARINT, .len_offset = 1}},
    {"varint,offset=16,max=1K", {.kind = SM_FRAME_VARINT, .len_offset = 16, .max = KB}},
    {"ascii:4,offset=2", {.kind = SM_FRAME_ASCII, .ascii_digits = 4, .len_offset = 2}},
    {"netstring,offset=3", {.kind = SM_FRAME_NETSTRING, .len_offset = 3}},
    {"eof", {.kind = SM_FRAME_EOF}},
    {"eof,max=1K", {.kind = SM_FRAME_EOF, .max = KB}},
    {"line,max=4096,oversize=skip",
     {.kind = SM_FRAME_DELIM,
      .delim = "\n",
      .delim_len = 1,
      .max = 4096,
      .oversize = SM_OVERSIZE_SKIP}},
    {"line,oversize=close", {.kind = SM_FRAME_DELIM, .delim = "\n", .delim_len = 1}},
    {"line,max=4K", {.kind = SM_FRAME_DELIM, .delim = "\n", .delim_len = 1, .max = 4 * KB}},
    {"line,max=2M", {.kind = SM_FRAME_DELIM, .delim = "\n", .delim_len = 1, .max = 2 * MB}},
    {"line,max=3G", {.kind = SM_FRAME_DELIM, .delim = "\n", .delim_len = 1, .max = 3 * GB}},
    {"line,max=12345", {.kind = SM_FRAME_DELIM, .delim = "\n", .delim_len = 1, .max = 12345}},
    {"type:A=4;B=(len16be);0x03=(line)",
     {.kind = SM_FRAME_TYPE,
      .type_map = {['A'] = 1, ['B'] = 2, [3] = 3},
      .type_count = 3,
      .types = {{.kind = SM_FRAME_FIXED, .fixed_len = 4},
                {.kind = SM_FRAME_LENGTH, .len_width = 2},
                {.kind = SM_FRAME_DELIM, .delim = "\n", .delim_len = 1}}}},
    {"type:0x00=1;0xff=(varint)",
     {.kind = SM_FRAME_TYPE,
      .type_map = {[0] = 1, [0xff] = 2},
      .type_count = 2,
      .types = {{.kind = SM_FRAME_FIXED, .fixed_len = 1}, {.kind = SM_FRAME_VARINT}}}},
    {"type:a=(len16be,adjust=2,offset=1);b=(delim:\\r\\n);c=1,max=1000",
     {.kind = SM_FRAME_TYPE,
      .max = 1000,
      .type_map = {['a'] = 1, ['b'] = 2, ['c'] = 3},
      .type_count = 3,
      .types = {{.kind = SM_FRAME_LENGTH, .len_width = 2, .len_adjust = 2, .len_offset = 1},
                {.kind = SM_FRAME_DELIM, .delim = "\r\n", .delim_len = 2},
                {.kind = SM_FRAME_FIXED, .fixed_len = 1}}}},
    {"type:A=(netstring);B=(ascii:3);C=(fixed:2);D=(nul);E=(crlf),oversize=skip",
     {.kind = SM_FRAME_TYPE,
      .oversize = SM_OVERSIZE_SKIP,
      .type_map = {['A'] = 1, ['B'] = 2, ['C'] = 3, ['D'] = 4, ['E'] = 5},
      .type_count = 5,
      .types = {{.kind = SM_FRAME_NETSTRING},
                {.kind = SM_FRAME_ASCII, .ascii_digits = 3},
                {.kind = SM_FRAME_FIXED, .fixed_len = 2},
                {.kind = SM_FRAME_DELIM, .delim = {0}, .delim_len = 1},
                {.kind = SM_FRAME_DELIM, .delim = "\r\n", .delim_len = 2}}}},
    /* Twenty keys, one distinct codec: only distinct codecs count against
     * SM_FRAME_TYPES_MAX. */
    {"type:A=4;B=4;C=4;D=4;E=4;F=4;G=4;H=4;I=4;J=4;K=4;L=4;M=4;N=4;O=4;P=4;Q=4;R=4;S=4;T=4",
     {.kind = SM_FRAME_TYPE,
      .type_map = {['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1,
                   ['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1,
                   ['O'] = 1, ['P'] = 1, ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1},
      .type_count = 1,
      .types = {{.kind = SM_FRAME_FIXED, .fixed_len = 4}}}},
};

/* Bad spec strings; `names` (if not NULL) must appear in the explanation. */
struct bad {
    const char *in;
    const char *names;
};

static const struct bad bad[] = {
    {"", NULL},
    {"len24be", "len24be"},
    {"bogus", "bogus"},
    {"LINE", NULL},
    {"fixed", NULL},
    {"fixed:", NULL},
    {"fixed:0", NULL},
    {"fixed:abc", NULL},
    {"fixed:-1", NULL},
    {"fixed:99999999999999999999999", NULL},
    {"line:5", NULL},
    {"varint:3", NULL},
    {"delim:", NULL},
    {"delim:\\q", NULL},
    {"delim:ab\\", NULL},
    {"delim:\\xZZ", NULL},
    {"delim:0123456789abcdefg", NULL},
    {"ascii:0", NULL},
    {"ascii:21", NULL},
    {"ascii:", NULL},
    {"ascii:5x", NULL},
    {"len32be,offset=17", NULL},
    {"len32be,offset=-1", NULL},
    {"len32be,adjust=abc", NULL},
    {"len16be,adjust=99999999999999999999999", NULL},
    {"len32be,max=0", NULL},
    {"line,max=1X", NULL},
    {"line,max=", NULL},
    {"line,max=-1", NULL},
    {"line,max=1.5M", NULL},
    {"line,max=17179869184G", NULL},
    {"line,oversize=drop", NULL},
    {"line,oversize=", NULL},
    {"line,bogus=1", "bogus"},
    {"line,adjust=2", NULL},
    {"fixed:4,offset=2", "offset"},
    {"line,offset=1", "offset"},
    {"eof,offset=1", "offset"},
    {"varint,offset=17", NULL},
    {"varint,adjust=1", NULL},
    {"type:*=4;*=5", "default"},
    {"type:A=(varint,offset=x)", NULL},
    {"line,", NULL},
    {",line", NULL},
    {"type:", NULL},
    {"type:A", NULL},
    {"type:A=", NULL},
    {"type:A=x", NULL},
    {"type:A=(len16be", NULL},
    {"type:A=len16be)", NULL},
    {"type:A=4;A=5", NULL},
    {"type:A=4;0x41=(line)", NULL},
    {"type:A=(type:B=1)", NULL},
    {"type:A=(bogus)", NULL},
    {"type:0xZZ=4", NULL},
    {"type:0x100=4", NULL},
    {"type:\x01=4", NULL}, /* a raw control byte as a key */
    {"type:A=4x", NULL},
    {"type:A=4,max=10;B=5", NULL}, /* options come after the entries */
    {"fixed:100,max=50", NULL},    /* every message would be oversized */
    /* Seventeen distinct codecs: one more than SM_FRAME_TYPES_MAX. */
    {"type:A=1;B=2;C=3;D=4;E=5;F=6;G=7;H=8;I=9;J=10;K=11;L=12;M=13;N=14;O=15;P=16;Q=17", NULL},
};

static void
parse_ok(sm_frame_spec *s, const char *in)
{
    char why[256] = "";
    int rc = sm_frame_spec_parse(s, in, why, sizeof why);
    if (rc != 0) fail_msg("sm_frame_spec_parse(\"%s\") = %s: %s", in, sm_err_name(rc), why);
}

static void
test_parse_good(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        sm_frame_spec s;
        memset(&s, 0x5a, sizeof s); /* the parser must set every field it uses */
        parse_ok(&s, good[i].in);
        char why[256] = "";
        if (!tf_spec_equal(&s, &good[i].want, why, sizeof why))
            fail_msg("\"%s\" parsed wrong: %s", good[i].in, why);
        SM_ASSERT_OK(sm_frame_spec_check(&s, why, sizeof why));
        /* NULL why is allowed. */
        SM_ASSERT_OK(sm_frame_spec_parse(&s, good[i].in, NULL, 0));
    }
}

/* parse(format(parse(s))) equals parse(s) field-wise, and the canonical string
 * is a fixed point. */
static void
test_format_roundtrip(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        sm_frame_spec a, b;
        parse_ok(&a, good[i].in);
        char out[2048], out2[2048], why[256] = "";
        int n = sm_frame_spec_format(&a, out, sizeof out);
        if (n <= 0) fail_msg("format(\"%s\") = %d (%s)", good[i].in, n, sm_err_name(n));
        assert_int_equal((size_t)n, strlen(out));
        int rc = sm_frame_spec_parse(&b, out, why, sizeof why);
        if (rc != 0)
            fail_msg("\"%s\" formats as \"%s\", which does not parse: %s", good[i].in, out, why);
        if (!tf_spec_equal(&a, &b, why, sizeof why))
            fail_msg("\"%s\" formats as \"%s\", which parses differently: %s", good[i].in, out,
                     why);
        int n2 = sm_frame_spec_format(&b, out2, sizeof out2);
        assert_int_equal(n2, n);
        assert_string_equal(out2, out);
        /* snprintf-style: exactly enough room is n + 1 (the NUL); with less,
         * the same n and a NUL-terminated prefix; NULL, 0 asks the size. */
        char *tight = malloc((size_t)n + 1);
        assert_non_null(tight);
        assert_int_equal(sm_frame_spec_format(&a, tight, (size_t)n + 1), n);
        assert_string_equal(tight, out);
        assert_int_equal(sm_frame_spec_format(&a, tight, (size_t)n), n);
        assert_int_equal(strlen(tight), (size_t)n - 1);
        assert_memory_equal(tight, out, (size_t)n - 1);
        assert_int_equal(sm_frame_spec_format(&a, tight, 1), n);
        assert_string_equal(tight, "");
        assert_int_equal(sm_frame_spec_format(&a, NULL, 0), n);
        free(tight);
    }
}

/* The canonical form names the codec first, as the grammar does. */
static void
test_format_names_codec(void **state)
{
    (void)state;
    static const char *const codecs[] = {"len8",    "len16be", "len16le",   "len32be", "len32le",
                                         "len64be", "len64le", "netstring", "varint",  "eof"};
    for (size_t i = 0; i < sizeof codecs / sizeof codecs[0]; i++) {
        sm_frame_spec s;
        char out[256];
        parse_ok(&s, codecs[i]);
        assert_true(sm_frame_spec_format(&s, out, sizeof out) > 0);
        size_t k = strlen(codecs[i]);
        if (strncmp(out, codecs[i], k) != 0 || (out[k] != '\0' && out[k] != ','))
            fail_msg("\"%s\" formats as \"%s\"", codecs[i], out);
    }
}

static void
test_parse_bad(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sm_frame_spec s;
        char why[256] = "";
        int rc = sm_frame_spec_parse(&s, bad[i].in, why, sizeof why);
        if (rc != SM_ERR_SPEC)
            fail_msg("sm_frame_spec_parse(\"%s\") = %s, want SM_ERR_SPEC", bad[i].in,
                     sm_err_name(rc));
        if (why[0] == '\0') fail_msg("no explanation for \"%s\"", bad[i].in);
        if (bad[i].names && !strstr(why, bad[i].names))
            fail_msg("explanation for \"%s\" does not name '%s': %s", bad[i].in, bad[i].names, why);
        /* NULL why, and a why too small for the message: still SM_ERR_SPEC,
         * and the short buffer is NUL-terminated. */
        SM_ASSERT_ERR(sm_frame_spec_parse(&s, bad[i].in, NULL, 0), SM_ERR_SPEC);
        char tiny[6];
        memset(tiny, 'x', sizeof tiny);
        SM_ASSERT_ERR(sm_frame_spec_parse(&s, bad[i].in, tiny, sizeof tiny), SM_ERR_SPEC);
        assert_non_null(memchr(tiny, '\0', sizeof tiny));
        assert_true(tiny[0] != '\0');
    }
    assert_true(sizeof bad / sizeof bad[0] >= 20);
}

/* Specs filled by hand with designated initializers. */
static void
test_check_hand_filled(void **state)
{
    (void)state;
    static const sm_frame_spec ok[] = {
        {.kind = SM_FRAME_LENGTH, .len_width = 4},
        {.kind = SM_FRAME_LENGTH, .len_width = 8, .len_little = true, .len_offset = 16},
        {.kind = SM_FRAME_LENGTH, .len_width = 1, .len_little = true},
        {.kind = SM_FRAME_DELIM, .delim = "\n", .delim_len = 1},
        {.kind = SM_FRAME_DELIM, .delim = ",", .delim_len = 1},
        {.kind = SM_FRAME_DELIM, .delim = ";", .delim_len = 1},
        {.kind = SM_FRAME_DELIM, .delim = ")(", .delim_len = 2},
        {.kind = SM_FRAME_DELIM, .delim = "= x", .delim_len = 3},
        {.kind = SM_FRAME_DELIM, .delim = {0x7f, 0x80, 0x01}, .delim_len = 3},
        {.kind = SM_FRAME_FIXED, .fixed_len = 3, .max = 10},
        {.kind = SM_FRAME_ASCII, .ascii_digits = 4},
        {.kind = SM_FRAME_NETSTRING, .oversize = SM_OVERSIZE_SKIP},
        {.kind = SM_FRAME_VARINT, .max = 5},
        {.kind = SM_FRAME_EOF},
        {.kind = SM_FRAME_TYPE,
         .type_map = {['x'] = 1, [','] = 2, ['('] = 2},
         .type_count = 2,
         .types = {{.kind = SM_FRAME_FIXED, .fixed_len = 2},
                   {.kind = SM_FRAME_DELIM, .delim = ";", .delim_len = 1}}},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        char why[256] = "", out[1024];
        int rc = sm_frame_spec_check(&ok[i], why, sizeof why);
        if (rc != 0) fail_msg("hand-filled spec %zu: %s: %s", i, sm_err_name(rc), why);
        /* And they format to strings that parse back to the same fields. */
        int n = sm_frame_spec_format(&ok[i], out, sizeof out);
        if (n <= 0) fail_msg("hand-filled spec %zu does not format: %s", i, sm_err_name(n));
        sm_frame_spec back;
        rc = sm_frame_spec_parse(&back, out, why, sizeof why);
        if (rc != 0)
            fail_msg("hand-filled spec %zu formats as \"%s\", which does not parse: %s", i, out,
                     why);
        if (!tf_spec_equal(&ok[i], &back, why, sizeof why))
            fail_msg("hand-filled spec %zu formats as \"%s\", which parses differently: %s", i, out,
                     why);
    }

    static const sm_frame_spec no[] = {
        {.kind = 0},
        {.kind = 99},
        {.kind = SM_FRAME_LENGTH, .len_width = 3},
        {.kind = SM_FRAME_LENGTH, .len_width = 0},
        {.kind = SM_FRAME_LENGTH, .len_width = 4, .len_offset = 17},
        {.kind = SM_FRAME_DELIM, .delim_len = 0},
        {.kind = SM_FRAME_DELIM, .delim_len = 17},
        {.kind = SM_FRAME_DELIM, .delim = "\n", .delim_len = 1, .len_offset = 1},
        {.kind = SM_FRAME_VARINT, .len_offset = 17},
        {.kind = SM_FRAME_FIXED, .fixed_len = 0},
        {.kind = SM_FRAME_ASCII, .ascii_digits = 0},
        {.kind = SM_FRAME_ASCII, .ascii_digits = 21},
        {.kind = SM_FRAME_EOF, .oversize = 7},
        {.kind = SM_FRAME_TYPE, .type_count = 0},
        {.kind = SM_FRAME_TYPE,
         .type_map = {['x'] = 2},
         .type_count = 1,
         .types = {{.kind = SM_FRAME_FIXED, .fixed_len = 2}}},
        {.kind = SM_FRAME_TYPE,
         .type_map = {['x'] = 1},
         .type_count = 1,
         .types = {{.kind = SM_FRAME_TYPE}}},
        {.kind = SM_FRAME_TYPE,
         .type_map = {['x'] = 1},
         .type_count = 1,
         .types = {{.kind = SM_FRAME_LENGTH, .len_width = 5}}},
        {.kind = SM_FRAME_TYPE,
         .type_map = {['x'] = 1},
         .type_count = SM_FRAME_TYPES_MAX + 1,
         .types = {{.kind = SM_FRAME_FIXED, .fixed_len = 2}}},
    };
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
        char why[256] = "";
        int rc = sm_frame_spec_check(&no[i], why, sizeof why);
        if (rc != SM_ERR_SPEC)
            fail_msg("bad hand-filled spec %zu: %s, want SM_ERR_SPEC", i, sm_err_name(rc));
        if (why[0] == '\0') fail_msg("bad hand-filled spec %zu: no explanation", i);
        SM_ASSERT_ERR(sm_frame_spec_check(&no[i], NULL, 0), SM_ERR_SPEC);
    }
}

static void
test_frame_max(void **state)
{
    (void)state;
    sm_frame_spec s = {.kind = SM_FRAME_LENGTH, .len_width = 4};
    assert_int_equal(sm_frame_max(&s), SM_FRAME_DEFAULT_MAX);
    s.max = 77;
    assert_int_equal(sm_frame_max(&s), 77);
    parse_ok(&s, "line");
    assert_int_equal(sm_frame_max(&s), SM_FRAME_DEFAULT_MAX);
    parse_ok(&s, "line,max=5K");
    assert_int_equal(sm_frame_max(&s), 5 * KB);
}

/* A spec parsed once is plain data: a copy behaves the same, and parsing
 * again into a used struct leaves nothing of the old spec behind. */
static void
test_parse_overwrites(void **state)
{
    (void)state;
    sm_frame_spec s, fresh;
    char why[128];
    parse_ok(&s, "type:A=4;B=(len16be);0x03=(line),max=1000,oversize=skip");
    parse_ok(&s, "len16be");
    parse_ok(&fresh, "len16be");
    assert_true(tf_spec_equal(&s, &fresh, why, sizeof why));
    assert_int_equal(s.oversize, SM_OVERSIZE_CLOSE);
    assert_int_equal(sm_frame_max(&s), SM_FRAME_DEFAULT_MAX);
    parse_ok(&s, "type:A=4;B=(len16be);0x03=(line)");
    parse_ok(&fresh, "type:0x03=(line)");
    parse_ok(&s, "type:0x03=(line)");
    assert_true(tf_spec_equal(&s, &fresh, why, sizeof why));
    assert_int_equal(s.type_map['A'], 0);
    assert_int_equal(s.type_map['B'], 0);
}

/* A default entry '*' fills every type byte not listed, wherever it is
 * written; the byte '*' itself is 0x2a; formatting writes the default back. */
static void
test_type_default(void **state)
{
    (void)state;
    sm_frame_spec s, t;
    char out[512], why[256];
    parse_ok(&s, "type:*=(varint,offset=1);A=0;0x2a=(line)");
    assert_int_equal(s.type_count, 3);
    for (unsigned k = 0; k < 256; k++) {
        const sm_frame_basic *b = tf_codec_for(&s, (int)k);
        assert_non_null(b);
        if (k == 'A')
            assert_true(b->kind == SM_FRAME_FIXED && b->fixed_len == 0);
        else if (k == '*')
            assert_true(b->kind == SM_FRAME_DELIM && b->delim[0] == '\n');
        else
            assert_true(b->kind == SM_FRAME_VARINT && b->len_offset == 1);
    }
    int n = sm_frame_spec_format(&s, out, sizeof out);
    assert_int_equal(n, (int)strlen(out));
    assert_string_equal(out, "type:0x2a=(line);A=0;*=(varint,offset=1)");
    parse_ok(&t, "type:*=4");
    for (unsigned k = 0; k < 256; k++)
        assert_int_equal(t.type_map[k], 1);
    assert_int_equal(sm_frame_spec_format(&t, out, sizeof out), 8);
    assert_string_equal(out, "type:*=4");
    /* Every byte listed by hand formats with the most common entry as '*'. */
    char big[4096] = "type:";
    for (unsigned k = 0; k < 256; k++) {
        size_t at = strlen(big);
        snprintf(big + at, sizeof big - at, "%s0x%02x=%s", k ? ";" : "", k,
                 k == 7 ? "(crlf)" : "2");
    }
    parse_ok(&t, big);
    n = sm_frame_spec_format(&t, out, sizeof out);
    assert_int_equal(n, (int)strlen(out));
    assert_string_equal(out, "type:0x07=(crlf);*=2");
    /* Without a default, an unlisted byte is still -EPROTO. */
    parse_ok(&t, "type:A=1");
    sm_frame_decoder d;
    sm_frame_decoder_init(&d, &t);
    sm_frame_msg m;
    SM_ASSERT_ERR(sm_frame_decode(&d, (const uint8_t *)"Bx", 2, &m), -EPROTO);
    sm_frame_decoder_init(&d, &s);
    assert_int_equal(sm_frame_decode(&d, (const uint8_t *)"B\x00\x02hi", 5, &m), 5);
    assert_int_equal(m.type, 'B');
    assert_int_equal(m.len, 2);
    assert_memory_equal(m.data, "hi", 2);
    (void)why;
}

/* MQTT's fixed header: one type/flags byte, then the remaining length as a
 * varint (MQTT 3.1.1 section 2.2.3 uses the same 7-bit groups, low first). */
static void
test_mqtt_varint_offset(void **state)
{
    (void)state;
    sm_frame_spec s;
    parse_ok(&s, "varint,offset=1");
    /* CONNACK: 0x20, remaining length 2, session present 0, return code 0. */
    static const uint8_t connack[] = {0x20, 0x02, 0x00, 0x00};
    /* PUBLISH QoS 0, topic "a/b", payload of 200 bytes: remaining length
     * 2 + 3 + 200 = 205 = 0xcd 0x01. */
    uint8_t publish[3 + 205];
    publish[0] = 0x30;
    publish[1] = 0xcd;
    publish[2] = 0x01;
    publish[3] = 0;
    publish[4] = 3;
    memcpy(publish + 5, "a/b", 3);
    memset(publish + 8, 'p', 200);
    uint8_t wire[sizeof connack + sizeof publish];
    memcpy(wire, connack, sizeof connack);
    memcpy(wire + sizeof connack, publish, sizeof publish);
    sm_frame_decoder d;
    sm_frame_decoder_init(&d, &s);
    sm_frame_msg m;
    assert_int_equal(sm_frame_decode(&d, wire, sizeof wire, &m), 4);
    assert_int_equal(m.len, 2);
    assert_ptr_equal(m.frame, wire);
    assert_int_equal(m.frame[0], 0x20);
    ssize_t n = sm_frame_decode(&d, wire + 4, sizeof wire - 4, &m);
    assert_int_equal(n, (ssize_t)sizeof publish);
    assert_int_equal(m.len, 205);
    assert_int_equal(m.frame[0], 0x30);
    assert_memory_equal(m.data,
                        "\x00\x03"
                        "a/b",
                        5);
    /* The encoder leaves the offset byte for the caller: zero, then 0xcd 0x01. */
    sm_frame_hdr h;
    SM_ASSERT_OK(sm_frame_encode(&s, NULL, 205, -1, &h));
    assert_int_equal(h.head_len, 3);
    assert_memory_equal(h.head, "\x00\xcd\x01", 3);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_type_default),       cmocka_unit_test(test_mqtt_varint_offset),
        cmocka_unit_test(test_parse_good),         cmocka_unit_test(test_format_roundtrip),
        cmocka_unit_test(test_format_names_codec), cmocka_unit_test(test_parse_bad),
        cmocka_unit_test(test_check_hand_filled),  cmocka_unit_test(test_frame_max),
        cmocka_unit_test(test_parse_overwrites),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
