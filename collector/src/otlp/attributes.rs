//! A record's or resource's attribute list, from which known keys are taken one by one; what
//! is left is kept as plain JSON.

use std::borrow::Cow;

use serde_json::{Map, Value as Json};

use super::wire::{AnyValue, KeyValue, Obj, Text};

/// Attributes in request order, their keys and strings borrowed from the request body. A taken
/// attribute leaves `None` behind, so taking one moves no other.
pub(crate) struct Attributes<'a>(Vec<Option<(Cow<'a, str>, AnyValue<'a>)>>);

impl<'a> Attributes<'a> {
    pub(crate) fn new(list: Vec<Obj<KeyValue<'a>>>) -> Self {
        Attributes(
            list.into_iter()
                .map(|Obj(kv)| Some((kv.key.0, kv.value.unwrap_or_default().0)))
                .collect(),
        )
    }

    /// The first attribute `key` still held.
    fn find(&mut self, key: &str) -> Option<&mut Option<(Cow<'a, str>, AnyValue<'a>)>> {
        self.0.iter_mut().find(|slot| slot.as_ref().is_some_and(|(k, _)| k == key))
    }

    /// Removes and returns the first attribute `key` if `pick` accepts its value.
    fn take<T>(&mut self, key: &str, pick: impl Fn(&mut AnyValue<'a>) -> Option<T>) -> Option<T> {
        let slot = self.find(key)?;
        let value = pick(&mut slot.as_mut()?.1)?;
        *slot = None;
        Some(value)
    }

    /// A stringValue, moved out rather than copied.
    pub(crate) fn take_str(&mut self, key: &str) -> Option<Cow<'a, str>> {
        self.take(key, |v| v.string_value.take().map(|Text(s)| s))
    }

    pub(crate) fn take_bool(&mut self, key: &str) -> Option<bool> {
        self.take(key, |v| v.bool_value)
    }

    pub(crate) fn take_int(&mut self, key: &str) -> Option<i64> {
        self.take(key, |v| v.int_value.map(|i| i.0))
    }

    /// An intValue or a doubleValue, as f64.
    pub(crate) fn take_number(&mut self, key: &str) -> Option<f64> {
        // An i64 latency in microseconds is far below 2^53, so the conversion is exact.
        #[allow(clippy::cast_precision_loss)]
        self.take(key, |v| v.double_value.map(|d| d.0).or(v.int_value.map(|i| i.0 as f64)))
    }

    pub(crate) fn take_double_array(&mut self, key: &str) -> Option<Vec<f64>> {
        self.take(key, |v| v.doubles())
    }

    /// Removes and returns the first attribute `key` whatever its value, for attributes whose
    /// wrong type is an error rather than a leftover.
    pub(crate) fn take_any(&mut self, key: &str) -> Option<AnyValue<'a>> {
        self.find(key)?.take().map(|(_, value)| value)
    }

    /// What is left, as a JSON object (a repeated key keeps its last value).
    pub(crate) fn into_json(self) -> Map<String, Json> {
        // Usually every attribute was taken: then there is nothing to move out of the slots.
        if self.0.iter().all(Option::is_none) {
            return Map::new();
        }
        self.0.into_iter().flatten().map(|(k, v)| (k.into_owned(), v.into_json())).collect()
    }
}
