import type { FastifyInstance } from 'fastify'
import { readFileSync } from 'node:fs'
import pino from 'pino'
import type { Logger } from 'pino'
import type { Config } from './config/index.ts'
import type { ArnContext, Clock } from './core/index.ts'
import { AppError, EventBus, certificateIdFromFingerprint, systemClock } from './core/index.ts'
import { buildHttp } from './http/server.ts'
import { LocalKeyring } from './kms/index.ts'
import {
  AuthorizationService, CertificateService, DeviceDirectory, PolicyService, ProvisioningService, SYSTEM_CALLER, ThingService,
} from './registry/index.ts'
import {
  AccessKeyService, AuthThrottle, IamAuthenticator, IamAuthorizer, IamCacheState, IamService, StsService,
} from './iam/index.ts'
import type { IamDeps, IamServices } from './iam/index.ts'
import { SqliteIamStorage } from './storage/sqlite/iam-store.ts'
import {
  Gateway, PolicyAuthorizerFactory, ReasonCode, RegistryAuthenticator, SHADOW_TOPIC_PREFIX, certificateAttributes,
  compileDevicePolicies, payloadSchemaValidator, shadowTopicHandler, toGatewayDecision,
} from './gateway/index.ts'
import { buildDeviceDataPlane } from './http/routes/data-plane.ts'
import type { DataPlaneDeps, DeviceAuthorizer, DeviceDataPlane, MessagingPort } from './http/routes/data-plane.ts'
import { PlatformMetrics } from './http/routes/health.ts'
import type { Readiness } from './http/routes/health.ts'
import { PayloadSchemaService, ShadowService } from './shadow/index.ts'
import type { ShadowPublisher } from './shadow/index.ts'
import { SqlitePayloadSchemaStorage, SqliteShadowStorage } from './storage/sqlite/shadow-store.ts'
import { isPolicyChange } from './policy/index.ts'
import { COMMAND_KEYS_TOPIC, CommandService } from './command/index.ts'
import { AuditRecorder, AuditService, GatewayAuditAdapter, keyUseRecorder, refuseWhenSaturated, RequestTracker } from './audit/index.ts'
import type { AuditLogSource, AuditSinkPort, Scheduler } from './audit/index.ts'
import { FileAuditSink, SyslogTlsSink, WebhookAuditSink } from './storage/audit-sinks.ts'
import { SqliteGatewayStore } from './storage/sqlite/gateway-store.ts'
import type { RegistryDeps } from './registry/index.ts'
import { loadKek } from './storage/kek-file.ts'
import { SqliteAuditReader, SqliteAuditStore } from './storage/sqlite/audit-store.ts'
import { SqliteDb } from './storage/sqlite/db.ts'
import { SqliteKeyringStore } from './storage/sqlite/keyring-store.ts'
import { SqliteRegistryStorage } from './storage/sqlite/registry-store.ts'

/** Longest wait before events nobody awaits are committed (see AuditRecorderOptions.commitDelayMs). */
const AUDIT_COMMIT_DELAY_MS = 50

/** Everything the process runs, built in one place (DESIGN.md §4: only app.ts constructs concrete classes). */
export interface App {
  readonly config: Config
  readonly logger: Logger
  readonly clock: Clock
  readonly events: EventBus
  readonly db: SqliteDb
  readonly keyring: LocalKeyring
  readonly audit: SqliteAuditStore
  /** The audit log service: group commit, signed digests, verify, search, prune. */
  readonly auditLog: AuditService
  readonly things: ThingService
  readonly policies: PolicyService
  readonly certificates: CertificateService
  readonly accessKeys: AccessKeyService
  /** Operator identities: users, groups, roles, policies, access keys, MFA, STS sessions, authorization. */
  readonly iam: IamServices
  readonly provisioning: ProvisioningService
  readonly devices: DeviceDirectory
  /** Device shadows (issue #6), sealed with the keyring. */
  readonly shadows: ShadowService
  /** Payload schemas, compiled once, checked on every MQTT and HTTPS publish. */
  readonly payloadSchemas: PayloadSchemaService
  /** The Prometheus registry behind /metrics. */
  readonly metrics: PlatformMetrics
  /** The data plane's way to the MQTT gateway of this process (set while one runs). */
  readonly dataPlane: DataPlaneLink
  readonly authorization: AuthorizationService
  readonly commands: CommandService
  close (): Promise<void>
}

