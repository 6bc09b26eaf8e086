//! Stage 4 glue: executes one job inside a worker process (or in-process for `run --task`) — loads
//! the data once per worker, builds the model, trains it, publishes a teacher to the cache, writes the
//! run's record. Every failure (an error, a libtorch exception, a panic, divergence) becomes a failed
//! record; a run stopped by Ctrl-C or SIGTERM becomes [`Outcome::Interrupted`] and writes nothing.

use crate::data::{self, Dataset};
use crate::distill::{Distiller, Needs};
use crate::model::Net;
use crate::plan::{Role, RunSpec};
use crate::platform::device::DeviceSpec;
use crate::run::job::{Job, Outcome};
use crate::store::checkpoint::RunCheckpoint;
use crate::store::{self, RunRecord, Store};
use crate::train::{self, Checkpoints, EpochStats, Fitted, Hooks, RunSettings, Source, TrainError};
use std::panic::AssertUnwindSafe;
use std::time::Instant;
use tch::{nn, Device, Tensor};

/// Why a run failed (or stopped). Its `Display` is the reason written into the failed record.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Train(#[from] TrainError),
    #[error(transparent)]
    Data(#[from] data::DataError),
    /// The teacher cache: weights, logits or feature maps missing, corrupt or not writable.
    #[error("{0}")]
    Cache(String),
    #[error("a student needs its teacher")]
    NoTeacher,
    #[error("injected failure (KD_SWEEP_FAIL_RUN)")]
    Injected,
    /// The network cannot be built (a TorchScript file missing, changed or not loadable).
    #[error("the network: {0}")]
    Model(String),
    /// This process cannot compute the numbers the sweep asks for (numerics mode, determinism).
    #[error("numerics: {0}")]
    Numerics(String),
    /// CUDA graphs were asked for and this binary cannot make them.
    #[error("{0}")]
    Graphs(String),
    /// A libtorch exception (tch panics with it) or another panic: its first line.
    #[error("libtorch/panic: {0}")]
    Panic(String),
}

impl RunError {
    /// Stopped on request: not a result, the run is redone later.
    pub fn is_interrupted(&self) -> bool {
        matches!(self, RunError::Train(TrainError::Interrupted))
    }
}

impl From<String> for RunError {
    fn from(s: String) -> Self {
        RunError::Cache(s)
    }
}

/// What a worker keeps between jobs: the dataset (loaded once per worker process) and the last
/// teacher's logits and feature maps.
#[derive(Default)]
pub struct WorkerState {
    data: Option<(String, Dataset)>,
    logits: Option<(String, Tensor)>,
    features: Option<(String, Tensor)>,
    /// The last teacher's logits on the test images (for the imitation measures).
    test_logits: Option<(String, Tensor)>,
}

/// The machine a worker computes a job's runs on, as their records name it.
struct Here {
    gpu: Option<String>,
    cpu: Option<String>,
    /// [`crate::record::machine_kind`]: what its checkpoints say computed them.
    kind: Option<String>,
}

impl Here {
    fn of(job: &Job) -> Here {
        let gpu = crate::platform::device::gpu_of(job.device);
        let cpu = crate::platform::device::cpu_of(job.device);
        let (device, numerics) = (job.device.to_string(), job.run.numerics);
        let kind = crate::record::machine_kind(&device, gpu.as_deref(), cpu.as_deref(), numerics);
        Here { gpu, cpu, kind }
    }

    /// Names this machine on `record` and, when the run continued from a checkpoint that other kinds
    /// of machine computed, those: what `continued` (the run's checkpoint; a teacher's snapshot
    /// names its teacher's) loaded.
    fn stamp(&self, record: &mut RunRecord, continued: &RunCheckpoint) {
        record.gpu = self.gpu.clone();
        record.cpu = self.cpu.clone();
        record.earlier_machines = continued.machines_before();
    }

    /// The checkpoint of `run`, one of `job`'s, on this machine.
    fn checkpoint(&self, store: &Store, job: &Job, run: &RunSpec) -> RunCheckpoint {
        let every = job.sweep.schedule.checkpoint_every();
        RunCheckpoint::new(store, &run.id, &run.key, every).on(self.kind.clone())
    }
}

