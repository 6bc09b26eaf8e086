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

/// The message of a panic's payload: libtorch errors arrive as panics from tch, as a `String`.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown panic".into())
}
