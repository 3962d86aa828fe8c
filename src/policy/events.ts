/**
 * Invalidation: which registry changes make a compiled authorizer stale. AWS IoT lets a policy change take 6–8
 * minutes to apply (IoT DG `iot-policies`); Thingward recompiles on the event instead.
 */
import type { DomainEvent } from '../core/index.ts'

/** Core domain events that can change what a live session is allowed to do. */
export type PolicyDomainEvent = Extract<DomainEvent, {
  type: 'policy.attachment' | 'policy.default-version' | 'thing.group' | 'thing.updated' | 'thing.deleted' |
    'thing.principal' | 'certificate.status' | 'certificate.deleted'
}>

/**
 * A change the registry emits and the gateway consumes to recompile (or close) affected sessions: the relevant core
 * `DomainEvent`s plus policy-engine specific ones (policy deletion, a group moving under another parent).
 */
export type PolicyChange =
  | PolicyDomainEvent
  | { readonly type: 'policy.deleted', readonly policyName: string }
  | { readonly type: 'thing-group.parent', readonly groupName: string, readonly parentGroupName: string | undefined }
  | { readonly type: 'thing-group.deleted', readonly groupName: string }

const POLICY_EVENT_TYPES: ReadonlySet<string> = new Set([
  'policy.attachment', 'policy.default-version', 'thing.group', 'thing.updated', 'thing.deleted', 'thing.principal',
  'certificate.status', 'certificate.deleted', 'policy.deleted', 'thing-group.parent', 'thing-group.deleted',
])

/** True for events that may invalidate compiled authorizers. */
export function isPolicyChange (e: DomainEvent | PolicyChange): e is PolicyChange {
  return POLICY_EVENT_TYPES.has(e.type)
}

/** What a session's compiled authorizer was built from; the gateway keeps one per session. */
export interface SessionDependencies {
  readonly certificateId?: string
  readonly certificateArn?: string
  readonly thingName?: string
  /** The thing's groups and their ancestors. */
  readonly groupNames: ReadonlySet<string>
  /** Names of the policies compiled in. */
  readonly policyNames: ReadonlySet<string>
}

function targetMatches (target: string, deps: SessionDependencies): boolean {
  if (deps.certificateArn !== undefined && target === deps.certificateArn) return true
  if (deps.certificateId !== undefined && (target === deps.certificateId || target.endsWith(`:cert/${deps.certificateId}`))) return true
  if (deps.groupNames.has(target)) return true
  const m = /:thinggroup\/(.+)$/.exec(target)
  return m !== null && deps.groupNames.has(m[1])
}

/**
 * True when `change` may alter the decisions of a session built from `deps`: the session must recompile its
 * authorizer (certificate status changes are reported too; the gateway closes such sessions).
 */
export function affectsSession (change: PolicyChange, deps: SessionDependencies): boolean {
  switch (change.type) {
    case 'policy.attachment': return targetMatches(change.target, deps) || deps.policyNames.has(change.policyName)
    case 'policy.default-version':
    case 'policy.deleted': return deps.policyNames.has(change.policyName)
    case 'thing.group':
    case 'thing.updated':
    case 'thing.deleted': return change.thingName === deps.thingName
    case 'thing.principal': return change.thingName === deps.thingName || targetMatches(change.principal, deps)
    case 'certificate.status':
    case 'certificate.deleted': return change.certificateId === deps.certificateId
    case 'thing-group.parent':
    case 'thing-group.deleted': return deps.groupNames.has(change.groupName)
  }
}
