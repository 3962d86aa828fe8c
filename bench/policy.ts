/**
 * Policy engine benchmark on the 2,000-device seed fleet (issue #3):
 * - decisions/s and p50/p99 latency of the compiled evaluator (`authorize` with ARNs, and `authorizeTopic`);
 * - the same decisions through @cedar-policy/cedar-wasm with equivalent Cedar policies (entities pre-built, so the
 *   comparison favours Cedar: only `statefulIsAuthorized` is timed);
 * - the blast-radius report on the seed fleet.
 * Every engine's decisions are checked against the reference interpreter before timing.
 * Run: node bench/policy.ts   (single thread; figures vary with the machine, read them as ratios)
 */
import * as cedar from '@cedar-policy/cedar-wasm/nodejs'
import type { EntityJson } from '@cedar-policy/cedar-wasm/nodejs'
import {
  buildSessionVariables, compilePolicies, computeBlastRadius, evaluate, formatBlastRadiusReport, parsePolicy, ROLE_INFO,
  ROLE_TEMPLATES, ROLES, seedFleet,
} from '../src/policy/index.ts'
import type { CompiledAuthorizer, ContextMap, FleetThing, NamedPolicy, RoleName } from '../src/policy/index.ts'

const fleet = seedFleet()
const H = `arn:aws:iot:${fleet.arn.region}:${fleet.arn.accountId}:`
const devices = fleet.principals.filter(p => p.thingName !== undefined)
const thingByName = new Map(fleet.things.map(t => [t.name, t]))

interface Req {
  readonly dev: number
  readonly action: string
  readonly resource: string
  /** The topic name when the resource is a topic ARN (for authorizeTopic). */
  readonly topic: string | undefined
}

// ── Sessions: compile one authorizer per device ─────────────────────────────────────────────────────────────────
const sessions: ContextMap[] = []
const policiesOf: (readonly NamedPolicy[])[] = []
const t0 = performance.now()
const authorizers: CompiledAuthorizer[] = devices.map((p) => {
  const t = thingByName.get(p.thingName as string) as FleetThing
  const session = buildSessionVariables({ clientId: t.name, thing: { name: t.name, typeName: t.typeName, attributes: t.attributes } })
  sessions.push(session)
  policiesOf.push(p.policies)
  return compilePolicies(p.policies, session, { arn: fleet.arn })
})
const compileUs = (performance.now() - t0) * 1000 / devices.length

// ── Requests: a realistic mix per device, half allowed ──────────────────────────────────────────────────────────
const reqs: Req[] = []
const topicReq = (dev: number, action: string, topic: string): void => { reqs.push({ dev, action, resource: `${H}topic/${topic}`, topic }) }
const otherReq = (dev: number, action: string, resource: string): void => { reqs.push({ dev, action, resource, topic: undefined }) }
devices.forEach((p, i) => {
  const t = thingByName.get(p.thingName as string) as FleetThing
  const other = fleet.things[(fleet.things.indexOf(t) + 1) % fleet.things.length]
  const own = t.topics ?? []
  topicReq(i, 'iot:Publish', own[0])
  topicReq(i, 'iot:Publish', (other.topics ?? [])[0])
  otherReq(i, 'iot:Connect', `${H}client/${t.name}`)
  otherReq(i, 'iot:Connect', `${H}client/${other.name}`)
  const cmd = own.find(x => x.endsWith('/cmd')) ?? `${own[0]}/cmd`
  otherReq(i, 'iot:Subscribe', `${H}topicfilter/${cmd}`)
  topicReq(i, 'iot:Receive', cmd)
  topicReq(i, 'iot:Publish', `$aws/things/${t.name}/shadow/update`)
  otherReq(i, 'iot:GetThingShadow', `${H}thing/${t.name}`)
})

// ── Correctness first: compiled = reference on every request ────────────────────────────────────────────────────
let allowedCount = 0
for (const r of reqs) {
  const ref = evaluate(policiesOf[r.dev], { action: r.action, resource: r.resource, context: sessions[r.dev] })
  const d = authorizers[r.dev].authorize(r.action, r.resource)
  if (d.effect !== ref.effect) throw new Error(`compiled disagrees with reference on ${r.action} ${r.resource}`)
  if (r.topic !== undefined && authorizers[r.dev].authorizeTopic(r.action, r.topic) !== d) throw new Error('authorizeTopic disagrees')
  if (d.allowed) allowedCount++
}

