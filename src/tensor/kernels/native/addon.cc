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
#include <stddef.h>
#include <stdint.h>

#include <utility>

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

// WebAssembly's ToInt32 / u32 for the integer and address parameters, ToFloat32 for f32 ones, f64 as is: each
// argument is converted by the type of the kernel's parameter (kernels.h mirrors the wasm signatures).
template <class T>
T convert(double x);
template <>
int32_t convert<int32_t>(double x) {
  return static_cast<int32_t>(static_cast<uint32_t>(static_cast<int64_t>(x)));
}
template <>
uint32_t convert<uint32_t>(double x) {
  return static_cast<uint32_t>(static_cast<int64_t>(x));
}
template <>
float convert<float>(double x) {
  return static_cast<float>(x);
}
template <>
double convert<double>(double x) {
  return x;
}

template <class... P, size_t... I>
void invoke(void (*fn)(uint8_t*, P...), uint8_t* base, const double* a, std::index_sequence<I...>) {
  fn(base, convert<P>(a[I])...);
}

template <class... P>
constexpr size_t arity(void (*)(uint8_t*, P...)) {
  return sizeof...(P);
}

// The JavaScript function of one kernel: reads its numeric arguments, converts them as the wasm export would
// and calls the kernel on the bound memory (the callback data).
template <auto Fn>
napi_value Kernel(napi_env env, napi_callback_info info) {
  constexpr size_t n = arity(Fn);
  static_assert(n <= MAX_ARGS, "raise MAX_ARGS");
  double a[n];
  uint8_t* base;
  if (!readArgs(env, info, n, a, &base)) return nullptr;
  invoke(Fn, base, a, std::make_index_sequence<n>{});
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
  const Entry entries[] = {{"gemm", Kernel<llamarec::gemm>},
                           {"gemmShared", Kernel<llamarec::gemmShared>},
                           {"packB", Kernel<llamarec::packB>},
                           {"linearCrossEntropy", Kernel<llamarec::linearCrossEntropy>},
                           {"geluForward", Kernel<llamarec::geluForward>},
                           {"geluBackward", Kernel<llamarec::geluBackward>},
                           {"dropout", Kernel<llamarec::dropout>},
                           {"recurrenceForward", Kernel<llamarec::recurrenceForward>},
                           {"recurrenceBackward", Kernel<llamarec::recurrenceBackward>},
                           {"recurrenceLambdaGrad", Kernel<llamarec::recurrenceLambdaGrad>},
                           {"adamw", Kernel<llamarec::adamw>},
                           {"layerNormForward", Kernel<llamarec::layerNormForward>},
                           {"layerNormBackward", Kernel<llamarec::layerNormBackward>}};
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
