//! The command line. Parses arguments, runs one method per subcommand, prints errors in one place, and
//! decides the exit code in one place ([`exit_code`]): 0 all runs done, 1 some run failed or a
//! data/IO error, 2 a bad sweep file or usage, 130 interrupted (Ctrl-C), 143 stopped by SIGTERM.

use crate::config::{self, ConfigError, ConfigErrors, DatasetKind};
use crate::run::pipeline::{self as sweep, Options};
use crate::util::UsageError;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::{Path, PathBuf};

mod commands;
use commands::{bench, bench_step, clean, compare, devices, models, report, slurm, status};

const ABOUT: &str =
    "Knowledge-distillation sweeps: train each teacher once, distil a student for every \
(temperature, α) grid point on every available device, and write CSV logs and charts.";

const AFTER: &str = "\
A sweep file (TOML) names the study, its seeds, the data, the teacher's and student's training,
and the grid. Minimal example (see README.md for every key):

  name = \"quick\"                 # results go to <results>/quick/
  seeds = [0]
  [data]
  dataset = \"fashion-mnist\"      # \"fashion-mnist\" | \"mnist\" | \"cifar10\" | \"cifar100\", or your
                                 # own: \"folder\" (class folders of images) | \"tensors\", with path
  validation = 5000              # training images held out for choosing (T, α)
  train_subset = 10000           # optional
  [teacher]
  epochs = 3
  batch_size = 128
  lr = 0.001
  [student]
  epochs = 5
  batch_size = 128
  lr = 0.001
  [grid]
  temperature = [1, 2, 4, 8]
  alpha = [0.5, 0.9]             # weight of the distillation term
  baseline = true                # also the student without a teacher

