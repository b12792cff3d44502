/* ESP-IDF's entry point: start the firmware on a task pinned to one core.
 *
 * Pinned because the cycle counter is per core: a task that migrated between the two
 * reads around Invoke would subtract one core's counter from the other's. On the
 * dual-core ESP32 and ESP32-S3 the task runs on core 1 (APP CPU), leaving core 0 to
 * ESP-IDF's own tasks (esp_timer, IPC); the single-core ESP32-C3 has only core 0. */
#include "firmware_main.h"

#include <stddef.h>

#include "sdkconfig.h"
#include "esp_log.h"
#include "freertos/FreeRTOS.h"
#include "freertos/task.h"

#if defined(configNUMBER_OF_CORES)
#define ESPT_CORES configNUMBER_OF_CORES
#else
#define ESPT_CORES portNUM_PROCESSORS
#endif

#ifndef ESPT_TASK_CORE
#define ESPT_TASK_CORE (ESPT_CORES > 1 ? 1 : 0)
#endif
/* TFLite-Micro's kernels run on this stack; 16 KB is several times what its reference
 * and ESP-NN kernels use, and comes out of the same heap as the tensor arena. */
#ifndef ESPT_TASK_STACK_BYTES
#define ESPT_TASK_STACK_BYTES 16384
#endif
/* Above ESP-IDF's idle (0) and main (1) tasks, below its system tasks (esp_timer 22,
 * IPC 24), which may preempt an Invoke for microseconds. */
#ifndef ESPT_TASK_PRIORITY
#define ESPT_TASK_PRIORITY 5
#endif

static void firmware_task(void *arg)
{
    (void)arg;
    for (;;) {
        /* Returns only on a fatal link error: start over (board and engine keep their
         * state; the host sees a new READY frame and resends what was in flight). */
        (void)espt_firmware_main();
        vTaskDelay(pdMS_TO_TICKS(100));
    }
}

void app_main(void)
{
    esp_log_level_set("*", ESP_LOG_NONE);
    xTaskCreatePinnedToCore(firmware_task, "esptiny", ESPT_TASK_STACK_BYTES, NULL,
                            ESPT_TASK_PRIORITY, NULL, ESPT_TASK_CORE);
    /* app_main returns; ESP-IDF deletes the main task and frees its stack. */
}
