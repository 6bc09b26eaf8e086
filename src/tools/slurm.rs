//! `kd-sweep slurm`: hands the plan to SLURM as job arrays. kd-sweep does not run its own distributed
//! scheduler: each array task runs one node (`kd-sweep run SWEEP --task ID`) against the shared results
//! folder, whose exactly-once records and teacher cache put the pieces together. Only unfinished nodes
//! are submitted, so rerunning after failures or cancellations submits just what is missing.
//!
//! ```text
//! <results>/<name>/slurm/
//!   teachers.tsv, students.tsv       array index → node id (baselines run in the students' array)
//!   teachers.sbatch, students.sbatch one array task = one node
//!   report.sbatch                    `kd-sweep report` once both arrays have ended
//!   logs/%x_%A_%a.out                one log per task
//! ```

use crate::plan::Role;
use crate::run::pipeline::{self as sweep, Options};
use anyhow::Context;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What `#SBATCH` asks for, and how to submit.
#[derive(Debug, Clone, Default)]
pub struct SlurmOptions {
    pub partition: Option<String>,
    pub gpus_per_task: Option<u32>,
    pub cpus_per_task: Option<u32>,
    pub mem: Option<String>,
    pub time: Option<String>,
    /// At most this many tasks of an array at once (`--array=…%K`).
    pub max_parallel: Option<u32>,
    pub account: Option<String>,
    pub submit: bool,
    /// Overrides the cluster's MaxArraySize (normally read from `scontrol show config`).
    pub max_array_size: Option<usize>,
    /// SIGTERM this many seconds before the time limit (`--signal=B:TERM@S`; 0: not asked): the task
    /// checkpoints and stops, and its resubmission continues from there.
    pub signal_secs: u32,
    /// `--requeue`: a preempted task is requeued and continues from its checkpoint.
    pub requeue: bool,
}

/// What was written (and submitted).
#[derive(Debug, Default)]
pub struct Generated {
    pub dir: PathBuf,
    pub teachers: Vec<String>,
    pub students: Vec<String>,
    /// The shell commands that submit it (printed when not submitting).
    pub commands: Vec<String>,
    /// Job ids, when submitted: teachers' arrays, students' arrays, the report job.
    pub teacher_jobs: Vec<String>,
    pub student_jobs: Vec<String>,
    pub report_job: Option<String>,
}

/// `[(offset, len)]`: an array of `n` tasks split into chunks a cluster accepts (indices
/// 0..max_array_size − 1 per submission).
pub fn chunks(n: usize, max_array_size: usize) -> Vec<(usize, usize)> {
    let size = max_array_size.max(1);
    (0..n)
        .step_by(size)
        .map(|off| (off, size.min(n - off)))
        .collect()
}

/// Single-quotes a string for a POSIX shell.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+=:,@%".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// `training`: an array of training tasks, which asks for CPUs, GPUs and memory and logs per task;
/// otherwise the report job, which only reads records.
fn sbatch_header(o: &SlurmOptions, job: &str, logs: &Path, training: bool) -> String {
    let mut h = String::from("#!/bin/bash\n");
    let _ = writeln!(h, "#SBATCH --job-name={job}");
    let pattern = if training {
        "%x_%A_%a.out"
    } else {
        "%x_%j.out"
    };
    let _ = writeln!(
        h,
        "#SBATCH --output={}",
        shell_quote(&logs.join(pattern).display().to_string())
    );
    let mut line = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            let _ = writeln!(h, "#SBATCH --{k}={v}");
        }
    };
    line("partition", o.partition.clone());
    line("account", o.account.clone());
    if training {
        line("cpus-per-task", o.cpus_per_task.map(|c| c.to_string()));
        line("gpus-per-task", o.gpus_per_task.map(|g| g.to_string()));
        line("mem", o.mem.clone());
        // the signal goes to the batch shell, which is kd-sweep itself (the script execs it)
        line(
            "signal",
            (o.signal_secs > 0).then(|| format!("B:TERM@{}", o.signal_secs)),
        );
    }
    line("time", o.time.clone());
    if training && o.requeue {
        let _ = writeln!(h, "#SBATCH --requeue");
    }
    h
}

