//! The command line as a newcomer meets it: exit codes as README.md's table gives them, and what
//! `report`, `compare` and `clean` say about folders that are not what they take.

mod common;
use common::*;

fn readme() -> String {
    std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .unwrap()
}

/// Runs `args` and checks the exit code and that stderr says `says`.
fn expect(c: &Case, args: &[&str], code: i32, says: &str) {
    let o = c.run(args);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(code), "{args:?}: {}", text(&o));
    assert!(err.contains(says), "{args:?} does not say {says:?}: {err}");
    assert!(!err.contains("panicked"), "{args:?}: {err}");
}

#[test]
fn exit_codes_are_the_ones_the_readme_gives() {
    // the table the binary is held to (whitespace as one space: the README wraps its lines)
    let readme = readme().split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        readme.contains(
            "Exit codes: 0 every run done; 1 a run failed, or a data or file error; 2 a bad sweep \
             file or usage; 130 interrupted (Ctrl-C); 143 stopped by SIGTERM"
        ),
        "README.md's exit-code table changed: change this test and the code with it"
    );
    let c = Case::new(20, 10);
    // 2: usage — a model name that is not one (with the nearest name), a bad option or value, no
    // sweep file, a sweep file that does not exist or has a mistake
    expect(&c, &["models", "resnet9"], 2, "did you mean \"resnet8\"?");
    expect(&c, &["models", "--dataset", "nope"], 2, "allowed:");
    expect(
        &c,
        &["models", "--image-size", "32"],
        2,
        "--image-size resizes a folder dataset's images; fashion-mnist's are 1×28×28",
    );
    expect(
        &c,
        &["models", "torchscript:nope.pt"],
        2,
        "a relative path is relative to the current folder",
    );
    expect(&c, &[], 2, "give a sweep file");
    expect(&c, &["report", "out", "--results", "r"], 2, "--results");
    expect(&c, &["missing.toml"], 2, "no such file");
    let bad = c.sweep("bad", &body("[0]", "[0]", "[0.5]"));
    expect(
        &c,
        &["plan", bad.to_str().unwrap()],
        2,
        "`grid.temperature`",
    );
    // 1: a data error (here: no dataset where the sweep file says)
    let nodata = c.sweep(
        "nodata",
        &body("[0]", "[1]", "[0.5]").replace("path = \"data\"", "path = \"nothing-here\""),
    );
    let o = c.run(&["plan", nodata.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    // 0: what works
    for args in [
        &["models", "resnet26"][..],
        &["--help"],
        &["report", "--help"],
    ] {
        let o = c.run(args);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", text(&o));
    }
}

/// Trains a tiny sweep `name` (one seed, T = `temps`, α = 0.5) into `out/<name>`.
fn tiny(c: &Case, name: &str, temps: &str) {
    let s = c.sweep(name, &body("[0]", temps, "[0.5]"));
    let o = c.run(&[s.to_str().unwrap(), "--results", "out", "-q"]);
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn report_and_compare_say_what_is_wrong_with_the_folders_they_are_given() {
    let c = Case::new(200, 60);
    tiny(&c, "tiny", "[1]");
    tiny(&c, "other", "[8]");
    // a folder that does not exist, with the sweep it was probably meant to be
    expect(
        &c,
        &["report", "out/tinny"],
        2,
        "out/tinny: no such folder; did you mean out/tiny?",
    );
    expect(
        &c,
        &["report", "nowhere/x"],
        2,
        "nowhere/x: no such folder (give",
    );
    // the results root: its sweeps, and to pick one
    expect(
        &c,
        &["report", "out"],
        2,
        "out is a results root holding 2 sweep(s), not one sweep's folder; pick one: out/other, out/tiny",
    );
    expect(&c, &["status", "out"], 2, "pick one: out/other, out/tiny");
    // a sweep file that ran under another root: say which root was looked in, and the option
    expect(
        &c,
        &["status", "tiny.toml"],
        2,
        "results/tiny: no such folder: tiny.toml has not run under the results root results (give \
         the root it ran with: --results DIR)",
    );
    // a ramp longer than the students' training: plan says what the cells then measure
    let dk = c.sweep(
        "dk",
        &body("[0]", "[1]", "[0.5]").replace(
            "alpha = [0.5]",
            "alpha = [0.5]\nmethod = [\"logit\", \"dkd\", \"ctkd\"]",
        ),
    );
    let o = c.run(&["plan", dk.to_str().unwrap(), "--results", "out"]);
    let dk_plan = text(&o);
    assert!(
        text(&o).contains(
            "note: DKD's terms ramp in over [grid.dkd] warmup = 20 epochs, more than the students' 2: \
             they reach at most 2/20 of their weight"
        ) && text(&o).contains("[grid.ctkd] ramp_epochs = 10 epochs"),
        "{}",
        text(&o)
    );
    // [grid]'s T and α do not reach DKD's cells (its table's defaults); CTKD takes [grid] alpha
    assert!(
        text(&o).contains(
            "note: [grid] temperature and alpha do not reach every method: dkd keeps α = 1 and \
             T = 4 ([grid.dkd]'s defaults); write values in those tables to sweep others"
        ),
        "{}",
        text(&o)
    );
    // … but a DKD whose every cell is z-scored at its own zscore_temperature keeps no T = 4
    let dz = c.sweep(
        "dz",
        &format!(
            "{}[grid.dkd]\nlogit_norm = [\"zscore\"]\nzscore_temperature = [2]\n",
            body("[0]", "[1]", "[0.5]").replace(
                "alpha = [0.5]",
                "alpha = [0.5]\nmethod = [\"logit\", \"dkd\", \"ctkd\"]",
            )
        ),
    );
    let o = c.run(&["plan", dz.to_str().unwrap(), "--results", "out"]);
    assert!(
        text(&o).contains(
            "note: [grid] temperature and alpha do not reach every method: dkd keeps α = 1 \
             ([grid.dkd]'s default); write values"
        ) && text(&o).contains("student-dkd-zscore-T2-a1-b8-s0"),
        "{}",
        text(&o)
    );
    // [grid] values no listed method takes: said, as they change no cell
    let tt = c.sweep(
        "tt",
        &body("[0]", "[1]", "[0.5]").replace("alpha = [0.5]", "alpha = [0.5]\nmethod = [\"ttm\"]"),
    );
    let o = c.run(&["plan", tt.to_str().unwrap(), "--results", "out"]);
    for key in ["temperature", "alpha"] {
        let line = format!("note: [grid] {key} is used by no listed method (");
        assert!(text(&o).contains(&line), "{line}: {}", text(&o));
    }
    assert!(
        !dk_plan.contains("is used by no listed method"),
        "{dk_plan}"
    );
    // options before the command, as git takes them: the line as kd-sweep takes it
    expect(
        &c,
        &["--results", "out", "plan", "tiny.toml"],
        2,
        "error: options go after the command: kd-sweep plan tiny.toml --results out",
    );
    // … unless the command does not take them: then that is said, not a line it refuses
    expect(
        &c,
        &["-q", "clean", "out"],
        2,
        "error: -q before the command: `kd-sweep clean` does not take it (`kd-sweep clean --help`",
    );
    // a results root that is a file: refused before anything (plan warned of corrupt caches)
    expect(
        &c,
        &["plan", "tiny.toml", "--results", "tiny.toml"],
        2,
        "--results tiny.toml: is a file, not a folder",
    );
    // GPU-only settings on a CPU-only machine: plan says they change only the keys
    let o = c.run(&[
        "plan",
        "tiny.toml",
        "--results",
        "out",
        "--deterministic",
        "--cuda-graphs",
    ]);
    assert!(
        text(&o).contains(
            "note: every worker here is on the CPU, where deterministic and cuda_graphs change \
             nothing but the runs' keys (a CPU run repeats bit for bit without them)"
        ) && text(&o).contains(
            "(since it last ran here: schedule.cuda_graphs false → true, schedule.deterministic \
             false → true)"
        ),
        "{}",
        text(&o)
    );
    let o = c.run(&["status", "tiny.toml", "--results", "out"]);
    assert!(o.status.success(), "{}", text(&o));
    // everything done: nothing left, so no ETA
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.starts_with("tiny (mnist): ") && !out.contains("ETA"),
        "{out}"
    );
    // --watch of a finished sweep into a file: the same snapshot once, no terminal codes, no
    // promise of refreshing
    let o = c.run(&["status", "tiny.toml", "--results", "out", "--watch"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), out);
    // a folder compared with itself, however it is spelt
    expect(
        &c,
        &["compare", "out/tiny", "./out/tiny/", "--out", "cmp"],
        2,
        "out/tiny and ./out/tiny/ are the same folder",
    );
    assert!(!c.path("cmp").exists(), "nothing written");
    // no cell in common: a sentence, no empty table
    let o = c.run(&["compare", "out/tiny", "out/other", "--out", "cmp"]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("No cell is in every sweep: tiny and other share no (method, T, α) setting"),
        "{out}"
    );
    assert!(!out.contains("\n| method | T | α |"), "{out}");
    assert!(out.contains("| other | logit | 8 | 0.5 |"), "{out}");
    // `run` names what changed too, though it rewrites the manifest before it speaks
    let o = c.run(&["tiny.toml", "--results", "out", "--cuda-graphs"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("(since it last ran here: schedule.cuda_graphs false → true)"),
        "{}",
        text(&o)
    );
}

/// Every file under `dir` outside checkpoints/ and progress/, with its size and modification time.
fn kept_files(dir: &std::path::Path) -> Vec<(String, u64, std::time::SystemTime)> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
            if rel.contains("checkpoints") || rel.contains("progress") {
                continue;
            }
            let m = e.metadata().unwrap();
            if m.is_dir() {
                todo.push(p);
            } else {
                out.push((rel, m.len(), m.modified().unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// A progress file as a coordinator on another host writes it, last updated at `updated_at`.
fn progress(run_id: &str, updated_at: u64) -> String {
    serde_json::json!({
        "run_id": run_id, "key": "0", "epoch": 1, "of": 2, "val_acc": null, "device": "cpu",
        "host": "another-host", "pid": 1, "started_at": updated_at, "updated_at": updated_at,
    })
    .to_string()
}

/// The names in `dir/sub`, sorted (none when it does not exist).
fn names(dir: &std::path::Path, sub: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir.join(sub))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A finished halving search `out/h` with leftovers: the pruned run's checkpoint pair (returned), a
/// finished run's pair (its record's name, returned), progress files of a gone writer and a live one.
fn halving_with_leftovers(c: &Case) -> (Vec<String>, String) {
    // a halving search over two cells: one is pruned after epoch 1 and keeps its checkpoint
    let search = "[search]\nstrategy = \"halving\"\nmin_epochs = 1\neta = 2\n";
    let s = c.sweep("h", &(body("[0]", "[1, 4]", "[0.5]") + search));
    let o = c.run(&[s.to_str().unwrap(), "--results", "out", "-q"]);
    assert!(o.status.success(), "{}", text(&o));
    let dir = c.path("out/h");
    let names = |sub: &str| names(&dir, sub);
    let pruned: Vec<String> = names("checkpoints");
    assert_eq!(pruned.len(), 2, "one pruned run's pair: {pruned:?}");
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("records").join(&pruned[0])).unwrap())
            .unwrap();
    assert_eq!(record["status"], "pruned", "{record}");
    // what a process killed between writing a record and removing its checkpoint leaves, and
    // progress files of a gone writer and of a live one (another host, just now)
    let teacher = names("records")
        .into_iter()
        .find(|n| n.starts_with("teacher-s0."))
        .unwrap();
    let stem = teacher.strip_suffix(".json").unwrap();
    std::fs::write(dir.join("checkpoints").join(&teacher), [7u8; 100]).unwrap();
    std::fs::write(
        dir.join(format!("checkpoints/{stem}.safetensors")),
        [7u8; 1000],
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("progress")).unwrap();
    let now = unix_now();
    std::fs::write(dir.join("progress/gone.json"), progress("gone", 0)).unwrap();
    std::fs::write(dir.join("progress/live.json"), progress("live", now)).unwrap();

    (pruned, teacher)
}

/// `clean` refuses while a sweep runs in `out/h`, and keeps the `pruned` pair while the sweep (as
/// its manifest says) would train that run further.
fn refused_while_running_and_keeps_what_the_sweep_continues(c: &Case, pruned: &[String]) {
    let dir = c.path("out/h");
    let names = |sub: &str| names(&dir, sub);
    let now = unix_now();
    // while a sweep runs there: refused, nothing removed
    // a second sweep in the root, with the same leftovers, where nothing runs
    let copied = std::process::Command::new("cp")
        .args(["-a", "out/h", "out/h2"])
        .current_dir(c.path(""))
        .status()
        .unwrap();
    assert!(copied.success());
    let lock = dir.join(".coordinator.lock");
    let owner = serde_json::json!({"host": "another-host", "pid": 1, "since": now});
    std::fs::write(&lock, owner.to_string()).unwrap();
    expect(c, &["clean", "out/h"], 1, "out/h: a sweep is running there");
    assert_eq!(names("checkpoints").len(), 4);
    // in a results root, that sweep's folder is left alone and said, the rest cleaned
    let o = c.run(&["clean", "out"]);
    assert!(o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("out/h: a sweep is running there") && err.contains("left as it is"),
        "{err}"
    );
    assert_eq!(names("checkpoints").len(), 4);
    // … and the other sweep's leftovers went
    let h2 = c.path("out/h2");
    assert!(!h2.join("checkpoints").exists() && h2.join("progress").exists());
    std::fs::remove_dir_all(h2).unwrap();
    std::fs::remove_file(&lock).unwrap();

    // a sweep that would train the pruned run further (its manifest now a grid) keeps its pair
    let manifest = std::fs::read(dir.join("manifest.json")).unwrap();
    let mut m: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    m["sweep"].as_object_mut().unwrap().remove("search");
    std::fs::write(dir.join("manifest.json"), m.to_string()).unwrap();
    let o = c.run(&["clean", "out/h", "--dry-run"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", text(&o));
    assert!(!out.contains(&pruned[0]), "{out}");
    assert!(
        out.contains("kept the checkpoints of 1 paused run(s)"),
        "{out}"
    );
    std::fs::write(dir.join("manifest.json"), &manifest).unwrap();
}

#[test]
fn clean_removes_what_is_no_longer_needed_and_nothing_else() {
    let c = Case::new(200, 60);
    let (pruned, teacher) = halving_with_leftovers(&c);
    refused_while_running_and_keeps_what_the_sweep_continues(&c, &pruned);
    let dir = c.path("out/h");
    let names = |sub: &str| names(&dir, sub);
    let stem = teacher.strip_suffix(".json").unwrap();

    // --dry-run lists, removes nothing
    let before = kept_files(&c.path("out"));
    let sizes: u64 = [
        &pruned[0],
        &pruned[1],
        &teacher,
        &format!("{stem}.safetensors"),
    ]
    .iter()
    .map(|n| {
        std::fs::metadata(dir.join("checkpoints").join(n))
            .unwrap()
            .len()
    })
    .sum::<u64>()
        + std::fs::metadata(dir.join("progress/gone.json"))
            .unwrap()
            .len();
    let o = c.run(&["clean", "out/h", "--dry-run"]);
    let dry = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        dry.contains(&format!(
            "out/h: would remove 5 file(s), would free {sizes} bytes"
        )),
        "{dry}"
    );
    assert_eq!(names("checkpoints").len(), 4);
    assert_eq!(names("progress").len(), 2);

    // the results root: every sweep in it
    let o = c.run(&["clean", "out"]);
    let done = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "{}", text(&o));
    for (name, why) in [
        (
            format!("checkpoints/{}", pruned[0]),
            "checkpoint of a run the search pruned",
        ),
        (
            format!("checkpoints/{}", pruned[1]),
            "checkpoint of a run the search pruned",
        ),
        (
            format!("checkpoints/{teacher}"),
            "100 B, checkpoint of a finished run",
        ),
        (
            format!("checkpoints/{stem}.safetensors"),
            "1000 B, checkpoint of a finished run",
        ),
        (
            "progress/gone.json".into(),
            "progress file of a run no longer in flight",
        ),
    ] {
        let line = format!("removed out/h/{name} (");
        assert!(
            done.lines()
                .any(|l| l.starts_with(&line) && l.contains(why)),
            "{line}…{why} not in:\n{done}"
        );
        assert!(
            dry.contains(&format!("would remove out/h/{name} (")),
            "{dry}"
        );
    }
    assert!(
        done.contains("removed out/h/checkpoints (empty folder)"),
        "{done}"
    );
    assert!(
        done.contains(&format!("out/h: removed 5 file(s), freed {sizes} bytes")),
        "{done}"
    );
    assert!(!dir.join("checkpoints").exists());
    assert_eq!(
        names("progress"),
        ["live.json"],
        "a live writer's file stays"
    );
    // records, CSVs, manifest, reports and the teacher cache: untouched
    assert_eq!(kept_files(&c.path("out")), before);
    still_a_sweep_with_nothing_more_to_clean(&c);
}

/// After cleaning: `out/h` reports, a second clean removes nothing, a folder that is no sweep's and
/// no root is refused.
fn still_a_sweep_with_nothing_more_to_clean(c: &Case) {
    let o = c.run(&["report", "out/h"]);
    assert!(o.status.success(), "{}", text(&o));
    // the pruned runs lost their checkpoints: plan says they start again, not "paused@1"
    let o = c.run(&["plan", "h.toml", "--results", "out"]);
    assert!(
        !text(&o).contains("paused@")
            && text(&o).contains(" restarts ")
            && text(&o).contains("have lost their checkpoint"),
        "{}",
        text(&o)
    );
    let o = c.run(&["clean", "out"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("out/h: nothing to remove"), "{}", text(&o));
    expect(
        c,
        &["clean", "data"],
        2,
        "data: neither a sweep's results folder",
    );
}

/// The fenced block after the README line that starts with `marker`.
fn readme_block(readme: &str, marker: &str) -> String {
    let after = &readme[readme
        .find(marker)
        .unwrap_or_else(|| panic!("{marker:?} not in README.md"))..];
    let open = after.find("```").unwrap();
    let body = &after[open..];
    let body = &body[body.find('\n').unwrap() + 1..];
    body[..body.find("```").unwrap()].to_string()
}

#[test]
fn the_readme_s_sweep_file_example_shows_what_kd_sweep_prints() {
    let readme = readme();
    let file = readme_block(&readme, "<!-- readme-example: mine.toml");
    let printed = readme_block(
        &readme,
        "<!-- readme-example: what kd-sweep mine.toml prints",
    );
    assert!(file.contains("temprature"), "{file}");
    let c = Case::new(20, 10);
    std::fs::write(c.path("mine.toml"), &file).unwrap();
    let o = c.run(&["mine.toml"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        printed,
        "README.md's example is not what kd-sweep prints for its file: update one of them"
    );
    assert!(!c.path("results").exists(), "nothing written");
}

/// The README's reference of every key is a sweep file kd-sweep accepts as it is (a newcomer copies
/// it), and its commented-out keys are keys of the file.
#[test]
fn the_readme_s_sweep_file_reference_is_a_valid_sweep_file() {
    let block = readme_block(&readme(), "<!-- readme-example: the sweep file");
    let c = Case::new(10, 10);
    let path = c.path("reference.toml");
    std::fs::write(&path, &block).unwrap();
    if let Err(e) = kd_sweep::config::load(&path) {
        panic!("README.md's sweep-file reference is rejected:\n{e}");
    }
    for commented in [
        "# image_size = ",
        "# weights = ",
        "# student_model = ",
        "# [grid.dkd]",
    ] {
        assert!(block.contains(commented), "{commented}");
    }
}

/// `kd-sweep --help` lists every distillation method with its loss, from the method registry.
#[test]
fn help_lists_every_method_with_its_loss() {
    let c = Case::new(10, 10);
    let o = c.run(&["--help"]);
    assert!(o.status.success(), "{}", text(&o));
    let help = String::from_utf8_lossy(&o.stdout);
    for m in kd_sweep::distill::Method::ALL {
        let start: String = m.loss_text().chars().take(24).collect();
        assert!(
            help.lines()
                .any(|l| l.trim_start().starts_with(m.name()) && l.contains(&start)),
            "{} ({start}) not in:\n{help}",
            m.name()
        );
        // and among the values of [grid] method, with its table
        assert!(help.contains(&format!("\"{}\"", m.name())), "{}", m.name());
        if let Some(t) = m.table() {
            assert!(help.contains(&format!("[grid.{}]", t.name)), "{}", t.name);
        }
    }
    // the datasets a newcomer can bring
    assert!(
        help.contains("\"folder\"") && help.contains("\"tensors\""),
        "{help}"
    );
}

#[test]
fn the_readme_s_slurm_script_is_what_kd_sweep_writes() {
    if let Err(why) = kd_sweep::platform::numerics::portable_available() {
        eprintln!("SKIPPED: the script passes the numerics this machine resolves: {why}");
        return;
    }
    let shown = readme_block(&readme(), "<!-- readme-example: students.sbatch");
    let c = Case::new(10, 10);
    let repo = env!("CARGO_MANIFEST_DIR");
    let root = c.path("slurmdoc");
    let o = c.run(&[
        "slurm",
        &format!("{repo}/experiments/quick.toml"),
        "--results",
        root.to_str().unwrap(),
        "--partition",
        "gpu",
        "--gpus-per-task",
        "1",
        "--cpus-per-task",
        "4",
        "--mem",
        "8G",
        "--time",
        "01:00:00",
        "--max-parallel",
        "8",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let written = std::fs::read_to_string(root.join("quick/slurm/students.sbatch")).unwrap();
    // the README's paths are those of the machine it was written on
    let written = written
        .replace(
            env!("CARGO_BIN_EXE_kd-sweep"),
            "/work/main/target/release/kd-sweep",
        )
        .replace(root.to_str().unwrap(), "/tmp/kd/slurmdoc")
        .replace(repo, "/work/main");
    assert_eq!(
        written, shown,
        "README.md's students.sbatch is not what kd-sweep writes: update one of them"
    );
}

/// Every sweep file the repository ships plans, so a change to the sweep-file format cannot leave
/// one behind. They read Fashion-MNIST where the set-up command installs it (as the README's SLURM
/// example does); those that need what is not shipped fail only for that: CIFAR-100 (tests/e2e.rs
/// runs the CRD files on generated data), the PNG folder `examples/own-teacher` makes and the
/// TorchScript network `experiments/nets/make_student.py` writes.
#[test]
fn every_shipped_sweep_file_plans() {
    if let Err(why) = kd_sweep::platform::numerics::portable_available() {
        eprintln!("SKIPPED: plan resolves the sweep's numerics on this machine: {why}");
        return;
    }
    let needs = |name: &str| -> Option<&str> {
        match name {
            n if n.starts_with("crd-cifar100") => Some("cifar100 dataset not found"),
            "own-teacher.toml" => Some("fashion-png: not found"),
            "torchscript.toml" => Some("cannot read the TorchScript file"),
            _ => None,
        }
    };
    let c = Case::new(10, 10);
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 10, "{files:?}");
    for f in files {
        let name = f.file_name().unwrap().to_str().unwrap().to_string();
        let o = c.run(&["plan", f.to_str().unwrap(), "--results", "planned"]);
        match needs(&name) {
            _ if o.status.success() => {}
            Some(missing) => assert!(text(&o).contains(missing), "{name}: {}", text(&o)),
            None => panic!("{name} does not plan: {}", text(&o)),
        }
    }
}
