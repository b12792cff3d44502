// The TFLite-Micro engine: one model, planned once, behind the C interface in
// firmware/core/engine.h. Built with Espressif's esp-tflite-micro component, whose
// ESP-NN kernels replace TFLite-Micro's reference int8 conv, depthwise conv, fully
// connected, pooling, add, mul and softmax.
//
// The model and its facts come from files `esptiny export` generates into model/:
//   model_data.h    the .tflite bytes (g_espt_model_data, 16-byte aligned, in flash),
//                   their length and CRC32
//   model_config.h  shapes, quantization, labels, arena size (with its reasoning)
//   op_resolver.h   a MicroMutableOpResolver with exactly the model's builtin ops
//
// Nothing here aborts or reboots: every failure becomes a status the host reads over
// INFO (ARENA_TOO_SMALL with the arena bytes the firmware had, or MODEL_INVALID).
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>

#include "engine.h"
#include "model_config.h"
#include "model_data.h"
#include "op_resolver.h"

#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/schema/schema_generated.h"

#if defined(ESP_PLATFORM)
#include "esp_heap_caps.h"
#else
#include <cstdlib>
#endif

namespace {

constexpr size_t kArenaAlign = 16;  // TFLite-Micro plans tensors on 16-byte boundaries

espt::OpResolver resolver;
alignas(tflite::MicroInterpreter) unsigned char interpreter_storage[sizeof(tflite::MicroInterpreter)];
tflite::MicroInterpreter* interpreter = nullptr;
TfLiteTensor* input = nullptr;
TfLiteTensor* output = nullptr;
bool initialised = false;
espt_model_info_t cached;

// The arena lives in internal RAM, allocated at run time: a static array this large
// would not fit dram0_0_seg on the ESP32, and PSRAM would make every tensor access slow.
uint8_t* allocate_arena(size_t bytes) {
#if defined(ESP_PLATFORM)
  void* raw = heap_caps_malloc(bytes + kArenaAlign - 1, MALLOC_CAP_INTERNAL | MALLOC_CAP_8BIT);
#else
  void* raw = std::malloc(bytes + kArenaAlign - 1);
#endif
  if (raw == nullptr) return nullptr;
  uintptr_t p = (reinterpret_cast<uintptr_t>(raw) + kArenaAlign - 1) & ~(uintptr_t)(kArenaAlign - 1);
  return reinterpret_cast<uint8_t*>(p);  // never freed: the model is planned once
}

uint8_t dtype_code(TfLiteType t) {
  switch (t) {
    case kTfLiteFloat32: return ESPT_DTYPE_FLOAT32;
    case kTfLiteUInt8: return ESPT_DTYPE_UINT8;
    case kTfLiteInt16: return ESPT_DTYPE_INT16;
    case kTfLiteInt8: return ESPT_DTYPE_INT8;
    default: return 0xFF;  // the device loop turns an unknown dtype into MODEL_INVALID
  }
}

// The tensor as the interpreter planned it.
bool describe(const TfLiteTensor* t, espt_tensor_info_t* out) {
  if (t == nullptr || t->dims == nullptr || t->dims->size < 1 || t->dims->size > 4) return false;
  out->dtype = dtype_code(t->type);
  out->rank = static_cast<uint8_t>(t->dims->size);
  for (int i = 0; i < 4; ++i) {
    int d = i < t->dims->size ? t->dims->data[i] : 1;
    if (d < 1 || d > 0xFFFF) return false;
    out->dims[i] = static_cast<uint16_t>(d);
  }
  out->scale = t->params.scale;
  out->zero_point = t->params.zero_point;
  out->bytes = static_cast<uint32_t>(t->bytes);
  return true;
}

// The tensors as the export recorded them, so INFO says what the model should be even
// when the interpreter could not be built.
void describe_from_config(espt_model_info_t* info) {
  static const uint16_t in_dims[4] = ESPT_INPUT_DIMS;
  static const uint16_t out_dims[4] = ESPT_OUTPUT_DIMS;
  info->input.dtype = ESPT_INPUT_DTYPE;
  info->input.rank = ESPT_INPUT_RANK;
  std::memcpy(info->input.dims, in_dims, sizeof in_dims);
  info->input.scale = ESPT_INPUT_SCALE;
  info->input.zero_point = ESPT_INPUT_ZERO_POINT;
  info->input.bytes = ESPT_INPUT_BYTES;
  info->output.dtype = ESPT_OUTPUT_DTYPE;
  info->output.rank = ESPT_OUTPUT_RANK;
  std::memcpy(info->output.dims, out_dims, sizeof out_dims);
  info->output.scale = ESPT_OUTPUT_SCALE;
  info->output.zero_point = ESPT_OUTPUT_ZERO_POINT;
  info->output.bytes = ESPT_OUTPUT_BYTES;
}

int finish(espt_model_info_t* info, uint8_t status) {
  info->status = status;
  if (status != ESPT_STATUS_READY) info->arena_used_bytes = 0;
  cached = *info;
  initialised = true;
  return status;
}

}  // namespace

