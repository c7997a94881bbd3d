//! An ssh mount's socket: a listener of the step's own, with the owner
//! and mode the mount asks for (BuildKit's `uid`, `gid`, `mode`; root and
//! 0600 by default), forwarding each connection to the invoker's agent.
//! The agent's own socket is never in the container, and a step's user
//! other than root can be given the socket without loosening the
//! invoker's.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Serves until dropped (the step's end).
pub(crate) struct SshProxy {
    socket: PathBuf,
    stop: Arc<AtomicBool>,
    accept: Option<std::thread::JoinHandle<()>>,
}

impl SshProxy {
    /// Listens at `socket` (a path in the step's state directory) for
    /// connections to `agent`.
    pub(crate) fn serve(
        agent: &Path,
        socket: &Path,
        (uid, gid, mode): (u32, u32, u32),
    ) -> io::Result<SshProxy> {
        let listener = UnixListener::bind(socket)?;
        std::os::unix::fs::chown(socket, Some(uid), Some(gid))?;
        std::fs::set_permissions(socket, std::fs::Permissions::from_mode(mode))?;
        // Polled, so the step's end stops it whatever state it is in.
        listener.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let accept = {
            let stop = stop.clone();
            let agent = agent.to_path_buf();
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((client, _)) if client.set_nonblocking(false).is_ok() => {
                            let agent = agent.clone();
                            std::thread::spawn(move || forward(client, &agent));
                        }
                        Ok(_) => {}
                        Err(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
                    }
                }
            })
        };
        Ok(SshProxy {
            socket: socket.to_path_buf(),
            stop,
            accept: Some(accept),
        })
    }
}

impl Drop for SshProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// Copies both ways between a step's connection and the agent until
/// either side closes.
fn forward(client: UnixStream, agent: &Path) {
    let Ok(upstream) = UnixStream::connect(agent) else {
        return;
    };
    let (Ok(mut to_agent_from), Ok(mut to_agent)) = (client.try_clone(), upstream.try_clone())
    else {
        return;
    };
    let requests = std::thread::spawn(move || {
        let _ = io::copy(&mut to_agent_from, &mut to_agent);
        let _ = to_agent.shutdown(std::net::Shutdown::Write);
    });
    let (mut client, mut upstream) = (client, upstream);
    let _ = io::copy(&mut upstream, &mut client);
    let _ = client.shutdown(std::net::Shutdown::Write);
    let _ = requests.join();
}
