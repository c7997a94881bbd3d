//! Git sources (`ADD <git-url>#ref:subdir`) with Debian's `git` binary:
//! `ls-remote` resolves the ref to a commit (the cache key, so an
//! unmoved ref costs one round trip and no fetch), then a shallow fetch
//! of that ref makes a checkout of exactly that commit, kept in the
//! store by commit and options (`<root>/git/<commit>-…`).
//!
//! Why the binary rather than gix: it speaks every transport the issue
//! needs (https, http including dumb servers, ssh through the agent,
//! git://), does submodules, and honours the user's git and ssh
//! configuration, as BuildKit's git source (which also runs git) does.

use crate::error::StepError;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

/// Whose credentials a git command may use.
#[derive(Debug, Clone)]
pub enum Access {
    /// The invoker's own git and ssh configuration: a context the
    /// invoker named on the command line (as the docker CLI clones one).
    Invoker,
    /// A Dockerfile's source (`ADD <git-url>`, a git named context): an
    /// untrusted file must not borrow the invoker's credentials, so no
    /// git configuration (credential helpers, `insteadOf`), no ssh
    /// configuration or key files, and only the agent the invoker
    /// forwarded with `--ssh default` — BuildKit's rule, whose git runs
    /// in the daemon with the session's agent alone.
    Dockerfile {
        agent: Option<PathBuf>,
        /// Host keys seen on first use, refused when they change.
        known_hosts: PathBuf,
    },
}

impl Access {
    /// A Dockerfile's access in `store`, with the build's default agent.
    pub(crate) fn dockerfile(store: &kiln_store::Store, agent: Option<&Path>) -> Access {
        Access::Dockerfile {
            agent: agent.map(Path::to_path_buf),
            known_hosts: store.root().join("git").join("known_hosts"),
        }
    }

    fn apply(&self, cmd: &mut Command) {
        let Access::Dockerfile { agent, known_hosts } = self else {
            return;
        };
        cmd.env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env_remove("GIT_SSH")
            .env_remove("SSH_AUTH_SOCK")
            .env("GIT_SSH_VARIANT", "ssh")
            .env(
                "GIT_SSH_COMMAND",
                format!(
                    "ssh -F /dev/null -o IdentityFile=none -o BatchMode=yes \
                     -o StrictHostKeyChecking=accept-new -o UserKnownHostsFile={}",
                    shell_quote(&known_hosts.to_string_lossy())
                ),
            );
        if let Some(a) = agent {
            cmd.env("SSH_AUTH_SOCK", a);
        }
    }
}

