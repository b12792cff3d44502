/* The protocol a firmware speaks, chosen at compile time: esptiny's own (device.h, the
 * default) or the MLPerf Tiny benchmark's (mlperf_tiny.h, -DESPT_PROTOCOL_MLPERF_TINY=1,
 * what `esptiny export --protocol mlperf-tiny` sets). Boards call espt_firmware_main(). */
#ifndef ESPT_FIRMWARE_MAIN_H
#define ESPT_FIRMWARE_MAIN_H

#if defined(ESPT_PROTOCOL_MLPERF_TINY) && ESPT_PROTOCOL_MLPERF_TINY
#include "mlperf_tiny.h"
#define espt_firmware_main espt_mlperf_main
#else
#include "device.h"
#define espt_firmware_main espt_device_main
#endif

#endif
