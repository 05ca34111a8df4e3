/* turtled: the Turtles host daemon. */
#include <sys/resource.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <glib-unix.h>
#include <systemd/sd-daemon.h>

#include "api/json.h"
#include "daemon/activation.h"
#include "daemon/app.h"
#include "daemon/audit.h"
#include "daemon/clock.h"
#include "daemon/console_session.h"
#include "daemon/convert.h"
#include "daemon/images.h"
#include "daemon/log.h"
#include "daemon/networks.h"
#include "daemon/stacks.h"
#include "daemon/tokens.h"
#include "daemon/watchdog.h"
#include "hvcore/init.h"
#include "hvcore/storage.h"

typedef struct {
    char *config;
    char *state_dir;
    char *socket;
    char *listen;
    char *libvirt_uri;
    char *backend;
    gboolean probe;
    gboolean version;
    gboolean test_hooks;
} Options;

static void options_clear(Options *options)
{
    g_free(options->config);
    g_free(options->state_dir);
    g_free(options->socket);
    g_free(options->listen);
    g_free(options->libvirt_uri);
    g_free(options->backend);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(Options, options_clear)

static int run_probe(void)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(HvHostReport) report = hv_probe_host("/", &hv_kvm_system_ops, &error);
    if (!report) {
        fprintf(stderr, "turtled: probe failed: %s\n", error->message);
        return 1;
    }
    g_autoptr(ApiHost) host = convert_host_report(report);
    g_autoptr(json_object) json = api_host_to_json(host);
    printf("%s\n",
           json_object_to_json_string_ext(json, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                                                    JSON_C_TO_STRING_NOSLASHESCAPE));
    return 0;
}

static void override(char **field, char *flag)
{
    if (flag != NULL) {
        g_free(*field);
        *field = g_strdup(flag);
    }
}

static Config *load_config(const Options *options, GError **error)
{
    g_autoptr(Config) config = config_new_defaults();
    const char *path = options->config ? options->config : CONFIG_DEFAULT_FILE;

    if (!config_load_file(config, path, options->config != NULL, error))
        return NULL;
    override(&config->state_dir, options->state_dir);
    override(&config->socket, options->socket);
    override(&config->listen, options->listen);
    override(&config->libvirt_uri, options->libvirt_uri);
    override(&config->backend, options->backend);
    if (!config_validate(config, error))
        return NULL;
    return g_steal_pointer(&config);
}

static gboolean lookup_token(gpointer data, const char *token, HttpCaller *caller)
{
    App *app = data;
    return token_authenticate(app->store, token, caller);
}

/* Each connection is a descriptor: the soft limit (often 1024) would refuse
 * connections long before max_connections.  The hard limit is the operator's. */
static void raise_file_limit(guint connections)
{
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur >= limit.rlim_max)
        return;
    limit.rlim_cur = limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &limit) != 0)
        g_warning("cannot raise the open file limit: %s", g_strerror(errno));
    else if (limit.rlim_cur < (rlim_t)connections + 256)
        g_warning("the open file limit (%llu) is below max_connections (%u) plus what turtled "
                  "needs besides; raise LimitNOFILE",
                  (unsigned long long)limit.rlim_cur, connections);
}

static gboolean make_socket_dir(const char *socket, GError **error)
{
    g_autofree char *dir = g_path_get_dirname(socket);
    if (g_mkdir_with_parents(dir, 0755) != 0) {
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno), "cannot create %s: %s",
                    dir, g_strerror(errno));
        return FALSE;
    }
    return TRUE;
}

/* Passed sockets win for the kinds they cover: a passed UNIX socket is the
 * API socket (the `socket` setting is not used), passed TCP sockets are the
 * TCP listeners (`listen` is not used).  A kind none was passed for is
 * created from the configuration, as without systemd.  @where gets the API
 * socket, then " and " each TCP listener, for the log; its first
 * @api_len bytes name the API socket alone (STATUS=). */
