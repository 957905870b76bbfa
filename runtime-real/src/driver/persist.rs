//! Persist before acknowledging: what the node asks to persist is committed to the
//! [`Store`](crate::store::Store) in batches, and the node hears `handle_persisted` only
//! once its batch is on disk — so whatever a protocol acknowledges on `persisted` (a KV
//! op's `Committed`, a heartbeat incarnation) is durable when it says so.
//!
//! A commit runs on a blocking thread while the node keeps going; records that arrive
//! meanwhile form the next batch (one sync per batch, however many records).

use std::time::Duration;

use hawser_core::PersistSeq;
use tokio::sync::mpsc;

use super::handle::DriverError;
use super::host::Host;
use super::input::Input;
use super::node_task::Driver;
use crate::store::StoreError;
use crate::transport::Transport;

impl<T: Transport, H: Host> Driver<T, H> {
    /// Start committing the current batch on a blocking thread.
    pub(super) fn commit(&mut self) {
        let batch = std::mem::take(&mut self.batch);
        let store = self.store.clone();
        let inputs = self.inputs.clone();
        self.committing = true;
        tokio::spawn(async move {
            #[cfg_attr(madsim, allow(deprecated))]
            let job = tokio::task::spawn_blocking(move || {
                let started = std::time::Instant::now();
                let last = store
                    .commit(&batch)?
                    .expect("only non-empty batches commit");
                Ok((last, started.elapsed(), batch.len()))
            });
            let result = job.await.unwrap_or_else(|e| {
                Err(StoreError::Io {
                    path: Default::default(),
                    error: format!("the commit task died: {e}"),
                })
            });
            let _ = inputs.send(Input::Committed(result)).await;
        });
    }

    /// Records up to `last` are durable: tell the node, and so whatever waits on them.
    pub(super) fn persisted(&mut self, last: PersistSeq, took: Duration, records: usize) {
        self.metrics.observe_sync(took);
        self.metrics.store_records.inc_by(records as u64);
        let now = self.now();
        self.node.handle_persisted(now, last);
    }

    /// At shutdown: wait for the commit in flight, then commit everything else the node
    /// asked to persist, here and now.
    pub(super) async fn flush(
        &mut self,
        input_rx: &mut mpsc::Receiver<Input<T::Stream>>,
    ) -> Result<(), DriverError> {
        while self.committing {
            match input_rx.recv().await {
                Some(Input::Committed(result)) => {
                    self.committing = false;
                    let (last, took, records) = result.map_err(DriverError::Store)?;
                    self.persisted(last, took, records);
                }
                Some(_) => {}
                None => break,
            }
        }
        while let Some(record) = self.node.poll_persist() {
            self.batch.push(record);
        }
        let batch = std::mem::take(&mut self.batch);
        let started = std::time::Instant::now();
        if let Some(last) = self.store.commit(&batch).map_err(DriverError::Store)? {
            self.persisted(last, started.elapsed(), batch.len());
        }
        Ok(())
    }
}
