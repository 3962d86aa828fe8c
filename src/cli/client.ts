import { request as httpsRequest } from 'node:https'
import { request as httpRequest } from 'node:http'
import { signRequest } from '../core/sigv4.ts'

export interface ClientOptions {
  readonly endpoint: string
  readonly region: string
  readonly accessKeyId: string
  readonly secretAccessKey: string
  /** STS session token of temporary credentials (sent as X-Amz-Security-Token, signed). */
  readonly sessionToken?: string
  /** PEM CA chain to trust for the API's certificate. */
  readonly ca?: string
}

/** An API error as AWS returns it: `x-amzn-ErrorType` and `{ message }`. */
export class ApiError extends Error {
  readonly status: number
  readonly type: string
  readonly body: Record<string, unknown>
  constructor (status: number, type: string, message: string, body: Record<string, unknown>) {
    super(`${type}: ${message}`)
    this.status = status
    this.type = type
    this.body = body
  }
}

/** Encodes one path segment the way AWS SDKs do for non-greedy labels (`/` becomes `%2F`). */
export const seg = (s: string): string => encodeURIComponent(s).replace(/[!'()*]/g, c => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)

/** A minimal SigV4-signing client for the Thingward API (service name `iot`), with keep-alive. */
export class ApiClient {
  readonly #o: ClientOptions
  readonly #url: URL
  constructor (o: ClientOptions) { this.#o = o; this.#url = new URL(o.endpoint) }

  async call<T = Record<string, unknown>> (method: string, path: string, opts: { query?: Record<string, string | number | boolean | undefined>, body?: unknown, headers?: Record<string, string>, unsigned?: boolean } = {}): Promise<T> {
    const q = Object.entries(opts.query ?? {}).filter(([, v]) => v !== undefined).map(([k, v]) => `${seg(k)}=${seg(String(v))}`).join('&')
    const body = opts.body === undefined ? Buffer.alloc(0) : Buffer.from(JSON.stringify(opts.body))
    const plain = { ...(opts.headers ?? {}), ...(body.length > 0 ? { 'content-type': 'application/json' } : {}) }
    // `unsigned`: the password sign-in route, which authenticates by its body.
    const headers = opts.unsigned === true ? { ...plain, host: this.#url.host } : signRequest({
      method, host: this.#url.host, path, query: q, body, region: this.#o.region, service: 'iot',
      accessKeyId: this.#o.accessKeyId, secretAccessKey: this.#o.secretAccessKey, nowMs: Date.now(),
      headers: { ...plain, ...(this.#o.sessionToken === undefined ? {} : { 'x-amz-security-token': this.#o.sessionToken }) },
    })
    const secure = this.#url.protocol === 'https:'
    const res = await new Promise<{ status: number, headers: Record<string, string | string[] | undefined>, body: Buffer }>((resolve, reject) => {
      const req = (secure ? httpsRequest : httpRequest)({
        hostname: this.#url.hostname, port: this.#url.port, method, path: q === '' ? path : `${path}?${q}`, headers: { ...headers, 'content-length': String(body.length) },
        ca: this.#o.ca, minVersion: 'TLSv1.2',
      }, (r) => {
        const chunks: Buffer[] = []
        r.on('data', (c: Buffer) => chunks.push(c))
        r.on('end', () => resolve({ status: r.statusCode ?? 0, headers: r.headers, body: Buffer.concat(chunks) }))
        r.on('error', reject)
      })
      req.on('error', reject)
      req.end(body)
    })
    let json: Record<string, unknown> = {}
    if (res.body.length > 0) {
      try { json = JSON.parse(res.body.toString('utf8')) as Record<string, unknown> } catch { json = { message: res.body.toString('utf8').slice(0, 200) } }
    }
    if (res.status >= 400) {
      const t = res.headers['x-amzn-errortype']
      throw new ApiError(res.status, (Array.isArray(t) ? t[0] : t) ?? `HTTP${res.status}`, String(json.message ?? 'request failed'), json)
    }
    return json as T
  }
}
