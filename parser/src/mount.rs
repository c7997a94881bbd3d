//! `RUN --mount=...`, parsed once into a typed [`RunMount`] with
//! BuildKit's rules (`commands_runmount.go`): the value is a CSV record
//! of `key=value` fields (keys case-insensitive; `ro`, `rw`, `readonly`,
//! `readwrite` and `required` may stand alone), each value expanded on
//! its own, the type lower-cased, `ro` by default for bind, secret and
//! ssh mounts and `rw` for cache and tmpfs.

use crate::suggest::closest;
use crate::units::ram_in_bytes;

/// The kinds of mount a RUN step can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountType {
    Bind,
    Cache,
    Tmpfs,
    Secret,
    Ssh,
}

impl MountType {
    pub fn as_str(self) -> &'static str {
        match self {
            MountType::Bind => "bind",
            MountType::Cache => "cache",
            MountType::Tmpfs => "tmpfs",
            MountType::Secret => "secret",
            MountType::Ssh => "ssh",
        }
    }

    fn parse(s: &str) -> Option<MountType> {
        Some(match s {
            "bind" => MountType::Bind,
            "cache" => MountType::Cache,
            "tmpfs" => MountType::Tmpfs,
            "secret" => MountType::Secret,
            "ssh" => MountType::Ssh,
            _ => return None,
        })
    }
}

/// One `--mount` as written (values expanded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunMount {
    pub kind: MountType,
    pub target: Option<String>,
    pub source: Option<String>,
    /// A stage or image the mount reads from.
    pub from: Option<String>,
    pub readonly: bool,
    /// Cache id, or secret id.
    pub id: Option<String>,
    /// `shared` (default), `private` or `locked` (cache mounts).
    pub sharing: Option<String>,
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// tmpfs size in bytes.
    pub size: Option<u64>,
    pub required: bool,
    /// A secret exposed as this environment variable.
    pub env: Option<String>,
}

const KEYS: [&str; 19] = [
    "type",
    "from",
    "source",
    "target",
    "readonly",
    "id",
    "sharing",
    "required",
    "size",
    "mode",
    "uid",
    "gid",
    "src",
    "dst",
    "destination",
    "ro",
    "rw",
    "readwrite",
    "env",
];

/// The fields of a CSV record (Go's encoding/csv: `"` quotes a field,
/// `""` inside quotes is a quote).
fn csv_fields(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut field = String::new();
    let mut chars = s.chars().peekable();
    let mut quoted = false;
    let mut at_start = true;
    while let Some(c) = chars.next() {
        match c {
            '"' if at_start && !quoted => {
                quoted = true;
                at_start = false;
            }
            '"' if quoted => {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    field.push('"');
                } else {
                    quoted = false;
                }
            }
            ',' if !quoted => {
                out.push(std::mem::take(&mut field));
                at_start = true;
            }
            c => {
                field.push(c);
                at_start = false;
            }
        }
    }
    if quoted {
        return Err("extraneous or missing \" in quoted-field".into());
    }
    out.push(field);
    Ok(out)
}

fn parse_bool(key: &str, v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "t" | "true" => Ok(true),
        "0" | "f" | "false" => Ok(false),
        _ => Err(format!("invalid value for {key}: {v}")),
    }
}

