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
  AccessKeyService, CertificateService, PolicyService, ProvisioningService, SYSTEM_CALLER, ThingService,
} from './registry/index.ts'
import type { RegistryDeps } from './registry/index.ts'
import { loadKek } from './storage/kek-file.ts'
import { SqliteAuditStore } from './storage/sqlite/audit-store.ts'
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
  readonly things: ThingService
  readonly policies: PolicyService
  readonly certificates: CertificateService
  readonly accessKeys: AccessKeyService
  readonly provisioning: ProvisioningService
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
    const keyring = await LocalKeyring.open({ store: new SqliteKeyringStore(db), kek, clock })
    kek.fill(0)
    const audit = new SqliteAuditStore(db, clock)
    const events = new EventBus((err) => logger.error({ err }, 'domain event listener failed'))
    const deps: RegistryDeps = { storage: new SqliteRegistryStorage(db, audit), clock, events, arn: { region: config.region, accountId: config.accountId } }
    const certificates = new CertificateService({ ...deps, keyring, deviceValidityDays: config.pki.deviceValidityDays })
    return {
      config, logger, clock, events, db, keyring, audit, certificates,
      things: new ThingService(deps),
      policies: new PolicyService(deps),
      accessKeys: new AccessKeyService({ ...deps, keyring }),
      provisioning: new ProvisioningService(deps, certificates),
      async close () { db.close() },
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
    recordAudit: async (e) => { await app.audit.appendStandalone(e) },
    logger: app.logger,
    bodyLimitBytes: app.config.http.bodyLimitBytes,
    https: tls === undefined ? undefined : { cert: tls.certChainPem, key: tls.keyPem, minVersion: app.config.tls.minVersion },
  })
}
