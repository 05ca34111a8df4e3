/* The HTTP path of turtled, real handlers included: a server built like
 * daemon/main.c builds it (test backend on libvirt's test:///default, an
 * SQLite store in a temporary directory, the real route table) listens on a
 * UNIX socket; each input is written there as a raw request (as root, so
 * the operator unless it presents a token; tenant "acme" has the token
 * FUZZ_TOKEN, a ready kernel image "vmlinuz" and a stopped stack "web"),
 * the write side is shut and the answer read until the server closes.  The
 * answer must be one well-formed HTTP response, and an error must carry
 * our JSON error body.
 *
 * libmicrohttpd 0.9.75 answers some malformed requests itself, with HTML
 * bodies (and, for a bad Content-Length, its status line and headers twice);
 * turtled's transport screens a connection's first request before
 * libmicrohttpd sees it (daemon/http_framing.c), so every input here must get
 * our JSON error, but for a malformed chunked body (libmicrohttpd parses it
 * long after the head).  TURTLES_FUZZ_HTTP_STRICT=0 lets all of
 * libmicrohttpd's own answers through (recognised, not failed);
 * TURTLES_FUZZ_HTTP_VERBOSE=1 prints every answer.
 *
 * Bounds: every answer is waited for at most ANSWER_TIMEOUT_MS; a stream
 * (chunked answer) is read for STREAM_READ_MS once its headers are in; the
 * whole application, store included, is rebuilt every REBUILD_EVERY inputs
 * so that what the inputs create does not pile up. */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <libvirt/virterror.h>

#include "api/error_body.h"
#include "api/image.h"
#include "api/json.h"
#include "api/tenant.h"
#include "daemon/app.h"
#include "daemon/clock.h"
#include "daemon/images.h"
#include "daemon/stacks.h"
#include "daemon/tokens.h"
#include "hvcore/domain.h"
#include "hvcore/libvirt-private.h"
#include "hvcore/storage.h"
#include "tests/fuzz/fuzz-util.h"

#define FUZZ_TOKEN        "tt_0000000000000000000000000000000000000000000000000000000000000001"
#define ANSWER_TIMEOUT_MS 5000
#define STREAM_READ_MS    300
#define REBUILD_EVERY     2000
#define MAX_ANSWER        (4 * 1024 * 1024)

static char *state_dir;
static App *app;
static GMainLoop *loop;
static GThread *loop_thread;
static guint inputs;
static gboolean strict;
static gboolean verbose;

static gpointer run_loop(gpointer data)
{
    g_main_loop_run(data);
    return NULL;
}

static gboolean lookup_token(gpointer data, const char *token, HttpCaller *caller)
{
    App *a = data;
    return token_authenticate(a->store, token, caller);
}

static void on_lifecycle(const HvLifecycleEvent *event, gpointer data)
{
    stacks_on_lifecycle(data, event);
}

static GLogWriterOutput quiet_writer(GLogLevelFlags level, const GLogField *fields, gsize n_fields,
                                     gpointer data)
{
    if (level & (G_LOG_LEVEL_MESSAGE | G_LOG_LEVEL_INFO | G_LOG_LEVEL_DEBUG))
        return G_LOG_WRITER_HANDLED;
    return g_log_writer_standard_streams(level, fields, n_fields, data);
}

static void must(gboolean ok, const char *what, GError *error)
{
    if (!ok)
        FUZZ_FAIL("setup: %s: %s", what, error ? error->message : "failed");
}

static HvHostReport *test_host(void)
{
    HvHostReport *host = g_new0(HvHostReport, 1);
    host->cpu_vendor = g_strdup("AuthenticAMD");
    host->kvm_api_version = 12;
    host->nested = host->ept_npt = host->shadow_vmcs = host->apicv_avic = -1;
    host->backend = HV_BACKEND_TEST;
    host->reason = g_strdup("fuzzing");
    return host;
}

static void add_tenant(App *a)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(ApiTenant) tenant = api_tenant_new();
    g_autofree char *token_id = g_uuid_string_random();
    guint8 hash[STORE_TOKEN_HASH_LEN];

    tenant->id = g_uuid_string_random();
    tenant->name = g_strdup("acme");
    tenant->created_at = clock_now_rfc3339();
    tenant->updated_at = g_strdup(tenant->created_at);
    must(store_tenant_insert(a->store, tenant, &error), "tenant", error);
    token_hash(FUZZ_TOKEN, hash);
    must(store_token_insert(a->store, token_id, "acme", hash, tenant->created_at, &error), "token",
         error);
}

