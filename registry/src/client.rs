//! The HTTP side of the distribution protocol: choosing http or https,
//! answering auth challenges (basic, bearer tokens per repository scope,
//! reused until refused), retrying what is worth retrying, and turning
//! registry error bodies into one-line messages.

use crate::auth::{self, Credential, DockerConfig};
use crate::Error;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;
use ureq::http::Response;
use ureq::Body;

/// How a client talks to registries.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Hosts (`host:port`) that may be spoken to over plain HTTP, besides
    /// localhost and 127.0.0.0/8, which always may.
    pub insecure_registries: Vec<String>,
    /// docker's `config.json` (credentials).
    pub docker_config: PathBuf,
    /// Blobs downloaded or uploaded at once.
    pub parallel_transfers: usize,
    /// Blobs larger than this are uploaded in chunks of this size
    /// (PATCH), smaller ones in one PUT.
    pub chunk_size: u64,
    /// Attempts for a request that fails with 5xx, 429 or a reset
    /// connection.
    pub attempts: u32,
    /// Per-host settings (mirrors, CAs, client certificates, insecure):
    /// [`crate::config::load`].
    pub registries: std::collections::BTreeMap<String, crate::RegistryConfig>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            insecure_registries: Vec::new(),
            docker_config: auth::default_config_path(),
            parallel_transfers: 4,
            chunk_size: 64 << 20,
            attempts: 4,
            registries: Default::default(),
        }
    }
}

/// A registry client; cheap to share between threads.
pub struct Client {
    agent: ureq::Agent,
    /// Hosts with TLS settings of their own (a CA, a client certificate).
    host_agents: HashMap<String, ureq::Agent>,
    pub(crate) options: ClientOptions,
    config: Mutex<Option<DockerConfig>>,
    /// (host, scope) → `Authorization` value that worked.
    authorizations: Mutex<HashMap<(String, String), String>>,
    /// host → `http` or `https`.
    schemes: Mutex<HashMap<String, &'static str>>,
}

/// Builds and sends one attempt of a request, given the base URL and the
/// `Authorization` value to send.
pub(crate) type RequestFn<'a> =
    dyn Fn(&str, Option<&str>) -> Result<Response<Body>, ureq::Error> + 'a;

/// What a request is about, for auth scopes and error messages.
pub(crate) struct Target<'a> {
    /// Registry host as named (`docker.io`, `127.0.0.1:5000`).
    pub domain: &'a str,
    /// Token scopes, e.g. `repository:library/busybox:pull`.
    pub scopes: Vec<String>,
    /// What errors name (a reference).
    pub what: &'a str,
    /// Whether a failed attempt may be sent again (false once a body was
    /// partly consumed by the server, e.g. a chunk upload).
    pub retry: bool,
    /// A pull's read: the host's mirrors may answer it first.
    pub mirrored: bool,
}

/// The host that serves the API for a registry name.
pub(crate) fn api_host(domain: &str) -> &str {
    if domain == "docker.io" || domain == "index.docker.io" {
        "registry-1.docker.io"
    } else {
        domain
    }
}

fn is_local(host: &str) -> bool {
    let h = host
        .rsplit_once(':')
        .filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit()))
        .map_or(host, |(h, _)| h);
    h == "localhost" || h.starts_with("127.") || h == "[::1]" || h.ends_with(".localhost")
}

/// An agent with kiln's timeouts and `tls`.
fn new_agent(tls: ureq::tls::TlsConfig) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .user_agent(concat!("kiln/", env!("CARGO_PKG_VERSION")))
        .tls_config(tls)
        .timeout_connect(Some(Duration::from_secs(15)))
        .timeout_recv_response(Some(Duration::from_secs(120)))
        .timeout_per_read(Some(Duration::from_secs(120)))
        .accept_encoding("identity")
        .max_idle_connections_per_host(16)
        .build()
        .new_agent()
}

/// The TLS a host gets: its own CAs instead of the system's when it has
/// some, and its client certificate. None: nothing of its own. (The
/// PEM was checked when the settings were read.)
fn host_tls(r: &crate::RegistryConfig) -> Option<ureq::tls::TlsConfig> {
    if r.ca_pem.is_empty() && r.client_pem.is_none() {
        return None;
    }
    let certs = |pem: &[u8]| -> Vec<ureq::tls::Certificate<'static>> {
        ureq::tls::parse_pem(pem)
            .filter_map(|item| match item {
                Ok(ureq::tls::PemItem::Certificate(c)) => Some(c.to_owned()),
                _ => None,
            })
            .collect()
    };
    let mut tls = ureq::tls::TlsConfig::builder();
    tls = if r.ca_pem.is_empty() {
        tls.root_certs(ureq::tls::RootCerts::PlatformVerifier)
    } else {
        let roots: Vec<_> = r.ca_pem.iter().flat_map(|p| certs(p)).collect();
        tls.root_certs(ureq::tls::RootCerts::new_with_certs(&roots))
    };
    if let Some((cert, key)) = &r.client_pem {
        let key = ureq::tls::parse_pem(key).find_map(|item| match item {
            Ok(ureq::tls::PemItem::PrivateKey(k)) => Some(k.to_owned()),
            _ => None,
        });
        if let Some(key) = key {
            tls = tls.client_cert(Some(ureq::tls::ClientCert::new_with_certs(
                &certs(cert),
                key,
            )));
        }
    }
    Some(tls.build())
}

