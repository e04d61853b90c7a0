//! Entry points for the fuzz targets (`fuzz/`), for parsers no public function reaches.
//! Not part of the API: hidden from the docs and free to change.

use crate::client::Client;
use crate::config::Config;
use crate::keys::KeyEntry;
use crate::sign::SignRequest;
use crate::Result;

/// Runs a sign order's 2xx reply `body` through exactly what [`Client::sign`] does with it
/// (JSON, `keyid`, `requestid`, hex `result`, decoding and local verification against `entry`).
#[doc(hidden)]
pub fn sign_reply(entry: &KeyEntry, request: &SignRequest, body: &[u8]) -> Result<Vec<u8>> {
    // No I/O: a client is only a configuration until it sends something.
    let client = Client::new(Config::default());
    client.finish_sign(entry, request, body, "00000000-0000-4000-8000-000000000000")
}
