/* stack create | list | show | start | stop | force-stop | reboot | pause |
 * resume | delete | console | stats | migrate | device attach | device
 * detach: /v1/stacks (tenants). */
#include "cli/commands.h"
#include "cli/console.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "api/spec.h"
#include "api/stack.h"
#include "api/stats.h"

/* Bounds of flags the API bounds too; the API has the last word. */
#define STACK_TAIL_MAX (64 * 1024 * 1024)

/* ---- printing ------------------------------------------------------------------ */

static char *boot_text(const ApiStackSpec *spec)
{
    if (spec->boot_disk != NULL)
        return g_strdup_printf("disk %s", spec->boot_disk);
    if (spec->boot_initrd != NULL)
        return g_strdup_printf("kernel %s, initrd %s", spec->boot_kernel, spec->boot_initrd);
    return g_strdup_printf("kernel %s", spec->boot_kernel);
}

/* The devices the stack holds: "test-edu-0 (test-edu, edu), ..."; NULL for
 * none.  One not yet allocated shows its class. */
static char *devices_text(const ApiStackSpec *spec)
{
    if (spec->devices->len == 0)
        return NULL;
    GString *text = g_string_new(NULL);
    for (guint i = 0; i < spec->devices->len; i++) {
        const ApiStackDevice *device = g_ptr_array_index(spec->devices, i);
        if (i > 0)
            g_string_append(text, ", ");
        if (device->id != NULL)
            g_string_append_printf(text, "%s (%s, %s)", device->id, device->class_name,
                                   device->model != NULL ? device->model : "-");
        else
            g_string_append(text, device->class_name);
    }
    return g_string_free(text, FALSE);
}

/* The NICs: "lab (52:54:00:12:34:56, 10.200.0.5), ..." ("-" for no lease
 * yet); NULL for none. */
static char *nics_text(const ApiStackSpec *spec)
{
    if (spec->nics->len == 0)
        return NULL;
    GString *text = g_string_new(NULL);
    for (guint i = 0; i < spec->nics->len; i++) {
        const ApiStackNic *nic = g_ptr_array_index(spec->nics, i);
        g_string_append_printf(text, "%s%s (%s, %s)", i > 0 ? ", " : "", nic->network,
                               nic->mac != NULL ? nic->mac : "-", nic->ip != NULL ? nic->ip : "-");
    }
    return g_string_free(text, FALSE);
}

static void stack_rows(OutputTable *table, const ApiStack *stack)
{
    const ApiStackSpec *spec = stack->spec;
    g_autofree char *vcpus = g_strdup_printf("%u", spec->vcpus);
    g_autofree char *memory = g_strdup_printf("%u MiB", spec->memory_mib);
    g_autofree char *boot = boot_text(spec);
    g_autofree char *devices = devices_text(spec);
    g_autofree char *nics = nics_text(spec);

    output_table_add(table, "name:", spec->name);
    output_table_add(table, "id:", stack->id);
    output_table_add(table, "tenant:", stack->tenant);
    output_table_add(table, "state:", api_stack_state_to_string(stack->state));
    output_table_add(table, "vcpus:", vcpus);
    output_table_add(table, "memory:", memory);
    output_table_add(table, "boot:", boot);
    if (spec->boot_cmdline != NULL)
        output_table_add(table, "cmdline:", spec->boot_cmdline);
    output_table_add(table, "firmware:",
                     spec->secure_boot ? "uefi (secure boot)"
                                       : (spec->firmware != NULL ? spec->firmware : "bios"));
    if (spec->cloud_init != NULL) {
        g_autofree char *seed =
            g_strdup_printf("user data %" G_GINT64_FORMAT " bytes (sha256 %s), %u ssh keys",
                            spec->cloud_init->user_data_bytes, spec->cloud_init->user_data_sha256,
                            spec->cloud_init->ssh_authorized_keys->len);
        output_table_add(table, "cloud-init:", seed);
    }
    output_table_add(table, "cpu:", spec->cpu);
    output_table_add(table, "iommu:", spec->iommu != NULL ? spec->iommu : "none");
    output_table_add(table, "devices:", devices);
    output_table_add(table, "nics:", nics);
    output_table_add(table, "host:", stack->host);
    output_table_add(table, "backend:", stack->backend);
    output_table_add(table, "error:", stack->error);
    output_table_add(table, "created:", stack->created_at);
    output_table_add(table, "updated:", stack->updated_at);
}

/* Decodes body.stack; prints the failure and gives NULL. */
static ApiStack *decode_stack(Ctl *ctl, json_object *body, int *status)
{
    g_autoptr(GError) error = NULL;
    json_object *member = ctl_member(body, "stack", &error);
    ApiStack *stack = member != NULL ? api_stack_from_json(member, &error) : NULL;
    if (stack == NULL)
        *status = ctl_fail_answer(ctl, "stack", error);
    return stack;
}

static const char *const name_names[] = {"NAME", NULL};

/* ---- create ------------------------------------------------------------------ */

typedef struct {
    gint64 vcpus;
    gint64 memory;
    gboolean vcpus_seen;
    gboolean memory_seen;
    const char *kernel;
    const char *initrd;
    const char *cmdline;
    const char *disk;
    const char *cpu;
    const char *iommu;
    GPtrArray *devices; /* borrowed strings */
    GPtrArray *nics;    /* borrowed strings: NETWORK[,mac=MAC] */
    const char *file;
    const char *firmware;
    gboolean secure_boot;
    const char *user_data; /* a file */
    const char *meta_data; /* a file: a JSON object */
    const char *hostname;  /* meta data local-hostname */
    GPtrArray *ssh_keys;   /* borrowed: files of authorized_keys lines */
    gboolean no_start;
    gboolean wait;
} CreateFlags;

