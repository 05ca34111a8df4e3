#include "api/peer.h"

#include <string.h>

#include "api/error.h"
#include "api/json.h"

static const char *const peer_keys[] = {"name", "libvirt_uri", "migrate_uri", "created_at", NULL};
static const char *const create_keys[] = {"name", "libvirt_uri", "migrate_uri", NULL};
/* Stacks are QEMU domains; test:///default is the test backend's. */
static const char *const drivers[] = {"qemu", "test", NULL};
/* libvirt's remote transports (libvirt.org/uri.html). */
static const char *const transports[] = {"tcp",     "tls",  "ssh", "libssh",
                                         "libssh2", "unix", "ext", NULL};
static const char *const migrate_schemes[] = {"tcp", "rdma", NULL};

/* ---- lifetime ----------------------------------------------------------------- */

ApiPeer *api_peer_new(void)
{
    return g_new0(ApiPeer, 1);
}

ApiPeer *api_peer_copy(const ApiPeer *peer)
{
    if (!peer)
        return NULL;
    ApiPeer *copy = api_peer_new();
    copy->name = g_strdup(peer->name);
    copy->libvirt_uri = g_strdup(peer->libvirt_uri);
    copy->migrate_uri = g_strdup(peer->migrate_uri);
    copy->created_at = g_strdup(peer->created_at);
    return copy;
}

void api_peer_free(ApiPeer *peer)
{
    if (!peer)
        return;
    g_free(peer->name);
    g_free(peer->libvirt_uri);
    g_free(peer->migrate_uri);
    g_free(peer->created_at);
    g_free(peer);
}

/* ---- value rules ---------------------------------------------------------------- */

/* Length and characters, before any parser sees the text: a URI with a
 * space or a newline would reach libvirt or a log line as two things. */
static gboolean check_uri_text(const char *path, const char *uri, GError **error)
{
    if (!uri) {
        api_json_set_invalid(error, path, "is required");
        return FALSE;
    }
    if (strlen(uri) > API_PEER_URI_MAX) {
        api_json_set_invalid(error, path, "must be at most %d characters", API_PEER_URI_MAX);
        return FALSE;
    }
    for (const unsigned char *p = (const unsigned char *)uri; *p; p++) {
        if (*p <= 0x20 || *p >= 0x7f) {
            api_json_set_invalid(
                error, path, "must be printable ASCII without spaces (percent-encode the rest)");
            return FALSE;
        }
    }
    return TRUE;
}

/* GUri in strict mode, with the password split out so that we can refuse it. */
static GUri *parse_uri(const char *path, const char *uri, const char *example, GError **error)
{
    g_autoptr(GError) local = NULL;
    GUri *parsed = g_uri_parse(uri, G_URI_FLAGS_HAS_PASSWORD | G_URI_FLAGS_ENCODED, &local);
    if (!parsed) {
        api_json_set_invalid(error, path, "must be a URI like %s (%s)", example, local->message);
        return NULL;
    }
    return parsed;
}

/* The scheme as written (GUri lower-cases it): "" when there is no ':'. */
static char *raw_scheme(const char *uri)
{
    const char *colon = strchr(uri, ':');
    return g_strndup(uri, colon ? (gsize)(colon - uri) : 0);
}

gboolean api_peer_check_libvirt_uri(const char *path, const char *uri, GError **error)
{
    static const char example[] = "qemu+tcp://HOST/system";

    if (!check_uri_text(path, uri, error))
        return FALSE;
    g_autofree char *scheme = raw_scheme(uri);
    char *plus = strchr(scheme, '+');
    if (plus)
        *plus = '\0';
    if (!g_strv_contains(drivers, scheme) || (plus && !g_strv_contains(transports, plus + 1))) {
        g_autofree char *driver_list = g_strjoinv(", ", (char **)drivers);
        g_autofree char *transport_list = g_strjoinv(", ", (char **)transports);
        api_json_set_invalid(error, path,
                             "must be a libvirt URI like %s: the scheme is DRIVER or "
                             "DRIVER+TRANSPORT, with DRIVER one of %s and TRANSPORT one of %s",
                             example, driver_list, transport_list);
        return FALSE;
    }
    g_autoptr(GUri) parsed = parse_uri(path, uri, example, error);
    if (!parsed)
        return FALSE;
    /* "qemu:system" has no "//": libvirt would not read it as a connection. */
    if (!g_uri_get_host(parsed)) {
        api_json_set_invalid(
            error, path, "must be a libvirt URI like %s, with \"//\" after the scheme", example);
        return FALSE;
    }
    /* The store and the API would hand a secret out to anyone who lists peers. */
    if (g_uri_get_password(parsed)) {
        api_json_set_invalid(error, path, "must not carry a password");
        return FALSE;
    }
    return TRUE;
}

