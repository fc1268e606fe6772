//! The glommio runtime. Being written.
