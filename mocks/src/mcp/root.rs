//! The directory the benign server's `read_file` may read, and nothing outside it.
//!
//! This mock plays the *upstream*, so it enforces its own boundary the way a careful real
//! server would; the gateway's checks come on top and are tested against it.

use std::path::{Path, PathBuf};

use tempfile::TempDir;

/// Written into a root the mock makes itself, so `read_file` works out of the box.
pub const WELCOME_FILE: &str = "welcome.txt";
pub const WELCOME_TEXT: &str = "Hello from the gatez benign MCP server.\n";

#[derive(Debug)]
pub struct FileRoot {
    /// Canonical, so a prefix check on canonical candidates is a containment check.
    dir: PathBuf,
    /// Keeps a mock-made root alive (and removes it) with the server.
    _owned: Option<TempDir>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReadError {
    #[error("access denied: `{0}` is outside the server root")]
    OutsideRoot(String),
    #[error("no such file: `{0}`")]
    NotFound(String),
    #[error("cannot read `{path}`: {reason}")]
    Io { path: String, reason: String },
}

impl FileRoot {
    /// `dir`, or a fresh temporary directory holding [`WELCOME_FILE`] when `None`.
    pub fn new(dir: Option<&Path>) -> std::io::Result<Self> {
        match dir {
            Some(d) => Ok(Self {
                dir: d.canonicalize()?,
                _owned: None,
            }),
            None => {
                let tmp = tempfile::Builder::new()
                    .prefix("gatez-mcp-root")
                    .tempdir()?;
                std::fs::write(tmp.path().join(WELCOME_FILE), WELCOME_TEXT)?;
                Ok(Self {
                    dir: tmp.path().canonicalize()?,
                    _owned: Some(tmp),
                })
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Reads `requested` (relative to the root, or absolute inside it) as UTF-8 text.
    /// Resolving symlinks and `..` before the check is what stops escapes through them.
    pub fn read(&self, requested: &str) -> Result<String, ReadError> {
        let candidate = self.dir.join(requested);
        let resolved = match candidate.canonicalize() {
            Ok(p) => p,
            // A missing file outside the root must still read as "outside", not leak
            // whether it exists; judge its lexical form instead.
            Err(_) if !lexically_inside(&self.dir, &candidate) => {
                return Err(ReadError::OutsideRoot(requested.into()));
            }
            Err(_) => return Err(ReadError::NotFound(requested.into())),
        };
        if !resolved.starts_with(&self.dir) {
            return Err(ReadError::OutsideRoot(requested.into()));
        }
        std::fs::read_to_string(&resolved).map_err(|e| ReadError::Io {
            path: requested.into(),
            reason: e.to_string(),
        })
    }
}

/// Whether `path` stays under `root` once `.` and `..` are applied, without touching the disk.
fn lexically_inside(root: &Path, path: &Path) -> bool {
    use std::path::Component;
    let mut parts: Vec<Component> = Vec::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                parts.pop();
            }
            Component::CurDir => {}
            other => parts.push(other),
        }
    }
    parts.iter().collect::<PathBuf>().starts_with(root)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_inside_and_refuses_escapes() {
        let root = FileRoot::new(None).unwrap();
        assert_eq!(root.read(WELCOME_FILE).unwrap(), WELCOME_TEXT);
        let abs = root.path().join(WELCOME_FILE);
        assert_eq!(root.read(abs.to_str().unwrap()).unwrap(), WELCOME_TEXT);
        assert!(matches!(
            root.read("../../etc/passwd"),
            Err(ReadError::OutsideRoot(_))
        ));
        assert!(matches!(
            root.read("/etc/hostname"),
            Err(ReadError::OutsideRoot(_))
        ));
        assert!(matches!(
            root.read("../no-such-file"),
            Err(ReadError::OutsideRoot(_))
        ));
        assert!(matches!(
            root.read("missing.txt"),
            Err(ReadError::NotFound(_))
        ));
    }

    #[cfg(unix)]
    #[test]
    fn refuses_symlinks_that_leave_the_root() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "s3cret").unwrap();
        let root = FileRoot::new(None).unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), root.path().join("link"))
            .unwrap();
        assert!(matches!(root.read("link"), Err(ReadError::OutsideRoot(_))));
    }
}
