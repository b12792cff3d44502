/* The device's entry point: the portable core serving the protocol (docs/protocol.md). */
#ifndef ESPT_DEVICE_H
#define ESPT_DEVICE_H

#ifdef __cplusplus
extern "C" {
#endif

#ifndef ESPT_FIRMWARE_VERSION
#define ESPT_FIRMWARE_VERSION "esptiny-fw 0.1.0"
#endif

/* Initialise the board and the engine, send READY, then serve requests forever.
 * Returns only on a fatal link error (negative). */
int espt_device_main(void);

#ifdef __cplusplus
}
#endif
#endif
