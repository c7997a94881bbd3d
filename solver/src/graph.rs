//! The build graph: a [`Definition`] of [`Vertex`]es, each an [`Op`] over
//! the results of earlier vertices. Frontend-neutral: the Dockerfile
//! frontend lowers to it, the solver walks it.
//!
//! Two fingerprints per vertex (as BuildKit has):
//! - the **definition digest** hashes the op as written plus its inputs'
//!   definition digests; identical work inside one build shares it and runs
//!   once;
//! - the **cache key** hashes only what decides the result: the op's
//!   cache-relevant fields, its inputs' cache keys, and for context sources
//!   the content checksum of exactly the paths selected. Excluded, each on
//!   purpose: vertex names (progress text), proxy environment variables
//!   (they change how a download goes, not what it yields), image names
//!   (an image keys by manifest digest, whatever it was called), absolute
//!   context paths, mtimes, and secret contents (only their ids).

use crate::canonical::{encode_op, Purpose};
use crate::encode::{Encoder, Fingerprint};

/// Index of a vertex in its [`Definition`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VertexId(pub usize);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The empty filesystem (`FROM scratch`).
    Scratch,
    /// An image, resolved to its manifest digest before solving.
    Image {
        reference: String,
        manifest_digest: String,
    },
    /// The local build context, limited to the paths an op reads.
    Context {
        name: String,
        include: Vec<String>,
        exclude: Vec<String>,
    },
    /// A download (`ADD https://...`), pinned by checksum when given.
    Http {
        url: String,
        /// `sha256:<hex>` from `--checksum`.
        checksum: Option<String>,
        /// The name the download gets in its one-file tree.
        filename: String,
    },
    /// A git repository at a ref (`ADD https://host/repo.git#ref:dir`),
    /// resolved to a commit when cache keys are made: the commit, not
    /// the URL, is its content.
    Git {
        /// The remote, without `#ref:subdir` or the query.
        url: String,
        /// A branch, tag or commit (empty: the remote's HEAD).
        reference: String,
        /// A directory of the checkout to take (empty: all of it).
        subdir: String,
        keep_git_dir: bool,
        submodules: bool,
        /// `--checksum=COMMIT`: the commit the ref must resolve to.
        checksum: Option<String>,
    },
}

/// How concurrent users of one cache mount share it (BuildKit's modes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sharing {
    /// Everyone writes the same directory at once.
    Shared,
    /// One writer at a time; others get a throwaway copy.
    Private,
    /// One writer at a time; others wait.
    Locked,
}

impl Sharing {
    /// BuildKit's spelling (also the encoded form).
    pub fn as_str(self) -> &'static str {
        match self {
            Sharing::Shared => "shared",
            Sharing::Private => "private",
            Sharing::Locked => "locked",
        }
    }

    pub fn parse(s: &str) -> Option<Sharing> {
        match s {
            "shared" => Some(Sharing::Shared),
            "private" => Some(Sharing::Private),
            "locked" => Some(Sharing::Locked),
            _ => None,
        }
    }
}

/// The network an exec op gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Network {
    /// Whatever the worker gives by default (kiln's builder: the host's,
    /// as buildkitd without CNI). The Dockerfile frontend resolves the
    /// invoker's choice itself and never emits this.
    #[default]
    Default,
    /// The host's network namespace.
    Host,
    /// A namespace with only loopback.
    None,
    /// A namespace on kiln's default bridge network, with NAT out
    /// (`kiln build --network bridge`).
    Bridge,
}

impl Network {
    /// The encoded form: `default`, `host`, `none`, `bridge`.
    pub fn as_str(self) -> &'static str {
        match self {
            Network::Default => "default",
            Network::Host => "host",
            Network::None => "none",
            Network::Bridge => "bridge",
        }
    }
}

/// `--chmod`: an octal mode, or a symbolic one (`u+x,go-w`) applied to
/// each file's own mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chmod {
    Octal(u32),
    /// Parsed once, applied to every entry.
    Symbolic(crate::chmod::SymbolicMode),
}

impl Chmod {
    /// The encoded form: four octal digits, or the symbolic text.
    pub fn text(&self) -> String {
        match self {
            Chmod::Octal(m) => format!("{m:04o}"),
            Chmod::Symbolic(s) => s.text().to_string(),
        }
    }
}

/// One side of `--chown=user[:group]`: a number, or a name resolved in
/// the image's /etc/passwd or /etc/group when the op runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    Id(u32),
    Name(String),
}

