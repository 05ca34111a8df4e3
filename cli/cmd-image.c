/* image create | upload | list | show | delete: /v1/images (tenants). */
#include "cli/commands.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/image.h"

/* "12.0 MiB (12582912 bytes)"; NULL when unknown. */
static char *size_text(gint64 size)
{
    if (size < 0)
        return NULL;
    g_autofree char *human = progress_size(size);
    return g_strdup_printf("%s (%" G_GINT64_FORMAT " bytes)", human, size);
}

static void image_table(const ApiImage *image, FILE *out)
{
    g_autoptr(OutputTable) table = output_table_new(NULL, 2);
    g_autofree char *size = size_text(image->size);
    output_table_add(table, "name:", image->name);
    output_table_add(table, "id:", image->id);
    output_table_add(table, "tenant:", image->tenant);
    output_table_add(table, "kind:", api_image_kind_to_string(image->kind));
    output_table_add(table, "format:", api_image_format_to_string(image->format));
    output_table_add(table, "state:", api_image_state_to_string(image->state));
    output_table_add(table, "size:", size);
    output_table_add(table, "sha256:", image->sha256);
    output_table_add(table, "error:", image->error);
    output_table_add(table, "created:", image->created_at);
    output_table_add(table, "updated:", image->updated_at);
    output_table_print(table, out);
}

/* Decodes body.image; prints the failure and gives NULL. */
static ApiImage *decode_image(Ctl *ctl, json_object *body, int *status)
{
    g_autoptr(GError) error = NULL;
    json_object *member = ctl_member(body, "image", &error);
    ApiImage *image = member != NULL ? api_image_from_json(member, &error) : NULL;
    if (image == NULL)
        *status = ctl_fail_answer(ctl, "image", error);
    return image;
}

/* create, upload and show answer {"image": {...}}. */
static int print_image(Ctl *ctl, json_object *body)
{
    int status = CTL_EXIT_OK;
    g_autoptr(ApiImage) image = decode_image(ctl, body, &status);
    if (image == NULL)
        return status;
    if (!ctl_emit(ctl, body))
        image_table(image, stdout);
    return CTL_EXIT_OK;
}

static const char *const name_names[] = {"NAME", NULL};

/* A file to upload, open, with its size. */
typedef struct {
    int fd;
    gint64 size;
} UploadFile;

static gboolean open_upload(const char *path, UploadFile *file, GError **error)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int saved = errno;
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(saved), "cannot open %s: %s", path,
                    g_strerror(saved));
        return FALSE;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        /* Content-Length is required: the size must be known up front. */
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL, "%s: not a regular file", path);
        close(fd);
        return FALSE;
    }
    file->fd = fd;
    file->size = (gint64)st.st_size;
    return TRUE;
}

static void on_upload_progress(gint64 done, gint64 total, gpointer user_data)
{
    (void)total; /* the file's size is the total: libcurl's is 0 at first */
    progress_bytes_update(user_data, done);
}

/* PUT /v1/images/NAME/data from @file; *body gets the answer. */
static gboolean upload(Ctl *ctl, const char *name, const char *path, const UploadFile *file,
                       json_object **body, GError **error)
{
    g_autofree char *url_path = ctl_path("/v1/images", name, "data", NULL);
    g_autofree char *label = g_strdup_printf("upload %s", name);
    g_autoptr(ProgressBytes) progress =
        progress_bytes_new(ctl_progress_style(ctl), stderr, label, file->size);

    if (!client_upload(ctl->client, url_path, file->fd, file->size, on_upload_progress, progress,
                       body, error)) {
        if (g_error_matches(*error, CLIENT_ERROR, CLIENT_ERROR_LOCAL))
            g_prefix_error(error, "%s: ", path);
        return FALSE;
    }
    return TRUE;
}

