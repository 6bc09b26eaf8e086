//! The command line. Parses arguments, calls the library, prints errors in one place, and maps them to
//! exit codes: 0 all runs done, 1 some run failed or a data/IO error, 2 a bad sweep file or usage,
//! 130 interrupted.

use crate::config::{self, ConfigError};
use crate::sweep::{self, Options};
use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

const ABOUT: &str =
    "Knowledge-distillation sweeps: train each teacher once, distil a student for every \
(temperature, α) grid point on every available device, and write CSV logs and charts.";

const AFTER: &str = "\
A sweep file (TOML) names the study, its seeds, the data, the teacher's and student's training, and the
grid. Minimal example (see README.md for every key):

  name = \"quick\"                 # results go to <results>/quick/
  seeds = [0]
  [data]
  dataset = \"fashion-mnist\"      # \"fashion-mnist\" | \"mnist\" | \"cifar10\"
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

Loss: (1 − α)·CE(student, y) + α·T²·KL(softmax(teacher/T) ‖ softmax(student/T)).
Rerunning a sweep resumes it: finished runs and cached teachers are never redone.

Examples:
  kd-sweep experiments/quick.toml
  kd-sweep plan experiments/temps.toml
  kd-sweep report results/temps
  kd-sweep compare results/quick results/quick2 --out charts/
  kd-sweep experiments/temps.toml --results /data/kd --devices cuda:0,cuda:1";

#[derive(Parser, Debug)]
#[command(name = "kd-sweep", version, about = ABOUT, after_help = AFTER, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// The sweep file to run (same as `kd-sweep run SWEEP`).
    sweep: Option<PathBuf>,
    #[command(flatten)]
    common: Common,
}

#[derive(Args, Debug, Clone)]
struct Common {
    /// Output root: results go to DIR/<name>/, cached teachers to DIR/.cache/.
    #[arg(long, value_name = "DIR", default_value = "results", global = true)]
    results: PathBuf,
    /// Devices: "auto" (every CUDA device, else the CPU), "cpu", or a list like cuda:0,cuda:2.
    /// Overrides [schedule] devices.
    #[arg(long, value_name = "LIST", global = true)]
    devices: Option<String>,
    /// Runs at once per device (default: one per core on the CPU, one per GPU).
    #[arg(long, value_name = "N", global = true)]
    workers_per_device: Option<u32>,
    /// Print errors only.
    #[arg(long, short, global = true)]
    quiet: bool,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a sweep (the default when a file is given directly); rerun to resume.
    Run {
        sweep: PathBuf,
        /// Run exactly one node of the plan (an id from `kd-sweep plan --json`), in this process; for
        /// cluster jobs. A finished node does nothing.
        #[arg(long, value_name = "ID")]
        task: Option<String>,
        /// Intra-op threads for --task (default: $SLURM_CPUS_PER_TASK, else 1).
        #[arg(long, value_name = "N")]
        threads: Option<i32>,
    },
    /// Print the plan without training: runs, what is done or cached, devices and workers.
    Plan {
        sweep: PathBuf,
        /// Print the plan's nodes as JSON (ids, roles, dependencies, done).
        #[arg(long)]
        json: bool,
    },
    /// Regenerate runs.csv, epochs.csv, summary.md and the charts of a sweep's results folder from its
    /// records (no training), and print the summary.
    Report {
        /// A sweep's results folder, such as results/temps.
        dir: PathBuf,
        /// `text` (Markdown) or `json`.
        #[arg(long, default_value = "text", value_parser = ["text", "json"])]
        format: String,
    },
    /// Compare sweeps side by side: the (T, α) cells they share, each sweep's mean ± std and the
    /// difference, cells only some have, and an overlay chart.
    Compare {
        /// Two or more sweep results folders.
        #[arg(num_args = 2.., required = true)]
        dirs: Vec<PathBuf>,
        /// Where compare_accuracy_vs_temperature.{png,svg} go.
        #[arg(long, value_name = "DIR", default_value = ".")]
        out: PathBuf,
        /// `text` (Markdown) or `json`.
        #[arg(long, default_value = "text", value_parser = ["text", "json"])]
        format: String,
    },
    /// Measure kd-sweep on this machine: matrix-multiply ceiling, training throughput (and the same
    /// loop in PyTorch), data feeding, a 12-student sweep against the naive way, scaling, memory.
    /// Prints a Markdown report; takes a few minutes.
    Bench {
        /// cpu or cuda:N (default: cuda:0 when libtorch sees a GPU, else cpu).
        #[arg(long)]
        device: Option<String>,
        /// fashion-mnist, mnist or cifar10.
        #[arg(long, default_value = "fashion-mnist")]
        dataset: String,
        /// The dataset's folder (default: the dataset's default).
        #[arg(long, value_name = "DIR")]
        data: Option<PathBuf>,
        /// Also write the report to this file.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Scratch folder for the benchmark's sweeps (emptied first).
        #[arg(long, value_name = "DIR", default_value = "results/.bench")]
        work: PathBuf,
        /// A Python with torch==2.11.0 for the PyTorch reference (default: the one libtorch came from).
        #[arg(long, value_name = "PATH")]
        python: Option<PathBuf>,
        /// Tiny sizes, to check that the benchmark runs; its numbers mean nothing.
        #[arg(long)]
        quick: bool,
    },
    /// Write (and with --submit, submit) SLURM job arrays for the sweep's unfinished nodes: one array
    /// for the teachers, one for the students that waits for it (afterok), and a report job. Rerun it
    /// after failures or cancellations: only what is missing is submitted.
    Slurm {
        sweep: PathBuf,
        #[arg(long)]
        partition: Option<String>,
        #[arg(long, value_name = "N")]
        gpus_per_task: Option<u32>,
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
        #[arg(long, value_name = "A")]
        account: Option<String>,
        /// Submit with sbatch (otherwise print the commands).
        #[arg(long)]
        submit: bool,
    },
    #[command(name = "__worker", hide = true)]
    Worker {
        #[arg(long, default_value_t = 1)]
        threads: i32,
    },
}

