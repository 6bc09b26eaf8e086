//! `kd-sweep compare`: the (T, α) cells several sweeps share, side by side, with each sweep's mean ± std
//! and the difference from the first; cells present in only some sweeps listed apart; a warning when
//! the sweeps differ in dataset, models or epochs; the settings they differ in; an overlay chart.

use super::charts::{self, derr, legend, Entry, Line, TAxis};
use super::{summarize, Cell, Loaded, Stat};
use plotters::prelude::*;
use serde::Serialize;
use std::path::Path;

#[derive(Debug, Clone, Serialize)]
pub struct SweepInfo {
    pub dir: String,
    pub name: String,
    pub dataset: String,
    pub model_version: u64,
    pub teacher_epochs: u32,
    pub student_epochs: u32,
    pub seeds: Vec<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SharedCell {
    pub method: String,
    pub temperature: String,
    pub alpha: String,
    /// One per sweep, in the order given (none: a teacher or baseline that sweep does not have).
    pub test: Vec<Option<Stat>>,
    /// Mean of each later sweep minus the first's, in points (where both have one).
    pub diff: Vec<Option<f64>>,
    /// Each sweep's KD gain over its own baseline (points; none for the teacher and baseline rows):
    /// a cell can rise with its baseline without distilling better.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gain: Vec<Option<f64>>,
}

/// A setting whose value is not the same in every sweep.
#[derive(Debug, Clone, Serialize)]
pub struct SettingDiff {
    /// As the sweep file names it (`teacher.lr`).
    pub setting: String,
    /// One per sweep, in the order given ("—": not set, no default).
    pub values: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct OnlyIn {
    pub sweep: String,
    pub method: String,
    pub temperature: String,
    pub alpha: String,
    pub test: Stat,
}

#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub sweeps: Vec<SweepInfo>,
    pub warnings: Vec<String>,
    /// The settings beyond the grid that differ between the sweeps (empty: none).
    pub settings: Vec<SettingDiff>,
    /// The teacher's and the baseline student's accuracy in each sweep (where every sweep has one):
    /// what the cells' differences are read against.
    pub references: Vec<SharedCell>,
    pub shared: Vec<SharedCell>,
    pub only: Vec<OnlyIn>,
    #[serde(skip)]
    pub cells: Vec<Vec<Cell>>,
}

/// The same cell in two sweeps: the same student model and coordinate, compared by value (`0.5`
/// and `0.50` are one α), every method's axes included.
fn same(a: &Cell, b: &Cell) -> bool {
    a.student_model == b.student_model && a.coord.same_values(&b.coord)
}

/// The method of a cell with its hyper-parameters beyond T and α ("dkd β=8"), after its student
/// model when that is not the tutorial student.
fn method_label(c: &Cell) -> String {
    let extra = c.coord.extra_text();
    let method = if extra.is_empty() {
        c.method.name().to_string()
    } else {
        format!("{} {extra}", c.method.name())
    };
    if c.student_model.is_empty() || c.student_model == "tutorial-student" {
        method
    } else {
        format!("{} · {method}", c.student_model)
    }
}

/// Plain logit KD's cells: the ones the overlay draws against T.
fn plain_logit(c: &Cell) -> bool {
    charts::Variant::of(c).is_plain_logit()
}

pub fn compare(loaded: &[Loaded]) -> Comparison {
    let sweeps: Vec<SweepInfo> = loaded
        .iter()
        .map(|l| SweepInfo {
            dir: l.dir.display().to_string(),
            name: l.meta.name.clone(),
            dataset: l.meta.dataset.clone(),
            model_version: l.model_version,
            teacher_epochs: l.meta.teacher_epochs,
            student_epochs: l.meta.student_epochs,
            seeds: l.meta.seeds.clone(),
        })
        .collect();
    let mut sweeps = sweeps;
    // two sweeps of one name (the same file under two results roots) are told apart by folder
    let names: Vec<String> = sweeps.iter().map(|s| s.name.clone()).collect();
    for s in &mut sweeps {
        if names.iter().filter(|n| **n == s.name).count() > 1 {
            s.name = format!("{} ({})", s.name, s.dir);
        }
    }
    let mut warnings = Vec::new();
    for (s, l) in sweeps.iter().zip(loaded) {
        if l.records.len() < l.planned {
            warnings.push(format!(
                "{} has not finished: {} of its {} runs have records (run its sweep file again to \
                 finish it); its cells are over the runs finished so far",
                s.name,
                l.records.len(),
                l.planned
            ));
        }
    }
    let differ = |what: &str, f: &dyn Fn(&SweepInfo) -> String| {
        let vals: Vec<String> = sweeps.iter().map(f).collect();
        (vals.iter().any(|v| *v != vals[0])).then(|| {
            format!(
                "the sweeps differ in {what} ({}): their numbers are not directly comparable",
                vals.join(" vs ")
            )
        })
    };
    warnings.extend(differ("dataset", &|s| s.dataset.clone()));
    warnings.extend(differ("model version", &|s| s.model_version.to_string()));
    warnings.extend(differ("teacher epochs", &|s| s.teacher_epochs.to_string()));
    warnings.extend(differ("student epochs", &|s| s.student_epochs.to_string()));
    warnings.extend(machines_differ(loaded));
    let summaries: Vec<super::Summary> = (loaded.iter())
        .map(|l| {
            let refs: Vec<_> = l.records.iter().collect();
            summarize(&refs, l.meta.test_images)
        })
        .collect();
    let references = references(&summaries);
    let cells: Vec<Vec<Cell>> = summaries.into_iter().map(|s| s.cells).collect();
    let (shared, only) = shared_and_only(&cells, &sweeps);
    Comparison {
        sweeps,
        warnings,
        settings: differing_settings(loaded),
        references,
        shared,
        only,
        cells,
    }
}

/// The warning when the sweeps' finished runs computed on other kinds of machine (where every sweep
/// names some): what that does to their shared cells' differences.
fn machines_differ(loaded: &[Loaded]) -> Option<String> {
    let kinds: Vec<Vec<String>> = (loaded.iter())
        .map(|l| {
            let done: Vec<&crate::store::RunRecord> = (l.records.iter())
                .filter(|r| r.status == crate::store::Status::Done)
                .collect();
            let mut k: Vec<String> = super::machine_kinds(&done)
                .0
                .into_iter()
                .map(|k| k.0)
                .collect();
            k.sort();
            k
        })
        .collect();
    let known = kinds.iter().all(|k| !k.is_empty());
    (known && kinds.iter().any(|k| *k != kinds[0])).then(|| {
        let each: Vec<String> = kinds.iter().map(|k| k.join(" + ")).collect();
        format!(
            "the sweeps computed on other machines ({}): {}",
            each.join(" vs "),
            super::machines_consequence(&kinds.concat())
        )
    })
}

/// The cells every sweep has (side by side, with each sweep's KD gain), and those only some have.
fn shared_and_only(cells: &[Vec<Cell>], sweeps: &[SweepInfo]) -> (Vec<SharedCell>, Vec<OnlyIn>) {
    let mut shared = Vec::new();
    let mut only = Vec::new();
    if let Some(first) = cells.first() {
        for c in first {
            let matches: Vec<Option<&Cell>> = cells
                .iter()
                .map(|cs| cs.iter().find(|x| same(x, c)))
                .collect();
            if matches.iter().all(|m| m.is_some()) {
                let test: Vec<Option<Stat>> = matches.iter().map(|m| m.map(|m| m.test)).collect();
                let diff = differences(&test);
                shared.push(SharedCell {
                    method: method_label(c),
                    temperature: c.temperature.clone(),
                    alpha: c.alpha.clone(),
                    test,
                    diff,
                    gain: (matches.iter().flatten())
                        .map(|m| m.gain.map(|g| g.mean))
                        .collect(),
                });
            }
        }
    }
    for (i, cs) in cells.iter().enumerate() {
        for c in cs {
            if !cells.iter().all(|other| other.iter().any(|x| same(x, c))) {
                only.push(OnlyIn {
                    sweep: sweeps[i].name.clone(),
                    method: method_label(c),
                    temperature: c.temperature.clone(),
                    alpha: c.alpha.clone(),
                    test: c.test,
                });
            }
        }
    }
    (shared, only)
}

/// Each later sweep's mean minus the first's, where both have one.
fn differences(test: &[Option<Stat>]) -> Vec<Option<f64>> {
    let first = test.first().copied().flatten();
    (test.iter().skip(1))
        .map(|t| Some(t.as_ref()?.mean - first?.mean))
        .collect()
}

/// The teacher's row and each student model's baseline row, where any sweep has it ("–" in a sweep
/// without it: a sweep with `baseline = false`, or without that student model).
fn references(summaries: &[super::Summary]) -> Vec<SharedCell> {
    let row = |name: String, test: Vec<Option<Stat>>| {
        test.iter().any(Option::is_some).then(|| SharedCell {
            method: name,
            temperature: String::new(),
            alpha: String::new(),
            diff: differences(&test),
            test,
            gain: Vec::new(),
        })
    };
    let mut out: Vec<SharedCell> = Vec::new();
    out.extend(row(
        "teacher".into(),
        summaries.iter().map(|s| s.teacher).collect(),
    ));
    let mut models: Vec<String> = Vec::new();
    for (m, _) in summaries.iter().flat_map(|s| &s.baselines) {
        if !models.contains(m) {
            models.push(m.clone());
        }
    }
    for m in &models {
        let name = match m.as_str() {
            "" | "tutorial-student" if models.len() == 1 => "baseline student".to_string(),
            _ => format!("baseline student · {m}"),
        };
        let of = |s: &super::Summary| s.baselines.iter().find(|b| b.0 == *m).map(|b| b.1);
        out.extend(row(name, summaries.iter().map(of).collect()));
    }
    out
}

/// The settings whose values are not the same in every sweep, in the first sweep's order (then the
/// ones only later sweeps list); a setting a sweep does not list is "—" there (a method's own
/// setting is compared only between the sweeps that have the method: `config::differing`).
fn differing_settings(loaded: &[Loaded]) -> Vec<SettingDiff> {
    let lists: Vec<Vec<(String, String)>> = loaded.iter().map(|l| l.settings.clone()).collect();
    (crate::config::differing(&lists).into_iter())
        .map(|(setting, values)| SettingDiff { setting, values })
        .collect()
}

/// `kd-sweep compare`: reads the sweep folders `dirs` (records that fail their checksum are skipped
/// with a warning through `warn`), compares them, and writes the overlay chart and `index.html` into
/// `out`.
pub fn write(
    dirs: &[std::path::PathBuf],
    out: &Path,
    warn: &dyn Fn(&str),
) -> anyhow::Result<Comparison> {
    use anyhow::Context;
    // the same folder twice (however it is spelt) compares a sweep with itself: a slip
    let same: Vec<std::path::PathBuf> = dirs
        .iter()
        .map(|d| std::fs::canonicalize(d).unwrap_or_else(|_| d.clone()))
        .collect();
    for (i, d) in same.iter().enumerate() {
        if let Some(j) = same[..i].iter().position(|e| e == d) {
            return Err(crate::util::UsageError(format!(
                "{} and {} are the same folder: compare needs two or more different sweeps' folders \
                 (to see one sweep, use `kd-sweep report {}`)",
                dirs[j].display(),
                dirs[i].display(),
                dirs[j].display()
            ))
            .into());
        }
    }
    let loaded = dirs
        .iter()
        .map(|d| super::load(d, warn))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let c = compare(&loaded);
    chart(out, &c)?;
    let page = out.join("index.html");
    crate::files::write_atomic(&page, super::html::compare_page(out, &c).as_bytes())
        .with_context(|| format!("writing {}", page.display()))?;
    Ok(c)
}

impl Comparison {
    /// What is said instead of the table of shared cells when the sweeps have no cell in common.
    pub fn none_shared(&self) -> Option<String> {
        if !self.shared.is_empty() {
            return None;
        }
        let empty: Vec<&str> = (self.sweeps.iter().zip(&self.cells))
            .filter(|(_, cells)| cells.is_empty())
            .map(|(s, _)| s.name.as_str())
            .collect();
        if !empty.is_empty() {
            return Some(format!(
                "No cell is in every sweep: {} {} no finished student yet, so there are no \
                 differences to show.",
                empty.join(" and "),
                if empty.len() == 1 { "has" } else { "have" }
            ));
        }
        let names: Vec<&str> = self.sweeps.iter().map(|s| s.name.as_str()).collect();
        Some(format!(
            "No cell is in every sweep: {} share no (method, T, α) setting, so there are no \
             differences to show; each sweep's cells are listed below.",
            names.join(" and ")
        ))
    }
}

/// The comparison as Markdown (also printed on the terminal).
pub fn markdown(c: &Comparison) -> String {
    let mut o = String::from("# comparison\n\n| sweep | folder | dataset | model version | teacher epochs | student epochs | seeds |\n|---|---|---|---:|---:|---:|---|\n");
    for s in &c.sweeps {
        let seeds: Vec<String> = s.seeds.iter().map(|v| v.to_string()).collect();
        o.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            s.name,
            s.dir,
            s.dataset,
            s.model_version,
            s.teacher_epochs,
            s.student_epochs,
            seeds.join(", ")
        ));
    }
    for w in &c.warnings {
        o.push_str(&format!("\n**warning:** {w}\n"));
    }
    settings_table(&mut o, c);
    if let Some(none) = c.none_shared() {
        o.push_str(&format!("\n{none}\n"));
    } else {
        shared_table(&mut o, c);
    }
    if !c.only.is_empty() {
        o.push_str("\nCells not in every sweep:\n\n| only in | method | T | α | test accuracy |\n|---|---|---:|---:|---:|\n");
        for x in &c.only {
            o.push_str(&format!(
                "| {} | {} | {} | {} | {} |\n",
                x.sweep,
                x.method,
                if x.temperature.is_empty() {
                    "–"
                } else {
                    x.temperature.as_str()
                },
                x.alpha,
                x.test.show()
            ));
        }
    }
    o
}

