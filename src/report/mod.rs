//! Stage 6: what people read. Aggregates run records over seeds — honestly: gains over the baseline come
//! with a 95 % confidence interval from per-seed paired differences, and the recommended (T, α) is
//! chosen on validation accuracy, never on the test set — then writes `summary.md`, the charts, and
//! `compare` tables. Everything here reads records only: no libtorch work.

pub mod charts;
pub mod compare;
pub mod html;
pub mod status;

use crate::config::Method;
use crate::plan::Role;
use crate::store::{RunRecord, Status};
use serde::Serialize;

/// Mean, sample standard deviation and count of a set of accuracies.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Stat {
    pub mean: f64,
    pub std: f64,
    pub n: usize,
}

impl Stat {
    pub fn of(xs: &[f64]) -> Option<Stat> {
        if xs.is_empty() {
            return None;
        }
        let n = xs.len();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let std = if n > 1 {
            (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
        } else {
            0.0
        };
        Some(Stat { mean, std, n })
    }

    /// `85.12 ± 0.30` (or just the mean for one value).
    pub fn show(&self) -> String {
        if self.n > 1 {
            format!("{:.2} ± {:.2}", self.mean, self.std)
        } else {
            format!("{:.2}", self.mean)
        }
    }
}

/// The 97.5 % quantile of Student's t distribution with `df` degrees of freedom (two-sided 95 %).
/// Tabulated to df = 30, then interpolated linearly in 1/df towards the normal 1.960.
pub fn t_975(df: usize) -> f64 {
    const T: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    const TAIL: [(f64, f64); 4] = [(30.0, 2.042), (40.0, 2.021), (60.0, 2.000), (120.0, 1.980)];
    match df {
        0 => f64::NAN,
        1..=30 => T[df - 1],
        _ => {
            let x = 1.0 / df as f64;
            let mut pts: Vec<(f64, f64)> = TAIL.iter().map(|&(d, t)| (1.0 / d, t)).collect();
            pts.push((0.0, 1.960));
            let i = pts
                .windows(2)
                .position(|w| x <= w[0].0 && x >= w[1].0)
                .unwrap_or(pts.len() - 2);
            let ((x0, y0), (x1, y1)) = (pts[i], pts[i + 1]);
            y0 + (y1 - y0) * (x - x0) / (x1 - x0)
        }
    }
}

/// The gain of a cell over the baseline, from per-seed paired differences (points of accuracy).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Gain {
    pub mean: f64,
    /// Standard deviation of the per-seed differences.
    pub std: f64,
    pub n: usize,
    /// 95 % confidence interval (t-distribution, n − 1 degrees of freedom); none with one seed.
    pub ci95: Option<(f64, f64)>,
}

impl Gain {
    pub fn of(diffs: &[f64]) -> Option<Gain> {
        let s = Stat::of(diffs)?;
        let ci95 = (s.n > 1).then(|| {
            let h = t_975(s.n - 1) * s.std / (s.n as f64).sqrt();
            (s.mean - h, s.mean + h)
        });
        Some(Gain {
            mean: s.mean,
            std: s.std,
            n: s.n,
            ci95,
        })
    }

    pub fn half_width(&self) -> Option<f64> {
        self.ci95.map(|(lo, hi)| (hi - lo) / 2.0)
    }
}

/// One (T, α) cell over seeds.
#[derive(Debug, Clone, Serialize)]
pub struct Cell {
    /// The student's network (`tutorial-student` unless the sweep says otherwise).
    pub student_model: String,
    pub method: Method,
    /// Empty for methods without a temperature.
    pub temperature: String,
    pub t_value: f64,
    pub alpha: String,
    pub a_value: f64,
    pub test: Stat,
    pub val: Stat,
    pub gain: Option<Gain>,
}

/// The numbers of a sweep, aggregated over seeds (finished runs only).
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub teacher: Option<Stat>,
    /// The baseline student's; with several student models, the one of the chosen cell's model.
    pub baseline: Option<Stat>,
    /// Each student model's baseline, in the order the models first appear.
    pub baselines: Vec<(String, Stat)>,
    /// Sorted by α, then T.
    pub cells: Vec<Cell>,
    /// Index into `cells` of the cell with the best mean validation accuracy.
    pub chosen: Option<usize>,
    pub verdict: String,
    pub failed: usize,
    /// Cells a halving search stopped early (their validation accuracy at the epoch they reached).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pruned: Vec<PrunedCell>,
    /// What the search spent, when it pruned anything.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub search: Option<SearchSpent>,
}

