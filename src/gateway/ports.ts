/**
 * The gateway's seams (DESIGN.md §4: adapters reach I/O and the domain only through interfaces). The gateway
 * owns MQTT; everything it needs to decide *who* a device is, *what* it may do, and *where* state survives a
 * restart comes through these ports. `app.ts` wires the real implementations (registry, policy engine, SQLite
 * stores, audit chain); tests use small real implementations of the same interfaces.
 */
import type { X509Certificate } from 'node:crypto'
import type { GatewayAuditEvent } from '../core/index.ts'

/** MQTT protocol levels the gateway speaks: 4 = MQTT 3.1.1, 5 = MQTT 5.0. */
export type ProtocolVersion = 4 | 5

/** Quality of service levels the gateway grants. QoS 2 is refused (CONNACK Maximum QoS 1, SUBACK grants ≤ 1). */
export type GrantedQoS = 0 | 1

/** Who is connecting, as established from the client certificate. Immutable for the life of the connection. */
export interface SessionPrincipal {
  /** Stable principal id (e.g. the certificate id or ARN); appears in audit events. */
  readonly id: string
  /** The registry's certificate id, when the principal is a certificate; used by `closeSessionsForCertificate`. */
  readonly certificateId?: string
  /** The thing attached to the principal, if any (policy variable `iot:Connection.Thing.ThingName`). */
  readonly thingName?: string
  /** Free-form, non-secret facts the authorizer factory may want (thing type, attributes …). */
  readonly attributes?: Readonly<Record<string, string>>
}

/** Everything known about a connection when it is authenticated (after CONNECT was read, before CONNACK). */
export interface ConnectionRequest {
  /** The verified peer certificate, read from the socket on every connection, resumed TLS sessions included. */
  readonly certificate: X509Certificate
  /** `certificate.fingerprint256` (colon-separated upper-case hex, as node:crypto prints it). */
  readonly fingerprint256: string
  readonly clientId: string
  /** Remote IP address of the TCP connection. */
  readonly sourceAddress: string
  readonly protocolVersion: ProtocolVersion
  /** True when the TLS handshake resumed an earlier session (the certificate is still looked up). */
  readonly tlsSessionReused: boolean
}

/** Result of authentication. A failure reason is for the audit log only; the client learns CONNACK 5 / 0x87. */
export type AuthenticationResult =
  | { readonly ok: true, readonly principal: SessionPrincipal }
  | { readonly ok: false, readonly reason: string }

/**
 * Maps a verified client certificate to a principal. Called once per CONNECT, for every connection: a resumed
 * TLS session must not skip revocation (DESIGN.md §2.2), so implementations look the certificate up by
 * fingerprint (status ACTIVE, within validity, issuing CA ACTIVE) and never cache a positive answer across
 * connections. May be asynchronous (storage lookup); it is not on the per-message path. Must not throw for an
 * unknown certificate: return `{ ok: false }`. A throw is treated as a denial (fail closed).
 */
export interface ConnectionAuthenticator {
  authenticate (request: ConnectionRequest): Promise<AuthenticationResult> | AuthenticationResult
}

/**
 * A synchronous authorization decision. `reason` and `statement` are for the operator (audit log); the client
 * only ever gets the standard reason code and a fixed short reason string.
 */
export interface GatewayDecision {
  readonly allowed: boolean
  /** Short machine-friendly reason, e.g. `explicit-deny`, `no-matching-statement`. */
  readonly reason?: string
  /** Which policy statement decided (policy name, version, statement id), or absent when none matched. */
  readonly statement?: string
}

/** Attributes of a CONNECT that policies may condition on (AWS `iot:ConnectAttributes`, `iot:LastWillTopic`). */
export interface ConnectAttributes {
  readonly clientId: string
  readonly sourceAddress: string
  readonly protocolVersion: ProtocolVersion
  /** True when the client asked for a session that outlives the connection (clean start 0 or expiry > 0). */
  readonly persistent: boolean
  readonly cleanStart: boolean
  /** The Will topic when the client registered one. */
  readonly willTopic?: string
}

/**
 * Per-session authorization, compiled once from the principal's policies (DESIGN.md §3: decisions are made
 * in memory, with no storage on the hot path). Every method is synchronous and must be cheap: `authorizeReceive`
 * runs on every delivery. A throw is treated as a denial (fail closed).
 */
export interface SessionAuthorizer {
  /** `iot:Connect` on `client/{clientId}`. */
  authorizeConnect (attributes: ConnectAttributes): GatewayDecision
  /** `iot:Publish` on `topic/{topic}`, plus `iot:RetainPublish` when `retain` is true. */
  authorizePublish (topic: string, retain: boolean): GatewayDecision
  /** `iot:Subscribe` on `topicfilter/{filter}`; shared subscriptions pass the full `$share/{group}/{filter}`. */
  authorizeSubscribe (filter: string): GatewayDecision
  /** `iot:Receive` on `topic/{topic}`, on every delivery (and again for messages that waited in a queue). */
  authorizeReceive (topic: string): GatewayDecision
}

/** What the authorizer factory knows about the session it compiles for. */
export interface SessionContext {
  readonly clientId: string
  readonly sourceAddress: string
  readonly protocolVersion: ProtocolVersion
  readonly certificateFingerprint256: string
}

/**
 * Builds the authorizer for one session. Called at CONNECT and again by `Gateway.reauthorizeSessions` after a
 * policy or attachment change; it may load policies from storage (asynchronous), the authorizer it returns
 * may not.
 */
