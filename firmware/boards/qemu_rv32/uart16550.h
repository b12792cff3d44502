/* Polled NS16550A UART, as QEMU's virt machine has at 0x10000000 (byte registers). */
#ifndef ESPT_UART16550_H
#define ESPT_UART16550_H

#include <stdint.h>

void uart16550_init(void);
/* 1 when a received byte is waiting. */
int uart16550_rx_ready(void);
/* The next received byte; call only when uart16550_rx_ready(). */
uint8_t uart16550_rx(void);
/* Send one byte, waiting for room in the transmit FIFO. */
void uart16550_tx(uint8_t byte);

#endif
