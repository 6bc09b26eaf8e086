//! `kd-sweep plan`: what a sweep will do, in words — the devices and numerics, how each role trains,
//! the networks and their sizes, every run with its status, and the work left.

use super::pipeline::{finished, prepare, reached_of, record_notes, Options, Prepared, Reused};
use crate::plan::{self, Role};
use std::path::Path;

/// How the plan's numbers are computed, for `plan`: the numerics mode (with what of the user's own
/// environment portable numerics replaces) and GPU determinism.
pub(super) fn describe_numerics(p: &Prepared) -> String {
    use crate::platform::numerics::Numerics;
    let mut out = match p.sweep.schedule.numerics {
        Numerics::Portable => {
            let replaced = crate::platform::numerics::overridden(|k| std::env::var(k).ok());
            format!(
                "numerics: portable — ATen, oneDNN and MKL at AVX2 in every worker, the same numbers on every machine of this CPU vendor{}\n",
                if replaced.is_empty() {
                    String::new()
                } else {
                    format!(" (replaces your {})", replaced.join(", "))
                }
            )
        }
        Numerics::Native => format!(
            "numerics: native — libtorch's own kernels for this CPU (ATen: {}); numbers are comparable only with machines that choose the same\n",
            crate::platform::torch_ext::cpu_capability().unwrap_or_else(|| "unknown".into())
        ),
    };
    if p.sweep.schedule.cuda_graphs {
        out.push_str(
            "cuda_graphs: SGD training steps on a GPU are captured once per epoch as CUDA graphs and replayed (CPU runs, Adam roles and fused groups train eagerly)\n",
        );
    }
    if p.sweep.schedule.deterministic {
        out.push_str(
            "deterministic: GPU runs use cuDNN's deterministic algorithms without benchmark search (repeatable bit for bit, slower)\n",
        );
    }
    let gpu_only = [
        ("deterministic", p.sweep.schedule.deterministic),
        ("cuda_graphs", p.sweep.schedule.cuda_graphs),
    ];
    let set: Vec<&str> = (gpu_only.iter().filter(|(_, on)| *on))
        .map(|(name, _)| *name)
        .collect();
    if !set.is_empty() && p.slots.iter().all(|s| !s.device.is_cuda()) {
        let (verb, it) = if set.len() == 1 {
            ("changes", "it")
        } else {
            ("change", "them")
        };
        out.push_str(&format!(
            "note: every worker here is on the CPU, where {} {verb} nothing but the runs' keys (a \
             CPU run repeats bit for bit without {it}): runs finished without {it} are not reused\n",
            set.join(" and ")
        ));
    }
    out
}

/// What the methods' settings do that a reader of the sweep file may not expect: axes that
/// `[grid]`'s values do not reach ([`own_axes_note`]), and a method whose terms ramp in over more
/// epochs than the students train, since its cells then
/// measure the ramp rather than the method (mdistiller's DKD warm-up of 20 epochs suits its
/// 240-epoch recipe, not a 2-epoch sweep).
fn method_notes(p: &Prepared) -> String {
    let epochs = p.sweep.student.epochs;
    let f = &p.sweep.methods_fixed;
    let mut out = own_axes_note(&p.sweep);
    let has = |m: crate::config::Method| p.sweep.methods.contains(&m);
    if has(crate::config::Method::Dkd) && f.dkd_warmup > epochs {
        out.push_str(&format!(
            "note: DKD's terms ramp in over [grid.dkd] warmup = {} epochs, more than the students' \
             {epochs}: they reach at most {epochs}/{} of their weight; set warmup ≤ {epochs} to \
             measure DKD itself\n",
            f.dkd_warmup, f.dkd_warmup
        ));
    }
    if has(crate::config::Method::Ctkd) && f.ctkd_ramp > epochs {
        out.push_str(&format!(
            "note: CTKD's reversed gradient ramps in over [grid.ctkd] ramp_epochs = {} epochs, more \
             than the students' {epochs}: its temperature is barely learned adversarially; set \
             ramp_epochs ≤ {epochs}\n",
            f.ctkd_ramp
        ));
    }
    out
}

