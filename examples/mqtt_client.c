/* An MQTT 3.1.1 client on sm_conn: it subscribes to a topic, publishes a
 * message to it (QoS 0), receives it back from the broker and disconnects.
 *
 *   mqtt_client ENDPOINT [TOPIC [MESSAGE]]    e.g. unix:/tmp/mqtt.sock
 *
 * Every MQTT packet is a fixed header byte (type and flags), then the
 * "remaining length" as a varint of 7-bit groups, low first: the spec
 * varint,offset=1. A received message's payload is the packet's variable
 * header and payload; msg.frame[0] is the fixed header byte. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <sockmsg/conn.h>
#include <sockmsg/sockmsg.h>

enum {
    CONNECT = 0x10,
    CONNACK = 0x20,
    PUBLISH = 0x30,
    SUBSCRIBE = 0x82, /* flags 0010, as the standard requires */
    SUBACK = 0x90,
    DISCONNECT = 0xe0,
};

/* Send one packet: the fixed-header byte is the offset byte of
 * "varint,offset=1", given by us; the library writes the varint length. */
static int
send_packet(sm_conn *c, uint8_t type, const uint8_t *body, size_t len)
{
    return sm_conn_send_hdr(c, &type, 1, body, len, SM_CONN_DEFAULT) < 0 ? -1 : 0;
}

/* A UTF-8 string as MQTT writes it: a 16-bit big-endian length, the bytes. */
static size_t
put_str(uint8_t *p, const char *s)
{
    size_t n = strlen(s);
    p[0] = (uint8_t)(n >> 8);
    p[1] = (uint8_t)n;
    for (size_t i = 0; i < n; i++) /* no NUL: MQTT strings carry their length */
        p[2 + i] = (uint8_t)s[i];
    return n + 2;
}

/* The next packet, which must be of `type` (the high nibble). */
static int
expect(sm_conn *c, uint8_t type, sm_frame_msg *m)
{
    int rc = sm_conn_recv(c, m, SM_CONN_DEFAULT);
    if (rc != 1) {
        fprintf(stderr, "mqtt_client: %s %s\n", rc == 0 ? "closed" : sm_strerror(rc),
                sm_conn_error_detail(c));
        return -1;
    }
    if ((m->frame[0] & 0xf0) != (type & 0xf0)) {
        fprintf(stderr, "mqtt_client: got packet 0x%02x, want 0x%02x\n", m->frame[0], type);
        return -1;
    }
    return 0;
}

int
main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: mqtt_client ENDPOINT [TOPIC [MESSAGE]]\n");
        return 2;
    }
    const char *topic = argc > 2 ? argv[2] : "sockmsg/example";
    const char *text = argc > 3 ? argv[3] : "hello over MQTT";
    if (strlen(topic) > 200 || strlen(text) > 1000) {
        fprintf(stderr, "mqtt_client: topic or message too long for this example\n");
        return 2;
    }
    sm_conn *c;
    char why[256];
    if (sm_conn_dial(&c, argv[1], "varint,offset=1,max=256K", 5000, why, sizeof why) < 0) {
        fprintf(stderr, "mqtt_client: %s\n", why);
        return 1;
    }
    sm_conn_set_timeout(c, 5000);
    int status = 1;
    uint8_t body[1400];
    sm_frame_msg m;
    size_t n;

    /* CONNECT: protocol "MQTT" level 4 (3.1.1), clean session, keep-alive
     * 60 s, then the client id. */
    static const uint8_t connect_vh[] = {0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0, 60};
    memcpy(body, connect_vh, sizeof connect_vh);
    n = sizeof connect_vh + put_str(body + sizeof connect_vh, "sockmsg-example");
    if (send_packet(c, CONNECT, body, n) < 0 || expect(c, CONNACK, &m) < 0) goto out;
    if (m.len != 2 || m.data[1] != 0) {
        fprintf(stderr, "mqtt_client: connection refused (code %d)\n", m.len == 2 ? m.data[1] : -1);
        goto out;
    }
    printf("CONNACK: accepted\n");

    /* SUBSCRIBE: packet id 1, one topic filter at QoS 0. */
    body[0] = 0;
    body[1] = 1;
    n = 2 + put_str(body + 2, topic);
    body[n++] = 0;
    if (send_packet(c, SUBSCRIBE, body, n) < 0 || expect(c, SUBACK, &m) < 0) goto out;
    if (m.len != 3 || m.data[0] != 0 || m.data[1] != 1 || m.data[2] > 2) {
        fprintf(stderr, "mqtt_client: subscription refused\n");
        goto out;
    }
    printf("SUBACK: %s at QoS %d\n", topic, m.data[2]);

    /* PUBLISH at QoS 0 (no packet id): the topic, then the message. */
    n = put_str(body, topic);
    memcpy(body + n, text, strlen(text));
    n += strlen(text);
    if (send_packet(c, PUBLISH, body, n) < 0) goto out;
    printf("PUBLISH: %s\n", text);

    /* The broker sends it back to us, a subscriber. */
    if (expect(c, PUBLISH, &m) < 0) goto out;
    if (m.len < 2) goto out;
    size_t tlen = (size_t)m.data[0] << 8 | m.data[1];
    size_t off = 2 + tlen + ((m.frame[0] & 0x06) ? 2 : 0); /* QoS > 0: a packet id */
    if (off > m.len) goto out;
    printf("received on %.*s: %.*s\n", (int)tlen, (const char *)m.data + 2, (int)(m.len - off),
           (const char *)m.data + off);

    if (send_packet(c, DISCONNECT, NULL, 0) < 0) goto out;
    printf("DISCONNECT\n");
    status = 0;
out:
    sm_conn_free(c);
    return status;
}
