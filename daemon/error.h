/* turtled's GError domain.  Each code is one error of the API contract; only
 * the HTTP layer turns them into a status and an error body. */
#pragma once

#include <glib.h>

#define TD_ERROR (td_error_quark())

typedef enum {
    TD_ERROR_BAD_REQUEST,            /* 400 bad_request */
    TD_ERROR_UNAUTHORIZED,           /* 401 unauthorized */
    TD_ERROR_FORBIDDEN,              /* 403 forbidden */
    TD_ERROR_QUOTA_EXCEEDED,         /* 403 quota_exceeded */
    TD_ERROR_NOT_FOUND,              /* 404 not_found */
    TD_ERROR_METHOD_NOT_ALLOWED,     /* 405 method_not_allowed */
    TD_ERROR_CONFLICT,               /* 409 conflict */
    TD_ERROR_PAYLOAD_TOO_LARGE,      /* 413 payload_too_large */
    TD_ERROR_UNSUPPORTED_MEDIA_TYPE, /* 415 unsupported_media_type */
    TD_ERROR_INTERNAL,               /* 500 internal */
    TD_ERROR_UNAVAILABLE,            /* 503 unavailable */
    /* Appended, not sorted in: codes keep their values for code built before. */
    TD_ERROR_LENGTH_REQUIRED,     /* 411 length_required */
    TD_ERROR_NO_CAPACITY,         /* 409 no_capacity: a device class has no free device */
    TD_ERROR_PRECONDITION_FAILED, /* 412 precondition_failed: If-Match names an old ETag */
    TD_ERROR_GONE,                /* 410 gone: an event cursor older than the ring */
    TD_ERROR_REQUEST_TIMEOUT,     /* 408 request_timeout: headers or body too slow */
    TD_ERROR_TOO_MANY_REQUESTS,   /* 429 too_many_requests: a per-client limit */
    TD_ERROR_URI_TOO_LONG,        /* 414 uri_too_long */
    TD_ERROR_HEADERS_TOO_LARGE,   /* 431 headers_too_large */
    TD_ERROR_NOT_IMPLEMENTED,     /* 501 not_implemented: an unknown transfer coding */
    TD_ERROR_HTTP_VERSION,        /* 505 http_version_not_supported */
} TdErrorCode;

GQuark td_error_quark(void);