/// Methods whose temperature or α come from their own table's defaults while `[grid]` gives values
/// for logit KD: said, since a sweep file with `temperature = [2, 4, 8]` reads as if every method
/// swept those (DKD keeps its T = 4, TTM its 10).
fn own_axes_note(sweep: &crate::config::Sweep) -> String {
    use crate::distill::{Axis, KeyKind, Values};
    let mut said = Vec::new();
    for m in &sweep.methods {
        let Some(table) = m.table() else { continue };
        // z-scored cells at `zscore_temperature` only: the table's default T is not used
        let zscore_t_only = sweep
            .method_grids
            .iter()
            .find(|g| g.method == *m)
            .is_some_and(|g| !g.zscore_temperature.is_empty() && !g.logit_norm.contains(&false));
        let mut axes = Vec::new();
        for k in table.keys {
            let KeyKind::Axis {
                axis,
                default: Values::Of(texts),
                ..
            } = k.kind
            else {
                continue;
            };
            let (symbol, in_grid) = match axis {
                Axis::Temperature if zscore_t_only => continue,
                Axis::Temperature => ("T", !sweep.temperatures.is_empty()),
                Axis::Alpha => ("α", !sweep.alphas.is_empty()),
                _ => continue,
            };
            let written = sweep.source.has(&format!("grid.{}.{}", table.name, k.name));
            if in_grid && !written {
                axes.push(format!("{symbol} = {}", texts.join(", ")));
            }
        }
        if !axes.is_empty() {
            let s = if axes.len() == 1 { "" } else { "s" };
            said.push(format!(
                "{} keeps {} ([grid.{}]'s default{s})",
                m.name(),
                crate::util::and_list(&axes),
                table.name
            ));
        }
    }
    let given: Vec<String> = [
        ("temperature", &sweep.temperatures),
        ("alpha", &sweep.alphas),
    ]
    .into_iter()
    .filter(|(_, v)| !v.is_empty())
    .map(|(k, _)| k.to_string())
    .collect();
    let mut out = match said.is_empty() {
        true => String::new(),
        false => format!(
            "note: [grid] {} {} not reach every method: {}; write values in those tables to sweep \
             others\n",
            crate::util::and_list(&given),
            if given.len() == 1 { "does" } else { "do" },
            crate::util::and_list(&said)
        ),
    };
    // a [grid] axis that no listed method takes at all
    use crate::config::Method;
    let alpha_taken = sweep.methods.iter().any(|m| {
        let table = m.table().map_or("", |t| t.name);
        m.takes_grid_alpha(|key| sweep.source.has(&format!("grid.{table}.{key}")))
    });
    for (key, unused, whose) in [
        (
            "temperature",
            !sweep.temperatures.is_empty() && !sweep.methods.contains(&Method::Logit),
            "logit KD's T",
        ),
        (
            "alpha",
            !sweep.alphas.is_empty() && !alpha_taken,
            "the α of logit, feature and imitation KD, and of multi-t and ctkd where their \
             tables give none",
        ),
    ] {
        if unused {
            out.push_str(&format!(
                "note: [grid] {key} is used by no listed method ({whose}); it changes no cell\n"
            ));
        }
    }
    out
}

