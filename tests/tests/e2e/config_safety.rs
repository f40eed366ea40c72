//! A wrong configuration cannot run quietly in the wrong mode or leak a secret, through the
//! real binary: a file (or an environment) that forgets `[hantera]` is refused with the
//! fix, sandbox mode is explicit, live credentials are refused next to the sandbox, the
//! test-only mock next to a real Hantera needs its flag (and is logged), errors never show
//! secret values, and secrets from the environment keep their exact text.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use tests::*;

/// Runs `cmd` to its exit, killing it (and failing) if it is still running after `limit`:
/// a gateway that should refuse its configuration must not hang a test by serving.
fn run_to_exit(mut cmd: Command, limit: Duration) -> Output {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn psp-gateway");
    let deadline = Instant::now() + limit;
    loop {
        if child.try_wait().expect("try_wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "psp-gateway was still running after {limit:?}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A temporary folder holding `gateway.toml` with `toml`, where the gateway also keeps its
/// SQLite file (the binary runs with this folder as its working directory).
struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn new(toml: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[store]\nurl = \"sqlite://{}\"\n{toml}",
            dir.path().join("gateway.db").display()
        );
        std::fs::write(dir.path().join("gateway.toml"), config).expect("write config");
        Self { dir }
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("gateway.toml")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(binary());
        cmd.current_dir(self.dir.path())
            .args(args)
            .arg("--config")
            .arg(self.config())
            .env("RUST_LOG", "warn");
        cmd
    }

    /// `serve` and `check-config` on this file: both must fail, with the same complaint.
    fn refused_by_serve_and_check_config(&self) -> (String, String) {
        let serve = run_to_exit(self.command(&["serve"]), Duration::from_secs(20));
        let check = run_to_exit(self.command(&["check-config"]), Duration::from_secs(20));
        assert!(!serve.status.success(), "serve accepted the configuration");
        assert!(
            !check.status.success(),
            "check-config accepted the configuration"
        );
        (
            String::from_utf8_lossy(&serve.stderr).into_owned(),
            String::from_utf8_lossy(&check.stderr).into_owned(),
        )
    }
}

const MOCK: &str = "[providers.mock]\nwebhook_secret = \"whsec_x\"\n";
/// A Hantera nobody answers at: building the gateway does not call it.
const HANTERA: &str = "[hantera]\nbase_url = \"http://127.0.0.1:9\"\nclient_id = \"psp-gateway\"\nclient_secret = \"sandbox-secret\"\n";

#[test]
fn a_config_file_without_hantera_is_refused_by_serve_and_check_config_with_the_fix() {
    let files = Files::new(MOCK);
    let (serve, check) = files.refused_by_serve_and_check_config();
    for stderr in [&serve, &check] {
        for fix in [
            "[hantera]",
            "base_url",
            "client_secret",
            "hook_token",
            "[sandbox] enabled = true",
        ] {
            assert!(stderr.contains(fix), "{fix} is not named: {stderr}");
        }
    }
    assert!(
        !files.dir.path().join("gateway.db").exists(),
        "nothing was started"
    );
}

#[test]
fn environment_variables_without_a_file_or_hantera_are_refused_like_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(binary());
    cmd.current_dir(dir.path())
        .env("PSP_SERVER__LISTEN", "127.0.0.1:0")
        .env("PSP_PROVIDERS__MOCK__WEBHOOK_SECRET", "whsec_x");
    let out = run_to_exit(cmd, Duration::from_secs(20));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("PSP_SANDBOX__ENABLED=true") && stderr.contains("[hantera]"),
        "{stderr}"
    );
    assert!(
        stderr.contains("PSP_SERVER__LISTEN"),
        "names what configured it: {stderr}"
    );
}

#[tokio::test]
async fn a_file_with_the_sandbox_enabled_runs_the_in_process_sandbox() {
    let files = Files::new(&format!("[sandbox]\nenabled = true\n{MOCK}"));
    let check = run_to_exit(files.command(&["check-config"]), Duration::from_secs(20));
    let stdout = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success(), "{stdout}");
    assert!(
        stdout.contains("in-process sandbox") && stdout.contains("mock"),
        "{stdout}"
    );
    let gateway = spawn_with(files.command(&["serve"]), "psp-gateway listening on ");
    let products = get_json(&format!("{}/sandbox/products", gateway.url)).await;
    assert!(
        products[0]["productNumber"].is_string(),
        "the sandbox serves its catalog: {products}"
    );
    let ready = http()
        .get(format!("{}/readyz", gateway.url))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
}

