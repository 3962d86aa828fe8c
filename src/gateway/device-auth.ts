import type { X509Certificate } from 'node:crypto'
import type { ArnContext, Clock } from '../core/index.ts'
import { certificateIdFromFingerprint, iotArn } from '../core/index.ts'
import type { CompiledAuthorizer, Decision, NamedPolicy, PolicyChange, SessionDependencies } from '../policy/index.ts'
import { affectsSession, buildSessionVariables, collectEffectivePolicies, compilePolicies, describeDecision } from '../policy/index.ts'
import type { DeviceDirectory, DeviceIdentity, DevicePolicies } from '../registry/index.ts'
import type { CommandService } from '../command/index.ts'
import type {
  AuthenticationResult, ConnectAttributes, ConnectionAuthenticator, ConnectionRequest, GatewayDecision, SessionAuthorizer,
  SessionAuthorizerFactory, SessionContext, SessionPrincipal,
} from './ports.ts'

/** Subject/issuer CN and serial, for the `iot:Certificate.*` policy variables (IoT DG `cert-policy-variables`). */
export function certificateAttributes (cert: X509Certificate): Record<string, string> {
  const cn = (dn: string): string | undefined => /(?:^|\n)CN=([^\n]*)/.exec(dn)?.[1]
  const out: Record<string, string> = { serialNumber: cert.serialNumber.toLowerCase() }
  const s = cn(cert.subject)
  const i = cn(cert.issuer)
  if (s !== undefined) out.subjectCommonName = s
  if (i !== undefined) out.issuerCommonName = i
  return out
}

/**
 * Authenticates every connection against the registry by certificate id (DESIGN.md §2.2): a resumed TLS session
 * is looked up like a new one, so revocation cannot be bypassed; nothing positive is cached.
 */
export class RegistryAuthenticator implements ConnectionAuthenticator {
  readonly #devices: DeviceDirectory
  /** The identity each principal was authenticated with, handed once to the authorizer built for its CONNECT. */
  readonly #fresh = new WeakMap<SessionPrincipal, DeviceIdentity>()
  constructor (devices: DeviceDirectory) { this.#devices = devices }

  async authenticate (req: ConnectionRequest): Promise<AuthenticationResult> {
    const certificateId = certificateIdFromFingerprint(req.fingerprint256)
    const r = await this.#devices.identify(certificateId)
    if (!r.ok) return { ok: false, reason: r.reason }
    const principal: SessionPrincipal = { id: r.identity.certificateArn, certificateId, thingName: r.identity.thing?.name, attributes: certificateAttributes(req.certificate) }
    this.#fresh.set(principal, r.identity)
    return { ok: true, principal }
  }

  /**
   * The identity found by `authenticate` for this principal, once: the CONNECT's authorizer needs no second
   * registry read. Later calls (re-authorization) get undefined and must look the certificate up again.
   */
  takeIdentity (principal: SessionPrincipal): DeviceIdentity | undefined {
    const id = this.#fresh.get(principal)
    this.#fresh.delete(principal)
    return id
  }
}

/** What the device authorizer needs of the command service: the sensitive topics and when they last changed. */
type SensitiveTopics = Pick<CommandService, 'isSensitive' | 'sensitiveGeneration'>

const SENSITIVE_TOPIC_DECISION: GatewayDecision = Object.freeze({ allowed: false, reason: 'sensitive-topic', statement: 'sensitive command topic: operator commands with MFA only' })

/** An authorizer that denies everything: the principal is no longer valid (revoked between connect and re-check). */
const DENY_ALL_DECISION: GatewayDecision = Object.freeze({ allowed: false, reason: 'principal-invalid' })
const DENY_ALL: SessionAuthorizer = {
  authorizeConnect: () => DENY_ALL_DECISION,
  authorizePublish: () => DENY_ALL_DECISION,
  authorizeSubscribe: () => DENY_ALL_DECISION,
  authorizeReceive: () => DENY_ALL_DECISION,
}

/**
 * Decisions map to the gateway's shape once each. Compiled decisions are frozen objects shared by every session
 * on the same policy version (policy/compile.ts), so one table serves the whole gateway and the per-message path
 * allocates nothing.
 */
const shaped = new WeakMap<Decision, GatewayDecision>()
export function toGatewayDecision (d: Decision): GatewayDecision {
  let g = shaped.get(d)
  if (g === undefined) {
    g = Object.freeze({ allowed: d.allowed, reason: d.allowed ? undefined : (d.effect === 'explicitDeny' ? 'explicit-deny' : 'no-matching-statement'), statement: describeDecision(d) })
    shaped.set(d, g)
  }
  return g
}

/**
 * Per-session memo of topic decisions, used only when the compiled policies decide on (action, topic) alone
 * (`CompiledAuthorizer.cacheable`: no condition reads the clock or the request). A device publishes to the same
 * few topics again and again, and each session's policies are compiled with its own variables bound, so without
 * the memo every message would run that session's matchers, which rarely get hot enough to be optimized. The last
 * topic is compared first (no hashing of the freshly decoded string); up to `MAX_TOPICS` more are kept in a map.
 * A session that uses more distinct topics than that (a backend receiving a whole building) keeps only the last
 * one: its matchers are hot anyway, and a map that fills and empties over and over would cost more than it saves.
 * A policy change builds a new authorizer, so a memo never outlives the policies it was filled from.
 */
class TopicDecisionMemo {
  static readonly MAX_TOPICS = 64
  #lastTopic = ''
  #last: GatewayDecision | undefined = undefined
  #more: Map<string, GatewayDecision> | undefined = new Map()

