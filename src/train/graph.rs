//! Training steps as CUDA graphs (`[schedule] cuda_graphs = true`): on a GPU a small network's step
//! is bound by the host — hundreds of kernels, each dispatched through libtorch, autograd and tch —
//! not by the GPU. A graph captures the step's kernels once and replays them with one launch.
//!
//! A step is captured as [`super::plain`] takes it eagerly, on static input buffers: before each
//! replay the batch is copied into them, and the captured loss is copied out. What the step reads
//! from the host is frozen into the graph at capture, so a graph is kept only while that stays the
//! same ([`Key`]): the epoch (a method's epoch-dependent weights, DKD's warm-up, CTKD's schedule),
//! the learning rate (a constant of the captured update) and the batch's rows (the last, shorter
//! batch of an epoch runs eagerly). Random draws (dropout) follow the seed set before each step:
//! libtorch's CUDA generator is registered with the graph and each replay reads its seed and offset,
//! so a replayed step draws what the eager step draws.
//!
//! What a graphed step must not do, and so what limits where graphs are used: read a value on the
//! host (a synchronisation: capture fails), copy host memory to the GPU (the teacher's cached
//! outputs must live on the GPU), or compute a host-side scalar that changes every step (Adam's bias
//! corrections: Adam roles train eagerly). The first steps of a run are eager on the graph's stream
//! ([`WARMUP`]): cuDNN's benchmark search, cuBLAS's workspace and SGD's first momentum step happen
//! outside the graph.
//!
//! [`Mode::Rehearse`] runs the same protocol on any device without capturing — the static buffers,
//! the copies in and out, the keys and when a capture would happen — so the CPU test suite checks
//! that a graphed run trains exactly what an eager one does (a necessary condition; the capture
//! itself needs a GPU).

use super::driver::Batch;
use crate::platform::cuda_graph::Graph;
use std::cell::Cell;
use tch::Tensor;

/// Whether this thread's training steps are graphed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Every step eager (the default; always on the CPU).
    Off,
    /// Steps on a CUDA device captured and replayed.
    Cuda,
    /// The graph protocol without capture, on any device (tests).
    Rehearse,
}

thread_local! {
    static MODE: Cell<Mode> = const { Cell::new(Mode::Off) };
}

/// Sets this thread's mode (a worker, from its job's schedule, before training).
pub fn set_mode(mode: Mode) {
    MODE.with(|m| m.set(mode));
}

/// This thread's mode.
pub fn mode() -> Mode {
    MODE.with(Cell::get)
}

/// Eager steps of a run before its first capture.
pub const WARMUP: u64 = 3;

/// What a captured step stays valid for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    pub epoch: u32,
    /// The learning rate's bits.
    pub lr: u64,
    /// The batch's rows.
    pub rows: i64,
}

/// How a step was taken, for what the caller keeps on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    /// The step function ran (eagerly, or while being captured): its host-side effects happened.
    Ran,
    /// The graph was replayed without the step function: the caller does its host-side part
    /// (the optimizer's step count).
    Replayed,
}

/// What the step protocol needs of a graph: capture a step and replay it. The protocol
/// ([`Protocol::step`]) is one piece of code for both engines, so the CPU rehearsal checks the very
/// decisions (eager, capture, replay, the buffers in and out) that a GPU run takes.
trait Engine {
    /// Captures `run` on the static inputs and runs it once; the captured loss (a static buffer).
    fn capture(&mut self, run: Run, statics: &Batch) -> Result<Tensor, String>;
    /// Runs the captured step again on the static inputs, writing its loss into `loss`.
    fn replay(&mut self, run: Run, statics: &Batch, loss: &Tensor) -> Result<Taken, String>;
}

type Run<'a> = &'a mut dyn FnMut(&Batch) -> Tensor;

impl Engine for Graph {
    fn capture(&mut self, run: Run, statics: &Batch) -> Result<Tensor, String> {
        let loss = Graph::capture(self, || run(statics))
            .map_err(|why| format!("capturing a training step as a CUDA graph failed: {why}"))?;
        // capturing records the kernels without running them: the step itself is the first replay
        Graph::replay(self)?;
        Ok(loss)
    }

    fn replay(&mut self, _: Run, _: &Batch, _: &Tensor) -> Result<Taken, String> {
        Graph::replay(self)?;
        Ok(Taken::Replayed)
    }
}

/// [`Mode::Rehearse`]: "capture" runs the step eagerly on the static inputs; "replay" runs it again
/// there and writes its loss into the static loss buffer, as a replayed graph does. The step
/// function runs each time, so its host-side effects happen ([`Taken::Ran`]).
struct Rehearsal;

