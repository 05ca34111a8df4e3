/* libvirt reachability as turtled's errors. */
#include "daemon/connection.h"

#include "daemon/error.h"
#include "hvcore/error.h"
#include "hvcore/virt.h"

HvConn *connection_get(App *app, GError **error)
{
    g_autoptr(GError) local = NULL;
    HvConn *conn = hv_virt_get_connection(app->virt, &local);
    if (conn == NULL)
        g_set_error_literal(error, TD_ERROR, TD_ERROR_UNAVAILABLE, local->message);
    return conn;
}

gboolean connection_failed(App *app, HvConn *conn, GError **error)
{
    g_return_val_if_fail(error != NULL && *error != NULL, FALSE);
    GError *original = *error;

    if (conn != NULL && hv_virt_report_failure(app->virt, conn)) {
        *error = g_error_new(TD_ERROR, TD_ERROR_UNAVAILABLE, "libvirt is unreachable (%s): %s",
                             hv_virt_get_uri(app->virt), original->message);
        g_error_free(original);
        return TRUE;
    }
    if (original->domain != HV_ERROR)
        return FALSE;
    TdErrorCode code = TD_ERROR_INTERNAL;
    switch ((HvErrorCode)original->code) {
    case HV_ERROR_INVALID:
    case HV_ERROR_UNSUPPORTED:
        code = TD_ERROR_BAD_REQUEST;
        break;
    case HV_ERROR_NOT_FOUND:
        code = TD_ERROR_NOT_FOUND;
        break;
    case HV_ERROR_FAILED:
    case HV_ERROR_LIBVIRT:
        break;
    }
    *error = g_error_new_literal(TD_ERROR, code, original->message);
    g_error_free(original);
    return FALSE;
}
