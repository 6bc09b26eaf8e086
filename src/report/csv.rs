//! `runs.csv` (one row per run) and `epochs.csv` (one row per run and epoch), from the records.
//! Columns that only some methods have — β, γ, a set of temperatures, z-scoring, CTKD's learned
//! temperature, the teacher's epoch a student distilled from — appear when a record of the sweep has
//! them, so the files of a plain T × α sweep keep their columns.

use crate::record::{Role, RunRecord, Status};

fn cell(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.2}")).unwrap_or_default()
}

/// The extra coordinate columns the records use (beta, gamma, temperatures, logit_norm).
fn extra_columns(records: &[&RunRecord]) -> Vec<&'static str> {
    let mut out = Vec::new();
    if records.iter().any(|r| r.beta.is_some()) {
        out.push("beta");
    }
    if records.iter().any(|r| r.gamma.is_some()) {
        out.push("gamma");
    }
    if records.iter().any(|r| !r.temperatures.is_empty()) {
        out.push("temperatures");
    }
    if records.iter().any(|r| r.zscore) {
        out.push("logit_norm");
    }
    if records.iter().any(|r| r.teacher_epoch.is_some()) {
        out.push("teacher_epoch");
    }
    out
}

/// The cells that say which run a row is about, shared by runs.csv and epochs.csv: id, role, method,
/// models, seed, T, α, and the sweep's extra coordinate columns.
fn run_cells(r: &RunRecord, extra: &[&str]) -> Vec<String> {
    let (teacher, student) = r.models();
    let name = |a: Option<crate::model::Arch>| a.map(|a| a.name()).unwrap_or_default();
    let method = if r.role == Role::Student {
        r.method.name().to_string()
    } else {
        String::new()
    };
    let mut cells = vec![
        r.run_id.clone(),
        r.role.name().to_string(),
        method,
        name(teacher),
        name(student),
        r.seed.to_string(),
        r.temperature.clone().unwrap_or_default(),
        r.alpha.clone().unwrap_or_default(),
    ];
    for column in extra {
        cells.push(match *column {
            "beta" => r.beta.clone().unwrap_or_default(),
            "gamma" => r.gamma.clone().unwrap_or_default(),
            "temperatures" => r.temperatures.join(" "),
            "teacher_epoch" => r.teacher_epoch.map(|e| e.to_string()).unwrap_or_default(),
            _ if r.role != Role::Student => String::new(),
            _ => if r.zscore { "zscore" } else { "none" }.to_string(),
        });
    }
    cells
}

const RUN_HEAD: [&str; 8] = [
    "run_id",
    "role",
    "method",
    "teacher_model",
    "student_model",
    "seed",
    "temperature",
    "alpha",
];

/// `runs.csv`: one row per run of the current plan, in plan order.
pub fn runs_csv(records: &[&RunRecord]) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let extra = extra_columns(records);
    let tail = [
        "epochs",
        "val_acc",
        "test_acc",
        "best_epoch",
        "best_val_acc",
        "test_acc_at_best",
        "agreement",
        "kl_to_teacher",
        "seconds",
        "device",
        "status",
        "error",
    ];
    w.write_record(RUN_HEAD.iter().chain(&extra).chain(&tail))?;
    for r in records {
        w.write_record(
            run_cells(r, &extra).into_iter().chain([
                r.epochs.to_string(),
                cell(r.val_acc),
                cell(r.test_acc),
                r.best_epoch.map(|e| e.to_string()).unwrap_or_default(),
                cell(r.best_val_acc),
                cell(r.test_acc_at_best),
                cell(r.agreement),
                r.kl_to_teacher
                    .map(|k| format!("{k:.6}"))
                    .unwrap_or_default(),
                format!("{:.1}", r.seconds),
                r.device.clone(),
                match r.status {
                    Status::Done => "done".into(),
                    Status::Failed => "failed".into(),
                    Status::Pruned => "pruned".into(),
                },
                r.error.clone().unwrap_or_default(),
            ]),
        )?;
    }
    w.into_inner().map_err(|e| csv::Error::from(e.into_error()))
}

/// `epochs.csv`: one row per run and epoch (and CTKD's learned temperature when a run has one).
pub fn epochs_csv(records: &[&RunRecord]) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let extra = extra_columns(records);
    let learned = records
        .iter()
        .any(|r| r.history.iter().any(|e| e.learned_temperature.is_some()));
    let mut tail = vec!["epoch", "train_loss", "val_acc", "seconds"];
    if learned {
        tail.push("learned_temperature");
    }
    w.write_record(RUN_HEAD.iter().chain(&extra).chain(&tail))?;
    for r in records {
        for e in &r.history {
            let mut row = run_cells(r, &extra);
            row.extend([
                e.epoch.to_string(),
                format!("{:.6}", e.train_loss),
                format!("{:.2}", e.val_acc),
                format!("{:.1}", e.seconds),
            ]);
            if learned {
                row.push(
                    e.learned_temperature
                        .map(|t| format!("{t:.4}"))
                        .unwrap_or_default(),
                );
            }
            w.write_record(row)?;
        }
    }
    w.into_inner().map_err(|e| csv::Error::from(e.into_error()))
}