/* Tenant acme gets a ready kernel image "vmlinuz" and a stopped stack
 * "web", so that inputs reach the handlers of existing resources, not only
 * their 404s.  Straight into the store: libvirt's test driver cannot take
 * an upload, and the stack needs no domain to be listed, read or refused. */
static void add_volume(HvConn *conn, const char *name)
{
    virStoragePoolPtr pool = virStoragePoolLookupByName(hv_conn_get_libvirt(conn), HV_POOL_IMAGES);
    must(pool != NULL, "images pool", NULL);
    g_autofree char *xml = g_strdup_printf("<volume><name>%s</name><capacity>8192</capacity>"
                                           "<target><format type='raw'/></target></volume>",
                                           name);
    virStorageVolPtr volume = virStorageVolCreateXML(pool, xml, 0);
    must(volume != NULL, virGetLastErrorMessage(), NULL);
    virStorageVolFree(volume);
    virStoragePoolFree(pool);
}

/* libvirt's test driver keeps its domains for the whole process: what the
 * inputs created goes with the application that made it. */
static void remove_domains(HvConn *conn)
{
    virDomainPtr *domains = NULL;
    int n = virConnectListAllDomains(hv_conn_get_libvirt(conn), &domains, 0);
    for (int i = 0; i < n; i++) {
        if (virDomainIsActive(domains[i]) == 1)
            virDomainDestroy(domains[i]);
        virDomainUndefine(domains[i]);
        virDomainFree(domains[i]);
    }
    free(domains);
}

static void add_stack(App *a, HvConn *conn)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(ApiImage) image = api_image_new();
    image->id = g_uuid_string_random();
    image->name = g_strdup("vmlinuz");
    image->tenant = g_strdup("acme");
    image->state = API_IMAGE_STATE_READY;
    image->size = 8192;
    image->sha256 = g_strnfill(API_IMAGE_SHA256_LEN, '0');
    image->created_at = clock_now_rfc3339();
    image->updated_at = g_strdup(image->created_at);
    image->volume = g_strdup(image->id);
    must(store_image_insert(a->store, image, &error), "image", error);
    add_volume(conn, image->volume);

    ApiStackSpec *spec = api_stack_spec_new();
    spec->name = g_strdup("web");
    spec->vcpus = 1;
    spec->memory_mib = 256;
    spec->boot_kernel = g_strdup("vmlinuz");
    spec->boot_cmdline = g_strdup("console=ttyS0");
    spec->start = FALSE;
    g_autoptr(ApiStack) stack = api_stack_new(spec);
    stack->id = g_uuid_string_random();
    stack->tenant = g_strdup("acme");
    stack->state = API_STACK_STATE_STOPPED;
    stack->backend = g_strdup("test");
    stack->created_at = g_strdup(image->created_at);
    stack->updated_at = g_strdup(image->created_at);
    stack->domain_name = hv_domain_name_for(stack->id);
    static const char *const images[] = {"vmlinuz", NULL};
    must(store_stack_insert(a->store, stack, images, &error), "stack", error);
}

/* daemon/main.c's serve() up to the main loop, on a fresh store. */
static App *app_start(void)
{
    App *a = g_new0(App, 1);
    g_autoptr(GError) error = NULL;
    gsize n_routes = 0;

    a->started_at = g_get_monotonic_time();
    a->config = config_new_defaults();
    g_free(a->config->state_dir);
    a->config->state_dir = g_strdup(state_dir);
    g_free(a->config->socket);
    a->config->socket = g_build_filename(state_dir, "turtled.sock", NULL);
    g_free(a->config->backend);
    a->config->backend = g_strdup("test");
    a->config->workers = 1;
    a->host = test_host();
    a->backend = HV_BACKEND_TEST;

    a->store = store_open(state_dir, &error);
    must(a->store != NULL, "store", error);
    a->events = event_bus_new(a->store, (guint)a->config->event_ring);
    a->operations = operations_new(a->store, a->events, 1);
    add_tenant(a);

    a->console_dir = g_build_filename(state_dir, "consoles", NULL);
    must(g_mkdir_with_parents(a->console_dir, 0750) == 0, "consoles", NULL);
    a->stop_timeout = 1;
    a->stacks = stacks_new(a);
    a->virt = hv_virt_new(config_libvirt_uri(a->config), on_lifecycle, NULL, a);
    must(hv_virt_connect(a->virt, &error), "libvirt", error);
    g_autoptr(HvConn) conn = hv_virt_get_connection(a->virt, &error);
    must(conn != NULL && hv_storage_ensure_pools(conn, state_dir, &error) &&
             images_reconcile(a, conn, &error) && stacks_reconcile(a, conn, &error),
         "reconcile", error);
    add_stack(a, conn);

    const HttpRoute *routes = routes_table(&n_routes);
    a->routes = g_memdup2(routes, n_routes * sizeof(HttpRoute));
    a->server = http_server_new(a->routes, n_routes, lookup_token, a);
    must(http_server_listen_unix(a->server, a->config->socket, &error), "listen", error);
    return a;
}

