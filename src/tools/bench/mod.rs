//! `kd-sweep bench`: measures, in one run on one machine, what makes kd-sweep fast — the device's
//! matrix-multiply ceiling, training throughput against it (FLOPs counted from the model definitions),
//! the same step loop in PyTorch on the same libtorch (bench/pytorch_reference.py), the cost of
//! feeding batches, kd-sweep's way of running a 12-student sweep against the naive way, scaling over
//! workers, and peak memory. Prints a Markdown report (BENCHMARKS.md-ready).

use crate::config::DatasetKind;
use crate::model::Arch;
use crate::platform::device::DeviceSpec;
use crate::report::Stat;
use crate::run::pipeline as sweep;
use anyhow::Context;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tch::{Device, Kind, Tensor};

mod networks;
mod rates;
mod tutorial;

use rates::{eval_rate, feeding, fused_rate, sync};
pub use rates::{matmul_gflops, step_rate};

#[derive(Debug, Clone)]
pub struct Options {
    pub device: DeviceSpec,
    pub dataset: DatasetKind,
    /// Dataset folder; `None`: the dataset's default.
    pub data: Option<PathBuf>,
    /// Where the benchmark's sweeps write (emptied first).
    pub work: PathBuf,
    pub worker_exe: PathBuf,
    /// A Python with torch 2.11 for the reference; `None`: the one libtorch came from, if any.
    pub python: Option<PathBuf>,
    /// Smaller everything (for tests): the numbers are then not meaningful.
    pub quick: bool,
    /// Seeds of the tutorial comparison (section 4); `None`: 3 (1 when `quick`).
    pub seeds: Option<usize>,
    /// The sections to run ([`SECTIONS`]); empty: all.
    pub sections: Vec<String>,
    /// Section 9 in the channels-last layout on both sides.
    pub channels_last: bool,
}

/// The sections of the benchmark, by the names `--sections` takes, in report order.
pub const SECTIONS: [&str; 8] = [
    "ceiling",
    "throughput",
    "feeding",
    "tutorial",
    "scaling",
    "fused",
    "numerics",
    "networks",
];

struct Sizes {
    /// The tutorial comparison: training images, hold-out, test images (`None`: all), seeds, epochs.
    tutorial_train: usize,
    tutorial_validation: usize,
    tutorial_test: Option<usize>,
    tutorial_seeds: usize,
    tutorial_student_epochs: u32,
    matmul_n: i64,
    min_secs: f64,
    /// Untimed training steps before each step-throughput measurement (allocator, kernel choice).
    warmup_steps: usize,
    teacher_steps: usize,
    student_steps: usize,
    /// Images per evaluation pass in the evaluation-throughput rows.
    eval_images: i64,
    train: usize,
    student_epochs: u32,
}

/// A benchmark sweep of sections 5 and 6: one seed, teacher logits cached, no baseline.
fn sweep_file(
    name: &str,
    o: &Options,
    s: &Sizes,
    workers: usize,
    temps: &str,
    alphas: &str,
) -> String {
    let path = o
        .data
        .as_ref()
        .map(|p| format!("path = {:?}\n", p.display().to_string()))
        .unwrap_or_default();
    format!(
        "name = \"{name}\"\nseeds = [0]\n[data]\ndataset = \"{}\"\n{path}validation = {}\ntrain_subset = {}\ntest_subset = {}\n\
         [teacher]\nepochs = 1\nbatch_size = 128\nlr = 0.001\n\
         [student]\nepochs = {}\nbatch_size = 128\nlr = 0.001\ncache_teacher_logits = true\n\
         [grid]\ntemperature = {temps}\nalpha = {alphas}\nbaseline = false\n\
         [schedule]\ndevices = [\"{}\"]\nworkers_per_device = {workers}\n",
        o.dataset.name(),
        s.train / 2,
        s.train,
        s.train / 2,
        s.student_epochs,
        o.device
    )
}

/// What one benchmark sweep measured.
struct Measured {
    secs: f64,
    /// Test accuracy by run id.
    accs: Vec<(String, f64)>,
    /// Peak resident memory of each worker process, KiB.
    rss: Vec<u64>,
    /// Training seconds of the teachers (from their records).
    teacher_secs: f64,
    /// Passes over the test set: by the teachers, and by the students and baselines (two for a
    /// run whose best validation epoch is not its last: the last and the best epoch's weights).
    teacher_test_passes: usize,
    student_test_passes: usize,
}

