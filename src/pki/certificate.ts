import { X509Certificate } from 'node:crypto'
import { AppError } from '../core/index.ts'
import type { ErrorCode } from '../core/index.ts'
import { DerError, TAG, readTlv } from './der.ts'
import { isCaCert, keyUsageAllows, parseCertDer, serialHexOf } from './cert-der.ts'
import type { CertDer } from './cert-der.ts'
import { formatRdns, lastCommonName, readName } from './names.ts'
import { readFirstPem, readPemBlocks, toPem } from './pem.ts'
import { certificateIdOf } from './template.ts'

export interface CertificateInfo {
  /** Lowercase hex SHA-256 of the DER (AWS IoT certificateId). */
  certificateId: string
  /** Module convention: lowercase hex of the INTEGER content without the DER 00 pad (see `serialHexOf`). */
  serialHex: string
  /** RFC 4514 form, most specific RDN first (`CN=dev-1,O=Acme`). */
  subject: string
  issuer: string
  /** The most specific commonName of the subject. */
  subjectCommonName?: string
  notBeforeMs: number
  notAfterMs: number
  /** basicConstraints cA. */
  isCa: boolean
  der: Buffer
  /** 64-column PEM with a trailing newline (Node's X509Certificate.toString() format). */
  pem: string
  /** 'EC-P256', 'EC-P384', 'EC-P521', 'RSA-<bits>', 'Ed25519', or e.g. 'EC-secp256k1', 'DSA', an OID. */
  publicKeyAlgorithm: string
  /** Node's colon form: uppercase hex pairs joined by ':'. */
  fingerprint256: string
}

/** A certificate parsed by both our reader and OpenSSL (through Node), so anything we report OpenSSL also accepts. */
interface Parsed {
  readonly cert: CertDer
  readonly x509: X509Certificate
}

function parse (input: string | Buffer, code: ErrorCode, what: string): Parsed {
  let der: Buffer
  if (Buffer.isBuffer(input) && input.length > 0 && input[0] === TAG.SEQUENCE) {
    der = input
  } else {
    if (typeof input !== 'string' && !Buffer.isBuffer(input)) throw new AppError(code, `${what} must be a PEM string or DER bytes`)
    try {
      der = readFirstPem(typeof input === 'string' ? input : input.toString('latin1'), ['CERTIFICATE'], what)
    } catch (err) {
      throw new AppError(code, err instanceof Error ? err.message : `${what} is not PEM`, {}, { cause: err })
    }
  }
  let cert: CertDer
  try {
    cert = parseCertDer(der)
  } catch (err) {
    if (err instanceof DerError) throw new AppError(code, `${what} is malformed: ${err.message}`, {}, { cause: err })
    throw err
  }
  let x509: X509Certificate
  try {
    x509 = new X509Certificate(der)
  } catch (err) {
    throw new AppError(code, `${what} is rejected by OpenSSL`, {}, { cause: err })
  }
  return { cert, x509 }
}

function info ({ cert, x509 }: Parsed, code: ErrorCode, what: string): CertificateInfo {
  try {
    const subjectRdns = readName(cert.subjectName, readTlv(cert.subjectName, 0))
    const cn = lastCommonName(subjectRdns)
    return {
      certificateId: certificateIdOf(cert.der),
      serialHex: serialHexOf(cert.serialContent),
      subject: formatRdns(subjectRdns),
      issuer: formatRdns(readName(cert.issuerName, readTlv(cert.issuerName, 0))),
      ...(cn === undefined ? {} : { subjectCommonName: cn }),
      notBeforeMs: cert.notBeforeMs,
      notAfterMs: cert.notAfterMs,
      isCa: isCaCert(cert),
      der: cert.der,
      pem: toPem('CERTIFICATE', cert.der),
      publicKeyAlgorithm: cert.spkiInfo.algorithm,
      fingerprint256: x509.fingerprint256,
    }
  } catch (err) {
    if (err instanceof DerError) throw new AppError(code, `${what} is malformed: ${err.message}`, {}, { cause: err })
    throw err
  }
}

/**
 * Parses one certificate: PEM (the first block, which must be a CERTIFICATE) or DER bytes. Throws
 * ERR_PKI_CERT_INVALID with the reason: not PEM, wrong label, malformed DER (which part), or refused by OpenSSL.
 */
export function parseCertificate (pem: string | Buffer): CertificateInfo {
  return info(parse(pem, 'ERR_PKI_CERT_INVALID', 'certificate'), 'ERR_PKI_CERT_INVALID', 'certificate')
}

