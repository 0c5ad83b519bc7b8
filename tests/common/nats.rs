//! A real `nats-server` with JetStream, on a loopback port of its own, for
//! the tests of cluster mode. It stops when the value is dropped.

use std::io::Read;
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Nats {
    child: Child,
    pub url: String,
    port: u16,
    extra: Vec<String>,
    _dir: tempfile::TempDir,
}

/// A port nothing listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Nats {
    pub fn start() -> Nats {
        Nats::start_with(&[])
    }

    /// With more of nats-server's flags (TLS, users).
    pub fn start_with(extra: &[&str]) -> Nats {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let child = spawn(port, dir.path(), extra);
        Nats {
            child,
            url: format!("nats://127.0.0.1:{port}"),
            port,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            _dir: dir,
        }
    }

    /// Kills the server and starts it again on the same port and store.
    pub fn restart_after(&mut self, down: Duration) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::thread::sleep(down);
        let extra: Vec<&str> = self.extra.iter().map(String::as_str).collect();
        self.child = spawn(self.port, self._dir.path(), &extra);
    }
}

fn spawn(port: u16, dir: &std::path::Path, extra: &[&str]) -> Child {
    let mut child = Command::new("nats-server")
        .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
        .arg(dir)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nats-server runs (Debian's package nats-server; .ci/run installs it)");
    for _ in 0..100 {
        if ready(port) {
            return child;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("nats-server did not listen on {port}");
}

/// Whether the server on `port` greets a client. Listening is not enough:
/// a server still starting (JetStream reading its store, on a loaded
/// machine) may take the connection and reset it.
fn ready(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    let mut greeting = [0u8; 4];
    s.read_exact(&mut greeting).is_ok() && &greeting == b"INFO"
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