/// A cell a halving search stopped early, over its seeds.
#[derive(Debug, Clone, Serialize)]
pub struct PrunedCell {
    pub student_model: String,
    pub method: Method,
    pub temperature: String,
    pub t_value: f64,
    pub alpha: String,
    pub a_value: f64,
    /// The epoch its runs reached.
    pub epoch: u32,
    /// Validation accuracy at that epoch.
    pub val: Stat,
}

/// The student-epochs a halving search trained, beside the full grid's (over the seeds it searched).
#[derive(Debug, Clone, Serialize)]
pub struct SearchSpent {
    pub cells: usize,
    /// Cells trained to the end of the schedule.
    pub finished: usize,
    /// (epoch, cells pruned there), by epoch.
    pub pruned_at: Vec<(u32, usize)>,
    pub seeds: Vec<u64>,
    pub student_epochs: u64,
    pub grid_epochs: u64,
}

pub(crate) fn num(s: &str) -> f64 {
    s.replace('_', "").parse().unwrap_or(f64::NAN)
}

pub fn summarize(records: &[&RunRecord]) -> Summary {
    let done: Vec<&RunRecord> = records
        .iter()
        .copied()
        .filter(|r| r.status == Status::Done)
        .collect();
    let role = |role: Role| {
        Stat::of(
            &done
                .iter()
                .filter(|r| r.role == role)
                .filter_map(|r| r.test_acc)
                .collect::<Vec<_>>(),
        )
    };
    let model_of = |r: &RunRecord| r.models().1.map(|a| a.name()).unwrap_or_default();
    // the student models in the order they first appear (plan order: the grid's)
    let mut models: Vec<String> = Vec::new();
    for r in done.iter().filter(|r| r.role != Role::Teacher) {
        if !models.contains(&model_of(r)) {
            models.push(model_of(r));
        }
    }
    let baseline_of = |seed: u64, model: &str| {
        done.iter()
            .find(|r| r.role == Role::Baseline && r.seed == seed && model_of(r) == model)
            .and_then(|r| r.test_acc)
    };
    let baselines: Vec<(String, Stat)> = models
        .iter()
        .filter_map(|m| {
            let xs: Vec<f64> = done
                .iter()
                .filter(|r| r.role == Role::Baseline && model_of(r) == *m)
                .filter_map(|r| r.test_acc)
                .collect();
            Some((m.clone(), Stat::of(&xs)?))
        })
        .collect();
    let mut keys: Vec<(String, Method, Option<String>, String)> = Vec::new();
    for r in done.iter().filter(|r| r.role == Role::Student) {
        let k = (
            model_of(r),
            r.method,
            r.temperature.clone(),
            r.alpha.clone().unwrap_or_default(),
        );
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    let mut cells: Vec<Cell> = Vec::new();
    for (model, method, t, a) in keys {
        let rs: Vec<&RunRecord> = done
            .iter()
            .copied()
            .filter(|r| {
                r.role == Role::Student
                    && model_of(r) == model
                    && r.method == method
                    && r.temperature == t
                    && r.alpha.as_deref() == Some(&a)
            })
            .collect();
        let test: Vec<f64> = rs.iter().filter_map(|r| r.test_acc).collect();
        let val: Vec<f64> = rs.iter().filter_map(|r| r.val_acc).collect();
        let diffs: Vec<f64> = rs
            .iter()
            .filter_map(|r| Some(r.test_acc? - baseline_of(r.seed, &model)?))
            .collect();
        if let (Some(test), Some(val)) = (Stat::of(&test), Stat::of(&val)) {
            let t = t.unwrap_or_default();
            cells.push(Cell {
                student_model: model,
                method,
                t_value: num(&t),
                a_value: num(&a),
                temperature: t,
                alpha: a,
                test,
                val,
                gain: Gain::of(&diffs),
            });
        }
    }
    let model_rank = |m: &str| models.iter().position(|x| x == m);
    cells.sort_by(|x, y| {
        model_rank(&x.student_model)
            .cmp(&model_rank(&y.student_model))
            .then(x.method.rank().cmp(&y.method.rank()))
            .then(x.a_value.total_cmp(&y.a_value))
            .then(x.t_value.total_cmp(&y.t_value))
    });
    let chosen = choose(&cells);
    let verdict = verdict(chosen.map(|i| &cells[i]));
    let (pruned, search) = search_part(records, &cells);
    let baseline = match (baselines.len(), chosen) {
        (0 | 1, _) => role(Role::Baseline),
        (_, Some(i)) => baselines
            .iter()
            .find(|(m, _)| *m == cells[i].student_model)
            .map(|b| b.1),
        (_, None) => None,
    };
    Summary {
        teacher: role(Role::Teacher),
        baseline,
        baselines,
        cells,
        chosen,
        verdict,
        failed: records
            .iter()
            .filter(|r| r.status == Status::Failed)
            .count(),
        pruned,
        search,
    }
}

/// The chosen cell: the best by mean validation accuracy among the cells with the most seeds — after
/// a confirmation step, the confirmed cells (a cell of two lucky seeds cannot overtake them).
fn choose(cells: &[Cell]) -> Option<usize> {
    let most = cells.iter().map(|c| c.val.n).max().unwrap_or(0);
    best_by_validation(cells, |c| c.val.n == most)
}

/// The pruned cells of a halving search and what it spent, from the records: the searched seeds are
/// those of the pruned runs; the grid would have trained every cell on them to the finished runs'
/// epochs.
fn search_part(records: &[&RunRecord], cells: &[Cell]) -> (Vec<PrunedCell>, Option<SearchSpent>) {
    let pruned_runs: Vec<&RunRecord> = records
        .iter()
        .copied()
        .filter(|r| r.status == Status::Pruned && r.role == Role::Student)
        .collect();
    if pruned_runs.is_empty() {
        return (Vec::new(), None);
    }
    let model_of = |r: &RunRecord| r.models().1.map(|a| a.name()).unwrap_or_default();
    let mut seeds: Vec<u64> = pruned_runs.iter().map(|r| r.seed).collect();
    seeds.sort_unstable();
    seeds.dedup();
    let searched: Vec<&RunRecord> = records
        .iter()
        .copied()
        .filter(|r| r.role == Role::Student && seeds.contains(&r.seed))
        .filter(|r| r.status != Status::Failed)
        .collect();
    // a pruned cell: its runs on the searched seeds stopped at one epoch
    let mut out: Vec<PrunedCell> = Vec::new();
    for r in &pruned_runs {
        let (model, t, a) = (
            model_of(r),
            r.temperature.clone().unwrap_or_default(),
            r.alpha.clone().unwrap_or_default(),
        );
        if out.iter().any(|p| {
            p.student_model == model && p.method == r.method && p.temperature == t && p.alpha == a
        }) {
            continue;
        }
        let same: Vec<f64> = pruned_runs
            .iter()
            .filter(|x| {
                model_of(x) == model
                    && x.method == r.method
                    && x.temperature.clone().unwrap_or_default() == t
                    && x.alpha.clone().unwrap_or_default() == a
            })
            .filter_map(|x| x.val_acc)
            .collect();
        if let Some(val) = Stat::of(&same) {
            out.push(PrunedCell {
                student_model: model,
                method: r.method,
                t_value: num(&t),
                a_value: num(&a),
                temperature: t,
                alpha: a,
                epoch: r.epochs,
                val,
            });
        }
    }
    out.sort_by(|x, y| {
        x.method
            .rank()
            .cmp(&y.method.rank())
            .then(x.a_value.total_cmp(&y.a_value))
            .then(x.t_value.total_cmp(&y.t_value))
    });
    let full = searched
        .iter()
        .filter(|r| r.status == Status::Done)
        .map(|r| r.epochs)
        .max()
        .unwrap_or(0);
    let mut pruned_at: Vec<(u32, usize)> = Vec::new();
    for p in &out {
        match pruned_at.iter_mut().find(|(e, _)| *e == p.epoch) {
            Some(x) => x.1 += 1,
            None => pruned_at.push((p.epoch, 1)),
        }
    }
    pruned_at.sort_unstable();
    let finished = cells
        .len()
        .min(cells.iter().filter(|c| c.val.n >= seeds.len()).count());
    let n_cells = out.len() + finished;
    let spent = SearchSpent {
        cells: n_cells,
        finished,
        pruned_at,
        student_epochs: searched.iter().map(|r| r.history.len() as u64).sum(),
        grid_epochs: (n_cells * seeds.len()) as u64 * full as u64,
        seeds,
    };
    (out, Some(spent))
}

impl Summary {
    /// The student models of the sweep's cells and baselines, in order.
    pub fn student_models(&self) -> Vec<String> {
        let mut v: Vec<String> = self.baselines.iter().map(|b| b.0.clone()).collect();
        for c in &self.cells {
            if !v.contains(&c.student_model) {
                v.push(c.student_model.clone());
            }
        }
        v
    }

    /// The part of the summary about one student model: its cells, its baseline, its chosen cell.
    pub fn for_model(&self, model: &str) -> Summary {
        let cells: Vec<Cell> = self
            .cells
            .iter()
            .filter(|c| c.student_model == model)
            .cloned()
            .collect();
        let chosen = choose(&cells);
        let baseline = self.baselines.iter().find(|b| b.0 == model).map(|b| b.1);
        Summary {
            teacher: self.teacher,
            baseline,
            baselines: self
                .baselines
                .iter()
                .filter(|b| b.0 == model)
                .cloned()
                .collect(),
            verdict: verdict(chosen.map(|i| &cells[i])),
            cells,
            chosen,
            failed: self.failed,
            pruned: self
                .pruned
                .iter()
                .filter(|c| c.student_model == model)
                .cloned()
                .collect(),
            search: self.search.clone(),
        }
    }
}

/// The cell with the best mean validation accuracy among those `keep` accepts; ties go to the earlier
/// cell (method order, then smaller α, then smaller T).
pub fn best_by_validation(cells: &[Cell], keep: impl Fn(&Cell) -> bool) -> Option<usize> {
    (0..cells.len())
        .rev()
        .filter(|&i| keep(&cells[i]))
        .max_by(|&i, &j| cells[i].val.mean.total_cmp(&cells[j].val.mean))
}

impl Cell {
    /// `T=4, α=0.5` for logit cells; `feature, α=0.5` for the others.
    pub fn setting(&self) -> String {
        if self.method.uses_temperature() {
            format!("T={}, α={}", self.temperature, self.alpha)
        } else {
            format!("{}, α={}", self.method.name(), self.alpha)
        }
    }

    /// The setting, after the student model's name when that is not the tutorial student.
    pub fn label(&self) -> String {
        let setting = self.setting();
        // the tutorial student needs no name: it is every sweep's student unless the file says
        if self.student_model.is_empty() || self.student_model == "tutorial-student" {
            setting
        } else {
            format!("{}, {setting}", self.student_model)
        }
    }
}

/// One line: does distillation help, judged at the validation-chosen cell.
fn verdict(chosen: Option<&Cell>) -> String {
    let Some(c) = chosen else {
        return "no distilled student finished yet".into();
    };
    let at = c.label();
    match c.gain {
        None => format!("no baseline to compare with (set `baseline = true`); best by validation: {at}"),
        Some(g) => match (g.ci95, g.half_width()) {
            (Some((lo, _)), Some(h)) if lo > 0.0 => format!("distillation helps by {:.2} ± {h:.2} points at {at}", g.mean),
            (Some((_, hi)), Some(h)) if hi < 0.0 => format!("distillation hurts by {:.2} ± {h:.2} points at {at}", -g.mean),
            (Some((lo, hi)), _) => format!(
                "no gain distinguishable from seed noise (best by validation: {at}, {:+.2} points, 95 % CI [{lo:+.2}, {hi:+.2}])",
                g.mean
            ),
            _ => format!("{:+.2} points at {at} with one seed: no confidence interval (use two or more seeds)", g.mean),
        },
    }
}

/// Context shown above the tables.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Meta {
    pub name: String,
    pub dataset: String,
    pub seeds: Vec<u64>,
    /// The search's confirmation seeds (empty: none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub confirm_seeds: Vec<u64>,
    pub teacher_epochs: u32,
    pub student_epochs: u32,
}

