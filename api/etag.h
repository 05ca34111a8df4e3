/* Entity tags of API resources (RFC 9110 8.8.3): one strong tag per
 * representation, so that a client can tell whether what it read is still
 * current (If-None-Match) and refuse to overwrite what changed since
 * (If-Match). */
#pragma once

#include <glib.h>
#include <json-c/json.h>

/* Hex digits of SHA-256 kept in a tag: 128 bits, far beyond any chance of
 * two representations of one resource sharing a tag. */
#define API_ETAG_HEX_LEN 32

/* The strong tag of @representation (the JSON a GET shows), quoted as the
 * ETag header carries it: "\"<32 hex digits>\"".  The same members give the
 * same tag whatever their order. */
char *api_etag(json_object *representation);
