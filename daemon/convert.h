/* The one place where hvcore's types and the api/ wire models meet. */
#pragma once

#include "api/host.h"
#include "api/network.h"
#include "api/stack.h"
#include "hvcore/domain.h"
#include "hvcore/network.h"
#include "hvcore/probe.h"

ApiHost *convert_host_report(const HvHostReport *report);

/* The hvcore spec of @stack's domain: identity, size, cpu, iommu, cmdline.
 * The caller adds what only the host knows: boot file paths, the console
 * log, and the record for <metadata>. */
HvStackSpec *convert_stack_spec(const ApiStack *stack);

/* Whether @spec, as a tenant sent it, can become a domain on @backend (and,
 * for kvm, on @host, which may be NULL otherwise): hvcore's
 * hv_stack_spec_validate on its conversion, before the stack has an id or
 * boot files.  Fails with TD_ERROR_BAD_REQUEST and hvcore's message, which
 * starts with the API's field name ("boot.cmdline: ...").  A spec that
 * passes api_stack_spec_from_json and this builds valid domain XML. */
gboolean convert_validate_stack_spec(const ApiStackSpec *spec, HvBackend backend,
                                     const HvHostReport *host, GError **error);

/* One device of a stack's spec as hvcore sees it: its pool id (or a
 * stand-in "device<@index>" before allocation), model and host address. */
HvDevice *convert_stack_device(const ApiStackDevice *device, guint index);

/* A network as hvcore defines it in libvirt, and back (an adopted one gets
 * created_at and updated_at of now). */
HvNetworkSpec *convert_network_to_hv(const ApiNetwork *network);
ApiNetwork *convert_network_from_hv(const HvNetworkSpec *spec);
