//! Servers the tests talk to, all on 127.0.0.1 and stopped on drop: a
//! real registry, the token/fault proxy in front of it, a file server.

use crate::{repo_root, tool, tool_path};
use std::path::Path;

/// A free TCP port on 127.0.0.1 (free when asked; servers retry on a race).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A process the test started, killed and reaped when dropped, whether
/// the test passes or not (a server, or a build that must not outlive it).
pub struct Reaped(pub std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `cmd`, failing the test unless it succeeds; its stdout.
pub fn run_ok(cmd: &mut std::process::Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Waits (up to 5 s) until something listens on 127.0.0.1:`port`; fails
/// the test if `child`, which should, exits first.
pub fn wait_for_port(port: u16, child: &mut std::process::Child, what: &str) {
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited early: {status}");
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    panic!("{what} did not listen on 127.0.0.1:{port}");
}

/// A registry's TLS: its certificate and key, and the CA its clients'
/// certificates must be signed by (none: no client certificates).
pub struct RegistryTls {
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
    pub client_ca: Option<std::path::PathBuf>,
}

/// A private CA (openssl) in `dir`: `ca.crt`/`ca.key`, a server
/// certificate for 127.0.0.1 (`server.crt`/`server.key`) and a client
/// certificate (`client.cert`/`client.key`; `client-v1.cert`, an X.509
/// v1 one for the same key), all signed by it.
pub fn private_ca(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let openssl = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl (Debian's openssl, a dependency of ca-certificates)");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=kiln test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
    ]);
    std::fs::write(dir.join("server.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
    // Signs `csr` with the CA into `out` (X.509 v3 with `ext`, else v1).
    let sign = |csr: &str, out: &str, ext: Option<&str>| {
        let mut args = vec![
            "x509",
            "-req",
            "-in",
            csr,
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            out,
        ];
        if let Some(ext) = ext {
            args.extend(["-extfile", ext]);
        }
        openssl(&args);
    };
    for (name, subject, out, ext) in [
        ("server", "/CN=127.0.0.1", "server.crt", "server.ext"),
        (
            "client",
            "/CN=kiln test client",
            "client.cert",
            "client.ext",
        ),
    ] {
        let key = format!("{name}.key");
        let csr = format!("{name}.csr");
        openssl(&[
            "req", "-newkey", "rsa:2048", "-nodes", "-subj", subject, "-keyout", &key, "-out", &csr,
        ]);
        sign(&csr, out, Some(ext));
    }
    // An X.509 v1 client certificate (no extensions), which TLS refuses.
    sign("client.csr", "client-v1.cert", None);
}

/// A real registry (Debian's `docker-registry`, distribution v2) on
/// 127.0.0.1 with its own storage; stopped on drop.
pub struct Registry {
    pub port: u16,
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl Registry {
    /// No auth when `htpasswd` is None; else basic auth against that
    /// `user:bcrypt-hash` file content.
    pub fn start(htpasswd: Option<&str>) -> Registry {
        Registry::start_with(htpasswd, None)
    }

    /// A registry serving TLS with `tls.cert`/`tls.key` (PEM files), and
    /// demanding a client certificate signed by `tls.client_ca` when set.
    pub fn start_tls(tls: &RegistryTls) -> Registry {
        Registry::start_with(None, Some(tls))
    }

    fn start_with(htpasswd: Option<&str>, tls: Option<&RegistryTls>) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut config = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.path().join("data").display()
        );
        if let Some(tls) = tls {
            config.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                tls.cert.display(),
                tls.key.display()
            ));
            if let Some(ca) = &tls.client_ca {
                config.push_str(&format!("    clientcas:\n      - {}\n", ca.display()));
            }
        }
        if let Some(h) = htpasswd {
            let file = dir.path().join("htpasswd");
            std::fs::write(&file, h).unwrap();
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: kiln-test\n    path: {}\n",
                file.display()
            ));
        }
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).unwrap();
        let mut child = std::process::Command::new(tool_path("docker-registry"))
            .arg("serve")
            .arg(&config_path)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        wait_for_port(port, &mut child, "docker-registry");
        Registry {
            port,
            child,
            _dir: dir,
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A bcrypt `user:hash` line from apache2-utils' htpasswd.
pub fn htpasswd_line(user: &str, password: &str) -> String {
    tool("htpasswd", &["-Bbn", user, password])
}

/// `tests/registry-proxy.py` in front of `upstream`: a token server
/// (`--token USER:PASS`), or a faulty registry (`--corrupt-blobs`,
/// `--close-blobs`). Stopped on drop.
pub struct Proxy {
    pub port: u16,
    child: std::process::Child,
}

impl Proxy {
    pub fn start(upstream: u16, args: &[&str]) -> Proxy {
        let port = free_port();
        let mut child = std::process::Command::new("python3")
            .arg(repo_root().join("tests/registry-proxy.py"))
            .arg("--port")
            .arg(port.to_string())
            .arg("--upstream")
            .arg(format!("127.0.0.1:{upstream}"))
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        wait_for_port(port, &mut child, "registry-proxy.py");
        Proxy { port, child }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn get(&self, path: &str) -> String {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out.split("\r\n\r\n")
            .nth(1)
            .unwrap_or("")
            .trim()
            .to_string()
    }

    /// How many tokens the proxy's token server handed out.
    pub fn tokens_issued(&self) -> u64 {
        self.get("/stats").parse().unwrap()
    }

    /// (manifest GETs, blob GETs) forwarded so far.
    pub fn gets(&self) -> (u64, u64) {
        let body = self.get("/requests");
        let (m, b) = body.split_once(' ').unwrap();
        (m.parse().unwrap(), b.parse().unwrap())
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `python3 -m http.server` serving `dir` on 127.0.0.1 (for `ADD <url>`);
/// stopped on drop.
pub struct FileServer {
    pub port: u16,
    child: std::process::Child,
}

impl FileServer {
    pub fn start(dir: &Path) -> FileServer {
        let port = free_port();
        let mut child = std::process::Command::new("python3")
            .args(["-m", "http.server", "--bind", "127.0.0.1"])
            .arg(port.to_string())
            .current_dir(dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        wait_for_port(port, &mut child, "python3 -m http.server");
        FileServer { port, child }
    }

    /// The URL of `file` under the served directory.
    pub fn url(&self, file: &str) -> String {
        format!("http://127.0.0.1:{}/{file}", self.port)
    }
}

impl Drop for FileServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
