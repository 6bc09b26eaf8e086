//! Each distillation method against PyTorch written from its paper's equations
//! (`bench/kd_losses.py`): the loss and its gradient on random logits agree bit for bit, and a
//! few epochs of a student trained with the method replay in plain PyTorch step by step
//! (`bench/pytorch_replay.py`), as `tests/pytorch_parity.rs` does for logit KD.

mod common;

use kd_sweep::distill::{Coord, Distiller, Fixed, GridValue, Method, TeacherOut};
use kd_sweep::model::Init;
use std::path::Path;
use tch::{nn, Device, Kind, Tensor};

const B: i64 = 16;
const C: i64 = 10;

fn g(v: &str) -> Option<GridValue> {
    Some(GridValue::of(v))
}

/// The methods' cells under test, with the epoch each loss is taken in.
fn cases() -> Vec<(&'static str, Coord, u32)> {
    let logit = |t, a, z| Coord {
        zscore: z,
        ..Coord::logit(GridValue::of(t), GridValue::of(a))
    };
    let dkd = |z| Coord {
        temperature: g("4"),
        alpha: g("1"),
        beta: g("8"),
        zscore: z,
        ..Coord::of(Method::Dkd)
    };
    vec![
        ("logit KD", logit("4", "0.9", false), 1),
        ("logit KD, z-score", logit("2", "0.9", true), 1),
        ("DKD (warming up)", dkd(false), 3),
        ("DKD, z-score", dkd(true), 30),
        (
            "DIST",
            Coord {
                temperature: g("4"),
                beta: g("2"),
                gamma: g("2"),
                ..Coord::of(Method::Dist)
            },
            1,
        ),
        (
            "multi-T",
            Coord {
                temperatures: ["2", "3", "4", "5", "6"].map(GridValue::of).to_vec(),
                alpha: g("0.9"),
                ..Coord::of(Method::MultiT)
            },
            1,
        ),
        (
            "TTM",
            Coord {
                temperature: g("10"),
                beta: g("3"),
                ..Coord::of(Method::Ttm)
            },
            1,
        ),
        (
            "CTKD (λ ramping)",
            Coord {
                alpha: g("0.9"),
                ..Coord::of(Method::Ctkd)
            },
            4,
        ),
    ]
}

fn fixed() -> Fixed {
    Fixed {
        dkd_warmup: 5,
        ..Fixed::default()
    }
}

fn bytes_f32(t: &Tensor) -> Vec<u8> {
    Vec::<f32>::try_from(t.flatten(0, -1))
        .unwrap()
        .iter()
        .flat_map(|x| x.to_le_bytes())
        .collect()
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(1e-12)
}

#[test]
fn each_methods_loss_and_gradient_are_its_papers() {
    common::portable_numerics();
    let Some(python) = kd_sweep::tools::bench::reference_python(None) else {
        common::skip_without_pytorch();
        return;
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/kd_losses.py");
    tch::manual_seed(7);
    // kd-sweep's loss and gradients for every case, each case's inputs written to a folder of its own
    let mut ours_all = Vec::new();
    for (name, coord, epoch) in cases() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let s0 = Tensor::randn([B, C], (Kind::Float, Device::Cpu)) * 2.0;
        let t = Tensor::randn([B, C], (Kind::Float, Device::Cpu)) * 3.0;
        let y = Tensor::randint(C, [B], (Kind::Int64, Device::Cpu));
        let f = fixed();
        // kd-sweep: the method's loss through its Distiller, the gradient by autograd
        let vs = nn::VarStore::new(Device::Cpu);
        let mut distiller = Distiller::new(&coord, &f, 30);
        distiller.build(&vs.root(), (0, 0), Init::Pytorch);
        let s = s0.copy().set_requires_grad(true);
        let loss = distiller.loss(&s, None, &TeacherOut::Logits(t.shallow_clone()), &y, epoch);
        loss.backward();
        let ours = loss.double_value(&[]);
        let grad = Vec::<f32>::try_from(s.grad().flatten(0, -1)).unwrap();
        // PyTorch from the equations
        std::fs::write(d.join("s.bin"), bytes_f32(&s0)).unwrap();
        std::fs::write(d.join("t.bin"), bytes_f32(&t)).unwrap();
        let ys: Vec<u8> = Vec::<i64>::try_from(&y)
            .unwrap()
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        std::fs::write(d.join("y.bin"), ys).unwrap();
        let case = serde_json::json!({
            "method": coord.method.name(), "batch": B, "classes": C, "epoch": epoch,
            "params": common::method_params(&coord, &f),
        });
        std::fs::write(d.join("case.json"), case.to_string()).unwrap();
        // CTKD's θ gradient, the only one of the method's own parameters
        let theta = (coord.method == Method::Ctkd)
            .then(|| vs.variables()["ctkd_theta"].grad().double_value(&[0]));
        ours_all.push((name, dir, ours, grad, theta));
    }
    // PyTorch from the equations, every case in one process (torch's import takes seconds)
    let out = std::process::Command::new(&python)
        .arg(&script)
        .args(ours_all.iter().map(|c| c.1.path()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kd_losses.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (name, dir, ours, grad, theta) in ours_all {
        let d = dir.path();
        let torch_out: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(d.join("torch.json")).unwrap()).unwrap();
        let their_loss = torch_out["loss"].as_f64().unwrap();
        let their_grad: Vec<f64> = torch_out["grad"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let norm = |v: &mut dyn Iterator<Item = f64>| v.map(|x| x * x).sum::<f64>().sqrt();
        let diff = norm(&mut grad.iter().zip(&their_grad).map(|(a, b)| *a as f64 - b));
        let grad_rel = diff / norm(&mut their_grad.iter().copied()).max(1e-12);
        eprintln!(
            "{name}: loss {ours:.7} (PyTorch {their_loss:.7}, {:.1e}); gradient {grad_rel:.1e}",
            rel(ours, their_loss)
        );
        // bit for bit: each loss follows its PyTorch writing op for op, and creates its
        // cross-entropy term where that writing does (autograd adds the gradients reaching the
        // logits in creation order; creating multi-T's first moved its gradient by 4.7e-8)
        assert!(ours == their_loss, "{name}: loss {ours} vs {their_loss}");
        let unequal = grad
            .iter()
            .zip(&their_grad)
            .filter(|(a, b)| **a as f64 != **b)
            .count();
        assert_eq!(
            unequal, 0,
            "{name}: {unequal} gradient elements differ (relative norm {grad_rel:e})"
        );
        if let Some(theta) = theta {
            // The temperature's gradient, reversed and scaled by λ, reaches θ as PyTorch's does.
            // It is one number summed from every logit's share with cancellation (T² and KL pull
            // opposite ways), so float32 results are compared with the float64 one: ours must be
            // as close to it as PyTorch's float32 is (or within 1e-6 relative).
            let theirs = torch_out["theta_grad"].as_f64().unwrap();
            let exact = torch_out["theta_grad_f64"].as_f64().unwrap();
            eprintln!("{name}: θ gradient {theta:.7e} (PyTorch {theirs:.7e}, float64 {exact:.7e})");
            assert!(theta != 0.0, "{name}: θ has no gradient");
            let ulp_budget = (theirs - exact).abs().max(1e-6 * exact.abs());
            assert!(
                (theta - exact).abs() <= 2.0 * ulp_budget,
                "{name}: θ gradient {theta} vs float64 {exact} (PyTorch float32 {theirs})"
            );
        }
        assert!(ours.is_finite() && ours > 0.0, "{name}: {ours}");
    }
}