gboolean api_peer_check_migrate_uri(const char *path, const char *uri, GError **error)
{
    static const char example[] = "tcp://HOST[:PORT] or rdma://HOST[:PORT]";

    if (!check_uri_text(path, uri, error))
        return FALSE;
    g_autofree char *scheme = raw_scheme(uri);
    if (!g_strv_contains(migrate_schemes, scheme)) {
        api_json_set_invalid(error, path, "must be %s", example);
        return FALSE;
    }
    g_autoptr(GUri) parsed = parse_uri(path, uri, example, error);
    if (!parsed)
        return FALSE;
    const char *host = g_uri_get_host(parsed);
    int port = g_uri_get_port(parsed);
    if (!host || !*host || g_uri_get_userinfo(parsed) || *g_uri_get_path(parsed) ||
        g_uri_get_query(parsed) || g_uri_get_fragment(parsed) || port == 0 ||
        g_str_has_suffix(uri, ":")) {
        api_json_set_invalid(error, path, "must be %s, nothing more", example);
        return FALSE;
    }
    return TRUE;
}

static gboolean check_peer(const ApiPeer *peer, GError **error)
{
    return api_json_check_name("name", peer->name, error) &&
           api_peer_check_libvirt_uri("libvirt_uri", peer->libvirt_uri, error) &&
           (!peer->migrate_uri ||
            api_peer_check_migrate_uri("migrate_uri", peer->migrate_uri, error));
}

/* ---- JSON ------------------------------------------------------------------------ */

ApiPeer *api_peer_create_from_json(json_object *value, GError **error)
{
    g_autoptr(ApiPeer) peer = api_peer_new();

    if (!api_json_check_object(value, "", create_keys, error) ||
        !api_json_get_string(value, "", "name", API_JSON_REQUIRED, &peer->name, error) ||
        !api_json_get_string(value, "", "libvirt_uri", API_JSON_REQUIRED, &peer->libvirt_uri,
                             error) ||
        !api_json_get_string(value, "", "migrate_uri", API_JSON_OPTIONAL | API_JSON_NULLABLE,
                             &peer->migrate_uri, error) ||
        !check_peer(peer, error))
        return NULL;
    return g_steal_pointer(&peer);
}

json_object *api_peer_to_json(const ApiPeer *peer)
{
    g_return_val_if_fail(peer != NULL, NULL);

    json_object *root = json_object_new_object();
    json_object_object_add(root, "name", api_json_new_string_or_null(peer->name));
    json_object_object_add(root, "libvirt_uri", api_json_new_string_or_null(peer->libvirt_uri));
    json_object_object_add(root, "migrate_uri", api_json_new_string_or_null(peer->migrate_uri));
    json_object_object_add(root, "created_at", api_json_new_string_or_null(peer->created_at));
    return root;
}

ApiPeer *api_peer_from_json(json_object *value, GError **error)
{
    const ApiJsonFlags req = API_JSON_REQUIRED;
    g_autoptr(ApiPeer) peer = api_peer_new();

    if (!api_json_check_object(value, "", peer_keys, error) ||
        !api_json_get_string(value, "", "name", req, &peer->name, error) ||
        !api_json_get_string(value, "", "libvirt_uri", req, &peer->libvirt_uri, error) ||
        !api_json_get_string(value, "", "migrate_uri", req | API_JSON_NULLABLE, &peer->migrate_uri,
                             error) ||
        !api_json_get_string(value, "", "created_at", req, &peer->created_at, error))
        return NULL;

    if (!check_peer(peer, error) || !api_json_check_time("created_at", peer->created_at, error))
        return NULL;
    return g_steal_pointer(&peer);
}

json_object *api_peer_list_to_json(const GPtrArray *peers, const char *next)
{
    json_object *list = json_object_new_array();
    for (guint i = 0; peers && i < peers->len; i++)
        json_object_array_add(list, api_peer_to_json(g_ptr_array_index(peers, i)));
    return api_json_page_new("peers", list, next);
}

static gpointer peer_item(json_object *item, GError **error)
{
    return api_peer_from_json(item, error);
}

GPtrArray *api_peer_list_from_json(json_object *value, char **next, GError **error)
{
    return api_json_page_decode(value, "peers", peer_item, (GDestroyNotify)api_peer_free, next,
                                error);
}
