//! Records aggregated over seeds: one [`Cell`] per grid coordinate (method, hyper-parameters,
//! student model), its gain over the same model's baseline from per-seed paired differences, the
//! cell chosen on validation accuracy, each method's best and how it compares with logit KD's best,
//! and the verdict. Honest with few seeds: an interval is never narrower than the test set's own
//! measurement noise allows, a verdict from fewer than three seeds says it is provisional, and a
//! teacher no better than its student trained alone is flagged.

use super::stats::{measurement_sd, Gain, Stat};
use crate::distill::{Coord, Method};
use crate::record::{Role, RunRecord, Status};
use serde::Serialize;

/// One grid coordinate (method, hyper-parameters, student model) over seeds.
#[derive(Debug, Clone, Serialize)]
pub struct Cell {
    /// The student's network (`tutorial-student` unless the sweep says otherwise).
    pub student_model: String,
    pub method: Method,
    /// Empty for methods without a (single) temperature.
    pub temperature: String,
    pub t_value: f64,
    /// Empty for methods without α (DIST).
    pub alpha: String,
    pub a_value: f64,
    /// The cell's whole coordinate (its other hyper-parameters, z-scoring, the student model).
    pub coord: Coord,
    pub test: Stat,
    pub val: Stat,
    pub gain: Option<Gain>,
    /// (seed, test accuracy) of each finished run, for paired comparisons between cells.
    pub per_seed: Vec<(u64, f64)>,
    /// Agreement with the teacher on the test set (%) and KL(teacher ‖ student), over seeds.
    pub agreement: Option<Stat>,
    pub kl: Option<Stat>,
}

/// The numbers of a sweep, aggregated over seeds (finished runs only).
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub teacher: Option<Stat>,
    /// The baseline student's; with several student models, the one of the chosen cell's model.
    pub baseline: Option<Stat>,
    /// Each student model's baseline, in the order the models first appear.
    pub baselines: Vec<(String, Stat)>,
    /// The baselines' agreement with their seed's teacher (%), over seeds, when the sweep has one
    /// student model; `None` with several, whose figures are never pooled.
    pub baseline_agreement: Option<Stat>,
    /// Each student model's baselines' agreement with their seed's teacher (%), over seeds, in the
    /// order of `baselines`.
    pub baseline_agreements: Vec<(String, Stat)>,
    /// Sorted by model, method, then the method's axes.
    pub cells: Vec<Cell>,
    /// Index into `cells` of the cell with the best mean validation accuracy.
    pub chosen: Option<usize>,
    /// Each method's best cell by validation, and its paired difference from logit KD's best.
    pub methods: Vec<MethodBest>,
    pub verdict: String,
    /// The teacher's mean test accuracy is no better than the baseline student's: distillation gains
    /// against it mean little.
    pub weak_teacher: bool,
    pub failed: usize,
    /// Cells a halving search stopped early (their validation accuracy at the epoch they reached).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pruned: Vec<PrunedCell>,
    /// What the search spent, when it pruned anything.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub search: Option<SearchSpent>,
    /// `[grid] teacher_epoch`: per snapshot epoch, the teacher's accuracy there and the best cell
    /// distilled from it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub snapshots: Vec<SnapshotRow>,
    /// The test images each accuracy was measured on, when known (the floor of paired intervals).
    #[serde(skip)]
    pub n_test: Option<usize>,
    /// Set when some of the sweep's runs have no record yet ([`crate::report::Meta::unfinished`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unfinished: Option<super::load::Unfinished>,
    /// The kinds of machine the finished runs computed on ([`RunRecord::machine`]) with their number
    /// of runs, when there are two or more: cells computed on different kinds differ by more than
    /// their settings ([`machines_consequence`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub machines: Vec<(String, usize)>,
    /// With `machines`: the finished runs whose records do not name their machine (CPU runs
    /// recorded before kd-sweep named CPUs, GPU runs before it named GPUs).
    #[serde(skip_serializing_if = "is_zero")]
    pub machines_unrecorded: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// One teacher snapshot of a `[grid] teacher_epoch` sweep: the teachers' test and validation
