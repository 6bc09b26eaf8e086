//! Stage 4 glue: executes one run of the plan inside a worker process — loads the data once per
//! worker, builds the model, trains it, publishes a teacher to the cache, writes the run's record.
//! Every failure (an error, a libtorch exception, a panic, divergence) becomes a failed record.

use crate::config::{Method, Sweep};
use crate::data::{self, Prepared};
use crate::model::{Arch, Net};
use crate::plan::{Role, RunSpec};
use crate::store::{self, RunRecord, Store};
use crate::train::{self, EpochStats, RunSettings, TeacherSignal, TrainError};
use serde::{Deserialize, Serialize};
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::time::Instant;
use tch::{nn, Device, Tensor};

/// One unit of work sent to a worker.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Job {
    /// Index of the run in the plan (echoed back in events).
    pub index: usize,
    pub run: RunSpec,
    /// The spec of the teacher this run distils from.
    pub teacher: Option<RunSpec>,
    pub sweep: Sweep,
    pub results_root: PathBuf,
    pub device: String,
    /// Further logit students of the same seed trained together with `run` as one fused model
    /// (index in the plan, spec); empty when not fused.
    #[serde(default)]
    pub also: Vec<(usize, RunSpec)>,
}

/// What a worker keeps between jobs: the dataset (loaded once per worker process) and the last
/// teacher's logits.
#[derive(Default)]
pub struct WorkerState {
    data: Option<(String, Prepared)>,
    logits: Option<(String, Tensor)>,
    features: Option<(String, Tensor)>,
}

pub fn parse_device(name: &str) -> Result<Device, String> {
    match name {
        "cpu" => Ok(Device::Cpu),
        n => match n
            .strip_prefix("cuda:")
            .and_then(|i| i.parse::<usize>().ok())
        {
            Some(i) => Ok(Device::Cuda(i)),
            None => Err(format!("unknown device {n:?}")),
        },
    }
}

/// Testing hooks: `KD_SWEEP_FAIL_RUN=<run id>` makes that run fail with an injected error,
/// `KD_SWEEP_CRASH_RUN=<run id>` aborts the worker process while it runs.
fn injected_fault(run_id: &str) -> Option<String> {
    if std::env::var("KD_SWEEP_CRASH_RUN").is_ok_and(|v| v.split(',').any(|r| r == run_id)) {
        std::process::abort();
    }
    std::env::var("KD_SWEEP_FAIL_RUN")
        .is_ok_and(|v| v.split(',').any(|r| r == run_id))
        .then(|| "injected failure (KD_SWEEP_FAIL_RUN)".to_string())
}

/// Runs a fused job (`job.run` and `job.also`, logit students of one seed with cached teacher logits)
/// and writes one record per member; returns (plan index, record) for each. On any failure every
/// member is recorded as failed with the reason.
pub fn execute_fused(
    job: &Job,
    state: &mut WorkerState,
    on_epoch: &mut dyn FnMut(usize, &EpochStats),
) -> Vec<(usize, RunRecord)> {
    let start = Instant::now();
    let members: Vec<(usize, &RunSpec)> = std::iter::once((job.index, &job.run))
        .chain(job.also.iter().map(|(i, r)| (*i, r)))
        .collect();
    let epochs = job.sweep.student.epochs;
    let outcome = std::panic::catch_unwind(AssertUnwindSafe(
        || -> Result<Vec<Vec<EpochStats>>, String> {
            let device = parse_device(&job.device)?;
            let data = load_data(&mut state.data, &job.sweep, &job.device, device)?;
            let teacher = job.teacher.as_ref().ok_or("a student needs its teacher")?;
            let store = Store::new(&job.results_root, &job.sweep.name);
            let logits = teacher_logits(
                &mut state.logits,
                teacher,
                &store.teacher_dir(&teacher.key),
                data,
                device,
            )?;
            let ms: Vec<crate::fused::Member> = members
                .iter()
                .map(|(_, r)| crate::fused::Member {
                    temperature: r.temperature.as_ref().map_or(1.0, |g| g.value),
                    alpha: r.alpha.as_ref().map_or(0.0, |g| g.value),
                })
                .collect();
            let init = crate::fused::common_init(data, device, job.run.seed);
            let s = &job.sweep.student;
            crate::fused::fit_fused(
                &init,
                data,
                logits,
                &ms,
                s.epochs,
                s.batch_size,
                s.lr,
                job.run.seed,
                &mut |i, e| on_epoch(members[i].0, e),
            )
            .map_err(|e| e.to_string())
        },
    ));
    let secs = start.elapsed().as_secs_f64();
    let store = Store::new(&job.results_root, &job.sweep.name);
    let reason = match &outcome {
        Ok(Ok(_)) => None,
        Ok(Err(e)) => Some(e.clone()),
        Err(panic) => Some(panic_reason(&**panic)),
    };
    let mut histories = match outcome {
        Ok(Ok(h)) => h.into_iter().map(Some).collect(),
        _ => vec![None; members.len()],
    };
    members
        .iter()
        .zip(histories.iter_mut())
        .map(|((i, run), h)| {
            let rec = match (h.take(), &reason) {
                (Some(h), None) => RunRecord::done(run, epochs, h, secs, &job.device),
                (_, r) => RunRecord::failed(
                    run,
                    epochs,
                    r.as_deref().unwrap_or("fused training failed"),
                    secs,
                    &job.device,
                ),
            };
            let rec = persist(&store, rec, run, secs);
            (*i, rec)
        })
        .collect()
}

