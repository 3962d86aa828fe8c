/**
 * Shapes shared by the gateway (which produces them) and the HTTP /metrics route (which reads them); adapters may
 * not import each other (DESIGN.md §4), so the shape lives here.
 */

/** A point-in-time copy of the MQTT gateway's counters. */
export interface GatewayMetricsSnapshot {
  readonly connectionsActive: number
  readonly sessions: number
  readonly retainedMessages: number
  readonly connectionsAccepted: number
  readonly connectionsRejected: number
  readonly tlsHandshakeFailures: number
  readonly messagesIn: number
  readonly messagesOut: number
  readonly messagesDropped: number
  readonly bytesIn: number
  readonly bytesOut: number
  readonly protocolErrors: number
  readonly limitsExceeded: number
  /** Authorization denials keyed `{action}:{reason}`. */
  readonly denials: Readonly<Record<string, number>>
  /** Live connections by MQTT protocol level (`4` = 3.1.1, `5` = 5.0). */
  readonly connectionsByProtocol: Readonly<Record<'4' | '5', number>>
  /** TLS handshake failures by cause (see `tlsFailureCause`). */
  readonly tlsHandshakeFailuresByCause: Readonly<Record<string, number>>
}
