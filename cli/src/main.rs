//! `kiln`: the command line. Thin by design: clap structs → validated
//! options → library calls. Only this crate prints or picks exit codes.

mod build;
mod change;
mod containers;
mod debug;
mod flags;
mod format;
mod images;
mod manuals;
mod network;
mod platforms;
mod registry;
mod rootless;
mod run;

use clap::{Parser, Subcommand};
use kiln_builder::BuildError;
use kiln_parser::{terminal_safe_line, ParseError};
use kiln_solver::Failure;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "kiln",
    version,
    about = "Build and run OCI images from Dockerfiles"
)]
struct Cli {
    /// The store directory [default: /var/lib/kiln as root, else $XDG_DATA_HOME/kiln]
    #[arg(long, global = true, env = "KILN_ROOT", value_name = "DIR")]
    root: Option<PathBuf>,
    /// A registry (`host:port`) that may be spoken to over plain HTTP
    /// (localhost and 127.0.0.1 always may); repeatable.
    #[arg(
        long = "insecure-registry",
        global = true,
        env = "KILN_INSECURE_REGISTRIES",
        value_delimiter = ',',
        value_name = "HOST"
    )]
    insecure_registries: Vec<String>,
    #[command(subcommand)]
    command: Command,
}

// `Run` carries many flags; the enum is built once per process, so its
// size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Build an image from a Dockerfile and a context directory.
    Build(build::BuildOptions),
    /// Run a command in a new container from an image.
    Run(run::RunOptions),
    /// Create a container from an image without starting it; prints its id.
    Create(run::RunOptions),
    /// Start stopped or created containers (in the background, under a monitor).
    Start {
        /// Stream the container's output and exit with its code.
        #[arg(short, long)]
        attach: bool,
        #[arg(required = true, value_name = "CONTAINER")]
        containers: Vec<String>,
    },
    /// Stop running containers: their stop signal, then SIGKILL after a timeout.
    Stop {
        /// Seconds to wait before SIGKILL [default: the container's, else 10].
        #[arg(short, long = "time", alias = "timeout")]
        time: Option<u64>,
        #[arg(required = true, value_name = "CONTAINER")]
        containers: Vec<String>,
    },
    /// Send a signal to running containers' PID 1 [default: SIGKILL].
    Kill {
        #[arg(short, long, default_value = "KILL")]
        signal: String,
        #[arg(required = true, value_name = "CONTAINER")]
        containers: Vec<String>,
    },
    /// Stop, then start containers.
    Restart {
        #[arg(short, long = "time", alias = "timeout")]
        time: Option<u64>,
        #[arg(required = true, value_name = "CONTAINER")]
        containers: Vec<String>,
    },
    /// Remove containers.
    Rm {
        /// Kill a running container first.
        #[arg(short, long)]
        force: bool,
        /// Remove its anonymous volumes too.
        #[arg(short, long)]
        volumes: bool,
        #[arg(required = true, value_name = "CONTAINER")]
        containers: Vec<String>,
    },
    /// Wait for containers to stop; print their exit codes.
    Wait {
        #[arg(required = true, value_name = "CONTAINER")]
        containers: Vec<String>,
    },
    /// List containers (running ones; -a: all).
    Ps {
        #[arg(short, long)]
        all: bool,
        /// Only ids.
        #[arg(short, long)]
        quiet: bool,
        #[arg(long)]
        no_trunc: bool,
        /// id=, name=, status=, ancestor=, label=, exited=, health=.
        #[arg(short, long, value_name = "KEY=VALUE")]
        filter: Vec<String>,
        /// `table`, `json`, or a Go template per container (`{{.Names}}`).
        #[arg(long)]
        format: Option<String>,
    },
    /// Show a container's output.
    Logs {
        /// Keep streaming new output until the container stops.
        #[arg(short, long)]
        follow: bool,
        /// Only the last N lines (or `all`).
        #[arg(short = 'n', long)]
        tail: Option<String>,
        /// Prefix each line with its time.
        #[arg(short, long)]
        timestamps: bool,
        container: String,
    },
    /// Run a command in a running container.
    Exec(containers::ExecOptions),
    /// Rename a container.
    Rename { container: String, new_name: String },
    /// Make an image from a container's changes.
    Commit {
        #[arg(short, long)]
        author: Option<String>,
        #[arg(short, long)]
        message: Option<String>,
        /// A Dockerfile instruction to apply to the config (CMD, ENV, ...).
        #[arg(short, long, value_name = "INSTRUCTION")]
        change: Vec<String>,
        container: String,
        /// A name for the image.
        repository: Option<String>,
    },
    /// List what a container added (A), changed (C) and deleted (D).
    Diff { container: String },
    /// Write a container's filesystem as a tar.
    Export {
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        container: String,
    },
    /// Copy files between a container and the host (CONTAINER:PATH on one side).
    Cp { src: String, dest: String },
    /// Manage volumes.
    #[command(subcommand)]
    Volume(containers::VolumeCommand),
    /// Manage networks.
    #[command(subcommand)]
    Network(network::NetworkCommand),
    /// List a container's published ports (or where PORT[/PROTO] went).
    Port {
        container: String,
        port: Option<String>,
    },
    /// The per-container monitor (started by run -d and start).
    #[command(name = "container-monitor", hide = true)]
    ContainerMonitor { id: String },
    /// Pull an image from a registry into the store.
    Pull {
        /// The image (`busybox`, `127.0.0.1:5000/app:1`, `repo@sha256:...`).
        image: String,
        /// The platform to pick from a multi-platform image [default: this machine's].
        #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
        platform: Option<String>,
        /// Print only the reference.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Push an image from the store to a registry.
    Push {
        /// The image to push; its name says where, unless DEST is given.
        image: String,
        /// Where to push it (a full reference).
        dest: Option<String>,
        #[arg(short, long)]
        quiet: bool,
    },
    /// Save credentials for a registry (in docker's config.json or its
    /// credential helper).
    Login {
        /// The registry host (`host:port`).
        server: String,
        #[arg(short, long)]
        username: Option<String>,
        /// Read the password from standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Forget a registry's credentials.
    Logout { server: String },
    /// Load images from a docker archive, an OCI layout tar or an OCI layout directory.
    Load {
        /// The archive or layout directory (`-` for standard input).
        #[arg(short, long, value_name = "FILE", default_value = "-")]
        input: String,
        /// Print nothing on success.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Save images to a tar that is both a docker archive and an OCI layout.
    Save {
        /// Where to write (`-` or omitted: standard output).
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// `archive` (docker archive + OCI layout in one tar) or `oci-dir`
        /// (an OCI image layout directory; needs -o).
        #[arg(long, default_value = "archive", value_parser = ["archive", "oci-dir"])]
        format: String,
        #[arg(required = true, value_name = "IMAGE")]
        images: Vec<String>,
    },
    /// Make a one-layer image from a root filesystem tarball.
    Import {
        /// The tarball (`-` for standard input; gzip/zstd are detected).
        file: String,
        /// Name for the new image.
        name: String,
        /// A Dockerfile instruction to apply to the config (CMD, ENV, ...).
        #[arg(short, long, value_name = "INSTRUCTION")]
        change: Vec<String>,
        /// History comment for the layer.
        #[arg(short, long)]
        message: Option<String>,
        /// The image's platform [default: this machine's].
        #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
        platform: Option<String>,
    },
    /// List images (those of `REPOSITORY[:TAG]` only, when given).
    Images {
        #[arg(value_name = "REPOSITORY[:TAG]")]
        reference: Option<String>,
        /// `table`, `json` (one object per line), or a Go template
        /// (`{{.Repository}}:{{.Tag}}`, `table {{.ID}}\t{{.Size}}`).
        #[arg(long, default_value = "table")]
        format: String,
        /// Only image IDs.
        #[arg(short, long)]
        quiet: bool,
        /// Show each image's manifest digest.
        #[arg(long)]
        digests: bool,
        /// dangling=true|false, label=KEY[=VALUE], reference=PATTERN,
        /// before=IMAGE, since=IMAGE.
        #[arg(short, long, value_name = "KEY=VALUE")]
        filter: Vec<String>,
    },
    /// Show containers' or images' configuration as JSON (docker's shapes).
    Inspect {
        /// A Go template run over each object (`{{.Id}}`), or `json`.
        #[arg(short, long)]
        format: Option<String>,
        #[arg(required = true, value_name = "CONTAINER|IMAGE")]
        images: Vec<String>,
    },
    /// Show an image's layer history.
    History {
        image: String,
        /// Do not cut long commands short.
        #[arg(long)]
        no_trunc: bool,
        /// Only the IDs.
        #[arg(short, long)]
        quiet: bool,
        /// A Go template per layer (`{{.CreatedBy}}`), or `json`.
        #[arg(long)]
        format: Option<String>,
    },
    /// Give an image another name.
    Tag { source: String, target: String },
    /// Remove images (by name: the name; by ID: the image and its names).
    Rmi {
        #[arg(short, long)]
        force: bool,
        #[arg(required = true, value_name = "IMAGE")]
        images: Vec<String>,
    },
    /// Remove stopped containers, unnamed images (-a: all images not used
    /// by a container), the build cache and unused blobs and snapshots.
    /// Asks first unless -f.
    Prune {
        #[arg(short, long)]
        all: bool,
        /// Do not ask for confirmation.
        #[arg(short, long)]
        force: bool,
    },
    /// Store maintenance.
    #[command(subcommand)]
    System(System),
    /// Build cache maintenance.
    #[command(subcommand)]
    Builder(BuilderCommand),
    /// Tools for looking inside kiln.
    #[command(subcommand)]
    Debug(debug::Debug),
    /// A shell completion script (`source <(kiln completion bash)`).
    Completion {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Man pages: kiln(1) on stdout, or one page per command into DIR.
    Man {
        #[arg(value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Run a command in the user namespace a rootless kiln works in, where
    /// the store's files show their container owners (`kiln unshare rm -rf
    /// ~/.local/share/kiln`); as root, just runs it.
    Unshare {
        /// The command [default: $SHELL].
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
}

#[derive(Subcommand)]
enum BuilderCommand {
    /// Remove build cache: records of build steps and cache-mount
    /// contents, least recently used first, keeping what the limits
    /// allow (nothing without a limit). Asks first unless -f.
    Prune {
        /// Remove all of it (the default when no limit is given).
        #[arg(short, long)]
        all: bool,
        /// Do not ask for confirmation.
        #[arg(short, long)]
        force: bool,
        /// Keep the most recently used cache up to this size (`50MB`, `10GB`).
        #[arg(long, value_name = "SIZE")]
        keep_storage: Option<String>,
        /// Keep cache used within this long (`30m`, `24h`, `7d`).
        #[arg(long, value_name = "DURATION")]
        keep_duration: Option<String>,
        /// `type=regular` (step records) or `type=exec.cachemount`.
        #[arg(long, value_name = "type=TYPE")]
        filter: Vec<String>,
    },
}

#[derive(Subcommand)]
enum System {
    /// Disk usage: images, containers, build cache, cache mounts.
    Df {
        /// Also the store's internals (blobs, snapshots).
        #[arg(short, long)]
        verbose: bool,
    },
    /// Verify every blob's digest and every reference in the store.
    Check,
    /// Which platforms this machine can run build steps for (binfmt_misc
    /// emulators).
    Binfmt {
        /// Mount binfmt_misc and register the qemu handlers in
        /// /usr/lib/binfmt.d (needs root).
        #[arg(long)]
        install: bool,
    },
}

/// Why a command failed. Rendered once, by [`report`]: Dockerfile
/// positions shown at their line, untrusted text escaped.
#[derive(Debug)]
pub(crate) enum CliError {
    /// Already shown (a command that reports several failures itself).
    Reported,
    /// `error: <message>`.
    Message(String),
    /// A build that failed, shown at its Dockerfile line.
    Build {
        error: Box<kiln_builder::BuildError>,
        file: String,
        text: String,
    },
    /// A container that could not start (`kiln run`): exits 125, 126 or
    /// 127 as docker does.
    Exec(kiln_executor::ExecError),
    /// A Dockerfile that does not parse.
    Dockerfile {
        error: kiln_parser::ParseError,
        file: String,
        text: String,
    },
}

/// A failure with a message (errors carry the file, line or reference).
pub(crate) fn fail(msg: impl std::fmt::Display) -> CliError {
    CliError::Message(msg.to_string())
}

/// Prints one failure now, for a command that goes on (and then returns
/// [`CliError::Reported`]) or picks its own exit code.
pub(crate) fn print_error(msg: impl std::fmt::Display) {
    eprintln!("error: {}", kiln_parser::terminal_safe(&msg.to_string()));
}

/// What the store noticed along the way (see `kiln_store::take_warnings`).
pub(crate) fn print_store_warnings() {
    for w in kiln_store::take_warnings() {
        eprintln!("warning: {}", kiln_parser::terminal_safe(&w));
    }
}

/// Prints an error the way a user wants to read it. Messages carry
/// untrusted text (Dockerfile words, archive entry names, registry
/// answers), so control characters are escaped on the way out.
pub(crate) fn report(e: &CliError) {
    match e {
        CliError::Reported => {}
        CliError::Message(m) => print_error(m),
        CliError::Exec(e) => print_error(e),
        CliError::Dockerfile { error, file, text } => eprint!("{}", error.render(file, text)),
        CliError::Build { error, file, text } => report_build(error, file, text),
    }
}

/// Prints a failed build: a failed step's last output in a box, then the
/// message at the step's Dockerfile line.
fn report_build(error: &BuildError, file: &str, text: &str) {
    let at_lines = |span: kiln_parser::Span, message: &str| {
        let e = ParseError::new(span.start, message);
        eprint!("{}", e.render_lines(file, text, span.end.line));
    };
    match error {
        BuildError::Lower(e) => eprint!("{}", e.render(file, text)),
        BuildError::Step {
            step,
            source,
            output,
        } => {
            let ran = matches!(
                **source,
                Failure::Worker(kiln_builder::StepError::Failed { .. })
            );
            if ran || !output.is_empty() {
                let label = step.as_ref().map(|s| s.label.as_str()).unwrap_or_default();
                eprintln!("------");
                eprintln!(" > {}:", terminal_safe_line(label));
                for line in output {
                    eprintln!("   {}", terminal_safe_line(line));
                }
                eprintln!("------");
            }
            let message = match step {
                // A step that did not run: say which instruction it was.
                Some(s) if !ran => format!("{}: {source}", s.text.trim()),
                _ => source.to_string(),
            };
            match step.as_ref().and_then(|s| s.span) {
                Some(span) => at_lines(span, &message),
                None => eprintln!("error: {}", kiln_parser::terminal_safe(&message)),
            }
            if let (true, Some(hint)) = (ran, rootless::single_id_hint()) {
                eprintln!("{hint}");
            }
        }
        other => eprintln!("error: {}", kiln_parser::terminal_safe(&other.to_string())),
    }
}

/// Writes command output. A reader that went away (`kiln ... | head`) is
/// not an error worth a message, and never a panic.
pub(crate) fn emit(text: &str) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(fail(format!("cannot write output: {e}"))),
    }
}

fn run(cli: Cli, root: PathBuf) -> Result<i32, CliError> {
    let store = || images::open_store(&root);
    let client = || registry::client(&cli.insecure_registries).map(std::sync::Arc::new);
    match cli.command {
        Command::Build(options) => return build::build(store()?, client()?, options),
        Command::Run(options) => return run::run(&store()?, &*client()?, options),
        Command::Create(options) => return run::create(&store()?, &*client()?, options),
        Command::Start {
            attach,
            containers: names,
        } => return containers::start(&store()?, &names, attach),
        Command::Stop {
            time,
            containers: names,
        } => containers::stop(&store()?, &names, time)?,
        Command::Kill {
            signal,
            containers: names,
        } => containers::kill(&store()?, &names, &signal)?,
        Command::Restart {
            time,
            containers: names,
        } => containers::restart(&store()?, &names, time)?,
        Command::Rm {
            force,
            volumes,
            containers: names,
        } => containers::rm(&store()?, &names, force, volumes)?,
        Command::Wait { containers: names } => containers::wait(&store()?, &names)?,
        Command::Ps {
            all,
            quiet,
            no_trunc,
            filter,
            format,
        } => containers::ps(&store()?, all, quiet, no_trunc, &filter, format.as_deref())?,
        Command::Logs {
            follow,
            tail,
            timestamps,
            container,
        } => containers::logs(&store()?, &container, follow, tail, timestamps)?,
        Command::Exec(options) => return containers::exec(&store()?, options),
        Command::Rename {
            container,
            new_name,
        } => containers::rename(&store()?, &container, &new_name)?,
        Command::Commit {
            author,
            message,
            change,
            container,
            repository,
        } => containers::commit(
            &store()?,
            &container,
            repository.as_deref(),
            author.as_deref(),
            message.as_deref(),
            &change,
        )?,
        Command::Diff { container } => containers::diff(&store()?, &container)?,
        Command::Export { output, container } => {
            containers::export(&store()?, &container, output.as_deref())?
        }
        Command::Cp { src, dest } => containers::cp(&store()?, &src, &dest)?,
        Command::Volume(command) => containers::volume(&store()?, command)?,
        Command::Network(command) => network::network(&store()?, command)?,
        Command::Port { container, port } => network::port(&store()?, &container, port.as_deref())?,
        Command::ContainerMonitor { id } => containers::monitor(&store()?, &id)?,
        Command::Pull {
            image,
            platform,
            quiet,
        } => registry::pull(&store()?, &*client()?, &image, platform.as_deref(), quiet)?,
        Command::Push { image, dest, quiet } => {
            registry::push(&store()?, &*client()?, &image, dest.as_deref(), quiet)?
        }
        Command::Login {
            server,
            username,
            password_stdin,
        } => registry::login(&*client()?, &server, username, password_stdin)?,
        Command::Logout { server } => registry::logout(&server)?,
        Command::Load { input, quiet } => images::load(&store()?, &input, quiet)?,
        Command::Save {
            output,
            format,
            images: list,
        } => images::save(&store()?, output.as_deref(), &list, format == "oci-dir")?,
        Command::Import {
            file,
            name,
            change,
            message,
            platform,
        } => images::import(
            &store()?,
            &file,
            &name,
            &change,
            message.as_deref(),
            platform.as_deref(),
        )?,
        Command::Images {
            reference,
            format,
            quiet,
            digests,
            filter,
        } => images::images(
            &store()?,
            &images::ImagesOptions {
                reference,
                format,
                quiet,
                digests,
                filters: filter,
            },
        )?,
        Command::Inspect {
            format,
            images: list,
        } => containers::inspect(&store()?, &list, format.as_deref())?,
        Command::History {
            image,
            no_trunc,
            quiet,
            format,
        } => images::history(&store()?, &image, no_trunc, quiet, format.as_deref())?,
        Command::Tag { source, target } => images::tag(&store()?, &source, &target)?,
        Command::Rmi {
            force,
            images: list,
        } => images::rmi(&store()?, &list, force)?,
        Command::Prune { all, force } => images::prune(&store()?, all, force)?,
        Command::System(System::Df { verbose }) => images::df(&store()?, verbose)?,
        Command::System(System::Check) => images::check(&store()?)?,
        Command::System(System::Binfmt { install }) => platforms::binfmt(install)?,
        Command::Debug(command) => debug::run(command, store)?,
        Command::Builder(BuilderCommand::Prune {
            all,
            force,
            keep_storage,
            keep_duration,
            filter,
        }) => images::builder_prune(
            &store()?,
            &images::BuilderPrune {
                all,
                force,
                keep_storage,
                keep_duration,
                filters: filter,
            },
        )?,
        Command::Completion { shell } => manuals::completion(shell)?,
        Command::Man { dir } => manuals::man(dir.as_deref())?,
        Command::Unshare { command } => return rootless::unshare(&command),
    }
    Ok(0)
}

/// docker's convention: `docker run` exits 125 when docker itself fails
/// (a bad flag, an image it cannot find), 126/127 when the command cannot
/// be run, else the container's code; other commands exit 1 on failure.
fn exit_code(e: &CliError, runs_a_container: bool) -> u8 {
    match e {
        CliError::Exec(e) => e.exit_code().clamp(1, 255) as u8,
        _ if runs_a_container => 125,
        _ => 1,
    }
}

/// The subcommand on a command line clap refused: the first word that
/// is neither a flag nor a global flag's value.
fn subcommand_word() -> Option<String> {
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--root" | "--insecure-registry" => {
                args.next();
            }
            _ if a.starts_with('-') => {}
            _ => return Some(a),
        }
    }
    None
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let runs_a_container = matches!(subcommand_word().as_deref(), Some("run" | "create"));
            let _ = e.print();
            return match e.use_stderr() {
                true if runs_a_container => ExitCode::from(125),
                _ => ExitCode::from(e.exit_code().clamp(0, 255) as u8),
            };
        }
    };
    let runs_a_container = matches!(cli.command, Command::Run(_) | Command::Create(_));
    // Decided before the namespace, where kiln is root: the real caller's.
    let root = cli
        .root
        .clone()
        .unwrap_or_else(kiln_store::Store::default_root);
    let needs_ids = !matches!(
        cli.command,
        Command::Login { .. }
            | Command::Logout { .. }
            | Command::System(System::Binfmt { .. })
            | Command::Completion { .. }
            | Command::Man { .. }
    );
    if let Command::Exec(o) = &cli.command {
        if let Err(e) = rootless::join_container_if_unprivileged(&root, &o.container) {
            report(&e);
            return ExitCode::from(exit_code(&e, runs_a_container));
        }
    } else if needs_ids {
        let runs_steps = matches!(
            cli.command,
            Command::Build(_) | Command::Run(_) | Command::Create(_)
        );
        if let Err(e) = rootless::enter_if_unprivileged(runs_steps) {
            report(&e);
            return ExitCode::from(exit_code(&e, runs_a_container));
        }
    }
    let result = run(cli, root);
    print_store_warnings();
    match result {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(e) => {
            report(&e);
            ExitCode::from(exit_code(&e, runs_a_container))
        }
    }
}
