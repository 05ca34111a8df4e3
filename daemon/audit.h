/* The audit log: one record for every mutating request (POST, PUT, PATCH,
 * DELETE), refused ones too, once its answer's status is known: who (the
 * UNIX-socket peer's uid, the tenant and token id, an operator token's id,
 * or anonymous), what (method, route, path, the route's captures, the
 * request id) and the result (the status).
 *
 * Under journald a record is a journal entry with TURTLES_AUDIT=1 and
 * TURTLES_AUDIT_* fields; otherwise a JSON object on one line appended to
 * <state_dir>/audit.log (mode 0600, opened once).  Never a secret: no token,
 * no body, no query string.  Records come from HTTP threads at once; a
 * record that cannot be written is logged (with its fields), never fatal. */
#pragma once

#include <glib.h>

typedef struct Audit Audit;

typedef struct {
    const char *request_id;
    const char *role;     /* "operator", "tenant" or "anonymous" */
    gint64 uid;           /* the UNIX-socket peer's uid, -1 on TCP */
    const char *tenant;   /* a tenant caller's tenant, or NULL */
    const char *token_id; /* the id of the token presented, or NULL */
    const char *method;
    const char *route;  /* the route's pattern, NULL when none matched */
    const char *path;   /* as sent, without the query string */
    GHashTable *params; /* the route's {captures}, decoded (may be NULL) */
    unsigned status;    /* 0: never answered (the client left first) */
} AuditRecord;

/* Where records go: the journal when @journal, else @state_dir/audit.log
 * (when it cannot be opened: a warning, and records go to the log). */
Audit *audit_open(const char *state_dir, gboolean journal);
void audit_free(Audit *audit);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Audit, audit_free)

/* TRUE for the methods that change something. */
gboolean audit_wanted(const char *method);
/* Thread-safe. */
void audit_record(Audit *audit, const AuditRecord *record);

/* "tenant:NAME/token:ID", "token:ID" (an operator token), "uid:N" (the
 * UNIX-socket peer, authenticated or not: the role tells) or "anonymous":
 * who, in one string. */
char *audit_actor(const AuditRecord *record);
/* The record as audit.log has it (no newline), stamped @time (RFC 3339). */
char *audit_record_to_json(const AuditRecord *record, const char *time);
