/**
 * Blast radius: for each principal, the share of the fleet's things and topics it could act on, computed over the
 * actual registry rather than guessed from the policy text (policy.md §4.6, the "concrete pass"). Over-approximate
 * on purpose: it answers "what could a stolen credential reach", so anything the attacker controls is assumed to
 * go their way:
 * - Request-time condition keys (source IP, time, MFA…) are unknown: an Allow's conditions on them are assumed to
 *   hold and a Deny conditioned on them is assumed not to apply.
 * - If Connect admits client ids other than the thing name, the client id is attacker-chosen: `${iot:ClientId}`
 *   is then unknown as well (its hostile values are still refused, see keys.ts `isHostileValue`).
 * - Read access is Subscribe ∩ Receive (IoT DG `pub-sub-policy`): a topic counts as readable when Receive allows
 *   it and some filter that matches it — the topic itself, `#`, a `…/#` prefix or a single-level `+` — may be
 *   subscribed to.
 */
import { compilePolicies } from './compile.ts'
import type { CompiledAuthorizer } from './compile.ts'
import { isSessionScopedKey } from './keys.ts'
import { buildSessionVariables } from './session.ts'
import type { FleetPrincipal, FleetSnapshot, FleetThing } from './templates.ts'
import type { ConditionClause, ContextMap, NamedPolicy, PolicyDocument, ResourcePattern, Statement, Template } from './types.ts'

/** A count out of a total, and the ratio (0…1). */
export interface Share {
  readonly count: number
  readonly total: number
  readonly share: number
}

/** One principal's reach. Every share is over the fleet's things except `topics` (over all thing topics). */
export interface PrincipalBlastRadius {
  readonly principalId: string
  readonly label: string | undefined
  readonly thingName: string | undefined
  /** Things touched by any of the classes below. */
  readonly things: Share
  /** Things with at least one of their topics publishable. */
  readonly publish: Share
  /** Things with at least one of their topics readable (Subscribe ∩ Receive). */
  readonly receive: Share
  /** Shadows readable (GetThingShadow, or the MQTT get request plus its reply). */
  readonly shadowRead: Share
  /** Shadows writable (Update/DeleteThingShadow, or a publish to the shadow update/delete topic). */
  readonly shadowWrite: Share
  /** Things whose client id it may connect as (taking over the device's session). */
  readonly connectAs: Share
  /** Thing topics publishable or readable. */
  readonly topics: Share
  /** True when Connect admits arbitrary client ids, so `${iot:ClientId}` was treated as attacker-chosen. */
  readonly clientIdUnpinned: boolean
}

/** The fleet report: principals ranked by reach, widest first. */
export interface BlastRadiusReport {
  readonly totalThings: number
  readonly totalTopics: number
  readonly principals: readonly PrincipalBlastRadius[]
}

const share = (count: number, total: number): Share => ({ count, total, share: total === 0 ? 0 : count / total })

/** Formats a share as a percentage the way the report prints it: `0.05 %`, `100 %`, `33.33 %`. */
export function formatPercent (ratio: number): string {
  const pct = ratio * 100
  if (Number.isInteger(pct)) return `${pct} %`
  let s = pct.toFixed(2)
  if (s === '0.00') s = pct.toPrecision(2)
  return `${s.replace(/(\.\d*?)0+$/, '$1').replace(/\.$/, '')} %`
}

// ---------------------------------------------------------------------------------------------------------------
// The attacker-optimistic transform.

function templateUnbound (t: Template, isBound: (k: string) => boolean): boolean {
  for (const p of t) if (p.kind === 'variable' && !isBound(p.key)) return true
  return false
}

function clauseUnknown (c: ConditionClause, isBound: (k: string) => boolean): boolean {
  return !isBound(c.key) || c.values.some(v => templateUnbound(v.template, isBound))
}

/** Replaces unbound variables by `*` in the resource part (for an Allow: the attacker picks the value). */
function widen (r: ResourcePattern, isBound: (k: string) => boolean): ResourcePattern {
  const tail: Template = r.tail.map(p => p.kind === 'variable' && !isBound(p.key) ? { kind: 'text', text: '*' } : p)
  return { ...r, tail }
}

const ANY_RESOURCE: ResourcePattern = { raw: '*', any: true, head: [], tail: [{ kind: 'text', text: '*' }] }

