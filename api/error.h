/* libapi's GError domain: problems with what arrived on the wire. */
#pragma once

#include <glib.h>

#define API_ERROR (api_error_quark())

typedef enum {
    API_ERROR_PARSE,   /* not JSON, too deep, trailing garbage */
    API_ERROR_INVALID, /* JSON, but not what the contract allows; message names the field */
} ApiErrorCode;

GQuark api_error_quark(void);
