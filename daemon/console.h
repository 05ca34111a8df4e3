/* A stack's serial console log, as QEMU (through libvirt) appends the L1's
 * serial output to a file: its tail, and a stream that follows it for
 * GET /v1/stacks/{name}/console.  Invalid UTF-8 (serial lines carry noise)
 * is replaced by U+FFFD so the text is always what its content type says. */
#pragma once

#include "daemon/http.h"

#include <glib.h>

#define CONSOLE_TAIL_MAX_BYTES (1024 * 1024)

/* The last @lines lines of @path (all of it when @lines is 0), never more than
 * the last CONSOLE_TAIL_MAX_BYTES; a missing file reads as "" (the domain has
 * not written yet).  Other failures are TD_ERROR_INTERNAL. */
char *console_tail(const char *path, guint lines, GError **error);

/* A streamed "text/plain; charset=utf-8" reply (http_reply_stream): the tail
 * as console_tail, then new bytes as they are appended, until the client
 * leaves, the server stops, or @still_allowed(@data) returns FALSE (asked
 * about once a second: the token was revoked, the stack deleted).  A file that
 * does not exist yet is waited for; one that shrinks or is replaced (new
 * inode) is read again from its start.  @free_data frees @data when the
 * stream ends. */
HttpReply *console_follow(const char *path, guint lines, gboolean (*still_allowed)(gpointer data),
                          gpointer data, GDestroyNotify free_data);
