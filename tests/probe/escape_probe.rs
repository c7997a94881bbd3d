//! The escape probe: an attacker's program, run inside kiln containers by
//! the escape tests (`executor/tests/escape.rs`, `cli/tests/escape.rs`).
//! It tries each known way out of a container and prints one line per
//! attempt:
//!
//! ```text
//! ok <check>              the attempt was refused
//! skip <check>: <why>     the attempt makes no sense in this setup
//! ESCAPE <check>: <what>  the attempt worked: the test fails
//! ```
//!
//! Not part of kiln: `kiln_tests::escape_probe()` compiles it on its own
//! with rustc, statically linked, so it runs in a busybox rootfs. It uses
//! raw syscalls (through static glibc) because the point is to make them.
//!
//! Arguments: `--host-port N` (a TCP port listening on the host's
//! loopback: reaching it means the container shares the host's network),
//! `--devices FILE` (lines `c|b MAJOR MINOR NAME`: the host's device
//! nodes, each tried with mknod + open), `--host-ns NAME=INODE,...` (the
//! host's namespaces, which the container's must differ from),
//! `--expect-init` (PID 1 is kiln's init, not this probe), `--writable
//! DIR,...` (directories to mknod in, e.g. bind and cache mounts; default
//! /tmp), `--host-net` (the host network
//! was allowed: skip the network checks).

use std::ffi::CString;
use std::fs;
use std::io::{Read, Write};
use std::os::raw::{c_char, c_int, c_long, c_uint, c_ulong, c_void};
use std::os::unix::fs::FileTypeExt;

extern "C" {
    fn syscall(number: c_long, ...) -> c_long;
    fn mknod(path: *const c_char, mode: c_uint, dev: c_ulong) -> c_int;
}

// x86_64 syscall numbers.
const SYS_PTRACE: c_long = 101;
const SYS_MOUNT: c_long = 165;
const SYS_UMOUNT2: c_long = 166;
const SYS_SWAPON: c_long = 167;
const SYS_REBOOT: c_long = 169;
const SYS_IOPL: c_long = 172;
const SYS_INIT_MODULE: c_long = 175;
const SYS_DELETE_MODULE: c_long = 176;
const SYS_PIVOT_ROOT: c_long = 155;
const SYS_ADD_KEY: c_long = 248;
const SYS_KEYCTL: c_long = 250;
const SYS_UNSHARE: c_long = 272;
const SYS_PERF_EVENT_OPEN: c_long = 298;
const SYS_OPEN_BY_HANDLE_AT: c_long = 304;
const SYS_SETNS: c_long = 308;
const SYS_PROCESS_VM_READV: c_long = 310;
const SYS_FINIT_MODULE: c_long = 313;
const SYS_BPF: c_long = 321;
const SYS_USERFAULTFD: c_long = 323;
const SYS_KEXEC_LOAD: c_long = 246;
const SYS_OPEN_TREE: c_long = 428;
const SYS_FSOPEN: c_long = 430;
const SYS_CLONE: c_long = 56;
const SYS_SOCKET: c_long = 41;
const SYS_SETHOSTNAME: c_long = 170;

const CLONE_NEWNS: c_long = 0x00020000;
const CLONE_NEWUSER: c_long = 0x10000000;
const CLONE_NEWNET: c_long = 0x40000000;
const SIGCHLD: c_long = 17;


struct Report {
    escapes: usize,
}

impl Report {
    fn ok(&mut self, check: &str) {
        println!("ok {check}");
    }
    fn skip(&mut self, check: &str, why: &str) {
        println!("skip {check}: {why}");
    }
    fn escape(&mut self, check: &str, what: &str) {
        self.escapes += 1;
        println!("ESCAPE {check}: {what}");
    }
    /// `ok` when the syscall failed, ESCAPE (with its result) when it worked.
    fn refused(&mut self, check: &str, rc: c_long) {
        if rc < 0 {
            self.ok(check);
        } else {
            self.escape(check, &format!("returned {rc}"));
        }
    }
}

struct Args {
    host_port: Option<u16>,
    devices: Option<String>,
    host_ns: Vec<(String, u64)>,
    expect_init: bool,
    writable: String,
    host_net: bool,
}

