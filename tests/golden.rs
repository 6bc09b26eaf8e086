//! Existing results stay valid: a small sweep's run keys, record file names and the numbers in its
//! runs.csv and epochs.csv (everything but wall-clock seconds) are pinned in `tests/golden/`.
//!
//! A change that alters any of them must bump `MODEL_VERSION` (or the record format) and regenerate
//! the file on purpose: `KD_SWEEP_BLESS=1 cargo test --release --test golden`. A refactor must leave
//! the file as it is.
//!
//! The sweep runs under portable numerics (the default, [`kd_sweep::numerics`]): every x86-64 machine
//! computes it with the same CPU kernels, so one file holds its numbers bit for bit on every such
//! machine — Intel or AMD, AVX2 or AVX-512. (Native numerics gave each kind of CPU its own last bits.)

mod common;
use common::{text, Case};

/// Every run family (teacher, baseline, logit, feature, imitation), fused and unfused, on the CPU.
fn golden_sweep(c: &Case, fuse: bool) -> std::path::PathBuf {
    let body = format!(
        "seeds = [0]\n[data]\ndataset = \"mnist\"\npath = \"data\"\nvalidation = 40\n\
         [teacher]\nepochs = 1\nbatch_size = 16\nlr = 0.001\nthreads = 1\n\
         [student]\nepochs = 2\nbatch_size = 16\nlr = 0.001\n\
         [grid]\ntemperature = [1, 4]\nalpha = [0.5]\nmethod = [\"logit\", \"feature\", \"imitation\"]\n\
         [schedule]\ndevices = \"cpu\"\nworkers_per_device = 1\nfuse = {fuse}\n"
    );
    c.sweep("golden", &body)
}

/// The CSV without its `seconds` column (the only cell that depends on the machine's speed).
fn without_seconds(path: &std::path::Path) -> String {
    let mut r = csv::Reader::from_path(path).unwrap();
    let header: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
    let keep: Vec<usize> = (0..header.len())
        .filter(|&i| header[i] != "seconds")
        .collect();
    let mut out = String::new();
    let pick = |cells: Vec<String>| {
        keep.iter()
            .map(|&i| cells[i].clone())
            .collect::<Vec<_>>()
            .join(",")
    };
    out.push_str(&pick(header.clone()));
    out.push('\n');
    for rec in r.records() {
        out.push_str(&pick(rec.unwrap().iter().map(String::from).collect()));
        out.push('\n');
    }
    out
}

fn snapshot(c: &Case) -> String {
    let dir = c.path("results/golden");
    let mut names: Vec<String> = std::fs::read_dir(dir.join("records"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let plan = c.run(&["plan", "--json", "golden.toml"]);
    assert!(plan.status.success(), "{}", text(&plan));
    let plan: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    let keys: Vec<String> = plan["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            format!(
                "{} {}",
                n["id"].as_str().unwrap(),
                n["key"].as_str().unwrap()
            )
        })
        .collect();
    // each record as written, less what depends on the clock (seconds, finished_at) and the checksum
    // over them: every other byte, full-precision floats included, is pinned
    let records: Vec<String> = names
        .iter()
        .map(|n| {
            let mut v: serde_json::Value =
                serde_json::from_slice(&std::fs::read(dir.join("records").join(n)).unwrap())
                    .unwrap();
            let o = v.as_object_mut().unwrap();
            for k in ["seconds", "finished_at", "checksum"] {
                o.remove(k);
            }
            for e in o["history"].as_array_mut().unwrap() {
                e.as_object_mut().unwrap().remove("seconds");
            }
            v.to_string()
        })
        .collect();
    format!(
        "# keys\n{}\n# records\n{}\n# runs.csv\n{}# epochs.csv\n{}# record contents\n{}\n",
        keys.join("\n"),
        names.join("\n"),
        without_seconds(&dir.join("runs.csv")),
        without_seconds(&dir.join("epochs.csv")),
        records.join("\n"),
    )
}

fn check(fuse: bool) {
    if let Err(why) = kd_sweep::numerics::portable_available() {
        eprintln!(
            "SKIPPED: the golden numbers are portable numerics' (AVX2 with FMA), unavailable here: {why}"
        );
        return;
    }
    let c = Case::new(200, 60);
    let sweep = golden_sweep(&c, fuse);
    let out = c.run(&[sweep.to_str().unwrap(), "--quiet"]);
    assert!(out.status.success(), "{}", text(&out));
    let got = snapshot(&c);
    let golden =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/small-sweep.txt");
    if std::env::var_os("KD_SWEEP_BLESS").is_some() && !fuse {
        std::fs::write(&golden, &got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&golden).unwrap();
    if fuse {
        // fused and unfused training agree to float rounding, not bit for bit: the fused sweep's
        // keys and record names are compared exactly
        let head = |s: &str| s.split("# runs.csv").next().unwrap_or_default().to_string();
        assert_eq!(head(&got), head(&want), "keys or record names changed");
        return;
    }
    assert_eq!(
        got, want,
        "the small sweep's keys or numbers changed; if on purpose, bump MODEL_VERSION and bless"
    );
}

#[test]
fn a_small_sweep_keeps_its_keys_and_numbers() {
    check(false);
}

#[test]
fn a_small_fused_sweep_keeps_its_keys() {
    check(true);
}