impl Client {
    pub fn new(options: ClientOptions) -> Client {
        let host_agents = options
            .registries
            .iter()
            .filter_map(|(host, r)| Some((api_host(host).to_string(), new_agent(host_tls(r)?))))
            .collect();
        Client {
            agent: new_agent(
                ureq::tls::TlsConfig::builder()
                    .root_certs(ureq::tls::RootCerts::PlatformVerifier)
                    .build(),
            ),
            host_agents,
            options,
            config: Mutex::new(None),
            authorizations: Mutex::new(HashMap::new()),
            schemes: Mutex::new(HashMap::new()),
        }
    }

    /// The agent for requests to `url` (or a base `scheme://host`): the
    /// host's own when it has TLS settings.
    pub(crate) fn agent_for(&self, url: &str) -> &ureq::Agent {
        let host = url
            .split_once("://")
            .map_or(url, |(_, rest)| rest)
            .split('/')
            .next()
            .unwrap_or("");
        self.host_agents.get(host).unwrap_or(&self.agent)
    }

    /// Whether plain HTTP is allowed for `domain`.
    pub fn is_insecure(&self, domain: &str) -> bool {
        is_local(domain)
            || self.options.insecure_registries.iter().any(|h| h == domain)
            || self
                .options
                .registries
                .get(domain)
                .is_some_and(|r| r.insecure)
    }

    /// The mirrors configured for `domain` (`docker.io` and its aliases
    /// are one registry).
    fn mirrors(&self, domain: &str) -> &[String] {
        let key = if domain == "index.docker.io" || domain == "registry-1.docker.io" {
            "docker.io"
        } else {
            domain
        };
        self.options
            .registries
            .get(key)
            .map_or(&[][..], |r| r.mirrors.as_slice())
    }

    /// `https://host` or, for insecure registries that do not speak TLS,
    /// `http://host` (tried in that order, as docker does).
    pub(crate) fn base_url(&self, domain: &str) -> Result<String, Error> {
        let host = api_host(domain);
        if let Some(s) = lock(&self.schemes).get(host) {
            return Ok(format!("{s}://{host}"));
        }
        let scheme = if self.is_insecure(domain) {
            match self
                .agent_for(host)
                .get(format!("https://{host}/v2/"))
                .call()
            {
                Ok(_) => "https",
                Err(_) => "http",
            }
        } else {
            "https"
        };
        lock(&self.schemes).insert(host.to_string(), scheme);
        Ok(format!("{scheme}://{host}"))
    }

    /// The configured credential for `domain`, if any.
    pub(crate) fn credential(&self, domain: &str) -> Result<Option<Credential>, Error> {
        let mut cfg = lock(&self.config);
        if cfg.is_none() {
            *cfg = Some(
                DockerConfig::load(&self.options.docker_config)
                    .map_err(|e| Error::local(domain, e.0))?,
            );
        }
        let cfg = cfg.as_ref().expect("loaded above");
        cfg.credential(domain)
            .map_err(|e| Error::local(domain, e.0))
    }

    /// Sends a request built by `build` (given the base URL and an
    /// `Authorization` value), answering a 401 challenge once and retrying
    /// resets, 5xx and 429 with backoff. A pull's read goes to the host's
    /// mirrors first, in order; the first that answers it with a success
    /// wins, else the host itself is asked (docker's registry mirrors).
    pub(crate) fn send(
        &self,
        target: &Target<'_>,
        build: &RequestFn<'_>,
    ) -> Result<Response<Body>, Error> {
        if target.mirrored {
            for mirror in self.mirrors(target.domain) {
                let at_mirror = Target {
                    domain: mirror,
                    scopes: target.scopes.clone(),
                    what: target.what,
                    retry: false,
                    mirrored: false,
                };
                if let Ok(resp) = self.send_once_to(&at_mirror, build) {
                    if resp.status().is_success() {
                        return Ok(resp);
                    }
                }
            }
        }
        self.send_once_to(target, build)
    }

