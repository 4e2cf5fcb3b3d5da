//! Request limits both record backends enforce identically, so a call valid on one backend is
//! valid on the other and a caller bug shows up in tests against the embedded one.

use std::time::Duration;

use crate::store::StoreError;

/// Longest TTL accepted. Far beyond any session idle time or approval deadline; it exists so
/// TTL arithmetic (expiry instants, Redis milliseconds and index scores) cannot overflow.
pub const MAX_TTL: Duration = Duration::from_secs(366 * 24 * 3600);

/// The size limits of one backend's config.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    pub max_id_bytes: usize,
    pub max_value_bytes: usize,
}

impl Limits {
    pub fn check_id(&self, id: &str) -> Result<(), StoreError> {
        if id.len() > self.max_id_bytes {
            return Err(StoreError::Invalid(format!(
                "record id is {} bytes, the limit is {}",
                id.len(),
                self.max_id_bytes
            )));
        }
        Ok(())
    }

    pub fn check_write(&self, id: &str, value_len: usize, ttl: Duration) -> Result<(), StoreError> {
        self.check_id(id)?;
        check_ttl(ttl)?;
        if value_len > self.max_value_bytes {
            return Err(StoreError::Invalid(format!(
                "record value is {value_len} bytes, the limit is {}",
                self.max_value_bytes
            )));
        }
        Ok(())
    }
}

pub(super) fn check_ttl(ttl: Duration) -> Result<(), StoreError> {
    if ttl.is_zero() {
        return Err(StoreError::Invalid("record TTL must be non-zero".into()));
    }
    if ttl > MAX_TTL {
        return Err(StoreError::Invalid(format!(
            "record TTL {ttl:?} is longer than the limit of {MAX_TTL:?}"
        )));
    }
    Ok(())
}

/// Checks a configured size limit (shared by both backends' `validate`).
pub(super) fn validate_sizes(max_id_bytes: usize, max_value_bytes: usize) -> Result<(), String> {
    if max_id_bytes == 0 {
        return Err("max_id_bytes must be greater than 0".into());
    }
    if max_value_bytes == 0 {
        return Err("max_value_bytes must be greater than 0".into());
    }
    if max_value_bytes > 512 * 1024 * 1024 {
        return Err("max_value_bytes must be at most 512 MiB (the Redis string limit)".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_no_backend_should_store() {
        let limits = Limits {
            max_id_bytes: 4,
            max_value_bytes: 10,
        };
        let ok = Duration::from_secs(1);
        assert!(limits.check_write("abcd", 10, ok).is_ok());
        assert!(limits.check_write("abcde", 10, ok).is_err());
        assert!(limits.check_write("a", 11, ok).is_err());
        assert!(limits.check_write("a", 1, Duration::ZERO).is_err());
        assert!(limits.check_write("a", 1, MAX_TTL).is_ok());
        assert!(
            limits
                .check_write("a", 1, MAX_TTL + Duration::from_nanos(1))
                .is_err()
        );
        assert!(validate_sizes(0, 1).is_err());
        assert!(validate_sizes(1, 0).is_err());
        assert!(validate_sizes(512, 1 << 20).is_ok());
    }
}