static gboolean start_listeners(App *app, Activation *activation, GString *where, gsize *api_len,
                                GError **error)
{
    const Config *config = app->config;

    if (activation->unix_fd >= 0) {
        /* The packaged units pass the configured path itself: only a
         * different one is worth a word. */
        g_autofree char *same = g_strdup_printf("(%s)", config->socket);
        if (g_str_has_suffix(activation->unix_text, same))
            g_message("serving the API on the UNIX socket the service manager passed, %s",
                      activation->unix_text);
        else
            g_message("serving the API on the UNIX socket the service manager passed, %s; the "
                      "socket setting (%s) is not used",
                      activation->unix_text, config->socket);
        g_string_append(where, activation->unix_text);
        int fd = activation->unix_fd;
        activation->unix_fd = -1; /* the server's now */
        if (!http_server_adopt_unix(app->server, fd, error))
            return FALSE;
    } else {
        g_string_append(where, config->socket);
        if (!make_socket_dir(config->socket, error) ||
            !http_server_listen_unix(app->server, config->socket, error))
            return FALSE;
    }
    *api_len = where->len;

    GArray *tcp = activation->tcp_fds;
    if (tcp->len > 0 && config->listen != NULL)
        g_message("serving TCP on the socket(s) the service manager passed; the listen setting "
                  "(%s) is not used",
                  config->listen);
    for (guint i = 0; i < tcp->len; i++) {
        int fd = g_array_index(tcp, int, i);
        g_array_index(tcp, int, i) = -1;
        g_string_append_printf(where, " and %s", (char *)activation->tcp_texts->pdata[i]);
        if (!http_server_adopt_tcp(app->server, fd, config->tls_cert, config->tls_key, error))
            return FALSE;
    }
    if (tcp->len == 0 && config->listen != NULL) {
        g_string_append_printf(where, " and %s", config->listen);
        if (!http_server_listen_tcp(app->server, config->listen, config->tls_cert, config->tls_key,
                                    error))
            return FALSE;
    }
    return TRUE;
}

static gboolean start_server(App *app, gboolean test_hooks, Activation *activation, GString *where,
                             gsize *api_len, GError **error)
{
    gsize n_main = 0, n_test = 0;
    const HttpRoute *main_routes = routes_table(&n_main);
    const HttpRoute *test_routes = routes_test_table(&n_test);
    g_autoptr(GArray) routes = g_array_new(FALSE, FALSE, sizeof(HttpRoute));

    g_array_append_vals(routes, main_routes, (guint)n_main);
    if (test_hooks)
        g_array_append_vals(routes, test_routes, (guint)n_test);
    /* The server keeps a pointer to the table: the App owns it. */
    app->routes = g_array_steal(routes, &n_main);
    app->consoles = console_sessions_new();
    app->server = http_server_new(app->routes, n_main, lookup_token, app);
    HttpLimits limits = {
        .threads = (guint)app->config->http_threads,
        .max_connections = (guint)app->config->max_connections,
        .connection_reserve = (guint)app->config->connection_reserve,
        .connections_per_address = (guint)app->config->connections_per_address,
        .streams_per_tenant = (guint)app->config->streams_per_tenant,
        .streams_per_token = (guint)app->config->streams_per_token,
        .header_timeout = (guint)app->config->header_timeout,
        .body_timeout = (guint)app->config->body_timeout,
        .idle_timeout = (guint)app->config->idle_timeout,
    };
    http_server_set_limits(app->server, &limits);
    http_server_set_admin_group(app->server, app->config->admin_group,
                                config_admin_gid(app->config));
    http_server_set_audit(app->server, audit_open(app->config->state_dir, log_to_journal()));
    raise_file_limit((guint)app->config->max_connections);
    return start_listeners(app, activation, where, api_len, error);
}

static gboolean choose_backend(App *app, GError **error)
{
    app->host = hv_probe_host("/", &hv_kvm_system_ops, error);
    if (app->host == NULL)
        return FALSE;
    if (g_str_equal(app->config->backend, "auto"))
        app->backend = app->host->backend;
    else
        hv_backend_from_string(app->config->backend, &app->backend);
    return TRUE;
}

static gboolean open_state(App *app, GError **error)
{
    g_autofree char *now = NULL;

    app->store = store_open(app->config->state_dir, error);
    if (app->store == NULL)
        return FALSE;
    now = clock_now_rfc3339();
    int interrupted = store_operation_fail_interrupted(app->store, now, error);
    if (interrupted < 0)
        return FALSE;
    if (interrupted > 0)
        g_message("%d operation(s) interrupted by the last stop are now failed", interrupted);
    app->events = event_bus_new(app->store, (guint)app->config->event_ring);
    app->operations = operations_new(app->store, app->events, (guint)app->config->workers);
    return TRUE;
}

