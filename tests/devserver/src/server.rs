//! Start-up (data directory, keys, database), the two TLS listeners, and
//! the ready line / ready file.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::api::{handle, App, Listener};
use crate::certs::SigningCa;
use crate::config::{FileConfig, Options};
use crate::jwt::{ExternalIssuer, TokenIssuer, TokenVerifier};
use crate::keyring::{specs_from_config, KeyRing};
use crate::keys::{write_atomic, KeyCache};
use crate::stats::Stats;
use crate::store::Store;
use crate::users::Users;
use crate::util::parse_duration;

/// Default request body limit.
pub const DEFAULT_MAX_BODY: usize = 64 * 1024;

/// The default key cache: `<target dir>/ks-devserver-keycache` when the
/// binary runs from a Cargo target directory (recognised by its
/// `CACHEDIR.TAG`), else none.
pub fn default_key_cache() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let mut dir = exe.parent()?;
    // target/<profile>/ks-devserver or target/<profile>/deps/<test>
    for _ in 0..3 {
        if dir.join("CACHEDIR.TAG").exists() {
            return Some(dir.join("ks-devserver-keycache"));
        }
        dir = dir.parent()?;
    }
    None
}

/// What start-up produced, before serving.
pub struct Prepared {
    app: Arc<App>,
    tls: Arc<rustls::ServerConfig>,
    data_dir: PathBuf,
}

/// Prepares everything that can fail before the listeners open.
pub fn prepare(opts: &Options) -> Result<Prepared, String> {
    std::fs::create_dir_all(&opts.data_dir)
        .map_err(|e| format!("cannot create data dir {}: {e}", opts.data_dir.display()))?;
    let data_dir = std::fs::canonicalize(&opts.data_dir)
        .map_err(|e| format!("data dir {}: {e}", opts.data_dir.display()))?;
    let file = match &opts.config {
        Some(p) => FileConfig::load(p)?,
        None => FileConfig::default(),
    };
    let lifetime = match (opts.token_lifetime, &file.token_lifetime) {
        (Some(d), _) => d,
        (None, Some(s)) => parse_duration(s).map_err(|e| format!("config token_lifetime: {e}"))?,
        (None, None) => Duration::from_secs(3600),
    };
    let specs = specs_from_config(&file)?;
    let cache = KeyCache::new(opts.key_cache.clone().or_else(default_key_cache));
    let ca = SigningCa::load_or_create(&data_dir)?;
    let keys = KeyRing::load(&data_dir, &specs, &cache, &ca)?;
    let users = Users::build(&keys.ids(), &file.users)?;
    let own = TokenIssuer::load_or_create(
        &data_dir,
        file.issuer.clone().unwrap_or_else(|| "ks-devserver".into()),
        file.audience.clone().unwrap_or_else(|| "keyserver".into()),
        lifetime,
    )?;
    let external = file
        .issuers
        .iter()
        .map(|i| ExternalIssuer::load(i, &users))
        .collect::<Result<Vec<_>, _>>()?;
    file.credential_limits.validate()?;
    let store = Store::open(&data_dir.join("state.redb"))?;
    let tls = crate::tls::server_config(&data_dir, &file.tls_names)?;
    let app = Arc::new(App {
        users,
        tokens: TokenVerifier { own, external },
        keys,
        store: Arc::new(store),
        stats: Stats::default(),
        faults: opts.faults.clone(),
        gate: crate::faults::HoldGate::new(opts.hold_keys),
        max_body: file.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY),
        web: crate::web::WebState::default(),
        limiter: crate::limits::CredentialLimiter::new(file.credential_limits),
        allow_sha1: file.allow_sha1,
    });
    Ok(Prepared { app, tls, data_dir })
}

fn write_ready_file(
    path: &Path,
    auth: &str,
    api: &str,
    ca: &Path,
    signing_ca: &Path,
) -> Result<(), String> {
    let doc = serde_json::json!({
        "auth_url": auth, "api_url": api,
        "ca_file": ca, "signing_ca_file": signing_ca,
    });
    write_atomic(path, doc.to_string().as_bytes())
        .map_err(|e| format!("cannot write ready file {}: {e}", path.display()))
}

/// Runs the server until SIGTERM/SIGINT.
pub async fn run(opts: Options) -> Result<(), String> {
    let prepared = {
        let opts = opts.clone();
        tokio::task::spawn_blocking(move || prepare(&opts))
            .await
            .map_err(|e| format!("start-up failed: {e}"))??
    };
    let auth = TcpListener::bind(opts.auth_listen)
        .await
        .map_err(|e| format!("cannot listen on {} (auth): {e}", opts.auth_listen))?;
    let api = TcpListener::bind(opts.api_listen)
        .await
        .map_err(|e| format!("cannot listen on {} (api): {e}", opts.api_listen))?;
    let url = |a: SocketAddr| format!("https://{a}");
    let auth_url = url(auth.local_addr().map_err(|e| e.to_string())?);
    let api_url = url(api.local_addr().map_err(|e| e.to_string())?);
    let ca = prepared.data_dir.join("ca.pem");
    let signing_ca = prepared.data_dir.join("signing-ca.pem");
    if let Some(rf) = &opts.ready_file {
        write_ready_file(rf, &auth_url, &api_url, &ca, &signing_ca)?;
    }
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        // The one machine-readable line a harness waits for.
        let _ = writeln!(
            out,
            "ks-devserver ready auth={auth_url} api={api_url} ca={}",
            ca.display()
        );
        let _ = out.flush();
    }
    eprintln!(
        "ks-devserver: {} keys, data dir {}, faults {:?}",
        prepared.app.keys.ordered.len(),
        prepared.data_dir.display(),
        prepared.app.faults
    );
    if opts.watch_stdin {
        // The parent holds the write end; its exit (even by SIGKILL, or a
        // test process that never drops its server) closes it.
        std::thread::spawn(|| {
            let mut sink = [0u8; 256];
            let mut stdin = std::io::stdin().lock();
            while matches!(std::io::Read::read(&mut stdin, &mut sink), Ok(n) if n > 0) {}
            eprintln!("ks-devserver: stdin closed, exiting");
            std::process::exit(0);
        });
    }
    let acceptor = TlsAcceptor::from(prepared.tls.clone());
    tokio::spawn(serve(
        auth,
        acceptor.clone(),
        prepared.app.clone(),
        Listener::Auth,
    ));
    tokio::spawn(serve(api, acceptor, prepared.app.clone(), Listener::Api));
    shutdown_signal().await;
    eprintln!("ks-devserver: shutting down");
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

async fn serve(listener: TcpListener, acceptor: TlsAcceptor, app: Arc<App>, which: Listener) {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of file descriptors and the like: back off, keep serving.
                eprintln!("ks-devserver: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let app = app.clone();
        tokio::spawn(async move {
            let tls =
                match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                    Ok(Ok(s)) => s,
                    _ => {
                        Stats::inc(&app.stats.tls_failures);
                        return;
                    }
                };
            Stats::inc(&app.stats.tls_handshakes);
            let svc_app = app.clone();
            let svc = service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(crate::web::PeerAddr(peer));
                handle(svc_app.clone(), which, req)
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(30))
                .max_buf_size(256 * 1024)
                .serve_connection(TokioIo::new(tls), svc)
                .await;
        });
    }
}
