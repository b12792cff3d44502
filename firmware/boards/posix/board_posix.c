/* board.h for a host process: the link is a file descriptor, the clock CLOCK_MONOTONIC. */
#define _DEFAULT_SOURCE /* cfmakeraw */
#define _XOPEN_SOURCE 600 /* posix_openpt, grantpt, unlockpt, ptsname */

#include "board_posix.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "board.h"
#include "engine.h" /* ESPT_COUNTER_* */

static int in_fd = 0;
static int out_fd = 1;
static int wait_for_pty_peer = 0;
static int link_closed = 0;

void espt_posix_board_use(int in, int out, int wait_for_peer)
{
    in_fd = in;
    out_fd = out;
    wait_for_pty_peer = wait_for_peer;
    link_closed = 0;
}

int espt_posix_board_link_closed(void)
{
    return link_closed;
}

int espt_posix_make_raw(int fd)
{
    struct termios t;
    if (tcgetattr(fd, &t) != 0)
        return -1;
    cfmakeraw(&t);
    t.c_cc[VMIN] = 1;
    t.c_cc[VTIME] = 0;
    return tcsetattr(fd, TCSANOW, &t);
}

int espt_posix_open_pty(char *path, size_t cap)
{
    const char *name;
    int slave;
    int master = posix_openpt(O_RDWR | O_NOCTTY);
    if (master < 0)
        return -1;
    if (grantpt(master) != 0 || unlockpt(master) != 0 || (name = ptsname(master)) == NULL
        || strlen(name) + 1 > cap)
        goto fail;
    strcpy(path, name);
    /* Raw mode is set on the slave's side. Closing our slave descriptor afterwards marks
     * the master hung up until the host opens the slave: that is how board_init knows
     * the host is there, and how the loop knows it has gone. */
    slave = open(path, O_RDWR | O_NOCTTY);
    if (slave < 0)
        goto fail;
    if (espt_posix_make_raw(slave) != 0) {
        close(slave);
        goto fail;
    }
    close(slave);
    return master;
fail:
    close(master);
    return -1;
}

static void sleep_ms(long ms)
{
    struct timespec ts;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    nanosleep(&ts, NULL);
}

/* Until the host opens the pty's slave side, anything written would be lost with the
 * READY frame in it, so wait, like a USB-CDC board waiting for the port to open. Gives
 * up if the process that started us has gone (we were re-parented). */
static int wait_for_peer(void)
{
    pid_t parent = getppid();
    for (;;) {
        struct pollfd p;
        p.fd = in_fd;
        p.events = POLLIN;
        p.revents = 0;
        if (poll(&p, 1, 0) < 0 && errno != EINTR)
            return -1;
        if (!(p.revents & POLLHUP))
            return 0;
        if (getppid() != parent) {
            link_closed = 1;
            return -1;
        }
        sleep_ms(5);
    }
}

int espt_board_init(void)
{
    link_closed = 0;
    return wait_for_pty_peer ? wait_for_peer() : 0;
}

int espt_board_read(uint8_t *buf, size_t n, uint32_t timeout_ms)
{
    struct pollfd p;
    ssize_t got;
    int rc;
    p.fd = in_fd;
    p.events = POLLIN;
    p.revents = 0;
    rc = poll(&p, 1, timeout_ms > 0x7FFFFFFFu ? -1 : (int)timeout_ms);
    if (rc < 0)
        return errno == EINTR ? 0 : -1;
    if (rc == 0)
        return 0;
    if (!(p.revents & POLLIN)) { /* hung up or failed with nothing left to read */
        link_closed = (p.revents & POLLHUP) != 0;
        return -1;
    }
    got = read(in_fd, buf, n > 0x7FFFFFFFu ? 0x7FFFFFFFu : n);
    if (got > 0)
        return (int)got;
    if (got < 0 && (errno == EINTR || errno == EAGAIN))
        return 0;
    /* End of file (pipe, socket) or EIO (a pty whose slave was closed). */
    link_closed = got == 0 || errno == EIO;
    return -1;
}

int espt_board_write(const uint8_t *buf, size_t n)
{
    while (n > 0) {
        ssize_t put = write(out_fd, buf, n);
        if (put < 0) {
            if (errno == EINTR)
                continue;
            link_closed = errno == EIO || errno == EPIPE;
            return -1;
        }
        buf += put;
        n -= (size_t)put;
    }
    return 0;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t espt_board_cycles(void) { return now_ns(); }
/* Host time, not a CPU counter: PROFILE says so. */
uint8_t espt_board_counter_unit(void) { return ESPT_COUNTER_NANOSECONDS; }
uint64_t espt_board_micros(void) { return now_ns() / 1000u; }
uint32_t espt_board_millis(void) { return (uint32_t)(now_ns() / 1000000u); }
uint32_t espt_board_cpu_mhz(void) { return ESPT_POSIX_CPU_MHZ; }
const char *espt_board_chip(void) { return ESPT_POSIX_CHIP; }
uint32_t espt_board_rx_buffer_bytes(void) { return ESPT_POSIX_RX_BUFFER_BYTES; }
void espt_board_idle(void) {}
