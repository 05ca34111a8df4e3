#include "api/enum.h"

#include <string.h>

#include "api/json.h"

const char *api_enum_to_string(const ApiEnumName *table, int value)
{
    g_return_val_if_fail(table != NULL, "unknown");

    for (const ApiEnumName *entry = table; entry->name; entry++) {
        if (entry->value == value)
            return entry->name;
    }
    return "unknown";
}

gboolean api_enum_from_string(const ApiEnumName *table, const char *text, int *value)
{
    g_return_val_if_fail(table != NULL, FALSE);
    g_return_val_if_fail(value != NULL, FALSE);

    for (const ApiEnumName *entry = table; text && entry->name; entry++) {
        if (strcmp(text, entry->name) == 0) {
            *value = entry->value;
            return TRUE;
        }
    }
    return FALSE;
}

gboolean api_enum_check(const char *path, const ApiEnumName *table, const char *text, int *value,
                        GError **error)
{
    g_return_val_if_fail(table != NULL, FALSE);

    if (api_enum_from_string(table, text, value))
        return TRUE;
    /* Reuse check_choice for the message so every "must be one of" reads alike. */
    g_autoptr(GPtrArray) names = g_ptr_array_new();
    for (const ApiEnumName *entry = table; entry->name; entry++)
        g_ptr_array_add(names, (gpointer)entry->name);
    g_ptr_array_add(names, NULL);
    return api_json_check_choice(path, text, (const char *const *)names->pdata, error);
}
