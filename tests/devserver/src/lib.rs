//! The bundled dev KeyServer: a faithful, strict stand-in for KeyServer
//! (see `shared/API.md`), used by the tutorial's default mode and by every
//! end-to-end test. [`harness::DevServer`] starts one for a test.
//!
//! One module per concern: [`config`], [`tls`], [`jwt`] and [`users`] (who
//! may do what), [`keys`]/[`keyring`]/[`certs`] (key material), [`operations`]
//! and [`signorders`] (the rules), [`store`] and [`audit`] (durable state),
//! [`limits`] (failed credential checks), [`faults`], [`stats`], [`api`] (routing), [`server`] (listeners) and
//! [`web`] (the approvers' web page under `/ui/`).

#![warn(missing_docs)]

pub mod api;
pub mod audit;
pub mod certs;
pub mod client;
pub mod config;
pub mod error;
pub mod faults;
pub mod harness;
pub mod jwt;
pub mod keyring;
pub mod keys;
pub mod limits;
pub mod operations;
pub mod server;
pub mod signorders;
pub mod stats;
pub mod store;
pub mod tls;
pub mod users;
pub mod util;
pub mod web;
