/* Peers on the wire: other hosts that stacks may migrate to (operator only). */
#pragma once

#include <glib.h>
#include <json-c/json.h>

/* Longest libvirt_uri or migrate_uri accepted. */
#define API_PEER_URI_MAX 1024

typedef struct {
    char *name;
    char *libvirt_uri; /* the peer's libvirtd: qemu+tcp://host/system, qemu+ssh://... */
    char *migrate_uri; /* where QEMU sends the memory (tcp://host[:port]); NULL: libvirt picks */
    char *created_at;  /* RFC 3339 UTC */
} ApiPeer;

ApiPeer *api_peer_new(void);
ApiPeer *api_peer_copy(const ApiPeer *peer);
void api_peer_free(ApiPeer *peer);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ApiPeer, api_peer_free)

/* A libvirt URI: DRIVER[+TRANSPORT]://[USER@][HOST][:PORT]/PATH[?QUERY], at
 * most API_PEER_URI_MAX characters, no whitespace or control characters, no
 * password.  TRANSPORT is one of libvirt's: tcp, tls, ssh, libssh, libssh2,
 * unix, ext.  Messages start with "<path>: ". */
gboolean api_peer_check_libvirt_uri(const char *path, const char *uri, GError **error);
/* A QEMU migration URI: tcp://HOST[:PORT] or rdma://HOST[:PORT], nothing
 * else (no user, path, query or fragment). */
gboolean api_peer_check_migrate_uri(const char *path, const char *uri, GError **error);

/* POST /v1/peers body {"name","libvirt_uri","migrate_uri"}: name and
 * libvirt_uri required, migrate_uri optional and nullable.  Fills those three. */
ApiPeer *api_peer_create_from_json(json_object *value, GError **error);

/* {"name","libvirt_uri","migrate_uri","created_at"}: migrate_uri null when unset. */
json_object *api_peer_to_json(const ApiPeer *peer);
ApiPeer *api_peer_from_json(json_object *value, GError **error);

/* {"peers":[...],"next":CURSOR|null} and back (of ApiPeer). */
json_object *api_peer_list_to_json(const GPtrArray *peers, const char *next);
GPtrArray *api_peer_list_from_json(json_object *value, char **next, GError **error);
