/* The ESP32-family board (ESP-IDF v5): the protocol's serial link, the clocks and the
 * watchdog, behind firmware/core/board.h. docs/firmware.md explains the choices.
 *
 * Link, chosen per chip at build time:
 *   UART0 through the devkit's USB-UART bridge (ESP32 DevKitC, ESP32-C3-DevKitM-1), or
 *   the USB-Serial-JTAG controller (ESP32-S3-DevKitC-1's port marked "USB"); the
 *   build flag ESPT_CONSOLE_USB_SERIAL_JTAG=0/1 overrides (`esptiny export --console`).
 * ESP-IDF's console is off (sdkconfig: CONFIG_ESP_CONSOLE_NONE, log level none), so the
 * only other bytes on the link are the ROM bootloader's; the parser skips them.
 *
 * Timing: esp_cpu_get_cycle_count() is the calling core's 32-bit CCOUNT/mcycle; the
 * firmware task is pinned (app_main.c), and espt_board_cycles() widens the counter to
 * 64 bits with the microsecond clock, so an Invoke longer than one wrap (17.9 s at
 * 240 MHz) is still counted right.
 *
 * Watchdog: the task watchdog watches this task (fed between requests) and the idle
 * tasks of the other cores only; the idle task of the inference core is starved while
 * Invoke runs, by design. See espt_board_init(). */
#include "board.h"
#include "protocol.h" /* ESPT_MAX_FRAME */

#include <stdint.h>

#include "sdkconfig.h"
#include "esp_cpu.h"
#include "esp_err.h"
#include "esp_log.h"
#include "esp_task_wdt.h"
#include "esp_timer.h"
#include "freertos/FreeRTOS.h"
#include "freertos/task.h"

/* Default link per chip (docs/firmware.md); -DESPT_CONSOLE_USB_SERIAL_JTAG=0/1 overrides. */
#ifndef ESPT_CONSOLE_USB_SERIAL_JTAG
#if CONFIG_IDF_TARGET_ESP32S3
#define ESPT_CONSOLE_USB_SERIAL_JTAG 1
#else
#define ESPT_CONSOLE_USB_SERIAL_JTAG 0
#endif
#endif

#if ESPT_CONSOLE_USB_SERIAL_JTAG
#include "driver/usb_serial_jtag.h"
#else
#include "driver/uart.h"
#include "soc/uart_pins.h"
#endif

#ifndef ESPT_UART_BAUD
#define ESPT_UART_BAUD 921600 /* CP2102(N) bridges reach 921600; CH340 and CP2104 more */
#endif
/* Receive ring buffer: two largest requests, so the host can keep one request queued
 * while the device infers on the other. INFO reports it as a u16. */
#ifndef ESPT_RX_BUFFER_BYTES
#define ESPT_RX_BUFFER_BYTES (2 * ESPT_MAX_FRAME)
#endif
/* An Invoke longer than this is taken for a hang: the watchdog resets the chip and the
 * host sees a READY frame (docs/protocol.md says it then resends). */
#ifndef ESPT_TASK_WDT_TIMEOUT_MS
#define ESPT_TASK_WDT_TIMEOUT_MS 60000
#endif
/* A reply the host does not read within this long is dropped (USB-Serial-JTAG only:
 * with no terminal open, its TX buffer never drains). The host retries. */
#ifndef ESPT_USB_TX_TIMEOUT_MS
#define ESPT_USB_TX_TIMEOUT_MS 500
#endif
/* USB-Serial-JTAG's TX buffer is an ESP-IDF byte ring buffer, which refuses an item
 * larger than itself (esp_ringbuf ringbuf.c: xMaxItemSize = xSize, xRingbufferSend
 * returns pdFALSE at once) and usb_serial_jtag_write_bytes then returns 0: a reply is
 * written in pieces. Half the buffer, so the next piece goes in while the interrupt
 * drains the last. */
#ifndef ESPT_USB_TX_BUFFER_BYTES
#define ESPT_USB_TX_BUFFER_BYTES 1024
#endif
#define ESPT_USB_TX_PIECE_BYTES (ESPT_USB_TX_BUFFER_BYTES / 2)