impl Meta {
    /// `0, 1`, or `0, 1 (the best cells also 2, 3)` after a confirmation.
    pub fn seeds_text(&self) -> String {
        let list = crate::plan::search::seed_list;
        if self.confirm_seeds.is_empty() {
            list(&self.seeds)
        } else {
            format!(
                "{} (the best cells also {})",
                list(&self.seeds),
                list(&self.confirm_seeds)
            )
        }
    }

    /// The context `summary.md` and the charts show for a sweep.
    pub fn of(sweep: &crate::config::Sweep) -> Meta {
        Meta {
            name: sweep.name.clone(),
            dataset: sweep.data.dataset.name().to_string(),
            seeds: sweep.seeds.clone(),
            confirm_seeds: sweep.search.confirm_seeds.clone(),
            teacher_epochs: sweep.teacher.epochs,
            student_epochs: sweep.student.epochs,
        }
    }
}

fn gain_cells(g: &Option<Gain>) -> (String, String) {
    match g {
        None => ("".into(), "".into()),
        Some(g) => (
            format!("{:+.2}", g.mean),
            g.ci95
                .map_or("n/a".into(), |(lo, hi)| format!("[{lo:+.2}, {hi:+.2}]")),
        ),
    }
}

/// `summary.md`: the tables and the verdict (also printed at the end of a run).
pub fn markdown(meta: &Meta, s: &Summary) -> String {
    let mut o = String::new();
    o.push_str(&format!("# {} — distillation sweep summary\n\n", meta.name));
    o.push_str(&format!(
        "dataset {} · seeds {} · teacher {} epochs · student {} epochs · accuracies are test accuracy in %, mean ± std over seeds\n\n",
        meta.dataset,
        meta.seeds_text(),
        meta.teacher_epochs,
        meta.student_epochs
    ));
    o.push_str("| model | test accuracy | seeds |\n|---|---:|---:|\n");
    let several = s.baselines.len() > 1 || s.student_models().len() > 1;
    let mut rows = vec![("teacher".to_string(), s.teacher)];
    if several {
        for (m, st) in &s.baselines {
            rows.push((format!("baseline student {m} (no distillation)"), Some(*st)));
        }
    } else {
        rows.push(("baseline student (no distillation)".into(), s.baseline));
    }
    for (name, st) in rows {
        if let Some(st) = st {
            o.push_str(&format!("| {name} | {} | {} |\n", st.show(), st.n));
        }
    }
    let (student_head, student_rule) = if several {
        ("student | ", "---|")
    } else {
        ("", "")
    };
    o.push_str(&format!("\n| {student_head}method | T | α | test accuracy | validation accuracy | KD gain (points) | 95 % CI of the gain | seeds |\n|{student_rule}---|---:|---:|---:|---:|---:|---:|---:|\n"));
    for (i, c) in s.cells.iter().enumerate() {
        let (g, ci) = gain_cells(&c.gain);
        let mark = if Some(i) == s.chosen {
            " ◀ chosen"
        } else {
            ""
        };
        let t = if c.method.uses_temperature() {
            c.temperature.as_str()
        } else {
            "–"
        };
        let student = if several {
            format!("{} | ", c.student_model)
        } else {
            String::new()
        };
        o.push_str(&format!(
            "| {student}{} | {t} | {} | {} | {} | {g} | {ci} | {}{mark} |\n",
            c.method.name(),
            c.alpha,
            c.test.show(),
            c.val.show(),
            c.test.n
        ));
    }
    let methods: Vec<Method> = s.cells.iter().fold(Vec::new(), |mut v, c| {
        if !v.contains(&c.method) {
            v.push(c.method);
        }
        v
    });
    if methods.len() > 1 {
        o.push_str("\nThe best of each family, chosen by validation accuracy:\n\n| method | setting | validation accuracy | test accuracy | KD gain (points) | 95 % CI of the gain |\n|---|---|---:|---:|---:|---:|\n");
        for m in &methods {
            if let Some(c) = best_by_validation(&s.cells, |c| c.method == *m).map(|i| &s.cells[i]) {
                let (g, ci) = gain_cells(&c.gain);
                o.push_str(&format!(
                    "| {} | {} | {:.2} | {} | {g} | {ci} |\n",
                    m.name(),
                    c.label(),
                    c.val.mean,
                    c.test.show()
                ));
            }
        }
    }
    if several {
        o.push_str("\nThe best cell of each student model, chosen by validation accuracy (the capacity-gap picture: does a smaller student gain more or less?):\n\n| student | setting | validation accuracy | test accuracy | baseline | KD gain (points) | 95 % CI of the gain |\n|---|---|---:|---:|---:|---:|---:|\n");
        for m in s.student_models() {
            let part = s.for_model(&m);
            if let Some(c) = part.chosen.map(|i| &part.cells[i]) {
                let (g, ci) = gain_cells(&c.gain);
                o.push_str(&format!(
                    "| {m} | {} | {:.2} | {} | {} | {g} | {ci} |\n",
                    c.setting(),
                    c.val.mean,
                    c.test.show(),
                    part.baseline.map(|b| b.show()).unwrap_or_default()
                ));
            }
        }
    }
    if let Some(c) = s.chosen.map(|i| &s.cells[i]) {
        o.push_str(&format!(
            "\n**Chosen by validation accuracy:** {} — validation {:.2} %, test {} %.\n",
            c.label(),
            c.val.mean,
            c.test.show()
        ));
    }
    o.push_str(&format!("\n**Verdict:** {}.\n", s.verdict));
    if let Some(sp) = &s.search {
        o.push_str(&search_markdown(s, sp));
    }
    if s.failed > 0 {
        o.push_str(&format!(
            "\n{} run(s) failed: see the `status` and `error` columns of runs.csv.\n",
            s.failed
        ));
    }
    o
}

