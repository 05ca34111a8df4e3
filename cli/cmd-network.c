/* network create | list | show | delete: /v1/networks (a tenant's own nat
 * and isolated networks; the operator's external ones, shared with the
 * tenants it names). */
#include "cli/commands.h"

#include <string.h>

#include "api/network.h"

static char *nics_count(const ApiNetwork *network)
{
    return g_strdup_printf("%" G_GINT64_FORMAT, network->nics);
}

static void network_rows(OutputTable *table, gconstpointer item)
{
    const ApiNetwork *network = item;
    g_autoptr(GString) shared = g_string_new(NULL);
    g_autofree char *nics = nics_count(network);
    for (guint i = 0; i < network->shared_with->len; i++)
        g_string_append_printf(shared, "%s%s", i > 0 ? ", " : "",
                               (const char *)g_ptr_array_index(network->shared_with, i));

    output_table_add(table, "name:", network->name);
    output_table_add(table, "id:", network->id);
    output_table_add(table, "tenant:", network->tenant);
    output_table_add(table, "mode:", network->mode);
    output_table_add(table, "cidr:", network->cidr);
    output_table_add(table, "gateway:", network->gateway);
    output_table_add(table, "bridge:", network->bridge);
    if (g_strcmp0(network->mode, "external") == 0)
        output_table_add(table, "shared with:", shared->len > 0 ? shared->str : NULL);
    output_table_add(table, "nics:", nics);
    output_table_add(table, "created:", network->created_at);
    output_table_add(table, "updated:", network->updated_at);
}

static gpointer decode_network(json_object *value, GError **error)
{
    return api_network_from_json(value, error);
}

/* create and show answer {"network": {...}}. */
static int print_network(Ctl *ctl, json_object *body)
{
    return cmd_print_member(ctl, body, "network", decode_network, (GDestroyNotify)api_network_free,
                            network_rows);
}

static const char *const name_names[] = {"NAME", NULL};

/* The request of create, or a usage error (exit status in *status). */
static json_object *create_request(Ctl *ctl, const char *name, const char *mode, const char *cidr,
                                   const char *bridge, GPtrArray *shares, int *status)
{
    static const char *const modes[] = {API_NETWORK_MODES, NULL};

    if (!g_strv_contains(modes, mode)) {
        *status = ctl_usage_error(
            ctl, "network create: --mode: must be nat, isolated or external (not '%s')", mode);
        return NULL;
    }
    gboolean external = strcmp(mode, "external") == 0;
    if (external && bridge == NULL) {
        *status =
            ctl_usage_error(ctl, "network create: missing --bridge BRIDGE for --mode external");
        return NULL;
    }
    if (external && cidr != NULL) {
        *status = ctl_usage_error(ctl, "network create: --cidr goes with --mode nat or isolated");
        return NULL;
    }
    if (!external && (bridge != NULL || shares->len > 0)) {
        *status =
            ctl_usage_error(ctl, "network create: --bridge and --share go with --mode external");
        return NULL;
    }
    /* The subnet, the bridge and the tenants are turtled's to judge: its
     * messages name the field. */
    json_object *request = json_object_new_object();
    json_object_object_add(request, "name", json_object_new_string(name));
    json_object_object_add(request, "mode", json_object_new_string(mode));
    if (cidr != NULL)
        json_object_object_add(request, "cidr", json_object_new_string(cidr));
    if (external) {
        json_object *shared = json_object_new_array();
        for (guint i = 0; i < shares->len; i++)
            json_object_array_add(shared, json_object_new_string(g_ptr_array_index(shares, i)));
        json_object_object_add(request, "bridge", json_object_new_string(bridge));
        json_object_object_add(request, "shared_with", shared);
    }
    return request;
}

static int network_create(Ctl *ctl, int argc, char **argv)
{
    const char *mode = "nat";
    const char *cidr = NULL;
    const char *bridge = NULL;
    g_autoptr(GPtrArray) shares = g_ptr_array_new();
    const ArgSpec specs[] = {
        {"--mode", ARG_STRING, 0, 0, &mode, NULL},
        {"--cidr", ARG_STRING, 0, 0, &cidr, NULL},
        {"--bridge", ARG_STRING, 0, 0, &bridge, NULL},
        {"--share", ARG_STRINGS, 0, 0, shares, NULL},
        {NULL, ARG_FLAG, 0, 0, NULL, NULL},
    };
    g_autoptr(GPtrArray) args = NULL;
    g_autoptr(json_object) body = NULL;
    int status = CTL_EXIT_OK;

    if (!cmd_parse(ctl, "create", argc, argv, specs, name_names, &args, &status))
        return status;
    g_autoptr(json_object) request =
        create_request(ctl, g_ptr_array_index(args, 0), mode, cidr, bridge, shares, &status);
    if (request == NULL)
        return status;
    if (!cmd_call(ctl, "POST", "/v1/networks", request, &body, &status))
        return status;
    return print_network(ctl, body);
}

static void network_row(OutputTable *table, gpointer item)
{
    const ApiNetwork *network = item;
    g_autofree char *nics = nics_count(network);
    output_table_add(table, network->name, network->tenant, network->mode, network->cidr,
                     network->gateway, network->bridge, nics);
}