/// What every array task runs: `exe run sweep --results root --teacher-threads N --numerics M
/// [--deterministic] [--cuda-graphs] --task ID` — every setting of the plan that is part of the
/// runs' keys, also when it was given on the command line, so that the keys the tasks compute are
/// the plan's.
struct TaskCommand<'a> {
    exe: &'a Path,
    sweep: &'a Path,
    root: &'a Path,
    teacher_threads: u32,
    schedule: &'a crate::config::ScheduleConfig,
}

impl TaskCommand<'_> {
    /// The schedule's key settings as flags (a leading space before each).
    fn key_flags(&self) -> String {
        let s = self.schedule;
        let mut flags = format!(" --numerics {}", s.numerics.name());
        for (on, flag) in [
            (s.deterministic, " --deterministic"),
            (s.cuda_graphs, " --cuda-graphs"),
        ] {
            if on {
                flags.push_str(flag);
            }
        }
        flags
    }
}

fn array_script(
    o: &SlurmOptions,
    job: &str,
    logs: &Path,
    table: &Path,
    cmd: &TaskCommand,
) -> String {
    let mut s = sbatch_header(o, job, logs, true);
    let _ = write!(
        s,
        "# One node of the kd-sweep plan per array task: line KD_OFFSET + SLURM_ARRAY_TASK_ID + 1 of the table.\n\
         set -euo pipefail\n\
         line=$(( ${{KD_OFFSET:-0}} + SLURM_ARRAY_TASK_ID + 1 ))\n\
         task=$(sed -n \"${{line}}p\" {})\n\
         echo \"kd-sweep task $task on $(hostname)\"\n\
         exec {} run {} --results {} --teacher-threads {}{} --task \"$task\"\n",
        shell_quote(&table.display().to_string()),
        shell_quote(&cmd.exe.display().to_string()),
        shell_quote(&cmd.sweep.display().to_string()),
        shell_quote(&cmd.root.display().to_string()),
        cmd.teacher_threads,
        cmd.key_flags(),
    );
    s
}

/// The cluster's MaxArraySize (`scontrol show config`), or SLURM's default 1001.
fn max_array_size() -> usize {
    let out = Command::new("scontrol").args(["show", "config"]).output();
    out.ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|t| {
            t.lines().find_map(|l| {
                l.trim()
                    .strip_prefix("MaxArraySize")
                    .and_then(|v| v.trim().trim_start_matches('=').trim().parse().ok())
            })
        })
        .unwrap_or(1001)
}

