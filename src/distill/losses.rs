//! The losses, as functions of tensors: student logits `s` [B, C], teacher logits `t` [B, C] (no
//! gradient), labels `y` \[B\]. Every KL is summed over classes and averaged over the batch, as the
//! reference implementations do (`reduction="batchmean"`, or `size_average=False` then ÷ B).
//!
//! The losses that add a cross-entropy term take it as `ce`, a closure they call where their
//! reference code computes it. Autograd adds the gradients that reach the student's logits by several
//! paths in the order their operations were created, so with three paths or more (multi-T's
//! temperatures, DKD's two terms, the z-score's statistics) creating the cross-entropy first or last
//! changes the gradient's last bits, and training grows them.

use tch::{Kind, Tensor};

/// `CE(s, y)` as `nn.CrossEntropyLoss(label_smoothing=ε)` computes it: `(1 − ε)·NLL + ε·mean over
/// classes of −log softmax(s)`, averaged over the batch. ε = 0 is plain cross-entropy, computed as
/// before label smoothing existed (the same kernels, so the same bits). Every loss below takes its
/// cross-entropy term from here.
pub fn ce(student: &Tensor, labels: &Tensor, smoothing: f64) -> Tensor {
    if smoothing == 0.0 {
        student.cross_entropy_for_logits(labels)
    } else {
        student.cross_entropy_loss::<Tensor>(labels, None, tch::Reduction::Mean, -100, smoothing)
    }
}

/// Hinton's KD: `(1 − α)·CE(s, y) + α·T²·KL(softmax(t/T) ‖ softmax(s/T))`, `ce` the cross-entropy
/// term ([`ce`]). α = 0 is plain cross-entropy (the KL term is not computed).
///
/// Written op for op as the PyTorch tutorial writes it (`softmax(t/T)·(log softmax(t/T) −
/// log_softmax(s/T))` summed, ÷ B, × T², × α), not as [`kl`] does: the two are equal in value but
/// round their gradients differently in the last bits, and batch norm's biases (which start at 0)
/// take that difference whole under SGD and grow it (model version 4). One departure, in the value
/// only: where a teacher probability underflows to 0 the tutorial's `log` gives −∞ and its loss NaN
/// (`0·−∞`); here that log is [`finite_log`]'s, so the term is 0, as `xlogy` would have it.
pub fn kd(
    ce: impl FnOnce() -> Tensor,
    student: &Tensor,
    teacher: &Tensor,
    temperature: f64,
    alpha: f64,
) -> Tensor {
    if alpha == 0.0 {
        return ce();
    }
    let soft_targets = (teacher / temperature).softmax(-1, Kind::Float);
    let soft_prob = (student / temperature).log_softmax(-1, Kind::Float);
    let batch = soft_prob.size()[0];
    let soft = (&soft_targets * (finite_log(&soft_targets) - soft_prob)).sum(None::<Kind>) / batch
        * (temperature * temperature);
    soft * alpha + ce() * (1.0 - alpha)
}

/// `log p` of probabilities `p` (no gradient is taken through it), −∞ at p = 0 raised to float32's
/// lowest finite value, so that `0·(log p − x)` is 0 rather than NaN. Every other element is `log`'s
/// own bits, so where the tutorial's loss is finite this one is the same to the bit.
pub fn finite_log(p: &Tensor) -> Tensor {
    p.log().clamp_min(f32::MIN as f64)
}

/// KL(softmax(t/T) ‖ softmax(s/T)), summed over classes, averaged over the batch.
pub fn kl(student: &Tensor, teacher: &Tensor, temperature: f64) -> Tensor {
    kl_batchmean(
        &(student / temperature).log_softmax(-1, Kind::Float),
        &(teacher / temperature).log_softmax(-1, Kind::Float),
    )
}

