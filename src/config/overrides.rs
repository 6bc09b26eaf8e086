//! Command-line settings that take the place of sweep-file keys, validated by the same conversions.

use super::{load, ConfigError, ConfigErrors, Devices, Sweep};
use std::path::Path;

/// Command-line settings that replace sweep-file keys, as written; [`load_with`] validates them with
/// the same conversions as the keys they replace.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--devices`, in place of `[schedule] devices`.
    pub devices: Option<String>,
    /// `--workers-per-device`, in place of `[schedule] workers_per_device`.
    pub workers_per_device: Option<i64>,
    /// `--teacher-threads`, in place of `[teacher] threads` (SLURM tasks get the submitting
    /// machine's value this way, so that their keys are the plan's).
    pub teacher_threads: Option<i64>,
    /// `--numerics`, in place of `[schedule] numerics`.
    pub numerics: Option<String>,
    /// `--deterministic`, in place of `[schedule] deterministic = true`.
    pub deterministic: bool,
    /// `--cuda-graphs`, in place of `[schedule] cuda_graphs = true`.
    pub cuda_graphs: bool,
}

impl Overrides {
    pub(super) fn apply(&self, sweep: &mut Sweep) -> Result<(), ConfigError> {
        let flag = |name: &str, message: String| ConfigError {
            file: name.into(),
            at: None,
            key: None,
            message,
        };
        if let Some(d) = &self.devices {
            sweep.schedule.devices = Devices::parse(d).map_err(|m| flag("--devices", m))?;
        }
        // the limits and words of the keys they replace
        let count =
            |name: &str, v: i64, what: &str, most| match super::validate::outside(v, what, most) {
                Some(m) => Err(flag(name, m)),
                None => Ok(v as u32),
            };
        if let Some(w) = self.workers_per_device {
            let what = "runs at once on each device";
            let most = super::validate::MOST_WORKERS_PER_DEVICE;
            sweep.schedule.workers_per_device = Some(count("--workers-per-device", w, what, most)?);
        }
        if let Some(t) = self.teacher_threads {
            let what = "intra-op threads of a run";
            sweep.teacher.threads =
                count("--teacher-threads", t, what, super::validate::MOST_THREADS)?;
        }
        if let Some(n) = &self.numerics {
            sweep.schedule.numerics =
                crate::platform::numerics::Numerics::parse(n).ok_or_else(|| {
                    flag(
                        "--numerics",
                        format!(
                            "\"{n}\" is not a numerics mode: use {}",
                            crate::platform::numerics::Numerics::NAMES
                        ),
                    )
                })?;
        }
        if self.deterministic {
            sweep.schedule.deterministic = true;
        }
        if self.cuda_graphs {
            sweep.schedule.cuda_graphs = true;
        }
        Ok(())
    }
}

/// [`load`], then the command line's overrides, each validated.
pub fn load_with(path: &Path, overrides: &Overrides) -> Result<Sweep, ConfigErrors> {
    let mut sweep = load(path)?;
    overrides.apply(&mut sweep)?;
    Ok(sweep)
}
