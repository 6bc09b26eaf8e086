//! Stage 1: the sweep file. A raw, serde-shaped view of the TOML (`deny_unknown_fields`, spans kept)
//! is validated into a [`Sweep`], which cannot hold an invalid value. Every error names the file, the
//! line:column, the key, and what is allowed.

pub use crate::data::{DataConfig, DatasetKind};
pub use crate::distill::{Coord, GridValue, Method};
use crate::platform::device::DeviceSpec;
pub use crate::platform::device::Devices;
pub use crate::train::Phase;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// A sweep-file error: what, where, and what to do. Exit code 2.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    pub file: PathBuf,
    /// 1-based line and column, where known.
    pub at: Option<(usize, usize)>,
    /// Dotted key (`grid.temperature`), where known.
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some((line, col)) = self.at {
            write!(f, ":{line}:{col}")?;
        }
        write!(f, ": ")?;
        if let Some(key) = &self.key {
            write!(f, "`{key}`: ")?;
        }
        write!(f, "{}", self.message)
    }
}

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
}

fn default_checkpoint_minutes() -> u32 {
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

impl MethodGrid {
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

/// Locations of keys, for errors found after parsing (e.g. a subset larger than the data).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SourceMap {
    pub file: PathBuf,
    pub keys: Vec<(String, (usize, usize))>,
}

impl SourceMap {
    /// Whether the sweep file sets `key` (only the keys errors can point at are kept).
    pub fn has(&self, key: &str) -> bool {
        self.keys.iter().any(|(k, _)| k == key)
    }

    /// An error pointing at `key` in the sweep file.
    pub fn error(&self, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.file.clone(),
            at: self.keys.iter().find(|(k, _)| k == key).map(|(_, at)| *at),
            key: Some(key.to_string()),
            message: message.into(),
        }
    }
}

// ---- raw, as deserialized ----------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSweep {
    name: Spanned<String>,
    seeds: Spanned<Vec<Spanned<i64>>>,
    data: RawData,
    teacher: RawPhase,
    student: RawStudent,
    grid: RawGrid,
    #[serde(default)]
    schedule: Option<RawSchedule>,
    #[serde(default)]
    search: Option<RawSearch>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSearch {
    strategy: Option<Spanned<String>>,
    min_epochs: Option<Spanned<i64>>,
    eta: Option<Spanned<i64>>,
    confirm_seeds: Option<Spanned<Vec<Spanned<i64>>>>,
    confirm_top: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawData {
    dataset: Spanned<String>,
    path: Option<Spanned<String>>,
    validation: Option<Spanned<i64>>,
    train_subset: Option<Spanned<i64>>,
    test_subset: Option<Spanned<i64>>,
    split_seed: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPhase {
    epochs: Spanned<i64>,
    batch_size: Spanned<i64>,
    lr: Spanned<f64>,
    init: Option<Spanned<String>>,
    threads: Option<Spanned<i64>>,
    model: Option<Spanned<String>>,
    optimizer: Option<Spanned<String>>,
    momentum: Option<Spanned<f64>>,
    nesterov: Option<Spanned<bool>>,
    weight_decay: Option<Spanned<f64>>,
    schedule: Option<Spanned<String>>,
    milestones: Option<Spanned<Vec<Spanned<i64>>>>,
    gamma: Option<Spanned<f64>>,
    warmup_epochs: Option<Spanned<i64>>,
    augment: Option<Spanned<String>>,
    precision: Option<Spanned<String>>,
}

/// The keys of [teacher] and [student] that make a [`Phase`].
struct PhaseKeys<'r> {
    epochs: &'r Spanned<i64>,
    batch_size: &'r Spanned<i64>,
    lr: &'r Spanned<f64>,
    init: &'r Option<Spanned<String>>,
    threads: &'r Option<Spanned<i64>>,
    model: &'r Option<Spanned<String>>,
    augment: &'r Option<Spanned<String>>,
    precision: &'r Option<Spanned<String>>,
    recipe: RecipeKeys<'r>,
}

/// The keys of [teacher] and [student] that make an [`crate::train::optim::Recipe`].
struct RecipeKeys<'r> {
    optimizer: &'r Option<Spanned<String>>,
    momentum: &'r Option<Spanned<f64>>,
    nesterov: &'r Option<Spanned<bool>>,
    weight_decay: &'r Option<Spanned<f64>>,
    schedule: &'r Option<Spanned<String>>,
    milestones: &'r Option<Spanned<Vec<Spanned<i64>>>>,
    gamma: &'r Option<Spanned<f64>>,
    warmup_epochs: &'r Option<Spanned<i64>>,
}

impl RawPhase {
    fn keys(&self) -> PhaseKeys<'_> {
        PhaseKeys {
            epochs: &self.epochs,
            batch_size: &self.batch_size,
            lr: &self.lr,
            init: &self.init,
            threads: &self.threads,
            model: &self.model,
            augment: &self.augment,
            precision: &self.precision,
            recipe: RecipeKeys {
                optimizer: &self.optimizer,
                momentum: &self.momentum,
                nesterov: &self.nesterov,
                weight_decay: &self.weight_decay,
                schedule: &self.schedule,
                milestones: &self.milestones,
                gamma: &self.gamma,
                warmup_epochs: &self.warmup_epochs,
            },
        }
    }
}

