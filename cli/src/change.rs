//! `kiln import --change 'CMD ...'`: Dockerfile instructions applied to an
//! image config, as `docker import --change` does.

use kiln_parser::instructions::{parse_instructions, Command, Instruction};
use kiln_parser::shell::Lexer;
use serde_json::{json, Map, Value};

/// Instructions `--change` accepts (docker's list).
const ALLOWED: &str =
    "CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR";

fn command(c: &Command) -> Value {
    match c {
        Command::Exec(v) => json!(v),
        Command::Shell(s) => json!(["/bin/sh", "-c", s]),
    }
}

fn env_pairs(config: &Map<String, Value>) -> Vec<(String, String)> {
    config
        .get("Env")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter_map(|e| {
            e.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect()
}

/// Applies one `--change` value to `config`.
pub fn apply(change: &str, config: &mut Map<String, Value>) -> Result<(), String> {
    let df =
        kiln_parser::parse(change).map_err(|e| format!("--change {change:?}: {}", e.message))?;
    let instructions =
        parse_instructions(&df).map_err(|e| format!("--change {change:?}: {}", e.message))?;
    let lexer = Lexer::new('\\');
    for ins in instructions {
        let env = env_pairs(config);
        let expand = |w: &str| {
            lexer
                .process_word(w, &env)
                .map_err(|e| format!("--change {change:?}: {e}"))
        };
        match &ins.inner {
            Instruction::Cmd(c) => {
                config.insert("Cmd".into(), command(c));
            }
            Instruction::Entrypoint(c) => {
                config.insert("Entrypoint".into(), command(c));
            }
            Instruction::Env(pairs) => {
                let mut env = env_pairs(config);
                for p in pairs {
                    let value = lexer
                        .process_word(&p.value, &env)
                        .map_err(|e| format!("--change {change:?}: {e}"))?;
                    env.retain(|(k, _)| *k != p.key);
                    env.push((p.key.clone(), value));
                }
                config.insert(
                    "Env".into(),
                    json!(env
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()),
                );
            }
            Instruction::Expose(ports) => {
                let map = config.entry("ExposedPorts").or_insert_with(|| json!({}));
                for p in ports {
                    let p = expand(p)?;
                    let p = if p.contains('/') {
                        p
                    } else {
                        format!("{p}/tcp")
                    };
                    map[p] = json!({});
                }
            }
            Instruction::Label(pairs) => {
                let mut labels = config.get("Labels").cloned().unwrap_or_else(|| json!({}));
                for p in pairs {
                    labels[expand(&p.key)?] = json!(expand(&p.value)?);
                }
                config.insert("Labels".into(), labels);
            }
            Instruction::Onbuild(o) => {
                let list = config.entry("OnBuild").or_insert_with(|| json!([]));
                if let Some(a) = list.as_array_mut() {
                    a.push(json!(o.expression));
                }
            }
            Instruction::StopSignal(s) => {
                config.insert("StopSignal".into(), json!(expand(s)?));
            }
            Instruction::User(u) => {
                config.insert("User".into(), json!(expand(u)?));
            }
            Instruction::Volume(vols) => {
                let map = config.entry("Volumes").or_insert_with(|| json!({}));
                for v in vols {
                    map[expand(v)?] = json!({});
                }
            }
            Instruction::Workdir(w) => {
                config.insert("WorkingDir".into(), json!(expand(w)?));
            }
            _ => {
                return Err(format!("--change {change:?}: only {ALLOWED} are allowed"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applies_changes() {
        let mut c = Map::new();
        for ch in [
            "ENV A=1 B=\"two words\"",
            "ENV C=$A-x",
            "CMD [\"/bin/sh\"]",
            "EXPOSE 80 53/udp",
            "WORKDIR /srv",
            "LABEL k=v",
        ] {
            apply(ch, &mut c).unwrap();
        }
        assert_eq!(c["Env"], json!(["A=1", "B=two words", "C=1-x"]));
        assert_eq!(c["Cmd"], json!(["/bin/sh"]));
        assert_eq!(c["ExposedPorts"], json!({"80/tcp": {}, "53/udp": {}}));
        assert_eq!(c["WorkingDir"], json!("/srv"));
        assert_eq!(c["Labels"], json!({"k": "v"}));
        assert!(apply("RUN true", &mut c).unwrap_err().contains("only CMD"));
    }
}