// ── Throughput ──────────────────────────────────────────────────────────────────────────────────────────────────
const N = reqs.length
const devIdx = Int32Array.from(reqs, r => r.dev)
const actions = reqs.map(r => r.action)
const resources = reqs.map(r => r.resource)
const topicIdx = reqs.flatMap((r, i) => r.topic === undefined ? [] : [i])
const topics = reqs.map(r => r.topic ?? '')

function runArn (rounds: number): number {
  let allowed = 0
  for (let k = 0; k < rounds; k++) {
    for (let i = 0; i < N; i++) if (authorizers[devIdx[i]].authorize(actions[i], resources[i]).allowed) allowed++
  }
  return allowed
}
function runTopic (rounds: number): number {
  let allowed = 0
  for (let k = 0; k < rounds; k++) {
    for (let j = 0; j < topicIdx.length; j++) {
      const i = topicIdx[j]
      if (authorizers[devIdx[i]].authorizeTopic(actions[i], topics[i]).allowed) allowed++
    }
  }
  return allowed
}

function throughput (fn: (rounds: number) => number, perRound: number, rounds: number): { best: number, median: number } {
  fn(Math.max(1, Math.floor(rounds / 4))) // warm-up
  const rates: number[] = []
  let sink = 0
  for (let rep = 0; rep < 7; rep++) {
    const s = process.hrtime.bigint()
    sink += fn(rounds)
    const ns = Number(process.hrtime.bigint() - s)
    rates.push(perRound * rounds / (ns / 1e9))
  }
  if (sink < 0) console.log(sink)
  rates.sort((a, b) => a - b)
  return { best: rates[rates.length - 1], median: rates[Math.floor(rates.length / 2)] }
}

const arnRate = throughput(runArn, N, 60)

// The portable templates (`arn:aws:iot:*:*:`, as the CLI provisions them) must decide the same, about as fast.
const portable = new Map(ROLES.map(r => [r, [{ name: `portable-${r}`, versionId: '1', document: parsePolicy(ROLE_TEMPLATES[r]) }]]))
const portableAz = devices.map((p, i) => compilePolicies(portable.get(p.label as RoleName) ?? [], sessions[i], { arn: fleet.arn }))
for (let i = 0; i < N; i++) {
  if (portableAz[devIdx[i]].authorize(actions[i], resources[i]).allowed !== authorizers[devIdx[i]].authorize(actions[i], resources[i]).allowed) {
    throw new Error('portable templates disagree')
  }
}
const portableRate = throughput((rounds) => {
  let allowed = 0
  for (let k = 0; k < rounds; k++) for (let i = 0; i < N; i++) if (portableAz[devIdx[i]].authorize(actions[i], resources[i]).allowed) allowed++
  return allowed
}, N, 60)
const topicRate = throughput(runTopic, topicIdx.length, 100)

// ── Latency: each decision timed on its own ─────────────────────────────────────────────────────────────────────
function latencies (samples: number): { p50: number, p99: number, p999: number, overhead: number } {
  const lat = new Float64Array(samples)
  const empty = new Float64Array(samples)
  let sink = 0
  for (let s = 0; s < samples; s++) {
    const i = (s * 7919) % N
    const a = performance.now()
    const d = authorizers[devIdx[i]].authorize(actions[i], resources[i])
    const b = performance.now()
    lat[s] = (b - a) * 1000
    if (d.allowed) sink++
    const c = performance.now()
    empty[s] = (performance.now() - c) * 1000
  }
  if (sink < 0) console.log(sink)
  lat.sort()
  empty.sort()
  const q = (arr: Float64Array, p: number): number => arr[Math.min(arr.length - 1, Math.floor(arr.length * p))]
  return { p50: q(lat, 0.5), p99: q(lat, 0.99), p999: q(lat, 0.999), overhead: q(empty, 0.5) }
}
latencies(100_000)
const lat = latencies(1_000_000)

