//! The client wire protocol of ZooKeeper 3.9: jute encoding, the records of
//! `zookeeper.jute`, opcodes and codes, and length framing. No I/O happens here.

pub mod consts;
pub mod frame;
pub mod jute;
pub mod records;
pub mod request;

pub use consts::*;
pub use jute::{DecodeError, Jute, Reader};
pub use records::*;
pub use request::*;
