//! Group commit for scoring requests: requests that arrive while a write is committing are
//! scored and recorded together, in one store transaction, when it is done.
//!
//! A page that sends one reading per message pays one IndexedDB commit per reading (a few
//! milliseconds), which caps it at a few hundred readings a second. [`App::score_grouped`]
//! keeps that cost per *group*: the first request scores and records at once; requests that
//! come in meanwhile queue, and the next write takes all of them. Nothing waits on a timer, a
//! request alone is handled as before, and each request is still answered only after the
//! transaction holding its readings has committed — durability is unchanged.
//!
//! A group holds requests of one reading width whose ids (all given or none) match their
//! readings; anything else goes alone, so its refusal is its own. If a group's write fails,
//! every request in it gets that failure ([`AppError::Grouped`]), its readings counted once.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;

use futures_channel::oneshot;

use super::{App, AppError, ScoreReply, Timer};
use crate::outbox::{Env, OutboxStore, Transport};

/// Most readings one group records.
pub const MAX_GROUP_READINGS: usize = 4096;

/// One request waiting for its reply.
struct Waiting {
    rows: Vec<f32>,
    features: usize,
    ids: Option<Vec<String>>,
    reply: oneshot::Sender<Result<ScoreReply, AppError>>,
}

impl Waiting {
    /// Readings, when the request splits into whole readings and its ids (if any) name each.
    fn readings(&self) -> Option<usize> {
        let f = self.features;
        if f == 0 || self.rows.is_empty() || !self.rows.len().is_multiple_of(f) {
            return None;
        }
        let n = self.rows.len() / f;
        match &self.ids {
            Some(ids) if ids.len() != n => None,
            _ => Some(n),
        }
    }

    /// Whether `other` can share a write with this request.
    fn groups_with(&self, other: &Waiting) -> bool {
        self.features == other.features && self.ids.is_some() == other.ids.is_some()
    }
}

/// The queue of requests and whether one of them is writing.
#[derive(Default)]
pub(super) struct ScoreGroup {
    queue: RefCell<VecDeque<Waiting>>,
    writing: Cell<bool>,
}

impl ScoreGroup {
    /// The next requests to write together: the front one, and those after it that can share
    /// its write, up to [`MAX_GROUP_READINGS`].
    fn next(&self) -> Vec<Waiting> {
        let mut queue = self.queue.borrow_mut();
        let Some(first) = queue.pop_front() else { return Vec::new() };
        let Some(mut total) = first.readings() else { return vec![first] };
        let mut group = vec![first];
        while let Some(next) = queue.front() {
            let fits = next.readings().filter(|n| total + n <= MAX_GROUP_READINGS);
            match fits {
                Some(n) if group[0].groups_with(next) => {
                    total += n;
                    group.extend(queue.pop_front());
                }
                _ => break,
            }
        }
        group
    }
}

impl<S, T, E, C> App<S, T, E, C>
where
    S: OutboxStore + Clone,
    T: Transport + Clone,
    E: Env + Clone,
    C: Timer,
{
    /// [`App::score`], with requests that arrive while a write is committing recorded together
    /// in the next one (see the module docs). Each request gets its own reply.
    pub async fn score_grouped(
        &self,
        rows: Vec<f32>,
        features: usize,
        ids: Option<Vec<String>>,
    ) -> Result<ScoreReply, AppError> {
        let (reply, answer) = oneshot::channel();
        self.group.queue.borrow_mut().push_back(Waiting { rows, features, ids, reply });
        if !self.group.writing.replace(true) {
            loop {
                let group = self.group.next();
                if group.is_empty() {
                    break;
                }
                self.write_group(group).await;
            }
            self.group.writing.set(false);
        }
        answer.await.unwrap_or_else(|_| {
            Err(AppError::Grouped { code: "INTERNAL", message: "the write was abandoned".into() })
        })
    }

    /// Scores and records `group` in one call and answers each request.
    async fn write_group(&self, mut group: Vec<Waiting>) {
        if group.len() == 1 {
            if let Some(w) = group.pop() {
                let _ = w.reply.send(self.score(&w.rows, w.features, w.ids).await);
            }
            return;
        }
        let features = group[0].features;
        let sizes: Vec<usize> = group.iter().map(|w| w.rows.len() / features).collect();
        let rows: Vec<f32> = group.iter().flat_map(|w| w.rows.iter().copied()).collect();
        let ids = group[0].ids.is_some().then(|| {
            group.iter_mut().flat_map(|w| w.ids.take().unwrap_or_default()).collect::<Vec<_>>()
        });
        match self.score(&rows, features, ids).await {
            Ok(reply) => {
                for (w, part) in group.into_iter().zip(reply.split(&sizes)) {
                    let _ = w.reply.send(Ok(part));
                }
            }
            Err(e) => {
                let (code, message) = (e.code(), e.to_string());
                for w in group {
                    let _ = w.reply.send(Err(AppError::Grouped { code, message: message.clone() }));
                }
            }
        }
    }
}
