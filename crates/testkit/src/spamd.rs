//! Debian's SpamAssassin `spamd` on a loopback port, started for a test
//! and stopped when dropped. Local tests only (`--local`: no DNS or network
//! rules), two children. A test that needs it fails when it is missing
//! (`.ci/test` installs the `spamassassin` package).

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Rules are compiled at start: allow for a slow machine.
const START: Duration = Duration::from_secs(120);

/// A running spamd.
#[derive(Debug)]
pub struct Spamd {
    addr: SocketAddr,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Spamd {
    /// Starts spamd on a free loopback port and waits until it answers PING.
    pub async fn start() -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
        let dir = tempfile::tempdir()?;
        let child = Command::new("spamd")
            .args([
                "--listen",
                &addr.to_string(),
                "--allowed-ips",
                "127.0.0.1",
                "--local",
                "--max-children",
                "2",
                "--syslog",
                "stderr",
                "-u",
                "nobody",
                "--pidfile",
            ])
            .arg(dir.path().join("spamd.pid"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting spamd (Debian's spamassassin package; .ci/test installs it)")?;
        let mut me = Self { addr, child, _dir: dir };
        let deadline = Instant::now() + START;
        loop {
            if me.ping().await {
                return Ok(me);
            }
            if let Some(status) = me.child.try_wait()? {
                bail!("spamd exited at start: {status}");
            }
            if Instant::now() > deadline {
                bail!("spamd did not answer within {START:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn ping(&self) -> bool {
        let Ok(mut s) = tokio::net::TcpStream::connect(self.addr).await else {
            return false;
        };
        if s.write_all(b"PING SPAMC/1.5\r\n\r\n").await.is_err() {
            return false;
        }
        let mut answer = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut answer)).await;
        read.is_ok() && answer.windows(4).any(|w| w == b"PONG")
    }

    /// Where to point `[spamd] address`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Spamd {
    fn drop(&mut self) {
        // spamd's children follow their parent on SIGTERM.
        let _ = Command::new("kill").arg(self.child.id().to_string()).status();
        let _ = self.child.wait();
    }
}
