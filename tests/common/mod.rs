//! Helpers for tests that drive the real binary (after ripgrep's tests/util.rs): each test gets its
//! own folder with a small generated dataset in the real IDX format.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub struct Case {
    pub dir: tempfile::TempDir,
}

impl Case {
    /// A folder with a generated MNIST-format dataset under `data/`.
    pub fn new(n_train: usize, n_test: usize) -> Case {
        let dir = tempfile::tempdir().unwrap();
        kd_sweep::data::write::synthetic_mnist(&dir.path().join("data"), n_train, n_test, 3, true)
            .unwrap();
        Case { dir }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Writes a sweep file named `<name>.toml` over the generated data, on the CPU: the tests assert
    /// CPU numbers, so a sweep that does not name its devices gets `devices = "cpu"` (on a machine
    /// with a GPU, `auto` would train on it).
    pub fn sweep(&self, name: &str, body: &str) -> PathBuf {
        self.sweep_as_written(name, &on_the_cpu(body))
    }

    /// [`Case::sweep`] without pinning the devices (for the tests of device resolution).
    pub fn sweep_as_written(&self, name: &str, body: &str) -> PathBuf {
        let p = self.path(&format!("{name}.toml"));
        std::fs::write(&p, format!("name = \"{name}\"\n{body}")).unwrap();
        p
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_kd-sweep"));
        c.current_dir(self.dir.path());
        c.env_remove("KD_SWEEP_FAIL_RUN")
            .env_remove("KD_SWEEP_CRASH_RUN")
            .env_remove("KD_SWEEP_STEP_SLEEP_MS")
            .env_remove("KD_SWEEP_SLOW_WORKER_START");
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }

    /// Starts the binary in the background (a sweep to kill, interrupt or watch while it runs).
    pub fn spawn(&self, args: &[&str]) -> std::process::Child {
        self.cmd().args(args).spawn().unwrap()
    }
}

/// For tests that train in their own process: portable numerics' environment, set once before
/// libtorch first runs a kernel (every test of such a binary calls this first; libtorch reads the
/// variables once). A Python started afterwards (the PyTorch replay) inherits it, so both sides use
/// the same kernels on any x86-64 machine. Where portable numerics are unavailable (no AVX2, not
/// x86-64) nothing is set and libtorch keeps its own choice.
pub fn portable_numerics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if kd_sweep::platform::numerics::portable_available().is_ok() {
            for (k, v) in kd_sweep::platform::numerics::PORTABLE_ENV {
                std::env::set_var(k, v);
            }
        }
    });
}

/// `body` with `devices = "cpu"` in its `[schedule]` table, unless it names devices itself.
pub fn on_the_cpu(body: &str) -> String {
    if body.lines().any(|l| l.trim_start().starts_with("devices")) {
        return body.to_string();
    }
    match body.find("[schedule]\n") {
        Some(at) => {
            let end = at + "[schedule]\n".len();
            format!("{}devices = \"cpu\"\n{}", &body[..end], &body[end..])
        }
        None => format!("{body}\n[schedule]\ndevices = \"cpu\"\n"),
    }
}

/// Polls `done` every `every_ms` until it holds (true) or `secs` seconds have passed (false).
pub fn wait_for(secs: u64, every_ms: u64, mut done: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while !done() {
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(every_ms));
    }
    true
}

/// A small sweep body: `seeds`, the grid, a resnet8 teacher for 1 epoch and the tutorial student
/// for 2, 16 images per batch. resnet8, not the tutorial teacher: the tests are about the sweep,
/// not the teacher, and the tutorial teacher's 70 M multiply-adds per image were most of the
/// suite's time (its replay against PyTorch is `pytorch_parity.rs`'s).
pub fn body(seeds: &str, temps: &str, alphas: &str) -> String {
    format!(
        "seeds = {seeds}\n[data]\ndataset = \"mnist\"\npath = \"data\"\nvalidation = 40\n\
         [teacher]\nepochs = 1\nbatch_size = 16\nlr = 0.001\nmodel = \"resnet8\"\n[student]\nepochs = 2\nbatch_size = 16\nlr = 0.001\n\
         [grid]\ntemperature = {temps}\nalpha = {alphas}\n"
    )
}

pub fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Rows of a CSV file as maps from column to cell.
pub fn csv_rows(path: &Path) -> Vec<std::collections::HashMap<String, String>> {
    let mut r = csv::Reader::from_path(path).unwrap();
    let header: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
    r.records()
        .map(|rec| {
            header
                .iter()
                .cloned()
                .zip(rec.unwrap().iter().map(String::from))
                .collect()
        })
        .collect()
}