/// KL(p_t ‖ p_s) of log-probabilities [B, C], summed over everything, ÷ B: op for op what
/// `F.kl_div(log_ps, log_pt, reduction="batchmean", log_target=True)` computes, so that the gradient
/// is rounded as the reference code's is.
fn kl_batchmean(log_ps: &Tensor, log_pt: &Tensor) -> Tensor {
    (log_pt.exp() * (log_pt - log_ps)).sum(None::<Kind>) / log_ps.size()[0]
}

/// Transformed teacher matching (Zheng & Yang, ICLR 2024): `CE(s, y) + β·KL(softmax(t/T) ‖
/// softmax(s))` — the temperature on the teacher only (its probabilities power-transformed by γ =
/// 1/T, `softmax(t)^γ / Σ softmax(t)^γ` = softmax(t/T)), the student's own distribution at T = 1,
/// and no T² factor.
pub fn ttm(
    ce: impl FnOnce() -> Tensor,
    student: &Tensor,
    teacher: &Tensor,
    (beta, temperature): (f64, f64),
) -> Tensor {
    // the teacher's distribution as the reference computes it (power, then normalised), and the KL
    // as `F.kl_div(log_ps, p_t, reduction="none").sum(1).mean()`: xlogy(p, p) − p·log_ps
    let powered = teacher
        .softmax(-1, Kind::Float)
        .pow_tensor_scalar(1.0 / temperature);
    let pt = &powered / powered.sum_dim_intlist(1, true, None::<Kind>);
    let log_ps = student.log_softmax(-1, Kind::Float);
    let kl = (pt.xlogy(&pt) - &pt * log_ps)
        .sum_dim_intlist(1, false, None::<Kind>)
        .mean(None::<Kind>);
    ce() + kl * beta
}

/// Logit standardisation (Sun et al. 2024): each row z-scored over its classes, `(z − mean) /
/// (std + 1e-7)` with the unbiased standard deviation, as the reference code computes it.
pub fn zscore(z: &Tensor) -> Tensor {
    // in the reference's order: the centring, then the deviation (see the module's note)
    let centred = z - z.mean_dim(-1, true, Kind::Float);
    centred / (z.std_dim(-1, true, true) + 1e-7)
}

/// Logit KD on z-scored logits: `(1 − α)·CE(s, y) + α·T²·KL(softmax(Z(t)/T) ‖ softmax(Z(s)/T))`;
/// the cross-entropy keeps the raw logits.
pub fn kd_standardized(
    ce: impl FnOnce() -> Tensor,
    student: &Tensor,
    teacher: &Tensor,
    temperature: f64,
    alpha: f64,
) -> Tensor {
    let (zs, zt) = (zscore(student), zscore(teacher));
    let ce = ce() * (1.0 - alpha);
    ce + kl(&zs, &zt, temperature) * (alpha * (temperature * temperature))
}

/// Σ `p·(log p − log_q)` over everything, ÷ the batch, where `p·log p` is 0 at p = 0 (xlogy, as
/// PyTorch's `kl_div` takes it).
fn kl_sum_over_batch(p: &Tensor, log_q: &Tensor) -> Tensor {
    let b = p.size()[0] as f64;
    (p.xlogy(p) - p * log_q).sum(Kind::Float) / b
}

