/**
 * The broker core: sessions, routing through the topic trie, retained messages, wills, flow control, write-
 * behind persistence and the shared housekeeping sweep. Independent of the listener (gateway.ts wires TLS);
 * driven by Connection objects. Nothing here awaits storage per message: SessionStore and RetainedStore writes
 * are queued and flushed in order, in batches.
 */
import { randomBytes } from 'node:crypto'
import type { IPublishPacket, ISubackPacket, ISubscribePacket, IUnsubackPacket, IUnsubscribePacket } from 'mqtt-packet'
import { AppError } from '../core/index.ts'
import type { Clock } from '../core/index.ts'
import { Connection, ConnectionState, passthroughProperties } from './connection.ts'
import type { ConnectRequest, WillSpec } from './connection.ts'
import { ConnectRateLimiter } from './limits.ts'
import type { GatewayLimits } from './limits.ts'
import type {
  AuditSink, ConnectionAuthenticator, GatewayAuditAction, GatewayAuditEvent, GatewayAuditOutcome, GatewayDecision, GrantedQoS,
  MessageProperties, PayloadDecision, PayloadValidator, RetainedChange, RetainedStore, SessionAuthorizer, SessionAuthorizerFactory,
  SessionPrincipal, SessionStore, StoredMessage, StoredSession,
} from './ports.ts'
import { GatewayAuditAction as Action, GatewayAuditOutcome as Outcome } from './ports.ts'
import { connackCodeForV4, ReasonCode, ReasonString, SUBACK_FAILURE_V4 } from './reason-codes.ts'
import { RoutedMessage, Session, Subscription } from './session.ts'
import type { Delivery, GatewaySession } from './session.ts'
import { RetainedIndex, SubscriptionTrie } from './topic-trie.ts'
import type { SharedGroup } from './topic-trie.ts'
import { checkTopicName, parseTopicFilter } from './topics.ts'
import type { TopicLimits } from './topics.ts'

/** Session Expiry Interval meaning "never expires" (MQTT 5 §3.1.2.11.2). */
const NEVER_EXPIRES = 0xffffffff

/** In-process counters (read with `Gateway.metrics`). */
export interface GatewayMetrics {
  connectionsAccepted: number
  connectionsRejected: number
  tlsHandshakeFailures: number
  messagesIn: number
  messagesOut: number
  messagesDropped: number
  bytesIn: number
  bytesOut: number
  protocolErrors: number
  limitsExceeded: number
  /** Authorization denials keyed `{action}:{reason}`, e.g. `publish:not-authorized`. */
  readonly denials: Map<string, number>
}

/** A message a device published to a reserved topic that an in-gateway handler owns. */
export interface ReservedPublish {
  readonly clientId: string
  readonly principal: SessionPrincipal | undefined
  readonly topic: string
  readonly payload: Buffer
  readonly qos: GrantedQoS
  readonly properties: MessageProperties | undefined
}

/** Handles publishes to a reserved prefix (e.g. `$aws/things/`); must not throw and must not block. */
export type ReservedTopicHandler = (message: ReservedPublish) => void

/** A message published by the gateway itself (shadows, lifecycle events). */
export interface ServerMessage {
  readonly topic: string
  readonly payload: Buffer | string
  readonly qos?: GrantedQoS
  readonly retain?: boolean
  readonly properties?: MessageProperties
  /** MQTT 5 Message Expiry Interval in seconds. */
  readonly messageExpirySec?: number
  /**
   * The payload MQTT 3.1.1 subscribers get instead of `payload`, which has no properties to carry metadata in
   * (used for MFA command tokens: a JSON envelope for 3.1.1 devices, a user property for MQTT 5 devices).
   */
  readonly v311Payload?: Buffer
}

/** Options for closing a session from the server side. */
export interface CloseSessionOptions {
  /** Publish the Will as for an abnormal close. Default false: revocation and policy closes never do. */
  readonly publishWill?: boolean
  /** Also discard the session state (subscriptions, queue), even when it is persistent. */
  readonly discardSession?: boolean
  /** Reason String for v5 clients. */
  readonly reasonString?: string
}

/** Outcome of `reauthorizeSessions`. */
export interface ReauthorizeResult {
  readonly reauthorized: number
  readonly closed: number
  readonly subscriptionsRemoved: number
}

type StoreOp =
  | { kind: 'save', session: StoredSession }
  | { kind: 'delete', clientId: string }
  | { kind: 'append', clientId: string, message: StoredMessage }
  | { kind: 'replace', clientId: string, messages: StoredMessage[] }
  | { kind: 'retained', change: RetainedChange }

/** Broker dependencies. */
export interface BrokerDeps {
  readonly limits: GatewayLimits
  readonly clock: Clock
  readonly authenticator: ConnectionAuthenticator
  readonly authorizers: SessionAuthorizerFactory
  readonly audit: AuditSink | undefined
  readonly sessionStore: SessionStore | undefined
  readonly retainedStore: RetainedStore | undefined
  /** Payload schemas: checked on every client PUBLISH after iot:Publish (see ports.ts PayloadValidator). */
  readonly payloadValidator?: PayloadValidator
  /**
   * Server-published `$` topics every session may subscribe to (that exact filter) and receive regardless of its
   * policies (the authorizer is not asked), such as the command verification keys. Devices still cannot publish there: a `$` topic takes
   * device publishes only where a reserved-topic handler owns it.
   */
  readonly publicTopics?: readonly string[]
  readonly onError: (err: unknown) => void
}

const DENY_ALL: GatewayDecision = { allowed: false, reason: 'authorizer-error' }
const PUBLIC_TOPIC: GatewayDecision = Object.freeze({ allowed: true, statement: 'public server topic' })
/** A device PUBLISH to a `$` topic no in-gateway handler owns (MQTT 5 §4.7.2). */
const RESERVED_TOPIC: GatewayDecision = Object.freeze({ allowed: false, reason: 'reserved-topic' })
/** MQTT 3.1.1 CONNACK, connection accepted (§3.2): Session Present 0 or 1, return code 0x00. */
const CONNACK_V4_ACCEPTED = Buffer.from([0x20, 0x02, 0x00, 0x00])
const CONNACK_V4_RESUMED = Buffer.from([0x20, 0x02, 0x01, 0x00])

const wellFormed = (d: GatewayDecision): GatewayDecision =>
  d !== null && typeof d === 'object' && typeof d.allowed === 'boolean' ? d : DENY_ALL

function decide (fn: () => GatewayDecision): GatewayDecision {
  try {
    return wellFormed(fn())
  } catch {
    return DENY_ALL // fail closed
  }
}

/** `decide` for the per-message questions, without a closure per call. */
function decidePublish (a: SessionAuthorizer, topic: string, retain: boolean): GatewayDecision {
  try { return wellFormed(a.authorizePublish(topic, retain)) } catch { return DENY_ALL }
}

function decideReceive (a: SessionAuthorizer, topic: string): GatewayDecision {
  try { return wellFormed(a.authorizeReceive(topic)) } catch { return DENY_ALL }
}

