/* A stack's cloud-init seed: the NoCloud files (user-data, meta-data) made
 * from its spec's cloud_init, written by hvcore as an ISO 9660 "cidata"
 * image into a volume of the disks pool, "<stack id>.seed.iso", which the
 * domain attaches read-only.  It goes with the stack (stacks_remove_everything)
 * and travels with it on migration like its other volumes. */
#pragma once

#include <glib.h>

#include "api/stack.h"
#include "hvcore/conn.h"

char *seed_volume_name(const char *stack_id);

/* meta-data: instance-id (the stack's id), local-hostname (the tenant's, or
 * the stack's name), the tenant's other members, public-keys (the
 * ssh_authorized_keys), as indented JSON, which is YAML too. */
char *seed_meta_data(const ApiStack *stack);

/* Writes the seed volume of @stack, which has a cloud_init.  *@path gets the
 * volume's file.  Nothing is left behind on failure (TD_ERROR_*). */
gboolean seed_create(HvConn *conn, const ApiStack *stack, char **path, GError **error);
