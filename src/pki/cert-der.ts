import { DerError, TAG, children, expect, parseTime, raw, readRoot, readTlv, value } from './der.ts'
import type { Tlv } from './der.ts'
import { inspectSpki } from './keys.ts'
import type { SpkiInfo } from './keys.ts'
import { oidName } from './oids.ts'
import type { OidName } from './oids.ts'

/** The parts of an X.509 certificate (RFC 5280 §4.1) the module needs, as slices of the original DER. */
export interface CertDer {
  readonly der: Buffer
  readonly tbs: Buffer
  /** 1, 2 or 3. */
  readonly version: number
  /** INTEGER content octets (two's complement, as encoded). */
  readonly serialContent: Buffer
  readonly issuerName: Buffer
  readonly subjectName: Buffer
  readonly notBeforeMs: number
  readonly notAfterMs: number
  readonly spki: Buffer
  readonly spkiInfo: SpkiInfo
  /** Extensions by known name; unknown extensions are skipped (their criticality is OpenSSL's concern). */
  readonly extensions: ReadonlyMap<OidName, { critical: boolean, value: Buffer }>
}

/**
 * Serial number convention used everywhere in this module (certificates, CRL entries, OCSP lookups): lowercase hex of
 * the DER INTEGER content octets, with the single 00 pad octet that DER adds before a set high bit removed. Serials we
 * issue are 16 random octets with the top bits set to 01, so they are always 32 hex digits beginning 4..7, contain no
 * pad, and equal `X509Certificate.serialNumber.toLowerCase()` and OpenSSL's serial output.
 */
export function serialHexOf (content: Buffer): string {
  const start = content.length > 1 && content[0] === 0 && (content[1] & 0x80) !== 0 ? 1 : 0
  return content.toString('hex', start)
}

/** Parses certificate DER; throws DerError with the failing part on malformed input. */
export function parseCertDer (der: Buffer): CertDer {
  const certT = readRoot(der, TAG.SEQUENCE, 'Certificate')
  const [tbsT, sigAlgT, sigT, extra] = children(der, certT)
  if (tbsT === undefined || sigAlgT === undefined || sigT === undefined || extra !== undefined) throw new DerError('Certificate must have exactly three elements')
  if (tbsT.tag !== TAG.SEQUENCE || sigAlgT.tag !== TAG.SEQUENCE || sigT.tag !== TAG.BIT_STRING) throw new DerError('Certificate elements have the wrong types')
  const fields = children(der, tbsT)
  let i = 0
  let version = 1
  if (fields[0]?.tag === 0xa0) {
    const vT = expect(der, fields[0].valueStart, TAG.INTEGER, fields[0].end, 'version')
    const v = value(der, vT)
    if (v.length !== 1 || v[0] > 2) throw new DerError('unsupported certificate version')
    version = v[0] + 1
    i = 1
  }
  const need = (tag: number, what: string): Tlv => {
    const t = fields[i++]
    if (t === undefined || t.tag !== tag) throw new DerError(`TBSCertificate.${what} is missing or has the wrong type`)
    return t
  }
  const serialT = need(TAG.INTEGER, 'serialNumber')
  need(TAG.SEQUENCE, 'signature')
  const issuerT = need(TAG.SEQUENCE, 'issuer')
  const validityT = need(TAG.SEQUENCE, 'validity')
  const subjectT = need(TAG.SEQUENCE, 'subject')
  const spkiT = need(TAG.SEQUENCE, 'subjectPublicKeyInfo')
  const extensions = new Map<OidName, { critical: boolean, value: Buffer }>()
  for (; i < fields.length; i++) {
    const f = fields[i]
    if (f.tag === 0xa1 || f.tag === 0xa2) continue // issuerUniqueID / subjectUniqueID (v2, obsolete)
    if (f.tag !== 0xa3) throw new DerError('unexpected element in TBSCertificate')
    const extsT = expect(der, f.valueStart, TAG.SEQUENCE, f.end, 'extensions')
    for (const e of children(der, extsT)) {
      const parts = children(der, e)
      const oidT = parts[0]
      if (oidT === undefined || oidT.tag !== TAG.OID) throw new DerError('malformed extension')
      let critical = false
      let valT = parts[1]
      if (valT?.tag === TAG.BOOLEAN) { critical = der[valT.valueStart] !== 0; valT = parts[2] }
      if (valT === undefined || valT.tag !== TAG.OCTET_STRING) throw new DerError('malformed extension value')
      const name = oidName(der, oidT)
      if (name !== undefined) {
        if (extensions.has(name)) throw new DerError(`duplicate ${name} extension`)
        extensions.set(name, { critical, value: value(der, valT) })
      }
    }
  }
  const [nbT, naT] = children(der, validityT)
  if (nbT === undefined || naT === undefined) throw new DerError('malformed validity')
  const serialContent = value(der, serialT)
  if (serialContent.length === 0) throw new DerError('empty serial number')
  return {
    der,
    tbs: raw(der, tbsT),
    version,
    serialContent,
    issuerName: raw(der, issuerT),
    subjectName: raw(der, subjectT),
    notBeforeMs: parseTime(der, nbT),
    notAfterMs: parseTime(der, naT),
    spki: raw(der, spkiT),
    spkiInfo: inspectSpki(der, spkiT),
    extensions,
  }
}

/** basicConstraints cA (RFC 5280 §4.2.1.9); false when the extension is absent. */
export function isCaCert (c: CertDer): boolean {
  const bc = c.extensions.get('basicConstraints')
  if (bc === undefined) return false
  const seqT = readRoot(bc.value, TAG.SEQUENCE, 'basicConstraints')
  const first = seqT.valueStart < seqT.end ? readTlv(bc.value, seqT.valueStart, seqT.end) : undefined
  return first?.tag === TAG.BOOLEAN && bc.value[first.valueStart] !== 0
}

/** keyIdentifier of the subjectKeyIdentifier extension, if present. */
export function subjectKeyId (c: CertDer): Buffer | undefined {
  const ski = c.extensions.get('subjectKeyIdentifier')
  if (ski === undefined) return undefined
  return value(ski.value, readRoot(ski.value, TAG.OCTET_STRING, 'subjectKeyIdentifier'))
}

/** True when keyUsage is absent or asserts bit `bit` (0 = digitalSignature, 5 = keyCertSign, 6 = cRLSign). */
export function keyUsageAllows (c: CertDer, bit: number): boolean {
  const ku = c.extensions.get('keyUsage')
  if (ku === undefined) return true
  const bs = value(ku.value, readRoot(ku.value, TAG.BIT_STRING, 'keyUsage'))
  const byte = bs[1 + (bit >> 3)]
  return byte !== undefined && (byte & (0x80 >> (bit & 7))) !== 0
}
