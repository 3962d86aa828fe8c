/**
 * Session state (MQTT 5 §4.1): what outlives a network connection — subscriptions, QoS 1 messages in flight
 * and queued, and a pending delayed Will. Plain data plus small helpers; the protocol logic lives in broker.ts
 * and connection.ts. Fields are allocated lazily so an idle session costs little memory.
 */
import type { IPublishPacket } from 'mqtt-packet'
import { encodePacket, encodePlainPublish, publishPacketIdOffset } from './framing.ts'
import type {
  GrantedQoS, MessageProperties, ProtocolVersion, SessionAuthorizer, SessionPrincipal, StoredMessage,
  StoredSubscription,
} from './ports.ts'
import type { TrieSubscription } from './topic-trie.ts'
import type { Connection, WillSpec } from './connection.ts'

type PublishProperties = NonNullable<IPublishPacket['properties']>

/**
 * A message being routed. Immutable once built; shared by every delivery of the same publish, and it caches its
 * encodings so that fan-out to N subscribers of the same protocol version encodes once.
 */
export class RoutedMessage {
  readonly topic: string
  readonly payload: Buffer
  readonly qos: GrantedQoS
  readonly retain: boolean
  readonly properties: MessageProperties | undefined
  /** Absolute expiry in ms since the epoch; 0 = never (MQTT 5 §3.3.2.3.3). */
  readonly expiresAtMs: number
  /** Publishing session, for No Local (MQTT 5 §3.8.3.1); undefined for server-originated messages. */
  readonly origin: object | undefined
  /**
   * Payload for MQTT 3.1.1 subscribers when it differs (a server-originated command with its token in a JSON
   * envelope). Not persisted: a stored copy carries `payload`, so a queued 3.1.1 command arrives without its
   * token and the device refuses it (fail closed).
   */
  readonly v311Payload: Buffer | undefined
  /**
   * Encoded variants (index: version, QoS, retain). Most messages reach one subscriber, so the first variant is
   * held in a field and the table is made only for a second one; a QoS 1 variant is encoded straight into the
   * delivery's own buffer the first time (no copy) and cached only when a second subscriber needs it.
   */
  #firstKey = -1
  #first: Buffer | undefined = undefined
  #cache: Array<Buffer | undefined> | undefined = undefined
  /** Bit per variant: a QoS 1 encoding of it was already handed out uncached. */
  #seen = 0
  /** The topic's UTF-8 bytes, encoded once per message. */
  #topicBytes: Buffer | undefined = undefined

  constructor (topic: string, payload: Buffer, qos: GrantedQoS, retain: boolean, properties: MessageProperties | undefined,
    expiresAtMs: number, origin: object | undefined, v311Payload?: Buffer) {
    this.topic = topic
    this.payload = payload
    this.qos = qos
    this.retain = retain
    this.properties = properties
    this.expiresAtMs = expiresAtMs
    this.origin = origin
    this.v311Payload = v311Payload
  }

  static fromStored (m: StoredMessage): RoutedMessage {
    return new RoutedMessage(m.topic, m.payload, m.qos, m.retain, m.properties, m.expiresAtMs ?? 0, undefined)
  }

  toStored (): StoredMessage {
    const out: { -readonly [K in keyof StoredMessage]: StoredMessage[K] } = {
      topic: this.topic, payload: this.payload, qos: this.qos, retain: this.retain,
    }
    if (this.properties !== undefined) out.properties = this.properties
    if (this.expiresAtMs !== 0) out.expiresAtMs = this.expiresAtMs
    return out
  }

  isExpired (nowMs: number): boolean {
    return this.expiresAtMs !== 0 && this.expiresAtMs <= nowMs
  }