static gboolean read_flag_file(const char *flag, const char *path, char **text, int *status)
{
    g_autoptr(GError) error = NULL;
    if (!g_file_get_contents(path, text, NULL, &error)) {
        fprintf(stderr, "turtlectl: stack create: %s: %s\n", flag, error->message);
        *status = CTL_EXIT_ERROR;
        return FALSE;
    }
    return TRUE;
}

/* The cloud-init seed of --user-data, --meta-data, --hostname and --ssh-key
 * (each file: one key per line; blank lines and # comments skipped, as
 * sshd reads authorized_keys).  NULL in *out when none was given; FALSE on a
 * file that cannot be read.  Whether the contents are good is the API's to
 * say. */
static gboolean cloud_init_from_flags(const CreateFlags *f, ApiCloudInit **out, int *status)
{
    *out = NULL;
    if (f->user_data == NULL && f->meta_data == NULL && f->hostname == NULL &&
        f->ssh_keys->len == 0)
        return TRUE;
    g_autoptr(ApiCloudInit) ci = api_cloud_init_new();
    g_autofree char *user_data = NULL;
    if (f->user_data != NULL) {
        if (!read_flag_file("--user-data", f->user_data, &user_data, status))
            return FALSE;
        api_cloud_init_set_user_data(ci, user_data);
    }
    if (f->meta_data != NULL) {
        g_autofree char *text = NULL;
        g_autoptr(GError) error = NULL;
        if (!read_flag_file("--meta-data", f->meta_data, &text, status))
            return FALSE;
        json_object *meta = api_json_parse(text, strlen(text), API_JSON_MAX_DEPTH, &error);
        if (meta == NULL || !json_object_is_type(meta, json_type_object)) {
            fprintf(stderr, "turtlectl: stack create: --meta-data: %s is not a JSON object%s%s\n",
                    f->meta_data, error ? ": " : "", error ? error->message : "");
            json_object_put(meta);
            *status = CTL_EXIT_ERROR;
            return FALSE;
        }
        json_object_put(ci->meta_data);
        ci->meta_data = meta;
    }
    if (f->hostname != NULL)
        json_object_object_add(ci->meta_data, API_CLOUD_INIT_HOSTNAME,
                               json_object_new_string(f->hostname));
    for (guint i = 0; i < f->ssh_keys->len; i++) {
        g_autofree char *text = NULL;
        if (!read_flag_file("--ssh-key", g_ptr_array_index(f->ssh_keys, i), &text, status))
            return FALSE;
        g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
        for (guint j = 0; lines[j] != NULL; j++) {
            char *line = g_strstrip(lines[j]);
            if (*line != '\0' && *line != '#')
                g_ptr_array_add(ci->ssh_authorized_keys, g_strdup(line));
        }
    }
    *out = g_steal_pointer(&ci);
    return TRUE;
}

/* --nic NETWORK[,mac=MAC] as a NIC (its MAC in lower case); NULL when it
 * is not of that form. */
static ApiStackNic *nic_from_flag(const char *text)
{
    g_auto(GStrv) parts = g_strsplit(text, ",", -1);
    const char *mac = NULL;

    if (!api_name_is_valid(parts[0]))
        return NULL;
    for (guint i = 1; parts[i] != NULL; i++) {
        if (mac != NULL || !g_str_has_prefix(parts[i], "mac=") || parts[i][4] == '\0')
            return NULL;
        mac = parts[i] + 4;
    }
    g_autofree char *lower = mac != NULL ? g_ascii_strdown(mac, -1) : NULL;
    return api_stack_nic_new(parts[0], lower, NULL);
}

