use super::*;
use crate::report::tests::records;

/// MNIST's image shape and classes, as the sweeps of these tests have them.
const MNIST: Option<([i64; 3], i64)> = Some(([1, 28, 28], 10));

/// Width, height and number of distinct colours of a PNG.
pub(crate) fn png_facts(path: &Path) -> (u32, u32, usize) {
    let f = std::fs::File::open(path).unwrap();
    let mut r = png::Decoder::new(std::io::BufReader::new(f))
        .read_info()
        .unwrap();
    let mut buf = vec![0; r.output_buffer_size().unwrap()];
    let info = r.next_frame(&mut buf).unwrap();
    let px: std::collections::HashSet<&[u8]> = buf[..info.buffer_size()].chunks(3).collect();
    (info.width, info.height, px.len())
}

#[test]
fn the_three_charts_decode_and_carry_their_text() {
    let dir = tempfile::tempdir().unwrap();
    let recs = records();
    let refs: Vec<&RunRecord> = recs.iter().collect();
    let s = crate::report::summarize(&refs, None);
    write_all(dir.path(), "syn", ("mnist", MNIST), &s, &refs).unwrap();
    let charts = dir.path().join("charts");
    for stem in [
        "accuracy_vs_temperature",
        "kd_gain_heatmap",
        "learning_curves",
    ] {
        let (w, h, colours) = png_facts(&charts.join(format!("{stem}.png")));
        assert_eq!((w, h), CHART_SIZE, "{stem}");
        assert!(colours > 20, "{stem} looks blank");
    }
    let svg = |stem: &str| std::fs::read_to_string(charts.join(format!("{stem}.svg"))).unwrap();
    let acc = svg("accuracy_vs_temperature");
    for t in [
        "distillation temperature T (log scale)",
        "student test accuracy (%)",
        "α = 0.5",
        "teacher 90.00%",
        "baseline student 80.00%",
        "chosen: T=4, α=0.5",
    ] {
        assert!(acc.contains(t), "accuracy chart lacks {t:?}");
    }
    let heat = svg("kd_gain_heatmap");
    // mean gains: T=2 → +2.00, T=4 → +1.00
    for t in [
        "+2.00",
        "+1.00",
        "α = 0.5",
        "distillation temperature T",
        "gain (points)",
    ] {
        assert!(heat.contains(t), "heatmap lacks {t:?}");
    }
    let curves = svg("learning_curves");
    for t in [
        "epoch",
        "validation accuracy (%)",
        "teacher",
        "baseline student",
        "α = 0.5, T = 4",
    ] {
        assert!(curves.contains(t), "learning curves lack {t:?}");
    }
}

#[test]
fn diverging_scale_is_white_at_zero_and_saturates() {
    assert_eq!(diverging(0.0), RGBColor(255, 255, 255));
    assert_eq!(diverging(1.0), RGBColor(178, 24, 43));
    assert_eq!(diverging(-5.0), RGBColor(33, 102, 172));
}

/// The records of `records()` plus, per seed, DKD cells at β = 2 and 8 (T = 4), a z-scored logit
/// cell, and a CTKD run whose learned temperature rises over two epochs; every student agrees with
/// its teacher on some share of the test set.
fn records_with_methods() -> Vec<RunRecord> {
    use crate::distill::Method;
    use crate::record::Role;
    let mut v = records();
    for seed in 0..3u64 {
        let base = [80.0, 81.0, 79.0][seed as usize];
        for (beta, gain) in [("2", 0.25), ("8", -3.0)] {
            let mut r = crate::report::tests::rec(
                Role::Student,
                seed,
                Some("4"),
                Some("1"),
                82.0,
                base + gain,
            );
            r.method = Method::Dkd;
            r.beta = Some(beta.into());
            v.push(r);
        }
        let mut z =
            crate::report::tests::rec(Role::Student, seed, Some("2"), Some("0.5"), 82.5, base);
        z.zscore = true;
        z.test_acc = Some(base + 7.5);
        v.push(z);
        let mut c =
            crate::report::tests::rec(Role::Student, seed, None, Some("0.5"), 81.5, base + 0.5);
        c.method = Method::Ctkd;
        let mut second = c.history[0].clone();
        second.epoch = 2;
        c.history[0].learned_temperature = Some(4.5);
        second.learned_temperature = Some(6.25);
        c.history.push(second);
        v.push(c);
    }
    for r in v.iter_mut().filter(|r| r.role != Role::Teacher) {
        r.agreement = Some(if r.role == Role::Baseline { 71.0 } else { 85.0 });
    }
    v
}

