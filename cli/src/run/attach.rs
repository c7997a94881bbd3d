//! A running container joined to this terminal: signals forwarded (the
//! first SIGINT/SIGTERM as the image's stop signal, a second one kills,
//! since PID 1 may ignore the first, as in docker), its output copied to
//! ours as it comes and into the container's log (so `kiln logs` works
//! for a foreground container too), and with `-t` the pty pumped both
//! ways with the caller's terminal in raw mode.

use crate::{fail, CliError};
use kiln_executor::{terminal, ExecError, Exit, Running};
use kiln_runtime::logs::{LogWriter, StreamLog};
use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGWINCH};
use std::fs;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};

/// Waits for the container, forwarding signals and terminal traffic, its
/// output also logged to `log` (not for `kiln exec`: docker's logs
/// hold only the container's own output).
pub fn attach(
    mut running: Running,
    stop_signal: i32,
    log: Option<&std::path::Path>,
) -> Result<Result<Exit, ExecError>, CliError> {
    let stream_log = |stream| {
        let writer = LogWriter::open(log?).ok()?;
        Some(StreamLog::new(writer, stream))
    };
    let (stdout, stderr) = running.take_output();
    let mut pumps: Vec<std::thread::JoinHandle<()>> = Vec::new();
    if let Some(fd) = stdout {
        pumps.push(tee(fd, std::io::stdout(), stream_log("stdout")));
    }
    if let Some(fd) = stderr {
        pumps.push(tee(fd, std::io::stderr(), stream_log("stderr")));
    }
    let pty = running.take_pty();
    if let Some(primary) = &pty {
        if terminal::is_terminal(std::io::stdin().as_fd()) {
            terminal::copy_window_size(std::io::stdin().as_fd(), primary.as_fd());
        }
    }
    let winsize_target = pty.as_ref().and_then(|p| p.try_clone().ok());
    let (signals, forwarder) = forward_signals(&running, stop_signal, winsize_target)?;
    let (raw, output_pump) = match &pty {
        Some(primary) => pump_pty(primary, stream_log("stdout")),
        None => (None, None),
    };
    drop(pty);
    let exit = running.wait();
    if let Some(pump) = output_pump {
        let _ = pump.join();
    }
    // The container's processes are gone, so its pipes are at EOF.
    for pump in pumps {
        let _ = pump.join();
    }
    drop(raw);
    signals.close();
    let _ = forwarder.join();
    Ok(exit)
}

fn forward_signals(
    running: &Running,
    stop_signal: i32,
    winsize_target: Option<OwnedFd>,
) -> Result<(signal_hook::iterator::Handle, std::thread::JoinHandle<()>), CliError> {
    let handle = running.handle();
    let mut signals = signal_hook::iterator::Signals::new([
        SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH,
    ])
    .map_err(|e| fail(format!("cannot install signal handlers: {e}")))?;
    let signals_handle = signals.handle();
    let forwarder = std::thread::spawn(move || {
        let mut stops = 0;
        for sig in signals.forever() {
            match sig {
                SIGINT | SIGTERM => {
                    stops += 1;
                    if stops == 1 {
                        handle.signal(stop_signal);
                    } else {
                        handle.kill();
                    }
                }
                SIGWINCH => {
                    if let Some(t) = &winsize_target {
                        terminal::copy_window_size(std::io::stdin().as_fd(), t.as_fd());
                    }
                }
                other => handle.signal(other),
            }
        }
    });
    Ok((signals_handle, forwarder))
}

/// Raw mode for the caller's terminal (restored on drop), stdin into the
/// pty, and the pty's output to stdout (joined before exit so nothing is
/// lost).
fn pump_pty(
    primary: &OwnedFd,
    mut log: Option<StreamLog>,
) -> (
    Option<terminal::RawMode>,
    Option<std::thread::JoinHandle<()>>,
) {
    let raw = terminal::RawMode::enable(std::io::stdin().as_fd());
    if let Ok(write_end) = primary.try_clone() {
        std::thread::spawn(move || {
            let mut w = fs::File::from(write_end);
            let _ = std::io::copy(&mut std::io::stdin().lock(), &mut w);
        });
    }
    let output_pump = primary.try_clone().ok().map(|read_end| {
        std::thread::spawn(move || {
            let mut r = fs::File::from(read_end);
            let mut out = std::io::stdout();
            let mut buf = [0u8; 8192];
            // EIO once the container side is gone.
            while let Ok(n) = r.read(&mut buf) {
                if n == 0 || out.write_all(&buf[..n]).is_err() {
                    break;
                }
                let _ = out.flush();
                if let Some(log) = &mut log {
                    log.write(&buf[..n]);
                }
            }
        })
    });
    (raw, output_pump)
}

/// Copies one of the container's streams to ours as it arrives (a
/// prompt without a newline shows at once), and into its log.
fn tee(
    from: OwnedFd,
    mut to: impl Write + Send + 'static,
    mut log: Option<StreamLog>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut r = fs::File::from(from);
        let mut buf = [0u8; 8192];
        while let Ok(n) = r.read(&mut buf) {
            if n == 0 {
                break;
            }
            // Our stdout may be closed (`| head`): keep draining and logging.
            let _ = to.write_all(&buf[..n]).and_then(|_| to.flush());
            if let Some(log) = &mut log {
                log.write(&buf[..n]);
            }
        }
    })
}
