//! Running other architectures' programs: the kernel's binfmt_misc hands
//! a foreign ELF to an emulator (Debian's `qemu-user-static` ships one
//! handler per architecture in `/usr/lib/binfmt.d/qemu-*.conf`). With the
//! `F` (fix binary) flag the kernel opens the emulator when the handler
//! is registered, so it works inside a container's root filesystem,
//! where no `/usr/libexec/qemu-binfmt` exists. kiln needs nothing else:
//! a RUN step's `execve` of an arm64 binary just works.

use std::fs;
use std::path::{Path, PathBuf};

/// Where the kernel shows and takes handlers.
pub const BINFMT_MISC: &str = "/proc/sys/fs/binfmt_misc";
/// Where Debian's packages (qemu-user-static) put their handler lines.
pub const BINFMT_D: &str = "/usr/lib/binfmt.d";

/// One registered handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handler {
    pub name: String,
    pub enabled: bool,
    pub interpreter: String,
    pub flags: String,
}

impl Handler {
    /// Usable from inside a container's root: enabled, with the `F` flag.
    pub fn works_in_containers(&self) -> bool {
        self.enabled && self.flags.contains('F')
    }
}

/// The machine name qemu's handlers use for an OCI architecture
/// (`arm64` → `aarch64`), and the one `uname -m` prints.
pub fn machine(arch: &str, variant: &str) -> Option<&'static str> {
    Some(match (arch, variant) {
        ("amd64", _) => "x86_64",
        ("arm64", _) => "aarch64",
        ("arm", _) => "arm",
        ("386", _) => "i386",
        ("ppc64le", _) => "ppc64le",
        ("s390x", _) => "s390x",
        ("riscv64", _) => "riscv64",
        ("mips64le", _) => "mips64el",
        ("loong64", _) => "loongarch64",
        _ => return None,
    })
}

/// The OCI architecture of this machine.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "arm" => "arm",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        other => other,
    }
}

/// Whether binfmt_misc is mounted.
pub fn mounted() -> bool {
    Path::new(BINFMT_MISC).join("register").exists()
}

/// The registered handlers (none when binfmt_misc is not mounted).
pub fn handlers() -> Vec<Handler> {
    let Ok(dir) = fs::read_dir(BINFMT_MISC) else {
        return Vec::new();
    };
    let mut out: Vec<Handler> = dir
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            if name == "register" || name == "status" {
                return None;
            }
            let text = fs::read_to_string(e.path()).ok()?;
            Some(parse_handler(&name, &text))
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

fn parse_handler(name: &str, text: &str) -> Handler {
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .map(|v| v.trim().to_string())
            .unwrap_or_default()
    };
    Handler {
        name: name.to_string(),
        enabled: text.lines().next().is_some_and(|l| l.trim() == "enabled"),
        interpreter: field("interpreter "),
        flags: field("flags: "),
    }
}

/// Why this machine cannot run `arch` programs in a container, if it
/// cannot: the message names the handler, the package and the command.
pub fn check(arch: &str, variant: &str) -> Result<(), String> {
    if arch == host_arch() {
        return Ok(());
    }
    let Some(m) = machine(arch, variant) else {
        return Err(format!("no emulator is known for architecture {arch:?}"));
    };
    let wanted = format!("qemu-{m}");
    let handlers = handlers();
    match handlers.iter().find(|h| h.name == wanted) {
        Some(h) if h.works_in_containers() => Ok(()),
        Some(h) if !h.enabled => Err(format!(
            "the binfmt_misc handler {wanted} for {arch} is disabled: enable it (`echo 1 > {BINFMT_MISC}/{wanted}`)"
        )),
        Some(_) => Err(format!(
            "the binfmt_misc handler {wanted} for {arch} lacks the F (fix binary) flag, so its \
             emulator cannot be found inside a container: re-register it from \
             {BINFMT_D}/{wanted}.conf (`kiln system binfmt --install`)"
        )),
        None if !mounted() => Err(format!(
            "running {arch} programs needs an emulator, and binfmt_misc is not mounted: install \
             Debian's qemu-user-static, then `kiln system binfmt --install` (as root) mounts it \
             and registers the handlers"
        )),
        None if conf_path(&wanted).is_file() => Err(format!(
            "running {arch} programs needs the binfmt_misc handler {wanted}, which is installed \
             but not registered: `kiln system binfmt --install` (as root)"
        )),
        None => Err(format!(
            "running {arch} programs needs an emulator: install Debian's qemu-user-static \
             (it ships {BINFMT_D}/{wanted}.conf), then `kiln system binfmt --install` (as root)"
        )),
    }
}

fn conf_path(name: &str) -> PathBuf {
    Path::new(BINFMT_D).join(format!("{name}.conf"))
}

/// Mounts binfmt_misc if needed and registers every `qemu-*` handler line
/// in `/usr/lib/binfmt.d` that is not registered yet. Returns the names
/// registered. (What systemd-binfmt does at boot, where it does not run.)
pub fn install() -> Result<Vec<String>, String> {
    if !mounted() {
        rustix::mount::mount(
            "binfmt_misc",
            BINFMT_MISC,
            "binfmt_misc",
            rustix::mount::MountFlags::NOSUID
                | rustix::mount::MountFlags::NODEV
                | rustix::mount::MountFlags::NOEXEC,
            None,
        )
        .map_err(|e| format!("mounting binfmt_misc at {BINFMT_MISC}: {e}"))?;
    }
    let known: Vec<String> = handlers().into_iter().map(|h| h.name).collect();
    let mut confs: Vec<PathBuf> = fs::read_dir(BINFMT_D)
        .map_err(|e| format!("{BINFMT_D}: {e} (install Debian's qemu-user-static)"))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("qemu-") && n.ends_with(".conf"))
        })
        .collect();
    confs.sort();
    let mut registered = Vec::new();
    for conf in confs {
        let text = fs::read_to_string(&conf).map_err(|e| format!("{}: {e}", conf.display()))?;
        for line in text.lines().filter(|l| l.starts_with(':')) {
            let name = line.split(':').nth(1).unwrap_or_default().to_string();
            if name.is_empty() || known.contains(&name) {
                continue;
            }
            fs::write(Path::new(BINFMT_MISC).join("register"), line)
                .map_err(|e| format!("registering {name} from {}: {e}", conf.display()))?;
            registered.push(name);
        }
    }
    Ok(registered)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handler_files_parse() {
        let text = "enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: POCF\noffset 0\nmagic 7f454c46\n";
        let h = parse_handler("qemu-aarch64", text);
        assert!(h.enabled);
        assert_eq!(h.flags, "POCF");
        assert!(h.works_in_containers());
        let off = parse_handler("qemu-arm", "disabled\ninterpreter /x\nflags: P\n");
        assert!(!off.works_in_containers());
    }

    #[test]
    fn the_host_needs_no_emulator() {
        assert_eq!(check(host_arch(), ""), Ok(()));
        assert_eq!(machine("arm64", ""), Some("aarch64"));
    }
}
