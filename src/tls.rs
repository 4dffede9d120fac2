//! The TLS certificate for SIP TLS and HTTPS: configured, or self-signed once and reused.

use anyhow::{Context, Result};
use std::path::Path;
use std::sync::Arc;

pub fn server_config(cert: &str, key: &str, data_dir: &Path) -> Result<Arc<rustls::ServerConfig>> {
    let (cert_path, key_path) = if cert.is_empty() {
        let dir = data_dir.join("tls");
        let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
        if !c.exists() || !k.exists() {
            std::fs::create_dir_all(&dir)?;
            let host = hostname();
            let generated = rcgen::generate_simple_self_signed(vec![
                host.clone(),
                "localhost".into(),
                "127.0.0.1".into(),
            ])
            .context("generating a self-signed certificate")?;
            std::fs::write(&c, generated.cert.pem())?;
            write_private(&k, generated.key_pair.serialize_pem().as_bytes())?;
            tracing::info!(cert = %c.display(), %host, "generated a self-signed TLS certificate");
        }
        (c, k)
    } else {
        (cert.into(), key.into())
    };
    let certs = rustls_pemfile::certs(&mut std::io::BufReader::new(std::fs::File::open(
        &cert_path,
    )?))
    .collect::<Result<Vec<_>, _>>()
    .with_context(|| format!("reading {}", cert_path.display()))?;
    let key = rustls_pemfile::private_key(&mut std::io::BufReader::new(std::fs::File::open(
        &key_path,
    )?))?
    .with_context(|| format!("no private key in {}", key_path.display()))?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(certs, key)?;
    Ok(Arc::new(config))
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// Writes a file only its owner may read (a private key).
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?
        .write_all(bytes)
}