export interface SessionAuthorizerFactory {
  create (principal: SessionPrincipal, context: SessionContext): Promise<SessionAuthorizer> | SessionAuthorizer
}

/** MQTT 5 PUBLISH properties carried through the gateway unchanged (MQTT 5 §3.3.2.3). */
export interface MessageProperties {
  readonly payloadFormatIndicator?: boolean
  readonly contentType?: string
  readonly responseTopic?: string
  readonly correlationData?: Buffer
  /** MQTT 5 §3.3.2.3.7: forwarded unaltered, in order; repeated names become arrays (mqtt-packet's shape). */
  readonly userProperties?: Readonly<Record<string, string | readonly string[]>>
}

/** A message as stored for an offline session or as a retained message. */
export interface StoredMessage {
  readonly topic: string
  readonly payload: Buffer
  readonly qos: GrantedQoS
  /** The RETAIN flag as published (used for Retain As Published). */
  readonly retain: boolean
  readonly properties?: MessageProperties
  /** Absolute expiry (MQTT 5 Message Expiry Interval), or absent for never. */
  readonly expiresAtMs?: number
}

/** One subscription of a persistent session. `filter` is the full filter, `$share/{group}/…` included. */
export interface StoredSubscription {
  readonly filter: string
  readonly qos: GrantedQoS
  readonly noLocal: boolean
  readonly retainAsPublished: boolean
  readonly retainHandling: 0 | 1 | 2
  readonly subscriptionIdentifier?: number
}

/** The durable part of a session (MQTT 5 §4.1: subscriptions and queued QoS 1 messages). */
export interface StoredSession {
  readonly clientId: string
  readonly protocolVersion: ProtocolVersion
  /** Session Expiry Interval in seconds; 0xFFFFFFFF means the session does not expire (MQTT 5 §3.1.2.11.2). */
  readonly expiryIntervalSec: number
  /** When the network connection ended; absent while connected. Expiry counts from here. */
  readonly disconnectedAtMs?: number
  /** Principal that last owned the session (for operators; resumption re-authorizes anyway). */
  readonly principalId?: string
  readonly subscriptions: readonly StoredSubscription[]
}

/**
 * Durable state of persistent sessions (clean start 0 / session expiry > 0), so subscriptions and queued QoS 1
 * messages survive a gateway restart. The gateway never awaits this port per message: writes are queued in
 * order and flushed in batches; implementations must apply calls in the order they are made for a client.
 * Implemented in storage/sqlite/gateway-store.ts.
 */
export interface SessionStore {
  /** Every stored session with its queued messages, oldest message first. Called once at start. */
  loadSessions (): Promise<Array<{ session: StoredSession, messages: StoredMessage[] }>>
  /** Inserts or replaces the session row and its subscriptions; queued messages are left alone. */
  saveSession (session: StoredSession): Promise<void>
  /** Removes the session, its subscriptions and its queued messages. No-op when absent. */
  deleteSession (clientId: string): Promise<void>
  /** Appends queued messages (any number of clients, in order). Messages for unknown sessions are dropped. */
  appendMessages (batch: ReadonlyArray<{ readonly clientId: string, readonly message: StoredMessage }>): Promise<void>
  /** Replaces the whole queue of one session (used when a session goes offline, resumes, or at shutdown). */
  replaceMessages (clientId: string, messages: readonly StoredMessage[]): Promise<void>
}

/** A change to the retained set: `message` absent means delete (MQTT 3.1.1 §3.3.1.3, zero-byte payload). */
export interface RetainedChange {
  readonly topic: string
  readonly message?: StoredMessage
}

/**
 * Durable retained messages. The gateway keeps the working set in memory (loaded once at start) and writes
 * changes behind, batched, in order.
 */
export interface RetainedStore {
  loadRetained (): Promise<StoredMessage[]>
  applyRetained (changes: readonly RetainedChange[]): Promise<void>
}

// The gateway's audit event shapes live in core so the audit module can consume them without importing this
// adapter (DESIGN.md §4).
export { GatewayAuditAction, GatewayAuditOutcome } from '../core/index.ts'
export type { GatewayAuditEvent } from '../core/index.ts'

/**
 * Receives connection events and denials. `record` is called on the event loop, sometimes per message (receive
 * denials, throttling): it must not block and must not throw; buffer and write behind.
 */
export interface AuditSink {
  record (event: GatewayAuditEvent): void
}

/**
 * Publish-time payload check (payload schemas), run after iot:Publish is allowed and before the message is
 * retained, routed or handed to a reserved-topic handler. `validate` runs on every PUBLISH: it must be
 * synchronous, must not throw, and should return a shared object (no allocation) for the common "allowed" case.
 * A refusal is MQTT 5 PUBACK 0x99 Payload format invalid with `reasonString`, or for MQTT 3.1.1 a closed
 * connection (the gateway's denial rule); `reason` and `statement` go to the audit event.
 */
export interface PayloadValidator {
  validate (topic: string, payload: Buffer): PayloadDecision
}

/** Outcome of {@link PayloadValidator.validate}: a {@link GatewayDecision} plus the v5 reason string for a refusal. */
export interface PayloadDecision extends GatewayDecision {
  /** Short fixed text for the v5 PUBACK Reason String (MQTT 5 §3.4.2.2.2); never the schema or payload. */
  readonly reasonString?: string
}
