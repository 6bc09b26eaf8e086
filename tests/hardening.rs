//! Bad input and faults: every bad sweep file in tests/bad_sweeps/ exits 2 with the file, the
//! line:column where known, the key and what is allowed, and creates nothing; bad state and faults
//! end in clear messages with earlier results intact.

mod common;
use common::*;
use std::path::Path;

/// Header lines of a corpus file: `# key: …`, `# at: line:col`, `# says: …` (empty when not checked).
fn header(text: &str, field: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("# {field}:")))
        .unwrap_or("")
        .trim()
        .to_string()
}

#[test]
fn every_bad_sweep_file_in_the_corpus_is_refused_clearly() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad_sweeps");
    let mut files: Vec<_> = std::fs::read_dir(&corpus)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 40, "the corpus has {} cases", files.len());
    let c = Case::new(200, 60);
    let mut failures = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        std::fs::write(c.path(&name), &text).unwrap();
        let o = c.run(&[&name, "--results", "out"]);
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        let mut why = Vec::new();
        if o.status.code() != Some(2) {
            why.push(format!("exit {:?}", o.status.code()));
        }
        if !err.starts_with(&format!("error: {name}")) {
            why.push("does not start with `error: <file>`".into());
        }
        let (key, at, says) = (
            header(&text, "key"),
            header(&text, "at"),
            header(&text, "says"),
        );
        if !key.is_empty() && !err.contains(&format!("`{key}`")) {
            why.push(format!("does not name the key {key}"));
        }
        if !at.is_empty() && !err.contains(&format!("{name}:{at}:")) {
            why.push(format!("not at {at}"));
        }
        // `says: a | b`: the message depends on the machine (no driver, CPU-only libtorch, fewer GPUs)
        if !says.is_empty() && !says.split(" | ").any(|alt| err.contains(alt)) {
            why.push(format!("does not say {says:?}"));
        }
        if err.contains("panicked") || err.lines().count() > 3 {
            why.push("panic or noise".into());
        }
        if c.path("out").exists() {
            why.push("created the results root".into());
        }
        if !why.is_empty() {
            failures.push(format!("{name}: {}\n    {}", why.join("; "), err.trim()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn empty_binary_and_missing_files() {
    let c = Case::new(10, 10);
    std::fs::write(c.path("empty.toml"), "").unwrap();
    std::fs::write(
        c.path("binary.toml"),
        [0x7f, b'E', b'L', b'F', 0xff, 0xfe, 0, 1],
    )
    .unwrap();
    for (file, says) in [
        ("empty.toml", "empty"),
        ("binary.toml", "not a text file"),
        ("missing.toml", "no such file"),
    ] {
        let o = c.run(&[file, "--results", "out"]);
        assert_eq!(o.status.code(), Some(2), "{file}: {}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.starts_with(&format!("error: {file}")) && err.contains(says),
            "{file}: {err}"
        );
        assert!(!c.path("out").exists());
    }
}

#[test]
fn every_mistake_of_a_sweep_file_is_reported_at_once_in_file_order() {
    let c = Case::new(100, 20);
    // line 3: a seed listed twice (a check of the value); line 9: a misspelt key (serde's error,
    // which used to be the only one reported, before the earlier line); each with its own text
    let file = "# two mistakes\nname = \"two\"\nseeds = [0, 0]\n[data]\ndataset = \"mnist\"\n\
                path = \"data\"\nvalidation = 40\n[teacher]\nbatch_sise = 16\nepochs = 1\n\
                lr = 0.001\n[student]\nepochs = 1\nbatch_size = 16\nlr = 0.001\n[grid]\n\
                temperature = [1]\nalpha = [0.5]\n";
    let lines: Vec<&str> = file.lines().collect();
    assert_eq!((lines[2], lines[8]), ("seeds = [0, 0]", "batch_sise = 16"));
    std::fs::write(c.path("two.toml"), file).unwrap();
    let o = c.run(&["two.toml", "--results", "out"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    let printed: Vec<&str> = err.lines().collect();
    // two lines, in file order; the second lists [teacher]'s keys (which grow) and the nearest one
    assert_eq!(printed.len(), 2, "{err}");
    assert_eq!(
        printed[0], "error: two.toml:3:13: `seeds`: seed 0 appears twice; list each seed once",
        "{err}"
    );
    let (head, tail) = (
        "error: two.toml:9:1: `teacher.batch_sise`: unknown field `batch_sise`, expected one of \
         `epochs`, `batch_size`, `lr`, ",
        "; did you mean `batch_size`?",
    );
    assert!(
        printed[1].starts_with(head) && printed[1].ends_with(tail),
        "{err}"
    );
    assert!(!c.path("out").exists());
}

#[test]
fn bad_data_exits_1_naming_the_file() {
    let c = Case::new(100, 20);
    let s = c.sweep("bd", &body("[0]", "[2]", "[0.5]"));
    std::fs::write(
        c.path("data/t10k-labels-idx1-ubyte.gz"),
        b"\x1f\x8bnot really gzip",
    )
    .unwrap();
    let o = c.run(&[s.to_str().unwrap(), "--results", "out"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("t10k-labels-idx1-ubyte.gz")
            && err.contains("gzip")
            && !err.contains("panicked"),
        "{err}"
    );
    assert!(!c.path("out").exists());
}

#[test]
fn another_study_under_the_same_name_is_refused() {
    let c = Case::new(100, 20);
    let s = c.sweep("same", &body("[0]", "[2]", "[0.5]"));
    assert!(c
        .run(&[s.to_str().unwrap(), "--results", "out", "-q"])
        .status
        .success());
    // the same name over a different dataset (CIFAR-10 in the binary release)
    std::fs::create_dir(c.path("cifar")).unwrap();
    kd_sweep::data::write::cifar_dir(&c.path("cifar"), 20, 20, false, 1).unwrap();
    let other = body("[0]", "[2]", "[0.5]")
        .replace("dataset = \"mnist\"", "dataset = \"cifar10\"")
        .replace("path = \"data\"", "path = \"cifar\"");
    let s2 = c.sweep("same", &other);
    // every command that plans there says so: run, plan (the check before running), a task, slurm
    let task = ["run", "--task", "teacher-s0"];
    for cmd in [&["plan"][..], &["plan", "--json"], &task, &["slurm"], &[]] {
        let o = c.run(&[cmd, &[s2.to_str().unwrap(), "--results", "out"]].concat());
        assert_eq!(o.status.code(), Some(1), "{cmd:?}: {}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("another study") && err.contains("--results"),
            "{cmd:?}: {err}"
        );
    }
    assert_eq!(
        csv_rows(&c.path("out/same/runs.csv")).len(),
        3,
        "the first study's results are intact"
    );
}

#[test]
fn a_study_of_an_older_model_version_grows_and_a_newer_one_is_refused() {
    let c = Case::new(100, 20);
    let s = c.sweep("ver", &body("[0]", "[2]", "[0.5]"));
    let s = s.to_str().unwrap();
    assert!(c.run(&[s, "--results", "out", "-q"]).status.success());
    let manifest = c.path("out/ver/manifest.json");
    let at_version = |v: u32| {
        let mut m: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&manifest).unwrap()).unwrap();
        m["model_version"] = v.into();
        std::fs::write(&manifest, serde_json::to_vec(&m).unwrap()).unwrap();
    };
    let current = kd_sweep::model::MODEL_VERSION;
    // a newer kd-sweep's folder: refused, nothing touched
    at_version(current + 1);
    let listing = |dir: &str| {
        let mut names: Vec<_> = (std::fs::read_dir(c.path(dir)).unwrap())
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        names
    };
    let snapshot = || {
        (
            std::fs::read(&manifest).unwrap(),
            std::fs::read(c.path("out/ver/runs.csv")).unwrap(),
            listing("out/ver/records"),
        )
    };
    let before = snapshot();
    for cmd in [&["plan"][..], &[]] {
        let o = c.run(&[cmd, &[s, "--results", "out"]].concat());
        assert_eq!(o.status.code(), Some(1), "{cmd:?}: {}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("newer kd-sweep") && err.contains("--results"),
            "{err}"
        );
    }
    assert!(
        before == snapshot(),
        "the newer study's folder is untouched"
    );
    // an older one is the same study: a run whose key the new version changed (here: its record
    // under another key) trains anew, and the note says why; the others are kept
    at_version(current - 1);
    let records = c.path("out/ver/records");
    let student = (std::fs::read_dir(&records).unwrap())
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .find(|n| n.starts_with("student-"))
        .unwrap();
    let id = student
        .strip_suffix(".json")
        .unwrap()
        .rsplit_once('.')
        .unwrap()
        .0;
    let old_key = format!("{id}.0123456789abcdef.json");
    std::fs::rename(records.join(&student), records.join(&old_key)).unwrap();
    let o = c.run(&["plan", s, "--results", "out"]);
    assert!(o.status.success(), "{}", text(&o));
    let out = text(&o);
    let why = format!("model version {} → {current}", current - 1);
    assert!(out.contains(&why) && out.contains("1 run(s)"), "{out}");
    let line = |id: &str| {
        out.lines()
            .find(|l| l.starts_with(id))
            .unwrap_or("")
            .to_string()
    };
    assert!(!line("teacher-s0").contains("to run"), "{out}");
    assert!(line(id).contains("to run"), "{out}");
    let o = c.run(&[s, "--results", "out", "-q"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(records.join(&student).exists() && records.join(&old_key).exists());
    assert_eq!(csv_rows(&c.path("out/ver/runs.csv")).len(), 3);
}

#[test]
fn an_unusable_results_root_is_a_clear_error() {
    let c = Case::new(100, 20);
    let s = c.sweep("root", &body("[0]", "[2]", "[0.5]"));
    std::fs::write(c.path("afile"), b"").unwrap();
    let o = c.run(&[s.to_str().unwrap(), "--results", "afile/results"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("cannot create the results folder") && err.contains("--results"),
        "{err}"
    );
    assert!(err.contains("afile is a file, not a folder"), "{err}");
}

#[test]
fn a_full_disk_while_writing_keeps_the_previous_state() {
    let c = Case::new(200, 60);
    let s = c.sweep("disk", &body("[0]", "[2]", "[0.5]"));
    assert!(c
        .run(&[s.to_str().unwrap(), "--results", "out", "-q"])
        .status
        .success());
    let dir = c.path("out/disk");
    let runs_before = std::fs::read(dir.join("runs.csv")).unwrap();
    let records_before = record_mtimes(&dir);
    // a new run whose record cannot be written: the run fails with the reason, nothing else changes
    let s = c.sweep("disk", &body("[0]", "[2, 8]", "[0.5]"));
    let o = c
        .cmd()
        .args([s.to_str().unwrap(), "--results", "out"])
        .env("KD_SWEEP_FAIL_WRITE", "student-T8")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("No space left on device"),
        "{}",
        text(&o)
    );
    assert_eq!(record_mtimes(&dir), records_before);
    // runs.csv itself cannot be written: the old one stays whole and readable
    let o = c
        .cmd()
        .args([s.to_str().unwrap(), "--results", "out"])
        .env("KD_SWEEP_FAIL_WRITE", "runs.csv")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("runs.csv"),
        "{}",
        text(&o)
    );
    assert_eq!(
        std::fs::read(dir.join("runs.csv")).unwrap(),
        runs_before,
        "runs.csv was damaged"
    );
    assert!(
        std::fs::read_dir(&dir).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .contains(".tmp-")),
        "a temporary file was left"
    );
    // the disk has room again: everything completes, the finished record was kept
    let o = c.run(&[s.to_str().unwrap(), "--results", "out"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(csv_rows(&dir.join("runs.csv")).len(), 4);
}

#[test]
fn a_diverging_run_fails_alone_with_where_it_diverged() {
    let c = Case::new(200, 60);
    // an absurd teacher learning rate: the teacher diverges, the baseline (no teacher) still finishes
    let s = c.sweep(
        "div",
        &body("[0]", "[2]", "[0.5]").replacen("lr = 0.001", "lr = 1e30", 1),
    );
    let o = c.run(&[s.to_str().unwrap(), "--results", "out"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let runs = csv_rows(&c.path("out/div/runs.csv"));
    let t = runs.iter().find(|r| r["role"] == "teacher").unwrap();
    assert_eq!(t["status"], "failed");
    assert!(
        t["error"].starts_with("diverged at epoch 1, step ")
            && (t["error"].contains("loss = NaN") || t["error"].contains("loss = inf")),
        "{t:?}"
    );
    assert_eq!(
        runs.iter().find(|r| r["role"] == "baseline").unwrap()["status"],
        "done"
    );
    let st = runs.iter().find(|r| r["role"] == "student").unwrap();
    assert!(st["error"].contains("teacher teacher-s0 failed"), "{st:?}");
}

#[test]
fn corrupt_records_are_reported_and_redone() {
    let c = Case::new(200, 60);
    let s = c.sweep("cor", &body("[0]", "[2]", "[0.5]"));
    assert!(c
        .run(&[s.to_str().unwrap(), "--results", "out", "-q"])
        .status
        .success());
    let rec = std::fs::read_dir(c.path("out/cor/records"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().contains("baseline"))
        .unwrap();
    let bytes = std::fs::read(&rec).unwrap();
    std::fs::write(&rec, &bytes[..bytes.len() / 3]).unwrap();
    let o = c.run(&[s.to_str().unwrap(), "--results", "out"]);
    assert!(o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("warning:")
            && err.contains("baseline-s0")
            && err.contains("redone")
            && err.contains("3 runs (2 already done)"),
        "{err}"
    );
    let redone = kd_sweep::store::RunRecord::from_json(&std::fs::read(&rec).unwrap())
        .expect("the redone record is whole");
    assert_eq!(redone.run_id, "baseline-s0");
}