#define LIBVIRT_SETTLE_S 5

static gboolean resync_after_settling(gpointer data);

/* Pools, then images and stacks made to agree with what libvirt has: at
 * start and after every reconnection (libvirt may have lost or gained
 * domains while we could not see it). */
static void sync_with_libvirt(App *app)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(HvConn) conn = hv_virt_get_connection(app->virt, &error);
    if (conn == NULL || !hv_storage_ensure_pools(conn, app->config->state_dir, &error) ||
        !images_reconcile(app, conn, &error) || !stacks_reconcile(app, conn, &error) ||
        !networks_reconcile(app, conn, &error)) {
        /* Left as it is, the store would stay out of step until the next
         * reconnection: try again while libvirt answers. */
        g_warning("cannot reconcile with libvirt (%s): %s; trying again in %d s",
                  hv_virt_get_uri(app->virt), error->message, LIBVIRT_SETTLE_S);
        if (hv_virt_is_connected(app->virt))
            g_timeout_add_seconds(LIBVIRT_SETTLE_S, resync_after_settling, app);
        return;
    }
    g_message("reconciled with libvirt (%s)", hv_virt_get_uri(app->virt));
}

static gboolean resync_after_settling(gpointer data)
{
    App *app = data;
    if (hv_virt_is_connected(app->virt))
        sync_with_libvirt(app);
    return G_SOURCE_REMOVE;
}

static void on_lifecycle(const HvLifecycleEvent *event, gpointer data)
{
    stacks_on_lifecycle(data, event);
}

static void on_connection(gboolean connected, const char *reason, gpointer data)
{
    App *app = data;
    if (!connected) {
        g_warning("lost libvirt (%s): %s; requests that need it answer 503 until it is back",
                  hv_virt_get_uri(app->virt), reason);
        sd_notifyf(0, "STATUS=libvirt unreachable: %s", reason);
        return;
    }
    g_message("libvirt (%s) is back", hv_virt_get_uri(app->virt));
    sd_notify(0, "STATUS=serving");
    sync_with_libvirt(app);
    /* A libvirtd that just started recovers its running guests in the
     * background (a QEMU that died meanwhile is found a moment later, and
     * not always with an event): look again once it has settled. */
    g_timeout_add_seconds(LIBVIRT_SETTLE_S, resync_after_settling, app);
}

/* A libvirt that is down at start is no reason not to serve: the API
 * answers 503 where it needs libvirt, and hvcore/virt keeps trying. */
static gboolean open_libvirt(App *app, GError **error)
{
    g_autoptr(GError) local = NULL;

    app->console_dir = g_build_filename(app->config->state_dir, "consoles", NULL);
    if (g_mkdir_with_parents(app->console_dir, 0750) != 0) {
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno), "cannot create %s: %s",
                    app->console_dir, g_strerror(errno));
        return FALSE;
    }
    app->stop_timeout = (guint)app->config->stop_timeout;
    app->stacks = stacks_new(app);
    app->virt = hv_virt_new(config_libvirt_uri(app->config), on_lifecycle, on_connection, app);
    if (hv_virt_connect(app->virt, &local))
        sync_with_libvirt(app);
    else
        g_warning("%s; retrying in the background", local->message);
    return TRUE;
}

static gboolean on_stop_signal(gpointer data)
{
    g_main_loop_quit(data);
    return G_SOURCE_CONTINUE;
}

static void app_clear(App *app)
{
    /* Order matters: long-polls answer first, then the server drains its
     * requests, and only then do the services they use go away. */
    if (app->operations != NULL)
        operations_release_waiters(app->operations);
    http_server_free(app->server);
    /* After the server: it ended every session. */
    console_sessions_free(app->consoles);
    g_free(app->routes);
    operations_free(app->operations);
    hv_virt_free(app->virt);
    stacks_free(app->stacks);
    g_free(app->console_dir);
    event_bus_free(app->events);
    store_free(app->store);
    hv_host_report_free(app->host);
    config_free(app->config);
}

