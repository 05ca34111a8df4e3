/* The error body of every failed request:
 * {"error": {"status": 404, "code": "not_found", "message": "stack 'web' not found"}} */
#pragma once

#include <glib.h>
#include <json-c/json.h>

/* A NULL @message encodes as ""; invalid UTF-8 in it becomes U+FFFD. */
json_object *api_error_body_to_json(int status, const char *code, const char *message);
/* For clients: reads an error body strictly (status 400..599, code a
 * non-empty string, message a string, nothing else).  Each output may be
 * NULL; the strings are new (the caller frees them) and the outputs are only
 * written on success. */
gboolean api_error_body_from_json(json_object *value, int *status, char **code, char **message,
                                  GError **error);
