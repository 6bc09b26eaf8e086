//! From the raw file to a [`Sweep`] that cannot hold an invalid value: the diagnostics every table
//! uses (line:column, the key, serde's messages made plain), the whole file table by table, and a
//! file per group of tables ([`roles`], [`grid`], [`data`], [`schedule`]). Rules that belong to a
//! setting's owner (an optimizer's, a method's, a dataset's) are the owner's; this stage only points
//! their problems at the file.

mod data;

pub use data::check_sizes;
mod grid;
mod roles;
mod schedule;

use super::raw::RawSweep;
use super::{check_name, machine_cores, ConfigError, Method, Phase, SourceMap, Sweep};
use crate::model::Arch;
use std::path::PathBuf;
use toml::Spanned;

pub(super) struct Validator<'a> {
    pub(super) text: &'a str,
    pub(super) file: PathBuf,
    /// Positions of keys that later checks point at (see [`SourceMap`]).
    pub(super) keys: std::cell::RefCell<Vec<(String, (usize, usize))>>,
}

impl Validator<'_> {
    pub(super) fn line_col(&self, offset: usize) -> (usize, usize) {
        let before = &self.text[..offset.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        (line, col)
    }
    pub(super) fn err(
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
    pub(super) fn at<T>(&self, s: &Spanned<T>, key: &str, msg: &str) -> ConfigError {
        self.err(Some(s.span()), Some(key), msg)
    }
    pub(super) fn toml_error(&self, e: &toml::de::Error) -> ConfigError {
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
        if let Some(near) = unknown_field_nearest(&msg) {
            msg.push_str(&format!("; did you mean `{near}`?"));
        }
        let key = e.span().and_then(|sp| self.key_at(sp.start));
        self.err(e.span(), key.as_deref(), &msg)
    }
    /// The dotted key written on the line of `offset` (`teacher.epochs`), if that line assigns one.
    pub(super) fn key_at(&self, offset: usize) -> Option<String> {
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
    pub(super) fn positive(
        &self,
        s: &Spanned<i64>,
        key: &str,
        what: &str,
    ) -> Result<u32, ConfigError> {
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
    pub(super) fn count(
        &self,
        s: &Spanned<i64>,
        key: &str,
        min: i64,
    ) -> Result<usize, ConfigError> {
        let v = *s.get_ref();
        if v < min {
            return Err(self.at(s, key, &format!("must be a whole number ≥ {min}, got {v}")));
        }
        Ok(v as usize)
    }
    /// Where `key` is written, for errors found later against the data.
    pub(super) fn remember(&self, key: &str, span: std::ops::Range<usize>) {
        self.keys
            .borrow_mut()
            .push((key.to_string(), self.line_col(span.start)));
    }
    pub(super) fn name(&self, raw: &Spanned<String>) -> Result<String, ConfigError> {
        let name = raw.get_ref().clone();
        check_name(&name).map_err(|why| self.at(raw, "name", &why))?;
        Ok(name)
    }
    pub(super) fn seeds(&self, raw: &Spanned<Vec<Spanned<i64>>>) -> Result<Vec<u64>, ConfigError> {
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
    /// The whole file, table by table.
    pub(super) fn validate(&self, raw: RawSweep) -> Result<Sweep, ConfigError> {
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
        let (teacher, student) = self.roles(&raw, check)?;
        let temperatures = self.temperatures(&g.temperature, "grid.temperature")?;
        let alphas = self.alphas(&g.alpha, "grid.alpha")?;
        let (logit_norm, zscore_temperatures) = self.logit_grid(g, &methods)?;
        let (method_grids, methods_fixed) = self.method_grids(g, &methods, &alphas)?;
        let check = ModelCheck {
            init: student.init,
            student: true,
            ..check
        };
        let student_models = self.student_models(&g.student_model, &raw.student, &check)?;
        let schedule = self.schedule(&raw.schedule)?;
        let search = self.search(&raw.search, &seeds, student.epochs)?;
        Ok(Sweep {
            name,
            seeds,
            data,
            teacher,
            student,
            cache_teacher_logits: raw
                .student
                .cache_teacher_logits
                .as_ref()
                .is_none_or(|c| *c.get_ref()),
            temperatures,
            alphas,
            methods,
            student_models,
            baseline: g.baseline.unwrap_or(true),
            schedule,
            search,
            method_grids,
            logit_norm,
            zscore_temperatures,
            methods_fixed,
            source: SourceMap {
                file: self.file.clone(),
                keys: self.keys.take(),
            },
        })
    }

    /// [teacher] and [student], with the places of the keys checked later against the data.
    fn roles(&self, raw: &RawSweep, check: ModelCheck) -> Result<(Phase, Phase), ConfigError> {
        let (t, s) = (&raw.teacher, &raw.student);
        let teacher = self.phase("teacher", t, machine_cores(), (Arch::Teacher, check))?;
        let in_grid = raw.grid.student_model.is_some();
        let student_check = ModelCheck {
            in_grid,
            student: true,
            ..check
        };
        let student = self.phase("student", s, 1, (Arch::Student, student_check))?;
        self.remember("teacher.batch_size", t.batch_size.span());
        if let Some(th) = &t.threads {
            self.remember("teacher.threads", th.span());
        }
        self.remember("student.batch_size", s.batch_size.span());
        Ok((teacher, student))
    }
}

/// For serde's "unknown field `temprature`, expected one of `temperature`, `alpha`, …": the expected
/// field nearest to the unknown one, when it is a likely slip ([`crate::util::nearest`]).
pub(super) fn unknown_field_nearest(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("unknown field `")?;
    let (unknown, expected) = rest.split_once("`, expected ")?;
    // the expected names are the odd pieces between backquotes
    let names = expected.split('`').skip(1).step_by(2);
    crate::util::nearest(unknown, names)
}

/// What the sweep asks of a model: its input shape and classes, whether feature distillation runs,
/// and the role's `init`.
#[derive(Debug, Clone, Copy)]
pub(super) struct ModelCheck {
    pub(super) shape: [i64; 3],
    pub(super) classes: i64,
    pub(super) features: bool,
    pub(super) init: crate::model::Init,
    /// The role's models are `[grid] student_model`'s list.
    pub(super) in_grid: bool,
    /// A student's model (feature distillation needs its `head` too).
    pub(super) student: bool,
}