static int serve(const Options *options)
{
    App app = {.started_at = g_get_monotonic_time(), .test_hooks = options->test_hooks};
    g_autoptr(GError) error = NULL;
    g_autoptr(GMainLoop) loop = g_main_loop_new(NULL, FALSE);
    g_auto(Activation) activation = {.unix_fd = -1};
    g_autoptr(GString) where = g_string_new(NULL);
    gsize api_len = 0;
    int status = 1;

    /* Both read and clear the environment: before any thread starts. */
    guint64 watchdog_usec = watchdog_period_from_env();
    if (!activation_take(&activation, &error))
        goto out;
    app.config = load_config(options, &error);
    if (app.config == NULL)
        goto out;
    if (options->test_hooks && !g_str_equal(app.config->backend, "test")) {
        g_set_error(&error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                    "--test-hooks needs --backend test");
        goto out;
    }
    if (!choose_backend(&app, &error) || !open_state(&app, &error) || !open_libvirt(&app, &error) ||
        !start_server(&app, options->test_hooks, &activation, where, &api_len, &error))
        goto out;

    networks_watch_addresses(&app);
    g_unix_signal_add(SIGTERM, on_stop_signal, loop);
    g_unix_signal_add(SIGINT, on_stop_signal, loop);
    g_message("turtled %s serving on %s (backend %s, state %s)", TURTLES_VERSION, where->str,
              hv_backend_to_string(app.backend), app.config->state_dir);
    sd_notifyf(0, "READY=1\nSTATUS=serving on %.*s, backend %s", (int)api_len, where->str,
               hv_backend_to_string(app.backend));
    Watchdog *watchdog = watchdog_start(watchdog_usec, app.store, app.operations);
    g_main_loop_run(loop);

    sd_notify(0, "STOPPING=1\nSTATUS=draining requests");
    g_message("stopping: draining in-flight requests");
    watchdog_free(watchdog);
    status = 0;
out:
    if (error != NULL)
        fprintf(stderr, "turtled: %s\n", error->message);
    app_clear(&app);
    return status;
}

int main(int argc, char **argv)
{
    g_auto(Options) options = {0};
    GOptionEntry entries[] = {
        {"config", 'c', 0, G_OPTION_ARG_FILENAME, &options.config,
         "configuration file (default " CONFIG_DEFAULT_FILE ")", "FILE"},
        {"state-dir", 0, 0, G_OPTION_ARG_FILENAME, &options.state_dir,
         "state directory (default " CONFIG_DEFAULT_STATE_DIR ")", "DIR"},
        {"socket", 0, 0, G_OPTION_ARG_FILENAME, &options.socket,
         "UNIX socket of the API (default " CONFIG_DEFAULT_SOCKET ")", "PATH"},
        {"listen", 0, 0, G_OPTION_ARG_STRING, &options.listen,
         "also serve on TCP (TLS with tls_cert/tls_key, else loopback only)", "ADDR:PORT"},
        {"libvirt-uri", 0, 0, G_OPTION_ARG_STRING, &options.libvirt_uri,
         "libvirt connection URI (default " CONFIG_DEFAULT_LIBVIRT ", " CONFIG_TEST_LIBVIRT
         " for --backend test)",
         "URI"},
        {"backend", 0, 0, G_OPTION_ARG_STRING, &options.backend, "auto (default), kvm, tcg or test",
         "B"},
        {"probe", 0, 0, G_OPTION_ARG_NONE, &options.probe,
         "print the host capability report as JSON and exit", NULL},
        {"version", 0, 0, G_OPTION_ARG_NONE, &options.version, "print the version and exit", NULL},
        {"test-hooks", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_NONE, &options.test_hooks,
         "test-only routes (needs --backend test)", NULL},
        {NULL, 0, 0, 0, NULL, NULL, NULL},
    };
    g_autoptr(GOptionContext) context =
        g_option_context_new("- Turtles nested-hypervisor host daemon");
    g_autoptr(GError) error = NULL;

    log_install(); /* before any thread, and before the first line */
    g_option_context_add_main_entries(context, entries, NULL);
    if (!g_option_context_parse(context, &argc, &argv, &error)) {
        fprintf(stderr, "turtled: %s (see turtled --help)\n", error->message);
        return 2;
    }
    if (argc > 1) {
        fprintf(stderr, "turtled: unexpected argument '%s' (see turtled --help)\n", argv[1]);
        return 2;
    }
    if (options.version) {
        printf("turtled %s\n", TURTLES_VERSION);
        return 0;
    }
    if (options.probe)
        return run_probe();

    signal(SIGPIPE, SIG_IGN); /* a client that leaves must not kill us */
    hv_init();                /* before any worker thread uses libxml2 */
    return serve(&options);
}
