/* hvcore/firmware: what libvirt's domain capabilities say about UEFI and
 * secure boot (documents shaped as libvirt 9.0 writes them). */
#include <glib.h>

#include "hvcore/error.h"
#include "hvcore/firmware.h"

#define CAPS(os)                                                                                   \
    "<domainCapabilities><path>/usr/bin/qemu-system-x86_64</path><domain>qemu</domain>"            \
    "<machine>pc-q35-7.2</machine><arch>x86_64</arch>" os "</domainCapabilities>"

static void test_parse(void)
{
    const struct {
        const char *xml;
        gboolean uefi, secure_boot;
    } cases[] = {
        /* Debian's ovmf: both. */
        {CAPS("<os supported='yes'><enum name='firmware'><value>efi</value></enum>"
              "<loader supported='yes'><value>/usr/share/OVMF/OVMF_CODE_4M.fd</value>"
              "<enum name='type'><value>rom</value><value>pflash</value></enum>"
              "<enum name='secure'><value>no</value><value>yes</value></enum></loader></os>"),
         TRUE, TRUE},
        /* Firmware without a secure-boot build. */
        {CAPS("<os supported='yes'><enum name='firmware'><value>efi</value></enum>"
              "<loader supported='yes'><enum name='secure'><value>no</value></enum></loader></os>"),
         TRUE, FALSE},
        /* No descriptors at all (no ovmf installed). */
        {CAPS("<os supported='yes'><enum name='firmware'/><loader supported='yes'>"
              "<enum name='secure'><value>no</value></enum></loader></os>"),
         FALSE, FALSE},
        /* A "secure" loader enum without UEFI means nothing. */
        {CAPS("<os supported='yes'><loader supported='yes'><enum name='secure'><value>yes</value>"
              "</enum></loader></os>"),
         FALSE, FALSE},
        {CAPS("<os supported='no'><enum name='firmware'><value>efi</value></enum></os>"), FALSE,
         FALSE},
    };
    for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
        HvFirmwareSupport support = {TRUE, TRUE};
        g_autoptr(GError) error = NULL;
        g_assert_true(hv_firmware_support_parse(cases[i].xml, &support, &error));
        g_assert_no_error(error);
        g_assert_cmpint(support.uefi, ==, cases[i].uefi);
        g_assert_cmpint(support.secure_boot, ==, cases[i].secure_boot);
    }

    HvFirmwareSupport support = {0};
    g_autoptr(GError) error = NULL;
    g_assert_false(hv_firmware_support_parse("<capabilities/>", &support, &error));
    g_assert_error(error, HV_ERROR, HV_ERROR_INVALID);
    g_clear_error(&error);
    g_assert_false(hv_firmware_support_parse("not xml", &support, &error));
    g_assert_error(error, HV_ERROR, HV_ERROR_INVALID);
}

/* BIOS needs nothing and the test backend runs nothing: no connection asked. */
static void test_check_without_libvirt(void)
{
    g_autoptr(GError) error = NULL;
    g_assert_true(hv_firmware_check(NULL, HV_BACKEND_TCG, HV_FIRMWARE_BIOS, FALSE, &error));
    g_assert_true(hv_firmware_check(NULL, HV_BACKEND_TEST, HV_FIRMWARE_UEFI, TRUE, &error));
    g_assert_no_error(error);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/firmware/parse", test_parse);
    g_test_add_func("/firmware/check-without-libvirt", test_check_without_libvirt);
    return g_test_run();
}
