#include "cli/output.h"

#include <string.h>

gboolean output_format_parse(const char *text, OutputFormat *format)
{
    static const struct {
        const char *name;
        OutputFormat format;
    } formats[] = {{"table", OUTPUT_TABLE}, {"json", OUTPUT_JSON}, {"yaml", OUTPUT_YAML}};

    for (guint i = 0; text != NULL && i < G_N_ELEMENTS(formats); i++) {
        if (strcmp(text, formats[i].name) == 0) {
            *format = formats[i].format;
            return TRUE;
        }
    }
    return FALSE;
}

void output_json(FILE *out, json_object *value)
{
    fputs(json_object_to_json_string_ext(value, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                                                    JSON_C_TO_STRING_NOSLASHESCAPE),
          out);
    fputc('\n', out);
}

void output_json_line(FILE *out, json_object *value)
{
    fputs(json_object_to_json_string_ext(value,
                                         JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE),
          out);
    fputc('\n', out);
}

/* ---- YAML ------------------------------------------------------------------ */

/* Plain scalars that YAML 1.1 or 1.2 resolves to something else than a string. */
static gboolean yaml_reserved_word(const char *text)
{
    static const char *const words[] = {
        "~", "null", "true", "false", "yes",   "no",   "on", "off",
        "y", "n",    ".inf", "-.inf", "+.inf", ".nan", NULL,
    };
    for (guint i = 0; words[i] != NULL; i++) {
        if (g_ascii_strcasecmp(text, words[i]) == 0)
            return TRUE;
    }
    return FALSE;
}

/* Numbers in any notation, dates and times, sexagesimals: everything made
 * of digits and the few characters those use.  Quoting more than needed is
 * harmless; quoting less is a bug. */
static gboolean yaml_looks_numeric(const char *text)
{
    const char *p = text;
    if (*p == '+' || *p == '-' || *p == '.')
        p++;
    if (!g_ascii_isdigit(*p))
        return FALSE;
    for (; *p != '\0'; p++) {
        if (!g_ascii_isdigit(*p) && strchr("._:+-eETtZzxXoObB ", *p) == NULL &&
            !g_ascii_isxdigit(*p))
            return FALSE;
    }
    return TRUE;
}

static gboolean yaml_needs_quotes(const char *text)
{
    gsize len = strlen(text);
    if (len == 0 || yaml_reserved_word(text) || yaml_looks_numeric(text))
        return TRUE;
    /* Indicators that may not start a plain scalar. */
    if (strchr("-?:,[]{}#&*!|>'\"%@`", text[0]) != NULL || text[0] == ' ' || text[len - 1] == ' ' ||
        text[len - 1] == ':')
        return TRUE;
    for (const char *p = text; *p != '\0'; p++) {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20 || c == 0x7f)
            return TRUE;
        if ((c == ':' && p[1] == ' ') || (c == ' ' && p[1] == '#'))
            return TRUE;
    }
    return !g_utf8_validate(text, (gssize)len, NULL);
}

static void yaml_scalar_string(FILE *out, const char *text)
{
    if (!yaml_needs_quotes(text)) {
        fputs(text, out);
        return;
    }
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)text; *p != '\0'; p++) {
        switch (*p) {
        case '"':
            fputs("\\\"", out);
            break;
        case '\\':
            fputs("\\\\", out);
            break;
        case '\n':
            fputs("\\n", out);
            break;
        case '\t':
            fputs("\\t", out);
            break;
        case '\r':
            fputs("\\r", out);
            break;
        default:
            if (*p < 0x20 || *p == 0x7f)
                fprintf(out, "\\x%02x", *p);
            else
                fputc(*p, out);
        }
    }
    fputc('"', out);
}

static gboolean yaml_is_collection(json_object *value)
{
    return (json_object_is_type(value, json_type_object) && json_object_object_length(value) > 0) ||
           (json_object_is_type(value, json_type_array) && json_object_array_length(value) > 0);
}

