/* peer add | list | show | remove: /v1/peers (operator). */
#include "cli/commands.h"

#include "api/peer.h"

static void peer_rows(OutputTable *table, gconstpointer item)
{
    const ApiPeer *peer = item;
    output_table_add(table, "name:", peer->name);
    output_table_add(table, "libvirt uri:", peer->libvirt_uri);
    output_table_add(table, "migrate uri:", peer->migrate_uri);
    output_table_add(table, "created:", peer->created_at);
}

static gpointer decode_peer(json_object *value, GError **error)
{
    return api_peer_from_json(value, error);
}

/* add and show answer {"peer": {...}}. */
static int print_peer(Ctl *ctl, json_object *body)
{
    return cmd_print_member(ctl, body, "peer", decode_peer, (GDestroyNotify)api_peer_free,
                            peer_rows);
}

static const char *const name_names[] = {"NAME", NULL};

static int peer_add(Ctl *ctl, int argc, char **argv)
{
    const char *libvirt_uri = NULL;
    const char *migrate_uri = NULL;
    const ArgSpec specs[] = {
        {"--libvirt-uri", ARG_STRING, 0, 0, &libvirt_uri, NULL},
        {"--migrate-uri", ARG_STRING, 0, 0, &migrate_uri, NULL},
        {NULL, ARG_FLAG, 0, 0, NULL, NULL},
    };
    g_autoptr(GPtrArray) args = NULL;
    g_autoptr(json_object) body = NULL;
    int status = CTL_EXIT_OK;

    if (!cmd_parse(ctl, "add", argc, argv, specs, name_names, &args, &status))
        return status;
    if (libvirt_uri == NULL)
        return ctl_usage_error(ctl, "peer add: missing --libvirt-uri (qemu+tcp://HOST/system)");
    /* turtled judges the URIs: its rules are the contract, and its messages name the field. */
    g_autoptr(json_object) request = json_object_new_object();
    json_object_object_add(request, "name", json_object_new_string(g_ptr_array_index(args, 0)));
    json_object_object_add(request, "libvirt_uri", json_object_new_string(libvirt_uri));
    if (migrate_uri != NULL)
        json_object_object_add(request, "migrate_uri", json_object_new_string(migrate_uri));
    if (!cmd_call(ctl, "POST", "/v1/peers", request, &body, &status))
        return status;
    return print_peer(ctl, body);
}

static void peer_row(OutputTable *table, gpointer item)
{
    const ApiPeer *peer = item;
    output_table_add(table, peer->name, peer->libvirt_uri, peer->migrate_uri, peer->created_at);
}

static int peer_list(Ctl *ctl, int argc, char **argv)
{
    static const char *const headers[] = {"NAME", "LIBVIRT URI", "MIGRATE URI", "CREATED", NULL};
    static const CmdList list = {.path = "/v1/peers",
                                 .member = "peers",
                                 .decode = api_peer_list_from_json,
                                 .headers = headers,
                                 .row = peer_row};
    return cmd_list(ctl, &list, argc, argv);
}

static int peer_show(Ctl *ctl, int argc, char **argv)
{
    g_autoptr(GPtrArray) args = NULL;
    g_autoptr(json_object) body = NULL;
    int status = CTL_EXIT_OK;

    if (!cmd_parse(ctl, "show", argc, argv, NULL, name_names, &args, &status))
        return status;
    g_autofree char *path = ctl_path("/v1/peers", g_ptr_array_index(args, 0), NULL);
    if (!cmd_call(ctl, "GET", path, NULL, &body, &status))
        return status;
    return print_peer(ctl, body);
}

static int peer_remove(Ctl *ctl, int argc, char **argv)
{
    g_autoptr(GPtrArray) args = NULL;
    g_autoptr(json_object) body = NULL;
    int status = CTL_EXIT_OK;

    if (!cmd_parse(ctl, "remove", argc, argv, NULL, name_names, &args, &status))
        return status;
    const char *name = g_ptr_array_index(args, 0);
    g_autofree char *path = ctl_path("/v1/peers", name, NULL);
    if (!cmd_call(ctl, "DELETE", path, NULL, &body, &status))
        return status;
    if (!ctl_emit(ctl, body))
        ctl_note(ctl, "removed peer %s", name);
    return CTL_EXIT_OK;
}

static const CmdVerb peer_verbs[] = {
    {"add", peer_add, "NAME --libvirt-uri URI [--migrate-uri URI]",
     "record another host as a migration target",
     "Records the host NAME as a target of stack migrate --to NAME.  Nothing is\n"
     "checked on that host now: each migration's preflight does that.\n"
     "\n"
     "Options:\n"
     "  --libvirt-uri URI  the peer's libvirtd, as virsh -c takes it (required):\n"
     "                     qemu+tcp://10.0.0.2/system, qemu+ssh://root@hostb/system,\n"
     "                     qemu+tls://hostb/system\n"
     "  --migrate-uri URI  where QEMU sends the memory: tcp://HOST[:PORT] or\n"
     "                     rdma://HOST[:PORT] (default: libvirt picks)\n",
     NULL},
    {"list", peer_list, "[--limit N [--after CURSOR] [--all]]", "list the peers",
     "Lists the peers by name, each with its libvirt URI, migration URI and\n"
     "creation time.  Without --limit every page is fetched and printed as one\n"
     "list; with --limit N one page of at most N peers, and in a table the\n"
     "command for the next page on stderr (json and yaml hold it as \"next\").\n"
     "\n"
     "Options:\n"
     "  --limit N       at most N peers per page (1-1000)\n"
     "  --after CURSOR  the page after CURSOR (the \"next\" of the previous page)\n"
     "  --all           with --limit: every page, N peers at a time\n",
     NULL},
    {"show", peer_show, "NAME", "show a peer",
     "Shows the peer NAME: its libvirt URI, its migration URI and when it was\n"
     "added.\n",
     NULL},
    {"remove", peer_remove, "NAME", "forget a peer",
     "Forgets the peer NAME: stacks can no longer migrate to it.  Nothing on the\n"
     "peer itself changes.\n",
     NULL},
    {NULL, NULL, NULL, NULL, NULL, NULL},
};

const CmdNoun cmd_peer_noun = {
    "peer",
    "other hosts that stacks migrate to (operator)",
    peer_verbs,
    "A peer is another host running libvirt that this turtled may migrate\n"
    "stacks to (turtlectl stack migrate NAME --to PEER).  Operator only.\n",
};