/// The worker's copy of the dataset on `device`, loaded once per process.
fn load_data<'s>(
    slot: &'s mut Option<(String, Prepared)>,
    sweep: &Sweep,
    device_name: &str,
    device: Device,
) -> Result<&'s Prepared, String> {
    let data_key = serde_json::to_string(&(&sweep.data, device_name)).map_err(|e| e.to_string())?;
    if slot.as_ref().is_none_or(|(k, _)| *k != data_key) {
        *slot = None; // free the old tensors before loading the new ones
        let raw = data::read(sweep.data.dataset, &sweep.data.path).map_err(|e| e.to_string())?;
        *slot = Some((data_key, Prepared::from_raw(&raw, &sweep.data, device)));
    }
    Ok(&slot.as_ref().ok_or("dataset not loaded")?.1)
}

/// The failure reason of a panic: libtorch errors arrive as panics from tch, and their first line says
/// what happened.
fn panic_reason(payload: &(dyn std::any::Any + Send)) -> String {
    let msg = payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown panic".into());
    format!(
        "libtorch/panic: {}",
        msg.lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim()
    )
}

/// Writes a run's record and returns it — or, when it cannot be written, a failed record saying so.
/// A run stopped by Ctrl-C ("interrupted") is not a result: it is returned unwritten and redone later.
fn persist(store: &Store, record: RunRecord, run: &RunSpec, secs: f64) -> RunRecord {
    if record.error.as_deref() == Some("interrupted") {
        return record;
    }
    match store.save_record(&record) {
        Ok(_) => record,
        Err(e) => RunRecord::failed(
            run,
            record.epochs,
            &format!("cannot write the record: {e}"),
            secs,
            &record.device,
        ),
    }
}

/// Runs `job`, writes its record (and, for a teacher, its cache entry) and returns the record.
pub fn execute(
    job: &Job,
    state: &mut WorkerState,
    on_epoch: &mut dyn FnMut(&EpochStats),
) -> RunRecord {
    let start = Instant::now();
    let phase = job.run.phase(&job.sweep).clone();
    let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| train_run(job, state, on_epoch)));
    let secs = start.elapsed().as_secs_f64();
    let record = match outcome {
        Ok(Ok(history)) => RunRecord::done(&job.run, phase.epochs, history, secs, &job.device),
        Ok(Err(reason)) => RunRecord::failed(&job.run, phase.epochs, &reason, secs, &job.device),
        Err(panic) => RunRecord::failed(
            &job.run,
            phase.epochs,
            &panic_reason(&*panic),
            secs,
            &job.device,
        ),
    };
    persist(
        &Store::new(&job.results_root, &job.sweep.name),
        record,
        &job.run,
        secs,
    )
}