/// Decoupled KD (Zhao et al. 2022), on logits `zs`, `zt` (z-scored or not) with `ce` the
/// cross-entropy of the raw student logits: `CE + w·(α·TCKD + β·NCKD)`.
/// - TCKD: KL between the binary distributions [p(target), p(rest)] of softmax(z/T), × T².
/// - NCKD: KL between the distributions over the non-target classes — softmax(z/T − 1000·onehot),
///   the target's probability underflowing to exactly 0 — × T².
///
/// `w` is the warm-up factor min(epoch / warmup, 1).
pub fn dkd(
    ce: impl FnOnce() -> Tensor,
    (zs, zt): (&Tensor, &Tensor),
    labels: &Tensor,
    (alpha, beta, temperature): (f64, f64, f64),
    w: f64,
) -> Tensor {
    let gt = zs
        .zeros_like()
        .to_kind(Kind::Float)
        .scatter_value(1, &labels.unsqueeze(1), 1.0);
    let other = gt.ones_like() - &gt;
    // z/T once per use, as the reference divides: each division is its own path into the logits
    let scaled = |z: &Tensor| z.to_kind(Kind::Float) / temperature;
    let (ps, pt) = (
        scaled(zs).softmax(-1, Kind::Float),
        scaled(zt).softmax(-1, Kind::Float),
    );
    let binary = |p: &Tensor| {
        Tensor::cat(
            &[
                (p * &gt).sum_dim_intlist(1, true, Kind::Float),
                (p * &other).sum_dim_intlist(1, true, Kind::Float),
            ],
            1,
        )
    };
    let (bs, bt) = (binary(&ps), binary(&pt));
    let t2 = temperature * temperature;
    let tckd = kl_sum_over_batch(&bt, &bs.log()) * t2;
    let masked = |z: &Tensor| scaled(z) - &gt * 1000.0;
    let log_qs = masked(zs).log_softmax(-1, Kind::Float);
    let qt = masked(zt).softmax(-1, Kind::Float);
    let nckd = kl_sum_over_batch(&qt, &log_qs) * t2;
    ce() + (tckd * alpha + nckd * beta) * w
}

/// Pearson correlation of each row of `a` with the same row of `b` (rows centred by their own mean;
/// the cosine's denominator + 1e-8 on the product of the norms), averaged over the rows.
fn mean_pearson(a: &Tensor, b: &Tensor) -> Tensor {
    let a = a - a.mean_dim(1, true, Kind::Float);
    let b = b - b.mean_dim(1, true, Kind::Float);
    let dot = (&a * &b).sum_dim_intlist(1, false, Kind::Float);
    let norms = a.norm_scalaropt_dim(2, [1], false) * b.norm_scalaropt_dim(2, [1], false);
    (dot / (norms + 1e-8)).mean(Kind::Float)
}

/// DIST (Huang et al. 2022): `CE + β·τ²·(1 − ρ over samples) + γ·τ²·(1 − ρ over classes)`, ρ the
/// mean Pearson correlation of softmax(s/τ) with softmax(t/τ), row by row (inter-class relation)
/// and column by column (intra-class relation).
pub fn dist(
    ce: impl FnOnce() -> Tensor,
    student: &Tensor,
    teacher: &Tensor,
    (beta, gamma, tau): (f64, f64, f64),
) -> Tensor {
    let ys = (student / tau).softmax(-1, Kind::Float);
    let yt = (teacher / tau).softmax(-1, Kind::Float);
    let inter = mean_pearson(&ys, &yt).neg() + 1.0;
    let intra = mean_pearson(&ys.transpose(0, 1), &yt.transpose(0, 1)).neg() + 1.0;
    let t2 = tau * tau;
    ce() + inter * (beta * t2) + intra * (gamma * t2)
}

/// Multi-temperature KD: `(1 − α)·CE + α·mean over T in `temps` of T²·KL_T`.
pub fn multi_t(
    ce: impl FnOnce() -> Tensor,
    student: &Tensor,
    teacher: &Tensor,
    temps: &[f64],
    alpha: f64,
) -> Tensor {
    let mut sum = Tensor::zeros([], (Kind::Float, student.device()));
    for &t in temps {
        sum += kl(student, teacher, t) * (t * t);
    }
    ce() * (1.0 - alpha) + sum * (alpha / temps.len().max(1) as f64)
}