export interface AppOptions {
  readonly clock?: Clock
  /** A logger, or false for silence (tests). */
  readonly logger?: Logger | false
}

/** The redaction list keeps credentials and keys out of logs whatever a handler logs by mistake. */
export function createLogger (level: Config['logLevel']): Logger {
  return pino({
    level,
    redact: {
      paths: ['req.headers.authorization', 'req.headers["x-amz-security-token"]', '*.secretAccessKey', '*.privateKeyPem', '*.PrivateKey', 'secretAccessKey', 'privateKeyPem', 'payload', '*.payload',
        'password', '*.password', '*.sessionToken', '*.secretBase32', '*.recoveryCodes', '*.totpCode', '*.recoveryCode'],
      censor: '[redacted]',
    },
  })
}

/** Opens storage and the keyring and builds the services. Does not listen. */
export async function createApp (config: Config, opts: AppOptions = {}): Promise<App> {
  const logger = opts.logger === false ? pino({ level: 'silent' }) : (opts.logger ?? createLogger(config.logLevel))
  const clock = opts.clock ?? systemClock
  const db = new SqliteDb({ path: config.storage.path, synchronous: config.storage.synchronous })
  try {
    const kek = loadKek({
      envValue: config.masterKey, filePath: `${config.dataDir}/master.key`, devMode: config.devMode,
      warn: (msg) => logger.warn(msg),
    })
    const requests = new RequestTracker()
    const audit = new SqliteAuditStore(db, clock, { onAppend: (r) => { requests.observe(r) } })
    // Gateway decisions and request events share commits for up to AUDIT_COMMIT_DELAY_MS: one WAL fsync per
    // batch instead of one per connecting device (awaited events still commit at once).
    const recorder = new AuditRecorder({ store: audit, commitDelayMs: AUDIT_COMMIT_DELAY_MS, onError: (err) => logger.error({ err }, 'audit commit failed') })
    const keyring = await LocalKeyring.open({ store: new SqliteKeyringStore(db), kek, clock, onUse: keyUseRecorder(recorder) })
    kek.fill(0)
    const auditLog = await AuditService.open({
      store: audit, recorder, sealer: keyring, clock, requests, scheduler: timerScheduler, onError: (err) => logger.error({ err }, 'audit log error'),
    })
    const events = new EventBus((err) => logger.error({ err }, 'domain event listener failed'))
    const deps: RegistryDeps = { storage: new SqliteRegistryStorage(db, audit), clock, events, arn: { region: config.region, accountId: config.accountId } }
    const certificates = new CertificateService({ ...deps, keyring, deviceValidityDays: config.pki.deviceValidityDays })
    const dataPlane = new DataPlaneLink(logger)
    const shadows = new ShadowService({ storage: new SqliteShadowStorage(db, audit), cipher: keyring, clock, arn: deps.arn, publisher: dataPlane.notifier,
      onError: (err) => logger.error({ err }, 'shadow request failed') })
    const payloadSchemas = new PayloadSchemaService({ storage: new SqlitePayloadSchemaStorage(db, audit), clock, arn: deps.arn })
    const loadedSchemas = await payloadSchemas.load()
    if (loadedSchemas.failed.length > 0) logger.warn({ schemas: loadedSchemas.failed }, 'stored payload schemas that no longer compile were skipped')
    const metrics = new PlatformMetrics()
    metrics.setSources({ shadows: () => shadows.metrics, payloadValidation: () => payloadSchemas.registry.stats, auditQueueDepth: () => auditLog.recorder.pending })
    const devices = new DeviceDirectory(deps)
    const commands = new CommandService({ storage: deps.storage, keyring, clock })
    await commands.load()
    const iam = createIam({
      storage: new SqliteIamStorage(db, audit), clock, arn: deps.arn, sealer: keyring, cache: new IamCacheState(),
      record: async (e) => { await auditLog.record(e) },
    })
    return {
      config, logger, clock, events, db, keyring, audit, auditLog, certificates, shadows, payloadSchemas, metrics, dataPlane,
      things: new ThingService(deps),
      policies: new PolicyService(deps),
      accessKeys: iam.accessKeys,
      iam,
      provisioning: new ProvisioningService(deps, certificates),
      devices,
      authorization: new AuthorizationService(deps, devices),
      commands,
      async close () { try { await auditLog.close() } finally { db.close() } },
    }
  } catch (err) {
    db.close()
    throw err
  }
}

