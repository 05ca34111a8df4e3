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
/* The libvirt URI to use: the configured one, else test:///default for the
 * test backend and qemu:///system otherwise. */
const char *config_libvirt_uri(const Config *config);