extern "C" int espt_engine_init(espt_model_info_t* info) {
  if (initialised) {  // the device loop may start over after a link error
    *info = cached;
    return cached.status;
  }
  std::memset(info, 0, sizeof *info);
  info->engine = ESPT_ENGINE_TFLM;
  info->model_crc32 = g_espt_model_crc32;
  info->model_bytes = g_espt_model_data_len;
  describe_from_config(info);

  const tflite::Model* model = tflite::GetModel(g_espt_model_data);
  if (model == nullptr || model->version() != TFLITE_SCHEMA_VERSION)
    return finish(info, ESPT_STATUS_MODEL_INVALID);
  if (espt::RegisterOps(resolver) != nullptr)  // a registration that failed: never ignored
    return finish(info, ESPT_STATUS_MODEL_INVALID);

  uint8_t* arena = allocate_arena(ESPT_ARENA_BYTES);
  if (arena == nullptr) {
    info->arena_bytes = 0;  // the bytes it had: none
    return finish(info, ESPT_STATUS_ARENA_TOO_SMALL);
  }
  info->arena_bytes = ESPT_ARENA_BYTES;

  interpreter = new (interpreter_storage)
      tflite::MicroInterpreter(model, resolver, arena, ESPT_ARENA_BYTES);
  if (interpreter->initialization_status() != kTfLiteOk)
    return finish(info, ESPT_STATUS_MODEL_INVALID);
  // ESP-NN's kernels ask for scratch buffers the host's reference kernels do not: this
  // is where a tight arena fails. Report it; do not abort.
  if (interpreter->AllocateTensors() != kTfLiteOk)
    return finish(info, ESPT_STATUS_ARENA_TOO_SMALL);
  if (interpreter->inputs_size() != 1 || interpreter->outputs_size() != 1)
    return finish(info, ESPT_STATUS_MODEL_INVALID);

  input = interpreter->input(0);
  output = interpreter->output(0);
  if (!describe(input, &info->input) || !describe(output, &info->output) ||
      info->input.bytes != ESPT_INPUT_BYTES || info->output.bytes != ESPT_OUTPUT_BYTES) {
    describe_from_config(info);
    return finish(info, ESPT_STATUS_MODEL_INVALID);
  }
  info->arena_used_bytes = static_cast<uint32_t>(interpreter->arena_used_bytes());
  return finish(info, ESPT_STATUS_READY);
}

extern "C" int espt_engine_set_input(const uint8_t* data, size_t n) {
  if (cached.status != ESPT_STATUS_READY || input == nullptr || data == nullptr ||
      n != input->bytes)
    return -1;
  std::memcpy(input->data.raw, data, n);
  return 0;
}

extern "C" int espt_engine_invoke(void) {
  if (cached.status != ESPT_STATUS_READY || interpreter == nullptr) return -1;
  return interpreter->Invoke() == kTfLiteOk ? 0 : -1;
}

extern "C" int espt_engine_get_output(uint8_t* out, size_t n) {
  if (cached.status != ESPT_STATUS_READY || output == nullptr || out == nullptr ||
      n != output->bytes)
    return -1;
  std::memcpy(out, output->data.raw, n);
  return 0;
}
