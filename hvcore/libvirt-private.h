/* hvcore's libvirt plumbing: what lies behind HvConn, and the one set of
 * g_autoptr cleanups for libvirt's types.  Only hvcore's .c files include
 * this, and test programs that set up libvirt fixtures; the daemon never
 * does (tests/lib/check-layers enforces it). */
#pragma once

#include <glib.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "hvcore/conn.h"
#include "hvcore/machine.h"

struct HvConn {
    gint refs;         /* g_atomic_int_*: compiler atomics ThreadSanitizer sees */
    virConnectPtr ptr; /* one libvirt reference, released with the last ref */
};

/* A handle owning @ptr's reference (the caller's); NULL for NULL. */
HvConn *hv_conn_wrap(virConnectPtr ptr);

/* The libvirt connection behind @conn, borrowed for as long as @conn. */
static inline virConnectPtr hv_conn_get_libvirt(HvConn *conn)
{
    return conn != NULL ? conn->ptr : NULL;
}

/* libvirt's free functions return an int; g_autoptr wants void. */
static inline void hv_libvirt_conn_close(virConnect *conn)
{
    virConnectClose(conn);
}
static inline void hv_libvirt_domain_free(virDomain *domain)
{
    virDomainFree(domain);
}
static inline void hv_libvirt_pool_free(virStoragePool *pool)
{
    virStoragePoolFree(pool);
}
static inline void hv_libvirt_vol_free(virStorageVol *vol)
{
    virStorageVolFree(vol);
}
static inline void hv_libvirt_stream_free(virStream *stream)
{
    virStreamFree(stream);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(virConnect, hv_libvirt_conn_close)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(virDomain, hv_libvirt_domain_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(virStoragePool, hv_libvirt_pool_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(virStorageVol, hv_libvirt_vol_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(virStream, hv_libvirt_stream_free)

/* "<what>: <libvirt's message>" for the libvirt error of this thread, with
 * the HV_ERROR code it maps to: HV_ERROR_NOT_FOUND for a missing domain,
 * network, nwfilter, pool, volume or interface, HV_ERROR_UNSUPPORTED for a
 * driver that cannot, HV_ERROR_LIBVIRT otherwise. */
void hv_libvirt_set_error(GError **error, const char *format, ...) G_GNUC_PRINTF(2, 3);
/* That code alone. */
int hv_libvirt_error_code(void);

static inline void hv_libvirt_network_free(virNetwork *network)
{
    virNetworkFree(network);
}
static inline void hv_libvirt_nwfilter_free(virNWFilter *filter)
{
    virNWFilterFree(filter);
}
static inline void hv_libvirt_interface_free(virInterface *iface)
{
    virInterfaceFree(iface);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(virNetwork, hv_libvirt_network_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(virNWFilter, hv_libvirt_nwfilter_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(virInterface, hv_libvirt_interface_free)

/* Fills @stats from one virDomainStatsRecord's parameters ("state.state",
 * "cpu.time", "balloon.current", "block.<n>.rd.bytes", ...): what
 * hv_machine_get_stats does with its record, for callers that fetch many
 * domains in one virConnectGetAllDomainStats. */
void hv_machine_stats_parse(virTypedParameterPtr params, int nparams, HvMachineStats *stats);
