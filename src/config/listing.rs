//! A sweep's settings as a flat list, under the names the sweep file gives them (`teacher.optimizer`,
//! `grid.dkd.warmup`), each with the value in effect — the default where the file sets none — so
//! that `kd-sweep compare` can say which settings two sweeps differ in. Grid axes are left out (the
//! compared cells show them), and so is the name.
//!
//! The list is read from the [`Sweep`]'s own serialization, so a setting added to a role, the data,
//! the schedule or the search appears here without an edit; only its default (when its field is
//! left out of keys at its default) and a renaming (when the file's name differs from the field's)
//! are written below.

use super::{Search, Sweep};
use serde_json::{json, Map, Value};

/// The sweep's fields that are not listed: the name and grid axes.
const NOT_LISTED: [&str; 9] = [
    "name",
    "temperatures",
    "alphas",
    "methods",
    "student_models",
    "teacher_epochs",
    "method_grids",
    "logit_norm",
    "zscore_temperatures",
];

/// Every setting of `sweep` that is not a grid axis or the name: `(name as in the sweep file, value
/// as text)`, in the file's order (`seeds`, then `[data]`, `[teacher]`, `[student]`, `[grid]`,
/// `[schedule]`, `[search]`). A setting that is not set and has no default (a dataset's `mean`) is "—".
pub fn settings(sweep: &Sweep) -> Vec<(String, String)> {
    let Ok(Value::Object(mut all)) = serde_json::to_value(sweep) else {
        return Vec::new();
    };
    for role in ["teacher", "student"] {
        if let Some(Value::Object(phase)) = all.get_mut(role) {
            fill(phase, phase_defaults(role));
            // a role's optimizer keys are written in its table, not in a table of their own
            if let Some(Value::Object(recipe)) = phase.remove("recipe") {
                phase.extend(recipe);
            }
            // a weights file by its path; its digest is in the keys
            if let Some(Value::Object(w)) = phase.remove("weights") {
                phase.insert(
                    "weights".into(),
                    w.get("path").cloned().unwrap_or(Value::Null),
                );
            }
        }
    }
    if let Some(Value::Object(data)) = all.get_mut("data") {
        // what the data held when checked is not a setting
        data.remove("layout");
        // one folder however the sweep file named it (`data` beside it, or its absolute path)
        let path = std::fs::canonicalize(&sweep.data.path).unwrap_or(sweep.data.path.clone());
        data.insert("path".into(), to_value(path));
        let normalize = data
            .remove("normalize")
            .unwrap_or(json!({"mean": null, "std": null}));
        if let Value::Object(n) = normalize {
            data.extend(n);
        }
    }
    fill(
        &mut all,
        Map::from_iter([
            ("search".to_string(), to_value(Search::default())),
            (
                "methods_fixed".to_string(),
                to_value(crate::distill::Fixed::default()),
            ),
        ]),
    );
    let mut out = Vec::new();
    for (field, value) in all {
        if NOT_LISTED.contains(&field.as_str()) {
            continue;
        }
        let name = match field.as_str() {
            "cache_teacher_logits" => "student.cache_teacher_logits".to_string(),
            "baseline" => "grid.baseline".to_string(),
            "methods_fixed" => String::new(),
            _ => field.clone(),
        };
        flatten(&name, &value, &mut out);
    }
    for (name, _) in &mut out {
        // the methods' settings that are not axes, as their tables name them
        let renamed = match name.as_str() {
            "dkd_warmup" => "grid.dkd.warmup",
            "ctkd_t_min" => "grid.ctkd.t_min",
            "ctkd_t_range" => "grid.ctkd.t_range",
            "ctkd_ramp" => "grid.ctkd.ramp_epochs",
            _ => continue,
        };
        *name = renamed.to_string();
    }
    // a method's settings only where the sweep has the method
    out.retain(|(name, _)| {
        let table = name.strip_prefix("grid.").and_then(|r| r.split_once('.'));
        table.is_none_or(|(table, _)| {
            (sweep.methods.iter()).any(|m| m.table().is_some_and(|t| t.name == table))
        })
    });
    const TABLES: [&str; 7] = [
        "seeds",
        "data.",
        "teacher.",
        "student.",
        "grid.",
        "schedule.",
        "search.",
    ];
    let rank = |n: &str| {
        TABLES
            .iter()
            .position(|t| n.starts_with(t))
            .unwrap_or(TABLES.len())
    };
    out.sort_by(|a, b| (rank(&a.0), &a.0).cmp(&(rank(&b.0), &b.0)));
    out
}

