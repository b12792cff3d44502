// The op resolver, watched: it hands TFLite-Micro copies of the model's registrations
// whose Init and Prepare go through hooks, so the set-up record (tflm_status.h) knows
// which kernel runs when the arena refuses a request, and which kernel's Prepare failed.
//
// TFLite-Micro calls every node's Init in order, then every node's Prepare in order,
// each only if the registration has one (MicroInterpreterGraph::InitSubgraphs and
// PrepareSubgraphs in micro_interpreter_graph.cc, subgraph 0 first; the same file in
// upstream TFLite-Micro and in esp-tflite-micro 1.4.0). The copies always have both, so
// counting the calls numbers the nodes. The hooks also keep a kernel's Prepare from
// running once the arena has refused anything: that kernel's Init may have got no op
// data, and TFLite-Micro's kernels only TFLITE_DCHECK it (abort, or with NDEBUG a null
// dereference). Invoke, Free and Reset stay the kernel's own: inference costs nothing
// extra.
#ifndef ESPT_OP_WATCH_H
#define ESPT_OP_WATCH_H

#include <cstddef>
#include <utility>

#include "tensorflow/lite/micro/micro_op_resolver.h"
#include "tensorflow/lite/schema/schema_generated.h"
#include "tflm_status.h"

namespace espt {

// N: how many registrations the wrapped resolver can hold (its MicroMutableOpResolver<N>).
template <size_t N>
class OpWatch : public tflite::MicroOpResolver {
  static_assert(N > 0, "a model has at least one op");

 public:
  OpWatch(const tflite::MicroOpResolver& ops, espt_tflm_setup_t* setup) : ops_(ops) {
    setup_ = setup;
  }

  const TFLMRegistration* FindOp(tflite::BuiltinOperator op) const override {
    return Watched(ops_.FindOp(op));
  }
  const TFLMRegistration* FindOp(const char* op) const override {
    return Watched(ops_.FindOp(op));
  }
  tflite::TfLiteBridgeBuiltinParseFunction GetOpDataParser(tflite::BuiltinOperator op) const override {
    return ops_.GetOpDataParser(op);
  }

 private:
  using InitFn = void* (*)(TfLiteContext*, const char*, size_t);
  using PrepareFn = TfLiteStatus (*)(TfLiteContext*, TfLiteNode*);
  struct Hooks {
    InitFn init;
    PrepareFn prepare;
  };
  struct Slot {
    const TFLMRegistration* kernel;  // the resolver's registration
    TFLMRegistration watched;        // its copy, with the hooks of this slot
  };

  // One slot per distinct registration; the same registration gets the same copy.
  static const TFLMRegistration* Watched(const TFLMRegistration* kernel) {
    if (kernel == nullptr) return nullptr;
    for (size_t i = 0; i < used_; ++i)
      if (slots_[i].kernel == kernel) return &slots_[i].watched;
    if (used_ == N) return kernel;  // unreachable: the resolver holds at most N
    Slot& s = slots_[used_];
    s.kernel = kernel;
    s.watched = *kernel;
    s.watched.init = HookTable()[used_].init;
    s.watched.prepare = HookTable()[used_].prepare;
    ++used_;
    return &s.watched;
  }

  static const char* Name(const TFLMRegistration* r) {
    if (r->builtin_code == tflite::BuiltinOperator_CUSTOM) return r->custom_name;
    return tflite::EnumNameBuiltinOperator(static_cast<tflite::BuiltinOperator>(r->builtin_code));
  }

  template <size_t I>
  static void* InitAt(TfLiteContext* context, const char* data, size_t length) {
    const TFLMRegistration* k = slots_[I].kernel;
    espt_tflm_init_begins(setup_, Name(k));
    return k->init != nullptr ? k->init(context, data, length) : nullptr;
  }

  template <size_t I>
  static TfLiteStatus PrepareAt(TfLiteContext* context, TfLiteNode* node) {
    const TFLMRegistration* k = slots_[I].kernel;
    TfLiteStatus s = kTfLiteError;
    if (espt_tflm_prepare_begins(setup_, Name(k)))
      s = k->prepare != nullptr ? k->prepare(context, node) : kTfLiteOk;
    espt_tflm_prepare_ends(setup_, s == kTfLiteOk);
    return s;
  }

  template <size_t... I>
  static const Hooks* HookTable(std::index_sequence<I...>) {
    static const Hooks table[] = {{&InitAt<I>, &PrepareAt<I>}...};
    return table;
  }
  static const Hooks* HookTable() { return HookTable(std::make_index_sequence<N>()); }

  const tflite::MicroOpResolver& ops_;
  static espt_tflm_setup_t* setup_;
  static Slot slots_[N];
  static size_t used_;
};

template <size_t N>
espt_tflm_setup_t* OpWatch<N>::setup_ = nullptr;
template <size_t N>
typename OpWatch<N>::Slot OpWatch<N>::slots_[N];
template <size_t N>
size_t OpWatch<N>::used_ = 0;

}  // namespace espt

#endif
