import { AppError } from './errors.ts'
import { createHash, createHmac } from 'node:crypto'

/**
 * AWS Signature Version 4 building blocks (docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html),
 * byte-compatible with botocore and @smithy/signature-v4. Pure: used by the API to verify and by the CLI to sign.
 */

const escapeUri = (s: string): string => encodeURIComponent(s).replace(/[!'()*]/g, c => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)

/** Path normalization as @smithy/signature-v4 getCanonicalPath (drops empty and `.` segments, resolves `..`). */
export function canonicalPath (rawPath: string): string {
  const segments: string[] = []
  for (const seg of rawPath.split('/')) {
    if (seg === '' || seg === '.') continue
    if (seg === '..') segments.pop()
    else segments.push(seg)
  }
  const normalized = `${rawPath.startsWith('/') ? '/' : ''}${segments.join('/')}${segments.length > 0 && rawPath.endsWith('/') ? '/' : ''}`
  return escapeUri(normalized).replace(/%2F/g, '/')
}

export function safeDecode (s: string): string {
  try { return decodeURIComponent(s) } catch { throw new AppError('ERR_AUTH_SIGNATURE_MISMATCH', 'the request signature does not match: malformed query string') }
}

export function canonicalQuery (rawQuery: string): string {
  if (rawQuery === '') return ''
  const pairs: Array<[string, string]> = []
  for (const part of rawQuery.split('&')) {
    if (part === '') continue
    const i = part.indexOf('=')
    const k = escapeUri(safeDecode(i < 0 ? part : part.slice(0, i)))
    const v = escapeUri(safeDecode(i < 0 ? '' : part.slice(i + 1)))
    if (k.toLowerCase() === 'x-amz-signature') continue
    pairs.push([k, v])
  }
  pairs.sort((a, b) => a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0)
  return pairs.map(([k, v]) => `${k}=${v}`).join('&')
}

export const headerValue = (v: string | string[] | undefined): string | undefined =>
  v === undefined ? undefined : (Array.isArray(v) ? v.join(',') : v)

/** Parses `YYYYMMDDTHHMMSSZ`. */
export function parseAmzDate (s: string): number | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(s)
  if (m === null) return undefined
  return Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6])
}

export const sha256Hex = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex')

/** HMAC key derivation, cached: it depends only on secret, date, region and service. */
const keyCache = new Map<string, Buffer>()
export function signingKey (secret: string, date: string, region: string, service: string): Buffer {
  const cacheKey = `${secret}\0${date}\0${region}\0${service}`
  let k = keyCache.get(cacheKey)
  if (k === undefined) {
    const kDate = createHmac('sha256', `AWS4${secret}`).update(date).digest()
    const kRegion = createHmac('sha256', kDate).update(region).digest()
    const kService = createHmac('sha256', kRegion).update(service).digest()
    k = createHmac('sha256', kService).update('aws4_request').digest()
    if (keyCache.size > 10_000) keyCache.clear()
    keyCache.set(cacheKey, k)
  }
  return k
}

/** Formats a time as `YYYYMMDDTHHMMSSZ`. */
export const amzDate = (ms: number): string => new Date(ms).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}Z$/, 'Z')

export interface SignInput {
  readonly method: string
  readonly host: string
  /** Already percent-encoded path. */
  readonly path: string
  readonly query: string
  readonly headers: Record<string, string>
  readonly body: Buffer
  readonly region: string
  readonly service: string
  readonly accessKeyId: string
  readonly secretAccessKey: string
  readonly nowMs: number
}

/** Signs a request; returns the headers to send (input headers plus host, x-amz-date, content hash, Authorization). */
export function signRequest (r: SignInput): Record<string, string> {
  const date = amzDate(r.nowMs)
  const payloadHash = sha256Hex(r.body)
  const headers: Record<string, string> = { ...Object.fromEntries(Object.entries(r.headers).map(([k, v]) => [k.toLowerCase(), v])), host: r.host, 'x-amz-date': date, 'x-amz-content-sha256': payloadHash }
  const names = Object.keys(headers).sort()
  const canonicalHeaders = names.map(n => `${n}:${headers[n].trim().replace(/\s+/g, ' ')}\n`).join('')
  const signed = names.join(';')
  const canonicalRequest = `${r.method}\n${canonicalPath(r.path)}\n${canonicalQuery(r.query)}\n${canonicalHeaders}\n${signed}\n${payloadHash}`
  const scope = `${date.slice(0, 8)}/${r.region}/${r.service}/aws4_request`
  const stringToSign = `AWS4-HMAC-SHA256\n${date}\n${scope}\n${sha256Hex(canonicalRequest)}`
  const signature = createHmac('sha256', signingKey(r.secretAccessKey, date.slice(0, 8), r.region, r.service)).update(stringToSign).digest('hex')
  headers.authorization = `AWS4-HMAC-SHA256 Credential=${r.accessKeyId}/${scope}, SignedHeaders=${signed}, Signature=${signature}`
  return headers
}