/// The settings whose values are not the same in every one of `lists` ([`settings`] of several
/// sweeps): each name, in the first list's order (then the ones only later lists have), with its
/// value in each list ("—" where a list lacks it). A method's own setting (`grid.dkd.warmup`) is
/// compared only among the lists that have it — the sweeps with the method — and listed when two of
/// them differ; the grids' cells say which methods each sweep has.
pub fn differing(lists: &[Vec<(String, String)>]) -> Vec<(String, Vec<String>)> {
    let mut names: Vec<&str> = Vec::new();
    for (name, _) in lists.iter().flatten() {
        if !names.contains(&name.as_str()) {
            names.push(name);
        }
    }
    let value = |list: &[(String, String)], name: &str| {
        list.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone())
    };
    let of_a_method = |name: &str| name.starts_with("grid.") && name.matches('.').count() > 1;
    names
        .into_iter()
        .filter_map(|name| {
            let found: Vec<Option<String>> = lists.iter().map(|l| value(l, name)).collect();
            let values: Vec<String> = (found.iter())
                .map(|v| v.clone().unwrap_or_else(|| "—".into()))
                .collect();
            let compared: Vec<&String> = match of_a_method(name) {
                true => found.iter().flatten().collect(),
                false => values.iter().collect(),
            };
            (compared.iter().any(|v| *v != compared[0])).then(|| (name.to_string(), values))
        })
        .collect()
}

fn to_value<T: serde::Serialize>(v: T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// The values a role's fields have when its table leaves them out (these fields are absent from
/// the serialization, and so from keys, at their defaults).
fn phase_defaults(role: &str) -> Map<String, Value> {
    use crate::model::Arch;
    let model = if role == "teacher" {
        Arch::Teacher
    } else {
        Arch::Student
    };
    Map::from_iter([
        ("model".to_string(), to_value(model)),
        (
            "augment".to_string(),
            to_value(crate::train::augment::Augment::default()),
        ),
        (
            "precision".to_string(),
            to_value(crate::train::Precision::default()),
        ),
        ("channels_last".to_string(), json!(false)),
        ("label_smoothing".to_string(), json!(0.0)),
        (
            "recipe".to_string(),
            to_value(crate::train::optim::Recipe::default()),
        ),
        ("weights".to_string(), json!({ "path": null })),
    ])
}

/// Inserts each of `defaults` that `into` does not have.
fn fill(into: &mut Map<String, Value>, defaults: Map<String, Value>) {
    for (k, v) in defaults {
        into.entry(k).or_insert(v);
    }
}

/// `value` under `name`: an object's fields as `name.field`, anything else as text.
fn flatten(name: &str, value: &Value, out: &mut Vec<(String, String)>) {
    let join = |k: &str| {
        if name.is_empty() {
            k.to_string()
        } else {
            format!("{name}.{k}")
        }
    };
    match value {
        Value::Object(m) => m.iter().for_each(|(k, v)| flatten(&join(k), v, out)),
        v => out.push((name.to_string(), text(v))),
    }
}

/// A value as the sweep file would write it: strings without quotes, lists in brackets, "—" for
/// nothing.
fn text(v: &Value) -> String {
    match v {
        Value::Null => "—".to_string(),
        Value::String(s) => s.clone(),
        Value::Array(a) => format!("[{}]", a.iter().map(text).collect::<Vec<_>>().join(", ")),
        v => v.to_string(),
    }
}
