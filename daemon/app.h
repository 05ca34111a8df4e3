/* Everything a request handler may reach: the one App of a turtled process. */
#pragma once

#include "daemon/config.h"
#include "daemon/events.h"
#include "daemon/http.h"
#include "daemon/operations.h"
#include "daemon/store.h"
#include "hvcore/probe.h"
#include "hvcore/virt.h"

typedef struct Stacks Stacks;
typedef struct ConsoleSessions ConsoleSessions;

typedef struct {
    Config *config;
    Store *store;
    EventBus *events;
    Operations *operations;
    HvHostReport *host; /* probed once at start: the host does not change under us */
    HvBackend backend;
    HvVirt *virt;              /* the libvirt connection (daemon/connection.h to use it) */
    Stacks *stacks;            /* daemon/stacks.h */
    char *console_dir;         /* <state>/consoles: one serial log per stack */
    ConsoleSessions *consoles; /* interactive console sessions (daemon/console_session.h) */
    guint stop_timeout;        /* seconds a graceful stop waits before forcing off */
    HttpServer *server;
    HttpRoute *routes;   /* the table the server serves */
    gint64 started_at;   /* monotonic, µs */
    gboolean test_hooks; /* --test-hooks: test-only routes, never in production */
} App;

/* ---- what handlers share (daemon/route_util.c) ---------------------------------- */

/* ?limit=N of a paginated list, in [1, 1000], 100 when absent. */
gboolean route_parse_limit(const char *text, int *limit, GError **error);
/* ?limit (as route_parse_limit) and ?after (checked by the store, which
 * alone knows its cursors) of a list request. */
gboolean route_page_args(const HttpRequest *request, int *limit, const char **after,
                         GError **error);

/* Adds the ETag of @representation (borrowed: the JSON the answer shows of
 * the resource) to @reply. */
void route_add_etag(HttpReply *reply, json_object *representation);
/* {"<member>": @representation} (stolen) with its ETag. */
HttpReply *route_reply_tagged(unsigned status, const char *member, json_object *representation);

/* The If-Match of a write (PATCH, DELETE), checked by the write inside its
 * transaction against the resource as it is then. */
typedef struct {
    const char *header; /* as sent; NULL: the write is unconditional */
    char *current;      /* the resource's ETag, once a check failed */
} RouteIfMatch;

void route_if_match_init(RouteIfMatch *if_match, const HttpRequest *request);
void route_if_match_clear(RouteIfMatch *if_match);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(RouteIfMatch, route_if_match_clear)
/* TRUE when there is no If-Match or it names the tag of @representation
 * (borrowed); else PRECONDITION_FAILED, the tag kept for the answer. */
gboolean route_if_match_check(RouteIfMatch *if_match, json_object *representation, GError **error);
/* http_reply_error, and on a failed If-Match the resource's current ETag. */
HttpReply *route_reply_error(const RouteIfMatch *if_match, const GError *error);

/* A condition a service's write checks inside its transaction, on the
 * resource as it is then (ApiImage *, ApiStack *, StoreNetwork *; the check
 * may fill what its representation needs): FALSE with an error refuses the
 * write and nothing changes. */
typedef struct {
    gboolean (*holds)(gpointer resource, gpointer data, GError **error);
    gpointer data;
} Precondition;

/* TRUE for a NULL @precondition. */
gboolean precondition_holds(const Precondition *precondition, gpointer resource, GError **error);

/* The route table (daemon/routes.c), and the test-only routes. */
const HttpRoute *routes_table(gsize *n_routes);
const HttpRoute *routes_test_table(gsize *n_routes);

/* Handlers, by resource. */
HttpReply *handle_version(gpointer app, const HttpRequest *request);
HttpReply *handle_host(gpointer app, const HttpRequest *request);
HttpReply *handle_metrics(gpointer app, const HttpRequest *request);
HttpReply *handle_events(gpointer app, const HttpRequest *request);

