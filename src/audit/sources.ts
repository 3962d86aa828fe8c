/**
 * Turns what the edges report (gateway decisions, keyring uses) into audit events. The gateway's event is
 * declared in core (src/core/gateway-events.ts) and the keyring's structurally, so the domain does not import the
 * adapters (DESIGN.md §4); `Gateway`'s `AuditSink` and `LocalKeyring`'s `onUse` accept these as they are.
 */
import { certificateActor, GatewayAuditAction, GatewayAuditOutcome } from '../core/index.ts'
import type { GatewayAuditEvent } from '../core/index.ts'
import { AuditKind, AuditOutcome } from './chain.ts'
import type { AuditEventInput } from './chain.ts'
import type { AuditRecorder } from './recorder.ts'

/** Options of {@link GatewayAuditAdapter}. */
export interface GatewayAuditOptions {
  /**
   * Share of allowed message-level events (publish, subscribe, receive, will) to keep, 0 to 1. Default 0: they
   * are optional (issue #5) and never needed for the chain; denials, limits and connection events are always kept.
   * Sampling is deterministic (every n-th), so a rate of 0.01 keeps exactly one in a hundred.
   */
  readonly messageSampleRate?: number
}

const CONNECTION_ACTIONS = new Set<string>([GatewayAuditAction.Connect, GatewayAuditAction.Disconnect, GatewayAuditAction.Session, GatewayAuditAction.Protocol])
const MESSAGE_ACTIONS = new Set<string>([GatewayAuditAction.Publish, GatewayAuditAction.Subscribe, GatewayAuditAction.Receive, GatewayAuditAction.Will])

/** Maps a gateway event to an audit event (kind `connection` for connect/disconnect/session/protocol, else `authorization`). */
export function gatewayEvent (e: GatewayAuditEvent): AuditEventInput {
  const fp = e.certificateFingerprint256
  const actor = e.principalId ?? (fp !== undefined ? certificateActor(fp) : 'anonymous')
  // A close ends a session (the logoff happened; the cause is in `reason`); other closes are enforcement.
  const outcome = e.outcome === GatewayAuditOutcome.Allowed
    ? AuditOutcome.Success
    : e.outcome === GatewayAuditOutcome.Closed && (e.action === GatewayAuditAction.Disconnect || e.action === GatewayAuditAction.Session) ? AuditOutcome.Success : AuditOutcome.Denied
  const details: Record<string, unknown> = { gatewayOutcome: e.outcome }
  if (e.clientId !== undefined) details.clientId = e.clientId
  if (fp !== undefined) details.certificateFingerprint256 = fp
  if (e.reasonCode !== undefined) details.reasonCode = e.reasonCode
  return {
    action: e.action,
    actor,
    outcome,
    kind: CONNECTION_ACTIONS.has(e.action) ? AuditKind.Connection : AuditKind.Authorization,
    target: e.resource ?? (e.clientId !== undefined ? `client/${e.clientId}` : undefined),
    thing: e.clientId,
    sourceIp: e.sourceAddress,
    reason: e.reason,
    statement: e.statement,
    occurredMs: e.timeMs,
    details,
  }
}

/**
 * The gateway's `AuditSink`: never blocks, never throws, never drops a required event (it queues with
 * `enqueueAlways`; the gateway's refusal of new connections while the recorder is saturated is the backpressure,
 * see `refuseWhenSaturated`). Allowed message-level events are sampled.
 */
export class GatewayAuditAdapter {
  readonly #recorder: AuditRecorder
  readonly #every: number
  #seen = 0

  constructor (recorder: AuditRecorder, opts: GatewayAuditOptions = {}) {
    this.#recorder = recorder
    const rate = opts.messageSampleRate ?? 0
    this.#every = rate <= 0 ? 0 : Math.max(1, Math.round(1 / Math.min(rate, 1)))
  }

  record (e: GatewayAuditEvent): void {
    if (e.outcome === GatewayAuditOutcome.Allowed && MESSAGE_ACTIONS.has(e.action)) {
      if (this.#every === 0) return
      if (this.#seen++ % this.#every !== 0) return
    }
    this.#recorder.enqueueAlways(gatewayEvent(e))
  }
}

/** A keyring use (src/kms `KeyringUseEvent`), structurally. */
export interface KeyUseLike {
  readonly operation: string
  readonly keyId: string
  readonly version: number
  readonly context: Readonly<Record<string, string>>
}

/** Maps a keyring use to an audit event. The encryption context is not secret (AWS KMS logs it in CloudTrail). */
export function keyUseEvent (e: KeyUseLike): AuditEventInput {
  return {
    action: `kms.${e.operation}`,
    actor: 'system',
    outcome: AuditOutcome.Success,
    kind: AuditKind.KeyUse,
    target: `key/${e.keyId}`,
    details: { keyVersion: e.version, encryptionContext: { ...e.context } },
  }
}

/**
 * The keyring's `onUse` hook: queues a key-use event. It throws ERR_AUDIT_OVERLOADED past the recorder's hard
 * limit, and the keyring then withholds the result (fail closed: a key use that cannot be audited does not happen).
 */
export function keyUseRecorder (recorder: AuditRecorder): (e: KeyUseLike) => void {
  return (e) => { recorder.enqueue(keyUseEvent(e)) }
}

/**
 * A mitigation event (detect/): record it with the state change it makes (quarantine group move, certificate
 * revocation), through the unit's AuditAppender, so both commit together.
 */
export function mitigationEvent (m: { readonly mitigation: string, readonly thing?: string, readonly target?: string, readonly alarm?: string, readonly actor?: string }): AuditEventInput {
  return {
    action: 'detect.Mitigate',
    actor: m.actor ?? 'system',
    outcome: AuditOutcome.Success,
    kind: AuditKind.Mitigation,
    target: m.target,
    thing: m.thing,
    details: { mitigation: m.mitigation, ...(m.alarm === undefined ? {} : { alarm: m.alarm }) },
  }
}
