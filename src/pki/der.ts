/**
 * A deliberately small DER writer and reader (ITU-T X.690 §8 and §10) for the PKI hot paths: certificate templates,
 * CSR parsing, CRLs and OCSP. Generic ASN.1 libraries build object trees and manage only hundreds of certificates
 * per second; these helpers work directly on Buffers. Only single-byte tags (tag numbers 0..30) are supported,
 * which covers every structure X.509, PKCS#10, CRL and OCSP use.
 */

export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  ENUMERATED: 0x0a,
  UTF8_STRING: 0x0c,
  NUMERIC_STRING: 0x12,
  PRINTABLE_STRING: 0x13,
  TELETEX_STRING: 0x14,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  UNIVERSAL_STRING: 0x1c,
  BMP_STRING: 0x1e,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const

/** Raised by the reader on malformed input; callers translate it into an AppError with their own code. */
export class DerError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'DerError'
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Writer

function headerLength (len: number): number {
  if (len < 0x80) return 2
  if (len < 0x100) return 3
  if (len < 0x10000) return 4
  if (len < 0x1000000) return 5
  return 6
}

function writeHeader (out: Buffer, tag: number, len: number): number {
  out[0] = tag
  if (len < 0x80) { out[1] = len; return 2 }
  if (len < 0x100) { out[1] = 0x81; out[2] = len; return 3 }
  if (len < 0x10000) { out[1] = 0x82; out[2] = len >>> 8; out[3] = len & 0xff; return 4 }
  if (len < 0x1000000) { out[1] = 0x83; out[2] = len >>> 16; out[3] = (len >>> 8) & 0xff; out[4] = len & 0xff; return 5 }
  out[1] = 0x84; out.writeUInt32BE(len, 2); return 6
}

/** Encodes one TLV whose content is the concatenation of `parts`. */
export function tlv (tag: number, ...parts: Buffer[]): Buffer {
  return tlvList(tag, parts)
}

/** Encodes one TLV whose content is the concatenation of `parts` (array form, for long lists such as CRL entries). */
export function tlvList (tag: number, parts: readonly Buffer[]): Buffer {
  let len = 0
  for (const p of parts) len += p.length
  const out = Buffer.allocUnsafe(headerLength(len) + len)
  let off = writeHeader(out, tag, len)
  for (const p of parts) { p.copy(out, off); off += p.length }
  return out
}

export const seq = (...parts: Buffer[]): Buffer => tlv(TAG.SEQUENCE, ...parts)
export const set = (...parts: Buffer[]): Buffer => tlv(TAG.SET, ...parts)
export const octetString = (content: Buffer): Buffer => tlv(TAG.OCTET_STRING, content)
export const utf8String = (s: string): Buffer => tlv(TAG.UTF8_STRING, Buffer.from(s, 'utf8'))
export const ia5String = (s: string): Buffer => tlv(TAG.IA5_STRING, Buffer.from(s, 'latin1'))
export const NULL_DER: Buffer = Buffer.from([0x05, 0x00])
export const TRUE_DER: Buffer = Buffer.from([0x01, 0x01, 0xff])
/** Context-specific tag, constructed (EXPLICIT wrappers and constructed IMPLICIT types). */
export const ctxCons = (n: number, ...parts: Buffer[]): Buffer => tlv(0xa0 | n, ...parts)
/** Context-specific tag, primitive (IMPLICIT primitive types such as GeneralName uniformResourceIdentifier [6]). */
export const ctxPrim = (n: number, content: Buffer): Buffer => tlv(0x80 | n, content)

/** BIT STRING with zero unused bits (signatures, key bits). */
export function bitString (content: Buffer): Buffer {
  return tlv(TAG.BIT_STRING, Buffer.from([0]), content)
}

/** Encodes an unsigned big-endian magnitude as a DER INTEGER (minimal, with a 00 pad when the high bit is set). */
export function uintFromBytes (magnitude: Buffer): Buffer {
  let i = 0
  while (i < magnitude.length - 1 && magnitude[i] === 0) i++
  const m = magnitude.subarray(i)
  if (m.length === 0) return Buffer.from([0x02, 0x01, 0x00])
  return (m[0] & 0x80) !== 0 ? tlv(TAG.INTEGER, Buffer.from([0]), m) : tlv(TAG.INTEGER, m)
}

/** Non-negative bigint → DER INTEGER. */
export function uintFromBigInt (n: bigint): Buffer {
  if (n < 0n) throw new RangeError('negative integer')
  let hex = n.toString(16)
  if (hex.length % 2 === 1) hex = '0' + hex
  return uintFromBytes(Buffer.from(hex, 'hex'))
}