/// `s` as one word for the shell git runs `GIT_SSH_COMMAND` with.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn git(args: &[&str], dir: Option<&Path>, access: &Access) -> Result<String, StepError> {
    let mut cmd = Command::new("git");
    if let Some(d) = dir {
        cmd.arg("-C").arg(d);
    }
    access.apply(&mut cmd);
    let out = cmd
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ASKPASS", "true")
        .output()
        .map_err(|e| StepError::Invalid(format!("running git (Debian's git package): {e}")))?;
    if !out.status.success() {
        return Err(StepError::Invalid(format!(
            "git {}: {}",
            args.first().copied().unwrap_or_default(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn is_commit(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Commits resolved in this process: keys and the fetch agree on one.
fn memo() -> &'static Mutex<HashMap<(String, String), String>> {
    static M: OnceLock<Mutex<HashMap<(String, String), String>>> = OnceLock::new();
    M.get_or_init(Default::default)
}

/// The commit `reference` (a branch, a tag — an annotated one peeled —,
/// a full ref, a commit id, or empty for HEAD) names on `url`; checked
/// against `checksum` when given.
pub(crate) fn resolve(
    url: &str,
    reference: &str,
    checksum: Option<&str>,
    access: &Access,
) -> Result<String, StepError> {
    let key = (url.to_string(), reference.to_string());
    let cached = memo().lock().ok().and_then(|m| m.get(&key).cloned());
    let commit = match cached {
        Some(c) => c,
        None if is_commit(reference) => reference.to_ascii_lowercase(),
        None => {
            let wanted = if reference.is_empty() {
                "HEAD"
            } else {
                reference
            };
            let listing = git(
                &["ls-remote", url, wanted, &format!("{wanted}^{{}}")],
                None,
                access,
            )
            .map_err(|e| StepError::Invalid(format!("{url}: {e}")))?;
            let refs: Vec<(&str, &str)> =
                listing.lines().filter_map(|l| l.split_once('\t')).collect();
            let find = |name: &str| {
                refs.iter()
                    .find(|(_, r)| *r == name)
                    .map(|(c, _)| c.to_string())
            };
            let found = if wanted == "HEAD" || wanted.starts_with("refs/") {
                find(&format!("{wanted}^{{}}")).or_else(|| find(wanted))
            } else {
                find(&format!("refs/heads/{wanted}"))
                    .or_else(|| find(&format!("refs/tags/{wanted}^{{}}")))
                    .or_else(|| find(&format!("refs/tags/{wanted}")))
            };
            found.ok_or_else(|| {
                StepError::Invalid(format!("{url}: no branch or tag named {wanted:?}"))
            })?
        }
    };
    if let Some(sum) = checksum {
        if !commit.starts_with(&sum.to_ascii_lowercase()) {
            return Err(StepError::Invalid(format!(
                "{url}#{reference}: expected checksum to match {sum}, got {commit}"
            )));
        }
    }
    if let Ok(mut m) = memo().lock() {
        m.insert(key, commit.clone());
    }
    Ok(commit)
}

/// Options of one checkout.
pub(crate) struct Checkout<'a> {
    pub url: &'a str,
    pub reference: &'a str,
    pub commit: &'a str,
    pub subdir: &'a str,
    pub keep_git_dir: bool,
    pub submodules: bool,
}

/// The tree of `c.commit` (its `subdir`), made once per commit and
/// options under `dir`.
pub(crate) fn checkout(
    dir: &Path,
    c: &Checkout<'_>,
    access: &Access,
) -> Result<PathBuf, StepError> {
    let mut e = kiln_solver::Encoder::new();
    e.str(c.subdir)
        .str(if c.keep_git_dir { "k" } else { "-" })
        .str(if c.submodules { "s" } else { "-" });
    let opts = &e.finish().hex()[..12];
    let final_dir = dir.join(format!("{}-{opts}", c.commit));
    if final_dir.is_dir() {
        return Ok(final_dir);
    }
    std::fs::create_dir_all(dir)
        .map_err(|e| StepError::Invalid(format!("{}: {e}", dir.display())))?;
    // Unique per checkout: a build may check one commit out several ways
    // at once.
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(
        ".tmp-{}-{opts}-{}-{n}",
        c.commit,
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&tmp);
    let work = tmp.join("w");
    std::fs::create_dir_all(&work)
        .map_err(|e| StepError::Invalid(format!("{}: {e}", work.display())))?;
    let made = (|| {
        git(&["init", "-q"], Some(&work), access)?;
        git(&["remote", "add", "origin", c.url], Some(&work), access)?;
        // A shallow fetch of the ref (or the commit); a dumb HTTP server
        // cannot do shallow, and some servers refuse a bare commit id:
        // then everything.
        let by = if c.reference.is_empty() || is_commit(c.reference) {
            c.commit
        } else {
            c.reference
        };
        let shallow = git(
            &["fetch", "-q", "--depth", "1", "--no-tags", "origin", by],
            Some(&work),
            access,
        );
        if shallow.is_err() {
            git(
                &[
                    "fetch",
                    "-q",
                    "--no-tags",
                    "origin",
                    "+refs/heads/*:refs/remotes/origin/*",
                    "+refs/tags/*:refs/tags/*",
                ],
                Some(&work),
                access,
            )?;
        }
        git(
            &[
                "-c",
                "advice.detachedHead=false",
                "checkout",
                "-q",
                c.commit,
            ],
            Some(&work),
            access,
        )?;
        if c.submodules && work.join(".gitmodules").exists() {
            git(
                &[
                    "-c",
                    "protocol.file.allow=always",
                    "submodule",
                    "update",
                    "-q",
                    "--init",
                    "--recursive",
                ],
                Some(&work),
                access,
            )?;
        }
        if !c.keep_git_dir {
            remove_git_dirs(&work);
        }
        let tree = if c.subdir.is_empty() {
            work.clone()
        } else {
            let sub = work.join(c.subdir.trim_matches('/'));
            let inside = sub
                .canonicalize()
                .ok()
                .filter(|p| p.starts_with(work.canonicalize().unwrap_or_default()) && p.is_dir());
            inside.ok_or_else(|| {
                StepError::Invalid(format!(
                    "{}#{}: no directory {:?} in the checkout",
                    c.url, c.reference, c.subdir
                ))
            })?
        };
        std::fs::rename(&tree, &final_dir).or_else(|e| {
            // Another build made it meanwhile.
            if final_dir.is_dir() {
                Ok(())
            } else {
                Err(StepError::Invalid(format!("{}: {e}", final_dir.display())))
            }
        })
    })();
    let _ = std::fs::remove_dir_all(&tmp);
    made.map(|()| final_dir)
}

/// `.git` directories and submodules' `.git` files, recursively.
fn remove_git_dirs(dir: &Path) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        let Ok(ft) = e.file_type() else { continue };
        if e.file_name() == ".git" {
            if ft.is_dir() {
                let _ = std::fs::remove_dir_all(&p);
            } else {
                let _ = std::fs::remove_file(&p);
            }
        } else if ft.is_dir() {
            remove_git_dirs(&p);
        }
    }
}

/// `kiln build <git-url>[#ref[:dir]]`: the checkout (its `dir`) as the
/// build context; None when `spec` is not a git URL.
pub fn context(store: &kiln_store::Store, spec: &str) -> Result<Option<PathBuf>, StepError> {
    let Some(g) = kiln_frontend_dockerfile::lower::git_ref(spec) else {
        return Ok(None);
    };
    let commit = resolve(&g.url, &g.reference, g.commit.as_deref(), &Access::Invoker)?;
    checkout(
        &store.root().join("git"),
        &Checkout {
            url: &g.url,
            reference: &g.reference,
            commit: &commit,
            subdir: &g.subdir,
            keep_git_dir: false,
            submodules: g.submodules,
        },
        &Access::Invoker,
    )
    .map(Some)
}
