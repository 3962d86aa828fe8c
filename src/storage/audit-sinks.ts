/**
 * Audit stream destinations (the `AuditSinkPort` of src/audit): a local file, syslog over TLS (RFC 5424 messages,
 * RFC 5425 transport), an HTTPS webhook. Each `deliver` resolves only when its items are acknowledged, and the
 * streamer persists its cursor only then.
 */
import { createHmac } from 'node:crypto'
import { open } from 'node:fs/promises'
import type { FileHandle } from 'node:fs/promises'
import { request } from 'node:https'
import { hostname as osHostname } from 'node:os'
import { resolve } from 'node:path'
import { connect } from 'node:tls'
import type { TLSSocket } from 'node:tls'
import type { AuditSinkPort, StreamItem } from '../audit/index.ts'
import { AppError } from '../core/index.ts'

/**
 * Appends one line per item to a file (mode 0600) and fsyncs before acknowledging, so an acknowledged line
 * survives a crash. The file is opened per delivery in append mode, which also makes log rotation by rename work.
 */
export class FileAuditSink implements AuditSinkPort {
  readonly name: string
  readonly #path: string
  constructor (path: string) {
    this.#path = resolve(path)
    this.name = `file:${this.#path}`
  }

  async deliver (items: readonly StreamItem[]): Promise<void> {
    let fh: FileHandle | undefined
    try {
      fh = await open(this.#path, 'a', 0o600)
      await fh.appendFile(items.map(i => `${i.line}\n`).join(''), 'utf8')
      await fh.sync()
    } catch (err) {
      throw new AppError('ERR_AUDIT_SINK_FAILED', 'writing the audit stream file failed', { sink: this.name }, { cause: err })
    } finally {
      await fh?.close()
    }
  }

  async close (): Promise<void> {}
}

/** Options of {@link SyslogTlsSink}. */
export interface SyslogTlsOptions {
  readonly host: string
  readonly port: number
  /** CA certificates (PEM) that sign the collector's certificate. RFC 5425 §5.2: the server is always authenticated. */
  readonly ca?: string
  /** Client certificate and key (PEM) when the collector requires mutual authentication (RFC 5425 §4.2). */
  readonly cert?: string
  readonly key?: string
  /** HOSTNAME field (RFC 5424 §6.2.4); default the machine's name. */
  readonly hostname?: string
  /** APP-NAME field (RFC 5424 §6.2.5). */
  readonly appName?: string
  /** TLS server name to check the certificate against; default `host`. */
  readonly servername?: string
}

/** RFC 5424 §6.2.1 facility 13 "log audit". */
const FACILITY_LOG_AUDIT = 13
/** RFC 5424 §6.2.1 severities: 6 informational, 5 notice, 4 warning, 3 error. */
const SEVERITY: Record<string, number> = { success: 6, denied: 4, failure: 3 }
/** RFC 5424 §6.3.2: SD-ID with `@` and a private enterprise number; 32473 is the number RFC 5612 reserves for documentation. */
const SD_ID = 'thingward@32473'

/** PRINTUSASCII (RFC 5424 §6), at most `max` characters, `-` when empty. */
function printable (s: string | undefined, max: number): string {
  const v = (s ?? '').replace(/[^\x21-\x7e]/g, '_').slice(0, max)
  return v === '' ? '-' : v
}

/**
 * Formats one RFC 5424 message:
 * `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [thingward@32473 type=".." seq=".."] BOM MSG`.
 * PRI = facility × 8 + severity (§6.2.1); TIMESTAMP is RFC 3339 UTC with milliseconds (§6.2.3); MSG is the JSON
 * line in UTF-8, marked by the BOM (§6.4).
 */
export function formatRfc5424 (item: StreamItem, host: string, appName: string, procId: string): string {
  const severity = item.type === 'digest' ? 5 : (SEVERITY[item.outcome ?? 'success'] ?? 6)
  const pri = FACILITY_LOG_AUDIT * 8 + severity
  const msgId = printable(item.type === 'digest' ? 'audit.digest' : item.action, 32)
  const sd = `[${SD_ID} type="${item.type}" seq="${item.seq}"]`
  return `<${pri}>1 ${new Date(item.timeMs).toISOString()} ${printable(host, 255)} ${printable(appName, 48)} ${printable(procId, 128)} ${msgId} ${sd} \uFEFF${item.line}`
}

/**
 * Syslog over TLS (RFC 5425): each message framed by octet counting, `MSG-LEN SP SYSLOG-MSG` (§4.3). The
 * connection is opened on first use and again after any error. Syslog has no application acknowledgement, so
 * "acknowledged" means written to the TLS connection; a collector that crashes may lose what it had buffered.
 */
export class SyslogTlsSink implements AuditSinkPort {
  readonly name: string
  readonly #o: SyslogTlsOptions
  readonly #host: string
  readonly #procId: string
  #socket: TLSSocket | undefined = undefined

