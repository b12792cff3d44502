// The tensor arena's allocator, watched: TFLite-Micro's SingleArenaBufferAllocator that
// tells the set-up record (tflm_status.h) of every request it refuses, and by how much.
//
// Every byte TFLite-Micro takes from the arena goes through three of its virtual calls
// (tensorflow/lite/micro/micro_allocator.cc, arena_allocator/single_arena_buffer_allocator.cc,
// the same files in upstream TFLite-Micro and in the copy esp-tflite-micro 1.4.0 vendors):
//   AllocatePersistentBuffer  the tail: TFLite-Micro's structures, kernels' op data and the
//                             persistent buffers they ask for in Init or Prepare
//   ResizeBuffer              the head: scratch-buffer requests while preparing, then the
//                             memory plan (activations and scratch buffers) at the end
//   AllocateTemp              temporary tensors while a kernel prepares
// Each refuses only when the arena has no room, except ResizeBuffer, which also refuses
// a call out of order (TFLite-Micro's own bug, not a short arena): that one is not
// counted. TFLite-Micro's RecordingSingleArenaBufferAllocator watches it the same way.
#ifndef ESPT_ARENA_WATCH_H
#define ESPT_ARENA_WATCH_H

#include <cstddef>
#include <cstdint>

#include "tensorflow/lite/micro/arena_allocator/single_arena_buffer_allocator.h"
#include "tflm_status.h"

namespace espt {

class ArenaWatch : public tflite::SingleArenaBufferAllocator {
 public:
  ArenaWatch(uint8_t* arena, size_t bytes, espt_tflm_setup_t* setup)
      : SingleArenaBufferAllocator(arena, bytes), setup_(setup) {}

  uint8_t* AllocatePersistentBuffer(size_t size, size_t alignment) override {
    uint8_t* p = SingleArenaBufferAllocator::AllocatePersistentBuffer(size, alignment);
    if (p == nullptr) {  // it would start below the head: short by that much
      uintptr_t start = Down(Addr(tail()) - size, alignment);
      Refused(Addr(head()) - start);
    }
    return p;
  }

  TfLiteStatus ResizeBuffer(uint8_t* buffer, size_t size, size_t alignment) override {
    TfLiteStatus s = SingleArenaBufferAllocator::ResizeBuffer(buffer, size, alignment);
    if (s != kTfLiteOk) {  // the head buffer starts at the arena's start and ends at most at the tail
      uintptr_t room = Addr(tail()) - Up(Addr(GetOverlayMemoryAddress()), alignment);
      if (size > room) Refused(size - room);
    }
    return s;
  }

  uint8_t* AllocateTemp(size_t size, size_t alignment) override {
    uint8_t* p = SingleArenaBufferAllocator::AllocateTemp(size, alignment);
    if (p == nullptr) {  // temporaries follow the head's data, up to the tail
      uintptr_t temp = Addr(GetOverlayMemoryAddress()) + GetNonPersistentUsedBytes();
      Refused(size - (Addr(tail()) - Up(temp, alignment)));
    }
    return p;
  }

 private:
  static uintptr_t Addr(const uint8_t* p) { return reinterpret_cast<uintptr_t>(p); }
  static uintptr_t Up(uintptr_t a, size_t align) { return align > 1 ? a + (align - a % align) % align : a; }
  static uintptr_t Down(uintptr_t a, size_t align) { return align > 1 ? a - a % align : a; }
  void Refused(uintptr_t short_bytes) {
    espt_tflm_arena_refused(setup_, short_bytes > UINT32_MAX ? UINT32_MAX : static_cast<uint32_t>(short_bytes));
  }

  espt_tflm_setup_t* setup_;
};

}  // namespace espt

#endif
