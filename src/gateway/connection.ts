/**
 * One client network connection: framing, decoding, per-packet protocol rules, and writes. Session-level
 * decisions (authentication, routing, subscriptions, wills, persistence) are delegated to the Broker. A
 * connection holds no timers: the broker's housekeeping sweep enforces the CONNECT deadline and keep-alive.
 */
import type { TLSSocket } from 'node:tls'
import type {
  IConnectPacket, IDisconnectPacket, IPubackPacket, IPublishPacket, ISubscribePacket, IUnsubscribePacket, Packet,
} from 'mqtt-packet'
import {
  decodeFrame, decodePubackFast, decodePublishFast, encodePacket, encodePubackSuccess, FrameReader, PacketType, publishTopicIsUtf8,
} from './framing.ts'
import type { FrameError, PublishFields } from './framing.ts'
import { TokenBucket } from './limits.ts'
import type { ConnectAttributes, GrantedQoS, MessageProperties, ProtocolVersion } from './ports.ts'
import { GatewayAuditAction, GatewayAuditOutcome } from './ports.ts'
import { ConnackReturnCode, connackCodeForV4, ReasonCode, ReasonString } from './reason-codes.ts'
import { checkTopicName } from './topics.ts'
import type { Session } from './session.ts'
import type { Broker } from './broker.ts'

/** Connection lifecycle. */
export const ConnectionState = {
  AwaitingConnect: 0,
  Authenticating: 1,
  Connected: 2,
  Closed: 3,
} as const
export type ConnectionState = (typeof ConnectionState)[keyof typeof ConnectionState]

/** A Will as read from CONNECT; turned into a message only if and when it is published. */
export interface WillSpec {
  readonly topic: string
  readonly payload: Buffer
  readonly qos: GrantedQoS
  readonly retain: boolean
  readonly properties: MessageProperties | undefined
  /** MQTT 5 Message Expiry Interval of the Will, seconds; 0 = none. */
  readonly expirySec: number
  /** MQTT 5 Will Delay Interval, seconds (0 for 3.1.1). */
  readonly delaySec: number
}

/** The validated content of a CONNECT, handed to the broker for authentication and session set-up. */
export interface ConnectRequest {
  readonly clientId: string
  /** True when the server assigned the client id (empty id in CONNECT) [MQTT-3.1.3-6]. */
  readonly assignedClientId: boolean
  readonly cleanStart: boolean
  readonly sessionExpirySec: number
  /** The session expiry the client asked for, when it was lowered (v5 CONNACK must say so). */
  readonly sessionExpiryClamped: boolean
  readonly keepAliveSec: number
  /** True when the keep-alive the client asked for was changed (v5 CONNACK Server Keep Alive). */
  readonly keepAliveChanged: boolean
  readonly will: WillSpec | undefined
  readonly attributes: ConnectAttributes
}

const PINGRESP = Buffer.from([0xd0, 0x00])
const PLAIN_DISCONNECT_V4 = Object.freeze({ ok: true as const, packet: Object.freeze<IDisconnectPacket>({ cmd: 'disconnect' }) })
const PLAIN_DISCONNECT_V5 = Object.freeze({ ok: true as const, packet: Object.freeze<IDisconnectPacket>({ cmd: 'disconnect', reasonCode: 0 }) })

/** Pulls the v5 passthrough properties out of a PUBLISH or Will (topic alias and subscription ids excluded). */
export function passthroughProperties (p: IPublishPacket['properties'] | undefined): MessageProperties | undefined {
  if (p === undefined) return undefined
  const { payloadFormatIndicator, contentType, responseTopic, correlationData, userProperties } = p
  if (payloadFormatIndicator === undefined && contentType === undefined && responseTopic === undefined &&
    correlationData === undefined && userProperties === undefined) return undefined
  const out: { -readonly [K in keyof MessageProperties]: MessageProperties[K] } = {}
  if (payloadFormatIndicator !== undefined) out.payloadFormatIndicator = payloadFormatIndicator
  if (contentType !== undefined) out.contentType = contentType
  if (responseTopic !== undefined) out.responseTopic = responseTopic
  if (correlationData !== undefined) out.correlationData = Buffer.from(correlationData)
  if (userProperties !== undefined) out.userProperties = userProperties
  return out
}