/** The IAM services over one set of dependencies (issue #5). */
export function createIam (deps: IamDeps): IamServices {
  const authorizer = new IamAuthorizer(deps)
  const accessKeys = new AccessKeyService(deps)
  const sts = new StsService(deps, authorizer, new AuthThrottle(deps.clock))
  const authenticator = new IamAuthenticator({ accessKeys, sts, authorizer, throttle: new AuthThrottle(deps.clock), arn: deps.arn, record: deps.record })
  return { users: new IamService(deps), accessKeys, sts, authorizer, authenticator }
}

/**
 * First-run setup (`thingward init`): CA hierarchy, TLS server certificate, and the first administrator: an IAM
 * user (default `admin`) holding the built-in admin role, with one access key. The user has no password (there is
 * no default password anywhere): set one with `thingward iam users set-password`, and password sign-in enrolls
 * TOTP at first use. The key is returned once; a second run creates nothing and returns undefined.
 */
export async function initPlatform (app: App, adminUserName = 'admin'): Promise<{ accessKeyId: string, secretAccessKey: string, userName: string } | undefined> {
  const hosts = ['localhost', ...app.config.publicHostnames.filter(h => !/^[\d.:]+$/.test(h))]
  const ips = ['127.0.0.1', '::1', ...app.config.publicHostnames.filter(h => /^[\d.:]+$/.test(h))]
  if (!['127.0.0.1', 'localhost', '::1', '0.0.0.0', '::'].includes(app.config.http.host)) {
    if (/^[\d.:]+$/.test(app.config.http.host)) ips.push(app.config.http.host); else hosts.push(app.config.http.host)
  }
  const { created } = await app.certificates.initialize(SYSTEM_CALLER, {
    algorithm: app.config.pki.caAlgorithm, organization: app.config.pki.organization, serverDnsNames: hosts, serverIps: [...new Set(ips)],
  })
  if (!created) return undefined
  const existing = await app.iam.users.getUserRecord(adminUserName)
  if (existing === undefined) await app.iam.users.createUser(SYSTEM_CALLER, { userName: adminUserName, roles: ['admin'] })
  else await app.iam.users.assignRole(SYSTEM_CALLER, adminUserName, 'admin')
  return { ...await app.accessKeys.create(SYSTEM_CALLER, adminUserName), userName: adminUserName }
}

/** The HTTPS/MQTT server credentials: user-supplied PEM files when configured, else ours (sealed in the store). */
export async function serverCredentials (app: App): Promise<{ certChainPem: string, keyPem: string }> {
  const { certFile, keyFile } = app.config.tls
  if (certFile !== undefined && keyFile !== undefined) {
    try {
      return { certChainPem: readFileSync(certFile, 'utf8'), keyPem: readFileSync(keyFile, 'utf8') }
    } catch (err) {
      throw new AppError('ERR_CONFIG_INVALID', 'invalid configuration: the TLS certificate or key file cannot be read', { certFile, keyFile }, { cause: err })
    }
  }
  return app.certificates.tlsServerCredentials()
}

/** Builds the HTTPS API on top of an app. */
export async function createHttpServer (app: App): Promise<FastifyInstance> {
  const tls = app.config.http.tls ? await serverCredentials(app) : undefined
  return buildHttp({
    things: app.things, policies: app.policies, certificates: app.certificates, iam: app.iam, provisioning: app.provisioning, authorization: app.authorization, commands: app.commands,
    clock: app.clock, region: app.config.region, accountId: app.config.accountId,
    mqttEndpoint: `${app.config.mqtt.host}:${app.config.mqtt.port}`,
    recordAudit: async (e) => { await app.auditLog.record(e) },
    audit: app.auditLog,
    dataPlane: dataPlaneDeps(app), payloadSchemas: app.payloadSchemas, metrics: app.metrics, ready: () => readiness(app),
    logger: app.logger,
    bodyLimitBytes: app.config.http.bodyLimitBytes,
    https: tls === undefined ? undefined : { cert: tls.certChainPem, key: tls.keyPem, minVersion: app.config.tls.minVersion },
  })
}

