//! The connection threads: one writer, N readers, each owning its connection, and for a file a checkpointer
//! ([`Checkpoints`]) that copies the write-ahead log into the file, a job SQLite otherwise gives the commits.
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
        /// Asks the checkpointer's thread to copy the write-ahead log into the file ([`Checkpoints`]), when the
        /// store has one.
        checkpoints: Option<mpsc::SyncSender<()>>,
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
    /// on the caller's thread; with a `checkpointer` connection, the write-ahead log is copied into the file on a
    /// thread of its own ([`Checkpoints`]), not by the commits.
    pub(crate) fn start(
        writer: Connection,
        readers: Vec<Connection>,
        inline: Vec<Connection>,
        checkpointer: Option<Connection>,
    ) -> Self {
        let checkpoints = checkpointer.map(|c| {
            writer.wal_hook(Some(Checkpoints::hook));
            Checkpoints::spawn(c)
        });
        let (wtx, wrx) = mpsc::channel::<Job>();
        let writer_conn = Arc::new(Mutex::new(writer));
        spawn_shared(
            "crm-sqlite-writer",
            writer_conn.clone(),
            wrx,
            checkpoints.clone(),
        );
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
            checkpoints,
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
        if let Self::Own {
            writer_conn,
            checkpoints,
            ..
        } = self
        {
            if let Ok(mut c) = writer_conn.try_lock() {
                let r = answered(&mut c, f);
                drop(c);
                Checkpoints::ask_if_due(checkpoints.as_ref());
                return r;
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
fn spawn_shared(
    name: &str,
    conn: Arc<Mutex<Connection>>,
    rx: mpsc::Receiver<Job>,
    checkpoints: Option<mpsc::SyncSender<()>>,
) {
    thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            while let Ok(job) = rx.recv() {
                let mut c = conn.lock().unwrap_or_else(|p| p.into_inner());
                // As for the readers: a panicking job answers with an error and the next one runs.
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&mut c)));
                drop(c);
                Checkpoints::ask_if_due(checkpoints.as_ref());
            }
        })
        .expect("the OS can start a thread");
}

/// Checkpoints on a thread of their own: copying the write-ahead log into the database file, and syncing both, is
/// work SQLite otherwise does inside the commit that fills the log past 1,000 pages, so every thousandth page of
/// writes waited for it (a tenth of a stage move's time at a million leads). Instead, the writer connection's
/// write-ahead-log hook notes that the log has passed [`Checkpoints::ASK_PAGES`]; after the job, the writing
/// thread asks the checkpointer's thread, which runs a passive checkpoint on a connection of its own while the
/// writes go on. Should the log still reach [`Checkpoints::SELF_PAGES`] (writes that never pause, or a
/// checkpoint held back by a long read), the commit that reaches it checkpoints, as SQLite's own would at 1,000.
pub(crate) struct Checkpoints;

