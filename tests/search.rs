//! `[search]`: successive halving over the grid's cells and the confirmation with more seeds, run
//! end to end by the real binary on generated MNIST-format data.

mod common;
use common::{body, csv_rows, records_without_clock, text, Case};
use std::collections::HashMap;

/// Four cells (T ∈ {1, 4} × α ∈ {0.25, 0.9}), two seeds, 4 student epochs.
/// The search tests' grid: 2 seeds, 2 × 2 cells, 4 student epochs.
fn grid_body() -> String {
    body("[0, 1]", "[1, 4]", "[0.25, 0.9]").replace("epochs = 2\n", "epochs = 4\n")
}

const HALVING: &str = "[search]\nstrategy = \"halving\"\nmin_epochs = 1\neta = 2\n";

/// Records by run id, without the clock.
fn records(dir: &std::path::Path) -> HashMap<String, serde_json::Value> {
    records_without_clock(dir)
        .into_iter()
        .map(|r| (r["run_id"].as_str().unwrap().to_string(), r))
        .collect()
}

/// Mean validation accuracy of a cell's runs after `epoch` (1-based), from a grid's records.
fn mean_val(grid: &HashMap<String, serde_json::Value>, cell: &str, epoch: usize) -> f64 {
    let v: Vec<f64> = ["s0", "s1"]
        .iter()
        .map(|s| {
            grid[&format!("{cell}-{s}")]["history"][epoch - 1]["val_acc"]
                .as_f64()
                .unwrap()
        })
        .collect();
    v.iter().sum::<f64>() / v.len() as f64
}

