#include "hvcore/conn.h"

#include <stdarg.h>

#include "hvcore/error.h"
#include "hvcore/libvirt-private.h"

HvConn *hv_conn_wrap(virConnectPtr ptr)
{
    if (ptr == NULL)
        return NULL;
    HvConn *conn = g_new0(HvConn, 1);
    g_atomic_int_set(&conn->refs, 1);
    conn->ptr = ptr;
    return conn;
}

HvConn *hv_conn_open(const char *uri, GError **error)
{
    g_return_val_if_fail(uri != NULL, NULL);
    virConnectPtr ptr = virConnectOpen(uri);
    if (ptr == NULL) {
        g_set_error_literal(error, HV_ERROR, HV_ERROR_LIBVIRT, virGetLastErrorMessage());
        return NULL;
    }
    return hv_conn_wrap(ptr);
}

HvConn *hv_conn_ref(HvConn *conn)
{
    g_return_val_if_fail(conn != NULL, NULL);
    g_atomic_int_inc(&conn->refs);
    return conn;
}

void hv_conn_unref(HvConn *conn)
{
    if (conn == NULL || !g_atomic_int_dec_and_test(&conn->refs))
        return;
    virConnectClose(conn->ptr);
    g_free(conn);
}

int hv_libvirt_error_code(void)
{
    switch (virGetLastErrorCode()) {
    case VIR_ERR_NO_DOMAIN:
    case VIR_ERR_NO_NETWORK:
    case VIR_ERR_NO_NWFILTER:
    case VIR_ERR_NO_STORAGE_POOL:
    case VIR_ERR_NO_STORAGE_VOL:
    case VIR_ERR_NO_INTERFACE:
        return HV_ERROR_NOT_FOUND;
    case VIR_ERR_NO_SUPPORT:
        return HV_ERROR_UNSUPPORTED;
    default:
        return HV_ERROR_LIBVIRT;
    }
}

void hv_libvirt_set_error(GError **error, const char *format, ...)
{
    va_list args;
    const char *message = virGetLastErrorMessage();

    va_start(args, format);
    g_autofree char *what = g_strdup_vprintf(format, args);
    va_end(args);
    g_set_error(error, HV_ERROR, hv_libvirt_error_code(), "%s: %s", what,
                message ? message : "unknown libvirt error");
}
