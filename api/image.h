/* Images (kernels, initrds, disks) on the wire. */
#pragma once

#include <glib.h>
#include <json-c/json.h>

typedef enum {
    API_IMAGE_KIND_KERNEL,
    API_IMAGE_KIND_INITRD,
    API_IMAGE_KIND_DISK,
} ApiImageKind;

typedef enum {
    API_IMAGE_FORMAT_RAW,
    API_IMAGE_FORMAT_QCOW2,
} ApiImageFormat;

/* pending: created, no data yet; uploading: data arriving; ready: usable by
 * stacks; error: the upload failed (see error). */
typedef enum {
    API_IMAGE_STATE_PENDING,
    API_IMAGE_STATE_UPLOADING,
    API_IMAGE_STATE_READY,
    API_IMAGE_STATE_ERROR,
} ApiImageState;

/* "unknown" for a value outside the enum; from_string leaves *out alone and
 * returns FALSE for anything but the exact wire names. */
const char *api_image_kind_to_string(ApiImageKind kind);
gboolean api_image_kind_from_string(const char *text, ApiImageKind *kind);
const char *api_image_format_to_string(ApiImageFormat format);
gboolean api_image_format_from_string(const char *text, ApiImageFormat *format);
const char *api_image_state_to_string(ApiImageState state);
gboolean api_image_state_from_string(const char *text, ApiImageState *state);

#define API_IMAGE_SHA256_LEN 64 /* lower-case hex */
/* 1 PiB, what the largest disk quota allows; also keeps json-c's clamping of
 * huge numbers to INT64_MAX from passing for a size. */
#define API_IMAGE_SIZE_MAX (G_GINT64_CONSTANT(1) << 50)

typedef struct {
    char *id; /* UUID */
    char *name;
    char *tenant; /* owner's name */
    ApiImageKind kind;
    ApiImageFormat format;
    ApiImageState state;
    gint64 size;  /* bytes; negative (null on the wire) until known */
    char *sha256; /* NULL until known */
    char *error;  /* NULL unless the image is in error */
    char *created_at;
    char *updated_at;
    char *volume; /* the libvirt storage volume's name.  Not on the wire. */
} ApiImage;

/* kernel, raw, pending, size unknown. */
ApiImage *api_image_new(void);
ApiImage *api_image_copy(const ApiImage *image);
void api_image_free(ApiImage *image);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ApiImage, api_image_free)

/* POST /v1/images body {"name","kind","format"}, all required; kernels and
 * initrds must be raw (they are handed to QEMU as files, not disks).  Fills
 * name, kind and format only. */
ApiImage *api_image_create_from_json(json_object *value, GError **error);

/* {"id","name","tenant","kind","format","state","size","sha256","error",
 *  "created_at","updated_at"}: size, sha256 and error are null until known. */
json_object *api_image_to_json(const ApiImage *image);
ApiImage *api_image_from_json(json_object *value, GError **error);

/* {"images":[...],"next":CURSOR|null} and back (of ApiImage). */
json_object *api_image_list_to_json(const GPtrArray *images, const char *next);
GPtrArray *api_image_list_from_json(json_object *value, char **next, GError **error);
