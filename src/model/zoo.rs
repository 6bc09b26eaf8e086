//! The networks of kd-sweep's zoo, built layer by layer with PyTorch's names for their variables
//! (RepDistiller's for the CRD networks), and a TorchScript network's module: [`Body`] is what
//! [`super::Net`] runs.

use super::{script, Arch, Init};
use std::sync::Mutex;
use tch::{nn, Tensor};

/// A batch-normalised convolution: PyTorch's defaults (weight 1, bias 0, momentum 0.1, ε 1e-5).
fn bn(p: nn::Path, c: i64) -> nn::BatchNorm {
    nn::batch_norm2d(
        p,
        c,
        nn::BatchNormConfig {
            ws_init: nn::Init::Const(1.0),
            bs_init: nn::Init::Const(0.0),
            ..Default::default()
        },
    )
}

/// A k×k convolution with PyTorch's initialisation rule `init`, `stride`, padding k/2, and `bias`.
fn conv(p: nn::Path, i: i64, o: i64, k: i64, stride: i64, bias: bool, init: Init) -> nn::Conv2D {
    let c = init.conv(i, k, k / 2);
    nn::conv2d(p, i, o, k, nn::ConvConfig { stride, bias, ..c })
}

/// A CIFAR ResNet's basic block: conv-bn-relu-conv-bn plus the shortcut (a 1×1 conv-bn when the
/// shape changes), then relu.
#[derive(Debug)]
pub(super) struct ResBlock {
    pub(super) c1: nn::Conv2D,
    pub(super) b1: nn::BatchNorm,
    pub(super) c2: nn::Conv2D,
    pub(super) b2: nn::BatchNorm,
    pub(super) down: Option<(nn::Conv2D, nn::BatchNorm)>,
}

/// A Wide ResNet's pre-activation block: bn-relu-conv-bn-relu-conv plus the shortcut (on the
/// activated input through a 1×1 conv when the width changes).
#[derive(Debug)]
pub(super) struct WrnBlock {
    pub(super) b1: nn::BatchNorm,
    pub(super) c1: nn::Conv2D,
    pub(super) b2: nn::BatchNorm,
    pub(super) c2: nn::Conv2D,
    pub(super) shortcut: Option<nn::Conv2D>,
}

#[derive(Debug)]
pub(super) enum Body {
    Tutorial {
        convs: Vec<(nn::Conv2D, bool)>,
        fc1: nn::Linear,
        fc2: nn::Linear,
    },
    ResNet {
        stem: (nn::Conv2D, nn::BatchNorm),
        blocks: Vec<ResBlock>,
        fc: nn::Linear,
    },
    Wrn {
        stem: nn::Conv2D,
        blocks: Vec<WrnBlock>,
        bn: nn::BatchNorm,
        fc: nn::Linear,
    },
    Vgg {
        /// five blocks of conv-bn(-relu) layers; max-pools after the first three (and after the
        /// fourth for 64-pixel inputs, as RepDistiller's VGG)
        blocks: Vec<Vec<(nn::Conv2D, nn::BatchNorm)>>,
        pool4: bool,
        fc: nn::Linear,
    },
    /// A TorchScript module (whose parameters are the var store's variables) and the mode it is
    /// in (`Some(true)`: training).
    Script(Mutex<(tch::CModule, Option<bool>)>),
}

/// A TorchScript network's module with its parameters added to `p`: from `saved` (a checkpoint's
/// state) when given, else from its file, re-initialised unless `init` is `as-saved`.
pub(super) fn script_body(
    p: &nn::Path,
    s: &'static script::Script,
    init: Init,
    saved: Option<&Tensor>,
) -> Result<Body, String> {
    let module = match saved {
        Some(t) => script::from_bytes(&script::state_bytes(t)?, p.device())?,
        None => s.load(p.device())?,
    };
    let params = module.named_parameters().map_err(|e| e.to_string())?;
    if saved.is_none() && init != Init::AsSaved {
        script::reinitialise(&params);
    }
    for (name, t) in params {
        // tch's own rule for a scripted module's variable names (no dots in a path)
        let trainable = t.requires_grad();
        let _ = p.add(&name.replace('.', "_"), t, trainable);
    }
    Ok(Body::Script(Mutex::new((module, None))))
}

/// The tutorial's teacher or student: 3×3 convolutions (max-pooled where the architecture says),
/// then two linear layers.
pub(super) fn tutorial(
    p: &nn::Path,
    arch: Arch,
    shape: [i64; 3],
    classes: i64,
    init: Init,
) -> Body {
    let mut c = shape[0];
    let mut convs = Vec::new();
    for (i, &(out, pool)) in arch.convs().iter().enumerate() {
        convs.push((
            nn::conv2d(p / format!("conv{}", i + 1), c, out, 3, init.conv(c, 3, 1)),
            pool,
        ));
        c = out;
    }
    let flat = arch.flat_len(shape);
    let fc1 = nn::linear(p / "fc1", flat, arch.hidden(), init.linear(flat));
    let fc2 = nn::linear(
        p / "fc2",
        arch.hidden(),
        classes,
        init.linear(arch.hidden()),
    );
    Body::Tutorial { convs, fc1, fc2 }
}

