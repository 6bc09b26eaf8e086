//! Stage 6: what people read. [`summary`] aggregates run records over seeds — honestly: gains over the
//! baseline come with a 95 % confidence interval from per-seed paired differences ([`stats`]), and
//! the recommended setting is chosen on validation accuracy, never on the test set; [`outputs`]
//! writes every file of a sweep's folder ([`csv`], [`markdown`](mod@markdown), [`charts`], [`html`]) in one call;
//! [`load`](mod@load) reads a folder back; [`compare`] lines sweeps up; [`status`] shows one in flight.
//! Everything here reads records only: no libtorch work.

pub mod charts;
pub mod compare;
pub mod csv;
pub mod html;
pub mod load;
pub mod markdown;
pub mod outputs;
pub mod stats;
pub mod status;
pub mod summary;

pub use load::{load, Loaded, Meta};
pub use markdown::markdown;
pub use outputs::write_all;
pub use stats::{t_975, Gain, Stat};
pub use summary::{
    best_by_validation, machine_kinds, machines_consequence, summarize, Cell, MethodBest,
    PrunedCell, SearchSpent, Summary,
};

#[cfg(test)]
pub(crate) mod tests {
    use super::summary::num;
    use super::*;
    use crate::plan::RunSpec;
    use crate::record::{Role, RunRecord};
    use crate::train::EpochStats;

    pub(crate) fn rec(
        role: Role,
        seed: u64,
        t: Option<&str>,
        a: Option<&str>,
        val: f64,
        test: f64,
    ) -> RunRecord {
        let spec = RunSpec {
            id: format!("{}-{:?}-{:?}-s{seed}", role.name(), t, a),
            role,
            seed,
            key: "0".repeat(64),
            teacher: None,
            reference: None,
            coord: crate::distill::Coord {
                temperature: t.map(|v| crate::config::GridValue {
                    text: v.into(),
                    value: num(v),
                }),
                alpha: a.map(|v| crate::config::GridValue {
                    text: v.into(),
                    value: num(v),
                }),
                ..crate::distill::Coord::of(Default::default())
            },
            teacher_model: None,
            numerics: crate::platform::numerics::Numerics::Native,
            deterministic: false,
            cuda_graphs: false,
            snapshots: Vec::new(),
        };
        RunRecord::done(
            &spec,
            1,
            crate::train::Fitted::new(
                vec![EpochStats {
                    epoch: 1,
                    train_loss: 0.5,
                    val_acc: val,
                    seconds: 1.0,
                    learned_temperature: None,
                }],
                test,
                test,
                Vec::new(),
            ),
            1.0,
            "cpu",
        )
    }

    /// Three seeds: a baseline, and two cells whose test and validation rankings disagree.
    pub(crate) fn records() -> Vec<RunRecord> {
        let mut v = Vec::new();
        for (seed, base) in [(0, 80.0), (1, 81.0), (2, 79.0)] {
            v.push(rec(
                Role::Teacher,
                seed,
                None,
                None,
                90.0,
                89.0 + seed as f64,
            ));
            v.push(rec(Role::Baseline, seed, None, None, 80.0, base));
            // T=2: better on test (+2, +1, +3 over the baseline), worse on validation
            v.push(rec(
                Role::Student,
                seed,
                Some("2"),
                Some("0.5"),
                81.0,
                base + [2.0, 1.0, 3.0][seed as usize],
            ));
            // T=4: better on validation, gains +1, +0.5, +1.5
            v.push(rec(
                Role::Student,
                seed,
                Some("4"),
                Some("0.5"),
                83.0,
                base + [1.0, 0.5, 1.5][seed as usize],
            ));
        }
        v
    }

    #[test]
    fn stat_uses_sample_standard_deviation() {
        let s = Stat::of(&[1.0, 2.0, 3.0, 4.0]).unwrap();
        assert!((s.mean - 2.5).abs() < 1e-12);
        assert!((s.std - (5.0f64 / 3.0).sqrt()).abs() < 1e-12);
        assert_eq!(Stat::of(&[7.0]).unwrap().std, 0.0);
        assert!(Stat::of(&[]).is_none());
    }

    #[test]
    fn t_quantiles() {
        assert_eq!(t_975(1), 12.706);
        assert_eq!(t_975(2), 4.303);
        assert!((t_975(1000) - 1.96).abs() < 0.003);
        assert!(t_975(45) < 2.021 && t_975(45) > 2.000);
    }