static int image_create(Ctl *ctl, int argc, char **argv)
{
    const char *kind_text = NULL;
    const char *format_text = "raw";
    const char *path = NULL;
    const ArgSpec specs[] = {
        {"--kind", ARG_STRING, 0, 0, &kind_text, NULL},
        {"--format", ARG_STRING, 0, 0, &format_text, NULL},
        {"--file", ARG_STRING, 0, 0, &path, NULL},
        {NULL, ARG_FLAG, 0, 0, NULL, NULL},
    };
    g_autoptr(GPtrArray) args = NULL;
    g_autoptr(json_object) body = NULL;
    g_autoptr(GError) error = NULL;
    ApiImageKind kind;
    ApiImageFormat format;
    UploadFile file = {.fd = -1};
    int status = CTL_EXIT_OK;

    /* The verb's own "--format" (the image's) wins over the global one (the
     * output's) after the verb: the output format goes before the noun. */
    if (!cmd_parse(ctl, "create", argc, argv, specs, name_names, &args, &status))
        return status;
    const char *name = g_ptr_array_index(args, 0);
    if (kind_text == NULL)
        return ctl_usage_error(ctl, "image create: missing --kind (kernel, initrd or disk)");
    if (!api_image_kind_from_string(kind_text, &kind))
        return ctl_usage_error(
            ctl, "image create: --kind: must be kernel, initrd or disk (not '%s')", kind_text);
    if (!api_image_format_from_string(format_text, &format))
        return ctl_usage_error(ctl, "image create: --format: must be raw or qcow2 (not '%s')",
                               format_text);
    /* Before anything is created: a file we cannot read must not leave an image behind. */
    if (path != NULL && !open_upload(path, &file, &error))
        return ctl_fail(ctl, error);

    g_autoptr(json_object) request = json_object_new_object();
    json_object_object_add(request, "name", json_object_new_string(name));
    json_object_object_add(request, "kind", json_object_new_string(kind_text));
    json_object_object_add(request, "format", json_object_new_string(format_text));
    gboolean ok = cmd_call(ctl, "POST", "/v1/images", request, &body, &status);
    if (ok && path != NULL) {
        g_autoptr(ApiImage) created = decode_image(ctl, body, &status);
        g_clear_pointer(&body, json_object_put);
        if (created == NULL) {
            ok = FALSE;
        } else if (!upload(ctl, name, path, &file, &body, &error)) {
            status = ctl_fail(ctl, error);
            ok = FALSE;
            /* create --file makes a ready image or nothing. */
            g_autofree char *image_path = ctl_path("/v1/images", name, NULL);
            g_autoptr(json_object) ignored = NULL;
            g_autoptr(GError) cleanup_error = NULL;
            if (!ctl_request(ctl, "DELETE", image_path, NULL, &ignored, &cleanup_error))
                fprintf(stderr, "turtlectl: could not delete image %s again: %s\n", name,
                        cleanup_error->message);
        }
    }
    if (file.fd >= 0)
        close(file.fd);
    if (!ok)
        return status;
    return print_image(ctl, body);
}

static int image_upload(Ctl *ctl, int argc, char **argv)
{
    static const char *const names[] = {"NAME", "FILE", NULL};
    g_autoptr(GPtrArray) args = NULL;
    g_autoptr(json_object) body = NULL;
    g_autoptr(GError) error = NULL;
    UploadFile file = {.fd = -1};
    int status = CTL_EXIT_OK;

    if (!cmd_parse(ctl, "upload", argc, argv, NULL, names, &args, &status))
        return status;
    const char *name = g_ptr_array_index(args, 0);
    const char *path = g_ptr_array_index(args, 1);
    if (!open_upload(path, &file, &error))
        return ctl_fail(ctl, error);
    if (ctl->client == NULL && !ctl_connect(ctl, &error)) {
        close(file.fd);
        return ctl_fail(ctl, error);
    }
    gboolean ok = upload(ctl, name, path, &file, &body, &error);
    close(file.fd);
    if (!ok)
        return ctl_fail(ctl, error);
    return print_image(ctl, body);
}

static void image_row(OutputTable *table, gpointer item)
{
    const ApiImage *image = item;
    g_autofree char *size = image->size >= 0 ? progress_size(image->size) : NULL;
    output_table_add(table, image->name, api_image_kind_to_string(image->kind),
                     api_image_format_to_string(image->format),
                     api_image_state_to_string(image->state), size, image->created_at);
}

static int image_list(Ctl *ctl, int argc, char **argv)
{
    static const char *const headers[] = {"NAME", "KIND",    "FORMAT", "STATE",
                                          "SIZE", "CREATED", NULL};
    static const CmdList list = {.path = "/v1/images",
                                 .member = "images",
                                 .decode = api_image_list_from_json,
                                 .headers = headers,
                                 .row = image_row};
    return cmd_list(ctl, &list, argc, argv);
}

