/* volume-upload: drives hvcore/storage (and hvcore/imagecheck) against a
 * libvirt URI for tests/system/storage.t.
 *
 *   volume-upload ensure-pools URI STATE_DIR
 *   volume-upload upload [--chunk BYTES] [--abort-after BYTES]
 *                 [--check FORMAT:KIND] URI POOL NAME FILE
 *   volume-upload overlay URI POOL NAME BACKING_PATH BACKING_FORMAT
 *
 * upload streams FILE through hv_volume_upload_* in reads of --chunk bytes
 * (64 KiB), as the daemon streams a request body, and prints
 *
 *   path <volume path>
 *   sha256 <hex>
 *   size <bytes>
 *   vmhwm_kib <peak resident memory of this process, from /proc/self/status>
 *
 * With --abort-after it aborts once that many bytes are sent and prints
 * "aborted <bytes>" instead.  With --check it then runs hv_image_check on
 * the volume and, as the daemon does, deletes a rejected one: "checked ok"
 * or "rejected <message>".  Errors go to stderr with exit status 1. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "hvcore/error.h"
#include "hvcore/imagecheck.h"
#include "hvcore/storage.h"
#include "hvcore/libvirt-private.h"

/* Errors are reported through GError; libvirt must not print them too. */
static void quiet_libvirt(void *data, virErrorPtr error)
{
    (void)data;
    (void)error;
}

static int fail(const GError *error)
{
    fprintf(stderr, "volume-upload: %s\n", error->message);
    return 1;
}

static HvConn *open_uri(const char *uri)
{
    HvConn *conn = hv_conn_open(uri, NULL);

    if (!conn)
        fprintf(stderr, "volume-upload: cannot open %s: %s\n", uri, virGetLastErrorMessage());
    return conn;
}

static long vmhwm_kib(void)
{
    g_autofree char *status = NULL;
    const char *line;

    if (!g_file_get_contents("/proc/self/status", &status, NULL, NULL))
        return -1;
    line = strstr(status, "\nVmHWM:");
    return line ? strtol(line + strlen("\nVmHWM:"), NULL, 10) : -1;
}

static int cmd_ensure_pools(int argc, char **argv)
{
    g_autoptr(HvConn) conn = NULL;
    g_autoptr(GError) error = NULL;

    if (argc != 3) {
        fprintf(stderr, "usage: volume-upload ensure-pools URI STATE_DIR\n");
        return 2;
    }
    conn = open_uri(argv[1]);
    if (!conn)
        return 1;
    if (!hv_storage_ensure_pools(conn, argv[2], &error))
        return fail(error);
    printf("ok\n");
    return 0;
}

static int cmd_overlay(int argc, char **argv)
{
    g_autoptr(HvConn) conn = NULL;
    g_autoptr(GError) error = NULL;
    g_autofree char *path = NULL;

    if (argc != 6) {
        fprintf(stderr, "usage: volume-upload overlay URI POOL NAME BACKING_PATH FORMAT\n");
        return 2;
    }
    conn = open_uri(argv[1]);
    if (!conn)
        return 1;
    path = hv_volume_create_overlay(conn, argv[2], argv[3], argv[4], argv[5], &error);
    if (!path)
        return fail(error);
    printf("path %s\n", path);
    return 0;
}

/* After a successful upload: the daemon's validation step. */
static int check_uploaded(HvConn *conn, const char *pool, const char *name, const char *path,
                          const char *spec)
{
    g_auto(GStrv) parts = g_strsplit(spec, ":", 2);
    g_autoptr(GError) error = NULL;
    HvImageKind kind;

    if (g_strv_length(parts) != 2 || !hv_image_kind_from_string(parts[1], &kind)) {
        fprintf(stderr, "volume-upload: --check wants FORMAT:KIND, not '%s'\n", spec);
        return 2;
    }
    if (hv_image_check(path, parts[0], kind, &error)) {
        printf("checked ok\n");
        return 0;
    }
    printf("rejected %s\n", error->message);
    g_clear_error(&error);
    if (!hv_volume_delete(conn, pool, name, &error))
        return fail(error);
    return 0;
}

