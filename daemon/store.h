/* turtled's state: SQLite (WAL) in the state directory, with versioned schema
 * migrations.  HTTP threads, workers and the main loop all call in: writes
 * go one at a time through the one read-write connection, reads run side by
 * side on a small pool of read-only ones, each on the last committed state
 * (store-private.h).  Token lookups are cached until a revocation or a
 * tenant's delete commits.  Errors use TD_ERROR (CONFLICT, NOT_FOUND,
 * INTERNAL).  No secret is stored in clear: tokens are kept as SHA-256
 * hashes. */
#pragma once

#include <glib.h>

#include "api/device.h"
#include "api/image.h"
#include "api/network.h"
#include "api/operation.h"
#include "api/operator_token.h"
#include "api/peer.h"
#include "api/stack.h"
#include "api/stats.h"
#include "api/tenant.h"

#define STORE_FILE_NAME      "turtled.db"
#define STORE_TOKEN_HASH_LEN 32

typedef struct Store Store;

/* Sets of states for the conditional updates: STORE_STATE(API_STACK_STATE_RUNNING) | ... */
#define STORE_STATE(state)    (1u << (state))
#define STORE_STACK_ANY_STATE ((1u << (API_STACK_STATE_DELETING + 1)) - 1)
#define STORE_IMAGE_ANY_STATE ((1u << (API_IMAGE_STATE_ERROR + 1)) - 1)

/* A body run by store_transaction: it calls store functions only (they join
 * the transaction), never anything that waits for another thread. */
typedef gboolean (*StoreTransactionFunc)(Store *store, gpointer data, GError **error);

/* Opens (creating if needed) @state_dir/turtled.db, sets WAL and foreign keys,
 * and applies every migration not applied yet, each in its own transaction. */
Store *store_open(const char *state_dir, GError **error);
void store_free(Store *store);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Store, store_free)

/* The schema version, read on the writer (waits for a transaction in
 * progress): the watchdog's probe of the store. */
int store_schema_version(Store *store);

/* Runs @body in one transaction (BEGIN IMMEDIATE): committed when it returns
 * TRUE, rolled back when it returns FALSE (its error is passed on) or the
 * commit fails.  Other threads' store calls wait until it ends, so a check
 * and the write it allows are one step (quota check + reserve, tenant + its
 * first token). */
gboolean store_transaction(Store *store, StoreTransactionFunc body, gpointer data, GError **error);

/* Tenants.  Insert fails with CONFLICT when the name is taken. */
gboolean store_tenant_insert(Store *store, const ApiTenant *tenant, GError **error);
ApiTenant *store_tenant_get(Store *store, const char *name, GError **error);
GPtrArray *store_tenant_list(Store *store, GError **error); /* of ApiTenant, by name */
/* Pages, for the API's lists: at most @limit (0: no limit) after the
 * opaque @after cursor (NULL: from the start); *@next is the cursor of the
 * next page, NULL on the last.  A cursor that is not one this listing made
 * (another listing's, another tenant's, forged) is BAD_REQUEST "after:
 * invalid cursor"; a negative limit too.  Tenants by name. */
GPtrArray *store_tenant_page(Store *store, int limit, const char *after, char **next,
                             GError **error);
gboolean store_tenant_set_quota(Store *store, const char *name, const ApiQuota *quota,
                                const char *updated_at, GError **error);
/* CONFLICT while the tenant owns anything (stacks, images, operations in
 * progress); its tokens go with it. */
gboolean store_tenant_delete(Store *store, const char *name, GError **error);

/* Tokens: only the hash is kept. */
gboolean store_token_insert(Store *store, const char *id, const char *tenant,
                            const guint8 hash[STORE_TOKEN_HASH_LEN], const char *created_at,
                            GError **error);
/* NOT_FOUND when the token does not exist or belongs to another tenant. */
gboolean store_token_revoke(Store *store, const char *tenant, const char *id, GError **error);
/* A page (of ApiToken, without secrets) of @tenant's live tokens, oldest
 * first; NOT_FOUND for an unknown tenant. */
GPtrArray *store_token_page(Store *store, const char *tenant, int limit, const char *after,
                            char **next, GError **error);
/* The name of the tenant whose live token has this hash, or NULL (an
 * operator's token included). */
char *store_token_lookup(Store *store, const guint8 hash[STORE_TOKEN_HASH_LEN]);

/* Whose a live token is, from one lookup by hash (daemon/store_tokens.c). */
typedef struct {
    char *id;
    char *tenant; /* the tenant's name; NULL for an operator token */
    char *scope;  /* an operator token's: "admin" or "metrics"; NULL for a tenant's */
} StoreToken;

