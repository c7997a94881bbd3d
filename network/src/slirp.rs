//! A rootless container's network: slirp4netns (Debian's package) gives
//! its namespace a tap device with outbound NAT done in user space, and
//! forwards published ports from the host through its API socket. A
//! rootless kiln cannot make veths onto a host bridge.
//!
//! slirp4netns lives as long as this handle: its stdin is our pipe
//! (`--exit-fd=0`), closed when we drop it or die, and it reports
//! readiness on its stdout (`--ready-fd=1`).

use crate::ports::PortMapping;
use crate::{NetworkError, Result};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The container's address, gateway and DNS on slirp4netns' network.
pub const ADDRESS: std::net::Ipv4Addr = std::net::Ipv4Addr::new(10, 0, 2, 100);
pub const DNS: &str = "10.0.2.3";

pub struct Slirp {
    child: Child,
    api: PathBuf,
}

fn refuse(why: String) -> NetworkError {
    NetworkError::Invalid(format!("slirp4netns: {why}"))
}

/// Whether slirp4netns is installed.
pub fn available() -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join("slirp4netns").is_file()))
        .unwrap_or(false)
}

impl Slirp {
    /// Starts slirp4netns on `netns` (this process's descriptor) with
    /// its API socket at `api`, and publishes `ports`.
    pub fn start(netns: BorrowedFd<'_>, api: &Path, ports: &[PortMapping]) -> Result<Slirp> {
        let _ = std::fs::remove_file(api);
        let path = format!("/proc/{}/fd/{}", std::process::id(), netns.as_raw_fd());
        let mut child = Command::new("slirp4netns")
            .args([
                "--configure",
                "--mtu=65520",
                "--disable-host-loopback",
                "--exit-fd=0",
                "--ready-fd=1",
                "--netns-type=path",
            ])
            .arg(format!("--api-socket={}", api.display()))
            .arg(&path)
            .arg("tap0")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                refuse(format!(
                    "{e} (install Debian's slirp4netns for a rootless container's network)"
                ))
            })?;
        let mut ready = [0u8; 1];
        let ok = child
            .stdout
            .take()
            .map(|mut out| out.read_exact(&mut ready).is_ok())
            .unwrap_or(false);
        if !ok {
            let _ = child.kill();
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            let _ = child.wait();
            return Err(refuse(format!("did not start: {}", err.trim())));
        }
        let slirp = Slirp {
            child,
            api: api.to_path_buf(),
        };
        for p in ports {
            slirp.forward(p)?;
        }
        Ok(slirp)
    }

    /// One `add_hostfwd` request.
    fn forward(&self, p: &PortMapping) -> Result<()> {
        let request = serde_json::json!({
            "execute": "add_hostfwd",
            "arguments": {
                "proto": p.protocol,
                "host_addr": p.host_ip.map_or("0.0.0.0".to_string(), |i| i.to_string()),
                "host_port": p.host_port,
                "guest_addr": ADDRESS.to_string(),
                "guest_port": p.container_port,
            }
        });
        let mut s = UnixStream::connect(&self.api)
            .map_err(|e| refuse(format!("API socket {}: {e}", self.api.display())))?;
        s.write_all(request.to_string().as_bytes())
            .and_then(|_| s.shutdown(std::net::Shutdown::Write))
            .map_err(|e| refuse(format!("API socket: {e}")))?;
        let mut reply = String::new();
        let _ = BufReader::new(s).read_line(&mut reply);
        let v: serde_json::Value = serde_json::from_str(&reply).unwrap_or_default();
        if let Some(e) = v.get("error") {
            return Err(NetworkError::Invalid(format!(
                "cannot publish {}: {}",
                p.display(),
                e.get("desc").and_then(|d| d.as_str()).unwrap_or("refused")
            )));
        }
        Ok(())
    }
}

impl Drop for Slirp {
    fn drop(&mut self) {
        drop(self.child.stdin.take()); // its exit fd
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.api);
    }
}
