/*
 * vfio-dev: one PCI function handed to a guest through VFIO, the way a
 * guest hypervisor does it (sysfs bind to vfio-pci, a type1v2 container,
 * BAR and config access, DMA mappings).  Part of turtle-vmm: libc and
 * <linux/vfio.h> only.
 *
 * Functions return false on failure and leave a one-line reason in err.
 */
#ifndef TURTLES_VFIO_DEV_H
#define TURTLES_VFIO_DEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VFIO_DEV_ERR_LEN  256
#define VFIO_DEV_ADDR_LEN 13 /* "0000:00:00.0" and its NUL */

struct vfio_dev {
    char addr[VFIO_DEV_ADDR_LEN];
    int container;
    int group;
    int fd;
    uint64_t bar_off; /* BAR0 region, in the device fd */
    uint64_t bar_size;
    uint64_t cfg_off; /* PCI config space region */
    void *bar;        /* BAR0 mapped into our address space */
};

/* Finds the first function with this vendor:device; addr gets its address. */
bool vfio_dev_find(uint16_t vendor, uint16_t device, char addr[VFIO_DEV_ADDR_LEN],
                   char err[VFIO_DEV_ERR_LEN]);

/* Binds addr to vfio-pci, opens it, enables memory and bus mastering, maps BAR0. */
bool vfio_dev_open(struct vfio_dev *dev, const char *addr, char err[VFIO_DEV_ERR_LEN]);
void vfio_dev_close(struct vfio_dev *dev);

/* BAR0 access through the region (the slow path every trapped access takes). */
bool vfio_dev_bar_rw(const struct vfio_dev *dev, uint64_t off, void *data, size_t len, bool write);

/* Lets the device reach [vaddr, vaddr + size) at iova. */
bool vfio_dev_dma_map(const struct vfio_dev *dev, void *vaddr, uint64_t iova, uint64_t size,
                      char err[VFIO_DEV_ERR_LEN]);
void vfio_dev_dma_unmap(const struct vfio_dev *dev, uint64_t iova, uint64_t size);

#endif
