import { createPublicKey, sign, verify } from 'node:crypto'
import type { KeyObject } from 'node:crypto'
import { AppError } from '../core/index.ts'
import { DerError, NULL_DER, TAG, bitString, children, expect, raw, readRoot, seq, tlv } from './der.ts'
import type { Tlv } from './der.ts'
import { assertKeyAllowed, inspectSpki, spkiOf } from './keys.ts'
import type { SpkiInfo } from './keys.ts'
import { buildName } from './names.ts'
import { OID, oidName } from './oids.ts'
import { readFirstPem, toPem } from './pem.ts'
import { assertCommonName } from './validate.ts'

/** A PKCS#10 request (RFC 2986) whose self-signature has been verified and whose key passed the policy. */
export interface ParsedCsr {
  readonly der: Buffer
  /** The subject Name DER, byte for byte. */
  readonly subjectName: Buffer
  readonly subjectNameTlv: Tlv
  /** SubjectPublicKeyInfo DER, byte for byte (copied verbatim into the certificate). */
  readonly spki: Buffer
  readonly spkiInfo: SpkiInfo
}

const CSR_LABELS = ['CERTIFICATE REQUEST', 'NEW CERTIFICATE REQUEST'] as const
/** Upper bound on CSR input (PEM or DER): a 16384-bit RSA CSR is under 5 KiB. */
const MAX_CSR_BYTES = 64 * 1024

const csrInvalid = (message: string, cause?: unknown): AppError =>
  new AppError('ERR_PKI_CSR_INVALID', message, {}, cause === undefined ? undefined : { cause })

/** Digest to verify a CSR signature with; SHA-1 and MD5 are refused (RFC 9155, NIST SP 800-131A). */
function verifyHash (name: string | undefined, family: SpkiInfo['family']): string | null {
  switch (name) {
    case 'ecdsaWithSha256': if (family === 'ec') return 'sha256'; break
    case 'ecdsaWithSha384': if (family === 'ec') return 'sha384'; break
    case 'ecdsaWithSha512': if (family === 'ec') return 'sha512'; break
    case 'sha256WithRsa': if (family === 'rsa') return 'sha256'; break
    case 'sha384WithRsa': if (family === 'rsa') return 'sha384'; break
    case 'sha512WithRsa': if (family === 'rsa') return 'sha512'; break
    case 'ed25519': if (family === 'ed25519') return null; break
    case 'sha1WithRsa':
    case 'ecdsaWithSha1':
    case 'md5WithRsa': throw csrInvalid(`CSR signature algorithm ${name} is not allowed: use SHA-256 or stronger`)
    case 'rsassaPss': throw csrInvalid('CSR signature algorithm RSASSA-PSS is not supported: use PKCS#1 v1.5 with SHA-256')
    default: throw csrInvalid('CSR signature algorithm is not supported')
  }
  throw csrInvalid('CSR signature algorithm does not match its key type')
}

/** PEM text or DER bytes → DER. A Buffer starting with 0x30 is DER; anything else is read as PEM text. */
function csrDer (csr: string | Buffer): Buffer {
  if (typeof csr !== 'string' && !Buffer.isBuffer(csr)) throw csrInvalid('CSR must be a PEM string or DER bytes')
  if (csr.length > MAX_CSR_BYTES) throw csrInvalid('CSR is larger than 64 KiB')
  if (Buffer.isBuffer(csr) && csr.length > 0 && csr[0] === TAG.SEQUENCE) return csr
  const text = typeof csr === 'string' ? csr : csr.toString('latin1')
  try {
    return readFirstPem(text, CSR_LABELS, 'CSR')
  } catch (err) {
    throw csrInvalid(err instanceof Error ? err.message : 'CSR is not PEM', err)
  }
}

/**
 * Parses a CSR, applies the key policy and verifies its self-signature.
 * Order: structure (ERR_PKI_CSR_INVALID) → key policy (ERR_PKI_KEY_WEAK) → signature (ERR_PKI_CSR_INVALID).
 */
