//! Four-letter words. CONTRACT STUB: owned by the config/admin work.
