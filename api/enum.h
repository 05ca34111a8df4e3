/* Enums on the wire: one table per enum maps its values to their wire names,
 * so that encoding, decoding and the "must be one of" message all read the
 * same list. */
#pragma once

#include <glib.h>

/* A table lists every value once, in the order messages name them, and ends
 * with {0, NULL}.  Values need not be contiguous. */
typedef struct {
    int value;
    const char *name;
} ApiEnumName;

/* The wire name of @value; "unknown" for a value outside @table. */
const char *api_enum_to_string(const ApiEnumName *table, int value);

/* Exact wire names only (no case folding, no prefixes); NULL @text is
 * refused.  *@value is written only on success. */
gboolean api_enum_from_string(const ApiEnumName *table, const char *text, int *value);

/* api_enum_from_string for a decoder: otherwise API_ERROR_INVALID
 * "<path>: must be one of <names, in table order>", as api_json_check_choice
 * words it. */
gboolean api_enum_check(const char *path, const ApiEnumName *table, const char *text, int *value,
                        GError **error);
