//! What `kiln build`'s flags name, read and parsed into the builder's
//! types (as buildx's `buildflags` package does): the Dockerfile source,
//! build args, `-o` specs, `--secret` specs and `--platform`. `kiln debug
//! dump-graph` reads its Dockerfile and build args the same way.

use crate::{fail, CliError};
use kiln_builder::{DockerfileSource, Output};
use kiln_frontend_dockerfile::plan::Platform;
use kiln_store::Reference;
use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};

/// `-f FILE` (or `-` for stdin), else `CONTEXT/Dockerfile`.
pub(crate) fn dockerfile(
    file: Option<&Path>,
    context: &Path,
) -> Result<DockerfileSource, CliError> {
    match std::fs::metadata(context) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(fail(format!(
                "build context {}: not a directory",
                context.display()
            )))
        }
        Err(e) => return Err(fail(format!("build context {}: {e}", context.display()))),
    }
    match file {
        Some(f) => read_dockerfile(f),
        None => {
            // BuildKit falls back to the lower-case name when the context
            // has no `Dockerfile`.
            let default = context.join("Dockerfile");
            let lower = context.join("dockerfile");
            if !default.exists() && lower.is_file() {
                read_dockerfile(&lower)
            } else {
                read_dockerfile(&default)
            }
        }
    }
}

/// A Dockerfile from a file, or from stdin for `-`.
pub(crate) fn read_dockerfile(path: &Path) -> Result<DockerfileSource, CliError> {
    if path.as_os_str() == "-" {
        let mut text = Vec::new();
        std::io::stdin()
            .read_to_end(&mut text)
            .map_err(|e| fail(format!("reading the Dockerfile from stdin: {e}")))?;
        return Ok(DockerfileSource {
            name: "<stdin>".into(),
            path: None,
            text,
        });
    }
    let text =
        std::fs::read(path).map_err(|e| fail(format!("cannot read {}: {e}", path.display())))?;
    Ok(DockerfileSource {
        name: path.display().to_string(),
        path: Some(path.to_path_buf()),
        text,
    })
}

/// `K=V`, or `K` for the environment's value (skipped when unset, as
/// docker does).
pub(crate) fn build_args(args: &[String]) -> BTreeMap<String, String> {
    args.iter()
        .filter_map(|a| match a.split_once('=') {
            Some((k, v)) => Some((k.to_string(), v.to_string())),
            None => std::env::var(a).ok().map(|v| (a.clone(), v)),
        })
        .collect()
}

pub(crate) fn parse_output(spec: Option<&str>, names: Vec<Reference>) -> Result<Output, CliError> {
    let Some(spec) = spec else {
        return Ok(Output::Image { names, push: false });
    };
    if !spec.contains('=') {
        return Ok(Output::Local {
            dest: PathBuf::from(spec),
            platform_split: true,
        });
    }
    let mut kind = None;
    let mut dest = None;
    let mut push = false;
    let mut platform_split = true;
    for part in spec.split(',') {
        match part.split_once('=') {
            Some(("type", v)) => kind = Some(v.to_string()),
            Some(("dest", v)) => dest = Some(PathBuf::from(v)),
            Some(("platform-split", v)) => {
                platform_split = match v {
                    "true" => true,
                    "false" => false,
                    _ => {
                        return Err(fail(format!(
                            "-o {spec}: platform-split={v}: want true or false"
                        )))
                    }
                }
            }
            Some(("push", v)) => {
                push = match v {
                    "true" => true,
                    "false" => false,
                    _ => return Err(fail(format!("-o {spec}: push={v}: want true or false"))),
                }
            }
            _ => {
                return Err(fail(format!(
                    "-o {spec}: unknown option {part:?} (use type=...,dest=...)"
                )))
            }
        }
    }
    let need_dest = |dest: Option<PathBuf>| {
        dest.ok_or_else(|| fail(format!("-o {spec}: this output type needs dest=PATH")))
    };
    // `dest=-`: stdout, for a tar or an archive; never a terminal
    // (buildx's rule), and never a directory.
    if dest.as_deref() == Some(std::path::Path::new("-")) {
        match kind.as_deref() {
            Some("tar" | "oci" | "docker") => {}
            _ => {
                return Err(fail(format!(
                    "-o {spec}: dest=- (stdout) is for type=tar, oci or docker"
                )))
            }
        }
        if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
            return Err(fail(format!(
                "-o {spec}: dest=- would write a tar to the terminal; redirect stdout or give dest=FILE"
            )));
        }
    }
    match kind.as_deref() {
        Some("image") | None => Ok(Output::Image { names, push }),
        _ if push => Err(fail(format!("-o {spec}: push=true needs type=image"))),
        Some("oci") | Some("docker") => Ok(Output::Archive {
            dest: need_dest(dest)?,
            names,
        }),
        Some("tar") => Ok(Output::Tar {
            dest: need_dest(dest)?,
            platform_split,
        }),
        Some("local") => Ok(Output::Local {
            dest: need_dest(dest)?,
            platform_split,
        }),
        Some(other) => Err(fail(format!(
            "-o {spec}: unknown output type {other:?}: use image, oci, docker, tar or local"
        ))),
    }
}

pub(crate) fn secrets(specs: &[String]) -> Result<HashMap<String, Vec<u8>>, CliError> {
    let mut out = HashMap::new();
    for spec in specs {
        let mut id = None;
        let mut data = None;
        for part in spec.split(',') {
            match part.split_once('=') {
                Some(("id", v)) => id = Some(v.to_string()),
                Some(("src" | "source", v)) => {
                    data = Some(
                        std::fs::read(v)
                            .map_err(|e| fail(format!("--secret {spec}: cannot read {v}: {e}")))?,
                    )
                }
                Some(("env", v)) => {
                    data = Some(
                        std::env::var(v)
                            .map_err(|_| fail(format!("--secret {spec}: ${v} is not set")))?
                            .into_bytes(),
                    )
                }
                Some(("type", "file" | "env")) => {}
                _ => return Err(fail(format!("--secret {spec}: unknown option {part:?}"))),
            }
        }
        let id = id.ok_or_else(|| fail(format!("--secret {spec}: needs id=ID")))?;
        let data = match data {
            Some(d) => d,
            None => std::env::var(&id)
                .map(String::into_bytes)
                .map_err(|_| fail(format!("--secret {spec}: give src=FILE or env=VAR")))?,
        };
        out.insert(id, data);
    }
    Ok(out)
}

pub(crate) fn platform(p: Option<&str>) -> Result<Vec<Platform>, CliError> {
    let Some(p) = p else { return Ok(Vec::new()) };
    // Another architecture's RUN steps run under emulation; the build
    // checks for the emulator (binfmt_misc) when it has the graph.
    let mut out: Vec<Platform> = Vec::new();
    for one in p.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let parsed = Platform::parse(one).map_err(|e| fail(format!("--platform: {e}")))?;
        if !out.contains(&parsed) {
            out.push(parsed);
        }
    }
    if out.is_empty() {
        return Err(fail("--platform: expected OS/ARCH[/VARIANT][,...]"));
    }
    Ok(out)
}
