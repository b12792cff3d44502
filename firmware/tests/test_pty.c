/* End to end on the POSIX board: run firmware-native (built with the test engine) on a
 * pseudo-terminal and on a socket, talk the protocol to it, check that it exits when
 * the host goes. Usage: test_pty PATH/TO/firmware-native */
#define _DEFAULT_SOURCE
#define _XOPEN_SOURCE 700

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "board_posix.h"
#include "check.h"
#include "protocol.h"
#include "test_engine.h"

#define WAIT_MS 5000

static const char *firmware;
static espt_parser_t host; /* the host's side of the link */
static uint8_t payload[ESPT_MAX_PAYLOAD];

typedef struct {
    uint8_t type;
    uint16_t seq;
    uint16_t len;
} reply_t;

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* The next frame from fd (payload copied to `payload`), or 0 on time-out / error. */
static int next_reply(int fd, reply_t *r)
{
    long deadline = now_ms() + WAIT_MS;
    espt_event_t ev;
    for (;;) {
        uint8_t buf[512];
        struct pollfd p;
        ssize_t n;
        size_t off = 0;
        if (espt_parser_next(&host, &ev)) {
            if (!CHECK_EQ(ev.kind, ESPT_EVENT_FRAME))
                return 0;
            r->type = ev.type;
            r->seq = ev.seq;
            r->len = ev.len;
            memcpy(payload, ev.payload, ev.len);
            return 1;
        }
        p.fd = fd;
        p.events = POLLIN;
        if (poll(&p, 1, (int)(deadline - now_ms() > 0 ? deadline - now_ms() : 0)) <= 0)
            return CHECK(!"no reply in time");
        n = read(fd, buf, sizeof buf);
        if (n <= 0)
            return CHECK(!"link closed while waiting for a reply");
        while (off < (size_t)n)
            off += espt_parser_push(&host, buf + off, (size_t)n - off);
    }
}

