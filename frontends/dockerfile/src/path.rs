//! Lexical path cleaning (Go's `path.Clean`), for instruction paths and
//! `.dockerignore` patterns alike: `.` and empty parts dropped, `..`
//! resolved against what is before it (never above the root).

/// The cleaned components of a slash path.
pub fn components(p: &str) -> Vec<&str> {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    parts
}

/// `path.Join("/", p)`: an absolute, clean path.
pub fn clean_abs(p: &str) -> String {
    format!("/{}", components(p).join("/"))
}

/// A relative, clean path (`.dockerignore` patterns, context selections);
/// empty for the root.
pub fn clean_rel(p: &str) -> String {
    components(p).join("/")
}

/// A path in an instruction, against the stage's working directory.
pub fn join_workdir(workdir: &str, p: &str) -> String {
    if p.starts_with('/') {
        clean_abs(p)
    } else {
        clean_abs(&format!("{workdir}/{p}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleans_like_go() {
        assert_eq!(clean_abs("a/./b//../c/"), "/a/c");
        assert_eq!(clean_abs("../../x"), "/x");
        assert_eq!(clean_rel("./a/../b/"), "b");
        assert_eq!(clean_rel("."), "");
        assert_eq!(join_workdir("/app", "src"), "/app/src");
        assert_eq!(join_workdir("/app", "/etc/../opt"), "/opt");
    }
}