export function parseAndVerifyCsr (csr: string | Buffer): ParsedCsr {
  const der = csrDer(csr)
  let cri: Buffer, subjectNameTlv: Tlv, spkiT: Tlv, spkiInfo: SpkiInfo, sigAlgName: string | undefined, signature: Buffer
  try {
    const root = readRoot(der, TAG.SEQUENCE, 'CertificationRequest')
    const criT = expect(der, root.valueStart, TAG.SEQUENCE, root.end, 'certificationRequestInfo')
    const sigAlgT = expect(der, criT.end, TAG.SEQUENCE, root.end, 'signatureAlgorithm')
    const sigT = expect(der, sigAlgT.end, TAG.BIT_STRING, root.end, 'signature')
    if (sigT.end !== root.end) throw new DerError('CertificationRequest has trailing elements')
    const versionT = expect(der, criT.valueStart, TAG.INTEGER, criT.end, 'version')
    if (versionT.end - versionT.valueStart !== 1 || der[versionT.valueStart] !== 0) throw new DerError('CSR version must be 0 (v1)')
    subjectNameTlv = expect(der, versionT.end, TAG.SEQUENCE, criT.end, 'subject')
    spkiT = expect(der, subjectNameTlv.end, TAG.SEQUENCE, criT.end, 'subjectPKInfo')
    const attrsT = expect(der, spkiT.end, 0xa0, criT.end, 'attributes')
    if (attrsT.end !== criT.end) throw new DerError('certificationRequestInfo has trailing elements')
    children(der, subjectNameTlv) // structural check of the Name
    spkiInfo = inspectSpki(der, spkiT)
    const sigOidT = expect(der, sigAlgT.valueStart, TAG.OID, sigAlgT.end, 'signature algorithm')
    if (sigOidT.end !== sigAlgT.end) {
      const p = expect(der, sigOidT.end, TAG.NULL, sigAlgT.end, 'signature algorithm parameters')
      if (p.end !== sigAlgT.end || p.valueStart !== p.end) throw new DerError('unexpected signature algorithm parameters')
    }
    sigAlgName = oidName(der, sigOidT)
    if (sigT.end - sigT.valueStart < 2 || der[sigT.valueStart] !== 0) throw new DerError('signature BIT STRING is empty or has unused bits')
    signature = der.subarray(sigT.valueStart + 1, sigT.end)
    cri = raw(der, criT)
  } catch (err) {
    if (err instanceof DerError) throw csrInvalid(`CSR is malformed: ${err.message}`, err)
    throw err
  }
  assertKeyAllowed(spkiInfo)
  const spki = raw(der, spkiT)
  const hashName = verifyHash(sigAlgName, spkiInfo.family)
  let key: KeyObject
  try {
    key = createPublicKey({ key: spki, format: 'der', type: 'spki' })
  } catch (err) {
    throw csrInvalid('CSR public key is invalid', err)
  }
  let ok = false
  try {
    ok = verify(hashName, cri, key, signature)
  } catch (err) {
    throw csrInvalid('CSR signature is malformed', err)
  }
  if (!ok) throw csrInvalid('CSR signature does not verify: the request was altered or not signed by its key')
  return { der, subjectName: raw(der, subjectNameTlv), subjectNameTlv, spki, spkiInfo }
}

/**
 * Template PKCS#10 request with subject CN=commonName and no attributes, signed with the key's natural algorithm
 * (ECDSA with SHA-256/384/512 by curve, sha256WithRSAEncryption, Ed25519).
 */
export function createCsr (opts: { privateKey: KeyObject, publicKey: KeyObject, commonName: string }): string {
  assertCommonName(opts.commonName)
  const spki = spkiOf(opts.publicKey)
  let algorithmId: Buffer, hashName: string | null
  switch (opts.privateKey.asymmetricKeyType) {
    case 'ec': {
      const curve = opts.privateKey.asymmetricKeyDetails?.namedCurve
      if (curve === 'secp384r1') { algorithmId = seq(OID.ecdsaWithSha384); hashName = 'sha384' } else if (curve === 'secp521r1') { algorithmId = seq(OID.ecdsaWithSha512); hashName = 'sha512' } else { algorithmId = seq(OID.ecdsaWithSha256); hashName = 'sha256' }
      break
    }
    case 'rsa': algorithmId = seq(OID.sha256WithRsa, NULL_DER); hashName = 'sha256'; break
    case 'ed25519': algorithmId = seq(OID.ed25519); hashName = null; break
    default: throw new AppError('ERR_PKI_INVALID_ARGUMENT', 'key type cannot sign a CSR', { keyType: String(opts.privateKey.asymmetricKeyType) })
  }
  const cri = seq(Buffer.from([TAG.INTEGER, 1, 0]), buildName([{ typeDer: OID.commonName, value: opts.commonName }]), spki, tlv(0xa0))
  let sig: Buffer
  try {
    sig = sign(hashName, cri, opts.privateKey)
  } catch (err) {
    throw new AppError('ERR_PKI_INVALID_ARGUMENT', 'private key cannot sign the CSR', {}, { cause: err })
  }
  return toPem('CERTIFICATE REQUEST', seq(cri, algorithmId, bitString(sig)))
}
