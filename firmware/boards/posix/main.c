/* firmware-native: the portable firmware core and one engine as a host process,
 * serving the esptiny protocol (or, built with -DESPT_PROTOCOL_MLPERF_TINY=1, the MLPerf
 * Tiny one) on a pseudo-terminal, a descriptor or a device. */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "board_posix.h"
#include "firmware_main.h"

static const char usage[] =
    "usage: firmware-native --pty | --fd N | --stdio | DEVICE\n"
#if defined(ESPT_PROTOCOL_MLPERF_TINY) && ESPT_PROTOCOL_MLPERF_TINY
    "Serve the MLPerf Tiny benchmark's serial protocol (docs/mlperf-tiny.md) with the firmware core.\n"
#else
    "Serve the esptiny serial protocol (docs/protocol.md) with the firmware core.\n"
#endif
    "  --pty     create a pseudo-terminal, print 'PTY <slave path>' on stdout, wait for\n"
    "            the host to open it, serve until the host closes it\n"
    "  --fd N    serve on descriptor N (a socket or a tty) until end of file\n"
    "  --stdio   read requests on stdin, write replies on stdout\n"
    "  DEVICE    open a tty or other device read-write (raw mode if a tty)\n"
    "Exit status: 0 when the host closed the link, 1 on a link or start-up failure.\n";

static int parse_fd(const char *s)
{
    char *end;
    long v;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || *s == '\0' || *end != '\0' || v < 0 || v > 65535)
        return -1;
    return (int)v;
}

int main(int argc, char **argv)
{
    int fd;
    int rc;

    if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        fputs(usage, stdout);
        return 0;
    }
    /* A peer that went away must show up as a write error, not kill us. */
    signal(SIGPIPE, SIG_IGN);

    if (argc == 2 && !strcmp(argv[1], "--pty")) {
        char path[256];
        fd = espt_posix_open_pty(path, sizeof path);
        if (fd < 0) {
            fprintf(stderr, "firmware-native: cannot create a pseudo-terminal: %s\n", strerror(errno));
            return 1;
        }
        printf("PTY %s\n", path);
        fflush(stdout);
        espt_posix_board_use(fd, fd, 1);
    } else if (argc == 3 && !strcmp(argv[1], "--fd")) {
        fd = parse_fd(argv[2]);
        if (fd < 0 || fcntl(fd, F_GETFD) < 0) {
            fprintf(stderr, "firmware-native: --fd needs an open descriptor, got '%s'\n", argv[2]);
            return 1;
        }
        espt_posix_board_use(fd, fd, 0);
    } else if (argc == 2 && !strcmp(argv[1], "--stdio")) {
        espt_posix_board_use(0, 1, 0);
    } else if (argc == 2 && argv[1][0] != '-') {
        fd = open(argv[1], O_RDWR | O_NOCTTY);
        if (fd < 0) {
            fprintf(stderr, "firmware-native: cannot open %s: %s\n", argv[1], strerror(errno));
            return 1;
        }
        if (isatty(fd) && espt_posix_make_raw(fd) != 0) {
            fprintf(stderr, "firmware-native: cannot set raw mode on %s: %s\n", argv[1], strerror(errno));
            return 1;
        }
        espt_posix_board_use(fd, fd, 0);
    } else {
        fputs(usage, stderr);
        return 1;
    }

    rc = espt_firmware_main();
    if (espt_posix_board_link_closed())
        return 0;
    fprintf(stderr, "firmware-native: link failed (%d)\n", rc);
    return 1;
}