static int write_all(int fd, const uint8_t *b, size_t n)
{
    while (n > 0) {
        ssize_t k = write(fd, b, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return 0;
        b += k;
        n -= (size_t)k;
    }
    return 1;
}

static int send_frame(int fd, uint8_t type, uint16_t seq, const uint8_t *p, size_t len)
{
    static uint8_t f[ESPT_MAX_FRAME];
    size_t n = espt_frame_encode(f, sizeof f, type, seq, p, len);
    return CHECK(n > 0) && CHECK(write_all(fd, f, n));
}

/* Wait for the child to exit; kill it after WAIT_MS. Returns its exit status or -1. */
static int reap(pid_t pid)
{
    long deadline = now_ms() + WAIT_MS;
    int status;
    while (now_ms() < deadline) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        usleep(10000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    CHECK(!"firmware did not exit after the host closed the link");
    return -1;
}

/* The session every transport runs: READY, INFO, INFER, pipelined PINGs, a damaged
 * frame. */
static void session(int fd)
{
    reply_t r;
    uint8_t input[16], ping[100], frames[30 * (ESPT_FRAME_OVERHEAD + 100)], want[10];
    size_t i, n = 0;

    espt_parser_init(&host, ESPT_MAX_PAYLOAD);
    if (!next_reply(fd, &r) || !CHECK_EQ(r.type, ESPT_READY) || !CHECK_EQ(r.seq, 0))
        return;
    CHECK_EQ(payload[0], 2); /* protocol version */
    CHECK_EQ(payload[1], ESPT_STATUS_READY);

    send_frame(fd, ESPT_INFO_REQ, 7, NULL, 0);
    if (!next_reply(fd, &r) || !CHECK_EQ(r.type, ESPT_INFO_RSP) || !CHECK_EQ(r.seq, 7))
        return;
    CHECK_EQ(espt_get_u32(payload + 20), ESPT_POSIX_CPU_MHZ);
    CHECK_EQ(espt_get_u16(payload + 24), ESPT_MAX_PAYLOAD);
    CHECK_EQ(espt_get_u16(payload + 26), ESPT_POSIX_RX_BUFFER_BYTES);
    CHECK_EQ(payload[64], strlen(ESPT_POSIX_CHIP));
    CHECK_MEM(payload + 65, ESPT_POSIX_CHIP, strlen(ESPT_POSIX_CHIP));

    for (i = 0; i < sizeof input; i++)
        input[i] = (uint8_t)(i * 11);
    send_frame(fd, ESPT_INFER_REQ, 8, input, sizeof input);
    if (!next_reply(fd, &r) || !CHECK_EQ(r.type, ESPT_INFER_RSP) || !CHECK_EQ(r.seq, 8)
        || !CHECK_EQ(r.len, 12 + 10))
        return;
    test_engine_expected(input, sizeof input, want, sizeof want);
    CHECK_MEM(payload + 12, want, sizeof want);
    /* cycles are nanoseconds, read inside the microsecond interval */
    CHECK(espt_get_u32(payload) <= (espt_get_u32(payload + 8) + 1u) * 1000u);
    CHECK_EQ(espt_get_u32(payload + 4), 0);

    /* 30 requests in one write, within the RX buffer the board reports */
    memset(ping, 0x33, sizeof ping);
    for (i = 0; i < 30; i++)
        n += espt_frame_encode(frames + n, sizeof frames - n, ESPT_PING_REQ, (uint16_t)(100 + i),
                               ping, 100 - i);
    CHECK(n <= ESPT_POSIX_RX_BUFFER_BYTES);
    CHECK(write_all(fd, frames, n));
    for (i = 0; i < 30; i++) {
        if (!next_reply(fd, &r))
            return;
        CHECK_EQ(r.type, ESPT_PONG);
        CHECK_EQ(r.seq, 100 + i);
        CHECK_EQ(r.len, 100 - i);
    }

    /* noise and a damaged frame, then a good one */
    n = espt_frame_encode(frames, sizeof frames, ESPT_PING_REQ, 200, (const uint8_t *)"abc", 3);
    frames[n - 1] ^= 0xFF;
    CHECK(write_all(fd, (const uint8_t *)"boot noise\r\n", 12));
    CHECK(write_all(fd, frames, n));
    send_frame(fd, ESPT_INFO_REQ, 201, NULL, 0);
    if (!next_reply(fd, &r) || !CHECK_EQ(r.type, ESPT_ERROR) || !CHECK_EQ(r.seq, 200))
        return;
    CHECK_EQ(payload[0], ESPT_ERR_CRC);
    if (next_reply(fd, &r))
        CHECK_EQ(r.seq, 201);
}

static void test_pty(void)
{
    int out[2], slave;
    char line[300], path[280];
    ssize_t n;
    size_t got = 0;
    pid_t pid;
    struct termios t;

    if (!CHECK_EQ(pipe(out), 0))
        return;
    pid = fork();
    if (pid == 0) {
        dup2(out[1], 1);
        close(out[0]);
        close(out[1]);
        execl(firmware, firmware, "--pty", (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    /* "PTY /dev/pts/N\n" */
    while (got < sizeof line - 1 && (n = read(out[0], line + got, 1)) == 1 && line[got] != '\n')
        got++;
    line[got] = '\0';
    close(out[0]);
    if (!CHECK(sscanf(line, "PTY %279s", path) == 1)) {
        reap(pid);
        return;
    }
    usleep(50000); /* the firmware waits for us: READY must not be lost meanwhile */
    slave = open(path, O_RDWR | O_NOCTTY);
    if (!CHECK(slave >= 0)) {
        kill(pid, SIGKILL);
        reap(pid);
        return;
    }
    /* the firmware set raw mode: bytes pass unchanged */
    CHECK_EQ(tcgetattr(slave, &t), 0);
    CHECK_EQ(t.c_lflag & (ICANON | ECHO), 0);
    session(slave);
    close(slave);
    CHECK_EQ(reap(pid), 0);
}

static void test_socket_fd(void)
{
    int sv[2];
    char fdarg[16];
    pid_t pid;
    if (!CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0))
        return;
    snprintf(fdarg, sizeof fdarg, "%d", sv[1]);
    pid = fork();
    if (pid == 0) {
        close(sv[0]);
        execl(firmware, firmware, "--fd", fdarg, (char *)NULL);
        _exit(127);
    }
    close(sv[1]);
    session(sv[0]);
    close(sv[0]);
    CHECK_EQ(reap(pid), 0);
}

static int run_status(const char *a, const char *b)
{
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        dup2(null, 2);
        execl(firmware, firmware, a, b, (char *)NULL);
        _exit(127);
    }
    return reap(pid);
}

static void test_bad_arguments(void)
{
    CHECK_EQ(run_status("--fd", "99"), 1);
    CHECK_EQ(run_status("--bogus", NULL), 1);
    CHECK_EQ(run_status("/nonexistent/tty", NULL), 1);
    CHECK_EQ(run_status("--help", NULL), 0);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s PATH/TO/firmware-native\n", argv[0]);
        return 2;
    }
    firmware = argv[1];
    signal(SIGPIPE, SIG_IGN);
    RUN(test_pty);
    RUN(test_socket_fd);
    RUN(test_bad_arguments);
    return check_summary();
}
