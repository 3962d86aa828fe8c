import type { ArnContext, Clock, EventBus } from '../core/index.ts'
import type { RegistryStorage, RegistryUnit } from './ports.ts'

/** Who asked, for the audit record. */
export interface Caller {
  readonly actor: string
  readonly sourceIp?: string
  readonly requestId?: string
}

export const SYSTEM_CALLER: Caller = { actor: 'system' }

/** Dependencies every registry service receives (EXAMPLES.md #3). */
export interface RegistryDeps {
  readonly storage: RegistryStorage
  readonly clock: Clock
  readonly events: EventBus
  readonly arn: ArnContext
}

/** Page sizes are clamped like AWS (maxResults 1-250). */
export function pageSize (requested: number | undefined, max = 250, dflt = 50): number {
  if (requested === undefined || !Number.isFinite(requested)) return dflt
  return Math.max(1, Math.min(max, Math.trunc(requested)))
}

/** Next-page tokens are opaque to clients; base64url of the last key keeps them so. */
export const encodeToken = (key: string): string => Buffer.from(key, 'utf8').toString('base64url')
export function decodeToken (token: string | undefined): string | undefined {
  if (token === undefined || token === '') return undefined
  return Buffer.from(token, 'base64url').toString('utf8')
}

/** Fetches limit+1 rows to know whether another page exists. */
export function paginate<T> (rows: T[], limit: number, keyOf: (t: T) => string): { items: T[], nextToken: string | undefined } {
  if (rows.length <= limit) return { items: rows, nextToken: undefined }
  const items = rows.slice(0, limit)
  return { items, nextToken: encodeToken(keyOf(items[items.length - 1])) }
}

/** Appends the success event of a change inside its unit of work (the change and its event commit together). */
export function auditChange (u: RegistryUnit, caller: Caller, action: string, target: string, details?: Record<string, unknown>): Promise<unknown> {
  return u.audit.append({ action, actor: caller.actor, outcome: 'success', target, sourceIp: caller.sourceIp, requestId: caller.requestId, details })
}
