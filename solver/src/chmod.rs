//! `--chmod=MODE`: octal, or chmod(1)'s symbolic clauses (`u+x`,
//! `go-w`, `a=rX,u+w`), applied to each copied file's own mode. The
//! symbolic form follows BSD `setmode` with a zero umask, as BuildKit's
//! does: no `who` means everyone; `X` is execute for directories and for
//! files someone can already execute.

use crate::graph::Chmod;

const SUID: u32 = 0o4000;
const SGID: u32 = 0o2000;
const STICKY: u32 = 0o1000;

/// One `who op perms` clause's action.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Action {
    op: u8,
    /// r/w/x/s/t bits, spread over every class (`who` narrows them).
    bits: u32,
    /// `X`: execute if a directory or already executable by someone.
    cond_x: bool,
    /// `u`, `g` or `o`: copy that class's current bits.
    copy: Option<u8>,
}

/// A parsed symbolic mode, with the text it was parsed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SymbolicMode {
    text: String,
    clauses: Vec<(u32, Vec<Action>)>,
}

/// The error BuildKit gives, word for word, so a search finds it.
fn invalid(m: &str) -> String {
    format!("invalid chmod parameter: '{m}'. it should be octal string and between 0 and 07777")
}

impl Chmod {
    /// Parses `--chmod`'s value: octal up to 07777, else symbolic.
    pub fn parse(m: &str) -> Result<Chmod, String> {
        if m.starts_with(|c: char| c.is_ascii_digit()) {
            return match u32::from_str_radix(m, 8) {
                Ok(v) if v <= 0o7777 => Ok(Chmod::Octal(v)),
                _ => Err(invalid(m)),
            };
        }
        SymbolicMode::parse(m)
            .map(Chmod::Symbolic)
            .ok_or_else(|| format!("{}: invalid syntax", invalid(m)))
    }

    /// The mode a file of mode `mode` (permission bits) gets.
    pub fn apply(&self, mode: u32, is_dir: bool) -> u32 {
        match self {
            Chmod::Octal(bits) => *bits,
            Chmod::Symbolic(sym) => sym.apply(mode, is_dir),
        }
    }

    /// The mode of a parent directory the copy creates: BuildKit gives
    /// it an octal `--chmod` itself and 0755 otherwise.
    pub fn new_dir_mode(chmod: Option<&Chmod>) -> u32 {
        match chmod {
            Some(Chmod::Octal(bits)) => *bits,
            _ => 0o755,
        }
    }
}

impl SymbolicMode {
    /// `None` when `s` is not a symbolic mode.
    pub fn parse(s: &str) -> Option<SymbolicMode> {
        let mut clauses = Vec::new();
        for clause in s.split(',') {
            let bytes = clause.as_bytes();
            let mut i = 0;
            let mut who = 0u32;
            while let Some(&c) = bytes.get(i) {
                who |= match c {
                    b'u' => SUID | 0o700,
                    b'g' => SGID | 0o070,
                    b'o' => 0o007,
                    b'a' => SUID | SGID | 0o777,
                    _ => break,
                };
                i += 1;
            }
            let mut actions = Vec::new();
            while let Some(&op) = bytes.get(i) {
                if !matches!(op, b'+' | b'-' | b'=') {
                    return None;
                }
                i += 1;
                let mut action = Action {
                    op,
                    bits: 0,
                    cond_x: false,
                    copy: None,
                };
                while let Some(&p) = bytes.get(i) {
                    match p {
                        b'r' => action.bits |= 0o444,
                        b'w' => action.bits |= 0o222,
                        b'x' => action.bits |= 0o111,
                        b'X' => action.cond_x = true,
                        b's' => action.bits |= SUID | SGID,
                        b't' => action.bits |= STICKY,
                        b'u' | b'g' | b'o' if action.copy.is_none() && action.bits == 0 => {
                            action.copy = Some(p)
                        }
                        b'+' | b'-' | b'=' => break,
                        _ => return None,
                    }
                    i += 1;
                }
                actions.push(action);
            }
            if actions.is_empty() {
                return None;
            }
            clauses.push((who, actions));
        }
        Some(SymbolicMode {
            text: s.to_string(),
            clauses,
        })
    }

    /// The mode as written (`u+x,go-w`).
    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn apply(&self, mode: u32, is_dir: bool) -> u32 {
        let original = mode;
        let mut m = mode & 0o7777;
        for (who, actions) in &self.clauses {
            // No `who`: everyone, and `t` applies (as for u and g).
            let mask = if *who == 0 { SUID | SGID | 0o777 } else { *who };
            let sticky = if *who == 0 || who & !0o007 != 0 {
                STICKY
            } else {
                0
            };
            for a in actions {
                let mut bits = match a.copy {
                    Some(class) => {
                        let shift = match class {
                            b'u' => 6,
                            b'g' => 3,
                            _ => 0,
                        };
                        ((m >> shift) & 0o7) * 0o111
                    }
                    None => a.bits,
                };
                if a.cond_x && (is_dir || original & 0o111 != 0) {
                    bits |= 0o111;
                }
                let bits = bits & (mask | sticky);
                match a.op {
                    b'+' => m |= bits,
                    b'-' => m &= !bits,
                    _ => m = (m & !mask) | bits,
                }
            }
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sym(s: &str, mode: u32, is_dir: bool) -> u32 {
        Chmod::parse(s).unwrap().apply(mode, is_dir)
    }

    /// What chmod(1) gives for the same modes (checked against GNU
    /// coreutils with umask 0).
    #[test]
    fn symbolic_modes_as_chmod_applies_them() {
        assert_eq!(sym("u+x", 0o644, false), 0o744);
        assert_eq!(sym("go-w", 0o666, false), 0o644);
        assert_eq!(sym("a+X", 0o644, false), 0o644);
        assert_eq!(sym("a+X", 0o744, false), 0o755);
        assert_eq!(sym("a+X", 0o124, true), 0o135);
        assert_eq!(sym("u+rw,g+r,o-x,o+w", 0o124, true), 0o766);
        assert_eq!(sym("=r", 0o777, false), 0o444);
        assert_eq!(sym("u=rwx,g=rx,o=", 0o000, false), 0o750);
        assert_eq!(sym("g=u", 0o640, false), 0o660);
        assert_eq!(sym("+t", 0o755, true), 0o1755);
        assert_eq!(sym("u+s", 0o755, false), 0o4755);
        assert_eq!(sym("o+s", 0o755, false), 0o755);
        assert_eq!(sym("0644", 0o777, false), 0o644);
    }

    #[test]
    fn invalid_modes_say_so_as_buildkit_does() {
        for m in ["64a", "10000", "u+q", "u", "x+", ""] {
            let e = Chmod::parse(m).unwrap_err();
            assert!(e.starts_with("invalid chmod parameter: '"), "{m}: {e}");
        }
        assert_eq!(
            Chmod::parse("64a").unwrap_err(),
            "invalid chmod parameter: '64a'. it should be octal string and between 0 and 07777"
        );
    }
}
