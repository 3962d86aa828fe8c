import { randomBytes, randomUUID } from 'node:crypto'

/** A prefixed random id, e.g. `evt_3f2a…`. Prefixes make ids self-describing in logs. */
export function newId (prefix: string, bytes = 12): string {
  return `${prefix}_${randomBytes(bytes).toString('hex')}`
}

export const newUuid = (): string => randomUUID()

/**
 * AWS access key ids are 20 upper-case alphanumerics starting with a 4-letter type prefix (`AKIA` for long-term
 * keys, `ASIA` for temporary). We keep the shape so SDKs and CLIs that sanity-check it accept ours.
 */
export function newAccessKeyId (prefix: 'AKIA' | 'ASIA' = 'AKIA'): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'
  const bytes = randomBytes(16)
  let out = prefix
  for (let i = 0; i < 16; i++) out += alphabet[bytes[i] & 31]
  return out
}

/** 40 characters of base64 without `+/=` ambiguity issues, as AWS secret keys look. */
export function newSecretAccessKey (): string {
  return randomBytes(30).toString('base64')
}

/**
 * A certificate's id (AWS style: lower-case hex SHA-256 of its DER) from node:crypto's `fingerprint256`
 * (upper-case hex pairs joined by `:`), as a TLS peer certificate gives it.
 */
export const certificateIdFromFingerprint = (fingerprint256: string): string => fingerprint256.replace(/:/g, '').toLowerCase()

/**
 * The audit actor for a device known only by its TLS certificate (no principal yet): `cert/{id}`, as in the
 * certificate's ARN, the same from the MQTT gateway and the HTTPS data plane so one search finds both.
 */
export const certificateActor = (fingerprint256: string): string => `cert/${certificateIdFromFingerprint(fingerprint256)}`