// ── cedar-wasm with equivalent policies ─────────────────────────────────────────────────────────────────────────
const CEDAR_POLICIES = `
permit (principal is Device, action == Action::"Connect", resource is Client)
  when { principal.attached && resource.id == principal.name };
permit (principal is Device, action == Action::"Publish", resource is Topic)
  when { (principal.role == "temperature-sensor" || principal.role == "occupancy-sensor") && resource.layout
    && resource.building == principal.building && resource.floor == principal.floor
    && resource.deviceType == principal.segment && resource.device == principal.name && resource.suffix == "" };
permit (principal is Device, action == Action::"Publish", resource is Topic)
  when { principal.role == "smart-light" && resource.layout && resource.building == principal.building
    && resource.floor == principal.floor && resource.deviceType == "light" && resource.device == principal.name
    && resource.suffix == "status" };
permit (principal is Device, action == Action::"Publish", resource is Topic)
  when { principal.role == "door-lock" && resource.layout && resource.building == principal.building
    && resource.floor == principal.floor && resource.deviceType == "lock" && resource.device == principal.name
    && resource.suffix == "audit" };
permit (principal is Device, action == Action::"Publish", resource is Topic)
  when { principal.role == "occupancy-sensor" && resource.shadowThing == principal.name && resource.shadowOp == "get" };
permit (principal is Device, action == Action::"Publish", resource is Topic)
  when { (principal.role == "smart-light" || principal.role == "door-lock") && resource.shadowThing == principal.name
    && (resource.shadowOp == "get" || resource.shadowOp == "update") };
permit (principal is Device, action in [Action::"Subscribe", Action::"Receive"], resource)
  when { principal.role == "occupancy-sensor" && resource has shadowThing && resource.shadowThing == principal.name
    && resource.shadowOp like "get/*" };
permit (principal is Device, action in [Action::"Subscribe", Action::"Receive"], resource)
  when { (principal.role == "smart-light" || principal.role == "door-lock") && resource has layout && resource.layout
    && resource.building == principal.building && resource.floor == principal.floor
    && resource.deviceType == principal.segment && resource.device == principal.name && resource.suffix == "cmd" };
permit (principal is Device, action in [Action::"Subscribe", Action::"Receive"], resource)
  when { (principal.role == "smart-light" || principal.role == "door-lock") && resource has shadowThing
    && resource.shadowThing == principal.name && resource.shadowFull };
permit (principal is Device, action == Action::"GetThingShadow", resource is Thing)
  when { principal.role != "temperature-sensor" && resource.name == principal.name };
permit (principal is Device, action == Action::"UpdateThingShadow", resource is Thing)
  when { (principal.role == "smart-light" || principal.role == "door-lock") && resource.name == principal.name };
`

/** The PEP's mapping of a topic (or filter) to entity attributes, following the seed topic layout. */
function topicAttrs (topic: string): Record<string, string | boolean> {
  const attrs: Record<string, string | boolean> = { layout: false, building: '', floor: '', deviceType: '', device: '', suffix: '', shadowThing: '', shadowOp: '', shadowFull: false }
  const m = /^building\/([^/]+)\/floor\/([^/]+)\/([^/]+)\/([^/]+)(?:\/([^/]+))?$/.exec(topic)
  if (m !== null) Object.assign(attrs, { layout: true, building: m[1], floor: m[2], deviceType: m[3], device: m[4], suffix: m[5] ?? '' })
  const s = /^\$aws\/things\/([^/]+)\/shadow(\/(.*))?$/.exec(topic)
  if (s !== null) Object.assign(attrs, { shadowThing: s[1], shadowOp: s[3] ?? '', shadowFull: s[2] !== undefined })
  return attrs
}

const roleOf = new Map<string, RoleName>()
for (const p of devices) roleOf.set(p.thingName as string, p.label as RoleName)
const principalEntity = (name: string): EntityJson => {
  const t = thingByName.get(name) as FleetThing
  const role = roleOf.get(name) as RoleName
  return {
    uid: { type: 'Device', id: name },
    attrs: { name, role, segment: ROLE_INFO[role].segment, building: t.attributes?.building ?? '', floor: t.attributes?.floor ?? '', attached: true },
    parents: [],
  }
}
interface CedarCall { principal: { type: string, id: string }, action: { type: string, id: string }, resource: { type: string, id: string }, entities: EntityJson[] }
const cedarCalls: CedarCall[] = reqs.map((r) => {
  const name = devices[r.dev].thingName as string
  const action = { type: 'Action', id: r.action.slice(4) }
  const rest = r.resource.slice(H.length)
  const slash = rest.indexOf('/')
  const kind = rest.slice(0, slash)
  const id = rest.slice(slash + 1)
  let resource: EntityJson
  if (kind === 'topic') resource = { uid: { type: 'Topic', id }, attrs: topicAttrs(id), parents: [] }
  else if (kind === 'topicfilter') resource = { uid: { type: 'TopicFilter', id }, attrs: topicAttrs(id), parents: [] }
  else if (kind === 'client') resource = { uid: { type: 'Client', id }, attrs: { id }, parents: [] }
  else resource = { uid: { type: 'Thing', id }, attrs: { name: id }, parents: [] }
  return { principal: { type: 'Device', id: name }, action, resource: resource.uid as { type: string, id: string }, entities: [principalEntity(name), resource] }
})

