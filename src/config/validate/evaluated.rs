//! A teacher used as it is (`[teacher] epochs = 0`): a kd-sweep network with `weights = "<file>"` (a
//! state dict saved by `torch.save`, or a safetensors file, checked against the network and the
//! dataset here, before anything is written), or a TorchScript file with its own weights
//! (`init = "as-saved"`). It is evaluated, never trained, so the keys only training reads are refused.

use super::{ModelCheck, Validator};
use crate::config::raw::RawPhase;
use crate::config::ConfigError;
use crate::model::weights::Weights;
use crate::model::Arch;
use std::path::Path;

/// Whether the role's model is a TorchScript file (as written).
fn scripted(raw: &RawPhase) -> bool {
    raw.model
        .as_ref()
        .is_some_and(|m| m.get_ref().starts_with(crate::model::script::PREFIX))
}

impl Validator<'_> {
    /// A role's `epochs`: passes over the training set (≥ 1), or 0 for a teacher used as it is.
    pub(super) fn epochs(&self, role: &str, raw: &RawPhase) -> Result<u32, ConfigError> {
        let zero = *raw.epochs.get_ref() == 0 && role == "teacher";
        if zero && (raw.weights.is_some() || scripted(raw)) {
            return Ok(0);
        }
        let key = format!("{role}.epochs");
        self.positive(&raw.epochs, &key, "passes over the training set")
            .map_err(|mut e| {
                if zero {
                    e.message.push_str(
                        "; or 0 to use a trained teacher as it is: add weights = \"<file>\" (a \
                         state dict saved by torch.save, or a .safetensors file), or name a \
                         TorchScript file (model = \"torchscript:<file>\", init = \"as-saved\")",
                    );
                }
                e
            })
    }

    /// `weights` (`None` when absent): a trained network's file for a teacher used as it is, read
    /// and checked against its network `arch` and the dataset (`check`) when both are known.
    pub(super) fn weights_file(
        &self,
        role: &str,
        raw: &RawPhase,
        arch: Option<Arch>,
        check: Option<&ModelCheck>,
    ) -> Result<Option<Weights>, ConfigError> {
        let Some(w) = &raw.weights else {
            return Ok(None);
        };
        let key = format!("{role}.weights");
        let fail = |why: &str| Err(self.at(w, &key, why));
        if role != "teacher" {
            return fail(
                "is [teacher]'s key (a trained teacher used as it is, with epochs = 0); students \
                 train from their initialisation",
            );
        }
        if scripted(raw) {
            return fail(
                if raw.init.as_ref().map(|i| i.get_ref().as_str()) == Some("as-saved") {
                    "is for kd-sweep's own networks; a TorchScript file holds its weights, which \
                     init = \"as-saved\" uses: remove weights"
                } else {
                    "is for kd-sweep's own networks; a TorchScript file holds its weights: remove \
                     weights and set init = \"as-saved\""
                },
            );
        }
        if *raw.epochs.get_ref() != 0 {
            return fail(
                "uses a trained teacher as it is, which needs epochs = 0 (training further from \
                 these weights is not offered)",
            );
        }
        let base = self.file.parent().unwrap_or(Path::new(""));
        let weights = Weights::open(w.get_ref(), base).map_err(|why| self.at(w, &key, &why))?;
        if let (Some(arch), Some(c)) = (arch, check) {
            weights
                .check(arch, c.shape, c.classes)
                .map_err(|why| self.at(w, &key, &why))?;
        }
        Ok(Some(weights))
    }

    /// With `epochs = 0` nothing trains: each key only training reads is refused (every problem
    /// kept), and a TorchScript teacher keeps its file's weights. `None` when one is wrong.
    pub(super) fn untrained(&self, role: &str, raw: &RawPhase) -> Option<()> {
        let training = [
            ("optimizer", raw.optimizer.as_ref().map(|v| v.span())),
            ("momentum", raw.momentum.as_ref().map(|v| v.span())),
            ("nesterov", raw.nesterov.as_ref().map(|v| v.span())),
            ("weight_decay", raw.weight_decay.as_ref().map(|v| v.span())),
            ("schedule", raw.schedule.as_ref().map(|v| v.span())),
            ("milestones", raw.milestones.as_ref().map(|v| v.span())),
            ("gamma", raw.gamma.as_ref().map(|v| v.span())),
            (
                "warmup_epochs",
                raw.warmup_epochs.as_ref().map(|v| v.span()),
            ),
            ("augment", raw.augment.as_ref().map(|v| v.span())),
            ("precision", raw.precision.as_ref().map(|v| v.span())),
            (
                "label_smoothing",
                raw.label_smoothing.as_ref().map(|v| v.span()),
            ),
        ];
        let mut ok = Some(());
        let mut refuse = |span, name: &str, why: &str| {
            let key = format!("{role}.{name}");
            ok = self
                .keep::<()>(Err(self.err(span, Some(&key), why)))
                .and(ok);
        };
        for (name, span) in training {
            if let Some(span) = span {
                refuse(
                    Some(span),
                    name,
                    "shapes training, and epochs = 0 trains nothing (the teacher is evaluated as \
                     loaded); remove it",
                );
            }
        }
        if let Some(c) = &raw.channels_last {
            refuse(
                Some(c.span()),
                "channels_last",
                "is not offered for a teacher used as it is (epochs = 0): its logits and feature \
                 maps are computed in the default layout; remove it",
            );
        }
        let as_saved = raw.init.as_ref().map(|i| i.get_ref().as_str()) == Some("as-saved");
        match (&raw.init, raw.weights.is_some(), scripted(raw)) {
            // a TorchScript file's `weights` has its own error, which says what init must be
            (Some(i), true, false) => refuse(
                Some(i.span()),
                "init",
                "has no effect: the weights are the file's; remove it",
            ),
            (_, _, true) if !as_saved => refuse(
                raw.init
                    .as_ref()
                    .map_or(raw.epochs.span(), |i| i.span())
                    .into(),
                if raw.init.is_some() { "init" } else { "epochs" },
                "epochs = 0 uses a TorchScript file's own weights as they are: set init = \
                 \"as-saved\"",
            ),
            _ => {}
        }
        ok
    }
}

#[cfg(test)]
mod tests;
