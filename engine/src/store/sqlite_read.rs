//! Reads of the execution path — an execution and its task runs, workflow versions, orgs,
//! trigger switches, the deploy and configuration generations — on rusqlite connections of
//! their own, run right on the caller's thread.
//!
//! Through sqlx, each of these reads crosses to the connection's worker thread and back twice
//! (the statement, then the ping sqlx sends when a connection goes back to its pool), which
//! cost more than the read itself; a webhook's intake and an execution's start make several.
//! In WAL mode a reader never waits for the writer, so a read takes microseconds and may run
//! inline. Connections are kept for reuse (at most [`MAX_IDLE`]); each prepares a statement
//! once.

use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::{Result, StoreError};

/// How many idle read connections are kept.
const MAX_IDLE: usize = 8;

pub(super) struct Readers {
    path: String,
    idle: Mutex<Vec<Connection>>,
}

impl std::fmt::Debug for Readers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Readers")
    }
}

/// A rusqlite error as a store error.
pub(super) fn lite(what: &str, e: &rusqlite::Error) -> StoreError {
    match e {
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(
                f.code,
                rusqlite::ErrorCode::CannotOpen | rusqlite::ErrorCode::SystemIoFailure
            ) =>
        {
            StoreError::Database(sqlx::Error::Io(std::io::Error::other(format!(
                "{what}: {e}"
            ))))
        }
        _ => StoreError::Corrupt(format!("{what}: {e}")),
    }
}

impl Readers {
    pub(super) fn new(path: &str) -> Readers {
        Readers {
            path: path.to_string(),
            idle: Mutex::default(),
        }
    }

    fn open(&self) -> Result<Connection> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| lite("opening a reader", &e))?;
        conn.busy_timeout(Duration::from_secs(10))
            .and_then(|()| conn.execute_batch("PRAGMA query_only = ON;"))
            .map_err(|e| lite("configuring a reader", &e))?;
        conn.set_prepared_statement_cache_capacity(32);
        Ok(conn)
    }

    /// Runs `read` on an idle connection (or a new one).
    pub(super) fn read<T>(&self, read: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop();
        let conn = match idle {
            Some(c) => c,
            None => self.open()?,
        };
        let out = read(&conn);
        let mut idle = self
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if idle.len() < MAX_IDLE {
            idle.push(conn);
        }
        out
    }

    /// All rows of `sql` with `params`, mapped.
    pub(super) fn rows<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        map: impl Fn(&rusqlite::Row<'_>) -> Result<T>,
    ) -> Result<Vec<T>> {
        self.read(|c| {
            let mut stmt = c
                .prepare_cached(sql)
                .map_err(|e| lite("preparing a read", &e))?;
            let mut rows = stmt.query(params).map_err(|e| lite("reading", &e))?;
            let mut out = Vec::new();
            while let Some(row) = rows.next().map_err(|e| lite("reading", &e))? {
                out.push(map(row)?);
            }
            Ok(out)
        })
    }
}
