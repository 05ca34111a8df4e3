/* The error body of every failed request:
 * {"error": {"status": 404, "code": "not_found", "message": "stack 'web' not found"}} */
#pragma once

#include <glib.h>
#include <json-c/json.h>

/* Messages are cut to this many bytes (plus an ellipsis). */
#define API_ERROR_MESSAGE_MAX 256

/* A NULL @message encodes as ""; see api_error_message_clean for the rest. */
json_object *api_error_body_to_json(int status, const char *code, const char *message);
/* @message made safe to show: bytes that are not valid UTF-8 and control
 * characters become "\xNN", and the text is cut at a character boundary to
 * API_ERROR_MESSAGE_MAX bytes, ending in "..." when it was cut.  Messages quote
 * what a client sent (a path, a name, a header), which may be any bytes. */
char *api_error_message_clean(const char *message);
/* For clients: reads an error body strictly (status 400..599, code a
 * non-empty string, message a string, nothing else).  Each output may be
 * NULL; the strings are new (the caller frees them) and the outputs are only
 * written on success. */
gboolean api_error_body_from_json(json_object *value, int *status, char **code, char **message,
                                  GError **error);
