//! loadgen: fires signed mock-PSP webhooks at a gateway on this machine and, in the same
//! run, at a bare hyper server, then compares rate and latency against the targets.
//!
//! The bare server is the ceiling: the same client, the same requests, a server that does
//! nothing but read the body. The gateway's rate as a fraction of it says how much the
//! verify-and-record path costs, independent of how fast this particular machine is.

mod client;
mod events;
mod report;
mod server;
mod target;

use std::convert::Infallible;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Parser;
use hyper::header::HeaderName;
use psp_core::signature::{SignatureVerifier, DEFAULT_TOLERANCE};
use psp_core::Secret;

pub use report::{Check, CheckState, Summary, MAX_P99, MAX_PEAK_RSS_MB, MIN_RATE_RATIO};

use crate::server::{BareServer, Verify};

/// The most requests one run may send: enough for any benchmark, few enough that the
/// pre-built requests fit in memory.
pub const MAX_REQUESTS: usize = 1_000_000;
/// The most concurrent connections one run may open.
pub const MAX_CONCURRENCY: usize = 1024;
/// The largest body `--body-size` may ask for.
pub const MAX_BODY_SIZE: usize = 64 * 1024;
/// The most bytes of bodies one run may pre-build.
const MAX_LOAD_BYTES: usize = 256 * 1024 * 1024;
/// Signatures are made before the clock starts and go stale after [`DEFAULT_TOLERANCE`];
/// a run must end with a minute to spare, or its last requests would be refused as stale.
const STALENESS_MARGIN: Duration = Duration::from_secs(60);

/// Command-line options.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "loadgen",
    about = "Fires signed webhooks at a gateway on this machine and at a bare hyper server, \
             and compares rate and latency against the targets.",
    after_help = "Exit status: 0 when every measured target is met, 1 when any is missed \
                  or any request failed, 2 when the run could not be made."
)]
pub struct Opts {
    /// The gateway's webhook URL; loopback only (127.0.0.0/8, [::1], localhost).
    #[arg(
        long,
        required_unless_present = "self_test",
        conflicts_with = "self_test"
    )]
    pub target: Option<String>,

    /// The webhook secret the gateway holds for this provider.
    #[arg(
        long,
        env = "LOADGEN_SECRET",
        hide_env_values = true,
        value_parser = parse_secret,
        required_unless_present = "self_test"
    )]
    pub secret: Option<Secret>,

    /// The header that carries the signature.
    #[arg(long, default_value = "Mock-Signature")]
    pub header: String,

    /// How many webhooks to send to each target.
    #[arg(long, default_value_t = 20_000)]
    pub requests: usize,

    /// How many connections (and requests in flight) per target.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,

    /// Bodies are padded with JSON whitespace to at least this many bytes.
    #[arg(long, default_value_t = 512)]
    pub body_size: usize,

    /// Skip the bare-server baseline (the rate ratio is then not judged).
    #[arg(long)]
    pub no_baseline: bool,

    /// The gateway's process id, to report its peak RSS (VmHWM) after the run.
    #[arg(long)]
    pub gateway_pid: Option<u32>,

    /// Stop each target's run after this many seconds and report what was answered.
    #[arg(long, default_value_t = 120)]
    pub max_seconds: u64,

    /// Untimed requests sent to each target first (fresh events, not counted), so that
    /// neither target is measured cold.
    #[arg(long, default_value_t = 1000)]
    pub warmup: usize,

    /// Aim at an in-process stand-in (a bare server that verifies signatures with the
    /// gateway's verifier) instead of --target: checks the tool itself, measures no gateway.
    #[arg(long)]
    pub self_test: bool,
}

fn parse_secret(value: &str) -> Result<Secret, Infallible> {
    Ok(Secret::new(value))
}

/// What a run found.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The figures for the gateway (or the self-test stand-in).
    pub gateway: Summary,
    /// The figures for the bare server, unless `--no-baseline`.
    pub bare: Option<Summary>,
    /// The gateway's peak RSS in MB, when `--gateway-pid` was given.
    pub peak_rss_mb: Option<Result<f64, String>>,
    /// The verdict, one check per target.
    pub checks: Vec<Check>,
}

