//! Group commit for `record_webhook`: the queue between the callers and a backend's webhook
//! writer, and how a batch is gathered and answered.
//!
//! Recording a webhook must be durable before the PSP gets its 2xx, and every commit costs
//! a flush to disk (SQLite's `synchronous=FULL`, PostgreSQL's `synchronous_commit=on`): one
//! commit per webhook would cap the gateway at the disk's flush rate. Instead one writer
//! per store owns a dedicated connection and commits the webhooks of many concurrent
//! requests together: it takes the first queued request, drains whatever else is queued
//! (up to [`MAX_BATCH`]), writes them all in one transaction and commits once. Only after
//! that commit does it answer each caller, so a caller that sees `Ok` holds a durable
//! record. How the batch is written is the backend's (`sqlite::writer`: a thread with a
//! rusqlite connection; `postgres::writer`: a task with one statement per table).
//!
//! Architecture invariant: no caller is ever answered `Ok` for a batch that did not commit,
//! and a batch that fails answers every caller in it with an error, so nothing is ever
//! half-recorded from a caller's point of view. (An answer lost because the caller went
//! away is harmless: the PSP resends and the resend is a duplicate.)

use std::fmt::Display;

use psp_core::ports::{NewWebhook, Recorded, StoreError};
use tokio::sync::{mpsc, oneshot};

/// The most webhooks committed in one transaction. Large enough that a burst of thousands
/// of concurrent requests needs only a few flushes, small enough that one transaction holds
/// the write lock (which other gateway writers wait for) only for milliseconds.
pub(crate) const MAX_BATCH: usize = 512;

/// How many requests may wait for the writer before callers wait to enqueue. Two batches:
/// one being written and the next one filling up.
const QUEUE: usize = 2 * MAX_BATCH;

type Reply = oneshot::Sender<Result<Recorded, StoreError>>;

/// A webhook waiting in a batch, with the caller to answer.
pub(crate) type Pending = (NewWebhook, Reply);

/// A message to the writer.
// Nearly every message is a `Record`, so boxing it to shrink the rare `Close` would only
// add an allocation per webhook.
#[allow(clippy::large_enum_variant)]
enum Msg {
    /// Record a webhook and answer on the channel once it is durable (or failed).
    Record(NewWebhook, Reply),
    /// Finish what is queued before this message, close the connection and stop.
    Close(oneshot::Sender<()>),
}

/// The handle through which the store talks to its writer.
pub(crate) struct Writer {
    tx: mpsc::Sender<Msg>,
}

/// The writer's end of the queue.
pub(crate) struct Queue {
    rx: mpsc::Receiver<Msg>,
    closing: Option<oneshot::Sender<()>>,
}

/// Whether the store that owns a writer still exists: its checkpointer (SQLite) runs as
/// long as this says so.
pub(crate) struct Alive(mpsc::WeakSender<Msg>);

impl Alive {
    pub(crate) fn get(&self) -> bool {
        self.0.upgrade().is_some()
    }
}

impl Writer {
    /// A writer handle and the queue its writer drains.
    pub(crate) fn channel() -> (Self, Queue) {
        let (tx, rx) = mpsc::channel(QUEUE);
        (Self { tx }, Queue { rx, closing: None })
    }

    /// Tells whether the store still exists, without keeping it alive.
    pub(crate) fn alive(&self) -> Alive {
        Alive(self.tx.downgrade())
    }

    /// Records one webhook through the writer and waits until it is durable.
    pub(crate) async fn record(&self, webhook: NewWebhook) -> Result<Recorded, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Msg::Record(webhook, reply))
            .await
            .map_err(|_| closed())?;
        // A dropped reply means the writer stopped before it got to this request, so the
        // webhook was not recorded.
        answer.await.map_err(|_| closed())?
    }

    /// Lets the writer finish every request queued so far, then stops it and waits until
    /// its connection is closed. Later `record` calls fail.
    pub(crate) async fn close(&self) {
        let (done, stopped) = oneshot::channel();
        // A send error means the writer has stopped already.
        if self.tx.send(Msg::Close(done)).await.is_ok() {
            let _ = stopped.await;
        }
    }
}

fn closed() -> StoreError {
    StoreError::Backend("the store is closed: the webhook was not recorded".into())
}

impl Queue {
    /// Waits for the next batch (on a thread of its own) and gathers it into `batch`.
    /// `false` once the writer must stop: `close` was called, or the store was dropped.
    pub(crate) fn blocking_next(&mut self, batch: &mut Vec<Pending>) -> bool {
        if self.closing.is_some() {
            return false;
        }
        match self.rx.blocking_recv() {
            Some(first) => self.gather(first, batch),
            None => false,
        }
    }

    /// Waits for the next batch (in a task) and gathers it into `batch`. `false` once the
    /// writer must stop.
    pub(crate) async fn next(&mut self, batch: &mut Vec<Pending>) -> bool {
        if self.closing.is_some() {
            return false;
        }
        match self.rx.recv().await {
            Some(first) => self.gather(first, batch),
            None => false,
        }
    }

    /// Puts `first` and whatever else is queued behind it, up to [`MAX_BATCH`] webhooks,
    /// into `batch`, stopping at a `Close`. Whether there is anything to write: a batch
    /// that ends in `Close` is still written, and the next call then says stop.
    fn gather(&mut self, first: Msg, batch: &mut Vec<Pending>) -> bool {
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            match msg {
                Msg::Record(webhook, reply) => batch.push((webhook, reply)),
                Msg::Close(done) => {
                    self.closing = Some(done);
                    break;
                }
            }
            if batch.len() < MAX_BATCH {
                next = self.rx.try_recv().ok();
            }
        }
        !batch.is_empty()
    }

    /// Ends the queue once the writer stopped writing: requests queued behind `Close` are
    /// dropped (their callers learn that nothing was recorded). The returned `Done` is to
    /// be signalled after the writer's connection is closed.
    pub(crate) fn finish(self) -> Done {
        Done(self.closing)
    }
}

/// Tells `close` that the writer has stopped and its connection is closed.
pub(crate) struct Done(Option<oneshot::Sender<()>>);

impl Done {
    pub(crate) fn signal(self) {
        if let Some(done) = self.0 {
            let _ = done.send(());
        }
    }
}

/// Answers every caller of a written batch: each with its outcome after a commit, or all
/// with the error when the batch failed (its transaction rolled back, nothing in it was
/// recorded). Returns whether it committed; a writer starts the next batch on a fresh
/// connection when it did not, since the connection may be what failed.
pub(crate) fn answer<E: Display>(
    batch: &mut Vec<Pending>,
    result: Result<Vec<Recorded>, E>,
) -> bool {
    match result {
        Ok(outcomes) => {
            tracing::trace!(size = batch.len(), "webhook batch committed");
            for ((_, reply), outcome) in batch.drain(..).zip(outcomes) {
                // The caller may have gone away (its request was cancelled); the record
                // stands and a resend will be a duplicate.
                let _ = reply.send(Ok(outcome));
            }
            true
        }
        Err(err) => {
            tracing::error!(%err, size = batch.len(), "webhook batch failed; nothing in it was recorded");
            let message = format!("recording the webhook failed: {err}");
            for (_, reply) in batch.drain(..) {
                let _ = reply.send(Err(StoreError::Backend(message.clone())));
            }
            false
        }
    }
}