/* daemon/main.c's app_clear, then the store's files go. */
static void app_stop(App *a)
{
    operations_release_waiters(a->operations);
    http_server_free(a->server);
    g_free(a->routes);
    operations_free(a->operations);
    g_autoptr(HvConn) conn = hv_virt_get_connection(a->virt, NULL);
    if (conn != NULL)
        remove_domains(conn);
    hv_virt_free(a->virt);
    stacks_free(a->stacks);
    g_free(a->console_dir);
    event_bus_free(a->events);
    store_free(a->store);
    hv_host_report_free(a->host);
    config_free(a->config);
    g_free(a);
    static const char *const files[] = {"turtled.db", "turtled.db-wal", "turtled.db-shm"};
    for (gsize i = 0; i < G_N_ELEMENTS(files); i++) {
        g_autofree char *path = g_build_filename(state_dir, files[i], NULL);
        unlink(path);
    }
}

/* hv_virt_* belong to the thread that runs the default context: the loop
 * thread is stopped while the application is built or torn down. */
static void loop_stop(void)
{
    g_main_loop_quit(loop);
    g_thread_join(loop_thread);
}

static void loop_start(void)
{
    loop_thread = g_thread_new("fuzz-main-loop", run_loop, loop);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    g_autoptr(GError) error = NULL;
    strict = g_strcmp0(g_getenv("TURTLES_FUZZ_HTTP_STRICT"), "0") != 0;
    verbose = g_strcmp0(g_getenv("TURTLES_FUZZ_HTTP_VERBOSE"), "1") == 0;
    /* The daemon's routine messages would drown the fuzzer's output. */
    g_log_set_writer_func(quiet_writer, NULL, NULL);
    state_dir = g_dir_make_tmp("turtles-fuzz-http-XXXXXX", &error);
    must(state_dir != NULL, "temporary directory", error);
    loop = g_main_loop_new(NULL, FALSE);
    app = app_start();
    loop_start();
    return 0;
}

/* ---- talking to the server ------------------------------------------------ */

/* Writes @request, shuts the write side, reads the answer until the server
 * closes, the deadline passes or, for a stream, STREAM_READ_MS after its
 * headers.  *@timed_out says whether the deadline cut it. */
static GByteArray *exchange(const uint8_t *request, size_t size, gboolean *timed_out)
{
    GByteArray *answer = g_byte_array_new();
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    FUZZ_CHECK(fd >= 0, "socket: %s", g_strerror(errno));
    g_strlcpy(addr.sun_path, app->config->socket, sizeof(addr.sun_path));
    FUZZ_CHECK(connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0, "connect: %s",
               g_strerror(errno));

    gint64 now = g_get_monotonic_time();
    gint64 deadline = now + ANSWER_TIMEOUT_MS * 1000;
    size_t written = 0;
    gboolean writing = TRUE;
    *timed_out = FALSE;
    if (size == 0) {
        shutdown(fd, SHUT_WR);
        writing = FALSE;
    }
    for (;;) {
        now = g_get_monotonic_time();
        if (answer->len > 0 && deadline - now > STREAM_READ_MS * 1000 &&
            g_strstr_len((const char *)answer->data, answer->len, "\r\n\r\n") != NULL &&
            g_strstr_len((const char *)answer->data, answer->len, "chunked") != NULL)
            deadline = now + STREAM_READ_MS * 1000;
        if (now >= deadline) {
            *timed_out = TRUE;
            break;
        }
        struct pollfd pfd = {.fd = fd, .events = POLLIN | (writing ? POLLOUT : 0)};
        int ready = poll(&pfd, 1, (int)MAX(1, (deadline - now) / 1000));
        if (ready < 0 && errno != EINTR)
            FUZZ_FAIL("poll: %s", g_strerror(errno));
        if (ready <= 0)
            continue;
        if (writing && (pfd.revents & (POLLOUT | POLLERR | POLLHUP))) {
            ssize_t n = send(fd, request + written, size - written, MSG_NOSIGNAL);
            if (n > 0)
                written += (size_t)n;
            /* The server may answer and close before it read everything. */
            if ((n < 0 && errno != EAGAIN && errno != EINTR) || written == size) {
                shutdown(fd, SHUT_WR);
                writing = FALSE;
            }
        }
        if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
            guint8 buf[65536];
            ssize_t n = recv(fd, buf, sizeof(buf), 0);
            if (n > 0 && answer->len < MAX_ANSWER)
                g_byte_array_append(answer, buf, (guint)n);
            else if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
                break;
        }
    }
    close(fd);
    return answer;
}