impl Outcome {
    /// Whether no check failed (checks that could not be made do not fail the run).
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.state != CheckState::Fail)
    }
}

/// Options after validation.
struct Plan {
    requests: usize,
    concurrency: usize,
    body_size: usize,
    header: HeaderName,
    max_time: Duration,
    warmup: usize,
}

fn plan(opts: &Opts) -> Result<Plan> {
    if opts.requests == 0 || opts.requests > MAX_REQUESTS {
        bail!("--requests must be between 1 and {MAX_REQUESTS}");
    }
    if opts.concurrency == 0 || opts.concurrency > MAX_CONCURRENCY {
        bail!("--concurrency must be between 1 and {MAX_CONCURRENCY}");
    }
    if opts.body_size > MAX_BODY_SIZE {
        bail!("--body-size must be at most {MAX_BODY_SIZE} bytes");
    }
    // Natural events are about 300 bytes; 512 is a safe estimate of the floor.
    if opts.warmup > MAX_REQUESTS {
        bail!("--warmup must be at most {MAX_REQUESTS}");
    }
    // The warm-up load is dropped before the measured one is built, so the larger counts.
    let most = opts.requests.max(opts.warmup);
    if most.saturating_mul(opts.body_size.max(512)) > MAX_LOAD_BYTES {
        bail!(
            "--requests x --body-size would pre-build more than {} MB of bodies",
            MAX_LOAD_BYTES >> 20
        );
    }
    let limit = DEFAULT_TOLERANCE.saturating_sub(STALENESS_MARGIN).as_secs();
    if opts.max_seconds == 0 || opts.max_seconds > limit {
        bail!(
            "--max-seconds must be between 1 and {limit}: signatures are made before the \
             clock starts and the gateway refuses them after {} s",
            DEFAULT_TOLERANCE.as_secs()
        );
    }
    let header = HeaderName::from_bytes(opts.header.as_bytes())
        .with_context(|| format!("--header {:?} is not a valid header name", opts.header))?;
    Ok(Plan {
        requests: opts.requests,
        concurrency: opts.concurrency.min(opts.requests),
        body_size: opts.body_size,
        header,
        max_time: Duration::from_secs(opts.max_seconds),
        warmup: opts.warmup,
    })
}

/// Runs the benchmark as the options say, printing progress and the report to stdout.
pub async fn run(opts: &Opts) -> Result<Outcome> {
    let plan = plan(opts)?;
    let secret = match (&opts.secret, opts.self_test) {
        (Some(secret), _) => secret.clone(),
        (None, true) => Secret::new("whsec_loadgen_self_test"),
        (None, false) => bail!("--secret (or LOADGEN_SECRET) is required"),
    };

    // In a self-test the "gateway" is a stand-in that must outlive the runs.
    let stand_in = if opts.self_test {
        Some(BareServer::start(Some(Verify {
            header: plan.header.clone(),
            verifier: SignatureVerifier::new(std::slice::from_ref(&secret), DEFAULT_TOLERANCE),
        }))?)
    } else {
        None
    };
    let (gateway_url, gateway_label) = match (&stand_in, &opts.target) {
        (Some(stand_in), _) => (stand_in.url(), "self-test"),
        (None, Some(url)) => (url.clone(), "gateway"),
        (None, None) => bail!("--target is required (or --self-test)"),
    };
    // Checked before anything is sent anywhere, the baseline included.
    let gateway_target = target::loopback_target(&gateway_url)?;

    println!(
        "loadgen: {} requests per target after {} untimed, {} connections, bodies >= {} \
         bytes, signature in {}, at most {} s per target",
        plan.requests,
        plan.warmup,
        plan.concurrency,
        plan.body_size,
        plan.header,
        plan.max_time.as_secs()
    );

    let bare = if opts.no_baseline {
        None
    } else {
        let server = BareServer::start(None)?;
        let target = target::loopback_target(&server.url())?;
        println!("baseline: bare hyper server at {}", server.addr());
        Some(fire(&plan, &secret, &target, "bare").await?)
    };

    println!("{gateway_label}: {gateway_url}");
    let gateway = fire(&plan, &secret, &gateway_target, gateway_label).await?;
    drop(stand_in);

    // Read after the run: VmHWM is the high-water mark since the process started, so it
    // includes the load just applied.
    let peak_rss_mb = opts
        .gateway_pid
        .map(|pid| report::peak_rss_mb(pid).map_err(|e| format!("{e:#}")));

    let checks = report::checks(&gateway, bare.as_ref(), peak_rss_mb.as_ref());
    let outcome = Outcome {
        gateway,
        bare,
        peak_rss_mb,
        checks,
    };
    print!("{}", render(&outcome));
    Ok(outcome)
}

