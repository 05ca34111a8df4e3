#include "cli/progress.h"

#include "api/json.h"

#define PROGRESS_BAR_WIDTH 30
/* Each poll returns after at most this long, so progress shows every second. */
#define PROGRESS_ROUND_S 1
/* Past the server's own wait, for the answer to arrive. */
#define PROGRESS_SLACK_S 30

char *progress_format(const ApiOperation *operation, gboolean bar)
{
    const ApiProgress *p = &operation->progress;
    GString *text = g_string_new(NULL);

    if (bar) {
        int filled = p->percent * PROGRESS_BAR_WIDTH / 100;
        g_string_append_c(text, '[');
        for (int i = 0; i < PROGRESS_BAR_WIDTH; i++)
            g_string_append_c(text, i < filled ? '#' : ' ');
        g_string_append_printf(text, "] %3d%%", p->percent);
    } else {
        g_string_append_printf(text, "%s %d%%", api_operation_status_to_string(operation->status),
                               p->percent);
    }
    if (p->stage != NULL && *p->stage != '\0')
        g_string_append_printf(text, " %s", p->stage);
    if (bar && api_operation_status_is_final(operation->status))
        g_string_append_printf(text, " (%s)", api_operation_status_to_string(operation->status));
    return g_string_free(text, FALSE);
}

typedef struct {
    ProgressStyle style;
    FILE *out;
    char *last; /* what was shown last */
    gboolean drawn;
} Display;

static void display_update(Display *display, const char *id, const ApiOperation *operation)
{
    if (display->style == PROGRESS_NONE)
        return;
    g_autofree char *text = progress_format(operation, display->style == PROGRESS_BAR);
    if (g_strcmp0(text, display->last) == 0)
        return;
    if (display->style == PROGRESS_BAR)
        fprintf(display->out, "\r%s\033[K", text);
    else
        fprintf(display->out, "operation %s: %s\n", id, text);
    fflush(display->out);
    display->drawn = TRUE;
    g_free(display->last);
    display->last = g_steal_pointer(&text);
}

static void display_end(Display *display)
{
    if (display->style == PROGRESS_BAR && display->drawn) {
        fputc('\n', display->out);
        fflush(display->out);
    }
    g_free(display->last);
}

static ApiOperation *decode(json_object *body, GError **error)
{
    json_object *member = NULL;
    if (!json_object_object_get_ex(body, "operation", &member)) {
        g_set_error(error, CLIENT_ERROR, CLIENT_ERROR_PROTOCOL,
                    "unexpected answer from turtled: no \"operation\"");
        return NULL;
    }
    g_autoptr(GError) local = NULL;
    ApiOperation *operation = api_operation_from_json(member, &local);
    if (operation == NULL)
        g_set_error(error, CLIENT_ERROR, CLIENT_ERROR_PROTOCOL,
                    "unexpected answer from turtled: operation.%s", local->message);
    return operation;
}

gboolean progress_wait(Client *client, const char *id, gint64 timeout_s, ProgressStyle style,
                       FILE *out, json_object **body, ApiOperation **operation, GError **error)
{
    Display display = {.style = style, .out = out};
    gint64 deadline = timeout_s < 0 ? -1 : g_get_monotonic_time() + timeout_s * G_USEC_PER_SEC;
    g_autofree char *escaped = g_uri_escape_string(id, NULL, FALSE);
    g_autoptr(json_object) last = NULL;
    g_autoptr(ApiOperation) current = NULL;
    gboolean ok = TRUE;

    /* The first round answers at once: the state shows before the first second. */
    for (gint64 round = 0;; round = PROGRESS_ROUND_S) {
        if (deadline >= 0) {
            gint64 left = deadline - g_get_monotonic_time();
            round = left <= 0 ? 0 : MIN(round, (left + G_USEC_PER_SEC - 1) / G_USEC_PER_SEC);
        }
        g_autofree char *path =
            g_strdup_printf("/v1/operations/%s/wait?timeout=%" G_GINT64_FORMAT, escaped, round);
        g_clear_pointer(&last, json_object_put);
        if (!client_request(client, "GET", path, NULL, (guint)round + PROGRESS_SLACK_S, &last,
                            error)) {
            ok = FALSE;
            break;
        }
        g_clear_pointer(&current, api_operation_free);
        current = last != NULL ? decode(last, error) : NULL;
        if (current == NULL) {
            if (last == NULL)
                g_set_error(error, CLIENT_ERROR, CLIENT_ERROR_PROTOCOL,
                            "unexpected answer from turtled: an empty body");
            ok = FALSE;
            break;
        }
        display_update(&display, id, current);
        if (api_operation_status_is_final(current->status) ||
            (deadline >= 0 && g_get_monotonic_time() >= deadline))
            break;
    }
    display_end(&display);
    if (!ok)
        return FALSE;
    *body = g_steal_pointer(&last);
    *operation = g_steal_pointer(&current);
    return TRUE;
}