/// A 95 % confidence interval of mean(a) − mean(b) for two independent samples (Welch's standard
/// error, with the pooled degrees of freedom a + b − 2); NaN with fewer than two values a side.
fn difference_ci(a: &[f64], b: &[f64]) -> (f64, f64) {
    let (Some(a), Some(b)) = (Stat::of(a), Stat::of(b)) else {
        return (f64::NAN, f64::NAN);
    };
    if a.n < 2 || b.n < 2 {
        return (f64::NAN, f64::NAN);
    }
    let d = a.mean - b.mean;
    let se = (a.std.powi(2) / a.n as f64 + b.std.powi(2) / b.n as f64).sqrt();
    let t = crate::report::t_975(a.n + b.n - 2);
    (d - t * se, d + t * se)
}

/// Runs one sweep of the benchmark and measures it.
fn timed_sweep(o: &Options, root: &Path, file: &str, name: &str) -> anyhow::Result<Measured> {
    let path = o.work.join(format!("{name}.toml"));
    std::fs::write(&path, file).with_context(|| format!("writing {}", path.display()))?;
    let opts = sweep::Options {
        results: root.to_path_buf(),
        overrides: Default::default(),
        quiet: true,
        worker_exe: o.worker_exe.clone(),
    };
    let start = Instant::now();
    let f = sweep::run(&path, &opts)?;
    let secs = start.elapsed().as_secs_f64();
    anyhow::ensure!(
        f.failed == 0,
        "{} run(s) of the benchmark sweep {name} failed; see {}/{name}/runs.csv",
        f.failed,
        root.display()
    );
    let p = sweep::prepare(&path, &opts)?;
    let records = sweep::plan_records(&p);
    // a run reused from another sweep under `root` (the same key) is a copied record, not training
    if let Some(r) = records.iter().find(|r| r.reused_from.is_some()) {
        anyhow::bail!(
            "the benchmark sweep {name} reused {} from sweep {} instead of training it, so its time \
             would not be training time; each benchmark sweep must train what it times",
            r.run_id,
            r.reused_from.as_deref().unwrap_or("?")
        );
    }
    let accs = records
        .iter()
        .filter_map(|r| Some((r.run_id.clone(), r.test_acc?)))
        .collect();
    let teacher_secs = records
        .iter()
        .filter(|r| r.role == crate::plan::Role::Teacher)
        .map(|r| r.seconds)
        .sum();
    let passes = |teacher: bool| {
        records
            .iter()
            .filter(|r| (r.role == crate::plan::Role::Teacher) == teacher)
            .map(|r| 1 + usize::from(r.best_epoch.is_some_and(|b| b < r.epochs)))
            .sum()
    };
    Ok(Measured {
        secs,
        accs,
        rss: f.worker_peak_rss_kib,
        teacher_secs,
        teacher_test_passes: passes(true),
        student_test_passes: passes(false),
    })
}

/// The Python to run the PyTorch side with: `explicit` if given, else the virtual environment whose
/// torch wheel this binary was built against (where `make setup` puts it).
pub fn reference_python(explicit: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = explicit {
        return Some(p.to_path_buf());
    }
    // the venv libtorch came from: <venv>/lib/pythonX.Y/site-packages/torch/lib
    let lib = PathBuf::from(option_env!("KD_SWEEP_LIBTORCH_LIB")?);
    let venv = lib.ancestors().nth(5)?;
    let py = venv.join("bin/python");
    py.is_file().then_some(py)
}

/// The PyTorch side of the comparisons, embedded so that a copied binary needs no checkout: the step
/// loop, the replay helpers and the tutorial's method.
const PYTORCH_SCRIPTS: [(&str, &str); 6] = [
    (
        "cifar_nets.py",
        include_str!("../../../bench/cifar_nets.py"),
    ),
    // the methods' losses, which pytorch_replay.py imports
    ("kd_losses.py", include_str!("../../../bench/kd_losses.py")),
    (
        "pytorch_networks.py",
        include_str!("../../../bench/pytorch_networks.py"),
    ),
    (
        "pytorch_reference.py",
        include_str!("../../../bench/pytorch_reference.py"),
    ),
    (
        "pytorch_replay.py",
        include_str!("../../../bench/pytorch_replay.py"),
    ),
    (
        "pytorch_tutorial.py",
        include_str!("../../../bench/pytorch_tutorial.py"),
    ),
];

