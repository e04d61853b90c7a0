//! `ksc sign` for one file or many: every input read and every output checked writable before
//! the first signature is spent, parallel workers over one client, a manifest, and reruns that
//! spend nothing twice.
//!
//! A rerun is safe two ways: an output that already holds a valid signature of its input is
//! kept (no server call), and every sign order carries a requestid derived from operation, key
//! and request, so a server that honours requestids replays the stored answer for an order that
//! was sent but whose signature never reached the disk.

use std::collections::{HashMap, HashSet};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::{json, Value};

use ks_common::error::{Error, ErrorKind};
use ks_common::hash::{HashAlg, Hasher};
use ks_common::keys::KeyEntry;
use ks_common::sign::SignRequest;
use ks_common::Client;

use crate::{request_for, SignArgs};

/// How often a non-terminal run prints a progress line.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// The options `ksc sign` has beyond one `--in`/`--out` pair.
#[derive(Args, Debug)]
pub struct BatchArgs {
    /// File listing the inputs, one path per line (`-` for stdin; empty lines and `#` comments
    /// ignored).
    #[arg(long, value_name = "FILE")]
    pub in_list: Option<PathBuf>,
    /// Directory for the signatures, named `<input file name><suffix>`; needed for more than
    /// one input.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
    /// Suffix of the signature files written into --out-dir.
    #[arg(long, default_value = ".sig", value_parser = parse_suffix)]
    pub suffix: String,
    /// Parallel signing workers (1 to 64), all over this process's connections.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: u16,
    /// Write a manifest (file, sha256, key, signature, status): CSV if FILE ends in .csv,
    /// else JSON.
    #[arg(long, value_name = "FILE")]
    pub manifest: Option<PathBuf>,
    /// Sign again even where the output already holds a valid signature of the input.
    #[arg(long)]
    pub force: bool,
}

fn parse_suffix(s: &str) -> Result<String, String> {
    if s.is_empty() || s.contains('/') || s.contains('\0') {
        return Err("the suffix must be non-empty and contain no '/' (e.g. .sig)".into());
    }
    Ok(s.to_string())
}

/// What happened to one input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Signed,
    AlreadySigned,
    Failed,
    NotAttempted,
}

impl Status {
    fn name(self) -> &'static str {
        match self {
            Status::Signed => "signed",
            Status::AlreadySigned => "already-signed",
            Status::Failed => "failed",
            Status::NotAttempted => "not-attempted",
        }
    }
}

struct Item {
    input: PathBuf,
    out: PathBuf,
    sha256: String,
    request: SignRequest,
    status: Status,
    error: Option<Error>,
    sig_len: usize,
}

fn is_stdio(p: &Path) -> bool {
    p == Path::new("-")
}

fn usage(msg: impl Into<String>) -> Error {
    Error::invalid_input(msg).with_remedy("see ksc sign --help")
}

/// A device or pipe (`/dev/null`, a FIFO): written in place, never replaced by a rename.
fn is_special(p: &Path) -> bool {
    std::fs::metadata(p)
        .map(|m| !m.is_file() && !m.is_dir())
        .unwrap_or(false)
}

/// The inputs named by repeated `--in` (files or directories) and `--in-list`.
fn collect_inputs(args: &SignArgs, batch: &BatchArgs) -> Result<Vec<PathBuf>, Error> {
    let mut inputs = Vec::new();
    for p in &args.input {
        if is_stdio(p) {
            inputs.push(p.clone());
        } else if p.is_dir() {
            let rd = std::fs::read_dir(p)
                .map_err(|e| usage(format!("cannot list directory {}: {e}", p.display())))?;
            let mut files = Vec::new();
            for entry in rd {
                let entry = entry
                    .map_err(|e| usage(format!("cannot list directory {}: {e}", p.display())))?;
                let path = entry.path();
                let name = entry.file_name().to_string_lossy().into_owned();
                // Signatures from an earlier run in the same directory are not inputs.
                if path.is_file() && !name.ends_with(&batch.suffix) && !name.starts_with('.') {
                    files.push(path);
                }
            }
            files.sort();
            inputs.extend(files);
        } else {
            inputs.push(p.clone());
        }
    }
    if let Some(list) = &batch.in_list {
        if is_stdio(list) && inputs.iter().any(|p| is_stdio(p)) {
            return Err(usage("--in - and --in-list - cannot both read stdin"));
        }
        let text = if is_stdio(list) {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
                .map_err(|e| usage(format!("cannot read the input list from stdin: {e}")))?;
            s
        } else {
            std::fs::read_to_string(list)
                .map_err(|e| usage(format!("cannot read --in-list {}: {e}", list.display())))?
        };
        for line in text.lines() {
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() || line.trim_start().starts_with('#') {
                continue;
            }
            inputs.push(PathBuf::from(line));
        }
    }
    if inputs.is_empty() {
        return Err(usage(
            "no input files: give --in FILE (repeatable, or a directory) or --in-list FILE",
        ));
    }
    if inputs.len() > 1 && inputs.iter().any(|p| is_stdio(p)) {
        return Err(usage("stdin (-) can only be signed on its own"));
    }
    Ok(inputs)
}

