/**
 * The gateway's limits: their names, AWS IoT Core's published numbers as defaults (shared/reference/aws-iot.md §6),
 * the range each may be set to, and how a partial set is completed and checked. In core because both the
 * configuration (which may import only core) and the gateway read them; the gateway enforces them.
 */

/** The extra packet size allowed above the payload limit: fixed header, topic and properties. */
export const PACKET_HEADROOM_BYTES = 2048

/** What to do when a client exceeds a rate or a subscriber's queue overflows. */
export type OverflowPolicy = 'drop' | 'disconnect'

/** Every limit the gateway enforces. All are per connection unless stated. */
export interface GatewayLimits {
  /**
   * Maximum size of an inbound control packet in bytes, checked from the fixed header before the body is
   * buffered; advertised to v5 clients as Maximum Packet Size (MQTT 5 §3.2.2.3.6). Default: 128 KiB payload
   * plus room for the topic and properties.
   */
  readonly maxPacketBytes: number
  /** Maximum PUBLISH payload in bytes (AWS: 128 KB, hard). */
  readonly maxPayloadBytes: number
  /** Maximum topic/filter length in bytes (AWS: 256). */
  readonly maxTopicBytes: number
  /** Maximum number of `/` in a topic or filter (AWS: 7). */
  readonly maxTopicSlashes: number
  /** Length cap for reserved `$aws/…` topics, which are exempt from the depth limit. */
  readonly maxReservedTopicBytes: number
  /** Maximum client identifier length in bytes (AWS: 128). */
  readonly maxClientIdBytes: number
  /** Subscriptions one session may hold (AWS: 50). */
  readonly maxSubscriptionsPerSession: number
  /** Topic filters in one SUBSCRIBE (AWS: 8). */
  readonly maxFiltersPerSubscribe: number
  /** Inbound PUBLISH packets per second, token bucket (AWS: 100/s). */
  readonly publishesPerSecond: number
  /** Inbound PUBLISH payload bytes per second, token bucket (AWS: 512 KiB/s). */
  readonly publishBytesPerSecond: number
  /** What happens when a client publishes faster: drop the message (v5 PUBACK 0x97) or disconnect (0x96). */
  readonly rateLimitPolicy: OverflowPolicy
  /** CONNECT attempts per client id per second (AWS: 1). */
  readonly connectAttemptsPerClientIdPerSecond: number
  /** Time allowed between the TLS handshake and CONNECT (slowloris guard). */
  readonly connectTimeoutMs: number
  /** TLS handshake timeout. */
  readonly tlsHandshakeTimeoutMs: number
  /** Keep-alive values below this are raised to it (AWS: 30 s). */
  readonly keepAliveMinSec: number
  /** Keep-alive values above this, and 0, are lowered to it (AWS: 1200 s). */
  readonly keepAliveMaxSec: number
  /** Unacknowledged outbound QoS 1 messages per session (AWS: 100); also capped by the client's Receive Maximum. */
  readonly maxInflightOutbound: number
  /** Receive Maximum advertised to v5 clients (AWS: 100 unacknowledged inbound QoS 1). */
  readonly receiveMaximum: number
  /** QoS 1 messages queued per session beyond the inflight window (online or offline). */
  readonly maxQueuedMessages: number
  /** Bytes buffered in a socket beyond which the subscriber counts as slow (QoS 0 is dropped, QoS 1 queued). */
  readonly maxSocketBufferBytes: number
  /** What happens when a slow subscriber's queue is full: drop new messages or disconnect it (0x97). */
  readonly slowSubscriberPolicy: OverflowPolicy
  /** Topic Alias Maximum advertised to v5 clients for inbound aliases (MQTT 5 §3.2.2.3.8); 0 disables. */
  readonly topicAliasMaximum: number
  /** Session expiry for MQTT 3.1.1 persistent sessions (clean session 0), seconds (AWS: 1 h). */
  readonly persistentSessionExpirySec: number
  /** Upper bound for a v5 Session Expiry Interval, seconds (AWS: 7 days). */
  readonly maxSessionExpirySec: number
  /** Retained messages the gateway holds in total. */
  readonly maxRetainedMessages: number
}

