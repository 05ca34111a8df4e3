/* cli/suggest: "did you mean" for nouns, verbs and options. */
#include <glib.h>

#include "cli/suggest.h"

static void test_distance(void)
{
    g_assert_cmpuint(suggest_distance("stack", "stack"), ==, 0);
    g_assert_cmpuint(suggest_distance("stakc", "stack"), ==, 1); /* a transposition */
    g_assert_cmpuint(suggest_distance("stck", "stack"), ==, 1);
    g_assert_cmpuint(suggest_distance("stacks", "stack"), ==, 1);
    g_assert_cmpuint(suggest_distance("", "list"), ==, 4);
    g_assert_cmpuint(suggest_distance("lsit", "list"), ==, 1);
    g_assert_cmpuint(suggest_distance("image", "stack"), ==, 4);
}

static void test_closest(void)
{
    static const char *const nouns[] = {"host",         "tenant",    "token",   "image",
                                        "stack",        "operation", "event",   "peer",
                                        "device-class", "device",    "network", NULL};
    g_assert_cmpstr(suggest_closest("stakc", nouns), ==, "stack");
    g_assert_cmpstr(suggest_closest("tenants", nouns), ==, "tenant");
    g_assert_cmpstr(suggest_closest("imgae", nouns), ==, "image");
    g_assert_cmpstr(suggest_closest("netwrk", nouns), ==, "network");
    g_assert_cmpstr(suggest_closest("devise", nouns), ==, "device");
    /* A unique prefix, however short the rest. */
    g_assert_cmpstr(suggest_closest("oper", nouns), ==, "operation");
    /* Nothing close: no guess. */
    g_assert_null(suggest_closest("banana", nouns));
    g_assert_null(suggest_closest("x", nouns));
    /* Ties go to the first listed ("tokn" is 1 from "token" only). */
    g_assert_cmpstr(suggest_closest("tokn", nouns), ==, "token");

    static const char *const options[] = {"--vcpus", "--memory", "--kernel", "--wait", NULL};
    g_assert_cmpstr(suggest_closest("--vcpu", options), ==, "--vcpus");
    g_assert_cmpstr(suggest_closest("--memroy", options), ==, "--memory");
    g_assert_null(suggest_closest("--colour", options));
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/cli-suggest/distance", test_distance);
    g_test_add_func("/cli-suggest/closest", test_closest);
    return g_test_run();
}
