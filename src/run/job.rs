//! The job protocol between the coordinator and its workers: a [`Job`] goes to a worker as one JSON
//! line on its stdin; [`WorkerMsg`]s come back as JSON lines prefixed by [`PREFIX`] on its stdout. A
//! job ends in exactly one [`Outcome`] per run. Both sides ([`super::coordinator`] and
//! [`super::worker`]) and the code that executes a job ([`super::exec`]) build on these types.

use crate::plan::{Plan, RunSpec};
use crate::platform::device::DeviceSpec;
use crate::store::RunRecord;
use crate::train::EpochStats;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// One unit of work sent to a worker.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Job {
    /// Index of the run in the plan (echoed back in messages).
    pub index: usize,
    pub run: RunSpec,
    /// The spec of the teacher this run distils from.
    pub teacher: Option<RunSpec>,
    /// A baseline's seed's teacher: not learned from, only measured against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<RunSpec>,
    pub sweep: crate::config::Sweep,
    pub results_root: PathBuf,
    pub device: DeviceSpec,
    /// Further logit students of the same seed trained together with `run` as one fused model
    /// (index in the plan, spec); empty when not fused.
    #[serde(default)]
    pub also: Vec<(usize, RunSpec)>,
    /// Pause every run of the job after this epoch (a halving search's rung); `None`: to the end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<u32>,
}

impl Job {
    /// The job for run `index` of `plan` (and, when `also` is not empty, the fused group it leads).
    pub fn new(
        plan: &Plan,
        sweep: &crate::config::Sweep,
        results_root: &Path,
        index: usize,
        also: &[usize],
        device: DeviceSpec,
    ) -> Job {
        let run = &plan.runs[index];
        Job {
            index,
            run: run.clone(),
            // a teacher_epoch cell's teacher is the snapshot (its cache key)
            teacher: plan.teacher_of(index),
            reference: run.reference.map(|t| plan.runs[t].clone()),
            sweep: sweep.clone(),
            results_root: results_root.to_path_buf(),
            device,
            also: also.iter().map(|&j| (j, plan.runs[j].clone())).collect(),
            until: None,
        }
    }

    /// Every run the job trains as (plan index, spec), the leader first.
    pub fn runs(&self) -> Vec<(usize, &RunSpec)> {
        std::iter::once((self.index, &self.run))
            .chain(self.also.iter().map(|(j, r)| (*j, r)))
            .collect()
    }

    /// Plan indices of every run the job trains, the leader first.
    pub fn members(&self) -> Vec<usize> {
        self.runs().into_iter().map(|(j, _)| j).collect()
    }
}

/// How one run of a job ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Outcome {
    /// A record was written (or could not be, which the record then says): done or failed.
    Recorded(Box<RunRecord>),
    /// Stopped by the coordinator (Ctrl-C, SIGTERM) before it finished: no record; it runs again later.
    Interrupted,
}

/// A worker's report to the coordinator.
#[derive(Debug, Serialize, Deserialize)]
pub enum WorkerMsg {
    Epoch {
        index: usize,
        of: u32,
        stats: EpochStats,
    },
    Finished {
        index: usize,
        outcome: Outcome,
    },
    /// The worker's CUDA context can no longer be trusted (an illegal address, ECC …): it exits after
    /// this message and the coordinator replaces it.
    Poisoned {
        reason: String,
    },
}

pub const PREFIX: &str = "KDSWEEP ";

/// Parses one line of a worker's stdout: `Some` for a protocol message, `None` for anything else a
/// library printed (passed through to stderr by the coordinator).
pub fn parse_line(line: &str) -> Option<WorkerMsg> {
    serde_json::from_str(line.strip_prefix(PREFIX)?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_other_output_is_not_a_message() {
        let line = format!(
            "{PREFIX}{}",
            serde_json::to_string(&WorkerMsg::Finished {
                index: 3,
                outcome: Outcome::Interrupted
            })
            .unwrap()
        );
        assert!(matches!(
            parse_line(&line),
            Some(WorkerMsg::Finished {
                index: 3,
                outcome: Outcome::Interrupted
            })
        ));
        assert!(parse_line("[W init.cpp] some libtorch warning").is_none());
        assert!(parse_line("KDSWEEP {not json").is_none());
    }
}
