//! Per-registry settings: mirrors, plain-HTTP permission, private CAs and
//! client certificates. They come from one TOML file per scope —
//! `/etc/kiln/config.toml`, then `$XDG_CONFIG_HOME/kiln/config.toml`
//! (`~/.config/kiln/config.toml`), the later winning key by key — with
//! one table per host:
//!
//! ```toml
//! [registry."docker.io"]
//! mirrors = ["mirror.internal:5000"]   # tried in order, then docker.io
//!
//! [registry."reg.corp:5000"]
//! ca = "/etc/pki/corp-ca.pem"          # or a list
//! client_cert = "/etc/kiln/reg.cert"
//! client_key = "/etc/kiln/reg.key"
//! insecure = false                     # true: plain HTTP allowed
//! ```
//!
//! and from docker's `certs.d` layout (`/etc/kiln/certs.d/HOST/` and
//! `$XDG_CONFIG_HOME/kiln/certs.d/HOST/`): every `*.crt` is a CA for HOST,
//! each `NAME.cert` with its `NAME.key` a client certificate. A host with
//! a CA of its own trusts only its CAs, as docker's certs.d does.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One registry host's settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistryConfig {
    /// Hosts (`host[:port]`) tried in order before this one, for pulls.
    pub mirrors: Vec<String>,
    /// Plain HTTP (or an unverified certificate) is allowed.
    pub insecure: bool,
    /// PEM CA certificates this host's TLS certificate is checked against.
    pub ca_pem: Vec<Vec<u8>>,
    /// A client certificate chain and its key (PEM), offered in TLS.
    pub client_pem: Option<(Vec<u8>, Vec<u8>)>,
}

/// What went wrong reading the settings; names the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RegistryConfigError(pub String);

/// The default files: the system's, then the user's.
pub fn default_config_files() -> Vec<PathBuf> {
    let mut files = vec![PathBuf::from("/etc/kiln/config.toml")];
    if let Some(dir) = user_config_dir() {
        files.push(dir.join("config.toml"));
    }
    files
}

/// The default certs.d directories: the system's, then the user's.
pub fn default_certs_dirs() -> Vec<PathBuf> {
    let mut dirs = vec![PathBuf::from("/etc/kiln/certs.d")];
    if let Some(dir) = user_config_dir() {
        dirs.push(dir.join("certs.d"));
    }
    dirs
}

/// `$XDG_CONFIG_HOME/kiln`, else `~/.config/kiln`.
fn user_config_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("kiln"))
}

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    registry: BTreeMap<String, Table>,
}

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Table {
    mirrors: Option<Vec<String>>,
    insecure: Option<bool>,
    ca: Option<OneOrMany>,
    client_cert: Option<PathBuf>,
    client_key: Option<PathBuf>,
}

#[derive(serde::Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(PathBuf),
    Many(Vec<PathBuf>),
}

fn read(path: &Path) -> Result<Vec<u8>, RegistryConfigError> {
    std::fs::read(path).map_err(|e| RegistryConfigError(format!("{}: {e}", path.display())))
}

/// A PEM file that must hold at least one `kind` ("certificate" or "key").
fn pem(path: &Path, want_key: bool) -> Result<Vec<u8>, RegistryConfigError> {
    let bytes = read(path)?;
    let found = ureq::tls::parse_pem(&bytes).any(|item| match item {
        Ok(ureq::tls::PemItem::Certificate(_)) => !want_key,
        Ok(ureq::tls::PemItem::PrivateKey(_)) => want_key,
        _ => false,
    });
    if !found {
        let kind = if want_key {
            "private key"
        } else {
            "certificate"
        };
        return Err(RegistryConfigError(format!(
            "{}: no PEM {kind} in it",
            path.display()
        )));
    }
    Ok(bytes)
}

/// A client certificate and key rustls will use: checked as ureq's TLS
/// will load them (an X.509 v1 certificate, a key that does not parse).
fn client_pair(cert: &Path, key: &Path) -> Result<(Vec<u8>, Vec<u8>), RegistryConfigError> {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let (cert_pem, key_pem) = (pem(cert, false)?, pem(key, true)?);
    let chain: Vec<CertificateDer<'static>> = ureq::tls::parse_pem(&cert_pem)
        .filter_map(|item| match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => Some(CertificateDer::from(c.der().to_vec())),
            _ => None,
        })
        .collect();
    let key_der = {
        use rustls::pki_types::pem::PemObject;
        PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
            RegistryConfigError(format!("{}: no usable private key: {e}", key.display()))
        })?
    };
    rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| RegistryConfigError(e.to_string()))?
    .with_root_certificates(rustls::RootCertStore::empty())
    .with_client_auth_cert(chain, key_der)
    .map_err(|e| {
        RegistryConfigError(format!(
            "{} with {}: not a usable client certificate: {e}",
            cert.display(),
            key.display()
        ))
    })?;
    Ok((cert_pem, key_pem))
}

