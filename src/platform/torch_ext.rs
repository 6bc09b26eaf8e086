//! The libtorch switches kd-sweep needs that tch 0.24 does not expose, reached through a small C++
//! shim (`csrc/shim.cpp`, compiled by build.rs against the headers of the libtorch in use): the CPU
//! kernel level ATen chose in this process, PyTorch's deterministic-algorithms switch with cuDNN's,
//! cuDNN's benchmark search, and bf16 autocast on the CPU as well as CUDA (tch's `autocast` is
//! CUDA-only and float16).

use std::os::raw::{c_char, c_int};

extern "C" {
    fn kd_cpu_capability(buf: *mut c_char, len: c_int) -> c_int;
    fn kd_set_deterministic(on: c_int) -> c_int;
    fn kd_deterministic() -> c_int;
    fn kd_set_cudnn_benchmark(on: c_int) -> c_int;
    fn kd_cudnn_benchmark() -> c_int;
    fn kd_set_mkldnn(on: c_int) -> c_int;
    fn kd_autocast_enter(cuda: c_int) -> c_int;
    fn kd_autocast_exit(cuda: c_int, prev: c_int) -> c_int;
}

/// ATen's CPU kernel level in this process ("AVX2", "AVX512", "DEFAULT" …: what
/// `torch.backends.cpu.get_cpu_capability()` prints). Fixed at its first use, from the machine and
/// `ATEN_CPU_CAPABILITY`.
pub fn cpu_capability() -> Option<String> {
    let mut buf = [0 as c_char; 64];
    // SAFETY: the shim writes at most `len` bytes, NUL-terminated, into the buffer it is given.
    let n = unsafe { kd_cpu_capability(buf.as_mut_ptr(), buf.len() as c_int) };
    if n < 0 {
        return None;
    }
    // SAFETY: NUL-terminated by the shim within the buffer.
    let s = unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) };
    Some(s.to_string_lossy().into_owned())
}

/// Whether this CPU computes bf16 natively (AVX512-BF16 or AMX); elsewhere libtorch emulates bf16
/// arithmetic with float32 instructions.
pub fn cpu_has_bf16() -> bool {
    (super::cpuinfo().lines())
        .filter(|l| l.starts_with("flags"))
        .any(|l| {
            l.split_whitespace()
                .any(|f| f == "avx512_bf16" || f == "amx_bf16")
        })
}

/// `torch.use_deterministic_algorithms(on)` and `torch.backends.cudnn.deterministic = on`. With it
/// on, cuDNN's benchmark search must be off too ([`set_cudnn_benchmark`]), as PyTorch's
/// reproducibility notes say.
pub fn set_deterministic(on: bool) -> Result<(), String> {
    // SAFETY: plain C call; the shim catches every C++ exception.
    match unsafe { kd_set_deterministic(c_int::from(on)) } {
        0 => Ok(()),
        _ => Err("libtorch refused to change its deterministic-algorithms switch".into()),
    }
}

/// (deterministic algorithms, cuDNN deterministic) as libtorch has them now.
pub fn deterministic() -> (bool, bool) {
    // SAFETY: plain C call.
    let v = unsafe { kd_deterministic() };
    (v >= 0 && v & 1 != 0, v >= 0 && v & 2 != 0)
}

/// `torch.backends.cudnn.benchmark = on`: cuDNN times its algorithms for each new convolution shape
/// and keeps the fastest (PyTorch's default is off; kd-sweep turns it on for GPU runs that do not
/// ask for determinism, since a sweep repeats the same shapes thousands of times).
pub fn set_cudnn_benchmark(on: bool) {
    // SAFETY: plain C call; cannot fail short of a broken libtorch.
    unsafe { kd_set_cudnn_benchmark(c_int::from(on)) };
}

/// `torch.backends.mkldnn.enabled = on`: whether ATen may run oneDNN kernels (convolutions).
pub fn set_mkldnn(on: bool) {
    // SAFETY: plain C call; cannot fail short of a broken libtorch.
    unsafe { kd_set_mkldnn(c_int::from(on)) };
}

/// Whether cuDNN's benchmark search is on.
pub fn cudnn_benchmark() -> bool {
    // SAFETY: plain C call.
    unsafe { kd_cudnn_benchmark() == 1 }
}

/// Runs `f` under `torch.autocast(device_type, dtype=torch.bfloat16)` on the CPU (`cuda` false) or
/// CUDA: matrix products and convolutions in bf16, reductions, softmax and losses in float32 (the
/// autocast op lists of libtorch itself). Leaves the previous state as it was, also when `f` panics.
pub fn autocast_bf16<T>(cuda: bool, f: impl FnOnce() -> T) -> T {
    struct Region {
        cuda: c_int,
        prev: c_int,
    }
    impl Drop for Region {
        fn drop(&mut self) {
            // SAFETY: leaves exactly the region entered below.
            unsafe { kd_autocast_exit(self.cuda, self.prev) };
        }
    }
    let cuda = c_int::from(cuda);
    // SAFETY: plain C call; the shim catches every C++ exception.
    let prev = unsafe { kd_autocast_enter(cuda) };
    if prev < 0 {
        return f();
    }
    let _region = Region { cuda, prev };
    f()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Kind, Tensor};

    #[test]
    fn the_cpu_capability_is_reported() {
        let cap = cpu_capability().expect("the shim answers");
        assert!(
            ["DEFAULT", "AVX2", "AVX512", "ZVECTOR", "VSX", "NEON", "SVE256"]
                .iter()
                .any(|c| cap.starts_with(c)),
            "{cap}"
        );
    }

    #[test]
    fn autocast_runs_matmuls_in_bf16_and_restores_the_state() {
        let a = Tensor::ones([4, 4], (Kind::Float, tch::Device::Cpu));
        let inside = autocast_bf16(false, || a.matmul(&a));
        assert_eq!(inside.kind(), Kind::BFloat16);
        // an op on neither list keeps its input's type
        let relu = autocast_bf16(false, || a.relu());
        assert_eq!(relu.kind(), Kind::Float);
        assert_eq!(a.matmul(&a).kind(), Kind::Float, "autocast is off again");
    }

    #[test]
    fn the_switches_read_back() {
        // the cuDNN flags are plain context flags, settable without a GPU
        set_cudnn_benchmark(true);
        assert!(cudnn_benchmark());
        set_cudnn_benchmark(false);
        assert!(!cudnn_benchmark());
    }
}
