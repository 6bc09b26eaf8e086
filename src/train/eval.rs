//! Evaluation without gradients: accuracy (through [`Net::predict`]), logits and feature maps of a
//! network on many images, in chunks.

use crate::model::Net;
use tch::{Device, Kind, Tensor};

/// Images per forward pass when evaluating on a CPU: small batches keep a layer's activations in
/// the caches (the teacher's first maps are 400 KB an image), about 2× faster than 1,024 here.
pub const CPU_EVAL_BATCH: i64 = 32;

/// Images per forward pass when evaluating on a GPU.
pub const GPU_EVAL_BATCH: i64 = 1024;

/// Images per forward pass when counting accuracy on `device`.
pub fn eval_batch(device: Device) -> i64 {
    if device == Device::Cpu {
        CPU_EVAL_BATCH
    } else {
        GPU_EVAL_BATCH
    }
}

/// A network used as it is (a teacher with `epochs = 0`): its validation and test accuracy, nothing
/// trained — no epochs, its record's best epoch 0.
pub fn as_loaded(net: &Net, data: &crate::data::Dataset) -> super::Fitted {
    let start = std::time::Instant::now();
    let val_acc = accuracy(net, &data.val_x, &data.val_y);
    let test = accuracy(net, &data.test_x, &data.test_y);
    let seconds = start.elapsed().as_secs_f64();
    super::Fitted {
        as_loaded: Some(super::AsLoaded { val_acc, seconds }),
        ..super::Fitted::new(Vec::new(), test, test, Vec::new())
    }
}

/// Accuracy in % of `net` (eval mode, [`Net::predict`]) on `xs`/`ys`.
pub fn accuracy(net: &Net, xs: &Tensor, ys: &Tensor) -> f64 {
    let _guard = tch::no_grad_guard();
    let n = ys.size()[0];
    if n == 0 {
        return 0.0;
    }
    let batch = eval_batch(xs.device());
    // counted on the device, read once
    let mut correct = Tensor::zeros([], (Kind::Int64, ys.device()));
    for start in (0..n).step_by(batch as usize) {
        let len = (n - start).min(batch);
        let pred = net.predict(&xs.narrow(0, start, len)).argmax(-1, false);
        correct += pred.eq_tensor(&ys.narrow(0, start, len)).sum(Kind::Int64);
    }
    100.0 * correct.int64_value(&[]) as f64 / n as f64
}

/// Logits of `net` (eval mode) on every row of `xs`, in order, on the CPU.
pub fn logits(net: &Net, xs: &Tensor) -> Tensor {
    by_chunks(xs, 1024, |x| net.forward_t(x, false))
}

/// `f` without gradients on every row of `xs` in chunks of `chunk` images, concatenated in order on
/// the CPU. The chunk sizes of cached logits and feature maps are part of their bytes: the CPU's
/// matrix kernels treat the last rows of a chunk whose length is not a multiple of their block
/// differently (measured: a teacher's logits in chunks of 32 equal those in chunks of 1,024 for 4,000
/// images, but not the rows of a short last chunk, e.g. of 69 images), so changing them would change
/// students' numbers: a model-version change.
fn by_chunks(xs: &Tensor, chunk: i64, f: impl Fn(&Tensor) -> Tensor) -> Tensor {
    let _guard = tch::no_grad_guard();
    let n = xs.size()[0];
    let parts: Vec<Tensor> = (0..n)
        .step_by(chunk as usize)
        .map(|s| f(&xs.narrow(0, s, (n - s).min(chunk))).to_device(Device::Cpu))
        .collect();
    // a channels-last network's feature maps come in that layout: stored and compared as
    // contiguous (a no-op for every other network)
    Tensor::cat(&parts, 0).contiguous()
}

/// The teacher's last feature map (eval mode) on every row of `xs`, in order, on the CPU.
pub fn feature_maps(net: &Net, xs: &Tensor) -> Tensor {
    by_chunks(xs, 512, |x| net.features_t(x, false))
}
