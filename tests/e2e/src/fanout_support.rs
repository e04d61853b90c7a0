//! Fan-out: many single-signature processes started at the same instant
//! against one operation — `openssl dgst -provider keyserver`, `pkcs11-tool
//! --sign` and libp11's engine (`openssl dgst -engine pkcs11`, the tutorial's
//! command) in turn. Used by `tests/fanout.rs` and by the benchmark's fan-out
//! row (tests/bench), so both measure exactly the same thing.
//!
//! Why a pipe as the barrier: every child is spawned first, blocked in `read`
//! on one shared pipe; closing the only write end wakes them all at once with
//! EOF. No sleep, no polling, and the start does not depend on how long it
//! took to spawn the others.

use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The program a fan-out process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FanoutTool {
    /// `openssl dgst -provider keyserver -sign ks:<keyid> -sha256`.
    Provider,
    /// `pkcs11-tool --module libpkcs11ks.so --sign --id <id> -m SHA256-RSA-PKCS`
    /// (or `ECDSA-SHA256` for an EC key).
    Pkcs11Tool,
    /// `openssl dgst -engine pkcs11 -keyform engine -sign pkcs11:object=<keyid> -sha256`.
    Engine,
}

impl FanoutTool {
    /// The three tools, in the order process `i` takes `ALL[i % 3]`.
    pub const ALL: [FanoutTool; 3] = [
        FanoutTool::Provider,
        FanoutTool::Pkcs11Tool,
        FanoutTool::Engine,
    ];

    /// A short name for reports.
    pub fn name(self) -> &'static str {
        match self {
            FanoutTool::Provider => "provider",
            FanoutTool::Pkcs11Tool => "pkcs11-tool",
            FanoutTool::Engine => "engine",
        }
    }
}

/// Everything a fan-out needs; the caller owns the server and the operation.
#[derive(Debug, Clone)]
pub struct FanoutSetup {
    /// Scratch directory: data files, signatures, configs.
    pub dir: PathBuf,
    /// Client environment (KSC_API_SERVER, KSC_CA_FILE, KSC_ID_TOKEN, KSC_OPERATION_ID...).
    pub env: Vec<(String, String)>,
    /// `openssl`.
    pub openssl: PathBuf,
    /// `pkcs11-tool`.
    pub pkcs11_tool: PathBuf,
    /// libpkcs11ks.so.
    pub module: PathBuf,
    /// The built provider library (linked as `<dir>/modules/keyserver.so`).
    pub provider: PathBuf,
    /// libp11's engine, libpkcs11.so.
    pub engine: PathBuf,
    /// The key every process signs with.
    pub keyid: String,
    /// Whether it is an RSA key (else EC): picks pkcs11-tool's mechanism.
    pub rsa: bool,
    /// The key's certificate (PEM) as the server holds it: signatures are
    /// verified against it, not against anything our code returned.
    pub certificate: PathBuf,
}

/// One finished fan-out process.
#[derive(Debug)]
pub struct FanoutOutcome {
    /// Which tool ran.
    pub tool: FanoutTool,
    /// The file it signed.
    pub data: PathBuf,
    /// Where it wrote the signature.
    pub signature: PathBuf,
    /// Its exit status and output.
    pub output: Output,
}

/// What a fan-out did.
#[derive(Debug)]
pub struct FanoutRun {
    /// From the release of the barrier to the last process reaped.
    pub wall: Duration,
    /// One entry per process, in start order.
    pub outcomes: Vec<FanoutOutcome>,
}

impl FanoutRun {
    /// The processes that failed, each as "tool #i: status, stderr".
    pub fn failures(&self) -> Vec<String> {
        self.outcomes
            .iter()
            .enumerate()
            .filter(|(_, o)| !o.output.status.success())
            .map(|(i, o)| {
                format!(
                    "{} #{i}: {}: {}",
                    o.tool.name(),
                    o.output.status,
                    String::from_utf8_lossy(&o.output.stderr).trim()
                )
            })
            .collect()
    }

