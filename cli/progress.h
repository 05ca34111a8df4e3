/* Waiting for an operation: the generic --wait of every async verb.  It
 * long-polls GET /v1/operations/{id}/wait in short rounds so that it can
 * show progress on stderr: on a terminal a bar redrawn on one line
 * ("[#####     ] 50% stage"), otherwise a plain line whenever the status,
 * percent or stage changes. */
#pragma once

#include <stdio.h>

#include <glib.h>
#include <json-c/json.h>

#include "api/operation.h"
#include "cli/client.h"

typedef enum {
    PROGRESS_NONE,  /* quiet */
    PROGRESS_LINES, /* a line per change */
    PROGRESS_BAR,   /* a bar redrawn in place */
} ProgressStyle;

/* Waits until the operation @id is final or @timeout_s seconds pass
 * (negative: no limit).  On TRUE, *body is the last answer
 * ({"operation": {...}}) and *operation its decoded operation, final or
 * not: the caller tells a timeout by its status. */
gboolean progress_wait(Client *client, const char *id, gint64 timeout_s, ProgressStyle style,
                       FILE *out, json_object **body, ApiOperation **operation, GError **error);

/* "[#####     ] 50% stage" (bar) or "running 50% stage" (line). */
char *progress_format(const ApiOperation *operation, gboolean bar);

/* Bytes on their way (an upload): on a terminal a bar redrawn in place
 * ("[#####     ]  50% 12.0 MiB of 24.0 MiB"), otherwise a line at every
 * tenth of the way ("LABEL: 50% (12.0 MiB of 24.0 MiB)"); nothing until
 * the first byte has gone. */
typedef struct ProgressBytes ProgressBytes;

/* "512 bytes", "12.0 MiB": binary units, plain ASCII. */
char *progress_size(gint64 bytes);

ProgressBytes *progress_bytes_new(ProgressStyle style, FILE *out, const char *label, gint64 total);
void progress_bytes_update(ProgressBytes *progress, gint64 done);
/* Ends the bar's line; frees. */
void progress_bytes_free(ProgressBytes *progress);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ProgressBytes, progress_bytes_free)
