//! Training-batch augmentation: `augment = "crop-flip"` is torchvision's `RandomCrop(size, padding=4)`
//! followed by `RandomHorizontalFlip()` — the CIFAR recipe of the KD literature — done on the device on
//! a whole batch at once.
//!
//! The draws (a crop offset in 0 … 8 on each axis and a flip per image) come from the run's own
//! stream and seed, one block per epoch, so runs are reproducible, a run continued from a checkpoint
//! draws what it would have drawn, and the students and baseline of a seed (one stream) see the same
//! augmented batches: common random numbers for their comparisons. They are drawn on the host and
//! uploaded once per epoch, like the batch order; each step slices its batch's rows.
//!
//! Padding is black, as torchvision pads the image before `Normalize`: the normalised value of a 0
//! pixel, `-mean/std` per channel ([`crate::data::Dataset::black`]).

use crate::rng::{hash64, SplitMix64};
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

/// Pixels of padding on each side before the random crop.
pub const PAD: i64 = 4;

/// `augment = "none" | "crop-flip"`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Augment {
    #[default]
    None,
    CropFlip,
}

impl Augment {
    pub const NAMES: &'static str = "\"none\" (the default) or \"crop-flip\"";

    pub fn parse(s: &str) -> Option<Augment> {
        match s {
            "none" => Some(Augment::None),
            "crop-flip" => Some(Augment::CropFlip),
            _ => None,
        }
    }

    /// No augmentation (left out of run keys, so sweeps written before it keep their keys).
    pub fn is_none(&self) -> bool {
        *self == Augment::None
    }
}

/// One epoch's draws for the positions of its batch order, on the device: row offsets, column
/// offsets and flips.
pub struct EpochDraws {
    dy: Tensor,
    dx: Tensor,
    flip: Tensor,
}

impl EpochDraws {
    /// The draws of `epoch` for a run of `seed` on `stream` over `n` training images.
    pub fn new(seed: u64, stream: &str, epoch: u32, n: usize, device: Device) -> EpochDraws {
        let mut rng = SplitMix64::new(hash64(&format!("augment-{stream}-{seed}-{epoch}")));
        let (mut dy, mut dx, mut flip) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for _ in 0..n {
            dy.push(rng.below(2 * PAD as u64 + 1) as i64);
            dx.push(rng.below(2 * PAD as u64 + 1) as i64);
            flip.push(rng.below(2) as i64);
        }
        let up = |v: Vec<i64>| Tensor::from_slice(&v).to_device(device);
        EpochDraws {
            dy: up(dy),
            dx: up(dx),
            flip: up(flip),
        }
    }

    /// The batch `xs` (N×C×H×W, the epoch's positions `begin` … `begin + N`) padded with `black`
    /// (1×C×1×1, on the batch's device), cropped back to H×W at each image's offset and mirrored where its flip is 1.
    pub fn apply(&self, xs: &Tensor, begin: i64, black: &Tensor) -> Tensor {
        let size = xs.size();
        let (n, c, h, w) = (size[0], size[1], size[2], size[3]);
        let device = xs.device();
        let dy = self.dy.narrow(0, begin, n);
        let dx = self.dx.narrow(0, begin, n);
        let flip = self.flip.narrow(0, begin, n);
        // black canvas with the batch in its middle
        let padded = black
            .expand([n, c, h + 2 * PAD, w + 2 * PAD], false)
            .contiguous();
        padded.narrow(2, PAD, h).narrow(3, PAD, w).copy_(xs);
        // rows dy … dy + H; columns dx … dx + W, reversed for a flipped image
        let ar = |len: i64| Tensor::arange(len, (Kind::Int64, device));
        let rows = dy.unsqueeze(1) + ar(h).unsqueeze(0);
        let cols_fwd = ar(w).unsqueeze(0);
        let cols_rev = (w - 1) - ar(w).unsqueeze(0);
        let cols = dx.unsqueeze(1) + cols_rev.where_self(&flip.unsqueeze(1).eq(1), &cols_fwd);
        let rows = rows
            .view([n, 1, h, 1])
            .expand([n, c, h, w + 2 * PAD], false);
        let cols = cols.view([n, 1, 1, w]).expand([n, c, h, w], false);
        padded.gather(2, &rows, false).gather(3, &cols, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crops_and_flips_each_image_by_its_own_draw() {
        // two 1×2×3 images with distinct pixels; black is -1
        let xs = Tensor::arange(12, (Kind::Float, Device::Cpu)).view([2, 1, 2, 3]) + 1.0;
        let black = Tensor::from_slice(&[-1.0f32]).view([1, 1, 1, 1]);
        let draws = EpochDraws {
            dy: Tensor::from_slice(&[4i64, 3]),
            dx: Tensor::from_slice(&[4i64, 5]),
            flip: Tensor::from_slice(&[0i64, 1]),
        };
        let out = draws.apply(&xs, 0, &black);
        assert_eq!(out.size(), [2, 1, 2, 3]);
        // image 0: offset (4, 4) is the identity, no flip
        assert!(out.get(0).equal(&xs.get(0)));
        // image 1: one row up (a black row first), one column left, then mirrored
        let want = Tensor::from_slice(&[-1.0f32, -1.0, -1.0, -1.0, 9.0, 8.0]).view([1, 2, 3]);
        assert!(out.get(1).equal(&want), "{out}");
    }

    #[test]
    fn draws_follow_seed_stream_and_epoch() {
        let d = |seed, stream, epoch| {
            let e = EpochDraws::new(seed, stream, epoch, 50, Device::Cpu);
            Vec::<i64>::try_from(Tensor::cat(&[e.dy, e.dx, e.flip], 0)).unwrap()
        };
        assert_eq!(d(1, "student", 2), d(1, "student", 2));
        assert_ne!(d(1, "student", 2), d(1, "student", 3));
        assert_ne!(d(1, "student", 2), d(2, "student", 2));
        assert_ne!(d(1, "student", 2), d(1, "teacher", 2));
        let all = d(1, "student", 1);
        assert!(all[..100].iter().all(|&v| (0..=8).contains(&v)));
        assert!(all[100..].iter().all(|&v| v == 0 || v == 1));
        // every offset occurs: the draw is not stuck
        assert!((0..=8).all(|v| all[..100].contains(&v)));
    }
}
