/**
 * The device gateway: an mTLS listener in front of the MQTT broker core. TLS 1.2 and 1.3 only, strong suites
 * only, client certificate required and verified against a CA list that can be swapped at run time
 * (`setTrustedCAs`). The certificate is then looked up on every connection by the ConnectionAuthenticator port,
 * so neither TLS session resumption nor a stale CA list can bypass revocation.
 */
import { createServer } from 'node:tls'
import type { Server, TLSSocket } from 'node:tls'
import type { AddressInfo } from 'node:net'
import { AppError, resolveGatewayLimits, systemClock } from '../core/index.ts'
import type { GatewayMetricsSnapshot } from '../core/index.ts'
import type { Clock } from '../core/index.ts'
import { Broker } from './broker.ts'
import type {
  CloseSessionOptions, GatewayMetrics, ReauthorizeResult, ReservedTopicHandler, ServerMessage,
} from './broker.ts'
import { Connection } from './connection.ts'
import type { GatewayLimits } from './limits.ts'
import type {
  AuditSink, ConnectionAuthenticator, GrantedQoS, PayloadValidator, RetainedStore, SessionAuthorizerFactory, SessionStore,
  StoredMessage,
} from './ports.ts'
import { GatewayAuditAction, GatewayAuditOutcome } from './ports.ts'
import { ReasonCode } from './reason-codes.ts'
import type { GatewaySession } from './session.ts'

/**
 * TLS 1.2 suites: ECDHE key exchange (forward secrecy) with AEAD ciphers only; TLS 1.3 suites are all AEAD.
 * (NIST SP 800-52r2 §3.3.1, Mozilla "intermediate" without the DHE suites.)
 */
export const STRONG_CIPHERS = [
  'TLS_AES_128_GCM_SHA256',
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':')

/** PEM material for the listener. */
export interface GatewayTlsMaterial {
  /** Server certificate chain (PEM). */
  readonly cert: string | Buffer
  /** Server private key (PEM). */
  readonly key: string | Buffer
  /** Trusted CA certificates for client certificates (PEM each): our CA plus registered external CAs. */
  readonly ca: ReadonlyArray<string | Buffer>
  /** Optional CRLs (PEM); checked at handshake time only — the per-connection lookup is the real check. */
  readonly crl?: ReadonlyArray<string | Buffer>
}

/** Gateway construction options. Everything but TLS and the two auth ports has a default. */
export interface GatewayOptions {
  readonly tls: GatewayTlsMaterial
  readonly authenticator: ConnectionAuthenticator
  readonly authorizers: SessionAuthorizerFactory
  readonly audit?: AuditSink
  /** Durable persistent sessions; without it they live in memory only. */
  readonly sessionStore?: SessionStore
  /** Durable retained messages; without it they live in memory only. */
  readonly retainedStore?: RetainedStore
  /** Overrides for the AWS-like defaults. */
  readonly limits?: Partial<GatewayLimits>
  readonly clock?: Clock
  /**
   * Period of the shared housekeeping sweep (keep-alive, CONNECT deadline, delayed Wills, session expiry,
   * store flush). 0 disables the timer; call `runHousekeeping()` yourself (tests with a manual clock).
   */
  readonly housekeepingIntervalMs?: number
  /** Unexpected errors (store failures, handler throws). Default: ignored. */
  readonly onError?: (err: unknown) => void
  /** Payload schemas, checked on every device PUBLISH after iot:Publish (see ports.ts `PayloadValidator`). */
  readonly payloadValidator?: PayloadValidator
  /**
   * Server-published `$` topics every device may subscribe to (that exact filter) and receive regardless of its
   * policies (they are not asked), e.g. the command verification keys; devices never publish there.
   */
  readonly publicTopics?: readonly string[]
}

/** Where the gateway listens. */
export interface ListenOptions {
  readonly host?: string
  readonly port?: number
}


/**
 * A bounded label for a failed TLS handshake, from node's error code (OpenSSL alert names): what an operator
 * needs to tell a device with the wrong CA from a scanner or a timeout, without the error text.
 */
export function tlsFailureCause (err: Error & { code?: unknown }): string {
  const code = typeof err.code === 'string' ? err.code : ''
  if (code === 'ERR_TLS_HANDSHAKE_TIMEOUT' || /timed? ?out/i.test(err.message)) return 'timeout'
  if (code === 'ECONNRESET' || code === 'EPIPE') return 'connection-reset'
  if (/PEER_DID_NOT_RETURN_A_CERTIFICATE|NO_CERTIFICATE/.test(code)) return 'no-client-certificate'
  if (/CERTIFICATE_EXPIRED|CERT_HAS_EXPIRED/.test(code)) return 'certificate-expired'
  if (/UNKNOWN_CA|CERTIFICATE_VERIFY_FAILED|UNABLE_TO_GET_ISSUER|SELF_SIGNED|BAD_CERTIFICATE|UNSUPPORTED_CERTIFICATE|CERTIFICATE_UNKNOWN/.test(code)) return 'untrusted-certificate'
  if (/UNSUPPORTED_PROTOCOL|WRONG_VERSION_NUMBER|PROTOCOL_VERSION|VERSION_TOO_LOW/.test(code)) return 'protocol-version'
  if (/NO_SHARED_CIPHER|HANDSHAKE_FAILURE|NO_SUITABLE/.test(code)) return 'no-shared-cipher'
  if (/HTTP_REQUEST|WRONG_VERSION|UNEXPECTED_MESSAGE|RECORD/.test(code)) return 'not-tls'
  return 'other'
}

