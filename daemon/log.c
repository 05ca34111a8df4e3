/* turtled's log writer and structured log lines (see log.h). */
#include "daemon/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define MAX_FIELDS 32

/* ---- the thread's context --------------------------------------------- */

typedef struct {
    char *request_id;
    char *operation;
} LogContext;

static void context_free(gpointer data)
{
    LogContext *context = data;
    g_free(context->request_id);
    g_free(context->operation);
    g_free(context);
}

/* A key, not state: each thread's context is its own. */
static GPrivate context_key = G_PRIVATE_INIT(context_free);

void log_context_set(const char *request_id, const char *operation)
{
    if (request_id == NULL && operation == NULL) {
        g_private_replace(&context_key, NULL);
        return;
    }
    LogContext *context = g_new0(LogContext, 1);
    context->request_id = g_strdup(request_id);
    context->operation = g_strdup(operation);
    g_private_replace(&context_key, context);
}

const char *log_context_request_id(void)
{
    LogContext *context = g_private_get(&context_key);
    return context != NULL ? context->request_id : NULL;
}

/* ---- the writer ------------------------------------------------------- */

/* Decided once, before any thread: stderr does not move during a run. */
static gboolean journal_output;

gboolean log_to_journal(void)
{
    return g_log_writer_is_journald(fileno(stderr));
}

static const char *field_string(const GLogField *field)
{
    /* GLib passes length -1 for strings; a binary field is not one of ours. */
    return field->length < 0 ? field->value : NULL;
}

static const char *field_lookup(const GLogField *fields, gsize n, const char *key)
{
    for (gsize i = 0; i < n; i++)
        if (g_str_equal(fields[i].key, key))
            return field_string(&fields[i]);
    return NULL;
}

/* "TURTLES_REQUEST_ID" -> "request_id", "MESSAGE_ID" -> "message_id"; NULL
 * for the fields GLib shows itself or that are not ours. */
static char *suffix_key(const char *key)
{
    if (g_str_equal(key, "MESSAGE_ID"))
        return g_strdup("message_id");
    if (!g_str_has_prefix(key, "TURTLES_") || key[strlen("TURTLES_")] == '\0')
        return NULL;
    return g_ascii_strdown(key + strlen("TURTLES_"), -1);
}

static void append_value(GString *out, const char *value)
{
    gboolean plain = *value != '\0';
    for (const char *p = value; *p != '\0' && plain; p++)
        plain = g_ascii_isgraph(*p) && *p != '"' && *p != ']' && *p != '\\';
    if (plain) {
        g_string_append(out, value);
        return;
    }
    g_autofree char *escaped = g_strescape(value, NULL);
    g_string_append_printf(out, "\"%s\"", escaped);
}

char *log_format_line(GLogLevelFlags level, const GLogField *fields, gsize n_fields, gboolean color)
{
    g_autofree char *head = g_log_writer_format_fields(level, fields, n_fields, color);
    GString *line = g_string_new(head);
    gboolean any = FALSE;

    for (gsize i = 0; i < n_fields; i++) {
        const char *value = field_string(&fields[i]);
        g_autofree char *key = suffix_key(fields[i].key);
        if (value == NULL || key == NULL)
            continue;
        g_string_append_printf(line, "%s%s=", any ? " " : " [", key);
        append_value(line, value);
        any = TRUE;
    }
    if (any)
        g_string_append_c(line, ']');
    return g_string_free(line, FALSE);
}

static void write_all(int fd, const char *data, gsize len)
{
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        data += n;
        len -= (gsize)n;
    }
}

static GLogWriterOutput writer(GLogLevelFlags level, const GLogField *fields, gsize n_fields,
                               gpointer data)
{
    (void)data;
    GLogField all[MAX_FIELDS + 2];
    gsize n = MIN(n_fields, (gsize)MAX_FIELDS);
    LogContext *context = g_private_get(&context_key);

    if (g_log_writer_default_would_drop(level, field_lookup(fields, n_fields, "GLIB_DOMAIN")))
        return G_LOG_WRITER_HANDLED;
    memcpy(all, fields, n * sizeof(GLogField));
    /* What the thread works on, unless the line names it itself. */
    if (context != NULL && context->request_id != NULL &&
        field_lookup(all, n, LOG_FIELD_REQUEST_ID) == NULL)
        all[n++] = (GLogField){LOG_FIELD_REQUEST_ID, context->request_id, -1};
    if (context != NULL && context->operation != NULL &&
        field_lookup(all, n, LOG_FIELD_OPERATION) == NULL)
        all[n++] = (GLogField){LOG_FIELD_OPERATION, context->operation, -1};

    if (journal_output && g_log_writer_journald(level, all, n, NULL) == G_LOG_WRITER_HANDLED)
        return G_LOG_WRITER_HANDLED;
    g_autofree char *line = log_format_line(level, all, n, g_log_writer_supports_color(2));
    g_autofree char *whole = g_strconcat(line, "\n", NULL);
    /* One write per line: lines from several threads never interleave. */
    write_all(2, whole, strlen(whole));
    return G_LOG_WRITER_HANDLED;
}

void log_install(void)
{
    journal_output = log_to_journal();
    g_log_set_writer_func(writer, NULL, NULL);
}

/* ---- structured lines ----------------------------------------------------- */

static const char *priority_of(GLogLevelFlags level)
{
    /* syslog's: the journal's PRIORITY field, as GLib maps them. */
    if (level & G_LOG_LEVEL_ERROR)
        return "3";
    if (level & G_LOG_LEVEL_CRITICAL)
        return "4";
    if (level & G_LOG_LEVEL_WARNING)
        return "4";
    if (level & G_LOG_LEVEL_MESSAGE)
        return "5";
    if (level & G_LOG_LEVEL_INFO)
        return "6";
    return "7";
}

void log_structured_at(const char *file, const char *line, const char *func, GLogLevelFlags level,
                       const LogFields *fields, const char *format, ...)
{
    GLogField out[MAX_FIELDS];
    gsize n = 0;
    va_list args;

    va_start(args, format);
    g_autofree char *message = g_strdup_vprintf(format, args);
    va_end(args);
    out[n++] = (GLogField){"MESSAGE", message, -1};
    out[n++] = (GLogField){"PRIORITY", priority_of(level), -1};
    out[n++] = (GLogField){"CODE_FILE", file, -1};
    out[n++] = (GLogField){"CODE_LINE", line, -1};
    out[n++] = (GLogField){"CODE_FUNC", func, -1};
    const struct {
        const char *key;
        const char *value;
    } named[] = {
        {"MESSAGE_ID", fields->message_id},         {LOG_FIELD_TENANT, fields->tenant},
        {LOG_FIELD_STACK, fields->stack},           {LOG_FIELD_OPERATION, fields->operation},
        {LOG_FIELD_REQUEST_ID, fields->request_id},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(named); i++)
        if (named[i].value != NULL)
            out[n++] = (GLogField){named[i].key, named[i].value, -1};
    for (gsize i = 0; i < fields->n_extra && n < MAX_FIELDS; i++)
        if (fields->extra[i].value != NULL)
            out[n++] = (GLogField){fields->extra[i].key, fields->extra[i].value, -1};
    g_log_structured_array(level, out, n);
}
