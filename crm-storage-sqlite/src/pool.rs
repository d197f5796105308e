//! The connection threads: one writer, N readers, each owning its connection.
//!
//! rusqlite is synchronous. Every call is sent as a closure to a dedicated thread and its result comes back on a
//! oneshot channel, so an async caller never blocks its runtime (and no particular runtime is required). All writes
//! go through the single writer thread, which is what SQLite wants ("database is locked" never happens between our
//! own writers); reads go to the reader threads, which see the last committed state thanks to WAL.
//!
//! Short reads (a record by id, a page of a timeline, the keys of a few data subjects) skip the hop: they run on the
//! caller's thread on one of a few more reader connections kept for them ([`Threads::read_short`]), taken with
//! `try_lock`, so a busy one is never waited for (the read then hops as any other). The hop costs about three
//! context switches, more than such a read takes (tens of microseconds); blocking the caller's thread for that long
//! is what any synchronous call costs. Long reads (lists, reports, feeds) keep hopping, so a runtime thread is never
//! held by a scan. A small commit likewise runs on the caller's thread when the writer connection is free
//! ([`Threads::write_short`]); the writer thread takes the same connection, locked per job, so writes stay one at
//! a time.

use crate::error::{panicked, stopped};
use crm_core::Result;
use futures::channel::oneshot;
use rusqlite::Connection;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// Handles to the connection threads, or the host's shared connection.
#[derive(Debug)]
pub(crate) enum Threads {
    /// The store's own connections, each on its thread.
    Own {
        writer: mpsc::Sender<Job>,
        /// The writer's connection, which its thread locks per job: a small write takes it on the caller's thread
        /// when it is free ([`Threads::write_short`]).
        writer_conn: Arc<Mutex<Connection>>,
        readers: Option<mpsc::Sender<Job>>,
        /// Reader connections for short reads on the caller's thread.
        inline: Vec<Mutex<Connection>>,
    },
    /// A connection the host holds: jobs run on the caller's thread under its lock.
    Shared(Arc<Mutex<Connection>>),
}

impl Threads {
    /// Jobs run on the host's connection, one at a time.
    pub(crate) fn shared(conn: Arc<Mutex<Connection>>) -> Self {
        Self::Shared(conn)
    }

    /// Starts the writer on `writer` and one thread per reader connection; `inline` connections serve short reads
    /// on the caller's thread.
    pub(crate) fn start(
        writer: Connection,
        readers: Vec<Connection>,
        inline: Vec<Connection>,
    ) -> Self {
        let (wtx, wrx) = mpsc::channel::<Job>();
        let writer_conn = Arc::new(Mutex::new(writer));
        spawn_shared("crm-sqlite-writer", writer_conn.clone(), wrx);
        let readers = if readers.is_empty() {
            None
        } else {
            let (rtx, rrx) = mpsc::channel::<Job>();
            let rrx = Arc::new(Mutex::new(rrx));
            for (i, c) in readers.into_iter().enumerate() {
                spawn(&format!("crm-sqlite-reader-{i}"), c, rrx.clone());
            }
            Some(rtx)
        };
        Self::Own {
            writer: wtx,
            writer_conn,
            readers,
            inline: inline.into_iter().map(Mutex::new).collect(),
        }
    }

    /// Runs `f` on the writer connection.
    pub(crate) async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        match self {
            Self::Own { writer, .. } => run(writer, f).await,
            Self::Shared(conn) => run_here(conn, f),
        }
    }

    /// Runs `f` on a reader connection (the writer's, for in-memory databases).
    pub(crate) async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        match self {
            Self::Own {
                writer, readers, ..
            } => run(readers.as_ref().unwrap_or(writer), f).await,
            Self::Shared(conn) => run_here(conn, f),
        }
    }

    /// Runs a small write `f` (a few statements in one transaction) on this thread when the writer connection is
    /// free, else as [`Threads::write`] does (queued for the writer thread, which takes the same connection).
    pub(crate) async fn write_short<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        if let Self::Own { writer_conn, .. } = self {
            if let Ok(mut c) = writer_conn.try_lock() {
                return answered(&mut c, f);
            }
        }
        self.write(f).await
    }

    /// Runs a short read `f` on this thread on the writer's connection when it is free, else on a free inline
    /// reader connection, else as [`Threads::read`] does.
    pub(crate) async fn read_short<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        if let Self::Own {
            writer_conn,
            inline,
            ..
        } = self
        {
            // The writer's connection first: its page cache holds what the last writes touched, where a reader
            // connection starts each read after a commit with an emptied cache (SQLite resets it when the file
            // changed) and reads the pages again from the file.
            if let Ok(mut c) = writer_conn.try_lock() {
                return answered(&mut c, f);
            }
            if let Some(mut c) = inline.iter().find_map(|c| c.try_lock().ok()) {
                return answered(&mut c, f);
            }
        }
        self.read(f).await
    }
}

async fn run<T, F>(tx: &mpsc::Sender<Job>, f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
{
    let (otx, orx) = oneshot::channel();
    let job: Job = Box::new(move |conn| {
        // A panic is answered as a non-retryable error (not a closed channel, which reads as `Unavailable`).
        let r = answered(conn, f);
        let _ = otx.send(r);
    });
    tx.send(job).map_err(|_| stopped())?;
    orx.await.map_err(|_| stopped())?
}

/// Runs a job on the host's connection, on this thread (a panic is answered as for the store's own threads).
fn run_here<T, F>(conn: &Mutex<Connection>, f: F) -> Result<T>
where
    F: FnOnce(&mut Connection) -> Result<T>,
{
    answered(&mut conn.lock().unwrap_or_else(|p| p.into_inner()), f)
}

/// Runs `f` on `conn`, a panic answered as a non-retryable error (not a closed channel or a poisoned lock).
fn answered<T, F>(conn: &mut Connection, f: F) -> Result<T>
where
    F: FnOnce(&mut Connection) -> Result<T>,
{
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(conn)))
        .unwrap_or_else(|p| Err(panicked(p.as_ref())))
}

