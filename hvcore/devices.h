/* Host PCI functions for VFIO device classes, through libvirt's node-device
 * API: what a function is (vendor, product, driver, IOMMU group) and
 * whether a set of functions can be assigned to guests.  Detaching from the
 * host driver is libvirt's job (<hostdev managed='yes'>); nothing here
 * writes sysfs. */
#pragma once

#include <glib.h>

#include "hvcore/conn.h"

typedef struct {
    char *address;      /* "0000:3b:00.0" */
    char *nodedev_name; /* libvirt's name, "pci_0000_3b_00_0" */
    guint vendor_id;
    guint product_id;
    char *vendor;               /* name, NULL if libvirt has none */
    char *product;              /* name, NULL if libvirt has none */
    char *driver;               /* the bound host driver, NULL when none */
    guint class_code;           /* PCI class, e.g. 0x060400 for a PCI bridge */
    gboolean bridge;            /* a bridge (class 0x06xxxx): ignored in a group */
    gint iommu_group;           /* -1 when the host has no IOMMU group for it */
    GPtrArray *group_addresses; /* of char *: every function of its group, itself included */
} HvPciFunction;

void hv_pci_function_free(HvPciFunction *function);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HvPciFunction, hv_pci_function_free)

/* Parses a node device's XML (virNodeDeviceGetXMLDesc).  HV_ERROR_INVALID
 * when it is not a PCI device. */
HvPciFunction *hv_pci_function_parse(const char *nodedev_xml, GError **error);

/* The node-device XML of the PCI function at @address, or NULL with
 * HV_ERROR_NOT_FOUND "no PCI device 0000:3b:00.0 on this host". */
typedef char *(*HvNodeDeviceLookup)(const char *address, gpointer data, GError **error);

/* Whether the functions @addresses (a device class) can be assigned:
 * each exists (HV_ERROR_NOT_FOUND) and is PCI (HV_ERROR_INVALID); each has
 * an IOMMU group (HV_ERROR_UNSUPPORTED, naming the missing host IOMMU:
 * VT-d/AMD-Vi in the firmware, intel_iommu=on); every other endpoint of
 * each group is in @addresses or bound to vfio-pci (bridges ignored;
 * HV_ERROR_UNSUPPORTED naming the function outside); a function bound to a
 * host driver other than vfio-pci is refused (HV_ERROR_UNSUPPORTED, naming
 * the driver) unless @force.  On success *@functions_out (may be NULL)
 * gets the HvPciFunction of each address, in order. */
gboolean hv_pci_check_assignable(const char *const *addresses, gboolean force,
                                 HvNodeDeviceLookup lookup, gpointer data,
                                 GPtrArray **functions_out, GError **error);

/* The same, looking functions up through libvirt's node-device API. */
gboolean hv_pci_check_assignable_on(HvConn *conn, const char *const *addresses, gboolean force,
                                    GPtrArray **functions_out, GError **error);
