//! The `psp-gateway` command line.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use gateway::config::Config;
use gateway::server;

#[derive(Parser)]
#[command(
    name = "psp-gateway",
    version,
    about = "One gateway in front of many PSPs for Hantera Commerce"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the gateway (the default). Without --config: the embedded default.
    Serve {
        /// The TOML configuration file.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Runs the Hantera sandbox alone.
    Sandbox {
        /// Address to listen on, e.g. 127.0.0.1:9090 (port 0 picks a free port).
        #[arg(long, default_value = "127.0.0.1:9090")]
        listen: String,
        /// The gateway to forward OnCartMutation and OnPaymentCapture to (its base URL,
        /// e.g. http://127.0.0.1:8080). Without it no hooks are forwarded.
        #[arg(long, env = "PSP_SANDBOX_GATEWAY_URL", requires = "hook_token")]
        gateway_url: Option<String>,
        /// The gateway's `hantera.hook_token`, sent as `Authorization: Bearer <token>`.
        #[arg(
            long,
            env = "PSP_SANDBOX_HOOK_TOKEN",
            hide_env_values = true,
            requires = "gateway_url"
        )]
        hook_token: Option<String>,
    },
    /// Lists the compiled-in providers, sorted.
    Providers,
    /// Validates a configuration file and says what is wrong.
    CheckConfig {
        /// The TOML configuration file.
        #[arg(long)]
        config: PathBuf,
    },
}

fn init_logs(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    // Colour codes only for a person at a terminal: in a file or a log pipeline they are
    // noise that a caller's input could also imitate.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command.unwrap_or(Command::Serve { config: None }) {
            Command::Serve { config } => serve(config).await,
            Command::Sandbox {
                listen,
                gateway_url,
                hook_token,
            } => {
                init_logs("text");
                let hooks =
                    gateway_url
                        .zip(hook_token)
                        .map(|(gateway_url, token)| server::SandboxHooks {
                            gateway_url,
                            hook_token: psp_core::Secret::new(token),
                        });
                server::run_sandbox(&listen, hooks).await
            }
            Command::Providers => {
                for id in psp_core::Registry::compiled_in()? {
                    println!("{id}");
                }
                Ok(())
            }
            Command::CheckConfig { config } => check_config(config).await,
        }
    });
    // The shutdown deadline has passed or everything ended: a blocking task still running
    // (a DNS lookup, say) must not keep the process alive.
    runtime.shutdown_timeout(Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config_path: Option<PathBuf>) -> anyhow::Result<()> {
    let config = Config::load(config_path.as_deref())?;
    init_logs(&config.server.log_format);
    let gateway = server::build(config).await?;
    let shutdown = server::shutdown_signal();
    // Tests and scripts read this line to learn the address (the port may be 0 in config).
    println!("psp-gateway listening on {}", gateway.public_url);
    if let Some(addr) = gateway.metrics_addr {
        println!("psp-gateway metrics on http://{addr}/metrics");
    }
    if gateway.embedded {
        println!(
            "embedded default: sandbox Hantera and fake PSPs ({}) in this process; open {}/ in a browser",
            gateway.state().services.registry.ids().collect::<Vec<_>>().join(", "),
            gateway.public_url
        );
    }
    let _ = std::io::stdout().flush();
    gateway.run(shutdown).await
}

async fn check_config(path: PathBuf) -> anyhow::Result<()> {
    let config = Config::load(Some(&path))?;
    // The same warnings as at start-up (a test-only provider next to a real Hantera).
    init_logs("text");
    let public_url = config
        .server
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", config.server.listen));
    let registry = config.build_registry(
        &config.providers,
        &public_url,
        &server::unused_ports().await?,
    )?;
    let hantera = match config.hantera_mode() {
        psp_core::HanteraMode::Real => "a Hantera instance",
        psp_core::HanteraMode::Sandbox => "the in-process sandbox",
    };
    println!(
        "{}: ok ({hantera}; providers: {})",
        path.display(),
        registry.ids().collect::<Vec<_>>().join(", ")
    );
    Ok(())
}