/// Where a run is computed: this machine, and the run's checkpoint (what it continued from).
type At<'a> = (&'a Here, &'a RunCheckpoint);

/// Testing hooks: `KD_SWEEP_FAIL_RUN=<run id>` makes that run fail with an injected error,
/// `KD_SWEEP_CRASH_RUN=<run id>` aborts the worker process while it runs.
fn injected_fault(run_id: &str) -> Result<(), RunError> {
    let listed = |var: &str| std::env::var(var).is_ok_and(|v| v.split(',').any(|r| r == run_id));
    if listed("KD_SWEEP_CRASH_RUN") {
        std::process::abort();
    }
    if listed("KD_SWEEP_FAIL_RUN") {
        return Err(RunError::Injected);
    }
    Ok(())
}

/// Runs `job` — one run, or a fused group of a seed's logit students — writes a record per run (and,
/// for a teacher, its cache entry) and returns each run's outcome with its plan index, the leader
/// first. On a failure every member of a group is recorded as failed with the reason.
pub fn execute_job(
    job: &Job,
    state: &mut WorkerState,
    on_epoch: &mut dyn FnMut(usize, &EpochStats),
) -> Vec<(usize, Outcome)> {
    let start = Instant::now();
    // the run's own thread count (part of its key), whatever the worker started with
    let threads = job.run.phase(&job.sweep).threads.max(1);
    tch::set_num_threads(threads as i32);
    let members = job.runs();
    let here = Here::of(job);
    let store = Store::new(&job.results_root, &job.sweep.name);
    // each member's checkpoint, on this machine: what it continued from is in its record
    let checkpoints: Vec<RunCheckpoint> = members
        .iter()
        .map(|(_, r)| here.checkpoint(&store, job, r))
        .collect();
    let trained = std::panic::catch_unwind(AssertUnwindSafe(|| {
        how_to_compute(&job.sweep.schedule, job.device)?;
        if job.also.is_empty() {
            let at = (&here, &checkpoints[0]);
            Ok(vec![train_run((job, at), state, &mut |e| {
                on_epoch(job.index, e)
            })])
        } else {
            train_fused((job, &checkpoints), state, &mut |i, e| {
                on_epoch(members[i].0, e)
            })
        }
    }))
    .unwrap_or_else(|panic| Err(RunError::Panic(panic_message(&*panic))));
    let secs = start.elapsed().as_secs_f64();
    let epochs = job.run.phase(&job.sweep).epochs;
    let device = job.device.to_string();
    // one ending per member: a failure of the whole job (data, cache, a panic) is every member's
    let each: Vec<RunEnd> = match trained {
        Ok(each) => each.into_iter().map(RunEnd::of).collect(),
        Err(e) => vec![RunEnd::of(Err(e)); members.len()],
    };
    let records: Vec<Option<RunRecord>> = members
        .iter()
        .zip(each)
        .map(|((_, run), end)| match end {
            // a run's seconds are its training's, as its epochs count them: across every
            // interruption it was continued from, and the same in the sweep that trained a teacher
            // and in the sweeps that reuse it from the cache
            RunEnd::Trained(f) => {
                let trained = f.seconds().unwrap_or(secs);
                Some(RunRecord::done(run, epochs, *f, trained, &device))
            }
            RunEnd::Paused(history) => {
                let trained = history.last().map_or(secs, |e| e.seconds);
                Some(RunRecord::pruned(run, history, trained, &device))
            }
            RunEnd::Failed(why) => Some(RunRecord::failed(run, epochs, &why, secs, &device)),
            RunEnd::Interrupted => None,
        })
        .zip(&checkpoints)
        .map(|(r, checkpoint)| {
            r.map(|mut r| {
                r.threads = Some(threads);
                here.stamp(&mut r, checkpoint);
                r
            })
        })
        .collect();
    members
        .iter()
        .zip(records)
        .map(|((i, run), record)| {
            let outcome = match record {
                None => Outcome::Interrupted,
                Some(mut r) => {
                    if r.status == crate::record::Status::Done {
                        r.snapshots = snapshot_stats(&store, run);
                    }
                    Outcome::Recorded(Box::new(persist(&store, r, run, secs)))
                }
            };
            (*i, outcome)
        })
        .collect()
}

