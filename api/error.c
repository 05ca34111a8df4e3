#include "api/error.h"

GQuark api_error_quark(void)
{
    return g_quark_from_static_string("api-error-quark");
}
