/* The device pool on the wire: device classes (operator) and the devices
 * they hold, and which stack holds each.  docs/api.md "Devices". */
#pragma once

#include <glib.h>
#include <json-c/json.h>

#define API_DEVICE_CLASS_CAPACITY_MAX 64 /* emulated devices, or vfio addresses */
/* A class name is a name (api_name_is_valid) of at most this many bytes:
 * its devices' ids "<class>-<n>" (n < 64) must fit hvcore's 63. */
#define API_DEVICE_CLASS_NAME_MAX  60
#define API_DEVICE_DESCRIPTION_MAX 256

/* The emulated models a class may offer; "vfio" is the model of vfio classes. */
#define API_DEVICE_EMULATED_MODELS "edu", "virtio-rng"

typedef struct {
    char *name;
    char *kind;           /* "emulated" or "vfio" */
    char *model;          /* "edu", "virtio-rng"; "vfio" for vfio classes */
    gint64 capacity;      /* how many devices it has */
    gint64 in_use;        /* how many are held by stacks (reported) */
    GPtrArray *addresses; /* of char *: vfio host functions, "0000:3b:00.0"; never NULL */
    gboolean force;       /* vfio: take functions bound to a host driver */
    char *description;    /* NULL when none */
    char *created_at;
    char *updated_at;
} ApiDeviceClass;

ApiDeviceClass *api_device_class_new(void);
void api_device_class_free(ApiDeviceClass *device_class);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ApiDeviceClass, api_device_class_free)

/* POST /v1/device-classes: {"name","kind":"emulated","model","capacity",
 * "description"} or {"name","kind":"vfio","addresses":[...],"force",
 * "description"}.  Checks shape and values (names, models, counts, PCI
 * address form, duplicate addresses); fills the request's fields, capacity
 * of a vfio class = its addresses. */
ApiDeviceClass *api_device_class_create_from_json(json_object *value, GError **error);

/* PATCH /v1/device-classes/{name}: {"capacity","description"} (each
 * optional; description null clears it).  Only the keys present are set:
 * *@has_capacity, *@has_description. */
gboolean api_device_class_patch_from_json(json_object *value, gboolean *has_capacity,
                                          gint64 *capacity, gboolean *has_description,
                                          char **description, GError **error);

/* {"name","kind","model","capacity","in_use","available","addresses","force",
 * "description","created_at","updated_at"} */
json_object *api_device_class_to_json(const ApiDeviceClass *device_class);
/* {"device_classes":[...],"next":CURSOR|null} */
json_object *api_device_class_list_to_json(const GPtrArray *classes, const char *next);

/* The form of a PCI function's address: "dddd:bb:ss.f", lower-case hex. */
gboolean api_device_check_pci_address(const char *path, const char *address, GError **error);

typedef struct {
    char *id; /* "<class>-<n>" */
    char *class_name;
    char *model;
    char *address;    /* vfio only */
    char *stack_id;   /* NULL when free */
    char *stack_name; /* with stack_id */
    char *tenant;     /* with stack_id */
} ApiDevice;

ApiDevice *api_device_new(void);
void api_device_free(ApiDevice *device);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ApiDevice, api_device_free)

/* {"id","class","model","address","stack":null|{"id","name","tenant"}} */
json_object *api_device_to_json(const ApiDevice *device);
/* {"devices":[...],"next":CURSOR|null} */
json_object *api_device_list_to_json(const GPtrArray *devices, const char *next);

/* POST /v1/stacks/{name}/devices body {"class":"..."}: the class name. */
char *api_device_attach_from_json(json_object *value, GError **error);
