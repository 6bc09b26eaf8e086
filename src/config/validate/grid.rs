//! `[grid]`: the temperature and α axes, the methods, the students' models, and each method's
//! own table (`[grid.dkd]` …), read against the table its method declares
//! ([`crate::distill::Table`]): no method is named here, so a new one adds nothing to this file.

use super::Validator;
use crate::config::raw::{RawAxis, RawGrid, RawValue};
use crate::config::{AxisValues, ConfigError, GridValue, Method, MethodGrid};
use crate::distill::{Fixed, KeyKind, Rule, Table, Values};
use toml::Spanned;

impl Validator<'_> {
    /// A grid axis: non-empty, each value allowed by `ok`, no value twice (1 and 1.0 are the same).
    pub(super) fn axis(
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
    pub(super) fn methods(
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

    /// `logit_norm = ["none", "zscore"]` (`key` for errors): plain logits (false) and/or z-scored
    /// ones (true), each once; absent: plain only.
    fn logit_norm(
        &self,
        raw: &Option<Spanned<Vec<Spanned<String>>>>,
        key: &str,
    ) -> Result<Vec<bool>, ConfigError> {
        let Some(list) = raw else {
            return Ok(vec![false]);
        };
        if list.get_ref().is_empty() {
            return Err(self.at(list, key, "is empty; give \"none\", \"zscore\" or both"));
        }
        let mut out = Vec::new();
        for v in list.get_ref() {
            let z = match v.get_ref().as_str() {
                "none" => false,
                "zscore" => true,
                other => {
                    return Err(self.at(
                        v,
                        key,
                        &format!(
                            "\"{other}\" is not a logit normalisation: use \"none\" (the plain \
                             logits) or \"zscore\" (standardised per sample, Sun et al. 2024)"
                        ),
                    ))
                }
            };
            if out.contains(&z) {
                let word = if z { "zscore" } else { "none" };
                return Err(self.at(v, key, &format!("\"{word}\" appears twice; list each once")));
            }
            out.push(z);
        }
        Ok(out)
    }

    /// `[grid] temperature`: logit KD's temperatures, required when logit KD is listed (the default
    /// method), optional (and empty) otherwise.
    pub(super) fn grid_temperatures(
        &self,
        g: &RawGrid,
        methods: &[Method],
    ) -> Result<Vec<GridValue>, ConfigError> {
        match &g.temperature {
            Some(t) => self.temperatures(t, "grid.temperature"),
            None if methods.contains(&Method::Logit) => {
                Err(self.missing(g, "temperature", &[Method::Logit], "[1, 2, 4, 8]"))
            }
            None => Ok(Vec::new()),
        }
    }

    /// `[grid] alpha`: required when a listed method takes it (logit, feature and imitation KD,
    /// and a table whose α defaults to it and is not written there), optional otherwise.
    pub(super) fn grid_alphas(
        &self,
        g: &RawGrid,
        methods: &[Method],
    ) -> Result<Vec<GridValue>, ConfigError> {
        if let Some(a) = &g.alpha {
            return self.alphas(a, "grid.alpha");
        }
        let takers: Vec<Method> = (methods.iter().copied())
            .filter(|&m| {
                let table = m.table().map(|t| t.name);
                let written = g.tables.iter().find(|t| Some(t.name.as_str()) == table);
                // (a table that is not a table has its own error: not also a missing α)
                m.takes_grid_alpha(|name| {
                    written.is_some_and(|t| match &t.keys {
                        Ok(keys) => keys.iter().any(|(k, _)| k == name),
                        Err(_) => true,
                    })
                })
            })
            .collect();
        match takers.is_empty() {
            true => Ok(Vec::new()),
            false => Err(self.missing(g, "alpha", &takers, "[0.5, 0.9]")),
        }
    }

    /// "missing field `key`", at `[grid]`'s header: which listed methods take it, and an example.
    fn missing(&self, g: &RawGrid, key: &str, takers: &[Method], example: &str) -> ConfigError {
        let names: Vec<String> = (takers.iter())
            .map(|m| match m.table() {
                None => m.title().to_string(),
                Some(t) => format!("{} (its [grid.{}] {key} is not written)", m.title(), t.name),
            })
            .collect();
        let verb = if names.len() == 1 { "takes" } else { "take" };
        self.err(
            Some(g.span.clone()),
            Some(&format!("grid.{key}")),
            &format!(
                "missing field `{key}`: {} {verb} it from [grid]; give e.g. {key} = {example}",
                crate::util::and_list(&names)
            ),
        )
    }

    /// A temperature axis of a method table.
    pub(super) fn temperatures(
        &self,
        raw: &RawAxis,
        key: &str,
    ) -> Result<Vec<GridValue>, ConfigError> {
        self.axis(raw, key, "finite numbers > 0", |v| v.is_finite() && v > 0.0)
    }

    /// An axis of non-negative weights (DKD's and DIST's α, β, γ).
    fn weights(&self, raw: &RawAxis, key: &str) -> Result<Vec<GridValue>, ConfigError> {
        self.axis(raw, key, "finite numbers ≥ 0", |v| {
            v.is_finite() && v >= 0.0
        })
    }

    /// An α axis in [0, 1] (the weight of a distillation term against the cross-entropy).
    pub(super) fn alphas(&self, raw: &RawAxis, key: &str) -> Result<Vec<GridValue>, ConfigError> {
        self.axis(raw, key, "numbers in [0, 1]", |v| (0.0..=1.0).contains(&v))
    }

    /// The `[grid.<name>]` tables: each one a method's ([`Method::table`]) and that method in
    /// `methods`; every listed method with a table gets its axes, read against the table's
    /// declaration (its defaults where a key or the whole table is absent). Returns the grids in
    /// `methods` order and the methods' fixed settings.
    pub(super) fn method_grids(
        &self,
        g: &RawGrid,
        methods: &[Method],
        alphas: &[GridValue],
    ) -> Result<(Vec<MethodGrid>, Fixed), ConfigError> {
        let declared: Vec<&Table> = Method::ALL.iter().filter_map(|m| m.table()).collect();
        // every table's problems at once (the caller keeps the one returned: the report drops the
        // repeat), then the listed methods' tables
        let mut misplaced: Option<ConfigError> = None;
        for t in &g.tables {
            let mut problem = |e: ConfigError| {
                misplaced.get_or_insert(e.clone());
                self.keep::<()>(Err(e));
            };
            let key = format!("grid.{}", t.name);
            let here = |msg: &str| self.err(Some(t.span.clone()), Some(&key), msg);
            let Some(m) = Method::ALL
                .into_iter()
                .find(|m| m.table().is_some_and(|d| d.name == t.name))
            else {
                let names: Vec<String> = declared
                    .iter()
                    .map(|d| format!("[grid.{}]", d.name))
                    .collect();
                let hint = crate::util::nearest(&t.name, declared.iter().map(|d| d.name))
                    .map_or(String::new(), |n| format!("; did you mean [grid.{n}]?"));
                problem(here(&format!(
                    "[grid.{}] is not a method's table; the methods' tables are {}{hint}",
                    t.name,
                    names.join(", ")
                )));
                continue;
            };
            if !methods.contains(&m) {
                problem(here(&format!(
                    "[grid.{}] is given, but \"{}\" is not in [grid] method; add it there or \
                     remove the table",
                    t.name,
                    m.name()
                )));
            } else if let Err(kind) = t.keys {
                let article = if kind.starts_with(['a', 'e', 'i', 'o', 'u']) {
                    "an"
                } else {
                    "a"
                };
                problem(here(&format!(
                    "must be a table of {}'s keys ({}), found {article} {kind}",
                    m.name(),
                    declared_keys(m)
                )));
            }
        }
        if let Some(e) = misplaced {
            return Err(e);
        }
        let mut fixed = Fixed::default();
        let mut grids = Vec::new();
        // every table's problems, not only the first table's
        let mut first: Option<ConfigError> = None;
        for &m in methods {
            let Some(table) = m.table() else { continue };
            let written = g.tables.iter().find(|t| t.name == table.name);
            let keys = match written.map(|t| &t.keys) {
                Some(Ok(keys)) => keys.as_slice(),
                _ => &[],
            };
            match self.method_table(m, table, keys, alphas, &mut fixed) {
                Ok(grid) => grids.push(grid),
                Err(e) => {
                    first.get_or_insert(e.clone());
                    self.keep::<()>(Err(e));
                }
            }
        }
        // the caller keeps this one too: the report drops the repeat
        match first {
            Some(e) => Err(e),
            None => Ok((grids, fixed)),
        }
    }

    /// One method's table: every written key one the table declares, each value as its kind asks;
    /// the declared defaults for the rest.
    fn method_table(
        &self,
        method: Method,
        table: &Table,
        written: &[(String, Spanned<RawValue>)],
        alphas: &[GridValue],
        fixed: &mut Fixed,
    ) -> Result<MethodGrid, ConfigError> {
        // every key's problem is kept (the report lists them all); the first is returned
        let mut errors: Vec<ConfigError> = Vec::new();
        for (name, v) in written {
            if !table.keys.iter().any(|k| k.name == name) {
                let hint = crate::util::nearest(name, table.keys.iter().map(|k| k.name))
                    .map_or(String::new(), |n| format!("; did you mean `{n}`?"));
                errors.push(self.at(
                    v,
                    &format!("grid.{}.{name}", table.name),
                    &format!(
                        "unknown field `{name}`: {} takes {}{hint}",
                        method.name(),
                        table.key_names()
                    ),
                ));
            }
        }
        let mut grid = MethodGrid::empty(method);
        for key in table.keys {
            let path = format!("grid.{}.{}", table.name, key.name);
            let value = written.iter().find(|(n, _)| n == key.name).map(|(_, v)| v);
            if let Some(v) = value {
                self.remember(&path, v.span());
            }
            if let Err(e) = self.method_key(key, value, &path, alphas, &mut grid, fixed) {
                errors.push(e);
            }
        }
        match errors.len() {
            0 => Ok(grid),
            _ => {
                let first = errors.remove(0);
                errors.into_iter().for_each(|e| {
                    self.keep::<()>(Err(e));
                });
                Err(first)
            }
        }
    }

    /// One key of a method's table: its value as its kind asks (written), or its default.
    fn method_key(
        &self,
        key: &crate::distill::Key,
        value: Option<&Spanned<RawValue>>,
        path: &str,
        alphas: &[GridValue],
        grid: &mut MethodGrid,
        fixed: &mut Fixed,
    ) -> Result<(), ConfigError> {
        match (&key.kind, value) {
            (KeyKind::Axis { axis, default, .. }, None) => {
                grid.set(*axis, default_values(default, alphas))
            }
            (KeyKind::Axis { axis, rule, .. }, Some(v)) => {
                grid.set(*axis, self.axis_of(v, path, *rule)?)
            }
            (KeyKind::LogitNorm, v) => {
                let words = v.map(|v| self.words(v, path)).transpose()?;
                grid.logit_norm = self.logit_norm(&words, path)?;
            }
            (KeyKind::ZscoreTemperature, Some(v)) => {
                if !grid.logit_norm.contains(&true) {
                    return Err(self.at(v, path, ZSCORE_ONLY));
                }
                let numbers = self.numbers(v, path)?;
                grid.zscore_temperature = self.temperatures(&numbers, path)?;
            }
            (KeyKind::Epochs { what, set }, Some(v)) => {
                set(fixed, self.positive(&self.integer(v, path)?, path, what)?)
            }
            (KeyKind::Positive { set }, Some(v)) => {
                let x = self.number(v, path)?;
                if !(x.is_finite() && x > 0.0) {
                    return Err(self.at(v, path, &format!("must be a finite number > 0, got {x}")));
                }
                set(fixed, x)
            }
            (_, None) => {}
        }
        Ok(())
    }

    /// An axis of a method's table, its values checked by `rule`.
    fn axis_of(
        &self,
        v: &Spanned<RawValue>,
        key: &str,
        rule: Rule,
    ) -> Result<AxisValues, ConfigError> {
        if rule == Rule::TemperatureSets {
            return self.temperature_sets(v, key).map(AxisValues::Sets);
        }
        let numbers = self.numbers(v, key)?;
        let values = match rule {
            Rule::Weight => self.weights(&numbers, key)?,
            Rule::Fraction => self.alphas(&numbers, key)?,
            _ => self.temperatures(&numbers, key)?,
        };
        Ok(AxisValues::One(values))
    }

    /// Sets of at least two temperatures each (multi-T's `temperatures = [[2, 3, 4, 5, 6]]`).
    fn temperature_sets(
        &self,
        v: &Spanned<RawValue>,
        key: &str,
    ) -> Result<Vec<Vec<GridValue>>, ConfigError> {
        const EXAMPLE: &str = "sets of temperatures, e.g. [[2, 3, 4, 5, 6]]";
        let RawValue::Array(sets) = v.get_ref() else {
            return Err(self.expected(v, key, EXAMPLE));
        };
        if sets.is_empty() {
            return Err(self.at(v, key, &format!("is empty; give {EXAMPLE}")));
        }
        let mut out = Vec::new();
        for set in sets {
            if !matches!(set.get_ref(), RawValue::Array(_)) {
                return Err(self.expected(set, key, EXAMPLE));
            }
            let values = self.temperatures(&self.numbers(set, key)?, key)?;
            if values.len() < 2 {
                return Err(self.at(
                    set,
                    key,
                    "a set needs at least two temperatures (one is plain logit KD)",
                ));
            }
            // the loss averages over the set: its order changes nothing
            let as_set = |v: &[GridValue]| {
                let mut x: Vec<f64> = v.iter().map(|g| g.value).collect();
                x.sort_by(f64::total_cmp);
                x
            };
            if let Some(same) = out
                .iter()
                .find(|o: &&Vec<GridValue>| as_set(o) == as_set(&values))
            {
                let text = |v: &[GridValue]| {
                    let t: Vec<&str> = v.iter().map(|g| g.text.as_str()).collect();
                    format!("[{}]", t.join(", "))
                };
                return Err(self.at(
                    set,
                    key,
                    &format!(
                        "{} is the set {} again (the loss averages over a set, so its order \
                         changes nothing); give each set once",
                        text(&values),
                        text(same)
                    ),
                ));
            }
            out.push(values);
        }
        Ok(out)
    }

    /// An array of numbers (integers or floats) with their places.
    fn numbers(&self, v: &Spanned<RawValue>, key: &str) -> Result<RawAxis, ConfigError> {
        let RawValue::Array(items) = v.get_ref() else {
            return Err(self.expected(v, key, "an array of numbers, e.g. [2, 8]"));
        };
        let mut out = Vec::new();
        for item in items {
            let x = self.number(item, key)?;
            out.push(Spanned::new(item.span(), x));
        }
        Ok(Spanned::new(v.span(), out))
    }

    /// An array of words (`logit_norm = ["none", "zscore"]`).
    fn words(
        &self,
        v: &Spanned<RawValue>,
        key: &str,
    ) -> Result<Spanned<Vec<Spanned<String>>>, ConfigError> {
        let what = "an array of strings, e.g. [\"none\", \"zscore\"]";
        let RawValue::Array(items) = v.get_ref() else {
            return Err(self.expected(v, key, what));
        };
        let mut out = Vec::new();
        for item in items {
            let RawValue::String(s) = item.get_ref() else {
                return Err(self.expected(item, key, what));
            };
            out.push(Spanned::new(item.span(), s.clone()));
        }
        Ok(Spanned::new(v.span(), out))
    }

    /// A number (an integer stands for its float, as serde reads `beta = [8]`).
    fn number(&self, v: &Spanned<RawValue>, key: &str) -> Result<f64, ConfigError> {
        match v.get_ref() {
            RawValue::Integer(i) => Ok(*i as f64),
            RawValue::Float(x) => Ok(*x),
            _ => Err(self.expected(v, key, "a number")),
        }
    }

    /// A whole number.
    fn integer(&self, v: &Spanned<RawValue>, key: &str) -> Result<Spanned<i64>, ConfigError> {
        match v.get_ref() {
            RawValue::Integer(i) => Ok(Spanned::new(v.span(), *i)),
            _ => Err(self.expected(v, key, "a whole number")),
        }
    }

    /// "expected …, found …" at `v`.
    fn expected(&self, v: &Spanned<RawValue>, key: &str, what: &str) -> ConfigError {
        self.at(
            v,
            key,
            &format!("expected {what}, found {}", v.get_ref().kind()),
        )
    }
}

/// A method's keys as the declaration lists them.
fn declared_keys(m: Method) -> String {
    m.table().map_or(String::new(), |t| t.key_names())
}

/// The values of an axis where its key is absent.
fn default_values(default: &Values, alphas: &[GridValue]) -> AxisValues {
    match default {
        Values::Of(texts) => AxisValues::One(texts.iter().map(|t| GridValue::of(t)).collect()),
        Values::Sets(sets) => AxisValues::Sets(
            sets.iter()
                .map(|set| set.iter().map(|t| GridValue::of(t)).collect())
                .collect(),
        ),
        Values::GridAlpha => AxisValues::One(alphas.to_vec()),
    }
}

const ZSCORE_ONLY: &str =
    "gives the temperatures of z-scored cells; add \"zscore\" to logit_norm, or leave it out";

/// `[grid] logit_norm` and `zscore_temperature` for logit KD: (plain and/or z-scored, the
/// z-scored cells' temperatures).
impl Validator<'_> {
    pub(super) fn logit_grid(
        &self,
        g: &RawGrid,
        methods: &[Method],
    ) -> Result<(Vec<bool>, Vec<GridValue>), ConfigError> {
        let norm = self.logit_norm(&g.logit_norm, "grid.logit_norm")?;
        if let (Some(list), false) = (&g.logit_norm, methods.contains(&Method::Logit)) {
            return Err(self.at(list, "grid.logit_norm", "applies to logit KD, which is not in [grid] method (DKD's is [grid.dkd] logit_norm)"));
        }
        let temps = match &g.zscore_temperature {
            None => Vec::new(),
            Some(z) if !norm.contains(&true) => {
                return Err(self.at(z, "grid.zscore_temperature", ZSCORE_ONLY))
            }
            Some(z) => self.temperatures(z, "grid.zscore_temperature")?,
        };
        Ok((norm, temps))
    }
}