/// The writer's thread: runs each job on the shared writer connection, locked for the job.
fn spawn_shared(name: &str, conn: Arc<Mutex<Connection>>, rx: mpsc::Receiver<Job>) {
    thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            while let Ok(job) = rx.recv() {
                let mut c = conn.lock().unwrap_or_else(|p| p.into_inner());
                // As for the readers: a panicking job answers with an error and the next one runs.
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&mut c)));
            }
        })
        .expect("the OS can start a thread");
}

fn spawn(name: &str, mut conn: Connection, rx: Arc<Mutex<mpsc::Receiver<Job>>>) {
    thread::Builder::new()
        .name(name.to_string())
        .spawn(move || loop {
            let job = {
                let guard = match rx.lock() {
                    Ok(g) => g,
                    Err(p) => p.into_inner(),
                };
                match guard.recv() {
                    Ok(job) => job,
                    Err(_) => return,
                }
            };
            // A panic in a job must not take the connection thread down with it: the job answers it as an
            // `Internal` error (see `run`), and the next job runs normally.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&mut conn)));
        })
        .expect("the OS can start a thread");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panicking_job_is_a_non_retryable_error_and_the_thread_serves_the_next_job() {
        let threads = Threads::start(
            Connection::open_in_memory().unwrap(),
            Vec::new(),
            Vec::new(),
        );
        futures::executor::block_on(async {
            let e = threads
                .write(|_| -> Result<()> { panic!("a bug in a query") })
                .await
                .unwrap_err();
            assert!(
                !e.is_retryable(),
                "a panic is a bug: retrying repeats it: {e}"
            );
            assert!(e.to_string().contains("a bug in a query"), "{e}");
            let one: i64 = threads
                .write(|c| {
                    c.query_row("SELECT 1", [], |r| r.get(0))
                        .map_err(crate::error::map)
                })
                .await
                .unwrap();
            assert_eq!(one, 1);
        });
    }

    // The connections are held across the await on purpose: the short read must not wait for them.
    #[allow(clippy::await_holding_lock)]
    #[test]
    fn a_short_read_runs_on_the_callers_thread_on_the_first_free_connection() {
        let me = std::thread::current().id();
        // Each connection names itself: `which` reads the name of the one a read ran on.
        let named = |name: &str| {
            let c = Connection::open_in_memory().unwrap();
            c.execute_batch(&format!("CREATE TABLE me AS SELECT '{name}' AS name"))
                .unwrap();
            c
        };
        let which = |c: &mut Connection| -> Result<(std::thread::ThreadId, String)> {
            let name = c
                .query_row("SELECT name FROM me", [], |r| r.get(0))
                .map_err(crate::error::map)?;
            Ok((std::thread::current().id(), name))
        };
        let threads = Threads::start(
            named("writer"),
            vec![named("reader")],
            vec![named("inline")],
        );
        futures::executor::block_on(async {
            let (here, on) = threads.read_short(which).await.unwrap();
            assert_eq!(here, me, "no hop");
            assert_eq!(on, "writer", "the writer's warm cache first");
            let Threads::Own {
                writer_conn,
                inline,
                ..
            } = &threads
            else {
                panic!("the store's own threads")
            };
            let writing = writer_conn.lock().unwrap();
            let (here, on) = threads.read_short(which).await.unwrap();
            assert_eq!(
                (here, on.as_str()),
                (me, "inline"),
                "a busy writer: an inline reader"
            );
            let held = inline[0].lock().unwrap();
            let (there, on) = threads.read_short(which).await.unwrap();
            assert_ne!(
                there, me,
                "busy connections are not waited for: the read hops"
            );
            assert_eq!(on, "reader");
            drop((held, writing));
            let e = threads
                .read_short(|_| -> Result<()> { panic!("a bug in a query") })
                .await
                .unwrap_err();
            assert!(e.to_string().contains("a bug in a query"), "{e}");
        });
    }

    // As above, for a small write and the writer's connection.
    #[allow(clippy::await_holding_lock)]
    #[test]
    fn a_small_write_runs_on_the_callers_thread_unless_the_writer_is_busy() {
        let me = std::thread::current().id();
        let threads = Threads::start(
            Connection::open_in_memory().unwrap(),
            Vec::new(),
            Vec::new(),
        );
        futures::executor::block_on(async {
            let here = threads
                .write_short(|_| Ok(std::thread::current().id()))
                .await
                .unwrap();
            assert_eq!(here, me, "no hop");
            let Threads::Own { writer_conn, .. } = &threads else {
                panic!("the store's own threads")
            };
            let held = writer_conn.lock().unwrap();
            let queued = threads.write_short(|_| Ok(std::thread::current().id()));
            futures::pin_mut!(queued);
            use std::future::Future;
            // Polled once while the connection is held: the write is queued for the writer thread, which waits
            // for the connection; released, the queued write runs there.
            let waker = futures::task::noop_waker();
            let mut cx = std::task::Context::from_waker(&waker);
            assert!(queued.as_mut().poll(&mut cx).is_pending());
            drop(held);
            let there = queued.await.unwrap();
            assert_ne!(
                there, me,
                "a busy writer is not waited for here: the write is queued"
            );
        });
    }
}
