//! The syntax tree: what the Dockerfile says, before any validation or
//! variable expansion. Mirrors BuildKit's parser output node for node, and
//! adds positions and an explicit shape for each kind of argument list.

use crate::span::{LineMap, Pos, Span};

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    /// Parser directives from the leading comment block, in file order.
    pub directives: Vec<Directive>,
    /// The escape (and line-continuation) character: `\` or `` ` ``.
    pub escape: char,
    pub instructions: Vec<Node>,
    pub warnings: Vec<crate::Warning>,
}

impl Dockerfile {
    /// The value of a parser directive (`syntax`, `escape`, `check`), if set.
    pub fn directive(&self, name: &str) -> Option<&str> {
        self.directives
            .iter()
            .find(|d| d.name == name)
            .map(|d| d.value.as_str())
    }
}

/// `# name=value` in the leading comment block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    /// Lower-cased name.
    pub name: String,
    pub value: String,
    pub line: u32,
}

/// One instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The keyword as written (case preserved).
    pub keyword: String,
    /// `--flag[=value]` words, quotes removed and escapes resolved.
    pub flags: Vec<Flag>,
    pub args: Args,
    /// Heredoc bodies, in the order their `<<NAME` markers appear.
    pub heredocs: Vec<Heredoc>,
    /// The logical line: physical lines joined at continuations, comments
    /// inside the continuation dropped, escape characters at line ends removed.
    pub original: String,
    /// From the keyword to the last character consumed (heredoc terminators
    /// included).
    pub span: Span,
    /// Where the arguments start (after the keyword and flags).
    pub args_pos: Pos,
    /// Maps byte offsets in `original` back to file positions.
    pub line_map: LineMap,
    /// The comment lines since the previous instruction, `#` and
    /// surrounding blanks removed (BuildKit's `PrevComment`): an empty `#`
    /// line starts them afresh, blank lines do not, and the leading parser
    /// directives are not among them. Stage and ARG descriptions and
    /// per-instruction `# check=` come from here.
    pub comments: Vec<String>,
}

impl Node {
    /// The value of the first `# check=...` among the comments above the
    /// instruction (BuildKit's per-instruction check configuration).
    pub fn check_comment(&self) -> Option<String> {
        self.comments.iter().find_map(|c| {
            crate::directives::parse_line(&format!("#{c}"))
                .filter(|(name, _)| name == "check")
                .map(|(_, value)| value)
        })
    }

    /// The keyword in lower case, as instruction dispatch compares it.
    pub fn command(&self) -> String {
        self.keyword.to_ascii_lowercase()
    }

    /// The node with every position, the original text and the line map
    /// cleared: what remains is what the instruction says, for comparing
    /// trees that came from differently formatted text.
    pub fn without_positions(&self) -> Node {
        let args = match &self.args {
            Args::List(words) => Args::List(
                words
                    .iter()
                    .map(|w| Word {
                        text: w.text.clone(),
                        pos: Pos::default(),
                    })
                    .collect(),
            ),
            Args::Pairs(pairs) => Args::Pairs(
                pairs
                    .iter()
                    .map(|p| KeyValue {
                        pos: Pos::default(),
                        ..p.clone()
                    })
                    .collect(),
            ),
            Args::OnBuild(child) => Args::OnBuild(Box::new(child.without_positions())),
            other => other.clone(),
        };
        Node {
            keyword: self.keyword.clone(),
            flags: self
                .flags
                .iter()
                .map(|f| Flag {
                    text: f.text.clone(),
                    pos: Pos::default(),
                })
                .collect(),
            args,
            heredocs: self.heredocs.clone(),
            original: String::new(),
            span: Span::default(),
            args_pos: Pos::default(),
            comments: Vec::new(),
            line_map: LineMap::default(),
        }
    }

    /// Position of byte `offset` of `original`.
    pub fn pos_at(&self, offset: usize) -> Pos {
        self.line_map.pos_of(&self.original, offset)
    }
}

/// A `--name[=value]` word before the arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flag {
    /// The whole word, e.g. `--from=build`.
    pub text: String,
    pub pos: Pos,
}

/// A plain argument word with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    pub text: String,
    pub pos: Pos,
}

/// `key=value` (or legacy `key value`) in ENV and LABEL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    /// Raw value: quotes and escapes are still in it; the shell lexer
    /// interprets them later.
    pub value: String,
    /// `ENV key value` rather than `ENV key=value`.
    pub legacy: bool,
    pub pos: Pos,
}

/// The arguments of an instruction, shaped by its keyword.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Args {
    /// Nothing after the keyword (and flags).
    None,
    /// RUN/CMD/ENTRYPOINT/SHELL in shell form: the raw rest of the line.
    Shell(String),
    /// RUN/CMD/ENTRYPOINT/SHELL (and ADD/COPY/VOLUME) in JSON exec form.
    Exec(Vec<String>),
    /// MAINTAINER/USER/WORKDIR/STOPSIGNAL: the raw rest of the line.
    Text(String),
    /// FROM/EXPOSE/ARG, and ADD/COPY/VOLUME outside JSON form.
    List(Vec<Word>),
    /// ENV and LABEL.
    Pairs(Vec<KeyValue>),
    /// `HEALTHCHECK TYPE [command]`: `kind` is `CMD`, `NONE` or anything the
    /// user wrote; `cmd` is `None`, `Shell` or `Exec`.
    Healthcheck { kind: String, cmd: Box<Args> },
    /// ONBUILD's trigger instruction.
    OnBuild(Box<Node>),
    /// An instruction kiln does not know: the raw rest of the line, kept so
    /// the typed layer can report it.
    Unknown(String),
}

impl Args {
    /// Whether the arguments were written as a JSON array.
    pub fn is_exec(&self) -> bool {
        match self {
            Args::Exec(_) => true,
            Args::Healthcheck { cmd, .. } => cmd.is_exec(),
            _ => false,
        }
    }
}

/// A heredoc attached to RUN, COPY or ADD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The delimiter word, quotes removed.
    pub name: String,
    /// The file descriptor in `3<<EOF`; 0 when none was written.
    pub fd: u32,
    /// False when the delimiter was quoted: the body is taken literally.
    pub expand: bool,
    /// `<<-`: leading tabs are stripped from the body (see [`Heredoc::body`]).
    pub chomp: bool,
    /// The body exactly as written, line terminators included.
    pub content: String,
}

impl Heredoc {
    /// The body as the build sees it: with leading tabs removed from every
    /// line when the heredoc was written `<<-`.
    pub fn body(&self) -> String {
        if !self.chomp {
            return self.content.clone();
        }
        let mut out = String::with_capacity(self.content.len());
        for line in self.content.split_inclusive('\n') {
            out.push_str(line.trim_start_matches('\t'));
        }
        out
    }
}