/**
 * Builds the MQTT gateway: mutual TLS against every ACTIVE registered CA, identity from the registry on every
 * connection, policies compiled per session, and registry events applied to live sessions at once (revocation
 * closes sessions without their Will; policy and attachment changes re-authorize the sessions they affect).
 */
export async function createGatewayServer (app: App, opts: { housekeepingIntervalMs?: number } = {}): Promise<Gateway & { flushAudit (): Promise<void> }> {
  const creds = await serverCredentials(app)
  const store = new SqliteGatewayStore(app.db, () => app.clock.nowMs())
  const registryAuth = new RegistryAuthenticator(app.devices)
  const authorizers = new PolicyAuthorizerFactory({ devices: app.devices, arn: { region: app.config.region, accountId: app.config.accountId }, clock: app.clock, commands: app.commands, authenticator: registryAuth })
  // Gateway events go through the audit log's group commit; when it falls behind, new connections are refused
  // (backpressure) rather than any event dropped.
  const sink = new GatewayAuditAdapter(app.auditLog.recorder)
  const authenticator = { authenticate: refuseWhenSaturated(app.auditLog.recorder, (r: Parameters<RegistryAuthenticator['authenticate']>[0]) => registryAuth.authenticate(r), { ok: false as const, reason: 'audit-backpressure' }) }
  const gateway = new Gateway({
    tls: { cert: creds.certChainPem, key: creds.keyPem, ca: await app.certificates.activeCaPems() },
    authenticator, authorizers, audit: sink, sessionStore: store, retainedStore: store,
    clock: app.clock, housekeepingIntervalMs: opts.housekeepingIntervalMs, limits: app.config.mqtt.limits,
    onError: (err) => app.logger.error({ err }, 'gateway error'),
    payloadValidator: payloadSchemaValidator(app.payloadSchemas),
    // Every device reads the command verification keys (JWKS), retained on a reserved topic, whatever its policy.
    publicTopics: [COMMAND_KEYS_TOPIC],
  })
  // Shadows ride the reserved topics, handled in the gateway itself; the data plane publishes through it.
  const unhandleShadows = gateway.handleReserved(SHADOW_TOPIC_PREFIX, shadowTopicHandler(app.shadows, { onError: (err) => app.logger.error({ err }, 'shadow request failed') }))
  app.dataPlane.attach(gateway)
  app.metrics.setSources({ gateway: () => gateway.metrics, auditQueueDepth: () => app.auditLog.recorder.pending })
  const reloadCas = (): void => {
    app.certificates.activeCaPems().then(pems => gateway.setTrustedCAs(pems), (err: unknown) => app.logger.error({ err }, 'reloading trusted CAs failed'))
  }
  const reauthorize = (predicate: Parameters<Gateway['reauthorizeSessions']>[0]): void => {
    gateway.reauthorizeSessions(predicate).catch((err: unknown) => app.logger.error({ err }, 're-authorizing sessions failed'))
  }
  const unsubscribe = app.events.subscribe((e) => {
    switch (e.type) {
      case 'certificate.status':
        // MQTT 5 §3.14.2.1 DISCONNECT 0x98 "Administrative action"; no Will (the device did not just vanish).
        if (e.status !== 'ACTIVE') {
          // The event is published right after the revocation committed: time until its sessions are closed.
          const t0 = performance.now()
          if (gateway.closeSessionsForCertificate({ certificateId: e.certificateId }, ReasonCode.AdministrativeAction) > 0) {
            app.metrics.observeRevokeToDisconnect((performance.now() - t0) / 1000)
          }
        }
        break
      case 'certificate.deleted':
        gateway.closeSessionsForCertificate({ certificateId: e.certificateId }, ReasonCode.AdministrativeAction)
        break
      case 'ca.registered':
        reloadCas()
        break
      case 'ca.status':
        reloadCas()
        // Certificates of an inactive CA no longer authenticate: re-check every session (rare operation).
        reauthorize(() => true)
        break
      default:
        if (isPolicyChange(e)) reauthorize(s => authorizers.affects(s.principal, e))
    }
  })
  const stop = gateway.stop.bind(gateway)
  const start = gateway.start.bind(gateway)
  return Object.assign(gateway, {
    async start (listen: Parameters<Gateway['start']>[0]) {
      const address = await start(listen)
      // Devices read the command verification keys (JWKS) from a retained message on a reserved topic.
      gateway.publish({ topic: COMMAND_KEYS_TOPIC, payload: JSON.stringify(app.commands.jwks()), qos: 1, retain: true })
      return address
    },
    async stop () { unsubscribe(); unhandleShadows(); app.dataPlane.detach(gateway); await stop(); await app.auditLog.recorder.flush() },
    flushAudit: () => app.auditLog.recorder.flush(),
  })
}