/// A folder's or tensors file's data, the images a run uses of it, and a given normalisation, in
/// words.
fn describe_data(p: &Prepared) -> String {
    let d = &p.sweep.data;
    let mut out = String::new();
    if let Some(l) = &d.layout {
        let [c, h, w] = l.shape;
        let names = match l.class_names.len() {
            0 => String::new(),
            n if n <= 12 => format!(": {}", l.class_names.join(", ")),
            n => format!(": {}, … ({} more)", l.class_names[..10].join(", "), n - 10),
        };
        out.push_str(&format!(
            "data: {} {}: {} training and {} test images of {c}×{h}×{w}{}, {} classes{names}\n",
            d.dataset.name(),
            d.path.display(),
            p.sizes.0,
            p.sizes.1,
            if l.float {
                " (float32, already normalised)"
            } else {
                ""
            },
            l.classes,
        ));
        out.push_str(if l.own_validation {
            "hold-out: the dataset's own validation split (data.validation does not apply)\n"
        } else {
            "hold-out: a seeded random draw of data.validation training images\n"
        });
    }
    // what a run trains, chooses and is measured on
    out.push_str(&format!("images: {}\n", d.used_text(p.sizes.0, p.sizes.1)));
    if let Some(n) = &d.normalize {
        out.push_str(&format!(
            "normalisation: (pixel/255 - mean) / std with mean {:?}, std {:?}\n",
            n.mean, n.std
        ));
    }
    out
}

/// The networks of a plan, each measured once: (network, (parameters, multiply-adds per image)).
type Sizes = Vec<(crate::model::Arch, (i64, i64))>;

/// `kd-sweep plan`: the runs, what is already done, the devices and the work per device.
pub fn describe(path: &Path, opts: &Options) -> anyhow::Result<String> {
    let p = prepare(path, opts)?;
    let warnings = std::cell::RefCell::new(Vec::new());
    let keep = |m: &str| warnings.borrow_mut().push(m.to_string());
    let done = finished(&p, &keep, &keep, Reused::Report);
    let mut out = String::new();
    for w in warnings.borrow().iter() {
        out.push_str(w);
        out.push('\n');
    }
    out.push_str(&format!(
        "sweep {} → {}\n",
        p.sweep.name,
        p.store.dir.display()
    ));
    out.push_str(&describe_data(&p));
    out.push_str(&format!(
        "workers: {} on {}; teachers {} thread(s) each, students and baselines {}\n",
        p.slots.len(),
        crate::platform::device::summary(&p.slots),
        p.sweep.teacher.threads,
        p.sweep.student.threads
    ));
    out.push_str(&describe_numerics(&p));
    out.push_str(&method_notes(&p));
    let last = crate::store::Manifest::read(&p.store.dir).ok();
    for note in record_notes(&p, &done, last.as_ref()) {
        out.push_str(&note);
        out.push('\n');
    }
    let mut sizes: Sizes = Vec::new();
    for r in &p.plan.runs {
        if !sizes.iter().any(|(a, _)| *a == r.arch()) {
            sizes.push((r.arch(), r.arch().size(p.data_shape, p.classes)));
        }
    }
    out.push_str(&training_lines(&p, &sizes));
    out.push_str(&network_lines(&p, &sizes));
    out.push('\n');
    // a search with nothing left to decide: the runs it did not choose are not to run
    let reached = reached_of(&p, &done, &Default::default());
    let search_over = p.sweep.search.is_adaptive()
        && crate::plan::search::decide(&p.plan, &p.sweep, &reached)
            .next
            .is_none();
    out.push_str(&run_table(&p, &done, &reached, search_over));
    let todo: Vec<_> = (p.plan.runs.iter().zip(&done))
        .filter(|(_, d)| !**d && !search_over)
        .map(|(r, _)| r)
        .collect();
    out.push_str(&totals(&p, &sizes, &todo));
    Ok(out)
}

