/* A very small HTTP/1.0 responder shared by the HOWTO server example and the
 * demo: enough HTTP to answer the HOWTO's client, nothing more. */
#ifndef SM_EXAMPLE_HTTP_TINY_H
#define SM_EXAMPLE_HTTP_TINY_H

/* Serve one request on a connected fd, then close it (the fd is taken).
 * Reads the request head (framed by the blank line that ends it), answers
 * "200 OK" with a text body naming the path, half-closes and closes.
 * Returns 0, or a negative sockmsg error. */
int http_tiny_serve(int fd);

#endif
