/* tenant create | list | show | set | edit | delete: /v1/tenants (operator). */
#include "cli/commands.h"

#include <inttypes.h>
#include <string.h>

#include "api/tenant.h"

typedef struct {
    gint64 values[6];
    gboolean seen[6];
} QuotaFlags;

static const char *const quota_keys[] = {"stacks",   "vcpus",   "memory_mib",
                                         "disk_gib", "devices", "networks"};

static void quota_specs(QuotaFlags *flags, ArgSpec specs[7])
{
    const ArgSpec table[] = {
        {"--stacks", ARG_INT, 0, API_QUOTA_MAX_STACKS, &flags->values[0], &flags->seen[0]},
        {"--vcpus", ARG_INT, 0, API_QUOTA_MAX_VCPUS, &flags->values[1], &flags->seen[1]},
        {"--memory-mib", ARG_INT, 0, API_QUOTA_MAX_MEMORY_MIB, &flags->values[2], &flags->seen[2]},
        {"--disk-gib", ARG_INT, 0, API_QUOTA_MAX_DISK_GIB, &flags->values[3], &flags->seen[3]},
        {"--devices", ARG_INT, 0, API_QUOTA_MAX_DEVICES, &flags->values[4], &flags->seen[4]},
        {"--networks", ARG_INT, 0, API_QUOTA_MAX_NETWORKS, &flags->values[5], &flags->seen[5]},
        {NULL, ARG_FLAG, 0, 0, NULL, NULL},
    };
    memcpy(specs, table, sizeof(table));
}

/* {"stacks": N, ...} with the flags given; NULL when none was. */
static json_object *quota_json(const QuotaFlags *flags)
{
    json_object *quota = NULL;
    for (guint i = 0; i < G_N_ELEMENTS(quota_keys); i++) {
        if (!flags->seen[i])
            continue;
        if (quota == NULL)
            quota = json_object_new_object();
        json_object_object_add(quota, quota_keys[i], json_object_new_int64(flags->values[i]));
    }
    return quota;
}

static char *quota_text(const ApiQuota *quota)
{
    return g_strdup_printf("%" G_GINT64_FORMAT " stacks, %" G_GINT64_FORMAT
                           " vCPUs, %" G_GINT64_FORMAT " MiB memory, %" G_GINT64_FORMAT
                           " GiB disk, %" G_GINT64_FORMAT " devices, %" G_GINT64_FORMAT " networks",
                           quota->stacks, quota->vcpus, quota->memory_mib, quota->disk_gib,
                           quota->devices, quota->networks);
}

static void tenant_rows(OutputTable *table, const ApiTenant *tenant)
{
    g_autofree char *quota = quota_text(&tenant->quota);
    output_table_add(table, "name:", tenant->name);
    output_table_add(table, "id:", tenant->id);
    output_table_add(table, "quota:", quota);
    output_table_add(table, "created:", tenant->created_at);
    output_table_add(table, "updated:", tenant->updated_at);
}

/* Decodes body.tenant; prints the failure and gives NULL. */
static ApiTenant *decode_tenant(Ctl *ctl, json_object *body, int *status)
{
    g_autoptr(GError) error = NULL;
    json_object *member = ctl_member(body, "tenant", &error);
    ApiTenant *tenant = member != NULL ? api_tenant_from_json(member, &error) : NULL;
    if (tenant == NULL)
        *status = ctl_fail_answer(ctl, "tenant", error);
    return tenant;
}

/* A tenant verb's one NAME and its options. */
static const char *parse_name(Ctl *ctl, const char *verb, int argc, char **argv,
                              const ArgSpec *specs, GPtrArray **args, int *status)
{
    static const char *const names[] = {"NAME", NULL};
    if (!cmd_parse(ctl, verb, argc, argv, specs, names, args, status))
        return NULL;
    return g_ptr_array_index(*args, 0);
}

static int tenant_create(Ctl *ctl, int argc, char **argv)
{
    QuotaFlags flags = {0};
    ArgSpec specs[7];
    g_autoptr(GPtrArray) args = NULL;
    g_autoptr(json_object) body = NULL;
    g_autoptr(GError) error = NULL;
    int status = CTL_EXIT_OK;

    quota_specs(&flags, specs);
    const char *name = parse_name(ctl, "create", argc, argv, specs, &args, &status);
    if (name == NULL)
        return status;
    g_autoptr(json_object) request = json_object_new_object();
    json_object_object_add(request, "name", json_object_new_string(name));
    json_object *quota = quota_json(&flags);
    if (quota != NULL)
        json_object_object_add(request, "quota", quota);
    if (!cmd_call(ctl, "POST", "/v1/tenants", request, &body, &status))
        return status;

    g_autoptr(ApiTenant) tenant = decode_tenant(ctl, body, &status);
    if (tenant == NULL)
        return status;
    json_object *member = ctl_member(body, "token", &error);
    g_autoptr(ApiToken) token = member != NULL ? api_token_from_json(member, &error) : NULL;
    if (token == NULL)
        return ctl_fail_answer(ctl, "token", error);
    if (ctl_emit(ctl, body))
        return CTL_EXIT_OK;

    g_autoptr(OutputTable) table = output_table_new(NULL, 2);
    tenant_rows(table, tenant);
    output_table_add(table, "token id:", token->id);
    output_table_add(table, "token:", token->secret);
    output_table_print(table, stdout);
    fputs("The token is shown only once: keep it now.\n", stdout);
    return CTL_EXIT_OK;
}