/// A CIFAR ResNet (resnet8…110, ×4 widths for resnet8x4/32x4) with torchvision's names.
pub(super) fn resnet(
    p: &nn::Path,
    (depth, x4): (u32, bool),
    shape: [i64; 3],
    classes: i64,
    init: Init,
) -> Body {
    let widths: [i64; 4] = if x4 {
        [32, 64, 128, 256]
    } else {
        [16, 16, 32, 64]
    };
    let n = (depth - 2) / 6;
    let stem = (
        conv(p / "conv1", shape[0], widths[0], 3, 1, false, init),
        bn(p / "bn1", widths[0]),
    );
    let mut blocks = Vec::new();
    let mut c = widths[0];
    for (stage, &w) in widths[1..].iter().enumerate() {
        for b in 0..n {
            let q = p / format!("layer{}", stage + 1) / b;
            let stride = if stage > 0 && b == 0 { 2 } else { 1 };
            let down = (stride != 1 || c != w).then(|| {
                (
                    conv(&q / "downsample" / 0, c, w, 1, stride, false, init),
                    bn(&q / "downsample" / 1, w),
                )
            });
            blocks.push(ResBlock {
                c1: conv(&q / "conv1", c, w, 3, stride, false, init),
                b1: bn(&q / "bn1", w),
                c2: conv(&q / "conv2", w, w, 3, 1, false, init),
                b2: bn(&q / "bn2", w),
                down,
            });
            c = w;
        }
    }
    let fc = nn::linear(p / "fc", c, classes, init.linear(c));
    Body::ResNet { stem, blocks, fc }
}

/// A Wide ResNet (wrn-d-w) with RepDistiller's names.
pub(super) fn wrn(
    p: &nn::Path,
    (depth, widen): (u32, u32),
    shape: [i64; 3],
    classes: i64,
    init: Init,
) -> Body {
    let w = widen as i64;
    let n = (depth - 4) / 6;
    let stem = conv(p / "conv1", shape[0], 16, 3, 1, false, init);
    let mut blocks = Vec::new();
    let mut c = 16;
    for (stage, out) in [16 * w, 32 * w, 64 * w].into_iter().enumerate() {
        for b in 0..n {
            let q = p / format!("block{}", stage + 1) / "layer" / b;
            let stride = if stage > 0 && b == 0 { 2 } else { 1 };
            blocks.push(WrnBlock {
                b1: bn(&q / "bn1", c),
                c1: conv(&q / "conv1", c, out, 3, stride, false, init),
                b2: bn(&q / "bn2", out),
                c2: conv(&q / "conv2", out, out, 3, 1, false, init),
                shortcut: (c != out)
                    .then(|| conv(&q / "convShortcut", c, out, 1, stride, false, init)),
            });
            c = out;
        }
    }
    let bn_last = bn(p / "bn1", c);
    let fc = nn::linear(p / "fc", c, classes, init.linear(c));
    Body::Wrn {
        stem,
        blocks,
        bn: bn_last,
        fc,
    }
}

/// A CIFAR VGG with batch norm (vgg8…19) in RepDistiller's layout.
pub(super) fn vgg(p: &nn::Path, depth: u32, shape: [i64; 3], classes: i64, init: Init) -> Body {
    let cfg: [&[i64]; 5] = match depth {
        8 => [&[64], &[128], &[256], &[512], &[512]],
        11 => [&[64], &[128], &[256, 256], &[512, 512], &[512, 512]],
        13 => [
            &[64, 64],
            &[128, 128],
            &[256, 256],
            &[512, 512],
            &[512, 512],
        ],
        16 => [
            &[64, 64],
            &[128, 128],
            &[256, 256, 256],
            &[512, 512, 512],
            &[512, 512, 512],
        ],
        _ => [
            &[64, 64],
            &[128, 128],
            &[256, 256, 256, 256],
            &[512, 512, 512, 512],
            &[512, 512, 512, 512],
        ],
    };
    let mut c = shape[0];
    let mut blocks = Vec::new();
    for (b, layers) in cfg.iter().enumerate() {
        let mut block = Vec::new();
        for (l, &out) in layers.iter().enumerate() {
            let q = p / format!("block{b}") / l;
            block.push((
                conv(&q / "conv", c, out, 3, 1, true, init),
                bn(&q / "bn", out),
            ));
            c = out;
        }
        blocks.push(block);
    }
    let fc = nn::linear(p / "classifier", c, classes, init.linear(c));
    Body::Vgg {
        blocks,
        pool4: shape[1] == 64,
        fc,
    }
}
