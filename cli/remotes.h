/* Named remotes from turtlectl's config files (GKeyFile):
 *
 *   [turtlectl]
 *   default-remote = prod
 *
 *   [remote "prod"]
 *   url = https://turtles.example.com:8443
 *   token = tt_...
 *
 *   [remote "local"]
 *   socket = /run/turtles/turtled.sock
 *
 * The user's file (~/.config/turtles/config.ini) comes before the system's
 * (/etc/turtles/turtlectl.ini): the first file that names a remote defines
 * it whole, and the first default-remote wins. */
#pragma once

#include <glib.h>

#define REMOTES_SYSTEM_FILE "/etc/turtles/turtlectl.ini"

typedef struct {
    char *name;
    char *url; /* exactly one of url and socket */
    char *socket;
    char *token; /* may be NULL */
    char *file;  /* where it is defined */
} Remote;

void remote_free(Remote *remote);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Remote, remote_free)

/* The files to read, in order: the user's, then the system's. */
GStrv remotes_default_files(void);

/* Looks @name up in @files (missing files are skipped).  With @name NULL,
 * the default remote: *out is NULL (and TRUE returned) when there is none.
 * CTL_ERROR_CONFIG for an unknown name, a malformed file or remote. */
gboolean remotes_lookup(const char *const *files, const char *name, Remote **out, GError **error);
