/* The POSIX board: board.h over file descriptors (a pseudo-terminal, a socket, a serial
 * device or a pipe pair), so the real firmware core runs as a host process. */
#ifndef ESPT_BOARD_POSIX_H
#define ESPT_BOARD_POSIX_H

#include <stddef.h>

/* What the board reports in INFO. Cycles are CLOCK_MONOTONIC nanoseconds (host time,
 * not a CPU counter), so the nominal clock is 1000 MHz: cycles / MHz = microseconds. */
#define ESPT_POSIX_CHIP "posix-host"
#define ESPT_POSIX_CPU_MHZ 1000u
/* A Linux pseudo-terminal's line discipline holds 4096 bytes (N_TTY_BUF_SIZE); a
 * writer is blocked, not dropped, beyond that, but 4096 keeps the host honest. */
#define ESPT_POSIX_RX_BUFFER_BYTES 4096u

/* Serve on in_fd/out_fd (the same descriptor for a tty or a socket). With
 * wait_for_peer, espt_board_init() waits until the pty's slave side is opened. */
void espt_posix_board_use(int in_fd, int out_fd, int wait_for_peer);

/* Open a pseudo-terminal in raw mode; returns the master descriptor and writes the
 * slave's path into path (cap bytes), or -1 with errno set. */
int espt_posix_open_pty(char *path, size_t cap);

/* Put a terminal into raw mode (no echo, no line editing, 8 bits). 0 or -1. */
int espt_posix_make_raw(int fd);

/* 1 once the peer has gone (end of file, hang-up): the device loop's fatal link error
 * was a clean end, not a failure. */
int espt_posix_board_link_closed(void);

#endif
