// Node-API glue for the native kernels (kernels.cc). Compiled without -mavx2 so that loading the addon and
// asking `supported` is safe on any x86-64 CPU; the kernels are only called after that check.
//
// exports.supported: true when this CPU has AVX2 and FMA.
// exports.bind(view): `view` is a typed array over a shared WebAssembly.Memory's buffer; returns an object with
//   gemm, gemmShared, packB, linearCrossEntropy, geluForward, geluBackward, dropout, the recurrence kernels, adamw and layer norm taking the same arguments as the wasm exports of those
//   names, addresses being byte offsets into that memory. A shared memory is reserved at its maximum size, so
//   its base address never moves (memory.grow keeps it; every thread sees the same one).
// exports.address(view): the address of a typed array's first byte (for tests).
#include <node_api.h>
#include <stdint.h>

#include "kernels.h"

namespace {

constexpr size_t MAX_ARGS = 24;

bool cpuSupported() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}

// Reads `need` numeric arguments into out[] and the bound memory base into *base; throws on a mismatch.
bool readArgs(napi_env env, napi_callback_info info, size_t need, double* out, uint8_t** base) {
  size_t argc = MAX_ARGS;
  napi_value argv[MAX_ARGS];
  void* data = nullptr;
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, &data) != napi_ok) return false;
  if (argc < need) {
    napi_throw_type_error(env, nullptr, "llamarec native kernels: too few arguments");
    return false;
  }
  for (size_t i = 0; i < need; i++) {
    if (napi_get_value_double(env, argv[i], &out[i]) != napi_ok) {
      napi_throw_type_error(env, nullptr, "llamarec native kernels: arguments must be numbers");
      return false;
    }
  }
  *base = static_cast<uint8_t*>(data);
  return true;
}

// WebAssembly's ToInt32 / u32 for the integer and address parameters; ToFloat32 for f32 ones.
inline int32_t i32(double x) { return static_cast<int32_t>(static_cast<uint32_t>(static_cast<int64_t>(x))); }
inline uint32_t u32(double x) { return static_cast<uint32_t>(static_cast<int64_t>(x)); }
inline float f32(double x) { return static_cast<float>(x); }

napi_value Gemm(napi_env env, napi_callback_info info) {
  double a[16];
  uint8_t* base;
  if (!readArgs(env, info, 16, a, &base)) return nullptr;
  llamarec::gemm(base, i32(a[0]), i32(a[1]), i32(a[2]), i32(a[3]), i32(a[4]), f32(a[5]), u32(a[6]), u32(a[7]),
                 f32(a[8]), u32(a[9]), i32(a[10]), i32(a[11]), i32(a[12]), i32(a[13]), u32(a[14]), u32(a[15]));
  return nullptr;
}

napi_value GemmShared(napi_env env, napi_callback_info info) {
  double a[15];
  uint8_t* base;
  if (!readArgs(env, info, 15, a, &base)) return nullptr;
  llamarec::gemmShared(base, i32(a[0]), i32(a[1]), i32(a[2]), i32(a[3]), i32(a[4]), f32(a[5]), u32(a[6]),
                       u32(a[7]), f32(a[8]), u32(a[9]), i32(a[10]), i32(a[11]), u32(a[12]), u32(a[13]),
                       u32(a[14]));
  return nullptr;
}

napi_value PackB(napi_env env, napi_callback_info info) {
  double a[9];
  uint8_t* base;
  if (!readArgs(env, info, 9, a, &base)) return nullptr;
  llamarec::packB(base, i32(a[0]), u32(a[1]), i32(a[2]), i32(a[3]), i32(a[4]), i32(a[5]), i32(a[6]), i32(a[7]),
                  u32(a[8]));
  return nullptr;
}

napi_value LinearCrossEntropy(napi_env env, napi_callback_info info) {
  double a[21];
  uint8_t* base;
  if (!readArgs(env, info, 21, a, &base)) return nullptr;
  llamarec::linearCrossEntropy(base, u32(a[0]), i32(a[1]), i32(a[2]), u32(a[3]), u32(a[4]), u32(a[5]), i32(a[6]),
                               i32(a[7]), u32(a[8]), u32(a[9]), f32(a[10]), u32(a[11]), u32(a[12]), u32(a[13]),
                               u32(a[14]), i32(a[15]), u32(a[16]), u32(a[17]), i32(a[18]), u32(a[19]),
                               u32(a[20]));
  return nullptr;
}

napi_value GeluForward(napi_env env, napi_callback_info info) {
  double a[5];
  uint8_t* base;
  if (!readArgs(env, info, 5, a, &base)) return nullptr;
  llamarec::geluForward(base, u32(a[0]), u32(a[1]), i32(a[2]), i32(a[3]), u32(a[4]));
  return nullptr;
}

napi_value GeluBackward(napi_env env, napi_callback_info info) {
  double a[6];
  uint8_t* base;
  if (!readArgs(env, info, 6, a, &base)) return nullptr;
  llamarec::geluBackward(base, u32(a[0]), u32(a[1]), u32(a[2]), i32(a[3]), i32(a[4]), u32(a[5]));
  return nullptr;
}

napi_value Dropout(napi_env env, napi_callback_info info) {
  double a[8];
  uint8_t* base;
  if (!readArgs(env, info, 8, a, &base)) return nullptr;
  // scale is an f64 parameter of the wasm export: passed through unrounded.
  llamarec::dropout(base, u32(a[0]), u32(a[1]), u32(a[2]), i32(a[3]), u32(a[4]), a[5], i32(a[6]), u32(a[7]));
  return nullptr;
}