impl Validator<'_> {
    /// `[grid] teacher_epoch`: epochs of the teacher's training (each ≥ 1, at most its `epochs`, once
    /// each) whose weights the students distil from.
    pub(super) fn teacher_epochs(
        &self,
        axis: &Spanned<Vec<Spanned<i64>>>,
        teacher_epochs: u32,
    ) -> Result<Vec<u32>, ConfigError> {
        let key = "grid.teacher_epoch";
        if axis.get_ref().is_empty() {
            return Err(self.at(
                axis,
                key,
                "is empty; list the teacher's epochs to distil from (e.g. [10, 30, 60]), or leave the \
                 key out to distil from the trained teacher",
            ));
        }
        if teacher_epochs == 0 {
            return Err(self.at(
                axis,
                key,
                "needs a teacher that trains here: with [teacher] epochs = 0 the teacher is used as \
                 loaded and has no epochs to take snapshots of",
            ));
        }
        let mut seen = Vec::new();
        for e in axis.get_ref() {
            let v = *e.get_ref();
            if v < 1 || v > teacher_epochs as i64 {
                return Err(self.at(
                    e,
                    key,
                    &format!(
                        "{v} is not an epoch of the teacher's training; [teacher] epochs = \
                         {teacher_epochs}, so each value is a whole number from 1 to {teacher_epochs}"
                    ),
                ));
            }
            if seen.contains(&(v as u32)) {
                return Err(self.at(e, key, &format!("{v} appears twice; list each epoch once")));
            }
            seen.push(v as u32);
        }
        Ok(seen)
    }
}