/// Mirrors are hosts; docker's daemon.json form (`https://host`) is
/// accepted too.
fn mirror_host(m: &str) -> String {
    m.trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string()
}

/// Reads `files` (missing ones are skipped) and `certs_dirs`, later
/// settings winning. A malformed file, an unknown key or an unreadable
/// certificate is an error naming its file.
pub fn load(
    files: &[PathBuf],
    certs_dirs: &[PathBuf],
) -> Result<BTreeMap<String, RegistryConfig>, RegistryConfigError> {
    let mut out: BTreeMap<String, RegistryConfig> = BTreeMap::new();
    for dir in certs_dirs {
        let Ok(hosts) = std::fs::read_dir(dir) else {
            continue;
        };
        let mut hosts: Vec<_> = hosts.filter_map(Result::ok).collect();
        hosts.sort_by_key(|e| e.file_name());
        for host in hosts {
            let name = host.file_name().to_string_lossy().into_owned();
            let mut files: Vec<PathBuf> = std::fs::read_dir(host.path())
                .map_err(|e| RegistryConfigError(format!("{}: {e}", host.path().display())))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .collect();
            files.sort();
            let entry = out.entry(name).or_default();
            let mut ca = Vec::new();
            for f in &files {
                match f.extension().and_then(|e| e.to_str()) {
                    Some("crt") => ca.push(pem(f, false)?),
                    Some("cert") => {
                        let key = f.with_extension("key");
                        if !key.exists() {
                            return Err(RegistryConfigError(format!(
                                "{}: a client certificate without its key {}",
                                f.display(),
                                key.display()
                            )));
                        }
                        entry.client_pem = Some(client_pair(f, &key)?);
                    }
                    _ => {}
                }
            }
            if !ca.is_empty() {
                entry.ca_pem = ca;
            }
        }
    }
    for file in files {
        let text = match std::fs::read_to_string(file) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(RegistryConfigError(format!("{}: {e}", file.display()))),
        };
        let parsed: File = toml::from_str(&text)
            .map_err(|e| RegistryConfigError(format!("{}: {}", file.display(), e.message())))?;
        for (host, t) in parsed.registry {
            let entry = out.entry(host).or_default();
            if let Some(m) = t.mirrors {
                entry.mirrors = m.iter().map(|m| mirror_host(m)).collect();
            }
            if let Some(i) = t.insecure {
                entry.insecure = i;
            }
            if let Some(ca) = t.ca {
                let paths = match ca {
                    OneOrMany::One(p) => vec![p],
                    OneOrMany::Many(p) => p,
                };
                entry.ca_pem = paths
                    .iter()
                    .map(|p| pem(p, false))
                    .collect::<Result<_, _>>()?;
            }
            match (t.client_cert, t.client_key) {
                (Some(c), Some(k)) => entry.client_pem = Some(client_pair(&c, &k)?),
                (None, None) => {}
                _ => {
                    return Err(RegistryConfigError(format!(
                        "{}: client_cert and client_key go together",
                        file.display()
                    )))
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_files_win_key_by_key_and_bad_ones_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let system = dir.path().join("system.toml");
        let user = dir.path().join("user.toml");
        std::fs::write(
            &system,
            "[registry.\"docker.io\"]\nmirrors = [\"https://m1.internal/\", \"m2:5000\"]\n\
             [registry.\"reg.lan:5000\"]\ninsecure = true\n",
        )
        .unwrap();
        std::fs::write(&user, "[registry.\"docker.io\"]\ninsecure = false\n").unwrap();
        let got = load(
            &[system.clone(), user.clone(), dir.path().join("none")],
            &[],
        )
        .unwrap();
        assert_eq!(got["docker.io"].mirrors, ["m1.internal", "m2:5000"]);
        assert!(got["reg.lan:5000"].insecure);
        std::fs::write(&user, "[registry.\"x\"]\nmirror = [\"typo\"]\n").unwrap();
        let err = load(std::slice::from_ref(&user), &[]).unwrap_err().0;
        assert!(err.starts_with(&format!("{}:", user.display())), "{err}");
        assert!(err.contains("mirror"), "{err}");
        std::fs::write(&user, "[registry.\"x\"]\nca = \"/nonexistent/ca.pem\"\n").unwrap();
        assert!(load(&[user], &[])
            .unwrap_err()
            .0
            .contains("/nonexistent/ca.pem"));
    }
}
