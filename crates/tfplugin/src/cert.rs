//! The plugin's own server certificate: a fresh self-signed ECDSA P-256 certificate for `localhost`
//! (the name go-plugin verifies), built from its ASN.1 structures and signed with ring, so that no
//! certificate-generation crate is linked into providers.

use std::time::{Duration, SystemTime};

use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use x509_cert::der::asn1::{BitString, Ia5String, OctetString, UtcTime};
use x509_cert::der::oid::ObjectIdentifier;
use x509_cert::der::{Any, Encode};
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{
    BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages, SubjectAltName,
};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::time::{Time, Validity};
use x509_cert::{Certificate, TbsCertificate, Version};

const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const PRIME256V1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const ECDSA_WITH_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const SERVER_AUTH: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.1");
const CLIENT_AUTH: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.2");

/// A self-signed certificate and its private key.
pub struct SelfSigned {
    /// The certificate, DER.
    pub cert_der: Vec<u8>,
    /// The private key, PKCS #8 DER.
    pub key_pkcs8: Vec<u8>,
}

/// Generates a certificate for `localhost`, valid from 30 s ago for 30 days, usable as its own CA
/// (the client pins it as the only root) and for both TLS server and client authentication.
pub fn localhost(organization: &str) -> Result<SelfSigned, String> {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
        .map_err(|e| e.to_string())?;
    let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng)
        .map_err(|e| e.to_string())?;
    let name: Name =
        format!("CN=localhost,O={organization}").parse().map_err(|e| format!("{e}"))?;
    let signature_algorithm = AlgorithmIdentifierOwned { oid: ECDSA_WITH_SHA256, parameters: None };
    let tbs = TbsCertificate {
        version: Version::V3,
        serial_number: SerialNumber::new(&serial(&rng)?).map_err(|e| e.to_string())?,
        signature: signature_algorithm.clone(),
        issuer: name.clone(),
        validity: validity()?,
        subject: name,
        subject_public_key_info: SubjectPublicKeyInfoOwned {
            algorithm: AlgorithmIdentifierOwned {
                oid: EC_PUBLIC_KEY,
                parameters: Some(Any::encode_from(&PRIME256V1).map_err(|e| e.to_string())?),
            },
            subject_public_key: BitString::from_bytes(key.public_key().as_ref())
                .map_err(|e| e.to_string())?,
        },
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: Some(extensions()?),
    };
    let tbs_der = tbs.to_der().map_err(|e| e.to_string())?;
    let signature = key.sign(&rng, &tbs_der).map_err(|e| e.to_string())?;
    let cert = Certificate {
        tbs_certificate: tbs,
        signature_algorithm,
        signature: BitString::from_bytes(signature.as_ref()).map_err(|e| e.to_string())?,
    };
    Ok(SelfSigned {
        cert_der: cert.to_der().map_err(|e| e.to_string())?,
        key_pkcs8: pkcs8.as_ref().to_vec(),
    })
}

/// A positive random 16-byte serial number.
fn serial(rng: &SystemRandom) -> Result<[u8; 16], String> {
    let mut bytes = [0u8; 16];
    ring::rand::SecureRandom::fill(rng, &mut bytes).map_err(|e| e.to_string())?;
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01;
    Ok(bytes)
}

fn validity() -> Result<Validity, String> {
    let now =
        SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_err(|e| e.to_string())?;
    let at = |d: Duration| {
        UtcTime::from_unix_duration(Duration::from_secs(d.as_secs()))
            .map(Time::UtcTime)
            .map_err(|e| e.to_string())
    };
    Ok(Validity {
        not_before: at(now - Duration::from_secs(30))?,
        not_after: at(now + Duration::from_secs(30 * 24 * 3600))?,
    })
}

fn extensions() -> Result<Vec<Extension>, String> {
    fn ext(oid: &str, critical: bool, value: &impl Encode) -> Result<Extension, String> {
        let der = value.to_der().map_err(|e| e.to_string())?;
        Ok(Extension {
            extn_id: ObjectIdentifier::new(oid).map_err(|e| e.to_string())?,
            critical,
            extn_value: OctetString::new(der).map_err(|e| e.to_string())?,
        })
    }
    let dns = Ia5String::new("localhost").map_err(|e| e.to_string())?;
    let usage = KeyUsages::DigitalSignature | KeyUsages::KeyEncipherment | KeyUsages::KeyCertSign;
    Ok(vec![
        ext("2.5.29.19", true, &BasicConstraints { ca: true, path_len_constraint: None })?,
        ext("2.5.29.15", true, &KeyUsage(usage))?,
        ext("2.5.29.37", false, &ExtendedKeyUsage(vec![SERVER_AUTH, CLIENT_AUTH]))?,
        ext("2.5.29.17", false, &SubjectAltName(vec![GeneralName::DnsName(dns)]))?,
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{ECDSA_P256_SHA256_ASN1, UnparsedPublicKey};
    use x509_cert::der::Decode;

    #[test]
    fn a_localhost_certificate_that_parses_back() {
        let c = localhost("Terraform plugin").unwrap();
        let cert = Certificate::from_der(&c.cert_der).unwrap();
        assert_eq!(cert.tbs_certificate.subject.to_string(), "CN=localhost,O=Terraform plugin");
        assert_eq!(cert.tbs_certificate.extensions.as_ref().unwrap().len(), 4);
        // The signature verifies with the certificate's own key.
        let tbs = cert.tbs_certificate.to_der().unwrap();
        let public = cert.tbs_certificate.subject_public_key_info.subject_public_key.raw_bytes();
        let key = UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, public);
        assert!(key.verify(&tbs, cert.signature.raw_bytes()).is_ok());
    }
}