impl RunMount {
    /// Parses one `--mount` value; `expand` expands each value (the
    /// stage's `$VAR`s) before it is interpreted.
    pub fn parse(
        spec: &str,
        expand: &mut dyn FnMut(&str) -> Result<String, String>,
    ) -> Result<RunMount, String> {
        let mut m = RunMount {
            kind: MountType::Bind,
            target: None,
            source: None,
            from: None,
            readonly: true,
            id: None,
            sharing: None,
            mode: None,
            uid: None,
            gid: None,
            size: None,
            required: false,
            env: None,
        };
        let mut ro_given = false;
        for field in csv_fields(spec)? {
            let (key, value) = match field.split_once('=') {
                Some((k, v)) => (k.to_ascii_lowercase(), Some(v.to_string())),
                None => (field.to_ascii_lowercase(), None),
            };
            let Some(value) = value else {
                match key.as_str() {
                    "" => continue,
                    "readonly" | "ro" => {
                        m.readonly = true;
                        ro_given = true;
                    }
                    "readwrite" | "rw" => {
                        m.readonly = false;
                        ro_given = true;
                    }
                    "required" if matches!(m.kind, MountType::Secret | MountType::Ssh) => {
                        m.required = true;
                    }
                    "required" => {
                        return Err(format!(
                            "unexpected key '{key}' for mount type '{}'",
                            m.kind.as_str()
                        ))
                    }
                    _ => return Err(format!("invalid field '{field}' must be a key=value pair")),
                }
                continue;
            };
            let value = expand(&value)?;
            let number = |radix: u32| {
                u32::from_str_radix(&value, radix)
                    .map_err(|_| format!("invalid value for {key}: {value}"))
            };
            let only_for = |kinds: &[MountType]| {
                if kinds.contains(&m.kind) {
                    Ok(())
                } else {
                    Err(format!(
                        "unexpected key '{key}' for mount type '{}'",
                        m.kind.as_str()
                    ))
                }
            };
            match key.as_str() {
                "type" => {
                    let lower = value.to_ascii_lowercase();
                    m.kind = MountType::parse(&lower).ok_or_else(|| {
                        let kinds = ["bind", "cache", "tmpfs", "secret", "ssh"];
                        match closest(&lower, &kinds) {
                            Some(s) => {
                                format!("unsupported mount type {value:?} (did you mean {s}?)")
                            }
                            None => format!("unsupported mount type {value:?}"),
                        }
                    })?;
                }
                "from" => m.from = Some(value),
                "source" | "src" => m.source = Some(value),
                "target" | "dst" | "destination" => m.target = Some(value),
                "readonly" | "ro" => {
                    m.readonly = parse_bool(&key, &value)?;
                    ro_given = true;
                }
                "readwrite" | "rw" => {
                    m.readonly = !parse_bool(&key, &value)?;
                    ro_given = true;
                }
                "required" => {
                    only_for(&[MountType::Secret, MountType::Ssh])?;
                    m.required = parse_bool(&key, &value)?;
                }
                "size" => {
                    only_for(&[MountType::Tmpfs])?;
                    m.size = Some(
                        ram_in_bytes(&value)
                            .ok_or_else(|| format!("invalid value for size: {value}"))?,
                    );
                }
                "id" => m.id = Some(value),
                "sharing" => {
                    only_for(&[MountType::Cache])?;
                    let v = value.to_ascii_lowercase();
                    if !matches!(v.as_str(), "shared" | "private" | "locked") {
                        return Err(format!("unsupported sharing value {value:?}"));
                    }
                    m.sharing = Some(v);
                }
                "mode" => m.mode = Some(number(8)?),
                "uid" => m.uid = Some(number(10)?),
                "gid" => m.gid = Some(number(10)?),
                "env" => {
                    only_for(&[MountType::Secret])?;
                    m.env = Some(value);
                }
                _ => {
                    let hint = closest(&key, &KEYS)
                        .map(|s| format!(" (did you mean {s}?)"))
                        .unwrap_or_default();
                    return Err(format!("unexpected key '{key}' in '{field}'{hint}"));
                }
            }
        }
        if !ro_given {
            m.readonly = !matches!(m.kind, MountType::Cache | MountType::Tmpfs);
        }
        let owns_files = matches!(
            m.kind,
            MountType::Cache | MountType::Secret | MountType::Ssh
        );
        if !owns_files && (m.mode.is_some() || m.uid.is_some() || m.gid.is_some()) {
            return Err(format!(
                "mode, uid and gid are not allowed for mount type '{}'",
                m.kind.as_str()
            ));
        }
        if m.kind == MountType::Secret {
            if m.from.is_some() {
                return Err("secret mount should not have a from".into());
            }
            if m.source.is_some() && m.id.is_some() {
                return Err("both source and id can't be set".into());
            }
            if m.source.is_none() && m.target.is_none() && m.id.is_none() && m.env.is_none() {
                return Err("invalid secret mount. one of source, target required".into());
            }
        }
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<RunMount, String> {
        RunMount::parse(s, &mut |v| Ok(v.replace("$S", "build")))
    }

    #[test]
    fn keys_are_case_insensitive_and_values_expand() {
        let m = parse("type=bind,FROM=$S,Source=/out,target=/in").unwrap();
        assert_eq!(m.kind, MountType::Bind);
        assert_eq!(m.from.as_deref(), Some("build"));
        assert_eq!(m.source.as_deref(), Some("/out"));
        assert!(m.readonly, "binds are read-only by default");
        let m = parse("type=CACHE,target=/c,sharing=locked,id=apt,mode=0700,uid=42").unwrap();
        assert_eq!(m.kind, MountType::Cache);
        assert!(!m.readonly);
        assert_eq!((m.mode, m.uid), (Some(0o700), Some(42)));
        assert!(parse("type=bind,target=/x,rw").is_ok_and(|m| !m.readonly));
        assert!(parse("type=tmpfs,target=/t,size=1.5m").is_ok_and(|m| m.size == Some(1_572_864)));
        assert!(parse("type=secret,id=tok,required,env=TOKEN").is_ok_and(|m| m.required));
        assert_eq!(
            parse(r#""type=bind","target=/a,b""#)
                .unwrap()
                .target
                .as_deref(),
            Some("/a,b")
        );
    }

    #[test]
    fn buildkit_refusals() {
        let e = parse("typ=bind,target=/x").unwrap_err();
        assert!(e.starts_with("unexpected key 'typ' in 'typ=bind'"), "{e}");
        assert!(e.contains("did you mean type?"), "{e}");
        assert!(parse("type=nfs")
            .unwrap_err()
            .contains("unsupported mount type"));
        assert!(parse("type=bind,sharing=locked")
            .unwrap_err()
            .contains("unexpected key 'sharing'"));
        assert!(parse("type=cache,sharing=sometimes")
            .unwrap_err()
            .contains("unsupported sharing value"));
        assert!(parse("type=bind,required")
            .unwrap_err()
            .contains("unexpected key 'required'"));
        assert!(parse("type=secret")
            .unwrap_err()
            .contains("one of source, target required"));
        assert!(parse("type=bind,target")
            .unwrap_err()
            .contains("must be a key=value pair"));
        assert!(parse("type=tmpfs,target=/t,uid=1").is_err());
    }
}