/** The broker. Internal: the public surface is `Gateway`. */
export class Broker {
  readonly limits: GatewayLimits
  readonly topicLimits: TopicLimits
  readonly metrics: GatewayMetrics = {
    connectionsAccepted: 0,
    connectionsRejected: 0,
    tlsHandshakeFailures: 0,
    messagesIn: 0,
    messagesOut: 0,
    messagesDropped: 0,
    bytesIn: 0,
    bytesOut: 0,
    protocolErrors: 0,
    limitsExceeded: 0,
    denials: new Map(),
  }

  readonly #deps: BrokerDeps
  readonly #sessions = new Map<string, Session>()
  readonly #connections = new Set<Connection>()
  readonly #offline = new Set<Session>()
  readonly #trie = new SubscriptionTrie<Subscription>()
  readonly #retained = new RetainedIndex<RoutedMessage>()
  /** When each retained message was stored (iot-data GetRetainedMessage `lastModifiedTime`); load time after a restart. */
  readonly #retainedAtMs = new Map<string, number>()
  readonly #connectRate = new ConnectRateLimiter()
  readonly #reserved: Array<[string, ReservedTopicHandler]> = []
  readonly #publicTopics: ReadonlySet<string>
  #routeEpoch = 0
  readonly #matchSubs: Subscription[] = []
  readonly #matchGroups: Array<SharedGroup<Subscription>> = []
  readonly #targets: Session[] = []
  #routing = false
  readonly #backlog: RoutedMessage[] = []
  #ops: StoreOp[] = []
  #flushing: Promise<void> | undefined = undefined
  #flushScheduled = false
  #stopped = false

  constructor (deps: BrokerDeps) {
    this.#deps = deps
    this.limits = deps.limits
    this.topicLimits = {
      maxTopicBytes: deps.limits.maxTopicBytes,
      maxTopicSlashes: deps.limits.maxTopicSlashes,
      maxReservedTopicBytes: deps.limits.maxReservedTopicBytes,
      reservedPrefix: '$aws/',
    }
    for (const topic of deps.publicTopics ?? []) {
      const problem = checkTopicName(topic)
      if (problem !== undefined || topic.charCodeAt(0) !== 0x24) throw new AppError('ERR_GATEWAY_TOPIC_INVALID', 'a public topic must be a valid $ topic name', { topic, problem: problem ?? 'not-reserved' })
    }
    this.#publicTopics = new Set(deps.publicTopics)
  }

  /** iot:Subscribe for one filter: the session's authorizer (fail closed), except for the public topics. */
  #decideSubscribe (authorizer: SessionAuthorizer | undefined, filter: string): GatewayDecision {
    if (authorizer === undefined) return DENY_ALL
    if (this.#publicTopics.has(filter)) return PUBLIC_TOPIC
    try { return wellFormed(authorizer.authorizeSubscribe(filter)) } catch { return DENY_ALL }
  }