void store_token_free(StoreToken *token);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(StoreToken, store_token_free)
/* The live token with this hash, or NULL (unknown, revoked, or the store
 * failed: a failure is logged at debug and denies). */
StoreToken *store_token_find(Store *store, const guint8 hash[STORE_TOKEN_HASH_LEN]);

/* Operator tokens: bound to no tenant, with a scope; only the hash is kept.
 * @token gives id, scope, description and created_at (its secret is not
 * looked at).  CONFLICT when the id or the hash is taken. */
gboolean store_operator_token_insert(Store *store, const ApiOperatorToken *token,
                                     const guint8 hash[STORE_TOKEN_HASH_LEN], GError **error);
/* NOT_FOUND when no live operator token has @id (a tenant's token neither). */
gboolean store_operator_token_revoke(Store *store, const char *id, GError **error);
/* A page (of ApiOperatorToken, without secrets) of the live operator
 * tokens, oldest first, as store_tenant_page. */
GPtrArray *store_operator_token_page(Store *store, int limit, const char *after, char **next,
                                     GError **error);

/* Operations. */
gboolean store_operation_insert(Store *store, const ApiOperation *operation, GError **error);
/* Replaces status, progress, error and updated_at. */
gboolean store_operation_update(Store *store, const ApiOperation *operation, GError **error);
ApiOperation *store_operation_get(Store *store, const char *id, GError **error);
/* Which operations a page of store_operation_page holds. */
typedef struct {
    const char *tenant; /* NULL: everyone's, the operator's own work included */
    guint statuses;     /* STORE_STATE bits of ApiOperationStatus; 0: any */
    const char *kind;   /* NULL: any */
} StoreOperationFilter;
#define STORE_OPERATION_ANY_STATUS ((1u << (API_OP_CANCELLED + 1)) - 1)
/* A page (of ApiOperation) of the operations @filter selects, newest first
 * (created_at, then id, both descending), as store_tenant_page: NOT_FOUND
 * for an unknown tenant; a cursor is the last operation of the page before,
 * and one this listing cannot see (another tenant's listing made it) is
 * BAD_REQUEST "after: invalid cursor". */
GPtrArray *store_operation_page(Store *store, const StoreOperationFilter *filter, int limit,
                                const char *after, char **next, GError **error);
/* Operations left pending or running by a crash become failed with
 * "interrupted by daemon restart".  Returns how many, or -1 on error. */
int store_operation_fail_interrupted(Store *store, const char *now, GError **error);
/* Counts by kind and status, for /metrics: GHashTable "kind\tstatus" -> count. */
GHashTable *store_operation_counts(Store *store, GError **error);
/* For /metrics: state -> GINT_TO_POINTER(count) of all stacks; of all
 * images, with the bytes of those with a size in *@bytes. */
GHashTable *store_stack_counts(Store *store, GError **error);
GHashTable *store_image_counts(Store *store, gint64 *bytes, GError **error);

/* Images.  Names are unique per tenant; @tenant is the owner's name. */
gboolean store_image_insert(Store *store, const ApiImage *image, GError **error);
/* The same, unless the tenant has @max_not_ready images (or more) that are
 * not ready yet (pending, uploading, error): QUOTA_EXCEEDED, checked in the
 * insert's transaction.  0: no cap. */
gboolean store_image_insert_capped(Store *store, const ApiImage *image, gint64 max_not_ready,
                                   GError **error);
ApiImage *store_image_get(Store *store, const char *tenant, const char *name, GError **error);
GPtrArray *store_image_list(Store *store, const char *tenant, GError **error); /* by name */
/* A page of them, as store_tenant_page. */
GPtrArray *store_image_page(Store *store, const char *tenant, int limit, const char *after,
                            char **next, GError **error);
/* Replaces state, size (negative: unknown), sha256, error and updated_at,
 * if the image is in one of the states of @from (STORE_STATE bits):
 * CONFLICT "image 'x' is ..." when it is not, NOT_FOUND when it is gone. */
gboolean store_image_set_state(Store *store, const char *id, guint from, ApiImageState state,
                               gint64 size, const char *sha256, const char *error_message,
                               const char *updated_at, GError **error);
/* CONFLICT "image 'x' is used by stack 'y'" while a stack uses it. */
gboolean store_image_delete(Store *store, const char *tenant, const char *name, GError **error);