/* The spec from the flags, or a usage error (exit status in *status). */
static json_object *spec_from_flags(Ctl *ctl, const char *name, const CreateFlags *f, int *status)
{
    static const char *const iommus[] = {"none", "intel", "virtio", NULL};

    if (!f->vcpus_seen) {
        *status = ctl_usage_error(ctl, "stack create: missing --vcpus");
        return NULL;
    }
    if (!f->memory_seen) {
        *status = ctl_usage_error(ctl, "stack create: missing --memory");
        return NULL;
    }
    if ((f->kernel != NULL) == (f->disk != NULL)) {
        *status = ctl_usage_error(ctl, "stack create: give either --kernel or --disk");
        return NULL;
    }
    if (f->disk != NULL && (f->initrd != NULL || f->cmdline != NULL)) {
        *status = ctl_usage_error(ctl, "stack create: --initrd and --cmdline go with --kernel");
        return NULL;
    }
    if (f->iommu != NULL && !g_strv_contains(iommus, f->iommu)) {
        *status = ctl_usage_error(
            ctl, "stack create: --iommu: must be none, intel or virtio (not '%s')", f->iommu);
        return NULL;
    }
    for (guint i = 0; i < f->devices->len; i++) {
        const char *klass = g_ptr_array_index(f->devices, i);
        /* A PCI address is what --device took before device classes. */
        if (!api_name_is_valid(klass)) {
            *status = ctl_usage_error(ctl,
                                      "stack create: --device: must be a device class name: 1-63 "
                                      "lowercase letters, digits and '-' (not '%s')",
                                      klass);
            return NULL;
        }
    }
    if (f->devices->len > API_SPEC_DEVICES_MAX) {
        *status =
            ctl_usage_error(ctl, "stack create: at most %d --device options", API_SPEC_DEVICES_MAX);
        return NULL;
    }
    if (f->nics->len > API_SPEC_NICS_MAX) {
        *status = ctl_usage_error(ctl, "stack create: at most %d --nic options", API_SPEC_NICS_MAX);
        return NULL;
    }
    if (f->cpu != NULL && strcmp(f->cpu, "host-passthrough") != 0 &&
        strcmp(f->cpu, "host-model") != 0 && !g_str_has_prefix(f->cpu, "named:")) {
        *status = ctl_usage_error(
            ctl,
            "stack create: --cpu: must be host-passthrough, host-model or named:MODEL (not '%s')",
            f->cpu);
        return NULL;
    }

    g_autoptr(ApiStackSpec) spec = api_stack_spec_new();
    spec->name = g_strdup(name);
    spec->vcpus = (guint)f->vcpus;
    spec->memory_mib = (guint)f->memory;
    spec->boot_kernel = g_strdup(f->kernel);
    spec->boot_initrd = g_strdup(f->initrd);
    spec->boot_cmdline = g_strdup(f->cmdline);
    spec->boot_disk = g_strdup(f->disk);
    spec->cpu = g_strdup(f->cpu);
    g_free(spec->iommu);
    spec->iommu = g_strdup(f->iommu != NULL ? f->iommu : "none");
    for (guint i = 0; i < f->devices->len; i++)
        g_ptr_array_add(spec->devices,
                        api_stack_device_new(g_ptr_array_index(f->devices, i), NULL, NULL, NULL));
    for (guint i = 0; i < f->nics->len; i++) {
        const char *text = g_ptr_array_index(f->nics, i);
        ApiStackNic *nic = nic_from_flag(text);
        if (nic == NULL) {
            *status = ctl_usage_error(ctl,
                                      "stack create: --nic: must be NETWORK[,mac=MAC], NETWORK a "
                                      "network name: 1-63 lowercase letters, digits and '-' "
                                      "(not '%s')",
                                      text);
            return NULL;
        }
        g_ptr_array_add(spec->nics, nic);
    }
    spec->start = !f->no_start;
    g_free(spec->firmware);
    spec->firmware =
        g_strdup(f->firmware != NULL ? f->firmware : (f->secure_boot ? "uefi" : "bios"));
    spec->secure_boot = f->secure_boot;
    if (!cloud_init_from_flags(f, &spec->cloud_init, status))
        return NULL;
    /* Names and the like are the API's to judge: its message, as is, says
     * what is wrong. */
    json_object *json = api_stack_spec_to_json(spec);
    /* Without --iommu the API picks: intel with devices, none without. */
    json_object *nesting = NULL;
    if (f->iommu == NULL && json_object_object_get_ex(json, "nesting", &nesting))
        json_object_object_del(nesting, "iommu");
    return json;
}

/* The spec of --file: NAME and --no-start override what it says; a spec
 * the API would refuse is refused here, naming the file. */
static json_object *spec_from_file(Ctl *ctl, const char *name, const CreateFlags *f, int *status)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *text = NULL;
    gsize len = 0;

    if (f->vcpus_seen || f->memory_seen || f->kernel != NULL || f->initrd != NULL ||
        f->cmdline != NULL || f->disk != NULL || f->cpu != NULL || f->iommu != NULL ||
        f->devices->len > 0 || f->nics->len > 0 || f->firmware != NULL || f->secure_boot ||
        f->user_data != NULL || f->meta_data != NULL || f->hostname != NULL ||
        f->ssh_keys->len > 0) {
        *status = ctl_usage_error(ctl, "stack create: --file excludes the spec options "
                                       "(--vcpus, --memory, --kernel, ...)");
        return NULL;
    }
    if (!g_file_get_contents(f->file, &text, &len, &error)) {
        fprintf(stderr, "turtlectl: stack create: --file: cannot read %s: %s\n", f->file,
                g_strerror(errno != 0 ? errno : EIO));
        *status = CTL_EXIT_ERROR;
        return NULL;
    }
    g_autoptr(json_object) spec = api_json_parse(text, len, API_JSON_MAX_DEPTH, &error);
    if (spec != NULL && !json_object_is_type(spec, json_type_object))
        g_clear_pointer(&spec, json_object_put);
    if (spec == NULL) {
        fprintf(stderr, "turtlectl: %s: not a JSON object%s%s\n", f->file,
                error != NULL ? ": " : "", error != NULL ? error->message : "");
        *status = CTL_EXIT_ERROR;
        return NULL;
    }
    if (name != NULL)
        json_object_object_add(spec, "name", json_object_new_string(name));
    if (f->no_start)
        json_object_object_add(spec, "start", json_object_new_boolean(FALSE));
    g_autoptr(ApiStackSpec) decoded = api_stack_spec_from_json(spec, &error);
    if (decoded == NULL) {
        fprintf(stderr, "turtlectl: %s: %s\n", f->file, error->message);
        *status = CTL_EXIT_ERROR;
        return NULL;
    }
    return g_steal_pointer(&spec);
}

