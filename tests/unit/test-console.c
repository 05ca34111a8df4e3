/* daemon/console: tails of a console log, and the follow stream through a
 * real server (127.0.0.1:0) and libcurl while the test appends, truncates
 * and replaces the file. */
#include "daemon/console.h"
#include "daemon/error.h"
#include "daemon/http.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define WAIT_USEC (5 * G_USEC_PER_SEC)
#define ONE_MIB   (1024 * 1024)

/* ---- tails ---------------------------------------------------------------- */

typedef struct {
    char *dir;
    char *path;
} Files;

static void files_set_up(Files *files)
{
    g_autoptr(GError) error = NULL;
    files->dir = g_dir_make_tmp("test-console-XXXXXX", &error);
    g_assert_no_error(error);
    files->path = g_build_filename(files->dir, "console.log", NULL);
}

static void files_tear_down(Files *files)
{
    unlink(files->path);
    rmdir(files->dir);
    g_free(files->path);
    g_free(files->dir);
}

static void write_file(const char *path, const char *data, gssize len)
{
    g_autoptr(GError) error = NULL;
    g_assert_true(g_file_set_contents(path, data, len, &error));
    g_assert_no_error(error);
}

static void append_file(const char *path, const char *data, gsize len)
{
    FILE *file = fopen(path, "ab");
    g_assert_nonnull(file);
    g_assert_cmpuint(fwrite(data, 1, len, file), ==, len);
    g_assert_cmpint(fclose(file), ==, 0);
}

static void assert_tail(const char *path, guint lines, const char *expected)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *text = console_tail(path, lines, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(text, ==, expected);
}

static void test_tail_lines(void)
{
    Files files;
    files_set_up(&files);

    /* The last line has no newline (the L1 is still printing it). */
    write_file(files.path, "one\ntwo\nthree\nfour", -1);
    assert_tail(files.path, 1, "four");
    assert_tail(files.path, 2, "three\nfour");
    assert_tail(files.path, 4, "one\ntwo\nthree\nfour");
    assert_tail(files.path, 10, "one\ntwo\nthree\nfour");
    assert_tail(files.path, 0, "one\ntwo\nthree\nfour");

    write_file(files.path, "one\ntwo\n\nthree\n", -1);
    assert_tail(files.path, 1, "three\n");
    assert_tail(files.path, 2, "\nthree\n");
    assert_tail(files.path, 3, "two\n\nthree\n");
    assert_tail(files.path, 0, "one\ntwo\n\nthree\n");

    write_file(files.path, "", 0);
    assert_tail(files.path, 3, "");
    files_tear_down(&files);
}

