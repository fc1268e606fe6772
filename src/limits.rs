//! Every resource limit the server enforces, in one place, so each is checked before
//! the allocation it guards. Values come from zoo.cfg (see `config`).

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// `jute.maxbuffer`: the largest frame a client may send, and the largest znode data.
    pub max_buffer: usize,
    /// `maxClientCnxns`: connections from one IP address (0 = unlimited).
    pub max_client_cnxns: usize,
    /// `globalOutstandingLimit`: requests read but not yet answered, over all connections.
    pub global_outstanding_limit: usize,
    /// Bytes queued for a client that is not reading before its connection is closed.
    pub max_pending_output: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_buffer: 0xfffff,
            max_client_cnxns: 60,
            global_outstanding_limit: 1000,
            max_pending_output: 64 * 1024 * 1024,
        }
    }
}