fn train_run(
    job: &Job,
    state: &mut WorkerState,
    on_epoch: &mut dyn FnMut(&EpochStats),
) -> Result<Vec<EpochStats>, String> {
    if let Some(reason) = injected_fault(&job.run.id) {
        return Err(reason);
    }
    let device = parse_device(&job.device)?;
    let sweep = &job.sweep;
    let data = load_data(&mut state.data, sweep, &job.device, device)?;
    let store = Store::new(&job.results_root, &sweep.name);
    let phase = job.run.phase(sweep);
    let settings = |stream| RunSettings {
        epochs: phase.epochs,
        batch_size: phase.batch_size,
        lr: phase.lr,
        seed: job.run.seed,
        stream,
    };
    let fail = |e: TrainError| e.to_string();

    match job.run.role {
        Role::Teacher => {
            let (vs, net) = train::init(Arch::Teacher, data, device, job.run.seed, "teacher");
            let history = train::fit(
                &vs,
                &net,
                data,
                &settings("teacher"),
                TeacherSignal::None,
                1.0,
                0.0,
                on_epoch,
            )
            .map_err(fail)?;
            let logits = train::logits(&net, &data.train_x);
            let secs = history.last().map_or(0.0, |e| e.seconds);
            let record =
                RunRecord::done(&job.run, phase.epochs, history.clone(), secs, &job.device);
            store::save_teacher(&store.teacher_dir(&job.run.key), &record, |dir| {
                vs.save(dir.join(store::WEIGHTS))
                    .map_err(|e| e.to_string())?;
                Tensor::write_safetensors(&[("logits", &logits)], dir.join(store::LOGITS))
                    .map_err(|e| e.to_string())
            })?;
            state.logits = Some((job.run.key.clone(), logits.to_device(device)));
            Ok(history)
        }
        Role::Baseline => {
            let (vs, net) = train::init(Arch::Student, data, device, job.run.seed, "student");
            train::fit(
                &vs,
                &net,
                data,
                &settings("student"),
                TeacherSignal::None,
                1.0,
                0.0,
                on_epoch,
            )
            .map_err(fail)
        }
        Role::Student => {
            let teacher = job.teacher.as_ref().ok_or("a student needs its teacher")?;
            let dir = store.teacher_dir(&teacher.key);
            let temperature = job.run.temperature.as_ref().map_or(1.0, |g| g.value);
            let alpha = job.run.alpha.as_ref().map_or(0.0, |g| g.value);
            let settings = settings("student");
            // what the student learns from; a teacher network is built before the student is
            // seeded, so the student's initial weights and dropout masks match the cached way
            let (live, labels);
            let signal = match job.run.method {
                Method::Logit if !sweep.cache_teacher_logits => {
                    live = load_teacher_net(&dir, data, device)?;
                    TeacherSignal::Live(&live)
                }
                Method::Logit => TeacherSignal::Cached(teacher_logits(
                    &mut state.logits,
                    teacher,
                    &dir,
                    data,
                    device,
                )?),
                Method::Imitation => {
                    labels = teacher_logits(&mut state.logits, teacher, &dir, data, device)?
                        .argmax(-1, false);
                    TeacherSignal::Labels(&labels)
                }
                Method::Feature => {
                    // the feature student trains with its regressor, built beside it
                    let maps = teacher_features(&mut state.features, teacher, &dir, data, device)?;
                    let (s_ch, t_ch) = (
                        Arch::Student.feature_channels(),
                        Arch::Teacher.feature_channels(),
                    );
                    let (vs, net, regressor) = train::init_with(
                        Arch::Student,
                        data,
                        device,
                        job.run.seed,
                        "student",
                        |p| nn::conv2d(p / "regressor", s_ch, t_ch, 1, Default::default()),
                    );
                    let signal = TeacherSignal::Features {
                        maps,
                        regressor: &regressor,
                    };
                    return train::fit(
                        &vs,
                        &net,
                        data,
                        &settings,
                        signal,
                        temperature,
                        alpha,
                        on_epoch,
                    )
                    .map_err(fail);
                }
            };
            let (vs, net) = train::init(Arch::Student, data, device, job.run.seed, "student");
            train::fit(
                &vs,
                &net,
                data,
                &settings,
                signal,
                temperature,
                alpha,
                on_epoch,
            )
            .map_err(fail)
        }
    }
}

/// The cached teacher's network, weights loaded.
fn load_teacher_net(dir: &std::path::Path, data: &Prepared, device: Device) -> Result<Net, String> {
    let mut tvs = nn::VarStore::new(device);
    let tnet = Net::new(&tvs.root(), Arch::Teacher, data.shape, data.classes);
    tvs.load(dir.join(store::WEIGHTS))
        .map_err(|e| format!("teacher weights: {e}"))?;
    Ok(tnet)
}

/// The tensor kept in `slot` for `key`, loading it with `load` when the slot holds another key (the
/// old tensor is freed first).
fn kept<'s>(
    slot: &'s mut Option<(String, Tensor)>,
    key: &str,
    load: impl FnOnce() -> Result<Tensor, String>,
) -> Result<&'s Tensor, String> {
    if slot.as_ref().is_none_or(|(k, _)| k != key) {
        *slot = None;
        *slot = Some((key.to_string(), load()?));
    }
    Ok(&slot.as_ref().ok_or("nothing loaded")?.1)
}

/// The teacher's logits on the training images, from the cache, kept in the worker between runs.
fn teacher_logits<'s>(
    slot: &'s mut Option<(String, Tensor)>,
    teacher: &RunSpec,
    dir: &std::path::Path,
    data: &Prepared,
    device: Device,
) -> Result<&'s Tensor, String> {
    let logits = kept(slot, &teacher.key, || {
        let t = Tensor::read_safetensors(dir.join(store::LOGITS))
            .map_err(|e| format!("teacher logits: {e}"))?;
        Ok(t.into_iter()
            .next()
            .ok_or("teacher logits file is empty")?
            .1
            .to_device(device))
    })?;
    if logits.size()[0] != data.n_train() {
        return Err(format!(
            "teacher logits have {} rows for {} training images",
            logits.size()[0],
            data.n_train()
        ));
    }
    Ok(logits)
}

/// The teacher's last feature map on the training images: computed once per teacher from its cached
/// weights, stored beside them (float32; 6.3 KB an image at 28×28, so 345 MB for 55,000 images), and
/// kept in the worker between runs.
fn teacher_features<'s>(
    slot: &'s mut Option<(String, Tensor)>,
    teacher: &RunSpec,
    dir: &std::path::Path,
    data: &Prepared,
    device: Device,
) -> Result<&'s Tensor, String> {
    kept(slot, &teacher.key, || {
        let maps = match store::load_features(dir) {
            Some(m) if m.size()[0] == data.n_train() => m,
            _ => {
                let tnet = load_teacher_net(dir, data, device)?;
                let m = train::feature_maps(&tnet, &data.train_x);
                store::save_features(dir, &m)?;
                m
            }
        };
        Ok(maps.to_device(device))
    })
}
