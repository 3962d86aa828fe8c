import type { ArnContext, Clock } from '../core/index.ts'
import { compilePolicies, IMPLICIT_DENY_DECISION, parsePolicy } from '../policy/index.ts'
import type { CompiledAuthorizer, ContextMap, Decision, NamedPolicy, PolicyDocument } from '../policy/index.ts'
import { iamArn } from './arns.ts'
import { noSuchEntity } from './errors.ts'
import { BUILTIN_ROLES, builtinPolicy, findRole, isBuiltinPolicy, isBuiltinRole } from './builtin.ts'
import type { IamStorage, IamStore } from './ports.ts'
import type { Principal, Tags } from './types.ts'

/** AWS managed/customer managed policy size limit: 6,144 characters without whitespace (IAM UG `reference_iam-quotas`). */
export const IAM_POLICY_MAX_CHARS = 6144

/** Parses an identity policy (the policy engine's grammar; IAM size limit). Throws MalformedPolicyError. */
export const parseIdentityPolicy = (text: string): PolicyDocument => parsePolicy(text, { maxChars: IAM_POLICY_MAX_CHARS })

/**
 * Invalidation for every in-memory IAM cache (compiled authorizers, key secrets, sessions): services bump the
 * generation after each committed change, and caches built under an older generation are rebuilt. A maximum age
 * bounds staleness against writers in other processes.
 */
