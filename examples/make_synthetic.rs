//! Writes a small synthetic MNIST-format dataset (four IDX files) that kd-sweep can read:
//! `cargo run --release --example make_synthetic -- DIR [N_TRAIN] [N_TEST] [SEED]` (the golden test's
//! data is `DIR 200 60 3`).
fn main() {
    let mut args = std::env::args().skip(1);
    let Some(dir) = args.next() else {
        eprintln!("usage: make_synthetic DIR [N_TRAIN] [N_TEST] [SEED]");
        std::process::exit(2);
    };
    let n_train = args.next().and_then(|s| s.parse().ok()).unwrap_or(600);
    let n_test = args.next().and_then(|s| s.parse().ok()).unwrap_or(200);
    let seed = args.next().and_then(|s| s.parse().ok()).unwrap_or(1);
    if let Err(e) = kd_sweep::data::write::synthetic_mnist(
        std::path::Path::new(&dir),
        n_train,
        n_test,
        seed,
        true,
    ) {
        eprintln!("error: {dir}: {e}");
        std::process::exit(1);
    }
}