export function smallInt (n: number): Buffer {
  if (!Number.isInteger(n) || n < 0 || n > 127) throw new RangeError('smallInt out of range')
  return Buffer.from([TAG.INTEGER, 1, n])
}

export function enumerated (n: number): Buffer {
  if (!Number.isInteger(n) || n < 0 || n > 127) throw new RangeError('enumerated out of range')
  return Buffer.from([TAG.ENUMERATED, 1, n])
}

/** Dotted OID string → DER OBJECT IDENTIFIER (X.690 §8.19). Not on hot paths: callers pre-encode their OIDs. */
export function oid (dotted: string): Buffer {
  const arcs = dotted.split('.').map((a) => BigInt(a))
  if (arcs.length < 2) throw new RangeError('OID needs at least two arcs')
  const first = arcs[0] * 40n + arcs[1]
  const bytes: number[] = []
  for (const arc of [first, ...arcs.slice(2)]) {
    const chunk: number[] = [Number(arc & 0x7fn)]
    let v = arc >> 7n
    while (v > 0n) { chunk.unshift(Number(v & 0x7fn) | 0x80); v >>= 7n }
    bytes.push(...chunk)
  }
  return tlv(TAG.OID, Buffer.from(bytes))
}

const pad2 = (n: number): string => (n < 10 ? '0' : '') + n

/**
 * RFC 5280 §4.1.2.5: UTCTime for 1950..2049, GeneralizedTime otherwise; always Zulu, whole seconds, no fraction.
 * Milliseconds are truncated.
 */
export function time (ms: number): Buffer {
  const d = new Date(ms)
  const y = d.getUTCFullYear()
  const rest = pad2(d.getUTCMonth() + 1) + pad2(d.getUTCDate()) + pad2(d.getUTCHours()) + pad2(d.getUTCMinutes()) + pad2(d.getUTCSeconds()) + 'Z'
  if (y >= 1950 && y < 2050) return tlv(TAG.UTC_TIME, Buffer.from(pad2(y % 100) + rest, 'latin1'))
  return generalizedTime(ms)
}

/** GeneralizedTime with whole seconds (RFC 5280 §4.1.2.5.2; RFC 6960 responses use it exclusively). */
export function generalizedTime (ms: number): Buffer {
  const d = new Date(ms)
  const y = d.getUTCFullYear()
  if (y < 0 || y > 9999) throw new RangeError('year out of range')
  const s = String(y).padStart(4, '0') + pad2(d.getUTCMonth() + 1) + pad2(d.getUTCDate()) + pad2(d.getUTCHours()) + pad2(d.getUTCMinutes()) + pad2(d.getUTCSeconds()) + 'Z'
  return tlv(TAG.GENERALIZED_TIME, Buffer.from(s, 'latin1'))
}

// ---------------------------------------------------------------------------------------------------------------
// Reader

/** One decoded TLV: offsets into the buffer it was read from. `end` is exclusive. */
export interface Tlv {
  readonly tag: number
  /** Offset of the tag byte. */
  readonly start: number
  /** Offset of the first content byte. */
  readonly valueStart: number
  /** Offset just after the last content byte. */
  readonly end: number
}

/**
 * Reads the TLV at `offset`, which must end at or before `limit`. Rejects high tag numbers, indefinite lengths and
 * lengths beyond the limit.
 */
export function readTlv (buf: Buffer, offset: number, limit: number = buf.length): Tlv {
  if (offset + 2 > limit) throw new DerError('truncated TLV header')
  const tag = buf[offset]
  if ((tag & 0x1f) === 0x1f) throw new DerError('high tag numbers are not supported')
  let len = buf[offset + 1]
  let valueStart = offset + 2
  if (len & 0x80) {
    const n = len & 0x7f
    if (n === 0) throw new DerError('indefinite length is not DER')
    if (n > 4) throw new DerError('length too large')
    if (valueStart + n > limit) throw new DerError('truncated length')
    len = 0
    for (let i = 0; i < n; i++) len = len * 256 + buf[valueStart + i]
    valueStart += n
    if (len < 0x80) throw new DerError('non-minimal length encoding')
  }
  const end = valueStart + len
  if (end > limit) throw new DerError('content runs past its container')
  return { tag, start: offset, valueStart, end }
}

/** Reads the TLV at `offset` and checks its tag. */
export function expect (buf: Buffer, offset: number, tag: number, limit: number = buf.length, what = 'element'): Tlv {
  const t = readTlv(buf, offset, limit)
  if (t.tag !== tag) throw new DerError(`${what}: expected tag 0x${tag.toString(16)}, found 0x${t.tag.toString(16)}`)
  return t
}