impl SearchSpent {
    /// One sentence: how many cells the search finished and pruned where, and what it spent.
    pub fn sentence(&self, pruned: usize) -> String {
        let at: Vec<String> = self
            .pruned_at
            .iter()
            .map(|(e, n)| format!("{n} after epoch {e}"))
            .collect();
        format!(
            "successive halving trained {} of {} cells to the end and pruned {pruned} ({}); it spent \
             {} student-epochs on seed(s) {} where the full grid takes {} ({:.0} %).",
            self.finished,
            self.cells,
            at.join(", "),
            self.student_epochs,
            crate::plan::search::seed_list(&self.seeds),
            self.grid_epochs,
            100.0 * self.student_epochs as f64 / self.grid_epochs.max(1) as f64
        )
    }
}

/// The search's paragraph of `summary.md`: what it spent, and its pruned cells.
fn search_markdown(s: &Summary, sp: &SearchSpent) -> String {
    let mut o = format!("\n**Search:** {}\n", sp.sentence(s.pruned.len()));
    o.push_str("\nPruned cells (validation accuracy at the epoch they reached; no test accuracy is measured for them):\n\n| method | T | α | epochs | validation accuracy | seeds |\n|---|---:|---:|---:|---:|---:|\n");
    for p in &s.pruned {
        let t = if p.method.uses_temperature() {
            p.temperature.as_str()
        } else {
            "–"
        };
        o.push_str(&format!(
            "| {} | {t} | {} | {} | {} | {} |\n",
            p.method.name(),
            p.alpha,
            p.epoch,
            p.val.show(),
            p.val.n
        ));
    }
    o
}