function optimisticStatement (s: Statement, isBound: (k: string) => boolean): Statement | undefined {
  const unknownClauses = s.conditions.filter(c => clauseUnknown(c, isBound))
  if (s.effect === 'Deny') {
    // A Deny that depends on something the attacker controls is assumed not to apply.
    if (unknownClauses.length > 0) return undefined
    if (!s.notResource) {
      const resources = s.resources.filter(r => r.any || !templateUnbound(r.tail, isBound))
      return resources.length === 0 ? undefined : { ...s, resources }
    }
    return { ...s, resources: s.resources.map(r => !r.any && templateUnbound(r.tail, isBound) ? ANY_RESOURCE : r) }
  }
  const conditions = s.conditions.filter(c => !unknownClauses.includes(c))
  if (!s.notResource) return { ...s, conditions, resources: s.resources.map(r => widen(r, isBound)) }
  return { ...s, conditions, resources: s.resources.filter(r => r.any || !templateUnbound(r.tail, isBound)) }
}

/** The policies with every attacker-controllable unknown resolved in the attacker's favour. */
export function optimisticPolicies (policies: readonly NamedPolicy[], isBound: (lowerKey: string) => boolean): NamedPolicy[] {
  return policies.map(p => {
    const statements = p.document.statements.map(s => optimisticStatement(s, isBound)).filter((s): s is Statement => s !== undefined)
    const document: PolicyDocument = { ...p.document, statements }
    return { ...p, document }
  })
}

// ---------------------------------------------------------------------------------------------------------------
// The resource universe, indexed by ARN for prefix pruning.

interface Indexed { readonly arn: string, readonly thing: number, readonly topic: number, readonly name: string }

class SortedIndex {
  readonly #items: Indexed[]
  constructor (items: Indexed[]) {
    this.#items = items.sort((a, b) => a.arn < b.arn ? -1 : a.arn > b.arn ? 1 : 0)
  }

