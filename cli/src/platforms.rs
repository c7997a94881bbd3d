//! `kiln system binfmt`: which platforms this machine can run build steps
//! for, and registering Debian's qemu handlers where nothing else did.

use crate::{emit, fail, CliError};
use kiln_executor::binfmt;

/// The platforms kiln knows an emulator name for.
const PLATFORMS: &[(&str, &str)] = &[
    ("linux/amd64", "amd64"),
    ("linux/arm64", "arm64"),
    ("linux/arm/v7", "arm"),
    ("linux/386", "386"),
    ("linux/ppc64le", "ppc64le"),
    ("linux/s390x", "s390x"),
    ("linux/riscv64", "riscv64"),
    ("linux/mips64le", "mips64le"),
    ("linux/loong64", "loong64"),
];

pub fn binfmt(install: bool) -> Result<(), CliError> {
    if install {
        let registered = binfmt::install().map_err(fail)?;
        if !registered.is_empty() {
            eprintln!("registered: {}", registered.join(", "));
        }
    }
    let handlers = binfmt::handlers();
    let mut out = String::from("PLATFORM        STATE      HANDLER\n");
    for (platform, arch) in PLATFORMS {
        let (state, handler) = if *arch == binfmt::host_arch() {
            ("native", String::new())
        } else {
            let name = format!("qemu-{}", binfmt::machine(arch, "").unwrap_or(arch));
            match handlers.iter().find(|h| h.name == name) {
                Some(h) if h.works_in_containers() => {
                    ("emulated", format!("{name} ({})", h.interpreter))
                }
                Some(h) if !h.enabled => ("disabled", name),
                Some(_) => ("no F flag", name),
                None => ("missing", String::new()),
            }
        };
        out.push_str(format!("{platform:<15} {state:<10} {handler}").trim_end());
        out.push('\n');
    }
    if !binfmt::mounted() {
        out.push_str("binfmt_misc is not mounted: `kiln system binfmt --install` (as root)\n");
    }
    emit(&out)
}
