use super::*;
use crate::report::tests::records;
use crate::report::{Loaded, Meta};

fn loaded(name: &str, student_epochs: u32, recs: Vec<crate::store::RunRecord>) -> Loaded {
    Loaded {
        dir: name.into(),
        meta: Meta {
            name: name.into(),
            dataset: "mnist".into(),
            seeds: vec![0, 1, 2],
            confirm_seeds: Vec::new(),
            teacher_epochs: 1,
            student_epochs,
            ..Meta::default()
        },
        model_version: 1,
        records: recs,
        settings: vec![
            ("teacher.lr".into(), "0.001".into()),
            ("student.precision".into(), "fp32".into()),
        ],
        planned: 0,
    }
}

#[test]
fn a_partial_sweep_and_two_sweeps_of_one_name_are_told_apart() {
    let mut a = loaded("s1", 1, records());
    a.dir = "R2/s1".into();
    a.planned = a.records.len();
    // the same sweep file under another root, stopped before any student finished
    let mut b = loaded("s1", 1, Vec::new());
    b.dir = "R7/s1".into();
    b.planned = 12;
    let c = compare(&[a, b]);
    let names: Vec<&str> = c.sweeps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["s1 (R2/s1)", "s1 (R7/s1)"]);
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    assert!(
        c.warnings[0].starts_with("s1 (R7/s1) has not finished: 0 of its 12 runs have records"),
        "{:?}",
        c.warnings
    );
    assert_eq!(
        c.none_shared().unwrap(),
        "No cell is in every sweep: s1 (R7/s1) has no finished student yet, so there are no \
         differences to show."
    );
}

#[test]
fn settings_that_differ_are_listed_and_the_same_ones_are_not() {
    let c = compare(&[loaded("a", 1, records()), loaded("b", 1, records())]);
    assert!(c.settings.is_empty());
    assert!(markdown(&c).contains(SAME_SETTINGS), "{}", markdown(&c));
    let mut b = loaded("b", 1, records());
    b.settings[1].1 = "bf16".into();
    // a setting only one sweep has (a method's the other lacks) is not a difference
    b.settings.push(("grid.dkd.warmup".into(), "1".into()));
    let c = compare(&[loaded("a", 1, records()), b]);
    let rows: Vec<(&str, Vec<&str>)> = c
        .settings
        .iter()
        .map(|d| {
            (
                d.setting.as_str(),
                d.values.iter().map(|v| v.as_str()).collect(),
            )
        })
        .collect();
    assert_eq!(rows, [("student.precision", vec!["fp32", "bf16"])]);
    let md = markdown(&c);
    assert!(
        md.contains(&format!(
            "{SETTINGS_INTRO}\n\n| setting | a | b |\n|---|---|---|\n| student.precision | fp32 | bf16 |\n"
        )),
        "{md}"
    );
    assert!(
        !md.contains("teacher.lr") && !md.contains(SAME_SETTINGS),
        "{md}"
    );
    let page = crate::report::html::compare_page(Path::new("."), &c);
    assert!(
        page.contains("<tr><td class=\"l\">student.precision</td><td class=\"l\">fp32</td><td class=\"l\">bf16</td></tr>"),
        "{page}"
    );
}

#[test]
fn sweeps_computed_on_other_machines_are_said_to_be() {
    use crate::report::tests::{on_cpu, AMD, INTEL};
    // the same vendor (portable numerics), or a sweep whose records do not say: nothing to warn of
    let other_xeon = "GenuineIntel, Intel(R) Xeon(R) Platinum 8480+";
    for b in [Some(INTEL), Some(other_xeon), None] {
        let c = compare(&[
            loaded("a", 1, on_cpu(Some(INTEL))),
            loaded("b", 1, on_cpu(b)),
        ]);
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    }
    let c = compare(&[
        loaded("a", 1, on_cpu(Some(INTEL))),
        loaded("b", 1, on_cpu(Some(AMD))),
    ]);
    assert_eq!(
        c.warnings,
        [format!(
            "the sweeps computed on other machines (cpu GenuineIntel vs cpu AuthenticAMD): {}",
            crate::report::machines_consequence(&["cpu"])
        )]
    );
    // a CPU sweep beside a GPU sweep: other draws, not other rounding
    let mut gpu = on_cpu(None);
    for r in &mut gpu {
        r.device = "cuda:0".into();
        r.gpu = Some("NVIDIA H200, sm_90, TF32".into());
    }
    let c = compare(&[loaded("a", 1, on_cpu(Some(INTEL))), loaded("b", 1, gpu)]);
    assert!(
        c.warnings[0].starts_with(
            "the sweeps computed on other machines (cpu GenuineIntel vs cuda NVIDIA H200, \
             sm_90, TF32): CPU and GPU runs draw"
        ),
        "{:?}",
        c.warnings
    );
}

