/* A PostgreSQL simple-query client: the guide's "Framing that changes
 * mid-stream". It logs in (trust authentication), runs one query and prints
 * the rows, columns separated by '|', NULL as an empty field, then the
 * command tag ("SELECT 3") after "-- ".
 *
 *   pg_query ENDPOINT USER DATABASE SQL
 *   pg_query unix:/tmp/pg/.s.PGSQL.5432 postgres postgres 'select 1, 2'
 *
 * The protocol (https://www.postgresql.org/docs/current/protocol.html) is
 * asymmetric at its start: the client's StartupMessage is a 4-byte length
 * (counting itself) and a payload; every later message, both ways, is a
 * type byte, then that length, then the payload. Two specs say it:
 *   "len32be,adjust=4"            the StartupMessage, sent once
 *   "len32be,offset=1,adjust=4"   everything else (frame[0] is the type)
 * and sm_conn_send_hdr gives the type byte of what we send. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <sockmsg/conn.h>
#include <sockmsg/sockmsg.h>

#define TIMEOUT_MS 10000

/* A bounds-checked reader over one message's payload: every field the
 * server sends is checked against what arrived. */
typedef struct rd {
    const uint8_t *p;
    size_t left;
    int bad;
} rd;

static uint32_t
rd_u32(rd *r)
{
    if (r->left < 4) return r->bad = 1, 0;
    uint32_t v =
        (uint32_t)r->p[0] << 24 | (uint32_t)r->p[1] << 16 | (uint32_t)r->p[2] << 8 | r->p[3];
    r->p += 4;
    r->left -= 4;
    return v;
}

static uint16_t
rd_u16(rd *r)
{
    if (r->left < 2) return r->bad = 1, 0;
    uint16_t v = (uint16_t)(r->p[0] << 8 | r->p[1]);
    r->p += 2;
    r->left -= 2;
    return v;
}

/* A NUL-terminated string; "" (and bad set) when it is not terminated. */
static const char *
rd_str(rd *r)
{
    const uint8_t *nul = memchr(r->p, 0, r->left);
    if (!nul) return r->bad = 1, "";
    const char *s = (const char *)r->p;
    r->left -= (size_t)(nul - r->p) + 1;
    r->p = nul + 1;
    return s;
}

static const uint8_t *
rd_bytes(rd *r, size_t n)
{
    if (r->left < n) return r->bad = 1, NULL;
    const uint8_t *p = r->p;
    r->p += n;
    r->left -= n;
    return p;
}

/* ErrorResponse: fields of a code byte and a string, up to a 0 byte. */
static void
print_error(const sm_frame_msg *m)
{
    rd r = {m->data, m->len, 0};
    const char *sev = "ERROR", *text = "(no message)";
    while (!r.bad && r.left && r.p[0]) {
        uint8_t code = *rd_bytes(&r, 1);
        const char *v = rd_str(&r);
        if (code == 'S') sev = v;
        if (code == 'M') text = v;
    }
    fprintf(stderr, "pg_query: server: %s: %s\n", sev, text);
}

/* RowDescription: the column names, as the header line. */
static int
print_columns(const sm_frame_msg *m)
{
    rd r = {m->data, m->len, 0};
    unsigned n = rd_u16(&r);
    for (unsigned i = 0; i < n && !r.bad; i++) {
        printf("%s%s", i ? "|" : "", rd_str(&r));
        rd_bytes(&r, 18); /* table oid, column, type oid, size, modifier, format */
    }
    printf("\n");
    return r.bad ? -1 : 0;
}

/* DataRow: each column's length (-1: NULL) and its text. */
static int
print_row(const sm_frame_msg *m)
{
    rd r = {m->data, m->len, 0};
    unsigned n = rd_u16(&r);
    for (unsigned i = 0; i < n && !r.bad; i++) {
        uint32_t len = rd_u32(&r);
        printf("%s", i ? "|" : "");
        if (len == UINT32_MAX) continue; /* NULL */
        const uint8_t *v = rd_bytes(&r, len);
        if (v) fwrite(v, 1, len, stdout);
    }
    printf("\n");
    return r.bad ? -1 : 0;
}

