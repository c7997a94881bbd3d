//! A canonical text dump of a build graph: what a target needs, one
//! vertex per paragraph with its definition digest, every field of its op
//! on a line of its own. Golden tests compare it; `kiln debug dump-graph`
//! prints it. Strings are quoted (Rust escapes), so the text is
//! unambiguous and control characters never reach a terminal raw.

use crate::graph::{Definition, Exec, ExecMount, FileOp, MountKind, Op, Source, VertexId};
use std::fmt::Write as _;

/// The vertices `target` needs, in graph order, then `target: vN`.
pub fn dump(def: &Definition, target: VertexId) -> String {
    let digests = def.definition_digests();
    let mut out = String::new();
    for id in crate::needed(def, target) {
        let v = def.vertex(id);
        let inputs: Vec<String> = v.inputs.iter().map(|i| format!("v{}", i.0)).collect();
        let _ = writeln!(
            out,
            "v{} {}({}) {}",
            id.0,
            op_kind(&v.op),
            inputs.join(", "),
            digests[id.0].hex()
        );
        if !v.name.is_empty() {
            line(&mut out, "name", &quote(&v.name));
        }
        op_fields(&mut out, &v.op);
        out.push('\n');
    }
    let _ = writeln!(out, "target: v{}", target.0);
    out
}

fn op_kind(op: &Op) -> &'static str {
    match op {
        Op::Source(Source::Scratch) => "scratch",
        Op::Source(Source::Image { .. }) => "image",
        Op::Source(Source::Context { .. }) => "context",
        Op::Source(Source::Http { .. }) => "http",
        Op::Source(Source::Git { .. }) => "git",
        Op::Exec(_) => "exec",
        Op::File(FileOp::Copy { .. }) => "copy",
        Op::File(FileOp::Mkdir { .. }) => "mkdir",
        Op::File(FileOp::Mkfile { .. }) => "mkfile",
        Op::File(FileOp::Rm { .. }) => "rm",
        Op::File(FileOp::Symlink { .. }) => "symlink",
        Op::Merge => "merge",
    }
}

fn line(out: &mut String, key: &str, value: &str) {
    let _ = writeln!(out, "  {key}: {value}");
}

fn quote(s: &str) -> String {
    format!("{s:?}")
}

fn list(items: &[String]) -> String {
    format!("{items:?}")
}

fn op_fields(out: &mut String, op: &Op) {
    match op {
        Op::Source(src) => source_fields(out, src),
        Op::Exec(x) => exec_fields(out, x),
        Op::File(f) => file_fields(out, f),
        Op::Merge => {}
    }
}

fn source_fields(out: &mut String, src: &Source) {
    match src {
        Source::Scratch => {}
        Source::Image {
            reference,
            manifest_digest,
        } => {
            line(out, "reference", &quote(reference));
            line(out, "manifest", manifest_digest);
        }
        Source::Context {
            name,
            include,
            exclude,
        } => {
            line(out, "context", &quote(name));
            line(out, "include", &list(include));
            line(out, "exclude", &list(exclude));
        }
        Source::Http {
            url,
            checksum,
            filename,
        } => {
            line(out, "url", &quote(url));
            line(out, "filename", &quote(filename));
            if let Some(sum) = checksum {
                line(out, "checksum", sum);
            }
        }
        Source::Git {
            url,
            reference,
            subdir,
            keep_git_dir,
            submodules,
            checksum,
        } => {
            line(out, "url", &quote(url));
            line(out, "ref", &quote(reference));
            line(out, "subdir", &quote(subdir));
            line(
                out,
                "keep_git_dir",
                if *keep_git_dir { "true" } else { "false" },
            );
            line(
                out,
                "submodules",
                if *submodules { "true" } else { "false" },
            );
            if let Some(sum) = checksum {
                line(out, "checksum", sum);
            }
        }
    }
}

