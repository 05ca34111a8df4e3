/* Socket activation: the listening sockets the service manager passed
 * (sd_listen_fds; turtled.socket), sorted by what they are, not by their
 * names (FileDescriptorName= only labels messages).  One AF_UNIX stream
 * socket becomes the API socket; AF_INET/AF_INET6 stream sockets become TCP
 * listeners; anything else is refused. */
#pragma once

#include <glib.h>

typedef struct {
    int unix_fd;          /* -1: none passed */
    char *unix_text;      /* for messages: "api (/run/turtles/turtled.sock)" */
    GArray *tcp_fds;      /* of int */
    GPtrArray *tcp_texts; /* for messages, one per tcp_fds entry */
} Activation;

/* Takes what the service manager passed to this process (none: an empty
 * @activation) and clears LISTEN_* from the environment: call before any
 * thread starts.  FALSE, with an error naming the descriptor, for anything
 * but one listening AF_UNIX stream socket and listening TCP sockets. */
gboolean activation_take(Activation *activation, GError **error);
/* Closes the descriptors still held (not handed on: set to -1 / removed). */
void activation_clear(Activation *activation);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(Activation, activation_clear)