/// How each role trains when not the default (Adam at a constant rate on plain float32 batches),
/// and what augmented students cost.
fn training_lines(p: &Prepared, sizes: &Sizes) -> String {
    let mut out = String::new();
    for (role, phase) in [("teacher", &p.sweep.teacher), ("student", &p.sweep.student)] {
        if !phase.recipe.is_default() {
            out.push_str(&format!(
                "{role}s train with {}\n",
                phase.recipe.describe(phase.lr)
            ));
        }
        if !phase.augment.is_none() {
            out.push_str(&format!(
                "{role}s train on augmented batches (random crop after 4 pixels of padding, horizontal flip)\n"
            ));
        }
        if phase.label_smoothing > 0.0 {
            out.push_str(&format!(
                "{role}s' cross-entropy is label-smoothed: ε = {} (the target is (1 − ε)·one-hot + \
                 ε/classes)\n",
                phase.label_smoothing
            ));
        }
        if phase.channels_last {
            out.push_str(&format!(
                "{role}s' convolutions run in the channels-last layout (the same arithmetic in \
                 another order: numbers differ from the default layout's by rounding)\n"
            ));
        }
        if !phase.precision.is_fp32() {
            let on_cpu = p.slots.iter().any(|s| !s.device.is_cuda());
            out.push_str(&format!(
                "{role}s train in bf16 (autocast: convolutions and matrix products in bf16, float32 \
                 weights, the loss in float32){}\n",
                if on_cpu {
                    bf16_on_cpu(
                        crate::platform::torch_ext::cpu_has_bf16(),
                        p.sweep.schedule.numerics,
                    )
                } else {
                    ""
                }
            ));
        }
    }
    if let (false, Some(teacher)) = (p.sweep.student.augment.is_none(), p.plan.teachers().next()) {
        out.push_str(&format!(
            "augmented students: the teacher's forward pass runs in every distilled student's step (its \
             cached logits and feature maps are of the plain images) — {:.2} M multiply-adds per image \
             beside the student's own forward and backward (below); they train unfused\n",
            macs_of(sizes, teacher.arch()) / 1e6
        ));
    }
    out
}

/// What bf16 costs on this CPU, for the plan: emulated (float32 instructions) without AVX512-BF16 or
/// AMX, and under portable numerics, which hold oneDNN at AVX2, even with them — measured on a 2-core
/// Intel Xeon with AMX: a Fashion-MNIST teacher epoch took 668 s emulated, about 60 s in float32, and
/// about 25 s with `--numerics native`.
fn bf16_on_cpu(has_bf16: bool, numerics: crate::platform::numerics::Numerics) -> &'static str {
    use crate::platform::numerics::Numerics;
    match (has_bf16, numerics) {
        (false, _) => {
            "; this CPU has no bf16 instructions (AVX512-BF16 or AMX), so on the CPU libtorch \
             emulates them: slower than float32"
        }
        (true, Numerics::Portable) => {
            "; portable numerics hold the CPU kernels at AVX2, so libtorch emulates bf16 here \
             (about 10× slower than float32); `--numerics native` uses this CPU's bf16 \
             instructions (AVX512-BF16/AMX), at the price of numbers other CPUs do not reproduce"
        }
        (true, Numerics::Native) => "",
    }
}

/// The networks with their sizes for this dataset, and which students train unfused and why
/// (fused training takes the tutorial student and plain logit KD only).
fn network_lines(p: &Prepared, sizes: &Sizes) -> String {
    let mut out = String::new();
    let shape = p.data_shape;
    for (a, (params, macs)) in sizes {
        let macs = match a.script() {
            Some(_) => "(not counted for TorchScript)".to_string(),
            None => format!("{:>8.2} M", *macs as f64 / 1e6),
        };
        out.push_str(&format!(
            "model {:<18} {:>7.3} M parameters, {macs} multiply-adds per image ({}×{}×{}, {} classes)\n",
            a.name(),
            *params as f64 / 1e6,
            shape[0],
            shape[1],
            shape[2],
            p.classes
        ));
    }
    if p.sweep.teacher.epochs == 0 {
        let from = match &p.sweep.teacher.weights {
            Some(w) => format!(
                "{} (sha256 {}…)",
                w.path.display(),
                w.sha256.get(..12).unwrap_or(&w.sha256)
            ),
            None => "its TorchScript file".into(),
        };
        out.push_str(&format!(
            "teacher used as it is: weights of {from}, evaluated, never trained\n"
        ));
    }
    let students = || p.plan.runs.iter().filter(|r| r.role == Role::Student);
    let unfused: Vec<String> = (sizes.iter().map(|(a, _)| *a))
        .filter(|a| !a.fusable() && students().any(|r| r.arch() == *a))
        .map(|a| a.name())
        .collect();
    let fuses = p.slots.iter().any(|s| p.sweep.schedule.fuse.on(s.device));
    if fuses && !unfused.is_empty() {
        out.push_str(&format!(
            "fuse: students of {} train one at a time (fused training takes tutorial-student only)\n",
            unfused.join(", ")
        ));
    }
    if fuses && p.sweep.student.channels_last && students().any(|r| r.arch().fusable()) {
        out.push_str(
            "fuse: students train one at a time (channels_last = true: the fused model runs its \
             convolutions in the default layout only)\n",
        );
    }
    let mut methods: Vec<String> = Vec::new();
    for r in students() {
        if !r.coord.fusable() && !methods.contains(&r.coord.method_text()) {
            methods.push(r.coord.method_text());
        }
    }
    if fuses && !methods.is_empty() {
        out.push_str(&format!(
            "fuse: {} students train one at a time (the fused step computes plain logit KD's loss \
             only; the other methods' losses run per student)\n",
            methods.join(", ")
        ));
    }
    out
}

