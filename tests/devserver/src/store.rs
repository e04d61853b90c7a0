//! The embedded database (redb) in `<data>/state.redb`: operations,
//! requestids and the audit log.
//!
//! Every acknowledged change is committed (fsync, `Durability::Immediate`)
//! before the reply is sent, so kill -9 and a restart lose nothing a client
//! was told about. All methods block: call them from `spawn_blocking`.

use std::path::Path;

use redb::{Database, ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::audit::AuditEntry;
use crate::error::{ApiError, ApiResult};
use crate::operations::Operation;

const OPERATIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("operations");
const REQUESTS: TableDefinition<&str, &[u8]> = TableDefinition::new("requestids");
const AUDIT: TableDefinition<u64, &[u8]> = TableDefinition::new("audit");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

/// A stored sign-order answer, replayed for a repeated requestid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredSign {
    /// Fingerprint of the request (operation, key, input, format) so a reused
    /// requestid with a different request is refused instead of replayed.
    pub fingerprint: String,
    /// The 201 body.
    pub response: serde_json::Value,
}

/// The database.
pub struct Store {
    db: Database,
}

fn db_err(e: impl std::fmt::Display) -> ApiError {
    ApiError::internal(format!("database error: {e}"))
}

fn decode_op(bytes: &[u8]) -> ApiResult<Operation> {
    serde_json::from_slice(bytes).map_err(db_err)
}

fn put_audit(tx: &redb::WriteTransaction, mut entry: AuditEntry) -> ApiResult<()> {
    let mut meta = tx.open_table(META).map_err(db_err)?;
    let seq = meta
        .get("next_audit")
        .map_err(db_err)?
        .map(|v| v.value())
        .unwrap_or(1);
    meta.insert("next_audit", seq + 1).map_err(db_err)?;
    entry.seq = seq;
    let bytes = serde_json::to_vec(&entry).map_err(db_err)?;
    let mut audit = tx.open_table(AUDIT).map_err(db_err)?;
    audit.insert(seq, bytes.as_slice()).map_err(db_err)?;
    Ok(())
}

impl Store {
    /// Opens (or creates) the database and its tables.
    pub fn open(path: &Path) -> Result<Store, String> {
        let db = Database::create(path)
            .map_err(|e| format!("cannot open database {}: {e}", path.display()))?;
        let tx = db.begin_write().map_err(|e| e.to_string())?;
        {
            tx.open_table(OPERATIONS).map_err(|e| e.to_string())?;
            tx.open_table(REQUESTS).map_err(|e| e.to_string())?;
            tx.open_table(AUDIT).map_err(|e| e.to_string())?;
            tx.open_table(META).map_err(|e| e.to_string())?;
        }
        tx.commit().map_err(|e| e.to_string())?;
        Ok(Store { db })
    }

    /// Creates an operation with the next id; `build` fills it in.
    pub fn create_operation(
        &self,
        build: impl FnOnce(String) -> Operation,
        audit: AuditEntry,
    ) -> ApiResult<Operation> {
        let tx = self.db.begin_write().map_err(db_err)?;
        let op = {
            let mut meta = tx.open_table(META).map_err(db_err)?;
            let id = meta
                .get("next_operation")
                .map_err(db_err)?
                .map(|v| v.value())
                .unwrap_or(1);
            meta.insert("next_operation", id + 1).map_err(db_err)?;
            drop(meta);
            let op = build(id.to_string());
            let bytes = serde_json::to_vec(&op).map_err(db_err)?;
            let mut ops = tx.open_table(OPERATIONS).map_err(db_err)?;
            ops.insert(op.id.as_str(), bytes.as_slice())
                .map_err(db_err)?;
            op
        };
        put_audit(&tx, audit.op(&op.id))?;
        tx.commit().map_err(db_err)?;
        Ok(op)
    }

