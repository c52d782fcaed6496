/**
 * @file
 * @brief Shared definitions for every public header.
 *
 * Included by every other header; there is no need to include it yourself.
 */
#ifndef SOCKMSG_API_H
#define SOCKMSG_API_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Marks the functions the shared library exports; everything else in the
 * library is built with hidden visibility. Expands to nothing outside the
 * library's own build (SM_BUILDING), so applications see plain declarations.
 */
#if defined(SM_BUILDING)
#define SM_API __attribute__((visibility("default")))
#else
#define SM_API
#endif

/**
 * A timeout that never expires.
 *
 * Timeouts are milliseconds: SM_FOREVER waits without a deadline, SM_NOWAIT
 * (0) tries once without waiting. A timeout covers the whole call, not each
 * syscall in it. (In an options struct a zero field means "the default"
 * instead: docs/conventions.md has the table.)
 */
#define SM_FOREVER (-1)
/** As a timeout: try once without waiting. */
#define SM_NOWAIT 0

#ifdef __cplusplus
}
#endif

#endif
