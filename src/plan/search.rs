//! Which runs train how far: every cell of the grid in full (`strategy = "grid"`, the default), or
//! successive halving over the grid's student cells (`"halving"`), and then, optionally, the best
//! cells and the baseline again with more seeds (`confirm_seeds`).
//!
//! The search is a sequence of [`Step`]s, each a set of runs and the epoch each stops after; the
//! coordinator trains a step and asks for the next. Every decision is a pure function of the plan and
//! of what the records say each run has reached ([`Reached`]), so a search stopped and started again,
//! or run twice, makes the same choices. A halving rung ranks cells by their mean validation accuracy
//! over the sweep's seeds at the rung's epoch — the seeds of a cell share a teacher, initial weights,
//! batch order and dropout masks with every other cell (common random numbers), so one epoch already
//! separates most cells — and keeps ⌈n / eta⌉ of them. A promoted run continues from the checkpoint its
//! pause left (`train::Hooks::until`), so a survivor's record is the record the full grid gives.

use crate::config::{Strategy, Sweep};
use crate::plan::{Plan, Role};

/// What a run's record says it has reached.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reached {
    /// Validation accuracy (%) of each epoch trained so far.
    pub val: Vec<f64>,
    /// It finished its whole schedule.
    pub done: bool,
    /// It failed, and is not tried again before the sweep is started again.
    pub failed: bool,
}

impl Reached {
    /// A finished run with these epochs.
    pub fn done(val: Vec<f64>) -> Reached {
        Reached {
            val,
            done: true,
            failed: false,
        }
    }

    /// A run paused (pruned) after these epochs.
    pub fn paused(val: Vec<f64>) -> Reached {
        Reached {
            val,
            ..Reached::default()
        }
    }

    pub fn failed() -> Reached {
        Reached {
            failed: true,
            ..Reached::default()
        }
    }

    /// Whether nothing more is to be trained for a rung that ends at `epoch`.
    fn reached(&self, epoch: u32) -> bool {
        self.done || self.failed || self.val.len() >= epoch as usize
    }

    /// Validation accuracy after `epoch`; NaN for a failed run or one not that far.
    fn val_at(&self, epoch: u32) -> f64 {
        match epoch.checked_sub(1).and_then(|i| self.val.get(i as usize)) {
            Some(&v) if !self.failed => v,
            _ => f64::NAN,
        }
    }
}

/// The epochs each rung ends at: `min_epochs`, × eta, … capped at (and ending with) `epochs`; a grid
/// has one rung, the whole schedule.
pub fn rungs(sweep: &Sweep) -> Vec<u32> {
    let epochs = sweep.student.epochs;
    let s = &sweep.search;
    if s.strategy == Strategy::Grid {
        return vec![epochs];
    }
    let mut out = Vec::new();
    let mut e = s.min_epochs.max(1);
    while e < epochs {
        out.push(e);
        e = e.saturating_mul(s.eta.max(2));
    }
    out.push(epochs);
    out
}

/// How many of `n` cells a rung keeps: ⌈n / eta⌉, at least one.
pub fn keep(n: usize, eta: u32) -> usize {
    n.div_ceil(eta.max(1) as usize).clamp(1.min(n), n)
}

/// One grid point (its coordinate: method, hyper-parameters, student model): its runs, one per seed.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    /// The typed coordinate the cell is found by.
    pub coord: crate::distill::Coord,
    /// For progress lines: the run id without its seed, `student-T4-a0.5` (never parsed).
    pub label: String,
    /// Plan indices of its runs, in seed order.
    pub runs: Vec<usize>,
}

/// The student cells of the plan over `seeds`, in plan order.
pub fn cells(plan: &Plan, seeds: &[u64]) -> Vec<Cell> {
    let mut out: Vec<Cell> = Vec::new();
    for (i, r) in plan.runs.iter().enumerate() {
        if r.role != Role::Student || !seeds.contains(&r.seed) {
            continue;
        }
        match out.iter_mut().find(|c| c.coord == r.coord) {
            Some(c) => c.runs.push(i),
            None => out.push(Cell {
                coord: r.coord.clone(),
                label: cell_label(&r.id, r.seed),
                runs: vec![i],
            }),
        }
    }
    out
}