/** AWS IoT Core's defaults. */
export const DEFAULT_LIMITS: GatewayLimits = Object.freeze({
  maxPacketBytes: 128 * 1024 + PACKET_HEADROOM_BYTES,
  maxPayloadBytes: 128 * 1024,
  maxTopicBytes: 256,
  maxTopicSlashes: 7,
  maxReservedTopicBytes: 1024,
  maxClientIdBytes: 128,
  maxSubscriptionsPerSession: 50,
  maxFiltersPerSubscribe: 8,
  publishesPerSecond: 100,
  publishBytesPerSecond: 512 * 1024,
  rateLimitPolicy: 'drop',
  connectAttemptsPerClientIdPerSecond: 1,
  connectTimeoutMs: 5_000,
  tlsHandshakeTimeoutMs: 5_000,
  keepAliveMinSec: 30,
  keepAliveMaxSec: 1200,
  maxInflightOutbound: 100,
  receiveMaximum: 100,
  maxQueuedMessages: 1000,
  maxSocketBufferBytes: 1024 * 1024,
  slowSubscriberPolicy: 'drop',
  topicAliasMaximum: 8,
  persistentSessionExpirySec: 3600,
  maxSessionExpirySec: 7 * 24 * 3600,
  maxRetainedMessages: 100_000,
})

/** Limits that say what happens on overflow; every other limit is an integer. */
export const OVERFLOW_LIMITS = ['rateLimitPolicy', 'slowSubscriberPolicy'] as const
type OverflowLimit = typeof OVERFLOW_LIMITS[number]

/** Integer limits and their allowed ranges; the ceilings are the protocol's own where it has one (MQTT 5 §1.5). */
export const GATEWAY_LIMIT_RANGES = {
  maxPacketBytes: [1024, 268_435_455], // the largest Remaining Length a fixed header can carry
  maxPayloadBytes: [1, 268_435_455],
  maxTopicBytes: [1, 65_535], // a UTF-8 string's 16-bit length prefix
  maxTopicSlashes: [0, 65_535],
  maxReservedTopicBytes: [1, 65_535],
  maxClientIdBytes: [23, 65_535], // [MQTT-3.1.3-5] servers must accept 23 bytes
  maxSubscriptionsPerSession: [1, 1_000_000],
  maxFiltersPerSubscribe: [1, 65_535],
  publishesPerSecond: [1, 1_000_000_000],
  publishBytesPerSecond: [1, 1_000_000_000_000],
  connectAttemptsPerClientIdPerSecond: [1, 1_000_000],
  connectTimeoutMs: [100, 600_000],
  tlsHandshakeTimeoutMs: [100, 600_000],
  keepAliveMinSec: [0, 65_535],
  keepAliveMaxSec: [1, 65_535], // the Keep Alive field is two bytes
  maxInflightOutbound: [1, 65_535],
  receiveMaximum: [1, 65_535],
  maxQueuedMessages: [0, 100_000_000],
  maxSocketBufferBytes: [1024, 1_073_741_824],
  topicAliasMaximum: [0, 65_535],
  persistentSessionExpirySec: [0, 4_294_967_295], // the Session Expiry Interval is four bytes
  maxSessionExpirySec: [0, 4_294_967_295],
  maxRetainedMessages: [0, 100_000_000],
} as const satisfies Record<Exclude<keyof GatewayLimits, OverflowLimit>, readonly [number, number]>
/**
 * Completes a partial set of limits with the defaults and checks the limits against each other, defaults included
 * (each value's own range is the caller's check, against {@link GATEWAY_LIMIT_RANGES}). A larger payload limit given alone raises the
 * packet limit with it, or every such payload would be refused by the default packet limit. Returns the limits, or
 * the problems, each naming the limit.
 */
export function resolveGatewayLimits (overrides: Partial<GatewayLimits>): {
  readonly limits: GatewayLimits, readonly problems: ReadonlyArray<{ readonly limit: keyof GatewayLimits, readonly rule: string }>
} {
  const limits: { -readonly [K in keyof GatewayLimits]: GatewayLimits[K] } = { ...DEFAULT_LIMITS, ...overrides }
  if (overrides.maxPayloadBytes !== undefined && overrides.maxPacketBytes === undefined) {
    limits.maxPacketBytes = Math.min(GATEWAY_LIMIT_RANGES.maxPacketBytes[1], overrides.maxPayloadBytes + PACKET_HEADROOM_BYTES)
  }
  const problems: Array<{ limit: keyof GatewayLimits, rule: string }> = []
  // A packet limit set alone may be below the default payload limit (it then caps payloads too); both set, they must agree.
  if (overrides.maxPacketBytes !== undefined && overrides.maxPayloadBytes !== undefined && limits.maxPacketBytes < limits.maxPayloadBytes) {
    problems.push({ limit: 'maxPacketBytes', rule: `must be at least maxPayloadBytes (${limits.maxPayloadBytes})` })
  }
  if (limits.keepAliveMinSec > limits.keepAliveMaxSec) problems.push({ limit: 'keepAliveMinSec', rule: `must not exceed keepAliveMaxSec (${limits.keepAliveMaxSec})` })
  return { limits: Object.freeze(limits), problems }
}
