//! `kiln`: the command line. Thin by design: clap structs → validated
//! options → library calls. Only this crate prints or picks exit codes.

use clap::{Parser, Subcommand};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "kiln",
    version,
    about = "Build and run OCI images from Dockerfiles"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Tools for looking inside kiln.
    #[command(subcommand)]
    Debug(Debug),
}

#[derive(Subcommand)]
enum Debug {
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
    /// Print the Dockerfile back in canonical form (one line per instruction).
    Print {
        /// The Dockerfile (`-` for standard input).
        file: PathBuf,
    },
}

/// A failure already reported to the user: just the exit code remains.
struct Reported;

fn read_source(file: &Path) -> anyhow::Result<(String, Vec<u8>)> {
    if file == Path::new("-") {
        let mut buf = Vec::new();
        std::io::stdin().read_to_end(&mut buf)?;
        return Ok(("<stdin>".into(), buf));
    }
    let bytes =
        std::fs::read(file).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
    Ok((file.display().to_string(), bytes))
}

/// Parses the file; on error prints `FILE:LINE:COL: message` and the line.
fn parse_file(file: &Path) -> Result<kiln_parser::Dockerfile, Reported> {
    let (name, bytes) = read_source(file).map_err(|e| {
        eprintln!("error: {e}");
        Reported
    })?;
    let text = String::from_utf8_lossy(&bytes);
    let df = kiln_parser::parse_bytes(&bytes).map_err(|e| {
        eprint!("{}", e.render(&name, &text));
        Reported
    })?;
    for w in &df.warnings {
        eprintln!(
            "{name}:{}:{}: warning: {}",
            w.pos.line, w.pos.col, w.message
        );
    }
    Ok(df)
}

/// Writes command output. A reader that went away (`kiln ... | head`) is
/// not an error worth a message, and never a panic.
fn emit(text: &str) -> Result<(), Reported> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => {
            eprintln!("error: cannot write output: {e}");
            Err(Reported)
        }
    }
}

fn run(cli: Cli) -> Result<(), Reported> {
    match cli.command {
        Command::Debug(Debug::DumpAst { file }) => {
            let df = parse_file(&file)?;
            emit(&kiln_parser::dump::dump(&df))?;
        }
        Command::Debug(Debug::DumpInstructions { file }) => {
            let df = parse_file(&file)?;
            let instructions = kiln_parser::instructions::parse_instructions(&df).map_err(|e| {
                let (name, bytes) = read_source(&file).unwrap_or_default();
                eprint!("{}", e.render(&name, &String::from_utf8_lossy(&bytes)));
                Reported
            })?;
            let text: String = instructions
                .iter()
                .map(|ins| format!("{}: {:#?}\n", ins.span.start.line, ins.inner))
                .collect();
            emit(&text)?;
        }
        Command::Debug(Debug::Print { file }) => {
            let df = parse_file(&file)?;
            emit(&kiln_parser::print::print(&df))?;
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Reported) => ExitCode::FAILURE,
    }
}