/* Read messages until ReadyForQuery. Returns 0, or -1 after an error. */
static int
until_ready(sm_conn *c, int *failed)
{
    for (;;) {
        sm_frame_msg m;
        int rc = sm_conn_recv(c, &m, SM_CONN_DEFAULT);
        if (rc != 1) {
            fprintf(stderr, "pg_query: %s %s\n", rc == 0 ? "server closed" : sm_strerror(rc),
                    sm_conn_error_detail(c));
            return -1;
        }
        rd r = {m.data, m.len, 0};
        switch (m.frame[0]) { /* the type byte, before the length */
        case 'R':             /* Authentication: 0 is AuthenticationOk */
            if (rd_u32(&r) != 0 || r.bad) {
                fprintf(stderr, "pg_query: the server asks for a password (use trust)\n");
                return -1;
            }
            break;
        case 'E': /* ErrorResponse: ReadyForQuery follows, unless fatal */
            print_error(&m);
            *failed = 1;
            break;
        case 'T':
            if (print_columns(&m) < 0) return -1;
            break;
        case 'D':
            if (print_row(&m) < 0) return -1;
            break;
        case 'C': /* CommandComplete: the tag */
            printf("-- %s\n", rd_str(&r));
            break;
        case 'Z': /* ReadyForQuery */
            return 0;
        default: /* ParameterStatus, BackendKeyData, NoticeResponse, ... */
            break;
        }
    }
}

/* guide: pg_query */
int
main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: pg_query ENDPOINT USER DATABASE SQL\n");
        return 2;
    }
    const char *user = argv[2], *db = argv[3], *sql = argv[4];
    const char *backend = "len32be,offset=1,adjust=4,max=64M"; /* a type byte, then a length */
    sm_frame_spec typed, startup;
    char why[256];
    if (sm_frame_spec_parse(&typed, backend, why, sizeof why) < 0 ||
        sm_frame_spec_parse(&startup, "len32be,adjust=4", why, sizeof why) < 0) {
        fprintf(stderr, "pg_query: %s\n", why);
        return 1;
    }
    sm_conn *c;
    if (sm_conn_dial(&c, argv[1], backend, TIMEOUT_MS, why, sizeof why) < 0) {
        fprintf(stderr, "pg_query: %s\n", why);
        return 1;
    }
    sm_conn_set_timeout(c, TIMEOUT_MS);

    /* StartupMessage: protocol 3.0, then name/value pairs, then a 0. No
     * type byte: sent with its own spec, then everything is typed. */
    char start[512];
    int n = snprintf(start + 4, sizeof start - 4, "user%c%s%cdatabase%c%s%c", 0, user, 0, 0, db, 0);
    if (n < 0 || (size_t)n + 5 > sizeof start) {
        fprintf(stderr, "pg_query: user or database name too long\n");
        sm_conn_free(c);
        return 2;
    }
    memcpy(start, "\0\3\0\0", 4); /* 196608: version 3.0 */
    start[4 + n] = 0;
    int failed = 0;
    int ok = sm_conn_set_spec(c, NULL, &startup) == 0 &&
             sm_conn_send(c, start, (size_t)n + 5, SM_CONN_DEFAULT) >= 0 &&
             sm_conn_set_spec(c, NULL, &typed) == 0;
    ok = ok && until_ready(c, &failed) == 0 && !failed;

    /* Query: 'Q', the length, the SQL with its NUL. */
    ok = ok && sm_conn_send_hdr(c, "Q", 1, sql, strlen(sql) + 1, SM_CONN_DEFAULT) >= 0;
    ok = ok && until_ready(c, &failed) == 0;
    /* Terminate: 'X' and the length alone. The server closes either way:
     * a failure to say goodbye changes nothing. */
    if (ok) (void)sm_conn_send_hdr(c, "X", 1, NULL, 0, SM_CONN_DEFAULT);
    sm_conn_free(c);
    return ok && !failed ? 0 : 1;
}
/* guide: end */
