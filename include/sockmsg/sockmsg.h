/**
 * @file
 * @brief The umbrella header: includes every public module.
 *
 * Message-oriented socket programming for C. Each module's header documents
 * its functions; docs/guide.md shows them at work.
 */
#ifndef SOCKMSG_H
#define SOCKMSG_H

#include "api.h"
#include <sockmsg/version.h> /* generated: SM_VERSION_*, sm_version() */
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
#include "unix.h"

#endif
