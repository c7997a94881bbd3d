//! Who we are to a registry: credentials from docker's
//! `$DOCKER_CONFIG/config.json` (`auths`, `credHelpers`, `credsStore`
//! through `docker-credential-*` helpers), and the `WWW-Authenticate`
//! challenge a registry answers 401 with.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The key docker uses for Docker Hub in `config.json`.
const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// A username and secret (password or token). `Debug` never shows the
/// secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    pub username: String,
    pub secret: String,
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Credential({}, <redacted>)", self.username)
    }
}

impl Credential {
    /// The `Authorization: Basic` value.
    pub fn basic(&self) -> String {
        format!(
            "Basic {}",
            BASE64.encode(format!("{}:{}", self.username, self.secret))
        )
    }
}

/// docker's client config file.
#[derive(Debug, Clone)]
pub struct DockerConfig {
    path: PathBuf,
    json: Map<String, Value>,
}

/// The config file docker reads: `$DOCKER_CONFIG/config.json`, else
/// `~/.docker/config.json`.
pub fn default_config_path() -> PathBuf {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("config.json");
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
    PathBuf::from(home).join(".docker/config.json")
}

/// The key a registry host has in `config.json`: Docker Hub's is a URL.
fn config_key(host: &str) -> String {
    match host {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB_KEY.to_string(),
        _ => host.to_string(),
    }
}

/// `https://host/v1/` or `host` → `host`, for matching `auths` keys.
fn normalize_key(key: &str) -> &str {
    let k = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    k.split('/').next().unwrap_or(k)
}

/// A docker config file that cannot be read or written, or a credential
/// helper that failed (the message names the file or the helper).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

impl DockerConfig {
    /// Reads `path`; a missing file is an empty config.
    pub fn load(path: &Path) -> Result<DockerConfig, ConfigError> {
        Self::load_impl(path).map_err(ConfigError)
    }

