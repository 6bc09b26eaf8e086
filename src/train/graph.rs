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

enum Backend {
    Cuda(Graph),
    Rehearse,
}

/// Takes a run's steps through a graph.
pub struct Stepper {
    backend: Backend,
    /// The full batch's rows: only batches of this length are graphed.
    rows: i64,
    /// Inputs and loss of the captured step (static: the graph reads and writes these buffers).
    inputs: Option<Batch>,
    loss: Option<Tensor>,
    key: Option<Key>,
    eager: u64,
    /// Graphs captured and steps replayed so far.
    pub captures: u32,
    pub replays: u64,
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
        Ok(Some(Stepper {
            backend,
            rows,
            inputs: None,
            loss: None,
            key: None,
            eager: 0,
            captures: 0,
            replays: 0,
        }))
    }

    /// One step of batch `b` at `(epoch, lr)`: eager (`run(b)`), captured (`run` on the static
    /// inputs, then replayed) or replayed. Returns the step's loss, a tensor of its own.
    pub fn step(
        &mut self,
        b: &Batch,
        (epoch, lr): (u32, f64),
        run: &mut dyn FnMut(&Batch) -> Tensor,
    ) -> Result<(Tensor, Taken), String> {
        let key = Key {
            epoch,
            lr: lr.to_bits(),
            rows: b.xs.size()[0],
        };
        let graphed = key.rows == self.rows && self.eager >= WARMUP;
        match &mut self.backend {
            Backend::Rehearse => Ok(self.rehearse(b, key, graphed, run)),
            Backend::Cuda(g) => {
                let (inputs, loss, state) = (&mut self.inputs, &mut self.loss, &mut self.key);
                let counts = (&mut self.eager, &mut self.captures, &mut self.replays);
                g.on_side_stream(|g| {
                    cuda_step(g, b, key, graphed, run, (inputs, loss, state), counts)
                })?
            }
        }
    }

    /// [`Mode::Rehearse`]: what the CUDA path does, with "capture and replay" as one eager run on
    /// the static inputs and "replay" as another.
    fn rehearse(
        &mut self,
        b: &Batch,
        key: Key,
        graphed: bool,
        run: &mut dyn FnMut(&Batch) -> Tensor,
    ) -> (Tensor, Taken) {
        if !graphed {
            self.eager += 1;
            return (run(b), Taken::Ran);
        }
        if self.key != Some(key) {
            self.inputs = Some(static_copy(b));
            self.key = Some(key);
            self.captures += 1;
        } else {
            copy_into(self.inputs.as_ref().expect("captured"), b);
            self.replays += 1;
        }
        let loss = run(self.inputs.as_ref().expect("captured"));
        // the captured loss is a static buffer: what the caller keeps is a copy
        (loss.copy(), Taken::Ran)
    }
}

type Statics<'a> = (
    &'a mut Option<Batch>,
    &'a mut Option<Tensor>,
    &'a mut Option<Key>,
);

/// The CUDA path of [`Stepper::step`], on the graph's side stream.
fn cuda_step(
    g: &mut Graph,
    b: &Batch,
    key: Key,
    graphed: bool,
    run: &mut dyn FnMut(&Batch) -> Tensor,
    (inputs, loss, state): Statics,
    (eager, captures, replays): (&mut u64, &mut u32, &mut u64),
) -> Result<(Tensor, Taken), String> {
    if !graphed {
        *eager += 1;
        return Ok((run(b), Taken::Ran));
    }
    if *state == Some(key) {
        copy_into(inputs.as_ref().expect("captured"), b);
        g.replay()?;
        *replays += 1;
        return Ok((loss.as_ref().expect("captured").copy(), Taken::Replayed));
    }
    // a new graph: the old one's buffers go first (its loss lives in the old graph's memory pool),
    // the new inputs are allocated before the capture, outside the new graph's pool
    *state = None;
    *loss = None;
    *inputs = None;
    let statics = static_copy(b);
    let captured = g
        .capture(|| run(&statics))
        .map_err(|why| format!("capturing a training step as a CUDA graph failed: {why}"))?;
    g.replay()?;
    *inputs = Some(statics);
    *state = Some(key);
    *captures += 1;
    let out = captured.copy();
    *loss = Some(captured);
    Ok((out, Taken::Ran))
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
