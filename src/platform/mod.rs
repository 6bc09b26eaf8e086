//! What this machine offers kd-sweep and how libtorch is set up in each process: the devices
//! ([`device`]: names, the CUDA probe, resolution, worker slots; [`machine`]: the probe as
//! `kd-sweep devices` shows it), which CPU kernels compute the
//! numbers ([`numerics`]: portable or native), and the libtorch switches tch does not expose
//! ([`torch_ext`]: deterministic algorithms, cuDNN's benchmark search, bf16 autocast, the CPU
//! capability in use). Everything above builds on these; they import nothing of kd-sweep.

pub mod device;
pub mod machine;
pub mod numerics;
pub mod torch_ext;