static int stack_create(Ctl *ctl, int argc, char **argv)
{
    static const char *const names[] = {"[NAME]", NULL};
    g_autoptr(GPtrArray) devices = g_ptr_array_new();
    g_autoptr(GPtrArray) nics = g_ptr_array_new();
    g_autoptr(GPtrArray) ssh_keys = g_ptr_array_new();
    CreateFlags f = {.devices = devices, .nics = nics, .ssh_keys = ssh_keys};
    const ArgSpec specs[] = {
        {"--vcpus", ARG_INT, 1, API_SPEC_VCPUS_MAX, &f.vcpus, &f.vcpus_seen},
        {"--memory", ARG_INT, API_SPEC_MEMORY_MIN_MIB, API_SPEC_MEMORY_MAX_MIB, &f.memory,
         &f.memory_seen},
        {"--kernel", ARG_STRING, 0, 0, &f.kernel, NULL},
        {"--initrd", ARG_STRING, 0, 0, &f.initrd, NULL},
        {"--cmdline", ARG_STRING, 0, 0, &f.cmdline, NULL},
        {"--disk", ARG_STRING, 0, 0, &f.disk, NULL},
        {"--cpu", ARG_STRING, 0, 0, &f.cpu, NULL},
        {"--iommu", ARG_STRING, 0, 0, &f.iommu, NULL},
        {"--device", ARG_STRINGS, 0, 0, devices, NULL},
        {"--nic", ARG_STRINGS, 0, 0, nics, NULL},
        {"--firmware", ARG_STRING, 0, 0, &f.firmware, NULL},
        {"--secure-boot", ARG_FLAG, 0, 0, &f.secure_boot, NULL},
        {"--user-data", ARG_STRING, 0, 0, &f.user_data, NULL},
        {"--meta-data", ARG_STRING, 0, 0, &f.meta_data, NULL},
        {"--hostname", ARG_STRING, 0, 0, &f.hostname, NULL},
        {"--ssh-key", ARG_STRINGS, 0, 0, ssh_keys, NULL},
        {"--file", ARG_STRING, 0, 0, &f.file, NULL},
        {"--no-start", ARG_FLAG, 0, 0, &f.no_start, NULL},
        {"--wait", ARG_FLAG, 0, 0, &f.wait, NULL},
        {NULL, ARG_FLAG, 0, 0, NULL, NULL},
    };
    g_autoptr(GPtrArray) args = NULL;
    g_autoptr(json_object) body = NULL;
    int status = CTL_EXIT_OK;

    /* NAME may come from --file only. */
    if (!cmd_parse(ctl, "create", argc, argv, specs, names, &args, &status))
        return status;
    const char *name = args->len > 0 ? g_ptr_array_index(args, 0) : NULL;
    if (name == NULL && f.file == NULL)
        return ctl_usage_error(ctl, "stack create: missing NAME");

    g_autoptr(json_object) request = f.file != NULL ? spec_from_file(ctl, name, &f, &status)
                                                    : spec_from_flags(ctl, name, &f, &status);
    if (request == NULL)
        return status;
    if (!cmd_call(ctl, "POST", "/v1/stacks", request, &body, &status))
        return status;
    if (f.wait)
        return cmd_operation_finish(ctl, body, TRUE);

    g_autoptr(ApiStack) stack = decode_stack(ctl, body, &status);
    if (stack == NULL)
        return status;
    if (ctl->format != OUTPUT_TABLE)
        return cmd_operation_finish(ctl, body, FALSE);
    g_autoptr(OutputTable) table = output_table_new(NULL, 2);
    stack_rows(table, stack);
    output_table_print(table, stdout);
    fputs("\noperation:\n", stdout);
    return cmd_operation_finish(ctl, body, FALSE);
}

/* ---- list ------------------------------------------------------------------ */

static void stack_row(OutputTable *table, gpointer item)
{
    const ApiStack *stack = item;
    g_autofree char *vcpus = g_strdup_printf("%u", stack->spec->vcpus);
    g_autofree char *memory = g_strdup_printf("%u MiB", stack->spec->memory_mib);
    output_table_add(table, stack->spec->name, stack->tenant,
                     api_stack_state_to_string(stack->state), vcpus, memory, stack->backend,
                     stack->created_at);
}

static int stack_list(Ctl *ctl, int argc, char **argv)
{
    static const char *const headers[] = {"NAME",   "TENANT",  "STATE",   "VCPUS",
                                          "MEMORY", "BACKEND", "CREATED", NULL};
    static const CmdList list = {.path = "/v1/stacks",
                                 .member = "stacks",
                                 .decode = api_stack_list_from_json,
                                 .headers = headers,
                                 .row = stack_row,
                                 .filters = {"tenant"}};
    return cmd_list(ctl, &list, argc, argv);
}

/* ---- show, actions, delete ------------------------------------------------------- */

static int stack_show(Ctl *ctl, int argc, char **argv)
{
    g_autoptr(GPtrArray) args = NULL;
    g_autoptr(json_object) body = NULL;
    int status = CTL_EXIT_OK;

    if (!cmd_parse(ctl, "show", argc, argv, NULL, name_names, &args, &status))
        return status;
    g_autofree char *path = ctl_path("/v1/stacks", g_ptr_array_index(args, 0), NULL);
    if (!cmd_call(ctl, "GET", path, NULL, &body, &status))
        return status;
    g_autoptr(ApiStack) stack = decode_stack(ctl, body, &status);
    if (stack == NULL)
        return status;
    if (!ctl_emit(ctl, body)) {
        g_autoptr(OutputTable) table = output_table_new(NULL, 2);
        stack_rows(table, stack);
        output_table_print(table, stdout);
    }
    return CTL_EXIT_OK;
}

/* start, stop, ...: argv[0] is the action. */
static int stack_action(Ctl *ctl, int argc, char **argv)
{
    gboolean wait = FALSE;
    const ArgSpec specs[] = {
        {"--wait", ARG_FLAG, 0, 0, &wait, NULL},
        {NULL, ARG_FLAG, 0, 0, NULL, NULL},
    };
    g_autoptr(GPtrArray) args = NULL;
    g_autoptr(json_object) body = NULL;
    int status = CTL_EXIT_OK;
    const char *action = argv[0];

    if (!cmd_parse(ctl, action, argc, argv, specs, name_names, &args, &status))
        return status;
    g_autofree char *path = ctl_path("/v1/stacks", g_ptr_array_index(args, 0), "actions", NULL);
    g_autoptr(json_object) request = json_object_new_object();
    json_object_object_add(request, "action", json_object_new_string(action));
    if (!cmd_call(ctl, "POST", path, request, &body, &status))
        return status;
    return cmd_operation_finish(ctl, body, wait);
}

