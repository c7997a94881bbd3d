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

/// A `$` that starts a reference (BuildKit's test: not the last character).
fn has_reference(v: &str) -> bool {
    v.find('$').is_some_and(|i| i + 1 < v.len())
}

fn parse_bool(key: &str, v: &str) -> Result<bool, MountError> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "t" | "true" => Ok(true),
        "0" | "f" | "false" => Ok(false),
        _ => Err(MountError(format!("invalid value for {key}: {v}"))),
    }
}

/// Why a `--mount` value is not one (BuildKit's wording).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct MountError(pub String);

impl From<String> for MountError {
    fn from(s: String) -> MountError {
        MountError(s)
    }
}

impl From<&str> for MountError {
    fn from(s: &str) -> MountError {
        MountError(s.to_string())
    }
}

impl RunMount {
    /// Parses one `--mount` value; `expand` expands each value (the
    /// stage's `$VAR`s) before it is interpreted.
    pub fn parse(
        spec: &str,
        expand: &mut dyn FnMut(&str) -> Result<String, MountError>,
    ) -> Result<RunMount, MountError> {
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
            let key_given_ro = match field.split_once('=') {
                Some((k, v)) if k.eq_ignore_ascii_case("from") && has_reference(v) => {
                    // BuildKit resolves stage references before any
                    // expansion, so it refuses them.
                    return Err(
                        "'from' doesn't support variable expansion, define alias stage instead"
                            .into(),
                    );
                }
                Some((k, v)) => m.set(&k.to_ascii_lowercase(), &expand(v)?, &field)?,
                None => m.flag(&field.to_ascii_lowercase(), &field)?,
            };
            ro_given |= key_given_ro;
        }
        if !ro_given {
            m.readonly = !matches!(m.kind, MountType::Cache | MountType::Tmpfs);
        }
        m.check()?;
        Ok(m)
    }

    /// A field without a value (`ro`, `required`); true when it sets
    /// read-only or read-write.
    fn flag(&mut self, key: &str, field: &str) -> Result<bool, MountError> {
        match key {
            "" => Ok(false),
            "readonly" | "ro" => {
                self.readonly = true;
                Ok(true)
            }
            "readwrite" | "rw" => {
                self.readonly = false;
                Ok(true)
            }
            "required" => {
                self.only_for(key, &[MountType::Secret, MountType::Ssh])?;
                self.required = true;
                Ok(false)
            }
            _ => Err(format!("invalid field '{field}' must be a key=value pair").into()),
        }
    }

    /// `key=value` (the value expanded); true when it sets read-only or
    /// read-write.
    fn set(&mut self, key: &str, value: &str, field: &str) -> Result<bool, MountError> {
        let number = |radix: u32| {
            u32::from_str_radix(value, radix)
                .map_err(|_| MountError(format!("invalid value for {key}: {value}")))
        };
        match key {
            "type" => self.kind = mount_type(value)?,
            "from" => self.from = Some(value.to_string()),
            "source" | "src" => self.source = Some(value.to_string()),
            "target" | "dst" | "destination" => self.target = Some(value.to_string()),
            "readonly" | "ro" => {
                self.readonly = parse_bool(key, value)?;
                return Ok(true);
            }
            "readwrite" | "rw" => {
                self.readonly = !parse_bool(key, value)?;
                return Ok(true);
            }
            "required" => {
                self.only_for(key, &[MountType::Secret, MountType::Ssh])?;
                self.required = parse_bool(key, value)?;
            }
            "size" => {
                self.only_for(key, &[MountType::Tmpfs])?;
                self.size = Some(
                    ram_in_bytes(value)
                        .ok_or_else(|| MountError(format!("invalid value for size: {value}")))?,
                );
            }
            "id" => self.id = Some(value.to_string()),
            "sharing" => {
                self.only_for(key, &[MountType::Cache])?;
                let v = value.to_ascii_lowercase();
                if !matches!(v.as_str(), "shared" | "private" | "locked") {
                    return Err(format!("unsupported sharing value {value:?}").into());
                }
                self.sharing = Some(v);
            }
            "mode" => self.mode = Some(number(8)?),
            "uid" => self.uid = Some(number(10)?),
            "gid" => self.gid = Some(number(10)?),
            "env" => {
                self.only_for(key, &[MountType::Secret])?;
                self.env = Some(value.to_string());
            }
            _ => {
                let hint = closest(key, &KEYS)
                    .map(|s| format!(" (did you mean {s}?)"))
                    .unwrap_or_default();
                return Err(format!("unexpected key '{key}' in '{field}'{hint}").into());
            }
        }
        Ok(false)
    }

    fn only_for(&self, key: &str, kinds: &[MountType]) -> Result<(), MountError> {
        if kinds.contains(&self.kind) {
            return Ok(());
        }
        Err(format!(
            "unexpected key '{key}' for mount type '{}'",
            self.kind.as_str()
        )
        .into())
    }

    /// The rules across fields.
    fn check(&self) -> Result<(), MountError> {
        let owns_files = matches!(
            self.kind,
            MountType::Cache | MountType::Secret | MountType::Ssh
        );
        if !owns_files && (self.mode.is_some() || self.uid.is_some() || self.gid.is_some()) {
            return Err(format!(
                "mode, uid and gid are not allowed for mount type '{}'",
                self.kind.as_str()
            )
            .into());
        }
        if self.kind == MountType::Secret {
            if self.from.is_some() {
                return Err("secret mount should not have a from".into());
            }
            if self.source.is_some() && self.id.is_some() {
                return Err("both source and id can't be set".into());
            }
            let names_it = self.source.is_some()
                || self.target.is_some()
                || self.id.is_some()
                || self.env.is_some();
            if !names_it {
                return Err("invalid secret mount. one of source, target required".into());
            }
        }
        Ok(())
    }
}