#[test]
fn a_live_stripe_key_next_to_the_sandbox_is_refused_without_being_printed() {
    for key in ["sk_live_51DoNotPrintThis", "rk_live_51DoNotPrintThis"] {
        let files = Files::new(&format!(
            "[sandbox]\nenabled = true\n[providers.stripe]\nsecret_key = \"{key}\"\nwebhook_secrets = [\"whsec_x\"]\n"
        ));
        let (serve, check) = files.refused_by_serve_and_check_config();
        for stderr in [&serve, &check] {
            assert!(
                stderr.contains("secret_key") && stderr.contains("live"),
                "{stderr}"
            );
            assert!(!stderr.contains("DoNotPrintThis"), "{stderr}");
        }
    }
    // The embedded default asked for from the environment holds to the same rule.
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(binary());
    cmd.current_dir(dir.path())
        .env("PSP_SANDBOX__ENABLED", "true")
        .env("PSP_SERVER__LISTEN", "127.0.0.1:0")
        .env(
            "PSP_PROVIDERS__STRIPE__SECRET_KEY",
            "sk_live_51DoNotPrintThis",
        );
    let out = run_to_exit(cmd, Duration::from_secs(20));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("secret_key") && !stderr.contains("DoNotPrintThis"),
        "{stderr}"
    );
}

#[test]
fn kustom_production_credentials_next_to_the_sandbox_are_refused() {
    for (table, key) in [
        ("api_key = \"kco_live_api_DoNotPrintThis\"", "api_key"),
        (
            "api_key = \"kco_test_api_DoNotPrintThis\"\napi_base = \"https://api.kustom.co\"",
            "api_base",
        ),
    ] {
        let files = Files::new(&format!(
            "[sandbox]\nenabled = true\n[providers.kustom]\n{table}\n"
        ));
        let (serve, check) = files.refused_by_serve_and_check_config();
        for stderr in [&serve, &check] {
            assert!(stderr.contains(key) && stderr.contains("live"), "{stderr}");
            assert!(!stderr.contains("DoNotPrintThis"), "{stderr}");
        }
    }
}

#[tokio::test]
async fn the_mock_next_to_a_real_hantera_is_refused_unless_allowed_and_then_logged() {
    let files = Files::new(&format!("{HANTERA}{MOCK}"));
    let (serve, check) = files.refused_by_serve_and_check_config();
    for stderr in [&serve, &check] {
        assert!(
            stderr.contains("mock") && stderr.contains("allow_with_real_hantera = true"),
            "{stderr}"
        );
    }

    let files = Files::new(&format!("{HANTERA}{MOCK}allow_with_real_hantera = true\n"));
    let check = run_to_exit(files.command(&["check-config"]), Duration::from_secs(20));
    assert!(check.status.success());
    assert!(
        String::from_utf8_lossy(&check.stderr).contains("for tests only"),
        "check-config warns too"
    );
    let (gateway, stderr) =
        spawn_collecting_stderr(files.command(&["serve"]), "psp-gateway listening on ");
    wait_for("the start-up warning", Duration::from_secs(10), || async {
        let lines = stderr.lock().unwrap();
        lines
            .iter()
            .any(|l| l.contains("WARN") && l.contains("for tests only"))
            .then_some(())
    })
    .await;
    drop(gateway);
}

#[test]
fn a_secret_in_a_broken_config_is_never_printed() {
    let cases = [
        // A secret of the wrong type (serde would quote it).
        "[hantera]\nbase_url = \"http://127.0.0.1:9\"\nclient_id = \"a\"\nclient_secret = 98765432109876\n",
        // A TOML syntax error on the line holding a secret (the parser would quote it).
        "[sandbox]\nenabled = true\n[server]\nadmin_token = \"98765432109876-token\n",
        "[sandbox]\nenabled = true\n[server]\nadmin_token = 98765432109876-token\n",
    ];
    for toml in cases {
        // Written without the helper's [server] header, which would repeat a table.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bad.toml");
        std::fs::write(&file, toml).unwrap();
        for command in ["serve", "check-config"] {
            let mut cmd = Command::new(binary());
            cmd.current_dir(dir.path())
                .args([command, "--config"])
                .arg(&file);
            let out = run_to_exit(cmd, Duration::from_secs(20));
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{toml}");
            assert!(!stderr.contains("98765432109876"), "{command}: {stderr}");
        }
    }
}

#[tokio::test]
async fn all_digit_secrets_from_the_environment_are_kept_as_the_exact_text() {
    const HOOK_TOKEN: &str = "0000111122223333444";
    const WEBHOOK_SECRET: &str = "000123456789";
    let files = GatewayFiles::new("http://127.0.0.1:9", "");
    let gateway = files.start(&[
        ("PSP_HANTERA__HOOK_TOKEN", HOOK_TOKEN),
        ("PSP_PROVIDERS__MOCK__WEBHOOK_SECRET", WEBHOOK_SECRET),
    ]);

    // The hook token: the exact text is accepted (the body is then judged: 400), a
    // number-like rendering of it is not.
    for (token, status) in [(HOOK_TOKEN, 400), ("111122223333444", 401)] {
        let resp = http()
            .post(format!("{}/hantera/hooks/OnCartMutation", gateway.url))
            .bearer_auth(token)
            .json(&json!({ "hook": "not-this-hook" }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), status, "token {token}");
    }

    // The webhook secret: an event signed with the exact text verifies.
    let body = mock_event(
        "mevt_digits",
        "payment.captured",
        &json!({ "id": "mpay_x" }),
    );
    for (secret, status) in [(WEBHOOK_SECRET, 200), ("123456789", 401)] {
        let resp = post_webhook(&gateway.url, &mock_signature(secret, &body), body.clone()).await;
        assert_eq!(resp.status(), status, "secret {secret}");
    }
}