/// One output path per input, by the naming rule; duplicates and clashes refused.
fn plan_outputs(
    inputs: &[PathBuf],
    args: &SignArgs,
    batch: &BatchArgs,
) -> Result<Vec<PathBuf>, Error> {
    let outs: Vec<PathBuf> = match (&args.out, &batch.out_dir) {
        (Some(_), Some(_)) => {
            return Err(usage("give either --out FILE or --out-dir DIR, not both"))
        }
        (Some(out), None) if inputs.len() == 1 => vec![out.clone()],
        (Some(_), None) => {
            return Err(usage(format!(
                "--out names one signature file but there are {} inputs; use --out-dir DIR",
                inputs.len()
            )))
        }
        (None, Some(dir)) => inputs
            .iter()
            .map(|i| {
                let name = i
                    .file_name()
                    .filter(|_| !is_stdio(i))
                    .ok_or_else(|| usage("stdin (-) has no file name; use --out FILE"))?;
                let mut name = name.to_os_string();
                name.push(&batch.suffix);
                Ok(dir.join(name))
            })
            .collect::<Result<_, Error>>()?,
        (None, None) => {
            return Err(usage(
                "--out FILE (one input) or --out-dir DIR (any number) is required for sign",
            ))
        }
    };
    let mut seen: HashMap<&Path, &Path> = HashMap::new();
    let input_set: HashSet<&Path> = inputs.iter().map(|p| p.as_path()).collect();
    for (o, i) in outs.iter().zip(inputs) {
        if is_stdio(o) || is_special(o) {
            continue;
        }
        if input_set.contains(o.as_path()) {
            return Err(usage(format!(
                "the signature {} would overwrite an input",
                o.display()
            )));
        }
        if let Some(prev) = seen.insert(o, i) {
            return Err(usage(format!(
                "{} and {} would both write {}; sign them in separate runs or rename one",
                prev.display(),
                i.display(),
                o.display()
            )));
        }
    }
    Ok(outs)
}

/// Proves `out` can be written without touching it: its directory exists and accepts a new file,
/// and an existing file is writable. Nothing is left behind.
pub fn check_writable(out: &Path) -> Result<(), Error> {
    if is_stdio(out) {
        return Ok(());
    }
    let fail = |why: String| usage(format!("cannot write {}: {why}", out.display()));
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !parent.is_dir() {
        return Err(fail(format!(
            "directory {} does not exist (nothing was signed)",
            parent.display()
        )));
    }
    if out.is_dir() {
        return Err(fail("it is a directory (nothing was signed)".into()));
    }
    if out.exists() {
        std::fs::OpenOptions::new()
            .append(true)
            .open(out)
            .map_err(|e| fail(format!("{e} (nothing was signed)")))?;
        if is_special(out) {
            return Ok(());
        }
    }
    let probe = temp_name(out, "probe");
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .map_err(|e| {
            fail(format!(
                "cannot create files in {}: {e} (nothing was signed)",
                parent.display()
            ))
        })?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

fn temp_name(out: &Path, what: &str) -> PathBuf {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    out.with_file_name(format!(".{name}.ksc-{what}-{}", std::process::id()))
}

/// Writes `bytes` to `out` through a temporary file and a rename, so an interrupted run never
/// leaves a truncated signature that a rerun would have to tell apart.
pub fn write_atomic(out: &Path, bytes: &[u8]) -> Result<(), Error> {
    if is_stdio(out) {
        let mut so = std::io::stdout().lock();
        return so
            .write_all(bytes)
            .and_then(|_| so.flush())
            .map_err(|e| usage(format!("cannot write stdout: {e}")));
    }
    if is_special(out) {
        return std::fs::write(out, bytes)
            .map_err(|e| usage(format!("cannot write {}: {e}", out.display())));
    }
    let tmp = temp_name(out, "tmp");
    let r = std::fs::write(&tmp, bytes).and_then(|_| std::fs::rename(&tmp, out));
    r.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        usage(format!("cannot write {}: {e}", out.display()))
    })
}