/// accuracy after `epoch` (over seeds) and the best cell distilled from those weights (chosen on
/// validation accuracy).
#[derive(Debug, Clone, Serialize)]
pub struct SnapshotRow {
    pub epoch: u32,
    pub teacher_test: Option<Stat>,
    pub teacher_val: Option<Stat>,
    /// Index into `Summary::cells`.
    pub best: Option<usize>,
}

/// The snapshot rows: every epoch a teacher record or a cell names, in order.
fn snapshot_rows(done: &[&RunRecord], cells: &[Cell]) -> Vec<SnapshotRow> {
    let mut epochs: Vec<u32> = (done.iter())
        .flat_map(|r| r.snapshots.iter().map(|s| s.epoch))
        .chain(cells.iter().filter_map(|c| c.coord.teacher_epoch))
        .collect();
    epochs.sort_unstable();
    epochs.dedup();
    epochs
        .into_iter()
        .map(|epoch| {
            let at = |f: fn(&crate::record::SnapshotStats) -> f64| {
                let xs: Vec<f64> = (done.iter().filter(|r| r.role == Role::Teacher))
                    .flat_map(|r| r.snapshots.iter().filter(|s| s.epoch == epoch).map(f))
                    .collect();
                Stat::of(&xs)
            };
            SnapshotRow {
                epoch,
                teacher_test: at(|s| s.test_acc),
                teacher_val: at(|s| s.val_acc),
                best: best_by_validation(cells, |c| c.coord.teacher_epoch == Some(epoch)),
            }
        })
        .collect()
}

