//! From the raw file to a [`Sweep`] that cannot hold an invalid value: the diagnostics every table
//! uses (line:column, the key, serde's messages made plain), the whole file table by table, and a
//! file per group of tables ([`roles`], [`grid`], [`data`], [`schedule`]). Rules that belong to a
//! setting's owner (an optimizer's, a method's, a dataset's) are the owner's; this stage only points
//! their problems at the file.

mod data;

pub use data::{check_data, check_sizes};
mod document;
mod evaluated;
mod grid;
mod lines;
mod roles;
mod schedule;

use super::raw::RawSweep;
use super::{
    check_name, machine_cores, ConfigError, ConfigErrors, Method, Phase, SourceMap, Sweep,
};
use crate::model::Arch;
use std::path::PathBuf;
use toml::Spanned;

/// The most runs at once on one device, and why not more.
pub(in crate::config) const MOST_WORKERS_PER_DEVICE: (u32, &str) = (
    256,
    "each worker is a process holding its own copy of the data; a few per device keep it busy",
);

/// The most intra-op threads of a run, and why not more.
pub const MOST_THREADS: (u32, &str) = (1024, "one per core is the most that helps");

/// Why `v` is no count of `what` from 1 to `most` (`None` when it is one): the words of the sweep
/// file's check ([`Validator::positive_at_most`]) and of the command-line flags that replace its keys.
pub(in crate::config) fn outside(v: i64, what: &str, (most, why): (u32, &str)) -> Option<String> {
    if v < 1 {
        return Some(format!("must be a whole number ≥ 1 ({what}), got {v}"));
    }
    (v > most as i64).then(|| format!("{v} is too many: at most {most} ({why})"))
}

pub(super) struct Validator<'a> {
    pub(super) text: &'a str,
    pub(super) file: PathBuf,
    /// Positions of keys that later checks point at (see [`SourceMap`]).
    pub(super) keys: std::cell::RefCell<Vec<(String, (usize, usize))>>,
    /// Every problem found so far: checks go on after one, so that all are reported at once.
    pub(super) errors: std::cell::RefCell<Vec<ConfigError>>,
    /// Where a value of the wrong type was replaced by a placeholder of the right type (see
    /// [`document`]): only the first problem found there is reported.
    pub(super) placeholders: std::cell::RefCell<Vec<(usize, usize)>>,
    /// A misspelt key read as the key it was meant to be (see [`document`]): the offset of its
    /// line's start and that key's name, so that a later problem with its value names that key.
    pub(super) renamed: std::cell::RefCell<Vec<(usize, String)>>,
}