Optional per role ([teacher], [student]): model = \"resnet20\" (`kd-sweep models`) or
\"torchscript:net.pt\" (your own PyTorch network); a trained teacher used as it is: [teacher]
epochs = 0 with weights = \"resnet20.pth\" (a torch.save state dict or .safetensors) or a
TorchScript file with init = \"as-saved\"; optimizer = \"sgd\" with momentum, nesterov,
weight_decay; schedule = \"multistep\" (milestones, gamma) or \"cosine\", warmup_epochs;
augment = \"crop-flip\"; precision = \"bf16\" and channels_last = true (speed; the numbers differ by
rounding: README, Numerics). Optional in [grid]: logit_norm = [\"none\", \"zscore\"],
student_model = [...], and method = any of
  {METHODS}
(the newer methods' axes in {TABLES}).
Optional [search]: strategy = \"halving\" (every cell trains min_epochs, the best 1/eta go
on, … survivors finish; pruned runs are kept), confirm_seeds = [2, 3, 4] and confirm_top = 3
(then the best cells and the baseline again with more seeds).

";

const AFTER_END: &str = "\
Rerunning a sweep resumes it: finished runs and cached teachers are never redone, and a run that was
stopped (Ctrl-C, SIGTERM, kill -9, a crash) continues from its last checkpoint (after every epoch).
Exit codes: 0 done, 1 a run failed or a data error, 2 bad sweep file or usage, 130 Ctrl-C, 143 SIGTERM.

Examples:
  kd-sweep experiments/quick.toml
  kd-sweep plan experiments/temps.toml
  kd-sweep status results/temps --watch     (from another terminal while it runs)
  kd-sweep report results/temps             (then open results/temps/index.html)
  kd-sweep compare results/quick results/quick2 --out charts/
  kd-sweep clean results --dry-run          (what every sweep's folder no longer needs)
  kd-sweep experiments/temps.toml --results /data/kd --devices cuda:0,cuda:1";

/// The top-level help's text after the options: the sweep file, every method with its loss, how
/// resuming works, exit codes, examples.
fn after_help() -> String {
    let mut methods = String::from("Methods (s: student logits, t: teacher logits, y: labels):\n");
    for m in crate::distill::Method::ALL {
        methods.push_str(&format!("  {:<10} {}\n", m.name(), m.loss_text()));
    }
    // every method and table, from their declarations
    let all = crate::distill::Method::ALL;
    let names: Vec<String> = all.iter().map(|m| format!("\"{}\"", m.name())).collect();
    let tables: Vec<String> = (all.iter())
        .filter_map(|m| m.table().map(|t| format!("[grid.{}]", t.name)))
        .collect();
    let after = AFTER
        .replace("{METHODS}", &format!("[{}]", names.join(", ")))
        .replace("{TABLES}", &crate::util::and_list(&tables));
    format!("{after}\n{methods}{AFTER_END}")
}

#[derive(Parser, Debug)]
#[command(name = "kd-sweep", version, about = ABOUT, after_help = after_help(), args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// The sweep file to run (same as `kd-sweep run SWEEP`).
    sweep: Option<PathBuf>,
    #[command(flatten)]
    run: RunOptions,
}

/// The options of a command that plans a sweep on this machine: where results go, the devices and
/// workers, the keys the command line can replace, and how much is printed.
#[derive(Args, Debug, Clone)]
struct RunOptions {
    #[command(flatten)]
    results: ResultsRoot,
    #[command(flatten)]
    devices: DevicesArg,
    /// Runs at once per device (default: one per core on the CPU, one per GPU). Overrides [schedule]
    /// workers_per_device.
    #[arg(long, value_name = "N")]
    workers_per_device: Option<i64>,
    #[command(flatten)]
    keys: KeyOptions,
    #[command(flatten)]
    quiet: Quiet,
}

#[derive(Args, Debug, Clone)]
struct ResultsRoot {
    /// Output root: results go to DIR/<name>/, cached teachers to DIR/.cache/.
    #[arg(long, value_name = "DIR", default_value = "results")]
    results: PathBuf,
}

#[derive(Args, Debug, Clone)]
struct DevicesArg {
    /// Devices: "auto" (every CUDA device, else the CPU), "cpu", or a list like cuda:0,cuda:2.
    /// Overrides [schedule] devices.
    #[arg(long, value_name = "LIST")]
    devices: Option<String>,
}

/// Sweep-file settings the command line replaces that are part of every run's key.
#[derive(Args, Debug, Clone)]
struct KeyOptions {
    /// Intra-op threads of each teacher (default: every core of this machine; for `slurm`'s tasks,
    /// --cpus-per-task, or 1). Part of the teacher's key. Overrides [teacher] threads.
    #[arg(long, value_name = "N")]
    teacher_threads: Option<i64>,
    /// CPU kernels: "portable" (the default: one fixed AVX2 level, the same numbers on every machine
    /// of one CPU vendor) or "native" (libtorch's choice: faster on AVX-512, numbers differ between
    /// machines).
    /// Part of every run's key. Overrides [schedule] numerics.
    #[arg(long, value_name = "MODE")]
    numerics: Option<String>,
    /// GPU runs repeatable bit for bit (cuDNN's deterministic algorithms, no benchmark search):
    /// slower. Part of every run's key. Same as [schedule] deterministic = true.
    #[arg(long)]
    deterministic: bool,
    /// GPU training steps captured once as CUDA graphs and replayed (SGD roles; each step one
    /// launch instead of hundreds). Part of every run's key. Same as [schedule] cuda_graphs = true.
    #[arg(long)]
    cuda_graphs: bool,
}

#[derive(Args, Debug, Clone)]
struct Quiet {
    /// Print errors only.
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a sweep (the default when a file is given directly); rerun to resume.
    Run {
        /// The sweep file (TOML), such as experiments/quick.toml.
        sweep: PathBuf,
        /// Run exactly one node of the plan (an id from `kd-sweep plan --json`), in this process; for
        /// cluster jobs. A finished node does nothing.
        #[arg(long, value_name = "ID")]
        task: Option<String>,
        #[command(flatten)]
        run: RunOptions,
    },
    /// Print the plan without training: runs, what is done or cached, devices and workers.
    Plan {
        /// The sweep file (TOML), such as experiments/quick.toml.
        sweep: PathBuf,
        /// Print the plan's nodes as JSON (ids, roles, dependencies, done).
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        run: RunOptions,
    },
    /// Regenerate runs.csv, epochs.csv, summary.md, the charts and index.html of a sweep's results
    /// folder from its records (no training), and print the summary.
    Report {
        /// A sweep's results folder, such as results/temps.
        dir: PathBuf,
        /// What to print: the summary as Markdown (text) or the summary's numbers as JSON.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Compare sweeps side by side: the settings they differ in, the (T, α) cells they share, each
    /// sweep's mean ± std and the difference, cells only some have, an overlay chart, and
    /// DIR/index.html with all of it.
    Compare {
        /// Two or more sweep results folders, such as results/quick results/quick-alpha.
        #[arg(num_args = 2.., required = true)]
        dirs: Vec<PathBuf>,
        /// Folder the comparison is written to: index.html (the sweeps, the shared cells and the
        /// overlay chart on one page) and compare_accuracy_vs_temperature.{png,svg}.
        #[arg(long, value_name = "DIR", default_value = ".")]
        out: PathBuf,
        /// What to print: the tables as Markdown (text) or the same numbers as JSON.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Remove what a results folder no longer needs: checkpoints of finished runs and of runs a
    /// search pruned, progress files of runs no longer in flight, empty checkpoints/ and progress/
    /// folders. Never records, CSVs, reports or cached teachers; refused while a sweep runs there
    /// (in a results root, that folder is left alone).
    Clean {
        /// A sweep's results folder (such as results/temps), or the results root (every sweep in it).
        dir: PathBuf,
        /// List what would be removed, and remove nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Measure kd-sweep on this machine: matrix-multiply ceiling, training and evaluation throughput
    /// (and the same loop in PyTorch), data feeding, the tutorial's 20-student sweep against the
    /// PyTorch tutorial's method on all cores (wall time, FLOP ceiling, accuracies), scaling, memory,
    /// fused training. Prints a Markdown report; about 20 minutes on 2 cores (--quick: about 3 minutes there).
    Bench(BenchArgs),
    /// Write (and with --submit, submit) SLURM job arrays for the sweep's unfinished nodes: one array
    /// for the teachers, one for the students that waits for it (afterok), and a report job. Rerun it
    /// after failures or cancellations: only what is missing is submitted.
    Slurm(SlurmArgs),
    /// What a sweep folder holds right now: runs done, failed (with reasons), running (epoch reached),
    /// pending, the best cell so far and an ETA. Works while `kd-sweep run` or a SLURM array is
    /// writing the folder, from any terminal or node; writes nothing.
    Status {
        /// A sweep's results folder (such as results/temps), or its sweep file.
        target: PathBuf,
        /// Refresh until every run has finished (Ctrl-C to stop watching).
        #[arg(long)]
        watch: bool,
        /// Seconds between refreshes with --watch.
        #[arg(long, value_name = "S", default_value_t = 2.0)]
        every: f64,
        /// With a sweep file: the output root its results folder is in (DIR/<name>/).
        #[arg(long, value_name = "DIR", default_value = "results")]
        results: PathBuf,
    },
    /// Show what this machine offers kd-sweep: libtorch's CUDA backend, the NVIDIA driver, the GPUs
    /// libtorch can use, and what `devices = "auto"` resolves to (or why no GPU can be used).
    Devices {
        /// Print the probe as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the networks `[teacher] model`, `[student] model` and `[grid] student_model` accept, with
    /// their parameters and multiply-adds per image for a dataset's image shape and classes
    /// (`kd-sweep models torchscript:FILE` adds your own network's parameters).
    Models {
        /// fashion-mnist, mnist, cifar10, cifar100, folder or tensors: its image shape and number
        /// of classes (a folder's or tensors file's are read from --data).
        #[arg(long, default_value = "fashion-mnist", value_parser = parse_dataset)]
        dataset: DatasetKind,
        /// The folder or tensors file of --dataset folder or tensors.
        #[arg(long, value_name = "PATH")]
        data: Option<PathBuf>,
        /// A folder dataset's image_size (as [data] image_size = N).
        #[arg(long, value_name = "N")]
        image_size: Option<u32>,
        /// Also these names (e.g. resnet26, wrn-28-4): any valid depth and width.
        names: Vec<String>,
    },
    #[command(name = "__worker", hide = true)]
    Worker {
        /// Intra-op threads of this worker's runs.
        #[arg(long, default_value_t = 1)]
        threads: i32,
        /// The sweep runs with --quiet: say no progress notes.
        #[arg(long)]
        quiet: bool,
    },
    /// One training-step throughput measurement in this process (`bench` starts it once per numerics
    /// mode): prints {"images_per_s", "cpu_capability"} as JSON.
    #[command(name = "__bench-step", hide = true)]
    BenchStep {
        /// The network's name.
        #[arg(long)]
        arch: String,
        /// C,H,W of an image.
        #[arg(long)]
        shape: String,
        /// Classes of the data.
        #[arg(long)]
        classes: i64,
        /// Intra-op threads.
        #[arg(long, default_value_t = 1)]
        threads: i32,
        /// Untimed training steps first.
        #[arg(long, default_value_t = 3)]
        warmup: usize,
        /// Training steps to time.
        #[arg(long)]
        steps: usize,
        /// cpu or cuda:N.
        #[arg(long, default_value = "cpu")]
        device: String,
    },
}

#[derive(Args, Debug)]
struct BenchArgs {
    /// cpu or cuda:N (default: cuda:0 when libtorch sees a GPU, else cpu).
    #[arg(long)]
    device: Option<String>,
    /// fashion-mnist, mnist, cifar10 or cifar100 (not folder or tensors).
    #[arg(long, default_value = "fashion-mnist", value_parser = parse_dataset)]
    dataset: DatasetKind,
    /// The dataset's folder (default: the dataset's default).
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Also write the report to this file.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Scratch folder for the benchmark's sweeps (emptied first; a non-empty folder bench did not
    /// make is refused). Section 4 leaves kd-sweep's
    /// records in DIR/tutorial and each PyTorch seed's result in DIR/tutorial-pytorch/seed-N.json.
    #[arg(long, value_name = "DIR", default_value = "results/.bench")]
    work: PathBuf,
    /// A Python with torch==2.11.0 for the PyTorch reference (default: the one libtorch came from).
    #[arg(long, value_name = "PATH")]
    python: Option<PathBuf>,
    /// Tiny sizes, to check that the benchmark runs; its numbers mean nothing.
    #[arg(long)]
    quick: bool,
    /// Seeds of section 4 (kd-sweep against the PyTorch tutorial's method; each seed costs the
    /// PyTorch side 5-10 minutes on 2 cores). Default: 3 (1 with --quick).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    seeds: Option<u32>,
    /// Only these sections, comma-separated: ceiling, throughput, feeding, tutorial, scaling,
    /// fused, numerics, networks (default: all). The ceiling is always measured.
    #[arg(long, value_name = "LIST", value_delimiter = ',', value_parser = parse_section)]
    sections: Vec<String>,
    /// Section 9 (networks) with the convolutions channels-last on both sides (kd-sweep's
    /// `channels_last = true`; PyTorch's `torch.channels_last`), to compare with a run without.
    #[arg(long)]
    channels_last: bool,
    #[command(flatten)]
    quiet: Quiet,
}

fn parse_section(s: &str) -> Result<String, String> {
    crate::tools::bench::SECTIONS
        .contains(&s)
        .then(|| s.to_string())
        .ok_or_else(|| format!("allowed: {}", crate::tools::bench::SECTIONS.join(", ")))
}

#[derive(Args, Debug)]
struct SlurmArgs {
    /// The sweep file (TOML), such as experiments/quick.toml.
    sweep: PathBuf,
    /// The partition the tasks run in (`--partition`; default: the cluster's).
    #[arg(long)]
    partition: Option<String>,
    /// GPUs per task (`--gpus-per-task`; default: none asked).
    #[arg(long, value_name = "N")]
    gpus_per_task: Option<u32>,
    /// CPU cores per task (`--cpus-per-task`); also the teachers' threads, unless the sweep file or
    /// --teacher-threads sets them (default: 1).
    #[arg(long, value_name = "N")]
    cpus_per_task: Option<u32>,
    /// Memory per task, as sbatch takes it (e.g. 8G).
    #[arg(long, value_name = "M")]
    mem: Option<String>,
    /// Time limit per task, as sbatch takes it (e.g. 02:00:00).
    #[arg(long, value_name = "T")]
    time: Option<String>,
    /// At most K tasks of an array at once.
    #[arg(long, value_name = "K")]
    max_parallel: Option<u32>,
    /// The account the jobs are charged to (`--account`; default: yours).
    #[arg(long, value_name = "A")]
    account: Option<String>,
    /// Submit with sbatch (otherwise print the commands).
    #[arg(long)]
    submit: bool,
    /// Seconds before the time limit at which SLURM sends SIGTERM, so that the run in flight saves a
    /// checkpoint and stops (`--signal=B:TERM@S`); 0: not asked.
    #[arg(long, value_name = "S", default_value_t = 120)]
    signal_secs: u32,
    /// Do not ask SLURM to requeue preempted tasks (`--requeue`, on by default: a requeued task
    /// continues from its checkpoint).
    #[arg(long)]
    no_requeue: bool,
    #[command(flatten)]
    results: ResultsRoot,
    #[command(flatten)]
    devices: DevicesArg,
    #[command(flatten)]
    keys: KeyOptions,
    #[command(flatten)]
    quiet: Quiet,
}

/// How a report is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// Markdown
    Text,
    /// JSON, for scripts
    Json,
}

fn parse_dataset(s: &str) -> Result<DatasetKind, String> {
    DatasetKind::parse(s).ok_or_else(|| format!("allowed: {}", DatasetKind::NAMES))
}

/// The library's options for a command that plans a sweep.
fn options(
    results: &ResultsRoot,
    devices: &DevicesArg,
    workers_per_device: Option<i64>,
    keys: &KeyOptions,
    quiet: &Quiet,
) -> Options {
    Options {
        results: results.results.clone(),
        overrides: config::Overrides {
            devices: devices.devices.clone(),
            workers_per_device,
            teacher_threads: keys.teacher_threads,
            numerics: keys.numerics.clone(),
            deterministic: keys.deterministic,
            cuda_graphs: keys.cuda_graphs,
        },
        quiet: quiet.quiet,
        worker_exe: worker_exe(),
    }
}

impl RunOptions {
    fn options(&self) -> Options {
        options(
            &self.results,
            &self.devices,
            self.workers_per_device,
            &self.keys,
            &self.quiet,
        )
    }
}

/// This binary, which workers and benchmark steps are started from.
fn worker_exe() -> PathBuf {
    std::env::current_exe().unwrap_or_else(|_| PathBuf::from("kd-sweep"))
}

/// How a command ended, when it did not fail outright.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Success,
    /// Some runs have no finished record (rerun to retry them).
    RunsFailed,
    /// Stopped by Ctrl-C; finished runs and checkpoints are kept.
    Interrupted,
    /// Stopped by SIGTERM (a time limit, preemption, `scancel`); finished runs and checkpoints kept.
    Terminated,
    /// A usage error already explained to the user.
    Usage,
}

/// The one place exit codes are decided.
pub fn exit_code(result: &anyhow::Result<Ended>) -> i32 {
    match result {
        Ok(Ended::Success) => 0,
        Ok(Ended::RunsFailed) => 1,
        Ok(Ended::Usage) => 2,
        Ok(Ended::Interrupted) => 130,
        Ok(Ended::Terminated) => 143,
        // A bad sweep file or usage is 2 (README's table); data, IO and run failures and a folder in
        // use are 1 (DataError among them).
        Err(e) if e.downcast_ref::<ConfigError>().is_some() => 2,
        Err(e) if e.downcast_ref::<ConfigErrors>().is_some() => 2,
        Err(e) if e.downcast_ref::<UsageError>().is_some() => 2,
        Err(_) => 1,
    }
}

/// Runs the command line; returns the process exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let args: Vec<String> = std::env::args().collect();
            if let (true, Some(fix)) = (e.use_stderr(), options_before_command(&args)) {
                eprintln!("error: {fix}");
                return 2;
            }
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    let result = cli.run();
    if let Err(e) = &result {
        eprint!("{}", error_text(e));
    }
    exit_code(&result)
}

/// For a command line clap refused with options before the command (`kd-sweep --results r plan
/// s.toml`, as git takes them): the same line with the options after it, which is how kd-sweep
/// takes them.
fn options_before_command(args: &[String]) -> Option<String> {
    use clap::CommandFactory;
    let names: Vec<String> = (Cli::command().get_subcommands())
        .map(|c| c.get_name().to_string())
        .collect();
    let at = 1 + args.iter().skip(1).position(|a| names.contains(a))?;
    let before = &args[1..at];
    if !before.first()?.starts_with('-') {
        return None;
    }
    let moved: Vec<&str> = (args[at..].iter().chain(before))
        .map(String::as_str)
        .collect();
    // a line the command would refuse in turn is not suggested
    let line = std::iter::once(args[0].as_str()).chain(moved.iter().copied());
    if Cli::try_parse_from(line).is_err() {
        return Some(format!(
            "{} before the command: `kd-sweep {}` does not take {} (`kd-sweep {} --help` lists \
             its options)",
            before.join(" "),
            args[at],
            if before.len() == 1 { "it" } else { "them" },
            args[at]
        ));
    }
    Some(format!(
        "options go after the command: kd-sweep {} (`kd-sweep {} --help` lists its options)",
        moved.join(" "),
        args[at]
    ))
}

/// How an error is printed: `error: ` and the chain of causes; a sweep file's problems one per line,
/// each with its own `error: `.
pub fn error_text(e: &anyhow::Error) -> String {
    match e.downcast_ref::<ConfigErrors>() {
        Some(all) if e.chain().count() == 1 => {
            all.iter().map(|c| format!("error: {c}\n")).collect()
        }
        _ => format!("error: {e:#}\n"),
    }
}

impl Cli {
    fn run(self) -> anyhow::Result<Ended> {
        match (self.command, self.sweep) {
            (Some(Command::Worker { threads, quiet }), _) => {
                crate::util::set_quiet(quiet);
                crate::run::worker::main(threads).map(|_| Ended::Success)
            }
            (
                Some(Command::BenchStep {
                    arch,
                    shape,
                    classes,
                    threads,
                    warmup,
                    steps,
                    device,
                }),
                _,
            ) => bench_step(&arch, &shape, classes, threads, (warmup, steps), &device),
            (
                Some(Command::Run {
                    sweep,
                    task: Some(id),
                    run,
                }),
                _,
            ) => run_task(&sweep, &run.options(), &id),
            (Some(Command::Run { sweep, run, .. }), _) => run_sweep(&sweep, &run.options()),
            (None, Some(sweep)) => run_sweep(&sweep, &self.run.options()),
            (Some(Command::Plan { sweep, json, run }), _) => plan(&sweep, &run.options(), json),
            (Some(Command::Devices { json }), _) => devices(json),
            (
                Some(Command::Models {
                    dataset,
                    data,
                    image_size,
                    names,
                }),
                _,
            ) => models(dataset, data.as_deref(), image_size, &names),
            (
                Some(Command::Status {
                    target,
                    watch,
                    every,
                    results,
                }),
                _,
            ) => status(&target, &results, watch, every),
            (Some(Command::Report { dir, format }), _) => report(&dir, format),
            (Some(Command::Compare { dirs, out, format }), _) => compare(&dirs, &out, format),
            (Some(Command::Clean { dir, dry_run }), _) => clean(&dir, dry_run),
            (Some(Command::Bench(args)), _) => bench(args),
            (Some(Command::Slurm(args)), _) => slurm(args),
            (None, None) => {
                eprintln!(
                    "error: give a sweep file, e.g. `kd-sweep experiments/quick.toml` (see --help)"
                );
                Ok(Ended::Usage)
            }
        }
    }
}

fn run_sweep(path: &Path, opts: &Options) -> anyhow::Result<Ended> {
    let f = sweep::run(path, opts)?;
    Ok(if f.terminated {
        Ended::Terminated
    } else if f.interrupted {
        Ended::Interrupted
    } else if f.failed > 0 {
        if !opts.quiet {
            eprintln!(
                "{} run(s) failed; rerun the same command to retry them",
                f.failed
            );
        }
        Ended::RunsFailed
    } else {
        Ended::Success
    })
}

fn run_task(path: &Path, opts: &Options, id: &str) -> anyhow::Result<Ended> {
    use crate::run::task::{self, TaskOutcome};
    Ok(match task::run_task(path, opts, id)? {
        TaskOutcome::AlreadyDone => {
            if !opts.quiet {
                eprintln!("{id}: already done; nothing to do");
            }
            Ended::Success
        }
        TaskOutcome::Done => {
            if !opts.quiet {
                eprintln!("{id}: done");
            }
            Ended::Success
        }
        TaskOutcome::Failed(why) => {
            eprintln!("{id}: FAILED: {why}");
            Ended::RunsFailed
        }
        TaskOutcome::Stopped { terminated } => {
            eprintln!("{id}: stopped; its checkpoint is kept, run the task again to continue");
            if terminated {
                Ended::Terminated
            } else {
                Ended::Interrupted
            }
        }
    })
}

fn plan(path: &Path, opts: &Options, json: bool) -> anyhow::Result<Ended> {
    if json {
        let v = sweep::plan_json(path, opts)?;
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print!("{}", crate::run::describe::describe(path, opts)?);
    }
    Ok(Ended::Success)
}

#[cfg(test)]
mod tests;