/// Builds the load for one target (untimed), then fires it (timed).
async fn fire(
    plan: &Plan,
    secret: &Secret,
    target: &target::Target,
    label: &str,
) -> Result<Summary> {
    // Each target gets fresh events: the gateway must record every one, not find a
    // duplicate, and fresh timestamps keep the signatures far from stale.
    if plan.warmup > 0 {
        let load = events::build_load(secret, plan.warmup, plan.body_size);
        let warm = client::fire(target, &plan.header, load, plan.concurrency, plan.max_time)
            .await
            .with_context(|| format!("{label} warm-up failed"))?;
        // Failures here are shown but not counted; the measured run will show them again
        // if they are not a start-up blip.
        let warm = Summary::new(&format!("{label} warm-up"), plan.warmup, warm);
        print!("{}", report::warnings(&warm));
    }
    let load = events::build_load(secret, plan.requests, plan.body_size);
    let run = client::fire(target, &plan.header, load, plan.concurrency, plan.max_time)
        .await
        .with_context(|| format!("{label} run failed"))?;
    Ok(Summary::new(label, plan.requests, run))
}

fn render(outcome: &Outcome) -> String {
    let mut rows = Vec::new();
    rows.extend(outcome.bare.as_ref());
    rows.push(&outcome.gateway);
    let mut out = String::from("\n");
    out.push_str(&report::table(&rows));
    if let Some(bare) = &outcome.bare {
        out.push_str(&format!(
            "{}/bare rate ratio: {:.2}x\n",
            outcome.gateway.label,
            report::rate_ratio(&outcome.gateway, bare)
        ));
    }
    match &outcome.peak_rss_mb {
        Some(Ok(mb)) => out.push_str(&format!("gateway peak RSS (VmHWM): {mb:.1} MB\n")),
        Some(Err(why)) => out.push_str(&format!("gateway peak RSS: unavailable: {why}\n")),
        None => {}
    }
    for row in &rows {
        out.push_str(&report::warnings(row));
    }
    let verdict = if outcome.passed() { "PASS" } else { "FAIL" };
    let items: Vec<String> = outcome
        .checks
        .iter()
        .map(|c| {
            let tag = match c.state {
                CheckState::Pass => "ok",
                CheckState::Fail => "FAIL",
                CheckState::NotMeasured => "n/a",
            };
            format!("{tag}: {}", c.detail)
        })
        .collect();
    out.push_str(&format!("RESULT: {verdict} [{}]\n", items.join("; ")));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(args: &[&str]) -> Opts {
        let mut argv = vec!["loadgen"];
        argv.extend_from_slice(args);
        Opts::try_parse_from(argv).unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_hundred_webhooks_at_a_bare_server_all_succeed_with_a_baseline() {
        let server = BareServer::start(None).unwrap();
        let url = server.url();
        let o = opts(&[
            "--target",
            &url,
            "--secret",
            "whsec_loadgen_test",
            "--requests",
            "200",
            "--concurrency",
            "8",
            "--max-seconds",
            "60",
            "--warmup",
            "50",
        ]);
        let outcome = run(&o).await.unwrap();
        for summary in [&outcome.gateway, outcome.bare.as_ref().unwrap()] {
            assert_eq!(summary.ok, 200, "{summary:?}");
            assert_eq!(summary.failures, 0);
            assert!(summary.clean());
            assert!(summary.rate > 0.0);
            assert!(summary.p50 <= summary.p90 && summary.p90 <= summary.p99);
            assert!(summary.p99 <= summary.max);
        }
        assert_eq!(outcome.checks[0].state, CheckState::Pass);
        assert_eq!(outcome.checks[3].state, CheckState::NotMeasured);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_self_test_stand_in_accepts_every_signature_loadgen_makes() {
        let o = opts(&[
            "--self-test",
            "--requests",
            "200",
            "--concurrency",
            "4",
            "--warmup",
            "20",
            "--no-baseline",
            "--gateway-pid",
            &std::process::id().to_string(),
        ]);
        let outcome = run(&o).await.unwrap();
        assert_eq!(outcome.gateway.label, "self-test");
        assert_eq!(outcome.gateway.ok, 200, "{:?}", outcome.gateway.samples);
        assert!(outcome.bare.is_none());
        assert!(matches!(outcome.peak_rss_mb, Some(Ok(mb)) if mb > 0.0));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_gateway_refusing_the_signatures_fails_the_run_loudly() {
        let server = BareServer::start(Some(Verify {
            header: HeaderName::from_static("mock-signature"),
            verifier: SignatureVerifier::new(&[Secret::new("whsec_other")], DEFAULT_TOLERANCE),
        }))
        .unwrap();
        let url = server.url();
        let o = opts(&[
            "--target",
            &url,
            "--secret",
            "whsec_loadgen_test",
            "--requests",
            "20",
            "--concurrency",
            "2",
            "--warmup",
            "0",
            "--no-baseline",
        ]);
        let outcome = run(&o).await.unwrap();
        assert_eq!(outcome.gateway.ok, 0);
        assert_eq!(outcome.gateway.failures, 20);
        assert!(!outcome.passed());
        assert!(outcome.gateway.samples[0].contains("401"));
        assert!(render(&outcome).contains("FAILED"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_target_that_never_answers_is_given_up_on_after_max_seconds() {
        // Accepts connections and never reads or answers, like a gateway stuck on a lock.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/webhooks/mock", listener.local_addr().unwrap());
        let hold = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
            }
        });
        let o = opts(&[
            "--target",
            &url,
            "--secret",
            "whsec_loadgen_test",
            "--requests",
            "10",
            "--concurrency",
            "2",
            "--warmup",
            "0",
            "--max-seconds",
            "1",
            "--no-baseline",
        ]);
        let began = std::time::Instant::now();
        let outcome = run(&o).await.unwrap();
        assert!(began.elapsed() < Duration::from_secs(5));
        assert!(outcome.gateway.cut_short);
        assert_eq!(outcome.gateway.unanswered, 10);
        assert!(!outcome.passed());
        assert!(render(&outcome).contains("UNANSWERED"));
        hold.abort();
    }

    #[tokio::test]
    async fn a_target_off_this_machine_is_refused_before_anything_is_sent() {
        let o = opts(&[
            "--target",
            "http://192.0.2.1:8080/webhooks/mock",
            "--secret",
            "whsec_loadgen_test",
        ]);
        let err = run(&o).await.unwrap_err().to_string();
        assert!(err.contains("not a loopback address"), "{err}");
    }

    #[test]
    fn a_run_longer_than_the_signature_tolerance_is_refused() {
        let o = opts(&["--self-test", "--max-seconds", "600"]);
        assert!(plan(&o).is_err());
        assert!(plan(&opts(&["--self-test", "--requests", "0"])).is_err());
        assert!(plan(&opts(&["--self-test", "--header", "bad header"])).is_err());
        assert!(plan(&opts(&["--self-test"])).is_ok());
    }

    #[test]
    fn the_cli_needs_a_target_and_secret_unless_self_testing() {
        assert!(Opts::try_parse_from(["loadgen"]).is_err());
        assert!(Opts::try_parse_from(["loadgen", "--target", "http://127.0.0.1:1/"]).is_err());
        assert!(Opts::try_parse_from([
            "loadgen",
            "--self-test",
            "--target",
            "http://127.0.0.1:1/"
        ])
        .is_err());
        let o = opts(&["--target", "http://127.0.0.1:1/", "--secret", "s"]);
        assert_eq!(o.requests, 20_000);
        assert_eq!(o.concurrency, 32);
        assert_eq!(o.max_seconds, 120);
        assert_eq!(o.warmup, 1000);
        assert!(format!("{o:?}").contains("Secret(***)"));
    }
}