static int stack_delete(Ctl *ctl, int argc, char **argv)
{
    gboolean wait = FALSE;
    const ArgSpec specs[] = {
        {"--wait", ARG_FLAG, 0, 0, &wait, NULL},
        {NULL, ARG_FLAG, 0, 0, NULL, NULL},
    };
    g_autoptr(GPtrArray) args = NULL;
    g_autoptr(json_object) body = NULL;
    int status = CTL_EXIT_OK;

    if (!cmd_parse(ctl, "delete", argc, argv, specs, name_names, &args, &status))
        return status;
    g_autofree char *path = ctl_path("/v1/stacks", g_ptr_array_index(args, 0), NULL);
    if (!cmd_call(ctl, "DELETE", path, NULL, &body, &status))
        return status;
    return cmd_operation_finish(ctl, body, wait);
}

/* ---- console ------------------------------------------------------------------ */

typedef struct {
    int write_errno;
} Console;

static gboolean on_console(const char *data, gsize len, gpointer user_data)
{
    Console *console = user_data;
    /* Raw bytes, at once: someone is watching, or a pipe is. */
    if (fwrite(data, 1, len, stdout) != len || fflush(stdout) != 0) {
        console->write_errno = errno;
        return FALSE;
    }
    return TRUE;
}

static int stack_console(Ctl *ctl, int argc, char **argv)
{
    gint64 tail = 0;
    gboolean tail_seen = FALSE;
    gboolean follow = FALSE;
    gboolean force = FALSE;
    const ArgSpec specs[] = {
        {"--tail", ARG_INT, 0, STACK_TAIL_MAX, &tail, &tail_seen},
        {"--follow", ARG_FLAG, 0, 0, &follow, NULL},
        {"--force", ARG_FLAG, 0, 0, &force, NULL},
        {NULL, ARG_FLAG, 0, 0, NULL, NULL},
    };
    g_autoptr(GPtrArray) args = NULL;
    g_autoptr(GError) error = NULL;
    int status = CTL_EXIT_OK;

    if (!cmd_parse(ctl, "console", argc, argv, specs, name_names, &args, &status))
        return status;
    /* Interactive only where someone types and reads: a script or a pipe
     * gets the output as before. */
    gboolean interactive = !follow && isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
    if (force && follow)
        return ctl_usage_error(ctl, "stack console: --force and --follow exclude each other");
    if (force && !interactive)
        return ctl_usage_error(ctl, "stack console: --force needs a terminal on stdin and stdout");
    if (!ctl_connect(ctl, &error))
        return ctl_fail(ctl, error);
    const char *name = g_ptr_array_index(args, 0);
    g_autofree char *base = ctl_path("/v1/stacks", name, "console", NULL);
    GString *query = g_string_new(base);
    char sep = '?';
    if (tail_seen) {
        g_string_append_printf(query, "%ctail=%" G_GINT64_FORMAT, sep, tail);
        sep = '&';
    }
    if (follow)
        g_string_append_printf(query, "%cfollow=1", sep);
    if (force)
        g_string_append_printf(query, "%cforce=1", sep);
    g_autofree char *path = g_string_free(query, FALSE);

    if (interactive) {
        g_autoptr(ClientSocket) socket = client_websocket(ctl->client, path, &error);
        if (socket == NULL || !console_interactive(socket, name, &error))
            return ctl_fail(ctl, error);
        return CTL_EXIT_OK;
    }

    Console console = {0};
    /* A quiet L1 prints nothing for hours: no silence limit. */
    gboolean ok = client_stream(ctl->client, path, "text/plain", 0, on_console, &console, &error);
    if (!ok)
        return ctl_fail(ctl, error);
    if (console.write_errno != 0) {
        fprintf(stderr, "turtlectl: cannot write the console output: %s\n",
                g_strerror(console.write_errno));
        return CTL_EXIT_ERROR;
    }
    if (follow) {
        fprintf(stderr, "turtlectl: turtled at %s ended the console stream\n",
                client_target(ctl->client));
        return CTL_EXIT_ERROR;
    }
    return CTL_EXIT_OK;
}

/* ---- stats ------------------------------------------------------------------ */

static char *count_text(gint64 value)
{
    return g_strdup_printf("%" G_GINT64_FORMAT, value);
}

static void stats_table(const ApiStackStats *stats, FILE *out)
{
    g_autoptr(OutputTable) table = output_table_new(NULL, 2);
    g_autofree char *cpu = NULL;
    g_autofree char *memory = NULL;
    g_autofree char *rss = NULL;
    g_autofree char *read = NULL;
    g_autofree char *write = NULL;
    g_autofree char *migration = NULL;

    if (stats->has_cpu)
        cpu = g_strdup_printf("%.3f s over %" G_GINT64_FORMAT " vCPUs",
                              (double)stats->cpu.time_ns / 1e9, stats->cpu.vcpus);
    if (stats->has_memory) {
        memory = g_strdup_printf("%" G_GINT64_FORMAT " KiB of %" G_GINT64_FORMAT " KiB",
                                 stats->memory.current_kib, stats->memory.maximum_kib);
        if (stats->memory.rss_kib >= 0)
            rss = g_strdup_printf("%" G_GINT64_FORMAT " KiB", stats->memory.rss_kib);
    }
    if (stats->has_block) {
        g_autofree char *rd = count_text(stats->block.read_bytes);
        g_autofree char *wr = count_text(stats->block.write_bytes);
        read = g_strdup_printf("%s bytes in %" G_GINT64_FORMAT " requests", rd,
                               stats->block.read_requests);
        write = g_strdup_printf("%s bytes in %" G_GINT64_FORMAT " requests", wr,
                                stats->block.write_requests);
    }
    if (stats->has_last_migration)
        migration =
            g_strdup_printf("to/from %s at %s: %" G_GINT64_FORMAT " ms, downtime %" G_GINT64_FORMAT
                            " ms, %" G_GINT64_FORMAT " bytes",
                            stats->last_migration.peer, stats->last_migration.finished_at,
                            stats->last_migration.total_ms, stats->last_migration.downtime_ms,
                            stats->last_migration.bytes);

    output_table_add(table, "stack:", stats->stack);
    output_table_add(table, "state:", api_stack_state_to_string(stats->state));
    output_table_add(table, "collected:", stats->collected_at);
    output_table_add(table, "cpu time:", cpu);
    output_table_add(table, "memory:", memory);
    output_table_add(table, "rss:", rss);
    output_table_add(table, "block read:", read);
    output_table_add(table, "block write:", write);
    output_table_add(table, "last migration:", migration);
    output_table_print(table, out);
}