#[test]
fn halving_prunes_by_validation_and_its_survivors_are_the_grid_runs_bit_for_bit() {
    let c = Case::new(300, 60);
    // two files for one study name "g": the grid, and the search over the same cells
    let search = c.sweep("g", &(grid_body() + HALVING));
    std::fs::rename(&search, c.path("h.toml")).unwrap();
    let search = c.path("h.toml");
    let grid = c.sweep("g", &grid_body());

    let o = c.run(&["plan", search.to_str().unwrap(), "--results", "hal"]);
    assert!(o.status.success(), "{}", text(&o));
    let plan = String::from_utf8_lossy(&o.stdout);
    assert!(
        plan.contains("rung 1 → epoch 1: 4 cells, rung 2 → epoch 2: 2 cells, rung 3 → epoch 4: 1 cells; at most 16 of the grid's 32 student-epochs (50 %)"),
        "{plan}"
    );

    // the full grid, and the search over the same cells in another results folder
    let o = c.run(&[grid.to_str().unwrap(), "--results", "full", "-q"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = c.run(&[search.to_str().unwrap(), "--results", "hal"]);
    assert!(o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    // a promotion is said as one, not as a recovery from a crash
    assert!(!err.contains("(+0 steps"), "{err}");
    for want in [
        "successive halving over 4 cells",
        "rung 1 of 3: 4 cells × 2 seed(s) to epoch 1",
        "rung 2 of 3: 2 cells × 2 seed(s) to epoch 2",
        "rung 3 of 3: 1 cells × 2 seed(s) to epoch 4",
        // promotions continue from the pause's checkpoint, they do not start again
        "promoted by the search, continuing after epoch 1",
        "promoted by the search, continuing after epoch 2",
    ] {
        assert!(err.contains(want), "{want:?} not in:\n{err}");
    }

    let full = records(&c.path("full/g"));
    let hal = records(&c.path("hal/g"));
    // what the rungs should have kept, decided here from the grid's own epochs
    let cells = [
        "student-T1-a0.25",
        "student-T1-a0.9",
        "student-T4-a0.25",
        "student-T4-a0.9",
    ];
    let best = |among: &[&'static str], epoch: usize, keep: usize| {
        let mut v: Vec<&'static str> = among.to_vec();
        // stable: ties keep plan order, as the search's ranking does
        v.sort_by(|a, b| mean_val(&full, b, epoch).total_cmp(&mean_val(&full, a, epoch)));
        v.truncate(keep);
        v
    };
    let rung2 = best(&cells, 1, 2);
    let survivor = best(&rung2, 2, 1)[0];
    for cell in cells {
        for s in ["s0", "s1"] {
            let id = format!("{cell}-{s}");
            let (h, f) = (&hal[&id], &full[&id]);
            let reached = if cell == survivor {
                4
            } else if rung2.contains(&cell) {
                2
            } else {
                1
            };
            if reached == 4 {
                // a survivor paused twice and continued from its checkpoints: the grid's run exactly
                assert_eq!(h, f, "{id}: the survivor differs from the grid's run");
            } else {
                assert_eq!(h["status"], "pruned", "{id}");
                assert_eq!(h["epochs"], reached, "{id}");
                assert_eq!(h["test_acc"], serde_json::Value::Null, "{id}");
                // its epochs are the grid run's first ones, to the last bit
                let want: Vec<_> = f["history"].as_array().unwrap()[..reached].to_vec();
                assert_eq!(h["history"].as_array().unwrap(), &want, "{id}");
            }
        }
    }
    // teachers and baselines in full, identical too
    for id in ["teacher-s0", "baseline-s0", "baseline-s1"] {
        assert_eq!(hal[id], full[id], "{id}");
    }

    // the outputs show the pruned runs
    let runs = csv_rows(&c.path("hal/g/runs.csv"));
    let pruned = runs.iter().filter(|r| r["status"] == "pruned").count();
    assert_eq!(pruned, 6, "{runs:?}");
    let epochs = csv_rows(&c.path("hal/g/epochs.csv"));
    assert_eq!(
        epochs.iter().filter(|r| r["role"] == "student").count(),
        2 * (4 + 2 + 1 + 1),
        "every epoch the search trained"
    );
    let summary = std::fs::read_to_string(c.path("hal/g/summary.md")).unwrap();
    assert!(
        summary.contains("successive halving trained 1 of 4 cells to the end and pruned 3 (2 after epoch 1, 1 after epoch 2); it spent 16 student-epochs on seed(s) 0, 1 where the full grid takes 32 (50 %)"),
        "{summary}"
    );
    let svg = std::fs::read_to_string(c.path("hal/g/charts/accuracy_vs_temperature.svg")).unwrap();
    assert!(svg.contains("pruned by the search"), "the chart's legend");
    let page = std::fs::read_to_string(c.path("hal/g/index.html")).unwrap();
    assert!(
        page.contains(
            "<p id=\"search\"><strong>Search:</strong> successive halving trained 1 of 4"
        ),
        "index.html"
    );
    assert_eq!(
        page.matches("<td class=\"l\">pruned</td>").count(),
        6,
        "the runs table"
    );

    // plan: a finished search has nothing left to train; the cells it did not choose are not to run
    let o = c.run(&["plan", search.to_str().unwrap(), "--results", "hal"]);
    let plan = String::from_utf8_lossy(&o.stdout);
    assert!(plan.contains("0 of 12 runs to train"), "{plan}");
    assert!(
        plan.contains("paused@1") && plan.contains("paused@2"),
        "{plan}"
    );

    // started again, the search decides the same from the records and trains nothing
    let before = common::record_mtimes(&c.path("hal/g"));
    let o = c.run(&[search.to_str().unwrap(), "--results", "hal"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        common::record_mtimes(&c.path("hal/g")),
        before,
        "{}",
        text(&o)
    );

    // the same folder as a grid: the pruned runs continue from their checkpoints to the grid's records
    let o = c.run(&[grid.to_str().unwrap(), "--results", "hal", "-q"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(records(&c.path("hal/g")), full);
    // --quiet: errors only, not the workers' notes of where each run continues
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("continuing"), "{err}");
}

#[test]
fn confirmation_trains_the_best_cells_and_the_baseline_with_the_extra_seeds() {
    let c = Case::new(300, 60);
    let s = c.sweep(
        "conf",
        &(grid_body() + HALVING + "confirm_seeds = [5, 6]\nconfirm_top = 1\n"),
    );
    let o = c.run(&["plan", s.to_str().unwrap(), "--results", "out"]);
    assert!(o.status.success(), "{}", text(&o));
    let plan = String::from_utf8_lossy(&o.stdout);
    assert!(
        plan.contains("confirmation: the best 1 cell(s) by validation and the baseline with seed(s) 5, 6: at most 6 more runs (8 student-epochs)"),
        "{plan}"
    );
    // the confirmation seeds' students run only for the chosen cell: the table and the count say so
    let confirming: Vec<&str> = (plan.lines())
        .filter(|l| l.starts_with("student-") && (l.contains("-s5 ") || l.contains("-s6 ")))
        .collect();
    assert!(!confirming.is_empty(), "{plan}");
    assert!(confirming.iter().all(|l| l.contains("if chosen")), "{plan}");
    assert!(
        plan.contains(&format!(
            "({} of them confirmation students marked \"if chosen\": only the best 1's train)",
            confirming.len()
        )),
        "{plan}"
    );
    let o = c.run(&[s.to_str().unwrap(), "--results", "out", "-q"]);
    assert!(o.status.success(), "{}", text(&o));
    // a finished search's unchosen runs are "not trained", not pending work
    let o = c.run(&["status", "out/conf"]);
    assert!(o.status.success(), "{}", text(&o));
    let status = String::from_utf8_lossy(&o.stdout);
    assert!(
        status.contains("0 running")
            && status.contains(" not trained")
            && !status.contains(" pending"),
        "{status}"
    );
    let runs = csv_rows(&c.path("out/conf/runs.csv"));
    let done: Vec<&str> = runs
        .iter()
        .filter(|r| r["status"] == "done")
        .map(|r| r["run_id"].as_str())
        .collect();
    let survivor = runs
        .iter()
        .find(|r| r["role"] == "student" && r["status"] == "done" && r["seed"] == "0")
        .map(|r| r["run_id"].trim_end_matches("-s0").to_string())
        .expect("one cell finished");
    for seed in [5, 6] {
        for id in [
            format!("teacher-s{seed}"),
            format!("baseline-s{seed}"),
            format!("{survivor}-s{seed}"),
        ] {
            assert!(done.contains(&id.as_str()), "{id} not in {done:?}");
        }
    }
    // no other cell trains with the extra seeds
    assert_eq!(
        runs.iter()
            .filter(|r| r["seed"] == "5" || r["seed"] == "6")
            .count(),
        6,
        "{runs:?}"
    );
    // the verdict and its interval use all four seeds of the confirmed cell
    let summary = std::fs::read_to_string(c.path("out/conf/summary.md")).unwrap();
    let chosen = summary
        .lines()
        .find(|l| l.contains("◀ chosen"))
        .unwrap_or_else(|| panic!("{summary}"));
    assert!(chosen.ends_with("| 4 ◀ chosen |"), "{chosen}");
    assert!(
        summary.contains("seeds 0, 1 (the best cells also 5, 6)"),
        "{summary}"
    );
}

#[test]
fn search_settings_are_checked_and_slurm_says_to_use_run() {
    let c = Case::new(60, 20);
    for (extra, key, says) in [
        (
            "[search]\nstrategy = \"asha\"\n",
            "search.strategy",
            "unknown strategy",
        ),
        (
            "[search]\nstrategy = \"halving\"\neta = 1\n",
            "search.eta",
            "≥ 2",
        ),
        (
            "[search]\nstrategy = \"halving\"\nmin_epochs = 5\n",
            "search.min_epochs",
            "[student] epochs is 4",
        ),
        (
            "[search]\nmin_epochs = 2\n",
            "search.min_epochs",
            "strategy = \"halving\" only",
        ),
        (
            "[search]\nconfirm_seeds = [1]\n",
            "search.confirm_seeds",
            "already in `seeds`",
        ),
        (
            "[search]\nconfirm_seeds = [3, 3]\n",
            "search.confirm_seeds",
            "already listed",
        ),
        (
            "[search]\nconfirm_seeds = []\n",
            "search.confirm_seeds",
            "is empty",
        ),
        (
            "[search]\nconfirm_top = 2\n",
            "search.confirm_top",
            "without confirm_seeds",
        ),
        ("[search]\nrungs = 3\n", "search", "unknown field"),
    ] {
        let s = c.sweep("bad", &(grid_body() + extra));
        let o = c.run(&["plan", s.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{extra}: {}", text(&o));
        assert!(err.contains(key) && err.contains(says), "{extra}: {err}");
        assert!(err.contains("bad.toml:"), "line:column for {extra}: {err}");
    }
    let s = c.sweep("ok", &(grid_body() + HALVING));
    let o = c.run(&["slurm", s.to_str().unwrap(), "--results", "out"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("cannot run a sweep with a [search] table"),
        "{}",
        text(&o)
    );
    assert!(!c.path("out/ok/slurm").exists(), "nothing written");
    let o = c.run(&["run", s.to_str().unwrap(), "--task", "teacher-s0"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

/// Records of a folder whose status is `pruned` (paused at a rung so far).
fn pruned_records(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir.join("records"))
        .map(|d| {
            d.filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
                .filter(|t| t.contains("\"status\": \"pruned\""))
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn a_search_stopped_with_ctrl_c_and_started_again_ends_as_an_uninterrupted_one() {
    let c = Case::new(600, 60);
    let s = c.sweep("stop", &(grid_body() + HALVING));
    let o = c.run(&[s.to_str().unwrap(), "--results", "whole", "-q"]);
    assert!(o.status.success(), "{}", text(&o));
    let child = c
        .cmd()
        .args([s.to_str().unwrap(), "--results", "cut"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let dir = c.path("cut/stop");
    // stopped once the first rung has paused some runs
    assert!(
        common::wait_for(120, 20, || pruned_records(&dir) >= 3),
        "no pruned records appeared"
    );
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", text(&o));
    let o = c.run(&[s.to_str().unwrap(), "--results", "cut"]);
    assert!(o.status.success(), "{}", text(&o));
    // the same rungs decided the same way: every record as the uninterrupted search wrote it
    assert_eq!(records(&dir), records(&c.path("whole/stop")));
}