/// A sweep folder as `report` and `compare` read it: the manifest's context and the records of the
/// runs its sweep file had the last time it ran.
pub struct Loaded {
    pub dir: std::path::PathBuf,
    pub meta: Meta,
    pub model_version: u64,
    pub records: Vec<RunRecord>,
}

/// Reads `<dir>/manifest.json` and the records it lists. Records that fail their checksum are skipped
/// with a warning through `warn`.
pub fn load(dir: &std::path::Path, warn: &dyn Fn(&str)) -> anyhow::Result<Loaded> {
    use anyhow::Context;
    if !dir.join(crate::store::MANIFEST).exists() {
        anyhow::bail!("{}: no manifest.json; give a sweep's results folder (such as results/quick) written by `kd-sweep SWEEP.toml`", dir.display());
    }
    let m = crate::store::Manifest::read(dir)
        .map_err(anyhow::Error::msg)
        .context("run the sweep again with this kd-sweep to refresh it")?;
    let meta = Meta::of(&m.sweep);
    let mut records = Vec::new();
    for run in &m.plan {
        let path = dir
            .join("records")
            .join(crate::store::record_file_name(&run.id, &run.key));
        // a record that is missing was not run yet (or never started): nothing to report
        if let Ok(b) = std::fs::read(&path) {
            match RunRecord::from_json(&b) {
                Ok(r) => records.push(r),
                Err(e) => warn(&format!("warning: {}: {e}; skipped", path.display())),
            }
        }
    }
    Ok(Loaded {
        dir: dir.to_path_buf(),
        meta,
        model_version: m.model_version as u64,
        records,
    })
}