static void tenant_row(OutputTable *table, gpointer item)
{
    const ApiTenant *tenant = item;
    g_autofree char *stacks = g_strdup_printf("%" G_GINT64_FORMAT, tenant->quota.stacks);
    g_autofree char *vcpus = g_strdup_printf("%" G_GINT64_FORMAT, tenant->quota.vcpus);
    g_autofree char *memory = g_strdup_printf("%" G_GINT64_FORMAT " MiB", tenant->quota.memory_mib);
    g_autofree char *disk = g_strdup_printf("%" G_GINT64_FORMAT " GiB", tenant->quota.disk_gib);
    g_autofree char *devices = g_strdup_printf("%" G_GINT64_FORMAT, tenant->quota.devices);
    g_autofree char *networks = g_strdup_printf("%" G_GINT64_FORMAT, tenant->quota.networks);
    output_table_add(table, tenant->name, stacks, vcpus, memory, disk, devices, networks,
                     tenant->created_at);
}

static int tenant_list(Ctl *ctl, int argc, char **argv)
{
    static const char *const headers[] = {"NAME",    "STACKS",   "VCPUS",   "MEMORY", "DISK",
                                          "DEVICES", "NETWORKS", "CREATED", NULL};
    static const CmdList list = {.path = "/v1/tenants",
                                 .member = "tenants",
                                 .decode = api_tenant_list_from_json,
                                 .headers = headers,
                                 .row = tenant_row};
    return cmd_list(ctl, &list, argc, argv);
}

/* show and set answer the same way: {"tenant": {...}}. */
static int print_tenant(Ctl *ctl, json_object *body)
{
    int status = CTL_EXIT_OK;
    g_autoptr(ApiTenant) tenant = decode_tenant(ctl, body, &status);
    if (tenant == NULL)
        return status;
    if (!ctl_emit(ctl, body)) {
        g_autoptr(OutputTable) table = output_table_new(NULL, 2);
        tenant_rows(table, tenant);
        output_table_print(table, stdout);
    }
    return CTL_EXIT_OK;
}

static int tenant_show(Ctl *ctl, int argc, char **argv)
{
    g_autoptr(GPtrArray) args = NULL;
    g_autoptr(json_object) body = NULL;
    int status = CTL_EXIT_OK;

    const char *name = parse_name(ctl, "show", argc, argv, NULL, &args, &status);
    if (name == NULL)
        return status;
    g_autofree char *path = ctl_path("/v1/tenants", name, NULL);
    if (!cmd_call(ctl, "GET", path, NULL, &body, &status))
        return status;
    return print_tenant(ctl, body);
}

static int tenant_set(Ctl *ctl, int argc, char **argv)
{
    QuotaFlags flags = {0};
    ArgSpec specs[7];
    g_autoptr(GPtrArray) args = NULL;
    g_autoptr(json_object) body = NULL;
    int status = CTL_EXIT_OK;

    quota_specs(&flags, specs);
    const char *name = parse_name(ctl, "set", argc, argv, specs, &args, &status);
    if (name == NULL)
        return status;
    json_object *quota = quota_json(&flags);
    if (quota == NULL)
        return ctl_usage_error(
            ctl, "tenant set: nothing to change (give --stacks, --vcpus, --memory-mib, --disk-gib, "
                 "--devices or --networks)");
    g_autoptr(json_object) request = json_object_new_object();
    json_object_object_add(request, "quota", quota);
    g_autofree char *path = ctl_path("/v1/tenants", name, NULL);
    if (!cmd_call(ctl, "PATCH", path, request, &body, &status))
        return status;
    return print_tenant(ctl, body);
}

/* The quota in an editor; written back only if nobody changed the tenant
 * meanwhile (If-Match). */
static int tenant_edit(Ctl *ctl, int argc, char **argv)
{
    static const char *const fields[] = {"quota", NULL};
    g_autoptr(GPtrArray) args = NULL;
    int status = CTL_EXIT_OK;

    const char *name = parse_name(ctl, "edit", argc, argv, NULL, &args, &status);
    if (name == NULL)
        return status;
    g_autofree char *path = ctl_path("/v1/tenants", name, NULL);
    g_autofree char *what = g_strdup_printf("tenant %s", name);
    return cmd_edit(ctl, what, path, "tenant", fields, print_tenant);
}

static int tenant_delete(Ctl *ctl, int argc, char **argv)
{
    g_autoptr(GPtrArray) args = NULL;
    g_autoptr(json_object) body = NULL;
    int status = CTL_EXIT_OK;

    const char *name = parse_name(ctl, "delete", argc, argv, NULL, &args, &status);
    if (name == NULL)
        return status;
    g_autofree char *path = ctl_path("/v1/tenants", name, NULL);
    if (!cmd_call(ctl, "DELETE", path, NULL, &body, &status))
        return status;
    if (!ctl_emit(ctl, body))
        ctl_note(ctl, "deleted tenant %s", name);
    return CTL_EXIT_OK;
}