static int stack_stats(Ctl *ctl, int argc, char **argv)
{
    g_autoptr(GPtrArray) args = NULL;
    g_autoptr(json_object) body = NULL;
    g_autoptr(GError) error = NULL;
    int status = CTL_EXIT_OK;

    if (!cmd_parse(ctl, "stats", argc, argv, NULL, name_names, &args, &status))
        return status;
    g_autofree char *path = ctl_path("/v1/stacks", g_ptr_array_index(args, 0), "stats", NULL);
    if (!cmd_call(ctl, "GET", path, NULL, &body, &status))
        return status;
    g_autoptr(ApiStackStats) stats = api_stack_stats_body_from_json(body, &error);
    if (stats == NULL)
        return ctl_fail_answer(ctl, NULL, error);
    if (!ctl_emit(ctl, body))
        stats_table(stats, stdout);
    return CTL_EXIT_OK;
}

static int stack_migrate(Ctl *ctl, int argc, char **argv)
{
    gboolean wait = FALSE;
    const char *peer = NULL;
    const ArgSpec specs[] = {
        {"--to", ARG_STRING, 0, 0, &peer, NULL},
        {"--wait", ARG_FLAG, 0, 0, &wait, NULL},
        {NULL, ARG_FLAG, 0, 0, NULL, NULL},
    };
    g_autoptr(GPtrArray) args = NULL;
    g_autoptr(json_object) body = NULL;
    int status = CTL_EXIT_OK;

    if (!cmd_parse(ctl, "migrate", argc, argv, specs, name_names, &args, &status))
        return status;
    if (peer == NULL)
        return ctl_usage_error(ctl, "stack migrate: missing --to PEER");
    /* A name no peer can have is a typo: say so before anything is sent. */
    if (!api_name_is_valid(peer))
        return ctl_usage_error(ctl,
                               "stack migrate: --to: must be a peer name: 1-63 lowercase letters, "
                               "digits and '-' (not '%s')",
                               peer);
    g_autofree char *path = ctl_path("/v1/stacks", g_ptr_array_index(args, 0), "migrate", NULL);
    g_autoptr(json_object) request = json_object_new_object();
    json_object_object_add(request, "peer", json_object_new_string(peer));
    /* Live is the only kind the API offers: a stack stops for milliseconds, not for a copy. */
    json_object_object_add(request, "live", json_object_new_boolean(TRUE));
    if (!cmd_call(ctl, "POST", path, request, &body, &status))
        return status;
    return cmd_operation_finish(ctl, body, wait);
}

/* ---- devices ------------------------------------------------------------------ */

static int stack_device_attach(Ctl *ctl, int argc, char **argv)
{
    static const char *const names[] = {"NAME", "CLASS", NULL};
    gboolean wait = FALSE;
    const ArgSpec specs[] = {
        {"--wait", ARG_FLAG, 0, 0, &wait, NULL},
        {NULL, ARG_FLAG, 0, 0, NULL, NULL},
    };
    g_autoptr(GPtrArray) args = NULL;
    g_autoptr(json_object) body = NULL;
    int status = CTL_EXIT_OK;

    if (!cmd_parse(ctl, "device attach", argc, argv, specs, names, &args, &status))
        return status;
    g_autofree char *path = ctl_path("/v1/stacks", g_ptr_array_index(args, 0), "devices", NULL);
    g_autoptr(json_object) request = json_object_new_object();
    json_object_object_add(request, "class", json_object_new_string(g_ptr_array_index(args, 1)));
    if (!cmd_call(ctl, "POST", path, request, &body, &status))
        return status;
    return cmd_operation_finish(ctl, body, wait);
}

static int stack_device_detach(Ctl *ctl, int argc, char **argv)
{
    static const char *const names[] = {"NAME", "DEVICE-ID", NULL};
    gboolean wait = FALSE;
    const ArgSpec specs[] = {
        {"--wait", ARG_FLAG, 0, 0, &wait, NULL},
        {NULL, ARG_FLAG, 0, 0, NULL, NULL},
    };
    g_autoptr(GPtrArray) args = NULL;
    g_autoptr(json_object) body = NULL;
    int status = CTL_EXIT_OK;

    if (!cmd_parse(ctl, "device detach", argc, argv, specs, names, &args, &status))
        return status;
    g_autofree char *path = ctl_path("/v1/stacks", g_ptr_array_index(args, 0), "devices",
                                     g_ptr_array_index(args, 1), NULL);
    if (!cmd_call(ctl, "DELETE", path, NULL, &body, &status))
        return status;
    return cmd_operation_finish(ctl, body, wait);
}

/* ---- the verbs ------------------------------------------------------------------ */

