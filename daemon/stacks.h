/* Stacks: create, delete and actions as operations on libvirt domains; the
 * live state from libvirt's lifecycle events; reconciliation of the store
 * with libvirt after a start or a reconnection.
 *
 * Crash safety comes from the order of steps: a stack row is written
 * (provisioning) before its domain exists, and removed (after deleting)
 * only once its domain, disk and console log are gone.  Whatever moment
 * turtled dies, reconcile finds a provisioning or deleting row and removes
 * what it names, so a stack ends wholly present or wholly absent. */
#pragma once

#include <glib.h>

#include "daemon/app.h"
#include "hvcore/conn.h"

Stacks *stacks_new(App *app);
void stacks_free(Stacks *stacks);

/* POST /v1/stacks: checks images and quota, persists the stack
 * (provisioning) and submits stack.create.  Takes @spec.  *@stack_out is
 * the stack as persisted. */
ApiOperation *stacks_create(App *app, const char *tenant, ApiStackSpec *spec, ApiStack **stack_out,
                            GError **error);
/* DELETE /v1/stacks/{name}: marks it deleting and submits stack.delete.
 * @precondition (may be NULL) is checked on the stack in the transaction
 * that marks it; when it fails nothing changes. */
ApiOperation *stacks_delete(App *app, const char *tenant, const char *name,
                            const Precondition *precondition, GError **error);
/* POST /v1/stacks/{name}/actions: CONFLICT when the state forbids @action
 * or another operation works on the stack. */
ApiOperation *stacks_action(App *app, const char *tenant, const char *name, const char *action,
                            GError **error);

/* <console_dir>/<stack id>.log */
char *stacks_console_path(App *app, const char *stack_id);

/* A libvirt lifecycle event (main thread): updates the stack's state and
 * publishes a lifecycle event. */
void stacks_on_lifecycle(App *app, const HvLifecycleEvent *event);

/* Makes the store and libvirt agree: finishes interrupted deletes, rolls
 * back interrupted creates, takes each stack's state from its domain, marks
 * stacks whose domain vanished, adopts domains with our metadata that the
 * store lacks, and removes disks and console logs no stack owns.  Stacks an
 * operation is working on are left alone. */
gboolean stacks_reconcile(App *app, HvConn *conn, GError **error);

/* POST /v1/stacks/{name}/migrate (daemon/stack_migrate.c): NOT_FOUND for an
 * unknown peer, CONFLICT unless the stack is running or paused; marks it
 * migrating and submits stack.migrate. */
ApiOperation *stacks_migrate(App *app, const char *tenant, const char *name, const char *peer,
                             GError **error);

/* Live migrations out of this host since turtled started, for /metrics. */
typedef struct {
    guint64 succeeded, failed, cancelled;
    gboolean downtime_known;
    double last_downtime_seconds; /* the guest's pause in the last one that succeeded */
} StacksMigrations;
void stacks_migrations(App *app, StacksMigrations *migrations);
/* A stack.migrate body ended: @ok (the guest paused @downtime_ms at the
 * switch-over), or failed, or @cancelled. */
void stacks_count_migration(App *app, gboolean ok, gboolean cancelled, guint64 downtime_ms);

/* For the stack modules (stacks.c, stack_migrate.c). */
/* The stack, claimed for one operation (CONFLICT when busy, UNAVAILABLE
 * while libvirt is away). */
ApiStack *stacks_claim(App *app, const char *tenant, const char *name, GError **error);
void stacks_release(App *app, const char *id);
/* The states no operation owns: lifecycle events and actions move a stack
 * between them; provisioning, deleting and migrating belong to the
 * operation that set them. */
#define STACKS_SETTLED                                                                             \
    (STORE_STATE(API_STACK_STATE_RUNNING) | STORE_STATE(API_STACK_STATE_STOPPED) |                 \
     STORE_STATE(API_STACK_STATE_PAUSED) | STORE_STATE(API_STACK_STATE_ERROR))
/* store_stack_set_state now: only from the states in @from (CONFLICT
 * otherwise). */
gboolean stacks_set_state(App *app, const char *id, guint from, ApiStackState state,
                          const char *message, GError **error);
/* stacks_set_state for rollbacks, where the caller fails already: a failure
 * is logged with the stack and the state it is left in; reconcile (at the
 * next start or reconnection) puts it right. */
void stacks_restore_state(App *app, const char *id, guint from, ApiStackState state,
                          const char *message);
/* Domain, overlay, console log, then the row; each step idempotent. */
gboolean stacks_remove_everything(App *app, HvConn *conn, const ApiStack *stack, GError **error);
void stacks_publish_lifecycle(App *app, const ApiStack *stack, const char *what);
