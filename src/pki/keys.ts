import { createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto'
import type { KeyObject } from 'node:crypto'
import { AppError } from '../core/index.ts'
import { DerError, NULL_DER, TAG, bitLength, children, expect, oidToString, readRoot, seq, value } from './der.ts'
import type { Tlv } from './der.ts'
import { OID, oidName } from './oids.ts'

export type KeyAlgorithm = 'EC-P256' | 'EC-P384' | 'RSA-2048' | 'RSA-3072' | 'Ed25519'

/** Curve OIDs we name in refusals (SEC 2 names, as the brief and OpenSSL's `-text` use them). */
const CURVE_NAMES: Readonly<Record<string, string>> = {
  '1.2.840.10045.3.1.1': 'secp192r1',
  '1.3.132.0.33': 'secp224r1',
  '1.3.132.0.10': 'secp256k1',
  '1.2.840.10045.3.1.7': 'P-256',
  '1.3.132.0.34': 'P-384',
  '1.3.132.0.35': 'P-521',
  '1.3.36.3.3.2.8.1.1.7': 'brainpoolP256r1',
  '1.3.36.3.3.2.8.1.1.11': 'brainpoolP384r1',
  '1.3.36.3.3.2.8.1.1.13': 'brainpoolP512r1',
}

/** Smallest RSA modulus we accept (NIST SP 800-131A Rev. 2: 112-bit security). */
export const MIN_RSA_BITS = 2048
/** Largest RSA modulus we accept: bounds the cost an attacker can impose with one CSR. */
export const MAX_RSA_BITS = 16384

/** What the module learned from a SubjectPublicKeyInfo. */
export interface SpkiInfo {
  /** 'EC-P256', 'EC-P384', 'EC-P521', 'RSA-<bits>', 'Ed25519', else 'EC-<curve>', 'DSA', 'Ed448', … or the OID. */
  readonly algorithm: string
  readonly family: 'ec' | 'rsa' | 'ed25519' | 'other'
  /** The subjectPublicKey BIT STRING content without its unused-bits octet (input to SKI and OCSP key hashes). */
  readonly keyBits: Buffer
  /** Why our policy refuses the key, or undefined when it is allowed. */
  readonly refusal?: string
}

const ALLOWED_HINT = 'use EC P-256/P-384, Ed25519 or RSA >= 2048'

/**
 * Reads a SubjectPublicKeyInfo (RFC 5280 §4.1.2.7) at `t` and applies the key policy: EC on P-256, P-384 or P-521
 * (named curves only), Ed25519, RSA with 2048..16384-bit modulus and an odd exponent >= 3. Throws DerError when the
 * structure is malformed. The caller still has to let OpenSSL parse the key (point on curve etc.).
 */
export function inspectSpki (buf: Buffer, t: Tlv): SpkiInfo {
  if (t.tag !== TAG.SEQUENCE) throw new DerError('SubjectPublicKeyInfo is not a SEQUENCE')
  const algT = expect(buf, t.valueStart, TAG.SEQUENCE, t.end, 'SubjectPublicKeyInfo.algorithm')
  const bitsT = expect(buf, algT.end, TAG.BIT_STRING, t.end, 'SubjectPublicKeyInfo.subjectPublicKey')
  if (bitsT.end !== t.end) throw new DerError('SubjectPublicKeyInfo has trailing elements')
  if (bitsT.end - bitsT.valueStart < 2 || buf[bitsT.valueStart] !== 0) throw new DerError('subjectPublicKey BIT STRING is empty or has unused bits')
  const keyBits = buf.subarray(bitsT.valueStart + 1, bitsT.end)
  const oidT = expect(buf, algT.valueStart, TAG.OID, algT.end, 'key algorithm')
  const paramsT = oidT.end < algT.end ? readParam(buf, oidT.end, algT.end) : undefined
  const name = oidName(buf, oidT)
  switch (name) {
    case 'ecPublicKey': {
      if (paramsT === undefined || paramsT.tag === TAG.NULL) return { algorithm: 'EC', family: 'ec', keyBits, refusal: 'EC keys without a named curve are not allowed: use P-256 or P-384' }
      if (paramsT.tag === TAG.SEQUENCE) return { algorithm: 'EC-explicit', family: 'ec', keyBits, refusal: 'EC keys with explicit curve parameters are not allowed: use P-256 or P-384' }
      if (paramsT.tag !== TAG.OID) throw new DerError('EC parameters are neither a named curve nor explicit parameters')
      const curve = oidName(buf, paramsT)
      if (curve === 'prime256v1') return { algorithm: 'EC-P256', family: 'ec', keyBits }
      if (curve === 'secp384r1') return { algorithm: 'EC-P384', family: 'ec', keyBits }
      if (curve === 'secp521r1') return { algorithm: 'EC-P521', family: 'ec', keyBits }
      const dotted = oidToString(value(buf, paramsT))
      const curveName = CURVE_NAMES[dotted] ?? dotted
      return { algorithm: `EC-${curveName}`, family: 'ec', keyBits, refusal: `EC curve ${curveName} is not allowed: use P-256 or P-384` }
    }
    case 'rsaEncryption': {
      if (paramsT !== undefined && paramsT.tag !== TAG.NULL) throw new DerError('rsaEncryption parameters must be NULL')
      const rsaT = readRoot(keyBits, TAG.SEQUENCE, 'RSAPublicKey')
      const [nT, eT, extra] = children(keyBits, rsaT)
      if (nT === undefined || eT === undefined || extra !== undefined || nT.tag !== TAG.INTEGER || eT.tag !== TAG.INTEGER) throw new DerError('malformed RSAPublicKey')
      const n = value(keyBits, nT)
      const e = value(keyBits, eT)
      if (n.length === 0 || (n[0] & 0x80) !== 0 || e.length === 0 || (e[0] & 0x80) !== 0) throw new DerError('RSA modulus or exponent is not a positive INTEGER')
      const bits = bitLength(n)
      const algorithm = `RSA-${bits}`
      if (bits < MIN_RSA_BITS) return { algorithm, family: 'rsa', keyBits, refusal: `RSA key of ${bits} bits is too weak: minimum ${MIN_RSA_BITS}` }
      if (bits > MAX_RSA_BITS) return { algorithm, family: 'rsa', keyBits, refusal: `RSA key of ${bits} bits is too large: maximum ${MAX_RSA_BITS}` }
      if ((e[e.length - 1] & 1) === 0 || bitLength(e) < 2) return { algorithm, family: 'rsa', keyBits, refusal: 'RSA public exponent must be odd and at least 3' }
      return { algorithm, family: 'rsa', keyBits }
    }
    case 'ed25519':
      if (paramsT !== undefined) throw new DerError('Ed25519 key algorithm must not have parameters')
      if (keyBits.length !== 32) throw new DerError('Ed25519 public key must be 32 bytes')
      return { algorithm: 'Ed25519', family: 'ed25519', keyBits }
    case 'dsa': return { algorithm: 'DSA', family: 'other', keyBits, refusal: 'DSA keys are not allowed' }
    case 'rsassaPss': return { algorithm: 'RSASSA-PSS', family: 'other', keyBits, refusal: `RSASSA-PSS-only keys are not allowed: ${ALLOWED_HINT}` }
    case 'ed448': return { algorithm: 'Ed448', family: 'other', keyBits, refusal: `Ed448 keys are not allowed: ${ALLOWED_HINT}` }
    case 'x25519':
    case 'x448':
    case 'dh': return { algorithm: name === 'dh' ? 'DH' : name.toUpperCase(), family: 'other', keyBits, refusal: 'key-agreement keys cannot sign: not allowed' }
    default: {
      const dotted = oidToString(value(buf, oidT))
      return { algorithm: dotted, family: 'other', keyBits, refusal: `key algorithm ${dotted} is not allowed: ${ALLOWED_HINT}` }
    }
  }
}

function readParam (buf: Buffer, off: number, end: number): Tlv {
  const p = expect(buf, off, buf[off], end)
  if (p.end !== end) throw new DerError('AlgorithmIdentifier has trailing elements')
  return p
}

/** Throws ERR_PKI_KEY_WEAK when the SPKI is refused by policy. */
export function assertKeyAllowed (info: SpkiInfo): void {
  if (info.refusal !== undefined) throw new AppError('ERR_PKI_KEY_WEAK', info.refusal, { keyAlgorithm: info.algorithm })
}

/** A private key plus everything needed to sign X.509 structures with it, precomputed once. */
export interface Signer {
  readonly privateKey: KeyObject
  /** Digest for `crypto.sign`; null for Ed25519. */
  readonly hash: string | null
  /** The AlgorithmIdentifier DER (RFC 5758 ECDSA: no parameters; RFC 4055 PKCS#1 v1.5: NULL; RFC 8410: none). */
  readonly algorithmId: Buffer
  /** Key family, e.g. to decide device key usages. */
  readonly family: 'ec' | 'rsa' | 'ed25519'
}

/** ecdsa-with-SHA256 for P-256, SHA384 for P-384, SHA512 for P-521, sha256WithRSAEncryption for RSA, Ed25519 pure. */
export function signerFor (privateKey: KeyObject): Signer {
  if (privateKey.type !== 'private') throw new AppError('ERR_PKI_CA_INVALID', 'CA key is not a private key')
  switch (privateKey.asymmetricKeyType) {
    case 'ec': {
      const curve = privateKey.asymmetricKeyDetails?.namedCurve
      if (curve === 'prime256v1') return { privateKey, hash: 'sha256', algorithmId: seq(OID.ecdsaWithSha256), family: 'ec' }
      if (curve === 'secp384r1') return { privateKey, hash: 'sha384', algorithmId: seq(OID.ecdsaWithSha384), family: 'ec' }
      if (curve === 'secp521r1') return { privateKey, hash: 'sha512', algorithmId: seq(OID.ecdsaWithSha512), family: 'ec' }
      throw new AppError('ERR_PKI_CA_INVALID', 'CA EC key must be on P-256, P-384 or P-521')
    }
    case 'rsa': {
      const bits = privateKey.asymmetricKeyDetails?.modulusLength ?? 0
      if (bits < MIN_RSA_BITS) throw new AppError('ERR_PKI_CA_INVALID', 'CA RSA key is shorter than 2048 bits')
      return { privateKey, hash: 'sha256', algorithmId: seq(OID.sha256WithRsa, NULL_DER), family: 'rsa' }
    }
    case 'ed25519': return { privateKey, hash: null, algorithmId: seq(OID.ed25519), family: 'ed25519' }
    default: throw new AppError('ERR_PKI_CA_INVALID', 'CA key type is not supported: use EC P-256/P-384, RSA or Ed25519')
  }
}

/** Imports a PKCS#8 DER private key, translating OpenSSL's failure into ERR_PKI_CA_INVALID. */
export function importCaPrivateKey (pkcs8Der: Buffer): KeyObject {
  try {
    return createPrivateKey({ key: pkcs8Der, format: 'der', type: 'pkcs8' })
  } catch (err) {
    throw new AppError('ERR_PKI_CA_INVALID', 'CA private key is not a valid PKCS#8 DER key', {}, { cause: err })
  }
}

/** Throws ERR_PKI_CA_INVALID unless `privateKey` is the private half of `certSpki`. */
export function assertKeyMatches (privateKey: KeyObject, certSpki: Buffer): void {
  let certKey: KeyObject
  try {
    certKey = createPublicKey({ key: certSpki, format: 'der', type: 'spki' })
  } catch (err) {
    throw new AppError('ERR_PKI_CA_INVALID', 'CA certificate public key cannot be imported', {}, { cause: err })
  }
  if (!certKey.equals(createPublicKey(privateKey))) throw new AppError('ERR_PKI_CA_INVALID', 'CA private key does not match the CA certificate')
}

const GEN_PARAMS = {
  'EC-P256': { type: 'ec', namedCurve: 'P-256' },
  'EC-P384': { type: 'ec', namedCurve: 'P-384' },
  'RSA-2048': { type: 'rsa', modulusLength: 2048 },
  'RSA-3072': { type: 'rsa', modulusLength: 3072 },
  Ed25519: { type: 'ed25519' },
} as const

export const KEY_ALGORITHMS: readonly KeyAlgorithm[] = Object.keys(GEN_PARAMS) as KeyAlgorithm[]

/**
 * Generates a key pair. PEMs are PKCS#8 ('PRIVATE KEY') and SPKI ('PUBLIC KEY'). RSA uses e = 65537. RSA-3072 takes
 * tens to hundreds of milliseconds; use EC for bulk provisioning.
 */
export function generateKeyPair (alg: KeyAlgorithm): { publicKey: KeyObject, privateKey: KeyObject, privateKeyPem: string, publicKeyPem: string } {
  const p = GEN_PARAMS[alg]
  if (p === undefined) throw new AppError('ERR_PKI_INVALID_ARGUMENT', 'unknown key algorithm', { algorithm: String(alg) })
  let pair: { publicKey: KeyObject, privateKey: KeyObject }
  switch (p.type) {
    case 'ec': pair = generateKeyPairSync('ec', { namedCurve: p.namedCurve }); break
    case 'rsa': pair = generateKeyPairSync('rsa', { modulusLength: p.modulusLength, publicExponent: 0x10001 }); break
    case 'ed25519': pair = generateKeyPairSync('ed25519'); break
  }
  return {
    publicKey: pair.publicKey,
    privateKey: pair.privateKey,
    privateKeyPem: pair.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    publicKeyPem: pair.publicKey.export({ type: 'spki', format: 'pem' }) as string,
  }
}

/** SPKI DER of a public key (or of a private key's public half). */
export function spkiOf (key: KeyObject): Buffer {
  const pub = key.type === 'private' ? createPublicKey(key) : key
  if (pub.type !== 'public') throw new AppError('ERR_PKI_INVALID_ARGUMENT', 'a public or private asymmetric key is required')
  return pub.export({ type: 'spki', format: 'der' })
}
