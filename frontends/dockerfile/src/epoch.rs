//! `SOURCE_DATE_EPOCH` as a build arg (`--build-arg`, or the default of a
//! global `ARG`): the image's `created` and history times. BuildKit's
//! values: seconds since 1970; `context` (the main context's commit time,
//! which a local directory does not have: unset); or the name of a
//! source-only stage (`FROM scratch` and one remote `ADD`), whose
//! download's time kiln does not read yet.

use crate::Stage;
use kiln_parser::instructions::{Instruction, Source};

/// What the value resolves to: a time, or none.
pub fn resolve(value: &str, stages: &[Stage]) -> Result<Option<i64>, String> {
    let value = value.trim();
    if value.is_empty() || value == "context" {
        return Ok(None);
    }
    if let Ok(seconds) = value.parse::<i64>() {
        return Ok(Some(seconds));
    }
    let Some(stage) = stages.iter().find(|s| match &s.from.inner {
        Instruction::From(f) => f
            .stage_name
            .as_deref()
            .is_some_and(|n| n.eq_ignore_ascii_case(value)),
        _ => false,
    }) else {
        return Err(format!("invalid SOURCE_DATE_EPOCH: {value}"));
    };
    check_source_stage(stage)?;
    Err(format!(
        "SOURCE_DATE_EPOCH={value}: taking the time from a source stage's download is not supported by kiln yet; pass seconds since 1970"
    ))
}

/// BuildKit's shape for an epoch source stage, with its wording.
fn check_source_stage(stage: &Stage) -> Result<(), String> {
    let Instruction::From(from) = &stage.from.inner else {
        unreachable!("stages start with FROM")
    };
    if !from.image.eq_ignore_ascii_case("scratch") {
        return Err("SOURCE_DATE_EPOCH stage must use FROM scratch".into());
    }
    let mut adds = 0;
    for ins in &stage.instructions {
        match &ins.inner {
            Instruction::Arg(_) => {}
            Instruction::Add(add) => {
                adds += 1;
                let remote = match add.sources.as_slice() {
                    [Source::Path(p)] => p.contains("://"),
                    _ => false,
                };
                if adds > 1 {
                    return Err("SOURCE_DATE_EPOCH stage must contain exactly one remote ADD".into());
                }
                if !remote {
                    return Err(
                        "SOURCE_DATE_EPOCH stage must contain exactly one remote ADD source".into(),
                    );
                }
            }
            other => {
                return Err(format!(
                    "SOURCE_DATE_EPOCH stage does not meet source-only requirements: unsupported {} instruction",
                    other.keyword().to_ascii_lowercase()
                ))
            }
        }
    }
    if adds == 0 {
        return Err("SOURCE_DATE_EPOCH stage must contain exactly one remote ADD".into());
    }
    Ok(())
}
