//! docker's `--format`: a Go template (gtmpl, the Go template language in
//! Rust) run over the object docker shows for each row, with docker's
//! template functions (`json`, `join`, `split`, `lower`, `upper`,
//! `title`, `truncate`, `pad`); `table TEMPLATE` adds a header row and
//! aligns the tab-separated columns as docker's tabwriter does; `json`
//! alone is one JSON object per line.

use crate::{fail, CliError};
use gtmpl::{Context, FuncError, Template, Value};
use std::collections::HashMap;

/// A parsed `--format` value.
pub enum Format {
    /// The command's own table (`table` alone, or no --format).
    Default,
    /// One JSON object per line.
    Json,
    /// A template per row; `table` ones with a header and aligned columns.
    Template { template: Template, table: bool },
}

impl Format {
    /// `flag` names the option in errors (`--format`, `-f`).
    pub fn parse(text: &str, flag: &str) -> Result<Format, CliError> {
        let trimmed = text.trim();
        if trimmed.is_empty() || trimmed == "table" {
            return Ok(Format::Default);
        }
        if trimmed == "json" {
            return Ok(Format::Json);
        }
        let (body, table) = match text.strip_prefix("table ") {
            Some(rest) => (rest, true),
            None => (text, false),
        };
        // docker's shorthand: `\t` and `\n` written literally mean tab and newline.
        let body = body.replace("\\t", "\t").replace("\\n", "\n");
        let mut template = Template::default();
        template.add_funcs(FUNCS);
        template
            .parse(body)
            .map_err(|e| fail(format!("{flag} {text:?}: template: {e}")))?;
        Ok(Format::Template { template, table })
    }

    /// Renders `rows` (docker's objects for them); `headers` gives a
    /// table's column title for each field name (docker's, e.g. `ID` →
    /// `IMAGE ID`). None for the default format: the caller prints its
    /// own table.
    pub fn render(
        &self,
        rows: &[serde_json::Value],
        headers: &dyn Fn(&str) -> String,
        flag: &str,
    ) -> Result<Option<String>, CliError> {
        let (template, table) = match self {
            Format::Default => return Ok(None),
            Format::Json => {
                let mut out = String::new();
                for row in rows {
                    out.push_str(&row.to_string());
                    out.push('\n');
                }
                return Ok(Some(out));
            }
            Format::Template { template, table } => (template, *table),
        };
        let run = |v: &serde_json::Value| {
            template
                .render(&Context::from(to_gtmpl(v)))
                .map_err(|e| fail(format!("{flag}: template: {e}")))
        };
        let mut lines = Vec::new();
        if table {
            // docker's header: the template run over the fields' titles.
            let names: serde_json::Map<String, serde_json::Value> = rows
                .first()
                .and_then(|r| r.as_object())
                .map(|o| o.keys().map(|k| (k.clone(), headers(k).into())).collect())
                .unwrap_or_default();
            lines.push(run(&serde_json::Value::Object(names))?);
        }
        for row in rows {
            lines.push(run(row)?);
        }
        if lines.is_empty() {
            return Ok(Some(String::new()));
        }
        let mut text = lines.join("\n");
        text.push('\n');
        Ok(Some(if table { align(&text) } else { text }))
    }
}

/// docker's tabwriter (minimum cell width 10, padding 3, spaces): every
/// tab-separated column as wide as its widest cell.
fn align(text: &str) -> String {
    let rows: Vec<Vec<&str>> = text.lines().map(|l| l.split('\t').collect()).collect();
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0usize; columns];
    for row in &rows {
        for (i, cell) in row.iter().enumerate().take(row.len().saturating_sub(1)) {
            widths[i] = widths[i].max((cell.chars().count() + 3).max(10));
        }
    }
    let mut out = String::new();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            out.push_str(cell);
            if i + 1 < row.len() {
                out.push_str(&" ".repeat(widths[i] - cell.chars().count()));
            }
        }
        out.push('\n');
    }
    out
}

/// docker's template functions beyond Go's builtins.
const FUNCS: &[(&str, gtmpl::Func)] = &[
    ("json", json),
    ("join", join),
    ("split", split),
    ("lower", lower),
    ("upper", upper),
    ("title", title),
    ("truncate", truncate),
    ("pad", pad),
];

fn arg_str(args: &[Value], i: usize, name: &str) -> Result<String, FuncError> {
    match args.get(i) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        Some(Value::Bool(b)) => Ok(b.to_string()),
        Some(Value::Nil) | Some(Value::NoValue) => Ok(String::new()),
        Some(_) => Err(FuncError::Generic(format!(
            "{name}: argument {} is not a string",
            i + 1
        ))),
        None => Err(FuncError::AtLeastXArgs(name.into(), i + 1)),
    }
}

fn arg_usize(args: &[Value], i: usize, name: &str) -> Result<usize, FuncError> {
    match args.get(i) {
        Some(Value::Number(n)) => n
            .as_u64()
            .map(|n| n as usize)
            .ok_or_else(|| FuncError::Generic(format!("{name}: want a count"))),
        _ => Err(FuncError::AtLeastXArgs(name.into(), i + 1)),
    }
}

fn json(args: &[Value]) -> Result<Value, FuncError> {
    let v = args
        .first()
        .ok_or(FuncError::ExactlyXArgs("json".into(), 1))?;
    Ok(Value::String(from_gtmpl(v).to_string()))
}

