/*
 * vfio-dev: see vfio-dev.h.  Every step that can fail says which one it was,
 * because inside the L1 the reason line on the console is all there is.
 */
#include "vfio-dev.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/vfio.h>

#define PCI_DEVICES    "/sys/bus/pci/devices"
#define VFIO_PCI_BIND  "/sys/bus/pci/drivers/vfio-pci/bind"
#define VFIO_CONTAINER "/dev/vfio/vfio"

#define PCI_COMMAND        0x04
#define PCI_COMMAND_MEMORY 0x2
#define PCI_COMMAND_MASTER 0x4 /* without it the device's DMA never starts */

__attribute__((format(printf, 2, 3))) static bool fail(char err[VFIO_DEV_ERR_LEN], const char *fmt,
                                                       ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, VFIO_DEV_ERR_LEN, fmt, ap);
    va_end(ap);
    return false;
}

/* Reads a one-line sysfs file without its newline; false when unreadable. */
static bool sysfs_read(const char *path, char *buf, size_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, size - 1);
    close(fd);
    if (n < 0)
        return false;
    buf[n] = '\0';
    buf[strcspn(buf, "\n")] = '\0';
    return true;
}

static bool sysfs_write(const char *path, const char *value, char err[VFIO_DEV_ERR_LEN])
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return fail(err, "open %s: %s", path, strerror(errno));
    ssize_t n = write(fd, value, strlen(value));
    int saved = errno;
    close(fd);
    if (n < 0)
        return fail(err, "write '%s' to %s: %s", value, path, strerror(saved));
    return true;
}

static bool pci_id_matches(const char *addr, uint16_t vendor, uint16_t device)
{
    char path[128], buf[32];

    snprintf(path, sizeof(path), PCI_DEVICES "/%s/vendor", addr);
    if (!sysfs_read(path, buf, sizeof(buf)) || strtoul(buf, NULL, 16) != vendor)
        return false;
    snprintf(path, sizeof(path), PCI_DEVICES "/%s/device", addr);
    return sysfs_read(path, buf, sizeof(buf)) && strtoul(buf, NULL, 16) == device;
}

bool vfio_dev_find(uint16_t vendor, uint16_t device, char addr[VFIO_DEV_ADDR_LEN],
                   char err[VFIO_DEV_ERR_LEN])
{
    struct dirent **names;
    int n = scandir(PCI_DEVICES, &names, NULL, alphasort);
    bool found = false;

    if (n < 0)
        return fail(err, "scandir " PCI_DEVICES ": %s", strerror(errno));
    for (int i = 0; i < n; i++) {
        const char *name = names[i]->d_name;
        if (!found && strlen(name) < VFIO_DEV_ADDR_LEN && pci_id_matches(name, vendor, device)) {
            snprintf(addr, VFIO_DEV_ADDR_LEN, "%s", name);
            found = true;
        }
        free(names[i]);
    }
    free(names);
    return found || fail(err, "no PCI function %04x:%04x", vendor, device);
}

/* The address becomes part of sysfs paths: accept only the canonical form. */
static bool pci_addr_valid(const char *addr)
{
    unsigned dom, bus, slot, fn;
    char tail;

    return strlen(addr) == VFIO_DEV_ADDR_LEN - 1 &&
           sscanf(addr, "%4x:%2x:%2x.%1x%c", &dom, &bus, &slot, &fn, &tail) == 4 &&
           addr[4] == ':' && addr[7] == ':' && addr[10] == '.';
}

/* The group number: the last component of the device's iommu_group link. */
static bool pci_group(const char *addr, unsigned *group, char err[VFIO_DEV_ERR_LEN])
{
    char path[128], link[256];
    char *end;

    snprintf(path, sizeof(path), PCI_DEVICES "/%s", addr);
    if (access(path, F_OK) < 0)
        return fail(err, "no PCI function %s", addr);
    snprintf(path, sizeof(path), PCI_DEVICES "/%s/iommu_group", addr);
    ssize_t n = readlink(path, link, sizeof(link) - 1);
    if (n < 0)
        return fail(err, "%s has no IOMMU group (no vIOMMU, or intel_iommu=on missing)", addr);
    link[n] = '\0';
    const char *base = strrchr(link, '/') ? strrchr(link, '/') + 1 : link;
    *group = (unsigned)strtoul(base, &end, 10);
    return (end != base && *end == '\0') || fail(err, "odd IOMMU group link %s", link);
}