thread_local! {
    /// Set by the hook when a commit on this thread left the log past [`Checkpoints::ASK_PAGES`].
    static CHECKPOINT_DUE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

impl Checkpoints {
    /// Pages of log after which a commit asks for a checkpoint (SQLite's own threshold for its in-commit ones).
    pub(crate) const ASK_PAGES: i32 = 1_000;
    /// Pages of log (16 MiB at 4 KiB pages) after which a commit checkpoints itself.
    pub(crate) const SELF_PAGES: i32 = 4_096;

    /// The writer connection's write-ahead-log hook (it replaces SQLite's automatic checkpoints).
    pub(crate) fn hook(wal: &rusqlite::hooks::Wal, pages: std::ffi::c_int) -> rusqlite::Result<()> {
        if pages >= Self::SELF_PAGES {
            // Busy when the checkpointer is running one: the next commit tries again. The commit has happened
            // either way, so no error is returned to it.
            let _ = wal.checkpoint();
        } else if pages >= Self::ASK_PAGES {
            CHECKPOINT_DUE.with(|d| d.set(true));
        }
        Ok(())
    }

    /// Asks the checkpointer (without waiting) when a commit on this thread left the log long enough.
    pub(crate) fn ask_if_due(checkpoints: Option<&mpsc::SyncSender<()>>) {
        if CHECKPOINT_DUE.with(|d| d.replace(false)) {
            if let Some(tx) = checkpoints {
                // Full: a request is already waiting, which covers this one too.
                let _ = tx.try_send(());
            }
        }
    }

    /// Starts the checkpointer's thread on `conn`; it stops when the store's handles are dropped.
    fn spawn(conn: Connection) -> mpsc::SyncSender<()> {
        let (tx, rx) = mpsc::sync_channel::<()>(1);
        thread::Builder::new()
            .name("crm-sqlite-checkpointer".to_string())
            .spawn(move || {
                while rx.recv().is_ok() {
                    // Passive: it copies what no reader still needs and never waits for the writer or a reader.
                    let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
                }
            })
            .expect("the OS can start a thread");
        tx
    }
}

/// `PRAGMA wal_checkpoint(TRUNCATE)` on `conn`, tried again while the checkpointer holds the checkpoint lock (a
/// second checkpoint is refused at once, without the busy handler), for up to `patience`; what is left after that
/// is copied by a later checkpoint, as when a reader held it back.
pub(crate) fn checkpoint_truncate(
    conn: &Connection,
    patience: std::time::Duration,
) -> rusqlite::Result<()> {
    let until = std::time::Instant::now() + patience;
    loop {
        let busy: i64 = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?;
        if busy == 0 || std::time::Instant::now() >= until {
            return Ok(());
        }
        thread::sleep(std::time::Duration::from_millis(1));
    }
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

    /// A WAL file database in `dir` with a table of blobs.
    fn wal_file(dir: &tempfile::TempDir) -> (std::path::PathBuf, Connection) {
        let path = dir.path().join("wal.sqlite");
        let c = Connection::open(&path).unwrap();
        c.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))
            .unwrap();
        c.execute_batch("PRAGMA synchronous = NORMAL; CREATE TABLE b (x BLOB)")
            .unwrap();
        (path, c)
    }

    /// Commits about `pages` pages of log in one transaction on `c`.
    fn fill(c: &Connection, pages: usize) -> Result<()> {
        c.execute_batch(&format!(
            "BEGIN; WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {pages}) \
             INSERT INTO b SELECT randomblob(3800) FROM n; COMMIT"
        ))
        .map_err(crate::error::map)
    }

    fn file_len(path: &std::path::Path) -> u64 {
        std::fs::metadata(path).unwrap().len()
    }

    #[test]
    fn a_commit_past_a_thousand_pages_asks_for_a_checkpoint_and_leaves_the_log_uncopied() {
        let dir = tempfile::tempdir().unwrap();
        let (path, c) = wal_file(&dir);
        c.wal_hook(Some(Checkpoints::hook));
        let before = file_len(&path);
        let (tx, rx) = mpsc::sync_channel(1);
        fill(&c, 1_200).unwrap();
        Checkpoints::ask_if_due(Some(&tx));
        assert!(rx.try_recv().is_ok(), "the commit asked for a checkpoint");
        assert!(
            file_len(&path) < before + 1_000_000,
            "the commit copied no log into the file: {} bytes, was {before}",
            file_len(&path)
        );
        // Once asked, not again until another commit passes the threshold.
        Checkpoints::ask_if_due(Some(&tx));
        assert!(rx.try_recv().is_err());
        // SQLite's own checkpoint (no hook) copies it in the commit: what the hook replaces.
        let dir2 = tempfile::tempdir().unwrap();
        let (path2, c2) = wal_file(&dir2);
        fill(&c2, 1_200).unwrap();
        assert!(file_len(&path2) > 4_000_000, "{}", file_len(&path2));
    }

    #[test]
    fn a_log_past_its_bound_is_copied_by_the_commit_that_reaches_it() {
        let dir = tempfile::tempdir().unwrap();
        let (path, c) = wal_file(&dir);
        c.wal_hook(Some(Checkpoints::hook));
        // No checkpointer answers: the log grows to the bound, and the commit reaching it copies it.
        fill(&c, 3_000).unwrap();
        assert!(file_len(&path) < 1_000_000, "{}", file_len(&path));
        fill(&c, 1_500).unwrap();
        assert!(
            file_len(&path) > 16_000_000,
            "the commit past {} pages checkpointed: {} bytes",
            Checkpoints::SELF_PAGES,
            file_len(&path)
        );
        let (log, copied): (i64, i64) = c
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                Ok((r.get(1)?, r.get(2)?))
            })
            .unwrap();
        assert_eq!(log, copied, "everything in the log is in the file");
    }

    #[test]
    fn a_truncating_checkpoint_held_back_gives_up_after_its_patience_and_truncates_once_free() {
        let dir = tempfile::tempdir().unwrap();
        let (path, c) = wal_file(&dir);
        c.busy_timeout(std::time::Duration::ZERO).unwrap();
        fill(&c, 100).unwrap();
        // A reader in a transaction on the log's snapshot keeps a truncating checkpoint from finishing.
        let reader = Connection::open(&path).unwrap();
        reader
            .execute_batch("BEGIN; SELECT count(*) FROM b;")
            .unwrap();
        fill(&c, 100).unwrap();
        let wal = dir.path().join("wal.sqlite-wal");
        let started = std::time::Instant::now();
        checkpoint_truncate(&c, std::time::Duration::from_millis(30)).unwrap();
        assert!(
            started.elapsed() >= std::time::Duration::from_millis(30),
            "it tried again"
        );
        assert!(
            file_len(&wal) > 0,
            "held back, the log is left for a later checkpoint"
        );
        reader.execute_batch("COMMIT").unwrap();
        checkpoint_truncate(&c, std::time::Duration::from_millis(30)).unwrap();
        assert_eq!(file_len(&wal), 0, "free, the log is truncated");
    }

    #[test]
    fn the_checkpointer_copies_the_log_while_the_writer_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let (path, c) = wal_file(&dir);
        let threads = Threads::start(
            c,
            Vec::new(),
            Vec::new(),
            Some(Connection::open(&path).unwrap()),
        );
        let before = file_len(&path);
        futures::executor::block_on(threads.write(|c| fill(c, 1_200))).unwrap();
        // The checkpointer's thread copies the log into the file: wait for it (a few milliseconds).
        let until = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while file_len(&path) < before + 4_000_000 {
            assert!(
                std::time::Instant::now() < until,
                "no checkpoint copied the log: {} bytes",
                file_len(&path)
            );
            thread::sleep(std::time::Duration::from_millis(5));
        }
        // A small write on the caller's thread asks as well.
        futures::executor::block_on(threads.write_short(|c| fill(c, 1_100))).unwrap();
        let copied = file_len(&path);
        let until = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while file_len(&path) < copied + 3_500_000 {
            assert!(std::time::Instant::now() < until, "{}", file_len(&path));
            thread::sleep(std::time::Duration::from_millis(5));
        }
        // A truncating checkpoint (an erasure's) waits out the checkpointer and empties the log.
        let wal = dir.path().join("wal.sqlite-wal");
        futures::executor::block_on(threads.write(|c| {
            fill(c, 1_100)?;
            checkpoint_truncate(c, std::time::Duration::from_secs(5)).map_err(crate::error::map)
        }))
        .unwrap();
        assert_eq!(file_len(&wal), 0, "the log is truncated");
    }

    #[test]
    fn a_panicking_job_is_a_non_retryable_error_and_the_thread_serves_the_next_job() {
        let threads = Threads::start(
            Connection::open_in_memory().unwrap(),
            Vec::new(),
            Vec::new(),
            None,
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
            None,
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
            None,
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
