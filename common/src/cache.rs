//! The per-user cache across processes: the key catalog and client-credential tokens, so a
//! process that signs once makes one request (the sign order) instead of three.
//!
//! Where: `KSC_CACHE=<absolute dir>`, else `$XDG_CACHE_HOME/keyserver-signing`, else
//! `~/.cache/keyserver-signing`. The directory is 0700 and every file 0600, owned by the user;
//! anything else found there (another owner, wider permissions, a symlink, unparsable content)
//! is ignored and replaced on the next write. Entries are named by a SHA-256 of what they
//! depend on (server URL, identity, `KSC_CA_FILE`), never hold a client secret, and are written
//! to a temporary file then renamed, so a reader never sees half an entry.
//!
//! The cache only saves requests; it never decides a signature: every signature is still
//! verified against a certificate, and a cached certificate that does not verify is replaced
//! by a fresh catalog before the error is final (see the `client` module).

use std::io::{Read as _, Write as _};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use sha2::Digest as _;

use crate::config::Config;

/// Name of our directory under the XDG cache directory.
pub const DIR_NAME: &str = "keyserver-signing";
/// Largest entry read back (a catalog body is bounded by the HTTP layer to 4 MiB).
const MAX_ENTRY: u64 = crate::http::MAX_BODY as u64 + 64 * 1024;

/// The cache directory of one client. No I/O until the first read or write.
#[derive(Debug)]
pub struct DiskCache {
    dir: PathBuf,
    /// Whether the directory is ours and private (checked once).
    ready: OnceLock<bool>,
}

/// The effective user id.
fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

impl DiskCache {
    /// The cache `config` asks for, or `None` when it is off or no directory can be named.
    pub fn from_config(config: &Config) -> Option<DiskCache> {
        if !config.cache {
            return None;
        }
        let dir = match &config.cache_dir {
            Some(d) => d.clone(),
            None => {
                let xdg = std::env::var_os("XDG_CACHE_HOME")
                    .map(PathBuf::from)
                    .filter(|p| p.is_absolute());
                let home = std::env::var_os("HOME")
                    .map(PathBuf::from)
                    .filter(|p| p.is_absolute())
                    .map(|h| h.join(".cache"));
                xdg.or(home)?.join(DIR_NAME)
            }
        };
        Some(DiskCache::at(dir))
    }

    /// A cache in `dir` (created 0700 on first write).
    pub fn at(dir: PathBuf) -> DiskCache {
        DiskCache {
            dir,
            ready: OnceLock::new(),
        }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn ready(&self) -> bool {
        *self.ready.get_or_init(|| match self.prepare() {
            Ok(()) => true,
            Err(why) => {
                log::warn!("cache {} not used: {why}", self.dir.display());
                false
            }
        })
    }

    /// Creates the directory 0700, or checks an existing one is ours (tightening its mode).
    fn prepare(&self) -> std::result::Result<(), String> {
        if let Some(parent) = self.dir.parent() {
            std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
        }
        match std::fs::DirBuilder::new().mode(0o700).create(&self.dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e.to_string()),
        }
        let meta = std::fs::symlink_metadata(&self.dir).map_err(|e| e.to_string())?;
        if !meta.is_dir() {
            return Err("not a directory".into());
        }
        if meta.uid() != euid() {
            return Err(format!("owned by uid {}, not by this user", meta.uid()));
        }
        if meta.mode() & 0o077 != 0 {
            std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| format!("cannot make it private: {e}"))?;
        }
        Ok(())
    }

    /// The entry `name`, if it exists and is a private regular file of this user.
    pub fn read(&self, name: &str) -> Option<Vec<u8>> {
        if !self.ready() {
            return None;
        }
        let path = self.dir.join(name);
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(&path)
            .ok()?;
        let meta = file.metadata().ok()?;
        if !meta.is_file() || meta.uid() != euid() || meta.mode() & 0o077 != 0 {
            log::debug!(
                "cache entry {} ignored: not a private file of this user",
                path.display()
            );
            return None;
        }
        if meta.len() > MAX_ENTRY {
            log::debug!("cache entry {} ignored: too large", path.display());
            return None;
        }
        let mut data = Vec::new();
        file.take(MAX_ENTRY).read_to_end(&mut data).ok()?;
        Some(data)
    }

    /// Replaces the entry `name` (0600, atomically). Failures only cost the next process a
    /// request, so they are logged, not returned.
    pub fn write(&self, name: &str, data: &[u8]) {
        if !self.ready() {
            return;
        }
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let tmp = self
            .dir
            .join(format!(".{name}.{}.{nanos}.tmp", std::process::id()));
        let result = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)
            .and_then(|mut f| f.write_all(data))
            .and_then(|()| std::fs::rename(&tmp, self.dir.join(name)));
        if let Err(e) = result {
            log::debug!("cache entry {name} not written: {e}");
            let _ = std::fs::remove_file(&tmp);
        }
    }

    /// Deletes the entry `name` (a token the server refused).
    pub fn remove(&self, name: &str) {
        if self.ready() {
            let _ = std::fs::remove_file(self.dir.join(name));
        }
    }
}

