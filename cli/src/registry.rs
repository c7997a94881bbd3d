//! `kiln pull`, `kiln push`, `kiln login`, `kiln logout`.

use crate::{emit, fail, CliError};
use kiln_registry::{Client, ClientOptions, Credential, DockerConfig, Platform};
use kiln_store::{Reference, Store};
use std::io::{BufRead, IsTerminal};

/// A client that may speak plain HTTP to `insecure` hosts (and always to
/// localhost), with the per-registry settings of the config files and
/// certs.d directories (mirrors, CAs, client certificates).
/// `KILN_PUSH_CHUNK_SIZE` (bytes) sets the size past which blobs are
/// uploaded in chunks of that size.
pub fn client(insecure: &[String]) -> Result<Client, CliError> {
    let registries = kiln_registry::config::load(
        &kiln_registry::config::default_config_files(),
        &kiln_registry::config::default_certs_dirs(),
    )
    .map_err(fail)?;
    let mut options = ClientOptions {
        insecure_registries: insecure.to_vec(),
        registries,
        ..ClientOptions::default()
    };
    if let Some(n) = std::env::var("KILN_PUSH_CHUNK_SIZE")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|n| *n > 0)
    {
        options.chunk_size = n;
    }
    Ok(Client::new(options))
}

pub fn parse_platform(flag: &str, p: Option<&str>) -> Result<Platform, CliError> {
    match p {
        None => Ok(Platform::host()),
        Some(p) => Platform::parse(p).map_err(|e| fail(format!("{flag}: {e}"))),
    }
}

fn parse_reference(what: &str) -> Result<Reference, CliError> {
    Reference::parse(what).map_err(fail)
}

fn human(bytes: u64) -> String {
    crate::images::human_size(bytes)
}

pub fn pull(
    store: &Store,
    client: &Client,
    reference: &str,
    platform: Option<&str>,
    quiet: bool,
) -> Result<(), CliError> {
    let r = parse_reference(reference)?;
    let platform = parse_platform("--platform", platform)?;
    let start = std::time::Instant::now();
    let pulled = client.pull(store, &r, &platform).map_err(fail)?;
    if !quiet {
        eprintln!(
            "{}: {} blob(s) fetched ({}) in {:.1}s",
            r.familiar(),
            pulled.blobs_fetched,
            human(pulled.bytes_fetched),
            start.elapsed().as_secs_f64()
        );
        eprintln!("Digest: {}", pulled.repo_digest);
    }
    emit(&format!("{r}\n"))
}

/// `kiln push IMAGE [DEST]`: DEST defaults to IMAGE's own name.
pub fn push(
    store: &Store,
    client: &Client,
    image: &str,
    dest: Option<&str>,
    quiet: bool,
) -> Result<(), CliError> {
    let img = store.resolve(image).map_err(fail)?;
    let r = parse_reference(dest.unwrap_or(image))?;
    push_image(store, client, &img, &r, quiet)
}

pub fn push_image(
    store: &Store,
    client: &Client,
    img: &kiln_store::Image,
    r: &Reference,
    quiet: bool,
) -> Result<(), CliError> {
    let start = std::time::Instant::now();
    let pushed = client.push(store, img, r).map_err(fail)?;
    if !quiet {
        eprintln!(
            "{}: {} blob(s) uploaded ({}), {} mounted, {} already there, in {:.1}s",
            r.familiar(),
            pushed.uploaded,
            human(pushed.bytes_uploaded),
            pushed.mounted,
            pushed.existing,
            start.elapsed().as_secs_f64()
        );
    }
    if let Some(d) = pushed.digest {
        if !quiet {
            eprintln!("Digest: {d}");
        }
    }
    Ok(())
}

pub fn login(
    client: &Client,
    host: &str,
    username: Option<String>,
    password_stdin: bool,
) -> Result<(), CliError> {
    let host = registry_host(host);
    let stdin = std::io::stdin();
    let username = match username {
        Some(u) => u,
        None => {
            if !stdin.is_terminal() {
                return Err(fail("--username is required when stdin is not a terminal"));
            }
            eprint!("Username: ");
            read_line(&mut stdin.lock())?
        }
    };
    let secret = if password_stdin {
        read_line(&mut stdin.lock())?
    } else {
        if !stdin.is_terminal() {
            return Err(fail(
                "give the password on stdin with --password-stdin (it is never a flag: flags end up in shell history)",
            ));
        }
        eprint!("Password: ");
        read_password()?
    };
    if secret.is_empty() {
        return Err(fail("empty password"));
    }
    let cred = Credential { username, secret };
    client.check_login(&host, &cred).map_err(fail)?;
    let path = kiln_registry::auth::default_config_path();
    let mut cfg = DockerConfig::load(&path).map_err(fail)?;
    cfg.store(&host, &cred).map_err(fail)?;
    eprintln!(
        "Login Succeeded ({host}; saved in {})",
        cfg.path().display()
    );
    Ok(())
}

pub fn logout(host: &str) -> Result<(), CliError> {
    let host = registry_host(host);
    let path = kiln_registry::auth::default_config_path();
    let mut cfg = DockerConfig::load(&path).map_err(fail)?;
    if cfg.erase(&host).map_err(fail)? {
        eprintln!("Removed login credentials for {host}");
    } else {
        eprintln!("Not logged in to {host}");
    }
    Ok(())
}

/// `https://reg:5000/` → `reg:5000`.
fn registry_host(s: &str) -> String {
    let s = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(s);
    s.split('/').next().unwrap_or(s).to_string()
}

fn read_line(r: &mut impl BufRead) -> Result<String, CliError> {
    let mut line = String::new();
    r.read_line(&mut line)
        .map_err(|e| fail(format!("reading stdin: {e}")))?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

/// Reads a line with the terminal's echo off.
fn read_password() -> Result<String, CliError> {
    use rustix::termios::{tcgetattr, tcsetattr, LocalModes, OptionalActions};
    let stdin = std::io::stdin();
    let saved = tcgetattr(&stdin).ok();
    if let Some(t) = &saved {
        let mut quiet = t.clone();
        quiet.local_modes.remove(LocalModes::ECHO);
        let _ = tcsetattr(&stdin, OptionalActions::Now, &quiet);
    }
    let line = read_line(&mut stdin.lock());
    if let Some(t) = &saved {
        let _ = tcsetattr(&stdin, OptionalActions::Now, t);
    }
    eprintln!();
    line
}