fn sbatch(args: &[String]) -> anyhow::Result<String> {
    let out = Command::new("sbatch")
        .args(args)
        .output()
        .context("running sbatch (is SLURM installed and on PATH?)")?;
    anyhow::ensure!(
        out.status.success(),
        "sbatch {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    let text = String::from_utf8_lossy(&out.stdout);
    // --parsable prints "jobid" or "jobid;cluster"
    let id = text.trim().split(';').next().unwrap_or("").to_string();
    anyhow::ensure!(
        !id.is_empty() && id.chars().all(|c| c.is_ascii_digit()),
        "sbatch printed no job id: {text:?}"
    );
    Ok(id)
}

/// Job names of this sweep that are still queued or running.
fn queued(names: &[String]) -> Vec<String> {
    let out = Command::new("squeue")
        .args(["-h", "-o", "%i %j %T %r", "-n", &names.join(",")])
        .output();
    out.ok()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .map(str::to_string)
                .filter(|l| !l.trim().is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// Writes the scripts and task tables for the unfinished nodes of `sweep_path`, and submits them with
/// `--submit`.
pub fn generate(sweep_path: &Path, opts: &Options, o: &SlurmOptions) -> anyhow::Result<Generated> {
    let sweep_path = std::path::absolute(sweep_path)?;
    let mut opts = opts.clone();
    opts.results = std::path::absolute(&opts.results)?;
    // a task's machine is its allocation: teachers take --cpus-per-task threads (1 if not given)
    // unless the sweep file or --teacher-threads says otherwise; every task is told the number, so
    // that the keys the tasks compute are the plan's
    if opts.overrides.teacher_threads.is_none() {
        let file = crate::config::load(&sweep_path)?;
        if !file.source.has("teacher.threads") {
            // one thread per CPU of the allocation, up to the most a run takes
            let most = crate::config::MOST_THREADS.0 as i64;
            let cpus = o.cpus_per_task.unwrap_or(1) as i64;
            opts.overrides.teacher_threads = Some(cpus.min(most));
        }
    }
    let p = sweep::prepare(&sweep_path, &opts)?;
    sweep::refuse_adaptive(&p, &sweep_path, "slurm")?;
    p.store.create()?;
    let say = |m: &str| eprintln!("{m}");
    let done = sweep::finished(&p, &say, &say, sweep::Reused::Copy);
    let dir = p.store.dir.join("slurm");
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
    // the manifest lets `kd-sweep report` aggregate whatever has finished
    sweep::write_outputs(&p, &sweep_path, 0)?;

    let mut g = Generated {
        dir: dir.clone(),
        ..Default::default()
    };
    for (r, d) in p.plan.runs.iter().zip(&done) {
        if !d {
            match r.role {
                Role::Teacher => g.teachers.push(r.id.clone()),
                _ => g.students.push(r.id.clone()),
            }
        }
    }
    let name = &p.sweep.name;
    let (t_job, s_job, r_job) = (
        format!("kd-{name}-teachers"),
        format!("kd-{name}-students"),
        format!("kd-{name}-report"),
    );
    if o.submit {
        refuse_busy(&t_job, &s_job)?;
    }
    let exe = std::env::current_exe().context("locating the kd-sweep binary")?;
    let command = TaskCommand {
        exe: &exe,
        sweep: &sweep_path,
        root: &p.store.root,
        teacher_threads: p.sweep.teacher.threads,
        schedule: &p.sweep.schedule,
    };
    for (kind, ids, job) in [
        ("teachers", &g.teachers, &t_job),
        ("students", &g.students, &s_job),
    ] {
        let table = dir.join(format!("{kind}.tsv"));
        let mut text = ids.join("\n");
        if !text.is_empty() {
            text.push('\n');
        }
        crate::files::write_atomic(&table, text.as_bytes())?;
        crate::files::write_atomic(
            &dir.join(format!("{kind}.sbatch")),
            array_script(o, job, &logs, &table, &command).as_bytes(),
        )?;
    }
    let mut report = sbatch_header(o, &r_job, &logs, false);
    let _ = writeln!(
        report,
        "set -euo pipefail\nexec {} report {}",
        shell_quote(&exe.display().to_string()),
        shell_quote(&p.store.dir.display().to_string())
    );
    crate::files::write_atomic(&dir.join("report.sbatch"), report.as_bytes())?;

    let subs = submissions(o, &dir, &g);
    submit(o, &subs, &mut g)?;
    Ok(g)
}

/// Refuses to submit while jobs of this sweep are queued or running (saying how to unstick students
/// whose teachers' tasks can no longer succeed).
fn refuse_busy(t_job: &str, s_job: &str) -> anyhow::Result<()> {
    let busy = queued(&[t_job.to_string(), s_job.to_string()]);
    if !busy.is_empty() {
        // after a teacher's task timed out, failed or was cancelled, its students' `afterok` can
        // no longer hold: SLURM keeps them pending for ever unless the cluster kills them
        let stuck: Vec<&str> = busy
            .iter()
            .filter(|l| l.contains("DependencyNeverSatisfied"))
            .filter_map(|l| l.split_whitespace().next())
            .collect();
        let hint = if stuck.is_empty() {
            "wait for them to end (or scancel them) before submitting again".to_string()
        } else {
            format!("{} wait(s) for a task that failed, timed out or was cancelled and will never start: `scancel {}`, then submit again (finished runs and checkpoints are kept)", stuck.len(), stuck.join(" "))
        };
        anyhow::bail!(
            "jobs of this sweep are still queued or running:\n  {}\n{hint}",
            busy.join("\n  ")
        );
    }
    Ok(())
}

/// One `sbatch` of the submission: its shell variable (T0, T1… S0, S1…, R), its arguments, and the
/// variables it waits for and how.
struct Submission {
    var: String,
    args: Vec<String>,
    after: Option<(&'static str, Vec<String>)>,
}

/// One sbatch per chunk of the task tables, named T0, T1… and S0, S1…; every students' chunk waits
/// for all teachers' chunks (afterok), the report for everything (afterany).
fn submissions(o: &SlurmOptions, dir: &Path, g: &Generated) -> Vec<Submission> {
    let max = o.max_array_size.unwrap_or_else(max_array_size);
    let throttle = o.max_parallel.map(|k| format!("%{k}")).unwrap_or_default();
    let mut subs: Vec<Submission> = Vec::new();
    for (kind, n, letter) in [
        ("teachers", g.teachers.len(), "T"),
        ("students", g.students.len(), "S"),
    ] {
        let teachers: Vec<String> = subs
            .iter()
            .filter(|x| x.var.starts_with('T'))
            .map(|x| x.var.clone())
            .collect();
        for (i, (off, len)) in chunks(n, max).into_iter().enumerate() {
            subs.push(Submission {
                var: format!("{letter}{i}"),
                args: vec![
                    format!("--array=0-{}{throttle}", len - 1),
                    format!("--export=ALL,KD_OFFSET={off}"),
                    dir.join(format!("{kind}.sbatch")).display().to_string(),
                ],
                after: (kind == "students" && !teachers.is_empty())
                    .then(|| ("afterok", teachers.clone())),
            });
        }
    }
    if !subs.is_empty() {
        let everything = subs.iter().map(|x| x.var.clone()).collect();
        subs.push(Submission {
            var: "R".into(),
            args: vec![dir.join("report.sbatch").display().to_string()],
            after: Some(("afterany", everything)),
        });
    }
    subs
}

/// The submission's commands as a user would type them (in `g.commands`), and with `--submit` each
/// one submitted in order, the job ids it got kept in `g`.
fn submit(o: &SlurmOptions, subs: &[Submission], g: &mut Generated) -> anyhow::Result<()> {
    let mut ids: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    for sub in subs {
        let dep = |name: &dyn Fn(&String) -> String| {
            sub.after.as_ref().map(|(how, vars)| {
                format!(
                    "--dependency={how}:{}",
                    vars.iter().map(name).collect::<Vec<_>>().join(":")
                )
            })
        };
        let shown: Vec<String> = dep(&|v| format!("${{{v}}}"))
            .into_iter()
            .chain(sub.args.iter().map(|a| shell_quote(a)))
            .collect();
        g.commands.push(format!(
            "{}=$(sbatch --parsable {})",
            sub.var,
            shown.join(" ")
        ));
        if o.submit {
            let mut args = vec!["--parsable".to_string()];
            args.extend(dep(&|v| ids.get(v).cloned().unwrap_or_default()));
            args.extend(sub.args.iter().cloned());
            let id = sbatch(&args)?;
            match sub.var.chars().next() {
                Some('T') => g.teacher_jobs.push(id.clone()),
                Some('S') => g.student_jobs.push(id.clone()),
                _ => g.report_job = Some(id.clone()),
            }
            ids.insert(sub.var.clone(), id);
        }
    }
    Ok(())
}

/// What to print after `generate`.
pub fn describe(g: &Generated, results_dir: &Path, submitted: bool) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "wrote {} (teachers.sbatch, students.sbatch, report.sbatch, task tables, logs/)",
        g.dir.display()
    );
    let _ = writeln!(
        s,
        "unfinished nodes: {} teacher(s), {} student(s) and baseline(s)",
        g.teachers.len(),
        g.students.len()
    );
    if g.teachers.is_empty() && g.students.is_empty() {
        let _ = writeln!(s, "nothing to submit: every node of the plan has finished. `kd-sweep report {}` shows the results.", results_dir.display());
        return s;
    }
    if submitted {
        let ids: Vec<&String> = g
            .teacher_jobs
            .iter()
            .chain(&g.student_jobs)
            .chain(&g.report_job)
            .collect();
        let ids: Vec<&str> = ids.iter().map(|s| s.as_str()).collect();
        let _ = writeln!(
            s,
            "submitted: teachers {:?}, students {:?}, report {:?}",
            g.teacher_jobs,
            g.student_jobs,
            g.report_job.as_deref().unwrap_or("-")
        );
        let _ = writeln!(s, "follow:   squeue -j {}", ids.join(","));
        let _ = writeln!(s, "logs:     {}", g.dir.join("logs").display());
        let _ = writeln!(
            s,
            "results:  kd-sweep report {}   (any time; it aggregates whatever has finished)",
            results_dir.display()
        );
        let _ = writeln!(s, "if tasks fail or are cancelled, run the same `kd-sweep slurm … --submit` again: only unfinished nodes are submitted");
    } else {
        let _ = writeln!(s, "submit with (or rerun with --submit):\n");
        for c in &g.commands {
            let _ = writeln!(s, "  {c}");
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_respect_the_array_limit() {
        assert_eq!(chunks(0, 4), vec![]);
        assert_eq!(chunks(3, 4), vec![(0, 3)]);
        assert_eq!(chunks(4, 4), vec![(0, 4)]);
        assert_eq!(chunks(9, 4), vec![(0, 4), (4, 4), (8, 1)]);
        assert_eq!(chunks(2500, 1001).len(), 3);
    }

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("/a/b-c.toml"), "/a/b-c.toml");
        assert_eq!(shell_quote("/my dir/it's"), r"'/my dir/it'\''s'");
    }

    #[test]
    fn array_script_reads_its_line_and_runs_one_task() {
        let o = SlurmOptions {
            partition: Some("gpu".into()),
            gpus_per_task: Some(1),
            cpus_per_task: Some(4),
            mem: Some("8G".into()),
            time: Some("01:00:00".into()),
            account: Some("lab".into()),
            signal_secs: 120,
            requeue: true,
            ..Default::default()
        };
        let s = array_script(
            &o,
            "kd-x-teachers",
            Path::new("/r/x/slurm/logs"),
            Path::new("/r/x/slurm/teachers.tsv"),
            &TaskCommand {
                exe: Path::new("/bin/kd-sweep"),
                sweep: Path::new("/e/x.toml"),
                root: Path::new("/r"),
                teacher_threads: 4,
                schedule: &crate::config::ScheduleConfig {
                    devices: crate::config::Devices::Auto,
                    workers_per_device: None,
                    fuse: crate::config::Fuse::Auto,
                    fuse_max: 64,
                    checkpoint_minutes: 10,
                    numerics: Default::default(),
                    deterministic: true,
                    cuda_graphs: false,
                },
            },
        );
        for line in [
            "#SBATCH --job-name=kd-x-teachers",
            "#SBATCH --output=/r/x/slurm/logs/%x_%A_%a.out",
            "#SBATCH --partition=gpu",
            "#SBATCH --account=lab",
            "#SBATCH --cpus-per-task=4",
            "#SBATCH --gpus-per-task=1",
            "#SBATCH --signal=B:TERM@120",
            "#SBATCH --requeue",
            "#SBATCH --mem=8G",
            "#SBATCH --time=01:00:00",
            "line=$(( ${KD_OFFSET:-0} + SLURM_ARRAY_TASK_ID + 1 ))",
            "task=$(sed -n \"${line}p\" /r/x/slurm/teachers.tsv)",
            "exec /bin/kd-sweep run /e/x.toml --results /r --teacher-threads 4 --numerics portable \
             --deterministic --task \"$task\"",
        ] {
            assert!(s.lines().any(|l| l == line), "missing {line:?} in\n{s}");
        }
    }
}
