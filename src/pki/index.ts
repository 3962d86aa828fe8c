/**
 * PKI: CA hierarchy, certificate issuance (from CSRs and for generated keys) with DER templates, CRLs, OCSP, and
 * certificate parsing / CA-registration checks. Pure: no file or network I/O; only node:crypto and ../core.
 *
 * Conventions shared by every function here:
 * - certificateId: lowercase hex SHA-256 of the certificate DER (AWS IoT).
 * - serialHex: lowercase hex of the DER INTEGER content octets without the 00 pad DER adds before a set high bit.
 *   Serials we issue are 16 random octets with top bits 01 → always 32 digits, first digit 4..7.
 * - subject / issuer strings: RFC 4514 (most specific RDN first, e.g. `CN=dev-1,O=Acme`).
 * - times: epoch milliseconds, truncated to whole seconds in every certificate, CRL and OCSP response.
 */
export { createCaHierarchy, createIssuingCa, CertificateIssuer } from './issuer.ts'
export type { CaAlgorithm, CaMaterial, IssuedCertificate, IssueOptions } from './issuer.ts'
export { generateKeyPair, KEY_ALGORITHMS, MIN_RSA_BITS } from './keys.ts'
export type { KeyAlgorithm } from './keys.ts'
export { createCsr } from './csr.ts'
export { parseCertificate, splitPemChain, verifyIssuedBy, verifyCaRegistration } from './certificate.ts'
export type { CertificateInfo } from './certificate.ts'
export { buildCrl } from './crl.ts'
export type { CrlEntry } from './crl.ts'
export { OcspResponder, OCSP_RESPONSE_STATUS, MAX_OCSP_CERT_IDS } from './ocsp.ts'
export type { OcspStatus } from './ocsp.ts'
export { MAX_COMMON_NAME_LENGTH } from './validate.ts'