/// Every run with its role, epochs, status (what its record says it reached: paused runs show
/// where) and the teacher it needs.
fn run_table(
    p: &Prepared,
    done: &[bool],
    reached: &[crate::plan::search::Reached],
    search_over: bool,
) -> String {
    let w = (p.plan.runs.iter().map(|r| r.id.len()))
        .max()
        .unwrap_or(3)
        .max(28);
    let mut out = format!(
        "{:<w$} {:<9} {:>6} {:<10} {}\n",
        "run", "role", "epochs", "status", "needs"
    );
    let (mut resuming, mut restarting) = (0, 0);
    for ((r, d), reached) in p.plan.runs.iter().zip(done).zip(reached) {
        // a paused run whose checkpoint `clean` removed starts again from its beginning
        let pruned =
            (!d && !reached.val.is_empty()).then(|| {
                match crate::store::checkpoint::reached(&p.store, &r.id, &r.key) {
                    Some(_) => format!("paused@{}", reached.val.len()),
                    None => {
                        restarting += 1;
                        "restarts".to_string()
                    }
                }
            });
        // a confirmation seed's students train only for the cells the search chooses
        let confirming = p.sweep.search.is_adaptive()
            && r.role == Role::Student
            && p.sweep.search.confirm_seeds.contains(&r.seed);
        let resumes = (!d && pruned.is_none())
            .then(|| crate::store::checkpoint::reached(&p.store, &r.id, &r.key))
            .flatten()
            .map(|(epoch, _)| format!("resumes@{epoch}"));
        resuming += usize::from(resumes.is_some());
        let status = match (r.role, d) {
            _ if pruned.is_some() => pruned.as_deref().unwrap_or_default(),
            _ if resumes.is_some() => resumes.as_deref().unwrap_or_default(),
            (Role::Teacher, true) => "cached",
            (_, true) => "done",
            _ if search_over => "not chosen",
            _ if confirming => "if chosen",
            _ => "to run",
        };
        let needs = (r.teacher)
            .map(|t| p.plan.runs[t].id.clone())
            .unwrap_or_default();
        out.push_str(&format!(
            "{:<w$} {:<9} {:>6} {:<10} {}\n",
            r.id,
            r.role.name(),
            r.phase(&p.sweep).epochs,
            status,
            needs
        ));
    }
    if restarting > 0 {
        out.push_str(&format!(
            "({restarting} run(s) marked restarts were paused by the search and have lost their \
             checkpoint (`kd-sweep clean` removes a pruned run's): promoted, they train from their \
             beginning)\n"
        ));
    }
    if resuming > 0 {
        out.push_str(&format!(
            "({resuming} run(s) marked resumes@N continue from their checkpoint after epoch N; the \
             epochs and work below count them in full)\n"
        ));
    }
    out
}

