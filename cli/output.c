#include "cli/output.h"

#include <string.h>

#include <yaml.h>

gboolean output_format_parse(const char *text, OutputFormat *format)
{
    static const struct {
        const char *name;
        OutputFormat format;
    } formats[] = {
        {"table", OUTPUT_TABLE},
        {"json", OUTPUT_JSON},
        {"yaml", OUTPUT_YAML},
        {"csv", OUTPUT_CSV},
    };

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

/* Plain scalars that YAML 1.1 or 1.2 resolves to something else than a
 * string.  libyaml's emitter checks only syntax, so these are quoted here. */
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

static gboolean yaml_emit_node(yaml_emitter_t *emitter, json_object *value);

static gboolean yaml_emit_scalar(yaml_emitter_t *emitter, const char *text,
                                 yaml_scalar_style_t style)
{
    yaml_event_t event;
    return yaml_scalar_event_initialize(&event, NULL, NULL, (yaml_char_t *)text, (int)strlen(text),
                                        1, 1, style) &&
           yaml_emitter_emit(emitter, &event);
}

static gboolean yaml_emit_string(yaml_emitter_t *emitter, const char *text)
{
    gboolean resolves_otherwise =
        *text == '\0' || yaml_reserved_word(text) || yaml_looks_numeric(text);
    return yaml_emit_scalar(emitter, text,
                            resolves_otherwise ? YAML_DOUBLE_QUOTED_SCALAR_STYLE
                                               : YAML_ANY_SCALAR_STYLE);
}

static gboolean yaml_emit_object(yaml_emitter_t *emitter, json_object *value)
{
    yaml_event_t event;
    yaml_mapping_style_t style =
        json_object_object_length(value) == 0 ? YAML_FLOW_MAPPING_STYLE : YAML_BLOCK_MAPPING_STYLE;
    if (!yaml_mapping_start_event_initialize(&event, NULL, NULL, 1, style) ||
        !yaml_emitter_emit(emitter, &event))
        return FALSE;
    json_object_object_foreach(value, key, member)
    {
        if (!yaml_emit_string(emitter, key) || !yaml_emit_node(emitter, member))
            return FALSE;
    }
    return yaml_mapping_end_event_initialize(&event) && yaml_emitter_emit(emitter, &event);
}

static gboolean yaml_emit_array(yaml_emitter_t *emitter, json_object *value)
{
    yaml_event_t event;
    size_t length = json_object_array_length(value);
    yaml_sequence_style_t style =
        length == 0 ? YAML_FLOW_SEQUENCE_STYLE : YAML_BLOCK_SEQUENCE_STYLE;
    if (!yaml_sequence_start_event_initialize(&event, NULL, NULL, 1, style) ||
        !yaml_emitter_emit(emitter, &event))
        return FALSE;
    for (size_t i = 0; i < length; i++) {
        if (!yaml_emit_node(emitter, json_object_array_get_idx(value, i)))
            return FALSE;
    }
    return yaml_sequence_end_event_initialize(&event) && yaml_emitter_emit(emitter, &event);
}

static gboolean yaml_emit_node(yaml_emitter_t *emitter, json_object *value)
{
    switch (json_object_get_type(value)) {
    case json_type_null:
        return yaml_emit_scalar(emitter, "null", YAML_PLAIN_SCALAR_STYLE);
    case json_type_string:
        return yaml_emit_string(emitter, json_object_get_string(value));
    case json_type_object:
        return yaml_emit_object(emitter, value);
    case json_type_array:
        return yaml_emit_array(emitter, value);
    default: /* booleans and numbers read the same in YAML */
        return yaml_emit_scalar(emitter,
                                json_object_to_json_string_ext(value, JSON_C_TO_STRING_PLAIN),
                                YAML_PLAIN_SCALAR_STYLE);
    }
}

/* One document of @value; FALSE when libyaml refuses (emitter.problem says why). */
static gboolean yaml_emit_document(yaml_emitter_t *emitter, json_object *value)
{
    yaml_event_t event;
    return yaml_stream_start_event_initialize(&event, YAML_UTF8_ENCODING) &&
           yaml_emitter_emit(emitter, &event) &&
           yaml_document_start_event_initialize(&event, NULL, NULL, NULL, 1) &&
           yaml_emitter_emit(emitter, &event) && yaml_emit_node(emitter, value) &&
           yaml_document_end_event_initialize(&event, 1) && yaml_emitter_emit(emitter, &event) &&
           yaml_stream_end_event_initialize(&event) && yaml_emitter_emit(emitter, &event) &&
           yaml_emitter_flush(emitter);
}

gboolean output_yaml(FILE *out, json_object *value)
{
    yaml_emitter_t emitter;
    if (!yaml_emitter_initialize(&emitter)) {
        fputs("turtlectl: cannot start libyaml's emitter\n", stderr);
        return FALSE;
    }
    yaml_emitter_set_output_file(&emitter, out);
    yaml_emitter_set_unicode(&emitter, 1);
    yaml_emitter_set_width(&emitter, -1); /* long values on one line, as json shows them */
    gboolean ok = yaml_emit_document(&emitter, value);
    if (!ok)
        fprintf(stderr, "turtlectl: cannot write YAML: %s\n",
                emitter.problem != NULL ? emitter.problem
                                        : "a value is not valid UTF-8 (--format json shows it)");
    yaml_emitter_delete(&emitter);
    return ok;
}

/* ---- tables ----------------------------------------------------------------- */

struct OutputTable {
    guint columns;
    gboolean header;
    GPtrArray *rows; /* of GStrv; "" for an empty cell */
};

/* How tables print: aligned columns, or CSV for --format csv.  One choice
 * for the whole run, made once the options are read. */
static gboolean tables_as_csv;

void output_tables_as_csv(gboolean csv)
{
    tables_as_csv = csv;
}

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
        row[i] = g_strdup(cell != NULL ? cell : "");
    }
    va_end(args);
    g_ptr_array_add(table->rows, row);
}