fn args() -> Args {
    let mut a = Args {
        host_port: None,
        devices: None,
        host_ns: Vec::new(),
        expect_init: false,
        writable: "/tmp".into(),
        host_net: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--host-port" => a.host_port = it.next().and_then(|p| p.parse().ok()),
            "--devices" => a.devices = it.next(),
            "--host-ns" => {
                for pair in it.next().unwrap_or_default().split(',') {
                    if let Some((k, v)) = pair.split_once('=') {
                        if let Ok(n) = v.parse() {
                            a.host_ns.push((k.to_string(), n));
                        }
                    }
                }
            }
            "--expect-init" => a.expect_init = true,
            "--writable" => a.writable = it.next().unwrap_or_default(),
            "--host-net" => a.host_net = true,
            other => {
                eprintln!("escape-probe: unknown argument {other}");
                std::process::exit(2);
            }
        }
    }
    a
}

fn c(s: &str) -> CString {
    CString::new(s).expect("no NUL")
}

/// Descriptors above 2 this process did not open.
fn leaked_fds(r: &mut Report) {
    let Ok(dir) = fs::read_dir("/proc/self/fd") else {
        return r.escape("fd-leak", "cannot list /proc/self/fd");
    };
    let mut leaked = Vec::new();
    for e in dir.flatten() {
        let n: i32 = e.file_name().to_string_lossy().parse().unwrap_or(-1);
        if n <= 2 {
            continue;
        }
        // The directory handle read_dir holds shows as a dangling link.
        match fs::read_link(e.path()) {
            Ok(target) if !target.to_string_lossy().starts_with("/proc/") => {
                leaked.push(format!("{n} -> {}", target.display()))
            }
            _ => {}
        }
    }
    if leaked.is_empty() {
        r.ok("fd-leak");
    } else {
        r.escape("fd-leak", &leaked.join(", "));
    }
    // The runc CVE-2024-21626 shape: a leaked directory fd used as a way
    // to the host's root.
    for n in 3..64 {
        let p = format!("/proc/self/fd/{n}/etc/shadow");
        if fs::metadata(&p).is_ok() && fs::read_link(format!("/proc/self/fd/{n}")).is_ok() {
            r.escape("fd-host-root", &p);
            return;
        }
    }
    r.ok("fd-host-root");
}

/// PID 1's /proc entries: with kiln's init they must all refuse us.
fn proc_one(r: &mut Report, a: &Args) {
    if std::process::id() == 1 {
        return r.skip("proc1", "the probe is PID 1 itself");
    }
    if !a.expect_init {
        return r.skip("proc1", "PID 1 is the container's own command");
    }
    let comm = fs::read_to_string("/proc/1/comm").unwrap_or_default();
    if comm.trim() != "kiln-init" {
        r.escape("proc1-comm", &format!("PID 1 is {comm:?}, not kiln-init"));
    } else {
        r.ok("proc1-comm");
    }
    match fs::read_dir("/proc/1/fd") {
        Ok(d) => {
            let fds: Vec<String> = d
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            // An init that holds nothing has nothing to list.
            if fds.is_empty() {
                r.ok("proc1-fd");
            } else {
                r.escape("proc1-fd", &format!("PID 1 holds descriptors {fds:?}"))
            }
        }
        Err(_) => r.ok("proc1-fd"),
    }
    let opened = (0..16).find(|n| {
        fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(format!("/proc/1/fd/{n}"))
            .is_ok()
    });
    match opened {
        Some(n) => r.escape("proc1-fd-open", &format!("opened /proc/1/fd/{n} read-write")),
        None => r.ok("proc1-fd-open"),
    }
    match fs::OpenOptions::new().read(true).write(true).open("/proc/1/mem") {
        Ok(_) => r.escape("proc1-mem", "opened /proc/1/mem read-write"),
        Err(_) => r.ok("proc1-mem"),
    }
    match fs::read_link("/proc/1/exe") {
        Ok(t) => r.escape("proc1-exe", &format!("/proc/1/exe -> {}", t.display())),
        Err(_) => r.ok("proc1-exe"),
    }
    match fs::OpenOptions::new().write(true).open("/proc/1/exe") {
        Ok(_) => r.escape("proc1-exe-write", "opened kiln's binary for writing"),
        Err(_) => r.ok("proc1-exe-write"),
    }
    match fs::read_dir("/proc/1/root/") {
        Ok(_) => r.escape("proc1-root", "listed /proc/1/root"),
        Err(_) => r.ok("proc1-root"),
    }
    match fs::read("/proc/1/environ") {
        Ok(e) if !e.is_empty() => r.escape("proc1-environ", "read /proc/1/environ"),
        _ => r.ok("proc1-environ"),
    }
}