/// The work left: runs and epochs to train, spread over the workers; a search's bounds; FLOP.
fn totals(p: &Prepared, sizes: &Sizes, todo: &[&plan::RunSpec]) -> String {
    let epochs = |role| {
        todo.iter()
            .filter(|r| r.role == role)
            .map(|r| r.phase(&p.sweep).epochs as usize)
            .sum::<usize>()
    };
    let n_train = p.sweep.data.used(p.sizes.0, p.sizes.1).0;
    let search = &p.sweep.search;
    let budget = (search.is_adaptive()).then(|| crate::plan::search::budget(&p.plan, &p.sweep));
    let if_chosen = (todo.iter())
        .filter(|r| search.is_adaptive() && r.role == Role::Student)
        .filter(|r| search.confirm_seeds.contains(&r.seed))
        .count();
    let counted = if if_chosen > 0 {
        format!(
            "{} of {} runs to train ({if_chosen} of them confirmation students marked \"if chosen\": \
             only the best {}'s train)",
            todo.len(),
            p.plan.runs.len(),
            budget.as_ref().map_or(0, |b| b.confirm_cells)
        )
    } else {
        format!("{} of {} runs to train", todo.len(), p.plan.runs.len())
    };
    let mut out = format!(
        "\n{counted}: {} teacher epoch(s) and {} student epoch(s) over {} training images, \
         spread over {} worker(s) (about {} student epochs per worker)\n",
        epochs(Role::Teacher),
        epochs(Role::Baseline) + epochs(Role::Student),
        n_train,
        p.slots.len(),
        (epochs(Role::Baseline) + epochs(Role::Student)).div_ceil(p.slots.len().max(1))
    );
    if let Some(b) = &budget {
        out.push_str(&search_lines(p, b, sizes, todo, n_train));
    }
    let flop = work_flop(p, sizes, todo, n_train);
    if flop > 0.0 {
        out.push_str(&format!(
            "work: {} of training (2 × multiply-adds: forward + backward ≈ 3 forwards per image and \
             epoch, plus the teacher's forward in each step of a student that runs it; TorchScript \
             networks not counted); time = work ÷ the rate your devices sustain on these networks\n",
            flop_text(flop)
        ));
    }
    out
}

/// What an adaptive sweep trains at most: its rungs, its student-epochs beside the grid's, the
/// confirmation's runs, and the work of all that (the table above lists every run it may train).
fn search_lines(
    p: &Prepared,
    b: &crate::plan::search::Budget,
    sizes: &[(crate::model::Arch, (i64, i64))],
    todo: &[&plan::RunSpec],
    n_train: usize,
) -> String {
    let s = &p.sweep.search;
    let cells = b.rungs.first().map_or(0, |r| r.0);
    let mut out = String::new();
    let search_share = b.student_epochs as f64 / b.grid_epochs.max(1) as f64;
    if s.strategy == crate::config::Strategy::Halving {
        let rungs: Vec<String> = b
            .rungs
            .iter()
            .enumerate()
            .map(|(i, (n, e))| format!("rung {} → epoch {e}: {n} cells", i + 1))
            .collect();
        out.push_str(&format!(
            "search: successive halving over {cells} cells × {} seed(s), eta {} — {}; at most {} of the \
             grid's {} student-epochs ({:.0} %); baselines and teachers train in full\n",
            p.sweep.seeds.len(),
            s.eta,
            rungs.join(", "),
            b.student_epochs,
            b.grid_epochs,
            100.0 * search_share
        ));
    }
    let top = b.confirm_cells;
    if !s.confirm_seeds.is_empty() {
        out.push_str(&format!(
            "confirmation: the best {top} cell(s) by validation and the baseline with seed(s) {}: at most \
             {} more runs ({} student-epochs), each seed's teacher from the cache when it is there\n",
            crate::plan::search::seed_list(&s.confirm_seeds),
            b.confirm_runs,
            b.confirm_student_epochs
        ));
    }
    // the most it can train: the search's share of the searched students, the confirmed share of the
    // confirmation seeds' students, every teacher and baseline
    let confirm_share = top as f64 / cells.max(1) as f64;
    let most: f64 = todo
        .iter()
        .map(|r| {
            let share = match (r.role, s.confirm_seeds.contains(&r.seed)) {
                (Role::Student, false) => search_share,
                (Role::Student, true) => confirm_share,
                _ => 1.0,
            };
            share * work_flop(p, sizes, &[r], n_train)
        })
        .sum();
    if most > 0.0 {
        out.push_str(&format!(
            "at most {} of training for what is left of the search (the run counts above and the work \
             below are of every run in the table)\n",
            flop_text(most)
        ));
    }
    out
}

