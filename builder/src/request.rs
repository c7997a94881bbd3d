//! What a build is asked to do: everything the command line means, already
//! checked (references parsed, specs parsed, files read). [`crate::Build`]
//! only does it.

use crate::remote_cache::{CacheTo, Location};
use kiln_frontend_dockerfile::plan::Platform;
use kiln_solver::Network;
use kiln_store::Reference;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

/// One build.
#[derive(Debug, Default)]
pub struct BuildRequest {
    /// The build context directory.
    pub context: PathBuf,
    /// `--build-context NAME=...`: named contexts, by name.
    pub named_contexts: BTreeMap<String, crate::contexts::ContextSource>,
    pub dockerfile: DockerfileSource,
    /// `--build-arg`s (values resolved from the environment already).
    pub build_args: BTreeMap<String, String>,
    /// The stage to build; the last one when None.
    pub target: Option<String>,
    /// The platforms built for (`--platform a,b`): the host's when empty.
    /// Several make one graph with a target per platform and a
    /// multi-platform image (one image per platform under each name).
    pub platforms: Vec<Platform>,
    /// Labels added to the image.
    pub labels: BTreeMap<String, String>,
    /// The network RUN steps get by default.
    pub network: Network,
    /// `--allow network.host`: `RUN --network=host` may have it.
    pub allow_host_network: bool,
    pub output: Output,
    /// `RUN --mount=type=secret` contents, by id.
    pub secrets: HashMap<String, Vec<u8>>,
    /// `--ssh ID=SOCKET`: agent sockets RUN `--mount=type=ssh` binds.
    pub ssh: HashMap<String, std::path::PathBuf>,
    pub cache_to: Vec<CacheTo>,
    pub cache_from: Vec<Location>,
    /// `SOURCE_DATE_EPOCH`: the image's `created` and the clamp on layer
    /// file times, for reproducible builds.
    pub epoch: Option<i64>,
    pub no_cache: NoCache,
    /// Resolve every base image against its registry again.
    pub pull: bool,
    /// Say why steps miss the cache in every progress mode.
    pub explain: bool,
}

/// The Dockerfile, already read.
#[derive(Debug, Clone, Default)]
pub struct DockerfileSource {
    /// How messages name it (`Dockerfile`, `<stdin>`).
    pub name: String,
    /// Its path when it is a file: `<path>.dockerignore` then wins over
    /// the context's `.dockerignore`.
    pub path: Option<PathBuf>,
    pub text: Vec<u8>,
}

/// Where the result goes.
#[derive(Debug, Clone)]
pub enum Output {
    /// Stored as an image under `names`; pushed to their registries when
    /// `push`.
    Image { names: Vec<Reference>, push: bool },
    /// Stored, and written as an OCI/docker archive to `dest`.
    Archive {
        dest: PathBuf,
        names: Vec<Reference>,
    },
    /// The root filesystem as one tar (several platforms: a `linux_ARCH/`
    /// directory each, unless not `platform_split`: all in one tree).
    Tar { dest: PathBuf, platform_split: bool },
    /// The root filesystem copied into a directory (several platforms: as
    /// for `Tar`).
    Local { dest: PathBuf, platform_split: bool },
}

impl Default for Output {
    /// An unnamed image in the store.
    fn default() -> Output {
        Output::Image {
            names: Vec::new(),
            push: false,
        }
    }
}

/// Which steps never come from the cache.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum NoCache {
    #[default]
    None,
    /// `--no-cache`.
    All,
    /// `--no-cache-filter`: these stages' (by name or index).
    Stages(Vec<String>),
}
