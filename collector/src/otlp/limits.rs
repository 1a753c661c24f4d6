//! Size limits on one request's content, checked after parsing and before anything is copied
//! or stored.
//!
//! The body size is capped earlier (`--max-body-bytes`); these caps bound what a body of that
//! size can make the collector build and store: a few MiB of JSON can otherwise describe
//! thousands of attributes per resource or nest values hundreds deep. A request over any limit
//! is refused whole (413), nothing stored.

use std::fmt::Display;

use super::wire::{AnyValue, KeyValue, Obj};

/// Most entries in a record's contributions (`edge.contributions.*`). Unlike the [`Limits`],
/// going over it refuses that record alone (see [`super::contributions`]): a device sends about
/// three, and a model has few enough sensors that sixteen names every one worth showing.
pub const MAX_CONTRIBUTIONS: usize = 16;

/// Longest channel name in a record's contributions, in bytes (the same rule as
/// [`MAX_CONTRIBUTIONS`]): a sensor name from the model's metadata, not free text.
pub const MAX_CHANNEL_BYTES: usize = 128;

/// The limits (defaults: [`Limits::default`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Log records per request (the device sends 100 per batch).
    pub max_records: usize,
    /// Attributes on one resource or one log record.
    pub max_attributes: usize,
    /// Bytes of one string, bytes value or attribute key.
    pub max_value_bytes: usize,
    /// Elements of one array or key-value list.
    pub max_list_len: usize,
    /// Nesting depth of array and key-value list values (a plain value is depth 0).
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_records: 5_000,
            max_attributes: 128,
            max_value_bytes: 16 * 1024,
            max_list_len: 4_096,
            max_depth: 8,
        }
    }
}

impl Limits {
    /// Checks an attribute list (a resource's or a record's) at `location`.
    pub(crate) fn check_attributes(
        &self,
        attributes: &[Obj<KeyValue>],
        location: &dyn Display,
    ) -> Result<(), String> {
        if attributes.len() > self.max_attributes {
            return Err(format!(
                "{location}: {} attributes, the limit is {}",
                attributes.len(),
                self.max_attributes
            ));
        }
        attributes.iter().try_for_each(|Obj(kv)| self.check_key_value(kv, location, 0))
    }

    /// Checks a log record body.
    pub(crate) fn check_value(
        &self,
        value: &AnyValue,
        location: &dyn Display,
    ) -> Result<(), String> {
        self.check_any(value, location, 0)
    }

    fn check_key_value(
        &self,
        kv: &KeyValue,
        location: &dyn Display,
        depth: usize,
    ) -> Result<(), String> {
        if kv.key.len() > self.max_value_bytes {
            return Err(format!(
                "{location}: an attribute key of {} bytes, the limit is {}",
                kv.key.len(),
                self.max_value_bytes
            ));
        }
        match &kv.value {
            Some(Obj(value)) => self.check_any(value, location, depth),
            None => Ok(()),
        }
    }

    fn check_any(
        &self,
        value: &AnyValue,
        location: &dyn Display,
        depth: usize,
    ) -> Result<(), String> {
        let text = value.string_value.as_ref().or(value.bytes_value.as_ref());
        if let Some(text) = text.filter(|t| t.len() > self.max_value_bytes) {
            return Err(format!(
                "{location}: a value of {} bytes, the limit is {}",
                text.len(),
                self.max_value_bytes
            ));
        }
        let nested = value.array_value.is_some() || value.kvlist_value.is_some();
        if nested && depth >= self.max_depth {
            return Err(format!("{location}: values nested deeper than {}", self.max_depth));
        }
        if let Some(Obj(array)) = &value.array_value {
            self.check_len(array.values.len(), location)?;
            for Obj(element) in &array.values {
                self.check_any(element, location, depth + 1)?;
            }
        }
        if let Some(Obj(list)) = &value.kvlist_value {
            self.check_len(list.values.len(), location)?;
            for Obj(kv) in &list.values {
                self.check_key_value(kv, location, depth + 1)?;
            }
        }
        Ok(())
    }

    fn check_len(&self, len: usize, location: &dyn Display) -> Result<(), String> {
        if len > self.max_list_len {
            return Err(format!(
                "{location}: a list of {len} elements, the limit is {}",
                self.max_list_len
            ));
        }
        Ok(())
    }
}
