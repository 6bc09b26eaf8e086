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

impl RawSweep {
    /// The tables a sweep file must have, with the keys each must hold (named when one is missing).
    pub(super) const TABLES: [(&'static str, &'static str); 4] = [
        ("data", "dataset"),
        ("teacher", "epochs, batch_size and lr"),
        ("student", "epochs, batch_size and lr"),
        ("grid", "temperature and alpha"),
    ];
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
    pub(super) channels_last: Option<Spanned<bool>>,
    pub(super) label_smoothing: Option<Spanned<f64>>,
    /// The students' setting ([student] only; in [teacher] an error that says so).
    pub(super) cache_teacher_logits: Option<Spanned<bool>>,
}

/// [`RawGrid`]'s own keys: a table under one of these names (`alpha = { … }`) is a mistyped key,
/// not a method's table (`config::tests` checks the list against serde's).
pub(super) const GRID_KEYS: &[&str] = &[
    "temperature",
    "alpha",
    "method",
    "student_model",
    "teacher_epoch",
    "baseline",
    "logit_norm",
    "zscore_temperature",
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGrid {
    /// Logit KD's temperatures: required only where a listed method takes them.
    pub(super) temperature: Option<Spanned<Vec<Spanned<f64>>>>,
    /// The α of logit, feature and imitation KD (and the default of the tables that take it).
    pub(super) alpha: Option<Spanned<Vec<Spanned<f64>>>>,
    pub(super) method: Option<Spanned<Vec<Spanned<String>>>>,
    pub(super) student_model: Option<Spanned<Vec<Spanned<String>>>>,
    pub(super) teacher_epoch: Option<Spanned<Vec<Spanned<i64>>>>,
    pub(super) baseline: Option<bool>,
    pub(super) logit_norm: Option<Spanned<Vec<Spanned<String>>>>,
    pub(super) zscore_temperature: Option<Spanned<Vec<Spanned<f64>>>>,
    /// The `[grid.<name>]` tables, taken out of `[grid]` before it is read (the document reader
    /// does) and read as written: each is checked against its method's declared keys
    /// ([`crate::distill::Table`]), so no method has a struct here.
    #[serde(skip)]
    pub(super) tables: Vec<RawTable>,
    /// Where `[grid]` is written (its header), for a key missing from it.
    #[serde(skip)]
    pub(super) span: std::ops::Range<usize>,
}

/// A `[grid.<name>]` table as written: its name, its place (the header) and its keys' values.
pub(super) struct RawTable {
    pub(super) name: String,
    pub(super) span: std::ops::Range<usize>,
    /// In the order written; `Err(kind)` when `[grid] <name>` is not a table.
    pub(super) keys: Result<Vec<(String, Spanned<RawValue>)>, &'static str>,
}

/// Any TOML value, with the place of every value inside it (for a method table's keys, whose types
/// the table's declaration gives).
#[derive(Debug)]
pub(super) enum RawValue {
    Integer(i64),
    Float(f64),
    Boolean,
    String(String),
    Array(Vec<Spanned<RawValue>>),
    /// A table or a date: never what a method-table key takes.
    Other,
}

impl RawValue {
    /// The value's kind in words, for "expected …, found …".
    pub(super) fn kind(&self) -> &'static str {
        match self {
            Self::Integer(_) => "an integer",
            Self::Float(_) => "a float",
            Self::Boolean => "a boolean",
            Self::String(_) => "a string",
            Self::Array(_) => "an array",
            Self::Other => "a table or a date",
        }
    }
}

impl<'de> Deserialize<'de> for RawValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(RawValueVisitor)
    }
}

struct RawValueVisitor;

impl<'de> serde::de::Visitor<'de> for RawValueVisitor {
    type Value = RawValue;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a TOML value")
    }
    fn visit_i64<E>(self, v: i64) -> Result<RawValue, E> {
        Ok(RawValue::Integer(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<RawValue, E> {
        Ok(i64::try_from(v).map_or(RawValue::Float(v as f64), RawValue::Integer))
    }
    fn visit_f64<E>(self, v: f64) -> Result<RawValue, E> {
        Ok(RawValue::Float(v))
    }
    fn visit_bool<E>(self, _: bool) -> Result<RawValue, E> {
        Ok(RawValue::Boolean)
    }
    fn visit_str<E>(self, v: &str) -> Result<RawValue, E> {
        Ok(RawValue::String(v.to_string()))
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<RawValue, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<RawValue>>()? {
            items.push(item);
        }
        Ok(RawValue::Array(items))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<RawValue, A::Error> {
        while map
            .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
            .is_some()
        {}
        Ok(RawValue::Other)
    }
}

/// An axis as written: values with their places.
pub(super) type RawAxis = Spanned<Vec<Spanned<f64>>>;

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
    pub(super) cuda_graphs: Option<Spanned<toml::Value>>,
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

/// Where each key of a sweep file goes: the tables and the keys serde takes in each, read once from
/// the list serde gives for an unknown key (so they never drift from the structs above).
pub(super) fn keys_by_table() -> &'static [(&'static str, Vec<String>)] {
    fn keys<T: serde::de::DeserializeOwned>() -> Vec<String> {
        let message = toml::from_str::<T>("kd_sweep_no_such_key = 0")
            .err()
            .map(|e| e.message().to_string())
            .unwrap_or_default();
        let expected = message.split_once(", expected ").map_or("", |(_, l)| l);
        // the names are the odd pieces between backquotes
        (expected.split('`').skip(1).step_by(2))
            .map(str::to_string)
            .collect()
    }
    static KEYS: std::sync::LazyLock<Vec<(&str, Vec<String>)>> = std::sync::LazyLock::new(|| {
        vec![
            ("the top level (before any table)", keys::<RawSweep>()),
            ("[data]", keys::<RawData>()),
            ("[teacher] and [student]", keys::<RawPhase>()),
            ("[grid]", keys::<RawGrid>()),
            ("[schedule]", keys::<RawSchedule>()),
            ("[search]", keys::<RawSearch>()),
        ]
    });
    &KEYS
}