    /// [`Client::send`] to `target.domain` itself.
    fn send_once_to(
        &self,
        target: &Target<'_>,
        build: &RequestFn<'_>,
    ) -> Result<Response<Body>, Error> {
        let base = self.base_url(target.domain)?;
        let key = (target.domain.to_string(), target.scopes.join(" "));
        let mut authorization = lock(&self.authorizations).get(&key).cloned();
        let mut challenged = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let may_retry = target.retry && attempt < self.options.attempts;
            let resp = match build(&base, authorization.as_deref()) {
                Ok(r) => r,
                Err(e) if may_retry && transient(&e) => {
                    std::thread::sleep(backoff(attempt));
                    continue;
                }
                Err(e) => return Err(Error::transport(target.what, transport_message(&e))),
            };
            let status = resp.status().as_u16();
            if status == 401 && !challenged {
                challenged = true;
                let cred = self.credential(target.domain)?;
                let answer = self.authorize(target, challenge_header(&resp), cred.as_ref())?;
                lock(&self.authorizations).insert(key.clone(), answer.clone());
                authorization = Some(answer);
                attempt -= 1;
                continue;
            }
            if (status >= 500 || status == 429) && may_retry {
                let wait = retry_after(&resp).unwrap_or_else(|| backoff(attempt));
                std::thread::sleep(wait.min(Duration::from_secs(30)));
                continue;
            }
            return Ok(resp);
        }
    }

    /// Answers a challenge: the `Authorization` value to send.
    fn authorize(
        &self,
        target: &Target<'_>,
        header: &str,
        cred: Option<&Credential>,
    ) -> Result<String, Error> {
        let challenge = auth::parse_challenge(header).ok_or_else(|| {
            Error::auth(
                target.what,
                "unauthorized, and the registry sent no usable WWW-Authenticate challenge",
            )
        })?;
        match challenge.scheme.as_str() {
            "basic" => match cred {
                Some(c) => Ok(c.basic()),
                None => Err(Error::auth(
                    target.what,
                    format!(
                        "unauthorized: authentication required (run `kiln login {}`)",
                        target.domain
                    ),
                )),
            },
            "bearer" => self.fetch_token(target, &challenge, cred),
            other => Err(Error::auth(
                target.what,
                format!("unsupported auth scheme {other:?}"),
            )),
        }
    }

    /// The token dance: GET realm?service=..&scope=.. with basic
    /// credentials when we have them.
    fn fetch_token(
        &self,
        target: &Target<'_>,
        challenge: &auth::Challenge,
        cred: Option<&Credential>,
    ) -> Result<String, Error> {
        let realm = challenge
            .params
            .get("realm")
            .ok_or_else(|| Error::auth(target.what, "bearer challenge without a realm"))?;
        if !(realm.starts_with("https://")
            || realm.starts_with("http://") && self.is_insecure(target.domain))
        {
            return Err(Error::auth(
                target.what,
                format!("refusing token realm {realm}: not https"),
            ));
        }
        let mut req = self.agent_for(realm.as_str()).get(realm.as_str());
        if let Some(service) = challenge.params.get("service") {
            req = req.query("service", service);
        }
        for scope in &target.scopes {
            req = req.query("scope", scope);
        }
        if let Some(c) = cred {
            req = req.header("Authorization", c.basic());
        }
        let mut resp = req
            .call()
            .map_err(|e| Error::auth(target.what, format!("token server {realm}: {e}")))?;
        let status = resp.status().as_u16();
        if status == 401 || status == 403 {
            return Err(Error::auth(
                target.what,
                if cred.is_some() {
                    format!("unauthorized: the token server {realm} refused the credentials for {} (wrong username or password?)", target.domain)
                } else {
                    format!(
                        "unauthorized: authentication required (run `kiln login {}`)",
                        target.domain
                    )
                },
            ));
        }
        if status != 200 {
            return Err(Error::auth(
                target.what,
                format!("token server {realm} answered {status}"),
            ));
        }
        let body: serde_json::Value = serde_json::from_slice(
            &resp
                .body_mut()
                .with_config()
                .limit(1 << 20)
                .read_to_vec()
                .map_err(|e| Error::auth(target.what, format!("token server {realm}: {e}")))?,
        )
        .map_err(|e| Error::auth(target.what, format!("token server {realm}: {e}")))?;
        let token = body
            .get("token")
            .or_else(|| body.get("access_token"))
            .and_then(|t| t.as_str())
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                Error::auth(
                    target.what,
                    format!("token server {realm} returned no token"),
                )
            })?;
        Ok(format!("Bearer {token}"))
    }

    /// Checks credentials against a registry (`kiln login`).
    pub fn check_login(&self, domain: &str, cred: &Credential) -> Result<(), Error> {
        let base = self.base_url(domain)?;
        let url = format!("{base}/v2/");
        let resp = self
            .agent_for(&url)
            .get(&url)
            .call()
            .map_err(|e| Error::transport(domain, transport_message(&e)))?;
        if resp.status().as_u16() != 401 {
            return Ok(()); // no auth needed
        }
        let target = Target {
            domain,
            scopes: vec![],
            what: domain,
            retry: false,
            mirrored: false,
        };
        let authorization = self.authorize(&target, challenge_header(&resp), Some(cred))?;
        let resp = self
            .agent_for(&url)
            .get(&url)
            .header("Authorization", &authorization)
            .call()
            .map_err(|e| Error::transport(domain, transport_message(&e)))?;
        match resp.status().as_u16() {
            200..=299 => Ok(()),
            401 | 403 => Err(Error::auth(
                domain,
                "unauthorized: wrong username or password",
            )),
            s => Err(Error::protocol(domain, format!("registry answered {s}"))),
        }
    }

    /// Runs `work` on each item, `parallel_transfers` at a time; stops
    /// handing out items at the first error and returns it. Results come
    /// back in the items' order.
    pub(crate) fn in_parallel<T: Sync, R: Send>(
        &self,
        items: &[T],
        work: impl Fn(&T) -> Result<R, Error> + Sync,
    ) -> Result<Vec<R>, Error> {
        let next = std::sync::atomic::AtomicUsize::new(0);
        let results: Mutex<Vec<Option<R>>> =
            Mutex::new(std::iter::repeat_with(|| None).take(items.len()).collect());
        let failed: Mutex<Option<Error>> = Mutex::new(None);
        let workers = self
            .options
            .parallel_transfers
            .clamp(1, 16)
            .min(items.len());
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| loop {
                    if lock(&failed).is_some() {
                        return;
                    }
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(item) = items.get(i) else {
                        return;
                    };
                    match work(item) {
                        Ok(r) => lock(&results)[i] = Some(r),
                        Err(e) => {
                            lock(&failed).get_or_insert(e);
                            return;
                        }
                    }
                });
            }
        });
        if let Some(e) = failed.into_inner().unwrap_or_else(|p| p.into_inner()) {
            return Err(e);
        }
        Ok(results
            .into_inner()
            .unwrap_or_else(|p| p.into_inner())
            .into_iter()
            .flatten()
            .collect())
    }
}

