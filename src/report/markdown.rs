//! `summary.md`: the tables, the chosen setting and the verdict (also printed at the end of a run).

use super::{Gain, Meta, SearchSpent, Summary};
use crate::distill::Method;

fn gain_cells(g: &Option<Gain>) -> (String, String) {
    match g {
        None => ("".into(), "".into()),
        Some(g) => (
            format!("{:+.2}", g.mean),
            g.ci95
                .map_or("n/a".into(), |(lo, hi)| format!("[{lo:+.2}, {hi:+.2}]")),
        ),
    }
}

/// The table of every cell: its method, T and α, its other hyper-parameters (when the sweep has
/// any), accuracies, gain over the baseline with its interval, agreement with the teacher, seeds.
fn cell_table(s: &Summary, several: bool) -> String {
    let (student_head, student_rule) = if several {
        ("student | ", "---|")
    } else {
        ("", "")
    };
    let extra = s.cells.iter().any(|c| !c.coord.extra_text().is_empty());
    let (extra_head, extra_rule) = if extra {
        ("other | ", "---|")
    } else {
        ("", "")
    };
    let mut o = format!(
        "\n| {student_head}method | T | α | {extra_head}test accuracy | validation accuracy | KD gain (points) | 95 % CI of the gain | agreement with the teacher (%) | KL to the teacher | seeds |\n|{student_rule}---|---:|---:|{extra_rule}---:|---:|---:|---:|---:|---:|---:|\n"
    );
    for (i, c) in s.cells.iter().enumerate() {
        let (g, ci) = gain_cells(&c.gain);
        let mark = if Some(i) == s.chosen {
            " ◀ chosen"
        } else {
            ""
        };
        let dash = |v: &str| {
            if v.is_empty() {
                "–".to_string()
            } else {
                v.to_string()
            }
        };
        let student = if several {
            format!("{} | ", c.student_model)
        } else {
            String::new()
        };
        let other = if extra {
            format!("{} | ", dash(&c.coord.extra_text()))
        } else {
            String::new()
        };
        o.push_str(&format!(
            "| {student}{} | {} | {} | {other}{} | {} | {g} | {ci} | {} | {} | {}{mark} |\n",
            c.method.name(),
            dash(&c.temperature),
            dash(&c.alpha),
            c.test.show(),
            c.val.show(),
            c.agreement.map_or("–".into(), |a| a.show()),
            c.kl.map_or("–".into(), |k| format!("{:.4}", k.mean)),
            c.test.n
        ));
    }
    if let Some(said) = s.baseline_agreement_said() {
        o.push_str(&format!("\n{said}\n"));
    }
    o
}

/// Each method's best cell by validation, its gain over the baseline, and how it compares with
/// logit KD's best cell, paired over the seeds both have.
fn methods_table(s: &Summary) -> String {
    let mut o = String::from("\nThe best of each family, chosen by validation accuracy (the last columns: its test accuracy minus plain logit KD's best cell's, paired over seeds):\n\n| method | setting | validation accuracy | test accuracy | KD gain (points) | 95 % CI of the gain | vs logit KD's best (points) | 95 % CI |\n|---|---|---:|---:|---:|---:|---:|---:|\n");
    for b in &s.methods {
        let c = &s.cells[b.cell];
        let (g, ci) = gain_cells(&c.gain);
        let plain_logit = b.method == Method::Logit && !c.coord.zscore;
        let (vg, vci) = match (plain_logit, &b.vs_logit) {
            (true, _) => ("–".into(), "–".into()),
            (_, v) => gain_cells(v),
        };
        o.push_str(&format!(
            "| {} | {} | {:.2} | {} | {g} | {ci} | {vg} | {vci} |\n",
            b.family,
            c.label(),
            c.val.mean,
            c.test.show()
        ));
    }
    o
}

/// The table of the teacher and baselines, then the cells'.
fn finished_tables(s: &Summary, several: bool) -> String {
    let mut o = String::from("| model | test accuracy | seeds |\n|---|---:|---:|\n");
    let mut rows = vec![("teacher".to_string(), s.teacher)];
    if several {
        for (m, st) in &s.baselines {
            rows.push((format!("baseline student {m} (no distillation)"), Some(*st)));
        }
    } else {
        rows.push(("baseline student (no distillation)".into(), s.baseline));
    }
    for (name, st) in rows {
        if let Some(st) = st {
            o.push_str(&format!("| {name} | {} | {} |\n", st.show(), st.n));
        }
    }
    o.push_str(&cell_table(s, several));
    o
}

