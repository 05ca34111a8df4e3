/* Which firmware QEMU can boot a stack with on this host, as libvirt's
 * domain capabilities say (virConnectGetDomainCapabilities): UEFI only where
 * QEMU's firmware descriptors offer one (Debian's ovmf package), secure boot
 * only where one of them can do it. */
#pragma once

#include <glib.h>

#include "hvcore/conn.h"
#include "hvcore/domain.h"
#include "hvcore/probe.h"

typedef struct {
    gboolean uefi;        /* a descriptor of UEFI firmware for q35 */
    gboolean secure_boot; /* one of them can boot securely */
} HvFirmwareSupport;

/* Reads @domcaps_xml (a <domainCapabilities> document).  HV_ERROR_INVALID
 * when it does not parse.  Exposed for tests. */
gboolean hv_firmware_support_parse(const char *domcaps_xml, HvFirmwareSupport *support,
                                   GError **error);

/* Whether @conn's QEMU on @backend can boot @firmware (with @secure_boot):
 * HV_ERROR_UNSUPPORTED with a message naming the field ("boot.firmware:
 * ...", "boot.secure_boot: ...") and what the operator can do, when not.
 * BIOS always can.  The test backend runs nothing: it accepts both. */
gboolean hv_firmware_check(HvConn *conn, HvBackend backend, HvFirmware firmware,
                           gboolean secure_boot, GError **error);
