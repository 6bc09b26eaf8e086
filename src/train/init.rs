//! Building a run's network from its seed and stream, and copies of its weights.

use super::settings::{seed_torch, RunSettings};
use super::TrainError;
use crate::data::Dataset;
use crate::model::{Arch, Net};
use tch::{nn, Device, Tensor};

/// Like [`init`], but first builds `extra` parameters (such as a regressor) in the same var store from
/// a stream of their own, so the model's weights and later random draws match [`init`]'s exactly.
pub fn init_with<T>(
    arch: Arch,
    data: &Dataset,
    device: Device,
    s: &RunSettings,
    extra: impl FnOnce(&nn::Path) -> T,
) -> (nn::VarStore, Net, T) {
    try_init_with(arch, data, device, s, None, extra).unwrap_or_else(|e| panic!("{e}"))
}

/// [`init_with`] for any network: a TorchScript one may fail to load, and starts from `saved` (a
/// checkpoint's [`crate::model::script::state`]) when given.
pub fn try_init_with<T>(
    arch: Arch,
    data: &Dataset,
    device: Device,
    s: &RunSettings,
    saved: Option<&Tensor>,
    extra: impl FnOnce(&nn::Path) -> T,
) -> Result<(nn::VarStore, Net, T), String> {
    let vs = nn::VarStore::new(device);
    seed_torch(s.seed, &format!("{}-extra", s.stream));
    let x = extra(&vs.root());
    seed_torch(s.seed, s.stream);
    let net = Net::try_new(&vs.root(), arch, data.shape, data.classes, s.init, saved)?;
    net.set_channels_last(s.channels_last);
    tch::manual_seed(s.dropout_seed());
    Ok((vs, net, x))
}

/// Builds a freshly initialised model: the same seed and stream give the same weights. Leaves
/// libtorch's generator seeded with [`RunSettings::dropout_seed`].
pub fn init(arch: Arch, data: &Dataset, device: Device, s: &RunSettings) -> (nn::VarStore, Net) {
    try_init(arch, data, device, s, None).unwrap_or_else(|e| panic!("{e}"))
}

/// [`init`] for any network: a TorchScript one may fail to load, and starts from `saved` (a
/// checkpoint's [`crate::model::script::state`]) when given.
pub fn try_init(
    arch: Arch,
    data: &Dataset,
    device: Device,
    s: &RunSettings,
    saved: Option<&Tensor>,
) -> Result<(nn::VarStore, Net), String> {
    seed_torch(s.seed, s.stream);
    let vs = nn::VarStore::new(device);
    let net = Net::try_new(&vs.root(), arch, data.shape, data.classes, s.init, saved)?;
    net.set_channels_last(s.channels_last);
    tch::manual_seed(s.dropout_seed());
    Ok((vs, net))
}

/// Copies of every variable of `vs` (a snapshot of the weights, kept on their device).
pub fn snapshot(vs: &nn::VarStore) -> Vec<(String, Tensor)> {
    let _guard = tch::no_grad_guard();
    let mut vars: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .map(|(n, t)| (n, t.detach().copy()))
        .collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    vars
}

/// [`snapshot`] of a network's whole state: for a TorchScript network also its module (buffers
/// included) as the tensor [`crate::model::script::STATE`].
pub fn snapshot_of(vs: &nn::VarStore, net: &Net) -> Result<Vec<(String, Tensor)>, TrainError> {
    let mut vars = snapshot(vs);
    if let Some(state) = net.script_state() {
        vars.push((
            crate::model::script::STATE.to_string(),
            state.map_err(TrainError::Script)?,
        ));
    }
    Ok(vars)
}

/// Writes a snapshot back into `vs` (entries that are not variables of `vs` are skipped).
pub fn restore(vs: &nn::VarStore, snap: &[(String, Tensor)]) {
    let _guard = tch::no_grad_guard();
    let vars = vs.variables();
    for (name, t) in snap {
        if let Some(v) = vars.get(name) {
            v.shallow_clone().copy_(t);
        }
    }
}
