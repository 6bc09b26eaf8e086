//! Progress files: what a run in flight last reported, for `kd-sweep status` to show and
//! `kd-sweep clean` to tell a live run from a gone one.

use crate::files::{host, unix_now, writer_alive};
use crate::plan::RunSpec;
use crate::train::EpochStats;
use serde::{Deserialize, Serialize};

/// What a run in flight last reported: `<sweep>/progress/<record file name>`, written by whoever runs
/// it (the coordinator for its workers, or `run --task`) when it starts and after every epoch, and
/// removed when its record is written. `kd-sweep status` reads these; nothing else depends on them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InFlight {
    pub run_id: String,
    pub key: String,
    /// Epochs finished so far (0: started).
    pub epoch: u32,
    pub of: u32,
    pub val_acc: Option<f64>,
    pub device: String,
    pub host: String,
    pub pid: u32,
    pub started_at: u64,
    pub updated_at: u64,
}

impl InFlight {
    pub fn start(run: &RunSpec, of: u32, device: &str) -> InFlight {
        let now = unix_now();
        InFlight {
            run_id: run.id.clone(),
            key: run.key.clone(),
            epoch: 0,
            of,
            val_acc: None,
            device: device.to_string(),
            host: host(),
            pid: std::process::id(),
            started_at: now,
            updated_at: now,
        }
    }

    /// What a run reports after an epoch (`stats.seconds` into it).
    pub fn at_epoch(run: &RunSpec, of: u32, device: &str, stats: &EpochStats) -> InFlight {
        let mut p = InFlight::start(run, of, device);
        p.epoch = stats.epoch;
        p.val_acc = Some(stats.val_acc);
        p.started_at = p.updated_at.saturating_sub(stats.seconds as u64);
        p
    }
}

impl InFlight {
    /// A progress file whose writer is this long silent is taken for gone when it ran on another
    /// host (on this one, its pid tells).
    pub const STALE_SECS: u64 = 30 * 60;

    /// Whether its writer is still at it at `now` (seconds since the Unix epoch).
    pub fn alive(&self, now: u64) -> bool {
        writer_alive(&self.host, self.pid)
            .unwrap_or_else(|| now.saturating_sub(self.updated_at) < Self::STALE_SECS)
    }
}