/// `summary.md`: the tables and the verdict (also printed at the end of a run).
pub fn markdown(meta: &Meta, s: &Summary) -> String {
    let mut o = String::new();
    o.push_str(&format!("# {} — distillation sweep summary\n\n", meta.name));
    o.push_str(&format!("{}\n\n", meta.context_line()));
    if let Some(u) = s.unfinished {
        o.push_str(&format!("**Not finished:** {}.\n\n", u.sentence()));
    }
    if let Some(w) = s.machines_warning() {
        o.push_str(&format!("**Machines:** {w}.\n\n"));
    }
    let several = s.baselines.len() > 1 || s.student_models().len() > 1;
    let none = s.teacher.is_none() && s.baseline.is_none() && s.baselines.is_empty();
    if none && s.cells.is_empty() {
        // no table of nothing: said once (with where runs in flight are seen, while there are)
        o.push_str(match s.unfinished {
            Some(_) => {
                "No run has a result yet: the tables fill in as runs finish (`kd-sweep status` \
                 shows what is in flight).\n"
            }
            None => "No run finished with a result.\n",
        });
    } else {
        o.push_str(&finished_tables(s, several));
    }
    let base_seeds = s.baseline.map_or(0, |b| b.n);
    if s.cells.iter().any(|c| c.test.n < base_seeds) {
        o.push_str(&format!(
            "\nEach cell's KD gain is paired over its own seeds (a cell with fewer finished seeds \
             — {why} — is compared with the baseline on those seeds only); the baseline row above is \
             the mean over all {base_seeds} of its seeds.\n",
            why = match (meta.adaptive, s.failed > 0) {
                (true, _) => "one the search did not carry to every seed",
                (false, true) => "its other seeds failed or have not finished",
                (false, false) => "its other seeds have not finished",
            }
        ));
    }
    if s.methods.len() > 1 {
        o.push_str(&methods_table(s));
    }
    if !s.snapshots.is_empty() {
        o.push_str(&snapshots_table(s));
    }
    if several {
        o.push_str("\nThe best cell of each student model, chosen by validation accuracy (the capacity-gap picture: does a smaller student gain more or less?):\n\n| student | setting | validation accuracy | test accuracy | baseline | KD gain (points) | 95 % CI of the gain |\n|---|---|---:|---:|---:|---:|---:|\n");
        for m in s.student_models() {
            let part = s.for_model(&m);
            if let Some(c) = part.chosen.map(|i| &part.cells[i]) {
                let (g, ci) = gain_cells(&c.gain);
                o.push_str(&format!(
                    "| {m} | {} | {:.2} | {} | {} | {g} | {ci} |\n",
                    c.setting(),
                    c.val.mean,
                    c.test.show(),
                    part.baseline.map(|b| b.show()).unwrap_or_default()
                ));
            }
        }
    }
    if let Some(c) = s.chosen.map(|i| &s.cells[i]) {
        o.push_str(&format!(
            "\n**Chosen by validation accuracy:** {} — validation {:.2} %, test {} %.\n",
            c.label(),
            c.val.mean,
            c.test.show()
        ));
    }
    let so_far = if s.unfinished.is_some() {
        " (so far)"
    } else {
        ""
    };
    o.push_str(&format!("\n**Verdict{so_far}:** {}.\n", s.verdict));
    if let Some(w) = s.weak_teacher_warning() {
        o.push_str(&format!("\n**Warning:** {w}.\n"));
    }
    if let Some(sp) = &s.search {
        o.push_str(&search_markdown(s, sp));
    }
    if s.failed > 0 {
        o.push_str(&format!(
            "\n{} run(s) failed: see the `status` and `error` columns of runs.csv.\n",
            s.failed
        ));
    }
    o
}

impl SearchSpent {
    /// One sentence: how many cells the search finished and pruned where, and what it spent.
    pub fn sentence(&self, pruned: usize) -> String {
        let at: Vec<String> = self
            .pruned_at
            .iter()
            .map(|(e, n)| format!("{n} after epoch {e}"))
            .collect();
        format!(
            "successive halving trained {} of {} cells to the end and pruned {pruned} ({}); it spent \
             {} student-epochs on seed(s) {} where the full grid takes {} ({:.0} %).",
            self.finished,
            self.cells,
            at.join(", "),
            self.student_epochs,
            crate::plan::search::seed_list(&self.seeds),
            self.grid_epochs,
            100.0 * self.student_epochs as f64 / self.grid_epochs.max(1) as f64
        )
    }
}

