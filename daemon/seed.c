#include "daemon/seed.h"

#include <string.h>

#include "api/json.h"
#include "daemon/error.h"
#include "hvcore/error.h"
#include "hvcore/seed.h"
#include "hvcore/storage.h"

char *seed_volume_name(const char *stack_id)
{
    return g_strdup_printf("%s.seed.iso", stack_id);
}

char *seed_meta_data(const ApiStack *stack)
{
    const ApiCloudInit *cloud_init = stack->spec->cloud_init;
    g_autoptr(json_object) meta = json_object_new_object();
    json_object *hostname = NULL;

    json_object_object_add(meta, API_CLOUD_INIT_INSTANCE_ID, json_object_new_string(stack->id));
    if (!json_object_object_get_ex(cloud_init->meta_data, API_CLOUD_INIT_HOSTNAME, &hostname))
        hostname = NULL;
    json_object_object_add(meta, API_CLOUD_INIT_HOSTNAME,
                           hostname ? json_object_get(hostname)
                                    : json_object_new_string(stack->spec->name));
    json_object_object_foreach(cloud_init->meta_data, key, value)
    {
        if (strcmp(key, API_CLOUD_INIT_HOSTNAME) != 0)
            json_object_object_add(meta, key, json_object_get(value));
    }
    json_object *keys = json_object_new_array();
    for (guint i = 0; i < cloud_init->ssh_authorized_keys->len; i++)
        json_object_array_add(
            keys, json_object_new_string(g_ptr_array_index(cloud_init->ssh_authorized_keys, i)));
    json_object_object_add(meta, API_CLOUD_INIT_PUBLIC_KEYS, keys);
    return g_strconcat(json_object_to_json_string_ext(meta, JSON_C_TO_STRING_PRETTY |
                                                                JSON_C_TO_STRING_SPACED |
                                                                JSON_C_TO_STRING_NOSLASHESCAPE),
                       "\n", NULL);
}

gboolean seed_create(HvConn *conn, const ApiStack *stack, char **path, GError **error)
{
    const ApiCloudInit *cloud_init = stack->spec->cloud_init;
    g_autofree char *meta_data = seed_meta_data(stack);
    const char *user_data = cloud_init->user_data ? cloud_init->user_data : "";
    const HvSeedFile files[] = {
        {"meta-data", meta_data, strlen(meta_data)},
        {"user-data", user_data, strlen(user_data)},
    };
    g_autoptr(GError) local = NULL;
    g_autoptr(GBytes) image = hv_seed_build_iso(files, G_N_ELEMENTS(files), &local);
    if (image == NULL) {
        g_set_error(error, TD_ERROR, TD_ERROR_INTERNAL, "cannot write the cloud-init seed: %s",
                    local->message);
        return FALSE;
    }
    g_autofree char *name = seed_volume_name(stack->id);
    g_autoptr(HvUpload) upload = hv_volume_upload_begin_unhashed(conn, HV_POOL_DISKS, name, &local);
    gsize len = 0;
    const void *data = g_bytes_get_data(image, &len);
    if (upload == NULL || !hv_volume_upload_write(upload, data, len, &local) ||
        !hv_volume_upload_finish(upload, NULL, NULL, &local)) {
        g_propagate_prefixed_error(error, g_steal_pointer(&local),
                                   "cannot store the cloud-init seed: ");
        return FALSE;
    }
    *path = g_strdup(hv_upload_path(upload));
    return TRUE;
}
