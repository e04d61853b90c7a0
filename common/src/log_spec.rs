//! The `KSC_LOG` grammar (`level` or `level:/path`), shared by the configuration (which refuses a
//! bad value) and the `logging` module (which installs what it says).

use std::path::PathBuf;

use log::LevelFilter;

/// Parsed `KSC_LOG`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSpec {
    /// Maximum level logged.
    pub level: LevelFilter,
    /// File to append to; stderr when `None`.
    pub file: Option<PathBuf>,
}

impl LogSpec {
    /// Parses `level` or `level:/path`. Levels: off, error, warn, info, debug, trace.
    pub fn parse(text: &str) -> Result<LogSpec, String> {
        let text = text.trim();
        let (level, file) = match text.split_once(':') {
            Some((l, f)) if !f.trim().is_empty() => (l, Some(PathBuf::from(f.trim()))),
            Some((_, _)) => return Err(format!("{text:?}: missing file name after ':'")),
            None => (text, None),
        };
        let level = match level.trim().to_ascii_lowercase().as_str() {
            "off" | "none" => LevelFilter::Off,
            "error" => LevelFilter::Error,
            "warn" | "warning" => LevelFilter::Warn,
            "info" => LevelFilter::Info,
            "debug" => LevelFilter::Debug,
            "trace" => LevelFilter::Trace,
            other => {
                return Err(format!(
                    "unknown log level {other:?} (use off, error, warn, info, debug or trace, optionally :/path/file)"
                ))
            }
        };
        Ok(LogSpec { level, file })
    }
}

impl Default for LogSpec {
    fn default() -> LogSpec {
        LogSpec {
            level: LevelFilter::Warn,
            file: None,
        }
    }
}