/// The search's paragraph of `summary.md`: what it spent, and its pruned cells.
fn search_markdown(s: &Summary, sp: &SearchSpent) -> String {
    let mut o = format!("\n**Search:** {}\n", sp.sentence(s.pruned.len()));
    o.push_str("\nPruned cells (validation accuracy at the epoch they reached; no test accuracy is measured for them):\n\n| method | T | α | epochs | validation accuracy | seeds |\n|---|---:|---:|---:|---:|---:|\n");
    for p in &s.pruned {
        let t = if p.method.uses_temperature() {
            p.temperature.as_str()
        } else {
            "–"
        };
        o.push_str(&format!(
            "| {} | {t} | {} | {} | {} | {} |\n",
            p.method.name(),
            p.alpha,
            p.epoch,
            p.val.show(),
            p.val.n
        ));
    }
    o
}

/// `[grid] teacher_epoch`: per snapshot, the teachers' accuracy after that epoch and the best cell
/// distilled from it.
fn snapshots_table(s: &Summary) -> String {
    let mut o = String::from(
        "\nDistilling from the teacher's epochs: each snapshot's own accuracy and the best cell distilled from it, chosen by validation accuracy:\n\n\
         | teacher's epoch | teacher validation | teacher test | best setting | student validation | student test | KD gain (points) | 95 % CI of the gain |\n\
         |---:|---:|---:|---|---:|---:|---:|---:|\n",
    );
    for r in &s.snapshots {
        let stat = |x: &Option<crate::report::Stat>| x.map(|x| x.show()).unwrap_or_default();
        let (setting, val, test, g, ci) = match r.best.map(|i| &s.cells[i]) {
            Some(c) => {
                let (g, ci) = gain_cells(&c.gain);
                (
                    c.label(),
                    format!("{:.2}", c.val.mean),
                    c.test.show(),
                    g,
                    ci,
                )
            }
            None => Default::default(),
        };
        o.push_str(&format!(
            "| {} | {} | {} | {setting} | {val} | {test} | {g} | {ci} |\n",
            r.epoch,
            stat(&r.teacher_val),
            stat(&r.teacher_test),
        ));
    }
    o
}

#[cfg(test)]
mod tests {
    use crate::record::Role;
    use crate::report::{summarize, tests::records, Meta};

    #[test]
    fn a_teacher_used_as_loaded_is_said_to_be_so_not_to_have_zero_epochs() {
        let meta = |teacher_epochs| Meta {
            teacher_epochs,
            student_epochs: 2,
            ..Default::default()
        };
        assert!(meta(3).context_line().contains("· teacher 3 epochs ·"));
        let loaded = meta(0).context_line();
        assert!(
            loaded.contains("· teacher used as loaded (trained elsewhere) ·"),
            "{loaded}"
        );
        assert!(!loaded.contains("0 epochs"), "{loaded}");
    }

    #[test]
    fn a_sweep_without_a_result_says_so_instead_of_empty_tables() {
        let meta = Meta::default();
        let md = super::markdown(&meta, &summarize(&[], None));
        assert!(md.contains("No run finished with a result."), "{md}");
        let mut in_flight = summarize(&[], None);
        in_flight.unfinished = Some(crate::report::load::Unfinished {
            finished: 0,
            planned: 3,
        });
        let md = super::markdown(&meta, &in_flight);
        assert!(md.contains("No run has a result yet"), "{md}");
        assert!(!md.contains("| model |") && !md.contains("|---"), "{md}");
        let all = records();
        let refs: Vec<_> = all.iter().collect();
        let md = super::markdown(&meta, &summarize(&refs, None));
        assert!(
            md.contains("| model |") && !md.contains("No run has"),
            "{md}"
        );
    }

    #[test]
    fn a_cell_on_fewer_seeds_than_the_baseline_says_how_it_is_paired() {
        let meta = Meta {
            name: "syn".into(),
            ..Default::default()
        };
        let all = records();
        let refs: Vec<_> = all.iter().collect();
        let md = super::markdown(&meta, &summarize(&refs, None));
        assert!(!md.contains("paired over its own seeds"), "{md}");
        // the T=4 cell loses seed 2 (as a search that did not take it that far)
        let fewer: Vec<_> = (all.iter())
            .filter(|r| {
                !(r.role == Role::Student && r.seed == 2 && r.temperature.as_deref() == Some("4"))
            })
            .collect();
        let md = super::markdown(&meta, &summarize(&fewer, None));
        assert!(
            md.contains("paired over its own seeds")
                && md.contains("the mean over all 3 of its seeds"),
            "{md}"
        );
    }
}