HttpReply *handle_tenant_create(gpointer app, const HttpRequest *request);
HttpReply *handle_tenant_list(gpointer app, const HttpRequest *request);
HttpReply *handle_tenant_get(gpointer app, const HttpRequest *request);
HttpReply *handle_tenant_patch(gpointer app, const HttpRequest *request);
HttpReply *handle_tenant_delete(gpointer app, const HttpRequest *request);
HttpReply *handle_token_create(gpointer app, const HttpRequest *request);
HttpReply *handle_token_list(gpointer app, const HttpRequest *request);
HttpReply *handle_token_revoke(gpointer app, const HttpRequest *request);

/* daemon/operator_token_routes.c */
HttpReply *handle_operator_token_create(gpointer app, const HttpRequest *request);
HttpReply *handle_operator_token_list(gpointer app, const HttpRequest *request);
HttpReply *handle_operator_token_revoke(gpointer app, const HttpRequest *request);

HttpReply *handle_operation_list(gpointer app, const HttpRequest *request);
HttpReply *handle_operation_get(gpointer app, const HttpRequest *request);
HttpReply *handle_operation_wait(gpointer app, const HttpRequest *request);
HttpReply *handle_operation_cancel(gpointer app, const HttpRequest *request);
HttpReply *handle_test_sleep(gpointer app, const HttpRequest *request);
/* daemon/hang_routes.c: the watchdog's test hook. */
HttpReply *handle_test_hang(gpointer app, const HttpRequest *request);

/* daemon/image_routes.c; the data upload is a streamed route. */
HttpReply *handle_image_create(gpointer app, const HttpRequest *request);
HttpReply *handle_image_list(gpointer app, const HttpRequest *request);
HttpReply *handle_image_get(gpointer app, const HttpRequest *request);
HttpReply *handle_image_delete(gpointer app, const HttpRequest *request);
extern const HttpUploadHandler image_data_upload;

/* daemon/peer_routes.c */
HttpReply *handle_peer_create(gpointer app, const HttpRequest *request);
HttpReply *handle_peer_list(gpointer app, const HttpRequest *request);
HttpReply *handle_peer_get(gpointer app, const HttpRequest *request);
HttpReply *handle_peer_delete(gpointer app, const HttpRequest *request);

/* daemon/stack_routes.c */
HttpReply *handle_stack_create(gpointer app, const HttpRequest *request);
HttpReply *handle_stack_list(gpointer app, const HttpRequest *request);
HttpReply *handle_stack_get(gpointer app, const HttpRequest *request);
HttpReply *handle_stack_delete(gpointer app, const HttpRequest *request);
HttpReply *handle_stack_action(gpointer app, const HttpRequest *request);
HttpReply *handle_stack_console(gpointer app, const HttpRequest *request);
HttpReply *handle_stack_stats(gpointer app, const HttpRequest *request);
HttpReply *handle_stack_migrate(gpointer app, const HttpRequest *request);
HttpReply *handle_stack_device_attach(gpointer app, const HttpRequest *request);
HttpReply *handle_stack_device_detach(gpointer app, const HttpRequest *request);

/* daemon/network_routes.c */
HttpReply *handle_network_create(gpointer app, const HttpRequest *request);
HttpReply *handle_network_list(gpointer app, const HttpRequest *request);
HttpReply *handle_network_get(gpointer app, const HttpRequest *request);
HttpReply *handle_network_delete(gpointer app, const HttpRequest *request);

/* daemon/device_routes.c */
HttpReply *handle_device_class_create(gpointer app, const HttpRequest *request);
HttpReply *handle_device_class_list(gpointer app, const HttpRequest *request);
HttpReply *handle_device_class_get(gpointer app, const HttpRequest *request);
HttpReply *handle_device_class_patch(gpointer app, const HttpRequest *request);
HttpReply *handle_device_class_delete(gpointer app, const HttpRequest *request);
HttpReply *handle_device_list(gpointer app, const HttpRequest *request);
