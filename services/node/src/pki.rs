//! Certificates: a development certificate authority, certificates for medmesh identities, and
//! the TLS settings of listeners and clients built from them.
//!
//! Dependencies, and why: `rcgen` (the rustls project's certificate generator) issues the
//! development CA and leaf certificates, so `medmesh dev` and the tests need no OpenSSL or
//! external tool; `x509-parser` reads the identity URI out of a verified peer certificate
//! ([`crate::identity`]); TLS itself is rustls with the `ring` provider through tonic's
//! `tls-ring` feature (no OpenSSL, no C toolchain beyond what RocksDB needs).
//!
//! Files of a PKI directory: `ca.pem` (the CA certificate every party trusts), `ca.key` (its
//! key: kept only where certificates are issued), and for each identity `{name}.pem` and
//! `{name}.key`, `{name}` being [`Identity::file_name`].

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use sha2::{Digest, Sha256};
use tonic::transport::{Certificate, ClientTlsConfig, ServerTlsConfig};

use crate::identity::Identity;

/// How long a development certificate is valid.
pub const DEV_VALIDITY_DAYS: i64 = 825;

/// A certificate and key on disk, with the CA that issued it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertFiles {
    /// The CA certificate (PEM).
    pub ca: PathBuf,
    /// The certificate (PEM).
    pub cert: PathBuf,
    /// Its private key (PEM, PKCS#8).
    pub key: PathBuf,
}

/// A development certificate authority in a directory.
pub struct Pki {
    dir: PathBuf,
    ca_pem: String,
    ca_key: KeyPair,
}

impl Pki {
    /// Opens the CA in `dir`, creating the directory and a new CA if there is none.
    pub fn open_or_create(dir: &Path) -> anyhow::Result<Pki> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let (cert, key) = (dir.join("ca.pem"), dir.join("ca.key"));
        if !cert.exists() {
            let key_pair = KeyPair::generate().context("CA key")?;
            let mut params = CertificateParams::new(Vec::<String>::new())?;
            let mut name = DistinguishedName::new();
            name.push(DnType::CommonName, "medmesh development CA");
            name.push(DnType::OrganizationName, "medmesh");
            params.distinguished_name = name;
            params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
            params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
            let now = time::OffsetDateTime::now_utc();
            params.not_before = now - time::Duration::hours(1);
            params.not_after = now + time::Duration::days(DEV_VALIDITY_DAYS * 2);
            let ca = params.self_signed(&key_pair).context("signing the CA")?;
            write_private(&key, &key_pair.serialize_pem())?;
            std::fs::write(&cert, ca.pem()).with_context(|| format!("writing {}", cert.display()))?;
        }
        let ca_pem = std::fs::read_to_string(&cert).with_context(|| format!("reading {}", cert.display()))?;
        let key_pem = std::fs::read_to_string(&key).with_context(|| format!("reading {}", key.display()))?;
        let ca_key = KeyPair::from_pem(&key_pem).context("ca.key")?;
        Ok(Pki { dir: dir.to_path_buf(), ca_pem, ca_key })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The CA certificate's path.
    pub fn ca_path(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// The files of `identity` in this directory, issuing them if absent (valid for
    /// [`DEV_VALIDITY_DAYS`], for `hosts` as server names besides 127.0.0.1 and localhost).
    pub fn ensure(&self, identity: &Identity, hosts: &[String]) -> anyhow::Result<CertFiles> {
        let files = self.files(&identity.file_name());
        if files.cert.exists() && files.key.exists() {
            return Ok(files);
        }
        let now = time::OffsetDateTime::now_utc();
        self.issue(
            identity,
            hosts,
            now - time::Duration::hours(1),
            now + time::Duration::days(DEV_VALIDITY_DAYS),
            &identity.file_name(),
        )
    }

    /// Issues a certificate for `identity` valid from `not_before` to `not_after`, written as
    /// `{name}.pem` and `{name}.key` (replacing any).
    pub fn issue(
        &self,
        identity: &Identity,
        hosts: &[String],
        not_before: time::OffsetDateTime,
        not_after: time::OffsetDateTime,
        name: &str,
    ) -> anyhow::Result<CertFiles> {
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.') {
            bail!("certificate name {name:?}: letters, digits, '-', '_' and '.' only");
        }
        let mut names: Vec<String> = vec!["127.0.0.1".into(), "localhost".into()];
        for h in hosts {
            if !names.contains(h) {
                names.push(h.clone());
            }
        }
        let mut params = CertificateParams::new(names).context("certificate names")?;
        params.subject_alt_names.push(SanType::URI(identity.uri().try_into().context("identity URI")?));
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, identity.uri());
        dn.push(DnType::OrganizationName, "medmesh");
        params.distinguished_name = dn;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
        params.not_before = not_before;
        params.not_after = not_after;
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate().context("key")?;
        let issuer = Issuer::from_ca_cert_pem(&self.ca_pem, &self.ca_key).context("ca.pem")?;
        let cert = params.signed_by(&key, &issuer).context("signing")?;
        let files = self.files(name);
        write_private(&files.key, &key.serialize_pem())?;
        std::fs::write(&files.cert, cert.pem()).with_context(|| format!("writing {}", files.cert.display()))?;
        Ok(files)
    }

    /// A transport presenting `identity`'s certificate (issued if absent).
    pub fn transport(&self, identity: &Identity) -> anyhow::Result<Transport> {
        Transport::from_files(&self.ensure(identity, &[])?)
    }

    /// A transport that trusts the CA and presents no certificate (for health probes).
    pub fn anonymous(&self) -> anyhow::Result<Transport> {
        Ok(Transport::Tls(Arc::new(Tls::load(&self.ca_path(), None)?)))
    }

    /// The environment of a replica process: `MEDMESH_TLS_CA`, `MEDMESH_TLS_CERT` and
    /// `MEDMESH_TLS_KEY` for the certificate of replica `id` of `group` (issued if absent, for
    /// `hosts` besides the loopback names).
    pub fn replica_env(&self, group: &str, id: u64, hosts: &[String]) -> anyhow::Result<Vec<(&'static str, String)>> {
        let identity = Identity::Replica {
            group: medmesh_types::ProvinceCode::new(group.to_string()).map_err(|e| anyhow::anyhow!("group: {e}"))?,
            id,
        };
        let f = self.ensure(&identity, hosts)?;
        let mut env = vec![
            ("MEDMESH_TLS_CA", f.ca.display().to_string()),
            ("MEDMESH_TLS_CERT", f.cert.display().to_string()),
            ("MEDMESH_TLS_KEY", f.key.display().to_string()),
        ];
        env.extend(self.seal_env(group)?);
        Ok(env)
    }

    /// `MEDMESH_SEAL_KEY` for a replica of `group`: the province's key file `seal-{group}.key`
    /// in this directory, generated if absent (nothing for the federation, which holds no
    /// identities).
    pub fn seal_env(&self, group: &str) -> anyhow::Result<Vec<(&'static str, String)>> {
        if group == medmesh_state::FEDERATION {
            return Ok(Vec::new());
        }
        medmesh_types::ProvinceCode::new(group.to_string()).map_err(|e| anyhow::anyhow!("group: {e}"))?;
        let path = self.dir.join(format!("seal-{group}.key"));
        if !path.exists() {
            write_private(&path, &medmesh_seal::SealKey::generate().map_err(|e| anyhow::anyhow!("seal key: {e}"))?)?;
        }
        Ok(vec![("MEDMESH_SEAL_KEY", path.display().to_string())])
    }

    fn files(&self, name: &str) -> CertFiles {
        CertFiles {
            ca: self.ca_path(),
            cert: self.dir.join(format!("{name}.pem")),
            key: self.dir.join(format!("{name}.key")),
        }
    }
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(text.as_bytes()).with_context(|| format!("writing {}", path.display()))
}

