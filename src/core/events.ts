/**
 * Domain events, published after the transaction that caused them commits. The gateway consumes them to close
 * or re-authorize live sessions (revocation in milliseconds), the cluster bus forwards them to other nodes.
 */
export type DomainEvent =
  | { readonly type: 'certificate.status', readonly certificateId: string, readonly status: string }
  | { readonly type: 'certificate.deleted', readonly certificateId: string }
  | { readonly type: 'ca.status', readonly caCertificateId: string, readonly status: string }
  | { readonly type: 'ca.registered', readonly caCertificateId: string }
  | { readonly type: 'thing.principal', readonly thingName: string, readonly principal: string, readonly attached: boolean }
  | { readonly type: 'thing.updated', readonly thingName: string }
  | { readonly type: 'thing.deleted', readonly thingName: string }
  | { readonly type: 'thing.group', readonly thingName: string, readonly groupName: string, readonly member: boolean }
  | { readonly type: 'policy.attachment', readonly policyName: string, readonly target: string, readonly attached: boolean }
  | { readonly type: 'policy.default-version', readonly policyName: string, readonly versionId: number }

export type DomainEventListener = (e: DomainEvent) => void

/** In-process fan-out. A throwing listener is isolated so it cannot block revocation for the others. */
export class EventBus {
  readonly #listeners = new Set<DomainEventListener>()
  readonly #onError: (err: unknown) => void
  constructor (onError: (err: unknown) => void = () => {}) { this.#onError = onError }

  subscribe (fn: DomainEventListener): () => void {
    this.#listeners.add(fn)
    return () => { this.#listeners.delete(fn) }
  }

  publish (e: DomainEvent): void {
    for (const fn of this.#listeners) {
      try { fn(e) } catch (err) { this.#onError(err) }
    }
  }
}