/// A teacher's snapshots' accuracies, from their cache entries (written while it trained, also
/// before an interruption it continued from).
fn snapshot_stats(store: &Store, run: &RunSpec) -> Vec<crate::record::SnapshotStats> {
    run.snapshots
        .iter()
        .filter_map(|s| {
            let entry = store::load_teacher(&store.teacher_dir(&s.key)).ok()??;
            Some(crate::record::SnapshotStats {
                epoch: s.epoch,
                val_acc: entry.record.val_acc?,
                test_acc: entry.record.test_acc?,
            })
        })
        .collect()
}

/// Sets this process's libtorch switches for the job's sweep: on a GPU, determinism (cuDNN's
/// deterministic algorithms and PyTorch's deterministic-algorithms switch) or, when it is not asked
/// for, cuDNN's benchmark search; everywhere, that the CPU kernels are those of the sweep's numerics
/// mode (which the process was started with: see [`crate::platform::numerics`]).
fn how_to_compute(
    schedule: &crate::config::ScheduleConfig,
    device: DeviceSpec,
) -> Result<(), RunError> {
    crate::platform::numerics::check_in_effect(schedule.numerics).map_err(RunError::Numerics)?;
    if device.is_cuda() {
        crate::platform::torch_ext::set_deterministic(schedule.deterministic)
            .map_err(RunError::Numerics)?;
        crate::platform::torch_ext::set_cudnn_benchmark(!schedule.deterministic);
    }
    let graphs = schedule.cuda_graphs && device.is_cuda();
    if graphs && !crate::platform::cuda_graph::built() {
        return Err(RunError::Graphs(
            "cuda_graphs = true, but this kd-sweep was built without CUDA graphs (the CUDA \
             runtime's headers were not found beside libtorch at build time): run without it"
                .into(),
        ));
    }
    crate::train::graph::set_mode(match graphs {
        true => crate::train::graph::Mode::Cuda,
        false => crate::train::graph::Mode::Off,
    });
    Ok(())
}

/// How one run of a job ended, before its record is written.
#[derive(Clone)]
enum RunEnd {
    Trained(Box<Fitted>),
    /// The reason its failed record carries.
    Failed(String),
    /// Stopped on request: no record; it runs again later.
    Interrupted,
    /// Stopped at a search rung: a pruned record with its epochs (promotion continues it).
    Paused(Vec<EpochStats>),
}

impl RunEnd {
    fn of(r: Result<Fitted, RunError>) -> RunEnd {
        match r {
            Ok(f) => RunEnd::Trained(Box::new(f)),
            Err(e) if e.is_interrupted() => RunEnd::Interrupted,
            Err(RunError::Train(TrainError::Paused(history))) => RunEnd::Paused(history),
            Err(e) => RunEnd::Failed(e.to_string()),
        }
    }
}