/// A method's best cell (chosen on validation accuracy) and, for the methods other than logit KD,
/// its per-seed paired difference from logit KD's best cell.
#[derive(Debug, Clone, Serialize)]
pub struct MethodBest {
    pub method: Method,
    /// The family as the tables name it: the method, "+ z-score" for z-scored logits.
    pub family: String,
    /// Index into `Summary::cells`.
    pub cell: usize,
    pub vs_logit: Option<Gain>,
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
    pub coord: Coord,
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

/// A figure of the baselines when the summary is about one student model: the one model's, never
/// several pooled.
fn only_model(each: &[(String, Stat)], models: usize) -> Option<Stat> {
    match each {
        [(_, stat)] if models <= 1 => Some(*stat),
        _ => None,
    }
}

/// The student model of a record, by name.
fn model_of(r: &RunRecord) -> String {
    r.models().1.map(|a| a.name()).unwrap_or_default()
}

/// The cell of a student record: its coordinate and model.
fn cell_of(r: &RunRecord) -> (String, Coord) {
    (model_of(r), r.coord())
}

/// Orders cells: method, then z-scoring, α, T, β, γ, the temperature set.
fn cell_order(x: &Coord, y: &Coord) -> std::cmp::Ordering {
    let v =
        |g: &Option<crate::distill::GridValue>| g.as_ref().map_or(f64::NEG_INFINITY, |g| g.value);
    let set = |c: &Coord| c.temperatures.iter().map(|g| g.value).collect::<Vec<_>>();
    x.teacher_epoch
        .cmp(&y.teacher_epoch)
        .then(x.method.rank().cmp(&y.method.rank()))
        .then(x.zscore.cmp(&y.zscore))
        .then(v(&x.alpha).total_cmp(&v(&y.alpha)))
        .then(v(&x.temperature).total_cmp(&v(&y.temperature)))
        .then(v(&x.beta).total_cmp(&v(&y.beta)))
        .then(v(&x.gamma).total_cmp(&v(&y.gamma)))
        .then(
            set(x)
                .partial_cmp(&set(y))
                .unwrap_or(std::cmp::Ordering::Equal),
        )
}

/// The records of a sweep aggregated over seeds. `n_test`: test images each accuracy was measured
/// on (the floor of the intervals), when known.
pub fn summarize(records: &[&RunRecord], n_test: Option<usize>) -> Summary {
    let done: Vec<&RunRecord> = records
        .iter()
        .copied()
        .filter(|r| r.status == Status::Done)
        .collect();
    let role = |role: Role| {
        let xs: Vec<f64> = done
            .iter()
            .filter(|r| r.role == role)
            .filter_map(|r| r.test_acc)
            .collect();
        Stat::of(&xs)
    };
    // the student models in the order they first appear (plan order: the grid's)
    let mut models: Vec<String> = Vec::new();
    for r in done.iter().filter(|r| r.role != Role::Teacher) {
        if !models.contains(&model_of(r)) {
            models.push(model_of(r));
        }
    }
    // per student model, a statistic of its baselines' records
    let of_baselines = |value: fn(&RunRecord) -> Option<f64>| -> Vec<(String, Stat)> {
        (models.iter())
            .filter_map(|m| {
                let xs: Vec<f64> = (done.iter())
                    .filter(|r| r.role == Role::Baseline && model_of(r) == *m)
                    .filter_map(|r| value(r))
                    .collect();
                Some((m.clone(), Stat::of(&xs)?))
            })
            .collect()
    };
    let baselines = of_baselines(|r| r.test_acc);
    let agreements = of_baselines(|r| r.agreement);
    let mut cells = cells_of(&done, n_test);
    let model_rank = |m: &str| models.iter().position(|x| x == m);
    cells.sort_by(|x, y| {
        model_rank(&x.student_model)
            .cmp(&model_rank(&y.student_model))
            .then(cell_order(&x.coord, &y.coord))
    });
    let chosen = choose(&cells);
    let (teacher, baseline_all) = (role(Role::Teacher), role(Role::Baseline));
    let weak_teacher = matches!((teacher, baseline_all), (Some(t), Some(b)) if t.mean <= b.mean);
    let verdict = verdict(chosen.map(|i| &cells[i]), weak_teacher);
    let (pruned, search) = search_part(records, &cells);
    let baseline = match (baselines.len(), chosen) {
        (0 | 1, _) => baseline_all,
        (_, Some(i)) => baselines
            .iter()
            .find(|(m, _)| *m == cells[i].student_model)
            .map(|b| b.1),
        (_, None) => None,
    };
    let snapshots = snapshot_rows(&done, &cells);
    // the kinds of machine, said when there are several
    let (kinds, unrecorded) = machine_kinds(&done);
    let several_kinds = kinds.len() > 1;
    Summary {
        teacher,
        baseline,
        baselines,
        baseline_agreement: only_model(&agreements, models.len()),
        baseline_agreements: agreements,
        methods: method_bests(&cells, n_test),
        cells,
        chosen,
        verdict,
        weak_teacher,
        failed: records
            .iter()
            .filter(|r| r.status == Status::Failed)
            .count(),
        pruned,
        search,
        snapshots,
        unfinished: None,
        n_test,
        machines: if several_kinds { kinds } else { Vec::new() },
        machines_unrecorded: if several_kinds { unrecorded } else { 0 },
    }
}

/// The kinds of machine `records` computed on ([`RunRecord::machine`]), in the order first seen,
/// with their runs; and how many records do not say.
pub fn machine_kinds(records: &[&RunRecord]) -> (Vec<(String, usize)>, usize) {
    let mut out: Vec<(String, usize)> = Vec::new();
    let mut unrecorded = 0;
    for m in records.iter().map(|r| r.machine()) {
        let Some(m) = m else {
            unrecorded += 1;
            continue;
        };
        match out.iter_mut().find(|(k, _)| *k == m) {
            Some((_, n)) => *n += 1,
            None => out.push((m, 1)),
        }
    }
    (out, unrecorded)
}

/// What computing on these different kinds of machine does to a comparison of their numbers.
pub fn machines_consequence<S: AsRef<str>>(kinds: &[S]) -> &'static str {
    // a kind may be several, one after another ("cpu …, then cpu …": a continued run)
    let on = |prefix: &str| {
        (kinds.iter())
            .flat_map(|k| k.as_ref().split(", then "))
            .any(|k| k.starts_with(prefix))
    };
    if on("cpu") && on("cuda") {
        "CPU and GPU runs draw their initial weights and dropout from other generators, so compare \
         them as seeds, not number by number (README: Devices, workers, the cache, resuming)"
    } else {
        "one setting's numbers differ between them by rounding, amplified by training (README: \
         Numerics, determinism and precision), so small differences between cells computed on \
         different ones are not the settings'"
    }
}

