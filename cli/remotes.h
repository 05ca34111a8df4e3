/* Named remotes from turtlectl's config files (GKeyFile):
 *
 *   [turtlectl]
 *   default-remote = prod
 *
 *   [remote "prod"]
 *   url = https://turtles.example.com:8443
 *   token = tt_...
 *   cacert = /home/me/.config/turtles/prod-ca.pem
 *
 *   [remote "local"]
 *   socket = /run/turtles/turtled.sock
 *
 * The user's file (~/.config/turtles/config.ini, under $XDG_CONFIG_HOME
 * when set) comes before the system's (/etc/turtles/turtlectl.ini): the
 * first file that names a remote defines it whole, and the first
 * default-remote wins.  turtlectl writes the user's file only.
 *
 * A file that holds a token is refused unless only its owner can read it:
 * the user's file must be owned by the caller (or root) with no access for
 * group or others (0600); the system's must be owned by root and closed to
 * others, group read allowed for a group of operators (0600 or 0640). */
#pragma once

#include <glib.h>

#define REMOTES_SYSTEM_FILE "/etc/turtles/turtlectl.ini"

/* The rule of remote names, in words for messages. */
#define REMOTES_NAME_RULE                                                                          \
    "1 to 63 letters, digits, '-', '_' or '.', starting with a letter or a digit"

typedef struct {
    char *name;
    char *url; /* exactly one of url and socket */
    char *socket;
    char *token;  /* may be NULL */
    char *cacert; /* a PEM file trusted for an https:// url; may be NULL */
    char *file;   /* where it is defined */
} Remote;

void remote_free(Remote *remote);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Remote, remote_free)

/* The files to read, in order: the user's, then the system's. */
GStrv remotes_default_files(void);

/* The user's file, the one turtlectl writes. */
char *remotes_user_file(void);

/* REMOTES_NAME_RULE. */
gboolean remotes_name_valid(const char *name);

/* A token fit for "Authorization: Bearer": 1 to 4096 printable ASCII
 * characters, no spaces. */
gboolean remotes_token_valid(const char *token);

/* Looks @name up in @files (missing files are skipped).  With @name NULL,
 * the default remote: *out is NULL (and TRUE returned) when there is none.
 * CTL_ERROR_CONFIG for an unknown name, a malformed file or remote, or a
 * file holding a token that others may read. */
gboolean remotes_lookup(const char *const *files, const char *name, Remote **out, GError **error);

/* Every remote of @files as lookup would find it (shadowed ones left out),
 * in file order: *remotes gets Remote pointers, *default_name the default
 * remote (NULL when none).  Errors as remotes_lookup's. */
gboolean remotes_list(const char *const *files, GPtrArray **remotes, char **default_name,
                      GError **error);

/* Writes to the user's file @file (its other groups and comments kept;
 * atomically, mode 0600; its directory made 0700 when missing).  add
 * stores @remote (its name must be new to @file; @make_default: as
 * default-remote too); remove drops the remote @name of @file (and
 * default-remote when it names it); set_default sets default-remote.
 * CTL_ERROR_CONFIG on failure, nothing written. */
gboolean remotes_add(const char *file, const Remote *remote, gboolean make_default, GError **error);
gboolean remotes_remove(const char *file, const char *name, GError **error);
gboolean remotes_set_default(const char *file, const char *name, GError **error);
