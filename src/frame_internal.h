/* Private to the framing module (frame.c, frame_spec.c). */
#ifndef SM_FRAME_INTERNAL_H
#define SM_FRAME_INTERNAL_H

#include <sockmsg/frame.h>

/* Write the spec string of one basic codec ("len16be,adjust=2", "ascii:5",
 * "delim:\r\n" spelled as "crlf") without max= or oversize=. Returns the
 * length it needs (like snprintf); out is NUL-terminated when out_len > 0. */
size_t sm__frame_basic_format(const sm_frame_basic *b, char *out, size_t out_len);

#endif