/// Hashes `input` (`-`: stdin) with `hash`, and with SHA-256 for the manifest, in one
/// streaming pass (large firmware images are fine).
pub fn hash_file(input: &Path, hash: HashAlg) -> Result<(Vec<u8>, String), Error> {
    let mut h = Hasher::new(hash);
    let mut h256 = (hash != HashAlg::Sha256).then(|| Hasher::new(HashAlg::Sha256));
    let read_err = |e: std::io::Error| usage(format!("cannot read {}: {e}", input.display()));
    let mut reader: Box<dyn std::io::Read> = if is_stdio(input) {
        Box::new(std::io::stdin())
    } else {
        Box::new(std::fs::File::open(input).map_err(read_err)?)
    };
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = reader.read(&mut buf).map_err(read_err)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        if let Some(h2) = h256.as_mut() {
            h2.update(&buf[..n]);
        }
    }
    let digest = h.finalize();
    let sha256 = match h256 {
        Some(h2) => hex::encode(h2.finalize()),
        None => hex::encode(&digest),
    };
    Ok((digest, sha256))
}

/// The requestid of a sign order: the same operation, key and request always give the same id,
/// so a rerun's order is recognised by the server instead of spending a second use.
pub fn derived_requestid(operation: &str, keyid: &str, request: &SignRequest) -> String {
    let fields = request
        .wire_fields()
        .map(|m| Value::Object(m).to_string())
        .unwrap_or_else(|_| request.describe());
    let seed = format!("ksc-sign-v1\n{operation}\n{keyid}\n{fields}");
    let d = ks_common::hash::digest(HashAlg::Sha256, seed.as_bytes());
    format!("ksc-{}", hex::encode(&d[..20]))
}

/// Errors after which no other file can succeed either: stop instead of failing each one.
fn stops_run(kind: ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::Pending
            | ErrorKind::Rejected
            | ErrorKind::Expired
            | ErrorKind::Exhausted
            | ErrorKind::Auth
            | ErrorKind::Forbidden
            | ErrorKind::Config
    )
}

struct Progress {
    total: usize,
    done: usize,
    failed: usize,
    /// A progress bar on a terminal; `None` for plain lines (CI logs, pipes).
    bar: Option<indicatif::ProgressBar>,
    last: Instant,
    started: Instant,
}

impl Progress {
    fn step(&mut self, failed: bool) {
        self.done += 1;
        if failed {
            self.failed += 1;
        }
        if self.total < 2 {
            return;
        }
        let line = format!(
            "ksc: {} of {} files done ({} failed), {:.0}s",
            self.done,
            self.total,
            self.failed,
            self.started.elapsed().as_secs_f64()
        );
        if let Some(bar) = &self.bar {
            bar.set_position(self.done as u64);
            bar.set_message(format!("{} failed", self.failed));
            if self.done == self.total {
                bar.finish();
            }
        } else if self.done == self.total || self.last.elapsed() >= PROGRESS_EVERY {
            eprintln!("{line}");
            self.last = Instant::now();
        }
    }
}