/// A 401's `WWW-Authenticate` value ("" when absent).
fn challenge_header(resp: &Response<Body>) -> &str {
    resp.headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The wait after failed attempt `attempt` (1-based): 400 ms, doubling,
/// at most 12.8 s.
pub(crate) fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(200u64 << attempt.min(6))
}

fn retry_after(resp: &Response<Body>) -> Option<Duration> {
    let v = resp.headers().get("retry-after")?.to_str().ok()?;
    if let Ok(secs) = v.trim().parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(v.trim()).ok()?;
    when.duration_since(std::time::SystemTime::now()).ok()
}

/// Failures worth another attempt: the connection, not the request.
fn transient(e: &ureq::Error) -> bool {
    // A refused connection is an answer (nothing listens), not a hiccup.
    matches!(
        e,
        ureq::Error::Io(_) | ureq::Error::Timeout(_) | ureq::Error::Protocol(_)
    )
}

pub(crate) fn transport_message(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Io(io) => format!("connection failed: {io}"),
        ureq::Error::ConnectionFailed => "connection refused".to_string(),
        ureq::Error::HostNotFound => "host not found".to_string(),
        other => other.to_string(),
    }
}

/// A registry's error answer as one line: `manifest unknown (404)`.
pub(crate) fn status_message(resp: &mut Response<Body>) -> String {
    let status = resp.status().as_u16();
    let body = resp
        .body_mut()
        .with_config()
        .limit(64 << 10)
        .read_to_vec()
        .unwrap_or_default();
    let detail = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| {
            let e = v.get("errors")?.as_array()?.first()?.clone();
            let code = e.get("code").and_then(|c| c.as_str()).unwrap_or("");
            let msg = e.get("message").and_then(|c| c.as_str()).unwrap_or("");
            Some(if msg.is_empty() {
                code.to_ascii_lowercase()
            } else {
                msg.to_string()
            })
        });
    let what = match status {
        401 => "unauthorized",
        403 => "denied",
        404 => "not found",
        429 => "too many requests",
        _ => "request failed",
    };
    match detail {
        Some(d) if !d.is_empty() => format!("{what}: {d} (HTTP {status})"),
        _ => format!("{what} (HTTP {status})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_hosts_are_insecure_by_default() {
        let c = Client::new(ClientOptions {
            insecure_registries: vec!["reg.lan:5000".into()],
            ..ClientOptions::default()
        });
        assert!(c.is_insecure("127.0.0.1:5000"));
        assert!(c.is_insecure("localhost"));
        assert!(c.is_insecure("reg.lan:5000"));
        assert!(!c.is_insecure("ghcr.io"));
        assert!(!c.is_insecure("reg.lan"));
        assert_eq!(api_host("docker.io"), "registry-1.docker.io");
    }
}