/// Every student cell of the finished records, with its gain over its model's baseline.
fn cells_of(done: &[&RunRecord], n_test: Option<usize>) -> Vec<Cell> {
    let baseline_of = |seed: u64, model: &str| {
        done.iter()
            .find(|r| r.role == Role::Baseline && r.seed == seed && model_of(r) == model)
            .and_then(|r| r.test_acc)
    };
    let mut keys: Vec<(String, Coord)> = Vec::new();
    for r in done.iter().filter(|r| r.role == Role::Student) {
        let k = cell_of(r);
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    let mut cells = Vec::new();
    for (model, coord) in keys {
        let rs: Vec<&RunRecord> = done
            .iter()
            .copied()
            .filter(|r| r.role == Role::Student && cell_of(r) == (model.clone(), coord.clone()))
            .collect();
        let test: Vec<f64> = rs.iter().filter_map(|r| r.test_acc).collect();
        let val: Vec<f64> = rs.iter().filter_map(|r| r.val_acc).collect();
        let pairs: Vec<(f64, f64)> = rs
            .iter()
            .filter_map(|r| Some((r.test_acc?, baseline_of(r.seed, &model)?)))
            .collect();
        let stat_of = |f: fn(&RunRecord) -> Option<f64>| {
            Stat::of(&rs.iter().filter_map(|r| f(r)).collect::<Vec<_>>())
        };
        if let (Some(test), Some(val)) = (Stat::of(&test), Stat::of(&val)) {
            let text = |g: &Option<crate::distill::GridValue>| {
                g.as_ref().map_or(String::new(), |g| g.text.clone())
            };
            cells.push(Cell {
                student_model: model,
                method: coord.method,
                temperature: text(&coord.temperature),
                t_value: coord.temperature.as_ref().map_or(f64::NAN, |g| g.value),
                alpha: text(&coord.alpha),
                a_value: coord.alpha.as_ref().map_or(f64::NAN, |g| g.value),
                test,
                val,
                gain: paired_gain(&pairs, n_test),
                per_seed: rs
                    .iter()
                    .filter_map(|r| Some((r.seed, r.test_acc?)))
                    .collect(),
                agreement: stat_of(|r| r.agreement),
                kl: stat_of(|r| r.kl_to_teacher),
                coord,
            });
        }
    }
    cells
}

/// The gain of paired accuracies (cell, reference) over seeds. Each difference is measured on the
/// test set of `n_test` images: that noise is the floor of the spread.
fn paired_gain(pairs: &[(f64, f64)], n_test: Option<usize>) -> Option<Gain> {
    let diffs: Vec<f64> = pairs.iter().map(|(a, b)| a - b).collect();
    let floor = n_test.map_or(0.0, |n| {
        (pairs.iter())
            .map(|&(a, b)| measurement_sd(a, b, n))
            .sum::<f64>()
            / pairs.len().max(1) as f64
    });
    Gain::with_floor(&diffs, floor)
}

/// Each method's best cell by validation (among its cells with the most seeds) — a method with
/// z-scored logits apart from the plain one — and for every method but plain logit KD its paired
/// difference from plain logit KD's best cell over the seeds both have.
fn method_bests(cells: &[Cell], n_test: Option<usize>) -> Vec<MethodBest> {
    let variant = |c: &Cell| (c.method, c.coord.zscore);
    let mut variants: Vec<(Method, bool)> = Vec::new();
    for c in cells {
        if !variants.contains(&variant(c)) {
            variants.push(variant(c));
        }
    }
    let best = |v: (Method, bool)| {
        let most = (cells.iter().filter(|c| variant(c) == v))
            .map(|c| c.val.n)
            .max()
            .unwrap_or(0);
        best_by_validation(cells, |c| variant(c) == v && c.val.n == most)
    };
    let logit = best((Method::Logit, false));
    variants
        .into_iter()
        .filter_map(|v| {
            let i = best(v)?;
            let vs_logit = logit.filter(|&l| l != i).and_then(|l| {
                let pairs: Vec<(f64, f64)> = (cells[i].per_seed.iter())
                    .filter_map(|&(s, a)| {
                        let (_, b) = cells[l].per_seed.iter().find(|(t, _)| *t == s)?;
                        Some((a, *b))
                    })
                    .collect();
                paired_gain(&pairs, n_test)
            });
            Some(MethodBest {
                method: v.0,
                family: cells[i].coord.method_text(),
                cell: i,
                vs_logit,
            })
        })
        .collect()
}

/// The chosen cell: the best by mean validation accuracy among the cells with the most seeds — after
/// a confirmation step, the confirmed cells (a cell of two lucky seeds cannot overtake them).
pub(crate) fn choose(cells: &[Cell]) -> Option<usize> {
    let most = cells.iter().map(|c| c.val.n).max().unwrap_or(0);
    best_by_validation(cells, |c| c.val.n == most)
}

/// The cell with the best mean validation accuracy among those `keep` accepts; ties go to the earlier
/// cell (method order, then smaller α, then smaller T).
pub fn best_by_validation(cells: &[Cell], keep: impl Fn(&Cell) -> bool) -> Option<usize> {
    (0..cells.len())
        .rev()
        .filter(|&i| keep(&cells[i]))
        .max_by(|&i, &j| cells[i].val.mean.total_cmp(&cells[j].val.mean))
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
        let (model, coord) = cell_of(r);
        if out
            .iter()
            .any(|p| p.student_model == model && p.coord == coord)
        {
            continue;
        }
        let same: Vec<f64> = pruned_runs
            .iter()
            .filter(|x| cell_of(x) == (model.clone(), coord.clone()))
            .filter_map(|x| x.val_acc)
            .collect();
        if let Some(val) = Stat::of(&same) {
            let t = r.temperature.clone().unwrap_or_default();
            let a = r.alpha.clone().unwrap_or_default();
            out.push(PrunedCell {
                student_model: model,
                method: r.method,
                t_value: num(&t),
                a_value: num(&a),
                temperature: t,
                alpha: a,
                coord,
                epoch: r.epochs,
                val,
            });
        }
    }
    out.sort_by(|x, y| cell_order(&x.coord, &y.coord));
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

    /// The part of the summary about the cells distilled from the teachers' snapshot after `epoch`
    /// (`[grid] teacher_epoch`): those cells, their chosen one, their methods' best.
    pub fn at_teacher_epoch(&self, epoch: u32) -> Summary {
        let cells: Vec<Cell> = (self.cells.iter())
            .filter(|c| c.coord.teacher_epoch == Some(epoch))
            .cloned()
            .collect();
        let chosen = choose(&cells);
        Summary {
            verdict: verdict(chosen.map(|i| &cells[i]), self.weak_teacher),
            methods: method_bests(&cells, self.n_test),
            cells,
            chosen,
            snapshots: Vec::new(),
            ..self.clone()
        }
    }

    /// The sentence on the baselines' agreement with their teacher: one model's, or each model's.
    pub fn baseline_agreement_said(&self) -> Option<String> {
        if let Some(a) = self.baseline_agreement {
            return Some(format!(
                "The baseline student (no teacher) agrees with its seed's teacher on {} % of the test images.",
                a.show()
            ));
        }
        let each: Vec<String> = (self.baseline_agreements.iter())
            .map(|(m, a)| format!("{} % ({m})", a.show()))
            .collect();
        (!each.is_empty()).then(|| {
            format!(
                "The baseline students (no teacher) agree with their seed's teacher on {} of the test images.",
                each.join(", ")
            )
        })
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
        let mine = |each: &[(String, Stat)]| -> Vec<(String, Stat)> {
            each.iter().filter(|b| b.0 == model).cloned().collect()
        };
        let agreements = mine(&self.baseline_agreements);
        let snapshots = (self.snapshots.iter())
            .map(|r| SnapshotRow {
                best: best_by_validation(&cells, |c| c.coord.teacher_epoch == Some(r.epoch)),
                ..r.clone()
            })
            .collect();
        Summary {
            teacher: self.teacher,
            baseline,
            baselines: mine(&self.baselines),
            baseline_agreement: only_model(&agreements, 1),
            baseline_agreements: agreements,
            verdict: verdict(chosen.map(|i| &cells[i]), self.weak_teacher),
            methods: method_bests(&cells, self.n_test),
            cells,
            chosen,
            weak_teacher: self.weak_teacher,
            failed: self.failed,
            pruned: self
                .pruned
                .iter()
                .filter(|c| c.student_model == model)
                .cloned()
                .collect(),
            search: self.search.clone(),
            snapshots,
            unfinished: self.unfinished,
            n_test: self.n_test,
            machines: self.machines.clone(),
            machines_unrecorded: self.machines_unrecorded,
        }
    }

    /// Said when the runs computed on more than one kind of machine.
    pub fn machines_warning(&self) -> Option<String> {
        let runs = |n: usize| format!("{n} run{}", if n == 1 { "" } else { "s" });
        let mut each: Vec<String> = (self.machines.iter())
            .map(|(m, n)| format!("{m} ({})", runs(*n)))
            .collect();
        if self.machines_unrecorded > 0 {
            each.push(format!("not recorded ({})", runs(self.machines_unrecorded)));
        }
        let kinds: Vec<&str> = self.machines.iter().map(|(m, _)| m.as_str()).collect();
        (!kinds.is_empty()).then(|| {
            format!(
                "these runs computed on {} kinds of machine: {}; {}",
                kinds.len(),
                each.join("; "),
                machines_consequence(&kinds)
            )
        })
    }

    /// The warning every output gives when the teacher is no better than the student alone.
    pub fn weak_teacher_warning(&self) -> Option<String> {
        let (t, b) = (self.teacher?, self.baseline?);
        self.weak_teacher.then(|| {
            format!(
                "the teacher ({:.2} %) is no better than the student trained alone ({:.2} %): \
                 distillation gains against it are not meaningful (train the teacher longer or give \
                 it a larger network; a teacher used as loaded: give a better-trained one)",
                t.mean, b.mean
            )
        })
    }
}