static int image_show(Ctl *ctl, int argc, char **argv)
{
    g_autoptr(GPtrArray) args = NULL;
    g_autoptr(json_object) body = NULL;
    int status = CTL_EXIT_OK;

    if (!cmd_parse(ctl, "show", argc, argv, NULL, name_names, &args, &status))
        return status;
    g_autofree char *path = ctl_path("/v1/images", g_ptr_array_index(args, 0), NULL);
    if (!cmd_call(ctl, "GET", path, NULL, &body, &status))
        return status;
    return print_image(ctl, body);
}

static int image_delete(Ctl *ctl, int argc, char **argv)
{
    g_autoptr(GPtrArray) args = NULL;
    g_autoptr(json_object) body = NULL;
    int status = CTL_EXIT_OK;

    if (!cmd_parse(ctl, "delete", argc, argv, NULL, name_names, &args, &status))
        return status;
    const char *name = g_ptr_array_index(args, 0);
    g_autofree char *path = ctl_path("/v1/images", name, NULL);
    if (!cmd_call(ctl, "DELETE", path, NULL, &body, &status))
        return status;
    if (!ctl_emit(ctl, body))
        ctl_note(ctl, "deleted image %s", name);
    return CTL_EXIT_OK;
}

static const CmdVerb image_verbs[] = {
    {"create", image_create, "NAME --kind kernel|initrd|disk [--format raw|qcow2] [--file FILE]",
     "declare an image, and upload its data with --file",
     "The image starts pending, without data: send it with turtlectl image\n"
     "upload, or at once with --file.  If that upload fails, the image is\n"
     "deleted again: create --file makes a ready image or nothing.\n"
     "\n"
     "This --format is the image's: the output's goes before the noun\n"
     "(turtlectl --format json image create ...).\n"
     "\n"
     "Options:\n"
     "  --kind kernel|initrd|disk\n"
     "                   what the image holds (required)\n"
     "  --format raw|qcow2\n"
     "                   its format (default raw); kernels and initrds are raw\n"
     "  --file FILE      upload FILE right after creating the image (progress\n"
     "                   as image upload shows it)",
     NULL},
    {"upload", image_upload, "NAME FILE", "upload a file as an image's data",
     "Sends FILE, a regular file, as the data of the image NAME, which must be\n"
     "pending or in error.  turtled checks it: the format qemu-img finds must\n"
     "be the declared one, a kernel must be a bzImage, an initrd a cpio\n"
     "archive.  The image becomes ready, or the upload is refused with the\n"
     "reason and the image is left in error (upload again).  FILE must fit in\n"
     "the tenant's disk quota.  The progress shows on stderr: a bar on a\n"
     "terminal, else a line at every tenth.",
     NULL},
    {"list", image_list, "[--limit N [--after CURSOR] [--all]]", "list the images",
     "Prints the tenant's images (name, kind, format, state, size), every page\n"
     "of them.  With --limit, one page of N: in a table the command for the\n"
     "next page follows on stderr; in json or yaml the answer's \"next\" is the\n"
     "cursor.\n"
     "\n"
     "Options:\n"
     "  --limit N        one page of N images (1-1000)\n"
     "  --after CURSOR   start after CURSOR (the \"next\" of an earlier page)\n"
     "  --all            with --limit: every page, N images a request",
     NULL},
    {"show", image_show, "NAME", "show an image, with its size and SHA-256",
     "Prints the image's kind, format and state, its size and SHA-256 once its\n"
     "data is uploaded, and why it is in error if it is.",
     NULL},
    {"delete", image_delete, "NAME", "delete an image and its data",
     "Removes the image and its data.  Refused (exit 1) while a stack uses it.", NULL},
    {NULL, NULL, NULL, NULL, NULL, NULL},
};

const CmdNoun cmd_image_noun = {
    "image",
    "kernels, initrds and disks to boot stacks from",
    image_verbs,
    "Images belong to tenants: a tenant sees and uses its own only, and the\n"
    "operator has none.  A tenant may have a few images that are not ready yet\n"
    "(pending, uploading or in error: 8 unless the operator set\n"
    "pending_images); upload or delete them to create more.",
};