typedef char espt_rx_holds_two_requests[(ESPT_RX_BUFFER_BYTES >= 2 * ESPT_MAX_FRAME) ? 1 : -1];
typedef char espt_rx_fits_info_u16[(ESPT_RX_BUFFER_BYTES <= 0xFFFF) ? 1 : -1];
typedef char espt_usb_tx_piece_fits[(ESPT_USB_TX_PIECE_BYTES >= 1) ? 1 : -1];

#if defined(configNUMBER_OF_CORES)
#define ESPT_CORES configNUMBER_OF_CORES
#else
#define ESPT_CORES portNUM_PROCESSORS
#endif

#define UART_PORT UART_NUM_0

static int started;
static uint32_t last_ccount;   /* esp_cpu_get_cycle_count() at the previous call */
static int64_t last_us;        /* esp_timer_get_time() at the previous call */
static uint64_t cycles_total;  /* the widened counter */

static TickType_t ticks(uint32_t ms)
{
    TickType_t t = pdMS_TO_TICKS(ms);
    return (ms > 0 && t == 0) ? 1 : t; /* never round a real wait down to a poll */
}

/* Watch this task and the idle tasks of the cores that do not run Invoke. */
static void watchdog_setup(void)
{
    uint32_t all = (1u << ESPT_CORES) - 1u;
    esp_task_wdt_config_t cfg = {
        .timeout_ms = ESPT_TASK_WDT_TIMEOUT_MS,
        .idle_core_mask = all & ~(1u << esp_cpu_get_core_id()),
        .trigger_panic = true,
    };
    if (esp_task_wdt_reconfigure(&cfg) == ESP_ERR_INVALID_STATE)
        (void)esp_task_wdt_init(&cfg); /* CONFIG_ESP_TASK_WDT_INIT was off */
    if (esp_task_wdt_status(NULL) != ESP_OK)
        (void)esp_task_wdt_add(NULL);
}

#if ESPT_CONSOLE_USB_SERIAL_JTAG

static int link_start(void)
{
    usb_serial_jtag_driver_config_t cfg = {
        .tx_buffer_size = ESPT_USB_TX_BUFFER_BYTES,
        .rx_buffer_size = ESPT_RX_BUFFER_BYTES,
    };
    return usb_serial_jtag_driver_install(&cfg) == ESP_OK ? 0 : -1;
}

int espt_board_read(uint8_t *buf, size_t n, uint32_t timeout_ms)
{
    int r;
    if (n == 0)
        return 0;
    /* Returns as soon as some bytes are buffered, at most n. */
    r = usb_serial_jtag_read_bytes(buf, (uint32_t)n, ticks(timeout_ms));
    return r < 0 ? -1 : r;
}

int espt_board_write(const uint8_t *buf, size_t n)
{
    size_t off = 0;
    int64_t give_up = esp_timer_get_time() + (int64_t)ESPT_USB_TX_TIMEOUT_MS * 1000;
    while (off < n) {
        size_t piece = n - off < ESPT_USB_TX_PIECE_BYTES ? n - off : ESPT_USB_TX_PIECE_BYTES;
        /* All of the piece or nothing: the driver returns its size or 0 (time-out). */
        int w = usb_serial_jtag_write_bytes(buf + off, piece, ticks(20));
        if (w > 0)
            off += (size_t)w;
        else if (esp_timer_get_time() > give_up)
            return 0; /* nobody is reading: drop the reply, stay alive */
    }
    return 0;
}

#else /* UART0 */