/// The settings the sweeps differ in, or a sentence that they differ in none.
fn settings_table(o: &mut String, c: &Comparison) {
    if c.settings.is_empty() {
        o.push_str(&format!("\n{}\n", SAME_SETTINGS));
        return;
    }
    o.push_str(&format!("\n{}\n\n| setting |", SETTINGS_INTRO));
    for s in &c.sweeps {
        o.push_str(&format!(" {} |", s.name));
    }
    o.push_str("\n|---|");
    o.push_str(&"---|".repeat(c.sweeps.len()));
    o.push('\n');
    for d in &c.settings {
        o.push_str(&format!("| {} |", d.setting));
        for v in &d.values {
            o.push_str(&format!(" {v} |"));
        }
        o.push('\n');
    }
}

/// Said above the table of differing settings (the page says it too).
pub const SETTINGS_INTRO: &str = "Settings that differ between the sweeps (the values each ran \
     with, defaults included; the grids are compared cell by cell below):";

/// Said instead of that table when no setting differs.
pub const SAME_SETTINGS: &str = "The sweeps ran with the same settings apart from their grids.";

/// The table of the cells every sweep has: each sweep's mean ± std and the differences.
fn shared_table(o: &mut String, c: &Comparison) {
    let names: Vec<&str> = c.sweeps.iter().map(|s| s.name.as_str()).collect();
    o.push_str(&format!("\n{SHARED_INTRO}\n\n| method | T | α |"));
    for n in &names {
        o.push_str(&format!(" {n} |"));
    }
    for n in names.iter().skip(1) {
        o.push_str(&format!(" {n} − {} |", names[0]));
    }
    for n in &names {
        o.push_str(&format!(" KD gain in {n} |"));
    }
    o.push_str("\n|---|---:|---:|");
    o.push_str(&"---:|".repeat(names.len() * 3 - 1));
    o.push('\n');
    for s in c.references.iter().chain(&c.shared) {
        let t = if s.temperature.is_empty() {
            "–"
        } else {
            s.temperature.as_str()
        };
        let a = if s.alpha.is_empty() { "–" } else { &s.alpha };
        o.push_str(&format!("| {} | {t} | {a} |", s.method));
        for t in &s.test {
            o.push_str(&format!(" {} |", t.map_or("–".into(), |t| t.show())));
        }
        for d in &s.diff {
            o.push_str(&d.map_or(" – |".into(), |d| format!(" {d:+.2} |")));
        }
        for i in 0..names.len() {
            match s.gain.get(i).copied().flatten() {
                Some(g) => o.push_str(&format!(" {g:+.2} |")),
                None => o.push_str(" – |"),
            }
        }
        o.push('\n');
    }
}

