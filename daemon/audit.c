/* The audit log (see audit.h). */
#include "daemon/audit.h"

#include "daemon/log.h"

#include <errno.h>
#include <fcntl.h>
#include "api/json.h"

#include <json-c/json.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define AUDIT_FILE "audit.log"

struct Audit {
    GMutex lock; /* one record at a time on the file; guards failing */
    int fd;      /* -1: records go to the journal (or the log) */
    char *path;
    gboolean failing; /* the last write failed (warned once per failure streak) */
};

Audit *audit_open(const char *state_dir, gboolean journal)
{
    Audit *audit = g_new0(Audit, 1);
    g_mutex_init(&audit->lock);
    audit->fd = -1;
    if (journal)
        return audit;
    audit->path = g_build_filename(state_dir, AUDIT_FILE, NULL);
    audit->fd = open(audit->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (audit->fd < 0)
        g_warning("cannot open the audit log %s: %s; audit records go to this log instead",
                  audit->path, g_strerror(errno));
    else if (fchmod(audit->fd, 0600) != 0) /* one made by someone else, or an older umask */
        g_warning("cannot make the audit log %s private (0600): %s", audit->path,
                  g_strerror(errno));
    return audit;
}

void audit_free(Audit *audit)
{
    if (audit == NULL)
        return;
    if (audit->fd >= 0)
        close(audit->fd);
    g_free(audit->path);
    g_mutex_clear(&audit->lock);
    g_free(audit);
}

gboolean audit_wanted(const char *method)
{
    static const char *const mutating[] = {"POST", "PUT", "PATCH", "DELETE"};
    for (gsize i = 0; method != NULL && i < G_N_ELEMENTS(mutating); i++)
        if (strcmp(method, mutating[i]) == 0)
            return TRUE;
    return FALSE;
}

char *audit_actor(const AuditRecord *record)
{
    if (record->tenant != NULL)
        return g_strdup_printf("tenant:%s/token:%s", record->tenant,
                               record->token_id != NULL ? record->token_id : "unknown");
    if (record->token_id != NULL)
        return g_strdup_printf("token:%s", record->token_id);
    if (record->uid >= 0)
        return g_strdup_printf("uid:%" G_GINT64_FORMAT, record->uid);
    return g_strdup("anonymous");
}

static json_object *string_or_null(const char *value)
{
    return value != NULL ? json_object_new_string(value) : NULL;
}

/* The captures as an object, sorted by name: {"name":"web"}. */
static json_object *params_json(GHashTable *params)
{
    json_object *object = json_object_new_object();
    if (params == NULL)
        return object;
    g_autoptr(GList) keys = g_list_sort(g_hash_table_get_keys(params), (GCompareFunc)strcmp);
    for (GList *l = keys; l != NULL; l = l->next)
        json_object_object_add(object, l->data,
                               json_object_new_string(g_hash_table_lookup(params, l->data)));
    return object;
}

char *audit_record_to_json(const AuditRecord *record, const char *time)
{
    g_autofree char *actor = audit_actor(record);
    json_object *line = json_object_new_object();
    json_object_object_add(line, "time", json_object_new_string(time));
    json_object_object_add(line, "request_id", string_or_null(record->request_id));
    json_object_object_add(line, "actor", json_object_new_string(actor));
    json_object_object_add(line, "role", string_or_null(record->role));
    json_object_object_add(line, "uid",
                           record->uid >= 0 ? json_object_new_int64(record->uid) : NULL);
    json_object_object_add(line, "tenant", string_or_null(record->tenant));
    json_object_object_add(line, "token_id", string_or_null(record->token_id));
    json_object_object_add(line, "method", string_or_null(record->method));
    json_object_object_add(line, "route", string_or_null(record->route));
    json_object_object_add(line, "path", string_or_null(record->path));
    json_object_object_add(line, "target", params_json(record->params));
    json_object_object_add(line, "status", json_object_new_int((int)record->status));
    char *text = g_strdup(json_object_to_json_string_ext(line, JSON_C_TO_STRING_PLAIN |
                                                                   JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(line);
    return text;
}

/* A journal entry (or, when the file failed, a line of turtled's log). */
static void record_to_log(const AuditRecord *record)
{
    g_autofree char *actor = audit_actor(record);
    g_autofree char *uid =
        record->uid >= 0 ? g_strdup_printf("%" G_GINT64_FORMAT, record->uid) : NULL;
    g_autofree char *status = g_strdup_printf("%u", record->status);
    g_autoptr(json_object) params = params_json(record->params);
    const char *target = json_object_to_json_string_ext(params, JSON_C_TO_STRING_PLAIN |
                                                                    JSON_C_TO_STRING_NOSLASHESCAPE);
    const LogExtra extra[] = {
        {"TURTLES_AUDIT", "1"},
        {"TURTLES_AUDIT_ACTOR", actor},
        {"TURTLES_AUDIT_ROLE", record->role},
        {"TURTLES_AUDIT_UID", uid},
        {"TURTLES_AUDIT_TENANT", record->tenant},
        {"TURTLES_AUDIT_TOKEN_ID", record->token_id},
        {"TURTLES_AUDIT_METHOD", record->method},
        {"TURTLES_AUDIT_ROUTE", record->route},
        {"TURTLES_AUDIT_PATH", record->path},
        {"TURTLES_AUDIT_TARGET", target},
        {"TURTLES_AUDIT_STATUS", status},
    };
    LogFields fields = {
        .message_id = LOG_MESSAGE_AUDIT,
        .request_id = record->request_id,
        .extra = extra,
        .n_extra = G_N_ELEMENTS(extra),
    };
    log_structured(G_LOG_LEVEL_MESSAGE, &fields, "audit: %s %s %s -> %u", actor, record->method,
                   record->path, record->status);
}

static gboolean write_line(int fd, const char *line, gsize len, int *err)
{
    /* O_APPEND and one write per record: lines never interleave. */
    while (len > 0) {
        ssize_t n = write(fd, line, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            *err = errno;
            return FALSE;
        }
        line += n;
        len -= (gsize)n;
    }
    return TRUE;
}

static char *now_rfc3339(void)
{
    g_autoptr(GDateTime) now = g_date_time_new_now_utc();
    return g_date_time_format(now, "%Y-%m-%dT%H:%M:%S.%fZ");
}

void audit_record(Audit *audit, const AuditRecord *record)
{
    if (audit->fd < 0) {
        record_to_log(record);
        return;
    }
    g_autofree char *time = now_rfc3339();
    g_autofree char *json = audit_record_to_json(record, time);
    g_autofree char *line = g_strconcat(json, "\n", NULL);
    int err = 0;

    g_mutex_lock(&audit->lock);
    gboolean written = write_line(audit->fd, line, strlen(line), &err);
    gboolean warn = !written && !audit->failing;
    audit->failing = !written;
    g_mutex_unlock(&audit->lock);
    if (warn)
        g_warning("cannot write to the audit log %s: %s; records go to this log until it works "
                  "again",
                  audit->path, g_strerror(err));
    if (!written)
        record_to_log(record);
}