/// Only container processes are visible, and our parent is outside.
fn pid_namespace(r: &mut Report) {
    let pids = fs::read_dir("/proc")
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
                .count()
        })
        .unwrap_or(0);
    if pids > 8 {
        r.escape("pid-namespace", &format!("{pids} processes visible"));
    } else {
        r.ok("pid-namespace");
    }
}

/// Every device node of the host, made here with mknod, must not open;
/// the ones /dev has must be on docker's list.
fn devices(r: &mut Report, a: &Args) {
    let allowed = |kind: char, major: u64, minor: u64| {
        kind == 'c'
            && matches!(
                (major, minor),
                (1, 3) | (1, 5) | (1, 7) | (1, 8) | (1, 9) | (5, 0) | (5, 2)
            )
            || kind == 'c' && major == 136
    };
    let mut list: Vec<(char, u64, u64, String)> = vec![
        ('b', 7, 0, "loop0".into()),
        ('c', 10, 237, "loop-control".into()),
        ('c', 10, 232, "kvm".into()),
        ('c', 10, 229, "fuse".into()),
        ('c', 10, 200, "net/tun".into()),
        ('c', 4, 64, "ttyS0".into()),
        ('c', 4, 0, "tty0".into()),
        ('c', 1, 1, "mem".into()),
        ('c', 1, 2, "kmem".into()),
        ('c', 1, 4, "port".into()),
        ('c', 1, 11, "kmsg".into()),
        ('b', 8, 0, "sda".into()),
        ('b', 253, 0, "vda".into()),
        ('b', 254, 0, "vda-alt".into()),
    ];
    if let Some(file) = &a.devices {
        let text = fs::read_to_string(file).unwrap_or_default();
        for line in text.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            if let [k, ma, mi, name] = f.as_slice() {
                if let (Some(kind), Ok(ma), Ok(mi)) = (k.chars().next(), ma.parse(), mi.parse()) {
                    list.push((kind, ma, mi, name.to_string()));
                }
            }
        }
    }
    let mut opened = Vec::new();
    let mut made = 0;
    for (i, (kind, major, minor, name)) in list.iter().enumerate() {
        if allowed(*kind, *major, *minor) {
            continue;
        }
        for dir in a.writable.split(',').chain(["/dev"]) {
            let path = format!("{dir}/probe-dev-{i}");
            let mode = if *kind == 'b' { 0o060000 } else { 0o020000 } | 0o666;
            let dev = ((major & 0xfff) << 8) | (minor & 0xff) | ((minor & !0xff) << 12);
            let p = c(&path);
            // SAFETY: a valid C path; mknod reads only its arguments.
            if unsafe { mknod(p.as_ptr(), mode, dev as c_ulong) } != 0 {
                continue; // not even made: refused
            }
            made += 1;
            let open = fs::OpenOptions::new().read(true).write(true).open(&path);
            let open = open.or_else(|_| fs::OpenOptions::new().read(true).open(&path));
            if open.is_ok() {
                opened.push(format!("{name} ({kind} {major}:{minor}) in {dir}"));
            }
            let _ = fs::remove_file(&path);
        }
    }
    if opened.is_empty() {
        r.ok("device-mknod-open");
    } else {
        r.escape("device-mknod-open", &opened.join(", "));
    }
    let _ = made;
    // What /dev holds.
    let mut extra = Vec::new();
    let mut stack = vec![std::path::PathBuf::from("/dev")];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).into_iter().flatten().flatten() {
            let Ok(m) = fs::symlink_metadata(e.path()) else { continue };
            let ft = m.file_type();
            if ft.is_dir() {
                stack.push(e.path());
            } else if ft.is_char_device() || ft.is_block_device() {
                use std::os::unix::fs::MetadataExt;
                let rdev = m.rdev();
                let (major, minor) = ((rdev >> 8) & 0xfff, (rdev & 0xff) | ((rdev >> 12) & !0xff));
                let kind = if ft.is_block_device() { 'b' } else { 'c' };
                if !allowed(kind, major, minor) {
                    extra.push(format!("{} ({kind} {major}:{minor})", e.path().display()));
                }
            }
        }
    }
    if extra.is_empty() {
        r.ok("device-list");
    } else {
        r.escape("device-list", &extra.join(", "));
    }
    // The allowed ones work.
    let mut null = fs::OpenOptions::new().write(true).open("/dev/null");
    if !null.as_mut().map(|f| f.write_all(b"x").is_ok()).unwrap_or(false) {
        r.escape("device-null", "/dev/null does not work (the test is broken)");
    } else {
        r.ok("device-null");
    }
}

