// The few libtorch switches kd-sweep needs that tch 0.24 does not expose, as plain C functions.
// Compiled by build.rs against the headers of the libtorch in use; every function catches what
// libtorch throws, so no C++ exception crosses into Rust.
//
// - kd_cpu_capability: ATen's CPU kernel level in this process (`at::get_cpu_capability()`, what
//   `torch.backends.cpu.get_cpu_capability()` prints), so a worker can prove its numerics mode took
//   effect.
// - kd_set_deterministic: PyTorch's `torch.use_deterministic_algorithms(b)` plus
//   `torch.backends.cudnn.deterministic = b`.
// - kd_set_cudnn_benchmark: `torch.backends.cudnn.benchmark = b` (tch has it too; kept beside the
//   deterministic switch it must agree with).
// - kd_autocast_enter / kd_autocast_exit: `torch.autocast(device_type, dtype=torch.bfloat16)`'s
//   __enter__ and __exit__ for the CPU or CUDA (tch's own `autocast` is CUDA-only and fp16).
#include <ATen/Context.h>
#include <ATen/Version.h>
#include <ATen/autocast_mode.h>

#include <cstring>
#include <string>

namespace {
at::DeviceType device_type(int cuda) { return cuda ? at::kCUDA : at::kCPU; }
}  // namespace

extern "C" {

// Writes ATen's CPU capability ("AVX2", "AVX512", "DEFAULT", ...) into buf (NUL-terminated) and
// returns its length, or -1.
int kd_cpu_capability(char* buf, int len) {
  try {
    std::string s = at::get_cpu_capability();
    if (len <= 0) return -1;
    std::strncpy(buf, s.c_str(), static_cast<size_t>(len) - 1);
    buf[len - 1] = '\0';
    return static_cast<int>(s.size());
  } catch (...) {
    return -1;
  }
}

int kd_set_deterministic(int on) {
  try {
    auto& ctx = at::globalContext();
    ctx.setDeterministicCuDNN(on != 0);
    ctx.setDeterministicAlgorithms(on != 0, /*warn_only=*/false);
    return 0;
  } catch (...) {
    return -1;
  }
}

int kd_deterministic() {
  try {
    auto& ctx = at::globalContext();
    return (ctx.deterministicAlgorithms() ? 1 : 0) + (ctx.deterministicCuDNN() ? 2 : 0);
  } catch (...) {
    return -1;
  }
}

int kd_set_cudnn_benchmark(int on) {
  try {
    at::globalContext().setBenchmarkCuDNN(on != 0);
    return 0;
  } catch (...) {
    return -1;
  }
}

// Whether ATen may use oneDNN (MKL-DNN) kernels (`torch.backends.mkldnn.enabled = b`).
int kd_set_mkldnn(int on) {
  try {
    at::globalContext().setUserEnabledMkldnn(on != 0);
    return 0;
  } catch (...) {
    return -1;
  }
}

int kd_cudnn_benchmark() {
  try {
    return at::globalContext().benchmarkCuDNN() ? 1 : 0;
  } catch (...) {
    return -1;
  }
}

// Enters bf16 autocast on the CPU (cuda = 0) or CUDA (cuda = 1). Returns the previous state
// (bit 0: enabled, bits 8..: the previous dtype as an int) for kd_autocast_exit, or -1.
int kd_autocast_enter(int cuda) {
  try {
    auto dt = device_type(cuda);
    int prev = (at::autocast::is_autocast_enabled(dt) ? 1 : 0) |
               (static_cast<int>(at::autocast::get_autocast_dtype(dt)) << 8);
    at::autocast::set_autocast_enabled(dt, true);
    at::autocast::set_autocast_dtype(dt, at::kBFloat16);
    at::autocast::increment_nesting();
    return prev;
  } catch (...) {
    return -1;
  }
}

// Leaves what kd_autocast_enter entered: the weight-cast cache is cleared when the outermost
// region ends (as torch.autocast.__exit__ does), and the previous state comes back.
int kd_autocast_exit(int cuda, int prev) {
  try {
    auto dt = device_type(cuda);
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    at::autocast::set_autocast_enabled(dt, (prev & 1) != 0);
    at::autocast::set_autocast_dtype(dt, static_cast<at::ScalarType>(prev >> 8));
    return 0;
  } catch (...) {
    return -1;
  }
}
}
