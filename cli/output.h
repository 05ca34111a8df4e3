/* What turtlectl prints: the API's JSON as is (pretty), the same as YAML,
 * or tables for people. */
#pragma once

#include <stdio.h>

#include <glib.h>
#include <json-c/json.h>

typedef enum {
    OUTPUT_TABLE,
    OUTPUT_JSON,
    OUTPUT_YAML,
    OUTPUT_CSV, /* the tables, as RFC 4180 CSV */
} OutputFormat;

/* "table", "json", "yaml" or "csv". */
gboolean output_format_parse(const char *text, OutputFormat *format);

/* Pretty JSON, two-space indent, newline-terminated. */
void output_json(FILE *out, json_object *value);
/* One JSON value on one line. */
void output_json_line(FILE *out, json_object *value);
/* A YAML document by libyaml (block style; strings quoted when a plain
 * scalar would read as something else); FALSE, with the reason on stderr,
 * when libyaml refuses (text that is not UTF-8). */
gboolean output_yaml(FILE *out, json_object *value);

/* Aligned columns.  With @headers (NULL-terminated) a header row in capitals
 * comes first; without, @columns cells a row (a "label: value" listing). */
typedef struct OutputTable OutputTable;

OutputTable *output_table_new(const char *const *headers, guint columns);
void output_table_free(OutputTable *table);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(OutputTable, output_table_free)

/* Print every table as CSV from now on (--format csv): the same rows and
 * columns, a listing's "label:" cells without the colon. */
void output_tables_as_csv(gboolean csv);

/* Exactly as many cells as columns; NULL or "" prints as "-" (in CSV as an
 * empty field). */
void output_table_add(OutputTable *table, ...);
void output_table_print(const OutputTable *table, FILE *out);
