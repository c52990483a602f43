//! The `fletchd` command line. `main.rs` only calls [`main`].

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{Config, Overrides};

/// Fletch: a clustered time-series database that speaks the InfluxDB 1.x API.
#[derive(Debug, Parser)]
#[command(
    name = "fletchd",
    version,
    about = "Fletch: a time-series database that speaks the InfluxDB 1.x API (runs a node; `fletchd config` prints its configuration)",
    long_about = None
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the node (the default).
    Run(RunArgs),
    /// Print the effective configuration (defaults, file, environment and flags) as TOML.
    Config(RunArgs),
    /// Operate on a running cluster's shards, as `influxd-ctl` does (show, copy-shard,
    /// remove-shard, truncate-shards, entropy show|repair), through any node's internal port.
    Ctl(crate::ctl::CtlArgs),
    /// Print the version.
    Version,
}

/// Flags shared by `run` and `config`. Single-dash long flags (`-config`) work as in influxd.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RunArgs {
    /// TOML configuration file (InfluxDB section and key names).
    #[arg(long = "config", value_name = "FILE", env = "FLETCH_CONFIG")]
    pub config: Option<PathBuf>,
    /// Base directory: sets [meta] dir, [data] dir, [data] wal-dir and [hinted-handoff] dir to DIR/meta, DIR/data, DIR/wal, DIR/hh.
    #[arg(long = "dir", value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// [http] bind-address.
    #[arg(long = "http-bind-address", value_name = "HOST:PORT")]
    pub http_bind_address: Option<String>,
    /// [meta] bind-address: the Raft and internal RPC (Arrow Flight) address.
    #[arg(long = "meta-bind-address", value_name = "HOST:PORT")]
    pub meta_bind_address: Option<String>,
    /// Join a cluster through these members' meta HTTP addresses, tried in order ([meta] join,
    /// FLETCH_JOIN). Not needed when a member restarts.
    #[arg(long = "join", value_name = "HOST:8091[,HOST:8091]")]
    pub join: Option<String>,
    /// [meta] http-bind-address.
    #[arg(long = "meta-http-bind-address", value_name = "HOST:PORT")]
    pub meta_http_bind_address: Option<String>,
}

impl RunArgs {
    fn overrides(&self) -> Overrides {
        let mut v = Vec::new();
        let mut set = |s: &str, k: &str, val: String| v.push((s.to_string(), k.to_string(), val));
        if let Some(d) = &self.dir {
            set("meta", "dir", d.join("meta").display().to_string());
            set("data", "dir", d.join("data").display().to_string());
            set("data", "wal-dir", d.join("wal").display().to_string());
            set("hinted-handoff", "dir", d.join("hh").display().to_string());
        }
        if let Some(a) = &self.http_bind_address {
            set("http", "bind-address", a.clone());
        }
        if let Some(a) = &self.meta_bind_address {
            set("meta", "bind-address", a.clone());
        }
        if let Some(j) = &self.join {
            set("meta", "join", j.clone());
        }
        if let Some(a) = &self.meta_http_bind_address {
            set("meta", "http-bind-address", a.clone());
        }
        Overrides { values: v }
    }

    fn load(&self) -> Result<crate::config::Loaded, crate::config::ConfigError> {
        Config::load(
            self.config.as_deref(),
            &|k| std::env::var(k).ok(),
            &self.overrides(),
        )
    }
}

use shell::normalize_args;

fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("{level},openraft=error")));
    use std::io::IsTerminal;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .try_init();
}

/// Entry point of `fletchd`.
pub fn main() -> ExitCode {
    let cli = Cli::parse_from(normalize_args(std::env::args()));
    let (args, print_only) = match cli.command {
        Some(Command::Version) => {
            println!(
                "fletchd {} (InfluxDB API {})",
                crate::http::FLETCH_VERSION,
                crate::http::INFLUXDB_VERSION
            );
            return ExitCode::SUCCESS;
        }
        Some(Command::Config(a)) => (a, true),
        Some(Command::Ctl(a)) => {
            return match crate::ctl::run(a) {
                Ok(out) => {
                    print!("{out}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("fletchd ctl: {e}");
                    ExitCode::FAILURE
                }
            };
        }
        Some(Command::Run(a)) => (a, false),
        None => (cli.run, false),
    };
    let loaded = match args.load() {
        Ok(l) => l,
        Err(e) => {
            eprintln!("fletchd: {e}");
            return ExitCode::from(2);
        }
    };
    if print_only {
        for w in &loaded.warnings {
            eprintln!("fletchd: warning: {w}");
        }
        print!("{}", loaded.config.to_toml());
        return ExitCode::SUCCESS;
    }
    init_logging(&loaded.config.logging.level);
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("fletchd")
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("fletchd: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(async {
        // The handlers are installed before anything starts.
        let shutdown = crate::server::shutdown_signal();
        crate::server::run(loaded.config, shutdown).await
    }) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("fletchd: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn single_dash_flags_become_long_flags() {
        let a = super::normalize_args(
            ["fletchd", "-config", "x.toml", "--dir", "d", "-h", "-5"].map(String::from),
        );
        assert_eq!(
            a,
            ["fletchd", "--config", "x.toml", "--dir", "d", "-h", "-5"]
        );
    }
}
