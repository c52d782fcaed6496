/* DNS over TCP (RFC 1035 4.2.2, RFC 7766): every message is preceded by its
 * length in two bytes, big-endian; a spec of "len16be" frames it. All the
 * queries go out at once on one connection (RFC 7766 6.2.1.1 lets a client
 * pipeline them and a server answer in any order); replies are matched to
 * their query by ID and question, and printed in the order asked.
 *
 *   dns_tcp [-t MS] ENDPOINT NAME[/A|/AAAA] ...
 *   dns_tcp tcp://127.0.0.1:53 www.example.test www.example.test/AAAA
 *   www.example.test A NOERROR 192.0.2.7 192.0.2.8
 *   www.example.test AAAA NOERROR 2001:db8::7
 *
 * Exit status: 0 when every query got its reply (whatever its rcode), 1
 * otherwise, 2 for bad arguments. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <sockmsg/conn.h>
#include <sockmsg/sockmsg.h>

#include "dns_wire.h"

enum { MAX_QUERIES = 64 };

typedef struct query {
    char name[DNS_MAX_NAME + 2];
    uint16_t type, id;
    bool answered;
    dns_reply reply;
} query;

static int
usage(void)
{
    fprintf(stderr, "usage: dns_tcp [-t MS] ENDPOINT NAME[/A|/AAAA] ... (at most %d)\n",
            MAX_QUERIES);
    return 2;
}

/* "name" or "name/A" or "name/AAAA" into q. */
static int
parse_query(const char *arg, query *q)
{
    const char *slash = strrchr(arg, '/');
    size_t n = slash ? (size_t)(slash - arg) : strlen(arg);
    q->type = DNS_A;
    if (slash && strcasecmp(slash + 1, "AAAA") == 0)
        q->type = DNS_AAAA;
    else if (slash && strcasecmp(slash + 1, "A") != 0)
        return -1;
    if (n == 0 || n >= sizeof q->name) return -1;
    memcpy(q->name, arg, n);
    q->name[n] = '\0';
    return 0;
}

/* The reply's question must be the query's (case-insensitively, RFC 4343). */
static bool
same_question(const query *q, const dns_reply *r)
{
    size_t n = strlen(q->name);
    if (n > 0 && q->name[n - 1] == '.') n--;
    return r->qtype == q->type && strlen(r->qname) == n && strncasecmp(r->qname, q->name, n) == 0;
}

static void
print_answer(const query *q)
{
    const dns_reply *r = &q->reply;
    char rc[16];
    printf("%s %s %s", q->name, q->type == DNS_A ? "A" : "AAAA",
           dns_rcode_name(r->rcode, rc, sizeof rc));
    for (unsigned i = 0; i < r->naddrs; i++) {
        char text[INET6_ADDRSTRLEN];
        int af = r->addrs[i].type == DNS_A ? AF_INET : AF_INET6;
        if (inet_ntop(af, r->addrs[i].addr, text, sizeof text)) printf(" %s", text);
    }
    if (r->more_addrs) printf(" (+%u more)", r->more_addrs);
    if (r->truncated) printf(" (truncated)");
    printf("\n");
}

/* Take one reply: find its query by ID, check it answers that question. */
static int
match_reply(query *qs, int nq, const sm_frame_msg *m)
{
    dns_reply r;
    const char *why;
    if (dns_reply_parse(m->data, m->len, &r, &why) != 0) {
        fprintf(stderr, "dns_tcp: bad reply: %s\n", why);
        return -1;
    }
    for (int i = 0; i < nq; i++) {
        if (qs[i].id != r.id) continue;
        if (qs[i].answered) {
            fprintf(stderr, "dns_tcp: a second reply with id %u\n", r.id);
            return -1;
        }
        if (!same_question(&qs[i], &r)) {
            fprintf(stderr, "dns_tcp: reply %u answers %s, not %s\n", r.id, r.qname, qs[i].name);
            return -1;
        }
        qs[i].answered = true;
        qs[i].reply = r;
        return 0;
    }
    fprintf(stderr, "dns_tcp: reply with id %u matches no query\n", r.id);
    return -1;
}

int
main(int argc, char **argv)
{
    int timeout_ms = 5000, a = 1;
    if (a + 1 < argc && strcmp(argv[a], "-t") == 0) {
        char *end;
        long ms = strtol(argv[a + 1], &end, 10);
        timeout_ms = *end == '\0' && ms > 0 && ms <= 3600000 ? (int)ms : -1;
        a += 2;
    }
    int nq = argc - a - 1;
    if (nq < 1 || nq > MAX_QUERIES || timeout_ms <= 0) return usage();
    static query qs[MAX_QUERIES];
    /* IDs from a random start, distinct within the connection. */
    uint16_t id0;
    if (getrandom(&id0, sizeof id0, 0) != (ssize_t)sizeof id0)
        id0 = (uint16_t)(getpid() ^ time(NULL));
    for (int i = 0; i < nq; i++) {
        if (parse_query(argv[a + 1 + i], &qs[i]) != 0) {
            fprintf(stderr, "dns_tcp: bad query '%s'\n", argv[a + 1 + i]);
            return usage();
        }
        qs[i].id = (uint16_t)(id0 + i);
    }

    /* guide: dns */
    sm_conn *c;
    char why[256];
    /* A DNS message over TCP is at most 65535 bytes: the length field's limit. */
    if (sm_conn_dial(&c, argv[a], "len16be,max=65535", timeout_ms, why, sizeof why) < 0) {
        fprintf(stderr, "dns_tcp: %s\n", why);
        return 1;
    }
    sm_conn_set_timeout(c, timeout_ms);
    int status = 0;
    for (int i = 0; i < nq && status == 0; i++) {
        uint8_t q[512];
        int len = dns_query_encode(q, sizeof q, qs[i].id, qs[i].name, qs[i].type);
        ssize_t sent = len < 0 ? 0 : sm_conn_send(c, q, (size_t)len, SM_CONN_DEFAULT);
        if (len < 0 || sent < 0) {
            fprintf(stderr, "dns_tcp: %s: %s\n", qs[i].name,
                    len < 0 ? "not a DNS name" : sm_strerror((int)sent));
            status = 1;
        }
    }
    for (int got = 0; got < nq && status == 0; got++) {
        sm_frame_msg m;
        int rc = sm_conn_recv(c, &m, SM_CONN_DEFAULT);
        if (rc != 1) {
            fprintf(stderr, "dns_tcp: %d of %d replies, then %s %s\n", got, nq,
                    rc == 0 ? "the server closed" : sm_strerror(rc), sm_conn_error_detail(c));
            status = 1;
        } else if (match_reply(qs, nq, &m) != 0) {
            status = 1;
        }
    }
    sm_conn_free(c);
    /* guide: end */
    if (status == 0)
        for (int i = 0; i < nq; i++)
            print_answer(&qs[i]);
    return status;
}
