//! Turning raw latencies into figures, judging them against the targets, printing them.

use std::fmt::Write as _;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::client::RunResult;

/// The gateway must serve at least this fraction of the bare server's rate.
pub const MIN_RATE_RATIO: f64 = 0.5;
/// The gateway's p99 latency must not exceed this.
pub const MAX_P99: Duration = Duration::from_millis(5);
/// The gateway's peak resident set must not exceed this many MB (MiB, as /proc counts).
pub const MAX_PEAK_RSS_MB: f64 = 64.0;

/// The figures for one target.
#[derive(Debug, Clone)]
pub struct Summary {
    /// `bare` or `gateway` (or `self-test` for the stand-in).
    pub label: String,
    /// Requests the run meant to send.
    pub planned: usize,
    /// Answers with a 2xx status.
    pub ok: usize,
    /// Non-2xx answers plus requests lost to a connection error.
    pub failures: usize,
    /// Requests never answered because `--max-seconds` ran out or workers lost their
    /// connections for good.
    pub unanswered: usize,
    /// Whether `--max-seconds` ran out.
    pub cut_short: bool,
    /// From the first request to the last answer.
    pub elapsed: Duration,
    /// 2xx answers per second: fast refusals must not make a broken target look quick.
    pub rate: f64,
    /// Latency percentiles over every complete response, whatever its status.
    pub p50: Duration,
    /// See `p50`.
    pub p90: Duration,
    /// See `p50`.
    pub p99: Duration,
    /// The slowest complete response.
    pub max: Duration,
    /// The first few failures, described.
    pub samples: Vec<String>,
}

impl Summary {
    pub(crate) fn new(label: &str, planned: usize, mut run: RunResult) -> Self {
        run.latencies.sort_unstable();
        let secs = run.elapsed.as_secs_f64();
        Self {
            label: label.to_owned(),
            planned,
            ok: run.ok,
            failures: run.failures,
            unanswered: planned.saturating_sub(run.ok + run.failures),
            cut_short: run.cut_short,
            elapsed: run.elapsed,
            rate: if secs > 0.0 {
                run.ok as f64 / secs
            } else {
                0.0
            },
            p50: percentile(&run.latencies, 50.0),
            p90: percentile(&run.latencies, 90.0),
            p99: percentile(&run.latencies, 99.0),
            max: run.latencies.last().copied().unwrap_or_default(),
            samples: run.samples,
        }
    }

    /// Whether every planned request was answered with a 2xx.
    pub fn clean(&self) -> bool {
        self.failures == 0 && self.unanswered == 0
    }
}

/// The nearest-rank percentile `p` (0–100] of an ascending slice; zero for an empty one.
///
/// Nearest rank returns a latency that was actually observed, never an interpolation, so
/// "p99 = 4.1 ms" means one request in a hundred really took 4.1 ms or more.
pub(crate) fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Whether a check passed, failed, or could not be made in this run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckState {
    /// The target was met.
    Pass,
    /// The target was missed.
    Fail,
    /// This run had no figure for it (no baseline, no `--gateway-pid`).
    NotMeasured,
}

/// One line of the verdict.
#[derive(Debug, Clone)]
pub struct Check {
    /// The outcome.
    pub state: CheckState,
    /// The figure and the target, e.g. `p99 3.10 ms <= 5 ms`.
    pub detail: String,
}

impl Check {
    fn new(state: CheckState, detail: String) -> Self {
        Self { state, detail }
    }
}

/// Judges a run against the targets.
pub(crate) fn checks(
    gateway: &Summary,
    bare: Option<&Summary>,
    peak_rss_mb: Option<&Result<f64, String>>,
) -> Vec<Check> {
    use CheckState::{Fail, NotMeasured, Pass};
    let mut checks = Vec::new();

    checks.push(if gateway.clean() {
        Check::new(
            Pass,
            format!("all {} requests answered 2xx", gateway.planned),
        )
    } else {
        Check::new(
            Fail,
            format!(
                "{} failed and {} unanswered of {} requests",
                gateway.failures, gateway.unanswered, gateway.planned
            ),
        )
    });

    checks.push(match bare {
        None => Check::new(NotMeasured, "rate vs bare: no baseline run".into()),
        Some(bare) if !bare.clean() => Check::new(
            Fail,
            "rate vs bare: the baseline run itself had failures".into(),
        ),
        Some(bare) => {
            let ratio = rate_ratio(gateway, bare);
            let state = if ratio >= MIN_RATE_RATIO { Pass } else { Fail };
            let cmp = if state == Pass { ">=" } else { "<" };
            Check::new(
                state,
                format!("rate {ratio:.2}x bare {cmp} {MIN_RATE_RATIO:.2}x"),
            )
        }
    });

    let state = if gateway.p99 <= MAX_P99 { Pass } else { Fail };
    let cmp = if state == Pass { "<=" } else { ">" };
    checks.push(Check::new(
        state,
        format!(
            "p99 {} ms {cmp} {} ms",
            ms(gateway.p99),
            MAX_P99.as_millis()
        ),
    ));

    checks.push(match peak_rss_mb {
        None => Check::new(
            NotMeasured,
            "peak RSS: pass --gateway-pid to measure it".into(),
        ),
        Some(Err(why)) => Check::new(Fail, format!("peak RSS unreadable: {why}")),
        Some(Ok(mb)) => {
            let state = if *mb <= MAX_PEAK_RSS_MB { Pass } else { Fail };
            let cmp = if state == Pass { "<=" } else { ">" };
            Check::new(
                state,
                format!("peak RSS {mb:.1} MB {cmp} {MAX_PEAK_RSS_MB:.0} MB"),
            )
        }
    });
    checks
}

