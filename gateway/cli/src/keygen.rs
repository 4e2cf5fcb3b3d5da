//! `gatez keygen`: an identity key pair for deployments that run layers in separate processes.

use std::path::Path;
use std::process::ExitCode;

use gatez_core::identity::keys::KeyPair;

pub fn main(out_dir: &Path) -> ExitCode {
    let pair = KeyPair::generate();
    let private = out_dir.join("identity.pem");
    let public = out_dir.join("identity.pub.pem");
    for path in [&private, &public] {
        if path.exists() {
            eprintln!(
                "gatez keygen: {} exists; not overwriting it",
                path.display()
            );
            return ExitCode::from(1);
        }
    }
    if let Err(e) = write_private(&private, &pair.to_pkcs8_pem())
        .and_then(|()| std::fs::write(&public, pair.public().to_spki_pem()))
    {
        eprintln!("gatez keygen: {e}");
        return ExitCode::from(1);
    }
    println!(
        "wrote {} (keep secret) and {} (key id {})",
        private.display(),
        public.display(),
        pair.kid
    );
    ExitCode::SUCCESS
}

/// The private key is created readable by its owner only.
fn write_private(path: &Path, pem: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)?.write_all(pem.as_bytes())
}
