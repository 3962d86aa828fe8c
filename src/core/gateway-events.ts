/** Audit events the MQTT gateway reports, shared by the gateway (producer) and the audit module (consumer). */

/** Kinds of events the gateway audits. */
export const GatewayAuditAction = {
  Connect: 'mqtt.connect',
  Disconnect: 'mqtt.disconnect',
  Publish: 'mqtt.publish',
  Subscribe: 'mqtt.subscribe',
  Receive: 'mqtt.receive',
  Will: 'mqtt.will',
  Limit: 'mqtt.limit',
  Protocol: 'mqtt.protocol',
  Session: 'mqtt.session',
} as const
export type GatewayAuditAction = (typeof GatewayAuditAction)[keyof typeof GatewayAuditAction]

/** Outcome of an audited gateway event. */
export const GatewayAuditOutcome = {
  Allowed: 'allowed',
  Denied: 'denied',
  Limited: 'limited',
  Closed: 'closed',
} as const
export type GatewayAuditOutcome = (typeof GatewayAuditOutcome)[keyof typeof GatewayAuditOutcome]

/** One gateway audit event: who, what, on which resource, and why (DESIGN.md §5: explainable to the operator). */
export interface GatewayAuditEvent {
  readonly action: GatewayAuditAction
  readonly outcome: GatewayAuditOutcome
  readonly timeMs: number
  readonly clientId?: string
  readonly principalId?: string
  readonly certificateFingerprint256?: string
  readonly sourceAddress?: string
  /** Topic, topic filter or client id the event is about. */
  readonly resource?: string
  /** Machine-friendly reason, e.g. `not-authorized`, `packet-too-large`, `session-taken-over`. */
  readonly reason: string
  /** The deciding policy statement for authorization denials (from `GatewayDecision.statement`). */
  readonly statement?: string
  /** The MQTT reason/return code sent to the client, if any. */
  readonly reasonCode?: number
}