/// Writes the PyTorch scripts into `dir`; returns the path of `name` there.
fn pytorch_script(dir: &Path, name: &str) -> Option<PathBuf> {
    for (file, text) in PYTORCH_SCRIPTS {
        std::fs::write(dir.join(file), text).ok()?;
    }
    Some(dir.join(name))
}

/// Little-endian bytes of a float32 or int64 tensor, row-major.
fn tensor_bytes(t: &Tensor) -> Vec<u8> {
    let t = t.to_device(Device::Cpu).flatten(0, -1);
    if t.kind() == Kind::Int64 {
        Vec::<i64>::try_from(&t)
            .unwrap_or_default()
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect()
    } else {
        Vec::<f32>::try_from(&t.to_kind(Kind::Float))
            .unwrap_or_default()
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect()
    }
}

/// One benchmark run: its settings, the data it measures on, and the report as it grows.
struct Bench<'a> {
    o: &'a Options,
    s: Sizes,
    device: Device,
    cores: usize,
    raw: crate::data::RawDataset,
    dir: PathBuf,
    shape: [i64; 3],
    /// Classes of the benchmark's dataset.
    classes: i64,
    md: String,
    log: &'a dyn Fn(&str),
}

impl Bench<'_> {
    fn header(&mut self) {
        // the CPU as records name it: vendor and model
        let cpu_name = crate::platform::device::cpu_of(DeviceSpec::Cpu).unwrap_or_default();
        let shape = self.shape;
        let _ = writeln!(
            self.md,
            "Device `{}` ({}; {} cores), libtorch {}, dataset {} ({}×{}×{}).\n",
            self.o.device,
            cpu_name,
            self.cores,
            sweep::LIBTORCH_VERSION,
            self.o.dataset.name(),
            shape[0],
            shape[1],
            shape[2]
        );
    }

    /// 1. The matrix-multiply ceiling; returns the one-thread GFLOP/s.
    fn ceiling(&mut self) -> f64 {
        (self.log)("bench: matrix-multiply ceiling");
        let (n, secs) = (self.s.matmul_n, self.s.min_secs);
        let one = matmul_gflops(self.device, 1, n, secs);
        let all = matmul_gflops(self.device, self.cores as i32, n, secs);
        tch::set_num_threads(1);
        let _ = writeln!(self.md, "## 1. Ceiling: {n}×{n} float32 matrix product through libtorch\n\n| threads | GFLOP/s |\n|---:|---:|\n| 1 | {one:.1} |\n| {} | {all:.1} |\n", self.cores);
        one
    }

    /// The same step loop in PyTorch: (teacher, student) images per second.
    fn pytorch_reference(&self) -> Option<(f64, f64)> {
        let py = reference_python(self.o.python.as_deref())?;
        let script = pytorch_script(&self.o.work, "pytorch_reference.py")?;
        let shape = self.shape;
        let out = std::process::Command::new(py)
            .arg(script)
            .args(["--threads", "1"])
            .args(["--warmup-steps", &self.s.warmup_steps.to_string()])
            .args(["--teacher-steps", &self.s.teacher_steps.to_string()])
            .args(["--student-steps", &self.s.student_steps.to_string()])
            .args([
                "--shape",
                &format!("{},{},{}", shape[0], shape[1], shape[2]),
            ])
            .args(["--device", &self.o.device.to_string()])
            .output()
            .ok()?;
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        Some((
            v["teacher_images_per_s"].as_f64()?,
            v["student_images_per_s"].as_f64()?,
        ))
    }

    /// 2. Training throughput against the ceiling and PyTorch; returns student images/s.
    fn throughput(&mut self, one: f64) -> f64 {
        (self.log)("bench: training throughput");
        let shape = self.shape;
        let t_macs = Arch::Teacher.forward_macs(shape, self.classes);
        let s_macs = Arch::Student.forward_macs(shape, self.classes);
        // training ≈ forward + backward ≈ 3 × the forward pass; 2 FLOPs per multiply-accumulate
        let flops = |macs: i64| 3.0 * 2.0 * macs as f64;
        let input = (shape, self.classes);
        let rate =
            |arch, steps| step_rate(arch, input, self.device, 128, (self.s.warmup_steps, steps));
        let t_rate = rate(Arch::Teacher, self.s.teacher_steps);
        let s_rate = rate(Arch::Student, self.s.student_steps);
        let reference = self.pytorch_reference();
        let md = &mut self.md;
        let _ = writeln!(
            md,
            "## 2. Training throughput (batch 128, one thread, one fixed batch, Adam)\n"
        );
        let _ = writeln!(
            md,
            "FLOPs counted from the model definitions: teacher {:.1} MFLOP forward per image ({t_macs} multiply-adds), student {:.2} MFLOP ({s_macs}); a training step is counted as 3 × forward.\n",
            2.0 * t_macs as f64 / 1e6,
            2.0 * s_macs as f64 / 1e6
        );
        let _ = writeln!(md, "| model | kd-sweep images/s | GFLOP/s | of the 1-thread ceiling | PyTorch (same libtorch) images/s | kd-sweep / PyTorch |\n|---|---:|---:|---:|---:|---:|");
        for (name, rate, macs, py) in [
            ("teacher", t_rate, t_macs, reference.map(|r| r.0)),
            ("student", s_rate, s_macs, reference.map(|r| r.1)),
        ] {
            let g = rate * flops(macs) / 1e9;
            let (pys, ratio) = py.map_or(
                (
                    "not measured (no Python with torch found)".to_string(),
                    "–".to_string(),
                ),
                |p| (format!("{p:.0}"), format!("{:.2}", rate / p)),
            );
            let _ = writeln!(
                md,
                "| {name} | {rate:.0} | {g:.1} | {:.0} % | {pys} | {ratio} |",
                100.0 * g / one
            );
        }
        md.push('\n');
        self.evaluation();
        s_rate
    }

    /// 2b. Evaluation throughput: the default layout in batches of 1,024 against the way accuracies
    /// are counted ([`Net::predict`] in batches of [`crate::train::eval_batch`]).
    fn evaluation(&mut self) {
        let input = (self.shape, self.classes);
        let batch = crate::train::eval_batch(self.device);
        let images = self.s.eval_images;
        let _ = writeln!(
            self.md,
            "Evaluation (no gradient, {images} images; the teacher with all {} cores and each student with one thread, as a sweep runs them):\n\n\
             | model | default layout, batches of 1024: images/s | as kd-sweep counts accuracy (`Net::predict`, batches of {batch}): images/s | speed-up |\n|---|---:|---:|---:|",
            self.cores
        );
        for (name, arch, threads) in [
            ("teacher", Arch::Teacher, self.cores as i32),
            ("student", Arch::Student, 1),
        ] {
            tch::set_num_threads(threads);
            let plain = eval_rate(arch, input, self.device, false, 1024, images);
            let fast = eval_rate(arch, input, self.device, true, batch, images);
            let _ = writeln!(
                self.md,
                "| {name} | {plain:.0} | {fast:.0} | {:.2}× |",
                fast / plain
            );
        }
        tch::set_num_threads(1);
        self.md.push('\n');
    }

    /// The step throughput of `arch` with `threads` threads in a child process started with the
    /// environment of numerics `mode` (libtorch reads it once per process, so each mode needs its
    /// own): (images/s, the CPU level ATen chose there).
    fn step_rate_under(
        &self,
        arch: Arch,
        mode: crate::platform::numerics::Numerics,
        threads: usize,
        steps: usize,
    ) -> anyhow::Result<(f64, String)> {
        let shape = self.shape;
        let mut cmd = std::process::Command::new(&self.o.worker_exe);
        cmd.arg("__bench-step")
            .args(["--arch", &arch.name()])
            .args([
                "--shape",
                &format!("{},{},{}", shape[0], shape[1], shape[2]),
            ])
            .args(["--classes", &self.classes.to_string()])
            .args(["--threads", &threads.to_string()])
            .args(["--warmup", &self.s.warmup_steps.to_string()])
            .args(["--steps", &steps.to_string()])
            // CPU kernels are what the two modes differ in, whatever device the bench is for
            .args(["--device", "cpu"]);
        match mode {
            crate::platform::numerics::Numerics::Portable => {
                cmd.envs(crate::platform::numerics::worker_env(mode));
            }
            // libtorch's own choice for this machine, whatever this shell exported
            crate::platform::numerics::Numerics::Native => {
                for (k, _) in crate::platform::numerics::PORTABLE_ENV {
                    cmd.env_remove(k);
                }
            }
        }
        let out = cmd.output().context("starting a step-throughput process")?;
        anyhow::ensure!(
            out.status.success(),
            "the step-throughput process failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
        Ok((
            v["images_per_s"].as_f64().unwrap_or(f64::NAN),
            v["cpu_capability"].as_str().unwrap_or("?").to_string(),
        ))
    }

    /// The cost of portable numerics on this machine: teacher and student training steps under
    /// portable and native numerics, side by side (each mode in a process of its own).
    fn numerics_cost(&mut self) -> anyhow::Result<()> {
        use crate::platform::numerics::Numerics;
        (self.log)("bench: portable against native numerics");
        if let Err(why) = crate::platform::numerics::portable_available() {
            let _ = writeln!(
                self.md,
                "## 8. Numerics: portable against native\n\nNot measured: portable numerics are unavailable here ({why}).\n"
            );
            return Ok(());
        }
        let _ = writeln!(
            self.md,
            "## 8. Numerics: portable against native (training steps, batch 128, one fixed batch, Adam)\n\n\
             On the CPU, each mode in a process of its own (libtorch reads the kernel level once per process). Portable: \
             ATen, oneDNN and MKL at AVX2, the same numbers on every machine of one CPU vendor; native: libtorch's choice \
             for this CPU.\n\n\
             | model | threads | portable images/s (ATen level) | native images/s (ATen level) | portable / native |\n|---|---:|---:|---:|---:|"
        );
        for (name, arch, threads, steps) in [
            ("teacher", Arch::Teacher, self.cores, self.s.teacher_steps),
            ("student", Arch::Student, 1, self.s.student_steps),
        ] {
            let (p, pc) = self.step_rate_under(arch, Numerics::Portable, threads, steps)?;
            let (n, nc) = self.step_rate_under(arch, Numerics::Native, threads, steps)?;
            let _ = writeln!(
                self.md,
                "| {name} | {threads} | {p:.0} ({pc}) | {n:.0} ({nc}) | {:.2} |",
                p / n
            );
        }
        self.md.push('\n');
        Ok(())
    }

    /// 3. What gathering shuffled batches costs a step.
    fn feeding(&mut self) {
        (self.log)("bench: data feeding");
        let s = &self.s;
        let validation = s.train / 2;
        let cfg = crate::config::DataConfig {
            train_subset: Some(s.train.min(self.raw.train.n - validation)),
            test_subset: Some(s.train / 2),
            ..crate::config::DataConfig::of(self.o.dataset, self.dir.clone(), validation, 0)
        };
        let prepared = crate::data::Dataset::from_raw(&self.raw, &cfg, self.device);
        let (with, without) = feeding(&prepared, self.device, 128, s.student_steps);
        let _ = writeln!(
            self.md,
            "## 3. Data feeding (student step, batch 128)\n\n| step | ms |\n|---|---:|\n| with batch gathering (shuffled index, `index_select`) | {:.3} |\n| without (one batch reused) | {:.3} |\n| feeding share of a step | {:.1} % |\n",
            with * 1e3,
            without * 1e3,
            100.0 * (with - without).max(0.0) / with
        );
    }

    fn sweep(&self, name: &str, workers: usize, temps: &str, alphas: &str) -> String {
        sweep_file(name, self.o, &self.s, workers, temps, alphas)
    }

    /// 5 and 6. Scaling of the student phase over workers, and a worker's peak memory for 4 and 12 runs.
    fn scaling_and_memory(&mut self) -> anyhow::Result<()> {
        let o = self.o;
        let root = o.work.join("fast");
        let (temps, alphas) = ("[1, 2, 4, 8]", "[0.25, 0.5, 0.9]");
        // the teacher into this root's cache first, so that every sweep below measures students only
        // (and a worker's memory is the students', not the teacher's evaluation)
        (self.log)("bench: scaling (teacher first, into the cache)");
        timed_sweep(
            o,
            &root,
            &self.sweep("warm", self.cores, "[1]", "[0.5]"),
            "warm",
        )?;
        // The sweeps below share students (one key each), and a finished run with the same key is
        // reused from another sweep under the same root, not trained: each sweep's folder goes once
        // measured, so that the next trains all its students. The teacher stays in the root's cache.
        let done_with = |name: &str| {
            let dir = root.join(name);
            std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))
        };
        done_with("warm")?;
        // on the CPU: workers up to the number of cores; on a GPU: workers sharing the one device
        let (counts, what): (Vec<usize>, &str) = if o.device.is_cuda() {
            (vec![1, 2, 4, 8], "workers on one GPU")
        } else {
            ((1..=self.cores).collect(), "workers")
        };
        let _ = writeln!(self.md, "## 5. Scaling of the student phase (12 students, teacher cached)\n\n| {what} | wall time (s) | speed-up |\n|---:|---:|---:|");
        let mut base = f64::NAN;
        let mut rss_12 = 0;
        for w in counts {
            let name = format!("scale{w}");
            let m = timed_sweep(o, &root, &self.sweep(&name, w, temps, alphas), &name)?;
            done_with(&name)?;
            if w == 1 {
                base = m.secs;
                rss_12 = m.rss.iter().copied().max().unwrap_or(0);
            }
            let _ = writeln!(self.md, "| {w} | {:.1} | {:.2}× |", m.secs, base / m.secs);
        }
        self.md.push('\n');
        (self.log)("bench: memory");
        let m = timed_sweep(
            o,
            &root,
            &self.sweep("mem4", 1, "[1, 2]", "[0.5, 0.9]"),
            "mem4",
        )?;
        let rss_4 = m.rss.iter().copied().max().unwrap_or(0);
        let (raw, shape) = (&self.raw, self.shape);
        let data_mb =
            (raw.train.n + raw.test.n) as f64 * (shape[0] * shape[1] * shape[2]) as f64 * 4.0 / 1e6;
        let _ = writeln!(
            self.md,
            "## 6. Memory (peak resident set of a worker process)\n\n| runs on one worker | peak RSS (MiB) |\n|---:|---:|\n| 4 | {:.0} |\n| 12 | {:.0} |\n\n\
             The dataset is loaded once per worker process and reused by every run it trains (the whole dataset as float32 would be {data_mb:.0} MB); the teacher's logits likewise.\n",
            rss_4 as f64 / 1024.0,
            rss_12 as f64 / 1024.0
        );
        Ok(())
    }

    /// 7. G students in one fused model against one at a time.
    fn fused(&mut self, student_rate: f64) {
        (self.log)("bench: fused students");
        let _ = writeln!(
            self.md,
            "## 7. Fused grid training: student steps per second, G students in one fused model vs one at a time (batch 128, KD loss, one thread)\n\n\
             | G | one at a time (student-steps/s) | fused (student-steps/s) | fused / apart |\n|---:|---:|---:|---:|"
        );
        let apart = student_rate / 128.0;
        // --quick checks that the section runs: two group sizes, two steps each
        let groups: &[usize] = if self.o.quick {
            &[1, 4]
        } else {
            &[1, 4, 16, 64]
        };
        for &g in groups {
            let steps = if self.o.quick { 2 } else { (600 / g).max(8) };
            let fused = fused_rate((self.shape, self.classes), self.device, g, steps);
            let _ = writeln!(
                self.md,
                "| {g} | {apart:.0} | {fused:.0} | {:.2}× |",
                fused / apart
            );
        }
        self.md.push('\n');
    }
}

