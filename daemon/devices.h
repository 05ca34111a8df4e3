/* The device pool as the daemon runs it: device classes (operator), the
 * devices a stack holds (claimed with its create, returned with its
 * delete), hot-plug and -unplug as operations, and reconcile after a
 * crash.  The store keeps who holds what (store_devices.c); hvcore knows
 * the domain XML, libvirt's hot-plug and the host's PCI functions. */
#pragma once

#include <glib.h>

#include "api/device.h"
#include "api/operation.h"
#include "api/stack.h"
#include "daemon/app.h"
#include "hvcore/conn.h"

/* POST /v1/device-classes: a vfio class's functions are checked on the host
 * first (IOMMU groups, drivers; CONFLICT with the reason when they cannot
 * be assigned, NOT_FOUND for a function the host lacks). */
gboolean devices_class_create(App *app, ApiDeviceClass *device_class, GError **error);

/* Fills the model of each device @spec asks for from its class:
 * BAD_REQUEST "devices[i].class: device class 'x' not found". */
gboolean devices_resolve_classes(App *app, ApiStackSpec *spec, GError **error);

/* Inside the create's transaction, after the stack's row: claims a device
 * of each class for @stack (NO_CAPACITY when one has none free) and
 * records what it holds in its spec. */
gboolean devices_claim_for_stack(Store *store, ApiStack *stack, GError **error);

/* POST /v1/stacks/{name}/devices and DELETE /v1/stacks/{name}/devices/{id}:
 * the device is claimed (attach) before the 202, and returned (detach)
 * once libvirt let it go. */
ApiOperation *devices_attach(App *app, const char *tenant, const char *stack_name,
                             const char *class_name, GError **error);
ApiOperation *devices_detach(App *app, const char *tenant, const char *stack_name,
                             const char *device_id, GError **error);

/* After a crash, or for a stack adopted from its domain: the claims of
 * @stack and its spec's device list follow what its domain holds (a claim
 * whose device the domain lacks is returned; a pool device the domain
 * holds is claimed again).  A stack without a domain is left to the
 * stack's own reconcile (its devices go with its row). */
void devices_reconcile_stack(App *app, HvConn *conn, const ApiStack *stack);

/* CONFLICT with the reason when @stack holds devices that cannot migrate. */
gboolean devices_check_migratable(const ApiStack *stack, GError **error);