/** Timers for the audit digest cadence and stream polling; unref'd so they never keep a process alive. */
export const timerScheduler: Scheduler = {
  every (ms, fn) {
    const t = setInterval(fn, ms)
    t.unref()
    return () => { clearInterval(t) }
  },
}

/**
 * Opens a data directory's audit log read-only for offline verification (`thingward audit verify --data`): no
 * master key, no migration, no write.
 */
export function openAuditLogReadOnly (config: Config): AuditLogSource & { close (): void } {
  return new SqliteAuditReader(config.storage.path)
}

/** The audit store alone (no keyring), for `thingward audit stream`, which reads records and writes its cursor. */
export function openAuditStore (config: Config, clock: Clock = systemClock): { readonly store: SqliteAuditStore, close (): void } {
  const db = new SqliteDb({ path: config.storage.path, synchronous: config.storage.synchronous })
  try {
    return { store: new SqliteAuditStore(db, clock), close: () => { db.close() } }
  } catch (err) {
    db.close()
    throw err
  }
}

/** Where `thingward audit stream` delivers. */
export type AuditSinkSpec =
  | { readonly kind: 'file', readonly path: string }
  | { readonly kind: 'syslog', readonly host: string, readonly port: number, readonly ca?: string, readonly cert?: string, readonly key?: string, readonly hostname?: string }
  | { readonly kind: 'webhook', readonly url: string, readonly ca?: string, readonly secret?: string }

/** Builds an audit stream sink. */
export function createAuditSink (spec: AuditSinkSpec): AuditSinkPort {
  switch (spec.kind) {
    case 'file': return new FileAuditSink(spec.path)
    case 'syslog': return new SyslogTlsSink({ host: spec.host, port: spec.port, ca: spec.ca, cert: spec.cert, key: spec.key, hostname: spec.hostname }, String(process.pid))
    case 'webhook': return new WebhookAuditSink({ url: spec.url, ca: spec.ca, secret: spec.secret })
  }
}

/**
 * The data plane's link to the MQTT gateway running in this process (the HTTPS API is built before the gateway,
 * and either may run alone): HTTPS Publish and retained-message reads go through it, and the shadow service
 * publishes its /accepted, /delta and /documents messages through it. Without a gateway, publishes from the
 * API are refused (503) and shadow notifications have nobody to reach.
 */