export class IamCacheState {
  #generation = 0
  get generation (): number { return this.#generation }
  bump (): void { this.#generation++ }
}

/** How long any cached IAM view may be used before it is re-read, whatever the generation. */
export const IAM_CACHE_MAX_AGE_MS = 30_000

/** Per-request facts that are not part of the principal. */
export interface RequestFacts {
  readonly sourceIp?: string
  /** aws:SecureTransport: true when the request came over TLS. */
  readonly secureTransport: boolean
}

/** A principal's identity facts, as policies see them, and its effective policies. */
export interface PrincipalView {
  readonly id: string
  readonly tags: Tags
  readonly policies: readonly NamedPolicy[]
}

/**
 * Effective identity policies of a user (its own, its groups' and its assigned roles') or of a role (an assumed
 * role session has only the role's). Resolves undefined when the user or role no longer exists.
 */
export async function loadPrincipalView (s: IamStore, type: 'user' | 'role', name: string, accountId: string, parse: (text: string) => PolicyDocument): Promise<PrincipalView | undefined> {
  const names = new Set<string>()
  let id: string
  let tags: Tags
  const addRole = async (role: string): Promise<void> => {
    if (isBuiltinRole(role)) { names.add(BUILTIN_ROLES[role]); return }
    for (const p of await s.listAttachedPolicies('role', role)) names.add(p)
  }
  if (type === 'user') {
    const u = await s.getUser(name)
    if (u === undefined) return undefined
    id = u.id
    tags = u.tags
    for (const p of await s.listAttachedPolicies('user', name)) names.add(p)
    for (const g of await s.listGroupsForUser(name)) for (const p of await s.listAttachedPolicies('group', g)) names.add(p)
    for (const r of await s.listRolesForUser(name)) await addRole(r)
  } else {
    const r = await findRole(s, name, accountId)
    if (r === undefined) return undefined
    id = r.id
    tags = r.tags
    await addRole(name)
  }
  const policies: NamedPolicy[] = []
  for (const n of [...names].sort()) {
    const p = isBuiltinPolicy(n) ? builtinPolicy(n) : await s.getPolicy(n)
    if (p === undefined) continue
    policies.push({ name: p.name, versionId: String(p.version), document: parse(p.document) })
  }
  return { id, tags, policies }
}

interface Entry { readonly generation: number, readonly builtMs: number, readonly view: PrincipalView | undefined, readonly compiled: CompiledAuthorizer | undefined }

/** Dependencies of {@link IamAuthorizer}. */
export interface IamAuthorizerDeps {
  readonly storage: IamStorage
  readonly clock: Clock
  readonly arn: ArnContext
  readonly cache: IamCacheState
}

/**
 * Decides operator requests with the policy engine (shared/reference/policy.md §1: explicit deny wins, default
 * deny). A principal's policies are compiled once and cached until IAM changes; principal facts
 * (aws:username, aws:PrincipalArn, aws:PrincipalType, aws:PrincipalAccount, aws:PrincipalTag/*) are bound at
 * compile time, per-request facts (aws:MultiFactorAuthPresent, aws:MultiFactorAuthAge, aws:SourceIp,
 * aws:SecureTransport, aws:TokenIssueTime, aws:userid, aws:CurrentTime) are read per request.
 */
export class IamAuthorizer {
  readonly #d: IamAuthorizerDeps
  readonly #entries = new Map<string, Entry>()
  readonly #parsed = new Map<string, PolicyDocument>()
  constructor (deps: IamAuthorizerDeps) { this.#d = deps }

  /**
   * Parsed documents keyed by their text, the only input of parsing: a name and version do not identify a
   * document (a policy deleted and created again under its name restarts at version 1).
   */
  #parse = (text: string): PolicyDocument => {
    let d = this.#parsed.get(text)
    if (d === undefined) {
      d = parseIdentityPolicy(text)
      if (this.#parsed.size > 10_000) this.#parsed.clear()
      this.#parsed.set(text, d)
    }
    return d
  }

  /** The principal's current identity view, or undefined when its user or role is gone. */
  async view (type: 'user' | 'role', name: string): Promise<PrincipalView | undefined> {
    return (await this.#entry(type, name)).view
  }

  async #entry (type: 'user' | 'role', name: string): Promise<Entry> {
    const key = `${type}:${name}`
    const now = this.#d.clock.nowMs()
    const hit = this.#entries.get(key)
    if (hit !== undefined && hit.generation === this.#d.cache.generation && now - hit.builtMs < IAM_CACHE_MAX_AGE_MS) return hit
    const generation = this.#d.cache.generation
    const view = await this.#d.storage.read(s => loadPrincipalView(s, type, name, this.#d.arn.accountId, this.#parse))
    const compiled = view === undefined ? undefined : compilePolicies(view.policies, this.principalContext(type, name, view.tags), { arn: this.#d.arn, clock: this.#d.clock })
    const entry: Entry = { generation, builtMs: now, view, compiled }
    if (this.#entries.size > 10_000) this.#entries.clear()
    this.#entries.set(key, entry)
    return entry
  }

  /**
   * The principal's facts as policies see them: bound at compile time for identity policies, and given to trust
   * policies with the request context (AssumeRole).
   */
  principalContext (type: 'user' | 'role', name: string, tags: Tags): ContextMap {
    const acct = this.#d.arn.accountId
    const ctx: Record<string, string> = {
      'aws:PrincipalAccount': acct,
      'aws:PrincipalType': type === 'user' ? 'User' : 'AssumedRole',
      // IAM UG aws:PrincipalArn: for an assumed-role session, the ARN of the role (not of the session).
      'aws:PrincipalArn': iamArn(acct, type, name),
    }
    if (type === 'user') ctx['aws:username'] = name
    for (const [k, v] of Object.entries(tags)) ctx[`aws:PrincipalTag/${k}`] = v
    return ctx
  }

  /** The request context for a principal and request. */
  requestContext (p: Principal, facts: RequestFacts): ContextMap {
    const now = this.#d.clock.nowMs()
    const ctx: Record<string, string | number | boolean> = {
      'aws:userid': p.userId,
      'aws:SecureTransport': facts.secureTransport,
      'aws:RequestedRegion': this.#d.arn.region,
      'aws:CurrentTime': new Date(now).toISOString(),
      'aws:EpochTime': Math.floor(now / 1000),
    }
    if (facts.sourceIp !== undefined) ctx['aws:SourceIp'] = facts.sourceIp.replace(/^::ffff:/, '')
    if (p.mfa !== undefined) ctx['aws:MultiFactorAuthPresent'] = p.mfa
    if (p.mfa === true && p.mfaMs !== undefined) ctx['aws:MultiFactorAuthAge'] = Math.max(0, Math.floor((now - p.mfaMs) / 1000))
    if (p.tokenIssueMs !== undefined) ctx['aws:TokenIssueTime'] = new Date(p.tokenIssueMs).toISOString()
    return ctx
  }

  /**
   * Decides `action` on `resource` for a principal. A principal whose user or role no longer exists is denied
   * (implicitly: no policy applies).
   */
  async authorize (p: Principal, action: string, resource: string, facts: RequestFacts): Promise<Decision> {
    const e = await this.#entry(p.type === 'User' ? 'user' : 'role', p.name)
    if (e.compiled === undefined) return IMPLICIT_DENY_DECISION
    return e.compiled.authorize(action, resource, this.requestContext(p, facts))
  }

  /** Like `authorize`, for a context the caller builds (simulation, trust evaluation). */
  async authorizeWith (type: 'user' | 'role', name: string, action: string, resource: string, context: ContextMap): Promise<Decision> {
    const e = await this.#entry(type, name)
    if (e.compiled === undefined) throw noSuchEntity(type, name)
    return e.compiled.authorize(action, resource, context)
  }
}
