//! Logging through the `log` facade: `KSC_LOG=level` or `KSC_LOG=level:/path/file`.
//!
//! Output goes to stderr or a file, never stdout (stdout belongs to openssl/pkcs11-tool output).
//! Nothing in this crate logs a token, secret or PIN; the sink cannot know what is secret, so the
//! discipline is at the call sites. The one secret the sink can recognise, the userinfo of a URL
//! (`https://user:PW@host`), it also removes from every line. Default level: warn.

use std::fs::File;
use std::io::Write;
use std::sync::{Mutex, OnceLock};

use log::{LevelFilter, Log, Metadata, Record};

use crate::config::Config;

pub use crate::log_spec::LogSpec;

struct Logger {
    level: LevelFilter,
    file: Option<Mutex<File>>,
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= self.level
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let line = format!(
            "keyserver[{}] {} {}: {}\n",
            std::process::id(),
            record.level(),
            record.target(),
            crate::redact::userinfo(&record.args().to_string())
        );
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
