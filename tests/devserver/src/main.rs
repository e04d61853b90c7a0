//! The bundled dev KeyServer binary. See `ks-devserver --help`.

use std::process::ExitCode;

fn main() -> ExitCode {
    let opts = match ks_devserver::config::Options::parse(std::env::args().skip(1)) {
        Ok(Some(o)) => o,
        Ok(None) => {
            println!("{}", ks_devserver::config::USAGE);
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("ks-devserver: {e}\n{}", ks_devserver::config::USAGE);
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ks-devserver: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(ks_devserver::server::run(opts)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ks-devserver: {e}");
            ExitCode::FAILURE
        }
    }
}