/// Writes `summary.md`, the three charts and `index.html` of a sweep folder; returns the summary.
pub fn publish(
    dir: &std::path::Path,
    meta: &Meta,
    records: &[&RunRecord],
) -> anyhow::Result<Summary> {
    let s = summarize(records);
    crate::store::write_atomic(&dir.join("summary.md"), markdown(meta, &s).as_bytes())?;
    charts::write_all(dir, &meta.name, &meta.dataset, &s, records)?;
    html::write_sweep_page(dir, meta, &s, records)?;
    Ok(s)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::plan::RunSpec;
    use crate::train::EpochStats;

    pub(crate) fn rec(
        role: Role,
        seed: u64,
        t: Option<&str>,
        a: Option<&str>,
        val: f64,
        test: f64,
    ) -> RunRecord {
        let spec = RunSpec {
            id: format!("{}-{:?}-{:?}-s{seed}", role.name(), t, a),
            role,
            seed,
            key: "0".repeat(64),
            teacher: None,
            coord: crate::distill::Coord {
                temperature: t.map(|v| crate::config::GridValue {
                    text: v.into(),
                    value: num(v),
                }),
                alpha: a.map(|v| crate::config::GridValue {
                    text: v.into(),
                    value: num(v),
                }),
                ..crate::distill::Coord::of(Default::default())
            },
            teacher_model: None,
            numerics: crate::platform::numerics::Numerics::Native,
            deterministic: false,
        };
        RunRecord::done(
            &spec,
            1,
            crate::train::Fitted::new(
                vec![EpochStats {
                    epoch: 1,
                    train_loss: 0.5,
                    val_acc: val,
                    seconds: 1.0,
                    learned_temperature: None,
                }],
                test,
                test,
                Vec::new(),
            ),
            1.0,
            "cpu",
        )
    }

    /// Three seeds: a baseline, and two cells whose test and validation rankings disagree.
    pub(crate) fn records() -> Vec<RunRecord> {
        let mut v = Vec::new();
        for (seed, base) in [(0, 80.0), (1, 81.0), (2, 79.0)] {
            v.push(rec(
                Role::Teacher,
                seed,
                None,
                None,
                90.0,
                89.0 + seed as f64,
            ));
            v.push(rec(Role::Baseline, seed, None, None, 80.0, base));
            // T=2: better on test (+2, +1, +3 over the baseline), worse on validation
            v.push(rec(
                Role::Student,
                seed,
                Some("2"),
                Some("0.5"),
                81.0,
                base + [2.0, 1.0, 3.0][seed as usize],
            ));
            // T=4: better on validation, gains +1, +0.5, +1.5
            v.push(rec(
                Role::Student,
                seed,
                Some("4"),
                Some("0.5"),
                83.0,
                base + [1.0, 0.5, 1.5][seed as usize],
            ));
        }
        v
    }

    #[test]
    fn stat_uses_sample_standard_deviation() {
        let s = Stat::of(&[1.0, 2.0, 3.0, 4.0]).unwrap();
        assert!((s.mean - 2.5).abs() < 1e-12);
        assert!((s.std - (5.0f64 / 3.0).sqrt()).abs() < 1e-12);
        assert_eq!(Stat::of(&[7.0]).unwrap().std, 0.0);
        assert!(Stat::of(&[]).is_none());
    }

    #[test]
    fn t_quantiles() {
        assert_eq!(t_975(1), 12.706);
        assert_eq!(t_975(2), 4.303);
        assert!((t_975(1000) - 1.96).abs() < 0.003);
        assert!(t_975(45) < 2.021 && t_975(45) > 2.000);
    }

    #[test]
    fn paired_confidence_interval_by_hand() {
        // differences 2, 1, 3: mean 2, sample std 1, n 3 → half-width t(2)·1/√3 = 4.303/1.7320508 = 2.484343
        let g = Gain::of(&[2.0, 1.0, 3.0]).unwrap();
        assert!((g.mean - 2.0).abs() < 1e-12 && (g.std - 1.0).abs() < 1e-12);
        let (lo, hi) = g.ci95.unwrap();
        assert!((lo - (2.0 - 2.484343)).abs() < 1e-5, "{lo}");
        assert!((hi - (2.0 + 2.484343)).abs() < 1e-5, "{hi}");
        assert!(
            Gain::of(&[1.5]).unwrap().ci95.is_none(),
            "n/a with one seed"
        );
    }

    #[test]
    fn summary_means_gains_and_validation_choice() {
        let recs = records();
        let refs: Vec<&RunRecord> = recs.iter().collect();
        let s = summarize(&refs);
        assert!((s.teacher.unwrap().mean - 90.0).abs() < 1e-12);
        assert!(
            (s.baseline.unwrap().mean - 80.0).abs() < 1e-12
                && (s.baseline.unwrap().std - 1.0).abs() < 1e-12
        );
        assert_eq!(s.cells.len(), 2);
        let t2 = &s.cells[0];
        assert_eq!((t2.temperature.as_str(), t2.alpha.as_str()), ("2", "0.5"));
        assert!((t2.test.mean - 82.0).abs() < 1e-12);
        assert!((t2.gain.unwrap().mean - 2.0).abs() < 1e-12);
        // the test set prefers T=2 but the choice is made on validation: T=4
        let best_test = (0..2)
            .max_by(|&i, &j| s.cells[i].test.mean.total_cmp(&s.cells[j].test.mean))
            .unwrap();
        assert_eq!(s.cells[best_test].temperature, "2");
        assert_eq!(s.cells[s.chosen.unwrap()].temperature, "4");
        // T=4 gains 1, 0.5, 1.5: mean 1, std 0.5, half-width 4.303·0.5/√3 = 1.2422 → CI crosses 0
        assert!(
            s.verdict
                .starts_with("no gain distinguishable from seed noise"),
            "{}",
            s.verdict
        );
        assert!(s.verdict.contains("T=4, α=0.5"), "{}", s.verdict);
    }

    #[test]
    fn verdict_says_helps_when_the_interval_excludes_zero() {
        let mut recs = records();
        for r in recs
            .iter_mut()
            .filter(|r| r.temperature.as_deref() == Some("4"))
        {
            r.test_acc = r.test_acc.map(|t| t + 3.0); // gains 4, 3.5, 4.5
        }
        let refs: Vec<&RunRecord> = recs.iter().collect();
        let s = summarize(&refs);
        assert!(
            s.verdict
                .starts_with("distillation helps by 4.00 ± 1.24 points at T=4, α=0.5"),
            "{}",
            s.verdict
        );
        let md = markdown(
            &Meta {
                name: "x".into(),
                ..Default::default()
            },
            &s,
        );
        assert!(
            md.contains("| 4 | 0.5 |") && md.contains("◀ chosen") && md.contains("[+2.76, +5.24]"),
            "{md}"
        );
    }

    #[test]
    fn one_seed_gives_no_interval() {
        let recs: Vec<RunRecord> = records().into_iter().filter(|r| r.seed == 0).collect();
        let refs: Vec<&RunRecord> = recs.iter().collect();
        let s = summarize(&refs);
        assert!(s.verdict.contains("one seed"), "{}", s.verdict);
        let md = markdown(&Meta::default(), &s);
        assert!(md.contains("| n/a |"), "{md}");
    }
}
