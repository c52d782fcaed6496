/* Error messages and names. Library codes come from the X-macro table in
 * error.h; errno values use glibc's static, thread-safe descriptions. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sockmsg/error.h>
#include <sockmsg/sockmsg.h>

#include "internal.h"

const char *
sm_strerror(int err)
{
    if (err >= 0) return "success";
    switch (err) {
#define SM__ERR_MSG(name, value, msg)                                                              \
    case name:                                                                                     \
        return msg;
        SM_ERR_TABLE(SM__ERR_MSG)
#undef SM__ERR_MSG
    default:
        break;
    }
    /* strerrordesc_np returns a static string (no locale buffer), so this stays
     * thread-safe, which strerror(3) is not. */
    const char *s = err > -4096 ? strerrordesc_np(-err) : NULL;
    return s ? s : "unknown error";
}

const char *
sm_err_name(int err)
{
    if (err >= 0) return "OK";
    switch (err) {
#define SM__ERR_NAME(name, value, msg)                                                             \
    case name:                                                                                     \
        return #name;
        SM_ERR_TABLE(SM__ERR_NAME)
#undef SM__ERR_NAME
    default:
        break;
    }
    const char *s = err > -4096 ? strerrorname_np(-err) : NULL;
    return s ? s : "E?";
}

/* Compiled into the library: what the library's build said, whatever the
 * headers of the program calling it say. */
const char *
sm_version(void)
{
    return SM_VERSION_STRING;
}

int
sm_version_number(void)
{
    return SM_VERSION_NUMBER;
}

int
sm__why(char *why, size_t why_len, int err, const char *fmt, ...)
{
    if (why && why_len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, why_len, fmt, ap);
        va_end(ap);
    }
    return err;
}