impl Cell {
    /// The cell's setting in words: `T=4, α=0.5` for logit KD, `feature, α=0.5`, `dkd T=4, α=1,
    /// β=8`, `dist T=4, β=2, γ=2`, `multi-t T={2,3,4}, α=0.9`; z-scored cells say so.
    pub fn setting(&self) -> String {
        let c = &self.coord;
        let v = |name: &str, g: &Option<crate::distill::GridValue>| {
            g.as_ref().map(|g| format!("{name}={g}"))
        };
        let mut parts: Vec<String> = Vec::new();
        parts.extend(v("T", &c.temperature));
        if !c.temperatures.is_empty() {
            let ts: Vec<&str> = c.temperatures.iter().map(|t| t.text.as_str()).collect();
            parts.push(format!("T={{{}}}", ts.join(",")));
        }
        parts.extend(v("α", &c.alpha));
        parts.extend(v("β", &c.beta));
        parts.extend(v("γ", &c.gamma));
        if c.zscore {
            parts.push("z-score".into());
        }
        if let Some(e) = c.teacher_epoch {
            parts.insert(0, format!("teacher@{e}"));
        }
        let values = parts.join(", ");
        match c.method {
            Method::Logit => values,
            Method::Feature | Method::Imitation | Method::Ctkd => {
                format!("{}, {values}", c.method.name())
            }
            _ => format!("{} {values}", c.method.name()),
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

/// One line: does distillation help, judged at the validation-chosen cell; provisional with fewer
/// than three seeds, and qualified when the teacher is no better than the student alone.
pub(crate) fn verdict(chosen: Option<&Cell>, weak_teacher: bool) -> String {
    let Some(c) = chosen else {
        return "no distilled student finished yet".into();
    };
    let at = c.label();
    let line = match c.gain {
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
    };
    let line = if c.val.n < 3 && c.val.n > 1 {
        format!(
            "provisional, from {} seeds (three or more make it firm): {line}",
            c.val.n
        )
    } else {
        line
    };
    if weak_teacher {
        format!("{line} — but the teacher is no better than the student trained alone, so this says little about distillation")
    } else {
        line
    }
}