/// Trains a fused group (`job.run` and `job.also`: logit students of one seed with cached teacher
/// logits) and returns each member's epochs, or its own failure (a member that diverges fails alone).
fn train_fused(
    (job, checkpoints): (&Job, &[RunCheckpoint]),
    state: &mut WorkerState,
    on_epoch: &mut dyn FnMut(usize, &EpochStats),
) -> Result<Vec<Result<Fitted, RunError>>, RunError> {
    let device = job.device.tch();
    let data = load_data(&mut state.data, job)?;
    let teacher = job.teacher.as_ref().ok_or(RunError::NoTeacher)?;
    let store = Store::new(&job.results_root, &job.sweep.name);
    let logits = teacher_logits(
        &mut state.logits,
        teacher,
        &store.teacher_dir(&teacher.key),
        data,
        device,
    )?;
    let layout = job.sweep.teacher.channels_last;
    let reference = teacher_test_logits(
        &mut state.test_logits,
        (teacher, layout),
        &store,
        data,
        device,
    )?;
    let runs = job.runs();
    let settings = RunSettings::of(&job.sweep.student, job.run.seed, job.run.stream());
    let init = crate::train::fused::common_init(data, device, &settings);
    // each member keeps its own checkpoint; members continue together from a common position only
    let states = checkpoints.iter().map(train::Checkpoints::load).collect();
    let mut each: Vec<Option<Result<Fitted, RunError>>> = runs.iter().map(|_| None).collect();
    for (part, resume) in crate::train::fused::resume_groups(states) {
        let sub: Vec<crate::train::fused::Member> = part
            .iter()
            .map(|&i| crate::train::fused::Member {
                temperature: runs[i].1.temperature_value(),
                alpha: runs[i].1.alpha_value(),
            })
            .collect();
        let mut report = |j: usize, e: &EpochStats| on_epoch(part[j], e);
        let mut hooks = crate::train::DriveHooks {
            on_epoch: &mut report,
            checkpoints: part
                .iter()
                .map(|&i| &checkpoints[i] as &dyn train::Checkpoints)
                .collect(),
            resume,
            until: job.until,
            teacher_test_logits: reference,
            at_epoch_end: None,
        };
        let fitted =
            crate::train::fused::fit_fused(&init, data, logits, &sub, &settings, &mut hooks)?;
        for (&i, r) in part.iter().zip(fitted) {
            each[i] = Some(r.map_err(RunError::from));
        }
    }
    Ok(each
        .into_iter()
        .map(|r| r.unwrap_or(Err(RunError::Cache("no result for a group member".into()))))
        .collect())
}

/// The worker's copy of the dataset on `device`, loaded once per process.
fn load_data<'s>(
    slot: &'s mut Option<(String, Dataset)>,
    job: &Job,
) -> Result<&'s Dataset, RunError> {
    let (sweep, device) = (&job.sweep, job.device);
    let data_key = serde_json::to_string(&(&sweep.data, device)).unwrap_or_default();
    if slot.as_ref().is_none_or(|(k, _)| *k != data_key) {
        *slot = None; // free the old tensors before loading the new ones
        let cache = store::data_cache(&job.results_root);
        let opts = data::ReadOptions::of(&sweep.data, Some(cache));
        let raw = data::read_with(sweep.data.dataset, &sweep.data.path, &opts)?;
        *slot = Some((data_key, Dataset::from_raw(&raw, &sweep.data, device.tch())));
    }
    Ok(&slot
        .as_ref()
        .ok_or(RunError::Cache("dataset not loaded".into()))?
        .1)
}

/// The first line of a panic's message: libtorch errors arrive as panics from tch, and their first
/// line says what happened.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    crate::util::first_line(&crate::platform::panic_message(payload))
}