/// The gateway's rate as a multiple of the bare server's.
pub(crate) fn rate_ratio(gateway: &Summary, bare: &Summary) -> f64 {
    if bare.rate > 0.0 {
        gateway.rate / bare.rate
    } else {
        0.0
    }
}

/// The peak resident set (`VmHWM`) of process `pid`, in MB.
pub(crate) fn peak_rss_mb(pid: u32) -> Result<f64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    let kb = parse_vmhwm_kb(&status).with_context(|| format!("{path} has no VmHWM line"))?;
    Ok(kb as f64 / 1024.0)
}

/// The `VmHWM:   12345 kB` figure of a `/proc/<pid>/status` text, in kB.
fn parse_vmhwm_kb(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kb| kb.parse().ok())
}

/// Milliseconds with three decimals, for tables.
pub(crate) fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1000.0)
}

/// The table of figures, one row per target.
pub(crate) fn table(rows: &[&Summary]) -> String {
    let mut out = format!(
        "{:<10} {:>8} {:>8} {:>7} {:>9} {:>10} {:>8} {:>8} {:>8} {:>8}\n",
        "target",
        "requests",
        "2xx",
        "errors",
        "elapsed_s",
        "req/s",
        "p50_ms",
        "p90_ms",
        "p99_ms",
        "max_ms"
    );
    for s in rows {
        let _ = writeln!(
            out,
            "{:<10} {:>8} {:>8} {:>7} {:>9.3} {:>10.1} {:>8} {:>8} {:>8} {:>8}",
            s.label,
            s.planned,
            s.ok,
            s.failures,
            s.elapsed.as_secs_f64(),
            s.rate,
            ms(s.p50),
            ms(s.p90),
            ms(s.p99),
            ms(s.max)
        );
    }
    out
}

/// Loud lines about anything that makes a row's figures unreliable; empty when clean.
pub(crate) fn warnings(s: &Summary) -> String {
    let mut out = String::new();
    if s.failures > 0 {
        let _ = writeln!(
            out,
            "!!! {}: {} of {} requests FAILED (non-2xx or connection error); \
             its figures are not a valid measurement",
            s.label, s.failures, s.planned
        );
    }
    if s.unanswered > 0 {
        let why = if s.cut_short {
            "--max-seconds ran out"
        } else {
            "connections were lost"
        };
        let _ = writeln!(
            out,
            "!!! {}: {} of {} requests UNANSWERED ({why}); the run is incomplete",
            s.label, s.unanswered, s.planned
        );
    }
    for sample in &s.samples {
        let _ = writeln!(out, "!!!   {}: {sample}", s.label);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms_list(values: impl IntoIterator<Item = u64>) -> Vec<Duration> {
        values.into_iter().map(Duration::from_millis).collect()
    }

    #[test]
    fn percentiles_are_the_nearest_rank_of_the_sorted_latencies() {
        let hundred = ms_list(1..=100);
        assert_eq!(percentile(&hundred, 50.0), Duration::from_millis(50));
        assert_eq!(percentile(&hundred, 90.0), Duration::from_millis(90));
        assert_eq!(percentile(&hundred, 99.0), Duration::from_millis(99));
        assert_eq!(percentile(&hundred, 100.0), Duration::from_millis(100));

        let ten = ms_list(1..=10);
        assert_eq!(percentile(&ten, 50.0), Duration::from_millis(5));
        assert_eq!(
            percentile(&ten, 99.0),
            Duration::from_millis(10),
            "with ten samples the slowest one is the p99"
        );
        assert_eq!(
            percentile(&ten, 0.0),
            Duration::from_millis(1),
            "rank 0 is clamped to the first sample"
        );
    }

    #[test]
    fn a_single_or_missing_sample_gives_a_defined_percentile() {
        assert_eq!(percentile(&ms_list([7]), 50.0), Duration::from_millis(7));
        assert_eq!(percentile(&ms_list([7]), 99.0), Duration::from_millis(7));
        assert_eq!(percentile(&[], 99.0), Duration::ZERO);
    }

    #[test]
    fn peak_rss_is_read_from_the_vmhwm_line() {
        let status =
            "Name:\tgateway\nVmPeak:\t  300000 kB\nVmHWM:\t   40960 kB\nVmRSS:\t 30000 kB\n";
        assert_eq!(parse_vmhwm_kb(status), Some(40960));
        assert_eq!(parse_vmhwm_kb("Name:\tx\n"), None);
        let own = peak_rss_mb(std::process::id()).unwrap();
        assert!(own > 0.0, "this test process has some resident memory");
    }

    #[test]
    fn a_run_with_failures_fails_the_verdict_however_fast_it_was() {
        let fast = Summary {
            label: "gateway".into(),
            planned: 10,
            ok: 9,
            failures: 1,
            unanswered: 0,
            cut_short: false,
            elapsed: Duration::from_millis(10),
            rate: 900.0,
            p50: Duration::from_micros(100),
            p90: Duration::from_micros(100),
            p99: Duration::from_micros(100),
            max: Duration::from_micros(100),
            samples: vec!["HTTP 401 Unauthorized: {}".into()],
        };
        let verdict = checks(&fast, None, None);
        assert_eq!(verdict[0].state, CheckState::Fail);
        assert!(warnings(&fast).contains("FAILED"));
    }
}
