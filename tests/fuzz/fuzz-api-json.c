/* Every JSON decoder of api/ on the same parsed input.  What a decoder
 * accepts must survive encode -> decode: full records (everything required
 * on the wire) encode back to exactly the input; the others are idempotent
 * (the second encoding equals the first). */
#include <string.h>

#include "api/device.h"
#include "api/error_body.h"
#include "api/host.h"
#include "api/image.h"
#include "api/json.h"
#include "api/network.h"
#include "api/operation.h"
#include "api/peer.h"
#include "api/spec.h"
#include "api/stack.h"
#include "api/stats.h"
#include "api/tenant.h"
#include "tests/fuzz/fuzz-util.h"

/* decode -> encode must give back @input exactly, and decoding that again
 * must succeed. */
#define EXACT(input, type, decode, encode, free_fn)                                                \
    do {                                                                                           \
        type *first = decode(input, NULL);                                                         \
        if (first == NULL)                                                                         \
            break;                                                                                 \
        g_autoptr(json_object) encoded = encode(first);                                            \
        fuzz_check_json_equal(#decode " then " #encode, input, encoded);                           \
        type *second = decode(encoded, NULL);                                                      \
        FUZZ_CHECK(second != NULL, #decode " refuses its own encoding %s",                         \
                   fuzz_json_text(encoded));                                                       \
        free_fn(second);                                                                           \
        free_fn(first);                                                                            \
    } while (0)

/* decode -> encode -> decode -> encode: both encodings equal. */
#define IDEMPOTENT(input, type, decode, encode, free_fn)                                           \
    do {                                                                                           \
        type *first = decode(input, NULL);                                                         \
        if (first == NULL)                                                                         \
            break;                                                                                 \
        g_autoptr(json_object) once = encode(first);                                               \
        type *second = decode(once, NULL);                                                         \
        FUZZ_CHECK(second != NULL, #decode " refuses its own encoding %s", fuzz_json_text(once));  \
        g_autoptr(json_object) twice = encode(second);                                             \
        fuzz_check_json_equal(#encode " twice", once, twice);                                      \
        free_fn(second);                                                                           \
        free_fn(first);                                                                            \
    } while (0)

static json_object *quota_to_json(const ApiQuota *quota)
{
    json_object *object = json_object_new_object();
    json_object_object_add(object, "stacks", json_object_new_int64(quota->stacks));
    json_object_object_add(object, "vcpus", json_object_new_int64(quota->vcpus));
    json_object_object_add(object, "memory_mib", json_object_new_int64(quota->memory_mib));
    json_object_object_add(object, "disk_gib", json_object_new_int64(quota->disk_gib));
    json_object_object_add(object, "devices", json_object_new_int64(quota->devices));
    json_object_object_add(object, "networks", json_object_new_int64(quota->networks));
    return object;
}

static json_object *object_with(const char *key, json_object *value)
{
    json_object *object = json_object_new_object();
    json_object_object_add(object, key, value);
    return object;
}

static void check_quota_equal(const char *what, const ApiQuota *a, const ApiQuota *b)
{
    FUZZ_CHECK(memcmp(a, b, sizeof(*a)) == 0, "%s: quotas differ", what);
}

/* The create bodies fill only part of a record: rebuild the body from it. */
static void check_tenant_create(json_object *input)
{
    g_autoptr(ApiTenant) tenant = api_tenant_create_from_json(input, NULL);
    if (tenant == NULL)
        return;
    g_autoptr(json_object) body = object_with("name", json_object_new_string(tenant->name));
    json_object_object_add(body, "quota", quota_to_json(&tenant->quota));
    g_autoptr(ApiTenant) again = api_tenant_create_from_json(body, NULL);
    FUZZ_CHECK(again != NULL, "tenant create refuses %s", fuzz_json_text(body));
    FUZZ_CHECK(g_str_equal(tenant->name, again->name), "tenant create: name differs");
    check_quota_equal("tenant create", &tenant->quota, &again->quota);
}

static void check_tenant_patch(json_object *input)
{
    ApiQuota quota = {1, 2, 3, 4, 5, 6};
    if (!api_tenant_patch_from_json(input, &quota, NULL)) {
        ApiQuota untouched = {1, 2, 3, 4, 5, 6};
        check_quota_equal("refused patch changed the quota", &quota, &untouched);
        return;
    }
    g_autoptr(json_object) body = object_with("quota", quota_to_json(&quota));
    ApiQuota again = {6, 7, 8, 9, 10, 11};
    FUZZ_CHECK(api_tenant_patch_from_json(body, &again, NULL), "patch refuses %s",
               fuzz_json_text(body));
    check_quota_equal("tenant patch", &quota, &again);
}

static void check_image_create(json_object *input)
{
    g_autoptr(ApiImage) image = api_image_create_from_json(input, NULL);
    if (image == NULL)
        return;
    g_autoptr(json_object) body = object_with("name", json_object_new_string(image->name));
    json_object_object_add(body, "kind",
                           json_object_new_string(api_image_kind_to_string(image->kind)));
    json_object_object_add(body, "format",
                           json_object_new_string(api_image_format_to_string(image->format)));
    g_autoptr(ApiImage) again = api_image_create_from_json(body, NULL);
    FUZZ_CHECK(again != NULL, "image create refuses %s", fuzz_json_text(body));
    FUZZ_CHECK(g_str_equal(image->name, again->name) && image->kind == again->kind &&
                   image->format == again->format,
               "image create: fields differ");
}

static void check_peer_create(json_object *input)
{
    g_autoptr(ApiPeer) peer = api_peer_create_from_json(input, NULL);
    if (peer == NULL)
        return;
    g_autoptr(json_object) body = object_with("name", json_object_new_string(peer->name));
    json_object_object_add(body, "libvirt_uri", json_object_new_string(peer->libvirt_uri));
    json_object_object_add(body, "migrate_uri", api_json_new_string_or_null(peer->migrate_uri));
    g_autoptr(ApiPeer) again = api_peer_create_from_json(body, NULL);
    FUZZ_CHECK(again != NULL, "peer create refuses %s", fuzz_json_text(body));
    FUZZ_CHECK(g_str_equal(peer->name, again->name) &&
                   g_str_equal(peer->libvirt_uri, again->libvirt_uri) &&
                   g_strcmp0(peer->migrate_uri, again->migrate_uri) == 0,
               "peer create: fields differ");
}

/* Decoders that return one string: {"<key>": value} must give it back. */
/* A class create body rebuilt from what it decoded to decodes the same. */
static void check_device_class_create(json_object *input)
{
    g_autoptr(ApiDeviceClass) device_class = api_device_class_create_from_json(input, NULL);
    if (device_class == NULL)
        return;
    gboolean vfio = g_str_equal(device_class->kind, "vfio");
    g_autoptr(json_object) body = object_with("name", json_object_new_string(device_class->name));
    json_object_object_add(body, "kind", json_object_new_string(device_class->kind));
    if (vfio) {
        json_object *addresses = json_object_new_array();
        for (guint i = 0; i < device_class->addresses->len; i++)
            json_object_array_add(
                addresses, json_object_new_string(g_ptr_array_index(device_class->addresses, i)));
        json_object_object_add(body, "addresses", addresses);
        json_object_object_add(body, "force", json_object_new_boolean(device_class->force));
    } else {
        json_object_object_add(body, "model", json_object_new_string(device_class->model));
        json_object_object_add(body, "capacity", json_object_new_int64(device_class->capacity));
    }
    if (device_class->description)
        json_object_object_add(body, "description",
                               json_object_new_string(device_class->description));
    g_autoptr(ApiDeviceClass) again = api_device_class_create_from_json(body, NULL);
    FUZZ_CHECK(again != NULL, "device class create refuses %s", fuzz_json_text(body));
    /* The server stamps these; a decoded request has none. */
    device_class->created_at = g_strdup("t");
    device_class->updated_at = g_strdup("t");
    again->created_at = g_strdup("t");
    again->updated_at = g_strdup("t");
    g_autoptr(json_object) once = api_device_class_to_json(device_class);
    g_autoptr(json_object) twice = api_device_class_to_json(again);
    fuzz_check_json_equal("device class create", once, twice);
}

static void check_string_body(json_object *input, const char *key,
                              char *(*decode)(json_object *, GError **))
{
    g_autofree char *value = decode(input, NULL);
    if (value == NULL)
        return;
    g_autoptr(json_object) body = object_with(key, json_object_new_string(value));
    g_autofree char *again = decode(body, NULL);
    FUZZ_CHECK(again != NULL && g_str_equal(value, again), "%s: %s does not decode back", key,
               fuzz_json_text(body));
}

static void check_error_body(json_object *input)
{
    int status = 0;
    g_autofree char *code = NULL, *message = NULL;
    if (!api_error_body_from_json(input, &status, &code, &message, NULL))
        return;
    g_autoptr(json_object) encoded = api_error_body_to_json(status, code, message);
    /* The encoder shows control bytes as \xNN and cuts long messages
     * (api_error_message_clean); any other message comes back as it was. */
    g_autofree char *clean = api_error_message_clean(message);
    if (g_str_equal(clean, message)) {
        fuzz_check_json_equal("error body", input, encoded);
        return;
    }
    g_autofree char *message_out = NULL;
    FUZZ_CHECK(api_error_body_from_json(encoded, NULL, NULL, &message_out, NULL) &&
                   g_str_equal(message_out, clean),
               "error body: the message %s was not cleaned", fuzz_json_text(input));
}

typedef GPtrArray *(*ListDecode)(json_object *value, char **next, GError **error);
typedef json_object *(*ListEncode)(const GPtrArray *items, const char *next);

/* A page ({"ITEMS": [...], "next": CURSOR|null}) the decoder accepts encodes
 * to one it accepts again, which encodes the same. */
static void check_list(const char *what, json_object *input, ListDecode decode, ListEncode encode)
{
    g_autofree char *next = NULL;
    g_autoptr(GPtrArray) items = decode(input, &next, NULL);
    if (items == NULL)
        return;
    g_autoptr(json_object) once = encode(items, next);
    g_autofree char *next2 = NULL;
    g_autoptr(GPtrArray) again = decode(once, &next2, NULL);
    FUZZ_CHECK(again != NULL, "%s refuses %s", what, fuzz_json_text(once));
    g_autoptr(json_object) twice = encode(again, next2);
    fuzz_check_json_equal(what, once, twice);
}

static void check_lists(json_object *input)
{
    check_list("image list", input, api_image_list_from_json, api_image_list_to_json);
    check_list("peer list", input, api_peer_list_from_json, api_peer_list_to_json);
    check_list("stack list", input, api_stack_list_from_json, api_stack_list_to_json);
    check_list("tenant list", input, api_tenant_list_from_json, api_tenant_list_to_json);
    check_list("token list", input, api_token_list_from_json, api_token_list_to_json);
    check_list("network list", input, api_network_list_from_json, api_network_list_to_json);
    check_list("operation list", input, api_operation_list_from_json, api_operation_list_to_json);
}

/* What the create decoder accepts, written back as a client would, is
 * accepted again with the same fields. */
static void check_network_create(json_object *input)
{
    g_autoptr(ApiNetwork) network = api_network_create_from_json(input, NULL);
    if (network == NULL)
        return;
    g_autoptr(json_object) body = object_with("name", json_object_new_string(network->name));
    json_object_object_add(body, "mode", json_object_new_string(network->mode));
    if (network->cidr)
        json_object_object_add(body, "cidr", json_object_new_string(network->cidr));
    if (network->bridge)
        json_object_object_add(body, "bridge", json_object_new_string(network->bridge));
    if (network->shared_with->len > 0) {
        json_object *shared = json_object_new_array();
        for (guint i = 0; i < network->shared_with->len; i++)
            json_object_array_add(
                shared, json_object_new_string(g_ptr_array_index(network->shared_with, i)));
        json_object_object_add(body, "shared_with", shared);
    }
    g_autoptr(ApiNetwork) again = api_network_create_from_json(body, NULL);
    FUZZ_CHECK(again != NULL, "network create refuses %s", fuzz_json_text(body));
    FUZZ_CHECK(g_str_equal(network->name, again->name) && g_str_equal(network->mode, again->mode) &&
                   g_strcmp0(network->cidr, again->cidr) == 0 &&
                   g_strcmp0(network->bridge, again->bridge) == 0 &&
                   network->shared_with->len == again->shared_with->len,
               "network create: fields differ");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_autoptr(json_object) input =
        api_json_parse((const char *)data, size, API_JSON_MAX_DEPTH, NULL);
    if (input == NULL)
        return 0;

    EXACT(input, ApiTenant, api_tenant_from_json, api_tenant_to_json, api_tenant_free);
    EXACT(input, ApiToken, api_token_from_json, api_token_to_json, api_token_free);
    EXACT(input, ApiImage, api_image_from_json, api_image_to_json, api_image_free);
    EXACT(input, ApiOperation, api_operation_from_json, api_operation_to_json, api_operation_free);
    EXACT(input, ApiPeer, api_peer_from_json, api_peer_to_json, api_peer_free);
    EXACT(input, ApiHost, api_host_from_json, api_host_to_json, api_host_free);
    EXACT(input, ApiNetwork, api_network_from_json, api_network_to_json, api_network_free);
    EXACT(input, ApiStackStats, api_stack_stats_from_json, api_stack_stats_to_json,
          api_stack_stats_free);
    EXACT(input, ApiStackStats, api_stack_stats_body_from_json, api_stack_stats_body_to_json,
          api_stack_stats_free);
    /* Optional members (cpu, iommu, start, devices) come back with their defaults. */
    IDEMPOTENT(input, ApiStackSpec, api_stack_spec_from_json, api_stack_spec_to_json,
               api_stack_spec_free);
    IDEMPOTENT(input, ApiStack, api_stack_from_json, api_stack_to_json, api_stack_free);

    check_tenant_create(input);
    check_tenant_patch(input);
    check_image_create(input);
    check_peer_create(input);
    check_device_class_create(input);
    check_network_create(input);
    check_string_body(input, "class", api_device_attach_from_json);
    check_string_body(input, "action", api_stack_action_from_json);
    check_string_body(input, "peer", api_stack_migrate_from_json);
    check_error_body(input);
    check_lists(input);
    return 0;
}
