import { oid, value } from './der.ts'
import type { Tlv } from './der.ts'

/** Object identifiers used by the module, pre-encoded once (full DER TLV) so hot paths only copy bytes. */
export const OID = {
  // Key algorithms (RFC 5480, RFC 8410, RFC 3279)
  ecPublicKey: oid('1.2.840.10045.2.1'),
  rsaEncryption: oid('1.2.840.113549.1.1.1'),
  rsassaPss: oid('1.2.840.113549.1.1.10'),
  dsa: oid('1.2.840.10040.4.1'),
  dh: oid('1.2.840.10046.2.1'),
  ed25519: oid('1.3.101.112'),
  ed448: oid('1.3.101.113'),
  x25519: oid('1.3.101.110'),
  x448: oid('1.3.101.111'),
  // Named curves
  prime256v1: oid('1.2.840.10045.3.1.7'),
  secp384r1: oid('1.3.132.0.34'),
  secp521r1: oid('1.3.132.0.35'),
  // Signature algorithms (RFC 5758, RFC 4055, RFC 8410)
  ecdsaWithSha1: oid('1.2.840.10045.4.1'),
  ecdsaWithSha256: oid('1.2.840.10045.4.3.2'),
  ecdsaWithSha384: oid('1.2.840.10045.4.3.3'),
  ecdsaWithSha512: oid('1.2.840.10045.4.3.4'),
  md5WithRsa: oid('1.2.840.113549.1.1.4'),
  sha1WithRsa: oid('1.2.840.113549.1.1.5'),
  sha256WithRsa: oid('1.2.840.113549.1.1.11'),
  sha384WithRsa: oid('1.2.840.113549.1.1.12'),
  sha512WithRsa: oid('1.2.840.113549.1.1.13'),
  // Hashes (OCSP CertID)
  sha1: oid('1.3.14.3.2.26'),
  sha256: oid('2.16.840.1.101.3.4.2.1'),
  sha384: oid('2.16.840.1.101.3.4.2.2'),
  sha512: oid('2.16.840.1.101.3.4.2.3'),
  // Name attributes (X.520)
  commonName: oid('2.5.4.3'),
  organizationName: oid('2.5.4.10'),
  // Certificate and CRL extensions (RFC 5280 §4.2, §5.2, §5.3)
  subjectKeyIdentifier: oid('2.5.29.14'),
  keyUsage: oid('2.5.29.15'),
  subjectAltName: oid('2.5.29.17'),
  basicConstraints: oid('2.5.29.19'),
  crlNumber: oid('2.5.29.20'),
  crlReason: oid('2.5.29.21'),
  crlDistributionPoints: oid('2.5.29.31'),
  authorityKeyIdentifier: oid('2.5.29.35'),
  extKeyUsage: oid('2.5.29.37'),
  authorityInfoAccess: oid('1.3.6.1.5.5.7.1.1'),
  serverAuth: oid('1.3.6.1.5.5.7.3.1'),
  clientAuth: oid('1.3.6.1.5.5.7.3.2'),
  // OCSP (RFC 6960, RFC 8954)
  adOcsp: oid('1.3.6.1.5.5.7.48.1'),
  ocspBasic: oid('1.3.6.1.5.5.7.48.1.1'),
  ocspNonce: oid('1.3.6.1.5.5.7.48.1.2'),
} as const

export type OidName = keyof typeof OID

/** Lowercase hex of the OID *content* (no tag/length), the form the reader compares against. */
const contentHex = (der: Buffer): string => der.subarray(2).toString('hex')

const BY_CONTENT_HEX = new Map<string, OidName>()
for (const [name, der] of Object.entries(OID) as Array<[OidName, Buffer]>) BY_CONTENT_HEX.set(contentHex(der), name)

/** Looks up a known OID by the TLV read from `buf`; `undefined` when it is not one of ours. */
export function oidName (buf: Buffer, t: Tlv): OidName | undefined {
  return BY_CONTENT_HEX.get(buf.toString('hex', t.valueStart, t.end))
}

/** True when the OID TLV `t` in `buf` equals the pre-encoded `der`. */
export function oidEquals (buf: Buffer, t: Tlv, der: Buffer): boolean {
  return t.end - t.start === der.length && buf.compare(der, 0, der.length, t.start, t.end) === 0
}

export const oidContent = (buf: Buffer, t: Tlv): Buffer => value(buf, t)
