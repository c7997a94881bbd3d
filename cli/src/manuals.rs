//! What ships around the binary, generated from the clap definitions so
//! it never drifts from the flags: shell completions (clap_complete) and
//! man pages (clap_mangen).

use crate::{fail, Cli, CliError};
use clap::CommandFactory;
use std::path::Path;

/// `kiln completion SHELL`: the script on stdout.
pub fn completion(shell: clap_complete::Shell) -> Result<(), CliError> {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "kiln", &mut out);
    crate::emit(&String::from_utf8_lossy(&out))
}

/// `kiln man [DIR]`: kiln(1) on stdout, or kiln.1 and a `kiln-CMD.1`
/// per command (nested ones too: `kiln-system-df.1`) into DIR.
pub fn man(dir: Option<&Path>) -> Result<(), CliError> {
    let cmd = Cli::command();
    let Some(dir) = dir else {
        let mut out = Vec::new();
        clap_mangen::Man::new(cmd)
            .render(&mut out)
            .map_err(|e| fail(format!("man page: {e}")))?;
        return crate::emit(&String::from_utf8_lossy(&out));
    };
    std::fs::create_dir_all(dir).map_err(|e| fail(format!("{}: {e}", dir.display())))?;
    clap_mangen::generate_to(cmd, dir).map_err(|e| fail(format!("{}: {e}", dir.display())))
}