fn options(c: &Common) -> Result<Options, ConfigError> {
    let devices = c
        .devices
        .as_deref()
        .map(config::parse_devices)
        .transpose()
        .map_err(|m| ConfigError {
            file: "--devices".into(),
            at: None,
            key: None,
            message: m,
        })?;
    if c.workers_per_device == Some(0) {
        return Err(ConfigError {
            file: "--workers-per-device".into(),
            at: None,
            key: None,
            message: "must be at least 1".into(),
        });
    }
    Ok(Options {
        results: c.results.clone(),
        devices,
        workers_per_device: c.workers_per_device,
        quiet: c.quiet,
        worker_exe: std::env::current_exe().unwrap_or_else(|_| PathBuf::from("kd-sweep")),
    })
}

fn exit_code(e: &anyhow::Error) -> i32 {
    // A bad sweep file or usage is 2; data, IO and run failures are 1 (DataError among them).
    if e.downcast_ref::<ConfigError>().is_some() {
        2
    } else {
        1
    }
}

/// Runs the command line; returns the process exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            exit_code(&e)
        }
    }
}

fn dispatch(cli: Cli) -> anyhow::Result<i32> {
    let run = |path: PathBuf, common: &Common| -> anyhow::Result<i32> {
        let f = sweep::run(&path, &options(common)?)?;
        Ok(if f.interrupted {
            130
        } else if f.failed > 0 {
            if !common.quiet {
                eprintln!(
                    "{} run(s) failed; rerun the same command to retry them",
                    f.failed
                );
            }
            1
        } else {
            0
        })
    };
    match (cli.command, cli.sweep) {
        (Some(Command::Worker { threads }), _) => crate::schedule::worker_main(threads).map(|_| 0),
        (
            Some(Command::Run {
                sweep,
                task: Some(id),
                threads,
            }),
            _,
        ) => {
            let threads = threads
                .or_else(|| std::env::var("SLURM_CPUS_PER_TASK").ok()?.parse().ok())
                .unwrap_or(1)
                .max(1);
            match crate::sweep::run_task(&sweep, &options(&cli.common)?, &id, threads)? {
                crate::sweep::TaskOutcome::AlreadyDone => {
                    eprintln!("{id}: already done; nothing to do");
                    Ok(0)
                }
                crate::sweep::TaskOutcome::Done => {
                    eprintln!("{id}: done");
                    Ok(0)
                }
                crate::sweep::TaskOutcome::Failed(why) => {
                    eprintln!("{id}: FAILED: {why}");
                    Ok(1)
                }
            }
        }
        (Some(Command::Run { sweep, .. }), _) | (None, Some(sweep)) => run(sweep, &cli.common),
        (Some(Command::Report { dir, format }), _) => {
            let warn = |m: &str| eprintln!("{m}");
            let l = crate::report::load(&dir, &warn)?;
            let refs: Vec<&crate::store::RunRecord> = l.records.iter().collect();
            crate::sweep::write_csvs(&dir, &refs)?;
            let s = crate::report::publish(&dir, &l.meta, &refs)?;
            if format == "json" {
                println!(
                    "{}",
                    serde_json::to_string_pretty(
                        &serde_json::json!({ "meta": l.meta, "summary": s })
                    )?
                );
            } else {
                print!("{}", crate::report::markdown(&l.meta, &s));
            }
            Ok(0)
        }
        (Some(Command::Compare { dirs, out, format }), _) => {
            let warn = |m: &str| eprintln!("{m}");
            let loaded = dirs
                .iter()
                .map(|d| crate::report::load(d, &warn))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let c = crate::report::compare::compare(&loaded);
            crate::report::compare::chart(&out, &c)?;
            if format == "json" {
                println!("{}", serde_json::to_string_pretty(&c)?);
            } else {
                print!("{}", crate::report::compare::markdown(&c));
                eprintln!(
                    "chart: {}",
                    out.join("compare_accuracy_vs_temperature.png").display()
                );
            }
            Ok(0)
        }
        (
            Some(Command::Bench {
                device,
                dataset,
                data,
                out,
                work,
                python,
                quick,
            }),
            _,
        ) => {
            let dataset =
                crate::config::DatasetKind::parse(&dataset).ok_or_else(|| ConfigError {
                    file: "--dataset".into(),
                    at: None,
                    key: None,
                    message: format!(
                        "unknown dataset {dataset:?}; allowed: {}",
                        crate::config::DatasetKind::NAMES
                    ),
                })?;
            let device = device.unwrap_or_else(|| {
                if tch::Cuda::device_count() > 0 {
                    "cuda:0".into()
                } else {
                    "cpu".into()
                }
            });
            let opts = crate::bench::Options {
                device,
                dataset,
                data,
                work,
                worker_exe: options(&cli.common)?.worker_exe,
                python,
                quick,
            };
            let md = crate::bench::run(&opts, &|m: &str| {
                if !cli.common.quiet {
                    eprintln!("{m}")
                }
            })?;
            if let Some(out) = out {
                crate::store::write_atomic(&out, md.as_bytes())
                    .with_context(|| format!("writing {}", out.display()))?;
            }
            print!("{md}");
            Ok(0)
        }
        (
            Some(Command::Slurm {
                sweep,
                partition,
                gpus_per_task,
                cpus_per_task,
                mem,
                time,
                max_parallel,
                account,
                submit,
            }),
            _,
        ) => {
            let o = crate::slurm::SlurmOptions {
                partition,
                gpus_per_task,
                cpus_per_task,
                mem,
                time,
                max_parallel,
                account,
                submit,
                max_array_size: None,
            };
            let opts = options(&cli.common)?;
            let g = crate::slurm::generate(&sweep, &opts, &o)?;
            let results = g.dir.parent().map(|d| d.to_path_buf()).unwrap_or_default();
            print!("{}", crate::slurm::describe(&g, &results, submit));
            Ok(0)
        }
        (Some(Command::Plan { sweep, json: true }), _) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&crate::sweep::plan_json(
                    &sweep,
                    &options(&cli.common)?
                )?)?
            );
            Ok(0)
        }
        (Some(Command::Plan { sweep, .. }), _) => {
            print!("{}", sweep::describe(&sweep, &options(&cli.common)?)?);
            Ok(0)
        }
        (None, None) => {
            eprintln!(
                "error: give a sweep file, e.g. `kd-sweep experiments/quick.toml` (see --help)"
            );
            Ok(2)
        }
    }
}