/* Stacks.  Insert stores the spec in its canonical JSON and records that the
 * stack uses @images (NULL-terminated names of @stack's tenant's images, may
 * be NULL): CONFLICT when the name is taken, NOT_FOUND when an image is
 * missing. */
gboolean store_stack_insert(Store *store, const ApiStack *stack, const char *const *images,
                            GError **error);
ApiStack *store_stack_get(Store *store, const char *tenant, const char *name, GError **error);
ApiStack *store_stack_get_by_id(Store *store, const char *id, GError **error);
/* A page of stacks ordered by (tenant name, stack name), of @tenant or of
 * everyone (@tenant NULL), after the opaque @after cursor (NULL: from the
 * start).  At most @limit (0: no limit); *@next is the cursor of the next
 * page, NULL on the last.  A cursor that is not one of ours, or another
 * tenant's, is BAD_REQUEST; a negative limit too. */
GPtrArray *store_stack_list(Store *store, const char *tenant, int limit, const char *after,
                            char **next, GError **error);
/* Replaces state, error and updated_at if the stack is in one of the states
 * of @from (STORE_STATE bits), in one conditional UPDATE: a writer that read
 * a state another has changed since fails with CONFLICT "stack 'x' is ...",
 * instead of overwriting it; NOT_FOUND when the stack is gone. */
gboolean store_stack_set_state(Store *store, const char *id, guint from, ApiStackState state,
                               const char *error_message, const char *updated_at, GError **error);
/* Removes the stack; the images it used become free. */
gboolean store_stack_delete(Store *store, const char *id, GError **error);

/* What @tenant uses, for quota checks: its stacks (whatever their state), the
 * vCPUs and memory of their specs, and the bytes of its images. */
gboolean store_tenant_usage(Store *store, const char *tenant, gint64 *stacks, gint64 *vcpus,
                            gint64 *memory_mib, gint64 *disk_bytes, GError **error);

/* Peers (migration targets), by name.  Insert fails with CONFLICT when the
 * name is taken; get and delete with NOT_FOUND "peer 'x' not found". */
gboolean store_peer_insert(Store *store, const ApiPeer *peer, GError **error);
ApiPeer *store_peer_get(Store *store, const char *name, GError **error);
GPtrArray *store_peer_list(Store *store, GError **error); /* of ApiPeer, by name */
GPtrArray *store_peer_page(Store *store, int limit, const char *after, char **next, GError **error);
gboolean store_peer_delete(Store *store, const char *name, GError **error);

/* Device classes and their devices (store_devices.c).  Insert adds the
 * class with its devices ("<class>-<n>"; a vfio class one per address) in
 * one transaction: CONFLICT when the name is taken or an address is in
 * another class.  Get and list fill capacity, in_use and addresses. */
gboolean store_device_class_insert(Store *store, const ApiDeviceClass *device_class,
                                   GError **error);
ApiDeviceClass *store_device_class_get(Store *store, const char *name, GError **error);
GPtrArray *store_device_class_list(Store *store, GError **error); /* by name */
GPtrArray *store_device_class_page(Store *store, int limit, const char *after, char **next,
                                   GError **error);
/* Capacity (emulated classes: BAD_REQUEST for vfio) grows with free
 * devices or shrinks by the highest ones, CONFLICT when one of those is
 * held; description NULL clears it. */
gboolean store_device_class_update(Store *store, const char *name, gboolean has_capacity,
                                   gint64 capacity, gboolean has_description,
                                   const char *description, const char *updated_at, GError **error);
/* CONFLICT while a device of the class is held. */
gboolean store_device_class_delete(Store *store, const char *name, GError **error);
/* Of ApiDevice, by class and number; @class_name and @tenant (only those
 * its stacks hold) filter when not NULL. */
GPtrArray *store_device_list(Store *store, const char *class_name, const char *tenant,
                             GError **error);
/* A page of them (cursors as store_tenant_page; one made for another
 * @class_name is refused). */
GPtrArray *store_device_page(Store *store, const char *class_name, const char *tenant, int limit,
                             const char *after, char **next, GError **error);
GPtrArray *store_device_list_of_stack(Store *store, const char *stack_id, GError **error);
/* Gives stack @stack_id the first free device of @class_name: NOT_FOUND for
 * an unknown class, NO_CAPACITY when none is free.  Joins the caller's
 * transaction, so a create claims its devices atomically with its row. */
ApiDevice *store_device_claim(Store *store, const char *class_name, const char *stack_id,
                              GError **error);
/* Claims device @device_id for @stack_id if free (or already its):
 * CONFLICT otherwise. */
