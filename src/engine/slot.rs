//! A place that may or may not hold a model: what the app scores through.
//!
//! The app starts before a model arrives (fetch, cache, update), so scoring must be able to say
//! "no model yet" as a typed error rather than crash. Replacing the model is a single swap: a
//! failed load leaves the previous model in place.

use super::{Engine, EngineConfig, EngineError};

/// Holds the active model, if any.
#[derive(Debug, Default)]
pub struct ModelSlot {
    engine: Option<Engine>,
}

impl ModelSlot {
    /// An empty slot.
    pub fn new() -> Self {
        Self::default()
    }

    /// Loads `bytes` and, only if that succeeds, makes it the active model.
    pub fn load(&mut self, bytes: &[u8], config: EngineConfig) -> Result<&Engine, EngineError> {
        let engine = Engine::load(bytes, config)?;
        Ok(self.engine.insert(engine))
    }

    /// Makes an already loaded (and checked) `engine` the active model, returning the one it
    /// replaces.
    pub fn install(&mut self, engine: Engine) -> Option<Engine> {
        self.engine.replace(engine)
    }

    /// The active model, or [`EngineError::NotLoaded`].
    pub fn engine(&self) -> Result<&Engine, EngineError> {
        self.engine.as_ref().ok_or(EngineError::NotLoaded)
    }

    /// Scores with the active model.
    pub fn score(&self, rows: &[f32]) -> Result<Vec<f32>, EngineError> {
        self.engine()?.score(rows)
    }

    /// Drops the active model.
    pub fn unload(&mut self) {
        self.engine = None;
    }
}