/// Floating-point operations the runs `todo` take to train on `n_train` images: per image and epoch
/// three forward passes of the run's network (forward and backward), and one of the teacher's where a
/// student runs it in its steps (augmented batches, or `cache_teacher_logits = false`).
fn work_flop(
    p: &Prepared,
    sizes: &[(crate::model::Arch, (i64, i64))],
    todo: &[&plan::RunSpec],
    n_train: usize,
) -> f64 {
    let live = !p.sweep.student.augment.is_none() || !p.sweep.cache_teacher_logits;
    todo.iter()
        .map(|r| {
            let mut per_image = 3.0 * macs_of(sizes, r.arch());
            if let (Some(t), true) = (r.teacher_arch(), live) {
                per_image += macs_of(sizes, t);
            }
            2.0 * per_image * n_train as f64 * r.phase(&p.sweep).epochs as f64
        })
        .sum()
}

/// Multiply-adds per image of `arch` among the plan's measured `sizes` (every run's network is
/// there, so a teacher's is too).
fn macs_of(sizes: &[(crate::model::Arch, (i64, i64))], arch: crate::model::Arch) -> f64 {
    sizes
        .iter()
        .find(|(a, _)| *a == arch)
        .map_or(0.0, |(_, (_, macs))| *macs as f64)
}

/// A FLOP count with an SI prefix (TFLOP, PFLOP, …).
fn flop_text(flop: f64) -> String {
    let (value, unit) = [
        (1e18, "EFLOP"),
        (1e15, "PFLOP"),
        (1e12, "TFLOP"),
        (1e9, "GFLOP"),
        (1e6, "MFLOP"),
        (1e3, "kFLOP"),
    ]
    .into_iter()
    .find(|(scale, _)| flop >= *scale)
    .map_or((flop, "FLOP"), |(scale, unit)| (flop / scale, unit));
    format!("{value:.1} {unit}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn flop_counts_read_with_a_prefix() {
        assert_eq!(super::flop_text(80.6e15), "80.6 PFLOP");
        assert_eq!(super::flop_text(192.5e12), "192.5 TFLOP");
        assert_eq!(super::flop_text(2.0e9), "2.0 GFLOP");
        assert_eq!(super::flop_text(721_797_120.0), "721.8 MFLOP");
        assert_eq!(super::flop_text(500.0), "500.0 FLOP");
    }

    /// Portable numerics hold oneDNN at AVX2, so even a CPU with AMX emulates bf16 under them: the
    /// plan says so, and names the way out; only native numerics on such a CPU say nothing.
    #[test]
    fn the_plan_says_when_bf16_is_emulated_on_the_cpu() {
        use crate::platform::numerics::Numerics::{Native, Portable};
        let no_instructions = super::bf16_on_cpu(false, Native);
        assert!(
            no_instructions.contains("no bf16 instructions"),
            "{no_instructions}"
        );
        assert_eq!(super::bf16_on_cpu(false, Portable), no_instructions);
        let held = super::bf16_on_cpu(true, Portable);
        assert!(
            held.contains("emulates bf16") && held.contains("--numerics native"),
            "{held}"
        );
        assert_eq!(super::bf16_on_cpu(true, Native), "");
    }
}
