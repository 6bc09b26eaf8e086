//! Numerics modes end to end: portable numerics are the default and in every record and key, they
//! override the user's own kernel variables (and `plan` says so), native keeps the keys of every
//! record written before modes existed, and runs of the other mode are named, never mixed in.

mod common;
use common::{text, Case};

/// The golden sweep's runs as `plan --json` names them: (id, key).
fn keys(c: &Case, sweep: &std::path::Path, extra: &[&str]) -> Vec<(String, String)> {
    let mut args = vec!["plan", "--json", sweep.to_str().unwrap()];
    args.extend(extra);
    let out = c.run(&args);
    assert!(out.status.success(), "{}", text(&out));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    plan["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["id"].as_str().unwrap().to_string(),
                n["key"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn small(c: &Case) -> std::path::PathBuf {
    c.sweep(
        "nm",
        "seeds = [0]\n[data]\ndataset = \"mnist\"\npath = \"data\"\nvalidation = 40\n\
         [teacher]\nepochs = 1\nbatch_size = 16\nlr = 0.001\nthreads = 1\n\
         [student]\nepochs = 2\nbatch_size = 16\nlr = 0.001\n\
         [grid]\ntemperature = [1, 4]\nalpha = [0.5]\nmethod = [\"logit\", \"feature\", \"imitation\"]\n\
         [schedule]\nworkers_per_device = 1\nfuse = false\n",
    )
}

/// Native numerics without determinism add nothing to a key: a native key is computed exactly as
/// every key was before numerics modes existed, so a record written then under the same model
/// version is a native record still. Checked on the golden sweep's keys at model version 2 (commit
/// 1ec724f, tests/golden), recomputed here from the same key material with that version number.
#[test]
fn native_keys_are_the_keys_of_before() {
    let c = Case::new(200, 60);
    let s = small(&c);
    let native = keys(&c, &s, &["--numerics", "native"]);
    let ids: Vec<&str> = native.iter().map(|(i, _)| i.as_str()).collect();
    assert_eq!(
        ids,
        [
            "teacher-s0",
            "baseline-s0",
            "student-T1-a0.5-s0",
            "student-T4-a0.5-s0",
            "student-feature-a0.5-s0",
            "student-imitation-a0.5-s0"
        ]
    );
    // the plan's keys under a model version, from the library, with and without modes
    let sweep = kd_sweep::config::load(&s).unwrap();
    let raw = kd_sweep::data::read(sweep.data.dataset, &c.path("data")).unwrap();
    let at_v2 = kd_sweep::plan::build_at_version(&sweep_native(&sweep), &raw.fingerprint, 2);
    let before = [
        "a65b7e82fac11ae3916f77d1e859c3ebdb2dd98bdf179a1ecf987d0c152e7973",
        "4973c4c8d752e639925c90a8e495a38546f410da00b0c10306eb4c7b9eb815a3",
        "3a66cafc1fa00aa3e1d4ffe6c03359a9db784a964b93cefb53792b5a1007ca42",
        "2ecbe63aae29d8ff0ca1b540c8fbd786d80e8ddc0b5e33b111b113bf2d10aaac",
        "7029d6f8b0ed5359b5f921bcebf96ffb82206bc54dd379d12f2f395a73903ad4",
        "dfddcef7dbd3669f364047a04839233f5aa20f185de04db52087e079efa1a208",
    ];
    let got: Vec<&str> = at_v2.runs.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(
        got, before,
        "native keys at model version 2 are the keys of 1ec724f"
    );
    // and the binary's native keys are that computation at the current version
    let now = kd_sweep::plan::build(&sweep_native(&sweep), &raw.fingerprint);
    let want: Vec<(String, String)> = now
        .runs
        .iter()
        .map(|r| (r.id.clone(), r.key.clone()))
        .collect();
    assert_eq!(native, want);
    // portable and deterministic runs are other runs: every key differs
    if kd_sweep::platform::numerics::portable_available().is_ok() {
        let portable = keys(&c, &s, &[]);
        assert!(native
            .iter()
            .zip(&portable)
            .all(|(a, b)| a.0 == b.0 && a.1 != b.1));
    }
    let det = keys(&c, &s, &["--numerics", "native", "--deterministic"]);
    assert!(native.iter().zip(&det).all(|(a, b)| a.1 != b.1));
    // so are runs whose GPU steps are graphs
    let graphs = keys(&c, &s, &["--numerics", "native", "--cuda-graphs"]);
    assert!(native.iter().zip(&graphs).all(|(a, b)| a.1 != b.1));
    assert!(det.iter().zip(&graphs).all(|(a, b)| a.1 != b.1));
}

fn sweep_native(s: &kd_sweep::config::Sweep) -> kd_sweep::config::Sweep {
    let mut s = s.clone();
    s.schedule.numerics = kd_sweep::platform::numerics::Numerics::Native;
    s
}

#[test]
fn portable_numerics_override_the_users_kernel_variables_and_never_mix_with_native() {
    if let Err(why) = kd_sweep::platform::numerics::portable_available() {
        eprintln!("SKIPPED: portable numerics are unavailable here: {why}");
        return;
    }
    let c = Case::new(200, 60);
    let s = small(&c);
    let sweep = s.to_str().unwrap();
    // the user's shell asks for other kernels: portable numerics replace them, and plan says so
    let plan = c
        .cmd()
        .args(["plan", sweep])
        .env("ATEN_CPU_CAPABILITY", "default")
        .output()
        .unwrap();
    assert!(plan.status.success(), "{}", text(&plan));
    let said = String::from_utf8_lossy(&plan.stdout);
    assert!(
        said.contains("numerics: portable")
            && said.contains("replaces your ATEN_CPU_CAPABILITY=default"),
        "{said}"
    );
    let run = c
        .cmd()
        .args([sweep, "--quiet", "--results", "a"])
        .env("ATEN_CPU_CAPABILITY", "default")
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", text(&run));
    let b = c.run(&[sweep, "--quiet", "--results", "b"]);
    assert!(b.status.success(), "{}", text(&b));
    // the workers computed with AVX2 kernels both times (a worker checks the level ATen chose, so a
    // run under other kernels would have failed): the same bytes
    let a = common::records_without_clock(&c.path("a/nm"));
    assert_eq!(a, common::records_without_clock(&c.path("b/nm")));
    assert_eq!(a.len(), 6);
    assert!(a.iter().all(|r| r["numerics"] == "portable"), "{a:?}");
    // each names the CPU it computed on (portable numerics agree within a CPU vendor only)
    let vendor = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap()
        .lines()
        .find_map(|l| {
            Some(
                l.strip_prefix("vendor_id")?
                    .split(':')
                    .nth(1)?
                    .trim()
                    .to_string(),
            )
        })
        .unwrap();
    assert!(
        (a.iter()).all(|r| r["cpu"].as_str().is_some_and(|c| c.starts_with(&vendor))),
        "{a:?}"
    );
    // native numerics: the same runs under other keys, so the portable records are not reused; plan
    // names them instead of mixing them in
    let plan = c.run(&["plan", sweep, "--results", "a", "--numerics", "native"]);
    assert!(plan.status.success(), "{}", text(&plan));
    let said = String::from_utf8_lossy(&plan.stdout);
    assert!(
        said.contains("6 run(s) of this plan finished earlier under numerics = \"portable\""),
        "{said}"
    );
    assert!(said.contains("numerics: native"), "{said}");
    let native = c.run(&[sweep, "--quiet", "--results", "a", "--numerics", "native"]);
    assert!(native.status.success(), "{}", text(&native));
    let both = common::records_without_clock(&c.path("a/nm"));
    assert_eq!(both.len(), 12, "both modes' records are kept");
    let natives: Vec<_> = both
        .iter()
        .filter(|r| r.get("numerics").is_none())
        .collect();
    assert_eq!(
        natives.len(),
        6,
        "native records carry no numerics field (as before modes)"
    );
}

#[test]
fn a_cluster_task_trains_under_the_sweeps_numerics() {
    if let Err(why) = kd_sweep::platform::numerics::portable_available() {
        eprintln!("SKIPPED: portable numerics are unavailable here: {why}");
        return;
    }
    let c = Case::new(200, 60);
    let s = small(&c);
    // `run --task` trains in its own process: it re-executes itself with portable numerics'
    // environment first (its worker-side check would fail the run otherwise)
    let out = c
        .cmd()
        .args([
            "run",
            s.to_str().unwrap(),
            "--task",
            "teacher-s0",
            "--results",
            "t",
            "--devices",
            "auto",
        ])
        .env("ATEN_CPU_CAPABILITY", "default")
        .env("CUDA_VISIBLE_DEVICES", "")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    // said once, by the process that trains (it was said again after the re-execution)
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        said.matches("devices = \"auto\": running on the CPU")
            .count(),
        1,
        "{said}"
    );
    let full = c.run(&[s.to_str().unwrap(), "--quiet", "--results", "f"]);
    assert!(full.status.success(), "{}", text(&full));
    let task = common::records_without_clock(&c.path("t/nm"));
    let teacher = common::records_without_clock(&c.path("f/nm"))
        .into_iter()
        .find(|r| r["run_id"] == "teacher-s0")
        .unwrap();
    assert_eq!(
        task,
        vec![teacher],
        "the task's teacher is the sweep's, bit for bit"
    );
}