/// Logit KD with the temperature a scalar tensor (CTKD's learned one; the gradient flows into it
/// through the softmaxes and T²).
pub fn kd_tensor_temperature(
    ce: impl FnOnce() -> Tensor,
    student: &Tensor,
    teacher: &Tensor,
    temperature: &Tensor,
    alpha: f64,
) -> Tensor {
    let ce = ce() * (1.0 - alpha);
    // α·T² first, then × KL, as the reference writes `alpha * temp ** 2 * kl`
    let weight = temperature.square() * alpha;
    let kl = kl_batchmean(
        &(student / temperature).log_softmax(-1, Kind::Float),
        &(teacher / temperature).log_softmax(-1, Kind::Float),
    );
    (ce + weight * kl).squeeze()
}

/// `x` in the forward pass; `λ`·(its gradient) in the backward pass (a gradient-reversal layer when
/// λ < 0). Written as `x.detach() + λ·(x − x.detach())`, whose value is exactly `x`.
pub fn gradient_reversal(x: &Tensor, lambda: f64) -> Tensor {
    let d = x.detach();
    &d + (x - &d) * lambda
}

/// CTKD's λ in epoch `epoch` (1-based): −½·(1 − cos(π·min(epoch, ramp)/ramp)), from about 0 to −1
/// over `ramp` epochs, then −1.
pub fn ctkd_lambda(epoch: u32, ramp: u32) -> f64 {
    let ramp = ramp.max(1) as f64;
    let e = (epoch as f64).min(ramp);
    -0.5 * (1.0 - (std::f64::consts::PI * e / ramp).cos())
}

/// White-box (FitNets-style hint): `(1 − α)·CE(s, y) + α·MSE(regressed, teacher_features)`, the MSE
/// averaged over every element of the feature map.
pub fn feature(ce: Tensor, regressed: &Tensor, teacher_features: &Tensor, alpha: f64) -> Tensor {
    let mse = regressed.mse_loss(teacher_features, tch::Reduction::Mean);
    ce * (1.0 - alpha) + mse * alpha
}

/// A student's regressed feature map and the teacher's, brought to one spatial size for the hint
/// loss: when they differ (another family, another depth of pooling), both are average-pooled to the
/// smaller height and width. Maps of one size pass unchanged.
pub fn same_size(student: Tensor, teacher: Tensor) -> (Tensor, Tensor) {
    let (s, t) = (student.size(), teacher.size());
    if s[2..] == t[2..] {
        return (student, teacher);
    }
    let hw = [s[2].min(t[2]), s[3].min(t[3])];
    (
        student.adaptive_avg_pool2d(hw),
        teacher.adaptive_avg_pool2d(hw),
    )
}

