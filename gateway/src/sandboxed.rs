//! `--sandbox`: the app scores through a [`Sandbox`] holding the verified model instead of the
//! native engine. The model state (version, threshold, the rollback watch) stays the app's; a
//! call the sandbox stops (out of fuel or memory, a trap) records its readings raw under the
//! sandbox's code, and the gateway keeps running.

use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;

use edge_anomaly::app::{ScoreError, Scorer};
use edge_anomaly::update::{ModelFiles, ModelMetadata};
use tracing::info;

use crate::config::Config;
use crate::sandbox::{Sandbox, SandboxLimits};
use crate::GatewayApp;

/// Why the sandbox could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SandboxSetupError {
    /// The module file cannot be read.
    #[error("sandbox module {path}: {source} (build it with gateway/build-sandbox.sh)")]
    Module {
        /// Where it was looked for.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The verified package does not name a model file the sandbox can load.
    #[error("sandbox: {0}")]
    Package(String),
    /// The sandbox refused the module or the model.
    #[error("sandbox: {0}")]
    Sandbox(String),
}

/// The sandbox as the app's scorer.
struct SandboxScorer {
    sandbox: RefCell<Sandbox>,
}

impl Scorer for SandboxScorer {
    fn features(&self) -> Option<usize> {
        Some(self.sandbox.borrow().features())
    }

    fn max_rows(&self) -> usize {
        self.sandbox.borrow().max_rows().max(1)
    }

    fn score(&self, rows: &[f32]) -> Result<Vec<f32>, ScoreError> {
        self.sandbox
            .borrow_mut()
            .score(rows)
            .map_err(|e| ScoreError { code: e.code(), message: e.to_string() })
    }
}

/// Loads the package's model into a sandbox and makes the app score through it.
pub fn install(
    app: &GatewayApp,
    config: &Config,
    files: &ModelFiles,
) -> Result<(), SandboxSetupError> {
    let path = config.sandbox_module.clone().unwrap_or_else(Sandbox::default_module_path);
    let module = std::fs::read(&path)
        .map_err(|source| SandboxSetupError::Module { path: path.clone(), source })?;
    let metadata = files
        .get("metadata.json")
        .ok_or_else(|| SandboxSetupError::Package("no metadata.json".into()))
        .and_then(|m| {
            ModelMetadata::parse(m).map_err(|e| SandboxSetupError::Package(e.to_string()))
        })?;
    let (name, _) = metadata.runnable().map_err(|e| SandboxSetupError::Package(e.to_string()))?;
    let model = files
        .get(name)
        .ok_or_else(|| SandboxSetupError::Package(format!("no {name} in the package")))?;
    let mut limits = SandboxLimits::default();
    if let Some(fuel) = config.sandbox_fuel {
        limits.fuel_per_call = fuel;
    }
    if let Some(mib) = config.sandbox_memory_mib {
        limits.memory_bytes = (mib as usize).saturating_mul(1024 * 1024);
    }
    let sandbox = Sandbox::new(&module, model, limits)
        .map_err(|e| SandboxSetupError::Sandbox(format!("{} ({})", e, e.code())))?;
    info!(
        module = %path.display(),
        model = name,
        fuel_per_call = limits.fuel_per_call,
        memory_bytes = limits.memory_bytes,
        "scoring in the sandbox"
    );
    app.set_scorer(Some((Rc::new(SandboxScorer { sandbox: RefCell::new(sandbox) }), "sandbox")));
    Ok(())
}
