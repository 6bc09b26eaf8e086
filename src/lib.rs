//! kd-sweep: knowledge-distillation sweeps with libtorch.
//!
//! The modules follow the pipeline: [`config`] (sweep file → validated [`config::Sweep`]) →
//! [`plan`] (grid → runs with content keys) → [`search`] (which runs train how far) → [`device`] (what the machine offers, worker slots) →
//! [`schedule`] (the coordinator: worker processes, dispatch) → [`worker`] (job in, messages out) →
//! [`exec`] (one job) → [`train`] (models in [`model`], data in [`data`]) → [`store`] (records,
//! teacher cache, CSVs, manifest) → [`report`] (charts, summary). [`sweep`] strings them together;
//! [`cli`] is the command line.

pub mod augment;
pub mod bench;
pub mod checkpoint;
pub mod cli;
pub mod config;
pub mod data;
pub mod device;
pub mod exec;
pub mod fused;
pub mod model;
pub mod numerics;
pub mod optim;
pub mod plan;
pub mod progress;
pub mod report;
pub mod rng;
pub mod schedule;
pub mod script;
pub mod search;
pub mod slurm;
pub mod status;
pub mod store;
pub mod sweep;
pub mod torch_ext;
pub mod train;
pub mod worker;

/// The first non-empty line of a message, trimmed: libtorch's errors (and tch's panics with them)
/// carry a C++ backtrace after the line that says what happened.
pub fn first_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
        .to_string()
}
