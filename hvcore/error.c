#include "hvcore/error.h"

GQuark hv_error_quark(void)
{
    return g_quark_from_static_string("hv-error-quark");
}