/// Writes a run's record and returns it — or, when it cannot be written, a failed record saying so.
fn persist(store: &Store, record: RunRecord, run: &RunSpec, secs: f64) -> RunRecord {
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

fn train_run(
    (job, at): (&Job, At),
    state: &mut WorkerState,
    on_epoch: &mut dyn FnMut(&EpochStats),
) -> Result<Fitted, RunError> {
    injected_fault(&job.run.id)?;
    let device = job.device.tch();
    let sweep = &job.sweep;
    let data = load_data(&mut state.data, job)?;
    let store = Store::new(&job.results_root, &sweep.name);
    let settings = RunSettings::of(job.run.phase(sweep), job.run.seed, job.run.stream());
    let arch = job.run.arch();
    let checkpoint = at.1;
    // loaded here, not in `fit`: a TorchScript network continues from the module it holds
    let resume = checkpoint.load();
    let saved = resume.as_ref().and_then(|s| s.script_state());
    let saved = saved.as_ref();
    // a student's teacher, or a baseline's seed's teacher: how closely the run imitates it
    let reference = match (
        job.run.role,
        job.teacher.as_ref().or(job.reference.as_ref()),
    ) {
        (Role::Teacher, _) | (_, None) => None,
        (_, Some(t)) => {
            let teacher = (t, job.sweep.teacher.channels_last);
            teacher_test_logits(&mut state.test_logits, teacher, &store, data, device)?
        }
    };
    let init =
        |arch| train::try_init(arch, data, device, &settings, saved).map_err(RunError::Model);
    // a teacher's network is built first: its snapshots (`[grid] teacher_epoch`) are taken from it
    // at the end of their epochs
    let teacher = match job.run.role {
        Role::Teacher => Some(init(arch)?),
        _ => None,
    };
    let mut snapshot = |epoch: u32, history: &[EpochStats]| -> Result<(), TrainError> {
        let (Some(s), Some((vs, net))) = (job.run.snapshot(epoch), &teacher) else {
            return Ok(());
        };
        save_snapshot((job, at), &store, s, (vs, net), data, history).map_err(|e| {
            TrainError::Script(format!("the teacher's snapshot after epoch {epoch}: {e}"))
        })
    };
    let mut hooks = Hooks {
        on_epoch,
        checkpoints: Some(checkpoint),
        resume,
        until: job.until,
        teacher_test_logits: reference,
        at_epoch_end: (!job.run.snapshots.is_empty()).then_some(&mut snapshot),
    };

    let plain = Distiller::none().with_label_smoothing(settings.label_smoothing);
    let fitted = match job.run.role {
        Role::Teacher => {
            let (vs, net) = teacher.as_ref().ok_or(RunError::NoTeacher)?;
            let fitted = match settings.epochs {
                // used as it is: a kd-sweep network's weights from its file (a TorchScript
                // network's are its file's already, init = "as-saved"), evaluated, never trained
                0 => {
                    if let Some(w) = &job.run.phase(sweep).weights {
                        (w.load_into(vs, arch, data.classes)).map_err(RunError::Model)?;
                    }
                    train::as_loaded(net, data)
                }
                _ => train::fit(
                    (vs, net),
                    data,
                    &settings,
                    (Source::None, &plain),
                    &mut hooks,
                )?,
            };
            let logits = publish_teacher((job, at), &store, (vs, net), data, &fitted)?;
            state.logits = Some((job.run.key.clone(), logits));
            fitted
        }
        Role::Baseline => {
            let (vs, net) = init(arch)?;
            train::fit(
                (&vs, &net),
                data,
                &settings,
                (Source::None, &plain),
                &mut hooks,
            )?
        }
        Role::Student => train_student(
            job,
            data,
            (&mut state.logits, &mut state.features),
            &store,
            (&settings, saved),
            &mut hooks,
        )?,
    };
    Ok(fitted)
}

/// What a student learns from: rows the worker keeps (logits, labels, feature maps of the training
/// images), or the teacher's network for each step's batch.
enum Signal<'t> {
    Rows(&'t Tensor),
    Labels(Tensor),
    Net(Box<Net>),
}

/// Trains a distilled student: its method ([`Distiller`]) from its grid coordinate, what the
/// method needs from the teacher — cached rows when the batches are the plain training images, the
/// teacher's network when they are augmented or logits are not cached — and fits it.
fn train_student(
    job: &Job,
    data: &Dataset,
    (logits_slot, features_slot): (&mut Kept, &mut Kept),
    store: &Store,
    (settings, saved): (&RunSettings, Option<&Tensor>),
    hooks: &mut Hooks,
) -> Result<Fitted, RunError> {
    let device = job.device.tch();
    let arch = job.run.arch();
    let teacher = job.teacher.as_ref().ok_or(RunError::NoTeacher)?;
    let dir = store.teacher_dir(&teacher.key);
    let epochs = job.run.phase(&job.sweep).epochs;
    let mut distiller = Distiller::new(&job.run.coord, &job.sweep.methods_fixed, epochs)
        .with_label_smoothing(settings.label_smoothing);
    // augmented batches are new images every epoch: the teacher sees each one in the step (nothing
    // computed on the plain training images applies)
    let live = !settings.augment.is_none()
        || (distiller.needs() == Needs::Logits && !job.sweep.cache_teacher_logits);
    // a teacher network is built before the student is seeded, so the student's initial weights
    // and dropout masks match the cached way
    let signal = match distiller.needs() {
        _ if live => Signal::Net(Box::new(load_teacher_net(
            (teacher, job.sweep.teacher.channels_last),
            &dir,
            data,
            device,
        )?)),
        Needs::Nothing | Needs::Logits => {
            Signal::Rows(teacher_logits(logits_slot, teacher, &dir, data, device)?)
        }
        Needs::Labels => Signal::Labels(
            teacher_logits(logits_slot, teacher, &dir, data, device)?.argmax(-1, false),
        ),
        Needs::Features => Signal::Rows(teacher_features(
            features_slot,
            (teacher, job.sweep.teacher.channels_last),
            &dir,
            data,
            device,
        )?),
    };
    // the method's own parameters (a regressor, CTKD's temperature) are built beside the student,
    // from a random stream of their own
    let channels = |a: crate::model::Arch| a.feature_channels(data.shape);
    let dims = if distiller.needs() == Needs::Features {
        (
            channels(arch).map_err(RunError::Model)?,
            channels(teacher.arch()).map_err(RunError::Model)?,
        )
    } else {
        (0, 0)
    };
    let (vs, net, ()) = train::try_init_with(arch, data, device, settings, saved, |p| {
        distiller.build(p, dims, settings.init)
    })
    .map_err(RunError::Model)?;
    let source = match &signal {
        Signal::Rows(t) => Source::Cached(t),
        Signal::Labels(t) => Source::Cached(t),
        Signal::Net(n) => Source::Live(n),
    };
    Ok(train::fit(
        (&vs, &net),
        data,
        settings,
        (source, &distiller),
        hooks,
    )?)
}

/// Puts a trained teacher into the cache (weights, training-set logits, its record) and returns its
/// logits on its device, for the worker to keep for the students that follow.
fn publish_teacher(
    (job, at): (&Job, At),
    store: &Store,
    (vs, net): (&nn::VarStore, &Net),
    data: &Dataset,
    fitted: &Fitted,
) -> Result<Tensor, RunError> {
    let secs = fitted.seconds().unwrap_or(0.0);
    let epochs = job.run.phase(&job.sweep).epochs;
    let record = RunRecord::done(
        &job.run,
        epochs,
        fitted.clone(),
        secs,
        &job.device.to_string(),
    );
    cache_teacher((job, at), store, record, (vs, net), data)
}

/// Caches the teacher's weights after `history`'s last epoch as snapshot `s` — weights, logits and
/// a record with the validation and test accuracy of these weights — unless the cache has it (the
/// same snapshot of an earlier training of this teacher).
fn save_snapshot(
    (job, at): (&Job, At),
    store: &Store,
    s: &crate::plan::Snapshot,
    (vs, net): (&nn::VarStore, &Net),
    data: &Dataset,
    history: &[EpochStats],
) -> Result<(), RunError> {
    // an entry that does not verify is written again
    if matches!(store::load_teacher(&store.teacher_dir(&s.key)), Ok(Some(_))) {
        return Ok(());
    }
    let test_acc = train::accuracy(net, &data.test_x, &data.test_y);
    let fitted = Fitted {
        history: history.to_vec(),
        best_epoch: s.epoch,
        test_acc,
        test_acc_at_best: test_acc,
        step_losses: Vec::new(),
        imitation: None,
        as_loaded: None,
    };
    let spec = RunSpec {
        id: format!("{}-epoch{}", job.run.id, s.epoch),
        key: s.key.clone(),
        snapshots: Vec::new(),
        ..job.run.clone()
    };
    let secs = history.last().map_or(0.0, |e| e.seconds);
    let record = RunRecord::done(&spec, s.epoch, fitted, secs, &job.device.to_string());
    cache_teacher((job, at), store, record, (vs, net), data).map(|_| ())
}

/// Writes a teacher cache entry under `record.key`: the network's weights (a TorchScript one whole),
/// its logits on the training images and `record`; returns the logits on the network's device.
fn cache_teacher(
    (job, (here, checkpoint)): (&Job, At),
    store: &Store,
    mut record: RunRecord,
    (vs, net): (&nn::VarStore, &Net),
    data: &Dataset,
) -> Result<Tensor, RunError> {
    let logits = train::logits(net, &data.train_x);
    record.threads = Some(job.run.phase(&job.sweep).threads);
    here.stamp(&mut record, checkpoint);
    store::save_teacher(&store.teacher_dir(&record.key), &record, |dir| {
        let weights = dir.join(store::WEIGHTS);
        match net.script_state() {
            None => vs.save(weights).map_err(|e| e.to_string())?,
            // a TorchScript teacher is kept whole (its buffers are not variables)
            Some(state) => {
                let state = state?;
                let mut named: Vec<(String, Tensor)> = train::snapshot(vs);
                named.push((crate::model::script::STATE.to_string(), state));
                Tensor::write_safetensors(&named, weights).map_err(|e| e.to_string())?
            }
        }
        Tensor::write_safetensors(&[("logits", &logits)], dir.join(store::LOGITS))
            .map_err(|e| e.to_string())
    })?;
    Ok(logits.to_device(vs.device()))
}

/// The cached teacher's network, weights loaded.
fn load_teacher_net(
    (teacher, channels_last): (&RunSpec, bool),
    dir: &std::path::Path,
    data: &Dataset,
    device: Device,
) -> Result<Net, String> {
    if teacher.arch().script().is_some() {
        let tensors = Tensor::read_safetensors(dir.join(store::WEIGHTS))
            .map_err(|e| format!("teacher weights: {e}"))?;
        let (_, state) = tensors
            .iter()
            .find(|(n, _)| n == crate::model::script::STATE)
            .ok_or("teacher weights: no TorchScript module in them")?;
        let net = Net::script_from_state(teacher.arch(), state, device)?;
        net.set_channels_last(channels_last);
        return Ok(net);
    }
    let mut tvs = nn::VarStore::new(device);
    // the initialisation is overwritten by the load; PyTorch's rule draws as many numbers as any
    let tnet = Net::new(
        &tvs.root(),
        teacher.arch(),
        data.shape,
        data.classes,
        Default::default(),
    );
    tvs.load(dir.join(store::WEIGHTS))
        .map_err(|e| format!("teacher weights: {e}"))?;
    tnet.set_channels_last(channels_last);
    Ok(tnet)
}

/// A tensor a worker keeps between runs, with the key of what it was computed from.
type Kept = Option<(String, Tensor)>;

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
    data: &Dataset,
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

/// A teacher's logits on the test images, from its cached weights, kept in the worker between runs;
/// `None` when the teacher is not in the cache (a baseline's teacher that failed).
fn teacher_test_logits<'s>(
    slot: &'s mut Option<(String, Tensor)>,
    (teacher, channels_last): (&RunSpec, bool),
    store: &Store,
    data: &Dataset,
    device: Device,
) -> Result<Option<&'s Tensor>, String> {
    let dir = store.teacher_dir(&teacher.key);
    if !dir.join(store::WEIGHTS).exists() {
        return Ok(None);
    }
    kept(slot, &teacher.key, || {
        let net = load_teacher_net((teacher, channels_last), &dir, data, device)?;
        Ok(train::logits(&net, &data.test_x).to_device(device))
    })
    .map(Some)
}

/// The teacher's last feature map on the training images: computed once per teacher from its cached
/// weights, stored beside them (float32; 6.3 KB an image at 28×28, so 345 MB for 55,000 images), and
/// kept in the worker between runs.
fn teacher_features<'s>(
    slot: &'s mut Option<(String, Tensor)>,
    (teacher, channels_last): (&RunSpec, bool),
    dir: &std::path::Path,
    data: &Dataset,
    device: Device,
) -> Result<&'s Tensor, String> {
    kept(slot, &teacher.key, || {
        let maps = match store::load_features(dir) {
            Some(m) if m.size()[0] == data.n_train() => m,
            _ => {
                let tnet = load_teacher_net((teacher, channels_last), dir, data, device)?;
                let m = train::feature_maps(&tnet, &data.train_x);
                store::save_features(dir, &m)?;
                m
            }
        };
        Ok(maps.to_device(device))
    })
}
