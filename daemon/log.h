/* turtled's log: GLib's structured logging with the objects a line concerns
 * as fields (TURTLES_TENANT, TURTLES_STACK, TURTLES_OPERATION,
 * TURTLES_REQUEST_ID) and a MESSAGE_ID for the key events.
 *
 * log_install makes every line (g_message and friends too) go through one
 * writer: under journald the fields become journal fields; otherwise the
 * line goes to stderr as GLib formats it, the fields appended in brackets
 * ("... [tenant=acme stack=web request=...]").
 *
 * A thread may carry a context (the request it serves, the operation it
 * runs): every line it logs meanwhile gets those fields without naming
 * them, like a logging framework's diagnostic context.  The HTTP layer sets
 * the request around a request's handling; the worker pool sets the
 * operation (and the request that submitted it) around an operation's body. */
#pragma once

#include <glib.h>

/* Fixed ids of the key events (journalctl MESSAGE_ID=...), like systemd's
 * catalog ids: never change one once released. */
#define LOG_MESSAGE_STACK_CREATED  "28040d75a2584cea9ac6374ef66bca02"
#define LOG_MESSAGE_STACK_DELETED  "d042d1c2ba774eb6a0601094e35986cc"
#define LOG_MESSAGE_STACK_MIGRATED "f6edcf9d741e445384d2d01fe1abdd29"
#define LOG_MESSAGE_TENANT_CREATED "020a04a1e46b45d89cf66052ddb93508"
#define LOG_MESSAGE_TENANT_DELETED "4c2463589ac34884bbe2c6c97a638c2e"
#define LOG_MESSAGE_TOKEN_REVOKED  "2ef077c1daa74b8baec5d534e258b07d"
#define LOG_MESSAGE_AUDIT          "e0352c929524483d92c821656894833e"

#define LOG_FIELD_TENANT     "TURTLES_TENANT"
#define LOG_FIELD_STACK      "TURTLES_STACK"
#define LOG_FIELD_OPERATION  "TURTLES_OPERATION"
#define LOG_FIELD_REQUEST_ID "TURTLES_REQUEST_ID"

/* Installs the writer; call once, first thing in main (before any thread). */
void log_install(void);

/* A field of a line besides the objects (an audit record's). */
typedef struct {
    const char *key;   /* a journal field name: upper case, digits, '_' */
    const char *value; /* NULL: left out */
} LogExtra;

/* The objects a line is about; NULL members are left out. */
typedef struct {
    const char *message_id; /* one of LOG_MESSAGE_*, for a key event */
    const char *tenant;
    const char *stack; /* the stack's name (its tenant in .tenant) */
    const char *operation;
    const char *request_id; /* NULL: the thread's context, if any */
    const LogExtra *extra;
    gsize n_extra;
} LogFields;

/* A line at @level (G_LOG_LEVEL_MESSAGE, _WARNING, ...) with @fields. */
#define log_structured(level, fields, ...)                                                         \
    log_structured_at(__FILE__, G_STRINGIFY(__LINE__), G_STRFUNC, level, fields, __VA_ARGS__)
void log_structured_at(const char *file, const char *line, const char *func, GLogLevelFlags level,
                       const LogFields *fields, const char *format, ...) G_GNUC_PRINTF(6, 7);

/* The thread's context: copies kept until replaced or cleared (NULL). */
void log_context_set(const char *request_id, const char *operation);
/* The thread's request id (NULL outside a request or an operation). */
const char *log_context_request_id(void);

/* The journald test of the writer: stderr is connected to the journal. */
gboolean log_to_journal(void);

/* The writer's stderr line (without newline) of @fields, for tests. */
char *log_format_line(GLogLevelFlags level, const GLogField *fields, gsize n_fields,
                      gboolean color);