#[test]
fn shared_cells_differences_and_cells_apart() {
    let a = loaded("a", 1, records());
    // b: T=4 is 1 point better everywhere, T=2 is missing, T=8 is new
    let mut rb: Vec<_> = records()
        .into_iter()
        .filter(|r| r.temperature.as_deref() != Some("2"))
        .collect();
    for r in rb
        .iter_mut()
        .filter(|r| r.temperature.as_deref() == Some("4"))
    {
        r.test_acc = r.test_acc.map(|t| t + 1.0);
    }
    let mut extra: Vec<_> = rb
        .iter()
        .filter(|r| r.temperature.as_deref() == Some("4"))
        .cloned()
        .collect();
    for r in &mut extra {
        r.temperature = Some("8".into());
    }
    rb.extend(extra);
    let c = compare(&[a, loaded("b", 2, rb)]);
    assert_eq!(c.shared.len(), 1);
    assert_eq!(
        (c.shared[0].temperature.as_str(), c.shared[0].alpha.as_str()),
        ("4", "0.5")
    );
    assert!(
        (c.shared[0].test[0].unwrap().mean - 81.0).abs() < 1e-9
            && (c.shared[0].diff[0].unwrap() - 1.0).abs() < 1e-9
    );
    let only: Vec<(&str, &str)> = c
        .only
        .iter()
        .map(|o| (o.sweep.as_str(), o.temperature.as_str()))
        .collect();
    assert_eq!(only, [("a", "2"), ("b", "8")]);
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    assert!(c.warnings[0].contains("student epochs (1 vs 2)"));
    let md = markdown(&c);
    assert!(
        md.contains("| logit | 4 | 0.5 | 81.00 ± 0.50 | 82.00 ± 0.50 | +1.00 |"),
        "{md}"
    );
    assert!(
        md.contains("| a | logit | 2 | 0.5 |") && md.contains("| b | logit | 8 | 0.5 |"),
        "{md}"
    );
    assert!(md.contains("**warning:**"), "{md}");
}

#[test]
fn a_cell_that_rises_with_its_baseline_shows_the_same_gain() {
    // b: every student, the baseline included, one point better; the teacher the same
    let mut rb = records();
    for r in rb
        .iter_mut()
        .filter(|r| r.role != crate::plan::Role::Teacher)
    {
        r.test_acc = r.test_acc.map(|t| t + 1.0);
    }
    let c = compare(&[loaded("a", 1, records()), loaded("b", 1, rb)]);
    let rows: Vec<(&str, f64)> = (c.references.iter())
        .map(|r| (r.method.as_str(), r.diff[0].unwrap()))
        .collect();
    assert_eq!(rows, [("teacher", 0.0), ("baseline student", 1.0)]);
    let t4 = c.shared.iter().find(|s| s.temperature == "4").unwrap();
    assert!((t4.diff[0].unwrap() - 1.0).abs() < 1e-9);
    let gains: Vec<f64> = t4.gain.iter().map(|g| g.unwrap()).collect();
    assert!(
        (gains[0] - 1.0).abs() < 1e-9 && (gains[1] - 1.0).abs() < 1e-9,
        "{gains:?}"
    );
    let md = markdown(&c);
    assert!(
        md.contains("| baseline student | – | – | 80.00 ± 1.00 | 81.00 ± 1.00 | +1.00 | – | – |")
            && md.contains(
                "| logit | 4 | 0.5 | 81.00 ± 0.50 | 82.00 ± 0.50 | +1.00 | +1.00 | +1.00 |"
            ),
        "{md}"
    );
    // a sweep without a baseline (`baseline = false`): the row stays, with "–" there
    let nb: Vec<_> = (records().into_iter())
        .filter(|r| r.role != crate::plan::Role::Baseline)
        .collect();
    let c2 = compare(&[loaded("a", 1, records()), loaded("nb", 1, nb)]);
    let md2 = markdown(&c2);
    assert!(
        md2.contains("| baseline student | – | – | 80.00 ± 1.00 | – | – | – | – |"),
        "{md2}"
    );
    let page = crate::report::html::compare_page(Path::new("."), &c);
    assert!(
        page.contains("<th>KD gain in b (points)</th>")
            && page.contains("a cell can rise with its baseline without distilling better")
    );
}

#[test]
fn sweeps_without_a_shared_cell_get_a_sentence_not_an_empty_table() {
    let a = loaded("a", 1, records());
    let mut rb = records();
    for r in rb.iter_mut().filter(|r| r.temperature.is_some()) {
        r.temperature = Some("16".into());
    }
    let c = compare(&[a, loaded("b", 1, rb)]);
    assert!(c.shared.is_empty());
    let md = markdown(&c);
    assert!(
        md.contains("\nNo cell is in every sweep: a and b share no (method, T, α) setting"),
        "{md}"
    );
    assert!(
        !md.contains("\n| method | T | α |"),
        "an empty table's header: {md}"
    );
    assert!(md.contains("| b | logit | 16 | 0.5 |"), "{md}");
    let page = crate::report::html::compare_page(Path::new("."), &c);
    assert!(page.contains("No cell is in every sweep") && !page.contains("id=\"shared\""));
    // with a shared cell, the table and no sentence
    let c = compare(&[loaded("a", 1, records()), loaded("b", 1, records())]);
    assert!(c.none_shared().is_none() && markdown(&c).contains("\n| method | T | α |"));
}