static int link_start(void)
{
    uart_config_t cfg = {
        .baud_rate = ESPT_UART_BAUD,
        .data_bits = UART_DATA_8_BITS,
        .parity = UART_PARITY_DISABLE,
        .stop_bits = UART_STOP_BITS_1,
        .flow_ctrl = UART_HW_FLOWCTRL_DISABLE,
        .source_clk = UART_SCLK_DEFAULT,
    };
    /* No TX ring buffer: uart_write_bytes() returns once every byte is in the FIFO. */
    if (uart_driver_install(UART_PORT, ESPT_RX_BUFFER_BYTES, 0, 0, NULL, 0) != ESP_OK)
        return -1;
    if (uart_param_config(UART_PORT, &cfg) != ESP_OK)
        return -1;
    /* The devkits wire their USB bridge to UART0's IOMUX pins. */
    if (uart_set_pin(UART_PORT, U0TXD_GPIO_NUM, U0RXD_GPIO_NUM, UART_PIN_NO_CHANGE,
                     UART_PIN_NO_CHANGE) != ESP_OK)
        return -1;
    return 0;
}

int espt_board_read(uint8_t *buf, size_t n, uint32_t timeout_ms)
{
    size_t avail = 0;
    int r;
    if (n == 0)
        return 0;
    /* uart_read_bytes() waits for all n bytes; ask for what is there, else wait for one. */
    if (uart_get_buffered_data_len(UART_PORT, &avail) != ESP_OK)
        return -1;
    if (avail == 0) {
        r = uart_read_bytes(UART_PORT, buf, 1, ticks(timeout_ms));
        if (r <= 0)
            return r < 0 ? -1 : 0;
        if (uart_get_buffered_data_len(UART_PORT, &avail) != ESP_OK || avail == 0 || n == 1)
            return 1;
        r = uart_read_bytes(UART_PORT, buf + 1, (uint32_t)(avail < n - 1 ? avail : n - 1), 0);
        return r < 0 ? -1 : 1 + r;
    }
    r = uart_read_bytes(UART_PORT, buf, (uint32_t)(avail < n ? avail : n), 0);
    return r < 0 ? -1 : r;
}

int espt_board_write(const uint8_t *buf, size_t n)
{
    return uart_write_bytes(UART_PORT, buf, n) == (int)n ? 0 : -1;
}

#endif

int espt_board_init(void)
{
    if (started)
        return 0; /* the firmware task restarts the device loop after a link error */
    esp_log_level_set("*", ESP_LOG_NONE);
    watchdog_setup();
    if (link_start() != 0)
        return -1;
    last_ccount = esp_cpu_get_cycle_count();
    last_us = esp_timer_get_time();
    started = 1;
    return 0;
}

uint64_t espt_board_cycles(void)
{
    uint32_t now = esp_cpu_get_cycle_count();
    int64_t us = esp_timer_get_time();
    uint32_t delta = now - last_ccount; /* modulo 2^32 */
    /* The microsecond clock says how many whole 2^32 wraps fit in the interval;
     * rounding to the nearest wrap absorbs the microsecond's granularity. */
    uint64_t approx = (uint64_t)(us - last_us) * (uint64_t)CONFIG_ESP_DEFAULT_CPU_FREQ_MHZ;
    uint64_t wraps = approx > delta ? (approx - delta + (1ull << 31)) >> 32 : 0;
    cycles_total += (wraps << 32) + delta;
    last_ccount = now;
    last_us = us;
    return cycles_total;
}

/* esp_cpu_get_cycle_count(): the core's CCOUNT (Xtensa) or mcycle (RISC-V) register. */
uint8_t espt_board_counter_unit(void)
{
    return ESPT_COUNTER_CYCLES;
}

uint64_t espt_board_micros(void)
{
    return (uint64_t)esp_timer_get_time();
}

uint32_t espt_board_millis(void)
{
    return (uint32_t)(esp_timer_get_time() / 1000);
}

uint32_t espt_board_cpu_mhz(void)
{
    return CONFIG_ESP_DEFAULT_CPU_FREQ_MHZ; /* no power management: the CPU stays here */
}

const char *espt_board_chip(void)
{
    return CONFIG_IDF_TARGET; /* "esp32", "esp32s3", "esp32c3": esptiny's board names */
}

uint32_t espt_board_rx_buffer_bytes(void)
{
    return ESPT_RX_BUFFER_BYTES;
}

void espt_board_idle(void)
{
    (void)esp_task_wdt_reset();
}