    /// Checks every signature with `openssl dgst -sha256 -verify` against the
    /// certificate's public key; returns the ones that do not verify.
    pub fn unverified(&self, setup: &FanoutSetup) -> Result<Vec<String>, String> {
        let pubkey = setup.dir.join(format!("{}.fanout.pub.pem", setup.keyid));
        let out = Command::new(&setup.openssl)
            .args(["x509", "-pubkey", "-noout", "-in"])
            .arg(&setup.certificate)
            .arg("-out")
            .arg(&pubkey)
            .output()
            .map_err(|e| format!("run openssl x509: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "openssl x509 -pubkey {}: {}",
                setup.certificate.display(),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let mut bad = Vec::new();
        for (i, o) in self.outcomes.iter().enumerate() {
            let v = Command::new(&setup.openssl)
                .env_remove("OPENSSL_CONF")
                .args(["dgst", "-sha256", "-verify"])
                .arg(&pubkey)
                .arg("-signature")
                .arg(&o.signature)
                .arg(&o.data)
                .output()
                .map_err(|e| format!("run openssl dgst -verify: {e}"))?;
            if !(v.status.success() && String::from_utf8_lossy(&v.stdout).contains("Verified OK")) {
                bad.push(format!(
                    "{} #{i}: {}{}",
                    o.tool.name(),
                    String::from_utf8_lossy(&v.stdout).trim(),
                    String::from_utf8_lossy(&v.stderr).trim()
                ));
            }
        }
        Ok(bad)
    }
}

/// The hex `CKA_ID` of `keyid` as `pkcs11-tool -O` lists it (pkcs11-tool
/// selects a key for `--sign` by `--id`).
pub fn pkcs11_key_id(setup: &FanoutSetup) -> Result<String, String> {
    let out = client_command(setup, &setup.pkcs11_tool)
        .arg("--module")
        .arg(&setup.module)
        .arg("-O")
        .output()
        .map_err(|e| format!("run pkcs11-tool -O: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "pkcs11-tool -O: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let listing = String::from_utf8_lossy(&out.stdout);
    let mut label_matches = false;
    for line in listing.lines().map(str::trim) {
        if let Some(l) = line.strip_prefix("label:") {
            label_matches = l.trim() == setup.keyid;
        } else if let Some(id) = line.strip_prefix("ID:") {
            if label_matches {
                return Ok(id.trim().to_string());
            }
        }
    }
    Err(format!(
        "pkcs11-tool -O lists no object labelled {}",
        setup.keyid
    ))
}

/// A command with the client environment only (no inherited KSC_* or
/// OPENSSL_CONF), run in the scratch directory.
fn client_command(setup: &FanoutSetup, program: &Path) -> Command {
    let mut cmd = Command::new(program);
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("KSC_") || k == "OPENSSL_CONF" || k == "OPENSSL_MODULES" {
            cmd.env_remove(k);
        }
    }
    cmd.envs(setup.env.iter().map(|(k, v)| (k, v)))
        .current_dir(&setup.dir);
    cmd
}

/// Writes the files the processes need: `n` distinct data files, the engine's
/// openssl config (the tutorial's) and `modules/keyserver.so`.
fn prepare_files(setup: &FanoutSetup, n: usize) -> Result<(PathBuf, PathBuf), String> {
    let w = |p: &Path, data: &[u8]| {
        std::fs::write(p, data).map_err(|e| format!("write {}: {e}", p.display()))
    };
    let modules = setup.dir.join("modules");
    std::fs::create_dir_all(&modules).map_err(|e| format!("create {}: {e}", modules.display()))?;
    let link = modules.join("keyserver.so");
    if !link.exists() {
        std::os::unix::fs::symlink(&setup.provider, &link)
            .map_err(|e| format!("link {}: {e}", link.display()))?;
    }
    let cnf = setup.dir.join("openssl-engine.cnf");
    w(
        &cnf,
        format!(
            "openssl_conf = openssl_init\n\
             [openssl_init]\n\
             engines = engine_section\n\
             providers = provider_sect\n\
             [provider_sect]\n\
             default = default_sect\n\
             [default_sect]\n\
             activate = 1\n\
             [engine_section]\n\
             pkcs11 = pkcs11_section\n\
             [pkcs11_section]\n\
             engine_id = pkcs11\n\
             dynamic_path = {}\n\
             MODULE_PATH = {}\n\
             init = 0\n",
            setup.engine.display(),
            setup.module.display()
        )
        .as_bytes(),
    )?;
    for i in 0..n {
        w(
            &setup.dir.join(format!("fanout-{i}.bin")),
            format!("firmware image {i} of a release built by {n} parallel jobs\n")
                .repeat(64)
                .as_bytes(),
        )?;
    }
    Ok((modules, cnf))
}

/// The command process `i` runs, and where it writes its signature.
fn tool_command(
    setup: &FanoutSetup,
    tool: FanoutTool,
    i: usize,
    modules: &Path,
    cnf: &Path,
    pkcs11_id: &str,
) -> (Command, PathBuf, PathBuf) {
    let data = setup.dir.join(format!("fanout-{i}.bin"));
    let sig = setup.dir.join(format!("fanout-{i}.sig"));
    let mut cmd;
    match tool {
        FanoutTool::Provider => {
            cmd = client_command(setup, &setup.openssl);
            cmd.env("OPENSSL_MODULES", modules).args([
                "dgst".to_string(),
                "-provider".into(),
                "keyserver".into(),
                "-sign".into(),
                format!("ks:{}", setup.keyid),
                "-sha256".into(),
                "-out".into(),
            ]);
            cmd.arg(&sig).arg(&data);
        }
        FanoutTool::Engine => {
            cmd = client_command(setup, &setup.openssl);
            cmd.env("OPENSSL_CONF", cnf).args([
                "dgst".to_string(),
                "-engine".into(),
                "pkcs11".into(),
                "-keyform".into(),
                "engine".into(),
                "-sign".into(),
                format!("pkcs11:object={}", setup.keyid),
                "-sha256".into(),
                "-out".into(),
            ]);
            cmd.arg(&sig).arg(&data);
        }
        FanoutTool::Pkcs11Tool => {
            cmd = client_command(setup, &setup.pkcs11_tool);
            let mech = if setup.rsa {
                "SHA256-RSA-PKCS"
            } else {
                "ECDSA-SHA256"
            };
            cmd.arg("--module").arg(&setup.module).args([
                "--sign",
                "--id",
                pkcs11_id,
                "--mechanism",
                mech,
            ]);
            if !setup.rsa {
                // DER, as openssl dgst -verify expects (pkcs11-tool writes r||s otherwise).
                cmd.args(["--signature-format", "openssl"]);
            }
            cmd.arg("--input-file")
                .arg(&data)
                .arg("--output-file")
                .arg(&sig);
        }
    }
    (cmd, data, sig)
}

/// A pipe whose ends are close-on-exec: (read, write).
fn cloexec_pipe() -> Result<(OwnedFd, OwnedFd), String> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: fds is a valid array of two ints for pipe2 to fill.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(format!("pipe2: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: pipe2 succeeded, so both descriptors are open and owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Processes spawned and held at one gate; [`Gated::release`] starts them all.
pub struct Gated {
    gate: OwnedFd,
    children: Vec<Child>,
}

/// Spawns every command behind one gate: each runs as `sh -c 'read; exec
/// program args'` with the gate as stdin, so nothing of the program runs
/// before [`Gated::release`]. The program itself gets /dev/null as stdin.
pub fn gate(commands: Vec<Command>) -> Result<Gated, String> {
    let (gate_read, gate_write) = cloexec_pipe()?;
    let mut children: Vec<Child> = Vec::with_capacity(commands.len());
    for (i, inner) in commands.into_iter().enumerate() {
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg("read -r _gate; exec \"$0\" \"$@\" </dev/null")
            .arg(inner.get_program())
            .args(inner.get_args());
        for (k, v) in inner.get_envs() {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        if let Some(d) = inner.get_current_dir() {
            cmd.current_dir(d);
        }
        let spawned = gate_read
            .try_clone()
            .map_err(|e| format!("dup the gate: {e}"))
            .and_then(|g| {
                cmd.stdin(Stdio::from(g))
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .map_err(|e| format!("spawn process {i} of the fan-out: {e}"))
            });
        match spawned {
            Ok(child) => children.push(child),
            Err(e) => {
                // Those already waiting at the gate must not run: kill them
                // before the gate opens (when gate_write is dropped).
                for mut c in children {
                    let _ = c.kill();
                    let _ = c.wait();
                }
                return Err(e);
            }
        }
    }
    Ok(Gated {
        gate: gate_write,
        children,
    })
}

impl Gated {
    /// Opens the gate (closes its only write end) and waits for every
    /// process; returns the time from the release to the last one reaped and
    /// the outputs in spawn order.
    pub fn release(self) -> Result<(Duration, Vec<Output>), String> {
        let started = Instant::now();
        drop(self.gate);
        let mut outputs = Vec::with_capacity(self.children.len());
        for child in self.children {
            // Each child writes a few lines at most: waiting in order cannot
            // block on a full pipe.
            outputs.push(
                child
                    .wait_with_output()
                    .map_err(|e| format!("wait for a fan-out process: {e}"))?,
            );
        }
        Ok((started.elapsed(), outputs))
    }
}

/// `n` single-signature processes held at a gate; [`Fanout::release`] starts them.
pub struct Fanout {
    gated: Gated,
    files: Vec<(FanoutTool, PathBuf, PathBuf)>,
}

/// Writes the files, looks up the key's `CKA_ID` (one key-list request, made
/// before the caller reads the server's counters) and spawns `n`
/// single-signature processes (tool `ALL[i % 3]` for process `i`), each held
/// at the gate.
pub fn prepare(setup: &FanoutSetup, n: usize) -> Result<Fanout, String> {
    let (modules, cnf) = prepare_files(setup, n)?;
    let pkcs11_id = pkcs11_key_id(setup)?;
    let mut commands = Vec::with_capacity(n);
    let mut files = Vec::with_capacity(n);
    for i in 0..n {
        let tool = FanoutTool::ALL[i % FanoutTool::ALL.len()];
        let (cmd, data, sig) = tool_command(setup, tool, i, &modules, &cnf, &pkcs11_id);
        commands.push(cmd);
        files.push((tool, data, sig));
    }
    Ok(Fanout {
        gated: gate(commands)?,
        files,
    })
}

impl Fanout {
    /// Opens the gate and waits for every process.
    pub fn release(self) -> Result<FanoutRun, String> {
        let (wall, outputs) = self.gated.release()?;
        let outcomes = self
            .files
            .into_iter()
            .zip(outputs)
            .map(|((tool, data, signature), output)| FanoutOutcome {
                tool,
                data,
                signature,
                output,
            })
            .collect();
        Ok(FanoutRun { wall, outcomes })
    }
}

/// [`prepare`] then [`Fanout::release`].
pub fn fan_out(setup: &FanoutSetup, n: usize) -> Result<FanoutRun, String> {
    prepare(setup, n)?.release()
}
