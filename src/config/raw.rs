//! The sweep file as deserialized: plain structs mirroring the TOML, unknown keys refused
//! (`deny_unknown_fields`), every value with its place in the file (`Spanned`) for errors. One
//! struct serves [teacher] and [student]; what only students take is checked, not duplicated.

use serde::Deserialize;
use toml::Spanned;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSweep {
    pub(super) name: Spanned<String>,
    pub(super) seeds: Spanned<Vec<Spanned<i64>>>,
    pub(super) data: RawData,
    pub(super) teacher: RawPhase,
    pub(super) student: RawPhase,
    pub(super) grid: RawGrid,
    #[serde(default)]
    pub(super) schedule: Option<RawSchedule>,
    #[serde(default)]
    pub(super) search: Option<RawSearch>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSearch {
    pub(super) strategy: Option<Spanned<String>>,
    pub(super) min_epochs: Option<Spanned<i64>>,
    pub(super) eta: Option<Spanned<i64>>,
    pub(super) confirm_seeds: Option<Spanned<Vec<Spanned<i64>>>>,
    pub(super) confirm_top: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawData {
    pub(super) dataset: Spanned<String>,
    pub(super) path: Option<Spanned<String>>,
    pub(super) validation: Option<Spanned<i64>>,
    pub(super) train_subset: Option<Spanned<i64>>,
    pub(super) test_subset: Option<Spanned<i64>>,
    pub(super) split_seed: Option<Spanned<i64>>,
    pub(super) mean: Option<Spanned<Vec<Spanned<f64>>>>,
    pub(super) std: Option<Spanned<Vec<Spanned<f64>>>>,
    /// A folder dataset's resize: N or [H, W].
    pub(super) image_size: Option<Spanned<toml::Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPhase {
    pub(super) epochs: Spanned<i64>,
    pub(super) batch_size: Spanned<i64>,
    pub(super) lr: Spanned<f64>,
    pub(super) init: Option<Spanned<String>>,
    pub(super) threads: Option<Spanned<i64>>,
    pub(super) model: Option<Spanned<String>>,
    /// A trained network's state dict or safetensors file ([teacher] with epochs = 0 only).
    pub(super) weights: Option<Spanned<String>>,
    pub(super) optimizer: Option<Spanned<String>>,
    pub(super) momentum: Option<Spanned<f64>>,
    pub(super) nesterov: Option<Spanned<bool>>,
    pub(super) weight_decay: Option<Spanned<f64>>,
    pub(super) schedule: Option<Spanned<String>>,
    pub(super) milestones: Option<Spanned<Vec<Spanned<i64>>>>,
    pub(super) gamma: Option<Spanned<f64>>,
    pub(super) warmup_epochs: Option<Spanned<i64>>,
    pub(super) augment: Option<Spanned<String>>,
    pub(super) precision: Option<Spanned<String>>,
    pub(super) label_smoothing: Option<Spanned<f64>>,
    /// The students' setting ([student] only; in [teacher] an error that says so).
    pub(super) cache_teacher_logits: Option<Spanned<bool>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGrid {
    pub(super) temperature: Spanned<Vec<Spanned<f64>>>,
    pub(super) alpha: Spanned<Vec<Spanned<f64>>>,
    pub(super) method: Option<Spanned<Vec<Spanned<String>>>>,
    pub(super) student_model: Option<Spanned<Vec<Spanned<String>>>>,
    pub(super) teacher_epoch: Option<Spanned<Vec<Spanned<i64>>>>,
    pub(super) baseline: Option<bool>,
    pub(super) logit_norm: Option<Spanned<Vec<Spanned<String>>>>,
    pub(super) zscore_temperature: Option<Spanned<Vec<Spanned<f64>>>>,
    pub(super) dkd: Option<Spanned<RawDkd>>,
    pub(super) dist: Option<Spanned<RawDist>>,
    pub(super) multi_t: Option<Spanned<RawMultiT>>,
    pub(super) ctkd: Option<Spanned<RawCtkd>>,
}

/// An axis as written: values with their places.
pub(super) type RawAxis = Spanned<Vec<Spanned<f64>>>;

/// `[grid.dkd]`: Decoupled KD's axes (α weights TCKD, β NCKD) and its warm-up.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDkd {
    pub(super) alpha: Option<RawAxis>,
    pub(super) beta: Option<RawAxis>,
    pub(super) temperature: Option<RawAxis>,
    pub(super) warmup: Option<Spanned<i64>>,
    pub(super) logit_norm: Option<Spanned<Vec<Spanned<String>>>>,
    pub(super) zscore_temperature: Option<RawAxis>,
}

/// `[grid.dist]`: DIST's weights of the inter- and intra-class relations and its τ.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDist {
    pub(super) beta: Option<RawAxis>,
    pub(super) gamma: Option<RawAxis>,
    pub(super) temperature: Option<RawAxis>,
}

/// `[grid.multi_t]`: sets of temperatures (one cell per set) and α.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMultiT {
    pub(super) temperatures: Option<Spanned<Vec<RawAxis>>>,
    pub(super) alpha: Option<RawAxis>,
}

/// `[grid.ctkd]`: α, the learned temperature's range and λ's ramp.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCtkd {
    pub(super) alpha: Option<RawAxis>,
    pub(super) t_min: Option<Spanned<f64>>,
    pub(super) t_range: Option<Spanned<f64>>,
    pub(super) ramp_epochs: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSchedule {
    pub(super) devices: Option<Spanned<RawDevices>>,
    pub(super) workers_per_device: Option<Spanned<i64>>,
    pub(super) fuse: Option<Spanned<RawFuse>>,
    pub(super) fuse_max: Option<Spanned<i64>>,
    pub(super) checkpoint_minutes: Option<Spanned<i64>>,
    pub(super) numerics: Option<Spanned<toml::Value>>,
    pub(super) deterministic: Option<Spanned<toml::Value>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum RawFuse {
    Flag(bool),
    Word(String),
}

#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum RawDevices {
    One(String),
    List(Vec<String>),
}
