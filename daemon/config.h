/* turtled's configuration: built-in defaults, then the config file (GKeyFile,
 * group [turtled]), then command-line flags. */
#pragma once

#include <glib.h>

#define CONFIG_DEFAULT_FILE      "/etc/turtles/turtled.conf"
#define CONFIG_DEFAULT_STATE_DIR "/var/lib/turtles"
#define CONFIG_DEFAULT_SOCKET    "/run/turtles/turtled.sock"
#define CONFIG_DEFAULT_LIBVIRT   "qemu:///system"
#define CONFIG_TEST_LIBVIRT      "test:///default"
#define CONFIG_DEFAULT_WORKERS   4
/* A graceful stop waits this long for the guest before forcing it off. */
#define CONFIG_DEFAULT_STOP_TIMEOUT 60
/* Tenant subnets are taken from this pool unless a request names one. */
#define CONFIG_DEFAULT_NETWORK_POOL   "10.200.0.0/16"
#define CONFIG_DEFAULT_NETWORK_PREFIX 24
/* Members of this group are the operator on the UNIX socket, like root. */
#define CONFIG_DEFAULT_ADMIN_GROUP "turtles-admin"

/* The HTTP front end's limits (docs/operator-guide.md, "Limits"). */
#define CONFIG_DEFAULT_HTTP_THREADS            4
#define CONFIG_DEFAULT_MAX_CONNECTIONS         4096
#define CONFIG_DEFAULT_CONNECTION_RESERVE      256
#define CONFIG_DEFAULT_CONNECTIONS_PER_ADDRESS 64
#define CONFIG_DEFAULT_STREAMS_PER_TENANT      64
#define CONFIG_DEFAULT_STREAMS_PER_TOKEN       32
#define CONFIG_DEFAULT_HEADER_TIMEOUT          30
#define CONFIG_DEFAULT_BODY_TIMEOUT            60
#define CONFIG_DEFAULT_IDLE_TIMEOUT            120
#define CONFIG_DEFAULT_EVENT_RING              10000
#define CONFIG_DEFAULT_PENDING_IMAGES          8

typedef struct {
    char *state_dir;
    char *socket;
    char *listen;   /* "ADDR:PORT" or NULL: no TCP listener */
    char *tls_cert; /* PEM files; both or neither */
    char *tls_key;
    char *libvirt_uri;  /* NULL: by backend, see config_libvirt_uri */
    char *backend;      /* "auto", "kvm", "tcg" or "test" */
    int workers;        /* operation worker threads */
    int stop_timeout;   /* seconds */
    char *network_pool; /* "10.200.0.0/16": where tenant subnets come from */
    int network_prefix; /* the size of the subnet a network gets from the pool */
    char *admin_group;  /* a group name or a numeric gid */
    /* HTTP front end */
    int http_threads;            /* event-loop threads of each listener */
    int max_connections;         /* TCP connections at once; past it, 503 at accept */
    int connection_reserve;      /* the last slots serve only authenticated requests */
    int connections_per_address; /* past it, only authenticated requests (else 429) */
    int streams_per_tenant;      /* event and console streams open at once */
    int streams_per_token;
    int header_timeout; /* seconds to receive a request's headers */
    int body_timeout;   /* seconds to receive a JSON body */
    int idle_timeout;   /* seconds a request may sit with no bytes moving */
    int event_ring;     /* events kept for resuming streams (Last-Event-ID) */
    int pending_images; /* images per tenant not yet ready */
} Config;

Config *config_new_defaults(void);
void config_free(Config *config);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Config, config_free)

/* Reads @path over @config.  A missing file is fine unless @required (the
 * operator named it with --config); unknown groups or keys and bad values are
 * errors naming the key. */
gboolean config_load_file(Config *config, const char *path, gboolean required, GError **error);
/* Final checks after flags were applied. */
gboolean config_validate(const Config *config, GError **error);
/* The admin group's gid: admin_group as a number, or the group of that
 * name; -1 (and a notice in the log) when there is no such group. */
gint64 config_admin_gid(const Config *config);
/* The libvirt URI to use: the configured one, else test:///default for the
 * test backend and qemu:///system otherwise. */
const char *config_libvirt_uri(const Config *config);
