/* Socket helpers the load tools share (http-load, stack-fill, sse-fanout):
 * header-only, as each tool is one file built on its own. */
#pragma once

#include <errno.h>
#include <glib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* A connected stream socket to @path, or -1 with the reason in *@failure
 * (free it). */
static inline int sock_connect_unix(const char *path, char **failure)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(addr.sun_path)) {
        *failure = g_strdup_printf("socket path too long: %s", path);
        return -1;
    }
    strcpy(addr.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
        *failure = g_strdup_printf("cannot connect to %s: %s", path, g_strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

/* All of @data, or FALSE (the peer went, or an error). */
static inline gboolean sock_send_all(int fd, const char *data, gsize len)
{
    while (len > 0) {
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return FALSE;
        data += n;
        len -= (gsize)n;
    }
    return TRUE;
}

/* Appends what the socket has now (one read) to @buf; FALSE on EOF or error. */
static inline gboolean sock_recv_some(int fd, GByteArray *buf)
{
    guint8 chunk[16384];
    for (;;) {
        ssize_t n = recv(fd, chunk, sizeof(chunk), 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return FALSE;
        g_byte_array_append(buf, chunk, (guint)n);
        return TRUE;
    }
}