fn join(args: &[Value]) -> Result<Value, FuncError> {
    let sep = arg_str(args, 1, "join")?;
    let items: Vec<String> = match args.first() {
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| match v {
                Value::String(s) => s.clone(),
                other => from_gtmpl(other).to_string(),
            })
            .collect(),
        Some(Value::Nil) | Some(Value::NoValue) => Vec::new(),
        _ => {
            return Err(FuncError::Generic(
                "join: the first argument is not a list".into(),
            ))
        }
    };
    Ok(Value::String(items.join(&sep)))
}

fn split(args: &[Value]) -> Result<Value, FuncError> {
    let (s, sep) = (arg_str(args, 0, "split")?, arg_str(args, 1, "split")?);
    Ok(Value::Array(
        s.split(sep.as_str())
            .map(|p| Value::String(p.into()))
            .collect(),
    ))
}

fn lower(args: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::String(arg_str(args, 0, "lower")?.to_lowercase()))
}

fn upper(args: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::String(arg_str(args, 0, "upper")?.to_uppercase()))
}

fn title(args: &[Value]) -> Result<Value, FuncError> {
    let s = arg_str(args, 0, "title")?;
    let mut out = String::new();
    let mut start = true;
    for c in s.chars() {
        if start {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        start = c.is_whitespace();
    }
    Ok(Value::String(out))
}

fn truncate(args: &[Value]) -> Result<Value, FuncError> {
    let (s, n) = (
        arg_str(args, 0, "truncate")?,
        arg_usize(args, 1, "truncate")?,
    );
    Ok(Value::String(s.chars().take(n).collect()))
}

fn pad(args: &[Value]) -> Result<Value, FuncError> {
    let s = arg_str(args, 0, "pad")?;
    let (left, right) = (arg_usize(args, 1, "pad")?, arg_usize(args, 2, "pad")?);
    Ok(Value::String(format!(
        "{}{s}{}",
        " ".repeat(left),
        " ".repeat(right)
    )))
}

/// JSON as the template sees it.
pub fn to_gtmpl(v: &serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::Nil,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => Value::from(u),
            (_, Some(i), _) => Value::from(i),
            (_, _, Some(f)) => Value::from(f),
            _ => Value::Nil,
        },
        serde_json::Value::String(s) => Value::String(s.clone()),
        serde_json::Value::Array(a) => Value::Array(a.iter().map(to_gtmpl).collect()),
        serde_json::Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| (k.clone(), to_gtmpl(v)))
                .collect::<HashMap<_, _>>(),
        ),
    }
}

/// A template value back as JSON (`json`), keys sorted.
fn from_gtmpl(v: &Value) -> serde_json::Value {
    match v {
        Value::NoValue | Value::Nil | Value::Function(_) => serde_json::Value::Null,
        Value::Bool(b) => (*b).into(),
        Value::String(s) => s.clone().into(),
        Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => u.into(),
            (_, Some(i), _) => i.into(),
            (_, _, Some(f)) => f.into(),
            _ => serde_json::Value::Null,
        },
        Value::Array(a) => a.iter().map(from_gtmpl).collect(),
        Value::Object(o) | Value::Map(o) => {
            let sorted: std::collections::BTreeMap<_, _> =
                o.iter().map(|(k, v)| (k.clone(), from_gtmpl(v))).collect();
            serde_json::Value::Object(sorted.into_iter().collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(template: &str, v: serde_json::Value) -> String {
        Format::parse(template, "--format")
            .unwrap()
            .render(&[v], &|k| k.to_uppercase(), "--format")
            .unwrap()
            .unwrap()
    }

    #[test]
    fn docker_templates_render_as_docker_renders_them() {
        let v = serde_json::json!({
            "Id": "sha256:abc", "RepoTags": ["a:1", "a:latest"],
            "Config": {"Env": ["PATH=/bin", "A=1"], "Labels": {"b": "2", "a": "1"}, "Cmd": null},
            "Size": 1234
        });
        for (template, want) in [
            ("{{.Id}}", "sha256:abc\n"),
            ("{{join .RepoTags \", \"}}", "a:1, a:latest\n"),
            ("{{json .Config.Labels}}", "{\"a\":\"1\",\"b\":\"2\"}\n"),
            ("{{json .Config.Cmd}}", "null\n"),
            ("{{index .Config.Env 1}}", "A=1\n"),
            ("{{range .Config.Env}}{{.}};{{end}}", "PATH=/bin;A=1;\n"),
            ("{{upper (index (split .Id \":\") 0)}}", "SHA256\n"),
            ("{{.Size}}", "1234\n"),
            ("{{if .Config.Cmd}}cmd{{else}}none{{end}}", "none\n"),
            (
                "{{truncate .Id 6}}|{{pad \"x\" 1 2}}|{{title \"ab cd\"}}",
                "sha256| x  |Ab Cd\n",
            ),
        ] {
            assert_eq!(one(template, v.clone()), want, "{template}");
        }
    }

    #[test]
    fn table_templates_get_a_header_and_aligned_columns() {
        let rows = [
            serde_json::json!({"Repository": "busybox", "Tag": "latest"}),
            serde_json::json!({"Repository": "a-much-longer-name", "Tag": "1"}),
        ];
        let out = Format::parse("table {{.Repository}}\\t{{.Tag}}", "--format")
            .unwrap()
            .render(&rows, &|k| k.to_uppercase(), "--format")
            .unwrap()
            .unwrap();
        assert_eq!(
            out,
            "REPOSITORY           TAG\nbusybox              latest\na-much-longer-name   1\n"
        );
        assert!(matches!(
            Format::parse("table", "--format").unwrap(),
            Format::Default
        ));
        let err = match Format::parse("{{.Id", "-f") {
            Err(CliError::Message(m)) => m,
            _ => panic!("a bad template parsed"),
        };
        assert!(err.starts_with("-f \"{{.Id\": template:"), "{err}");
    }
}
