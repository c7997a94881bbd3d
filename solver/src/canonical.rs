//! The canonical encoding of an op, the input of both fingerprints. Its
//! bytes are a compatibility promise: a change here changes every cache
//! key and definition digest (the golden digest test says so).

use crate::encode::Encoder;
use crate::graph::{Chmod, Chown, Exec, FileOp, MountKind, Op, Source};

/// Which fingerprint an encoding is for: the definition digest covers
/// everything written; the cache key leaves out what cannot change the
/// result (image names, proxy variables).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    Definition,
    Cache,
}

pub(crate) fn encode_op(e: &mut Encoder, op: &Op, purpose: Purpose) {
    match op {
        Op::Source(s) => {
            e.tag("source");
            encode_source(e, s, purpose);
        }
        Op::Exec(x) => encode_exec(e, x, purpose),
        Op::Merge => {
            e.tag("merge");
        }
        Op::File(f) => {
            e.tag("file");
            encode_file(e, f);
        }
    }
}

fn encode_source(e: &mut Encoder, s: &Source, purpose: Purpose) {
    match s {
        Source::Scratch => {
            e.str("scratch");
        }
        Source::Image {
            reference,
            manifest_digest,
        } => {
            e.str("image");
            if purpose == Purpose::Definition {
                e.tag("reference").str(reference);
            }
            e.tag("manifest").str(manifest_digest);
        }
        Source::Context {
            name,
            include,
            exclude,
        } => {
            e.str("context")
                .tag("name")
                .str(name)
                .tag("include")
                .strs(include)
                .tag("exclude")
                .strs(exclude);
        }
        Source::Http {
            url,
            checksum,
            filename,
        } => {
            e.str("http")
                .tag("url")
                .str(url)
                .tag("checksum")
                .opt_str(checksum.as_deref())
                .tag("filename")
                .str(filename);
        }
        Source::Git {
            url,
            reference,
            subdir,
            keep_git_dir,
            submodules,
            checksum,
        } => {
            e.str("git");
            // For the cache the commit (the content) stands for the
            // remote and the ref.
            if purpose == Purpose::Definition {
                e.tag("url").str(url).tag("ref").str(reference);
                e.tag("checksum").opt_str(checksum.as_deref());
            }
            e.tag("subdir")
                .str(subdir)
                .tag("keep_git_dir")
                .str(if *keep_git_dir { "1" } else { "0" })
                .tag("submodules")
                .str(if *submodules { "1" } else { "0" });
        }
    }
}

fn encode_exec(e: &mut Encoder, x: &Exec, purpose: Purpose) {
    e.tag("exec").tag("argv").strs(&x.argv);
    e.tag("env").u64(x.env.len() as u64);
    for (k, v) in &x.env {
        e.str(k).str(v);
    }
    if purpose == Purpose::Definition {
        e.tag("proxy_env")
            .map(x.proxy_env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    }
    e.tag("cwd")
        .str(&x.cwd)
        .tag("user")
        .str(&x.user)
        .tag("network")
        .str(x.network.as_str());
    e.tag("mounts").u64(x.mounts.len() as u64);
    for m in &x.mounts {
        e.tag("target")
            .str(&m.target)
            .tag("selector")
            .str(&m.selector);
        e.tag("input").u64(m.input.map_or(u64::MAX, |i| i as u64));
        match &m.kind {
            MountKind::Bind { readonly } => {
                e.str("bind").bool(*readonly);
            }
            MountKind::Cache {
                id,
                sharing,
                uid,
                gid,
                mode,
            } => {
                e.str("cache")
                    .str(id)
                    .str(sharing.as_str())
                    .u64(u64::from(*uid))
                    .u64(u64::from(*gid))
                    .u64(u64::from(*mode));
            }
            MountKind::Tmpfs { size } => {
                e.str("tmpfs").u64(*size);
            }
            MountKind::Ssh {
                id,
                required,
                uid,
                gid,
                mode,
            } => {
                e.str("ssh").str(id).bool(*required);
                // Appended only when given, so plain ssh mounts keep their keys.
                if uid.is_some() || gid.is_some() || mode.is_some() {
                    let n = |v: &Option<u32>| v.map_or(u64::MAX, u64::from);
                    e.tag("ssh-opts").u64(n(uid)).u64(n(gid)).u64(n(mode));
                }
            }
            MountKind::Secret {
                id,
                required,
                env,
                uid,
                gid,
                mode,
            } => {
                e.str("secret").str(id).bool(*required);
                // Appended only when given, so plain secrets keep their keys.
                if env.is_some() || uid.is_some() || gid.is_some() || mode.is_some() {
                    let n = |v: &Option<u32>| v.map_or(u64::MAX, u64::from);
                    e.tag("secret-opts")
                        .opt_str(env.as_deref())
                        .u64(n(uid))
                        .u64(n(gid))
                        .u64(n(mode));
                }
            }
        }
    }
    // Appended only when set, so existing digests hold.
    if let Some(h) = &x.hostname {
        e.tag("hostname").str(h);
    }
}

fn encode_file(e: &mut Encoder, f: &FileOp) {
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
            e.str("copy")
                .u64(*src as u64)
                .strs(paths)
                .str(dest)
                .opt_str(chown.as_ref().map(Chown::to_string).as_deref())
                .opt_str(chmod.as_ref().map(Chmod::text).as_deref());
            e.strs(exclude).bool(*parents).bool(*unpack).bool(*link);
        }
        FileOp::Mkdir {
            path,
            mode,
            parents,
            owner,
        } => {
            e.str("mkdir")
                .str(path)
                .u64(u64::from(*mode))
                .bool(*parents);
            // Appended only when set, so root-owned mkdirs keep the
            // digests they had before owners existed.
            if let Some(owner) = owner {
                e.str(&owner.to_string());
            }
        }
        FileOp::Mkfile { path, mode, data } => {
            e.str("mkfile").str(path).u64(u64::from(*mode)).bytes(data);
        }
        FileOp::Rm { path } => {
            e.str("rm").str(path);
        }
        FileOp::Symlink { target, link } => {
            e.str("symlink").str(target).str(link);
        }
    }
}