    /// Reads one operation.
    pub fn operation(&self, id: &str) -> ApiResult<Option<Operation>> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let ops = tx.open_table(OPERATIONS).map_err(db_err)?;
        let v = ops.get(id).map_err(db_err)?;
        v.map(|g| decode_op(g.value())).transpose()
    }

    /// Reads every operation (ordered by id as text; callers sort as needed).
    pub fn operations(&self) -> ApiResult<Vec<Operation>> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let ops = tx.open_table(OPERATIONS).map_err(db_err)?;
        let mut out = Vec::new();
        for item in ops.iter().map_err(db_err)? {
            let (_, v) = item.map_err(db_err)?;
            out.push(decode_op(v.value())?);
        }
        Ok(out)
    }

    /// Read-modify-write of one operation in a transaction. `change` decides;
    /// on error nothing but the audit entry (with the error code) is written.
    pub fn update_operation(
        &self,
        id: &str,
        change: impl FnOnce(&mut Operation) -> ApiResult<()>,
        audit: AuditEntry,
    ) -> ApiResult<Operation> {
        let tx = self.db.begin_write().map_err(db_err)?;
        let result = {
            let mut ops = tx.open_table(OPERATIONS).map_err(db_err)?;
            let current = ops.get(id).map_err(db_err)?.map(|g| decode_op(g.value()));
            match current {
                None => Err(ApiError::not_found(format!(
                    "operation {id} does not exist"
                ))),
                Some(op) => {
                    let mut op = op?;
                    match change(&mut op) {
                        Ok(()) => {
                            let bytes = serde_json::to_vec(&op).map_err(db_err)?;
                            ops.insert(id, bytes.as_slice()).map_err(db_err)?;
                            Ok(op)
                        }
                        Err(e) => Err(e),
                    }
                }
            }
        };
        let outcome = match &result {
            Ok(_) => "ok",
            Err(e) => e.code,
        };
        put_audit(&tx, audit.op(id).outcome(outcome))?;
        tx.commit().map_err(db_err)?;
        result
    }

    /// A stored sign answer for `request_key` (caller + requestid).
    pub fn stored_sign(&self, request_key: &str) -> ApiResult<Option<StoredSign>> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let t = tx.open_table(REQUESTS).map_err(db_err)?;
        let v = t.get(request_key).map_err(db_err)?;
        v.map(|g| serde_json::from_slice(g.value()).map_err(db_err))
            .transpose()
    }

    /// Commits a sign order: re-checks the operation, counts one use, stores
    /// the answer under the requestid and audits, all in one transaction.
    /// Returns the stored answer instead if the requestid won a race.
    pub fn commit_sign(
        &self,
        op_id: &str,
        keyid: &str,
        now_ms: u64,
        request_key: Option<&str>,
        stored: &StoredSign,
        audit: AuditEntry,
    ) -> ApiResult<Option<StoredSign>> {
        let tx = self.db.begin_write().map_err(db_err)?;
        if let Some(rk) = request_key {
            let t = tx.open_table(REQUESTS).map_err(db_err)?;
            let prior = t.get(rk).map_err(db_err)?;
            if let Some(g) = prior {
                let s: StoredSign = serde_json::from_slice(g.value()).map_err(db_err)?;
                return Ok(Some(s));
            }
        }
        let checked = {
            let mut ops = tx.open_table(OPERATIONS).map_err(db_err)?;
            let current = ops
                .get(op_id)
                .map_err(db_err)?
                .map(|g| decode_op(g.value()));
            let mut op = match current {
                None => {
                    return Err(ApiError::not_found(format!(
                        "operation {op_id} does not exist"
                    )))
                }
                Some(op) => op?,
            };
            match op.check_can_sign(keyid, now_ms) {
                Ok(()) => {
                    op.consume(keyid);
                    let bytes = serde_json::to_vec(&op).map_err(db_err)?;
                    ops.insert(op_id, bytes.as_slice()).map_err(db_err)?;
                    Ok(())
                }
                Err(e) => Err(e),
            }
        };
        match checked {
            Ok(()) => {
                if let Some(rk) = request_key {
                    let mut t = tx.open_table(REQUESTS).map_err(db_err)?;
                    let bytes = serde_json::to_vec(stored).map_err(db_err)?;
                    t.insert(rk, bytes.as_slice()).map_err(db_err)?;
                }
                put_audit(&tx, audit)?;
                tx.commit().map_err(db_err)?;
                Ok(None)
            }
            Err(e) => {
                put_audit(&tx, audit.outcome(e.code))?;
                tx.commit().map_err(db_err)?;
                Err(e)
            }
        }
    }

    /// Appends an audit entry on its own (refusals before any state change).
    pub fn audit(&self, entry: AuditEntry) -> ApiResult<()> {
        let tx = self.db.begin_write().map_err(db_err)?;
        put_audit(&tx, entry)?;
        tx.commit().map_err(db_err)
    }

    /// The audit log, oldest first (at most the last `limit` entries).
    pub fn audit_log(&self, limit: usize) -> ApiResult<Vec<AuditEntry>> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let t = tx.open_table(AUDIT).map_err(db_err)?;
        let len = t.len().map_err(db_err)? as usize;
        let mut out = Vec::new();
        for item in t.iter().map_err(db_err)?.skip(len.saturating_sub(limit)) {
            let (_, v) = item.map_err(db_err)?;
            out.push(serde_json::from_slice(v.value()).map_err(db_err)?);
        }
        Ok(out)
    }
}
