// A C++ application against an installed sockmsg (built by run.sh with g++
// and pkg-config, -Wpedantic -Werror). It includes the umbrella header and
// every module header by name, so a header that C++ rejects, or a declaration
// outside extern "C" (an undefined mangled symbol at link time), fails here.
// Prints "ok <version>"; exits 1 naming the first failure.
#include <sockmsg/sockmsg.h>

#include <sockmsg/api.h>
#include <sockmsg/buf.h>
#include <sockmsg/conn.h>
#include <sockmsg/endpoint.h>
#include <sockmsg/error.h>
#include <sockmsg/frame.h>
#include <sockmsg/loop.h>
#include <sockmsg/pack.h>
#include <sockmsg/proxy.h>
#include <sockmsg/server.h>
#include <sockmsg/socket.h>
#include <sockmsg/stream.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            std::fprintf(stderr, "consumer++: %s:%d: check failed: %s\n", __FILE__, __LINE__,      \
                         #cond);                                                                   \
            std::exit(1);                                                                          \
        }                                                                                          \
    } while (0)

namespace
{

void
on_timer(sm_timer *t)
{
    ++*static_cast<int *>(t->data);
}

} // namespace

int
main()
{
    CHECK(std::string(sm_version()) == SM_VERSION_STRING);

    // A frame spec, parsed and put back in canonical form.
    sm_frame_spec spec = {};
    char why[128];
    CHECK(sm_frame_spec_parse(&spec, "len16le,max=4K", why, sizeof why) == 0);
    CHECK(spec.kind == SM_FRAME_LENGTH && spec.len_width == 2 && spec.len_little);
    char canon[64];
    CHECK(sm_frame_spec_format(&spec, canon, sizeof canon) > 0);
    CHECK(std::string(canon) == "len16le,max=4K");
    CHECK(sm_frame_spec_parse(&spec, "fixed:0", why, sizeof why) == SM_ERR_SPEC);

    // Endpoints, and what their errors say.
    sm_endpoint ep;
    CHECK(sm_endpoint_parse(&ep, "unix:@sockmsg-consumer", why, sizeof why) == 0);
    CHECK(ep.kind == SM_ENDPOINT_UNIX_ABSTRACT && std::string(ep.path) == "sockmsg-consumer");
    CHECK(sm_endpoint_parse(&ep, "udp://h:1", why, sizeof why) == SM_ERR_ENDPOINT);
    CHECK(std::string(sm_strerror(SM_ERR_ENDPOINT)) == "malformed endpoint");

    // Packing (the header's inline sm_buf functions too).
    unsigned char out[8];
    CHECK(sm_pack(out, sizeof out, ">HI", 0x0102, 0x03040506u) == 6);
    CHECK(out[0] == 1 && out[5] == 6);
    sm_buf b;
    sm_buf_init(&b, 0);
    CHECK(sm_buf_append(&b, out, 6) == 0);
    CHECK(sm_buf_len(&b) == 6 && sm_buf_peek(&b)[1] == 2);
    sm_buf_consume(&b, 6);
    sm_buf_free(&b);

    // A loop running a C++ callback once.
    sm_loop *loop;
    CHECK(sm_loop_new(&loop, nullptr) == 0);
    sm_timer t;
    int fired = 0;
    sm_timer_init(loop, &t, on_timer);
    t.data = &fired;
    CHECK(sm_timer_start(&t, 0, 0) == 0);
    CHECK(sm_loop_run(loop, SM_RUN_DEFAULT) >= 0);
    CHECK(fired == 1);
    CHECK(sm_loop_free(loop) == 0);

    std::printf("ok %s\n", sm_version());
    return 0;
}