/* driver_override first, so that nothing else grabs the function in between. */
static bool pci_bind_vfio(const char *addr, char err[VFIO_DEV_ERR_LEN])
{
    char path[128], link[256];

    snprintf(path, sizeof(path), PCI_DEVICES "/%s/driver", addr);
    ssize_t n = readlink(path, link, sizeof(link) - 1);
    if (n > 0) {
        link[n] = '\0';
        if (strcmp(strrchr(link, '/') + 1, "vfio-pci") == 0)
            return true;
    }
    snprintf(path, sizeof(path), PCI_DEVICES "/%s/driver_override", addr);
    if (!sysfs_write(path, "vfio-pci", err))
        return false;
    if (n > 0) {
        snprintf(path, sizeof(path), PCI_DEVICES "/%s/driver/unbind", addr);
        if (!sysfs_write(path, addr, err))
            return false;
    }
    return sysfs_write(VFIO_PCI_BIND, addr, err);
}

static bool vfio_container_open(struct vfio_dev *dev, unsigned group, char err[VFIO_DEV_ERR_LEN])
{
    char path[64];
    struct vfio_group_status status = {.argsz = sizeof(status)};

    dev->container = open(VFIO_CONTAINER, O_RDWR | O_CLOEXEC);
    if (dev->container < 0)
        return fail(err, "open " VFIO_CONTAINER ": %s", strerror(errno));
    if (ioctl(dev->container, VFIO_GET_API_VERSION) != VFIO_API_VERSION)
        return fail(err, "VFIO API version mismatch");
    if (ioctl(dev->container, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU) <= 0)
        return fail(err, "VFIO has no type1v2 IOMMU backend (vfio_iommu_type1 not loaded?)");

    snprintf(path, sizeof(path), "/dev/vfio/%u", group);
    dev->group = open(path, O_RDWR | O_CLOEXEC);
    if (dev->group < 0)
        return fail(err, "open %s: %s", path, strerror(errno));
    if (ioctl(dev->group, VFIO_GROUP_GET_STATUS, &status) < 0)
        return fail(err, "VFIO_GROUP_GET_STATUS: %s", strerror(errno));
    if (!(status.flags & VFIO_GROUP_FLAGS_VIABLE))
        return fail(err, "IOMMU group %u is not viable: another device in it has a driver", group);
    if (ioctl(dev->group, VFIO_GROUP_SET_CONTAINER, &dev->container) < 0)
        return fail(err, "VFIO_GROUP_SET_CONTAINER: %s", strerror(errno));
    /* type1 refuses (EPERM) an IOMMU without interrupt remapping. */
    if (ioctl(dev->container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU) < 0)
        return fail(err, "VFIO_SET_IOMMU type1v2: %s%s", strerror(errno),
                    errno == EPERM ? " (no interrupt remapping: intremap=on?)" : "");
    return true;
}

static bool vfio_region(const struct vfio_dev *dev, uint32_t index, struct vfio_region_info *info,
                        char err[VFIO_DEV_ERR_LEN])
{
    memset(info, 0, sizeof(*info));
    info->argsz = sizeof(*info);
    info->index = index;
    if (ioctl(dev->fd, VFIO_DEVICE_GET_REGION_INFO, info) < 0)
        return fail(err, "VFIO_DEVICE_GET_REGION_INFO %u: %s", index, strerror(errno));
    return true;
}

static bool vfio_enable(struct vfio_dev *dev, char err[VFIO_DEV_ERR_LEN])
{
    uint16_t cmd;

    if (pread(dev->fd, &cmd, sizeof(cmd), (off_t)(dev->cfg_off + PCI_COMMAND)) != sizeof(cmd))
        return fail(err, "read PCI command register: %s", strerror(errno));
    cmd |= PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER;
    if (pwrite(dev->fd, &cmd, sizeof(cmd), (off_t)(dev->cfg_off + PCI_COMMAND)) != sizeof(cmd))
        return fail(err, "write PCI command register: %s", strerror(errno));
    return true;
}