/**
 * Write coalescing: a connection's writes within one turn of the event loop are corked and flushed together at
 * `setImmediate`, after every I/O callback of the poll phase ran. PUBACKs and deliveries caused by a burst of
 * incoming packets then leave as a few TLS records and system calls instead of one each.
 */
const corked: Connection[] = []
let flushScheduled = false
function flushCorked (): void {
  flushScheduled = false
  for (let i = 0; i < corked.length; i++) corked[i].uncork()
  corked.length = 0
}

/** A client connection. Created by the Gateway for each TLS socket that completed its handshake. */
export class Connection {
  readonly socket: TLSSocket
  readonly #broker: Broker
  readonly #reader: FrameReader
  state: ConnectionState = ConnectionState.AwaitingConnect
  version: ProtocolVersion = 4
  session: Session | undefined = undefined
  clientId = ''
  readonly sourceAddress: string
  /** Keep-alive in ms (0 = none); the sweep closes after 1.5× of silence [MQTT-3.1.2-24] [MQTT-3.1.2-22]. */
  keepAliveMs = 0
  lastActivityMs: number
  /** CONNECT must arrive (and authentication finish) before this time. */
  deadlineMs: number
  /** Client's Receive Maximum (MQTT 5 §3.1.2.11.3), default 65,535. */
  clientReceiveMaximum = 65535
  /** Client's Maximum Packet Size (MQTT 5 §3.1.2.11.4), 0 = no limit. */
  clientMaximumPacketBytes = 0
  /** Request Problem Information (MQTT 5 §3.1.2.11.7). */
  problemInformation = true
  /** Will of this connection; cleared by a normal DISCONNECT [MQTT-3.1.2-10] or a revocation. */
  will: WillSpec | undefined = undefined
  /** Session Expiry Interval from CONNECT (MQTT 5 §3.14.2.2.2 forbids raising it from 0 on DISCONNECT). */
  connectSessionExpirySec = 0
  connectAttributes: ConnectAttributes | undefined = undefined
  #aliases: Map<number, string> | undefined = undefined
  #pending: Array<[Buffer, number]> | undefined = undefined
  #publishBucket: TokenBucket | undefined = undefined
  #byteBucket: TokenBucket | undefined = undefined
  #lastThrottleAuditMs = 0

