import type { FastifyInstance } from 'fastify'
import { readFileSync } from 'node:fs'
import pino from 'pino'
import type { Logger } from 'pino'
import type { Config } from './config/index.ts'
import type { Clock } from './core/index.ts'
import { AppError, EventBus, systemClock } from './core/index.ts'
import { buildHttp } from './http/server.ts'
import { LocalKeyring } from './kms/index.ts'
import {
  AccessKeyService, CertificateService, DeviceDirectory, PolicyService, ProvisioningService, SYSTEM_CALLER, ThingService,
} from './registry/index.ts'
import { Gateway, PolicyAuthorizerFactory, ReasonCode, RegistryAuthenticator } from './gateway/index.ts'
import type { AuditSink, GatewayAuditEvent } from './gateway/index.ts'
import { isPolicyChange } from './policy/index.ts'
import type { AuditEventInput } from './audit/index.ts'
import { AuditRecorder, AuditService, keyUseRecorder, RequestTracker } from './audit/index.ts'
import type { AuditLogSource, AuditSinkPort, Scheduler } from './audit/index.ts'
import { FileAuditSink, SyslogTlsSink, WebhookAuditSink } from './storage/audit-sinks.ts'
import { SqliteGatewayStore } from './storage/sqlite/gateway-store.ts'
import type { RegistryDeps } from './registry/index.ts'
import { loadKek } from './storage/kek-file.ts'
import { SqliteAuditReader, SqliteAuditStore } from './storage/sqlite/audit-store.ts'
import { SqliteDb } from './storage/sqlite/db.ts'
import { SqliteKeyringStore } from './storage/sqlite/keyring-store.ts'
import { SqliteRegistryStorage } from './storage/sqlite/registry-store.ts'

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
  readonly provisioning: ProvisioningService
  readonly devices: DeviceDirectory
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
      paths: ['req.headers.authorization', 'req.headers["x-amz-security-token"]', '*.secretAccessKey', '*.privateKeyPem', '*.PrivateKey', 'secretAccessKey', 'privateKeyPem'],
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
    const recorder = new AuditRecorder({ store: audit, onError: (err) => logger.error({ err }, 'audit commit failed') })
    const keyring = await LocalKeyring.open({ store: new SqliteKeyringStore(db), kek, clock, onUse: keyUseRecorder(recorder) })
    kek.fill(0)
    const auditLog = await AuditService.open({
      store: audit, recorder, sealer: keyring, clock, requests, scheduler: timerScheduler, onError: (err) => logger.error({ err }, 'audit log error'),
    })
    const events = new EventBus((err) => logger.error({ err }, 'domain event listener failed'))
    const deps: RegistryDeps = { storage: new SqliteRegistryStorage(db, audit), clock, events, arn: { region: config.region, accountId: config.accountId } }
    const certificates = new CertificateService({ ...deps, keyring, deviceValidityDays: config.pki.deviceValidityDays })
    return {
      config, logger, clock, events, db, keyring, audit, auditLog, certificates,
      things: new ThingService(deps),
      policies: new PolicyService(deps),
      accessKeys: new AccessKeyService({ ...deps, keyring }),
      provisioning: new ProvisioningService(deps, certificates),
      devices: new DeviceDirectory(deps),
      async close () { try { await auditLog.close() } finally { db.close() } },
    }
  } catch (err) {
    db.close()
    throw err
  }
}

/**
 * First-run setup (`thingward init`): CA hierarchy, TLS server certificate and the first admin access key. The
 * key is returned once; a second run creates nothing and returns undefined.
 */