/// A run id without its seed suffix (`student-T4-a0.5-s0` → `student-T4-a0.5`).
pub fn cell_label(id: &str, seed: u64) -> String {
    id.strip_suffix(&format!("-s{seed}"))
        .unwrap_or(id)
        .to_string()
}

/// Runs to train next, and how far.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// What the step is, for progress lines: `rung 1 of 3: 20 cells × 2 seeds to epoch 1`.
    pub label: String,
    /// (plan index, the epoch it pauses after; `None`: to the end of its schedule).
    pub runs: Vec<(usize, Option<u32>)>,
}

/// The outcome of one finished rung: its cells ranked, and how many went on.
#[derive(Debug, Clone, PartialEq)]
pub struct RungResult {
    pub epochs: u32,
    /// (cell index, mean validation accuracy at `epochs`), best first.
    pub ranked: Vec<(usize, f64)>,
    pub kept: usize,
}

/// Where a search stands: the rungs decided so far and the next step (`None`: nothing left to train).
#[derive(Debug, Clone, PartialEq)]
pub struct State {
    pub cells: Vec<Cell>,
    pub rungs: Vec<RungResult>,
    /// Cells chosen for confirmation (indices into `cells`), once the last rung is decided.
    pub confirmed: Vec<usize>,
    pub next: Option<Step>,
}

/// Decides what the search does next from what each plan run has reached (`reached[i]` for run `i`).
pub fn decide(plan: &Plan, sweep: &Sweep, reached: &[Reached]) -> State {
    let search = &sweep.search;
    let cells = cells(plan, &sweep.seeds);
    let epochs = sweep.student.epochs;
    let rung_ends = rungs(sweep);
    let pending = |i: usize, e: u32| !reached[i].reached(e);
    // teachers and baselines always train in full, alongside the first rungs — those of the
    // confirmation seeds too, which the confirmation needs whichever cells it takes
    let mut work: Vec<(usize, Option<u32>)> = plan
        .runs
        .iter()
        .enumerate()
        .filter(|(i, r)| r.role != Role::Student && pending(*i, epochs))
        .map(|(i, _)| (i, None))
        .collect();
    let mut results = Vec::new();
    let mut alive: Vec<usize> = (0..cells.len()).collect();
    let n_seeds = sweep.seeds.len();
    for (r, &end) in rung_ends.iter().enumerate() {
        let until = (end < epochs).then_some(end);
        let todo: Vec<(usize, Option<u32>)> = alive
            .iter()
            .flat_map(|&c| cells[c].runs.iter().copied())
            .filter(|&i| pending(i, end))
            .map(|i| (i, until))
            .collect();
        if !todo.is_empty() {
            let label = match search.strategy {
                Strategy::Grid => format!(
                    "the grid: {} cells × {n_seeds} seed(s), {end} epochs",
                    alive.len()
                ),
                Strategy::Halving => format!(
                    "rung {} of {}: {} cells × {n_seeds} seed(s) to epoch {end}",
                    r + 1,
                    rung_ends.len(),
                    alive.len()
                ),
            };
            work.extend(todo);
            return State {
                cells,
                rungs: results,
                confirmed: Vec::new(),
                next: Some(Step { label, runs: work }),
            };
        }
        let ranked = rank(&cells, &alive, reached, end);
        let kept = if end < epochs {
            keep(ranked.len(), search.eta)
        } else {
            ranked.len()
        };
        alive = ranked[..kept].iter().map(|&(c, _)| c).collect();
        results.push(RungResult {
            epochs: end,
            ranked,
            kept,
        });
    }
    if !work.is_empty() {
        return State {
            cells,
            rungs: results,
            confirmed: Vec::new(),
            next: Some(Step {
                label: "teachers and baselines".into(),
                runs: work,
            }),
        };
    }
    let (confirmed, next) = confirmation(plan, sweep, &cells, &results, &pending);
    State {
        cells,
        rungs: results,
        confirmed,
        next,
    }
}

