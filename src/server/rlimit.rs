//! The open-file limit: every client connection, log segment, snapshot and peer link
//! is a descriptor, and a distribution's default soft limit (often 1,024) would cap a
//! production server at about a thousand clients while the hard limit allows far more.
//! So the server raises its soft limit to the hard one at start (what a JVM does with
//! `-XX:+MaxFDLimit`, on by default) and logs what it can hold.

/// Descriptors kept for everything but client connections: log segments, snapshots,
/// the listeners, peer links, io_uring and the admin and metrics ports.
const RESERVED: u64 = 64;

/// What the limit was and is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenFiles {
    pub was: u64,
    pub now: u64,
    pub hard: u64,
}

impl OpenFiles {
    /// About how many client connections fit.
    pub fn connections(&self) -> u64 {
        self.now.saturating_sub(RESERVED)
    }
}

/// Raises RLIMIT_NOFILE's soft limit to its hard limit.
pub fn raise_open_files() -> std::io::Result<OpenFiles> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let was = lim.rlim_cur;
    if lim.rlim_cur < lim.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: setrlimit reads the struct we own.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        lim = raised;
    }
    Ok(OpenFiles {
        was,
        now: lim.rlim_cur,
        hard: lim.rlim_max,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_ends_at_the_hard_limit() {
        let f = raise_open_files().unwrap();
        assert_eq!(f.now, f.hard);
        assert!(f.now >= f.was);
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: as above.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
        assert_eq!(lim.rlim_cur, f.hard);
        assert_eq!(f.connections(), f.now.saturating_sub(RESERVED));
    }
}