gboolean store_device_claim_id(Store *store, const char *device_id, const char *stack_id,
                               GError **error);
/* Frees @device_id if @stack_id holds it (no error when it does not). */
gboolean store_device_release(Store *store, const char *device_id, const char *stack_id,
                              GError **error);
/* How many devices @tenant's stacks hold; -1 on error. */
gint64 store_tenant_devices_in_use(Store *store, const char *tenant, GError **error);

/* Replaces a stack's spec (its devices changed by a hot-plug). */
gboolean store_stack_set_spec(Store *store, const char *id, const ApiStackSpec *spec,
                              const char *updated_at, GError **error);

/* The last migration that brought stack @stack_id here (its stats'
 * last_migration); the row goes with the stack. */
gboolean store_stack_set_last_migration(Store *store, const char *stack_id,
                                        const ApiStatsMigration *migration, GError **error);
/* *@found FALSE when the stack never migrated here; the strings are the
 * caller's to free. */
gboolean store_stack_get_last_migration(Store *store, const char *stack_id,
                                        ApiStatsMigration *migration, gboolean *found,
                                        GError **error);

/* Networks (store_networks.c).  A tenant's own have its name as
 * network->tenant; external ones have NULL and their tenants in
 * shared_with.  The row goes through creating -> ready -> deleting, so a
 * crash between the store and libvirt is finished by reconcile. */
typedef enum {
    STORE_NETWORK_CREATING,
    STORE_NETWORK_READY,
    STORE_NETWORK_DELETING,
} StoreNetworkState;

typedef struct {
    ApiNetwork *network; /* nics counts the NICs on it; gateway is not filled */
    StoreNetworkState state;
} StoreNetwork;

void store_network_free(StoreNetwork *row);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(StoreNetwork, store_network_free)
const char *store_network_state_to_string(StoreNetworkState state);

/* With its shared_with tenants: NOT_FOUND for an unknown tenant, CONFLICT
 * when the owner already has that name. */
gboolean store_network_insert(Store *store, const ApiNetwork *network, StoreNetworkState state,
                              GError **error);
/* Exactly @tenant's (NULL: the external one) network @name. */
StoreNetwork *store_network_get(Store *store, const char *tenant, const char *name, GError **error);
/* What @tenant may use under @name: its own or an external one shared with it. */
StoreNetwork *store_network_get_visible(Store *store, const char *tenant, const char *name,
                                        GError **error);
StoreNetwork *store_network_get_by_id(Store *store, const char *id, GError **error);
/* A page (of StoreNetwork) of what @tenant may use, or of all (@tenant
 * NULL), by owner (external first) and name; cursors as store_stack_list. */
GPtrArray *store_network_list(Store *store, const char *tenant, int limit, const char *after,
                              char **next, GError **error);
GPtrArray *store_network_list_all(Store *store, GError **error); /* for reconcile */
gboolean store_network_set_state(Store *store, const char *id, StoreNetworkState state,
                                 const char *updated_at, GError **error);
/* ready -> deleting, in one transaction with the check that no NIC is on
 * it: CONFLICT "network 'x' is in use by stack 'y'", or when it is not
 * ready. */
gboolean store_network_begin_delete(Store *store, const char *id, const char *updated_at,
                                    GError **error);
gboolean store_network_delete(Store *store, const char *id, GError **error);
gint64 store_tenant_network_count(Store *store, const char *tenant, GError **error);
/* Whether @name is taken among what @tenant may use (NULL: among all). */
gboolean store_network_name_taken(Store *store, const char *tenant, const char *name,
                                  gboolean *taken, GError **error);
/* The NICs of @stack's spec (networks by name, as @stack's tenant sees
 * them, each ready; MACs filled in): joins the caller's transaction.
 * NOT_FOUND "nics[i].network: network 'x' not found". */
gboolean store_stack_nics_insert(Store *store, const ApiStack *stack, GError **error);
/* The network of each NIC of the stack, in NIC order. */
GPtrArray *store_stack_nic_networks(Store *store, const char *stack_id, GError **error);
/* Records the lease seen for a NIC (@ip NULL: none); *@changed (may be
 * NULL) tells whether it differs from the last one. */
gboolean store_stack_nic_set_ip(Store *store, const char *stack_id, const char *mac, const char *ip,
                                gboolean *changed, GError **error);
/* Ids of the stacks with NICs whose domain should run (running, paused,
 * migrating). */
GPtrArray *store_stacks_with_nics(Store *store, GError **error);
