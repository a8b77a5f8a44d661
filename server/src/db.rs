//! The store's single owner on the server: a dedicated thread holding the `SqliteStore`, to
//! which async tasks send short closures and await their results.
//!
//! SQLite has one writer at a time anyway; serialising calls here keeps the connection owned
//! by one thread and keeps blocking I/O off the async runtime. Sessions reach it as the pump's
//! `StoreHost` (in `serve`): each pump call that touches the store runs here, the pump moved
//! in and back. No policy lives here.

use std::sync::mpsc;
use std::thread::JoinHandle;

use tokio::sync::oneshot;
use tournee_store::SqliteStore;

type Job = Box<dyn FnOnce(&mut SqliteStore) + Send>;

/// A handle to the store thread. Cloning shares the same thread.
#[derive(Debug, Clone)]
pub struct Db {
    tx: mpsc::Sender<Job>,
}

/// The store thread stopped (it panicked or was shut down).
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the store thread has stopped")]
pub struct DbGone;

impl Db {
    /// Move `store` to a new thread. The thread ends when every handle is dropped.
    pub fn start(mut store: SqliteStore) -> std::io::Result<(Self, JoinHandle<()>)> {
        let (tx, rx) = mpsc::channel::<Job>();
        let handle = std::thread::Builder::new()
            .name("tournee-store".into())
            .spawn(move || {
                while let Ok(job) = rx.recv() {
                    job(&mut store);
                }
            })?;
        Ok((Self { tx }, handle))
    }

    /// Run `f` on the store and await its result.
    pub async fn call<R, F>(&self, f: F) -> Result<R, DbGone>
    where
        R: Send + 'static,
        F: FnOnce(&mut SqliteStore) -> R + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Box::new(move |s: &mut SqliteStore| {
                let _ = tx.send(f(s));
            }))
            .map_err(|_| DbGone)?;
        rx.await.map_err(|_| DbGone)
    }
}
