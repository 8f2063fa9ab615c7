//! SQLite storage for the local control plane: users, tokens, workspaces, memberships, backend options,
//! clusters, workers and state history. One connection behind a mutex; every call is short.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};

/// Storage errors.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed.
    #[error("database: {0}")]
    Sql(#[from] rusqlite::Error),
    /// Stored JSON did not parse.
    #[error("stored JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// The database.
pub struct Store {
    conn: Mutex<Connection>,
}

/// A cluster row.
#[derive(Clone, Debug)]
pub struct ClusterRow {
    /// Id.
    pub id: i64,
    /// Workspace slug.
    pub workspace: String,
    /// Name.
    pub name: String,
    /// Created (RFC 3339).
    pub created: String,
    /// Updated (RFC 3339).
    pub updated: String,
    /// Cluster state.
    pub state: String,
    /// Reason for the state.
    pub reason: String,
    /// Target worker count.
    pub desired_workers: i64,
    /// Scheduler port.
    pub scheduler_port: i64,
    /// Whether the scheduler gets a public IP.
    pub give_public_ip: bool,
    /// The `options` sent at creation (JSON).
    pub options: serde_json::Value,
    /// The effective ingress rules (JSON array of `{ports, cidr}`).
    pub firewall: serde_json::Value,
    /// Where the rules came from: `cluster`, `account` or `default`.
    pub firewall_source: String,
    /// Tags.
    pub tags: serde_json::Value,
    /// Software environment name.
    pub software: Option<String>,
    /// Instance types.
    pub worker_instance_types: serde_json::Value,
    /// Scheduler instance types.
    pub scheduler_instance_types: serde_json::Value,
    /// Unix time (seconds) of the next state change, if one is due.
    pub phase_at: Option<f64>,
    /// Reason to fail provisioning with, if the cluster is meant to fail.
    pub fail_reason: Option<String>,
    /// Scheduler private IP.
    pub private_ip: String,
    /// Scheduler public IP.
    pub public_ip: String,
    /// The scheduler's own state.
    pub scheduler_state: String,
}

/// A worker row.
#[derive(Clone, Debug)]
pub struct WorkerRow {
    /// Id.
    pub id: i64,
    /// Cluster id.
    pub cluster_id: i64,
    /// Name (`<cluster>-worker-<n>`).
    pub name: String,
    /// Process state.
    pub state: String,
    /// Created.
    pub created: String,
    /// Updated.
    pub updated: String,
    /// Next state change.
    pub phase_at: Option<f64>,
    /// Private IP.
    pub private_ip: String,
    /// `stuck` (stays pending) or `fail` (ends in error), from the cluster's `coiled-local/…` tags.
    pub fate: Option<String>,
}

/// The tables, created where missing.
const SCHEMA: &str = include_str!("store.sql");

pub(crate) fn now_text() -> String {
    humantime::format_rfc3339_micros(std::time::SystemTime::now())
        .to_string()
        .replace('Z', "+00:00")
}

fn cluster_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ClusterRow> {
    let json = |i: usize| -> rusqlite::Result<serde_json::Value> {
        let s: String = r.get(i)?;
        Ok(serde_json::from_str(&s).unwrap_or(serde_json::Value::Null))
    };
    Ok(ClusterRow {
        id: r.get(0)?,
        workspace: r.get(1)?,
        name: r.get(2)?,
        created: r.get(3)?,
        updated: r.get(4)?,
        state: r.get(5)?,
        reason: r.get(6)?,
        desired_workers: r.get(7)?,
        scheduler_port: r.get(8)?,
        give_public_ip: r.get::<_, i64>(9)? != 0,
        options: json(10)?,
        firewall: json(11)?,
        firewall_source: r.get(12)?,
        tags: json(13)?,
        software: r.get(14)?,
        worker_instance_types: json(15)?,
        scheduler_instance_types: json(16)?,
        phase_at: r.get(17)?,
        fail_reason: r.get(18)?,
        private_ip: r.get(19)?,
        public_ip: r.get(20)?,
        scheduler_state: r.get(21)?,
    })
}

const CLUSTER_COLUMNS: &str = "id, workspace, name, created, updated, state, reason, \
    desired_workers, scheduler_port, give_public_ip, options, firewall, firewall_source, tags, \
    software, worker_instance_types, scheduler_instance_types, phase_at, fail_reason, private_ip, \
    public_ip, scheduler_state";

fn worker_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<WorkerRow> {
    Ok(WorkerRow {
        id: r.get(0)?,
        cluster_id: r.get(1)?,
        name: r.get(2)?,
        state: r.get(3)?,
        created: r.get(4)?,
        updated: r.get(5)?,
        phase_at: r.get(6)?,
        private_ip: r.get(7)?,
        fate: r.get(8)?,
    })
}

const WORKER_COLUMNS: &str =
    "id, cluster_id, name, state, created, updated, phase_at, private_ip, fate";

/// One entry of a cluster's state history.
#[derive(Clone, Debug)]
pub struct StateEntry {
    /// `cluster`, `scheduler`, `worker`, …
    pub kind: String,
    /// The object's name.
    pub name: String,
    /// The state entered.
    pub state: String,
    /// Why.
    pub reason: String,
    /// When (RFC 3339).
    pub updated: String,
}

/// What a new cluster is created with.
pub struct NewCluster {
    /// Workspace.
    pub workspace: String,
    /// Name.
    pub name: String,
    /// Initial worker count.
    pub workers: i64,
    /// Scheduler port.
    pub scheduler_port: i64,
    /// The idle timeout the create sent (`scheduler_options.idle_timeout`), if any.
    pub idle_timeout: Option<String>,
    /// Scheduler gets a public IP.
    pub give_public_ip: bool,
    /// The options sent.
    pub options: serde_json::Value,
    /// Effective ingress rules.
    pub firewall: serde_json::Value,
    /// Their source.
    pub firewall_source: String,
    /// Tags.
    pub tags: serde_json::Value,
    /// Software environment.
    pub software: Option<String>,
    /// Worker instance types.
    pub worker_instance_types: serde_json::Value,
    /// Scheduler instance types.
    pub scheduler_instance_types: serde_json::Value,
    /// First state change time.
    pub phase_at: f64,
    /// Fail provisioning with this reason.
    pub fail_reason: Option<String>,
    /// How many of the first workers stay `pending` for good.
    pub stuck_workers: i64,
    /// How many of the workers after those end in `error`.
    pub failed_workers: i64,
}

impl Store {
    /// Opens (creating) `dir/coiled-local.sqlite3`.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        let io = |e: std::io::Error| {
            StoreError::Sql(rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        // The data (tokens, keys) is the server's alone: its directory is closed to every other user,
        // the database's journal files included.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io)?;
        let conn = Connection::open(dir.join("coiled-local.sqlite3"))?;
        std::fs::set_permissions(
            dir.join("coiled-local.sqlite3"),
            std::fs::Permissions::from_mode(0o600),
        )
        .map_err(io)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.set_prepared_statement_cache_capacity(64);
        conn.execute_batch(SCHEMA)?;
        conn.execute_batch(crate::software_store::SCHEMA)?;
        conn.execute_batch(crate::idle::SCHEMA)?;
        // Columns newer data directories have from the start.
        for (table, column) in [
            ("clusters", "scheduler_state TEXT NOT NULL DEFAULT 'pending'"),
            ("workers", "fate TEXT"),
        ] {
            let _ = conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column}"));
        }
        Ok(Store { conn: Mutex::new(conn) })
    }

    pub(crate) fn with<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        Ok(f(&conn)?)
    }

    /// The stored backend options `data` of a workspace.
    pub fn backend_options(
        &self,
        workspace: &str,
    ) -> Result<Option<serde_json::Value>, StoreError> {
        let text: Option<String> = self.with(|c| {
            row(c, "SELECT data FROM backend_options WHERE workspace = ?1", [workspace], |r| {
                r.get(0)
            })
            .optional()
        })?;
        Ok(match text {
            Some(t) => Some(serde_json::from_str(&t)?),
            None => None,
        })
    }

    /// Replaces the backend options of a workspace.
    pub fn set_backend_options(
        &self,
        workspace: &str,
        data: &serde_json::Value,
    ) -> Result<(), StoreError> {
        let now = now_text();
        self.with(|c| {
            c.execute(
                "INSERT OR REPLACE INTO backend_options(workspace, data, updated) VALUES (?1, ?2, \
                    ?3)",
                params![workspace, data.to_string(), now],
            )
            .map(|_| ())
        })
    }

    /// How many clusters of `workspace` have not ended.
    pub fn active_clusters(&self, workspace: &str) -> Result<i64, StoreError> {
        self.with(|c| {
            row(
                c,
                "SELECT COUNT(*) FROM clusters WHERE workspace = ?1 AND state NOT IN \
                ('stopped', 'error')",
                [workspace],
                |r| r.get(0),
            )
        })
    }

    /// Creates a cluster and its workers (all `pending`), atomically; returns `(id, existing)` where an
    /// active cluster with the same name is reused.
    pub fn create_cluster(&self, new: &NewCluster) -> Result<(i64, bool), StoreError> {
        let now = now_text();
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let tx = conn.transaction()?;
        let existing: Option<i64> = tx
            .query_row(
                "SELECT id FROM clusters WHERE workspace = ?1 AND name = ?2 AND state NOT IN \
                    ('stopped', 'error') ORDER BY id DESC LIMIT 1",
                params![new.workspace, new.name],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(id) = existing {
            return Ok((id, true));
        }
        tx.execute(
            "INSERT INTO clusters(workspace, name, created, updated, state, reason, desired_workers, scheduler_port, give_public_ip, options, firewall, firewall_source, tags, software, worker_instance_types, scheduler_instance_types, phase_at, fail_reason, private_ip, public_ip)
             VALUES (?1, ?2, ?3, ?3, 'pending', '', ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, '', '')",
            params![
                new.workspace,
                new.name,
                now,
                new.workers,
                new.scheduler_port,
                new.give_public_ip,
                new.options.to_string(),
                new.firewall.to_string(),
                new.firewall_source,
                new.tags.to_string(),
                new.software,
                new.worker_instance_types.to_string(),
                new.scheduler_instance_types.to_string(),
                new.phase_at,
                new.fail_reason,
            ],
        )?;
        let id = tx.last_insert_rowid();
        // Documentation ranges: addresses to show, never to contact.
        tx.execute(
            "UPDATE clusters SET private_ip = ?2, public_ip = ?3 WHERE id = ?1",
            params![
                id,
                format!("10.{}.{}.10", (id / 250) % 250, id % 250),
                format!("198.51.100.{}", id % 250 + 1)
            ],
        )?;
        tx.execute(
            "INSERT INTO states(cluster_id, kind, name, state, reason, updated) VALUES (?1, \
                'cluster', ?2, 'pending', 'created', ?3)",
            params![id, new.name, now],
        )?;
        for i in 0..new.workers {
            let fate = if i < new.stuck_workers {
                Some("stuck")
            } else if i < new.stuck_workers + new.failed_workers {
                Some("fail")
            } else {
                None
            };
            let wid = insert_worker(
                &tx,
                id,
                &new.name,
                "pending",
                fate.is_none_or(|f| f != "stuck").then_some(new.phase_at),
                &now,
            )?;
            tx.execute("UPDATE workers SET fate = ?2 WHERE id = ?1", params![wid, fate])?;
        }
        tx.commit()?;
        Ok((id, false))
    }

    /// One cluster, by id alone.
    pub fn cluster_by_id(&self, id: i64) -> Result<Option<ClusterRow>, StoreError> {
        self.with(|c| {
            row(
                c,
                &format!("SELECT {CLUSTER_COLUMNS} FROM clusters WHERE id = ?1"),
                params![id],
                cluster_from_row,
            )
            .optional()
        })
    }

    /// One cluster of a workspace.
    pub fn cluster(&self, workspace: &str, id: i64) -> Result<Option<ClusterRow>, StoreError> {
        self.with(|c| {
            row(
                c,
                &format!("SELECT {CLUSTER_COLUMNS} FROM clusters WHERE workspace = ?1 AND id = ?2"),
                params![workspace, id],
                cluster_from_row,
            )
            .optional()
        })
    }

    /// The newest active cluster of that name.
    pub fn active_cluster_by_name(
        &self,
        workspace: &str,
        name: &str,
    ) -> Result<Option<ClusterRow>, StoreError> {
        self.with(|c| {
            row(
                c,
                &format!(
                    "SELECT {CLUSTER_COLUMNS} FROM clusters WHERE workspace = ?1 AND name = \
                    ?2 AND state NOT IN ('stopped', 'error') ORDER BY id DESC LIMIT 1"
                ),
                params![workspace, name],
                cluster_from_row,
            )
            .optional()
        })
    }

    /// A page of clusters (newest first), optionally only those named `name`.
    pub fn clusters(
        &self,
        workspace: Option<&str>,
        name: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<ClusterRow>, StoreError> {
        self.with(|c| {
            let mut s = c.prepare_cached(&format!(
                "SELECT {CLUSTER_COLUMNS} FROM clusters WHERE (?1 IS NULL OR workspace = ?1) AND \
                    (?2 IS NULL OR name = ?2) ORDER BY id DESC LIMIT ?3 OFFSET ?4"
            ))?;
            let rows = s.query_map(params![workspace, name, limit, offset], cluster_from_row)?;
            rows.collect()
        })
    }

    /// Workers of a cluster (all, including stopped ones), oldest first.
    pub fn workers(&self, cluster_id: i64) -> Result<Vec<WorkerRow>, StoreError> {
        self.with(|c| {
            let mut s = c.prepare_cached(&format!(
                "SELECT {WORKER_COLUMNS} FROM workers WHERE cluster_id = ?1 ORDER BY id"
            ))?;
            let rows = s.query_map([cluster_id], worker_from_row)?;
            rows.collect()
        })
    }

    /// State history of a cluster, oldest first.
    pub fn states(&self, cluster_id: i64) -> Result<Vec<StateEntry>, StoreError> {
        self.with(|c| {
            let mut s = c.prepare_cached(
                "SELECT kind, name, state, reason, updated FROM states \
                WHERE cluster_id = ?1 ORDER BY id",
            )?;
            let rows = s.query_map([cluster_id], |r| {
                Ok(StateEntry {
                    kind: r.get(0)?,
                    name: r.get(1)?,
                    state: r.get(2)?,
                    reason: r.get(3)?,
                    updated: r.get(4)?,
                })
            })?;
            rows.collect()
        })
    }

    /// Sets a cluster's state (and its next state change time), recording the history.
    pub fn set_cluster_state(
        &self,
        id: i64,
        state: &str,
        reason: &str,
        phase_at: Option<f64>,
    ) -> Result<(), StoreError> {
        let now = now_text();
        self.with(|c| {
            c.execute(
                "UPDATE clusters SET state = ?2, reason = ?3, phase_at = ?4, updated = ?5 \
                WHERE id = ?1",
                params![id, state, reason, phase_at, now],
            )?;
            c.execute(
                "INSERT INTO states(cluster_id, kind, name, state, reason, updated) SELECT id, \
                    'cluster', name, ?2, ?3, ?4 FROM clusters WHERE id = ?1",
                params![id, state, reason, now],
            )?;
            Ok(())
        })
    }

    /// Replaces the rules a cluster reports (wire form); false when there is no such cluster.
    pub fn set_cluster_firewall(
        &self,
        id: i64,
        firewall: &serde_json::Value,
    ) -> Result<bool, StoreError> {
        let now = now_text();
        self.with(|c| {
            Ok(c.execute(
                "UPDATE clusters SET firewall = ?2, updated = ?3 WHERE id = ?1",
                params![id, firewall.to_string(), now],
            )? > 0)
        })
    }

    /// A cluster that failed: it, its scheduler and its active workers in `error`, with the reason.
    pub fn fail_cluster(&self, id: i64, reason: &str) -> Result<(), StoreError> {
        self.set_scheduler_state(id, "error", reason)?;
        self.set_cluster_state(id, "error", reason, None)?;
        self.with(|c| {
            c.execute(
                "UPDATE workers SET fate = ?2 WHERE cluster_id = ?1 AND state NOT IN ('stopped', \
                    'error')",
                params![id, format!("error: its cluster failed: {reason}")],
            )
            .map(|_| ())
        })?;
        self.set_workers_state(id, "error", None)
    }

    /// Sets the scheduler's state.
    pub fn set_scheduler_state(
        &self,
        id: i64,
        state: &str,
        reason: &str,
    ) -> Result<(), StoreError> {
        let now = now_text();
        self.with(|c| {
            c.execute(
                "UPDATE clusters SET scheduler_state = ?2, updated = ?3 WHERE id = ?1",
                params![id, state, now],
            )?;
            c.execute(
                "INSERT INTO states(cluster_id, kind, name, state, reason, updated) SELECT id, \
                    'scheduler', name || '-scheduler', ?2, ?3, ?4 FROM clusters WHERE id = ?1",
                params![id, state, reason, now],
            )?;
            Ok(())
        })
    }

    /// Sets the state of every active worker of a cluster.
    pub fn set_workers_state(
        &self,
        cluster_id: i64,
        state: &str,
        phase_at: Option<f64>,
    ) -> Result<(), StoreError> {
        let now = now_text();
        self.with(|c| {
            c.execute(
                "UPDATE workers SET state = ?2, phase_at = ?3, updated = ?4 WHERE cluster_id = ?1 \
                    AND state NOT IN ('stopped', 'error')",
                params![cluster_id, state, phase_at, now],
            )
            .map(|_| ())
        })
    }

    /// Sets one worker's state.
    pub fn set_worker_state(
        &self,
        worker_id: i64,
        state: &str,
        phase_at: Option<f64>,
    ) -> Result<(), StoreError> {
        let now = now_text();
        self.with(|c| {
            c.execute(
                "UPDATE workers SET state = ?2, phase_at = ?3, updated = ?4 WHERE id = ?1",
                params![worker_id, state, phase_at, now],
            )
            .map(|_| ())
        })
    }

    /// Adds `n` workers to a cluster in `pending`, raising its desired count; returns them.
    pub fn add_workers(
        &self,
        cluster_id: i64,
        n: i64,
        phase_at: f64,
    ) -> Result<Vec<WorkerRow>, StoreError> {
        let now = now_text();
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let tx = conn.transaction()?;
        let name: String =
            row(&tx, "SELECT name FROM clusters WHERE id = ?1", [cluster_id], |r| r.get(0))?;
        let mut ids = Vec::new();
        for _ in 0..n {
            ids.push(insert_worker(&tx, cluster_id, &name, "pending", Some(phase_at), &now)?);
        }
        tx.execute(
            "UPDATE clusters SET desired_workers = desired_workers + ?2, updated = ?3 \
            WHERE id = ?1",
            params![cluster_id, n, now],
        )?;
        let mut out = Vec::new();
        for id in ids {
            out.push(row(
                &tx,
                &format!("SELECT {WORKER_COLUMNS} FROM workers WHERE id = ?1"),
                [id],
                worker_from_row,
            )?);
        }
        tx.commit()?;
        Ok(out)
    }

    /// Stops the named active workers of a cluster, lowering its desired count; returns how many.
    pub fn stop_workers(
        &self,
        cluster_id: i64,
        names: &[String],
        phase_at: f64,
    ) -> Result<usize, StoreError> {
        let now = now_text();
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let tx = conn.transaction()?;
        let mut n = 0;
        for name in names {
            n += tx.execute(
                "UPDATE workers SET state = 'stopping', phase_at = ?3, updated = ?4 WHERE \
                    cluster_id = ?1 AND name = ?2 AND state NOT IN ('stopping', 'stopped', \
                    'error')",
                params![cluster_id, name, phase_at, now],
            )?;
        }
        tx.execute(
            "UPDATE clusters SET desired_workers = MAX(0, desired_workers - ?2), updated = ?3 \
                WHERE id = ?1",
            params![cluster_id, n as i64, now],
        )?;
        tx.commit()?;
        Ok(n)
    }

    /// Clusters with a state change due at or before `now`.
    pub fn due_clusters(&self, now: f64) -> Result<Vec<ClusterRow>, StoreError> {
        self.with(|c| {
            let mut s = c.prepare_cached(&format!(
                "SELECT {CLUSTER_COLUMNS} FROM clusters WHERE phase_at \
                    IS NOT NULL AND phase_at <= ?1"
            ))?;
            let rows = s.query_map([now], cluster_from_row)?;
            rows.collect()
        })
    }

    /// Workers with a state change due at or before `now`.
    pub fn due_workers(&self, now: f64) -> Result<Vec<WorkerRow>, StoreError> {
        self.with(|c| {
            let mut s = c.prepare_cached(&format!(
                "SELECT {WORKER_COLUMNS} FROM workers WHERE phase_at IS NOT NULL AND phase_at <= ?1"
            ))?;
            let rows = s.query_map([now], worker_from_row)?;
            rows.collect()
        })
    }

    /// The earliest pending state change, if any.
    pub fn next_due(&self) -> Result<Option<f64>, StoreError> {
        self.with(|c| {
            row(
                c,
                "SELECT MIN(t) FROM (SELECT MIN(phase_at) AS t FROM clusters WHERE phase_at IS \
                    NOT NULL UNION ALL SELECT MIN(phase_at) FROM workers WHERE phase_at IS NOT \
                    NULL)",
                [],
                |r| r.get(0),
            )
        })
    }
}

fn insert_worker(
    tx: &rusqlite::Transaction<'_>,
    cluster_id: i64,
    cluster_name: &str,
    state: &str,
    phase_at: Option<f64>,
    now: &str,
) -> rusqlite::Result<i64> {
    let n: i64 =
        row(tx, "SELECT COUNT(*) FROM workers WHERE cluster_id = ?1", [cluster_id], |r| r.get(0))?;
    tx.execute(
        "INSERT INTO workers(cluster_id, name, state, created, updated, phase_at, private_ip) \
            VALUES (?1, ?2, ?3, ?4, ?4, ?5, ?6)",
        params![
            cluster_id,
            format!("{cluster_name}-worker-{}", n + 1),
            state,
            now,
            phase_at,
            format!("10.{}.{}.{}", (cluster_id / 250) % 250, cluster_id % 250, 20 + n % 200)
        ],
    )?;
    Ok(tx.last_insert_rowid())
}

/// One row of `sql`, through the connection's cache of prepared statements: the same few queries
/// answer every read, and preparing one again costs more than running it.
pub(crate) fn row<T>(
    c: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    f: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    c.prepare_cached(sql)?.query_row(params, f)
}
