//! Logging through the `log` facade: `KSC_LOG=level` or `KSC_LOG=level:/path/file`.
//!
//! Output goes to stderr or a file, never stdout (stdout belongs to openssl/pkcs11-tool output).
//! Nothing in this crate logs a token, secret or PIN; the sink cannot know what is secret, so the
//! discipline is at the call sites. The one secret the sink can recognise, the userinfo of a URL
//! (`https://user:PW@host`), it also removes from every line. Default level: warn.
//!
//! Each line starts with an RFC 3339 UTC timestamp; `KSC_LOG_FORMAT=json` writes one JSON object
//! per line instead (`ts`, `level`, `pid`, `target`, `msg`). Records of other crates (rustls,
//! hyper, reqwest internals) only appear at `trace`: at `debug` a user wants our requests, not
//! TLS handshake details.

use std::fs::File;
use std::io::Write;
use std::sync::{Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use log::{LevelFilter, Log, Metadata, Record};

use crate::config::Config;

pub use crate::log_spec::LogSpec;

struct Logger {
    level: LevelFilter,
    json: bool,
    file: Option<Mutex<File>>,
}

/// True for records of this project's crates (ks_common, ksc, the provider `keyserver`, the
/// PKCS#11 module `pkcs11ks`).
fn is_ours(target: &str) -> bool {
    target.starts_with("ks_")
        || target.starts_with("ksc")
        || target.starts_with("keyserver")
        || target.starts_with("pkcs11ks")
}

/// `2026-11-30T00:51:07.123Z` for `t`.
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (y, m, day) = crate::date::civil_from_days((secs / 86400) as i64);
    let rem = secs % 86400;
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// One log line (with its newline) in the configured format.
fn format_line(json: bool, now: SystemTime, record: &Record<'_>) -> String {
    let ts = rfc3339(now);
    if json {
        let v = serde_json::json!({
            "ts": ts,
            "level": record.level().as_str(),
            "pid": std::process::id(),
            "target": record.target(),
            "msg": record.args().to_string(),
        });
        format!("{v}\n")
    } else {
        format!(
            "{ts} keyserver[{}] {} {}: {}\n",
            std::process::id(),
            record.level(),
            record.target(),
            record.args()
        )
    }
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= self.level
            && (is_ours(metadata.target()) || self.level == LevelFilter::Trace)
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let line = crate::redact::userinfo(&format_line(self.json, SystemTime::now(), record));
        // Logging must never fail the caller: write errors are dropped.
        match &self.file {
            Some(f) => {
                if let Ok(mut f) = f.lock() {
                    let _ = f.write_all(line.as_bytes());
                }
            }
            None => {
                let _ = std::io::stderr().write_all(line.as_bytes());
            }
        }
    }

    fn flush(&self) {
        if let Some(f) = &self.file {
            if let Ok(mut f) = f.lock() {
                let _ = f.flush();
            }
        }
    }
}

static INIT: OnceLock<()> = OnceLock::new();

/// Installs the logger described by `config.log` (default: warn to stderr). Idempotent: only the
/// first call in a process has an effect. If the host already installed a `log` logger, that one
/// is kept. An unopenable log file falls back to stderr with one warning.
pub fn init(config: &Config) {
    INIT.get_or_init(|| {
        let spec = config
            .log
            .as_deref()
            .and_then(|s| LogSpec::parse(s).ok())
            .unwrap_or_default();
        let mut file_error = None;
        let file = spec.file.as_ref().and_then(|p| {
            match std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
            {
                Ok(f) => Some(Mutex::new(f)),
                Err(e) => {
                    file_error = Some(format!("cannot open KSC_LOG file {}: {e}", p.display()));
                    None
                }
            }
        });
        let logger = Logger {
            level: spec.level,
            json: config.log_json,
            file,
        };
        if log::set_boxed_logger(Box::new(logger)).is_ok() {
            log::set_max_level(spec.level);
        }
        if let Some(e) = file_error {
            log::warn!("{e}; logging to stderr");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn lines_have_rfc3339_timestamps_and_json() {
        let t = UNIX_EPOCH + std::time::Duration::from_millis(86_401_250);
        assert_eq!(rfc3339(t), "1970-01-02T00:00:01.250Z");
        let args = format_args!("signed: key key1");
        let rec = Record::builder()
            .args(args)
            .level(log::Level::Info)
            .target("ks_common::client")
            .build();
        let text = format_line(false, t, &rec);
        assert!(
            text.starts_with("1970-01-02T00:00:01.250Z keyserver["),
            "{text}"
        );
        assert!(
            text.ends_with("INFO ks_common::client: signed: key key1\n"),
            "{text}"
        );
        let v: serde_json::Value = serde_json::from_str(&format_line(true, t, &rec)).unwrap();
        assert_eq!(v["ts"], "1970-01-02T00:00:01.250Z");
        assert_eq!(v["level"], "INFO");
        assert_eq!(v["msg"], "signed: key key1");
    }

    #[test]
    fn other_crates_only_at_trace() {
        let l = |level| Logger {
            level,
            json: false,
            file: None,
        };
        let meta = |target| {
            Metadata::builder()
                .level(log::Level::Debug)
                .target(target)
                .build()
        };
        assert!(l(LevelFilter::Debug).enabled(&meta("ks_common::http")));
        assert!(!l(LevelFilter::Debug).enabled(&meta("rustls::client::hs")));
        assert!(l(LevelFilter::Trace).enabled(&meta("rustls::client::hs")));
    }

    #[test]
    fn parse_specs() {
        assert_eq!(LogSpec::parse("debug").unwrap().level, LevelFilter::Debug);
        let s = LogSpec::parse("info:/tmp/ks.log").unwrap();
        assert_eq!(s.level, LevelFilter::Info);
        assert_eq!(s.file, Some(PathBuf::from("/tmp/ks.log")));
        assert!(LogSpec::parse("debug:").is_err());
        assert!(LogSpec::parse("verbose").is_err());
        assert_eq!(LogSpec::parse("OFF").unwrap().level, LevelFilter::Off);
    }
}
