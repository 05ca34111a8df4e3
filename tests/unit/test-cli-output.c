/* cli/output: YAML through libyaml (read back by libyaml's parser), CSV,
 * and aligned tables. */
#include <string.h>

#include <glib.h>
#include <json-c/json.h>
#include <yaml.h>

#include "api/json.h"
#include "cli/output.h"

/* What @print writes to a temporary FILE, as a string. */
static char *captured(void (*print)(FILE *out, gpointer data), gpointer data)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    g_assert_nonnull(out);
    print(out, data);
    g_assert_cmpint(fclose(out), ==, 0);
    return text;
}

static void print_yaml(FILE *out, gpointer data)
{
    g_assert_true(output_yaml(out, data));
}

/* The scalars of @text, in document order, with their quoting style, as
 * "plain:x" / "quoted:x" (libyaml's parser, not ours). */
static GPtrArray *yaml_scalars(const char *text)
{
    yaml_parser_t parser;
    yaml_event_t event;
    GPtrArray *scalars = g_ptr_array_new_with_free_func(g_free);

    g_assert_true(yaml_parser_initialize(&parser));
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, strlen(text));
    for (;;) {
        g_assert_true(yaml_parser_parse(&parser, &event));
        yaml_event_type_t type = event.type;
        if (type == YAML_SCALAR_EVENT)
            g_ptr_array_add(scalars,
                            g_strdup_printf("%s:%s",
                                            event.data.scalar.style == YAML_PLAIN_SCALAR_STYLE
                                                ? "plain"
                                                : "quoted",
                                            (const char *)event.data.scalar.value));
        yaml_event_delete(&event);
        if (type == YAML_STREAM_END_EVENT)
            break;
    }
    yaml_parser_delete(&parser);
    return scalars;
}

static void test_yaml_quoting(void)
{
    /* Strings a plain scalar would turn into booleans, nulls or numbers
     * under YAML 1.1 or 1.2 are quoted; true values stay plain. */
    g_autoptr(json_object) value = json_tokener_parse(
        "{\"a\":\"yes\",\"b\":\"123\",\"c\":\"\",\"d\":\"x: y\",\"e\":\"two\\nlines\","
        "\"f\":null,\"g\":true,\"h\":3.5,\"i\":\"2026-12-07T10:00:00Z\",\"n\":\"plain text\","
        "\"j\":\"Off\",\"k\":\"0x1f\"}");
    g_autofree char *text = captured(print_yaml, value);
    g_autoptr(GPtrArray) scalars = yaml_scalars(text);
    static const char *const expected[] = {
        "plain:a",
        "quoted:yes",
        "plain:b",
        "quoted:123",
        "plain:c",
        "quoted:",
        "plain:d",
        "quoted:x: y",
        "plain:e",
        "quoted:two\nlines",
        "plain:f",
        "plain:null",
        "plain:g",
        "plain:true",
        "plain:h",
        "plain:3.5",
        "plain:i",
        "quoted:2026-12-07T10:00:00Z",
        /* "n" is a YAML 1.1 boolean as a key, too */
        "quoted:n",
        "plain:plain text",
        "plain:j",
        "quoted:Off",
        "plain:k",
        "quoted:0x1f",
    };
    g_assert_cmpuint(scalars->len, ==, G_N_ELEMENTS(expected));
    for (guint i = 0; i < G_N_ELEMENTS(expected); i++)
        g_assert_cmpstr(g_ptr_array_index(scalars, i), ==, expected[i]);
}

static void test_yaml_block_style(void)
{
    g_autoptr(json_object) value = json_tokener_parse(
        "{\"stacks\":[{\"name\":\"web\",\"devices\":[]},{\"name\":\"db\",\"nics\":{}}],"
        "\"next\":null}");
    g_autofree char *text = captured(print_yaml, value);
    g_assert_cmpstr(text, ==,
                    "stacks:\n"
                    "- name: web\n"
                    "  devices: []\n"
                    "- name: db\n"
                    "  nics: {}\n"
                    "next: null\n");
}

static void test_yaml_refuses_bad_utf8(void)
{
    g_autoptr(json_object) value = json_object_new_object();
    json_object_object_add(value, "bad", json_object_new_string("\xff\xfe"));
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    g_assert_false(output_yaml(out, value));
    fclose(out);
    free(text);
}

static void print_table(FILE *out, gpointer data)
{
    output_table_print(data, out);
}

static OutputTable *sample_list(void)
{
    static const char *const headers[] = {"NAME", "STATE", "NOTE", NULL};
    OutputTable *table = output_table_new(headers, 0);
    output_table_add(table, "web", "running", "a, b");
    output_table_add(table, "db", NULL, "say \"hi\"");
    output_table_add(table, "cache", "", "two\nlines");
    return table;
}

static void test_table(void)
{
    g_autoptr(OutputTable) table = sample_list();
    output_tables_as_csv(FALSE);
    g_autofree char *text = captured(print_table, table);
    g_assert_cmpstr(text, ==,
                    "NAME   STATE    NOTE\n"
                    "web    running  a, b\n"
                    "db     -        say \"hi\"\n"
                    "cache  -        two\nlines\n");
}

static void test_csv(void)
{
    g_autoptr(OutputTable) table = sample_list();
    output_tables_as_csv(TRUE);
    g_autofree char *text = captured(print_table, table);
    output_tables_as_csv(FALSE);
    g_assert_cmpstr(text, ==,
                    "NAME,STATE,NOTE\r\n"
                    "web,running,\"a, b\"\r\n"
                    "db,,\"say \"\"hi\"\"\"\r\n"
                    "cache,,\"two\nlines\"\r\n");

    /* A listing: label, value; the label without its colon. */
    g_autoptr(OutputTable) listing = output_table_new(NULL, 2);
    output_table_add(listing, "name:", "web");
    output_table_add(listing, "vcpus:", "2");
    output_tables_as_csv(TRUE);
    g_autofree char *rows = captured(print_table, listing);
    output_tables_as_csv(FALSE);
    g_assert_cmpstr(rows, ==, "name,web\r\nvcpus,2\r\n");
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/cli-output/yaml/quoting", test_yaml_quoting);
    g_test_add_func("/cli-output/yaml/block-style", test_yaml_block_style);
    g_test_add_func("/cli-output/yaml/refuses-bad-utf8", test_yaml_refuses_bad_utf8);
    g_test_add_func("/cli-output/table", test_table);
    g_test_add_func("/cli-output/csv", test_csv);
    return g_test_run();
}