  /**
   * Encodes a PUBLISH for one subscriber. The Message Expiry Interval sent is the time remaining
   * [MQTT-3.3.2-6]; Subscription Identifiers are per subscriber [MQTT-3.3.4-3]; v5 properties are omitted for
   * 3.1.1 clients. The plain variants are cached and, for QoS 1, copied with the Packet Identifier patched in.
   */
  encode (version: ProtocolVersion, qos: GrantedQoS, retain: boolean, dup: boolean, messageId: number,
    subscriptionIds: number[] | undefined, nowMs: number): Buffer {
    const cacheable = !dup && subscriptionIds === undefined && this.expiresAtMs === 0
    const key = (version === 5 ? 4 : 0) + qos * 2 + (retain ? 1 : 0)
    let store = false
    if (cacheable) {
      const cached = key === this.#firstKey ? this.#first : this.#cache?.[key]
      if (cached !== undefined) return qos === 0 ? cached : withPacketId(cached, messageId)
      const bit = 1 << key
      store = qos === 0 || (this.#seen & bit) !== 0
      this.#seen |= bit
    }
    const payload = version === 5 ? this.payload : (this.v311Payload ?? this.payload)
    const props = version === 5 ? this.#v5Properties(subscriptionIds, nowMs) : undefined
    let encoded: Buffer
    if (props === undefined) {
      encoded = encodePlainPublish(this.#topicBytes ??= Buffer.from(this.topic), payload, qos, retain, dup, messageId, version)
    } else {
      const packet: IPublishPacket = { cmd: 'publish', topic: this.topic, payload, qos, retain, dup, properties: props }
      if (qos > 0) packet.messageId = messageId
      encoded = encodePacket(packet, version)
    }
    if (!store) return encoded
    if (this.#firstKey < 0) {
      this.#firstKey = key
      this.#first = encoded
    } else {
      (this.#cache ??= new Array<Buffer | undefined>(8))[key] = encoded
    }
    // The cached copy must not be handed out for patching; QoS 1 callers get a fresh copy.
    return qos === 0 ? encoded : withPacketId(encoded, messageId)
  }

  #v5Properties (subscriptionIds: number[] | undefined, nowMs: number): PublishProperties | undefined {
    const p = this.properties
    if (p === undefined && subscriptionIds === undefined && this.expiresAtMs === 0) return undefined
    const out: PublishProperties = {}
    if (p !== undefined) {
      if (p.payloadFormatIndicator !== undefined) out.payloadFormatIndicator = p.payloadFormatIndicator
      if (p.contentType !== undefined) out.contentType = p.contentType
      if (p.responseTopic !== undefined) out.responseTopic = p.responseTopic
      if (p.correlationData !== undefined) out.correlationData = p.correlationData
      if (p.userProperties !== undefined) out.userProperties = p.userProperties as Record<string, string | string[]>
    }
    if (this.expiresAtMs !== 0) out.messageExpiryInterval = Math.max(1, Math.ceil((this.expiresAtMs - nowMs) / 1000))
    if (subscriptionIds !== undefined) {
      out.subscriptionIdentifier = subscriptionIds.length === 1 ? subscriptionIds[0] : subscriptionIds
    }
    return out
  }
}

function withPacketId (encoded: Buffer, messageId: number): Buffer {
  const copy = Buffer.allocUnsafe(encoded.length)
  encoded.copy(copy)
  copy.writeUInt16BE(messageId, publishPacketIdOffset(encoded))
  return copy
}

/** One pending outbound delivery (queued or in flight). */
export interface Delivery {
  readonly msg: RoutedMessage
  readonly qos: GrantedQoS
  /** RETAIN flag to send: 1 for retained replay [MQTT-3.3.1-8], else per Retain As Published. */
  readonly retain: boolean
  readonly subscriptionIds: number[] | undefined
  /** Packet Identifier once in flight, 0 while queued. */
  messageId: number
  /** Set when re-sent after reconnect [MQTT-4.4.0-1] / MQTT 5 [MQTT-3.3.1-1]. */
  dup: boolean
}

/** A subscription held by a session. */
export class Subscription implements TrieSubscription {
  readonly session: Session
  /** Filter as the client sent it (`$share/{group}/…` included); the session's key. */
  readonly rawFilter: string
  /** Matching filter (without the share prefix). */
  readonly filter: string
  readonly group: string | undefined
  qos: GrantedQoS
  noLocal: boolean
  retainAsPublished: boolean
  retainHandling: 0 | 1 | 2
  subscriptionId: number | undefined

  constructor (session: Session, rawFilter: string, filter: string, group: string | undefined, qos: GrantedQoS,
    noLocal: boolean, retainAsPublished: boolean, retainHandling: 0 | 1 | 2, subscriptionId: number | undefined) {
    this.session = session
    this.rawFilter = rawFilter
    this.filter = filter
    this.group = group
    this.qos = qos
    this.noLocal = noLocal
    this.retainAsPublished = retainAsPublished
    this.retainHandling = retainHandling
    this.subscriptionId = subscriptionId
  }

  toStored (): StoredSubscription {
    const s: StoredSubscription = {
      filter: this.rawFilter, qos: this.qos, noLocal: this.noLocal, retainAsPublished: this.retainAsPublished,
      retainHandling: this.retainHandling,
    }
    return this.subscriptionId === undefined ? s : { ...s, subscriptionIdentifier: this.subscriptionId }
  }
}

/** Read-only view of a session for operators and for `reauthorizeSessions` predicates. */
export interface GatewaySession {
  readonly clientId: string
  readonly connected: boolean
  readonly protocolVersion: ProtocolVersion
  readonly principal: SessionPrincipal | undefined
  readonly certificateFingerprint256: string | undefined
  readonly sourceAddress: string | undefined
  /** Session Expiry Interval in seconds (0: ends with the connection). */
  readonly expiryIntervalSec: number
  /** Subscribed filters as the client sent them. */
  readonly subscriptionFilters: readonly string[]
  readonly queuedMessages: number
  readonly inflightMessages: number
}

/** Session state. Owned by the broker; a connection is attached while the client is online. */
export class Session implements GatewaySession {
  readonly clientId: string
  protocolVersion: ProtocolVersion
  expiryIntervalSec: number
  connection: Connection | undefined = undefined
  authorizer: SessionAuthorizer | undefined = undefined
  principal: SessionPrincipal | undefined = undefined
  certificateFingerprint256: string | undefined = undefined
  sourceAddress: string | undefined = undefined
  readonly subscriptions = new Map<string, Subscription>()
  inflight: Map<number, Delivery> | undefined = undefined
  /** Queued deliveries: `queue[queueHead…]` (a head index, so taking from the front does not move the rest). */
  queue: Delivery[] | undefined = undefined
  queueHead = 0
  /** Set once the session has been written to the SessionStore. */
  persisted = false
  /** Absolute time the session expires while offline; 0 = not scheduled / never. */
  expiresAtMs = 0
  disconnectedAtMs: number | undefined = undefined
  /** A Will waiting for its delay (MQTT 5 §3.1.3.2.2) and when it is due. */
  pendingWill: WillSpec | undefined = undefined
  willAtMs = 0
  #nextPacketId = 1
  // Scratch fields used while routing one message (avoids a Map per publish).
  routeEpoch = 0
  routeQos: GrantedQoS = 0
  routeRap = false
  routeSubIds: number[] | undefined = undefined

  constructor (clientId: string, protocolVersion: ProtocolVersion, expiryIntervalSec: number) {
    this.clientId = clientId
    this.protocolVersion = protocolVersion
    this.expiryIntervalSec = expiryIntervalSec
  }

  get connected (): boolean { return this.connection !== undefined }
  get subscriptionFilters (): readonly string[] { return [...this.subscriptions.keys()] }
  get queuedMessages (): number { return this.queue === undefined ? 0 : this.queue.length - this.queueHead }
  get inflightMessages (): number { return this.inflight?.size ?? 0 }

  /** Next free Packet Identifier (non-zero [MQTT-2.3.1-1], not in use [MQTT-2.3.1-2]). */
  nextPacketId (): number {
    const inflight = this.inflight
    for (let tries = 0; tries < 65535; tries++) {
      const id = this.#nextPacketId
      this.#nextPacketId = id === 65535 ? 1 : id + 1
      if (inflight === undefined || !inflight.has(id)) return id
    }
    return 0
  }

  /** Moves in-flight messages back to the head of the queue, flagged DUP, for re-sending on resume. */
  requeueInflight (): void {
    const inflight = this.inflight
    if (inflight === undefined || inflight.size === 0) return
    const resend: Delivery[] = []
    for (const d of inflight.values()) { d.dup = true; resend.push(d) }
    inflight.clear()
    this.queue = this.queue === undefined ? resend : resend.concat(this.queue.slice(this.queueHead))
    this.queueHead = 0
  }

  /** Queued and in-flight messages, in order, for the SessionStore. */
  storedMessages (): StoredMessage[] {
    const out: StoredMessage[] = []
    if (this.inflight !== undefined) for (const d of this.inflight.values()) out.push(storedDelivery(d))
    const q = this.queue
    if (q !== undefined) for (let i = this.queueHead; i < q.length; i++) out.push(storedDelivery(q[i]))
    return out
  }
}

function storedDelivery (d: Delivery): StoredMessage {
  const m = d.msg.toStored()
  return { ...m, qos: d.qos, retain: d.retain }
}