impl Owner {
    pub fn parse(s: &str) -> Owner {
        match s.parse::<u32>() {
            Ok(n) => Owner::Id(n),
            Err(_) => Owner::Name(s.to_string()),
        }
    }
}

impl std::fmt::Display for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Owner::Id(n) => write!(f, "{n}"),
            Owner::Name(s) => f.write_str(s),
        }
    }
}

/// `--chown=user[:group]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chown {
    pub user: Owner,
    pub group: Option<Owner>,
}

impl Chown {
    pub fn parse(spec: &str) -> Chown {
        match spec.split_once(':') {
            Some((u, g)) => Chown {
                user: Owner::parse(u),
                group: Some(Owner::parse(g)),
            },
            None => Chown {
                user: Owner::parse(spec),
                group: None,
            },
        }
    }

    /// Both sides numeric: resolvable without the image's files.
    pub fn is_numeric(&self) -> bool {
        matches!(self.user, Owner::Id(_)) && matches!(self.group, None | Some(Owner::Id(_)))
    }
}

impl std::fmt::Display for Chown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.group {
            Some(g) => write!(f, "{}:{g}", self.user),
            None => write!(f, "{}", self.user),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountKind {
    /// Input `input` (a vertex result) at the target.
    Bind {
        readonly: bool,
    },
    /// A persistent cache directory.
    Cache {
        id: String,
        sharing: Sharing,
        uid: u32,
        gid: u32,
        mode: u32,
    },
    Tmpfs {
        size: u64,
    },
    /// A secret: its id is part of the key, its content never is. It is
    /// a file at the mount's target unless the target is empty (`env=`
    /// alone), and the environment variable `env` when set.
    Secret {
        id: String,
        required: bool,
        env: Option<String>,
        /// The file's owner and mode: the container's user and 0400 when
        /// not given.
        uid: Option<u32>,
        gid: Option<u32>,
        mode: Option<u32>,
    },
    /// The invoker's SSH agent socket `id` (`--ssh`), served at the
    /// target for the step alone; never in the result.
    Ssh {
        id: String,
        required: bool,
        /// The socket's owner and mode in the container: root and 0600
        /// when not given (BuildKit's).
        uid: Option<u32>,
        gid: Option<u32>,
        mode: Option<u32>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecMount {
    pub target: String,
    /// Index into the vertex's inputs (for binds).
    pub input: Option<usize>,
    /// Path inside the input to mount.
    pub selector: String,
    pub kind: MountKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exec {
    pub argv: Vec<String>,
    /// In order; later entries win, as in the image config.
    pub env: Vec<(String, String)>,
    /// HTTP(S)_PROXY and friends: passed to the process, in no cache key.
    pub proxy_env: Vec<(String, String)>,
    pub cwd: String,
    pub user: String,
    pub network: Network,
    pub mounts: Vec<ExecMount>,
    /// The container's hostname (`BUILDKIT_SANDBOX_HOSTNAME`); the
    /// executor's default if none.
    pub hostname: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileOp {
    /// COPY/ADD: `paths` from input `src` into `dest` of input 0.
    Copy {
        src: usize,
        paths: Vec<String>,
        dest: String,
        chown: Option<Chown>,
        chmod: Option<Chmod>,
        exclude: Vec<String>,
        parents: bool,
        /// ADD of a local archive unpacks it.
        unpack: bool,
        /// `--link`: copied onto an empty tree, so the layer does not
        /// depend on what is below it.
        link: bool,
    },
    Mkdir {
        path: String,
        mode: u32,
        parents: bool,
        /// Who owns the directories made (WORKDIR under a USER), resolved
        /// against the image's /etc/passwd as `--chown` is; root if none.
        owner: Option<Chown>,
    },
    Mkfile {
        path: String,
        mode: u32,
        data: Vec<u8>,
    },
    Rm {
        path: String,
    },
    Symlink {
        target: String,
        link: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Source(Source),
    /// Runs a command; input 0 is the root filesystem.
    Exec(Exec),
    /// Changes files in input 0.
    File(FileOp),
    /// Input 1's layers stacked on input 0's, with no work (`COPY
    /// --link`): the copy is made and cached apart from the base, so a new
    /// base reuses it instead of copying again.
    Merge,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vertex {
    pub op: Op,
    pub inputs: Vec<VertexId>,
    /// What progress output calls it (e.g. `[build 2/4] RUN make`); in no
    /// fingerprint.
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Definition {
    vertices: Vec<Vertex>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphError(pub String);

impl std::fmt::Display for GraphError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for GraphError {}

impl Definition {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a vertex whose inputs are already in the graph (so the order of
    /// `vertices` is always a topological order).
    pub fn add(&mut self, vertex: Vertex) -> Result<VertexId, GraphError> {
        let id = VertexId(self.vertices.len());
        if let Some(bad) = vertex.inputs.iter().find(|i| i.0 >= id.0) {
            return Err(GraphError(format!(
                "vertex {:?} refers to {:?}, which is not added yet",
                vertex.name, bad
            )));
        }
        let needs_root = matches!(vertex.op, Op::Exec(_) | Op::File(_) | Op::Merge);
        if needs_root && vertex.inputs.is_empty() {
            return Err(GraphError(format!(
                "vertex {:?} needs an input filesystem",
                vertex.name
            )));
        }
        self.vertices.push(vertex);
        Ok(id)
    }

    pub fn vertex(&self, id: VertexId) -> &Vertex {
        &self.vertices[id.0]
    }

    pub fn vertices(&self) -> impl Iterator<Item = (VertexId, &Vertex)> {
        self.vertices
            .iter()
            .enumerate()
            .map(|(i, v)| (VertexId(i), v))
    }

    pub fn len(&self) -> usize {
        self.vertices.len()
    }

    pub fn is_empty(&self) -> bool {
        self.vertices.is_empty()
    }

    /// Every vertex's definition digest, indexed by [`VertexId`].
    pub fn definition_digests(&self) -> Vec<DefinitionDigest> {
        let mut out: Vec<DefinitionDigest> = Vec::with_capacity(self.vertices.len());
        for v in &self.vertices {
            let mut e = Encoder::new();
            e.tag("kiln.definition.v1");
            encode_op(&mut e, &v.op, Purpose::Definition);
            e.tag("inputs").u64(v.inputs.len() as u64);
            for i in &v.inputs {
                e.digest(&out[i.0].0);
            }
            out.push(DefinitionDigest(e.finish()));
        }
        out
    }

    /// Every vertex's cache key. `content_checksum` gives the content
    /// checksum of a context source's selected paths or of a download
    /// (None if unknown: the key then covers only the op, which callers
    /// must not cache on).
    pub fn cache_keys(
        &self,
        content_checksum: impl Fn(VertexId, &Source) -> Option<Fingerprint>,
    ) -> Vec<CacheKey> {
        let mut out: Vec<CacheKey> = Vec::with_capacity(self.vertices.len());
        for (i, v) in self.vertices.iter().enumerate() {
            let mut e = Encoder::new();
            e.tag("kiln.cache.v1");
            encode_op(&mut e, &v.op, Purpose::Cache);
            if let Op::Source(
                src @ (Source::Context { .. } | Source::Http { .. } | Source::Git { .. }),
            ) = &v.op
            {
                match content_checksum(VertexId(i), src) {
                    Some(sum) => e.tag("content").digest(&sum),
                    None => e.tag("content").opt_str(None),
                };
            }
            e.tag("inputs").u64(v.inputs.len() as u64);
            for input in &v.inputs {
                e.digest(&out[input.0].0);
            }
            out.push(CacheKey(e.finish()));
        }
        out
    }
}

/// A vertex's definition digest: the op as written and its inputs'
/// definition digests. Equal digests are the same work in one build.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct DefinitionDigest(pub Fingerprint);

/// A vertex's cache key: what decides its result. Equal keys are
/// interchangeable results, across builds and machines.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct CacheKey(pub Fingerprint);

impl DefinitionDigest {
    pub fn hex(&self) -> String {
        self.0.hex()
    }
}

impl CacheKey {
    pub fn hex(&self) -> String {
        self.0.hex()
    }
}

impl std::fmt::Display for CacheKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::fmt::Display for DefinitionDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(reference: &str) -> Vertex {
        Vertex {
            op: Op::Source(Source::Image {
                reference: reference.into(),
                manifest_digest:
                    "sha256:1111111111111111111111111111111111111111111111111111111111111111".into(),
            }),
            inputs: vec![],
            name: format!("FROM {reference}"),
        }
    }

    fn run(root: VertexId, cmd: &str, proxy: &str) -> Vertex {
        Vertex {
            op: Op::Exec(Exec {
                argv: vec!["/bin/sh".into(), "-c".into(), cmd.into()],
                env: vec![("PATH".into(), "/bin".into())],
                proxy_env: vec![("HTTP_PROXY".into(), proxy.into())],
                cwd: "/".into(),
                user: "".into(),
                network: Network::Default,
                mounts: vec![],
                hostname: None,
            }),
            inputs: vec![root],
            name: format!("RUN {cmd}"),
        }
    }

    /// A small build: FROM, COPY from the context, RUN.
    fn sample(reference: &str, proxy: &str, name_suffix: &str) -> Definition {
        let mut d = Definition::new();
        let base = d.add(image(reference)).unwrap();
        let ctx = d
            .add(Vertex {
                op: Op::Source(Source::Context {
                    name: "context".into(),
                    include: vec!["src/".into()],
                    exclude: vec![".git".into()],
                }),
                inputs: vec![],
                name: "load context".into(),
            })
            .unwrap();
        let copy = d
            .add(Vertex {
                op: Op::File(FileOp::Copy {
                    src: 1,
                    paths: vec!["src/".into()],
                    dest: "/app/".into(),
                    chown: None,
                    chmod: Some(Chmod::Octal(0o644)),
                    exclude: vec![],
                    parents: false,
                    unpack: false,
                    link: false,
                }),
                inputs: vec![base, ctx],
                name: format!("COPY src/ /app/{name_suffix}"),
            })
            .unwrap();
        d.add(run(copy, "make", proxy)).unwrap();
        d
    }

    fn sum(tag: &str) -> Fingerprint {
        let mut e = Encoder::new();
        e.str(tag);
        e.finish()
    }

    /// Pins the encoding: if this fails, every user's cache is about to be
    /// invalidated. Change the expected values only on purpose.
    #[test]
    fn golden_digests() {
        let d = sample("busybox", "http://proxy:3128", "");
        let defs = d.definition_digests();
        let keys = d.cache_keys(|_, _| Some(sum("context-v1")));
        assert_eq!(
            defs[3].hex(),
            GOLDEN_DEFINITION,
            "definition digest of the RUN vertex changed"
        );
        assert_eq!(
            keys[3].hex(),
            GOLDEN_CACHE_KEY,
            "cache key of the RUN vertex changed"
        );
    }

    const GOLDEN_DEFINITION: &str =
        "3e3c02593df677f88e1e81a0d1583be993377d36cf9e48adb80b6861dd380316";
    const GOLDEN_CACHE_KEY: &str =
        "c7f3d1cb9e63bdd2e4c2e353c1962be78c79b9ec8164aa4e4e84180a5cd159c6";

    #[test]
    fn what_keys_ignore_and_what_they_do_not() {
        let ctx = |_: VertexId, _: &Source| Some(sum("context-v1"));
        let a = sample("busybox", "http://proxy:3128", "");
        // Progress names: in neither fingerprint.
        let renamed = sample("busybox", "http://proxy:3128", " (renamed)");
        assert_eq!(a.definition_digests(), renamed.definition_digests());
        // Proxy settings: in the definition, not in the cache key.
        let proxied = sample("busybox", "http://other:8080", "");
        assert_ne!(a.definition_digests()[3], proxied.definition_digests()[3]);
        assert_eq!(a.cache_keys(ctx)[3], proxied.cache_keys(ctx)[3]);
        // An image keys by manifest digest, not by the name it had.
        let aliased = sample("docker.io/library/busybox:latest", "http://proxy:3128", "");
        assert_eq!(a.cache_keys(ctx)[3], aliased.cache_keys(ctx)[3]);
        // Context content flows into every dependent's key.
        let changed = a.cache_keys(|_, _| Some(sum("context-v2")));
        assert_eq!(a.cache_keys(ctx)[0], changed[0], "the image is unaffected");
        assert_ne!(a.cache_keys(ctx)[2], changed[2]);
        assert_ne!(a.cache_keys(ctx)[3], changed[3]);
    }

    #[test]
    fn inputs_must_exist_first() {
        let mut d = Definition::new();
        assert!(d.add(run(VertexId(0), "x", "")).is_err());
        let root = d.add(image("a")).unwrap();
        assert!(d
            .add(Vertex {
                op: Op::File(FileOp::Rm { path: "/x".into() }),
                inputs: vec![],
                name: "rm".into()
            })
            .is_err());
        assert_eq!(d.add(run(root, "x", "")).unwrap(), VertexId(1));
    }
}
