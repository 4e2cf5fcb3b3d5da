//! Authentication at the edge (being written).
