//! A student's grid coordinate ([`Coord`]): the method, its hyper-parameters as written
//! ([`GridValue`]), and the student model. Plan, records, search cells and report cells all use it;
//! run ids, keys and CSV cells are generated from it and never parsed back. Nothing here names a
//! method but logit KD, whose ids and keys are those of every sweep before methods.

use super::{Fixed, Method};
use crate::model::Arch;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A grid value exactly as written in the file (`0.1` stays `0.1` in run ids, file names and CSVs)
/// together with its numeric value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GridValue {
    pub text: String,
    pub value: f64,
}

impl fmt::Display for GridValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl GridValue {
    /// A value written as `text` (for defaults and tests).
    pub fn of(text: &str) -> GridValue {
        GridValue {
            text: text.into(),
            value: text.parse().unwrap_or(f64::NAN),
        }
    }
}

/// One student's grid coordinate: the method, its hyper-parameters, whether logits are z-scored
/// first, and the student's network (`None`: the sweep's one student model).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Coord {
    pub method: Method,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<GridValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alpha: Option<GridValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beta: Option<GridValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gamma: Option<GridValue>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub temperatures: Vec<GridValue>,
    /// Logit standardisation: teacher and student logits z-scored per sample before the
    /// temperature.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub zscore: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<Arch>,
    /// `[grid] teacher_epoch`: the teacher's snapshot after this epoch is the one distilled from
    /// (absent: the trained teacher).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teacher_epoch: Option<u32>,
}

impl Coord {
    /// Logit KD at (T, α): the coordinate every sweep had before methods.
    pub fn logit(t: GridValue, a: GridValue) -> Coord {
        Coord {
            temperature: Some(t),
            alpha: Some(a),
            ..Coord::of(Method::Logit)
        }
    }

    /// A coordinate of `method` with no values yet.
    pub fn of(method: Method) -> Coord {
        Coord {
            method,
            temperature: None,
            alpha: None,
            beta: None,
            gamma: None,
            temperatures: Vec::new(),
            zscore: false,
            model: None,
            teacher_epoch: None,
        }
    }

    /// The part of a run id that names this cell (after `student-`, before `-s<seed>`), with the
    /// model's tag first when the sweep has a student-model axis (`tag`: "resnet8-" or ""). Logit KD
    /// keeps the ids of every sweep before methods (`T4-a0.5`); feature and imitation theirs
    /// (`feature-a0.5`).
    pub fn id_part(&self, tag: &str) -> String {
        // each axis that has a value, in one order for every method: T (or the set), α, β, γ
        let mut axes: Vec<String> = Vec::new();
        if let Some(t) = &self.temperature {
            axes.push(format!("T{t}"));
        }
        if !self.temperatures.is_empty() {
            let ts: Vec<&str> = self.temperatures.iter().map(|t| t.text.as_str()).collect();
            axes.push(format!("T{}", ts.join("_")));
        }
        for (letter, g) in [("a", &self.alpha), ("b", &self.beta), ("g", &self.gamma)] {
            if let Some(g) = g {
                axes.push(format!("{letter}{g}"));
            }
        }
        let z = if self.zscore { "zscore-" } else { "" };
        let axes = axes.join("-");
        let body = match self.method {
            Method::Logit => format!("{z}{axes}"),
            m => format!("{}-{z}{axes}", m.name()),
        };
        let snapshot = self
            .teacher_epoch
            .map_or(String::new(), |e| format!("te{e}-"));
        format!("{tag}{snapshot}{body}")
    }

    /// The fields this coordinate adds to a student's key. Logit KD's are exactly those of before
    /// methods ({temperature, alpha}); feature and imitation add their method; the newer methods add
    /// their method, their other axes and, when they apply, the sweep's fixed settings.
    pub fn key_fields(&self, fixed: &Fixed) -> serde_json::Map<String, serde_json::Value> {
        use serde_json::json;
        let mut m = serde_json::Map::new();
        m.insert(
            "temperature".into(),
            json!(self.temperature.as_ref().map(|g| g.value)),
        );
        m.insert(
            "alpha".into(),
            json!(self.alpha.as_ref().map_or(0.0, |g| g.value)),
        );
        if !self.method.is_logit() {
            m.insert("method".into(), self.method.name().into());
        }
        for (name, g) in [("beta", &self.beta), ("gamma", &self.gamma)] {
            if let Some(g) = g {
                m.insert(name.into(), json!(g.value));
            }
        }
        if !self.temperatures.is_empty() {
            let ts: Vec<f64> = self.temperatures.iter().map(|g| g.value).collect();
            m.insert("temperatures".into(), json!(ts));
        }
        if self.zscore {
            m.insert("zscore".into(), true.into());
        }
        if let Some((name, value)) = self.method.table().and_then(|t| t.settings_key) {
            m.insert(name.into(), value(fixed));
        }
        m
    }

    /// The hyper-parameters beyond T and α as one readable cell ("teacher@2", "β=8", "T={2,3,4}",
    /// "z-score"), empty for the methods of before.
    pub fn extra_text(&self) -> String {
        let mut parts = Vec::new();
        // a `[grid] teacher_epoch` cell: the snapshot it distilled from tells it from its twins
        if let Some(e) = self.teacher_epoch {
            parts.push(format!("teacher@{e}"));
        }
        if let Some(b) = &self.beta {
            parts.push(format!("β={b}"));
        }
        if let Some(g) = &self.gamma {
            parts.push(format!("γ={g}"));
        }
        if !self.temperatures.is_empty() {
            let ts: Vec<&str> = self.temperatures.iter().map(|t| t.text.as_str()).collect();
            parts.push(format!("T={{{}}}", ts.join(",")));
        }
        if self.zscore {
            parts.push("z-score".into());
        }
        parts.join(" ")
    }

    /// Whether two coordinates are one cell: the same method, z-scoring and axis values (compared
    /// by value, not as written); the student model is the caller's to compare.
    pub fn same_values(&self, other: &Coord) -> bool {
        let v = |g: &Option<GridValue>| g.as_ref().map(|g| g.value);
        let set = |c: &Coord| c.temperatures.iter().map(|g| g.value).collect::<Vec<_>>();
        self.method == other.method
            && self.teacher_epoch == other.teacher_epoch
            && self.zscore == other.zscore
            && v(&self.temperature) == v(&other.temperature)
            && v(&self.alpha) == v(&other.alpha)
            && v(&self.beta) == v(&other.beta)
            && v(&self.gamma) == v(&other.gamma)
            && set(self) == set(other)
    }

    /// Whether this cell's students may train in a fused group: the fused step computes plain logit
    /// KD's loss only (no z-scoring, no other method).
    pub fn fusable(&self) -> bool {
        self.method.fusable() && !self.zscore
    }

    /// The cell's method in words for plan lines: "dkd", "logit + z-score".
    pub fn method_text(&self) -> String {
        if self.zscore {
            format!("{} + z-score", self.method.name())
        } else {
            self.method.name().to_string()
        }
    }

    /// T of a run, 1 for a run without one.
    pub fn temperature_value(&self) -> f64 {
        self.temperature.as_ref().map_or(1.0, |g| g.value)
    }

    /// α of a run, 0 (plain cross-entropy) for a run without one.
    pub fn alpha_value(&self) -> f64 {
        self.alpha.as_ref().map_or(0.0, |g| g.value)
    }
}
