/* sockmsg — message-oriented socket programming for C.
 *
 * The umbrella header: includes every public module. Each module's header
 * documents its functions; docs/guide.md shows them at work.
 */
#ifndef SOCKMSG_H
#define SOCKMSG_H

#define SM_VERSION_MAJOR  0
#define SM_VERSION_MINOR  1
#define SM_VERSION_PATCH  0
#define SM_VERSION_STRING "0.1.0"

#include "api.h"
#include "error.h"
#include "endpoint.h"
#include "socket.h"
#include "buf.h"
#include "frame.h"
#include "pack.h"
#include "tls.h"
#include "conn.h"
#include "loop.h"
#include "stream.h"
#include "proxy.h"
#include "server.h"

#ifdef __cplusplus
extern "C" {
#endif

/* sm_version - the library's version string ("0.1.0"); compare with
 * SM_VERSION_STRING to detect a header/library mismatch. Thread-safe. */
SM_API const char *sm_version(void);

#ifdef __cplusplus
}
#endif

#endif