/// The sizes of a full or a quick benchmark.
fn sizes(quick: bool) -> Sizes {
    if quick {
        Sizes {
            tutorial_train: 128,
            tutorial_validation: 32,
            tutorial_test: Some(64),
            tutorial_seeds: 1,
            tutorial_student_epochs: 1,
            matmul_n: 256,
            min_secs: 0.2,
            warmup_steps: 1,
            teacher_steps: 1,
            student_steps: 3,
            eval_images: 64,
            train: 256,
            student_epochs: 1,
        }
    } else {
        Sizes {
            tutorial_train: 4000,
            tutorial_validation: 1000,
            tutorial_test: None,
            tutorial_seeds: 3,
            tutorial_student_epochs: 3,
            matmul_n: 1024,
            min_secs: 3.0,
            warmup_steps: 3,
            teacher_steps: 30,
            student_steps: 300,
            eval_images: 2048,
            train: 2000,
            student_epochs: 3,
        }
    }
}

/// What marks a folder as a benchmark's scratch folder, which the next benchmark may empty.
const WORK_MARK: &str = ".kd-sweep-bench";

/// Empties `work` for a benchmark — only when it is empty, one a benchmark made (its
/// [`WORK_MARK`]), or the default `results/.bench`: `--work` pointed by mistake at a folder of
/// results must not wipe them.
fn empty_work_folder(work: &Path) -> anyhow::Result<()> {
    if let Ok(mut entries) = std::fs::read_dir(work) {
        let foreign = entries.next().is_some()
            && !work.join(WORK_MARK).exists()
            && work != Path::new("results/.bench");
        if foreign {
            let why = format!(
                "--work {} is not empty and not a folder kd-sweep bench made (no {WORK_MARK} in \
                 it); bench empties its --work folder first, so give it a new or empty one",
                work.display()
            );
            return Err(crate::util::UsageError(why).into());
        }
        std::fs::remove_dir_all(work).with_context(|| format!("emptying {}", work.display()))?;
    }
    std::fs::create_dir_all(work)?;
    std::fs::write(
        work.join(WORK_MARK),
        "kd-sweep bench's scratch folder: emptied by each run\n",
    )?;
    Ok(())
}

