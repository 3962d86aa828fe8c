import { createPrivateKey, createPublicKey, generateKeyPairSync, hash, sign, verify } from 'node:crypto'
import type { KeyObject } from 'node:crypto'
import { canonicalJson, isRecord } from '../core/index.ts'
import { GENESIS_HASH } from './chain.ts'

/** Why a digest was signed. */
export const DigestReason = {
  /** The regular cadence (`digestIntervalMs`), signed even when no event arrived (CloudTrail does the same). */
  Interval: 'interval',
  /** The service started: covers whatever an unclean stop left unsigned. */
  Startup: 'startup',
  /** The service stopped cleanly: the last digest of a run covers every event of the run. */
  Shutdown: 'shutdown',
  /** Last digest under a retiring key; announces the next key (`nextKeyFingerprint`). */
  Rotation: 'rotation',
  /** Asked for by an operator (API or CLI). */
  Manual: 'manual',
} as const
export type DigestReason = (typeof DigestReason)[keyof typeof DigestReason]

/** The digest signature algorithm: ECDSA over P-256 with SHA-256 (FIPS 186-5), DER signature (RFC 3279 §2.2.3). */
export const DIGEST_ALGORITHM = 'ECDSA-P256-SHA256'

/**
 * A signed statement about a range of the event chain, chained to the previous digest like CloudTrail digest
 * files (`previousDigestHashValue` / `previousDigestSignature`). Because the event chain is linear, `lastHash`
 * (the hash of record `toSeq`) commits to every record up to `toSeq`; the digest chain commits to every earlier
 * digest. Serialized as canonical JSON; the signature is over those UTF-8 bytes.
 */
export interface Digest {
  readonly v: 1
  readonly digestSeq: number
  /** First record covered; `toSeq + 1` when the digest covers no new record. */
  readonly fromSeq: number
  /** Last record covered (the previous digest's `toSeq` when empty; 0 before any record). */
  readonly toSeq: number
  readonly count: number
  /** Hash of record `toSeq` (the chain head the digest signs), or the genesis hash before any record. */
  readonly lastHash: string
  /** `timeMs` of the first and last record covered (absent for an empty digest). */
  readonly startTimeMs?: number
  readonly endTimeMs?: number
  readonly signedAtMs: number
  readonly reason: DigestReason
  /** The cadence the signer was configured with, so a verifier can spot missing digests. */
  readonly intervalMs: number
  readonly prevDigestHash: string
  /** Hex signature of the previous digest ('' for the first). */
  readonly prevDigestSignature: string
  readonly algorithm: typeof DIGEST_ALGORITHM
  /** SHA-256 of the signing key's SubjectPublicKeyInfo DER, hex. */
  readonly keyFingerprint: string
  /** Set on a rotation digest: the key that signs the next digest. */
  readonly nextKeyFingerprint?: string
}

/** A digest as stored: the canonical body, its SHA-256 and the hex signature. */
export interface StoredDigest {
  readonly digestSeq: number
  readonly toSeq: number
  readonly signedAtMs: number
  readonly body: string
  readonly hash: string
  readonly signature: string
}

/** A published audit signing public key (CloudTrail `ListPublicKeys`). */
export interface AuditPublicKey {
  readonly fingerprint: string
  /** SubjectPublicKeyInfo, PEM. */
  readonly publicKeyPem: string
  readonly createdMs: number
  readonly retiredMs?: number
}

/** SHA-256 of a key's SubjectPublicKeyInfo DER (the public half of a private key), hex: how digests name their key. */
export function keyFingerprint (key: KeyObject): string {
  const publicKey = key.type === 'private' ? createPublicKey(key) : key
  return hash('sha256', publicKey.export({ type: 'spki', format: 'der' }), 'hex')
}

/** A fresh ECDSA P-256 key pair: PKCS#8 DER private key (to be sealed) and SPKI PEM public key. */
export function generateSigningKey (): { privateKeyPkcs8: Buffer, publicKeyPem: string, fingerprint: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  return {
    privateKeyPkcs8: privateKey.export({ type: 'pkcs8', format: 'der' }),
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    fingerprint: keyFingerprint(publicKey),
  }
}

/** Loads an unsealed PKCS#8 private key; checks it is P-256. */
export function privateKeyFromPkcs8 (der: Buffer): KeyObject {
  const key = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' })
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') throw new TypeError('audit signing key must be ECDSA P-256')
  return key
}

/** Serializes and signs a digest. */
export function signDigest (d: Digest, privateKey: KeyObject): StoredDigest {
  const body = canonicalJson(d)
  const signature = sign('sha256', Buffer.from(body, 'utf8'), { key: privateKey, dsaEncoding: 'der' }).toString('hex')
  return { digestSeq: d.digestSeq, toSeq: d.toSeq, signedAtMs: d.signedAtMs, body, hash: hash('sha256', body, 'hex'), signature }
}

/** Checks a digest signature with a public key (parsed, or PEM). Never throws for a bad signature or key. */
export function verifyDigestSignature (stored: StoredDigest, publicKey: KeyObject | string): boolean {
  try {
    const key = typeof publicKey === 'string' ? createPublicKey(publicKey) : publicKey
    return verify('sha256', Buffer.from(stored.body, 'utf8'), { key, dsaEncoding: 'der' }, Buffer.from(stored.signature, 'hex'))
  } catch {
    return false
  }
}

const HEX64 = /^[0-9a-f]{64}$/
const REASONS = new Set<string>(Object.values(DigestReason))
const int = (v: unknown, min = 0): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= min

/** Parses and shape-checks a stored digest body; returns a reason string when it is malformed. */
export function parseDigest (body: string): Digest | string {
  let d: unknown
  try { d = JSON.parse(body) } catch { return 'digest is not JSON' }
  if (!isRecord(d)) return 'digest is not a JSON object'
  if (d.v !== 1) return 'unknown digest version'
  if (!int(d.digestSeq, 1) || !int(d.fromSeq, 1) || !int(d.toSeq) || !int(d.count) || !int(d.signedAtMs) || !int(d.intervalMs)) return 'digest has malformed numbers'
  if (typeof d.lastHash !== 'string' || !HEX64.test(d.lastHash) || typeof d.prevDigestHash !== 'string' || !HEX64.test(d.prevDigestHash)) return 'digest has malformed hashes'
  if (typeof d.prevDigestSignature !== 'string' || typeof d.keyFingerprint !== 'string' || !HEX64.test(d.keyFingerprint)) return 'digest has a malformed key or signature reference'
  if (typeof d.reason !== 'string' || !REASONS.has(d.reason) || d.algorithm !== DIGEST_ALGORITHM) return 'digest has an unknown reason or algorithm'
  if (d.nextKeyFingerprint !== undefined && (typeof d.nextKeyFingerprint !== 'string' || !HEX64.test(d.nextKeyFingerprint))) return 'digest announces a malformed key'
  if (d.count !== d.toSeq - d.fromSeq + 1) return 'digest count does not match its range'
  if (canonicalJson(d) !== body) return 'digest is not in canonical form'
  return d as unknown as Digest
}

/** The digest before the first one, as a chain start. */
export const GENESIS_DIGEST = { hash: GENESIS_HASH, signature: '', toSeq: 0, lastHash: GENESIS_HASH } as const
