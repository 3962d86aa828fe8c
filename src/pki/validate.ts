import { AppError } from '../core/index.ts'

/** Input checks shared by the issuers. All throw ERR_PKI_INVALID_ARGUMENT with fixed text; the value goes in details. */

const invalid = (message: string, details: Record<string, string | number> = {}): AppError =>
  new AppError('ERR_PKI_INVALID_ARGUMENT', message, details)

/** RFC 5280 Appendix A ub-common-name: 64 characters. Control characters are refused (log and UI injection). */
export const MAX_COMMON_NAME_LENGTH = 64

export function assertCommonName (cn: unknown): asserts cn is string {
  if (typeof cn !== 'string' || cn.length === 0) throw invalid('commonName must be a non-empty string')
  if ([...cn].length > MAX_COMMON_NAME_LENGTH) throw invalid('commonName is longer than 64 characters (RFC 5280 ub-common-name)', { length: cn.length })
  if (/[\u0000-\u001f\u007f]/.test(cn)) throw invalid('commonName must not contain control characters')
}

export function assertTimeMs (ms: unknown, name: string): asserts ms is number {
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0 || ms > 253402300799000) throw invalid(`${name} must be a finite epoch-milliseconds number before year 10000`, { name })
}

/** Validity in days → milliseconds; fractional days allowed (short-lived certificates), at most 100 years. */
export function validityMs (days: unknown, fallbackDays: number): number {
  const d = days === undefined ? fallbackDays : days
  if (typeof d !== 'number' || !Number.isFinite(d) || d <= 0 || d > 36500) throw invalid('validityDays must be a number in (0, 36500]')
  const ms = Math.floor(d * 86_400_000 / 1000) * 1000
  if (ms < 1000) throw invalid('validityDays must be at least one second')
  return ms
}

/** RFC 1034 §3.5 / RFC 5280 §4.2.1.6 host names: LDH labels, optional leading `*.` wildcard label, ≤ 253 chars. */
export function assertDnsName (name: unknown): asserts name is string {
  if (typeof name !== 'string' || name.length === 0 || name.length > 253) throw invalid('DNS name must be 1..253 characters')
  const labels = name.split('.')
  labels.forEach((label, i) => {
    if (i === 0 && label === '*' && labels.length > 1) return
    if (!/^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/.test(label)) throw invalid('DNS name has an invalid label', { dnsName: name })
  })
}

/** IPv4 dotted quad or IPv6 (RFC 4291 §2.2 text forms, incl. `::` and an embedded IPv4 tail) → 4 or 16 octets. */
export function parseIpAddress (text: unknown): Buffer {
  if (typeof text !== 'string') throw invalid('IP address must be a string')
  const v4 = parseIpv4(text)
  if (v4 !== undefined) return v4
  const v6 = parseIpv6(text)
  if (v6 !== undefined) return v6
  throw invalid('IP address is neither IPv4 nor IPv6', { ipAddress: text })
}

function parseIpv4 (s: string): Buffer | undefined {
  const parts = s.split('.')
  if (parts.length !== 4) return undefined
  const out = Buffer.alloc(4)
  for (let i = 0; i < 4; i++) {
    if (!/^(?:0|[1-9]\d{0,2})$/.test(parts[i])) return undefined
    const n = Number(parts[i])
    if (n > 255) return undefined
    out[i] = n
  }
  return out
}

function parseIpv6 (s: string): Buffer | undefined {
  if (s.length === 0 || s.length > 45) return undefined
  const halves = s.split('::')
  if (halves.length > 2) return undefined
  const toGroups = (part: string, allowV4: boolean): number[] | undefined => {
    if (part === '') return []
    const out: number[] = []
    const pieces = part.split(':')
    for (let i = 0; i < pieces.length; i++) {
      const p = pieces[i]
      if (allowV4 && i === pieces.length - 1 && p.includes('.')) {
        const v4 = parseIpv4(p)
        if (v4 === undefined) return undefined
        out.push(v4.readUInt16BE(0), v4.readUInt16BE(2))
      } else {
        if (!/^[0-9A-Fa-f]{1,4}$/.test(p)) return undefined
        out.push(parseInt(p, 16))
      }
    }
    return out
  }
  const head = toGroups(halves[0], halves.length === 1)
  const tail = halves.length === 2 ? toGroups(halves[1], true) : []
  if (head === undefined || tail === undefined) return undefined
  const missing = 8 - head.length - tail.length
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined
  const groups = [...head, ...new Array<number>(halves.length === 2 ? missing : 0).fill(0), ...tail]
  const out = Buffer.alloc(16)
  groups.forEach((g, i) => out.writeUInt16BE(g, i * 2))
  return out
}

/** URL for CDP / AIA: http(s) only, IA5 (ASCII) only. */
export function assertUrl (url: unknown, name: string): asserts url is string {
  if (typeof url !== 'string' || !/^https?:\/\/[\x21-\x7e]+$/.test(url)) throw invalid(`${name} must be an ASCII http(s) URL`, { name })
}
