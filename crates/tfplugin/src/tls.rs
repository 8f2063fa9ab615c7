//! AutoMTLS for the plugin channel.
//!
//! Terraform passes its client certificate in `PLUGIN_CLIENT_CERT` and learns ours from the
//! handshake line. We generate a fresh server certificate at start and accept exactly one client:
//! the holder of the certificate Terraform named. That certificate is ECDSA P-521 with the CA flag
//! set, which webpki will not take as an end-entity certificate and ring cannot verify, so the
//! verifier here pins the exact DER and checks the handshake signature itself (P-521 through the
//! pure-Rust `p521` crate, other keys through rustls' ring algorithms).

use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, Error as TlsError, SignatureScheme,
};

/// Why the plugin channel could not be secured.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    /// `PLUGIN_CLIENT_CERT` held no PEM certificate.
    #[error("PLUGIN_CLIENT_CERT does not contain a PEM certificate: {0}")]
    ClientCert(String),
    /// The server certificate could not be generated.
    #[error("cannot generate the plugin server certificate: {0}")]
    Generate(String),
    /// rustls refused the configuration.
    #[error("cannot configure TLS: {0}")]
    Rustls(#[from] TlsError),
}

/// A freshly generated server identity.
pub struct ServerIdentity {
    /// The certificate, DER.
    pub cert_der: Vec<u8>,
    key_der: Vec<u8>,
}

impl ServerIdentity {
    /// Generates a self-signed ECDSA P-256 certificate for `localhost`, the name go-plugin
    /// verifies.
    pub fn generate() -> Result<ServerIdentity, TlsSetupError> {
        let c = crate::cert::localhost("Terraform plugin").map_err(TlsSetupError::Generate)?;
        Ok(ServerIdentity { cert_der: c.cert_der, key_der: c.key_pkcs8 })
    }

    /// The certificate as the handshake line carries it: standard base64 without padding.
    pub fn handshake_cert(&self) -> String {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(&self.cert_der)
    }
}

/// The rustls server configuration accepting only the client certificate in `client_cert_pem`.
pub fn server_config(
    identity: &ServerIdentity,
    client_cert_pem: &str,
) -> Result<rustls::ServerConfig, TlsSetupError> {
    let client = CertificateDer::from_pem_slice(client_cert_pem.as_bytes())
        .map_err(|e| TlsSetupError::ClientCert(e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = PinnedClientCert::new(client.to_vec(), provider.clone());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(Arc::new(verifier))
        .with_single_cert(
            vec![CertificateDer::from(identity.cert_der.clone())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(identity.key_der.clone())),
        )?;
    // gRPC clients require ALPN h2.
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

/// Accepts exactly one client certificate, byte for byte.
pub struct PinnedClientCert {
    der: Vec<u8>,
    p521: Option<p521::ecdsa::VerifyingKey>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl std::fmt::Debug for PinnedClientCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PinnedClientCert")
            .field("der_len", &self.der.len())
            .field("p521", &self.p521.is_some())
            .finish()
    }
}

impl PinnedClientCert {
    /// Pins `der`; its public key is extracted once for signature checks.
    pub fn new(der: Vec<u8>, provider: Arc<rustls::crypto::CryptoProvider>) -> PinnedClientCert {
        let p521 = p521_key(&der);
        PinnedClientCert { der, p521, provider }
    }

    fn check_pinned(&self, cert: &CertificateDer<'_>) -> Result<(), TlsError> {
        if cert.as_ref() == self.der.as_slice() {
            Ok(())
        } else {
            Err(TlsError::InvalidCertificate(CertificateError::ApplicationVerificationFailure))
        }
    }

    /// Checks a handshake signature made with the pinned certificate's key: a P-521 one (which
    /// `ring` cannot check) here, any other with `check`, rustls's check for the TLS version.
    fn verify(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
        check: fn(
            &[u8],
            &CertificateDer<'_>,
            &DigitallySignedStruct,
            &rustls::crypto::WebPkiSupportedAlgorithms,
        ) -> Result<HandshakeSignatureValid, TlsError>,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        self.check_pinned(cert)?;
        self.verify_p521(message, dss).unwrap_or_else(|| {
            check(message, cert, dss, &self.provider.signature_verification_algorithms)
        })
    }

    fn verify_p521(
        &self,
        message: &[u8],
        dss: &DigitallySignedStruct,
    ) -> Option<Result<HandshakeSignatureValid, TlsError>> {
        use p521::ecdsa::signature::Verifier;
        let key = self.p521.as_ref()?;
        if dss.scheme != SignatureScheme::ECDSA_NISTP521_SHA512 {
            return Some(Err(TlsError::PeerMisbehaved(
                rustls::PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme,
            )));
        }
        let Ok(sig) = p521::ecdsa::Signature::from_der(dss.signature()) else {
            return Some(Err(TlsError::InvalidCertificate(CertificateError::BadSignature)));
        };
        Some(
            key.verify(message, &sig)
                .map(|_| HandshakeSignatureValid::assertion())
                .map_err(|_| TlsError::InvalidCertificate(CertificateError::BadSignature)),
        )
    }
}

/// The P-521 public key of a certificate, if it has one.
fn p521_key(der: &[u8]) -> Option<p521::ecdsa::VerifyingKey> {
    use x509_cert::der::Decode;
    let cert = x509_cert::Certificate::from_der(der).ok()?;
    let spki = cert.tbs_certificate.subject_public_key_info;
    let point = spki.subject_public_key.as_bytes()?;
    p521::ecdsa::VerifyingKey::from_sec1_bytes(point).ok()
}

impl ClientCertVerifier for PinnedClientCert {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, TlsError> {
        self.check_pinned(end_entity)?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        self.verify(message, cert, dss, rustls::crypto::verify_tls12_signature)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        self.verify(message, cert, dss, rustls::crypto::verify_tls13_signature)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        if self.p521.is_some() {
            vec![SignatureScheme::ECDSA_NISTP521_SHA512]
        } else {
            self.provider.signature_verification_algorithms.supported_schemes()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn localhost_cert() -> rcgen::Certificate {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap().self_signed(&key).unwrap()
    }

    #[test]
    fn server_identity_is_localhost_and_encodes_without_padding() {
        let id = ServerIdentity::generate().unwrap();
        assert!(!id.handshake_cert().ends_with('='));
        assert!(server_config(&id, &localhost_cert().pem()).is_ok());
        assert!(server_config(&id, "not a certificate").is_err());
    }

    #[test]
    fn only_the_pinned_certificate_is_accepted() {
        let (a, b) = (localhost_cert(), localhost_cert());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let v = PinnedClientCert::new(a.der().to_vec(), provider);
        let now = UnixTime::now();
        assert!(v.verify_client_cert(a.der(), &[], now).is_ok());
        assert!(v.verify_client_cert(b.der(), &[], now).is_err());
    }
}