  /** Items whose ARN starts with one of `prefixes` (all items when undefined). */
  * candidates (prefixes: readonly string[] | undefined): Generator<Indexed> {
    if (prefixes === undefined) { yield * this.#items; return }
    const seen = new Set<number>()
    for (const p of prefixes) {
      let lo = 0
      let hi = this.#items.length
      while (lo < hi) {
        const mid = (lo + hi) >>> 1
        if (this.#items[mid].arn < p) lo = mid + 1
        else hi = mid
      }
      for (let i = lo; i < this.#items.length && this.#items[i].arn.startsWith(p); i++) {
        if (seen.has(i)) continue
        seen.add(i)
        yield this.#items[i]
      }
    }
  }
}

interface Universe {
  readonly head: string
  readonly things: readonly FleetThing[]
  readonly totalTopics: number
  readonly clients: SortedIndex
  readonly topics: SortedIndex
  readonly thingArns: SortedIndex
  readonly shadowWriteTopics: SortedIndex
  readonly shadowGetAccepted: SortedIndex
}

function buildUniverse (fleet: FleetSnapshot): Universe {
  const head = `arn:aws:iot:${fleet.arn.region}:${fleet.arn.accountId}:`
  const clients: Indexed[] = []
  const topics: Indexed[] = []
  const thingArns: Indexed[] = []
  const shadowWrite: Indexed[] = []
  const shadowGet: Indexed[] = []
  let topicId = 0
  fleet.things.forEach((t, i) => {
    clients.push({ arn: `${head}client/${t.name}`, thing: i, topic: -1, name: t.name })
    thingArns.push({ arn: `${head}thing/${t.name}`, thing: i, topic: -1, name: t.name })
    for (const topic of t.topics ?? []) topics.push({ arn: `${head}topic/${topic}`, thing: i, topic: topicId++, name: topic })
    const sh = `$aws/things/${t.name}/shadow`
    for (const op of ['update', 'delete']) shadowWrite.push({ arn: `${head}topic/${sh}/${op}`, thing: i, topic: -1, name: `${sh}/${op}` })
    shadowGet.push({ arn: `${head}topic/${sh}/get/accepted`, thing: i, topic: -1, name: `${sh}/get/accepted` })
  })
  return {
    head,
    things: fleet.things,
    totalTopics: topicId,
    clients: new SortedIndex(clients),
    topics: new SortedIndex(topics),
    thingArns: new SortedIndex(thingArns),
    shadowWriteTopics: new SortedIndex(shadowWrite),
    shadowGetAccepted: new SortedIndex(shadowGet),
  }
}

/** MQTT filters that match `topic`: itself, `#`, every `…/#` prefix and every single-level `+` replacement. */
function filtersFor (topic: string): string[] {
  const levels = topic.split('/')
  const out = [topic, '#']
  for (let k = 1; k < levels.length; k++) out.push(`${levels.slice(0, k).join('/')}/#`)
  for (let k = 0; k < levels.length; k++) out.push(levels.map((l, j) => j === k ? '+' : l).join('/'))
  return out
}

interface Reach {
  readonly things: Set<number>
  readonly publish: Set<number>
  readonly receive: Set<number>
  readonly shadowRead: Set<number>
  readonly shadowWrite: Set<number>
  readonly connectAs: Set<number>
  readonly topics: Set<number>
}

const newReach = (): Reach => ({
  things: new Set(), publish: new Set(), receive: new Set(), shadowRead: new Set(), shadowWrite: new Set(), connectAs: new Set(), topics: new Set(),
})

function mark (reach: Reach, cls: Exclude<keyof Reach, 'things' | 'topics'>, thing: number): void {
  reach[cls].add(thing)
  reach.things.add(thing)
}

function canSubscribe (az: CompiledAuthorizer, head: string, topic: string): boolean {
  for (const f of filtersFor(topic)) if (az.authorize('iot:Subscribe', `${head}topicfilter/${f}`).allowed) return true
  return false
}

function measure (az: CompiledAuthorizer, u: Universe, reach: Reach): void {
  for (const c of u.clients.candidates(az.allowedResourcePrefixes('iot:Connect'))) {
    if (az.authorize('iot:Connect', c.arn).allowed) mark(reach, 'connectAs', c.thing)
  }
  for (const t of u.topics.candidates(az.allowedResourcePrefixes('iot:Publish'))) {
    if (az.authorize('iot:Publish', t.arn).allowed) { mark(reach, 'publish', t.thing); reach.topics.add(t.topic) }
  }
  for (const t of u.topics.candidates(az.allowedResourcePrefixes('iot:Receive'))) {
    if (az.authorize('iot:Receive', t.arn).allowed && canSubscribe(az, u.head, t.name)) { mark(reach, 'receive', t.thing); reach.topics.add(t.topic) }
  }
  for (const action of ['iot:GetThingShadow']) {
    for (const t of u.thingArns.candidates(az.allowedResourcePrefixes(action))) if (az.authorize(action, t.arn).allowed) mark(reach, 'shadowRead', t.thing)
  }
  for (const t of u.shadowGetAccepted.candidates(az.allowedResourcePrefixes('iot:Receive'))) {
    if (reach.shadowRead.has(t.thing)) continue
    const getTopic = t.name.slice(0, -'/accepted'.length)
    if (az.authorize('iot:Receive', t.arn).allowed && az.authorize('iot:Publish', `${u.head}topic/${getTopic}`).allowed &&
      canSubscribe(az, u.head, t.name)) mark(reach, 'shadowRead', t.thing)
  }
  for (const action of ['iot:UpdateThingShadow', 'iot:DeleteThingShadow']) {
    for (const t of u.thingArns.candidates(az.allowedResourcePrefixes(action))) if (az.authorize(action, t.arn).allowed) mark(reach, 'shadowWrite', t.thing)
  }
  for (const t of u.shadowWriteTopics.candidates(az.allowedResourcePrefixes('iot:Publish'))) {
    if (az.authorize('iot:Publish', t.arn).allowed) mark(reach, 'shadowWrite', t.thing)
  }
}

function usesKey (policies: readonly NamedPolicy[], key: string): boolean {
  for (const p of policies) {
    for (const s of p.document.statements) {
      for (const r of s.resources) for (const part of r.tail) if (part.kind === 'variable' && part.key === key) return true
      for (const c of s.conditions) {
        if (c.key === key) return true
        for (const v of c.values) for (const part of v.template) if (part.kind === 'variable' && part.key === key) return true
      }
    }
  }
  return false
}

/** A client id that no thing has, to ask "may this principal connect under an arbitrary client id?". */
const PROBE_CLIENT_ID = 'thingward-blast-radius-probe-0'
/** More distinct extra client ids than this is treated as "any client id". */
const MAX_EXTRA_CLIENT_IDS = 16

function principalReach (p: FleetPrincipal, u: Universe, thingsByName: ReadonlyMap<string, FleetThing>, arn: FleetSnapshot['arn']): { reach: Reach, unpinned: boolean } {
  const thing = p.thingName === undefined ? undefined : thingsByName.get(p.thingName)
  const ownClientId = p.clientId ?? p.thingName ?? p.id
  const sessionFor = (clientId: string): ContextMap => buildSessionVariables({
    clientId,
    thing: thing === undefined ? undefined : { name: thing.name, typeName: thing.typeName, attributes: thing.attributes },
    exclusiveThing: p.exclusiveThing,
    extra: p.variables,
  })
  const compileFor = (session: ContextMap, clientIdKnown: boolean): CompiledAuthorizer => {
    const keys = new Set(Object.keys(session).map(k => k.toLowerCase()))
    const isBound = (k: string): boolean => k === 'iot:clientid' ? clientIdKnown : keys.has(k) || isSessionScopedKey(k)
    return compilePolicies(optimisticPolicies(p.policies, isBound), session, { arn })
  }
  const reach = newReach()
  const own = compileFor(sessionFor(ownClientId), true)
  measure(own, u, reach)
  // May it connect under a client id of its choosing? Then `${iot:ClientId}` is the attacker's to pick.
  const probe = compileFor(sessionFor(PROBE_CLIENT_ID), true)
  let unpinned = probe.authorize('iot:Connect', `${u.head}client/${PROBE_CLIENT_ID}`).allowed
  const extra = [...reach.connectAs].map(i => u.things[i].name).filter(n => n !== ownClientId)
  if (extra.length > MAX_EXTRA_CLIENT_IDS) unpinned = true
  if (unpinned) {
    measure(compileFor(sessionFor(PROBE_CLIENT_ID), !usesKey(p.policies, 'iot:clientid')), u, reach)
  } else {
    for (const clientId of extra) measure(compileFor(sessionFor(clientId), true), u, reach)
  }
  return { reach, unpinned }
}

/**
 * Computes every principal's blast radius over the fleet (things with their topics; principals with their
 * effective policies) and ranks principals by the share of things they reach, then by topics.
 * In the seed fleet each device reaches exactly its own thing (1/2,000 = 0.05 %) and the shared `iot:*`
 * credential reaches all of them (100 %).
 */
export function computeBlastRadius (fleet: FleetSnapshot): BlastRadiusReport {
  const u = buildUniverse(fleet)
  const byName = new Map(fleet.things.map(t => [t.name, t]))
  const total = fleet.things.length
  const rows: PrincipalBlastRadius[] = fleet.principals.map(p => {
    const { reach, unpinned } = principalReach(p, u, byName, fleet.arn)
    return {
      principalId: p.id,
      label: p.label,
      thingName: p.thingName,
      things: share(reach.things.size, total),
      publish: share(reach.publish.size, total),
      receive: share(reach.receive.size, total),
      shadowRead: share(reach.shadowRead.size, total),
      shadowWrite: share(reach.shadowWrite.size, total),
      connectAs: share(reach.connectAs.size, total),
      topics: share(reach.topics.size, u.totalTopics),
      clientIdUnpinned: unpinned,
    }
  })
  rows.sort((a, b) => b.things.share - a.things.share || b.topics.share - a.topics.share || (a.principalId < b.principalId ? -1 : 1))
  return { totalThings: total, totalTopics: u.totalTopics, principals: rows }
}

/**
 * The fleet report as text lines: a header, the `top` widest principals, and a summary per label (role) with the
 * smallest and largest reach in each.
 */
export function formatBlastRadiusReport (report: BlastRadiusReport, options: { readonly top?: number } = {}): string[] {
  const lines: string[] = []
  lines.push(`Blast radius over ${report.totalThings} things and ${report.totalTopics} topics, ${report.principals.length} principals (widest first)`)
  const top = options.top ?? 10
  report.principals.slice(0, top).forEach((r, i) => {
    lines.push(`${String(i + 1).padStart(4)}. ${r.principalId.padEnd(28)} things ${r.things.count}/${r.things.total} (${formatPercent(r.things.share)})` +
      `  publish ${formatPercent(r.publish.share)}  receive ${formatPercent(r.receive.share)}` +
      `  shadow r/w ${formatPercent(r.shadowRead.share)}/${formatPercent(r.shadowWrite.share)}` +
      `  connect-as ${formatPercent(r.connectAs.share)}  topics ${formatPercent(r.topics.share)}${r.clientIdUnpinned ? '  [client id unpinned]' : ''}`)
  })
  const groups = new Map<string, PrincipalBlastRadius[]>()
  for (const r of report.principals) {
    const k = r.label ?? '(unlabelled)'
    const g = groups.get(k) ?? []
    g.push(r)
    groups.set(k, g)
  }
  lines.push('By role:')
  for (const [label, rs] of groups) {
    const min = rs.reduce((a, b) => b.things.share < a.things.share ? b : a)
    const max = rs.reduce((a, b) => b.things.share > a.things.share ? b : a)
    const range = min.things.count === max.things.count
      ? `every principal reaches ${max.things.count}/${max.things.total} things (${formatPercent(max.things.share)})`
      : `reach ${formatPercent(min.things.share)} … ${formatPercent(max.things.share)} of things`
    lines.push(`  ${label.padEnd(20)} ×${String(rs.length).padEnd(5)} ${range}`)
  }
  return lines
}