  get (topic: string): GatewayDecision | undefined {
    if (topic === this.#lastTopic) return this.#last
    const d = this.#more?.get(topic)
    if (d !== undefined) {
      this.#lastTopic = topic
      this.#last = d
    }
    return d
  }

  set (topic: string, d: GatewayDecision): GatewayDecision {
    this.#lastTopic = topic
    this.#last = d
    const more = this.#more
    if (more !== undefined) {
      if (more.size < TopicDecisionMemo.MAX_TOPICS) more.set(topic, d)
      else this.#more = undefined
    }
    return d
  }
}

/** One session's authorizer: its compiled policies and client ARN (a plain object, no closures per session). */
class DeviceSessionAuthorizer implements SessionAuthorizer {
  readonly #compiled: CompiledAuthorizer
  readonly #clientArn: string
  readonly #arn: ArnContext
  readonly #commands: SensitiveTopics | undefined
  /** Memos for iot:Publish (non-retained) and iot:Receive, made on first use when the decisions are cacheable. */
  #publish: TopicDecisionMemo | undefined = undefined
  #receive: TopicDecisionMemo | undefined = undefined
  /** The sensitive-filter generation the publish memo was filled under. */
  #sensitiveGeneration = 0

  constructor (compiled: CompiledAuthorizer, clientArn: string, arn: ArnContext, commands: SensitiveTopics | undefined) {
    this.#compiled = compiled
    this.#clientArn = clientArn
    this.#arn = arn
    this.#commands = commands
  }

