/* A stack's cloud-init seed (spec member "cloud_init"): the user data, the
 * tenant's meta data and the SSH keys turtled writes into a NoCloud "cidata"
 * volume for the L1.  Bounded and checked here, as the rest of the spec:
 * every error is API_ERROR_INVALID with the field's path
 * ("cloud_init.ssh_authorized_keys[1]: ...").
 *
 * The user data often holds secrets: a stack as the API shows it (and as
 * its domain's <metadata> carries it) has only its SHA-256 and size; the
 * store keeps the bytes until the seed is written. */
#pragma once

#include <glib.h>
#include <json-c/json.h>

#define API_CLOUD_INIT_USER_DATA_MAX (64 * 1024) /* bytes */
#define API_CLOUD_INIT_META_DATA_MAX (16 * 1024) /* bytes of its compact JSON */
#define API_CLOUD_INIT_KEYS_MAX      32
#define API_CLOUD_INIT_KEY_MAX       (16 * 1024) /* bytes of one key line */

/* Meta data members turtled sets itself: the stack's id and the keys. */
#define API_CLOUD_INIT_INSTANCE_ID "instance-id"
#define API_CLOUD_INIT_HOSTNAME    "local-hostname"
#define API_CLOUD_INIT_PUBLIC_KEYS "public-keys"

typedef struct {
    char *user_data; /* "" when the request had none; NULL when a record has only its digest */
    char *user_data_sha256; /* lower-case hex of user_data's bytes ("" hashes to e3b0...) */
    gint64 user_data_bytes;
    json_object *meta_data;         /* an object, owned; never NULL */
    GPtrArray *ssh_authorized_keys; /* of char *; never NULL */
} ApiCloudInit;

ApiCloudInit *api_cloud_init_new(void);
void api_cloud_init_free(ApiCloudInit *cloud_init);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ApiCloudInit, api_cloud_init_free)
ApiCloudInit *api_cloud_init_copy(const ApiCloudInit *cloud_init);

/* Sets the user data (NULL: none, "") and its digest and size. */
void api_cloud_init_set_user_data(ApiCloudInit *cloud_init, const char *user_data);

/* "cloud_init" of a request (@record FALSE: user_data, meta_data,
 * ssh_authorized_keys) or of a stored or shown record (@record TRUE: also
 * user_data_sha256 and user_data_bytes, which stand for user data that is no
 * longer carried). */
ApiCloudInit *api_cloud_init_from_json(json_object *value, gboolean record, GError **error);

/* @with_user_data: the request and the store's form (the bytes, when
 * known); otherwise the form shown to clients (digest and size only). */
json_object *api_cloud_init_to_json(const ApiCloudInit *cloud_init, gboolean with_user_data);

/* The value rules: sizes, key lines, the meta data members turtled owns,
 * local-hostname a host name. */
gboolean api_cloud_init_validate(const ApiCloudInit *cloud_init, GError **error);

/* An OpenSSH public key line: "<type> <base64 blob> [comment]", a type
 * OpenSSH accepts, a blob that decodes and names the same type, no options
 * and no line breaks. */
gboolean api_cloud_init_check_ssh_key(const char *path, const char *key, GError **error);

/* A host name of RFC 1123: dot-separated labels of letters, digits and
 * '-', each 1-63 long and neither starting nor ending with '-'; at most
 * 253 in all. */
gboolean api_cloud_init_hostname_is_valid(const char *name);
