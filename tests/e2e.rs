//! The real binary on small generated data: outputs, resume, reproducibility, the teacher cache,
//! failures that stay alone, and bad input.

mod common;
use common::*;
use sha2::Digest;
use std::collections::HashMap;

const T: &str = "[1, 4]";
const A: &str = "[0.5, 0.9]";

#[test]
fn end_to_end_writes_every_output() {
    let c = Case::new(300, 100);
    // the tutorial teacher, which learns the synthetic classes in one epoch (checked below)
    let tutorial = body("[0, 1]", T, A).replace("model = \"resnet8\"\n", "");
    let s = c.sweep("e2e", &tutorial);
    let o = c.run(&[s.to_str().unwrap(), "--results", "out"]);
    assert!(o.status.success(), "{}", text(&o));
    let dir = c.path("out/e2e");

    let runs = csv_rows(&dir.join("runs.csv"));
    assert_eq!(
        runs.len(),
        2 + 2 + 2 * 4,
        "teacher, baseline and 4 students per seed"
    );
    for col in [
        "run_id",
        "role",
        "seed",
        "temperature",
        "alpha",
        "epochs",
        "val_acc",
        "test_acc",
        "best_epoch",
        "best_val_acc",
        "test_acc_at_best",
        "seconds",
        "device",
        "status",
    ] {
        assert!(runs[0].contains_key(col), "runs.csv lacks {col}");
    }
    assert!(runs
        .iter()
        .all(|r| r["status"] == "done" && r["device"] == "cpu"));
    let count = |role: &str| runs.iter().filter(|r| r["role"] == role).count();
    assert_eq!(
        (count("teacher"), count("baseline"), count("student")),
        (2, 2, 8)
    );
    let teacher = runs.iter().find(|r| r["role"] == "teacher").unwrap();
    assert_eq!(
        (teacher["temperature"].as_str(), teacher["alpha"].as_str()),
        ("", ""),
        "empty cells where a column does not apply"
    );
    let student = runs
        .iter()
        .find(|r| r["run_id"] == "student-T4-a0.9-s1")
        .unwrap();
    assert_eq!(
        (
            student["temperature"].as_str(),
            student["alpha"].as_str(),
            student["seed"].as_str()
        ),
        ("4", "0.9", "1")
    );
    for r in &runs {
        let acc: f64 = r["test_acc"].parse().unwrap();
        assert!((0.0..=100.0).contains(&acc));
    }
    // the synthetic classes are learnable: the teacher must beat chance by far
    assert!(
        teacher["test_acc"].parse::<f64>().unwrap() > 50.0,
        "{teacher:?}"
    );

    let epochs = csv_rows(&dir.join("epochs.csv"));
    assert_eq!(epochs.len(), 2 + 10 * 2, "one row per run and epoch");
    for col in [
        "run_id",
        "role",
        "seed",
        "temperature",
        "alpha",
        "epoch",
        "train_loss",
        "val_acc",
        "seconds",
    ] {
        assert!(epochs[0].contains_key(col), "epochs.csv lacks {col}");
    }
    // the test set is looked at once per run, not per epoch
    assert!(
        !epochs[0].contains_key("test_acc"),
        "epochs.csv has test_acc"
    );

    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["sweep"]["name"], "e2e");
    assert!(
        manifest["libtorch_version"]
            .as_str()
            .unwrap()
            .starts_with("2.11"),
        "{manifest}"
    );
    assert_eq!(manifest["runs"]["done"], 12);
    assert!(manifest["started_at"].as_u64().unwrap() <= manifest["finished_at"].as_u64().unwrap());

    let png = std::fs::File::open(dir.join("charts/accuracy_vs_temperature.png")).unwrap();
    let mut reader = png::Decoder::new(std::io::BufReader::new(png))
        .read_info()
        .unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), (1000, 620));
    let px = &buf[..info.buffer_size()];
    let distinct: std::collections::HashSet<&[u8]> = px.chunks(3).collect();
    assert!(distinct.len() > 20, "the chart is blank");
    let svg = std::fs::read_to_string(dir.join("charts/accuracy_vs_temperature.svg")).unwrap();
    for label in [
        "distillation temperature",
        "student test accuracy",
        "α = 0.5",
        "α = 0.9",
        "teacher",
        "baseline student",
    ] {
        assert!(svg.contains(label), "svg lacks {label:?}");
    }
    // the closing table (on stdout) names the teacher, the baseline and the choice made by
    // validation
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("teacher")
            && out.contains("baseline student")
            && out.contains("best by validation"),
        "{out}"
    );
}

