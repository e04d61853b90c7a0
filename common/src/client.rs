//! The KeyServer client: the one object the adapters and `ksc` use.

use std::sync::Arc;
use std::time::Duration;

use crate::config::Config;
use crate::error::{Error, ErrorKind, Result};
use crate::keys::KeyEntry;
use crate::operation::{OperationSpec, OperationStatus};
use crate::sign::SignRequest;

/// A KeyServer client. `Send + Sync`; share it in an `Arc`.
pub struct Client {
    config: Config,
}

fn todo_err() -> Error {
    Error::new(ErrorKind::Unsupported, "not implemented yet")
}

impl Client {
    /// A client for `config`; does no I/O (the HTTPS client is created on first use).
    pub fn new(config: Config) -> Client {
        Client { config }
    }

    /// The configuration this client uses.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The key catalog (`GET /api/keys`), fetched once per process and cached.
    pub fn keys(&self) -> Result<Arc<Vec<KeyEntry>>> {
        Err(todo_err())
    }

    /// One key of the catalog; `NotFound` names the known keys.
    pub fn key(&self, keyid: &str) -> Result<KeyEntry> {
        let keys = self.keys()?;
        keys.iter()
            .find(|k| k.keyid == keyid)
            .cloned()
            .ok_or_else(|| Error::new(ErrorKind::NotFound, "no such key").with_key(keyid))
    }

    /// Signs under the configured operation and verifies the result locally.
    pub fn sign(&self, keyid: &str, request: &SignRequest) -> Result<Vec<u8>> {
        let _ = (keyid, request);
        Err(todo_err())
    }

    /// A valid bearer token.
    pub fn token(&self) -> Result<String> {
        Err(todo_err())
    }

    /// Creates an operation; returns its id.
    pub fn create_operation(&self, spec: &OperationSpec) -> Result<String> {
        let _ = spec;
        Err(todo_err())
    }

    /// The status of operation `id`.
    pub fn operation(&self, id: &str) -> Result<OperationStatus> {
        let _ = id;
        Err(todo_err())
    }

    /// Approves operation `id` (extension).
    pub fn approve(&self, id: &str) -> Result<OperationStatus> {
        let _ = id;
        Err(todo_err())
    }

    /// Rejects operation `id` (extension).
    pub fn reject(&self, id: &str) -> Result<OperationStatus> {
        let _ = id;
        Err(todo_err())
    }

    /// Waits until operation `id` is approved, or `timeout` passes.
    pub fn wait_for_approval(
        &self,
        id: &str,
        timeout: Duration,
        progress: &mut dyn FnMut(&OperationStatus),
    ) -> Result<OperationStatus> {
        let _ = (id, timeout, progress);
        Err(todo_err())
    }
}
