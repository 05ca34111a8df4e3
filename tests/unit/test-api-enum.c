/* api/enum: the table every wire enum is encoded and decoded through. */
#include <glib.h>

#include "api/enum.h"
#include "api/error.h"

/* Values on purpose neither starting at 0 nor contiguous, and listed out of
 * numeric order: the table, not the index, decides. */
enum { COLOUR_RED = 3, COLOUR_GREEN = -2, COLOUR_BLUE = 10 };
static const ApiEnumName colours[] = {
    {COLOUR_RED, "red"},
    {COLOUR_GREEN, "green"},
    {COLOUR_BLUE, "blue"},
    {0, NULL},
};
static const ApiEnumName empty[] = {{0, NULL}};

static void test_to_string(void)
{
    g_assert_cmpstr(api_enum_to_string(colours, COLOUR_RED), ==, "red");
    g_assert_cmpstr(api_enum_to_string(colours, COLOUR_GREEN), ==, "green");
    g_assert_cmpstr(api_enum_to_string(colours, COLOUR_BLUE), ==, "blue");
    /* Indexes of the table and the terminator's value are not values. */
    static const int outside[] = {0, 1, 2, 4, -1, 11, G_MININT, G_MAXINT};
    for (guint i = 0; i < G_N_ELEMENTS(outside); i++)
        g_assert_cmpstr(api_enum_to_string(colours, outside[i]), ==, "unknown");
    g_assert_cmpstr(api_enum_to_string(empty, 0), ==, "unknown");
}

static void test_from_string(void)
{
    for (const ApiEnumName *entry = colours; entry->name; entry++) {
        int value = 12345;
        g_assert_true(api_enum_from_string(colours, entry->name, &value));
        g_assert_cmpint(value, ==, entry->value);
        /* Round trip. */
        g_assert_cmpstr(api_enum_to_string(colours, value), ==, entry->name);
    }

    static const char *const bad[] = {
        "", "Red", "RED", "re", "redd", " red", "red ", "unknown", "3", "0", "blue\n",
    };
    for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
        int value = 12345;
        g_assert_false(api_enum_from_string(colours, bad[i], &value));
        g_assert_cmpint(value, ==, 12345); /* untouched */
    }
    int value = 12345;
    g_assert_false(api_enum_from_string(colours, NULL, &value));
    g_assert_cmpint(value, ==, 12345);
    g_assert_false(api_enum_from_string(empty, "red", &value));
    g_assert_cmpint(value, ==, 12345);
}

static void test_check(void)
{
    g_autoptr(GError) error = NULL;
    int value = 12345;

    g_assert_true(api_enum_check("colour", colours, "green", &value, &error));
    g_assert_no_error(error);
    g_assert_cmpint(value, ==, COLOUR_GREEN);

    value = 12345;
    g_assert_false(api_enum_check("paint.colour", colours, "Green", &value, &error));
    g_assert_error(error, API_ERROR, API_ERROR_INVALID);
    /* Names in table order, worded like api_json_check_choice. */
    g_assert_cmpstr(error->message, ==, "paint.colour: must be one of red, green, blue");
    g_assert_cmpint(value, ==, 12345);
    g_clear_error(&error);

    g_assert_false(api_enum_check("colour", colours, NULL, &value, &error));
    g_assert_error(error, API_ERROR, API_ERROR_INVALID);
    g_assert_cmpstr(error->message, ==, "colour: must be one of red, green, blue");
    g_assert_cmpint(value, ==, 12345);
    g_clear_error(&error);

    /* A NULL error is allowed. */
    g_assert_false(api_enum_check("colour", colours, "purple", &value, NULL));
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/api/enum/to-string", test_to_string);
    g_test_add_func("/api/enum/from-string", test_from_string);
    g_test_add_func("/api/enum/check", test_check);
    return g_test_run();
}
