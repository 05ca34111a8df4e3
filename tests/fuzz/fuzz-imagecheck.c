/* hvcore/imagecheck's parsers of tenant data: the header checks (bzImage,
 * initrd magic, qcow2 and VMDK headers) and the verdict on qemu-img info's
 * JSON.  The first byte picks the parser and its arguments:
 *
 *   bit 0     0: hv_image_check_header, 1: hv_image_check_qemu_info
 *   bit 1     declared format: 0 raw, 1 qcow2
 *   bits 2-3  kind (kernel, initrd, disk; 3 is disk too)
 *   bit 4     header: the bytes are the start of a 1 GiB file
 *
 * the rest is the file's start or qemu-img's output. */
#include <string.h>

#include "hvcore/error.h"
#include "hvcore/imagecheck.h"
#include "tests/fuzz/fuzz-util.h"

static const HvImageKind kinds[] = {HV_IMAGE_KERNEL, HV_IMAGE_INITRD, HV_IMAGE_DISK, HV_IMAGE_DISK};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    guint8 selector = data[0];
    const char *format = selector & 2 ? "qcow2" : "raw";
    HvImageKind kind = kinds[(selector >> 2) & 3];
    /* A copy of exactly the bytes, so ASan sees any read past them (never
     * NULL: the real caller always has a buffer). */
    gsize len = size - 1;
    g_autofree char *bytes = g_malloc(MAX(len, 1));
    memcpy(bytes, data + 1, len);
    g_autoptr(GError) error = NULL;

    if (selector & 1) {
        guint64 virtual_size = 0;
        if (hv_image_check_qemu_info(bytes, len, format, &virtual_size, &error))
            FUZZ_CHECK(virtual_size > 0, "accepted an image of virtual size 0");
        else
            FUZZ_CHECK(error != NULL && error->domain == HV_ERROR && error->message != NULL,
                       "refusal without an HV_ERROR");
    } else {
        guint64 file_size = selector & 16 ? G_GUINT64_CONSTANT(1) << 30 : len;
        if (!hv_image_check_header(bytes, len, file_size, format, kind, &error))
            FUZZ_CHECK(error != NULL && error->domain == HV_ERROR && error->message != NULL,
                       "refusal without an HV_ERROR");
    }
    return 0;
}