    fn load_impl(path: &Path) -> Result<DockerConfig, String> {
        let json = match std::fs::read(path) {
            Ok(bytes) => match serde_json::from_slice::<Value>(&bytes) {
                Ok(Value::Object(m)) => m,
                Ok(_) => return Err(format!("{}: not a JSON object", path.display())),
                Err(e) => return Err(format!("{}: {e}", path.display())),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Map::new(),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        Ok(DockerConfig {
            path: path.to_path_buf(),
            json,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn helper_for(&self, host: &str) -> Option<String> {
        let key = config_key(host);
        self.json
            .get("credHelpers")
            .and_then(Value::as_object)
            .and_then(|h| h.get(&key).or_else(|| h.get(host)))
            .or_else(|| self.json.get("credsStore"))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    }

    /// The credential for `host`, if the config has one. A per-registry
    /// helper wins, then an `auths` entry, then the default `credsStore`.
    pub fn credential(&self, host: &str) -> Result<Option<Credential>, ConfigError> {
        self.credential_impl(host).map_err(ConfigError)
    }

    fn credential_impl(&self, host: &str) -> Result<Option<Credential>, String> {
        let key = config_key(host);
        let per_host_helper = self
            .json
            .get("credHelpers")
            .and_then(Value::as_object)
            .and_then(|h| h.get(&key).or_else(|| h.get(host)))
            .and_then(Value::as_str);
        if let Some(helper) = per_host_helper {
            return helper_get(helper, &key);
        }
        let auths = self.json.get("auths").and_then(Value::as_object);
        let entry = auths.and_then(|a| {
            a.get(&key).or_else(|| {
                a.iter()
                    .find(|(k, _)| normalize_key(k) == normalize_key(&key))
                    .map(|(_, v)| v)
            })
        });
        if let Some(entry) = entry {
            if let Some(c) = credential_from_entry(entry, host)? {
                return Ok(Some(c));
            }
        }
        match self.json.get("credsStore").and_then(Value::as_str) {
            Some(store) if !store.is_empty() => helper_get(store, &key),
            _ => Ok(None),
        }
    }

    /// Saves a credential (`kiln login`): through the helper if one is
    /// configured, else base64 in `auths`, file mode 0600.
    pub fn store(&mut self, host: &str, cred: &Credential) -> Result<(), ConfigError> {
        self.store_impl(host, cred).map_err(ConfigError)
    }

    fn store_impl(&mut self, host: &str, cred: &Credential) -> Result<(), String> {
        let key = config_key(host);
        if let Some(helper) = self.helper_for(host) {
            let input =
                json!({ "ServerURL": key, "Username": cred.username, "Secret": cred.secret });
            run_helper(&helper, "store", input.to_string().as_bytes())?;
            return Ok(());
        }
        let auths = self
            .json
            .entry("auths")
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .ok_or_else(|| format!("{}: \"auths\" is not an object", self.path.display()))?;
        auths.insert(
            key,
            json!({ "auth": BASE64.encode(format!("{}:{}", cred.username, cred.secret)) }),
        );
        self.save()
    }

    /// Forgets `host`'s credential (`kiln logout`); false if there was none.
    pub fn erase(&mut self, host: &str) -> Result<bool, ConfigError> {
        self.erase_impl(host).map_err(ConfigError)
    }

    fn erase_impl(&mut self, host: &str) -> Result<bool, String> {
        let key = config_key(host);
        let mut removed = false;
        if let Some(auths) = self.json.get_mut("auths").and_then(Value::as_object_mut) {
            let keys: Vec<String> = auths
                .keys()
                .filter(|k| normalize_key(k) == normalize_key(&key))
                .cloned()
                .collect();
            for k in keys {
                auths.remove(&k);
                removed = true;
            }
        }
        if removed {
            self.save()?;
        }
        if let Some(helper) = self.helper_for(host) {
            removed |= run_helper(&helper, "erase", key.as_bytes()).is_ok();
        }
        Ok(removed)
    }

    /// Writes the file atomically (temp file + rename), readable only by
    /// its owner: it holds secrets.
    fn save(&self) -> Result<(), String> {
        use std::os::unix::fs::OpenOptionsExt;
        let fail = |e: std::io::Error| format!("{}: {e}", self.path.display());
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(fail)?;
        }
        let tmp = self
            .path
            .with_extension(format!("json.tmp-{}", std::process::id()));
        let body = serde_json::to_vec_pretty(&Value::Object(self.json.clone()))
            .map_err(|e| e.to_string())?;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(fail)?;
        f.write_all(&body).map_err(fail)?;
        f.sync_all().map_err(fail)?;
        std::fs::rename(&tmp, &self.path).map_err(fail)
    }
}

fn credential_from_entry(entry: &Value, host: &str) -> Result<Option<Credential>, String> {
    if let Some(token) = entry.get("identitytoken").and_then(Value::as_str) {
        // docker's convention: an identity token travels as the password
        // of the user "<token>".
        return Ok(Some(Credential {
            username: "<token>".into(),
            secret: token.into(),
        }));
    }
    if let Some(auth) = entry
        .get("auth")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    {
        let decoded = BASE64
            .decode(auth.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| format!("config.json: the \"auth\" entry for {host} is not base64"))?;
        let (user, secret) = decoded.split_once(':').ok_or_else(|| {
            format!("config.json: the \"auth\" entry for {host} is not user:password")
        })?;
        return Ok(Some(Credential {
            username: user.into(),
            secret: secret.into(),
        }));
    }
    match (
        entry.get("username").and_then(Value::as_str),
        entry.get("password").and_then(Value::as_str),
    ) {
        (Some(u), Some(p)) => Ok(Some(Credential {
            username: u.into(),
            secret: p.into(),
        })),
        _ => Ok(None),
    }
}

/// Runs `docker-credential-<helper> <action>` with `input` on stdin.
fn run_helper(helper: &str, action: &str, input: &[u8]) -> Result<Vec<u8>, String> {
    let program = format!("docker-credential-{helper}");
    let mut child = Command::new(&program)
        .arg(action)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("credential helper {program}: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input);
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("credential helper {program}: {e}"))?;
    if !out.status.success() {
        let msg = String::from_utf8_lossy(&out.stdout).trim().to_string()
            + String::from_utf8_lossy(&out.stderr).trim();
        return Err(format!("credential helper {program} {action}: {msg}"));
    }
    Ok(out.stdout)
}

fn helper_get(helper: &str, server: &str) -> Result<Option<Credential>, String> {
    match run_helper(helper, "get", server.as_bytes()) {
        Ok(out) => {
            let v: Value = serde_json::from_slice(&out)
                .map_err(|e| format!("credential helper docker-credential-{helper}: {e}"))?;
            let username = v["Username"].as_str().unwrap_or_default().to_string();
            let secret = v["Secret"].as_str().unwrap_or_default().to_string();
            Ok((!secret.is_empty()).then_some(Credential { username, secret }))
        }
        // The helper protocol's "no credential" answer.
        Err(e) if e.contains("credentials not found") => Ok(None),
        Err(e) => Err(e),
    }
}

/// A parsed `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// `basic` or `bearer` (lowercased).
    pub scheme: String,
    pub params: BTreeMap<String, String>,
}

/// Parses `Bearer realm="https://a/token",service="reg",scope="x"`.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    if scheme.is_empty() {
        return None;
    }
    let mut params = BTreeMap::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=' && *c != ','))
            .collect::<String>()
            .trim()
            .to_ascii_lowercase();
        if key.is_empty() {
            break;
        }
        if chars.next() != Some('=') {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            value = std::iter::from_fn(|| chars.next_if(|c| *c != ',')).collect();
            value = value.trim().to_string();
        }
        params.insert(key, value);
    }
    Some(Challenge {
        scheme: scheme.to_ascii_lowercase(),
        params,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_parse_with_quoted_commas() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:a/b:pull,push""#,
        )
        .unwrap();
        assert_eq!(c.scheme, "bearer");
        assert_eq!(c.params["realm"], "https://auth.docker.io/token");
        assert_eq!(c.params["service"], "registry.docker.io");
        assert_eq!(c.params["scope"], "repository:a/b:pull,push");
        let b = parse_challenge(r#"Basic realm="Registry Realm""#).unwrap();
        assert_eq!(b.scheme, "basic");
        assert_eq!(b.params["realm"], "Registry Realm");
    }

    #[test]
    fn config_reads_auths_and_redacts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(
            &path,
            r#"{"auths":{"https://index.docker.io/v1/":{"auth":"dTpwdw=="},"127.0.0.1:5000":{"username":"a","password":"b"}}}"#,
        )
        .unwrap();
        let cfg = DockerConfig::load(&path).unwrap();
        let hub = cfg.credential("docker.io").unwrap().unwrap();
        assert_eq!((hub.username.as_str(), hub.secret.as_str()), ("u", "pw"));
        assert!(!format!("{hub:?}").contains("pw"));
        let local = cfg.credential("127.0.0.1:5000").unwrap().unwrap();
        assert_eq!(local.secret, "b");
        assert_eq!(cfg.credential("example.com").unwrap(), None);
    }

    #[test]
    fn login_then_logout_round_trips_with_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d/config.json");
        let mut cfg = DockerConfig::load(&path).unwrap();
        let cred = Credential {
            username: "me".into(),
            secret: "s3cret".into(),
        };
        cfg.store("r.example:5000", &cred).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = DockerConfig::load(&path).unwrap();
        assert_eq!(again.credential("r.example:5000").unwrap(), Some(cred));
        let mut again = again;
        assert!(again.erase("r.example:5000").unwrap());
        assert_eq!(
            DockerConfig::load(&path)
                .unwrap()
                .credential("r.example:5000")
                .unwrap(),
            None
        );
    }
}