static void yaml_scalar(FILE *out, json_object *value)
{
    switch (json_object_get_type(value)) {
    case json_type_null:
        fputs("null", out);
        break;
    case json_type_string:
        yaml_scalar_string(out, json_object_get_string(value));
        break;
    case json_type_object:
        fputs("{}", out);
        break;
    case json_type_array:
        fputs("[]", out);
        break;
    default: /* booleans and numbers read the same in YAML */
        fputs(json_object_to_json_string_ext(value, JSON_C_TO_STRING_PLAIN), out);
        break;
    }
}

static void yaml_indent(FILE *out, int indent)
{
    for (int i = 0; i < indent; i++)
        fputc(' ', out);
}

static void yaml_node(FILE *out, json_object *value, int indent, gboolean inline_first);

/* A block collection at @indent.  @inline_first: the first line continues
 * a "- " already printed. */
static void yaml_collection(FILE *out, json_object *value, int indent, gboolean inline_first)
{
    gboolean first = TRUE;
    if (json_object_is_type(value, json_type_object)) {
        json_object_object_foreach(value, key, member)
        {
            if (!(first && inline_first))
                yaml_indent(out, indent);
            first = FALSE;
            yaml_scalar_string(out, key);
            fputc(':', out);
            if (yaml_is_collection(member)) {
                fputc('\n', out);
                /* Sequences under a key sit at the key's indent, as most emitters do. */
                yaml_node(out, member,
                          json_object_is_type(member, json_type_array) ? indent : indent + 2,
                          FALSE);
            } else {
                fputc(' ', out);
                yaml_scalar(out, member);
                fputc('\n', out);
            }
        }
        return;
    }
    for (size_t i = 0; i < json_object_array_length(value); i++) {
        json_object *item = json_object_array_get_idx(value, i);
        if (!(first && inline_first))
            yaml_indent(out, indent);
        first = FALSE;
        fputs("- ", out);
        yaml_node(out, item, indent + 2, TRUE);
    }
}

static void yaml_node(FILE *out, json_object *value, int indent, gboolean inline_first)
{
    if (yaml_is_collection(value)) {
        yaml_collection(out, value, indent, inline_first);
        return;
    }
    if (!inline_first)
        yaml_indent(out, indent);
    yaml_scalar(out, value);
    fputc('\n', out);
}

void output_yaml(FILE *out, json_object *value)
{
    yaml_node(out, value, 0, FALSE);
}

/* ---- tables ----------------------------------------------------------------- */

struct OutputTable {
    guint columns;
    gboolean header;
    GPtrArray *rows; /* of GStrv */
};

OutputTable *output_table_new(const char *const *headers, guint columns)
{
    OutputTable *table = g_new0(OutputTable, 1);
    table->rows = g_ptr_array_new_with_free_func((GDestroyNotify)g_strfreev);
    if (headers != NULL) {
        table->columns = g_strv_length((char **)headers);
        table->header = TRUE;
        g_ptr_array_add(table->rows, g_strdupv((char **)headers));
    } else {
        table->columns = columns;
    }
    return table;
}

void output_table_free(OutputTable *table)
{
    if (table == NULL)
        return;
    g_ptr_array_unref(table->rows);
    g_free(table);
}

void output_table_add(OutputTable *table, ...)
{
    va_list args;
    char **row = g_new0(char *, table->columns + 1);

    va_start(args, table);
    for (guint i = 0; i < table->columns; i++) {
        const char *cell = va_arg(args, const char *);
        row[i] = g_strdup(cell != NULL && *cell != '\0' ? cell : "-");
    }
    va_end(args);
    g_ptr_array_add(table->rows, row);
}

void output_table_print(const OutputTable *table, FILE *out)
{
    g_autofree glong *widths = g_new0(glong, table->columns);

    for (guint r = 0; r < table->rows->len; r++) {
        char **row = g_ptr_array_index(table->rows, r);
        for (guint c = 0; c < table->columns; c++)
            widths[c] = MAX(widths[c], g_utf8_strlen(row[c], -1));
    }
    for (guint r = 0; r < table->rows->len; r++) {
        char **row = g_ptr_array_index(table->rows, r);
        for (guint c = 0; c < table->columns; c++) {
            fputs(row[c], out);
            if (c + 1 == table->columns)
                break;
            for (glong pad = g_utf8_strlen(row[c], -1); pad < widths[c] + 2; pad++)
                fputc(' ', out);
        }
        fputc('\n', out);
    }
}