    #[test]
    fn paired_confidence_interval_by_hand() {
        // differences 2, 1, 3: mean 2, sample std 1, n 3 → half-width t(2)·1/√3 = 4.303/1.7320508 = 2.484343
        let g = Gain::of(&[2.0, 1.0, 3.0]).unwrap();
        assert!((g.mean - 2.0).abs() < 1e-12 && (g.std - 1.0).abs() < 1e-12);
        let (lo, hi) = g.ci95.unwrap();
        assert!((lo - (2.0 - 2.484343)).abs() < 1e-5, "{lo}");
        assert!((hi - (2.0 + 2.484343)).abs() < 1e-5, "{hi}");
        assert!(
            Gain::of(&[1.5]).unwrap().ci95.is_none(),
            "n/a with one seed"
        );
        // two seeds 20 points apart: t(1)·√200/√2 = 12.706·10 = 127.06 points each side, and a
        // difference of two accuracies lies within ±100, so the interval stops there
        let g = Gain::of(&[30.0, 10.0]).unwrap();
        assert_eq!(g.ci95, Some((-100.0, 100.0)));
        assert!((g.half_width().unwrap() - 127.06).abs() < 1e-9);
        // JSON keeps the width the cut hides
        let json = serde_json::to_value(g).unwrap();
        assert!(
            (json["half_width"].as_f64().unwrap() - 127.06).abs() < 1e-9,
            "{json}"
        );
    }

    #[test]
    fn summary_means_gains_and_validation_choice() {
        let recs = records();
        let refs: Vec<&RunRecord> = recs.iter().collect();
        let s = summarize(&refs, None);
        assert!((s.teacher.unwrap().mean - 90.0).abs() < 1e-12);
        assert!(
            (s.baseline.unwrap().mean - 80.0).abs() < 1e-12
                && (s.baseline.unwrap().std - 1.0).abs() < 1e-12
        );
        assert_eq!(s.cells.len(), 2);
        let t2 = &s.cells[0];
        assert_eq!((t2.temperature.as_str(), t2.alpha.as_str()), ("2", "0.5"));
        assert!((t2.test.mean - 82.0).abs() < 1e-12);
        assert!((t2.gain.unwrap().mean - 2.0).abs() < 1e-12);
        // the test set prefers T=2 but the choice is made on validation: T=4
        let best_test = (0..2)
            .max_by(|&i, &j| s.cells[i].test.mean.total_cmp(&s.cells[j].test.mean))
            .unwrap();
        assert_eq!(s.cells[best_test].temperature, "2");
        assert_eq!(s.cells[s.chosen.unwrap()].temperature, "4");
        // T=4 gains 1, 0.5, 1.5: mean 1, std 0.5, half-width 4.303·0.5/√3 = 1.2422 → CI crosses 0
        assert!(
            s.verdict
                .starts_with("no gain distinguishable from seed noise"),
            "{}",
            s.verdict
        );
        assert!(s.verdict.contains("T=4, α=0.5"), "{}", s.verdict);
    }

    #[test]
    fn verdict_says_helps_when_the_interval_excludes_zero() {
        let mut recs = records();
        for r in recs
            .iter_mut()
            .filter(|r| r.temperature.as_deref() == Some("4"))
        {
            r.test_acc = r.test_acc.map(|t| t + 3.0); // gains 4, 3.5, 4.5
        }
        let refs: Vec<&RunRecord> = recs.iter().collect();
        let s = summarize(&refs, None);
        assert!(
            s.verdict
                .starts_with("distillation helps by 4.00 ± 1.24 points at T=4, α=0.5"),
            "{}",
            s.verdict
        );
        let md = markdown(
            &Meta {
                name: "x".into(),
                ..Default::default()
            },
            &s,
        );
        assert!(
            md.contains("| 4 | 0.5 |") && md.contains("◀ chosen") && md.contains("[+2.76, +5.24]"),
            "{md}"
        );
    }

    #[test]
    fn an_unfinished_sweep_says_so_and_a_search_or_finished_one_does_not() {
        let recs = records();
        let meta = |planned: usize, adaptive: bool| Meta {
            planned: Some(planned),
            adaptive,
            ..Default::default()
        };
        let n = recs.len();
        assert_eq!(meta(n, false).unfinished(n), None);
        assert_eq!(Meta::default().unfinished(n), None, "plan not known");
        assert_eq!(meta(n + 4, true).unfinished(n), None, "a [search] sweep");
        let u = meta(n + 4, false).unfinished(n);
        assert_eq!(
            u,
            Some(load::Unfinished {
                finished: n,
                planned: n + 4
            })
        );
        let refs: Vec<&RunRecord> = recs.iter().collect();
        let mut s = summarize(&refs, None);
        s.unfinished = u;
        let md = markdown(&Meta::default(), &s);
        assert!(
            md.contains(&format!("**Not finished:** this sweep has not finished: 4 of its {} runs have no record yet", n + 4))
                && md.contains("**Verdict (so far):**"),
            "{md}"
        );
    }