export class DataPlaneLink implements MessagingPort {
  #gateway: Gateway | undefined = undefined
  readonly #logger: Logger
  constructor (logger: Logger) { this.#logger = logger }

  attach (gateway: Gateway): void { this.#gateway = gateway }
  detach (gateway: Gateway): void { if (this.#gateway === gateway) this.#gateway = undefined }
  get attached (): boolean { return this.#gateway !== undefined }

  #require (): Gateway {
    const g = this.#gateway
    if (g === undefined) throw new AppError('ERR_DATA_PLANE_UNAVAILABLE', 'the MQTT gateway is not running in this process')
    return g
  }

  /** Shadow notifications: QoS 1 (capped by each subscription's granted QoS); dropped without a gateway. */
  readonly notifier: ShadowPublisher = {
    publish: (topic: string, payload: Buffer): void => {
      try { this.#gateway?.publish({ topic, payload, qos: 1 }) } catch (err) { this.#logger.error({ err }, 'shadow notification failed') }
    },
  }

  publish (m: Parameters<MessagingPort['publish']>[0]): void {
    this.#require().publish({ topic: m.topic, payload: m.payload, qos: m.qos, retain: m.retain, properties: m.properties, messageExpirySec: m.messageExpirySec, v311Payload: m.v311Payload })
  }

  retainedMessage (topic: string): ReturnType<MessagingPort['retainedMessage']> {
    return this.#require().retainedMessage(topic)
  }

  retainedMessages (): ReturnType<MessagingPort['retainedMessages']> {
    return this.#require().retainedMessages()
  }
}

/** The data-plane routes' dependencies for an app. */
function dataPlaneDeps (app: App): DataPlaneDeps {
  return { shadows: app.shadows, payloadSchemas: app.payloadSchemas, messaging: app.dataPlane, commands: app.commands, recordAudit: async (e) => { await app.auditLog.record(e) } }
}

/** /readyz: the database answers and the audit log accepts events; the gateway's state is reported too. */
async function readiness (app: App): Promise<Readiness> {
  const checks: Record<string, string> = {}
  try { await app.db.read(() => app.db.get('SELECT 1 AS ok')); checks.database = 'ok' } catch { checks.database = 'unavailable' }
  checks.audit = app.auditLog.recorder.saturated ? 'saturated' : 'ok'
  checks.gateway = app.dataPlane.attached ? 'running' : 'not-running'
  return { ready: checks.database === 'ok' && checks.audit === 'ok', checks }
}

/**
 * The device HTTPS endpoint (AWS: the data endpoint on 8443 with a client certificate): `POST /topics/{topic}`
 * over mutual TLS, each request authenticated against the registry (revocation applies at once) and authorized
 * with the device's compiled policies, exactly as the MQTT gateway does. Does not listen.
 */
export async function createDeviceHttpServer (app: App): Promise<DeviceDataPlane> {
  const creds = await serverCredentials(app)
  const arn = { region: app.config.region, accountId: app.config.accountId }
  const server = await buildDeviceDataPlane({
    dataPlane: dataPlaneDeps(app),
    logger: app.logger,
    arn,
    tls: { cert: creds.certChainPem, key: creds.keyPem, ca: await app.certificates.activeCaPems(), minVersion: app.config.tls.minVersion },
    authorizer: deviceHttpAuthorizer(app, arn),
  })
  const unsubscribe = app.events.subscribe((e) => {
    if (e.type === 'ca.registered' || e.type === 'ca.status') {
      app.certificates.activeCaPems().then(pems => server.setTrustedCAs(pems), (err: unknown) => app.logger.error({ err }, 'reloading trusted CAs failed'))
    }
  })
  server.addHook('onClose', async () => { unsubscribe() })
  return server
}

/**
 * Device HTTPS authorization, per request: the certificate is looked up (ACTIVE, valid, CA ACTIVE — revocation
 * applies at once), and the device's effective policies are compiled with its session variables exactly as for an
 * MQTT session (the gateway's compileDevicePolicies) and must allow every permission the route table names. HTTPS
 * has no MQTT client id: the thing name stands in for it, so `${iot:Connection.Thing.*}` variables bind as over
 * MQTT (AWS documents them for MQTT/WSS only; our role templates grant iot:GetThingShadow with them).
 */
function deviceHttpAuthorizer (app: App, arn: ArnContext): DeviceAuthorizer {
  return {
    async authorize ({ certificate, sourceIp, permissions }) {
      const r = await app.devices.identify(certificateIdFromFingerprint(certificate.fingerprint256))
      if (!r.ok) return { allowed: false, reason: r.reason }
      const identity = r.identity
      const thing = identity.thing
      const { compiled } = await compileDevicePolicies(app.devices, identity,
        { clientId: thing?.name ?? identity.certificate.id, sourceAddress: sourceIp, attributes: certificateAttributes(certificate) }, { arn, clock: app.clock })
      const base = { principalId: identity.certificateArn, ...(thing === undefined ? {} : { thingName: thing.name }) }
      for (const p of permissions) {
        const d = compiled.authorize(p.action, p.resource)
        if (!d.allowed) {
          const g = toGatewayDecision(d)
          return { allowed: false, ...base, reason: g.reason, statement: g.statement }
        }
      }
      return { allowed: true, ...base }
    },
  }
}
