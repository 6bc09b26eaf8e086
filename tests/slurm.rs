//! kd-sweep against a real single-node SLURM (slurmctld + slurmd on this machine, started by
//! scripts/slurm-local.sh, which installs slurm-wlm and munge when missing). When the cluster cannot
//! start, these tests fail and say why; they never pass silently.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

static CLUSTER: Mutex<Option<PathBuf>> = Mutex::new(None);

/// The running cluster's slurm.conf (starting the cluster once per test binary).
fn cluster() -> PathBuf {
    let mut c = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(conf) = c.as_ref() {
        return conf.clone();
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/slurm-local.sh");
    let o = Command::new("bash")
        .args([script, "start"])
        .output()
        .expect("running scripts/slurm-local.sh");
    assert!(
        o.status.success(),
        "a local SLURM cluster could not be started, so the SLURM tests cannot run here:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let conf = PathBuf::from(String::from_utf8_lossy(&o.stdout).trim());
    *c = Some(conf.clone());
    conf
}

fn slurm_cmd(conf: &PathBuf, program: &str) -> Command {
    let mut c = Command::new(program);
    c.env("SLURM_CONF", conf);
    c
}

/// Waits until none of this sweep's jobs is queued or running. The deadline only detects a hang: a
/// loaded 2-core CI machine (the other test lane beside this one) has run a task 3× slower than an
/// idle one, and 5 minutes were once too few. When it trips, the tasks' logs say whether they were
/// still making progress.
fn wait_for(conf: &PathBuf, results: &Path, name: &str) {
    let mut out = String::new();
    let gone = common::wait_for(15 * 60, 500, || {
        let o = slurm_cmd(conf, "squeue")
            .args(["-h", "-o", "%i %j %T"])
            .output()
            .unwrap();
        out = String::from_utf8_lossy(&o.stdout).into_owned();
        !out.lines().any(|l| l.contains(&format!("kd-{name}-")))
    });
    if !gone {
        panic!(
            "SLURM jobs still queued after 15 minutes:\n{out}\nthe tasks' logs, last lines:\n{}",
            log_tails(&results.join(name).join("slurm/logs"))
        );
    }
}

/// The last lines of every log in `dir`, each under its file name.
fn log_tails(dir: &Path) -> String {
    let mut logs: Vec<_> = std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    logs.sort();
    logs.iter()
        .map(|p| {
            let text = std::fs::read_to_string(p).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = lines[lines.len().saturating_sub(8)..].join("\n");
            format!("── {}\n{tail}", p.display())
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The job ids `kd-sweep slurm --submit` printed for the students' arrays.
fn student_jobs(out: &str) -> Vec<String> {
    let line = out
        .lines()
        .find(|l| l.starts_with("submitted:"))
        .unwrap_or_else(|| panic!("no job ids in:\n{out}"));
    let list = line
        .split("students [")
        .nth(1)
        .and_then(|r| r.split(']').next())
        .unwrap_or("");
    list.split(',')
        .map(|s| s.trim().trim_matches('"').to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

fn submit(c: &Case, conf: &PathBuf, sweep: &str) -> String {
    let o = c
        .cmd()
        .env("SLURM_CONF", conf)
        .args(["slurm", sweep, "--results", "out", "--submit"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn run_ids(c: &Case, name: &str) -> Vec<String> {
    let o = c.run(&["report", &format!("out/{name}")]);
    assert!(o.status.success(), "{}", text(&o));
    let mut ids: Vec<String> = csv_rows(&c.path(&format!("out/{name}/runs.csv")))
        .into_iter()
        .filter(|r| r["status"] == "done")
        .map(|r| r["run_id"].clone())
        .collect();
    ids.sort();
    ids
}

#[test]
fn a_sweep_submitted_as_job_arrays_runs_every_node_exactly_once() {
    let conf = cluster();
    let c = Case::new(200, 60);
    // 2 teachers; 2 baselines + 8 students: more than MaxArraySize (4), so the students' array is split
    c.sweep("sl", &body("[0, 1]", "[1, 4]", "[0.5, 0.9]"));
    let out = submit(&c, &conf, "sl.toml");
    assert!(
        out.contains("unfinished nodes: 2 teacher(s), 10 student(s)"),
        "{out}"
    );
    assert_eq!(
        student_jobs(&out).len(),
        3,
        "10 students in arrays of at most 4: {out}"
    );
    let slurm = c.path("out/sl/slurm");
    for f in [
        "teachers.sbatch",
        "students.sbatch",
        "report.sbatch",
        "teachers.tsv",
        "students.tsv",
    ] {
        assert!(slurm.join(f).is_file(), "{f}");
    }
    wait_for(&conf, &c.path("out"), "sl");
    let ids = run_ids(&c, "sl");
    assert_eq!(ids.len(), 12, "{ids:?}");
    let mut unique = ids.clone();
    unique.dedup();
    assert_eq!(unique.len(), 12, "a node ran twice");
    // the report job ran after both arrays and its log is there
    let logs: Vec<String> = std::fs::read_dir(slurm.join("logs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        logs.iter().any(|l| l.starts_with("kd-sl-report_")),
        "{logs:?}"
    );
    assert!(
        logs.iter()
            .filter(|l| l.starts_with("kd-sl-students_"))
            .count()
            >= 10,
        "{logs:?}"
    );
    // everything finished: another submission has nothing to do
    let again = submit(&c, &conf, "sl.toml");
    assert!(again.contains("nothing to submit"), "{again}");
}

#[test]
fn after_cancelling_part_of_the_students_only_the_missing_tasks_run() {
    let conf = cluster();
    let c = Case::new(200, 60);
    c.sweep("sc", &body("[0]", "[1, 2, 4]", "[0.5]"));
    let out = submit(&c, &conf, "sc.toml");
    let students = student_jobs(&out);
    // the students wait for the teacher (afterok): cancel two of them before they start
    let first = &students[0];
    let o = slurm_cmd(&conf, "scancel")
        .args([format!("{first}_1"), format!("{first}_2")])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "scancel: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    wait_for(&conf, &c.path("out"), "sc");
    let before = run_ids(&c, "sc");
    assert_eq!(
        before.len(),
        5 - 2,
        "two students were cancelled: {before:?}"
    );
    let kept = record_mtimes(&c.path("out/sc"));

    let out = submit(&c, &conf, "sc.toml");
    assert!(
        out.contains("unfinished nodes: 0 teacher(s), 2 student(s)"),
        "{out}"
    );
    let table = std::fs::read_to_string(c.path("out/sc/slurm/students.tsv")).unwrap();
    assert_eq!(
        table.lines().count(),
        2,
        "only the missing tasks are submitted: {table}"
    );
    wait_for(&conf, &c.path("out"), "sc");
    let after = run_ids(&c, "sc");
    assert_eq!(after.len(), 5, "{after:?}");
    let now = record_mtimes(&c.path("out/sc"));
    for (k, t) in &kept {
        assert_eq!(now.get(k), Some(t), "{k} ran again");
    }
}

/// The job ids of this sweep's jobs that are still queued or running, with their names and states.
fn queued(conf: &PathBuf, name: &str) -> Vec<(String, String, String)> {
    let o = slurm_cmd(conf, "squeue")
        .args(["-h", "-o", "%i %j %T %r"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter(|l| l.contains(&format!("kd-{name}-")))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (
                f[0].to_string(),
                f[1].to_string(),
                f[2..].join(" ").to_string(),
            )
        })
        .collect()
}

/// The scenario SLURM users meet most: a task whose time limit is shorter than its run. At the limit
/// SLURM sends SIGTERM (then SIGKILL after KillWait); the teacher saves a checkpoint at its next step
/// and exits; the resubmitted task continues from it; the finished sweep has the numbers of an
/// uninterrupted run of the same sweep, record for record and epoch for epoch.
#[test]
fn a_task_killed_by_its_time_limit_continues_after_resubmission_with_the_same_numbers() {
    let conf = cluster();
    // a teacher that needs well over SLURM's smallest time limit (1 minute; limits are enforced
    // every 30 s or so) under SLURM, where each of its 228 steps also sleeps 0.8 s
    // (KD_SWEEP_STEP_SLEEP_MS: wall time without the computing, which took this test over 4
    // minutes of two busy cores), and one student
    let c = Case::new(600, 100);
    let body = body("[0]", "[2]", "[0.5]")
        .replace("[teacher]\nepochs = 1", "[teacher]\nepochs = 6")
        .replace("[student]\nepochs = 2", "[student]\nepochs = 1")
        + "baseline = false\n";
    let s = c.sweep("tl", &body);
    let sweep = s.to_str().unwrap();
    // the uninterrupted run, on the other core meanwhile (SLURM tasks get --teacher-threads 1 here)
    let whole = c
        .cmd()
        .args([sweep, "--results", "whole", "-q", "--teacher-threads", "1"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();

    let o = c
        .cmd()
        .env("SLURM_CONF", &conf)
        .env("KD_SWEEP_STEP_SLEEP_MS", "800")
        .args([
            "slurm",
            sweep,
            "--results",
            "out",
            "--time",
            "1",
            "--signal-secs",
            "0",
            "--submit",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let script = std::fs::read_to_string(c.path("out/tl/slurm/teachers.sbatch")).unwrap();
    assert!(script.contains("#SBATCH --time=1\n"), "{script}");
    // wait until the teacher's task has left the queue (killed at its limit)
    let deadline = Instant::now() + Duration::from_secs(400);
    while queued(&conf, "tl")
        .iter()
        .any(|j| j.1.ends_with("-teachers"))
    {
        assert!(Instant::now() < deadline, "the teacher's task never ended");
        std::thread::sleep(Duration::from_millis(500));
    }
    let dir = c.path("out/tl");
    assert!(
        !dir.join("records").exists() || record_mtimes(&dir).is_empty(),
        "the teacher finished within its time limit: make it longer"
    );
    let log = |prefix: &str| -> String {
        std::fs::read_dir(dir.join("slurm/logs"))
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
            .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    };
    let first = log("kd-tl-teachers_");
    assert!(
        first.contains("stopped; its checkpoint is kept"),
        "the teacher was not stopped by SIGTERM at its limit:\n{first}"
    );
    // its student waits on an `afterok` that can no longer hold: a new submission says so and names
    // the job to cancel; cancel it, as the user is told to
    let stuck = |j: &(String, String, String)| j.2.contains("DependencyNeverSatisfied");
    assert!(
        common::wait_for(120, 500, || queued(&conf, "tl").iter().any(stuck)),
        "the student did not end up waiting on a dead dependency: {:?}",
        queued(&conf, "tl")
    );
    let o = c
        .cmd()
        .env("SLURM_CONF", &conf)
        .args(["slurm", sweep, "--results", "out", "--submit"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("will never start: `scancel "),
        "{}",
        text(&o)
    );
    let left: Vec<String> = queued(&conf, "tl").into_iter().map(|j| j.0).collect();
    let o = slurm_cmd(&conf, "scancel").args(&left).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    wait_for(&conf, &c.path("out"), "tl");
    for f in std::fs::read_dir(dir.join("slurm/logs")).unwrap().flatten() {
        std::fs::remove_file(f.path()).unwrap();
    }

    // resubmitted without a limit: the teacher continues from its checkpoint
    let out = submit(&c, &conf, sweep);
    assert!(
        out.contains("unfinished nodes: 1 teacher(s), 1 student(s)"),
        "{out}"
    );
    wait_for(&conf, &c.path("out"), "tl");
    let second = log("kd-tl-teachers_");
    assert!(
        second.contains("teacher-s0: continuing from its checkpoint"),
        "{second}"
    );
    let o = c.run(&["report", "out/tl"]);
    assert!(o.status.success(), "{}", text(&o));

    let o = whole.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        records_without_clock(&c.path("whole/tl")),
        records_without_clock(&dir)
    );
    assert_eq!(
        epochs_without_clock(&c.path("whole/tl")),
        epochs_without_clock(&dir)
    );
}
