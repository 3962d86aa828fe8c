import { DerError, TAG, children, expect, oidToString, raw, readTlv, seq, set, tlvList, utf8String, value } from './der.ts'
import type { Tlv } from './der.ts'
import { OID, oidEquals } from './oids.ts'

/**
 * X.501 Names. Strings are rendered in RFC 4514 form (most specific RDN first, e.g. `CN=dev-1,O=Acme`), the one
 * convention the whole module uses for `subject` and `issuer`.
 */

/** Short names for the attribute types RFC 4514 §3 defines, plus serialNumber; others print as dotted OIDs. */
const SHORT_NAMES: Readonly<Record<string, string>> = {
  '2.5.4.3': 'CN',
  '2.5.4.5': 'SERIALNUMBER',
  '2.5.4.6': 'C',
  '2.5.4.7': 'L',
  '2.5.4.8': 'ST',
  '2.5.4.9': 'STREET',
  '2.5.4.10': 'O',
  '2.5.4.11': 'OU',
  '0.9.2342.19200300.100.1.25': 'DC',
  '0.9.2342.19200300.100.1.1': 'UID',
  '1.2.840.113549.1.9.1': 'emailAddress',
}

export interface Attribute {
  /** Dotted OID of the attribute type. */
  readonly type: string
  readonly value: string
}

/** Encodes a Name from (type, value) pairs in encoding order; one attribute per RDN; values as UTF8String. */
export function buildName (attrs: ReadonlyArray<{ typeDer: Buffer, value: string }>): Buffer {
  return seq(...attrs.map((a) => set(seq(a.typeDer, utf8String(a.value)))))
}

/** Decodes a directory string (X.520 DirectoryString and the IA5/Numeric types some attributes use). */
export function decodeString (buf: Buffer, t: Tlv): string {
  const v = value(buf, t)
  switch (t.tag) {
    case TAG.UTF8_STRING: return v.toString('utf8')
    case TAG.PRINTABLE_STRING:
    case TAG.IA5_STRING:
    case TAG.NUMERIC_STRING:
    case TAG.TELETEX_STRING: return v.toString('latin1')
    case TAG.BMP_STRING: {
      if (v.length % 2 !== 0) throw new DerError('odd-length BMPString')
      const swapped = Buffer.from(v)
      swapped.swap16()
      return swapped.toString('utf16le')
    }
    case TAG.UNIVERSAL_STRING: {
      if (v.length % 4 !== 0) throw new DerError('malformed UniversalString')
      let s = ''
      for (let i = 0; i < v.length; i += 4) s += String.fromCodePoint(v.readUInt32BE(i))
      return s
    }
    default: throw new DerError(`unsupported string type 0x${t.tag.toString(16)}`)
  }
}

/** RDNs of a Name (SEQUENCE OF SET OF AttributeTypeAndValue), each as its attributes in encoding order. */
export function readName (buf: Buffer, nameTlv: Tlv): Attribute[][] {
  const rdns: Attribute[][] = []
  for (const rdn of children(buf, nameTlv)) {
    if (rdn.tag !== TAG.SET) throw new DerError('Name: RDN is not a SET')
    const atvs = children(buf, rdn)
    if (atvs.length === 0) throw new DerError('Name: empty RDN')
    rdns.push(atvs.map((atv) => {
      if (atv.tag !== TAG.SEQUENCE) throw new DerError('Name: attribute is not a SEQUENCE')
      const [typeT, valT, extra] = children(buf, atv)
      if (typeT === undefined || valT === undefined || extra !== undefined || typeT.tag !== TAG.OID) throw new DerError('Name: malformed attribute')
      return { type: oidToString(value(buf, typeT)), value: decodeString(buf, valT) }
    }))
  }
  return rdns
}

/** RFC 4514 §2.4 escaping of one attribute value. */
export function escapeValue (v: string): string {
  let out = v.replace(/[\\,+"<>;]/g, (c) => '\\' + c).replace(/\0/g, '\\00')
  if (out.startsWith(' ') || out.startsWith('#')) out = '\\' + out
  if (out.endsWith(' ') && out.length > 1) out = out.slice(0, -1) + '\\ '
  return out
}

/** RFC 4514 string of a decoded Name (last RDN first, `+` inside multi-valued RDNs). */
export function formatRdns (rdns: Attribute[][]): string {
  const parts: string[] = []
  for (let i = rdns.length - 1; i >= 0; i--) {
    parts.push(rdns[i].map((a) => `${SHORT_NAMES[a.type] ?? a.type}=${escapeValue(a.value)}`).join('+'))
  }
  return parts.join(',')
}

/** RFC 4514 string of the Name DER at `nameTlv`. */
export function formatName (buf: Buffer, nameTlv: Tlv = readTlv(buf, 0)): string {
  return formatRdns(readName(buf, nameTlv))
}

/** The most specific (last) commonName, if any. */
export function lastCommonName (rdns: Attribute[][]): string | undefined {
  for (let i = rdns.length - 1; i >= 0; i--) {
    for (const a of rdns[i]) if (a.type === '2.5.4.3') return a.value
  }
  return undefined
}

/**
 * Rewrites a Name so that its only commonName is `commonName`: every CN attribute is removed (an RDN left empty is
 * dropped), the other RDNs are kept byte for byte, and `CN=commonName` is appended as the most specific RDN.
 */
export function replaceCommonName (buf: Buffer, nameTlv: Tlv, commonName: string): Buffer {
  const kept: Buffer[] = []
  for (const rdn of children(buf, nameTlv)) {
    const atvs = children(buf, rdn)
    const nonCn = atvs.filter((atv) => !oidEquals(buf, expect(buf, atv.valueStart, TAG.OID, atv.end, 'Name attribute type'), OID.commonName))
    if (nonCn.length === atvs.length) kept.push(raw(buf, rdn))
    else if (nonCn.length > 0) kept.push(tlvList(TAG.SET, nonCn.map((a) => raw(buf, a))))
  }
  kept.push(set(seq(OID.commonName, utf8String(commonName))))
  return tlvList(TAG.SEQUENCE, kept)
}