/// Black-box (imitation): `(1 − α)·CE(s, y) + α·CE(s, teacher's arg max)`, both cross-entropies
/// with the role's label smoothing ε.
pub fn imitation(
    student: &Tensor,
    (labels, teacher_labels): (&Tensor, &Tensor),
    alpha: f64,
    smoothing: f64,
) -> Tensor {
    ce(student, labels, smoothing) * (1.0 - alpha) + ce(student, teacher_labels, smoothing) * alpha
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(v: &[f32], rows: i64) -> Tensor {
        Tensor::from_slice(v).view([rows, -1])
    }

    fn val(x: &Tensor) -> f64 {
        x.double_value(&[])
    }

    /// log-softmax of one row, by hand.
    fn log_softmax(row: &[f64]) -> Vec<f64> {
        let m = row.iter().cloned().fold(f64::MIN, f64::max);
        let lse = m + row.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
        row.iter().map(|v| v - lse).collect()
    }

    #[test]
    fn alpha_zero_is_cross_entropy() {
        let s = t(&[1.0, 2.0, 0.5, 0.0, -1.0, 3.0], 2);
        let te = t(&[5.0, 0.0, 0.0, 0.0, 0.0, 5.0], 2);
        let y = Tensor::from_slice(&[1i64, 2]);
        // CE = mean(-log p[y]) worked out by hand
        let ce = -(log_softmax(&[1.0, 2.0, 0.5])[1] + log_softmax(&[0.0, -1.0, 3.0])[2]) / 2.0;
        assert!((val(&kd(|| super::ce(&s, &y, 0.0), &s, &te, 4.0, 0.0)) - ce).abs() < 1e-6);
        assert!((val(&s.cross_entropy_for_logits(&y)) - ce).abs() < 1e-6);
    }

    #[test]
    fn kd_loss_matches_hand_computation_with_t_squared_and_batch_mean() {
        let srows = [[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]];
        let trows = [[3.0, 1.0, 0.0], [0.5, 0.5, 2.0]];
        let s = t(
            &srows.concat().iter().map(|&v| v as f32).collect::<Vec<_>>(),
            2,
        );
        let te = t(
            &trows.concat().iter().map(|&v| v as f32).collect::<Vec<_>>(),
            2,
        );
        let y = Tensor::from_slice(&[0i64, 2]);
        let (temp, alpha) = (2.0, 0.75);
        let mut kl = 0.0;
        let mut ce = 0.0;
        for (r, (sr, tr)) in srows.iter().zip(&trows).enumerate() {
            let ls = log_softmax(&sr.map(|v| v / temp));
            let lt = log_softmax(&tr.map(|v| v / temp));
            kl += (0..3).map(|k| lt[k].exp() * (lt[k] - ls[k])).sum::<f64>();
            ce -= log_softmax(sr)[[0, 2][r]];
        }
        let (kl, ce) = (kl / 2.0, ce / 2.0); // batch mean
        let want = (1.0 - alpha) * ce + alpha * temp * temp * kl;
        let got = val(&kd(|| super::ce(&s, &y, 0.0), &s, &te, temp, alpha));
        assert!((got - want).abs() < 1e-5, "got {got}, want {want}");
        // T² matters: the same inputs at T = 4 give a different value
        assert!((val(&kd(|| super::ce(&s, &y, 0.0), &s, &te, 4.0, alpha)) - want).abs() > 1e-3);
    }

    /// A teacher so sure that softmax(t/T) underflows to exactly 0 (a logit gap of 200 at T = 1):
    /// the tutorial's `log` would make the loss NaN; kd's is finite, its value that of 0·log 0 = 0,
    /// and its gradient finite; and `finite_log` keeps `log`'s bits wherever p > 0.
    #[test]
    fn a_teacher_probability_of_zero_leaves_the_kd_loss_finite() {
        let s = t(&[1.0, 2.0, 0.5], 1).set_requires_grad(true);
        let te = t(&[0.0, 200.0, 0.0], 1);
        let pt = te.softmax(-1, Kind::Float);
        assert_eq!(
            pt.double_value(&[0, 0]),
            0.0,
            "the teacher's probability underflows"
        );
        assert!(
            val(&(&pt * (pt.log() - s.log_softmax(-1, Kind::Float))).sum(Kind::Float)).is_nan()
        );
        let y = Tensor::from_slice(&[1i64]);
        let loss = kd(|| super::ce(&s, &y, 0.0), &s, &te, 1.0, 0.5);
        // p_t = (0, 1, 0): KL = −log p_s[1]; CE = −log p_s[1] too
        let want = -log_softmax(&[1.0, 2.0, 0.5])[1];
        assert!((val(&loss) - want).abs() < 1e-6, "{} vs {want}", val(&loss));
        loss.backward();
        let g = s.grad();
        assert_eq!(g.isfinite().all().int64_value(&[]), 1, "finite gradient");
        let p = Tensor::from_slice(&[0.25f32, 1e-30, 0.5, 0.0]);
        let (ours, logs) = (finite_log(&p), p.log());
        assert!(ours.narrow(0, 0, 3).equal(&logs.narrow(0, 0, 3)));
        assert_eq!(ours.double_value(&[3]), f32::MIN as f64);
    }

    #[test]
    fn feature_loss_by_hand() {
        let s = t(&[1.0, 2.0, 0.5], 1);
        let y = Tensor::from_slice(&[2i64]);
        let ce = -log_softmax(&[1.0, 2.0, 0.5])[2];
        // regressed vs teacher map: differences 1, -2, 0, 3 → MSE (1 + 4 + 0 + 9) / 4 = 3.5
        let r = Tensor::from_slice(&[1.0f32, 0.0, 2.0, 3.0]).view([1, 1, 2, 2]);
        let f = Tensor::from_slice(&[0.0f32, 2.0, 2.0, 0.0]).view([1, 1, 2, 2]);
        let got = val(&feature(super::ce(&s, &y, 0.0), &r, &f, 0.25));
        assert!((got - (0.75 * ce + 0.25 * 3.5)).abs() < 1e-6, "{got}");
        assert!((val(&feature(super::ce(&s, &y, 0.0), &r, &f, 0.0)) - ce).abs() < 1e-6);
    }

    #[test]
    fn imitation_loss_by_hand() {
        let s = t(&[1.0, 2.0, 0.5, 0.0, -1.0, 3.0], 2);
        let y = Tensor::from_slice(&[0i64, 2]);
        let tl = Tensor::from_slice(&[1i64, 1]);
        let ls0 = log_softmax(&[1.0, 2.0, 0.5]);
        let ls1 = log_softmax(&[0.0, -1.0, 3.0]);
        let ce_y = -(ls0[0] + ls1[2]) / 2.0;
        let ce_t = -(ls0[1] + ls1[1]) / 2.0;
        let got = val(&imitation(&s, (&y, &tl), 0.75, 0.0));
        assert!((got - (0.25 * ce_y + 0.75 * ce_t)).abs() < 1e-6, "{got}");
        // α = 1 learns from the teacher's answers alone
        assert!((val(&imitation(&s, (&y, &tl), 1.0, 0.0)) - ce_t).abs() < 1e-6);
    }

    #[test]
    fn kd_term_is_zero_when_student_equals_teacher() {
        let s = t(&[1.0, 2.0, 0.5], 1);
        let y = Tensor::from_slice(&[1i64]);
        let ce = val(&s.cross_entropy_for_logits(&y));
        let got = val(&kd(|| super::ce(&s, &y, 0.0), &s, &s, 3.0, 0.5));
        assert!((got - 0.5 * ce).abs() < 1e-6);
    }

    #[test]
    fn label_smoothing_mixes_the_target_with_the_uniform_distribution() {
        // two rows, three classes, ε = 0.1: (1 − ε)·(−log p_y) + ε·mean over classes of (−log p_k)
        let s = t(&[1.0, 2.0, 0.5, 0.0, -1.0, 3.0], 2);
        let y = Tensor::from_slice(&[1i64, 2]);
        let eps = 0.1;
        let rows = [[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]];
        let want: f64 = rows
            .iter()
            .zip([1, 2])
            .map(|(r, k)| {
                let ls = log_softmax(r);
                (1.0 - eps) * -ls[k] + eps * -ls.iter().sum::<f64>() / 3.0
            })
            .sum::<f64>()
            / 2.0;
        assert!((val(&super::ce(&s, &y, eps)) - want).abs() < 1e-6);
        let plain = val(&super::ce(&s, &y, 0.0));
        assert!((plain - want).abs() > 1e-3, "ε changes the loss");
        // and every method's CE term is this one: KD at α = 0.5 with ε
        let te = t(&[0.5, 0.1, 0.2, 0.3, 0.3, 0.3], 2);
        let kd_eps = val(&kd(|| super::ce(&s, &y, eps), &s, &te, 2.0, 0.5));
        let kd_0 = val(&kd(|| super::ce(&s, &y, 0.0), &s, &te, 2.0, 0.5));
        assert!(((kd_eps - kd_0) - 0.5 * (want - plain)).abs() < 1e-6);
    }
}
