//! The real `herald` binary, driven from a test.
//!
//! Starts `herald serve` with a config in a temp dir, captures stdout and
//! stderr line by line, and reads the bound addresses from the
//! `listening proto=<name> addr=<addr>` log lines, so tests can bind port 0.
//! Every wait has a time-out; nothing sleeps for a fixed time.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// How long a test waits for the server to start or stop.
const START_TIMEOUT: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(20);

/// Polls `check` until it yields a value or `timeout` passes.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return Ok(v);
        }
        if Instant::now() >= deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// A running `herald serve`.
#[derive(Debug)]
pub struct HeraldProcess {
    bin: PathBuf,
    config: PathBuf,
    child: Child,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
}

fn capture(stream: impl Read + Send + 'static, into: Arc<Mutex<String>>) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if let Ok(mut buf) = into.lock() {
                buf.push_str(&line);
                buf.push('\n');
            }
        }
    });
}

impl HeraldProcess {
    /// Writes `config` to `dir/herald.toml` and starts `bin serve` there.
    pub fn start(bin: &Path, dir: &Path, config: &str, extra_args: &[&str]) -> anyhow::Result<Self> {
        let config_path = dir.join("herald.toml");
        std::fs::write(&config_path, config)?;
        let mut child = Command::new(bin)
            .arg("--config")
            .arg(&config_path)
            .args(extra_args)
            .arg("serve")
            .current_dir(dir)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        capture(child.stdout.take().context("stdout")?, stdout.clone());
        capture(child.stderr.take().context("stderr")?, stderr.clone());
        Ok(Self {
            bin: bin.to_owned(),
            config: config_path,
            child,
            stdout,
            stderr,
        })
    }

    /// Everything the server wrote to stderr (its log) so far.
    pub fn log(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Everything the server wrote to stdout so far.
    pub fn stdout(&self) -> String {
        self.stdout.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// The address the listener `proto` bound, once it is logged.
    pub async fn listening(&mut self, proto: &str) -> anyhow::Result<SocketAddr> {
        let needle = format!("listening proto={proto} addr=");
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let log = self.log();
            if let Some(rest) = log
                .lines()
                .find_map(|l| l.split_once(&needle).map(|(_, r)| r.to_owned()))
            {
                let addr = rest.split_whitespace().next().unwrap_or_default();
                return addr.parse().with_context(|| format!("bad address in log: {addr:?}"));
            }
            if let Some(status) = self.child.try_wait()? {
                bail!("herald exited with {status} before listening:\n{log}");
            }
            if Instant::now() >= deadline {
                bail!("herald did not log {needle:?} within {START_TIMEOUT:?}:\n{log}");
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Runs the same binary with the same config: `herald --config … ARGS`.
    pub fn cli(&self, args: &[&str]) -> anyhow::Result<Output> {
        let dir = self.config.parent().context("config dir")?;
        Ok(Command::new(&self.bin)
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .current_dir(dir)
            .output()?)
    }

    /// Runs a command that must succeed; its standard output.
    pub fn run(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = self.cli(args)?;
        anyhow::ensure!(
            out.status.success(),
            "herald {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8(out.stdout)?)
    }

    /// SIGKILL: the process dies at once, mid-write, like a crash.
    pub fn kill(mut self) -> anyhow::Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }

    /// The data dir's config file, to start another process on the same data.
    pub fn config_path(&self) -> &Path {
        &self.config
    }

    /// Sends SIGINT (what Ctrl-C sends) and waits for a clean exit.
    pub async fn interrupt(mut self) -> anyhow::Result<std::process::ExitStatus> {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-INT", &pid]).status()?;
        anyhow::ensure!(sent.success(), "kill -INT {pid} failed");
        let child = &mut self.child;
        let status = wait_for("herald to exit", START_TIMEOUT, || {
            let exited = child.try_wait().ok().flatten();
            async move { exited }
        })
        .await?;
        Ok(status)
    }
}

impl Drop for HeraldProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
