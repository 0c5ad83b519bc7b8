//! `hisflow serve` and `hisflow switch` in child processes: their JSON logs
//! collected as they write them, the address each listens on read from the
//! log line that says so.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

/// A `hisflow` process that listens. Dropping it kills it, so that a
/// failing test leaves no process behind.
pub struct Spawned {
    pub child: Child,
    pub addr: String,
    pub logs: Arc<Mutex<Vec<String>>>,
    _dir: Option<tempfile::TempDir>,
}

impl Spawned {
    /// Runs `hisflow ARGS --log-json` with `RUST_LOG=rust_log` and waits
    /// for the first log line with an `addr`.
    pub fn start(args: &[&str], rust_log: &str) -> Spawned {
        let mut child = Command::new(env!("CARGO_BIN_EXE_hisflow"))
            .args(args)
            .arg("--log-json")
            .env("RUST_LOG", rust_log)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let logs = Arc::new(Mutex::new(Vec::new()));
        let mut line = String::new();
        let addr = loop {
            line.clear();
            if stderr.read_line(&mut line).unwrap() == 0 {
                let _ = child.kill();
                panic!(
                    "hisflow {args:?} exited before listening: {:#?}",
                    logs.lock().unwrap()
                );
            }
            logs.lock().unwrap().push(line.clone());
            if let Ok(log) = serde_json::from_str::<Value>(&line)
                && let Some(addr) = log["fields"]["addr"].as_str()
            {
                break addr.to_string();
            }
        };
        let sink = logs.clone();
        std::thread::spawn(move || {
            for line in stderr.lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap().push(line);
            }
        });
        Spawned {
            child,
            addr,
            logs,
            _dir: None,
        }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.addr.rsplit_once(':').unwrap().1.parse().unwrap()
    }

    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Kills it at once (SIGKILL), as a crash would, and waits for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Its exit code, within 10 s.
    pub fn exit_code(&mut self) -> Option<i32> {
        (0..100)
            .find_map(|_| {
                std::thread::sleep(Duration::from_millis(100));
                self.child.try_wait().unwrap()
            })
            .and_then(|s| s.code())
    }

    /// The log lines that are JSON.
    pub fn logs(&self) -> Vec<Value> {
        self.logs
            .lock()
            .unwrap()
            .iter()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.kill();
        }
    }
}

/// `hisflow serve` with `config` (YAML): on an ephemeral port unless it
/// says `listen:`, the simulator's controls on, as the tests drive the
/// simulated switch through them; its data directory in a folder of its
/// own.
pub fn serve(config: &str, rust_log: &str) -> Spawned {
    let dir = tempfile::tempdir().unwrap();
    let mut served = serve_in(dir.path(), config, rust_log);
    served._dir = Some(dir);
    served
}

/// [`serve`] with its configuration and data directory (`data`, unless
/// `config` names one) in `dir`, which outlives it: a second `serve` in the
/// same `dir` finds what the first kept.
pub fn serve_in(dir: &std::path::Path, config: &str, rust_log: &str) -> Spawned {
    let cfg = dir.join("his.yaml");
    let listen = if config.contains("listen:") {
        ""
    } else {
        "listen: 127.0.0.1:0\n"
    };
    let data = if config.contains("data_dir:") || config.contains("cluster:") {
        ""
    } else {
        "data_dir: data\n"
    };
    std::fs::write(
        &cfg,
        format!("{listen}{data}simulator_controls: true\n{config}"),
    )
    .unwrap();
    Spawned::start(&["serve", "--config", cfg.to_str().unwrap()], rust_log)
}

/// `hisflow switch` on `listen` (`127.0.0.1:0` for an ephemeral port),
/// with `config` (YAML) when given.
pub fn switch(config: Option<&str>, listen: &str) -> Spawned {
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec!["switch".to_string(), "--listen".into(), listen.into()];
    if let Some(config) = config {
        let cfg = dir.path().join("switch.yaml");
        std::fs::write(&cfg, config).unwrap();
        args.extend(["--config".into(), cfg.to_str().unwrap().to_string()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut switch = Spawned::start(&args, "info");
    switch._dir = Some(dir);
    switch
}

/// Runs a client's steps on a runtime of their own.
pub fn block_on<F: std::future::Future>(steps: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(steps)
}

/// A plain HTTP GET, its whole answer as text.
pub async fn http_get(addr: &str, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut back = Vec::new();
    tcp.read_to_end(&mut back).await.unwrap();
    String::from_utf8_lossy(&back).into_owned()
}
