/* The built-in handlers, picked by name by the CLI and the benchmarks. */
#include <string.h>

#include "server_internal.h"

void
sm_server_handler_echo(sm_peer *p, const sm_frame_msg *msg)
{
    /* The frame as it came: in the loop model, straight from the read
     * buffer, with no copy and no encoding. */
    sm_peer_send_frame(p, msg);
}

void
sm_server_handler_discard(sm_peer *p, const sm_frame_msg *msg)
{
    (void)p;
    (void)msg;
}

void
sm_server_handler_chat(sm_peer *p, const sm_frame_msg *msg)
{
    sm_server_broadcast(sm_peer_server(p), p, msg->type, msg->data, msg->len);
}

static const struct {
    const char *name;
    sm_server_message_cb fn;
} handlers[] = {
    {"echo", sm_server_handler_echo},
    {"discard", sm_server_handler_discard},
    {"chat", sm_server_handler_chat},
};

sm_server_message_cb
sm_server_handler_by_name(const char *name)
{
    for (size_t i = 0; name && i < sizeof handlers / sizeof handlers[0]; i++)
        if (!strcmp(handlers[i].name, name)) return handlers[i].fn;
    return NULL;
}

const char *
sm_server_handler_name(int i)
{
    if (i < 0 || (size_t)i >= sizeof handlers / sizeof handlers[0]) return NULL;
    return handlers[i].name;
}