    /// Records computed on `cpu` (`None`: a record written before kd-sweep recorded it) under
    /// portable numerics.
    pub(crate) fn on_cpu(cpu: Option<&str>) -> Vec<RunRecord> {
        (records().into_iter())
            .map(|mut r| {
                r.device = "cpu".into();
                r.cpu = cpu.map(String::from);
                r.numerics = crate::platform::numerics::Numerics::Portable;
                r
            })
            .collect()
    }

    pub(crate) const INTEL: &str = "GenuineIntel, Intel(R) Xeon(R)";
    pub(crate) const AMD: &str = "AuthenticAMD, AMD EPYC 9654";

    #[test]
    fn runs_of_one_sweep_on_two_kinds_of_machine_are_said_to_be() {
        use crate::platform::numerics::Numerics;
        let said = |recs: &[RunRecord]| {
            let refs: Vec<&RunRecord> = recs.iter().collect();
            let s = summarize(&refs, None);
            let md = markdown(&Meta::default(), &s);
            let page = html::sweep_page(std::path::Path::new("."), &Meta::default(), &s, &refs);
            (s.machines, md, page)
        };
        // one kind, none recorded (older records), or two models of one vendor under portable
        // numerics (the same bits): nothing said, the outputs as before
        let mut epycs = on_cpu(Some(AMD));
        epycs[0].cpu = Some("AuthenticAMD, AMD EPYC 7763".into());
        for recs in [on_cpu(Some(INTEL)), on_cpu(None), records(), epycs.clone()] {
            let (machines, md, page) = said(&recs);
            assert!(machines.is_empty(), "{machines:?}");
            assert!(
                !md.contains("Machines") && !page.contains("id=\"machines\""),
                "{md}"
            );
        }
        // … under native numerics the model counts
        for r in &mut epycs {
            r.numerics = Numerics::Native;
        }
        let (machines, _, _) = said(&epycs);
        assert_eq!(machines[0].0, "cpu AuthenticAMD, AMD EPYC 7763");
        // a resumed or reused run from another CPU vendor, and a record that does not say
        let mut mixed = on_cpu(Some(INTEL));
        mixed[0].cpu = Some(AMD.into());
        let last = mixed.len() - 1;
        mixed[last].cpu = None;
        let (machines, md, page) = said(&mixed);
        assert_eq!(
            machines,
            [
                ("cpu AuthenticAMD".to_string(), 1),
                ("cpu GenuineIntel".to_string(), last - 1)
            ]
        );
        let line = format!(
            "**Machines:** these runs computed on 2 kinds of machine: cpu AuthenticAMD (1 run); cpu \
             GenuineIntel ({} runs); not recorded (1 run); one setting's numbers differ between them \
             by rounding",
            last - 1
        );
        assert!(md.contains(&line), "{md}");
        assert!(
            page.contains("<p class=\"verdict\" id=\"machines\">"),
            "{page}"
        );
        // a GPU run is its GPU's kind, and beside CPU runs another draw
        let mut gpu = on_cpu(Some(INTEL));
        gpu[0].device = "cuda:0".into();
        gpu[0].gpu = Some("NVIDIA H200, sm_90, TF32".into());
        let (machines, md, _) = said(&gpu);
        assert_eq!(machines[0].0, "cuda NVIDIA H200, sm_90, TF32");
        assert!(
            md.contains(
                "CPU and GPU runs draw their initial weights and dropout from other generators"
            ),
            "{md}"
        );
        // a run continued on this Intel from a checkpoint an EPYC wrote is a kind of its own
        let mut continued = on_cpu(Some(INTEL));
        continued[0].earlier_machines = vec!["cpu AuthenticAMD".into()];
        let (machines, md, _) = said(&continued);
        assert_eq!(
            machines[0],
            ("cpu AuthenticAMD, then cpu GenuineIntel".to_string(), 1)
        );
        assert!(md.contains("by rounding"), "{md}");
        // … and one a CPU finished among GPU runs is another draw
        assert!(super::summary::machines_consequence(&[
            "cuda NVIDIA H200, sm_90, TF32",
            "cuda NVIDIA H200, sm_90, TF32, then cpu GenuineIntel"
        ])
        .starts_with("CPU and GPU runs draw"));
    }

