/* A small DNS message codec for examples/dns_tcp.c (RFC 1035 4.1): a query
 * encoder and a reply parser that keeps the A and AAAA answers. Pure: no I/O,
 * no allocation, every length checked against the message it came in. */
#ifndef SM_EXAMPLE_DNS_WIRE_H
#define SM_EXAMPLE_DNS_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum { DNS_A = 1, DNS_AAAA = 28, DNS_CLASS_IN = 1 };
enum { DNS_MAX_NAME = 255, DNS_MAX_ADDRS = 16 };

typedef struct dns_addr {
    int type;         /* DNS_A (4 bytes of addr) or DNS_AAAA (16) */
    uint32_t ttl;     /* seconds */
    uint8_t addr[16]; /* network order */
} dns_addr;

typedef struct dns_reply {
    uint16_t id;
    int rcode;                    /* 0 NOERROR, 2 SERVFAIL, 3 NXDOMAIN, 5 REFUSED, ... */
    bool truncated;               /* TC: the server cut the answer short */
    uint16_t qtype;               /* the question it answers */
    char qname[DNS_MAX_NAME + 1]; /* as sent, without the final dot */
    unsigned answers;             /* answer records, of every type */
    unsigned naddrs;              /* how many of addrs[] are set */
    unsigned more_addrs;          /* A/AAAA answers past DNS_MAX_ADDRS, not kept */
    dns_addr addrs[DNS_MAX_ADDRS];
} dns_reply;

/* dns_query_encode - a recursive query (RD set) for name (dotted, an optional
 * final dot) of type qtype, class IN, with id. Returns its length, or -1 when
 * the name is not a valid DNS name (an empty label, one over 63 bytes, over
 * 255 bytes in all) or the query does not fit in cap bytes. */
int dns_query_encode(uint8_t *out, size_t cap, uint16_t id, const char *name, uint16_t qtype);

/* dns_reply_parse - parse msg[0..len) as a reply with one question. Returns 0
 * with *r set, or -1 with *why saying what is wrong (not a reply, a record
 * past the end, a bad name, ...). Answers of other types (CNAME, ...) are
 * counted and skipped. */
int dns_reply_parse(const uint8_t *msg, size_t len, dns_reply *r, const char **why);

/* dns_rcode_name - "NOERROR", "NXDOMAIN", ... or "RCODE<n>" into buf. */
const char *dns_rcode_name(int rcode, char *buf, size_t len);

#endif
