#include "daemon/activation.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "daemon/error.h"

/* "NAME (ADDRESS)" of a passed socket, for messages. */
static char *socket_text(int fd, const char *name)
{
    struct sockaddr_storage addr;
    socklen_t len = sizeof(addr);
    char host[INET6_ADDRSTRLEN] = "?";
    g_autofree char *where = NULL;

    if (getsockname(fd, (struct sockaddr *)&addr, &len) != 0)
        where = g_strdup_printf("fd %d", fd);
    else if (addr.ss_family == AF_UNIX) {
        const struct sockaddr_un *un = (const struct sockaddr_un *)&addr;
        gsize path_len = len > offsetof(struct sockaddr_un, sun_path)
                             ? len - offsetof(struct sockaddr_un, sun_path)
                             : 0;
        if (path_len == 0)
            where = g_strdup("unnamed");
        else if (un->sun_path[0] == '\0') /* abstract */
            where = g_strdup_printf("@%.*s", (int)path_len - 1, un->sun_path + 1);
        else
            where = g_strndup(un->sun_path, path_len);
    } else if (addr.ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)&addr;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
        where = g_strdup_printf("%s:%u", host, ntohs(in->sin_port));
    } else if (addr.ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&addr;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
        where = g_strdup_printf("[%s]:%u", host, ntohs(in6->sin6_port));
    } else {
        where = g_strdup_printf("fd %d, address family %d", fd, addr.ss_family);
    }
    return g_strdup_printf("%s (%s)", name != NULL && *name != '\0' ? name : "unnamed", where);
}

/* What a refused descriptor is, for the error. */
static const char *refused_kind(int fd)
{
    if (sd_is_fifo(fd, NULL) > 0)
        return "a FIFO";
    if (sd_is_socket(fd, AF_UNSPEC, 0, -1) <= 0)
        return "not a socket";
    if (sd_is_socket(fd, AF_UNSPEC, SOCK_DGRAM, -1) > 0)
        return "a datagram socket";
    if (sd_is_socket(fd, AF_UNSPEC, SOCK_SEQPACKET, -1) > 0)
        return "a sequential packet socket";
    if (sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 0) > 0)
        return "a stream socket that does not listen (Accept=yes is not supported)";
    return "a socket of a family turtled does not serve";
}

gboolean activation_take(Activation *activation, GError **error)
{
    g_auto(GStrv) names = NULL;

    activation->unix_fd = -1;
    activation->unix_text = NULL;
    activation->tcp_fds = g_array_new(FALSE, FALSE, sizeof(int));
    activation->tcp_texts = g_ptr_array_new_with_free_func(g_free);

    int n = sd_listen_fds_with_names(1, &names);
    if (n < 0) {
        g_set_error(error, TD_ERROR, TD_ERROR_BAD_REQUEST,
                    "cannot take the sockets the service manager passed: %s", g_strerror(-n));
        return FALSE;
    }
    /* All of them are ours from here, refused or not: held until handed on
     * or closed by activation_clear. */
    for (int i = 0; i < n; i++) {
        int fd = SD_LISTEN_FDS_START + i;
        const char *name = names != NULL ? names[i] : NULL;
        g_autofree char *text = socket_text(fd, name);

        if (sd_is_socket(fd, AF_UNIX, SOCK_STREAM, 1) > 0 && activation->unix_fd < 0) {
            activation->unix_fd = fd;
            activation->unix_text = g_steal_pointer(&text);
        } else if (sd_is_socket(fd, AF_UNIX, SOCK_STREAM, 1) > 0) {
            g_set_error(error, TD_ERROR, TD_ERROR_BAD_REQUEST,
                        "the service manager passed a second UNIX socket, %s, besides %s: "
                        "turtled serves one API socket",
                        text, activation->unix_text);
            for (int j = i + 1; j < n; j++)
                close(SD_LISTEN_FDS_START + j);
            close(fd);
            return FALSE;
        } else if (sd_is_socket_inet(fd, AF_UNSPEC, SOCK_STREAM, 1, 0) > 0) {
            g_array_append_val(activation->tcp_fds, fd);
            g_ptr_array_add(activation->tcp_texts, g_steal_pointer(&text));
        } else {
            g_set_error(error, TD_ERROR, TD_ERROR_BAD_REQUEST,
                        "the service manager passed descriptor %d, %s, which is %s: turtled "
                        "takes one listening UNIX stream socket (the API) and listening TCP "
                        "sockets",
                        fd, text, refused_kind(fd));
            for (int j = i; j < n; j++)
                close(SD_LISTEN_FDS_START + j);
            return FALSE;
        }
    }
    return TRUE;
}

void activation_clear(Activation *activation)
{
    if (activation->unix_fd >= 0)
        close(activation->unix_fd);
    activation->unix_fd = -1;
    g_clear_pointer(&activation->unix_text, g_free);
    if (activation->tcp_fds != NULL) {
        for (guint i = 0; i < activation->tcp_fds->len; i++) {
            int fd = g_array_index(activation->tcp_fds, int, i);
            if (fd >= 0)
                close(fd);
        }
        g_clear_pointer(&activation->tcp_fds, g_array_unref);
    }
    g_clear_pointer(&activation->tcp_texts, g_ptr_array_unref);
}
