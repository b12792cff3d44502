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
// Nothing here aborts or reboots: every failure becomes a status and a one-line detail
// the host reads over INFO. What set-up observed goes into one record (tflm_status.h),
// which decides: arena too small (arena_watch.h saw a request refused, wherever it was),
// op not registered (checked against the resolver before TFLite-Micro runs), op prepare
// failed (op_watch.h saw a kernel's Prepare fail with the arena intact), model invalid.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>

#include "arena_watch.h"
#include "engine.h"
#include "model_config.h"
#include "model_data.h"
#include "op_resolver.h"
#include "op_watch.h"
#include "tflm_status.h"
#if defined(ESPT_TFLM_PROFILE)
#include "op_profiler.h"
#endif

#include "tensorflow/lite/micro/memory_planner/greedy_memory_planner.h"
#include "tensorflow/lite/micro/micro_allocator.h"
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_op_resolver.h"
#include "tensorflow/lite/schema/schema_generated.h"
#include "tensorflow/lite/schema/schema_utils.h"

#if defined(ESP_PLATFORM)
#include "esp_heap_caps.h"
#else
#include <cstdlib>
#endif

namespace {

constexpr size_t kArenaAlign = 16;  // TFLite-Micro plans tensors on 16-byte boundaries

espt_tflm_setup_t setup;  // what set-up observed; decides status and detail
espt::OpResolver resolver;
espt::OpWatch<espt::kOpCount> watched_ops(resolver, &setup);
alignas(espt::ArenaWatch) unsigned char arena_watch_storage[sizeof(espt::ArenaWatch)];
alignas(tflite::MicroInterpreter) unsigned char interpreter_storage[sizeof(tflite::MicroInterpreter)];
tflite::MicroInterpreter* interpreter = nullptr;
TfLiteTensor* input = nullptr;
TfLiteTensor* output = nullptr;
bool initialised = false;
espt_model_info_t cached;

// A profiling build (-DESPT_TFLM_PROFILE) hands the interpreter a profiler; otherwise
// it gets none and Invoke reads no counter.
#if defined(ESPT_TFLM_PROFILE)
#ifndef ESPT_TFLM_PROFILE_MAX_OPS
#define ESPT_TFLM_PROFILE_MAX_OPS 256
#endif
espt::OpProfiler<ESPT_TFLM_PROFILE_MAX_OPS> profiler;
tflite::MicroProfilerInterface* active_profiler() { return profiler.Described() ? &profiler : nullptr; }
#else
tflite::MicroProfilerInterface* active_profiler() { return nullptr; }
#endif

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

// Every operator's opcode must be in the model and its op in the resolver. Counts the
// operators (all subgraphs, TFLite-Micro's order) for op_watch.h. False: setup says why.
bool check_ops(const tflite::Model* model) {
  const auto* subgraphs = model->subgraphs();
  const auto* opcodes = model->operator_codes();
  int32_t index = 0;
  if (subgraphs == nullptr || subgraphs->size() == 0) {
    setup.stop = ESPT_TFLM_STOP_GRAPH;
    return false;
  }
  for (const tflite::SubGraph* subgraph : *subgraphs) {
    if (subgraph == nullptr || subgraph->operators() == nullptr) continue;
    for (const tflite::Operator* op : *subgraph->operators()) {
      setup.op.index = index++;
      if (opcodes == nullptr || op->opcode_index() >= opcodes->size()) {
        setup.stop = ESPT_TFLM_STOP_OPCODE;
        return false;
      }
      const tflite::OperatorCode* opcode = opcodes->Get(op->opcode_index());
      const tflite::BuiltinOperator code = tflite::GetBuiltinCode(opcode);
      const TFLMRegistration* registration = nullptr;
      if (code > tflite::BuiltinOperator_MAX) {
        setup.stop = ESPT_TFLM_STOP_OPCODE;
        return false;
      }
      if (tflite::GetRegistrationFromOpCode(opcode, resolver, &registration) != kTfLiteOk) {
        setup.stop = ESPT_TFLM_STOP_OP_MISSING;
        if (code != tflite::BuiltinOperator_CUSTOM)
          setup.op.name = tflite::EnumNameBuiltinOperator(code);
        else if (opcode->custom_code() != nullptr)
          setup.op.name = opcode->custom_code()->c_str();
        return false;
      }
    }
  }
  setup.op.index = -1;
  setup.ops_total = static_cast<uint32_t>(index);
  return true;
}

// MicroInterpreter(model, resolver, arena, bytes) builds its allocator with
// MicroAllocator::Create, which places the buffer allocator, the greedy memory planner
// and itself in the arena without checking that they fit (placement new on the null a
// refused request returns: SIGSEGV natively, a panic on the ESP32), and its
// StartModelAllocation does the same with one more object. TFLite-Micro publishes what
// those take, MicroAllocator::GetDefaultTailUsage; it counts the buffer allocator,
// which lives outside the arena here, so the check errs on the safe side. Then the same
// chain as Create's, with the watched allocator. nullptr: the arena is too small.
tflite::MicroAllocator* create_allocator(uint8_t* arena, size_t bytes) {
  const size_t fixed = tflite::MicroAllocator::GetDefaultTailUsage(/*is_memory_planner_given=*/false);
  auto* watch = new (arena_watch_storage) espt::ArenaWatch(arena, bytes, &setup);
  if (bytes < fixed) {
    espt_tflm_arena_refused(&setup, static_cast<uint32_t>(fixed - bytes));
    return nullptr;
  }
  uint8_t* planner = watch->AllocatePersistentBuffer(sizeof(tflite::GreedyMemoryPlanner),
                                                     alignof(tflite::GreedyMemoryPlanner));
  if (planner == nullptr) return nullptr;  // the watch has recorded it
  return tflite::MicroAllocator::Create(watch, new (planner) tflite::GreedyMemoryPlanner());
}

int finish(espt_model_info_t* info) {
  info->status = espt_tflm_status(&setup, info->detail, sizeof info->detail);
  if (info->status != ESPT_STATUS_READY) info->arena_used_bytes = 0;
  cached = *info;
  initialised = true;
  return info->status;
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

  espt_tflm_setup_init(&setup);

  const tflite::Model* model = tflite::GetModel(g_espt_model_data);
  if (model->version() != TFLITE_SCHEMA_VERSION) {
    setup.stop = ESPT_TFLM_STOP_SCHEMA;
    setup.number = model->version();
    setup.number2 = TFLITE_SCHEMA_VERSION;
    return finish(info);
  }
  if (const char* refused = espt::RegisterOps(resolver)) {  // never ignored
    setup.stop = ESPT_TFLM_STOP_REGISTER;
    setup.op.name = refused;
    return finish(info);
  }
  uint8_t* arena = allocate_arena(ESPT_ARENA_BYTES);
  if (arena == nullptr) {
    info->arena_bytes = 0;  // the bytes it had: none
    setup.stop = ESPT_TFLM_STOP_HEAP;
    setup.number = ESPT_ARENA_BYTES;
    return finish(info);
  }
  info->arena_bytes = ESPT_ARENA_BYTES;
  if (!check_ops(model)) return finish(info);

  tflite::MicroAllocator* allocator = create_allocator(arena, ESPT_ARENA_BYTES);
  if (allocator == nullptr) {
    setup.stop = ESPT_TFLM_STOP_ALLOCATE;
    return finish(info);
  }
  // (initialization_status() says nothing: the constructor always leaves it OK.)
#if defined(ESPT_TFLM_PROFILE)
  profiler.Describe(model);  // false (no profile) past ESPT_TFLM_PROFILE_MAX_OPS ops
#endif
  interpreter = new (interpreter_storage) tflite::MicroInterpreter(
      model, watched_ops, allocator, /*resource_variables=*/nullptr, active_profiler());
  // ESP-NN's kernels ask for scratch buffers the host's reference kernels do not: this
  // is where a tight arena fails.
  setup.phase = ESPT_TFLM_PHASE_MODEL;
  if (interpreter->AllocateTensors() != kTfLiteOk) {
    setup.stop = ESPT_TFLM_STOP_ALLOCATE;
    return finish(info);
  }
  if (interpreter->inputs_size() != 1 || interpreter->outputs_size() != 1) {
    setup.stop = ESPT_TFLM_STOP_IO;
    setup.number = static_cast<uint32_t>(interpreter->inputs_size());
    setup.number2 = static_cast<uint32_t>(interpreter->outputs_size());
    return finish(info);
  }

  input = interpreter->input(0);
  output = interpreter->output(0);
  if (!describe(input, &info->input) || !describe(output, &info->output) ||
      info->input.bytes != ESPT_INPUT_BYTES || info->output.bytes != ESPT_OUTPUT_BYTES) {
    describe_from_config(info);
    setup.stop = ESPT_TFLM_STOP_TENSORS;
    return finish(info);
  }
  info->arena_used_bytes = static_cast<uint32_t>(interpreter->arena_used_bytes());
  return finish(info);
}

extern "C" int espt_engine_set_input(size_t offset, const uint8_t* data, size_t n) {
  if (cached.status != ESPT_STATUS_READY || input == nullptr || data == nullptr ||
      offset > input->bytes || n > input->bytes - offset)
    return -1;
  std::memcpy(input->data.raw + offset, data, n);
  return 0;
}

extern "C" int espt_engine_invoke(void) {
  if (cached.status != ESPT_STATUS_READY || interpreter == nullptr) return -1;
#if defined(ESPT_TFLM_PROFILE)
  profiler.Start();
  const bool ok = interpreter->Invoke() == kTfLiteOk;
  profiler.Finish(ok);
  return ok ? 0 : -1;
#else
  return interpreter->Invoke() == kTfLiteOk ? 0 : -1;
#endif
}

extern "C" long espt_engine_profile_steps(void) {
#if defined(ESPT_TFLM_PROFILE)
  return profiler.Described() ? profiler.Steps() : -1;
#else
  return -1;
#endif
}

extern "C" int espt_engine_profile_step(uint32_t step, espt_profile_step_t* rec) {
#if defined(ESPT_TFLM_PROFILE)
  return profiler.Step(step, rec) ? 0 : -1;
#else
  (void)step;
  (void)rec;
  return -1;
#endif
}

extern "C" int espt_engine_get_output(size_t offset, uint8_t* out, size_t n) {
  if (cached.status != ESPT_STATUS_READY || output == nullptr || out == nullptr ||
      offset > output->bytes || n > output->bytes - offset)
    return -1;
  std::memcpy(out, output->data.raw + offset, n);
  return 0;
}