/* The --wait of every verb that starts an operation, for its "Options:". */
#define WAIT_OPTION_HELP                                                                           \
    "  --wait             wait until the operation ends, showing its progress on\n"                \
    "                     stderr, then print it (exit 1 if it failed or was\n"                     \
    "                     cancelled); without it the operation is printed at once\n"               \
    "                     (turtlectl operation wait ID follows it later)"

/* What refuses every action (the API's 409). */
#define ACTION_REFUSED_HELP                                                                        \
    "Refused (exit 1) while the stack is migrating or being deleted, or while\n"                   \
    "another operation works on it.\n"

static const CmdVerb stack_device_verbs[] = {
    {"attach", stack_device_attach, "NAME CLASS [--wait]",
     "hot-plug a device of a class into a stack",
     "Claims a free device of CLASS (turtlectl device-class list) for the stack\n"
     "at once, within the tenant's device quota, then plugs it into the L1 and\n"
     "into the stack's definition.  The stack must be running, paused or\n"
     "stopped and have a vIOMMU (see stack create --iommu).  Devices of an edu\n"
     "class cannot be hot-plugged: ask for them at create (--device).  If the\n"
     "operation fails, the device goes back to its class.\n"
     "\n"
     "Options:\n" WAIT_OPTION_HELP,
     NULL},
    {"detach", stack_device_detach, "NAME DEVICE-ID [--wait]", "unplug a device from a stack",
     "Unplugs the device DEVICE-ID (as turtlectl stack show lists it) from the\n"
     "L1, waiting up to 60 s for the L1 to let it go, and from the stack's\n"
     "definition, then gives it back to its class.  The stack must be running,\n"
     "paused or stopped.  An edu device goes back only with the stack (stack\n"
     "delete).\n"
     "\n"
     "Options:\n" WAIT_OPTION_HELP,
     NULL},
    {NULL, NULL, NULL, NULL, NULL, NULL},
};

