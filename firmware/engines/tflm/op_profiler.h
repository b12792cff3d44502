// The TFLite-Micro engine's profile (a build with -DESPT_TFLM_PROFILE): a
// MicroProfilerInterface (tensorflow/lite/micro/micro_profiler_interface.h) handed to the
// MicroInterpreter, which opens one event around each operator's Invoke, in subgraph 0's
// order (MicroInterpreterGraph::InvokeSubgraph, ScopedMicroProfiler with the op's name;
// compiled only without TF_LITE_STRIP_ERROR_STRINGS). Events a kernel opens inside its op
// (TFLite-Micro's decompression) and a called subgraph's ops are nested: they count in
// the op around them. The board's counter is read at each op's BeginEvent and EndEvent,
// so the interpreter's own work between ops is not in the records.
//
// What each record covers comes from the model's flatbuffer, once: the op's BuiltinOperator
// and the bytes of the non-constant tensors alive during it (first to last use; the graph's
// inputs from the start, its outputs to the end; scratch buffers not counted).
#ifndef ESPT_OP_PROFILER_H
#define ESPT_OP_PROFILER_H

#include <cstddef>
#include <cstdint>

#include "board.h"
#include "engine.h"
#include "tensorflow/lite/micro/micro_profiler_interface.h"
#include "tensorflow/lite/schema/schema_generated.h"
#include "tensorflow/lite/schema/schema_utils.h"

namespace espt {

// kMaxOps: the most operators subgraph 0 may have for a profile (ESPT_TFLM_PROFILE_MAX_OPS).
template <size_t kMaxOps>
class OpProfiler : public tflite::MicroProfilerInterface {
 public:
  // The records' ops and live bytes. False (no profile) for a model with more ops than kMaxOps.
  bool Describe(const tflite::Model* model) {
    ops_ = 0;
    const auto* subgraphs = model->subgraphs();
    const auto* opcodes = model->operator_codes();
    if (subgraphs == nullptr || subgraphs->size() == 0 || opcodes == nullptr) return false;
    const tflite::SubGraph* g = subgraphs->Get(0);
    if (g->operators() == nullptr || g->tensors() == nullptr || g->operators()->size() > kMaxOps)
      return false;
    const size_t n = g->operators()->size();
    for (size_t k = 0; k < n; ++k) {
      const tflite::Operator* op = g->operators()->Get(k);
      if (op->opcode_index() >= opcodes->size()) return false;
      code_[k] = static_cast<uint16_t>(tflite::GetBuiltinCode(opcodes->Get(op->opcode_index())));
      live_[k] = 0;
    }
    for (size_t t = 0; t < g->tensors()->size(); ++t) {
      if (IsConstant(model, g->tensors()->Get(t))) continue;
      long first = Has(g->inputs(), t) ? 0 : -1, last = Has(g->outputs(), t) ? long(n) - 1 : -1;
      for (size_t k = 0; k < n; ++k) {
        const tflite::Operator* op = g->operators()->Get(k);
        if (Has(op->inputs(), t) || Has(op->outputs(), t)) {
          if (first < 0) first = long(k);
          if (long(k) > last) last = long(k);
        }
      }
      const uint32_t bytes = Bytes(g->tensors()->Get(t));
      for (long k = first; k >= 0 && k <= last; ++k) live_[k] += bytes;
    }
    ops_ = n;
    return true;
  }

  // Around each Invoke: the records are kept only when every op reported.
  void Start() {
    depth_ = 0;
    count_ = 0;
    recorded_ = false;
  }
  void Finish(bool ok) { recorded_ = ok && count_ == ops_ && ops_ > 0; }

  uint32_t BeginEvent(const char* tag) override {
    (void)tag;
    if (depth_++ != 0 || count_ >= ops_) return kNested;
    start_ = espt_board_cycles();
    return static_cast<uint32_t>(count_);
  }

  void EndEvent(uint32_t handle) override {
    const uint64_t now = espt_board_cycles();
    if (depth_ > 0) --depth_;
    if (handle == kNested || depth_ != 0 || handle != count_) return;
    counter_[handle] = now - start_;
    ++count_;
  }

  bool Described() const { return ops_ > 0; }
  long Steps() const { return recorded_ ? long(ops_) : 0; }

  bool Step(uint32_t k, espt_profile_step_t* rec) const {
    if (!recorded_ || k >= ops_ || rec == nullptr) return false;
    rec->op_count = 1;
    rec->op_index[0] = static_cast<uint16_t>(k);
    rec->op_code[0] = code_[k];
    for (int i = 1; i < ESPT_PROFILE_OPS_MAX; ++i) rec->op_index[i] = rec->op_code[i] = 0xFFFF;
    rec->counter = counter_[k];
    rec->arena_live_bytes = live_[k];
    return true;
  }

 private:
  static constexpr uint32_t kNested = 0xFFFFFFFFu;

  template <typename V>
  static bool Has(const V* list, size_t t) {
    if (list == nullptr) return false;
    for (size_t i = 0; i < list->size(); ++i)
      if (list->Get(i) == static_cast<int32_t>(t)) return true;
    return false;
  }

  // A tensor with data in its buffer (or, in a large model, at an offset) is a constant.
  static bool IsConstant(const tflite::Model* model, const tflite::Tensor* t) {
    const auto* buffers = model->buffers();
    if (buffers == nullptr || t->buffer() == 0 || t->buffer() >= buffers->size()) return false;
    const tflite::Buffer* b = buffers->Get(t->buffer());
    return b != nullptr && ((b->data() != nullptr && b->data()->size() > 0) || b->offset() > 1);
  }

  static uint32_t Bytes(const tflite::Tensor* t) {
    uint64_t n;
    switch (t->type()) {
      case tflite::TensorType_FLOAT32:
      case tflite::TensorType_INT32:
      case tflite::TensorType_UINT32: n = 4; break;
      case tflite::TensorType_INT16:
      case tflite::TensorType_UINT16:
      case tflite::TensorType_FLOAT16: n = 2; break;
      case tflite::TensorType_INT64:
      case tflite::TensorType_FLOAT64: n = 8; break;
      default: n = 1; break;
    }
    if (t->shape() != nullptr)
      for (size_t i = 0; i < t->shape()->size(); ++i) n *= uint64_t(t->shape()->Get(i) > 0 ? t->shape()->Get(i) : 1);
    return n > 0xFFFFFFFFu ? 0xFFFFFFFFu : static_cast<uint32_t>(n);
  }

  size_t ops_ = 0;
  size_t count_ = 0;
  int depth_ = 0;
  bool recorded_ = false;
  uint64_t start_ = 0;
  uint16_t code_[kMaxOps] = {};
  uint32_t live_[kMaxOps] = {};
  uint64_t counter_[kMaxOps] = {};
};

}  // namespace espt

#endif
