//! Beside the pipeline: [`bench`](mod@bench) (`kd-sweep bench`, measurements against plain PyTorch) and
//! [`slurm`] (job arrays of `run --task` nodes for a cluster).

pub mod bench;
pub mod slurm;