const parsed = cedar.preparsePolicySet('seed', { staticPolicies: CEDAR_POLICIES })
if (parsed.type !== 'success') throw new Error(`cedar policies: ${JSON.stringify(parsed)}`)
const cedarDecide = (c: CedarCall): boolean => {
  const ans = cedar.statefulIsAuthorized({ principal: c.principal, action: c.action, resource: c.resource, context: {}, preparsedPolicySetId: 'seed', entities: c.entities })
  if (ans.type !== 'success') throw new Error(JSON.stringify(ans.errors))
  if (ans.response.diagnostics.errors.length > 0) throw new Error(JSON.stringify(ans.response.diagnostics.errors))
  return ans.response.decision === 'allow'
}
for (let i = 0; i < N; i++) {
  if (cedarDecide(cedarCalls[i]) !== authorizers[devIdx[i]].authorize(actions[i], resources[i]).allowed) {
    throw new Error(`cedar disagrees on ${actions[i]} ${resources[i]}`)
  }
}
const CEDAR_SAMPLES = 8000
const cedarLat = new Float64Array(CEDAR_SAMPLES)
const cs = process.hrtime.bigint()
for (let s = 0; s < CEDAR_SAMPLES; s++) {
  const a = performance.now()
  cedarDecide(cedarCalls[(s * 7919) % N])
  cedarLat[s] = (performance.now() - a) * 1000
}
const cedarRate = CEDAR_SAMPLES / (Number(process.hrtime.bigint() - cs) / 1e9)
cedarLat.sort()

// ── Report ──────────────────────────────────────────────────────────────────────────────────────────────────────
const fmt = (n: number): string => Math.round(n).toLocaleString('en-US')
const us = (n: number): string => `${n.toFixed(3)} µs`
console.log(`Policy engine benchmark — seed fleet: ${devices.length} devices, ${N} distinct requests (${allowedCount} allowed), Node ${process.version}`)
console.log(`  compile per session            ${us(compileUs)}`)
console.log(`  authorize (ARN)                ${fmt(arnRate.best)} decisions/s best, ${fmt(arnRate.median)} median (one core)`)
console.log(`  authorizeTopic (topic name)    ${fmt(topicRate.best)} decisions/s best, ${fmt(topicRate.median)} median`)
console.log(`  authorize, portable templates  ${fmt(portableRate.best)} decisions/s best, ${fmt(portableRate.median)} median (arn:aws:iot:*:*:)`)
console.log(`  latency per decision           p50 ${us(lat.p50)}  p99 ${us(lat.p99)}  p99.9 ${us(lat.p999)}  (includes ~${us(lat.overhead)} timer overhead)`)
console.log(`  cedar-wasm statefulIsAuthorized ${fmt(cedarRate)} decisions/s, p50 ${us(cedarLat[Math.floor(CEDAR_SAMPLES * 0.5)])}  p99 ${us(cedarLat[Math.floor(CEDAR_SAMPLES * 0.99)])}  (entities pre-built; same ${N} decisions verified)`)
const ratio = arnRate.median / cedarRate
console.log(`  compiled / cedar-wasm          ${fmt(ratio)}×`)
const goals = [
  ['≥ 2,000,000 decisions/s on one core', arnRate.median >= 2_000_000],
  ['p99 ≤ 5 µs', lat.p99 <= 5],
  ['≥ 50× cedar-wasm', ratio >= 50],
] as const
for (const [g, ok] of goals) console.log(`  goal ${g.padEnd(36)} ${ok ? 'met' : 'NOT MET'}`)

console.log('')
const b0 = performance.now()
const report = computeBlastRadius(fleet)
const lines = formatBlastRadiusReport(report, { top: 5 })
console.log(`${lines.join('\n')}\n  (computed in ${Math.round(performance.now() - b0)} ms)`)