static bool vfio_map_bar(struct vfio_dev *dev, char err[VFIO_DEV_ERR_LEN])
{
    struct vfio_region_info info;

    if (!vfio_region(dev, VFIO_PCI_BAR0_REGION_INDEX, &info, err))
        return false;
    if (info.size == 0 || !(info.flags & VFIO_REGION_INFO_FLAG_MMAP))
        return fail(err, "BAR0 of %s cannot be mapped (size %" PRIu64 ", flags 0x%x)", dev->addr,
                    (uint64_t)info.size, info.flags);
    dev->bar_off = info.offset;
    dev->bar_size = info.size;
    dev->bar =
        mmap(NULL, dev->bar_size, PROT_READ | PROT_WRITE, MAP_SHARED, dev->fd, (off_t)dev->bar_off);
    if (dev->bar == MAP_FAILED) {
        dev->bar = NULL;
        return fail(err, "mmap BAR0: %s", strerror(errno));
    }
    return true;
}

bool vfio_dev_open(struct vfio_dev *dev, const char *addr, char err[VFIO_DEV_ERR_LEN])
{
    unsigned group;
    struct vfio_region_info cfg;

    memset(dev, 0, sizeof(*dev));
    dev->container = dev->group = dev->fd = -1;
    if (!pci_addr_valid(addr))
        return fail(err, "'%s' is not a PCI address like 0000:00:03.0", addr);
    snprintf(dev->addr, sizeof(dev->addr), "%s", addr);
    if (!pci_group(addr, &group, err) || !pci_bind_vfio(addr, err) ||
        !vfio_container_open(dev, group, err))
        return false;
    dev->fd = ioctl(dev->group, VFIO_GROUP_GET_DEVICE_FD, addr);
    if (dev->fd < 0)
        return fail(err, "VFIO_GROUP_GET_DEVICE_FD %s: %s", addr, strerror(errno));
    if (!vfio_region(dev, VFIO_PCI_CONFIG_REGION_INDEX, &cfg, err))
        return false;
    dev->cfg_off = cfg.offset;
    return vfio_enable(dev, err) && vfio_map_bar(dev, err);
}

void vfio_dev_close(struct vfio_dev *dev)
{
    if (dev->bar)
        munmap(dev->bar, dev->bar_size);
    if (dev->fd >= 0)
        close(dev->fd);
    if (dev->group >= 0)
        close(dev->group);
    if (dev->container >= 0)
        close(dev->container);
    dev->bar = NULL;
    dev->fd = dev->group = dev->container = -1;
}

bool vfio_dev_bar_rw(const struct vfio_dev *dev, uint64_t off, void *data, size_t len, bool write)
{
    if (off >= dev->bar_size || len > dev->bar_size - off)
        return false;
    off_t pos = (off_t)(dev->bar_off + off);
    ssize_t n = write ? pwrite(dev->fd, data, len, pos) : pread(dev->fd, data, len, pos);
    return n == (ssize_t)len;
}

bool vfio_dev_dma_map(const struct vfio_dev *dev, void *vaddr, uint64_t iova, uint64_t size,
                      char err[VFIO_DEV_ERR_LEN])
{
    struct vfio_iommu_type1_dma_map map = {
        .argsz = sizeof(map),
        .flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
        .vaddr = (uintptr_t)vaddr,
        .iova = iova,
        .size = size,
    };
    if (ioctl(dev->container, VFIO_IOMMU_MAP_DMA, &map) < 0)
        return fail(err, "VFIO_IOMMU_MAP_DMA iova 0x%" PRIx64 " size 0x%" PRIx64 ": %s", iova, size,
                    strerror(errno));
    return true;
}

void vfio_dev_dma_unmap(const struct vfio_dev *dev, uint64_t iova, uint64_t size)
{
    struct vfio_iommu_type1_dma_unmap unmap = {.argsz = sizeof(unmap), .iova = iova, .size = size};

    (void)ioctl(dev->container, VFIO_IOMMU_UNMAP_DMA, &unmap);
}
