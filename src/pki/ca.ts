import { AppError } from '../core/index.ts'
import type { Signer } from './keys.ts'
import { DerError } from './der.ts'
import { isCaCert, keyUsageAllows, parseCertDer, subjectKeyId } from './cert-der.ts'
import type { CertDer } from './cert-der.ts'
import { assertKeyMatches, importCaPrivateKey, signerFor } from './keys.ts'
import { readFirstPem } from './pem.ts'
import { keyIdentifier } from './template.ts'

/** A CA certificate and its private key, checked against each other, with what signing needs precomputed. */
export interface LoadedCa {
  readonly cert: CertDer
  readonly signer: Signer
  /** The CA's subjectKeyIdentifier, or SHA-1 of its key bits when the certificate has none (RFC 5280 §4.2.1.2). */
  readonly keyId: Buffer
}

const caInvalid = (message: string, cause?: unknown): AppError =>
  new AppError('ERR_PKI_CA_INVALID', message, {}, cause === undefined ? undefined : { cause })

/** Parses the first CERTIFICATE block of `pem`; malformed input → ERR_PKI_CA_INVALID. */
export function readCaCertificate (pem: string): CertDer {
  if (typeof pem !== 'string') throw caInvalid('CA certificate must be a PEM string')
  let der: Buffer
  try {
    der = readFirstPem(pem, ['CERTIFICATE'], 'CA certificate')
  } catch (err) {
    throw caInvalid(err instanceof Error ? err.message : 'CA certificate is not PEM', err)
  }
  try {
    return parseCertDer(der)
  } catch (err) {
    if (err instanceof DerError) throw caInvalid(`CA certificate is malformed: ${err.message}`, err)
    throw err
  }
}

/**
 * Loads a CA for signing. Refuses a certificate that is not a CA, whose keyUsage lacks `requiredUsageBit`
 * (5 keyCertSign for issuing, 6 cRLSign for CRLs), or whose private key does not match.
 */
export function loadCa (certPem: string, privateKeyPkcs8Der: Buffer, requiredUsageBit: number): LoadedCa {
  const cert = readCaCertificate(certPem)
  let ca: boolean
  try {
    ca = isCaCert(cert)
  } catch (err) {
    throw caInvalid('CA certificate has a malformed basicConstraints extension', err)
  }
  if (!ca) throw caInvalid('certificate is not a CA: basicConstraints cA is not true')
  if (!keyUsageAllows(cert, requiredUsageBit)) {
    throw caInvalid(requiredUsageBit === 6 ? 'CA certificate keyUsage does not allow cRLSign' : 'CA certificate keyUsage does not allow keyCertSign')
  }
  if (!Buffer.isBuffer(privateKeyPkcs8Der)) throw caInvalid('CA private key must be PKCS#8 DER bytes')
  const privateKey = importCaPrivateKey(privateKeyPkcs8Der)
  assertKeyMatches(privateKey, cert.spki)
  let ski: Buffer | undefined
  try {
    ski = subjectKeyId(cert)
  } catch (err) {
    throw caInvalid('CA certificate has a malformed subjectKeyIdentifier extension', err)
  }
  return { cert, signer: signerFor(privateKey), keyId: ski ?? keyIdentifier(cert.spkiInfo.keyBits) }
}
