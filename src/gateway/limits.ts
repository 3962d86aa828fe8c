/**
 * Gateway limits with AWS IoT Core's published numbers as defaults (shared/reference/aws-iot.md §6), and the
 * token buckets that enforce rates.
 */

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
  maxPacketBytes: 128 * 1024 + 2048,
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

/**
 * A token bucket that refills continuously at `ratePerSec` up to `burst` tokens. Rate and burst are passed in
 * by the caller (they live in the shared limits), so an instance is two numbers.
 */
export class TokenBucket {
  #tokens: number
  #lastMs: number

  constructor (burst: number, nowMs: number) {
    this.#tokens = burst
    this.#lastMs = nowMs
  }

  /** Takes `n` tokens if available; returns false (taking none) otherwise. */
  take (n: number, nowMs: number, ratePerSec: number, burst: number): boolean {
    const elapsed = nowMs - this.#lastMs
    if (elapsed > 0) {
      this.#tokens = Math.min(burst, this.#tokens + (elapsed * ratePerSec) / 1000)
      this.#lastMs = nowMs
    }
    if (this.#tokens < n) return false
    this.#tokens -= n
    return true
  }
}

/** Counts CONNECT attempts per client id in one-second windows (AWS: 1 per second per client id). */
export class ConnectRateLimiter {
  readonly #windows = new Map<string, { startMs: number, count: number }>()

  /** Records an attempt; returns false when the client id exceeded its rate. */
  attempt (clientId: string, nowMs: number, perSecond: number): boolean {
    const w = this.#windows.get(clientId)
    if (w === undefined || nowMs - w.startMs >= 1000) {
      this.#windows.set(clientId, { startMs: nowMs, count: 1 })
      return true
    }
    w.count++
    return w.count <= perSecond
  }

  /** Drops windows older than a second (called from the housekeeping sweep). */
  prune (nowMs: number): void {
    for (const [id, w] of this.#windows) if (nowMs - w.startMs >= 1000) this.#windows.delete(id)
  }
}