static int cmd_upload(int argc, char **argv)
{
    gint64 chunk = 64 * 1024, abort_after = -1;
    g_autofree char *check = NULL;
    GOptionEntry entries[] = {
        {"chunk", 0, 0, G_OPTION_ARG_INT64, &chunk, "bytes per read and write (65536)", "BYTES"},
        {"abort-after", 0, 0, G_OPTION_ARG_INT64, &abort_after,
         "abort once this many bytes are sent", "BYTES"},
        {"check", 0, 0, G_OPTION_ARG_STRING, &check,
         "validate the volume with hv_image_check, delete it when rejected", "FORMAT:KIND"},
        {NULL, 0, 0, 0, NULL, NULL, NULL},
    };
    g_autoptr(GOptionContext) context = g_option_context_new("URI POOL NAME FILE");
    g_autoptr(GError) error = NULL;
    g_autoptr(HvConn) conn = NULL;
    g_autoptr(HvUpload) upload = NULL;
    g_autofree char *buf = NULL;
    g_autofree char *sha256 = NULL;
    g_autofree char *path = NULL;
    guint64 size = 0;
    int fd;

    g_option_context_add_main_entries(context, entries, NULL);
    if (!g_option_context_parse(context, &argc, &argv, &error)) {
        fprintf(stderr, "volume-upload: %s\n", error->message);
        return 2;
    }
    if (argc != 5 || chunk < 1 || chunk > 64 * 1024 * 1024) {
        fprintf(stderr, "usage: volume-upload upload [OPTION...] URI POOL NAME FILE\n");
        return 2;
    }
    fd = open(argv[4], O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "volume-upload: cannot open %s: %s\n", argv[4], g_strerror(errno));
        return 1;
    }
    conn = open_uri(argv[1]);
    if (!conn) {
        close(fd);
        return 1;
    }
    upload = hv_volume_upload_begin(conn, argv[2], argv[3], &error);
    if (!upload) {
        close(fd);
        return fail(error);
    }
    buf = g_malloc((gsize)chunk);
    for (;;) {
        ssize_t n = read(fd, buf, (size_t)chunk);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            fprintf(stderr, "volume-upload: reading %s: %s\n", argv[4], g_strerror(errno));
            close(fd);
            return 1; /* freeing the upload removes the volume */
        }
        if (n == 0)
            break;
        if (!hv_volume_upload_write(upload, buf, (gsize)n, &error)) {
            close(fd);
            return fail(error);
        }
        if (abort_after >= 0 && hv_upload_get_size(upload) >= (guint64)abort_after) {
            close(fd);
            if (!hv_volume_upload_abort(upload, &error))
                return fail(error);
            printf("aborted %" G_GUINT64_FORMAT "\n", hv_upload_get_size(upload));
            return 0;
        }
    }
    close(fd);
    if (!hv_volume_upload_finish(upload, &sha256, &size, &error))
        return fail(error);
    path = g_strdup(hv_upload_path(upload));
    printf("path %s\nsha256 %s\nsize %" G_GUINT64_FORMAT "\nvmhwm_kib %ld\n", path, sha256, size,
           vmhwm_kib());
    fflush(stdout);
    if (check)
        return check_uploaded(conn, argv[2], argv[3], path, check);
    return 0;
}

int main(int argc, char **argv)
{
    virSetErrorFunc(NULL, quiet_libvirt);
    /* As virsh does: a libvirtd that dies under a UNIX-socket connection
     * must fail the call (EPIPE), not kill us. */
    signal(SIGPIPE, SIG_IGN);
    if (argc >= 2 && strcmp(argv[1], "ensure-pools") == 0)
        return cmd_ensure_pools(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "upload") == 0)
        return cmd_upload(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "overlay") == 0)
        return cmd_overlay(argc - 1, argv + 1);
    fprintf(stderr, "usage: volume-upload ensure-pools|upload|overlay ...\n");
    return 2;
}
