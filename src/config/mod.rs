//! Stage 1: the sweep file. `raw` is a serde-shaped view of the TOML (`deny_unknown_fields`,
//! spans kept); `validate` turns it into a [`Sweep`], which cannot hold an invalid value; every
//! error (`error`) names the file, the line:column, the key, and what is allowed; `overrides`
//! are the command line's replacements for keys. The schema is here; the types it is made of live
//! with their owners (a role's [`Phase`] in train, [`DataConfig`] in data, methods in distill,
//! devices and numerics in platform) and are re-exported.

mod error;
mod listing;
mod overrides;
mod raw;
#[cfg(test)]
pub(crate) mod tests;
mod validate;

pub use error::{ConfigError, ConfigErrors, SourceMap};
pub use listing::{differing, settings};
pub use overrides::{load_with, Overrides};

pub use crate::data::{DataConfig, DatasetKind};
pub use crate::distill::{Coord, GridValue, Method};
use crate::platform::device::DeviceSpec;
pub use crate::platform::device::Devices;
pub use crate::train::Phase;
use serde::{Deserialize, Serialize};
use std::path::Path;

use validate::Validator;
pub use validate::{check_data, check_sizes, MOST_THREADS};

/// The cores this process may use (its CPU affinity and cgroup quota): the teachers' default thread
/// count.
pub fn machine_cores() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as u32)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduleConfig {
    pub devices: Devices,
    /// Workers per device; `None`: one per core on the CPU, one per GPU.
    pub workers_per_device: Option<u32>,
    /// Train the logit students of a seed as one fused model.
    pub fuse: Fuse,
    /// Minutes between checkpoints within an epoch (one is always kept after every epoch); 0: only at
    /// epoch ends.
    #[serde(default = "default_checkpoint_minutes")]
    pub checkpoint_minutes: u32,
    /// At most this many students in one fused group.
    pub fuse_max: u32,
    /// Which CPU kernels compute the numbers ([`crate::platform::numerics`]). A manifest written before the
    /// key existed reads as native, which is what those runs used.
    #[serde(default = "crate::platform::numerics::Numerics::native")]
    pub numerics: crate::platform::numerics::Numerics,
    /// GPU runs repeatable bit for bit: cuDNN's deterministic algorithms, no benchmark search,
    /// PyTorch's deterministic-algorithms switch and a fixed cuBLAS workspace.
    #[serde(default)]
    pub deterministic: bool,
    /// Training steps on a GPU captured once as CUDA graphs and replayed ([`crate::train::graph`]).
    #[serde(default)]
    pub cuda_graphs: bool,
}

pub(crate) fn default_checkpoint_minutes() -> u32 {
    10
}

impl ScheduleConfig {
    /// How often a run also checkpoints within an epoch.
    pub fn checkpoint_every(&self) -> Option<std::time::Duration> {
        (self.checkpoint_minutes > 0)
            .then(|| std::time::Duration::from_secs(60 * self.checkpoint_minutes as u64))
    }
}

/// When to fuse a seed's logit students into one model ([`crate::train::fused`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fuse {
    /// On CUDA devices (where one small student leaves the GPU idle), not on the CPU (where fused
    /// training measured no faster on 2 cores).
    Auto,
    On,
    Off,
}

impl Fuse {
    pub fn on(self, device: DeviceSpec) -> bool {
        match self {
            Fuse::Auto => device.is_cuda(),
            Fuse::On => true,
            Fuse::Off => false,
        }
    }
}

/// How the student cells of the grid are searched (`[search]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    /// Every cell trains its full schedule (the default).
    Grid,
    /// Successive halving: every cell trains `min_epochs`, the best 1/`eta` continue, and so on.
    Halving,
}

/// `[search]`: which cells train how far, and which are confirmed with more seeds
/// ([`crate::plan::search`]). The default (a grid, no confirmation) is skipped when a sweep is serialized.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Search {
    pub strategy: Strategy,
    /// Epochs of the first rung (halving).
    pub min_epochs: u32,
    /// Each rung keeps ⌈n / eta⌉ of its n cells and trains them eta times as many epochs.
    pub eta: u32,
    /// Seeds the best cells and the baseline are trained with after the search (empty: none).
    pub confirm_seeds: Vec<u64>,
    /// How many of the best cells are confirmed.
    pub confirm_top: u32,
}

impl Default for Search {
    fn default() -> Search {
        Search {
            strategy: Strategy::Grid,
            min_epochs: 1,
            eta: 3,
            confirm_seeds: Vec::new(),
            confirm_top: 3,
        }
    }
}

impl Search {
    pub fn is_default(&self) -> bool {
        *self == Search::default()
    }

    /// Whether the runs to train are decided while the sweep runs (halving, or a confirmation step).
    pub fn is_adaptive(&self) -> bool {
        self.strategy == Strategy::Halving || !self.confirm_seeds.is_empty()
    }
}

fn plain_only() -> Vec<bool> {
    vec![false]
}

fn is_plain_only(v: &[bool]) -> bool {
    v == [false]
}

