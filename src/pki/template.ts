import { createHash, hash, randomFillSync, sign } from 'node:crypto'
import { TAG, TRUE_DER, bitString, ctxCons, ctxPrim, octetString, seq, time, tlv, tlvList } from './der.ts'
import type { Signer } from './keys.ts'
import { OID } from './oids.ts'

/**
 * Certificate template encoder (RFC 5280 §4.1). Everything that does not change per certificate (version, signature
 * AlgorithmIdentifier, issuer Name, most extensions) is encoded once by the caller and copied; only the serial,
 * validity, subject, SPKI and SKI are encoded per certificate. No object tree, no generic ASN.1 library.
 */

/** `[0] EXPLICIT INTEGER 2` — X.509 v3. */
const VERSION_V3 = Buffer.from([0xa0, 0x03, 0x02, 0x01, 0x02])

// ---- Pre-encoded extension values -------------------------------------------------------------------------------

/** Extension ::= SEQUENCE { extnID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }. */
export function extension (oidDer: Buffer, critical: boolean, valueDer: Buffer): Buffer {
  return critical ? seq(oidDer, TRUE_DER, octetString(valueDer)) : seq(oidDer, octetString(valueDer))
}

/** KeyUsage bits (RFC 5280 §4.2.1.3), named for readability. */
export const KU = { digitalSignature: 0, keyEncipherment: 2, keyCertSign: 5, cRLSign: 6 } as const

/** KeyUsage BIT STRING value with minimal DER (trailing zero bits counted as unused). */
export function keyUsageValue (bits: readonly number[]): Buffer {
  let mask = 0
  for (const b of bits) mask |= 0x8000 >> b
  const bytes = mask & 0xff ? [mask >> 8, mask & 0xff] : [mask >> 8]
  const last = bytes[bytes.length - 1]
  let unused = 0
  while (unused < 8 && (last & (1 << unused)) === 0) unused++
  return tlv(TAG.BIT_STRING, Buffer.from([unused, ...bytes]))
}

export const EXT_BC_END_ENTITY = extension(OID.basicConstraints, true, seq())
export const extBcCa = (pathLen?: number): Buffer =>
  extension(OID.basicConstraints, true, pathLen === undefined ? seq(TRUE_DER) : seq(TRUE_DER, Buffer.from([TAG.INTEGER, 1, pathLen])))
export const extKeyUsage = (bits: readonly number[]): Buffer => extension(OID.keyUsage, true, keyUsageValue(bits))
export const extExtKeyUsage = (...purposeOids: Buffer[]): Buffer => extension(OID.extKeyUsage, false, seq(...purposeOids))
export const extSki = (keyId: Buffer): Buffer => extension(OID.subjectKeyIdentifier, false, octetString(keyId))
/** AuthorityKeyIdentifier with keyIdentifier [0] only (RFC 5280 §4.2.1.1). */
export const extAki = (keyId: Buffer): Buffer => extension(OID.authorityKeyIdentifier, false, seq(ctxPrim(0, keyId)))
/** One DistributionPoint with a fullName URI (RFC 5280 §4.2.1.13). */
export const extCrlDp = (url: string): Buffer =>
  extension(OID.crlDistributionPoints, false, seq(seq(ctxCons(0, ctxCons(0, ctxPrim(6, Buffer.from(url, 'latin1')))))))
/** AuthorityInfoAccess with one id-ad-ocsp URI (RFC 5280 §4.2.2.1). */
export const extAiaOcsp = (url: string): Buffer =>
  extension(OID.authorityInfoAccess, false, seq(seq(OID.adOcsp, ctxPrim(6, Buffer.from(url, 'latin1')))))

/** RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey BIT STRING value. */
export const keyIdentifier = (keyBits: Buffer): Buffer => createHash('sha1').update(keyBits).digest()

// ---- Serial numbers ---------------------------------------------------------------------------------------------

let serialPool = Buffer.alloc(0)
let serialOffset = 0

/**
 * A fresh positive 16-octet serial (CA/B Forum BR §7.1 asks for ≥ 64 bits of CSPRNG output; we use 126). The top
 * two bits are forced to 01 so the INTEGER needs no 00 pad and is never shortened: serialHex is always 32 digits.
 */
export function randomSerial (): { der: Buffer, hex: string } {
  if (serialOffset + 16 > serialPool.length) {
    serialPool = randomFillSync(Buffer.allocUnsafe(16 * 256))
    serialOffset = 0
  }
  const der = Buffer.allocUnsafe(18)
  der[0] = TAG.INTEGER
  der[1] = 16
  serialPool.copy(der, 2, serialOffset, serialOffset + 16)
  serialPool.fill(0, serialOffset, serialOffset + 16)
  serialOffset += 16
  der[2] = (der[2] & 0x3f) | 0x40
  return { der, hex: der.toString('hex', 2) }
}

// ---- Assembly ---------------------------------------------------------------------------------------------------

export interface CertParts {
  readonly signer: Signer
  /** Serial INTEGER TLV. */
  readonly serialDer: Buffer
  /** Issuer Name DER (the CA certificate's subject, byte for byte). */
  readonly issuerName: Buffer
  readonly notBeforeMs: number
  readonly notAfterMs: number
  readonly subjectName: Buffer
  readonly spki: Buffer
  /** Encoded Extension TLVs, in order. */
  readonly extensions: readonly Buffer[]
}

/** Encodes and signs a v3 certificate; returns its DER. */
export function buildCertificate (p: CertParts): Buffer {
  const tbs = seq(
    VERSION_V3,
    p.serialDer,
    p.signer.algorithmId,
    p.issuerName,
    seq(time(p.notBeforeMs), time(p.notAfterMs)),
    p.subjectName,
    p.spki,
    ctxCons(3, tlvList(TAG.SEQUENCE, p.extensions)),
  )
  return signed(tbs, p.signer)
}

/** SEQUENCE { tbs, signatureAlgorithm, signature BIT STRING }: the shape of Certificate, CertificateList and BasicOCSPResponse. */
export function signed (tbs: Buffer, signer: Signer, trailer?: Buffer): Buffer {
  const sig = sign(signer.hash, tbs, signer.privateKey)
  return trailer === undefined ? seq(tbs, signer.algorithmId, bitString(sig)) : seq(tbs, signer.algorithmId, bitString(sig), trailer)
}

/** Lowercase hex SHA-256 of the DER: the certificate id AWS IoT uses. */
export const certificateIdOf = (der: Buffer): string => hash('sha256', der, 'hex')