napi_value RecurrenceForward(napi_env env, napi_callback_info info) {
  double a[10];
  uint8_t* base;
  if (!readArgs(env, info, 10, a, &base)) return nullptr;
  llamarec::recurrenceForward(base, u32(a[0]), u32(a[1]), u32(a[2]), u32(a[3]), u32(a[4]), u32(a[5]), i32(a[6]),
                              i32(a[7]), i32(a[8]), u32(a[9]));
  return nullptr;
}

napi_value RecurrenceBackward(napi_env env, napi_callback_info info) {
  double a[10];
  uint8_t* base;
  if (!readArgs(env, info, 10, a, &base)) return nullptr;
  llamarec::recurrenceBackward(base, u32(a[0]), u32(a[1]), u32(a[2]), u32(a[3]), u32(a[4]), u32(a[5]), i32(a[6]),
                               i32(a[7]), i32(a[8]), u32(a[9]));
  return nullptr;
}

napi_value RecurrenceLambdaGrad(napi_env env, napi_callback_info info) {
  double a[9];
  uint8_t* base;
  if (!readArgs(env, info, 9, a, &base)) return nullptr;
  llamarec::recurrenceLambdaGrad(base, u32(a[0]), u32(a[1]), u32(a[2]), u32(a[3]), u32(a[4]), u32(a[5]),
                                 i32(a[6]), i32(a[7]), u32(a[8]));
  return nullptr;
}

napi_value Adamw(napi_env env, napi_callback_info info) {
  double a[6];
  uint8_t* base;
  if (!readArgs(env, info, 6, a, &base)) return nullptr;
  // f64 parameters of the wasm export: passed through unrounded.
  llamarec::adamw(base, u32(a[0]), i32(a[1]), a[2], a[3], a[4], a[5]);
  return nullptr;
}

napi_value LayerNormForward(napi_env env, napi_callback_info info) {
  double a[11];
  uint8_t* base;
  if (!readArgs(env, info, 11, a, &base)) return nullptr;
  llamarec::layerNormForward(base, u32(a[0]), u32(a[1]), u32(a[2]), i32(a[3]), f32(a[4]), u32(a[5]), u32(a[6]),
                             u32(a[7]), i32(a[8]), i32(a[9]), u32(a[10]));
  return nullptr;
}

napi_value LayerNormBackward(napi_env env, napi_callback_info info) {
  double a[14];
  uint8_t* base;
  if (!readArgs(env, info, 14, a, &base)) return nullptr;
  llamarec::layerNormBackward(base, u32(a[0]), u32(a[1]), u32(a[2]), u32(a[3]), u32(a[4]), i32(a[5]), u32(a[6]),
                              u32(a[7]), u32(a[8]), i32(a[9]), i32(a[10]), u32(a[11]), u32(a[12]), u32(a[13]));
  return nullptr;
}

// The first byte of the memory a typed array lives in (its data pointer minus its byte offset).
bool viewBase(napi_env env, napi_value view, uint8_t** base) {
  bool isTyped = false;
  if (napi_is_typedarray(env, view, &isTyped) != napi_ok || !isTyped) {
    napi_throw_type_error(env, nullptr, "llamarec native kernels: expected a typed array");
    return false;
  }
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  napi_value buffer;
  size_t offset = 0;
  if (napi_get_typedarray_info(env, view, &type, &length, &data, &buffer, &offset) != napi_ok) return false;
  *base = static_cast<uint8_t*>(data) - offset;
  return true;
}

napi_value Bind(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok) return nullptr;
  if (argc < 1) {
    napi_throw_type_error(env, nullptr, "llamarec native kernels: bind(view) needs a view of the memory");
    return nullptr;
  }
  uint8_t* base;
  if (!viewBase(env, argv[0], &base)) return nullptr;
  if (!cpuSupported()) {
    napi_throw_error(env, nullptr, "llamarec native kernels: this CPU lacks AVX2 or FMA");
    return nullptr;
  }
  struct Entry {
    const char* name;
    napi_callback cb;
  };
  const Entry entries[] = {{"gemm", Gemm},
                           {"gemmShared", GemmShared},
                           {"packB", PackB},
                           {"linearCrossEntropy", LinearCrossEntropy},
                           {"geluForward", GeluForward},
                           {"geluBackward", GeluBackward},
                           {"dropout", Dropout},
                           {"recurrenceForward", RecurrenceForward},
                           {"recurrenceBackward", RecurrenceBackward},
                           {"recurrenceLambdaGrad", RecurrenceLambdaGrad},
                           {"adamw", Adamw},
                           {"layerNormForward", LayerNormForward},
                           {"layerNormBackward", LayerNormBackward}};
  napi_value obj;
  if (napi_create_object(env, &obj) != napi_ok) return nullptr;
  for (const Entry& e : entries) {
    napi_value fn;
    if (napi_create_function(env, e.name, NAPI_AUTO_LENGTH, e.cb, base, &fn) != napi_ok) return nullptr;
    if (napi_set_named_property(env, obj, e.name, fn) != napi_ok) return nullptr;
  }
  return obj;
}

napi_value Address(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok || argc < 1) return nullptr;
  uint8_t* base;
  if (!viewBase(env, argv[0], &base)) return nullptr;
  napi_value out;
  napi_create_double(env, static_cast<double>(reinterpret_cast<uintptr_t>(base)), &out);
  return out;
}

}  // namespace

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "bind", NAPI_AUTO_LENGTH, Bind, nullptr, &fn);
  napi_set_named_property(env, exports, "bind", fn);
  napi_create_function(env, "address", NAPI_AUTO_LENGTH, Address, nullptr, &fn);
  napi_set_named_property(env, exports, "address", fn);
  napi_value supported;
  napi_get_boolean(env, cpuSupported(), &supported);
  napi_set_named_property(env, exports, "supported", supported);
  return exports;
}