fn syscalls(r: &mut Report) {
    let tmpfs = c("tmpfs");
    let mnt = c("/tmp");
    // SAFETY: valid C strings; the kernel reads them.
    r.refused("mount", unsafe {
        syscall(SYS_MOUNT, tmpfs.as_ptr(), mnt.as_ptr(), tmpfs.as_ptr(), 0 as c_ulong, std::ptr::null::<c_void>())
    });
    let proc_ = c("/proc");
    // SAFETY: as above.
    r.refused("umount", unsafe { syscall(SYS_UMOUNT2, proc_.as_ptr(), 2 as c_int) });
    let cg = c("cgroup");
    let cgopt = c("memory");
    // SAFETY: as above (the cgroup v1 release_agent escape starts here).
    r.refused("mount-cgroup", unsafe {
        syscall(SYS_MOUNT, cg.as_ptr(), mnt.as_ptr(), cg.as_ptr(), 0 as c_ulong, cgopt.as_ptr())
    });
    // SAFETY: fsopen/open_tree take a C string and flags.
    r.refused("fsopen", unsafe { syscall(SYS_FSOPEN, tmpfs.as_ptr(), 0 as c_uint) });
    let root = c("/");
    // SAFETY: as above; OPEN_TREE_CLONE.
    r.refused("open_tree", unsafe { syscall(SYS_OPEN_TREE, -100 as c_int, root.as_ptr(), 1 as c_uint) });
    // SAFETY: as above.
    r.refused("pivot_root", unsafe { syscall(SYS_PIVOT_ROOT, root.as_ptr(), root.as_ptr()) });
    // SAFETY: unshare takes flags only.
    r.refused("unshare-user", unsafe { syscall(SYS_UNSHARE, CLONE_NEWUSER) });
    // SAFETY: as above.
    r.refused("unshare-mount", unsafe { syscall(SYS_UNSHARE, CLONE_NEWNS) });
    // SAFETY: as above.
    r.refused("unshare-net", unsafe { syscall(SYS_UNSHARE, CLONE_NEWNET) });
    // clone with a namespace flag (a child that got through exits at once).
    // SAFETY: fork-like clone with a null stack; the child only _exits.
    let rc = unsafe { syscall(SYS_CLONE, CLONE_NEWUSER | SIGCHLD, 0usize, 0usize, 0usize, 0usize) };
    if rc == 0 {
        std::process::exit(0);
    }
    r.refused("clone-newuser", rc);
    let ns = fs::File::open("/proc/self/ns/net");
    if let Ok(f) = ns {
        use std::os::fd::AsRawFd;
        // SAFETY: setns takes a descriptor and a flag.
        r.refused("setns", unsafe { syscall(SYS_SETNS, f.as_raw_fd(), 0 as c_int) });
    }
    let kt = c("user");
    let desc = c("probe");
    // SAFETY: add_key reads the strings and the payload of the given size.
    r.refused("add_key", unsafe {
        syscall(SYS_ADD_KEY, kt.as_ptr(), desc.as_ptr(), b"x".as_ptr(), 1usize, -3 as c_int)
    });
    // SAFETY: KEYCTL_GET_KEYRING_ID (0) for the session keyring.
    r.refused("keyctl", unsafe { syscall(SYS_KEYCTL, 0 as c_int, -3 as c_int, 0 as c_int) });
    let attr = [0u8; 128];
    // SAFETY: BPF_MAP_CREATE with a zeroed attr of the size given.
    r.refused("bpf", unsafe { syscall(SYS_BPF, 0 as c_int, attr.as_ptr(), attr.len() as c_uint) });
    // SAFETY: PTRACE_ATTACH to PID 1 (or to ourselves when we are PID 1).
    r.refused("ptrace", unsafe { syscall(SYS_PTRACE, 16 as c_long, 1 as c_long, 0usize, 0usize) });
    let empty = c("");
    // SAFETY: init_module with an empty image; finit_module on stdin.
    r.refused("init_module", unsafe { syscall(SYS_INIT_MODULE, std::ptr::null::<c_void>(), 0usize, empty.as_ptr()) });
    // SAFETY: as above.
    r.refused("finit_module", unsafe { syscall(SYS_FINIT_MODULE, 0 as c_int, empty.as_ptr(), 0 as c_int) });
    let m = c("loop");
    // SAFETY: delete_module reads the name.
    r.refused("delete_module", unsafe { syscall(SYS_DELETE_MODULE, m.as_ptr(), 0x800 as c_uint) });
    // SAFETY: kexec_load with no segments.
    r.refused("kexec_load", unsafe { syscall(SYS_KEXEC_LOAD, 0usize, 0usize, std::ptr::null::<c_void>(), 0usize) });
    // SAFETY: iopl takes a level.
    r.refused("iopl", unsafe { syscall(SYS_IOPL, 3 as c_int) });
    // SAFETY: swapon reads the path.
    r.refused("swapon", unsafe { syscall(SYS_SWAPON, root.as_ptr(), 0 as c_int) });
    // SAFETY: reboot with bad magic numbers changes nothing even if allowed;
    // CAD_OFF (0) with the right magic is refused without CAP_SYS_BOOT.
    r.refused("reboot", unsafe { syscall(SYS_REBOOT, 0xfee1deadu32 as c_int, 672274793 as c_int, 0 as c_uint, 0usize) });
    let pattr = [0u8; 128];
    // SAFETY: perf_event_open with a zeroed attr; pid 1, any cpu.
    r.refused("perf_event_open", unsafe { syscall(SYS_PERF_EVENT_OPEN, pattr.as_ptr(), 1 as c_int, -1 as c_int, -1 as c_int, 0 as c_ulong) });
    let mut buf = [0u8; 8];
    let local = [buf.as_mut_ptr() as usize, buf.len()];
    let remote = [0x400000usize, 8usize];
    // SAFETY: process_vm_readv into our own buffer.
    r.refused("process_vm_readv", unsafe { syscall(SYS_PROCESS_VM_READV, 1 as c_int, local.as_ptr(), 1usize, remote.as_ptr(), 1usize, 0usize) });
    // SAFETY: userfaultfd takes flags.
    r.refused("userfaultfd", unsafe { syscall(SYS_USERFAULTFD, 0 as c_int) });
    // The "shocker" attack: open_by_handle_at with a guessed root handle.
    let mut handle = [0u8; 16];
    handle[0] = 8; // handle_bytes
    handle[4] = 1; // handle_type
    // SAFETY: a file_handle struct of the declared size, fd AT_FDCWD.
    r.refused("open_by_handle_at", unsafe { syscall(SYS_OPEN_BY_HANDLE_AT, -100 as c_int, handle.as_ptr(), 0 as c_int) });
}