export async function initPlatform (app: App): Promise<{ accessKeyId: string, secretAccessKey: string } | undefined> {
  const hosts = ['localhost', ...app.config.publicHostnames.filter(h => !/^[\d.:]+$/.test(h))]
  const ips = ['127.0.0.1', '::1', ...app.config.publicHostnames.filter(h => /^[\d.:]+$/.test(h))]
  if (!['127.0.0.1', 'localhost', '::1', '0.0.0.0', '::'].includes(app.config.http.host)) {
    if (/^[\d.:]+$/.test(app.config.http.host)) ips.push(app.config.http.host); else hosts.push(app.config.http.host)
  }
  const { created } = await app.certificates.initialize(SYSTEM_CALLER, {
    algorithm: app.config.pki.caAlgorithm, organization: app.config.pki.organization, serverDnsNames: hosts, serverIps: [...new Set(ips)],
  })
  if (!created) return undefined
  return app.accessKeys.create(SYSTEM_CALLER, 'admin')
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
    things: app.things, policies: app.policies, certificates: app.certificates, accessKeys: app.accessKeys, provisioning: app.provisioning,
    clock: app.clock, region: app.config.region, accountId: app.config.accountId,
    mqttEndpoint: `${app.config.mqtt.host}:${app.config.mqtt.port}`,
    recordAudit: async (e) => { await app.auditLog.record(e) },
    audit: app.auditLog,
    logger: app.logger,
    bodyLimitBytes: app.config.http.bodyLimitBytes,
    https: tls === undefined ? undefined : { cert: tls.certChainPem, key: tls.keyPem, minVersion: app.config.tls.minVersion },
  })
}

/** Maps a gateway event to an audit event (actor: the certificate principal, else the client id). */
export function gatewayAuditEvent (e: GatewayAuditEvent): AuditEventInput {
  return {
    action: e.action,
    actor: e.principalId ?? `client/${e.clientId ?? 'unknown'}`,
    outcome: e.outcome === 'allowed' ? 'success' : e.outcome === 'closed' ? 'success' : 'denied',
    target: e.resource,
    sourceIp: e.sourceAddress,
    details: { clientId: e.clientId, gatewayOutcome: e.outcome, reason: e.reason, statement: e.statement, reasonCode: e.reasonCode, certificateFingerprint256: e.certificateFingerprint256 },
  }
}

/**
 * A gateway audit sink that never blocks the event loop: events queue and are committed in batches, one
 * transaction per batch, in order.
 */
function batchedGatewaySink (app: App): AuditSink & { flush (): Promise<void> } {
  let queue: AuditEventInput[] = []
  let running: Promise<void> | undefined
  const drain = async (): Promise<void> => {
    while (queue.length > 0) {
      const batch = queue
      queue = []
      await app.db.transaction(async () => { for (const e of batch) await app.audit.append(e) })
    }
    running = undefined
  }
  return {
    record (e) {
      queue.push(gatewayAuditEvent(e))
      if (running === undefined) running = new Promise<void>(resolve => setImmediate(resolve)).then(drain).catch((err: unknown) => { running = undefined; app.logger.error({ err }, 'gateway audit write failed') })
    },
    async flush () { while (running !== undefined) await running; if (queue.length > 0) await drain() },
  }
}

/**
 * Builds the MQTT gateway: mutual TLS against every ACTIVE registered CA, identity from the registry on every
 * connection, policies compiled per session, and registry events applied to live sessions at once (revocation
 * closes sessions without their Will; policy and attachment changes re-authorize the sessions they affect).
 */
export async function createGatewayServer (app: App, opts: { housekeepingIntervalMs?: number } = {}): Promise<Gateway & { flushAudit (): Promise<void> }> {
  const creds = await serverCredentials(app)
  const store = new SqliteGatewayStore(app.db, () => app.clock.nowMs())
  const authorizers = new PolicyAuthorizerFactory({ devices: app.devices, arn: { region: app.config.region, accountId: app.config.accountId }, clock: app.clock })
  const sink = batchedGatewaySink(app)
  const gateway = new Gateway({
    tls: { cert: creds.certChainPem, key: creds.keyPem, ca: await app.certificates.activeCaPems() },
    authenticator: new RegistryAuthenticator(app.devices), authorizers, audit: sink, sessionStore: store, retainedStore: store,
    clock: app.clock, housekeepingIntervalMs: opts.housekeepingIntervalMs,
    onError: (err) => app.logger.error({ err }, 'gateway error'),
  })
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
        if (e.status !== 'ACTIVE') gateway.closeSessionsForCertificate({ certificateId: e.certificateId }, ReasonCode.AdministrativeAction)
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
  return Object.assign(gateway, {
    async stop () { unsubscribe(); await stop(); await sink.flush() },
    flushAudit: sink.flush,
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
