//! The reverse proxy (being written).