fn kernel_files(r: &mut Report) {
    for (check, path, data) in [
        ("proc-sys-write", "/proc/sys/kernel/core_pattern", &b"|/tmp/x"[..]),
        ("proc-sys-modprobe", "/proc/sys/kernel/modprobe", &b"/tmp/x"[..]),
        ("proc-sysrq-trigger", "/proc/sysrq-trigger", &b"h"[..]),
        ("sys-write", "/sys/kernel/uevent_helper", &b"/tmp/x"[..]),
        ("sys-kernel-profiling", "/sys/kernel/profiling", &b"1"[..]),
    ] {
        match fs::OpenOptions::new().write(true).open(path).and_then(|mut f| f.write_all(data)) {
            Ok(()) => r.escape(check, &format!("wrote {path}")),
            Err(_) => r.ok(check),
        }
    }
    let mut kcore = Vec::new();
    let _ = fs::File::open("/proc/kcore").and_then(|mut f| Read::by_ref(&mut f).take(16).read_to_end(&mut kcore));
    if kcore.is_empty() {
        r.ok("proc-kcore");
    } else {
        r.escape("proc-kcore", "read /proc/kcore");
    }
    let mut keys = String::new();
    let _ = fs::File::open("/proc/keys").and_then(|mut f| f.read_to_string(&mut keys));
    if keys.is_empty() {
        r.ok("proc-keys");
    } else {
        r.escape("proc-keys", "read /proc/keys");
    }
}