/* ---- checking the answer ---------------------------------------------------- */

typedef struct {
    int status;
    char *content_type;
    gint64 content_length; /* -1: none */
    gboolean chunked;
    const char *body;
    gsize body_len; /* what arrived after the headers */
} Answer;

static void answer_clear(Answer *answer)
{
    g_free(answer->content_type);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(Answer, answer_clear)

/* Parses the status line and headers at @text; NULL when they are not
 * well-formed, else where the body starts. */
static const char *parse_head(const char *text, gsize len, Answer *answer, const char **why)
{
    const char *end = g_strstr_len(text, (gssize)len, "\r\n\r\n");
    if (end == NULL) {
        *why = "no end of headers";
        return NULL;
    }
    g_autofree char *head = g_strndup(text, (gsize)(end - text));
    g_auto(GStrv) lines = g_strsplit(head, "\r\n", -1);
    if (!g_str_has_prefix(lines[0], "HTTP/1.1 ") && !g_str_has_prefix(lines[0], "HTTP/1.0 ")) {
        *why = "no HTTP/1.x status line";
        return NULL;
    }
    const char *code = lines[0] + 9;
    if (!g_ascii_isdigit(code[0]) || !g_ascii_isdigit(code[1]) || !g_ascii_isdigit(code[2]) ||
        code[3] != ' ' || code[0] < '1' || code[0] > '5') {
        *why = "bad status code";
        return NULL;
    }
    answer->status = atoi(code);
    answer->content_length = -1;
    for (guint i = 1; lines[i] != NULL; i++) {
        const char *colon = strchr(lines[i], ':');
        if (colon == NULL || colon == lines[i]) {
            *why = "a header line without a name";
            return NULL;
        }
        g_autofree char *name = g_ascii_strdown(lines[i], colon - lines[i]);
        g_autofree char *value = g_strstrip(g_strdup(colon + 1));
        if (g_str_equal(name, "content-type")) {
            g_free(answer->content_type);
            answer->content_type = g_steal_pointer(&value);
        } else if (g_str_equal(name, "content-length")) {
            guint64 n;
            if (answer->content_length >= 0 ||
                !g_ascii_string_to_unsigned(value, 10, 0, G_MAXINT64, &n, NULL)) {
                *why = "bad or repeated Content-Length";
                return NULL;
            }
            answer->content_length = (gint64)n;
        } else if (g_str_equal(name, "transfer-encoding")) {
            answer->chunked = g_ascii_strcasecmp(value, "chunked") == 0;
        }
    }
    if (answer->chunked && answer->content_length >= 0) {
        *why = "both chunked and Content-Length";
        return NULL;
    }
    return end + 4;
}

/* libmicrohttpd's own answer to a request it would not hand over. */
static gboolean is_library_answer(const Answer *answer)
{
    if (answer->content_type != NULL || answer->status < 400)
        return FALSE;
    const char *body = answer->body;
    /* 0.9.75 sends its status line and headers twice for a bad Content-Length. */
    if (answer->body_len > 9 && g_str_has_prefix(body, "HTTP/1.1 ")) {
        const char *end = g_strstr_len(body, (gssize)answer->body_len, "\r\n\r\n");
        if (end == NULL)
            return FALSE;
        body = end + 4;
    }
    return g_str_has_prefix(body, "<html><head><title>");
}

static gboolean mentions_transfer_encoding(const uint8_t *request, size_t size)
{
    static const char name[] = "transfer-encoding";
    for (size_t i = 0; i + sizeof(name) - 1 <= size; i++)
        if (g_ascii_strncasecmp((const char *)request + i, name, sizeof(name) - 1) == 0)
            return TRUE;
    return FALSE;
}

static void check_error_body(const Answer *answer)
{
    g_autoptr(GError) error = NULL;
    FUZZ_CHECK(
        answer->content_type != NULL && g_str_has_prefix(answer->content_type, "application/json"),
        "error %d is not JSON (Content-Type %s): %.*s", answer->status,
        answer->content_type ? answer->content_type : "none", (int)answer->body_len, answer->body);
    gsize len = answer->content_length >= 0 ? (gsize)answer->content_length : answer->body_len;
    g_autoptr(json_object) body = api_json_parse(answer->body, len, API_JSON_MAX_DEPTH, &error);
    FUZZ_CHECK(body != NULL, "error %d body is not JSON (%s): %.*s", answer->status, error->message,
               (int)len, answer->body);
    int status = 0;
    FUZZ_CHECK(api_error_body_from_json(body, &status, NULL, NULL, &error),
               "error %d body is not our error (%s): %.*s", answer->status, error->message,
               (int)len, answer->body);
    FUZZ_CHECK(status == answer->status, "error body says %d, the status line %d", status,
               answer->status);
}

static void check_answer(const uint8_t *request, size_t size, const GByteArray *bytes,
                         gboolean timed_out)
{
    const char *text = (const char *)bytes->data;
    gsize len = bytes->len;
    const char *why = NULL;

    if (len == 0) {
        /* An incomplete or unparsable request is closed without an answer;
         * a complete one that gets nothing in time must be a long poll. */
        if (timed_out)
            FUZZ_CHECK(g_strstr_len((const char *)request, (gssize)size, "wait") != NULL,
                       "no answer within %d ms", ANSWER_TIMEOUT_MS);
        return;
    }
    /* Interim answers (Expect: 100-continue) come first.  A 100 alone is
     * like no answer: libmicrohttpd drops the request when the half-close
     * comes with the start of another, incomplete, request behind it. */
    while (len >= 25 && g_str_has_prefix(text, "HTTP/1.1 100 Continue\r\n\r\n")) {
        text += 25;
        len -= 25;
    }
    if (len == 0)
        return;

    g_auto(Answer) answer = {0};
    const char *body = parse_head(text, len, &answer, &why);
    FUZZ_CHECK(body != NULL, "malformed answer (%s): %.*s", why, (int)MIN(len, 2048), text);
    answer.body = body;
    answer.body_len = len - (gsize)(body - text);
    gboolean head = size >= 5 && memcmp(request, "HEAD ", 5) == 0;

    if (is_library_answer(&answer)) {
        /* The one left (tests/fuzz/pending/README.md): a malformed chunked
         * body, which libmicrohttpd parses long after the head we screen. */
        gboolean chunk_error = answer.status == 400 && mentions_transfer_encoding(request, size);
        FUZZ_CHECK(!strict || chunk_error, "libmicrohttpd's own answer, not our JSON error: %.*s",
                   (int)MIN(len, 2048), text);
        return;
    }
    if (head || answer.status == 204 || answer.status == 304)
        return;
    if (answer.content_length >= 0 && !timed_out)
        FUZZ_CHECK(answer.body_len >= (gsize)answer.content_length,
                   "body cut short: %zu of %" G_GINT64_FORMAT " bytes", answer.body_len,
                   answer.content_length);
    if (answer.status >= 400) {
        if (!answer.chunked)
            check_error_body(&answer);
        return;
    }
    if (answer.content_type != NULL && g_str_has_prefix(answer.content_type, "application/json") &&
        answer.content_length >= 0 && answer.body_len >= (gsize)answer.content_length) {
        g_autoptr(GError) error = NULL;
        g_autoptr(json_object) value =
            api_json_parse(answer.body, (gsize)answer.content_length, API_JSON_MAX_DEPTH, &error);
        FUZZ_CHECK(value != NULL, "%d answer is not JSON (%s)", answer.status, error->message);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (++inputs % REBUILD_EVERY == 0) {
        loop_stop();
        app_stop(app);
        app = app_start();
        loop_start();
    }
    gboolean timed_out = FALSE;
    gint64 started = g_get_monotonic_time();
    g_autoptr(GByteArray) answer = exchange(data, size, &timed_out);
    if (verbose)
        fprintf(stderr, "answer%s after %" G_GINT64_FORMAT " ms:\n%.*s\n",
                timed_out ? " (timed out)" : "", (g_get_monotonic_time() - started) / 1000,
                (int)MIN(answer->len, 4096), (const char *)answer->data);
    check_answer(data, size, answer, timed_out);
    return 0;
}