/**
 * Every CERTIFICATE block of a PEM bundle, in order, each normalized (64-column base64, trailing newline). Blocks with
 * other labels (keys, CRLs) and text between blocks are skipped. Throws ERR_PKI_CERT_INVALID on a malformed block.
 */
export function splitPemChain (pem: string): string[] {
  try {
    return readPemBlocks(pem).filter((b) => b.label === 'CERTIFICATE').map((b) => toPem('CERTIFICATE', b.der))
  } catch (err) {
    throw new AppError('ERR_PKI_CERT_INVALID', err instanceof Error ? err.message : 'malformed PEM', {}, { cause: err })
  }
}

/**
 * True when `certPem` names `issuerPem`'s subject as its issuer (OpenSSL X509_check_issued: name, AKI/SKI and the
 * issuer's keyUsage) and its signature verifies with the issuer's key. False on any failure, including unparseable
 * input.
 */
export function verifyIssuedBy (certPem: string, issuerPem: string): boolean {
  try {
    const cert = parse(certPem, 'ERR_PKI_CERT_INVALID', 'certificate').x509
    const issuer = parse(issuerPem, 'ERR_PKI_CERT_INVALID', 'issuer certificate').x509
    return cert.checkIssued(issuer) && cert.verify(issuer.publicKey)
  } catch {
    return false
  }
}

/**
 * AWS IoT RegisterCACertificate proof of possession. The CA certificate must parse, be a CA (basicConstraints
 * cA=true; keyUsage, if present, allows keyCertSign), hold an allowed key and be valid at `nowMs`
 * (else ERR_PKI_CA_INVALID). The verification certificate must parse, have subject CN equal to `registrationCode`,
 * be signed by the CA certificate's key, name the CA as issuer and be valid at `nowMs`
 * (else ERR_PKI_VERIFICATION_FAILED).
 */
export function verifyCaRegistration (caPem: string, verificationCertPem: string, registrationCode: string, nowMs: number): void {
  const ca = parse(caPem, 'ERR_PKI_CA_INVALID', 'CA certificate')
  let caFlag: boolean
  try {
    caFlag = isCaCert(ca.cert)
  } catch (err) {
    throw new AppError('ERR_PKI_CA_INVALID', 'CA certificate has a malformed basicConstraints extension', {}, { cause: err })
  }
  if (!caFlag) throw new AppError('ERR_PKI_CA_INVALID', 'certificate is not a CA: basicConstraints cA is not true')
  if (!keyUsageAllows(ca.cert, 5)) throw new AppError('ERR_PKI_CA_INVALID', 'CA certificate keyUsage does not allow keyCertSign')
  if (ca.cert.spkiInfo.refusal !== undefined) throw new AppError('ERR_PKI_CA_INVALID', `CA certificate key is not allowed: ${ca.cert.spkiInfo.refusal}`)
  if (nowMs < ca.cert.notBeforeMs) throw new AppError('ERR_PKI_CA_INVALID', 'CA certificate is not yet valid')
  if (nowMs > ca.cert.notAfterMs) throw new AppError('ERR_PKI_CA_INVALID', 'CA certificate has expired')

  const v = parse(verificationCertPem, 'ERR_PKI_VERIFICATION_FAILED', 'verification certificate')
  let cn: string | undefined
  try {
    cn = lastCommonName(readName(v.cert.subjectName, readTlv(v.cert.subjectName, 0)))
  } catch (err) {
    throw new AppError('ERR_PKI_VERIFICATION_FAILED', 'verification certificate subject is malformed', {}, { cause: err })
  }
  if (cn === undefined) throw new AppError('ERR_PKI_VERIFICATION_FAILED', 'verification certificate has no subject CN')
  if (typeof registrationCode !== 'string' || cn !== registrationCode) {
    throw new AppError('ERR_PKI_VERIFICATION_FAILED', 'verification certificate subject CN does not match the registration code')
  }
  let signedByCa = false
  try {
    signedByCa = v.x509.verify(ca.x509.publicKey)
  } catch {
    signedByCa = false
  }
  if (!signedByCa) throw new AppError('ERR_PKI_VERIFICATION_FAILED', "verification certificate is not signed by the CA certificate's key")
  if (!v.x509.checkIssued(ca.x509)) throw new AppError('ERR_PKI_VERIFICATION_FAILED', 'verification certificate issuer does not name the CA certificate')
  if (nowMs < v.cert.notBeforeMs || nowMs > v.cert.notAfterMs) throw new AppError('ERR_PKI_VERIFICATION_FAILED', 'verification certificate is not valid at this time')
}