#[test]
fn rerun_trains_nothing_and_editing_the_grid_trains_only_new_runs() {
    let c = Case::new(200, 60);
    let s = c.sweep("resume", &body("[0]", "[2]", "[0.5]"));
    assert!(c
        .run(&[s.to_str().unwrap(), "--results", "out"])
        .status
        .success());
    let dir = c.path("out/resume");
    let before = record_mtimes(&dir);
    assert_eq!(before.len(), 3);
    let o = c.run(&[s.to_str().unwrap(), "--results", "out"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("3 runs (3 already done)"),
        "{}",
        text(&o)
    );
    assert_eq!(
        record_mtimes(&dir),
        before,
        "a rerun rewrote finished records"
    );

    // add a temperature: only the new student trains, and runs.csv shows the current sweep
    let s = c.sweep("resume", &body("[0]", "[2, 8]", "[0.5]"));
    let o = c.run(&[s.to_str().unwrap(), "--results", "out"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("4 runs (3 already done)"),
        "{}",
        text(&o)
    );
    let after = record_mtimes(&dir);
    for (k, t) in &before {
        assert_eq!(after.get(k), Some(t), "{k} was rewritten");
    }
    assert_eq!(csv_rows(&dir.join("runs.csv")).len(), 4);
    // shrink it again: the extra record stays on disk, runs.csv follows the file
    let s = c.sweep("resume", &body("[0]", "[2]", "[0.5]"));
    assert!(c
        .run(&[s.to_str().unwrap(), "--results", "out"])
        .status
        .success());
    assert_eq!(csv_rows(&dir.join("runs.csv")).len(), 3);
    assert_eq!(
        record_mtimes(&dir).len(),
        4,
        "records of runs no longer in the sweep are kept"
    );
}

/// runs.csv and epochs.csv without the columns that measure time or place.
type Rows = Vec<HashMap<String, String>>;

fn numbers(dir: &std::path::Path) -> (Rows, Rows) {
    let strip = |mut rows: Rows| {
        for r in &mut rows {
            r.remove("seconds");
            r.remove("device");
        }
        rows
    };
    (
        strip(csv_rows(&dir.join("runs.csv"))),
        strip(csv_rows(&dir.join("epochs.csv"))),
    )
}

#[test]
fn one_and_two_workers_give_identical_numbers() {
    let c = Case::new(240, 80);
    let s = c.sweep("repro", &body("[0, 1]", "[1, 4]", "[0.5]"));
    for (w, root) in [("1", "one"), ("2", "two")] {
        let o = c.run(&[
            s.to_str().unwrap(),
            "--results",
            root,
            "--workers-per-device",
            w,
        ]);
        assert!(o.status.success(), "{}", text(&o));
    }
    let (runs1, epochs1) = numbers(&c.path("one/repro"));
    let (runs2, epochs2) = numbers(&c.path("two/repro"));
    assert_eq!(runs1.len(), 8);
    assert_eq!(runs1, runs2);
    assert_eq!(epochs1, epochs2);
    // and the numbers are not trivially equal: students at different T differ somewhere
    let losses: std::collections::HashSet<&String> = epochs1
        .iter()
        .filter(|r| r["role"] == "student")
        .map(|r| &r["train_loss"])
        .collect();
    assert!(losses.len() > 1);
}

#[test]
fn a_second_sweep_reuses_the_teacher_and_a_corrupt_cache_is_rebuilt() {
    let c = Case::new(200, 60);
    let a = c.sweep("first", &body("[0]", "[2]", "[0.5]"));
    assert!(c
        .run(&[a.to_str().unwrap(), "--results", "out"])
        .status
        .success());
    let b = c.sweep("second", &body("[0]", "[3, 5]", "[0.5]"));
    let plan = c.run(&["plan", b.to_str().unwrap(), "--results", "out"]);
    assert!(plan.status.success(), "{}", text(&plan));
    let plan_text = String::from_utf8_lossy(&plan.stdout);
    assert!(
        plan_text
            .lines()
            .any(|l| l.starts_with("teacher-s0") && l.contains("cached")),
        "{plan_text}"
    );
    let o = c.run(&[b.to_str().unwrap(), "--results", "out"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        !String::from_utf8_lossy(&o.stderr).contains("teacher-s0 done in"),
        "the teacher was trained again: {}",
        text(&o)
    );
    let ta = csv_rows(&c.path("out/first/runs.csv"))
        .into_iter()
        .find(|r| r["role"] == "teacher")
        .unwrap();
    let tb = csv_rows(&c.path("out/second/runs.csv"))
        .into_iter()
        .find(|r| r["role"] == "teacher")
        .unwrap();
    assert_eq!(ta["test_acc"], tb["test_acc"]);

    // truncate the cached logits: a warning, and the teacher is retrained, not trusted
    let cache = c.path("out/.cache/teachers");
    let entry = std::fs::read_dir(&cache)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let logits = entry.join("logits.safetensors");
    let bytes = std::fs::read(&logits).unwrap();
    std::fs::write(&logits, &bytes[..bytes.len() / 2]).unwrap();
    let o = c.run(&[b.to_str().unwrap(), "--results", "out"]);
    assert!(o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("warning: cached teacher for teacher-s0 is corrupt")
            && err.contains("teacher-s0 done in"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(&logits).unwrap().len(),
        bytes.len(),
        "the cache entry was rebuilt"
    );
}

#[test]
fn a_failing_run_fails_alone_and_a_rerun_retries_it() {
    let c = Case::new(200, 60);
    let s = c.sweep("fail", &body("[0]", "[2, 4]", "[0.5]"));
    let o = c
        .cmd()
        .args([s.to_str().unwrap(), "--results", "out"])
        .env("KD_SWEEP_FAIL_RUN", "student-T2-a0.5-s0")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let runs = csv_rows(&c.path("out/fail/runs.csv"));
    assert_eq!(runs.len(), 4);
    let failed = runs
        .iter()
        .find(|r| r["run_id"] == "student-T2-a0.5-s0")
        .unwrap();
    assert_eq!(failed["status"], "failed");
    assert!(failed["error"].contains("injected failure"), "{failed:?}");
    assert!(runs
        .iter()
        .filter(|r| r["run_id"] != "student-T2-a0.5-s0")
        .all(|r| r["status"] == "done"));
    // nothing is left to train until the next run retries it: no ETA
    let o = c.run(&["status", "out/fail"]);
    let said = String::from_utf8_lossy(&o.stdout);
    assert!(
        said.contains("3 done, 1 failed, 0 running, 0 pending") && !said.contains("ETA"),
        "{said}"
    );
    let o = c.run(&[s.to_str().unwrap(), "--results", "out"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("4 runs (3 already done)"),
        "{}",
        text(&o)
    );
    assert!(csv_rows(&c.path("out/fail/runs.csv"))
        .iter()
        .all(|r| r["status"] == "done"));
}

#[test]
fn a_crashing_worker_process_fails_one_run_only() {
    let c = Case::new(200, 60);
    let s = c.sweep("crash", &body("[0]", "[2, 4]", "[0.5]"));
    let o = c
        .cmd()
        .args([s.to_str().unwrap(), "--results", "out"])
        .env("KD_SWEEP_CRASH_RUN", "student-T4-a0.5-s0")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let runs = csv_rows(&c.path("out/crash/runs.csv"));
    let crashed = runs
        .iter()
        .find(|r| r["run_id"] == "student-T4-a0.5-s0")
        .unwrap();
    assert_eq!(crashed["status"], "failed");
    assert!(
        crashed["error"].contains("worker process crashed"),
        "{crashed:?}"
    );
    assert_eq!(runs.iter().filter(|r| r["status"] == "done").count(), 3);
}

#[test]
fn a_failed_teacher_fails_its_students_with_the_reason() {
    let c = Case::new(200, 60);
    let s = c.sweep("tfail", &body("[0, 1]", "[2]", "[0.5]"));
    let o = c
        .cmd()
        .args([s.to_str().unwrap(), "--results", "out"])
        .env("KD_SWEEP_FAIL_RUN", "teacher-s1")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let runs = csv_rows(&c.path("out/tfail/runs.csv"));
    let st = runs
        .iter()
        .find(|r| r["run_id"] == "student-T2-a0.5-s1")
        .unwrap();
    assert_eq!(st["status"], "failed");
    assert!(st["error"].contains("teacher teacher-s1 failed"), "{st:?}");
    assert!(runs
        .iter()
        .filter(|r| r["seed"] == "0")
        .all(|r| r["status"] == "done"));
}

#[test]
fn sigkill_then_rerun_leaves_every_run_exactly_once() {
    let c = Case::new(400, 60);
    let body = body("[0]", "[1, 2, 4, 8]", "[0.5, 0.9]").replace("epochs = 2", "epochs = 6");
    let s = c.sweep("kill", &body);
    let mut child = c.spawn(&[s.to_str().unwrap(), "--results", "out", "-q"]);
    let dir = c.path("out/kill");
    assert!(
        wait_for(120, 50, || record_mtimes(&dir).len() >= 3),
        "no records appeared"
    );
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let survived = record_mtimes(&dir);
    assert!(
        survived.len() < 10,
        "the sweep finished before the kill; make it longer"
    );
    let o = c.run(&[s.to_str().unwrap(), "--results", "out"]);
    assert!(o.status.success(), "{}", text(&o));
    let runs = csv_rows(&dir.join("runs.csv"));
    let mut ids: Vec<&String> = runs.iter().map(|r| &r["run_id"]).collect();
    assert_eq!(ids.len(), 10);
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 10, "a run appears twice");
    assert!(runs.iter().all(|r| r["status"] == "done"));
    let after = record_mtimes(&dir);
    for (k, t) in &survived {
        assert_eq!(after.get(k), Some(t), "{k} was retrained");
    }
    // no temporary files are left behind
    for e in std::fs::read_dir(dir.join("records")).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(name.ends_with(".json") && !name.starts_with('.'), "{name}");
    }
}

#[test]
fn a_bad_sweep_file_exits_2_and_creates_nothing() {
    let c = Case::new(100, 20);
    let s = c.sweep("bad", &body("[0]", "[0, 2]", "[0.5]"));
    let o = c.run(&[s.to_str().unwrap(), "--results", "out"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("bad.toml:") && err.contains("grid.temperature") && err.contains("> 0"),
        "{err}"
    );
    assert!(
        !c.path("out").exists(),
        "something was created under the results root"
    );
    // a subset larger than the data is caught before anything is created, with the key's position
    let s = c.sweep(
        "big",
        &body("[0]", "[2]", "[0.5]")
            .replace("validation = 40", "validation = 40\ntrain_subset = 99999"),
    );
    let o = c.run(&[s.to_str().unwrap(), "--results", "out"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("big.toml:7:") && err.contains("data.train_subset") && err.contains("60"),
        "{err}"
    );
    assert!(!c.path("out").exists());
}

#[test]
fn missing_dataset_exits_1_with_what_to_do() {
    let c = Case::new(100, 20);
    let s = c.sweep(
        "nodata",
        &body("[0]", "[2]", "[0.5]").replace("path = \"data\"", "path = \"nowhere\""),
    );
    let o = c.run(&[s.to_str().unwrap(), "--results", "out"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("nowhere") && err.contains("data.path"),
        "{err}"
    );
}

#[test]
fn help_explains_the_sweep_file() {
    let c = Case::new(10, 10);
    let o = c.run(&["--help"]);
    assert!(o.status.success());
    let out = String::from_utf8_lossy(&o.stdout);
    for s in [
        "temperature",
        "alpha",
        "README",
        "--results",
        "plan",
        "torchscript:",
        "optimizer",
        "crop-flip",
    ] {
        assert!(out.contains(s), "--help lacks {s}: {out}");
    }
}

#[test]
fn ctrl_c_stops_cleanly_and_the_rerun_resumes() {
    let c = Case::new(400, 60);
    let body = body("[0]", "[1, 2, 4, 8]", "[0.5, 0.9]").replace("epochs = 2", "epochs = 6");
    let s = c.sweep("intr", &body);
    let child = c
        .cmd()
        .args([s.to_str().unwrap(), "--results", "out"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let dir = c.path("out/intr");
    assert!(
        wait_for(120, 50, || record_mtimes(&dir).len() >= 3),
        "no records appeared"
    );
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("stopping") && err.contains("run the same command again to resume"),
        "{err}"
    );
    // what finished is written out, well-formed, and every row is a finished run
    let runs = csv_rows(&dir.join("runs.csv"));
    let kept = record_mtimes(&dir);
    assert_eq!(runs.len(), kept.len());
    assert!(
        runs.len() < 10 && runs.iter().all(|r| r["status"] == "done"),
        "{runs:?}"
    );
    let o = c.run(&[s.to_str().unwrap(), "--results", "out"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(csv_rows(&dir.join("runs.csv")).len(), 10);
    let after = record_mtimes(&dir);
    for (k, t) in &kept {
        assert_eq!(after.get(k), Some(t), "{k} was retrained");
    }
}

/// A sweep stopped while its worker still starts (loading libtorch, initialising CUDA: here a
/// testing hook's 3 s) stops its runs, records none of them as failed, and the rerun trains them
/// all. The coordinator's SIGTERM to the worker is held until the worker's handler is in place;
/// before that, it killed the worker and the teacher and its students were recorded as crashed.
#[test]
fn a_sweep_stopped_while_its_worker_starts_records_no_run_as_failed() {
    let c = Case::new(400, 60);
    let s = c.sweep("early", &body("[0]", "[4]", "[0.5]"));
    let sweep = s.to_str().unwrap();
    let child = c
        .cmd()
        .args([sweep, "--results", "out", "--workers-per-device", "1"])
        .env("KD_SWEEP_SLOW_WORKER_START", "3000")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let dir = c.path("out/early");
    // the teacher's job is sent (its progress file) while the worker sleeps
    let in_flight = || {
        std::fs::read_dir(dir.join("progress")).is_ok_and(|rd| {
            rd.flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with("teacher-s0"))
        })
    };
    assert!(wait_for(60, 10, in_flight), "the teacher was never sent");
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(143), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("FAILED") && !err.contains("crashed"), "{err}");
    assert!(record_mtimes(&dir).is_empty(), "a run was recorded: {err}");
    let o = c.run(&[sweep, "--results", "out"]);
    assert!(o.status.success(), "{}", text(&o));
    // it stopped before its first step: no checkpoint of nothing to continue from
    assert!(
        !String::from_utf8_lossy(&o.stderr).contains("continuing from its checkpoint"),
        "{}",
        text(&o)
    );
    let runs = csv_rows(&dir.join("runs.csv"));
    assert_eq!(runs.len(), 3, "{runs:?}");
    assert!(runs.iter().all(|r| r["status"] == "done"), "{runs:?}");
}

/// A reader that goes away (`kd-sweep run … 2>&1 | head -1`, a closed terminal) stops the sweep as
/// a first Ctrl-C does — never a panic (exit 101) — and the rerun finishes it.
#[test]
fn a_closed_output_stops_the_sweep_cleanly_and_the_rerun_finishes_it() {
    use std::io::BufRead;
    let c = Case::new(400, 60);
    let body = body("[0]", "[1, 4]", "[0.5]").replace("epochs = 2", "epochs = 6");
    let s = c.sweep("gone", &body);
    let mut child = c
        .cmd()
        .args([s.to_str().unwrap(), "--results", "out"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut first = String::new();
    err.read_line(&mut first).unwrap();
    assert!(!first.is_empty(), "nothing was said");
    drop((err, child.stdout.take()));
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{first}");
    // the outputs of a stopped sweep say so: its tables are over the runs finished so far
    let summary = || std::fs::read_to_string(c.path("out/gone/summary.md")).unwrap();
    let page = || std::fs::read_to_string(c.path("out/gone/index.html")).unwrap();
    assert!(
        summary().contains("**Not finished:** this sweep has not finished: ")
            && summary().contains("runs have no record yet")
            && summary().contains("**Verdict (so far):**"),
        "{}",
        summary()
    );
    assert!(page().contains("id=\"unfinished\""));
    let o = c.run(&[s.to_str().unwrap(), "--results", "out", "-q"]);
    assert!(o.status.success(), "{}", text(&o));
    let runs = csv_rows(&c.path("out/gone/runs.csv"));
    assert_eq!(runs.len(), 4);
    assert!(runs.iter().all(|r| r["status"] == "done"), "{runs:?}");
    assert!(
        !summary().contains("Not finished") && !page().contains("id=\"unfinished\""),
        "{}",
        summary()
    );
}

#[test]
fn a_teacher_stopped_by_sigterm_ctrl_c_twice_and_kill_9_continues_with_the_numbers_of_an_uninterrupted_run(
) {
    let c = Case::new(600, 100);
    // body's resnet8 teacher: batch norm's running statistics go through every checkpoint
    let body = body("[0]", "[2]", "[0.5]")
        .replace("[teacher]\nepochs = 1", "[teacher]\nepochs = 5")
        .replace("[student]\nepochs = 2", "[student]\nepochs = 1")
        + "baseline = false\n";
    let s = c.sweep("ck", &body);
    let sweep = s.to_str().unwrap();
    let o = c.run(&[sweep, "--results", "whole", "-q"]);
    assert!(o.status.success(), "{}", text(&o));

    let dir = c.path("part/ck");
    // the teacher's checkpoint after `epoch` epochs (or later)
    let checkpoint_at = |epoch: u32| {
        let Ok(rd) = std::fs::read_dir(dir.join("checkpoints")) else {
            return false;
        };
        rd.flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("teacher-s0."))
            .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
            .filter_map(|e| std::fs::read(e.path()).ok())
            .filter_map(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .any(|v| v["epoch"].as_u64().is_some_and(|e| e >= epoch as u64))
    };
    let start = || {
        c.cmd()
            .args([sweep, "--results", "part"])
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    // 1. SIGTERM after the first epoch: the teacher checkpoints at its next step, exit 143
    let child = start();
    assert!(
        wait_for(120, 20, || checkpoint_at(1)),
        "no checkpoint appeared"
    );
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let sent = std::time::Instant::now();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(143), "{}", text(&o));
    assert!(
        sent.elapsed().as_secs() < 30,
        "SIGTERM took {:?}",
        sent.elapsed()
    );
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("stopping (SIGTERM)"),
        "{}",
        text(&o)
    );
    assert!(
        record_mtimes(&dir).is_empty(),
        "the teacher was not finished"
    );
    // plan and status say the teacher continues from its checkpoint (no run in between)
    let o = c.run(&["plan", sweep, "--results", "part"]);
    let said = text(&o);
    assert!(
        said.lines()
            .any(|l| l.starts_with("teacher-s0 ") && l.contains(" resumes@")),
        "{said}"
    );
    let o = c.run(&["status", "part/ck"]);
    assert!(
        String::from_utf8_lossy(&o.stdout)
            .contains("(1 of the runs not in flight continue from their checkpoints"),
        "{}",
        text(&o)
    );
    // 2. continued, then kill -9 (coordinator and, through PDEATHSIG, its worker) in epoch 3 of 5
    let mut child = start();
    assert!(
        wait_for(120, 20, || checkpoint_at(2)),
        "no checkpoint after epoch 2"
    );
    child.kill().unwrap();
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("teacher-s0: continuing from its checkpoint after epoch"),
        "{err}"
    );
    // 3. continued, then Ctrl-C twice (the second press kills the workers at once) in epoch 4
    let child = start();
    assert!(
        wait_for(120, 20, || checkpoint_at(3)),
        "no checkpoint after epoch 3"
    );
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    std::thread::sleep(std::time::Duration::from_millis(50));
    // SAFETY: as above.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("teacher-s0: continuing from its checkpoint"),
        "{}",
        text(&o)
    );
    assert!(
        record_mtimes(&dir).is_empty(),
        "the teacher was not finished"
    );
    // as if another kind of machine had computed the epochs so far — and a later build written the
    // checkpoint, with a field this one does not know: its checksum is over the file as written
    let written = std::fs::read_dir(dir.join("checkpoints"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with("teacher-s0.") && name.ends_with(".json")
        })
        .expect("the teacher's checkpoint");
    let mut meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&written).unwrap()).unwrap();
    meta["machines"] = serde_json::json!(["cpu OtherVendor"]);
    meta["a_later_field"] = serde_json::json!({"checksum": "of its own"});
    meta["checksum"] = "".into();
    let unsigned = serde_json::to_vec(&meta).unwrap();
    meta["checksum"] = kd_sweep::util::hex(&sha2::Sha256::digest(&unsigned)).into();
    std::fs::write(&written, serde_json::to_vec(&meta).unwrap()).unwrap();
    // 4. the rerun continues from epoch 3, 4 or mid-epoch 4 and ends with the uninterrupted run's numbers
    let o = c.run(&[sweep, "--results", "part"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("teacher-s0: continuing from its checkpoint"),
        "{}",
        text(&o)
    );
    // the teacher's record names both kinds of machine, oldest first, and so does the summary; the
    // uninterrupted run's records name none before this one
    let mut part = records_without_clock(&dir);
    let earlier: Vec<_> = part
        .iter_mut()
        .map(|r| r.as_object_mut().unwrap().remove("earlier_machines"))
        .collect();
    let teacher = part.iter().position(|r| r["role"] == "teacher").unwrap();
    assert_eq!(
        earlier[teacher],
        Some(serde_json::json!(["cpu OtherVendor"]))
    );
    assert_eq!(earlier.iter().flatten().count(), 1, "{earlier:?}");
    let summary = std::fs::read_to_string(dir.join("summary.md")).unwrap();
    assert!(summary.contains("cpu OtherVendor, then cpu "), "{summary}");
    assert_eq!(
        records_without_clock(&c.path("whole/ck")),
        part,
        "a continued run's records differ from an uninterrupted run's"
    );
    assert_eq!(
        epochs_without_clock(&c.path("whole/ck")),
        epochs_without_clock(&dir)
    );
    // a finished run leaves no checkpoint behind, and a finished sweep no empty working folder
    let left = std::fs::read_dir(dir.join("checkpoints")).map_or(0, |rd| rd.count());
    assert_eq!(left, 0, "checkpoints left after the sweep finished");
    for working in ["checkpoints", "progress"] {
        assert!(
            !dir.join(working).exists(),
            "{working}/ left behind by a finished sweep"
        );
    }
    // the result is on stdout (`kd-sweep s.toml > result.md`), the progress on stderr
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        out.contains("| method ") && out.contains("outputs: "),
        "{out}"
    );
    assert!(!err.contains("| method ") && err.contains("[1/"), "{err}");
    // the closing line names the page and the charts, which exist
    let said = text(&o);
    let line = said
        .lines()
        .find(|l| l.starts_with("outputs: "))
        .unwrap_or("");
    for name in ["index.html", "summary.md", "runs.csv", "charts/"] {
        assert!(line.contains(name), "outputs line lacks {name}: {line}");
    }
}

#[test]
fn report_and_compare_work_from_the_records() {
    let c = Case::new(200, 60);
    let a = c.sweep("ga", &body("[0, 1]", "[1, 4]", "[0.5]"));
    // gb checkpoints more often: a setting outside the keys (so its runs are still ga's), which
    // `compare` lists as the one setting the sweeps differ in
    let b = c.sweep(
        "gb",
        &format!(
            "{}[schedule]\ncheckpoint_minutes = 5\n",
            body("[0, 1]", "[4, 8]", "[0.5]")
        ),
    );
    let o = c.run(&[a.to_str().unwrap(), "--results", "out", "-q"]);
    assert!(o.status.success(), "{}", text(&o));
    // plan says what gb would reuse and writes nothing: no folder, no copied record
    let o = c.run(&["plan", b.to_str().unwrap(), "--results", "out"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("baseline-s0: to be reused from sweep ga"),
        "{}",
        text(&o)
    );
    assert!(
        !c.path("out/gb/records").exists(),
        "plan wrote gb's records"
    );
    let o = c.run(&[b.to_str().unwrap(), "--results", "out"]);
    assert!(o.status.success(), "{}", text(&o));
    let said = text(&o);
    // run reuse: gb's baselines and its T=4 students are ga's (the same keys): copied, not trained
    let reused = [
        "baseline-s0",
        "baseline-s1",
        "student-T4-a0.5-s0",
        "student-T4-a0.5-s1",
    ];
    for id in reused {
        assert!(
            said.contains(&format!("{id}: reused from sweep ga")),
            "{id}: {said}"
        );
    }
    assert!(!said.contains("student-T8-a0.5-s0: reused"), "{said}");
    // --quiet prints errors only: a reuse is progress, so it is recorded but not said
    let q = c.sweep("gq", &body("[0]", "[1]", "[0.5]"));
    let o = c.run(&[q.to_str().unwrap(), "--results", "out", "-q"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(!text(&o).contains("reused"), "{}", text(&o));
    let copied = std::fs::read_dir(c.path("out/gq/records"))
        .unwrap()
        .flatten();
    let copied: Vec<serde_json::Value> = copied
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .map(|e| serde_json::from_slice(&std::fs::read(e.path()).unwrap()).unwrap())
        .collect();
    assert!(
        copied.iter().any(|r| r["reused_from"] == "ga"),
        "gq's runs were not reused from ga"
    );
    let record = |sweep: &str, id: &str| -> serde_json::Value {
        let dir = c.path(&format!("out/{sweep}/records"));
        let file = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .find(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with(&format!("{id}."))
            })
            .unwrap_or_else(|| panic!("{sweep}: no record of {id}"));
        serde_json::from_slice(&std::fs::read(file.path()).unwrap()).unwrap()
    };
    for id in reused {
        let (ra, rb) = (record("ga", id), record("gb", id));
        assert_eq!(rb["reused_from"], "ga", "{id}");
        assert_eq!(ra["reused_from"], serde_json::Value::Null, "{id}");
        assert_eq!(ra["history"], rb["history"], "{id}");
        assert_eq!(ra["key"], rb["key"], "{id}");
    }
    assert_eq!(
        record("gb", "student-T8-a0.5-s0")["reused_from"],
        serde_json::Value::Null
    );
    // report regenerates summary and charts from records alone
    let dir = c.path("out/ga");
    std::fs::remove_dir_all(dir.join("charts")).unwrap();
    std::fs::remove_file(dir.join("summary.md")).unwrap();
    let o = c.run(&["report", dir.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("**Verdict:**") && out.contains("| 4 | 0.5 |"),
        "{out}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("summary.md")).unwrap(),
        out
    );
    for f in [
        "accuracy_vs_temperature",
        "kd_gain_heatmap",
        "learning_curves",
    ] {
        assert!(
            dir.join(format!("charts/{f}.png")).is_file()
                && dir.join(format!("charts/{f}.svg")).is_file(),
            "{f}"
        );
    }
    let o = c.run(&["report", dir.to_str().unwrap(), "--format", "json"]);
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["summary"]["cells"].as_array().unwrap().len(), 2);

    let o = c.run(&["compare", "out/ga", "out/gb", "--out", "cmp"]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.lines().any(|l| l.starts_with("| logit | 4 | 0.5 |")),
        "{out}"
    );
    assert!(
        out.contains("| ga | logit | 1 | 0.5 |") && out.contains("| gb | logit | 8 | 0.5 |"),
        "{out}"
    );
    assert!(
        out.contains(
            "| setting | ga | gb |\n|---|---|---|\n| schedule.checkpoint_minutes | 10 | 5 |\n\n"
        ),
        "{out}"
    );
    assert!(
        c.path("cmp/compare_accuracy_vs_temperature.png").is_file()
            && c.path("cmp/compare_accuracy_vs_temperature.svg").is_file()
    );
    let o = c.run(&[
        "compare", "out/ga", "out/gb", "--out", "cmp", "--format", "json",
    ]);
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["shared"].as_array().unwrap().len(), 1);
    assert_eq!(j["only"].as_array().unwrap().len(), 2);
    assert_eq!(j["settings"].as_array().unwrap().len(), 1, "{j}");
    // a folder that is not a sweep's is a clear error
    let o = c.run(&["report", "data"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("no manifest.json"),
        "{}",
        text(&o)
    );
}

#[test]
fn the_three_families_share_the_teacher_and_have_no_temperature_duplicates() {
    let c = Case::new(200, 60);
    let body = body("[0]", "[1, 4]", "[0.5, 0.9]").replace(
        "alpha = [0.5, 0.9]",
        "alpha = [0.5, 0.9]\nmethod = [\"logit\", \"feature\", \"imitation\"]",
    );
    let s = c.sweep("fam", &body);
    let o = c.run(&[s.to_str().unwrap(), "--results", "out"]);
    assert!(o.status.success(), "{}", text(&o));
    let runs = csv_rows(&c.path("out/fam/runs.csv"));
    // teacher, baseline, 2 T × 2 α logit, 2 α feature, 2 α imitation
    assert_eq!(runs.len(), 1 + 1 + 4 + 2 + 2);
    assert_eq!(
        runs.iter().filter(|r| r["role"] == "teacher").count(),
        1,
        "one teacher for every method"
    );
    for m in ["feature", "imitation"] {
        let rows: Vec<_> = runs.iter().filter(|r| r["method"] == m).collect();
        assert_eq!(rows.len(), 2, "{m}");
        assert!(
            rows.iter()
                .all(|r| r["temperature"].is_empty() && r["status"] == "done"),
            "{rows:?}"
        );
    }
    assert!(runs
        .iter()
        .any(|r| r["run_id"] == "student-feature-a0.9-s0"));
    let epochs = csv_rows(&c.path("out/fam/epochs.csv"));
    assert!(epochs.iter().any(|r| r["method"] == "imitation"));
    // the teacher's feature maps were computed once and cached beside it
    let cache = std::fs::read_dir(c.path("out/.cache/teachers"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert!(
        cache.join("features.safetensors").is_file() && cache.join("features.sha256").is_file()
    );
    let summary = std::fs::read_to_string(c.path("out/fam/summary.md")).unwrap();
    for t in [
        "| feature | – | 0.5 |",
        "| imitation | – | 0.9 |",
        "The best of each family",
    ] {
        assert!(summary.contains(t), "summary lacks {t:?}:\n{summary}");
    }
    // index.html lists the same best of each family as summary.md, row for row
    let page = std::fs::read_to_string(c.path("out/fam/index.html")).unwrap();
    let table = &page[page.find("id=\"families\"").expect("no families table")..];
    let table = &table[..table.find("</table>").unwrap()];
    let md_rows: Vec<Vec<&str>> = (summary.split("The best of each family").nth(1).unwrap())
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| method "))
        .map(|l| l.split(" | ").collect())
        .collect();
    assert_eq!(md_rows.len(), 3, "{summary}");
    assert_eq!(table.matches("<tr>").count(), 1 + 3, "{table}");
    for r in &md_rows {
        let (family, setting) = (r[0].trim_start_matches("| "), r[1]);
        assert!(
            table.contains(&format!(
                "<td class=\"l\">{family}</td><td class=\"l\">{setting}</td>"
            )),
            "{family} {setting}: {table}"
        );
    }
    let svg =
        std::fs::read_to_string(c.path("out/fam/charts/accuracy_vs_temperature.svg")).unwrap();
    assert!(
        svg.contains("other methods") && svg.contains("feature") && svg.contains("imitation"),
        "the chart does not place the other families apart"
    );
}

#[test]
fn the_benchmark_runs_and_writes_its_report() {
    // --quick: tiny sizes, so this checks that every section runs, not the numbers; section 9 (the
    // same code in either layout) runs below, channels-last, as the GPU script's second run does
    let c = Case::new(300, 100);
    let o = c.run(&[
        "bench",
        "--quick",
        "--dataset",
        "mnist",
        "--data",
        "data",
        "--work",
        "bench-work",
        "--out",
        "BENCH.md",
        "--sections",
        "ceiling,throughput,feeding,tutorial,scaling,fused,numerics",
        "-q",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let md = std::fs::read_to_string(c.path("BENCH.md")).unwrap();
    assert_eq!(md, String::from_utf8_lossy(&o.stdout));
    for section in [
        "## 1. Ceiling",
        "## 2. Training throughput",
        "## 3. Data feeding",
        "## 4. kd-sweep against the PyTorch tutorial's method",
        "## 5. Scaling",
        "## 6. Memory",
        "| work by FLOP count, tutorial ÷ kd-sweep (the ceiling at equal speed per FLOP) |",
        "| model | default layout, batches of 1024: images/s |",
        "| mean student test accuracy (20 runs) |",
    ] {
        assert!(md.contains(section), "the report lacks {section:?}:\n{md}");
    }
    // the PyTorch side's result for the seed stays in the work folder, and is what the report shows
    let kept = std::fs::read(c.path("bench-work/tutorial-pytorch/seed-0.json")).unwrap();
    let kept: serde_json::Value = serde_json::from_slice(&kept).unwrap();
    assert_eq!(kept["students"].as_array().unwrap().len(), 20);
    let row = format!(
        "| teacher test accuracy by seed | {:.2} |",
        kept["teacher_test_acc"].as_f64().unwrap()
    );
    assert!(md.contains(&row), "the report lacks {row:?}:\n{md}");
    // section 9 with channels-last convolutions on both sides (bench/gpu-graphs.sh's second run)
    let quick = [
        "bench",
        "--quick",
        "--dataset",
        "mnist",
        "--data",
        "data",
        "-q",
    ];
    let o = c.run(&[&quick[..], &["--sections", "networks", "--channels-last"]].concat());
    assert!(o.status.success(), "{}", text(&o));
    let md = String::from_utf8_lossy(&o.stdout);
    for row in [
        "## 9. The field's networks",
        "channels-last on both sides",
        "| resnet20 | fp32, graphs |",
        "| resnet56 | bf16, graphs |",
        "| wrn-40-2 | bf16 |",
        "| resnet8x4 | fp32 |",
    ] {
        assert!(md.contains(row), "the report lacks {row:?}:\n{md}");
    }
    // every network trained (the graph protocol rehearsed on the CPU too), and PyTorch's side ran
    assert!(
        !md.contains("failed:") && !md.contains("not measured"),
        "{md}"
    );
    // the flag shapes section 9 only: asked without it, a usage error
    let o = c.run(&[&quick[..], &["--sections", "ceiling", "--channels-last"]].concat());
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("add networks to --sections"),
        "{}",
        text(&o)
    );
    // a --work folder that holds something bench did not make is refused, not emptied
    std::fs::create_dir_all(c.path("mine")).unwrap();
    std::fs::write(c.path("mine/keep.txt"), "results").unwrap();
    let o = c.run(&[&quick[..], &["--sections", "ceiling", "--work", "mine"]].concat());
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("not a folder kd-sweep bench made"),
        "{}",
        text(&o)
    );
    assert!(c.path("mine/keep.txt").exists());
}

#[test]
fn run_task_trains_exactly_one_node_and_plan_json_lists_them() {
    let c = Case::new(200, 60);
    let s = c.sweep("task", &body("[0]", "[2]", "[0.5]"));
    let o = c.run(&["plan", "--json", s.to_str().unwrap(), "--results", "out"]);
    assert!(o.status.success(), "{}", text(&o));
    let plan: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let ids: Vec<&str> = plan["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["teacher-s0", "baseline-s0", "student-T2-a0.5-s0"]);
    assert_eq!(plan["nodes"][2]["needs"], "teacher-s0");
    // a student before its teacher is refused
    let o = c.run(&[
        "run",
        s.to_str().unwrap(),
        "--results",
        "out",
        "--task",
        "student-T2-a0.5-s0",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("needs its teacher teacher-s0"),
        "{}",
        text(&o)
    );
    for id in ["teacher-s0", "student-T2-a0.5-s0"] {
        let o = c.run(&["run", s.to_str().unwrap(), "--results", "out", "--task", id]);
        assert!(o.status.success(), "{id}: {}", text(&o));
    }
    assert_eq!(
        record_mtimes(&c.path("out/task")).len(),
        2,
        "exactly the two nodes ran"
    );
    // nothing in flight or paused: no working folders left behind
    for d in ["progress", "checkpoints"] {
        assert!(!c.path("out/task").join(d).exists(), "{d}/ left");
    }
    let before = record_mtimes(&c.path("out/task"));
    let o = c.run(&[
        "run",
        s.to_str().unwrap(),
        "--results",
        "out",
        "--task",
        "teacher-s0",
    ]);
    assert!(
        o.status.success() && String::from_utf8_lossy(&o.stderr).contains("already done"),
        "{}",
        text(&o)
    );
    assert_eq!(record_mtimes(&c.path("out/task")), before);
    // --quiet: errors only, as a whole sweep's
    let o = c.run(&[
        "run",
        s.to_str().unwrap(),
        "--results",
        "out",
        "--task",
        "teacher-s0",
        "-q",
    ]);
    assert!(o.status.success() && o.stderr.is_empty(), "{}", text(&o));
    let o = c.run(&[
        "run",
        s.to_str().unwrap(),
        "--results",
        "out",
        "--task",
        "nope",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("no node \"nope\""),
        "{}",
        text(&o)
    );
}

#[test]
fn a_fused_sweep_gives_the_numbers_of_an_unfused_one() {
    let c = Case::new(300, 100);
    let base = body("[0]", "[1, 2, 4]", "[0.5, 0.9]");
    // distinct files (and names): Case::sweep writes <name>.toml
    let fused = c.sweep(
        "fzon",
        &format!("{base}[schedule]\nfuse = true\nworkers_per_device = 1\n"),
    );
    let apart = c.sweep(
        "fzoff",
        &format!("{base}[schedule]\nfuse = false\nworkers_per_device = 1\n"),
    );
    let o = c.run(&[fused.to_str().unwrap(), "--results", "fused"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("done"),
        "{}",
        text(&o)
    );
    let o = c.run(&[apart.to_str().unwrap(), "--results", "apart"]);
    assert!(o.status.success(), "{}", text(&o));
    let (fr, fe) = (
        csv_rows(&c.path("fused/fzon/runs.csv")),
        csv_rows(&c.path("fused/fzon/epochs.csv")),
    );
    let (ar, ae) = (
        csv_rows(&c.path("apart/fzoff/runs.csv")),
        csv_rows(&c.path("apart/fzoff/epochs.csv")),
    );
    assert_eq!((fr.len(), fe.len()), (ar.len(), ae.len()));
    assert_eq!(fr.len(), 1 + 1 + 6);
    // fused members share one job, so they share its wall time; apart, each run has its own
    let secs = |root: &str| {
        let dir = c.path(&format!("{root}/records"));
        let mut v: Vec<u64> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| {
                serde_json::from_slice::<serde_json::Value>(
                    &std::fs::read(e.unwrap().path()).unwrap(),
                )
                .unwrap()
            })
            .filter(|r| r["role"] == "student")
            .map(|r| r["seconds"].as_f64().unwrap().to_bits())
            .collect();
        v.sort();
        v.dedup();
        v.len()
    };
    assert_eq!(
        secs("fused/fzon"),
        1,
        "the six students were not trained as one fused group"
    );
    assert_eq!(secs("apart/fzoff"), 6);
    for (f, a) in fe.iter().zip(&ae) {
        assert_eq!(f["run_id"], a["run_id"]);
        let (lf, la): (f64, f64) = (
            f["train_loss"].parse().unwrap(),
            a["train_loss"].parse().unwrap(),
        );
        assert!(
            (lf - la).abs() <= 1e-4 * la.abs().max(1.0),
            "{}: loss {lf} fused, {la} apart",
            f["run_id"]
        );
        let (x, y): (f64, f64) = (f["val_acc"].parse().unwrap(), a["val_acc"].parse().unwrap());
        assert!(
            (x - y).abs() <= 1.0,
            "{} val_acc: {x} fused, {y} apart",
            f["run_id"]
        );
    }
    // and the test accuracies measured once at the end, of the last and the best epoch
    for (f, a) in fr.iter().zip(&ar) {
        assert_eq!(f["run_id"], a["run_id"]);
        assert_eq!(f["best_epoch"], a["best_epoch"], "{}", f["run_id"]);
        for col in ["test_acc", "test_acc_at_best"] {
            let (x, y): (f64, f64) = (f[col].parse().unwrap(), a[col].parse().unwrap());
            assert!(
                (x - y).abs() <= 1.0,
                "{} {col}: {x} fused, {y} apart",
                f["run_id"]
            );
        }
    }
}

#[test]
fn a_finished_run_from_another_device_class_is_not_mixed_in() {
    let c = Case::new(200, 60);
    let s = c.sweep("cls", &body("[0]", "[1]", "[0.5]"));
    let o = c.run(&[s.to_str().unwrap(), "--results", "out", "-q"]);
    assert!(o.status.success(), "{}", text(&o));
    let dir = c.path("out/cls/records");
    // make the student's record say it was trained on a GPU (a valid record, checksum and all)
    let path = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("student-")
        })
        .unwrap();
    let mut r = kd_sweep::store::RunRecord::from_json(&std::fs::read(&path).unwrap()).unwrap();
    r.device = "cuda:0".into();
    r.gpu = Some("NVIDIA H200, sm_90, TF32".into());
    std::fs::write(&path, r.to_json()).unwrap();
    let before = record_mtimes(&c.path("out/cls"));
    let o = c.run(&[s.to_str().unwrap(), "--results", "out"]);
    assert!(o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(
            "was trained on cuda:0 (NVIDIA H200, sm_90, TF32), but this sweep runs on cpu"
        ),
        "{err}"
    );
    let after = record_mtimes(&c.path("out/cls"));
    for (k, t) in &before {
        let retrained = after.get(k) != Some(t);
        assert_eq!(retrained, k.starts_with("student-"), "{k}");
    }
    let rows = csv_rows(&c.path("out/cls/runs.csv"));
    assert!(rows.iter().all(|r| r["device"] == "cpu"), "{rows:?}");
}

#[test]
fn a_second_coordinator_of_the_same_sweep_refuses_and_a_dead_ones_lock_is_taken_over() {
    let c = Case::new(400, 60);
    let body = body("[0]", "[1, 2, 4, 8]", "[0.5, 0.9]").replace("epochs = 2", "epochs = 6");
    let s = c.sweep("once", &body);
    let mut first = c.spawn(&[s.to_str().unwrap(), "--results", "out", "-q"]);
    let lock = c.path("out/once/.coordinator.lock");
    assert!(wait_for(60, 20, || lock.exists()), "no lock appeared");
    // a second invocation while the first runs: refused at once, naming the first
    let t = std::time::Instant::now();
    let o = c.run(&[s.to_str().unwrap(), "--results", "out"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        err.contains(&format!("another kd-sweep (pid {} on host", first.id())),
        "{err}"
    );
    assert!(t.elapsed().as_secs() < 10, "it did not refuse at once");
    // `plan`, `status` and `report`-style readers still work meanwhile
    let o = c.run(&["plan", s.to_str().unwrap(), "--results", "out"]);
    assert!(o.status.success(), "{}", text(&o));
    // the first one dies without cleaning up: its lock is taken over
    first.kill().unwrap();
    first.wait().unwrap();
    assert!(lock.exists(), "a killed coordinator cannot remove its lock");
    let o = c.run(&[s.to_str().unwrap(), "--results", "out"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("taking over the sweep from kd-sweep pid"),
        "{}",
        text(&o)
    );
    assert!(
        !lock.exists(),
        "the lock is removed when the coordinator ends"
    );
}

#[test]
fn a_fused_group_stopped_by_sigterm_continues_with_the_numbers_of_an_uninterrupted_one() {
    let c = Case::new(600, 100);
    let body = body("[0]", "[1, 4]", "[0.5, 0.9]")
        .replace("[student]\nepochs = 2", "[student]\nepochs = 4")
        + "baseline = false\n[schedule]\nfuse = true\nworkers_per_device = 1\n";
    let s = c.sweep("fck", &body);
    let sweep = s.to_str().unwrap();
    let o = c.run(&[sweep, "--results", "whole", "-q"]);
    assert!(o.status.success(), "{}", text(&o));

    let dir = c.path("part/fck");
    // every member of the group keeps its own checkpoint
    let members_at = |epoch: u64| {
        let Ok(rd) = std::fs::read_dir(dir.join("checkpoints")) else {
            return 0;
        };
        rd.flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("student-"))
            .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
            .filter_map(|e| std::fs::read(e.path()).ok())
            .filter_map(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .filter(|v| v["epoch"].as_u64().is_some_and(|e| e >= epoch))
            .count()
    };
    let child = c
        .cmd()
        .args([sweep, "--results", "part"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    assert!(
        wait_for(180, 20, || members_at(2) == 4),
        "the fused group's members kept no checkpoints"
    );
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(143), "{}", text(&o));
    let students_done = record_mtimes(&dir)
        .keys()
        .filter(|k| k.starts_with("student-"))
        .count();
    assert_eq!(students_done, 0, "the group had finished: {}", text(&o));

    let o = c.run(&[sweep, "--results", "part"]);
    assert!(o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(
        err.matches(": continuing from its checkpoint after epoch")
            .count(),
        4,
        "{err}"
    );
    assert_eq!(
        records_without_clock(&c.path("whole/fck")),
        records_without_clock(&dir)
    );
    assert_eq!(
        epochs_without_clock(&c.path("whole/fck")),
        epochs_without_clock(&dir)
    );
    let left = std::fs::read_dir(dir.join("checkpoints")).map_or(0, |rd| rd.count());
    assert_eq!(left, 0, "checkpoints left after the sweep finished");
}

#[test]
fn a_student_model_grid_trains_every_model_with_its_own_baseline() {
    let c = Case::new(200, 60);
    let body = body("[0, 1]", "[2]", "[0.5]")
        .replace("[grid]\n", "[grid]\nstudent_model = [\"tutorial-student\", \"resnet8\"]\nmethod = [\"logit\", \"feature\"]\n")
        + "[schedule]\nfuse = true\n";
    let s = c.sweep("zoo", &body);
    let sweep = s.to_str().unwrap();
    let o = c.run(&["plan", sweep]);
    assert!(o.status.success(), "{}", text(&o));
    let plan = String::from_utf8_lossy(&o.stdout);
    for want in [
        "model resnet8",
        "model tutorial-student",
        "baseline-resnet8-s0",
        "student-tutorial-student-T2-a0.5-s1",
        "student-resnet8-feature-a0.5-s0",
        "fuse: students of resnet8 train one at a time",
        "images: 160 training images, 40 held out for validation, 60 test images\n",
    ] {
        assert!(plan.contains(want), "plan lacks {want}:\n{plan}");
    }
    let o = c.run(&[sweep, "--results", "out", "-q"]);
    assert!(o.status.success(), "{}", text(&o));
    let dir = c.path("out/zoo");
    let runs = csv_rows(&dir.join("runs.csv"));
    // 2 teachers; per seed and student model: a baseline, a logit and a feature student
    assert_eq!(runs.len(), 2 + 2 * 2 * 3);
    assert!(runs.iter().all(|r| r["status"] == "done"), "{runs:?}");
    for r in &runs {
        let (t, s) = (&r["teacher_model"], &r["student_model"]);
        match r["role"].as_str() {
            "teacher" => assert_eq!((t.as_str(), s.as_str()), ("resnet8", "")),
            "baseline" => assert!(t.is_empty() && r["run_id"].contains(s.as_str())),
            _ => assert!(t == "resnet8" && r["run_id"].contains(s.as_str()), "{r:?}"),
        }
    }
    let summary = std::fs::read_to_string(dir.join("summary.md")).unwrap();
    for want in [
        "baseline student tutorial-student",
        "baseline student resnet8",
        "The best cell of each student model",
        "| resnet8 | logit |",
    ] {
        assert!(summary.contains(want), "summary lacks {want}:\n{summary}");
    }
    for chart in [
        "capacity_gap",
        "accuracy_vs_temperature-resnet8",
        "accuracy_vs_temperature-tutorial-student",
        "learning_curves",
    ] {
        assert!(dir.join(format!("charts/{chart}.png")).is_file(), "{chart}");
    }
    let page = std::fs::read_to_string(dir.join("index.html")).unwrap();
    assert!(page.contains("id=\"capacity_gap\""));

    // a bad model name: line and column, the names that exist, the nearest one
    let bad = c.sweep("badzoo", &body.replace("\"resnet8\"]", "\"resnet9\"]"));
    let o = c.run(&["plan", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("badzoo.toml:")
            && err.contains("grid.student_model")
            && err.contains("did you mean \"resnet8\""),
        "{err}"
    );
}

#[test]
fn a_cifar100_sweep_trains_with_100_classes() {
    let c = Case::new(10, 10);
    let d = c.path("c100");
    std::fs::create_dir(&d).unwrap();
    kd_sweep::data::write::cifar100_dir(&d, 240, 60, true, 3).unwrap();
    let body = body("[0]", "[4]", "[0.9]")
        .replace(
            "dataset = \"mnist\"\npath = \"data\"",
            "dataset = \"cifar100\"\npath = \"c100\"",
        )
        .replace("[student]\n", "[student]\nmodel = \"resnet8\"\n");
    let s = c.sweep("c100", &body);
    let o = c.run(&["plan", s.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let plan = String::from_utf8_lossy(&o.stdout);
    assert!(
        plan.lines().any(|l| l.starts_with("model resnet8 ")
            && l.contains("0.084 M parameters")
            && l.contains("100 classes")),
        "{plan}"
    );
    let o = c.run(&[s.to_str().unwrap(), "--results", "out", "-q"]);
    assert!(o.status.success(), "{}", text(&o));
    let runs = csv_rows(&c.path("out/c100/runs.csv"));
    assert_eq!(runs.len(), 3);
    assert!(runs.iter().all(|r| r["status"] == "done"), "{runs:?}");
}

#[test]
fn an_augmented_sgd_sweep_distils_every_family_with_the_teacher_in_each_step() {
    let c = Case::new(10, 10);
    let d = c.path("c100");
    std::fs::create_dir(&d).unwrap();
    kd_sweep::data::write::cifar100_dir(&d, 200, 40, false, 4).unwrap();
    // the CRD recipe's parts, scaled down: SGD with momentum and weight decay, a multistep schedule,
    // crop-flip batches for both roles
    let recipe = "optimizer = \"sgd\"\nmomentum = 0.9\nweight_decay = 5e-4\n\
                  schedule = \"multistep\"\nmilestones = [1]\ngamma = 0.1\naugment = \"crop-flip\"\n";
    let body = body("[0]", "[4]", "[0.9]")
        .replace(
            "dataset = \"mnist\"\npath = \"data\"",
            "dataset = \"cifar100\"\npath = \"c100\"",
        )
        .replace("[teacher]\n", &format!("[teacher]\n{recipe}"))
        .replace(
            "[student]\n",
            &format!("[student]\nmodel = \"resnet8\"\n{recipe}"),
        )
        .replace("lr = 0.001", "lr = 0.05")
        .replace("epochs = 1\n", "epochs = 2\n")
        + "method = [\"logit\", \"feature\", \"imitation\"]\n";
    let s = c.sweep("crd", &body);
    let o = c.run(&["plan", s.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let plan = String::from_utf8_lossy(&o.stdout);
    for want in [
        "teachers train with SGD lr 0.05, momentum 0.9, weight decay 0.0005, ×0.1 at epochs [1]",
        "students train on augmented batches",
        "the teacher's forward pass runs in every distilled student's step",
    ] {
        assert!(plan.contains(want), "{want:?} not in:\n{plan}");
    }
    let o = c.run(&[s.to_str().unwrap(), "--results", "out", "-q"]);
    assert!(o.status.success(), "{}", text(&o));
    let runs = csv_rows(&c.path("out/crd/runs.csv"));
    assert_eq!(runs.len(), 5, "teacher, baseline, three students");
    assert!(runs.iter().all(|r| r["status"] == "done"), "{runs:?}");
    // a rerun trains nothing: the recipe is part of the keys, and the same
    let o = c.run(&[s.to_str().unwrap(), "--results", "out"]);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("5 runs (5 already done)"),
        "{}",
        text(&o)
    );
    assert!(!text(&o).contains("earlier settings"), "{}", text(&o));
    // the students' layout changed: plan says that their records are of earlier settings
    let cl = c.sweep(
        "crd",
        &body.replace("[student]\n", "[student]\nchannels_last = true\n"),
    );
    let o = c.run(&["plan", cl.to_str().unwrap(), "--results", "out"]);
    assert!(
        text(&o).contains(
            "note: 4 run(s) of this plan have records from earlier settings of this sweep file \
             (since it last ran here: student.channels_last false → true)"
        ),
        "{}",
        text(&o)
    );
}

/// experiments/crd-cifar100*.toml, the CRD benchmark's three pairs with the paper's recipe, run end to
/// end on generated CIFAR-100 files: 2 epochs (the milestone after the first), a few images, one seed
/// and α = 0.9 — every other key as the files have it.
#[test]
fn the_crd_cifar100_sweeps_run_end_to_end_on_generated_files() {
    let c = Case::new(10, 10);
    let d = c.path("c100");
    std::fs::create_dir(&d).unwrap();
    kd_sweep::data::write::cifar100_dir(&d, 84, 16, true, 6).unwrap();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for file in ["crd-cifar100", "crd-cifar100-wrn", "crd-cifar100-x4"] {
        let mut small =
            std::fs::read_to_string(root.join(format!("experiments/{file}.toml"))).unwrap();
        for (from, to) in [
            ("path = \"/usr/share/datasets/cifar100\"", "path = \"c100\""),
            ("validation = 5000", "validation = 20"),
            ("seeds = [0, 1, 2]", "seeds = [0]"),
            ("alpha = [0.8, 0.9, 0.95]", "alpha = [0.9]"),
        ] {
            assert!(small.contains(from), "{file}: {from:?}");
            small = small.replace(from, to);
        }
        assert_eq!(small.matches("epochs = 240").count(), 2, "{file}");
        small = small
            .replace("epochs = 240", "epochs = 2")
            .replace("milestones = [150, 180, 210]", "milestones = [1]");
        let s = c.path(&format!("{file}.toml"));
        std::fs::write(&s, small).unwrap();
        let o = c.run(&["plan", s.to_str().unwrap()]);
        assert!(o.status.success(), "{file}: {}", text(&o));
        let plan = String::from_utf8_lossy(&o.stdout);
        assert!(
            plan.contains("SGD lr 0.05, momentum 0.9, weight decay 0.0005, ×0.1 at epochs [1]")
                && plan.contains("students train on augmented batches")
                && plan.contains("FLOP of training"),
            "{file}: {plan}"
        );
        let o = c.run(&[
            s.to_str().unwrap(),
            "--results",
            "out",
            "-q",
            "--devices",
            "cpu",
        ]);
        assert!(o.status.success(), "{file}: {}", text(&o));
        let runs = csv_rows(&c.path(&format!("out/{file}/runs.csv")));
        assert_eq!(runs.len(), 3, "{file}: teacher, baseline, student");
        assert!(runs.iter().all(|r| r["status"] == "done"), "{runs:?}");
    }
}

/// experiments/crd-cifar100*-dkd.toml: mdistiller's DKD setting per CRD pair (α = 1, T = 4, warm-up
/// 20, β 2 / 6 / 8), with the KD sweeps' teacher recipe — so their teachers' and baselines' keys are
/// the KD sweeps' (one results root trains each teacher once).
#[test]
fn the_crd_dkd_sweeps_share_the_kd_sweeps_teachers() {
    let c = Case::new(10, 10);
    let d = c.path("c100");
    std::fs::create_dir(&d).unwrap();
    kd_sweep::data::write::cifar100_dir(&d, 84, 16, true, 6).unwrap();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let plan = |file: &str| {
        let sweep = std::fs::read_to_string(root.join(format!("experiments/{file}.toml")))
            .unwrap()
            .replace("path = \"/usr/share/datasets/cifar100\"", "path = \"c100\"")
            .replace("validation = 5000", "validation = 20");
        let s = c.path(&format!("{file}.toml"));
        std::fs::write(&s, sweep).unwrap();
        let o = c.run(&["plan", s.to_str().unwrap(), "--json", "--devices", "cpu"]);
        assert!(o.status.success(), "{file}: {}", text(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        v["nodes"].as_array().unwrap().clone()
    };
    for (file, beta) in [
        ("crd-cifar100", "2"),
        ("crd-cifar100-wrn", "6"),
        ("crd-cifar100-x4", "8"),
    ] {
        let kd = plan(file);
        let dkd = plan(&format!("{file}-dkd"));
        let key_of = |nodes: &[serde_json::Value], id: &str| {
            let n = nodes.iter().find(|n| n["id"] == id);
            n.map(|n| n["key"].clone())
                .unwrap_or_else(|| panic!("{file}: no {id}"))
        };
        for id in ["teacher-s0", "teacher-s2", "baseline-s1"] {
            assert_eq!(key_of(&kd, id), key_of(&dkd, id), "{file}: {id}");
        }
        let students: Vec<&str> = (dkd.iter())
            .filter(|n| n["role"] == "student")
            .map(|n| n["id"].as_str().unwrap())
            .collect();
        assert_eq!(
            students,
            (0..3)
                .map(|s| format!("student-dkd-T4-a1-b{beta}-s{s}"))
                .collect::<Vec<_>>(),
            "{file}"
        );
    }
}

/// `[grid] teacher_epoch`: the teacher trains once and leaves a snapshot per listed epoch; each cell
/// is distilled from each snapshot. The snapshot after the last epoch is the teacher's last weights
/// (the same test accuracy as its record's), the one after epoch 1 has epoch 1's validation
/// accuracy; adding an epoch to the list trains the teacher again but keeps the other snapshots'
/// students.
#[test]
fn teacher_epoch_distils_from_snapshots_of_one_teacher_training() {
    let c = Case::new(200, 60);
    let with = |epochs: &str| {
        body("[0]", "[2]", "[0.5]").replace("[teacher]\nepochs = 1", "[teacher]\nepochs = 3")
            + &format!("teacher_epoch = {epochs}\n")
    };
    let s = c.sweep("snap", &with("[1, 3]"));
    let o = c.run(&[s.to_str().unwrap(), "--results", "out"]);
    assert!(o.status.success(), "{}", text(&o));
    let dir = c.path("out/snap");
    let rows = csv_rows(&dir.join("runs.csv"));
    let ids: Vec<&str> = rows.iter().map(|r| r["run_id"].as_str()).collect();
    for id in [
        "teacher-s0",
        "baseline-s0",
        "student-te1-T2-a0.5-s0",
        "student-te3-T2-a0.5-s0",
    ] {
        assert!(ids.contains(&id), "{id} not in {ids:?}");
    }
    assert_eq!(rows.len(), 4, "{ids:?}");
    // the newest record of run `id` (records are named by id and key: a retrained run has two)
    let record = |id: &str| -> serde_json::Value {
        let newest = record_mtimes(&dir)
            .into_iter()
            .filter(|(f, _)| f.starts_with(&format!("{id}.")))
            .max_by_key(|(_, t)| *t)
            .expect(id);
        serde_json::from_slice(&std::fs::read(dir.join("records").join(newest.0)).unwrap()).unwrap()
    };
    let teacher = record("teacher-s0");
    let snaps = teacher["snapshots"]
        .as_array()
        .expect("the teacher records its snapshots");
    assert_eq!(snaps.len(), 2, "{teacher}");
    assert_eq!(snaps[0]["epoch"], 1);
    assert_eq!(snaps[0]["val_acc"], teacher["history"][0]["val_acc"]);
    assert_eq!(snaps[1]["epoch"], 3);
    assert_eq!(snaps[1]["val_acc"], teacher["history"][2]["val_acc"]);
    assert_eq!(
        snaps[1]["test_acc"], teacher["test_acc"],
        "last weights, one test accuracy"
    );
    let (s1, s3) = (
        record("student-te1-T2-a0.5-s0"),
        record("student-te3-T2-a0.5-s0"),
    );
    assert_eq!(
        (&s1["teacher_epoch"], &s3["teacher_epoch"]),
        (&1.into(), &3.into())
    );
    assert_ne!(s1["key"], s3["key"]);
    assert_ne!(
        s1["history"], s3["history"],
        "two snapshots of a teacher that learns teach differently"
    );
    let cache = std::fs::read_dir(c.path("out/.cache/teachers"))
        .unwrap()
        .count();
    assert_eq!(cache, 3, "the teacher and its two snapshots");
    // the report: a row per snapshot with the teacher's accuracy there, and the chart
    let md = std::fs::read_to_string(dir.join("summary.md")).unwrap();
    let row = |e: u32| {
        md.lines()
            .find(|l| l.starts_with(&format!("| {e} | ")))
            .unwrap_or_else(|| panic!("no snapshot row {e}:\n{md}"))
            .to_string()
    };
    let test3 = format!("{:.2}", snaps[1]["test_acc"].as_f64().unwrap());
    assert!(
        row(3).contains(&test3) && row(3).contains("teacher@3"),
        "{}",
        row(3)
    );
    assert!(row(1).contains("teacher@1"), "{}", row(1));
    // the cells table and runs.csv tell the two snapshots' cells apart
    let cell_rows: Vec<&str> = md
        .lines()
        .filter(|l| l.starts_with("| logit | 2 | 0.5 |"))
        .collect();
    assert_eq!(cell_rows.len(), 2, "{md}");
    assert!(
        cell_rows[0].contains("| teacher@1 |") && cell_rows[1].contains("| teacher@3 |"),
        "{cell_rows:?}"
    );
    let te: Vec<(&str, &str)> = (rows.iter())
        .map(|r| (r["run_id"].as_str(), r["teacher_epoch"].as_str()))
        .collect();
    assert!(
        te.contains(&("student-te1-T2-a0.5-s0", "1"))
            && te.contains(&("student-te3-T2-a0.5-s0", "3"))
            && te.contains(&("teacher-s0", "")),
        "{te:?}"
    );
    for ext in ["png", "svg"] {
        assert!(dir.join(format!("charts/teacher_epoch.{ext}")).is_file());
    }

    // a snapshot more: the teacher trains again (its key names its snapshots), the students of the
    // snapshots it had are kept
    let before = record_mtimes(&dir);
    let s = c.sweep("snap", &with("[1, 2, 3]"));
    let o = c.run(&[s.to_str().unwrap(), "--results", "out"]);
    assert!(o.status.success(), "{}", text(&o));
    let after = record_mtimes(&dir);
    let of = |m: &std::collections::BTreeMap<String, std::time::SystemTime>, id: &str| {
        let mut found: Vec<_> = m
            .iter()
            .filter(|(f, _)| f.starts_with(&format!("{id}.")))
            .collect();
        assert_eq!(found.len(), 1, "{id}: {m:?}");
        found.pop().map(|(f, t)| (f.clone(), *t))
    };
    for id in [
        "student-te1-T2-a0.5-s0",
        "student-te3-T2-a0.5-s0",
        "baseline-s0",
    ] {
        assert_eq!(of(&before, id), of(&after, id), "{id} was trained again");
    }
    let teachers = after
        .keys()
        .filter(|f| f.starts_with("teacher-s0."))
        .count();
    assert_eq!(teachers, 2, "the teacher trained again under its new key");
    of(&after, "student-te2-T2-a0.5-s0");
    assert_eq!(
        record("teacher-s0")["snapshots"].as_array().unwrap().len(),
        3
    );
}
