/* sockmsg — shared definitions for every public header.
 *
 * SM_API marks the functions the shared library exports; everything else is
 * built with hidden visibility.
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

#if defined(SM_BUILDING)
#define SM_API __attribute__((visibility("default")))
#else
#define SM_API
#endif

/* Timeouts are milliseconds: SM_FOREVER waits without a deadline, SM_NOWAIT
 * (0) tries once without waiting. A timeout covers the whole call, not each
 * syscall in it. (In an options struct a zero field means "the default"
 * instead: docs/conventions.md has the table.) */
#define SM_FOREVER (-1)
#define SM_NOWAIT  0

#ifdef __cplusplus
}
#endif

#endif