fn is_default_fixed(f: &crate::distill::Fixed) -> bool {
    *f == crate::distill::Fixed::default()
}

/// The axes of one method's `[grid.<method>]` table (those it does not take stay empty).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MethodGrid {
    pub method: Method,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub temperature: Vec<GridValue>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alpha: Vec<GridValue>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub beta: Vec<GridValue>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gamma: Vec<GridValue>,
    /// Sets of temperatures (multi-T: one cell per set).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub temperatures: Vec<Vec<GridValue>>,
    /// Plain and/or z-scored logits (DKD).
    #[serde(default = "plain_only", skip_serializing_if = "is_plain_only")]
    pub logit_norm: Vec<bool>,
    /// Temperatures of the z-scored cells (empty: `temperature`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub zscore_temperature: Vec<GridValue>,
}

impl Sweep {
    /// Every student cell of the grid (without the student model, which multiplies them), in plan
    /// order: the methods as listed; logit KD per (T, α), z-scored cells after plain ones; feature
    /// and imitation per α; the others over their table's axes in the order of
    /// [`Method::axes`].
    pub fn cells(&self) -> Vec<Coord> {
        let cells = self.method_cells();
        if self.teacher_epochs.is_empty() {
            return cells;
        }
        // every cell once per teacher snapshot, the snapshots in the order written
        self.teacher_epochs
            .iter()
            .flat_map(|&e| {
                cells.iter().map(move |c| Coord {
                    teacher_epoch: Some(e),
                    ..c.clone()
                })
            })
            .collect()
    }

    /// The cells of the methods' axes (one teacher).
    fn method_cells(&self) -> Vec<Coord> {
        let mut out = Vec::new();
        for &m in &self.methods {
            match m {
                Method::Logit => {
                    for &z in &self.logit_norm {
                        let temps = match z {
                            true if !self.zscore_temperatures.is_empty() => {
                                &self.zscore_temperatures
                            }
                            _ => &self.temperatures,
                        };
                        for t in temps {
                            for a in &self.alphas {
                                out.push(Coord {
                                    zscore: z,
                                    ..Coord::logit(t.clone(), a.clone())
                                });
                            }
                        }
                    }
                }
                Method::Feature | Method::Imitation => {
                    for a in &self.alphas {
                        out.push(Coord {
                            alpha: Some(a.clone()),
                            ..Coord::of(m)
                        });
                    }
                }
                _ => {
                    if let Some(g) = self.method_grids.iter().find(|g| g.method == m) {
                        out.extend(g.cells());
                    }
                }
            }
        }
        out
    }

    /// The sweep's seeds, then the search's confirmation seeds (the plan's order).
    pub fn all_seeds(&self) -> Vec<u64> {
        self.seeds
            .iter()
            .chain(&self.search.confirm_seeds)
            .copied()
            .collect()
    }
}

/// A validated sweep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sweep {
    pub name: String,
    pub seeds: Vec<u64>,
    pub data: DataConfig,
    pub teacher: Phase,
    pub student: Phase,
    /// `false`: the naive way, the teacher's forward pass inside every student step.
    pub cache_teacher_logits: bool,
    pub temperatures: Vec<GridValue>,
    pub alphas: Vec<GridValue>,
    /// Distillation families to sweep (default: logit only).
    pub methods: Vec<Method>,
    /// `[grid] student_model`: the students' networks as a grid axis (empty: `[student] model`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub student_models: Vec<crate::model::Arch>,
    /// `[grid] teacher_epoch`: the teacher's epochs whose weights students distil from, one snapshot
    /// each, saved while the teacher trains once (empty: the trained teacher's best epoch).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub teacher_epochs: Vec<u32>,
    pub baseline: bool,
    pub schedule: ScheduleConfig,
    #[serde(default, skip_serializing_if = "Search::is_default")]
    pub search: Search,
    /// The axes of the methods with tables of their own (`[grid.dkd]` …), in `methods` order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub method_grids: Vec<MethodGrid>,
    /// `[grid] logit_norm`: logit KD with plain logits (false) and/or z-scored ones (true).
    #[serde(default = "plain_only", skip_serializing_if = "is_plain_only")]
    pub logit_norm: Vec<bool>,
    /// `[grid] zscore_temperature`: the temperatures of z-scored logit KD cells (empty: `temperatures`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub zscore_temperatures: Vec<GridValue>,
    /// The methods' settings that are not axes (DKD's warm-up, CTKD's temperature range).
    #[serde(default, skip_serializing_if = "is_default_fixed")]
    pub methods_fixed: crate::distill::Fixed,
    /// Where keys that later checks (against the data) point at are written: `key → (line, column)`.
    #[serde(skip)]
    pub source: SourceMap,
}

/// An axis' values as a method table gives them.
pub enum AxisValues {
    One(Vec<GridValue>),
    /// Sets of values (multi-T's temperature sets).
    Sets(Vec<Vec<GridValue>>),
}