/// `type=`: lower-cased, with a suggestion for a near miss.
fn mount_type(value: &str) -> Result<MountType, MountError> {
    let lower = value.to_ascii_lowercase();
    MountType::parse(&lower).ok_or_else(|| {
        let kinds = ["bind", "cache", "tmpfs", "secret", "ssh"];
        MountError(match closest(&lower, &kinds) {
            Some(s) => format!("unsupported mount type {value:?} (did you mean {s}?)"),
            None => format!("unsupported mount type {value:?}"),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<RunMount, MountError> {
        RunMount::parse(s, &mut |v| Ok(v.replace("$S", "build")))
    }

    #[test]
    fn keys_are_case_insensitive_and_values_expand() {
        let m = parse("type=bind,FROM=build,Source=$S/out,target=/in").unwrap();
        assert_eq!(m.kind, MountType::Bind);
        assert_eq!(m.from.as_deref(), Some("build"));
        assert_eq!(m.source.as_deref(), Some("build/out"));
        let e = parse("type=bind,from=$S,target=/in").unwrap_err();
        assert_eq!(
            e.0,
            "'from' doesn't support variable expansion, define alias stage instead"
        );
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
        let e = parse("typ=bind,target=/x").unwrap_err().0;
        assert!(e.starts_with("unexpected key 'typ' in 'typ=bind'"), "{e}");
        assert!(e.contains("did you mean type?"), "{e}");
        assert!(parse("type=nfs")
            .unwrap_err()
            .0
            .contains("unsupported mount type"));
        assert!(parse("type=bind,sharing=locked")
            .unwrap_err()
            .0
            .contains("unexpected key 'sharing'"));
        assert!(parse("type=cache,sharing=sometimes")
            .unwrap_err()
            .0
            .contains("unsupported sharing value"));
        assert!(parse("type=bind,required")
            .unwrap_err()
            .0
            .contains("unexpected key 'required'"));
        assert!(parse("type=secret")
            .unwrap_err()
            .0
            .contains("one of source, target required"));
        assert!(parse("type=bind,target")
            .unwrap_err()
            .0
            .contains("must be a key=value pair"));
        assert!(parse("type=tmpfs,target=/t,uid=1").is_err());
    }
}