    #[test]
    fn a_method_against_logit_kd_has_the_test_sets_noise_as_its_floor() {
        // the T=2 cell as imitation KD: 1, 0.5, 1.5 points above logit KD's cell (std 0.5)
        let mut recs = records();
        for r in (recs.iter_mut()).filter(|r| r.temperature.as_deref() == Some("2")) {
            r.method = crate::distill::Method::Imitation;
            r.temperature = None;
        }
        let refs: Vec<&RunRecord> = recs.iter().collect();
        let vs = |s: &Summary| {
            let m = s.methods.iter().find(|m| m.method.name() == "imitation");
            m.unwrap().vs_logit.unwrap().half_width().unwrap()
        };
        // without the test set's size: the seeds' spread, 4.303·0.5/√3
        assert!((vs(&summarize(&refs, None)) - 1.2422).abs() < 1e-3);
        // on 500 test images each difference is measured to ±2.5 points: the interval says so
        let s = summarize(&refs, Some(500));
        let pairs: Vec<(f64, f64)> = (0..3)
            .map(|seed| {
                let acc = |m: &str| {
                    let r = recs.iter().find(|r| {
                        r.seed == seed && r.role == Role::Student && r.method.name() == m
                    });
                    r.unwrap().test_acc.unwrap()
                };
                (acc("imitation"), acc("logit"))
            })
            .collect();
        let floor = pairs
            .iter()
            .map(|&(a, b)| stats::measurement_sd(a, b, 500))
            .sum::<f64>()
            / 3.0;
        assert!(floor > 2.0, "{floor}");
        assert!(
            (vs(&s) - t_975(2) * floor / 3f64.sqrt()).abs() < 1e-9,
            "{}",
            vs(&s)
        );
        // and the same in the part of a summary about one model
        assert_eq!(vs(&s.for_model(&s.cells[0].student_model)), vs(&s));
    }

    #[test]
    fn each_student_model_s_baselines_agree_with_the_teacher_on_their_own() {
        // the same records twice, once as resnet8 students (agreeing 60 %), once as resnet20 (90 %)
        let mut recs = Vec::new();
        for (model, agreement) in [("resnet8", 60.0), ("resnet20", 90.0)] {
            for mut r in records() {
                if r.role != Role::Teacher {
                    r.model = Some(crate::model::Arch::parse(model).unwrap());
                    r.agreement = Some(agreement + r.seed as f64);
                }
                if r.role != Role::Teacher || model == "resnet8" {
                    recs.push(r);
                }
            }
        }
        let refs: Vec<&RunRecord> = recs.iter().collect();
        let s = summarize(&refs, None);
        let means: Vec<(&str, f64)> = (s.baseline_agreements.iter())
            .map(|(m, a)| (m.as_str(), a.mean))
            .collect();
        assert_eq!(means, [("resnet8", 61.0), ("resnet20", 91.0)]);
        // not pooled (76 %) into one line on the chart or one number in the text
        assert_eq!(s.baseline_agreement, None);
        let said = s.baseline_agreement_said().unwrap();
        assert!(
            said.contains("61.00 ± 1.00 % (resnet8), 91.00 ± 1.00 % (resnet20)"),
            "{said}"
        );
        let part = s.for_model("resnet20");
        assert_eq!(part.baseline_agreement.map(|a| a.mean), Some(91.0));
        let said = part.baseline_agreement_said().unwrap();
        assert!(
            said.starts_with("The baseline student (no teacher) agrees") && said.contains("91.00"),
            "{said}"
        );
        assert!(markdown(&Meta::default(), &s).contains("(resnet20) of the test images"));
        // mid-run, resnet20's baselines not yet done: resnet8's figure is still named as its own
        let some: Vec<&RunRecord> = (recs.iter())
            .filter(|r| {
                !(r.role == Role::Baseline && r.model.is_some_and(|m| m.name() == "resnet20"))
            })
            .collect();
        let s = summarize(&some, None);
        assert_eq!(s.baseline_agreement, None);
        let said = s.baseline_agreement_said().unwrap();
        assert!(
            said.ends_with("61.00 ± 1.00 % (resnet8) of the test images."),
            "{said}"
        );
    }

    #[test]
    fn a_cell_with_fewer_seeds_is_explained_by_what_left_them_out() {
        let recs: Vec<RunRecord> = (records().into_iter())
            .filter(|r| !(r.seed == 2 && r.temperature.as_deref() == Some("2")))
            .collect();
        let refs: Vec<&RunRecord> = recs.iter().collect();
        let s = summarize(&refs, None);
        let md = |adaptive: bool| {
            let meta = Meta {
                adaptive,
                ..Default::default()
            };
            markdown(&meta, &s)
        };
        assert!(
            md(false).contains("— its other seeds have not finished —"),
            "{}",
            md(false)
        );
        assert!(md(true).contains("— one the search did not carry to every seed —"));
    }

    #[test]
    fn one_seed_gives_no_interval() {
        let recs: Vec<RunRecord> = records().into_iter().filter(|r| r.seed == 0).collect();
        let refs: Vec<&RunRecord> = recs.iter().collect();
        let s = summarize(&refs, None);
        assert!(s.verdict.contains("one seed"), "{}", s.verdict);
        let md = markdown(&Meta::default(), &s);
        assert!(md.contains("| n/a |"), "{md}");
    }
}
