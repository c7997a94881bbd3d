//! The Dockerfile frontend: typed instructions (from `kiln-parser`) →
//! stages → ARG/ENV scoping → build graph (`kiln-solver`'s definition) plus
//! the image-config template.
//!
//! Must not depend on the executor, the store or the registry: it only
//! describes work; the solver decides what runs.
//!
//! Pipeline: [`split_stages`] → [`plan::plan`] (stages, bases, global
//! ARGs, the target) → [`lower::lower`] (graph + image config + history,
//! lowering the stages the target reads on demand). Errors are
//! [`LowerError`]s at a Dockerfile position. `.dockerignore` rules live in
//! [`dockerignore`]; lexical path cleaning, shared by both, in [`path`].

pub mod checks;
pub mod dockerignore;
mod epoch;
mod error;
pub mod lower;
pub mod path;
pub mod plan;

pub use error::{LowerError, LowerErrorKind};

use kiln_parser::instructions::{Instruction, Spanned};

/// One `FROM` and the instructions after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    pub from: Spanned<Instruction>,
    pub instructions: Vec<Spanned<Instruction>>,
}

/// Splits instructions into stages; instructions before the first FROM
/// (only ARG is allowed there) are returned separately as the global scope.
pub fn split_stages(
    instructions: Vec<Spanned<Instruction>>,
) -> (Vec<Spanned<Instruction>>, Vec<Stage>) {
    let mut globals = Vec::new();
    let mut stages: Vec<Stage> = Vec::new();
    for ins in instructions {
        match (&ins.inner, stages.last_mut()) {
            (Instruction::From(_), _) => stages.push(Stage {
                from: ins,
                instructions: Vec::new(),
            }),
            (_, Some(stage)) => stage.instructions.push(ins),
            (_, None) => globals.push(ins),
        }
    }
    (globals, stages)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_from() {
        let df = kiln_parser::parse("ARG V=1\nFROM a AS x\nRUN true\nFROM x\nCMD y\n").unwrap();
        let ins = kiln_parser::instructions::parse_instructions(&df).unwrap();
        let (globals, stages) = split_stages(ins);
        assert_eq!(globals.len(), 1);
        assert_eq!(stages.len(), 2);
        assert_eq!(stages[0].instructions.len(), 1);
        assert_eq!(stages[1].from.span.start.line, 4);
    }
}