  constructor (opts: SyslogTlsOptions, procId = '-') {
    this.#o = opts
    this.name = `syslog+tls://${opts.host}:${opts.port}`
    this.#host = opts.hostname ?? osHostname()
    this.#procId = procId
  }

  async #connect (): Promise<TLSSocket> {
    if (this.#socket !== undefined && !this.#socket.destroyed) return this.#socket
    const socket = await new Promise<TLSSocket>((resolveSocket, reject) => {
      const s = connect({
        host: this.#o.host, port: this.#o.port, servername: this.#o.servername ?? (/^[\d.:]+$/.test(this.#o.host) ? undefined : this.#o.host),
        ca: this.#o.ca, cert: this.#o.cert, key: this.#o.key, minVersion: 'TLSv1.2',
      }, () => { s.off('error', reject); resolveSocket(s) })
      s.once('error', reject)
    })
    socket.on('error', () => { socket.destroy() })
    socket.on('close', () => { if (this.#socket === socket) this.#socket = undefined })
    this.#socket = socket
    return socket
  }

  async deliver (items: readonly StreamItem[]): Promise<void> {
    try {
      const socket = await this.#connect()
      // MSG-LEN counts octets, so each message is encoded once; the batch is copied into one buffer once.
      const parts: Buffer[] = []
      for (const i of items) {
        const msg = Buffer.from(formatRfc5424(i, this.#host, this.#o.appName ?? 'thingward', this.#procId), 'utf8')
        parts.push(Buffer.from(`${msg.length} `, 'ascii'), msg)
      }
      await new Promise<void>((resolveWrite, reject) => {
        const onClose = (): void => { reject(new Error('syslog connection closed')) }
        socket.once('close', onClose)
        socket.write(Buffer.concat(parts), (err) => {
          socket.off('close', onClose)
          if (err !== undefined && err !== null) reject(err); else resolveWrite()
        })
      })
    } catch (err) {
      this.#socket?.destroy()
      this.#socket = undefined
      throw new AppError('ERR_AUDIT_SINK_FAILED', 'delivering to the syslog collector failed', { sink: this.name }, { cause: err })
    }
  }

  async close (): Promise<void> {
    const s = this.#socket
    this.#socket = undefined
    if (s === undefined || s.destroyed) return
    await new Promise<void>((done) => { s.end(done) })
  }
}

/** Options of {@link WebhookAuditSink}. */
export interface WebhookOptions {
  /** An `https:` URL. */
  readonly url: string
  /** CA certificates (PEM) for the receiver's certificate; default the system store. */
  readonly ca?: string
  /** When set, each request carries `x-thingward-signature: sha256=<hex HMAC-SHA256 of the body>`. */
  readonly secret?: string
  readonly timeoutMs?: number
}

/**
 * POSTs batches as JSON lines (`application/x-ndjson`) to an HTTPS endpoint; a 2xx answer acknowledges the
 * batch. Headers name the range (`x-thingward-first-seq`, `x-thingward-last-seq`) for idempotent receivers.
 */
export class WebhookAuditSink implements AuditSinkPort {
  readonly name: string
  readonly #o: WebhookOptions
  readonly #url: URL

  constructor (opts: WebhookOptions) {
    const url = new URL(opts.url)
    if (url.protocol !== 'https:') throw new AppError('ERR_CONFIG_INVALID', 'invalid configuration: the audit webhook must be an https URL', { setting: 'sink' })
    this.#url = url
    this.#o = opts
    this.name = `webhook:${url.origin}${url.pathname}`
  }

  async deliver (items: readonly StreamItem[]): Promise<void> {
    const body = Buffer.from(items.map(i => `${i.line}\n`).join(''), 'utf8')
    const events = items.filter(i => i.type === 'event')
    const headers: Record<string, string> = { 'content-type': 'application/x-ndjson', 'content-length': String(body.length) }
    if (events.length > 0) { headers['x-thingward-first-seq'] = String(events[0].seq); headers['x-thingward-last-seq'] = String(events[events.length - 1].seq) }
    if (this.#o.secret !== undefined) headers['x-thingward-signature'] = `sha256=${createHmac('sha256', this.#o.secret).update(body).digest('hex')}`
    try {
      const status = await new Promise<number>((resolveStatus, reject) => {
        const req = request(this.#url, { method: 'POST', headers, ca: this.#o.ca, minVersion: 'TLSv1.2', timeout: this.#o.timeoutMs ?? 30_000 }, (res) => {
          res.resume()
          res.on('end', () => { resolveStatus(res.statusCode ?? 0) })
          res.on('error', reject)
        })
        req.on('timeout', () => { req.destroy(new Error('webhook timed out')) })
        req.on('error', reject)
        req.end(body)
      })
      if (status < 200 || status > 299) throw new Error(`webhook answered ${status}`)
    } catch (err) {
      throw new AppError('ERR_AUDIT_SINK_FAILED', 'delivering to the audit webhook failed', { sink: this.name }, { cause: err })
    }
  }

  async close (): Promise<void> {}
}
