//! What this machine offers kd-sweep and how libtorch is set up in each process: the devices
//! ([`device`]: names, the CUDA probe, resolution, worker slots; [`machine`]: the probe as
//! `kd-sweep devices` shows it), which CPU kernels compute the
//! numbers ([`numerics`]: portable or native), and the libtorch switches tch does not expose
//! ([`torch_ext`]: deterministic algorithms, cuDNN's benchmark search, bf16 autocast, the CPU
//! capability in use; [`cuda_graph`]: CUDA graphs and side streams). Everything above builds on these; they import nothing of kd-sweep.

pub mod cuda_graph;
pub mod device;
pub mod machine;
pub mod numerics;
pub mod torch_ext;

/// This machine's `/proc/cpuinfo`, read once (empty where there is none).
pub fn cpuinfo() -> &'static str {
    static INFO: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    INFO.get_or_init(|| std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default())
}

/// The message of a panic's payload: libtorch errors arrive as panics from tch, as a `String`.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown panic".into())
}