/// `ksc sign`: plans, checks, hashes, then signs with `batch.jobs` workers.
pub fn sign(
    client: &Client,
    args: &SignArgs,
    batch: &BatchArgs,
    json_out: bool,
) -> Result<(), Error> {
    // Everything that can be wrong locally is found before the first order is sent.
    let inputs = collect_inputs(args, batch)?;
    let outs = plan_outputs(&inputs, args, batch)?;
    if let Some(dir) = &batch.out_dir {
        if !dir.is_dir() {
            return Err(usage(format!(
                "--out-dir {}: no such directory (nothing was signed)",
                dir.display()
            )));
        }
    }
    for o in &outs {
        check_writable(o)?;
    }
    if let Some(m) = &batch.manifest {
        check_writable(m).map_err(|e| usage(format!("--manifest: {e}")))?;
    }
    let op = client.config().require_operation_id()?.to_string();
    let entry = client.key(&args.key)?;
    let mut items = Vec::with_capacity(inputs.len());
    for (input, out) in inputs.into_iter().zip(outs) {
        let (digest, sha256) = hash_file(&input, args.hash)?;
        let request = request_for(&entry, args, digest)?;
        items.push(Item {
            input,
            out,
            sha256,
            request,
            status: Status::NotAttempted,
            error: None,
            sig_len: 0,
        });
    }
    if !batch.force {
        for it in &mut items {
            if already_signed(&entry, it) {
                it.status = Status::AlreadySigned;
            }
        }
    }
    run_workers(client, &op, &args.key, batch.jobs.into(), &mut items);

    if let Some(m) = &batch.manifest {
        write_atomic(m, manifest(&items, &args.key, m).as_bytes())?;
    }
    report(&items, &args.key, &op, json_out);
    let first_failure = items
        .iter_mut()
        .find(|i| i.status == Status::Failed)
        .and_then(|i| i.error.take());
    match first_failure {
        None => Ok(()),
        Some(e) if items.len() == 1 => Err(e),
        Some(e) => {
            let failed = items
                .iter()
                .filter(|i| i.status != Status::Signed && i.status != Status::AlreadySigned)
                .count();
            Err(Error::new(
                e.kind(),
                format!(
                    "{failed} of {} files not signed; first error: {e}",
                    items.len()
                ),
            )
            .with_remedy("fix that and run the same command again: files already signed are kept and no use is spent twice"))
        }
    }
}

/// True when the output exists and verifies as a signature of this input by this key.
fn already_signed(entry: &KeyEntry, it: &Item) -> bool {
    if is_stdio(&it.out) {
        return false;
    }
    match std::fs::read(&it.out) {
        Ok(sig) if !sig.is_empty() => {
            ks_common::verify::verify(&entry.public_key, &it.request, &sig).is_ok()
        }
        _ => false,
    }
}

fn run_workers(client: &Client, op: &str, keyid: &str, jobs: usize, items: &mut [Item]) {
    // One input: its error is the run's error, printed once by main.
    let many = items.len() > 1;
    let todo: Vec<usize> = (0..items.len())
        .filter(|&i| items[i].status == Status::NotAttempted)
        .collect();
    let bar = (many && std::io::stderr().is_terminal()).then(|| {
        let bar = indicatif::ProgressBar::new(items.len() as u64);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "ksc: {bar:40} {pos}/{len} files, {msg}, {elapsed}, eta {eta}",
        ) {
            bar.set_style(style);
        }
        bar.set_position((items.len() - todo.len()) as u64);
        bar
    });
    let progress = Mutex::new(Progress {
        total: items.len(),
        done: items.len() - todo.len(),
        failed: 0,
        bar,
        last: Instant::now(),
        started: Instant::now(),
    });
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let cells: Vec<Mutex<&mut Item>> = items.iter_mut().map(Mutex::new).collect();
    let workers = jobs.min(todo.len()).max(1);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                let n = next.fetch_add(1, Ordering::Relaxed);
                let Some(&idx) = todo.get(n) else { return };
                let Ok(mut it) = cells[idx].lock() else {
                    return;
                };
                let requestid = derived_requestid(op, keyid, &it.request);
                let result = client
                    .sign_with_requestid(keyid, &it.request, &requestid)
                    .and_then(|sig| write_atomic(&it.out, &sig).map(|_| sig.len()));
                let failed = match result {
                    Ok(len) => {
                        it.status = Status::Signed;
                        it.sig_len = len;
                        false
                    }
                    Err(e) => {
                        if stops_run(e.kind()) {
                            stop.store(true, Ordering::Relaxed);
                        }
                        if many {
                            let line = format!("ksc: {}: {e}", it.input.display());
                            match progress.lock().ok().and_then(|p| p.bar.clone()) {
                                Some(bar) => bar.println(line),
                                None => eprintln!("{line}"),
                            }
                        }
                        it.status = Status::Failed;
                        it.error = Some(e);
                        true
                    }
                };
                drop(it);
                if let Ok(mut p) = progress.lock() {
                    p.step(failed);
                }
            });
        }
    });
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn item_json(it: &Item, keyid: &str) -> Value {
    json!({
        "file": it.input.display().to_string(),
        "sha256": it.sha256,
        "key": keyid,
        "signature": it.out.display().to_string(),
        "status": it.status.name(),
        "error": it.error.as_ref().map(|e| e.to_string()),
    })
}

