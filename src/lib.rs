//! kd-sweep: knowledge-distillation sweeps with libtorch.
//!
//! The folders, from the bottom up; each imports only folders above it in this list (no import
//! cycles):
//!
//! - [`platform`], [`util`], [`files`], [`rng`], [`pickle`]: what the machine offers and how libtorch
//!   is set up (devices, numerics modes, the switches tch lacks); small shared helpers; files written
//!   whole or not at all, and the temporaries killed writers leave; the random streams; an inert
//!   unpickler (CIFAR's python release, PyTorch's saved state dicts).
//! - [`data`]: the datasets in their real formats, and the tensors a run trains on.
//! - [`model`]: the networks (the zoo and users' TorchScript files).
//! - [`distill`]: the distillation methods (one entry each), the typed grid coordinate, the losses.
//! - [`record`]: a run's record (what reading results needs, without the training code).
//! - [`train`]: one run's training: settings, the one epoch driver (plain and fused), optimizers,
//!   augmentation, the training state a checkpoint keeps.
//! - [`config`]: the sweep file, raw and validated into a [`config::Sweep`].
//! - [`plan`]: the grid as runs with content keys, and the search that decides which train how far.
//! - [`store`]: what lasts: records, the teacher cache, the manifest, locks.
//! - [`report`]: what a reader sees: CSVs, summary, charts, the page, comparisons, status.
//! - [`run`]: a sweep end to end: devices and workers, the job protocol, executing a job, writing
//!   the outputs through [`report`].
//! - [`tools`]: the benchmark and the SLURM front end.
//!
//! [`cli`] is the command line; `main.rs` only hands over its exit code.

/// The standard printing macros, shadowed crate-wide by ones that never panic: std's panic when
/// their stream's reader has gone (`kd-sweep run … 2>&1 | head`, a closed terminal), which would end
/// a sweep with a panic and exit 101. A line that cannot be written is lost, the stream is marked
/// closed ([`util::output_closed`]), and the coordinator then stops as after a first Ctrl-C: running
/// runs checkpoint, and the sweep resumes when run again.
macro_rules! println {
    ($($arg:tt)*) => { $crate::util::write_out(false, format_args!("{}\n", format_args!($($arg)*))) };
}
macro_rules! print {
    ($($arg:tt)*) => { $crate::util::write_out(false, format_args!($($arg)*)) };
}
macro_rules! eprintln {
    ($($arg:tt)*) => { $crate::util::write_out(true, format_args!("{}\n", format_args!($($arg)*))) };
}
macro_rules! eprint {
    ($($arg:tt)*) => { $crate::util::write_out(true, format_args!($($arg)*)) };
}

pub mod cli;
pub mod config;
pub mod data;
pub mod distill;
pub mod files;
pub mod model;
pub mod pickle;
pub mod plan;
pub mod platform;
pub mod record;
pub mod report;
pub mod rng;
pub mod run;
pub mod store;
pub mod tools;
pub mod train;
pub mod util;