#[test]
fn each_method_gets_its_own_charts_and_no_method_joins_another_s_line() {
    let dir = tempfile::tempdir().unwrap();
    let recs = records_with_methods();
    let refs: Vec<&RunRecord> = recs.iter().collect();
    let s = crate::report::summarize(&refs, None);
    write_all(dir.path(), "syn", ("mnist", MNIST), &s, &refs).unwrap();
    let charts = dir.path().join("charts");
    let svg = |stem: &str| std::fs::read_to_string(charts.join(format!("{stem}.svg"))).unwrap();
    for stem in [
        "gain_heatmap_dkd",
        "gain_heatmap_logit_zscore",
        "agreement_vs_temperature",
        "ctkd_temperature",
    ] {
        let (w, h, colours) = png_facts(&charts.join(format!("{stem}.png")));
        assert_eq!((w, h), CHART_SIZE, "{stem}");
        assert!(colours > 20, "{stem} looks blank");
    }
    // DKD over its own axes: one row per (α, β), its gains in the cells
    let dkd = svg("gain_heatmap_dkd");
    for t in ["α = 1, β = 2", "α = 1, β = 8", "+0.25", "-3.00"] {
        assert!(dkd.contains(t), "DKD heatmap lacks {t:?}");
    }
    // logit KD's heatmap holds logit KD's cells only: neither DKD's nor the z-scored cell's gains
    let logit = svg("kd_gain_heatmap");
    for t in ["+0.25", "-3.00", "+7.50", "β"] {
        assert!(
            !logit.contains(t),
            "logit KD's heatmap shows another method: {t:?}"
        );
    }
    assert!(svg("gain_heatmap_logit_zscore").contains("+7.50"));
    // the accuracy chart's panel names the other methods, z-scored logit apart
    let acc = svg("accuracy_vs_temperature");
    for t in ["dkd", "logit+z", "ctkd", "other methods", "dkd: own axes"] {
        assert!(acc.contains(t), "accuracy chart lacks {t:?}");
    }
    // DKD's α = 1 weighs a term of its own: not in the legend of logit KD's α values
    assert!(acc.contains("α = 0.5\n"), "the text's form changed: {acc}");
    assert!(!acc.contains("α = 1\n"), "DKD's α in the α legend");
    let agree = svg("agreement_vs_temperature");
    for t in [
        "top-1 agreement with the teacher (%)",
        "baseline student 71.00%",
        "α = 0.5",
    ] {
        assert!(agree.contains(t), "agreement chart lacks {t:?}");
    }
    let ctkd = svg("ctkd_temperature");
    for t in ["learned temperature T", "ctkd, α = 0.5", "epoch"] {
        assert!(ctkd.contains(t), "CTKD chart lacks {t:?}");
    }
}

#[test]
fn a_sweep_of_logit_kd_alone_draws_no_method_charts() {
    let dir = tempfile::tempdir().unwrap();
    let recs = records();
    let refs: Vec<&RunRecord> = recs.iter().collect();
    let s = crate::report::summarize(&refs, None);
    write_all(dir.path(), "syn", ("mnist", MNIST), &s, &refs).unwrap();
    let mut names: Vec<String> = std::fs::read_dir(dir.path().join("charts"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".svg"))
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "accuracy_vs_temperature.svg",
            "kd_gain_heatmap.svg",
            "learning_curves.svg"
        ]
    );
}

/// The learning curves: each method's best cell in a colour of its own, none sharing an α's colour
/// (DKD's α = 1 and CTKD's α = 0.5 are not logit KD's α).
#[test]
fn each_method_s_learning_curve_has_a_colour_of_its_own() {
    let recs = records_with_methods();
    let refs: Vec<&RunRecord> = recs.iter().collect();
    let s = crate::report::summarize(&refs, None);
    let series = super::curves::learning_series(&s, &refs);
    let students: Vec<&Entry> = (series.iter())
        .map(|(e, _)| e)
        .filter(|e| !matches!(e.line, Line::Dashed))
        .collect();
    assert!(students.len() >= 4, "{}", students.len());
    for (i, a) in students.iter().enumerate() {
        for b in &students[i + 1..] {
            assert_ne!(
                a.colour, b.colour,
                "{} and {} share a colour",
                a.label, b.label
            );
        }
    }
}

/// 24 series get 24 colours (the palette's 8, then darker, then lighter), none the teacher's or the
/// baseline's grey.
#[test]
fn twenty_four_series_get_colours_of_their_own() {
    let colours: Vec<_> = (0..24).map(super::series_colour).collect();
    for (i, a) in colours.iter().enumerate() {
        for b in &colours[i + 1..] {
            assert_ne!(a, b, "series {i}'s colour repeats");
        }
        assert!(*a != super::TEACHER && *a != super::BASELINE);
    }
    assert_eq!(super::series_colour(0), super::series_colour(24));
}