  authorizeConnect (_a: ConnectAttributes): GatewayDecision { return toGatewayDecision(this.#compiled.authorize('iot:Connect', this.#clientArn)) }

  authorizePublish (topic: string, retain: boolean): GatewayDecision {
    const compiled = this.#compiled
    const commands = this.#commands
    if (!retain) {
      // The memo holds the whole answer, sensitive-topic refusal included, for the filters of one generation.
      const generation = commands === undefined ? 0 : commands.sensitiveGeneration
      if (generation !== this.#sensitiveGeneration) {
        this.#publish = undefined
        this.#sensitiveGeneration = generation
      }
      const hit = this.#publish?.get(topic)
      if (hit !== undefined) return hit
      const d = this.#sensitive(topic) ?? toGatewayDecision(compiled.authorizeTopic('iot:Publish', topic))
      return compiled.cacheable ? (this.#publish ??= new TopicDecisionMemo()).set(topic, d) : d
    }
    const sensitive = this.#sensitive(topic)
    if (sensitive !== undefined) return sensitive
    const d = compiled.authorizeTopic('iot:Publish', topic)
    // AWS: a retained publish needs iot:RetainPublish as well as iot:Publish.
    return toGatewayDecision(d.allowed ? compiled.authorizeTopic('iot:RetainPublish', topic) : d)
  }

  /**
   * Sensitive command topics take MFA-backed operator commands only: no device publishes there, whatever its
   * policy says.
   */
  #sensitive (topic: string): GatewayDecision | undefined {
    return this.#commands !== undefined && this.#commands.isSensitive(topic) ? SENSITIVE_TOPIC_DECISION : undefined
  }

  authorizeSubscribe (filter: string): GatewayDecision {
    return toGatewayDecision(this.#compiled.authorize('iot:Subscribe', iotArn(this.#arn, 'topicfilter', filter)))
  }

  authorizeReceive (topic: string): GatewayDecision {
    const hit = this.#receive?.get(topic)
    if (hit !== undefined) return hit
    const compiled = this.#compiled
    const d = toGatewayDecision(compiled.authorizeTopic('iot:Receive', topic))
    return compiled.cacheable ? (this.#receive ??= new TopicDecisionMemo()).set(topic, d) : d
  }
}

const NO_GROUPS: ReadonlySet<string> = new Set()
/** Interned policy-name sets: sessions on the same policies share one (bounded; a miss just builds a new set). */
const policyNameSets = new Map<string, ReadonlySet<string>>()
function policyNameSet (names: readonly string[]): ReadonlySet<string> {
  const key = names.join('\0')
  let set = policyNameSets.get(key)
  if (set === undefined) {
    set = new Set(names)
    if (policyNameSets.size >= 10_000) policyNameSets.clear()
    policyNameSets.set(key, set)
  }
  return set
}

/**
 * A device's effective policies (certificate policies + its thing's group policies, ancestors included) compiled
 * with its connection's policy variables bound: what an MQTT session and a device HTTPS request are both
 * authorized with. `attributes` are {@link certificateAttributes} of the client certificate.
 */
export async function compileDevicePolicies (devices: DeviceDirectory, identity: DeviceIdentity,
  connection: { readonly clientId: string, readonly sourceAddress: string, readonly attributes: Readonly<Record<string, string>> | undefined },
  opts: { readonly arn: ArnContext, readonly clock: Clock }): Promise<{ compiled: CompiledAuthorizer, policies: NamedPolicy[], loaded: DevicePolicies }> {
  const loaded = await devices.policiesFor(identity)
  const thing = identity.thing
  const policies = collectEffectivePolicies({
    certificatePolicies: loaded.certificatePolicies, thingGroups: loaded.thingGroups, thingName: thing?.name,
    clientId: connection.clientId, exclusiveThing: identity.exclusiveThing,
  })
  const attrs = connection.attributes ?? {}
  const session = buildSessionVariables({
    clientId: connection.clientId,
    thing: thing === undefined ? undefined : { name: thing.name, typeName: thing.typeName, attributes: thing.attributes },
    exclusiveThing: identity.exclusiveThing,
    sourceIp: connection.sourceAddress,
    certificate: {
      subject: attrs.subjectCommonName === undefined ? undefined : { CommonName: [attrs.subjectCommonName] },
      issuer: attrs.issuerCommonName === undefined ? undefined : { CommonName: [attrs.issuerCommonName] },
      serialNumber: attrs.serialNumber,
    },
  })
  return { compiled: compilePolicies(policies, session, { arn: opts.arn, clock: opts.clock }), policies, loaded }
}

/**
 * Compiles each session's policies once (certificate policies + its thing's group policies, ancestors included)
 * with the session's policy variables bound, and answers the gateway's per-message questions from memory.
 * Remembers what each session was built from so a registry change re-authorizes exactly the affected sessions.
 */
export class PolicyAuthorizerFactory implements SessionAuthorizerFactory {
  readonly #devices: DeviceDirectory
  readonly #arn: ArnContext
  readonly #clock: Clock
  readonly #deps = new WeakMap<SessionPrincipal, SessionDependencies>()
  readonly #commands: SensitiveTopics | undefined
  readonly #authenticator: Pick<RegistryAuthenticator, 'takeIdentity'> | undefined

  constructor (opts: { devices: DeviceDirectory, arn: ArnContext, clock: Clock, commands?: SensitiveTopics, authenticator?: Pick<RegistryAuthenticator, 'takeIdentity'> }) {
    this.#devices = opts.devices
    this.#arn = opts.arn
    this.#clock = opts.clock
    this.#commands = opts.commands
    this.#authenticator = opts.authenticator
  }

  async create (principal: SessionPrincipal, context: SessionContext): Promise<SessionAuthorizer> {
    if (principal.certificateId === undefined) return DENY_ALL
    // At CONNECT the authenticator's identity is milliseconds old; on re-authorization the thing attachment or
    // status may have changed since, so the certificate is looked up again.
    let identity = this.#authenticator?.takeIdentity(principal)
    if (identity === undefined) {
      const r = await this.#devices.identify(principal.certificateId)
      if (!r.ok) return DENY_ALL
      identity = r.identity
    }
    const { compiled, policies, loaded } = await compileDevicePolicies(this.#devices, identity,
      { clientId: context.clientId, sourceAddress: context.sourceAddress, attributes: principal.attributes }, { arn: this.#arn, clock: this.#clock })
    this.#deps.set(principal, {
      certificateId: identity.certificate.id, certificateArn: identity.certificateArn, thingName: identity.thing?.name,
      groupNames: loaded.thingGroups.length === 0 ? NO_GROUPS : new Set(loaded.thingGroups.map(g => g.groupName)),
      policyNames: policyNameSet(policies.map(p => p.name)),
    })
    return new DeviceSessionAuthorizer(compiled, iotArn(this.#arn, 'client', context.clientId), this.#arn, this.#commands)
  }

  /** Whether a registry change may alter what the session built for `principal` may do. */
  affects (principal: SessionPrincipal | undefined, change: PolicyChange): boolean {
    if (principal === undefined) return false
    const deps = this.#deps.get(principal)
    // Unknown (still authenticating): re-check to be safe.
    return deps === undefined ? true : affectsSession(change, deps)
  }
}