impl Validator<'_> {
    pub(super) fn new(text: &str, file: PathBuf) -> Validator<'_> {
        Validator {
            text,
            file,
            keys: Default::default(),
            errors: Default::default(),
            placeholders: Default::default(),
            renamed: Default::default(),
        }
    }
    /// A check's value; or, when it failed, its error kept for the report and `None`, so that the
    /// checks after it still run.
    pub(super) fn keep<T>(&self, checked: Result<T, ConfigError>) -> Option<T> {
        checked.map_err(|e| self.errors.borrow_mut().push(e)).ok()
    }
    /// The sweep, or every problem found, in file order.
    pub(super) fn finish(&self, sweep: Option<Sweep>) -> Result<Sweep, ConfigErrors> {
        let mut errors = self.errors.take();
        // at a placeholder: its type error, not what later checks think of the placeholder
        let placeholders = self.placeholders.take();
        let mut seen = Vec::new();
        errors.retain(|e| match e.at {
            Some(at) if placeholders.contains(&at) => {
                let first = !seen.contains(&at);
                seen.push(at);
                first
            }
            _ => true,
        });
        match (sweep, ConfigErrors::new(errors)) {
            (Some(s), None) => Ok(s),
            (_, Some(errors)) => Err(errors),
            // a check that gave no value always keeps its error; this is a safety net
            (None, None) => Err(self
                .err(
                    None,
                    None,
                    "is not a valid sweep file (see experiments/quick.toml)",
                )
                .into()),
        }
    }
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
            message: one_line(msg),
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
            (
                "expected a sequence",
                "expected an array: values in brackets, [a, b]",
            ),
            ("expected a boolean", "expected true or false"),
            ("expected a string", "expected a quoted string"),
            ("invalid type: sequence", "invalid type: array"),
            ("invalid type: map", "invalid type: table"),
            ("data did not match any variant of", "expected"),
            ("untagged enum RawFuse", "\"auto\", true or false"),
            (
                "untagged enum RawDevices",
                "\"auto\", \"cpu\" or a list such as [\"cuda:0\"]",
            ),
        ] {
            msg = msg.replace(rust, plain);
        }
        // a number past what a 64-bit integer or float holds
        let integer = msg.ends_with("expected a whole number");
        if msg.contains(" as i128") || (integer && msg.starts_with("invalid value: integer")) {
            msg = format!("is too large: a whole number here is at most {}", i64::MAX);
        } else if msg.contains("number overflowed") {
            msg.push_str(": a number here is at most about 1.8e308");
        }
        // serde names the structs it expected (`RawGrid`); a person wrote a table
        if let Some(at) = msg.find("expected struct Raw") {
            msg.truncate(at);
            msg.push_str("expected a table: a [name] line with its keys on the lines below");
        }
        // serde reads `[[grid]]` (a list of tables) as a struct written in order, so its
        // message is about the first field; the line says what went wrong
        if let Some(header) = e.span().and_then(|sp| self.array_header_at(sp.start)) {
            msg = format!(
                "`[[{header}]]` makes a list of tables, and a sweep file has none: write \
                 `[{header}]`"
            );
        }
        if msg.starts_with("missing field") {
            msg.push_str(" (see experiments/quick.toml for a complete sweep file)");
        }
        if msg == "duplicate key" {
            msg = (e.span().and_then(|sp| lines::said(self.text, sp.start))).unwrap_or_else(|| {
                "a key is written twice here (TOML takes each key once); keep one".into()
            });
        }
        if let Some(near) = unknown_field_nearest(&msg) {
            msg.push_str(&format!("; did you mean `{near}`?"));
        } else if let Some(home) = home_of_unknown_field(&msg) {
            msg.push_str(&home);
        }
        // a missing field's span is its table's first line: the key is that table's and the field
        // (at the top level the message names it; line 1 is not what is missing)
        let missing = document::missing_field(&msg);
        let key = match (e.span(), missing) {
            // the root's span is empty: its first line may be a table's header
            (at, Some(field)) => (at.filter(|sp| !sp.is_empty()))
                .and_then(|sp| self.header_at(sp.start))
                .map(|table| format!("{table}.{field}")),
            (at, None) => at.and_then(|sp| self.key_at(sp.start)),
        };
        let written = key.as_deref().filter(|_| missing.is_none());
        if let Some(slip) = written.and_then(|k| self.table_for_key(k, e.span())) {
            msg.push_str(&slip);
        }
        self.err(e.span(), key.as_deref(), &msg)
    }
    /// For a key of its table written as a table (`fuse.max = 3`, `[schedule.fuse]`, `fuse = { … }`
    /// where [schedule] has `fuse` and `fuse_max`): the keys beside it that were meant, from the
    /// table's own list of keys.
    fn table_for_key(&self, key: &str, at: Option<std::ops::Range<usize>>) -> Option<String> {
        let (table, rest) = key.split_once('.')?;
        let header = format!("[{table}]");
        let (_, keys) = (super::raw::keys_by_table().iter()).find(|(t, _)| t.contains(&header))?;
        let (name, sub) = match rest.split_once('.') {
            Some((name, sub)) => (name, Some(sub)),
            None => (rest, None),
        };
        if !keys.iter().any(|k| k == name) {
            return None;
        }
        let beside: Vec<&String> = (keys.iter())
            .filter(|k| k.strip_prefix(name).is_some_and(|s| s.starts_with('_')))
            .collect();
        // the key that `name.sub` spells with an underscore, else every key beside `name`
        let meant: Vec<String> = match sub.map(|s| format!("{name}_{s}")) {
            Some(joined) if beside.contains(&&joined) => vec![format!("`{joined}`")],
            _ => beside.iter().map(|k| format!("`{k}`")).collect(),
        };
        let made = match sub {
            Some(sub) => format!("`{name}.{sub}` makes `{name}` a table"),
            None => {
                let value = self.text[at?.start.min(self.text.len())..].trim_start();
                if !value.starts_with('[') && !value.starts_with('{') {
                    return None;
                }
                format!("a table here makes `{name}` one")
            }
        };
        (!meant.is_empty())
            .then(|| format!("; {made}; did you mean {} in {header}?", meant.join(" or ")))
    }
    /// The table named by a `[[name]]` header on the line of `offset`, if that line is one.
    fn array_header_at(&self, offset: usize) -> Option<String> {
        let line = self.text[lines::line_start(self.text, offset)..]
            .lines()
            .next()?
            .trim();
        let inner = line.strip_prefix("[[")?.split("]]").next()?.trim();
        (!inner.is_empty()).then(|| inner.to_string())
    }
    /// `s` is a stand-in put where a value of the wrong type was written (its error is reported).
    fn is_stand_in<T>(&self, s: &Spanned<T>) -> bool {
        let at = self.line_col(s.span().start);
        self.placeholders.borrow().contains(&at)
    }
    /// The table a `[table]` header on the line of `offset` opens (`teacher`, `grid.dkd`).
    fn header_at(&self, offset: usize) -> Option<String> {
        let line = self.text[lines::line_start(self.text, offset)..]
            .lines()
            .next()?;
        let header = line.trim_start().starts_with('[') && !line.trim_start().starts_with("[[");
        header
            .then(|| lines::key_path_at(self.text, offset))
            .flatten()
    }
    /// The dotted key written on the line of `offset` (`teacher.epochs`), if that line assigns one.
    pub(super) fn key_at(&self, offset: usize) -> Option<String> {
        let line_start = lines::line_start(self.text, offset);
        // as written: a bare, dotted or quoted key, under its table
        let path = lines::key_path_at(self.text, offset)?;
        // a slip taken for the key it meant (`temprature`) is named as meant
        let renamed = self.renamed.borrow();
        Some(match renamed.iter().find(|(at, _)| *at == line_start) {
            Some((_, meant)) => match path.rsplit_once('.') {
                Some((table, _)) => format!("{table}.{meant}"),
                None => meant.clone(),
            },
            None => path,
        })
    }
    pub(super) fn positive(
        &self,
        s: &Spanned<i64>,
        key: &str,
        what: &str,
    ) -> Result<u32, ConfigError> {
        let v = *s.get_ref();
        if v < 1 {
            return Err(self.at(
                s,
                key,
                &format!("must be a whole number ≥ 1 ({what}), got {v}"),
            ));
        }
        if v > u32::MAX as i64 {
            return Err(self.at(
                s,
                key,
                &format!("{v} is too large: at most {} ({what})", u32::MAX),
            ));
        }
        Ok(v as u32)
    }
    /// [`Validator::positive`], and at most `most`: beyond it, "too many", with `why` not more.
    pub(super) fn positive_at_most(
        &self,
        s: &Spanned<i64>,
        key: &str,
        what: &str,
        most: (u32, &str),
    ) -> Result<u32, ConfigError> {
        match outside(*s.get_ref(), what, most) {
            Some(m) => Err(self.at(s, key, &m)),
            None => Ok(*s.get_ref() as u32),
        }
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
    /// The whole file, table by table. Every problem is kept ([`Validator::keep`]); a check that
    /// needs another's value is skipped when that one failed, whose problem is reported already.
    pub(super) fn validate(&self, raw: RawSweep) -> Option<Sweep> {
        let name = self.keep(self.name(&raw.name));
        let seeds = self.keep(self.seeds(&raw.seeds));
        let dataset = self.keep(self.dataset(&raw.data.dataset));
        let data = self.data(&raw.data, dataset);
        let g = &raw.grid;
        let methods = self.keep(self.methods(&g.method));
        // what a model must do in this sweep (TorchScript files are run once to check it); unknown,
        // and models unchecked, while the dataset or the methods are wrong
        let shape = data.as_ref().and_then(|d| d.image_shape().zip(d.classes()));
        let check = match (shape, &methods) {
            (Some((shape, classes)), Some(m)) => Some(ModelCheck {
                shape,
                classes: classes as i64,
                features: m.contains(&Method::Feature),
                init: Default::default(),
                student: false,
                channels_last: false,
            }),
            _ => None,
        };
        let (teacher, student) = self.roles(&raw, check);
        let listed = methods.as_deref().unwrap_or_default();
        let temperatures = self.keep(self.grid_temperatures(g, listed));
        let alphas = self.keep(self.grid_alphas(g, listed));
        let logit = (methods.as_ref()).and_then(|m| self.keep(self.logit_grid(g, m)));
        let grids = match (&methods, &alphas) {
            (Some(m), Some(a)) => self.keep(self.method_grids(g, m, a)),
            _ => None,
        };
        // the students' init and epochs as their table gives them (a problem there is reported
        // with [student])
        let student_init = self.init("student", &raw.student.init).ok();
        let student_check = check.zip(student_init).map(|(check, init)| ModelCheck {
            init,
            student: true,
            channels_last: on(&raw.student.channels_last),
            ..check
        });
        // the list's own rules are checked even while its models cannot be
        let student_models = self
            .keep(self.student_models(&g.student_model, &raw.student, student_check.as_ref()))
            .filter(|_| student_check.is_some());
        // against the teacher's epochs when they are right (not a stand-in for a value of the
        // wrong type), also while another of the teacher's keys is wrong
        let written = !self.is_stand_in(&raw.teacher.epochs);
        let epochs = written.then(|| self.epochs("teacher", &raw.teacher).ok());
        let teacher_epochs = match (&g.teacher_epoch, epochs.flatten()) {
            (None, _) => Some(Vec::new()),
            (Some(axis), Some(epochs)) => self.keep(self.teacher_epochs(axis, epochs)),
            (Some(_), None) => None,
        };
        let schedule = self.schedule(&raw.schedule);
        let epochs = self
            .positive(&raw.student.epochs, "student.epochs", "")
            .ok();
        let search = match (&seeds, epochs) {
            (Some(seeds), Some(epochs)) => self.keep(self.search(&raw.search, seeds, epochs)),
            _ => None,
        };
        let ((logit_norm, zscore_temperatures), (method_grids, methods_fixed)) = (logit?, grids?);
        Some(Sweep {
            name: name?,
            seeds: seeds?,
            data: data?,
            teacher: teacher?,
            student: student?,
            cache_teacher_logits: raw
                .student
                .cache_teacher_logits
                .as_ref()
                .is_none_or(|c| *c.get_ref()),
            temperatures: temperatures?,
            alphas: alphas?,
            methods: methods?,
            student_models: student_models?,
            teacher_epochs: teacher_epochs?,
            baseline: g.baseline.unwrap_or(true),
            schedule: schedule?,
            search: search?,
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
    fn roles(&self, raw: &RawSweep, check: Option<ModelCheck>) -> (Option<Phase>, Option<Phase>) {
        let (t, s) = (&raw.teacher, &raw.student);
        let teacher = self.phase("teacher", t, machine_cores(), (Arch::Teacher, false, check));
        let in_grid = raw.grid.student_model.is_some();
        let student_check = check.map(|c| ModelCheck { student: true, ..c });
        let student = self.phase("student", s, 1, (Arch::Student, in_grid, student_check));
        self.remember("teacher.batch_size", t.batch_size.span());
        if let Some(th) = &t.threads {
            self.remember("teacher.threads", th.span());
        }
        self.remember("student.batch_size", s.batch_size.span());
        (teacher, student)
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

/// For serde's "unknown field `channels_last`, …" in a table that does not take it: the tables
/// that do ("; `channels_last` is a key of [teacher] and [student]").
fn home_of_unknown_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    let (unknown, _) = rest.split_once('`')?;
    let homes: Vec<&str> = (super::raw::keys_by_table().iter())
        .filter(|(_, keys)| keys.iter().any(|k| k == unknown))
        .map(|(table, _)| *table)
        .collect();
    (!homes.is_empty()).then(|| format!("; `{unknown}` is a key of {}", homes.join(" and of ")))
}

/// What the sweep asks of a model: its input shape and classes, whether feature distillation runs,
/// and the role's `init`.
#[derive(Debug, Clone, Copy)]
pub(super) struct ModelCheck {
    pub(super) shape: [i64; 3],
    pub(super) classes: i64,
    pub(super) features: bool,
    pub(super) init: crate::model::Init,
    /// A student's model (feature distillation needs its `head` too).
    pub(super) student: bool,
    /// The role's `channels_last`: a TorchScript network must run on channels-last inputs.
    pub(super) channels_last: bool,
}

/// A boolean key's value, false when absent.
pub(super) fn on(key: &Option<toml::Spanned<bool>>) -> bool {
    key.as_ref().is_some_and(|v| *v.get_ref())
}

/// A message as one readable line: a value echoed from the file keeps its control characters
/// escaped (a multi-line string's newline), and a quoted value over 80 characters is shortened in
/// its middle.
fn one_line(msg: &str) -> String {
    let escaped: String = msg
        .chars()
        .flat_map(|c| match c {
            '\n' => vec!['\\', 'n'],
            '\r' => vec!['\\', 'r'],
            '\t' => vec!['\\', 't'],
            c if c.is_control() => format!("\\u{{{:x}}}", c as u32).chars().collect(),
            c => vec![c],
        })
        .collect();
    let parts: Vec<&str> = escaped.split('"').collect();
    (parts.iter().enumerate())
        .map(|(i, part)| {
            let chars: Vec<char> = part.chars().collect();
            // odd parts are inside quotes
            match i % 2 == 1 && chars.len() > 80 {
                true => format!(
                    "{}…{}",
                    chars[..40].iter().collect::<String>(),
                    chars[chars.len() - 20..].iter().collect::<String>()
                ),
                false => part.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join("\"")
}
