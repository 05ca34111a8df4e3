/* Peers: the hosts stacks may migrate to (operator only).  Recorded as
 * given; whether a peer answers is the migration preflight's business. */
#include "api/json.h"
#include "api/peer.h"
#include "daemon/app.h"
#include "daemon/clock.h"
#include "daemon/error.h"

/* The {name} of the path, or an error reply when it cannot name a peer. */
static const char *peer_param(const HttpRequest *request, HttpReply **reply)
{
    const char *name = http_request_param(request, "name");
    if (!api_name_is_valid(name)) {
        *reply = http_reply_errorf(TD_ERROR_NOT_FOUND, "peer '%s' not found", name);
        return NULL;
    }
    return name;
}

static HttpReply *reply_peer(unsigned status, const ApiPeer *peer)
{
    return route_reply_tagged(status, "peer", api_peer_to_json(peer));
}

HttpReply *handle_peer_create(gpointer data, const HttpRequest *request)
{
    App *app = data;
    g_autoptr(GError) error = NULL;
    g_autoptr(ApiPeer) peer = api_peer_create_from_json(request->body, &error);
    if (peer == NULL)
        return http_reply_error(error);

    peer->created_at = clock_now_rfc3339();
    if (!store_peer_insert(app->store, peer, &error))
        return http_reply_error(error);

    HttpReply *reply = reply_peer(201, peer);
    g_autofree char *location = g_strdup_printf("/v1/peers/%s", peer->name);
    http_reply_add_header(reply, "Location", location);
    return reply;
}

HttpReply *handle_peer_list(gpointer data, const HttpRequest *request)
{
    App *app = data;
    g_autoptr(GError) error = NULL;
    int limit = 0;
    const char *after = NULL;
    if (!route_page_args(request, &limit, &after, &error))
        return http_reply_error(error);
    g_autofree char *next = NULL;
    g_autoptr(GPtrArray) peers = store_peer_page(app->store, limit, after, &next, &error);
    if (peers == NULL)
        return http_reply_error(error);
    return http_reply_json(200, api_peer_list_to_json(peers, next));
}

HttpReply *handle_peer_get(gpointer data, const HttpRequest *request)
{
    App *app = data;
    HttpReply *reply = NULL;
    const char *name = peer_param(request, &reply);
    if (name == NULL)
        return reply;
    g_autoptr(GError) error = NULL;
    g_autoptr(ApiPeer) peer = store_peer_get(app->store, name, &error);
    return peer != NULL ? reply_peer(200, peer) : http_reply_error(error);
}

typedef struct {
    const char *name;
    RouteIfMatch if_match;
} PeerRemoval;

/* One transaction: If-Match holds for the row that goes. */
static gboolean remove_peer(Store *store, gpointer data, GError **error)
{
    PeerRemoval *removal = data;
    g_autoptr(ApiPeer) peer = store_peer_get(store, removal->name, error);
    if (peer == NULL)
        return FALSE;
    g_autoptr(json_object) representation = api_peer_to_json(peer);
    return route_if_match_check(&removal->if_match, representation, error) &&
           store_peer_delete(store, removal->name, error);
}

HttpReply *handle_peer_delete(gpointer data, const HttpRequest *request)
{
    App *app = data;
    HttpReply *reply = NULL;
    const char *name = peer_param(request, &reply);
    if (name == NULL)
        return reply;
    g_autoptr(GError) error = NULL;
    PeerRemoval removal = {.name = name};
    route_if_match_init(&removal.if_match, request);
    reply = store_transaction(app->store, remove_peer, &removal, &error)
                ? http_reply_empty(204)
                : route_reply_error(&removal.if_match, error);
    route_if_match_clear(&removal.if_match);
    return reply;
}