fn network(r: &mut Report, a: &Args) {
    if a.host_net {
        return r.skip("network", "the host network was allowed");
    }
    let dev = fs::read_to_string("/proc/net/dev").unwrap_or_default();
    let ifaces: Vec<&str> = dev
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .map(str::trim)
        .collect();
    if ifaces.iter().all(|i| *i == "lo") {
        r.ok("network-interfaces");
    } else {
        r.escape("network-interfaces", &format!("interfaces {ifaces:?}"));
    }
    match a.host_port {
        Some(port) => match std::net::TcpStream::connect(("127.0.0.1", port)) {
            Ok(_) => r.escape("network-host-loopback", &format!("connected to the host's 127.0.0.1:{port}")),
            Err(_) => r.ok("network-host-loopback"),
        },
        None => r.skip("network-host-loopback", "no --host-port"),
    }
    // A raw socket may open (CAP_NET_RAW), but only on this namespace's lo.
    // SAFETY: socket takes integers.
    let fd = unsafe { syscall(SYS_SOCKET, 17 as c_int, 3 as c_int, 0x0300 as c_int) }; // AF_PACKET, SOCK_RAW, ETH_P_ALL
    if fd >= 0 && ifaces.iter().any(|i| *i != "lo") {
        r.escape("network-raw", "a packet socket sees a real interface");
    } else {
        r.ok("network-raw");
    }
}

fn namespaces(r: &mut Report, a: &Args) {
    use std::os::unix::fs::MetadataExt;
    if a.host_ns.is_empty() {
        return r.skip("namespaces", "no --host-ns");
    }
    for (name, host) in &a.host_ns {
        let mine = fs::metadata(format!("/proc/self/ns/{name}")).map(|m| m.ino()).unwrap_or(0);
        let check = format!("namespace-{name}");
        if mine == *host {
            if name == "net" && a.host_net {
                r.skip(&check, "the host network was allowed");
            } else {
                r.escape(&check, "shares the host's namespace");
            }
        } else {
            r.ok(&check);
        }
    }
}

fn credentials(r: &mut Report) {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |k: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(k))
            .map(str::trim)
            .unwrap_or("")
            .to_string()
    };
    // Docker's default set (see kiln_executor::DEFAULT_CAPABILITIES).
    let docker = 0xa80425fbu64;
    for k in ["CapEff:", "CapBnd:", "CapPrm:"] {
        let v = u64::from_str_radix(&field(k), 16).unwrap_or(u64::MAX);
        if v & !docker != 0 {
            r.escape("capabilities", &format!("{k} {v:x} has more than docker's {docker:x}"));
            return;
        }
    }
    r.ok("capabilities");
    if field("Seccomp:") == "2" {
        r.ok("seccomp");
    } else {
        r.escape("seccomp", &format!("Seccomp: {}", field("Seccomp:")));
    }
    let host = c("probe-host");
    // SAFETY: sethostname reads the given bytes. Allowed (UTS namespace),
    // so this checks only that it stays ours: nothing to assert here.
    let _ = unsafe { syscall(SYS_SETHOSTNAME, host.as_ptr(), 10usize) };
}

fn main() {
    let a = args();
    let mut r = Report { escapes: 0 };
    leaked_fds(&mut r);
    proc_one(&mut r, &a);
    pid_namespace(&mut r);
    devices(&mut r, &a);
    syscalls(&mut r);
    kernel_files(&mut r);
    network(&mut r, &a);
    namespaces(&mut r, &a);
    credentials(&mut r);
    println!("probe done: {} escapes", r.escapes);
    std::process::exit(if r.escapes == 0 { 0 } else { 1 });
}