/** The MQTT device gateway. Construct in app.ts; `start()` loads stores and listens. */
export class Gateway {
  readonly #broker: Broker
  readonly #opts: GatewayOptions
  readonly #clock: Clock
  #tls: GatewayTlsMaterial
  #server: Server | undefined = undefined
  readonly #tlsFailures = new Map<string, number>()
  #timer: NodeJS.Timeout | undefined = undefined
  #stopped = false

  constructor (opts: GatewayOptions) {
    this.#opts = opts
    this.#tls = opts.tls
    this.#clock = opts.clock ?? systemClock
    const resolved = resolveGatewayLimits(opts.limits ?? {})
    if (resolved.problems.length > 0) {
      throw new AppError('ERR_GATEWAY_LIMITS_INVALID', `invalid gateway limits: ${resolved.problems.map(x => `${x.limit} ${x.rule}`).join('; ')}`)
    }
    const limits: GatewayLimits = resolved.limits
    this.#broker = new Broker({
      limits,
      clock: this.#clock,
      authenticator: opts.authenticator,
      authorizers: opts.authorizers,
      audit: opts.audit,
      sessionStore: opts.sessionStore,
      retainedStore: opts.retainedStore,
      payloadValidator: opts.payloadValidator,
      publicTopics: opts.publicTopics,
      onError: opts.onError ?? (() => {}),
    })
  }

  /** The limits in force. */
  get limits (): GatewayLimits { return this.#broker.limits }

  /** Sessions by client id: connected ones and persistent offline ones. Read-only view. */
  get sessions (): ReadonlyMap<string, GatewaySession> { return this.#broker.sessions }

  /** Counters since start. */
  get metrics (): GatewayMetricsSnapshot {
    const m: GatewayMetrics = this.#broker.metrics
    const byProtocol = { 4: 0, 5: 0 }
    for (const s of this.#broker.sessions.values()) if (s.connected) byProtocol[s.protocolVersion]++
    return {
      connectionsActive: this.#broker.connectionCount,
      sessions: this.#broker.sessions.size,
      retainedMessages: this.#broker.retainedCount,
      connectionsAccepted: m.connectionsAccepted,
      connectionsRejected: m.connectionsRejected,
      tlsHandshakeFailures: m.tlsHandshakeFailures,
      messagesIn: m.messagesIn,
      messagesOut: m.messagesOut,
      messagesDropped: m.messagesDropped,
      bytesIn: m.bytesIn,
      bytesOut: m.bytesOut,
      protocolErrors: m.protocolErrors,
      limitsExceeded: m.limitsExceeded,
      denials: Object.fromEntries(m.denials),
      connectionsByProtocol: { 4: byProtocol[4], 5: byProtocol[5] },
      tlsHandshakeFailuresByCause: Object.fromEntries(this.#tlsFailures),
    }
  }

  /** Loads persistent sessions and retained messages, then listens. Resolves with the bound address. */
  async start (listen: ListenOptions = {}): Promise<{ host: string, port: number }> {
    // A stopped gateway has closed its sessions into the stores; a new Gateway loads them again.
    if (this.#server !== undefined || this.#stopped) throw new AppError('ERR_GATEWAY_STATE', 'gateway already started or stopped')
    await this.#broker.load()
    const server = createServer({
      ...this.#secureContextOptions(this.#tls),
      requestCert: true,
      rejectUnauthorized: true,
      handshakeTimeout: this.#broker.limits.tlsHandshakeTimeoutMs,
    })
    server.on('secureConnection', (socket: TLSSocket) => {
      // rejectUnauthorized already refused unverified chains; this is belt and braces.
      if (!socket.authorized) { socket.destroy(); return }
      this.#broker.accept(new Connection(socket, this.#broker, this.#clock.nowMs()))
    })
    server.on('tlsClientError', (err: Error, socket: TLSSocket) => {
      this.#broker.metrics.tlsHandshakeFailures++
      const cause = tlsFailureCause(err)
      this.#tlsFailures.set(cause, (this.#tlsFailures.get(cause) ?? 0) + 1)
      this.#broker.metrics.connectionsRejected++
      this.#opts.audit?.record({
        action: GatewayAuditAction.Connect,
        outcome: GatewayAuditOutcome.Denied,
        timeMs: this.#clock.nowMs(),
        reason: 'tls-handshake-failed',
        ...(socket.remoteAddress === undefined ? {} : { sourceAddress: socket.remoteAddress }),
      })
    })
    this.#server = server
    const host = listen.host ?? '127.0.0.1'
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(listen.port ?? 8883, host, () => { server.off('error', reject); resolve() })
    })
    const interval = this.#opts.housekeepingIntervalMs ?? 250
    if (interval > 0) {
      this.#timer = setInterval(() => { this.#broker.housekeeping() }, interval)
      this.#timer.unref()
    }
    const addr = server.address() as AddressInfo
    return { host: addr.address, port: addr.port }
  }

  /**
   * Stops listening, closes every connection (v5 DISCONNECT 0x8B, Wills not published), writes persistent
   * sessions and retained messages to their stores.
   */
  async stop (): Promise<void> {
    this.#stopped = true
    if (this.#timer !== undefined) { clearInterval(this.#timer); this.#timer = undefined }
    const server = this.#server
    this.#server = undefined
    const closed = server === undefined
      ? Promise.resolve()
      : new Promise<void>((resolve) => { server.close(() => { resolve() }) })
    await this.#broker.shutdown()
    await closed
  }

  /** Runs one housekeeping sweep now (keep-alive, deadlines, delayed Wills, session expiry, store flush). */
  runHousekeeping (): void { this.#broker.housekeeping() }

  /** Resolves when every queued store write so far is on disk. */
  flush (): Promise<void> { return this.#broker.flush() }

  /**
   * Replaces the trusted client CAs (our CA plus registered ACTIVE external CAs) for new handshakes. Existing
   * connections are unaffected; use `closeSessionsForCertificate` / `reauthorizeSessions` for those.
   */
  setTrustedCAs (ca: ReadonlyArray<string | Buffer>, crl?: ReadonlyArray<string | Buffer>): void {
    this.#tls = { ...this.#tls, ca, ...(crl === undefined ? {} : { crl }) }
    this.#server?.setSecureContext(this.#secureContextOptions(this.#tls))
  }

  /** Replaces the server certificate and key for new handshakes. */
  setServerCertificate (cert: string | Buffer, key: string | Buffer): void {
    this.#tls = { ...this.#tls, cert, key }
    this.#server?.setSecureContext(this.#secureContextOptions(this.#tls))
  }

  #secureContextOptions (tls: GatewayTlsMaterial): {
    cert: string | Buffer, key: string | Buffer, ca: Array<string | Buffer>, crl?: Array<string | Buffer>,
    minVersion: 'TLSv1.2', maxVersion: 'TLSv1.3', ciphers: string, honorCipherOrder: boolean,
  } {
    return {
      cert: tls.cert,
      key: tls.key,
      ca: [...tls.ca],
      ...(tls.crl === undefined ? {} : { crl: [...tls.crl] }),
      minVersion: 'TLSv1.2',
      maxVersion: 'TLSv1.3',
      ciphers: STRONG_CIPHERS,
      honorCipherOrder: true,
    }
  }

  /** Registers an in-gateway handler for device publishes under a reserved prefix (e.g. `$aws/things/`). */
  handleReserved (prefix: string, handler: ReservedTopicHandler): () => void {
    return this.#broker.handleReserved(prefix, handler)
  }

  /** Publishes a server-originated message (subject to each subscriber's iot:Receive). */
  publish (message: ServerMessage): void { this.#broker.publish(message) }

  /** The retained message of a topic, with when it was stored (after a restart: when it was loaded). */
  retainedMessage (topic: string): { message: StoredMessage, lastModifiedMs: number } | undefined {
    return this.#broker.retainedMessage(topic)
  }

  /** Summaries of every retained message (topic, payload size, QoS, store time), in no particular order. */
  retainedMessages (): Array<{ topic: string, payloadSize: number, qos: GrantedQoS, lastModifiedMs: number }> {
    return this.#broker.retainedSummaries()
  }

  /**
   * Closes one session's connection (v5 DISCONNECT `reasonCode`, default 0x98 Administrative action). The Will
   * is not published unless `publishWill` is set.
   */
  closeSession (clientId: string, reasonCode: number = ReasonCode.AdministrativeAction, opts: CloseSessionOptions = {}): boolean {
    return this.#broker.closeSession(clientId, reasonCode, opts)
  }

  /**
   * Closes every live session authenticated with a certificate (by SHA-256 fingerprint as node:crypto prints
   * it, or by the principal's certificate id), without Wills. Returns the number of connections closed.
   */
  closeSessionsForCertificate (match: { fingerprint256?: string, certificateId?: string },
    reasonCode: number = ReasonCode.AdministrativeAction): number {
    return this.#broker.closeSessionsForCertificate(match, reasonCode)
  }

  /**
   * Re-creates the authorizer of every session matching `predicate` (after a policy, attachment, or group
   * change). Sessions no longer allowed to connect are closed (0x87, no Will); subscriptions no longer allowed
   * are removed; iot:Receive uses the new authorizer from the next delivery on.
   */
  reauthorizeSessions (predicate: (session: GatewaySession) => boolean): Promise<ReauthorizeResult> {
    return this.#broker.reauthorizeSessions(predicate)
  }
}
