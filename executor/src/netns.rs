//! Network namespaces made ahead of a container, so that a network's
//! links and addresses are in place before it starts (it joins one with
//! [`Network::Join`](crate::Network::Join)).

use crate::sys;
use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};

/// A new network namespace, held by the returned descriptor alone: made
/// on a short-lived thread, so no thread of the caller changes namespace.
pub fn new_network_namespace() -> io::Result<OwnedFd> {
    std::thread::spawn(|| {
        sys::unshare(libc::CLONE_NEWNET)?;
        rustix::fs::open(
            "/proc/thread-self/ns/net",
            rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .map_err(io::Error::from)
    })
    .join()
    .map_err(|_| io::Error::other("the namespace thread panicked"))?
}

/// Runs `f` on a thread inside the network namespace `ns` (a netlink
/// socket it opens talks to that namespace).
pub fn in_network_namespace<T: Send>(
    ns: BorrowedFd<'_>,
    f: impl FnOnce() -> io::Result<T> + Send,
) -> io::Result<T> {
    std::thread::scope(|s| {
        s.spawn(|| {
            rustix::thread::move_into_link_name_space(
                ns,
                Some(rustix::thread::LinkNameSpaceType::Network),
            )?;
            f()
        })
        .join()
        .map_err(|_| io::Error::other("the namespace thread panicked"))?
    })
}