/* The quota options of create and set; their help states the defaults and
 * bounds below, so that a change of those shows here. */
#define QUOTA_SYNOPSIS                                                                             \
    "[--stacks N] [--vcpus N] [--memory-mib N] [--disk-gib N] [--devices N] [--networks N]"
G_STATIC_ASSERT(API_QUOTA_DEFAULT_STACKS == 4 && API_QUOTA_MAX_STACKS == 10000);
G_STATIC_ASSERT(API_QUOTA_DEFAULT_VCPUS == 8 && API_QUOTA_MAX_VCPUS == 100000);
G_STATIC_ASSERT(API_QUOTA_DEFAULT_MEMORY_MIB == 8192 &&
                API_QUOTA_MAX_MEMORY_MIB == 1024LL * 1024 * 1024);
G_STATIC_ASSERT(API_QUOTA_DEFAULT_DISK_GIB == 50 && API_QUOTA_MAX_DISK_GIB == 1024LL * 1024);
G_STATIC_ASSERT(API_QUOTA_DEFAULT_DEVICES == 4 && API_QUOTA_MAX_DEVICES == 1024);
G_STATIC_ASSERT(API_QUOTA_DEFAULT_NETWORKS == 4 && API_QUOTA_MAX_NETWORKS == 1024);

static const CmdVerb tenant_verbs[] = {
    {"create", tenant_create, "NAME " QUOTA_SYNOPSIS, "create a tenant and its first API token",
     "Creates the tenant NAME with the quota the options give (the default for\n"
     "each one left out) and a first API token for it.  The token's secret is\n"
     "shown only here: keep it now (turtlectl token create makes another).\n"
     "A quota limits what the tenant holds at a time; 0 allows none.\n"
     "\n"
     "Options:\n"
     "  --stacks N      stacks (default 4, at most 10000)\n"
     "  --vcpus N       vCPUs over all its stacks (default 8, at most 100000)\n"
     "  --memory-mib N  memory over all its stacks, in MiB (default 8192, at most\n"
     "                  1073741824)\n"
     "  --disk-gib N    its images and disks, in GiB (default 50, at most 1048576)\n"
     "  --devices N     devices of device classes over all its stacks (default 4,\n"
     "                  at most 1024)\n"
     "  --networks N    networks of its own, nat or isolated (default 4, at most\n"
     "                  1024)\n",
     NULL},
    {"list", tenant_list, "[--limit N [--after CURSOR] [--all]]",
     "list the tenants and their quotas",
     "Lists the tenants by name, each with its quota and creation time.  Without\n"
     "--limit every page is fetched and printed as one list; with --limit N one\n"
     "page of at most N tenants, and in a table the command for the next page on\n"
     "stderr (json and yaml hold it as \"next\").\n"
     "\n"
     "Options:\n"
     "  --limit N       at most N tenants per page (1-1000)\n"
     "  --after CURSOR  the page after CURSOR (the \"next\" of the previous page)\n"
     "  --all           with --limit: every page, N tenants at a time\n",
     NULL},
    {"show", tenant_show, "NAME", "show a tenant and its quota",
     "Shows the tenant NAME: its id, its quota, and when it was created and last\n"
     "changed.\n",
     NULL},
    {"set", tenant_set, "NAME " QUOTA_SYNOPSIS, "change a tenant's quota",
     "Changes the limits of NAME's quota that the options give; the others stay\n"
     "as they are.  Give at least one option.  On error nothing changes.\n"
     "\n"
     "Options:\n"
     "  --stacks N      stacks (0-10000)\n"
     "  --vcpus N       vCPUs over all its stacks (0-100000)\n"
     "  --memory-mib N  memory over all its stacks, in MiB (0-1073741824)\n"
     "  --disk-gib N    its images and disks, in GiB (0-1048576)\n"
     "  --devices N     devices of device classes over all its stacks (0-1024)\n"
     "  --networks N    networks of its own, nat or isolated (0-1024)\n",
     NULL},
    {"edit", tenant_edit, "NAME", "edit a tenant's quota in an editor",
     "Opens NAME's quota as JSON in $VISUAL (else $EDITOR, else vi) and sends\n"
     "what you changed.  If someone changed the tenant between the read and the\n"
     "write, nothing is written: run it again.\n",
     NULL},
    {"delete", tenant_delete, "NAME", "delete a tenant and its tokens",
     "Deletes the tenant NAME; its tokens stop working at once.  Refused while it\n"
     "owns stacks, images or networks, or has operations in progress: delete\n"
     "those first.\n",
     NULL},
    {NULL, NULL, NULL, NULL, NULL, NULL},
};

const CmdNoun cmd_tenant_noun = {
    "tenant",
    "tenants and their quotas (operator)",
    tenant_verbs,
    "A tenant owns stacks, images and networks within its quota, and reaches\n"
    "turtled with its API tokens (turtlectl token).  Operator only: a tenant's\n"
    "token gets 403.\n",
};