  nowMs (): number { return this.#deps.clock.nowMs() }

  /** Live view of sessions by client id (connected and persistent offline ones). */
  get sessions (): ReadonlyMap<string, GatewaySession> { return this.#sessions }

  get connectionCount (): number { return this.#connections.size }

  get retainedCount (): number { return this.#retained.size }

  // ---- audit and metrics ------------------------------------------------------------------------------

  audit (conn: Connection | undefined, action: GatewayAuditAction, outcome: GatewayAuditOutcome, reason: string,
    resource?: string, reasonCode?: number, statement?: string, session?: Session): void {
    const sink = this.#deps.audit
    if (sink === undefined) return
    const s = session ?? conn?.session
    const event: { -readonly [K in keyof GatewayAuditEvent]: GatewayAuditEvent[K] } = {
      action, outcome, reason, timeMs: this.nowMs(),
    }
    const clientId = s?.clientId ?? (conn !== undefined && conn.clientId !== '' ? conn.clientId : undefined)
    if (clientId !== undefined) event.clientId = clientId
    if (s?.principal !== undefined) event.principalId = s.principal.id
    const fp = s?.certificateFingerprint256
    if (fp !== undefined) event.certificateFingerprint256 = fp
    const addr = conn?.sourceAddress ?? s?.sourceAddress
    if (addr !== undefined && addr !== '') event.sourceAddress = addr
    if (resource !== undefined) event.resource = resource
    if (reasonCode !== undefined) event.reasonCode = reasonCode
    if (statement !== undefined) event.statement = statement
    try { sink.record(event) } catch (err) { this.#deps.onError(err) }
  }

  #deny (action: string, decision: GatewayDecision): void {
    const key = `${action}:${decision.reason ?? 'not-authorized'}`
    this.metrics.denials.set(key, (this.metrics.denials.get(key) ?? 0) + 1)
  }

  // ---- connections --------------------------------------------------------------------------------------

  /** Registers a socket that completed its TLS handshake. */
  accept (conn: Connection): void {
    if (this.#stopped) { conn.socket.destroy(); return }
    this.#connections.add(conn)
  }

  assignClientId (): string {
    return `tw-${randomBytes(12).toString('hex')}`
  }

  /**
   * Authenticates a validated CONNECT, builds the session authorizer, checks iot:Connect, takes over or resumes
   * the session, and sends CONNACK. Asynchronous only here, never per message.
   */
  admit (conn: Connection, req: ConnectRequest): void {
    this.#admit(conn, req).catch((err: unknown) => {
      this.#deps.onError(err)
      if (!conn.closed) conn.refuse(ReasonCode.UnspecifiedError)
    })
  }

  async #admit (conn: Connection, req: ConnectRequest): Promise<void> {
    const v5 = conn.version === 5
    const refuse = (reasonV5: number, reason: string, statement?: string): void => {
      this.metrics.connectionsRejected++
      this.audit(conn, Action.Connect, Outcome.Denied, reason, req.clientId, v5 ? reasonV5 : connackCodeForV4(reasonV5), statement)
      conn.refuse(reasonV5)
    }
    // The certificate is read and looked up on every connection, resumed TLS sessions included.
    const cert = conn.socket.getPeerX509Certificate()
    if (cert === undefined) { refuse(ReasonCode.NotAuthorized, 'no-client-certificate'); return }
    const fingerprint256 = cert.fingerprint256
    let principal: SessionPrincipal
    try {
      const result = await this.#deps.authenticator.authenticate({
        certificate: cert,
        fingerprint256,
        clientId: req.clientId,
        sourceAddress: conn.sourceAddress,
        protocolVersion: conn.version,
        tlsSessionReused: conn.socket.isSessionReused(),
      })
      if (conn.closed) return
      if (!result.ok) { refuse(ReasonCode.NotAuthorized, result.reason); return }
      principal = result.principal
    } catch (err) {
      this.#deps.onError(err)
      if (!conn.closed) refuse(ReasonCode.NotAuthorized, 'authenticator-error')
      return
    }
    let authorizer: SessionAuthorizer
    try {
      authorizer = await this.#deps.authorizers.create(principal, {
        clientId: req.clientId, sourceAddress: conn.sourceAddress, protocolVersion: conn.version, certificateFingerprint256: fingerprint256,
      })
    } catch (err) {
      this.#deps.onError(err)
      if (!conn.closed) refuse(ReasonCode.NotAuthorized, 'authorizer-error')
      return
    }
    if (conn.closed) return
    if (this.#stopped) { refuse(ReasonCode.ServerUnavailable, 'server-shutting-down'); return }
    const decision = decide(() => authorizer.authorizeConnect(req.attributes))
    if (!decision.allowed) {
      this.#deny('connect', decision)
      refuse(ReasonCode.NotAuthorized, decision.reason ?? 'not-authorized', decision.statement)
      return
    }
    // AWS: connection attempts per client id are rate limited (1/s) → v5 0x9F Connection rate exceeded. Counted
    // only for principals allowed to use the client id, so another device cannot exhaust a victim's budget.
    if (!this.#connectRate.attempt(req.clientId, this.nowMs(), this.limits.connectAttemptsPerClientIdPerSecond)) {
      this.metrics.limitsExceeded++
      refuse(ReasonCode.ConnectionRateExceeded, 'connect-rate-exceeded')
      return
    }

    // Session: take over a live connection, then resume or start fresh [MQTT-3.1.2-4 … 3.1.2-6] [MQTT-3.1.4-3].
    const clientId = req.clientId
    let session = this.#sessions.get(clientId)
    const resume = !req.cleanStart && session !== undefined && session.protocolVersion === conn.version
    if (session?.connection !== undefined) {
      const old = session.connection
      this.audit(old, Action.Session, Outcome.Closed, 'session-taken-over', clientId, ReasonCode.SessionTakenOver)
      // MQTT 5 §3.1.3.2.2: a new connection to the session before the Will Delay elapses cancels the Will;
      // with no delay (or when the session ends) the old connection's Will is published.
      if (old.will !== undefined && resume && old.will.delaySec > 0) old.will = undefined
      old.close(ReasonCode.SessionTakenOver)
    }
    session = this.#sessions.get(clientId)
    if (session !== undefined && !resume) {
      this.#endSession(session, true)
      session = undefined
    }
    let sessionPresent = false
    if (session !== undefined) {
      sessionPresent = true
      // [MQTT-3.1.3-9] a new connection before the Will Delay Interval passed: the pending Will is not sent.
      session.pendingWill = undefined
      session.willAtMs = 0
      this.#offline.delete(session)
      session.expiresAtMs = 0
      session.disconnectedAtMs = undefined
    } else {
      session = new Session(clientId, conn.version, req.sessionExpirySec)
      this.#sessions.set(clientId, session)
    }
    session.expiryIntervalSec = req.sessionExpirySec
    session.authorizer = authorizer
    session.principal = principal
    session.certificateFingerprint256 = fingerprint256
    session.sourceAddress = conn.sourceAddress
    session.connection = conn
    conn.session = session
    this.metrics.connectionsAccepted++

    // Re-check resumed subscriptions against the (possibly changed) policy.
    if (sessionPresent) {
      for (const sub of [...session.subscriptions.values()]) {
        const d = this.#decideSubscribe(authorizer, sub.rawFilter)
        if (!d.allowed) {
          this.#deny('subscribe', d)
          this.audit(conn, Action.Subscribe, Outcome.Denied, d.reason ?? 'not-authorized', sub.rawFilter, undefined, d.statement)
          this.#removeSubscription(session, sub)
        }
      }
    }

    if (v5) {
      const properties: NonNullable<import('mqtt-packet').IConnackPacket['properties']> = {
        maximumQoS: 1,
        retainAvailable: true,
        maximumPacketSize: this.limits.maxPacketBytes,
        wildcardSubscriptionAvailable: true,
        subscriptionIdentifiersAvailable: true,
        sharedSubscriptionAvailable: true,
        receiveMaximum: this.limits.receiveMaximum,
      }
      if (this.limits.topicAliasMaximum > 0) properties.topicAliasMaximum = this.limits.topicAliasMaximum
      if (req.assignedClientId) properties.assignedClientIdentifier = clientId
      if (req.keepAliveChanged) properties.serverKeepAlive = req.keepAliveSec
      if (req.sessionExpiryClamped) properties.sessionExpiryInterval = req.sessionExpirySec
      conn.send({ cmd: 'connack', sessionPresent, reasonCode: ReasonCode.Success, properties })
    } else {
      // [MQTT-3.2.2-1 … 3.2.2-3] session present only when resuming a persistent session.
      conn.write(sessionPresent ? CONNACK_V4_RESUMED : CONNACK_V4_ACCEPTED)
    }
    this.audit(conn, Action.Connect, Outcome.Allowed, 'connected', clientId, ReasonCode.Success, decision.statement)
    if (session.expiryIntervalSec > 0) this.#persistSession(session)
    else if (session.persisted) { session.persisted = false; this.#op({ kind: 'delete', clientId }) }
    conn.activate()
    // [MQTT-4.4.0-1] re-send unacknowledged PUBLISH packets (DUP set), then queued messages, in order.
    this.pump(session)
  }

  /**
   * Called exactly once when a connection is closed, by whichever side. Publishes or schedules the Will, and
   * ends or parks the session.
   */
  connectionClosed (conn: Connection): void {
    this.#connections.delete(conn)
    const session = conn.session
    if (session === undefined || session.connection !== conn) return
    session.connection = undefined
    const nowMs = this.nowMs()
    const will = conn.will
    conn.will = undefined
    if (will !== undefined) {
      // MQTT 5 §3.1.3.2.2: publish after min(Will Delay, Session Expiry); 3.1.1 has no delay [MQTT-3.1.2-8].
      const delaySec = Math.min(will.delaySec, session.expiryIntervalSec)
      if (delaySec <= 0) this.#publishWill(session, will)
      else { session.pendingWill = will; session.willAtMs = nowMs + delaySec * 1000 }
    }
    if (session.expiryIntervalSec === 0) {
      this.#endSession(session, true)
      return
    }
    session.requeueInflight()
    session.disconnectedAtMs = nowMs
    session.expiresAtMs = session.expiryIntervalSec >= NEVER_EXPIRES ? 0 : nowMs + session.expiryIntervalSec * 1000
    this.#offline.add(session)
    if (this.#deps.sessionStore !== undefined) {
      this.#persistSession(session)
      this.#op({ kind: 'replace', clientId: session.clientId, messages: session.storedMessages() })
    }
  }

  #publishWill (session: Session, will: WillSpec): void {
    // MQTT 5 §3.1.3.2.4: the Will's Message Expiry Interval starts when it is published.
    const expiresAtMs = will.expirySec > 0 ? this.nowMs() + will.expirySec * 1000 : 0
    const message = new RoutedMessage(will.topic, will.payload, will.qos, will.retain, will.properties, expiresAtMs, session)
    const authorizer = session.authorizer
    // The Will is published with the session's current rights: iot:Publish (+ RetainPublish) on its topic.
    const d = authorizer === undefined ? DENY_ALL : decidePublish(authorizer, message.topic, message.retain)
    if (!d.allowed) {
      this.#deny('will', d)
      this.audit(undefined, Action.Will, Outcome.Denied, d.reason ?? 'not-authorized', message.topic, undefined, d.statement, session)
      return
    }
    this.audit(undefined, Action.Will, Outcome.Allowed, 'will-published', message.topic, undefined, undefined, session)
    if (message.retain && !message.topic.startsWith('$')) this.#retain(message)
    this.route(message)
  }

  /** Ends a session: removes its subscriptions and state; a pending Will is published (session end). */
  #endSession (session: Session, publishPendingWill: boolean): void {
    if (this.#sessions.get(session.clientId) === session) this.#sessions.delete(session.clientId)
    this.#offline.delete(session)
    for (const sub of session.subscriptions.values()) this.#trie.remove(sub.filter, sub)
    session.subscriptions.clear()
    session.queue = undefined
    session.queueHead = 0
    session.inflight = undefined
    const will = session.pendingWill
    session.pendingWill = undefined
    // [MQTT-3.1.3-9] "… or the Session ends, whichever happens first".
    if (will !== undefined && publishPendingWill) this.#publishWill(session, will)
    if (session.persisted) {
      session.persisted = false
      this.#op({ kind: 'delete', clientId: session.clientId })
    }
  }

  // ---- publish and routing ------------------------------------------------------------------------------

  /** Registers a handler for device publishes under a reserved prefix; returns an unregister function. */
  handleReserved (prefix: string, handler: ReservedTopicHandler): () => void {
    const entry: [string, ReservedTopicHandler] = [prefix, handler]
    this.#reserved.push(entry)
    this.#reserved.sort((a, b) => b[0].length - a[0].length)
    return () => {
      const i = this.#reserved.indexOf(entry)
      if (i >= 0) this.#reserved.splice(i, 1)
    }
  }

  #reservedHandler (topic: string): ReservedTopicHandler | undefined {
    for (const [prefix, handler] of this.#reserved) if (topic.startsWith(prefix)) return handler
    return undefined
  }

  /** Handles a validated, rate-checked PUBLISH from a client. Returns false when the connection was closed. */
  publishFromClient (conn: Connection, topic: string, payload: Buffer, qos: GrantedQoS, retain: boolean,
    props: IPublishPacket['properties'] | undefined, messageId: number): boolean {
    const session = conn.session as Session
    const v5 = conn.version === 5
    // Device publishes to `$` topics are accepted only where an in-gateway handler owns the prefix: `$` topics
    // are for server-specific purposes (MQTT 5 §4.7.2) and clients must not use them to talk to each other.
    const handler = topic.charCodeAt(0) === 0x24 ? this.#reservedHandler(topic) : undefined
    if (topic.charCodeAt(0) === 0x24 && handler === undefined) {
      return this.#refusePublish(conn, topic, qos, messageId, RESERVED_TOPIC, 'reserved-topic', ReasonCode.TopicNameInvalid, ReasonString.TopicInvalid)
    }
    const authorizer = session.authorizer
    const d = authorizer === undefined ? DENY_ALL : decidePublish(authorizer, topic, retain)
    if (!d.allowed) return this.#refusePublish(conn, topic, qos, messageId, d, 'not-authorized', ReasonCode.NotAuthorized, ReasonString.NotAuthorized)
    // Payload schemas, after authorization (an unauthorized client learns nothing about them) and before the
    // message is retained, routed or handled: a refused payload reaches nobody.
    const pv = this.#deps.payloadValidator
    if (pv !== undefined) {
      let pd: PayloadDecision
      try { pd = pv.validate(topic, payload) } catch (err) { this.#deps.onError(err); pd = DENY_ALL }
      // MQTT 5 §3.4.2.1 PUBACK 0x99 Payload format invalid.
      if (!pd.allowed) return this.#refusePublish(conn, topic, qos, messageId, pd, 'payload-invalid', ReasonCode.PayloadFormatInvalid, pd.reasonString)
    }
    const expirySec = props?.messageExpiryInterval
    const expiresAtMs = expirySec !== undefined && expirySec > 0 ? this.nowMs() + expirySec * 1000 : 0
    const message = new RoutedMessage(topic, payload, qos, retain, passthroughProperties(props), expiresAtMs, session)
    if (handler !== undefined) {
      try {
        handler({ clientId: session.clientId, principal: session.principal, topic, payload, qos, properties: message.properties })
      } catch (err) {
        this.#deps.onError(err)
      }
    } else {
      if (retain && !this.#retain(message)) {
        this.metrics.limitsExceeded++
        this.audit(conn, Action.Limit, Outcome.Limited, 'retained-quota-exceeded', topic, ReasonCode.QuotaExceeded)
        if (v5) {
          if (qos === 1) conn.puback(messageId, ReasonCode.QuotaExceeded, ReasonString.RetainedQuota)
          return true
        }
      }
      this.route(message)
    }
    if (qos === 1) conn.puback(messageId, ReasonCode.Success)
    return true
  }

  /**
   * Refuses a client PUBLISH (denied, or its payload refused): counted and audited; MQTT 5 answers a QoS 1
   * publish with `v5Code`, and 3.1.1, which has no negative PUBACK, closes the connection (as AWS IoT does).
   * Returns false when the connection was closed.
   */
  #refusePublish (conn: Connection, topic: string, qos: GrantedQoS, messageId: number, d: PayloadDecision, fallbackReason: string,
    v5Code: number, v5String: string | undefined): boolean {
    const v5 = conn.version === 5
    this.#deny('publish', d)
    this.audit(conn, Action.Publish, v5 ? Outcome.Denied : Outcome.Closed, d.reason ?? fallbackReason, topic, v5 ? v5Code : undefined, d.statement)
    if (!v5) { conn.close(undefined); return false }
    if (qos === 1) conn.puback(messageId, v5Code, v5String)
    return true
  }

  /** Stores or clears a retained message; false when the retained quota is full. */
  #retain (message: RoutedMessage): boolean {
    if (message.payload.length === 0) {
      // [MQTT-3.3.1-10] [MQTT-3.3.1-11] a zero-byte retained message removes the retained message, and is not stored.
      if (this.#retained.delete(message.topic)) this.#op({ kind: 'retained', change: { topic: message.topic } })
      this.#retainedAtMs.delete(message.topic)
      return true
    }
    if (this.#retained.size >= this.limits.maxRetainedMessages && this.#retained.get(message.topic) === undefined) return false
    // [MQTT-3.3.1-5] store the message, replacing any existing one for the topic.
    this.#retained.set(message.topic, message)
    this.#retainedAtMs.set(message.topic, this.nowMs())
    this.#op({ kind: 'retained', change: { topic: message.topic, message: message.toStored() } })
    return true
  }

  /** The retained message of a topic (unexpired), with when it was stored. */
  retainedMessage (topic: string): { message: StoredMessage, lastModifiedMs: number } | undefined {
    const m = this.#retained.get(topic)
    if (m === undefined || m.isExpired(this.nowMs())) return undefined
    return { message: m.toStored(), lastModifiedMs: this.#retainedAtMs.get(topic) ?? 0 }
  }

  /** Every unexpired retained message's topic, payload size, QoS and store time (for ListRetainedMessages). */
  retainedSummaries (): Array<{ topic: string, payloadSize: number, qos: GrantedQoS, lastModifiedMs: number }> {
    const nowMs = this.nowMs()
    const out: Array<{ topic: string, payloadSize: number, qos: GrantedQoS, lastModifiedMs: number }> = []
    this.#retained.all((m) => {
      if (!m.isExpired(nowMs)) out.push({ topic: m.topic, payloadSize: m.payload.length, qos: m.qos, lastModifiedMs: this.#retainedAtMs.get(m.topic) ?? 0 })
    })
    return out
  }

  /** Publishes a server-originated message (no iot:Publish check; iot:Receive applies per subscriber). */
  publish (m: ServerMessage): void {
    const problem = checkTopicName(m.topic)
    if (problem !== undefined) throw new AppError('ERR_GATEWAY_TOPIC_INVALID', 'invalid topic name', { topic: m.topic, problem })
    const payload = typeof m.payload === 'string' ? Buffer.from(m.payload) : m.payload
    const expiresAtMs = m.messageExpirySec !== undefined && m.messageExpirySec > 0 ? this.nowMs() + m.messageExpirySec * 1000 : 0
    const message = new RoutedMessage(m.topic, payload, m.qos ?? 0, m.retain === true, m.properties, expiresAtMs, undefined, m.v311Payload)
    if (message.retain) this.#retain(message)
    this.route(message)
  }

  /**
   * Routes a message to every matching subscription. One copy per session, at the highest QoS of its matching
   * subscriptions, with all their Subscription Identifiers [MQTT-3.3.4-2] [MQTT-3.3.4-3]; one member per shared
   * group (MQTT 5 §4.8.2). Never blocks: a slow subscriber only affects its own queue.
   */
  route (message: RoutedMessage): void {
    // A delivery can close a connection, whose Will is then routed: finish this message first (the scratch
    // arrays and per-session route fields belong to the message being routed).
    if (this.#routing) { this.#backlog.push(message); return }
    this.#routing = true
    try {
      this.#route(message)
      while (this.#backlog.length > 0) this.#route(this.#backlog.shift() as RoutedMessage)
    } finally {
      this.#routing = false
    }
  }

  #route (message: RoutedMessage): void {
    const subs = this.#matchSubs
    const groups = this.#matchGroups
    const targets = this.#targets
    subs.length = 0
    groups.length = 0
    targets.length = 0
    this.#trie.match(message.topic, subs, groups)
    const epoch = ++this.#routeEpoch
    for (let i = 0; i < subs.length; i++) {
      const sub = subs[i]
      const s = sub.session
      // [MQTT-3.8.3-3] No Local: not to the connection that published it.
      if (sub.noLocal && message.origin === s) continue
      if (s.routeEpoch !== epoch) {
        s.routeEpoch = epoch
        s.routeQos = sub.qos
        s.routeRap = sub.retainAsPublished
        s.routeSubIds = sub.subscriptionId === undefined ? undefined : [sub.subscriptionId]
        targets.push(s)
      } else {
        if (sub.qos > s.routeQos) s.routeQos = sub.qos
        if (sub.retainAsPublished) s.routeRap = true
        if (sub.subscriptionId !== undefined) (s.routeSubIds ??= []).push(sub.subscriptionId)
      }
    }
    const nowMs = this.nowMs()
    for (let i = 0; i < targets.length; i++) {
      const s = targets[i]
      // [MQTT-3.3.1-9] (3.1.1) / [MQTT-3.3.1-12] (5): RETAIN is 0 on normal delivery unless Retain As Published.
      this.#deliver(s, message, s.routeQos < message.qos ? s.routeQos : message.qos, s.routeRap && message.retain, s.routeSubIds, nowMs, false)
    }
    for (let i = 0; i < groups.length; i++) this.#deliverShared(groups[i], message, nowMs)
    subs.length = 0
    groups.length = 0
    targets.length = 0
  }

  #deliverShared (group: SharedGroup<Subscription>, message: RoutedMessage, nowMs: number): void {
    const members = group.members
    const n = members.length
    if (n === 0) return
    // Round robin, preferring members that are online and not backed up (MQTT 5 §4.8.2 leaves the choice to us).
    let chosen: Subscription | undefined
    for (let k = 0; k < n; k++) {
      const sub = members[(group.cursor + k) % n]
      const c = sub.session.connection
      if (c !== undefined && !c.backpressured && sub.session.queuedMessages === 0) {
        chosen = sub
        group.cursor = (group.cursor + k + 1) % n
        break
      }
    }
    if (chosen === undefined) {
      chosen = members[group.cursor % n]
      group.cursor = (group.cursor + 1) % n
    }
    const qos = chosen.qos < message.qos ? chosen.qos : message.qos
    const subIds = chosen.subscriptionId === undefined ? undefined : [chosen.subscriptionId]
    this.#deliver(chosen.session, message, qos, chosen.retainAsPublished && message.retain, subIds, nowMs, false)
  }

  #receiveAllowed (session: Session, topic: string): boolean {
    const authorizer = session.authorizer
    if (authorizer === undefined) return true // restored offline session: checked when it is delivered
    if (topic.charCodeAt(0) === 0x24 && this.#publicTopics.has(topic)) return true
    const d = decideReceive(authorizer, topic)
    if (d.allowed) return true
    this.#deny('receive', d)
    this.audit(undefined, Action.Receive, Outcome.Denied, d.reason ?? 'not-authorized', topic, undefined, d.statement, session)
    return false
  }

  /** Delivers (or queues) one message to one session. `retained` marks a replay on subscribe. */
  #deliver (session: Session, message: RoutedMessage, qos: GrantedQoS, retain: boolean, subIds: number[] | undefined,
    nowMs: number, retained: boolean): void {
    if (!this.#receiveAllowed(session, message.topic)) return
    const conn = session.connection
    if (conn === undefined) {
      // Offline persistent session: QoS 1 is queued [MQTT-3.1.2-5]; QoS 0 may be dropped (3.1.1 §3.1.2.4).
      if (qos === 0) return
      if (!this.#enqueue(session, { msg: message, qos, retain, subscriptionIds: subIds, messageId: 0, dup: false })) return
      if (session.persisted) this.#op({ kind: 'append', clientId: session.clientId, message: { ...message.toStored(), qos, retain } })
      return
    }
    if (qos === 0) {
      if (conn.backpressured) { this.metrics.messagesDropped++; return }
      this.#send(session, conn, { msg: message, qos, retain, subscriptionIds: subIds, messageId: 0, dup: false }, nowMs)
      return
    }
    const d: Delivery = { msg: message, qos, retain, subscriptionIds: subIds, messageId: 0, dup: false }
    const inflight = session.inflight
    if (session.queuedMessages === 0 && !conn.backpressured &&
      (inflight === undefined || inflight.size < this.#window(conn))) {
      this.#send(session, conn, d, nowMs)
      return
    }
    if (!this.#enqueue(session, d) && this.limits.slowSubscriberPolicy === 'disconnect' && !retained) {
      this.audit(conn, Action.Limit, Outcome.Closed, 'slow-subscriber', message.topic, ReasonCode.QuotaExceeded)
      conn.close(ReasonCode.QuotaExceeded, ReasonString.SlowConsumer)
    }
  }

  #window (conn: Connection): number {
    return Math.min(conn.clientReceiveMaximum, this.limits.maxInflightOutbound)
  }

  #enqueue (session: Session, d: Delivery): boolean {
    const q = (session.queue ??= [])
    if (q.length - session.queueHead >= this.limits.maxQueuedMessages) {
      this.metrics.messagesDropped++
      this.metrics.limitsExceeded++
      return false
    }
    q.push(d)
    return true
  }

  /** Writes one delivery. QoS 1 goes in flight with a fresh Packet Identifier (or its old one when re-sent). */
  #send (session: Session, conn: Connection, d: Delivery, nowMs: number): void {
    if (d.qos === 1) {
      if (d.messageId === 0) d.messageId = session.nextPacketId()
      ;(session.inflight ??= new Map()).set(d.messageId, d)
    }
    const bytes = d.msg.encode(conn.version, d.qos, d.retain, d.dup, d.messageId, d.subscriptionIds, nowMs)
    // [MQTT-3.1.2-25] never send a packet larger than the client's Maximum Packet Size: discard it as if sent.
    if (conn.clientMaximumPacketBytes > 0 && bytes.length > conn.clientMaximumPacketBytes) {
      if (d.qos === 1) session.inflight?.delete(d.messageId)
      this.metrics.messagesDropped++
      return
    }
    this.metrics.messagesOut++
    conn.write(bytes)
  }

  /** Moves queued messages into flight while the window and the socket allow. */
  pump (session: Session): void {
    const conn = session.connection
    const q = session.queue
    if (conn === undefined || conn.state !== ConnectionState.Connected || q === undefined) return
    const nowMs = this.nowMs()
    const window = this.#window(conn)
    let i = session.queueHead
    while (i < q.length && (session.inflight?.size ?? 0) < window && !conn.backpressured) {
      const d = q[i++]
      // Taken before it is sent: if the send closes the connection, the session re-queues from here on.
      session.queueHead = i
      // MQTT 5 §3.3.2.3.3: an expired message is not delivered; iot:Receive is re-checked after waiting.
      if (d.msg.isExpired(nowMs)) { this.metrics.messagesDropped++; continue }
      if (!this.#receiveAllowed(session, d.msg.topic)) continue
      this.#send(session, conn, d, nowMs)
      if (session.connection !== conn) break
    }
    // A delivery may have closed the connection, which re-queued or dropped the queue: only a live queue moves on.
    if (session.queue !== q) return
    if (i >= q.length) {
      session.queue = undefined
      session.queueHead = 0
    } else if (i > 1024 && i * 2 > q.length) {
      // Compact now and then, so a long-lived backlog does not keep its consumed head.
      session.queue = q.slice(i)
      session.queueHead = 0
    }
  }

  /** PUBACK from the client: the message is delivered [MQTT-4.3.2-…]; fill the window again. */
  acknowledge (session: Session, messageId: number): void {
    if (session.inflight?.delete(messageId) === true && session.queue !== undefined) this.pump(session)
  }

  // ---- subscriptions ------------------------------------------------------------------------------------

  /** Handles SUBSCRIBE; returns false when the connection was closed. */
  subscribe (conn: Connection, p: ISubscribePacket): boolean {
    const session = conn.session as Session
    const v5 = conn.version === 5
    // [MQTT-3.8.3-3] a SUBSCRIBE must contain at least one topic filter / subscription option pair.
    if (p.subscriptions.length === 0) return conn.protocolViolation(ReasonCode.ProtocolError, 'empty-subscribe')
    let subId: number | undefined
    if (v5) {
      const raw = p.properties?.subscriptionIdentifier
      // MQTT 5 §3.8.2.1.2: Subscription Identifier 1..268,435,455 and at most once; 0 is a Protocol Error.
      if (Array.isArray(raw) || raw === 0) return conn.protocolViolation(ReasonCode.ProtocolError, 'subscription-identifier-invalid')
      subId = raw
    }
    const fail = v5 ? undefined : SUBACK_FAILURE_V4
    const granted: number[] = []
    const replay: Subscription[] = []
    let denied = false
    let changed = false
    const authorizer = session.authorizer
    for (let i = 0; i < p.subscriptions.length; i++) {
      const s = p.subscriptions[i]
      const raw = s.topic
      // [MQTT-1.5.3-1] U+FFFD here means the decoder met ill-formed UTF-8.
      if (raw.includes('\uFFFD')) return conn.protocolViolation(ReasonCode.MalformedPacket, 'filter-not-utf8')
      if (i >= this.limits.maxFiltersPerSubscribe) {
        this.metrics.limitsExceeded++
        this.audit(conn, Action.Limit, Outcome.Limited, 'too-many-filters-in-subscribe', raw, ReasonCode.QuotaExceeded)
        granted.push(fail ?? ReasonCode.QuotaExceeded)
        continue
      }
      const parsed = parseTopicFilter(raw, this.topicLimits)
      if (typeof parsed === 'string') {
        this.metrics.limitsExceeded++
        this.audit(conn, Action.Limit, Outcome.Limited, `filter-${parsed}`, raw, ReasonCode.TopicFilterInvalid)
        granted.push(fail ?? ReasonCode.TopicFilterInvalid)
        continue
      }
      // [MQTT-3.8.3-4] No Local on a shared subscription is a Protocol Error.
      if (parsed.group !== undefined && s.nl === true) return conn.protocolViolation(ReasonCode.ProtocolError, 'no-local-on-shared')
      const d = this.#decideSubscribe(authorizer, raw)
      if (!d.allowed) {
        this.#deny('subscribe', d)
        this.audit(conn, Action.Subscribe, Outcome.Denied, d.reason ?? 'not-authorized', raw, v5 ? ReasonCode.NotAuthorized : SUBACK_FAILURE_V4, d.statement)
        granted.push(fail ?? ReasonCode.NotAuthorized)
        denied = true
        continue
      }
      const existing = session.subscriptions.get(raw)
      if (existing === undefined && session.subscriptions.size >= this.limits.maxSubscriptionsPerSession) {
        this.metrics.limitsExceeded++
        this.audit(conn, Action.Limit, Outcome.Limited, 'subscription-limit', raw, ReasonCode.QuotaExceeded)
        granted.push(fail ?? ReasonCode.QuotaExceeded)
        continue
      }
      // QoS 2 requests are granted QoS 1, our maximum (MQTT 3.1.1 §3.9.3 / MQTT 5 §3.9.3 allow a lower grant).
      const qos: GrantedQoS = s.qos === 0 ? 0 : 1
      const rh = (v5 ? (s.rh ?? 0) : 0) as 0 | 1 | 2
      const nl = v5 && s.nl === true
      const rap = v5 && s.rap === true
      let sub: Subscription
      if (existing !== undefined) {
        // [MQTT-3.8.4-3] an identical filter replaces the existing subscription (and its options).
        existing.qos = qos
        existing.noLocal = nl
        existing.retainAsPublished = rap
        existing.retainHandling = rh
        existing.subscriptionId = subId
        sub = existing
      } else {
        sub = new Subscription(session, raw, parsed.filter, parsed.group, qos, nl, rap, rh, subId)
        session.subscriptions.set(raw, sub)
        this.#trie.add(parsed.filter, sub)
      }
      changed = true
      granted.push(qos)
      // Retained messages on subscribe: Retain Handling 0 always, 1 only for a new subscription, 2 never
      // (MQTT 5 §3.8.3.1); never for shared subscriptions (MQTT 5 §4.8.2). 3.1.1: always [MQTT-3.8.4-3].
      if (parsed.group === undefined && (rh === 0 || (rh === 1 && existing === undefined))) replay.push(sub)
    }
    // [MQTT-3.8.4-1] SUBACK with the same Packet Identifier [MQTT-3.8.4-2], one code per filter, in order [MQTT-3.8.4-5].
    const suback: ISubackPacket = { cmd: 'suback', messageId: p.messageId ?? 0, granted }
    if (v5 && denied && conn.problemInformation) suback.properties = { reasonString: ReasonString.NotAuthorized }
    conn.send(suback)
    if (changed && session.expiryIntervalSec > 0) this.#persistSession(session)
    const nowMs = this.nowMs()
    for (const sub of replay) {
      this.#retained.match(sub.filter, (m) => {
        if (m.isExpired(nowMs)) return
        // [MQTT-3.3.1-8] retained messages sent because of a new subscription have RETAIN set.
        const subIds = sub.subscriptionId === undefined ? undefined : [sub.subscriptionId]
        this.#deliver(session, m, sub.qos < m.qos ? sub.qos : m.qos, true, subIds, nowMs, true)
      })
    }
    return !conn.closed
  }

  /** Handles UNSUBSCRIBE [MQTT-3.10.4-1 … 3.10.4-6]. */
  unsubscribe (conn: Connection, p: IUnsubscribePacket): boolean {
    const session = conn.session as Session
    const codes: number[] = []
    let changed = false
    for (const raw of p.unsubscriptions) {
      const sub = session.subscriptions.get(raw)
      if (sub === undefined) { codes.push(ReasonCode.NoSubscriptionExisted); continue }
      this.#removeSubscription(session, sub)
      changed = true
      codes.push(ReasonCode.Success)
    }
    const unsuback: IUnsubackPacket = { cmd: 'unsuback', messageId: p.messageId ?? 0, granted: conn.version === 5 ? codes : [] }
    conn.send(unsuback)
    if (changed && session.expiryIntervalSec > 0) this.#persistSession(session)
    return true
  }

  #removeSubscription (session: Session, sub: Subscription): void {
    session.subscriptions.delete(sub.rawFilter)
    this.#trie.remove(sub.filter, sub)
  }

  // ---- operator actions ---------------------------------------------------------------------------------

  /**
   * Closes a session's connection from the server side (v5: DISCONNECT with `reasonCode`). By default the Will
   * is not published: a revocation must not let the device speak once more.
   */
  closeSession (clientId: string, reasonCode: number, opts: CloseSessionOptions = {}): boolean {
    const session = this.#sessions.get(clientId)
    if (session === undefined) return false
    const publishWill = opts.publishWill === true
    if (!publishWill) session.pendingWill = undefined
    const conn = session.connection
    if (conn !== undefined) {
      if (!publishWill) conn.will = undefined
      this.audit(conn, Action.Session, Outcome.Closed, 'closed-by-server', clientId, reasonCode)
      conn.close(reasonCode, opts.reasonString)
    }
    if (opts.discardSession === true && this.#sessions.get(clientId) === session) this.#endSession(session, publishWill)
    return conn !== undefined
  }

  /** Closes every live session authenticated with the given certificate (no Will). Returns how many. */
  closeSessionsForCertificate (match: { fingerprint256?: string, certificateId?: string }, reasonCode: number): number {
    let n = 0
    for (const s of [...this.#sessions.values()]) {
      const hit = (match.fingerprint256 !== undefined && s.certificateFingerprint256 === match.fingerprint256) ||
        (match.certificateId !== undefined && s.principal?.certificateId === match.certificateId)
      if (!hit) continue
      // A delayed Will of an offline session must not outlive the revocation either.
      s.pendingWill = undefined
      if (s.connection === undefined) { s.authorizer = undefined; continue }
      if (this.closeSession(s.clientId, reasonCode, { publishWill: false, reasonString: ReasonString.Revoked })) n++
    }
    return n
  }

  /**
   * Rebuilds the authorizer of every matching session (after a policy, attachment or group change): sessions no
   * longer allowed to connect are closed with 0x87 and no Will; subscriptions no longer allowed are removed.
   */
  async reauthorizeSessions (predicate: (session: GatewaySession) => boolean): Promise<ReauthorizeResult> {
    let reauthorized = 0
    let closed = 0
    let removed = 0
    const work: Array<Promise<void>> = []
    for (const s of [...this.#sessions.values()]) {
      if (!predicate(s)) continue
      const conn = s.connection
      const principal = s.principal
      if (conn === undefined || principal === undefined || conn.connectAttributes === undefined) {
        s.authorizer = undefined // offline: re-created on resume, queued messages re-checked on delivery
        continue
      }
      const attributes = conn.connectAttributes
      work.push((async () => {
        let authorizer: SessionAuthorizer | undefined
        try {
          authorizer = await this.#deps.authorizers.create(principal, {
            clientId: s.clientId, sourceAddress: conn.sourceAddress, protocolVersion: conn.version,
            certificateFingerprint256: s.certificateFingerprint256 ?? '',
          })
        } catch (err) {
          this.#deps.onError(err)
        }
        if (s.connection !== conn) return
        const d = authorizer === undefined ? DENY_ALL : decide(() => (authorizer as SessionAuthorizer).authorizeConnect(attributes))
        if (!d.allowed || authorizer === undefined) {
          this.#deny('connect', d)
          this.audit(conn, Action.Connect, Outcome.Denied, d.reason ?? 'not-authorized', s.clientId, ReasonCode.NotAuthorized, d.statement)
          this.closeSession(s.clientId, ReasonCode.NotAuthorized, { publishWill: false })
          closed++
          return
        }
        s.authorizer = authorizer
        reauthorized++
        let changed = false
        for (const sub of [...s.subscriptions.values()]) {
          const sd = this.#decideSubscribe(authorizer, sub.rawFilter)
          if (sd.allowed) continue
          this.#deny('subscribe', sd)
          this.audit(conn, Action.Subscribe, Outcome.Denied, sd.reason ?? 'not-authorized', sub.rawFilter, undefined, sd.statement)
          this.#removeSubscription(s, sub)
          removed++
          changed = true
        }
        if (changed && s.expiryIntervalSec > 0) this.#persistSession(s)
      })())
    }
    await Promise.all(work)
    return { reauthorized, closed, subscriptionsRemoved: removed }
  }

  // ---- housekeeping -------------------------------------------------------------------------------------

  /**
   * One sweep of every timed rule, driven by a single shared interval instead of per-connection timers:
   * CONNECT deadline, keep-alive (1.5×) [MQTT-3.1.2-24], delayed Wills, session expiry, rate windows.
   */
  housekeeping (): void {
    const nowMs = this.nowMs()
    for (const conn of this.#connections) {
      if (conn.state === ConnectionState.Connected) {
        if (conn.keepAliveMs > 0 && nowMs - conn.lastActivityMs > conn.keepAliveMs * 1.5) {
          this.audit(conn, Action.Disconnect, Outcome.Closed, 'keep-alive-timeout', undefined, ReasonCode.KeepAliveTimeout)
          // [MQTT-3.1.2-24] close "as if the network had failed": the Will is published.
          conn.close(ReasonCode.KeepAliveTimeout)
        }
      } else if (!conn.closed && nowMs > conn.deadlineMs) {
        this.metrics.connectionsRejected++
        this.audit(conn, Action.Connect, Outcome.Closed, conn.state === ConnectionState.AwaitingConnect ? 'connect-timeout' : 'authentication-timeout')
        conn.close(undefined)
        conn.socket.destroy()
      }
    }
    for (const s of this.#offline) {
      if (s.pendingWill !== undefined && s.willAtMs <= nowMs) {
        const will = s.pendingWill
        s.pendingWill = undefined
        this.#publishWill(s, will)
      }
      if (s.expiresAtMs !== 0 && s.expiresAtMs <= nowMs) {
        this.audit(undefined, Action.Session, Outcome.Closed, 'session-expired', s.clientId, undefined, undefined, s)
        this.#endSession(s, true)
      }
    }
    this.#connectRate.prune(nowMs)
    this.#scheduleFlush()
  }

  // ---- persistence --------------------------------------------------------------------------------------

  #persistSession (session: Session): void {
    if (this.#deps.sessionStore === undefined) return
    session.persisted = true
    const stored: StoredSession = {
      clientId: session.clientId,
      protocolVersion: session.protocolVersion,
      expiryIntervalSec: session.expiryIntervalSec,
      subscriptions: [...session.subscriptions.values()].map((s) => s.toStored()),
      ...(session.disconnectedAtMs === undefined ? {} : { disconnectedAtMs: session.disconnectedAtMs }),
      ...(session.principal === undefined ? {} : { principalId: session.principal.id }),
    }
    this.#op({ kind: 'save', session: stored })
  }

  #op (op: StoreOp): void {
    if (op.kind === 'retained' ? this.#deps.retainedStore === undefined : this.#deps.sessionStore === undefined) return
    this.#ops.push(op)
    this.#scheduleFlush()
  }

  #scheduleFlush (): void {
    if (this.#flushScheduled || this.#ops.length === 0) return
    this.#flushScheduled = true
    setImmediate(() => {
      this.#flushScheduled = false
      void this.flush()
    })
  }

  /** Writes queued store operations in order; resolves when everything queued so far is written. */
  async flush (): Promise<void> {
    while (this.#flushing !== undefined) await this.#flushing
    if (this.#ops.length === 0) return
    const ops = this.#ops
    this.#ops = []
    this.#flushing = this.#write(ops).catch((err: unknown) => { this.#deps.onError(err) }).finally(() => { this.#flushing = undefined })
    await this.#flushing
    if (this.#ops.length > 0) await this.flush()
  }

  async #write (ops: StoreOp[]): Promise<void> {
    const ss = this.#deps.sessionStore
    const rs = this.#deps.retainedStore
    let i = 0
    while (i < ops.length) {
      const op = ops[i]
      if (op.kind === 'append') {
        const batch: Array<{ clientId: string, message: StoredMessage }> = []
        while (i < ops.length && ops[i].kind === 'append') {
          const a = ops[i++] as { kind: 'append', clientId: string, message: StoredMessage }
          batch.push({ clientId: a.clientId, message: a.message })
        }
        await ss?.appendMessages(batch)
        continue
      }
      if (op.kind === 'retained') {
        const batch: RetainedChange[] = []
        while (i < ops.length && ops[i].kind === 'retained') batch.push((ops[i++] as { kind: 'retained', change: RetainedChange }).change)
        await rs?.applyRetained(batch)
        continue
      }
      i++
      if (op.kind === 'save') await ss?.saveSession(op.session)
      else if (op.kind === 'delete') await ss?.deleteSession(op.clientId)
      else await ss?.replaceMessages(op.clientId, op.messages)
    }
  }

  /** Loads retained messages and persistent sessions (called once before listening). */
  async load (): Promise<void> {
    const nowMs = this.nowMs()
    const rs = this.#deps.retainedStore
    if (rs !== undefined) {
      for (const m of await rs.loadRetained()) {
        if (m.expiresAtMs !== undefined && m.expiresAtMs <= nowMs) continue
        this.#retained.set(m.topic, RoutedMessage.fromStored(m))
        this.#retainedAtMs.set(m.topic, nowMs)
      }
    }
    const ss = this.#deps.sessionStore
    if (ss === undefined) return
    for (const { session: stored, messages } of await ss.loadSessions()) {
      const disconnectedAtMs = stored.disconnectedAtMs ?? nowMs
      const expiresAtMs = stored.expiryIntervalSec >= NEVER_EXPIRES ? 0 : disconnectedAtMs + stored.expiryIntervalSec * 1000
      if (stored.expiryIntervalSec === 0 || (expiresAtMs !== 0 && expiresAtMs <= nowMs)) {
        this.#op({ kind: 'delete', clientId: stored.clientId })
        continue
      }
      const s = new Session(stored.clientId, stored.protocolVersion, stored.expiryIntervalSec)
      s.persisted = true
      s.disconnectedAtMs = disconnectedAtMs
      s.expiresAtMs = expiresAtMs
      for (const st of stored.subscriptions) {
        const parsed = parseTopicFilter(st.filter)
        if (typeof parsed === 'string') continue
        const sub = new Subscription(s, st.filter, parsed.filter, parsed.group, st.qos, st.noLocal, st.retainAsPublished,
          st.retainHandling, st.subscriptionIdentifier)
        s.subscriptions.set(st.filter, sub)
        this.#trie.add(parsed.filter, sub)
      }
      for (const m of messages) {
        if (m.expiresAtMs !== undefined && m.expiresAtMs <= nowMs) continue
        // The store does not keep Packet Identifiers or which messages were in flight, so after a restart they
        // are sent as new deliveries (DUP 0, fresh identifiers): at-least-once still holds.
        this.#enqueue(s, { msg: RoutedMessage.fromStored(m), qos: m.qos, retain: m.retain, subscriptionIds: undefined, messageId: 0, dup: false })
      }
      this.#sessions.set(s.clientId, s)
      this.#offline.add(s)
    }
  }

  /**
   * Stops accepting work: closes every connection (v5: DISCONNECT 0x8B, no Will — the device did nothing
   * wrong), snapshots persistent sessions, and flushes the stores.
   */
  async shutdown (): Promise<void> {
    this.#stopped = true
    const conns = [...this.#connections]
    for (const conn of conns) {
      conn.will = undefined
      conn.close(ReasonCode.ServerShuttingDown)
    }
    await this.flush()
    // The DISCONNECTs were handed to the kernel; do not wait for peers to acknowledge the close.
    for (const conn of conns) conn.socket.destroy()
  }
}