/// Modification times of every finished record file, by name (writers' temporary files left out).
pub fn record_mtimes(dir: &Path) -> std::collections::BTreeMap<String, std::time::SystemTime> {
    std::fs::read_dir(dir.join("records"))
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                // a writer's temporary file (`.<record>.tmp-…`) is not a record yet
                .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                .map(|e| {
                    (
                        e.file_name().to_string_lossy().into_owned(),
                        e.metadata().unwrap().modified().unwrap(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A generated MNIST-format dataset (`seed`) written to `dir` and prepared on the CPU, `validation`
/// training images held out: for tests that call the library directly.
pub fn mnist_dataset(
    dir: &Path,
    n_train: usize,
    n_test: usize,
    validation: usize,
    seed: u64,
) -> kd_sweep::data::Dataset {
    use kd_sweep::config::{DataConfig, DatasetKind};
    kd_sweep::data::write::synthetic_mnist(dir, n_train, n_test, seed, false).unwrap();
    let raw = kd_sweep::data::read(DatasetKind::Mnist, dir).unwrap();
    let cfg = DataConfig::of(DatasetKind::Mnist, dir.into(), validation, 0);
    kd_sweep::data::Dataset::from_raw(&raw, &cfg, tch::Device::Cpu)
}

/// Records as written, less what depends on the clock (and the checksum, which covers it).
pub fn records_without_clock(dir: &std::path::Path) -> Vec<serde_json::Value> {
    let mut v: Vec<(String, serde_json::Value)> = std::fs::read_dir(dir.join("records"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .map(|p| {
            let mut r: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
            let o = r.as_object_mut().unwrap();
            for k in ["seconds", "finished_at", "checksum"] {
                o.remove(k);
            }
            for e in o["history"].as_array_mut().unwrap() {
                e.as_object_mut().unwrap().remove("seconds");
            }
            (p.file_name().unwrap().to_string_lossy().into_owned(), r)
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v.into_iter().map(|(_, r)| r).collect()
}

/// epochs.csv's rows less the clock column, each as sorted (column, cell) pairs.
pub fn epochs_without_clock(dir: &Path) -> Vec<Vec<(String, String)>> {
    csv_rows(&dir.join("epochs.csv"))
        .into_iter()
        .map(|mut r| {
            r.remove("seconds");
            let mut v: Vec<(String, String)> = r.into_iter().collect();
            v.sort();
            v
        })
        .collect()
}

/// A network scripted by PyTorch (tests/fixtures/make_torchscript.py with the project's torch venv)
/// at `out`: `variant` "bn", "wide" or "plain", for `channels`-channel images and `classes` classes.
/// `None` (the caller skips, saying why) where no Python with torch is beside this libtorch.
pub fn scripted(
    out: &Path,
    variant: &str,
    channels: i64,
    classes: i64,
    seed: u64,
) -> Option<PathBuf> {
    let python = kd_sweep::tools::bench::reference_python(None)?;
    let maker = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/make_torchscript.py");
    let status = Command::new(python)
        .arg(maker)
        .arg(out)
        .args([
            variant,
            &channels.to_string(),
            &classes.to_string(),
            &seed.to_string(),
        ])
        .status()
        .unwrap();
    assert!(status.success(), "make_torchscript.py failed");
    Some(out.to_path_buf())
}

/// Says why a test that needs PyTorch did not run.
pub fn skip_without_pytorch() {
    eprintln!(
        "SKIPPED: no Python with torch beside this libtorch (LIBTORCH is not the pip wheel of \
         `make setup`); scripting a network needs PyTorch itself"
    );
}

/// A method's hyper-parameters as bench/kd_losses.py names them.
pub fn method_params(
    c: &kd_sweep::distill::Coord,
    f: &kd_sweep::distill::Fixed,
) -> serde_json::Value {
    let v = |x: &Option<kd_sweep::distill::GridValue>| x.as_ref().map(|g| g.value);
    serde_json::json!({
        "temperature": v(&c.temperature),
        "alpha": v(&c.alpha),
        "beta": v(&c.beta),
        "gamma": v(&c.gamma),
        "temperatures": c.temperatures.iter().map(|g| g.value).collect::<Vec<_>>(),
        "zscore": c.zscore,
        "warmup": f.dkd_warmup,
        "t_min": f.ctkd_t_min,
        "t_range": f.ctkd_t_range,
        "ramp": f.ctkd_ramp,
    })
}