/// The alive cells ranked by their mean validation accuracy at epoch `end`: best first, a cell
/// with a failed run (NaN) last, ties in plan order (a stable sort).
fn rank(cells: &[Cell], alive: &[usize], reached: &[Reached], end: u32) -> Vec<(usize, f64)> {
    let mean = |c: usize| {
        let v: Vec<f64> = cells[c]
            .runs
            .iter()
            .map(|&i| reached[i].val_at(end))
            .collect();
        v.iter().sum::<f64>() / v.len().max(1) as f64
    };
    let mut ranked: Vec<(usize, f64)> = alive.iter().map(|&c| (c, mean(c))).collect();
    ranked.sort_by(|a, b| match (a.1.is_nan(), b.1.is_nan()) {
        (false, false) => b.1.total_cmp(&a.1),
        (x, y) => x.cmp(&y),
    });
    ranked
}

/// After the last rung: the best finished cells (no failed run) and the baseline with the
/// confirmation seeds — the cells chosen and the step that trains what of them is pending.
fn confirmation(
    plan: &Plan,
    sweep: &Sweep,
    cells: &[Cell],
    results: &[RungResult],
    pending: &dyn Fn(usize, u32) -> bool,
) -> (Vec<usize>, Option<Step>) {
    let search = &sweep.search;
    let confirmed: Vec<usize> = match (search.confirm_seeds.is_empty(), results.last()) {
        (false, Some(last)) => last
            .ranked
            .iter()
            .filter(|(_, v)| !v.is_nan())
            .take(search.confirm_top as usize)
            .map(|&(c, _)| c)
            .collect(),
        _ => Vec::new(),
    };
    let extra = &search.confirm_seeds;
    let chosen: Vec<&crate::distill::Coord> = confirmed.iter().map(|&c| &cells[c].coord).collect();
    let epochs = sweep.student.epochs;
    let todo: Vec<(usize, Option<u32>)> = plan
        .runs
        .iter()
        .enumerate()
        .filter(|(_, r)| extra.contains(&r.seed))
        .filter(|(_, r)| r.role != Role::Student || chosen.contains(&&r.coord))
        .filter(|(i, _)| !confirmed.is_empty() && pending(*i, epochs))
        .map(|(i, _)| (i, None))
        .collect();
    let next = (!todo.is_empty()).then(|| Step {
        label: format!(
            "confirmation: {} with seed(s) {}",
            (confirmed.iter().map(|&c| cells[c].label.as_str()))
                .collect::<Vec<_>>()
                .join(", "),
            seed_list(extra)
        ),
        runs: todo,
    });
    (confirmed, next)
}