/** The direct children of a constructed TLV; the content must be exactly a sequence of TLVs. */
export function children (buf: Buffer, parent: Tlv): Tlv[] {
  const out: Tlv[] = []
  let off = parent.valueStart
  while (off < parent.end) {
    const t = readTlv(buf, off, parent.end)
    out.push(t)
    off = t.end
  }
  return out
}

/** Parses a complete DER value: exactly one TLV spanning the whole buffer. */
export function readRoot (buf: Buffer, tag: number, what = 'structure'): Tlv {
  const t = expect(buf, 0, tag, buf.length, what)
  if (t.end !== buf.length) throw new DerError(`${what}: trailing bytes after the DER value`)
  return t
}

export const value = (buf: Buffer, t: Tlv): Buffer => buf.subarray(t.valueStart, t.end)
export const raw = (buf: Buffer, t: Tlv): Buffer => buf.subarray(t.start, t.end)

/** DER OBJECT IDENTIFIER content → dotted string. */
export function oidToString (content: Buffer): string {
  if (content.length === 0) throw new DerError('empty OID')
  if (content.length <= 32 && content[content.length - 1] < 0x80) {
    // Fast path: no arc longer than 7 encoded octets (49 bits) fits comfortably in a double.
    let out = ''
    let v = 0
    let octets = 0
    for (let i = 0; i < content.length; i++) {
      const b = content[i]
      if (octets === 0 && b === 0x80) throw new DerError('non-minimal OID arc')
      if (++octets > 7) return oidToStringBig(content)
      v = v * 128 + (b & 0x7f)
      if ((b & 0x80) === 0) {
        out += out === '' ? (v < 40 ? '0.' + v : v < 80 ? '1.' + (v - 40) : '2.' + (v - 80)) : '.' + v
        v = 0
        octets = 0
      }
    }
    return out
  }
  return oidToStringBig(content)
}

function oidToStringBig (content: Buffer): string {
  const arcs: string[] = []
  let v = 0n
  let first = true
  for (let i = 0; i < content.length; i++) {
    const b = content[i]
    if (v === 0n && b === 0x80) throw new DerError('non-minimal OID arc')
    v = (v << 7n) | BigInt(b & 0x7f)
    if ((b & 0x80) === 0) {
      if (first) {
        if (v < 40n) arcs.push('0', String(v))
        else if (v < 80n) arcs.push('1', String(v - 40n))
        else arcs.push('2', String(v - 80n))
        first = false
      } else arcs.push(String(v))
      v = 0n
    } else if (i === content.length - 1) throw new DerError('truncated OID')
  }
  return arcs.join('.')
}

/** Reads an INTEGER's content as a non-negative bigint (rejects negative values). */
export function uintToBigInt (content: Buffer): bigint {
  if (content.length === 0) throw new DerError('empty INTEGER')
  if ((content[0] & 0x80) !== 0) throw new DerError('negative INTEGER')
  return content.length === 0 ? 0n : BigInt('0x' + content.toString('hex'))
}

/** Number of significant bits in an unsigned big-endian magnitude (for RSA modulus sizes). */
export function bitLength (magnitude: Buffer): number {
  let i = 0
  while (i < magnitude.length && magnitude[i] === 0) i++
  if (i === magnitude.length) return 0
  return (magnitude.length - i - 1) * 8 + (32 - Math.clz32(magnitude[i]))
}

/** Parses UTCTime / GeneralizedTime content (Zulu only; GeneralizedTime may carry a fraction) to epoch ms. */
export function parseTime (buf: Buffer, t: Tlv): number {
  const s = buf.toString('latin1', t.valueStart, t.end)
  let m: RegExpExecArray | null
  if (t.tag === TAG.UTC_TIME) {
    m = /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s)
    if (m === null) throw new DerError('malformed UTCTime')
    const yy = Number(m[1])
    return utc(yy < 50 ? 2000 + yy : 1900 + yy, m, 0)
  }
  if (t.tag === TAG.GENERALIZED_TIME) {
    const g = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(?:\.(\d{1,9}))?Z$/.exec(s)
    if (g === null) throw new DerError('malformed GeneralizedTime')
    const frac = g[7] === undefined ? 0 : Math.floor(Number('0.' + g[7]) * 1000)
    return utc(Number(g[1]), g, frac)
  }
  throw new DerError('expected a UTCTime or GeneralizedTime')
}

function utc (year: number, m: RegExpExecArray, frac: number): number {
  const mo = Number(m[2]); const d = Number(m[3]); const h = Number(m[4]); const mi = Number(m[5]); const sec = Number(m[6])
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 59) throw new DerError('time field out of range')
  const ms = Date.UTC(year, mo - 1, d, h, mi, sec, frac)
  if (new Date(ms).getUTCDate() !== d) throw new DerError('time field out of range')
  return ms
}