static const CmdVerb stack_verbs[] = {
    {"create", stack_create,
     "NAME --vcpus N --memory MIB (--kernel IMAGE | --disk IMAGE) [--initrd IMAGE] "
     "[--cmdline TEXT] [--cpu CPU] [--iommu none|intel|virtio] [--device CLASS]... "
     "[--nic NETWORK[,mac=MAC]]... [--firmware bios|uefi] [--secure-boot] [--user-data FILE] "
     "[--meta-data FILE] [--hostname HOSTNAME] [--ssh-key FILE]... [--no-start] [--wait]\n"
     "[NAME] --file FILE [--no-start] [--wait]",
     "create a stack (an L1 guest) and start it",
     "The stack boots a kernel image (with an initrd image and a command line)\n"
     "or a copy-on-write overlay of a disk image: images of yours, ready\n"
     "(turtlectl image list).  turtled defines the L1 and starts it, unless\n"
     "--no-start.  Any of --user-data, --meta-data, --hostname and --ssh-key\n"
     "gives the L1 a cloud-init seed.\n"
     "\n"
     "With --file, the spec is read from FILE instead: a JSON object as\n"
     "POST /v1/stacks takes it, checked before it is sent.  NAME, if given,\n"
     "replaces its name.  --file excludes the options from --vcpus to\n"
     "--ssh-key.\n"
     "\n"
     "Options:\n"
     "  --vcpus N          the L1's vCPUs (1-64)\n"
     "  --memory MIB       its memory in MiB (128-1048576)\n"
     "  --kernel IMAGE     boot this kernel image\n"
     "  --disk IMAGE       boot a copy-on-write overlay of this disk image\n"
     "  --initrd IMAGE     with --kernel: this initrd image\n"
     "  --cmdline TEXT     with --kernel: the kernel's command line\n"
     "  --cpu CPU          the L1's CPU: host-passthrough, host-model or\n"
     "                     named:MODEL (default: the backend's)\n"
     "  --iommu none|intel|virtio\n"
     "                     a vIOMMU for the L1 (default: intel with --device,\n"
     "                     else none)\n"
     "  --device CLASS     a device of this device class (turtlectl device-class\n"
     "                     list), the stack's alone; repeat for more (up to 16)\n"
     "  --nic NETWORK[,mac=MAC]\n"
     "                     a NIC on NETWORK (turtlectl network list), with this\n"
     "                     MAC (default: turtled picks one); repeat for more (up\n"
     "                     to 8)\n"
     "  --firmware bios|uefi\n"
     "                     bios (the default), or uefi: OVMF with the stack's own\n"
     "                     UEFI variables (a disk must hold its own EFI loader)\n"
     "  --secure-boot      UEFI secure boot (implies --firmware uefi); the host's\n"
     "                     firmware must offer it\n"
     "  --user-data FILE   the seed's user data (at most 64 KiB)\n"
     "  --meta-data FILE   the seed's meta data (a JSON object)\n"
     "  --hostname HOSTNAME\n"
     "                     the seed's local-hostname\n"
     "  --ssh-key FILE     the OpenSSH public keys in FILE, one a line (blank\n"
     "                     lines and # comments skipped); repeat for more files\n"
     "                     (up to 32 keys in all)\n"
     "  --no-start         define the stack, do not start it\n"
     "  --file FILE        the spec as a JSON file (see above)\n" WAIT_OPTION_HELP,
     NULL},
    {"list", stack_list, "[--limit N [--after CURSOR] [--all]] [--tenant TENANT]",
     "list the stacks",
     "Prints the stacks the caller may see, every page of them: a tenant its\n"
     "own, the operator every tenant's (by tenant, then name).  With --limit,\n"
     "one page of N: in a table the command for the next page follows on\n"
     "stderr; in json or yaml the answer's \"next\" is the cursor.\n"
     "\n"
     "Options:\n"
     "  --limit N          one page of N stacks (1-1000)\n"
     "  --after CURSOR     start after CURSOR (the \"next\" of an earlier page)\n"
     "  --all              with --limit: every page, N stacks a request\n"
     "  --tenant TENANT    the operator only: that tenant's stacks",
     NULL},
    {"show", stack_show, "NAME", "show a stack: its spec, state and devices",
     "Prints the stack's spec (vCPUs, memory, boot images, firmware, cloud-init\n"
     "seed, CPU, vIOMMU), its state, host and backend, its last error, the\n"
     "devices it holds and its NICs (network, MAC, IPv4 address once leased).",
     NULL},
    {"start", stack_action, "NAME [--wait]", "start a stopped stack",
     "Starts the L1 of a stack that is stopped or in error; it ends running.\n" ACTION_REFUSED_HELP
     "\n"
     "Options:\n" WAIT_OPTION_HELP,
     NULL},
    {"stop", stack_action, "NAME [--wait]", "shut a stack down, forced off after a timeout",
     "Presses the ACPI power button of a running or paused stack and waits for\n"
     "the L1 to shut down; after the operator's stop_timeout (60 s by default)\n"
     "turtled forces it off (the operation's stage says so).  It ends "
     "stopped.\n" ACTION_REFUSED_HELP "\n"
     "Options:\n" WAIT_OPTION_HELP,
     NULL},
    {"force-stop", stack_action, "NAME [--wait]", "turn a stack off at once",
     "Pulls the plug of a running, paused, provisioning or error stack: the L1\n"
     "gets no chance to shut down cleanly.  It ends stopped.\n" ACTION_REFUSED_HELP "\n"
     "Options:\n" WAIT_OPTION_HELP,
     NULL},
    {"reboot", stack_action, "NAME [--wait]", "reset a running stack",
     "Resets the L1 of a running stack, the hard way (the reference L1 runs no\n"
     "ACPI daemon that would reboot it cleanly).  It ends running.\n" ACTION_REFUSED_HELP "\n"
     "Options:\n" WAIT_OPTION_HELP,
     NULL},
    {"pause", stack_action, "NAME [--wait]", "pause a running stack",
     "Stops the vCPUs of a running stack, keeping its memory: it ends paused,\n"
     "until turtlectl stack resume.\n" ACTION_REFUSED_HELP "\n"
     "Options:\n" WAIT_OPTION_HELP,
     NULL},
    {"resume", stack_action, "NAME [--wait]", "resume a paused stack",
     "Lets the vCPUs of a paused stack run again.  It ends running.\n" ACTION_REFUSED_HELP "\n"
     "Options:\n" WAIT_OPTION_HELP,
     NULL},
    {"delete", stack_delete, "NAME [--wait]", "delete a stack with its disk and console log",
     "Removes the stack's domain (forced off if it runs), its disk overlay, its\n"
     "console log and its record: nothing is left, and the devices it held go\n"
     "back to their classes.  Refused (exit 1) while the stack is migrating or\n"
     "another operation works on it.  A delete that fails leaves the stack\n"
     "deleting: delete it again.\n"
     "\n"
     "Options:\n" WAIT_OPTION_HELP,
     NULL},
    {"console", stack_console, "NAME [--tail N] [--follow | --force]",
     "use a stack's serial console, or print its output",
     "On a terminal (stdin and stdout), opens an interactive session on the\n"
     "serial console of a running stack's L1: what you type goes to the L1,\n"
     "Ctrl-] detaches.  One client at a time: --force takes the console over.\n"
     "\n"
     "Otherwise (a pipe, a script), or with --follow, the console's output so\n"
     "far is written to stdout raw, as the L1 wrote it (kept across restarts of\n"
     "the stack, until it is deleted); --follow then goes on with new output,\n"
     "read-only, until interrupted (Ctrl-C).\n"
     "\n"
     "Options:\n"
     "  --tail N           only the last N lines of the output so far (0-10000;\n"
     "                     0, the default: all of it, at most its last MiB)\n"
     "  --follow           go on with new output, read-only\n"
     "  --force            take the interactive console over from another client",
     NULL},
    {"stats", stack_stats, "NAME", "show a stack's CPU, memory and block I/O figures",
     "Prints what libvirt reports of the stack now: the CPU time of its vCPUs,\n"
     "its memory (current, maximum, the RSS of its QEMU), its block I/O (bytes\n"
     "and requests read and written), and its last migration (the peer, when,\n"
     "how long, the downtime, the bytes sent).",
     NULL},
    {"migrate", stack_migrate, "NAME --to PEER [--wait]", "move a stack, live, to a peer host",
     "Migrates a running or paused stack to PEER, a host the operator added as\n"
     "a peer: the L1 and the L2 guests in it go on running there, stopped only\n"
     "for the final switch-over, and PEER's turtled then holds the stack.  The\n"
     "boot images PEER lacks are copied first.  A stack holding devices does\n"
     "not migrate (detach a virtio-rng first).\n"
     "\n"
     "Options:\n"
     "  --to PEER          the peer host to migrate to (required)\n" WAIT_OPTION_HELP,
     NULL},
    {"device", NULL, NULL, "hot-plug and unplug a stack's devices", NULL, stack_device_verbs},
    {NULL, NULL, NULL, NULL, NULL, NULL},
};

const CmdNoun cmd_stack_noun = {
    "stack",
    "L1 guests: create, act on, watch, delete",
    stack_verbs,
    "Stacks belong to tenants: a tenant sees and acts on its own only; the\n"
    "operator may list every tenant's (stack list --tenant TENANT for one).\n"
    "Every verb but list, show, console and stats starts an operation: it\n"
    "prints the operation and returns at once, or with --wait follows it to\n"
    "its end.",
};