/// Said above the table of shared cells (the page says it too).
pub const SHARED_INTRO: &str = "Test accuracy (%), mean ± std over seeds, of the teacher, the \
     baseline student and the cells every sweep has, and each cell's KD gain over its own sweep's \
     baseline (points): a cell can rise with its baseline without distilling better.";

/// One line style per α.
const STYLES: [Line; 4] = [Line::Solid, Line::Dashed, Line::Dotted, Line::LongDash];

/// `compare_accuracy_vs_temperature.{png,svg}` in `out`.
pub fn chart(out: &Path, c: &Comparison) -> anyhow::Result<()> {
    charts::both!(
        out,
        "compare_accuracy_vs_temperature",
        charts::CHART_SIZE,
        |a| draw(&a, c)
    );
    Ok(())
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    c: &Comparison,
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(derr)?;
    let (plot, side) = root.split_horizontally(root.dim_in_pixel().0 - 250);
    let all: Vec<Cell> = c
        .cells
        .iter()
        .flatten()
        .filter(|x| plain_logit(x))
        .cloned()
        .collect();
    let mut ticks: Vec<(f64, String)> = Vec::new();
    for x in &all {
        if !ticks.iter().any(|t| t.0 == x.t_value) {
            ticks.push((x.t_value, x.temperature.clone()));
        }
    }
    ticks.sort_by(|a, b| a.0.total_cmp(&b.0));
    let axis = TAxis::new(ticks);
    let (y0, y1) = charts::y_range(
        all.iter()
            .flat_map(|x| [x.test.mean - x.test.std, x.test.mean + x.test.std]),
    );
    let mut chart = charts::temperature_chart(
        &plot,
        "logit KD student accuracy vs temperature, by sweep",
        &axis,
        (y0, y1),
        "student test accuracy (%)",
    )?;
    let alphas = charts::alphas(&all);
    let mut entries = Vec::new();
    for (si, cells) in c.cells.iter().enumerate() {
        let colour = charts::series_colour(si);
        for (ai, (_, a)) in alphas.iter().enumerate() {
            let pts: Vec<(f64, f64)> = cells
                .iter()
                .filter(|x| plain_logit(x) && &x.alpha == a)
                .map(|x| (x.t_value, x.test.mean))
                .collect();
            let style = colour.stroke_width(2);
            match STYLES[ai % STYLES.len()] {
                Line::Dashed => {
                    chart
                        .draw_series(DashedLineSeries::new(pts.clone(), 10, 6, style))
                        .map_err(derr)?;
                }
                Line::Dotted => {
                    chart
                        .draw_series(DashedLineSeries::new(pts.clone(), 3, 5, style))
                        .map_err(derr)?;
                }
                Line::LongDash => {
                    chart
                        .draw_series(DashedLineSeries::new(pts.clone(), 18, 4, style))
                        .map_err(derr)?;
                }
                _ => {
                    chart
                        .draw_series(LineSeries::new(pts.clone(), style))
                        .map_err(derr)?;
                }
            }
            chart
                .draw_series(pts.iter().map(|p| Circle::new(*p, 3, colour.filled())))
                .map_err(derr)?;
        }
        entries.push(Entry {
            label: c.sweeps[si].name.clone(),
            colour,
            line: Line::Solid,
        });
    }
    for (ai, (_, a)) in alphas.iter().enumerate() {
        entries.push(Entry {
            label: format!("α = {a}"),
            colour: RGBColor(60, 60, 60),
            line: STYLES[ai % STYLES.len()],
        });
    }
    legend(
        &side,
        "legend",
        &entries,
        "colour: sweep; line style: α\nmeans over seeds",
    )
}

#[cfg(test)]
mod tests;
