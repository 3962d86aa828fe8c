/**
 * PEM (RFC 7468) encoding and strict decoding. Encoders write 64-column base64 and a trailing newline, which is
 * also Node's `X509Certificate.toString()` format, so "normalized PEM" is the same everywhere.
 */

export interface PemBlock {
  readonly label: string
  readonly der: Buffer
}

/** Encodes DER under `label` ('CERTIFICATE', 'CERTIFICATE REQUEST', 'X509 CRL', 'PRIVATE KEY' …). */
export function toPem (label: string, der: Buffer): string {
  const b64 = der.toString('base64')
  let body = ''
  for (let i = 0; i < b64.length; i += 64) body += b64.slice(i, i + 64) + '\n'
  return `-----BEGIN ${label}-----\n${body}-----END ${label}-----\n`
}

const BLOCK_RE = /-----BEGIN ([A-Z0-9 ]+)-----([^-]*)-----END ([A-Z0-9 ]+)-----/g
// Linear-time on any input: after the character class only '=' may follow, so a failed match never rescans whitespace.
const BASE64_BODY_RE = /^[A-Za-z0-9+/\s]*(?:=\s*){0,2}$/

/**
 * Every PEM block in `text`, in order. Text outside the blocks (OpenSSL's "subject=" lines, comments) is ignored, as
 * RFC 7468 §2 allows. Throws a plain Error with a precise reason on a malformed block; callers wrap it.
 */
export function readPemBlocks (text: string): PemBlock[] {
  const out: PemBlock[] = []
  BLOCK_RE.lastIndex = 0
  let m: RegExpExecArray | null
  while ((m = BLOCK_RE.exec(text)) !== null) {
    const [, label, body, endLabel] = m
    if (label !== endLabel) throw new Error(`PEM block BEGIN ${label} ends with END ${endLabel}`)
    if (!BASE64_BODY_RE.test(body)) throw new Error(`PEM block ${label} has a body that is not base64`)
    const der = Buffer.from(body, 'base64')
    if (der.length === 0) throw new Error(`PEM block ${label} is empty`)
    out.push({ label, der })
  }
  return out
}

/**
 * The first PEM block of `text`, which must carry one of `labels`. Faster than `readPemBlocks` for the hot CSR path
 * (one indexOf instead of a global regex). Throws a plain Error with a precise reason.
 */
export function readFirstPem (text: string, labels: readonly string[], what: string): Buffer {
  const begin = text.indexOf('-----BEGIN ')
  if (begin < 0) throw new Error(`${what} is not PEM: no -----BEGIN line`)
  const labelEnd = text.indexOf('-----', begin + 11)
  if (labelEnd < 0) throw new Error(`${what} is not PEM: unterminated BEGIN line`)
  const label = text.slice(begin + 11, labelEnd)
  if (!labels.includes(label)) throw new Error(`expected PEM ${labels[0]} but found ${label}`)
  const endMarker = `-----END ${label}-----`
  const end = text.indexOf(endMarker, labelEnd + 5)
  if (end < 0) throw new Error(`${what} PEM has no matching -----END ${label}----- line`)
  const body = text.slice(labelEnd + 5, end)
  if (!BASE64_BODY_RE.test(body)) throw new Error(`${what} PEM body is not base64`)
  const der = Buffer.from(body, 'base64')
  if (der.length === 0) throw new Error(`${what} PEM body is empty`)
  return der
}