/// Seeds as a sweep file lists them: `2, 3, 4`.
pub fn seed_list(seeds: &[u64]) -> String {
    seeds
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The most a search can train, in student-epochs (students of the sweep's seeds only), beside the
/// full grid's: each rung's cells × seeds × the epochs it adds.
#[derive(Debug, Clone, PartialEq)]
pub struct Budget {
    /// (cells, epoch the rung ends at) per rung.
    pub rungs: Vec<(usize, u32)>,
    pub student_epochs: u64,
    pub grid_epochs: u64,
    /// Runs the confirmation adds at most: teachers, baselines and students of the extra seeds.
    pub confirm_runs: usize,
    pub confirm_student_epochs: u64,
    /// Cells the confirmation trains at most: `confirm_top`, or fewer when fewer finish the search
    /// (the last rung's cells).
    pub confirm_cells: usize,
}

pub fn budget(plan: &Plan, sweep: &Sweep) -> Budget {
    let n = cells(plan, &sweep.seeds).len();
    let seeds = sweep.seeds.len() as u64;
    let epochs = sweep.student.epochs as u64;
    let mut alive = n;
    let mut before = 0u64;
    let mut spent = 0u64;
    let mut out = Vec::new();
    for end in rungs(sweep) {
        out.push((alive, end));
        spent += alive as u64 * seeds * (end as u64 - before);
        before = end as u64;
        alive = keep(alive, sweep.search.eta);
    }
    let s = &sweep.search;
    // chosen among the cells that reach the last rung
    let finishing = out.last().map_or(n, |&(cells, _)| cells);
    let top = if s.confirm_seeds.is_empty() {
        0
    } else {
        (s.confirm_top as usize).min(finishing)
    };
    let extra = s.confirm_seeds.len();
    let per_seed_others = plan
        .runs
        .iter()
        .filter(|r| r.role != Role::Student && r.seed == sweep.seeds[0])
        .count();
    Budget {
        rungs: out,
        student_epochs: spent,
        grid_epochs: n as u64 * seeds * epochs,
        confirm_runs: if top == 0 {
            0
        } else {
            extra * (per_seed_others + top)
        },
        confirm_student_epochs: (extra * top) as u64 * epochs,
        confirm_cells: top,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{parse, Strategy};
    use std::path::Path;

    /// config's test sweep with a 5 × 4 grid (20 cells), `epochs` student epochs and `search`.
    fn sweep(search: &str, epochs: u32) -> Sweep {
        let text = crate::config::tests::GOOD
            .replace("epochs = 2\n", &format!("epochs = {epochs}\n"))
            .replace("[1, 2.5, 0.1, 1e1]", "[1, 2, 4, 8, 16]")
            .replace("[0, 0.5, 1]", "[0.25, 0.5, 0.75, 0.9]")
            + search;
        parse(&text, Path::new("h.toml")).expect("valid")
    }

    #[test]
    fn rungs_multiply_by_eta_and_end_at_the_schedule() {
        let s = sweep("[search]\nstrategy = \"halving\"", 5);
        assert_eq!(rungs(&s), vec![1, 3, 5]);
        let s = sweep(
            "[search]\nstrategy = \"halving\"\nmin_epochs = 2\neta = 2",
            16,
        );
        assert_eq!(rungs(&s), vec![2, 4, 8, 16]);
        let s = sweep("[search]\nstrategy = \"halving\"\nmin_epochs = 5", 5);
        assert_eq!(rungs(&s), vec![5]);
        assert_eq!(rungs(&sweep("", 5)), vec![5]);
        assert_eq!(sweep("", 5).search.strategy, Strategy::Grid);
    }

    #[test]
    fn a_rung_keeps_the_ceiling_of_n_over_eta() {
        assert_eq!(keep(20, 3), 7);
        assert_eq!(keep(7, 3), 3);
        assert_eq!(keep(3, 3), 1);
        assert_eq!(keep(1, 3), 1);
        assert_eq!(keep(0, 3), 0);
    }

    /// Fills in what a step trains, with validation accuracy `acc(run index, epoch)`.
    fn train(plan: &Plan, reached: &mut [Reached], step: &Step, acc: &dyn Fn(usize, u32) -> f64) {
        for &(i, until) in &step.runs {
            let end = until.unwrap_or(if plan.runs[i].role == Role::Teacher {
                1
            } else {
                5
            });
            let val: Vec<f64> = (1..=end).map(|e| acc(i, e)).collect();
            reached[i] = match until {
                Some(_) => Reached::paused(val),
                None => Reached::done(val),
            };
        }
    }

    #[test]
    fn halving_trains_forty_percent_and_keeps_the_best_cells_by_mean_validation() {
        let s = sweep(
            "[search]\nstrategy = \"halving\"\nconfirm_seeds = [7]\nconfirm_top = 2",
            5,
        );
        let plan = crate::plan::build(&s, "fp");
        let cells = cells(&plan, &s.seeds);
        assert_eq!(cells.len(), 20);
        // a cell's quality: its position in plan order, reversed — the last cell is the best
        let quality = |i: usize| {
            let label = cell_label(&plan.runs[i].id, plan.runs[i].seed);
            cells.iter().position(|c| c.label == label).unwrap_or(0) as f64
        };
        let acc = |i: usize, e: u32| 50.0 + quality(i) + e as f64;
        let mut reached = vec![Reached::default(); plan.runs.len()];
        let mut labels = Vec::new();
        let mut student_epochs = 0;
        loop {
            let state = decide(&plan, &s, &reached);
            let Some(step) = state.next else {
                assert_eq!(
                    state.confirmed,
                    vec![19, 18],
                    "the two best cells are confirmed"
                );
                assert_eq!(state.rungs.len(), 3);
                assert_eq!(
                    state.rungs.iter().map(|r| r.kept).collect::<Vec<_>>(),
                    [7, 3, 3]
                );
                break;
            };
            for &(i, until) in &step.runs {
                let r = &plan.runs[i];
                if r.role == Role::Student && s.seeds.contains(&r.seed) {
                    student_epochs += until.unwrap_or(5) as usize - reached[i].val.len();
                }
            }
            labels.push(step.label.clone());
            train(&plan, &mut reached, &step, &acc);
        }
        assert_eq!(
            labels,
            [
                "rung 1 of 3: 20 cells × 2 seed(s) to epoch 1",
                "rung 2 of 3: 7 cells × 2 seed(s) to epoch 3",
                "rung 3 of 3: 3 cells × 2 seed(s) to epoch 5",
                "confirmation: student-T16-a0.9, student-T16-a0.75 with seed(s) 7",
            ]
        );
        // 20 cells × 1 epoch + 7 × 2 more + 3 × 2 more, per seed: 40 of the grid's 100
        assert_eq!(student_epochs, 2 * 40);
        let b = budget(&plan, &s);
        assert_eq!((b.student_epochs, b.grid_epochs), (80, 200));
        assert_eq!(b.rungs, vec![(20, 1), (7, 3), (3, 5)]);
        // teacher + baseline + 2 cells for the one extra seed
        assert_eq!((b.confirm_runs, b.confirm_student_epochs), (4, 10));
        // confirm_top beyond the cells that reach the last rung: those 3 at most
        let mut more = s.clone();
        more.search.confirm_top = 10;
        let b = budget(&plan, &more);
        assert_eq!(
            (b.confirm_cells, b.confirm_runs, b.confirm_student_epochs),
            (3, 5, 15)
        );
        // the pruned cells never trained past their rung
        let worst = &cells[0];
        assert!(worst
            .runs
            .iter()
            .all(|&i| reached[i].val.len() == 1 && !reached[i].done));
    }

    #[test]
    fn a_cell_with_a_failed_run_ranks_last_and_ties_keep_plan_order() {
        let s = sweep("[search]\nstrategy = \"halving\"", 5);
        let plan = crate::plan::build(&s, "fp");
        let cells = cells(&plan, &s.seeds);
        let mut reached = vec![Reached::default(); plan.runs.len()];
        let step = decide(&plan, &s, &reached).next.expect("rung 1");
        // every cell equal, but the first cell's seed-1 run failed
        train(&plan, &mut reached, &step, &|_, _| 80.0);
        reached[cells[0].runs[1]] = Reached::failed();
        let state = decide(&plan, &s, &reached);
        let rung = &state.rungs[0];
        assert_eq!(rung.ranked.last().map(|r| r.0), Some(0));
        assert_eq!(
            rung.ranked[..7].iter().map(|r| r.0).collect::<Vec<_>>(),
            [1, 2, 3, 4, 5, 6, 7]
        );
        // the decision depends on the records only: the same input, the same step
        // (compared as text: NaN is not equal to itself)
        assert_eq!(
            format!("{:?}", decide(&plan, &s, &reached)),
            format!("{state:?}")
        );
    }

    #[test]
    fn a_grid_is_one_step_of_every_unfinished_run() {
        let s = sweep("", 5);
        let plan = crate::plan::build(&s, "fp");
        let mut reached = vec![Reached::default(); plan.runs.len()];
        reached[0] = Reached::done(vec![90.0]);
        let step = decide(&plan, &s, &reached).next.expect("work");
        let want: Vec<(usize, Option<u32>)> = (1..plan.runs.len()).map(|i| (i, None)).collect();
        let mut got = step.runs.clone();
        got.sort();
        assert_eq!(got, want);
        let done = vec![Reached::done(vec![90.0; 5]); plan.runs.len()];
        assert_eq!(decide(&plan, &s, &done).next, None);
    }
}