impl RawStudent {
    fn keys(&self) -> PhaseKeys<'_> {
        PhaseKeys {
            epochs: &self.epochs,
            batch_size: &self.batch_size,
            lr: &self.lr,
            init: &self.init,
            threads: &self.threads,
            model: &self.model,
            augment: &self.augment,
            precision: &self.precision,
            recipe: RecipeKeys {
                optimizer: &self.optimizer,
                momentum: &self.momentum,
                nesterov: &self.nesterov,
                weight_decay: &self.weight_decay,
                schedule: &self.schedule,
                milestones: &self.milestones,
                gamma: &self.gamma,
                warmup_epochs: &self.warmup_epochs,
            },
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStudent {
    epochs: Spanned<i64>,
    batch_size: Spanned<i64>,
    lr: Spanned<f64>,
    init: Option<Spanned<String>>,
    threads: Option<Spanned<i64>>,
    model: Option<Spanned<String>>,
    optimizer: Option<Spanned<String>>,
    momentum: Option<Spanned<f64>>,
    nesterov: Option<Spanned<bool>>,
    weight_decay: Option<Spanned<f64>>,
    schedule: Option<Spanned<String>>,
    milestones: Option<Spanned<Vec<Spanned<i64>>>>,
    gamma: Option<Spanned<f64>>,
    warmup_epochs: Option<Spanned<i64>>,
    augment: Option<Spanned<String>>,
    precision: Option<Spanned<String>>,
    cache_teacher_logits: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGrid {
    temperature: Spanned<Vec<Spanned<f64>>>,
    alpha: Spanned<Vec<Spanned<f64>>>,
    method: Option<Spanned<Vec<Spanned<String>>>>,
    student_model: Option<Spanned<Vec<Spanned<String>>>>,
    baseline: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSchedule {
    devices: Option<Spanned<RawDevices>>,
    workers_per_device: Option<Spanned<i64>>,
    fuse: Option<Spanned<RawFuse>>,
    fuse_max: Option<Spanned<i64>>,
    checkpoint_minutes: Option<Spanned<i64>>,
    numerics: Option<Spanned<toml::Value>>,
    deterministic: Option<Spanned<toml::Value>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawFuse {
    Flag(bool),
    Word(String),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawDevices {
    One(String),
    List(Vec<String>),
}

/// Checks the configured sizes against the data; errors point at the sweep-file key.
pub fn check_sizes(sweep: &Sweep, n_train: usize, n_test: usize) -> Result<(), ConfigError> {
    let d = &sweep.data;
    let src = &sweep.source;
    if d.validation >= n_train {
        return Err(src.error("data.validation", format!("{} held-out images leave none of the {n_train} training images to train on; use fewer", d.validation)));
    }
    let left = n_train - d.validation;
    if let Some(k) = d.train_subset {
        if k > left {
            return Err(src.error("data.train_subset", format!("{k} is more than the {left} training images left after holding out {}; use at most {left} or leave it out", d.validation)));
        }
    }
    if let Some(k) = d.test_subset {
        if k > n_test {
            return Err(src.error("data.test_subset", format!("{k} is more than the {n_test} test images; use at most {n_test} or leave it out")));
        }
    }
    let train = d.train_subset.unwrap_or(left);
    for (key, bs) in [
        ("teacher.batch_size", sweep.teacher.batch_size),
        ("student.batch_size", sweep.student.batch_size),
    ] {
        if bs as usize > train {
            return Err(src.error(
                key,
                format!("{bs} is larger than the {train} training images; use at most {train}"),
            ));
        }
    }
    Ok(())
}

// ---- parsing and validation --------------------------------------------------------------------

/// Reads and validates a sweep file.
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
}

impl Overrides {
    fn apply(&self, sweep: &mut Sweep) -> Result<(), ConfigError> {
        let flag = |name: &str, message: String| ConfigError {
            file: name.into(),
            at: None,
            key: None,
            message,
        };
        if let Some(d) = &self.devices {
            sweep.schedule.devices = Devices::parse(d).map_err(|m| flag("--devices", m))?;
        }
        if let Some(w) = self.workers_per_device {
            if !(1..=u32::MAX as i64).contains(&w) {
                return Err(flag(
                    "--workers-per-device",
                    format!("must be at least 1, got {w}"),
                ));
            }
            sweep.schedule.workers_per_device = Some(w as u32);
        }
        if let Some(t) = self.teacher_threads {
            if !(1..=4096).contains(&t) {
                return Err(flag(
                    "--teacher-threads",
                    format!("must be a whole number from 1 to 4096, got {t}"),
                ));
            }
            sweep.teacher.threads = t as u32;
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
        Ok(())
    }
}

/// [`load`], then the command line's overrides, each validated.
pub fn load_with(path: &Path, overrides: &Overrides) -> Result<Sweep, ConfigError> {
    let mut sweep = load(path)?;
    overrides.apply(&mut sweep)?;
    Ok(sweep)
}

pub fn load(path: &Path) -> Result<Sweep, ConfigError> {
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
pub fn parse(text: &str, file: &Path) -> Result<Sweep, ConfigError> {
    let v = Validator {
        text,
        file: file.to_path_buf(),
        keys: Default::default(),
    };
    if text.trim().is_empty() {
        return Err(v.err(
            None,
            None,
            "the file is empty; a sweep needs at least `name`, `seeds`, [data], [teacher], \
             [student] and [grid] (see experiments/quick.toml)",
        ));
    }
    let raw: RawSweep = toml::from_str(text).map_err(|e| v.toml_error(&e))?;
    v.validate(raw)
}

struct Validator<'a> {
    text: &'a str,
    file: PathBuf,
    /// Positions of keys that later checks point at (see [`SourceMap`]).
    keys: std::cell::RefCell<Vec<(String, (usize, usize))>>,
}

impl Validator<'_> {
    fn line_col(&self, offset: usize) -> (usize, usize) {
        let before = &self.text[..offset.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        (line, col)
    }

    fn err(
        &self,
        span: Option<std::ops::Range<usize>>,
        key: Option<&str>,
        msg: &str,
    ) -> ConfigError {
        ConfigError {
            file: self.file.clone(),
            at: span.map(|s| self.line_col(s.start)),
            key: key.map(str::to_string),
            message: msg.to_string(),
        }
    }

    fn at<T>(&self, s: &Spanned<T>, key: &str, msg: &str) -> ConfigError {
        self.err(Some(s.span()), Some(key), msg)
    }

    fn toml_error(&self, e: &toml::de::Error) -> ConfigError {
        let mut msg = e.message().trim().to_string();
        // serde's names for types mean nothing to someone writing TOML
        for (rust, plain) in [
            ("expected i64", "expected a whole number"),
            ("expected f64", "expected a number"),
            ("expected a sequence", "expected an array such as [1, 2]"),
            ("expected a boolean", "expected true or false"),
            ("expected a string", "expected a quoted string"),
            ("untagged enum RawFuse", "\"auto\", true or false"),
            (
                "untagged enum RawDevices",
                "\"auto\", \"cpu\" or a list such as [\"cuda:0\"]",
            ),
        ] {
            msg = msg.replace(rust, plain);
        }
        if msg.starts_with("missing field") {
            msg.push_str(" (see experiments/quick.toml for a complete sweep file)");
        }
        let key = e.span().and_then(|sp| self.key_at(sp.start));
        self.err(e.span(), key.as_deref(), &msg)
    }

    /// The dotted key written on the line of `offset` (`teacher.epochs`), if that line assigns one.
    fn key_at(&self, offset: usize) -> Option<String> {
        let offset = offset.min(self.text.len());
        let line_start = self.text[..offset].rfind('\n').map_or(0, |i| i + 1);
        let line = self.text[line_start..].lines().next().unwrap_or("");
        let (name, _) = line.split_once('=')?;
        let name = name.trim();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return None;
        }
        let table = self.text[..line_start].lines().rev().find_map(|l| {
            l.trim()
                .strip_prefix('[')
                .and_then(|t| t.split(']').next())
                .map(|t| t.trim().to_string())
        });
        Some(match table {
            Some(t) if !t.is_empty() => format!("{t}.{name}"),
            _ => name.to_string(),
        })
    }

    fn positive(&self, s: &Spanned<i64>, key: &str, what: &str) -> Result<u32, ConfigError> {
        let v = *s.get_ref();
        if v < 1 || v > u32::MAX as i64 {
            return Err(self.at(
                s,
                key,
                &format!("must be a whole number ≥ 1 ({what}), got {v}"),
            ));
        }
        Ok(v as u32)
    }

    fn count(&self, s: &Spanned<i64>, key: &str, min: i64) -> Result<usize, ConfigError> {
        let v = *s.get_ref();
        if v < min {
            return Err(self.at(s, key, &format!("must be a whole number ≥ {min}, got {v}")));
        }
        Ok(v as usize)
    }

    /// A model name (`key` for errors), checked against what the sweep does with it; `None` for the
    /// role's tutorial network `default`.
    fn model(
        &self,
        name: &Spanned<String>,
        key: &str,
        default: crate::model::Arch,
        check: &ModelCheck,
    ) -> Result<Option<crate::model::Arch>, ConfigError> {
        let arch = self.arch(name, key, check)?;
        Ok((arch != default).then_some(arch))
    }

    /// A model name (`key` for errors): a kd-sweep network, or a TorchScript file (relative to the
    /// sweep file) that is run once on the dataset's image shape to check it fits the sweep.
    fn arch(
        &self,
        name: &Spanned<String>,
        key: &str,
        check: &ModelCheck,
    ) -> Result<crate::model::Arch, ConfigError> {
        use crate::model::Init;
        let base = self.file.parent().unwrap_or(Path::new(""));
        let arch = crate::model::Arch::parse_in(name.get_ref(), base)
            .map_err(|why| self.at(name, key, &why))?;
        let fail = |why: String| Err(self.at(name, key, &why));
        match (arch.script(), check.init) {
            (None, Init::AsSaved) => {
                return fail(format!(
                    "is not a TorchScript file, and init = \"as-saved\" keeps a TorchScript \
                     file's weights; use init = \"pytorch\" (the default) for \"{}\"",
                    name.get_ref()
                ))
            }
            (Some(_), Init::Kaiming) => {
                return fail(
                    "is a TorchScript file: its init is \"pytorch\" (re-initialised by PyTorch's \
                     default rules for each seed, the default) or \"as-saved\" (the file's weights)"
                        .into(),
                )
            }
            _ => {}
        }
        let Some(script) = arch.script() else {
            return Ok(arch);
        };
        let probe = match script.probe(check.shape) {
            Ok(p) => p,
            Err(why) => return fail(why),
        };
        let want = vec![2, check.classes];
        if probe.logits != want {
            return fail(format!(
                "forward returns a {:?} tensor for 2 images of {}×{}×{}; the dataset has {} classes, \
                 so it must return [2, {}] (logits)",
                probe.logits,
                check.shape[0],
                check.shape[1],
                check.shape[2],
                check.classes,
                check.classes
            ));
        }
        if check.features && probe.features.is_none() {
            return fail(
                "exports no features(x) method (its last feature map), which grid.method = \
                 \"feature\" needs; mark it @torch.jit.export in the network before scripting it \
                 (a student also needs head(f), with head(features(x)) = forward(x))"
                    .into(),
            );
        }
        if check.features && check.student && !probe.head {
            return fail(
                "exports features(x) but no head(f) with head(features(x)) = forward(x), which a \
                 student needs for grid.method = \"feature\"; mark both @torch.jit.export in the \
                 network before scripting it"
                    .into(),
            );
        }
        Ok(arch)
    }

    fn phase(
        &self,
        role: &str,
        raw: PhaseKeys,
        default_threads: u32,
        (default_model, check): (crate::model::Arch, ModelCheck),
    ) -> Result<Phase, ConfigError> {
        let PhaseKeys {
            epochs,
            batch_size: batch,
            lr,
            init,
            threads,
            model,
            augment,
            precision,
            recipe,
        } = raw;
        let threads = match threads {
            None => default_threads,
            Some(t) => self.positive(t, &format!("{role}.threads"), "intra-op threads of a run")?,
        };
        let raw_init = init;
        let init = match init {
            None => crate::model::Init::default(),
            Some(i) => crate::model::Init::parse(i.get_ref()).ok_or_else(|| {
                self.at(
                    i,
                    &format!("{role}.init"),
                    &format!(
                        "unknown initialisation \"{}\"; allowed: {} (PyTorch's default, \
                         Kaiming-uniform with the ReLU gain, or a TorchScript file's own weights)",
                        i.get_ref(),
                        crate::model::Init::NAMES
                    ),
                )
            })?,
        };
        let check = ModelCheck { init, ..check };
        let model = match model {
            None => None,
            Some(m) => self.model(m, &format!("{role}.model"), default_model, &check)?,
        };
        if let (None, Some(i), false) = (model, raw_init, check.in_grid) {
            if init == crate::model::Init::AsSaved {
                return Err(self.at(
                    i,
                    &format!("{role}.init"),
                    "\"as-saved\" keeps a TorchScript file's weights, and this role's model is \
                     kd-sweep's tutorial network; set model = \"torchscript:<file>\" or another init",
                ));
            }
        }
        let lr_v = *lr.get_ref();
        if !(lr_v.is_finite() && lr_v > 0.0) {
            return Err(self.at(
                lr,
                &format!("{role}.lr"),
                &format!(
                    "must be a finite number > 0 (the learning rate, e.g. 0.001 for Adam), got {lr_v}"
                ),
            ));
        }
        let epochs = self.positive(
            epochs,
            &format!("{role}.epochs"),
            "passes over the training set",
        )?;
        let augment = match augment {
            None => crate::train::augment::Augment::None,
            Some(a) => crate::train::augment::Augment::parse(a.get_ref()).ok_or_else(|| {
                self.at(
                    a,
                    &format!("{role}.augment"),
                    &format!(
                        "unknown augmentation \"{}\"; allowed: {} (a random crop of the image's \
                         size after 4 pixels of padding, and a horizontal flip)",
                        a.get_ref(),
                        crate::train::augment::Augment::NAMES
                    ),
                )
            })?,
        };
        let precision = match precision {
            None => crate::train::Precision::Fp32,
            Some(p) => crate::train::Precision::parse(p.get_ref())
                .map_err(|why| self.at(p, &format!("{role}.precision"), &why))?,
        };
        Ok(Phase {
            augment,
            precision,
            recipe: self.recipe(role, recipe, epochs)?,
            epochs,
            batch_size: self.positive(batch, &format!("{role}.batch_size"), "images per step")?,
            lr: lr_v,
            init,
            threads,
            model,
        })
    }

    /// A role's optimizer and schedule, checked against each other and its `epochs`.
    fn recipe(
        &self,
        role: &str,
        k: RecipeKeys,
        epochs: u32,
    ) -> Result<crate::train::optim::Recipe, ConfigError> {
        use crate::train::optim::{Algorithm, Recipe, Schedule};
        let key = |name: &str| format!("{role}.{name}");
        let mut r = Recipe::default();
        if let Some(o) = k.optimizer {
            r.optimizer = match o.get_ref().as_str() {
                "adam" => Algorithm::Adam,
                "sgd" => Algorithm::Sgd,
                other => {
                    return Err(self.at(
                        o,
                        &key("optimizer"),
                        &format!(
                        "unknown optimizer \"{other}\"; allowed: \"adam\" (the default) or \"sgd\""
                    ),
                    ))
                }
            };
        }
        let sgd_only = "is SGD's; set optimizer = \"sgd\" to use it";
        if let Some(m) = k.momentum {
            if r.optimizer != Algorithm::Sgd {
                return Err(self.at(m, &key("momentum"), sgd_only));
            }
            let v = *m.get_ref();
            if !(0.0..1.0).contains(&v) {
                return Err(self.at(
                    m,
                    &key("momentum"),
                    &format!("must be in [0, 1), e.g. 0.9; got {v}"),
                ));
            }
            r.momentum = v;
        }
        if let Some(n) = k.nesterov {
            if r.optimizer != Algorithm::Sgd {
                return Err(self.at(n, &key("nesterov"), sgd_only));
            }
            if *n.get_ref() && r.momentum == 0.0 {
                return Err(self.at(
                    n,
                    &key("nesterov"),
                    "Nesterov momentum needs momentum > 0 (e.g. momentum = 0.9)",
                ));
            }
            r.nesterov = *n.get_ref();
        }
        if let Some(w) = k.weight_decay {
            let v = *w.get_ref();
            if !(v.is_finite() && v >= 0.0) {
                return Err(self.at(
                    w,
                    &key("weight_decay"),
                    &format!("must be a finite number ≥ 0 (L2, added to the gradient), e.g. 5e-4; got {v}"),
                ));
            }
            r.weight_decay = v;
        }
        if let Some(sch) = k.schedule {
            r.schedule = match sch.get_ref().as_str() {
                "constant" => Schedule::Constant,
                "multistep" => Schedule::Multistep,
                "cosine" => Schedule::Cosine,
                other => {
                    return Err(self.at(
                        sch,
                        &key("schedule"),
                        &format!("unknown schedule \"{other}\"; allowed: \"constant\" (the default), \"multistep\" (with milestones, gamma) or \"cosine\""),
                    ))
                }
            };
        }
        let multistep_only = |name: &str| {
            format!("is for schedule = \"multistep\" only; set that, or leave `{name}` out")
        };
        match (k.milestones, r.schedule) {
            (Some(m), Schedule::Multistep) => {
                let mut last = 0;
                for v in m.get_ref() {
                    let e = *v.get_ref();
                    if e < 1 || e >= epochs as i64 {
                        return Err(self.at(
                            v,
                            &key("milestones"),
                            &format!("milestone {e} is outside epochs 1 … {}: the rate drops after a milestone epoch, so each must be before the last epoch ({epochs})", epochs.saturating_sub(1)),
                        ));
                    }
                    if e <= last {
                        return Err(self.at(
                            v,
                            &key("milestones"),
                            "milestones must increase (e.g. [150, 180, 210])",
                        ));
                    }
                    last = e;
                    r.milestones.push(e as u32);
                }
                if r.milestones.is_empty() {
                    return Err(self.at(m, &key("milestones"), "is empty; give the epochs after which the rate drops, e.g. [150, 180, 210]"));
                }
            }
            (Some(m), _) => {
                return Err(self.at(m, &key("milestones"), &multistep_only("milestones")))
            }
            (None, Schedule::Multistep) => {
                let at = k.schedule.as_ref().expect("multistep was named");
                return Err(self.at(
                    at,
                    &key("schedule"),
                    "\"multistep\" needs milestones, e.g. milestones = [150, 180, 210]",
                ));
            }
            (None, _) => {}
        }
        if let Some(g) = k.gamma {
            if r.schedule != Schedule::Multistep {
                return Err(self.at(g, &key("gamma"), &multistep_only("gamma")));
            }
            let v = *g.get_ref();
            if !(v.is_finite() && v > 0.0) {
                return Err(self.at(
                    g,
                    &key("gamma"),
                    &format!("must be a finite number > 0 (the factor at each milestone, e.g. 0.1); got {v}"),
                ));
            }
            r.gamma = v;
        }
        if let Some(w) = k.warmup_epochs {
            let v = *w.get_ref();
            if v < 0 || v >= epochs as i64 {
                return Err(self.at(
                    w,
                    &key("warmup_epochs"),
                    &format!("must be a whole number in 0 … {} (fewer than the {epochs} epochs); got {v}", epochs - 1),
                ));
            }
            if let Some(&first) = r.milestones.first() {
                if v as u32 > first {
                    return Err(self.at(
                        w,
                        &key("warmup_epochs"),
                        &format!("ends after the first milestone ({first}); warm up for at most {first} epochs"),
                    ));
                }
            }
            r.warmup_epochs = v as u32;
        }
        Ok(r)
    }

    /// `[grid] student_model`: each model once; empty when absent.
    fn student_models(
        &self,
        raw: &Option<Spanned<Vec<Spanned<String>>>>,
        student: &RawStudent,
        check: &ModelCheck,
    ) -> Result<Vec<crate::model::Arch>, ConfigError> {
        let Some(list) = raw else {
            return Ok(Vec::new());
        };
        let key = "grid.student_model";
        if list.get_ref().is_empty() {
            return Err(self.at(
                list,
                key,
                "is empty; give at least one model, e.g. [\"tutorial-student\", \"resnet8\"]",
            ));
        }
        if let Some(m) = &student.model {
            return Err(self.at(m, "student.model", "is set, and so is [grid] student_model: give the students' model in one place (the grid's list takes the place of [student] model)"));
        }
        let mut models = Vec::new();
        for m in list.get_ref() {
            let arch = self.arch(m, key, check)?;
            if models.contains(&arch) {
                return Err(self.at(
                    m,
                    key,
                    &format!("\"{}\" appears twice; list each model once", m.get_ref()),
                ));
            }
            models.push(arch);
        }
        Ok(models)
    }

    /// A grid axis: non-empty, each value allowed by `ok`, no value twice (1 and 1.0 are the same).
    fn axis(
        &self,
        values: &Spanned<Vec<Spanned<f64>>>,
        key: &str,
        allowed: &str,
        ok: impl Fn(f64) -> bool,
    ) -> Result<Vec<GridValue>, ConfigError> {
        if values.get_ref().is_empty() {
            return Err(self.at(
                values,
                key,
                &format!("is empty; give at least one value ({allowed})"),
            ));
        }
        let mut out: Vec<GridValue> = Vec::new();
        for v in values.get_ref() {
            let value = *v.get_ref();
            if !ok(value) {
                return Err(self.at(
                    v,
                    key,
                    &format!("{value} is not allowed: values must be {allowed}"),
                ));
            }
            let text = self.text[v.span()]
                .trim()
                .trim_start_matches('+')
                .to_string();
            if let Some(first) = out.iter().find(|g| g.value == value) {
                return Err(self.at(
                    v,
                    key,
                    &format!(
                        "{text} appears twice (same value as {}); list each value once",
                        first.text
                    ),
                ));
            }
            out.push(GridValue { text, value });
        }
        Ok(out)
    }

    /// Where `key` is written, for errors found later against the data.
    fn remember(&self, key: &str, span: std::ops::Range<usize>) {
        self.keys
            .borrow_mut()
            .push((key.to_string(), self.line_col(span.start)));
    }

    fn name(&self, raw: &Spanned<String>) -> Result<String, ConfigError> {
        let name = raw.get_ref().clone();
        check_name(&name).map_err(|why| self.at(raw, "name", &why))?;
        Ok(name)
    }

    fn seeds(&self, raw: &Spanned<Vec<Spanned<i64>>>) -> Result<Vec<u64>, ConfigError> {
        let seeds = raw.get_ref();
        if seeds.is_empty() {
            return Err(self.at(
                raw,
                "seeds",
                "is empty; give at least one seed, e.g. seeds = [0]",
            ));
        }
        let mut seen = Vec::new();
        for s in seeds {
            let v = *s.get_ref();
            if v < 0 {
                return Err(self.at(
                    s,
                    "seeds",
                    &format!("seeds must be whole numbers ≥ 0, got {v}"),
                ));
            }
            if seen.contains(&(v as u64)) {
                return Err(self.at(
                    s,
                    "seeds",
                    &format!("seed {v} appears twice; list each seed once"),
                ));
            }
            seen.push(v as u64);
        }
        Ok(seen)
    }

    fn data(&self, d: &RawData) -> Result<DataConfig, ConfigError> {
        let dataset = DatasetKind::parse(d.dataset.get_ref()).ok_or_else(|| {
            self.at(
                &d.dataset,
                "data.dataset",
                &format!(
                    "unknown dataset \"{}\"; allowed: {}",
                    d.dataset.get_ref(),
                    DatasetKind::NAMES
                ),
            )
        })?;
        let path = match &d.path {
            Some(p) if p.get_ref().trim().is_empty() => {
                return Err(self.at(p, "data.path", "is empty; give the folder holding the dataset files, or leave it out for the default"))
            }
            Some(p) => {
                self.remember("data.path", p.span());
                let p = PathBuf::from(p.get_ref());
                if p.is_relative() {
                    // Relative paths are relative to the sweep file, so a sweep runs the same from any folder.
                    self.file.parent().unwrap_or(Path::new("")).join(p)
                } else {
                    p
                }
            }
            None => dataset.default_path(),
        };
        let validation = match &d.validation {
            Some(s) => {
                self.remember("data.validation", s.span());
                self.count(s, "data.validation", 1)?
            }
            None => 5000,
        };
        let subset = |s: &Option<Spanned<i64>>, key: &str| -> Result<Option<usize>, ConfigError> {
            s.as_ref()
                .map(|s| {
                    self.remember(key, s.span());
                    self.count(s, key, 1)
                })
                .transpose()
        };
        let train_subset = subset(&d.train_subset, "data.train_subset")?;
        let test_subset = subset(&d.test_subset, "data.test_subset")?;
        let split_seed = match &d.split_seed {
            Some(s) => self.count(s, "data.split_seed", 0)? as u64,
            None => 0,
        };

        Ok(DataConfig {
            dataset,
            path,
            validation,
            train_subset,
            test_subset,
            split_seed,
        })
    }

    fn methods(
        &self,
        raw: &Option<Spanned<Vec<Spanned<String>>>>,
    ) -> Result<Vec<Method>, ConfigError> {
        let mut methods = Vec::new();
        match raw {
            None => methods.push(Method::Logit),
            Some(list) => {
                if list.get_ref().is_empty() {
                    return Err(self.at(
                        list,
                        "grid.method",
                        &format!("is empty; give at least one of {}", Method::NAMES),
                    ));
                }
                for m in list.get_ref() {
                    let method = Method::parse(m.get_ref()).ok_or_else(|| {
                        self.at(
                            m,
                            "grid.method",
                            &format!(
                                "unknown method \"{}\"; allowed: {}",
                                m.get_ref(),
                                Method::NAMES
                            ),
                        )
                    })?;
                    if methods.contains(&method) {
                        return Err(self.at(
                            m,
                            "grid.method",
                            &format!("\"{}\" appears twice; list each method once", m.get_ref()),
                        ));
                    }
                    methods.push(method);
                }
            }
        }

        Ok(methods)
    }

    fn schedule(&self, raw: &Option<RawSchedule>) -> Result<ScheduleConfig, ConfigError> {
        let mut schedule = ScheduleConfig {
            devices: Devices::Auto,
            workers_per_device: None,
            fuse: Fuse::Auto,
            fuse_max: 64,
            checkpoint_minutes: default_checkpoint_minutes(),
            numerics: crate::platform::numerics::Numerics::default(),
            deterministic: false,
        };
        if let Some(sch) = raw {
            if let Some(n) = &sch.numerics {
                let names = crate::platform::numerics::Numerics::NAMES;
                schedule.numerics = match n.get_ref() {
                    toml::Value::String(s) => crate::platform::numerics::Numerics::parse(s)
                        .ok_or_else(|| {
                            self.at(
                                n,
                                "schedule.numerics",
                                &format!("\"{s}\" is not a numerics mode: use {names}"),
                            )
                        })?,
                    other => {
                        return Err(self.at(
                            n,
                            "schedule.numerics",
                            &format!("expected {names}, got {other}"),
                        ))
                    }
                };
            }
            if let Some(d) = &sch.deterministic {
                schedule.deterministic = match d.get_ref() {
                    toml::Value::Boolean(b) => *b,
                    other => {
                        return Err(self.at(
                            d,
                            "schedule.deterministic",
                            &format!("expected true or false, got {other}"),
                        ))
                    }
                };
            }
            if let Some(m) = &sch.checkpoint_minutes {
                schedule.checkpoint_minutes = self
                    .count(m, "schedule.checkpoint_minutes", 0)?
                    .min(u32::MAX as usize) as u32;
            }
            if let Some(dev) = &sch.devices {
                schedule.devices = match dev.get_ref() {
                    RawDevices::One(s) => Devices::parse(s),
                    RawDevices::List(list) => Devices::list(list.iter().map(String::as_str)),
                }
                .map_err(|why| self.at(dev, "schedule.devices", &why))?;
            }
            if let Some(w) = &sch.workers_per_device {
                schedule.workers_per_device = Some(self.positive(
                    w,
                    "schedule.workers_per_device",
                    "runs at once on each device",
                )?);
            }
            if let Some(f) = &sch.fuse {
                schedule.fuse = match f.get_ref() {
                    RawFuse::Flag(true) => Fuse::On,
                    RawFuse::Flag(false) => Fuse::Off,
                    RawFuse::Word(w) if w == "auto" => Fuse::Auto,
                    RawFuse::Word(w) => {
                        return Err(self.at(
                            f,
                            "schedule.fuse",
                            &format!("\"{w}\" is not allowed: use \"auto\", true or false"),
                        ))
                    }
                };
            }
            if let Some(m) = &sch.fuse_max {
                schedule.fuse_max =
                    self.positive(m, "schedule.fuse_max", "students in one fused group")?;
            }
        }

        Ok(schedule)
    }

    fn search(
        &self,
        raw: &Option<RawSearch>,
        seeds: &[u64],
        epochs: u32,
    ) -> Result<Search, ConfigError> {
        let mut search = Search::default();
        let Some(r) = raw else {
            return Ok(search);
        };
        if let Some(s) = &r.strategy {
            search.strategy = match s.get_ref().as_str() {
                "grid" => Strategy::Grid,
                "halving" => Strategy::Halving,
                other => {
                    return Err(self.at(
                        s,
                        "search.strategy",
                        &format!("unknown strategy \"{other}\"; use \"grid\" (every cell trains in full) or \"halving\" (successive halving)"),
                    ))
                }
            };
        }
        if let Some(m) = &r.min_epochs {
            search.min_epochs =
                self.positive(m, "search.min_epochs", "epochs of the first rung")?;
            if search.min_epochs > epochs {
                return Err(self.at(
                    m,
                    "search.min_epochs",
                    &format!(
                        "is {} but [student] epochs is {epochs}; the first rung cannot train longer than the whole schedule",
                        search.min_epochs
                    ),
                ));
            }
        }
        if let Some(e) = &r.eta {
            search.eta = self.positive(e, "search.eta", "the factor between rungs")?;
            if search.eta < 2 {
                return Err(self.at(
                    e,
                    "search.eta",
                    "must be ≥ 2 (each rung keeps 1/eta of the cells); e.g. eta = 3",
                ));
            }
        }
        if search.strategy == Strategy::Grid {
            for (set, key) in [
                (r.min_epochs.as_ref().map(|s| s.span()), "search.min_epochs"),
                (r.eta.as_ref().map(|s| s.span()), "search.eta"),
            ] {
                if let Some(span) = set {
                    return Err(self.err(
                        Some(span),
                        Some(key),
                        "applies to strategy = \"halving\" only; set strategy = \"halving\" or remove it",
                    ));
                }
            }
        }
        if let Some(list) = &r.confirm_seeds {
            if list.get_ref().is_empty() {
                return Err(self.at(
                    list,
                    "search.confirm_seeds",
                    "is empty; list the extra seeds (e.g. confirm_seeds = [2, 3, 4]) or remove the key",
                ));
            }
            for s in list.get_ref() {
                let v = *s.get_ref();
                if v < 0 {
                    return Err(self.at(
                        s,
                        "search.confirm_seeds",
                        &format!("seeds must be whole numbers ≥ 0, got {v}"),
                    ));
                }
                if seeds.contains(&(v as u64)) || search.confirm_seeds.contains(&(v as u64)) {
                    return Err(self.at(
                        s,
                        "search.confirm_seeds",
                        &format!(
                            "seed {v} is already {}; confirmation seeds must be new ones",
                            if seeds.contains(&(v as u64)) {
                                "in `seeds`"
                            } else {
                                "listed"
                            }
                        ),
                    ));
                }
                search.confirm_seeds.push(v as u64);
            }
        }
        if let Some(t) = &r.confirm_top {
            search.confirm_top = self.positive(t, "search.confirm_top", "cells to confirm")?;
            if search.confirm_seeds.is_empty() {
                return Err(self.at(
                    t,
                    "search.confirm_top",
                    "has no effect without confirm_seeds; add e.g. confirm_seeds = [2, 3, 4]",
                ));
            }
        }
        Ok(search)
    }

    fn validate(&self, raw: RawSweep) -> Result<Sweep, ConfigError> {
        let name = self.name(&raw.name)?;
        let seeds = self.seeds(&raw.seeds)?;
        let data = self.data(&raw.data)?;
        let g = &raw.grid;
        let methods = self.methods(&g.method)?;
        // what a model must do in this sweep (TorchScript files are run once to check it)
        let check = ModelCheck {
            shape: data.dataset.image_shape(),
            classes: data.dataset.classes() as i64,
            features: methods.contains(&Method::Feature),
            init: Default::default(),
            in_grid: false,
            student: false,
        };
        let t = &raw.teacher;
        let teacher = self.phase(
            "teacher",
            t.keys(),
            machine_cores(),
            (crate::model::Arch::Teacher, check),
        )?;
        let s = &raw.student;
        let student = self.phase(
            "student",
            s.keys(),
            1,
            (
                crate::model::Arch::Student,
                ModelCheck {
                    in_grid: g.student_model.is_some(),
                    student: true,
                    ..check
                },
            ),
        )?;
        self.remember("teacher.batch_size", t.batch_size.span());
        if let Some(th) = &t.threads {
            self.remember("teacher.threads", th.span());
        }
        self.remember("student.batch_size", s.batch_size.span());

        let temperatures = self.axis(
            &g.temperature,
            "grid.temperature",
            "finite numbers > 0",
            |v| v.is_finite() && v > 0.0,
        )?;
        let alphas = self.axis(&g.alpha, "grid.alpha", "numbers in [0, 1]", |v| {
            (0.0..=1.0).contains(&v)
        })?;

        let check = ModelCheck {
            init: student.init,
            student: true,
            ..check
        };
        let student_models = self.student_models(&g.student_model, s, &check)?;
        let schedule = self.schedule(&raw.schedule)?;
        let search = self.search(&raw.search, &seeds, student.epochs)?;
        Ok(Sweep {
            name,
            seeds,
            data,
            teacher,
            student,
            cache_teacher_logits: s.cache_teacher_logits.unwrap_or(true),
            temperatures,
            alphas,
            methods,
            student_models,
            baseline: g.baseline.unwrap_or(true),
            schedule,
            search,
            method_grids: Vec::new(),
            logit_norm: plain_only(),
            zscore_temperatures: Vec::new(),
            methods_fixed: Default::default(),
            source: SourceMap {
                file: self.file.clone(),
                keys: self.keys.take(),
            },
        })
    }
}

/// What the sweep asks of a model: its input shape and classes, whether feature distillation runs,
/// and the role's `init`.
#[derive(Debug, Clone, Copy)]
struct ModelCheck {
    shape: [i64; 3],
    classes: i64,
    features: bool,
    init: crate::model::Init,
    /// The role's models are `[grid] student_model`'s list.
    in_grid: bool,
    /// A student's model (feature distillation needs its `head` too).
    student: bool,
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const GOOD: &str = r#"
name = "t"
seeds = [0, 1]

[data]
dataset = "fashion-mnist"
validation = 100
train_subset = 500

[teacher]
epochs = 1
batch_size = 64
lr = 0.001

[student]
epochs = 2
batch_size = 64
lr = 0.001

[grid]
temperature = [1, 2.5, 0.1, 1e1]
alpha = [0, 0.5, 1]
"#;

    fn err(text: &str) -> ConfigError {
        parse(text, Path::new("s.toml")).expect_err("should be rejected")
    }

    fn with(from: &str, to: &str) -> String {
        assert!(GOOD.contains(from), "test bug: {from:?} not in GOOD");
        GOOD.replacen(from, to, 1)
    }

    #[test]
    fn numerics_and_determinism_are_read_and_checked() {
        use crate::platform::numerics::Numerics;
        let s = parse(GOOD, Path::new("s.toml")).unwrap();
        assert_eq!(s.schedule.numerics, Numerics::Portable, "the default");
        assert!(!s.schedule.deterministic);
        let s = parse(
            &format!("{GOOD}\n[schedule]\nnumerics = \"native\"\ndeterministic = true\n"),
            Path::new("s.toml"),
        )
        .unwrap();
        assert_eq!(s.schedule.numerics, Numerics::Native);
        assert!(s.schedule.deterministic);
        let lines = GOOD.lines().count();
        for (keys, key, says) in [
            (
                "numerics = \"fast\"",
                "schedule.numerics",
                "\"portable\" or \"native\"",
            ),
            (
                "numerics = 1",
                "schedule.numerics",
                "\"portable\" or \"native\"",
            ),
            (
                "deterministic = \"yes\"",
                "schedule.deterministic",
                "true or false",
            ),
        ] {
            let e = err(&format!("{GOOD}\n[schedule]\n{keys}\n"));
            assert_eq!(e.key.as_deref(), Some(key), "{e}");
            assert_eq!(e.at.map(|(l, _)| l), Some(lines + 3), "{e}");
            assert!(e.message.contains(says), "{e}");
        }
    }

    #[test]
    fn precision_is_read_per_role_and_fp16_is_refused_with_the_reason() {
        use crate::train::Precision;
        let s = parse(
            &with(
                "[student]\nepochs = 2",
                "[student]\nprecision = \"bf16\"\nepochs = 2",
            ),
            Path::new("s.toml"),
        )
        .unwrap();
        assert_eq!(s.student.precision, Precision::Bf16);
        assert_eq!(s.teacher.precision, Precision::Fp32);
        let e = err(&with(
            "[teacher]\nepochs = 1",
            "[teacher]\nprecision = \"fp16\"\nepochs = 1",
        ));
        assert_eq!(e.key.as_deref(), Some("teacher.precision"));
        assert!(e.at.is_some() && e.message.contains("use \"bf16\""), "{e}");
        let e = err(&with(
            "[teacher]\nepochs = 1",
            "[teacher]\nprecision = \"tf32\"\nepochs = 1",
        ));
        assert!(
            e.message.contains("\"fp32\" (the default) or \"bf16\""),
            "{e}"
        );
        // float32 stays out of the serialized phase (and so of run keys)
        let plain =
            serde_json::to_string(&parse(GOOD, Path::new("s.toml")).unwrap().student).unwrap();
        assert!(!plain.contains("precision"), "{plain}");
    }

    #[test]
    fn optimizers_and_schedules_are_read_and_checked() {
        use crate::train::optim::{Algorithm, Schedule};
        let teacher = |keys: &str| {
            with(
                "[teacher]\nepochs = 1",
                &format!("[teacher]\n{keys}\nepochs = 240"),
            )
        };
        let s = parse(
            &teacher(
                "optimizer = \"sgd\"\nmomentum = 0.9\nnesterov = true\nweight_decay = 5e-4\n\
                 schedule = \"multistep\"\nmilestones = [150, 180, 210]\ngamma = 0.1\nwarmup_epochs = 5",
            ),
            Path::new("s.toml"),
        )
        .unwrap();
        let r = &s.teacher.recipe;
        assert_eq!(
            (r.optimizer, r.momentum, r.nesterov, r.weight_decay),
            (Algorithm::Sgd, 0.9, true, 5e-4)
        );
        assert_eq!(
            (r.schedule, r.milestones.clone(), r.gamma, r.warmup_epochs),
            (Schedule::Multistep, vec![150, 180, 210], 0.1, 5)
        );
        assert!(s.student.recipe.is_default(), "per role");
        let cases = [
            ("optimizer = \"lamb\"", "teacher.optimizer", "\"sgd\""),
            ("momentum = 0.9", "teacher.momentum", "optimizer = \"sgd\""),
            (
                "optimizer = \"sgd\"\nnesterov = true",
                "teacher.nesterov",
                "momentum > 0",
            ),
            (
                "optimizer = \"sgd\"\nmomentum = 1.5",
                "teacher.momentum",
                "[0, 1)",
            ),
            ("weight_decay = -1e-4", "teacher.weight_decay", "≥ 0"),
            ("schedule = \"step\"", "teacher.schedule", "\"cosine\""),
            (
                "schedule = \"multistep\"",
                "teacher.schedule",
                "needs milestones",
            ),
            (
                "schedule = \"multistep\"\nmilestones = [150, 300]",
                "teacher.milestones",
                "milestone 300 is outside epochs 1 … 239",
            ),
            (
                "schedule = \"multistep\"\nmilestones = [180, 150]",
                "teacher.milestones",
                "must increase",
            ),
            (
                "milestones = [10]",
                "teacher.milestones",
                "\"multistep\" only",
            ),
            (
                "schedule = \"multistep\"\nmilestones = [10]\ngamma = -0.1",
                "teacher.gamma",
                "> 0",
            ),
            ("gamma = 0.5", "teacher.gamma", "\"multistep\" only"),
            ("warmup_epochs = 240", "teacher.warmup_epochs", "0 … 239"),
            (
                "schedule = \"multistep\"\nmilestones = [3]\nwarmup_epochs = 5",
                "teacher.warmup_epochs",
                "first milestone (3)",
            ),
        ];
        for (keys, key, want) in cases {
            let e = err(&teacher(keys));
            assert_eq!(e.key.as_deref(), Some(key), "{keys}: {e}");
            assert!(e.to_string().contains(want), "{keys}: {e}");
            assert!(e.at.is_some(), "{keys}: a line and column");
        }
    }

    #[test]
    fn augmentation_is_read_per_role_and_checked() {
        let s = parse(
            &with(
                "[student]\nepochs = 2",
                "[student]\naugment = \"crop-flip\"\nepochs = 2",
            ),
            Path::new("s.toml"),
        )
        .unwrap();
        assert_eq!(s.student.augment, crate::train::augment::Augment::CropFlip);
        assert!(s.teacher.augment.is_none());
        let e = err(&with(
            "[student]\nepochs = 2",
            "[student]\naugment = \"mixup\"\nepochs = 2",
        ));
        assert_eq!(e.key.as_deref(), Some("student.augment"));
        assert!(e.to_string().contains("\"crop-flip\""), "{e}");
    }

    #[test]
    fn good_file_parses_with_defaults() {
        let s = parse(GOOD, Path::new("dir/s.toml")).unwrap();
        assert_eq!(s.name, "t");
        assert_eq!(s.seeds, vec![0, 1]);
        assert_eq!(s.data.dataset, DatasetKind::FashionMnist);
        assert_eq!(
            s.data.path,
            PathBuf::from("/usr/share/datasets/fashion-mnist")
        );
        assert_eq!(s.data.train_subset, Some(500));
        assert_eq!(s.data.test_subset, None);
        assert_eq!(s.student.epochs, 2);
        assert!(s.baseline && s.cache_teacher_logits);
        assert_eq!(s.schedule.devices, Devices::Auto);
        // PyTorch's initialisation; teachers on every core, students on one
        assert_eq!(s.teacher.init, crate::model::Init::Pytorch);
        assert_eq!(s.student.init, crate::model::Init::Pytorch);
        assert_eq!(s.teacher.threads, machine_cores());
        assert_eq!(s.student.threads, 1);
        assert!(!s.source.has("teacher.threads"));
    }

    #[test]
    fn init_and_threads_are_read_and_checked() {
        let s = parse(
            &with(
                "[teacher]\nepochs = 1",
                "[teacher]\ninit = \"kaiming\"\nthreads = 3\nepochs = 1",
            ),
            Path::new("s.toml"),
        )
        .unwrap();
        assert_eq!(s.teacher.init, crate::model::Init::Kaiming);
        assert_eq!(s.teacher.threads, 3);
        assert!(s.source.has("teacher.threads"));
        let e = err(&with(
            "[teacher]\nepochs = 1",
            "[teacher]\ninit = \"he\"\nepochs = 1",
        ));
        assert!(e.to_string().contains("teacher.init"), "{e}");
        assert!(
            e.to_string()
                .contains("\"pytorch\", \"kaiming\" or \"as-saved\""),
            "{e}"
        );
        let e = err(&with(
            "[student]\nepochs = 2",
            "[student]\nthreads = 0\nepochs = 2",
        ));
        assert!(e.to_string().contains("student.threads"), "{e}");
        // --teacher-threads wins over the file, and is checked
        let mut s = parse(GOOD, Path::new("s.toml")).unwrap();
        let o = Overrides {
            teacher_threads: Some(5),
            ..Default::default()
        };
        o.apply(&mut s).unwrap();
        assert_eq!(s.teacher.threads, 5);
        let bad = Overrides {
            teacher_threads: Some(0),
            ..Default::default()
        };
        assert!(bad
            .apply(&mut s)
            .unwrap_err()
            .to_string()
            .contains("--teacher-threads"));
    }

    #[test]
    fn grid_values_keep_their_written_text() {
        let s = parse(GOOD, Path::new("s.toml")).unwrap();
        let t: Vec<_> = s.temperatures.iter().map(|g| g.text.as_str()).collect();
        assert_eq!(t, ["1", "2.5", "0.1", "1e1"]);
        assert_eq!(s.temperatures[3].value, 10.0);
        let a: Vec<_> = s.alphas.iter().map(|g| g.text.as_str()).collect();
        assert_eq!(a, ["0", "0.5", "1"]);
    }

    #[test]
    fn relative_data_path_is_relative_to_the_sweep_file() {
        let s = parse(
            &with("validation = 100", "path = \"d/x\"\nvalidation = 100"),
            Path::new("exp/s.toml"),
        )
        .unwrap();
        assert_eq!(s.data.path, PathBuf::from("exp/d/x"));
    }

    #[test]
    fn unknown_key_names_line_column_and_key() {
        let e = err(&with("[grid]\n", "[grid]\ntemprature = [1]\n"));
        assert_eq!(e.at, Some((21, 1)), "{e}");
        assert!(e.message.contains("temprature"), "{e}");
        assert!(
            e.message.contains("temperature"),
            "should list the allowed keys: {e}"
        );
    }

    #[test]
    fn unknown_top_level_key() {
        let e = err(&format!("nmae = \"x\"\n{GOOD}"));
        assert_eq!(e.at.map(|a| a.0), Some(1));
        assert!(e.message.contains("nmae"), "{e}");
    }

    #[test]
    fn wrong_type() {
        let e = err(&with("epochs = 1", "epochs = \"one\""));
        assert!(e.at.is_some());
        assert!(e.to_string().contains("s.toml:"), "{e}");
    }

    #[test]
    fn temperature_must_be_positive() {
        let e = err(&with("temperature = [1, 2.5", "temperature = [0, 2.5"));
        assert_eq!(e.key.as_deref(), Some("grid.temperature"));
        assert_eq!(e.at, Some((21, 16)));
        assert!(e.message.contains("> 0"), "{e}");
        let e = err(&with("temperature = [1, 2.5", "temperature = [-1, 2.5"));
        assert_eq!(e.key.as_deref(), Some("grid.temperature"));
    }

    #[test]
    fn temperature_must_be_finite() {
        let e = err(&with("temperature = [1, 2.5", "temperature = [inf, 2.5"));
        assert_eq!(e.key.as_deref(), Some("grid.temperature"));
        let e = err(&with("temperature = [1, 2.5", "temperature = [nan, 2.5"));
        assert_eq!(e.key.as_deref(), Some("grid.temperature"));
    }

    #[test]
    fn alpha_must_be_in_unit_interval() {
        let e = err(&with("alpha = [0, 0.5, 1]", "alpha = [0, 1.5]"));
        assert_eq!(e.key.as_deref(), Some("grid.alpha"));
        assert!(e.message.contains("[0, 1]"), "{e}");
        let e = err(&with("alpha = [0, 0.5, 1]", "alpha = [-0.1]"));
        assert_eq!(e.key.as_deref(), Some("grid.alpha"));
    }

    #[test]
    fn empty_grid_axis() {
        let e = err(&with("alpha = [0, 0.5, 1]", "alpha = []"));
        assert_eq!(e.key.as_deref(), Some("grid.alpha"));
        assert!(e.message.contains("empty"), "{e}");
    }

    #[test]
    fn duplicated_grid_value_even_when_written_differently() {
        let e = err(&with("temperature = [1, 2.5", "temperature = [1, 1.0"));
        assert_eq!(e.key.as_deref(), Some("grid.temperature"));
        assert!(e.message.contains("twice"), "{e}");
    }

    #[test]
    fn epochs_and_batch_size_at_least_one() {
        let e = err(&with("epochs = 1", "epochs = 0"));
        assert_eq!(e.key.as_deref(), Some("teacher.epochs"));
        let e = err(&with(
            "batch_size = 64\nlr = 0.001\n\n[student]",
            "batch_size = -3\nlr = 0.001\n\n[student]",
        ));
        assert_eq!(e.key.as_deref(), Some("teacher.batch_size"));
        let e = err(&with("epochs = 2", "epochs = 0"));
        assert_eq!(e.key.as_deref(), Some("student.epochs"));
    }

    #[test]
    fn lr_must_be_positive() {
        let e = err(&with("lr = 0.001\n\n[student]", "lr = 0\n\n[student]"));
        assert_eq!(e.key.as_deref(), Some("teacher.lr"));
        let e = err(&with("lr = 0.001\n\n[grid]", "lr = -1e-3\n\n[grid]"));
        assert_eq!(e.key.as_deref(), Some("student.lr"));
    }

    #[test]
    fn unknown_dataset() {
        let e = err(&with("\"fashion-mnist\"", "\"imagenet\""));
        assert_eq!(e.key.as_deref(), Some("data.dataset"));
        assert!(e.message.contains("cifar10"), "lists what is allowed: {e}");
    }

    #[test]
    fn seeds_required_and_unique() {
        let e = err(&with("seeds = [0, 1]", "seeds = []"));
        assert_eq!(e.key.as_deref(), Some("seeds"));
        let e = err(&with("seeds = [0, 1]", "seeds = [3, 3]"));
        assert_eq!(e.key.as_deref(), Some("seeds"));
        let e = err(&with("seeds = [0, 1]\n", ""));
        assert!(e.message.contains("seeds"), "{e}");
    }

    #[test]
    fn unsafe_names_are_rejected() {
        for bad in ["../x", "/abs", "", ".hidden", "a b"] {
            let e = err(&with("name = \"t\"", &format!("name = \"{bad}\"")));
            assert_eq!(e.key.as_deref(), Some("name"), "{bad}: {e}");
        }
    }

    #[test]
    fn subsets_must_be_positive() {
        let e = err(&with("train_subset = 500", "train_subset = 0"));
        assert_eq!(e.key.as_deref(), Some("data.train_subset"));
    }

    #[test]
    fn empty_file() {
        let e = err("  \n");
        assert!(e.message.contains("empty"), "{e}");
    }

    #[test]
    fn syntax_error_has_a_position() {
        let e = err(&with(
            "lr = 0.001\n\n[student]",
            "lr = = 0.001\n\n[student]",
        ));
        assert_eq!(e.at.map(|a| a.0), Some(13), "{e}");
    }

    #[test]
    fn devices_forms() {
        assert_eq!(Devices::parse("auto").unwrap(), Devices::Auto);
        assert_eq!(Devices::parse("cpu").unwrap(), Devices::Cpu);
        assert_eq!(
            Devices::parse("cuda:0,cuda:2").unwrap(),
            Devices::List(vec![DeviceSpec::Cuda(0), DeviceSpec::Cuda(2)])
        );
        assert!(Devices::parse("gpu0").is_err());
        let s = parse(
            &format!(
                "{GOOD}\n[schedule]\ndevices = [\"cuda:1\", \"cpu\"]\nworkers_per_device = 2\n"
            ),
            Path::new("s.toml"),
        )
        .unwrap();
        assert_eq!(
            s.schedule.devices,
            Devices::List(vec![DeviceSpec::Cuda(1), DeviceSpec::Cpu])
        );
        assert_eq!(s.schedule.workers_per_device, Some(2));
        let s = parse(
            &format!("{GOOD}\n[schedule]\nfuse = true\nfuse_max = 16\n"),
            Path::new("s.toml"),
        )
        .unwrap();
        assert_eq!((s.schedule.fuse, s.schedule.fuse_max), (Fuse::On, 16));
        assert!(
            Fuse::Auto.on(DeviceSpec::Cuda(1))
                && !Fuse::Auto.on(DeviceSpec::Cpu)
                && Fuse::On.on(DeviceSpec::Cpu)
                && !Fuse::Off.on(DeviceSpec::Cuda(0))
        );
        let e = err(&format!("{GOOD}\n[schedule]\nfuse = \"sometimes\"\n"));
        assert_eq!(e.key.as_deref(), Some("schedule.fuse"));
        let e = err(&format!("{GOOD}\n[schedule]\nfuse_max = 0\n"));
        assert_eq!(e.key.as_deref(), Some("schedule.fuse_max"));
        let e = err(&format!("{GOOD}\n[schedule]\ndevices = \"tpu\"\n"));
        assert_eq!(e.key.as_deref(), Some("schedule.devices"));
        // one GPU, two spellings: refused, so it can never get two slots
        let e = err(&format!(
            "{GOOD}\n[schedule]\ndevices = [\"cuda:1\", \"cuda:01\"]\n"
        ));
        assert!(
            e.message.contains("cuda:1 is listed twice"),
            "{}",
            e.message
        );
    }

    #[test]
    fn methods_default_to_logit_and_are_checked() {
        assert_eq!(
            parse(GOOD, Path::new("s.toml")).unwrap().methods,
            vec![Method::Logit]
        );
        let s = parse(
            &with(
                "alpha = [0, 0.5, 1]",
                "alpha = [0.5]\nmethod = [\"imitation\", \"logit\", \"feature\"]",
            ),
            Path::new("s.toml"),
        )
        .unwrap();
        assert_eq!(
            s.methods,
            vec![Method::Imitation, Method::Logit, Method::Feature]
        );
        let e = err(&with(
            "alpha = [0, 0.5, 1]",
            "alpha = [0.5]\nmethod = [\"logit\", \"hint\"]",
        ));
        assert_eq!(e.key.as_deref(), Some("grid.method"));
        assert!(e.message.contains("imitation"), "{e}");
        let e = err(&with(
            "alpha = [0, 0.5, 1]",
            "alpha = [0.5]\nmethod = [\"logit\", \"logit\"]",
        ));
        assert!(e.message.contains("twice"), "{e}");
        let e = err(&with("alpha = [0, 0.5, 1]", "alpha = [0.5]\nmethod = []"));
        assert_eq!(e.key.as_deref(), Some("grid.method"));
    }

    #[test]
    fn missing_file_says_so() {
        let e = load(Path::new("/nonexistent/sweep.toml")).unwrap_err();
        assert!(e.message.contains("no such file"), "{e}");
    }
}