  constructor (socket: TLSSocket, broker: Broker, nowMs: number) {
    this.socket = socket
    this.#broker = broker
    this.sourceAddress = socket.remoteAddress ?? ''
    this.lastActivityMs = nowMs
    this.deadlineMs = nowMs + broker.limits.connectTimeoutMs
    this.#reader = new FrameReader(broker.limits.maxPacketBytes)
    socket.setNoDelay(true)
    socket.on('data', (chunk: Buffer) => { this.#onData(chunk) })
    socket.on('error', () => { /* 'close' follows; the cause is not the client's business nor the log's */ })
    socket.on('close', () => { this.#onSocketClosed() })
    socket.on('drain', () => { if (this.session !== undefined) broker.pump(this.session) })
  }

  /** True once the connection is closed (by either side). */
  get closed (): boolean { return this.state === ConnectionState.Closed }

  /** True when the socket buffers more than the limit: the subscriber is slow. */
  get backpressured (): boolean {
    return this.socket.writableLength > this.#broker.limits.maxSocketBufferBytes
  }

  #corked = false

  /** Writes encoded bytes; false when the connection is closed. */
  write (bytes: Buffer): boolean {
    if (this.state === ConnectionState.Closed) return false
    this.#broker.metrics.bytesOut += bytes.length
    if (!this.#corked) {
      this.#corked = true
      this.socket.cork()
      corked.push(this)
      if (!flushScheduled) { flushScheduled = true; setImmediate(flushCorked) }
    }
    this.socket.write(bytes)
    return true
  }

  /** Flushes writes corked in this turn (`socket.end()` flushes them too, so a closing DISCONNECT is not lost). */
  uncork (): void {
    if (!this.#corked) return
    this.#corked = false
    this.socket.uncork()
  }

  send (packet: Packet): boolean {
    return this.write(encodePacket(packet, this.version))
  }

  /**
   * Closes the connection. For v5 clients past CONNACK a DISCONNECT with `reasonCode` is sent first
   * (MQTT 5 §4.13); 3.1.1 has no server DISCONNECT, so the socket is just closed. The broker is told at once,
   * so session state is final when this returns.
   */
  close (reasonCode: number | undefined, reasonString?: string): void {
    if (this.state === ConnectionState.Closed) return
    const wasConnected = this.state === ConnectionState.Connected
    if (wasConnected && this.version === 5 && reasonCode !== undefined) {
      const packet: IDisconnectPacket = { cmd: 'disconnect', reasonCode }
      if (reasonString !== undefined) packet.properties = { reasonString }
      this.send(packet)
    }
    this.state = ConnectionState.Closed
    this.socket.end()
    // Give the DISCONNECT a moment to flush, but never let a peer that stopped reading keep the socket.
    setTimeout(() => { this.socket.destroy() }, 1000).unref()
    this.socket.pause()
    this.#broker.connectionClosed(this)
  }

  /** Refuses a CONNECT (CONNACK with a failure code, then close) [MQTT-3.2.2-5] [MQTT-3.2.2-7]. */
  refuse (reasonV5: number): void {
    if (this.state === ConnectionState.Closed) return
    if (this.version === 5) this.send({ cmd: 'connack', sessionPresent: false, reasonCode: reasonV5 })
    else this.send({ cmd: 'connack', sessionPresent: false, returnCode: connackCodeForV4(reasonV5) })
    this.state = ConnectionState.Closed
    this.socket.end()
    setTimeout(() => { this.socket.destroy() }, 1000).unref()
    this.#broker.connectionClosed(this)
  }

  /** Called by the broker when the session is attached and CONNACK was sent: process what queued up. */
  activate (): void {
    this.state = ConnectionState.Connected
    const pending = this.#pending
    this.#pending = undefined
    if (pending !== undefined) {
      for (const [frame, hb] of pending) {
        if (!this.#onFrame(frame, hb)) break
      }
    }
    if (this.state === ConnectionState.Connected) this.socket.resume()
  }

  /** Maps the protocol-level complaint to the close the spec asks for, and audits it. */
  protocolViolation (reasonCode: number, reason: string): false {
    const b = this.#broker
    b.metrics.protocolErrors++
    b.audit(this, GatewayAuditAction.Protocol, GatewayAuditOutcome.Closed, reason, undefined, reasonCode)
    this.close(reasonCode)
    return false
  }

  #onSocketClosed (): void {
    if (this.state === ConnectionState.Closed) return
    // The network connection ended without DISCONNECT (AWS lifecycle reason CONNECTION_LOST): the Will stands.
    if (this.state === ConnectionState.Connected) {
      this.#broker.audit(this, GatewayAuditAction.Disconnect, GatewayAuditOutcome.Closed, 'connection-lost')
    }
    this.state = ConnectionState.Closed
    this.#broker.connectionClosed(this)
  }

  #onData (chunk: Buffer): void {
    if (this.state === ConnectionState.Closed) return
    this.#broker.metrics.bytesIn += chunk.length
    this.lastActivityMs = this.#broker.nowMs()
    const err = this.#reader.push(chunk, this.#onFrame)
    if (err !== undefined) this.#onFrameError(err)
  }

  #onFrameError (err: FrameError): void {
    const b = this.#broker
    if (err === 'packet-too-large') {
      // MQTT 5 §3.2.2.3.6: a packet over the Maximum Packet Size is a Protocol Error → DISCONNECT 0x95.
      b.metrics.limitsExceeded++
      b.audit(this, GatewayAuditAction.Limit, GatewayAuditOutcome.Closed, 'packet-too-large', undefined, ReasonCode.PacketTooLarge)
      this.close(ReasonCode.PacketTooLarge)
      return
    }
    this.protocolViolation(ReasonCode.MalformedPacket, 'malformed-remaining-length')
  }

  readonly #onFrame = (frame: Buffer, headerBytes: number): boolean => {
    switch (this.state) {
      case ConnectionState.Connected: return this.#onPacket(frame, headerBytes)
      case ConnectionState.Authenticating:
        // Clients may send packets right after CONNECT (MQTT 5 §3.1.4); hold them until CONNACK is sent.
        (this.#pending ??= []).push([frame, headerBytes])
        return true
      case ConnectionState.AwaitingConnect: return this.#onConnect(frame, headerBytes)
      default: return false
    }
  }

  // ---- CONNECT -----------------------------------------------------------------------------------------

  #onConnect (frame: Buffer, hb: number): boolean {
    const b = this.#broker
    // [MQTT-3.1.0-1] the first packet from the client MUST be CONNECT; anything else closes the connection.
    if ((frame[0] >> 4) !== PacketType.Connect) return this.protocolViolation(ReasonCode.ProtocolError, 'first-packet-not-connect')
    // [MQTT-3.1.2-1] protocol name "MQTT"; [MQTT-3.1.2-2] unsupported level → CONNACK 0x01 (3.1.1 format)/0x84.
    const nameLen = frame.length >= hb + 2 ? frame.readUInt16BE(hb) : -1
    const level = nameLen >= 0 && frame.length > hb + 2 + nameLen ? frame[hb + 2 + nameLen] : -1
    const name = nameLen >= 0 ? frame.toString('latin1', hb + 2, Math.min(frame.length, hb + 2 + nameLen)) : ''
    if (name === 'MQIsdp' || (name === 'MQTT' && level !== 4 && level !== 5 && level >= 0)) {
      this.version = 4
      b.audit(this, GatewayAuditAction.Connect, GatewayAuditOutcome.Denied, 'unsupported-protocol-version', undefined, ConnackReturnCode.UnacceptableProtocolVersion)
      b.metrics.connectionsRejected++
      this.refuse(ReasonCode.UnsupportedProtocolVersion)
      return false
    }
    if (name !== 'MQTT') return this.protocolViolation(ReasonCode.MalformedPacket, 'bad-protocol-name')
    this.version = level as ProtocolVersion
    const decoded = decodeFrame(frame, 'connect')
    if (!decoded.ok || decoded.packet.cmd !== 'connect') return this.protocolViolation(ReasonCode.MalformedPacket, 'malformed-connect')
    const p = decoded.packet
    const request = this.#validateConnect(p)
    if (request === undefined) return false
    this.state = ConnectionState.Authenticating
    this.clientId = request.clientId
    this.deadlineMs = b.nowMs() + b.limits.connectTimeoutMs
    this.socket.pause()
    b.admit(this, request)
    return true
  }

  /** Validates CONNECT; refuses and returns undefined on failure. */
  #validateConnect (p: IConnectPacket): ConnectRequest | undefined {
    const b = this.#broker
    const limits = b.limits
    const v5 = this.version === 5
    const props = p.properties
    const refuse = (reasonV5: number, reason: string): undefined => {
      b.metrics.connectionsRejected++
      b.audit(this, GatewayAuditAction.Connect, GatewayAuditOutcome.Denied, reason, p.clientId, v5 ? reasonV5 : connackCodeForV4(reasonV5))
      this.refuse(reasonV5)
      return undefined
    }
    if (v5 && props !== undefined) {
      // MQTT 5 §3.1.2.11.3 / .4: a Receive Maximum or Maximum Packet Size of 0 is a Protocol Error.
      if (props.receiveMaximum === 0 || props.maximumPacketSize === 0) return refuse(ReasonCode.ProtocolError, 'protocol-error')
      // [MQTT-4.12.0-1] we support no enhanced authentication method.
      if (props.authenticationMethod !== undefined) return refuse(ReasonCode.BadAuthenticationMethod, 'unsupported-authentication-method')
      if (props.receiveMaximum !== undefined) this.clientReceiveMaximum = props.receiveMaximum
      if (props.maximumPacketSize !== undefined) this.clientMaximumPacketBytes = props.maximumPacketSize
      if (props.requestProblemInformation === false) this.problemInformation = false
    }
    // Client identifier [MQTT-3.1.3-3 … 3.1.3-9]. A replacement character means the decoder met ill-formed UTF-8
    // [MQTT-1.5.3-1]; wildcards and U+0000 are refused so the id can never act as a topic wildcard in a policy
    // variable (reference/aws-iot.md §1).
    let clientId = p.clientId
    let assigned = false
    const clean = p.clean !== false
    if (clientId.includes('\uFFFD')) { this.protocolViolation(ReasonCode.MalformedPacket, 'client-id-not-utf8'); return undefined }
    if (clientId.length === 0) {
      // [MQTT-3.1.3-8] a zero-byte ClientId with CleanSession 0 is refused with return code 0x02 (3.1.1).
      if (!v5 && !clean) return refuse(ReasonCode.ClientIdentifierNotValid, 'empty-client-id-persistent')
      clientId = b.assignClientId()
      assigned = true
    }
    if (Buffer.byteLength(clientId) > limits.maxClientIdBytes || /[+#\u0000]/.test(clientId)) {
      return refuse(ReasonCode.ClientIdentifierNotValid, 'client-id-invalid')
    }
    // Will [MQTT-3.1.2-9 … 3.1.2-14]
    let will: WillSpec | undefined
    if (p.will !== undefined) {
      const w = p.will
      const topicProblem = w.topic.includes('\uFFFD') ? 'syntax' : checkTopicName(w.topic, b.topicLimits)
      if (topicProblem !== undefined) {
        if (!v5 && (topicProblem === 'empty' || topicProblem === 'wildcard' || topicProblem === 'null-char' || topicProblem === 'syntax')) {
          this.protocolViolation(ReasonCode.MalformedPacket, 'will-topic-invalid')
          return undefined
        }
        return refuse(ReasonCode.TopicNameInvalid, 'will-topic-invalid')
      }
      // [MQTT-3.2.2-12] a Will QoS above Maximum QoS is refused with 0x9B (v5); 3.1.1 has no code: granted as 1.
      const wq = w.qos ?? 0
      if (wq === 2 && v5) return refuse(ReasonCode.QoSNotSupported, 'will-qos-not-supported')
      const payload = typeof w.payload === 'string' ? Buffer.from(w.payload) : Buffer.from(w.payload)
      if (payload.length > limits.maxPayloadBytes) return refuse(ReasonCode.PacketTooLarge, 'will-payload-too-large')
      const wp = w.properties
      will = {
        topic: w.topic,
        payload,
        qos: wq === 0 ? 0 : 1,
        retain: w.retain === true,
        properties: passthroughProperties(wp),
        expirySec: wp?.messageExpiryInterval ?? 0,
        delaySec: v5 ? (wp?.willDelayInterval ?? 0) : 0,
      }
    }
    // Session expiry: v5 property (default 0) or 3.1.1 CleanSession 0 → the configured persistent lifetime.
    let expiry = v5 ? (props?.sessionExpiryInterval ?? 0) : (clean ? 0 : limits.persistentSessionExpirySec)
    let expiryClamped = false
    if (expiry > limits.maxSessionExpirySec) { expiry = limits.maxSessionExpirySec; expiryClamped = v5 }
    // Keep-alive: raised to the minimum, lowered to the maximum (0 counts as "above"); v5 clients are told
    // through Server Keep Alive [MQTT-3.2.2-21].
    const asked = p.keepalive ?? 0
    let ka = asked
    if (limits.keepAliveMaxSec > 0 && (ka === 0 || ka > limits.keepAliveMaxSec)) ka = limits.keepAliveMaxSec
    if (ka !== 0 && ka < limits.keepAliveMinSec) ka = limits.keepAliveMinSec
    this.keepAliveMs = ka * 1000
    this.connectSessionExpirySec = expiry
    this.will = will
    const attributes: ConnectAttributes = {
      clientId,
      sourceAddress: this.sourceAddress,
      protocolVersion: this.version,
      persistent: !clean || expiry > 0,
      cleanStart: clean,
      ...(will === undefined ? {} : { willTopic: will.topic }),
    }
    this.connectAttributes = attributes
    return {
      clientId,
      assignedClientId: assigned,
      cleanStart: clean,
      sessionExpirySec: expiry,
      sessionExpiryClamped: expiryClamped,
      keepAliveSec: ka,
      keepAliveChanged: ka !== asked,
      will,
      attributes,
    }
  }

  // ---- Packets after CONNECT ---------------------------------------------------------------------------

  #onPacket (frame: Buffer, hb: number): boolean {
    const type = frame[0] >> 4
    switch (type) {
      case PacketType.Publish: return this.#onPublish(frame, hb)
      case PacketType.Puback: {
        let id = decodePubackFast(frame)
        if (id < 0) {
          const d = decodeFrame(frame, this.version)
          if (!d.ok) return this.protocolViolation(ReasonCode.MalformedPacket, 'malformed-puback')
          id = (d.packet as IPubackPacket).messageId ?? 0
        }
        // 0 is never a valid Packet Identifier [MQTT-2.2.1-3], whichever decoder read it.
        if (id === 0) return this.protocolViolation(ReasonCode.MalformedPacket, 'malformed-puback')
        if (this.session !== undefined) this.#broker.acknowledge(this.session, id)
        return true
      }
      case PacketType.Subscribe: {
        const d = decodeFrame(frame, this.version)
        if (!d.ok || d.packet.cmd !== 'subscribe') return this.protocolViolation(ReasonCode.MalformedPacket, 'malformed-subscribe')
        return this.#broker.subscribe(this, d.packet as ISubscribePacket)
      }
      case PacketType.Unsubscribe: {
        const d = decodeFrame(frame, this.version)
        if (!d.ok || d.packet.cmd !== 'unsubscribe') return this.protocolViolation(ReasonCode.MalformedPacket, 'malformed-unsubscribe')
        const u = d.packet as IUnsubscribePacket
        // [MQTT-3.10.3-2] an UNSUBSCRIBE must contain at least one topic filter.
        if (u.unsubscriptions.length === 0) return this.protocolViolation(ReasonCode.ProtocolError, 'empty-unsubscribe')
        return this.#broker.unsubscribe(this, u)
      }
      case PacketType.Pingreq: {
        // [MQTT-3.12.4-1] the server MUST send PINGRESP in response to PINGREQ.
        if (frame.length !== 2 || (frame[0] & 0x0f) !== 0) return this.protocolViolation(ReasonCode.MalformedPacket, 'malformed-pingreq')
        this.write(PINGRESP)
        return true
      }
      case PacketType.Disconnect: return this.#onDisconnect(frame)
      case PacketType.Connect:
        // [MQTT-3.1.0-2] a second CONNECT is a Protocol Violation: close the connection.
        return this.protocolViolation(ReasonCode.ProtocolError, 'second-connect')
      case PacketType.Pubrec:
      case PacketType.Pubrel:
      case PacketType.Pubcomp:
        // We never send or accept QoS 2, so a QoS 2 flow packet is unexpected (MQTT 5 §4.13: Protocol Error).
        return this.protocolViolation(ReasonCode.ProtocolError, 'unexpected-qos2-flow')
      case PacketType.Auth:
        // [MQTT-4.12.0-1] AUTH without an authentication method in CONNECT is a Protocol Error (v5); reserved in 3.1.1.
        return this.protocolViolation(this.version === 5 ? ReasonCode.ProtocolError : ReasonCode.MalformedPacket, 'unexpected-auth')
      default:
        // CONNACK, SUBACK, UNSUBACK, PINGRESP are server-to-client only; 0 is reserved [MQTT-2.2.1 / Table 2-1].
        return this.protocolViolation(ReasonCode.ProtocolError, 'unexpected-packet-type')
    }
  }

  #onDisconnect (frame: Buffer): boolean {
    // The usual DISCONNECT is two bytes: 3.1.1's only form, and MQTT 5's Normal disconnection with no properties
    // (§3.14.2.1: a Remaining Length of 0 means Reason Code 0x00).
    const d = frame.length === 2 && frame[0] === 0xe0 && frame[1] === 0
      ? (this.version === 5 ? PLAIN_DISCONNECT_V5 : PLAIN_DISCONNECT_V4)
      : decodeFrame(frame, this.version)
    if (!d.ok || d.packet.cmd !== 'disconnect') return this.protocolViolation(ReasonCode.MalformedPacket, 'malformed-disconnect')
    const p = d.packet
    if (this.version === 5) {
      const newExpiry = p.properties?.sessionExpiryInterval
      if (newExpiry !== undefined && this.session !== undefined) {
        // [MQTT-3.14.2-2] a client that connected with expiry 0 must not set a non-zero expiry on DISCONNECT.
        if (this.connectSessionExpirySec === 0 && newExpiry !== 0) return this.protocolViolation(ReasonCode.ProtocolError, 'session-expiry-raised')
        this.session.expiryIntervalSec = Math.min(newExpiry, this.#broker.limits.maxSessionExpirySec)
      }
      // [MQTT-3.14.4-3] on DISCONNECT the Will is discarded, unless reason 0x04 "Disconnect with Will Message".
      if (p.reasonCode !== ReasonCode.DisconnectWithWill) this.will = undefined
    } else {
      // [MQTT-3.14.4-3] (3.1.1) the server MUST discard the Will on receipt of DISCONNECT.
      this.will = undefined
    }
    this.#broker.audit(this, GatewayAuditAction.Disconnect, GatewayAuditOutcome.Closed, 'client-disconnect', undefined, p.reasonCode)
    // [MQTT-3.14.4-1] the server closes the connection (the client should already have).
    this.close(undefined)
    return false
  }

  #onPublish (frame: Buffer, hb: number): boolean {
    const b = this.#broker
    const v5 = this.version === 5
    // [MQTT-1.5.3-1] ill-formed UTF-8 in the topic name closes the connection; checked on the raw bytes since the
    // decoder would silently substitute U+FFFD.
    if (!publishTopicIsUtf8(frame, hb)) return this.protocolViolation(ReasonCode.MalformedPacket, 'topic-not-utf8')
    let p: PublishFields | undefined = decodePublishFast(frame, hb, this.version)
    if (p === undefined) {
      const d = decodeFrame(frame, this.version)
      if (!d.ok || d.packet.cmd !== 'publish') return this.protocolViolation(ReasonCode.MalformedPacket, 'malformed-publish')
      const g = d.packet
      // No copy here: the body is copied once below, whichever decoder produced the payload.
      p = { topic: g.topic, payload: typeof g.payload === 'string' ? Buffer.from(g.payload) : g.payload, qos: g.qos, dup: g.dup, retain: g.retain, messageId: g.messageId ?? 0, properties: g.properties }
    }
    b.metrics.messagesIn++
    const qos = p.qos
    // [MQTT-3.3.1-2] DUP must be 0 for QoS 0.
    if (qos === 0 && p.dup) return this.protocolViolation(ReasonCode.MalformedPacket, 'dup-on-qos0')
    if (qos === 2) {
      // [MQTT-3.2.2-11]/MQTT 5 §3.2.2.3.4: QoS above our Maximum QoS (1) → DISCONNECT 0x9B; 3.1.1 just closes.
      b.metrics.limitsExceeded++
      b.audit(this, GatewayAuditAction.Publish, GatewayAuditOutcome.Closed, 'qos-not-supported', p.topic, ReasonCode.QoSNotSupported)
      this.close(ReasonCode.QoSNotSupported)
      return false
    }
    const messageId = p.messageId
    // [MQTT-2.2.1-3] a PUBLISH with QoS > 0 carries a non-zero Packet Identifier.
    if (qos === 1 && messageId === 0) return this.protocolViolation(v5 ? ReasonCode.ProtocolError : ReasonCode.MalformedPacket, 'packet-id-zero')
    let topic = p.topic
    if (v5) {
      const alias = p.properties?.topicAlias
      if (alias !== undefined) {
        // [MQTT-3.3.2-8] alias 0 or [MQTT-3.3.2-9] above our Topic Alias Maximum → DISCONNECT 0x94.
        if (alias === 0 || alias > b.limits.topicAliasMaximum) return this.protocolViolation(ReasonCode.TopicAliasInvalid, 'topic-alias-invalid')
        if (topic.length === 0) {
          const mapped = this.#aliases?.get(alias)
          // MQTT 5 §3.3.2.3.4: an unknown alias with an empty topic is a Protocol Error.
          if (mapped === undefined) return this.protocolViolation(ReasonCode.ProtocolError, 'topic-alias-unknown')
          topic = mapped
        } else {
          (this.#aliases ??= new Map()).set(alias, topic)
        }
      }
    }
    const problem = checkTopicName(topic, b.topicLimits)
    if (problem !== undefined) {
      if (problem === 'too-long' || problem === 'too-deep') {
        b.metrics.limitsExceeded++
        b.audit(this, GatewayAuditAction.Limit, v5 ? GatewayAuditOutcome.Limited : GatewayAuditOutcome.Closed, `topic-${problem}`, topic, ReasonCode.TopicNameInvalid)
        if (!v5) { this.close(undefined); return false }
        if (qos === 1) this.puback(messageId, ReasonCode.TopicNameInvalid, ReasonString.TopicTooLong)
        return true
      }
      // [MQTT-3.3.2-2] wildcards, [MQTT-4.7.3-1] empty, [MQTT-4.7.3-2] U+0000: malformed → DISCONNECT 0x90 / close.
      return this.protocolViolation(v5 ? ReasonCode.TopicNameInvalid : ReasonCode.MalformedPacket, `topic-${problem}`)
    }
    const payload = p.payload
    const size = payload.length
    if (size > b.limits.maxPayloadBytes) {
      b.metrics.limitsExceeded++
      b.audit(this, GatewayAuditAction.Limit, GatewayAuditOutcome.Closed, 'payload-too-large', topic, ReasonCode.PacketTooLarge)
      this.close(ReasonCode.PacketTooLarge)
      return false
    }
    if (!this.#takeRate(size)) {
      b.metrics.limitsExceeded++
      b.metrics.messagesDropped++
      const nowMs = b.nowMs()
      if (nowMs - this.#lastThrottleAuditMs >= 1000) {
        this.#lastThrottleAuditMs = nowMs
        b.audit(this, GatewayAuditAction.Limit, GatewayAuditOutcome.Limited, 'publish-rate-exceeded', topic, v5 ? ReasonCode.QuotaExceeded : undefined)
      }
      if (b.limits.rateLimitPolicy === 'disconnect') { this.close(ReasonCode.MessageRateTooHigh); return false }
      // Throttled messages are discarded (AWS: "excess discarded"); v5 QoS 1 learns it through PUBACK 0x97.
      if (qos === 1) this.puback(messageId, v5 ? ReasonCode.QuotaExceeded : 0, ReasonString.RateExceeded)
      return true
    }
    // The payload is a view of the network chunk: copy it, so a queued or retained message keeps only its bytes.
    const body = Buffer.from(payload)
    return b.publishFromClient(this, topic, body, qos, p.retain, v5 ? p.properties : undefined, messageId)
  }

  #takeRate (bytes: number): boolean {
    const b = this.#broker
    const l = b.limits
    const now = b.nowMs()
    this.#publishBucket ??= new TokenBucket(l.publishesPerSecond, now)
    this.#byteBucket ??= new TokenBucket(l.publishBytesPerSecond, now)
    if (!this.#publishBucket.take(1, now, l.publishesPerSecond, l.publishesPerSecond)) return false
    return this.#byteBucket.take(bytes, now, l.publishBytesPerSecond, l.publishBytesPerSecond)
  }

  /** Sends PUBACK; the reason string is dropped when the client asked for no problem information [MQTT-3.1.2-29]. */
  puback (messageId: number, reasonCode: number, reasonString?: string): void {
    if (reasonCode === ReasonCode.Success || this.version === 4) { this.write(encodePubackSuccess(messageId)); return }
    const packet: IPubackPacket = { cmd: 'puback', messageId }
    if (this.version === 5) {
      packet.reasonCode = reasonCode
      if (reasonCode >= 0x80 && reasonString !== undefined && this.problemInformation) packet.properties = { reasonString }
    }
    this.send(packet)
  }
}