impl MethodGrid {
    /// A method's grid with no values yet (plain logits only).
    pub fn empty(method: Method) -> MethodGrid {
        MethodGrid {
            method,
            temperature: Vec::new(),
            alpha: Vec::new(),
            beta: Vec::new(),
            gamma: Vec::new(),
            temperatures: Vec::new(),
            logit_norm: vec![false],
            zscore_temperature: Vec::new(),
        }
    }

    /// Gives `axis` its values (sets only for the temperature sets, single values for the rest).
    pub fn set(&mut self, axis: crate::distill::Axis, values: AxisValues) {
        use crate::distill::Axis;
        match (axis, values) {
            (Axis::Temperatures, AxisValues::Sets(sets)) => self.temperatures = sets,
            (Axis::Temperatures, AxisValues::One(one)) => self.temperatures = vec![one],
            (axis, AxisValues::Sets(sets)) => {
                self.set(axis, AxisValues::One(sets.into_iter().flatten().collect()))
            }
            (Axis::Temperature, AxisValues::One(v)) => self.temperature = v,
            (Axis::Alpha, AxisValues::One(v)) => self.alpha = v,
            (Axis::Beta, AxisValues::One(v)) => self.beta = v,
            (Axis::Gamma, AxisValues::One(v)) => self.gamma = v,
        }
    }

    /// The cells of this table: the product of its method's axes (in [`Method::axes`] order, the
    /// last varying fastest), plain logits before z-scored ones.
    pub fn cells(&self) -> Vec<Coord> {
        use crate::distill::Axis;
        let mut out = Vec::new();
        for &z in &self.logit_norm {
            let mut partial = vec![Coord {
                zscore: z,
                ..Coord::of(self.method)
            }];
            for axis in self.method.axes() {
                let values: Vec<Setter> = match axis {
                    Axis::Temperature => {
                        let ts = match z {
                            true if !self.zscore_temperature.is_empty() => &self.zscore_temperature,
                            _ => &self.temperature,
                        };
                        ts.iter()
                            .map(|v| {
                                let v = v.clone();
                                Box::new(move |c: &mut Coord| c.temperature = Some(v.clone())) as _
                            })
                            .collect()
                    }
                    Axis::Alpha => setters(&self.alpha, |c, v| c.alpha = Some(v)),
                    Axis::Beta => setters(&self.beta, |c, v| c.beta = Some(v)),
                    Axis::Gamma => setters(&self.gamma, |c, v| c.gamma = Some(v)),
                    Axis::Temperatures => self
                        .temperatures
                        .iter()
                        .map(|set| {
                            let set = set.clone();
                            Box::new(move |c: &mut Coord| c.temperatures = set.clone()) as _
                        })
                        .collect(),
                };
                partial = partial
                    .iter()
                    .flat_map(|c| {
                        values.iter().map(move |set| {
                            let mut c = c.clone();
                            set(&mut c);
                            c
                        })
                    })
                    .collect();
            }
            out.extend(partial);
        }
        out
    }
}

type Setter = Box<dyn Fn(&mut Coord)>;

fn setters(values: &[GridValue], set: fn(&mut Coord, GridValue)) -> Vec<Setter> {
    values
        .iter()
        .map(|v| {
            let v = v.clone();
            Box::new(move |c: &mut Coord| set(c, v.clone())) as Setter
        })
        .collect()
}

/// Reads and validates a sweep file.
pub fn load(path: &Path) -> Result<Sweep, ConfigErrors> {
    let fail = |message: String| ConfigError {
        file: path.to_path_buf(),
        at: None,
        key: None,
        message,
    };
    let bytes = std::fs::read(path).map_err(|e| {
        fail(match e.kind() {
            std::io::ErrorKind::NotFound => {
                "no such file; give the path of a sweep file such as experiments/quick.toml".into()
            }
            _ => format!("cannot read the sweep file: {e}"),
        })
    })?;
    let text = String::from_utf8(bytes).map_err(|e| {
        fail(format!(
            "not a text file (invalid UTF-8 at byte {}); a sweep file is TOML text",
            e.utf8_error().valid_up_to()
        ))
    })?;
    parse(&text, path)
}

/// Parses and validates sweep-file text; `file` is used in messages and to resolve relative paths.
/// Every problem is reported, in file order.
pub fn parse(text: &str, file: &Path) -> Result<Sweep, ConfigErrors> {
    // a byte-order mark, which some editors write, is not part of the first line's columns
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let v = Validator::new(text, file.to_path_buf());
    if text.trim().is_empty() {
        return Err(v
            .err(
                None,
                None,
                "the file is empty; a sweep needs at least `name`, `seeds`, [data], [teacher], \
                 [student] and [grid] (see experiments/quick.toml)",
            )
            .into());
    }
    let sweep = v.document().and_then(|raw| v.validate(raw));
    v.finish(sweep)
}

/// A sweep name becomes a folder under the results root: one plain path component.
pub fn check_name(name: &str) -> Result<(), String> {
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if name.is_empty() || !ok_chars || name.starts_with('.') || name.len() > 100 {
        return Err(format!(
            "\"{name}\" cannot be a results folder name: use 1–100 letters, digits, '-', '_' or '.', \
             not starting with '.' (e.g. name = \"temps\")"
        ));
    }
    Ok(())
}
