//! Request limits both cache backends enforce identically, so a call valid on one backend is
//! valid on the other and a caller bug shows up in tests against the embedded one.

use std::time::Duration;

use crate::store::StoreError;

/// Longest TTL accepted. Far beyond any useful response-cache lifetime; it exists so TTL
/// arithmetic (expiry instants, Redis `PX` milliseconds) can never overflow.
pub const MAX_TTL: Duration = Duration::from_secs(366 * 24 * 3600);

/// Longest key accepted, in bytes. Keys are meant to be request hashes; a longer key is a
/// caller bug, and refusing it keeps one entry's key from dwarfing its value.
pub const MAX_KEY_BYTES: usize = 1024;

pub(super) fn check_key(key: &str) -> Result<(), StoreError> {
    if key.len() > MAX_KEY_BYTES {
        return Err(StoreError::Invalid(format!(
            "cache key is {} bytes, the limit is {MAX_KEY_BYTES}",
            key.len()
        )));
    }
    Ok(())
}

pub(super) fn check_put(
    key: &str,
    value_len: usize,
    ttl: Duration,
    max_entry_bytes: u64,
) -> Result<(), StoreError> {
    check_key(key)?;
    if ttl.is_zero() {
        return Err(StoreError::Invalid("cache TTL must be non-zero".into()));
    }
    if ttl > MAX_TTL {
        return Err(StoreError::Invalid(format!(
            "cache TTL {ttl:?} is longer than the limit of {MAX_TTL:?}"
        )));
    }
    if value_len as u64 > max_entry_bytes {
        return Err(StoreError::Invalid(format!(
            "cache value is {value_len} bytes, the limit is {max_entry_bytes}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_no_backend_should_store() {
        let ok = Duration::from_secs(1);
        assert!(check_put("k", 10, ok, 10).is_ok());
        assert!(check_put("k", 11, ok, 10).is_err());
        assert!(check_put("k", 1, Duration::ZERO, 10).is_err());
        assert!(check_put("k", 1, MAX_TTL, 10).is_ok());
        assert!(check_put("k", 1, MAX_TTL + Duration::from_millis(1), 10).is_err());
        assert!(check_put(&"k".repeat(MAX_KEY_BYTES), 1, ok, 10).is_ok());
        assert!(check_put(&"k".repeat(MAX_KEY_BYTES + 1), 1, ok, 10).is_err());
    }
}