/// SHA-256 of a DER certificate, lower-case hex: how a deny list names a certificate.
pub fn fingerprint(der: &[u8]) -> String {
    hex::encode(Sha256::digest(der))
}

/// The fingerprint of the first certificate of a PEM file.
pub fn fingerprint_of_pem(pem_text: &str) -> anyhow::Result<String> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem_text.as_bytes()).map_err(|e| anyhow::anyhow!("PEM: {e}"))?;
    Ok(fingerprint(&pem.contents))
}

/// Loaded TLS material: the CA to trust and, for a party with an identity, its certificate
/// and key.
#[derive(Clone)]
pub struct Tls {
    ca: Certificate,
    identity: Option<tonic::transport::Identity>,
}

impl Tls {
    /// Reads the CA (and the certificate and key, when given) from PEM files.
    pub fn load(ca: &Path, cert_and_key: Option<(&Path, &Path)>) -> anyhow::Result<Tls> {
        let ca_pem = std::fs::read(ca).with_context(|| format!("reading CA {}", ca.display()))?;
        let identity = match cert_and_key {
            Some((cert, key)) => {
                let c = std::fs::read(cert).with_context(|| format!("reading certificate {}", cert.display()))?;
                let k = std::fs::read(key).with_context(|| format!("reading key {}", key.display()))?;
                Some(tonic::transport::Identity::from_pem(c, k))
            }
            None => None,
        };
        Ok(Tls { ca: Certificate::from_pem(ca_pem), identity })
    }

    /// Reads `files`.
    pub fn from_files(files: &CertFiles) -> anyhow::Result<Tls> {
        Tls::load(&files.ca, Some((&files.cert, &files.key)))
    }

    /// The client settings: trust the CA, present the certificate if there is one.
    pub fn client(&self) -> ClientTlsConfig {
        let c = ClientTlsConfig::new().ca_certificate(self.ca.clone());
        match &self.identity {
            Some(id) => c.identity(id.clone()),
            None => c,
        }
    }

    /// The listener settings: present the certificate; ask every client for one signed by the
    /// CA. A client without a certificate still connects (so that health probes work) and gets
    /// UNAUTHENTICATED from every rpc that needs an identity ([`crate::access`]).
    pub fn server(&self) -> anyhow::Result<ServerTlsConfig> {
        let id = self.identity.clone().context("a listener needs a certificate and key")?;
        Ok(ServerTlsConfig::new().identity(id).client_ca_root(self.ca.clone()).client_auth_optional(true))
    }
}

/// How a process reaches replicas: over TLS with its certificate, or (only in a throwaway run
/// started with `--insecure`) in plaintext.
#[derive(Clone)]
pub enum Transport {
    /// mTLS.
    Tls(Arc<Tls>),
    /// Plaintext, no identities.
    Insecure,
}

impl Transport {
    /// TLS with `files`.
    pub fn from_files(files: &CertFiles) -> anyhow::Result<Transport> {
        Ok(Transport::Tls(Arc::new(Tls::from_files(files)?)))
    }
}