impl Engine for Rehearsal {
    fn capture(&mut self, run: Run, statics: &Batch) -> Result<Tensor, String> {
        Ok(run(statics))
    }

    fn replay(&mut self, run: Run, statics: &Batch, loss: &Tensor) -> Result<Taken, String> {
        loss.shallow_clone().copy_(&run(statics));
        Ok(Taken::Ran)
    }
}

enum Backend {
    Cuda(Graph),
    Rehearse,
}

/// Takes a run's steps through a graph.
pub struct Stepper {
    backend: Backend,
    protocol: Protocol,
}

/// The protocol's state: when to capture, and the captured step's static buffers.
struct Protocol {
    /// The full batch's rows: only batches of this length are graphed.
    rows: i64,
    /// Inputs and loss of the captured step (static: the graph reads and writes these buffers).
    inputs: Option<Batch>,
    loss: Option<Tensor>,
    key: Option<Key>,
    eager: u64,
    captures: u32,
    replays: u64,
}

impl Stepper {
    /// A stepper for this thread's mode, on `device`, for batches of `rows`; `None` when steps are
    /// eager. Err when graphs were asked for on a CUDA device and none can be made.
    pub fn for_mode(device: tch::Device, rows: i64) -> Result<Option<Stepper>, String> {
        let backend = match (mode(), device) {
            (Mode::Off, _) | (Mode::Cuda, tch::Device::Cpu) => return Ok(None),
            (Mode::Rehearse, _) => Backend::Rehearse,
            (Mode::Cuda, tch::Device::Cuda(i)) => Backend::Cuda(Graph::new(i)?),
            (Mode::Cuda, other) => return Err(format!("CUDA graphs on {other:?}")),
        };
        let protocol = Protocol {
            rows,
            inputs: None,
            loss: None,
            key: None,
            eager: 0,
            captures: 0,
            replays: 0,
        };
        Ok(Some(Stepper { backend, protocol }))
    }

    /// Graphs captured and steps replayed so far.
    pub fn counts(&self) -> (u32, u64) {
        (self.protocol.captures, self.protocol.replays)
    }

    /// One step of batch `b` at `(epoch, lr)`: eager (`run(b)`), captured (`run` on the static
    /// inputs, then replayed) or replayed. Returns the step's loss, a tensor of its own.
    pub fn step(
        &mut self,
        b: &Batch,
        (epoch, lr): (u32, f64),
        run: Run,
    ) -> Result<(Tensor, Taken), String> {
        let key = Key {
            epoch,
            lr: lr.to_bits(),
            rows: b.xs.size()[0],
        };
        let p = &mut self.protocol;
        match &mut self.backend {
            Backend::Rehearse => p.step(&mut Rehearsal, b, key, run),
            // every step of the run, eager ones too, on the graph's stream
            Backend::Cuda(g) => g.on_side_stream(|g| p.step(g, b, key, run))?,
        }
    }
}

impl Protocol {
    fn step(
        &mut self,
        engine: &mut dyn Engine,
        b: &Batch,
        key: Key,
        run: Run,
    ) -> Result<(Tensor, Taken), String> {
        if key.rows != self.rows || self.eager < WARMUP {
            self.eager += 1;
            return Ok((run(b), Taken::Ran));
        }
        if self.key == Some(key) {
            let inputs = self.inputs.as_ref().expect("captured");
            let loss = self.loss.as_ref().expect("captured");
            copy_into(inputs, b);
            let taken = engine.replay(run, inputs, loss)?;
            self.replays += 1;
            // the captured loss is a static buffer: what the caller keeps is a copy
            return Ok((loss.copy(), taken));
        }
        // a new graph: the old one's buffers go first (its loss lives in the old graph's memory
        // pool), the new inputs are allocated before the capture, outside the new graph's pool
        self.key = None;
        self.loss = None;
        self.inputs = None;
        let statics = static_copy(b);
        let loss = engine.capture(run, &statics)?;
        let out = loss.copy();
        (self.inputs, self.loss, self.key) = (Some(statics), Some(loss), Some(key));
        self.captures += 1;
        Ok((out, Taken::Ran))
    }
}

/// Buffers of the batch's shapes holding its values.
fn static_copy(b: &Batch) -> Batch {
    Batch {
        idx: b.idx.copy(),
        xs: b.xs.copy(),
        ys: b.ys.copy(),
    }
}

/// The batch's values into the static buffers.
fn copy_into(statics: &Batch, b: &Batch) {
    statics.idx.shallow_clone().copy_(&b.idx);
    statics.xs.shallow_clone().copy_(&b.xs);
    statics.ys.shallow_clone().copy_(&b.ys);
}
