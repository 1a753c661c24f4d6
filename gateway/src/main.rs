//! `gateway`: the IoT gateway binary. See `gateway --help` and gateway/README.md.

use clap::Parser;
use edge_gateway::config::Flags;
use tracing_subscriber::EnvFilter;

fn main() -> std::process::ExitCode {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let flags = Flags::parse();
    let print = flags.print_config;
    let config = match flags.resolve() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("gateway: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    if print {
        match serde_json::to_string_pretty(&config) {
            Ok(text) => println!("{text}"),
            Err(e) => eprintln!("gateway: {e}"),
        }
        return std::process::ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("gateway: runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let local = tokio::task::LocalSet::new();
    match local.block_on(&runtime, edge_gateway::run::run(config)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            std::process::ExitCode::FAILURE
        }
    }
}