fn exec_fields(out: &mut String, x: &Exec) {
    line(out, "argv", &list(&x.argv));
    for (k, v) in &x.env {
        line(out, "env", &quote(&format!("{k}={v}")));
    }
    for (k, v) in &x.proxy_env {
        line(out, "proxy-env", &quote(&format!("{k}={v}")));
    }
    line(out, "cwd", &quote(&x.cwd));
    line(out, "user", &quote(&x.user));
    line(out, "network", x.network.as_str());
    for m in &x.mounts {
        line(out, "mount", &mount(m));
    }
    if let Some(h) = &x.hostname {
        line(out, "hostname", &quote(h));
    }
}

fn mount(m: &ExecMount) -> String {
    let at = quote(&m.target);
    let from = match m.input {
        Some(i) => format!(" input={i} selector={}", quote(&m.selector)),
        None => String::new(),
    };
    match &m.kind {
        MountKind::Bind { readonly } => format!("{at} bind{from} readonly={readonly}"),
        MountKind::Cache {
            id,
            sharing,
            uid,
            gid,
            mode,
        } => format!(
            "{at} cache{from} id={} sharing={} uid={uid} gid={gid} mode={mode:04o}",
            quote(id),
            sharing.as_str()
        ),
        MountKind::Tmpfs { size } => format!("{at} tmpfs size={size}"),
        MountKind::Ssh {
            id,
            required,
            uid,
            gid,
            mode,
        } => {
            let mut s = format!("{at} ssh id={} required={required}", quote(id));
            owner_mode(&mut s, uid, gid, mode);
            s
        }
        MountKind::Secret {
            id,
            required,
            env,
            uid,
            gid,
            mode,
        } => {
            let mut s = format!("{at} secret id={} required={required}", quote(id));
            if let Some(env) = env {
                s.push_str(&format!(" env={}", quote(env)));
            }
            owner_mode(&mut s, uid, gid, mode);
            s
        }
    }
}

/// ` uid=N gid=N mode=0NNN`, each only when given.
fn owner_mode(s: &mut String, uid: &Option<u32>, gid: &Option<u32>, mode: &Option<u32>) {
    for (k, v) in [("uid", uid), ("gid", gid)] {
        if let Some(v) = v {
            s.push_str(&format!(" {k}={v}"));
        }
    }
    if let Some(mode) = mode {
        s.push_str(&format!(" mode={mode:04o}"));
    }
}

fn file_fields(out: &mut String, f: &FileOp) {
    match f {
        FileOp::Copy {
            src,
            paths,
            dest,
            chown,
            chmod,
            exclude,
            parents,
            unpack,
            link,
        } => {
            line(out, "from", &format!("input={src}"));
            line(out, "paths", &list(paths));
            line(out, "dest", &quote(dest));
            if let Some(c) = chown {
                line(out, "chown", &quote(&c.to_string()));
            }
            if let Some(m) = chmod {
                line(out, "chmod", &m.text());
            }
            if !exclude.is_empty() {
                line(out, "exclude", &list(exclude));
            }
            let flags: Vec<&str> = [(*parents, "parents"), (*unpack, "unpack"), (*link, "link")]
                .iter()
                .filter(|(on, _)| *on)
                .map(|(_, name)| *name)
                .collect();
            if !flags.is_empty() {
                line(out, "flags", &flags.join(" "));
            }
        }
        FileOp::Mkdir {
            path,
            mode,
            parents,
            owner,
        } => {
            line(out, "path", &quote(path));
            line(out, "mode", &format!("{mode:04o}"));
            line(out, "parents", &parents.to_string());
            if let Some(owner) = owner {
                line(out, "owner", &owner.to_string());
            }
        }
        FileOp::Mkfile { path, mode, data } => {
            line(out, "path", &quote(path));
            line(out, "mode", &format!("{mode:04o}"));
            line(out, "data", &quote(&String::from_utf8_lossy(data)));
        }
        FileOp::Rm { path } => line(out, "path", &quote(path)),
        FileOp::Symlink { target, link } => {
            line(out, "target", &quote(target));
            line(out, "link", &quote(link));
        }
    }
}
