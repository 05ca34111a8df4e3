#include "hvcore/firmware.h"

#include "hvcore/error.h"
#include "hvcore/libvirt-private.h"
#include "hvcore/xml-private.h"

gboolean hv_firmware_support_parse(const char *domcaps_xml, HvFirmwareSupport *support,
                                   GError **error)
{
    g_autoptr(xmlDoc) doc =
        hv_xml_read(domcaps_xml, "domainCapabilities", "domain capabilities", error);
    if (!doc)
        return FALSE;
    g_autoptr(xmlXPathContext) ctx = xmlXPathNewContext(doc);
    g_autofree char *efi =
        hv_xml_string(ctx, "string(/domainCapabilities/os[@supported='yes']/enum[@name='firmware']"
                           "/value[.='efi'])");
    g_autofree char *secure =
        hv_xml_string(ctx, "string(/domainCapabilities/os[@supported='yes']"
                           "/loader[@supported='yes']/enum[@name='secure']/value[.='yes'])");
    support->uefi = efi != NULL;
    support->secure_boot = support->uefi && secure != NULL;
    return TRUE;
}

gboolean hv_firmware_check(HvConn *conn_handle, HvBackend backend, HvFirmware firmware,
                           gboolean secure_boot, GError **error)
{
    virConnectPtr conn = hv_conn_get_libvirt(conn_handle);

    g_return_val_if_fail(error == NULL || *error == NULL, FALSE);
    if (firmware == HV_FIRMWARE_BIOS || backend == HV_BACKEND_TEST)
        return TRUE;
    g_return_val_if_fail(conn != NULL, FALSE);

    const char *virttype = backend == HV_BACKEND_KVM ? "kvm" : "qemu";
    g_autofree char *xml =
        virConnectGetDomainCapabilities(conn, NULL, "x86_64", "q35", virttype, 0);
    if (!xml) {
        hv_libvirt_set_error(error, "cannot read QEMU's capabilities (machine q35, %s)", virttype);
        return FALSE;
    }
    HvFirmwareSupport support = {0};
    if (!hv_firmware_support_parse(xml, &support, error))
        return FALSE;
    if (!support.uefi) {
        g_set_error(error, HV_ERROR, HV_ERROR_UNSUPPORTED,
                    "boot.firmware: this host has no UEFI firmware for QEMU (its operator "
                    "installs one, e.g. Debian's ovmf package)");
        return FALSE;
    }
    if (secure_boot && !support.secure_boot) {
        g_set_error(error, HV_ERROR, HV_ERROR_UNSUPPORTED,
                    "boot.secure_boot: none of this host's UEFI firmware can do secure boot");
        return FALSE;
    }
    return TRUE;
}
