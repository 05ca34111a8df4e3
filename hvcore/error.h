/* libhvcore's GError domain. */
#pragma once

#include <glib.h>

#define HV_ERROR (hv_error_quark())

typedef enum {
    HV_ERROR_FAILED,      /* anything without a better code */
    HV_ERROR_INVALID,     /* the caller passed something unusable */
    HV_ERROR_UNSUPPORTED, /* this host cannot do what was asked */
    HV_ERROR_NOT_FOUND,   /* a file, device or domain is missing */
    HV_ERROR_LIBVIRT,     /* libvirt refused or is unreachable */
} HvErrorCode;

GQuark hv_error_quark(void);
