//! `kiln debug`: the parser's, the frontend's and the store's views of
//! things, for people working on kiln (and golden files).

use crate::{emit, CliError};
use clap::Subcommand;
use kiln_builder::progress::Progress;
use kiln_builder::{Build, BuildRequest, DockerfileSource};
use kiln_store::Store;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Subcommand)]
pub enum Debug {
    /// Print a Dockerfile's syntax tree in BuildKit's parser-test format.
    DumpAst {
        /// The Dockerfile (`-` for standard input).
        file: PathBuf,
    },
    /// Validate every instruction and print the typed instructions.
    DumpInstructions {
        /// The Dockerfile (`-` for standard input).
        file: PathBuf,
    },
    /// Print the build graph a Dockerfile lowers to (what the target
    /// needs, with definition digests), as the golden files under
    /// fixtures/lower/ hold it. Base images come from the store only.
    DumpGraph {
        /// The Dockerfile (`-` for standard input) [default: CONTEXT/Dockerfile]
        #[arg(short = 'f', long = "file", value_name = "FILE")]
        file: Option<PathBuf>,
        /// The stage to lower [default: the last one].
        #[arg(long, value_name = "STAGE")]
        target: Option<String>,
        /// A build arg: `K=V`, or `K` to take the value from the environment.
        #[arg(long = "build-arg", value_name = "K[=V]")]
        build_args: Vec<String>,
        /// Print the image-config template (with history) instead.
        #[arg(long)]
        config: bool,
        /// The build context directory.
        #[arg(value_name = "CONTEXT")]
        context: PathBuf,
    },
    /// Unpack an image's layers (if needed) and print the snapshot
    /// directories, base first: the overlayfs lowerdirs a container uses.
    Snapshots { image: String },
    /// Print the Dockerfile back in canonical form (one line per instruction).
    Print {
        /// The Dockerfile (`-` for standard input).
        file: PathBuf,
    },
}

pub fn run(
    command: Debug,
    store: impl FnOnce() -> Result<Store, CliError>,
) -> Result<(), CliError> {
    match command {
        Debug::DumpAst { file } => emit(&kiln_parser::dump::dump(&parse(&file)?.1)),
        Debug::DumpInstructions { file } => {
            let (source, df) = parse(&file)?;
            let instructions = kiln_parser::instructions::parse_instructions(&df)
                .map_err(|error| dockerfile_error(&source, error))?;
            let text: String = instructions
                .iter()
                .map(|ins| format!("{}: {:#?}\n", ins.span.start.line, ins.inner))
                .collect();
            emit(&text)
        }
        Debug::Print { file } => emit(&kiln_parser::print::print(&parse(&file)?.1)),
        Debug::Snapshots { image } => crate::images::snapshots(&store()?, &image),
        Debug::DumpGraph {
            file,
            target,
            build_args,
            config,
            context,
        } => {
            let request = BuildRequest {
                dockerfile: crate::flags::dockerfile(file.as_deref(), &context)?,
                context,
                build_args: crate::flags::build_args(&build_args),
                target,
                ..BuildRequest::default()
            };
            let progress = Arc::new(Progress::new(
                kiln_builder::ProgressMode::Plain,
                Box::new(std::io::stderr()),
            ));
            let lowered = Build::lower(&store()?, &request, &progress)
                .map_err(|e| crate::build::build_error(&request, e))?;
            emit(&match config {
                true => lowered.dump_config(),
                false => lowered.dump_graph(),
            })
        }
    }
}

/// Reads and parses a Dockerfile; prints parser warnings.
fn parse(file: &Path) -> Result<(DockerfileSource, kiln_parser::Dockerfile), CliError> {
    let source = crate::flags::read_dockerfile(file)?;
    let df = kiln_parser::parse_bytes(&source.text).map_err(|e| dockerfile_error(&source, e))?;
    for w in &df.warnings {
        eprintln!(
            "{}:{}:{}: warning: {}",
            kiln_parser::terminal_safe_line(&source.name),
            w.pos.line,
            w.pos.col,
            kiln_parser::terminal_safe(&w.message)
        );
    }
    Ok((source, df))
}

fn dockerfile_error(source: &DockerfileSource, error: kiln_parser::ParseError) -> CliError {
    CliError::Dockerfile {
        error,
        file: source.name.clone(),
        text: String::from_utf8_lossy(&source.text).into_owned(),
    }
}
