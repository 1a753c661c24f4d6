//! Making the next batch while the current one is on the wire.
//!
//! A drain is a chain of steps that each wait on something else: reading the front of the
//! queue and encoding it (the store, the CPU), then the request (the network and the collector),
//! then the acknowledgement (the store). [`Syncer::flush`](super::Syncer::flush) runs the
//! request of one batch together with the reading, encoding and compressing of the next
//! ([`both`]), so the collector's time hides the device's. What is made ahead is only read,
//! never stored: it becomes a batch like any other when it is taken as inflight after the
//! current batch is settled (by the acknowledgement's own transaction where the store can), and
//! a store that changed meanwhile refuses it ([`super::StoreError::Conflict`]) and the next
//! batch is made afresh.

use std::future::{poll_fn, Future};
use std::pin::pin;
use std::task::Poll;

use super::store::Batch;
use super::transport::HttpRequest;

/// A batch made from the queue but not taken out of it yet, with its request when built.
#[derive(Debug)]
pub(super) struct Made {
    /// The batch, as [`super::make_batch`] made it.
    pub batch: Batch,
    /// Its request, built (gzipped) ahead of time, or `None` to build it when it is sent.
    pub request: Option<HttpRequest>,
}

/// The next batch, as far as it got while the current one was settled.
#[derive(Debug)]
pub(super) enum Ahead {
    /// Made, not taken out of the queue yet.
    Made(Made),
    /// Taken as inflight by the transaction that acknowledged the previous batch
    /// ([`super::OutboxStore::ack_and_begin`]).
    Taken(Made),
}

/// Runs `a` and `b` together on this thread and gives both outputs: each is polled whenever
/// the task wakes, until both are done.
pub(super) async fn both<A: Future, B: Future>(a: A, b: B) -> (A::Output, B::Output) {
    let (mut a, mut b) = (pin!(a), pin!(b));
    let (mut done_a, mut done_b) = (None, None);
    poll_fn(move |cx| {
        if done_a.is_none() {
            if let Poll::Ready(out) = a.as_mut().poll(cx) {
                done_a = Some(out);
            }
        }
        if done_b.is_none() {
            if let Poll::Ready(out) = b.as_mut().poll(cx) {
                done_b = Some(out);
            }
        }
        match (done_a.take(), done_b.take()) {
            (Some(a), Some(b)) => Poll::Ready((a, b)),
            (a, b) => {
                (done_a, done_b) = (a, b);
                Poll::Pending
            }
        }
    })
    .await
}