/* A cell as RFC 4180 has it: quoted when it holds a comma, a quote or a
 * line break, quotes doubled. */
static void print_csv_cell(FILE *out, const char *cell)
{
    if (strpbrk(cell, ",\"\r\n") == NULL) {
        fputs(cell, out);
        return;
    }
    fputc('"', out);
    for (const char *p = cell; *p != '\0'; p++) {
        if (*p == '"')
            fputc('"', out);
        fputc(*p, out);
    }
    fputc('"', out);
}

/* CSV: the header row as it is; a listing's labels without their colon. */
static void print_csv(const OutputTable *table, FILE *out)
{
    for (guint r = 0; r < table->rows->len; r++) {
        char **row = g_ptr_array_index(table->rows, r);
        for (guint c = 0; c < table->columns; c++) {
            g_autofree char *cell = g_strdup(row[c]);
            if (!table->header && c == 0 && g_str_has_suffix(cell, ":"))
                cell[strlen(cell) - 1] = '\0';
            if (c > 0)
                fputc(',', out);
            print_csv_cell(out, cell);
        }
        fputs("\r\n", out);
    }
}

/* An empty cell shows as "-" in a table, so that columns stay countable. */
static const char *shown(const char *cell)
{
    return *cell != '\0' ? cell : "-";
}

void output_table_print(const OutputTable *table, FILE *out)
{
    if (tables_as_csv) {
        print_csv(table, out);
        return;
    }
    g_autofree glong *widths = g_new0(glong, table->columns);

    for (guint r = 0; r < table->rows->len; r++) {
        char **row = g_ptr_array_index(table->rows, r);
        for (guint c = 0; c < table->columns; c++)
            widths[c] = MAX(widths[c], g_utf8_strlen(shown(row[c]), -1));
    }
    for (guint r = 0; r < table->rows->len; r++) {
        char **row = g_ptr_array_index(table->rows, r);
        for (guint c = 0; c < table->columns; c++) {
            fputs(shown(row[c]), out);
            if (c + 1 == table->columns)
                break;
            for (glong pad = g_utf8_strlen(shown(row[c]), -1); pad < widths[c] + 2; pad++)
                fputc(' ', out);
        }
        fputc('\n', out);
    }
}
