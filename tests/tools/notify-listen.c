/* notify-listen: stands in for systemd's end of NOTIFY_SOCKET in tests.
 *
 *   notify-listen PATH [SECONDS]
 *
 * Binds a datagram socket at PATH (removed at exit) and prints every
 * sd_notify message it gets, one "KEY=VALUE" per line followed by a line
 * "." that ends the message, flushed at once so a test can read it as it
 * comes.  Exits 0 after SECONDS (default 60) or on SIGTERM/SIGINT. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: notify-listen PATH [SECONDS]\n");
        return 2;
    }
    const char *path = argv[1];
    long long seconds = argc == 3 ? atoll(argv[2]) : 60;
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(addr.sun_path)) {
        fprintf(stderr, "notify-listen: path too long: %s\n", path);
        return 2;
    }
    strcpy(addr.sun_path, path);

    /* No SA_RESTART: a signal must wake poll() up. */
    struct sigaction action = {.sa_handler = on_signal};
    sigaction(SIGTERM, &action, NULL);
    sigaction(SIGINT, &action, NULL);

    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
        fprintf(stderr, "notify-listen: cannot bind %s: %s\n", path, strerror(errno));
        return 1;
    }
    long long deadline = now_ms() + seconds * 1000;
    char buf[4096];
    while (!stop_requested) {
        long long left = deadline - now_ms();
        if (left <= 0)
            break;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int ready = poll(&pfd, 1, left > 1000 ? 1000 : (int)left);
        if (ready < 0 && errno != EINTR) {
            fprintf(stderr, "notify-listen: poll: %s\n", strerror(errno));
            break;
        }
        if (ready <= 0)
            continue;
        ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
        if (n < 0)
            continue;
        buf[n] = '\0';
        /* One KEY=VALUE per line already; make sure the message ends with one. */
        fputs(buf, stdout);
        if (n == 0 || buf[n - 1] != '\n')
            fputc('\n', stdout);
        fputs(".\n", stdout);
        fflush(stdout);
    }
    close(fd);
    unlink(path);
    return 0;
}
