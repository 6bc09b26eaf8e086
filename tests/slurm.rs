//! kd-sweep against a real single-node SLURM (slurmctld + slurmd on this machine, started by
//! scripts/slurm-local.sh, which installs slurm-wlm and munge when missing). When the cluster cannot
//! start, these tests fail and say why; they never pass silently.

mod common;
use common::*;
use std::path::PathBuf;
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

/// Waits until none of this sweep's jobs is queued or running.
fn wait_for(conf: &PathBuf, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let o = slurm_cmd(conf, "squeue")
            .args(["-h", "-o", "%i %j %T"])
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        if !out.lines().any(|l| l.contains(&format!("kd-{name}-"))) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "SLURM jobs still queued after 5 minutes:\n{out}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
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
    wait_for(&conf, "sl");
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
    wait_for(&conf, "sc");
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
    wait_for(&conf, "sc");
    let after = run_ids(&c, "sc");
    assert_eq!(after.len(), 5, "{after:?}");
    let now = record_mtimes(&c.path("out/sc"));
    for (k, t) in &kept {
        assert_eq!(now.get(k), Some(t), "{k} ran again");
    }
}