/* ---- bytes ------------------------------------------------------------------ */

/* A bar redraw at most this often, in microseconds: a chunk goes by every
 * few of them. */
#define PROGRESS_REDRAW_US (100 * 1000)

char *progress_size(gint64 bytes)
{
    static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB"};
    if (bytes < 1024)
        return g_strdup_printf("%" G_GINT64_FORMAT " bytes", bytes);
    double value = (double)bytes / 1024;
    guint unit = 0;
    while (value >= 1024 && unit + 1 < G_N_ELEMENTS(units)) {
        value /= 1024;
        unit++;
    }
    return g_strdup_printf("%.1f %s", value, units[unit]);
}

struct ProgressBytes {
    ProgressStyle style;
    gint64 drawn_at; /* bar: monotonic time of the last redraw */
    FILE *out;
    char *label;
    gint64 total;
    int last_step; /* lines: the last tenth shown; -1 before the first */
    char *last;    /* bar: what was shown last */
    gboolean drawn;
};

ProgressBytes *progress_bytes_new(ProgressStyle style, FILE *out, const char *label, gint64 total)
{
    ProgressBytes *progress = g_new0(ProgressBytes, 1);
    progress->style = style;
    progress->out = out;
    progress->label = g_strdup(label);
    progress->total = total;
    progress->last_step = -1;
    return progress;
}

void progress_bytes_update(ProgressBytes *progress, gint64 done)
{
    /* Nothing before the first byte goes: a refusal or an unreachable
     * daemon shows no progress at all. */
    if (progress->style == PROGRESS_NONE || (done <= 0 && progress->total > 0))
        return;
    done = CLAMP(done, 0, progress->total);
    int percent = progress->total > 0 ? (int)(done * 100 / progress->total) : 100;
    gint64 now = g_get_monotonic_time();
    if (progress->style == PROGRESS_BAR && progress->drawn && done < progress->total &&
        now - progress->drawn_at < PROGRESS_REDRAW_US)
        return;
    g_autofree char *done_text = progress_size(done);
    g_autofree char *total_text = progress_size(progress->total);

    if (progress->style == PROGRESS_LINES) {
        int step = percent / 10;
        if (step == progress->last_step)
            return;
        progress->last_step = step;
        fprintf(progress->out, "%s: %d%% (%s of %s)\n", progress->label, percent, done_text,
                total_text);
        fflush(progress->out);
        return;
    }
    int filled = percent * PROGRESS_BAR_WIDTH / 100;
    GString *text = g_string_new("[");
    for (int i = 0; i < PROGRESS_BAR_WIDTH; i++)
        g_string_append_c(text, i < filled ? '#' : ' ');
    g_string_append_printf(text, "] %3d%% %s of %s", percent, done_text, total_text);
    if (g_strcmp0(text->str, progress->last) != 0) {
        fprintf(progress->out, "\r%s\033[K", text->str);
        fflush(progress->out);
        progress->drawn = TRUE;
        progress->drawn_at = now;
        g_free(progress->last);
        progress->last = g_string_free(g_steal_pointer(&text), FALSE);
    }
    if (text != NULL)
        g_string_free(text, TRUE);
}

void progress_bytes_free(ProgressBytes *progress)
{
    if (progress == NULL)
        return;
    if (progress->style == PROGRESS_BAR && progress->drawn) {
        fputc('\n', progress->out);
        fflush(progress->out);
    }
    g_free(progress->label);
    g_free(progress->last);
    g_free(progress);
}