/// The whole benchmark; returns the Markdown report. `log` gets progress lines.
pub fn run(o: &Options, log: &dyn Fn(&str)) -> anyhow::Result<String> {
    if o.channels_last && !o.sections.is_empty() && !o.sections.iter().any(|s| s == "networks") {
        let why = "--channels-last applies to section 9 only: add networks to --sections";
        return Err(crate::util::UsageError(why.into()).into());
    }
    // the benchmark's sweep files live in `work`: a relative data path must not be read from there
    let mut o = o.clone();
    if let Some(d) = &o.data {
        o.data = Some(std::path::absolute(d)?);
    }
    // the benchmark measures on the datasets whose shape its sections assume
    let Some(default) = o.dataset.default_path() else {
        let why = format!(
            "bench measures on fashion-mnist, mnist, cifar10 or cifar100, not on a {} dataset",
            o.dataset.name()
        );
        return Err(crate::util::UsageError(why).into());
    };
    // the usage checks above leave the scratch folder as it was
    empty_work_folder(&o.work)?;
    let dir = o.data.clone().unwrap_or(default);
    let raw = crate::data::read(o.dataset, &dir)?;
    // small datasets: keep the training subset and its half-size hold-out within the data
    let mut s = sizes(o.quick);
    if let Some(n) = o.seeds {
        s.tutorial_seeds = n;
    }
    s.train = s.train.min(raw.train.n * 2 / 3).min(raw.test.n * 2);
    s.tutorial_validation = s.tutorial_validation.min(raw.train.n / 4);
    s.tutorial_train = s.tutorial_train.min(raw.train.n - s.tutorial_validation);
    let started = Instant::now();
    let mut b = Bench {
        o: &o,
        s,
        device: o.device.tch(),
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        shape: [raw.train.c as i64, raw.train.h as i64, raw.train.w as i64],
        classes: raw.classes as i64,
        raw,
        dir,
        md: String::new(),
        log,
    };
    b.header();
    let on = |name: &str| o.sections.is_empty() || o.sections.iter().any(|s| s == name);
    // the ceiling always: the throughput rows are measured against it
    let one = b.ceiling();
    let student_rate = if on("throughput") || on("fused") {
        b.throughput(one)
    } else {
        0.0
    };
    if on("feeding") {
        b.feeding();
    }
    if on("tutorial") {
        b.versus_tutorial()?;
    }
    if on("scaling") {
        b.scaling_and_memory()?;
    }
    if on("fused") {
        b.fused(student_rate);
    }
    if on("numerics") {
        b.numerics_cost()?;
    }
    if on("networks") {
        b.networks()?;
    }
    let _ = writeln!(
        b.md,
        "Benchmark wall time: {:.0} s.",
        started.elapsed().as_secs_f64()
    );
    Ok(b.md)
}