/// The manifest text: JSON array, or CSV when the file name ends in `.csv`.
fn manifest(items: &[Item], keyid: &str, path: &Path) -> String {
    let csv = path
        .extension()
        .map(|e| e.eq_ignore_ascii_case("csv"))
        .unwrap_or(false);
    if !csv {
        let list: Vec<Value> = items.iter().map(|i| item_json(i, keyid)).collect();
        return format!("{}\n", Value::Array(list));
    }
    let mut s = String::from("file,sha256,key,signature,status,error\n");
    for it in items {
        let err = it.error.as_ref().map(|e| e.to_string()).unwrap_or_default();
        let row = [
            it.input.display().to_string(),
            it.sha256.clone(),
            keyid.to_string(),
            it.out.display().to_string(),
            it.status.name().to_string(),
            err,
        ];
        let row: Vec<String> = row.iter().map(|f| csv_field(f)).collect();
        s.push_str(&row.join(","));
        s.push('\n');
    }
    s
}

fn report(items: &[Item], keyid: &str, op: &str, json_out: bool) {
    let count = |s: Status| items.iter().filter(|i| i.status == s).count();
    if let [it] = items {
        if json_out {
            let mut v = item_json(it, keyid);
            v["operation"] = json!(op);
            v["mechanism"] = json!(it.request.describe());
            crate::print_json(&v);
        } else if it.status == Status::Signed && !is_stdio(&it.out) {
            eprintln!(
                "ksc: signed {} with {keyid} ({}), {} bytes -> {}",
                it.input.display(),
                it.request.describe(),
                it.sig_len,
                it.out.display()
            );
        } else if it.status == Status::AlreadySigned {
            eprintln!(
                "ksc: {} already holds a valid signature of {} by {keyid}; nothing spent (--force signs again)",
                it.out.display(),
                it.input.display()
            );
        }
        return;
    }
    let (signed, already, failed, skipped) = (
        count(Status::Signed),
        count(Status::AlreadySigned),
        count(Status::Failed),
        count(Status::NotAttempted),
    );
    if json_out {
        let files: Vec<Value> = items.iter().map(|i| item_json(i, keyid)).collect();
        crate::print_json(&json!({
            "operation": op, "key": keyid, "signed": signed, "already_signed": already,
            "failed": failed, "not_attempted": skipped, "files": files,
        }));
    }
    eprintln!(
        "ksc: {signed} signed, {already} already signed, {failed} failed, {skipped} not attempted, of {} files",
        items.len()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requestid_is_stable_and_distinct() {
        let r = |d: u8| SignRequest::RsaPkcs1 {
            hash: HashAlg::Sha256,
            digest: vec![d; 32],
        };
        let a = derived_requestid("7", "key1", &r(1));
        assert_eq!(a, derived_requestid("7", "key1", &r(1)));
        assert!(a.len() <= 128);
        assert_ne!(a, derived_requestid("8", "key1", &r(1)));
        assert_ne!(a, derived_requestid("7", "key2", &r(1)));
        assert_ne!(a, derived_requestid("7", "key1", &r(2)));
    }

    #[test]
    fn csv_quotes_what_needs_it() {
        assert_eq!(csv_field("a.bin"), "a.bin");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"x\""), "\"say \"\"x\"\"\"");
    }

    #[test]
    fn suffix_rules() {
        assert!(parse_suffix(".sig").is_ok());
        assert!(parse_suffix("").is_err());
        assert!(parse_suffix("a/b").is_err());
    }

    #[test]
    fn unwritable_outputs_are_found_first() {
        let dir = std::env::temp_dir().join(format!("ksc-batch-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert!(check_writable(&dir.join("x.sig")).is_ok());
        assert!(!dir.join("x.sig").exists(), "the check leaves nothing");
        let e = check_writable(&dir.join("missing/x.sig")).unwrap_err();
        assert!(e.to_string().contains("does not exist"), "{e}");
        assert!(check_writable(&dir).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
