/* Removing a test's temporary directory, for the unit tests that make one. */
#pragma once

#include <glib.h>
#include <glib/gstdio.h>

/* Removes @path and everything below it; any failure fails the test. */
static inline void remove_tree(const char *path)
{
    GDir *dir = g_dir_open(path, 0, NULL);

    if (dir != NULL) {
        const char *name;
        while ((name = g_dir_read_name(dir)) != NULL) {
            g_autofree char *child = g_build_filename(path, name, NULL);
            remove_tree(child);
        }
        g_dir_close(dir);
        g_assert_cmpint(g_rmdir(path), ==, 0);
    } else {
        g_assert_cmpint(g_unlink(path), ==, 0);
    }
}