static int network_list(Ctl *ctl, int argc, char **argv)
{
    static const char *const headers[] = {"NAME",    "TENANT", "MODE", "CIDR",
                                          "GATEWAY", "BRIDGE", "NICS", NULL};
    static const CmdList list = {.path = "/v1/networks",
                                 .member = "networks",
                                 .decode = api_network_list_from_json,
                                 .headers = headers,
                                 .row = network_row,
                                 .filters = {"tenant"}};
    return cmd_list(ctl, &list, argc, argv);
}

/* show and delete: NAME [--tenant TENANT]; the path of the network, or
 * NULL with the exit status in *status. */
static char *network_path(Ctl *ctl, const char *verb, int argc, char **argv, const char **name,
                          int *status)
{
    const char *tenant = NULL;
    const ArgSpec specs[] = {
        {"--tenant", ARG_STRING, 0, 0, &tenant, NULL},
        {NULL, ARG_FLAG, 0, 0, NULL, NULL},
    };
    g_autoptr(GPtrArray) args = NULL;

    if (!cmd_parse(ctl, verb, argc, argv, specs, name_names, &args, status))
        return NULL;
    *name = g_ptr_array_index(args, 0);
    g_autofree char *base = ctl_path("/v1/networks", *name, NULL);
    GString *path = g_string_new(base);
    cmd_query_append(path, "tenant", tenant);
    return g_string_free(path, FALSE);
}

static int network_show(Ctl *ctl, int argc, char **argv)
{
    g_autoptr(json_object) body = NULL;
    const char *name = NULL;
    int status = CTL_EXIT_OK;

    g_autofree char *path = network_path(ctl, "show", argc, argv, &name, &status);
    if (path == NULL || !cmd_call(ctl, "GET", path, NULL, &body, &status))
        return status;
    return print_network(ctl, body);
}

static int network_delete(Ctl *ctl, int argc, char **argv)
{
    g_autoptr(json_object) body = NULL;
    const char *name = NULL;
    int status = CTL_EXIT_OK;

    g_autofree char *path = network_path(ctl, "delete", argc, argv, &name, &status);
    if (path == NULL || !cmd_call(ctl, "DELETE", path, NULL, &body, &status))
        return status;
    if (!ctl_emit(ctl, body))
        ctl_note(ctl, "deleted network %s", name);
    return CTL_EXIT_OK;
}

static const CmdVerb network_verbs[] = {
    {"create", network_create,
     "NAME [--mode nat|isolated] [--cidr CIDR]\n"
     "NAME --mode external --bridge BRIDGE [--share TENANT]...",
     "create a network for stacks' NICs",
     "Creates the network NAME, which stacks join with stack create --nic NAME.\n"
     "With a tenant's token: a network of the tenant's own, nat (its stacks reach\n"
     "out through the host) or isolated (they reach only each other), on the\n"
     "subnet --cidr gives or the next free /24 of turtled's pool.  As the\n"
     "operator: an external network on a host bridge, usable by the tenants\n"
     "--share names.\n"
     "\n"
     "Options:\n"
     "  --mode nat|isolated|external  nat (the default) or isolated, a tenant's;\n"
     "                                external, the operator's\n"
     "  --cidr CIDR                   nat, isolated: the subnet, 10.201.7.0/24\n"
     "                                (/16 to /29; default: the next free /24)\n"
     "  --bridge BRIDGE               external: the host bridge the NICs join\n"
     "                                (br0; required)\n"
     "  --share TENANT                external: a tenant that may use it; repeat\n"
     "                                for more\n",
     NULL},
    {"list", network_list, "[--tenant TENANT] [--limit N [--after CURSOR] [--all]]",
     "list the networks",
     "Lists the networks: a tenant sees its own and the external ones shared\n"
     "with it, the operator everyone's (or one tenant's with --tenant).  Without\n"
     "--limit every page is fetched and printed as one list; with --limit N one\n"
     "page of at most N networks, and in a table the command for the next page\n"
     "on stderr (json and yaml hold it as \"next\").\n"
     "\n"
     "Options:\n"
     "  --tenant TENANT  the operator: that tenant's networks only\n"
     "  --limit N        at most N networks per page (1-1000)\n"
     "  --after CURSOR   the page after CURSOR (the \"next\" of the previous page)\n"
     "  --all            with --limit: every page, N networks at a time\n",
     NULL},
    {"show", network_show, "NAME [--tenant TENANT]", "show a network",
     "Shows the network NAME: its tenant, mode, subnet, gateway, bridge, the\n"
     "tenants an external one is shared with, and how many NICs are on it.\n"
     "\n"
     "Options:\n"
     "  --tenant TENANT  the operator: the tenant whose network NAME is\n",
     NULL},
    {"delete", network_delete, "NAME [--tenant TENANT]", "delete a network",
     "Deletes the network NAME.  Refused while a stack has a NIC on it, and a\n"
     "tenant may not delete an external network.\n"
     "\n"
     "Options:\n"
     "  --tenant TENANT  the operator: the tenant whose network NAME is\n",
     NULL},
    {NULL, NULL, NULL, NULL, NULL, NULL},
};

const CmdNoun cmd_network_noun = {
    "network",
    "networks that stacks' NICs join",
    network_verbs,
    "A tenant creates and deletes its own nat and isolated networks with its\n"
    "token; the operator creates external ones on host bridges and shares each\n"
    "with the tenants it names.  Network names are unique per tenant, so the\n"
    "operator names the tenant (--tenant) to show or delete one of a tenant's.\n",
};