/// An entry name: `kind` and a SHA-256 over `parts` (so no URL, id or secret appears in it).
pub fn entry_name(kind: &str, parts: &[&str]) -> String {
    let mut h = sha2::Sha256::new();
    h.update(b"ks-cache-v1");
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p.as_bytes());
    }
    format!("{}.{kind}.json", hex::encode(&h.finalize()[..16]))
}

/// Seconds since the Unix epoch now.
pub fn now_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_files_only() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("nested").join(DIR_NAME);
        let cache = DiskCache::at(dir.clone());
        assert_eq!(cache.read("a.json"), None);
        cache.write("a.json", b"hello");
        assert_eq!(cache.read("a.json").as_deref(), Some(&b"hello"[..]));
        let mode = |p: &Path| std::fs::metadata(p).unwrap().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("a.json")), 0o600);
        // Too open: ignored, then replaced by the next write with a private file.
        std::fs::set_permissions(dir.join("a.json"), std::fs::Permissions::from_mode(0o644))
            .unwrap();
        assert_eq!(cache.read("a.json"), None);
        cache.write("a.json", b"again");
        assert_eq!(mode(&dir.join("a.json")), 0o600);
        assert_eq!(cache.read("a.json").as_deref(), Some(&b"again"[..]));
        // A symlink is not followed.
        std::fs::write(tmp.path().join("elsewhere"), b"x").unwrap();
        std::os::unix::fs::symlink(tmp.path().join("elsewhere"), dir.join("link.json")).unwrap();
        assert_eq!(cache.read("link.json"), None);
        cache.remove("a.json");
        assert_eq!(cache.read("a.json"), None);
        // No temporary files left behind.
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");
    }

    #[test]
    fn open_directory_is_tightened_and_foreign_one_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join(DIR_NAME);
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let cache = DiskCache::at(dir.clone());
        cache.write("x.json", b"1");
        assert_eq!(std::fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
        // A regular file where the directory should be: the cache is off, nothing breaks.
        let file = tmp.path().join("file");
        std::fs::write(&file, b"").unwrap();
        let cache = DiskCache::at(file.clone());
        cache.write("x.json", b"1");
        assert_eq!(cache.read("x.json"), None);
        if euid() == 0 {
            // Root can hand the directory to someone else: then it is not used.
            let foreign = tmp.path().join("foreign");
            std::fs::create_dir(&foreign).unwrap();
            std::os::unix::fs::chown(&foreign, Some(65534), Some(65534)).unwrap();
            let cache = DiskCache::at(foreign.clone());
            cache.write("x.json", b"1");
            assert_eq!(cache.read("x.json"), None);
            assert!(!foreign.join("x.json").exists());
            // And a file of another owner inside ours is ignored.
            let ours = DiskCache::at(dir.clone());
            std::os::unix::fs::chown(dir.join("x.json"), Some(65534), None).unwrap();
            assert_eq!(ours.read("x.json"), None);
        }
    }

    #[test]
    fn names_hide_their_inputs() {
        let a = entry_name("token", &["https://auth", "client", "s3cret"]);
        assert!(a.ends_with(".token.json") && !a.contains("s3cret") && !a.contains("client"));
        assert_ne!(a, entry_name("token", &["https://auth", "client", "other"]));
        // Length-prefixed: moving a boundary changes the name.
        assert_ne!(entry_name("k", &["ab", "c"]), entry_name("k", &["a", "bc"]));
    }
}