static void test_tail_capped(void)
{
    Files files;
    files_set_up(&files);
    g_autoptr(GString) big = g_string_new(NULL);
    for (guint i = 0; big->len <= ONE_MIB + 5000; i++)
        g_string_append_printf(big, "line %08u\n", i);
    write_file(files.path, big->str, (gssize)big->len);

    g_autoptr(GError) error = NULL;
    g_autofree char *all = console_tail(files.path, 0, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(strlen(all), ==, CONSOLE_TAIL_MAX_BYTES);
    g_assert_cmpstr(all, ==, big->str + big->len - CONSOLE_TAIL_MAX_BYTES);

    /* More lines than fit: still only the last MiB. */
    g_autofree char *many = console_tail(files.path, 1000000, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(strlen(many), ==, CONSOLE_TAIL_MAX_BYTES);

    g_autofree char *three = console_tail(files.path, 3, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(strlen(three), ==, 3 * strlen("line 00000000\n"));
    g_assert_true(g_str_has_suffix(big->str, three));
    files_tear_down(&files);
}

static void test_tail_missing_and_bad(void)
{
    Files files;
    files_set_up(&files);
    assert_tail(files.path, 0, "");
    assert_tail(files.path, 5, "");

    /* Something that is no log is an error, not an empty console. */
    g_autoptr(GError) error = NULL;
    g_autofree char *text = console_tail(files.dir, 0, &error);
    g_assert_null(text);
    g_assert_error(error, TD_ERROR, TD_ERROR_INTERNAL);
    files_tear_down(&files);
}

static void test_tail_utf8(void)
{
    Files files;
    files_set_up(&files);
    /* Valid multibyte text stays; line noise (a NUL, stray bytes) becomes U+FFFD. */
    static const char noisy[] = "caf\xC3\xA9\n\x00\xFF ok\n\xE2\x82";
    write_file(files.path, noisy, sizeof(noisy) - 1);
    assert_tail(files.path, 0,
                "caf\xC3\xA9\n\xEF\xBF\xBD\xEF\xBF\xBD ok\n\xEF\xBF\xBD\xEF\xBF\xBD");
    assert_tail(files.path, 2, "\xEF\xBF\xBD\xEF\xBF\xBD ok\n\xEF\xBF\xBD\xEF\xBF\xBD");
    files_tear_down(&files);
}

/* ---- follow through a server -------------------------------------------- */

typedef struct {
    GMutex lock;
    char *path;
    gboolean allowed;
    int allowed_calls;
    int frees;
} App;

typedef struct {
    App *app;
} Watch;

static int app_get(App *app, const int *field)
{
    g_mutex_lock(&app->lock);
    int value = *field;
    g_mutex_unlock(&app->lock);
    return value;
}

static gboolean app_wait(App *app, const int *field, int value)
{
    gint64 deadline = g_get_monotonic_time() + WAIT_USEC;
    while (app_get(app, field) < value) {
        if (g_get_monotonic_time() > deadline)
            return FALSE;
        g_usleep(10 * 1000);
    }
    return TRUE;
}

static void app_set_allowed(App *app, gboolean allowed)
{
    g_mutex_lock(&app->lock);
    app->allowed = allowed;
    g_mutex_unlock(&app->lock);
}

static gboolean watch_allowed(gpointer data)
{
    Watch *watch = data;
    g_mutex_lock(&watch->app->lock);
    watch->app->allowed_calls++;
    gboolean allowed = watch->app->allowed;
    g_mutex_unlock(&watch->app->lock);
    return allowed;
}

static void watch_free(gpointer data)
{
    Watch *watch = data;
    g_mutex_lock(&watch->app->lock);
    watch->app->frees++;
    g_mutex_unlock(&watch->app->lock);
    g_free(watch);
}

static HttpReply *handle_console(gpointer data, const HttpRequest *request)
{
    App *app = data;
    const char *tail = http_request_query(request, "tail");
    Watch *watch = g_new0(Watch, 1);
    watch->app = app;
    return console_follow(app->path, tail ? (guint)atoi(tail) : 0, watch_allowed, watch,
                          watch_free);
}

static const char *const console_query[] = {"tail", "follow", NULL};

static const HttpRoute routes[] = {
    {"GET", "/console", HTTP_ACCESS_ANYONE, FALSE, handle_console, NULL, NULL, console_query},
};

typedef struct {
    App app;
    Files files;
    HttpServer *server;
    char *url;
    /* the client */
    GThread *thread;
    GMutex lock;
    GString *body;
    CURLcode code;
    long status;
    char *content_type;
    long timeout_ms;
} Fixture;

static void fixture_set_up(Fixture *fixture, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    (void)data;
    files_set_up(&fixture->files);
    g_mutex_init(&fixture->app.lock);
    g_mutex_init(&fixture->lock);
    fixture->app.path = fixture->files.path;
    fixture->app.allowed = TRUE;
    fixture->body = g_string_new(NULL);
    fixture->server = http_server_new(routes, G_N_ELEMENTS(routes), NULL, &fixture->app);
    g_assert_true(http_server_listen_tcp(fixture->server, "127.0.0.1:0", NULL, NULL, &error));
    g_assert_no_error(error);
    fixture->url =
        g_strdup_printf("http://127.0.0.1:%u/console", http_server_tcp_port(fixture->server));
}

static void fixture_tear_down(Fixture *fixture, gconstpointer data)
{
    (void)data;
    app_set_allowed(&fixture->app, FALSE);
    if (fixture->thread != NULL)
        g_thread_join(fixture->thread);
    http_server_free(fixture->server);
    g_string_free(fixture->body, TRUE);
    g_free(fixture->content_type);
    g_free(fixture->url);
    g_mutex_clear(&fixture->lock);
    g_mutex_clear(&fixture->app.lock);
    files_tear_down(&fixture->files);
}

static size_t on_body(char *data, size_t size, size_t n, void *user)
{
    Fixture *fixture = user;
    g_mutex_lock(&fixture->lock);
    g_string_append_len(fixture->body, data, (gssize)(size * n));
    g_mutex_unlock(&fixture->lock);
    return size * n;
}

static gpointer client_main(gpointer data)
{
    Fixture *fixture = data;
    CURL *curl = curl_easy_init();
    curl_easy_setopt(curl, CURLOPT_URL, fixture->url);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, fixture->timeout_ms ? fixture->timeout_ms : 20000L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, fixture);
    CURLcode code = curl_easy_perform(curl);
    long status = 0;
    char *content_type = NULL;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(curl, CURLINFO_CONTENT_TYPE, &content_type);
    g_mutex_lock(&fixture->lock);
    fixture->code = code;
    fixture->status = status;
    fixture->content_type = g_strdup(content_type);
    g_mutex_unlock(&fixture->lock);
    curl_easy_cleanup(curl);
    return NULL;
}

static void client_start(Fixture *fixture, const char *query)
{
    if (query != NULL) {
        char *url = g_strconcat(fixture->url, query, NULL);
        g_free(fixture->url);
        fixture->url = url;
    }
    fixture->thread = g_thread_new("console-client", client_main, fixture);
}

/* Waits for the client to end; its body. */
static char *client_join(Fixture *fixture)
{
    g_thread_join(g_steal_pointer(&fixture->thread));
    return g_strdup(fixture->body->str);
}

/* Waits until what arrived so far ends with @suffix (everything when @exact). */
static void wait_body(Fixture *fixture, const char *suffix, gboolean exact)
{
    gint64 deadline = g_get_monotonic_time() + WAIT_USEC;
    for (;;) {
        g_mutex_lock(&fixture->lock);
        gboolean done = exact ? strcmp(fixture->body->str, suffix) == 0
                              : g_str_has_suffix(fixture->body->str, suffix);
        g_autofree char *seen = g_strdup(fixture->body->str);
        g_mutex_unlock(&fixture->lock);
        if (done)
            return;
        if (g_get_monotonic_time() > deadline) {
            g_test_message("waited for '%s', have '%s'", suffix, seen);
            g_assert_not_reached();
        }
        g_usleep(20 * 1000);
    }
}

static void test_follow_appended(Fixture *fixture, gconstpointer data)
{
    (void)data;
    write_file(fixture->files.path, "old 1\nold 2\nboot\n", -1);
    client_start(fixture, "?tail=2");
    wait_body(fixture, "old 2\nboot\n", TRUE);
    append_file(fixture->files.path, "more", 4);
    wait_body(fixture, "old 2\nboot\nmore", TRUE);
    append_file(fixture->files.path, " and more\n", 10);
    wait_body(fixture, "old 2\nboot\nmore and more\n", TRUE);

    /* Revoked: the stream ends within about a second, cleanly. */
    gint64 revoked = g_get_monotonic_time();
    app_set_allowed(&fixture->app, FALSE);
    g_autofree char *body = client_join(fixture);
    g_assert_cmpint(g_get_monotonic_time() - revoked, <, 2 * G_USEC_PER_SEC);
    g_assert_cmpint(fixture->code, ==, CURLE_OK);
    g_assert_cmpint(fixture->status, ==, 200);
    g_assert_cmpstr(fixture->content_type, ==, "text/plain; charset=utf-8");
    g_assert_cmpstr(body, ==, "old 2\nboot\nmore and more\n");
    g_assert_true(app_wait(&fixture->app, &fixture->app.frees, 1));
    g_usleep(100 * 1000);
    g_assert_cmpint(app_get(&fixture->app, &fixture->app.frees), ==, 1);
}

static void test_follow_asks_once_a_second(Fixture *fixture, gconstpointer data)
{
    (void)data;
    write_file(fixture->files.path, "quiet\n", -1);
    client_start(fixture, NULL);
    wait_body(fixture, "quiet\n", TRUE);
    g_usleep(2500 * 1000);
    int calls = app_get(&fixture->app, &fixture->app.allowed_calls);
    g_assert_cmpint(calls, >=, 1);
    g_assert_cmpint(calls, <=, 4);
}

static void test_follow_waits_for_file(Fixture *fixture, gconstpointer data)
{
    (void)data;
    client_start(fixture, NULL);
    g_usleep(300 * 1000);
    write_file(fixture->files.path, "TURTLES-L1 READY\n", -1);
    wait_body(fixture, "TURTLES-L1 READY\n", TRUE);
}

static void test_follow_truncated_and_replaced(Fixture *fixture, gconstpointer data)
{
    (void)data;
    write_file(fixture->files.path, "a long line from the first boot\n", -1);
    client_start(fixture, NULL);
    wait_body(fixture, "a long line from the first boot\n", TRUE);

    /* A restart truncates the same file, then writes less than before. */
    int fd = open(fixture->files.path, O_WRONLY | O_TRUNC);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(write(fd, "second\n", 7), ==, 7);
    close(fd);
    wait_body(fixture, "first boot\nsecond\n", FALSE);

    /* Replaced by a new file (new inode), longer than the old one. */
    g_assert_cmpint(unlink(fixture->files.path), ==, 0);
    g_usleep(300 * 1000);
    write_file(fixture->files.path, "third boot, with a line longer than before\n", -1);
    wait_body(fixture, "second\nthird boot, with a line longer than before\n", FALSE);
    append_file(fixture->files.path, "x\n", 2);
    wait_body(fixture,
              "a long line from the first boot\nsecond\n"
              "third boot, with a line longer than before\nx\n",
              TRUE);
}

static void test_follow_split_utf8(Fixture *fixture, gconstpointer data)
{
    (void)data;
    write_file(fixture->files.path, "caf\xC3", -1);
    client_start(fixture, NULL);
    g_usleep(400 * 1000);
    /* Half a character is held back, not replaced. */
    g_mutex_lock(&fixture->lock);
    g_assert_cmpstr(fixture->body->str, ==, "caf");
    g_mutex_unlock(&fixture->lock);
    append_file(fixture->files.path, "\xA9\n\xFF\n", 4);
    wait_body(fixture, "caf\xC3\xA9\n\xEF\xBF\xBD\n", TRUE);
}

static void test_follow_client_leaves(Fixture *fixture, gconstpointer data)
{
    (void)data;
    write_file(fixture->files.path, "hello\n", -1);
    fixture->timeout_ms = 700;
    client_start(fixture, NULL);
    g_autofree char *body = client_join(fixture);
    g_assert_cmpint(fixture->code, ==, CURLE_OPERATION_TIMEDOUT);
    g_assert_cmpstr(body, ==, "hello\n");
    g_assert_true(app_wait(&fixture->app, &fixture->app.frees, 1));
    g_usleep(200 * 1000);
    g_assert_cmpint(app_get(&fixture->app, &fixture->app.frees), ==, 1);
}

static void test_follow_server_stops(Fixture *fixture, gconstpointer data)
{
    (void)data;
    write_file(fixture->files.path, "hello\n", -1);
    client_start(fixture, NULL);
    wait_body(fixture, "hello\n", TRUE);
    gint64 started = g_get_monotonic_time();
    g_clear_pointer(&fixture->server, http_server_free);
    g_assert_cmpint(g_get_monotonic_time() - started, <, 3 * G_USEC_PER_SEC);
    g_autofree char *body = client_join(fixture);
    g_assert_cmpint(fixture->code, ==, CURLE_OK);
    g_assert_cmpstr(body, ==, "hello\n");
    g_assert_cmpint(app_get(&fixture->app, &fixture->app.frees), ==, 1);
}

static void test_follow_unsent_frees_once(void)
{
    App app = {.allowed = TRUE};
    g_mutex_init(&app.lock);
    Watch *watch = g_new0(Watch, 1);
    watch->app = &app;
    HttpReply *reply =
        console_follow("/nonexistent/console.log", 0, watch_allowed, watch, watch_free);
    http_reply_free(reply);
    g_assert_cmpint(app.frees, ==, 1);
    g_assert_cmpint(app.allowed_calls, ==, 0);
    g_mutex_clear(&app.lock);
}

#define ADD(name, func)                                                                            \
    g_test_add("/console/" name, Fixture, NULL, fixture_set_up, func, fixture_tear_down)

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    curl_global_init(CURL_GLOBAL_ALL);
    signal(SIGPIPE, SIG_IGN);

    g_test_add_func("/console/tail/lines", test_tail_lines);
    g_test_add_func("/console/tail/capped", test_tail_capped);
    g_test_add_func("/console/tail/missing-and-bad", test_tail_missing_and_bad);
    g_test_add_func("/console/tail/utf8", test_tail_utf8);
    g_test_add_func("/console/follow/unsent-frees-once", test_follow_unsent_frees_once);
    ADD("follow/appended", test_follow_appended);
    ADD("follow/asks-once-a-second", test_follow_asks_once_a_second);
    ADD("follow/waits-for-file", test_follow_waits_for_file);
    ADD("follow/truncated-and-replaced", test_follow_truncated_and_replaced);
    ADD("follow/split-utf8", test_follow_split_utf8);
    ADD("follow/client-leaves", test_follow_client_leaves);
    ADD("follow/server-stops", test_follow_server_stops);

    int status = g_test_run();
    curl_global_cleanup();
    return status;
}
